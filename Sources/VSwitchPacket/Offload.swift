// Offload: virtio-net headers, GSO super-frames, partial checksums and software segmentation
// (issue 7, offloads).
//
// Design. A TAP port opened with IFF_VNET_HDR (TUNSETVNETHDRSZ 12, TUNSETOFFLOAD CSUM|TSO4|TSO6|
// TSO_ECN) hands the switch frames of up to 64 KB — GSO "super-frames" that the virtual system's
// kernel would otherwise have cut into MSS-sized segments — with a partial checksum (only the
// pseudo-header sum in the TCP checksum field, VIRTIO_NET_HDR_F_NEEDS_CSUM) and accepts them back.
// Each frame is preceded by a 12-byte virtio-net header (`struct virtio_net_hdr_mrg_rxbuf`):
//
//   flags u8 | gso_type u8 | hdr_len u16 | gso_size u16 | csum_start u16 | csum_offset u16 | num_buffers u16
//
// (little endian: the host's order, legacy virtio on x86-64/arm64).
//
// Where the header travels: in the frame's buffer, at a fixed spot — the first 12 bytes of the
// buffer, in front of the headroom (`FrameBatch.vnetHeader(i)`). A receive reads header and frame
// with ONE read into `receiveBuffer(i) - 12` (the header lands in the last 12 bytes of the
// headroom, the frame where it always does) and `setReceivedVnet` copies the header to the fixed
// spot (12 bytes, because a tag pushed at egress overwrites the end of the headroom). The
// `FrameMeta.offload` flag says the header is meaningful (GSO and/or NEEDS_CSUM); frames without it
// are ordinary, fully checksummed frames and nothing below touches them.
//
// Tags. The header's csum_start and hdr_len count from the first byte of the frame as received.
// Every tag rewrite at egress changes the frame's length by exactly the bytes it inserts or removes
// in front of the L3 header (push +4, pop −4), so at send time both are shifted by
// `length − wireLength` (`stageVnetHeader`, `segment`, `completeChecksum`): no per-rewrite
// bookkeeping, and a flooded frame gets the right header in each port's form.
//
// Egress. To a port that takes offloads the super-frame is written as one unit behind its header
// (`stageVnetHeader` writes the adjusted header just in front of the frame, so one write() / one
// io_uring write covers both). To a port that cannot (offload off, netdev, pcap): a frame with only
// NEEDS_CSUM gets its checksum completed in place (`completeChecksum`); a GSO frame is cut by
// `segment` into a scratch batch, MSS-sized TCP segments with every header fixed: IPv4 total
// length, id (+k) and header checksum; IPv6 payload length; TCP sequence number (+k·gso_size), FIN
// and PSH only on the last segment, CWR only on the first, and the full TCP checksum with the
// pseudo-header. UDP super-frames (USO, GSO_UDP_L4: TUNSETOFFLOAD USO4|USO6 where the kernel has
// them, Linux 6.2+) are cut into datagrams (`segmentUDP`): IP lengths / id / header checksum, UDP
// length and a full UDP checksum each (0 sent as 0xFFFF). A port with TCP offloads but no USO
// (PortEntry.uso false) gets UDP super-frames cut the same way (`needsSoftwareOffload`). Legacy UFO
// (IP fragmentation) is never offered.
//
// Cost: nothing allocates; checksums are one pass of 64-bit adds over the bytes. Threading: as
// FrameBatch (one owner).

public enum VirtioNet {
    /// Bytes of the header the switch uses (virtio_net_hdr_mrg_rxbuf; TUNSETVNETHDRSZ 12).
    public static let headerSize = 12
    /// Bytes of the legacy header (struct virtio_net_hdr), as AF_PACKET's PACKET_VNET_HDR uses.
    public static let legacyHeaderSize = 10
    public static let needsCsum: UInt8 = 1
    public static let dataValid: UInt8 = 2
    public static let gsoNone: UInt8 = 0
    public static let gsoTCPv4: UInt8 = 1
    public static let gsoUDP: UInt8 = 3
    public static let gsoTCPv6: UInt8 = 4
    public static let gsoUDPL4: UInt8 = 5
    public static let gsoECN: UInt8 = 0x80
    /// Largest frame a GSO-capable port can hand over (64 KiB of IP packet + Ethernet header and two tags).
    public static let maxFrame = 65536 + 32
}

