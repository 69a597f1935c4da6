import VSwitchPacket
import XCTest

/// Session 8 review: a partial checksum completed to 0 must go out as 0xFFFF (failed before the fix).
final class ChecksumZeroTests: XCTestCase {
    /// A UDP/IPv6 datagram with a partial checksum (NEEDS_CSUM, no GSO) whose full checksum computes to 0.
    func testCompleteChecksumOfUDPv6ThatSumsToZeroWritesFFFF() {
        var batch = FrameBatch(capacity: 2, dataRoom: 2048)
        defer { batch.deallocate() }
        var spec = UDPFrameSpec(); spec.v6 = true; spec.payload = 4
        var f = udpSuperFrame(spec)
        // Choose the last payload word so that the ones'-complement sum over pseudo-header + UDP is 0xFFFF.
        let l4 = f.l4, udpLen = 8 + spec.payload
        f.bytes[l4 + 10] = 0; f.bytes[l4 + 11] = 0
        var zeroed = f.bytes; zeroed[l4 + 6] = 0; zeroed[l4 + 7] = 0
        let s = refFold(udpPseudoSum(zeroed, l3: f.l3, v6: true, udpLen: udpLen) + refSum(Array(zeroed[l4..<l4 + udpLen])))
        let w = ~s
        f.bytes[l4 + 10] = UInt8(w >> 8); f.bytes[l4 + 11] = UInt8(w & 0xFF)
        XCTAssertTrue(batch.append(f.bytes))
        batch.setVnetHeader(0, flags: VirtioNet.needsCsum, gsoType: VirtioNet.gsoNone, hdrLen: 0, gsoSize: 0,
                            csumStart: l4, csumOffset: 6)
        XCTAssertTrue(batch.completeChecksum(0))
        let out = batch.bytes(0)
        let c = UInt16(out[l4 + 6]) << 8 | UInt16(out[l4 + 7])
        XCTAssertEqual(c, 0xFFFF, "UDP over IPv6: a computed checksum of 0 must go out as 0xFFFF (RFC 8200 8.1, RFC 768)")
    }
}
