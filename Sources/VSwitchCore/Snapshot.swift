// The configuration snapshot and its publication (dataplane.md "Lock-free,
// multi-core"; design.md point 4).
//
// A `ConfigView` is a plain struct of pointers and integers describing ports,
// their compiled policies, per-VLAN flood lists and the MAC table. It is
// built on the control thread by `SnapshotBuilder`, never modified after, and
// published through one atomic pointer. A forwarding thread loads that
// pointer once per batch (≈0.3 ns, no reference counting — shared/notes
// measured a ManagedAtomic<class> load at 15–70 ns) and uses it for the whole
// batch, so a batch never mixes two configurations.
//
// Reclamation is quiescent-state based (QSBR): each forwarding thread bumps
// its own counter after every batch, and marks itself offline while it
// blocks in poll(). `SnapshotPublisher.publish` swaps the pointer, waits (asleep on a
// futex the threads bump while it waits) until
// every online thread has passed a quiescent point, then frees the old
// snapshot. Only the control thread publishes (one publisher at a time).

import Atomics
import VSwitchPacket
import VSwitchPolicy
import CVSwitchShim

/// What the forwarding path needs to know about one port.
public struct PortEntry {
    /// The port exists in this snapshot.
    public var present: Bool
    /// Admin and operational state both up: frames may be sent to it.
    public var up: Bool
    /// Backend handle (TAP: the file descriptor; netdev / replay: a PortRegistry slot; memory ports: an index).
    public var handle: Int32
    /// Port kind (`PortKindCode`: tap, netdev, replay): which backend serves it.
    public var kind: UInt8 = 0
    /// Largest payload (bytes after the Ethernet header and the port's tags).
    public var mtu: UInt32
    /// The port's own MAC binding (0 = none).
    public var mac: UInt64
    public var policy: PortPolicy
    /// Any ingress check beyond VLAN/PCP (anti-spoofing, guards, outbound ACL, policer, storm).
    public var ingressChecks: Bool = false
    /// Any egress check (AllowedToReceive, inbound ACL, receive policer).
    public var egressChecks: Bool = false
    /// `present && up`, and `present && (aclInCount > 0 || policy.inboundDefaultDeny)` (a unicast frame to
    /// this port has its inbound ACL judged at ingress, ForwardingEngine.aclBoth): set with the other
    /// derived fields by ConfigSnapshot, one load each on the per-frame path.
    public var reachable: Bool = false, inboundACLProbe: Bool = false
    /// Slices of ConfigView.allowKeys / ConfigView.aclRules.
    public var txAllowStart: UInt32 = 0, txAllowCount: UInt32 = 0
    public var rxAllowStart: UInt32 = 0, rxAllowCount: UInt32 = 0
    /// The port's own open-addressing tables of the same keys (ConfigView.allowSets, `ConfigView.allowSetContains`):
    /// start of the table in allowSets and its home-slot mask, for lists longer than 8 (0 / 0 otherwise).
    public var txAllowSet: UInt32 = 0, txAllowSetMask: UInt32 = 0
    public var rxAllowSet: UInt32 = 0, rxAllowSetMask: UInt32 = 0
    public var aclInStart: UInt32 = 0, aclInCount: UInt32 = 0
    public var aclOutStart: UInt32 = 0, aclOutCount: UInt32 = 0
    /// Union of the fields the port's inbound / outbound rules look at (the verdict cache's key mask).
    public var aclInFields: ACLMatchRule.Fields = [], aclOutFields: ACLMatchRule.Fields = []
    /// The same as word masks over a FlowKey (FlowKey.mask(for:)): the cache key is `key & mask`, word by word.
    public var aclInMask = FlowKey(), aclOutMask = FlowKey()
    /// Where the union of this port's outbound mask (row) with an output port's inbound mask (column) sits in
    /// ConfigView.aclUnions, as byte offsets: the key mask of a both-directions verdict-cache entry in one place.
    public var aclUnionRow: UInt32 = 0, aclUnionColumn: UInt32 = 0
    /// Policers and storm control as GCRA parameters: cost in ns (per byte in Q16 for policers), tolerance in ns.
    public var txNsPerByteQ16: UInt64 = 0, txToleranceNs: UInt64 = 0
    public var rxNsPerByteQ16: UInt64 = 0, rxToleranceNs: UInt64 = 0
    public var bcastCostNs: UInt64 = 0, bcastToleranceNs: UInt64 = 0
    public var mcastCostNs: UInt64 = 0, mcastToleranceNs: UInt64 = 0
    public var unknownCostNs: UInt64 = 0, unknownToleranceNs: UInt64 = 0
    /// Capture and mirror taps (PortEntry.captureIn / captureOut / mirrorSource; CaptureRing.swift). 0 = none.
    public var taps: UInt8 = 0
    /// Capture: bytes to copy of each frame (the largest snaplen of the sessions capturing the port; 0 = as many as
    /// the ring keeps, CaptureRing.maxCopy).
    public var captureSnap: UInt16 = 0
    /// The port takes offloaded frames (a TAP with IFF_VNET_HDR and TUNSETOFFLOAD): GSO super-frames and
    /// partial checksums are written to it as they are, behind a virtio-net header. Otherwise the engine
    /// segments / completes checksums first (VSwitchPacket/Offload.swift).
    public var offload: Bool = false
    /// It also takes UDP super-frames (USO, GSO_UDP_L4); without it they are segmented in software.
    public var uso: Bool = false

