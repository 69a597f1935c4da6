// ControlServer: the Unix-domain control socket (docs/control-protocol.md), served from the
// daemon's poll() loop on the control thread.
//
// Design
// - The socket file is created mode 0600 in a 0755 directory, and every connection's peer
//   credentials (SO_PEERCRED) are checked: a uid other than 0 gets one error response and is
//   disconnected.
// - Every socket is non-blocking. Input is split into lines; a line longer than
//   ControlProtocol.maxRequestBytes gets an error and the connection is closed; output is
//   queued and written as the peer reads it, so a slow or garbage client never blocks the
//   control thread (and forwarding threads never see the control socket at all).
// - At most `maxClients` connections; one more is told so and closed.
//
// Threading: control thread only.

import CVSwitchShim
import Foundation
import VSwitchControl
#if canImport(Glibc)
import Glibc
#endif

public final class ControlServer {
    public let path: String
    let listenFD: Int32
    final class Client {
        let fd: Int32
        var input: [UInt8] = []
        var output: [UInt8] = []
        var outputOffset = 0
        var closeAfterFlush = false
        /// Descriptors received with SCM_RIGHTS, not yet claimed by a request.
        var fds: [Int32] = []
        init(fd: Int32) { self.fd = fd }
    }
    /// Descriptors passed with the request being handled (`capture`); the handler claims them with
    /// `takeDescriptors()`; unclaimed ones are closed after the handler returns.
    var requestFDs: [Int32] = []
    public func takeDescriptors() -> [Int32] { defer { requestFDs = [] }; return requestFDs }
    /// Set by a handler: after its response is written, the connection is handed to this closure
    /// (it owns the descriptor from then on; `capture` streams its end summary on it).
    public var takeover: ((Int32) -> Void)?
    var clients: [Int32: Client] = [:]
    public var maxClients = 64
    public var maxOutputBytes = 512 << 20

