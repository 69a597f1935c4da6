// `vswitch-bench compare`: VSwitch against the Linux bridge and Open vSwitch's
// userspace datapath, same two virtual systems, same run. See bench/README.md.
//
// Order: the forwarding core alone (no I/O), then each switch in turn — set
// up, measured, torn down — so that only one switch exists (and burns CPU) at
// a time: direct (no switch: the generator's ceiling and the CPU baseline),
// bridge, ovs-system, ovs-afxdp, vswitch-1t, vswitch-2t. Per switch: the
// loss-free rate search at 64/512/1518 bytes, CPU per frame at one fixed
// offered load, MAC scale, latency at 10/50/90% of its loss-free rate, iperf3.
// Then the terminal table, results.json, the plots (bench/plot.py) and
// summary.md (what bench/RESULTS.md is made from).

import ArgumentParser
import Foundation
#if canImport(Glibc)
import Glibc
#endif

struct SUTReport: Codable {
    var name: String
    var summary: String
    var notes: [String]
    var error: String?
    var sizes: [SizeResult] = []
    var cpu: CPUResult?
    var mac_scale: [MACScalePoint] = []
    var latency: [LatencyPoint] = []
    var tcp: TCPResult?
    var switch_counters: String?
    var capture_ab: [CaptureABPoint] = []
}

/// `--measure capture-ab` (capture entries): the same trial without and with the capture running, in the same
/// daemon, back to back (the order alternates per round): flat-out forwarded frames/s per size, and CPU per frame.
struct CaptureABPoint: Codable {
    var measure: String        // "flat_out_forwarded_pps", "cpu_ns_per_frame" (the process) or "forwarding_thread_cpu_ns_per_frame"
    var size: Int
    var round: Int
    var without_capture: Double
    var with_capture: Double
    var ratio: Double          // with / without
    var sender_refused_without: UInt64?
    var sender_refused_with: UInt64?
}

struct Machine: Codable {
    var cpu_model: String
    var cores: Int
    var kernel: String
    var load_before: String
    var load_after: String?
}

struct Report: Codable {
    var command: String
    var started: String
    var seconds: Double
    var quick: Bool
    var machine: Machine
    var generator: String
    var latency_tool: String
    var cpu_load_pps: Int
    var cpu_size: Int
    var core: [CoreBenchResult]
    var switches: [SUTReport]
    var ratios: [String: Double]
    var findings: [String]
}

