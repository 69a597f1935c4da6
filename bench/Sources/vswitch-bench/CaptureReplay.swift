// `vswitch-bench capture-replay`: the capture cost of issue 4 with the load generated inside the switch.
//
// `compare --measure capture-ab` drives the switch with trafgen, whose worker needs CPU 0 — the only CPU the
// capture writer can have on a 2-core machine — so there the writer's page-cache work slows the *generator*
// and the forwarded rate falls with it (bench/README.md "Capture cost"). Here the frames come from a pcap-replay
// port (issue 4 item 5) looping flat out on the forwarding thread itself, and go to a TAP port whose virtual
// system (namespace vsb-b) drops them at ingress (nftables, EtherType 0x88b5): the forwarding thread on CPU 1 is
// the bottleneck, CPU 0 holds only the daemon's control thread and the capture writer
// (`--forwarding-cpus 1 --housekeeping-cpus 0`). So the ratio of forwarded rates with and without a capture of
// every frame of the TAP port is what a capture takes from forwarding when the writer has a CPU of its own, as
// on any host with a core to spare beside its forwarding cores.
//
// Each round runs a trial without and one with the capture back to back in the same daemon (the order
// alternates per round); a trial reads the TAP port's tx_packets and the forwarding thread's CPU time before and
// after `--seconds`. VSWITCH_BENCH_CAPTURE_FS=huge-tmpfs writes the pcap to a huge-page tmpfs (as compare does).

import ArgumentParser
import Foundation
#if canImport(Glibc)
import Glibc
#endif

struct CaptureReplayPoint: Codable {
    var size: Int
    var round: Int
    var without_pps: Double
    var with_pps: Double
    var ratio: Double
    var without_forwarding_cpu_ns_per_frame: Double
    var with_forwarding_cpu_ns_per_frame: Double
    var with_writer_cpu_ns_per_frame: Double
    /// Copies taken and copies dropped for a full ring during the trial with the capture.
    var with_copies: Double
    var with_copies_dropped: Double
}

struct CaptureReplayReport: Codable {
    var command: String
    var started: String
    var load_before: String
    var load_after: String = ""
    var points: [CaptureReplayPoint] = []
    /// Per size: the median of the rounds' with/without forwarded-rate ratios.
    var rate_ratio_median: [String: Double] = [:]
    /// Per size: the median of the rounds' with/without ratios of the forwarding thread's CPU per frame.
    var forwarding_cpu_ratio_median: [String: Double] = [:]
    var notes: [String] = []
}

