// CaptureRing and the forwarding path's capture/mirror hooks (issue 4; design.md point 10).
//
// Design
// - One CaptureRing per forwarding engine: a preallocated single-producer / single-consumer *byte*
//   ring of variable-length records: a 16-byte header, then the frame's first `kept` bytes, with no
//   padding, so consecutive records are contiguous. A 60-byte frame takes 76 bytes of ring, a
//   9018-byte jumbo frame 9034, a 64 KB GSO frame up to `maxCopy` = 65535 (pcap's usual snaplen
//   cap) + 16. The ring is 4 MiB by default (~55,000 small frames, ~460 jumbo frames); its pages are
//   touched only once capture is used. A record never wraps: when it does not fit before the end of
//   the buffer, a wrap marker (port field 0xFFFF; the buffer has 16 bytes of slack so that the
//   8-byte marker always fits) ends the data and the record starts at offset 0.
// - The header is the size of a pcap record header on purpose: the consumer (the capture writer)
//   rewrites it in place into the pcap header (seconds, nanoseconds, caplen, length) and writes a
//   contiguous run of records straight from the ring with one writev, no copy in userspace
//   (`peek` hands records out without giving their space back; `release` gives it back after the
//   write). Headers and frame bytes are therefore unaligned: x86-64 and arm64 do not mind.
// - The producer is the engine's forwarding thread, the consumer the daemon's one capture writer
//   thread (VSwitchCapture). head and tail are byte counters (never wrapped, masked to index) on
//   separate cache lines; the producer keeps a cached copy of tail on its own line and reads the
//   consumer's only when the cached value says "full". The hooks push a batch at a time: head and
//   the cached limit stay in registers (`Cursor`), each copy is a compare, two 8-byte header
//   stores and one memcpy, and head is published once per batch with a release store (so its
//   cache line moves to the consumer once per batch, not per copy). No allocation, no lock, no ARC.
// - Snaplen: the ring keeps up to 65535 bytes of every frame (whole frames up to the 9000-byte
//   MTU + tags), or, per port, the largest snaplen of the sessions capturing it (PortEntry.captureSnap:
//   a capture with `--snaplen 96` copies 96 bytes, not the whole frame); each capture session
//   truncates further to its own --snaplen in the writer.
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
// Threading: push + the hooks on the owning forwarding thread only; drain / peek / release on one
// consumer thread.

import Atomics
import CVSwitchShim
import VSwitchPacket
import VSwitchPolicy

public struct CaptureRing: @unchecked Sendable {
    /// Record header: [0] UInt32 original length, [4] UInt16 bytes kept, [6] UInt16 port | direction << 15
    /// (0xFFFF = wrap marker), [8] UInt64 timestamp (ns).
    public static let headerBytes = 16
    public static let ingress: UInt8 = 0, egress: UInt8 = 1
    /// pcap's usual snaplen cap; also the most a record's 16-bit length field holds.
    public static let maxSnaplen = 65535
    @usableFromInline static let wrapMarker: UInt64 = 0xFFFF << 48
    /// Buffer size in bytes (a power of two).
    public let byteCount: Int
    /// Most bytes kept of one frame.
    public let maxCopy: Int
    @usableFromInline let mask: Int
    @usableFromInline let memory: UnsafeMutableRawPointer
    /// [0] = head (producer), [1] = the producer's cached tail, [8] = tail (consumer): a cache line each side.
    @usableFromInline let indices: UnsafeMutablePointer<UnsafeAtomic<Int>.Storage>

    /// One copied frame, as the consumer sees it (valid until `drain`'s body returns, or until `release`
    /// after `peek`).
    public struct Record {
        public var port: Int
        public var direction: UInt8
        public var timestampNs: UInt64
        public var originalLength: Int
        public var bytes: UnsafeRawBufferPointer
        /// The record's 16-byte header, right before `bytes`; already read into the fields above, so the
        /// consumer may overwrite it (the capture writer puts the pcap record header there).
        public var header: UnsafeMutableRawPointer
    }

    /// Bytes one record of `kept` frame bytes takes in the ring (no padding: records are contiguous).
    @inlinable @inline(__always)
    public static func recordBytes(_ kept: Int) -> Int { headerBytes &+ kept }

    /// `byteCount` is rounded up to a power of two holding at least two records of `maxCopy` bytes.
    /// The memory is reserved, not touched, until used.
    public init(byteCount: Int = 4 << 20, maxCopy: Int = CaptureRing.maxSnaplen) {
        precondition(maxCopy >= 14 && maxCopy <= CaptureRing.maxSnaplen)
        var n = 64
        while n < byteCount || n < 2 * CaptureRing.recordBytes(maxCopy) { n <<= 1 }
        self.byteCount = n
        self.maxCopy = maxCopy
        mask = n - 1
        memory = .allocate(byteCount: n + 16, alignment: 64)   // + slack: a wrap marker always fits
        indices = .allocate(capacity: 16)
        for i in 0..<16 { (indices + i).initialize(to: .init(0)) }
    }

