// VSwitchDaemon: runs the switch — the dynamic model (SwitchModel), the forwarding threads,
// the control socket (ControlServer + ControlCommands), link monitoring and persistent state.
//
// Start-up: `--topology FILE` turns the topology into the initial configuration (every check
// that needs no change to the system runs first; then ports are created one by one, and a
// failure removes everything created). Without a topology, the state directory's state file is
// restored (ports adopted where their persistent TAPs survived, created again where not); a
// corrupt state file is refused whole. The forwarding threads (VSwitchCore) run on their own
// pthreads; this module's control thread owns everything else, in one poll() loop over a
// signalfd (SIGINT/SIGTERM stop, SIGUSR1 prints counters and the MAC table, SIGHUP reloads the
// profile files), the control socket and its clients, the rtnetlink link monitor, and a 1 s
// housekeeping tick (aging, MAC-move log, TAP presence check, table compaction).
//
// State mode (`--state-dir`, or restoring): TAPs are made persistent, every accepted change is
// saved atomically, and a stop leaves the virtual systems and their TAPs in place for the next
// start to adopt. Topology mode without `--state-dir` is ephemeral: a stop removes everything.
//
// Threading: all methods of SwitchDaemon run on the control (main) thread.

import Atomics
import CVSwitchShim
import Foundation
import Logging
import VSwitchCapture
import VSwitchControl
import VSwitchCore
import VSwitchIO
import VSwitchPacket
import VSwitchPolicy
import VSwitchProfiles
import VSwitchTopology

public struct DaemonOptions: Sendable {
    public var threads: Int?
    public var statsJSONPath: String?
    public var readyFile: String?
    public var batchSize: Int = 64
    /// TAP port I/O: `.uring` (batched io_uring submissions) or `.syscall` (one read/write per frame).
    public var portIO: PortIO = .uring
    /// TAP offloads (IFF_VNET_HDR, checksum, TSO) allowed; false forces every port off (A/B benchmarks).
    public var offloads = true
    /// RX rings of netdev ports (`vswitchd --netdev-ring`; `VSWITCH_NETDEV_*` overrides, NetdevRingTuning.current).
    public var netdevRing: NetdevRingTuning = .standard
    /// The topology to start from (nil: restore from the state directory).
    public var topology: Topology?
    /// Where state is kept; nil: no persistence (topology mode without --state-dir).
    public var stateDirectory: String?
    /// Control socket path; nil: no control socket.
    public var controlSocket: String? = ControlProtocol.defaultSocketPath
    /// The control socket was not asked for explicitly: if another daemon holds it, run without one.
    public var controlSocketOptional = false
    /// `--metrics-listen HOST:PORT`: serve the Prometheus text on GET /metrics (MetricsHTTPServer); nil: off.
    public var metricsListen: String?
    /// `--forwarding-cpus` / `--housekeeping-cpus` (CPUPlacement); nil lists: the defaults.
    public var cpus = CPUPlacement()
    /// `--idle-spin-us`: how long a forwarding thread keeps polling (timeout 0) after its last frame before it
    /// sleeps in epoll_wait (0: sleeps after two empty passes).
    public var idleSpinNs: UInt64 = 0
    /// Bytes of capture ring per forwarding thread (`--capture-ring-mib`).
    public var captureRingBytes: Int = 4 << 20
    public init(threads: Int? = nil, statsJSONPath: String? = nil, readyFile: String? = nil) {
        self.threads = threads; self.statsJSONPath = statsJSONPath; self.readyFile = readyFile
    }
}

/// One clear line for the operator.
public struct DaemonError: Error, CustomStringConvertible {
    public let description: String
    public init(_ d: String) { description = d }
}

