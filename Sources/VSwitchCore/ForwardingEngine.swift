// ForwardingEngine: the per-frame pipeline of one forwarding thread
// (dataplane.md "The life of a frame"), classify-then-act (design.md 3):
//
//   classify()  two passes over the batch (`classify`'s comment): (1) parse, VLAN classification (VLAN
//               and PCP go to FrameMeta; the frame's own tag stays in place), lookup; (2) ingress policy
//               (a known-unicast frame's outbound and inbound ACLs in one verdict-cache probe),
//               learning; writes one decision per frame: an output port, flood, or drop with a reason.
//   scatter     in the second pass: frame indices appended to per-port TX lists.
//   transmit()  per output port: bring the frame to the port's wire form
//               from whatever form it has now (rewrite the TCI in place, push
//               a tag into the headroom, or pop it), then send. A flooded
//               frame goes out in each port's form without copies.
//   taps        capture copies and mirror copies (CaptureRing.swift): gated per
//               batch (ingress) and per output port (egress) by PortEntry.taps.
//
// Offloads (issue 7, VSwitchPacket/Offload.swift): a frame with FrameMeta.offload is a GSO
// super-frame (up to 64 KB of one TCP stream) and/or carries a partial checksum; its virtio-net
// header sits at a fixed spot in its buffer. Classification treats it as one frame: VLAN, MAC
// and ACL decisions are per flow anyway; the MTU check applies to its gso_size (the segments it
// stands for); policers charge its wire cost (payload + every segment's headers); storm control
// counts it once; rx/tx counters count it once on a port with offloads. At egress, a port with
// offloads (PortEntry.offload) is handed the super-frame as one unit (the backend writes the
// header, shifted by the tag rewrite); a port without gets it cut into MSS-sized segments in a
// per-engine scratch batch (`sendSegments`: allocated once, flushed per scratch-full; tx counters
// count segments) or, for a partial checksum alone, completed in place. Segments leave in order
// from the one thread that owns the ingress port, so a flow is never reordered.
//
// Threading: an engine belongs to exactly one forwarding thread; its
// counters, TX plan and move log are that thread's. It shares only the
// ConfigView (immutable) and the MAC table (lock-free). No allocation, no
// locks, no reference counting in classify/transmit (checked by the
// benchmark's allocation counter and by the TSan stress test).

import Atomics
import VSwitchPacket
import VSwitchPolicy

/// Per-output-port lists of frame indices for one batch.
public struct TxPlan {
    public let maxPorts: Int
    public let batchCapacity: Int
    @usableFromInline let lists: UnsafeMutablePointer<UInt16>
    @usableFromInline let lengths: UnsafeMutablePointer<UInt16>
    @usableFromInline let touched: UnsafeMutablePointer<UInt16>
    @usableFromInline let touchedCount: UnsafeMutablePointer<Int>

    public init(maxPorts: Int, batchCapacity: Int) {
        self.maxPorts = maxPorts
        self.batchCapacity = batchCapacity
        lists = .allocate(capacity: maxPorts * batchCapacity)
        lists.initialize(repeating: 0, count: maxPorts * batchCapacity)
        lengths = .allocate(capacity: maxPorts)
        lengths.initialize(repeating: 0, count: maxPorts)
        touched = .allocate(capacity: maxPorts + 1)   // + 1: `append` writes one slot past the last touched port
        touched.initialize(repeating: 0, count: maxPorts + 1)
        touchedCount = .allocate(capacity: 1)
        touchedCount.initialize(to: 0)
    }

    public func deallocate() {
        lists.deallocate(); lengths.deallocate(); touched.deallocate(); touchedCount.deallocate()
    }

    /// Without a branch on "first frame for this port" (the output port of consecutive frames is random:
    /// that branch mispredicted often): the port is written at the end of `touched` every time and kept
    /// there (the count advances) only for a port's first frame.
    @inlinable @inline(__always)
    func append(port: Int, frame: Int) {
        var t = touchedCount.pointee
        Local(self).append(port: port, frame: frame, touchedCount: &t)
        touchedCount.pointee = t
    }

    /// The plan's pointers as local values, with the touched count in the caller's variable (stored back
    /// to `touchedCount` by the caller after its loop): `append` without reloading them per frame.
    @usableFromInline
    struct Local {
        @usableFromInline let lists: UnsafeMutablePointer<UInt16>, lengths: UnsafeMutablePointer<UInt16>
        @usableFromInline let touched: UnsafeMutablePointer<UInt16>, batchCapacity: Int
        @inlinable @inline(__always)
        init(_ p: TxPlan) { lists = p.lists; lengths = p.lengths; touched = p.touched; batchCapacity = p.batchCapacity }

        @inlinable @inline(__always)
        func append(port: Int, frame: Int, touchedCount t: inout Int) {
            let n = Int(lengths[port])
            touched[t] = UInt16(truncatingIfNeeded: port)
            t &+= (n == 0 ? 1 : 0)
            lists[port &* batchCapacity &+ n] = UInt16(truncatingIfNeeded: frame)
            lengths[port] = UInt16(truncatingIfNeeded: n &+ 1)
        }
    }
}

/// A per-thread cache of ACL verdicts (design: OVS's megaflow idea in miniature). The key is the
/// frame's flow key masked to the fields the port's rules of that direction can look at, tagged
/// with (snapshot generation, port, direction), so a new snapshot invalidates every entry at once.
/// A known-unicast frame whose output port has inbound rules is looked up once for both
/// directions: key masked with the union of the two masks, tagged (generation, ingress, output),
/// verdict bit 0 = outbound allow, bit 1 = inbound allow (`ForwardingEngine.aclBoth`).
/// Direct-mapped; the key is handled as FlowKey's eight words in four 128-bit lanes: masked with the
/// port's precomputed word mask, folded and hashed with two multiplies (`Words.index`), compared with
/// one OR of XORs.
public struct ACLVerdictCache {
    public struct Entry {
        public var tag: UInt64
        public var key: FlowKey
        /// Single direction: 1 = allow, 0 = deny. Both directions: bit 0 outbound, bit 1 inbound.
        public var verdict: UInt8
    }

    /// Tag of a single-direction entry (bit 25 clear) and of a both-directions entry (bit 25 set).
    @inlinable @inline(__always)
    static func tag(generation: UInt64, port: Int, outbound: Bool) -> UInt64 {
        generation &<< 26 | UInt64(truncatingIfNeeded: port & 0xFFF) &<< 1 | (outbound ? 1 : 0)
    }
    @inlinable @inline(__always)
    static func tag(generation: UInt64, ingress: Int, output: Int) -> UInt64 {
        generation &<< 26 | 1 &<< 25 | UInt64(truncatingIfNeeded: ingress & 0xFFF) &<< 12 | UInt64(truncatingIfNeeded: output & 0xFFF)
    }
    public static let sizeLog2 = 12
    public static let size = 1 << sizeLog2
    @usableFromInline let entries: UnsafeMutablePointer<Entry>

    public init() {
        entries = .allocate(capacity: ACLVerdictCache.size)
        entries.initialize(repeating: Entry(tag: .max, key: FlowKey(), verdict: 0), count: ACLVerdictCache.size)   // .max: never a real tag
    }
    public func deallocate() { entries.deallocate() }

