// The document-level reader: finds the profiles in form 1 (vsx:NetworkPortProfiles) and
// form 2 (an OVF 2.0 envelope), reads each ovf:Item with ItemReader, then checks what
// spans profiles (ID and InstanceID uniqueness).

import VSwitchXML
import VSwitchPolicy

struct ProfileReader {
    var out: DiagnosticCollector
    private(set) var profiles: [PortProfile] = []
    /// Element-index range of each ovf:NetworkPortProfile and its label, for placing XSD findings.
    private(set) var blocks: [(range: Range<Int>, label: String)] = []
    private(set) var isForm1 = false
    /// The reading of the previous load, for the blocks the parser did not build (`XMLElement.reused`).
    let previous: ProfileReadCache?
    /// Blocks taken from `previous`.
    private(set) var reusedBlocks = 0
    /// Blocks read without any diagnostic (and reused ones), for the next load's cache.
    /// (`profile` indexes `profiles`: no copy of the profile itself.)
    private(set) var cacheableBlocks: [(element: XMLElement, profile: Int, label: String)] = []

    /// When set, a reused element's token `t` stands for `previous.entries[tokenMap[t]]` (the partial
    /// reload's placeholders are numbered in document order); otherwise the token is the entry index.
    let tokenMap: [Int]?

    init(file: String, previous: ProfileReadCache? = nil, tokenMap: [Int]? = nil) {
        out = DiagnosticCollector(file: file, prefixes: ProfileNamespace.prefixes)
        self.previous = previous
        self.tokenMap = tokenMap
    }

    func profileLabel(containing index: Int) -> String? {
        blocks.first { $0.range.contains(index) }?.label
    }

    mutating func read(_ root: XMLElement) {
        let ovf = ProfileNamespace.ovf, vsx = ProfileNamespace.vsx
        switch (root.namespaceURI, root.name) {
        case (vsx, "NetworkPortProfiles"):
            isForm1 = true
            readForm1(root)
        case (ovf, "Envelope"):
            readEnvelope(root)
        case (_, "NetworkPortProfiles"):
            out.error(root, profile: nil, "root element is in namespace '\(root.namespaceURI ?? "")'; a profile file's root must be vsx:NetworkPortProfiles with xmlns:vsx=\"\(vsx)\"")
        case ("http://schemas.dmtf.org/ovf/envelope/1", "Envelope"):
            out.error(root, profile: nil, "OVF 1.x envelopes are not supported (they have no ovf:NetworkPortProfile); expected an OVF 2.0 envelope, xmlns:ovf=\"\(ovf)\"")
        case (_, "Envelope"):
            out.error(root, profile: nil, "root element is in namespace '\(root.namespaceURI ?? "")'; an OVF 2.0 envelope uses xmlns:ovf=\"\(ovf)\"")
        default:
            out.error(root, profile: nil, "<\(root.qualifiedName)> is not a profile document; expected root vsx:NetworkPortProfiles (xmlns:vsx=\"\(vsx)\") or an OVF 2.0 ovf:Envelope (xmlns:ovf=\"\(ovf)\")")
        }
        checkUniqueness()
    }

    // MARK: form 1

    private mutating func readForm1(_ root: XMLElement) {
        if let v = root.attribute("FormatVersion") {
            if XMLElement.trim(v.value) != "1.0" {
                out.error(root, v, profile: nil, "FormatVersion '\(v.value)' is not supported; this switch reads FormatVersion=\"1.0\"")
            }
        } else {
            out.missingAttribute(root, "FormatVersion", profile: nil, "missing FormatVersion; write FormatVersion=\"1.0\"")
        }
        checkAttributes(root, allowed: ["FormatVersion"], profile: nil)
        checkNoText(root, profile: nil)
        var ordinal = 0
        for child in root.children {
            if child.namespaceURI == ProfileNamespace.ovf, child.name == "NetworkPortProfile" {
                ordinal += 1
                readBlock(child, ordinal: ordinal)
            } else {
                unexpected(child, profile: nil, inside: "vsx:NetworkPortProfiles", expected: "ovf:NetworkPortProfile")
            }
        }
    }

