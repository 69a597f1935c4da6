import VSwitchCore
import VSwitchPacket
import VSwitchPolicy
import XCTest

/// The engine with GSO super-frames (VSwitchPacket/Offload.swift): flooded from a port with offloads to
/// ports with and without them, one of them a trunk (a tag pushed into every segment).
final class OffloadEngineTests: XCTestCase {
    func testSuperFrameIsSegmentedOnlyForPortsWithoutOffloads() {
        var specs = [PortSpec(index: 0, policy: .access(10)), PortSpec(index: 1, policy: .access(10)),
                     PortSpec(index: 2, policy: .access(10)), PortSpec(index: 3, policy: .trunk([10]))]
        specs[0].offload = true
        specs[2].offload = true
        let sw = TestSwitch(specs)
        sw.batch.deallocate()
        sw.batch = FrameBatch(capacity: 64, dataRoom: VirtioNet.maxFrame)   // 64 KiB buffers, as the daemon's
        var s = TCPSpec()
        s.payload = 10_000
        let f = gsoFrame(s)
        sw.batch.count = 0
        XCTAssertTrue(sw.batch.append(f.bytes))
        sw.batch.setVnetHeader(0, flags: 1, gsoType: 1, hdrLen: f.l4 + 20, gsoSize: 1448, csumStart: f.l4, csumOffset: 16)
        sw.store.clearSent()
        sw.engine.forward(sw.batch, ingress: 0, view: sw.snapshot.view, now: sw.now, nowNs: sw.nowNs, backend: &sw.backend)
        let out = sw.store.outbound
        XCTAssertEqual(out[2]?.count, 1, "an offload port gets the super-frame as one unit")
        XCTAssertEqual(out[2]?.first?.count, f.bytes.count)
        XCTAssertEqual(out[1]?.count, 7, "10000 bytes at MSS 1448: 7 segments")
        XCTAssertEqual(out[3]?.count, 7)
        for (k, seg) in (out[1] ?? []).enumerated() {
            XCTAssertLessThanOrEqual(seg.count, 14 + 20 + 20 + 1448)
            XCTAssertEqual(refFoldSum(Array(seg[14..<34])), 0xFFFF, "IPv4 header checksum of segment \(k)")
        }
        for seg in out[3] ?? [] {
            XCTAssertEqual(Wire(seg).tags, [tag(10)], "trunk segments carry the tag")
            XCTAssertEqual(refFoldSum(Array(seg[18..<38])), 0xFFFF)
        }
        XCTAssertEqual(sw.counters(1).txPackets, 7)
        XCTAssertEqual(sw.counters(2).txPackets, 1)
        XCTAssertEqual(sw.counters(0).rxPackets, 1)
    }

    func testSuperFrameWithinGSOSizeIsNotAnMTUDrop() {
        var specs = [PortSpec(index: 0, policy: .access(10)), PortSpec(index: 1, policy: .access(10))]
        specs[0].offload = true
        let sw = TestSwitch(specs)
        sw.batch.deallocate()
        sw.batch = FrameBatch(capacity: 64, dataRoom: VirtioNet.maxFrame)   // 64 KiB buffers, as the daemon's
        var s = TCPSpec()
        s.payload = 30_000
        let f = gsoFrame(s)
        sw.batch.count = 0
        XCTAssertTrue(sw.batch.append(f.bytes))
        sw.batch.setVnetHeader(0, flags: 1, gsoType: 1, hdrLen: f.l4 + 20, gsoSize: 1448, csumStart: f.l4, csumOffset: 16)
        sw.store.clearSent()
        sw.engine.forward(sw.batch, ingress: 0, view: sw.snapshot.view, now: sw.now, nowNs: sw.nowNs, backend: &sw.backend)
        XCTAssertEqual(sw.store.outbound[1]?.count, 21)
        // The same bytes without a GSO header are an oversize frame.
        sw.batch.count = 0
        XCTAssertTrue(sw.batch.append(f.bytes))
        sw.store.clearSent()
        sw.engine.forward(sw.batch, ingress: 0, view: sw.snapshot.view, now: sw.now, nowNs: sw.nowNs, backend: &sw.backend)
        XCTAssertNil(sw.store.outbound[1])
        XCTAssertEqual(sw.counters(0).drops(.mtuExceeded), 1)
    }
}

struct TCPSpec { var payload = 1000 }

