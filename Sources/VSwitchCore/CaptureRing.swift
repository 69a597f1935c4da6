// CaptureRing and the forwarding path's capture/mirror hooks (issue 4; design.md point 10).
//
// Design
// - One CaptureRing per forwarding engine: a preallocated single-producer / single-consumer ring
//   of fixed-size slots (24-byte header + `slotBytes` of frame). The producer is the engine's
//   forwarding thread, the consumer the daemon's one capture writer thread (VSwitchCapture).
//   head and tail are atomics on separate cache lines; a push is: relaxed load of head, acquire
//   load of tail, copy, release store of head. No allocation, no lock, no ARC.
// - A full ring refuses the copy: the engine counts it (PortCounter.captureDrops on the port) and
//   goes on; the frame itself is never held back.
// - Hooks, gated by `PortEntry.taps` (built into the snapshot): ingress taps run once per batch
//   before classification (the frames as received on the wire); egress taps run per output port
//   after that port's flush, while the frames are still in that port's wire form. Capture off
//   costs one predictable branch per batch and per output port.
// - Mirroring: frames of a mirror-source port (both directions) are sent, untouched, to the
//   session's destination ports (ConfigView.mirrorStart/mirrorPorts). They bypass classify, so a
//   copy is never learned from, flooded or mirrored again.
//
// Threading: push + the hooks on the owning forwarding thread only; drain on one consumer thread.

import Atomics
import VSwitchPacket
import VSwitchPolicy

public struct CaptureRing: @unchecked Sendable {
    public static let headerBytes = 24
    public static let ingress: UInt8 = 0, egress: UInt8 = 1
    public let slotCount: Int
    public let slotBytes: Int
    @usableFromInline let mask: Int
    @usableFromInline let stride: Int
    @usableFromInline let memory: UnsafeMutableRawPointer
    /// [0] = head (producer), [8] = tail (consumer): one cache line each.
    @usableFromInline let indices: UnsafeMutablePointer<UnsafeAtomic<Int>.Storage>

    /// One copied frame, as the consumer sees it (valid until `drain`'s body returns).
    public struct Record {
        public var port: Int
        public var direction: UInt8
        public var timestampNs: UInt64
        public var originalLength: Int
        public var bytes: UnsafeRawBufferPointer
    }

    /// `slotCount` is rounded up to a power of two. Slot memory is reserved, not touched, until used.
    public init(slotCount: Int = 1024, slotBytes: Int = 2048) {
        var n = 1
        while n < slotCount { n <<= 1 }
        self.slotCount = n
        self.slotBytes = slotBytes
        mask = n - 1
        stride = (CaptureRing.headerBytes + slotBytes + 63) & ~63
        memory = .allocate(byteCount: n * stride, alignment: 64)
        indices = .allocate(capacity: 16)
        for i in 0..<16 { (indices + i).initialize(to: .init(0)) }
    }

    public func deallocate() { memory.deallocate(); indices.deallocate() }

    @usableFromInline var head: UnsafeAtomic<Int> { UnsafeAtomic(at: indices) }
    @usableFromInline var tail: UnsafeAtomic<Int> { UnsafeAtomic(at: indices + 8) }

    /// Producer: copies frame `i` of `batch` (at most `slotBytes`). False = ring full, nothing copied.
    @inlinable @inline(__always)
    public func push(_ batch: FrameBatch, _ i: Int, port: Int, direction: UInt8, timestampNs: UInt64) -> Bool {
        let h = head.load(ordering: .relaxed)
        if h &- tail.load(ordering: .acquiring) >= slotCount { return false }
        let slot = memory + (h & mask) &* stride
        let length = Int(batch.meta[i].length)
        let cap = length < slotBytes ? length : slotBytes
        slot.storeBytes(of: timestampNs, toByteOffset: 0, as: UInt64.self)
        slot.storeBytes(of: UInt32(truncatingIfNeeded: length), toByteOffset: 8, as: UInt32.self)
        slot.storeBytes(of: UInt32(truncatingIfNeeded: cap), toByteOffset: 12, as: UInt32.self)
        slot.storeBytes(of: UInt16(truncatingIfNeeded: port), toByteOffset: 16, as: UInt16.self)
        slot.storeBytes(of: direction, toByteOffset: 18, as: UInt8.self)
        (slot + CaptureRing.headerBytes).copyMemory(from: batch.data(i), byteCount: cap)
        head.store(h &+ 1, ordering: .releasing)
        return true
    }

