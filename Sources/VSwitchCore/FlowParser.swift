// FlowParser: extracts the L2–L4 fields ACLs and guards look at (FlowKey) from
// a frame in any tag form (up to two tags of 0x8100 / 0x88A8). Called only for
// ports whose policy needs it. Bounds-checked against the frame length; a
// truncated IP header leaves `ipVersion` at 0, a short or fragmented L4 header
// leaves `hasL4` false (so port/ICMP rules don't match it). IPv6 extension
// headers (hop-by-hop, routing, destination options, fragment, AH, mobility,
// HIP, shim6) are followed to the upper-layer header, however many there are;
// a chain that runs past the frame gives `ipVersion == FlowKey.unparsableIPv6`,
// which the engine drops as malformed (`FlowWords.isUnparsable`).

import VSwitchPacket
import VSwitchPolicy

public extension FrameBatch {
    @inlinable @inline(__always)
    func byte(_ i: Int, at offset: Int) -> UInt8 { data(i).load(fromByteOffset: offset, as: UInt8.self) }

    @inlinable @inline(__always)
    func be32(_ i: Int, at offset: Int) -> UInt32 {
        UInt32(bigEndian: data(i).loadUnaligned(fromByteOffset: offset, as: UInt32.self))
    }

    @inlinable @inline(__always)
    func be64(_ i: Int, at offset: Int) -> UInt64 {
        UInt64(bigEndian: data(i).loadUnaligned(fromByteOffset: offset, as: UInt64.self))
    }

    /// The flow key of frame `i` (length >= 14 checked by the caller); `vlan`/`pcp` are the switch's.
    @inlinable
    func flowKey(_ i: Int, vlan: UInt16, pcp: UInt8) -> FlowKey {
        var k = FlowKey()
        parseFlowKey(i, vlan: vlan, pcp: pcp, into: &k)
        return k
    }

    /// `flowKey` written in place (the engine's per-slot key array), as eight full-word stores of
    /// `flowWords`: the fields are assembled in registers, never as narrow stores that a wider load
    /// reads back (store forwarding fails on that; issue 3).
    @inlinable @inline(__always)
    func parseFlowKey(_ i: Int, vlan: UInt16, pcp: UInt8, into k: inout FlowKey) {
        let w = flowWords(i, vlan: vlan, pcp: pcp, src: source(i), dst: destination(i))
        withUnsafeMutablePointer(to: &k) { w.store(UnsafeMutableRawPointer($0)) }
    }

    /// The flow key of frame `i` as its eight 64-bit words (FlowKey's layout, `FlowWords`), built in
    /// registers: the ingress policy masks, hashes and compares them for the ACL verdict cache without
    /// reading the key back from memory. `src` / `dst` are the frame's MACs (`source(i)`,
    /// `destination(i)`, already read by the caller). Field for field the same as the parser it replaced
    /// (FlowParserTests compares them on random frames).
    ///
    /// The common case, an unfragmented IPv4 TCP or UDP packet without IP options behind at most two
    /// tags, is read inline; everything else goes to `flowWordsGeneral` (out of line).
    @_transparent
    func flowWords(_ i: Int, vlan: UInt16, pcp: UInt8, src: UInt64, dst: UInt64) -> FlowWords {
        let len = Int(meta[i].length)
        var off = 12
        var et = be16(i, at: 12)
        if (et == EtherType.vlan || et == EtherType.qinq) && len >= 18 {
            off = 16
            et = be16(i, at: 16)
            if (et == EtherType.vlan || et == EtherType.qinq) && len >= 22 { off = 20; et = be16(i, at: 20) }
        }
        return flowWords(i, etherType: et, l3: off &+ 2, vlan: vlan, pcp: pcp, src: src, dst: dst)
    }

