// VSwitchXML — libxml2 fenced in: safe parsing, XSD validation, located diagnostics.
//
// Design
// - One entry point, `XMLParser.parse`, turns bytes into a plain Swift element tree
//   (`XMLDocument` / `XMLElement`): no C pointer escapes this module and callers never touch
//   libxml2. Two paths give the same tree: first the streaming one (StreamingParser.swift: the
//   tree built from libxml2's SAX events, the XSD validator plugged into the same stream, no
//   DOM), taken only for documents with no finding at all; any finding, and the few constructs
//   the two paths could treat differently, go to the DOM path (libxml2's DOM copied out and
//   freed, `xmlSchemaValidateDoc`), which words every diagnostic as below.
// - Hostile input is bounded: documents larger than `XMLLimits.maxBytes` (4 MiB) or nested
//   deeper than `maxDepth` (64) are refused; the parser runs with XML_PARSE_NONET, without
//   DTD loading (no XML_PARSE_DTDLOAD / DTDATTR / DTDVALID) and without entity
//   substitution (no XML_PARSE_NOENT); a document with a DOCTYPE is refused outright — a
//   SAX hook stops the parser as soon as `<!DOCTYPE` is seen, before any entity
//   declaration is read. Only UTF-8 (or ASCII-compatible) documents are accepted.
// - Every finding is an `XMLDiagnostic` with file, line and column. libxml2's DOM (and SAX) has
//   no columns, so `SourceLocator` rescans the bytes to place every start tag and attribute.
// - XSD validation (`XMLSchema`) compiles schemas from in-memory strings; `xs:import`
//   and `xs:include` are served from the same set of strings by a temporary external
//   entity loader that refuses everything else (no file or network access at all).
//   Errors are collected with `xmlSchemaSetValidStructuredErrors` (structured: line,
//   node) and mapped back to the element tree so readers can attach a profile name.
//
// - Reloads (issue 3): a caller may ask (`reuse:`) not to build some children of the root it
//   already read in an earlier load; they are still parsed and validated, and are offered only
//   when the document has no XSD finding and every start tag was located, with their exact
//   byte range (the caller compares bytes, never guesses). A caller may also hand over a reduced
//   document in which processing instructions with a target of its choosing stand for elements it
//   left out (`placeholders:`): those that libxml2 puts directly in the root's content come out as
//   placeholder elements, in order — a placeholder elsewhere (in a comment, an attribute, a child)
//   is not one, which is how the caller learns that its cut was not where it thought. Documents
//   also report each element's exact extent, the root's namespace declarations, and whether
//   libxml2 registered an ID (`XMLTopLevel` is a quick byte scan of the top level, to plan cuts).
//
// Threading
// - Control plane only (configuration load / reload), never the forwarding path.
// - libxml2 is used from one thread at a time: every call into it runs under one
//   process-wide lock (`LibXML2.lock`). Any thread may call the public API.
// - No global libxml2 state leaks: the thread's structured error handler and the
//   external entity loader are swapped in for the duration of a locked call and restored
//   afterwards; errors go to per-call collectors, never to stderr.

import CLibXML2
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Bounds applied to every document.
public struct XMLLimits: Sendable {
    /// Largest accepted document, in bytes.
    public var maxBytes: Int
    /// Deepest accepted element nesting (the root is depth 1).
    public var maxDepth: Int
    public init(maxBytes: Int = 4 << 20, maxDepth: Int = 64) {
        self.maxBytes = maxBytes
        self.maxDepth = maxDepth
    }
}

/// An element the parser offers to skip (see `XMLParser.parse(…reuse:)`).
public struct XMLSubtreeCandidate: Sendable {
    /// Nesting depth: always 2 (children of the root are offered).
    public var depth: Int
    public var name: String
    public var namespaceURI: String?
    /// The element's exact bytes: from the `<` of its start tag to just past its end tag.
    public var source: Range<Int>
    /// Byte range of the root's start tag (up to the next start tag): its namespace declarations decide
    /// what the prefixes inside `source` mean.
    public var rootSource: Range<Int>
}

