import Foundation
import VSwitchCapture
import VSwitchCore
import VSwitchPacket
import VSwitchPolicy
import XCTest

func frame(dst: UInt64, src: UInt64, vlan: UInt16? = nil, type: UInt16 = 0x88B5, payload: Int = 46) -> [UInt8] {
    var b: [UInt8] = []
    for s in [40, 32, 24, 16, 8, 0] { b.append(UInt8(truncatingIfNeeded: dst >> UInt64(s))) }
    for s in [40, 32, 24, 16, 8, 0] { b.append(UInt8(truncatingIfNeeded: src >> UInt64(s))) }
    if let vlan { b += [0x81, 0x00, UInt8(vlan >> 8), UInt8(vlan & 0xFF)] }
    b += [UInt8(type >> 8), UInt8(type & 0xFF)] + [UInt8](repeating: 0xAB, count: payload)
    return b
}
func vlanOf(_ b: [UInt8]) -> UInt16? { b[12] == 0x81 && b[13] == 0 ? UInt16(b[14] & 0x0F) << 8 | UInt16(b[15]) : nil }

let macA: UInt64 = 0x0200_0000_0A01, macB: UInt64 = 0x0200_0000_0A02, bcast: UInt64 = 0xFFFF_FFFF_FFFF

/// Memory ports: 0 access VLAN 10, 1 trunk {10,20}, 2 access VLAN 10.
final class Rig {
    let store = MemoryPorts()
    var backend: MemoryBackend
    let table = MACTable(limit: 1024)
    var snapshot: ConfigSnapshot
    let engine: ForwardingEngine
    var batch = FrameBatch(capacity: 64)
    var specs: [PortSpec]
    init(captureBytes: Int = 4 << 20) {
        engine = ForwardingEngine(maxPorts: 16, batchCapacity: 64, captureBytes: captureBytes)
        let trunk = PortPolicy.trunk([10, 20], taggedOnly: true)
        specs = [PortSpec(index: 0, policy: .access(10)), PortSpec(index: 1, policy: trunk), PortSpec(index: 2, policy: .access(10))]
        snapshot = ConfigSnapshot(generation: 1, ports: specs, macTable: table)
        backend = MemoryBackend(store: store)
    }
    deinit { batch.deallocate(); engine.deallocate(); table.deallocate() }
    func apply() { snapshot = ConfigSnapshot(generation: snapshot.generation + 1, ports: specs, macTable: table) }
    func inject(_ port: Int, _ frames: [[UInt8]], nowNs: UInt64 = 5_000_000_000) {
        store.clearSent()
        for f in frames { store.enqueue(port, f) }
        while backend.receive(port: port, entry: snapshot.view.pointee.ports + port, into: &batch) > 0 {
            engine.forward(batch, ingress: port, view: snapshot.view, now: 5, nowNs: nowNs, backend: &backend)
        }
    }
    func records() -> [(port: Int, dir: UInt8, bytes: [UInt8], ts: UInt64)] {
        var out: [(Int, UInt8, [UInt8], UInt64)] = []
        _ = engine.capture.drain { r in out.append((r.port, r.direction, Array(r.bytes), r.timestampNs)) }
        return out.map { (port: $0.0, dir: $0.1, bytes: $0.2, ts: $0.3) }
    }
}

final class CaptureRingTests: XCTestCase {
    func testPushDrainOrderFullAndWrap() {
        // 256-byte ring, records up to 64 bytes (80 with the header): 3 fit; the 4th is refused.
        let ring = CaptureRing(byteCount: 256, maxCopy: 64)
        defer { ring.deallocate() }
        XCTAssertEqual(ring.byteCount, 256)
        var batch = FrameBatch(capacity: 8)
        defer { batch.deallocate() }
        for k in 0..<8 { _ = batch.append(frame(dst: bcast, src: macA, payload: 46 + k)) }
        // Rounds of 3 records walk the ring's start (240 bytes a round), so records wrap with a marker.
        for round in 0..<12 {
            for i in 0..<3 { XCTAssertTrue(ring.push(batch, i, port: i, direction: UInt8(i & 1), timestampNs: UInt64(round * 10 + i)), "round \(round)") }
            XCTAssertFalse(ring.push(batch, 4, port: 4, direction: 0, timestampNs: 0), "a full ring refuses")
            XCTAssertEqual(ring.pending, 3)
            var seen: [Int] = []
            XCTAssertEqual(ring.drain { r in
                seen.append(r.port)
                XCTAssertEqual(r.originalLength, 60 + r.port)
                XCTAssertEqual(r.bytes.count, min(60 + r.port, 64), "truncated to maxCopy")
                XCTAssertEqual(Array(r.bytes), Array(batch.bytes(r.port).prefix(64)))
                XCTAssertEqual(r.direction, UInt8(r.port & 1))
                XCTAssertEqual(r.timestampNs, UInt64(round * 10 + r.port))
            }, 3)
            XCTAssertEqual(seen, [0, 1, 2])
            XCTAssertEqual(ring.pendingBytes, 0)
        }
    }

