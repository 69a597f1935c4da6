// vsx:Acl rules: attribute syntax, consistency (IP families, prefixes, ports only with
// TCP/UDP, ICMP fields only with ICMP), (Direction, Weight) uniqueness and shadowing.

import VSwitchXML
import VSwitchPolicy
import VSwitchPacket

/// An IP prefix as two 64-bit words and its mask (no array, unlike `IPPrefix`): `ACLMatch` is then a plain
/// value, copied without retains (the shadowing check compares every pair of a profile's rules, issue 3).
struct IPKey: Equatable {
    var family: IPPrefix.Family
    /// The address (IPv4 in the low 32 bits of `lo`), as written (host bits kept).
    var hi: UInt64, lo: UInt64
    /// The prefix's mask over the same words.
    var maskHi: UInt64, maskLo: UInt64
    var length: Int

    init(_ p: IPPrefix) {
        family = p.family
        length = p.effectivePrefixLength
        hi = 0; lo = 0
        if p.family == .ipv4 {
            for b in p.bytes { lo = lo << 8 | UInt64(b) }
            maskHi = 0
            maskLo = length <= 0 ? 0 : (UInt64(0xFFFF_FFFF) << UInt64(32 - min(32, length))) & 0xFFFF_FFFF
        } else {
            for (i, b) in p.bytes.enumerated() {
                if i < 8 { hi = hi << 8 | UInt64(b) } else { lo = lo << 8 | UInt64(b) }
            }
            maskHi = length <= 0 ? 0 : (length >= 64 ? ~0 : ~UInt64(0) << UInt64(64 - length))
            maskLo = length <= 64 ? 0 : (length >= 128 ? ~0 : ~UInt64(0) << UInt64(128 - length))
        }
    }

    /// `IPPrefix.contains`: the same family, `other` at least as long, equal under this prefix's mask.
    func contains(_ other: IPKey) -> Bool {
        family == other.family && other.length >= length && (hi ^ other.hi) & maskHi == 0 && (lo ^ other.lo) & maskLo == 0
    }

    /// `IPPrefix.hasHostBits`: bits set beyond the prefix.
    var hasHostBits: Bool { (hi & ~maskHi) | (lo & ~maskLo) != 0 }
}

/// An ACL's match fields in comparable form (nil = wildcard).
struct ACLMatch {
    var localMAC: MACAddress?
    var remoteMAC: MACAddress?
    var etherType: UInt16?
    var vlan: UInt16?
    var priority: UInt8?
    var localIP: IPKey?
    var remoteIP: IPKey?
    var proto: UInt8?
    var localPort: ClosedRange<UInt16>?
    var remotePort: ClosedRange<UInt16>?
    var icmpType: UInt8?
    var icmpCode: UInt8?
    /// An address given as ANY: the rule matches IP frames only (of either family), nothing else narrows it.
    var ipOnly = false

    /// Whether the rule can only match frames the flow parser read as IP (the dataplane refuses every L3/L4
    /// field on a key with no IP version): an address (ANY included), a protocol, ports or ICMP fields.
    var requiresIP: Bool {
        ipOnly || localIP != nil || remoteIP != nil || proto != nil || localPort != nil || remotePort != nil
            || icmpType != nil || icmpCode != nil
    }

    /// The one EtherType every frame this rule matches has: its EtherType field, else the one its addresses imply
    /// (the flow parser sets the IP version, and so lets an address match, only for EtherType 0x0800 (IPv4) and
    /// 0x86DD (IPv6), after the same VLAN tags as the EtherType compared). Nil: frames of several EtherTypes —
    /// no field, or only a protocol (with ports or ICMP fields): IP of either version. Even ICMP (1) or ICMPv6
    /// (58) without an address is not pinned to one version, since the dataplane compares the IPv4 protocol
    /// and the IPv6 next header alike; so a protocol-only rule is never claimed covered by an EtherType rule.
    var impliedEtherType: UInt16? {
        if let etherType { return etherType }
        switch localIP?.family ?? remoteIP?.family {
        case .ipv4?: return 0x0800
        case .ipv6?: return 0x86DD
        case nil: return nil
        }
    }

