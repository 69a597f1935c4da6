import VSwitchPacket
import XCTest

final class MACAddressTests: XCTestCase {
    func testParsesTheThreeSpellings() {
        let want = MACAddress(0x02, 0xAB, 0xcd, 0x00, 0x0a, 0x01)
        XCTAssertEqual(MACAddress("02:ab:cd:00:0a:01"), want)
        XCTAssertEqual(MACAddress("02-AB-CD-00-0A-01"), want)
        XCTAssertEqual(MACAddress("02abcd000a01"), want)
        XCTAssertEqual(want.description, "02:ab:cd:00:0a:01")
    }

    func testRejectsMalformed() {
        for bad in ["", "02:ab:cd:00:0a", "02:ab:cd:00:0a:01:02", "02:ab:cd:00:0a:0g", "2:ab:cd:00:0a:01", "02abcd000a0", "02:ab-cd:00:0a:01"] {
            XCTAssertNil(MACAddress(bad), bad)
        }
    }

    func testClassification() {
        XCTAssertTrue(MACAddress.broadcast.isMulticast)
        XCTAssertTrue(MACAddress("01:00:5e:00:00:01")!.isMulticast)
        XCTAssertTrue(MACAddress("02:00:00:00:00:01")!.isUnicast)
        XCTAssertTrue(MACAddress.zero.isZero)
    }
}

final class FrameBatchTests: XCTestCase {
    func testAppendRespectsCapacityAndDataRoom() {
        var b = FrameBatch(capacity: 2, dataRoom: 128)
        defer { b.deallocate() }
        XCTAssertTrue(b.append([UInt8](repeating: 1, count: 60)))
        XCTAssertFalse(b.append([UInt8](repeating: 1, count: b.dataRoom + 1)), "larger than a buffer")
        XCTAssertTrue(b.append([UInt8](repeating: 2, count: 128)))
        XCTAssertFalse(b.append([UInt8](repeating: 3, count: 60)), "batch full")
        XCTAssertEqual(b.count, 2)
        XCTAssertEqual(b.bytes(1), [UInt8](repeating: 2, count: 128))
    }

    func testBuffersAreAlignedAndDisjoint() {
        let b = FrameBatch(capacity: 4, dataRoom: 1500)
        defer { b.deallocate() }
        XCTAssertEqual(b.bufferSize % 64, 0)
        XCTAssertEqual(Int(bitPattern: b.buffer(0)) % 64, 0)
        XCTAssertGreaterThanOrEqual(b.buffer(1) - b.buffer(0), b.headroom + 1500)
    }

    func testTagOperationsUseHeadroom() {
        var b = FrameBatch(capacity: 1)
        defer { b.deallocate() }
        var f: [UInt8] = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 0x08, 0x00]
        f += [UInt8](repeating: 0xEE, count: 46)
        _ = b.append(f)
        b.pushTag(0, tpid: 0x88A8, tci: 100)
        b.pushTag(0, tpid: 0x8100, tci: 0x6000 | 7)  // double push: both tags fit in the headroom
        XCTAssertEqual(b.meta[0].length, 68)
        XCTAssertEqual(b.be16(0, at: 12), 0x8100)
        XCTAssertEqual(b.be16(0, at: 14), 0x6007)
        XCTAssertEqual(b.be16(0, at: 16), 0x88A8)
        XCTAssertEqual(b.be16(0, at: 18), 100)
        b.setTag(0, tpid: 0x8100, tci: 42)
        XCTAssertEqual(b.be16(0, at: 14), 42)
        b.popTag(0)
        b.popTag(0)
        XCTAssertEqual(b.bytes(0), f)
    }
}
