// Reads a parsed topology document: settings, profile files (loaded and merged), ports.
// Decisions:
// - Topology/@Name is required (it names the switch in logs and status output).
// - Port/@Type defaults to "tap"; "netdev" attaches the existing interface Port/@Interface (no VirtualSystem).
// - A Port with both MACAddress and a VirtualSystem binds the VirtualSystem's MAC; a
//   different MACAddress attribute is ignored with a warning.
// - MaxMACsPerPort may not exceed MACTableSize.
// - A profile's burst sizes must hold one full frame at the MTU of every port bound to it
//   (MTU + 14-byte Ethernet header + two 4-byte VLAN tags).

import VSwitchXML
import VSwitchProfiles
import VSwitchPacket
import VSwitchPolicy
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

enum Paths {
    static func absolute(_ path: String) -> String {
        if path.hasPrefix("/") { return normalize(path) }
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        guard getcwd(&buffer, buffer.count) != nil else { return normalize(path) }
        let cwd = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return normalize(cwd + "/" + path)
    }

    static func directory(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        return slash == path.startIndex ? "/" : String(path[..<slash])
    }

    /// Removes `.`, `..` and repeated slashes lexically (symlinks are not resolved).
    static func normalize(_ path: String) -> String {
        var parts: [Substring] = []
        for c in path.split(separator: "/", omittingEmptySubsequences: true) {
            if c == "." { continue }
            if c == ".." { if !parts.isEmpty { parts.removeLast() }; continue }
            parts.append(c)
        }
        return "/" + parts.joined(separator: "/")
    }
}

struct TopologyReader {
    static let rootAttributes = ["Name"]
    static let switchAttributes = ["MACAgingTime", "MACTableSize", "ForwardingThreads", "MaxMACsPerPort"]
    static let profileFileAttributes = ["Path"]
    static let portAttributes = ["Name", "Type", "Profile", "MTU", "MACAddress", "Adopt", "Interface", "Offload"]
    static let virtualSystemAttributes = ["Namespace", "InterfaceName", "MACAddress"]
    /// The daemon's range (PortMTU, shared with SwitchModel): a topology --check accepts is one start-up accepts.
    static let mtuRange = PortMTU.range
    /// Ethernet header plus two VLAN tags: what a full frame adds to the MTU.
    static let frameOverhead = ProfileFit.frameOverhead

    var out: DiagnosticCollector
    let absolutePath: String
    private(set) var rootIsTopology = false
    private(set) var profileDiagnostics: [XMLDiagnostic] = []
    private var profileFileFailed = false

    init(file: String, absolutePath: String) {
        out = DiagnosticCollector(file: file, prefixes: [TopologyLoader.namespace: ""])
        self.absolutePath = absolutePath
    }

    mutating func read(_ root: XMLElement) -> Topology {
        var topology = Topology(name: "", path: absolutePath)
        let ns = TopologyLoader.namespace
        guard root.name == "Topology", root.namespaceURI == ns else {
            if root.name == "Topology" {
                error(root, "the root is in namespace '\(root.namespaceURI ?? "")'; a topology uses xmlns=\"\(ns)\"")
            } else {
                error(root, "<\(root.qualifiedName)> is not a topology document; expected root <Topology xmlns=\"\(ns)\" Name=\"…\">")
            }
            return topology
        }
        rootIsTopology = true
        checkAttributes(root, allowed: Self.rootAttributes)
        checkNoText(root)
        if let a = root.attribute("Name") {
            let name = XMLElement.trim(a.value)
            if name.isEmpty || name.count > 64 { error(root, a, "Name must be 1..64 characters") }
            topology.name = name
        } else {
            out.missingAttribute(root, "Name", profile: nil, "Topology needs a Name (1..64 characters) naming the switch")
        }

        var switchElement: XMLElement?
        var profileFileElements: [XMLElement] = []
        var portElements: [XMLElement] = []
        for c in root.children {
            guard c.namespaceURI == ns else { foreign(c, inside: "Topology", expected: "Switch, ProfileFile or Port"); continue }
            switch c.name {
            case "Switch":
                if let first = switchElement { error(c, "a second Switch element (first at line \(first.line)); at most one is allowed") }
                else { switchElement = c }
            case "ProfileFile": profileFileElements.append(c)
            case "Port": portElements.append(c)
            default:
                let hint = Suggestion.hint(for: c.name, among: ["Switch", "ProfileFile", "Port"])
                error(c, "unknown element\(hint); a Topology holds Switch, ProfileFile and Port elements")
            }
        }
        if let s = switchElement { topology.settings = readSwitch(s) }
        let (files, profiles) = readProfileFiles(profileFileElements)
        topology.profileFiles = files
        topology.profiles = profiles
        // Unknown-profile errors would only echo a refused or unreadable profile file.
        let profilesComplete = !profileFileFailed && !profileDiagnostics.contains(where: \.isError)
        topology.ports = readPorts(portElements, profiles: profiles, checkBindings: profilesComplete,
                                   settings: topology.settings, hasProfileFiles: !profileFileElements.isEmpty)
        return topology
    }

