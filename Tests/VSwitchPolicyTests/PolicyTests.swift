@testable import VSwitchPolicy
import XCTest

final class VLANSetTests: XCTestCase {
    func testMembership() {
        var s = VLANSet([1, 63, 64, 4094])
        XCTAssertTrue(s.contains(1) && s.contains(63) && s.contains(64) && s.contains(4094))
        XCTAssertFalse(s.contains(2) || s.contains(65) || s.contains(4095) || s.contains(0))
        s.insert(100)
        XCTAssertEqual(s.members, [1, 63, 64, 100, 4094])
        XCTAssertTrue(VLANSet().isEmpty)
        XCTAssertEqual(VLANSet([5, 6]), VLANSet([6, 5]))
    }
}

final class EgressTagTests: XCTestCase {
    func testAccessAndTunnelNeverTag() {
        XCTAssertEqual(PortPolicy.access(10).egressTag(vlan: 10, pcp: 5), 0)
        XCTAssertEqual(PortPolicy.tunnel(10).egressTag(vlan: 10, pcp: 5), 0)
    }

    func testTrunkTagsAllButTheNativeVLAN() {
        let t = PortPolicy.trunk([10, 20], native: 30)
        XCTAssertEqual(t.egressTag(vlan: 10, pcp: 5), 0x8100_0000 | 5 << 13 | 10)
        XCTAssertEqual(t.egressTag(vlan: 30, pcp: 5), 0)
        let tagged = PortPolicy.trunk([10, 20], native: 30, nativeTagged: true)
        XCTAssertEqual(tagged.egressTag(vlan: 30, pcp: 0), 0x8100_0000 | 30)
        XCTAssertTrue(t.vlans.contains(30), "the native VLAN is carried")
        XCTAssertTrue(t.acceptUntagged)
        XCTAssertFalse(PortPolicy.trunk([10]).acceptUntagged, "no native VLAN")
        XCTAssertFalse(PortPolicy.trunk([10], native: 30, taggedOnly: true).acceptUntagged)
    }

    func testMACLimitFromProfileAndSwitch() {
        var p = PortProfile(id: "urn:p", elementName: "p", instanceID: "o:p")
        XCTAssertEqual(PolicyCompiler.compile(p).macLimit, .max)
        XCTAssertEqual(PolicyCompiler.compile(p, switchMACLimit: 100).macLimit, 100)
        p.maxNumMACAddress = 0
        XCTAssertFalse(PolicyCompiler.compile(p, switchMACLimit: 100).learning, "0 = learn nothing")
        p.maxNumMACAddress = 5
        p.macLimitAction = .forwardUnlearned
        let c = PolicyCompiler.compile(p, switchMACLimit: 100)
        XCTAssertEqual(c.macLimit, 5)
        XCTAssertTrue(c.forwardUnlearned)
    }
}

final class PolicyDiffTests: XCTestCase {
    func testDescribesEachChangedSetting() {
        var p = PortProfile(id: "urn:p", elementName: "p", instanceID: "o:p")
        p.desiredVLANEndpointMode = .trunk
        p.trunkedVLANs = [10, 20]
        let before = PolicyCompiler.compilePort(p)
        XCTAssertEqual(PolicyDiff.describe(old: before, new: before), [])
        p.trunkedVLANs = [10, 30]
        p.limit = 1_000_000
        var r = ACLRule(name: "x", direction: .inbound, action: .deny, weight: 1)
        r.proto = "TCP"
        p.acls = [r]
        let after = PolicyCompiler.compilePort(p)
        let lines = PolicyDiff.describe(old: before, new: after)
        XCTAssertTrue(lines.contains("VLANs: 10,20 -> 10,30"), "\(lines)")
        XCTAssertTrue(lines.contains("transmit limit (bit/s): 0 -> 1000000"), "\(lines)")
        XCTAssertTrue(lines.contains("inbound ACL rules: 0 -> 1"), "\(lines)")
        XCTAssertFalse(lines.contains { $0.hasPrefix("outbound ACL rules") })
    }
}

