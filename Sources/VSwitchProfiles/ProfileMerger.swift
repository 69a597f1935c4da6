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
    private var documents: [(file: String, set: ProfileSet)] = []
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

    /// Adds the profiles of one accepted document (`file` as named in diagnostics). Returns what clashes with the
    /// documents added before (each clashing profile is left out of `merged`); empty: every profile was merged.
    public mutating func add(file: String, _ set: ProfileSet) -> [Clash] {
        let d = documents.count
        documents.append((file, set))
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

    private func clash(_ kind: Clash.Kind, _ value: String, profile k: Int, of d: Int, first: Owner) -> Clash {
        let later = documents[d].set.profiles[k], earlier = documents[first.document].set.profiles[first.profile]
        let firstFile = documents[first.document].file
        let message: String
        switch kind {
        case .id:
            let sameCase = earlier.networkPortProfileID == value
            message = "NetworkPortProfileID '\(value)' is already used by profile \(earlier.networkPortProfileID) in \(firstFile)"
                + "\(sameCase ? "" : "; UUIDs are compared case-insensitively"); IDs must be unique across profile files"
        case .instanceID:
            message = "InstanceID '\(value)' is already used by profile \(earlier.networkPortProfileID) in \(firstFile); InstanceIDs must be unique across profile files"
        }
        let element = kind == .id ? "epasd:NetworkPortProfileID" : "epasd:InstanceID"
        let d = XMLDiagnostic(.error, file: documents[d].file, line: 0, column: 0, profile: later.networkPortProfileID,
                              element: element, message: message)
        return Clash(kind: kind, value: value, profile: later.networkPortProfileID, firstFile: firstFile,
                     firstProfile: earlier.networkPortProfileID, diagnostic: d)
    }
}