public extension FrameMeta {
    /// The buffer's virtio-net header (at `FrameBatch.vnetHeader`) describes this frame: a GSO
    /// super-frame and/or a partial checksum (VIRTIO_NET_HDR_F_NEEDS_CSUM).
    static let offload: UInt8 = 8
}

/// Result of a segmentation step.
public struct SegmentResult {
    /// Segments written into the scratch batch (slots 0..<count).
    public var count: Int
    /// Payload offset to continue from (equal to the payload length when done).
    public var next: Int
    /// The frame could not be segmented (not TCP over IPv4/IPv6, or inconsistent header): drop it.
    public var invalid: Bool
    /// The last segment has been produced.
    public var done: Bool = false
}

public extension FrameBatch {
    // MARK: header access

    /// The fixed spot of frame `i`'s virtio-net header (the first 12 bytes of its buffer).
    @inlinable @inline(__always)
    func vnetHeader(_ i: Int) -> UnsafeMutableRawPointer { buffer(i) }

    @inlinable @inline(__always) func vnetFlags(_ i: Int) -> UInt8 { buffer(i).load(as: UInt8.self) }
    @inlinable @inline(__always) func gsoType(_ i: Int) -> UInt8 { buffer(i).load(fromByteOffset: 1, as: UInt8.self) }
    @inlinable @inline(__always) func gsoSize(_ i: Int) -> Int { Int(UInt16(littleEndian: buffer(i).loadUnaligned(fromByteOffset: 4, as: UInt16.self))) }
    /// csum_start / hdr_len as received (add `tagDelta(i)` for the frame's current form).
    @inlinable @inline(__always) func rawCsumStart(_ i: Int) -> Int { Int(UInt16(littleEndian: buffer(i).loadUnaligned(fromByteOffset: 6, as: UInt16.self))) }
    @inlinable @inline(__always) func csumOffset(_ i: Int) -> Int { Int(UInt16(littleEndian: buffer(i).loadUnaligned(fromByteOffset: 8, as: UInt16.self))) }
    @inlinable @inline(__always) func rawHdrLen(_ i: Int) -> Int { Int(UInt16(littleEndian: buffer(i).loadUnaligned(fromByteOffset: 2, as: UInt16.self))) }

    /// Bytes the egress tag rewrite added (+) or removed (−) in front of the L3 header since receive.
    @inlinable @inline(__always)
    func tagDelta(_ i: Int) -> Int { Int(meta[i].length) &- Int(meta[i].wireLength) }

    /// Frame `i` is a GSO super-frame (must be segmented for a port without offloads).
    @inlinable @inline(__always)
    func isGSO(_ i: Int) -> Bool { meta[i].flags & FrameMeta.offload != 0 && gsoType(i) & 0x7F != VirtioNet.gsoNone }

    /// Whether offloaded frame `i` must be finished in software (segmented, or its checksum completed)
    /// before it goes to a port: the port takes no offloads at all, or the frame is a UDP (USO,
    /// GSO_UDP_L4) super-frame and the port has TCP offloads only.
    @inlinable @inline(__always)
    public func needsSoftwareOffload(_ i: Int, portOffload: Bool, portUSO: Bool) -> Bool {
        meta[i].flags & FrameMeta.offload != 0
            && (!portOffload || (!portUSO && gsoType(i) & 0x7F == VirtioNet.gsoUDPL4))
    }

