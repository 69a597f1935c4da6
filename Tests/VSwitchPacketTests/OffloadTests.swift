import VSwitchPacket
import XCTest

// Software segmentation and checksum completion (VSwitchPacket/Offload.swift), checked against an
// independent, byte-array implementation of the Internet checksum and of the TCP/IP header rules.

/// RFC 1071 over a byte array, the obvious way (reference for the tests).
func refSum(_ b: [UInt8], _ initial: UInt32 = 0) -> UInt32 {
    var s = initial
    var i = 0
    while i + 1 < b.count { s += UInt32(b[i]) << 8 | UInt32(b[i + 1]); i += 2 }
    if i < b.count { s += UInt32(b[i]) << 8 }
    return s
}
func refFold(_ s: UInt32) -> UInt16 {
    var s = s
    while s >> 16 != 0 { s = (s & 0xFFFF) + (s >> 16) }
    return UInt16(s)
}
func be16(_ b: [UInt8], _ o: Int) -> Int { Int(b[o]) << 8 | Int(b[o + 1]) }
func be32(_ b: [UInt8], _ o: Int) -> UInt32 { UInt32(b[o]) << 24 | UInt32(b[o + 1]) << 16 | UInt32(b[o + 2]) << 8 | UInt32(b[o + 3]) }

struct TCPFrameSpec {
    var v6 = false
    var tags: [UInt16] = []          // VIDs of 802.1Q tags
    var payload = 5000
    var mss = 1448
    var flags: UInt8 = 0x18 | 0x01 | 0x80   // PSH ACK FIN CWR
    var seq: UInt32 = 0xFFFF_F000   // wraps inside the frame
    var ipID: UInt16 = 0xFFFE
}

/// A GSO super-frame as a sender's kernel hands it over: IP lengths of the whole frame, the TCP checksum
/// field holding the pseudo-header sum (partial checksum), and the L3/L4 offsets.
func superFrame(_ s: TCPFrameSpec) -> (bytes: [UInt8], l3: Int, l4: Int, payload: [UInt8]) {
    var b: [UInt8] = [0x02, 0, 0, 0, 0, 0x02, 0x02, 0, 0, 0, 0, 0x01]
    for vid in s.tags { b += [0x81, 0x00, UInt8(vid >> 8), UInt8(vid & 0xFF)] }
    b += s.v6 ? [0x86, 0xDD] : [0x08, 0x00]
    let l3 = b.count
    let payload = (0..<s.payload).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ 3) }
    let tcpLen = 20 + 12 + s.payload   // 12 bytes of options (NOP NOP timestamp)
    if s.v6 {
        b += [0x60, 0, 0, 0, UInt8(tcpLen >> 8), UInt8(tcpLen & 0xFF), 6, 64]
        b += (0..<16).map { UInt8(0x20 + $0) } + (0..<16).map { UInt8(0x40 + $0) }
    } else {
        let total = 20 + tcpLen
        b += [0x45, 0, UInt8(total >> 8), UInt8(total & 0xFF), UInt8(s.ipID >> 8), UInt8(s.ipID & 0xFF), 0x40, 0, 64, 6, 0, 0,
              10, 0, 0, 1, 10, 0, 0, 2]
        let c = ~refFold(refSum(Array(b[l3..<l3 + 20])))
        b[l3 + 10] = UInt8(c >> 8); b[l3 + 11] = UInt8(c & 0xFF)
    }
    let l4 = b.count
    b += [0x9C, 0x40, 0x14, 0x51]
    b += [UInt8(s.seq >> 24), UInt8(s.seq >> 16 & 0xFF), UInt8(s.seq >> 8 & 0xFF), UInt8(s.seq & 0xFF)]
    b += [0, 0, 0x10, 0x01, 0x80, s.flags, 0x01, 0xF5, 0, 0, 0, 0]
    b += [1, 1, 8, 10, 1, 2, 3, 4, 5, 6, 7, 8]
    b += payload
    // Partial checksum: the pseudo-header sum (not complemented), as CHECKSUM_PARTIAL leaves it.
    let pseudo = pseudoSum(b, l3: l3, v6: s.v6, tcpLen: tcpLen)
    let p = refFold(pseudo)
    b[l4 + 16] = UInt8(p >> 8); b[l4 + 17] = UInt8(p & 0xFF)
    return (b, l3, l4, payload)
}

func pseudoSum(_ b: [UInt8], l3: Int, v6: Bool, tcpLen: Int) -> UInt32 {
    let addrs = v6 ? Array(b[l3 + 8..<l3 + 40]) : Array(b[l3 + 12..<l3 + 20])
    return refSum(addrs) + 6 + UInt32(tcpLen)
}

