// Processes, shell commands and clean-up for `vswitch-bench compare`.
//
// Every child the benchmark starts (trafgen, iperf3, vswitchd, ovsdb-server,
// ovs-vswitchd) is spawned with posix_spawn into its own process group, so it
// can be stopped as a whole (trafgen's worker keeps sending when only its
// parent is signalled) and so Ctrl-C at the terminal reaches the benchmark
// only: the benchmark then runs its clean-up stack (LIFO), which stops the
// children and removes every namespace, link, bridge and temp directory it
// made. Threading: the main thread runs the benchmark; the signal source runs
// on a Dispatch queue and only calls `Cleanup.runAll` (idempotent, locked).

import Foundation
#if canImport(Glibc)
import Glibc
#endif

enum BenchError: Error, CustomStringConvertible {
    case failed(String)
    var description: String { if case .failed(let s) = self { return s }; return "" }
}

/// Live progress on stderr (the terminal table and JSON go to stdout / files).
enum Log {
    static let start = Date()
    static func progress(_ s: String) {
        let t = Date().timeIntervalSince(start)
        FileHandle.standardError.write(Data((String(format: "[%6.1fs] ", t) + s + "\n").utf8))
    }
}

@discardableResult
func sh(_ cmd: String, check: Bool = false) throws -> (status: Int32, out: String) {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/bin/sh")
    p.arguments = ["-c", cmd]
    let pipe = Pipe()
    p.standardOutput = pipe
    p.standardError = pipe
    try p.run()
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    let out = String(decoding: data, as: UTF8.self)
    if check && p.terminationStatus != 0 {
        throw BenchError.failed("command failed (\(p.terminationStatus)): \(cmd)\n\(out)")
    }
    return (p.terminationStatus, out)
}

/// Runs a command, throwing with its output when it fails.
@discardableResult
func must(_ cmd: String) throws -> String { try sh(cmd, check: true).out }

/// Runs a command, ignoring failure (clean-up paths).
func quiet(_ cmd: String) { _ = try? sh(cmd) }

/// A child process in its own process group, output to a log file.
final class Child {
    let pid: pid_t
    let name: String
    private(set) var exited = false
    private(set) var status: Int32 = 0

    init(_ argv: [String], log: String, name: String? = nil) throws {
        self.name = name ?? argv[0]
        var fa = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&fa)
        defer { posix_spawn_file_actions_destroy(&fa) }
        posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&fa, 1, log, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        posix_spawn_file_actions_adddup2(&fa, 1, 2)
        var attr = posix_spawnattr_t()
        posix_spawnattr_init(&attr)
        defer { posix_spawnattr_destroy(&attr) }
        posix_spawnattr_setpgroup(&attr, 0)
        var def = sigset_t(); sigfillset(&def)
        var mask = sigset_t(); sigemptyset(&mask)
        posix_spawnattr_setsigdefault(&attr, &def)
        posix_spawnattr_setsigmask(&attr, &mask)
        posix_spawnattr_setflags(&attr, Int16(POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK))
        var cargs: [UnsafeMutablePointer<CChar>?] = argv.map { strdup($0) } + [nil]
        defer { for a in cargs { free(a) } }
        var p: pid_t = 0
        let rc = posix_spawnp(&p, argv[0], &fa, &attr, &cargs, environ)
        guard rc == 0 else { throw BenchError.failed("cannot start \(argv[0]): \(String(cString: strerror(rc)))") }
        pid = p
        Children.add(self)
    }

    /// Non-blocking check.
    var running: Bool {
        if exited { return false }
        var st: Int32 = 0
        let r = waitpid(pid, &st, WNOHANG)
        if r == pid { exited = true; status = st; Children.remove(self); return false }
        return r == 0
    }

    /// Waits up to `timeout` seconds; true if it exited.
    func wait(timeout: Double) -> Bool {
        let end = Date().addingTimeInterval(timeout)
        while running {
            if Date() > end { return false }
            usleep(10_000)
        }
        return true
    }

    /// Signals the whole process group, then SIGKILLs it after `grace` seconds.
    func stop(signal: Int32 = SIGKILL, grace: Double = 3) {
        if !running { kill(-pid, SIGKILL); return }
        kill(-pid, signal)
        if !wait(timeout: signal == SIGKILL ? 5 : grace) {
            kill(-pid, SIGKILL)
            _ = wait(timeout: 5)
        }
        kill(-pid, SIGKILL)   // leftovers in the group (e.g. trafgen's worker)
    }
}

/// Every child still running, so the signal handler can stop them.
enum Children {
    nonisolated(unsafe) static var all: [pid_t: Child] = [:]
    static let lock = NSLock()
    static func add(_ c: Child) { lock.lock(); all[c.pid] = c; lock.unlock() }
    static func remove(_ c: Child) { lock.lock(); all[c.pid] = nil; lock.unlock() }
    static func killAll() {
        lock.lock(); let cs = Array(all.values); lock.unlock()
        for c in cs { kill(-c.pid, SIGKILL) }
    }
}

