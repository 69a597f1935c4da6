// VSwitchProfiles — port-profile documents: read, validate, write.
//
// Design
// - Input: form 1 (root vsx:NetworkPortProfiles FormatVersion="1.0") or form 2 (a whole
//   OVF 2.0 envelope, from which every ovf:NetworkSection/ovf:Network/ovf:NetworkPortProfile
//   is harvested). Namespaces are matched exactly (ProfileNamespace).
// - Pipeline: VSwitchXML parses (bounded, no DTD, no entities, no network) and, for form 1,
//   validates against the shipped XSD (Schema/*.xsd, compiled from the identical copies in
//   EmbeddedSchemas.swift so that no resource bundle has to be found at run time); then
//   ProfileReader / ItemReader / ACLReader apply the semantic rules of
//   shared/spec/port-profile.md. XSD findings on an element the reader already reported on
//   are dropped (the reader's message is the more precise one); the rest are kept.
// - All or nothing: any error refuses the whole document; `ProfileLoadError` carries every
//   diagnostic (errors and warnings), sorted by position. Warnings of an accepted document
//   are returned in `ProfileSet.warnings`.
// - Output (ProfileWriter): form 1, DMTF elements alphabetically then vsx extensions, so
//   load → write → load gives equal profiles and write is a fixed point.
//
// Threading
// - Control plane only. Every function is synchronous, reentrant and may be called from any
//   thread; libxml2 work is serialised inside VSwitchXML. The compiled XSD is built once,
//   on first use, and shared.

import VSwitchXML
import VSwitchPolicy

/// The profiles of one document (or of several, merged by the topology loader).
public struct ProfileSet: Sendable {
    public var profiles: [PortProfile]
    public var warnings: [XMLDiagnostic]

    public init(profiles: [PortProfile] = [], warnings: [XMLDiagnostic] = []) {
        self.profiles = profiles
        self.warnings = warnings
    }

    /// The profile with this NetworkPortProfileID; UUIDs compare case-insensitively.
    public func profile(id: String) -> PortProfile? {
        // Exact match first: the common case, and no normalisation per profile (the snapshot is rebuilt
        // for every port on every change: 1,000 ports x N profiles of string work otherwise).
        if let p = profiles.first(where: { $0.networkPortProfileID == id }) { return p }
        let key = Self.normalizedID(id)
        return profiles.first { Self.normalizedID($0.networkPortProfileID) == key }
    }

    /// The IDs, in document order.
    public var ids: [String] { profiles.map(\.networkPortProfileID) }

    /// The comparison key of an ID: UUID-shaped IDs are lower-cased, others kept as they are.
    public static func normalizedID(_ id: String) -> String {
        ValueSyntax.isUUID(id) ? id.lowercased() : id
    }
}

/// A refused document: every diagnostic found (errors and warnings), in document order.
public struct ProfileLoadError: Error, CustomStringConvertible, Sendable {
    public var diagnostics: [XMLDiagnostic]
    public init(diagnostics: [XMLDiagnostic]) { self.diagnostics = diagnostics }
    public var errors: [XMLDiagnostic] { diagnostics.filter(\.isError) }
    public var description: String { diagnostics.map(\.description).joined(separator: "\n") }
}

public enum ProfileLoader {
    /// Limits applied to every profile document.
    public static let limits = XMLLimits(maxBytes: 4 << 20, maxDepth: 64)

    /// Reads and validates a profile file (form 1 or an OVF 2.0 envelope).
    public static func load(path: String) throws -> ProfileSet {
        let bytes: [UInt8]
        do {
            bytes = try XMLParser.readFile(path: path, maxBytes: limits.maxBytes)
        } catch {
            throw ProfileLoadError(diagnostics: error.diagnostics)
        }
        return try load(data: bytes, fileName: path)
    }

    /// Reads and validates a profile document held in memory; `fileName` is used in diagnostics.
    public static func load(data: [UInt8], fileName: String) throws -> ProfileSet {
        let schema: XMLSchema
        switch ProfileSchema.compiled {
        case .success(let s): schema = s
        case .failure(let e): throw ProfileLoadError(diagnostics: e.diagnostics)
        }
        let parsed: XMLParseResult
        do {
            parsed = try XMLParser.parse(bytes: data, fileName: fileName, limits: limits, schema: schema)
        } catch {
            throw ProfileLoadError(diagnostics: error.diagnostics)
        }
        var reader = ProfileReader(file: fileName)
        reader.read(parsed.document.root)
        reader.out.append(contentsOf: parsed.warnings)
        if reader.isForm1 {
            let r = reader
            reader.out.merge(validation: parsed.validationIssues, profileOf: { r.profileLabel(containing: $0) })
        }
        let diagnostics = reader.out.sorted
        if diagnostics.contains(where: \.isError) {
            throw ProfileLoadError(diagnostics: diagnostics)
        }
        return ProfileSet(profiles: reader.profiles, warnings: diagnostics)
    }
}

/// The form-1 XSD, as shipped in Sources/VSwitchProfiles/Schema.
public enum ProfileSchema {
    /// File name → text of every schema document; `mainDocument` imports the others.
    public static let documents: [String: String] = [
        "port-profiles.xsd": EmbeddedSchemas.portProfiles,
        "ovf-network-port-profile.xsd": EmbeddedSchemas.ovfNetworkPortProfile,
        "epasd.xsd": EmbeddedSchemas.epasd,
    ]
    public static let mainDocument = "port-profiles.xsd"

    /// Compiled on first use (thread-safe lazy static).
    static let compiled: Result<XMLSchema, XMLError> = {
        do throws(XMLError) {
            return .success(try XMLSchema(main: mainDocument, documents: documents, prefixes: ProfileNamespace.prefixes))
        } catch {
            return .failure(error)
        }
    }()
}
