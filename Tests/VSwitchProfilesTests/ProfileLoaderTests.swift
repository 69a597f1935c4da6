import XCTest
import VSwitchXML
import VSwitchPolicy
import VSwitchPacket
@testable import VSwitchProfiles

final class ProfileLoaderTests: XCTestCase {
    func testValidForm1ReadsEveryElement() throws {
        let set = try ProfileLoader.load(path: Fixture.path("valid-form1.xml"))
        XCTAssertEqual(set.warnings, [])
        XCTAssertEqual(set.ids, ["urn:example:profile:web", "6F1C2A3E-0B4D-4E5F-8A9B-0C1D2E3F4A5B", "vsi-0001", "legacy-17"])

        let p = set.profiles[0]
        XCTAssertEqual(p.networkPortProfileIDType, .uri)
        XCTAssertEqual(p.elementName, "Web tier")
        XCTAssertEqual(p.instanceID, "example.org:web")
        XCTAssertEqual(p.caption, "web")
        XCTAssertEqual(p.description, "Front-end servers & proxies")
        XCTAssertEqual(p.mode, .trunk)
        XCTAssertEqual(p.portVID, 100)
        XCTAssertEqual(p.defaultPortVID, 200)
        XCTAssertEqual(p.effectivePortVID, 100)
        XCTAssertEqual(p.trunkedVLANs, [100, 101] + Array(300...310))
        XCTAssertEqual(p.acceptableFrameTypes, .all)
        XCTAssertEqual(p.nativeVLANEgressTagged, true)
        XCTAssertEqual(p.defaultPriority, 3)
        XCTAssertEqual(p.allowedPriorities, [0, 3, 5])
        XCTAssertEqual(p.priorityViolationAction, .drop)
        XCTAssertEqual(p.sourceMACFilteringEnabled, true)
        XCTAssertEqual(p.allowedToTransmit, [
            MACVLANPair(mac: MACAddress(2, 0, 0, 0, 1, 1), vlan: 100),
            MACVLANPair(mac: MACAddress(2, 0, 0, 0, 1, 2), vlan: nil),   // xsi:nil = any VLAN
            MACVLANPair(mac: MACAddress(2, 0, 0, 0, 1, 3), vlan: 101),
        ])
        XCTAssertEqual(p.allowedToReceive, [MACVLANPair(mac: MACAddress(0x01, 0, 0x5e, 0, 0, 0xfb), vlan: 100)], "receive MACs may be multicast")
        XCTAssertEqual(p.promiscuous, false)
        XCTAssertEqual(p.allocationUnits, "bit / second * 10^6")
        XCTAssertEqual(p.limit, 1_000_000_000)
        XCTAssertEqual(p.reservation, 100_000_000)
        XCTAssertEqual(p.receiveBandwidthLimit, 2_000_000_000)
        XCTAssertEqual(p.receiveBandwidthReservation, 0)
        XCTAssertEqual(p.transmitBurstSize, 125_000)
        XCTAssertEqual(p.receiveBurstSize, 250_000)
        XCTAssertEqual(p.maxNumMACAddress, 16)
        XCTAssertEqual(p.macLimitAction, .forwardUnlearned)
        XCTAssertEqual(p.broadcastStormLimit, 1000)
        XCTAssertEqual(p.multicastStormLimit, 2000)
        XCTAssertEqual(p.unknownUnicastStormLimit, 0)
        XCTAssertEqual(p.monitorMode, .source)
        XCTAssertEqual(p.monitorSession, "tap-1")
        XCTAssertEqual(p.enableDhcpGuard, true)
        XCTAssertEqual(p.enableRouterGuard, false)
        XCTAssertEqual(p.inboundAclDefaultAction, .deny)
        XCTAssertEqual(p.outboundAclDefaultAction, .allow)
        XCTAssertEqual(p.managerID, "manager-1")
        XCTAssertEqual(p.groupID, 7)
        XCTAssertEqual(p.vsiTypeID, 16_777_215)
        XCTAssertEqual(p.vsiTypeIDVersion, 255)
        XCTAssertEqual(p.portCorrelationID, "corr-42")

        XCTAssertEqual(p.acls.map(\.name), ["http-in", "ping6", "mac-block", "arp"])
        let http = p.acls[0]
        XCTAssertEqual(http.direction, .inbound)
        XCTAssertEqual(http.action, .allow)
        XCTAssertEqual(http.weight, 100)
        XCTAssertEqual(http.etherType, 0x0800)
        XCTAssertEqual(http.proto, "TCP")
        XCTAssertEqual(http.localIP, "10.0.0.0/24")
        XCTAssertEqual(http.remoteIP, "ANY")
        XCTAssertEqual(http.localPort, "80")
        XCTAssertEqual(http.remotePort, "1024-65535")
        XCTAssertEqual(p.acls[1].direction, .both)
        XCTAssertEqual(p.acls[1].icmpType, 128)
        XCTAssertEqual(p.acls[1].icmpCode, 0)
        XCTAssertEqual(p.acls[2].localMAC, MACAddress(2, 0, 0, 0, 1, 1))
        XCTAssertEqual(p.acls[2].remoteMAC, MACAddress(2, 0xaa, 0xbb, 0xcc, 0xdd, 0xee))
        XCTAssertEqual(p.acls[2].vlanID, 100)
        XCTAssertEqual(p.acls[2].priority, 5)
        XCTAssertEqual(p.acls[3].etherType, 0x0806, "decimal 2054 is accepted")

        let qinq = set.profiles[1]
        XCTAssertEqual(qinq.networkPortProfileIDType, .uuid)
        XCTAssertEqual(qinq.mode, .dot1qTunnel)
        XCTAssertEqual(qinq.effectivePortVID, 3000)

        let vsi = set.profiles[2]
        XCTAssertEqual(vsi.networkPortProfileIDType, .vsiInstanceID)
        XCTAssertNil(vsi.desiredVLANEndpointMode)
        XCTAssertEqual(vsi.mode, .access, "absent DesiredVLANEndpointMode = Access")
        XCTAssertEqual(vsi.effectivePortVID, 1, "access without PortVID/DefaultPortVID is in VLAN 1 (Linux bridge default pvid)")
        XCTAssertEqual(vsi.effectiveSourceMACFiltering, true, "SourceMACFilteringEnabled defaults to true")

        let legacy = set.profiles[3]
        XCTAssertEqual(legacy.networkPortProfileIDType, .other)
        XCTAssertEqual(legacy.otherNetworkPortProfileIDTypeInfo, "CMDB asset tag")
    }

