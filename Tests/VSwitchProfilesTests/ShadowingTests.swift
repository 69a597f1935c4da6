import XCTest
import VSwitchPacket
import VSwitchPolicy
@testable import VSwitchProfiles

/// The shadowing warning against the dataplane's matcher: for every pair of rules of a pool (a higher-weight
/// rule A, a lower one B, same direction), when the reader warns that A covers B, no flow key the flow parser can
/// produce is matched by B and not by A (`ACLMatchRule.matches` on the compiled rules). And the EtherType cases
/// (D6) are claimed: EtherType=0x0800 covers a rule with an IPv4 address, 0x86DD one with an IPv6 address.
final class ShadowingTests: XCTestCase {
    static let pool = [
        "", "EtherType=\"0x0800\"", "EtherType=\"0x86DD\"", "EtherType=\"0x0806\"", "VLANID=\"10\"",
        "RemoteIPAddress=\"10.0.0.0/8\"", "RemoteIPAddress=\"10.1.2.3\"", "LocalIPAddress=\"10.1.2.3\"",
        "RemoteIPAddress=\"2001:db8::/32\"", "RemoteIPAddress=\"2001:db8::1\"", "RemoteIPAddress=\"ANY\"",
        "Protocol=\"TCP\"", "Protocol=\"ICMP\"", "Protocol=\"ICMPv6\"", "Protocol=\"1\"", "Protocol=\"TCP\" RemotePort=\"22\"",
        "EtherType=\"0x0800\" Protocol=\"ICMP\"", "EtherType=\"0x86DD\" Protocol=\"TCP\"",
        "RemoteIPAddress=\"10.1.2.3\" Protocol=\"TCP\" RemotePort=\"22\"", "LocalIPAddress=\"2001:db8::/32\" Protocol=\"UDP\"",
        "RemoteIPAddress=\"10.0.0.0/8\" Protocol=\"ICMP\" ICMPType=\"8\"", "EtherType=\"0x0800\" VLANID=\"10\"",
    ]

    static func document(_ a: String, _ b: String) -> String {
        """
        <?xml version="1.0" encoding="UTF-8"?>
        <vsx:NetworkPortProfiles FormatVersion="1.0" xmlns:vsx="urn:vswitch:port-profile:1"
            xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/2"
            xmlns:epasd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_EthernetPortAllocationSettingData">
          <ovf:NetworkPortProfile><ovf:Item>
            <epasd:ElementName>a</epasd:ElementName>
            <epasd:InstanceID>example.org:a</epasd:InstanceID>
            <epasd:NetworkPortProfileID>urn:example:a</epasd:NetworkPortProfileID>
            <epasd:NetworkPortProfileIDType>2</epasd:NetworkPortProfileIDType>
            <vsx:Acl Name="A" Direction="Inbound" Action="Deny" Weight="100" \(a)/>
            <vsx:Acl Name="B" Direction="Inbound" Action="Allow" Weight="50" \(b)/>
          </ovf:Item></ovf:NetworkPortProfile>
        </vsx:NetworkPortProfiles>
        """
    }

    /// Flow keys as the flow parser makes them: IP version 4 only with EtherType 0x0800, 6 only with 0x86DD (or
    /// 0: too short), never otherwise.
    static func keys() -> [FlowKey] {
        var out: [FlowKey] = []
        let v4: [UInt64] = [0x0A01_0203, 0x0A09_0909, 0xC000_0201]
        let v6: [(UInt64, UInt64)] = [(0x2001_0DB8_0000_0000, 1), (0x2001_0DB9_0000_0000, 1)]
        for vlan: UInt16 in [0, 10] {
            for et: UInt16 in [0x0800, 0x86DD, 0x0806] {
                var k = FlowKey()
                k.etherType = et; k.vlan = vlan
                out.append(k)   // not IP (or too short to be read as IP)
                guard et != 0x0806 else { continue }
                for proto: UInt8 in [1, 6, 17, 58] {
                    for hasL4 in [false, true] {
                        for port: UInt16 in [8, 22, 80] {
                            var k = k
                            k.proto = proto; k.hasL4 = hasL4; k.srcPort = port; k.dstPort = port == 8 ? 0 : 1234
                            if et == 0x0800 {
                                k.ipVersion = 4
                                for s in v4 { for d in v4 { k.srcIPLo = s; k.dstIPLo = d; out.append(k) } }
                            } else {
                                k.ipVersion = 6
                                for s in v6 { for d in v6 { (k.srcIPHi, k.srcIPLo) = s; (k.dstIPHi, k.dstIPLo) = d; out.append(k) } }
                            }
                        }
                    }
                }
            }
        }
        return out
    }

    func testShadowingWarningsAreTrueOfTheDataplaneMatcher() throws {
        let keys = Self.keys()
        var claims: Set<[String]> = []
        for a in Self.pool {
            for b in Self.pool where a != b {
                let set = try ProfileLoader.load(data: Array(Self.document(a, b).utf8), fileName: "pair.xml")
                guard set.warnings.contains(where: { $0.message.contains("ACL 'B' can never match") }) else { continue }
                claims.insert([a, b])
                let ra = PolicyCompiler.compileRule(set.profiles[0].acls[0]), rb = PolicyCompiler.compileRule(set.profiles[0].acls[1])
                for k in keys where rb.matches(k, outbound: false) && !ra.matches(k, outbound: false) {
                    XCTFail("warned that [\(a)] covers [\(b)], but a frame matches only the latter: \(k)")
                    break
                }
            }
        }
        XCTAssertTrue(claims.contains(["EtherType=\"0x0800\"", "RemoteIPAddress=\"10.1.2.3\""]))
        XCTAssertTrue(claims.contains(["EtherType=\"0x0800\"", "RemoteIPAddress=\"10.1.2.3\" Protocol=\"TCP\" RemotePort=\"22\""]))
        XCTAssertTrue(claims.contains(["EtherType=\"0x86DD\"", "RemoteIPAddress=\"2001:db8::1\""]))
        XCTAssertTrue(claims.contains(["EtherType=\"0x86DD\"", "LocalIPAddress=\"2001:db8::/32\" Protocol=\"UDP\""]))
        XCTAssertFalse(claims.contains(["EtherType=\"0x0800\"", "Protocol=\"ICMP\""]), "ICMP without an address also matches IPv6 next header 1")
        XCTAssertFalse(claims.contains(["EtherType=\"0x0800\"", "RemoteIPAddress=\"2001:db8::1\""]))
    }
}