/// An XSD finding, with the document-order index of the element it is about (when known),
/// so that a reader can say which profile it belongs to.
public struct XMLValidationIssue: Sendable {
    public var diagnostic: XMLDiagnostic
    public var elementIndex: Int?
}

/// Processing instructions that stand for elements the caller left out of the document it hands to the
/// parser (issue 3's partial reload): every PI with this target that is a *direct child of the root* becomes,
/// in the element tree, an element with `name` / `namespaceURI`, no content, `index == subtreeEnd` (it takes
/// no element index) and `reused` = its ordinal among those PIs (0, 1, …). PIs with the target anywhere else
/// are dropped like every other PI; `XMLParseResult.placeholders` counts the ones converted.
public struct XMLPlaceholders: Sendable {
    public var target: String
    public var name: String
    public var namespaceURI: String?
    public init(target: String, name: String, namespaceURI: String?) {
        self.target = target; self.name = name; self.namespaceURI = namespaceURI
    }
}

public struct XMLParseResult: Sendable {
    public var document: XMLDocument
    /// Root-level placeholder PIs turned into elements (see `XMLPlaceholders`).
    public var placeholders: Int = 0
    /// XSD findings (empty when no schema was given). Parsing succeeded regardless:
    /// the caller decides how to merge them with its own checks.
    public var validationIssues: [XMLValidationIssue]
    /// Non-fatal findings of the XML parser itself (libxml2 warnings).
    public var warnings: [XMLDiagnostic]
    /// Whether the document was validated while it was parsed, without a libxml2 DOM (StreamingParser.swift);
    /// otherwise it went through the DOM path. The result is the same either way.
    public var validatedWhileParsing = false
}

public enum XMLParser {
    /// Parses a document. Throws `XMLError` when the document is not well-formed, has a
    /// DOCTYPE, breaks a limit or is not UTF-8; XSD findings are returned, not thrown.
    ///
    /// `reuse` lets a caller that already holds the reading of some subtrees skip building them again
    /// (issue 3: reloading a document where few profiles changed). It is asked about each child of the
    /// root, and its answers are used only when the document has no XSD finding and every start tag
    /// was located (the streaming path asks while it parses, before it knows; it must be a pure function); when
    /// it returns a token, the element is built without attributes, text or children (its `reused` is
    /// the token, its `index` / `subtreeEnd` are those of the full tree). Parsing and XSD validation
    /// always cover the whole document.
    public static func parse(bytes: [UInt8], fileName: String, limits: XMLLimits = XMLLimits(),
                             schema: XMLSchema? = nil,
                             reuse: ((XMLSubtreeCandidate) -> Int?)? = nil,
                             placeholders: XMLPlaceholders? = nil) throws(XMLError) -> XMLParseResult {
        try parse(bytes: bytes, fileName: fileName, limits: limits, schema: schema, reuse: reuse,
                  placeholders: placeholders, streaming: true)
    }

    /// `parse`, with the streaming path (StreamingParser.swift) tried first, or not at all (tests compare the two).
    static func parse(bytes: [UInt8], fileName: String, limits: XMLLimits, schema: XMLSchema?,
                      reuse: ((XMLSubtreeCandidate) -> Int?)?, placeholders: XMLPlaceholders?,
                      streaming: Bool) throws(XMLError) -> XMLParseResult {
        func fail(_ message: String, line: Int = 1, column: Int = 1) -> XMLError {
            XMLError([XMLDiagnostic(file: fileName, line: line, column: column, message: message)])
        }
        if bytes.count > limits.maxBytes {
            throw fail("document is \(bytes.count) bytes; the limit is \(limits.maxBytes) bytes")
        }
        if bytes.isEmpty { throw fail("document is empty; expected an XML document") }
        if bytes.count >= 2, (bytes[0] == 0xFE && bytes[1] == 0xFF) || (bytes[0] == 0xFF && bytes[1] == 0xFE)
            || bytes[0] == 0 || bytes[1] == 0 {
            throw fail("document is not UTF-8 (UTF-16/32 byte order mark or NUL bytes); save it as UTF-8")
        }
        return try LibXML2.lock.withLock { () throws(XMLError) -> XMLParseResult in
            try LibXML2.withIsolatedGlobals { () throws(XMLError) -> XMLParseResult in
                if streaming, let result = parseStreaming(bytes: bytes, fileName: fileName, limits: limits, schema: schema,
                                                          reuse: reuse, placeholders: placeholders) {
                    return result
                }
                return try parseLocked(bytes: bytes, fileName: fileName, limits: limits, schema: schema, reuse: reuse,
                                       placeholders: placeholders)
            }
        }
    }

