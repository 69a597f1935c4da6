// ForwardingThread: one poll-mode forwarding loop on its own pthread.
//
// Thread t of N receives from the ports whose index ≡ t (mod N) and may send
// to any port (a TAP write is atomic per frame in the kernel). Each pass:
// load the snapshot pointer once, poll the backend for ready ports (timeout 0
// while traffic flows; up to `idleTimeoutMs` when idle, marked offline for
// QSBR so configuration changes never wait on a sleeping thread), forward one
// batch per ready port, then pass a quiescent point. `idleSpinNs` (vswitchd
// --idle-spin-us) keeps polling with timeout 0 for that long after the last frame
// before the thread sleeps: busy-poll at high rates, no core burnt when idle.
// Nothing here allocates after start (the ready list and batch are preallocated).
// A pass ends early, after the batch in progress, when a new snapshot has been
// published (the grace period is then one batch long, whatever the number of ready ports);
// the next pass starts at the first ready port it did not serve, so a burst of publications
// cannot starve ports late in the ready list.

import Atomics
import VSwitchPacket
import CVSwitchShim
#if canImport(Glibc)
import Glibc
#endif

public protocol PollingBackend: PortBackend {
    /// Called (online, on the forwarding thread) whenever the snapshot generation changes: the thread
    /// now receives from `ports[0..<count]`. The backend caches what it needs (e.g. a pollfd array);
    /// `poll` must not read the snapshot, because it runs while the thread is offline.
    mutating func prepare(ports: UnsafePointer<UInt16>, count: Int, view: UnsafeMutablePointer<ConfigView>)
    /// Waits up to `timeoutMs` (0 = don't wait) for any prepared port to have frames; writes the ready
    /// port indices to `ready` and returns how many. Called online.
    mutating func poll(timeoutMs: Int32, ready: UnsafeMutablePointer<UInt16>) -> Int
    /// Online, just before the thread goes offline to wait: the ports ready without waiting whose readiness is
    /// memory the switch frees once a deleted port's grace period is over (netdev rings, replay schedules: a thread
    /// offline holds up no grace period), and how long the wait may last.
    mutating func readyBeforeWaiting(timeoutMs: Int32, ready: UnsafeMutablePointer<UInt16>) -> (count: Int, timeoutMs: Int32)
    /// Offline: waits up to `timeoutMs` on the prepared ports' descriptors only, reading no port's state (a port may
    /// be deleted and its memory freed meanwhile; the kernel drops a closed descriptor from the wait set).
    mutating func waitOffline(timeoutMs: Int32, ready: UnsafeMutablePointer<UInt16>) -> Int
}

public extension PollingBackend {
    /// Backends whose `poll` reads only their own memory: nothing to check first, and `poll` may run offline.
    mutating func readyBeforeWaiting(timeoutMs: Int32, ready: UnsafeMutablePointer<UInt16>) -> (count: Int, timeoutMs: Int32) {
        (0, timeoutMs)
    }
    mutating func waitOffline(timeoutMs: Int32, ready: UnsafeMutablePointer<UInt16>) -> Int { poll(timeoutMs: timeoutMs, ready: ready) }
}

public final class ForwardingThread<Backend: PollingBackend>: @unchecked Sendable {
    public let index: Int
    public let threadCount: Int
    public let engine: ForwardingEngine
    let publisher: SnapshotPublisher
    var backend: Backend
    var batch: FrameBatch
    let running = ManagedAtomic<Bool>(false)
    let clock: @Sendable () -> UInt64
    let idleTimeoutMs: Int32
    let idleSpinNs: UInt64
    let cpu: Int?
    var thread: pthread_t?

    public init(index: Int, threadCount: Int, publisher: SnapshotPublisher, backend: Backend,
                batchCapacity: Int = 64, dataRoom: Int = 2048, maxPorts: Int = 1024, idleTimeoutMs: Int32 = 50,
                idleSpinNs: UInt64 = 0, captureRingBytes: Int = 4 << 20, cpu: Int? = nil, clock: @escaping @Sendable () -> UInt64) {
        self.index = index
        self.threadCount = threadCount
        self.publisher = publisher
        self.backend = backend
        self.batch = FrameBatch(capacity: batchCapacity, dataRoom: dataRoom)
        self.engine = ForwardingEngine(maxPorts: maxPorts, batchCapacity: batchCapacity, captureBytes: captureRingBytes)
        self.clock = clock
        self.idleTimeoutMs = idleTimeoutMs
        self.idleSpinNs = idleSpinNs
        self.cpu = cpu
    }

    deinit {
        batch.deallocate()
        engine.deallocate()
    }

    public func start() {
        running.store(true, ordering: .relaxed)
        thread = spawnThread { [self] in self.run() }
    }

    /// Asks the loop to stop and waits for it.
    public func stop() {
        running.store(false, ordering: .relaxed)
        if let t = thread { pthread_join(t, nil); thread = nil }
    }

