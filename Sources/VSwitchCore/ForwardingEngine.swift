// ForwardingEngine: the per-frame pipeline of one forwarding thread
// (dataplane.md "The life of a frame"), classify-then-act (design.md 3):
//
//   classify()  one pass over the batch: parse, VLAN classification (VLAN and
//               PCP go to FrameMeta; the frame's own tag stays in place), learning, lookup; writes one decision
//               per frame: an output port, flood, or drop with a reason.
//   scatter     in the same pass: frame indices appended to per-port TX lists.
//   transmit()  per output port: bring the frame to the port's wire form
//               from whatever form it has now (rewrite the TCI in place, push
//               a tag into the headroom, or pop it), then send. A flooded
//               frame goes out in each port's form without copies.
//
// Threading: an engine belongs to exactly one forwarding thread; its
// counters, TX plan and move log are that thread's. It shares only the
// ConfigView (immutable) and the MAC table (lock-free). No allocation, no
// locks, no reference counting in classify/transmit (checked by the
// benchmark's allocation counter and by the TSan stress test).

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
        touched = .allocate(capacity: maxPorts)
        touched.initialize(repeating: 0, count: maxPorts)
        touchedCount = .allocate(capacity: 1)
        touchedCount.initialize(to: 0)
    }

    public func deallocate() {
        lists.deallocate(); lengths.deallocate(); touched.deallocate(); touchedCount.deallocate()
    }

    @inlinable @inline(__always)
    func append(port: Int, frame: Int) {
        let n = Int(lengths[port])
        if n == 0 { touched[touchedCount.pointee] = UInt16(truncatingIfNeeded: port); touchedCount.pointee &+= 1 }
        lists[port &* batchCapacity &+ n] = UInt16(truncatingIfNeeded: frame)
        lengths[port] = UInt16(truncatingIfNeeded: n &+ 1)
    }
}

public struct ForwardingEngine {
    public let counters: CounterBlock
    public let moves: MoveLog
    public let tx: TxPlan

    public init(maxPorts: Int = 1024, batchCapacity: Int) {
        counters = CounterBlock(maxPorts: maxPorts)
        moves = MoveLog()
        tx = TxPlan(maxPorts: maxPorts, batchCapacity: batchCapacity)
    }

    public func deallocate() { counters.deallocate(); tx.deallocate() }

    @usableFromInline static let dropped = FrameMeta.drop

    @inlinable @inline(__always)
    func drop(_ batch: FrameBatch, _ i: Int, _ port: Int, _ reason: DropReason) {
        batch.meta[i].output = FrameMeta.drop
        batch.meta[i].reason = reason.rawValue
        counters.drop(port: port, reason.rawValue)
    }