    public init(present: Bool = false, up: Bool = false, handle: Int32 = -1, mtu: UInt32 = 1500, mac: UInt64 = 0,
                policy: PortPolicy = .access(1)) {
        self.present = present; self.up = up; self.handle = handle; self.mtu = mtu; self.mac = mac; self.policy = policy
    }
}

/// The immutable, pointer-published configuration.
public struct ConfigView {
    public let generation: UInt64
    /// Port slots are indexed by port index (0..<portSlots).
    public let portSlots: Int
    public let ports: UnsafeMutablePointer<PortEntry>
    /// Flood list of VLAN v: floodPorts[floodStart[v] ..< floodStart[v+1]] (up ports carrying v).
    public let floodStart: UnsafeMutablePointer<UInt32>
    public let floodPorts: UnsafeMutablePointer<UInt16>
    /// Promiscuous ports of VLAN v: promiscPorts[promiscStart[v] ..< promiscStart[v+1]]; `anyPromiscuous` short-cuts.
    public let promiscStart: UnsafeMutablePointer<UInt32>
    public let promiscPorts: UnsafeMutablePointer<UInt16>
    public let anyPromiscuous: Bool
    /// AllowedToTransmit / AllowedToReceive keys of all ports (sorted per port slice).
    public let allowKeys: UnsafeMutablePointer<UInt64>
    /// The same keys in one open-addressing table (2 words a slot: key, port tag), for long lists:
    /// a hash probe instead of a binary search with its branch mispredictions.
    public let allowHash: UnsafeMutablePointer<UInt64>
    public let allowHashMask: Int
    /// Per port and direction, the same keys in a table of the port's own (PortEntry.txAllowSet / rxAllowSet):
    /// keys only, no port tag to compare, `allowSetEmpty` in empty slots, linear probing without wrap-around
    /// (the table ends with an empty slot). The forwarding path probes these; `allowHash` serves the tests.
    public var allowSets: UnsafeMutablePointer<UInt64> = ConfigView.noAllowSets
    public nonisolated(unsafe) static let noAllowSets: UnsafeMutablePointer<UInt64> = {
        let p = UnsafeMutablePointer<UInt64>.allocate(capacity: 2); p.initialize(repeating: ConfigView.allowSetEmpty, count: 2); return p
    }()
    /// Unions of an outbound and an inbound ACL mask (FlowKey word masks, 64 bytes each), one per pair of
    /// distinct masks among the ports (PortEntry.aclUnionRow / aclUnionColumn). Class 0 of each direction is the
    /// all-ones mask, for the ports past the first 31 distinct masks: a wider mask keys the cache on more fields,
    /// which never changes a verdict (each verdict depends on its own direction's fields only).
    public var aclUnions: UnsafeMutableRawPointer = ConfigView.noACLUnions
    public nonisolated(unsafe) static let noACLUnions: UnsafeMutableRawPointer = {
        let p = UnsafeMutableRawPointer.allocate(byteCount: 64, alignment: 16); p.initializeMemory(as: UInt8.self, repeating: 0xFF, count: 64); return p
    }()
    static let aclMaskClasses = 32

    /// An empty slot of an allow set: no frame's key (a MAC, 48 bits, with a VLAN below 4096 above it).
    public static let allowSetEmpty: UInt64 = .max
    /// ACL rules of all ports (per port and direction, by decreasing weight).
    public let aclRules: UnsafeMutablePointer<ACLMatchRule>
    /// Per-port mutable state that outlives snapshots (policer buckets): PortRuntime's words, a plain
    /// pointer (the snapshot's `runtimeOwner` keeps them alive), so copying the view costs no retain.
    public let runtime: PortRuntimeWords
    public let macTable: MACTable
    /// Mirror session s sends copies to mirrorPorts[mirrorStart[s] ..< mirrorStart[s+1]] (s in 1..<mirrorSessions).
    public var mirrorSessions: Int = 0
    public var mirrorStart: UnsafeMutablePointer<UInt32> = ConfigView.noMirrors
    public var mirrorPorts: UnsafeMutablePointer<UInt16> = ConfigView.noMirrors16
    public nonisolated(unsafe) static let noMirrors = UnsafeMutablePointer<UInt32>.allocate(capacity: 2)
    public nonisolated(unsafe) static let noMirrors16 = UnsafeMutablePointer<UInt16>.allocate(capacity: 1)

    @inlinable @inline(__always)
    public func port(_ i: Int) -> UnsafeMutablePointer<PortEntry> { ports + i }

    /// Tag of a port's transmit (`receive` false) or receive allow-list in `allowHash` (never 0).
    @inlinable @inline(__always)
    public static func allowTag(port: Int, receive: Bool) -> UInt64 { UInt64(truncatingIfNeeded: port) &<< 1 | (receive ? 1 : 0) | 1 << 40 }

    @inlinable @inline(__always)
    public static func allowSlot(_ key: UInt64, _ tag: UInt64, mask: Int) -> Int {
        var h = (key ^ tag &* 0x9E37_79B9_7F4A_7C15) &* 0xBF58_476D_1CE4_E5B9
        h ^= h >> 31
        return Int(truncatingIfNeeded: h) & mask
    }

