// IPPrefix: an IPv4 or IPv6 address with an optional prefix length, parsed with inet_pton.
// Used by the profile reader (validation) and by the policy compiler (ACL matching). Control path only.

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// An IPv4 or IPv6 address with an optional prefix length: `10.0.0.0/8`, `fe80::1`, `2001:db8::/32`.
public struct IPPrefix: Hashable, Sendable, CustomStringConvertible {
    public enum Family: Int, Sendable { case ipv4 = 4, ipv6 = 6 }
    public var family: Family
    /// Network-order bytes (4 or 16).
    public var bytes: [UInt8]
    /// The prefix length as written; nil when the text had no `/`.
    public var prefixLength: Int?

    /// Parses `address[/prefix]`; nil when the address or prefix is not valid for its family.
    public init?(_ text: String) {
        if let fast = IPPrefix.parseASCII(text) {
            guard let value = fast else { return nil }
            self = value
            return
        }
        let parts = text.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
        let address = String(parts[0])
        if address.contains(":") {
            var a = in6_addr()
            guard inet_pton(AF_INET6, address, &a) == 1 else { return nil }
            family = .ipv6
            bytes = withUnsafeBytes(of: &a) { Array($0) }
        } else {
            // inet_pton(AF_INET) accepts only dotted quads (no "10.1", no octal), which is what we want.
            var a = in_addr()
            guard inet_pton(AF_INET, address, &a) == 1 else { return nil }
            family = .ipv4
            bytes = withUnsafeBytes(of: &a) { Array($0) }
        }
        if parts.count == 2 {
            let p = parts[1]
            guard !p.isEmpty, p.count <= 3, p.allSatisfy({ $0.isASCII && $0.isNumber }), let n = Int(p),
                  n <= maxPrefixLength else { return nil }
            prefixLength = n
        } else {
            prefixLength = nil
        }
    }

    private init(family: Family, bytes: [UInt8], prefixLength: Int?) {
        self.family = family; self.bytes = bytes; self.prefixLength = prefixLength
    }

    /// The same parse over the bytes of ASCII text (no splitting into Strings): `.some(nil)` when the
    /// text is not valid, nil when it is not ASCII (the general parser then decides; inet_pton accepts
    /// only ASCII anyway).
    private static func parseASCII(_ text: String) -> IPPrefix?? {
        var t = text
        return t.withUTF8 { u -> IPPrefix?? in
            guard u.count < 64, u.allSatisfy({ $0 < 0x80 }) else { return nil }
            let slash = u.firstIndex(of: UInt8(ascii: "/"))
            let addressEnd = slash ?? u.count
            var prefixLength: Int? = nil
            if let slash {
                let digits = u[(slash + 1)...]
                guard !digits.isEmpty, digits.count <= 3, digits.allSatisfy({ $0 >= 48 && $0 <= 57 }) else { return .some(nil) }
                prefixLength = digits.reduce(0) { $0 * 10 + Int($1 - 48) }
            }
            // NUL-terminated copy of the address part for inet_pton.
            var buffer = (UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0))
            return withUnsafeMutableBytes(of: &buffer) { raw -> IPPrefix?? in
                for k in 0..<addressEnd { raw[k] = u[k] }
                raw[addressEnd] = 0
                let name = raw.baseAddress!.assumingMemoryBound(to: CChar.self)
                let family: Family
                let bytes: [UInt8]
                if u[..<addressEnd].contains(UInt8(ascii: ":")) {
                    var a = in6_addr()
                    guard inet_pton(AF_INET6, name, &a) == 1 else { return .some(nil) }
                    family = .ipv6
                    bytes = withUnsafeBytes(of: &a) { Array($0) }
                } else {
                    var a = in_addr()
                    guard inet_pton(AF_INET, name, &a) == 1 else { return .some(nil) }
                    family = .ipv4
                    bytes = withUnsafeBytes(of: &a) { Array($0) }
                }
                if let n = prefixLength, n > (family == .ipv4 ? 32 : 128) { return .some(nil) }
                return .some(IPPrefix(family: family, bytes: bytes, prefixLength: prefixLength))
            }
        }
    }

    public var maxPrefixLength: Int { family == .ipv4 ? 32 : 128 }
    /// The prefix length, a full-length host prefix when none was written.
    public var effectivePrefixLength: Int { prefixLength ?? maxPrefixLength }

    /// True when bits beyond the prefix length are set (`10.0.0.1/8`).
    public var hasHostBits: Bool { masked != bytes }

    /// The address with the bits beyond the prefix cleared.
    public var masked: [UInt8] {
        var out = bytes
        let len = effectivePrefixLength
        for i in 0..<out.count {
            let bitsHere = max(0, min(8, len - i * 8))
            let mask: UInt8 = bitsHere == 0 ? 0 : UInt8(truncatingIfNeeded: 0xFF << (8 - bitsHere))
            out[i] &= mask
        }
        return out
    }

    /// Whether every address of `other` is inside `self`.
    public func contains(_ other: IPPrefix) -> Bool {
        guard family == other.family, other.effectivePrefixLength >= effectivePrefixLength else { return false }
        // Both masked to this prefix's length and compared, byte by byte in place (no arrays built: the ACL
        // shadowing check calls this for every pair of rules, issue 3).
        guard bytes.count == other.bytes.count else { return false }
        let len = effectivePrefixLength
        for i in 0..<bytes.count {
            let bitsHere = max(0, min(8, len - i * 8))
            let mask: UInt8 = bitsHere == 0 ? 0 : UInt8(truncatingIfNeeded: 0xFF << (8 - bitsHere))
            if bytes[i] & mask != other.bytes[i] & mask { return false }
        }
        return true
    }

    /// The address part in canonical text form (inet_ntop).
    public var addressText: String {
        var buffer = [CChar](repeating: 0, count: 64)
        var copy = bytes
        let ok = copy.withUnsafeMutableBytes { raw in
            inet_ntop(family == .ipv4 ? AF_INET : AF_INET6, raw.baseAddress, &buffer, socklen_t(buffer.count)) != nil
        }
        guard ok else { return "?" }
        let end = buffer.firstIndex(of: 0) ?? buffer.count
        return String(decoding: buffer[..<end].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// `address/prefix` with the host bits cleared (what the prefix should have been written as).
    public var networkText: String {
        var n = self
        n.bytes = masked
        return "\(n.addressText)/\(effectivePrefixLength)"
    }

    public var description: String {
        prefixLength.map { "\(addressText)/\($0)" } ?? addressText
    }
}