    /// Reads a whole file, refusing files larger than `maxBytes`.
    public static func readFile(path: String, maxBytes: Int = XMLLimits().maxBytes) throws(XMLError) -> [UInt8] {
        func fail(_ what: String) -> XMLError {
            XMLError([XMLDiagnostic(file: path, line: 0, column: 0, message: what)])
        }
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 { throw fail("cannot open: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var st = stat()
        if fstat(fd, &st) != 0 { throw fail("cannot stat: \(String(cString: strerror(errno)))") }
        if (st.st_mode & S_IFMT) == S_IFDIR { throw fail("is a directory, expected an XML file") }
        var result: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw fail("cannot read: \(String(cString: strerror(errno)))")
            }
            if n == 0 { break }
            result.append(contentsOf: chunk[0..<n])
            if result.count > maxBytes {
                throw fail("file is larger than the limit of \(maxBytes) bytes")
            }
        }
        return result
    }

    // MARK: - Internals (libxml2 lock held)

    private static func parseLocked(bytes: [UInt8], fileName: String, limits: XMLLimits,
                                    schema: XMLSchema?, reuse: ((XMLSubtreeCandidate) -> Int?)?,
                                    placeholders: XMLPlaceholders?) throws(XMLError) -> XMLParseResult {
        let state = ParseState(fileName: fileName, bytes: bytes, prefixes: schema?.prefixes ?? [:])
        guard let ctxt = xmlNewParserCtxt() else {
            throw XMLError([XMLDiagnostic(file: fileName, line: 0, column: 0, message: "libxml2: out of memory")])
        }
        defer { xmlFreeParserCtxt(ctxt) }
        let statePointer = Unmanaged.passUnretained(state).toOpaque()
        ctxt.pointee._private = statePointer
        if let sax = ctxt.pointee.sax {
            sax.pointee.serror = parserErrorHandler
            sax.pointee.internalSubset = refuseDoctype
        }
        // No NOENT (entities stay unexpanded), no DTDLOAD/DTDATTR/DTDVALID, no XINCLUDE, no HUGE.
        // COMPACT keeps short text (the whitespace between elements) inside its node: one malloc less per
        // text node, the same content.
        let options = Int32(XML_PARSE_NONET.rawValue | XML_PARSE_NOCDATA.rawValue | XML_PARSE_COMPACT.rawValue)
        let doc: xmlDocPtr? = bytes.withUnsafeBufferPointer { buf in
            buf.baseAddress!.withMemoryRebound(to: CChar.self, capacity: buf.count) { p in
                fileName.withCString { name in
                    xmlCtxtReadMemory(ctxt, p, Int32(buf.count), name, nil, options)
                }
            }
        }
        defer { if let doc { xmlFreeDoc(doc) } }

        if state.doctypeSeen {
            let pos = state.doctypePosition
            throw XMLError([XMLDiagnostic(file: fileName, line: pos.line, column: pos.column,
                                          message: "a DOCTYPE is not allowed (no DTDs, no entity declarations); remove the <!DOCTYPE …> declaration")])
        }
        let errors = state.diagnostics.filter(\.isError)
        guard let doc, errors.isEmpty, ctxt.pointee.wellFormed != 0 else {
            if errors.isEmpty {
                throw XMLError([XMLDiagnostic(file: fileName, line: 1, column: 1, message: "document is not well-formed XML")])
            }
            throw XMLError(errors)
        }
        guard let rootNode = xmlDocGetRootElement(doc) else {
            throw XMLError([XMLDiagnostic(file: fileName, line: 1, column: 1, message: "document has no root element")])
        }

        // XSD validation first, recording libxml2's reports raw (node pointer, message); the map from
        // nodes to source positions and element names is built only when there is something to map
        // (it cost a third of a large document's parse, issue 3's reload of 1,000 profiles).
        var issues: [XMLValidationIssue] = []
        var schemaFailure = false
        if let schema {
            if let vctxt = xmlSchemaNewValidCtxt(schema.schema) {
                xmlSchemaSetValidStructuredErrors(vctxt, validationErrorHandler, statePointer)
                _ = xmlSchemaValidateDoc(vctxt, doc)
                xmlSchemaFreeValidCtxt(vctxt)
            } else {
                schemaFailure = true
            }
        }

        // Match start tags to DOM elements by document order only when the counts agree;
        // otherwise fall back to libxml2's line numbers (no column). The counts are compared after
        // building (the builder counts the elements): a mismatch, which well-formed documents do not
        // produce, builds the tree once more without the locator.
        // A reused subtree is only skipped when its byte range is known for sure: the counts must agree,
        // and a disagreement rebuilds everything (without the locator, so without reuse).
        var locator = SourceLocator(bytes)
        var builder = TreeBuilder(state: state, locator: locator, maxDepth: limits.maxDepth,
                                  recordNodes: !state.rawIssues.isEmpty,
                                  reuse: state.rawIssues.isEmpty && !schemaFailure ? reuse : nil,
                                  placeholders: placeholders)
        var root = builder.build(rootNode, depth: 1)
        // (A build stopped by the depth limit has not counted everything: count the DOM's elements then.)
        let built = builder.depthError == nil ? builder.nextIndex : countElements(rootNode)
        if built != locator.tags.count {
            locator = SourceLocator([])
            state.nodes = [:]
            state.attributePositions = [:]
            builder = TreeBuilder(state: state, locator: locator, maxDepth: limits.maxDepth,
                                  recordNodes: !state.rawIssues.isEmpty, reuse: nil, placeholders: placeholders)
            root = builder.build(rootNode, depth: 1)
        }
        if let depthError = builder.depthError { throw XMLError([depthError]) }
        guard let root else {
            throw XMLError([XMLDiagnostic(file: fileName, line: 1, column: 1, message: "document has no root element")])
        }
        issues = state.rawIssues.map(state.mapIssue)
        if schemaFailure {
            issues = [XMLValidationIssue(diagnostic: XMLDiagnostic(file: fileName, line: 0, column: 0,
                                                                   message: "libxml2: cannot create a schema validation context"),
                                         elementIndex: nil)]
        }
        var rootNamespaces: [XMLNamespaceDeclaration] = []
        var ns = rootNode.pointee.nsDef
        while let n = ns {
            rootNamespaces.append(XMLNamespaceDeclaration(prefix: n.pointee.prefix.map { String(cString: $0) },
                                                          uri: n.pointee.href.map { String(cString: $0) } ?? ""))
            ns = n.pointee.next
        }
        // (After validation: the XSD validator registers attributes of type ID in the same table.)
        let hasIDs = doc.pointee.ids != nil || doc.pointee.refs != nil
        let document = XMLDocument(fileName: fileName, root: root, bytes: bytes,
                                   startOffsets: locator.tags.map(\.offset), endOffsets: locator.ends.map { Int($0) },
                                   rootNamespaces: rootNamespaces, hasIDs: hasIDs)
        return XMLParseResult(document: document, placeholders: builder.placeholderCount, validationIssues: issues,
                              warnings: state.diagnostics.filter { !$0.isError })
    }
}

