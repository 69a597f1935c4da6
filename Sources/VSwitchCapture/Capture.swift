// VSwitchCapture: capture sessions, BPF filters and pcap output (issue 4; design.md point 10).
//
// Design
// - The forwarding threads copy frames of tapped ports into their own CaptureRing (VSwitchCore);
//   this module's one writer thread drains every ring, matches each record against the active
//   sessions (port + direction), evaluates the session's BPF filter (compiled with pcap_compile
//   on a dead handle, run with pcap_offline_filter), truncates to the session's snaplen and
//   writes it to the session's output: a nanosecond-precision pcap stream on a file descriptor
//   the client handed over (a file, or a pipe into tshark).
// - No copy in userspace: a ring record's 16-byte header has the size of a pcap record header, so
//   the writer rewrites it in place (seconds, nanoseconds, caplen, length) and writes runs of
//   records straight from the ring with writev (adjacent records are contiguous: one iovec per
//   run; a record a session truncates is a header from a side buffer + the ring's first caplen
//   bytes). The ring is walked in chunks of 64 KiB: every session writes its part of a chunk
//   (one writev, up to IOV_MAX iovecs), then the chunk's space goes back to the forwarding thread
//   (small chunks give space back sooner; 1 MiB chunks let a start-up burst fill the ring). Bytes cross memory twice per captured frame: forwarding thread → ring,
//   ring → the output (the kernel's copy into the page cache or pipe).
// - Wake-ups: the writer sleeps between passes for as long as ~256 KiB of records take to gather at
//   the rate seen (0.2–2 ms); it does not sleep while more than that is waiting. The records have
//   mostly left the core's caches by then: the walk over their headers prefetches ahead (CaptureRing.peek).
// - A session ends on its frame count, its duration, or when its control connection closes
//   (the client went away); the writer then writes one summary line on that connection
//   (captured, filtered out, dropped because a ring was full) and closes everything. The
//   daemon polls `activeTaps()` / `activeSnaplens()` to set the ports' taps and copy lengths.
// - Outputs are non-blocking: a reader that does not keep up (a pipe into a slow or stopped tshark)
//   never stalls this thread, which serves every session. What its output cannot take is kept in the
//   session's own buffer (4 MiB, whole records) and written first on the next pass; when that is full
//   the session's records are dropped whole and counted (`droppedSlowOutput`, "dropped_slow_output" in
//   the summary). A full ring drops copies (PortCounter.captureDrops), never frames. A regular file
//   blocks as files do (the page cache). A session ends when its port is deleted (`portRemoved`).
// - Measured (bench/README.md "Capture cost"): perf of a 1518-byte capture at 100 kpps showed the
//   earlier writer (records copied into a 1 MiB buffer, fwrite per MiB, 1 ms sleeps) spending, per
//   frame, ~80 ns on that copy, ~75 ns on wake-ups and ~590 ns in the kernel's write into tmpfs
//   (page allocation ~350 ns, the copy ~190 ns): the last is the price of storing the bytes at all.
//
// Threading: `add`, `stop`, `activeTaps` from the control thread; `pump` on the writer thread
// (or a test's thread when the writer is not started). The session list is guarded by one lock that
// the forwarding threads never touch and that the writer holds only to read the list and to retire
// ended sessions (never while writing: a stalled output must not stall the control thread).

import CLibPcap
import Foundation
import VSwitchCore
#if canImport(Glibc)
import Glibc
#endif

public struct CaptureError: Error, CustomStringConvertible {
    public let description: String
    public init(_ d: String) { description = d }
}

/// A compiled BPF program for Ethernet frames.
public final class CaptureFilter: @unchecked Sendable {
    public let expression: String
    var program = bpf_program()

    /// Compiles `expression`; an invalid one throws libpcap's own message.
    public init(_ expression: String, snaplen: Int = CaptureRing.maxSnaplen) throws {
        self.expression = expression
        guard let dead = pcap_open_dead(DLT_EN10MB, Int32(snaplen)) else { throw CaptureError("pcap_open_dead failed") }
        defer { pcap_close(dead) }
        if pcap_compile(dead, &program, expression, 1, PCAP_NETMASK_UNKNOWN) != 0 {
            throw CaptureError("invalid filter expression \"\(expression)\": \(String(cString: pcap_geterr(dead)))")
        }
    }
    deinit { pcap_freecode(&program) }

