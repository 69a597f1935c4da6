// PortSetBackend: the one PollingBackend a forwarding thread is generic over, serving every port
// kind: TAP ports through the wrapped TAP backend (UringTapBackend or TapBackend, unchanged),
// netdev ports through their AF_PACKET rings (NetdevRing), replay ports from memory (ReplayState).
// Dispatch is a switch on PortEntry.kind per receive / send / flush — no existential, no
// allocation, no lock, no ARC per frame: ring and replay state are raw structs found through
// PortRegistry with one load.
//
// Readiness: the TAP fds and the netdev RX sockets are registered in one epoll set per thread
// (level-triggered, the port index as the event's data), so a pass costs one epoll_wait that returns
// only the ready ports, however many ports the thread serves (a poll() over 1,000 TAP fds on every
// pass cost ~1 % of a flow's frames with 1,000 ports, issue 8's churn benchmark). `prepare` (on a
// snapshot change) first removes the fds of ports gone, then re-registers every wanted fd with
// EPOLL_CTL_MOD, falling back to ADD: MOD fails with ENOENT exactly when that fd number now names a
// file not in the set (a port deleted and re-added between two snapshots reuses fd numbers).
// A netdev port whose current ring block is already user-owned, or a replay port with a frame due,
// is ready without waiting (the timeout drops to 0, or to the next replay frame's due time).
//
// Threading: one backend per forwarding thread; `threadIndex` picks the thread's TX ring of each
// netdev port.

import CVSwitchShim
import Glibc
import VSwitchCore
import VSwitchPacket

public struct PortSetBackend<Tap: PortBackend>: PollingBackend {
    public var tap: Tap
    public let threadIndex: Int
    let maxPorts: Int
    /// The thread's epoll set and its event buffer.
    let epfd: Int32
    let events: UnsafeMutablePointer<epoll_event>
    /// Per port: the fd registered for it in the epoll set (-1: none), and the fd wanted by `prepare`.
    let registered: UnsafeMutablePointer<Int32>
    let wanted: UnsafeMutablePointer<Int32>
    var fdCount = 0
    /// Registered fds that are not netdev RX sockets (TAPs): a zero-timeout poll needs epoll_wait only for them.
    var otherFdCount = 0
    /// Netdev ports (ring pointers) and replay ports (state pointers) this thread receives from.
    let netdevPorts: UnsafeMutablePointer<UInt16>
    let netdevRings: UnsafeMutablePointer<UnsafeMutablePointer<NetdevRing>>
    var netdevCount = 0
    let replayPorts: UnsafeMutablePointer<UInt16>
    let replayStates: UnsafeMutablePointer<UnsafeMutablePointer<ReplayState>>
    var replayCount = 0

    public init(tap: Tap, threadIndex: Int = 0, maxPorts: Int = 1024) {
        self.tap = tap
        self.threadIndex = threadIndex
        self.maxPorts = maxPorts
        epfd = epoll_create1(Int32(EPOLL_CLOEXEC))
        precondition(epfd >= 0, "epoll_create1 failed: \(String(cString: strerror(errno)))")
        events = .allocate(capacity: maxPorts)
        events.initialize(repeating: epoll_event(), count: maxPorts)
        registered = .allocate(capacity: maxPorts)
        registered.initialize(repeating: -1, count: maxPorts)
        wanted = .allocate(capacity: maxPorts)
        wanted.initialize(repeating: -1, count: maxPorts)
        netdevPorts = .allocate(capacity: maxPorts)
        netdevRings = .allocate(capacity: maxPorts)
        replayPorts = .allocate(capacity: maxPorts)
        replayStates = .allocate(capacity: maxPorts)
    }

    /// Frees the arrays (after the owning thread stopped); the TAP backend is freed by its owner.
    public func deallocate() {
        close(epfd)
        events.deallocate(); registered.deallocate(); wanted.deallocate(); netdevPorts.deallocate(); netdevRings.deallocate()
        replayPorts.deallocate(); replayStates.deallocate()
    }

