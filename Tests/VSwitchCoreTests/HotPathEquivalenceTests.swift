import VSwitchCore
import VSwitchPacket
import VSwitchPolicy
import Foundation
import XCTest

/// Issue 3, per-frame fast paths checked against the straightforward code on many random inputs:
/// the flow-key parser (inline IPv4 TCP/UDP path + general parser, keys written as whole words), the
/// allow-list hash probe (two slots judged without branches), and the ACL verdict cache (folded hash,
/// keys in vector lanes) against a plain walk of the rules.
final class HotPathEquivalenceTests: XCTestCase {
    // MARK: flow key

    /// The parser as it was before the fast path: field by field into a zeroed key.
    static func referenceKey(_ f: [UInt8], vlan: UInt16, pcp: UInt8) -> FlowKey {
        var k = FlowKey()
        let len = f.count
        func be16(_ o: Int) -> UInt16 { UInt16(f[o]) << 8 | UInt16(f[o + 1]) }
        func be32(_ o: Int) -> UInt32 { UInt32(be16(o)) << 16 | UInt32(be16(o + 2)) }
        func be64(_ o: Int) -> UInt64 { UInt64(be32(o)) << 32 | UInt64(be32(o + 4)) }
        k.dst = f[0..<6].reduce(0) { $0 << 8 | UInt64($1) }
        k.src = f[6..<12].reduce(0) { $0 << 8 | UInt64($1) }
        k.vlan = vlan
        k.pcp = pcp
        var off = 12
        var et = be16(12)
        var tags = 0
        while (et == 0x8100 || et == 0x88A8) && tags < 2 && off + 6 <= len {
            off += 4
            et = be16(off)
            tags += 1
        }
        k.etherType = et
        off += 2
        var l4 = 0
        var fragmented = false
        if et == 0x0800 && len >= off + 20 {
            let ihl = Int(f[off] & 0x0F) * 4
            guard ihl >= 20, len >= off + ihl else { return k }
            k.ipVersion = 4
            k.proto = f[off + 9]
            fragmented = be16(off + 6) & 0x1FFF != 0
            k.srcIPLo = UInt64(be32(off + 12))
            k.dstIPLo = UInt64(be32(off + 16))
            l4 = off + ihl
        } else if et == 0x86DD && len >= off + 40 {
            k.ipVersion = 6
            var nh = f[off + 6]
            k.srcIPHi = be64(off + 8); k.srcIPLo = be64(off + 16)
            k.dstIPHi = be64(off + 24); k.dstIPLo = be64(off + 32)
            l4 = off + 40
            // The whole extension-header chain (session 8: a cap of four hid the upper layer); one that runs
            // past the frame, or a first fragment without the start of the upper-layer header, is unparsable.
            var complete = false, firstFragment = false
            walk: while true {
                switch nh {
                case 0, 43, 60, 135, 139, 140:
                    guard len >= l4 + 8 else { break walk }
                    let next = f[l4]
                    l4 += (Int(f[l4 + 1]) + 1) * 8
                    nh = next
                case 51:
                    guard len >= l4 + 8 else { break walk }
                    let next = f[l4]
                    l4 += (Int(f[l4 + 1]) + 2) * 4
                    nh = next
                case 44:
                    guard len >= l4 + 8 else { break walk }
                    nh = f[l4]
                    if be16(l4 + 2) >> 3 != 0 { fragmented = true; complete = true; break walk }
                    firstFragment = be16(l4 + 2) & 1 != 0
                    l4 += 8
                default:
                    complete = true
                    break walk
                }
            }
            if !complete || l4 > len || (firstFragment && nh != 59 && len < l4 + 4) {
                k.ipVersion = FlowKey.unparsableIPv6
                return k
            }
            k.proto = nh
        } else {
            return k
        }
        if fragmented { return k }
        switch k.proto {
        case 6, 17:
            if len >= l4 + 4 { k.srcPort = be16(l4); k.dstPort = be16(l4 + 2); k.hasL4 = true }
        case 1, 58:
            if len >= l4 + 2 { k.srcPort = UInt16(f[l4]); k.dstPort = UInt16(f[l4 + 1]); k.hasL4 = true }
        default:
            break
        }
        return k
    }

    static func bytes(_ k: FlowKey) -> [UInt8] { withUnsafeBytes(of: k) { Array($0) } }