    public func matches(_ bytes: UnsafeRawBufferPointer, originalLength: Int) -> Bool {
        var h = pcap_pkthdr()
        h.caplen = bpf_u_int32(bytes.count)
        h.len = bpf_u_int32(originalLength)
        guard let base = bytes.baseAddress else { return false }
        return vsw_pcap_offline_filter(&program, &h, base.assumingMemoryBound(to: UInt8.self)) != 0
    }
}

public enum CaptureDirection: String, Sendable, CaseIterable {
    case `in`, out, both
    public var taps: UInt8 {
        switch self { case .in: PortEntry.captureIn; case .out: PortEntry.captureOut; case .both: PortEntry.captureIn | PortEntry.captureOut }
    }
}

/// One running capture.
public final class CaptureSession: @unchecked Sendable {
    public let id: Int
    /// Port index → taps wanted (PortEntry.captureIn / captureOut).
    public let ports: [Int: UInt8]
    public let filter: CaptureFilter?
    public let count: Int?
    public let durationNs: UInt64?
    public let snaplen: Int
    /// Taps wanted per port index (`ports` as a table: the writer's per-record lookup).
    var tapTable: [UInt8]   // written by the writer thread only (a deleted port's taps cleared, under the lock)
    /// The output (a file or a pipe), owned by the session; -1 once closed.
    var output: Int32
    /// The records of the current chunk as iovecs: runs of whole records straight from the ring (pcap header
    /// rewritten in place by the writer; adjacent records merge into one iovec), or, for a record this
    /// session truncates, a header in `headers` and the first `caplen` bytes in the ring. Written with writev
    /// (IOV_MAX iovecs at most per call) at the end of each chunk, before the ring space is given back.
    static let maxIov = 1024
    let iov: UnsafeMutablePointer<iovec>
    var iovCount = 0
    let headers: UnsafeMutableRawPointer
    var headerCount = 0
    var outputFailed = false
    /// errno of the write that failed (the summary says it), 0 if none.
    public private(set) var outputErrno: Int32 = 0
    /// Records queued by `offer` since the last `writeOut`.
    var queuedRecords = 0
    /// What the non-blocking output has not taken yet: whole records (and the file header), written before anything
    /// newer. Allocated when first needed.
    static let pendingCapacity = 4 << 20
    var pending: UnsafeMutableRawPointer?
    var pendingStart = 0, pendingEnd = 0
    /// Records dropped because the output could not take them and `pending` was full.
    public private(set) var droppedSlowOutput = 0
    /// Set (under the writer's lock) by the control thread: end at the writer's next pass, for this reason.
    var requestedEnd: String?
    /// Port indices deleted while the session runs (under the writer's lock): their records are no longer taken; the
    /// session ends when none of its ports is left (a mirror session's capture goes on with its other sources).
    var removedPorts: Set<Int> = []
    /// The output's file status flags as handed over (its open file description is the client's too, e.g. a
    /// terminal or a shell's pipe): restored before it is closed.
    var outputFlags: Int32 = 0
    /// The control connection: watched for the client going away; gets the summary line.
    public var controlFD: Int32 = -1
    public private(set) var captured = 0
    public private(set) var filteredOut = 0
    /// Output system calls (writev) and bytes written so far, the file header included.
    public private(set) var writeCalls = 0
    public private(set) var bytesWritten = 0
    var startNs: UInt64 = 0
    var dropsAtStart: [Int: UInt64] = [:]
    public private(set) var endReason: String?
    public private(set) var summary: [String: Any] = [:]