extension SwitchConfig {
    /// A topology as the initial configuration (profile documents read from their files).
    public init(topology t: Topology) throws {
        self.init()
        name = t.name
        settings = SettingsConfig(macAgingTime: t.settings.macAgingTime, macTableSize: t.settings.macTableSize,
                                  forwardingThreads: t.settings.forwardingThreads, maxMACsPerPort: t.settings.maxMACsPerPort)
        profiles = try t.profileFiles.map { path in
            guard let d = FileManager.default.contents(atPath: path), let s = String(data: d, encoding: .utf8) else {
                throw DaemonError("cannot read profile file \(path)")
            }
            return ProfileSource(path: path, xml: s)
        }
        ports = t.ports.enumerated().map { i, p in
            var c = PortConfig(index: i, name: p.name, type: p.kind.rawValue, profile: p.profileID,
                       mac: (p.virtualSystem?.mac ?? p.mac)?.description, mtu: p.mtu,
                       namespace: p.virtualSystem?.namespace, interface: p.interface ?? p.virtualSystem?.interfaceName,
                       addresses: p.virtualSystem?.addresses ?? [], adopt: p.adopt)
            c.offload = p.offload
            return c
        }
    }
}

/// How TAP ports move frames (issue 7); chosen by measurement, see bench/RESULTS.md.
public enum PortIO: String, Sendable, CaseIterable {
    case uring, syscall
}

/// What the control thread needs of a forwarding thread, whatever its backend type.
protocol ForwardingWorker: AnyObject {
    var engine: ForwardingEngine { get }
    func stop()
}

extension ForwardingThread: ForwardingWorker {}

public final class SwitchDaemon {
    let options: DaemonOptions
    let log: Logger
    let system = TapPortSystem()
    var model: SwitchModel!
    var store: StateStore?
    var server: ControlServer?
    var metricsServer: MetricsHTTPServer?
    var commands: ControlCommands!
    var monitor: LinkMonitor?
    var signalFD: Int32 = -1
    var threads: [any ForwardingWorker] = []
    var movesSuppressed = 0
    var captureWriter: CaptureWriter?

    public init(options: DaemonOptions, logger: Logger) {
        self.options = options
        self.log = logger
    }

    // MARK: - start-up