    /// Whether every frame matched by `other` is matched by `self` (claimed only when certain: a missed warning
    /// is harmless, a wrong one is not).
    func covers(_ other: ACLMatch) -> Bool {
        func eq<T: Equatable>(_ a: T?, _ b: T?) -> Bool { a == nil || a == b }
        func ip(_ a: IPKey?, _ b: IPKey?) -> Bool { a == nil || (b != nil && a!.contains(b!)) }
        func range(_ a: ClosedRange<UInt16>?, _ b: ClosedRange<UInt16>?) -> Bool {
            a == nil || (b != nil && a!.lowerBound <= b!.lowerBound && b!.upperBound <= a!.upperBound)
        }
        // EtherType: other's own, or the one its addresses imply (a rule EtherType=0x0800 covers one with an IPv4 address).
        return eq(localMAC, other.localMAC) && eq(remoteMAC, other.remoteMAC) && (etherType == nil || etherType == other.impliedEtherType)
            && eq(vlan, other.vlan) && eq(priority, other.priority) && ip(localIP, other.localIP)
            && ip(remoteIP, other.remoteIP) && eq(proto, other.proto) && range(localPort, other.localPort)
            && range(remotePort, other.remotePort) && eq(icmpType, other.icmpType) && eq(icmpCode, other.icmpCode)
            && (!ipOnly || other.requiresIP)
    }
}

struct ACLReader {
    static let attributeNames = ["Name", "Direction", "Action", "Weight", "LocalMACAddress", "RemoteMACAddress",
                                 "EtherType", "VLANID", "Priority", "LocalIPAddress", "RemoteIPAddress", "Protocol",
                                 "LocalPort", "RemotePort", "ICMPType", "ICMPCode"]
    static let protocolNumbers: [String: UInt8] = ["TCP": 6, "UDP": 17, "ICMP": 1, "ICMPv6": 58]

    let label: String
    var out: DiagnosticCollector

    init(label: String, out: DiagnosticCollector) {
        self.label = label
        self.out = out
    }

    mutating func read(_ elements: [XMLElement], profile: PortProfile) -> [ACLRule] {
        // Three parallel arrays rather than one of tuples: the rules are returned as they are, not copied
        // out of tuples (each copy retains a rule's strings, issue 3).
        var rules: [ACLRule] = [], matches: [ACLMatch] = [], ruleElements: [XMLElement] = []
        rules.reserveCapacity(elements.count)
        matches.reserveCapacity(elements.count)
        ruleElements.reserveCapacity(elements.count)
        for e in elements where readRule(e, into: &rules, &matches) {
            ruleElements.append(e)
        }
        checkWeights(rules, ruleElements)
        checkShadowing(rules, matches, ruleElements)
        return rules
    }

    /// Indices (in `attributeNames`) of the attributes a rule reads.
    private enum Slot {
        static let name = 0, direction = 1, action = 2, weight = 3, localMAC = 4, remoteMAC = 5, etherType = 6,
                   vlanID = 7, priority = 8, localIP = 9, remoteIP = 10, proto = 11, localPort = 12, remotePort = 13,
                   icmpType = 14, icmpCode = 15
    }

    /// The index of `name` in `attributeNames`, nil for any other name: by length, then one or a few string
    /// comparisons (no hashing; `FastPathTests` checks it against `attributeNames`).
    static func slot(of name: String) -> Int? {
        switch name.utf8.count {
        case 4: return name == "Name" ? Slot.name : nil
        case 6: return name == "Action" ? Slot.action : name == "Weight" ? Slot.weight : name == "VLANID" ? Slot.vlanID : nil
        case 8:
            return name == "Priority" ? Slot.priority : name == "Protocol" ? Slot.proto
                : name == "ICMPType" ? Slot.icmpType : name == "ICMPCode" ? Slot.icmpCode : nil
        case 9: return name == "Direction" ? Slot.direction : name == "EtherType" ? Slot.etherType : name == "LocalPort" ? Slot.localPort : nil
        case 10: return name == "RemotePort" ? Slot.remotePort : nil
        case 14: return name == "LocalIPAddress" ? Slot.localIP : nil
        case 15: return name == "LocalMACAddress" ? Slot.localMAC : name == "RemoteIPAddress" ? Slot.remoteIP : nil
        case 16: return name == "RemoteMACAddress" ? Slot.remoteMAC : nil
        default: return nil
        }
    }

