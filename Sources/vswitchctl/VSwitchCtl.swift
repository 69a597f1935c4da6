// vswitchctl: drives a running vswitchd through its control socket (docs/control-protocol.md).
// Conventions from ovs-vsctl / ovs-appctl (add-port, del-port, set, fdb/show, fdb/flush) and
// iproute2's `bridge fdb` (add/del PORT VLAN MAC). Every show command takes --format json.
// Errors: one line on stderr prefixed "vswitchctl:", exit status 1 (2 for usage errors);
// a refused request changes nothing.

import ArgumentParser
import Foundation
import VSwitchControl

struct Common: ParsableArguments {
    @Option(name: .long, help: "Control socket (default $VSWITCH_CONTROL_SOCKET, else \(ControlProtocol.defaultSocketPath)).")
    var socket: String?

    var path: String {
        socket ?? ProcessInfo.processInfo.environment["VSWITCH_CONTROL_SOCKET"] ?? ControlProtocol.defaultSocketPath
    }

    /// Sends one request; prints the daemon's error and exits 1 if refused.
    func call(_ command: String, _ args: [String: JSON] = [:]) throws -> JSON {
        let outcome: Result<ControlResponse, ControlError> = Result { () throws(ControlError) -> ControlResponse in
            let client = try ControlClient(path: path)
            return try client.call(ControlRequest(command, args))
        }
        switch outcome {
        case .failure(let e): fail(e.description)
        case .success(let r):
            if !r.ok { fail(r.error ?? "request refused") }
            return r.result
        }
    }
}

enum Format: String, ExpressibleByArgument, CaseIterable { case text, json }

/// `show` also speaks CIM: the DSP1097 view as WS-CIM XML (docs/cim-view.md).
enum ShowFormat: String, ExpressibleByArgument, CaseIterable { case text, json, cim }

struct FormatOption: ParsableArguments {
    @Option(name: .long, help: "Output format: text or json.") var format: Format = .text
}

func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data("vswitchctl: \(message)\n".utf8))
    exit(1)
}

func emit(_ result: JSON, _ format: Format, text: (JSON) -> String) {
    switch format {
    case .json: print(result.pretty)
    case .text: print(text(result), terminator: "")
    }
}

/// Display width: the byte count for ASCII (no grapheme walk per cell: `fdb show` prints 100,000 rows).
func width(_ s: String) -> Int {
    let u = s.utf8.count
    return s.utf8.allSatisfy { $0 < 0x80 } ? u : s.count
}

func pad(_ s: String, _ n: Int) -> String { let w = width(s); return w >= n ? s + " " : s + String(repeating: " ", count: n - w) }

func table(_ header: [String], _ rows: [[String]]) -> String {
    var widths = header.map(width)
    for r in rows { for (i, c) in r.enumerated() where i < widths.count { widths[i] = max(widths[i], width(c)) } }
    var s = ""
    for r in [header] + rows {
        s += r.enumerated().map { i, c in i == r.count - 1 ? c : pad(c, widths[i] + 1) }.joined() + "\n"
    }
    return s
}

func str(_ j: JSON?) -> String {
    guard let j else { return "-" }
    switch j {
    case .null: return "-"
    case .string(let s): return s
    case .int(let i): return String(i)
    case .bool(let b): return b ? "yes" : "no"
    case .array(let a): return a.map { str($0) }.joined(separator: ",")
    default: return j.description
    }
}

@main
struct VSwitchCtl: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vswitchctl",
        abstract: "Configure and inspect a running vswitchd (root only).",
        subcommands: [Show.self, AddPort.self, DelPort.self, SetPort.self, Profile.self, FDB.self, Port.self,
                      SetCmd.self, Metrics.self, CaptureCmd.self])

    /// `vswitchctl --socket PATH COMMAND …` (the option before the command, like ovs-vsctl --db) is
    /// accepted too: it is turned into $VSWITCH_CONTROL_SOCKET before parsing.
    static func main() {
        var args = Array(CommandLine.arguments.dropFirst())
        while let first = args.first, first.hasPrefix("--socket") {
            if first == "--socket", args.count >= 2 { setenv("VSWITCH_CONTROL_SOCKET", args[1], 1); args.removeFirst(2) }
            else if first.hasPrefix("--socket=") { setenv("VSWITCH_CONTROL_SOCKET", String(first.dropFirst(9)), 1); args.removeFirst() }
            else { break }
        }
        main(args)
    }
}