    /// Writes a header into frame `i`'s fixed spot (tests, and ports that receive without one).
    func setVnetHeader(_ i: Int, flags: UInt8, gsoType: UInt8, hdrLen: Int, gsoSize: Int, csumStart: Int, csumOffset: Int) {
        let h = buffer(i)
        h.storeBytes(of: flags, as: UInt8.self)
        h.storeBytes(of: gsoType, toByteOffset: 1, as: UInt8.self)
        h.storeBytes(of: UInt16(truncatingIfNeeded: hdrLen).littleEndian, toByteOffset: 2, as: UInt16.self)
        h.storeBytes(of: UInt16(truncatingIfNeeded: gsoSize).littleEndian, toByteOffset: 4, as: UInt16.self)
        h.storeBytes(of: UInt16(truncatingIfNeeded: csumStart).littleEndian, toByteOffset: 6, as: UInt16.self)
        h.storeBytes(of: UInt16(truncatingIfNeeded: csumOffset).littleEndian, toByteOffset: 8, as: UInt16.self)
        h.storeBytes(of: UInt16(0), toByteOffset: 10, as: UInt16.self)
        if flags != 0 || gsoType != 0 { meta[i].flags |= FrameMeta.offload } else { meta[i].flags &= ~FrameMeta.offload }
    }

    // MARK: receive / send with a header

    /// Where a receive with a `hdr`-byte header writes frame `i` (header then frame, one read).
    @inlinable @inline(__always)
    func receiveBufferVnet(_ i: Int, header hdr: Int = VirtioNet.headerSize) -> UnsafeMutableRawPointer {
        base + (i &* bufferSize &+ headroom &- hdr)
    }

    /// Records a frame read with its 12-byte header into `receiveBufferVnet(i)`; `total` counts both.
    /// Returns false (nothing recorded) when `total` is shorter than the header.
    @inlinable @inline(__always)
    @discardableResult
    func setReceivedVnet(_ i: Int, total: Int) -> Bool {
        let hdr = VirtioNet.headerSize
        if total < hdr { return false }
        let src = base + (i &* bufferSize &+ headroom &- hdr)
        let dst = buffer(i)
        dst.storeBytes(of: src.loadUnaligned(as: UInt64.self), as: UInt64.self)
        dst.storeBytes(of: src.loadUnaligned(fromByteOffset: 8, as: UInt32.self), toByteOffset: 8, as: UInt32.self)
        setReceived(i, length: total &- hdr)
        if src.load(as: UInt8.self) & VirtioNet.needsCsum != 0 || src.load(fromByteOffset: 1, as: UInt8.self) != 0 {
            meta[i].flags = FrameMeta.offload
        }
        return true
    }

    /// Writes frame `i`'s header, adjusted to its current form (csum_start and hdr_len shifted by
    /// the tag delta; all zero for a frame without `FrameMeta.offload`), just in front of the
    /// frame, and returns its start: send `length + size` bytes from there. `size` 12 (TAP,
    /// virtio_net_hdr_mrg_rxbuf) or 10 (AF_PACKET's PACKET_VNET_HDR, the legacy virtio_net_hdr).
    @inlinable @inline(__always)
    func stageVnetHeader(_ i: Int, size: Int = VirtioNet.headerSize) -> UnsafeMutableRawPointer {
        let d = data(i)
        let h = d - size
        if meta[i].flags & FrameMeta.offload == 0 {
            h.storeBytes(of: UInt64(0), as: UInt64.self)
            h.storeBytes(of: UInt16(0), toByteOffset: 8, as: UInt16.self)
            if size == VirtioNet.headerSize { h.storeBytes(of: UInt16(0), toByteOffset: 10, as: UInt16.self) }
            return h
        }
        let src = buffer(i)
        h.storeBytes(of: src.load(as: UInt64.self), as: UInt64.self)
        h.storeBytes(of: src.load(fromByteOffset: 8, as: UInt16.self), toByteOffset: 8, as: UInt16.self)
        let delta = tagDelta(i)
        if delta != 0 {
            let cs = UInt16(truncatingIfNeeded: rawCsumStart(i) &+ delta)
            let hl = rawHdrLen(i)
            h.storeBytes(of: cs.littleEndian, toByteOffset: 6, as: UInt16.self)
            if hl != 0 { h.storeBytes(of: UInt16(truncatingIfNeeded: hl &+ delta).littleEndian, toByteOffset: 2, as: UInt16.self) }
        }
        if size == VirtioNet.headerSize { h.storeBytes(of: UInt16(0), toByteOffset: 10, as: UInt16.self) }   // num_buffers: unused on writes
        return h
    }

