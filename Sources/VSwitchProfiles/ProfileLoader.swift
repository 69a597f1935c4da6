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
// - Reloads (issue 3): `load(data:fileName:cache:)` keeps a `ProfileReadCache` of the last
//   accepted document; the next load still parses and XSD-validates everything, but does not
//   build or read again an ovf:NetworkPortProfile whose source bytes (and the root's namespace
//   declarations) are unchanged and which was read without any diagnostic. Rules across
//   profiles run on every load, and a load with any error is redone without the cache, so
//   diagnostics never depend on it. The cache changes only when a load succeeds.
// - Output (ProfileWriter): form 1, DMTF elements alphabetically then vsx extensions, so
//   load → write → load gives equal profiles and write is a fixed point.
//
// Threading
// - Control plane only. Every function is synchronous, reentrant and may be called from any
//   thread; libxml2 work is serialised inside VSwitchXML. The compiled XSD is built once,
//   on first use, and shared.

import VSwitchXML
import VSwitchPolicy
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

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
        var none: ProfileReadCache? = nil
        return try load(data: data, fileName: fileName, cache: &none, updateCache: false)
    }

    /// The same, reusing the reading of every ovf:NetworkPortProfile whose source bytes are unchanged
    /// since the document `cache` was made from (a reload where few profiles changed, issue 3).
    /// The whole document is still parsed and validated against the XSD; the profiles that changed are
    /// read and checked in full, the rules across profiles are checked again, and a document with any
    /// error is read again without the cache, so its diagnostics are exactly those of a cold load.
    /// On success `cache` becomes the cache of this document; on any error it is left unchanged.
    public static func load(data: [UInt8], fileName: String, cache: inout ProfileReadCache?) throws -> ProfileSet {
        try load(data: data, fileName: fileName, cache: &cache, updateCache: true)
    }

    private static func load(data: [UInt8], fileName: String, cache: inout ProfileReadCache?, updateCache: Bool) throws -> ProfileSet {
        let schema: XMLSchema
        switch ProfileSchema.compiled {
        case .success(let s): schema = s
        case .failure(let e): throw ProfileLoadError(diagnostics: e.diagnostics)
        }
        let previous = cache
        var reused = 0
        let parsed: XMLParseResult
        do {
            parsed = try XMLParser.parse(bytes: data, fileName: fileName, limits: limits, schema: schema,
                                         reuse: previous.map { p in { c in p.match(c, in: data) } })
        } catch {
            throw ProfileLoadError(diagnostics: error.diagnostics)
        }
        var reader = ProfileReader(file: fileName, previous: previous)
        reader.read(parsed.document.root)
        reused = reader.reusedBlocks
        reader.out.append(contentsOf: parsed.warnings)
        if reader.isForm1 {
            let r = reader
            reader.out.merge(validation: parsed.validationIssues, profileOf: { r.profileLabel(containing: $0) })
        }
        let diagnostics = reader.out.sorted
        if diagnostics.contains(where: \.isError) {
            if reused > 0 {
                // Profiles taken from the cache have no elements here to point at: read it all again.
                var none: ProfileReadCache? = nil
                return try load(data: data, fileName: fileName, cache: &none, updateCache: false)
            }
            throw ProfileLoadError(diagnostics: diagnostics)
        }
        if updateCache {
            cache = reader.isForm1 ? ProfileReadCache(document: parsed.document, blocks: reader.cacheableBlocks, reused: reused) : nil
        }
        return ProfileSet(profiles: reader.profiles, warnings: diagnostics)
    }
}

/// What reading one profile document produced, per ovf:NetworkPortProfile, kept so that the next load
/// of the same document (a reload) does not read again the profiles whose text did not change.
///
/// Only profiles read without any diagnostic are kept. A profile is reused only when the bytes from its
/// start tag up to the next start tag after it are identical, in a document whose root start tag (and so
/// its namespace declarations) is identical: the same bytes in the same namespace context are the same
/// elements, attributes and text, so reading them again would give the same profile and, having given no
/// diagnostic before, none again (positions are only used in diagnostics). Immutable; form 1 only.
public final class ProfileReadCache: @unchecked Sendable {
    struct Entry {
        var source: Range<Int>
        var profile: PortProfile
        var label: String
    }
    /// The document the entries were read from (shared with the caller's array, not copied).
    let bytes: [UInt8]
    let rootSource: Range<Int>
    let entries: [Entry]
    /// Hash of an entry's source bytes → entry indices.
    let index: [UInt64: [Int]]

    /// Profiles held (read without diagnostics in the last successful load).
    public var count: Int { entries.count }
    /// Of those, the ones the load that made this cache took from the previous cache (not read again).
    public let reused: Int

    init?(document: XMLDocument, blocks: [(element: XMLElement, profile: PortProfile, label: String)], reused: Int) {
        self.reused = reused
        guard document.startOffsets.count == document.elementCount, !document.startOffsets.isEmpty else { return nil }
        bytes = document.bytes
        rootSource = document.startOffsets[0]..<(document.startOffsets.count > 1 ? document.startOffsets[1] : bytes.count)
        var entries: [Entry] = []
        var index: [UInt64: [Int]] = [:]
        entries.reserveCapacity(blocks.count)
        for b in blocks {
            guard let source = document.sourceRange(of: b.element) else { continue }
            index[Self.hash(bytes, source), default: []].append(entries.count)
            entries.append(Entry(source: source, profile: b.profile, label: b.label))
        }
        self.entries = entries
        self.index = index
    }

    /// The entry whose source bytes equal `candidate.source` of `data`, when the root start tags are equal too.
    func match(_ candidate: XMLSubtreeCandidate, in data: [UInt8]) -> Int? {
        guard candidate.namespaceURI == ProfileNamespace.ovf, candidate.name == "NetworkPortProfile",
              Self.equal(data, candidate.rootSource, bytes, rootSource),
              let ids = index[Self.hash(data, candidate.source)] else { return nil }
        return ids.first { Self.equal(data, candidate.source, bytes, entries[$0].source) }
    }

    static func equal(_ a: [UInt8], _ ra: Range<Int>, _ b: [UInt8], _ rb: Range<Int>) -> Bool {
        guard ra.count == rb.count else { return false }
        return a.withUnsafeBufferPointer { pa in
            b.withUnsafeBufferPointer { pb in
                memcmp(pa.baseAddress! + ra.lowerBound, pb.baseAddress! + rb.lowerBound, ra.count) == 0
            }
        }
    }

    /// A fast 64-bit hash of a byte range (8 bytes per step; only used to find candidates, which are then
    /// compared byte for byte).
    static func hash(_ a: [UInt8], _ r: Range<Int>) -> UInt64 {
        a.withUnsafeBufferPointer { p in
            let base = UnsafeRawPointer(p.baseAddress! + r.lowerBound)
            var h: UInt64 = 0x9E37_79B9_7F4A_7C15 ^ UInt64(r.count)
            var i = 0
            while i + 8 <= r.count {
                h = (h ^ base.loadUnaligned(fromByteOffset: i, as: UInt64.self)) &* 0x100_0000_01B3 &+ 0x2545_F491_4F6C_DD1D
                h ^= h >> 29
                i += 8
            }
            while i < r.count {
                h = (h ^ UInt64(base.load(fromByteOffset: i, as: UInt8.self))) &* 0x100_0000_01B3
                i += 1
            }
            return h ^ (h >> 32)
        }
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
