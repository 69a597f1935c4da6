// UringTapBackend: TAP port I/O batched through io_uring (issue 7, first step).
//
// The per-frame cost through a TAP is the kernel boundary: one read() and one write() per frame
// (TapBackend). Here a batch of reads is one io_uring submission: N read SQEs into the batch's
// buffers, one io_uring_submit_and_wait; on an O_NONBLOCK TAP the kernel tries each read inline and
// completes the ones without a frame with -EAGAIN, so the call never blocks. The number of reads
// posted adapts to what the last pass found (few when traffic is light, the whole batch under
// load). Sends are queued as write SQEs while the engine walks one output port's list and are
// submitted together in `flush` (the engine calls it before a frame's bytes change again), so a
// batch to one port is one system call in each direction.
//
// Offloads (PortEntry.offload, IFF_VNET_HDR): a read posts `receiveBufferVnet` with room for the
// 12-byte virtio-net header in front of the frame; a write sends the header staged in front of the
// frame; one SQE per frame either way (VSwitchPacket/Offload.swift).
//
// Threading: one backend (and one ring) per forwarding thread. Every submission is reaped in full
// before the call returns: no request is ever in flight between calls, so buffers are never
// touched by the kernel behind the engine's back.

import CLibURing
import CVSwitchShim
import Glibc
import VSwitchCore
import VSwitchPacket

public struct UringTapBackend: PollingBackend {
    let ring: UnsafeMutablePointer<io_uring>
    var readiness: TapBackend
    /// Reads to post per port on the next receive (adaptive, 4...batch capacity).
    var readsToPost: Int = 8
    var pendingWrites: Int = 0
    let depth: UInt32
    /// Whether the ring was created disabled (single-issuer) and still waits for its thread.
    var waitingForIssuer: Bool

    /// - Parameter depth: submission queue entries (≥ the batch capacity).
    public init(depth: UInt32 = 256, maxPorts: Int = 1024) throws {
        ring = .allocate(capacity: 1)
        ring.initialize(to: io_uring())
        // One thread submits and reaps (the forwarding thread that owns the backend): SINGLE_ISSUER lets
        // the kernel skip the ring's locking and DEFER_TASKRUN runs completion work only inside our own
        // io_uring_enter, never as an interrupting task-work round. The ring is created disabled,
        // because the issuer is the thread that enables it (the forwarding thread, on first use).
        // Kernels before 6.1 refuse the flags: fall back to a plain ring.
        var rc = io_uring_queue_init(depth, ring, UInt32(IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_R_DISABLED))
        waitingForIssuer = rc >= 0
        if rc < 0 { rc = io_uring_queue_init(depth, ring, 0) }
        if rc < 0 {
            ring.deallocate()
            throw SystemError(operation: "set up io_uring", errno: -rc, context: "(\(depth) entries)")
        }
        self.depth = depth
        readiness = TapBackend(maxPorts: maxPorts)
    }

    /// Tears the ring down (after the owning thread stopped).
    public func deallocate() {
        io_uring_queue_exit(ring)
        ring.deallocate()
        readiness.deallocate()
    }

    public mutating func prepare(ports: UnsafePointer<UInt16>, count: Int, view: UnsafeMutablePointer<ConfigView>) {
        readiness.prepare(ports: ports, count: count, view: view)
    }

    public mutating func poll(timeoutMs: Int32, ready: UnsafeMutablePointer<UInt16>) -> Int {
        readiness.poll(timeoutMs: timeoutMs, ready: ready)
    }

    @inline(__always)
    mutating func sqe() -> UnsafeMutablePointer<io_uring_sqe> {
        if waitingForIssuer { waitingForIssuer = false; _ = vsw_uring_enable_rings(ring.pointee.ring_fd) }
        if let s = io_uring_get_sqe(ring) { return s }
        _ = io_uring_submit(ring)          // queue full: hand what we have to the kernel first
        return io_uring_get_sqe(ring)!
    }