    // MARK: form 2

    private mutating func readEnvelope(_ root: XMLElement) {
        var ordinal = 0
        func networkSections(_ e: XMLElement) -> [XMLElement] {
            e.children.flatMap { c -> [XMLElement] in
                if c.namespaceURI == ProfileNamespace.ovf, c.name == "NetworkSection" { return [c] }
                return networkSections(c)
            }
        }
        for section in networkSections(root) {
            for network in section.children where network.namespaceURI == ProfileNamespace.ovf && network.name == "Network" {
                for block in network.children where block.namespaceURI == ProfileNamespace.ovf && block.name == "NetworkPortProfile" {
                    ordinal += 1
                    readBlock(block, ordinal: ordinal)
                }
            }
        }
        if ordinal == 0 {
            out.warning(root, profile: nil, "the envelope holds no ovf:NetworkPortProfile under ovf:NetworkSection/ovf:Network; no profiles loaded")
        }
    }

    // MARK: one ovf:NetworkPortProfile

    private mutating func readBlock(_ block: XMLElement, ordinal: Int) {
        if let t = block.reused, let previous,
           case let token = tokenMap.map { t >= 0 && t < $0.count ? $0[t] : -1 } ?? t,
           token >= 0, token < previous.entries.count {
            // Unchanged since the previous load, which read it without a diagnostic. The block element
            // stands in for its ID elements: a clash with another profile is an error, and a load with
            // an error is read again in full (ProfileLoader), so no message ever points at it.
            // (Fields read in place: copying the entry copies the profile, a retain per field.)
            let label = previous.entries[token].label
            blocks.append((block.index..<block.subtreeEnd, label))
            profiles.append(previous.entries[token].profile)
            idElements.append(block)
            instanceIDElements.append(block)
            cacheableBlocks.append((block, profiles.count - 1, label))
            reusedBlocks += 1
            return
        }
        let before = out.diagnostics.count
        readBlockElements(block, ordinal: ordinal)
        if out.diagnostics.count == before, profiles.count == blocks.count, let label = blocks.last?.label {
            cacheableBlocks.append((block, profiles.count - 1, label))
        }
    }

    private mutating func readBlockElements(_ block: XMLElement, ordinal: Int) {
        let items = block.children.filter { $0.namespaceURI == ProfileNamespace.ovf && $0.name == "Item" }
        let label = items.first.flatMap(ItemReader.label(of:)) ?? "#\(ordinal)"
        blocks.append((block.index..<block.subtreeEnd, label))
        for a in block.attributes where a.namespaceURI != xsiNamespace {
            out.warning(block, a, profile: label, "attribute ignored; ovf:NetworkPortProfile needs none")
        }
        checkNoText(block, profile: label)
        for child in block.children where !(child.namespaceURI == ProfileNamespace.ovf && child.name == "Item") {
            unexpected(child, profile: label, inside: "ovf:NetworkPortProfile", expected: "exactly one ovf:Item")
        }
        guard let item = items.first else {
            out.error(block, profile: label, "has no ovf:Item; a profile is exactly one ovf:Item holding its epasd:* properties and vsx:* extensions")
            return
        }
        for extra in items.dropFirst() {
            out.error(extra, profile: label, "a second ovf:Item in one ovf:NetworkPortProfile; exactly one is allowed (put each profile in its own ovf:NetworkPortProfile)")
        }
        var reader = ItemReader(item: item, label: label, out: out)
        let profile = reader.read()
        out = reader.out
        profiles.append(profile)
        idElements.append(reader.idElement)
        instanceIDElements.append(reader.instanceIDElement)
    }

    /// Per profile (as `profiles`): its epasd:NetworkPortProfileID and epasd:InstanceID elements (the block element
    /// for a profile taken from the cache), for the checks across profiles — here and across files (ProfileMerger).
    private(set) var idElements: [XMLElement?] = []
    private(set) var instanceIDElements: [XMLElement?] = []

    // MARK: across profiles

