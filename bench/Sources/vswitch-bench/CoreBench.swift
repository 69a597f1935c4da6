// The forwarding core alone: frames already in memory, no I/O.
//
// Each thread owns its ingress ports (port p belongs to thread p % T), its
// batch and its engine, and shares one MAC table and one snapshot, exactly as
// the daemon's forwarding threads do. Per batch it re-arms the frames (writes
// a 14- or 18-byte header from a precomputed table: the work a NIC's DMA
// would do), runs classify + transmit (learning, lookup, VLAN tag pop/push)
// and hands every frame to a counting sink. Allocations are counted with
// ordo-one/malloc-interposer around the timed loop.

import Atomics
import CVSwitchShim
import MallocInterposerSwift
import VSwitchCapture
import VSwitchCore
import VSwitchPacket
import VSwitchPolicy
import VSwitchProfiles
import Foundation
#if canImport(Glibc)
import Glibc
#endif

struct CountingSink: PortBackend {
    var frames: UInt64 = 0
    var bytes: UInt64 = 0
    mutating func receive(port: Int, entry: UnsafeMutablePointer<PortEntry>, into batch: inout FrameBatch) -> Int { 0 }
    @inline(__always)
    mutating func send(port: Int, entry: UnsafeMutablePointer<PortEntry>, batch: FrameBatch, frame: Int) -> SendResult {
        frames &+= 1
        bytes &+= UInt64(batch.data(frame).load(as: UInt8.self)) &+ UInt64(batch.meta[frame].length)
        return .sent
    }
}

struct CoreBenchConfig {
    var size = 64
    var macs = 1000
    var threads = 1
    var mode = "access"        // access | trunk
    var seconds = 2.0
    var batch = 64
    var ports = 8
    /// vlan: VLAN classification only; realistic: anti-spoofing, 16 ACL rules (8 per direction),
    /// transmit and receive policers on every port (issue 3's benchmark profile).
    var profile = "vlan"
    /// Capture every frame of port 0, both directions, into the threads' capture rings, drained by a
    /// writer thread (issue 4: the cost of capture at full load).
    var capture = false
    /// With `capture`: the real capture writer (VSwitchCapture: session lookup, pcap_dump through stdio)
    /// writes every copy to this pcap file instead of a reader that only touches the copies.
    var captureFile: String? = nil
}

struct CoreBenchResult: Codable {
    var benchmark = "core"
    var size: Int
    var macs: Int
    var threads: Int
    var mode: String
    var profile: String
    var batch: Int
    var ports: Int
    var frames: UInt64
    var seconds: Double
    var mpps_total: Double
    var mpps_per_core: Double
    var ns_per_frame: Double
    /// CPU time of the forwarding threads per frame (CLOCK_THREAD_CPUTIME_ID): unlike ns_per_frame it
    /// does not count time the threads spent descheduled, so it holds on a shared, noisy machine.
    var cpu_ns_per_frame: Double
    var mallocs: Int
    var allocs_per_frame: Double
    var cpu_model: String
}

final class CoreWorker: @unchecked Sendable {
    let index: Int
    let cfg: CoreBenchConfig
    var view: UnsafeMutablePointer<ConfigView>
    /// When set, the snapshot is re-read from it once per round and a quiescent point passed after it,
    /// exactly like a forwarding thread (the reload benchmark publishes new snapshots meanwhile).
    var publisher: SnapshotPublisher?
    let engine: ForwardingEngine
    var batch: FrameBatch
    var sink = CountingSink()
    let myPorts: [Int]
    /// Per ingress port: ring of precomputed headers (18 bytes each, length in byte 18).
    let headers: UnsafeMutablePointer<UInt8>
    let headerCount = 4096
    var processed: UInt64 = 0
    /// CPU time this worker's thread spent in `run` (ns).
    var cpuNs: UInt64 = 0

