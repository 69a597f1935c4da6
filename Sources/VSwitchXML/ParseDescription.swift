// Everything a parse gives, as text — for comparing the streaming path (StreamingParser.swift) with the
// DOM path it short-cuts: StreamingParserTests and the profile fuzzer's differential check (fuzz/ProfileFuzz.swift)
// both compare `XMLParser.describe` of the two paths' results. SPI "Differential": not part of the API.

@_spi(Differential)
public extension XMLParser {
    /// The tree (names, namespaces, prefixes, attributes and values, text, positions, indices, reuse tokens),
    /// offsets, root namespaces, IDs, placeholders, XSD findings and warnings — or every diagnostic of the error.
    static func describe(_ r: Result<XMLParseResult, XMLError>) -> String {
        switch r {
        case .failure(let error):
            return "error: " + error.diagnostics.map { "\($0) element=\($0.element ?? "-") attribute=\($0.attribute ?? "-")" }.joined(separator: "\n")
        case .success(let p):
            var s = ""
            describe(p.document.root, into: &s)
            s += "start \(p.document.startOffsets)\nend \(p.document.endOffsets)\n"
            s += "namespaces \(p.document.rootNamespaces.map { "\($0.prefix ?? "-")=\($0.uri)" })\n"
            s += "ids \(p.document.hasIDs) placeholders \(p.placeholders) bytes \(p.document.bytes.count)\n"
            for i in p.validationIssues {
                s += "issue \(i.diagnostic) element=\(i.diagnostic.element ?? "-") attribute=\(i.diagnostic.attribute ?? "-") index=\(i.elementIndex.map(String.init) ?? "-")\n"
            }
            for w in p.warnings { s += "warning \(w)\n" }
            return s
        }
    }

    static func describe(_ e: XMLElement, into s: inout String) {
        s += "<\(e.prefix ?? "-"):\(e.name) ns=\(e.namespaceURI ?? "-") at \(e.line):\(e.column) #\(e.index)..\(e.subtreeEnd) reused=\(e.reused.map(String.init) ?? "-")"
        for a in e.attributes {
            s += " [\(a.prefix ?? "-"):\(a.name) ns=\(a.namespaceURI ?? "-") at \(a.line):\(a.column) = \(a.value.debugDescription)]"
        }
        s += " text=\(e.text.debugDescription)\n"
        for c in e.children { describe(c, into: &s) }
        s += "</\(e.name)>\n"
    }

    /// `parse` by the streaming path first (as `parse` does) or by the DOM path only; `describe` of the result,
    /// and whether the streaming path answered.
    static func describeParse(bytes: [UInt8], fileName: String, limits: XMLLimits = XMLLimits(), schema: XMLSchema?,
                              reuse: ((XMLSubtreeCandidate) -> Int?)? = nil, placeholders: XMLPlaceholders? = nil,
                              streaming: Bool) -> (description: String, streamed: Bool) {
        do throws(XMLError) {
            let r = try parse(bytes: bytes, fileName: fileName, limits: limits, schema: schema, reuse: reuse,
                              placeholders: placeholders, streaming: streaming)
            return (describe(.success(r)), r.validatedWhileParsing)
        } catch {
            return (describe(.failure(error)), false)
        }
    }
}
