// libFuzzer driver for the frame parser and forwarding pipeline (issue 6, item 1b).
// Built by fuzz/build.sh, run by `make fuzz`.
//
// The switch: one ForwardingEngine over in-memory ports (like Tests/VSwitchCoreTests/Support.swift's
// TestSwitch), ports bound to the real example profiles (topologies/profiles/examples.xml and
// tenants.xml: access, trunk, tagged-only trunk with a tagged native VLAN, Dot1Q tunnel, promiscuous;
// anti-spoofing with allow lists, DHCP/router guards, ACLs both ways with default deny, policers,
// storm control, MAC limits), plus one jumbo port and a small MAC table (64 entries) so that
// "table full" and aging are reachable.
//
// Input: a sequence of records. Record = [h][lenHi][lenLo][frame bytes…]:
//   port = h % portCount; h & 0x80: first advance the clock by (lenHi << 8 | lenLo) << 14 ns (≤ ~1 s);
//   (h & 0x70) == 0x70 and lenHi == 0x5A: toggle the port's admin state and publish a new snapshot
//   (no frame; at most 4 per input: a snapshot costs far more than a frame).
//   Frame length = (lenHi << 8 | lenLo) % 9100 bytes, truncated to what is left of the input.
// Consecutive records for the same port form one batch (≤ 64 frames), as the receive loop would.
//
// Invariants checked on every batch (a violation aborts with a message, so libFuzzer saves the input):
//   1. rx_packets of the ingress port grows by exactly the batch size;
//   2. after classify, every frame is decided exactly once: unicast to a port, flood, or drop, and
//      the drop counters (all ports, all reasons) grow by exactly the number of dropped frames;
//   3. transmit: (frames sent) + (egress drops) = the number of (frame, port) deliveries classify planned;
//      tx_packets grow by exactly the frames sent;
//   4. no frame is sent back out of its ingress port, to a port that is down, or to a port whose
//      VLAN set does not contain the frame's VLAN; a frame leaving tagged carries that VLAN's VID.
import VSwitchCore
import VSwitchPacket
import VSwitchPolicy
import VSwitchProfiles
#if canImport(Glibc)
import Glibc
#endif

let repoRoot: String = {
    if let r = getenv("VSWITCH_REPO") { return String(cString: r) }
    var p = #filePath
    for _ in 0..<2 { if let s = p.lastIndex(of: "/") { p = String(p[..<s]) } }
    return p
}()

func fail(_ message: String) -> Never {
    fputs("PipelineFuzz invariant violated: \(message)\n", stderr)
    abort()
}

/// (profile ID, MTU) of each port, index = port number.
let portProfiles: [(String, Int)] = [
    ("urn:vswitch:profile:web-server", 1500),           // 0 access 100, guards, ACLs, storm, anti-spoofing
    ("urn:vswitch:profile:access-100", 1500),           // 1 access 100
    ("6f1c2a3e-0b4d-4e5f-8a9b-0c1d2e3f4a5b", 1500),     // 2 rate-limited tenant, AllowedToReceive, PCP remark
    ("vsi-7-customer-acme", 1500),                      // 3 Dot1Q tunnel, S-VLAN 300, MAC limit
    ("monitor-1", 1500),                                // 4 promiscuous, learns nothing, may send nothing
    ("urn:vswitch:profile:uplink-trunk", 1500),         // 5 trunk, tagged only, native tagged
    ("urn:vswitch:profile:tenant-a", 1500),             // 6 access 10
    ("urn:vswitch:profile:tenant-b", 1500),             // 7 access 20
    ("urn:vswitch:profile:trunk-ab", 9000),             // 8 trunk 10,20 (jumbo)
    ("urn:vswitch:profile:trunk-native", 1500),         // 9 trunk with a native VLAN
    ("urn:vswitch:profile:access-100", 1500),           // 10 access 100 (a second one: unicast targets)
]
func portMAC(_ p: Int) -> UInt64 { 0x0200_0000_0000 | UInt64(p + 1) }

