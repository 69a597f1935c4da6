// Reads one ovf:Item (EPASD properties + vsx extensions) into a PortProfile and applies
// the per-profile semantic rules of shared/spec/port-profile.md. Every finding names the
// element (or attribute) and says what would be valid. The profile is always produced
// (with placeholders where a value was wrong) so that later checks still run; the loader
// discards everything if any error was reported.
//
// Decisions (see also the README):
// - An access (or Dot1Q tunnel) port without PortVID/DefaultPortVID is in VLAN 1, the
//   Linux bridge's default pvid (`PortProfile.effectivePortVID`).
// - NetworkPortProfileIDType is required: an ID is only meaningful with its type.
// - An element without a namespace is an error (usually a forgotten prefix), not a
//   foreign element.
// - A NULL (xsi:nil) entry of AllowedToTransmitVLANs / AllowedToReceiveVLANs means
//   "any VID the port carries" for the MAC at the same index.
// - Burst sizes must be at least 64 bytes here; the topology loader checks them against
//   each bound port's MTU (one full frame).

import VSwitchXML
import VSwitchPolicy
import VSwitchPacket

struct ItemReader {
    // Element names, by namespace. Scalars may appear once, arrays repeat.
    static let epasdScalars: Set<String> = [
        "AllocationUnits", "Caption", "DefaultPortVID", "DefaultPriority", "Description", "DesiredVLANEndpointMode",
        "ElementName", "GroupID", "InstanceID", "Limit", "ManagerID", "NetworkPortProfileID", "NetworkPortProfileIDType",
        "OtherNetworkPortProfileIDTypeInfo", "PortCorrelationID", "PortVID", "Promiscuous", "ReceiveBandwidthLimit",
        "ReceiveBandwidthReservation", "Reservation", "SourceMACFilteringEnabled", "VSITypeID", "VSITypeIDVersion",
    ]
    static let epasdArrays: Set<String> = [
        "AllowedPriorities", "AllowedToReceiveMACAddresses", "AllowedToReceiveVLANs",
        "AllowedToTransmitMACAddresses", "AllowedToTransmitVLANs",
    ]
    static let vsxScalars: Set<String> = [
        "Dot1qAcceptableVLANFramesTypes", "NativeVLANEgressTagged", "PriorityViolationAction", "TransmitBurstSize",
        "ReceiveBurstSize", "MaxNumMACAddress", "MACLimitAction", "BroadcastStormLimit", "MulticastStormLimit",
        "UnknownUnicastStormLimit", "MonitorMode", "EnableDhcpGuard", "EnableRouterGuard", "InboundAclDefaultAction",
        "OutboundAclDefaultAction",
    ]
    static let vsxArrays: Set<String> = ["TrunkedVLANList", "TrunkedVLANRange", "Acl"]
    static let vsxAttributes: [String: [String]] = [
        "TrunkedVLANRange": ["First", "Last"],
        "MonitorMode": ["Session"],
        "Acl": ACLReader.attributeNames,
    ]
    static let minimumBurst: UInt64 = 64
    /// Local name → (the key `out.displayName` gives it, is it an array), per namespace: one cheap lookup per
    /// child (a `KeyMap`: no SipHash of the name) and no string building (issue 3: ~40 children per profile,
    /// 1,000 profiles per reload).
    static let epasdKinds: KeyMap<(key: String, isArray: Bool)> = {
        var m = KeyMap<(key: String, isArray: Bool)>()
        for n in epasdScalars { m[n] = ("epasd:" + n, false) }
        for n in epasdArrays { m[n] = ("epasd:" + n, true) }
        return m
    }()
    /// The same for vsx, with the element's attributes (`vsxAttributes`, none when absent). The attributes of
    /// vsx:Acl are checked with `ACLReader.slot(of:)`, those of the others by a comparison with each allowed
    /// name (one or two).
    static let vsxKinds: KeyMap<(key: String, isArray: Bool, attributes: [String])> = {
        var m = KeyMap<(key: String, isArray: Bool, attributes: [String])>()
        for n in vsxScalars { m[n] = ("vsx:" + n, false, vsxAttributes[n] ?? []) }
        for n in vsxArrays { m[n] = ("vsx:" + n, true, vsxAttributes[n] ?? []) }
        return m
    }()

    let item: XMLElement
    let label: String
    var out: DiagnosticCollector
    private var scalars = KeyMap<XMLElement>()
    private var arrays = KeyMap<[XMLElement]>()
    private(set) var idElement: XMLElement?
    private(set) var instanceIDElement: XMLElement?

