// DedicatedThread: run a closure on a fresh pthread and wait for it. Namespace switches
// (setns/unshare) are per thread, so they happen only on threads made here, which die
// right afterwards; the caller's thread never changes namespace.

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import CVSwitchShim

enum DedicatedThread {
    /// Runs `body` on a new pthread named `name` (≤ 15 bytes kept), blocks until it returns,
    /// and returns its result or rethrows its error.
    static func run<T>(name: String, _ body: () throws -> T) throws -> T {
        try withoutActuallyEscaping(body) { escapable in
            let job = Job(name: name, body: escapable)
            let context = Unmanaged.passRetained(job as AnyJob).toOpaque()
            var thread = pthread_t()
            let rc = pthread_create(&thread, nil, { raw in
                let job = Unmanaged<AnyJob>.fromOpaque(raw!).takeRetainedValue()
                job.run()
                return nil
            }, context)
            if rc != 0 {
                Unmanaged<AnyJob>.fromOpaque(context).release()
                job.discard()
                throw SystemError(operation: "start a thread for", errno: rc, context: name)
            }
            pthread_join(thread, nil)
            return try job.result!.get()
        }
    }

    private class AnyJob {
        func run() {}
    }

    private final class Job<T>: AnyJob {
        let name: String
        // Dropped as soon as it has run: `withoutActuallyEscaping` checks that nothing
        // still holds the closure when `run(name:_:)` returns.
        private var body: (() throws -> T)?
        var result: Result<T, any Error>?

        init(name: String, body: @escaping () throws -> T) {
            self.name = name
            self.body = body
        }

        override func run() {
            _ = vsw_set_thread_name(name)
            if let body { result = Result { try body() } }
            body = nil
        }

        func discard() { body = nil }
    }
}

/// A plain pthread mutex for the rare control-path state (e.g. `TapDevice`'s closed flag).
final class Lock: @unchecked Sendable {
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>

    init() {
        mutex = .allocate(capacity: 1)
        mutex.initialize(to: pthread_mutex_t())
        pthread_mutex_init(mutex, nil)
    }

    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
    }

    func withLock<R>(_ body: () throws -> R) rethrows -> R {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body()
    }
}