// MARK: - Per-parse state reached from the C callbacks

final class ParseState {
    struct NodeInfo {
        var index: Int
        var element: String
        var attribute: String?
        var position: SourcePosition
    }
    let fileName: String
    let bytes: [UInt8]
    let prefixes: [String: String]
    var diagnostics: [XMLDiagnostic] = []
    /// XSD reports as libxml2 gave them, mapped to the tree by `mapIssue` once the tree is built.
    struct RawIssue {
        var severity: XMLDiagnostic.Severity
        var line: Int
        var message: String
        var node: UnsafeMutableRawPointer?
    }
    var rawIssues: [RawIssue] = []
    var doctypeSeen = false
    var doctypePosition = SourcePosition(line: 1, column: 1)
    /// xmlNode / xmlAttr pointer → where it is, for mapping XSD errors back to the tree.
    var nodes: [UnsafeMutableRawPointer: NodeInfo] = [:]
    /// Element index → attribute name (as in XSD messages: `name` or `prefix:name`) → position.
    var attributePositions: [Int: [String: SourcePosition]] = [:]

    init(fileName: String, bytes: [UInt8], prefixes: [String: String]) {
        self.fileName = fileName
        self.bytes = bytes
        self.prefixes = prefixes
    }

    /// `{urn:x}Name` → `p:Name` using the schema's preferred prefixes.
    func prettify(_ message: String) -> String {
        var out = message
        for (uri, prefix) in prefixes {
            out = out.replacing("{\(uri)}", with: prefix.isEmpty ? "" : prefix + ":")
        }
        return out
    }