    init(item: XMLElement, label: String, out: DiagnosticCollector) {
        self.item = item
        self.label = label
        self.out = out
    }

    /// The profile's name for diagnostics: its NetworkPortProfileID, else its ElementName.
    static func label(of item: XMLElement) -> String? {
        for name in ["NetworkPortProfileID", "ElementName"] {
            if let e = item.children.first(where: { $0.namespaceURI == ProfileNamespace.epasd && $0.name == name }),
               !e.trimmedText.isEmpty {
                return e.trimmedText
            }
        }
        return nil
    }

    // MARK: reading

    mutating func read() -> PortProfile {
        classifyChildren()

        let (id, idType) = readIdentity()
        let elementName = string("epasd:ElementName")
        if elementName == nil {
            errorAtItem("missing epasd:ElementName (mandatory in EPASD): a human-readable name for the profile")
        }
        let instanceID = readInstanceID()
        var p = PortProfile(id: id, idType: idType, elementName: elementName ?? "", instanceID: instanceID ?? "")
        p.otherNetworkPortProfileIDTypeInfo = string("epasd:OtherNetworkPortProfileIDTypeInfo")
        p.caption = string("epasd:Caption")
        p.description = string("epasd:Description")
        if idType == .other, p.otherNetworkPortProfileIDTypeInfo?.isEmpty ?? true {
            error(idElement, "NetworkPortProfileIDType 1 (Other) needs epasd:OtherNetworkPortProfileIDTypeInfo saying what kind of ID this is")
        } else if idType != .other, let e = scalars["epasd:OtherNetworkPortProfileIDTypeInfo"], !e.isNil {
            warning(e, "ignored: OtherNetworkPortProfileIDTypeInfo only applies to NetworkPortProfileIDType 1 (Other)")
        }

        readVLANs(into: &p)
        readPriorities(into: &p)
        readMACLists(into: &p)
        readBandwidth(into: &p)
        readSwitchExtensions(into: &p)
        readVSI(into: &p)
        var acl = ACLReader(label: label, out: out)
        p.acls = acl.read(arrays["vsx:Acl"] ?? [], profile: p)
        out = acl.out
        return p
    }

    /// Sorts the Item's children into scalars and arrays; reports unknown, duplicated and malformed elements.
    private mutating func classifyChildren() {
        if item.hasText {
            error(item, "text is not allowed directly inside ovf:Item; it holds epasd:* and vsx:* elements")
        }
        for a in item.attributes where a.namespaceURI != xsiNamespace {
            out.warning(item, a, profile: label, "attribute ignored; ovf:Item needs none")
        }
        // A run of one array's elements (the 16 vsx:Acl of a profile) is gathered and stored under its key
        // once: one hash per run, not per element.
        var runKey: String?
        var run: [XMLElement] = []
        func flushRun() {
            if let k = runKey, !run.isEmpty { arrays[k, default: []].append(contentsOf: run) }
            run.removeAll(keepingCapacity: true)
        }
        defer { flushRun() }
        for c in item.children {
            let isArray: Bool
            let key: String
            switch c.namespaceURI {
            case ProfileNamespace.epasd?:
                guard let kind = Self.epasdKinds[c.name] else {
                    unknown(c, namespace: "epasd", known: Self.epasdScalars.union(Self.epasdArrays),
                            what: "an EPASD property this switch implements")
                    continue
                }
                (key, isArray) = kind
                if c.isNil, c.hasText { error(c, "xsi:nil=\"true\" (NULL) must be empty") }
                ProfileReader.checkAttributes(c, allowed: [], out: &out, profile: label)
            case ProfileNamespace.vsx?:
                guard let kind = Self.vsxKinds[c.name] else {
                    unknown(c, namespace: "vsx", known: Self.vsxScalars.union(Self.vsxArrays),
                            what: "a VSwitch extension")
                    continue
                }
                (key, isArray) = (kind.key, kind.isArray)
                if c.isNil { error(c, "a vsx element cannot be NULL (xsi:nil); omit it to get the default") }
                if key == "vsx:Acl" {
                    ProfileReader.checkAttributes(c, allowed: kind.attributes, isAllowed: { ACLReader.slot(of: $0) != nil },
                                                  out: &out, profile: label)
                } else {
                    ProfileReader.checkAttributes(c, allowed: kind.attributes, out: &out, profile: label)
                }
            case ProfileNamespace.ovf?:
                error(c, "not allowed inside ovf:Item; it holds epasd:* properties and vsx:* extensions")
                continue
            case nil:
                let hint = [("epasd", Self.epasdScalars.union(Self.epasdArrays)), ("vsx", Self.vsxScalars.union(Self.vsxArrays))]
                    .first { $0.1.contains(c.name) }.map { " — did you mean \($0.0):\(c.name)?" } ?? ""
                error(c, "element has no namespace, so it is neither epasd:* nor vsx:* (a missing prefix?)\(hint)")
                continue
            default:
                out.warning(c, profile: label, "element in foreign namespace '\(c.namespaceURI!)' ignored")
                continue
            }
            if !c.children.isEmpty {
                error(c.children[0], "\(out.displayName(c)) holds a value, not elements")
                out.touch(c)
            }
            // The attribute-only elements take no text either: the XSD says so for form 1 only, and an OVF
            // envelope (form 2) is not validated against it, so the reader checks it for both forms.
            if (key == "vsx:TrunkedVLANRange" || key == "vsx:Acl"), c.hasText {
                let attributes = key == "vsx:TrunkedVLANRange" ? " (First, Last)" : ""
                error(c, "\(key) takes its value in attributes\(attributes); text is not allowed inside it (found '\(String(c.trimmedText.prefix(20)))')")
            }
            if isArray {
                if runKey != key { flushRun(); runKey = key }
                run.append(c)
            } else if let first = scalars[key] {
                error(c, "appears more than once (first at line \(first.line)); \(key) is not an array property")
            } else {
                scalars[key] = c
            }
        }
    }

