import VSwitchPacket
import XCTest

// UDP segmentation offload (USO, GSO_UDP_L4; issue 7): a UDP super-frame cut into datagrams in
// software, checked against the byte-array reference checksum of OffloadTests.swift and the
// UDP/IP header rules (RFC 768: a computed checksum of 0 goes out as 0xFFFF).

struct UDPFrameSpec {
    var v6 = false
    var tags: [UInt16] = []
    var payload = 5000
    var gsoSize = 1400
    var ipID: UInt16 = 0xFFFE
}

/// A UDP GSO super-frame as a sender's kernel hands it over (UDP_SEGMENT socket option): the IP and
/// UDP lengths of the whole frame, the UDP checksum field holding the pseudo-header sum.
func udpSuperFrame(_ s: UDPFrameSpec) -> (bytes: [UInt8], l3: Int, l4: Int, payload: [UInt8]) {
    var b: [UInt8] = [0x02, 0, 0, 0, 0, 0x02, 0x02, 0, 0, 0, 0, 0x01]
    for vid in s.tags { b += [0x81, 0x00, UInt8(vid >> 8), UInt8(vid & 0xFF)] }
    b += s.v6 ? [0x86, 0xDD] : [0x08, 0x00]
    let l3 = b.count
    let payload = (0..<s.payload).map { UInt8(truncatingIfNeeded: $0 &* 13 &+ 5) }
    let udpLen = 8 + s.payload
    if s.v6 {
        b += [0x60, 0, 0, 0, UInt8(udpLen >> 8 & 0xFF), UInt8(udpLen & 0xFF), 17, 64]
        b += (0..<16).map { UInt8(0x20 + $0) } + (0..<16).map { UInt8(0x40 + $0) }
    } else {
        let total = 20 + udpLen
        b += [0x45, 0, UInt8(total >> 8 & 0xFF), UInt8(total & 0xFF), UInt8(s.ipID >> 8), UInt8(s.ipID & 0xFF), 0x40, 0, 64, 17, 0, 0,
              10, 0, 0, 1, 10, 0, 0, 2]
        let c = ~refFold(refSum(Array(b[l3..<l3 + 20])))
        b[l3 + 10] = UInt8(c >> 8); b[l3 + 11] = UInt8(c & 0xFF)
    }
    let l4 = b.count
    b += [0x13, 0x88, 0x17, 0x70, UInt8(udpLen >> 8 & 0xFF), UInt8(udpLen & 0xFF), 0, 0]
    b += payload
    let p = refFold(udpPseudoSum(b, l3: l3, v6: s.v6, udpLen: udpLen))
    b[l4 + 6] = UInt8(p >> 8); b[l4 + 7] = UInt8(p & 0xFF)
    return (b, l3, l4, payload)
}

func udpPseudoSum(_ b: [UInt8], l3: Int, v6: Bool, udpLen: Int) -> UInt32 {
    let addrs = v6 ? Array(b[l3 + 8..<l3 + 40]) : Array(b[l3 + 12..<l3 + 20])
    return refSum(addrs) + 17 + UInt32(udpLen)
}

final class UDPOffloadTests: XCTestCase {
    var batch = FrameBatch(capacity: 4, dataRoom: VirtioNet.maxFrame)
    var scratch = FrameBatch(capacity: 64, dataRoom: 9216 + 64)
    override func tearDown() { batch.deallocate(); scratch.deallocate() }

