// Tests of the control plane without root: the protocol (VSwitchControl), the state file, and the
// dynamic switch model + command handler (VSwitchDaemon) over a fake PortSystem.

import Foundation
import Logging
import VSwitchControl
import VSwitchCore
import VSwitchProfiles
@testable import VSwitchDaemon
import XCTest

let profilesXML = try! String(contentsOfFile: URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("topologies/profiles/tenants.xml").path,
    encoding: .utf8)

final class FakeSystem: PortSystem {
    var attached: [String: Int32] = [:]
    var destroyed: [String] = []
    var links: [String: LinkStatus] = [:]
    var failAttach: Set<String> = []
    var nextFD: Int32 = 100
    func check(_ port: PortConfig) throws {
        if port.name == "taken" { throw DaemonError("port taken: an interface named taken already exists") }
    }
    func attach(_ port: PortConfig, persistent: Bool, restore: Bool) throws -> PortAttachment {
        onAttach?(port)
        if failAttach.contains(port.name) { throw DaemonError("cannot create TAP \(port.name)") }
        nextFD += 1
        attached[port.name] = nextFD
        return PortAttachment(handle: nextFD, ifindex: nextFD)
    }
    func detach(_ port: PortConfig, _ a: PortAttachment, destroy: Bool) {
        attached[port.name] = nil
        if destroy { onDestroy?(port); destroyed.append(port.name) }
    }
    func linkStatus(_ port: PortConfig, _ a: PortAttachment) -> LinkStatus { links[port.name] ?? .up }
    var leftoversRemoved: [String] = []
    func removeLeftover(_ port: PortConfig) { leftoversRemoved.append(port.name) }
    /// Called when a device is made / destroyed (the write-ahead tests look at what was saved by then).
    var onAttach: ((PortConfig) -> Void)?
    var onDestroy: ((PortConfig) -> Void)?
}

