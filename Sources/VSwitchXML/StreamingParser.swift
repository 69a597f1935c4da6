// Validation while parsing (issue 3: a cold load of a 2.5 MB profile document). The XSD validator is
// plugged into libxml2's SAX stream (`xmlSchemaSAXPlug`) and the element tree is built from the same
// events: no libxml2 DOM is built, walked or freed (its DOM, `xmlSchemaValidateDoc` on it and
// `xmlFreeDoc` were ~65 ms of a 1,000-profile document here, the stream ~35 ms).
//
// It only ever gives the answer the DOM path (`XMLParser.parseLocked`) would give, or none:
// - used only for documents without any finding at all — a libxml2 error or warning of any kind, an
//   XSD finding, a DOCTYPE, the depth limit, start tags the locator did not match one for one — and
//   without the few things the two paths treat differently: an attribute value with a reference
//   (`&…;`, which libxml2 hands to SAX still encoded), an attribute in the `xml` namespace (`xml:id`
//   registers an ID in a DOM only), `xsi:type` (a type of the document's choosing could be ID/IDREF,
//   which libxml2 checks on a DOM only). Anything else returns nil and the caller takes the DOM path,
//   whose diagnostics (file, line, column, element, message) are therefore unchanged. (An XSD finding
//   stops the stream at once: a refused document costs the stream up to its first finding on top of
//   the DOM path — at worst, a finding in the last of 1,000 profiles, one more parse.)
// - the tree is the DOM path's: the same names, namespaces, attributes (values as libxml2 normalised
//   them), text (every text and CDATA chunk directly inside the element, concatenated), positions from
//   the same `SourceLocator`, indices, reused subtrees and placeholders (`XMLParser.parse`).
//   `StreamingParserTests` compares the two paths on every document of the test corpus.
//
// Threading: called with `LibXML2.lock` held and the globals isolated (`XMLParser.parse`). The
// callbacks reach the builder through the parser context's `_private` (a struct behind a pointer:
// no dynamic exclusivity checks per event, as a class's properties had, ~2 % of a reload); libxml2's
// reports are counted in `StreamingBuilder.findings`, which only that lock guards.

import CLibXML2
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

struct StreamingBuilder {
    /// libxml2 reports of any kind (parser, namespace, XSD) during the parse in progress (`LibXML2.lock` held).
    nonisolated(unsafe) static var findings = 0

    /// The builder of the parse whose context is `ctx` (SAX user data: the parser context, the plug passes it on).
    @inline(__always) static func at(_ ctx: UnsafeMutableRawPointer?) -> UnsafeMutablePointer<StreamingBuilder>? {
        guard let ctx, let p = ctx.assumingMemoryBound(to: xmlParserCtxt.self).pointee._private else { return nil }
        return p.assumingMemoryBound(to: StreamingBuilder.self)
    }

    struct Frame {
        var name: String
        var namespaceURI: String?
        var prefix: String?
        var attributes: [XMLAttribute]
        /// Where this element's children start on the children stack (as for the text: an element's children are
        /// gathered there and copied into one array of the exact size when it ends — appending to a growing
        /// array per element reallocated it ~6 times for an ovf:Item's 28 children, issue 3).
        var childMark: Int
        /// Where this element's text starts in `textBytes` (nested elements append after it and truncate
        /// back when they end).
        var textMark: Int
        var index: Int
        var position: SourcePosition
    }

    let bytes: UnsafeBufferPointer<UInt8>
    let locator: SourceLocator
    let maxDepth: Int
    let reuse: ((XMLSubtreeCandidate) -> Int?)?
    let placeholders: XMLPlaceholders?
    private let placeholderTarget: [CChar]
    let parser: xmlParserCtxtPtr

