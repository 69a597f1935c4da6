// Traffic through a switch under test: trafgen trials, the loss-free rate
// search, CPU per frame, MAC scale, iperf3.
//
// Offered frames are counted on the sender's interface (vsb-a eth0
// tx_packets: frames its device accepted; refused ones are retried by trafgen), received frames by the nftables counter in vsb-b
// (both independent of the switch). A trial starts trafgen (own process group,
// `--no-sock-mem -Q`, one worker which pins itself to CPU 0), waits until
// frames flow, takes a snapshot, runs for the trial time, takes a second
// snapshot (rates and CPU come from the two snapshots), kills trafgen's
// process group, waits for the queues to drain and takes a final snapshot
// (loss comes from everything sent against everything received).

import Foundation
#if canImport(Glibc)
import Glibc
#endif

struct Snapshot {
    var t: Double
    var sent: UInt64
    var received: UInt64
    var switchCPU: Double
    var forwardingCPU: Double = 0   // the switch's forwarding threads only (vswitchd: threads named vsw-fwd-N)
    var machine: MachineCPU
    var generatorSys: Double = 0   // trafgen's process group stime + ksoftirqd threads
    var refused: UInt64 = 0        // sender's tx_dropped: frames its device refused (retried by trafgen)

    static func take(_ sut: SwitchUnderTest, generator: pid_t? = nil) -> Snapshot {
        // tx_packets only: frames the sender's device refused (tx_dropped) are retried by trafgen's
        // AF_PACKET TX path (qdisc bypass), so a full queue slows the generator rather than losing frames.
        let cmd = "ip netns exec \(nsA) cat /sys/class/net/eth0/statistics/tx_packets /sys/class/net/eth0/statistics/tx_dropped; "
            + "ip netns exec \(nsB) nft list counter netdev vsb rx"
        let t = monotonic()
        let m = MachineCPU.read()
        let cpu = sut.switchPids.map(processCPUSeconds).reduce(0, +)
        let fwd = sut.name.hasPrefix("vswitch") ? sut.switchPids.map { threadsCPUSeconds($0, namePrefix: "vsw-fwd-") }.reduce(0, +) : 0
        let out = (try? sh(cmd).out) ?? ""
        let lines = out.split(separator: "\n")
        var sent: UInt64 = 0
        for l in lines.prefix(1) { sent += UInt64(l.trimmingCharacters(in: .whitespaces)) ?? 0 }
        var rx: UInt64 = 0
        if let r = out.range(of: "packets ") {
            rx = UInt64(out[r.upperBound...].prefix { $0.isNumber }) ?? 0
        }
        let refused = lines.count > 1 ? UInt64(lines[1].trimmingCharacters(in: .whitespaces)) ?? 0 : 0
        let g = generator.map { groupCPUSeconds(pgid: $0).system } ?? 0
        return Snapshot(t: t, sent: sent, received: rx, switchCPU: cpu, forwardingCPU: fwd, machine: m, generatorSys: g, refused: refused)
    }
}

struct TrialResult: Codable {
    var size: Int
    var macs: Int
    var requested_pps: Int?        // nil: as fast as trafgen goes
    var seconds: Double
    var offered_pps: Double
    var forwarded_pps: Double
    var sent: UInt64
    var received: UInt64
    var loss: Double               // fraction, everything sent vs everything received after drain
    var switch_cpu_s: Double       // utime+stime of the switch's processes in the measured window
    var forwarding_threads_cpu_s: Double? = nil   // of which its forwarding threads (VSwitch only)
    var machine_busy_s: Double     // all cores, /proc/stat, in the measured window
    var window_frames: UInt64      // frames received in the measured window
    var generator_sys_s: Double    // trafgen's system time + ksoftirqd in the window (where the kernel's forwarding runs)
    var refused_by_sender: UInt64  // sender device's tx_dropped: backpressure (trafgen retries these frames)
}

/// trafgen packet configuration for a frame size (FCS included) and a number of source MACs.
func trafgenConfig(size: Int, macs: Int) throws -> String {
    let path = runDir + "/trafgen-\(size)-\(macs).cfg"
    if FileManager.default.fileExists(atPath: path) { return path }
    let base = 0x1000_0000
    let sa = macs > 1 ? ", sa=dinc(\(base), \(base + macs - 1))" : ""
    let cfg = "{ eth(da=\(macB), sa=\(macA)\(sa), type=0x88b5), fill(0x00, \(size - 4 - 14)) }\n"
    try cfg.write(toFile: path, atomically: true, encoding: .utf8)
    return path
}

