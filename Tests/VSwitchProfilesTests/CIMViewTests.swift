import XCTest
import VSwitchPacket
import VSwitchPolicy
import VSwitchXML
@testable import VSwitchProfiles

/// `vswitchctl show --format cim` (CIMView): the DSP1097 view parses back (libxml2), in the WS-CIM
/// namespaces, with the switch's and each port's values and the bound profile's EPASD properties.
final class CIMViewTests: XCTestCase {
    let base = "http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/"

    func profiles() throws -> ProfileSet {
        try ProfileLoader.load(path: Fixture.packageRoot.appendingPathComponent("topologies/profiles/tenants.xml").path)
    }

    func parse(_ xml: String) throws -> XMLElement {
        try XMLParser.parse(bytes: Array(xml.utf8), fileName: "cim.xml").document.root
    }

    /// The values of every child element `name` (in the class's namespace) of `e`.
    func values(_ e: XMLElement, _ name: String) -> [String] {
        e.children.filter { $0.name == name && $0.namespaceURI == e.namespaceURI }.map(\.text)
    }

    func testSwitchPortsAndProfilePropertiesParseBack() throws {
        let set = try profiles()
        let a = try XCTUnwrap(set.profile(id: "urn:vswitch:profile:tenant-a"))
        let trunk = try XCTUnwrap(set.profile(id: "urn:vswitch:profile:trunk-native"))
        let xml = CIMView.render(
            switch: .init(name: "lab & <core> \"sw\"\u{1}", macTableSize: 200_000, macAgingTime: 120),
            ports: [.init(index: 1, name: "tr1", type: "netdev", mac: nil, mtu: 9000, link: .down, profile: trunk),
                    .init(index: 0, name: "vm<1>", type: "tap", mac: "02:00:00:00:0a:01", mtu: 1500, link: .up, profile: a)])
        let root = try parse(xml)
        XCTAssertEqual(root.name, "CIMView")
        XCTAssertEqual(root.namespaceURI, CIMView.viewNamespace)
        XCTAssertEqual(root.children.map(\.name), ["CIM_VirtualEthernetSwitchSettingData",
                                                   "CIM_EthernetPort", "CIM_EthernetPortAllocationSettingData",
                                                   "CIM_EthernetPort", "CIM_EthernetPortAllocationSettingData"])
        for c in root.children { XCTAssertEqual(c.namespaceURI, base + c.name, "WS-CIM: the class's own namespace") }

        let sw = root.children[0]
        XCTAssertEqual(values(sw, "ElementName"), ["lab & <core> \"sw\"\u{FFFD}"], "escaped, and a control character replaced")
        XCTAssertEqual(values(sw, "EVBMode"), ["2"], "EVBMode 2 = VEB")
        XCTAssertEqual(values(sw, "MaxNumMACAddress"), ["200000"])
        XCTAssertEqual(values(sw, "VLANConnection"), ["10", "20", "30"], "every VLAN of every bound profile, once")
        XCTAssertEqual(values(sw, "VirtualSystemIdentifier"), values(sw, "ElementName"))

        // Ports come by index: vm<1> (index 0) first.
        let ep0 = root.children[1], epasd0 = root.children[2], ep1 = root.children[3], epasd1 = root.children[4]
        XCTAssertEqual(values(ep0, "DeviceID"), ["vm<1>"])
        XCTAssertEqual(values(ep0, "PermanentAddress"), ["020000000A01"])
        XCTAssertEqual(values(ep0, "EnabledState"), ["2"])
        XCTAssertEqual(values(ep0, "OperationalStatus"), ["2"])
        XCTAssertEqual(values(ep0, "ActiveMaximumTransmissionUnit"), ["1500"])
        XCTAssertEqual(values(ep0, "PortNumber"), ["0"])
        XCTAssertEqual(values(ep1, "EnabledState"), ["6"], "link down: Enabled but Offline")
        XCTAssertEqual(values(ep1, "PermanentAddress"), [], "no MAC bound: no address")

        XCTAssertEqual(values(epasd0, "Address"), ["020000000A01"])
        XCTAssertEqual(values(epasd0, "ElementName"), ["vm<1>"])
        XCTAssertEqual(values(epasd0, "ResourceType"), ["33"])
        XCTAssertEqual(values(epasd0, "NetworkPortProfileID"), ["urn:vswitch:profile:tenant-a"])
        XCTAssertEqual(values(epasd0, "NetworkPortProfileIDType"), ["2"])
        XCTAssertEqual(values(epasd0, "PortVID"), ["10"])
        XCTAssertEqual(values(epasd0, "DesiredVLANEndpointMode"), ["2"])
        XCTAssertEqual(values(epasd0, "Caption"), ["tenant-a"], "the profile's ElementName")
        XCTAssertEqual(values(epasd0, "Connection"), values(sw, "ElementName"))
        XCTAssertEqual(values(epasd0, "InstanceID").count, 1, "one InstanceID: the port's, not the profile's")
        XCTAssertEqual(values(epasd1, "DesiredVLANEndpointMode"), ["5"])
        XCTAssertEqual(values(epasd1, "PortVID"), ["30"])
        let trunked = epasd1.children.filter { $0.name == "TrunkedVLANList" && $0.namespaceURI == ProfileNamespace.vsx }
        XCTAssertEqual(trunked.map(\.text), trunk.trunkedVLANs.map { String($0) }, "the profile's vsx extensions follow")
        XCTAssertEqual(CIMView.render(switch: .init(name: "s", macTableSize: 1, macAgingTime: 10), ports: []),
                       CIMView.render(switch: .init(name: "s", macTableSize: 1, macAgingTime: 10), ports: []),
                       "deterministic")
    }

    func testNullVLANInAllowedListIsXsiNil() throws {
        var p = PortProfile(id: "urn:x:p", elementName: "p", instanceID: "x:p")
        p.allowedToTransmit = [.init(mac: MACAddress("02:00:00:00:00:01")!, vlan: 10),
                               .init(mac: MACAddress("02:00:00:00:00:02")!, vlan: nil)]
        let root = try parse(CIMView.render(switch: .init(name: "s", macTableSize: 10, macAgingTime: 300),
                                            ports: [.init(index: 0, name: "p0", type: "tap", mac: nil, mtu: 1500, link: .up, profile: p)]))
        let epasd = root.children[2]
        let vlans = epasd.children.filter { $0.name == "AllowedToTransmitVLANs" }
        XCTAssertEqual(vlans.count, 2, "index-correlated with the MAC list")
        XCTAssertEqual(vlans[0].text, "10")
        XCTAssertTrue(vlans[1].isNil)
    }
}
