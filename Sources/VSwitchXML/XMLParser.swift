// VSwitchXML — libxml2 fenced in: safe parsing, XSD validation, located diagnostics.
//
// Design
// - One entry point, `XMLParser.parse`, turns bytes into a plain Swift element tree
//   (`XMLDocument` / `XMLElement`): libxml2's DOM is copied out and freed before the call
//   returns, so no C pointer escapes this module and callers never touch libxml2.
// - Hostile input is bounded: documents larger than `XMLLimits.maxBytes` (4 MiB) or nested
//   deeper than `maxDepth` (64) are refused; the parser runs with XML_PARSE_NONET, without
//   DTD loading (no XML_PARSE_DTDLOAD / DTDATTR / DTDVALID) and without entity
//   substitution (no XML_PARSE_NOENT); a document with a DOCTYPE is refused outright — a
//   SAX hook stops the parser as soon as `<!DOCTYPE` is seen, before any entity
//   declaration is read. Only UTF-8 (or ASCII-compatible) documents are accepted.
// - Every finding is an `XMLDiagnostic` with file, line and column. libxml2's DOM has no
//   columns, so `SourceLocator` rescans the bytes to place every start tag and attribute.
// - XSD validation (`XMLSchema`) compiles schemas from in-memory strings; `xs:import`
//   and `xs:include` are served from the same set of strings by a temporary external
//   entity loader that refuses everything else (no file or network access at all).
//   Errors are collected with `xmlSchemaSetValidStructuredErrors` (structured: line,
//   node) and mapped back to the element tree so readers can attach a profile name.
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

/// An XSD finding, with the document-order index of the element it is about (when known),
/// so that a reader can say which profile it belongs to.
public struct XMLValidationIssue: Sendable {
    public var diagnostic: XMLDiagnostic
    public var elementIndex: Int?
}

public struct XMLParseResult: Sendable {
    public var document: XMLDocument
    /// XSD findings (empty when no schema was given). Parsing succeeded regardless:
    /// the caller decides how to merge them with its own checks.
    public var validationIssues: [XMLValidationIssue]
    /// Non-fatal findings of the XML parser itself (libxml2 warnings).
    public var warnings: [XMLDiagnostic]
}

public enum XMLParser {
    /// Parses a document. Throws `XMLError` when the document is not well-formed, has a
    /// DOCTYPE, breaks a limit or is not UTF-8; XSD findings are returned, not thrown.
    public static func parse(bytes: [UInt8], fileName: String, limits: XMLLimits = XMLLimits(),
                             schema: XMLSchema? = nil) throws(XMLError) -> XMLParseResult {
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
                try parseLocked(bytes: bytes, fileName: fileName, limits: limits, schema: schema)
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
                                    schema: XMLSchema?) throws(XMLError) -> XMLParseResult {
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
        let options = Int32(XML_PARSE_NONET.rawValue | XML_PARSE_NOCDATA.rawValue)
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
        // otherwise fall back to libxml2's line numbers (no column).
        var locator = SourceLocator(bytes)
        if locator.tags.count != countElements(rootNode) { locator = SourceLocator([]) }
        var builder = TreeBuilder(state: state, locator: locator, maxDepth: limits.maxDepth,
                                  recordNodes: !state.rawIssues.isEmpty)
        let root = builder.build(rootNode, depth: 1)
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
        let document = XMLDocument(fileName: fileName, root: root)
        return XMLParseResult(document: document, validationIssues: issues,
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

private struct TreeBuilder {
    let state: ParseState
    let locator: SourceLocator
    let maxDepth: Int
    /// Fill `state.nodes` / `attributePositions` (only needed to map XSD reports).
    let recordNodes: Bool
    var nextIndex = 0
    var depthError: XMLDiagnostic?

    init(state: ParseState, locator: SourceLocator, maxDepth: Int, recordNodes: Bool) {
        self.state = state
        self.locator = locator
        self.maxDepth = maxDepth
        self.recordNodes = recordNodes
    }

    mutating func build(_ node: xmlNodePtr, depth: Int) -> XMLElement? {
        let index = nextIndex
        nextIndex += 1
        let name = node.pointee.name.map { String(cString: $0) } ?? ""
        let uri = node.pointee.ns?.pointee.href.map { String(cString: $0) }
        let prefix = node.pointee.ns?.pointee.prefix.map { String(cString: $0) }
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

        var attributes: [XMLAttribute] = []
        var attr = node.pointee.properties
        while let a = attr {
            let aname = a.pointee.name.map { String(cString: $0) } ?? ""
            let auri = a.pointee.ns?.pointee.href.map { String(cString: $0) }
            let aprefix = a.pointee.ns?.pointee.prefix.map { String(cString: $0) }
            let qname = aprefix.map { "\($0):\(aname)" } ?? aname
            let apos = tag?.attributes.first(where: { $0.name == qname })?.position ?? position
            attributes.append(XMLAttribute(name: aname, namespaceURI: auri, prefix: aprefix,
                                           value: textContent(a.pointee.children),
                                           line: apos.line, column: apos.column))
            if recordNodes {
                state.nodes[UnsafeMutableRawPointer(a)] = .init(index: index, element: display, attribute: qname, position: apos)
                let schemaName = state.displayName(localName: aname, namespaceURI: auri, prefix: aprefix)
                state.attributePositions[index, default: [:]][schemaName] = apos
            }
            attr = a.pointee.next
        }

        var children: [XMLElement] = []
        var text = ""
        var child = node.pointee.children
        while let c = child {
            switch c.pointee.type {
            case XML_ELEMENT_NODE:
                if let e = build(c, depth: depth + 1) { children.append(e) }
                if depthError != nil { return nil }
            case XML_TEXT_NODE, XML_CDATA_SECTION_NODE:
                if let content = c.pointee.content { text += String(cString: content) }
            default:
                break
            }
            child = c.pointee.next
        }
        return XMLElement(name: name, namespaceURI: uri, prefix: prefix, attributes: attributes, children: children,
                          text: text, line: position.line, column: position.column,
                          index: index, subtreeEnd: nextIndex)
    }

    /// Concatenated content of a list of text nodes (attribute values).
    private func textContent(_ first: xmlNodePtr?) -> String {
        var s = ""
        var n = first
        while let c = n {
            if let content = c.pointee.content { s += String(cString: content) }
            n = c.pointee.next
        }
        return s
    }
}
