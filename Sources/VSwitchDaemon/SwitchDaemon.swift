// VSwitchDaemon: turns a validated Topology into a running switch and keeps it running.
//
// Start-up is two-phase: every check that can fail without side effects runs
// first (root, /dev/net/tun, interface and namespace names free), then the
// system is changed step by step with an undo list, so a failure leaves
// nothing half-created. The forwarding threads (VSwitchCore) then run on their
// own pthreads; this module's control thread owns everything else:
// housekeeping once a second (aging, MAC-move log, table compaction), the
// signals (SIGINT/SIGTERM stop, SIGUSR1 prints counters and the MAC table,
// SIGHUP reloads the profile files), and every snapshot publication.
//
// Threading: all methods of SwitchDaemon run on the control (main) thread.

import Atomics
import Foundation
import Logging
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
    public init(threads: Int? = nil, statsJSONPath: String? = nil, readyFile: String? = nil) {
        self.threads = threads; self.statsJSONPath = statsJSONPath; self.readyFile = readyFile
    }
}

/// One clear line for the operator.
public struct DaemonError: Error, CustomStringConvertible {
    public let description: String
    public init(_ d: String) { description = d }
}

public final class SwitchDaemon {
    public let topology: Topology
    let options: DaemonOptions
    let log: Logger
    var profiles: ProfileSet
    var taps: [TapDevice] = []
    /// Ports whose device vanished (port index set); they stay in the snapshot as down.
    var vanished: Set<Int> = []
    var namespaces: [String] = []
    var table: MACTable
    var publisher: SnapshotPublisher?
    var threads: [ForwardingThread<TapBackend>] = []
    var generation: UInt64 = 0
    var moveLogBudget = 0
    var movesSuppressed = 0
    let startedAt = monotonicSeconds()

    public init(topology: Topology, options: DaemonOptions, logger: Logger) {
        self.topology = topology
        self.options = options
        self.log = logger
        self.profiles = topology.profiles
        self.table = MACTable(limit: topology.settings.macTableSize)
    }

    // MARK: - start-up

    /// Checks everything that can be checked without touching the system.
    public func preflight() throws {
        if geteuid() != 0 { throw DaemonError("vswitchd must run as root (it needs CAP_NET_ADMIN to create TAP devices and namespaces)") }
        if access("/dev/net/tun", R_OK | W_OK) != 0 { throw DaemonError("/dev/net/tun is missing or not accessible: load the tun module (modprobe tun)") }
        for p in topology.ports {
            if p.adopt {
                if !Netlink.linkExists(p.name) { throw DaemonError("port \(p.name): Adopt=\"true\" but no interface \(p.name) exists") }
            } else if Netlink.linkExists(p.name) {
                throw DaemonError("port \(p.name): an interface named \(p.name) already exists (remove it, or set Adopt=\"true\" for a persistent TAP)")
            }
            if let vs = p.virtualSystem, NetworkNamespace.exists(vs.namespace) {
                throw DaemonError("port \(p.name): network namespace \(vs.namespace) already exists (ip netns delete \(vs.namespace), or pick another name)")
            }
        }
    }