final class ProtocolTests: XCTestCase {
    func testJSONRoundTripAndEscaping() throws {
        let v: JSON = ["a": 1, "b": [true, nil, "x\"y\n"], "c": ["d": .double(2.5)]]
        XCTAssertEqual(try JSON.parse(v.description), v)
        XCTAssertEqual(v.description, #"{"a":1,"b":[true,null,"x\"y\n"],"c":{"d":2.5}}"#)
        XCTAssertEqual(try JSON.parse(v.pretty), v)
    }

    func testRequestParsing() throws {
        let r = try ControlRequest.parse(Data(#"{"command":"fdb-add","args":{"port":"p","vlan":10,"mac":"02:00:00:00:00:01"},"id":7}"#.utf8))
        XCTAssertEqual(r.command, "fdb-add")
        XCTAssertEqual(try r.int("vlan"), 10)
        XCTAssertEqual(r.id, 7)
        XCTAssertEqual(try ControlRequest.parse(Data(r.line.utf8)), r)
        for bad in ["", "nonsense", "[1]", #"{"args":{}}"#, #"{"command":1}"#, #"{"command":"show","args":[1]}"#,
                    #"{"command":"show","extra":1}"#] {
            XCTAssertThrowsError(try ControlRequest.parse(Data(bad.utf8)), bad) { e in
                XCTAssertTrue("\(e)".hasPrefix("malformed request"), "\(e)")
            }
        }
    }

    func testPrometheusText() {
        let ports: JSON = ["ports": [["name": "a\"b", "rx_packets": 3, "up": true, "drops": ["mtu-exceeded": 2]]]]
        let text = PrometheusText.render(portStats: ports, fdbStats: ["entries": 4, "limit": 10])
        XCTAssertTrue(text.contains("vswitch_port_rx_packets_total{port=\"a\\\"b\"} 3\n"), text)
        XCTAssertTrue(text.contains("vswitch_port_drops_total{port=\"a\\\"b\",reason=\"mtu-exceeded\"} 2\n"), text)
        XCTAssertTrue(text.contains("# TYPE vswitch_mac_table_entries gauge\nvswitch_mac_table_entries 4\n"), text)
        // "\r\n" is one Character: escaped by scalar, a label value cannot end the line (session 8 review).
        XCTAssertEqual(PrometheusText.escape("p\r\nforged 1\n\u{7}"), "p\u{FFFD}\\nforged 1\\n\u{FFFD}")
        let forged: JSON = ["ports": [["name": "p\r\nvswitch_injected_total 31337\r\n#", "rx_packets": 1]]]
        let lines = PrometheusText.render(portStats: forged, fdbStats: ["entries": 0, "limit": 10]).split(separator: "\n")
        XCTAssertFalse(lines.contains { $0.hasPrefix("vswitch_injected_total") })
    }
}

/// The client reads the daemon's answer even when sending its request failed: the daemon refuses a non-root peer
/// (or one connection too many) with one response line and closes without reading, so the request's send() may
/// get EPIPE (or ECONNRESET) — the refusal is already in the client's receive queue and is what the operator must
/// see, not "lost the connection to vswitchd while sending: Broken pipe".
final class ClientRefusalTests: XCTestCase {
    func testAnswerIsReadWhenTheDaemonClosedBeforeTheRequestWasSent() throws {
        let path = NSTemporaryDirectory() + "vsw-client-\(getpid()).sock"
        unlink(path)
        defer { unlink(path) }
        let listener = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        XCTAssertGreaterThanOrEqual(listener, 0)
        defer { close(listener) }
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in for (i, b) in path.utf8.enumerated() { raw[i] = b } }
        let bound = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        XCTAssertEqual(bound, 0)
        XCTAssertEqual(listen(listener, 4), 0)

        let refusal = "permission denied: the vswitchd control socket accepts root (uid 0) only, not uid 65534"
        for request in [ControlRequest("show"), ControlRequest("profile-load", ["path": .string(String(repeating: "x", count: 1 << 20))])] {
            let client = try ControlClient(path: path)     // connected (queued in the backlog)
            let conn = accept(listener, nil, nil)           // the daemon's side: answer, close, never read
            XCTAssertGreaterThanOrEqual(conn, 0)
            let line = Array(ControlResponse.failure(refusal).line.utf8)
            XCTAssertEqual(write(conn, line, line.count), line.count)
            close(conn)
            do {
                let r = try client.call(request, timeout: 5)
                XCTAssertFalse(r.ok)
                XCTAssertEqual(r.error, refusal)
            } catch {
                XCTFail("\(request.command): \(error)")
            }
        }
    }
}

final class StateFileTests: XCTestCase {
    func testRoundTripAndCorruptionDetected() throws {
        let dir = NSTemporaryDirectory() + "vswitch-state-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let store = StateStore(directory: dir)
        try store.prepare()
        XCTAssertNil(try store.load())
        var c = SwitchConfig()
        c.settings.macAgingTime = 42
        c.ports = [PortConfig(index: 3, name: "p", profile: "x", mac: "02:00:00:00:00:01", namespace: "ns", addresses: ["10.0.0.1/24"])]
        c.fdb = [StaticFDBEntry(port: "p", vlan: 5, mac: "02:00:00:00:00:09")]
        try store.save(c)
        XCTAssertEqual(try store.load(), c)
        // A second daemon cannot take the same directory.
        XCTAssertThrowsError(try StateStore(directory: dir).prepare())
        let good = try Data(contentsOf: URL(fileURLWithPath: store.path))
        // Truncated.
        try good.prefix(good.count - 10).write(to: URL(fileURLWithPath: store.path))
        XCTAssertThrowsError(try store.load()) { XCTAssertTrue("\($0)".contains("truncated"), "\($0)") }
        // One byte flipped.
        var bad = good
        bad[bad.count - 20] ^= 0x01
        try bad.write(to: URL(fileURLWithPath: store.path))
        XCTAssertThrowsError(try store.load()) { XCTAssertTrue("\($0)".contains("checksum"), "\($0)") }
        try Data("{}".utf8).write(to: URL(fileURLWithPath: store.path))
        XCTAssertThrowsError(try store.load()) { XCTAssertTrue("\($0)".contains("corrupt"), "\($0)") }
    }
}

final class StateProfileFileTests: XCTestCase {
    func testCRC32SlicingMatchesBytewise() {
        XCTAssertEqual(CRC32.checksum(Data("123456789".utf8)), 0xCBF4_3926)   // the standard check value
        var rng = SystemRandomNumberGenerator()
        for n in Array(0...40) + [63, 64, 65, 1000, 4099, 2_584_138] {
            let d = Data((0..<n).map { _ in UInt8.random(in: 0...255, using: &rng) })
            XCTAssertEqual(CRC32.checksum(d), CRC32.checksumBytewise(d), "\(n) bytes")
            // Unaligned starts too.
            if n > 3 { XCTAssertEqual(CRC32.checksum(d.dropFirst(3)), CRC32.checksumBytewise(d.dropFirst(3)), "\(n) - 3 bytes") }
        }
    }

    func testPortEntriesReusedDecodeAsEncoded() throws {
        let store = StateStore(directory: NSTemporaryDirectory())
        var c = SwitchConfig()
        c.name = "sw \"ports\":[] \\ /"
        c.fdb = [StaticFDBEntry(port: "\"ports\":[]", vlan: 5, mac: "02:00:00:00:00:09")]
        c.profiles = [ProfileSource(path: "/p\"ports\":[].xml", xml: "")]
        c.ports = (0..<50).map { i in
            var p = PortConfig(index: i, name: "p\(i)", profile: i % 2 == 0 ? "urn:a" : "urn:\"ports\":[]", mac: "02:00:00:00:00:\(String(format: "%02x", i))",
                               namespace: i % 3 == 0 ? "ns\(i)" : nil, addresses: i % 3 == 0 ? ["10.0.0.\(i)/24"] : [])
            p.rate = i % 5 == 0 ? i : nil
            return p
        }
        func decoded(_ d: Data) throws -> SwitchConfig { try StateStore.decode(d, path: "test") }
        XCTAssertEqual(try decoded(try store.encodeReusingPorts(c)), c)
        // Ports changed, added and removed between saves: the reused entries and the new ones decode as the config.
        for step in 0..<20 {
            let k = c.ports.isEmpty ? 0 : step % c.ports.count
            if step % 3 == 0 && !c.ports.isEmpty { c.ports[k].profile = "urn:b\(step)" }
            if step % 4 == 1 && !c.ports.isEmpty { c.ports.remove(at: k) }
            if step % 5 == 2 { c.ports.insert(PortConfig(index: 100 + step, name: "n\(step)", profile: "urn:a"), at: min(k, c.ports.count)) }
            if step == 7 { c.ports = [] }
            if step == 8 { c.ports = [PortConfig(index: 1, name: "only", profile: "urn:a")] }
            XCTAssertEqual(try decoded(try store.encodeReusingPorts(c)), c, "step \(step)")
            XCTAssertEqual(try decoded(try store.encodeReusingPorts(c)), try decoded(try StateStore.encode(c)), "step \(step)")
        }
    }

    /// Session 8 security review: the store touches only its own files in its directory, never through a link, and
    /// refuses a directory someone else could write in (they could make root write through a link of theirs).
    func testStateDirectoryIsTheDaemonsOwnAndOnlyItsFilesAreTouched() throws {
        let dir = NSTemporaryDirectory() + "vswitch-state-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        XCTAssertEqual(mkdir(dir, 0o755), 0)
        // The operator's own files, one named like a profile file: kept; the directory's mode: kept.
        XCTAssertTrue(FileManager.default.createFile(atPath: dir + "/profile-tenants.xml", contents: Data("mine".utf8)))
        XCTAssertTrue(FileManager.default.createFile(atPath: dir + "/profile-0badc0de-12.xml.bak", contents: Data("mine".utf8)))
        let store = StateStore(directory: dir)
        try store.prepare()
        var c = SwitchConfig()
        c.profiles = [ProfileSource(path: "/etc/a.xml", xml: profilesXML)]
        try store.save(c)
        c.profiles = []
        try store.save(c)
        let left = try FileManager.default.contentsOfDirectory(atPath: dir).sorted()
        XCTAssertEqual(left, ["lock", "profile-0badc0de-12.xml.bak", "profile-tenants.xml", "state.json"])
        var st = stat()
        XCTAssertEqual(stat(dir, &st), 0)
        XCTAssertEqual(st.st_mode & 0o777, 0o755, "an existing directory keeps its mode")
        XCTAssertTrue(StateStore.isProfileFileName("profile-0badc0de-12.xml"))
        for name in ["profile-tenants.xml", "profile-0BADC0DE-12.xml", "profile-0badc0de-.xml", "profile-0badc0d-12.xml", "profile-0badc0de-12.xml.bak"] {
            XCTAssertFalse(StateStore.isProfileFileName(name), name)
        }
        // A link at the temporary name is replaced, not written through.
        let victim = dir + "-victim"
        defer { unlink(victim) }
        XCTAssertTrue(FileManager.default.createFile(atPath: victim, contents: Data("victim".utf8)))
        XCTAssertEqual(symlink(victim, dir + "/.state.json.tmp"), 0)
        try store.save(c)
        XCTAssertEqual(FileManager.default.contents(atPath: victim), Data("victim".utf8))
        XCTAssertEqual(try StateStore(directory: dir).load(), c)
        // Writable by others, or a symlink: refused.
        XCTAssertEqual(chmod(dir, 0o775), 0)
        XCTAssertThrowsError(try StateStore(directory: dir).prepare()) { XCTAssertTrue("\($0)".contains("writable by no one else"), "\($0)") }
        XCTAssertEqual(chmod(dir, 0o755), 0)
        XCTAssertEqual(symlink(dir, dir + "-link"), 0)
        defer { unlink(dir + "-link") }
        XCTAssertThrowsError(try StateStore(directory: dir + "-link").prepare()) { XCTAssertTrue("\($0)".contains("not a directory"), "\($0)") }
    }

    func testProfileDocumentsBesideTheStateFile() throws {
        let dir = NSTemporaryDirectory() + "vswitch-state-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let store = StateStore(directory: dir)
        try store.prepare()
        var c = SwitchConfig()
        let big = String(repeating: "<!-- \"quoted\" & escaped \\ text -->\n", count: 2000) + profilesXML
        c.profiles = [ProfileSource(path: "/etc/a.xml", xml: profilesXML), ProfileSource(path: "/etc/b.xml", xml: big)]
        try store.save(c)
        func files() throws -> [String] { try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.hasPrefix("profile-") }.sorted() }
        XCTAssertEqual(try files().count, 2)
        let json = try String(contentsOfFile: store.path, encoding: .utf8)
        XCTAssertFalse(json.contains("quoted"), "the documents' text is not in state.json")
        XCTAssertTrue(json.contains("\"file\""), json)
        // A new store (a restarted daemon) reads the same configuration back.
        XCTAssertEqual(try StateStore(directory: dir).load(), c)
        // Saving again writes no profile file (same inode), changing one document replaces only its file.
        let inodes = try files().map { try FileManager.default.attributesOfItem(atPath: dir + "/" + $0)[.systemFileNumber] as? Int }
        try store.save(c)
        XCTAssertEqual(try files().map { try FileManager.default.attributesOfItem(atPath: dir + "/" + $0)[.systemFileNumber] as? Int }, inodes)
        c.profiles[0].xml = profilesXML + "<!-- changed -->\n"
        try store.save(c)
        XCTAssertEqual(try files().count, 2, "the old file of /etc/a.xml is removed")
        XCTAssertEqual(try StateStore(directory: dir).load(), c)
        // Text equal as a Swift String but not byte for byte (another Unicode normalization form) is written.
        c.profiles[1].xml = big + "<!-- caf\u{E9} -->\n"
        try store.save(c)
        c.profiles[1].xml = big + "<!-- cafe\u{301} -->\n"
        XCTAssertEqual(c.profiles[1].xml, big + "<!-- caf\u{E9} -->\n")   // canonically equivalent...
        try store.save(c)
        let restored = try XCTUnwrap(StateStore(directory: dir).load())
        XCTAssertTrue(restored.profiles[1].xml.utf8.elementsEqual(c.profiles[1].xml.utf8), "...but stored as its own bytes")
        // A profile file truncated, corrupted or missing refuses the whole state, naming the document.
        let name = try files().first { try String(contentsOfFile: dir + "/" + $0, encoding: .utf8).hasSuffix("<!-- changed -->\n") }!
        let file = dir + "/" + name
        let good = try Data(contentsOf: URL(fileURLWithPath: file))
        try good.prefix(good.count - 1).write(to: URL(fileURLWithPath: file))
        XCTAssertThrowsError(try StateStore(directory: dir).load()) {
            XCTAssertTrue("\($0)".contains("profile document /etc/a.xml") && "\($0)".contains("truncated"), "\($0)")
        }
        var bad = good
        bad[10] ^= 0x20
        try bad.write(to: URL(fileURLWithPath: file))
        XCTAssertThrowsError(try StateStore(directory: dir).load()) { XCTAssertTrue("\($0)".contains("checksum mismatch"), "\($0)") }
        unlink(file)
        XCTAssertThrowsError(try StateStore(directory: dir).load()) { XCTAssertTrue("\($0)".contains("missing"), "\($0)") }
        // A state file of the earlier form (the text inline) still loads.
        var inline = SwitchConfig()
        inline.profiles = [ProfileSource(path: "/etc/a.xml", xml: profilesXML)]
        try StateStore.encode(inline).write(to: URL(fileURLWithPath: store.path))
        XCTAssertEqual(try StateStore(directory: dir).load(), inline)
    }
}

final class ModelTests: XCTestCase {
    var system: FakeSystem!
    var model: SwitchModel!
    var commands: ControlCommands!
    var saved: [SwitchConfig] = []
    let a = "urn:vswitch:profile:tenant-a", b = "urn:vswitch:profile:tenant-b"