    /// A raw XSD report with the element / attribute it concerns and their source position.
    func mapIssue(_ raw: RawIssue) -> XMLValidationIssue {
        var diagnostic = XMLDiagnostic(raw.severity, file: fileName, line: raw.line, column: 0, message: prettify(raw.message))
        var index: Int?
        if let node = raw.node, let info = nodes[node] {
            diagnostic.line = info.position.line
            diagnostic.column = info.position.column
            diagnostic.element = info.element
            diagnostic.attribute = info.attribute
            index = info.index
            // libxml2 reports attribute errors on the element ("Element 'x', attribute 'y': …"):
            // point at the attribute itself.
            if info.attribute == nil, let name = attributeName(in: diagnostic.message),
               let position = attributePositions[info.index]?[name] {
                diagnostic.attribute = name
                diagnostic.line = position.line
                diagnostic.column = position.column
            }
        }
        return XMLValidationIssue(diagnostic: diagnostic, elementIndex: index)
    }

    func displayName(localName: String, namespaceURI: String?, prefix: String?) -> String {
        if let uri = namespaceURI, let p = prefixes[uri] { return p.isEmpty ? localName : "\(p):\(localName)" }
        if let prefix { return "\(prefix):\(localName)" }
        return localName
    }
}

private func message(of error: xmlErrorPtr) -> String {
    guard let m = error.pointee.message else { return "unknown libxml2 error" }
    return XMLElement.trim(String(cString: m))
}

private func severity(of error: xmlErrorPtr) -> XMLDiagnostic.Severity {
    error.pointee.level == XML_ERR_WARNING ? .warning : .error
}

/// Parser errors: `userData` is the parser context, whose `_private` is our ParseState.
private let parserErrorHandler: xmlStructuredErrorFunc = { userData, error in
    guard let userData, let error else { return }
    let ctxt = userData.assumingMemoryBound(to: xmlParserCtxt.self)
    guard let raw = ctxt.pointee._private else { return }
    let state = Unmanaged<ParseState>.fromOpaque(raw).takeUnretainedValue()
    let line = Int(error.pointee.line)
    let column = Int(error.pointee.int2)
    state.diagnostics.append(XMLDiagnostic(severity(of: error), file: state.fileName, line: max(line, 1),
                                           column: max(column, 1), message: message(of: error)))
}

/// Called when `<!DOCTYPE` has been read: record it and stop before any declaration is parsed.
private let refuseDoctype: internalSubsetSAXFunc = { ctx, _, _, _ in
    guard let ctx else { return }
    let ctxt = ctx.assumingMemoryBound(to: xmlParserCtxt.self)
    if let raw = ctxt.pointee._private {
        let state = Unmanaged<ParseState>.fromOpaque(raw).takeUnretainedValue()
        state.doctypeSeen = true
        // Point at the "<!DOCTYPE" itself.
        let marker = Array("<!DOCTYPE".utf8)
        var offset = 0
        if let input = ctxt.pointee.input, let base = input.pointee.base, let cur = input.pointee.cur {
            offset = base.distance(to: cur)
        }
        var found = 0
        var k = min(offset, state.bytes.count - 1)
        while k >= 0 {
            if k + marker.count <= state.bytes.count, Array(state.bytes[k..<(k + marker.count)]) == marker { found = k; break }
            k -= 1
        }
        state.doctypePosition = SourceLocator.position(ofOffset: found, in: state.bytes)
    }
    xmlStopParser(ctxt)
}