    /// A random frame that is often, but not always, an unfragmented IPv4 TCP/UDP packet: 0–3 tags,
    /// IPv4 with any IHL / fragment field / protocol, IPv6 with extension headers, other ethertypes,
    /// cut to a random length.
    static func randomFrame(_ rng: inout some RandomNumberGenerator) -> [UInt8] {
        func r8() -> UInt8 { UInt8.random(in: 0...255, using: &rng) }
        var f: [UInt8] = (0..<12).map { _ in r8() }
        for _ in 0..<[0, 0, 1, 1, 2, 3].randomElement(using: &rng)! {
            let tpid: UInt16 = [0x8100, 0x88A8, 0x8100, 0x0800].randomElement(using: &rng)!
            f += [UInt8(tpid >> 8), UInt8(tpid & 0xFF), r8(), r8()]
        }
        let et: UInt16 = [0x0800, 0x0800, 0x0800, 0x86DD, 0x86DD, 0x0806, UInt16.random(in: 0...0xFFFF, using: &rng)]
            .randomElement(using: &rng)!
        f += [UInt8(et >> 8), UInt8(et & 0xFF)]
        let proto: UInt8 = [6, 17, 6, 17, 1, 58, r8()].randomElement(using: &rng)!
        if et == 0x0800 {
            let ihl: UInt8 = [5, 5, 5, 5, 6, 4, UInt8.random(in: 0...15, using: &rng)].randomElement(using: &rng)!
            let version: UInt8 = [4, 4, 4, 6].randomElement(using: &rng)!
            var ip: [UInt8] = [version << 4 | ihl, r8(), r8(), r8(), r8(), r8(), 0, 0, r8(), proto, r8(), r8()]
            switch Int.random(in: 0..<6, using: &rng) {
            case 0: ip[6] = 0x20                              // MF
            case 1: ip[6] = UInt8.random(in: 0...0x1F, using: &rng); ip[7] = r8()   // offset
            case 2: ip[6] = 0x40                              // DF only: not a fragment
            case 3: ip[6] = 0x80 | 0x40                       // reserved + DF: not a fragment
            default: break
            }
            f += ip
            f += (0..<(8 + Int(ihl) * 4)).map { _ in r8() }   // addresses, options, L4
        } else if et == 0x86DD {
            var ext: [UInt8] = []
            var next = proto
            for _ in 0..<[0, 1, 2, 3, 5, 7].randomElement(using: &rng)! {
                let kind: UInt8 = [0, 43, 60, 44, 51, 135].randomElement(using: &rng)!
                if kind == 44 {
                    ext = [next, 0, r8() & [0, 0xF8].randomElement(using: &rng)!, r8() & 0xF9, r8(), r8(), r8(), r8()] + ext
                } else if kind == 51 {
                    let units = Int.random(in: 0...2, using: &rng)   // AH: (units + 2) * 4 bytes
                    ext = [next, UInt8(units * 2)] + (0..<(6 + units * 8)).map { _ in r8() } + ext
                } else {
                    let units = Int.random(in: 0...1, using: &rng)
                    ext = [next, UInt8(units)] + (0..<(6 + units * 8)).map { _ in r8() } + ext
                }
                next = kind
            }
            f += [0x60, 0, 0, 0, 0, 0, next, 64] + (0..<32).map { _ in r8() } + ext + (0..<8).map { _ in r8() }
        } else {
            f += (0..<40).map { _ in r8() }
        }
        let cut = Int.random(in: 0..<4, using: &rng) == 0 ? Int.random(in: 14...f.count, using: &rng) : f.count
        return Array(f[0..<cut])
    }