/// The ACL verdict cache handles a FlowKey as eight 64-bit words (ForwardingEngine.ACLVerdictCache):
/// these tests pin the layout that relies on and the equivalence of the word mask with `masked(by:)`.
final class FlowKeyWordTests: XCTestCase {
    func testLayoutIsEightWordsWithoutPadding() {
        XCTAssertEqual(MemoryLayout<FlowKey>.size, 64)
        XCTAssertEqual(MemoryLayout<FlowKey>.stride, 64)
        XCTAssertEqual(MemoryLayout<FlowKey>.offset(of: \FlowKey.src), 0)
        XCTAssertEqual(MemoryLayout<FlowKey>.offset(of: \FlowKey.dst), 8)
        XCTAssertEqual(MemoryLayout<FlowKey>.offset(of: \FlowKey.etherType), 16)
        XCTAssertEqual(MemoryLayout<FlowKey>.offset(of: \FlowKey.hasL4), 23)
        XCTAssertEqual(MemoryLayout<FlowKey>.offset(of: \FlowKey.srcIPHi), 24)
        XCTAssertEqual(MemoryLayout<FlowKey>.offset(of: \FlowKey.dstIPLo), 48)
        XCTAssertEqual(MemoryLayout<FlowKey>.offset(of: \FlowKey.srcPort), 56)
        XCTAssertEqual(MemoryLayout<FlowKey>.offset(of: \FlowKey.reserved), 60)
    }

    private func words(_ k: FlowKey) -> [UInt64] {
        withUnsafeBytes(of: k) { raw in (0..<8).map { raw.load(fromByteOffset: $0 * 8, as: UInt64.self) } }
    }

    func testWordMaskEqualsMaskedForEveryFieldSet() {
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<200 {
            var k = FlowKey()
            k.src = rng.next() & 0xFFFF_FFFF_FFFF; k.dst = rng.next() & 0xFFFF_FFFF_FFFF
            k.etherType = UInt16.random(in: 0...0xFFFF); k.vlan = UInt16.random(in: 0...4095)
            k.pcp = UInt8.random(in: 0...7); k.ipVersion = [0, 4, 6].randomElement()!; k.proto = UInt8.random(in: 0...255)
            k.hasL4 = Bool.random()
            k.srcIPHi = rng.next(); k.srcIPLo = rng.next(); k.dstIPHi = rng.next(); k.dstIPLo = rng.next()
            k.srcPort = UInt16.random(in: 0...0xFFFF); k.dstPort = UInt16.random(in: 0...0xFFFF)
            let fields = ACLMatchRule.Fields(rawValue: UInt32.random(in: 0..<(1 << 13)))
            let mask = words(FlowKey.mask(for: fields))
            let viaWords = zip(words(k), mask).map { $0 & $1 }
            XCTAssertEqual(viaWords, words(k.masked(by: fields)), "fields \(fields.rawValue)")
        }
    }
}

/// PolicyCompileCache (issue 3): an unchanged profile is not compiled again, a changed one is.
final class PolicyCompileCacheTests: XCTestCase {
    func profile(_ id: String, vid: UInt16) -> PortProfile {
        var p = PortProfile(id: id, elementName: id, instanceID: "x:" + id)
        p.portVID = vid
        var r = ACLRule(name: "ssh", direction: .inbound, action: .deny, weight: 10)
        r.proto = "TCP"; r.localPort = "22"
        p.acls = [r]
        return p
    }

    func testUnchangedIsReusedChangedIsRecompiledUnusedIsDropped() {
        let cache = PolicyCompileCache()
        let a = profile("urn:a", vid: 10), b = profile("urn:b", vid: 20)
        XCTAssertEqual(cache.compiledPort(a), PolicyCompiler.compilePort(a))
        XCTAssertEqual(cache.compiledPort(b, mtu: 9000), PolicyCompiler.compilePort(b, mtu: 9000))
        cache.endRound()
        XCTAssertEqual(cache.compiles, 2)

        // Same values again (a reload where nothing changed): no compilation.
        XCTAssertEqual(cache.compiledPort(a), PolicyCompiler.compilePort(a))
        XCTAssertEqual(cache.compiledPort(b, mtu: 9000), PolicyCompiler.compilePort(b, mtu: 9000))
        XCTAssertEqual(cache.compiles, 2)
        XCTAssertEqual(cache.hits, 2)
        // Other port parameters are another compilation.
        XCTAssertEqual(cache.compiledPort(b, mtu: 1500), PolicyCompiler.compilePort(b, mtu: 1500))
        XCTAssertEqual(cache.compiledPort(a, switchMACLimit: 5), PolicyCompiler.compilePort(a, switchMACLimit: 5))
        XCTAssertEqual(cache.compiles, 4)
        cache.endRound()

        // a changes (same ID): compiled again, and the result is the new one.
        var a2 = a
        a2.acls[0].localPort = "23"
        let c = cache.compiledPort(a2)
        XCTAssertEqual(cache.compiles, 5)
        XCTAssertEqual(c, PolicyCompiler.compilePort(a2))
        XCTAssertNotEqual(c, PolicyCompiler.compilePort(a))
        cache.endRound()
        // Only what the last round used is kept.
        XCTAssertEqual(cache.count, 1)
        _ = cache.compiledPort(b, mtu: 9000)
        XCTAssertEqual(cache.compiles, 6, "b was not used in the previous round, so it was dropped")
    }
}