/// XSD validation errors: `userData` is our ParseState; `node` is the offending element or attribute.
private let validationErrorHandler: xmlStructuredErrorFunc = { userData, error in
    guard let userData, let error else { return }
    let state = Unmanaged<ParseState>.fromOpaque(userData).takeUnretainedValue()
    state.rawIssues.append(ParseState.RawIssue(severity: severity(of: error), line: Int(error.pointee.line),
                                               message: message(of: error), node: error.pointee.node))
}

/// Elements in the subtree of `node` (itself included).
private func countElements(_ node: xmlNodePtr) -> Int {
    var n = 1
    var child = node.pointee.children
    while let c = child {
        if c.pointee.type == XML_ELEMENT_NODE { n += countElements(c) }
        child = c.pointee.next
    }
    return n
}

/// The `y` of "…, attribute 'y': …" in a libxml2 schema message.
private func attributeName(in message: String) -> String? {
    guard let r = message.firstRange(of: ", attribute '") else { return nil }
    let rest = message[r.upperBound...]
    guard let end = rest.firstIndex(of: "'") else { return nil }
    return String(rest[..<end])
}

// MARK: - DOM → Swift tree

/// Swift strings for libxml2's strings, by address, for one parse. Element and attribute names come
/// from the parser's dictionary and namespace URIs / prefixes from a few xmlNs declarations, so the
/// same few addresses recur for every element: converting each once (and sharing one String storage,
/// which also makes later comparisons of equal names cheap) saves an allocation and a UTF-8 check per
/// name (issue 3: 1,000 profiles are ~70,000 elements). Direct-mapped; a collision just converts again.
/// `known` strings (the schema's namespace URIs) are handed out as they are when the text is the same: a
/// reader comparing an element's namespace with its own constant (`ProfileNamespace.epasd`, 80 bytes) then
/// finds the same string storage, equal at once, instead of comparing the bytes.
struct StringInterner {
    private var keys = [UnsafeRawPointer?](repeating: nil, count: 256)
    private var values = [String](repeating: "", count: 256)
    private let known: [String]

    init(known: [String] = []) { self.known = known }

    mutating func string(_ p: UnsafePointer<xmlChar>) -> String {
        let raw = UnsafeRawPointer(p)
        let slot = Int(truncatingIfNeeded: (UInt(bitPattern: raw) >> 3) ^ (UInt(bitPattern: raw) >> 11)) & 255
        if keys[slot] == raw { return values[slot] }
        var s = String(cString: p)
        if !known.isEmpty, let k = known.first(where: { $0 == s }) { s = k }
        keys[slot] = raw
        values[slot] = s
        return s
    }
}

private struct TreeBuilder {
    let state: ParseState
    let locator: SourceLocator
    let maxDepth: Int
    /// Fill `state.nodes` / `attributePositions` (only needed to map XSD reports).
    let recordNodes: Bool
    var nextIndex = 0
    var depthError: XMLDiagnostic?
    private var strings: StringInterner
    /// Text bytes of the elements being built (see `build`).
    private var textBytes: [UInt8] = []

    let reuse: ((XMLSubtreeCandidate) -> Int?)?
    let placeholders: XMLPlaceholders?
    private let placeholderTarget: [UInt8]
    /// Root-level placeholder PIs turned into elements so far.
    private(set) var placeholderCount = 0

    init(state: ParseState, locator: SourceLocator, maxDepth: Int, recordNodes: Bool,
         reuse: ((XMLSubtreeCandidate) -> Int?)? = nil, placeholders: XMLPlaceholders? = nil) {
        self.state = state
        self.locator = locator
        self.maxDepth = maxDepth
        self.recordNodes = recordNodes
        self.reuse = reuse
        self.placeholders = placeholders
        self.placeholderTarget = placeholders.map { Array($0.target.utf8) + [0] } ?? []
        self.strings = StringInterner(known: Array(state.prefixes.keys) + [xsiNamespace])
    }

