import VSwitchCore
import VSwitchPacket
import VSwitchPolicy
import XCTest

/// Edge cases of profile enforcement found by the session-8 review (each of these failed before its fix):
/// long IPv6 header chains, ANY addresses, frames larger than a policer's burst, GSO segments over the
/// MTU, bursts too large for a 64-bit nanosecond count, a switch-wide MAC limit of 0, and the length a
/// receive policer charges after another port rewrote the frame's tags.
final class PolicyEdgeCaseTests: XCTestCase {
    func compiled(_ configure: (inout PortProfile) -> Void) -> CompiledPort { compiledProfile(configure) }

    /// An 8-byte IPv6 destination-options header (PadN) followed by `next`.
    func destOpts(next: UInt8) -> [UInt8] { [next, 0, 1, 4, 0, 0, 0, 0] }

    /// `count` destination-options headers, the last one pointing to `upper`.
    func chain(_ count: Int, upper: UInt8) -> [UInt8] {
        (0..<count).flatMap { destOpts(next: $0 == count - 1 ? upper : 60) }
    }

    func testGuardsAndACLsSeeThroughLongIPv6HeaderChains() {
        let guarded = compiled {
            $0.enableRouterGuard = true
            var ssh = ACLRule(name: "no-ssh", direction: .outbound, action: .deny, weight: 10)
            ssh.proto = "TCP"; ssh.remotePort = "22"
            $0.acls = [ssh]
        }
        let sw = TestSwitch([PortSpec(index: 0, compiled: guarded), PortSpec(index: 1, policy: .access(10))])
        // Five and nine extension headers before a router advertisement: a cap of four let these through.
        let ra5 = l3frame(dst: 0x3333_0000_0001, src: macA, type: 0x86DD,
                          ipv6(src: v6(1), dst: v6(2), next: 60, l4: chain(5, upper: 58) + [134, 0, 0, 0, 0, 0, 0, 0]))
        let ra9 = l3frame(dst: 0x3333_0000_0001, src: macA, type: 0x86DD,
                          ipv6(src: v6(1), dst: v6(2), next: 60, l4: chain(9, upper: 58) + [134, 0, 0, 0, 0, 0, 0, 0]))
        // SSH behind six headers, and behind an AH header (length in 4-byte units minus 2: 24 bytes here).
        let ssh6 = l3frame(dst: bcast, src: macA, type: 0x86DD,
                           ipv6(src: v6(1), dst: v6(2), next: 60, l4: chain(6, upper: 6) + ports(40000, 22)))
        let ah: [UInt8] = [6, 4, 0, 0] + [UInt8](repeating: 0, count: 20)
        let sshAH = l3frame(dst: bcast, src: macA, type: 0x86DD, ipv6(src: v6(1), dst: v6(2), next: 51, l4: ah + ports(40000, 22)))
        // Controls: the same chains to an allowed port and a neighbour solicitation pass.
        let web6 = l3frame(dst: bcast, src: macA, type: 0x86DD,
                           ipv6(src: v6(1), dst: v6(2), next: 60, l4: chain(6, upper: 6) + ports(40000, 80)))
        let ns5 = l3frame(dst: 0x3333_FF00_0001, src: macA, type: 0x86DD,
                          ipv6(src: v6(1), dst: v6(2), next: 60, l4: chain(5, upper: 58) + [135, 0, 0, 0, 0, 0, 0, 0]))
        let out = sw.inject(0, [ra5, ra9, ssh6, sshAH, web6, ns5])
        XCTAssertEqual(out[1]?.count, 2, "only the port-80 segment and the neighbour solicitation pass")
        XCTAssertEqual(sw.counters(0).drops(.routerGuard), 2)
        XCTAssertEqual(sw.counters(0).drops(.aclDeny), 2)
    }