struct Show: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "The switch, its settings and its ports.")
    @OptionGroup var common: Common
    @Option(name: .long, help: "Output format: text, json, or cim (DSP1097 as WS-CIM XML).") var format: ShowFormat = .text

    func run() throws {
        if format == .cim {
            let r = try common.call("show-cim")
            print(str(r["xml"]), terminator: "")
            return
        }
        let r = try common.call("show")
        emit(r, format == .json ? .json : .text) { r in
            let sw = r["switch"] ?? .null
            let st = sw["settings"] ?? .null
            var s = "switch \(str(sw["name"])) (generation \(str(sw["generation"])))\n"
            s += "  mac-aging-time=\(str(st["mac-aging-time"])) mac-table-size=\(str(st["mac-table-size"])) "
            s += "mac-table-entries=\(str(sw["mac-table-entries"])) forwarding-threads=\(str(st["forwarding-threads"]))"
            if let running = sw["forwarding-threads-running"] { s += " (running \(str(running)))" }
            s += "\n"
            let reserved = sw["reserved"] ?? .null
            s += "  bandwidth-capacity=\(bitsText(st["bandwidth-capacity"], none: "none (no admission check)")) "
            s += "reserved transmit=\(bitsText(reserved["transmit"])) receive=\(bitsText(reserved["receive"]))\n"
            s += "  profiles: \(str(r["profiles"]))\n"
            let ports = r["ports"]?.arrayValue ?? []
            s += "  ports: \(ports.count)\n"
            let rows = ports.map { p in
                [str(p["index"]), str(p["name"]), str(p["type"]), str(p["link"]), str(p["profile"]), str(p["mac"]),
                 str(p["mtu"]), p["offload"].map { str($0) == "yes" ? "on" : "off" } ?? "-",
                 p["namespace"].map { "\(str($0)):\(str(p["interface"]))" } ?? "-", str(p["addresses"])]
            }
            return s + table(["#", "port", "type", "link", "profile", "mac", "mtu", "offload", "virtual-system", "addresses"], rows)
                .split(separator: "\n", omittingEmptySubsequences: false).map { $0.isEmpty ? "" : "    " + $0 }.joined(separator: "\n")
        }
    }
}

struct AddPort: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "add-port",
                                                    abstract: "Add a port: a TAP (with an optional virtual system), an existing interface (--type netdev --interface IFNAME), or a pcap replay (--type pcap --file F).")
    @OptionGroup var common: Common
    @Argument(help: "Port (TAP) name, at most 15 characters.") var name: String
    @Option(name: .long, help: "Port type: tap, netdev (an existing interface through AF_PACKET rings) or pcap (replay a file).") var type = "tap"
    @Option(name: .long, help: "NetworkPortProfileID of a loaded profile.") var profile: String
    @Option(name: .long, help: "The virtual system's MAC address (the port's MAC binding).") var mac: String?
    @Option(name: .long, help: "MTU (default 1500).") var mtu: Int?
    @Option(name: .long, help: "Create a virtual system: move the TAP's netdev into this new network namespace.") var namespace: String?
    @Option(name: .long, help: "tap: interface name inside the namespace (default eth0); netdev: the existing interface to attach.") var interface: String?
    @Option(name: .long, help: "pcap: the pcap file to replay.") var file: String?
    @Flag(name: .long, help: "pcap: replay the file in a loop.") var loop = false
    @Option(name: .long, help: "pcap: frames per second (default: as fast as the switch takes them).") var rate: Int?
    @Option(name: .long, help: "pcap: write frames sent to the port to this pcap file (default: discard).") var output: String?
    @Option(name: .customLong("address"), help: "CIDR address for the virtual system's interface (repeatable).") var addresses: [String] = []
    @Option(name: .long, help: "tap: offloads on or off (IFF_VNET_HDR with checksum and TSO: the virtual system sends and receives 64 KB TCP super-frames; default on).") var offload: String?

    func run() throws {
        var a: [String: JSON] = ["name": .string(name), "type": .string(type), "profile": .string(profile)]
        if let mac { a["mac"] = .string(mac) }
        if let mtu { a["mtu"] = .int(mtu) }
        if let namespace { a["namespace"] = .string(namespace) }
        if let interface { a["interface"] = .string(interface) }
        if !addresses.isEmpty { a["addresses"] = .array(addresses.map { .string($0) }) }
        if let file { a["file"] = .string(URL(fileURLWithPath: file).path) }
        if loop { a["loop"] = .bool(true) }
        if let rate { a["rate"] = .int(rate) }
        if let output { a["output"] = .string(URL(fileURLWithPath: output).path) }
        if let offload {
            guard offload == "on" || offload == "off" else { throw ValidationError("--offload must be on or off") }
            a["offload"] = .bool(offload == "on")
        }
        _ = try common.call("add-port", a)
    }
}