    /// Whether `node` (a PI) is a placeholder: its target is `placeholders.target`.
    private func isPlaceholder(_ node: xmlNodePtr) -> Bool {
        guard placeholders != nil, let name = node.pointee.name else { return false }
        return placeholderTarget.withUnsafeBufferPointer { t in strcmp(UnsafeRawPointer(name).assumingMemoryBound(to: CChar.self),
                                                                         UnsafeRawPointer(t.baseAddress!).assumingMemoryBound(to: CChar.self)) == 0 }
    }


    private func qualifiedNameMatches(_ start: Int, _ end: Int, prefix: UnsafePointer<xmlChar>?, name: UnsafePointer<xmlChar>) -> Bool {
        state.bytes.withUnsafeBufferPointer { bytesSpellQualifiedName($0, start, end, prefix: prefix, name: name) }
    }

    mutating func build(_ node: xmlNodePtr, depth: Int) -> XMLElement? {
        let index = nextIndex
        nextIndex += 1
        let name = node.pointee.name.map { strings.string($0) } ?? ""
        let uri = node.pointee.ns?.pointee.href.map { strings.string($0) }
        let prefix = node.pointee.ns?.pointee.prefix.map { strings.string($0) }
        let tag = index < locator.tags.count ? locator.tags[index] : nil
        let position = tag?.position ?? SourcePosition(line: Int(xmlGetLineNo(node)), column: 0)
        let display = recordNodes || depth > maxDepth ? state.displayName(localName: name, namespaceURI: uri, prefix: prefix) : ""
        if recordNodes {
            state.nodes[UnsafeMutableRawPointer(node)] = .init(index: index, element: display, attribute: nil, position: position)
        }

        if depth > maxDepth {
            if depthError == nil {
                depthError = XMLDiagnostic(file: state.fileName, line: position.line, column: position.column,
                                           element: display,
                                           message: "elements are nested \(depth) deep; the limit is \(maxDepth)")
            }
            return nil
        }

        if let reuse, depth == 2, let tag, locator.depths[index] == 2, locator.ends[index] > tag.offset {
            // The subtree's extent from the start tags' depths (the builder checks afterwards that the
            // locator saw exactly the elements libxml2 built, else everything is built again without it).
            let end = locator.subtreeEnd(of: index)
            if end <= locator.tags.count {
                let source = tag.offset..<Int(locator.ends[index])
                let rootSource = locator.tags[0].offset..<(locator.tags.count > 1 ? locator.tags[1].offset : state.bytes.count)
                let candidate = XMLSubtreeCandidate(depth: depth, name: name, namespaceURI: uri, source: source,
                                                    rootSource: rootSource)
                if let token = reuse(candidate) {
                    nextIndex = end
                    return XMLElement(name: name, namespaceURI: uri, prefix: prefix, line: position.line, column: position.column,
                                      index: index, subtreeEnd: end, reused: token)
                }
            }
        }

        // Arrays sized before they are filled (growing them by doubling cost a malloc and a copy per step:
        // 6 attributes on a vsx:Acl, ~26 children in an ovf:Item, issue 3).
        var attributes: [XMLAttribute] = []
        var attributeCount = 0, elementCount = 0, textCount = 0
        var a0 = node.pointee.properties
        while let a = a0 { attributeCount += 1; a0 = a.pointee.next }
        var c0 = node.pointee.children
        while let c = c0 {
            if c.pointee.type == XML_ELEMENT_NODE { elementCount += 1 }
            else if c.pointee.type == XML_TEXT_NODE || c.pointee.type == XML_CDATA_SECTION_NODE { textCount += 1 }
            c0 = c.pointee.next
        }
        attributes.reserveCapacity(attributeCount)
        var attr = node.pointee.properties
        while let a = attr {
            let aname = a.pointee.name.map { strings.string($0) } ?? ""
            let auri = a.pointee.ns?.pointee.href.map { strings.string($0) }
            let aprefixPointer = a.pointee.ns?.pointee.prefix
            let aprefix = aprefixPointer.map { strings.string($0) }
            var apos = position
            if let tag, let namePointer = a.pointee.name {
                for k in tag.attributes {
                    let l = locator.attributes[k]
                    if qualifiedNameMatches(l.nameStart, l.nameEnd, prefix: aprefixPointer, name: namePointer) {
                        apos = l.position
                        break
                    }
                }
            }
            attributes.append(XMLAttribute(name: aname, namespaceURI: auri, prefix: aprefix,
                                           value: textContent(a.pointee.children),
                                           line: apos.line, column: apos.column))
            if recordNodes {
                let qname = aprefix.map { "\($0):\(aname)" } ?? aname
                state.nodes[UnsafeMutableRawPointer(a)] = .init(index: index, element: display, attribute: qname, position: apos)
                let schemaName = state.displayName(localName: aname, namespaceURI: auri, prefix: aprefix)
                state.attributePositions[index, default: [:]][schemaName] = apos
            }
            attr = a.pointee.next
        }

        var children: [XMLElement] = []
        children.reserveCapacity(elementCount)
        var text = ""
        // Several text nodes (the whitespace between child elements): their bytes gathered, one String made.
        // `textBytes` is a stack shared with the nested builds: this element's bytes are those past `mark`
        // (a child appends after them and truncates back to its own mark when done).
        let mark = textBytes.count
        var child = node.pointee.children
        while let c = child {
            switch c.pointee.type {
            case XML_ELEMENT_NODE:
                if let e = build(c, depth: depth + 1) { children.append(e) }
                if depthError != nil { return nil }
            case XML_TEXT_NODE, XML_CDATA_SECTION_NODE:
                if let content = c.pointee.content {
                    if textCount == 1 {
                        text = String(cString: content)
                    } else {
                        textBytes.append(contentsOf: UnsafeBufferPointer(start: content, count: Int(xmlStrlen(content))))
                    }
                }
            case XML_PI_NODE where depth == 1 && isPlaceholder(c):
                // Stands for an element the caller left out (XMLPlaceholders): no element index of its own.
                children.append(XMLElement(name: placeholders!.name, namespaceURI: placeholders!.namespaceURI,
                                           index: nextIndex, subtreeEnd: nextIndex, reused: placeholderCount))
                placeholderCount += 1
            default:
                break
            }
            child = c.pointee.next
        }
        if textCount > 1 {
            text = String(decoding: textBytes[mark...], as: UTF8.self)
            textBytes.removeSubrange(mark...)
        }
        return XMLElement(name: name, namespaceURI: uri, prefix: prefix, attributes: attributes, children: children,
                          text: text, line: position.line, column: position.column,
                          index: index, subtreeEnd: nextIndex)
    }