func runTrial(_ sut: SwitchUnderTest, size: Int, macs: Int = 1, rate: Int?, seconds: Double) throws -> TrialResult {
    let cfg = try trafgenConfig(size: size, macs: macs)
    var argv = ["ip", "netns", "exec", nsA, "trafgen", "--no-sock-mem", "-Q", "-i", cfg, "-o", "eth0", "-P", "1"]
    if let r = rate { argv += ["-b", "\(r)pps"] }
    let s0 = Snapshot.take(sut)
    let tg = try Child(argv, log: runDir + "/trafgen.log", name: "trafgen")
    // Wait until frames flow (trafgen compiles its config and sets up its ring first).
    var a = s0
    let startDeadline = monotonic() + 5
    repeat {
        usleep(20_000)
        a = Snapshot.take(sut, generator: tg.pid)
    } while a.sent == s0.sent && monotonic() < startDeadline && tg.running
    if a.sent == s0.sent {
        tg.stop()
        let log = (try? String(contentsOfFile: runDir + "/trafgen.log", encoding: .utf8)) ?? ""
        throw BenchError.failed("trafgen sent nothing through \(sut.name): \(log.suffix(400))")
    }
    usleep(useconds_t(seconds * 1e6))
    let b = Snapshot.take(sut, generator: tg.pid)
    tg.stop()
    usleep(300_000)   // drain
    let c = Snapshot.take(sut)
    let dt = b.t - a.t
    let sent = c.sent - s0.sent, received = c.received - s0.received
    let loss = sent == 0 ? 1 : max(0, Double(Int64(sent) - Int64(received)) / Double(sent))
    return TrialResult(size: size, macs: macs, requested_pps: rate, seconds: dt,
                       offered_pps: Double(b.sent - a.sent) / dt, forwarded_pps: Double(b.received - a.received) / dt,
                       sent: sent, received: received, loss: loss,
                       switch_cpu_s: b.switchCPU - a.switchCPU,
                       forwarding_threads_cpu_s: sut.name.hasPrefix("vswitch") ? b.forwardingCPU - a.forwardingCPU : nil,
                       machine_busy_s: b.machine.busy - a.machine.busy,
                       window_frames: b.received - a.received, generator_sys_s: b.generatorSys - a.generatorSys,
                       refused_by_sender: c.refused - s0.refused)
}

struct SizeResult: Codable {
    var size: Int
    var ceiling_offered_pps: Double     // trafgen flat out through this switch
    var ceiling_forwarded_pps: Double
    var ceiling_loss: Double
    var loss_free_pps: Double           // highest offered rate with loss < 0.1% (0 if none found)
    var loss_free_trial_loss: Double?
    var generator_limited: Bool         // everything trafgen offered flat out was forwarded, without backpressure
    var sender_backpressure: Bool       // flat out, the sender's device refused frames (trafgen slowed down)
    var trials: [TrialResult]
}

/// RFC 2544-style: a trial flat out; if it loses >= 0.1%, a binary search on trafgen's rate.
func searchLossFree(_ sut: SwitchUnderTest, size: Int, steps: Int, seconds: Double, lossLimit: Double = 0.001) throws -> SizeResult {
    var trials: [TrialResult] = []
    let flat = try runTrial(sut, size: size, rate: nil, seconds: seconds)
    trials.append(flat)
    Log.progress(String(format: "  %@ %4dB flat out: offered %.0f pps, forwarded %.0f pps, loss %.3f%%, refused by sender %llu, switch process %.0f ns/frame", sut.name, size,
                        flat.offered_pps, flat.forwarded_pps, flat.loss * 100, flat.refused_by_sender,
                        flat.window_frames > 0 ? flat.switch_cpu_s * 1e9 / Double(flat.window_frames) : 0))
    var r = SizeResult(size: size, ceiling_offered_pps: flat.offered_pps, ceiling_forwarded_pps: flat.forwarded_pps,
                       ceiling_loss: flat.loss, loss_free_pps: 0, loss_free_trial_loss: nil, generator_limited: false,
                       sender_backpressure: flat.refused_by_sender > 0, trials: [])
    if flat.loss < lossLimit {
        r.loss_free_pps = flat.offered_pps; r.loss_free_trial_loss = flat.loss; r.generator_limited = flat.refused_by_sender == 0
        r.trials = trials
        return r
    }
    var lo = 0.0, hi = flat.offered_pps
    for _ in 0..<steps {
        let mid = (lo + hi) / 2
        let t = try runTrial(sut, size: size, rate: Int(mid), seconds: seconds)
        trials.append(t)
        let pass = t.loss < lossLimit
        Log.progress(String(format: "  %@ %4dB at %.0f pps: offered %.0f, forwarded %.0f, loss %.3f%% %@", sut.name, size, mid,
                            t.offered_pps, t.forwarded_pps, t.loss * 100, pass ? "pass" : "fail"))
        if pass {
            lo = mid
            if t.offered_pps > r.loss_free_pps { r.loss_free_pps = t.offered_pps; r.loss_free_trial_loss = t.loss }
        } else {
            hi = mid
        }
    }
    r.trials = trials
    return r
}

