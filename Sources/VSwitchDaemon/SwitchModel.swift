// SwitchModel: the dynamic switch — ports added and removed at runtime, profile bindings,
// profile documents, switch settings, static FDB entries — and the one place that turns the
// configuration into a ConfigSnapshot for the forwarding threads.
//
// Design
// - Every accepted change follows the same path: validate everything first (so a refused
//   change leaves nothing changed), change the system (create/attach a TAP, …), rebuild the
//   snapshot and publish it (publish waits for the QSBR grace period; forwarding never
//   stops), then tell `onChange` (the daemon persists the configuration there).
// - Port indices are stable. Removing a port publishes a snapshot without it, flushes its MAC
//   entries (static ones too), waits another grace period, resets its counters and only then
//   frees the index; the lowest free index is reused first.
// - The system side (TAPs, namespaces, netlink) is behind `PortSystem`, so the whole model is
//   unit-tested with a fake system and no root.
// - Reload speed (issue 3): per profile document a `ProfileReadCache` (profiles whose text did not
//   change are not read again) and one `PolicyCompileCache` (a profile equal to the one compiled for
//   the previous snapshot, with the same port parameters, is not compiled again). Both are replaced
//   only by an accepted change; a refused one leaves them as they were.
//
// Threading: control thread only (the daemon's poll loop). Forwarding threads only ever see
// published snapshots and the shared MACTable.

import Foundation
import Logging
import VSwitchCore
import VSwitchPacket
import VSwitchPolicy
import VSwitchProfiles

public enum LinkStatus: String, Equatable, Sendable {
    case up, down
    /// The interface is gone (deleted, its namespace removed): the port is detached.
    case gone = "detached"
}

/// What attaching a port produced: the forwarding handle (TAP fd) and how to find its link.
public final class PortAttachment {
    public let handle: Int32
    /// Interface index of the netdev (in its namespace), for matching link events.
    public var ifindex: Int32?
    /// Opaque owner of the OS resources (e.g. a TapDevice).
    public let resource: AnyObject?
    /// The port takes offloaded frames (TAP with IFF_VNET_HDR and TUNSETOFFLOAD).
    public var offload = false
    /// It takes UDP super-frames too (USO: TUN_F_USO4/6 on a TAP, PACKET_VNET_HDR on a netdev port).
    public var uso = false
    public init(handle: Int32, ifindex: Int32? = nil, resource: AnyObject? = nil, offload: Bool = false, uso: Bool = false) {
        self.handle = handle; self.ifindex = ifindex; self.resource = resource; self.offload = offload; self.uso = offload && uso
    }
}

/// The OS side of ports.
public protocol PortSystem: AnyObject {
    /// Checks, without changing anything, that `port` can be created (names free, …).
    func check(_ port: PortConfig) throws
    /// Creates (or, when `restore`, adopts if it still exists) the port's device and virtual system.
    func attach(_ port: PortConfig, persistent: Bool, restore: Bool) throws -> PortAttachment
    /// Releases the port's device: `destroy` removes what the switch created; otherwise it is left in place.
    func detach(_ port: PortConfig, _ attachment: PortAttachment, destroy: Bool)
    /// The port's link as the kernel sees it now.
    func linkStatus(_ port: PortConfig, _ attachment: PortAttachment) -> LinkStatus
    /// Removes what the switch may have created for `port` and no longer owns (a TAP, its virtual system),
    /// where it still exists: a port deleted (or replaced by a topology) by a daemon that was killed before
    /// it was gone. Never touches an adopted device.
    func removeLeftover(_ port: PortConfig)
}

struct PortState {
    var config: PortConfig
    var attachment: PortAttachment?
    var link: LinkStatus
    var macBinding: MACAddress?
}

public final class SwitchModel {
    public private(set) var config: SwitchConfig
    public private(set) var profiles: ProfileSet
    var ports: [Int: PortState] = [:]
    var byName: [String: Int] = [:]
    public private(set) var table: MACTable
    public let publisher: SnapshotPublisher
    /// Per-port state shared by every snapshot (policer buckets); reset when an index is reused.
    let portRuntime = PortRuntime(maxPorts: MACTable.maxPorts)
    public private(set) var generation: UInt64 = 1
    let system: PortSystem
    let log: Logger
    /// TAPs created persistent (state mode: they survive a crash and are adopted again).
    public var persistentPorts = false
    /// Called after every accepted change (persistence). A throw is reported to the requester.
    public var onChange: ((SwitchConfig) throws -> Void)?
    /// Called with the index of a deleted port (the daemon ends the capture sessions tapping it).
    public var onPortRemoved: ((Int) -> Void)?
    /// The forwarding threads' counter blocks.
    public var counterBlocks: () -> [CounterBlock] = { [] }
    public var clock: () -> UInt32 = { monotonicSeconds() }
    /// Capture taps of running capture sessions, per port index (SwitchModel+Capture.swift).
    public var captureTaps: [Int: UInt8] = [:]
    /// Per profile document (by path): the reading of its profiles in the last accepted load, so a
    /// reload reads again only the profiles whose text changed (issue 3).
    var profileReadCaches: [String: ProfileReadCache] = [:]
    /// Compiled ports of the last snapshot, reused for unchanged profiles.
    let compileCache = PolicyCompileCache()
    /// Port index → bytes of each frame the capture copies (SwitchModel+Capture.swift).
    public var captureSnaps: [Int: UInt16] = [:]
    public static let maxPorts = 1024
    /// Largest MTU a port may have (the forwarding threads' frame room is sized for it).
    public static let maxMTU = PortMTU.maximum

