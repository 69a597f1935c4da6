// NetdevPort: a port on an EXISTING interface (a veth end, a TAP whose fd QEMU/libvirt holds, an
// uplink) through AF_PACKET rings (dataplane.md "Ports", issue 8 item 2, issue 7 item 3).
//
// Receive: one socket per port with an RX ring, PACKET_IGNORE_OUTGOING (the switch never sees its own
// sends), the interface in promiscuous mode (PACKET_MR_PROMISC; the kernel drops the membership when
// the socket closes). Only the port's owning forwarding thread reads it, one copy per frame into its
// batch (a frame whose 802.1Q tag the kernel stripped into tp_vlan_tci — TP_STATUS_VLAN_VALID — gets
// the tag re-inserted, so the pipeline sees the wire form), handing ring memory back at once.
// Two ring layouts (NetdevRingTuning; `vswitchd --netdev-ring`), chosen by measurement (bench/README.md
// "Netdev ports"):
// - latency (the default): TPACKET_V2, 8,192 frames of 2 KiB (16 MiB). One status word per frame: the
//   kernel wakes the thread per frame and the thread hands each frame back as soon as it is copied. p50
//   latency through the switch 10–35 µs (550–870 µs with V3); a round trip through one ring 0.10–0.14 ms.
//   A frame larger than a ring frame (a GSO super-frame, a jumbo frame) is queued whole to the socket as
//   well (PACKET_COPY_THRESH), its ring frame flagged TP_STATUS_COPY: it is read with one recv() in ring
//   order. Those copies are
//   bounded by the socket buffer: SO_RCVBUF 8 MiB (with the default 208 KiB, a 64 KB super-frame or two
//   filled it and TCP through the port retransmitted 120,000–300,000 segments in 5 s; with 8 MiB, ~500).
//   Cost: a wake-up (context switch) per frame or two at moderate rates: CPU per frame at 100 kpps +30–50 %
//   (~2.1 µs against ~1.5 µs; perf: finish_task_switch 19.5 % of the samples); less at high rates, where
//   the thread does not sleep. TCP with the peer's offloads on: 13–16 Gb/s (V3: 6–11).
// - throughput: TPACKET_V3, 128 blocks of 128 KiB (16 MiB), retired after 1 ms (the kernel's minimum).
//   The thread wakes once per block, not per frame, but a frame waits in a half-filled block until the
//   timeout: p50 latency 0.55–0.9 ms at every rate below the point where blocks fill (~1,000 64-byte
//   frames per block). Blocks cannot be smaller: a block must hold a 64 KB GSO super-frame. Reading the
//   block the kernel is still filling is not possible safely: the kernel bumps num_pkts before copying a
//   frame and writes tp_status before tp_snaplen/tp_mac, with no ordering a reader could rely on.
//   At rates where blocks retire by the timer, the ring holds blockCount ms of traffic, not its size in
//   frames: 32 blocks (the earlier setting) lost frames whenever the thread stalled 32 ms (seen at
//   12–90 kpps on this shared 2-core machine); 128 blocks hold 128 ms.
// Measured and not used: AF_XDP in copy mode (generic or veth-native XDP; bench/netdev-proto) — per
// frame no cheaper than a TPACKET_V2 ring and dearer than V3, with V2's latency, and it carries no
// virtio_net_hdr (no GSO / partial checksums: TCP from a peer with its default offloads would need them
// off); coalescing V2 wake-ups with a short sleep — nanosleep overshoots on a loaded CPU.
// Not done: SO_BUSY_POLL (veth and TAP frames have no NAPI context to poll), PACKET_FANOUT (a netdev
// port is read by its one owning thread; ports are spread across threads), sendmmsg instead of the TX
// ring. bench/README.md "Netdev ports" has the figures.
// Offloads: the RX socket asks for PACKET_VNET_HDR, so a frame the interface's peer sent with a
// partial checksum (CHECKSUM_PARTIAL: a veth peer with tx checksumming on) or as a GSO super-frame
// (TSO on) carries its virtio_net_hdr; it is copied to the batch's header spot and the engine
// completes the checksum / segments the frame at egress to ports without offloads, or hands it
// as is to TAP ports with offloads. The port takes offloads on TX too (PortEntry.offload true when
// the kernel accepted PACKET_VNET_HDR): a GSO super-frame is sent as one unit through the RX socket
// behind its virtio_net_hdr (after kicking the thread's TX ring, so a flow keeps its order), and the
// interface or its peer segments it; a frame with only a partial checksum is completed and goes
// through the TX ring.
// Transmit: one TX-only socket per forwarding thread (TX rings are single-producer; any thread may
// send to any port), TPACKET_V2 TX ring of 256 × 2 KiB frames, PACKET_QDISC_BYPASS. `send` fills a
// ring frame, `flush` is one sendto() for the whole batch (the kernel sends the whole ring in that
// call; a veth or TAP transmit does not queue, so more ring frames would not be used). A frame too
// large for a ring frame (jumbo MTU) is sent with send() on the RX socket instead.
// Counters: `ringCounters()` (PACKET_STATISTICS: frames the ring took and dropped for being full;
// whole-frame copies; oversize drops), in `vswitchctl port stats` ("netdev_ring") and --stats-json ("netdev_ring").
//
// Threading: `open`/`close` on the control thread (close only after a snapshot without the port is
// published); `NetdevRing` is used by forwarding threads through the PortRegistry.

