import XCTest
import VSwitchXML
import VSwitchPacket
@testable import VSwitchProfiles
@testable import VSwitchTopology

final class TopologyTests: XCTestCase {
    func topologyError(_ path: String) -> TopologyLoadError? {
        do {
            _ = try TopologyLoader.load(path: path)
            return nil
        } catch let e as TopologyLoadError {
            return e
        } catch {
            XCTFail("unexpected error \(error)")
            return nil
        }
    }

    func testValidTopologyReadsEverything() throws {
        let t = try TopologyLoader.load(path: Fixture.path("topology/valid.xml"))
        XCTAssertEqual(t.name, "lab")
        XCTAssertEqual(t.path, Fixture.path("topology/valid.xml"))
        XCTAssertEqual(t.settings, SwitchSettings(macAgingTime: 120, macTableSize: 4096, forwardingThreads: 2, maxMACsPerPort: 64))
        XCTAssertEqual(t.profileFiles, [Fixture.path("topology/profiles.xml"), Fixture.path("topology/more-profiles.xml")])
        XCTAssertEqual(t.profiles.ids, ["urn:test:red", "4a1b2c3d-0000-4000-8000-00000000000b", "urn:test:green"])
        XCTAssertEqual(t.ports.map(\.name), ["vsw-red", "vsw_blue.1", "trunk0"])

        let red = t.ports[0]
        XCTAssertEqual(red.kind, .tap)
        XCTAssertEqual(red.profileID, "urn:test:red")
        XCTAssertEqual(red.mtu, 9000)
        XCTAssertEqual(red.adopt, false)
        XCTAssertEqual(red.mac, MACAddress(2, 0, 0, 0, 0, 1), "the binding is the VirtualSystem's MAC")
        XCTAssertEqual(red.virtualSystem, VirtualSystem(namespace: "ns-red", interfaceName: "veth.red-0",
                                                       mac: MACAddress(2, 0, 0, 0, 0, 1),
                                                       addresses: ["192.0.2.10/24", "2001:db8::10/64"]))
        let blue = t.ports[1]
        XCTAssertEqual(blue.profileID, "4a1b2c3d-0000-4000-8000-00000000000b", "UUID matched case-insensitively, stored as the profile spells it")
        XCTAssertEqual(blue.mtu, 1500)
        XCTAssertEqual(blue.adopt, true)
        XCTAssertEqual(blue.mac, MACAddress(2, 0, 0, 0, 0, 2), "no VirtualSystem: the MACAddress attribute")
        XCTAssertNil(blue.virtualSystem)
        XCTAssertEqual(t.ports[2].mtu, 68)
        XCTAssertNil(t.ports[2].mac)

        XCTAssertEqual(t.warnings.count, 3, "\(t.warnings)")
        XCTAssertTrue(t.warnings.contains { $0.line == 7 && $0.message.contains("foreign namespace 'urn:example:notes' ignored") })
        XCTAssertTrue(t.warnings.contains { $0.line == 9 && $0.column == 5 && $0.message.contains("foreign namespace") },
                      "a foreign element before VirtualSystem is ignored, not an XSD error")
        XCTAssertTrue(t.warnings.contains { $0.line == 16 && $0.message.contains("every frame from it will be dropped") })
    }

    func testNetdevPortNamesItsInterface() throws {
        let dir = NSTemporaryDirectory() + "vsw-topo-\(getpid())"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let xml = """
        <?xml version="1.0" encoding="UTF-8"?>
        <Topology xmlns="urn:vswitch:topology:1" Name="t">
          <ProfileFile Path="\(Fixture.path("topology/profiles.xml"))"/>
          <Port Name="up0" Type="netdev" Interface="veth-up" Profile="urn:test:red" MACAddress="02:00:00:00:00:09"/>
        </Topology>
        """
        try xml.write(toFile: dir + "/t.xml", atomically: true, encoding: .utf8)
        let t = try TopologyLoader.load(path: dir + "/t.xml")
        XCTAssertEqual(t.ports.count, 1)
        XCTAssertEqual(t.ports[0].kind, .netdev)
        XCTAssertEqual(t.ports[0].interface, "veth-up")
        XCTAssertEqual(t.ports[0].mac, MACAddress(2, 0, 0, 0, 0, 9))
        XCTAssertNil(t.ports[0].virtualSystem)
    }

    func testDefaultsWhenSwitchIsAbsent() {
        XCTAssertEqual(SwitchSettings(), SwitchSettings(macAgingTime: 300, macTableSize: 65536, forwardingThreads: 0, maxMACsPerPort: nil))
    }