    /// Something only the DOM path handles (see the file header): the result is thrown away.
    private(set) var failed = false
    private var stack: [Frame] = []
    private(set) var root: XMLElement?
    private(set) var nextIndex = 0
    /// > 0 inside a subtree the `reuse` hook took: its events are skipped (nesting counted).
    private var skipDepth = 0
    private var textBytes: [UInt8] = []
    /// The children of the open elements, each element's after its parent's (see `Frame.childMark`): a
    /// stack of our own, so that an element's children are moved into its array, not copied and released
    /// (a retain and a release per element). Freed by `releaseBuffers`, which the owner calls once.
    private var childBase: UnsafeMutablePointer<XMLElement>
    private var childCount = 0
    private var childCapacity = 64
    private var strings: StringInterner
    private var smallStrings = SmallStringCache()
    private(set) var placeholderCount = 0
    private(set) var rootNamespaces: [XMLNamespaceDeclaration] = []

    init(bytes: UnsafeBufferPointer<UInt8>, locator: SourceLocator, maxDepth: Int, reuse: ((XMLSubtreeCandidate) -> Int?)?,
         placeholders: XMLPlaceholders?, parser: xmlParserCtxtPtr, knownStrings: [String] = []) {
        self.bytes = bytes
        self.strings = StringInterner(known: knownStrings)
        self.locator = locator
        self.maxDepth = maxDepth
        self.reuse = reuse
        self.placeholders = placeholders
        self.placeholderTarget = placeholders.map { Array($0.target.utf8CString) } ?? []
        self.parser = parser
        stack.reserveCapacity(16)
        childBase = .allocate(capacity: childCapacity)
    }

    /// Frees the children stack (and whatever is still on it, after a failure). Called once, by the owner.
    mutating func releaseBuffers() {
        childBase.deinitialize(count: childCount)
        childBase.deallocate()
        childCount = 0
    }

    private mutating func pushChild(_ e: __owned XMLElement) {
        if childCount == childCapacity {
            let bigger = UnsafeMutablePointer<XMLElement>.allocate(capacity: childCapacity * 2)
            bigger.moveInitialize(from: childBase, count: childCount)
            childBase.deallocate()
            childBase = bigger
            childCapacity *= 2
        }
        (childBase + childCount).initialize(to: e)
        childCount += 1
    }

    /// The children above `mark`, moved into an array of their own.
    private mutating func popChildren(from mark: Int) -> [XMLElement] {
        let n = childCount - mark
        if n <= 0 { return [] }
        let base = childBase + mark
        childCount = mark
        return Array(unsafeUninitializedCapacity: n) { buffer, count in
            buffer.baseAddress!.moveInitialize(from: base, count: n)
            count = n
        }
    }

    /// Gives up: stop libxml2, the caller takes the DOM path.
    mutating func fail() {
        if !failed { failed = true; xmlStopParser(parser) }
    }

    /// Whether the whole document was built, in step with the locator.
    var complete: Bool {
        !failed && Self.findings == 0 && root != nil && stack.isEmpty && skipDepth == 0 && nextIndex == locator.tags.count
    }

    private static let xmlPrefix: [CChar] = Array("xml".utf8CString)
    private static let xsiURI: [CChar] = Array(xsiNamespace.utf8CString)
    private static let typeName: [CChar] = Array("type".utf8CString)

    @inline(__always) private static func equal(_ p: UnsafePointer<xmlChar>, _ s: [CChar]) -> Bool {
        s.withUnsafeBufferPointer { strcmp(UnsafeRawPointer(p).assumingMemoryBound(to: CChar.self), $0.baseAddress!) == 0 }
    }

    private func qualifiedNameMatches(_ start: Int, _ end: Int, prefix: UnsafePointer<xmlChar>?, name: UnsafePointer<xmlChar>) -> Bool {
        bytesSpellQualifiedName(bytes, start, end, prefix: prefix, name: name)
    }

