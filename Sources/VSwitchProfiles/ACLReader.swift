// vsx:Acl rules: attribute syntax, consistency (IP families, prefixes, ports only with
// TCP/UDP, ICMP fields only with ICMP), (Direction, Weight) uniqueness and shadowing.

import VSwitchXML
import VSwitchPolicy
import VSwitchPacket

/// An ACL's match fields in comparable form (nil = wildcard).
struct ACLMatch {
    var localMAC: MACAddress?
    var remoteMAC: MACAddress?
    var etherType: UInt16?
    var vlan: UInt16?
    var priority: UInt8?
    var localIP: IPPrefix?
    var remoteIP: IPPrefix?
    var proto: UInt8?
    var localPort: ClosedRange<UInt16>?
    var remotePort: ClosedRange<UInt16>?
    var icmpType: UInt8?
    var icmpCode: UInt8?

    /// Whether every frame matched by `other` is matched by `self`.
    func covers(_ other: ACLMatch) -> Bool {
        func eq<T: Equatable>(_ a: T?, _ b: T?) -> Bool { a == nil || a == b }
        func ip(_ a: IPPrefix?, _ b: IPPrefix?) -> Bool { a == nil || (b != nil && a!.contains(b!)) }
        func range(_ a: ClosedRange<UInt16>?, _ b: ClosedRange<UInt16>?) -> Bool {
            a == nil || (b != nil && a!.lowerBound <= b!.lowerBound && b!.upperBound <= a!.upperBound)
        }
        return eq(localMAC, other.localMAC) && eq(remoteMAC, other.remoteMAC) && eq(etherType, other.etherType)
            && eq(vlan, other.vlan) && eq(priority, other.priority) && ip(localIP, other.localIP)
            && ip(remoteIP, other.remoteIP) && eq(proto, other.proto) && range(localPort, other.localPort)
            && range(remotePort, other.remotePort) && eq(icmpType, other.icmpType) && eq(icmpCode, other.icmpCode)
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
        var rules: [(rule: ACLRule, match: ACLMatch, element: XMLElement)] = []
        rules.reserveCapacity(elements.count)
        for e in elements {
            if let r = readRule(e) { rules.append(r) }
        }
        checkWeights(rules)
        checkShadowing(rules)
        return rules.map(\.rule)
    }

