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
//   accepted document (form 1 only; an OVF envelope, form 2, is always loaded in full). Two paths:
//   * Partial (`partialLoad`), tried first: every ovf:NetworkPortProfile byte-identical to one the
//     cache holds is cut out of the document and replaced by a placeholder PI; libxml2 parses and
//     XSD-validates only that reduced document (prolog, root start tag, the changed and new
//     profiles, the text/comments between profiles, the end tag), the readers read only the
//     changed profiles, and the unchanged ones come from the cache. The argument that this is
//     exactly a cold load — well-formedness and validity of the skipped bytes included — is below
//     ("Partial reload: the argument"); in short: a cut is taken only where libxml2 itself puts the placeholder
//     directly in the root's content, its bytes equal an element of the last accepted document,
//     the prolog (encoding) and the root's namespace declarations are the same, that document had
//     no diagnostic and no ID, and the root's content model is a plain sequence with no identity
//     constraint. Any diagnostic at all (error or warning, from libxml2, the XSD or the readers), or
//     any check failing, abandons the partial load for the full path, so positions in diagnostics
//     never come from the reduced document.
//   * Full: the whole document is parsed and XSD-validated; an ovf:NetworkPortProfile whose bytes
//     (and the prolog and the root's start tag) are unchanged and which was read without any
//     diagnostic is not built or read again. A load with any error is redone without the cache.
//   Rules across profiles run over the whole set on every load, so diagnostics never depend on the
//   cache. The cache changes only when a load succeeds.
// - Output (ProfileWriter): form 1, DMTF elements alphabetically then vsx extensions, so
//   load → write → load gives equal profiles and write is a fixed point.
//
// Partial reload: the argument
//   Why the reduced document R stands for the whole document D (write P for the previous document, which
//   was accepted with no diagnostic at all and registered no ID; each left-out element E of D is byte for
//   byte an element Q that was a child of P's root):
//   1. Where to cut comes from `XMLTopLevel`, a byte scan that may be wrong on a malformed document; it
//      is trusted for nothing. Every cut is checked: its bytes equal a cached element's exact bytes
//      (memcmp), and its placeholder PI must come out of libxml2's parse of R as a direct child of the
//      root — D never contains the PI target (else no partial load), so each such PI is one of ours,
//      in order. A PI is a child of the root only if the parser met `<?` in the root's content, between
//      two pieces of markup: so at the offset where D has E, a parser of D is in exactly the state a
//      parser of P was in at Q — in the root's content, nothing open but the root, at a markup boundary.
//   2. What the bytes of Q mean there depends only on: the encoding (the prolog, everything before the
//      root's start tag, is byte-identical to P's and so declares the same encoding and version); the
//      namespace bindings in scope (the root's declarations, compared as libxml2 read them on R's root
//      and P's root — nothing else is in scope at depth 2); and entity declarations (none: a DOCTYPE is
//      refused). Attributes such as xml:space do not change libxml2's parse (we never set NOBLANKS).
//      So a parser of D reads E exactly as P's parser read Q — one complete, well-formed element with
//      the same tree — and is back in the root's content right after it, where R's parser is right after
//      the PI. Every byte of D outside the left-out elements (prolog, root start tag, text, comments and
//      PIs between profiles, the root's end tag, the epilogue) is in R and parsed there, in the same
//      state as in D. Hence D is well-formed iff R is, and D's tree is R's with each placeholder replaced
//      by Q's subtree.
//   3. XSD: the root's content model is a plain sequence of ovf:NetworkPortProfile (0..unbounded) with no
//      identity constraint and PIs are ignored, so D's root is valid iff R's root is and each E is a
//      valid ovf:NetworkPortProfile; E is, since Q validated in P without a finding under the same
//      declaration, the same bindings and no ID table (the only state libxml2 shares between elements:
//      IDs of xml:id or XSD ID-typed attributes, hence "no ID in P"; an ID in R alone is checked there).
//   4. Reading: a profile's reading depends only on its subtree (its label's "#n" fallback and positions
//      only appear in diagnostics, and there are none); Q was read without a diagnostic; the root-level
//      checks and the rules across profiles (ID and InstanceID uniqueness) run on R's tree, which holds
//      every profile (placeholders included) in document order.
//   The cache a partial load makes holds D's bytes and the exact extent of each profile in D: for a left-out one
//   its cut (by 2, exactly E), for a parsed one its extent in R (libxml2 accepted R, and the start tags
//   were matched to its elements) moved by the bytes the placeholders before it replaced.
//   Form 2 keeps the full path: its profiles sit under ovf:NetworkSection/ovf:Network among
//   arbitrary OVF content that no XSD of ours describes, so there is no plain sequence to cut from.
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
    /// When it can be proven safe (see `partialLoad`), the unchanged profiles are not even parsed or
    /// validated again; otherwise the whole document is. The profiles that changed are read and checked in
    /// full, the rules across profiles are checked again, and a document with any diagnostic is read by the
    /// full path (and, with any error, again without the cache), so its diagnostics are exactly those of a
    /// cold load.
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
        // Each profile's bytes hashed once per load, whichever of the partial attempt, the full load's reuse and
        // the next cache asks first (an all-changed reload hashed the whole document three times, issue 3).
        let hashes = RangeHashes(data)
        if updateCache, let previous, let partial = partialLoad(data: data, fileName: fileName, schema: schema, previous: previous,
                                                                hashes: hashes) {
            cache = partial.cache
            return partial.set
        }
        var reused = 0
        let parsed: XMLParseResult
        do {
            parsed = try XMLParser.parse(bytes: data, fileName: fileName, limits: limits, schema: schema,
                                         reuse: previous.map { p in { c in p.match(c, in: data, hashes: hashes) } })
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
            // The next reload may skip parsing this document's profiles only if nothing in it was found worth
            // a word (no warning of libxml2, the XSD or the reader) and it holds no ID (see partialLoad).
            let quiet = diagnostics.isEmpty && parsed.validationIssues.isEmpty && parsed.warnings.isEmpty && !parsed.document.hasIDs
            cache = reader.isForm1 ? ProfileReadCache(document: parsed.document, blocks: reader.cacheableBlocks,
                                                      profiles: reader.profiles, reused: reused, partialAllowed: quiet,
                                                      hashes: hashes) : nil
        }
        return ProfileSet(profiles: reader.profiles, warnings: diagnostics)
    }

    /// The PI target of the placeholders a partial reload puts where it left a profile out.
    static let placeholderTarget = "vswitch-unchanged-profile"
    private static let placeholderPI = Array("<?\(placeholderTarget)?>".utf8)

    /// Partial reload (issue 3): the document `data` where most ovf:NetworkPortProfile elements are
    /// byte-identical to profiles of the last accepted document (`previous`). libxml2 parses and validates
    /// a reduced document instead — `data` with each such element replaced by a placeholder PI — and the
    /// profiles behind the placeholders are taken from the cache. Nil (the caller then loads in full) when
    /// the cache does not allow it, nothing can be left out, or anything at all is found: a libxml2 error or
    /// warning, an XSD finding, a reader diagnostic, or a check below failing. So a partial load either
    /// gives exactly what a cold load gives with no diagnostic, or is not used.
    ///
    /// Why this is exactly a cold load (the reduced document stands for the whole one): see the module
    /// header, "Partial reload: the argument".
    /// (`top`: the document's top level as `XMLTopLevel` scans it; tests give a wrong one.)
    /// (`hashes`: of byte ranges of `data`, shared with the rest of the load.)
    static func partialLoad(data: [UInt8], fileName: String, schema: XMLSchema, previous: ProfileReadCache,
                            top given: XMLTopLevel? = nil, hashes: RangeHashes? = nil) -> (set: ProfileSet, cache: ProfileReadCache)? {
        let hashes = hashes ?? RangeHashes(data)
        guard previous.partialAllowed, data.count <= limits.maxBytes,
              !ProfileReadCache.contains(data, Array(placeholderTarget.utf8)),
              previous.prologLength < data.count,
              ProfileReadCache.equal(data, 0..<previous.prologLength, previous.bytes, 0..<previous.prologLength) else { return nil }
        // The top level, stepping over every child that is byte for byte the cached profile after the one matched
        // last (a reload of a document where few profiles changed: one memcmp per profile, no scan, no hash).
        var matched: [Int: Int] = [:]    // child offset → entry
        var expected = 0
        func lookup(_ c: Range<Int>) -> Int? {
            guard let ids = previous.index[hashes.hash(c)] else { return nil }
            return ids.first { ProfileReadCache.equal(data, c, previous.bytes, previous.entries[$0].source) }
        }
        let scan = given ?? XMLTopLevel(data, known: { at in
            guard expected < previous.entries.count else { return nil }
            let source = previous.entries[expected].source
            guard at + source.count <= data.count,
                  ProfileReadCache.equal(data, at..<(at + source.count), previous.bytes, source) else { return nil }
            matched[at] = expected
            expected += 1
            return source.count
        }, scanned: { c in
            // A changed profile, or one that moved: in the latter case the walk goes on after it.
            if let e = lookup(c) { matched[c.lowerBound] = e; expected = e + 1 }
        })
        guard let top = scan, top.rootStart == previous.prologLength else { return nil }
        // The children that are, byte for byte, a cached profile.
        var cuts: [(range: Range<Int>, entry: Int, hash: UInt64)] = []
        var removed = 0
        for c in top.children where c.lowerBound > top.rootStart {
            guard let entry = given == nil ? matched[c.lowerBound] : lookup(c) else { continue }
            if let last = cuts.last, last.range.upperBound > c.lowerBound { return nil }
            cuts.append((c, entry, previous.entries[entry].hash))
            removed += c.count
        }
        guard !cuts.isEmpty else { return nil }
        // The reduced document, and where each placeholder is in it.
        var reduced: [UInt8] = []
        reduced.reserveCapacity(data.count - removed + cuts.count * placeholderPI.count)
        var marks: [Int] = []
        marks.reserveCapacity(cuts.count)
        var at = 0
        data.withUnsafeBufferPointer { d in
            for c in cuts {
                reduced.append(contentsOf: UnsafeBufferPointer(rebasing: d[at..<c.range.lowerBound]))
                marks.append(reduced.count)
                reduced.append(contentsOf: placeholderPI)
                at = c.range.upperBound
            }
            reduced.append(contentsOf: UnsafeBufferPointer(rebasing: d[at...]))
        }
        guard let parsed = try? XMLParser.parse(bytes: reduced, fileName: fileName, limits: limits, schema: schema,
                                                placeholders: XMLPlaceholders(target: placeholderTarget, name: "NetworkPortProfile",
                                                                              namespaceURI: ProfileNamespace.ovf)) else { return nil }
        let doc = parsed.document
        guard parsed.placeholders == cuts.count, parsed.validationIssues.isEmpty, parsed.warnings.isEmpty,
              !doc.startOffsets.isEmpty, doc.startOffsets.count == doc.elementCount, doc.endOffsets.count == doc.elementCount,
              doc.startOffsets[0] == top.rootStart, top.rootStart < cuts[0].range.lowerBound,
              doc.rootNamespaces.sorted() == previous.rootNamespaces else { return nil }
        var reader = ProfileReader(file: fileName, previous: previous, tokenMap: cuts.map(\.entry))
        reader.read(doc.root)
        guard reader.isForm1, reader.out.diagnostics.isEmpty, reader.reusedBlocks == cuts.count,
              reader.cacheableBlocks.count == reader.profiles.count else { return nil }

        // The next cache: every profile's exact extent in `data`.
        var entries: [ProfileReadCache.Entry] = []
        entries.reserveCapacity(reader.profiles.count)
        var k = 0          // placeholders before the current position in `reduced`
        var shift = 0      // bytes `data` has more than `reduced` before it
        for b in reader.cacheableBlocks {
            if let t = b.element.reused {
                guard t >= 0, t < cuts.count else { return nil }
                entries.append(.init(source: cuts[t].range, profile: reader.profiles[b.profile], label: b.label, hash: cuts[t].hash))
                continue
            }
            guard let r = doc.elementRange(of: b.element) else { return nil }
            while k < marks.count, marks[k] < r.lowerBound {
                shift += cuts[k].range.count - placeholderPI.count
                k += 1
            }
            let source = (r.lowerBound + shift)..<(r.upperBound + shift)
            guard source.upperBound <= data.count, ProfileReadCache.equal(data, source, reduced, r) else { return nil }
            entries.append(.init(source: source, profile: reader.profiles[b.profile], label: b.label,
                                 hash: hashes.hash(source)))
        }
        guard let first = entries.first?.source else { return nil }
        let next = ProfileReadCache(bytes: data, rootSource: top.rootStart..<first.lowerBound, prologLength: top.rootStart,
                                    rootNamespaces: previous.rootNamespaces, partialAllowed: !doc.hasIDs,
                                    entries: entries, reused: cuts.count, path: .partial, parsedBytes: reduced.count)
        return (ProfileSet(profiles: reader.profiles, warnings: []), next)
    }
}