    public func deallocate() { memory.deallocate(); indices.deallocate() }

    @usableFromInline var head: UnsafeAtomic<Int> { UnsafeAtomic(at: indices) }
    @usableFromInline var cachedTail: UnsafeAtomic<Int> { UnsafeAtomic(at: indices + 1) }
    @usableFromInline var tail: UnsafeAtomic<Int> { UnsafeAtomic(at: indices + 8) }

    /// The producer's position during one batch of pushes: head and the cached end of free space, kept in
    /// registers; published once per batch (`endPush`), so the head's cache line moves to the consumer once
    /// per batch instead of once per copy.
    public struct Cursor {
        public var head: Int
        public var limit: Int
        @inlinable init(head: Int, limit: Int) { self.head = head; self.limit = limit }
    }

    @inlinable @inline(__always)
    public func beginPush() -> Cursor {
        Cursor(head: head.load(ordering: .relaxed), limit: cachedTail.load(ordering: .relaxed) &+ byteCount)
    }

    /// Makes the records pushed since `beginPush` visible to the consumer.
    @inlinable @inline(__always)
    public func endPush(_ c: Cursor) {
        cachedTail.store(c.limit &- byteCount, ordering: .relaxed)
        head.store(c.head, ordering: .releasing)
    }

    /// The most bytes to copy per frame for a port whose sessions want `snap` bytes (0: all, up to `maxCopy`).
    @inlinable @inline(__always)
    public func copyLimit(snap: UInt16) -> Int { snap == 0 || Int(snap) > maxCopy ? maxCopy : Int(snap) }

    /// Producer, between `beginPush` and `endPush`: copies frame `i` of `batch` (at most `limit` bytes,
    /// `copyLimit(snap:)`: at most `maxCopy`). False = ring full, nothing copied. `port` must be below 0x7FFF.
    @inlinable @inline(__always)
    public func push(_ batch: FrameBatch, _ i: Int, port: Int, direction: UInt8, timestampNs: UInt64, limit: Int,
                     cursor c: inout Cursor) -> Bool {
        let length = Int(batch.meta[i].length)
        let kept = length < limit ? length : limit
        let need = CaptureRing.recordBytes(kept)
        let h = c.head
        let pos = h & mask
        let room = byteCount &- pos
        let pad = need > room ? room : 0
        let end = h &+ pad &+ need
        if end > c.limit {
            c.limit = tail.load(ordering: .acquiring) &+ byteCount
            if end > c.limit { return false }
        }
        var rec = memory + pos
        if pad != 0 {
            rec.storeBytes(of: CaptureRing.wrapMarker, as: UInt64.self)
            rec = memory
        }
        let tag = UInt64(truncatingIfNeeded: port) | UInt64(direction) << 15
        rec.storeBytes(of: UInt64(truncatingIfNeeded: length) | UInt64(truncatingIfNeeded: kept) << 32 | tag << 48,
                       as: UInt64.self)
        rec.storeBytes(of: timestampNs, toByteOffset: 8, as: UInt64.self)
        (rec + CaptureRing.headerBytes).copyMemory(from: batch.data(i), byteCount: kept)
        c.head = end
        return true
    }

    /// Producer: one copy, published at once (tests, single frames).
    @inlinable
    public func push(_ batch: FrameBatch, _ i: Int, port: Int, direction: UInt8, timestampNs: UInt64, limit: Int? = nil) -> Bool {
        var c = beginPush()
        let ok = push(batch, i, port: port, direction: direction, timestampNs: timestampNs, limit: limit ?? maxCopy, cursor: &c)
        endPush(c)
        return ok
    }

    /// Consumer: hands up to `max` records to `body`, oldest first; returns how many. Space is given back
    /// to the producer every 256 records and at the end.
    public func drain(max: Int = .max, _ body: (Record) -> Void) -> Int {
        var k = 0
        while k < max {
            let (n, end) = peek(max: Swift.min(256, max - k), maxBytes: .max, body)
            if n == 0 { break }
            release(to: end)
            k += n
        }
        return k
    }