    init(index: Int, cfg: CoreBenchConfig, view: UnsafeMutablePointer<ConfigView>, stations: [UInt64]) {
        self.index = index
        self.cfg = cfg
        self.view = view
        engine = ForwardingEngine(maxPorts: max(64, cfg.ports), batchCapacity: cfg.batch)
        batch = FrameBatch(capacity: cfg.batch, dataRoom: 2048)
        myPorts = stride(from: index, to: cfg.ports, by: cfg.threads).map { $0 }
        headerBytes = cfg.mode == "trunk" ? 18 : 14
        headers = .allocate(capacity: myPorts.count * headerCount * 20)
        headers.initialize(repeating: 0, count: myPorts.count * headerCount * 20)
        // Station k lives on port k % ports. Frames from port p: source a station of p, destination a
        // station of another port (known unicast after warm-up).
        var rng = SystemRandomNumberGenerator()
        for (slot, p) in myPorts.enumerated() {
            let local = stations.indices.filter { $0 % cfg.ports == p }.map { stations[$0] }
            let remote = stations.indices.filter { $0 % cfg.ports != p }.map { stations[$0] }
            for h in 0..<headerCount {
                let src = local.isEmpty ? stations[0] : local[h % local.count]
                let dst = remote.isEmpty ? stations[0] : remote[Int.random(in: 0..<remote.count, using: &rng)]
                let base = headers + (slot * headerCount + h) * 20
                var o = 0
                for s in [40, 32, 24, 16, 8, 0] { base[o] = UInt8(truncatingIfNeeded: dst >> UInt64(s)); o += 1 }
                for s in [40, 32, 24, 16, 8, 0] { base[o] = UInt8(truncatingIfNeeded: src >> UInt64(s)); o += 1 }
                if cfg.mode == "trunk" {
                    base[12] = 0x81; base[13] = 0x00; base[14] = 0x00; base[15] = 10
                    base[16] = 0x08; base[17] = 0x00
                    base[18] = 18
                } else {
                    base[12] = 0x08; base[13] = 0x00
                    base[18] = 14
                }
            }
        }
        for i in 0..<cfg.batch {
            // Payload bytes stay in place between batches (only headers are rewritten): IPv4/UDP
            // 10.0.0.1:4000 -> 10.0.0.2:4789 after the L2 header.
            let b = batch.receiveBuffer(i)
            b.initializeMemory(as: UInt8.self, repeating: 0x5A, count: 2048)
            let l3 = cfg.mode == "trunk" ? 18 : 14
            let ip: [UInt8] = [0x45, 0, 0, 46, 0, 0, 0, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
                               0x0F, 0xA0, 0x12, 0xB5, 0, 26, 0, 0]
            for (k, v) in ip.enumerated() { b.storeBytes(of: v, toByteOffset: l3 + k, as: UInt8.self) }
        }
    }

    deinit { batch.deallocate(); engine.deallocate(); headers.deallocate() }