    override func setUp() {
        system = FakeSystem()
        model = SwitchModel(settings: SettingsConfig(), system: system, logger: Logger(label: "test"))
        commands = ControlCommands(model: model)
        commands.readFile = { path in
            guard path == "/p/tenants.xml" else { throw DaemonError("cannot read profile file \(path)") }
            return profilesXML
        }
        saved = []
        model.onChange = { [unowned self] in self.saved.append($0) }
    }

    @discardableResult
    /// Handles a request and returns the response as the client reads it (through the wire form: some
    /// results, e.g. fdb-show, are written as pre-encoded JSON text).
    func call(_ command: String, _ args: [String: JSON] = [:]) -> ControlResponse {
        let r = commands.handle(ControlRequest(command, args))
        return (try? ControlResponse.parse(Data(r.line.utf8))) ?? ControlResponse.failure("unparsable response: \(r.line)")
    }

    func ok(_ command: String, _ args: [String: JSON] = [:], file: StaticString = #filePath, line: UInt = #line) -> JSON {
        let r = call(command, args)
        XCTAssertTrue(r.ok, "\(command): \(r.error ?? "")", file: file, line: line)
        return r.result
    }

    /// A refused request: one-line error containing `contains`, and nothing changed (config and generation).
    func refused(_ command: String, _ args: [String: JSON] = [:], _ contains: String, file: StaticString = #filePath, line: UInt = #line) {
        let before = model.config, gen = model.generation, n = saved.count
        let r = call(command, args)
        XCTAssertFalse(r.ok, "\(command) should be refused", file: file, line: line)
        XCTAssertTrue(r.error?.contains(contains) == true, "error \(r.error ?? "nil") lacks \(contains)", file: file, line: line)
        XCTAssertFalse(r.error?.contains("\n") ?? true, file: file, line: line)
        XCTAssertEqual(model.config, before, file: file, line: line)
        XCTAssertEqual(model.generation, gen, "a refused request published a snapshot", file: file, line: line)
        // Nothing new is saved — or, for a change refused after its write-ahead save (the TAP could not be
        // made), the state is saved back to what it was.
        XCTAssertTrue(saved.count == n || saved.last == before, "a refused request was persisted", file: file, line: line)
    }