    /// Whether `key` is in the allow-list tagged `tag` (hash probe). The first two slots of the probe
    /// sequence are judged without a branch per slot: how far a key sits from its home slot varies
    /// from frame to frame, and a probe loop that exits after one or two slots mispredicted on ~40% of
    /// the frames (callgrind --branch-sim, issue 3). The table is at most a quarter full (ConfigSnapshot),
    /// so nearly every probe ends in those two slots; `allowHashContainsByProbing` is the plain loop.
    @inlinable @inline(__always)
    public func allowHashContains(_ key: UInt64, _ tag: UInt64) -> Bool {
        let h0 = ConfigView.allowSlot(key, tag, mask: allowHashMask)
        let h1 = (h0 &+ 1) & allowHashMask
        let t0 = allowHash[h0 &* 2 &+ 1], t1 = allowHash[h1 &* 2 &+ 1]
        let miss0 = ((t0 ^ tag) | (allowHash[h0 &* 2] ^ key)) != 0
        let miss1 = ((t1 ^ tag) | (allowHash[h1 &* 2] ^ key)) != 0
        if (miss0 ? 1 : 0) & (miss1 ? 1 : 0) == 0 { return true }
        // Not in the first two slots: absent if the probe sequence ended there (tags are never 0).
        if t0 == 0 || t1 == 0 { return false }
        return allowHashContainsFrom((h1 &+ 1) & allowHashMask, key, tag)
    }

    /// The rest of a probe sequence, from slot `h` (out of line: rare).
    @inlinable @inline(never)
    func allowHashContainsFrom(_ start: Int, _ key: UInt64, _ tag: UInt64) -> Bool {
        var h = start
        while true {
            let t = allowHash[h &* 2 &+ 1]
            if t == 0 { return false }
            if t == tag && allowHash[h &* 2] == key { return true }
            h = (h &+ 1) & allowHashMask
        }
    }

    /// Home slot of `key` in a per-port allow set of `mask + 1` home slots: both halves of a full multiply
    /// (the high half depends on every bit of the key, VLAN included).
    @inlinable @inline(__always)
    public static func allowSetSlot(_ key: UInt64, mask: Int) -> Int {
        let p = key.multipliedFullWidth(by: 0x9E37_79B9_7F4A_7C15)
        return Int(truncatingIfNeeded: p.high ^ p.low) & mask
    }

    /// Whether `key` is in the per-port allow set at `set` (mask `mask`): as `allowHashContains`, the first two
    /// slots of the probe are judged without a branch per slot; no wrap-around, so the second slot needs no mask.
    @inlinable @inline(__always)
    public static func allowSetContains(_ set: UnsafePointer<UInt64>, mask: Int, _ key: UInt64) -> Bool {
        let h = ConfigView.allowSetSlot(key, mask: mask)
        let t0 = set[h], t1 = set[h &+ 1]
        // min, not `||`: LLVM turned an OR of the two compares back into a branch on the first slot.
        if min(t0 ^ key, t1 ^ key) == 0 { return true }
        if t0 == ConfigView.allowSetEmpty || t1 == ConfigView.allowSetEmpty { return false }
        return allowSetContainsFrom(set, h &+ 2, key)
    }

    /// The rest of a probe sequence, from slot `h` (out of line: rare).
    @inlinable @inline(never)
    static func allowSetContainsFrom(_ set: UnsafePointer<UInt64>, _ start: Int, _ key: UInt64) -> Bool {
        var h = start
        while true {
            let t = set[h]
            if t == key { return true }
            if t == ConfigView.allowSetEmpty { return false }
            h &+= 1
        }
    }

    /// `allowHashContains` as a plain probe loop (the reference the tests compare it with).
    public func allowHashContainsByProbing(_ key: UInt64, _ tag: UInt64) -> Bool {
        var h = ConfigView.allowSlot(key, tag, mask: allowHashMask)
        while true {
            let t = allowHash[h &* 2 &+ 1]
            if t == 0 { return false }
            if t == tag && allowHash[h &* 2] == key { return true }
            h = (h &+ 1) & allowHashMask
        }
    }
}

/// Port kinds (PortEntry.kind / PortSpec.kind).
public enum PortKindCode {
    public static let tap: UInt8 = 0
    public static let netdev: UInt8 = 1
    public static let replay: UInt8 = 2
}

/// Description of one port for `SnapshotBuilder` (control path).
public struct PortSpec: Sendable {
    public var index: Int
    public var up: Bool
    public var handle: Int32
    public var mtu: Int
    public var mac: UInt64
    public var compiled: CompiledPort
    /// Capture taps wanted on this port (PortEntry.captureIn | captureOut).
    public var capture: UInt8 = 0
    /// Bytes of each frame the capture copies (PortEntry.captureSnap; 0 = all the ring keeps).
    public var captureSnap: UInt16 = 0
    /// The mirror session this port receives copies of (0 = none); its source sessions are policy.mirrorSession.
    public var mirrorDestination: UInt16 = 0
    /// Port kind (`PortKindCode`), copied to PortEntry.kind.
    public var kind: UInt8 = 0
    /// Offloads on (PortEntry.offload).
    public var offload: Bool = false
    /// USO on too (PortEntry.uso).
    public var uso: Bool = false
    public var policy: PortPolicy {
        get { compiled.policy }
        set { compiled.policy = newValue }
    }
    public init(index: Int, up: Bool = true, handle: Int32 = -1, mtu: Int = 1500, mac: UInt64 = 0, policy: PortPolicy) {
        self.init(index: index, up: up, handle: handle, mtu: mtu, mac: mac, compiled: CompiledPort(policy: policy))
    }
    public init(index: Int, up: Bool = true, handle: Int32 = -1, mtu: Int = 1500, mac: UInt64 = 0, compiled: CompiledPort) {
        self.index = index; self.up = up; self.handle = handle; self.mtu = mtu; self.mac = mac; self.compiled = compiled
    }
}

