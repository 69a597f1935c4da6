// CompiledPort: everything a port profile says, compiled for the forwarding
// core. `PortPolicy` holds the fixed-size part (flags, VLAN set, rates); the
// variable-size parts (allow-lists, ACL rules) are plain arrays here and are
// flattened into the configuration snapshot's raw storage by VSwitchCore, so
// the per-frame path only ever sees pointers and integers.
//
// ACL semantics (port-profile.md): rules of one direction are evaluated in
// decreasing Weight, first match wins, then the direction's default action.
// "Local" is the virtual system's side: for Outbound (from the VS) the local
// side is the source, for Inbound (towards the VS) the destination. A rule
// with Direction=Both is compiled into both lists.

import VSwitchPacket

/// One ACL rule as match fields over a frame's `FlowKey`. POD.
public struct ACLMatchRule: Equatable, Sendable {
    public struct Fields: OptionSet, Sendable, Equatable {
        public let rawValue: UInt32
        @inlinable public init(rawValue: UInt32) { self.rawValue = rawValue }
        @inlinable public static var localMAC: Fields { Fields(rawValue: 1 << 0) }
        @inlinable public static var remoteMAC: Fields { Fields(rawValue: 1 << 1) }
        @inlinable public static var etherType: Fields { Fields(rawValue: 1 << 2) }
        @inlinable public static var vlan: Fields { Fields(rawValue: 1 << 3) }
        @inlinable public static var priority: Fields { Fields(rawValue: 1 << 4) }
        @inlinable public static var localIP: Fields { Fields(rawValue: 1 << 5) }
        @inlinable public static var remoteIP: Fields { Fields(rawValue: 1 << 6) }
        @inlinable public static var ipFamily: Fields { Fields(rawValue: 1 << 7) }
        @inlinable public static var proto: Fields { Fields(rawValue: 1 << 8) }
        @inlinable public static var localPort: Fields { Fields(rawValue: 1 << 9) }
        @inlinable public static var remotePort: Fields { Fields(rawValue: 1 << 10) }
        @inlinable public static var icmpType: Fields { Fields(rawValue: 1 << 11) }
        @inlinable public static var icmpCode: Fields { Fields(rawValue: 1 << 12) }
        /// An IP address attribute given as ANY: the frame must be IP (either family), nothing more.
        @inlinable public static var anyIP: Fields { Fields(rawValue: 1 << 13) }
        /// Fields that need the L3/L4 part of the flow key.
        @inlinable public static var l3: Fields { Fields(rawValue: 0b11_1111_1110_0000) }
    }

    public var fields: Fields = []
    public var allow: Bool = true
    public var weight: Int32 = 0
    public var localMAC: UInt64 = 0
    public var remoteMAC: UInt64 = 0
    public var etherType: UInt16 = 0
    public var vlan: UInt16 = 0
    public var priority: UInt8 = 0
    /// 4 or 6 when an address or ANY-with-family is given.
    public var ipVersion: UInt8 = 0
    public var proto: UInt8 = 0
    public var icmpType: UInt8 = 0
    public var icmpCode: UInt8 = 0
    /// Addresses as 128-bit values (IPv4 in the low 32 bits) with masks.
    public var localIPHi: UInt64 = 0, localIPLo: UInt64 = 0, localMaskHi: UInt64 = 0, localMaskLo: UInt64 = 0
    public var remoteIPHi: UInt64 = 0, remoteIPLo: UInt64 = 0, remoteMaskHi: UInt64 = 0, remoteMaskLo: UInt64 = 0
    public var localPortLo: UInt16 = 0, localPortHi: UInt16 = 0
    public var remotePortLo: UInt16 = 0, remotePortHi: UInt16 = 0

    public init() {}
}

