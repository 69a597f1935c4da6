// vswitch-bench: measures VSwitch. `core` runs the forwarding core alone
// (no I/O); `compare` measures VSwitch through TAP ports against the Linux
// bridge and Open vSwitch's userspace datapath in the same run (Compare.swift).

import ArgumentParser
import Foundation

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vswitch-bench",
        abstract: "VSwitch benchmarks.",
        subcommands: [Core.self, Reload.self, Compare.self, Probe.self, CaptureReplay.self, StoreProbe.self])
}

struct Core: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "The forwarding core alone: frames in memory, learning, lookup, VLAN rewrite; no I/O.")

    @Option(help: "Frame size on the wire in bytes, FCS included (64...1518).") var size = 64
    @Option(help: "Number of stations (source/destination MACs).") var macs = 1000
    @Option(help: "Forwarding threads (each pinned to a core).") var threads = 1
    @Option(help: "Port mode: access (untagged) or trunk (tagged in and out).") var mode = "access"
    @Option(help: "Seconds to measure.") var seconds = 2.0
    @Option(help: "Frames per batch.") var batch = 64
    @Option(help: "Ports.") var ports = 8
    @Option(help: "Port profile: vlan (VLANs only) or realistic (anti-spoofing, 16 ACL rules, both policers).") var profile = "vlan"
    @Option(help: "Output format: text or json.") var format = "text"
    @Flag(help: "Capture every frame of port 0 (both directions) into the capture rings, drained by a writer thread.") var capture = false
    @Option(help: "With --capture: the daemon's capture writer writes every copy to this pcap file (else a reader only touches the copies).") var captureFile: String?

    func validate() throws {
        guard (64...1518).contains(size) else { throw ValidationError("--size must be 64...1518") }
        guard macs >= 1, threads >= 1, threads <= 64, batch >= 1, batch <= 256, ports >= 2, ports <= 64 else {
            throw ValidationError("out of range: --macs >= 1, --threads 1...64, --batch 1...256, --ports 2...64")
        }
        guard ["access", "trunk"].contains(mode) else { throw ValidationError("--mode must be access or trunk") }
        guard ["vlan", "realistic"].contains(profile) else { throw ValidationError("--profile must be vlan or realistic") }
        guard ["text", "json"].contains(format) else { throw ValidationError("--format must be text or json") }
    }

    func run() throws {
        let r = CoreBench.run(CoreBenchConfig(size: size, macs: macs, threads: threads, mode: mode, seconds: seconds,
                                              batch: batch, ports: ports, profile: profile, capture: capture,
                                              captureFile: captureFile))
        if format == "json" {
            let enc = JSONEncoder()
            enc.outputFormatting = [.sortedKeys]
            print(String(decoding: try enc.encode(r), as: UTF8.self))
        } else {
            print(String(format: "core  size=%d macs=%d mode=%@ profile=%@ threads=%d batch=%d: %.2f Mpps total, %.2f Mpps/core, %.1f ns/frame, CPU %.1f ns/frame (%.2f Mpps per CPU-second), %.4f allocs/frame (%d mallocs)",
                         r.size, r.macs, r.mode, r.profile, r.threads, r.batch, r.mpps_total, r.mpps_per_core, r.ns_per_frame,
                         r.cpu_ns_per_frame, 1e3 / max(r.cpu_ns_per_frame, 1e-9), r.allocs_per_frame, r.mallocs))
        }
    }
}

Bench.main()

struct Reload: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Profile reloads under full load: time per reload and frames lost (the forwarding core, no I/O).")
    @Option(help: "Ports, each with its own compiled profile.") var ports = 1000
    @Option(help: "Reloads (each recompiles every port's profile and publishes a new snapshot).") var reloads = 100
    @Option(help: "Forwarding threads running flat out meanwhile.") var threads = 1
    @Option(help: "Output format: text or json.") var format = "text"
    @Option(help: "What one reload does: xml (parse and validate the profile document, compile, publish: the daemon's reload) or compiled (compile and publish only).")
    var mode = "xml"
    @Option(help: "Distinct profiles in the set (port p binds profile p % N); default: one per port, the worst case.")
    var profiles: Int?
    @Option(help: "Profiles whose text changes at each reload (spread over the set); default: all of them.")
    var changed: Int?
    @Flag(help: "Read and compile every profile at every reload (no ProfileReadCache / PolicyCompileCache), as before issue 3's caches.")
    var noCache = false

    func run() throws {
        guard ["xml", "compiled"].contains(mode) else { throw ValidationError("--mode must be xml or compiled") }
        let r = try ReloadBench.run(ports: ports, reloads: reloads, threads: threads, xml: mode == "xml", profiles: profiles,
                                    changed: changed, cache: !noCache)
        if format == "json" {
            let enc = JSONEncoder()
            enc.outputFormatting = [.sortedKeys]
            print(String(decoding: try enc.encode(r), as: UTF8.self))
        } else {
            print(String(format: "reload  mode=%@ ports=%d profiles=%d changed=%d cache=%@ reloads=%d threads=%d document=%d bytes: reload p50 %.1f ms (parse %.1f, compile %.1f, snapshot %.1f, publish %.1f of which grace period %.3f, max %.3f), p99 %.1f ms, max %.1f ms; CPU per reload p50 %.1f ms (parse %.1f), p99 %.1f ms; %llu frames in, %llu delivered, %llu dropped, %llu lost (%.1f Mpps during reloads)",
                         r.mode, r.ports, r.profiles, r.changed, r.cache ? "on" : "off", r.reloads, r.threads, r.document_bytes, r.reload_ms_p50, r.parse_ms_p50, r.compile_ms_p50, r.snapshot_ms_p50,
                         r.publish_ms_p50, r.grace_ms_p50, r.grace_ms_max, r.reload_ms_p99, r.reload_ms_max, r.build_cpu_ms_p50, r.parse_cpu_ms_p50, r.build_cpu_ms_p99, r.frames, r.delivered, r.dropped, r.lost, r.mpps_during_reloads))
        }
    }
}