    /// Consumer: hands up to `max` records to `body`, oldest first; returns how many.
    public func drain(max: Int = .max, _ body: (Record) -> Void) -> Int {
        let t = tail.load(ordering: .relaxed)
        let h = head.load(ordering: .acquiring)
        let n = Swift.min(h - t, max)
        var k = 0
        while k < n {
            let slot = UnsafeRawPointer(memory + ((t + k) & mask) * stride)
            let cap = Int(slot.load(fromByteOffset: 12, as: UInt32.self))
            body(Record(port: Int(slot.load(fromByteOffset: 16, as: UInt16.self)),
                        direction: slot.load(fromByteOffset: 18, as: UInt8.self),
                        timestampNs: slot.load(fromByteOffset: 0, as: UInt64.self),
                        originalLength: Int(slot.load(fromByteOffset: 8, as: UInt32.self)),
                        bytes: UnsafeRawBufferPointer(start: slot + CaptureRing.headerBytes, count: cap)))
            k += 1
        }
        if n > 0 { tail.store(t + n, ordering: .releasing) }
        return n
    }

    /// Records waiting (any thread; approximate while the producer runs).
    public var pending: Int { head.load(ordering: .relaxed) &- tail.load(ordering: .relaxed) }
}

extension PortEntry {
    /// `taps` bits: copy received frames / sent frames to the capture ring; port is a mirror source.
    public static let captureIn: UInt8 = 1, captureOut: UInt8 = 2, mirrorSource: UInt8 = 4
}

extension ForwardingEngine {
    /// Ingress taps of one batch received on `port` (frames as on the wire, before classification).
    @inlinable @inline(never)
    public func ingressTaps<B: PortBackend>(_ batch: FrameBatch, port: Int, taps: UInt8, view: UnsafeMutablePointer<ConfigView>,
                                            nowNs: UInt64, backend: inout B) {
        let n = batch.count
        if taps & PortEntry.captureIn != 0 {
            var i = 0
            while i < n {
                if !capture.push(batch, i, port: port, direction: CaptureRing.ingress, timestampNs: nowNs) {
                    counters.add(port: port, PortCounter.captureDrops, 1)
                }
                i &+= 1
            }
        }
        if taps & PortEntry.mirrorSource != 0 {
            mirror(batch, list: nil, count: n, from: port, view: view, backend: &backend)
        }
    }

    /// Egress taps of the frames `list[0..<count]` just sent out of `port` (still in its wire form).
    @inlinable @inline(never)
    func egressTaps<B: PortBackend>(_ batch: FrameBatch, list: UnsafeMutablePointer<UInt16>, count: Int, port: Int, taps: UInt8,
                                    view: UnsafeMutablePointer<ConfigView>, nowNs: UInt64, backend: inout B) {
        if taps & PortEntry.captureOut != 0 {
            var k = 0
            while k < count {
                if !capture.push(batch, Int(list[k]), port: port, direction: CaptureRing.egress, timestampNs: nowNs) {
                    counters.add(port: port, PortCounter.captureDrops, 1)
                }
                k &+= 1
            }
        }
        if taps & PortEntry.mirrorSource != 0 {
            mirror(batch, list: list, count: count, from: port, view: view, backend: &backend)
        }
    }

    /// Sends frames (all of the batch when `list` is nil) unchanged to the destination ports of the
    /// mirror session of `port`; counted as mirror-tx / mirror-drops on the destination.
    @inlinable
    func mirror<B: PortBackend>(_ batch: FrameBatch, list: UnsafeMutablePointer<UInt16>?, count: Int, from port: Int,
                                view: UnsafeMutablePointer<ConfigView>, backend: inout B) {
        let cfg = view.pointee
        let session = Int(cfg.ports[port].policy.mirrorSession)
        guard session > 0, session < cfg.mirrorSessions else { return }
        var d = Int(cfg.mirrorStart[session])
        let end = Int(cfg.mirrorStart[session &+ 1])
        while d < end {
            let dst = Int(cfg.mirrorPorts[d])
            d &+= 1
            let de = cfg.ports + dst
            if dst == port || !de.pointee.present || !de.pointee.up { continue }
            var sent: UInt64 = 0, failed: UInt64 = 0
            var k = 0
            while k < count {
                let i = list != nil ? Int(list.unsafelyUnwrapped[k]) : k
                k &+= 1
                switch backend.send(port: dst, entry: de, batch: batch, frame: i) {
                case .sent: sent &+= 1
                case .queued: break
                case .wouldBlock, .failed: failed &+= 1
                }
            }
            let done = backend.flush(port: dst, entry: de)
            sent &+= done.sent
            failed &+= done.wouldBlock &+ done.failed
            if sent > 0 { counters.add(port: dst, PortCounter.mirrorSent, sent) }
            if failed > 0 { counters.add(port: dst, PortCounter.mirrorDrops, failed) }
        }
    }
}