    /// The eight masked words of a key, as four 128-bit lanes (SSE registers on x86-64).
    @usableFromInline
    struct Words {
        @usableFromInline var a, b, c, d: SIMD2<UInt64>

        @inlinable @inline(__always)
        static func load(_ p: UnsafeRawPointer, _ o: Int) -> SIMD2<UInt64> { p.loadUnaligned(fromByteOffset: o, as: SIMD2<UInt64>.self) }

        /// The key masked with the union of two masks (both directions in one entry).
        @inlinable @inline(__always)
        init(_ key: UnsafeRawPointer, _ m: UnsafeRawPointer, _ n: UnsafeRawPointer) {
            a = Words.load(key, 0) & (Words.load(m, 0) | Words.load(n, 0))
            b = Words.load(key, 16) & (Words.load(m, 16) | Words.load(n, 16))
            c = Words.load(key, 32) & (Words.load(m, 32) | Words.load(n, 32))
            d = Words.load(key, 48) & (Words.load(m, 48) | Words.load(n, 48))
        }

        @inlinable @inline(__always)
        init(_ key: UnsafeRawPointer, _ m: UnsafeRawPointer) {
            a = Words.load(key, 0) & Words.load(m, 0)
            b = Words.load(key, 16) & Words.load(m, 16)
            c = Words.load(key, 32) & Words.load(m, 32)
            d = Words.load(key, 48) & Words.load(m, 48)
        }

        /// Cache index (0..<size) of the key tagged `tag`. The four lanes are folded into one with XORs
        /// after a different 32-bit lane permutation each (so that fields swapping places, e.g. source
        /// and destination address, do not cancel out), then its two words are multiplied by odd
        /// constants and the index is the product's top bits, which depend on every bit of both words.
        /// A cache index, not a defence: a collision costs one re-evaluation of the rules. The eight
        /// scalar rotations and XORs this replaces moved every word out of its vector register first.
        @inlinable @inline(__always)
        func index(_ tag: UInt64) -> Int {
            let b4 = unsafeBitCast(b, to: SIMD4<UInt32>.self)
            let c4 = unsafeBitCast(c, to: SIMD4<UInt32>.self)
            let d4 = unsafeBitCast(d, to: SIMD4<UInt32>.self)
            let x = unsafeBitCast(a, to: SIMD4<UInt32>.self) ^ SIMD4(b4[1], b4[0], b4[3], b4[2])
                ^ SIMD4(c4[2], c4[3], c4[0], c4[1]) ^ SIMD4(d4[3], d4[2], d4[1], d4[0])
            let y = unsafeBitCast(x, to: SIMD2<UInt64>.self)
            let h = (y[0] &* 0x9E37_79B9_7F4A_7C15) ^ ((y[1] ^ tag) &* 0xBF58_476D_1CE4_E5B9)
            return Int(truncatingIfNeeded: h &>> UInt64(64 &- ACLVerdictCache.sizeLog2))
        }

        @inlinable @inline(__always)
        func equals(_ p: UnsafeRawPointer) -> Bool {
            let x = (Words.load(p, 0) ^ a) | (Words.load(p, 16) ^ b) | (Words.load(p, 32) ^ c) | (Words.load(p, 48) ^ d)
            return (x[0] | x[1]) == 0
        }

        @inlinable @inline(__always)
        func store(_ p: UnsafeMutableRawPointer) {
            p.storeBytes(of: a, toByteOffset: 0, as: SIMD2<UInt64>.self); p.storeBytes(of: b, toByteOffset: 16, as: SIMD2<UInt64>.self)
            p.storeBytes(of: c, toByteOffset: 32, as: SIMD2<UInt64>.self); p.storeBytes(of: d, toByteOffset: 48, as: SIMD2<UInt64>.self)
        }
    }
}

extension UInt64 {
    @inlinable @inline(__always) func rotl(_ n: UInt64) -> UInt64 { (self &<< n) | (self &>> (64 &- n)) }
}

/// A port's ingress-policy fields, read once per batch (the per-frame code would otherwise reload them:
/// the compiler cannot keep them in registers across the frame's stores through raw pointers).
@usableFromInline
struct IngressPolicy {
    @usableFromInline let sourceMACFiltering: Bool, mac: UInt64, txAllowStart: UInt32, txAllowCount: UInt32
    /// The port's transmit allow set (PortEntry.txAllowSet) and its mask.
    @usableFromInline let txAllowSet: UnsafePointer<UInt64>, txAllowSetMask: Int
    @usableFromInline let dhcpGuard: Bool, routerGuard: Bool
    /// Outbound ACL rules or an outbound default deny.
    @usableFromInline let acl: Bool
    /// The flow key is needed (guards or ACL).
    @usableFromInline let needsKey: Bool
    @usableFromInline let aclOutStart: UInt32, aclOutCount: UInt32, outboundDefaultDeny: Bool
    /// ACLVerdictCache.tag(generation:ingress:output:) without the output port.
    @usableFromInline let bothTagBase: UInt64
    /// The port's row of ConfigView.aclUnions (PortEntry.aclUnionRow).
    @usableFromInline let aclUnionRow: UnsafeRawPointer
    @usableFromInline let txNsPerByteQ16: UInt64, txToleranceNs: UInt64
    @usableFromInline let txPolicer: UnsafeAtomic<UInt64>

    @inlinable @inline(__always)
    init(_ cfg: ConfigView, port: Int, _ e: UnsafeMutablePointer<PortEntry>) {
        sourceMACFiltering = e.pointee.policy.sourceMACFiltering
        mac = e.pointee.mac
        txAllowStart = e.pointee.txAllowStart; txAllowCount = e.pointee.txAllowCount
        txAllowSet = UnsafePointer(cfg.allowSets + Int(e.pointee.txAllowSet)); txAllowSetMask = Int(e.pointee.txAllowSetMask)
        dhcpGuard = e.pointee.policy.dhcpGuard; routerGuard = e.pointee.policy.routerGuard
        aclOutStart = e.pointee.aclOutStart; aclOutCount = e.pointee.aclOutCount
        outboundDefaultDeny = e.pointee.policy.outboundDefaultDeny
        acl = aclOutCount > 0 || outboundDefaultDeny
        needsKey = dhcpGuard || routerGuard || acl
        bothTagBase = ACLVerdictCache.tag(generation: cfg.generation, ingress: port, output: 0)
        aclUnionRow = UnsafeRawPointer(cfg.aclUnions + Int(e.pointee.aclUnionRow))
        txNsPerByteQ16 = e.pointee.txNsPerByteQ16; txToleranceNs = e.pointee.txToleranceNs
        txPolicer = cfg.runtime.word(port: port, PortRuntime.txPolicer)
    }
}

public struct ForwardingEngine {
    public let counters: CounterBlock
    public let moves: MoveLog
    public let tx: TxPlan
    public let aclCache: ACLVerdictCache
    /// Capture copies of this thread's frames, drained by the capture writer (CaptureRing.swift).
    public let capture: CaptureRing
    /// Flow keys computed at ingress, reused at egress (one per batch slot).
    @usableFromInline let keys: UnsafeMutablePointer<FlowKey>
    /// Egress verdicts of the output port being transmitted (one per list entry).
    @usableFromInline let verdicts: UnsafeMutablePointer<UInt8>
    /// Scratch batch for software segmentation (GSO super-frames to ports without offloads).
    public let scratch: UnsafeMutablePointer<FrameBatch>
    /// What classify's first stage found for each frame (one per batch slot), for the later stages.
    @usableFromInline let stage: UnsafeMutablePointer<StageSlot>
    /// Indices of the frames classify's first stage passed on to the second.
    @usableFromInline let live: UnsafeMutablePointer<UInt16>