/// What the ACL matcher and the guards look at, extracted once per frame (only when needed).
///
/// Layout: exactly eight 64-bit words with no padding (src | dst | etherType vlan pcp ipVersion
/// proto hasL4 | srcIPHi | srcIPLo | dstIPHi | dstIPLo | srcPort dstPort reserved), so the ACL
/// verdict cache masks, hashes and compares a key as eight words (`words`, `mask(for:)`) instead
/// of field by field. Stored properties are laid out in declaration order; a unit test pins the
/// size and offsets.
public struct FlowKey {
    /// `ipVersion` of an IPv6 packet whose extension-header chain does not reach the upper layer in the frame.
    public static let unparsableIPv6: UInt8 = 0xFF
    public var src: UInt64 = 0
    public var dst: UInt64 = 0
    public var etherType: UInt16 = 0
    public var vlan: UInt16 = 0
    public var pcp: UInt8 = 0
    /// 0 = not IP, 4 or 6; `unparsableIPv6` for an IPv6 packet whose header chain runs past the frame
    /// (the engine drops those as malformed before any rule or guard sees the key).
    public var ipVersion: UInt8 = 0
    public var proto: UInt8 = 0
    /// L4 header present (not a non-first fragment, long enough).
    public var hasL4: Bool = false
    public var srcIPHi: UInt64 = 0, srcIPLo: UInt64 = 0
    public var dstIPHi: UInt64 = 0, dstIPLo: UInt64 = 0
    /// TCP/UDP ports, or ICMP type/code in `srcPort`/`dstPort`.
    public var srcPort: UInt16 = 0
    public var dstPort: UInt16 = 0
    /// Fills the last word (always 0) so that no byte of the key is padding.
    public var reserved: UInt32 = 0
    @inlinable public init() {}

    /// Number of 64-bit words in a key.
    public static let wordCount = 8

    /// The all-ones pattern over the fields `masked(by: fields)` keeps: masking a key with it word by
    /// word gives `masked(by:)` (tested). Computed once per port and direction, at snapshot build.
    public static func mask(for fields: ACLMatchRule.Fields) -> FlowKey {
        var m = FlowKey()
        m.src = .max; m.dst = .max; m.etherType = .max; m.vlan = .max; m.pcp = .max
        m.ipVersion = .max; m.proto = .max
        m.srcIPHi = .max; m.srcIPLo = .max; m.dstIPHi = .max; m.dstIPLo = .max
        m.srcPort = .max; m.dstPort = .max
        var k = m.masked(by: fields)
        k.ipVersion = .max
        // hasL4 is a Bool: its byte is kept whole by setting the byte under it to 0xFF.
        withUnsafeMutableBytes(of: &k) { $0[MemoryLayout<FlowKey>.offset(of: \FlowKey.hasL4)!] = 0xFF }
        return k
    }

    /// The key with only the fields that `fields` (a union of rules' fields) can look at; used as
    /// the key of the ACL verdict cache, so flows that differ only in other fields share a verdict.
    @inlinable @inline(__always)
    public func masked(by fields: ACLMatchRule.Fields) -> FlowKey {
        let f = fields.rawValue
        var k = FlowKey()
        if f & (ACLMatchRule.Fields.localMAC.rawValue | ACLMatchRule.Fields.remoteMAC.rawValue) != 0 { k.src = src; k.dst = dst }
        if f & ACLMatchRule.Fields.etherType.rawValue != 0 { k.etherType = etherType }
        if f & ACLMatchRule.Fields.vlan.rawValue != 0 { k.vlan = vlan }
        if f & ACLMatchRule.Fields.priority.rawValue != 0 { k.pcp = pcp }
        k.ipVersion = ipVersion
        k.hasL4 = hasL4
        if f & (ACLMatchRule.Fields.localIP.rawValue | ACLMatchRule.Fields.remoteIP.rawValue) != 0 {
            k.srcIPHi = srcIPHi; k.srcIPLo = srcIPLo; k.dstIPHi = dstIPHi; k.dstIPLo = dstIPLo
        }
        if f & ACLMatchRule.Fields.proto.rawValue != 0 { k.proto = proto }
        if f & (ACLMatchRule.Fields.localPort.rawValue | ACLMatchRule.Fields.remotePort.rawValue
                | ACLMatchRule.Fields.icmpType.rawValue | ACLMatchRule.Fields.icmpCode.rawValue) != 0 {
            k.srcPort = srcPort; k.dstPort = dstPort
        }
        return k
    }

