// Exact line and column of every start tag and attribute, found by a small scan of the
// document bytes. libxml2's DOM keeps only a line per node (no column, and capped at
// 65535), so after libxml2 has accepted the document as well-formed we walk the bytes
// once more: start tags appear in the same order as elements in a preorder walk of the
// DOM, which lets the two be matched by index. Comments, CDATA sections, processing
// instructions and end tags are skipped; quoted attribute values may contain `>`.
// Columns count Unicode scalars (UTF-8 continuation bytes are not counted), 1-based.

struct SourcePosition: Hashable {
    var line: Int
    var column: Int
}

/// Stored as 32-bit fields (documents are far below 2 GiB; larger ones get no locator): a 1,000-profile
/// document has ~70,000 tags and ~90,000 attributes, and these arrays are built at every reload.
struct StartTagLocation {
    private var line: Int32, column: Int32
    private var start: Int32
    private var attributeStart: Int32, attributeEnd: Int32

    init(position: SourcePosition, offset: Int, attributes: Range<Int>) {
        line = Int32(truncatingIfNeeded: position.line); column = Int32(truncatingIfNeeded: position.column)
        start = Int32(truncatingIfNeeded: offset)
        attributeStart = Int32(truncatingIfNeeded: attributes.lowerBound); attributeEnd = Int32(truncatingIfNeeded: attributes.upperBound)
    }

    var position: SourcePosition { SourcePosition(line: Int(line), column: Int(column)) }
    /// Byte offset of the `<`.
    var offset: Int { Int(start) }
    /// Where this tag's attributes are in `SourceLocator.attributes`.
    var attributes: Range<Int> {
        get { Int(attributeStart)..<Int(attributeEnd) }
        set { attributeStart = Int32(truncatingIfNeeded: newValue.lowerBound); attributeEnd = Int32(truncatingIfNeeded: newValue.upperBound) }
    }
}

/// An attribute as written: its qualified name (`xsi:nil`, `First`) as a byte range of the document, and
/// the position of the name.
struct AttributeLocation {
    private var start: Int32, end: Int32
    private var line: Int32, column: Int32

    init(nameStart: Int, nameEnd: Int, position: SourcePosition) {
        start = Int32(truncatingIfNeeded: nameStart); end = Int32(truncatingIfNeeded: nameEnd)
        line = Int32(truncatingIfNeeded: position.line); column = Int32(truncatingIfNeeded: position.column)
    }

    var nameStart: Int { Int(start) }
    var nameEnd: Int { Int(end) }
    var position: SourcePosition { SourcePosition(line: Int(line), column: Int(column)) }
}

struct SourceLocator {
    private(set) var tags: [StartTagLocation] = []
    /// Every tag's attributes, in document order (one array for the whole document: no array per tag).
    private(set) var attributes: [AttributeLocation] = []
    /// Nesting depth of each start tag (the root is 1), from the start, end and empty-element tags seen.
    private(set) var depths: [Int32] = []

    /// Index of the first start tag after the subtree of tag `k` (the tag count when none follows).
    func subtreeEnd(of k: Int) -> Int {
        let d = depths[k]
        var j = k + 1
        while j < depths.count, depths[j] > d { j += 1 }
        return j
    }

    /// The byte scan: position (line, column) kept up to date byte by byte. A struct over the buffer
    /// rather than closures over local variables (which the closures would box): 2.5 MB in a few ms.
    private struct Scanner {
        let b: UnsafeBufferPointer<UInt8>
        let n: Int
        var i = 0
        var line = 1
        var column = 1

        init(_ b: UnsafeBufferPointer<UInt8>) { self.b = b; n = b.count }

        @inline(__always) mutating func advance() {
            let c = b[i]
            if c == 0x0A {
                line += 1; column = 1
            } else if c == 0x0D {
                // CR LF and lone CR both end a line (XML end-of-line handling).
                if i + 1 < n, b[i + 1] == 0x0A { /* the LF ends it */ } else { line += 1; column = 1 }
            } else if c & 0xC0 != 0x80 {
                column += 1
            }
            i += 1
        }

        @inline(__always) func starts(_ s: StaticString) -> Bool {
            let count = s.utf8CodeUnitCount
            guard i + count <= n else { return false }
            let p = s.utf8Start
            for k in 0..<count where b[i + k] != p[k] { return false }
            return true
        }

        mutating func skip(until terminator: StaticString) {
            while i < n, !starts(terminator) { advance() }
            for _ in 0..<terminator.utf8CodeUnitCount where i < n { advance() }
        }