    public init(settings: SettingsConfig, system: PortSystem, logger: Logger) {
        var c = SwitchConfig()
        c.settings = settings
        config = c
        profiles = ProfileSet()
        self.system = system
        log = logger
        table = MACTable(limit: settings.macTableSize)
        publisher = SnapshotPublisher(initial: ConfigSnapshot(generation: 1, ports: [], macTable: table, runtime: portRuntime))
    }

    // MARK: - queries

    public var portNames: [String] { ports.keys.sorted().map { ports[$0]!.config.name } }
    public func portConfig(_ name: String) -> PortConfig? { byName[name].map { ports[$0]!.config } }
    public func index(of name: String) -> Int? { byName[name] }
    public func linkStatus(_ name: String) -> LinkStatus? { byName[name].map { ports[$0]!.link } }
    public func portName(_ i: Int) -> String { ports[i]?.config.name ?? "#\(i)" }
    public var sortedPorts: [(index: Int, config: PortConfig, link: LinkStatus, handle: Int32?)] {
        ports.keys.sorted().map { (index: $0, config: ports[$0]!.config, link: ports[$0]!.link, handle: ports[$0]!.attachment?.handle) }
    }
    /// Ports whose link events may concern interface index `ifindex`.
    public func ports(withIfindex ifindex: Int32) -> [String] {
        ports.values.filter { $0.attachment?.ifindex == ifindex }.map(\.config.name)
    }

    func resolve(_ name: String) throws -> Int {
        guard let i = byName[name] else { throw DaemonError("no such port: \(name)") }
        return i
    }

    func profile(_ id: String) throws -> PortProfile {
        guard let p = profiles.profile(id: id) else {
            throw DaemonError("unknown profile ID \(id) (loaded: \(profiles.ids.isEmpty ? "none" : profiles.ids.joined(separator: ", ")))")
        }
        return p
    }

    // MARK: - snapshot

    /// Whether port `index` runs with offloads (its TAP was opened with IFF_VNET_HDR + TUNSETOFFLOAD).
    public func offloadActive(_ index: Int) -> Bool { ports[index]?.attachment?.offload ?? false }
    /// Whether port `index` takes UDP super-frames (USO) as well.
    public func usoActive(_ index: Int) -> Bool { ports[index]?.attachment?.uso ?? false }
    /// The OS resource behind a port (a TapDevice, a NetdevPort, ...), if attached.
    public func resource(_ index: Int) -> AnyObject? { ports[index]?.attachment?.resource }

    func specs() -> [PortSpec] {
        // Ports bound to the same profile (and MTU) share one compilation, and a profile unchanged since
        // the previous snapshot is not compiled again (PolicyCompileCache: equal profile value, same
        // parameters): a reload costs one compile per changed distinct profile.
        defer { compileCache.endRound() }
        // Bound IDs → profiles through dictionaries built once (ProfileSet.profile(id:) scans the list: ports × profiles).
        let lookup = ProfileLookup(profiles)
        return ports.keys.sorted().compactMap { i in
            let r = ports[i]!
            guard let p = lookup.profile(id: r.config.profile) else { return nil }
            let compiled = compileCache.compiledPort(p, switchMACLimit: config.settings.maxMACsPerPort, mtu: r.config.mtu)
            var spec = PortSpec(index: i, up: r.link == .up && r.attachment != nil, handle: r.attachment?.handle ?? -1,
                                mtu: r.config.mtu, mac: r.macBinding?.rawValue ?? 0, compiled: compiled)
            spec.kind = r.config.type == "netdev" ? PortKindCode.netdev : r.config.type == "pcap" ? PortKindCode.replay : PortKindCode.tap
            spec.offload = r.attachment?.offload ?? false
            spec.uso = r.attachment?.uso ?? false
            applyTaps(&spec, index: i, profile: p)
            return spec
        }
    }