    private mutating func unknown(_ e: XMLElement, namespace: String, known: Set<String>, what: String) {
        if let s = ValueSyntax.suggestion(for: e.name, among: Array(known)) {
            error(e, "\(namespace):\(e.name) is not \(what); did you mean \(namespace):\(s)?")
        } else {
            error(e, "\(namespace):\(e.name) is not \(what); known: \(known.sorted().joined(separator: ", "))")
        }
    }

    // MARK: identity

    private mutating func readIdentity() -> (String, NetworkPortProfileIDType) {
        idElement = scalars["epasd:NetworkPortProfileID"]
        var id = ""
        if let (text, _) = value("epasd:NetworkPortProfileID") {
            id = text
            if text.isEmpty { error(idElement, "NetworkPortProfileID is empty; ports bind to profiles by this ID") }
        } else {
            errorAtItem("missing epasd:NetworkPortProfileID: every profile needs an ID that ports bind to")
        }
        var type = NetworkPortProfileIDType.uri
        let validTypes = "use 2 (URI), 3 (UUID), 4 (VSI Instance ID) or 1 (Other, with epasd:OtherNetworkPortProfileIDTypeInfo)"
        if let (text, e) = value("epasd:NetworkPortProfileIDType") {
            if let n = ValueSyntax.unsigned(text), n <= 65535 {
                if let t = NetworkPortProfileIDType(rawValue: Int(n)) {
                    type = t
                } else if n == 0 {
                    error(e, "NetworkPortProfileIDType 0 (Unknown) is refused: the switch must know how to compare the ID; \(validTypes)")
                } else {
                    error(e, "NetworkPortProfileIDType \(n) is a \(n >= 32768 ? "vendor" : "DMTF") reserved value; \(validTypes)")
                }
            } else {
                error(e, "'\(text)' is not a NetworkPortProfileIDType; \(validTypes)")
            }
        } else if idElement != nil {
            error(idElement, "missing epasd:NetworkPortProfileIDType next to the ID; \(validTypes)")
        }
        guard !id.isEmpty, let idElement else { return (id, type) }
        switch type {
        case .uri:
            if let why = ValueSyntax.uriProblem(id) {
                error(idElement, "'\(id)' is not a valid URI for NetworkPortProfileIDType 2: \(why)")
            }
        case .uuid:
            if !ValueSyntax.isUUID(id) {
                error(idElement, "'\(id)' is not a UUID for NetworkPortProfileIDType 3; expected 8-4-4-4-12 hexadecimal digits, e.g. 6f1c2a3e-0b4d-4e5f-8a9b-0c1d2e3f4a5b")
            }
        case .vsiInstanceID, .other:
            if id.contains(where: { $0.isWhitespace }) {
                error(idElement, "'\(id)' contains whitespace; an ID is one token")
            }
        }
        return (id, type)
    }

