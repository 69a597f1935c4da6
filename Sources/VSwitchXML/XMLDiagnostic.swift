// XMLDiagnostic: one located finding about a configuration document (error or warning).
// Produced by the XML layer (well-formedness, limits, XSD) and by the document readers
// built on it (VSwitchProfiles, VSwitchTopology). Plain value, safe to pass anywhere.

/// A located message about a document: `FILE:LINE:COL: error: [profile P] <Element>@Attribute: message`.
///
/// `line` and `column` are 1-based; 0 means "not known" (for example a file that cannot be read).
public struct XMLDiagnostic: Error, CustomStringConvertible, Sendable, Hashable {
    public enum Severity: String, Sendable, Hashable { case error, warning }

    public var severity: Severity
    public var file: String
    public var line: Int
    public var column: Int
    /// The profile concerned: its NetworkPortProfileID, else its ElementName (nil outside a profile).
    public var profile: String?
    /// The element concerned, with the canonical prefix (`epasd:PortVID`, `vsx:Acl`, `Port`).
    public var element: String?
    /// The attribute concerned, if the finding is about one.
    public var attribute: String?
    public var message: String

    public init(_ severity: Severity = .error, file: String, line: Int, column: Int,
                profile: String? = nil, element: String? = nil, attribute: String? = nil, message: String) {
        self.severity = severity
        self.file = file
        self.line = line
        self.column = column
        self.profile = profile
        self.element = element
        self.attribute = attribute
        self.message = message
    }

    public var isError: Bool { severity == .error }

    public var description: String {
        var s = file
        if line > 0 {
            s += ":\(line)"
            if column > 0 { s += ":\(column)" }
        }
        s += ": \(severity.rawValue): "
        if let profile { s += "[profile \(profile)] " }
        if let element {
            s += "<\(element)>"
            if let attribute { s += "@\(attribute)" }
            s += ": "
        } else if let attribute {
            s += "@\(attribute): "
        }
        s += message
        return s
    }

    /// Orders diagnostics by position in the document (file, line, column), errors first on ties.
    public static func documentOrder(_ a: XMLDiagnostic, _ b: XMLDiagnostic) -> Bool {
        if a.file != b.file { return a.file < b.file }
        if a.line != b.line { return a.line < b.line }
        if a.column != b.column { return a.column < b.column }
        if a.severity != b.severity { return a.severity == .error }
        return a.message < b.message
    }
}

/// A document that could not be read, parsed or validated at the XML level. Carries every finding.
public struct XMLError: Error, CustomStringConvertible, Sendable {
    public var diagnostics: [XMLDiagnostic]
    public init(_ diagnostics: [XMLDiagnostic]) { self.diagnostics = diagnostics }
    public var description: String { diagnostics.map(\.description).joined(separator: "\n") }
}