    // MARK: Switch

    private mutating func readSwitch(_ e: XMLElement) -> SwitchSettings {
        checkAttributes(e, allowed: Self.switchAttributes)
        checkNoChildren(e)
        var s = SwitchSettings()
        if let v = integer(e, "MACAgingTime", SwitchSettings.macAgingTimeRange, "seconds") { s.macAgingTime = v }
        if let v = integer(e, "MACTableSize", SwitchSettings.macTableSizeRange, "entries") { s.macTableSize = v }
        if let v = integer(e, "ForwardingThreads", SwitchSettings.forwardingThreadsRange, "threads; 0 = one per core") { s.forwardingThreads = v }
        if let v = integer(e, "MaxMACsPerPort", 0...Int(UInt32.max), "addresses") {
            if v > s.macTableSize {
                error(e, e.attribute("MaxMACsPerPort"), "MaxMACsPerPort \(v) exceeds MACTableSize \(s.macTableSize); use 0..\(s.macTableSize)")
            } else {
                s.maxMACsPerPort = UInt32(v)
            }
        }
        return s
    }

    // MARK: ProfileFile

    private mutating func readProfileFiles(_ elements: [XMLElement]) -> ([String], ProfileSet) {
        var files: [String] = []
        var merger = ProfileMerger()   // IDs and InstanceIDs unique across files (shared with the daemon)
        var fileElements: [String: XMLElement] = [:]
        let base = Paths.directory(of: absolutePath)
        for e in elements {
            checkAttributes(e, allowed: Self.profileFileAttributes)
            checkNoChildren(e)
            guard let a = e.attribute("Path") else {
                out.missingAttribute(e, "Path", profile: nil, "ProfileFile needs a Path (absolute, or relative to the topology file)")
                continue
            }
            let written = XMLElement.trim(a.value)
            guard !written.isEmpty else { error(e, a, "Path is empty; give a profile file (absolute, or relative to the topology file)"); continue }
            let path = written.hasPrefix("/") ? Paths.normalize(written) : Paths.normalize(base + "/" + written)
            if files.contains(path) {
                warning(e, a, "'\(written)' is already listed; loaded once")
                continue
            }
            files.append(path)
            let bytes: [UInt8]
            do {
                bytes = try XMLParser.readFile(path: path, maxBytes: ProfileLoader.limits.maxBytes)
            } catch {
                let why = error.diagnostics.first?.message ?? "cannot read"
                self.error(e, a, "profile file '\(path)' \(why)")
                profileFileFailed = true
                continue
            }
            do {
                let set = try ProfileLoader.load(data: bytes, fileName: path)
                profileDiagnostics += set.warnings
                fileElements[path] = e
                for c in merger.add(file: path, data: bytes, set) {
                    profileDiagnostics.append(c.diagnostic)   // located in the profile file (listed with its name)
                    let line = fileElements[c.firstFile]?.line ?? 0
                    switch c.kind {
                    case .id:
                        error(e, a, "profile '\(c.profile)' in '\(path)' is also defined in '\(c.firstFile)' (ProfileFile at line \(line)); profile IDs must be unique across files")
                    case .instanceID:
                        error(e, a, "InstanceID '\(c.value)' of profile '\(c.profile)' in '\(path)' is also used by profile '\(c.firstProfile)' in '\(c.firstFile)' (ProfileFile at line \(line)); InstanceIDs must be unique across files")
                    }
                }
            } catch let failure as ProfileLoadError {
                profileDiagnostics += failure.diagnostics
                let count = failure.errors.count
                profileFileFailed = true
                error(e, a, "profile file '\(path)' was refused (\(count) error\(count == 1 ? "" : "s"), listed with its name)")
            } catch {
                self.error(e, a, "profile file '\(path)': \(error)")
                profileFileFailed = true
            }
        }
        return (files, merger.merged)
    }

    // MARK: Port