    // MARK: parsing

    /// Offset of the L3 header of frame `i` (after up to two 802.1Q / 802.1ad tags) and its EtherType.
    @inlinable
    func l3Offset(_ i: Int) -> (offset: Int, etherType: UInt16) {
        let len = Int(meta[i].length)
        var off = 12
        var et = be16(i, at: 12)
        var tags = 0
        while (et == EtherType.vlan || et == EtherType.qinq) && tags < 2 && off &+ 6 <= len {
            off &+= 4
            et = be16(i, at: off)
            tags &+= 1
        }
        return (off &+ 2, et)
    }

    /// Offset (in the frame as it is now) of the end of GSO frame `i`'s TCP or UDP header, measured from
    /// csum_start and the TCP data offset (UDP: 8 bytes) — hdr_len is only a hint (the kernel fills in its
    /// linear length); -1 when the offsets fall outside the frame.
    @inlinable @inline(__always)
    func gsoHeaderEnd(_ i: Int) -> Int {
        let len = Int(meta[i].length)
        let cs = rawCsumStart(i) &+ tagDelta(i)
        if cs < 14 || cs &+ 13 >= len { return -1 }
        return gsoType(i) & 0x7F == VirtioNet.gsoUDPL4 ? cs &+ 8
            : cs &+ Int(data(i).load(fromByteOffset: cs &+ 12, as: UInt8.self) >> 4) &* 4
    }

    /// Bytes the frame occupied on the wire it came from, without offloads: its length as received
    /// (`wireLength`: a tag pushed or popped for an earlier output port does not change what it costs);
    /// for a GSO super-frame, every segment's copy of the headers as well (policers charge this).
    @inlinable @inline(__always)
    func wireCost(_ i: Int) -> UInt64 {
        let received = UInt64(meta[i].wireLength)
        if !isGSO(i) { return received }
        let mss = gsoSize(i)
        let hdr = gsoHeaderEnd(i)
        let payload = Int(meta[i].length) &- hdr
        if hdr <= 0 || mss <= 0 || payload <= mss { return received }
        let receivedHeader = hdr &- tagDelta(i)
        return received &+ UInt64((payload &- 1) / mss) &* UInt64(receivedHeader)
    }

    /// The L3 length (IP header to end of payload) of the largest segment GSO frame `i` stands for, whose
    /// L3 header starts at `l3`: its headers up to the end of TCP/UDP plus gso_size. -1 when its offsets fall
    /// outside the frame. The port MTU check judges a super-frame by this.
    @inlinable
    func gsoSegmentL3Length(_ i: Int, l3: Int) -> Int {
        let hdr = gsoHeaderEnd(i)
        guard hdr > l3 else { return -1 }
        return hdr &- l3 &+ gsoSize(i)
    }

    // MARK: checksums