    private mutating func readInstanceID() -> String? {
        instanceIDElement = scalars["epasd:InstanceID"]
        guard let (text, e) = value("epasd:InstanceID") else {
            errorAtItem("missing epasd:InstanceID (mandatory in EPASD); write <OrgID>:<LocalID>, e.g. example.org:web-tier")
            return nil
        }
        // <OrgID>:<LocalID>, both non-empty (split at the first colon, without building the parts).
        let colon = text.firstIndex(of: ":")
        if colon == nil || colon == text.startIndex || text.index(after: colon!) == text.endIndex {
            error(e, "InstanceID '\(text)' is not <OrgID>:<LocalID> (an organisation name, a colon, a local ID), e.g. example.org:web-tier")
        }
        return text
    }

    // MARK: VLANs

    private mutating func readVLANs(into p: inout PortProfile) {
        if let (text, e) = value("epasd:DesiredVLANEndpointMode") {
            let valid = "use 2 (Access), 5 (Trunk) or 6 (Dot1Q Tunnel)"
            switch ValueSyntax.unsigned(text) {
            case 2?: p.desiredVLANEndpointMode = .access
            case 5?: p.desiredVLANEndpointMode = .trunk
            case 6?: p.desiredVLANEndpointMode = .dot1qTunnel
            case let n? where n == 3 || n == 4:
                error(e, "DesiredVLANEndpointMode \(n) (\(n == 3 ? "Dynamic Auto" : "Dynamic Desirable")) asks for DTP-style trunk negotiation, which this switch does not support (a virtual port has no peer to negotiate with); \(valid)")
            case 0?:
                error(e, "DesiredVLANEndpointMode 0 (Unknown) does not say how to treat frames; \(valid), or omit it for Access")
            case 1?:
                error(e, "DesiredVLANEndpointMode 1 (Other) has no defined behaviour; \(valid)")
            case let n? where n <= 65535:
                error(e, "DesiredVLANEndpointMode \(n) is a \(n >= 32768 ? "vendor" : "DMTF") reserved value; \(valid)")
            default:
                error(e, "'\(text)' is not a DesiredVLANEndpointMode; \(valid)")
            }
        }
        p.portVID = vid("epasd:PortVID")
        p.defaultPortVID = vid("epasd:DefaultPortVID")

        // Trunk list: TrunkedVLANList entries and TrunkedVLANRange ranges, merged in document order.
        let entries = ((arrays["vsx:TrunkedVLANList"] ?? []) + (arrays["vsx:TrunkedVLANRange"] ?? [])).sorted { $0.index < $1.index }
        var set = Set<UInt16>()
        var firstSeen: [UInt16: Int] = [:]
        for e in entries {
            if e.name == "TrunkedVLANList" {
                guard let v = parseVID(e.trimmedText, e, nil) else { continue }
                if let line = firstSeen[v] {
                    warning(e, "VLAN \(v) is already in the trunk list (line \(line)); duplicate merged")
                } else {
                    set.insert(v); firstSeen[v] = e.line
                }
            } else {
                let first = e.attribute("First"), last = e.attribute("Last")
                if first == nil { out.missingAttribute(e, "First", profile: label, "TrunkedVLANRange needs First and Last (1..4094, First ≤ Last)") }
                if last == nil { out.missingAttribute(e, "Last", profile: label, "TrunkedVLANRange needs First and Last (1..4094, First ≤ Last)") }
                guard let first, let last,
                      let lo = parseVID(XMLElement.trim(first.value), e, first),
                      let hi = parseVID(XMLElement.trim(last.value), e, last) else { continue }
                guard lo <= hi else {
                    error(e, first, "First \(lo) is greater than Last \(hi); a range needs First ≤ Last")
                    continue
                }
                let overlap = (lo...hi).filter { set.contains($0) }
                if !overlap.isEmpty {
                    let lines = Set(overlap.compactMap { firstSeen[$0] }).sorted().map(String.init).joined(separator: ", ")
                    warning(e, "range \(lo)-\(hi) overlaps \(overlap.count) VLAN(s) already in the trunk list (\(Self.describe(overlap)); line \(lines)); merged")
                }
                for v in lo...hi where firstSeen[v] == nil { set.insert(v); firstSeen[v] = e.line }
            }
        }

        if let (text, e) = value("vsx:Dot1qAcceptableVLANFramesTypes") {
            switch ValueSyntax.unsigned(text) {
            case 2?: p.acceptableFrameTypes = .all
            case 3?: p.acceptableFrameTypes = .taggedOnly
            default: error(e, "'\(text)' is not a Dot1qAcceptableVLANFramesTypes value; use 2 (accept all) or 3 (tagged only)")
            }
        }
        p.nativeVLANEgressTagged = bool("vsx:NativeVLANEgressTagged")

        let modeElement = scalars["epasd:DesiredVLANEndpointMode"]
        switch p.mode {
        case .access, .dot1qTunnel:
            let what = p.mode == .access ? "an access port (DesiredVLANEndpointMode 2 or absent)" : "a Dot1Q tunnel port (DesiredVLANEndpointMode 6)"
            if let first = entries.first {
                error(first, "\(what) carries only its PortVID; a trunk list needs DesiredVLANEndpointMode 5 (Trunk)")
            }
            if p.acceptableFrameTypes == .taggedOnly, let e = scalars["vsx:Dot1qAcceptableVLANFramesTypes"] {
                error(e, "tagged-only (3) on \(what) would drop its own untagged traffic; tagged-only applies to trunks (DesiredVLANEndpointMode 5)")
            }
            if p.nativeVLANEgressTagged != nil, let e = scalars["vsx:NativeVLANEgressTagged"] {
                warning(e, "ignored: NativeVLANEgressTagged applies to trunk ports only")
            }
        case .trunk:
            if set.isEmpty {
                error(modeElement ?? item, "a trunk (DesiredVLANEndpointMode 5) needs at least one vsx:TrunkedVLANList or vsx:TrunkedVLANRange")
            } else if let native = p.effectivePortVID, !set.contains(native) {
                let source = p.portVID != nil ? "epasd:PortVID" : "epasd:DefaultPortVID"
                warning(scalars[source] ?? item, "native VLAN \(native) is not in the trunk list; added to it")
                set.insert(native)
            }
        }
        p.trunkedVLANs = set.sorted()
    }