    /// `output` (a file or a pipe) is owned by the session from here on (closed at the end). The pcap file
    /// header (nanosecond timestamps, Ethernet) is written at once.
    public init(id: Int, ports: [Int: UInt8], filter: CaptureFilter?, count: Int?, duration: Double?, snaplen: Int,
                output: Int32) throws {
        self.id = id; self.ports = ports; self.filter = filter; self.count = count
        self.durationNs = duration.map { UInt64(max(0, $0) * 1e9) }
        self.snaplen = snaplen
        var table = [UInt8](repeating: 0, count: (ports.keys.max() ?? 0) + 1)
        for (p, t) in ports where p >= 0 { table[p] = t }
        tapTable = table
        self.output = output
        // Non-blocking: a reader that stops reading must not stall the writer thread (every session's) or the
        // control thread writing this header (a regular file is unaffected: it blocks as files do).
        outputFlags = fcntl(output, F_GETFL)
        _ = fcntl(output, F_SETFL, outputFlags | O_NONBLOCK)   // given back at the end: the description is shared
        iov = .allocate(capacity: CaptureSession.maxIov)
        headers = .allocate(byteCount: 16 * CaptureSession.maxIov, alignment: 16)
        // The pcap file header as libpcap writes it (host byte order): nanosecond magic, version 2.4,
        // thiszone 0, sigfigs 0, snaplen, LINKTYPE_ETHERNET.
        var h = [UInt8](repeating: 0, count: 24)
        h.withUnsafeMutableBytes { b in
            b.storeBytes(of: UInt32(0xA1B2_3C4D), toByteOffset: 0, as: UInt32.self)
            b.storeBytes(of: UInt16(2), toByteOffset: 4, as: UInt16.self)
            b.storeBytes(of: UInt16(4), toByteOffset: 6, as: UInt16.self)
            b.storeBytes(of: UInt32(snaplen), toByteOffset: 16, as: UInt32.self)
            b.storeBytes(of: UInt32(DLT_EN10MB), toByteOffset: 20, as: UInt32.self)
        }
        let ok = h.withUnsafeBytes { b in
            iov[0] = iovec(iov_base: UnsafeMutableRawPointer(mutating: b.baseAddress!), iov_len: 24)
            iovCount = 1
            writeOut()
            return !outputFailed
        }
        if !ok {
            let e = errno
            close(output); iov.deallocate(); headers.deallocate()
            throw CaptureError("cannot write the pcap header: \(String(cString: strerror(e)))")
        }
    }

    deinit {
        iov.deallocate()
        headers.deallocate()
        pending?.deallocate()
        if output >= 0 { close(output) }
        if controlFD >= 0 { close(controlFD) }
    }

    /// Writer thread: one record of a tapped port, its header already rewritten into a pcap record header
    /// (seconds, nanoseconds, caplen = the bytes in the ring, original length). Only queued: `writeOut`
    /// writes the chunk.
    @inline(__always)
    func offer(_ r: CaptureRing.Record) {
        guard endReason == nil, !outputFailed else { return }
        let kept = r.bytes.count
        let caplen = kept < snaplen ? kept : snaplen
        // The filter sees every byte the ring kept (a filtered session has its ports copied whole, `activeSnaplens`),
        // as tcpdump filters the packet before it cuts it to the snaplen.
        if let filter, !filter.matches(r.bytes, originalLength: r.originalLength) {
            filteredOut += 1; return
        }
        if caplen == kept {
            append(r.header, CaptureRing.headerBytes + kept)
        } else {
            if iovCount + 2 > CaptureSession.maxIov || headerCount == CaptureSession.maxIov { writeOut() }
            let h = headers + 16 * headerCount
            headerCount += 1
            h.storeBytes(of: r.header.loadUnaligned(as: UInt64.self), as: UInt64.self)   // seconds, nanoseconds
            h.storeBytes(of: UInt32(truncatingIfNeeded: caplen), toByteOffset: 8, as: UInt32.self)
            h.storeBytes(of: UInt32(truncatingIfNeeded: r.originalLength), toByteOffset: 12, as: UInt32.self)
            append(h, 16)
            append(UnsafeMutableRawPointer(mutating: r.bytes.baseAddress!), caplen)
        }
        captured += 1
        queuedRecords += 1
        if let count, captured >= count { endReason = "count" }
    }

    @inline(__always)
    func append(_ base: UnsafeMutableRawPointer, _ length: Int) {
        if iovCount > 0 {
            let last = iov + (iovCount - 1)
            if last.pointee.iov_base.unsafelyUnwrapped + last.pointee.iov_len == base {   // contiguous: one run
                last.pointee.iov_len += length
                return
            }
            if iovCount == CaptureSession.maxIov { writeOut() }
        }
        iov[iovCount] = iovec(iov_base: base, iov_len: length)
        iovCount += 1
    }