    func testJumboAndMaximumRecordsWholeAndVariableSized() {
        // The default ring keeps frames whole up to 65535 bytes: a 9018-byte jumbo frame (9000 MTU + tag)
        // and small frames share the ring at their own size.
        let ring = CaptureRing()
        defer { ring.deallocate() }
        XCTAssertEqual(ring.maxCopy, 65535)
        var batch = FrameBatch(capacity: 4, dataRoom: 70_000)
        defer { batch.deallocate() }
        _ = batch.append(frame(dst: bcast, src: macA, vlan: 10, payload: 9000))
        _ = batch.append(frame(dst: bcast, src: macA, payload: 46))
        _ = batch.append(frame(dst: bcast, src: macA, payload: 65_600))
        var pushed = 0
        while ring.push(batch, pushed % 3, port: 7, direction: 1, timestampNs: UInt64(pushed)) { pushed += 1 }
        // 4 MiB / (9040 + 80 + 65552) bytes a round of three.
        XCTAssertEqual(pushed / 3, (4 << 20) / (CaptureRing.recordBytes(9018) + CaptureRing.recordBytes(60) + CaptureRing.recordBytes(65535)))
        var got = 0
        _ = ring.drain { r in
            let i = got % 3
            XCTAssertEqual(r.originalLength, batch.bytes(i).count)
            XCTAssertEqual(r.bytes.count, min(batch.bytes(i).count, 65535))
            XCTAssertTrue(Array(r.bytes) == Array(batch.bytes(i).prefix(65535)), "record \(got) whole and intact")
            XCTAssertEqual(r.timestampNs, UInt64(got))
            got += 1
        }
        XCTAssertEqual(got, pushed)
        // Around the wrap: push/drain one at a time many times over the buffer's length.
        for k in 0..<2000 {
            XCTAssertTrue(ring.push(batch, k % 2, port: k & 0x7FF, direction: 0, timestampNs: UInt64(k)))
            var ok = false
            XCTAssertEqual(ring.drain { r in ok = r.port == k & 0x7FF && r.bytes.count == batch.bytes(k % 2).count }, 1)
            XCTAssertTrue(ok)
        }
    }

    func testOneProducerOneConsumerThreads() {
        let ring = CaptureRing(byteCount: 4096, maxCopy: 128)
        defer { ring.deallocate() }
        var batch = FrameBatch(capacity: 1)
        _ = batch.append(frame(dst: bcast, src: macA))
        let total = 200_000
        nonisolated(unsafe) let b = batch
        let producer = Thread {
            var n = 0
            while n < total { if ring.push(b, 0, port: n & 0xFF, direction: 1, timestampNs: UInt64(n)) { n += 1 } }
        }
        producer.start()
        var got = 0
        var ordered = true
        while got < total {
            _ = ring.drain { r in if r.timestampNs != UInt64(got) || r.port != got & 0xFF { ordered = false }; got += 1 }
        }
        XCTAssertTrue(ordered)
        XCTAssertEqual(got, total)
        while !producer.isFinished { usleep(100) }
        batch.deallocate()
    }
}

final class CaptureTapTests: XCTestCase {
    func testCaptureOffCopiesNothing() {
        let rig = Rig()
        rig.inject(0, [frame(dst: bcast, src: macA)])
        XCTAssertEqual(rig.engine.capture.pending, 0)
        XCTAssertEqual(rig.store.sent(1).count, 1)
    }

