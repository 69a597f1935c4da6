// The element tree handed out by `XMLParser`: plain Swift values copied out of libxml2's
// DOM, so no C pointer outlives the parse. Only elements, attributes and their text are
// kept (comments and processing instructions are dropped).

public let xsiNamespace = "http://www.w3.org/2001/XMLSchema-instance"

/// An attribute as written, with its position (1-based line and column of its name).
/// Immutable, as `XMLElement` is: with `var` properties and this init, the compiler built each attribute
/// twice and copied one (a retain and a release per string, ~2 % of a 1,000-profile reload, issue 3).
public struct XMLAttribute: Sendable, Hashable {
    public let name: String
    public let namespaceURI: String?
    public let prefix: String?
    public let value: String
    public let line: Int
    public let column: Int

    public init(name: String, namespaceURI: String? = nil, prefix: String? = nil, value: String, line: Int = 0, column: Int = 0) {
        self.name = name; self.namespaceURI = namespaceURI; self.prefix = prefix; self.value = value
        self.line = line; self.column = column
    }

    /// `prefix:name` as written.
    public var qualifiedName: String { prefix.map { "\($0):\(name)" } ?? name }
}

/// An element: its name, namespace, attributes, direct text and child elements.
/// Immutable, and a class: readers pass elements around and keep them in arrays and tuples, and a
/// reference costs one retain where a struct of six reference-counted fields cost six (a third of
/// a 1,000-profile document's read went to retain/release, issue 3).
public final class XMLElement: Sendable {
    /// Local name (without prefix).
    public let name: String
    public let namespaceURI: String?
    public let prefix: String?
    public let attributes: [XMLAttribute]
    public let children: [XMLElement]
    /// The concatenated text and CDATA directly inside this element (not inside its children), untrimmed.
    public let text: String
    /// 1-based line and column of the `<` that opens the element.
    public let line: Int
    public let column: Int
    /// Position in document order (the root is 0); `subtreeEnd` is one past the last descendant.
    public let index: Int
    public let subtreeEnd: Int
    /// Set when the parser's `reuse` hook chose not to build this subtree (the hook's token): the element
    /// then has no attributes, text or children here, although the document has them.
    public let reused: Int?

    public init(name: String, namespaceURI: String? = nil, prefix: String? = nil, attributes: [XMLAttribute] = [],
                children: [XMLElement] = [], text: String = "", line: Int = 0, column: Int = 0,
                index: Int = 0, subtreeEnd: Int = 1, reused: Int? = nil) {
        self.name = name; self.namespaceURI = namespaceURI; self.prefix = prefix; self.attributes = attributes
        self.children = children; self.text = text; self.line = line; self.column = column
        self.index = index; self.subtreeEnd = subtreeEnd; self.reused = reused
    }

    /// `prefix:name` as written.
    public var qualifiedName: String { prefix.map { "\($0):\(name)" } ?? name }

    /// The text with leading and trailing XML whitespace removed.
    public var trimmedText: String { XMLElement.trim(text) }

    /// The attribute `name` in no namespace (the usual case for unprefixed attributes).
    /// (Index loops comparing fields in place: `first(where:)` copied each attribute, four strings, issue 3.)
    public func attribute(_ name: String) -> XMLAttribute? {
        for i in attributes.indices where attributes[i].namespaceURI == nil && attributes[i].name == name {
            return attributes[i]
        }
        return nil
    }

    /// The attribute `name` in namespace `namespaceURI`.
    public func attribute(_ name: String, namespace namespaceURI: String) -> XMLAttribute? {
        if attributes.isEmpty { return nil }
        // (The namespace first: most attributes have none, and nil against a URI is decided at once.)
        for i in attributes.indices where attributes[i].namespaceURI == namespaceURI && attributes[i].name == name {
            return attributes[i]
        }
        return nil
    }

    /// `xsi:nil="true"` (or `1`) is present: the WS-CIM encoding of NULL.
    public var isNil: Bool {
        // (As `attribute("nil", namespace: xsiNamespace)`, the first such attribute, read in place: asked of
        // every property element of a profile, most with no namespaced attribute at all, issue 3.)
        for i in attributes.indices where attributes[i].namespaceURI != nil {
            if attributes[i].namespaceURI == xsiNamespace && attributes[i].name == "nil" {
                let v = XMLElement.trim(attributes[i].value)
                return v == "true" || v == "1"
            }
        }
        return false
    }

