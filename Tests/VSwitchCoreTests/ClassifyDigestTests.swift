import VSwitchCore
import VSwitchPacket
import VSwitchPolicy
import XCTest

/// The whole per-frame pipeline (classify + transmit) pinned by a digest of everything it decides, on
/// random switches and random traffic from a fixed seed: every frame each port sent (bytes, so tags and
/// rewrites count), every counter cell of every port (drops by reason included), and the MAC table.
/// The expected value was recorded on the single-loop classify (main 5481b2c) before the per-frame code
/// was split into stages over the batch (issue 3, session 5): a restructuring of the hot path must
/// keep it. A change of behaviour that is meant must record the new value, and say why, in the commit.
final class ClassifyDigestTests: XCTestCase {
    /// SplitMix64: the same sequence on every machine and Swift version (the stdlib's generators are not).
    struct Rng {
        var s: UInt64
        mutating func next() -> UInt64 {
            s &+= 0x9E37_79B9_7F4A_7C15
            var z = s
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        mutating func below(_ n: Int) -> Int { Int(next() % UInt64(n)) }
        mutating func chance(_ oneIn: Int) -> Bool { below(oneIn) == 0 }
        mutating func pick<T>(_ xs: [T]) -> T { xs[below(xs.count)] }
    }

    /// FNV-1a over 64-bit words.
    struct Digest {
        var h: UInt64 = 0xCBF2_9CE4_8422_2325
        mutating func add(_ v: UInt64) {
            var x = v
            for _ in 0..<8 { h = (h ^ (x & 0xFF)) &* 0x100_0000_01B3; x >>= 8 }
        }
        mutating func add(_ bytes: [UInt8]) { add(UInt64(bytes.count)); for b in bytes { h = (h ^ UInt64(b)) &* 0x100_0000_01B3 } }
    }

    static let stations: [UInt64] = (1...12).map { 0x0200_0000_0B00 | UInt64($0) }

