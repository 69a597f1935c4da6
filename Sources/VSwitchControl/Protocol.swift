// The request/response protocol (docs/control-protocol.md) and a blocking client.

import Foundation
#if canImport(Glibc)
import Glibc
#endif

public enum ControlProtocol {
    /// Where vswitchd listens unless told otherwise (`--control-socket`, `$VSWITCH_CONTROL_SOCKET`).
    public static let defaultSocketPath = "/run/vswitch/vswitchd.sock"
    /// Largest request line the daemon accepts (bytes, without the newline).
    public static let maxRequestBytes = 1 << 20
    /// Protocol version, reported by `show`.
    public static let version = 1

    /// Every command the daemon understands.
    public static let commands: [String] = [
        "show", "add-port", "del-port", "set-port",
        "profile-load", "profile-reload", "profile-validate", "profile-export", "profile-show",
        "fdb-show", "fdb-flush", "fdb-add", "fdb-del", "fdb-stats",
        "port-stats", "set-switch", "metrics", "ping", "capture", "show-cim",
    ]
}

/// One request: `{"command": "...", "args": {...}, "id": N}` (`args` and `id` optional).
public struct ControlRequest: Equatable, Sendable {
    public var command: String
    public var args: [String: JSON]
    public var id: JSON?

    public init(_ command: String, _ args: [String: JSON] = [:], id: JSON? = nil) {
        self.command = command; self.args = args; self.id = id
    }

    public var json: JSON {
        var o: [String: JSON] = ["command": .string(command), "args": .object(args)]
        if let id { o["id"] = id }
        return .object(o)
    }

    /// The wire form: one line.
    public var line: String { json.description + "\n" }

    /// Parses one request line. Errors are one line, fit for an error response.
    public static func parse(_ data: Data) throws(ControlError) -> ControlRequest {
        let doc: JSON
        do { doc = try JSON.parse(data) } catch { throw ControlError("malformed request: not valid JSON") }
        guard case .object(let o) = doc else { throw ControlError("malformed request: expected a JSON object") }
        guard let command = o["command"]?.stringValue else {
            throw ControlError("malformed request: missing \"command\" (a string)")
        }
        var args: [String: JSON] = [:]
        if let a = o["args"], !a.isNull {
            guard case .object(let ao) = a else { throw ControlError("malformed request: \"args\" must be an object") }
            args = ao
        }
        for k in o.keys where !["command", "args", "id"].contains(k) {
            throw ControlError("malformed request: unknown field \"\(k)\"")
        }
        return ControlRequest(command, args, id: o["id"])
    }
}

/// One response: `{"ok": true, "result": ...}` or `{"ok": false, "error": "..."}` (plus `id` if the request had one).
public struct ControlResponse: Equatable, Sendable {
    public var ok: Bool
    public var result: JSON
    public var error: String?
    public var id: JSON?

    public static func success(_ result: JSON, id: JSON? = nil) -> ControlResponse {
        ControlResponse(ok: true, result: result, error: nil, id: id)
    }
    public static func failure(_ message: String, id: JSON? = nil) -> ControlResponse {
        ControlResponse(ok: false, result: .null, error: message, id: id)
    }

    public var json: JSON {
        var o: [String: JSON] = ["ok": .bool(ok)]
        if ok { o["result"] = result } else { o["error"] = .string(error ?? "error") }
        if let id { o["id"] = id }
        return .object(o)
    }

    public var line: String { json.description + "\n" }

    public static func parse(_ data: Data) throws(ControlError) -> ControlResponse {
        let doc: JSON
        do { doc = try JSON.parse(data) } catch { throw ControlError("malformed response from vswitchd") }
        guard let ok = doc["ok"]?.boolValue else { throw ControlError("malformed response from vswitchd: no \"ok\"") }
        return ControlResponse(ok: ok, result: doc["result"] ?? .null, error: doc["error"]?.stringValue, id: doc["id"])
    }
}

/// A one-line, operator-facing error.
public struct ControlError: Error, CustomStringConvertible, Equatable, Sendable {
    public let description: String
    public init(_ d: String) { description = d }
}