final class Harness {
    var specs: [PortSpec] = []
    let table = MACTable(limit: 64)
    let runtime = PortRuntime()
    var snapshot: ConfigSnapshot
    var generation: UInt64 = 1
    let engine = ForwardingEngine(batchCapacity: 64)
    var batch = FrameBatch(capacity: 64, dataRoom: 9100)
    var nowNs: UInt64 = 1000 * 1_000_000_000

    init() {
        var profiles: [PortProfile] = []
        for file in ["topologies/profiles/examples.xml", "topologies/profiles/tenants.xml"] {
            do { profiles += try ProfileLoader.load(path: repoRoot + "/" + file).profiles } catch {
                fail("cannot load \(file) (set VSWITCH_REPO to the repository root): \(error)")
            }
        }
        for (i, (id, mtu)) in portProfiles.enumerated() {
            guard let p = profiles.first(where: { $0.networkPortProfileID == id }) else { fail("no profile \(id)") }
            specs.append(PortSpec(index: i, up: true, mtu: mtu, mac: portMAC(i),
                                  compiled: PolicyCompiler.compilePort(p, mtu: mtu)))
        }
        snapshot = ConfigSnapshot(generation: 1, ports: specs, macTable: table, runtime: runtime)
        checkFloodLists()
    }

    func publish() {
        generation += 1
        snapshot = ConfigSnapshot(generation: generation, ports: specs, macTable: table, runtime: runtime)
        checkFloodLists()
    }

    /// Every flood list member carries the VLAN and is up.
    func checkFloodLists() {
        let v = snapshot.view.pointee
        for vlan in 0..<4096 {
            var f = Int(v.floodStart[vlan])
            while f < Int(v.floodStart[vlan + 1]) {
                let p = Int(v.floodPorts[f])
                if !specs[p].policy.vlans.contains(UInt16(vlan)) { fail("flood list of VLAN \(vlan) holds port \(p) without it") }
                f += 1
            }
        }
    }

    func sumDrops() -> UInt64 {
        var s: UInt64 = 0
        for p in 0..<specs.count { for r in DropReason.allCases { s &+= engine.counters.read(port: p, PortCounter.dropBase + Int(r.rawValue)) } }
        return s
    }
    func sumTx() -> UInt64 {
        var s: UInt64 = 0
        for p in 0..<specs.count { s &+= engine.counters.read(port: p, PortCounter.txPackets) }
        return s
    }

    func run(ingress: Int) {
        let n = batch.count
        guard n > 0 else { return }
        let view = snapshot.view
        let rx0 = engine.counters.read(port: ingress, PortCounter.rxPackets)
        let drops0 = sumDrops()
        let now = UInt32(truncatingIfNeeded: nowNs / 1_000_000_000)
        engine.classify(batch, ingress: ingress, view: view, now: now, nowNs: nowNs)
        if engine.counters.read(port: ingress, PortCounter.rxPackets) &- rx0 != UInt64(n) { fail("rx_packets did not grow by \(n)") }
        var dropped = 0
        var planned = 0
        let v = view.pointee
        for i in 0..<n {
            let m = batch.meta[i]
            switch m.output {
            case FrameMeta.drop:
                dropped += 1
                if DropReason(rawValue: m.reason) == nil { fail("frame \(i) dropped with unknown reason \(m.reason)") }
            case FrameMeta.flood:
                var f = Int(v.floodStart[Int(m.vlan)])
                while f < Int(v.floodStart[Int(m.vlan) + 1]) { if Int(v.floodPorts[f]) != ingress { planned += 1 }; f += 1 }
            default:
                let out = Int(m.output)
                if out >= specs.count || out == ingress { fail("frame \(i) unicast to port \(out) (ingress \(ingress))") }
                planned += 1
                if v.anyPromiscuous {
                    var f = Int(v.promiscStart[Int(m.vlan)])
                    while f < Int(v.promiscStart[Int(m.vlan) + 1]) {
                        let p = Int(v.promiscPorts[f]); if p != ingress && p != out { planned += 1 }; f += 1
                    }
                }
            }
        }
        let drops1 = sumDrops()
        if drops1 &- drops0 != UInt64(dropped) {
            fail("classify dropped \(dropped) frames but drop counters grew by \(drops1 &- drops0)")
        }
        var backend = CheckingBackend(harness: self, ingress: ingress)
        let tx0 = sumTx()
        engine.transmit(batch, view: view, nowNs: nowNs, backend: &backend)
        let egressDrops = sumDrops() &- drops1
        let tx = sumTx() &- tx0
        if tx != UInt64(backend.sent) { fail("tx_packets grew by \(tx), backend saw \(backend.sent) sends") }
        if UInt64(backend.sent) &+ egressDrops != UInt64(planned) {
            fail("planned \(planned) deliveries; sent \(backend.sent) + egress drops \(egressDrops)")
        }
        batch.count = 0
    }
}