    static func randomProfile(_ rng: inout Rng, port: Int) -> CompiledPort {
        var p = PortProfile(id: "urn:d\(port)", elementName: "d", instanceID: "d:\(port)")
        switch rng.below(6) {
        case 0, 1, 2:
            p.desiredVLANEndpointMode = .access
            p.portVID = rng.pick([10, 20])
        case 3, 4:
            p.desiredVLANEndpointMode = .trunk
            p.trunkedVLANs = rng.pick([[10, 20], [10], [20, 30]])
            if rng.chance(2) { p.portVID = rng.pick([10, 20]) }
            if rng.chance(4) { p.acceptableFrameTypes = .taggedOnly }
            if rng.chance(4) { p.nativeVLANEgressTagged = rng.chance(2) }
        default:
            p.desiredVLANEndpointMode = .dot1qTunnel
            p.portVID = rng.pick([10, 30])
        }
        if rng.chance(3) { p.defaultPriority = UInt8(rng.below(8)) }
        if rng.chance(4) { p.allowedPriorities = [0, 3, 5]; p.priorityViolationAction = rng.chance(2) ? .drop : .remark }
        if rng.chance(3) { p.maxNumMACAddress = UInt32(rng.below(4)); p.macLimitAction = rng.chance(2) ? .drop : .forwardUnlearned }
        p.sourceMACFilteringEnabled = rng.chance(2)
        if rng.chance(2) {
            // Short (linear scan) or long (hash probe) allow-lists, any-VLAN and exact pairs.
            let n = rng.chance(2) ? rng.below(4) : 9 + rng.below(6)
            p.allowedToTransmit = (0..<n).map { _ in
                MACVLANPair(mac: MACAddress(rawValue: rng.pick(stations)), vlan: rng.chance(3) ? rng.pick([10, 20]) : nil)
            }
        }
        if rng.chance(4) {
            let n = rng.chance(2) ? 1 + rng.below(3) : 9 + rng.below(4)
            p.allowedToReceive = (0..<n).map { _ in
                MACVLANPair(mac: MACAddress(rawValue: rng.pick(stations)), vlan: rng.chance(3) ? rng.pick([10, 20]) : nil)
            }
        }
        if rng.chance(4) { p.promiscuous = true }
        if rng.chance(3) { p.enableDhcpGuard = true }
        if rng.chance(3) { p.enableRouterGuard = true }
        if rng.chance(3) { p.limit = rng.pick([1_000_000, 100_000_000]); p.transmitBurstSize = rng.pick([1500, 4000]) }
        if rng.chance(3) { p.receiveBandwidthLimit = rng.pick([1_000_000, 100_000_000]); p.receiveBurstSize = rng.pick([1500, 4000]) }
        if rng.chance(4) { p.broadcastStormLimit = rng.pick([20, 1_000_000]) }
        if rng.chance(4) { p.multicastStormLimit = rng.pick([20, 1_000_000]) }
        if rng.chance(4) { p.unknownUnicastStormLimit = rng.pick([20, 1_000_000]) }
        if rng.chance(2) {
            p.acls = (0..<(1 + rng.below(6))).map { k in
                var r = ACLRule(name: "r\(k)", direction: rng.pick([.inbound, .outbound, .both]),
                                action: rng.chance(2) ? .allow : .deny, weight: 1 + rng.below(100))
                if rng.chance(3) { r.proto = rng.pick(["TCP", "UDP", "ICMP"]) }
                if rng.chance(3) { r.remoteIP = rng.pick(["10.0.0.2", "10.0.0.0/30", "10.0.0.1"]) }
                if rng.chance(4) { r.localIP = rng.pick(["10.0.0.1", "10.0.0.2/31"]) }
                if r.proto == "TCP" || r.proto == "UDP", rng.chance(2) { r.remotePort = rng.pick(["80", "53", "1000-2000"]) }
                if rng.chance(6) { r.etherType = rng.pick([0x0800, 0x86DD]) }
                if rng.chance(8) { r.remoteMAC = MACAddress(rawValue: rng.pick(stations)) }
                if rng.chance(8) { r.vlanID = rng.pick([10, 20]) }
                return r
            }
            if rng.chance(2) { p.inboundAclDefaultAction = rng.chance(2) ? .deny : .allow }
            if rng.chance(2) { p.outboundAclDefaultAction = rng.chance(2) ? .deny : .allow }
        }
        return PolicyCompiler.compilePort(p)
    }

    static func randomFrame(_ rng: inout Rng) -> [UInt8] {
        let dst: UInt64 = rng.chance(8) ? bcast : rng.chance(10) ? 0x0100_5E00_0001 : rng.pick(stations)
        let src: UInt64 = rng.chance(40) ? 0x0100_5E00_0002 : rng.chance(60) ? 0 : rng.pick(stations)
        var tags: [(tpid: UInt16, vid: UInt16, pcp: UInt8)] = []
        switch rng.below(8) {
        case 0, 1, 2: break
        case 3, 4: tags = [(0x8100, rng.pick([10, 20, 30, 40]), UInt8(rng.below(8)))]
        case 5: tags = [(0x8100, rng.pick([0, 0xFFF]), UInt8(rng.below(8)))]
        case 6: tags = [(0x88A8, rng.pick([10, 20]), UInt8(rng.below(8)))]
        default: tags = [(rng.pick([0x8100, 0x88A8]), rng.pick([10, 20]), 0), (0x8100, 100, UInt8(rng.below(8)))]
        }
        var f: [UInt8]
        let ip1: UInt32 = rng.pick([0x0A00_0001, 0x0A00_0002, 0x0A00_0003])
        let ip2: UInt32 = rng.pick([0x0A00_0001, 0x0A00_0002, 0x0A00_0003])
        switch rng.below(9) {
        case 0, 1, 2:
            f = l3frame(dst: dst, src: src, tags: tags, type: 0x0800,
                        ipv4(src: ip1, dst: ip2, proto: 17, l4: ports(rng.pick([67, 547, 4000, 53]), rng.pick([53, 80, 1500]))))
        case 3:
            f = l3frame(dst: dst, src: src, tags: tags, type: 0x0800,
                        ipv4(src: ip1, dst: ip2, proto: 6, l4: ports(rng.pick([80, 1500]), rng.pick([22, 80])),
                             fragmentOffset: rng.chance(4) ? 0x0010 : 0))
        case 4:
            f = l3frame(dst: dst, src: src, tags: tags, type: 0x0800,
                        ipv4(src: ip1, dst: ip2, proto: 1, l4: [UInt8(rng.pick([5, 8, 0])), 0, 0, 0]))
        case 5:
            let a = [UInt8](repeating: 0xFD, count: 15) + [1], b = [UInt8](repeating: 0xFD, count: 15) + [2]
            f = l3frame(dst: dst, src: src, tags: tags, type: 0x86DD,
                        ipv6(src: a, dst: b, next: rng.pick([58, 17]), l4: [UInt8(rng.pick([134, 137, 128])), 0, 2, 35, 0, 8, 0, 0]))
        case 6:
            f = frame(dst: dst, src: src, tags: tags, type: 0x0806, payload: 28)
        case 7:
            f = frame(dst: dst, src: src, tags: tags, type: 0x0800, payload: rng.pick([1480, 1500, 1520]))
        default:
            f = frame(dst: dst, src: src, tags: tags, type: 0x0800, payload: 46)
            f = Array(f.prefix(rng.pick([10, 14, 16, 18, 21, 30])))
        }
        return f
    }