    /// Rebuilds the snapshot from the model and publishes it (waits for the grace period).
    public func publish() {
        generation += 1
        publisher.publish(ConfigSnapshot(generation: generation, ports: specs(), macTable: table, runtime: portRuntime))
    }

    func committed() throws {
        try onChange?(config)
    }

    /// Saves `next`, the configuration a change is about to make, before the change touches anything
    /// (write-ahead): a change that cannot be saved is refused with nothing changed, and a daemon killed
    /// while applying it comes back with it (restore adopts or recreates what was half made).
    func persist(_ next: SwitchConfig) throws {
        try onChange?(next)
    }

    // MARK: - profiles

    /// Parses and merges profile documents; IDs must be unique across documents.
    public static func merge(_ sources: [ProfileSource]) throws -> ProfileSet {
        var none: [String: ProfileReadCache] = [:]
        return try merge(sources, caches: &none)
    }

    /// The same, reusing the reading of unchanged profiles (`ProfileLoader.load(…cache:)`); `caches`
    /// (by path) is replaced by the caches of these documents only when every one of them loads.
    static func merge(_ sources: [ProfileSource], caches: inout [String: ProfileReadCache]) throws -> ProfileSet {
        var merger = ProfileMerger()   // IDs and InstanceIDs unique across documents (shared with the topology loader)
        var next: [String: ProfileReadCache] = [:]
        for s in sources {
            let set: ProfileSet
            let bytes = Array(s.xml.utf8)
            do {
                var cache = caches[s.path]
                set = try ProfileLoader.load(data: bytes, fileName: s.path, cache: &cache)
                next[s.path] = cache
            } catch let e as ProfileLoadError {
                let errors = e.errors
                let more = errors.count > 1 ? " (and \(errors.count - 1) more errors)" : ""
                throw DaemonError("profile file \(s.path) refused: \(errors.first?.description ?? e.description)\(more)")
            }
            let clashes = merger.add(file: s.path, data: bytes, set)
            if let first = clashes.first {
                let more = clashes.count > 1 ? " (and \(clashes.count - 1) more errors)" : ""
                throw DaemonError("profile file \(s.path) refused: \(first.diagnostic.description)\(more)")
            }
        }
        caches = next
        return merger.merged
    }

    /// Replaces the profile documents (load, reload, start-up). Refused if a bound profile would disappear
    /// or if the new reservations would not fit the switch's bandwidth capacity.
    public func setProfileSources(_ sources: [ProfileSource]) throws -> ProfileSet {
        var caches = profileReadCaches
        let next = try SwitchModel.merge(sources, caches: &caches)
        let lookup = ProfileLookup(next)
        for i in ports.keys.sorted() where lookup.profile(id: ports[i]!.config.profile) == nil {
            let p = ports[i]!.config
            throw DaemonError("refused: port \(p.name) is bound to profile \(p.profile), which the new profile set does not define")
        }
        for i in ports.keys.sorted() {
            let p = ports[i]!.config
            try checkFit(port: p, profile: lookup.profile(id: p.profile)!, change: "the new profile set")
        }
        try admit(bindings: bindings(), profiles: next, capacity: config.settings.bandwidthCapacity, change: "the new profile set")
        var saved = config
        saved.profiles = sources
        try persist(saved)
        // Ports whose VLANs or learn limit change: their learned entries belong to the old VLANs and would count
        // against the new limit (session 8 review: a MaxNumMACAddress 1 port dropped its VM's frames as mac-limit
        // until aging after a reload moved it to another VLAN). Flushed after the new snapshot is published.
        let before = ProfileLookup(profiles)
        let stale = ports.keys.sorted().filter { i in
            let id = ports[i]!.config.profile
            return !SwitchModel.sameLearning(before.profile(id: id), lookup.profile(id: id))
        }
        config.profiles = sources
        profiles = next
        profileReadCaches = caches
        publish()
        for i in stale { table.flush(port: i) }
        return next
    }

    /// Whether two profiles put a port's learned entries in the same place under the same limit (VLAN mode, VIDs,
    /// trunk list, learn limit).
    static func sameLearning(_ a: PortProfile?, _ b: PortProfile?) -> Bool {
        guard let a, let b else { return a == nil && b == nil }
        return a.desiredVLANEndpointMode == b.desiredVLANEndpointMode && a.portVID == b.portVID
            && a.defaultPortVID == b.defaultPortVID && a.trunkedVLANs == b.trunkedVLANs
            && a.maxNumMACAddress == b.maxNumMACAddress
    }

    /// `profile load FILE`: adds the document (or replaces the one loaded from the same path).
    public func loadProfileFile(path: String, xml: String) throws -> ProfileSet {
        var sources = config.profiles
        if let k = sources.firstIndex(where: { $0.path == path }) { sources[k].xml = xml } else { sources.append(ProfileSource(path: path, xml: xml)) }
        return try setProfileSources(sources)
    }