    /// A frame's MAC addresses, the destination's port (-1: unknown or group address), and the EtherType
    /// behind the frame's tags (at most two) with the offset of what follows it (`l3 << 16 | etherType`),
    /// which the flow-key parser then need not find again.
    @usableFromInline
    struct StageSlot {
        @usableFromInline var src: UInt64, dst: UInt64, out: Int32, l3: UInt32
        @inlinable @inline(__always) init(src: UInt64, dst: UInt64, out: Int32, l3: UInt32) {
            self.src = src; self.dst = dst; self.out = out; self.l3 = l3
        }
    }

    /// - Parameter segmentRoom: largest segment software segmentation produces (the largest port MTU + 64).
    public init(maxPorts: Int = 1024, batchCapacity: Int, captureBytes: Int = 4 << 20, segmentRoom: Int = 9216 + 64) {
        scratch = .allocate(capacity: 1)
        scratch.initialize(to: FrameBatch(capacity: 64, dataRoom: segmentRoom))
        capture = CaptureRing(byteCount: captureBytes)
        counters = CounterBlock(maxPorts: maxPorts)
        moves = MoveLog()
        tx = TxPlan(maxPorts: maxPorts, batchCapacity: batchCapacity)
        aclCache = ACLVerdictCache()
        keys = .allocate(capacity: batchCapacity)
        keys.initialize(repeating: FlowKey(), count: batchCapacity)
        verdicts = .allocate(capacity: batchCapacity)
        verdicts.initialize(repeating: 0, count: batchCapacity)
        stage = .allocate(capacity: batchCapacity)
        stage.initialize(repeating: StageSlot(src: 0, dst: 0, out: -1, l3: 0), count: batchCapacity)
        live = .allocate(capacity: batchCapacity)
        live.initialize(repeating: 0, count: batchCapacity)
    }

    public func deallocate() {
        counters.deallocate(); tx.deallocate(); aclCache.deallocate(); keys.deallocate(); verdicts.deallocate(); capture.deallocate()
        stage.deallocate(); live.deallocate()
        scratch.pointee.deallocate(); scratch.deallocate()
    }

    @usableFromInline static let dropped = FrameMeta.drop

    @inlinable @inline(__always)
    func drop(_ batch: FrameBatch, _ i: Int, _ port: Int, _ reason: DropReason) {
        batch.meta[i].output = FrameMeta.drop
        batch.meta[i].reason = reason.rawValue
        counters.drop(port: port, reason.rawValue)
    }

    /// Decides the fate of every frame of `batch`, all received on port `ingress`.
    /// `now` is in seconds (MAC table), `nowNs` in nanoseconds (policers, storm control).
    ///
    /// Two stages over the batch, each a loop of its own (issue 3, session 5): one loop doing all of it
    /// kept ~35 values alive across the frame and spilled ~100 instructions per frame to the stack.
    ///   1. `parseStage` (one copy per port mode, the mode a constant): parse, VLAN classification,
    ///      priority, source check, destination lookup; survivors' (src, dst, out, EtherType and L3
    ///      offset) go to `stage`, their indices to `live`, VLAN / PCP / tag flags to FrameMeta.
    ///   2. `forwardBody` over `live`, in two copies: `policyForwardStage` (ports with `ingressChecks`:
    ///      anti-spoofing, guards, outbound ACL with the unicast output port's inbound ACL in the same
    ///      probe, transmit policer, storm control) and `forwardStage` (without); then learning, scatter.
    /// (Three stages, the policy in a loop of its own, cost 26 more instructions per frame than two: the
    /// extra loop's bookkeeping outweighed the spills it saved.)
    /// The order of every side effect is the single loop's (policer and storm charges, learning, move
    /// log), frame by frame. One difference is made invisible: a destination is looked up in stage 1,
    /// before the batch's learning, so once a frame of the batch has learned or moved an entry, stage 2
    /// looks the later frames' destinations up again (the single loop saw the earlier frames' learning),
    /// before their ingress policy uses it (ClassifyDigestTests pins the whole behaviour).
    @inlinable
    public func classify(_ batch: FrameBatch, ingress: Int, view: UnsafeMutablePointer<ConfigView>, now: UInt32,
                         nowNs: UInt64 = 0) {
        let entry = view.pointee.ports + ingress
        var alive: Int
        switch entry.pointee.policy.mode {
        case .access: alive = parseAccess(batch, ingress: ingress, view: view)
        case .trunk: alive = parseTrunk(batch, ingress: ingress, view: view)
        case .tunnel: alive = parseTunnel(batch, ingress: ingress, view: view)
        }
        guard alive > 0 else { return }
        if entry.pointee.ingressChecks {
            policyForwardStage(batch, ingress: ingress, view: view, alive: alive, now: now, nowNs: nowNs)
        } else {
            forwardStage(batch, ingress: ingress, view: view, alive: alive, now: now, nowNs: nowNs)
        }
    }

    @usableFromInline @inline(never)
    func parseAccess(_ batch: FrameBatch, ingress: Int, view: UnsafeMutablePointer<ConfigView>) -> Int {
        parseStage(batch, ingress: ingress, view: view, mode: .access)
    }
    @usableFromInline @inline(never)
    func parseTrunk(_ batch: FrameBatch, ingress: Int, view: UnsafeMutablePointer<ConfigView>) -> Int {
        parseStage(batch, ingress: ingress, view: view, mode: .trunk)
    }
    @usableFromInline @inline(never)
    func parseTunnel(_ batch: FrameBatch, ingress: Int, view: UnsafeMutablePointer<ConfigView>) -> Int {
        parseStage(batch, ingress: ingress, view: view, mode: .tunnel)
    }

