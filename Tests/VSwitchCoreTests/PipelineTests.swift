import VSwitchCore
import VSwitchPacket
import VSwitchPolicy
import XCTest

final class ParsingTests: XCTestCase {
    func testMalformedFramesAreDroppedWithReasons() {
        let sw = TestSwitch([PortSpec(index: 0, policy: .trunk([10, 20], native: 1)), PortSpec(index: 1, policy: .access(1))])
        let runt = [UInt8](repeating: 0xFF, count: 13)
        var truncatedTag = frame(dst: bcast, src: macA, tags: [(0x8100, 10, 0)], payload: 0)
        truncatedTag.removeLast(4)   // 14 bytes: TPID present, TCI missing
        var truncatedInner = frame(dst: bcast, src: macA, tags: [(0x8100, 10, 0), (0x8100, 5, 0)], payload: 0)
        truncatedInner.removeLast(4)
        let out = sw.inject(0, [runt, truncatedTag, truncatedInner])
        XCTAssertTrue(out.isEmpty)
        let c = sw.counters(0)
        XCTAssertEqual(c.rxPackets, 3)
        XCTAssertEqual(c.drops(.malformed), 3)
        XCTAssertEqual(c.totalDrops, 3)
    }

    func testMTUCountsPayloadAfterThePortsTag() {
        let sw = TestSwitch([PortSpec(index: 0, mtu: 1500, policy: .trunk([10], native: 1)),
                             PortSpec(index: 1, mtu: 9000, policy: .trunk([10], native: 1))])
        let ok = frame(dst: bcast, src: macA, payload: 1500)
        let okTagged = frame(dst: bcast, src: macA, tags: [(0x8100, 10, 0)], payload: 1500)
        let big = frame(dst: bcast, src: macA, payload: 1501)
        let bigTagged = frame(dst: bcast, src: macA, tags: [(0x8100, 10, 0)], payload: 1501)
        let out = sw.inject(0, [ok, okTagged, big, bigTagged])
        XCTAssertEqual(out[1]?.count, 2)
        XCTAssertEqual(sw.counters(0).drops(.mtuExceeded), 2)
        XCTAssertEqual(sw.counters(0).totalDrops, 2)
    }

    func testMulticastOrZeroSourceIsDropped() {
        let sw = TestSwitch([PortSpec(index: 0, policy: .access(10)), PortSpec(index: 1, policy: .access(10))])
        let out = sw.inject(0, [frame(dst: bcast, src: 0x0100_5E00_0001), frame(dst: bcast, src: 0)])
        XCTAssertTrue(out.isEmpty)
        XCTAssertEqual(sw.counters(0).drops(.invalidSource), 2)
        XCTAssertEqual(sw.table.liveCount, 0)
    }

    func testTagPushAndPopPreserveBytes() {
        var b = FrameBatch(capacity: 2)
        defer { b.deallocate() }
        let f = frame(dst: macB, src: macA, tags: [(0x8100, 42, 3)], payload: 50)
        _ = b.append(f)
        b.popTag(0)
        XCTAssertEqual(b.bytes(0), frame(dst: macB, src: macA, payload: 50))
        b.pushTag(0, tpid: 0x8100, tci: 3 << 13 | 42)
        XCTAssertEqual(b.bytes(0), f)
        XCTAssertEqual(b.destination(0), macB)
        XCTAssertEqual(b.source(0), macA)
    }
}

final class ForwardingTests: XCTestCase {
    func threeAccessPorts() -> TestSwitch {
        TestSwitch([PortSpec(index: 0, policy: .access(10)), PortSpec(index: 1, policy: .access(10)),
                    PortSpec(index: 2, policy: .access(10)), PortSpec(index: 3, policy: .access(20))])
    }

    func testBroadcastFloodsToOtherPortsOfTheVLANOnly() {
        let sw = threeAccessPorts()
        let out = sw.inject(0, [frame(dst: bcast, src: macA)])
        XCTAssertEqual(Set(out.keys), [1, 2])
        XCTAssertEqual(sw.counters(0).floods, 1)
        XCTAssertEqual(sw.counters(1).txPackets, 1)
        XCTAssertEqual(sw.counters(3).txPackets, 0)
    }