    private mutating func readPorts(_ elements: [XMLElement], profiles: ProfileSet, checkBindings: Bool,
                                    settings: SwitchSettings, hasProfileFiles: Bool) -> [TopologyPort] {
        var ports: [TopologyPort] = []
        var names: [String: Int] = [:]
        var namespaces: [String: (port: String, line: Int)] = [:]
        var macs: [MACAddress: (port: String, line: Int)] = [:]
        for e in elements {
            checkAttributes(e, allowed: Self.portAttributes)
            checkNoText(e)
            var port = TopologyPort(name: "", profileID: "")
            var ok = true

            if let a = e.attribute("Name") {
                let name = XMLElement.trim(a.value)
                if let why = Self.interfaceNameProblem(name) {
                    error(e, a, "port name '\(name)' \(why)"); ok = false
                } else if let line = names[name] {
                    error(e, a, "port name '\(name)' is already used (line \(line)); port names must be unique"); ok = false
                } else {
                    names[name] = e.line
                }
                port.name = name
            } else {
                out.missingAttribute(e, "Name", profile: nil, "Port needs a Name: the TAP device name, 1..15 characters of A-Z a-z 0-9 _ . -")
                ok = false
            }

            if let a = e.attribute("Type") {
                let t = XMLElement.trim(a.value)
                if let kind = PortKind(rawValue: t) { port.kind = kind }
                else { error(e, a, "unknown port Type '\(t)'; valid types: \(Self.validTypes)"); ok = false }
            }

            if let v = integer(e, "MTU", Self.mtuRange, "bytes") { port.mtu = v } else if e.attribute("MTU") != nil { ok = false }

            var attributeMAC: MACAddress?
            if let a = e.attribute("MACAddress") {
                attributeMAC = mac(e, a, what: "the port's MAC address")
                if attributeMAC == nil { ok = false }
            }
            if let a = e.attribute("Adopt") {
                let v = XMLElement.trim(a.value)
                if v == "true" || v == "1" { port.adopt = true }
                else if v == "false" || v == "0" { port.adopt = false }
                else { error(e, a, "'\(v)' is not a boolean; use true, false, 1 or 0"); ok = false }
            }

            if let a = e.attribute("Offload") {
                let v = XMLElement.trim(a.value)
                if port.kind != .tap { error(e, a, "Offload is for Type=\"tap\" ports"); ok = false }
                else if v == "true" || v == "1" { port.offload = true }
                else if v == "false" || v == "0" { port.offload = false }
                else { error(e, a, "'\(v)' is not a boolean; use true, false, 1 or 0"); ok = false }
            }

            if let a = e.attribute("Interface") {
                let name = XMLElement.trim(a.value)
                if port.kind != .netdev { error(e, a, "Interface is for Type=\"netdev\" ports (the existing interface to attach)"); ok = false }
                else if let why = Self.interfaceNameProblem(name) { error(e, a, "interface name '\(name)' \(why)"); ok = false }
                else { port.interface = name }
            } else if port.kind == .netdev {
                out.missingAttribute(e, "Interface", profile: nil, "a netdev Port needs Interface: the existing interface to attach")
                ok = false
            }

            // Children: at most one VirtualSystem.
            var vsElement: XMLElement?
            for c in e.children {
                guard c.namespaceURI == TopologyLoader.namespace else { foreign(c, inside: "Port", expected: "VirtualSystem"); continue }
                if c.name == "VirtualSystem" {
                    if let first = vsElement { error(c, "a second VirtualSystem (first at line \(first.line)); a port connects one virtual system"); ok = false }
                    else { vsElement = c }
                } else {
                    error(c, "unknown element; a Port holds at most one VirtualSystem"); ok = false
                }
            }
            if let vsElement, port.kind == .netdev {
                error(vsElement, "a netdev port attaches an existing interface; it has no VirtualSystem"); ok = false
            } else if let vsElement {
                if let vs = readVirtualSystem(vsElement, namespaces: &namespaces, port: port.name) {
                    port.virtualSystem = vs
                    port.mac = vs.mac
                    if let m = attributeMAC, m != vs.mac, let a = e.attribute("MACAddress") {
                        warning(e, a, "ignored: the port's MAC binding is its VirtualSystem's MACAddress (\(vs.mac)); remove this attribute or make them equal")
                    }
                } else {
                    ok = false
                }
            } else {
                port.mac = attributeMAC
            }
            if let m = port.mac {
                if let first = macs[m] {
                    let at = port.virtualSystem != nil ? vsElement! : e
                    error(at, at.attribute("MACAddress"), "MAC address \(m) is already bound to port '\(first.port)' (line \(first.line)); MAC bindings must be unique")
                    ok = false
                } else {
                    macs[m] = (port.name, e.line)
                }
            }

            // Profile binding.
            if let a = e.attribute("Profile") {
                let id = XMLElement.trim(a.value)
                port.profileID = id
                if id.isEmpty {
                    error(e, a, "Profile is empty; give the NetworkPortProfileID of a loaded profile"); ok = false
                } else if checkBindings {
                    if let profile = profiles.profile(id: id) {
                        port.profileID = profile.networkPortProfileID
                        if ok { checkProfileFit(e, port: port, profile: profile) }
                    } else {
                        let available = profiles.ids.isEmpty ? (hasProfileFiles ? "the profile files define none" : "no ProfileFile is listed")
                            : "available: " + profiles.ids.joined(separator: ", ")
                        error(e, a, "port bound to unknown profile ID '\(id)'; \(available)"); ok = false
                    }
                }
            } else {
                out.missingAttribute(e, "Profile", profile: nil, "Port needs a Profile: the NetworkPortProfileID of a loaded profile")
                ok = false
            }
            if ok { ports.append(port) }
        }
        return ports
    }

