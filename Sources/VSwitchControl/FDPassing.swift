// File descriptors over the control socket (SCM_RIGHTS), for `capture`: the client opens its
// output (a file, or its stdout pipe) and hands the descriptor over with the request, so the
// daemon writes pcap straight into it (docs/control-protocol.md "capture").
// cmsg layout on Linux/LP64: cmsghdr { size_t len; int level; int type; } (16 bytes), data after.

import Foundation
#if canImport(Glibc)
import Glibc
#endif

enum CMsg {
    static let header = 16
    static let scmRights: Int32 = 1
}

/// recv() that also collects descriptors passed with SCM_RIGHTS (close-on-exec).
public func receiveWithDescriptors(_ fd: Int32, _ buffer: UnsafeMutableRawBufferPointer) -> (Int, [Int32]) {
    let controlLen = 64
    let control = UnsafeMutableRawPointer.allocate(byteCount: controlLen, alignment: 8)
    defer { control.deallocate() }
    control.initializeMemory(as: UInt8.self, repeating: 0, count: controlLen)
    var controlUsed = 0
    var iov = iovec(iov_base: buffer.baseAddress, iov_len: buffer.count)
    let n = withUnsafeMutablePointer(to: &iov) { iovp -> Int in
        var m = msghdr()
        m.msg_iov = iovp
        m.msg_iovlen = 1
        m.msg_control = control
        m.msg_controllen = controlLen
        let r = recvmsg(fd, &m, Int32(MSG_CMSG_CLOEXEC))
        if r > 0 { controlUsed = m.msg_controllen }
        return r
    }
    var fds: [Int32] = []
    if n > 0 {
        var off = 0
        while off + CMsg.header <= controlUsed {
            let len = control.load(fromByteOffset: off, as: Int.self)
            let level = control.load(fromByteOffset: off + 8, as: Int32.self)
            let type = control.load(fromByteOffset: off + 12, as: Int32.self)
            if len < CMsg.header { break }
            if level == SOL_SOCKET && type == CMsg.scmRights {
                for k in 0..<((len - CMsg.header) / 4) {
                    fds.append(control.load(fromByteOffset: off + CMsg.header + 4 * k, as: Int32.self))
                }
            }
            off += (len + 7) & ~7
        }
    }
    return (n, fds)
}

/// Sends `data` with one descriptor attached (SCM_RIGHTS). Returns bytes sent or -1 (errno set).
public func sendWithDescriptor(_ fd: Int32, _ data: [UInt8], descriptor: Int32) -> Int {
    let space = CMsg.header + 8
    let control = UnsafeMutableRawPointer.allocate(byteCount: space, alignment: 8)
    defer { control.deallocate() }
    control.initializeMemory(as: UInt8.self, repeating: 0, count: space)
    control.storeBytes(of: CMsg.header + 4, toByteOffset: 0, as: Int.self)
    control.storeBytes(of: Int32(SOL_SOCKET), toByteOffset: 8, as: Int32.self)
    control.storeBytes(of: CMsg.scmRights, toByteOffset: 12, as: Int32.self)
    control.storeBytes(of: descriptor, toByteOffset: CMsg.header, as: Int32.self)
    var bytes = data
    return bytes.withUnsafeMutableBytes { raw -> Int in
        var iov = iovec(iov_base: raw.baseAddress, iov_len: raw.count)
        return withUnsafeMutablePointer(to: &iov) { iovp -> Int in
            var m = msghdr()
            m.msg_iov = iovp
            m.msg_iovlen = 1
            m.msg_control = control
            m.msg_controllen = space
            return sendmsg(fd, &m, Int32(MSG_NOSIGNAL))
        }
    }
}

extension ControlClient {
    /// Sends `request` with `descriptor` attached and waits for its response.
    public func call(_ request: ControlRequest, passing descriptor: Int32, timeout: Int32 = 30) throws(ControlError) -> ControlResponse {
        let line = Array(request.line.utf8)
        let n = sendWithDescriptor(fd, line, descriptor: descriptor)
        if n < 0 { return try answerAfterFailedSend(errno) }
        if n < line.count {
            let err = sendAll(Data(line[n...]))
            if err != 0 { return try answerAfterFailedSend(err) }
        }
        return try ControlResponse.parse(readLine(timeout: timeout))
    }
}
