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
        var o = other
        o.prefixLength = effectivePrefixLength
        return o.masked == masked
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