    func testUnknownUnicastFloodsThenLearnedUnicastGoesToOnePort() {
        let sw = threeAccessPorts()
        var out = sw.inject(0, [frame(dst: macB, src: macA)])
        XCTAssertEqual(Set(out.keys), [1, 2], "unknown unicast is flooded")
        out = sw.inject(1, [frame(dst: macA, src: macB)])
        XCTAssertEqual(Set(out.keys), [0], "A was learned on port 0")
        out = sw.inject(0, [frame(dst: macB, src: macA)])
        XCTAssertEqual(Set(out.keys), [1], "B was learned on port 1")
        XCTAssertEqual(sw.table.lookup(vlan: 10, mac: macA), 0)
        XCTAssertEqual(sw.table.lookup(vlan: 10, mac: macB), 1)
        XCTAssertEqual(sw.table.lookup(vlan: 20, mac: macA), -1, "learning is per VLAN")
    }

    func testNeverBackOutOfTheIngressPort() {
        let sw = threeAccessPorts()
        sw.inject(0, [frame(dst: bcast, src: macA), frame(dst: bcast, src: macB)])
        let out = sw.inject(0, [frame(dst: macB, src: macA)])
        XCTAssertTrue(out.isEmpty)
        XCTAssertEqual(sw.counters(0).drops(.sameSegment), 1)
    }

    func testMulticastIsFlooded() {
        let sw = threeAccessPorts()
        let out = sw.inject(2, [frame(dst: 0x0100_5E00_0001, src: macC)])
        XCTAssertEqual(Set(out.keys), [0, 1])
    }

    func testMACMoveIsCountedAndLogged() {
        let sw = threeAccessPorts()
        sw.inject(0, [frame(dst: bcast, src: macA)])
        sw.now += 1
        sw.inject(1, [frame(dst: bcast, src: macA)])
        XCTAssertEqual(sw.table.lookup(vlan: 10, mac: macA), 1)
        XCTAssertEqual(sw.counters(1).macMoves, 1)
        XCTAssertEqual(sw.engine.moves.drain(), [MACMove(mac: macA, vlan: 10, from: 0, to: 1)])
        XCTAssertEqual(sw.table.count(port: 0), 0)
        XCTAssertEqual(sw.table.count(port: 1), 1)
    }

    func testPerPortMACLimitDropsOrForwardsUnlearned() {
        var limited = PortPolicy.access(10)
        limited.macLimit = 2
        var lenient = limited
        lenient.forwardUnlearned = true
        let sw = TestSwitch([PortSpec(index: 0, policy: limited), PortSpec(index: 1, policy: lenient),
                             PortSpec(index: 2, policy: .access(10))])
        let srcs: [UInt64] = [0x0200_0000_0001, 0x0200_0000_0002, 0x0200_0000_0003]
        var out = sw.inject(0, srcs.map { frame(dst: bcast, src: $0) })
        XCTAssertEqual(out[2]?.count, 2)
        XCTAssertEqual(sw.counters(0).drops(.macLimit), 1)
        XCTAssertEqual(sw.table.count(port: 0), 2)
        let others: [UInt64] = [0x0200_0000_0011, 0x0200_0000_0012, 0x0200_0000_0013]
        out = sw.inject(1, others.map { frame(dst: bcast, src: $0) })
        XCTAssertEqual(out[2]?.count, 3, "ForwardUnlearned forwards the frame")
        XCTAssertEqual(sw.table.count(port: 1), 2)
        XCTAssertEqual(sw.table.lookup(vlan: 10, mac: others[2]), -1)
    }