    func testIPv6ChainThatRunsPastTheFrameIsMalformedWhereAPolicyLooks() {
        let guarded = compiled { $0.enableRouterGuard = true }
        var inboundSSH = ACLRule(name: "no-ssh-in", direction: .inbound, action: .deny, weight: 10)
        inboundSSH.proto = "TCP"; inboundSSH.localPort = "22"
        let filtered = compiled { $0.acls = [inboundSSH] }
        let sw = TestSwitch([PortSpec(index: 0, compiled: guarded), PortSpec(index: 1, policy: .access(10)),
                             PortSpec(index: 2, compiled: filtered), PortSpec(index: 3, policy: .access(10))])
        // A first fragment (offset 0, more fragments) whose chain goes on past the frame (RFC 7112): the
        // destination-options header claims 2 KB.
        let firstFragment = ipv6(src: v6(1), dst: v6(2), next: 44, l4: [60, 0, 0, 1, 0, 0, 0, 7] + [58, 255, 1, 4, 0, 0, 0, 0])
        let bad = l3frame(dst: bcast, src: macA, type: 0x86DD, firstFragment)
        var out = sw.inject(0, [bad])
        XCTAssertNil(out[1], "dropped at the guarded ingress")
        XCTAssertEqual(sw.counters(0).drops(.malformed), 1)
        // From a port without a policy that parses: flooded to the plain ports, refused by the filtering one.
        out = sw.inject(3, [l3frame(dst: bcast, src: macD, type: 0x86DD, firstFragment)])
        XCTAssertEqual(out[1]?.count, 1)
        XCTAssertNil(out[2])
        XCTAssertEqual(sw.counters(2).drops(.malformed), 1, "counted on the port whose inbound ACL could not judge it")
        // A later fragment is not a header chain: it passes the guard (no upper layer to judge).
        let later = l3frame(dst: bcast, src: macA, type: 0x86DD, ipv6(src: v6(1), dst: v6(2), next: 44, l4: [58, 0, 0, 0x11, 0, 0, 0, 7] + [134, 0, 0, 0]))
        out = sw.inject(0, [later])
        XCTAssertEqual(out[1]?.count, 1)
    }

    func testACLAddressANYMatchesEveryIPFrameAndNoOther() {
        let port = compiled {
            var noIP = ACLRule(name: "no-ip", direction: .outbound, action: .deny, weight: 10)
            noIP.remoteIP = "ANY"
            $0.acls = [noIP]
        }
        let sw = TestSwitch([PortSpec(index: 0, compiled: port), PortSpec(index: 1, policy: .access(10))])
        let arp = l3frame(dst: bcast, src: macA, type: 0x0806, [UInt8](repeating: 0, count: 28))
        let v4 = l3frame(dst: bcast, src: macA, type: 0x0800, ipv4(src: 1, dst: 2, proto: 17, l4: ports(5000, 53)))
        let v6frame = l3frame(dst: bcast, src: macA, type: 0x86DD, ipv6(src: v6(1), dst: v6(2), next: 17, l4: ports(5000, 53)))
        let out = sw.inject(0, [arp, v4, v6frame, arp])
        XCTAssertEqual(out[1]?.map { Wire($0).type }, [0x0806, 0x0806], "ARP is not an IP frame")
        XCTAssertEqual(sw.counters(0).drops(.aclDeny), 2)
    }

    func testFrameCostingMoreThanTheBurstPassesFromAFullBucketOnly() {
        // 8 Mbit/s = 1 byte per µs; a 500-byte burst, smaller than the 1000-byte frames (the daemon refuses
        // such a profile for an ordinary port; a GSO super-frame is the real case, below).
        let port = compiled { $0.limit = 8_000_000; $0.transmitBurstSize = 500 }
        let sw = TestSwitch([PortSpec(index: 0, compiled: port), PortSpec(index: 1, policy: .access(10))])
        let f = frame(dst: bcast, src: macA, payload: 986)   // 1000 bytes
        var out = sw.inject(0, [f, f])
        XCTAssertEqual(out[1]?.count, 1, "the first from the full bucket; it leaves the bucket 1000 µs in debt")
        sw.extraNs += 600_000
        out = sw.inject(0, [f])
        XCTAssertNil(out[1], "600 µs later the bucket is still in debt")
        sw.extraNs += 400_000
        out = sw.inject(0, [f])
        XCTAssertEqual(out[1]?.count, 1, "full again after 1000 µs")
        // The rate holds: offered at 2x for a simulated second, ~1000 frames pass.
        var passed = 0
        for step in 0..<2000 {
            sw.extraNs = 10_000_000 + UInt64(step) * 500_000
            passed += sw.inject(0, [f])[1]?.count ?? 0
        }
        XCTAssertEqual(Double(passed), 1000, accuracy: 5)
    }