    /// `10, 20-22, 30` for a sorted list of VIDs.
    static func describe(_ vids: [UInt16]) -> String { describeRuns(vids, separator: ", ") }

    // MARK: priorities

    private mutating func readPriorities(into p: inout PortProfile) {
        p.defaultPriority = pcp("epasd:DefaultPriority")
        var allowed: [UInt8] = []
        for e in arrays["epasd:AllowedPriorities"] ?? [] {
            if e.isNil { error(e, "a NULL entry in AllowedPriorities; list PCPs 0..7 (an empty list means all)"); continue }
            guard let v = parsePCP(e.trimmedText, e) else { continue }
            if allowed.contains(v) { warning(e, "priority \(v) listed twice; duplicate removed") } else { allowed.append(v) }
        }
        p.allowedPriorities = allowed.sorted()
        if let d = p.defaultPriority, !allowed.isEmpty, !allowed.contains(d) {
            error(scalars["epasd:DefaultPriority"], "DefaultPriority \(d) is not in AllowedPriorities (\(p.allowedPriorities.map(String.init).joined(separator: ", "))); frames tagged by the switch would break the port's own rule — add it or pick one of them")
        }
        if let (text, e) = value("vsx:PriorityViolationAction") {
            if let a = PriorityViolationAction(rawValue: text) { p.priorityViolationAction = a }
            else { error(e, "'\(text)' is not a PriorityViolationAction; use Remark or Drop") }
        }
    }

    // MARK: MAC lists

    private mutating func readMACLists(into p: inout PortProfile) {
        p.sourceMACFilteringEnabled = bool("epasd:SourceMACFilteringEnabled")
        p.promiscuous = bool("epasd:Promiscuous")
        p.allowedToTransmit = pairs(macs: "epasd:AllowedToTransmitMACAddresses", vlans: "epasd:AllowedToTransmitVLANs",
                                    unicastOnly: true, profile: p)
        p.allowedToReceive = pairs(macs: "epasd:AllowedToReceiveMACAddresses", vlans: "epasd:AllowedToReceiveVLANs",
                                   unicastOnly: false, profile: p)
        if let v = uint("vsx:MaxNumMACAddress", max: UInt64(UInt32.max), what: "a MAC address count") { p.maxNumMACAddress = UInt32(v) }
        if let (text, e) = value("vsx:MACLimitAction") {
            if let a = MACLimitAction(rawValue: text) { p.macLimitAction = a }
            else { error(e, "'\(text)' is not a MACLimitAction; use Drop or ForwardUnlearned") }
        }
    }

