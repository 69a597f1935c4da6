// VSwitchControl — the control protocol between vswitchctl and vswitchd.
//
// Design
// - One request or response per line: a JSON object terminated by "\n" on a Unix stream
//   socket (docs/control-protocol.md). Requests name a command and carry named arguments;
//   responses carry `ok` and either a `result` (any JSON) or a one-line `error`.
// - `JSON` is a small value type for arbitrary documents: the daemon builds results as
//   JSON values, vswitchctl renders them as text, JSON or the Prometheus text format.
//   Encoding is hand-written (fast, deterministic: object keys sorted); decoding uses
//   Foundation's JSONDecoder.
// - This module knows nothing about the switch internals: it depends on Foundation only,
//   so the client stays small and the daemon's model can be tested through it.
//
// Threading
// - Plain values and pure functions, callable from any thread. `ControlClient` is a
//   blocking client for one thread (vswitchctl, tests).

import Foundation

/// Any JSON document.
public enum JSON: Equatable, Sendable, Codable, CustomStringConvertible {
    case null
    case bool(Bool)
    case int(Int)
    case double(Double)
    case string(String)
    case array([JSON])
    case object([String: JSON])

    public init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() { self = .null }
        else if let b = try? c.decode(Bool.self) { self = .bool(b) }
        else if let i = try? c.decode(Int.self) { self = .int(i) }
        else if let d = try? c.decode(Double.self) { self = .double(d) }
        else if let s = try? c.decode(String.self) { self = .string(s) }
        else if let a = try? c.decode([JSON].self) { self = .array(a) }
        else if let o = try? c.decode([String: JSON].self) { self = .object(o) }
        else { throw DecodingError.dataCorruptedError(in: c, debugDescription: "not a JSON value") }
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        switch self {
        case .null: try c.encodeNil()
        case .bool(let b): try c.encode(b)
        case .int(let i): try c.encode(i)
        case .double(let d): try c.encode(d)
        case .string(let s): try c.encode(s)
        case .array(let a): try c.encode(a)
        case .object(let o): try c.encode(o)
        }
    }

    /// Parses one JSON document.
    public static func parse(_ data: Data) throws -> JSON {
        try JSONDecoder().decode(JSON.self, from: data)
    }

    public static func parse(_ text: String) throws -> JSON { try parse(Data(text.utf8)) }

    // MARK: accessors

    public subscript(key: String) -> JSON? {
        if case .object(let o) = self { return o[key] }
        return nil
    }

    public var stringValue: String? { if case .string(let s) = self { return s }; return nil }
    public var boolValue: Bool? { if case .bool(let b) = self { return b }; return nil }
    public var intValue: Int? {
        switch self {
        case .int(let i): return i
        case .double(let d) where d == d.rounded() && abs(d) < 9e15: return Int(d)
        default: return nil
        }
    }
    public var arrayValue: [JSON]? { if case .array(let a) = self { return a }; return nil }
    public var objectValue: [String: JSON]? { if case .object(let o) = self { return o }; return nil }
    public var isNull: Bool { self == .null }

    // MARK: encoding

    /// Compact encoding on one line, object keys sorted.
    public var description: String { var s = ""; write(to: &s, indent: nil, level: 0); return s }

    /// Indented encoding (two spaces), object keys sorted.
    public var pretty: String { var s = ""; write(to: &s, indent: "  ", level: 0); return s }

    func write(to s: inout String, indent: String?, level: Int) {
        switch self {
        case .null: s += "null"
        case .bool(let b): s += b ? "true" : "false"
        case .int(let i): s += String(i)
        case .double(let d): s += d.isFinite ? (d == d.rounded() && abs(d) < 1e15 ? String(Int(d)) : String(d)) : "null"
        case .string(let str): JSON.quote(str, into: &s)
        case .array(let a):
            if a.isEmpty { s += "[]"; return }
            s += "["
            for (i, v) in a.enumerated() {
                if i > 0 { s += "," }
                newline(&s, indent, level + 1)
                v.write(to: &s, indent: indent, level: level + 1)
            }
            newline(&s, indent, level)
            s += "]"
        case .object(let o):
            if o.isEmpty { s += "{}"; return }
            s += "{"
            for (i, k) in o.keys.sorted().enumerated() {
                if i > 0 { s += "," }
                newline(&s, indent, level + 1)
                JSON.quote(k, into: &s)
                s += indent == nil ? ":" : ": "
                o[k]!.write(to: &s, indent: indent, level: level + 1)
            }
            newline(&s, indent, level)
            s += "}"
        }
    }

    private func newline(_ s: inout String, _ indent: String?, _ level: Int) {
        guard let indent else { return }
        s += "\n"
        for _ in 0..<level { s += indent }
    }

    static func quote(_ str: String, into s: inout String) {
        s += "\""
        for u in str.unicodeScalars {
            switch u {
            case "\"": s += "\\\""
            case "\\": s += "\\\\"
            case "\n": s += "\\n"
            case "\r": s += "\\r"
            case "\t": s += "\\t"
            case _ where u.value < 0x20:
                let hex = String(u.value, radix: 16)
                s += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: s.unicodeScalars.append(u)
            }
        }
        s += "\""
    }
}

extension JSON: ExpressibleByStringLiteral, ExpressibleByIntegerLiteral, ExpressibleByBooleanLiteral,
                ExpressibleByArrayLiteral, ExpressibleByDictionaryLiteral, ExpressibleByNilLiteral {
    public init(stringLiteral value: String) { self = .string(value) }
    public init(integerLiteral value: Int) { self = .int(value) }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(arrayLiteral elements: JSON...) { self = .array(elements) }
    public init(dictionaryLiteral elements: (String, JSON)...) {
        self = .object(Dictionary(elements, uniquingKeysWith: { _, b in b }))
    }
    public init(nilLiteral: ()) { self = .null }
}

extension JSON {
    /// A counter (saturates at Int.max, which a 64-bit counter never reaches in practice).
    public static func count(_ v: UInt64) -> JSON { .int(v > UInt64(Int.max) ? Int.max : Int(v)) }
    public static func optional(_ s: String?) -> JSON { s.map { .string($0) } ?? .null }
}