    static func threadCPUNs() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts)
        return UInt64(ts.tv_sec) &* 1_000_000_000 &+ UInt64(ts.tv_nsec)
    }

    /// Bytes of precomputed header written per frame (a stored constant: comparing the mode string
    /// per frame cost ~25 instructions of harness in every figure).
    let headerBytes: Int

    @inline(__always)
    func runBatch(slot: Int, port: Int, cursor: inout Int, now: UInt32, nowNs: UInt64) {
        let n = cfg.batch
        let length = cfg.size - 4   // frame size on the wire includes the 4-byte FCS
        var i = 0
        while i < n {
            let h = headers + (slot * headerCount + (cursor & (headerCount - 1))) * 20
            let dst = batch.receiveBuffer(i)
            dst.copyMemory(from: h, byteCount: headerBytes)
            batch.setReceived(i, length: length)
            cursor &+= 1
            i &+= 1
        }
        batch.count = n
        engine.forward(batch, ingress: port, view: view, now: now, nowNs: nowNs, backend: &sink)
        processed &+= UInt64(n)
    }

    /// Runs until `stop` is set; returns frames processed.
    func run(stop: ManagedAtomic<Bool>) {
        let cpu0 = CoreWorker.threadCPUNs()
        defer { cpuNs = CoreWorker.threadCPUNs() &- cpu0 }
        var cursor = 0
        var rounds = 0
        var now = UInt32(truncatingIfNeeded: vsw_now_coarse_ns() / 1_000_000_000)
        guard let publisher else {
            while !stop.load(ordering: .relaxed) {
                // One clock read per round of batches, like a forwarding thread's once per pass.
                let nowNs = vsw_now_ns()
                for (slot, p) in myPorts.enumerated() { runBatch(slot: slot, port: p, cursor: &cursor, now: now, nowNs: nowNs) }
                rounds &+= 1
                if rounds & 255 == 0 { now = UInt32(truncatingIfNeeded: vsw_now_coarse_ns() / 1_000_000_000) }
            }
            return
        }
        // With a publisher (the reload benchmark), exactly like ForwardingThread: the snapshot is loaded once
        // per pass, and a pass ends early, after the batch in progress, when a new one has been published (then
        // the quiescent point); the next pass goes on from the next port, so every port keeps its share.
        var slot = 0
        let count = myPorts.count
        while !stop.load(ordering: .relaxed) {
            let nowNs = vsw_now_ns()
            view = publisher.load()
            var done = 0
            while done < count {
                runBatch(slot: slot, port: myPorts[slot], cursor: &cursor, now: now, nowNs: nowNs)
                done &+= 1
                slot &+= 1
                if slot == count { slot = 0 }
                if publisher.load() != view { break }
            }
            publisher.quiescence.quiescent(index)
            rounds &+= 1
            if rounds & 255 == 0 { now = UInt32(truncatingIfNeeded: vsw_now_coarse_ns() / 1_000_000_000) }
        }
    }
}