    /// Whether the element has non-whitespace text directly inside it (`trimmedText` is not empty; the
    /// bytes looked at in place, no string made).
    public var hasText: Bool {
        for c in text.utf8 where !(c == 0x20 || c == 0x09 || c == 0x0A || c == 0x0D) { return true }
        return false
    }

    /// Removes leading and trailing XML whitespace (space, tab, CR, LF). Scans UTF-8 bytes (XML
    /// whitespace is ASCII), not Characters: no grapheme breaking per call.
    public static func trim(_ s: String) -> String {
        let u = s.utf8
        let ws: (UInt8) -> Bool = { $0 == 0x20 || $0 == 0x09 || $0 == 0x0A || $0 == 0x0D }
        // The usual case first: nothing to remove (two bytes looked at, in place: `u.last` was a call to the
        // generic `BidirectionalCollection.last`, ~0.4 % of a 1,000-profile reload, issue 3).
        if let ends = u.withContiguousStorageIfAvailable({ b -> (UInt8, UInt8)? in b.isEmpty ? nil : (b[0], b[b.count - 1]) }),
           let e = ends, !ws(e.0), !ws(e.1) { return s }
        guard let first = u.firstIndex(where: { !ws($0) }) else { return "" }
        if first == u.startIndex, let l = u.last, !ws(l) { return s }
        let last = u.lastIndex(where: { !ws($0) })!
        return String(s[first...last])
    }
}

/// A parsed document.
public struct XMLDocument: Sendable {
    /// The file name used in diagnostics.
    public var fileName: String
    public var root: XMLElement
    /// The document as parsed.
    public var bytes: [UInt8]
    /// Byte offset of each element's start tag (its `<`), by element index; empty when the start tags
    /// could not be matched to the elements (positions then come from libxml2's line numbers).
    public var startOffsets: [Int]
    /// Byte offset just past each element (after its end tag, or its `/>`), by element index; empty when
    /// `startOffsets` is. With `startOffsets` the element's exact extent.
    public var endOffsets: [Int]
    /// The namespace declarations written on the root's start tag (libxml2's reading of them).
    public var rootNamespaces: [XMLNamespaceDeclaration]
    /// Whether libxml2 registered any ID or IDREF in the document (an `xml:id` attribute, or an attribute
    /// of XSD type ID/IDREF): the only things whose validity depends on more than one element's subtree.
    public var hasIDs: Bool
    /// Number of elements in the document.
    public var elementCount: Int { root.subtreeEnd }

    public init(fileName: String, root: XMLElement, bytes: [UInt8] = [], startOffsets: [Int] = [], endOffsets: [Int] = [],
                rootNamespaces: [XMLNamespaceDeclaration] = [], hasIDs: Bool = false) {
        self.fileName = fileName; self.root = root; self.bytes = bytes; self.startOffsets = startOffsets
        self.endOffsets = endOffsets; self.rootNamespaces = rootNamespaces; self.hasIDs = hasIDs
    }

    /// The exact bytes of element `e`: from the `<` of its start tag to just past its end tag. Nil when
    /// offsets are unknown.
    public func elementRange(of e: XMLElement) -> Range<Int>? {
        guard startOffsets.count == elementCount, endOffsets.count == elementCount, e.index < startOffsets.count,
              endOffsets[e.index] > startOffsets[e.index] else { return nil }
        return startOffsets[e.index]..<endOffsets[e.index]
    }

    /// The bytes from the start tag of `e` up to the start tag of the next element after its subtree (or
    /// the end of the document): the element's whole text, its end tag and whatever follows up to the next
    /// start tag. Equal bytes here (in documents whose root start tags are equal too, for the namespace
    /// declarations) mean an equal subtree. Nil when start offsets are unknown.
    public func sourceRange(of e: XMLElement) -> Range<Int>? {
        guard startOffsets.count == elementCount, e.index < startOffsets.count else { return nil }
        let end = e.subtreeEnd < startOffsets.count ? startOffsets[e.subtreeEnd] : bytes.count
        return startOffsets[e.index]..<end
    }
}

/// A namespace declaration (`xmlns:prefix="uri"`, or `xmlns="uri"` with no prefix).
public struct XMLNamespaceDeclaration: Sendable, Hashable, Comparable {
    public var prefix: String?
    public var uri: String
    public init(prefix: String?, uri: String) { self.prefix = prefix; self.uri = uri }
    public static func < (a: Self, b: Self) -> Bool {
        (a.prefix ?? "", a.uri) < (b.prefix ?? "", b.uri)
    }
}
