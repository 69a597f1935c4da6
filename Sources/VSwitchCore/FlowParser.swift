// FlowParser: extracts the L2–L4 fields ACLs and guards look at (FlowKey) from
// a frame in any tag form (up to two tags of 0x8100 / 0x88A8). Called only for
// ports whose policy needs it. Bounds-checked against the frame length; a
// truncated IP header leaves `ipVersion` at 0, a short or fragmented L4 header
// leaves `hasL4` false (so port/ICMP rules don't match it). IPv6 extension
// headers hop-by-hop, routing, destination options and fragment are skipped.

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

    /// `flowKey` written in place (the engine's per-slot key array): the key is built where it is
    /// read, never returned by value and copied — a copy read back with 16-byte loads right after
    /// the parser's narrow stores stalled on store forwarding (perf annotate, issue 3).
    @inlinable @inline(__always)
    func parseFlowKey(_ i: Int, vlan: UInt16, pcp: UInt8, into k: inout FlowKey) {
        k = FlowKey()
        let len = Int(meta[i].length)
        k.dst = destination(i)
        k.src = source(i)
        k.vlan = vlan
        k.pcp = pcp
        var off = 12
        var et = be16(i, at: 12)
        var tags = 0
        while (et == EtherType.vlan || et == EtherType.qinq) && tags < 2 && off + 6 <= len {
            off += 4
            et = be16(i, at: off)
            tags += 1
        }
        k.etherType = et
        off += 2
        var l4 = 0
        var fragmented = false
        if et == EtherType.ipv4 && len >= off + 20 {
            let ihl = Int(byte(i, at: off) & 0x0F) * 4
            guard ihl >= 20, len >= off + ihl else { return }
            k.ipVersion = 4
            k.proto = byte(i, at: off + 9)
            fragmented = be16(i, at: off + 6) & 0x1FFF != 0
            k.srcIPLo = UInt64(be32(i, at: off + 12))
            k.dstIPLo = UInt64(be32(i, at: off + 16))
            l4 = off + ihl
        } else if et == EtherType.ipv6 && len >= off + 40 {
            k.ipVersion = 6
            var nh = byte(i, at: off + 6)
            k.srcIPHi = be64(i, at: off + 8); k.srcIPLo = be64(i, at: off + 16)
            k.dstIPHi = be64(i, at: off + 24); k.dstIPLo = be64(i, at: off + 32)
            l4 = off + 40
            var ext = 0
            while ext < 4 && len >= l4 + 8 {
                if nh == 0 || nh == 43 || nh == 60 {
                    let next = byte(i, at: l4)
                    l4 += (Int(byte(i, at: l4 + 1)) + 1) * 8
                    nh = next
                } else if nh == 44 {
                    fragmented = fragmented || be16(i, at: l4 + 2) >> 3 != 0
                    nh = byte(i, at: l4)
                    l4 += 8
                } else { break }
                ext += 1
            }
            k.proto = nh
        } else {
            return
        }
        if fragmented { return }
        switch k.proto {
        case 6, 17:
            if len >= l4 + 4 { k.srcPort = be16(i, at: l4); k.dstPort = be16(i, at: l4 + 2); k.hasL4 = true }
        case 1, 58:
            if len >= l4 + 2 { k.srcPort = UInt16(byte(i, at: l4)); k.dstPort = UInt16(byte(i, at: l4 + 1)); k.hasL4 = true }
        default:
            break
        }
    }
}
