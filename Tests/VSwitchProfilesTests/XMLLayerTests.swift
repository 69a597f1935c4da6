import XCTest
import VSwitchXML
@_spi(Differential) @testable import VSwitchProfiles
@_spi(Differential) @testable import VSwitchTopology

final class XMLLayerTests: XCTestCase {
    func testElementAndAttributePositions() throws {
        let doc = "<?xml version=\"1.0\"?>\n<!-- <x a='1'> in a comment -->\n<r xmlns=\"urn:t\">\n  <é a=\"1\"\n     bé='x>y'/><![CDATA[<c>]]>\n\t<c>text &amp; more</c>\n</r>\n"
        let result = try XMLParser.parse(bytes: Array(doc.utf8), fileName: "pos.xml")
        let root = result.document.root
        XCTAssertEqual(root.name, "r")
        XCTAssertEqual(root.namespaceURI, "urn:t")
        XCTAssertEqual([root.line, root.column], [3, 1])
        let e = root.children[0]
        XCTAssertEqual(e.name, "é")
        XCTAssertEqual([e.line, e.column], [4, 3])
        XCTAssertEqual(e.attributes.map(\.name), ["a", "bé"])
        XCTAssertEqual([e.attributes[1].line, e.attributes[1].column], [5, 6])
        XCTAssertEqual(e.attributes[1].value, "x>y")
        let c = root.children[1]
        XCTAssertEqual([c.line, c.column], [6, 2])
        XCTAssertEqual(c.text, "text & more")
        XCTAssertTrue(root.text.contains("<c>"), "CDATA content is text")
        XCTAssertEqual(result.document.elementCount, 3)
        XCTAssertEqual([c.index, c.subtreeEnd], [2, 3])
    }

    /// Issue 3's partial reload relies on these: exact element extents, the root's namespace declarations,
    /// whether libxml2 registered IDs, root-level placeholder PIs, and the top-level byte scan.
    func testElementExtentsNamespacesIDsAndPlaceholders() throws {
        let doc = "<?xml version=\"1.0\"?>\n<r xmlns=\"urn:t\" xmlns:p='urn:p'>\n  <a x='>'><b/><!-- </a> --></a>\n  <?ph?>\n  <p:c/><q><?ph?></q>\n</r>\n"
        let bytes = Array(doc.utf8)
        let result = try XMLParser.parse(bytes: bytes, fileName: "e.xml",
                                         placeholders: XMLPlaceholders(target: "ph", name: "stand-in", namespaceURI: "urn:s"))
        let d = result.document
        func text(_ e: XMLElement) -> String { String(decoding: bytes[d.elementRange(of: e)!], as: UTF8.self) }
        let root = d.root
        XCTAssertEqual(text(root.children[0]), "<a x='>'><b/><!-- </a> --></a>")
        XCTAssertEqual(text(root.children[0].children[0]), "<b/>")
        XCTAssertEqual(root.children.map(\.name), ["a", "stand-in", "c", "q"], "only the root-level PI stands for an element")
        XCTAssertEqual(result.placeholders, 1)
        XCTAssertEqual(root.children[1].reused, 0)
        XCTAssertEqual(root.children[1].namespaceURI, "urn:s")
        XCTAssertEqual(text(root.children[2]), "<p:c/>")
        XCTAssertEqual(text(root.children[3]), "<q><?ph?></q>")
        XCTAssertEqual(root.children[3].children.count, 0)
        XCTAssertEqual(d.rootNamespaces.sorted(), [XMLNamespaceDeclaration(prefix: nil, uri: "urn:t"), XMLNamespaceDeclaration(prefix: "p", uri: "urn:p")])
        XCTAssertFalse(d.hasIDs)
        let ided = try XMLParser.parse(bytes: Array("<r><a xml:id='k'/></r>".utf8), fileName: "i.xml")
        XCTAssertTrue(ided.document.hasIDs, "libxml2 keeps xml:id values in the document's ID table")
        // The top-level scan finds the same extents.
        let top = try XCTUnwrap(XMLTopLevel(bytes))
        XCTAssertEqual(String(decoding: bytes[top.rootStart...].prefix(2), as: UTF8.self), "<r")
        XCTAssertEqual(top.children.map { String(decoding: bytes[$0], as: UTF8.self) },
                       ["<a x='>'><b/><!-- </a> --></a>", "<p:c/>", "<q><?ph?></q>"])
        XCTAssertNil(XMLTopLevel(Array("<r><a></r>".utf8)), "unbalanced")
        XCTAssertNil(XMLTopLevel(Array("<!DOCTYPE r><r/>".utf8)))
        XCTAssertNil(XMLTopLevel(Array("<r/><s/>".utf8)), "two roots")
    }