    func testFlowKeyParserMatchesTheReferenceOnRandomFrames() {
        var rng = SystemRandomNumberGenerator()
        var batch = FrameBatch(capacity: 1)
        defer { batch.deallocate() }
        var fast = 0
        for n in 0..<30_000 {
            let f = Self.randomFrame(&rng)
            batch.count = 0
            XCTAssertTrue(batch.append(f))
            let vlan = UInt16.random(in: 0...4095, using: &rng), pcp = UInt8.random(in: 0...7, using: &rng)
            var k = FlowKey()
            k.reserved = 0xDEAD_BEEF    // the parser writes every byte
            batch.parseFlowKey(0, vlan: vlan, pcp: pcp, into: &k)
            let want = Self.referenceKey(f, vlan: vlan, pcp: pcp)
            XCTAssertEqual(Self.bytes(k), Self.bytes(want), "frame \(n): \(f)")
            // The words the ingress policy keeps in registers are the same key.
            var viaWords = FlowKey()
            batch.flowWords(0, vlan: vlan, pcp: pcp, src: batch.source(0), dst: batch.destination(0))
                .store(UnsafeMutableRawPointer(&viaWords))
            XCTAssertEqual(Self.bytes(viaWords), Self.bytes(want), "frame \(n)")
            if want.ipVersion == 4 && want.hasL4 && (want.proto == 6 || want.proto == 17) { fast += 1 }
            if Self.bytes(k) != Self.bytes(want) { break }
        }
        XCTAssertGreaterThan(fast, 1_500, "the inline IPv4 TCP/UDP path was exercised")
    }

    func testFlowWordAccessorsMatchFlowKeyFields() {
        var batch = FrameBatch(capacity: 1)
        defer { batch.deallocate() }
        let f = l3frame(dst: macB, src: macA, tags: [(0x8100, 7, 3)], type: 0x0800,
                        ipv4(src: 0x0A00_0001, dst: 0x0A00_0002, proto: 17, l4: ports(68, 67)))
        XCTAssertTrue(batch.append(f))
        let w = batch.flowWords(0, vlan: 7, pcp: 3, src: batch.source(0), dst: batch.destination(0))
        let k = Self.referenceKey(f, vlan: 7, pcp: 3)
        XCTAssertEqual(w.ipVersion, k.ipVersion)
        XCTAssertEqual(w.proto, k.proto)
        XCTAssertEqual(w.hasL4, k.hasL4)
        XCTAssertEqual(w.srcPort, k.srcPort)
        XCTAssertEqual(k.srcPort, 68)
    }

    // MARK: allow-list hash

    func testAllowHashTwoSlotProbeMatchesThePlainProbe() {
        var rng = SystemRandomNumberGenerator()
        let table = MACTable(limit: 1024)
        defer { table.deallocate() }
        let portCount = 30, perPort = 40
        // The snapshot's table size for this many keys (ConfigSnapshot: at most a quarter full).
        var slots = 16
        while slots < portCount * perPort * 4 { slots <<= 1 }
        var lists: [[UInt64]] = []
        for p in 0..<portCount {
            let tag = ConfigView.allowTag(port: p, receive: false)
            var keys: [UInt64] = []
            if p == 0 {
                // Five keys with one home slot: they sit 0–4 slots from it, past the two judged inline.
                let home = ConfigView.allowSlot(0x0200_0000_0001, tag, mask: slots - 1)
                while keys.count < 5 {
                    let k = UInt64(Int.random(in: 1..<(1 << 40), using: &rng))
                    if ConfigView.allowSlot(k, tag, mask: slots - 1) == home { keys.append(k) }
                }
            }
            while keys.count < perPort { keys.append(UInt64(Int.random(in: 1..<(1 << 47), using: &rng)) | UInt64.random(in: 0...4094) << 48) }
            lists.append(keys)
        }
        let specs = lists.enumerated().map { p, keys -> PortSpec in
            var c = CompiledPort(policy: .access(10))
            c.allowedTransmit = keys.sorted()
            c.policy.sourceMACFiltering = true
            return PortSpec(index: p, compiled: c)
        }
        let snap = ConfigSnapshot(generation: 1, ports: specs, macTable: table)
        let view = snap.view.pointee
        XCTAssertEqual(view.allowHashMask, slots - 1)
        var far = 0
        for (p, keys) in lists.enumerated() {
            let tag = ConfigView.allowTag(port: p, receive: false)
            let other = ConfigView.allowTag(port: (p + 1) % portCount, receive: false)
            for k in keys {
                XCTAssertTrue(view.allowHashContains(k, tag))
                XCTAssertTrue(view.allowHashContainsByProbing(k, tag))
                XCTAssertEqual(view.allowHashContains(k, other), lists[(p + 1) % portCount].contains(k))
                XCTAssertFalse(view.allowHashContains(k, ConfigView.allowTag(port: p, receive: true)))
                // Distance from the home slot.
                var h = ConfigView.allowSlot(k, tag, mask: view.allowHashMask), d = 0
                while !(view.allowHash[h * 2] == k && view.allowHash[h * 2 + 1] == tag) { h = (h + 1) & view.allowHashMask; d += 1 }
                if d >= 2 { far += 1 }
            }
            for _ in 0..<200 {
                let k = UInt64.random(in: 1..<(1 << 48), using: &rng)
                XCTAssertEqual(view.allowHashContains(k, tag), view.allowHashContainsByProbing(k, tag))
                XCTAssertEqual(view.allowHashContains(k, tag), keys.contains(k))
            }
        }
        XCTAssertGreaterThanOrEqual(far, 3, "keys past the two inline slots were looked up")
        withExtendedLifetime(snap) {}   // `view` points into the snapshot's memory
    }