    /// Index-paired MAC and VLAN arrays → pairs; a missing VLAN list or a NULL VLAN entry means any VID.
    private mutating func pairs(macs macKey: String, vlans vlanKey: String, unicastOnly: Bool, profile: PortProfile) -> [MACVLANPair] {
        let macElements = arrays[macKey] ?? []
        let vlanElements = arrays[vlanKey] ?? []
        if !vlanElements.isEmpty, vlanElements.count != macElements.count {
            let e = macElements.count > vlanElements.count ? macElements[vlanElements.count] : vlanElements[macElements.count]
            error(e, "\(macKey) has \(macElements.count) entr\(macElements.count == 1 ? "y" : "ies") but \(vlanKey) has \(vlanElements.count); the two arrays are index-paired and must have equal length (or leave out \(vlanKey) for any VLAN)")
            return []
        }
        var result: [MACVLANPair] = []
        var firstLine: [MACVLANPair: Int] = [:]
        let carried = Set(profile.mode == .trunk ? profile.trunkedVLANs : [profile.effectivePortVID ?? 1])
        for (i, e) in macElements.enumerated() {
            if e.isNil { error(e, "a NULL entry in a MAC address list; write a MAC address"); continue }
            guard let mac = parseMAC(e.trimmedText, e, nil) else { continue }
            if unicastOnly, mac.isMulticast || mac.isZero {
                let kind = mac.isZero ? "the all-zero" : mac.isBroadcast ? "a broadcast" : "a multicast"
                error(e, "\(mac) is \(kind) address; a virtual system may only transmit from unicast, non-zero addresses")
                continue
            }
            var vid: UInt16?
            if i < vlanElements.count, !vlanElements[i].isNil {
                guard let v = parseVID(vlanElements[i].trimmedText, vlanElements[i], nil) else { continue }
                vid = v
                if !carried.contains(v) {
                    warning(vlanElements[i], "the port does not carry VLAN \(v) (it carries \(Self.describe(carried.sorted()))); this entry can never match")
                }
            }
            let pair = MACVLANPair(mac: mac, vlan: vid)
            if let line = firstLine[pair] {
                warning(e, "\(mac)\(vid.map { " in VLAN \($0)" } ?? "") is already listed (line \(line)); duplicate removed")
                continue
            }
            firstLine[pair] = e.line
            result.append(pair)
        }
        return result
    }

    // MARK: bandwidth

    /// The four bandwidth values, in the order they are checked; and what a unit may be (built once, not per profile).
    private static let bandwidthKeys = ["epasd:Limit", "epasd:Reservation", "epasd:ReceiveBandwidthLimit", "epasd:ReceiveBandwidthReservation"]
    private static let validUnits = "use one of: " + ValueSyntax.bandwidthUnits.map { "'\($0.canonical)'" }.joined(separator: ", ")

    private mutating func readBandwidth(into p: inout PortProfile) {
        let keys = Self.bandwidthKeys
        let valid = Self.validUnits
        var multiplier: UInt64?
        if let (text, e) = value("epasd:AllocationUnits") {
            if let u = ValueSyntax.bandwidthUnit(text) {
                p.allocationUnits = u.canonical
                multiplier = u.multiplier
            } else {
                error(e, "unknown AllocationUnits '\(text)'; \(valid)")
            }
        }
        let first = keys.first { value($0) != nil }
        if let first, scalars["epasd:AllocationUnits"].map({ $0.isNil }) ?? true {
            error(scalars[first], "a bandwidth property needs epasd:AllocationUnits; \(valid)")
        }
        // Bits per second, by index in `keys` (none read when no value is present: the usual profile).
        var bits: [UInt64?] = [nil, nil, nil, nil]
        for (k, key) in keys.enumerated() where first != nil {
            guard let raw = uint(key, max: UInt64.max, what: "a bandwidth") else { continue }
            guard let m = multiplier else { continue }
            let (product, overflow) = raw.multipliedReportingOverflow(by: m)
            if overflow {
                error(scalars[key], "\(raw) × \(p.allocationUnits ?? "") overflows 64 bits (max \(UInt64.max / m) in these units)")
                continue
            }
            bits[k] = product
        }
        p.limit = bits[0]
        p.reservation = bits[1]
        p.receiveBandwidthLimit = bits[2]
        p.receiveBandwidthReservation = bits[3]
        for (limit, reservation, direction) in [(0, 1, "transmit"), (2, 3, "receive")] {
            if let l = bits[limit], let r = bits[reservation], l > 0, r > l {
                error(scalars[keys[reservation]], "\(direction) reservation (\(r) bit/s) exceeds the \(direction) limit (\(l) bit/s); a reservation must be ≤ the limit (or set the limit to 0 = none)")
            }
        }
        p.transmitBurstSize = burst("vsx:TransmitBurstSize")
        p.receiveBurstSize = burst("vsx:ReceiveBurstSize")
    }