    mutating func startElement(localname: UnsafePointer<xmlChar>?, prefix: UnsafePointer<xmlChar>?, uri: UnsafePointer<xmlChar>?,
                      namespaceCount: Int, namespaces: UnsafeMutablePointer<UnsafePointer<xmlChar>?>?,
                      attributeCount: Int, attributes: UnsafeMutablePointer<UnsafePointer<xmlChar>?>?) {
        if failed { return }
        if skipDepth > 0 { skipDepth += 1; return }
        let depth = stack.count + 1
        let index = nextIndex
        guard depth <= maxDepth, index < locator.tags.count, let localname else { fail(); return }
        nextIndex += 1
        let tag = locator.tags[index]
        let position = tag.position
        let name = strings.string(localname)
        let namespaceURI = uri.map { strings.string($0) }
        // (The DOM's element prefix is that of the namespace its URI was found with: the one written.)
        let prefixString = uri == nil ? nil : prefix.map { strings.string($0) }

        if depth == 1, let namespaces {
            // As xmlSAX2StartElementNs turns them into the root's nsDef (xmlNewNs refuses the prefix xml).
            for k in 0..<namespaceCount {
                let p = namespaces[2 * k], u = namespaces[2 * k + 1]
                if let p, Self.equal(p, Self.xmlPrefix) { continue }
                rootNamespaces.append(XMLNamespaceDeclaration(prefix: p.map { String(cString: $0) },
                                                              uri: u.map { String(cString: $0) } ?? ""))
            }
        }

        if let reuse, depth == 2, locator.depths[index] == 2, locator.ends[index] > tag.offset {
            let end = locator.subtreeEnd(of: index)
            if end <= locator.tags.count {
                let source = tag.offset..<Int(locator.ends[index])
                let rootSource = locator.tags[0].offset..<(locator.tags.count > 1 ? locator.tags[1].offset : bytes.count)
                let candidate = XMLSubtreeCandidate(depth: depth, name: name, namespaceURI: namespaceURI, source: source,
                                                    rootSource: rootSource)
                if let token = reuse(candidate) {
                    nextIndex = end
                    pushChild(
                        XMLElement(name: name, namespaceURI: namespaceURI, prefix: prefixString, line: position.line,
                                   column: position.column, index: index, subtreeEnd: end, reused: token))
                    skipDepth = 1
                    return
                }
            }
        }

        var list: [XMLAttribute] = []
        if attributeCount > 0, let attributes {
            // Checked first, built after (the building loop has no way out).
            for k in 0..<attributeCount {
                let a = attributes + 5 * k
                guard let aname = a[0], let value = a[3], let valueEnd = a[4] else { fail(); return }
                let aprefix = a[1], auri = a[2]
                if let aprefix, Self.equal(aprefix, Self.xmlPrefix) { fail(); return }
                if let auri, Self.equal(auri, Self.xsiURI), Self.equal(aname, Self.typeName) { fail(); return }
                let count = value.distance(to: valueEnd)
                guard count >= 0 else { fail(); return }
                if UnsafeBufferPointer(start: value, count: count).contains(UInt8(ascii: "&")) { fail(); return }
            }
            list.reserveCapacity(attributeCount)
            for k in 0..<attributeCount {
                let a = attributes + 5 * k
                let aname = a[0].unsafelyUnwrapped, value = a[3].unsafelyUnwrapped
                let aprefix = a[1], auri = a[2]
                let v = UnsafeBufferPointer(start: value, count: value.distance(to: a[4].unsafelyUnwrapped))
                var apos = position
                // Its position: the located attribute spelling its qualified name. libxml2 reports them in
                // document order, so the k-th is tried first (no namespace declaration before it: every
                // vsx:Acl attribute then costs one comparison, not k + 1); else the first that matches —
                // the same one, since in a document with no finding no two attributes of a tag are spelled
                // alike (libxml2 refuses a repeated attribute).
                let guess = tag.attributes.lowerBound + k
                if guess < tag.attributes.upperBound,
                   qualifiedNameMatches(locator.attributes[guess].nameStart, locator.attributes[guess].nameEnd,
                                        prefix: aprefix, name: aname) {
                    apos = locator.attributes[guess].position
                } else {
                    for j in tag.attributes {
                        let l = locator.attributes[j]
                        if qualifiedNameMatches(l.nameStart, l.nameEnd, prefix: aprefix, name: aname) {
                            apos = l.position
                            break
                        }
                    }
                }
                list.append(XMLAttribute(name: strings.string(aname), namespaceURI: auri.map { strings.string($0) },
                                         prefix: auri == nil ? nil : aprefix.map { strings.string($0) },
                                         value: smallStrings.string(v), line: apos.line, column: apos.column))
            }
        }
        stack.append(Frame(name: name, namespaceURI: namespaceURI, prefix: prefixString, attributes: list,
                           childMark: childCount, textMark: textBytes.count, index: index, position: position))
    }

