// PortSetBackend: the one PollingBackend a forwarding thread is generic over, serving every port
// kind: TAP ports through the wrapped TAP backend (UringTapBackend or TapBackend, unchanged),
// netdev ports through their AF_PACKET rings (NetdevRing), replay ports from memory (ReplayState).
// Dispatch is a switch on PortEntry.kind per receive / send / flush — no existential, no
// allocation, no lock, no ARC per frame: ring and replay state are raw structs found through
// PortRegistry with one load.
//
// Readiness: `poll` covers the TAP fds and the netdev RX sockets with one poll(); a netdev port
// whose current ring block is already user-owned, or a replay port with a frame due, is ready
// without waiting (the timeout drops to 0, or to the next replay frame's due time).
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
    let fds: UnsafeMutablePointer<pollfd>
    let portOf: UnsafeMutablePointer<UInt16>
    var fdCount = 0
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
        fds = .allocate(capacity: maxPorts)
        fds.initialize(repeating: pollfd(fd: -1, events: 0, revents: 0), count: maxPorts)
        portOf = .allocate(capacity: maxPorts)
        portOf.initialize(repeating: 0, count: maxPorts)
        netdevPorts = .allocate(capacity: maxPorts)
        netdevRings = .allocate(capacity: maxPorts)
        replayPorts = .allocate(capacity: maxPorts)
        replayStates = .allocate(capacity: maxPorts)
    }

    /// Frees the arrays (after the owning thread stopped); the TAP backend is freed by its owner.
    public func deallocate() {
        fds.deallocate(); portOf.deallocate(); netdevPorts.deallocate(); netdevRings.deallocate()
        replayPorts.deallocate(); replayStates.deallocate()
    }

    public mutating func prepare(ports: UnsafePointer<UInt16>, count n: Int, view: UnsafeMutablePointer<ConfigView>) {
        fdCount = 0; netdevCount = 0; replayCount = 0
        for k in 0..<min(n, maxPorts) {
            let p = Int(ports[k])
            let e = view.pointee.ports[p]
            guard e.present, e.up, e.handle >= 0 else { continue }   // a down port is not read
            switch e.kind {
            case PortKindCode.netdev:
                guard let s = PortRegistry.state(e.handle) else { continue }
                let ring = s.assumingMemoryBound(to: NetdevRing.self)
                netdevPorts[netdevCount] = UInt16(p); netdevRings[netdevCount] = ring; netdevCount += 1
                fds[fdCount] = pollfd(fd: ring.pointee.rxFd, events: Int16(POLLIN), revents: 0)
                portOf[fdCount] = UInt16(p); fdCount += 1
            case PortKindCode.replay:
                guard let s = PortRegistry.state(e.handle) else { continue }
                replayPorts[replayCount] = UInt16(p)
                replayStates[replayCount] = s.assumingMemoryBound(to: ReplayState.self)
                replayCount += 1
            default:
                fds[fdCount] = pollfd(fd: e.handle, events: Int16(POLLIN), revents: 0)
                portOf[fdCount] = UInt16(p); fdCount += 1
            }
        }
    }

    public mutating func poll(timeoutMs: Int32, ready: UnsafeMutablePointer<UInt16>) -> Int {
        var n = 0
        var timeout = timeoutMs
        // Ports ready without asking the kernel.
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
        if n > 0 { timeout = 0 }
        if fdCount == 0 {
            if timeout > 0 { usleep(UInt32(timeout) * 1000) }
            return n
        }
        let rc = Glibc.poll(fds, nfds_t(fdCount), timeout)
        if rc <= 0 { return n }
        for k in 0..<fdCount where fds[k].revents & Int16(POLLIN) != 0 {
            let p = portOf[k]
            var dup = false
            if netdevCount > 0 { for j in 0..<n where ready[j] == p { dup = true; break } }
            if !dup { ready[n] = p; n += 1 }
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
            switch s.assumingMemoryBound(to: NetdevRing.self).pointee.send(queue: threadIndex, batch.data(frame),
                                                                             length: Int(batch.meta[frame].length)) {
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
