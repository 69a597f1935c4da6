import VSwitchCore
import VSwitchPacket
import VSwitchPolicy
import XCTest

/// Builds an Ethernet frame: dst, src, optional tags (outermost first), ethertype, payload of `payload` bytes.
func frame(dst: UInt64, src: UInt64, tags: [(tpid: UInt16, vid: UInt16, pcp: UInt8)] = [], type: UInt16 = 0x0800,
           payload: Int = 46, fill: UInt8 = 0xAB) -> [UInt8] {
    var b: [UInt8] = []
    for s in [40, 32, 24, 16, 8, 0] { b.append(UInt8(truncatingIfNeeded: dst >> UInt64(s))) }
    for s in [40, 32, 24, 16, 8, 0] { b.append(UInt8(truncatingIfNeeded: src >> UInt64(s))) }
    for t in tags {
        b += [UInt8(t.tpid >> 8), UInt8(t.tpid & 0xFF)]
        let tci = UInt16(t.pcp) << 13 | t.vid
        b += [UInt8(tci >> 8), UInt8(tci & 0xFF)]
    }
    b += [UInt8(type >> 8), UInt8(type & 0xFF)]
    b += [UInt8](repeating: fill, count: payload)
    return b
}

/// Parsed view of a frame for assertions: (tags, ethertype, payload length).
struct Wire: Equatable {
    var dst: UInt64, src: UInt64
    var tags: [UInt32]    // tpid << 16 | tci
    var type: UInt16
    var payload: Int

    init(_ b: [UInt8]) {
        func be16(_ o: Int) -> UInt16 { UInt16(b[o]) << 8 | UInt16(b[o + 1]) }
        dst = b[0..<6].reduce(0) { $0 << 8 | UInt64($1) }
        src = b[6..<12].reduce(0) { $0 << 8 | UInt64($1) }
        var o = 12
        tags = []
        while be16(o) == 0x8100 || be16(o) == 0x88A8 {
            tags.append(UInt32(be16(o)) << 16 | UInt32(be16(o + 2)))
            o += 4
        }
        type = be16(o)
        payload = b.count - o - 2
    }
}

func tag(_ vid: UInt16, pcp: UInt8 = 0, tpid: UInt16 = 0x8100) -> UInt32 { UInt32(tpid) << 16 | UInt32(pcp) << 13 | UInt32(vid) }

let macA: UInt64 = 0x0200_0000_0A01
let macB: UInt64 = 0x0200_0000_0A02
let macC: UInt64 = 0x0200_0000_0A03
let macD: UInt64 = 0x0200_0000_0A04
let bcast: UInt64 = 0xFFFF_FFFF_FFFF

/// A single-threaded switch over memory ports: builds snapshots and forwards synchronously.
final class TestSwitch {
    let store = MemoryPorts()
    var backend: MemoryBackend
    var table: MACTable
    var snapshot: ConfigSnapshot
    let engine = ForwardingEngine(batchCapacity: 64)
    var batch = FrameBatch(capacity: 64)
    var now: UInt32 = 1000
    /// Nanoseconds past `now` (policers and storm control).
    var extraNs: UInt64 = 0
    var nowNs: UInt64 { UInt64(now) * 1_000_000_000 + extraNs }
    let runtime = PortRuntime()
    var generation: UInt64 = 1
    var specs: [PortSpec]

    init(_ specs: [PortSpec], macLimit: Int = 65_536) {
        self.specs = specs
        table = MACTable(limit: macLimit)
        snapshot = ConfigSnapshot(generation: 1, ports: specs, macTable: table, runtime: runtime)
        backend = MemoryBackend(store: store)
    }

    deinit { batch.deallocate(); engine.deallocate(); table.deallocate() }

    func reconfigure(_ specs: [PortSpec]) {
        self.specs = specs
        generation += 1
        snapshot = ConfigSnapshot(generation: generation, ports: specs, macTable: table, runtime: runtime)
    }

    /// Sends frames into `port` and forwards them; returns what each port sent.
    @discardableResult
    func inject(_ port: Int, _ frames: [[UInt8]]) -> [Int: [[UInt8]]] {
        store.clearSent()
        for f in frames { store.enqueue(port, f) }
        while backend.receive(port: port, entry: snapshot.view.pointee.ports + port, into: &batch) > 0 {
            engine.forward(batch, ingress: port, view: snapshot.view, now: now, nowNs: nowNs, backend: &backend)
        }
        return store.outbound
    }

    func counters(_ port: Int) -> PortCounters { PortCounters(port: port, blocks: [engine.counters]) }
}

/// IPv4 + UDP/TCP/ICMP payload builders (checksums are not checked by the switch).
func ipv4(src: UInt32, dst: UInt32, proto: UInt8, l4: [UInt8], fragmentOffset: UInt16 = 0) -> [UInt8] {
    let total = 20 + l4.count
    var h: [UInt8] = [0x45, 0, UInt8(total >> 8), UInt8(total & 0xFF), 0, 0, UInt8(fragmentOffset >> 8), UInt8(fragmentOffset & 0xFF), 64, proto, 0, 0]
    for s in [24, 16, 8, 0] { h.append(UInt8(truncatingIfNeeded: src >> UInt32(s))) }
    for s in [24, 16, 8, 0] { h.append(UInt8(truncatingIfNeeded: dst >> UInt32(s))) }
    return h + l4
}

func ipv6(src: [UInt8], dst: [UInt8], next: UInt8, l4: [UInt8]) -> [UInt8] {
    let len = l4.count
    return [0x60, 0, 0, 0, UInt8(len >> 8), UInt8(len & 0xFF), next, 255] + src + dst + l4
}

func ports(_ sport: UInt16, _ dport: UInt16) -> [UInt8] {
    [UInt8(sport >> 8), UInt8(sport & 0xFF), UInt8(dport >> 8), UInt8(dport & 0xFF), 0, 8, 0, 0] + [UInt8](repeating: 0, count: 12)
}

/// An Ethernet frame carrying `l3` (tags optional).
func l3frame(dst: UInt64, src: UInt64, tags: [(tpid: UInt16, vid: UInt16, pcp: UInt8)] = [], type: UInt16, _ l3: [UInt8]) -> [UInt8] {
    var f = frame(dst: dst, src: src, tags: tags, type: type, payload: 0)
    f += l3
    while f.count < 60 { f.append(0) }
    return f
}

func v6(_ last: UInt8, prefix: [UInt8] = [0x20, 0x01, 0x0d, 0xb8]) -> [UInt8] {
    prefix + [UInt8](repeating: 0, count: 15 - prefix.count) + [last]
}

/// A profile compiled for a port: access in VLAN 10, anti-spoofing off, then `configure` (the profile tests'
/// common starting point).
func compiledProfile(_ configure: (inout PortProfile) -> Void) -> CompiledPort {
    var p = PortProfile(id: "urn:t", elementName: "t", instanceID: "o:t")
    p.desiredVLANEndpointMode = .access
    p.portVID = 10
    p.sourceMACFilteringEnabled = false
    configure(&p)
    return PolicyCompiler.compilePort(p)
}
