// Collecting located diagnostics while reading a document.

import VSwitchXML

/// The three namespaces of a profile document (shared/spec/port-profile.md), exact strings.
public enum ProfileNamespace {
    public static let ovf = "http://schemas.dmtf.org/ovf/envelope/2"
    public static let epasd = "http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_EthernetPortAllocationSettingData"
    public static let vsx = "urn:vswitch:port-profile:1"
    /// URI → the prefix used in diagnostics and by the writer.
    public static let prefixes: [String: String] = [ovf: "ovf", epasd: "epasd", vsx: "vsx"]
}

/// Accumulates diagnostics for one document and remembers which elements they were about
/// (so that XSD findings on the same elements can be dropped as duplicates).
public struct DiagnosticCollector: Sendable {
    public let file: String
    public let prefixes: [String: String]
    public private(set) var diagnostics: [XMLDiagnostic] = []
    /// Document-order indices of elements that have a diagnostic.
    public private(set) var touchedElements: Set<Int> = []

    public init(file: String, prefixes: [String: String]) {
        self.file = file
        self.prefixes = prefixes
    }

    public var hasErrors: Bool { diagnostics.contains(where: \.isError) }

    /// `epasd:PortVID` for known namespaces, the name as written otherwise.
    public func displayName(_ e: XMLElement) -> String {
        if let uri = e.namespaceURI, let p = prefixes[uri] { return p.isEmpty ? e.name : "\(p):\(e.name)" }
        return e.qualifiedName
    }

    public mutating func error(_ e: XMLElement, _ attribute: XMLAttribute? = nil, profile: String?, _ message: String) {
        add(.error, e, attribute, profile: profile, message)
    }

    public mutating func warning(_ e: XMLElement, _ attribute: XMLAttribute? = nil, profile: String?, _ message: String) {
        add(.warning, e, attribute, profile: profile, message)
    }

    /// A diagnostic about attribute `attributeName` of `e` that is missing (positioned at the element).
    public mutating func missingAttribute(_ e: XMLElement, _ attributeName: String, profile: String?, _ message: String) {
        touchedElements.insert(e.index)
        diagnostics.append(XMLDiagnostic(.error, file: file, line: e.line, column: e.column, profile: profile,
                                         element: displayName(e), attribute: attributeName, message: message))
    }

    public mutating func add(_ severity: XMLDiagnostic.Severity, _ e: XMLElement, _ attribute: XMLAttribute? = nil,
                             profile: String?, _ message: String) {
        touchedElements.insert(e.index)
        let line = attribute?.line ?? e.line
        let column = attribute?.column ?? e.column
        diagnostics.append(XMLDiagnostic(severity, file: file, line: line, column: column, profile: profile,
                                         element: displayName(e), attribute: attribute?.qualifiedName, message: message))
    }

    /// Marks `e` as reported on (its XSD findings are then dropped as duplicates).
    public mutating func touch(_ e: XMLElement) { touchedElements.insert(e.index) }

    public mutating func append(_ d: XMLDiagnostic) { diagnostics.append(d) }
    public mutating func append(contentsOf ds: [XMLDiagnostic]) { diagnostics.append(contentsOf: ds) }

    /// Adds XSD findings, except those about elements this collector already reported on
    /// (the reader's message is the more precise one). `profileOf` names the profile of an element index.
    public mutating func merge(validation issues: [XMLValidationIssue], profileOf: (Int) -> String?) {
        for issue in issues {
            var d = issue.diagnostic
            if let i = issue.elementIndex {
                if touchedElements.contains(i) { continue }
                if d.profile == nil { d.profile = profileOf(i) }
            }
            diagnostics.append(d)
        }
    }

    /// Sorted by position, duplicates removed.
    public var sorted: [XMLDiagnostic] {
        var seen = Set<XMLDiagnostic>()
        return diagnostics.filter { seen.insert($0).inserted }.sorted(by: XMLDiagnostic.documentOrder)
    }
}