    @inlinable @inline(__always)
    public var hash: UInt64 {
        var h = src &* 0x9E37_79B9_7F4A_7C15
        h = (h ^ dst) &* 0xBF58_476D_1CE4_E5B9
        h = (h ^ (UInt64(etherType) << 48 | UInt64(vlan) << 32 | UInt64(pcp) << 24 | UInt64(ipVersion) << 16
                  | UInt64(proto) << 8 | (hasL4 ? 1 : 0))) &* 0x94D0_49BB_1331_11EB
        h = (h ^ srcIPHi ^ (srcIPLo &* 3)) &* 0x9E37_79B9_7F4A_7C15
        h = (h ^ dstIPHi ^ (dstIPLo &* 5)) &* 0xBF58_476D_1CE4_E5B9
        h = (h ^ (UInt64(srcPort) << 16 | UInt64(dstPort))) &* 0x94D0_49BB_1331_11EB
        return h ^ (h >> 31)
    }

    @inlinable @inline(__always)
    public func sameAs(_ o: FlowKey) -> Bool {
        src == o.src && dst == o.dst && etherType == o.etherType && vlan == o.vlan && pcp == o.pcp
            && ipVersion == o.ipVersion && proto == o.proto && hasL4 == o.hasL4
            && srcIPHi == o.srcIPHi && srcIPLo == o.srcIPLo && dstIPHi == o.dstIPHi && dstIPLo == o.dstIPLo
            && srcPort == o.srcPort && dstPort == o.dstPort
    }
}

public extension ACLMatchRule {
    /// Does the rule match a frame travelling `outbound` (from the virtual system) or inbound?
    @inlinable @inline(__always)
    func matches(_ k: FlowKey, outbound: Bool) -> Bool {
        let f = fields.rawValue
        if f == 0 { return true }
        let localMACv = outbound ? k.src : k.dst
        let remoteMACv = outbound ? k.dst : k.src
        if f & Fields.localMAC.rawValue != 0 && localMACv != localMAC { return false }
        if f & Fields.remoteMAC.rawValue != 0 && remoteMACv != remoteMAC { return false }
        if f & Fields.etherType.rawValue != 0 && k.etherType != etherType { return false }
        if f & Fields.vlan.rawValue != 0 && k.vlan != vlan { return false }
        if f & Fields.priority.rawValue != 0 && k.pcp != priority { return false }
        if f & Fields.l3.rawValue == 0 { return true }
        if k.ipVersion == 0 { return false }
        if f & Fields.ipFamily.rawValue != 0 && k.ipVersion != ipVersion { return false }
        let (lHi, lLo, rHi, rLo) = outbound ? (k.srcIPHi, k.srcIPLo, k.dstIPHi, k.dstIPLo) : (k.dstIPHi, k.dstIPLo, k.srcIPHi, k.srcIPLo)
        if f & Fields.localIP.rawValue != 0 && (lHi & localMaskHi != localIPHi || lLo & localMaskLo != localIPLo) { return false }
        if f & Fields.remoteIP.rawValue != 0 && (rHi & remoteMaskHi != remoteIPHi || rLo & remoteMaskLo != remoteIPLo) { return false }
        if f & Fields.proto.rawValue != 0 && k.proto != proto { return false }
        let (lPort, rPort) = outbound ? (k.srcPort, k.dstPort) : (k.dstPort, k.srcPort)
        if f & (Fields.localPort.rawValue | Fields.remotePort.rawValue | Fields.icmpType.rawValue | Fields.icmpCode.rawValue) != 0 {
            if !k.hasL4 { return false }
            if f & Fields.localPort.rawValue != 0 && (lPort < localPortLo || lPort > localPortHi) { return false }
            if f & Fields.remotePort.rawValue != 0 && (rPort < remotePortLo || rPort > remotePortHi) { return false }
            // ICMP: type travels in srcPort, code in dstPort (see FlowKey).
            if f & Fields.icmpType.rawValue != 0 && k.srcPort != UInt16(icmpType) { return false }
            if f & Fields.icmpCode.rawValue != 0 && k.dstPort != UInt16(icmpCode) { return false }
        }
        return true
    }
}