import CVSwitchShim
import Glibc
import VSwitchPacket

/// One TX ring (one per forwarding thread).
public struct NetdevTxRing {
    public var fd: Int32
    public var map: UnsafeMutableRawPointer
    public var frameSize: Int
    public var frameCount: Int
    public var head: Int = 0
    public var pending: Int = 0
    public var pendingBytes: Int = 0
}

/// The forwarding threads' state of one netdev port (raw memory, registered in PortRegistry).
public struct NetdevRing {
    public var rxFd: Int32
    public var rxMap: UnsafeMutableRawPointer
    public var blockSize: Int
    public var blockCount: Int
    /// Owner thread's position: current block, frames of it consumed, offset of the next frame.
    public var block: Int = 0
    public var packet: Int = 0
    public var offset: Int = 0
    public var txCount: Int
    public var tx: UnsafeMutablePointer<NetdevTxRing>
    /// Frames dropped because they did not fit the batch buffers.
    public var oversize: UInt64 = 0
    /// The RX ring carries a virtio_net_hdr (10 bytes) in front of every frame (PACKET_VNET_HDR).
    public var vnet: Bool = false

    /// RX ring layout: 3 = TPACKET_V3 (blocks), 2 = TPACKET_V2 (fixed frames of `frameSize`, `frameCount` of them).
    public var version: Int = 3
    public var frameSize: Int = 0
    public var frameCount: Int = 0
    /// TPACKET_V2: the owner thread's next ring frame.
    public var frame: Int = 0
    /// TPACKET_V2: frames too large for a ring frame, read whole from the socket (TP_STATUS_COPY).
    public var copied: UInt64 = 0

    /// Owner thread: whether the ring holds frames for us (V3: the current block is retired; V2: the next frame is filled).
    @inline(__always)
    public func hasFrames() -> Bool {
        if version == 2 {
            return vsw_ring_load_status(rxMap + frame &* frameSize) & UInt32(VSW_TP_STATUS_USER) != 0
        }
        return vsw_ring_load_status(rxMap + block &* blockSize + Int(VSW_TP3_BLOCK_STATUS)) & UInt32(VSW_TP_STATUS_USER) != 0
    }