    /// Runs the random switches and returns the digest.
    static func run(seed: UInt64, rounds: Int) -> UInt64 {
        var rng = Rng(s: seed)
        var d = Digest()
        let portCount = 6
        var seen = [UInt64](repeating: 0, count: PortCounter.count)
        for _ in 0..<rounds {
            let specs = (0..<portCount).map { p in
                PortSpec(index: p, up: !rng.chance(12), mtu: 1500, mac: rng.chance(2) ? stations[p] : 0, compiled: randomProfile(&rng, port: p))
            }
            let sw = TestSwitch(specs, macLimit: rng.chance(4) ? 6 : 65_536)
            for _ in 0..<40 {
                let port = rng.below(portCount)
                let frames = (0..<(1 + rng.below(70))).map { _ in randomFrame(&rng) }
                if rng.chance(3) { sw.extraNs += UInt64(rng.below(2_000_000)) }
                if rng.chance(10) { sw.now += 1 }
                let out = sw.inject(port, frames)
                for p in out.keys.sorted() {
                    d.add(UInt64(p))
                    for f in out[p]! { d.add(f) }
                }
            }
            for p in 0..<portCount {
                for c in 0..<PortCounter.count { d.add(sw.engine.counters.read(port: p, c)); seen[c] &+= sw.engine.counters.read(port: p, c) }
            }
            for e in sw.table.entries(now: sw.now) {
                d.add(UInt64(e.vlan) << 48 | e.mac); d.add(UInt64(e.port)); d.add(e.isStatic ? 1 : 0); d.add(UInt64(e.age))
            }
        }
        // What the run exercised (a digest over a run that drops nothing would prove little).
        print("classify digest run: rx \(seen[PortCounter.rxPackets]) tx \(seen[PortCounter.txPackets]) floods \(seen[PortCounter.floods]) moves \(seen[PortCounter.macMoves]); drops "
              + DropReason.allCases.map { "\($0.name) \(seen[PortCounter.dropBase + Int($0.rawValue)])" }.joined(separator: ", "))
        return d.h
    }

    func testClassifyDecisionsMatchTheRecordedDigest() {
        let got = Self.run(seed: 0x5EED_0003, rounds: 60)
        print("classify digest: 0x" + String(got, radix: 16))
        // Recorded again in session 8 (was 0xF628_B4B7_72DA_5AEC), for two meant changes and only them (each
        // reverted alone gives a third value, both reverted give the old one): a frame costing more than a
        // policer's burst passes from a full bucket instead of never, and receive policers charge the length
        // as received rather than after an earlier output port's tag rewrite (PolicyEdgeCaseTests).
        XCTAssertEqual(got, 0xC791_9AA0_FDAE_3D30)
    }
}