    /// `profile reload`: re-reads every document from its path.
    public func reloadProfiles(read: (String) throws -> String) throws -> ProfileSet {
        var sources = config.profiles
        for k in sources.indices { sources[k].xml = try read(sources[k].path) }
        return try setProfileSources(sources)
    }

    /// `profile validate FILE`: what loading it would give; changes nothing.
    public func validateProfileFile(path: String, xml: String) throws -> ProfileSet {
        try validateProfileFileWithChanges(path: path, xml: xml).set
    }

    /// Validates a profile file against the loaded set (as `profile load` would apply it) and says, per
    /// port bound to one of its profiles, what would change (the dry run of `vswitchctl profile validate`).
    public func validateProfileFileWithChanges(path: String, xml: String) throws -> (set: ProfileSet, changes: [(port: String, changes: [String])]) {
        var sources = config.profiles.filter { $0.path != path }
        sources.append(ProfileSource(path: path, xml: xml))
        let merged = try SwitchModel.merge(sources)
        let set = try SwitchModel.merge([ProfileSource(path: path, xml: xml)])
        var changes: [(port: String, changes: [String])] = []
        for i in ports.keys.sorted() {
            let r = ports[i]!
            guard let next = set.profile(id: r.config.profile) else { continue }
            let mtu = r.config.mtu, limit = config.settings.maxMACsPerPort
            let after = PolicyCompiler.compilePort(next, switchMACLimit: limit, mtu: mtu)
            if let now = profiles.profile(id: r.config.profile) {
                let before = PolicyCompiler.compilePort(now, switchMACLimit: limit, mtu: mtu)
                changes.append((r.config.name, PolicyDiff.describe(old: before, new: after)))
            } else {
                changes.append((r.config.name, ["profile \(r.config.profile) becomes defined"]))
            }
        }
        for i in ports.keys.sorted() where merged.profile(id: ports[i]!.config.profile) == nil {
            changes.append((ports[i]!.config.name, ["would lose its profile \(ports[i]!.config.profile): the load would be refused"]))
        }
        for i in ports.keys.sorted() {
            let r = ports[i]!
            guard let next = merged.profile(id: r.config.profile) else { continue }
            let problems = ProfileFit.burstProblems(next, mtu: r.config.mtu)
            if !problems.isEmpty { changes.append((r.config.name, problems.map { "\($0): the load would be refused" })) }
        }
        return (set, changes)
    }

    // MARK: - ports

    /// Validates a new port's configuration against the model (not the system).
    func validateNew(_ p: PortConfig) throws {
        // Every port's name (a TAP's is further an interface name): it reaches logs, metrics labels and JSON.
        let nameBytes = Array(p.name.utf8)
        guard (1...64).contains(nameBytes.count),
              nameBytes.allSatisfy({ $0 > 0x20 && $0 < 0x7F && $0 != UInt8(ascii: "/") && $0 != UInt8(ascii: "\"") && $0 != UInt8(ascii: "\\") }) else {
            throw DaemonError("port name \(p.name.debugDescription) is not valid: 1–64 printable ASCII characters, no space, '/', '\"' or '\\'")
        }
        if byName[p.name] != nil { throw DaemonError("port \(p.name) already exists") }
        guard ["tap", "netdev", "pcap"].contains(p.type) else {
            throw DaemonError("port \(p.name): unsupported port type \(p.type) (supported: tap, netdev, pcap)")
        }
        if p.type == "netdev" && (p.interface == nil || p.namespace != nil) {
            throw DaemonError("port \(p.name): a netdev port needs --interface IFNAME (an existing interface) and no namespace")
        }
        if p.type == "netdev", let ifname = p.interface,
           ports.values.contains(where: { $0.config.type == "netdev" && $0.config.interface == ifname }) {
            throw DaemonError("port \(p.name): interface \(ifname) is already attached as a netdev port")
        }
        if p.type == "pcap" && (p.file == nil || p.namespace != nil) {
            throw DaemonError("port \(p.name): a pcap port needs --file FILE and no namespace")
        }
        if let r = p.rate, r < 0 { throw DaemonError("port \(p.name): rate \(r) must be ≥ 0 frames/s") }
        _ = try profile(p.profile)
        guard PortMTU.range.contains(p.mtu) else { throw DaemonError("port \(p.name): MTU \(p.mtu) out of range \(PortMTU.minimum)–\(PortMTU.maximum)") }
        if let m = p.mac {
            guard let mac = MACAddress(m) else { throw DaemonError("port \(p.name): invalid MAC address \(m)") }
            if mac.isMulticast || mac.isZero { throw DaemonError("port \(p.name): MAC \(m) is not a unicast address") }
        }
        if let ns = p.namespace, ports.values.contains(where: { $0.config.namespace == ns }) {
            throw DaemonError("port \(p.name): namespace \(ns) is already used by another port")
        }
        if p.namespace == nil, !p.addresses.isEmpty {
            throw DaemonError("port \(p.name): addresses need a virtual system (--namespace)")
        }
        if ports.count >= SwitchModel.maxPorts { throw DaemonError("the switch has the maximum of \(SwitchModel.maxPorts) ports") }
    }