    func testPortAtItsLimitDoesNotBurnKeySlots() {
        var limited = PortPolicy.access(10)
        limited.macLimit = 4
        let sw = TestSwitch([PortSpec(index: 0, policy: limited), PortSpec(index: 1, policy: .access(10))], macLimit: 1000)
        let flood = (0..<5000).map { frame(dst: bcast, src: UInt64(0x0200_0001_0000 + $0)) }
        for chunk in stride(from: 0, to: flood.count, by: 64) { sw.inject(0, Array(flood[chunk..<min(chunk + 64, flood.count)])) }
        XCTAssertEqual(sw.table.count(port: 0), 4)
        XCTAssertEqual(sw.table.usedSlots, 4, "refused sources claim no key slot")
        XCTAssertEqual(sw.counters(0).drops(.macLimit), 4996, "every new source past the limit is dropped, none flooded")
        XCTAssertEqual(sw.counters(0).learnTableFull, 0)
        // Other hosts are still learned.
        sw.inject(1, [frame(dst: bcast, src: macB)])
        XCTAssertEqual(sw.table.lookup(vlan: 10, mac: macB), 1)
    }

    func testSwitchWideLimitFloodsAndCounts() {
        let sw = TestSwitch([PortSpec(index: 0, policy: .access(10)), PortSpec(index: 1, policy: .access(10))], macLimit: 3)
        let srcs = (1...5).map { UInt64(0x0200_0000_0100 + $0) }
        let out = sw.inject(0, srcs.map { frame(dst: bcast, src: $0) })
        XCTAssertEqual(out[1]?.count, 5, "frames still forwarded")
        XCTAssertEqual(sw.table.liveCount, 3)
        XCTAssertEqual(sw.counters(0).learnTableFull, 2)
        // Unicast to an unlearned MAC is flooded.
        let out2 = sw.inject(1, [frame(dst: srcs[4], src: macB)])
        XCTAssertEqual(out2[0]?.count, 1)
    }

    /// The forwarding threads stamp entries with CLOCK_MONOTONIC, the control thread ages with the coarse clock,
    /// which can be a tick behind: an entry stamped a second ahead of the aging clock is age 0, not 2^32 - 1
    /// seconds (which aged it out at once, and the frames to that MAC flooded).
    func testAnEntryStampedAheadOfTheAgingClockIsNotAgedOut() {
        let sw = threeAccessPorts()
        sw.inject(0, [frame(dst: bcast, src: macA)])
        let learnedAt = sw.now
        XCTAssertEqual(sw.table.age(now: learnedAt - 1, agingTime: 300), 0, "stamped 1 s ahead of the aging clock")
        XCTAssertEqual(sw.table.lookup(vlan: 10, mac: macA), 0)
        XCTAssertEqual(sw.table.entries(now: learnedAt - 1).first?.age, 0)
        XCTAssertEqual(sw.table.age(now: learnedAt + 300, agingTime: 300), 1)
    }

    func testAgingWithManualClock() {
        let sw = threeAccessPorts()
        sw.inject(0, [frame(dst: bcast, src: macA)])
        let learnedAt = sw.now
        sw.table.addStatic(vlan: 10, mac: macD, port: 2)
        XCTAssertEqual(sw.table.age(now: learnedAt + 299, agingTime: 300), 0)
        XCTAssertEqual(sw.table.lookup(vlan: 10, mac: macA), 0)
        sw.now = learnedAt + 200
        sw.inject(0, [frame(dst: bcast, src: macA)])   // refresh
        XCTAssertEqual(sw.table.age(now: learnedAt + 300, agingTime: 300), 0, "refreshed at +200")
        XCTAssertEqual(sw.table.age(now: learnedAt + 500, agingTime: 300), 1)
        XCTAssertEqual(sw.table.lookup(vlan: 10, mac: macA), -1)
        XCTAssertEqual(sw.table.lookup(vlan: 10, mac: macD), 2, "static entries never age")
        // After aging, traffic to A floods again.
        let out = sw.inject(1, [frame(dst: macA, src: macB)])
        XCTAssertEqual(Set(out.keys), [0, 2])
    }