/// Checks a segment as a receiving kernel would: IP header checksum, lengths, full TCP checksum.
func verifySegment(_ seg: [UInt8], l3: Int, v6: Bool, file: StaticString = #filePath, line: UInt = #line) -> (seq: UInt32, flags: UInt8, payload: [UInt8], id: Int) {
    var l4 = l3 + 40
    var id = 0
    if !v6 {
        let ihl = Int(seg[l3] & 0x0F) * 4
        l4 = l3 + ihl
        XCTAssertEqual(refFold(refSum(Array(seg[l3..<l4]))), 0xFFFF, "IPv4 header checksum", file: file, line: line)
        XCTAssertEqual(be16(seg, l3 + 2), seg.count - l3, "IPv4 total length", file: file, line: line)
        id = be16(seg, l3 + 4)
    } else {
        XCTAssertEqual(be16(seg, l3 + 4), seg.count - l3 - 40, "IPv6 payload length", file: file, line: line)
    }
    let tcpLen = seg.count - l4
    XCTAssertEqual(refFold(refSum(Array(seg[l4...]), pseudoSum(seg, l3: l3, v6: v6, tcpLen: tcpLen))), 0xFFFF,
                   "TCP checksum", file: file, line: line)
    let thl = Int(seg[l4 + 12] >> 4) * 4
    return (be32(seg, l4 + 4), seg[l4 + 13], Array(seg[(l4 + thl)...]), id)
}

final class OffloadTests: XCTestCase {
    var batch = FrameBatch(capacity: 4, dataRoom: VirtioNet.maxFrame)
    var scratch = FrameBatch(capacity: 64, dataRoom: 9216 + 64)
    override func tearDown() { batch.deallocate(); scratch.deallocate() }

    func load(_ s: TCPFrameSpec) -> (l3: Int, l4: Int, payload: [UInt8]) {
        let f = superFrame(s)
        batch.count = 0
        XCTAssertTrue(batch.append(f.bytes))
        batch.setVnetHeader(0, flags: VirtioNet.needsCsum, gsoType: s.v6 ? VirtioNet.gsoTCPv6 : VirtioNet.gsoTCPv4,
                            hdrLen: f.l4 + 32, gsoSize: s.mss, csumStart: f.l4, csumOffset: 16)
        return (f.l3, f.l4, f.payload)
    }

    func segmentAll() -> [[UInt8]] {
        var out: [[UInt8]] = []
        var from = 0
        while true {
            let r = batch.segment(0, from: from, into: &scratch)
            XCTAssertFalse(r.invalid)
            for k in 0..<r.count { out.append(scratch.bytes(k)) }
            if r.done || r.count == 0 { break }
            from = r.next
        }
        return out
    }

    func checkSegments(_ s: TCPFrameSpec, l3: Int, payload: [UInt8], extraTag: Int = 0, file: StaticString = #filePath, line: UInt = #line) {
        let segs = segmentAll()
        let expected = (s.payload + s.mss - 1) / s.mss
        XCTAssertEqual(segs.count, expected, file: file, line: line)
        var joined: [UInt8] = []
        for (k, seg) in segs.enumerated() {
            let v = verifySegment(seg, l3: l3 + extraTag, v6: s.v6, file: file, line: line)
            XCTAssertEqual(v.seq, s.seq &+ UInt32(k * s.mss), "sequence number", file: file, line: line)
            let last = k == segs.count - 1
            XCTAssertEqual(v.flags & 0x01 != 0, last && s.flags & 0x01 != 0, "FIN only on the last", file: file, line: line)
            XCTAssertEqual(v.flags & 0x08 != 0, last && s.flags & 0x08 != 0, "PSH only on the last", file: file, line: line)
            XCTAssertEqual(v.flags & 0x80 != 0, k == 0 && s.flags & 0x80 != 0, "CWR only on the first", file: file, line: line)
            XCTAssertEqual(v.flags & 0x10, 0x10, "ACK on all", file: file, line: line)
            if !s.v6 { XCTAssertEqual(v.id, Int(s.ipID &+ UInt16(k))) }
            XCTAssertEqual(v.payload.count, last ? s.payload - (segs.count - 1) * s.mss : s.mss, file: file, line: line)
            joined += v.payload
        }
        XCTAssertEqual(joined, payload, "payload reassembles", file: file, line: line)
    }

    func testIPv4SegmentsLastShort() {
        let s = TCPFrameSpec()
        let f = load(s)
        XCTAssertTrue(batch.isGSO(0))
        checkSegments(s, l3: f.l3, payload: f.payload)
    }

