// ReplayPort: a pcap-replay port (issue 4 item 5) — a repeatable traffic source for tests and the
// benchmark. The pcap file is read once, on the control thread, into one contiguous buffer; the
// port's owning forwarding thread copies frames from it into its batch, at `rate` frames/s (0: as
// fast as the thread polls, one batch per pass), once or looping. Frames the switch sends to the
// port are counted (the engine's tx counters) and discarded, or appended to a pcap file when one is
// given (pcap_dump under the FILE's lock: several threads may send to the port).
//
// Threading: `open`/`close` on the control thread (close after a snapshot without the port is
// published); `ReplayState` is used by forwarding threads through the PortRegistry.

import CLibPcap
import CVSwitchShim
import Glibc
import VSwitchPacket

public struct ReplayState {
    public var data: UnsafeMutableRawPointer
    public var offsets: UnsafeMutablePointer<Int>   // count + 1 entries
    public var count: Int
    public var loop: Bool
    public var rate: UInt64
    public var cursor: Int = 0
    public var startNs: UInt64 = 0
    public var emitted: UInt64 = 0
    public var dumper: OpaquePointer?

    @inline(__always) var finished: Bool { count == 0 || (!loop && cursor >= count) }

    /// Frames that may be emitted at `now` (0 when finished or not yet due).
    @inline(__always)
    public mutating func due(now: UInt64, max: Int) -> Int {
        if finished { return 0 }
        if rate == 0 { return max }
        if startNs == 0 { startNs = now; emitted = 0 }
        let allowed = (now &- startNs) / 1000 &* rate / 1_000_000 &+ 1
        if allowed <= emitted { return 0 }
        let d = allowed &- emitted
        // Behind by up to 10 ms of frames (at least 4 batches): caught up, a batch per pass, so the rate holds over
        // the thread's ordinary scheduling gaps (a 4-batch limit dropped 256 µs of backlog at 1 Mpps: 0.52–0.82 of
        // the rate was delivered). A longer stall starts the schedule again rather than storm.
        if d > Swift.max(UInt64(max) &* 4, rate / 100) { startNs = now; emitted = 0; return 1 }
        return Int(min(d, UInt64(max)))
    }

    /// Milliseconds until the next frame is due (nil: never, i.e. finished).
    public func msUntilDue(now: UInt64) -> Int32? {
        if finished { return nil }
        if rate == 0 || startNs == 0 { return 0 }
        let nextNs = startNs &+ (emitted &* 1_000_000_000) / rate
        return nextNs <= now ? 0 : Int32(min(1000, (nextNs &- now) / 1_000_000))
    }

    /// Owner thread: copies the due frames into `batch`.
    @inline(__always)
    public mutating func receive(into batch: inout FrameBatch, now: UInt64) -> Int {
        let want = due(now: now, max: batch.capacity)
        var n = 0
        while n < want {
            if cursor >= count {
                if !loop { break }
                cursor = 0
            }
            let off = offsets[cursor], len = offsets[cursor &+ 1] &- off
            cursor &+= 1
            emitted &+= 1
            if len > batch.dataRoom || len < 14 { continue }
            batch.receiveBuffer(n).copyMemory(from: data + off, byteCount: len)
            batch.setReceived(n, length: len)
            n &+= 1
        }
        batch.count = n
        return n
    }

    /// Any thread: a frame sent to the port (written to the output file if there is one).
    @inline(__always)
    public func consume(_ frame: UnsafeRawPointer, length: Int) {
        guard let d = dumper else { return }
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        var h = pcap_pkthdr(ts: timeval(tv_sec: ts.tv_sec, tv_usec: ts.tv_nsec / 1000),
                            caplen: UInt32(length), len: UInt32(length))
        let file = pcap_dump_file(d)
        flockfile(file)
        pcap_dump(UnsafeMutableRawPointer(d).assumingMemoryBound(to: UInt8.self), &h,
                  frame.assumingMemoryBound(to: UInt8.self))
        fflush(file)
        funlockfile(file)
    }
}