enum CoreBench {
    static func run(_ config: CoreBenchConfig) -> CoreBenchResult {
        var cfg = config
        let stationCount = max(2, cfg.macs)
        // Every port needs a station of its own, and every thread a port.
        cfg.ports = max(cfg.threads, min(cfg.ports, stationCount))
        let stations = (0..<stationCount).map { UInt64(0x0200_0000_0000) | UInt64($0 + 1) }
        let table = MACTable(limit: max(65_536, stationCount * 2))
        let policy: PortPolicy = cfg.mode == "trunk" ? .trunk([10, 20]) : .access(10)
        let specs = (0..<cfg.ports).map { port -> PortSpec in
            guard cfg.profile == "realistic" else { return PortSpec(index: port, handle: Int32(port), mtu: 1500, policy: policy) }
            let mine = stations.indices.filter { $0 % cfg.ports == port }.map { stations[$0] }
            return PortSpec(index: port, handle: Int32(port), mtu: 1500, mac: mine.first ?? 0,
                            compiled: realisticProfile(base: policy, stations: mine))
        }
        let snapshot = ConfigSnapshot(generation: 1, ports: cfg.capture ? specs.map { s in
            var c = s
            if c.index == 0 { c.capture = PortEntry.captureIn | PortEntry.captureOut }
            return c
        } : specs, macTable: table)
        let now = UInt32(truncatingIfNeeded: vsw_now_coarse_ns() / 1_000_000_000)
        var prev = 0
        for (k, mac) in stations.enumerated() {
            _ = table.learn(vlan: 10, mac: mac, port: k % cfg.ports, now: now, portLimit: .max, previousPort: &prev)
        }
        let workers = (0..<cfg.threads).map { CoreWorker(index: $0, cfg: cfg, view: snapshot.view, stations: stations) }
        // Warm-up (single-threaded, not counted): touches every header and table entry once.
        let warmStop = ManagedAtomic<Bool>(false)
        for w in workers {
            for _ in 0..<64 { for (slot, p) in w.myPorts.enumerated() { var c = 0; w.runBatch(slot: slot, port: p, cursor: &c, now: now, nowNs: vsw_now_ns()) } }
            w.processed = 0
            w.sink = CountingSink()
            _ = warmStop
        }
        MallocInterposerSwift.initialize()
        // Calibration: prove the interposer sees allocations at all before trusting a zero.
        MallocInterposerSwift.reset()
        MallocInterposerSwift.hook()
        let probe = UnsafeMutableRawPointer.allocate(byteCount: 4096, alignment: 16)
        probe.deallocate()
        MallocInterposerSwift.unhook()
        let counting = MallocInterposerSwift.getStatistics().mallocCount > 0
        MallocInterposerSwift.reset()
        let stop = ManagedAtomic<Bool>(false)
        let started = ManagedAtomic<Int>(0)
        let go = ManagedAtomic<Bool>(false)
        let tids = workers.enumerated().map { (k, w) in
            spawnThread {
                pinCurrentThread(to: k % max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))))
                started.wrappingIncrement(ordering: .relaxed)
                while !go.load(ordering: .acquiring) {}
                w.run(stop: stop)
            }
        }
        // The capture writer's stand-in: drains every ring and touches each copy (what a pcap writer reads).
        let drained = ManagedAtomic<Int>(0)
        var writer: CaptureWriter?
        if cfg.capture, let path = cfg.captureFile {
            let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
            guard fd >= 0 else { fatalError("cannot open \(path)") }
            let w = CaptureWriter(rings: workers.map(\.engine.capture), dropsOf: { _ in 0 })
            // Safe: the session is created before the workers start and never shared otherwise.
            if let s = try? CaptureSession(id: 1, ports: [0: PortEntry.captureIn | PortEntry.captureOut], filter: nil, count: nil,
                                           duration: nil, snaplen: CaptureRing.maxSnaplen, output: fd) { w.add(s) }
            writer = w
        }
        let drainer: pthread_t? = cfg.capture && writer == nil ? spawnThread {
            var sum = 0
            while !stop.load(ordering: .relaxed) {
                var got = 0
                for w in workers { got += w.engine.capture.drain { r in sum &+= r.originalLength } }
                drained.wrappingIncrement(by: got, ordering: .relaxed)
                if got == 0 { usleep(100) }
            }
            _ = sum
        } : nil
        while started.load(ordering: .relaxed) < workers.count { usleep(100) }
        MallocInterposerSwift.hook()
        let t0 = vsw_now_ns()
        writer?.start()
        go.store(true, ordering: .releasing)
        usleep(UInt32(cfg.seconds * 1_000_000))
        stop.store(true, ordering: .relaxed)
        if let drainer { pthread_join(drainer, nil) }
        if let writer {
            writer.stop()
            let s = writer.takeFinished().first ?? [:]
            let ns = Double(writer.threadCPUNs) / Double(max(1, s["captured"] as? Int ?? 0))
            let refused = workers.reduce(UInt64(0)) { acc, w in acc + w.engine.counters.read(port: 0, PortCounter.captureDrops) }
            FileHandleErr.write(String(format: "capture: %@ copies written to %@ by the capture writer, %llu refused (ring full); writer thread CPU %.1f ns per copy written\n",
                                       "\(s["captured"] ?? "?")", cfg.captureFile ?? "", refused, ns))
        } else if cfg.capture {
            let copies = drained.load(ordering: .relaxed)
            let refused = workers.reduce(UInt64(0)) { acc, w in acc + w.engine.counters.read(port: 0, PortCounter.captureDrops) }
            FileHandleErr.write("capture: \(copies) copies written, \(refused) refused (ring full)\n")
        }
        let t1 = vsw_now_ns()
        MallocInterposerSwift.unhook()
        for t in tids { pthread_join(t, nil) }
        let stats = MallocInterposerSwift.getStatistics()
        let frames = workers.reduce(0) { $0 + $1.processed }
        let secs = Double(t1 - t0) / 1e9
        let total = Double(frames) / secs / 1e6
        // Sanity: every frame reached exactly one sink (known unicast), nothing dropped.
        let sunk = workers.reduce(UInt64(0)) { $0 + $1.sink.frames }
        let dropped = workers.reduce(UInt64(0)) { acc, w in
            acc + (0..<cfg.ports).reduce(UInt64(0)) { $0 + PortCounters(port: $1, blocks: [w.engine.counters]).totalDrops }
        }
        if sunk != frames || dropped > 0 {
            var reasons: [String: UInt64] = [:]
            for w in workers { for port in 0..<cfg.ports { for (r, v) in PortCounters(port: port, blocks: [w.engine.counters]).drops { reasons[r.name, default: 0] += v } } }
            FileHandleErr.write("warning: \(frames) frames in, \(sunk) out, \(dropped) dropped \(reasons)\n")
        }
        _ = snapshot
        return CoreBenchResult(size: cfg.size, macs: cfg.macs, threads: cfg.threads, mode: cfg.mode, profile: cfg.profile, batch: cfg.batch,
                               ports: cfg.ports, frames: frames, seconds: secs, mpps_total: total,
                               mpps_per_core: total / Double(min(cfg.threads, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))))),
                               ns_per_frame: secs * 1e9 * Double(cfg.threads) / Double(max(1, frames)),
                               cpu_ns_per_frame: Double(workers.reduce(UInt64(0)) { $0 + $1.cpuNs }) / Double(max(1, frames)),
                               mallocs: stats.mallocCount,
                               allocs_per_frame: counting ? Double(stats.mallocCount) / Double(max(1, frames)) : -1,
                               cpu_model: cpuModel())
    }

    /// Anti-spoofing (the port's stations), 8 outbound + 8 inbound ACL rules that the benchmark traffic
    /// (IPv4/UDP 10.0.0.0/8 → port 4789) walks through before the last one allows it, and both policers
    /// at 100 Gbit/s (evaluated on every frame, never limiting).
    static func realisticProfile(base: PortPolicy, stations: [UInt64]) -> CompiledPort {
        PolicyCompiler.compilePort(realisticPortProfile(base: base, stations: stations))
    }

    /// The realistic profile as a PortProfile (what a profile document holds), before compilation.
    static func realisticPortProfile(base: PortPolicy, stations: [UInt64], id: String = "urn:bench") -> PortProfile {
        var p = PortProfile(id: id, elementName: "bench", instanceID: "bench:" + id)
        p.desiredVLANEndpointMode = base.mode == .trunk ? .trunk : .access
        p.portVID = base.mode == .trunk ? nil : base.pvid
        p.trunkedVLANs = base.mode == .trunk ? base.vlans.members : []
        p.sourceMACFilteringEnabled = true
        p.allowedToTransmit = stations.dropFirst().map { MACVLANPair(mac: MACAddress(rawValue: $0)) }
        p.limit = 100_000_000_000
        p.receiveBandwidthLimit = 100_000_000_000
        var rules: [ACLRule] = []
        for d in [ACLDirection.outbound, .inbound] {
            for k in 0..<7 {
                var r = ACLRule(name: "\(d)-\(k)", direction: d, action: .deny, weight: 100 - k)
                switch k % 4 {
                case 0: r.proto = "TCP"; r.remotePort = "\(22 + k)"
                case 1: r.remoteIP = "192.168.\(k).0/24"
                case 2: r.proto = "UDP"; r.localPort = "\(5000 + k)-\(5100 + k)"
                default: r.etherType = 0x86DD
                }
                rules.append(r)
            }
            var allow = ACLRule(name: "\(d)-udp", direction: d, action: .allow, weight: 1)
            allow.proto = "UDP"; allow.remoteIP = "10.0.0.0/8"
            rules.append(allow)
        }
        p.acls = rules
        p.inboundAclDefaultAction = .deny
        p.outboundAclDefaultAction = .deny
        return p
    }

    static func cpuModel() -> String {
        guard let f = fopen("/proc/cpuinfo", "r") else { return "unknown" }
        defer { fclose(f) }
        var line: UnsafeMutablePointer<CChar>? = nil
        var cap = 0
        while getline(&line, &cap, f) > 0 {
            let s = String(cString: line!)
            if s.hasPrefix("model name") { free(line); return s.split(separator: ":", maxSplits: 1).last.map { $0.trimmingCharacters() } ?? "unknown" }
        }
        free(line)
        return "unknown"
    }
}