    /// Writes the queued records (writev, IOV_MAX iovecs per call; partial writes resumed) without ever blocking on
    /// a pipe or socket: what was left over from before goes first; what the output cannot take now is kept in
    /// `pending` (whole records), or, when that is full, dropped whole and counted. A write error ends the session
    /// (reason "output").
    func writeOut() {
        defer { iovCount = 0; headerCount = 0; queuedRecords = 0 }
        guard output >= 0, !outputFailed else { return }
        if pendingEnd > pendingStart { _ = flushPending() }
        guard iovCount > 0, !outputFailed else { return }
        if pendingEnd > pendingStart {
            // Still behind: these records wait behind the older ones, whole, or are dropped whole.
            let bytes = (0..<iovCount).reduce(0) { $0 + iov[$1].iov_len }
            if keep(from: 0, bytes: bytes) == false { drop() }
            return
        }
        var first = 0
        while first < iovCount {
            let n = writev(output, iov + first, Int32(iovCount - first))
            if n < 0 && errno == EINTR { continue }
            if n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) {
                // The output is full: keep the rest (it ends on a record boundary: the queue holds whole records).
                let bytes = (first..<iovCount).reduce(0) { $0 + iov[$1].iov_len }
                if keep(from: first, bytes: bytes) == false {
                    // Only a queue larger than the buffer gets here (never with 64 KiB chunks); a record already
                    // begun on the output cannot be taken back, so the session ends rather than corrupt the file.
                    fail(EAGAIN)
                }
                return
            }
            if n <= 0 { fail(errno); return }
            writeCalls += 1
            bytesWritten += n
            var left = n
            while left > 0 {
                let v = iov + first
                if left >= v.pointee.iov_len { left -= v.pointee.iov_len; first += 1 }
                else { v.pointee.iov_base = v.pointee.iov_base.unsafelyUnwrapped + left; v.pointee.iov_len -= left; left = 0 }
            }
        }
    }

    /// The output failed with `code`: the session ends; records queued and not written are not counted captured.
    func fail(_ code: Int32) {
        outputFailed = true
        outputErrno = code
        captured -= queuedRecords
        queuedRecords = 0
    }

    /// The queued records are dropped whole: the output is too slow and `pending` is full.
    func drop() {
        droppedSlowOutput += queuedRecords
        captured -= queuedRecords
        queuedRecords = 0
    }

    /// Copies iovecs `first...` (`bytes` in all) to the end of `pending`; false (nothing copied) if they do not fit.
    func keep(from first: Int, bytes: Int) -> Bool {
        if pending == nil { pending = .allocate(byteCount: CaptureSession.pendingCapacity, alignment: 16) }
        guard let buffer = pending else { return false }
        if pendingStart == pendingEnd { pendingStart = 0; pendingEnd = 0 }
        if pendingEnd + bytes > CaptureSession.pendingCapacity && pendingStart > 0 {
            memmove(buffer, buffer + pendingStart, pendingEnd - pendingStart)
            pendingEnd -= pendingStart; pendingStart = 0
        }
        guard pendingEnd + bytes <= CaptureSession.pendingCapacity else { return false }
        for k in first..<iovCount {
            memcpy(buffer + pendingEnd, iov[k].iov_base, iov[k].iov_len)
            pendingEnd += iov[k].iov_len
        }
        return true
    }

    /// Writes what `pending` holds, as far as the output takes it now. True when it is empty.
    func flushPending() -> Bool {
        guard let buffer = pending else { return true }
        while pendingEnd > pendingStart {
            let n = write(output, buffer + pendingStart, pendingEnd - pendingStart)
            if n < 0 && errno == EINTR { continue }
            if n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) { return false }
            if n <= 0 { fail(errno); return false }
            writeCalls += 1
            bytesWritten += n
            pendingStart += n
        }
        pendingStart = 0; pendingEnd = 0
        return true
    }

    /// `drainUntil`: how long (monotonic ns) what the output has not taken yet may still be waited for. The writer
    /// ends sessions with a short grace (it serves every other session meanwhile); a daemon stop gives all one second.
    func finish(_ reason: String, drops: UInt64, drainUntil: UInt64 = monotonicNanoseconds() &+ 20_000_000) {
        if endReason == nil { endReason = reason }
        writeOut()
        // What the output has not taken yet: until the deadline (then the rest is lost, and said so).
        let deadline = drainUntil
        while output >= 0 && !outputFailed && pendingEnd > pendingStart && monotonicNanoseconds() < deadline {
            if flushPending() { break }
            var p = pollfd(fd: output, events: Int16(POLLOUT), revents: 0)
            _ = poll(&p, 1, 50)
        }
        let unwritten = pendingEnd - pendingStart
        if output >= 0 { _ = fcntl(output, F_SETFL, outputFlags); close(output); output = -1 }
        summary = ["capture": id, "reason": endReason ?? reason, "captured": captured, "filtered_out": filteredOut,
                   "dropped": drops, "dropped_slow_output": droppedSlowOutput]
        if outputErrno != 0 { summary["output_error"] = String(cString: strerror(outputErrno)) }
        if unwritten > 0 { summary["unwritten_bytes"] = unwritten }
        if controlFD >= 0 {
            let line = (try? JSONSerialization.data(withJSONObject: ["ok": true, "result": ["capture-end": summary]],
                                                    options: [.sortedKeys])) ?? Data()
            var out = [UInt8](line); out.append(0x0A)
            _ = fcntl(controlFD, F_SETFL, fcntl(controlFD, F_GETFL) & ~O_NONBLOCK)
            var off = 0
            while off < out.count {
                let n = out.withUnsafeBytes { send(controlFD, $0.baseAddress! + off, out.count - off, Int32(MSG_NOSIGNAL)) }
                if n <= 0 { break }
                off += n
            }
            close(controlFD)
            controlFD = -1
        }
    }
}