    func testIPv6Segments() {
        let s = TCPFrameSpec(v6: true, payload: 64000, mss: 1428)
        let f = load(s)
        checkSegments(s, l3: f.l3, payload: f.payload)   // 45 segments, last short
    }

    func testExactMultipleAndJumboMSS() {
        let s = TCPFrameSpec(payload: 8948 * 3, mss: 8948)
        let f = load(s)
        checkSegments(s, l3: f.l3, payload: f.payload)
    }

    func testMoreSegmentsThanTheScratchHolds() {
        let s = TCPFrameSpec(payload: 60000, mss: 536)   // 112 segments: two scratch fills
        let f = load(s)
        checkSegments(s, l3: f.l3, payload: f.payload)
    }

    func testTaggedFramePoppedAtEgress() {
        // Received with an 802.1Q tag (csum_start counts it); the access port pops it before sending.
        let s = TCPFrameSpec(tags: [10])
        let f = load(s)
        batch.popTag(0)
        XCTAssertEqual(batch.tagDelta(0), -4)
        checkSegments(s, l3: f.l3, payload: f.payload, extraTag: -4)
        let staged = batch.stageVnetHeader(0)
        XCTAssertEqual(Int(staged.load(fromByteOffset: 6, as: UInt16.self)), f.l4 - 4, "csum_start shifted")
    }

    func testTagPushedAtEgressIPv6() {
        let s = TCPFrameSpec(v6: true, payload: 3000)
        let f = load(s)
        batch.pushTag(0, tpid: 0x8100, tci: 20)
        XCTAssertEqual(batch.tagDelta(0), 4)
        checkSegments(s, l3: f.l3, payload: f.payload, extraTag: 4)
        let staged = batch.stageVnetHeader(0)
        XCTAssertEqual(Int(staged.load(fromByteOffset: 6, as: UInt16.self)), f.l4 + 4, "csum_start shifted")
        XCTAssertEqual(Int(staged.load(fromByteOffset: 2, as: UInt16.self)), f.l4 + 32 + 4, "hdr_len shifted")
        XCTAssertEqual(Int(staged.load(fromByteOffset: 4, as: UInt16.self)), 1448, "gso_size kept")
    }

    func testCompleteChecksumInPlace() {
        for (v6, tags, len) in [(false, [UInt16](), 1000), (true, [UInt16](), 777), (false, [UInt16(5)], 1), (true, [UInt16(7)], 1401)] {
            let s = TCPFrameSpec(v6: v6, tags: tags, payload: len, mss: 1448)
            let f = superFrame(s)
            batch.count = 0
            XCTAssertTrue(batch.append(f.bytes))
            batch.setVnetHeader(0, flags: VirtioNet.needsCsum, gsoType: VirtioNet.gsoNone, hdrLen: 0, gsoSize: 0,
                                csumStart: f.l4, csumOffset: 16)
            if !tags.isEmpty { batch.popTag(0) }
            XCTAssertTrue(batch.completeChecksum(0))
            XCTAssertEqual(batch.meta[0].flags & FrameMeta.offload, 0, "no offload left")
            _ = verifySegment(batch.bytes(0), l3: f.l3 - (tags.isEmpty ? 0 : 4), v6: v6)
        }
    }

    func testWireCostCountsEverySegmentsHeaders() {
        let s = TCPFrameSpec(payload: 5000, mss: 1448)
        let f = load(s)
        let hdr = f.l4 + 32
        XCTAssertEqual(batch.wireCost(0), UInt64(hdr + 5000 + 3 * hdr))
    }

    func testChecksumMatchesReference() {
        var rng = SystemRandomNumberGenerator()
        for len in [0, 1, 2, 3, 7, 8, 9, 15, 16, 17, 1499, 1500, 65535] {
            let bytes = (0..<len).map { _ in UInt8.random(in: 0...255, using: &rng) }
            let mine = bytes.withUnsafeBytes { Checksum.finish(Checksum.add($0.baseAddress ?? UnsafeRawPointer(bitPattern: 8)!, len, 0)) }
            XCTAssertEqual(mine, ~refFold(refSum(bytes)), "length \(len)")
        }
    }

    func testNotTCPIsRefused() {
        var s = TCPFrameSpec()
        s.payload = 100
        let f = superFrame(s)
        var b = f.bytes
        b[f.l3 + 9] = 17   // UDP
        batch.count = 0
        XCTAssertTrue(batch.append(b))
        batch.setVnetHeader(0, flags: VirtioNet.needsCsum, gsoType: VirtioNet.gsoTCPv4, hdrLen: 0, gsoSize: 50,
                            csumStart: f.l4, csumOffset: 16)
        XCTAssertTrue(batch.segment(0, from: 0, into: &scratch).invalid)
    }
}