    func load(_ s: UDPFrameSpec) -> (l3: Int, l4: Int, payload: [UInt8]) {
        let f = udpSuperFrame(s)
        batch.count = 0
        XCTAssertTrue(batch.append(f.bytes))
        batch.setVnetHeader(0, flags: VirtioNet.needsCsum, gsoType: VirtioNet.gsoUDPL4,
                            hdrLen: f.l4 + 8, gsoSize: s.gsoSize, csumStart: f.l4, csumOffset: 6)
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

    func check(_ s: UDPFrameSpec, file: StaticString = #filePath, line: UInt = #line) {
        let f = load(s)
        let segs = segmentAll()
        XCTAssertEqual(segs.count, (s.payload + s.gsoSize - 1) / s.gsoSize, "datagrams", file: file, line: line)
        var joined: [UInt8] = []
        for (k, seg) in segs.enumerated() {
            let l3 = f.l3, l4 = f.l4
            if s.v6 {
                XCTAssertEqual(be16(seg, l3 + 4), seg.count - l3 - 40, "IPv6 payload length", file: file, line: line)
            } else {
                XCTAssertEqual(refFold(refSum(Array(seg[l3..<l4]))), 0xFFFF, "IPv4 header checksum", file: file, line: line)
                XCTAssertEqual(be16(seg, l3 + 2), seg.count - l3, "IPv4 total length", file: file, line: line)
                XCTAssertEqual(be16(seg, l3 + 4), Int(s.ipID &+ UInt16(k)), "IPv4 ID", file: file, line: line)
            }
            let udpLen = seg.count - l4
            XCTAssertEqual(be16(seg, l4 + 4), udpLen, "UDP length", file: file, line: line)
            XCTAssertNotEqual(be16(seg, l4 + 6), 0, "a UDP checksum is present", file: file, line: line)
            XCTAssertEqual(refFold(refSum(Array(seg[l4...]), udpPseudoSum(seg, l3: l3, v6: s.v6, udpLen: udpLen))), 0xFFFF,
                           "UDP checksum of datagram \(k)", file: file, line: line)
            XCTAssertEqual(be16(seg, l4), 5000, "ports copied", file: file, line: line)
            let last = k == segs.count - 1
            XCTAssertEqual(udpLen - 8, last ? s.payload - (segs.count - 1) * s.gsoSize : s.gsoSize, file: file, line: line)
            joined += seg[(l4 + 8)...]
        }
        XCTAssertEqual(joined, f.payload, "the payload reassembles in order", file: file, line: line)
    }

    func testIPv4DatagramsLastShort() { check(UDPFrameSpec(payload: 5000, gsoSize: 1400)) }
    func testIPv6Datagrams() { check(UDPFrameSpec(v6: true, payload: 9000, gsoSize: 1232)) }
    func testTaggedAndExactMultiple() { check(UDPFrameSpec(tags: [10], payload: 4 * 1472, gsoSize: 1472)) }
    func testMoreDatagramsThanTheScratchHolds() { check(UDPFrameSpec(payload: 65_000, gsoSize: 200)) }

    func testZeroChecksumIsSentAsAllOnes() {
        // Find a one-datagram payload whose UDP checksum computes to 0, then check it goes out as 0xFFFF.
        let s = UDPFrameSpec(payload: 2, gsoSize: 2)
        var found = false
        for v in 0..<65536 where !found {
            let f = udpSuperFrame(s)
            var b = f.bytes
            b[f.l4 + 8] = UInt8(v >> 8); b[f.l4 + 9] = UInt8(v & 0xFF)
            let sum = ~refFold(refSum(Array(b[f.l4..<f.l4 + 6]) + [0, 0] + Array(b[(f.l4 + 8)...]), udpPseudoSum(b, l3: f.l3, v6: false, udpLen: 10)))
            if sum != 0 { continue }
            found = true
            batch.count = 0
            XCTAssertTrue(batch.append(b))
            batch.setVnetHeader(0, flags: VirtioNet.needsCsum, gsoType: VirtioNet.gsoUDPL4, hdrLen: f.l4 + 8, gsoSize: 2,
                                csumStart: f.l4, csumOffset: 6)
            let r = batch.segment(0, from: 0, into: &scratch)
            XCTAssertEqual(r.count, 1)
            XCTAssertEqual(be16(scratch.bytes(0), f.l4 + 6), 0xFFFF)
        }
        XCTAssertTrue(found, "some 2-byte payload has a zero checksum")
    }

    func testWireCostCountsEveryDatagramsHeaders() {
        let f = load(UDPFrameSpec(payload: 5000, gsoSize: 1400))
        let hdr = f.l4 + 8
        XCTAssertEqual(batch.wireCost(0), UInt64(hdr + 5000 + 3 * hdr))
    }

    func testWhoFinishesInSoftware() {
        _ = load(UDPFrameSpec())
        XCTAssertTrue(batch.needsSoftwareOffload(0, portOffload: false, portUSO: false))
        XCTAssertTrue(batch.needsSoftwareOffload(0, portOffload: true, portUSO: false), "TCP offloads only: cut UDP in software")
        XCTAssertFalse(batch.needsSoftwareOffload(0, portOffload: true, portUSO: true))
        // A TCP super-frame goes whole to a port with TCP offloads, USO or not.
        batch.setVnetHeader(0, flags: VirtioNet.needsCsum, gsoType: VirtioNet.gsoTCPv4, hdrLen: 0, gsoSize: 1400, csumStart: 34, csumOffset: 16)
        XCTAssertFalse(batch.needsSoftwareOffload(0, portOffload: true, portUSO: false))
        XCTAssertTrue(batch.needsSoftwareOffload(0, portOffload: false, portUSO: false))
    }

    func testUDPHeaderOnTCPTypeIsRefused() {
        let f = udpSuperFrame(UDPFrameSpec(payload: 100))
        batch.count = 0
        XCTAssertTrue(batch.append(f.bytes))
        batch.setVnetHeader(0, flags: VirtioNet.needsCsum, gsoType: VirtioNet.gsoUDPL4, hdrLen: 0, gsoSize: 50, csumStart: f.l4, csumOffset: 6)
        var b = f.bytes
        b[f.l3 + 9] = 6    // says TCP, GSO type says UDP: refused
        batch.count = 0
        XCTAssertTrue(batch.append(b))
        batch.setVnetHeader(0, flags: VirtioNet.needsCsum, gsoType: VirtioNet.gsoUDPL4, hdrLen: 0, gsoSize: 50, csumStart: f.l4, csumOffset: 6)
        XCTAssertTrue(batch.segment(0, from: 0, into: &scratch).invalid)
    }
}