    /// Consumer: hands the records after the consumer's position to `body`, oldest first, without giving
    /// their space back: they stay valid (and the consumer may rewrite them in place) until `release(to: end)`.
    /// Stops after `max` records or once `maxBytes` of ring have been walked. Returns the records handed out
    /// and the position after the last one.
    public func peek(max: Int = .max, maxBytes: Int, _ body: (Record) -> Void) -> (count: Int, end: Int) {
        var t = tail.load(ordering: .relaxed)
        let h = head.load(ordering: .acquiring)
        let stop = maxBytes >= h &- t ? h : t &+ maxBytes
        var k = 0
        while t != h && k < max && (t &- stop) < 0 {
            let pos = t & mask
            let rec = memory + pos
            let w0 = UnsafeRawPointer(rec).loadUnaligned(as: UInt64.self)
            if w0 >> 48 == 0xFFFF { t &+= byteCount &- pos; continue }
            let kept = Int((w0 >> 32) & 0xFFFF)
            let tag = Int(w0 >> 48)
            let size = CaptureRing.recordBytes(kept)
            t &+= size
            k += 1
            // The headers form a dependent chain of loads, and a chunk's records have usually left this core's
            // caches by the time the writer walks them (the writer sleeps while ~256 KiB gather): prefetch the
            // header 4 records ahead, guessing that they are as long as this one (a stream of equal frames;
            // a wrong guess costs nothing). perf: ~115 ns per 1518-byte record without it.
            vsw_prefetch_write(memory + ((t &+ 3 &* size) & mask))
            body(Record(port: tag & 0x7FFF, direction: UInt8(tag >> 15),
                        timestampNs: UnsafeRawPointer(rec).loadUnaligned(fromByteOffset: 8, as: UInt64.self),
                        originalLength: Int(w0 & 0xFFFF_FFFF),
                        bytes: UnsafeRawBufferPointer(start: rec + CaptureRing.headerBytes, count: kept), header: rec))
        }
        return (k, t)
    }

    /// Consumer: the position `peek` starts from (everything before it has been released).
    public var consumerPosition: Int { tail.load(ordering: .relaxed) }

    /// Consumer: gives the ring space up to `end` (from `peek`) back to the producer.
    public func release(to end: Int) { tail.store(end, ordering: .releasing) }

    /// Records waiting (consumer thread, or while the producer is idle: it walks the records).
    public var pending: Int {
        var t = tail.load(ordering: .relaxed)
        let h = head.load(ordering: .acquiring)
        var k = 0
        while t != h {
            let pos = t & mask
            let w0 = UnsafeRawPointer(memory + pos).loadUnaligned(as: UInt64.self)
            if w0 >> 48 == 0xFFFF { t &+= byteCount &- pos; continue }
            t &+= CaptureRing.recordBytes(Int((w0 >> 32) & 0xFFFF))
            k += 1
        }
        return k
    }

    /// Bytes of the ring in use (any thread; approximate while the producer runs).
    public var pendingBytes: Int { head.load(ordering: .relaxed) &- tail.load(ordering: .relaxed) }
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
            var copied: UInt64 = 0
            let limit = capture.copyLimit(snap: view.pointee.ports[port].captureSnap)
            var cursor = capture.beginPush()
            var i = 0
            while i < n {
                if capture.push(batch, i, port: port, direction: CaptureRing.ingress, timestampNs: nowNs, limit: limit,
                                cursor: &cursor) { copied &+= 1 }
                i &+= 1
            }
            capture.endPush(cursor)
            countCopies(port: port, copied: copied, of: n)
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
            var copied: UInt64 = 0
            let limit = capture.copyLimit(snap: view.pointee.ports[port].captureSnap)
            var cursor = capture.beginPush()
            var k = 0
            while k < count {
                if capture.push(batch, Int(list[k]), port: port, direction: CaptureRing.egress, timestampNs: nowNs,
                                limit: limit, cursor: &cursor) { copied &+= 1 }
                k &+= 1
            }
            capture.endPush(cursor)
            countCopies(port: port, copied: copied, of: count)
        }
        if taps & PortEntry.mirrorSource != 0 {
            mirror(batch, list: list, count: count, from: port, view: view, backend: &backend)
        }
    }

    /// Counts one batch's capture copies: taken, and refused because the ring was full.
    @inlinable @inline(__always)
    func countCopies(port: Int, copied: UInt64, of n: Int) {
        if copied > 0 { counters.add(port: port, PortCounter.captureCopies, copied) }
        let refused = UInt64(truncatingIfNeeded: n) &- copied
        if refused > 0 { counters.add(port: port, PortCounter.captureDrops, refused) }
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
                if batch.needsSoftwareOffload(i, portOffload: de.pointee.offload, portUSO: de.pointee.uso) {
                    // Offloaded frames to a destination without offloads: segments / a completed checksum.
                    if batch.isGSO(i) { sent &+= sendSegments(batch, i, port: dst, entry: de, backend: &backend).sent; continue }
                    batch.completeChecksum(i)
                }
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