    /// Stage 1 with the port's mode a constant. Returns the number of frames left in `live`.
    @inline(__always)
    func parseStage(_ batch: FrameBatch, ingress: Int, view: UnsafeMutablePointer<ConfigView>, mode: PortPolicy.Mode) -> Int {
        // Local copies of the batch and of the engine's arrays: both arrive in memory (indirect arguments),
        // and the compiler reloaded their fields after every store through a pointer (issue 3, session 5).
        let batch = batch
        let stage = self.stage, live = self.live
        let cfg = view.pointee
        let entry = cfg.ports + ingress
        // Fields, not `entry.pointee.policy` whole: a copy of the policy copies its 512-byte VLAN set.
        let pvid = entry.pointee.policy.pvid
        let acceptUntagged = entry.pointee.policy.acceptUntagged
        let defaultPriority = entry.pointee.policy.defaultPriority
        let allowedPriorityMask = entry.pointee.policy.allowedPriorityMask
        let dropPriorityViolations = entry.pointee.policy.dropPriorityViolations
        let checkPriority = allowedPriorityMask != 0xFF   // every PCP allowed: no per-frame test
        let maxPayload = Int(entry.pointee.mtu)
        let table = cfg.macTable
        let tunnel = mode == .tunnel
        let vlanWords = PortEntry.vlanWordsOffset
        var rxBytes: UInt64 = 0
        var alive = 0
        let n = batch.count
        var i = 0
        while i < n {
            defer { i &+= 1 }
            let meta = batch.meta + i
            let length = Int(meta.pointee.length)
            rxBytes &+= UInt64(length)
            // 1. Parse.
            if length < 14 { drop(batch, i, ingress, .malformed); continue }
            let et = batch.be16(i, at: 12)
            var tagged = false          // carries a tag with a VID (not just a priority tag)
            // FrameMeta.tagged: carries the port's tag (possibly priority-only); FrameMeta.serviceTag: travels in
            // an 802.1ad or Dot1Q-tunnel VLAN. One byte, not two flags: one value fewer alive across the frame.
            var tagFlags = tunnel ? FrameMeta.serviceTag : 0
            var vid: UInt16 = 0
            var pcp = defaultPriority
            var headerLen = 14
            var l3 = UInt32(et) | 14 << 16
            if et == EtherType.vlan || et == EtherType.qinq {
                if length < 18 { drop(batch, i, ingress, .malformed); continue }
                let inner = batch.be16(i, at: 16)
                l3 = UInt32(inner) | 18 << 16
                if inner == EtherType.vlan || inner == EtherType.qinq {
                    if length < 22 { drop(batch, i, ingress, .malformed); continue }
                    l3 = UInt32(batch.be16(i, at: 20)) | 22 << 16
                }
                if tunnel {
                    if et == EtherType.vlan { headerLen = 18 }   // one customer tag is not payload
                } else if et == EtherType.vlan || mode == .trunk {
                    // Access ports take 802.1Q tags; trunks take 802.1Q and 802.1ad (service) tags.
                    let tci = batch.be16(i, at: 14)
                    headerLen = 18
                    vid = tci & 0x0FFF
                    tagged = vid != 0
                    pcp = UInt8(truncatingIfNeeded: tci >> 13)
                    tagFlags = FrameMeta.tagged | (et == EtherType.qinq ? FrameMeta.serviceTag : 0)
                    if vid == 0xFFF { drop(batch, i, ingress, .malformed); continue }
                }
            }
            if length &- headerLen > maxPayload {
                // A GSO super-frame is judged by the segments it stands for: headers + gso_size of payload each.
                // (Without a usable csum_start — a sender that set no NEEDS_CSUM — the segments' headers are not
                // located here: judged by gso_size alone, as before, and left to the segmenter to check.)
                let segment = batch.isGSO(i) ? batch.gsoSegmentL3Length(i, l3: headerLen) : -1
                let fits = segment > 0 ? segment <= maxPayload : batch.isGSO(i) && batch.gsoSize(i) <= maxPayload
                if !fits {
                    drop(batch, i, ingress, .mtuExceeded); continue
                }
            }

            // 2. Ingress VLAN classification.
            var vlan: UInt16
            switch mode {
            case .access:
                if tagged && vid != pvid { drop(batch, i, ingress, .vlanNotAllowed); continue }
                vlan = pvid
            case .trunk:
                if tagged {
                    if !portCarries(entry, vlan: vid, wordsOffset: vlanWords) { drop(batch, i, ingress, .vlanNotAllowed); continue }
                    vlan = vid
                } else {
                    if !acceptUntagged { drop(batch, i, ingress, .untaggedNotAllowed); continue }
                    vlan = pvid
                }
            case .tunnel:
                vlan = pvid
            }
            // 3. Priority.
            if tagFlags & FrameMeta.tagged != 0 && checkPriority && allowedPriorityMask & (1 &<< pcp) == 0 {
                if dropPriorityViolations { drop(batch, i, ingress, .priorityNotAllowed); continue }
                pcp = defaultPriority
            }
            let src = batch.source(i)
            if src & 0x0100_0000_0000 != 0 || src == 0 { drop(batch, i, ingress, .invalidSource); continue }
            // 4. Lookup (no side effect: done before the ingress policy, which uses the output port to
            //    judge a unicast frame's outbound and inbound ACLs in one probe).
            let dst = batch.destination(i)
            var out = -1
            if dst & 0x0100_0000_0000 == 0 { out = table.lookup(vlan: vlan, mac: dst) }
            meta.pointee.flags = (meta.pointee.flags & (FrameMeta.flowKeyValid | FrameMeta.offload
                                                        | FrameMeta.inboundACLChecked | FrameMeta.inboundACLDenied))
                | tagFlags
            meta.pointee.vlan = vlan
            meta.pointee.pcp = pcp
            stage[i] = StageSlot(src: src, dst: dst, out: Int32(truncatingIfNeeded: out), l3: l3)
            live[alive] = UInt16(truncatingIfNeeded: i)
            alive &+= 1
        }
        counters.add(port: ingress, PortCounter.rxPackets, UInt64(n))
        counters.add(port: ingress, PortCounter.rxBytes, rxBytes)
        return alive
    }

    /// Stage 2 without the ingress policy: learning and scatter for the frames in `live[0..<alive]`.
    @usableFromInline @inline(never)
    func forwardStage(_ batch: FrameBatch, ingress: Int, view: UnsafeMutablePointer<ConfigView>, alive: Int, now: UInt32,
                      nowNs: UInt64) {
        forwardBody(batch, ingress: ingress, view: view, alive: alive, now: now, nowNs: nowNs, checks: false)
    }

    /// Stage 2 with the ingress policy (ports with `ingressChecks`): the checks, storm control, learning, scatter.
    @usableFromInline @inline(never)
    func policyForwardStage(_ batch: FrameBatch, ingress: Int, view: UnsafeMutablePointer<ConfigView>, alive: Int, now: UInt32,
                            nowNs: UInt64) {
        forwardBody(batch, ingress: ingress, view: view, alive: alive, now: now, nowNs: nowNs, checks: true)
    }