    mutating func endElement() {
        if failed { return }
        if skipDepth > 0 { skipDepth -= 1; return }
        guard !stack.isEmpty else { fail(); return }
        var f = stack.removeLast()
        var text = ""
        if textBytes.count > f.textMark {
            text = textBytes.withUnsafeBufferPointer { smallStrings.string(UnsafeBufferPointer(rebasing: $0[f.textMark...])) }
            textBytes.removeSubrange(f.textMark...)
        }
        let own = popChildren(from: f.childMark)
        // (The frame's fields moved out, not copied: a retain and a release per field otherwise.)
        let e = XMLElement(name: Self.take(&f.name, ""), namespaceURI: Self.take(&f.namespaceURI, nil),
                           prefix: Self.take(&f.prefix, nil), attributes: Self.take(&f.attributes, []),
                           children: own, text: text, line: f.position.line, column: f.position.column,
                           index: f.index, subtreeEnd: nextIndex)
        if stack.isEmpty { root = e } else { pushChild(e) }
    }

    /// The value of `v`, which is left holding `empty` (moved out, no copy).
    @inline(__always) private static func take<T>(_ v: inout T, _ empty: T) -> T {
        var r = empty
        swap(&r, &v)
        return r
    }

    mutating func characters(_ p: UnsafePointer<xmlChar>?, _ count: Int) {
        if failed || skipDepth > 0 || stack.isEmpty { return }
        guard let p, count > 0 else { return }
        textBytes.append(contentsOf: UnsafeBufferPointer(start: p, count: count))
    }

    mutating func processingInstruction(target: UnsafePointer<xmlChar>?) {
        if failed || skipDepth > 0 { return }
        // Directly in the root's content, with the placeholder target: an element left out (XMLPlaceholders).
        guard stack.count == 1, let placeholders, let target, Self.equal(target, placeholderTarget) else { return }
        // (All of the children stack is the root's: nothing else is open.)
        pushChild(XMLElement(name: placeholders.name, namespaceURI: placeholders.namespaceURI,
                                            index: nextIndex, subtreeEnd: nextIndex, reused: placeholderCount))
        placeholderCount += 1
    }

    // MARK: the SAX handler