    func freeIndex() -> Int {
        var i = 0
        while ports[i] != nil { i += 1 }
        return i
    }

    /// `add-port`: creates the port (and its virtual system), publishes, persists. Returns its index.
    @discardableResult
    public func addPort(_ new: PortConfig, restore: Bool = false) throws -> Int {
        var p = new
        try validateNew(p)
        if !restore {   // a restored port was admitted (and its profile fitted) when it was added
            try checkFit(port: p, profile: try profile(p.profile), change: "adding port \(p.name)")
            try admit(bindings: bindings() + [(p.name, p.profile)], profiles: profiles,
                      capacity: config.settings.bandwidthCapacity, change: "adding port \(p.name)")
        }
        if p.index >= 0 {
            if ports[p.index] != nil { throw DaemonError("port \(p.name): index \(p.index) is taken") }
            if p.index >= SwitchModel.maxPorts { throw DaemonError("port \(p.name): index \(p.index) out of range") }
        } else {
            p.index = freeIndex()
        }
        if !restore { try system.check(p) }
        var saved = config
        saved.ports.append(p)
        saved.ports.sort { $0.index < $1.index }
        try persist(saved)   // before the TAP and namespace exist: a crash from here on restores the port
        let attachment: PortAttachment
        do {
            attachment = try system.attach(p, persistent: persistentPorts && !p.adopt, restore: restore)
        } catch {
            // Nothing was made (attach cleans up after itself): the saved state goes back to what it was.
            do { try persist(config) } catch {
                log.error("port \(p.name) was not created, but the state file could not be set back: a restart will find it detached",
                          metadata: ["error": "\(error)"])
            }
            throw error
        }
        let link = system.linkStatus(p, attachment)
        ports[p.index] = PortState(config: p, attachment: attachment, link: link, macBinding: p.mac.flatMap(MACAddress.init))
        byName[p.name] = p.index
        config.ports = saved.ports
        publish()
        log.info("port added", metadata: ["port": "\(p.name)", "index": "\(p.index)", "profile": "\(p.profile)",
                                          "link": "\(link.rawValue)"])
        return p.index
    }

    /// Restores a port whose device could not be attached: kept in the configuration, detached.
    func addDetached(_ p: PortConfig) {
        ports[p.index] = PortState(config: p, attachment: nil, link: .gone, macBinding: p.mac.flatMap(MACAddress.init))
        byName[p.name] = p.index
        config.ports.append(p)
        config.ports.sort { $0.index < $1.index }
    }

    /// `del-port`: removes the port, flushes its MAC entries, resets its counters, frees the index.
    public func deletePort(_ name: String, destroy: Bool = true) throws {
        let i = try resolve(name)
        let r = ports[i]!
        let destroying = destroy && !r.config.adopt && r.attachment != nil
        var saved = config
        saved.ports.removeAll { $0.index == i }
        saved.fdb.removeAll { $0.port == name }
        // Saved first, with the devices about to be destroyed named: a daemon killed before they are gone
        // removes them at its next start (`removing`), instead of leaving them to block the name.
        if destroying { saved.removing = [r.config] }
        try persist(saved)
        ports.removeValue(forKey: i)
        byName[name] = nil
        config.ports = saved.ports
        config.fdb = saved.fdb
        // Its captures end (the index may be given to the next port: it must not be tapped for them).
        captureTaps[i] = nil
        captureSnaps[i] = nil
        onPortRemoved?(i)
        publish()                                   // no thread receives from or floods to it any more
        table.flush(port: i, includingStatic: true)
        publish()                                   // no thread still holds a lookup result naming it
        for b in counterBlocks() { b.reset(port: i) }
        portRuntime.reset(port: i)
        if let a = r.attachment { system.detach(r.config, a, destroy: destroy && !r.config.adopt) }
        log.info("port deleted", metadata: ["port": "\(name)", "index": "\(i)"])
        if destroying {
            // Gone: the state no longer needs to name them (if this save fails, the next one drops them).
            do { try persist(config) } catch { log.warning("could not save the state after deleting \(name)", metadata: ["error": "\(error)"]) }
        }
    }