    func testFramesAsSeenOnEachWire() {
        let rig = Rig()
        rig.specs[0].capture = PortEntry.captureIn | PortEntry.captureOut
        rig.specs[1].capture = PortEntry.captureIn | PortEntry.captureOut
        rig.apply()
        rig.inject(0, [frame(dst: bcast, src: macA)])           // untagged in on access, tagged 10 out on the trunk
        rig.inject(1, [frame(dst: macA, src: macB, vlan: 10)])  // tagged in on the trunk, untagged out on the access port
        let r = rig.records()
        XCTAssertEqual(r.map { "\($0.port)/\($0.dir)/\(vlanOf($0.bytes).map(String.init) ?? "-")" },
                       ["0/0/-", "1/1/10", "1/0/10", "0/1/-"])
        XCTAssertEqual(r[0].ts, 5_000_000_000)
        XCTAssertEqual(PortCounters(port: 0, blocks: [rig.engine.counters]).captureCopies, 2)
        XCTAssertEqual(PortCounters(port: 1, blocks: [rig.engine.counters]).captureCopies, 2)
    }

    func testFullRingDropsTheCopyNotTheFrame() {
        // The smallest ring holds two maximum records: 2 × 65552 → 256 KiB; 60-byte frames take 80 bytes.
        let rig = Rig(captureBytes: 1)
        let fit = rig.engine.capture.byteCount / CaptureRing.recordBytes(60)
        rig.specs[0].capture = PortEntry.captureIn
        rig.apply()
        var frames = 0
        for _ in 0..<(fit / 64 + 2) {
            rig.inject(0, (0..<64).map { _ in frame(dst: bcast, src: macA) })
            frames += 64
        }
        XCTAssertEqual(rig.store.sent(1).count, 64, "every frame of the last batch forwarded")
        XCTAssertEqual(PortCounters(port: 1, blocks: [rig.engine.counters]).txPackets, UInt64(frames), "every frame forwarded")
        XCTAssertEqual(rig.engine.capture.pending, fit)
        XCTAssertEqual(PortCounters(port: 0, blocks: [rig.engine.counters]).captureDrops, UInt64(frames - fit))
        XCTAssertEqual(PortCounters(port: 0, blocks: [rig.engine.counters]).captureCopies, UInt64(fit))
    }

    func testMirrorSessionCopiesBothDirectionsUntouchedAndNeverLearns() {
        let rig = Rig()
        rig.specs[1].policy.mirrorSession = 1      // the trunk is the source
        rig.specs[2].mirrorDestination = 1         // port 2 receives the copies
        rig.apply()
        rig.inject(1, [frame(dst: bcast, src: macB, vlan: 10)])
        // Port 2 gets the normal flood (untagged, VLAN 10) and the ingress copy (as on the trunk: tagged 10).
        XCTAssertEqual(rig.store.sent(2).map { vlanOf($0) }, [10, nil])
        rig.inject(0, [frame(dst: macB, src: macA)])   // to the trunk: its egress copy goes to port 2 tagged
        XCTAssertEqual(rig.store.sent(1).map { vlanOf($0) }, [10])
        XCTAssertEqual(rig.store.sent(2).map { vlanOf($0) }, [10])
        XCTAssertEqual(rig.table.lookup(vlan: 10, mac: macB), 1, "the copy was not learned on the destination")
        XCTAssertEqual(PortCounters(port: 2, blocks: [rig.engine.counters]).mirrorSent, 2)
    }