public struct CompiledPort: Equatable, Sendable {
    public var policy: PortPolicy
    /// AllowedToTransmit keys `vlan << 48 | mac` (vlan 0 = any VLAN the port carries).
    public var allowedTransmit: [UInt64] = []
    /// AllowedToReceive keys, same encoding; empty = no restriction.
    public var allowedReceive: [UInt64] = []
    /// Rules for frames towards the virtual system, by decreasing weight.
    public var inboundACL: [ACLMatchRule] = []
    /// Rules for frames from the virtual system, by decreasing weight.
    public var outboundACL: [ACLMatchRule] = []

    public init(policy: PortPolicy) { self.policy = policy }
}

public extension PolicyCompiler {
    /// Compiles every part of a validated profile.
    static func compilePort(_ p: PortProfile, switchMACLimit: UInt32? = nil, mtu: Int = 1500) -> CompiledPort {
        var policy = compile(p, switchMACLimit: switchMACLimit)
        policy.sourceMACFiltering = p.effectiveSourceMACFiltering
        policy.promiscuous = p.promiscuous ?? false
        policy.dhcpGuard = p.enableDhcpGuard ?? false
        policy.routerGuard = p.enableRouterGuard ?? false
        // Burst default (port-profile.md): max(2 × MTU, 10 ms of the rate), in bytes.
        func burst(_ rate: UInt64, _ given: UInt64?) -> UInt64 {
            given ?? max(UInt64(2 * (mtu + 18)), rate / 8 / 100)
        }
        if let l = p.limit, l > 0 { policy.transmitRate = l; policy.transmitBurst = burst(l, p.transmitBurstSize) }
        if let l = p.receiveBandwidthLimit, l > 0 { policy.receiveRate = l; policy.receiveBurst = burst(l, p.receiveBurstSize) }
        policy.broadcastStormLimit = p.broadcastStormLimit ?? 0
        policy.multicastStormLimit = p.multicastStormLimit ?? 0
        policy.unknownUnicastStormLimit = p.unknownUnicastStormLimit ?? 0
        policy.inboundDefaultDeny = p.inboundAclDefaultAction == .deny
        policy.outboundDefaultDeny = p.outboundAclDefaultAction == .deny

        var c = CompiledPort(policy: policy)
        c.allowedTransmit = p.allowedToTransmit.map { UInt64($0.vlan ?? 0) << 48 | $0.mac.rawValue }.sorted()
        c.allowedReceive = p.allowedToReceive.map { UInt64($0.vlan ?? 0) << 48 | $0.mac.rawValue }.sorted()
        // The rules' indices sorted, not the rules (each moved rule is a struct of strings: copies and
        // retains, issue 3); the same comparisons, so the same order.
        // Each rule compiled in list order (`map` hands it over in place: `compileRule(acls[i])` copied the rule out
        // of the array first, a retain and a release per string, ~0.6 % of a 1,000-profile reload, issue 3), then
        // the compiled rules taken in weight order; the two lists sized once (appending grew them step by step).
        let acls = p.acls
        let compiled = acls.map { compileRule($0) }
        var inbound = 0, outbound = 0
        for i in acls.indices {
            if acls[i].direction != .outbound { inbound += 1 }
            if acls[i].direction != .inbound { outbound += 1 }
        }
        c.inboundACL.reserveCapacity(inbound)
        c.outboundACL.reserveCapacity(outbound)
        let order = acls.indices.sorted { acls[$0].weight > acls[$1].weight }
        for i in order {
            if acls[i].direction != .outbound { c.inboundACL.append(compiled[i]) }
            if acls[i].direction != .inbound { c.outboundACL.append(compiled[i]) }
        }
        return c
    }

    internal static let protocolNames: [String: UInt8] = ["TCP": 6, "UDP": 17, "ICMP": 1, "ICMPV6": 58]

    /// `protocolNames[text.uppercased()]`: ASCII text folded to upper case byte by byte and compared in place (no
    /// upper-case copy, no hashing: ~0.4 % of a 1,000-profile reload, issue 3); other text the general way.
    internal static func protocolNumber(_ text: String) -> UInt8? {
        let u = text.utf8
        var ascii = true
        for c in u where c >= 0x80 { ascii = false; break }
        guard ascii else { return protocolNames[text.uppercased()] }
        func equalFolded(_ name: StaticString) -> Bool {
            guard u.count == name.utf8CodeUnitCount else { return false }
            let p = name.utf8Start
            var k = 0
            for c in u {
                if (c >= 97 && c <= 122 ? c & ~0x20 : c) != p[k] { return false }
                k += 1
            }
            return true
        }
        if equalFolded("TCP") { return 6 }
        if equalFolded("UDP") { return 17 }
        if equalFolded("ICMP") { return 1 }
        if equalFolded("ICMPV6") { return 58 }
        return nil
    }