/// What reading one profile document produced, per ovf:NetworkPortProfile, kept so that the next load
/// of the same document (a reload) does not read again — and, when possible, does not even parse — the
/// profiles whose text did not change.
///
/// Only profiles read without any diagnostic are kept, each with its exact bytes (start tag to end tag).
/// Two uses:
/// - Full load (`XMLParser.parse(…reuse:)`): the whole document is parsed and validated, and a profile
///   element whose bytes are identical to a kept one, in a document whose prolog (and so its encoding) and
///   root start tag (and so its namespace declarations) are identical, is not built or read again: the same
///   bytes in the same encoding and namespace context are the same elements, attributes and text, so
///   reading them again would give the same profile
///   and, having given no diagnostic before, none again (positions are only used in diagnostics).
/// - Partial load (`ProfileLoader.partialLoad`, when `partialAllowed`): such elements are not even parsed;
///   see the argument there.
/// Immutable; form 1 only.
public final class ProfileReadCache: @unchecked Sendable {
    struct Entry {
        /// The profile element's exact bytes in `bytes`.
        var source: Range<Int>
        var profile: PortProfile
        var label: String
        /// `ProfileReadCache.hash` of those bytes.
        var hash: UInt64
    }
    /// How the load that made this cache read its document.
    public enum Path: Sendable, Equatable {
        /// libxml2 parsed and validated the whole document.
        case full
        /// libxml2 parsed and validated only the profiles not in the previous cache (and the rest of the
        /// document around them).
        case partial
    }
    /// The document the entries were read from (shared with the caller's array, not copied).
    let bytes: [UInt8]
    /// The root's start tag up to the next start tag (with the prolog, the full load's reuse condition).
    let rootSource: Range<Int>
    /// Bytes before the root's start tag (XML declaration, comments, PIs): equal in both loads for any reuse.
    let prologLength: Int
    /// The root's namespace declarations, sorted.
    let rootNamespaces: [XMLNamespaceDeclaration]
    /// Whether the next load may leave these profiles out of libxml2's parse: the document was accepted
    /// with no diagnostic at all and registered no ID.
    let partialAllowed: Bool
    let entries: [Entry]
    /// Hash of an entry's source bytes → entry indices.
    let index: [UInt64: [Int]]