    func run() {
        nameCurrentThread("vsw-fwd-\(index)")
        if let cpu { pinCurrentThread(to: cpu) }
        let qs = publisher.quiescence
        let maxPorts = engine.tx.maxPorts
        let mine = UnsafeMutablePointer<UInt16>.allocate(capacity: maxPorts)
        let ready = UnsafeMutablePointer<UInt16>.allocate(capacity: maxPorts)
        defer { mine.deallocate(); ready.deallocate(); qs.goOffline(index) }
        var mineCount = 0
        var generation = UInt64.max
        var idlePasses = 0
        var lastFrameNs: UInt64 = 0   // when a pass last received something (idle spin)
        var resume = 0                // index in the ready list the next pass starts at
        qs.goOnline(index)
        while running.load(ordering: .relaxed) {
            let view = publisher.load()
            if view.pointee.generation != generation {
                generation = view.pointee.generation
                mineCount = 0
                let slots = min(view.pointee.portSlots, maxPorts)
                var p = index
                while p < slots {
                    if view.pointee.ports[p].present { mine[mineCount] = UInt16(p); mineCount += 1 }
                    p += threadCount
                }
                backend.prepare(ports: mine, count: mineCount, view: view)
            }
            var nready: Int
            if idlePasses >= 2 && (idleSpinNs == 0 || clock() &- lastFrameNs >= idleSpinNs) {
                // Port state (netdev rings, replay schedules) is read while still online; offline only the
                // descriptors are waited on: a port deleted meanwhile has its memory freed without waiting for an
                // offline thread (session 8 review: a SIGSEGV in a freed netdev ring).
                let (early, wait) = backend.readyBeforeWaiting(timeoutMs: idleTimeoutMs, ready: ready)
                if early > 0 {
                    nready = early
                } else {
                    qs.goOffline(index)
                    nready = backend.waitOffline(timeoutMs: wait, ready: ready)
                    qs.goOnline(index)
                    // While offline the snapshot may have been replaced (and the old one freed):
                    // never touch `view` again; start the pass over with the current one.
                    idlePasses = 0
                    let current = publisher.load()
                    if nready == 0 || current != view || current.pointee.generation != generation { continue }
                }
            } else {
                nready = backend.poll(timeoutMs: 0, ready: ready)
            }
            // The clock is read after the wait: a batch judged with a time from before a 50 ms sleep
            // would let a policer's bucket be drained twice (found by the policer-burst wire test).
            let nowNs = clock()
            let now = UInt32(truncatingIfNeeded: nowNs / 1_000_000_000)
            var got = 0
            // The pass starts at ready[start], where the previous pass stopped if it ended early (a full
            // pass leaves it where it was), so back-to-back publications do not serve ready[0] only.
            var start = resume < nready ? resume : (nready > 0 ? resume % nready : 0)
            var r = 0
            while r < nready {
                var at = start &+ r
                if at >= nready { at &-= nready }
                let port = Int(ready[at])
                let n = backend.receive(port: port, entry: view.pointee.ports + port, into: &batch)
                if n > 0 {
                    got &+= n
                    engine.forward(batch, ingress: port, view: view, now: now, nowNs: nowNs, backend: &backend)
                }
                r &+= 1
                // A new snapshot was published: end the pass here and pass the quiescent point now, so the
                // publisher's grace period lasts one batch, not a pass over every ready port (1,000 busy
                // ports are 1,000 batches, milliseconds). The ports not served yet are still ready at the
                // next poll (every readiness source is level-triggered), which starts with the new snapshot.
                if publisher.load() != view { break }
            }
            start &+= r
            resume = start >= nready && nready > 0 ? start &- nready : start
            if got > 0 { idlePasses = 0; lastFrameNs = nowNs } else { idlePasses &+= 1 }
            qs.quiescent(index)
        }
    }
}

/// Pins the calling thread to one CPU (best effort).
public func pinCurrentThread(to cpu: Int) { _ = vsw_pin_thread(Int32(cpu)) }

/// Names the calling thread (seen in `top -H`, `/proc/PID/task/*/comm`; at most 15 bytes kept).
public func nameCurrentThread(_ name: String) { _ = vsw_set_thread_name(name) }

/// Monotonic clock in nanoseconds (policers; the MAC table uses it in whole seconds).
@inline(__always) public func monotonicNanoseconds() -> UInt64 { vsw_now_ns() }

/// Monotonic coarse clock in whole seconds (the MAC table's time base).
@inline(__always) public func monotonicSeconds() -> UInt32 { UInt32(truncatingIfNeeded: vsw_now_coarse_ns() / 1_000_000_000) }

final class ThreadBody {
    let body: () -> Void
    init(_ body: @escaping () -> Void) { self.body = body }
}

/// Runs `body` on a new pthread (not a Swift concurrency thread: forwarding and namespace work need a
/// thread of their own).
public func spawnThread(_ body: @escaping () -> Void) -> pthread_t {
    let arg = Unmanaged.passRetained(ThreadBody(body)).toOpaque()
    var tid = pthread_t()
    let rc = pthread_create(&tid, nil, { arg in
        Unmanaged<ThreadBody>.fromOpaque(arg!).takeRetainedValue().body()
        return nil
    }, arg)
    precondition(rc == 0, "pthread_create failed: \(rc)")
    return tid
}