/// Drains the forwarding threads' rings into the sessions.
public final class CaptureWriter: @unchecked Sendable {
    let rings: [CaptureRing]
    /// Capture copies dropped so far on a port (summed over threads; PortCounter.captureDrops).
    let dropsOf: (Int) -> UInt64
    /// Guards the session list; its condition wakes an idle writer when a session is added or on stop.
    let lock = NSCondition()
    var sessions: [CaptureSession] = []
    var finished: [[String: Any]] = []
    var nextID = 1
    var running = false
    var thread: pthread_t?
    /// CLOCK_REALTIME - CLOCK_MONOTONIC (the forwarding threads stamp frames with the monotonic clock).
    public var realtimeOffset: UInt64
    public var clock: () -> UInt64 = { monotonicNanoseconds() }

    public init(rings: [CaptureRing], dropsOf: @escaping (Int) -> UInt64) {
        self.rings = rings
        self.dropsOf = dropsOf
        var rt = timespec(), mono = timespec()
        clock_gettime(CLOCK_REALTIME, &rt)
        clock_gettime(CLOCK_MONOTONIC, &mono)
        realtimeOffset = (UInt64(rt.tv_sec) * 1_000_000_000 + UInt64(rt.tv_nsec)) &- (UInt64(mono.tv_sec) * 1_000_000_000 + UInt64(mono.tv_nsec))
        signal(SIGPIPE, SIG_IGN)   // a reader (tshark) that goes away is an EPIPE, not the daemon's death
    }

    public func newID() -> Int { lock.lock(); defer { lock.unlock() }; nextID += 1; return nextID - 1 }

    public func add(_ s: CaptureSession) {
        lock.lock(); defer { lock.unlock() }
        lock.broadcast()
        s.startNs = clock()
        for p in s.ports.keys { s.dropsAtStart[p] = dropsOf(p) }
        sessions.append(s)
    }

    /// Union of the taps every running session wants, per port (a session asked to end wants none).
    public func activeTaps() -> [Int: UInt8] {
        lock.lock(); defer { lock.unlock() }
        var out: [Int: UInt8] = [:]
        for s in sessions where s.requestedEnd == nil {
            for (p, t) in s.ports where !s.removedPorts.contains(p) { out[p, default: 0] |= t }
        }
        return out
    }

    /// Port index `port` is gone (its index may be given to a new port): no session takes its records any more
    /// (from the writer's next pass; the daemon untaps it at once); a session left with no port ends ("port-deleted").
    public func portRemoved(_ port: Int) {
        lock.lock(); defer { lock.unlock() }
        for s in sessions where s.ports[port] != nil && s.requestedEnd == nil {
            s.removedPorts.insert(port)
            if s.ports.keys.allSatisfy({ s.removedPorts.contains($0) }) { s.requestedEnd = "port-deleted" }
        }
        lock.broadcast()
    }

    /// The largest snaplen of the running sessions, per port: the forwarding threads copy no more than that.
    public func activeSnaplens() -> [Int: Int] {
        lock.lock(); defer { lock.unlock() }
        var out: [Int: Int] = [:]
        // A session with a filter needs whole copies (its filter may look past its snaplen); it cuts them when writing.
        for s in sessions {
            for p in s.ports.keys where !s.removedPorts.contains(p) {
                out[p] = max(out[p] ?? 0, s.filter != nil ? CaptureRing.maxSnaplen : s.snaplen)
            }
        }
        return out
    }