struct DelPort: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "del-port", abstract: "Remove a port (its MAC entries are flushed).")
    @OptionGroup var common: Common
    @Argument var name: String
    func run() throws { _ = try common.call("del-port", ["name": .string(name)]) }
}

struct SetPort: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "set-port", abstract: "Change a port: set-port PORT profile=ID.")
    @OptionGroup var common: Common
    @Argument var port: String
    @Argument(help: "KEY=VALUE settings (profile=ID).") var settings: [String]

    func run() throws {
        var profile: String?
        for kv in settings {
            let parts = kv.split(separator: "=", maxSplits: 1).map(String.init)
            guard parts.count == 2, parts[0] == "profile" else { fail("set-port: expected profile=ID, got \(kv)") }
            profile = parts[1]
        }
        guard let profile else { fail("set-port: nothing to set (profile=ID)") }
        _ = try common.call("set-port", ["name": .string(port), "profile": .string(profile)])
    }
}

/// The path as the daemon needs it (docs/control-protocol.md: absolute, it does not share our working directory),
/// normalised ("." and ".." removed), so `profile load x.xml` and `profile load ./x.xml` name the same document.
func absolute(_ path: String) -> String {
    URL(fileURLWithPath: path.hasPrefix("/") ? path : FileManager.default.currentDirectoryPath + "/" + path).standardized.path
}

struct Profile: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Port profiles: load, reload, validate, export, show.",
                                                    subcommands: [Load.self, Reload.self, Validate.self, Export.self, ShowProfiles.self])

    struct Load: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Load a profile file (or replace the one loaded from the same path).")
        @OptionGroup var common: Common
        @Argument var file: String
        func run() throws {
            let r = try common.call("profile-load", ["path": .string(absolute(file))])
            for w in r["warnings"]?.arrayValue ?? [] { FileHandle.standardError.write(Data("warning: \(str(w))\n".utf8)) }
            print("loaded: \(str(r["loaded"]))")
        }
    }
    struct Reload: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Re-read every loaded profile file (all or nothing).")
        @OptionGroup var common: Common
        func run() throws { print("loaded: \(str(try common.call("profile-reload")["loaded"]))") }
    }
    struct Validate: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Check a profile file without loading it.")
        @OptionGroup var common: Common
        @Argument var file: String
        func run() throws {
            let r = try common.call("profile-validate", ["path": .string(absolute(file))])
            for w in r["warnings"]?.arrayValue ?? [] { FileHandle.standardError.write(Data("warning: \(str(w))\n".utf8)) }
            print("\(file): valid: \(str(r["profiles"]))")
            for c in r["changes"]?.arrayValue ?? [] {
                let lines = c["changes"]?.arrayValue ?? []
                let port = c["port"]?.stringValue ?? "?"
                if lines.isEmpty { print("  \(port): no change") }
                for l in lines { print("  \(port): \(str(l))") }
            }
        }
    }
    struct Export: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Write every loaded profile as one form-1 document (stdout or FILE).")
        @OptionGroup var common: Common
        @Argument var file: String?
        func run() throws {
            let xml = try common.call("profile-export")["xml"]?.stringValue ?? ""
            if let file {
                do { try xml.write(toFile: file, atomically: true, encoding: .utf8) } catch { fail("cannot write \(file): \(error.localizedDescription)") }
            } else {
                print(xml, terminator: "")
            }
        }
    }
    struct ShowProfiles: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "show", abstract: "Loaded profiles and the ports bound to them.")
        @OptionGroup var common: Common
        @OptionGroup var fmt: FormatOption
        func run() throws {
            emit(try common.call("profile-show"), fmt.format) { r in
                table(["profile", "name", "mode", "pvid", "trunked", "ports", "file"], (r["profiles"]?.arrayValue ?? []).map {
                    [str($0["id"]), str($0["name"]), str($0["mode"]), str($0["pvid"]), str($0["trunked-vlans"]),
                     str($0["ports"]), str($0["file"])]
                })
            }
        }
    }
}