    /// Owner thread: copies up to `batch.capacity` frames into `batch` (tags re-inserted).
    @inline(__always)
    public mutating func receive(into batch: inout FrameBatch) -> Int {
        if version == 2 { return receiveV2(into: &batch) }
        var n = 0
        let room = batch.dataRoom
        while n < batch.capacity {
            let b = rxMap + block &* blockSize
            if vsw_ring_load_status(b + Int(VSW_TP3_BLOCK_STATUS)) & UInt32(VSW_TP_STATUS_USER) == 0 { break }
            let num = Int(b.load(fromByteOffset: Int(VSW_TP3_BLOCK_NUM_PKTS), as: UInt32.self))
            if packet == 0 { offset = Int(b.load(fromByteOffset: Int(VSW_TP3_BLOCK_FIRST), as: UInt32.self)) }
            if packet < num {
                let h = b + offset
                let status = h.load(fromByteOffset: Int(VSW_TP3_STATUS), as: UInt32.self)
                let len = Int(h.load(fromByteOffset: Int(VSW_TP3_SNAPLEN), as: UInt32.self))
                let src = h + Int(h.load(fromByteOffset: Int(VSW_TP3_MAC), as: UInt16.self))
                let tpid: UInt16 = status & UInt32(VSW_TP_STATUS_VLAN_TPID_VALID) != 0
                    ? h.load(fromByteOffset: Int(VSW_TP3_VLAN_TPID), as: UInt16.self) : 0x8100
                let tci = UInt16(truncatingIfNeeded: h.load(fromByteOffset: Int(VSW_TP3_VLAN_TCI), as: UInt32.self))
                if take(src, len, status, tpid, tci, &batch, n, room) { n &+= 1 }
                packet &+= 1
                offset &+= Int(h.load(fromByteOffset: Int(VSW_TP3_NEXT), as: UInt32.self))
            }
            if packet >= num {
                // Every frame of the block copied: the kernel may fill it again.
                vsw_ring_store_status(b + Int(VSW_TP3_BLOCK_STATUS), UInt32(VSW_TP_STATUS_KERNEL))
                packet = 0
                block = block &+ 1 == blockCount ? 0 : block &+ 1
            }
        }
        batch.count = n
        return n
    }

    /// TPACKET_V2: one status word per ring frame, handed back as soon as the frame is copied. A frame too
    /// large for a ring frame (a GSO super-frame, a jumbo frame) is flagged TP_STATUS_COPY and also queued
    /// whole to the socket (PACKET_COPY_THRESH), in ring order: it is read with one recv().
    @inline(__always)
    mutating func receiveV2(into batch: inout FrameBatch) -> Int {
        var n = 0
        let room = batch.dataRoom
        while n < batch.capacity {
            let h = rxMap + frame &* frameSize
            let status = vsw_ring_load_status(h)
            if status & UInt32(VSW_TP_STATUS_USER) == 0 { break }
            let tpid: UInt16 = status & UInt32(VSW_TP_STATUS_VLAN_TPID_VALID) != 0
                ? h.load(fromByteOffset: Int(VSW_TP2_VLAN_TPID), as: UInt16.self) : 0x8100
            let tci = h.load(fromByteOffset: Int(VSW_TP2_VLAN_TCI), as: UInt16.self)
            if status & UInt32(VSW_TP_STATUS_COPY) != 0 {
                if receiveCopy(status, tpid, tci, &batch, n, room) { n &+= 1 }
            } else {
                let len = Int(h.load(fromByteOffset: Int(VSW_TP2_SNAPLEN), as: UInt32.self))
                let wire = Int(h.load(fromByteOffset: Int(VSW_TP2_LEN), as: UInt32.self))
                let src = h + Int(h.load(fromByteOffset: Int(VSW_TP2_MAC), as: UInt16.self))
                if len < wire { oversize &+= 1 }   // cut to the ring frame and no whole copy queued (socket buffer full)
                else if take(src, len, status, tpid, tci, &batch, n, room) { n &+= 1 }
            }
            vsw_ring_store_status(h, UInt32(VSW_TP_STATUS_KERNEL))
            frame = frame &+ 1 == frameCount ? 0 : frame &+ 1
        }
        batch.count = n
        return n
    }

    /// TPACKET_V2, a TP_STATUS_COPY frame: the whole frame (behind its virtio_net_hdr) is the next one queued
    /// on the socket. Read straight into the batch buffer, the tag (from the ring frame) re-inserted.
    mutating func receiveCopy(_ status: UInt32, _ tpid: UInt16, _ tci: UInt16, _ batch: inout FrameBatch, _ n: Int, _ room: Int) -> Bool {
        copied &+= 1
        let vlan = status & UInt32(VSW_TP_STATUS_VLAN_VALID) != 0
        let shift = vlan ? 4 : 0
        let hdr = vnet ? VirtioNet.legacyHeaderSize : 0
        let dst = batch.receiveBuffer(n)
        let base = dst + shift - hdr            // headroom (64 bytes) takes the header
        let r = Glibc.recv(rxFd, base, room - shift + hdr, 0x40 | 0x20 /* MSG_DONTWAIT | MSG_TRUNC */)
        guard r >= hdr else { oversize &+= 1; return false }
        let len = r - hdr
        guard len <= room - shift, len >= 12 || !vlan else { oversize &+= 1; return false }
        var hv: (UInt64, UInt64) = (0, 0)      // the header, kept before the tag's move overwrites its tail
        if vnet { withUnsafeMutableBytes(of: &hv) { $0.baseAddress!.copyMemory(from: base, byteCount: hdr) } }
        if vlan {
            memmove(dst, dst + 4, 12)
            dst.storeBytes(of: tpid.bigEndian, toByteOffset: 12, as: UInt16.self)
            dst.storeBytes(of: tci.bigEndian, toByteOffset: 14, as: UInt16.self)
        }
        batch.setReceived(n, length: len &+ shift)
        if vnet { withUnsafeMutableBytes(of: &hv) { takeVnetHeader($0.baseAddress!, batch, n, shift: shift) } }
        return true
    }