    /// Summaries of sessions that ended since the last call.
    public func takeFinished() -> [[String: Any]] {
        lock.lock(); defer { lock.unlock() }
        let f = finished; finished = []
        return f
    }

    /// Housekeeping (duration, client gone, output error: syscalls) runs at most every `checkIntervalNs`
    /// while records keep coming, and on every pass that drains nothing.
    public var checkIntervalNs: UInt64 = 20_000_000
    var lastCheckNs: UInt64 = 0
    /// Ring bytes walked per chunk: a chunk's records are written (one writev per session) before its space
    /// is given back to the forwarding thread, so the rest of the ring stays free meanwhile.
    public var chunkBytes = 64 << 10
    /// Ring bytes drained by the last `pump` (the writer's sleep is sized from it).
    public private(set) var lastPumpBytes = 0

    /// One pass: drain every ring, end completed sessions. Returns the records drained.
    /// Per chunk of a ring, each record's header is rewritten in place into its pcap record header, each
    /// session queues the records it wants (iovecs into the ring), then writes them with writev, and only then
    /// is the chunk's ring space given back: no copy in userspace, one system call per session per chunk.
    /// The lock is held only to read the session list and to retire ended sessions: the writes (which a
    /// slow disk or pipe can stall) run outside it, so the control thread (`add`, `activeTaps`,
    /// `takeFinished`) never waits for an output. Only this thread touches a running session's output.
    @discardableResult
    public func pump() -> Int {
        lock.lock()
        let sessions = self.sessions   // a reference to the array's storage: no copy, no allocation
        var requested: [ObjectIdentifier: String]?
        for s in sessions { if let r = s.requestedEnd { requested = (requested ?? [:]).merging([ObjectIdentifier(s): r]) { a, _ in a } } }
        lock.unlock()
        var total = 0, bytes = 0
        let offset = realtimeOffset
        for ring in rings {
            var walked = 0
            while walked < ring.byteCount {   // at most one ring's worth per pass: the other rings and housekeeping get their turn
                let start = ring.consumerPosition
                let (n, end) = ring.peek(maxBytes: chunkBytes) { r in
                    // (a session asked to end still gets the records already in the ring: they were taken while it ran)
                    let t = r.timestampNs &+ offset
                    let h = r.header
                    h.storeBytes(of: UInt32(truncatingIfNeeded: t / 1_000_000_000), toByteOffset: 0, as: UInt32.self)
                    h.storeBytes(of: UInt32(truncatingIfNeeded: t % 1_000_000_000), toByteOffset: 4, as: UInt32.self)
                    h.storeBytes(of: UInt32(truncatingIfNeeded: r.bytes.count), toByteOffset: 8, as: UInt32.self)
                    h.storeBytes(of: UInt32(truncatingIfNeeded: r.originalLength), toByteOffset: 12, as: UInt32.self)
                    let bit = r.direction == CaptureRing.ingress ? PortEntry.captureIn : PortEntry.captureOut
                    for s in sessions where r.port < s.tapTable.count && s.tapTable[r.port] & bit != 0 { s.offer(r) }
                }
                if end == start { break }
                for s in sessions { s.writeOut() }
                ring.release(to: end)
                total += n
                walked += end &- start
            }
            bytes += walked
        }
        lastPumpBytes = bytes
        // A deleted port's records already in the rings were taken above (the daemon untapped it when it deleted it);
        // from the next pass the sessions that tapped it take none for its index, which a new port may get.
        lock.lock()
        for s in sessions where !s.removedPorts.isEmpty {   // the writer's own table (in place: no copy)
            for p in s.removedPorts where p < s.tapTable.count { s.tapTable[p] = 0 }
        }
        lock.unlock()
        let now = clock()
        let check = total == 0 || now &- lastCheckNs >= checkIntervalNs
        if check { lastCheckNs = now }
        var ended = false
        for s in sessions {
            var reason = s.endReason
            if reason == nil, let r = requested?[ObjectIdentifier(s)] { reason = r }
            if check {
                if reason == nil, let d = s.durationNs, now &- s.startNs >= d { reason = "duration" }
                if reason == nil, s.controlFD >= 0 { if clientGone(s.controlFD) { reason = "client" } }
            }
            if reason == nil, s.outputFailed { reason = "output" }
            if let reason { end(s, reason); ended = true }
        }
        if ended {
            lock.lock()
            finished += sessions.filter { $0.endReason != nil }.map(\.summary)
            self.sessions.removeAll { $0.endReason != nil }
            lock.unlock()
        }
        return total
    }