struct FDB: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "fdb", abstract: "The MAC table: show, flush, add, del, stats.",
                                                    subcommands: [FShow.self, Flush.self, Add.self, Del.self, Stats.self])

    struct FShow: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "show", abstract: "Entries: port, VLAN, MAC, age, static/dynamic.")
        @OptionGroup var common: Common
        @OptionGroup var fmt: FormatOption
        @Option(name: .long) var port: String?
        @Option(name: .long) var vlan: Int?
        func run() throws {
            var a: [String: JSON] = [:]
            if let port { a["port"] = .string(port) }
            if let vlan { a["vlan"] = .int(vlan) }
            emit(try common.call("fdb-show", a), fmt.format) { r in
                table(["port", "vlan", "mac", "age", "type"], (r["entries"]?.arrayValue ?? []).map {
                    [str($0["port"]), str($0["vlan"]), str($0["mac"]), str($0["age"]),
                     $0["static"]?.boolValue == true ? "static" : "dynamic"]
                })
            }
        }
    }
    struct Flush: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Remove dynamic entries: all, of one port, or of one VLAN.")
        @OptionGroup var common: Common
        @Option(name: .long) var port: String?
        @Option(name: .long) var vlan: Int?
        func run() throws {
            var a: [String: JSON] = [:]
            if let port { a["port"] = .string(port) }
            if let vlan { a["vlan"] = .int(vlan) }
            print("flushed \(str(try common.call("fdb-flush", a)["flushed"])) entries")
        }
    }
    struct Add: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Add a static entry: fdb add PORT VLAN MAC.")
        @OptionGroup var common: Common
        @Argument var port: String
        @Argument var vlan: Int
        @Argument var mac: String
        func run() throws { _ = try common.call("fdb-add", ["port": .string(port), "vlan": .int(vlan), "mac": .string(mac)]) }
    }
    struct Del: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Remove an entry: fdb del VLAN MAC.")
        @OptionGroup var common: Common
        @Argument var vlan: Int
        @Argument var mac: String
        func run() throws { _ = try common.call("fdb-del", ["vlan": .int(vlan), "mac": .string(mac)]) }
    }
    struct Stats: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "MAC table occupancy.")
        @OptionGroup var common: Common
        @OptionGroup var fmt: FormatOption
        func run() throws {
            emit(try common.call("fdb-stats"), fmt.format) { r in
                var s = "entries \(str(r["entries"])) (static \(str(r["static"])), dynamic \(str(r["dynamic"]))), limit \(str(r["limit"])), "
                s += "aging \(str(r["aging_time"]))s, not learned (table full) \(str(r["learn_table_full"]))\n"
                let per = r["per_port"]?.objectValue ?? [:]
                return s + table(["port", "entries"], per.keys.sorted().map { [$0, str(per[$0])] })
            }
        }
    }
}