enum FileHandleErr {
    static func write(_ s: String) { FileHandle.standardError.write(Data(s.utf8)) }
}

extension Substring {
    func trimmingCharacters() -> String {
        String(self.drop(while: { $0 == " " || $0 == "\t" }).reversed().drop(while: { $0 == "\n" || $0 == " " }).reversed())
    }
}

/// `vswitch-bench reload`: profile reloads under full load (issue 3). Ports each get a compiled profile
/// (VLAN, anti-spoofing, 8 ACL rules per direction); forwarding threads run flat out through the core
/// while the main thread recompiles every port's profile (alternating two versions of the set) and
/// publishes a new snapshot, `reloads` times. Reports the time per reload (compile + snapshot build +
/// publish including the grace period) and whether any frame was lost or dropped.
struct ReloadBenchResult: Codable {
    var benchmark = "reload"
    var ports: Int
    var profiles: Int
    var reloads: Int
    var threads: Int
    var frames: UInt64
    var delivered: UInt64
    var dropped: UInt64
    var lost: UInt64
    var reload_ms_p50: Double
    var reload_ms_p99: Double
    var reload_ms_max: Double
    /// Profiles whose text changed at each reload; whether the read and compile caches were used.
    var changed: Int
    var cache: Bool
    /// Of which: compiling the profiles and building the snapshot; publishing (swap + grace period).
    var build_ms_p50: Double
    var publish_ms_p50: Double
    /// Of publish: the grace period (waiting for every forwarding thread to pass a quiescent point), p50 and
    /// max; the rest is the pointer swap and freeing the previous snapshot.
    var grace_ms_p50: Double
    var grace_ms_max: Double
    /// What a reload did: "xml" = parse + validate the whole profile document, compile, build, publish
    /// (what SIGHUP / `vswitchctl profile reload` do); "compiled" = compile, build, publish only.
    var mode: String
    /// Of build_ms_p50: parsing + validating the document (xml mode), compiling the profiles, building the snapshot.
    var parse_ms_p50: Double
    var compile_ms_p50: Double
    var snapshot_ms_p50: Double
    var document_bytes: Int
    /// CPU time of the reloading thread for parse + compile + snapshot (CLOCK_THREAD_CPUTIME_ID): what a
    /// reload costs when it does not compete for a core (this 2-core machine runs the forwarding thread beside it).
    var parse_cpu_ms_p50: Double
    var build_cpu_ms_p50: Double
    var build_cpu_ms_p99: Double
    var mpps_during_reloads: Double
}