public final class ReplayPort {
    public let file: String
    public let state: UnsafeMutablePointer<ReplayState>
    public let slot: Int32
    var pcapOut: OpaquePointer?
    var open = true

    /// Reads `file` (Ethernet pcap) for replay; `output`: pcap file for frames sent to the port.
    public init(file: String, loop: Bool, rate: UInt64, output: String? = nil) throws {
        var err = [CChar](repeating: 0, count: Int(PCAP_ERRBUF_SIZE) + 1)
        guard let p = pcap_open_offline(file, &err) else {
            let code: Int32 = access(file, F_OK) == 0 ? EINVAL : ENOENT   // libpcap's message says which
            throw SystemError(operation: "open pcap file", errno: code, context: file, detail: String(cString: err))
        }
        defer { pcap_close(p) }
        guard pcap_datalink(p) == DLT_EN10MB else {
            throw SystemError(operation: "replay pcap file", errno: EINVAL, context: file, detail: "link type is not Ethernet")
        }
        var bytes: [UInt8] = []
        var offs: [Int] = [0]
        var hdr: UnsafeMutablePointer<pcap_pkthdr>?
        var pkt: UnsafePointer<UInt8>?
        var rc: Int32 = 0
        while true {
            rc = pcap_next_ex(p, &hdr, &pkt)
            guard rc == 1, let h = hdr, let d = pkt else { break }
            bytes.append(contentsOf: UnsafeBufferPointer(start: d, count: Int(h.pointee.caplen)))
            offs.append(bytes.count)
        }
        // -2 is the end of the file; -1 a damaged one (a truncated record, an absurd length): refused whole,
        // rather than replaying the part before the damage without a word.
        if rc == -1 {
            throw SystemError(operation: "replay pcap file", errno: EINVAL, context: file,
                              detail: "damaged after \(offs.count - 1) records: \(String(cString: pcap_geterr(p)))")
        }
        let data = UnsafeMutableRawPointer.allocate(byteCount: max(1, bytes.count), alignment: 64)
        bytes.withUnsafeBytes { if let b = $0.baseAddress { data.copyMemory(from: b, byteCount: $0.count) } }
        let offsets = UnsafeMutablePointer<Int>.allocate(capacity: offs.count)
        offsets.initialize(from: offs, count: offs.count)
        var dumper: OpaquePointer?
        if let output {
            let dead = pcap_open_dead_with_tstamp_precision(DLT_EN10MB, 65535, UInt32(PCAP_TSTAMP_PRECISION_MICRO))
            dumper = dead.flatMap { pcap_dump_open($0, output) }
            pcapOut = dead
            if dumper == nil {
                if let dead { pcap_close(dead) }
                data.deallocate(); offsets.deallocate()
                throw SystemError(operation: "open pcap output file", errno: EACCES, context: output)
            }
        }
        state = .allocate(capacity: 1)
        state.initialize(to: ReplayState(data: data, offsets: offsets, count: offs.count - 1, loop: loop, rate: rate, dumper: dumper))
        guard let s = PortRegistry.register(UnsafeMutableRawPointer(state)) else {
            if let dumper { pcap_dump_close(dumper) }
            if let pcapOut { pcap_close(pcapOut) }
            data.deallocate(); offsets.deallocate(); state.deallocate()
            throw SystemError(operation: "attach replay port", errno: ENOSPC, context: file, detail: "port registry full")
        }
        slot = s
        self.file = file
    }

    /// Frames in the file.
    public var frameCount: Int { state.pointee.count }

    /// Frees everything (after a snapshot without the port is published).
    public func close() {
        guard open else { return }
        open = false
        PortRegistry.unregister(slot)
        if let d = state.pointee.dumper { pcap_dump_close(d) }
        if let pcapOut { pcap_close(pcapOut) }
        state.pointee.data.deallocate()
        state.pointee.offsets.deallocate()
        state.deallocate()
    }

    deinit { close() }
}