    private mutating func burst(_ key: String) -> UInt64? {
        guard let v = uint(key, max: UInt64.max, what: "a burst size in bytes") else { return nil }
        if v < Self.minimumBurst {
            error(scalars[key], "a burst of \(v) bytes is smaller than one Ethernet frame; use at least \(Self.minimumBurst) (and at least one full frame at the port's MTU), or omit it for the default")
        }
        return v
    }

    // MARK: other extensions

    private mutating func readSwitchExtensions(into p: inout PortProfile) {
        p.broadcastStormLimit = uint("vsx:BroadcastStormLimit", max: UInt64.max, what: "a rate in packets/s (0 = off)")
        p.multicastStormLimit = uint("vsx:MulticastStormLimit", max: UInt64.max, what: "a rate in packets/s (0 = off)")
        p.unknownUnicastStormLimit = uint("vsx:UnknownUnicastStormLimit", max: UInt64.max, what: "a rate in packets/s (0 = off)")
        if let (text, e) = value("vsx:MonitorMode") {
            if let m = MonitorRole(rawValue: text) { p.monitorMode = m }
            else { error(e, "'\(text)' is not a MonitorMode; use None, Source or Destination") }
            if let s = e.attribute("Session") {
                let session = XMLElement.trim(s.value)
                if session.isEmpty { error(e, s, "Session is empty; name the mirroring session or leave the attribute out") }
                p.monitorSession = session
            }
        }
        p.enableDhcpGuard = bool("vsx:EnableDhcpGuard")
        p.enableRouterGuard = bool("vsx:EnableRouterGuard")
        for (key, path) in [("vsx:InboundAclDefaultAction", \PortProfile.inboundAclDefaultAction),
                            ("vsx:OutboundAclDefaultAction", \PortProfile.outboundAclDefaultAction)] {
            if let (text, e) = value(key) {
                if let a = ACLAction(rawValue: text) { p[keyPath: path] = a }
                else { error(e, "'\(text)' is not an ACL action; use Allow or Deny") }
            }
        }
    }

    private mutating func readVSI(into p: inout PortProfile) {
        p.managerID = string("epasd:ManagerID")
        p.portCorrelationID = string("epasd:PortCorrelationID")
        if let v = uint("epasd:GroupID", max: UInt64(UInt32.max), what: "a VSI group ID") { p.groupID = UInt32(v) }
        if let v = uint("epasd:VSITypeID", max: 16_777_215, what: "a VSI type ID (24 bits)") { p.vsiTypeID = UInt32(v) }
        if let v = uint("epasd:VSITypeIDVersion", max: 255, what: "a VSI type ID version") { p.vsiTypeIDVersion = UInt8(v) }
    }

    // MARK: value helpers

    /// The trimmed text of scalar `key`, nil when absent or NULL.
    private func value(_ key: String) -> (String, XMLElement)? {
        guard let e = scalars[key], !e.isNil else { return nil }
        return (e.trimmedText, e)
    }

    private func string(_ key: String) -> String? { value(key)?.0 }

    private mutating func uint(_ key: String, max: UInt64, what: String) -> UInt64? {
        guard let (text, e) = value(key) else { return nil }
        guard let v = ValueSyntax.unsigned(text), v <= max else {
            error(e, "'\(text)' is not \(what); expected an integer 0..\(max)")
            return nil
        }
        return v
    }

    private mutating func bool(_ key: String) -> Bool? {
        guard let (text, e) = value(key) else { return nil }
        guard let b = ValueSyntax.bool(text) else {
            error(e, "'\(text)' is not a boolean; use true, false, 1 or 0")
            return nil
        }
        return b
    }

    private mutating func vid(_ key: String) -> UInt16? {
        guard let (text, e) = value(key) else { return nil }
        return parseVID(text, e, nil)
    }

    private mutating func pcp(_ key: String) -> UInt8? {
        guard let (text, e) = value(key) else { return nil }
        return parsePCP(text, e)
    }

    private mutating func parseVID(_ text: String, _ e: XMLElement, _ a: XMLAttribute?) -> UInt16? {
        guard let v = ValueSyntax.unsigned(text), (1...4094).contains(v) else {
            let why = text == "0" ? " (0 only marks a priority-tagged frame on the wire)"
                : text == "4095" ? " (4095 is reserved)" : ""
            error(e, a, "'\(text)' is not a VLAN ID\(why); expected 1..4094")
            return nil
        }
        return UInt16(v)
    }

    private mutating func parsePCP(_ text: String, _ e: XMLElement) -> UInt8? {
        guard let v = ValueSyntax.unsigned(text), v <= 7 else {
            error(e, "'\(text)' is not an 802.1p priority; expected 0..7")
            return nil
        }
        return UInt8(v)
    }