    func testStalledOutputNeverBlocksTheWriterOrOtherSessions() throws {
        // A pipe nobody reads (64 KiB): the writer serves every session and the daemon's stop joins it, so it must
        // never block on that pipe (session 8 review: it did, and SIGTERM then hung). What the pipe cannot take
        // waits in the session's 4 MiB buffer as whole records, then is dropped whole and counted; a second session
        // on a file gets every record meanwhile; the slow output's stream stays a valid pcap.
        let rig = Rig()
        rig.specs[0].capture = PortEntry.captureIn
        rig.apply()
        var fds: [Int32] = [0, 0]
        XCTAssertEqual(pipe(&fds), 0)
        let path = NSTemporaryDirectory() + "vsw-cap-fast-\(getpid()).pcap"
        defer { unlink(path) }
        let fileFD = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        let writer = CaptureWriter(rings: [rig.engine.capture], dropsOf: { _ in 0 })
        let slow = try CaptureSession(id: 1, ports: [0: PortEntry.captureIn], filter: nil, count: nil, duration: nil,
                                      snaplen: 65535, output: fds[1])
        let fast = try CaptureSession(id: 2, ports: [0: PortEntry.captureIn], filter: nil, count: nil, duration: nil,
                                      snaplen: 65535, output: fileFD)
        writer.add(slow)
        writer.add(fast)
        nonisolated(unsafe) let w = writer
        var total = 0
        for _ in 0..<8 {   // 8 × 3,200 frames of 1,014 bytes: ~26 MB, far more than the pipe and the buffer hold
            for _ in 0..<50 { rig.inject(0, (0..<64).map { _ in frame(dst: bcast, src: macA, payload: 1000) }) }
            total += 3200
            let done = DispatchSemaphore(value: 0)
            Thread { w.pump(); done.signal() }.start()
            guard done.wait(timeout: .now() + 5) == .success else { return XCTFail("the writer blocked on the stalled pipe") }
        }
        XCTAssertEqual(fast.captured, total, "the other session got every record")
        XCTAssertGreaterThan(slow.droppedSlowOutput, 0)
        XCTAssertEqual(slow.captured + slow.droppedSlowOutput, total)
        // A reader at last: the session ends, what it buffered is written, the stream is whole records.
        nonisolated(unsafe) var got = Data()
        let read = DispatchSemaphore(value: 0)
        let rfd = fds[0]
        Thread {
            var buf = [UInt8](repeating: 0, count: 1 << 16)
            while true { let n = Glibc.read(rfd, &buf, buf.count); if n <= 0 { break }; got.append(contentsOf: buf[0..<n]) }
            read.signal()
        }.start()
        writer.stopAll()
        XCTAssertEqual(read.wait(timeout: .now() + 10), .success)
        let records = try XCTUnwrap(pcapRecords(got), "the slow output's stream is a valid pcap of whole records")
        XCTAssertEqual(records.count, slow.captured)
        XCTAssertEqual(records.first?.bytes.count, 1014)
        let summary = writer.takeFinished().first { $0["capture"] as? Int == 1 }
        XCTAssertEqual(summary?["dropped_slow_output"] as? Int, slow.droppedSlowOutput)
        close(fds[0])
    }