    /// `set-port PORT profile=ID`: rebinds; the port's dynamic MAC entries are flushed (its VLANs may change).
    public func setPortProfile(_ name: String, profile id: String) throws {
        let i = try resolve(name)
        let p = try profile(id)
        try checkFit(port: ports[i]!.config, profile: p, change: "binding \(name) to \(p.networkPortProfileID)")
        try admit(bindings: bindings().map { $0.port == name ? ($0.port, p.networkPortProfileID) : $0 }, profiles: profiles,
                  capacity: config.settings.bandwidthCapacity, change: "binding \(name) to \(p.networkPortProfileID)")
        var saved = config
        if let k = saved.ports.firstIndex(where: { $0.index == i }) { saved.ports[k].profile = p.networkPortProfileID }
        try persist(saved)
        ports[i]!.config.profile = p.networkPortProfileID
        config.ports = saved.ports
        publish()
        table.flush(port: i)
        log.info("port rebound", metadata: ["port": "\(name)", "profile": "\(id)"])
    }

    /// A link event (or the periodic check) found the port's link in `status`.
    /// Down or detached: no frames to or from it, its dynamic MAC entries flushed. Returns true if it changed.
    @discardableResult
    public func setLink(_ name: String, _ status: LinkStatus) -> Bool {
        guard let i = byName[name], ports[i]!.link != status else { return false }
        if ports[i]!.link == .gone && ports[i]!.attachment != nil && status != .gone {
            return false   // a detached device does not come back on the same fd
        }
        let old = ports[i]!.link
        ports[i]!.link = status
        publish()
        if status != .up { table.flush(port: i) }
        let meta: Logger.Metadata = ["port": "\(name)", "from": "\(old.rawValue)", "to": "\(status.rawValue)"]
        if status == .up { log.info("port link up: forwarding resumes", metadata: meta) }
        else { log.warning("port link \(status.rawValue): no forwarding to or from it, MAC entries flushed", metadata: meta) }
        return true
    }

    /// Rechecks the links of `names` (all ports when nil) with the system.
    public func recheckLinks(_ names: [String]? = nil) {
        for name in names ?? portNames {
            guard let i = byName[name], let a = ports[i]!.attachment else { continue }
            setLink(name, system.linkStatus(ports[i]!.config, a))
        }
    }

    /// Releases every port's device (shutdown): `destroy` removes what the switch created.
    public func releaseAll(destroy: Bool) {
        for i in ports.keys.sorted().reversed() {
            let r = ports[i]!
            if let a = r.attachment { system.detach(r.config, a, destroy: destroy && !r.config.adopt) }
            ports[i]!.attachment = nil
        }
    }

    // MARK: - profile fit

    /// Refuses `change` if `profile` does not fit `port`: a burst size below one full frame at the port's MTU
    /// (`ProfileFit`, the check the topology loader makes too).
    func checkFit(port: PortConfig, profile: PortProfile, change: String) throws {
        if let problem = ProfileFit.burstProblems(profile, mtu: port.mtu).first {
            throw DaemonError("refused: \(change): port \(port.name): \(problem); nothing changed")
        }
    }

    // MARK: - bandwidth admission (issue 3)

    /// (port, profile ID) of every port.
    func bindings() -> [(port: String, profile: String)] {
        ports.keys.sorted().map { (ports[$0]!.config.name, ports[$0]!.config.profile) }
    }

    /// Reserved bandwidth per direction (bit/s) of the given bindings, each port counting its profile's
    /// Reservation (transmit: from the virtual system) and ReceiveBandwidthReservation (receive).
    public static func reservations(_ bindings: [(port: String, profile: String)], _ set: ProfileSet)
        -> (transmit: UInt64, receive: UInt64, perPort: [(port: String, transmit: UInt64, receive: UInt64)]) {
        var tx: UInt64 = 0, rx: UInt64 = 0
        var per: [(port: String, transmit: UInt64, receive: UInt64)] = []
        let lookup = ProfileLookup(set)
        for b in bindings {
            guard let p = lookup.profile(id: b.profile) else { continue }
            let t = p.reservation ?? 0, r = p.receiveBandwidthReservation ?? 0
            tx = tx.addingReportingOverflow(t).overflow ? .max : tx &+ t
            rx = rx.addingReportingOverflow(r).overflow ? .max : rx &+ r
            if t > 0 || r > 0 { per.append((b.port, t, r)) }
        }
        return (tx, rx, per)
    }

    public var reserved: (transmit: UInt64, receive: UInt64) {
        let r = SwitchModel.reservations(bindings(), profiles)
        return (r.transmit, r.receive)
    }