    /// Brings the switch up. On failure undoes everything and throws one line.
    public func start() throws {
        if geteuid() != 0 { throw DaemonError("vswitchd must run as root (it needs CAP_NET_ADMIN to create TAP devices and namespaces)") }
        if access("/dev/net/tun", R_OK | W_OK) != 0 { throw DaemonError("/dev/net/tun is missing or not accessible: load the tun module (modprobe tun)") }
        // 0. Thread placement, before any thread is started: the ones started from here inherit the housekeeping CPUs.
        let allowedCPUs = CPUList.allowed()   // read before the control thread confines itself
        try options.cpus.check(allowed: allowedCPUs)
        try options.cpus.confineCurrentThread()
        if options.cpus != CPUPlacement() {
            log.info("CPU placement", metadata: ["forwarding": "\(options.cpus.forwarding?.description ?? "default: allowed CPUs outside housekeeping")",
                                                 "housekeeping": "\(options.cpus.housekeeping?.description ?? "any")"])
        }

        // 1. The initial configuration, checked before anything is created.
        var initial: SwitchConfig
        var restoring = false
        if let dir = options.stateDirectory {
            let s = StateStore(directory: dir)
            try s.prepare()
            store = s
        }
        var replaced: [PortConfig] = []   // a saved state's ports the topology replaces (their devices go before apply)
        if let t = options.topology {
            initial = try SwitchConfig(topology: t)
            if let store, let saved = try store.load() { replaced = saved.ports + (saved.removing ?? []) }
            // Names and namespaces the replaced ports own are theirs until they are removed, right before the
            // topology is applied (after every check that can still refuse the start: nothing is destroyed for a
            // start that does not happen).
            func replacedOwns(_ p: PortConfig) -> Bool {
                replaced.contains { $0.name == p.name || ($0.namespace != nil && $0.namespace == p.namespace) }
            }
            for p in initial.ports where !replacedOwns(p) { try system.check(p) }
        } else if let store, var saved = try store.load() {
            if let removing = saved.removing {
                // A del-port that was killed before the port's devices were gone: finish it.
                for p in removing where !saved.ports.contains(where: { $0.name == p.name || ($0.namespace != nil && $0.namespace == p.namespace) }) {
                    log.warning("removing what a deleted port left behind", metadata: ["port": "\(p.name)", "namespace": "\(p.namespace ?? "none")"])
                    system.removeLeftover(p)
                }
                saved.removing = nil
            }
            initial = saved
            restoring = true
            log.info("restoring state", metadata: ["file": "\(store.path)", "ports": "\(saved.ports.count)",
                                                   "profile-files": "\(saved.profiles.count)", "static-fdb": "\(saved.fdb.count)"])
        } else {
            initial = SwitchConfig()
            log.info("no state to restore: starting an empty switch")
        }
        _ = try SwitchModel.merge(initial.profiles)   // a broken profile document refuses the start

        // 2. The control socket (refused before touching the system if another daemon has it).
        if let path = options.controlSocket {
            do {
                server = try ControlServer(path: path)
            } catch {
                if !options.controlSocketOptional { throw error }
                log.warning("running without a control socket: \(error)")
            }
        }
        if let listen = options.metricsListen {
            metricsServer = try MetricsHTTPServer(listen: listen)
            log.info("metrics endpoint", metadata: ["url": "http://\(listen)/metrics"])
        }
        monitor = try? LinkMonitor()
        if monitor == nil { log.warning("rtnetlink link monitor unavailable; link state is checked once a second only") }

        // 3. The model and the forwarding threads (forwarding an empty switch at first).
        let model = SwitchModel(settings: initial.settings, system: system, logger: log)
        model.persistentPorts = store != nil
        self.model = model
        commands = ControlCommands(model: model)
        let publisher = model.publisher
        let n = threadCount(initial.settings)
        publisher.setThreadCount(n)
        system.forwardingThreads = n
        system.offloadsAllowed = options.offloads
        system.netdevRing = options.netdevRing.withEnvironmentOverrides()
        // Buffers: 64 KiB frames when offloads may be on (GSO super-frames from TAPs and netdevs), else
        // the largest MTU. Measured: no difference in 64-byte forwarding (bench/RESULTS.md, issue 7).
        let dataRoom = options.offloads ? max(VirtioNet.maxFrame, SwitchModel.maxMTU + 64) : SwitchModel.maxMTU + 64
        var io = options.portIO
        for t in 0..<n {
            let cpu = options.cpus.forwardingCPU(thread: t, of: n, allowed: allowedCPUs)
            if io == .uring {
                do {
                    let th = ForwardingThread(index: t, threadCount: n, publisher: publisher,
                                              backend: PortSetBackend(tap: try UringTapBackend(maxPorts: SwitchModel.maxPorts),
                                                                      threadIndex: t, maxPorts: SwitchModel.maxPorts),
                                              batchCapacity: options.batchSize, dataRoom: dataRoom,
                                              maxPorts: SwitchModel.maxPorts, idleSpinNs: options.idleSpinNs, captureRingBytes: options.captureRingBytes, cpu: cpu, clock: { monotonicNanoseconds() })
                    threads.append(th)
                    th.start()
                    continue
                } catch {
                    log.warning("io_uring unavailable (\(error)); TAP ports use one read/write per frame")
                    io = .syscall
                }
            }
            let th = ForwardingThread(index: t, threadCount: n, publisher: publisher,
                                      backend: PortSetBackend(tap: TapBackend(maxPorts: SwitchModel.maxPorts), threadIndex: t,
                                                              maxPorts: SwitchModel.maxPorts),
                                      batchCapacity: options.batchSize, dataRoom: dataRoom,
                                      maxPorts: SwitchModel.maxPorts, idleSpinNs: options.idleSpinNs, captureRingBytes: options.captureRingBytes, cpu: cpu, clock: { monotonicNanoseconds() })
            threads.append(th)
            th.start()
        }
        model.counterBlocks = { [unowned self] in self.threads.map(\.engine.counters) }
        let blocks = threads.map(\.engine.counters)
        let writer = CaptureWriter(rings: threads.map(\.engine.capture), dropsOf: { port in
            blocks.reduce(0) { $0 &+ $1.read(port: port, PortCounter.captureDrops) }
        })
        writer.start()
        captureWriter = writer
        model.onPortRemoved = { [weak writer] i in writer?.portRemoved(i) }
        commands.capture = writer
        if let server { commands.takeDescriptors = { [unowned server] in server.takeDescriptors() } }

        // 4. Apply the configuration. A topology that replaces a saved state: that state's devices (persistent TAPs,
        // virtual systems) are removed first, not left unowned to block the names.
        if !replaced.isEmpty {
            log.warning("the topology replaces the saved state; removing the devices of its ports",
                        metadata: ["ports": "\(replaced.map(\.name).joined(separator: ","))"])
            for p in replaced { system.removeLeftover(p) }
        }
        do {
            try model.apply(initial, restore: restoring)
        } catch {
            for t in threads { t.stop() }
            threads = []
            model.releaseAll(destroy: !restoring)
            server = nil
            throw DaemonError("start-up failed, everything created was removed: \(error)")
        }
        if let store {
            model.onChange = { [log] c in
                do { try store.save(c) } catch {
                    log.error("\(error)")
                    throw DaemonError("refused: the state could not be saved (\(error)); nothing changed")
                }
            }
            try store.save(model.config)
        }
        log.info("switch ready", metadata: ["name": "\(initial.name)", "ports": "\(initial.ports.count)", "threads": "\(n)",
                                            "mac-aging-time": "\(initial.settings.macAgingTime)",
                                            "mac-table-size": "\(initial.settings.macTableSize)",
                                            "control-socket": "\(server?.path ?? "none")",
                                            "state-dir": "\(store?.directory ?? "none")"])
        if let ready = options.readyFile { FileManager.default.createFile(atPath: ready, contents: Data("ready\n".utf8)) }
    }