enum ReloadBench {
    /// The median (the mean of the two middle values of an even count).
    static func p50(_ v: [Double]) -> Double {
        guard !v.isEmpty else { return 0 }
        let s = v.sorted(), n = s.count
        return n % 2 == 1 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2
    }
    /// The 99th percentile by nearest rank: the ceil(0.99 n)-th smallest (of 100 values the 99th, not the maximum:
    /// session 8 review; earlier figures called p99 were the maximum of their runs).
    static func p99(_ v: [Double]) -> Double {
        guard !v.isEmpty else { return 0 }
        let s = v.sorted()
        return s[max(0, Int((0.99 * Double(s.count)).rounded(.up)) - 1)]
    }

    /// `xml`: each reload parses and validates a profile document holding every port's profile
    /// (ProfileLoader: XSD + semantic rules), compiles each profile, builds the snapshot and publishes
    /// it — the daemon's reload minus reading the file. Two documents (DefaultPriority 0 and 1 on
    /// `changed` profiles, spread over the set; all of them by default) alternate, so every reload really
    /// changes that many profiles.
    /// `profiles`: distinct profiles in the set (port p is bound to profile p % profiles); as in the
    /// daemon, each distinct profile is parsed and compiled once per reload, whatever the port count.
    /// `cache`: as the daemon does, reuse the reading (ProfileReadCache) and the compilation
    /// (PolicyCompileCache) of the profiles that did not change since the previous reload.
    static func run(ports: Int, reloads: Int, threads: Int, xml: Bool = true, profiles profileCount: Int? = nil,
                    changed changedCount: Int? = nil, cache useCache: Bool = true) throws -> ReloadBenchResult {
        let distinct = max(1, min(profileCount ?? ports, ports))
        let changing = max(0, min(changedCount ?? distinct, distinct))
        // Profile p changes when it is one of `changing` profiles spread evenly over the set.
        let changes: [Bool] = (0..<distinct).map { p in changing > 0 && (p * changing) % distinct < changing }
        let stations = (0..<ports).map { UInt64(0x0200_0000_0000) | UInt64($0 + 1) }
        let table = MACTable(limit: max(65_536, ports * 4))
        let runtime = PortRuntime()
        func portProfiles(_ version: Int) -> [PortProfile] {
            (0..<distinct).map { p in
                var pp = CoreBench.realisticPortProfile(base: .access(10), stations: [stations[p]], id: "urn:bench:profile-\(p)")
                pp.limit = nil; pp.receiveBandwidthLimit = nil   // measure reloads, not policers
                pp.defaultPriority = changes[p] ? UInt8(version & 7) : 0
                return pp
            }
        }
        let documents = [0, 1].map { Array(ProfileWriter.write(portProfiles($0)).utf8) }
        if let path = ProcessInfo.processInfo.environment["VSWITCH_BENCH_WRITE_DOCUMENT"] {
            // The first of the two documents, for looking at it or timing other tools on it (xmllint).
            FileManager.default.createFile(atPath: path, contents: Data(documents[0]))
        }
        let compileCache = PolicyCompileCache()
        var readCache: ProfileReadCache? = nil
        func compile(_ profiles: [PortProfile]) -> [CompiledPort] {
            guard useCache else { return profiles.map { PolicyCompiler.compilePort($0) } }
            defer { compileCache.endRound() }
            return profiles.map { compileCache.compiledPort($0) }
        }
        func load(_ document: [UInt8]) throws -> [PortProfile] {
            guard useCache else { return try ProfileLoader.load(data: document, fileName: "bench-profiles.xml").profiles }
            return try ProfileLoader.load(data: document, fileName: "bench-profiles.xml", cache: &readCache).profiles
        }
        func snapshot(_ gen: UInt64, _ compiled: [CompiledPort]) -> ConfigSnapshot {
            let specs = (0..<ports).map { PortSpec(index: $0, handle: Int32($0), mtu: 1500,
                                                   mac: stations[$0], compiled: compiled[$0 % compiled.count]) }
            return ConfigSnapshot(generation: gen, ports: specs, macTable: table, runtime: runtime)
        }
        // The running set before the first reload: loaded from document 0 (so the caches hold it).
        let initial = xml ? try load(documents[0]) : portProfiles(0)
        let publisher = SnapshotPublisher(initial: snapshot(1, compile(initial)))
        publisher.setThreadCount(threads)
        let now = UInt32(truncatingIfNeeded: vsw_now_coarse_ns() / 1_000_000_000)
        var prev = 0
        for (k, mac) in stations.enumerated() {
            _ = table.learn(vlan: 10, mac: mac, port: k, now: now, portLimit: .max, previousPort: &prev)
        }
        let cfg = CoreBenchConfig(size: 64, macs: ports, threads: threads, mode: "access", seconds: 0, batch: 64,
                                  ports: ports, profile: "realistic")
        let workers = (0..<threads).map { t -> CoreWorker in
            let w = CoreWorker(index: t, cfg: cfg, view: publisher.load(), stations: stations)
            w.publisher = publisher
            return w
        }
        let stop = ManagedAtomic<Bool>(false)
        let tids = workers.enumerated().map { (k, w) in
            spawnThread {
                pinCurrentThread(to: k % max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))))
                publisher.quiescence.goOnline(k)
                w.run(stop: stop)
                publisher.quiescence.goOffline(k)
            }
        }
        usleep(200_000)
        var times: [Double] = [], builds: [Double] = [], publishes: [Double] = [], graces: [Double] = []
        var parses: [Double] = [], compiles: [Double] = [], snapshots: [Double] = []
        var parseCPU: [Double] = [], buildCPU: [Double] = []
        let t0 = vsw_now_ns()
        for r in 0..<reloads {
            let ca = CoreWorker.threadCPUNs()
            let a = vsw_now_ns()
            let profiles = xml ? try load(documents[(r + 1) & 1]) : portProfiles(r + 1)
            let b = vsw_now_ns()
            let cb = CoreWorker.threadCPUNs()
            let compiled = compile(profiles)
            let c = vsw_now_ns()
            let next = snapshot(UInt64(r + 2), compiled)
            let d = vsw_now_ns()
            let cd = CoreWorker.threadCPUNs()
            parseCPU.append(Double(cb - ca) / 1e6)
            buildCPU.append(Double(cd - ca) / 1e6)
            publisher.publish(next)
            let e = vsw_now_ns()
            times.append(Double(e - a) / 1e6)
            builds.append(Double(d - a) / 1e6)
            publishes.append(Double(e - d) / 1e6)
            graces.append(Double(publisher.lastGracePeriodNs) / 1e6)
            parses.append(Double(b - a) / 1e6)
            compiles.append(Double(c - b) / 1e6)
            snapshots.append(Double(d - c) / 1e6)
        }
        let t1 = vsw_now_ns()
        stop.store(true, ordering: .relaxed)
        for t in tids { pthread_join(t, nil) }
        let frames = workers.reduce(UInt64(0)) { $0 + $1.processed }
        let delivered = workers.reduce(UInt64(0)) { $0 + $1.sink.frames }
        let dropped = workers.reduce(UInt64(0)) { acc, w in
            acc + (0..<ports).reduce(UInt64(0)) { $0 + PortCounters(port: $1, blocks: [w.engine.counters]).totalDrops }
        }
        return ReloadBenchResult(ports: ports, profiles: distinct, reloads: reloads, threads: threads, frames: frames, delivered: delivered,
                                 dropped: dropped, lost: frames &- delivered &- dropped,
                                 reload_ms_p50: p50(times), reload_ms_p99: p99(times), reload_ms_max: times.max() ?? 0,
                                 changed: changing, cache: useCache,
                                 build_ms_p50: p50(builds), publish_ms_p50: p50(publishes),
                                 grace_ms_p50: p50(graces), grace_ms_max: graces.max() ?? 0,
                                 mode: xml ? "xml" : "compiled", parse_ms_p50: xml ? p50(parses) : 0,
                                 compile_ms_p50: p50(compiles), snapshot_ms_p50: p50(snapshots),
                                 document_bytes: documents[0].count,
                                 parse_cpu_ms_p50: xml ? p50(parseCPU) : 0, build_cpu_ms_p50: p50(buildCPU),
                                 build_cpu_ms_p99: p99(buildCPU),
                                 mpps_during_reloads: Double(frames) / (Double(t1 - t0) / 1e9 + 0.2) / 1e6)
    }
}
