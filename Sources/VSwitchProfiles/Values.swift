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

    /// `true`, `false`, `1`, `0` (xs:boolean).
    static func bool(_ s: String) -> Bool? {
        switch s {
        case "true", "1": return true
        case "false", "0": return false
        default: return nil
        }
    }

    /// A decimal unsigned integer (digits only, no sign), or nil. Leading zeros are accepted.
    static func unsigned(_ s: String) -> UInt64? {
        guard !s.isEmpty, s.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }) else { return nil }
        return UInt64(s)
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
