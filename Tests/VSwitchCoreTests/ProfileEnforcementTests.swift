import VSwitchCore
import VSwitchPacket
import VSwitchPolicy
import XCTest

/// Issue 3: the port profile beyond VLANs, enforced by the pipeline over memory ports.
final class ProfileEnforcementTests: XCTestCase {
    func compiled(_ configure: (inout PortProfile) -> Void) -> CompiledPort { compiledProfile(configure) }

    func testSourceMACFilteringWithAllowedToTransmitPairs() {
        let guarded = compiled {
            $0.sourceMACFilteringEnabled = true
            $0.allowedToTransmit = [MACVLANPair(mac: MACAddress(rawValue: macB), vlan: 10),
                                    MACVLANPair(mac: MACAddress(rawValue: macC), vlan: 20)]
        }
        let sw = TestSwitch([PortSpec(index: 0, mac: macA, compiled: guarded), PortSpec(index: 1, policy: .access(10))])
        let out = sw.inject(0, [frame(dst: bcast, src: macA), frame(dst: bcast, src: macB),
                                frame(dst: bcast, src: macC), frame(dst: bcast, src: macD)])
        XCTAssertEqual(out[1]?.map { Wire($0).src }, [macA, macB], "own MAC and (B, 10) pass")
        XCTAssertEqual(sw.counters(0).drops(.spoofedSource), 2, "(C, 20) is for another VLAN; D is not listed")
        XCTAssertEqual(sw.table.lookup(vlan: 10, mac: macD), -1, "a spoofed source is never learned")
    }

    func testLongAllowListsUseTheHashAndStillMatchPerVLAN() {
        let many = (1...40).map { UInt64(0x0200_0000_1000 + $0) }
        let guarded = compiled {
            $0.sourceMACFilteringEnabled = true
            $0.allowedToTransmit = many.map { MACVLANPair(mac: MACAddress(rawValue: $0)) }
                + [MACVLANPair(mac: MACAddress(rawValue: macB), vlan: 10), MACVLANPair(mac: MACAddress(rawValue: macC), vlan: 20)]
        }
        let sw = TestSwitch([PortSpec(index: 0, mac: macA, compiled: guarded), PortSpec(index: 1, policy: .access(10))])
        let out = sw.inject(0, [frame(dst: bcast, src: many[0]), frame(dst: bcast, src: many[39]), frame(dst: bcast, src: macB),
                                frame(dst: bcast, src: macC), frame(dst: bcast, src: macD), frame(dst: bcast, src: macA)])
        XCTAssertEqual(out[1]?.map { Wire($0).src }, [many[0], many[39], macB, macA])
        XCTAssertEqual(sw.counters(0).drops(.spoofedSource), 2, "(C, 20) is for another VLAN; D is not listed")
    }

    func testFilteringIsOnByDefaultInProfiles() {
        var p = PortProfile(id: "urn:d", elementName: "d", instanceID: "o:d")
        p.portVID = 10
        XCTAssertTrue(PolicyCompiler.compilePort(p).policy.sourceMACFiltering)
    }

    func testAllowedToReceive() {
        let picky = compiled { $0.allowedToReceive = [MACVLANPair(mac: MACAddress(rawValue: macB)), MACVLANPair(mac: .broadcast, vlan: 10)] }
        let sw = TestSwitch([PortSpec(index: 0, policy: .access(10)), PortSpec(index: 1, mac: macB, compiled: picky),
                             PortSpec(index: 2, policy: .access(10))])
        let out = sw.inject(0, [frame(dst: macB, src: macA), frame(dst: macC, src: macA), frame(dst: bcast, src: macA),
                                frame(dst: 0x0100_5E00_0001, src: macA)])
        XCTAssertEqual(out[1]?.map { Wire($0).dst }, [macB, bcast])
        XCTAssertEqual(out[2]?.count, 4)
        XCTAssertEqual(sw.counters(1).drops(.noDestination), 2, "egress drops count on the port that refused them")
    }

    func testPromiscuousPortSeesKnownUnicastOfItsVLANs() {
        let promisc = compiled { $0.promiscuous = true }
        let sw = TestSwitch([PortSpec(index: 0, policy: .access(10)), PortSpec(index: 1, policy: .access(10)),
                             PortSpec(index: 2, compiled: promisc), PortSpec(index: 3, policy: .access(20))])
        sw.inject(1, [frame(dst: bcast, src: macB)])
        let out = sw.inject(0, [frame(dst: macB, src: macA)])
        XCTAssertEqual(Set(out.keys), [1, 2])
        sw.inject(2, [frame(dst: bcast, src: macC)])
        let back = sw.inject(0, [frame(dst: macC, src: macA)])
        XCTAssertEqual(Set(back.keys), [2], "no duplicate when the promiscuous port is the destination")
    }

