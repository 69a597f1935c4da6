import XCTest
import VSwitchPolicy
import VSwitchPacket
@testable import VSwitchProfiles

final class ProfileWriterTests: XCTestCase {
    func roundTrip(_ path: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let first = try ProfileLoader.load(path: path).profiles
        let text = ProfileWriter.write(first)
        let second = try ProfileLoader.load(data: Array(text.utf8), fileName: "export.xml")
        XCTAssertEqual(second.profiles, first, "load → write → load gives equal profiles", file: file, line: line)
        XCTAssertEqual(second.warnings, [], "the export is clean", file: file, line: line)
        XCTAssertEqual(ProfileWriter.write(second.profiles), text, "write is a fixed point", file: file, line: line)
    }

    func testRoundTripForm1() throws { try roundTrip(Fixture.path("valid-form1.xml")) }
    func testRoundTripOVFEnvelope() throws { try roundTrip(Fixture.path("ovf-envelope.xml")) }
    func testRoundTripRepairedDocuments() throws {
        try roundTrip(Fixture.path("warn/merged.xml"))
        try roundTrip(Fixture.path("warn/native-added.xml"))
    }
    func testRoundTripDemoProfiles() throws {
        try roundTrip(Fixture.packageRoot.appendingPathComponent("topologies/profiles/tenants.xml").path)
    }

    func testWriteIsByteIdenticalTwice() throws {
        let set = try ProfileLoader.load(path: Fixture.path("valid-form1.xml"))
        XCTAssertEqual(ProfileWriter.write(set.profiles), ProfileWriter.write(set.profiles))
    }

    func testDMTFElementsAlphabeticalThenExtensions() throws {
        let set = try ProfileLoader.load(path: Fixture.path("valid-form1.xml"))
        var written = Set<String>()
        for profile in set.profiles {
            let text = ProfileWriter.write([profile])
            let names = text.split(separator: "\n").compactMap { line -> String? in
                let t = line.trimmingCharacters(in: .whitespaces)
                guard t.hasPrefix("<epasd:") || t.hasPrefix("<vsx:") else { return nil }
                return String(t.dropFirst().prefix { $0 != ">" && $0 != " " && $0 != "/" })
            }.filter { $0 != "vsx:NetworkPortProfiles" }
            let dmtf = names.filter { $0.hasPrefix("epasd:") }
            XCTAssertEqual(dmtf, dmtf.sorted(), "DMTF elements in alphabetical order")
            if let lastDMTF = names.lastIndex(where: { $0.hasPrefix("epasd:") }),
               let firstVSX = names.firstIndex(where: { $0.hasPrefix("vsx:") }) {
                XCTAssertLessThan(lastDMTF, firstVSX, "vsx elements after the DMTF ones")
            }
            written.formUnion(names)
        }
        XCTAssertEqual(written.filter { $0.hasPrefix("epasd:") }.count, 28, "every EPASD property the switch implements is written")
        XCTAssertEqual(written.filter { $0.hasPrefix("vsx:") }.count, 18, "every vsx extension is written")
        let text = ProfileWriter.write(set.profiles)
        XCTAssertTrue(text.hasPrefix("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<vsx:NetworkPortProfiles FormatVersion=\"1.0\""))
    }

    func testProgrammaticProfileWritesCanonicalForms() throws {
        var p = PortProfile(id: "urn:x:y", elementName: "a <b> & \"c\"", instanceID: "o:y")
        p.desiredVLANEndpointMode = .trunk
        p.trunkedVLANs = [5, 7, 8, 10, 11, 12, 13]
        p.allocationUnits = "bit / second * 10^6"
        p.limit = 1_500_000            // not a multiple of 10^6: written in bit / second
        p.allowedToReceive = [MACVLANPair(mac: MACAddress(2, 0, 0, 0, 0, 1), vlan: 5),
                              MACVLANPair(mac: MACAddress(2, 0, 0, 0, 0, 2), vlan: nil)]
        var rule = ACLRule(name: "r\t1", direction: .outbound, action: .deny, weight: 3)
        rule.etherType = 0x86DD
        p.acls = [rule]
        let text = ProfileWriter.write([p])
        XCTAssertTrue(text.contains("<epasd:AllocationUnits>bit / second</epasd:AllocationUnits>"))
        XCTAssertTrue(text.contains("<epasd:Limit>1500000</epasd:Limit>"))
        XCTAssertTrue(text.contains("<epasd:ElementName>a &lt;b&gt; &amp; \"c\"</epasd:ElementName>"))
        XCTAssertTrue(text.contains("<vsx:TrunkedVLANList>5</vsx:TrunkedVLANList>\n      <vsx:TrunkedVLANList>7</vsx:TrunkedVLANList>\n      <vsx:TrunkedVLANList>8</vsx:TrunkedVLANList>\n      <vsx:TrunkedVLANRange First=\"10\" Last=\"13\"/>"))
        XCTAssertTrue(text.contains("<epasd:AllowedToReceiveVLANs xsi:nil=\"true\"/>"))
        XCTAssertTrue(text.contains("Name=\"r&#9;1\""))
        XCTAssertTrue(text.contains("EtherType=\"0x86DD\""))
        let back = try ProfileLoader.load(data: Array(text.utf8), fileName: "w.xml").profiles[0]
        XCTAssertEqual(back.limit, 1_500_000)
        XCTAssertEqual(back.allocationUnits, "bit / second")
        XCTAssertEqual(back.elementName, p.elementName)
        XCTAssertEqual(back.trunkedVLANs, p.trunkedVLANs)
        XCTAssertEqual(back.allowedToReceive, p.allowedToReceive)
        XCTAssertEqual(back.acls, p.acls)
    }
}