/// Per-port state shared by all forwarding threads and kept across snapshots: GCRA
/// "theoretical arrival times" (ns) of the policers and storm limiters, one cache line per port.
/// Owns the memory; the forwarding path reaches it through `PortRuntimeWords` (a plain pointer in the
/// ConfigView: a class reference there made each copy of the view, and each call on it, a retain and a
/// release — once per batch, and once per flooded frame on the storm-control path).
public final class PortRuntime: @unchecked Sendable {
    public static let wordsPerPort = 8
    public static let txPolicer = 0, rxPolicer = 1, broadcast = 2, multicast = 3, unknownUnicast = 4
    public let maxPorts: Int
    /// The words, for the forwarding path (valid while this object lives: the snapshot holds it).
    public let shared: PortRuntimeWords

    public init(maxPorts: Int = MACTable.maxPorts) {
        self.maxPorts = maxPorts
        let words = UnsafeMutablePointer<UnsafeAtomic<UInt64>.Storage>.allocate(capacity: maxPorts * PortRuntime.wordsPerPort)
        for i in 0..<(maxPorts * PortRuntime.wordsPerPort) { (words + i).initialize(to: .init(0)) }
        shared = PortRuntimeWords(words: words)
    }
    deinit { shared.words.deallocate() }

    /// Resets a port's buckets (port index reuse, policy change).
    public func reset(port: Int) {
        for w in 0..<PortRuntime.wordsPerPort { shared.word(port: port, w).store(0, ordering: .relaxed) }
    }

    public func word(port: Int, _ which: Int) -> UnsafeAtomic<UInt64> { shared.word(port: port, which) }
    public func conformOwned(port: Int, _ which: Int, now: UInt64, cost: UInt64, tolerance: UInt64) -> Bool {
        shared.conformOwned(port: port, which, now: now, cost: cost, tolerance: tolerance)
    }
    public func conform(port: Int, _ which: Int, now: UInt64, cost: UInt64, tolerance: UInt64) -> Bool {
        shared.conform(port: port, which, now: now, cost: cost, tolerance: tolerance)
    }
}

/// PortRuntime's words as a plain value (no reference counting), for the forwarding path.
public struct PortRuntimeWords: @unchecked Sendable {
    @usableFromInline let words: UnsafeMutablePointer<UnsafeAtomic<UInt64>.Storage>

    @inlinable init(words: UnsafeMutablePointer<UnsafeAtomic<UInt64>.Storage>) { self.words = words }

    /// The GCRA word of one port's limiter (for batch-wise updates).
    @inlinable @inline(__always)
    public func word(port: Int, _ which: Int) -> UnsafeAtomic<UInt64> {
        UnsafeAtomic<UInt64>(at: words + (port &* PortRuntime.wordsPerPort &+ which))
    }

    /// GCRA for a limiter only one thread ever updates (a port's ingress limiters: a port is received by
    /// exactly one forwarding thread): a relaxed load and store, no locked instruction.
    @inlinable @inline(__always)
    public func conformOwned(port: Int, _ which: Int, now: UInt64, cost: UInt64, tolerance: UInt64) -> Bool {
        let w = word(port: port, which)
        let tat = w.load(ordering: .relaxed)
        let base = tat > now ? tat : now
        let next = base &+ cost
        if next &- now > tolerance { return false }
        w.store(next, ordering: .relaxed)
        return true
    }

    /// GCRA: true if a unit of `cost` ns conforms with burst `tolerance` ns at time `now`; charges it if so.
    @inlinable @inline(__always)
    public func conform(port: Int, _ which: Int, now: UInt64, cost: UInt64, tolerance: UInt64) -> Bool {
        let w = word(port: port, which)
        var tat = w.load(ordering: .relaxed)
        while true {
            let base = tat > now ? tat : now
            let next = base &+ cost
            if next &- now > tolerance { return false }
            let (done, seen) = w.compareExchange(expected: tat, desired: next, ordering: .relaxed)
            if done { return true }
            tat = seen
        }
    }
}

/// Owns the memory behind one ConfigView (control path).
public final class ConfigSnapshot: @unchecked Sendable {
    public let view: UnsafeMutablePointer<ConfigView>
    let floodCount: Int

    let runtimeOwner: PortRuntime