    /// Completes a partial checksum (NEEDS_CSUM) in place: the field at csum_start + csum_offset holds
    /// the pseudo-header sum; the ones'-complement sum from csum_start to the end is folded into it.
    /// Clears NEEDS_CSUM (and the offload flag unless the frame is GSO). Returns false if the header's
    /// offsets fall outside the frame (the frame is left alone).
    @inlinable
    @discardableResult
    func completeChecksum(_ i: Int) -> Bool {
        guard meta[i].flags & FrameMeta.offload != 0, vnetFlags(i) & VirtioNet.needsCsum != 0 else { return true }
        let len = Int(meta[i].length)
        let start = rawCsumStart(i) &+ tagDelta(i)
        let field = start &+ csumOffset(i)
        guard start >= 14, field &+ 2 <= len else { return false }
        let p = data(i)
        let sum = Checksum.add(p + start, len &- start, 0)
        // 0 is written as 0xFFFF, as Linux's skb_checksum_help does (CSUM_MANGLED_0): a UDP checksum of 0 means "none"
        // over IPv4 and is invalid over IPv6; for TCP both are the same value.
        let c = Checksum.finish(sum)
        p.storeBytes(of: (c == 0 ? 0xFFFF : c).bigEndian, toByteOffset: field, as: UInt16.self)
        let h = buffer(i)
        h.storeBytes(of: (vnetFlags(i) & ~VirtioNet.needsCsum) | VirtioNet.dataValid, as: UInt8.self)
        if gsoType(i) & 0x7F == VirtioNet.gsoNone { meta[i].flags &= ~FrameMeta.offload }
        return true
    }

    // MARK: segmentation

    /// Cuts GSO TCP or UDP (GSO_UDP_L4) super-frame `i` (in its current, egress form) into segments of
    /// at most gso_size payload bytes, written into `scratch` slots 0..<result.count starting at payload offset `from`
    /// (0 for the first call; continue from `result.next` until it reaches the payload length, when
    /// the scratch batch filled up). Each segment is a complete, fully checksummed frame.
    func segment(_ i: Int, from: Int, into scratch: inout FrameBatch) -> SegmentResult {
        let len = Int(meta[i].length)
        let (l3, et) = l3Offset(i)
        let p = data(i)
        let udp = gsoType(i) & 0x7F == VirtioNet.gsoUDPL4
        let proto: UInt8 = udp ? 17 : 6
        var l4: Int
        let v4: Bool
        if et == EtherType.ipv4 {
            guard l3 &+ 20 <= len else { return SegmentResult(count: 0, next: 0, invalid: true) }
            let ihl = Int(p.load(fromByteOffset: l3, as: UInt8.self) & 0x0F) &* 4
            guard ihl >= 20, p.load(fromByteOffset: l3 &+ 9, as: UInt8.self) == proto else { return SegmentResult(count: 0, next: 0, invalid: true) }
            l4 = l3 &+ ihl
            v4 = true
        } else if et == EtherType.ipv6 {
            // The TCP header's offset: csum_start when the sender gave one (extension headers), else right after.
            l4 = l3 &+ 40
            if vnetFlags(i) & VirtioNet.needsCsum != 0 { l4 = rawCsumStart(i) &+ tagDelta(i) }
            guard l4 >= l3 &+ 40 else { return SegmentResult(count: 0, next: 0, invalid: true) }
            v4 = false
        } else {
            return SegmentResult(count: 0, next: 0, invalid: true)
        }
        if udp { return segmentUDP(i, l3: l3, l4: l4, v4: v4, from: from, into: &scratch) }
        guard l4 &+ 20 <= len else { return SegmentResult(count: 0, next: 0, invalid: true) }
        let thl = Int(p.load(fromByteOffset: l4 &+ 12, as: UInt8.self) >> 4) &* 4
        let hdr = l4 &+ thl
        let mss = gsoSize(i)
        guard thl >= 20, hdr <= len, mss > 0, hdr &+ mss <= scratch.dataRoom else { return SegmentResult(count: 0, next: 0, invalid: true) }
        let payload = len &- hdr
        let seq0 = UInt32(bigEndian: p.loadUnaligned(fromByteOffset: l4 &+ 4, as: UInt32.self))
        let flags0 = p.load(fromByteOffset: l4 &+ 13, as: UInt8.self)
        let id0 = v4 ? UInt16(bigEndian: p.loadUnaligned(fromByteOffset: l3 &+ 4, as: UInt16.self)) : 0
        // Pseudo-header sum without the length: addresses and protocol.
        var pseudo: UInt64 = v4 ? Checksum.add(p + (l3 &+ 12), 8, 0) : Checksum.add(p + (l3 &+ 8), 32, 0)
        pseudo &+= 6
        var off = from
        var n = 0
        while n < scratch.capacity && (off < payload || (payload == 0 && off == 0 && n == 0)) {
            let chunk = min(mss, payload &- off)
            let segLen = hdr &+ chunk
            let d = scratch.receiveBuffer(n)
            d.copyMemory(from: p, byteCount: hdr)
            if chunk > 0 { (d + hdr).copyMemory(from: p + (hdr &+ off), byteCount: chunk) }
            let k = off / mss
            let first = off == 0, last = off &+ chunk >= payload
            if v4 {
                d.storeBytes(of: UInt16(truncatingIfNeeded: segLen &- l3).bigEndian, toByteOffset: l3 &+ 2, as: UInt16.self)
                d.storeBytes(of: (id0 &+ UInt16(truncatingIfNeeded: k)).bigEndian, toByteOffset: l3 &+ 4, as: UInt16.self)
                d.storeBytes(of: UInt16(0), toByteOffset: l3 &+ 10, as: UInt16.self)
                let ihl = l4 &- l3
                d.storeBytes(of: Checksum.finish(Checksum.add(d + l3, ihl, 0)).bigEndian, toByteOffset: l3 &+ 10, as: UInt16.self)
            } else {
                d.storeBytes(of: UInt16(truncatingIfNeeded: segLen &- l3 &- 40).bigEndian, toByteOffset: l3 &+ 4, as: UInt16.self)
            }
            d.storeBytes(of: (seq0 &+ UInt32(truncatingIfNeeded: off)).bigEndian, toByteOffset: l4 &+ 4, as: UInt32.self)
            var f = flags0
            if !last { f &= ~0x09 }          // FIN, PSH: last segment only
            if !first { f &= ~0x80 }         // CWR: first segment only
            d.storeBytes(of: f, toByteOffset: l4 &+ 13, as: UInt8.self)
            d.storeBytes(of: UInt16(0), toByteOffset: l4 &+ 16, as: UInt16.self)
            let tcpLen = segLen &- l4
            let sum = Checksum.add(d + l4, tcpLen, pseudo &+ UInt64(tcpLen))
            d.storeBytes(of: Checksum.finish(sum).bigEndian, toByteOffset: l4 &+ 16, as: UInt16.self)
            scratch.setReceived(n, length: segLen)
            n &+= 1
            off &+= chunk
            if chunk == 0 { break }
        }
        scratch.count = n
        return SegmentResult(count: n, next: off, invalid: false, done: off >= payload)
    }