    private mutating func readRule(_ e: XMLElement) -> (ACLRule, ACLMatch, XMLElement)? {
        var ok = true
        func attr(_ name: String) -> (String, XMLAttribute)? {
            e.attribute(name).map { (XMLElement.trim($0.value), $0) }
        }
        func required(_ name: String, _ valid: String) -> (String, XMLAttribute)? {
            guard let a = attr(name) else {
                out.missingAttribute(e, name, profile: label, "vsx:Acl needs \(name) (\(valid))")
                ok = false
                return nil
            }
            return a
        }

        let name = required("Name", "a name for the rule")?.0 ?? ""
        if let (_, a) = attr("Name"), name.isEmpty { fail(e, a, "Name is empty"); ok = false }
        var direction = ACLDirection.both
        if let (text, a) = required("Direction", "Inbound, Outbound or Both") {
            if let d = ACLDirection(rawValue: text) { direction = d }
            else { fail(e, a, "'\(text)' is not a Direction; use Inbound (towards the virtual system), Outbound (from it) or Both"); ok = false }
        }
        var action = ACLAction.deny
        if let (text, a) = required("Action", "Allow or Deny") {
            if let x = ACLAction(rawValue: text) { action = x }
            else { fail(e, a, "'\(text)' is not an Action; use Allow or Deny"); ok = false }
        }
        var weight = 0
        if let (text, a) = required("Weight", "an integer 0..4294967295; higher is evaluated first") {
            if let w = ValueSyntax.unsigned(text), w <= UInt64(UInt32.max) { weight = Int(w) }
            else { fail(e, a, "'\(text)' is not a Weight; expected an integer 0..4294967295 (higher is evaluated first)"); ok = false }
        }
        var rule = ACLRule(name: name, direction: direction, action: action, weight: weight)
        var m = ACLMatch()

        // Local then Remote, each field set directly (key-path writes through an array of pairs cost an
        // allocation and a generic projection per rule, issue 3).
        func mac(_ key: String) -> MACAddress? {
            guard let (text, a) = attr(key) else { return nil }
            if let mac = MACAddress(text) { return mac }
            fail(e, a, "'\(text)' is not a MAC address; write aa:bb:cc:dd:ee:ff, aa-bb-cc-dd-ee-ff or aabbccddeeff"); ok = false
            return nil
        }
        rule.localMAC = mac("LocalMACAddress")
        rule.remoteMAC = mac("RemoteMACAddress")
        m.localMAC = rule.localMAC
        m.remoteMAC = rule.remoteMAC

        if let (text, a) = attr("EtherType") {
            var v: UInt64?
            if text.hasPrefix("0x") || text.hasPrefix("0X") { v = UInt64(text.dropFirst(2), radix: 16) }
            else { v = ValueSyntax.unsigned(text) }
            if let v, v >= 0x0600, v <= 0xFFFF { rule.etherType = UInt16(v) }
            else { fail(e, a, "'\(text)' is not an EtherType; expected 0x0600..0xFFFF (e.g. 0x0800 IPv4, 0x86DD IPv6, 0x0806 ARP); values below 0x0600 are frame lengths"); ok = false }
        }
        m.etherType = rule.etherType
        if let (text, a) = attr("VLANID") {
            if let v = ValueSyntax.unsigned(text), (1...4094).contains(v) { rule.vlanID = UInt16(v) }
            else { fail(e, a, "'\(text)' is not a VLAN ID; expected 1..4094"); ok = false }
        }
        m.vlan = rule.vlanID
        if let (text, a) = attr("Priority") {
            if let v = ValueSyntax.unsigned(text), v <= 7 { rule.priority = UInt8(v) }
            else { fail(e, a, "'\(text)' is not an 802.1p priority; expected 0..7"); ok = false }
        }
        m.priority = rule.priority

        var families: [(IPPrefix.Family, XMLAttribute)] = []
        func ip(_ key: String, local: Bool) {
            guard let (text, a) = attr(key) else { return }
            if local { rule.localIP = text } else { rule.remoteIP = text }
            if ValueSyntax.isAny(text) { return }
            guard let prefix = IPPrefix(text) else {
                fail(e, a, "'\(text)' is not an IP address; expected IPv4 or IPv6 address[/prefix] (prefix ≤ 32 or ≤ 128) or ANY")
                ok = false
                return
            }
            if prefix.hasHostBits {
                fail(e, a, "'\(text)' has bits set beyond the /\(prefix.effectivePrefixLength) mask; did you mean \(prefix.networkText)?")
                ok = false
            }
            if local { m.localIP = prefix } else { m.remoteIP = prefix }
            families.append((prefix.family, a))
        }
        ip("LocalIPAddress", local: true)
        ip("RemoteIPAddress", local: false)
        if families.count == 2, families[0].0 != families[1].0 {
            fail(e, families[1].1, "LocalIPAddress is IPv\(families[0].0.rawValue) but RemoteIPAddress is IPv\(families[1].0.rawValue); both must be the same family (or ANY)")
            ok = false
        }

        if let (text, a) = attr("Protocol") {
            rule.proto = text
            if let n = Self.protocolNumber(text) {
                m.proto = n
            } else if let n = ValueSyntax.unsigned(text), n <= 255 {
                m.proto = UInt8(n)
            } else {
                fail(e, a, "'\(text)' is not a Protocol; use TCP, UDP, ICMP, ICMPv6 or an IP protocol number 0..255")
                ok = false
            }
        }

        // Families implied by EtherType and Protocol must agree with the addresses.
        let family = families.first?.0
        if let et = rule.etherType, let a = e.attribute("EtherType") {
            if et == 0x0800, family == .ipv6 { fail(e, a, "EtherType 0x0800 (IPv4) with an IPv6 address; use 0x86DD or IPv4 addresses"); ok = false }
            if et == 0x86DD, family == .ipv4 { fail(e, a, "EtherType 0x86DD (IPv6) with an IPv4 address; use 0x0800 or IPv6 addresses"); ok = false }
            if et != 0x0800, et != 0x86DD, family != nil || m.proto != nil {
                fail(e, a, "EtherType \(Self.hex4(et)) is not IP, but the rule matches IP addresses or a protocol; use 0x0800 (IPv4) or 0x86DD (IPv6), or leave EtherType out")
                ok = false
            }
        }
        if let p = m.proto, let a = e.attribute("Protocol") {
            if p == 1, family == .ipv6 || rule.etherType == 0x86DD { fail(e, a, "ICMP is IPv4's; for IPv6 use Protocol ICMPv6 (58)"); ok = false }
            if p == 58, family == .ipv4 || rule.etherType == 0x0800 { fail(e, a, "ICMPv6 is IPv6's; for IPv4 use Protocol ICMP (1)"); ok = false }
        }

        func port(_ key: String, local: Bool) {
            guard let (text, a) = attr(key) else { return }
            if local { rule.localPort = text } else { rule.remotePort = text }
            guard let r = ValueSyntax.portRange(text) else {
                fail(e, a, "'\(text)' is not a port or port range; expected N or lo-hi with 0 ≤ lo ≤ hi ≤ 65535")
                ok = false
                return
            }
            if local { m.localPort = r } else { m.remotePort = r }
            if m.proto != 6, m.proto != 17 {
                fail(e, a, "ports only apply to TCP or UDP; add Protocol=\"TCP\" or Protocol=\"UDP\"")
                ok = false
            }
        }
        port("LocalPort", local: true)
        port("RemotePort", local: false)
        for (key, path) in [("ICMPType", \ACLRule.icmpType), ("ICMPCode", \ACLRule.icmpCode)] {
            guard let (text, a) = attr(key) else { continue }
            guard let v = ValueSyntax.unsigned(text), v <= 255 else {
                fail(e, a, "'\(text)' is not an ICMP \(key == "ICMPType" ? "type" : "code"); expected 0..255")
                ok = false
                continue
            }
            rule[keyPath: path] = UInt8(v)
            if m.proto != 1, m.proto != 58 {
                fail(e, a, "\(key) only applies to ICMP or ICMPv6; add Protocol=\"ICMP\" or Protocol=\"ICMPv6\"")
                ok = false
            }
        }
        m.icmpType = rule.icmpType
        m.icmpCode = rule.icmpCode
        return ok ? (rule, m, e) : nil
    }