    /// Decides the fate of every frame of `batch`, all received on port `ingress`.
    @inlinable
    public func classify(_ batch: FrameBatch, ingress: Int, view: UnsafeMutablePointer<ConfigView>, now: UInt32) {
        let cfg = view.pointee
        let entry = cfg.ports + ingress
        let policy = entry.pointee.policy
        let maxPayload = Int(entry.pointee.mtu)
        let table = cfg.macTable
        let portSlots = cfg.portSlots
        var rxBytes: UInt64 = 0
        var floods: UInt64 = 0
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
            var hasTag = false          // carries an 802.1Q tag (possibly priority-only)
            var vid: UInt16 = 0
            var pcp = policy.defaultPriority
            var headerLen = 14
            if et == EtherType.vlan || et == EtherType.qinq {
                if length < 18 { drop(batch, i, ingress, .malformed); continue }
                headerLen = 18
                let inner = batch.be16(i, at: 16)
                if inner == EtherType.vlan || inner == EtherType.qinq {
                    if length < 22 { drop(batch, i, ingress, .malformed); continue }
                }
                if et == EtherType.vlan && policy.mode != .tunnel {
                    let tci = batch.be16(i, at: 14)
                    hasTag = true
                    vid = tci & 0x0FFF
                    tagged = vid != 0
                    pcp = UInt8(truncatingIfNeeded: tci >> 13)
                    if vid == 0xFFF { drop(batch, i, ingress, .malformed); continue }
                } else {
                    headerLen = 14   // an S-tag (or a tunnel port's tags) is payload here
                }
            }
            if length &- headerLen > maxPayload { drop(batch, i, ingress, .mtuExceeded); continue }

            // 2. Ingress VLAN classification.
            var vlan: UInt16
            switch policy.mode {
            case .access:
                if tagged && vid != policy.pvid { drop(batch, i, ingress, .vlanNotAllowed); continue }
                vlan = policy.pvid
            case .trunk:
                if tagged {
                    if !policy.vlans.contains(vid) { drop(batch, i, ingress, .vlanNotAllowed); continue }
                    vlan = vid
                } else {
                    if !policy.acceptUntagged { drop(batch, i, ingress, .untaggedNotAllowed); continue }
                    vlan = policy.pvid
                }
            case .tunnel:
                vlan = policy.pvid
            }
            // 3. Priority.
            if hasTag && policy.allowedPriorityMask & (1 &<< pcp) == 0 {
                if policy.dropPriorityViolations { drop(batch, i, ingress, .priorityNotAllowed); continue }
                pcp = policy.defaultPriority
            }
            // 4. Source check and learning.
            let src = batch.source(i)
            if src & 0x0100_0000_0000 != 0 || src == 0 { drop(batch, i, ingress, .invalidSource); continue }
            if policy.learning {
                var previous = 0
                switch table.learn(vlan: vlan, mac: src, port: ingress, now: now, portLimit: policy.macLimit,
                                   previousPort: &previous) {
                case .known, .refreshed, .learned, .staticEntry:
                    break
                case .moved:
                    counters.add(port: ingress, PortCounter.macMoves, 1)
                    moves.push(MACMove(mac: src, vlan: vlan, from: previous, to: ingress))
                case .portLimit:
                    if !policy.forwardUnlearned { drop(batch, i, ingress, .macLimit); continue }
                case .tableFull:
                    counters.add(port: ingress, PortCounter.learnTableFull, 1)
                }
            }
            // The tag stays where it is; transmit turns it into each output port's form.
            meta.pointee.flags = hasTag ? FrameMeta.tagged : 0
            meta.pointee.vlan = vlan
            meta.pointee.pcp = pcp

            // 5. Lookup and scatter.
            let dst = batch.destination(i)
            if dst & 0x0100_0000_0000 == 0 {
                let out = table.lookup(vlan: vlan, mac: dst)
                if out >= 0 {
                    if out == ingress { drop(batch, i, ingress, .sameSegment); continue }
                    if out >= portSlots { drop(batch, i, ingress, .noDestination); continue }
                    let oe = cfg.ports + out
                    if !oe.pointee.present || !oe.pointee.up { drop(batch, i, out, .portDown); continue }
                    if !oe.pointee.policy.vlans.contains(vlan) { drop(batch, i, out, .vlanNotAllowed); continue }
                    meta.pointee.output = UInt16(truncatingIfNeeded: out)
                    tx.append(port: out, frame: i)
                    continue
                }
            }
            meta.pointee.output = FrameMeta.flood
            floods &+= 1
            let start = Int(cfg.floodStart[Int(vlan)])
            let end = Int(cfg.floodStart[Int(vlan) &+ 1])
            var f = start
            while f < end {
                let p = Int(cfg.floodPorts[f])
                if p != ingress { tx.append(port: p, frame: i) }
                f &+= 1
            }
        }
        counters.add(port: ingress, PortCounter.rxPackets, UInt64(n))
        counters.add(port: ingress, PortCounter.rxBytes, rxBytes)
        if floods > 0 { counters.add(port: ingress, PortCounter.floods, floods) }
    }

    /// Sends every frame `classify` scattered, in each output port's wire form, and clears the plan.
    @inlinable
    public func transmit<B: PortBackend>(_ batch: FrameBatch, view: UnsafeMutablePointer<ConfigView>, backend: inout B) {
        let cfg = view.pointee
        let touchedN = tx.touchedCount.pointee
        var t = 0
        while t < touchedN {
            let port = Int(tx.touched[t])
            let n = Int(tx.lengths[port])
            let list = tx.lists + port &* tx.batchCapacity
            let entry = cfg.ports + port
            let policy = entry.pointee.policy
            var sent: UInt64 = 0
            var bytes: UInt64 = 0
            var k = 0
            while k < n {
                let i = Int(list[k])
                let meta = batch.meta + i
                let tag = policy.egressTag(vlan: meta.pointee.vlan, pcp: meta.pointee.pcp)
                let carries = meta.pointee.flags & FrameMeta.tagged != 0
                if tag != 0 {
                    let tpid = UInt16(truncatingIfNeeded: tag >> 16), tci = UInt16(truncatingIfNeeded: tag)
                    if carries { batch.setTag(i, tpid: tpid, tci: tci) } else {
                        batch.pushTag(i, tpid: tpid, tci: tci)
                        meta.pointee.flags |= FrameMeta.tagged
                    }
                } else if carries {
                    batch.popTag(i)
                    meta.pointee.flags &= ~FrameMeta.tagged
                }
                let length = UInt64(meta.pointee.length)
                switch backend.send(port: port, entry: entry, batch: batch, frame: i) {
                case .sent: sent &+= 1; bytes &+= length
                case .wouldBlock: counters.drop(port: port, DropReason.txQueueFull.rawValue)
                case .failed: counters.drop(port: port, DropReason.txError.rawValue)
                }
                k &+= 1
            }
            if sent > 0 {
                counters.add(port: port, PortCounter.txPackets, sent)
                counters.add(port: port, PortCounter.txBytes, bytes)
            }
            tx.lengths[port] = 0
            t &+= 1
        }
        tx.touchedCount.pointee = 0
    }

    /// classify + transmit.
    @inlinable
    public func forward<B: PortBackend>(_ batch: FrameBatch, ingress: Int, view: UnsafeMutablePointer<ConfigView>,
                                        now: UInt32, backend: inout B) {
        classify(batch, ingress: ingress, view: view, now: now)
        transmit(batch, view: view, backend: &backend)
    }
}
