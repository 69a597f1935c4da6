import Atomics
import VSwitchCore
import VSwitchPacket
import VSwitchPolicy
import XCTest

/// Delivers one broadcast frame on each of the first `frames` receives, then nothing; counts the polls that
/// could sleep (timeout > 0) and those that could not (timeout 0).
struct CountingBackend: PollingBackend {
    var prepared: [Int] = []
    let frames: ManagedAtomic<Int>
    let zeroPolls: ManagedAtomic<Int>
    let sleepPolls: ManagedAtomic<Int>

    mutating func receive(port: Int, entry: UnsafeMutablePointer<PortEntry>, into batch: inout FrameBatch) -> Int {
        batch.count = 0
        guard frames.load(ordering: .relaxed) > 0 else { return 0 }
        frames.wrappingDecrement(ordering: .relaxed)
        let p = batch.receiveBuffer(0)
        for k in 0..<6 { p.storeBytes(of: 0xFF, toByteOffset: k, as: UInt8.self) }
        for k in 0..<6 { p.storeBytes(of: UInt8(k == 0 ? 2 : k), toByteOffset: 6 + k, as: UInt8.self) }
        p.storeBytes(of: UInt16(0x88B5).bigEndian, toByteOffset: 12, as: UInt16.self)
        batch.setReceived(0, length: 64)
        batch.count = 1
        return 1
    }

    mutating func send(port: Int, entry: UnsafeMutablePointer<PortEntry>, batch: FrameBatch, frame: Int) -> SendResult { .sent }

    mutating func prepare(ports: UnsafePointer<UInt16>, count: Int, view: UnsafeMutablePointer<ConfigView>) {
        prepared = (0..<count).map { Int(ports[$0]) }
    }

    mutating func poll(timeoutMs: Int32, ready: UnsafeMutablePointer<UInt16>) -> Int {
        if timeoutMs == 0 {
            zeroPolls.wrappingIncrement(ordering: .relaxed)
        } else {
            sleepPolls.wrappingIncrement(ordering: .relaxed)
            usleep(1000)   // stands for epoll_wait's sleep
        }
        for (k, p) in prepared.enumerated() { ready[k] = UInt16(p) }
        return prepared.count
    }
}

/// vswitchd --idle-spin-us: after the last frame the thread keeps polling with timeout 0 until the spin time has
/// passed on its clock, and only then may sleep; without it, it sleeps after two empty passes.
final class IdleSpinTests: XCTestCase {
    func run(spinNs: UInt64) throws -> (zeroBeforeAdvance: Int, sleepBeforeAdvance: Int, sleepAfterAdvance: Int) {
        let now = ManagedAtomic<UInt64>(1_000_000_000)
        let frames = ManagedAtomic<Int>(5), zero = ManagedAtomic<Int>(0), sleep = ManagedAtomic<Int>(0)
        let publisher = SnapshotPublisher(initial: ConfigSnapshot(generation: 1, ports: [PortSpec(index: 0, up: true, policy: .access(10)),
                                                                                          PortSpec(index: 1, up: true, policy: .access(10))],
                                                                  macTable: MACTable(limit: 64)))
        publisher.setThreadCount(1)
        let t = ForwardingThread(index: 0, threadCount: 1, publisher: publisher,
                                 backend: CountingBackend(frames: frames, zeroPolls: zero, sleepPolls: sleep),
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