    /// Fixtures/topology/bad/*.xml: refused, with exactly the announced diagnostics about the topology file.
    func testBadTopologiesAreRefusedWithLocatedDiagnostics() {
        let files = Fixture.files(in: "topology/bad")
        XCTAssertGreaterThanOrEqual(files.count, 15)
        for path in files {
            let name = (path as NSString).lastPathComponent
            let expectations = Expectation.parse(fixture: path)
            XCTAssertFalse(expectations.isEmpty, "\(name): no expectations")
            guard let e = topologyError(path) else { XCTFail("\(name): loaded, but it must be refused"); continue }
            let own = e.diagnostics.filter { $0.file == path }
            for x in expectations where !own.contains(where: { x.isMet(by: $0, file: path) }) {
                XCTFail("\(name): missing \(x)\n  got:\n    " + e.diagnostics.map(\.description).joined(separator: "\n    "))
            }
            for d in own where !expectations.contains(where: { $0.isMet(by: d, file: path) }) {
                XCTFail("\(name): unexpected \(d)")
            }
            if !["broken-profile-file.xml", "profile-clash.xml", "instanceid-clash.xml"].contains(name) {
                XCTAssertEqual(own.count, e.diagnostics.count, "\(name): diagnostics about other files: \(e)")
            }
        }
    }

    func testProfileFileDiagnosticsKeepTheirFileName() {
        let e = topologyError(Fixture.path("topology/bad/broken-profile-file.xml"))
        let profileFile = Fixture.path("topology/broken-profiles.xml")
        let d = e?.diagnostics.first { $0.file == profileFile }
        XCTAssertEqual(d?.line, 13)
        XCTAssertEqual(d?.profile, "urn:test:broken")
        XCTAssertTrue(d?.description.hasPrefix("\(profileFile):13:7: error: [profile urn:test:broken] <epasd:PortVID>: '9999' is not a VLAN ID") ?? false,
                      "\(String(describing: d))")
        XCTAssertFalse(e?.description.contains("unknown profile") ?? true, "no echo errors for ports bound to the refused file's profiles")
    }

    func testMissingTopologyFile() {
        let e = topologyError("/nonexistent/topology.xml")
        XCTAssertEqual(e?.diagnostics.first?.file, "/nonexistent/topology.xml")
        XCTAssertTrue(e?.description.contains("No such file") ?? false)
    }

    func testLoadProfilesForReloadChecksIDsAcrossFiles() throws {
        let a = Fixture.path("topology/profiles.xml"), b = Fixture.path("topology/more-profiles.xml")
        let set = try TopologyLoader.loadProfiles(paths: [a, b])
        XCTAssertEqual(set.ids, ["urn:test:red", "4a1b2c3d-0000-4000-8000-00000000000b", "urn:test:green"])
        XCTAssertThrowsError(try TopologyLoader.loadProfiles(paths: [a, Fixture.path("topology/clash-profiles.xml")])) { error in
            XCTAssertTrue("\(error)".contains("also defined in \(a)") || "\(error)".contains("is already used by profile urn:test:red in \(a)"), "\(error)")
        }
        XCTAssertThrowsError(try TopologyLoader.loadProfiles(paths: [a, Fixture.path("topology/instanceid-clash-profiles.xml")])) { error in
            XCTAssertTrue("\(error)".contains("InstanceID 'test:red' is already used by profile urn:test:red in \(a)"), "\(error)")
        }
        // Located (D4): the duplicate's element in the later file, the first one's line.
        let clash = Fixture.path("topology/clash-profiles.xml"), instance = Fixture.path("topology/instanceid-clash-profiles.xml")
        XCTAssertThrowsError(try TopologyLoader.loadProfiles(paths: [a, clash])) { error in
            XCTAssertTrue("\(error)".contains("\(clash):11:7: error: [profile urn:test:red] <epasd:NetworkPortProfileID>: NetworkPortProfileID 'urn:test:red' is already used by profile urn:test:red in \(a) (line 11); IDs must be unique across profile files"), "\(error)")
        }
        XCTAssertThrowsError(try TopologyLoader.loadProfiles(paths: [a, instance])) { error in
            XCTAssertTrue("\(error)".contains("\(instance):10:7: error: [profile urn:test:violet] <epasd:InstanceID>: InstanceID 'test:red' is already used by profile urn:test:red in \(a) (line 10); InstanceIDs must be unique across profile files"), "\(error)")
        }
        // The topology path: the error at the ProfileFile element, and the located one in the profile file.
        let e = topologyError(Fixture.path("topology/bad/profile-clash.xml"))
        XCTAssertTrue(e?.diagnostics.contains { $0.file == clash && $0.line == 11 && $0.column == 7 && $0.element == "epasd:NetworkPortProfileID" && $0.profile == "urn:test:red" } ?? false,
                      "\(String(describing: e))")
    }