    static let validTypes = PortKind.allCases.map(\.rawValue).joined(separator: ", ")

    /// Burst sizes hold a full frame; source MAC filtering has something to allow.
    private mutating func checkProfileFit(_ e: XMLElement, port: TopologyPort, profile: PortProfile) {
        for problem in ProfileFit.burstProblems(profile, mtu: port.mtu) {   // shared with the daemon (SwitchModel)
            error(e, e.attribute("Profile"), problem)
        }
        if profile.effectiveSourceMACFiltering, port.mac == nil, profile.allowedToTransmit.isEmpty {
            warning(e, e.attribute("Profile"), "profile '\(profile.networkPortProfileID)' filters source MACs but this port has no MAC binding (no VirtualSystem, no MACAddress) and the profile allows no other address: every frame from it will be dropped")
        }
    }

    // MARK: VirtualSystem

    private mutating func readVirtualSystem(_ e: XMLElement, namespaces: inout [String: (port: String, line: Int)],
                                            port: String) -> VirtualSystem? {
        checkAttributes(e, allowed: Self.virtualSystemAttributes)
        checkNoText(e)
        var ok = true
        var namespace = ""
        if let a = e.attribute("Namespace") {
            namespace = XMLElement.trim(a.value)
            if let why = Self.nameProblem(namespace, max: 64) {
                error(e, a, "namespace name '\(namespace)' \(why)"); ok = false
            } else if let first = namespaces[namespace] {
                error(e, a, "namespace '\(namespace)' is already used by port '\(first.port)' (line \(first.line)); each virtual system needs its own namespace"); ok = false
            } else {
                namespaces[namespace] = (port, e.line)
            }
        } else {
            out.missingAttribute(e, "Namespace", profile: nil, "VirtualSystem needs a Namespace (1..64 characters of A-Z a-z 0-9 _ . -)")
            ok = false
        }
        var interfaceName = "eth0"
        if let a = e.attribute("InterfaceName") {
            interfaceName = XMLElement.trim(a.value)
            if let why = Self.interfaceNameProblem(interfaceName) { error(e, a, "interface name '\(interfaceName)' \(why)"); ok = false }
        }
        var macAddress: MACAddress?
        if let a = e.attribute("MACAddress") {
            macAddress = mac(e, a, what: "the virtual system's MAC address")
            if macAddress == nil { ok = false }
        } else {
            out.missingAttribute(e, "MACAddress", profile: nil, "VirtualSystem needs a MACAddress (unicast, e.g. 02:00:00:00:0a:01)")
            ok = false
        }
        var addresses: [String] = []
        var seen: [String: Int] = [:]
        for c in e.children {
            guard c.namespaceURI == TopologyLoader.namespace else { foreign(c, inside: "VirtualSystem", expected: "Address"); continue }
            guard c.name == "Address" else { error(c, "unknown element; a VirtualSystem holds Address elements"); ok = false; continue }
            checkAttributes(c, allowed: [])
            checkNoElements(c)
            let text = c.trimmedText
            guard let prefix = IPPrefix(text), prefix.prefixLength != nil else {
                error(c, "'\(text)' is not an address with prefix; expected IPv4 a.b.c.d/N (N ≤ 32) or IPv6 x:y::z/N (N ≤ 128)")
                ok = false
                continue
            }
            let key = prefix.description
            if let line = seen[key] { error(c, "address \(text) is already listed (line \(line))"); ok = false; continue }
            seen[key] = c.line
            addresses.append(text)
        }
        guard ok, let macAddress else { return nil }
        return VirtualSystem(namespace: namespace, interfaceName: interfaceName, mac: macAddress, addresses: addresses)
    }