    /// `flowWords` when the caller already found the EtherType behind the frame's tags (at most two, as
    /// above) and the offset `l3` of what follows it (classify's first stage does, for its own checks).
    @_transparent
    func flowWords(_ i: Int, etherType et: UInt16, l3: Int, vlan: UInt16, pcp: UInt8, src: UInt64, dst: UInt64) -> FlowWords {
        let len = Int(meta[i].length)
        let d = data(i)
        if et == EtherType.ipv4 && len >= l3 &+ 24 {
            let verIHL = d.load(fromByteOffset: l3, as: UInt8.self)
            let proto = d.load(fromByteOffset: l3 &+ 9, as: UInt8.self)
            let frag = UInt16(bigEndian: d.loadUnaligned(fromByteOffset: l3 &+ 6, as: UInt16.self)) & 0x1FFF
            if verIHL & 0x0F == 5 && frag == 0 && (proto == 6 || proto == 17) {
                let ports = UInt64(UInt16(bigEndian: d.loadUnaligned(fromByteOffset: l3 &+ 20, as: UInt16.self)))
                    | UInt64(UInt16(bigEndian: d.loadUnaligned(fromByteOffset: l3 &+ 22, as: UInt16.self))) << 16
                return FlowWords(w0: src, w1: dst,
                                 w2: UInt64(et) | UInt64(vlan) << 16 | UInt64(pcp) << 32 | 4 << 40 | UInt64(proto) << 48 | 1 << 56,
                                 w3: 0, w4: UInt64(be32(i, at: l3 &+ 12)), w5: 0, w6: UInt64(be32(i, at: l3 &+ 16)), w7: ports)
            }
        }
        return flowWordsGeneral(i, vlan: vlan, pcp: pcp, src: src, dst: dst)
    }

    /// `flowWords` for any frame (the parser in full).
    @inlinable @inline(never)
    func flowWordsGeneral(_ i: Int, vlan: UInt16, pcp: UInt8, src: UInt64, dst: UInt64) -> FlowWords {
        let len = Int(meta[i].length)
        var et: UInt16 = 0
        var ipVersion: UInt64 = 0, proto: UInt64 = 0, hasL4: UInt64 = 0
        var srcIPHi: UInt64 = 0, srcIPLo: UInt64 = 0, dstIPHi: UInt64 = 0, dstIPLo: UInt64 = 0
        var ports: UInt64 = 0
        parse: do {
            var off = 12
            et = be16(i, at: 12)
            var tags = 0
            while (et == EtherType.vlan || et == EtherType.qinq) && tags < 2 && off + 6 <= len {
                off += 4
                et = be16(i, at: off)
                tags += 1
            }
            off += 2
            var l4 = 0
            var fragmented = false
            var p: UInt8
            if et == EtherType.ipv4 && len >= off + 20 {
                let ihl = Int(byte(i, at: off) & 0x0F) * 4
                guard ihl >= 20, len >= off + ihl else { break parse }
                ipVersion = 4
                p = byte(i, at: off + 9)
                fragmented = be16(i, at: off + 6) & 0x1FFF != 0
                srcIPLo = UInt64(be32(i, at: off + 12))
                dstIPLo = UInt64(be32(i, at: off + 16))
                l4 = off + ihl
            } else if et == EtherType.ipv6 && len >= off + 40 {
                ipVersion = 6
                var chainComplete = false, firstFragment = false
                var nh = byte(i, at: off + 6)
                srcIPHi = be64(i, at: off + 8); srcIPLo = be64(i, at: off + 16)
                dstIPHi = be64(i, at: off + 24); dstIPLo = be64(i, at: off + 32)
                l4 = off + 40
                // The whole chain, however long (each header is at least 8 bytes, so the walk is bounded by
                // the frame): a cap would let a sixth header hide the upper layer from ACLs and guards.
                chain: while true {
                    switch nh {
                    case 0, 43, 60, 135, 139, 140:   // hop-by-hop, routing, destination options, mobility, HIP, shim6
                        guard len >= l4 + 8 else { break chain }
                        let next = byte(i, at: l4)
                        l4 += (Int(byte(i, at: l4 + 1)) + 1) * 8
                        nh = next
                    case 51:                          // AH: length in 4-byte units, minus 2
                        guard len >= l4 + 8 else { break chain }
                        let next = byte(i, at: l4)
                        l4 += (Int(byte(i, at: l4 + 1)) + 2) * 4
                        nh = next
                    case 44:                          // fragment
                        guard len >= l4 + 8 else { break chain }
                        nh = byte(i, at: l4)
                        if be16(i, at: l4 + 2) >> 3 != 0 {
                            // A later fragment: what follows is payload, not headers.
                            fragmented = true
                            chainComplete = true
                            break chain
                        }
                        firstFragment = be16(i, at: l4 + 2) & 1 != 0
                        l4 += 8
                    default:
                        chainComplete = true
                        break chain
                    }
                }
                // A chain that runs past the frame (a truncated packet, or a first fragment that does not hold
                // the whole chain and the start of the upper-layer header, RFC 7112): the upper layer cannot
                // be known, and an ACL or a guard must not guess. The engine drops it as malformed.
                guard chainComplete, l4 <= len, !(firstFragment && nh != 59 && len < l4 + 4) else {
                    ipVersion = UInt64(FlowKey.unparsableIPv6)
                    break parse
                }
                p = nh
            } else {
                break parse
            }
            proto = UInt64(p)
            if fragmented { break parse }
            switch p {
            case 6, 17:
                if len >= l4 + 4 {
                    ports = UInt64(be16(i, at: l4)) | UInt64(be16(i, at: l4 + 2)) << 16
                    hasL4 = 1
                }
            case 1, 58:
                if len >= l4 + 2 {
                    ports = UInt64(byte(i, at: l4)) | UInt64(byte(i, at: l4 + 1)) << 16
                    hasL4 = 1
                }
            default:
                break
            }
        }
        return FlowWords(w0: src, w1: dst,
                         w2: UInt64(et) | UInt64(vlan) << 16 | UInt64(pcp) << 32 | ipVersion << 40 | proto << 48 | hasL4 << 56,
                         w3: srcIPHi, w4: srcIPLo, w5: dstIPHi, w6: dstIPLo, w7: ports)
    }
}

