// ControlCommands: one control request → one change or query of the SwitchModel → one response
// (docs/control-protocol.md). Every error is one line; a refused request changes nothing.
//
// Threading: control thread only.

import Foundation
import VSwitchCapture
import VSwitchControl
import VSwitchCore
import VSwitchIO
import VSwitchPacket
import VSwitchPolicy
import VSwitchProfiles

public final class ControlCommands {
    let model: SwitchModel
    /// Reads a profile file (the daemon reads paths itself, so `profile reload` can re-read them).
    var readFile: (String) throws -> String = { path in try ControlCommands.readProfileFile(path) }

    /// Largest profile file the daemon reads (bytes): far above any real profile set, below a mistaken multi-GB file.
    static let maxProfileFileBytes = 256 << 20

    /// A profile file's text. Opens and reads the file itself, so every error carries its own errno (reading
    /// `errno` after FileManager returned nil reported whatever the last failed call left, e.g. "Resource temporarily
    /// unavailable" for /dev/null). Only a regular file is read: a device, a directory, a FIFO or a socket is
    /// refused as such (opened non-blocking, so a FIFO without a writer does not stall the control thread).
    static func readProfileFile(_ path: String) throws -> String {
        func failure(_ e: Int32) -> DaemonError { DaemonError("cannot read profile file \(path): \(String(cString: strerror(e)))") }
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY)
        guard fd >= 0 else { throw failure(errno) }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw failure(errno) }
        let type = st.st_mode & S_IFMT
        guard type == S_IFREG else {
            let what: String
            switch type {
            case S_IFDIR: what = "a directory"
            case S_IFCHR: what = "a character device"
            case S_IFBLK: what = "a block device"
            case S_IFIFO: what = "a FIFO"
            case S_IFSOCK: what = "a socket"
            default: what = "not a file"
            }
            throw DaemonError("cannot read profile file: \(path) is not a regular file (\(what))")
        }
        guard Int(st.st_size) <= maxProfileFileBytes else {
            throw DaemonError("cannot read profile file \(path): \(st.st_size) bytes, more than the \(maxProfileFileBytes >> 20) MiB a profile file may have")
        }
        var data = Data()
        var buf = [UInt8](repeating: 0, count: 64 << 10)
        while true {
            let n = buf.withUnsafeMutableBytes { read(fd, $0.baseAddress!, $0.count) }
            if n < 0 { if errno == EINTR { continue }; throw failure(errno) }
            if n == 0 { break }
            data.append(contentsOf: buf[0..<n])
            if data.count > maxProfileFileBytes {
                throw DaemonError("cannot read profile file \(path): more than the \(maxProfileFileBytes >> 20) MiB a profile file may have")
            }
        }
        guard let s = String(data: data, encoding: .utf8) else { throw DaemonError("profile file \(path) is not UTF-8") }
        return s
    }

    /// The `path` argument of profile-load / profile-validate: absolute (docs/control-protocol.md). The daemon's
    /// working directory is not the operator's; vswitchctl sends an absolute path.
    static func absolutePath(_ r: ControlRequest) throws -> String {
        let path = try r.string("path")
        guard path.hasPrefix("/") else {
            throw DaemonError("\(r.command): \"\(path)\" must be an absolute path (the daemon does not share your working directory; vswitchctl makes paths absolute)")
        }
        return path
    }

    public init(model: SwitchModel) { self.model = model }

    /// Capture (ControlCommands+Capture.swift): the writer, the request's passed descriptors, and the
    /// connection hand-over the server performs after the response.
    public var capture: CaptureWriter?
    public var takeDescriptors: () -> [Int32] = { [] }
    public var takeover: ((Int32) -> Void)?

    public func handle(_ req: ControlRequest) -> ControlResponse {
        do {
            return .success(try dispatch(req), id: req.id)
        } catch let e as ControlError {
            return .failure(e.description, id: req.id)
        } catch let e as DaemonError {
            return .failure(e.description, id: req.id)
        } catch {
            return .failure("\(error)".replacingOccurrences(of: "\n", with: "; "), id: req.id)
        }
    }

    /// Handles one raw request line.
    public func handle(line: Data) -> ControlResponse {
        do {
            return handle(try ControlRequest.parse(line))
        } catch {
            return .failure(error.description)
        }
    }

    func dispatch(_ r: ControlRequest) throws -> JSON {
        switch r.command {
        case "ping":
            try r.allowOnly([])
            return ["pong": true]
        case "show":
            try r.allowOnly([])
            return show()
        case "show-cim":
            try r.allowOnly([])
            return ["xml": .string(cimView())]
        case "add-port":
            try r.allowOnly(["name", "type", "profile", "mac", "mtu", "namespace", "interface", "addresses",
                             "file", "loop", "rate", "output", "offload"])
            var p = PortConfig(name: try r.string("name"), type: try r.optionalString("type") ?? "tap",
                               profile: try r.string("profile"), mac: try r.optionalString("mac")?.lowercased(),
                               mtu: try r.optionalInt("mtu") ?? 1500, namespace: try r.optionalString("namespace"),
                               interface: try r.optionalString("interface"), addresses: try r.stringArray("addresses"))
            p.file = try r.optionalString("file")
            if let v = r.args["loop"], !v.isNull {
                guard case .bool(let b) = v else { throw DaemonError("add-port: argument \"loop\" must be true or false") }
                p.loop = b
            }
            if let v = r.args["offload"], !v.isNull {
                guard case .bool(let b) = v else { throw DaemonError("add-port: argument \"offload\" must be true or false") }
                guard p.type == "tap" else { throw DaemonError("add-port: --offload is for TAP ports") }
                p.offload = b
            }
            p.rate = try r.optionalInt("rate")
            p.output = try r.optionalString("output")
            if p.type == "tap" && p.interface != nil && p.namespace == nil { throw DaemonError("add-port: --interface needs --namespace") }
            if p.type != "pcap" && (p.file != nil || p.loop != nil || p.rate != nil || p.output != nil) {
                throw DaemonError("add-port: --file, --loop, --rate and --output are for --type pcap")
            }
            if let m = p.mac, MACAddress(m) == nil { throw DaemonError("port \(p.name): invalid MAC address \(m)") }
            let i = try model.addPort(p)
            return ["name": .string(p.name), "index": .int(i)]
        case "del-port":
            try r.allowOnly(["name"])
            try model.deletePort(try r.string("name"))
            return ["deleted": .string(try r.string("name"))]
        case "set-port":
            try r.allowOnly(["name", "profile"])
            try model.setPortProfile(try r.string("name"), profile: try r.string("profile"))
            return ["name": .string(try r.string("name")), "profile": .string(try r.string("profile"))]
        case "profile-load":
            try r.allowOnly(["path"])
            let path = try ControlCommands.absolutePath(r)
            let set = try model.loadProfileFile(path: path, xml: try readFile(path))
            return ["loaded": .array(set.ids.map { .string($0) }), "warnings": warnings(set)]
        case "profile-reload":
            try r.allowOnly([])
            let set = try model.reloadProfiles(read: readFile)
            return ["loaded": .array(set.ids.map { .string($0) }), "warnings": warnings(set)]
        case "profile-validate":
            try r.allowOnly(["path"])
            let path = try ControlCommands.absolutePath(r)
            let (set, changes) = try model.validateProfileFileWithChanges(path: path, xml: try readFile(path))
            let perPort: [JSON] = changes.map { c in
                .object(["port": .string(c.port), "changes": .array(c.changes.map { .string($0) })])
            }
            return ["valid": true, "profiles": .array(set.ids.map { .string($0) }), "warnings": warnings(set),
                    "changes": .array(perPort)]
        case "profile-export":
            try r.allowOnly([])
            return ["xml": .string(ProfileWriter.write(model.profiles.profiles))]
        case "profile-show":
            try r.allowOnly([])
            return profileShow()
        case "fdb-show":
            try r.allowOnly(["port", "vlan"])
            return try fdbShow(port: try r.optionalString("port"), vlan: try r.optionalInt("vlan"))
        case "fdb-flush":
            try r.allowOnly(["port", "vlan"])
            let n = try model.fdbFlush(port: try r.optionalString("port"), vlan: try r.optionalInt("vlan"))
            return ["flushed": .int(n)]
        case "fdb-add":
            try r.allowOnly(["port", "vlan", "mac"])
            try model.fdbAdd(port: try r.string("port"), vlan: try r.int("vlan"), mac: try r.string("mac"))
            return ["added": true]
        case "fdb-del":
            try r.allowOnly(["vlan", "mac"])
            try model.fdbDelete(vlan: try r.int("vlan"), mac: try r.string("mac"))
            return ["deleted": true]
        case "fdb-stats":
            try r.allowOnly([])
            return fdbStats()
        case "port-stats":
            try r.allowOnly(["port"])
            return try portStats(port: try r.optionalString("port"))
        case "set-switch":
            try r.allowOnly(["mac-aging-time", "mac-table-size", "bandwidth-capacity"])
            var capacity: UInt64?? = nil
            if let v = r.args["bandwidth-capacity"] {
                // A number of bit/s (> 0), or null / "none" to turn the admission check off.
                switch v {
                case .null: capacity = .some(nil)
                case .string(let s) where s == "none": capacity = .some(nil)
                case .int(let n) where n > 0: capacity = .some(UInt64(n))
                default: throw DaemonError("set-switch: bandwidth-capacity must be a positive number of bit/s or \"none\"")
                }
            }
            try model.setSwitch(macAgingTime: try r.optionalInt("mac-aging-time"), macTableSize: try r.optionalInt("mac-table-size"),
                                bandwidthCapacity: capacity)
            return settingsJSON()
        case "capture":
            return try startCapture(r)
        case "metrics":
            try r.allowOnly([])
            return ["text": .string(metricsText())]
        default:
            throw DaemonError("unknown command \"\(r.command)\" (known: \(ControlProtocol.commands.joined(separator: ", ")))")
        }
    }

    func warnings(_ set: ProfileSet) -> JSON {
        .array(set.warnings.filter { !$0.isError }.map { .string($0.description) })
    }

    // MARK: - results

    func settingsJSON() -> JSON {
        let s = model.config.settings
        return ["mac-aging-time": .int(s.macAgingTime), "mac-table-size": .int(s.macTableSize),
                "forwarding-threads": .int(s.forwardingThreads),
                "bandwidth-capacity": s.bandwidthCapacity.map { .int(Int(clamping: $0)) } ?? .null,
                "max-macs-per-port": s.maxMACsPerPort.map { .int(Int($0)) } ?? .null]
    }

    func portJSON(_ p: (index: Int, config: PortConfig, link: LinkStatus, handle: Int32?)) -> JSON {
        let c = p.config
        var o: [String: JSON] = ["index": .int(p.index), "name": .string(c.name), "type": .string(c.type),
                                 "profile": .string(c.profile), "mtu": .int(c.mtu), "mac": .optional(c.mac),
                                 "link": .string(p.link.rawValue), "adopted": .bool(c.adopt)]
        if let prof = model.profiles.profile(id: c.profile) {
            o["reservation"] = .int(Int(clamping: prof.reservation ?? 0))
            o["receive-reservation"] = .int(Int(clamping: prof.receiveBandwidthReservation ?? 0))
        }
        if c.type == "tap" || c.type == "netdev" {
            o["offload"] = .bool(model.offloadActive(p.index))
            o["uso"] = .bool(model.usoActive(p.index))
        }
        if c.type == "netdev" { o["interface"] = .optional(c.interface) }
        if c.type == "pcap" {
            o["file"] = .optional(c.file); o["loop"] = .bool(c.loop ?? false); o["rate"] = .int(c.rate ?? 0)
            o["output"] = .optional(c.output)
        }
        if let ns = c.namespace {
            o["namespace"] = .string(ns)
            o["interface"] = .string(c.interface ?? "eth0")
            o["addresses"] = .array(c.addresses.map { .string($0) })
        }
        return .object(o)
    }

    public func show() -> JSON {
        ["switch": ["name": .string(model.config.name), "generation": .int(Int(model.generation)),
                    "protocol": .int(ControlProtocol.version), "settings": settingsJSON(),
                    "mac-table-entries": .int(model.table.liveCount),
                    // The forwarding threads running (settings' forwarding-threads is the setting: 0 = one per core).
                    "forwarding-threads-running": .int(model.publisher.threadCount),
                    "reserved": ["transmit": .int(Int(clamping: model.reserved.transmit)),
                                 "receive": .int(Int(clamping: model.reserved.receive))]],
         "ports": .array(model.sortedPorts.map(portJSON)),
         "profiles": .array(model.profiles.ids.map { .string($0) })]
    }

    /// The Prometheus text (`metrics`, and GET /metrics of `--metrics-listen`).
    public func metricsText() -> String {
        PrometheusText.render(portStats: (try? portStats(port: nil)) ?? ["ports": .array([])], fdbStats: fdbStats())
    }

    /// The DSP1097 view (VSwitchProfiles/CIMView.swift, docs/cim-view.md).
    public func cimView() -> String {
        let st = model.config.settings
        let ports: [CIMView.Port] = model.sortedPorts.compactMap { p in
            guard let profile = model.profiles.profile(id: p.config.profile) else { return nil }
            let link: CIMView.Link = switch p.link { case .up: .up; case .down: .down; case .gone: .detached }
            return CIMView.Port(index: p.index, name: p.config.name, type: p.config.type, mac: p.config.mac,
                                mtu: p.config.mtu, link: link, profile: profile)
        }
        return CIMView.render(switch: .init(name: model.config.name, macTableSize: st.macTableSize,
                                            macAgingTime: st.macAgingTime), ports: ports)
    }

    func profileShow() -> JSON {
        let bound = Dictionary(grouping: model.sortedPorts, by: { ProfileSet.normalizedID($0.config.profile) })
        let source: [String: String] = {
            var d: [String: String] = [:]
            for s in model.config.profiles {
                if let set = try? SwitchModel.merge([s]) { for id in set.ids { d[ProfileSet.normalizedID(id)] = s.path } }
            }
            return d
        }()
        return ["profiles": .array(model.profiles.profiles.map { p in
            let key = ProfileSet.normalizedID(p.networkPortProfileID)
            let mode: String = switch p.mode { case .access: "access"; case .trunk: "trunk"; case .dot1qTunnel: "dot1q-tunnel" }
            return ["id": .string(p.networkPortProfileID), "name": .string(p.elementName), "mode": .string(mode),
                    "pvid": p.effectivePortVID.map { .int(Int($0)) } ?? .null,
                    "trunked-vlans": .array(p.trunkedVLANs.map { .int(Int($0)) }),
                    "file": .optional(source[key]),
                    "ports": .array((bound[key] ?? []).map { .string($0.config.name) })]
        }), "files": .array(model.config.profiles.map { .string($0.path) })]
    }

    /// `{"entries": [{"age", "mac", "port", "static", "vlan"}…]}`, written straight into bytes (`.raw`):
    /// 100,000 entries in tens of milliseconds, where building JSON values took ~1 s (bench/README.md).
    func fdbShow(port: String?, vlan: Int?) throws -> JSON {
        var filterPort: Int?
        if let vlan { try SwitchModel.checkVLAN(vlan) }   // the range of every VLAN argument (fdb add/del/flush)
        if let port {
            guard let i = model.index(of: port) else { throw DaemonError("no such port: \(port)") }
            filterPort = i
        }
        let entries = model.table.entries(now: model.clock())
        // Port names, quoted once; then every entry is written into one preallocated buffer.
        var names = [[UInt8]?](repeating: nil, count: MACTable.maxPorts + 1)
        var longest = 0
        for e in entries where names[min(e.port, MACTable.maxPorts)] == nil {
            var q = ""
            JSON.quote(model.portName(e.port), into: &q)
            names[min(e.port, MACTable.maxPorts)] = Array(q.utf8)
            longest = max(longest, q.utf8.count)
        }
        let perEntry = 96 + longest
        var buf = [UInt8](repeating: 0, count: entries.count * perEntry + 32)
        let used = buf.withUnsafeMutableBufferPointer { p -> Int in
            var n = 0
            @inline(__always) func put(_ s: StaticString) {
                let src = UnsafeBufferPointer(start: s.utf8Start, count: s.utf8CodeUnitCount)
                for c in src { p[n] = c; n += 1 }
            }
            @inline(__always) func putDecimal(_ v: UInt64) {
                if v == 0 { p[n] = 48; n += 1; return }
                var x = v, digits = 0
                while x > 0 { digits += 1; x /= 10 }
                x = v
                for k in stride(from: digits - 1, through: 0, by: -1) { p[n + k] = UInt8(48 + x % 10); x /= 10 }
                n += digits
            }
            let hex: StaticString = "0123456789abcdef"
            let h = hex.utf8Start
            put(#"{"entries":["#)
            var first = true
            for e in entries {
                if let fp = filterPort, e.port != fp { continue }
                if let v = vlan, Int(e.vlan) != v { continue }
                if !first { p[n] = UInt8(ascii: ","); n += 1 }
                first = false
                put(#"{"age":"#)
                putDecimal(UInt64(e.age))
                put(#","mac":""#)
                var shift: UInt64 = 40
                while true {
                    let byte = Int((e.mac >> shift) & 0xFF)
                    p[n] = h[byte >> 4]; p[n + 1] = h[byte & 15]; n += 2
                    if shift == 0 { break }
                    p[n] = UInt8(ascii: ":"); n += 1
                    shift -= 8
                }
                put(#"","port":"#)
                for c in names[min(e.port, MACTable.maxPorts)]! { p[n] = c; n += 1 }
                if e.isStatic { put(#","static":true,"vlan":"#) } else { put(#","static":false,"vlan":"#) }
                putDecimal(UInt64(e.vlan))
                p[n] = UInt8(ascii: "}"); n += 1
            }
            put("]}")
            return n
        }
        return .raw(String(decoding: buf[0..<used], as: UTF8.self))
    }

    func fdbStats() -> JSON {
        let t = model.table
        let all = t.entries(now: model.clock())
        let st = all.filter(\.isStatic).count
        var perPort: [String: JSON] = [:]
        for p in model.sortedPorts { perPort[p.config.name] = .int(t.count(port: p.index)) }
        var full: UInt64 = 0
        for p in model.sortedPorts { full &+= PortCounters(port: p.index, blocks: model.counterBlocks()).learnTableFull }
        return ["entries": .int(all.count), "static": .int(st), "dynamic": .int(all.count - st), "limit": .int(t.limit),
                "aging_time": .int(model.config.settings.macAgingTime), "per_port": .object(perPort),
                "learn_table_full": .count(full), "capacity_slots": .int(t.capacity), "used_slots": .int(t.usedSlots)]
    }

    func portStats(port: String?) throws -> JSON {
        if let port, model.index(of: port) == nil { throw DaemonError("no such port: \(port)") }
        let blocks = model.counterBlocks()
        let rows: [JSON] = model.sortedPorts.filter { port == nil || $0.config.name == port }.map { p in
            let c = PortCounters(port: p.index, blocks: blocks)
            var drops: [String: JSON] = [:]
            for r in DropReason.allCases { drops[r.name] = .count(c.drops(r)) }
            var row: [String: JSON] = ["name": .string(p.config.name), "index": .int(p.index), "up": .bool(p.link == .up),
                    "link": .string(p.link.rawValue),
                    "rx_packets": .count(c.rxPackets), "rx_bytes": .count(c.rxBytes), "tx_packets": .count(c.txPackets),
                    "tx_bytes": .count(c.txBytes), "floods": .count(c.floods), "mac_moves": .count(c.macMoves),
                    "learn_table_full": .count(c.learnTableFull), "drops_total": .count(c.totalDrops),
                    "capture_copies": .count(c.captureCopies), "capture_drops": .count(c.captureDrops), "mirror_tx": .count(c.mirrorSent), "mirror_drops": .count(c.mirrorDrops),
                    "drops": .object(drops)]
            if let n = model.resource(p.index) as? NetdevPort {
                // The netdev port's RX ring (NetdevPort.ringCounters): frames it took, frames it dropped for being
                // full (before the switch ever saw them), whole-frame copies beside it, oversize drops.
                row["netdev_ring"] = .object(n.ringCounters().mapValues { .count($0) })
            }
            return .object(row)
        }
        return ["ports": .array(rows)]
    }
}
