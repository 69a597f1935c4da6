// Parsers for the value syntaxes used in profile and topology documents: IP prefixes,
// UUIDs, URIs, bandwidth units, booleans, port ranges. Pure functions, any thread.

import VSwitchPolicy

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif


enum ValueSyntax {
    static func isHex(_ c: Character) -> Bool { c.isASCII && c.isHexDigit }

    /// `8-4-4-4-12` hexadecimal digits.
    static func isUUID(_ s: String) -> Bool {
        guard s.utf8.count == 36 else { return false }
        let groups = s.split(separator: "-", omittingEmptySubsequences: false)
        guard groups.count == 5 else { return false }
        for (g, n) in zip(groups, [8, 4, 4, 4, 12]) where g.count != n || !g.allSatisfy(isHex) { return false }
        return true
    }

    /// An absolute URI (RFC 3986): `scheme:` followed by at least one character, only URI characters,
    /// percent signs followed by two hex digits. Returns nil when valid, else why not.
    static func uriProblem(_ s: String) -> String? {
        if isPlainValidURI(s) { return nil }
        return uriProblemSlow(s)
    }

    /// URI characters after the scheme (RFC 3986 unreserved, reserved, '%'), as a byte table.
    private static let uriByte: [Bool] = {
        var t = [Bool](repeating: false, count: 256)
        for b in "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~:/?#[]@!$&'()*+,;=%".utf8 { t[Int(b)] = true }
        return t
    }()

    @inline(__always) private static func isHexByte(_ b: UInt8) -> Bool {
        (b >= 48 && b <= 57) || (b >= 65 && b <= 70) || (b >= 97 && b <= 102)
    }

