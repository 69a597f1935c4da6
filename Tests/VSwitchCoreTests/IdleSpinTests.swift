import Atomics
import VSwitchCore
import VSwitchPacket
import VSwitchPolicy
import XCTest

/// vswitchd --idle-spin-us: after the last frame the thread keeps polling with timeout 0 until the spin time has
/// passed on its clock, and only then may sleep; without it, it sleeps after two empty passes.
final class IdleSpinTests: XCTestCase {
    func run(spinNs: UInt64) throws -> (zeroBeforeAdvance: Int, sleepBeforeAdvance: Int, sleepAfterAdvance: Int) {
        let now = ManagedAtomic<UInt64>(1_000_000_000)
        let frames = ManagedAtomic<Int>(5)
        let backend = ScriptedBackend(frames: frames)
        let zero = backend.zeroPolls, sleep = backend.sleepPolls
        let publisher = SnapshotPublisher(initial: ConfigSnapshot(generation: 1, ports: [PortSpec(index: 0, up: true, policy: .access(10)),
                                                                                          PortSpec(index: 1, up: true, policy: .access(10))],
                                                                  macTable: MACTable(limit: 64)))
        publisher.setThreadCount(1)
        let t = ForwardingThread(index: 0, threadCount: 1, publisher: publisher,
                                 backend: backend,
                                 batchCapacity: 8, idleTimeoutMs: 1, idleSpinNs: spinNs,
                                 clock: { now.load(ordering: .relaxed) })
        t.start()
        defer { t.stop() }
        let deadline = Date().addingTimeInterval(10)
        while frames.load(ordering: .relaxed) > 0 && Date() < deadline { usleep(1000) }
        XCTAssertEqual(frames.load(ordering: .relaxed), 0, "the thread took the frames")
        usleep(200_000)   // many passes, clock standing still
        let z = zero.load(ordering: .relaxed), s = sleep.load(ordering: .relaxed)
        now.wrappingIncrement(by: spinNs + 1, ordering: .relaxed)
        let until = Date().addingTimeInterval(10)
        while sleep.load(ordering: .relaxed) == s && Date() < until { usleep(1000) }
        return (z, s, sleep.load(ordering: .relaxed) - s)
    }

    func testSpinsUntilTheSpinTimeHasPassedThenSleeps() throws {
        let r = try run(spinNs: 50_000)
        XCTAssertGreaterThan(r.zeroBeforeAdvance, 100, "busy-polled while the clock stood within the spin time")
        XCTAssertEqual(r.sleepBeforeAdvance, 0, "never slept within the spin time after the last frame")
        XCTAssertGreaterThan(r.sleepAfterAdvance, 0, "slept once the spin time had passed")
    }

    func testWithoutSpinSleepsAfterTwoEmptyPasses() throws {
        let r = try run(spinNs: 0)
        XCTAssertGreaterThan(r.sleepBeforeAdvance, 10, "slept while idle although the clock stood still")
    }
}
