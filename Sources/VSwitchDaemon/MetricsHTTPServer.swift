// MetricsHTTPServer: `vswitchd --metrics-listen 127.0.0.1:9477` (off by default) serves the Prometheus
// text of `vswitchctl metrics` on GET /metrics. A minimal HTTP/1.1 responder, no framework: one request
// per connection (`Connection: close`), GET and HEAD only, request heads up to 8 KiB.
//
// Design: served from the daemon's poll() loop on the control thread, like the control socket. Every
// socket is non-blocking; a client that sends nothing, or reads nothing, for 5 s is dropped, and at most
// `maxClients` connections are open, so a slow scraper never blocks the control thread; forwarding
// threads never see it. The text is rendered once per request from the same counters as
// `vswitchctl metrics`.
//
// Threading: control thread only.

import CVSwitchShim
import Foundation
#if canImport(Glibc)
import Glibc
#endif

public final class MetricsHTTPServer {
    public let address: String
    public let port: UInt16
    let listenFD: Int32
    final class Client {
        let fd: Int32
        var input: [UInt8] = []
        var output: [UInt8] = []
        var offset = 0
        var responded = false
        let since: Double
        init(fd: Int32, since: Double) { self.fd = fd; self.since = since }
    }
    var clients: [Int32: Client] = [:]
    public var maxClients = 16
    public var timeoutSeconds = 5.0
    static let maxHead = 8192

    /// Parses "HOST:PORT" (IPv4 dotted quad or `localhost`; `[::1]:PORT` for IPv6 loopback).
    public static func parse(_ s: String) throws -> (host: String, port: UInt16) {
        guard let colon = s.lastIndex(of: ":") else { throw DaemonError("--metrics-listen \(s): expected HOST:PORT, e.g. 127.0.0.1:9477") }
        var host = String(s[..<colon])
        guard let port = UInt16(s[s.index(after: colon)...]), port > 0 else {
            throw DaemonError("--metrics-listen \(s): the port must be 1-65535")
        }
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        if host == "localhost" { host = "127.0.0.1" }
        return (host, port)
    }