func refFoldSum(_ b: [UInt8]) -> UInt16 {
    var s: UInt32 = 0
    var i = 0
    while i + 1 < b.count { s += UInt32(b[i]) << 8 | UInt32(b[i + 1]); i += 2 }
    if i < b.count { s += UInt32(b[i]) << 8 }
    while s >> 16 != 0 { s = (s & 0xFFFF) + (s >> 16) }
    return UInt16(s)
}

/// An untagged IPv4/TCP super-frame from macA to an unknown unicast MAC (flooded), TCP header without options.
func gsoFrame(_ s: TCPSpec) -> (bytes: [UInt8], l4: Int) {
    let tcp: [UInt8] = [0x9C, 0x40, 0x14, 0x51, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x18, 0x01, 0xF5, 0, 0, 0, 0]
    let l4 = tcp + (0..<s.payload).map { UInt8(truncatingIfNeeded: $0) }
    var ip = ipv4(src: 0x0A00_0001, dst: 0x0A00_0002, proto: 6, l4: l4)
    let total = ip.count
    ip[2] = UInt8(total >> 8 & 0xFF); ip[3] = UInt8(total & 0xFF)
    let c = ~refFoldSum(Array(ip[0..<20]))
    ip[10] = UInt8(c >> 8); ip[11] = UInt8(c & 0xFF)
    return (l3frame(dst: 0x0200_0000_0BBB, src: macA, type: 0x0800, ip), 34)
}

/// USO (issue 7): a UDP super-frame goes whole only to ports that take UDP segmentation offload; ports
/// with TCP offloads only, or none, get datagrams cut in software.
final class UDPOffloadEngineTests: XCTestCase {
    func testUDPSuperFrameIsCutForPortsWithoutUSO() {
        var specs = [PortSpec(index: 0, policy: .access(10)), PortSpec(index: 1, policy: .access(10)),
                     PortSpec(index: 2, policy: .access(10)), PortSpec(index: 3, policy: .access(10))]
        specs[0].offload = true; specs[0].uso = true
        specs[1].offload = true; specs[1].uso = true    // takes it whole
        specs[2].offload = true                         // TCP offloads only
        let sw = TestSwitch(specs)
        sw.batch.deallocate()
        sw.batch = FrameBatch(capacity: 64, dataRoom: VirtioNet.maxFrame)
        // A broadcast UDP super-frame of 6,000 bytes in 1,400-byte datagrams (a flood reaches all three).
        var b: [UInt8] = [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x02, 0, 0, 0, 0, 0x01, 0x08, 0x00]
        let payload = 6000, udpLen = 8 + payload, total = 20 + udpLen
        b += [0x45, 0, UInt8(total >> 8), UInt8(total & 0xFF), 0, 1, 0x40, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 255]
        b += [0x13, 0x88, 0x17, 0x70, UInt8(udpLen >> 8), UInt8(udpLen & 0xFF), 0, 0]
        b += (0..<payload).map { UInt8(truncatingIfNeeded: $0) }
        sw.batch.count = 0
        XCTAssertTrue(sw.batch.append(b))
        sw.batch.setVnetHeader(0, flags: VirtioNet.needsCsum, gsoType: VirtioNet.gsoUDPL4, hdrLen: 42, gsoSize: 1400,
                               csumStart: 34, csumOffset: 6)
        sw.store.clearSent()
        sw.engine.forward(sw.batch, ingress: 0, view: sw.snapshot.view, now: sw.now, nowNs: sw.nowNs, backend: &sw.backend)
        let out = sw.store.outbound
        XCTAssertEqual(out[1]?.count, 1, "a USO port gets the super-frame as one unit")
        XCTAssertEqual(out[1]?.first?.count, b.count)
        XCTAssertEqual(out[2]?.count, 5, "TCP-only offloads: 6000 bytes in 1400-byte datagrams = 5")
        XCTAssertEqual(out[3]?.count, 5, "no offloads: 5 datagrams")
        for seg in (out[2] ?? []) + (out[3] ?? []) {
            XCTAssertLessThanOrEqual(seg.count, 14 + 20 + 8 + 1400)
            XCTAssertEqual(refFoldSum(Array(seg[14..<34])), 0xFFFF, "IPv4 header checksum")
            XCTAssertEqual(Int(seg[38]) << 8 | Int(seg[39]), seg.count - 34, "UDP length")
        }
        XCTAssertEqual(sw.counters(2).txPackets, 5)
        XCTAssertEqual(sw.counters(1).txPackets, 1)
    }
}