    /// Creates the socket. Refuses when another daemon answers on `path`; removes a stale socket file.
    public init(path: String) throws {
        self.path = path
        let dir = (path as NSString).deletingLastPathComponent
        if !dir.isEmpty {
            var p = ""
            for part in dir.split(separator: "/") {
                p += "/" + part
                if mkdir(p, 0o755) != 0 && errno != EEXIST {
                    throw DaemonError("control socket \(path): cannot create directory \(p): \(String(cString: strerror(errno)))")
                }
            }
        }
        var st = stat()
        if lstat(path, &st) == 0 {
            // Only a stale socket (or a link, itself removed, never its target) is cleared away: anything else at the
            // path is somebody's file, and a mistyped --control-socket must not destroy it.
            let kind = st.st_mode & S_IFMT
            guard kind == S_IFSOCK || kind == S_IFLNK else {
                throw DaemonError("control socket \(path): a file that is not a socket is in the way (remove it, or use another --control-socket)")
            }
            if kind == S_IFSOCK, (try? ControlClient(path: path)) != nil {
                throw DaemonError("control socket \(path) is in use by another vswitchd (stop it, or use --control-socket)")
            }
            unlink(path)
        }
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw DaemonError("control socket: \(String(cString: strerror(errno)))") }
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: addr.sun_path) else {
            close(fd)
            throw DaemonError("control socket path too long: \(path)")
        }
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in for (i, b) in bytes.enumerated() { raw[i] = b } }
        let old = umask(0o177)   // the socket file is created 0600
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        umask(old)
        if rc != 0 {
            let e = errno
            close(fd)
            throw DaemonError("control socket \(path): cannot bind: \(String(cString: strerror(e)))")
        }
        chmod(path, 0o600)
        guard listen(fd, 64) == 0 else {
            let e = errno
            close(fd); unlink(path)
            throw DaemonError("control socket \(path): cannot listen: \(String(cString: strerror(e)))")
        }
        listenFD = fd
    }

    deinit {
        for c in clients.values { close(c.fd); c.fds.forEach { close($0) } }
        close(listenFD)
        unlink(path)
    }

    /// The descriptors to poll: the listening socket, then every client.
    public func pollFDs() -> [pollfd] {
        var out = [pollfd(fd: listenFD, events: Int16(POLLIN), revents: 0)]
        for c in clients.values {
            var ev = Int16(POLLIN)
            if c.outputOffset < c.output.count { ev |= Int16(POLLOUT) }
            if c.closeAfterFlush { ev = Int16(POLLOUT) }
            out.append(pollfd(fd: c.fd, events: ev, revents: 0))
        }
        return out
    }

    public func owns(_ fd: Int32) -> Bool { fd == listenFD || clients[fd] != nil }

    /// Handles readiness of one of our descriptors; `handler` answers one request line.
    public func service(_ p: pollfd, handler: (Data) -> ControlResponse) {
        if p.fd == listenFD {
            acceptAll()
            return
        }
        guard let c = clients[p.fd] else { return }
        if p.revents & Int16(POLLIN) != 0 && !c.closeAfterFlush { readFrom(c, handler: handler) }
        if p.revents & (Int16(POLLHUP) | Int16(POLLERR)) != 0 && p.revents & Int16(POLLIN) == 0 { c.closeAfterFlush = true }
        if clients[c.fd] != nil { flush(c) }
    }

    func acceptAll() {
        while true {
            let fd = accept(listenFD, nil, nil)
            if fd < 0 { return }
            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
            _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
            let c = Client(fd: fd)
            clients[fd] = c
            var uid: uid_t = 0, pid: pid_t = 0
            if vsw_peer_credentials(fd, &uid, &pid) != 0 {
                refuse(c, "cannot read the peer credentials of the connection; refused")
            } else if uid != 0 {
                refuse(c, "permission denied: the vswitchd control socket accepts root (uid 0) only, not uid \(uid)")
            } else if clients.count > maxClients {
                refuse(c, "too many control connections (\(maxClients)); try again")
            }
        }
    }

    /// Descriptors a client may have passed before its request line ends.
    static let maxPendingDescriptors = 4

    func refuse(_ c: Client, _ message: String) {
        queue(c, ControlResponse.failure(message))
        c.closeAfterFlush = true
        flush(c)
    }

    func queue(_ c: Client, _ r: ControlResponse) {
        c.output.append(contentsOf: Array(r.line.utf8))
        if c.output.count - c.outputOffset > maxOutputBytes { drop(c) }
    }

    func readFrom(_ c: Client, handler: (Data) -> ControlResponse) {
        var buf = [UInt8](repeating: 0, count: 65536)
        while clients[c.fd] != nil && !c.closeAfterFlush {
            let (n, passed) = buf.withUnsafeMutableBytes { receiveWithDescriptors(c.fd, $0) }
            c.fds += passed
            // A request carries at most one descriptor (capture's output): a client piling them up without a request
            // line would run the daemon out of file descriptors.
            if c.fds.count > ControlServer.maxPendingDescriptors { drop(c); return }
            if n < 0 {
                if errno == EINTR { continue }
                if errno != EAGAIN && errno != EWOULDBLOCK { drop(c) }
                return
            }
            if n == 0 {   // peer closed its side: answer what is complete, then close
                c.closeAfterFlush = true
                return
            }
            c.input.append(contentsOf: buf[0..<n])
            var start = 0
            while let nl = c.input[start...].firstIndex(of: 0x0A) {
                let line = Data(c.input[start..<nl])
                start = nl + 1
                if line.allSatisfy({ $0 == 0x20 || $0 == 0x0D || $0 == 0x09 }) { continue }
                requestFDs = c.fds; c.fds = []
                queue(c, handler(line))
                takeDescriptors().forEach { close($0) }
                if let t = takeover {
                    takeover = nil
                    handOver(c, t)
                    return
                }
                if clients[c.fd] == nil { return }
            }
            c.input.removeFirst(start)
            if c.input.count > ControlProtocol.maxRequestBytes {
                c.input = []
                refuse(c, "malformed request: longer than \(ControlProtocol.maxRequestBytes) bytes")
                return
            }
        }
    }

    func flush(_ c: Client) {
        while c.outputOffset < c.output.count {
            let n = c.output.withUnsafeBytes { raw in
                send(c.fd, raw.baseAddress! + c.outputOffset, raw.count - c.outputOffset, Int32(MSG_NOSIGNAL))
            }
            if n < 0 {
                if errno == EINTR { continue }
                if errno == EAGAIN || errno == EWOULDBLOCK { return }
                drop(c); return
            }
            c.outputOffset += n
        }
        c.output.removeAll(keepingCapacity: c.output.count < 1 << 20)
        c.outputOffset = 0
        if c.closeAfterFlush { drop(c) }
    }

    /// Writes what is queued (blocking briefly), then gives the connection away.
    func handOver(_ c: Client, _ to: (Int32) -> Void) {
        clients.removeValue(forKey: c.fd)
        c.fds.forEach { close($0) }
        _ = fcntl(c.fd, F_SETFL, fcntl(c.fd, F_GETFL) & ~O_NONBLOCK)
        while c.outputOffset < c.output.count {
            let n = c.output.withUnsafeBytes { raw in
                send(c.fd, raw.baseAddress! + c.outputOffset, raw.count - c.outputOffset, Int32(MSG_NOSIGNAL))
            }
            if n <= 0 { if n < 0 && errno == EINTR { continue }; break }
            c.outputOffset += n
        }
        _ = fcntl(c.fd, F_SETFL, fcntl(c.fd, F_GETFL) | O_NONBLOCK)
        to(c.fd)
    }

    func drop(_ c: Client) {
        guard clients.removeValue(forKey: c.fd) != nil else { return }
        c.fds.forEach { close($0) }
        close(c.fd)
    }
}
