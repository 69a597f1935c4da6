import Foundation
import XCTest
import VSwitchXML
import VSwitchPolicy
@testable import VSwitchProfiles

/// ProfileReadCache (issue 3): a reload reads again only the profiles whose text changed, and gives
/// exactly what a cold load gives — the same profiles, the same warnings, the same errors.
final class ProfileReadCacheTests: XCTestCase {
    let header = """
        <vsx:NetworkPortProfiles FormatVersion="1.0" xmlns:vsx="urn:vswitch:port-profile:1"
            xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/2"
            xmlns:epasd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_EthernetPortAllocationSettingData">

        """

    func block(_ n: Int, vid: Int = 10, id: String? = nil, extra: String = "") -> String {
        """
          <ovf:NetworkPortProfile>
            <ovf:Item>
              <epasd:ElementName>p\(n)</epasd:ElementName>
              <epasd:InstanceID>example.org:p\(n)</epasd:InstanceID>
              <epasd:NetworkPortProfileID>\(id ?? "urn:test:p\(n)")</epasd:NetworkPortProfileID>
              <epasd:NetworkPortProfileIDType>2</epasd:NetworkPortProfileIDType>
              <epasd:PortVID>\(vid)</epasd:PortVID>
              <vsx:Acl Name="ssh" Direction="Inbound" Action="Deny" Weight="10" Protocol="TCP" LocalPort="22"/>
              \(extra)
            </ovf:Item>
          </ovf:NetworkPortProfile>

        """
    }

    func document(_ blocks: [String], header h: String? = nil) -> [UInt8] {
        Array(((h ?? header) + blocks.joined() + "</vsx:NetworkPortProfiles>\n").utf8)
    }

    /// Loads with the cache and checks that the result is exactly a cold load's (profiles or diagnostics).
    @discardableResult
    func loadBoth(_ doc: [UInt8], _ cache: inout ProfileReadCache?, file: StaticString = #filePath, line: UInt = #line) -> Result<ProfileSet, ProfileLoadError> {
        let cold: Result<ProfileSet, ProfileLoadError>
        do { cold = .success(try ProfileLoader.load(data: doc, fileName: "t.xml")) } catch { cold = .failure(error as! ProfileLoadError) }
        let warm: Result<ProfileSet, ProfileLoadError>
        do { warm = .success(try ProfileLoader.load(data: doc, fileName: "t.xml", cache: &cache)) } catch { warm = .failure(error as! ProfileLoadError) }
        switch (cold, warm) {
        case (.success(let c), .success(let w)):
            XCTAssertEqual(c.profiles, w.profiles, file: file, line: line)
            XCTAssertEqual(c.warnings, w.warnings, file: file, line: line)
        case (.failure(let c), .failure(let w)):
            XCTAssertEqual(c.diagnostics, w.diagnostics, file: file, line: line)
        default:
            XCTFail("cold and cached loads disagree: \(cold) vs \(warm)", file: file, line: line)
        }
        return warm
    }

    func testUnchangedProfilesAreReusedAndAChangedOneIsReadAgain() throws {
        var cache: ProfileReadCache? = nil
        let v1 = document((0..<4).map { block($0) })
        try loadBoth(v1, &cache).get()
        XCTAssertEqual(cache?.count, 4)
        XCTAssertEqual(cache?.reused, 0)

        // Profile 2 changes: it is read again (its new VLAN is there), the three others are reused.
        let v2 = document((0..<4).map { block($0, vid: $0 == 2 ? 30 : 10) })
        let set = try loadBoth(v2, &cache).get()
        XCTAssertEqual(set.profiles.map(\.portVID), [10, 10, 30, 10])
        XCTAssertEqual(cache?.reused, 3)
        XCTAssertEqual(cache?.count, 4)

        // The same document again: everything reused.
        try loadBoth(v2, &cache).get()
        XCTAssertEqual(cache?.reused, 4)

        // A profile inserted first: the others move (lines, element indices) and are still reused.
        let v3 = document([block(9)] + (0..<4).map { block($0, vid: $0 == 2 ? 30 : 10) })
        let moved = try loadBoth(v3, &cache).get()
        XCTAssertEqual(moved.profiles.map(\.networkPortProfileID), ["urn:test:p9", "urn:test:p0", "urn:test:p1", "urn:test:p2", "urn:test:p3"])
        XCTAssertEqual(cache?.reused, 4)
    }

    func testAChangedNamespaceDeclarationReadsEverythingAgain() throws {
        var cache: ProfileReadCache? = nil
        try loadBoth(document((0..<3).map { block($0) }), &cache).get()
        // Same profile bytes, but the root declares one more (unused) namespace: nothing is reused.
        let other = header.replacingOccurrences(of: "FormatVersion=\"1.0\"", with: "FormatVersion=\"1.0\" xmlns:x=\"urn:x\"")
        try loadBoth(document((0..<3).map { block($0) }, header: other), &cache).get()
        XCTAssertEqual(cache?.reused, 0)
        XCTAssertEqual(cache?.count, 3)
    }

    func testARefusedDocumentGivesTheColdDiagnosticsAndLeavesTheCache() throws {
        var cache: ProfileReadCache? = nil
        try loadBoth(document((0..<3).map { block($0) }), &cache).get()
        let before = cache
        // Profile 1 now has a bad VLAN, and a new profile reuses profile 0's ID: the unchanged profile 0 is
        // part of the clash, and the message must point at its ID element as a cold load does.
        let bad = document([block(0), block(1, vid: 5000), block(2), block(3, id: "urn:test:p0")])
        guard case .failure(let e) = loadBoth(bad, &cache) else { return XCTFail("the document must be refused") }
        XCTAssertTrue(e.errors.contains { $0.message.contains("'5000' is not a VLAN ID") })
        XCTAssertTrue(e.errors.contains { $0.message.contains("NetworkPortProfileID 'urn:test:p0' is already used by profile urn:test:p0 (line ") })
        XCTAssertTrue(cache === before, "a refused load must leave the cache as it was")
        // Then a good reload still reuses what the cache held.
        try loadBoth(document((0..<3).map { block($0) }), &cache).get()
        XCTAssertEqual(cache?.reused, 3)
    }

    func testProfilesWithWarningsAreNotKeptAndWarnAgain() throws {
        var cache: ProfileReadCache? = nil
        let dup = "<epasd:AllowedPriorities>1</epasd:AllowedPriorities><epasd:AllowedPriorities>1</epasd:AllowedPriorities>"
        let doc = document([block(0), block(1, extra: dup)])
        let first = try loadBoth(doc, &cache).get()
        XCTAssertEqual(first.warnings.count, 1)
        XCTAssertEqual(cache?.count, 1, "only the profile read without a diagnostic is kept")
        let again = try loadBoth(doc, &cache).get()
        XCTAssertEqual(again.warnings, first.warnings)
        XCTAssertEqual(cache?.reused, 1)
    }

    func testTheCorpusLoadsTheSameWithAWarmCache() throws {
        // Every corpus document loaded after a valid one (the cache of a different document), and after
        // itself: the same result as a cold load each time.
        var cache: ProfileReadCache? = nil
        try loadBoth(document((0..<3).map { block($0) }), &cache).get()
        for path in GoldenDiagnosticsTests.documents() {
            let bytes = Array(Fixture.text(path).utf8)
            var c = cache
            loadBoth(bytes, &c)
            loadBoth(bytes, &c)
        }
    }
}