struct Compare: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "VSwitch (TAP ports) against the Linux bridge and Open vSwitch userspace (veth ports), same virtual systems, same run.")

    @Flag(help: "Smoke run for CI (about 2 minutes): short trials, fewer search steps.") var quick = false
    @Option(help: "Results folder (default results/bench-<timestamp>).") var output: String?
    @Option(help: "Comma-separated switches to run (direct,bridge,ovs-system,ovs-afxdp,vswitch-1t,vswitch-2t,vswitch-1t-syscall,vswitch-1t-nooffload,vswitch-1t-netdev,vswitch-1t-capture,vswitch-1t-capture-hk).") var only: String?
    @Option(help: "Fixed offered load (64-byte frames/s) for CPU per frame; every switch must sustain it.") var cpuLoad = 100_000
    @Option(help: "Frame size of the CPU-per-frame measurement (64 unless set; the table and ratios then refer to it).") var cpuSize = 64
    @Option(help: "Comma-separated frame sizes of the rate/loss search (default 64,512,1518).") var sizes = "64,512,1518"
    @Option(help: "Comma-separated measurements to make (rate,cpu,mac,latency,tcp; default all; capture-ab: for vswitch-1t-capture and vswitch-1t-capture-hk, flat-out rates at --sizes and CPU per frame without and with the capture, alternating in the same daemon): e.g. `--measure rate,cpu --sizes 64` is the quick A/B of a port I/O change.") var measure = "rate,cpu,mac,latency,tcp"
    @Option(help: "Seconds per rate trial (default 2, 0.5 with --quick).") var trialSeconds: Double?
    @Option(help: "Rounds of each capture-ab pair.") var abRounds = 3

    func run() throws {
        guard getuid() == 0 else { throw BenchError.failed("vswitch-bench compare must run as root (namespaces, TAPs, bridges)") }
        for tool in ["trafgen", "nft", "iperf3", "ovs-vswitchd", "ovsdb-server", "ovs-vsctl", "ip"] {
            if (try? sh("command -v \(tool)").status) != 0 {
                throw BenchError.failed("\(tool) not found: run scripts/install-deps.sh (netsniff-ng, nftables, iperf3, openvswitch-switch, iproute2)")
            }
        }
        let started = Date()
        _ = loadBefore   // a lazy global: read it now, before the run loads the machine
        let stamp = ISO8601DateFormatter.string(from: started, timeZone: TimeZone(identifier: "UTC")!, formatOptions: [.withYear, .withMonth, .withDay, .withTime])
        let outDir = output ?? "results/bench-\(stamp.replacingOccurrences(of: ":", with: ""))"
        try FileManager.default.createDirectory(atPath: outDir, withIntermediateDirectories: true)
        Cleanup.installSignalHandlers()
        removeStale()
        try makeRunDir()
        defer { Cleanup.runAll() }

        let p = quick
            ? (trial: 0.5, steps: 2, cpuSeconds: 1.0, macs: [1, 1000, 100_000], macSeconds: 0.7, latSeconds: 0.7, tcpSeconds: 1, coreSeconds: 0.3,
               suts: ["direct", "bridge", "ovs-system", "vswitch-1t"])
            : (trial: 2.0, steps: 6, cpuSeconds: 3.0, macs: [1, 1000, 100_000, 1_000_000], macSeconds: 3.0, latSeconds: 3.0, tcpSeconds: 5, coreSeconds: 2.0,
               suts: ["direct", "bridge", "ovs-system", "ovs-afxdp", "vswitch-1t", "vswitch-2t", "vswitch-1t-syscall", "vswitch-1t-nooffload", "vswitch-1t-netdev"])
        let names = only.map { $0.split(separator: ",").map(String.init) } ?? p.suts
        for w in measure.split(separator: ",") where !["rate", "cpu", "mac", "latency", "tcp", "capture-ab"].contains(String(w)) {
            throw BenchError.failed("--measure: unknown measurement \(w)")
        }
        let rateSizes = try sizes.split(separator: ",").map { s -> Int in
            guard let v = Int(s), v >= 64, v <= 1518 else { throw BenchError.failed("--sizes: \(s) is not a frame size of 64-1518 bytes") }
            return v
        }
        let trial = trialSeconds ?? p.trial
        let cmdline = "vswitch-bench " + CommandLine.arguments.dropFirst().joined(separator: " ")
        Log.progress("\(cmdline): results in \(outDir); load \(loadAverage())")

        // 1. The forwarding core alone.
        var core: [CoreBenchResult] = []
        let m = Set(measure.split(separator: ",").map(String.init))
        for threads in (m != Set(["rate", "cpu", "mac", "latency", "tcp"]) ? [] : quick ? [1] : [1, 2]) {
            Log.progress("core: forwarding core alone, 64 B, 1,000 MACs, \(threads) thread(s)")
            let r = CoreBench.run(CoreBenchConfig(size: 64, macs: 1000, threads: threads, mode: "access", seconds: p.coreSeconds))
            Log.progress(String(format: "  core: %.1f Mpps total, %.1f Mpps/core, %.1f ns/frame", r.mpps_total, r.mpps_per_core, r.ns_per_frame))
            core.append(r)
        }

        // 2. Each switch.
        var reports: [SUTReport] = []
        var baseline: Double?
        for name in names {
            let sut: SwitchUnderTest
            switch name {
            case "direct": sut = directSUT()
            case "bridge": sut = bridgeSUT()
            case "ovs-system": sut = ovsSUT(portType: "system")
            case "ovs-afxdp": sut = ovsSUT(portType: "afxdp")
            case "vswitch-1t": sut = vswitchSUT(threads: 1)
            case "vswitch-2t": sut = vswitchSUT(threads: 2)
            case "vswitch-1t-syscall": sut = vswitchSUT(threads: 1, io: "syscall")
            case "vswitch-1t-nooffload": sut = vswitchSUT(threads: 1, offloads: false)
            case "vswitch-1t-netdev": sut = vswitchSUT(threads: 1, netdev: true)
            case "vswitch-1t-capture": sut = vswitchSUT(threads: 1, capture: true)
            case "vswitch-1t-capture-hk": sut = vswitchSUT(threads: 1, capture: true, housekeepingOnCPU0: true)
            default: throw BenchError.failed("unknown switch \(name)")
            }
            Log.progress("\(name): setting up — \(sut.summary)")
            var rep = SUTReport(name: name, summary: sut.summary, notes: [])
            do {
                try sut.setUp()
                let sizes = m.contains("rate") ? self.sizes.split(separator: ",").compactMap { Int($0) } : []
                for size in sizes {
                    if name == "direct" {
                        // The generator's ceiling: flat out, no search.
                        let t = try runTrial(sut, size: size, rate: nil, seconds: trial)
                        Log.progress(String(format: "  direct %4dB flat out: %.0f pps offered, loss %.3f%%", size, t.offered_pps, t.loss * 100))
                        rep.sizes.append(SizeResult(size: size, ceiling_offered_pps: t.offered_pps, ceiling_forwarded_pps: t.forwarded_pps,
                                                    ceiling_loss: t.loss, loss_free_pps: t.loss < 0.001 ? t.offered_pps : 0,
                                                    loss_free_trial_loss: t.loss, generator_limited: t.loss < 0.001,
                                                    sender_backpressure: t.refused_by_sender > 0, trials: [t]))
                    } else {
                        rep.sizes.append(try searchLossFree(sut, size: size, steps: p.steps, seconds: trial))
                    }
                }
                if m.contains("cpu") {
                // VSWITCH_BENCH_PERF=DIR: a `perf record -e cpu-clock -g` of the switch process during the CPU trial
                // (DIR/NAME.perf.data; read with `perf report -i ... --no-children`).
                var perf: Child?
                if let dir = ProcessInfo.processInfo.environment["VSWITCH_BENCH_PERF"], let pid = sut.switchPids.first {
                    perf = try? Child(["perf", "record", "-e", "cpu-clock", "-g", "-p", "\(pid)", "-o", "\(dir)/\(name).perf.data"],
                                      log: "\(dir)/\(name).perf.log", name: "perf")
                }
                let cpu = try measureCPU(sut, rate: cpuLoad, seconds: p.cpuSeconds, baselineNsPerFrame: baseline, size: cpuSize)
                perf?.stop(signal: SIGINT, grace: 10)
                if name == "direct" { baseline = cpu.kernel_path_ns_per_frame }
                rep.cpu = cpu
                Log.progress(String(format: "  %@ CPU at %d pps offered (%.0f forwarded, loss %.2f%%): switch process %@ ns/frame, kernel path %.0f ns/frame, minus no-switch baseline %@",
                                    name, cpuLoad, cpu.forwarded_pps, cpu.loss * 100, cpu.switch_process_ns_per_frame.map { String(format: "%.0f", $0) } ?? "-",
                                    cpu.kernel_path_ns_per_frame, cpu.switch_ns_per_frame.map { String(format: "%.0f", $0) } ?? "-"))
                }
                if m.contains("capture-ab"), let on = sut.captureOn, let off = sut.captureOff {
                    func pair<T>(_ round: Int, _ body: () throws -> T) throws -> (without: T, with: T) {
                        // Alternate the order per round: neither side always runs second.
                        if round % 2 == 1 { off(); let a = try body(); try on(); let b = try body(); return (a, b) }
                        try on(); let b = try body(); off(); let a = try body(); return (a, b)
                    }
                    for size in rateSizes {
                        for round in 1...max(1, abRounds) {
                            let (a, b) = try pair(round) { try runTrial(sut, size: size, rate: nil, seconds: trial) }
                            rep.capture_ab.append(CaptureABPoint(measure: "flat_out_forwarded_pps", size: size, round: round,
                                                                 without_capture: a.forwarded_pps, with_capture: b.forwarded_pps,
                                                                 ratio: a.forwarded_pps > 0 ? b.forwarded_pps / a.forwarded_pps : 0,
                                                                 sender_refused_without: a.refused_by_sender, sender_refused_with: b.refused_by_sender))
                            // The forwarding thread's CPU per forwarded frame flat out (what bounds its rate when it is the limit).
                            let fa = (a.forwarding_threads_cpu_s ?? 0) * 1e9 / Double(max(a.window_frames, 1))
                            let fb = (b.forwarding_threads_cpu_s ?? 0) * 1e9 / Double(max(b.window_frames, 1))
                            rep.capture_ab.append(CaptureABPoint(measure: "flat_out_forwarding_thread_cpu_ns_per_frame", size: size, round: round,
                                                                 without_capture: fa, with_capture: fb, ratio: fa > 0 ? fb / fa : 0))
                            Log.progress(String(format: "  %@ capture A/B %4dB flat out, round %d: without %.0f pps (loss %.3f%%), with %.0f pps (loss %.3f%%) = %.2f; forwarding thread %.0f -> %.0f ns/frame",
                                                name, size, round, a.forwarded_pps, a.loss * 100, b.forwarded_pps, b.loss * 100,
                                                a.forwarded_pps > 0 ? b.forwarded_pps / a.forwarded_pps : 0, fa, fb))
                        }
                    }
                    for round in 1...max(1, abRounds) {
                        let (a, b) = try pair(round) { try measureCPU(sut, rate: cpuLoad, seconds: p.cpuSeconds, baselineNsPerFrame: nil, size: cpuSize) }
                        let x = a.switch_process_ns_per_frame ?? 0, y = b.switch_process_ns_per_frame ?? 0
                        rep.capture_ab.append(CaptureABPoint(measure: "cpu_ns_per_frame", size: cpuSize, round: round,
                                                             without_capture: x, with_capture: y, ratio: x > 0 ? y / x : 0))
                        // The forwarding thread alone: what the capture takes from forwarding (its copy into the ring).
                        let fx = a.forwarding_threads_ns_per_frame ?? 0, fy = b.forwarding_threads_ns_per_frame ?? 0
                        rep.capture_ab.append(CaptureABPoint(measure: "forwarding_thread_cpu_ns_per_frame", size: cpuSize, round: round,
                                                             without_capture: fx, with_capture: fy, ratio: fx > 0 ? fy / fx : 0))
                        Log.progress(String(format: "  %@ capture A/B CPU at %d pps of %d B, round %d: without %.0f ns/frame, with %.0f ns/frame = %.2f; forwarding thread %.0f -> %.0f ns/frame = %.2f",
                                            name, cpuLoad, cpuSize, round, x, y, x > 0 ? y / x : 0, fx, fy, fx > 0 ? fy / fx : 0))
                    }
                    try on()   // the capture's counters below cover the whole run
                }
                if name != "direct" && m.contains("mac") { rep.mac_scale = try measureMACScale(sut, macs: p.macs, seconds: p.macSeconds) }
                if m.contains("latency") {
                    let lf = rep.sizes.first?.loss_free_pps ?? 0
                    let base = lf > 0 ? lf : (rep.sizes.first?.ceiling_forwarded_pps ?? 10_000) * 0.5
                    for pct in [10, 50, 90] {
                        let rate = base * Double(pct) / 100
                        let l = try runLatencyProbe(rate: rate, seconds: p.latSeconds, percent: pct)
                        Log.progress(String(format: "  %@ latency at %d%% (%.0f pps): p50 %.1f µs, p99 %.1f µs, p99.9 %.1f µs (%d/%d received)",
                                            name, pct, rate, l.p50_us, l.p99_us, l.p999_us, l.received, l.sent))
                        rep.latency.append(l)
                    }
                }
                if m.contains("tcp") {
                    let tcp = measureTCP(sut, seconds: p.tcpSeconds)
                    Log.progress(String(format: "  %@ iperf3 TCP: %.2f Gb/s, %d retransmits%@", name, tcp.gbps, tcp.retransmits, tcp.error.map { " (\($0))" } ?? ""))
                    rep.tcp = tcp
                }
                if name.hasPrefix("ovs"), let st = try? sh("ovs-vsctl --db=unix:\(runDir)/\(name)/db.sock --columns=name,statistics list interface").out {
                    rep.switch_counters = st
                    try? st.write(toFile: outDir + "/\(name)-counters.txt", atomically: true, encoding: .utf8)
                }
                if let s = vswitchStats(sut), let d = try? JSONSerialization.data(withJSONObject: s, options: [.sortedKeys]) {
                    rep.switch_counters = String(decoding: d, as: UTF8.self)
                    try? d.write(to: URL(fileURLWithPath: outDir + "/\(name)-counters.json"))
                }
                if let more = sut.afterMeasure?() { sut.notes += more; for n in more { Log.progress("  \(name) \(n)") } }
            } catch {
                rep.error = "\(error)"
                Log.progress("  \(name) FAILED: \(error)")
            }
            rep.notes = sut.notes
            Log.progress("\(name): tearing down")
            sut.tearDown()
            reports.append(rep)
        }

        // 3. Report.
        let cpuModel = ((try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? "")
            .split(separator: "\n").first { $0.hasPrefix("model name") }
            .map { String($0.split(separator: ":", maxSplits: 1)[1]).trimmingCharacters(in: .whitespaces) } ?? "?"
        var report = Report(command: cmdline, started: stamp, seconds: Date().timeIntervalSince(started), quick: quick,
                            machine: Machine(cpu_model: cpuModel, cores: Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))),
                                             kernel: (try? sh("uname -r").out.trimmingCharacters(in: .whitespacesAndNewlines)) ?? "?",
                                             load_before: "", load_after: loadAverage()),
                            generator: "trafgen (netsniff-ng \(trafgenVersion())), one worker pinned to CPU 0, --no-sock-mem -Q, qdisc bypass; rates, loss, CPU and MAC scale",
                            latency_tool: "vswitch-bench's own AF_PACKET generator/sink (one thread on CPU 0, send time in the payload, userspace receive time, HdrHistogram)",
                            cpu_load_pps: cpuLoad, cpu_size: cpuSize, core: core, switches: reports, ratios: [:], findings: [])
        report.machine.load_before = loadBefore
        computeRatios(&report)
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .sortedKeys]
        try enc.encode(report).write(to: URL(fileURLWithPath: outDir + "/results.json"))
        let table = renderTable(report)
        print(table)
        let md = renderMarkdown(report, table: table)
        try md.write(toFile: outDir + "/summary.md", atomically: true, encoding: .utf8)
        try table.write(toFile: outDir + "/table.txt", atomically: true, encoding: .utf8)
        // Plots.
        let plot = plotScript()
        let r = try? sh("/usr/bin/python3 \(plot) \(outDir)/results.json \(outDir)")
        if r?.status != 0 { Log.progress("plots failed: \(r?.out ?? "no python3")") }
        Log.progress("done in \(Int(Date().timeIntervalSince(started))) s: \(outDir)/results.json, summary.md, table.txt, *.png")
    }
}