    /// Builds a snapshot of `ports` sharing `macTable` and the per-port `runtime` state.
    public init(generation: UInt64, ports specs: [PortSpec], macTable: MACTable, runtime: PortRuntime = PortRuntime()) {
        let slots = max(1, (specs.map(\.index).max() ?? -1) + 1)
        precondition(slots <= MACTable.maxPorts, "too many ports")
        let ports = UnsafeMutablePointer<PortEntry>.allocate(capacity: slots)
        ports.initialize(repeating: PortEntry(), count: slots)
        var allow: [UInt64] = []
        var rules: [ACLMatchRule] = []
        allow.reserveCapacity(specs.reduce(0) { $0 + $1.compiled.allowedTransmit.count + $1.compiled.allowedReceive.count })
        rules.reserveCapacity(specs.reduce(0) { $0 + $1.compiled.inboundACL.count + $1.compiled.outboundACL.count })
        // Each entry is built in place (through `fill`, inout on the slot): a PortEntry and a PortPolicy each hold a
        // 512-byte VLAN set, so every copy of one is a memmove (perf of a 1,000-port reload: memmove was the largest
        // part of this init).
        func fill(_ e: inout PortEntry, _ s: PortSpec, _ c: CompiledPort) {
            let session = e.policy.mirrorSession
            e.kind = s.kind
            e.offload = s.offload
            e.uso = s.offload && s.uso
            e.txAllowStart = UInt32(allow.count); e.txAllowCount = UInt32(c.allowedTransmit.count); allow += c.allowedTransmit
            e.rxAllowStart = UInt32(allow.count); e.rxAllowCount = UInt32(c.allowedReceive.count); allow += c.allowedReceive
            e.aclInStart = UInt32(rules.count); e.aclInCount = UInt32(c.inboundACL.count); rules += c.inboundACL
            e.aclOutStart = UInt32(rules.count); e.aclOutCount = UInt32(c.outboundACL.count); rules += c.outboundACL
            e.aclInFields = c.inboundACL.reduce(into: []) { $0.formUnion($1.fields) }
            e.aclOutFields = c.outboundACL.reduce(into: []) { $0.formUnion($1.fields) }
            e.aclInMask = FlowKey.mask(for: e.aclInFields)
            e.aclOutMask = FlowKey.mask(for: e.aclOutFields)
            // ns per byte in Q16, at most 2^47 (rates below ~4 bit/s are charged as ~4 bit/s): a frame's cost,
            // wireCost (< 2^17 bytes even for a GSO super-frame) times this, then never wraps 64 bits.
            func perByteQ16(_ rate: UInt64) -> UInt64 { rate == 0 ? 0 : min((8_000_000_000 << 16) / rate, 1 << 47) }
            func bytesNs(_ bytes: UInt64, _ rate: UInt64) -> UInt64 {
                guard rate > 0 else { return 0 }
                // A burst worth more than 2^62 ns (146 years) at its rate is as good as unlimited: saturate
                // (UInt64(Double) traps above UInt64.max, and the GCRA adds costs to it).
                let ns = (Double(bytes) * 8e9 / Double(rate)).rounded()
                return ns >= 0x1p62 ? 1 << 62 : UInt64(ns)
            }
            if e.policy.transmitRate > 0 { e.txNsPerByteQ16 = perByteQ16(e.policy.transmitRate); e.txToleranceNs = bytesNs(e.policy.transmitBurst, e.policy.transmitRate) }
            if e.policy.receiveRate > 0 { e.rxNsPerByteQ16 = perByteQ16(e.policy.receiveRate); e.rxToleranceNs = bytesNs(e.policy.receiveBurst, e.policy.receiveRate) }
            // Storm limits: packets/s with a burst of 100 ms worth of packets (at least 1).
            func storm(_ pps: UInt64) -> (UInt64, UInt64) {
                guard pps > 0 else { return (0, 0) }
                let cost = max(1, 1_000_000_000 / pps)
                return (cost, cost * max(1, pps / 10))
            }
            (e.bcastCostNs, e.bcastToleranceNs) = storm(e.policy.broadcastStormLimit)
            (e.mcastCostNs, e.mcastToleranceNs) = storm(e.policy.multicastStormLimit)
            (e.unknownCostNs, e.unknownToleranceNs) = storm(e.policy.unknownUnicastStormLimit)
            e.ingressChecks = e.policy.hasIngressPolicy || !c.outboundACL.isEmpty
            e.captureSnap = s.captureSnap
            e.taps = s.capture | (session != 0 && specs.contains { $0.mirrorDestination == session && $0.index != s.index } ? PortEntry.mirrorSource : 0)
            e.egressChecks = !c.allowedReceive.isEmpty || !c.inboundACL.isEmpty || e.policy.inboundDefaultDeny || e.policy.receiveRate > 0
            e.reachable = e.present && e.up
            e.inboundACLProbe = e.present && (e.aclInCount > 0 || e.policy.inboundDefaultDeny)
        }
        for s in specs {
            let c = s.compiled
            (ports + s.index).pointee = PortEntry(present: true, up: s.up, handle: s.handle, mtu: UInt32(s.mtu), mac: s.mac,
                                                  policy: c.policy)
            fill(&ports[s.index], s, c)
        }
        // Flood lists (and promiscuous lists) in CSR form, ports in index order.
        var lists = [[UInt16]](repeating: [], count: 4096)
        var promisc = [[UInt16]](repeating: [], count: 4096)
        // Ports in index order: the entries just built (no PortSpec or VLAN set copied).
        for i in 0..<slots where ports[i].present && ports[i].up {
            let promiscuous = ports[i].policy.promiscuous
            for w in 0..<64 {
                var bits = ports[i].policy.vlans.words[w]
                while bits != 0 {
                    let v = w &* 64 &+ bits.trailingZeroBitCount
                    bits &= bits &- 1
                    guard v >= 1 && v <= 4094 else { continue }
                    lists[v].append(UInt16(i))
                    if promiscuous { promisc[v].append(UInt16(i)) }
                }
            }
        }
        func csr(_ lists: [[UInt16]]) -> (UnsafeMutablePointer<UInt32>, UnsafeMutablePointer<UInt16>, Int) {
            let total = lists.reduce(0) { $0 + $1.count }
            let start = UnsafeMutablePointer<UInt32>.allocate(capacity: 4097)
            let items = UnsafeMutablePointer<UInt16>.allocate(capacity: max(1, total))
            var off: UInt32 = 0
            for v in 0..<4096 {
                start[v] = off
                for p in lists[v] { items[Int(off)] = p; off += 1 }
            }
            start[4096] = off
            return (start, items, total)
        }
        let (start, flood, total) = csr(lists)
        let (pstart, pports, ptotal) = csr(promisc)
        floodCount = total
        let allowKeys = UnsafeMutablePointer<UInt64>.allocate(capacity: max(1, allow.count))
        allowKeys.initialize(from: allow, count: allow.count)
        var hashSlots = 16
        while hashSlots < allow.count * 4 { hashSlots <<= 1 }   // at most a quarter full (allowHashContains)
        let allowHash = UnsafeMutablePointer<UInt64>.allocate(capacity: hashSlots * 2)
        allowHash.initialize(repeating: 0, count: hashSlots * 2)
        for sp in specs {
            let e = ports + sp.index   // read in place: a PortEntry copy is a ~1 KB memmove
            for rx in [false, true] {
                let start = rx ? e.pointee.rxAllowStart : e.pointee.txAllowStart
                let count = rx ? e.pointee.rxAllowCount : e.pointee.txAllowCount
                let tag = ConfigView.allowTag(port: sp.index, receive: rx)
                for k in Int(start)..<Int(start + count) {
                    var h = ConfigView.allowSlot(allow[k], tag, mask: hashSlots - 1)
                    while allowHash[h * 2 + 1] != 0 && !(allowHash[h * 2] == allow[k] && allowHash[h * 2 + 1] == tag) {
                        h = (h + 1) & (hashSlots - 1)
                    }
                    allowHash[h * 2] = allow[k]
                    allowHash[h * 2 + 1] = tag
                }
            }
        }
        // Per-port allow sets: home slots at most a quarter full, then room for a probe sequence running off the
        // end (no wrap-around) and one empty slot that ends every sequence.
        var sets: [UInt64] = []
        for sp in specs {
            for rx in [false, true] {
                let start = Int(rx ? ports[sp.index].rxAllowStart : ports[sp.index].txAllowStart)
                let count = Int(rx ? ports[sp.index].rxAllowCount : ports[sp.index].txAllowCount)
                guard count > 8 else { continue }
                var home = 16
                while home < count * 4 { home <<= 1 }
                let base = sets.count
                sets += [UInt64](repeating: ConfigView.allowSetEmpty, count: home + count + 1)
                // A key of all ones (VLAN 0xFFFF, MAC ff:ff:ff:ff:ff:ff) would read as an empty slot; no frame can
                // match it (a frame's VLAN is below 4096), so it is left out.
                for k in start..<(start + count) where allow[k] != ConfigView.allowSetEmpty {
                    var h = base + ConfigView.allowSetSlot(allow[k], mask: home - 1)
                    while sets[h] != ConfigView.allowSetEmpty && sets[h] != allow[k] { h += 1 }
                    sets[h] = allow[k]
                }
                if rx { ports[sp.index].rxAllowSet = UInt32(base); ports[sp.index].rxAllowSetMask = UInt32(home - 1) }
                else { ports[sp.index].txAllowSet = UInt32(base); ports[sp.index].txAllowSetMask = UInt32(home - 1) }
            }
        }
        let allowSets = UnsafeMutablePointer<UInt64>.allocate(capacity: max(2, sets.count))
        allowSets.initialize(repeating: ConfigView.allowSetEmpty, count: max(2, sets.count))
        allowSets.update(from: sets, count: sets.count)
        // Distinct ACL masks per direction (class 0: all ones) and the table of their unions.
        // A mask as one SIMD value (8 words, compared at once; no array per port).
        func maskWords(_ k: FlowKey) -> SIMD8<UInt64> {
            withUnsafeBytes(of: k) { b in SIMD8<UInt64>((0..<8).lazy.map { b.load(fromByteOffset: $0 * 8, as: UInt64.self) }) }
        }
        let allOnes = SIMD8<UInt64>(repeating: .max)
        var outMasks = [allOnes], inMasks = [allOnes]
        func classOf(_ m: SIMD8<UInt64>, _ classes: inout [SIMD8<UInt64>]) -> Int {
            if let c = classes.firstIndex(of: m) { return c }
            guard classes.count < ConfigView.aclMaskClasses else { return 0 }
            classes.append(m)
            return classes.count - 1
        }
        var maskClass: [(port: Int, out: Int, in: Int)] = []
        maskClass.reserveCapacity(specs.count)
        for sp in specs {
            maskClass.append((sp.index, classOf(maskWords(ports[sp.index].aclOutMask), &outMasks), classOf(maskWords(ports[sp.index].aclInMask), &inMasks)))
        }
        let aclUnions = UnsafeMutableRawPointer.allocate(byteCount: outMasks.count * inMasks.count * 64, alignment: 64)
        for (o, om) in outMasks.enumerated() {
            for (i, im) in inMasks.enumerated() {
                for w in 0..<8 { aclUnions.storeBytes(of: om[w] | im[w], toByteOffset: (o * inMasks.count + i) * 64 + w * 8, as: UInt64.self) }
            }
        }
        for c in maskClass {
            ports[c.port].aclUnionRow = UInt32(c.out * inMasks.count * 64)
            ports[c.port].aclUnionColumn = UInt32(c.in * 64)
        }
        let aclRules = UnsafeMutablePointer<ACLMatchRule>.allocate(capacity: max(1, rules.count))
        aclRules.initialize(from: rules, count: rules.count)
        ruleCount = rules.count
        runtimeOwner = runtime
        view = .allocate(capacity: 1)
        view.initialize(to: ConfigView(generation: generation, portSlots: slots, ports: ports, floodStart: start,
                                       floodPorts: flood, promiscStart: pstart, promiscPorts: pports,
                                       anyPromiscuous: ptotal > 0, allowKeys: allowKeys, allowHash: allowHash,
                                       allowHashMask: hashSlots - 1, aclRules: aclRules,
                                       runtime: runtime.shared, macTable: macTable))
        view.pointee.allowSets = allowSets
        view.pointee.aclUnions = aclUnions
        // Mirror sessions: destination ports per session index, CSR.
        let sessions = Int(specs.map(\.mirrorDestination).max() ?? 0)
        if sessions > 0 {
            var perSession = [[UInt16]](repeating: [], count: sessions + 1)
            for s in specs.sorted(by: { $0.index < $1.index }) where s.mirrorDestination > 0 {
                perSession[Int(s.mirrorDestination)].append(UInt16(s.index))
            }
            let (mstart, mports, _) = csrN(perSession)
            view.pointee.mirrorSessions = sessions + 1
            view.pointee.mirrorStart = mstart
            view.pointee.mirrorPorts = mports
        }
        func csrN(_ lists: [[UInt16]]) -> (UnsafeMutablePointer<UInt32>, UnsafeMutablePointer<UInt16>, Int) {
            let total = lists.reduce(0) { $0 + $1.count }
            let start = UnsafeMutablePointer<UInt32>.allocate(capacity: lists.count + 1)
            let items = UnsafeMutablePointer<UInt16>.allocate(capacity: max(1, total))
            var off: UInt32 = 0
            for (v, l) in lists.enumerated() {
                start[v] = off
                for p in l { items[Int(off)] = p; off += 1 }
            }
            start[lists.count] = off
            return (start, items, total)
        }
    }