    /// Profiles held (read without diagnostics in the last successful load).
    public var count: Int { entries.count }
    /// Of those, the ones the load that made this cache took from the previous cache (not read again).
    public let reused: Int
    /// Whether that load was partial.
    public let path: Path
    /// Bytes that load gave libxml2 (the whole document on a full load; less on a partial one).
    public let parsedBytes: Int

    init(bytes: [UInt8], rootSource: Range<Int>, prologLength: Int, rootNamespaces: [XMLNamespaceDeclaration],
         partialAllowed: Bool, entries: [Entry], reused: Int, path: Path, parsedBytes: Int) {
        self.bytes = bytes
        self.rootSource = rootSource
        self.prologLength = prologLength
        self.rootNamespaces = rootNamespaces.sorted()
        self.partialAllowed = partialAllowed
        self.reused = reused
        self.path = path
        self.parsedBytes = parsedBytes
        var index: [UInt64: [Int]] = [:]
        index.reserveCapacity(entries.count)
        for k in entries.indices { index[entries[k].hash, default: []].append(k) }
        self.entries = entries
        self.index = index
    }

    convenience init?(document: XMLDocument, blocks: [(element: XMLElement, profile: Int, label: String)], profiles: [PortProfile],
                      reused: Int, partialAllowed: Bool, hashes: RangeHashes? = nil) {
        guard document.startOffsets.count == document.elementCount, document.endOffsets.count == document.elementCount,
              !document.startOffsets.isEmpty,
              Self.asciiTransparent(document.bytes, prologLength: document.startOffsets[0]) else { return nil }
        let bytes = document.bytes
        let rootSource = document.startOffsets[0]..<(document.startOffsets.count > 1 ? document.startOffsets[1] : bytes.count)
        var entries: [Entry] = []
        entries.reserveCapacity(blocks.count)
        // (`hashes` only when they are of these very bytes: the document the load was given.)
        let sameBytes = hashes.map { h in
            h.data.count == bytes.count && h.data.withUnsafeBufferPointer { a in bytes.withUnsafeBufferPointer { $0.baseAddress == a.baseAddress } }
        } ?? false
        for b in blocks {
            guard let source = document.elementRange(of: b.element) else { continue }
            let hash = sameBytes ? hashes!.hash(source) : Self.hash(bytes, source)
            entries.append(Entry(source: source, profile: profiles[b.profile], label: b.label, hash: hash))
        }
        self.init(bytes: bytes, rootSource: rootSource, prologLength: document.startOffsets[0],
                  rootNamespaces: document.rootNamespaces, partialAllowed: partialAllowed, entries: entries,
                  reused: reused, path: .full, parsedBytes: bytes.count)
    }

