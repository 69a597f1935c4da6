// Exact line and column of every start tag and attribute, found by a small scan of the
// document bytes. libxml2's DOM keeps only a line per node (no column, and capped at
// 65535), so after libxml2 has accepted the document as well-formed we walk the bytes
// once more: start tags appear in the same order as elements in a preorder walk of the
// DOM, which lets the two be matched by index. Comments, CDATA sections, processing
// instructions and end tags are skipped; quoted attribute values may contain `>`.
// Columns count Unicode scalars (UTF-8 continuation bytes are not counted), 1-based.

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

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
    /// Per start tag: the byte offset just past its element (after the `>` of its end tag, or of `/>`);
    /// -1 when the element is not closed (only in a document libxml2 refuses). With the start offset this
    /// is the element's exact extent in a well-formed document (issue 3: partial reloads).
    private(set) var ends: [Int32] = []

    /// Index of the first start tag after the subtree of tag `k` (the tag count when none follows).
    func subtreeEnd(of k: Int) -> Int {
        let d = depths[k]
        var j = k + 1
        while j < depths.count, depths[j] > d { j += 1 }
        return j
    }

    /// Line and column of offsets asked in increasing order: the line ends between the last offset asked and
    /// the next one are counted then (a plain loop over those bytes), and the column is the distance from the
    /// line's start — in a document with no byte above 0x7F; otherwise the bytes that are not UTF-8
    /// continuation bytes are counted from the last offset asked on the same line. Each byte is looked at
    /// once or twice in all, whatever the spacing of the offsets. (Issue 3: the scan before this kept a line
    /// and a column up to date at every byte of the document, and counted '<' and '=' a byte at a time
    /// before it: ~7 ms of a 2.5 MB document's reload.) The same answer as `position(ofOffset:)`, which
    /// `FastPathTests` and `StreamingParserTests` check.
    private struct Positions {
        let b: UnsafePointer<UInt8>
        let n: Int
        /// No byte above 0x7F in the document: a column is a byte distance.
        let ascii: Bool
        /// The document has a CR: a lone CR ends a line too (a CR LF ends one, at its LF).
        let cr: Bool
        /// Line ends before `counted` are counted in `line` and `lineStart`.
        var counted = 0
        var line = 1
        var lineStart = 0
        /// (Non-ASCII documents) the column of offset `columnAt`, on the line starting at `lineStart`.
        var columnAt = 0
        var column = 1

        init(_ b: UnsafePointer<UInt8>, count n: Int, ascii: Bool, cr: Bool) {
            self.b = b; self.n = n; self.ascii = ascii; self.cr = cr
        }

        /// The position of offset `p` (≥ every offset asked before).
        @inline(__always) mutating func at(_ p: Int) -> SourcePosition {
            var k = counted, line = self.line, lineStart = self.lineStart
            if cr {
                while k < p {
                    let c = b[k]
                    // (CR LF: the LF ends the line; a lone CR ends it itself.)
                    if c == 0x0A || (c == 0x0D && !(k + 1 < n && b[k + 1] == 0x0A)) { line += 1; lineStart = k + 1 }
                    k += 1
                }
            } else {
                // 8 bytes at a time: a word with no LF is stepped over whole.
                let raw = UnsafeRawPointer(b)
                while k + 8 <= p {
                    var lf = SourceLocator.zeroBytes(raw.loadUnaligned(fromByteOffset: k, as: UInt64.self) ^ 0x0A0A_0A0A_0A0A_0A0A)
                    if lf != 0 {
                        // (The highest byte flagged is the word's last LF.)
                        lineStart = k + (63 - lf.leadingZeroBitCount) / 8 + 1
                        repeat { line += 1; lf &= lf &- 1 } while lf != 0
                    }
                    k += 8
                }
                while k < p {
                    if b[k] == 0x0A { line += 1; lineStart = k + 1 }
                    k += 1
                }
            }
            counted = p; self.line = line; self.lineStart = lineStart
            if ascii { return SourcePosition(line: line, column: p - lineStart + 1) }
            if columnAt < lineStart { columnAt = lineStart; column = 1 }
            var j = columnAt, col = column
            while j < p {
                if b[j] & 0xC0 != 0x80 { col += 1 }
                j += 1
            }
            columnAt = p; column = col
            return SourcePosition(line: line, column: col)
        }
    }

    /// 0x80 in each byte of `x` that is zero, 0 in the others (exact: no carry from one byte into the next).
    @inline(__always) static func zeroBytes(_ x: UInt64) -> UInt64 {
        let low7: UInt64 = 0x7F7F_7F7F_7F7F_7F7F
        return ~(((x & low7) &+ low7) | x | low7)
    }

    /// Offset of the first `byte` in `b[from..<n]`, `n` when there is none. The first 64 bytes are looked at 8 at
    /// a time in line, then memchr takes over: the distances these scans jump (to a tag's next '<', a value's
    /// closing quote) are mostly a few dozen bytes, where a memchr call cost more than the search (issue 3).
    @inline(__always) static func find(_ byte: UInt8, in b: UnsafePointer<UInt8>, from: Int, count n: Int) -> Int {
        var k = from
        let raw = UnsafeRawPointer(b)
        let pattern = UInt64(byte) &* 0x0101_0101_0101_0101
        let inline = min(n, from + 64)
        while k + 8 <= inline {
            let m = zeroBytes(raw.loadUnaligned(fromByteOffset: k, as: UInt64.self) ^ pattern)
            if m != 0 { return k + m.trailingZeroBitCount >> 3 }
            k += 8
        }
        if k + 8 > n {
            while k < n {
                if b[k] == byte { return k }
                k += 1
            }
            return n
        }
        guard let p = memchr(b + k, Int32(byte), n - k) else { return n }
        return UnsafePointer<UInt8>(p.assumingMemoryBound(to: UInt8.self)) - b
    }

    /// The sum of the 8 bytes of `x`.
    @inline(__always) private static func laneSum(_ x: UInt64) -> Int {
        let pairs = (x & 0x00FF_00FF_00FF_00FF) &+ ((x >> 8) & 0x00FF_00FF_00FF_00FF)   // four 16-bit sums ≤ 510
        return Int(truncatingIfNeeded: (pairs &* 0x0001_0001_0001_0001) >> 48)
    }

    @inline(__always) private static func isSpace(_ c: UInt8) -> Bool { c == 0x20 || c == 0x09 || c == 0x0A || c == 0x0D }

    init(_ bytes: [UInt8]) {
        // Positions and offsets are kept in 32 bits: no locator for documents of 2 GiB or more.
        guard bytes.count < Int(Int32.max), !bytes.isEmpty else { return }
        var tags: [StartTagLocation] = []
        var attributes: [AttributeLocation] = []
        var depths: [Int32] = []
        var ends: [Int32] = []
        bytes.withUnsafeBufferPointer { buffer in
            let b = buffer.baseAddress!, n = buffer.count
            // One pass over the document, 8 bytes at a time: room for every tag and attribute (at most one per
            // '<' and per '='; the arrays are filled in place, not grown), and whether there is any CR or any
            // byte above 0x7F (the position counting takes shortcuts without them).
            var lts = 0, eqs = 0
            var high: UInt64 = 0, crs: UInt64 = 0
            let raw = UnsafeRawPointer(b)
            var k = 0
            let ltWord: UInt64 = 0x3C3C_3C3C_3C3C_3C3C, eqWord: UInt64 = 0x3D3D_3D3D_3D3D_3D3D, crWord: UInt64 = 0x0D0D_0D0D_0D0D_0D0D
            // Per-byte-lane counters (0 or 1 added per lane and word), summed every 255 words, before a lane can
            // overflow.
            var ltLanes: UInt64 = 0, eqLanes: UInt64 = 0, words = 0
            while k + 8 <= n {
                let w = raw.loadUnaligned(fromByteOffset: k, as: UInt64.self)
                ltLanes &+= Self.zeroBytes(w ^ ltWord) >> 7
                eqLanes &+= Self.zeroBytes(w ^ eqWord) >> 7
                crs |= Self.zeroBytes(w ^ crWord)
                high |= w
                k += 8
                words += 1
                if words == 255 {
                    lts += Self.laneSum(ltLanes); eqs += Self.laneSum(eqLanes)
                    ltLanes = 0; eqLanes = 0; words = 0
                }
            }
            lts += Self.laneSum(ltLanes); eqs += Self.laneSum(eqLanes)
            while k < n {
                let c = b[k]
                lts &+= c == UInt8(ascii: "<") ? 1 : 0
                eqs &+= c == UInt8(ascii: "=") ? 1 : 0
                crs |= c == 0x0D ? 1 : 0
                high |= UInt64(c)
                k += 1
            }
            let lt = UInt8(ascii: "<"), gt = UInt8(ascii: ">"), slash = UInt8(ascii: "/"), bang = UInt8(ascii: "!")
            let eq = UInt8(ascii: "="), dq = UInt8(ascii: "\""), sq = UInt8(ascii: "'")
            /// Offset of the next `byte` at or after `i`, `n` when there is none.
            @inline(__always) func next(_ byte: UInt8, _ i: Int) -> Int {
                i < n ? Self.find(byte, in: b, from: i, count: n) : n
            }
            @inline(__always) func starts(_ s: StaticString, _ i: Int) -> Bool {
                let count = s.utf8CodeUnitCount
                guard i + count <= n else { return false }
                let p = s.utf8Start
                for k in 0..<count where b[i + k] != p[k] { return false }
                return true
            }
            /// Just past the first `terminator` at or after `i` (`n` when there is none).
            func skip(until terminator: StaticString, from i: Int) -> Int {
                var j = i
                while j < n, !starts(terminator, j) { j = next(terminator.utf8Start[0], j + 1) }
                return min(n, j + terminator.utf8CodeUnitCount)
            }
            /// Over a name: up to XML whitespace, '>' or `stop`.
            @inline(__always) func name(from i: Int, stop: UInt8) -> Int {
                var j = i
                while j < n {
                    let c = b[j]
                    if c == 0x20 || c == 0x09 || c == 0x0A || c == 0x0D || c == gt || c == stop { break }
                    j += 1
                }
                return j
            }
            /// The scan, with room for `attributeCapacity` attributes; false when there were more (only in a malformed
            /// document: an attribute with no '=').
            func build(attributeCapacity: Int) -> Bool {
            var pos = Positions(b, count: n, ascii: high & 0x8080_8080_8080_8080 == 0, cr: crs != 0)
            let open = UnsafeMutablePointer<Int32>.allocate(capacity: lts)   // the start tags not closed yet
            defer { open.deallocate() }
            var openCount = 0
            var depth: Int32 = 0
            var tagCount = 0, attributeCount = 0
            var overflow = false
            tags = Array(unsafeUninitializedCapacity: lts) { tagBuffer, tagsMade in
            depths = Array(unsafeUninitializedCapacity: lts) { depthBuffer, depthsMade in
            ends = Array(unsafeUninitializedCapacity: lts) { endBuffer, endsMade in
            attributes = Array(unsafeUninitializedCapacity: attributeCapacity) { attributeBuffer, attributesMade in
                let tagOut = tagBuffer.baseAddress!, depthOut = depthBuffer.baseAddress!
                let endOut = endBuffer.baseAddress!, attributeOut = attributeBuffer.baseAddress!
                var i = 0
                while i < n {
                    // Text: skipped to the next '<' (positions are counted only where one is asked for).
                    guard b[i] == lt else { i = next(lt, i); continue }
                    if i + 1 < n, b[i + 1] == bang || b[i + 1] == UInt8(ascii: "?") {
                        // (The terminator is looked for from the next byte on, as written: `<!-->` is a comment.)
                        if starts("<!--", i) { i = skip(until: "-->", from: i + 1); continue }
                        if starts("<![CDATA[", i) { i = skip(until: "]]>", from: i + 1); continue }
                        if starts("<?", i) { i = skip(until: "?>", from: i + 1); continue }
                    }
                    if i + 1 < n, b[i + 1] == slash || b[i + 1] == bang {
                        // End tag or a declaration (DOCTYPE is refused before we get here): skip to '>'.
                        let isEnd = b[i + 1] == slash
                        if isEnd { depth -= 1 }
                        i = next(gt, i)
                        if i < n { i += 1 }
                        if isEnd, openCount > 0 { openCount -= 1; endOut[Int(open[openCount])] = Int32(truncatingIfNeeded: i) }
                        continue
                    }
                    // A start tag.
                    depth += 1
                    let me = tagCount
                    let tagPosition = pos.at(i)
                    let tagOffset = i
                    let firstAttribute = attributeCount
                    depthOut[me] = depth
                    endOut[me] = -1
                    open[openCount] = Int32(truncatingIfNeeded: me); openCount += 1
                    tagCount += 1
                    i = name(from: i + 1, stop: slash)
                    while i < n {
                        while i < n, Self.isSpace(b[i]) { i += 1 }
                        guard i < n else { break }
                        if b[i] == gt { i += 1; break }
                        if b[i] == slash {
                            // "/>": an empty element, nothing nests inside it.
                            depth -= 1
                            i = next(gt, i + 1)
                            if i < n { i += 1 }
                            openCount -= 1
                            endOut[me] = Int32(truncatingIfNeeded: i)
                            break
                        }
                        let start = i
                        i = name(from: i, stop: eq)
                        let nameEnd = i
                        while i < n, Self.isSpace(b[i]) { i += 1 }
                        if i < n, b[i] == eq { i += 1 }
                        while i < n, Self.isSpace(b[i]) { i += 1 }
                        if i < n, b[i] == dq || b[i] == sq {
                            i = next(b[i], i + 1)
                            if i < n { i += 1 }
                        }
                        if attributeCount == attributeCapacity { overflow = true; break }
                        (attributeOut + attributeCount).initialize(
                            to: AttributeLocation(nameStart: start, nameEnd: nameEnd, position: pos.at(start)))
                        attributeCount += 1
                    }
                    (tagOut + me).initialize(to: StartTagLocation(position: tagPosition, offset: tagOffset,
                                                                  attributes: firstAttribute..<attributeCount))
                    if overflow { break }
                }
                attributesMade = attributeCount
            }
                endsMade = tagCount
            }
                depthsMade = tagCount
            }
                tagsMade = tagCount
            }
            return !overflow
            }
            // (Every attribute takes at least one byte.)
            if !build(attributeCapacity: eqs) { _ = build(attributeCapacity: n) }
        }
        self.tags = tags
        self.attributes = attributes
        self.depths = depths
        self.ends = ends
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

/// A document's top level as a quick byte scan sees it, without parsing (issue 3's partial reload): where
/// the root's start tag begins and the extent of each child element of the root (from the `<` of its start
/// tag to just past its end tag). Only a guess: on a malformed document it may be wrong, so callers must
/// not trust it beyond what they check with libxml2 (ProfileLoader's partial reload verifies every cut it
/// makes from it). Nil when the scan finds no root, a second root, a DOCTYPE or an unclosed construct.
public struct XMLTopLevel: Sendable {
    public var rootStart: Int
    public var children: [Range<Int>]

    /// A top level as given (tests hand a partial reload a wrong one, to see that its checks catch it).
    public init(rootStart: Int, children: [Range<Int>]) {
        self.rootStart = rootStart
        self.children = children
    }

    /// `known`, when given, is asked at each child start tag of the root (its offset): a length it returns
    /// is taken as that child's extent without scanning it (the caller compares those bytes with an element
    /// it knows; issue 3: a reload steps over 1,000 unchanged profiles with one memcmp each).
    /// `scanned`, when given, is told the extent of each child of the root found by scanning (not by
    /// `known`), as soon as its end is seen.
    public init?(_ bytes: [UInt8], known: ((Int) -> Int?)? = nil, scanned: ((Range<Int>) -> Void)? = nil) {
        var rootStart = -1
        var children: [Range<Int>] = []
        let ok: Bool = bytes.withUnsafeBufferPointer { buf -> Bool in
            guard let base = buf.baseAddress else { return false }
            let n = buf.count
            let lt = UInt8(ascii: "<"), gt = UInt8(ascii: ">"), slash = UInt8(ascii: "/"), bang = UInt8(ascii: "!")
            let question = UInt8(ascii: "?"), dq = UInt8(ascii: "\""), sq = UInt8(ascii: "'")
            /// Index just past the first `terminator` at or after `from`, or nil.
            func find(_ terminator: StaticString, from: Int) -> Int? {
                let t = terminator.utf8Start, tn = terminator.utf8CodeUnitCount
                var k = from
                while k + tn <= n {
                    guard let p = memchr(base + k, Int32(t[0]), n - k) else { return nil }
                    k = UnsafePointer<UInt8>(p.assumingMemoryBound(to: UInt8.self)) - base
                    if k + tn > n { return nil }
                    var same = true
                    for j in 1..<tn where base[k + j] != t[j] { same = false; break }
                    if same { return k + tn }
                    k += 1
                }
                return nil
            }
            /// The first '"', '\'' or '>' at or after `from` (`n` when none): 8 bytes at a time (a start tag's
            /// names and values were walked a byte at a time, issue 3: ~1.5 % of a reload where all 1,000 profiles
            /// changed).
            @inline(__always) func special(from: Int) -> Int {
                var k = from
                let raw = UnsafeRawPointer(base)
                while k + 8 <= n {
                    let w = raw.loadUnaligned(fromByteOffset: k, as: UInt64.self)
                    let m = SourceLocator.zeroBytes(w ^ 0x2222_2222_2222_2222) | SourceLocator.zeroBytes(w ^ 0x2727_2727_2727_2727)
                        | SourceLocator.zeroBytes(w ^ 0x3E3E_3E3E_3E3E_3E3E)
                    if m != 0 { return k + m.trailingZeroBitCount >> 3 }
                    k += 8
                }
                while k < n {
                    let c = base[k]
                    if c == dq || c == sq || c == gt { return k }
                    k += 1
                }
                return n
            }
            var i = 0
            var depth = 0
            var childStart = 0
            while i < n {
                i = SourceLocator.find(lt, in: base, from: i, count: n)
                guard i < n else { break }
                guard i + 1 < n else { return false }
                let next = base[i + 1]
                if next == bang {
                    if i + 4 <= n, base[i + 2] == UInt8(ascii: "-"), base[i + 3] == UInt8(ascii: "-") {
                        guard let e = find("-->", from: i + 4) else { return false }
                        i = e; continue
                    }
                    if i + 9 <= n, base[i + 2] == UInt8(ascii: "["), depth > 0 {
                        guard let e = find("]]>", from: i + 9) else { return false }
                        i = e; continue
                    }
                    return false   // DOCTYPE or something else: not for this scan
                }
                if next == question {
                    guard let e = find("?>", from: i + 2) else { return false }
                    i = e; continue
                }
                if next == slash {
                    guard let e = find(">", from: i + 2), depth > 0 else { return false }
                    depth -= 1
                    if depth == 1 { children.append(childStart..<e); scanned?(childStart..<e) }
                    i = e; continue
                }
                if depth == 1, let known, let length = known(i), length > 0, i + length <= n {
                    children.append(i..<(i + length))
                    i += length
                    continue
                }
                // A start tag: to its '>', stepping over quoted attribute values (which may hold '>').
                var j = i + 1
                while j < n {
                    j = special(from: j)
                    guard j < n, base[j] != gt else { break }
                    // A quote: straight to its closing quote.
                    guard j + 1 < n else { j = n; break }
                    let q = SourceLocator.find(base[j], in: base, from: j + 1, count: n)
                    guard q < n else { j = n; break }
                    j = q + 1
                }
                guard j < n else { return false }
                let empty = base[j - 1] == slash
                let end = j + 1
                if depth == 0 {
                    if rootStart >= 0 { return false }
                    rootStart = i
                }
                if empty {
                    if depth == 1 { children.append(i..<end); scanned?(i..<end) }
                } else {
                    if depth == 1 { childStart = i }
                    depth += 1
                }
                i = end
            }
            return rootStart >= 0 && depth == 0
        }
        guard ok else { return nil }
        self.rootStart = rootStart
        self.children = children
    }
}