    /// Reads one rule; appends it and its match when it is valid (no tuple returned: each copy of a rule
    /// retains its strings, issue 3).
    private mutating func readRule(_ e: XMLElement, into rules: inout [ACLRule], _ matches: inout [ACLMatch]) -> Bool {
        var ok = true
        // Where each attribute of `attributeNames` is in `e.attributes` (-1: absent), found in one pass: the
        // first unprefixed attribute of that name, as `e.attribute(name)` would find it. (Eighteen lookups by
        // name, each a scan comparing strings and a copy of the attribute, were most of a rule's read, issue 3.)
        // (An InlineArray, not a SIMD16: a SIMD vector written at a variable index was stored to the stack and
        // reloaded whole at each write, a store-forwarding stall per attribute, ~0.7 % of a reload, issue 3.)
        var at = InlineArray<16, Int32>(repeating: -1)
        for i in e.attributes.indices where e.attributes[i].namespaceURI == nil {
            if let k = Self.slot(of: e.attributes[i].name), at[k] < 0 { at[k] = Int32(truncatingIfNeeded: i) }
        }
        /// The attribute in slot `k` (present).
        func attribute(_ k: Int) -> XMLAttribute { e.attributes[Int(at[k])] }
        /// The trimmed value of the attribute in slot `k`, nil when absent.
        func text(_ k: Int) -> String? { at[k] < 0 ? nil : XMLElement.trim(e.attributes[Int(at[k])].value) }
        func required(_ k: Int, _ valid: String) -> String? {
            guard let t = text(k) else {
                let name = Self.attributeNames[k]
                out.missingAttribute(e, name, profile: label, "vsx:Acl needs \(name) (\(valid))")
                ok = false
                return nil
            }
            return t
        }

        let name = required(Slot.name, "a name for the rule") ?? ""
        if at[Slot.name] >= 0, name.isEmpty { fail(e, attribute(Slot.name), "Name is empty"); ok = false }
        var direction = ACLDirection.both
        if let text = required(Slot.direction, "Inbound, Outbound or Both") {
            if let d = Self.direction(text) { direction = d }
            else { fail(e, attribute(Slot.direction), "'\(text)' is not a Direction; use Inbound (towards the virtual system), Outbound (from it) or Both"); ok = false }
        }
        var action = ACLAction.deny
        if let text = required(Slot.action, "Allow or Deny") {
            if let x = Self.action(text) { action = x }
            else { fail(e, attribute(Slot.action), "'\(text)' is not an Action; use Allow or Deny"); ok = false }
        }
        var weight = 0
        if let text = required(Slot.weight, "an integer 0..4294967295; higher is evaluated first") {
            if let w = ValueSyntax.unsigned(text), w <= UInt64(UInt32.max) { weight = Int(w) }
            else { fail(e, attribute(Slot.weight), "'\(text)' is not a Weight; expected an integer 0..4294967295 (higher is evaluated first)"); ok = false }
        }
        var rule = ACLRule(name: name, direction: direction, action: action, weight: weight)
        var m = ACLMatch()

        // Local then Remote, each field set directly (key-path writes through an array of pairs cost an
        // allocation and a generic projection per rule, issue 3).
        func mac(_ k: Int) -> MACAddress? {
            guard let text = text(k) else { return nil }
            if let mac = MACAddress(text) { return mac }
            fail(e, attribute(k), "'\(text)' is not a MAC address; write aa:bb:cc:dd:ee:ff, aa-bb-cc-dd-ee-ff or aabbccddeeff"); ok = false
            return nil
        }
        rule.localMAC = mac(Slot.localMAC)
        rule.remoteMAC = mac(Slot.remoteMAC)
        m.localMAC = rule.localMAC
        m.remoteMAC = rule.remoteMAC

        if let text = text(Slot.etherType) {
            var v: UInt64?
            if text.hasPrefix("0x") || text.hasPrefix("0X") { v = UInt64(text.dropFirst(2), radix: 16) }
            else { v = ValueSyntax.unsigned(text) }
            if let v, v >= 0x0600, v <= 0xFFFF { rule.etherType = UInt16(v) }
            else { fail(e, attribute(Slot.etherType), "'\(text)' is not an EtherType; expected 0x0600..0xFFFF (e.g. 0x0800 IPv4, 0x86DD IPv6, 0x0806 ARP); values below 0x0600 are frame lengths"); ok = false }
        }
        m.etherType = rule.etherType
        if let text = text(Slot.vlanID) {
            if let v = ValueSyntax.unsigned(text), (1...4094).contains(v) { rule.vlanID = UInt16(v) }
            else { fail(e, attribute(Slot.vlanID), "'\(text)' is not a VLAN ID; expected 1..4094"); ok = false }
        }
        m.vlan = rule.vlanID
        if let text = text(Slot.priority) {
            if let v = ValueSyntax.unsigned(text), v <= 7 { rule.priority = UInt8(v) }
            else { fail(e, attribute(Slot.priority), "'\(text)' is not an 802.1p priority; expected 0..7"); ok = false }
        }
        m.priority = rule.priority

        // The families of the addresses given (local first), with the slot of the attribute (at most two: no
        // array per rule).
        var families: (first: (IPPrefix.Family, Int)?, second: (IPPrefix.Family, Int)?) = (nil, nil)
        func ip(_ k: Int, local: Bool) {
            guard let text = text(k) else { return }
            if local { rule.localIP = text } else { rule.remoteIP = text }
            if ValueSyntax.isAny(text) { m.ipOnly = true; return }
            guard let prefix = IPPrefix(text) else {
                fail(e, attribute(k), "'\(text)' is not an IP address; expected IPv4 or IPv6 address[/prefix] (prefix ≤ 32 or ≤ 128) or ANY")
                ok = false
                return
            }
            let key = IPKey(prefix)
            if key.hasHostBits {
                fail(e, attribute(k), "'\(text)' has bits set beyond the /\(prefix.effectivePrefixLength) mask; did you mean \(prefix.networkText)?")
                ok = false
            }
            if local { m.localIP = key } else { m.remoteIP = key }
            if families.first == nil { families.first = (prefix.family, k) } else { families.second = (prefix.family, k) }
        }
        ip(Slot.localIP, local: true)
        ip(Slot.remoteIP, local: false)
        if let f0 = families.first, let f1 = families.second, f0.0 != f1.0 {
            fail(e, attribute(f1.1), "LocalIPAddress is IPv\(f0.0.rawValue) but RemoteIPAddress is IPv\(f1.0.rawValue); both must be the same family (or ANY)")
            ok = false
        }

        if let text = text(Slot.proto) {
            rule.proto = text
            if let n = Self.protocolNumber(text) {
                m.proto = n
            } else if let n = ValueSyntax.unsigned(text), n <= 255 {
                m.proto = UInt8(n)
            } else {
                fail(e, attribute(Slot.proto), "'\(text)' is not a Protocol; use TCP, UDP, ICMP, ICMPv6 or an IP protocol number 0..255")
                ok = false
            }
        }

        // Families implied by EtherType and Protocol must agree with the addresses.
        let family = families.first?.0
        if let et = rule.etherType, at[Slot.etherType] >= 0 {
            let a = attribute(Slot.etherType)
            if et == 0x0800, family == .ipv6 { fail(e, a, "EtherType 0x0800 (IPv4) with an IPv6 address; use 0x86DD or IPv4 addresses"); ok = false }
            if et == 0x86DD, family == .ipv4 { fail(e, a, "EtherType 0x86DD (IPv6) with an IPv4 address; use 0x0800 or IPv6 addresses"); ok = false }
            if et != 0x0800, et != 0x86DD, family != nil || m.proto != nil {
                fail(e, a, "EtherType \(Self.hex4(et)) is not IP, but the rule matches IP addresses or a protocol; use 0x0800 (IPv4) or 0x86DD (IPv6), or leave EtherType out")
                ok = false
            }
        }
        if let p = m.proto, at[Slot.proto] >= 0 {
            if p == 1, family == .ipv6 || rule.etherType == 0x86DD { fail(e, attribute(Slot.proto), "ICMP is IPv4's; for IPv6 use Protocol ICMPv6 (58)"); ok = false }
            if p == 58, family == .ipv4 || rule.etherType == 0x0800 { fail(e, attribute(Slot.proto), "ICMPv6 is IPv6's; for IPv4 use Protocol ICMP (1)"); ok = false }
        }

        func port(_ k: Int, local: Bool) {
            guard let text = text(k) else { return }
            if local { rule.localPort = text } else { rule.remotePort = text }
            guard let r = ValueSyntax.portRange(text) else {
                fail(e, attribute(k), "'\(text)' is not a port or port range; expected N or lo-hi with 0 ≤ lo ≤ hi ≤ 65535")
                ok = false
                return
            }
            if local { m.localPort = r } else { m.remotePort = r }
            if m.proto != 6, m.proto != 17 {
                fail(e, attribute(k), "ports only apply to TCP or UDP; add Protocol=\"TCP\" or Protocol=\"UDP\"")
                ok = false
            }
        }
        port(Slot.localPort, local: true)
        port(Slot.remotePort, local: false)
        func icmp(_ k: Int) -> UInt8? {
            guard let text = text(k) else { return nil }
            let key = Self.attributeNames[k]
            guard let v = ValueSyntax.unsigned(text), v <= 255 else {
                fail(e, attribute(k), "'\(text)' is not an ICMP \(k == Slot.icmpType ? "type" : "code"); expected 0..255")
                ok = false
                return nil
            }
            if m.proto != 1, m.proto != 58 {
                fail(e, attribute(k), "\(key) only applies to ICMP or ICMPv6; add Protocol=\"ICMP\" or Protocol=\"ICMPv6\"")
                ok = false
            }
            return UInt8(v)
        }
        rule.icmpType = icmp(Slot.icmpType)
        rule.icmpCode = icmp(Slot.icmpCode)
        m.icmpType = rule.icmpType
        m.icmpCode = rule.icmpCode
        if !ok { return false }
        rules.append(rule)
        matches.append(m)
        return true
    }