struct Port: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Per-port information.", subcommands: [PStats.self])

    struct PStats: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "stats", abstract: "Counters, with drops per reason.")
        @OptionGroup var common: Common
        @OptionGroup var fmt: FormatOption
        @Argument var port: String?
        func run() throws {
            var a: [String: JSON] = [:]
            if let port { a["port"] = .string(port) }
            emit(try common.call("port-stats", a), fmt.format) { r in
                var s = ""
                for p in r["ports"]?.arrayValue ?? [] {
                    s += "\(str(p["name"])) (#\(str(p["index"])), link \(str(p["link"])))\n"
                    s += "  rx: packets \(str(p["rx_packets"])) bytes \(str(p["rx_bytes"]))\n"
                    s += "  tx: packets \(str(p["tx_packets"])) bytes \(str(p["tx_bytes"]))\n"
                    s += "  floods \(str(p["floods"])) mac-moves \(str(p["mac_moves"])) learn-table-full \(str(p["learn_table_full"]))\n"
                    s += "  capture: copies \(str(p["capture_copies"])) dropped-ring-full \(str(p["capture_drops"]))"
                        + "  mirror: sent \(str(p["mirror_tx"])) dropped \(str(p["mirror_drops"]))\n"
                    let d = p["drops"]?.objectValue ?? [:]
                    let nz = d.keys.sorted().filter { (d[$0]?.intValue ?? 0) > 0 }.map { "\($0)=\(str(d[$0]))" }
                    s += "  drops \(str(p["drops_total"]))" + (nz.isEmpty ? "" : ": " + nz.joined(separator: " ")) + "\n"
                    if let r = p["netdev_ring"]?.objectValue {
                        s += "  netdev ring: packets \(str(r["packets"])) dropped-ring-full \(str(r["drops"])) copied-whole \(str(r["copied"])) oversize \(str(r["oversize"]))\n"
                    }
                }
                return s
            }
        }
    }
}

struct SetCmd: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "set",
                                                    abstract: "Switch settings: set switch mac-aging-time=N mac-table-size=N bandwidth-capacity=BITS|none (e.g. 10G: the admission check of port Reservations).")
    @OptionGroup var common: Common
    @Argument(help: "switch") var object: String
    @Argument(help: "KEY=VALUE") var settings: [String]

    func run() throws {
        guard object == "switch" else { fail("set: unknown object \(object) (expected: switch)") }
        var a: [String: JSON] = [:]
        for kv in settings {
            let parts = kv.split(separator: "=", maxSplits: 1).map(String.init)
            guard parts.count == 2, ["mac-aging-time", "mac-table-size", "bandwidth-capacity"].contains(parts[0]) else {
                fail("set switch: expected mac-aging-time=N, mac-table-size=N or bandwidth-capacity=BITS|none, got \(kv)")
            }
            if parts[0] == "bandwidth-capacity" {
                if parts[1] == "none" { a[parts[0]] = .string("none"); continue }
                guard let bits = parseBits(parts[1]) else {
                    fail("set switch: bandwidth-capacity must be bit/s with an optional k, M, G or T suffix (e.g. 10G, 2.5G, 800M) or none, got \(parts[1])")
                }
                a[parts[0]] = .int(bits)
                continue
            }
            guard let v = Int(parts[1]) else { fail("set switch: \(parts[0]) must be an integer, got \(parts[1])") }
            a[parts[0]] = .int(v)
        }
        if a.isEmpty { fail("set switch: nothing to set") }
        _ = try common.call("set-switch", a)
    }
}

/// "10G" → 10,000,000,000 (SI suffixes k, M, G, T; bit/s). Nil if malformed or not > 0.
func parseBits(_ text: String) -> Int? {
    var t = text.trimmingCharacters(in: .whitespaces)
    var scale = 1.0
    if let last = t.last, let s = ["k": 1e3, "K": 1e3, "M": 1e6, "G": 1e9, "T": 1e12][String(last)] { scale = s; t.removeLast() }
    guard let v = Double(t), v > 0, (v * scale) < 9e18 else { return nil }
    let bits = (v * scale).rounded()
    return bits >= 1 ? Int(bits) : nil
}

/// A bit/s value from the daemon as "2.5 Gbit/s"; `none` for null.
func bitsText(_ v: JSON?, none: String = "0") -> String {
    guard case .int(let n)? = v else { return none }
    for (unit, scale) in [("Tbit/s", 1e12), ("Gbit/s", 1e9), ("Mbit/s", 1e6), ("kbit/s", 1e3)] where Double(n) >= scale {
        let x = Double(n) / scale
        return (x == x.rounded() ? String(Int(x)) : String(format: "%.3g", x)) + " " + unit
    }
    return n == 0 ? "0" : "\(n) bit/s"
}

struct Metrics: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Counters in the Prometheus text exposition format.")
    @OptionGroup var common: Common
    func run() throws { print(try common.call("metrics")["text"]?.stringValue ?? "", terminator: "") }
}