    /// Whether the document's encoding spells every ASCII character as that one byte and nothing else as an ASCII
    /// byte — UTF-8 (the default, with or without its BOM), US-ASCII, ISO-8859-n — so that the byte scans the
    /// cache relies on (tags, the placeholder's target, element extents) see what libxml2 sees. Not so for
    /// UTF-7, ISO-2022-*, EBCDIC and other encodings libxml2 accepts through iconv (`+ADw-` is "<" in UTF-7):
    /// no cache for those documents, every load of them is a cold one. The prolog (`prologLength` bytes, up to
    /// the root's start tag) is byte-identical in any document the cache serves, so it decides for them too.
    static func asciiTransparent(_ bytes: [UInt8], prologLength: Int) -> Bool {
        var i = 0
        if bytes.count >= 3, bytes[0] == 0xEF, bytes[1] == 0xBB, bytes[2] == 0xBF { i = 3 }
        let decl = Array("<?xml".utf8)
        guard i + decl.count <= bytes.count, Array(bytes[i..<(i + decl.count)]) == decl else {
            // No XML declaration: UTF-8, if the document starts like text (libxml2 would otherwise guess UTF-16,
            // UCS-4 or EBCDIC from the first bytes).
            guard i < bytes.count else { return false }
            return [UInt8(ascii: "<"), 0x20, 0x09, 0x0A, 0x0D].contains(bytes[i])
        }
        var end = i
        while end + 1 < min(bytes.count, prologLength), !(bytes[end] == UInt8(ascii: "?") && bytes[end + 1] == UInt8(ascii: ">")) { end += 1 }
        let text = String(decoding: bytes[i..<end], as: UTF8.self)
        guard let r = text.range(of: "encoding") else { return true }   // declared without an encoding: UTF-8
        let rest = text[r.upperBound...].drop { $0 == " " || $0 == "=" || $0 == "\t" || $0 == "\n" || $0 == "\r" }
        guard let quote = rest.first, quote == "\"" || quote == "'" else { return false }
        let name = rest.dropFirst().prefix { $0 != quote }.uppercased()
        return name == "UTF-8" || name == "UTF8" || name == "US-ASCII" || name == "ASCII"
            || (name.hasPrefix("ISO-8859-") && Int(name.dropFirst(9)).map { (1...16).contains($0) } == true)
            || name == "ISO-LATIN-1" || name == "LATIN1"
    }