    func threadCount(_ s: SettingsConfig) -> Int {
        if let t = options.threads, t > 0 { return t }
        if s.forwardingThreads > 0 { return s.forwardingThreads }
        // One per core, at most the range's 64 (the quiescence table and the per-thread rings are sized for that).
        return min(SwitchSettings.forwardingThreadsRange.upperBound, max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))))
    }

    // MARK: - running

    /// Runs the control loop until SIGINT or SIGTERM.
    public func run() {
        var set = sigset_t()
        sigemptyset(&set)
        for s in [SIGINT, SIGTERM, SIGUSR1, SIGHUP] { sigaddset(&set, s) }
        signalFD = vsw_signalfd(&set)
        if signalFD < 0 { log.critical("signalfd failed: \(String(cString: strerror(errno)))"); return }
        defer { close(signalFD) }
        var lastTick = monotonicSeconds()
        while true {
            var fds = [pollfd(fd: signalFD, events: Int16(POLLIN), revents: 0)]
            if let monitor { fds.append(pollfd(fd: monitor.fd, events: Int16(POLLIN), revents: 0)) }
            if let server { fds += server.pollFDs() }
            if let metricsServer { fds += metricsServer.pollFDs() }
            let nowNs = vsw_now_ns_ctl()
            let msToTick = Int32(max(1, 1000 - Int((nowNs / 1_000_000) % 1000)))
            let rc = poll(&fds, nfds_t(fds.count), msToTick)
            if rc > 0 {
                for p in fds where p.revents != 0 {
                    if p.fd == signalFD {
                        while true {
                            let sig = vsw_signalfd_read(signalFD)
                            if sig <= 0 { break }
                            switch sig {
                            case SIGINT, SIGTERM:
                                log.info("signal \(sig == SIGINT ? "SIGINT" : "SIGTERM"): stopping")
                                return
                            case SIGUSR1:
                                FileHandle.standardOutput.write(Data(report().utf8))
                                writeStatsJSON()
                            case SIGHUP:
                                reloadProfiles()
                            default: break
                            }
                        }
                    } else if let monitor, p.fd == monitor.fd {
                        linkEvents(monitor.drain())
                    } else if let metricsServer, metricsServer.owns(p.fd) {
                        metricsServer.service(p, now: Double(vsw_now_ns_ctl()) / 1e9) { commands.metricsText() }
                    } else if let server, server.owns(p.fd) {
                        server.service(p) { line in
                            let r = commands.handle(line: line)
                            if let t = commands.takeover { commands.takeover = nil; server.takeover = t }
                            return r
                        }
                    }
                }
            }
            let now = monotonicSeconds()
            if now != lastTick {
                lastTick = now
                housekeeping(now: now)
            }
        }
    }

    func linkEvents(_ batch: (events: [LinkEvent], overrun: Bool)) {
        if batch.overrun {
            log.warning("rtnetlink overrun: link notifications were lost; resynchronising every port")
            model.recheckLinks()
            return
        }
        var names: [String] = []
        for e in batch.events {
            log.trace("link event", metadata: ["ifindex": "\(e.ifindex)", "name": "\(e.name)", "up": "\(e.isUp)",
                                               "carrier": "\(e.hasCarrier)", "deleted": "\(e.deleted)"])
            for n in model.ports(withIfindex: e.ifindex) where !names.contains(n) { names.append(n) }
        }
        if !names.isEmpty { model.recheckLinks(names) }
    }

    func housekeeping(now: UInt32) {
        metricsServer?.expire(now: Double(vsw_now_ns_ctl()) / 1e9)
        checkDevices()
        model.housekeeping(now: now)
        if let w = captureWriter {
            for s in w.takeFinished() { log.info("capture ended", metadata: s.mapValues { "\($0)" }) }
            model.setCaptureTaps(w.activeTaps(), snaps: w.activeSnaplens())
        }
        // MAC moves: at most 10 log lines a second, the rest summarised.
        var budget = 10
        for th in threads {
            for m in th.engine.moves.drain() {
                if budget > 0 {
                    budget -= 1
                    log.warning("MAC move", metadata: ["mac": "\(MACAddress(rawValue: m.mac))", "vlan": "\(m.vlan)",
                                                       "from": "\(model.portName(m.from))", "to": "\(model.portName(m.to))"])
                } else {
                    movesSuppressed += 1
                }
            }
        }
        if movesSuppressed > 0 && budget > 0 {
            log.warning("\(movesSuppressed) further MAC moves not logged (rate limit)")
            movesSuppressed = 0
        }
    }

    /// A TAP whose netdev vanished (namespace deleted, `ip link delete`) detaches its port: no more
    /// frames to or from it, its MAC entries flushed; the other ports keep forwarding.
    func checkDevices() {
        for (i, _) in model.ports where model.ports[i]!.link != .gone {
            guard let a = model.ports[i]!.attachment, !system.isAttached(a) else { continue }
            let name = model.ports[i]!.config.name
            log.error("port \(name): its device vanished; port down, MAC entries flushed")
            model.setLink(name, .gone)
        }
    }

    /// SIGHUP: re-reads the profile files; applies them only if all are valid and every bound profile exists.
    func reloadProfiles() {
        do {
            let set = try model.reloadProfiles(read: commands.readFile)
            for w in set.warnings where !w.isError { log.warning("\(w)") }
            log.info("profiles reloaded", metadata: ["profiles": "\(set.profiles.count)", "generation": "\(model.generation)"])
        } catch {
            log.error("profile reload failed; the running configuration is unchanged: \(error)")
        }
    }

    // MARK: - reporting

    public func counters() -> [(String, PortCounters)] {
        let blocks = threads.map(\.engine.counters)
        return model.sortedPorts.map { ($0.config.name, PortCounters(port: $0.index, blocks: blocks)) }
    }

    public func report() -> String {
        var s = "port counters:\n"
        s += "  " + ["port", "rx-packets", "rx-bytes", "tx-packets", "tx-bytes", "floods", "mac-moves", "drops"]
            .map { $0.padding(toLength: 12, withPad: " ", startingAt: 0) }.joined() + "\n"
        for (name, c) in counters() {
            s += "  " + [name, "\(c.rxPackets)", "\(c.rxBytes)", "\(c.txPackets)", "\(c.txBytes)", "\(c.floods)",
                         "\(c.macMoves)", "\(c.totalDrops)"].map { $0.padding(toLength: 12, withPad: " ", startingAt: 0) }.joined() + "\n"
            let reasons = c.drops.sorted { $0.key.rawValue < $1.key.rawValue }.map { "\($0.key.name)=\($0.value)" }
            if !reasons.isEmpty { s += "      drops: " + reasons.joined(separator: " ") + "\n" }
        }
        let table = model.table
        s += "MAC table (\(table.liveCount) entries, limit \(table.limit), aging \(model.config.settings.macAgingTime)s):\n"
        s += "  port        vlan  mac                age  type\n"
        for e in table.entries(now: monotonicSeconds()) {
            s += "  " + model.portName(e.port).padding(toLength: 12, withPad: " ", startingAt: 0)
                + String(e.vlan).padding(toLength: 6, withPad: " ", startingAt: 0)
                + MACAddress(rawValue: e.mac).description.padding(toLength: 19, withPad: " ", startingAt: 0)
                + String(e.age).padding(toLength: 5, withPad: " ", startingAt: 0)
                + (e.isStatic ? "static" : "dynamic") + "\n"
        }
        return s
    }

    public func statsJSON() -> [String: Any] {
        let blocks = threads.map(\.engine.counters)
        let ports: [[String: Any]] = model.sortedPorts.map { p in
            let c = PortCounters(port: p.index, blocks: blocks)
            var drops: [String: UInt64] = [:]
            for r in DropReason.allCases { drops[r.name] = c.drops(r) }
            var row: [String: Any] = ["name": p.config.name, "rx_packets": c.rxPackets, "rx_bytes": c.rxBytes, "tx_packets": c.txPackets,
                                      "tx_bytes": c.txBytes, "floods": c.floods, "mac_moves": c.macMoves,
                                      "learn_table_full": c.learnTableFull, "drops": drops]
            if let n = model.resource(p.index) as? NetdevPort { row["netdev_ring"] = n.ringCounters() }
            return row
        }
        let fdb: [[String: Any]] = model.table.entries(now: monotonicSeconds()).map {
            ["port": model.portName($0.port), "vlan": Int($0.vlan), "mac": MACAddress(rawValue: $0.mac).description,
             "age": Int($0.age), "static": $0.isStatic]
        }
        return ["ports": ports, "mac_table": fdb, "mac_table_size": model.table.limit, "generation": Int(model.generation)]
    }

    func writeStatsJSON() {
        guard let path = options.statsJSONPath else { return }
        do {
            let data = try JSONSerialization.data(withJSONObject: statsJSON(), options: [.sortedKeys, .prettyPrinted])
            let tmp = path + ".tmp"
            try data.write(to: URL(fileURLWithPath: tmp))
            _ = rename(tmp, path)
        } catch {
            log.error("cannot write \(path): \(error)")
        }
    }

    // MARK: - shutdown

    /// Stops forwarding, prints the final counters, then releases the ports: in state mode the
    /// virtual systems and their persistent TAPs stay for the next start; otherwise everything the
    /// daemon created is removed.
    public func shutdown() {
        for t in threads { t.stop() }
        captureWriter?.stop()
        guard let model else { return }
        FileHandle.standardOutput.write(Data(report().utf8))
        writeStatsJSON()
        let n = model.sortedPorts.count
        let namespaces = model.sortedPorts.filter { $0.config.namespace != nil }.count
        server = nil
        if store != nil {
            model.releaseAll(destroy: false)
            log.info("stopped; \(n) ports kept for the next start (state in \(store!.path))")
        } else {
            model.releaseAll(destroy: true)
            log.info("stopped; removed \(namespaces) namespaces and \(n) TAP devices")
        }
    }
}

@inline(__always) func vsw_now_ns_ctl() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
}