nonisolated(unsafe) let loadBefore = loadAverage()

func loadAverage() -> String {
    ((try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8)) ?? "").split(separator: " ").prefix(3).joined(separator: " ")
}

func trafgenVersion() -> String {
    let v = (try? sh("trafgen -v").out) ?? ""
    return v.split(separator: "\n").first.map { String($0).replacingOccurrences(of: "trafgen ", with: "") } ?? "?"
}

/// bench/plot.py, found from the source tree (next to this file's folder) or VSWITCH_BENCH_PLOT.
func plotScript() -> String {
    if let e = ProcessInfo.processInfo.environment["VSWITCH_BENCH_PLOT"] { return e }
    let cands = [FileManager.default.currentDirectoryPath + "/bench/plot.py",
                 URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("plot.py").path]
    return cands.first { FileManager.default.fileExists(atPath: $0) } ?? cands[0]
}

// MARK: - Ratios and findings

func computeRatios(_ r: inout Report) {
    func sut(_ n: String) -> SUTReport? { r.switches.first { $0.name == n && $0.error == nil } }
    func lf64(_ s: SUTReport?) -> Double? { s?.sizes.first { $0.size == 64 }.map { $0.loss_free_pps } }
    // A CPU-per-frame figure counts only from a trial the switch sustained (loss < 0.1 %): a switch that dropped most
    // of the load spent its CPU on frames it never forwarded (session 8 review: OVS-system at 82 % loss gave ratios).
    func sustained(_ s: SUTReport?) -> CPUResult? { s?.cpu.flatMap { $0.loss < 0.001 ? $0 : nil } }
    let vs = sut("vswitch-1t")
    var findings: [String] = []
    for other in ["bridge", "ovs-system", "ovs-afxdp"] {
        let o = sut(other)
        if let a = lf64(vs), let b = lf64(o), b > 0 { r.ratios["loss_free_64B_vswitch_over_\(other)"] = a / b }
        if let a = vs?.sizes.first(where: { $0.size == 64 })?.ceiling_forwarded_pps,
           let b = o?.sizes.first(where: { $0.size == 64 })?.ceiling_forwarded_pps, b > 0 {
            r.ratios["flat_out_forwarded_64B_vswitch_over_\(other)"] = a / b
        }
        // Both figures of one kind (path minus baseline on both sides, else none), both sides non-zero.
        if let a = sustained(vs)?.switch_ns_per_frame, let b = sustained(o)?.switch_ns_per_frame, a > 0, b > 0 {
            r.ratios["cpu_per_frame_vs_no_switch_vswitch_over_\(other)"] = a / b
        }
        if let a = sustained(vs)?.switch_process_ns_per_frame, let b = sustained(o)?.switch_process_ns_per_frame, a > 0, b > 0 {
            r.ratios["cpu_per_frame_process_vswitch_over_\(other)"] = a / b
        }
        if let a = vs?.tcp?.gbps, let b = o?.tcp?.gbps, a > 0, b > 0 { r.ratios["tcp_vswitch_over_\(other)"] = a / b }
        for size in [512, 1518] {
            if let a = vs?.sizes.first(where: { $0.size == size })?.loss_free_pps,
               let b = o?.sizes.first(where: { $0.size == size })?.loss_free_pps, b > 0 {
                r.ratios["loss_free_\(size)B_vswitch_over_\(other)"] = a / b
            }
        }
        if let a = vs?.mac_scale.last, let b = o?.mac_scale.last, b.forwarded_pps > 0, a.macs == b.macs {
            r.ratios["mac_scale_\(a.macs)_forwarded_vswitch_over_\(other)"] = a.forwarded_pps / b.forwarded_pps
        }
    }
    if let a = lf64(sut("vswitch-2t")), let b = lf64(vs), b > 0 { r.ratios["loss_free_64B_vswitch_2t_over_1t"] = a / b }
    // Capture cost (issue 4): the same measurement while every frame of the receiving port is captured to a file.
    // vswitch-1t-capture: the writer thread shares the forwarding core; vswitch-1t-capture-hk: it runs on the
    // housekeeping CPU (vswitchd --forwarding-cpus 1 --housekeeping-cpus 0). Ratio keys of the latter say "hk".
    for (capName, tag) in [("vswitch-1t-capture", ""), ("vswitch-1t-capture-hk", "hk_")] {
        let cap = sut(capName)
        for size in [64, 512, 1518] {
            if let a = cap?.sizes.first(where: { $0.size == size })?.loss_free_pps,
               let b = vs?.sizes.first(where: { $0.size == size })?.loss_free_pps, b > 0 {
                r.ratios["loss_free_\(size)B_capture_\(tag)over_no_capture"] = a / b
            }
        }
        for size in [64, 512, 1518] {
            if let a = cap?.sizes.first(where: { $0.size == size })?.ceiling_forwarded_pps,
               let b = vs?.sizes.first(where: { $0.size == size })?.ceiling_forwarded_pps, b > 0 {
                r.ratios["flat_out_forwarded_\(size)B_capture_\(tag)over_no_capture"] = a / b
            }
        }
        if let a = cap?.cpu?.switch_process_ns_per_frame, let b = vs?.cpu?.switch_process_ns_per_frame, b > 0 {
            r.ratios["cpu_per_frame_process_capture_\(tag)over_no_capture"] = a / b
        }
        if let c = cap, !c.capture_ab.isEmpty {
            // The same-daemon A/B: medians of the rounds.
            for measure in ["flat_out_forwarded_pps", "flat_out_forwarding_thread_cpu_ns_per_frame", "cpu_ns_per_frame", "forwarding_thread_cpu_ns_per_frame"] {
                let sizes = Set(c.capture_ab.filter { $0.measure == measure }.map(\.size))
                for size in sizes.sorted() {
                    let pts = c.capture_ab.filter { $0.measure == measure && $0.size == size }
                    let m = median(pts.map(\.ratio))
                    r.ratios["capture_\(tag)ab_\(measure)_\(size)B_with_over_without_median"] = m
                    findings.append(String(format: "\(capName): capture A/B in one daemon (%@, %d B, %d rounds): with/without = %@; median %.2f (without: %@; with: %@).",
                                           measure == "cpu_ns_per_frame" ? "process CPU per frame at \(r.cpu_load_pps) pps"
                                               : measure == "forwarding_thread_cpu_ns_per_frame" ? "forwarding thread's CPU per frame at \(r.cpu_load_pps) pps"
                                               : measure == "flat_out_forwarding_thread_cpu_ns_per_frame" ? "forwarding thread's CPU per frame flat out"
                                               : "flat-out forwarded rate",
                                           size, pts.count, pts.map { String(format: "%.2f", $0.ratio) }.joined(separator: ", "), m,
                                           pts.map { String(format: "%.0f", $0.without_capture) }.joined(separator: ", "),
                                           pts.map { String(format: "%.0f", $0.with_capture) }.joined(separator: ", ")))
                }
            }
        }
        if let c = cap, let v = vs {
            // The issue's figure in one line: the capture entry's rates next to vswitch-1t's, same run.
            for size in [64, 512, 1518] {
                guard let a = c.sizes.first(where: { $0.size == size }), let b = v.sizes.first(where: { $0.size == size }) else { continue }
                findings.append(String(format: "\(capName): capture cost at %d B (same run): loss-free %@ with capture / %@ without = %.2f; flat-out forwarded %@ / %@ = %.2f.",
                                       size, fmtPps(a.loss_free_pps), fmtPps(b.loss_free_pps), b.loss_free_pps > 0 ? a.loss_free_pps / b.loss_free_pps : 0,
                                       fmtPps(a.ceiling_forwarded_pps), fmtPps(b.ceiling_forwarded_pps),
                                       b.ceiling_forwarded_pps > 0 ? a.ceiling_forwarded_pps / b.ceiling_forwarded_pps : 0))
            }
            if let a = c.cpu?.switch_process_ns_per_frame, let b = v.cpu?.switch_process_ns_per_frame, b > 0 {
                findings.append(String(format: "\(capName): capture cost in CPU (%d B frames at %d pps offered): %.0f ns with capture / %.0f ns without per forwarded frame = %.2f.",
                                       r.cpu_size, r.cpu_load_pps, a, b, a / b))
            }
        }
    }
    // The plain statement the issue asks for.
    if let c = r.core.first, let v = vs {
        let through = v.sizes.first { $0.size == 64 }?.ceiling_forwarded_pps ?? 0
        let corePps = c.mpps_per_core * 1e6
        let gen = sut("direct")?.sizes.first { $0.size == 64 }?.ceiling_offered_pps ?? 0
        let ioBound = through > 0 && corePps > 10 * through
        if ioBound {
            findings.append(String(format: "VSwitch's port I/O is the limit: the forwarding core alone does %.1f Mpps per core, through TAP ports VSwitch forwards at most %.2f Mpps at 64 B (%.0fx less). Each frame still crosses the kernel twice through the TAP character device (io_uring batches the system calls, one submission per batch and direction, but not the per-frame tun work); offloads, multi-queue and netdev ports are issue 7.",
                                    c.mpps_per_core, through / 1e6, corePps / max(through, 1)))
        }
        if gen > 0, let lf = lf64(v), lf > 0.95 * gen {
            findings.append(String(format: "At 64 B VSwitch forwarded everything trafgen offered (%.2f Mpps); the generator, not the switch, is the limit of the rate figure.", gen / 1e6))
        }
    }
    if let v = vs, let pc = v.cpu?.switch_process_ns_per_frame {
        findings.append(String(format: "VSwitch (1 thread) spends %.0f ns of CPU per forwarded %d-byte frame (vswitchd's utime+stime at %d pps offered).", pc, r.cpu_size, r.cpu_load_pps))
    }
    for s in r.switches where s.error != nil { findings.append("\(s.name) did not complete: \(s.error!.prefix(200))") }
    for s in r.switches { for n in s.notes where !n.contains("issue 7") { findings.append("\(s.name): \(n)") } }
    r.findings = findings
}