    /// The entry whose source bytes equal `candidate.source` of `data`, when the root start tags are equal
    /// too, and the prologs: the XML declaration says what the bytes mean (encoding="ISO-8859-1" makes the
    /// same bytes other characters; before this check such a document reused the UTF-8 reading).
    /// (`hashes`, when given, holds hashes of ranges of `data`.)
    func match(_ candidate: XMLSubtreeCandidate, in data: [UInt8], hashes: RangeHashes? = nil) -> Int? {
        guard candidate.namespaceURI == ProfileNamespace.ovf, candidate.name == "NetworkPortProfile",
              Self.equal(data, candidate.rootSource, bytes, rootSource),
              candidate.rootSource.lowerBound == prologLength, Self.equal(data, 0..<prologLength, bytes, 0..<prologLength),
              let ids = index[hashes?.hash(candidate.source) ?? Self.hash(data, candidate.source)] else { return nil }
        return ids.first { Self.equal(data, candidate.source, bytes, entries[$0].source) }
    }

    static func equal(_ a: [UInt8], _ ra: Range<Int>, _ b: [UInt8], _ rb: Range<Int>) -> Bool {
        guard ra.count == rb.count else { return false }
        if ra.isEmpty { return true }
        return a.withUnsafeBufferPointer { pa in
            b.withUnsafeBufferPointer { pb in
                memcmp(pa.baseAddress! + ra.lowerBound, pb.baseAddress! + rb.lowerBound, ra.count) == 0
            }
        }
    }