    // MARK: ACL verdict cache

    /// Random rule sets on two ports, random flows from a small set (so the verdict cache hits and
    /// slots are shared), each frame sent as known unicast (both directions in one probe) and as a
    /// broadcast (outbound probe at ingress, inbound probe at egress), twice: the switch's decision
    /// must equal the first matching rule of each direction, walked by hand.
    func testACLVerdictsThroughTheCacheEqualTheRules() {
        var rng = SystemRandomNumberGenerator()
        func randomRules(_ prefix: String) -> [ACLRule] {
            (0..<Int.random(in: 1...8, using: &rng)).map { k in
                var r = ACLRule(name: "\(prefix)\(k)", direction: [.inbound, .outbound, .both].randomElement(using: &rng)!,
                                action: Bool.random(using: &rng) ? .allow : .deny, weight: Int.random(in: 1...100, using: &rng))
                if Int.random(in: 0..<3, using: &rng) == 0 { r.proto = ["TCP", "UDP", "ICMP"].randomElement(using: &rng)! }
                if Int.random(in: 0..<3, using: &rng) == 0 { r.remoteIP = ["10.0.0.2", "10.0.0.0/30", "10.0.0.1"].randomElement(using: &rng)! }
                if Int.random(in: 0..<3, using: &rng) == 0 { r.localIP = ["10.0.0.1", "10.0.0.2/31"].randomElement(using: &rng)! }
                if r.proto == "TCP" || r.proto == "UDP" {
                    if Bool.random(using: &rng) { r.remotePort = ["80", "53", "1000-2000"].randomElement(using: &rng)! }
                    if Bool.random(using: &rng) { r.localPort = ["80", "1500"].randomElement(using: &rng)! }
                }
                if Int.random(in: 0..<6, using: &rng) == 0 { r.etherType = [0x0800, 0x86DD].randomElement(using: &rng)! }
                return r
            }
        }
        for round in 0..<30 {
            var profiles: [CompiledPort] = []
            for p in 0..<2 {
                var pp = PortProfile(id: "urn:r\(p)", elementName: "r", instanceID: "o:r\(p)")
                pp.desiredVLANEndpointMode = .access
                pp.portVID = 10
                pp.sourceMACFilteringEnabled = false
                pp.acls = randomRules("p\(p)-")
                pp.inboundAclDefaultAction = Bool.random(using: &rng) ? .deny : .allow
                pp.outboundAclDefaultAction = Bool.random(using: &rng) ? .deny : .allow
                profiles.append(PolicyCompiler.compilePort(pp))
            }
            let sw = TestSwitch([PortSpec(index: 0, mac: macA, compiled: profiles[0]), PortSpec(index: 1, mac: macB, compiled: profiles[1]),
                                 PortSpec(index: 2, policy: .access(10))])
            sw.inject(1, [frame(dst: bcast, src: macB)])   // macB known on port 1
            sw.inject(2, [frame(dst: bcast, src: macC)])
            func verdict(_ rules: [ACLMatchRule], _ k: FlowKey, outbound: Bool, defaultDeny: Bool) -> Bool {
                for r in rules where r.matches(k, outbound: outbound) { return r.allow }
                return !defaultDeny
            }
            for _ in 0..<150 {
                let proto: UInt8 = [6, 17, 1, 6, 17].randomElement(using: &rng)!
                let srcIP: UInt32 = [0x0A00_0001, 0x0A00_0002, 0x0A00_0003].randomElement(using: &rng)!
                let dstIP: UInt32 = [0x0A00_0001, 0x0A00_0002, 0x0A00_0003].randomElement(using: &rng)!
                let sp: UInt16 = [80, 1500, 40000].randomElement(using: &rng)!, dp: UInt16 = [80, 53, 1500, 22].randomElement(using: &rng)!
                for dst in [macB, bcast] {
                    let f = l3frame(dst: dst, src: macA, type: 0x0800, ipv4(src: srcIP, dst: dstIP, proto: proto, l4: ports(sp, dp)))
                    let k = Self.referenceKey(f, vlan: 10, pcp: 0)
                    let want = verdict(profiles[0].outboundACL, k, outbound: true, defaultDeny: profiles[0].policy.outboundDefaultDeny)
                        && verdict(profiles[1].inboundACL, k, outbound: false, defaultDeny: profiles[1].policy.inboundDefaultDeny)
                    for pass in 0..<2 {
                        let out = sw.inject(0, [f])
                        XCTAssertEqual(out[1]?.count ?? 0, want ? 1 : 0,
                                       "round \(round) pass \(pass) \(dst == bcast ? "broadcast" : "unicast") proto \(proto) \(sp)->\(dp)")
                    }
                }
            }
        }
    }
}

