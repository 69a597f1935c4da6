import XCTest
@testable import VSwitchCore
import VSwitchPolicy

/// The per-port allow sets (ConfigView.allowSets) the forwarding path probes for allow-lists longer than 8:
/// every key of a port's list is found in its own set, in both directions, and nothing else is — keys that
/// share a home slot (probe sequences past the two slots judged inline, and running off the home slots'
/// end without wrap-around) included.
final class AllowSetTests: XCTestCase {
    func testPerPortAllowSetsHoldExactlyThePortsKeys() {
        var rng = SystemRandomNumberGenerator()
        let table = MACTable(limit: 1024)
        defer { table.deallocate() }
        let portCount = 12
        var tx: [[UInt64]] = [], rx: [[UInt64]] = []
        for p in 0..<portCount {
            let count = [0, 5, 8, 9, 40, 130][p % 6]
            var keys: [UInt64] = []
            if count >= 40 {
                // Keys with one home slot, and keys homed in the last home slot (their sequence runs off the end).
                var home = 16
                while home < count * 4 { home <<= 1 }
                for target in [3, home - 1] {
                    var n = 0
                    while n < 5 {
                        let k = UInt64.random(in: 1..<(1 << 48), using: &rng) | (p % 2 == 0 ? 0 : UInt64.random(in: 1...4094, using: &rng) << 48)
                        if ConfigView.allowSetSlot(k, mask: home - 1) == target && !keys.contains(k) { keys.append(k); n += 1 }
                    }
                }
            }
            while keys.count < count { keys.append(UInt64.random(in: 1..<(1 << 48), using: &rng) | UInt64.random(in: 0...4094, using: &rng) << 48) }
            tx.append(keys)
            rx.append(keys.map { $0 ^ 0x0000_0100_0000_0000 })
        }
        let specs = (0..<portCount).map { p -> PortSpec in
            var c = CompiledPort(policy: .access(10))
            c.allowedTransmit = tx[p].sorted()
            c.allowedReceive = rx[p].sorted()
            c.policy.sourceMACFiltering = true
            return PortSpec(index: p, compiled: c)
        }
        let snap = ConfigSnapshot(generation: 1, ports: specs, macTable: table)
        withExtendedLifetime(snap) {
            let view = snap.view.pointee
            for p in 0..<portCount {
                let e = view.ports[p]
                for (keys, other, set, mask) in [(tx[p], rx[p], e.txAllowSet, e.txAllowSetMask), (rx[p], tx[p], e.rxAllowSet, e.rxAllowSetMask)]
                    where keys.count > 8 {
                    let s = UnsafePointer(view.allowSets + Int(set))
                    for k in keys { XCTAssertTrue(ConfigView.allowSetContains(s, mask: Int(mask), k), "port \(p) key \(k)") }
                    for k in other { XCTAssertFalse(ConfigView.allowSetContains(s, mask: Int(mask), k)) }
                    for _ in 0..<500 {
                        let k = UInt64.random(in: 1..<(1 << 48), using: &rng) | UInt64.random(in: 0...4094, using: &rng) << 48
                        XCTAssertEqual(ConfigView.allowSetContains(s, mask: Int(mask), k), keys.contains(k))
                    }
                }
            }
        }
    }
}

/// ConfigView.aclUnions: the mask a both-directions verdict-cache entry is keyed on must cover both ports'
/// masks (a wider one only costs cache hits). Ports past the 31st distinct mask of a direction share the
/// all-ones class.
final class ACLUnionMaskTests: XCTestCase {
    func testUnionOfEveryPortPairCoversBothMasks() {
        var rng = SystemRandomNumberGenerator()
        let table = MACTable(limit: 1024)
        defer { table.deallocate() }
        let portCount = 90
        let specs = (0..<portCount).map { p -> PortSpec in
            var c = CompiledPort(policy: .access(10))
            for outbound in [false, true] where p % 7 != 3 {
                var r = ACLMatchRule()
                r.fields = ACLMatchRule.Fields(rawValue: UInt32.random(in: 1..<(1 << 13), using: &rng))
                if outbound { c.outboundACL = [r] } else { c.inboundACL = [r] }
            }
            return PortSpec(index: p, compiled: c)
        }
        let snap = ConfigSnapshot(generation: 1, ports: specs, macTable: table)
        withExtendedLifetime(snap) {
            let view = snap.view.pointee
            func words(_ k: FlowKey) -> [UInt64] { withUnsafeBytes(of: k) { b in (0..<8).map { b.load(fromByteOffset: $0 * 8, as: UInt64.self) } } }
            var sharedAllOnes = 0
            for a in 0..<portCount {
                let outMask = words(view.ports[a].aclOutMask)
                if view.ports[a].aclUnionRow == 0 { sharedAllOnes += 1 }
                for b in 0..<portCount {
                    let inMask = words(view.ports[b].aclInMask)
                    let u = UnsafeRawPointer(view.aclUnions + Int(view.ports[a].aclUnionRow) + Int(view.ports[b].aclUnionColumn))
                    for w in 0..<8 {
                        let uw = u.load(fromByteOffset: w * 8, as: UInt64.self)
                        XCTAssertEqual(uw & outMask[w], outMask[w])
                        XCTAssertEqual(uw & inMask[w], inMask[w])
                    }
                }
            }
            XCTAssertGreaterThan(sharedAllOnes, 0, "more distinct masks than classes: some ports use the all-ones class")
        }
    }

    /// The snapshot's flood and promiscuous lists (each port's VLANs walked in its set's words) against lists
    /// built from `VLANSet.members` as before (issue 3): up ports carrying v, in index order, VIDs 1...4094 only.
    func testFloodListsMatchTheMembersOfEachPort() {
        let table = MACTable(limit: 1024)
        let portCount = 40
        let specs = (0..<portCount).map { p -> PortSpec in
            var vids: [UInt16] = [0, 4095, UInt16(1 + p % 7)]
            for _ in 0..<(p % 5 == 0 ? 600 : 20) { vids.append(UInt16.random(in: 0...4095)) }
            var policy = PortPolicy(mode: .trunk, pvid: 1, vlans: VLANSet(vids))
            policy.promiscuous = p % 3 == 0
            return PortSpec(index: (p * 7) % portCount, up: p % 4 != 1, policy: policy)
        }
        var lists = [[UInt16]](repeating: [], count: 4096), promisc = [[UInt16]](repeating: [], count: 4096)
        for s in specs.sorted(by: { $0.index < $1.index }) where s.up {
            for v in s.policy.vlans.members where v >= 1 && v <= 4094 {
                lists[Int(v)].append(UInt16(s.index))
                if s.policy.promiscuous { promisc[Int(v)].append(UInt16(s.index)) }
            }
        }
        let snap = ConfigSnapshot(generation: 1, ports: specs, macTable: table)
        withExtendedLifetime(snap) {
            let view = snap.view.pointee
            for v in 0..<4096 {
                let flood = (Int(view.floodStart[v])..<Int(view.floodStart[v + 1])).map { view.floodPorts[$0] }
                let prom = (Int(view.promiscStart[v])..<Int(view.promiscStart[v + 1])).map { view.promiscPorts[$0] }
                XCTAssertEqual(flood, lists[v], "VLAN \(v)")
                XCTAssertEqual(prom, promisc[v], "VLAN \(v)")
            }
        }
    }
}