    func testDHCPAndRouterGuards() {
        let guarded = compiled { $0.enableDhcpGuard = true; $0.enableRouterGuard = true }
        let sw = TestSwitch([PortSpec(index: 0, compiled: guarded), PortSpec(index: 1, policy: .access(10))])
        let offer = l3frame(dst: bcast, src: macA, type: 0x0800, ipv4(src: 0x0A00_0001, dst: 0xFFFF_FFFF, proto: 17, l4: ports(67, 68)))
        let discover = l3frame(dst: bcast, src: macA, type: 0x0800, ipv4(src: 0, dst: 0xFFFF_FFFF, proto: 17, l4: ports(68, 67)))
        let v6reply = l3frame(dst: bcast, src: macA, type: 0x86DD, ipv6(src: v6(1), dst: v6(2), next: 17, l4: ports(547, 546)))
        let ra = l3frame(dst: 0x3333_0000_0001, src: macA, type: 0x86DD, ipv6(src: v6(1), dst: v6(2), next: 58, l4: [134, 0, 0, 0, 0, 0, 0, 0]))
        let redirect6 = l3frame(dst: macB, src: macA, type: 0x86DD, ipv6(src: v6(1), dst: v6(2), next: 58, l4: [137, 0, 0, 0, 0, 0, 0, 0]))
        let ns = l3frame(dst: 0x3333_FF00_0001, src: macA, type: 0x86DD, ipv6(src: v6(1), dst: v6(2), next: 58, l4: [135, 0, 0, 0, 0, 0, 0, 0]))
        let redirect4 = l3frame(dst: macB, src: macA, type: 0x0800, ipv4(src: 1, dst: 2, proto: 1, l4: [5, 1, 0, 0, 0, 0, 0, 0]))
        let out = sw.inject(0, [offer, discover, v6reply, ra, redirect6, ns, redirect4])
        XCTAssertEqual(out[1]?.count, 2, "DHCP discover and neighbour solicitation pass")
        XCTAssertEqual(sw.counters(0).drops(.dhcpGuard), 2)
        XCTAssertEqual(sw.counters(0).drops(.routerGuard), 3)
    }

    func testACLsByWeightDirectionAndDefaults() {
        let port = compiled {
            var denySSH = ACLRule(name: "no-ssh-out", direction: .outbound, action: .deny, weight: 100)
            denySSH.proto = "TCP"; denySSH.remotePort = "22"
            var allowWeb = ACLRule(name: "web-in", direction: .inbound, action: .allow, weight: 50)
            allowWeb.proto = "TCP"; allowWeb.localPort = "80-443"
            var allowPingV6 = ACLRule(name: "ping6", direction: .both, action: .allow, weight: 40)
            allowPingV6.proto = "ICMPv6"; allowPingV6.remoteIP = "2001:db8::/32"
            var denyNet = ACLRule(name: "no-net", direction: .outbound, action: .deny, weight: 10)
            denyNet.remoteIP = "192.168.0.0/16"
            var allowHost = ACLRule(name: "gw", direction: .outbound, action: .allow, weight: 20)
            allowHost.remoteIP = "192.168.1.1"
            var arp = ACLRule(name: "arp", direction: .inbound, action: .allow, weight: 5)
            arp.etherType = 0x0806
            $0.acls = [denySSH, allowWeb, allowPingV6, denyNet, allowHost, arp]
            $0.inboundAclDefaultAction = .deny
        }
        let sw = TestSwitch([PortSpec(index: 0, mac: macA, compiled: port), PortSpec(index: 1, policy: .access(10))])
        func tcp(_ sp: UInt16, _ dp: UInt16, dst: UInt32 = 0x0A00_0002) -> [UInt8] { ipv4(src: 0x0A00_0001, dst: dst, proto: 6, l4: ports(sp, dp)) }
        // Outbound (from the VS on port 0).
        var out = sw.inject(0, [l3frame(dst: bcast, src: macA, type: 0x0800, tcp(40000, 22)),
                                l3frame(dst: bcast, src: macA, type: 0x0800, tcp(40000, 80)),
                                l3frame(dst: bcast, src: macA, type: 0x0800, tcp(40000, 80, dst: 0xC0A8_0505)),
                                l3frame(dst: bcast, src: macA, type: 0x0800, tcp(40000, 80, dst: 0xC0A8_0101))])
        XCTAssertEqual(out[1]?.count, 2, "port 80 to 10.0.0.2 and to the allowed host 192.168.1.1")
        XCTAssertEqual(sw.counters(0).drops(.aclDeny), 2)
        // Inbound (towards the VS on port 0), default deny.
        out = sw.inject(1, [l3frame(dst: macA, src: macB, type: 0x0800, ipv4(src: 2, dst: 1, proto: 6, l4: ports(5555, 443))),
                            l3frame(dst: macA, src: macB, type: 0x0800, ipv4(src: 2, dst: 1, proto: 6, l4: ports(5555, 8080))),
                            l3frame(dst: macA, src: macB, type: 0x0806, [UInt8](repeating: 0, count: 28)),
                            l3frame(dst: macA, src: macB, type: 0x86DD, ipv6(src: v6(9), dst: v6(1), next: 58, l4: [128, 0, 0, 0, 0, 0, 0, 0])),
                            l3frame(dst: macA, src: macB, type: 0x86DD, ipv6(src: v6(9, prefix: [0x20, 0x02]), dst: v6(1), next: 58, l4: [128, 0, 0, 0, 0, 0, 0, 0])),
                            l3frame(dst: macA, src: macB, type: 0x0800, ipv4(src: 2, dst: 1, proto: 17, l4: ports(53, 53)))])
        XCTAssertEqual(out[0]?.count, 3, "https, ARP, ICMPv6 from 2001:db8::/32")
        XCTAssertEqual(sw.counters(0).drops(.aclDeny), 2 + 3, "inbound denies count on the egress port")
    }