    /// The filter sees the whole frame, as tcpdump's does, and the record is cut to the snaplen afterwards (session 8
    /// review: it saw only the snaplen's bytes, so a filter on a later field matched nothing).
    func testFilterSeesTheWholeFrameThenTheRecordIsCut() throws {
        let rig = Rig()
        let path = NSTemporaryDirectory() + "vsw-cap-filter-\(getpid()).pcap"
        defer { unlink(path) }
        let writer = CaptureWriter(rings: [rig.engine.capture], dropsOf: { _ in 0 })
        writer.add(try CaptureSession(id: 1, ports: [0: PortEntry.captureIn], filter: try CaptureFilter("ether[60] = 0xab"),
                                      count: nil, duration: nil, snaplen: 20, output: open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)))
        XCTAssertEqual(writer.activeSnaplens(), [0: CaptureRing.maxSnaplen], "a filtered session's port is copied whole")
        rig.specs[0].capture = PortEntry.captureIn
        rig.specs[0].captureSnap = 0
        rig.apply()
        rig.inject(0, [frame(dst: bcast, src: macA, payload: 100), frame(dst: bcast, src: macA, payload: 30)])
        writer.pump()
        writer.stopAll()
        XCTAssertEqual(writer.takeFinished().first?["filtered_out"] as? Int, 1, "the 44-byte frame has no byte 60")
        let records = try XCTUnwrap(pcapRecords(try Data(contentsOf: URL(fileURLWithPath: path))))
        XCTAssertEqual(records.map(\.caplen), [20])
        XCTAssertEqual(records.map(\.len), [114])
    }

    func testDeletedPortEndsItsCaptures() throws {
        let rig = Rig()
        rig.specs[0].capture = PortEntry.captureIn
        rig.apply()
        let path = NSTemporaryDirectory() + "vsw-cap-del-\(getpid()).pcap"
        defer { unlink(path) }
        let writer = CaptureWriter(rings: [rig.engine.capture], dropsOf: { _ in 0 })
        writer.add(try CaptureSession(id: 1, ports: [0: PortEntry.captureIn], filter: nil, count: nil, duration: nil,
                                      snaplen: 65535, output: open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)))
        writer.add(try CaptureSession(id: 2, ports: [1: PortEntry.captureIn], filter: nil, count: nil, duration: nil,
                                      snaplen: 65535, output: open("/dev/null", O_WRONLY)))
        // A mirror session's capture: two source ports; losing one, it goes on with the other.
        let both = try CaptureSession(id: 3, ports: [0: PortEntry.captureIn, 2: PortEntry.captureIn], filter: nil, count: nil,
                                      duration: nil, snaplen: 65535, output: open("/dev/null", O_WRONLY))
        writer.add(both)
        rig.inject(0, [frame(dst: bcast, src: macA)])
        writer.portRemoved(0)
        XCTAssertEqual(writer.activeTaps(), [1: PortEntry.captureIn, 2: PortEntry.captureIn], "no tap on the deleted port's index any more")
        writer.pump()
        let ended = writer.takeFinished()
        XCTAssertEqual(ended.map { $0["reason"] as? String }, ["port-deleted"])
        XCTAssertEqual(ended.first?["captured"] as? Int, 1, "what it took before the deletion is written")
        XCTAssertEqual(both.endReason, nil, "the two-port session goes on")
        // Records of index 0 (a new port given it) are no longer taken by it; port 2's are.
        rig.specs[0].capture = PortEntry.captureIn; rig.specs[2].capture = PortEntry.captureIn; rig.apply()
        let before = both.captured
        rig.inject(0, [frame(dst: bcast, src: macA)])
        rig.inject(2, [frame(dst: bcast, src: macB)])
        writer.pump()
        XCTAssertEqual(both.captured - before, 1)
        writer.portRemoved(2)
        writer.pump()
        XCTAssertEqual(writer.takeFinished().map { $0["capture"] as? Int }, [3], "ended once none of its ports is left")
        writer.stopAll()
    }

    func testInvalidFilterGivesLibpcapMessage() {
        XCTAssertThrowsError(try CaptureFilter("vlan and and")) { e in
            XCTAssertTrue("\(e)".contains("syntax error"), "\(e)")
        }
        XCTAssertNoThrow(try CaptureFilter("vlan 10 and ether proto 0x88b5"))
    }

    func testWriterFiltersAndWritesNanosecondPcap() throws {
        let rig = Rig()
        rig.specs[1].capture = PortEntry.captureOut
        rig.apply()
        let path = NSTemporaryDirectory() + "vsw-cap-\(getpid()).pcap"
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        let writer = CaptureWriter(rings: [rig.engine.capture], dropsOf: { _ in 0 })
        writer.realtimeOffset = 0
        writer.clock = { 0 }
        let s = try CaptureSession(id: 1, ports: [1: PortEntry.captureOut], filter: try CaptureFilter("vlan 20"), count: 2,
                                   duration: nil, snaplen: 128, output: fd)
        writer.add(s)
        rig.specs[0].policy = .access(20); rig.apply()
        rig.inject(2, [frame(dst: bcast, src: macB)])                       // VLAN 10: filtered out
        rig.inject(0, (0..<3).map { _ in frame(dst: bcast, src: macA) })    // VLAN 20: 2 of 3 (count)
        writer.pump()
        XCTAssertEqual(writer.takeFinished().first?["captured"] as? Int, 2)
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        XCTAssertEqual(data.prefix(4), Data([0x4D, 0x3C, 0xB2, 0xA1]), "nanosecond pcap magic (little endian)")
        XCTAssertEqual(data.count, 24 + 2 * (16 + 64))
        XCTAssertEqual(data[24 + 4], 0x00); XCTAssertEqual(data[24 + 16 + 14], 0, "tag VID high bits")
        XCTAssertEqual(data[24 + 16 + 15], 20, "frame tagged 20 as sent on the trunk")
        unlink(path)
    }
}

/// Parses a nanosecond pcap file: (seconds, nanoseconds, caplen, length, bytes) per record.
func pcapRecords(_ data: Data) -> [(sec: UInt32, nsec: UInt32, caplen: Int, len: Int, bytes: [UInt8])]? {
    let b = [UInt8](data)
    func u32(_ o: Int) -> UInt32 { UInt32(b[o]) | UInt32(b[o + 1]) << 8 | UInt32(b[o + 2]) << 16 | UInt32(b[o + 3]) << 24 }
    guard b.count >= 24, u32(0) == 0xA1B2_3C4D else { return nil }
    var out: [(UInt32, UInt32, Int, Int, [UInt8])] = []
    var o = 24
    while o + 16 <= b.count {
        let cap = Int(u32(o + 8))
        guard o + 16 + cap <= b.count else { return nil }
        out.append((u32(o), u32(o + 4), cap, Int(u32(o + 12)), Array(b[(o + 16)..<(o + 16 + cap)])))
        o += 16 + cap
    }
    guard o == b.count else { return nil }
    return out.map { (sec: $0.0, nsec: $0.1, caplen: $0.2, len: $0.3, bytes: $0.4) }
}