    func testProfileLookupIgnoresCaseOnlyForUUIDs() throws {
        let set = try ProfileLoader.load(path: Fixture.path("valid-form1.xml"))
        XCTAssertEqual(set.profile(id: "6f1c2a3e-0b4d-4e5f-8a9b-0c1d2e3f4a5b")?.elementName, "QinQ customer")
        XCTAssertEqual(set.profile(id: "6F1C2A3E-0B4D-4E5F-8A9B-0C1D2E3F4A5B")?.elementName, "QinQ customer")
        XCTAssertEqual(set.profile(id: "urn:example:profile:web")?.elementName, "Web tier")
        XCTAssertNil(set.profile(id: "URN:EXAMPLE:PROFILE:WEB"), "URIs are compared exactly")
        XCTAssertNil(set.profile(id: "nope"))
    }

    func testOVFEnvelopeHarvestsEveryNetworkPortProfile() throws {
        let set = try ProfileLoader.load(path: Fixture.path("ovf-envelope.xml"))
        XCTAssertEqual(set.warnings, [])
        XCTAssertEqual(set.ids, ["urn:example:ovf:frontend", "0b8e4d6c-52a1-4c3e-9d7f-1a2b3c4d5e6f"])
        let front = try XCTUnwrap(set.profile(id: "urn:example:ovf:frontend"))
        XCTAssertEqual(front.portVID, 10)
        XCTAssertEqual(front.reservation, 50_000_000)
        let back = try XCTUnwrap(set.profile(id: "0B8E4D6C-52A1-4C3E-9D7F-1A2B3C4D5E6F"))
        XCTAssertEqual(back.mode, .trunk)
        XCTAssertEqual(back.trunkedVLANs, [20, 30, 31, 32, 33])
        XCTAssertNil(back.effectivePortVID, "a trunk without PortVID has no native VLAN")
    }

    func testWarnedDocumentsAreRepaired() throws {
        let native = try ProfileLoader.load(path: Fixture.path("warn/native-added.xml"))
        XCTAssertEqual(native.profiles[0].trunkedVLANs, [10, 20, 30], "native VLAN 30 added to the trunk list")
        XCTAssertEqual(native.profiles[1].trunkedVLANs, [10, 11, 12, 40], "DefaultPortVID 40 is the native VLAN")

        let merged = try ProfileLoader.load(path: Fixture.path("warn/merged.xml"))
        let p = merged.profiles[0]
        XCTAssertEqual(p.trunkedVLANs, Array(5...20))
        XCTAssertEqual(p.allowedPriorities, [1])
        XCTAssertEqual(p.allowedToTransmit, [MACVLANPair(mac: MACAddress(2, 0, 0, 0, 0, 1), vlan: 10),
                                             MACVLANPair(mac: MACAddress(2, 0, 0, 0, 0, 1), vlan: 11)])
        XCTAssertEqual(merged.warnings.count, 5)
        XCTAssertTrue(merged.warnings.allSatisfy { $0.severity == .warning })
    }