    /// `ACLDirection(rawValue:)`, the valid spellings compared first (one comparison, no string switch).
    static func direction(_ text: String) -> ACLDirection? {
        switch text.utf8.count {
        case 7: if text == "Inbound" { return .inbound }
        case 8: if text == "Outbound" { return .outbound }
        case 4: if text == "Both" { return .both }
        default: break
        }
        return ACLDirection(rawValue: text)
    }

    /// `ACLAction(rawValue:)`, the same way.
    static func action(_ text: String) -> ACLAction? {
        switch text.utf8.count {
        case 5: if text == "Allow" { return .allow }
        case 4: if text == "Deny" { return .deny }
        default: break
        }
        return ACLAction(rawValue: text)
    }

    /// The number of a protocol name, compared case-insensitively (TCP, udp, ICMPv6, …).
    static func protocolNumber(_ text: String) -> UInt8? {
        // ASCII text: compare the bytes folded to lower case (no Unicode case mapping turns non-ASCII
        // text into these ASCII names, so anything else takes the general comparison).
        if text.utf8.allSatisfy({ $0 < 0x80 }) {
            // (Compared in place, each byte folded: no lower-case copy.)
            func equalFolded(_ name: StaticString) -> Bool {
                let p = name.utf8Start
                var k = 0
                for c in text.utf8 {
                    if (c >= 65 && c <= 90 ? c | 0x20 : c) != p[k] { return false }
                    k += 1
                }
                return true
            }
            switch text.utf8.count {
            case 3: if equalFolded("tcp") { return 6 }; if equalFolded("udp") { return 17 }
            case 4: if equalFolded("icmp") { return 1 }
            case 6: if equalFolded("icmpv6") { return 58 }
            default: break
            }
            return nil
        }
        return protocolNumbers.first(where: { $0.key.lowercased() == text.lowercased() })?.value
    }