    public mutating func prepare(ports: UnsafePointer<UInt16>, count n: Int, view: UnsafeMutablePointer<ConfigView>) {
        fdCount = 0; otherFdCount = 0; netdevCount = 0; replayCount = 0
        for p in 0..<maxPorts { wanted[p] = -1 }
        for k in 0..<min(n, maxPorts) {
            let p = Int(ports[k])
            let e = view.pointee.ports[p]
            guard e.present, e.up, e.handle >= 0 else { continue }   // a down port is not read
            switch e.kind {
            case PortKindCode.netdev:
                guard let s = PortRegistry.state(e.handle) else { continue }
                let ring = s.assumingMemoryBound(to: NetdevRing.self)
                netdevPorts[netdevCount] = UInt16(p); netdevRings[netdevCount] = ring; netdevCount += 1
                wanted[p] = ring.pointee.rxFd
            case PortKindCode.replay:
                guard let s = PortRegistry.state(e.handle) else { continue }
                replayPorts[replayCount] = UInt16(p)
                replayStates[replayCount] = s.assumingMemoryBound(to: ReplayState.self)
                replayCount += 1
            default:
                wanted[p] = e.handle
                otherFdCount += 1
            }
        }
        // Removals first (an fd number may have moved to another port), then every wanted fd.
        for p in 0..<maxPorts where registered[p] >= 0 && registered[p] != wanted[p] {
            _ = epoll_ctl(epfd, EPOLL_CTL_DEL, registered[p], nil)
            registered[p] = -1
        }
        for p in 0..<maxPorts where wanted[p] >= 0 {
            var ev = epoll_event()
            ev.events = EPOLLIN.rawValue
            ev.data.u64 = UInt64(p)
            if epoll_ctl(epfd, EPOLL_CTL_MOD, wanted[p], &ev) != 0 {
                if errno == ENOENT { _ = epoll_ctl(epfd, EPOLL_CTL_ADD, wanted[p], &ev) }
            }
            registered[p] = wanted[p]
            fdCount += 1
        }
    }

    public mutating func poll(timeoutMs: Int32, ready: UnsafeMutablePointer<UInt16>) -> Int {
        // Ports ready without asking the kernel (netdev rings, replay schedules); no wait when there are some.
        var (n, timeout) = readyBeforeWaiting(timeoutMs: timeoutMs, ready: ready)
        // A netdev ring's readiness is its status word, read above: without other fds, a pass that does not
        // wait needs no system call (with TPACKET_V2 rings the thread wakes per frame at moderate rates, and
        // the forwarding loop makes two such passes before it sleeps).
        if timeout == 0 && otherFdCount == 0 { return n }
        if fdCount == 0 {
            if timeout > 0 { usleep(UInt32(timeout) * 1000) }
            return n
        }
        let rc = epoll_wait(epfd, events, Int32(min(fdCount, maxPorts)), timeout)
        if rc <= 0 { return n }
        for k in 0..<Int(rc) where events[k].events & (EPOLLIN.rawValue | EPOLLERR.rawValue | EPOLLHUP.rawValue) != 0 {
            let p = UInt16(truncatingIfNeeded: events[k].data.u64)
            var dup = false
            if netdevCount > 0 { for j in 0..<n where ready[j] == p { dup = true; break } }
            if !dup { ready[n] = p; n += 1 }
        }
        return n
    }

    /// Online: netdev rings with frames and replay ports due now; the wait is shortened to the next replay frame.
    public mutating func readyBeforeWaiting(timeoutMs: Int32, ready: UnsafeMutablePointer<UInt16>) -> (count: Int, timeoutMs: Int32) {
        var n = 0
        var timeout = timeoutMs
        for k in 0..<netdevCount where netdevRings[k].pointee.hasFrames() {
            ready[n] = netdevPorts[k]; n += 1
        }
        if replayCount > 0 {
            let now = vsw_now_ns()
            for k in 0..<replayCount {
                guard let ms = replayStates[k].pointee.msUntilDue(now: now) else { continue }
                if ms == 0 { ready[n] = replayPorts[k]; n += 1 } else if ms < timeout { timeout = ms }
            }
        }
        return (n, n > 0 ? 0 : timeout)
    }