    /// Refuses `change` if, with `bindings` and `set`, either direction's reservations exceed `capacity`.
    func admit(bindings: [(port: String, profile: String)], profiles set: ProfileSet, capacity: UInt64?, change: String) throws {
        guard let capacity else { return }
        let r = SwitchModel.reservations(bindings, set)
        for (direction, total, value) in [("transmit (Reservation)", r.transmit, { (x: (port: String, transmit: UInt64, receive: UInt64)) in x.transmit }),
                                          ("receive (ReceiveBandwidthReservation)", r.receive, { (x: (port: String, transmit: UInt64, receive: UInt64)) in x.receive })]
        where total > capacity {
            let ports = r.perPort.filter { value($0) > 0 }.map { "\($0.port) \(SwitchModel.bits(value($0)))" }.joined(separator: ", ")
            throw DaemonError("refused: \(change) would reserve \(SwitchModel.bits(total)) \(direction) in all (\(ports)), "
                              + "more than the switch's bandwidth-capacity of \(SwitchModel.bits(capacity)); nothing changed")
        }
    }

    /// "2.5 Gbit/s" style.
    public static func bits(_ v: UInt64) -> String {
        for (unit, scale) in [("Tbit/s", 1e12), ("Gbit/s", 1e9), ("Mbit/s", 1e6), ("kbit/s", 1e3)] where Double(v) >= scale {
            let x = Double(v) / scale
            return (x == x.rounded() ? String(Int(x)) : String(format: "%.3g", x)) + " " + unit
        }
        return "\(v) bit/s"
    }

    // MARK: - settings

    public func setSwitch(macAgingTime: Int?, macTableSize: Int?, bandwidthCapacity: UInt64?? = nil) throws {
        if let a = macAgingTime, !SettingsConfig.macAgingTimeRange.contains(a) {
            throw DaemonError("mac-aging-time \(a) out of range \(SettingsConfig.macAgingTimeRange.lowerBound)–\(SettingsConfig.macAgingTimeRange.upperBound) seconds")
        }
        if let s = macTableSize, !SettingsConfig.macTableSizeRange.contains(s) {
            throw DaemonError("mac-table-size \(s) out of range \(SettingsConfig.macTableSizeRange.lowerBound)–\(SettingsConfig.macTableSizeRange.upperBound)")
        }
        if let s = macTableSize, s < config.fdb.count {
            // compacted(limit:) keeps at most `s` entries: configured static entries beyond it would vanish from the
            // table while the configuration still lists them (session 8 review).
            throw DaemonError("mac-table-size \(s) is smaller than the \(config.fdb.count) configured static entries (fdb del some first)")
        }
        if macAgingTime == nil && macTableSize == nil && bandwidthCapacity == nil {
            throw DaemonError("set switch: nothing to set (mac-aging-time=N, mac-table-size=N, bandwidth-capacity=BITS|none)")
        }
        var saved = config
        if let c = bandwidthCapacity {
            try admit(bindings: bindings(), profiles: profiles, capacity: c,
                      change: "setting bandwidth-capacity to \(c.map { SwitchModel.bits($0) } ?? "none")")
            saved.settings.bandwidthCapacity = c
        }
        if let a = macAgingTime { saved.settings.macAgingTime = a }
        if let s = macTableSize { saved.settings.macTableSize = s }
        try persist(saved)
        config.settings = saved.settings
        if let s = macTableSize, s != table.limit {
            replaceTable(table.compacted(limit: s))
            applyStaticEntries()   // every configured static entry is in the new table (they fit: checked above)
        }
    }

    /// Publishes `fresh` in place of the current table; the publisher frees the old one after the grace period.
    func replaceTable(_ fresh: MACTable) {
        table = fresh
        publish()
    }

    /// Housekeeping: ages entries, compacts the table when dead keys pile up.
    public func housekeeping(now: UInt32) {
        let aged = table.age(now: now, agingTime: UInt32(config.settings.macAgingTime))
        if aged > 0 { log.debug("aged out \(aged) MAC entries") }
        if table.needsCompaction {
            replaceTable(table.compacted())
            log.debug("MAC table compacted", metadata: ["entries": "\(table.liveCount)"])
        }
    }

    // MARK: - FDB

    static func parseMAC(_ s: String) throws -> MACAddress {
        guard let m = MACAddress(s) else { throw DaemonError("invalid MAC address \(s)") }
        return m
    }

    static func checkVLAN(_ v: Int) throws {
        guard (1...4094).contains(v) else { throw DaemonError("VLAN \(v) out of range 1–4094") }
    }