    static func hex4(_ v: UInt16) -> String {
        let h = String(v, radix: 16, uppercase: true)
        return "0x" + String(repeating: "0", count: max(0, 4 - h.count)) + h
    }

    /// (Direction, Weight) must be unique; Both counts as Inbound and Outbound.
    private struct DirectionWeight: Hashable {
        var inbound: Bool
        var weight: Int
    }

    private mutating func checkWeights(_ rules: [ACLRule], _ elements: [XMLElement]) {
        // Key (direction, weight) → index of the rule that took it. A profile's few rules are looked up in a
        // list (no hashing); many (a hostile document) in a dictionary.
        var used: [DirectionWeight: Int] = [:]
        var list: [(key: DirectionWeight, rule: Int)] = []
        let small = rules.count <= 64
        if small { list.reserveCapacity(rules.count * 2) } else { used.reserveCapacity(rules.count * 2) }
        func taken(_ key: DirectionWeight) -> Int? {
            if !small { return used[key] }
            for entry in list where entry.key == key { return entry.rule }
            return nil
        }
        for k in rules.indices {
            let direction = rules[k].direction, weight = rules[k].weight
            // The rule's directions, Both as Inbound then Outbound (no array built per rule, issue 3).
            let count = direction == .both ? 2 : 1
            for n in 0..<count {
                let d: ACLDirection = direction == .both ? (n == 0 ? .inbound : .outbound) : direction
                let key = DirectionWeight(inbound: d == .inbound, weight: weight)
                if let other = taken(key) {
                    let e = elements[k]
                    fail(e, e.attribute("Weight"), "Weight \(weight) in direction \(d.rawValue) is already used by ACL '\(rules[other].name)' (line \(elements[other].line)); weights order the rules of a direction and must be unique")
                    break
                }
                if small { list.append((key, k)) } else { used[key] = k }
            }
        }
    }