/// The receive policer is shared by the threads sending to a port and charged once per output-port list
/// (egressVerdicts: filters and policer in one pass, the policer pass redone when another thread
/// charged it in between). With the clock frozen, GCRA lets through exactly floor(tolerance / cost)
/// equal frames in total, however the threads interleave: a lost or doubled charge changes the count.
final class ReceivePolicerConcurrencyTests: XCTestCase {
    /// The snapshot (read-only) and one result slot per thread.
    struct Shared: @unchecked Sendable {
        let view: UnsafeMutablePointer<ConfigView>
        let results: UnsafeMutablePointer<Int>
    }

    struct CountingBackend: PortBackend {
        var sent = [Int](repeating: 0, count: 4)
        mutating func receive(port: Int, entry: UnsafeMutablePointer<PortEntry>, into batch: inout FrameBatch) -> Int { 0 }
        mutating func send(port: Int, entry: UnsafeMutablePointer<PortEntry>, batch: FrameBatch, frame: Int) -> SendResult {
            sent[port] += 1
            return .sent
        }
    }

    func testTwoThreadsShareTheReceivePolicerExactly() {
        for round in 0..<20 {
            var p = PortProfile(id: "urn:rx", elementName: "rx", instanceID: "o:rx")
            p.desiredVLANEndpointMode = .access
            p.portVID = 10
            p.sourceMACFilteringEnabled = false
            p.receiveBandwidthLimit = 8_000_000          // 1 µs per byte
            p.receiveBurstSize = 4_000_000                // 4 s: 4,000 frames of 1,000 bytes
            let table = MACTable(limit: 1024)
            let snapshot = ConfigSnapshot(generation: 1, ports: [PortSpec(index: 0, policy: .access(10)),
                                                                 PortSpec(index: 1, compiled: PolicyCompiler.compilePort(p)),
                                                                 PortSpec(index: 2, policy: .access(10))], macTable: table)
            let nowNs: UInt64 = 5_000_000_000
            let perThread = 4_000
            let results = UnsafeMutablePointer<Int>.allocate(capacity: 2)
            results.initialize(repeating: 0, count: 2)
            let shared = Shared(view: snapshot.view, results: results)
            withExtendedLifetime(snapshot) {   // the view (and its runtime words) belong to the snapshot
            DispatchQueue.concurrentPerform(iterations: 2) { t in
                let engine = ForwardingEngine(batchCapacity: 16)
                var batch = FrameBatch(capacity: 16)
                var backend = CountingBackend()
                let ingress = t == 0 ? 0 : 2
                let f = frame(dst: bcast, src: t == 0 ? macA : macC, payload: 986)   // 1,000 bytes
                var left = perThread
                while left > 0 {
                    batch.count = 0
                    for _ in 0..<min(16, left) { _ = batch.append(f) }
                    left -= batch.count
                    engine.forward(batch, ingress: ingress, view: shared.view, now: 5, nowNs: nowNs, backend: &backend)
                }
                shared.results[t] = backend.sent[1]
                batch.deallocate(); engine.deallocate()
            }
            }
            XCTAssertEqual(results[0] + results[1], 4_000, "round \(round): \(results[0]) + \(results[1])")
            results.deallocate()
            table.deallocate()
        }
    }
}