    /// The number of a protocol name, compared case-insensitively (TCP, udp, ICMPv6, …).
    static func protocolNumber(_ text: String) -> UInt8? {
        // ASCII text: compare the bytes folded to lower case (no Unicode case mapping turns non-ASCII
        // text into these ASCII names, so anything else takes the general comparison).
        if text.utf8.allSatisfy({ $0 < 0x80 }) {
            let lower = text.utf8.map { $0 >= 65 && $0 <= 90 ? $0 | 0x20 : $0 }
            switch lower.count {
            case 3: if lower.elementsEqual("tcp".utf8) { return 6 }; if lower.elementsEqual("udp".utf8) { return 17 }
            case 4: if lower.elementsEqual("icmp".utf8) { return 1 }
            case 6: if lower.elementsEqual("icmpv6".utf8) { return 58 }
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

    private static func directions(_ d: ACLDirection) -> [ACLDirection] {
        d == .both ? [.inbound, .outbound] : [d]
    }

    /// (Direction, Weight) must be unique; Both counts as Inbound and Outbound.
    private struct DirectionWeight: Hashable {
        var inbound: Bool
        var weight: Int
    }

    private mutating func checkWeights(_ rules: [(rule: ACLRule, match: ACLMatch, element: XMLElement)]) {
        // Key (direction, weight) → index of the rule that took it.
        var used: [DirectionWeight: Int] = [:]
        used.reserveCapacity(rules.count * 2)
        let weights = rules.map(\.rule.weight)
        let directions = rules.map(\.rule.direction)
        for k in rules.indices {
            let direction = directions[k], weight = weights[k]
            for d in Self.directions(direction) {
                let key = DirectionWeight(inbound: d == .inbound, weight: weight)
                if let other = used[key] {
                    let e = rules[k].element
                    fail(e, e.attribute("Weight"), "Weight \(weight) in direction \(d.rawValue) is already used by ACL '\(rules[other].rule.name)' (line \(rules[other].element.line)); weights order the rules of a direction and must be unique")
                    break
                }
                used[key] = k
            }
        }
    }

    /// A rule that a higher-weight rule of the same direction fully covers can never match: warn.
    private mutating func checkShadowing(_ rules: [(rule: ACLRule, match: ACLMatch, element: XMLElement)]) {
        var warned = Set<Int>()
        // On indices (the same filter and sort as on the rules themselves: the sort's decisions depend
        // only on the comparisons, so the order is the same), without copying rules.
        // Weights, directions and matches pulled out once: reading them through the array of tuples
        // copied whole tuples (a rule's strings retained and released) at every comparison.
        let weights = rules.map(\.rule.weight)
        let directions = rules.map(\.rule.direction)
        let matches = rules.map(\.match)
        for d in [ACLDirection.inbound, .outbound] {
            let ordered = rules.indices.filter { directions[$0] == d || directions[$0] == .both }
                .sorted { weights[$0] > weights[$1] }
            for j in ordered.indices {
                let later = ordered[j]
                let laterWeight = weights[later]
                guard let earlier = ordered[..<j].first(where: {
                    weights[$0] > laterWeight && matches[$0].covers(matches[later])
                }) else { continue }
                guard warned.insert(rules[later].element.index).inserted else { continue }
                out.warning(rules[later].element, profile: label,
                            "ACL '\(rules[later].rule.name)' can never match in direction \(d.rawValue): ACL '\(rules[earlier].rule.name)' (weight \(rules[earlier].rule.weight), line \(rules[earlier].element.line)) matches everything it matches and is evaluated first")
            }
        }
    }

    private mutating func fail(_ e: XMLElement, _ a: XMLAttribute?, _ message: String) {
        out.error(e, a, profile: label, message)
    }
}