/// Argument access with one-line errors naming the argument.
extension ControlRequest {
    public func string(_ key: String) throws(ControlError) -> String {
        guard let v = args[key] else { throw ControlError("\(command): missing argument \"\(key)\"") }
        guard let s = v.stringValue else { throw ControlError("\(command): argument \"\(key)\" must be a string") }
        return s
    }
    public func optionalString(_ key: String) throws(ControlError) -> String? {
        guard let v = args[key], !v.isNull else { return nil }
        guard let s = v.stringValue else { throw ControlError("\(command): argument \"\(key)\" must be a string") }
        return s
    }
    public func optionalInt(_ key: String) throws(ControlError) -> Int? {
        guard let v = args[key], !v.isNull else { return nil }
        if let i = v.intValue { return i }
        if let s = v.stringValue, let i = Int(s) { return i }
        throw ControlError("\(command): argument \"\(key)\" must be an integer")
    }
    public func int(_ key: String) throws(ControlError) -> Int {
        guard let i = try optionalInt(key) else { throw ControlError("\(command): missing argument \"\(key)\"") }
        return i
    }
    public func stringArray(_ key: String) throws(ControlError) -> [String] {
        guard let v = args[key], !v.isNull else { return [] }
        guard let a = v.arrayValue else { throw ControlError("\(command): argument \"\(key)\" must be an array of strings") }
        var out: [String] = []
        for e in a {
            guard let s = e.stringValue else { throw ControlError("\(command): argument \"\(key)\" must be an array of strings") }
            out.append(s)
        }
        return out
    }
    /// Refuses arguments the command does not know (a typo must not be silently ignored).
    public func allowOnly(_ keys: Set<String>) throws(ControlError) {
        for k in args.keys.sorted() where !keys.contains(k) {
            throw ControlError("\(command): unknown argument \"\(k)\"")
        }
    }
}

/// A blocking client: connect, send one request, read one response.
public final class ControlClient {
    let fd: Int32
    var pending = Data()
    public let path: String

    public init(path: String = ControlProtocol.defaultSocketPath) throws(ControlError) {
        self.path = path
        let s = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard s >= 0 else { throw ControlError("cannot create a socket: \(String(cString: strerror(errno)))") }
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: addr.sun_path) else {
            Glibc.close(s)
            throw ControlError("control socket path too long: \(path)")
        }
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in
            for (i, b) in bytes.enumerated() { raw[i] = b }
        }
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(s, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        if rc != 0 {
            let e = errno
            Glibc.close(s)
            switch e {
            case EACCES, EPERM:
                throw ControlError("cannot connect to \(path): permission denied (the control socket is root-only; run as root)")
            case ENOENT, ECONNREFUSED:
                throw ControlError("cannot connect to \(path): vswitchd is not running (or uses another --control-socket)")
            default:
                throw ControlError("cannot connect to \(path): \(String(cString: strerror(e)))")
            }
        }
        fd = s
    }

    deinit { Glibc.close(fd) }

    /// Sends `request` and waits (up to `timeout` seconds) for its response.
    public func call(_ request: ControlRequest, timeout: Int32 = 30) throws(ControlError) -> ControlResponse {
        let err = sendAll(Data(request.line.utf8))
        if err != 0 { return try answerAfterFailedSend(err) }
        return try ControlResponse.parse(readLine(timeout: timeout))
    }

    public func send(_ data: Data) throws(ControlError) {
        let err = sendAll(data)
        if err != 0 { throw lostWhileSending(err) }
    }

    /// Sends all of `data`; 0, or the errno of the send that failed.
    func sendAll(_ data: Data) -> Int32 {
        var off = 0
        var err: Int32 = 0
        data.withUnsafeBytes { raw in
            while off < raw.count {
                let n = Glibc.send(fd, raw.baseAddress! + off, raw.count - off, Int32(MSG_NOSIGNAL))
                if n < 0 { if errno == EINTR { continue }; err = errno; return }
                off += n
            }
        }
        return err
    }

    func lostWhileSending(_ err: Int32) -> ControlError {
        ControlError("lost the connection to vswitchd while sending: \(String(cString: strerror(err)))")
    }

    /// After a send that failed with `err`: the daemon may have answered and closed without reading the request (it
    /// refuses a non-root peer, or one connection too many, that way), so the send got EPIPE or ECONNRESET while
    /// the daemon's answer waits in the receive queue. That answer is returned (it is what the operator must see);
    /// without one, the send's error is thrown.
    func answerAfterFailedSend(_ err: Int32) throws(ControlError) -> ControlResponse {
        guard err == EPIPE || err == ECONNRESET, let line = try? readLine(timeout: 1),
              let r = try? ControlResponse.parse(line) else { throw lostWhileSending(err) }
        return r
    }

    public func readLine(timeout: Int32) throws(ControlError) -> Data {
        var buf = [UInt8](repeating: 0, count: 1 << 20)
        var scanned = pending.startIndex   // bytes before this hold no newline (large responses: no rescans)
        while true {
            if let nl = pending[scanned...].firstIndex(of: 0x0A) {
                let line = pending[pending.startIndex..<nl]
                pending = Data(pending[(nl + 1)...])
                return Data(line)
            }
            var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let r = poll(&pfd, 1, timeout * 1000)
            if r == 0 { throw ControlError("vswitchd did not answer within \(timeout) s") }
            if r < 0 { if errno == EINTR { continue }; throw ControlError("poll failed: \(String(cString: strerror(errno)))") }
            let n = recv(fd, &buf, buf.count, 0)
            if n < 0 { if errno == EINTR { continue }; throw ControlError("lost the connection to vswitchd: \(String(cString: strerror(errno)))") }
            if n == 0 { throw ControlError("vswitchd closed the connection without an answer") }
            scanned = pending.endIndex
            pending.append(contentsOf: buf[0..<n])
        }
    }
}
