// The MAC table and the snapshot publication under concurrency: defects found by the session-8 review, each
// test failing before its fix (per-port count wrap, the quiescent point reordered after the next snapshot load,
// moves lost by a compaction, entries surviving a flush).
import Atomics
import XCTest
@testable import VSwitchCore
#if canImport(Glibc)
import Glibc
#endif

final class MACTableConcurrencyTests: XCTestCase {
    /// A MAC flapping between ports 1 (thread A) and 2 (thread B) — an L2 loop — makes the per-port
    /// count of a port wrap below zero for an instant: the thread moving the entry away decrements
    /// count[1] before the thread that moved it onto port 1 has incremented it. `count(port:)` is
    /// `Int(UInt64)`, which traps on such a value (fdb-stats would kill the daemon).
    func testPortCountWrapsBelowZeroWhileAMACFlaps() {
        let t = MACTable(limit: 1024)
        defer { t.deallocate() }
        let stop = ManagedAtomic<Bool>(false)
        let mac: UInt64 = 0x0200_0000_0042
        func flapper(_ port: Int) -> pthread_t {
            spawnThread {
                var prev = 0
                var now: UInt32 = 1
                while !stop.load(ordering: .relaxed) {
                    _ = t.learn(vlan: 1, mac: mac, port: port, now: now, portLimit: .max, previousPort: &prev)
                    now &+= 1
                }
            }
        }
        let a = flapper(1), b = flapper(2)
        var wrapped = 0, reads = 0
        let deadline = monotonicNanoseconds() + 1_000_000_000
        while monotonicNanoseconds() < deadline {
            for p in 1...2 {
                let raw = t.countWord(2 + p).load(ordering: .relaxed)
                reads += 1
                if Int(exactly: raw) == nil { wrapped += 1 }   // t.count(port: p) would trap here
            }
        }
        stop.store(true, ordering: .relaxed)
        pthread_join(a, nil); pthread_join(b, nil)
        print("per-port count wrapped below zero in \(wrapped) of \(reads) reads")
        XCTAssertEqual(wrapped, 0, "count(port:) would have trapped \(wrapped) times")
    }

    /// The QSBR reader side: `quiescent` is a release store, the next pass's `publisher.load()` a seq_cst
    /// load; on x86 (TSO) the load may be satisfied before the store is visible. Together with the
    /// publisher's store + first state load this is the store-buffering litmus test: the forwarding thread
    /// reads the OLD pointer after its quiescent point while the publisher reads the state from BEFORE
    /// that quiescent point, so the publisher's grace period ends on that quiescent point and frees a
    /// snapshot the thread is using. Uses the project's own `quiescent()` and `load()`.
    func testQuiescentPointCanBeReorderedAfterTheNextSnapshotLoad() { litmus(slow: false) }
    /// The same with the work `publish` does between the pointer store and the first state load.
    func testQuiescentPointReorderedWithPublishsOwnDelay() { litmus(slow: true) }
    func litmus(slow: Bool) {
        var sink = 0
        let s1 = ConfigSnapshot(generation: 1, ports: [], macTable: MACTable(limit: 1024))
        let s2 = ConfigSnapshot(generation: 2, ports: [], macTable: s1.macTable)
        defer { s1.macTable.deallocate() }
        let pub = SnapshotPublisher(initial: s1)
        let qs = pub.quiescence
        qs.goOnline(0)
        let iterations = 100_000
        let go = ManagedAtomic<Int>(0), done = ManagedAtomic<Int>(0)
        let r1 = UnsafeMutablePointer<Bool>.allocate(capacity: iterations)      // reader saw the old pointer
        let r2 = UnsafeMutablePointer<UInt64>.allocate(capacity: iterations)    // publisher's view of the state
        let before = UnsafeMutablePointer<UInt64>.allocate(capacity: iterations)
        defer { r1.deallocate(); r2.deallocate(); before.deallocate() }
        let reader = spawnThread {
            for i in 0..<iterations {
                while go.load(ordering: .acquiring) != i + 1 {}
                before[i] = qs.state(0).load(ordering: .relaxed)
                qs.quiescent(0)                      // end of pass i
                let v = pub.load()                   // start of pass i+1
                r1[i] = v == s1.view
                done.wrappingIncrement(ordering: .releasing)
            }
        }
        var bad = 0
        for i in 0..<iterations {
            pub.pointer.store(s1.view, ordering: .sequentiallyConsistent)   // reset
            while done.load(ordering: .acquiring) != i {}
            go.store(i + 1, ordering: .releasing)
            for _ in 0..<(i % 7) { _ = monotonicNanoseconds() }   // vary the phase a little
            pub.pointer.store(s2.view, ordering: .sequentiallyConsistent)   // publish: SnapshotPublisher.publish
            if slow { _ = monotonicNanoseconds(); let seen = [UInt64](repeating: 0, count: 1); sink &+= seen.count }  // publish's t0 + synchronize's array
            r2[i] = qs.state(0).load(ordering: .sequentiallyConsistent)     // synchronize: seen[t]
            while done.load(ordering: .acquiring) != i + 1 {}
            // The reader kept the old snapshot for pass i+1 while the publisher recorded the state before the
            // quiescent point: the quiescent point ends the grace period, the old snapshot is freed in use.
            if r1[i] && r2[i] == before[i] { bad += 1 }
        }
        pthread_join(reader, nil)
        qs.goOffline(0)
        print("quiescence litmus slow=\(slow) sink=\(sink) store-buffering outcome (old pointer used after a quiescent point the publisher waits for): \(bad) of \(iterations)")
        XCTAssertEqual(bad, 0)
    }