struct CPUResult: Codable {
    var offered_pps: Double
    var forwarded_pps: Double
    var loss: Double
    var frames: UInt64
    var switch_process_ns_per_frame: Double?   // utime+stime of the switch's processes / frames (nil: kernel bridge, direct)
    var forwarding_threads_ns_per_frame: Double? = nil   // VSwitch: of which its forwarding threads (vsw-fwd-N)
    var machine_ns_per_frame: Double            // all cores busy (/proc/stat) / frames
    var kernel_path_ns_per_frame: Double        // generator's stime + ksoftirqd + switch process, per frame
    var switch_ns_per_frame: Double?            // kernel_path minus the direct (no switch) baseline at the same rate
    var method: String
}

func measureCPU(_ sut: SwitchUnderTest, rate: Int, seconds: Double, baselineNsPerFrame: Double?, size: Int = 64) throws -> CPUResult {
    let t = try runTrial(sut, size: size, rate: rate, seconds: seconds)
    let frames = max(t.window_frames, 1)
    let proc = sut.switchPids.isEmpty ? nil : t.switch_cpu_s * 1e9 / Double(frames)
    let machine = t.machine_busy_s * 1e9 / Double(frames)
    let path = (t.generator_sys_s + t.switch_cpu_s) * 1e9 / Double(frames)
    let delta = baselineNsPerFrame.map { path - $0 }
    let method = sut.switchPids.isEmpty
        ? (sut.name == "direct" ? "baseline: system time of trafgen's processes + ksoftirqd threads per frame (the kernel's send and receive path, no switch)"
                                : "kernel switch: the bridge runs in the sender's syscall/softirq context, so its CPU is the system time of trafgen's processes + ksoftirqd threads (/proc/PID/stat) per frame, minus the same figure with no switch (direct veth) at the same offered load; trafgen's user time (it spins to pace) and other processes are excluded")
        : "utime+stime of the switch's process (/proc/PID/stat) per forwarded frame; second figure: that + trafgen's system time + ksoftirqd, minus the direct (no switch) baseline"
    return CPUResult(offered_pps: t.offered_pps, forwarded_pps: t.forwarded_pps, loss: t.loss, frames: frames,
                     switch_process_ns_per_frame: proc,
                     forwarding_threads_ns_per_frame: t.forwarding_threads_cpu_s.map { $0 * 1e9 / Double(frames) },
                     machine_ns_per_frame: machine, kernel_path_ns_per_frame: path,
                     switch_ns_per_frame: delta, method: method)
}

struct MACScalePoint: Codable {
    var macs: Int
    var offered_pps: Double
    var forwarded_pps: Double
    var loss: Double
    var seconds: Double
}

func measureMACScale(_ sut: SwitchUnderTest, macs: [Int], seconds: Double) throws -> [MACScalePoint] {
    var out: [MACScalePoint] = []
    for m in macs {
        let t = try runTrial(sut, size: 64, macs: m, rate: nil, seconds: seconds)
        Log.progress(String(format: "  %@ %7d source MACs flat out: offered %.0f, forwarded %.0f pps, loss %.2f%%", sut.name, m,
                            t.offered_pps, t.forwarded_pps, t.loss * 100))
        out.append(MACScalePoint(macs: m, offered_pps: t.offered_pps, forwarded_pps: t.forwarded_pps, loss: t.loss, seconds: t.seconds))
    }
    return out
}

struct TCPResult: Codable {
    var gbps: Double
    var retransmits: Int
    var seconds: Double
    var error: String?
}

func measureTCP(_ sut: SwitchUnderTest, seconds: Int) -> TCPResult {
    do {
        let srv = try Child(["ip", "netns", "exec", nsB, "iperf3", "-s", "-1", "-B", ipB], log: runDir + "/iperf3-server.log", name: "iperf3")
        defer { srv.stop() }
        usleep(300_000)
        let out = try sh("ip netns exec \(nsA) timeout \(seconds + 15) iperf3 -c \(ipB) -t \(seconds) -J")
        guard let j = try JSONSerialization.jsonObject(with: Data(out.out.utf8)) as? [String: Any],
              let end = j["end"] as? [String: Any],
              let rcv = end["sum_received"] as? [String: Any], let bps = rcv["bits_per_second"] as? Double else {
            return TCPResult(gbps: 0, retransmits: 0, seconds: Double(seconds), error: String(out.out.prefix(300)))
        }
        let retr = ((end["sum_sent"] as? [String: Any])?["retransmits"] as? Int) ?? 0
        return TCPResult(gbps: bps / 1e9, retransmits: retr, seconds: Double(seconds), error: nil)
    } catch {
        return TCPResult(gbps: 0, retransmits: 0, seconds: Double(seconds), error: "\(error)")
    }
}
