import Atomics
import VSwitchCore
import VSwitchPacket
import VSwitchPolicy
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// The snapshot publisher's grace period (issue 3: reloads under load).
final class QuiescenceTests: XCTestCase {
    func testSynchronizeWaitsForEveryOnlineThreadAndNoLonger() {
        let qs = QuiescentStates(maxThreads: 4)
        qs.goOnline(0)
        qs.goOnline(1)
        qs.goOffline(2)   // offline threads are not waited for (3 never came online)
        let done = ManagedAtomic<Bool>(false)
        let t0 = DispatchTime.now().uptimeNanoseconds
        let waiter = Thread {
            qs.synchronize(threads: 4)
            done.store(true, ordering: .sequentiallyConsistent)
        }
        waiter.start()
        usleep(30_000)
        XCTAssertFalse(done.load(ordering: .sequentiallyConsistent), "no thread passed a quiescent point yet")
        qs.quiescent(0)
        usleep(30_000)
        XCTAssertFalse(done.load(ordering: .sequentiallyConsistent), "thread 1 has not passed one")
        qs.goOffline(1)   // going offline counts
        let deadline = DispatchTime.now().uptimeNanoseconds + 2_000_000_000
        while !done.load(ordering: .sequentiallyConsistent), DispatchTime.now().uptimeNanoseconds < deadline { usleep(100) }
        XCTAssertTrue(done.load(ordering: .sequentiallyConsistent), "the publisher is woken when the last thread goes offline")
        XCTAssertGreaterThan(DispatchTime.now().uptimeNanoseconds - t0, 55_000_000)
    }

    /// One forwarding thread over `ports` always-ready access ports of a ScriptedBackend whose receives take
    /// `delayUs`, started and past its first passes.
    private func startWorker(ports: Int, delayUs: UInt32, served: ServedCounts? = nil)
        -> (SnapshotPublisher, [PortSpec], MACTable, ForwardingThread<ScriptedBackend>, ManagedAtomic<Int>) {
        let table = MACTable(limit: 1024)
        let specs = (0..<ports).map { PortSpec(index: $0, policy: .access(10)) }
        let publisher = SnapshotPublisher(initial: ConfigSnapshot(generation: 1, ports: specs, macTable: table))
        publisher.setThreadCount(1)
        var backend = ScriptedBackend(delayUs: delayUs)
        backend.served = served
        let passes = backend.passes
        let worker = ForwardingThread(index: 0, threadCount: 1, publisher: publisher,
                                      backend: backend, batchCapacity: 4,
                                      maxPorts: 1024, idleTimeoutMs: 1, clock: { 0 })
        worker.start()
        while passes.load(ordering: .relaxed) < 2 { usleep(1000) }
        return (publisher, specs, table, worker, passes)
    }

    /// A forwarding thread ends its pass after the batch in progress when a snapshot is published, so a
    /// grace period is one batch, not a pass over every ready port (here 400 ports at ≥ 250 µs each: a pass
    /// is ≥ 100 ms).
    func testAGracePeriodLastsABatchNotAPass() {
        let (publisher, specs, table, worker, _) = startWorker(ports: 400, delayUs: 250)
        var graces: [Double] = []
        for g in 0..<5 {
            publisher.publish(ConfigSnapshot(generation: UInt64(g + 2), ports: specs, macTable: table))
            graces.append(Double(publisher.lastGracePeriodNs) / 1e6)
            usleep(20_000)
        }
        worker.stop()
        let median = graces.sorted()[graces.count / 2]
        XCTAssertLessThan(median, 40, "grace periods \(graces) ms: a pass over 400 slow ports takes over 100 ms")
    }

    /// While snapshots are published back to back, every pass ends after one batch; the next pass resumes
    /// at the first ready port not yet served, so a port late in the ready list (netdev rings are listed in
    /// a fixed order) is not starved for the length of the burst.
    func testPassesEndedEarlyResumeWhereTheyStopped() {
        let ports = 16
        let served = ServedCounts(ports: ports)
        let (publisher, specs, table, worker, passes) = startWorker(ports: ports, delayUs: 100, served: served)
        // A burst of publications: each waits for the grace period (one batch), the next follows at once.
        let before = served.snapshot()
        let passesBefore = passes.load(ordering: .relaxed)
        var generation: UInt64 = 2
        let end = DispatchTime.now().uptimeNanoseconds + 300_000_000
        while DispatchTime.now().uptimeNanoseconds < end {
            publisher.publish(ConfigSnapshot(generation: generation, ports: specs, macTable: table))
            generation += 1
        }
        let after = served.snapshot()
        let burstPasses = passes.load(ordering: .relaxed) - passesBefore
        worker.stop()
        let during = zip(after, before).map { $0 - $1 }
        // A publication takes a few ms here (snapshot build, futex wake), so 300 ms are dozens of passes,
        // each cut short: with resumption the 16 ports are served about equally; without it ports early in
        // the list take most batches (seen: 79 for the first, 3 for the last of 40).
        XCTAssertGreaterThan(burstPasses, 2 * ports, "too few passes to judge (\(burstPasses))")
        XCTAssertEqual(during.filter { $0 == 0 }.count, 0, "ports never served during the burst: \(during)")
        // Round robin: counts differ by one, plus one at each end of the burst (read while the worker runs).
        XCTAssertLessThanOrEqual(during.max()! - during.min()!, 3, "service spread over the ports: \(during)")
    }
}