    @inline(__always)
    func forwardBody(_ batch: FrameBatch, ingress: Int, view: UnsafeMutablePointer<ConfigView>, alive: Int, now: UInt32,
                     nowNs: UInt64, checks: Bool) {
        let batch = batch   // local copies, as in parseStage
        let stage = self.stage, live = self.live, keys = self.keys, cache = aclCache.entries
        let cfg = view.pointee
        let entry = cfg.ports + ingress
        let policyConsts = IngressPolicy(cfg, port: ingress, entry)
        // The transmit policer's GCRA word, read once and written once per batch (PortRuntime.conformOwned:
        // one thread owns a port's receive side).
        let tat0 = checks && policyConsts.txNsPerByteQ16 > 0 ? policyConsts.txPolicer.load(ordering: .relaxed) : 0
        var tat = tat0
        let learning = entry.pointee.policy.learning
        let macLimit = entry.pointee.policy.macLimit
        let forwardUnlearned = entry.pointee.policy.forwardUnlearned
        let table = cfg.macTable
        let portSlots = cfg.portSlots
        let vlanWords = PortEntry.vlanWordsOffset
        var floods: UInt64 = 0
        // A frame of this batch learned or moved an entry: the later frames' destinations are looked up again.
        var changed = false
        // The TX plan's pointers and touched count in locals (`self` is in memory: the compiler reloaded
        // them after every store through a pointer).
        let plan = TxPlan.Local(tx)
        var touched = tx.touchedCount.pointee
        var k = 0
        while k < alive {
            let i = Int(live[k])
            k &+= 1
            let meta = batch.meta + i
            let s = stage + i
            let src = s.pointee.src, dst = s.pointee.dst
            let vlan = meta.pointee.vlan
            var out = Int(s.pointee.out)
            if changed && dst & 0x0100_0000_0000 == 0 {
                out = table.lookup(vlan: vlan, mac: dst)
            }
            if checks {
                if let reason = ingressPolicy(batch, i, port: ingress, entry, cfg, policyConsts, src: src, dst: dst,
                                              vlan: vlan, pcp: meta.pointee.pcp, out: out, l3: s.pointee.l3,
                                              key: keys + i, cache: cache, nowNs: nowNs, tat: &tat) {
                    drop(batch, i, ingress, reason); continue
                }
            }
            // Storm control on what will be flooded.
            if out < 0 && checks {
                let e = entry
                let (cost, tol, which): (UInt64, UInt64, Int) =
                    dst == 0xFFFF_FFFF_FFFF ? (e.pointee.bcastCostNs, e.pointee.bcastToleranceNs, PortRuntime.broadcast)
                    : dst & 0x0100_0000_0000 != 0 ? (e.pointee.mcastCostNs, e.pointee.mcastToleranceNs, PortRuntime.multicast)
                    : (e.pointee.unknownCostNs, e.pointee.unknownToleranceNs, PortRuntime.unknownUnicast)
                if cost > 0 && !cfg.runtime.conformOwned(port: ingress, which, now: nowNs, cost: cost, tolerance: tol) {
                    drop(batch, i, ingress, .storm); continue
                }
            }
            // Learning.
            if learning {
                var previous = 0
                switch table.learnFast(vlan: vlan, mac: src, port: ingress, now: now, portLimit: macLimit,
                                       previousPort: &previous) {
                case .known, .refreshed, .staticEntry:
                    break
                case .learned:
                    changed = true
                case .moved:
                    changed = true
                    counters.add(port: ingress, PortCounter.macMoves, 1)
                    moves.push(MACMove(mac: src, vlan: vlan, from: previous, to: ingress))
                case .portLimit:
                    if !forwardUnlearned { drop(batch, i, ingress, .macLimit); continue }
                case .tableFull:
                    counters.add(port: ingress, PortCounter.learnTableFull, 1)
                }
            }
            // Scatter.
            if out >= 0 {
                if out == ingress { drop(batch, i, ingress, .sameSegment); continue }
                if out >= portSlots { drop(batch, i, ingress, .noDestination); continue }
                let oe = cfg.ports + out
                if !oe.pointee.reachable { drop(batch, i, out, .portDown); continue }
                if !portCarries(oe, vlan: vlan, wordsOffset: vlanWords) { drop(batch, i, out, .vlanNotAllowed); continue }
                meta.pointee.output = UInt16(truncatingIfNeeded: out)
                plan.append(port: out, frame: i, touchedCount: &touched)
                if cfg.anyPromiscuous {
                    var f = Int(cfg.promiscStart[Int(vlan)])
                    let end = Int(cfg.promiscStart[Int(vlan) &+ 1])
                    while f < end {
                        let p = Int(cfg.promiscPorts[f])
                        if p != ingress && p != out { plan.append(port: p, frame: i, touchedCount: &touched) }
                        f &+= 1
                    }
                }
                continue
            }
            meta.pointee.output = FrameMeta.flood
            floods &+= 1
            let start = Int(cfg.floodStart[Int(vlan)])
            let end = Int(cfg.floodStart[Int(vlan) &+ 1])
            var f = start
            while f < end {
                let p = Int(cfg.floodPorts[f])
                if p != ingress { plan.append(port: p, frame: i, touchedCount: &touched) }
                f &+= 1
            }
        }
        tx.touchedCount.pointee = touched
        if tat != tat0 { policyConsts.txPolicer.store(tat, ordering: .relaxed) }
        if floods > 0 { counters.add(port: ingress, PortCounter.floods, floods) }
    }

    /// Membership of (vlan, mac), or of the any-VLAN form of the MAC, in a port's allow-list: a linear
    /// scan of its slice when short, a probe of the port's own allow set (ConfigView.allowSets) when long.
    @inlinable @inline(__always)
    func allowListed(_ cfg: ConfigView, _ start: UInt32, _ count: UInt32, set: UnsafePointer<UInt64>, setMask: Int,
                     mac: UInt64, vlan: UInt16) -> Bool {
        if count <= 8 {
            let exact = UInt64(vlan) << 48 | mac
            let keys = cfg.allowKeys
            var k = Int(start)
            let end = k &+ Int(count)
            while k < end {
                let v = keys[k]
                if v == mac || v == exact { return true }
                k &+= 1
            }
            return false
        }
        // The (VLAN, MAC) form only when the MAC alone is not listed: not computed on the usual path.
        return ConfigView.allowSetContains(set, mask: setMask, mac)
            || ConfigView.allowSetContains(set, mask: setMask, UInt64(vlan) << 48 | mac)
    }

    @inlinable @inline(__always)
    static func sortedContains(_ keys: UnsafeMutablePointer<UInt64>, _ begin: Int, _ end: Int, _ key: UInt64) -> Bool {
        var lo = begin, hi = end
        while lo < hi {
            let mid = (lo &+ hi) &>> 1
            let v = keys[mid]
            if v == key { return true }
            if v < key { lo = mid &+ 1 } else { hi = mid }
        }
        return false
    }

    /// First matching rule's verdict among `count` rules from `start`, else the default; `true` = allow.
    @inlinable @inline(__always)
    func evaluate(_ cfg: ConfigView, _ start: UInt32, _ count: UInt32, _ key: UnsafeMutablePointer<FlowKey>,
                  outbound: Bool, defaultDeny: Bool) -> Bool {
        let rules = cfg.aclRules
        var r = Int(start)
        let end = r &+ Int(count)
        while r < end {
            if (rules + r).pointee.matches(key.pointee, outbound: outbound) { return (rules + r).pointee.allow }
            r &+= 1
        }
        return !defaultDeny
    }

    /// First matching rule's verdict, else the default; `true` = allow. Cached per (port, direction)
    /// on the fields the rules use (`mask`: the port's word mask for that direction).
    @inlinable @inline(__always)
    func aclAllows(_ cfg: ConfigView, port: Int, _ start: UInt32, _ count: UInt32, mask: UnsafeMutablePointer<FlowKey>,
                   _ key: UnsafeMutablePointer<FlowKey>, outbound: Bool, defaultDeny: Bool,
                   cache: UnsafeMutablePointer<ACLVerdictCache.Entry>) -> Bool {
        if count == 0 { return !defaultDeny }
        let words = ACLVerdictCache.Words(UnsafeRawPointer(key), UnsafeRawPointer(mask))
        let tag = ACLVerdictCache.tag(generation: cfg.generation, port: port, outbound: outbound)
        let slot = cache + words.index(tag)
        let slotKey = UnsafeMutableRawPointer(slot) + MemoryLayout<ACLVerdictCache.Entry>.offset(of: \ACLVerdictCache.Entry.key)!
        if slot.pointee.tag == tag && words.equals(slotKey) { return slot.pointee.verdict != 0 }
        return aclAllowsMiss(cfg, start, count, key, mask: UnsafeRawPointer(mask), outbound: outbound, defaultDeny: defaultDeny,
                             slot: slot, tag: tag)
    }

