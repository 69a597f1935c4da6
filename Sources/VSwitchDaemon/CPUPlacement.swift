// CPUPlacement: which CPUs the forwarding threads and the rest of the daemon run on.
//
// Like Open vSwitch's `pmd-cpu-mask` (its poll-mode threads) against the CPUs left to its main,
// handler and revalidator threads: `vswitchd --forwarding-cpus LIST` pins forwarding thread t to
// LIST[t mod count]; `--housekeeping-cpus LIST` confines every other thread of the daemon — the
// control loop, the capture writer, the metrics endpoint, namespace helpers — to LIST. Without
// --forwarding-cpus, forwarding thread t runs on the t-th CPU the process may use outside the
// housekeeping list, when there are at least as many such CPUs as threads (without either option:
// thread t on CPU t, as before); the other threads are left to the scheduler unless confined.
//
// Why: the capture writer (issue 4) puts every captured byte into the page cache (~530 ns per
// 1518-byte frame, bench/README.md "Capture cost"); on the forwarding thread's core that is taken
// from forwarding. With housekeeping elsewhere the forwarding thread pays only its copy into the ring.
//
// Threading: `confineCurrentThread` is called by the control (main) thread before it starts any other
// thread, so every thread it starts later inherits the housekeeping set; forwarding threads then pin
// themselves to their own CPU.

import CVSwitchShim
import Foundation
import VSwitchPolicy
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A set of CPU numbers written the way `taskset -c` and the kernel's cpulist files write them:
/// "1", "0,2", "2-5,8".
public struct CPUList: Equatable, Sendable, CustomStringConvertible {
    /// The CPUs, ascending, each once.
    public let cpus: [Int]

    public init(cpus: [Int]) { self.cpus = Array(Set(cpus)).sorted() }

    /// Parses a cpulist. Throws with a message that says what is wrong and what would be valid.
    public init(parsing text: String) throws {
        var out: [Int] = []
        let items = text.split(separator: ",", omittingEmptySubsequences: false)
        for raw in items {
            let item = raw.trimmingCharacters(in: .whitespaces)
            let bounds = item.split(separator: "-", omittingEmptySubsequences: false)
            guard !item.isEmpty, bounds.count <= 2, let lo = Int(bounds[0]), lo >= 0,
                  let hi = bounds.count == 2 ? Int(bounds[1]) : lo, hi >= lo, hi < 1024 else {
                throw DaemonError("bad CPU list '\(text)': '\(item)' is not a CPU number or an ascending range (e.g. 1, 0,2 or 2-5,8; CPUs 0-1023)")
            }
            out.append(contentsOf: lo...hi)
        }
        self.init(cpus: out)
    }

    public var description: String { describeRuns(cpus, separator: ",") }

    /// The CPUs this process may run on: the calling thread's affinity, read by the control thread at start
    /// before it confines itself (a cpuset cgroup or `taskset` narrows it).
    public static func allowed() -> CPUList {
        let cpus = CPUPlacement.currentThreadCPUs()
        if !cpus.cpus.isEmpty { return cpus }
        return CPUList(cpus: Array(0..<max(Int(sysconf(Int32(_SC_NPROCESSORS_CONF))), 1)))
    }
}

/// Where the daemon's threads run.
public struct CPUPlacement: Equatable, Sendable {
    public var forwarding: CPUList?
    public var housekeeping: CPUList?

    public init(forwarding: CPUList? = nil, housekeeping: CPUList? = nil) {
        self.forwarding = forwarding; self.housekeeping = housekeeping
    }

    /// Refuses CPUs the process may not use (named, with the ones it may).
    public func check(allowed: CPUList) throws {
        for (flag, list) in [("--forwarding-cpus", forwarding), ("--housekeeping-cpus", housekeeping)] {
            guard let list else { continue }
            let bad = list.cpus.filter { !allowed.cpus.contains($0) }
            if !bad.isEmpty {
                throw DaemonError("\(flag) \(list): CPU \(CPUList(cpus: bad)) not available to this process (available: \(allowed))")
            }
        }
    }

    /// The CPU forwarding thread `index` of `count` is pinned to, or nil (left to the scheduler).
    /// `--forwarding-cpus` decides when given. Otherwise thread t goes to the t-th CPU the process may use
    /// (`allowed`) that is not a housekeeping CPU, when there are enough of those for every thread (so
    /// `--housekeeping-cpus 0` alone moves the forwarding threads off CPU 0); else the thread is unpinned.
    public func forwardingCPU(thread index: Int, of count: Int, allowed: CPUList) -> Int? {
        if let f = forwarding, !f.cpus.isEmpty { return f.cpus[index % f.cpus.count] }
        let free = allowed.cpus.filter { !(housekeeping?.cpus.contains($0) ?? false) }
        return count <= free.count ? free[index] : nil
    }

    /// Confines the calling thread (and the threads it creates from now on) to the housekeeping CPUs.
    public func confineCurrentThread() throws {
        guard let h = housekeeping else { return }
        let c32 = h.cpus.map { Int32($0) }
        let err = c32.withUnsafeBufferPointer { vsw_pin_thread_set($0.baseAddress, Int32($0.count)) }
        if err != 0 { throw DaemonError("--housekeeping-cpus \(h): \(String(cString: strerror(err)))") }
    }

    /// The CPUs the calling thread is allowed on now (for tests and `allowed()`).
    public static func currentThreadCPUs() -> CPUList {
        var mask = [UInt8](repeating: 0, count: 128)   // 1,024 CPUs
        guard mask.withUnsafeMutableBufferPointer({ vsw_thread_cpus($0.baseAddress, Int32($0.count)) }) == 0 else { return CPUList(cpus: []) }
        var cpus: [Int] = []
        for c in 0..<(mask.count * 8) where mask[c / 8] & (1 << (c % 8)) != 0 { cpus.append(c) }
        return CPUList(cpus: cpus)
    }
}
