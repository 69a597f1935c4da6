import Foundation
import Logging
import VSwitchControl
import VSwitchCore
@testable import VSwitchDaemon
import XCTest

/// MAC table and model defects found by the session-8 review (each test failed before its fix).
final class MACTableModelTests: XCTestCase {
    /// `set-switch mac-table-size` below the number of static entries silently dropped some from the table
    /// (kept in the configuration; the "static" MAC could then be learned on any port): now refused, and a
    /// resize keeps every configured static entry.
    func testShrinkingTheTableBelowItsStaticEntriesIsRefused() throws {
        let system = FakeSystem()
        let model = SwitchModel(settings: SettingsConfig(), system: system, logger: Logger(label: "test"))
        _ = try model.setProfileSources([ProfileSource(path: "/p/tenants.xml", xml: profilesXML)])
        let a = "urn:vswitch:profile:tenant-a"
        try model.addPort(PortConfig(name: "p0", profile: a))
        try model.addPort(PortConfig(name: "p1", profile: a))
        for m in 1...3 { try model.fdbAdd(port: "p0", vlan: 10, mac: "02:00:00:00:00:0\(m)") }
        XCTAssertThrowsError(try model.setSwitch(macAgingTime: nil, macTableSize: 2)) { e in
            XCTAssertTrue("\(e)".contains("smaller than the 3 configured static entries"), "\(e)")
        }
        try model.setSwitch(macAgingTime: nil, macTableSize: 3)
        try model.setSwitch(macAgingTime: nil, macTableSize: 1000)
        XCTAssertEqual(model.config.fdb.count, 3)
        let statics = model.table.entries(now: 0).filter(\.isStatic).count
        XCTAssertEqual(statics, 3, "configured static entries missing from the table")
        var prev = 0
        var hijacked = 0
        for m in 1...3 {
            let r = model.table.learn(vlan: 10, mac: 0x0200_0000_0000 | UInt64(m), port: 1, now: 1, portLimit: .max, previousPort: &prev)
            if r != .staticEntry { hijacked += 1 }
        }
        XCTAssertEqual(hijacked, 0, "a configured static MAC was learned on another port")
    }
}

final class ReloadFlushTests: XCTestCase {
    static func xml(vid: Int) -> String {
        """
        <vsx:NetworkPortProfiles FormatVersion="1.0"
            xmlns:vsx="urn:vswitch:port-profile:1"
            xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/2"
            xmlns:epasd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_EthernetPortAllocationSettingData">
          <ovf:NetworkPortProfile>
            <ovf:Item>
              <epasd:DesiredVLANEndpointMode>2</epasd:DesiredVLANEndpointMode>
              <epasd:ElementName>lim</epasd:ElementName>
              <epasd:InstanceID>x:lim</epasd:InstanceID>
              <epasd:NetworkPortProfileID>urn:x:lim</epasd:NetworkPortProfileID>
              <epasd:NetworkPortProfileIDType>2</epasd:NetworkPortProfileIDType>
              <epasd:PortVID>\(vid)</epasd:PortVID>
              <vsx:MaxNumMACAddress>1</vsx:MaxNumMACAddress>
              <vsx:MACLimitAction>Drop</vsx:MACLimitAction>
            </ovf:Item>
          </ovf:NetworkPortProfile>
        </vsx:NetworkPortProfiles>
        """
    }

    /// A profile reload that moved a port to another VLAN flushed nothing: its entries in the old VLAN kept
    /// counting against its MAC limit, so its host could not be learned in the new VLAN until they aged out.
    func testReloadChangingAPortsVLANFlushesItsEntries() throws {
        let model = SwitchModel(settings: SettingsConfig(), system: FakeSystem(), logger: Logger(label: "test"))
        _ = try model.setProfileSources([ProfileSource(path: "/p/lim.xml", xml: ReloadFlushTests.xml(vid: 10))])
        let i = try model.addPort(PortConfig(name: "vm", profile: "urn:x:lim"))
        var v = model.publisher.current.view.pointee.ports[i].policy
        XCTAssertEqual(v.pvid, 10); XCTAssertEqual(v.macLimit, 1)
        var prev = 0
        let mac: UInt64 = 0x0200_0000_0077
        XCTAssertEqual(model.table.learn(vlan: 10, mac: mac, port: i, now: 1, portLimit: v.macLimit, previousPort: &prev), .learned)
        _ = try model.setProfileSources([ProfileSource(path: "/p/lim.xml", xml: ReloadFlushTests.xml(vid: 20))])
        v = model.publisher.current.view.pointee.ports[i].policy
        XCTAssertEqual(v.pvid, 20)
        XCTAssertEqual(model.table.learn(vlan: 20, mac: mac, port: i, now: 2, portLimit: v.macLimit, previousPort: &prev), .learned,
                       "the host in its new VLAN is refused: the stale VLAN-10 entry holds the port's only MAC slot")
    }
}