    /// Offline: epoll on the prepared descriptors only (no ring, no replay state: either may be freed meanwhile).
    public mutating func waitOffline(timeoutMs: Int32, ready: UnsafeMutablePointer<UInt16>) -> Int {
        if fdCount == 0 {
            if timeoutMs > 0 { usleep(UInt32(timeoutMs) * 1000) }
            return 0
        }
        let rc = epoll_wait(epfd, events, Int32(min(fdCount, maxPorts)), timeoutMs)
        if rc <= 0 { return 0 }
        var n = 0
        for k in 0..<Int(rc) where events[k].events & (EPOLLIN.rawValue | EPOLLERR.rawValue | EPOLLHUP.rawValue) != 0 {
            ready[n] = UInt16(truncatingIfNeeded: events[k].data.u64); n += 1
        }
        return n
    }

    @inline(__always)
    public mutating func receive(port: Int, entry: UnsafeMutablePointer<PortEntry>, into batch: inout FrameBatch) -> Int {
        switch entry.pointee.kind {
        case PortKindCode.tap:
            return tap.receive(port: port, entry: entry, into: &batch)
        case PortKindCode.netdev:
            guard let s = PortRegistry.state(entry.pointee.handle) else { batch.count = 0; return 0 }
            return s.assumingMemoryBound(to: NetdevRing.self).pointee.receive(into: &batch)
        default:
            guard let s = PortRegistry.state(entry.pointee.handle) else { batch.count = 0; return 0 }
            return s.assumingMemoryBound(to: ReplayState.self).pointee.receive(into: &batch, now: vsw_now_ns())
        }
    }

    @inline(__always)
    public mutating func send(port: Int, entry: UnsafeMutablePointer<PortEntry>, batch: FrameBatch, frame: Int) -> SendResult {
        switch entry.pointee.kind {
        case PortKindCode.tap:
            return tap.send(port: port, entry: entry, batch: batch, frame: frame)
        case PortKindCode.netdev:
            guard let s = PortRegistry.state(entry.pointee.handle) else { return .failed }
            let ring = s.assumingMemoryBound(to: NetdevRing.self)
            // Offloaded frames reach here only when the port takes them (PortEntry.offload: PACKET_VNET_HDR).
            let kind = batch.meta[frame].flags & FrameMeta.offload != 0
                ? ring.pointee.sendOffloaded(queue: threadIndex, batch: batch, frame: frame)
                : ring.pointee.send(queue: threadIndex, batch.data(frame), length: Int(batch.meta[frame].length))
            switch kind {
            case .queued: return .queued
            case .sent: return .sent
            case .wouldBlock: return .wouldBlock
            case .failed: return .failed
            }
        default:
            guard let s = PortRegistry.state(entry.pointee.handle) else { return .failed }
            s.assumingMemoryBound(to: ReplayState.self).pointee.consume(batch.data(frame), length: Int(batch.meta[frame].length))
            return .sent
        }
    }

    @inline(__always)
    public mutating func flush(port: Int, entry: UnsafeMutablePointer<PortEntry>) -> FlushResult {
        switch entry.pointee.kind {
        case PortKindCode.tap:
            return tap.flush(port: port, entry: entry)
        case PortKindCode.netdev:
            var r = FlushResult()
            guard let s = PortRegistry.state(entry.pointee.handle) else { return r }
            let (frames, bytes, err) = s.assumingMemoryBound(to: NetdevRing.self).pointee.flush(queue: threadIndex)
            if err == 0 { r.sent = UInt64(frames); r.bytes = UInt64(bytes) }
            else if err == EAGAIN || err == ENOBUFS { r.wouldBlock = UInt64(frames) }
            else { r.failed = UInt64(frames) }
            return r
        default:
            return FlushResult()
        }
    }
}