    func end(_ s: CaptureSession, _ reason: String, drainUntil: UInt64 = monotonicNanoseconds() &+ 20_000_000) {
        var drops: UInt64 = 0
        for p in s.ports.keys { drops &+= dropsOf(p) &- (s.dropsAtStart[p] ?? 0) }
        s.finish(reason, drops: drops, drainUntil: drainUntil)
    }

    func clientGone(_ fd: Int32) -> Bool {
        var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        guard poll(&p, 1, 0) > 0 else { return false }
        if p.revents & Int16(POLLHUP | POLLERR) != 0 { return true }
        var b = [UInt8](repeating: 0, count: 256)
        let n = recv(fd, &b, b.count, Int32(MSG_DONTWAIT))
        return n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)
    }

    /// Stops every session (reason "stopped") — daemon shutdown.
    public func stopAll() {
        lock.lock(); defer { lock.unlock() }
        let deadline = monotonicNanoseconds() &+ 1_000_000_000   // one second for every session's output together
        for s in sessions { end(s, "stopped", drainUntil: deadline); finished.append(s.summary) }
        sessions = []
    }

    /// CPU time of the writer thread so far (ns; read after `stop`).
    public private(set) var threadCPUNs: UInt64 = 0

    /// The writer sleeps between passes until about `targetBytes` of records have gathered, at the rate seen so
    /// far (the larger of the last interval's and a moving average), between `minSleepNs` and `maxSleepNs`;
    /// with `targetBytes` or more already waiting it does not sleep. Fewer wake-ups than a fixed 1 ms (each
    /// costs ~8 µs of CPU here, on the core it may share with a forwarding thread), writes of 64 KiB and more,
    /// and a 4 MiB ring keeps room for ~2 ms of 1518-byte frames at 1 Mpps (it is the writer's scheduling
    /// latency on a busy shared core, not the sleep, that fills it: measured with 256 KiB / 4 ms it dropped
    /// more copies at 1518 B flat out than the previous writer's fixed 1 ms in some runs).
    public var targetBytes = 256 << 10
    public var minSleepNs: UInt64 = 200_000, maxSleepNs: UInt64 = 2_000_000

    /// Ring bytes waiting, all rings.
    var pendingBytes: Int { rings.reduce(0) { $0 + $1.pendingBytes } }

    public func start() {
        running = true
        thread = spawnThread { [self] in
            nameCurrentThread("vsw-capture")
            defer {
                var ts = timespec()
                clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts)
                self.threadCPUNs = UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
            }
            // With no session at all it waits on the condition instead (woken by `add` or `stop`; at least every
            // 100 ms, to drain records still in flight from a session that just ended): an idle switch's
            // writer does not wake up periodically, which would count in the CPU per forwarded frame.
            var last = self.clock()
            var average = 0.0   // bytes per ns
            while self.isRunning {
                let drained = self.pump()
                let now = self.clock()
                let interval = Double(max(now &- last, 1))
                last = now
                let rate = Double(self.lastPumpBytes) / interval
                average = 0.75 * average + 0.25 * rate
                let waiting = self.pendingBytes
                if waiting >= self.targetBytes { continue }   // busy: no sleep
                self.lock.lock()
                if self.running && self.sessions.isEmpty && drained == 0 {
                    _ = self.lock.wait(until: Date(timeIntervalSinceNow: 0.1))
                    self.lock.unlock()
                    last = self.clock()
                    average = 0
                } else {
                    self.lock.unlock()
                    let r = max(rate, average)
                    let want = r > 0 ? Double(self.targetBytes - waiting) / r : Double(self.maxSleepNs)
                    let ns = min(max(UInt64(want), self.minSleepNs), self.maxSleepNs)
                    var ts = timespec(tv_sec: 0, tv_nsec: Int(ns))
                    nanosleep(&ts, nil)
                }
            }
        }
    }

    var isRunning: Bool { lock.lock(); defer { lock.unlock() }; return running }

    public func stop() {
        lock.lock(); running = false; lock.broadcast(); lock.unlock()
        if let t = thread { pthread_join(t, nil); thread = nil }
        pump()
        stopAll()
    }
}