struct CaptureReplay: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "capture-replay",
        abstract: "Capture cost with the load made inside the switch: a looping pcap-replay port sends flat out to a TAP port whose every frame is captured; the forwarding thread alone on CPU 1, the capture writer on CPU 0 (issue 4).")

    @Option(help: "Comma-separated frame sizes on the wire, FCS included (64...1518).") var sizes = "64,1518"
    @Option(help: "A/B rounds per size (capture off and on back to back, the order alternating).") var rounds = 5
    @Option(help: "Seconds per trial.") var seconds = 3.0
    @Option(help: "Frames per second the replay port offers (0: flat out, as fast as the forwarding thread takes them). At a set rate the forwarded rates are equal and the forwarding thread's CPU per frame is the cost.") var rate = 0
    @Option(help: "Output format: text or json.") var format = "text"

    func run() throws {
        guard getuid() == 0 else { throw BenchError.failed("vswitch-bench capture-replay must run as root (namespaces, TAPs)") }
        guard ["text", "json"].contains(format) else { throw ValidationError("--format must be text or json") }
        let frameSizes = try sizes.split(separator: ",").map { s -> Int in
            guard let v = Int(s), v >= 64, v <= 1518 else { throw BenchError.failed("--sizes: \(s) is not a frame size of 64-1518 bytes") }
            return v
        }
        var report = CaptureReplayReport(command: "vswitch-bench " + CommandLine.arguments.dropFirst().joined(separator: " "),
                                         started: ISO8601DateFormatter().string(from: Date()), load_before: loadAverage())
        Cleanup.installSignalHandlers()
        removeStale()
        try makeRunDir()
        defer { Cleanup.runAll() }

        let bin = try vswitchdPath()
        let ctl = URL(fileURLWithPath: bin).deletingLastPathComponent().appendingPathComponent("vswitchctl").path
        let dir = runDir + "/capture-replay"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try benchProfile.write(toFile: dir + "/profiles.xml", atomically: true, encoding: .utf8)
        let topo = """
        <?xml version="1.0" encoding="UTF-8"?>
        <Topology xmlns="urn:vswitch:topology:1" Name="vsb">
          <Switch MACTableSize="1000000"/>
          <ProfileFile Path="profiles.xml"/>
          <Port Name="vsb-tb" Type="tap" Profile="urn:vswitch:profile:bench">
            <VirtualSystem Namespace="\(nsB)" InterfaceName="eth0" MACAddress="\(macB)"><Address>\(ipB)/24</Address></VirtualSystem>
          </Port>
        </Topology>
        """
        try topo.write(toFile: dir + "/topology.xml", atomically: true, encoding: .utf8)
        let ready = dir + "/ready", sock = dir + "/ctl.sock"
        let d = try Child([bin, "--topology", dir + "/topology.xml", "--threads", "1", "--ready-file", ready,
                           "--stats-json", dir + "/stats.json", "--log-level", "warning", "--control-socket", sock,
                           "--forwarding-cpus", "1", "--housekeeping-cpus", "0"] + extraVswitchdArgs,
                          log: dir + "/vswitchd.log")
        try "\(d.pid)\n".write(toFile: dir + "/vswitchd.pid", atomically: true, encoding: .utf8)
        Cleanup.push("vswitchd") {
            d.stop(signal: SIGTERM, grace: 10)
            quiet("ip netns delete \(nsB)"); quiet("ip link delete vsb-tb")
        }
        let deadline = Date().addingTimeInterval(20)
        while !FileManager.default.fileExists(atPath: ready) {
            if !d.running { throw BenchError.failed("vswitchd exited during start-up: \((try? String(contentsOfFile: dir + "/vswitchd.log", encoding: .utf8)) ?? "")") }
            if Date() > deadline { throw BenchError.failed("vswitchd not ready after 20 s; see \(dir)/vswitchd.log") }
            usleep(50_000)
        }
        // The receiver drops the test frames at ingress, before the IP stack (cheap, and nothing answers).
        try must("ip netns exec \(nsB) sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1")
        let nft = "table netdev vsb {\n  chain in {\n    type filter hook ingress device eth0 priority 0;\n    ether type 0x88b5 drop\n  }\n}\n"
        try nft.write(toFile: dir + "/nft.conf", atomically: true, encoding: .utf8)
        try must("ip netns exec \(nsB) nft -f \(dir)/nft.conf")

        // The capture of every frame of vsb-tb, as `compare`'s capture entries take it (startBenchCapture).
        let sut = SwitchUnderTest(name: "vswitch-capture-replay", summary: "", setUp: { _ in })
        try startBenchCapture(sut, bin: bin, socket: sock, dir: dir, port: "vsb-tb", writerOnCPU0: true)
        guard let on = sut.captureOn, let off = sut.captureOff else { throw BenchError.failed("capture set-up incomplete") }
        report.notes.append(contentsOf: sut.notes)
        report.notes.append("load: pcap-replay port vsb-rp (--loop, \(rate > 0 ? "\(rate) frames/s" : "no rate limit")) on the forwarding thread (CPU 1) -> TAP vsb-tb -> \(nsB), dropped there by nftables at ingress; control thread and capture writer on CPU 0, nothing else")

        /// vsb-tb's (tx_packets, capture_copies, capture_drops).
        func counters() throws -> (tx: Double, copies: Double, drops: Double) {
            let out = try must("\(ctl) --socket \(sock) port stats vsb-tb --format json")
            guard let j = try? JSONSerialization.jsonObject(with: Data(out.utf8)) as? [String: Any],
                  let row = (j["ports"] as? [[String: Any]])?.first, let tx = row["tx_packets"] as? NSNumber else {
                throw BenchError.failed("port stats: unexpected output \(out.prefix(200))")
            }
            return (tx.doubleValue, (row["capture_copies"] as? NSNumber)?.doubleValue ?? 0, (row["capture_drops"] as? NSNumber)?.doubleValue ?? 0)
        }
        struct Trial { var pps = 0.0, fwdNs = 0.0, writerNs = 0.0, copies = 0.0, drops = 0.0 }
        /// Forwarded frames/s, the forwarding thread's and the writer's CPU per frame, copies taken and dropped, over `seconds`.
        func trial() throws -> Trial {
            let c0 = try counters(), f0 = threadsCPUSeconds(d.pid, namePrefix: "vsw-fwd-"), w0 = threadsCPUSeconds(d.pid, namePrefix: "vsw-capture")
            let t0 = Date()
            usleep(UInt32(seconds * 1e6))
            let c1 = try counters(), f1 = threadsCPUSeconds(d.pid, namePrefix: "vsw-fwd-"), w1 = threadsCPUSeconds(d.pid, namePrefix: "vsw-capture")
            let dt = Date().timeIntervalSince(t0), frames = max(c1.tx - c0.tx, 1)
            return Trial(pps: (c1.tx - c0.tx) / dt, fwdNs: (f1 - f0) * 1e9 / frames, writerNs: (w1 - w0) * 1e9 / frames,
                         copies: c1.copies - c0.copies, drops: c1.drops - c0.drops)
        }

        for size in frameSizes {
            let pcap = dir + "/replay-\(size).pcap"
            try writeReplayFile(pcap, frameBytes: size - 4, frames: 256)
            try must("\(ctl) --socket \(sock) add-port vsb-rp --type pcap --file \(pcap) --loop --profile urn:vswitch:profile:bench" + (rate > 0 ? " --rate \(rate)" : ""))
            usleep(500_000)
            var ratios: [Double] = []
            for round in 1...max(1, rounds) {
                var a = Trial(), b = a
                if round % 2 == 1 { off(); a = try trial(); try on(); b = try trial() }
                else { try on(); b = try trial(); off(); a = try trial() }
                let ratio = a.pps > 0 ? b.pps / a.pps : 0
                ratios.append(ratio)
                report.points.append(CaptureReplayPoint(size: size, round: round, without_pps: a.pps, with_pps: b.pps, ratio: ratio,
                                                        without_forwarding_cpu_ns_per_frame: a.fwdNs, with_forwarding_cpu_ns_per_frame: b.fwdNs,
                                                        with_writer_cpu_ns_per_frame: b.writerNs, with_copies: b.copies, with_copies_dropped: b.drops))
                Log.progress(String(format: "  capture-replay %4d B round %d: without %.0f pps, with %.0f pps = %.3f; forwarding thread %.0f -> %.0f ns/frame; writer %.0f ns/frame; copies dropped %.0f of %.0f (%.2f%%)",
                                    size, round, a.pps, b.pps, ratio, a.fwdNs, b.fwdNs, b.writerNs, b.drops, b.copies + b.drops,
                                    100 * b.drops / max(b.copies + b.drops, 1)))
            }
            report.rate_ratio_median["\(size)"] = median(ratios)
            report.forwarding_cpu_ratio_median["\(size)"] = median(report.points.filter { $0.size == size }.map {
                $0.without_forwarding_cpu_ns_per_frame > 0 ? $0.with_forwarding_cpu_ns_per_frame / $0.without_forwarding_cpu_ns_per_frame : 0 })
            try must("\(ctl) --socket \(sock) del-port vsb-rp")
        }
        report.notes.append(contentsOf: sut.afterMeasure?() ?? [])
        report.load_after = loadAverage()
        if format == "json" {
            let enc = JSONEncoder()
            enc.outputFormatting = [.sortedKeys, .prettyPrinted]
            print(String(decoding: try enc.encode(report), as: UTF8.self))
        } else {
            print("capture-replay (\(report.command)), load \(report.load_before) -> \(report.load_after)")
            for size in frameSizes {
                let pts = report.points.filter { $0.size == size }
                let copies = pts.reduce(0) { $0 + $1.with_copies }, drops = pts.reduce(0) { $0 + $1.with_copies_dropped }
            print(String(format: "  %4d B: forwarded rate with capture / without, median of %d = %.3f (rounds: %@); forwarding thread CPU per frame with / without, median %.3f; copies dropped for a full ring %.0f of %.0f (%.2f%%)",
                         size, pts.count, report.rate_ratio_median["\(size)"] ?? 0, pts.map { String(format: "%.3f", $0.ratio) }.joined(separator: ", "),
                         report.forwarding_cpu_ratio_median["\(size)"] ?? 0, drops, copies + drops, 100 * drops / max(copies + drops, 1)))
            }
            for n in report.notes { print("  - " + n) }
        }
    }
}