    /// `text.uppercased() == "ANY"` without building the upper-case string for the usual (ASCII) text.
    internal static func isAny(_ text: String) -> Bool {
        let u = text.utf8
        if u.allSatisfy({ $0 < 0x80 }) {
            guard u.count == 3 else { return false }
            return u.map { $0 >= 97 && $0 <= 122 ? $0 & ~0x20 : $0 }.elementsEqual("ANY".utf8)
        }
        return text.uppercased() == "ANY"
    }

    /// `N` or `lo-hi` written with ASCII digits only (what the reader accepts), nil for anything else
    /// (the general parser then decides).
    internal static func plainRange(_ text: String) -> (UInt16, UInt16)? {
        var lo: UInt32 = 0, hi: UInt32 = 0, part = 0, digits = 0
        for c in text.utf8 {
            if c == UInt8(ascii: "-") {
                guard part == 0, digits > 0 else { return nil }
                part = 1; digits = 0
                continue
            }
            guard c >= 48, c <= 57, digits < 5 else { return nil }
            digits += 1
            if part == 0 { lo = lo * 10 + UInt32(c - 48) } else { hi = hi * 10 + UInt32(c - 48) }
        }
        guard digits > 0 else { return nil }
        if part == 0 { hi = lo }
        guard lo <= 65535, hi <= 65535 else { return nil }
        return (UInt16(lo), UInt16(hi))
    }

    static func compileRule(_ r: borrowing ACLRule) -> ACLMatchRule {
        var m = ACLMatchRule()
        m.allow = r.action == .allow
        m.weight = Int32(clamping: r.weight)
        if let v = r.localMAC { m.fields.insert(.localMAC); m.localMAC = v.rawValue }
        if let v = r.remoteMAC { m.fields.insert(.remoteMAC); m.remoteMAC = v.rawValue }
        if let v = r.etherType { m.fields.insert(.etherType); m.etherType = v }
        if let v = r.vlanID { m.fields.insert(.vlan); m.vlan = v }
        if let v = r.priority { m.fields.insert(.priority); m.priority = v }
        func address(_ text: String?) -> (hi: UInt64, lo: UInt64, mhi: UInt64, mlo: UInt64, version: UInt8)? {
            guard let text, !isAny(text), let ip = IPPrefix(text) else { return nil }
            // The address's words, masked below (as `ip.masked` would, without building that array).
            var hi: UInt64 = 0, lo: UInt64 = 0
            if ip.family == .ipv4 {
                lo = ip.bytes.reduce(0) { $0 << 8 | UInt64($1) }
            } else {
                hi = ip.bytes[0..<8].reduce(0) { $0 << 8 | UInt64($1) }
                lo = ip.bytes[8..<16].reduce(0) { $0 << 8 | UInt64($1) }
            }
            let bits = ip.effectivePrefixLength
            var mhi: UInt64 = 0, mlo: UInt64 = 0
            if ip.family == .ipv4 {
                mlo = bits == 0 ? 0 : (UInt64(0xFFFF_FFFF) << UInt64(32 - bits)) & 0xFFFF_FFFF
            } else {
                mhi = bits == 0 ? 0 : (bits >= 64 ? ~0 : ~UInt64(0) << UInt64(64 - bits))
                mlo = bits <= 64 ? 0 : (bits == 128 ? ~0 : ~UInt64(0) << UInt64(128 - bits))
            }
            return (hi & mhi, lo & mlo, mhi, mlo, ip.family == .ipv4 ? 4 : 6)
        }
        // ANY matches every IP frame and no other (README: an IP field never matches a non-IP frame).
        if let t = r.localIP, isAny(t) { m.fields.insert(.anyIP) }
        if let t = r.remoteIP, isAny(t) { m.fields.insert(.anyIP) }
        if let a = address(r.localIP) {
            m.fields.formUnion([.localIP, .ipFamily]); m.ipVersion = a.version
            (m.localIPHi, m.localIPLo, m.localMaskHi, m.localMaskLo) = (a.hi, a.lo, a.mhi, a.mlo)
        }
        if let a = address(r.remoteIP) {
            m.fields.formUnion([.remoteIP, .ipFamily]); m.ipVersion = a.version
            (m.remoteIPHi, m.remoteIPLo, m.remoteMaskHi, m.remoteMaskLo) = (a.hi, a.lo, a.mhi, a.mlo)
        }
        if let p = r.proto {
            if let n = protocolNumber(p) ?? UInt8(p) { m.fields.insert(.proto); m.proto = n }
        }
        func range(_ text: String?) -> (UInt16, UInt16)? {
            guard let text else { return nil }
            if let r = plainRange(text) { return r }
            let parts = text.split(separator: "-").compactMap { UInt16($0.trimmingCharacters(in: " ")) }
            if parts.count == 1 { return (parts[0], parts[0]) }
            if parts.count == 2 { return (parts[0], parts[1]) }
            return nil
        }
        if let (lo, hi) = range(r.localPort) { m.fields.insert(.localPort); m.localPortLo = lo; m.localPortHi = hi }
        if let (lo, hi) = range(r.remotePort) { m.fields.insert(.remotePort); m.remotePortLo = lo; m.remotePortHi = hi }
        if let t = r.icmpType { m.fields.insert(.icmpType); m.icmpType = t }
        if let c = r.icmpCode { m.fields.insert(.icmpCode); m.icmpCode = c }
        return m
    }
}