    public func fdbAdd(port name: String, vlan: Int, mac text: String) throws {
        let i = try resolve(name)
        try SwitchModel.checkVLAN(vlan)
        let mac = try SwitchModel.parseMAC(text)
        if mac.isMulticast || mac.isZero { throw DaemonError("static entries need a unicast MAC address (got \(text))") }
        guard table.addStatic(vlan: UInt16(vlan), mac: mac.rawValue, port: i) else {
            throw DaemonError("the MAC table has no room for \(mac) in VLAN \(vlan)")
        }
        var saved = config
        let previous = saved.fdb.first { $0.vlan == vlan && MACAddress($0.mac) == mac }
        saved.fdb.removeAll { $0.vlan == vlan && MACAddress($0.mac) == mac }
        saved.fdb.append(StaticFDBEntry(port: name, vlan: vlan, mac: mac.description))
        do { try persist(saved) } catch {
            // Not saved: the table goes back to what it held (the static entry this one replaced, or none).
            _ = table.remove(vlan: UInt16(vlan), mac: mac.rawValue)
            if let previous, let j = byName[previous.port] { table.addStatic(vlan: UInt16(vlan), mac: mac.rawValue, port: j) }
            throw error
        }
        config.fdb = saved.fdb
    }

    public func fdbDelete(vlan: Int, mac text: String) throws {
        try SwitchModel.checkVLAN(vlan)
        let mac = try SwitchModel.parseMAC(text)
        if config.fdb.contains(where: { $0.vlan == vlan && MACAddress($0.mac) == mac }) {
            // A configured static entry: its removal is saved before the table changes.
            var saved = config
            saved.fdb.removeAll { $0.vlan == vlan && MACAddress($0.mac) == mac }
            try persist(saved)
            config.fdb = saved.fdb
        }
        guard table.remove(vlan: UInt16(vlan), mac: mac.rawValue) else {
            throw DaemonError("no MAC table entry for \(mac) in VLAN \(vlan)")
        }
    }

    /// Flushes dynamic entries: all, of one port, or of one VLAN. Returns how many were removed.
    public func fdbFlush(port: String?, vlan: Int?) throws -> Int {
        if port != nil && vlan != nil { throw DaemonError("fdb flush: give --port or --vlan, not both") }
        if let port { return table.flush(port: try resolve(port)) }
        if let vlan { try SwitchModel.checkVLAN(vlan); return table.flush(vlan: UInt16(vlan)) }
        return table.flushAll()
    }

    /// Re-adds the configured static entries (restore, or after a table replacement lost them).
    func applyStaticEntries() {
        for e in config.fdb {
            guard let i = byName[e.port], let mac = MACAddress(e.mac) else { continue }
            table.addStatic(vlan: UInt16(e.vlan), mac: mac.rawValue, port: i)
        }
    }

    // MARK: - restore / initial configuration

    /// Applies a whole configuration to an empty model (topology start-up or state restore).
    /// Profiles and ports are applied in order; with `restore`, ports are adopted when their
    /// devices still exist and a port that cannot be attached is kept, detached.
    public func apply(_ c: SwitchConfig, restore: Bool) throws {
        let save = onChange
        onChange = nil
        defer { onChange = save }
        config.name = c.name
        config.settings = c.settings
        if table.limit != c.settings.macTableSize { replaceTable(MACTable(limit: c.settings.macTableSize)) }
        _ = try setProfileSources(c.profiles)
        for p in c.ports.sorted(by: { $0.index < $1.index }) {
            if restore {
                do { try addPort(p, restore: true) } catch {
                    log.error("port \(p.name) could not be restored; kept detached: \(error)")
                    addDetached(p)
                }
            } else {
                try addPort(p)
            }
        }
        for e in c.fdb { try fdbAdd(port: e.port, vlan: e.vlan, mac: e.mac) }
        publish()
        onChange = save
        try committed()
    }
}

/// ID → profile of one ProfileSet, answering as `ProfileSet.profile(id:)` does (the first profile whose ID is
/// equal, else the first whose normalized ID is equal) from two dictionaries built once: `profile(id:)` scans
/// the list, so checking every port of a 1,000-port switch against a 1,000-profile set cost ~5 ms per reload.
struct ProfileLookup {
    let set: ProfileSet
    private var exact: [String: Int] = [:]
    private var normalized: [String: Int] = [:]

    init(_ set: ProfileSet) {
        self.set = set
        exact.reserveCapacity(set.profiles.count)
        normalized.reserveCapacity(set.profiles.count)
        for (k, p) in set.profiles.enumerated() {
            if exact[p.networkPortProfileID] == nil { exact[p.networkPortProfileID] = k }
            let n = ProfileSet.normalizedID(p.networkPortProfileID)
            if normalized[n] == nil { normalized[n] = k }
        }
    }

    func profile(id: String) -> PortProfile? {
        if let k = exact[id] { return set.profiles[k] }
        if let k = normalized[ProfileSet.normalizedID(id)] { return set.profiles[k] }
        return nil
    }
}