    let ruleCount: Int

    deinit {
        view.pointee.ports.deinitialize(count: view.pointee.portSlots)
        view.pointee.ports.deallocate()
        view.pointee.floodStart.deallocate()
        view.pointee.floodPorts.deallocate()
        view.pointee.promiscStart.deallocate()
        view.pointee.promiscPorts.deallocate()
        view.pointee.allowKeys.deallocate()
        view.pointee.allowHash.deallocate()
        view.pointee.allowSets.deallocate()
        view.pointee.aclUnions.deallocate()
        view.pointee.aclRules.deinitialize(count: ruleCount)
        view.pointee.aclRules.deallocate()
        if view.pointee.mirrorSessions > 0 { view.pointee.mirrorStart.deallocate(); view.pointee.mirrorPorts.deallocate() }
        view.deinitialize(count: 1)
        view.deallocate()
    }

    public var generation: UInt64 { view.pointee.generation }
    public var macTable: MACTable { view.pointee.macTable }
    public var runtime: PortRuntime { runtimeOwner }
}

/// Quiescent-state tracking for the forwarding threads.
public final class QuiescentStates: @unchecked Sendable {
    public let maxThreads: Int
    /// Per thread: counter (bit 63 set = offline, i.e. holds no snapshot pointer).
    let states: UnsafeMutablePointer<UnsafeAtomic<UInt64>.Storage>
    static let offlineBit: UInt64 = 1 << 63

