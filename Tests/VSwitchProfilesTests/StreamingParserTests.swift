import Foundation
import XCTest
@_spi(Differential) @testable import VSwitchXML
@_spi(Differential) @testable import VSwitchProfiles
@_spi(Differential) @testable import VSwitchTopology

/// Validation while parsing (Sources/VSwitchXML/StreamingParser.swift) against the DOM path it short-cuts:
/// for every document of the test corpus and a set of tricky ones, with each schema and without, the two
/// give the same result in full (tree, positions, offsets, namespaces, findings, errors).
final class StreamingParserTests: XCTestCase {
    static func parse(_ bytes: [UInt8], schema: XMLSchema?, streaming: Bool, limits: XMLLimits = XMLLimits(),
                      reuse: ((XMLSubtreeCandidate) -> Int?)? = nil,
                      placeholders: XMLPlaceholders? = nil) -> (String, Bool) {
        XMLParser.describeParse(bytes: bytes, fileName: "t.xml", limits: limits, schema: schema, reuse: reuse,
                                placeholders: placeholders, streaming: streaming)
    }

    /// Compares the two paths; returns whether the streaming path answered.
    @discardableResult
    func check(_ bytes: [UInt8], _ name: String, schema: XMLSchema?, limits: XMLLimits = XMLLimits(),
               reuse: ((XMLSubtreeCandidate) -> Int?)? = nil, placeholders: XMLPlaceholders? = nil,
               file: StaticString = #filePath, line: UInt = #line) -> Bool {
        let (dom, domStreamed) = Self.parse(bytes, schema: schema, streaming: false, limits: limits, reuse: reuse, placeholders: placeholders)
        let (fast, streamed) = Self.parse(bytes, schema: schema, streaming: true, limits: limits, reuse: reuse, placeholders: placeholders)
        XCTAssertFalse(domStreamed, name, file: file, line: line)
        XCTAssertEqual(fast, dom, name, file: file, line: line)
        return streamed
    }

    static var schemas: [(String, XMLSchema?)] {
        var s: [(String, XMLSchema?)] = [("none", nil)]
        if case .success(let p) = ProfileSchema.compiled { s.append(("profiles", p)) }
        if case .success(let t) = TopologySchema.compiled { s.append(("topology", t)) }
        return s
    }

    func testCorpusGivesTheSameResultBothWays() throws {
        let schemas = Self.schemas
        XCTAssertEqual(schemas.count, 3)
        var files: [String] = []
        let roots = [Fixture.directory.path, Fixture.packageRoot.appendingPathComponent("topologies").path]
        for root in roots {
            let e = FileManager.default.enumerator(atPath: root)
            while let f = e?.nextObject() as? String {
                if f.hasSuffix(".xml") { files.append(root + "/" + f) }
            }
        }
        XCTAssertGreaterThan(files.count, 70)
        var streamed = 0
        for f in files.sorted() {
            let bytes = Array(try Data(contentsOf: URL(fileURLWithPath: f)))
            for (name, schema) in schemas where check(bytes, "\(f) with \(name)", schema: schema) { streamed += 1 }
        }
        // The valid documents take the streaming path (with their own schema, and without any).
        XCTAssertGreaterThan(streamed, 20)
        let valid = Array(try Data(contentsOf: URL(fileURLWithPath: Fixture.path("valid-form1.xml"))))
        XCTAssertTrue(check(valid, "valid-form1.xml", schema: schemas[1].1))
    }

    func testTrickyDocuments() {
        let schemas = Self.schemas
        let docs: [(String, String, Bool)] = [
            ("text", "<r xmlns=\"urn:t\">a<!--c-->b<x>y<?pi z?></x>c<![CDATA[d<>]]>&amp;&#65;&#x20AC;\n <y/>\t</r>", true),
            ("attribute reference", "<r a=\"x &amp; y\" b='&#65;'/>", false),
            ("attribute normalisation", "<r a=\"x\ty\nz\" b=\"  w  \"/>", true),
            ("xml:id", "<r><e xml:id=\"i1\"/></r>", false),
            ("xml:lang", "<r xml:lang=\"en\"/>", false),
            ("xsi:type", "<r xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" xmlns:xs=\"http://www.w3.org/2001/XMLSchema\"><e xsi:type=\"xs:ID\">a</e></r>", false),
            ("xsi:nil", "<r xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\"><e xsi:nil=\"true\"/><e xsi:nil='1'></e></r>", true),
            ("namespaces", "<p:r xmlns:p=\"urn:p\" xmlns=\"urn:d\" xmlns:q=\"urn:q\"><e q:a=\"1\" b=\"2\"><f xmlns=\"\"/><p:g xmlns:p=\"urn:p2\"/></e></p:r>", true),
            ("xmlns:xml", "<r xmlns:xml=\"http://www.w3.org/XML/1998/namespace\" xmlns:a=\"urn:a\"/>", true),
            ("undeclared prefix", "<r><p:e/></r>", false),
            ("relative namespace", "<r xmlns=\"rel\"/>", false),
            ("doctype", "<!DOCTYPE r [<!ENTITY e \"x\">]><r>&e;</r>", false),
            ("undefined entity", "<r>&e;</r>", false),
            ("not well-formed", "<r><a></b></r>", false),
            ("latin-1", "<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><r \u{e9}=\"\u{e9}\">\u{e9}</r>", true),
            ("prolog", "<?xml version=\"1.0\"?>\n<!-- c -->\n<?p q?>\n<r/>\n<!-- after -->\n<?p2?>\n", true),
            ("utf-8", "<r é=\"ü\">€𝄞<x\n  a = 'v'\n/></r>", true),
            ("byte order mark", "\u{FEFF}<?xml version=\"1.0\" encoding=\"UTF-8\"?>\r\n<r a=\"x\r\ny\">\r\n t\r\n</r>", true),
            ("character references in text", "<r>&lt;&gt;&apos;&quot;&#10;&#x9;x</r>", true),
        ]
        for (name, text, expectStreamed) in docs {
            var bytes = Array(text.utf8)
            if name == "latin-1" { bytes = bytes.flatMap { $0 == 0xC3 ? [] as [UInt8] : $0 == 0xA9 ? [0xE9] : [$0] } }
            for (schemaName, schema) in schemas {
                let streamed = check(bytes, "\(name) with \(schemaName)", schema: schema)
                if schema == nil { XCTAssertEqual(streamed, expectStreamed, name) }
            }
        }
    }