        @inline(__always) static func isSpace(_ c: UInt8) -> Bool { c == 0x20 || c == 0x09 || c == 0x0A || c == 0x0D }
    }

    init(_ bytes: [UInt8]) {
        var tags: [StartTagLocation] = []
        var attributes: [AttributeLocation] = []
        var depths: [Int32] = []
        var depth: Int32 = 0
        // Positions and offsets are kept in 32 bits: no locator for documents of 2 GiB or more.
        guard bytes.count < Int(Int32.max) else { return }
        bytes.withUnsafeBufferPointer { buffer in
            // Room for every tag and attribute at once (at most one per '<' and per '='), instead of
            // growing the arrays by doubling (each growth copies them).
            var lts = 0, eqs = 0
            for c in buffer {
                lts &+= c == UInt8(ascii: "<") ? 1 : 0
                eqs &+= c == UInt8(ascii: "=") ? 1 : 0
            }
            tags.reserveCapacity(lts)
            depths.reserveCapacity(lts)
            attributes.reserveCapacity(eqs)
            var s = Scanner(buffer)
            let b = buffer, n = s.n
            let lt = UInt8(ascii: "<"), gt = UInt8(ascii: ">"), slash = UInt8(ascii: "/"), bang = UInt8(ascii: "!")
            let eq = UInt8(ascii: "="), dq = UInt8(ascii: "\""), sq = UInt8(ascii: "'")
            while s.i < n {
                // Text: only line and column matter until the next '<'.
                guard b[s.i] == lt else { s.advance(); continue }
                if s.starts("<!--") { s.skip(until: "-->"); continue }
                if s.starts("<![CDATA[") { s.skip(until: "]]>"); continue }
                if s.starts("<?") { s.skip(until: "?>"); continue }
                if s.i + 1 < n, b[s.i + 1] == slash || b[s.i + 1] == bang {
                    // End tag or a declaration (DOCTYPE is refused before we get here): skip to '>'.
                    if b[s.i + 1] == slash { depth -= 1 }
                    s.skip(until: ">"); continue
                }
                // A start tag.
                depth += 1
                var tag = StartTagLocation(position: SourcePosition(line: s.line, column: s.column), offset: s.i,
                                           attributes: attributes.count..<attributes.count)
                depths.append(depth)
                s.advance()  // '<'
                while s.i < n, !Scanner.isSpace(b[s.i]), b[s.i] != gt, b[s.i] != slash { s.advance() }
                while s.i < n {
                    while s.i < n, Scanner.isSpace(b[s.i]) { s.advance() }
                    guard s.i < n else { break }
                    if b[s.i] == gt { s.advance(); break }
                    if b[s.i] == slash {
                        // "/>": an empty element, nothing nests inside it.
                        depth -= 1
                        s.advance()
                        while s.i < n, b[s.i] != gt { s.advance() }
                        if s.i < n { s.advance() }
                        break
                    }
                    let pos = SourcePosition(line: s.line, column: s.column)
                    let start = s.i
                    while s.i < n, !Scanner.isSpace(b[s.i]), b[s.i] != eq, b[s.i] != gt { s.advance() }
                    let nameEnd = s.i
                    while s.i < n, Scanner.isSpace(b[s.i]) { s.advance() }
                    if s.i < n, b[s.i] == eq { s.advance() }
                    while s.i < n, Scanner.isSpace(b[s.i]) { s.advance() }
                    if s.i < n, b[s.i] == dq || b[s.i] == sq {
                        let quote = b[s.i]
                        s.advance()
                        while s.i < n, b[s.i] != quote { s.advance() }
                        if s.i < n { s.advance() }
                    }
                    attributes.append(AttributeLocation(nameStart: start, nameEnd: nameEnd, position: pos))
                }
                tag.attributes = tag.attributes.lowerBound..<attributes.count
                tags.append(tag)
            }
        }
        self.tags = tags
        self.attributes = attributes
        self.depths = depths
    }

    /// Line and column of the byte at `offset` (1-based), for errors that only know an offset.
    static func position(ofOffset offset: Int, in bytes: [UInt8]) -> SourcePosition {
        var line = 1, column = 1
        var i = 0
        while i < min(offset, bytes.count) {
            let b = bytes[i]
            if b == 0x0A { line += 1; column = 1 }
            else if b == 0x0D { if !(i + 1 < bytes.count && bytes[i + 1] == 0x0A) { line += 1; column = 1 } }
            else if b & 0xC0 != 0x80 { column += 1 }
            i += 1
        }
        return SourcePosition(line: line, column: column)
    }
}