    private mutating func parseMAC(_ text: String, _ e: XMLElement, _ a: XMLAttribute?) -> MACAddress? {
        guard let mac = MACAddress(text) else {
            error(e, a, "'\(text)' is not a MAC address; write aa:bb:cc:dd:ee:ff, aa-bb-cc-dd-ee-ff or aabbccddeeff")
            return nil
        }
        return mac
    }

    private mutating func error(_ e: XMLElement?, _ message: String) {
        out.error(e ?? item, nil, profile: label, message)
    }

    private mutating func error(_ e: XMLElement?, _ a: XMLAttribute?, _ message: String) {
        out.error(e ?? item, a, profile: label, message)
    }

    private mutating func warning(_ e: XMLElement, _ message: String) {
        out.warning(e, profile: label, message)
    }

    private mutating func errorAtItem(_ message: String) {
        out.error(item, profile: label, message)
    }
}

/// A map from the Item's property keys (`epasd:PortVID`, `vsx:Acl`, …) to what was found: open addressing
/// with a hash of the key's length and last bytes instead of Dictionary's SipHash of every byte (an Item's
/// ~90 lookups and insertions were ~3 % of a 1,000-profile reload, issue 3). Keys are compared in full.
/// The slots are plain integers (1 + the entry's index, 0 when empty) and the entries are kept densely in
/// insertion order: with a slot array of optional entries, freeing the two maps of each profile called a
/// generic value witness for each of their 128 slots (~1 % of a 1,000-profile reload, issue 3).
struct KeyMap<Value> {
    fileprivate struct Entry {
        var key: String
        var value: Value
    }
    private var slots: [Int32] = []
    private var entries: [Entry] = []

    @inline(__always) private static func hash(_ key: String) -> Int {
        let u = key.utf8
        var h = UInt(bitPattern: u.count) &* 0x9E37_79B9
        // (The bytes read in place: `u.last` and an index offset by -2 were generic calls.)
        if let tail = u.withContiguousStorageIfAvailable({ b -> UInt in
            var t: UInt = 0
            if let l = b.last { t ^= UInt(l) &* 0x85EB_CA6B }
            if b.count >= 2 { t ^= UInt(b[b.count - 2]) &* 0xC2B2_AE35 }
            return t
        }) {
            h ^= tail
        } else {
            if let l = u.last { h ^= UInt(l) &* 0x85EB_CA6B }
            if u.count >= 2 { h ^= UInt(u[u.index(u.endIndex, offsetBy: -2)]) &* 0xC2B2_AE35 }
        }
        return Int(bitPattern: h ^ (h >> 7))
    }

    /// The slot holding `key`, or the empty slot where it would go (`slots` not empty).
    private func find(_ key: String) -> Int {
        let mask = slots.count - 1
        var i = Self.hash(key) & mask
        while slots[i] != 0 {
            if entries[Int(slots[i]) - 1].key == key { return i }
            i = (i + 1) & mask
        }
        return i
    }

    /// Slots for the entries held, `capacity` of them (a power of two, more than the entries).
    private mutating func rebuild(capacity: Int) {
        slots = [Int32](repeating: 0, count: capacity)
        for k in entries.indices { slots[find(entries[k].key)] = Int32(truncatingIfNeeded: k + 1) }
    }

    subscript(key: String) -> Value? {
        get {
            if slots.isEmpty { return nil }
            let s = slots[find(key)]
            return s == 0 ? nil : entries[Int(s) - 1].value
        }
        set {
            if slots.isEmpty || (entries.count + 1) * 4 > slots.count * 3 {
                if entries.isEmpty { entries.reserveCapacity(16) }
                rebuild(capacity: max(64, slots.count * 2))
            }
            let i = find(key)
            if slots[i] == 0 {
                guard let newValue else { return }
                entries.append(Entry(key: key, value: newValue))
                slots[i] = Int32(truncatingIfNeeded: entries.count)
            } else if let newValue {
                entries[Int(slots[i]) - 1].value = newValue
            } else {
                // (Never used by the reader: the entry removed and the slots rebuilt.)
                entries.remove(at: Int(slots[i]) - 1)
                rebuild(capacity: slots.count)
            }
        }
    }

    subscript(key: String, default value: @autoclosure () -> Value) -> Value {
        get { self[key] ?? value() }
        set { self[key] = newValue }
    }
}

extension KeyMap: Sendable where Value: Sendable {}
extension KeyMap.Entry: Sendable where Value: Sendable {}

extension KeyMap {
    /// The values held, in no particular order.
    var values: [Value] { entries.map(\.value) }
}