    /// Copies one ring frame into batch slot `n` (its 802.1Q tag re-inserted if the kernel stripped it into the
    /// ring header); false when it does not fit the batch buffer.
    @inline(__always)
    mutating func take(_ src: UnsafeMutableRawPointer, _ len: Int, _ status: UInt32, _ tpid: UInt16, _ tci: UInt16,
                       _ batch: inout FrameBatch, _ n: Int, _ room: Int) -> Bool {
        let dst = batch.receiveBuffer(n)
        if status & UInt32(VSW_TP_STATUS_VLAN_VALID) != 0 && len >= 12 {
            guard len + 4 <= room else { oversize &+= 1; return false }
            dst.copyMemory(from: src, byteCount: 12)
            dst.storeBytes(of: tpid.bigEndian, toByteOffset: 12, as: UInt16.self)
            dst.storeBytes(of: tci.bigEndian, toByteOffset: 14, as: UInt16.self)
            (dst + 16).copyMemory(from: src + 12, byteCount: len &- 12)
            batch.setReceived(n, length: len &+ 4)
            if vnet { takeVnetHeader(src - VirtioNet.legacyHeaderSize, batch, n, shift: 4) }
            return true
        }
        guard len <= room else { oversize &+= 1; return false }
        dst.copyMemory(from: src, byteCount: len)
        batch.setReceived(n, length: len)
        if vnet { takeVnetHeader(src - VirtioNet.legacyHeaderSize, batch, n, shift: 0) }
        return true
    }

    /// Copies the ring's virtio_net_hdr of a frame to the batch's header spot (csum_start shifted by a
    /// re-inserted tag), so GSO frames and partial checksums from the interface are handled like a
    /// TAP's: segmented / completed at egress to ports without offloads (VSwitchPacket/Offload.swift).
    @inline(__always)
    func takeVnetHeader(_ h: UnsafeMutableRawPointer, _ batch: FrameBatch, _ n: Int, shift: Int) {
        let flags = h.load(as: UInt8.self)
        let gso = h.load(fromByteOffset: 1, as: UInt8.self)
        guard flags & VirtioNet.needsCsum != 0 || gso != VirtioNet.gsoNone else { return }
        batch.setVnetHeader(n, flags: flags & VirtioNet.needsCsum, gsoType: gso, hdrLen: NetdevRing.le16(h, 2) &+ shift,
                            gsoSize: NetdevRing.le16(h, 4), csumStart: NetdevRing.le16(h, 6) &+ shift,
                            csumOffset: NetdevRing.le16(h, 8))
    }

    @inline(__always)
    static func le16(_ h: UnsafeMutableRawPointer, _ o: Int) -> Int {
        Int(UInt16(littleEndian: h.loadUnaligned(fromByteOffset: o, as: UInt16.self)))
    }