    public init(listen: String) throws {
        let (host, port) = try Self.parse(listen)
        self.address = host
        self.port = port
        let v6 = host.contains(":")
        let fd = socket(v6 ? AF_INET6 : AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw DaemonError("--metrics-listen \(listen): \(String(cString: strerror(errno)))") }
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var rc: Int32
        if v6 {
            var a = sockaddr_in6()
            a.sin6_family = sa_family_t(AF_INET6)
            a.sin6_port = port.bigEndian
            guard inet_pton(AF_INET6, host, &a.sin6_addr) == 1 else {
                close(fd); throw DaemonError("--metrics-listen \(listen): \(host) is not an IP address")
            }
            rc = withUnsafePointer(to: &a) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in6>.size)) } }
        } else {
            var a = sockaddr_in()
            a.sin_family = sa_family_t(AF_INET)
            a.sin_port = port.bigEndian
            guard inet_pton(AF_INET, host, &a.sin_addr) == 1 else {
                close(fd); throw DaemonError("--metrics-listen \(listen): \(host) is not an IPv4 address (or localhost, or [IPv6])")
            }
            rc = withUnsafePointer(to: &a) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        }
        if rc != 0 {
            let e = errno
            close(fd)
            throw DaemonError("--metrics-listen \(listen): cannot bind: \(String(cString: strerror(e)))")
        }
        guard Glibc.listen(fd, 16) == 0 else {
            let e = errno
            close(fd)
            throw DaemonError("--metrics-listen \(listen): cannot listen: \(String(cString: strerror(e)))")
        }
        listenFD = fd
    }

    deinit {
        for c in clients.values { close(c.fd) }
        close(listenFD)
    }

    public func pollFDs() -> [pollfd] {
        var out = [pollfd(fd: listenFD, events: Int16(POLLIN), revents: 0)]
        for c in clients.values {
            out.append(pollfd(fd: c.fd, events: c.responded ? Int16(POLLOUT) : Int16(POLLIN), revents: 0))
        }
        return out
    }

    public func owns(_ fd: Int32) -> Bool { fd == listenFD || clients[fd] != nil }

    /// Handles readiness of one of our descriptors; `render` produces the metrics text.
    public func service(_ p: pollfd, now: Double, render: () -> String) {
        if p.fd == listenFD {
            while true {
                let fd = accept(listenFD, nil, nil)
                if fd < 0 { break }
                _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
                _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
                if clients.count >= maxClients {
                    // Full: the oldest client still without a complete request makes room (else clients that connect
                    // and say nothing locked every scrape out until they timed out).
                    guard let oldest = clients.values.filter({ !$0.responded }).min(by: { $0.since < $1.since }) else {
                        close(fd); continue
                    }
                    drop(oldest)
                }
                clients[fd] = Client(fd: fd, since: now)
            }
            return
        }
        guard let c = clients[p.fd] else { return }
        if !c.responded && p.revents & Int16(POLLIN) != 0 { read(c, render: render) }
        else if p.revents & (Int16(POLLHUP) | Int16(POLLERR)) != 0 && !c.responded { drop(c); return }
        if c.responded { flush(c) }
    }

    /// Drops clients that took longer than `timeoutSeconds` (call about once a second).
    public func expire(now: Double) {
        for c in clients.values where now - c.since > timeoutSeconds { drop(c) }
    }

    func read(_ c: Client, render: () -> String) {
        var buf = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = recv(c.fd, &buf, buf.count, 0)
            if n < 0 {
                if errno == EINTR { continue }
                if errno != EAGAIN && errno != EWOULDBLOCK { drop(c) }
                return
            }
            if n == 0 { // closed before a full head
                if !c.input.isEmpty { respond(c, Self.response(head: c.input, render: render)) } else { drop(c) }
                return
            }
            c.input.append(contentsOf: buf[0..<n])
            if Self.headEnd(c.input) != nil {
                respond(c, Self.response(head: c.input, render: render))
                return
            }
            if c.input.count > Self.maxHead {
                respond(c, Self.plain(431, "Request Header Fields Too Large", "request head larger than \(Self.maxHead) bytes\n"))
                return
            }
        }
    }

    static func headEnd(_ b: [UInt8]) -> Int? {
        guard b.count >= 4 else { return nil }
        for i in 0...(b.count - 4) where b[i] == 13 && b[i + 1] == 10 && b[i + 2] == 13 && b[i + 3] == 10 { return i }
        // Bare-LF heads (some hand-written clients).
        for i in 0..<(b.count - 1) where b[i] == 10 && b[i + 1] == 10 { return i }
        return nil
    }

    /// The response to one request head: GET/HEAD /metrics → 200 with the text; else 404/405/400.
    static func response(head: [UInt8], render: () -> String) -> [UInt8] {
        let text = String(decoding: head.prefix(Self.maxHead), as: UTF8.self)
        let requestLine = text.split(whereSeparator: { $0 == "\r\n" || $0 == "\n" || $0 == "\r" }).first.map(String.init) ?? ""
        let parts = requestLine.split(separator: " ")
        guard parts.count == 3, parts[2].hasPrefix("HTTP/1.") else {
            return plain(400, "Bad Request", "expected: GET /metrics HTTP/1.1\n")
        }
        let method = String(parts[0])
        let path = String(parts[1].split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first ?? "")
        guard method == "GET" || method == "HEAD" else {
            return plain(405, "Method Not Allowed", "only GET and HEAD\n", extra: "Allow: GET, HEAD\r\n")
        }
        guard path == "/metrics" else { return plain(404, "Not Found", "the metrics are at /metrics\n", head: method == "HEAD") }
        let body = Array(render().utf8)
        var r = "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n"
        r += "Content-Length: \(body.count)\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n"
        return Array(r.utf8) + (method == "HEAD" ? [] : body)
    }

    static func plain(_ code: Int, _ reason: String, _ body: String, extra: String = "", head: Bool = false) -> [UInt8] {
        let b = Array(body.utf8)
        let r = "HTTP/1.1 \(code) \(reason)\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: \(b.count)\r\n\(extra)Connection: close\r\n\r\n"
        return Array(r.utf8) + (head ? [] : b)
    }

    func respond(_ c: Client, _ bytes: [UInt8]) {
        c.output = bytes
        c.responded = true
        flush(c)
    }

    func flush(_ c: Client) {
        while c.offset < c.output.count {
            let n = c.output.withUnsafeBytes { raw in
                send(c.fd, raw.baseAddress! + c.offset, raw.count - c.offset, Int32(MSG_NOSIGNAL))
            }
            if n < 0 {
                if errno == EINTR { continue }
                if errno == EAGAIN || errno == EWOULDBLOCK { return }
                drop(c); return
            }
            c.offset += n
        }
        shutdown(c.fd, Int32(SHUT_WR))
        drop(c)
    }

    func drop(_ c: Client) {
        guard clients.removeValue(forKey: c.fd) != nil else { return }
        close(c.fd)
    }
}