    func gsoSwitch(_ specs: [PortSpec]) -> TestSwitch {
        let sw = TestSwitch(specs)
        sw.batch.deallocate()
        sw.batch = FrameBatch(capacity: 64, dataRoom: VirtioNet.maxFrame)
        return sw
    }

    func forwardSuperFrame(_ sw: TestSwitch, payload: Int, gsoSize: Int, needsCsum: Bool = true) {
        var s = TCPSpec()
        s.payload = payload
        let f = gsoFrame(s)
        sw.batch.count = 0
        XCTAssertTrue(sw.batch.append(f.bytes))
        sw.batch.setVnetHeader(0, flags: needsCsum ? 1 : 0, gsoType: 1, hdrLen: f.l4 + 20, gsoSize: gsoSize,
                               csumStart: needsCsum ? f.l4 : 0, csumOffset: needsCsum ? 16 : 0)
        sw.store.clearSent()
        sw.engine.forward(sw.batch, ingress: 0, view: sw.snapshot.view, now: sw.now, nowNs: sw.nowNs, backend: &sw.backend)
    }

    func testGSOSuperFrameLargerThanThePolicerBurstIsShapedNotRefused() {
        // 10 Mbit/s: the default burst is 10 ms = 12,500 bytes; the super-frame costs ~31 KB on the wire.
        var specs = [PortSpec(index: 0, compiled: compiled { $0.limit = 10_000_000 }), PortSpec(index: 1, policy: .access(10))]
        specs[0].offload = true
        let sw = gsoSwitch(specs)
        sw.extraNs = 5_000_000_000
        forwardSuperFrame(sw, payload: 30_000, gsoSize: 1448)
        XCTAssertEqual(sw.store.outbound[1]?.count, 21, "passed from the full bucket, cut into 21 segments")
        forwardSuperFrame(sw, payload: 30_000, gsoSize: 1448)
        XCTAssertNil(sw.store.outbound[1], "the bucket is ~25 ms in debt")
        XCTAssertEqual(sw.counters(0).drops(.policer), 1)
        sw.extraNs += 30_000_000
        forwardSuperFrame(sw, payload: 30_000, gsoSize: 1448)
        XCTAssertEqual(sw.store.outbound[1]?.count, 21, "30 ms later it is full again")
    }

    func testGSOSegmentsLargerThanTheMTUAreAnMTUDrop() {
        var specs = [PortSpec(index: 0, policy: .access(10)), PortSpec(index: 1, policy: .access(10))]
        specs[0].offload = true
        let sw = gsoSwitch(specs)
        // gso_size 1500 at MTU 1500: each segment would carry 20 + 20 + 1500 = 1540 bytes of IP.
        forwardSuperFrame(sw, payload: 3000, gsoSize: 1500)
        XCTAssertNil(sw.store.outbound[1])
        XCTAssertEqual(sw.counters(0).drops(.mtuExceeded), 1)
        // 1460 is the largest MSS that fits: 20 + 20 + 1460 = 1500.
        forwardSuperFrame(sw, payload: 3000, gsoSize: 1460)
        XCTAssertEqual(sw.store.outbound[1]?.count, 3)
        forwardSuperFrame(sw, payload: 3000, gsoSize: 1461)
        XCTAssertNil(sw.store.outbound[1])
        XCTAssertEqual(sw.counters(0).drops(.mtuExceeded), 2)
        // A sender that sets no NEEDS_CSUM (no csum_start to find the headers): judged by gso_size alone, as before.
        forwardSuperFrame(sw, payload: 3000, gsoSize: 1448, needsCsum: false)
        XCTAssertEqual(sw.counters(0).drops(.mtuExceeded), 2, "not an MTU drop")
    }