    func view() -> ConfigView { model.publisher.current.view.pointee }

    func loadProfiles() { _ = ok("profile-load", ["path": "/p/tenants.xml"]) }

    func testAddDeletePortsPublishAndReuseIndices() {
        loadProfiles()
        XCTAssertEqual(ok("add-port", ["name": "p0", "profile": .string(a), "mac": "02:00:00:00:00:01"])["index"], 0)
        XCTAssertEqual(ok("add-port", ["name": "p1", "profile": .string(b)])["index"], 1)
        XCTAssertEqual(ok("add-port", ["name": "p2", "profile": .string(a)])["index"], 2)
        var v = view()
        XCTAssertTrue(v.ports[1].present && v.ports[1].up)
        XCTAssertEqual(v.ports[0].mac, 0x0200_0000_0001)
        XCTAssertEqual(v.ports[0].policy.pvid, 10)
        // Flood list of VLAN 10 holds p0 and p2.
        XCTAssertEqual(Array(UnsafeBufferPointer(start: v.floodPorts + Int(v.floodStart[10]),
                                                 count: Int(v.floodStart[11] - v.floodStart[10]))), [0, 2])
        // Learned entries and static ones of a deleted port go; its index is reused first.
        _ = model.table.learn(vlan: 10, mac: 0x0200_0000_00AA, port: 1, now: 1, portLimit: .max, previousPort: &dummy)
        _ = ok("fdb-add", ["port": "p1", "vlan": 20, "mac": "02:00:00:00:00:bb"])
        XCTAssertEqual(model.table.count(port: 1), 2)
        _ = ok("del-port", ["name": "p1"])
        XCTAssertEqual(model.table.count(port: 1), 0)
        XCTAssertEqual(system.destroyed, ["p1"])
        XCTAssertTrue(model.config.fdb.isEmpty)
        v = view()
        XCTAssertFalse(v.ports[1].present)
        XCTAssertEqual(ok("add-port", ["name": "p3", "profile": .string(a)])["index"], 1)
        XCTAssertEqual(saved.last?.ports.map(\.name), ["p0", "p3", "p2"])
        XCTAssertEqual(saved.last?.ports.map(\.index), [0, 1, 2])
    }
    var dummy = 0

    func testBadRequestsChangeNothing() {
        loadProfiles()
        _ = ok("add-port", ["name": "p0", "profile": .string(a)])
        refused("add-port", ["name": "p0", "profile": .string(a)], "already exists")
        refused("add-port", ["name": "p9", "profile": "urn:nope"], "unknown profile ID urn:nope")
        refused("add-port", ["name": "taken", "profile": .string(a)], "already exists")
        refused("add-port", ["name": "p9", "profile": .string(a), "mac": "zz"], "invalid MAC")
        refused("add-port", ["name": "p9", "profile": .string(a), "mtu": 20], "MTU")
        refused("add-port", ["name": "p9", "profile": .string(a), "colour": "red"], "unknown argument")
        refused("add-port", ["profile": .string(a)], "missing argument \"name\"")
        for bad in ["p\r\nforged", "a b", "a/b", "a\"b", "", String(repeating: "x", count: 65), "caf\u{E9}"] {
            refused("add-port", ["name": .string(bad), "profile": .string(a), "type": "pcap", "file": "/dev/null"], "is not valid")
        }
        refused("del-port", ["name": "nope"], "no such port: nope")
        refused("set-port", ["name": "nope", "profile": .string(a)], "no such port")
        refused("set-port", ["name": "p0", "profile": "urn:nope"], "unknown profile ID")
        refused("set-switch", ["mac-aging-time": 5], "out of range")
        refused("set-switch", ["mac-table-size": 0], "out of range")
        refused("fdb-add", ["port": "p0", "vlan": 5000, "mac": "02:00:00:00:00:01"], "VLAN 5000")
        refused("fdb-add", ["port": "p0", "vlan": 5, "mac": "01:00:5e:00:00:01"], "unicast")
        refused("fdb-del", ["vlan": 5, "mac": "02:00:00:00:00:77"], "no MAC table entry")
        refused("profile-load", ["path": "/nope.xml"], "cannot read")
        refused("nonsense", [:], "unknown command")
        system.failAttach = ["p8"]
        refused("add-port", ["name": "p8", "profile": .string(a)], "cannot create TAP p8")
        let r = commands.handle(line: Data("{not json".utf8))
        XCTAssertFalse(r.ok)
        XCTAssertEqual(r.error, "malformed request: not valid JSON")
    }

    /// Write-ahead (session 8 review): every change is saved before it touches the switch or the system, so
    /// one that cannot be saved is refused with nothing changed — no TAP made, no snapshot, no MAC entry.
    func testAChangeThatCannotBeSavedIsRefusedWithNothingChanged() {
        loadProfiles()
        _ = ok("add-port", ["name": "p0", "profile": .string(a)])
        _ = ok("fdb-add", ["port": "p0", "vlan": 10, "mac": "02:00:00:00:00:0a"])
        model.onChange = { _ in throw DaemonError("cannot write state file: No space left on device") }
        let madeBefore = system.attached, tableBefore = model.table.liveCount
        refused("add-port", ["name": "p1", "profile": .string(a)], "No space left")
        XCTAssertEqual(system.attached, madeBefore, "no TAP is made for a change that was not saved")
        refused("del-port", ["name": "p0"], "No space left")
        XCTAssertEqual(system.destroyed, [], "nothing destroyed")
        refused("set-port", ["name": "p0", "profile": .string(b)], "No space left")
        refused("set-switch", ["mac-aging-time": 200, "mac-table-size": 500], "No space left")
        XCTAssertEqual(model.table.limit, SettingsConfig().macTableSize)
        refused("profile-load", ["path": "/p/tenants.xml"], "No space left")
        refused("fdb-add", ["port": "p0", "vlan": 10, "mac": "02:00:00:00:00:0b"], "No space left")
        refused("fdb-add", ["port": "p0", "vlan": 10, "mac": "02:00:00:00:00:0a"], "No space left")
        refused("fdb-del", ["vlan": 10, "mac": "02:00:00:00:00:0a"], "No space left")
        XCTAssertEqual(model.table.liveCount, tableBefore)
        XCTAssertEqual(model.table.lookup(vlan: 10, mac: 0x0200_0000_000A), 0, "the configured static entry is still in the table")
        XCTAssertEqual(model.table.lookup(vlan: 10, mac: 0x0200_0000_000B), -1)
    }