final class CaptureWriterZeroCopyTests: XCTestCase {
    func testProducerCopiesOnlyThePortsSnaplen() {
        let rig = Rig()
        rig.specs[0].capture = PortEntry.captureIn
        rig.specs[0].captureSnap = 64
        rig.apply()
        rig.inject(0, [frame(dst: bcast, src: macA, payload: 500), frame(dst: bcast, src: macA, payload: 20)])
        let r = rig.records()
        XCTAssertEqual(r.map(\.bytes.count), [64, 34], "the ring holds the port's snaplen, no more")
        XCTAssertEqual(rig.engine.capture.pendingBytes, 0)
        rig.specs[0].captureSnap = 0   // 0: as much as the ring keeps
        rig.apply()
        rig.inject(0, [frame(dst: bcast, src: macA, payload: 500)])
        XCTAssertEqual(rig.records().map(\.bytes.count), [514])
    }

    func testRecordsAreWrittenStraightFromTheRingInLargeWrites() throws {
        // A small ring (records wrap many times), two sessions on the same port: one whole (runs of records
        // written straight from the ring), one with snaplen 40 (header from the side buffer + 40 ring bytes).
        let rig = Rig(captureBytes: 1)
        rig.specs[0].capture = PortEntry.captureIn
        rig.apply()
        let writer = CaptureWriter(rings: [rig.engine.capture], dropsOf: { _ in 0 })
        writer.realtimeOffset = 1_000_000_000 * 1_700_000_000
        writer.chunkBytes = 64 << 10
        let dir = NSTemporaryDirectory() + "vsw-zc-\(getpid())"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let whole = try CaptureSession(id: 1, ports: [0: PortEntry.captureIn], filter: nil, count: nil, duration: nil,
                                       snaplen: 65535, output: open(dir + "/whole.pcap", O_WRONLY | O_CREAT | O_TRUNC, 0o644))
        let short = try CaptureSession(id: 2, ports: [0: PortEntry.captureIn], filter: nil, count: nil, duration: nil,
                                       snaplen: 40, output: open(dir + "/short.pcap", O_WRONLY | O_CREAT | O_TRUNC, 0o644))
        writer.add(whole)
        writer.add(short)
        var sent: [[UInt8]] = []
        for round in 0..<40 {
            let frames = (0..<64).map { k in frame(dst: bcast, src: macA + UInt64(round), payload: 46 + (round * 64 + k) % 300) }
            rig.inject(0, frames, nowNs: UInt64(round) * 1_000_000 + 123)
            sent += frames
            if round % 4 == 3 { writer.pump() }   // ~40–90 KB of records per pass
        }
        writer.pump()
        XCTAssertEqual(PortCounters(port: 0, blocks: [rig.engine.counters]).captureDrops, 0)
        writer.stopAll()
        let w = try XCTUnwrap(pcapRecords(try Data(contentsOf: URL(fileURLWithPath: dir + "/whole.pcap"))))
        let s = try XCTUnwrap(pcapRecords(try Data(contentsOf: URL(fileURLWithPath: dir + "/short.pcap"))))
        XCTAssertEqual(w.count, sent.count)
        XCTAssertEqual(s.count, sent.count)
        XCTAssertTrue(w.map(\.bytes) == sent, "whole frames, in order, intact across the ring's wraps")
        XCTAssertTrue(s.map(\.bytes) == sent.map { Array($0.prefix(40)) }, "truncated to 40 bytes")
        XCTAssertEqual(s.map(\.len), sent.map(\.count), "original lengths kept")
        XCTAssertEqual(w.last?.sec, 1_700_000_000)
        XCTAssertEqual(w.last?.nsec, 39 * 1_000_000 + 123, "nanosecond timestamps")
        // 2,560 records in 10 passes: a handful of writev per pass and session, not one per record.
        XCTAssertLessThanOrEqual(whole.writeCalls, 40, "\(whole.writeCalls) writes for \(sent.count) records")
        XCTAssertGreaterThan(whole.bytesWritten / max(whole.writeCalls, 1), 10_000)
        XCTAssertEqual(whole.bytesWritten, 24 + sent.reduce(0) { $0 + 16 + $1.count })
    }
}