    /// A SAX handler that builds nothing but our tree (no DOM).
    static func install(in sax: UnsafeMutablePointer<xmlSAXHandler>) {
        sax.pointee = xmlSAXHandler()
        sax.pointee.initialized = XML_SAX2_MAGIC
        sax.pointee.startElementNs = { ctx, localname, prefix, uri, nbNamespaces, namespaces, nbAttributes, _, attributes in
            StreamingBuilder.at(ctx)?.pointee.startElement(localname: localname, prefix: prefix, uri: uri,
                                                   namespaceCount: Int(nbNamespaces), namespaces: namespaces,
                                                   attributeCount: Int(nbAttributes), attributes: attributes)
        }
        sax.pointee.endElementNs = { ctx, _, _, _ in StreamingBuilder.at(ctx)?.pointee.endElement() }
        let characters: charactersSAXFunc = { ctx, p, n in StreamingBuilder.at(ctx)?.pointee.characters(p, Int(n)) }
        sax.pointee.characters = characters
        // The same function for whitespace, as in libxml2's default handler: then the parser never asks
        // whether whitespace is ignorable.
        sax.pointee.ignorableWhitespace = characters
        sax.pointee.cdataBlock = characters
        sax.pointee.processingInstruction = { ctx, target, _ in StreamingBuilder.at(ctx)?.pointee.processingInstruction(target: target) }
        // A DOCTYPE: stop at once (the DOM path then refuses the document with its position).
        sax.pointee.internalSubset = { ctx, _, _, _ in StreamingBuilder.at(ctx)?.pointee.fail() }
        sax.pointee.serror = countFinding
    }
}

/// Every libxml2 report (parser, namespace, XSD, and anything reaching the thread's handler) during a
/// streaming parse: one is enough to hand the document to the DOM path.
let countFinding: xmlStructuredErrorFunc = { _, _ in
    StreamingBuilder.findings += 1
}

/// An XSD finding (the validator reports from inside a SAX callback): counted, and the parser stopped at
/// once, since the DOM path will parse the document again (a refused document costs little more than before).
let countFindingAndStop: xmlStructuredErrorFunc = { parser, _ in
    StreamingBuilder.findings += 1
    if let parser { xmlStopParser(parser.assumingMemoryBound(to: xmlParserCtxt.self)) }
}

extension XMLParser {
    /// The streaming path (see the file header): nil when the DOM path must answer. Lock held, globals isolated.
    static func parseStreaming(bytes: [UInt8], fileName: String, limits: XMLLimits, schema: XMLSchema?,
                               reuse: ((XMLSubtreeCandidate) -> Int?)?, placeholders: XMLPlaceholders?) -> XMLParseResult? {
        let locator = SourceLocator(bytes)
        guard !locator.tags.isEmpty, let ctxt = xmlNewParserCtxt() else { return nil }
        defer { xmlFreeParserCtxt(ctxt) }
        guard let sax = ctxt.pointee.sax else { return nil }
        StreamingBuilder.install(in: sax)
        var validation: xmlSchemaValidCtxtPtr?
        var plug: xmlSchemaSAXPlugPtr?
        defer { if let validation { xmlSchemaFreeValidCtxt(validation) } }
        if let schema {
            guard let v = xmlSchemaNewValidCtxt(schema.schema) else { return nil }
            validation = v
            xmlSchemaSetValidStructuredErrors(v, countFindingAndStop, UnsafeMutableRawPointer(ctxt))
            guard let p = withUnsafeMutablePointer(to: &ctxt.pointee.sax, { saxPointer in
                withUnsafeMutablePointer(to: &ctxt.pointee.userData) { xmlSchemaSAXPlug(v, saxPointer, $0) }
            }) else { return nil }
            plug = p
            // The plug's handler forwards to ours; parser errors go to its serror: ours too.
            ctxt.pointee.sax.pointee.serror = countFinding
        }
        let saved = __xmlStructuredError().pointee
        let savedContext = __xmlStructuredErrorContext().pointee
        xmlSetStructuredErrorFunc(nil, countFinding)
        defer {
            __xmlStructuredError().pointee = saved
            __xmlStructuredErrorContext().pointee = savedContext
        }

        let options = Int32(XML_PARSE_NONET.rawValue | XML_PARSE_NOCDATA.rawValue | XML_PARSE_COMPACT.rawValue)
        return bytes.withUnsafeBufferPointer { buf -> XMLParseResult? in
            let builder = UnsafeMutablePointer<StreamingBuilder>.allocate(capacity: 1)
            builder.initialize(to: StreamingBuilder(bytes: buf, locator: locator, maxDepth: limits.maxDepth, reuse: reuse,
                                                    placeholders: placeholders, parser: ctxt,
                                                    knownStrings: (schema.map { Array($0.prefixes.keys) } ?? []) + [xsiNamespace]))
            ctxt.pointee._private = UnsafeMutableRawPointer(builder)
            StreamingBuilder.findings = 0
            defer {
                ctxt.pointee._private = nil
                builder.pointee.releaseBuffers()
                builder.deinitialize(count: 1)
                builder.deallocate()
            }
            let doc: xmlDocPtr? = buf.baseAddress!.withMemoryRebound(to: CChar.self, capacity: buf.count) { p in
                fileName.withCString { name in xmlCtxtReadMemory(ctxt, p, Int32(buf.count), name, nil, options) }
            }
            // (Read before unplugging, which clears the validation context's state.)
            let valid = validation.map { xmlSchemaIsValid($0) == 1 } ?? true
            // Unplugged first, whatever happened: the context's handler is then ours again (freed with it).
            if let plug { xmlSchemaSAXUnplug(plug) }
            if let doc { xmlFreeDoc(doc); return nil }
            guard builder.pointee.complete, ctxt.pointee.wellFormed != 0, ctxt.pointee.nsWellFormed != 0,
                  valid, StreamingBuilder.findings == 0,
                  let root = builder.pointee.root else { return nil }
            let document = XMLDocument(fileName: fileName, root: root, bytes: bytes,
                                       startOffsets: locator.tags.map(\.offset), endOffsets: locator.ends.map { Int($0) },
                                       rootNamespaces: builder.pointee.rootNamespaces, hasIDs: false)
            return XMLParseResult(document: document, placeholders: builder.pointee.placeholderCount, validationIssues: [],
                                  warnings: [], validatedWhileParsing: true)
        }
    }
}