    /// `segment` for a UDP super-frame (GSO_UDP_L4, "USO"): every segment is a datagram of its own
    /// with the headers copied, the IP length (and IPv4 ID, +1 per segment, and header checksum) and
    /// the UDP length set, and a complete UDP checksum (0 is sent as 0xFFFF, RFC 768).
    func segmentUDP(_ i: Int, l3: Int, l4: Int, v4: Bool, from: Int, into scratch: inout FrameBatch) -> SegmentResult {
        let len = Int(meta[i].length)
        let p = data(i)
        let hdr = l4 &+ 8
        let mss = gsoSize(i)
        guard hdr <= len, mss > 0, hdr &+ mss <= scratch.dataRoom else { return SegmentResult(count: 0, next: 0, invalid: true) }
        let payload = len &- hdr
        let id0 = v4 ? UInt16(bigEndian: p.loadUnaligned(fromByteOffset: l3 &+ 4, as: UInt16.self)) : 0
        var pseudo: UInt64 = v4 ? Checksum.add(p + (l3 &+ 12), 8, 0) : Checksum.add(p + (l3 &+ 8), 32, 0)
        pseudo &+= 17
        var off = from
        var n = 0
        while n < scratch.capacity && (off < payload || (payload == 0 && off == 0 && n == 0)) {
            let chunk = min(mss, payload &- off)
            let segLen = hdr &+ chunk
            let d = scratch.receiveBuffer(n)
            d.copyMemory(from: p, byteCount: hdr)
            if chunk > 0 { (d + hdr).copyMemory(from: p + (hdr &+ off), byteCount: chunk) }
            if v4 {
                d.storeBytes(of: UInt16(truncatingIfNeeded: segLen &- l3).bigEndian, toByteOffset: l3 &+ 2, as: UInt16.self)
                d.storeBytes(of: (id0 &+ UInt16(truncatingIfNeeded: off / mss)).bigEndian, toByteOffset: l3 &+ 4, as: UInt16.self)
                d.storeBytes(of: UInt16(0), toByteOffset: l3 &+ 10, as: UInt16.self)
                d.storeBytes(of: Checksum.finish(Checksum.add(d + l3, l4 &- l3, 0)).bigEndian, toByteOffset: l3 &+ 10, as: UInt16.self)
            } else {
                d.storeBytes(of: UInt16(truncatingIfNeeded: segLen &- l3 &- 40).bigEndian, toByteOffset: l3 &+ 4, as: UInt16.self)
            }
            let udpLen = segLen &- l4
            d.storeBytes(of: UInt16(truncatingIfNeeded: udpLen).bigEndian, toByteOffset: l4 &+ 4, as: UInt16.self)
            d.storeBytes(of: UInt16(0), toByteOffset: l4 &+ 6, as: UInt16.self)
            var c = Checksum.finish(Checksum.add(d + l4, udpLen, pseudo &+ UInt64(udpLen)))
            if c == 0 { c = 0xFFFF }
            d.storeBytes(of: c.bigEndian, toByteOffset: l4 &+ 6, as: UInt16.self)
            scratch.setReceived(n, length: segLen)
            n &+= 1
            off &+= chunk
            if chunk == 0 { break }
        }
        scratch.count = n
        return SegmentResult(count: n, next: off, invalid: false, done: off >= payload)
    }
}