    /// Creates the TAPs and virtual systems and starts forwarding. On failure undoes everything and throws.
    public func start() throws {
        try preflight()
        do {
            for p in topology.ports {
                let tap = p.adopt ? try TapDevice.adopt(name: p.name) : try TapDevice.create(name: p.name)
                taps.append(tap)
                if let vs = p.virtualSystem {
                    try VirtualSystemProvisioner.attach(
                        tapName: p.name,
                        to: VirtualSystemSpec(namespace: vs.namespace, interfaceName: vs.interfaceName, mac: vs.mac,
                                              mtu: p.mtu, addresses: vs.addresses))
                    namespaces.append(vs.namespace)
                    log.info("virtual system up", metadata: ["port": "\(p.name)", "namespace": "\(vs.namespace)",
                                                             "mac": "\(vs.mac)", "addresses": "\(vs.addresses.joined(separator: ","))"])
                } else {
                    try Netlink.configure(LinkConfig(name: p.name, mtu: p.mtu, up: true))
                }
            }
        } catch {
            teardown()
            throw DaemonError("start-up failed, everything created was removed: \(error)")
        }
        let snapshot = try makeSnapshot(profiles: profiles, table: table)
        let publisher = SnapshotPublisher(initial: snapshot)
        self.publisher = publisher
        let n = threadCount()
        publisher.setThreadCount(n)
        let cpus = Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))
        for t in 0..<n {
            let th = ForwardingThread(index: t, threadCount: n, publisher: publisher, backend: TapBackend(),
                                      batchCapacity: options.batchSize,
                                      dataRoom: max(2048, (topology.ports.map(\.mtu).max() ?? 1500) + 64),
                                      cpu: n <= cpus ? t : nil, clock: { monotonicNanoseconds() })
            threads.append(th)
            th.start()
        }
        log.info("switch ready", metadata: ["topology": "\(topology.name)", "ports": "\(topology.ports.count)",
                                            "threads": "\(n)", "mac-aging-time": "\(topology.settings.macAgingTime)",
                                            "mac-table-size": "\(topology.settings.macTableSize)"])
        if let ready = options.readyFile { FileManager.default.createFile(atPath: ready, contents: Data("ready\n".utf8)) }
    }

    func threadCount() -> Int {
        if let t = options.threads, t > 0 { return t }
        if topology.settings.forwardingThreads > 0 { return topology.settings.forwardingThreads }
        return max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))))
    }

    func makeSnapshot(profiles: ProfileSet, table: MACTable) throws -> ConfigSnapshot {
        generation += 1
        var specs: [PortSpec] = []
        for (i, p) in topology.ports.enumerated() {
            guard let profile = profiles.profile(id: p.profileID) else {
                throw DaemonError("port \(p.name) is bound to profile \(p.profileID), which is not loaded")
            }
            let policy = PolicyCompiler.compile(profile, switchMACLimit: topology.settings.maxMACsPerPort)
            specs.append(PortSpec(index: i, up: !vanished.contains(i), handle: taps[i].fd, mtu: p.mtu, mac: p.mac?.rawValue ?? 0, policy: policy))
        }
        return ConfigSnapshot(generation: generation, ports: specs, macTable: table)
    }

    // MARK: - running

    /// Runs the control loop until SIGINT or SIGTERM.
    public func run() {
        var set = sigset_t()
        sigemptyset(&set)
        for s in [SIGINT, SIGTERM, SIGUSR1, SIGHUP] { sigaddset(&set, s) }
        var lastAging = monotonicSeconds()
        while true {
            var ts = timespec(tv_sec: 1, tv_nsec: 0)
            let sig = sigtimedwait(&set, nil, &ts)
            switch sig {
            case SIGINT, SIGTERM:
                log.info("signal \(sig == SIGINT ? "SIGINT" : "SIGTERM"): stopping")
                return
            case SIGUSR1:
                FileHandle.standardOutput.write(Data(report().utf8))
                writeStatsJSON()
            case SIGHUP:
                reloadProfiles()
            default:
                break
            }
            let now = monotonicSeconds()
            if now != lastAging {
                lastAging = now
                housekeeping(now: now)
            }
        }
    }

    func housekeeping(now: UInt32) {
        checkDevices()
        let aged = table.age(now: now, agingTime: UInt32(topology.settings.macAgingTime))
        if aged > 0 { log.debug("aged out \(aged) MAC entries") }
        // MAC moves: at most 10 log lines a second, the rest summarised.
        moveLogBudget = 10
        for th in threads {
            for m in th.engine.moves.drain() {
                if moveLogBudget > 0 {
                    moveLogBudget -= 1
                    log.warning("MAC move", metadata: ["mac": "\(MACAddress(rawValue: m.mac))", "vlan": "\(m.vlan)",
                                                       "from": "\(portName(m.from))", "to": "\(portName(m.to))"])
                } else {
                    movesSuppressed += 1
                }
            }
        }
        if movesSuppressed > 0 && moveLogBudget > 0 {
            log.warning("\(movesSuppressed) further MAC moves not logged (rate limit)")
            movesSuppressed = 0
        }
        if table.needsCompaction, let publisher {
            let fresh = table.compacted()
            table = fresh
            if let s = try? makeSnapshot(profiles: profiles, table: fresh) {
                publisher.publish(s)
                log.debug("MAC table compacted", metadata: ["entries": "\(fresh.liveCount)"])
            }
        }
    }

    /// A TAP whose netdev vanished (namespace deleted, `ip link delete`) takes its port down: no more
    /// frames to or from it, its MAC entries flushed; the other ports keep forwarding.
    func checkDevices() {
        var changed = false
        for (i, tap) in taps.enumerated() where !vanished.contains(i) && !tap.isAttached {
            vanished.insert(i)
            changed = true
            log.error("port \(topology.ports[i].name): its device vanished; port down, MAC entries flushed")
        }
        guard changed, let publisher, let snap = try? makeSnapshot(profiles: profiles, table: table) else { return }
        publisher.publish(snap)
        for i in vanished { table.flush(port: i) }
    }

    /// SIGHUP: re-reads the topology's profile files; applies them only if all are valid and every bound profile exists.
    func reloadProfiles() {
        do {
            var merged: [PortProfile] = []
            var warnings: [String] = []
            for f in topology.profileFiles {
                let set = try ProfileLoader.load(path: f)
                merged += set.profiles
                warnings += set.warnings.map(\.description)
            }
            let next = ProfileSet(profiles: merged, warnings: [])
            for p in topology.ports where next.profile(id: p.profileID) == nil {
                throw DaemonError("reload refused: port \(p.name) is bound to \(p.profileID), which the new files no longer define")
            }
            let snap = try makeSnapshot(profiles: next, table: table)
            publisher?.publish(snap)
            profiles = next
            for w in warnings { log.warning("\(w)") }
            log.info("profiles reloaded", metadata: ["profiles": "\(merged.count)", "generation": "\(generation)"])
        } catch {
            log.error("profile reload failed; the running configuration is unchanged: \(error)")
        }
    }

    func portName(_ i: Int) -> String { i < topology.ports.count ? topology.ports[i].name : "#\(i)" }

    // MARK: - reporting

    public func counters() -> [(String, PortCounters)] {
        let blocks = threads.map(\.engine.counters)
        return topology.ports.indices.map { (topology.ports[$0].name, PortCounters(port: $0, blocks: blocks)) }
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
        s += "MAC table (\(table.liveCount) entries, limit \(table.limit), aging \(topology.settings.macAgingTime)s):\n"
        s += "  port        vlan  mac                age  type\n"
        for e in table.entries(now: monotonicSeconds()) {
            s += "  " + portName(e.port).padding(toLength: 12, withPad: " ", startingAt: 0)
                + String(e.vlan).padding(toLength: 6, withPad: " ", startingAt: 0)
                + MACAddress(rawValue: e.mac).description.padding(toLength: 19, withPad: " ", startingAt: 0)
                + String(e.age).padding(toLength: 5, withPad: " ", startingAt: 0)
                + (e.isStatic ? "static" : "dynamic") + "\n"
        }
        return s
    }

    public func statsJSON() -> [String: Any] {
        let ports: [[String: Any]] = counters().map { name, c in
            var drops: [String: UInt64] = [:]
            for r in DropReason.allCases { drops[r.name] = c.drops(r) }
            return ["name": name, "rx_packets": c.rxPackets, "rx_bytes": c.rxBytes, "tx_packets": c.txPackets,
                    "tx_bytes": c.txBytes, "floods": c.floods, "mac_moves": c.macMoves,
                    "learn_table_full": c.learnTableFull, "drops": drops]
        }
        let fdb: [[String: Any]] = table.entries(now: monotonicSeconds()).map {
            ["port": portName($0.port), "vlan": Int($0.vlan), "mac": MACAddress(rawValue: $0.mac).description,
             "age": Int($0.age), "static": $0.isStatic]
        }
        return ["ports": ports, "mac_table": fdb, "mac_table_size": table.limit, "generation": Int(generation)]
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

    /// Stops forwarding, prints the final counters, removes everything the daemon created.
    public func shutdown() {
        for t in threads { t.stop() }
        if publisher != nil {
            FileHandle.standardOutput.write(Data(report().utf8))
            writeStatsJSON()
        }
        teardown()
        log.info("stopped; removed \(namespaces.count) namespaces and \(taps.count) TAP devices")
    }

    func teardown() {
        for ns in namespaces.reversed() { VirtualSystemProvisioner.teardown(namespace: ns) }
        for (i, tap) in taps.enumerated().reversed() {
            if topology.ports[i].adopt { tap.close() } else { tap.destroy() }
        }
    }
}