    /// A known-unicast frame between two ports that both filter is judged for both directions in one
    /// verdict-cache probe (ForwardingEngine.aclBoth); the inbound verdict belongs to the output port
    /// only — promiscuous copies get their own port's verdict. Twice: cache miss, then hit.
    func testUnicastOutboundAndInboundACLsInOneProbeAndPromiscuousCopies() {
        let sender = compiled {
            var ssh = ACLRule(name: "no-ssh-out", direction: .outbound, action: .deny, weight: 10)
            ssh.proto = "TCP"; ssh.remotePort = "22"
            $0.acls = [ssh]
        }
        let receiver = compiled {
            var alt = ACLRule(name: "no-8080-in", direction: .inbound, action: .deny, weight: 10)
            alt.proto = "TCP"; alt.localPort = "8080"
            $0.acls = [alt]
        }
        let closedPromisc = compiled { $0.promiscuous = true; $0.inboundAclDefaultAction = .deny }
        let openPromisc = compiled { $0.promiscuous = true }
        let sw = TestSwitch([PortSpec(index: 0, mac: macA, compiled: sender), PortSpec(index: 1, mac: macB, compiled: receiver),
                             PortSpec(index: 2, compiled: closedPromisc), PortSpec(index: 3, compiled: openPromisc)])
        sw.inject(1, [frame(dst: bcast, src: macB)])          // macB learned on port 1: the frames below are known unicast
        func tcp(_ dp: UInt16) -> [UInt8] {
            l3frame(dst: macB, src: macA, type: 0x0800, ipv4(src: 0x0A00_0001, dst: 0x0A00_0002, proto: 6, l4: ports(40000, dp)))
        }
        for round in 1...2 {
            let out = sw.inject(0, [tcp(22), tcp(80), tcp(8080)])
            XCTAssertEqual(out[1]?.count, 1, "round \(round): only port 80 reaches the receiver")
            XCTAssertEqual(out[3]?.count, 2, "round \(round): the open promiscuous port sees 80 and 8080 (its own verdict)")
            XCTAssertNil(out[2], "round \(round): the closed promiscuous port denies everything inbound")
            XCTAssertEqual(sw.counters(0).drops(.aclDeny), UInt64(round), "outbound deny counted at ingress")
            XCTAssertEqual(sw.counters(1).drops(.aclDeny), UInt64(round), "inbound deny counted at the receiver")
            XCTAssertEqual(sw.counters(2).drops(.aclDeny), UInt64(1 + 2 * round), "+1: the learning broadcast flooded to it")
            XCTAssertEqual(sw.counters(3).drops(.aclDeny), 0)
        }
    }