    /// The common case of `uriProblem` over UTF-8 bytes: true only for an all-ASCII valid URI (the
    /// slow path then has nothing to say); anything else goes to the slow path, which words the problem.
    private static func isPlainValidURI(_ s: String) -> Bool {
        var u = s
        return u.withUTF8 { b -> Bool in
            guard let colon = b.firstIndex(of: UInt8(ascii: ":")), colon > 0 else { return false }
            let first = b[0]
            guard (first >= 65 && first <= 90) || (first >= 97 && first <= 122) else { return false }
            for k in 1..<colon {
                let c = b[k]
                let ok = (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || (c >= 48 && c <= 57) || c == 43 || c == 45 || c == 46
                if !ok { return false }
            }
            guard colon + 1 < b.count else { return false }
            var i = colon + 1
            while i < b.count {
                let c = b[i]
                guard uriByte[Int(c)] else { return false }
                if c == UInt8(ascii: "%") {
                    guard i + 2 < b.count, isHexByte(b[i + 1]), isHexByte(b[i + 2]) else { return false }
                    i += 2
                }
                i += 1
            }
            return true
        }
    }

    private static func uriProblemSlow(_ s: String) -> String? {
        guard let colon = s.firstIndex(of: ":") else { return "it has no scheme (expected scheme:rest, e.g. urn:example:profile:web)" }
        let scheme = s[..<colon]
        guard let first = scheme.first, first.isASCII, first.isLetter,
              scheme.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "+" || $0 == "-" || $0 == ".") }) else {
            return "its scheme '\(scheme)' is not a letter followed by letters, digits, '+', '-' or '.'"
        }
        let rest = s[s.index(after: colon)...]
        guard !rest.isEmpty else { return "nothing follows the scheme '\(scheme):'" }
        let allowed = Set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~:/?#[]@!$&'()*+,;=%")
        let chars = Array(rest)
        var i = 0
        while i < chars.count {
            let c = chars[i]
            if !allowed.contains(c) { return "it contains '\(c)', which is not allowed in a URI (percent-encode it)" }
            if c == "%" {
                guard i + 2 < chars.count, isHex(chars[i + 1]), isHex(chars[i + 2]) else {
                    return "'%' is not followed by two hexadecimal digits"
                }
                i += 2
            }
            i += 1
        }
        return nil
    }

    /// `s.uppercased() == "ANY"`, without building the upper-case string for ASCII text.
    static func isAny(_ s: String) -> Bool {
        let u = s.utf8
        if u.allSatisfy({ $0 < 0x80 }) {
            guard u.count == 3 else { return false }
            var k = 0
            for (c, want) in zip(u, "ANY".utf8) {
                if (c >= 97 && c <= 122 ? c & ~0x20 : c) != want { return false }
                k += 1
            }
            return k == 3
        }
        return s.uppercased() == "ANY"
    }

    /// `true`, `false`, `1`, `0` (xs:boolean).
    static func bool(_ s: String) -> Bool? {
        switch s {
        case "true", "1": return true
        case "false", "0": return false
        default: return nil
        }
    }

    /// A decimal unsigned integer (digits only, no sign), or nil. Leading zeros are accepted.
    /// (Over the UTF-8 bytes in one pass; nil on overflow, as `UInt64(s)`.)
    static func unsigned(_ s: String) -> UInt64? {
        var u = s
        return u.withUTF8 { b -> UInt64? in
            guard !b.isEmpty else { return nil }
            var v: UInt64 = 0
            for c in b {
                guard c >= 48, c <= 57 else { return nil }
                let (times10, o1) = v.multipliedReportingOverflow(by: 10)
                let (sum, o2) = times10.addingReportingOverflow(UInt64(c &- 48))
                if o1 || o2 { return nil }
                v = sum
            }
            return v
        }
    }

    /// DMTF programmatic units for bandwidth → bits per second per unit. Whitespace-insensitive.
    static let bandwidthUnits: [(canonical: String, multiplier: UInt64)] = [
        ("bit / second", 1),
        ("bit / second * 10^3", 1_000),
        ("bit / second * 10^6", 1_000_000),
        ("bit / second * 10^9", 1_000_000_000),
    ]

    static func bandwidthUnit(_ s: String) -> (canonical: String, multiplier: UInt64)? {
        let squeezed = s.filter { !$0.isWhitespace }
        return bandwidthUnits.first { $0.canonical.filter { !$0.isWhitespace } == squeezed }
    }

    static func multiplier(ofUnits s: String?) -> UInt64? {
        guard let s else { return nil }
        return bandwidthUnit(s)?.multiplier
    }

    /// `N` or `lo-hi`, 0...65535, lo ≤ hi.
    static func portRange(_ s: String) -> ClosedRange<UInt16>? {
        // Fast path over the bytes: digits, at most one '-', digits (what the slow path accepts).
        var u = s
        let fast: ClosedRange<UInt16>?? = u.withUTF8 { b in
            var values: (UInt64, UInt64) = (0, 0)
            var part = 0, digits = 0
            for c in b {
                if c == UInt8(ascii: "-") {
                    guard part == 0, digits > 0 else { return .some(nil) }
                    part = 1; digits = 0
                    continue
                }
                guard c >= 48, c <= 57 else { return .some(nil) }
                digits += 1
                if digits > 19 { return nil }   // leave overflow handling to the slow path
                if part == 0 { values.0 = values.0 * 10 + UInt64(c - 48) } else { values.1 = values.1 * 10 + UInt64(c - 48) }
            }
            guard digits > 0 else { return .some(nil) }
            let lo = values.0, hi = part == 1 ? values.1 : values.0
            guard lo <= 65535, hi <= 65535, lo <= hi else { return .some(nil) }
            return .some(UInt16(lo)...UInt16(hi))
        }
        if let fast { return fast }
        let parts = s.split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count == 1 || parts.count == 2 else { return nil }
        var values: [UInt16] = []
        for p in parts {
            guard let v = unsigned(String(p)), v <= 65535 else { return nil }
            values.append(UInt16(v))
        }
        guard values.first! <= values.last! else { return nil }
        return values.first!...values.last!
    }

    /// Levenshtein distance, for "did you mean" suggestions.
    static func distance(_ a: String, _ b: String) -> Int {
        let x = Array(a.lowercased()), y = Array(b.lowercased())
        if x.isEmpty { return y.count }
        if y.isEmpty { return x.count }
        var previous = Array(0...y.count)
        for i in 1...x.count {
            var current = [i] + Array(repeating: 0, count: y.count)
            for j in 1...y.count {
                current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (x[i - 1] == y[j - 1] ? 0 : 1))
            }
            previous = current
        }
        return previous[y.count]
    }

    /// The closest candidate when it is plausibly a typo.
    static func suggestion(for name: String, among candidates: [String]) -> String? {
        let scored = candidates.map { ($0, distance(name, $0)) }.min { $0.1 < $1.1 }
        guard let (best, d) = scored, d <= max(2, (name.count + 2) / 3) else { return nil }
        return best
    }
}

/// "Did you mean" hints for misspelt element and attribute names.
public enum Suggestion {
    /// The closest candidate when it is plausibly a typo of `name`.
    public static func closest(to name: String, among candidates: [String]) -> String? {
        ValueSyntax.suggestion(for: name, among: candidates)
    }

    /// ` (did you mean X?)`, or an empty string.
    public static func hint(for name: String, among candidates: [String]) -> String {
        closest(to: name, among: candidates).map { " (did you mean \($0)?)" } ?? ""
    }
}