/// compileRule's byte-level fast paths (issue 3) give what the general parsing gave.
final class CompileFastPathTests: XCTestCase {
    func reference(_ text: String) -> (UInt16, UInt16)? {
        let parts = text.split(separator: "-").compactMap { UInt16($0.trimmingCharacters(in: " ")) }
        if parts.count == 1 { return (parts[0], parts[0]) }
        if parts.count == 2 { return (parts[0], parts[1]) }
        return nil
    }

    func testRangesAndANY() {
        for t in ["22", "0", "65535", "65536", "1-2", "2-1", "-1", "1-", "1--2", "", "a", "00022", "000022", " 22", "1 - 2", "5000-5100", "70000-1"] {
            var r = ACLRule(name: "r", direction: .inbound, action: .deny, weight: 1)
            r.proto = "TCP"; r.localPort = t
            let m = PolicyCompiler.compileRule(r)
            let want = reference(t)
            XCTAssertEqual(m.fields.contains(.localPort), want != nil, t)
            if let want { XCTAssertEqual(m.localPortLo, want.0, t); XCTAssertEqual(m.localPortHi, want.1, t) }
        }
        for t in ["ANY", "any", "AnY", "ANY ", "ａｎｙ", "10.0.0.0/8"] {
            XCTAssertEqual(PolicyCompiler.isAny(t), t.uppercased() == "ANY", t)
        }
    }

    /// compilePort's ACL lists (each rule compiled in list order, then taken in weight order) against the code it
    /// replaced: the indices sorted by weight, each rule compiled and appended to its direction(s).
    func testACLLists() {
        let directions: [ACLDirection] = [.inbound, .outbound, .both]
        for n in [0, 1, 2, 5, 16, 64, 100] {
            for round in 0..<20 {
                var p = PortProfile(id: "urn:t:p", idType: .uri, elementName: "p", instanceID: "t:p")
                p.acls = (0..<n).map { k in
                    var r = ACLRule(name: "r\(k)", direction: directions.randomElement()!, action: k % 2 == 0 ? .allow : .deny,
                                    weight: Int.random(in: 0...(round % 2 == 0 ? 3 : 1000)))
                    r.vlanID = UInt16(k + 1)
                    r.remoteIP = k % 3 == 0 ? "10.\(k).0.0/16" : nil
                    r.proto = k % 4 == 0 ? "udp" : nil
                    return r
                }
                let c = PolicyCompiler.compilePort(p)
                var inbound: [ACLMatchRule] = [], outbound: [ACLMatchRule] = []
                for i in p.acls.indices.sorted(by: { p.acls[$0].weight > p.acls[$1].weight }) {
                    let m = PolicyCompiler.compileRule(p.acls[i])
                    if p.acls[i].direction != .outbound { inbound.append(m) }
                    if p.acls[i].direction != .inbound { outbound.append(m) }
                }
                XCTAssertEqual(c.inboundACL, inbound, "\(n) rules")
                XCTAssertEqual(c.outboundACL, outbound, "\(n) rules")
            }
        }
    }

    /// `protocolNumber` (ASCII folded in place) against the dictionary lookup of the upper-cased text it replaced.
    func testProtocolNumber() {
        for t in ["TCP", "tcp", "Tcp", "UDP", "udp", "ICMP", "icmp", "ICMPv6", "icmpv6", "ICMPV6", "TCP ", " TCP", "", "6",
                  "17", "TC", "TCPX", "ıcmp", "ＴＣＰ", "tcp\u{0}", "ICMP6", "ICMPv", "icmpv6x", "ß", "é", "UDP\u{301}"] {
            XCTAssertEqual(PolicyCompiler.protocolNumber(t), PolicyCompiler.protocolNames[t.uppercased()], t.debugDescription)
            var r = ACLRule(name: "r", direction: .inbound, action: .deny, weight: 1)
            r.proto = t
            let want = PolicyCompiler.protocolNames[t.uppercased()] ?? UInt8(t)
            let m = PolicyCompiler.compileRule(r)
            XCTAssertEqual(m.fields.contains(.proto), want != nil, t.debugDescription)
            if let want { XCTAssertEqual(m.proto, want, t.debugDescription) }
        }
    }
}