    /// Any thread (its own TX ring `queue`): queues one frame; `.queued`, or `.wouldBlock` when the ring is full.
    @inline(__always)
    /// `data` must have 10 bytes of headroom in front (a FrameBatch frame has): a frame sent through the
    /// RX socket, which has PACKET_VNET_HDR, goes out behind an all-zero virtio_net_hdr written there.
    public func send(queue: Int, _ data: UnsafeMutableRawPointer, length: Int) -> SendResultKind {
        let t = tx + (queue % txCount)
        if length > t.pointee.frameSize &- Int(VSW_TP2_DATA) {
            // After the frames already on this thread's TX ring (kicked first: no reordering, as in sendOffloaded).
            if t.pointee.pending > 0 { _ = vsw_tpacket_tx_kick(t.pointee.fd) }
            var start = UnsafeMutableRawPointer(data), total = length
            if vnet {
                start = data - VirtioNet.legacyHeaderSize
                start.storeBytes(of: UInt64(0), as: UInt64.self)
                start.storeBytes(of: UInt16(0), toByteOffset: 8, as: UInt16.self)
                total &+= VirtioNet.legacyHeaderSize
            }
            let r = Glibc.send(rxFd, start, total, 0x40 /* MSG_DONTWAIT */)
            if r >= 0 { return .sent }
            return errno == EAGAIN || errno == ENOBUFS ? .wouldBlock : .failed
        }
        let f = t.pointee.map + t.pointee.head &* t.pointee.frameSize
        if vsw_ring_load_status(f + Int(VSW_TP2_STATUS)) != 0 { return .wouldBlock }   // not yet sent: ring full
        (f + Int(VSW_TP2_DATA)).copyMemory(from: data, byteCount: length)
        f.storeBytes(of: UInt32(truncatingIfNeeded: length), toByteOffset: Int(VSW_TP2_LEN), as: UInt32.self)
        vsw_ring_store_status(f + Int(VSW_TP2_STATUS), UInt32(VSW_TP_STATUS_SEND_REQUEST))
        t.pointee.head = t.pointee.head &+ 1 == t.pointee.frameCount ? 0 : t.pointee.head &+ 1
        t.pointee.pending &+= 1
        t.pointee.pendingBytes &+= length
        return .queued
    }

    /// Any thread: sends a frame carrying offload metadata (FrameMeta.offload). A GSO super-frame goes
    /// out as one unit through the RX socket (PACKET_VNET_HDR) behind its virtio_net_hdr — the
    /// interface or its peer segments it (a veth passes it on as is) — after the frames already on
    /// this thread's TX ring (kicked first: no reordering). A frame with only a partial checksum gets
    /// it completed and joins the ring like any frame.
    @inline(__always)
    public func sendOffloaded(queue: Int, batch: FrameBatch, frame: Int) -> SendResultKind {
        if !batch.isGSO(frame) {
            if !batch.completeChecksum(frame) { return .failed }
            return send(queue: queue, batch.data(frame), length: Int(batch.meta[frame].length))
        }
        let t = tx + (queue % txCount)
        if t.pointee.pending > 0 { _ = vsw_tpacket_tx_kick(t.pointee.fd) }   // reported by the next flush
        let h = batch.stageVnetHeader(frame, size: VirtioNet.legacyHeaderSize)
        let r = Glibc.send(rxFd, h, Int(batch.meta[frame].length) &+ VirtioNet.legacyHeaderSize, 0x40 /* MSG_DONTWAIT */)
        if r >= 0 { return .sent }
        return errno == EAGAIN || errno == ENOBUFS ? .wouldBlock : .failed
    }

    /// Any thread: one sendto() for the frames queued on its TX ring. Returns (frames, bytes, errno or 0).
    @inline(__always)
    public func flush(queue: Int) -> (frames: Int, bytes: Int, error: Int32) {
        let t = tx + (queue % txCount)
        let frames = t.pointee.pending, bytes = t.pointee.pendingBytes
        if frames == 0 { return (0, 0, 0) }
        t.pointee.pending = 0
        t.pointee.pendingBytes = 0
        if vsw_tpacket_tx_kick(t.pointee.fd) >= 0 { return (frames, bytes, 0) }
        return (frames, bytes, errno)
    }
}

public enum SendResultKind { case sent, queued, wouldBlock, failed }