/// A pcap file (microsecond timestamps, Ethernet) of `frames` frames of `frameBytes` bytes each: to vsb-b's MAC,
/// from a locally administered source, EtherType 0x88b5 (the bench's test frames), a counter in the payload.
func writeReplayFile(_ path: String, frameBytes: Int, frames: Int) throws {
    var out = [UInt8]()
    func le32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { out.append(contentsOf: $0) } }
    func le16(_ v: UInt16) { withUnsafeBytes(of: v.littleEndian) { out.append(contentsOf: $0) } }
    le32(0xa1b2_c3d4); le16(2); le16(4); le32(0); le32(0); le32(65535); le32(1)
    let dst = macB.split(separator: ":").compactMap { UInt8($0, radix: 16) }
    for k in 0..<frames {
        le32(0); le32(UInt32(k)); le32(UInt32(frameBytes)); le32(UInt32(frameBytes))
        var f = [UInt8](repeating: 0, count: frameBytes)
        f.replaceSubrange(0..<6, with: dst)
        f.replaceSubrange(6..<12, with: [0x02, 0, 0, 0, 0, 0x09])
        f[12] = UInt8(trafgenEtherType >> 8); f[13] = UInt8(trafgenEtherType & 0xff)
        f[14] = UInt8(k >> 8); f[15] = UInt8(k & 0xff)
        out.append(contentsOf: f)
    }
    guard FileManager.default.createFile(atPath: path, contents: Data(out)) else { throw BenchError.failed("cannot write \(path)") }
}