/// The Internet checksum (RFC 1071), summed 8 bytes at a time.
public enum Checksum {
    /// Adds `count` bytes at `p` (big-endian 16-bit words; an odd last byte padded with zero) to `sum`.
    @inlinable
    public static func add(_ p: UnsafeRawPointer, _ count: Int, _ initial: UInt64) -> UInt64 {
        // Sum native-order 32-bit halves of 64-bit loads into a 64-bit accumulator (no carries lost for
        // any frame size here), then fold; byte-swap at the end since the words were read little-endian.
        var acc: UInt64 = 0
        var k = 0
        while k &+ 8 <= count {
            let v = p.loadUnaligned(fromByteOffset: k, as: UInt64.self)
            acc &+= (v & 0xFFFF_FFFF) &+ (v >> 32)
            k &+= 8
        }
        if k &+ 4 <= count { acc &+= UInt64(p.loadUnaligned(fromByteOffset: k, as: UInt32.self)); k &+= 4 }
        if k &+ 2 <= count { acc &+= UInt64(p.loadUnaligned(fromByteOffset: k, as: UInt16.self)); k &+= 2 }
        if k < count { acc &+= UInt64(p.load(fromByteOffset: k, as: UInt8.self)) }
        // Fold to 16 bits (still in the loads' byte order), then swap to network order.
        while acc >> 16 != 0 { acc = (acc & 0xFFFF) &+ (acc >> 16) }
        let be = UInt64(UInt16(truncatingIfNeeded: acc).byteSwapped)
        return initial &+ be
    }

    /// Folds a sum and complements it: the value to store (in host order; store `.bigEndian`).
    @inlinable
    public static func finish(_ sum: UInt64) -> UInt16 {
        var s = sum
        while s >> 16 != 0 { s = (s & 0xFFFF) &+ (s >> 16) }
        return ~UInt16(truncatingIfNeeded: s)
    }
}