    /// A daemon killed while a port is being made comes back with it (the restore adopts or recreates what was
    /// half made); one killed while a deleted port's devices are destroyed removes them at its next start.
    func testPortsAreSavedBeforeTheirDevicesAreMadeOrDestroyed() {
        loadProfiles()
        var seenAtAttach: SwitchConfig?
        system.onAttach = { [unowned self] _ in seenAtAttach = self.saved.last }
        _ = ok("add-port", ["name": "p0", "profile": .string(a), "namespace": "ns0"])
        XCTAssertEqual(seenAtAttach?.ports.map(\.name), ["p0"], "saved before the TAP was made")
        var seenAtDestroy: SwitchConfig?
        system.onDestroy = { [unowned self] _ in seenAtDestroy = self.saved.last }
        _ = ok("del-port", ["name": "p0"])
        XCTAssertEqual(seenAtDestroy?.ports, [])
        XCTAssertEqual(seenAtDestroy?.removing?.map(\.name), ["p0"], "the devices being destroyed are named in the state")
        XCTAssertEqual(seenAtDestroy?.removing?.first?.namespace, "ns0")
        XCTAssertNil(saved.last?.removing, "and forgotten once they are gone")
        XCTAssertNil(model.config.removing)
        // A TAP that cannot be made: the write-ahead save is taken back.
        system.failAttach = ["p1"]
        let n = saved.count
        refused("add-port", ["name": "p1", "profile": .string(a)], "cannot create TAP p1")
        XCTAssertEqual(saved.count, n + 2)
        XCTAssertEqual(saved[n].ports.map(\.name), ["p1"])
        XCTAssertEqual(saved.last?.ports, [])
    }

    /// fdb-show's VLAN filter has the range of every other VLAN argument (it took 9999 and showed nothing).
    func testFDBShowVLANOutOfRangeIsRefused() {
        for v in [0, 4095, 9999, -1] {
            refused("fdb-show", ["vlan": .int(v)], "VLAN \(v) out of range 1–4094")
        }
        XCTAssertNotNil(ok("fdb-show", ["vlan": 4094])["entries"])
        XCTAssertNotNil(ok("fdb-show", ["vlan": 1])["entries"])
    }

    /// `show` reports the forwarding threads actually running beside the setting (0 = one per core), as a new
    /// field: `forwarding-threads=0` alone read as if nothing forwarded.
    func testShowReportsRunningForwardingThreads() {
        model.publisher.setThreadCount(3)
        let sw = ok("show")["switch"]
        XCTAssertEqual(sw?["forwarding-threads-running"], 3)
        XCTAssertEqual(sw?["settings"]?["forwarding-threads"], 0, "the setting is unchanged (backward compatible)")
    }

    func testProfilesBindingsAndReloadRefusal() {
        loadProfiles()
        _ = ok("add-port", ["name": "p0", "profile": .string(a)])
        _ = ok("set-port", ["name": "p0", "profile": .string(b)])
        XCTAssertEqual(view().ports[0].policy.pvid, 20)
        XCTAssertEqual(model.config.ports[0].profile, b)
        let show = ok("profile-show")
        XCTAssertEqual(show["profiles"]?.arrayValue?.first { $0["id"] == .string(b) }?["ports"], ["p0"])
        let xml = ok("profile-export")["xml"]?.stringValue ?? ""
        XCTAssertTrue(xml.contains(b))
        // A document that drops a bound profile is refused, whole.
        commands.readFile = { _ in profilesXML.replacingOccurrences(of: "tenant-b", with: "tenant-z") }
        refused("profile-reload", [:], "port p0 is bound to profile \(b)")
        XCTAssertEqual(ok("profile-validate", ["path": "/p/tenants.xml"])["valid"], true)   // valid as a document
        refused("profile-validate", ["path": "/p/other.xml"], "IDs must be unique")
        commands.readFile = { _ in "<broken" }
        refused("profile-load", ["path": "/p/tenants.xml"], "refused")
    }

    /// Issue 3's caches on the daemon's reload path: an unchanged profile is neither read nor compiled
    /// again, a changed one is (and the port gets its new policy), a refused reload changes no cache.
    func testReloadReusesUnchangedProfilesAndRecompilesChangedOnes() {
        loadProfiles()
        _ = ok("add-port", ["name": "p0", "profile": .string(a)])
        _ = ok("add-port", ["name": "p1", "profile": .string(b)])
        let compiles = model.compileCache.compiles
        XCTAssertEqual(compiles, 2, "one compilation per bound profile")
        _ = ok("profile-reload")
        XCTAssertEqual(model.compileCache.compiles, compiles, "nothing changed: nothing compiled")
        XCTAssertEqual(model.profileReadCaches["/p/tenants.xml"]?.reused, 4, "nothing changed: nothing read again")

        commands.readFile = { _ in profilesXML.replacingOccurrences(of: "<epasd:PortVID>10</epasd:PortVID>", with: "<epasd:PortVID>11</epasd:PortVID>") }
        _ = ok("profile-reload")
        XCTAssertEqual(view().ports[0].policy.pvid, 11, "the changed profile is read and compiled again")
        XCTAssertEqual(view().ports[1].policy.pvid, 20)
        XCTAssertEqual(model.compileCache.compiles, compiles + 1)
        XCTAssertEqual(model.profileReadCaches["/p/tenants.xml"]?.reused, 3)
        XCTAssertEqual(model.profileReadCaches["/p/tenants.xml"]?.path, .partial, "only the changed profile went through libxml2")

        let caches = model.profileReadCaches["/p/tenants.xml"], n = model.compileCache.compiles
        commands.readFile = { _ in profilesXML.replacingOccurrences(of: "<epasd:PortVID>20</epasd:PortVID>", with: "<epasd:PortVID>5000</epasd:PortVID>") }
        refused("profile-reload", [:], "is not a VLAN ID")
        XCTAssertTrue(model.profileReadCaches["/p/tenants.xml"] === caches, "a refused reload leaves the read cache")
        XCTAssertEqual(model.compileCache.compiles, n)
        XCTAssertEqual(view().ports[0].policy.pvid, 11)
        XCTAssertEqual(view().ports[1].policy.pvid, 20)
    }