    public mutating func receive(port: Int, entry: UnsafeMutablePointer<PortEntry>, into batch: inout FrameBatch) -> Int {
        let fd = entry.pointee.handle
        let want = min(batch.capacity, readsToPost, Int(depth))
        let vnet = entry.pointee.offload
        let hdr = vnet ? VirtioNet.headerSize : 0
        let room = UInt32(batch.dataRoom &+ hdr)
        for n in 0..<want {
            let s = sqe()
            // With offloads, the virtio-net header and the frame arrive in one read (Offload.swift).
            io_uring_prep_read(s, fd, vnet ? batch.receiveBufferVnet(n) : batch.receiveBuffer(n), room, 0)
            // RWF_NOWAIT: a read with no frame waiting completes at once with -EAGAIN instead of
            // being parked on the file's wait queue (O_NONBLOCK alone is not enough for io_uring).
            s.pointee.rw_flags = Int32(RWF_NOWAIT)
            s.pointee.user_data = UInt64(n)
            batch.meta[n].length = 0
        }
        _ = io_uring_submit_and_wait(ring, UInt32(want))
        var reaped = 0
        var cqe: UnsafeMutablePointer<io_uring_cqe>? = nil
        while reaped < want {
            let rc = io_uring_wait_cqe(ring, &cqe)
            if rc == -EINTR { continue }
            if rc < 0 { break }   // a broken ring (never seen): give up on this pass rather than spin
            let c = cqe!.pointee
            let slot = Int(c.user_data)
            if c.res > 0 {
                if vnet { batch.setReceivedVnet(slot, total: Int(c.res)) } else { batch.setReceived(slot, length: Int(c.res)) }
            }
            io_uring_cqe_seen(ring, cqe)
            reaped += 1
        }
        // Compact: frames must occupy slots 0..<count (reads usually complete as a prefix).
        var count = 0
        for n in 0..<want where batch.meta[n].length > 0 {
            if n != count { batch.moveFrame(from: n, to: count) }
            count += 1
        }
        batch.count = count
        readsToPost = count == want ? min(batch.capacity, want * 2) : max(4, count + 4)
        return count
    }

    @inline(__always)
    public mutating func send(port: Int, entry: UnsafeMutablePointer<PortEntry>, batch: FrameBatch, frame: Int) -> SendResult {
        let s = sqe()
        if entry.pointee.offload {
            // Header staged just in front of the frame: one write covers both (Offload.swift).
            io_uring_prep_write(s, entry.pointee.handle, batch.stageVnetHeader(frame),
                                UInt32(batch.meta[frame].length) &+ UInt32(VirtioNet.headerSize), 0)
            s.pointee.user_data = UInt64(VirtioNet.headerSize)
        } else {
            io_uring_prep_write(s, entry.pointee.handle, batch.data(frame), UInt32(batch.meta[frame].length), 0)
            s.pointee.user_data = 0
        }
        s.pointee.rw_flags = Int32(RWF_NOWAIT)   // never park: a full queue is -EAGAIN (tx-queue-full)
        pendingWrites += 1
        return .queued
    }

    public mutating func flush(port: Int, entry: UnsafeMutablePointer<PortEntry>) -> FlushResult {
        var r = FlushResult()
        guard pendingWrites > 0 else { return r }
        let n = pendingWrites
        pendingWrites = 0
        _ = io_uring_submit_and_wait(ring, UInt32(n))
        var reaped = 0
        var cqe: UnsafeMutablePointer<io_uring_cqe>? = nil
        while reaped < n {
            let rc = io_uring_wait_cqe(ring, &cqe)
            if rc == -EINTR { continue }
            if rc < 0 { break }   // a broken ring (never seen): give up on this pass rather than spin
            let res = cqe!.pointee.res
            if res >= 0 { r.sent += 1; r.bytes += UInt64(res) &- cqe!.pointee.user_data }   // header bytes not counted
            else if res == -EAGAIN || res == -ENOBUFS { r.wouldBlock += 1 }
            else { r.failed += 1 }
            io_uring_cqe_seen(ring, cqe)
            reaped += 1
        }
        return r
    }
}