    func testStaticEntriesDoNotMove() {
        let sw = threeAccessPorts()
        sw.table.addStatic(vlan: 10, mac: macA, port: 2)
        sw.inject(0, [frame(dst: bcast, src: macA)])
        XCTAssertEqual(sw.table.lookup(vlan: 10, mac: macA), 2)
        let out = sw.inject(1, [frame(dst: macA, src: macB)])
        XCTAssertEqual(Set(out.keys), [2])
        XCTAssertTrue(sw.table.remove(vlan: 10, mac: macA))
        XCTAssertEqual(sw.table.lookup(vlan: 10, mac: macA), -1)
    }

    func testFlushAllPerPortPerVLAN() {
        let sw = TestSwitch([PortSpec(index: 0, policy: .trunk([10, 20])), PortSpec(index: 1, policy: .trunk([10, 20]))])
        sw.inject(0, [frame(dst: bcast, src: macA, tags: [(0x8100, 10, 0)]), frame(dst: bcast, src: macA, tags: [(0x8100, 20, 0)])])
        sw.inject(1, [frame(dst: bcast, src: macB, tags: [(0x8100, 10, 0)]), frame(dst: bcast, src: macB, tags: [(0x8100, 20, 0)])])
        XCTAssertEqual(sw.table.liveCount, 4)
        XCTAssertEqual(sw.table.flush(vlan: 20), 2)
        XCTAssertEqual(sw.table.flush(port: 0), 1)
        XCTAssertEqual(sw.table.entries(now: sw.now).map(\.mac), [macB])
        XCTAssertEqual(sw.table.flushAll(), 1)
        XCTAssertEqual(sw.table.liveCount, 0)
    }

    func testDownPortGetsNoFloodsAndUnicastIsDropped() {
        let sw = threeAccessPorts()
        sw.inject(1, [frame(dst: bcast, src: macB)])
        var specs = sw.specs
        specs[1].up = false
        sw.reconfigure(specs)
        let out = sw.inject(0, [frame(dst: bcast, src: macA), frame(dst: macB, src: macA)])
        XCTAssertEqual(Set(out.keys), [2])
        XCTAssertEqual(sw.counters(1).drops(.portDown), 1)
    }

    func testFullTransmitQueueIsCounted() {
        let sw = threeAccessPorts()
        sw.store.full = [1]
        sw.inject(0, [frame(dst: bcast, src: macA)])
        XCTAssertEqual(sw.counters(1).drops(.txQueueFull), 1)
        XCTAssertEqual(sw.counters(2).txPackets, 1)
    }

    func testCompactionKeepsLiveEntriesAndDropsDeadKeys() {
        let t = MACTable(limit: 1000)
        defer { t.deallocate() }
        var prev = 0
        for i in 0..<600 { _ = t.learn(vlan: 1, mac: UInt64(0x0200_0000_0000 + i), port: i % 3, now: UInt32(i), portLimit: .max, previousPort: &prev) }
        t.addStatic(vlan: 5, mac: macA, port: 7)
        XCTAssertEqual(t.age(now: 700, agingTime: 300), 401)   // seen at 0...400: 300 s or more ago
        XCTAssertTrue(t.needsCompaction == (t.usedSlots - t.liveCount > t.capacity / 4))
        let c = t.compacted()
        defer { c.deallocate() }
        XCTAssertEqual(c.liveCount, 200)   // 199 dynamic + 1 static
        XCTAssertEqual(c.usedSlots, 200)
        XCTAssertEqual(c.lookup(vlan: 1, mac: 0x0200_0000_0000 + 599), 599 % 3)
        XCTAssertEqual(c.lookup(vlan: 5, mac: macA), 7)
        XCTAssertEqual(c.entries(now: 700).first { $0.mac == macA }?.isStatic, true)
    }
}