    /// Two words, a cache line apart, for a publisher sleeping through a grace period: [0] publishers
    /// waiting (read by the forwarding threads once per pass), [16] the futex word they bump to wake it.
    let signal: UnsafeMutablePointer<UnsafeAtomic<UInt32>.Storage>

    public init(maxThreads: Int = 256) {
        self.maxThreads = maxThreads
        states = .allocate(capacity: maxThreads * 8)   // one cache line per thread
        for i in 0..<(maxThreads * 8) { (states + i).initialize(to: .init(QuiescentStates.offlineBit)) }
        signal = .allocate(capacity: 32)
        signal.initialize(repeating: .init(0), count: 32)
    }

    deinit { states.deallocate(); signal.deallocate() }

    @inline(__always) func state(_ t: Int) -> UnsafeAtomic<UInt64> { UnsafeAtomic(at: states + t * 8) }
    @inline(__always) var waiting: UnsafeAtomic<UInt32> { UnsafeAtomic(at: signal) }
    @inline(__always) var wakeWord: UnsafeAtomic<UInt32> { UnsafeAtomic(at: signal + 16) }

    /// Forwarding thread `t`: done with any snapshot pointer it loaded.
    @inline(__always)
    public func quiescent(_ t: Int) {
        let s = state(t)
        // seq_cst (xchg on x86): the next pass's snapshot load must not be satisfied before this store is
        // visible (store-buffering with the publisher's pointer store + state load).
        s.store((s.load(ordering: .relaxed) &+ 1) & ~QuiescentStates.offlineBit, ordering: .sequentiallyConsistent)
        if waiting.load(ordering: .relaxed) != 0 { wakePublisher() }
    }

    /// Forwarding thread `t`: about to block (or exit); holds no snapshot pointer.
    public func goOffline(_ t: Int) {
        let s = state(t)
        s.store(s.load(ordering: .relaxed) | QuiescentStates.offlineBit, ordering: .releasing)
        if waiting.load(ordering: .relaxed) != 0 { wakePublisher() }
    }

    /// A publisher sleeps in `synchronize`: bump the futex word (after the state store, with release, so a
    /// publisher that sees the bump sees the state) and wake it. Only while a publish waits.
    @inline(never)
    func wakePublisher() {
        wakeWord.wrappingIncrement(ordering: .releasing)
        _ = vsw_futex_wake(UnsafeMutableRawPointer(signal + 16).assumingMemoryBound(to: UInt32.self), Int32.max)
    }

    /// Forwarding thread `t`: back from blocking; must load the snapshot pointer after this.
    public func goOnline(_ t: Int) {
        let s = state(t)
        s.store((s.load(ordering: .relaxed) &+ 1) & ~QuiescentStates.offlineBit, ordering: .sequentiallyConsistent)
    }

