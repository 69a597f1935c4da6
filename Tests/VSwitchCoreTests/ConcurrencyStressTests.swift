import Atomics
import VSwitchCore
import VSwitchPacket
import VSwitchPolicy
import XCTest

/// Generates frames on receive (random sources among a pool per port, random destinations) and counts sends.
/// One instance per forwarding thread, so no state is shared through it.
struct SyntheticBackend: PollingBackend {
    let stations: Int
    var seed: UInt64
    var prepared: [Int] = []
    var sent: UInt64 = 0
    let sentTotal: ManagedAtomic<UInt64>

    mutating func next() -> UInt64 {
        seed = seed &* 6364136223846793005 &+ 1442695040888963407
        return seed >> 33
    }

    mutating func receive(port: Int, entry: UnsafeMutablePointer<PortEntry>, into batch: inout FrameBatch) -> Int {
        batch.count = 0
        for i in 0..<batch.capacity {
            let p = batch.receiveBuffer(i)
            let dst: UInt64 = next() % 10 == 0 ? 0xFFFF_FFFF_FFFF : 0x0200_0000_0000 | (next() % UInt64(stations))
            let src: UInt64 = 0x0200_0000_0000 | (next() % UInt64(stations))   // sources move between ports
            for k in 0..<6 {
                p.storeBytes(of: UInt8(truncatingIfNeeded: dst >> UInt64(40 - 8 * k)), toByteOffset: k, as: UInt8.self)
                p.storeBytes(of: UInt8(truncatingIfNeeded: src >> UInt64(40 - 8 * k)), toByteOffset: 6 + k, as: UInt8.self)
            }
            let tagged = next() % 2 == 0
            if tagged {
                p.storeBytes(of: UInt16(0x8100).bigEndian, toByteOffset: 12, as: UInt16.self)
                p.storeBytes(of: UInt16(next() % 2 == 0 ? 10 : 20).bigEndian, toByteOffset: 14, as: UInt16.self)
                p.storeBytes(of: UInt16(0x0800).bigEndian, toByteOffset: 16, as: UInt16.self)
            } else {
                p.storeBytes(of: UInt16(0x0800).bigEndian, toByteOffset: 12, as: UInt16.self)
            }
            batch.setReceived(i, length: 64)
            batch.count += 1
        }
        return batch.count
    }

    mutating func send(port: Int, entry: UnsafeMutablePointer<PortEntry>, batch: FrameBatch, frame: Int) -> SendResult {
        sent &+= 1
        if sent & 1023 == 0 { sentTotal.wrappingIncrement(by: 1024, ordering: .relaxed) }
        return .sent
    }

    mutating func prepare(ports: UnsafePointer<UInt16>, count: Int, view: UnsafeMutablePointer<ConfigView>) {
        prepared = (0..<count).map { Int(ports[$0]) }
    }

    mutating func poll(timeoutMs: Int32, ready: UnsafeMutablePointer<UInt16>) -> Int {
        for (k, p) in prepared.enumerated() { ready[k] = UInt16(p) }
        return prepared.count
    }
}

/// Concurrent learning, lookups, moves, aging, flushes, static entries, table dumps, configuration swaps
/// and MAC-table replacement. Run under ThreadSanitizer by `make test` (swift test --sanitize=thread).
final class ConcurrencyStressTests: XCTestCase {
    func testForwardingThreadsWithConcurrentControlPlane() throws {
        let threads = 2
        let clock = ManagedAtomic<UInt32>(1000)
        let sentTotal = ManagedAtomic<UInt64>(0)
        var table = MACTable(limit: 512)
        func specs(_ gen: Int) -> [PortSpec] {
            (0..<4).map { i in
                let policy: PortPolicy = (i + gen) % 3 == 0 ? .access(10) : .trunk([10, 20], native: 10)
                return PortSpec(index: i, up: (i + gen) % 5 != 0, policy: policy)
            }
        }
        var generation: UInt64 = 1
        let publisher = SnapshotPublisher(initial: ConfigSnapshot(generation: 1, ports: specs(1), macTable: table))
        publisher.setThreadCount(threads)
        let workers = (0..<threads).map { t in
            ForwardingThread(index: t, threadCount: threads, publisher: publisher,
                             backend: SyntheticBackend(stations: 300, seed: UInt64(t + 1), sentTotal: sentTotal),
                             batchCapacity: 32, idleTimeoutMs: 1, clock: { UInt64(clock.load(ordering: .relaxed)) * 1_000_000_000 })
        }
        workers.forEach { $0.start() }
        // At least 3 s and at least 100 configuration swaps (a loaded machine or ThreadSanitizer can make a
        // grace period slow: the test then runs longer instead of failing on a count), at most 60 s.
        let start = Date()
        var swaps = 0, replaced = 0, dumped = 0
        while (Date().timeIntervalSince(start) < 3 || swaps < 100) && Date().timeIntervalSince(start) < 60 {
            generation += 1
            let g = Int(generation)
            if g % 7 == 0 {
                // Replace the MAC table (compaction / resize path); the publisher frees the old one.
                table = table.compacted(limit: g % 2 == 0 ? 256 : 512)
                replaced += 1
            }
            publisher.publish(ConfigSnapshot(generation: generation, ports: specs(g), macTable: table))
            swaps += 1
            clock.wrappingIncrement(by: 7, ordering: .relaxed)
            table.age(now: clock.load(ordering: .relaxed), agingTime: 10)
            table.addStatic(vlan: 10, mac: 0x0200_0000_0001, port: g % 4)
            if g % 3 == 0 { table.flush(port: g % 4) }
            if g % 5 == 0 { table.flush(vlan: 20) }
            if g % 11 == 0 { table.remove(vlan: 10, mac: 0x0200_0000_0001) }
            dumped += table.entries(now: clock.load(ordering: .relaxed)).count
            for w in workers { _ = w.engine.moves.drain() }
            _ = (0..<4).map { PortCounters(port: $0, blocks: workers.map(\.engine.counters)) }
            usleep(2000)
        }
        workers.forEach { $0.stop() }
        let totals = (0..<4).map { PortCounters(port: $0, blocks: workers.map(\.engine.counters)) }
        let rx = totals.reduce(0) { $0 + $1.rxPackets }
        XCTAssertGreaterThan(rx, 10_000, "the threads forwarded traffic during the test")
        XCTAssertGreaterThan(sentTotal.load(ordering: .relaxed), 0)
        XCTAssertGreaterThan(swaps, 50)
        XCTAssertGreaterThan(replaced, 3)
        XCTAssertGreaterThan(totals.reduce(0) { $0 + $1.macMoves }, 0, "sources moved between ports")
        // The table's books balance once quiet: live count = sum of per-port counts = live slots.
        let entries = table.entries(now: clock.load(ordering: .relaxed))
        XCTAssertEqual(table.liveCount, entries.count)
        XCTAssertEqual((0..<4).reduce(0) { $0 + table.count(port: $1) }, entries.count)
        XCTAssertLessThanOrEqual(table.liveCount, table.limit)
        _ = dumped
    }
}