/// `MACTable.learnFast` (the forwarding path's learn): answers `.known` inline only for a source already
/// on this port and seen this second; every other case gives exactly what `learn` gives.
final class LearnFastTests: XCTestCase {
    func testFastPathAgreesWithLearn() {
        let t = MACTable(limit: 1000)
        defer { t.deallocate() }
        var prev = -1
        let mac: UInt64 = 0x0200_0000_0001
        XCTAssertEqual(t.learnFast(vlan: 10, mac: mac, port: 1, now: 100, portLimit: 10, previousPort: &prev), .learned)
        XCTAssertEqual(t.learnFast(vlan: 10, mac: mac, port: 1, now: 100, portLimit: 10, previousPort: &prev), .known)
        XCTAssertEqual(t.learnFast(vlan: 10, mac: mac, port: 1, now: 101, portLimit: 10, previousPort: &prev), .refreshed)
        XCTAssertEqual(t.learnFast(vlan: 10, mac: mac, port: 2, now: 101, portLimit: 10, previousPort: &prev), .moved)
        XCTAssertEqual(prev, 1)
        XCTAssertEqual(t.lookup(vlan: 10, mac: mac), 2)
        XCTAssertEqual(t.learnFast(vlan: 20, mac: mac, port: 2, now: 101, portLimit: 1, previousPort: &prev), .portLimit,
                       "port 2 already holds one MAC: limit 1 refuses a second")
        XCTAssertTrue(t.addStatic(vlan: 30, mac: mac, port: 3))
        XCTAssertEqual(t.learnFast(vlan: 30, mac: mac, port: 3, now: 101, portLimit: 10, previousPort: &prev), .staticEntry,
                       "a static entry is never answered .known by the fast path")
        // Colliding keys: many MACs, every one learned once and then known, as `learn` would say.
        for k in 0..<500 as Range<UInt64> {
            XCTAssertEqual(t.learnFast(vlan: 1, mac: 0x0200_0001_0000 | k, port: 4, now: 7, portLimit: 1000, previousPort: &prev), .learned)
        }
        for k in 0..<500 as Range<UInt64> {
            XCTAssertEqual(t.learnFast(vlan: 1, mac: 0x0200_0001_0000 | k, port: 4, now: 7, portLimit: 1000, previousPort: &prev), .known)
        }
    }
}

/// The MAC table's limit bounds learned and static entries together; compaction to a smaller limit keeps
/// the static entries.
final class MACTableLimitTests: XCTestCase {
    func testLimitHoldsForStaticAndLearnedEntries() {
        let t = MACTable(limit: 4)
        defer { t.deallocate() }
        var prev = 0
        for k in 0..<4 as Range<UInt64> {
            XCTAssertEqual(t.learn(vlan: 1, mac: 0x0200_0000_0100 | k, port: 1, now: 1, portLimit: 100, previousPort: &prev), .learned)
        }
        XCTAssertEqual(t.learn(vlan: 1, mac: 0x0200_0000_0200, port: 1, now: 1, portLimit: 100, previousPort: &prev), .tableFull)
        XCTAssertFalse(t.addStatic(vlan: 1, mac: 0x0200_0000_0300, port: 2), "a full table refuses a new static entry")
        XCTAssertTrue(t.addStatic(vlan: 1, mac: 0x0200_0000_0100, port: 2), "replacing a live entry always fits")
        XCTAssertEqual(t.liveCount, 4)
        XCTAssertEqual(t.count(port: 1) + t.count(port: 2), 4)
        let small = t.compacted(limit: 2)
        defer { small.deallocate() }
        XCTAssertEqual(small.liveCount, 2)
        XCTAssertEqual(small.lookup(vlan: 1, mac: 0x0200_0000_0100), 2, "the static entry survives a smaller limit")
    }

    func testConcurrentLearnersNeverPassTheLimit() {
        for round in 0..<20 {
            let t = MACTable(limit: 64)
            let threads = 4
            DispatchQueue.concurrentPerform(iterations: threads) { th in
                var prev = 0
                for k in 0..<200 as Range<UInt64> {
                    _ = t.learn(vlan: UInt16(th + 1), mac: 0x0200_0000_0000 | k, port: th, now: 1, portLimit: 1000, previousPort: &prev)
                }
            }
            XCTAssertLessThanOrEqual(t.liveCount, 64, "round \(round)")
            XCTAssertEqual(t.liveCount, (0..<threads).reduce(0) { $0 + t.count(port: $1) })
            t.deallocate()
        }
    }
}