/// LIFO clean-up stack; runs on normal exit, failure and SIGINT/SIGTERM.
enum Cleanup {
    nonisolated(unsafe) static var actions: [(String, () -> Void)] = []
    static let lock = NSLock()
    nonisolated(unsafe) static var sources: [DispatchSourceSignal] = []

    static func push(_ what: String, _ action: @escaping () -> Void) {
        lock.lock(); actions.append((what, action)); lock.unlock()
    }

    /// Runs (and forgets) the actions pushed after `mark` (a count from `mark()`).
    static func mark() -> Int { lock.lock(); defer { lock.unlock() }; return actions.count }
    static func unwind(to mark: Int) {
        while true {
            lock.lock()
            guard actions.count > mark, let a = actions.popLast() else { lock.unlock(); return }
            lock.unlock()
            a.1()
        }
    }
    static func runAll() { unwind(to: 0) }

    static func installSignalHandlers() {
        for s in [SIGINT, SIGTERM, SIGHUP] {
            signal(s, SIG_IGN)
            let src = DispatchSource.makeSignalSource(signal: s, queue: .global())
            src.setEventHandler {
                Log.progress("signal \(s): stopping children and removing everything the benchmark created")
                Children.killAll()
                runAll()
                exit(128 + s)
            }
            src.resume()
            sources.append(src)
        }
    }
}

/// CPU time (user + system) of a process and, optionally, all its threads, in seconds.
func processCPUSeconds(_ pid: pid_t) -> Double {
    guard let s = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
          let close = s.lastIndex(of: ")") else { return 0 }
    let fields = s[s.index(after: close)...].split(separator: " ")
    // after ")": state(0) ppid(1) ... utime is field 14 overall -> index 11 here, stime 12
    guard fields.count > 13, let u = Double(fields[11]), let st = Double(fields[12]) else { return 0 }
    return (u + st) / Double(sysconf(Int32(_SC_CLK_TCK)))
}

/// utime+stime of a process's threads whose name starts with `prefix` (vswitchd's forwarding threads are
/// named vsw-fwd-N), from /proc/PID/task/TID/stat.
func threadsCPUSeconds(_ pid: pid_t, namePrefix prefix: String) -> Double {
    var total = 0.0
    let hz = Double(sysconf(Int32(_SC_CLK_TCK)))
    for tid in (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task")) ?? [] {
        guard let s = try? String(contentsOfFile: "/proc/\(pid)/task/\(tid)/stat", encoding: .utf8),
              let open = s.firstIndex(of: "("), let close = s.lastIndex(of: ")"),
              s[s.index(after: open)..<close].hasPrefix(prefix) else { continue }
        let f = s[s.index(after: close)...].split(separator: " ")
        guard f.count > 13, let u = Double(f[11]), let st = Double(f[12]) else { continue }
        total += (u + st) / hz
    }
    return total
}

/// (user, system) CPU seconds of every live process in a process group, and of the ksoftirqd threads.
func groupCPUSeconds(pgid: pid_t) -> (user: Double, system: Double) {
    var u = 0.0, st = 0.0
    let hz = Double(sysconf(Int32(_SC_CLK_TCK)))
    for e in (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? [] where e.first?.isNumber == true {
        guard let s = try? String(contentsOfFile: "/proc/\(e)/stat", encoding: .utf8), let close = s.lastIndex(of: ")") else { continue }
        let f = s[s.index(after: close)...].split(separator: " ")
        guard f.count > 13 else { continue }
        let comm = s[s.index(after: s.firstIndex(of: "(")!)..<close]
        if Int32(f[2]) == pgid || comm.hasPrefix("ksoftirqd/") {
            u += (Double(f[11]) ?? 0) / hz
            st += (Double(f[12]) ?? 0) / hz
        }
    }
    return (u, st)
}

/// Machine-wide busy and total CPU seconds from /proc/stat (all cores).
struct MachineCPU {
    var busy: Double
    var total: Double
    var softirq: Double
    var system: Double
    static func read() -> MachineCPU {
        guard let s = try? String(contentsOfFile: "/proc/stat", encoding: .utf8),
              let line = s.split(separator: "\n").first else { return MachineCPU(busy: 0, total: 0, softirq: 0, system: 0) }
        let v = line.split(separator: " ").dropFirst().compactMap { Double($0) }
        let hz = Double(sysconf(Int32(_SC_CLK_TCK)))
        // user nice system idle iowait irq softirq steal guest guest_nice
        let idle = v[3] + v[4]
        let total = v.prefix(8).reduce(0, +)
        return MachineCPU(busy: (total - idle) / hz, total: total / hz, softirq: v[6] / hz, system: v[2] / hz)
    }
}

func monotonic() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}