    func testMalformedXMLHasLineAndColumn() {
        XCTAssertThrowsError(try XMLParser.parse(bytes: Array("<a>\n  <b></a>".utf8), fileName: "m.xml")) { error in
            let d = (error as? XMLError)?.diagnostics.first
            XCTAssertEqual(d?.file, "m.xml")
            XCTAssertEqual(d?.line, 2)
            XCTAssertGreaterThan(d?.column ?? 0, 1)
            XCTAssertTrue(d?.message.contains("mismatch") ?? false)
        }
    }

    func testXSDValidationIsActiveAndLocated() throws {
        // The reader would also catch these; here we look at the raw XSD findings of form 1.
        let doc = """
        <vsx:NetworkPortProfiles FormatVersion="1.0" xmlns:vsx="urn:vswitch:port-profile:1"
            xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/2"
            xmlns:epasd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_EthernetPortAllocationSettingData">
          <ovf:NetworkPortProfile><ovf:Item>
            <epasd:PortVID>5000</epasd:PortVID>
            <vsx:TrunkedVLANRange First="3" Last="x"/>
          </ovf:Item></ovf:NetworkPortProfile>
        </vsx:NetworkPortProfiles>
        """
        let schema = try ProfileSchema.compiled.get()
        let r = try XMLParser.parse(bytes: Array(doc.utf8), fileName: "x.xml", schema: schema)
        let issues = r.validationIssues.map(\.diagnostic)
        XCTAssertEqual(issues.count, 2, "\(issues)")
        XCTAssertEqual(issues.first?.line, 5)
        XCTAssertEqual(issues.first?.column, 5)
        XCTAssertEqual(issues.first?.element, "epasd:PortVID")
        XCTAssertTrue(issues.first?.message.contains("4094") ?? false, "\(issues)")
        XCTAssertEqual(issues.last?.line, 6)
        XCTAssertEqual(issues.last?.attribute, "Last")
        XCTAssertEqual(issues.last?.column, 37, "the attribute, not its element")
    }

    /// Everything the writer produces and every shipped example conforms to the shipped XSDs.
    func testValidDocumentsConformToTheXSDs() throws {
        let profileSchema = try ProfileSchema.compiled.get()
        let topologySchema = try TopologySchema.compiled.get()
        let root = Fixture.packageRoot.appendingPathComponent("topologies")
        let exported = ProfileWriter.write(try ProfileLoader.load(path: Fixture.path("valid-form1.xml")).profiles)
        var documents: [(String, [UInt8], XMLSchema)] = [("export", Array(exported.utf8), profileSchema)]
        for f in ["valid-form1.xml", "warn/merged.xml"] {
            documents.append((f, Array(Fixture.text(Fixture.path(f)).utf8), profileSchema))
        }
        documents.append(("tenants.xml", Array(Fixture.text(root.appendingPathComponent("profiles/tenants.xml").path).utf8), profileSchema))
        for f in ["default.xml", "flood.xml"] {
            documents.append((f, Array(Fixture.text(root.appendingPathComponent(f).path).utf8), topologySchema))
        }
        documents.append(("valid.xml", Array(Fixture.text(Fixture.path("topology/valid.xml")).utf8), topologySchema))
        for (name, bytes, schema) in documents {
            let r = try XMLParser.parse(bytes: bytes, fileName: name, schema: schema)
            XCTAssertEqual(r.validationIssues.map(\.diagnostic), [], name)
        }
    }

    func testSchemaFilesAreTheEmbeddedCopies() throws {
        let dir = Fixture.packageRoot.appendingPathComponent("Sources/VSwitchProfiles/Schema")
        for (name, embedded) in ProfileSchema.documents {
            let file = try String(contentsOf: dir.appendingPathComponent(name), encoding: .utf8)
            XCTAssertEqual(file, embedded, "Sources/VSwitchProfiles/Schema/\(name) and EmbeddedSchemas.swift differ: paste the file into the Swift constant")
        }
        let topology = try String(contentsOf: dir.appendingPathComponent("topology.xsd"), encoding: .utf8)
        XCTAssertEqual(topology, EmbeddedTopologySchema.topology,
                       "Schema/topology.xsd and VSwitchTopology/EmbeddedTopologySchema.swift differ")
        // The bundled resource is the same folder.
        let bundled = Bundle.module.url(forResource: "Fixtures", withExtension: nil)
        XCTAssertNotNil(bundled, "test resources are bundled")
    }

    func testSchemasCompile() throws {
        XCTAssertNoThrow(try ProfileSchema.compiled.get())
        XCTAssertNoThrow(try TopologySchema.compiled.get())
    }
}