    /// aclAllows' cache miss (out of line, as `aclBothMiss`).
    @inlinable @inline(never)
    /// The masked key is computed again here from `key` and `mask` rather than passed in: keeping the
    /// probe's eight words alive for this call made the hit path spill them to the stack.
    func aclAllowsMiss(_ cfg: ConfigView, _ start: UInt32, _ count: UInt32, _ key: UnsafeMutablePointer<FlowKey>,
                       mask: UnsafeRawPointer, outbound: Bool, defaultDeny: Bool, slot: UnsafeMutablePointer<ACLVerdictCache.Entry>,
                       tag: UInt64) -> Bool {
        let words = ACLVerdictCache.Words(UnsafeRawPointer(key), mask)
        let slotKey = UnsafeMutableRawPointer(slot) + MemoryLayout<ACLVerdictCache.Entry>.offset(of: \ACLVerdictCache.Entry.key)!
        let verdict = evaluate(cfg, start, count, key, outbound: outbound, defaultDeny: defaultDeny)
        slot.pointee.tag = tag
        words.store(slotKey)
        slot.pointee.verdict = verdict ? 1 : 0
        return verdict
    }

    /// Outbound ACL of `ingress` and inbound ACL of unicast output port `out` in one cache probe:
    /// bit 0 = outbound allow, bit 1 = inbound allow. Each verdict depends only on its own direction's
    /// fields, a subset of the union the entry is keyed on, so sharing the entry changes no verdict.
    /// `unionRow`: the ingress port's row of ConfigView.aclUnions; the output port's column completes the address
    /// of the union of the two masks (one place, not two masks ORed per frame).
    @inlinable @inline(__always)
    func aclBoth(_ cfg: ConfigView, ingress: Int, _ ie: UnsafeMutablePointer<PortEntry>, out: Int,
                 _ oe: UnsafeMutablePointer<PortEntry>, _ key: UnsafeMutablePointer<FlowKey>, tagBase: UInt64, unionRow: UnsafeRawPointer,
                 cache: UnsafeMutablePointer<ACLVerdictCache.Entry>) -> UInt8 {
        let union = unionRow + Int(oe.pointee.aclUnionColumn)
        let words = ACLVerdictCache.Words(UnsafeRawPointer(key), union)
        let tag = tagBase | UInt64(truncatingIfNeeded: out & 0xFFF)   // ACLVerdictCache.tag(generation:ingress:output:)
        let slot = cache + words.index(tag)
        let slotKey = UnsafeMutableRawPointer(slot) + MemoryLayout<ACLVerdictCache.Entry>.offset(of: \ACLVerdictCache.Entry.key)!
        if slot.pointee.tag == tag && words.equals(slotKey) { return slot.pointee.verdict }
        return aclBothMiss(cfg, ie, oe, key, union: union, slot: slot, tag: tag)
    }

    /// aclBoth's cache miss: both rule walks, then the entry is filled. Out of line: keeping the rare
    /// path out of the per-frame code lets the hit path inline into the caller.
    @inlinable @inline(never)
    func aclBothMiss(_ cfg: ConfigView, _ ie: UnsafeMutablePointer<PortEntry>, _ oe: UnsafeMutablePointer<PortEntry>,
                     _ key: UnsafeMutablePointer<FlowKey>, union: UnsafeRawPointer, slot: UnsafeMutablePointer<ACLVerdictCache.Entry>,
                     tag: UInt64) -> UInt8 {
        let words = ACLVerdictCache.Words(UnsafeRawPointer(key), union)
        let slotKey = UnsafeMutableRawPointer(slot) + MemoryLayout<ACLVerdictCache.Entry>.offset(of: \ACLVerdictCache.Entry.key)!
        let outbound = evaluate(cfg, ie.pointee.aclOutStart, ie.pointee.aclOutCount, key, outbound: true,
                                defaultDeny: ie.pointee.policy.outboundDefaultDeny)
        let inbound = evaluate(cfg, oe.pointee.aclInStart, oe.pointee.aclInCount, key, outbound: false,
                               defaultDeny: oe.pointee.policy.inboundDefaultDeny)
        let verdict: UInt8 = (outbound ? 1 : 0) | (inbound ? 2 : 0)
        slot.pointee.tag = tag
        words.store(slotKey)
        slot.pointee.verdict = verdict
        return verdict
    }

    /// Anti-spoofing, DHCP and router guards, outbound ACL and the transmit policer. Nil = pass.
    /// Reads the entry through its pointer field by field: copying a PortEntry (with its 512-byte
    /// VLAN set) per frame cost more than everything else here.
    @usableFromInline @_transparent
    func ingressPolicy(_ batch: FrameBatch, _ i: Int, port: Int, _ e: UnsafeMutablePointer<PortEntry>, _ cfg: ConfigView,
                       _ p: IngressPolicy, src: UInt64, dst: UInt64, vlan: UInt16, pcp: UInt8, out: Int, l3: UInt32,
                       key k: UnsafeMutablePointer<FlowKey>, cache: UnsafeMutablePointer<ACLVerdictCache.Entry>,
                       nowNs: UInt64, tat: inout UInt64) -> DropReason? {
        if p.sourceMACFiltering && src != p.mac
            && !allowListed(cfg, p.txAllowStart, p.txAllowCount, set: p.txAllowSet, setMask: p.txAllowSetMask, mac: src, vlan: vlan) {
            return .spoofedSource
        }
        if p.needsKey {
            // The key stays in registers for the guards and the cache probe; its copy in `keys` serves
            // a cache miss (the rule walk) and the egress checks of a flooded frame.
            let w = batch.flowWords(i, etherType: UInt16(truncatingIfNeeded: l3), l3: Int(l3 >> 16), vlan: vlan, pcp: pcp,
                                    src: src, dst: dst)
            w.store(UnsafeMutableRawPointer(k))
            batch.meta[i].flags |= FrameMeta.flowKeyValid
            if w.isUnparsable { return .malformed }
            if p.dhcpGuard && w.hasL4 && w.proto == 17
                && ((w.ipVersion == 4 && w.srcPort == 67) || (w.ipVersion == 6 && w.srcPort == 547)) {
                return .dhcpGuard
            }
            if p.routerGuard && w.hasL4
                && ((w.proto == 58 && (w.srcPort == 134 || w.srcPort == 137))
                    || (w.proto == 1 && w.ipVersion == 4 && w.srcPort == 5)) {
                return .routerGuard
            }
            if p.acl {
                // A known-unicast frame whose output port filters inbound: both verdicts in one probe,
                // the inbound one carried to that port's egress check in the frame's flags.
                if out >= 0 && out < cfg.portSlots && out != port, case let oe = cfg.ports + out, oe.pointee.inboundACLProbe {
                    let v = aclBoth(cfg, ingress: port, e, out: out, oe, k, tagBase: p.bothTagBase, unionRow: p.aclUnionRow, cache: cache)
                    if v & 1 == 0 { return .aclDeny }
                    batch.meta[i].flags |= FrameMeta.inboundACLChecked | (v & 2 == 0 ? FrameMeta.inboundACLDenied : 0)
                } else if !aclAllows(cfg, port: port, p.aclOutStart, p.aclOutCount,
                                     mask: &e.pointee.aclOutMask, k, outbound: true, defaultDeny: p.outboundDefaultDeny, cache: cache) {
                    return .aclDeny
                }
            }
        }
        if p.txNsPerByteQ16 > 0 {
            let cost = (batch.wireCost(i) &* p.txNsPerByteQ16) >> 16
            // GCRA (PortRuntime.conformOwned) on the caller's copy of the word (read and written once per batch).
            let next = (tat > nowNs ? tat : nowNs) &+ cost
            // A frame costing more than the burst (a GSO super-frame) passes only from a full bucket, and
            // leaves it in debt: the rate holds, and such a frame is not refused forever.
            if next &- nowNs > (p.txToleranceNs > cost ? p.txToleranceNs : cost) { return .policer }
            tat = next
        }
        return nil
    }

