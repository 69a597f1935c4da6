// The source locator's scan (and XMLTopLevel's) as it was before issue 3's third round (a line and a column kept up to date at
// every byte), kept as the reference that `FastPathTests.testLocatorScanMatchesTheByteWalk` compares the
// current scan (Sources/VSwitchXML/SourceLocator.swift) with: the same tags, attributes, positions, depths
// and ends on every document.

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
@testable import VSwitchXML

struct ReferenceSourceLocator {
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

        /// `advance()` up to `end` (≤ n), in one loop over the bytes with the position in locals.
        @inline(__always) mutating func advance(to end: Int) {
            var k = i, line = self.line, column = self.column
            while k < end {
                let c = b[k]
                if c == 0x0A {
                    line += 1; column = 1
                } else if c == 0x0D {
                    if k + 1 < n, b[k + 1] == 0x0A { /* the LF ends it */ } else { line += 1; column = 1 }
                } else if c & 0xC0 != 0x80 {
                    column += 1
                }
                k += 1
            }
            i = k; self.line = line; self.column = column
        }

        /// `advance()` over a name: up to XML whitespace, '>' or `stop` (a name holds no line end, so only the
        /// column moves).
        @inline(__always) mutating func advanceName(stoppingAt stop: UInt8) {
            var k = i, column = self.column
            while k < n {
                let c = b[k]
                if c == 0x20 || c == 0x09 || c == 0x0A || c == 0x0D || c == UInt8(ascii: ">") || c == stop { break }
                if c & 0xC0 != 0x80 { column += 1 }
                k += 1
            }
            i = k; self.column = column
        }

        /// Offset of the next `byte` at or after `i` (memchr), `n` when there is none.
        @inline(__always) func next(_ byte: UInt8) -> Int {
            guard i < n, let base = b.baseAddress, let p = memchr(base + i, Int32(byte), n - i) else { return n }
            return UnsafePointer<UInt8>(p.assumingMemoryBound(to: UInt8.self)) - base
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
        var ends: [Int32] = []
        var open: [Int32] = []   // indices of the start tags not closed yet
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
            ends.reserveCapacity(lts)
            attributes.reserveCapacity(eqs)
            var s = Scanner(buffer)
            let b = buffer, n = s.n
            let lt = UInt8(ascii: "<"), gt = UInt8(ascii: ">"), slash = UInt8(ascii: "/"), bang = UInt8(ascii: "!")
            let eq = UInt8(ascii: "="), dq = UInt8(ascii: "\""), sq = UInt8(ascii: "'")
            while s.i < n {
                // Text: only line and column matter until the next '<' (found with memchr).
                guard b[s.i] == lt else { s.advance(to: s.next(lt)); continue }
                if s.starts("<!--") { s.skip(until: "-->"); continue }
                if s.starts("<![CDATA[") { s.skip(until: "]]>"); continue }
                if s.starts("<?") { s.skip(until: "?>"); continue }
                if s.i + 1 < n, b[s.i + 1] == slash || b[s.i + 1] == bang {
                    // End tag or a declaration (DOCTYPE is refused before we get here): skip to '>'.
                    let isEnd = b[s.i + 1] == slash
                    if isEnd { depth -= 1 }
                    s.advance(to: s.next(gt))   // skip(until: ">"), the '>' found with memchr
                    if s.i < n { s.advance() }
                    if isEnd, let k = open.popLast() { ends[Int(k)] = Int32(truncatingIfNeeded: s.i) }
                    continue
                }
                // A start tag.
                depth += 1
                var tag = StartTagLocation(position: SourcePosition(line: s.line, column: s.column), offset: s.i,
                                           attributes: attributes.count..<attributes.count)
                depths.append(depth)
                ends.append(-1)
                let me = Int32(truncatingIfNeeded: tags.count)
                open.append(me)
                s.advance()  // '<'
                s.advanceName(stoppingAt: slash)
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
                        _ = open.popLast()
                        ends[Int(me)] = Int32(truncatingIfNeeded: s.i)
                        break
                    }
                    let pos = SourcePosition(line: s.line, column: s.column)
                    let start = s.i
                    s.advanceName(stoppingAt: eq)
                    let nameEnd = s.i
                    while s.i < n, Scanner.isSpace(b[s.i]) { s.advance() }
                    if s.i < n, b[s.i] == eq { s.advance() }
                    while s.i < n, Scanner.isSpace(b[s.i]) { s.advance() }
                    if s.i < n, b[s.i] == dq || b[s.i] == sq {
                        let quote = b[s.i]
                        s.advance()
                        s.advance(to: s.next(quote))
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
        self.ends = ends
    }
}

/// `XMLTopLevel` as it was before issue 3's third round (a start tag walked a byte at a time), the reference
/// `FastPathTests.testTopLevelScanMatchesTheByteWalk` compares the current scan with.
struct ReferenceXMLTopLevel {
    var rootStart: Int
    var children: [Range<Int>]

    /// A top level as given (tests hand a partial reload a wrong one, to see that its checks catch it).
    init(rootStart: Int, children: [Range<Int>]) {
        self.rootStart = rootStart
        self.children = children
    }

    /// `known`, when given, is asked at each child start tag of the root (its offset): a length it returns
    /// is taken as that child's extent without scanning it (the caller compares those bytes with an element
    /// it knows; issue 3: a reload steps over 1,000 unchanged profiles with one memcmp each).
    /// `scanned`, when given, is told the extent of each child of the root found by scanning (not by
    /// `known`), as soon as its end is seen.
    init?(_ bytes: [UInt8], known: ((Int) -> Int?)? = nil, scanned: ((Range<Int>) -> Void)? = nil) {
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
            var i = 0
            var depth = 0
            var childStart = 0
            while i < n {
                guard let p = memchr(base + i, Int32(lt), n - i) else { break }
                i = UnsafePointer<UInt8>(p.assumingMemoryBound(to: UInt8.self)) - base
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
                var quote: UInt8 = 0
                while j < n {
                    if quote != 0 {
                        // Inside a quoted value: straight to its closing quote.
                        guard let q = memchr(base + j, Int32(quote), n - j) else { j = n; break }
                        j = UnsafePointer<UInt8>(q.assumingMemoryBound(to: UInt8.self)) - base + 1
                        quote = 0
                        continue
                    }
                    let c = base[j]
                    if c == dq || c == sq { quote = c } else if c == gt { break }
                    j += 1
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