    func testBurstTooLargeForNanosecondsSaturatesInsteadOfTrapping() {
        let oneBitPerSecond = compiled { $0.limit = 1; $0.transmitBurstSize = 3_000_000_000 }
        let huge = compiled { $0.limit = 10_000_000; $0.transmitBurstSize = .max; $0.receiveBandwidthLimit = 1; $0.receiveBurstSize = .max }
        let sw = TestSwitch([PortSpec(index: 0, compiled: oneBitPerSecond), PortSpec(index: 1, compiled: huge),
                             PortSpec(index: 2, policy: .access(10))])
        let ports = sw.snapshot.view.pointee.ports
        XCTAssertEqual(ports[0].txToleranceNs, 1 << 62)
        XCTAssertEqual(ports[1].txToleranceNs, 1 << 62)
        XCTAssertEqual(ports[1].rxToleranceNs, 1 << 62)
        // A 1 bit/s policer with a huge burst still forwards, and a 64 KB super-frame's cost does not wrap.
        let out = sw.inject(0, Array(repeating: frame(dst: bcast, src: macA, payload: 1486), count: 100))
        XCTAssertEqual(out[1]?.count, 100)
        XCTAssertEqual(out[2]?.count, 100)
    }

    func testSwitchWideMACLimitOfZeroMeansLearnNothingAsInAProfile() {
        var p = PortProfile(id: "urn:z", elementName: "z", instanceID: "o:z")
        p.portVID = 10
        p.sourceMACFilteringEnabled = false
        let fromSwitch = PolicyCompiler.compilePort(p, switchMACLimit: 0)
        p.maxNumMACAddress = 0
        let fromProfile = PolicyCompiler.compilePort(p, switchMACLimit: 1024)
        XCTAssertEqual(fromSwitch.policy.learning, false)
        XCTAssertEqual(fromSwitch.policy.learning, fromProfile.policy.learning)
        XCTAssertEqual(fromSwitch.policy.macLimit, fromProfile.policy.macLimit)
        for c in [fromSwitch, fromProfile] {
            let sw = TestSwitch([PortSpec(index: 0, compiled: c), PortSpec(index: 1, policy: .access(10))])
            let out = sw.inject(0, [frame(dst: bcast, src: macA), frame(dst: macB, src: macC)])
            XCTAssertEqual(out[1]?.count, 2, "frames are forwarded, only not learned")
            XCTAssertEqual(sw.counters(0).drops(.macLimit), 0)
            XCTAssertEqual(sw.table.lookup(vlan: 10, mac: macA), -1)
        }
    }

    func testReceivePolicerChargesTheLengthAsReceived() {
        // Port 1 (a trunk) gets each flooded frame tagged before port 2's receive policer charges it: 1000
        // bytes as received, not 1004 as rewritten. Three fit a 3000-byte burst exactly.
        let limited = compiled { $0.receiveBandwidthLimit = 8_000_000; $0.receiveBurstSize = 3000 }
        let sw = TestSwitch([PortSpec(index: 0, policy: .access(10)), PortSpec(index: 1, policy: .trunk([10])),
                             PortSpec(index: 2, compiled: limited)])
        let out = sw.inject(0, Array(repeating: frame(dst: bcast, src: macA, payload: 986), count: 3))
        XCTAssertEqual(out[1]?.map { Wire($0).tags }, Array(repeating: [tag(10)], count: 3))
        XCTAssertEqual(out[2]?.count, 3)
        XCTAssertEqual(sw.counters(2).drops(.policer), 0)
    }
}