/// The rings of a netdev port (module header: what each value trades). `current` is `standard` with any
/// `VSWITCH_NETDEV_*` environment overrides (VERSION, BLOCK, BLOCKS, FRAME, TOV, TXFRAMES, RCVBUF), read
/// once: for measuring other settings without a rebuild.
public struct NetdevRingTuning: Equatable, Sendable {
    /// 2 = TPACKET_V2 (one status word per frame), 3 = TPACKET_V3 (blocks retired when full or after `retireMs`).
    public var version: Int
    public var blockSize: Int
    public var blockCount: Int
    /// V2: bytes per ring frame (a frame that does not fit is read whole from the socket: PACKET_COPY_THRESH).
    public var frameSize: Int
    /// V3: block retire timeout (ms; 1 is the kernel's minimum).
    public var retireMs: Int
    public var txFrameSize: Int
    public var txFrames: Int
    /// SO_RCVBUF of the RX socket (V2: bounds the whole-frame copies queued beside the ring); 0 = default.
    public var rcvbuf: Int

    public init(version: Int, blockSize: Int, blockCount: Int, frameSize: Int, retireMs: Int, txFrameSize: Int,
                txFrames: Int, rcvbuf: Int) {
        self.version = version; self.blockSize = blockSize; self.blockCount = blockCount; self.frameSize = frameSize
        self.retireMs = retireMs; self.txFrameSize = txFrameSize; self.txFrames = txFrames; self.rcvbuf = rcvbuf
    }

    public var ringBytes: Int { blockSize * blockCount }

    /// TPACKET_V3, the settings before issue 7's tuning (32 blocks of 128 KiB, 1 ms).
    public static let v3 = NetdevRingTuning(version: 3, blockSize: 1 << 17, blockCount: 32, frameSize: 2048, retireMs: 1,
                                            txFrameSize: 2048, txFrames: 256, rcvbuf: 0)
    /// `vswitchd --netdev-ring latency` (the default): TPACKET_V2, 8,192 frames of 2 KiB (16 MiB), whole-frame
    /// copies of larger frames bounded by an 8 MiB socket buffer.
    public static let latency = NetdevRingTuning(version: 2, blockSize: 1 << 16, blockCount: 256, frameSize: 2048, retireMs: 1,
                                                 txFrameSize: 2048, txFrames: 256, rcvbuf: 8 << 20)
    /// `vswitchd --netdev-ring throughput`: TPACKET_V3, 128 blocks of 128 KiB (16 MiB), 1 ms retire timeout.
    public static let throughput = NetdevRingTuning(version: 3, blockSize: 1 << 17, blockCount: 128, frameSize: 2048, retireMs: 1,
                                                    txFrameSize: 2048, txFrames: 256, rcvbuf: 0)
    public static let standard = latency

    /// `standard` with the `VSWITCH_NETDEV_*` overrides.
    public static let current: NetdevRingTuning = standard.withEnvironmentOverrides()

    /// This tuning with any `VSWITCH_NETDEV_*` environment overrides applied.
    public func withEnvironmentOverrides() -> NetdevRingTuning {
        var t = self
        func env(_ k: String) -> Int? { getenv("VSWITCH_NETDEV_" + k).flatMap { Int(String(cString: $0)) } }
        if let v = env("VERSION") { t.version = v }
        if let v = env("BLOCK") { t.blockSize = v }
        if let v = env("BLOCKS") { t.blockCount = v }
        if let v = env("FRAME") { t.frameSize = v }
        if let v = env("TOV") { t.retireMs = v }
        if let v = env("TXFRAMES") { t.txFrames = v }
        if let v = env("RCVBUF") { t.rcvbuf = v }
        return t
    }
}

/// The control thread's handle on a netdev port: opens and closes its sockets and rings.
public final class NetdevPort {
    public let interface: String
    public let ifindex: Int32
    public let ring: UnsafeMutablePointer<NetdevRing>
    public let slot: Int32
    public let tuning: NetdevRingTuning