    /// Spec: TransmitBurstSize / ReceiveBurstSize "refuse a depth below one full frame" — at the MTU of every
    /// port bound to the profile, on every path (not only a topology): add-port, set-port, profile-load and
    /// profile-reload. The refusal names the profile, the port, the burst and the frame size; nothing changes.
    func testBurstBelowOneFullFrameIsRefusedOnEveryPath() {
        // tenant-a with a 1,000-byte transmit burst: valid as a document (≥ 64 bytes), but below one full frame
        // (1,522 bytes) at MTU 1500; it fits a port with MTU 900 (922 bytes).
        let small = profilesXML.replacingOccurrences(
            of: "<epasd:PortVID>10</epasd:PortVID>\n      <epasd:SourceMACFilteringEnabled>false</epasd:SourceMACFilteringEnabled>",
            with: "<epasd:PortVID>10</epasd:PortVID>\n      <epasd:SourceMACFilteringEnabled>false</epasd:SourceMACFilteringEnabled>\n      <vsx:TransmitBurstSize>1000</vsx:TransmitBurstSize>")
        XCTAssertNotEqual(small, profilesXML)
        let why = "profile '\(a)' has TransmitBurstSize 1000 bytes, less than one full frame at this port's MTU 1500 (1522 bytes)"

        // profile-load and profile-reload: a bound port at MTU 1500 refuses the whole document.
        loadProfiles()
        _ = ok("add-port", ["name": "p0", "profile": .string(a)])
        _ = ok("add-port", ["name": "p1", "profile": .string(b)])
        commands.readFile = { _ in small }
        refused("profile-reload", [:], "port p0: \(why)")
        refused("profile-load", ["path": "/p/tenants.xml"], "port p0: \(why)")
        XCTAssertNil(model.profiles.profile(id: a)?.transmitBurstSize, "the running set stays as it was")
        let dryRun = ok("profile-validate", ["path": "/p/tenants.xml"])["changes"]?.arrayValue ?? []
        XCTAssertTrue(dryRun.contains { $0["port"] == "p0" && ($0["changes"]?.arrayValue ?? []).contains { $0.stringValue?.contains("\(why); raise it or lower the MTU: the load would be refused") == true } },
                      "the dry run says the load would be refused: \(dryRun)")

        // Once no port at MTU 1500 is bound to it, the document loads.
        _ = ok("del-port", ["name": "p0"])
        _ = ok("profile-reload")
        XCTAssertEqual(model.profiles.profile(id: a)?.transmitBurstSize, 1000)

        // add-port and set-port: refused at MTU 1500, accepted at MTU 900.
        refused("add-port", ["name": "p2", "profile": .string(a)], "port p2: \(why)")
        refused("set-port", ["name": "p1", "profile": .string(a)], "port p1: \(why)")
        _ = ok("add-port", ["name": "p3", "profile": .string(a), "mtu": 900])
        XCTAssertEqual(model.portConfig("p3")?.profile, a)
    }

    /// A profile document with one profile (ID `id`, InstanceID `instanceID`).
    static func oneProfile(id: String, instanceID: String) -> String {
        """
        <?xml version="1.0" encoding="UTF-8"?>
        <vsx:NetworkPortProfiles FormatVersion="1.0"
            xmlns:vsx="urn:vswitch:port-profile:1"
            xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/2"
            xmlns:epasd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_EthernetPortAllocationSettingData">
          <ovf:NetworkPortProfile>
            <ovf:Item>
              <epasd:ElementName>other</epasd:ElementName>
              <epasd:InstanceID>\(instanceID)</epasd:InstanceID>
              <epasd:NetworkPortProfileID>\(id)</epasd:NetworkPortProfileID>
              <epasd:NetworkPortProfileIDType>2</epasd:NetworkPortProfileIDType>
            </ovf:Item>
          </ovf:NetworkPortProfile>
        </vsx:NetworkPortProfiles>

        """
    }

    /// Spec: "InstanceID unique" — across the loaded set, as the ID is, not only within one document.
    func testInstanceIDsAreUniqueAcrossProfileFiles() {
        loadProfiles()
        let other = Self.oneProfile(id: "urn:vswitch:profile:other", instanceID: "vswitch.example:tenant-a")
        commands.readFile = { $0 == "/p/other.xml" ? other : profilesXML }
        refused("profile-load", ["path": "/p/other.xml"],
                "InstanceID 'vswitch.example:tenant-a' is already used by profile urn:vswitch:profile:tenant-a in /p/tenants.xml (line 23); InstanceIDs must be unique across profile files")
        XCTAssertThrowsError(try SwitchModel.merge([ProfileSource(path: "/p/tenants.xml", xml: profilesXML),
                                                    ProfileSource(path: "/p/other.xml", xml: other)]))
        // A distinct InstanceID loads.
        let fine = Self.oneProfile(id: "urn:vswitch:profile:other", instanceID: "vswitch.example:other")
        commands.readFile = { $0 == "/p/other.xml" ? fine : profilesXML }
        _ = ok("profile-load", ["path": "/p/other.xml"])
        XCTAssertEqual(model.profiles.profiles.count, 5)
    }

    /// Every profile error names file, line, column, the profile and the element — the cross-file ones too: the
    /// position of the duplicate's element in the later file, and the line of the first one.
    func testCrossFileDuplicateErrorsAreLocated() {
        loadProfiles()
        let dupID = Self.oneProfile(id: a, instanceID: "vswitch.example:new")
        let dupInstance = Self.oneProfile(id: "urn:vswitch:profile:other", instanceID: "vswitch.example:tenant-b")
        commands.readFile = { $0 == "/p/dupid.xml" ? dupID : $0 == "/p/dupinstance.xml" ? dupInstance : profilesXML }
        refused("profile-load", ["path": "/p/dupid.xml"],
                "profile file /p/dupid.xml refused: /p/dupid.xml:10:7: error: [profile \(a)] <epasd:NetworkPortProfileID>: NetworkPortProfileID '\(a)' is already used by profile \(a) in /p/tenants.xml (line 24); IDs must be unique across profile files")
        refused("profile-load", ["path": "/p/dupinstance.xml"],
                "profile file /p/dupinstance.xml refused: /p/dupinstance.xml:9:7: error: [profile urn:vswitch:profile:other] <epasd:InstanceID>: InstanceID 'vswitch.example:tenant-b' is already used by profile \(b) in /p/tenants.xml (line 35); InstanceIDs must be unique across profile files")
        refused("profile-validate", ["path": "/p/dupid.xml"], "/p/dupid.xml:10:7: error: ")
        // The same after a reload went through the read cache (positions do not come from the cache).
        _ = ok("profile-reload")
        refused("profile-load", ["path": "/p/dupid.xml"], "/p/dupid.xml:10:7: error: [profile \(a)] <epasd:NetworkPortProfileID>")
    }