    /// A rule that a higher-weight rule of the same direction fully covers can never match: warn.
    private mutating func checkShadowing(_ rules: [ACLRule], _ matches: [ACLMatch], _ elements: [XMLElement]) {
        var warned = Set<Int>()
        // Each direction's rules ordered in one buffer on the stack (the weights and directions copied out, and a
        // filtered and a sorted array per direction, were six allocations per profile, issue 3).
        withUnsafeTemporaryAllocation(of: Int.self, capacity: max(1, rules.count)) { ordered in
            rules.withUnsafeBufferPointer { r in
                for d in [ACLDirection.inbound, .outbound] {
                    let count = Self.shadowingOrder(count: r.count, direction: { r[$0].direction }, weight: { r[$0].weight },
                                                    for: d, into: ordered)
                    // (The matches compared in place: reading them out of the array in a closure copied each, two
                    // arrays retained per comparison, issue 3.)
                    matches.withUnsafeBufferPointer { m in
                        for j in 0..<count {
                            let later = ordered[j]
                            let laterWeight = r[later].weight
                            var found: Int?
                            for k in 0..<j {
                                let c = ordered[k]
                                if r[c].weight > laterWeight && m[c].covers(m[later]) { found = c; break }
                            }
                            guard let earlier = found else { continue }
                            guard warned.insert(elements[later].index).inserted else { continue }
                            out.warning(elements[later], profile: label,
                                        "ACL '\(r[later].name)' can never match in direction \(d.rawValue): ACL '\(r[earlier].name)' (weight \(r[earlier].weight), line \(elements[earlier].line)) matches everything it matches and is evaluated first")
                        }
                    }
                }
            }
        }
    }

    /// The indices of the rules of direction `d` (`both` included), higher weight first and in document order
    /// among equal weights, written to `ordered`; returns how many. What `indices.filter { … }.sorted { weight($0) >
    /// weight($1) }` gives (a stable sort), by insertion (`FastPathTests.testShadowingOrder`).
    @inline(__always)
    static func shadowingOrder(count n: Int, direction: (Int) -> ACLDirection, weight: (Int) -> Int, for d: ACLDirection,
                               into ordered: UnsafeMutableBufferPointer<Int>) -> Int {
        var count = 0
        for i in 0..<n where direction(i) == d || direction(i) == .both {
            let w = weight(i)
            var k = count
            while k > 0, w > weight(ordered[k - 1]) { ordered[k] = ordered[k - 1]; k -= 1 }
            ordered[k] = i
            count += 1
        }
        return count
    }

    private mutating func fail(_ e: XMLElement, _ a: XMLAttribute?, _ message: String) {
        out.error(e, a, profile: label, message)
    }
}