    func testErrorCarriesEveryDiagnosticAndRefusesTheWholeDocument() {
        // One good profile and one bad one: nothing is loaded, and both errors are reported.
        let e = loadError { try ProfileLoader.load(path: Fixture.path("bad/mode-other.xml")) }
        XCTAssertEqual(e?.errors.count, 3)
        XCTAssertEqual(e?.diagnostics.map(\.line), e?.diagnostics.map(\.line).sorted(), "in document order")
        XCTAssertTrue(e?.description.contains("mode-other.xml:") ?? false)
    }

    func testDiagnosticDescriptionFormat() {
        let d = XMLDiagnostic(file: "p.xml", line: 12, column: 7, profile: "urn:x", element: "epasd:PortVID", message: "bad")
        XCTAssertEqual(d.description, "p.xml:12:7: error: [profile urn:x] <epasd:PortVID>: bad")
        let a = XMLDiagnostic(.warning, file: "p.xml", line: 3, column: 9, element: "vsx:Acl", attribute: "Weight", message: "w")
        XCTAssertEqual(a.description, "p.xml:3:9: warning: <vsx:Acl>@Weight: w")
        let f = XMLDiagnostic(file: "gone.xml", line: 0, column: 0, message: "cannot open")
        XCTAssertEqual(f.description, "gone.xml: error: cannot open")
    }

    func testMissingFileIsADiagnostic() {
        let e = loadError { try ProfileLoader.load(path: "/nonexistent/profiles.xml") }
        XCTAssertEqual(e?.diagnostics.first?.file, "/nonexistent/profiles.xml")
        XCTAssertTrue(e?.description.contains("No such file") ?? false, "\(String(describing: e))")
    }

    func testDocumentSizeAndDepthAreBounded() {
        let big = Array("<a>".utf8) + [UInt8](repeating: UInt8(ascii: " "), count: 4 << 20) + Array("</a>".utf8)
        let e1 = loadError { try ProfileLoader.load(data: big, fileName: "big.xml") }
        XCTAssertTrue(e1?.description.contains("the limit is 4194304 bytes") ?? false, "\(String(describing: e1))")

        let deep = String(repeating: "<a>", count: 65) + String(repeating: "</a>", count: 65)
        let e2 = loadError { try ProfileLoader.load(data: Array(deep.utf8), fileName: "deep.xml") }
        XCTAssertEqual(e2?.diagnostics.first?.line, 1)
        XCTAssertEqual(e2?.diagnostics.first?.column, 193, "the 65th <a>")
        XCTAssertTrue(e2?.description.contains("nested 65 deep; the limit is 64") ?? false)
    }

    func testExternalEntitiesAreNeverRead() {
        // The DOCTYPE is refused as soon as it is seen: the external entity is not resolved.
        let doc = """
        <?xml version="1.0"?>
        <!DOCTYPE r [ <!ENTITY x SYSTEM "file:///etc/passwd"> ]>
        <r>&x;</r>
        """
        let e = loadError { try ProfileLoader.load(data: Array(doc.utf8), fileName: "xxe.xml") }
        XCTAssertEqual(e?.diagnostics.count, 1)
        XCTAssertEqual(e?.diagnostics.first?.line, 2)
        XCTAssertEqual(e?.diagnostics.first?.column, 1)
        XCTAssertFalse(e?.description.contains("root:") ?? true)
    }

    func testNonUTF8IsRefused() {
        let utf16: [UInt8] = [0xFF, 0xFE] + Array("<a/>".utf8).flatMap { [$0, 0] }
        let e = loadError { try ProfileLoader.load(data: utf16, fileName: "u16.xml") }
        XCTAssertTrue(e?.description.contains("not UTF-8") ?? false)
    }

    func testConcurrentLoadsGiveTheSameResult() throws {
        let path = Fixture.path("valid-form1.xml")
        let expected = try ProfileLoader.load(path: path).profiles
        let bad = Fixture.path("bad/vid-range.xml")
        let expectedErrors = loadError { try ProfileLoader.load(path: bad) }?.diagnostics
        let results = UnsafeSendableBox(Array(repeating: false, count: 64))
        DispatchQueue.concurrentPerform(iterations: 64) { i in
            var ok = false
            if i % 2 == 0 {
                ok = (try? ProfileLoader.load(path: path).profiles) == expected
            } else {
                do { _ = try ProfileLoader.load(path: bad) } catch let e as ProfileLoadError { ok = e.diagnostics == expectedErrors } catch {}
            }
            results.set(i, ok)
        }
        XCTAssertEqual(results.values, Array(repeating: true, count: 64))
    }
}

final class UnsafeSendableBox: @unchecked Sendable {
    private let lock = NSLock()
    private var storage: [Bool]
    init(_ v: [Bool]) { storage = v }
    func set(_ i: Int, _ v: Bool) { lock.lock(); storage[i] = v; lock.unlock() }
    var values: [Bool] { lock.lock(); defer { lock.unlock() }; return storage }
}