    /// Whatever multi-file set the daemon accepts, `profile export` writes one document that loads again, with
    /// the same profiles: every ordered pair and the whole list of the shipped and test profile documents.
    func testExportOfAnyAcceptedMultiFileSetLoadsAgain() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        var docs: [ProfileSource] = []
        for path in ["topologies/profiles/tenants.xml", "topologies/profiles/examples.xml",
                     "Tests/VSwitchProfilesTests/Fixtures/valid-form1.xml", "Tests/VSwitchProfilesTests/Fixtures/ovf-envelope.xml",
                     "Tests/VSwitchProfilesTests/Fixtures/topology/profiles.xml",
                     "Tests/VSwitchProfilesTests/Fixtures/topology/more-profiles.xml",
                     "Tests/VSwitchProfilesTests/Fixtures/topology/clash-profiles.xml"] {
            docs.append(ProfileSource(path: path, xml: try String(contentsOf: root.appendingPathComponent(path), encoding: .utf8)))
        }
        docs.append(ProfileSource(path: "same-instance.xml", xml: Self.oneProfile(id: "urn:test:violet", instanceID: "test:red")))
        docs.append(ProfileSource(path: "same-instance-2.xml", xml: Self.oneProfile(id: "urn:test:indigo", instanceID: "example.org:web")))
        var sets: [[ProfileSource]] = [docs]
        for i in docs.indices { for j in docs.indices where i != j { sets.append([docs[i], docs[j]]) } }
        var accepted = 0, refusedSets = 0
        for sources in sets {
            guard let set = try? SwitchModel.merge(sources) else { refusedSets += 1; continue }
            accepted += 1
            let xml = ProfileWriter.write(set.profiles)
            let names = sources.map(\.path).joined(separator: " + ")
            do {
                let again = try ProfileLoader.load(data: Array(xml.utf8), fileName: "export.xml")
                XCTAssertEqual(again.ids, set.ids, names)
            } catch {
                XCTFail("the export of \(names) does not load again: \(error)")
            }
        }
        XCTAssertGreaterThan(accepted, 30)
        XCTAssertGreaterThan(refusedSets, 8)
    }

    func testSettingsFlushAndTableReplacement() {
        loadProfiles()
        _ = ok("add-port", ["name": "p0", "profile": .string(a)])
        _ = ok("add-port", ["name": "p1", "profile": .string(b)])
        for m in UInt64(1)...5 { _ = model.table.learn(vlan: 10, mac: 0x0200_0000_0000 | m, port: 0, now: 1, portLimit: .max, previousPort: &dummy) }
        for m in UInt64(6)...8 { _ = model.table.learn(vlan: 20, mac: 0x0200_0000_0000 | m, port: 1, now: 1, portLimit: .max, previousPort: &dummy) }
        _ = ok("fdb-add", ["port": "p0", "vlan": 10, "mac": "02:00:00:00:00:99"])
        XCTAssertEqual(ok("fdb-stats")["entries"], 9)
        let old = model.table
        _ = ok("set-switch", ["mac-table-size": 2000, "mac-aging-time": 60])
        XCTAssertEqual(model.table.limit, 2000)
        XCTAssertNotEqual(model.table.capacity, old.capacity == model.table.capacity ? -1 : old.capacity)
        XCTAssertEqual(view().macTable.limit, 2000, "the new table is published")
        XCTAssertEqual(model.table.liveCount, 9, "entries carried over")
        XCTAssertEqual(model.config.settings.macAgingTime, 60)
        XCTAssertEqual(ok("fdb-flush", ["vlan": 20])["flushed"], 3)
        XCTAssertEqual(ok("fdb-flush", ["port": "p0"])["flushed"], 5)
        XCTAssertEqual(ok("fdb-show")["entries"]?.arrayValue?.count, 1, "the static entry stays")
        XCTAssertEqual(ok("fdb-show")["entries"]?.arrayValue?.first?["static"], true)
        _ = ok("fdb-del", ["vlan": 10, "mac": "02:00:00:00:00:99"])
        XCTAssertEqual(model.table.liveCount, 0)
        XCTAssertTrue(model.config.fdb.isEmpty)
    }

    func testLinkDownFlushesAndStopsForwardingUpResumes() {
        loadProfiles()
        _ = ok("add-port", ["name": "p0", "profile": .string(a)])
        _ = model.table.learn(vlan: 10, mac: 0x0200_0000_0001, port: 0, now: 1, portLimit: .max, previousPort: &dummy)
        system.links["p0"] = .down
        model.recheckLinks(["p0"])
        XCTAssertFalse(view().ports[0].up)
        XCTAssertEqual(view().floodStart[11] - view().floodStart[10], 0)
        XCTAssertEqual(model.table.count(port: 0), 0)
        XCTAssertEqual(ok("port-stats", ["port": "p0"])["ports"]?.arrayValue?.first?["link"], "down")
        system.links["p0"] = .up
        model.recheckLinks()
        XCTAssertTrue(view().ports[0].up)
        model.setLink("p0", .gone)
        XCTAssertEqual(ok("show")["ports"]?.arrayValue?.first?["link"], "detached")
    }

    func testApplyAndRestoreConfiguration() throws {
        var c = SwitchConfig()
        c.settings.macAgingTime = 77
        c.profiles = [ProfileSource(path: "/p/tenants.xml", xml: profilesXML)]
        c.ports = [PortConfig(index: 4, name: "x", profile: a), PortConfig(index: 1, name: "y", profile: b)]
        c.fdb = [StaticFDBEntry(port: "x", vlan: 10, mac: "02:00:00:00:00:10")]
        system.failAttach = ["y"]
        try model.apply(c, restore: true)
        XCTAssertEqual(model.index(of: "x"), 4)
        XCTAssertEqual(model.linkStatus("y"), .gone, "a port that cannot be restored is kept, detached")
        XCTAssertEqual(model.table.lookup(vlan: 10, mac: 0x0200_0000_0010), 4)
        XCTAssertEqual(saved.count, 1)
        XCTAssertEqual(saved.last?.ports.map(\.name), ["y", "x"])
        XCTAssertEqual(saved.last?.settings.macAgingTime, 77)
    }
}

/// `profile-load` / `profile-validate` with the daemon's own file reading (not the injected reader of ModelTests):
/// a path that is not a regular file is refused as such, a missing or unreadable one with its real errno (it said
/// "Resource temporarily unavailable": strerror(errno) read after FileManager had returned nil), and a relative
/// path is refused (docs/control-protocol.md: the daemon's working directory is not the operator's).
final class ProfileFileReadingTests: XCTestCase {
    var model: SwitchModel!
    var commands: ControlCommands!
    var dir = ""

    override func setUpWithError() throws {
        model = SwitchModel(settings: SettingsConfig(), system: FakeSystem(), logger: Logger(label: "test"))
        commands = ControlCommands(model: model)   // the default readFile
        dir = NSTemporaryDirectory() + "vsw-profile-read-\(getpid())"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    }

    override func tearDown() { try? FileManager.default.removeItem(atPath: dir) }