    // MARK: helpers

    /// Linux interface names: 1..15 characters (IFNAMSIZ − 1) of [A-Za-z0-9_.-], not "." or "..".
    static func interfaceNameProblem(_ name: String) -> String? { nameProblem(name, max: 15) }

    static func nameProblem(_ name: String, max: Int) -> String? {
        if name.isEmpty || name.utf8.count > max { return "must be 1..\(max) characters of A-Z a-z 0-9 _ . -" }
        if name == "." || name == ".." { return "cannot be '.' or '..'" }
        if let bad = name.first(where: { !($0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_" || $0 == "." || $0 == "-")) }) {
            return "contains '\(bad)'; use only A-Z a-z 0-9 _ . - (at most \(max) characters)"
        }
        return nil
    }

    private mutating func integer(_ e: XMLElement, _ name: String, _ range: ClosedRange<Int>, _ unit: String) -> Int? {
        guard let a = e.attribute(name) else { return nil }
        let text = XMLElement.trim(a.value)
        guard !text.isEmpty, text.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }), let v = Int(text), range.contains(v) else {
            error(e, a, "'\(text)' is out of range; \(name) is \(range.lowerBound)..\(range.upperBound) (\(unit))")
            return nil
        }
        return v
    }

    private mutating func mac(_ e: XMLElement, _ a: XMLAttribute, what: String) -> MACAddress? {
        let text = XMLElement.trim(a.value)
        guard let m = MACAddress(text) else {
            error(e, a, "'\(text)' is not a MAC address; write aa:bb:cc:dd:ee:ff, aa-bb-cc-dd-ee-ff or aabbccddeeff")
            return nil
        }
        if m.isMulticast || m.isZero {
            error(e, a, "\(m) cannot be \(what): it must be unicast and non-zero (first octet even, e.g. 02:…)")
            return nil
        }
        return m
    }

    private mutating func checkAttributes(_ e: XMLElement, allowed: [String]) {
        for a in e.attributes {
            if a.namespaceURI == xsiNamespace { continue }
            if a.namespaceURI == nil {
                guard !allowed.contains(a.name) else { continue }
                let hint = Suggestion.hint(for: a.name, among: allowed)
                let valid = allowed.isEmpty ? "it takes no attributes" : "valid attributes: \(allowed.joined(separator: ", "))"
                error(e, a, "unknown attribute\(hint); \(valid)")
            } else if a.namespaceURI == TopologyLoader.namespace {
                error(e, a, "unknown attribute; attributes are written without a prefix")
            } else {
                warning(e, a, "attribute in foreign namespace '\(a.namespaceURI!)' ignored")
            }
        }
    }

    private mutating func checkNoText(_ e: XMLElement) {
        if e.hasText { error(e, "text is not allowed directly inside <\(e.name)> (found '\(String(e.trimmedText.prefix(20)))')") }
    }

    private mutating func checkNoChildren(_ e: XMLElement) {
        checkNoText(e)
        checkNoElements(e)
    }

    private mutating func checkNoElements(_ e: XMLElement) {
        for c in e.children {
            if c.namespaceURI == TopologyLoader.namespace { error(c, "<\(e.name)> holds no elements") }
            else { foreign(c, inside: e.name, expected: "nothing") }
        }
    }

    private mutating func foreign(_ c: XMLElement, inside: String, expected: String) {
        if c.namespaceURI == nil {
            error(c, "element has no namespace (missing xmlns=\"\(TopologyLoader.namespace)\"?); expected \(expected) inside \(inside)")
        } else {
            warning(c, nil, "element in foreign namespace '\(c.namespaceURI!)' ignored")
        }
    }

    private mutating func error(_ e: XMLElement, _ message: String) { out.error(e, nil, profile: nil, message) }
    private mutating func error(_ e: XMLElement, _ a: XMLAttribute?, _ message: String) { out.error(e, a, profile: nil, message) }
    private mutating func warning(_ e: XMLElement, _ a: XMLAttribute?, _ message: String) { out.warning(e, a, profile: nil, message) }
}
