// TapBackend: the forwarding threads' view of TAP ports (PollingBackend).
//
// Each port's `PortEntry.handle` is its TAP file descriptor (non-blocking,
// IFF_TAP | IFF_NO_PI). Receive drains up to one batch per port per pass with
// read(); send is one write() per frame (a TAP write is atomic, so threads
// may send to the same TAP concurrently). EAGAIN on write is a full queue
// (counted as tx-queue-full by the engine), never an error.
// A port with offloads (PortEntry.offload: IFF_VNET_HDR) reads and writes a
// 12-byte virtio-net header in front of every frame, in the same read()/write()
// (VSwitchPacket/Offload.swift). This is the baseline the benchmark measures
// the io_uring backend against.
//
// Threading: one TapBackend per forwarding thread; `prepare` caches the
// thread's pollfd array while the thread is online, so `poll` never reads the
// snapshot while the thread is offline (see ForwardingThread).

import Glibc
import VSwitchCore
import VSwitchPacket

public struct TapBackend: PollingBackend {
    let maxPorts: Int
    let fds: UnsafeMutablePointer<pollfd>
    let portOf: UnsafeMutablePointer<UInt16>
    var count = 0

    public init(maxPorts: Int = 1024) {
        self.maxPorts = maxPorts
        fds = .allocate(capacity: maxPorts)
        fds.initialize(repeating: pollfd(fd: -1, events: 0, revents: 0), count: maxPorts)
        portOf = .allocate(capacity: maxPorts)
        portOf.initialize(repeating: 0, count: maxPorts)
    }

    /// Frees the arrays (after the owning thread stopped).
    public func deallocate() { fds.deallocate(); portOf.deallocate() }

    public mutating func prepare(ports: UnsafePointer<UInt16>, count n: Int, view: UnsafeMutablePointer<ConfigView>) {
        count = 0
        for k in 0..<min(n, maxPorts) {
            let p = Int(ports[k])
            let e = view.pointee.ports[p]
            guard e.present, e.up, e.handle >= 0 else { continue }   // a down port is not read
            fds[count] = pollfd(fd: e.handle, events: Int16(POLLIN), revents: 0)
            portOf[count] = UInt16(p)
            count += 1
        }
    }

    public mutating func poll(timeoutMs: Int32, ready: UnsafeMutablePointer<UInt16>) -> Int {
        if count == 0 {
            if timeoutMs > 0 { usleep(UInt32(timeoutMs) * 1000) }
            return 0
        }
        let rc = Glibc.poll(fds, nfds_t(count), timeoutMs)
        if rc <= 0 { return 0 }
        var n = 0
        for k in 0..<count where fds[k].revents & Int16(POLLIN) != 0 {
            ready[n] = portOf[k]
            n += 1
        }
        return n
    }

    @inline(__always)
    public mutating func receive(port: Int, entry: UnsafeMutablePointer<PortEntry>, into batch: inout FrameBatch) -> Int {
        let fd = entry.pointee.handle
        let room = batch.dataRoom
        var n = 0
        if entry.pointee.offload {
            // IFF_VNET_HDR: the 12-byte virtio-net header and the frame in one read (Offload.swift).
            let hdr = VirtioNet.headerSize
            while n < batch.capacity {
                let r = Glibc.read(fd, batch.receiveBufferVnet(n), room &+ hdr)
                if r <= 0 { break }
                if batch.setReceivedVnet(n, total: r) { n &+= 1 }
            }
            batch.count = n
            return n
        }
        while n < batch.capacity {
            let r = Glibc.read(fd, batch.receiveBuffer(n), room)
            if r <= 0 { break }     // EAGAIN: drained; other errors: the control plane notices the device
            batch.setReceived(n, length: r)
            n &+= 1
        }
        batch.count = n
        return n
    }

    @inline(__always)
    public mutating func send(port: Int, entry: UnsafeMutablePointer<PortEntry>, batch: FrameBatch, frame: Int) -> SendResult {
        let r = entry.pointee.offload
            ? Glibc.write(entry.pointee.handle, batch.stageVnetHeader(frame), Int(batch.meta[frame].length) &+ VirtioNet.headerSize)
            : Glibc.write(entry.pointee.handle, batch.data(frame), Int(batch.meta[frame].length))
        if r >= 0 { return .sent }
        let e = errno
        return e == EAGAIN || e == EWOULDBLOCK || e == ENOBUFS ? .wouldBlock : .failed
    }
}