/// `String(decoding: bytes, as: UTF8.self)`, remembered for byte sequences of up to 15 bytes: a profile's attribute
/// values and short texts repeat ("Outbound", "Deny", "TCP", "100", "true"), and such strings are Swift small
/// strings (held inline: no allocation, no reference count), so handing out a remembered one is exactly making
/// it again, without the UTF-8 check and construction (~1 % of a 1,000-profile reload, issue 3). Direct-mapped:
/// 256 entries keyed by the bytes and the length, compared in full. Longer sequences are decoded each time.
struct SmallStringCache {
    private var keys = [UInt64](repeating: 0, count: 512)
    private var values = [String](repeating: "", count: 256)

    /// The decoded string of `b` (the same value `String(decoding: b, as: UTF8.self)` gives).
    mutating func string(_ b: UnsafeBufferPointer<UInt8>) -> String {
        let n = b.count
        guard n > 0, n <= 15, let base = b.baseAddress else { return String(decoding: b, as: UTF8.self) }
        // The bytes in two words (zero-padded), the length in the top byte of the second: equal keys, equal bytes.
        // (Assembled in registers: copying the bytes into the words in memory and reading the words back stalled
        // on store forwarding.)
        var k0: UInt64 = 0, k1: UInt64 = UInt64(n) << 56
        for i in 0..<min(n, 8) { k0 |= UInt64(base[i]) << UInt64(8 * i) }
        if n > 8 { for i in 8..<n { k1 |= UInt64(base[i]) << UInt64(8 * (i - 8)) } }
        var h = (k0 ^ (k1 &* 0x9E37_79B9_7F4A_7C15)) &* 0xC2B2_AE3D_27D4_EB4F
        h ^= h >> 29
        let slot = Int(truncatingIfNeeded: h >> 56)   // 0..<256
        if keys[2 * slot] == k0 && keys[2 * slot + 1] == k1 { return values[slot] }
        let s = String(decoding: b, as: UTF8.self)
        keys[2 * slot] = k0; keys[2 * slot + 1] = k1
        values[slot] = s
        return s
    }
}