struct CheckingBackend: PortBackend {
    let harness: Harness
    let ingress: Int
    var sent = 0

    mutating func receive(port: Int, entry: UnsafeMutablePointer<PortEntry>, into batch: inout FrameBatch) -> Int { 0 }

    mutating func send(port: Int, entry: UnsafeMutablePointer<PortEntry>, batch: FrameBatch, frame: Int) -> SendResult {
        let spec = harness.specs[port]
        let m = batch.meta[frame]
        if port == ingress { fail("frame \(frame) sent back out of its ingress port \(port)") }
        if !spec.up { fail("frame \(frame) sent out of port \(port), which is down") }
        if !spec.policy.vlans.contains(m.vlan) { fail("frame \(frame) of VLAN \(m.vlan) sent out of port \(port), which does not carry it") }
        let len = Int(m.length)
        if len < 14 { fail("frame \(frame) sent with \(len) bytes") }
        let d = batch.data(frame).assumingMemoryBound(to: UInt8.self)
        let tag = spec.policy.egressTag(vlan: m.vlan, pcp: m.pcp, serviceTag: m.flags & FrameMeta.serviceTag != 0)
        if tag != 0 {
            if len < 18 { fail("tagged frame shorter than 18 bytes") }
            let tpid = UInt16(d[12]) << 8 | UInt16(d[13])
            let vid = (UInt16(d[14]) << 8 | UInt16(d[15])) & 0x0FFF
            if UInt32(tpid) != tag >> 16 || vid != UInt16(truncatingIfNeeded: tag) & 0x0FFF {
                fail("frame \(frame) left port \(port) with tag \(tpid)/\(vid), expected \(tag >> 16)/\(tag & 0xFFF)")
            }
        }
        sent += 1
        return .sent
    }
}

let harness = Harness()

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOne(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    guard let data, size > 0 else { return 0 }
    let h = harness
    let ports = h.specs.count
    var o = 0
    var current = -1
    var toggles = 0
    while o + 3 <= size {
        let hdr = Int(data[o]), hi = Int(data[o + 1]), lo = Int(data[o + 2])
        o += 3
        let port = hdr % ports
        if hdr & 0x80 != 0 { h.nowNs &+= UInt64(hi << 8 | lo) << 14 }   // up to ~1 s per record
        if current >= 0 && (port != current || h.batch.count == h.batch.capacity) { h.run(ingress: current); current = -1 }
        if hdr & 0x70 == 0x70 && hi == 0x5A && toggles < 4 {
            toggles += 1
            if current >= 0 { h.run(ingress: current); current = -1 }
            h.specs[port].up.toggle()
            h.publish()
            continue
        }
        let want = (hi << 8 | lo) % 9100
        let len = min(want, size - o)
        _ = h.batch.append(UnsafeRawBufferPointer(start: data + o, count: len))
        o += len
        current = port
    }
    if current >= 0 { h.run(ingress: current) }
    return 0
}