extension Substring {
    func trimmingCharacters(in set: Character) -> Substring {
        var s = self
        while s.first == set { s = s.dropFirst() }
        while s.last == set { s = s.dropLast() }
        return s
    }
}

/// Compiled ports kept across snapshot builds and reloads, so that a profile that did not change is
/// not compiled again (issue 3: a reload of 1,000 profiles where few changed).
///
/// An entry is keyed by the profile's ID and the port parameters (switch MAC limit, MTU) and holds the
/// profile value it was compiled from: it is used only when the profile given is equal (`==`, every
/// field) to that value, so a changed profile is always compiled again. `compilePort` is a pure
/// function of (profile, switchMACLimit, mtu), so a hit returns exactly what compiling would.
/// `endRound()` drops the entries not asked for since the previous `endRound()` (profiles removed,
/// changed or no longer bound), so the cache holds at most one round's worth. Not thread-safe: one
/// owner (the control thread) at a time.
public final class PolicyCompileCache {
    struct Key: Hashable {
        var id: String
        var switchMACLimit: UInt32?
        var mtu: Int
    }
    struct Entry {
        var profile: PortProfile
        var compiled: CompiledPort
        var round: UInt64
    }
    private var entries: [Key: Entry] = [:]
    private var round: UInt64 = 0
    /// Compilations done and avoided since creation (tests, benchmarks).
    public private(set) var compiles = 0
    public private(set) var hits = 0

    public init() {}

    /// Entries held.
    public var count: Int { entries.count }

    /// `PolicyCompiler.compilePort(p, switchMACLimit:, mtu:)`, from the cache when `p` is unchanged.
    public func compiledPort(_ p: PortProfile, switchMACLimit: UInt32? = nil, mtu: Int = 1500) -> CompiledPort {
        let key = Key(id: p.networkPortProfileID, switchMACLimit: switchMACLimit, mtu: mtu)
        if let e = entries[key], e.profile == p {
            hits += 1
            if e.round != round { entries[key]!.round = round }
            return e.compiled
        }
        compiles += 1
        let c = PolicyCompiler.compilePort(p, switchMACLimit: switchMACLimit, mtu: mtu)
        entries[key] = Entry(profile: p, compiled: c, round: round)
        return c
    }

    /// Ends a round (one snapshot build or reload): drops what the round did not use.
    public func endRound() {
        entries = entries.filter { $0.value.round == round }
        round += 1
    }

    /// Forgets everything.
    public func removeAll() { entries = [:] }
}