    /// Egress verdicts for one output port's list, into `verdicts[0..<n]` (`passVerdict` or a DropReason raw
    /// value): AllowedToReceive, the inbound ACL and the receive policer. The port's fields are read once
    /// per list, not once per frame. The receive policer is shared by every thread that sends to the port,
    /// so its GCRA state is charged for the whole list with one compare-and-swap instead of one locked
    /// instruction per frame. The filters are judged in one pass over the list, which also sums the policer
    /// costs of the frames they pass: when the whole sum conforms (the usual case: after the first charge
    /// every frame's GCRA base is the running total, so if the last frame conforms every earlier one does),
    /// every such frame passes and the word is charged once; otherwise (the policer limits, or another
    /// thread charged it in between) the policer is judged frame by frame in a pass of its own.
    @inlinable
    func egressVerdicts(_ batch: FrameBatch, list: UnsafeMutablePointer<UInt16>, _ n: Int, port: Int,
                        _ e: UnsafeMutablePointer<PortEntry>, _ cfg: ConfigView, nowNs: UInt64) {
        let batch = batch, verdicts = self.verdicts   // local copies, as in parseStage
        let rxAllowStart = e.pointee.rxAllowStart, rxAllowCount = e.pointee.rxAllowCount
        let aclStart = e.pointee.aclInStart, aclCount = e.pointee.aclInCount
        let defaultDeny = e.pointee.policy.inboundDefaultDeny
        let acl = aclCount > 0 || defaultDeny
        let pass = ForwardingEngine.passVerdict
        let policed = DropReason.policer.rawValue
        let perByte = e.pointee.rxNsPerByteQ16
        let tolerance = e.pointee.rxToleranceNs
        let w = cfg.runtime.word(port: port, PortRuntime.rxPolicer)
        let mask = UnsafeMutableRawPointer(e).advanced(by: MemoryLayout<PortEntry>.offset(of: \PortEntry.aclInMask)!)
            .assumingMemoryBound(to: FlowKey.self)
        let start = perByte > 0 ? w.load(ordering: .relaxed) : 0
        // Frames whose inbound ACL was judged at ingress (aclBoth) on a port without AllowedToReceive take
        // the short path; the rest (AllowedToReceive, flooded frames' ACL) are judged out of line.
        let judgedAtIngress = rxAllowCount == 0 && acl
        var sum: UInt64 = 0     // policer cost of the frames the filters passed
        var passed = 0
        var k = 0
        while k < n {
            let i = Int(list[k])
            let meta = batch.meta + i
            var v = pass
            let flags = meta.pointee.flags
            if judgedAtIngress && flags & FrameMeta.inboundACLChecked != 0 && Int(meta.pointee.output) == port {
                if flags & FrameMeta.inboundACLDenied != 0 { v = DropReason.aclDeny.rawValue }
            } else if rxAllowCount > 0 || acl {
                v = egressFilter(batch, i, port: port, cfg, rxAllowStart, rxAllowCount, aclStart, aclCount, mask: mask,
                                 defaultDeny: defaultDeny)
            }
            if v == pass && perByte > 0 {
                sum &+= (batch.wireCost(i) &* perByte) >> 16
                passed &+= 1
            }
            verdicts[k] = v
            k &+= 1
        }
        guard perByte > 0 && passed > 0 else { return }
        // All of them conform: the last frame's GCRA test (base + the sum of the costs) is the strictest.
        let end = (start > nowNs ? start : nowNs) &+ sum
        if end &- nowNs <= tolerance {
            if end == start || w.compareExchange(expected: start, desired: end, ordering: .relaxed).exchanged { return }
        }
        // The policer limits, or another thread charged it meanwhile: judge it frame by frame over the frames the
        // filters passed (with the word as it is now), and charge it with one compare-and-swap.
        while true {
            let start = w.load(ordering: .relaxed)
            var tat = start
            k = 0
            while k < n {
                if verdicts[k] == pass || verdicts[k] == policed {
                    let cost = (batch.wireCost(Int(list[k])) &* perByte) >> 16
                    let base = tat > nowNs ? tat : nowNs
                    let next = base &+ cost
                    // As at ingress: a frame costing more than the burst passes from a full bucket only.
                    if next &- nowNs > (tolerance > cost ? tolerance : cost) { verdicts[k] = policed } else { verdicts[k] = pass; tat = next }
                }
                k &+= 1
            }
            if tat == start || w.compareExchange(expected: start, desired: tat, ordering: .relaxed).exchanged { return }
        }
    }

    /// AllowedToReceive and the inbound ACL of output port `port` for frame `i` (egressVerdicts' long path,
    /// out of line so that its registers do not burden the per-frame loop).
    @inlinable @inline(never)
    func egressFilter(_ batch: FrameBatch, _ i: Int, port: Int, _ cfg: ConfigView, _ rxAllowStart: UInt32, _ rxAllowCount: UInt32,
                      _ aclStart: UInt32, _ aclCount: UInt32, mask: UnsafeMutablePointer<FlowKey>, defaultDeny: Bool) -> UInt8 {
        let meta = batch.meta + i
        if rxAllowCount > 0
            && !allowListed(cfg, rxAllowStart, rxAllowCount, set: cfg.allowSets + Int(cfg.ports[port].rxAllowSet),
                            setMask: Int(cfg.ports[port].rxAllowSetMask), mac: batch.destination(i), vlan: meta.pointee.vlan) {
            return DropReason.noDestination.rawValue
        }
        guard aclCount > 0 || defaultDeny else { return ForwardingEngine.passVerdict }
        if meta.pointee.flags & FrameMeta.inboundACLChecked != 0 && Int(meta.pointee.output) == port {
            // Judged at ingress together with the outbound ACL (aclBoth).
            return meta.pointee.flags & FrameMeta.inboundACLDenied != 0 ? DropReason.aclDeny.rawValue : ForwardingEngine.passVerdict
        }
        if meta.pointee.flags & FrameMeta.flowKeyValid == 0 {
            // Parsed once per frame: a flooded frame's key serves every output port.
            batch.parseFlowKey(i, vlan: meta.pointee.vlan, pcp: meta.pointee.pcp, into: &keys[i])
            meta.pointee.flags |= FrameMeta.flowKeyValid
        }
        if keys[i].ipVersion == FlowKey.unparsableIPv6 { return DropReason.malformed.rawValue }
        if !aclAllows(cfg, port: port, aclStart, aclCount, mask: mask, keys + i, outbound: false, defaultDeny: defaultDeny,
                      cache: aclCache.entries) {
            return DropReason.aclDeny.rawValue
        }
        return ForwardingEngine.passVerdict
    }