    /// Whether `needle` (non-empty) occurs anywhere in `a`.
    static func contains(_ a: [UInt8], _ needle: [UInt8]) -> Bool {
        guard let first = needle.first, a.count >= needle.count else { return false }
        return a.withUnsafeBufferPointer { pa in
            needle.withUnsafeBufferPointer { pn in
                let base = pa.baseAddress!, n = pa.count, m = pn.count
                var i = 0
                while i + m <= n {
                    guard let p = memchr(base + i, Int32(first), n - m + 1 - i) else { return false }
                    i = UnsafePointer<UInt8>(p.assumingMemoryBound(to: UInt8.self)) - base
                    if memcmp(base + i, pn.baseAddress!, m) == 0 { return true }
                    i += 1
                }
                return false
            }
        }
    }

    /// A fast 64-bit hash of a byte range (four independent 8-byte lanes per step, so the multiplications
    /// overlap; only used to find candidates, which are then compared byte for byte).
    static func hash(_ a: [UInt8], _ r: Range<Int>) -> UInt64 {
        a.withUnsafeBufferPointer { p in
            let base = UnsafeRawPointer(p.baseAddress! + r.lowerBound)
            var h: UInt64 = 0x9E37_79B9_7F4A_7C15 ^ UInt64(r.count)
            var i = 0
            if r.count >= 64 {
                var l0 = h, l1 = h ^ 0xC2B2_AE3D_27D4_EB4F, l2 = h ^ 0x1656_67B1_9E37_79F9, l3 = h ^ 0x85EB_CA77_C2B2_AE63
                @inline(__always) func step(_ x: UInt64, _ v: UInt64) -> UInt64 {
                    let y = (x ^ v) &* 0x100_0000_01B3 &+ 0x2545_F491_4F6C_DD1D
                    return y ^ (y >> 29)
                }
                while i + 32 <= r.count {
                    l0 = step(l0, base.loadUnaligned(fromByteOffset: i, as: UInt64.self))
                    l1 = step(l1, base.loadUnaligned(fromByteOffset: i + 8, as: UInt64.self))
                    l2 = step(l2, base.loadUnaligned(fromByteOffset: i + 16, as: UInt64.self))
                    l3 = step(l3, base.loadUnaligned(fromByteOffset: i + 24, as: UInt64.self))
                    i += 32
                }
                h = step(step(step(l0, l1), l2), l3)
            }
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

/// `ProfileReadCache.hash` of byte ranges of one document, each range hashed once during a load: the partial
/// attempt hashes every profile it has to scan, the full load's `reuse` every profile it is offered, the next
/// cache every profile it keeps — on a reload where all profiles changed, the same ranges three times.
/// Keyed by the range's start, its end compared (a different range at the same start is hashed, not found).
/// Used under one load only (not thread-safe; the `reuse` hook is called synchronously, during the parse).
final class RangeHashes {
    let data: [UInt8]
    private var byStart: [Int: (end: Int, hash: UInt64)] = [:]

    init(_ data: [UInt8]) { self.data = data }

    func hash(_ r: Range<Int>) -> UInt64 {
        if let known = byStart[r.lowerBound], known.end == r.upperBound { return known.hash }
        let h = ProfileReadCache.hash(data, r)
        if byStart.isEmpty { byStart.reserveCapacity(1024) }
        byStart[r.lowerBound] = (r.upperBound, h)
        return h
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
    @_spi(Differential) public static let compiled: Result<XMLSchema, XMLError> = {
        do throws(XMLError) {
            return .success(try XMLSchema(main: mainDocument, documents: documents, prefixes: ProfileNamespace.prefixes))
        } catch {
            return .failure(error)
        }
    }()
}