    // MARK: the demo files shipped in topologies/

    var topologies: URL { Fixture.packageRoot.appendingPathComponent("topologies") }

    func testDemoProfiles() throws {
        let set = try ProfileLoader.load(path: topologies.appendingPathComponent("profiles/tenants.xml").path)
        XCTAssertEqual(set.warnings, [])
        XCTAssertEqual(set.ids, ["urn:vswitch:profile:tenant-a", "urn:vswitch:profile:tenant-b",
                                 "urn:vswitch:profile:trunk-ab", "urn:vswitch:profile:trunk-native"])
        let a = try XCTUnwrap(set.profile(id: "urn:vswitch:profile:tenant-a"))
        XCTAssertEqual(a.mode, .access)
        XCTAssertEqual(a.effectivePortVID, 10)
        let b = try XCTUnwrap(set.profile(id: "urn:vswitch:profile:tenant-b"))
        XCTAssertEqual(b.effectivePortVID, 20)
        let ab = try XCTUnwrap(set.profile(id: "urn:vswitch:profile:trunk-ab"))
        XCTAssertEqual(ab.mode, .trunk)
        XCTAssertEqual(ab.trunkedVLANs, [10, 20])
        XCTAssertNil(ab.effectivePortVID)
        XCTAssertEqual(ab.effectiveAcceptableFrameTypes, .taggedOnly)
        let native = try XCTUnwrap(set.profile(id: "urn:vswitch:profile:trunk-native"))
        XCTAssertEqual(native.trunkedVLANs, [10, 20, 30])
        XCTAssertEqual(native.effectivePortVID, 30)
        XCTAssertEqual(native.effectiveNativeVLANEgressTagged, false)
        XCTAssertEqual(native.effectiveDefaultPriority, 3)
        XCTAssertTrue(set.profiles.allSatisfy { $0.sourceMACFilteringEnabled == false })
    }

    func testDemoDefaultTopology() throws {
        let t = try TopologyLoader.load(path: topologies.appendingPathComponent("default.xml").path)
        XCTAssertEqual(t.warnings, [])
        XCTAssertEqual(t.name, "default")
        XCTAssertEqual(t.settings, SwitchSettings())
        XCTAssertEqual(t.profileFiles, [topologies.appendingPathComponent("profiles/tenants.xml").path])
        XCTAssertEqual(t.ports.map(\.name), ["vsw-a1", "vsw-a2", "vsw-b1", "vsw-b2", "vsw-t1"])
        XCTAssertEqual(t.ports.map(\.profileID), ["urn:vswitch:profile:tenant-a", "urn:vswitch:profile:tenant-a",
                                                  "urn:vswitch:profile:tenant-b", "urn:vswitch:profile:tenant-b",
                                                  "urn:vswitch:profile:trunk-ab"])
        XCTAssertEqual(t.ports.map { $0.virtualSystem?.namespace }, ["vs-a1", "vs-a2", "vs-b1", "vs-b2", "vs-t1"])
        XCTAssertEqual(t.ports.map { $0.mac?.description }, ["02:00:00:00:0a:01", "02:00:00:00:0a:02", "02:00:00:00:0b:01",
                                                             "02:00:00:00:0b:02", "02:00:00:00:0c:01"])
        XCTAssertEqual(t.ports.map { $0.virtualSystem?.addresses ?? [] },
                       [["10.0.10.1/24"], ["10.0.10.2/24"], ["10.0.10.3/24"], ["10.0.10.4/24"], []])
        XCTAssertTrue(t.ports.allSatisfy { $0.kind == .tap && $0.mtu == 1500 && !$0.adopt && $0.virtualSystem?.interfaceName == "eth0" })
    }

    func testDemoFloodTopology() throws {
        let t = try TopologyLoader.load(path: topologies.appendingPathComponent("flood.xml").path)
        XCTAssertEqual(t.warnings, [])
        XCTAssertEqual(t.ports.count, 16)
        for (i, p) in t.ports.enumerated() {
            let n = i + 1
            let nn = n < 10 ? "0\(n)" : "\(n)"
            XCTAssertEqual(p.name, "vsw-f\(nn)")
            XCTAssertEqual(p.profileID, "urn:vswitch:profile:tenant-a")
            XCTAssertEqual(p.virtualSystem?.namespace, "vs-f\(nn)")
            XCTAssertEqual(p.virtualSystem?.addresses, ["10.0.20.\(n)/24"])
            XCTAssertEqual(p.mac?.description, "02:00:00:00:f0:\(nn)")
        }
        XCTAssertEqual(t.profiles.profile(id: "urn:vswitch:profile:tenant-a")?.effectivePortVID, 10)
    }
}