    public static let passVerdict: UInt8 = 255

    /// Sends every frame `classify` scattered, in each output port's wire form, and clears the plan.
    @inlinable
    public func transmit<B: PortBackend>(_ batch: FrameBatch, view: UnsafeMutablePointer<ConfigView>, nowNs: UInt64 = 0,
                                         backend: inout B) {
        let batch = batch, verdicts = self.verdicts   // local copies, as in parseStage
        let cfg = view.pointee
        let touchedN = tx.touchedCount.pointee
        var t = 0
        while t < touchedN {
            let port = Int(tx.touched[t])
            let n = Int(tx.lengths[port])
            let list = tx.lists + port &* tx.batchCapacity
            let entry = cfg.ports + port
            // PortPolicy.egressTag's tests as two per-list values: only a trunk tags, and not its untagged native
            // VLAN (0x10000 when the native VLAN leaves tagged: no frame's VLAN).
            let tagging = entry.pointee.policy.mode == .trunk
            let untagged = entry.pointee.policy.nativeEgressTagged ? 0x10000 : UInt32(entry.pointee.policy.pvid)
            let checks = entry.pointee.egressChecks
            var sent: UInt64 = 0
            var bytes: UInt64 = 0
            let taps = entry.pointee.taps & (PortEntry.captureOut | PortEntry.mirrorSource)
            var tapped = 0
            if checks { egressVerdicts(batch, list: list, n, port: port, entry, cfg, nowNs: nowNs) }
            var k = 0
            while k < n {
                let i = Int(list[k])
                k &+= 1
                if checks && verdicts[k &- 1] != ForwardingEngine.passVerdict {
                    counters.drop(port: port, verdicts[k &- 1])
                    continue
                }
                let meta = batch.meta + i
                let flags = meta.pointee.flags
                let vlan = meta.pointee.vlan
                let carries = flags & FrameMeta.tagged != 0
                if tagging && UInt32(vlan) != untagged {
                    // PortPolicy.egressTag
                    let tpid = flags & FrameMeta.serviceTag != 0 ? EtherType.qinq : EtherType.vlan
                    let tci = UInt16(truncatingIfNeeded: meta.pointee.pcp & 7) << 13 | vlan
                    if carries { batch.setTag(i, tag: UInt32(tpid) << 16 | UInt32(tci)) } else {
                        batch.pushTag(i, tpid: tpid, tci: tci)
                        meta.pointee.flags |= FrameMeta.tagged
                    }
                } else if carries {
                    batch.popTag(i)
                    meta.pointee.flags &= ~FrameMeta.tagged
                }
                let length = UInt64(meta.pointee.length)
                if taps != 0 { list[tapped] = UInt16(truncatingIfNeeded: i); tapped &+= 1 }   // k > tapped: already read
                if batch.needsSoftwareOffload(i, portOffload: entry.pointee.offload, portUSO: entry.pointee.uso) {
                    // The port does not take this offload: cut a super-frame into segments, or finish its checksum.
                    if batch.isGSO(i) {
                        let r = sendSegments(batch, i, port: port, entry: entry, backend: &backend)
                        sent &+= r.sent; bytes &+= r.bytes
                        continue
                    }
                    if !batch.completeChecksum(i) { counters.drop(port: port, DropReason.malformed.rawValue); continue }
                }
                switch backend.send(port: port, entry: entry, batch: batch, frame: i) {
                case .sent: sent &+= 1; bytes &+= length
                case .wouldBlock: counters.drop(port: port, DropReason.txQueueFull.rawValue)
                case .failed: counters.drop(port: port, DropReason.txError.rawValue)
                case .queued: break
                }
            }
            let done = backend.flush(port: port, entry: entry)
            sent &+= done.sent
            bytes &+= done.bytes
            if done.wouldBlock > 0 { counters.add(port: port, PortCounter.dropBase &+ Int(DropReason.txQueueFull.rawValue), done.wouldBlock) }
            if done.failed > 0 { counters.add(port: port, PortCounter.dropBase &+ Int(DropReason.txError.rawValue), done.failed) }
            if sent > 0 {
                counters.add(port: port, PortCounter.txPackets, sent)
                counters.add(port: port, PortCounter.txBytes, bytes)
            }
            if taps != 0 && tapped > 0 {
                egressTaps(batch, list: list, count: tapped, port: port, taps: taps, view: view, nowNs: nowNs, backend: &backend)
            }
            tx.lengths[port] = 0
            t &+= 1
        }
        tx.touchedCount.pointee = 0
    }

    /// Sends GSO super-frame `i` (in `port`'s wire form) to a port without offloads as MSS-sized
    /// segments cut into the scratch batch, a scratch-full at a time (each chunk is flushed before the
    /// scratch is reused, which also completes the port's earlier queued frames: their outcome is in the
    /// result). Drops are counted here; the caller adds the returned sent frames and bytes.
    @inlinable
    func sendSegments<B: PortBackend>(_ batch: FrameBatch, _ i: Int, port: Int, entry: UnsafeMutablePointer<PortEntry>,
                                      backend: inout B) -> (sent: UInt64, bytes: UInt64) {
        var sent: UInt64 = 0, bytes: UInt64 = 0
        var from = 0
        while true {
            let r = batch.segment(i, from: from, into: &scratch.pointee)
            if r.invalid { counters.drop(port: port, DropReason.malformed.rawValue); break }
            let seg = scratch.pointee
            var s = 0
            while s < r.count {
                switch backend.send(port: port, entry: entry, batch: seg, frame: s) {
                case .sent: sent &+= 1; bytes &+= UInt64(seg.meta[s].length)
                case .wouldBlock: counters.drop(port: port, DropReason.txQueueFull.rawValue)
                case .failed: counters.drop(port: port, DropReason.txError.rawValue)
                case .queued: break
                }
                s &+= 1
            }
            let done = backend.flush(port: port, entry: entry)
            sent &+= done.sent
            bytes &+= done.bytes
            if done.wouldBlock > 0 { counters.add(port: port, PortCounter.dropBase &+ Int(DropReason.txQueueFull.rawValue), done.wouldBlock) }
            if done.failed > 0 { counters.add(port: port, PortCounter.dropBase &+ Int(DropReason.txError.rawValue), done.failed) }
            if r.done || r.count == 0 { break }
            from = r.next
        }
        return (sent, bytes)
    }

    /// classify + transmit.
    @inlinable
    public func forward<B: PortBackend>(_ batch: FrameBatch, ingress: Int, view: UnsafeMutablePointer<ConfigView>,
                                        now: UInt32, nowNs: UInt64 = 0, backend: inout B) {
        let taps = view.pointee.ports[ingress].taps
        if taps & (PortEntry.captureIn | PortEntry.mirrorSource) != 0 {
            ingressTaps(batch, port: ingress, taps: taps, view: view, nowNs: nowNs, backend: &backend)
        }
        classify(batch, ingress: ingress, view: view, now: now, nowNs: nowNs)
        transmit(batch, view: view, nowNs: nowNs, backend: &backend)
    }
}