    /// Opens the rings on `interface` with `txQueues` TX rings (one per forwarding thread).
    public init(interface: String, txQueues: Int, tuning: NetdevRingTuning = .current) throws {
        let idx = Int32(if_nametoindex(interface))
        guard idx > 0 else { throw SystemError(operation: "attach netdev port to", errno: ENODEV, context: "\"\(interface)\"") }
        var map: UnsafeMutableRawPointer?
        var vnet: Int32 = 0
        let fd = vsw_tpacket_rx_open_ring(idx, Int32(tuning.version), UInt32(tuning.blockSize), UInt32(tuning.blockCount),
                                          UInt32(tuning.frameSize), UInt32(tuning.retireMs), tuning.version == 2 ? 3 : 1,
                                          Int32(tuning.rcvbuf), &map, &vnet)
        guard fd >= 0, let rxMap = map else {
            throw SystemError(operation: "open a TPACKET_V\(tuning.version) RX ring on", errno: errno, context: "\"\(interface)\"")
        }
        let n = max(1, txQueues)
        let tx = UnsafeMutablePointer<NetdevTxRing>.allocate(capacity: n)
        var opened = 0
        func undo() {
            for k in 0..<opened { munmap(tx[k].map, tx[k].frameSize * tx[k].frameCount); Glibc.close(tx[k].fd) }
            tx.deallocate()
            munmap(rxMap, tuning.ringBytes)
            Glibc.close(fd)
        }
        for k in 0..<n {
            var tmap: UnsafeMutableRawPointer?
            let tfd = vsw_tpacket_tx_open(idx, UInt32(tuning.txFrameSize), UInt32(tuning.txFrames), &tmap)
            guard tfd >= 0, let m = tmap else {
                let e = errno
                undo()
                throw SystemError(operation: "open a TPACKET_V2 TX ring on", errno: e, context: "\"\(interface)\"")
            }
            (tx + k).initialize(to: NetdevTxRing(fd: tfd, map: m, frameSize: tuning.txFrameSize, frameCount: (tuning.txFrames + 15) / 16 * 16))
            opened += 1
        }
        ring = .allocate(capacity: 1)
        ring.initialize(to: NetdevRing(rxFd: fd, rxMap: rxMap, blockSize: tuning.blockSize, blockCount: tuning.blockCount,
                                       txCount: n, tx: tx))
        ring.pointee.vnet = vnet != 0
        ring.pointee.version = tuning.version == 2 ? 2 : 3
        ring.pointee.frameSize = tuning.frameSize
        ring.pointee.frameCount = tuning.blockSize / tuning.frameSize * tuning.blockCount
        guard let s = PortRegistry.register(UnsafeMutableRawPointer(ring)) else {
            ring.deallocate()
            undo()
            throw SystemError(operation: "attach netdev port to", errno: ENOSPC, context: "\"\(interface)\"", detail: "port registry full")
        }
        self.interface = interface
        self.ifindex = idx
        self.tuning = tuning
        slot = s
        open = true
    }

    /// PACKET_STATISTICS of the RX socket since the last call (the kernel resets them): frames the ring
    /// took and frames it dropped because it was full.
    public func ringStatistics() -> (packets: UInt64, drops: UInt64)? {
        guard open else { return nil }
        var p: UInt32 = 0, d: UInt32 = 0
        guard vsw_tpacket_stats(ring.pointee.rxFd, &p, &d) == 0 else { return nil }
        ringPackets &+= UInt64(p); ringDrops &+= UInt64(d)
        return (UInt64(p), UInt64(d))
    }

    /// Control thread: the ring's counters since the port opened — frames the kernel put in the ring
    /// (`packets`), frames it dropped for a full ring (`drops`), frames read whole beside the ring
    /// (`copied`, TPACKET_V2), frames dropped for not fitting a batch buffer (`oversize`). The last two
    /// are written by the owning forwarding thread (plain loads: a monitoring read).
    public func ringCounters() -> [String: UInt64] {
        _ = ringStatistics()
        guard open else { return [:] }
        return ["packets": ringPackets, "drops": ringDrops, "copied": ring.pointee.copied, "oversize": ring.pointee.oversize]
    }
    var ringPackets: UInt64 = 0, ringDrops: UInt64 = 0

    var open: Bool

    /// The RX socket (PortEntry handle is `slot`, not this).
    public var fd: Int32 { ring.pointee.rxFd }

    /// Closes the sockets (promiscuous membership dropped) and frees the rings. Call only after a
    /// snapshot without the port has been published.
    public func close() {
        guard open else { return }
        open = false
        PortRegistry.unregister(slot)
        let r = ring.pointee
        for k in 0..<r.txCount {
            munmap(r.tx[k].map, r.tx[k].frameSize * r.tx[k].frameCount)
            Glibc.close(r.tx[k].fd)
        }
        r.tx.deallocate()
        munmap(r.rxMap, r.blockSize * r.blockCount)
        Glibc.close(r.rxFd)
        ring.deallocate()
    }

    deinit { close() }
}