    /// Concatenated content of a list of text nodes (attribute values).
    private func textContent(_ first: xmlNodePtr?) -> String {
        guard let first else { return "" }
        if first.pointee.next == nil { return first.pointee.content.map { String(cString: $0) } ?? "" }
        var s = ""
        var n: xmlNodePtr? = first
        while let c = n {
            if let content = c.pointee.content { s += String(cString: content) }
            n = c.pointee.next
        }
        return s
    }
}

/// Whether `b[start..<end]` spells `prefix:name` (or `name` without a prefix): an attribute's name as written
/// against libxml2's parts of it (both tree builders, to pair located attributes with libxml2's).
func bytesSpellQualifiedName(_ b: UnsafeBufferPointer<UInt8>, _ start: Int, _ end: Int, prefix: UnsafePointer<xmlChar>?,
                             name: UnsafePointer<xmlChar>) -> Bool {
    var i = start
    if let prefix {
        var p = prefix
        while p.pointee != 0 {
            guard i < end, b[i] == p.pointee else { return false }
            i += 1; p += 1
        }
        guard i < end, b[i] == UInt8(ascii: ":") else { return false }
        i += 1
    }
    var q = name
    while q.pointee != 0 {
        guard i < end, b[i] == q.pointee else { return false }
        i += 1; q += 1
    }
    return i == end
}