    /// The locator's positions (found by its scan, which skips text and quoted values with memchr) against
    /// `SourceLocator.position(ofOffset:)`, which walks every byte from the start.
    func testLocatorPositionsMatchAByteWalk() throws {
        var docs: [[UInt8]] = []
        let e = FileManager.default.enumerator(atPath: Fixture.directory.path)
        while let f = e?.nextObject() as? String {
            guard f.hasSuffix(".xml") else { continue }
            docs.append(Array(try Data(contentsOf: Fixture.directory.appendingPathComponent(f))))
        }
        for text in ["<r>\r\n <a b='x\r\ny'\r c=\"é\n€\">t\ré</a>\r\r<é\n  ü='1'/>𝄞<b\tx\n=\n'>'/></r>",
                     "<?xml version=\"1.0\"?>\r\n<!-- <x> -->\n<r><![CDATA[<y a='1'>]]>\n<z/><?p <q>?></r>"] {
            docs.append(Array(text.utf8))
        }
        var checked = 0
        for bytes in docs {
            let locator = SourceLocator(bytes)
            for tag in locator.tags {
                XCTAssertEqual(tag.position, SourceLocator.position(ofOffset: tag.offset, in: bytes))
                for k in tag.attributes {
                    let a = locator.attributes[k]
                    XCTAssertEqual(a.position, SourceLocator.position(ofOffset: a.nameStart, in: bytes))
                    checked += 1
                }
            }
        }
        XCTAssertGreaterThan(checked, 100)
    }

    func testDepthLimitReuseAndPlaceholders() throws {
        let deep = Array(("<r>" + String(repeating: "<a>", count: 10) + String(repeating: "</a>", count: 10) + "</r>").utf8)
        XCTAssertFalse(check(deep, "deep", schema: nil, limits: XMLLimits(maxDepth: 5)))
        XCTAssertTrue(check(deep, "deep enough", schema: nil, limits: XMLLimits(maxDepth: 11)))

        // Reuse: every second child of the root, by its source range.
        let valid = Array(try Data(contentsOf: URL(fileURLWithPath: Fixture.path("valid-form1.xml"))))
        let profiles = Self.schemas[1].1
        var asked = 0
        let reuse: (XMLSubtreeCandidate) -> Int? = { c in
            asked += 1
            return asked % 2 == 0 ? c.source.lowerBound : nil
        }
        XCTAssertTrue(check(valid, "reuse", schema: profiles, reuse: reuse))
        let tree = Self.parse(valid, schema: profiles, streaming: true, reuse: { $0.source.lowerBound }).0
        XCTAssertTrue(tree.contains("reused=") && !tree.contains("reused=-\n</ovf:NetworkPortProfile"), tree)

        // Placeholders: direct children of the root become elements, the others are dropped.
        let ph = XMLPlaceholders(target: "vsw-cut", name: "NetworkPortProfile", namespaceURI: ProfileNamespace.ovf)
        let text = "<r xmlns=\"urn:t\"><?vsw-cut?><a><?vsw-cut?></a> <?vsw-cut x?><!-- <?vsw-cut?> --><b a=\"?vsw-cut?\"/><?vsw-cutx?></r>"
        XCTAssertTrue(check(Array(text.utf8), "placeholders", schema: nil, placeholders: ph))
        XCTAssertTrue(Self.parse(Array(text.utf8), schema: nil, streaming: true, placeholders: ph).0.contains("placeholders 2 "))
    }
}