    func error(_ command: String, _ path: String, file: StaticString = #filePath, line: UInt = #line) -> String {
        let r = commands.handle(ControlRequest(command, ["path": .string(path)]))
        XCTAssertFalse(r.ok, "\(command) \(path) accepted", file: file, line: line)
        XCTAssertEqual(model.profiles.ids, [], file: file, line: line)
        return r.error ?? ""
    }

    func testNonRegularFilesAreRefusedAsSuch() {
        for path in ["/dev/null", "/dev/zero", dir] {
            for command in ["profile-load", "profile-validate"] {
                let e = error(command, path)
                XCTAssertTrue(e.contains("\(path) is not a regular file"), "\(command) \(path): \(e)")
                XCTAssertFalse(e.contains("Resource temporarily unavailable"), e)
            }
        }
    }

    func testMissingFileReportsItsOwnErrno() {
        let e = error("profile-load", dir + "/missing.xml")
        XCTAssertTrue(e.contains("cannot read profile file \(dir)/missing.xml: No such file or directory"), e)
    }

    func testRelativePathIsRefused() throws {
        try profilesXML.write(toFile: dir + "/tenants.xml", atomically: true, encoding: .utf8)
        let cwd = FileManager.default.currentDirectoryPath
        XCTAssertTrue(FileManager.default.changeCurrentDirectoryPath(dir))
        defer { _ = FileManager.default.changeCurrentDirectoryPath(cwd) }
        for command in ["profile-load", "profile-validate"] {
            let e = error(command, "tenants.xml")
            XCTAssertTrue(e.contains("must be an absolute path"), "\(command): \(e)")
        }
    }

    func testRegularFileLoads() throws {
        try profilesXML.write(toFile: dir + "/tenants.xml", atomically: true, encoding: .utf8)
        let r = commands.handle(ControlRequest("profile-load", ["path": .string(dir + "/tenants.xml")]))
        XCTAssertTrue(r.ok, r.error ?? "")
        XCTAssertFalse(model.profiles.ids.isEmpty)
    }

    /// A FIFO: refused at once, without waiting for a writer (the daemon opens it non-blocking).
    func testFIFOIsRefusedWithoutBlocking() throws {
        let fifo = dir + "/fifo.xml"
        XCTAssertEqual(mkfifo(fifo, 0o600), 0)
        let start = Date()
        let e = error("profile-load", fifo)
        XCTAssertTrue(e.contains("\(fifo) is not a regular file"), e)
        XCTAssertLessThan(Date().timeIntervalSince(start), 2)
    }
}

/// The hand-written JSON reader (JSONReader): what Foundation's decoder accepted, it accepts, with the same
/// values; malformed documents are refused with the offset.
final class JSONReaderTests: XCTestCase {
    func testValues() throws {
        XCTAssertEqual(try JSON.parse(#" {"a" : [1, -2, 3.5, 1e3, -0.25E-1, true, false, null, "", {}, []]} "#),
                       ["a": [1, -2, .double(3.5), .double(1000), .double(-0.025), true, false, nil, "", .object([:]), .array([])]])
        XCTAssertEqual(try JSON.parse(#""\"\\\/\b\f\n\r\t\u0041\u00e9\ud83d\ude00""#), .string("\"\\/\u{8}\u{C}\n\r\tAé😀"))
        XCTAssertEqual(try JSON.parse("\"héllo\""), "héllo")
        XCTAssertEqual(try JSON.parse("12345678901234567890"), .double(12345678901234567890.0), "beyond Int: a double")
        let big: JSON = .array((0..<1000).map { i in ["port": .string("p\(i)"), "vlan": .int(i), "static": .bool(i % 2 == 0)] })
        XCTAssertEqual(try JSON.parse(big.description), big)
        XCTAssertEqual(try JSON.parse(JSON.raw(#"{"x":[1,"y"]}"#).description), ["x": [1, "y"]])
    }

    func testMalformed() {
        for bad in ["", "{", "[1,]", "{\"a\" 1}", "{\"a\":1,}", "01", "1.", "-", "tru", "\"abc", "\"a\u{1}b\"", "[1] x",
                    "\"\\x\"", "\"\\u12\"", "{1:2}", String(repeating: "[", count: 300) + String(repeating: "]", count: 300)] {
            XCTAssertThrowsError(try JSON.parse(bad), bad)
        }
    }
}

/// `--metrics-listen`: the HTTP responder's answers, without sockets.
final class MetricsHTTPTests: XCTestCase {
    func answer(_ head: String) -> String {
        String(decoding: MetricsHTTPServer.response(head: Array(head.utf8), render: { "vswitch_x 1\n" }), as: UTF8.self)
    }

    func testResponses() throws {
        let ok = answer("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        XCTAssertTrue(ok.hasPrefix("HTTP/1.1 200 OK\r\n"))
        XCTAssertTrue(ok.contains("Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n"))
        XCTAssertTrue(ok.contains("Content-Length: 12\r\n"))
        XCTAssertTrue(ok.hasSuffix("\r\n\r\nvswitch_x 1\n"))
        XCTAssertTrue(answer("GET /metrics?name=x HTTP/1.0\n\n").hasSuffix("vswitch_x 1\n"), "query ignored, bare LF accepted")
        let head = answer("HEAD /metrics HTTP/1.1\r\n\r\n")
        XCTAssertTrue(head.hasPrefix("HTTP/1.1 200") && head.hasSuffix("\r\n\r\n"), "HEAD: headers only")
        XCTAssertTrue(answer("GET / HTTP/1.1\r\n\r\n").hasPrefix("HTTP/1.1 404"))
        let post = answer("POST /metrics HTTP/1.1\r\n\r\n")
        XCTAssertTrue(post.hasPrefix("HTTP/1.1 405") && post.contains("Allow: GET, HEAD\r\n"))
        XCTAssertTrue(answer("hello\r\n\r\n").hasPrefix("HTTP/1.1 400"))
        XCTAssertTrue(answer("GET /metrics SPDY/3\r\n\r\n").hasPrefix("HTTP/1.1 400"))
    }

    func testListenAddresses() throws {
        XCTAssertEqual(try MetricsHTTPServer.parse("127.0.0.1:9477").host, "127.0.0.1")
        XCTAssertEqual(try MetricsHTTPServer.parse("localhost:9477").host, "127.0.0.1")
        XCTAssertEqual(try MetricsHTTPServer.parse("[::1]:9477").host, "::1")
        XCTAssertEqual(try MetricsHTTPServer.parse("[::1]:9477").port, 9477)
        for bad in ["9477", "127.0.0.1:0", "127.0.0.1:70000", "127.0.0.1:http"] {
            XCTAssertThrowsError(try MetricsHTTPServer.parse(bad), bad)
        }
    }
}