/// A FlowKey as its eight 64-bit words, in registers (FlowKey's layout: src | dst | etherType vlan pcp
/// ipVersion proto hasL4 | srcIPHi | srcIPLo | dstIPHi | dstIPLo | srcPort dstPort reserved; x86-64 and
/// arm64 are little-endian). `FlowParserTests` pins it against FlowKey's fields.
public struct FlowWords {
    public var w0, w1, w2, w3, w4, w5, w6, w7: UInt64

    @inlinable @inline(__always)
    public init(w0: UInt64, w1: UInt64, w2: UInt64, w3: UInt64, w4: UInt64, w5: UInt64, w6: UInt64, w7: UInt64) {
        self.w0 = w0; self.w1 = w1; self.w2 = w2; self.w3 = w3; self.w4 = w4; self.w5 = w5; self.w6 = w6; self.w7 = w7
    }

    @inlinable @inline(__always) public var ipVersion: UInt8 { UInt8(truncatingIfNeeded: w2 >> 40) }
    @inlinable @inline(__always) public var proto: UInt8 { UInt8(truncatingIfNeeded: w2 >> 48) }
    @inlinable @inline(__always) public var hasL4: Bool { w2 >> 56 != 0 }
    /// An IPv6 packet whose extension-header chain does not reach its upper-layer header inside the frame.
    @inlinable @inline(__always) public var isUnparsable: Bool { ipVersion == FlowKey.unparsableIPv6 }
    @inlinable @inline(__always) public var srcPort: UInt16 { UInt16(truncatingIfNeeded: w7) }

    /// Writes the key (a FlowKey's memory) as four 16-byte stores: the verdict cache reads it back as
    /// four 16-byte loads, each of which store forwarding serves from exactly one store.
    @inlinable @inline(__always)
    public func store(_ p: UnsafeMutableRawPointer) {
        p.storeBytes(of: SIMD2(w0, w1), toByteOffset: 0, as: SIMD2<UInt64>.self)
        p.storeBytes(of: SIMD2(w2, w3), toByteOffset: 16, as: SIMD2<UInt64>.self)
        p.storeBytes(of: SIMD2(w4, w5), toByteOffset: 32, as: SIMD2<UInt64>.self)
        p.storeBytes(of: SIMD2(w6, w7), toByteOffset: 48, as: SIMD2<UInt64>.self)
    }
}