    func testACLMatchesL2FieldsAndFragments() {
        let port = compiled {
            var r = ACLRule(name: "mac", direction: .outbound, action: .deny, weight: 3)
            r.remoteMAC = MACAddress(rawValue: macC)
            var pcp = ACLRule(name: "pcp", direction: .outbound, action: .deny, weight: 2)
            pcp.priority = 5
            var udp = ACLRule(name: "udp", direction: .outbound, action: .deny, weight: 1)
            udp.proto = "UDP"; udp.remotePort = "53"
            $0.acls = [r, pcp, udp]
        }
        let sw = TestSwitch([PortSpec(index: 0, compiled: port), PortSpec(index: 1, policy: .access(10))])
        let out = sw.inject(0, [frame(dst: macC, src: macA),
                                frame(dst: bcast, src: macA, tags: [(0x8100, 0, 5)]),
                                l3frame(dst: bcast, src: macA, type: 0x0800, ipv4(src: 1, dst: 2, proto: 17, l4: ports(1000, 53))),
                                l3frame(dst: bcast, src: macA, type: 0x0800, ipv4(src: 1, dst: 2, proto: 17, l4: ports(1000, 53), fragmentOffset: 100)),
                                frame(dst: bcast, src: macA)])
        XCTAssertEqual(out[1]?.count, 2, "a non-first fragment has no ports, so the port rule cannot match it")
        XCTAssertEqual(sw.counters(0).drops(.aclDeny), 3)
    }

    func testTransmitPolicerHoldsRateAndBurst() {
        // 8 Mbit/s = 1 byte per µs; burst 3000 bytes.
        let port = compiled { $0.limit = 8_000_000; $0.transmitBurstSize = 3000 }
        let sw = TestSwitch([PortSpec(index: 0, compiled: port), PortSpec(index: 1, policy: .access(10))])
        let f = frame(dst: bcast, src: macA, payload: 986)   // 1000 bytes
        var out = sw.inject(0, Array(repeating: f, count: 10))
        XCTAssertEqual(out[1]?.count, 3, "the burst")
        XCTAssertEqual(sw.counters(0).drops(.policer), 7)
        sw.extraNs += 1_000_000   // 1 ms = 1000 bytes of credit
        out = sw.inject(0, Array(repeating: f, count: 3))
        XCTAssertEqual(out[1]?.count, 1)
        // Over a simulated second at 2x the rate: ~1 MB gets through.
        var passed = 0
        for step in 0..<2000 {
            sw.extraNs = 10_000_000 + UInt64(step) * 500_000
            passed += sw.inject(0, [f])[1]?.count ?? 0
        }
        XCTAssertEqual(Double(passed), 1000, accuracy: 5, "1000 frames of 1000 bytes in 1 s at 8 Mbit/s")
    }

    func testReceivePolicer() {
        let port = compiled { $0.receiveBandwidthLimit = 8_000_000; $0.receiveBurstSize = 2000 }
        let sw = TestSwitch([PortSpec(index: 0, policy: .access(10)), PortSpec(index: 1, compiled: port),
                             PortSpec(index: 2, policy: .access(10))])
        let out = sw.inject(0, Array(repeating: frame(dst: bcast, src: macA, payload: 986), count: 5))
        XCTAssertEqual(out[1]?.count, 2)
        XCTAssertEqual(out[2]?.count, 5, "other ports are not limited")
        XCTAssertEqual(sw.counters(1).drops(.policer), 3)
    }

    func testStormControlPerClass() {
        let port = compiled { $0.broadcastStormLimit = 100; $0.multicastStormLimit = 10; $0.unknownUnicastStormLimit = 20 }
        let sw = TestSwitch([PortSpec(index: 0, compiled: port), PortSpec(index: 1, policy: .access(10))])
        sw.inject(1, [frame(dst: bcast, src: macB)])   // B known
        let out = sw.inject(0, Array(repeating: frame(dst: bcast, src: macA), count: 30)
                            + Array(repeating: frame(dst: 0x0100_5E00_0001, src: macA), count: 5)
                            + Array(repeating: frame(dst: macC, src: macA), count: 5)
                            + Array(repeating: frame(dst: macB, src: macA), count: 50))
        // Bursts: 100 ms worth: 10 broadcasts, 1 multicast, 2 unknown unicast; known unicast unlimited.
        XCTAssertEqual(out[1]?.count, 10 + 1 + 2 + 50)
        XCTAssertEqual(sw.counters(0).drops(.storm), 20 + 4 + 3)
    }

    func testQinQServiceTagFromATrunkIsPoppedAtTheTunnelPort() {
        let sw = TestSwitch([PortSpec(index: 0, policy: .tunnel(50)), PortSpec(index: 1, policy: .trunk([50]))])
        let customer = frame(dst: bcast, src: macA, tags: [(0x8100, 100, 3)])
        let fromTrunk = frame(dst: bcast, src: macB, tags: [(0x88A8, 50, 0), (0x8100, 100, 3)])
        let out = sw.inject(1, [fromTrunk])
        XCTAssertEqual(out[0]?.first.map { Wire($0).tags }, [tag(100, pcp: 3)], "S-tag removed, C-tag kept")
        let back = sw.inject(0, [customer])
        XCTAssertEqual(back[1]?.first.map { Wire($0).tags }, [tag(50, tpid: 0x88A8), tag(100, pcp: 3)])
    }
}