    private mutating func checkUniqueness() {
        var ids: [String: (Int, XMLElement)] = [:]
        var instanceIDs: [String: (Int, XMLElement)] = [:]
        ids.reserveCapacity(profiles.count)
        instanceIDs.reserveCapacity(profiles.count)
        // By index, fields read in place: `for p in profiles` copied every profile (a retain and a release per
        // field, a third of this check with 1,000 profiles, issue 3).
        for i in profiles.indices {
            let id = profiles[i].networkPortProfileID
            if let e = idElements[i], !id.isEmpty {
                let key = ProfileSet.normalizedID(id)
                if let (first, firstElement) = ids[key] {
                    let sameCase = profiles[first].networkPortProfileID == id
                    out.error(e, profile: blocks[i].label,
                              "NetworkPortProfileID '\(id)' is already used by profile \(blocks[first].label) (line \(firstElement.line))\(sameCase ? "" : "; UUIDs are compared case-insensitively"); IDs must be unique")
                } else {
                    ids[key] = (i, e)
                }
            }
            let instanceID = profiles[i].instanceID
            if let e = instanceIDElements[i], !instanceID.isEmpty {
                if let (first, firstElement) = instanceIDs[instanceID] {
                    out.error(e, profile: blocks[i].label,
                              "InstanceID '\(instanceID)' is already used by profile \(blocks[first].label) (line \(firstElement.line)); InstanceIDs must be unique")
                } else {
                    instanceIDs[instanceID] = (i, e)
                }
            }
        }
    }

    // MARK: shared checks

    private mutating func unexpected(_ e: XMLElement, profile: String?, inside context: String, expected: String) {
        Self.unexpected(e, out: &out, profile: profile, inside: context, expected: expected)
    }

    static func unexpected(_ e: XMLElement, out: inout DiagnosticCollector, profile: String?, inside context: String, expected: String) {
        switch e.namespaceURI {
        case ProfileNamespace.ovf?, ProfileNamespace.epasd?, ProfileNamespace.vsx?:
            out.error(e, profile: profile, "not allowed inside \(context); expected \(expected)")
        case nil:
            out.error(e, profile: profile, "element has no namespace (a missing prefix?); expected \(expected)")
        default:
            out.warning(e, profile: profile, "element in foreign namespace '\(e.namespaceURI!)' ignored")
        }
    }

    private mutating func checkAttributes(_ e: XMLElement, allowed: [String], profile: String?) {
        Self.checkAttributes(e, allowed: allowed, out: &out, profile: profile)
    }

    /// Unprefixed attributes must be in `allowed`; xsi:* are accepted; other namespaces are ignored with a warning.
    /// `isAllowed`, when given, must say the same as `allowed.contains` (a faster test for long lists).
    static func checkAttributes(_ e: XMLElement, allowed: [String], isAllowed: ((String) -> Bool)? = nil,
                                out: inout DiagnosticCollector, profile: String?) {
        // By index, the common case (an allowed unprefixed attribute) read in place: no copy of the attribute.
        for i in e.attributes.indices {
            if e.attributes[i].namespaceURI == nil {
                if let isAllowed { if isAllowed(e.attributes[i].name) { continue } }
                else if allowed.contains(e.attributes[i].name) { continue }
            }
            let a = e.attributes[i]
            if a.namespaceURI == xsiNamespace { continue }
            if a.namespaceURI == nil {
                let valid = allowed.isEmpty ? "it takes no attributes" : "valid attributes: \(allowed.joined(separator: ", "))"
                let hint = ValueSyntax.suggestion(for: a.name, among: allowed).map { " (did you mean \($0)?)" } ?? ""
                out.error(e, a, profile: profile, "unknown attribute\(hint); \(valid)")
            } else if ProfileNamespace.prefixes[a.namespaceURI!] != nil {
                out.error(e, a, profile: profile, "unknown attribute; attributes are written without a prefix")
            } else {
                out.warning(e, a, profile: profile, "attribute in foreign namespace '\(a.namespaceURI!)' ignored")
            }
        }
    }

    private mutating func checkNoText(_ e: XMLElement, profile: String?) {
        if e.hasText {
            out.error(e, profile: profile, "text is not allowed directly inside this element (found '\(String(e.trimmedText.prefix(20)))')")
        }
    }
}
