// MACAddress: a 48-bit Ethernet address held in the low bits of a UInt64.
// Plain value type; parsing and formatting happen on the control path only.

public struct MACAddress: Hashable, Comparable, Sendable, CustomStringConvertible {
    /// The address in the low 48 bits, first octet most significant.
    public let rawValue: UInt64

    @inlinable public init(rawValue: UInt64) { self.rawValue = rawValue & 0xFFFF_FFFF_FFFF }

    public init(_ o0: UInt8, _ o1: UInt8, _ o2: UInt8, _ o3: UInt8, _ o4: UInt8, _ o5: UInt8) {
        self.init(rawValue: UInt64(o0) << 40 | UInt64(o1) << 32 | UInt64(o2) << 24 | UInt64(o3) << 16 | UInt64(o4) << 8 | UInt64(o5))
    }

    /// Accepts `aa:bb:cc:dd:ee:ff`, `aa-bb-cc-dd-ee-ff` and `aabbccddeeff` (any case).
    public init?(_ text: String) {
        var hex = ""
        let parts: [Substring]
        if text.contains(":") { parts = text.split(separator: ":", omittingEmptySubsequences: false) }
        else if text.contains("-") { parts = text.split(separator: "-", omittingEmptySubsequences: false) }
        else { parts = [Substring(text)] }
        if parts.count == 6 {
            for p in parts { guard p.count == 2 else { return nil }; hex += p }
        } else if parts.count == 1, text.count == 12 {
            hex = text
        } else { return nil }
        guard hex.allSatisfy({ $0.isHexDigit }), let v = UInt64(hex, radix: 16) else { return nil }
        self.init(rawValue: v)
    }

    public static let broadcast = MACAddress(rawValue: 0xFFFF_FFFF_FFFF)
    public static let zero = MACAddress(rawValue: 0)

    @inlinable public var isMulticast: Bool { rawValue & 0x0100_0000_0000 != 0 }
    @inlinable public var isBroadcast: Bool { rawValue == 0xFFFF_FFFF_FFFF }
    @inlinable public var isZero: Bool { rawValue == 0 }
    @inlinable public var isUnicast: Bool { !isMulticast }

    public var octets: [UInt8] { (0..<6).map { UInt8(truncatingIfNeeded: rawValue >> (40 - 8 * UInt64($0))) } }

    public var description: String {
        octets.map { let s = String($0, radix: 16); return s.count == 1 ? "0" + s : s }.joined(separator: ":")
    }

    public static func < (a: MACAddress, b: MACAddress) -> Bool { a.rawValue < b.rawValue }
}
