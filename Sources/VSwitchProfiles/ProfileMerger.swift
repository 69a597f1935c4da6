// What spans profile documents loaded one by one (the daemon's profile files, a topology's
// ProfileFile list): NetworkPortProfileID (UUIDs compared case-insensitively) and InstanceID are
// unique across all of them, as ProfileReader.checkUniqueness makes them unique within one — so
// that the merged set is one `profile export` can write as a single document that loads again.
// Used by VSwitchDaemon.SwitchModel.merge, the topology reader and TopologyLoader.loadProfiles.

import VSwitchXML
import VSwitchPolicy

public struct ProfileMerger: Sendable {
    /// The profiles of every document added, those that clashed left out.
    public private(set) var merged = ProfileSet()

    private struct Owner: Sendable {
        var document: Int
        var profile: Int
    }
    private var documents: [(file: String, data: [UInt8]?, set: ProfileSet)] = []
    /// Per document, once asked: where each profile's ID and InstanceID elements are (`identityPositions`).
    private var positions: [Int: [Identity]] = [:]
    private var ids: [String: Owner] = [:]
    private var instanceIDs: [String: Owner] = [:]

    public init() {}

    /// A clash of one profile of the document just added with one of an earlier document.
    public struct Clash: Sendable {
        public enum Kind: Sendable { case id, instanceID }
        public var kind: Kind
        /// The value both use (as written in the later document).
        public var value: String
        /// The later profile's ID, and the earlier document and profile ID.
        public var profile: String
        public var firstFile: String
        public var firstProfile: String
        public var diagnostic: XMLDiagnostic
    }

    /// Adds the profiles of one accepted document (`file` as named in diagnostics; `data`, its bytes, else the file
    /// `file` is read again if a clash needs positions). Returns what clashes with the documents added before (each
    /// clashing profile is left out of `merged`); empty: every profile was merged. A clash's diagnostic is located
    /// at the later profile's element (file:line:column) and names the first one's file and line.
    public mutating func add(file: String, data: [UInt8]? = nil, _ set: ProfileSet) -> [Clash] {
        let d = documents.count
        documents.append((file, data, set))
        var clashes: [Clash] = []
        for k in set.profiles.indices {
            let p = set.profiles[k]
            var clean = true
            let idKey = ProfileSet.normalizedID(p.networkPortProfileID)
            if let first = ids[idKey] {
                clashes.append(clash(.id, p.networkPortProfileID, profile: k, of: d, first: first))
                clean = false
            }
            if !p.instanceID.isEmpty, let first = instanceIDs[p.instanceID] {
                clashes.append(clash(.instanceID, p.instanceID, profile: k, of: d, first: first))
                clean = false
            }
            guard clean else { continue }
            ids[idKey] = Owner(document: d, profile: k)
            if !p.instanceID.isEmpty { instanceIDs[p.instanceID] = Owner(document: d, profile: k) }
            merged.profiles.append(p)
        }
        merged.warnings += set.warnings
        return clashes
    }

    private mutating func clash(_ kind: Clash.Kind, _ value: String, profile k: Int, of d: Int, first: Owner) -> Clash {
        let later = documents[d].set.profiles[k], earlier = documents[first.document].set.profiles[first.profile]
        let firstFile = documents[first.document].file
        // Positions, from the documents read again (an error path only; a profile taken from a read cache has
        // no element of its own in the load that gave it).
        let here = identity(document: d, profile: k), there = identity(document: first.document, profile: first.profile)
        let at = kind == .id ? here?.id : here?.instanceID
        let firstLine = (kind == .id ? there?.id : there?.instanceID).map { " (line \($0.line))" } ?? ""
        let message: String
        switch kind {
        case .id:
            let sameCase = earlier.networkPortProfileID == value
            message = "NetworkPortProfileID '\(value)' is already used by profile \(there?.label ?? earlier.networkPortProfileID) in \(firstFile)\(firstLine)"
                + "\(sameCase ? "" : "; UUIDs are compared case-insensitively"); IDs must be unique across profile files"
        case .instanceID:
            message = "InstanceID '\(value)' is already used by profile \(there?.label ?? earlier.networkPortProfileID) in \(firstFile)\(firstLine); InstanceIDs must be unique across profile files"
        }
        let element = kind == .id ? "epasd:NetworkPortProfileID" : "epasd:InstanceID"
        let diagnostic = XMLDiagnostic(.error, file: documents[d].file, line: at?.line ?? 0, column: at?.column ?? 0,
                                       profile: here?.label ?? later.networkPortProfileID, element: element, message: message)
        return Clash(kind: kind, value: value, profile: later.networkPortProfileID, firstFile: firstFile,
                     firstProfile: earlier.networkPortProfileID, diagnostic: diagnostic)
    }

    /// Where one profile's identity elements are, and its label (as the document's own diagnostics name it).
    struct Identity: Sendable {
        var label: String
        var id: (line: Int, column: Int)?
        var instanceID: (line: Int, column: Int)?
    }

    private mutating func identity(document d: Int, profile k: Int) -> Identity? {
        if positions[d] == nil {
            positions[d] = Self.identityPositions(data: documents[d].data, file: documents[d].file,
                                                  count: documents[d].set.profiles.count)
        }
        let list = positions[d]!
        return k < list.count ? list[k] : nil
    }

    /// Reads the document again (no cache, no schema: it was accepted) for the positions of each profile's
    /// identity elements, in the order the loader returned its profiles. Empty if it cannot be read again as it was.
    static func identityPositions(data: [UInt8]?, file: String, count: Int) -> [Identity] {
        let bytes: [UInt8]
        if let data { bytes = data } else {
            guard let read = try? XMLParser.readFile(path: file, maxBytes: ProfileLoader.limits.maxBytes) else { return [] }
            bytes = read
        }
        guard let parsed = try? XMLParser.parse(bytes: bytes, fileName: file, limits: ProfileLoader.limits) else { return [] }
        var reader = ProfileReader(file: file)
        reader.read(parsed.document.root)
        guard reader.profiles.count == count, reader.idElements.count == count, reader.instanceIDElements.count == count else { return [] }
        return (0..<count).map { i in
            Identity(label: reader.blocks[i].label,
                     id: reader.idElements[i].map { ($0.line, $0.column) },
                     instanceID: reader.instanceIDElements[i].map { ($0.line, $0.column) })
        }
    }
}