// MARK: - Rendering

/// The median (0 for none): the A/B rounds' summary figure.
func median(_ xs: [Double]) -> Double {
    let v = xs.sorted()
    return v.isEmpty ? 0 : v.count % 2 == 1 ? v[v.count / 2] : (v[v.count / 2 - 1] + v[v.count / 2]) / 2
}

func fmtPps(_ v: Double?) -> String { guard let v else { return "-" }; return v >= 1e6 ? String(format: "%.2fM", v / 1e6) : String(format: "%.0fk", v / 1e3) }
func fmtNs(_ v: Double?) -> String { guard let v else { return "-" }; return String(format: "%.0f", v) }
func pad(_ s: String, _ n: Int) -> String { s.count >= n ? s : String(repeating: " ", count: n - s.count) + s }
func padR(_ s: String, _ n: Int) -> String { s.count >= n ? s : s + String(repeating: " ", count: n - s.count) }

func renderTable(_ r: Report) -> String {
    var s = "\nForwarding rate (trafgen, frames/s): loss-free (< 0.1%) / flat-out forwarded, per frame size\n"
    s += padR("switch", 12) + [64, 512, 1518].map { pad("\($0) B lossfree", 16) + pad("flat-out", 10) }.joined() + pad("proc ns/fr", 12) + pad("path-base ns", 14) + pad("TCP Gb/s", 10) + "\n"
    for x in r.switches {
        s += padR(x.name, 12)
        for size in [64, 512, 1518] {
            let z = x.sizes.first { $0.size == size }
            s += pad(z.map { fmtPps($0.loss_free_pps) + ($0.generator_limited ? "*" : $0.sender_backpressure ? "bp" : "") } ?? "-", 16) + pad(fmtPps(z?.ceiling_forwarded_pps), 10)
        }
        s += pad(fmtNs(x.cpu?.switch_process_ns_per_frame), 12) + pad(fmtNs(x.cpu?.switch_ns_per_frame), 14)
        s += pad(x.tcp.map { String(format: "%.2f", $0.gbps) } ?? "-", 10)
        if x.error != nil { s += "  FAILED" }
        s += "\n"
    }
    s += "  * = everything trafgen offered flat out was forwarded (generator-limited); bp = everything offered was forwarded, but the\n"
    s += "  sender's device refused frames (full queue) and trafgen slowed down: the switch's rate is the limit, with no loss.\n"
    s += "  proc ns/fr = switch process utime+stime per forwarded frame; path-base ns = (switch process + trafgen system time + ksoftirqd)\n"
    s += "  per frame minus the same with no switch (direct veth); both at \(r.cpu_load_pps) pps offered, \(r.cpu_size) B.\n"
    s += "\nLatency (own AF_PACKET probe, µs) p50 / p99 / p99.9 at 10% / 50% / 90% of the loss-free rate\n"
    for x in r.switches where !x.latency.isEmpty {
        s += padR(x.name, 12) + x.latency.map { String(format: "%3d%%: %6.1f %7.1f %7.1f", $0.percent_of_loss_free, $0.p50_us, $0.p99_us, $0.p999_us) }.joined(separator: " | ") + "\n"
    }
    s += "\nMAC scale (64 B flat out, forwarded frames/s by number of source MACs)\n"
    for x in r.switches where !x.mac_scale.isEmpty {
        s += padR(x.name, 12) + x.mac_scale.map { "\($0.macs): " + fmtPps($0.forwarded_pps) + String(format: " (loss %.1f%%)", $0.loss * 100) }.joined(separator: "  ") + "\n"
    }
    s += "\nForwarding core alone (no I/O, 64 B, 1,000 MACs): " + r.core.map { String(format: "%d thread(s) %.1f Mpps/core", $0.threads, $0.mpps_per_core) }.joined(separator: ", ") + "\n"
    if !r.ratios.isEmpty {
        s += "\nRatios (VSwitch 1 thread over the other switch, same run):\n"
        for (k, v) in r.ratios.sorted(by: { $0.key < $1.key }) { s += "  " + padR(k, 58) + String(format: "%.2f", v) + "\n" }
    }
    if !r.findings.isEmpty { s += "\n" + r.findings.map { "- " + $0 }.joined(separator: "\n") + "\n" }
    return s
}

func renderMarkdown(_ r: Report, table: String) -> String {
    var s = "# vswitch-bench compare — \(r.started)\n\n"
    s += "Command: `\(r.command)` (\(Int(r.seconds)) s). Machine: \(r.machine.cpu_model), \(r.machine.cores) cores, Linux \(r.machine.kernel); load average before \(r.machine.load_before), after \(r.machine.load_after ?? "?").\n\n"
    s += "Generator: \(r.generator). Latency: \(r.latency_tool).\n\n"
    s += "```\n" + table + "```\n\n"
    s += "## Switches\n\n"
    for x in r.switches {
        s += "- **\(x.name)**: \(x.summary)" + (x.error.map { " — FAILED: \($0.prefix(300))" } ?? "") + "\n"
        for n in x.notes { s += "  - \(n)\n" }
        if let c = x.cpu { s += "  - CPU method: \(c.method)\n" }
    }
    return s
}