    /// `compacted()` copies the table while forwarding threads keep writing to it until the new snapshot's grace
    /// period ends: a move (or a new entry) made in that window is carried over by `absorb` (publish calls it).
    func testAMoveDuringCompactionIsCarriedOver() {
        let old = MACTable(limit: 1024)
        var prev = 0
        _ = old.learn(vlan: 1, mac: 0x0200_0000_0001, port: 1, now: 5, portLimit: .max, previousPort: &prev)
        _ = old.learn(vlan: 1, mac: 0x0200_0000_0003, port: 1, now: 5, portLimit: .max, previousPort: &prev)
        let fresh = old.compacted()
        // A forwarding thread, still on the old snapshot, sees the host's GARP on port 2.
        XCTAssertEqual(old.learn(vlan: 1, mac: 0x0200_0000_0001, port: 2, now: 6, portLimit: .max, previousPort: &prev), .moved)
        _ = old.learn(vlan: 1, mac: 0x0200_0000_0002, port: 2, now: 6, portLimit: .max, previousPort: &prev)
        // Meanwhile a thread on the new snapshot saw 0003 move at the same second: the new table's word stands.
        _ = old.learn(vlan: 1, mac: 0x0200_0000_0003, port: 3, now: 6, portLimit: .max, previousPort: &prev)
        _ = fresh.learn(vlan: 1, mac: 0x0200_0000_0003, port: 4, now: 6, portLimit: .max, previousPort: &prev)
        XCTAssertEqual(fresh.lookup(vlan: 1, mac: 0x0200_0000_0001), 1, "(the copy alone lost the move)")
        fresh.absorb(old)
        XCTAssertEqual(fresh.lookup(vlan: 1, mac: 0x0200_0000_0001), 2, "the move is carried over")
        XCTAssertEqual(fresh.lookup(vlan: 1, mac: 0x0200_0000_0002), 2, "the new entry is carried over")
        XCTAssertEqual(fresh.lookup(vlan: 1, mac: 0x0200_0000_0003), 4)
        XCTAssertEqual(fresh.count(port: 1), 0)
        XCTAssertEqual(fresh.count(port: 2), 2)
        old.deallocate(); fresh.deallocate()
    }

    /// A flush skipped an entry whose time a forwarding thread refreshed between the flush's load and its
    /// compare-and-swap. The match closure runs exactly in that window, so it plays the forwarding thread here.
    func testAnEntryRefreshedDuringAFlushIsRemoved() {
        let t = MACTable(limit: 1024)
        defer { t.deallocate() }
        var prev = 0
        _ = t.learn(vlan: 10, mac: 0x0200_0000_0001, port: 1, now: 5, portLimit: .max, previousPort: &prev)
        var refreshed = false
        let removed = t.remove { _, v in
            if !refreshed {   // forwarding thread, first frame of second 6 from this host on port 1
                refreshed = true
                var p = 0
                _ = t.learn(vlan: 10, mac: 0x0200_0000_0001, port: 1, now: 6, portLimit: .max, previousPort: &p)
            }
            return MACTable.port(of: v) == 1
        }
        XCTAssertEqual(removed, 1)
        XCTAssertEqual(t.lookup(vlan: 10, mac: 0x0200_0000_0001), -1, "the entry survived the flush of its port")
    }
}
