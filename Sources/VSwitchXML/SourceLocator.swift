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

struct StartTagLocation {
    var position: SourcePosition
    /// Attribute qualified name as written (`xsi:nil`, `First`) → position of its name.
    var attributes: [(name: String, position: SourcePosition)]
}

struct SourceLocator {
    private(set) var tags: [StartTagLocation] = []

    init(_ bytes: [UInt8]) {
        var i = 0
        var line = 1
        var column = 1
        let n = bytes.count

        @inline(__always) func advance() {
            let b = bytes[i]
            if b == 0x0A {
                line += 1; column = 1
            } else if b == 0x0D {
                // CR LF and lone CR both end a line (XML end-of-line handling).
                if i + 1 < n, bytes[i + 1] == 0x0A { /* the LF ends it */ } else { line += 1; column = 1 }
            } else if b & 0xC0 != 0x80 {
                column += 1
            }
            i += 1
        }
        func starts(_ s: [UInt8]) -> Bool {
            guard i + s.count <= n else { return false }
            for k in 0..<s.count where bytes[i + k] != s[k] { return false }
            return true
        }
        func skip(until terminator: [UInt8]) {
            while i < n, !starts(terminator) { advance() }
            for _ in 0..<terminator.count where i < n { advance() }
        }
        func isSpace(_ b: UInt8) -> Bool { b == 0x20 || b == 0x09 || b == 0x0A || b == 0x0D }

        let commentOpen: [UInt8] = Array("<!--".utf8), commentClose: [UInt8] = Array("-->".utf8)
        let cdataOpen: [UInt8] = Array("<![CDATA[".utf8), cdataClose: [UInt8] = Array("]]>".utf8)
        let piOpen: [UInt8] = Array("<?".utf8), piClose: [UInt8] = Array("?>".utf8)

        while i < n {
            guard bytes[i] == UInt8(ascii: "<") else { advance(); continue }
            if starts(commentOpen) { skip(until: commentClose); continue }
            if starts(cdataOpen) { skip(until: cdataClose); continue }
            if starts(piOpen) { skip(until: piClose); continue }
            if i + 1 < n, bytes[i + 1] == UInt8(ascii: "/") || bytes[i + 1] == UInt8(ascii: "!") {
                // End tag or a declaration (DOCTYPE is refused before we get here): skip to '>'.
                skip(until: [UInt8(ascii: ">")]); continue
            }
            // A start tag.
            var tag = StartTagLocation(position: SourcePosition(line: line, column: column), attributes: [])
            advance()  // '<'
            while i < n, !isSpace(bytes[i]), bytes[i] != UInt8(ascii: ">"), bytes[i] != UInt8(ascii: "/") { advance() }
            while i < n {
                while i < n, isSpace(bytes[i]) { advance() }
                guard i < n else { break }
                if bytes[i] == UInt8(ascii: ">") { advance(); break }
                if bytes[i] == UInt8(ascii: "/") { advance(); continue }
                let pos = SourcePosition(line: line, column: column)
                let start = i
                while i < n, !isSpace(bytes[i]), bytes[i] != UInt8(ascii: "="), bytes[i] != UInt8(ascii: ">") { advance() }
                let name = String(decoding: bytes[start..<i], as: UTF8.self)
                while i < n, isSpace(bytes[i]) { advance() }
                if i < n, bytes[i] == UInt8(ascii: "=") { advance() }
                while i < n, isSpace(bytes[i]) { advance() }
                if i < n, bytes[i] == UInt8(ascii: "\"") || bytes[i] == UInt8(ascii: "'") {
                    let quote = bytes[i]
                    advance()
                    while i < n, bytes[i] != quote { advance() }
                    if i < n { advance() }
                }
                tag.attributes.append((name, pos))
            }
            tags.append(tag)
        }
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