    /// Control thread: returns once every thread has been offline or passed a quiescent point since the call.
    ///
    /// A forwarding thread passes a quiescent point after every pass, and ends a pass early when a snapshot was
    /// published (ForwardingThread), so the wait is about one batch. It used to spin and then `sched_yield`:
    /// when this thread shares a core with a busy-polling forwarding thread (always the case in the daemon,
    /// which runs one forwarding thread per core), the yield handed the core over for a whole scheduler slice
    /// and the grace period took 3-4 ms (issue 3's reload benchmark, same core vs other core: 3.4-3.8 ms vs
    /// 0.009 ms). Now, after a short spin (30 µs), it sleeps on a futex that the forwarding thread bumps at its next
    /// quiescent point (or when it goes offline): the wake-up lets the scheduler switch back at once. The
    /// forwarding thread's side costs one load of a read-mostly word per pass. A wake-up can be missed only in a
    /// store-buffer race (the thread's state store and its read of `waiting` are not fenced); the thread's next
    /// pass wakes it then, and a 1 ms timeout covers a thread that went to sleep in poll meanwhile.
    public func synchronize(threads: Int) {
        var seen = [UInt64](repeating: 0, count: threads)
        for t in 0..<threads { seen[t] = state(t).load(ordering: .sequentiallyConsistent) }
        let word = UnsafeMutableRawPointer(signal + 16).assumingMemoryBound(to: UInt32.self)
        let spinUntil = vsw_now_ns() &+ 30_000
        for t in 0..<threads where seen[t] & QuiescentStates.offlineBit == 0 {
            while state(t).load(ordering: .sequentiallyConsistent) == seen[t] {
                // A thread on another core gets there within a batch: spin (30 µs at most) rather than pay a
                // sleep and a wake-up.
                if vsw_now_ns() < spinUntil { continue }
                waiting.wrappingIncrement(ordering: .sequentiallyConsistent)
                let v = wakeWord.load(ordering: .acquiring)
                if state(t).load(ordering: .sequentiallyConsistent) == seen[t] {
                    _ = vsw_futex_wait(word, v, 1_000_000)
                }
                waiting.wrappingDecrement(ordering: .sequentiallyConsistent)
            }
        }
    }
}

#if canImport(Glibc)
import Glibc
#endif

/// Publishes snapshots to the forwarding threads and frees old ones safely.
public final class SnapshotPublisher: @unchecked Sendable {
    let pointer: UnsafeAtomic<UnsafeMutablePointer<ConfigView>?>
    public let quiescence: QuiescentStates
    /// The snapshot currently published (control thread's reference keeps it alive).
    public private(set) var current: ConfigSnapshot
    /// Forwarding threads taking part in grace periods: the threads the daemon runs (`show` reports it).
    public internal(set) var threadCount: Int = 0
    /// How long the last `publish` waited for the forwarding threads (its grace period), in ns; the rest of
    /// a publish is the pointer swap and freeing the old snapshot (issue 3's reload benchmark reports both).
    public private(set) var lastGracePeriodNs: UInt64 = 0

    public init(initial: ConfigSnapshot, maxThreads: Int = 256) {
        pointer = .create(initial.view)
        quiescence = QuiescentStates(maxThreads: maxThreads)
        current = initial
    }

    deinit { pointer.destroy() }

    /// Number of forwarding threads taking part in grace periods.
    public func setThreadCount(_ n: Int) { threadCount = n }

    /// Forwarding path: the current view (call once per batch, after `goOnline`/`quiescent`).
    @inline(__always)
    public func load() -> UnsafeMutablePointer<ConfigView> {
        pointer.load(ordering: .sequentiallyConsistent)!
    }

    /// Control thread: publish `next`; returns after the previous snapshot is no longer used.
    /// A MAC table that `next` no longer references is freed too.
    public func publish(_ next: ConfigSnapshot) {
        let old = current
        pointer.store(next.view, ordering: .sequentiallyConsistent)
        current = next
        let t0 = vsw_now_ns()
        quiescence.synchronize(threads: threadCount)
        lastGracePeriodNs = vsw_now_ns() &- t0
        let oldTable = old.macTable
        if oldTable.slotsAddress != next.macTable.slotsAddress {
            next.macTable.absorb(oldTable)   // what threads learned in the old table while the new one was copied
            oldTable.deallocate()
        }
        _ = old   // released here, after the grace period
    }
}

extension MACTable {
    var slotsAddress: UnsafeMutableRawPointer { UnsafeMutableRawPointer(slots) }
}

extension PortEntry {
    /// Byte offset of the port's VLAN membership words (`policy.vlans`) inside a PortEntry.
    @inlinable @inline(__always) public static var vlanWordsOffset: Int { MemoryLayout<PortEntry>.offset(of: \PortEntry.policy.vlans)! }
}

/// VLAN membership of the port at `entry`, read in place. `entry.pointee.policy.vlans.contains(v)`
/// copied the 512-byte set to the stack on every call (a memcpy of ~77 instructions per frame on trunk
/// ports, found with callgrind). `wordsOffset` is `PortEntry.vlanWordsOffset`, taken once per batch.
@inlinable @inline(__always)
public func portCarries(_ entry: UnsafeMutablePointer<PortEntry>, vlan: UInt16, wordsOffset: Int) -> Bool {
    let v = Int(vlan & 0xFFF)
    let word = UnsafeRawPointer(entry).load(fromByteOffset: wordsOffset &+ (v &>> 6) &* 8, as: UInt64.self)
    return word & (1 &<< UInt64(v & 63)) != 0
}
