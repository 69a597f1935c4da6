import Foundation
import XCTest
import VSwitchXML
import VSwitchPolicy
@_spi(Differential) @testable import VSwitchProfiles

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

    // MARK: - Partial reloads: only what changed goes through libxml2

    /// A warm load that must take the partial path, checked against a cold load by `loadBoth`.
    @discardableResult
    func loadPartial(_ doc: [UInt8], _ cache: inout ProfileReadCache?, reused: Int,
                     file: StaticString = #filePath, line: UInt = #line) throws -> ProfileSet {
        let set = try loadBoth(doc, &cache, file: file, line: line).get()
        XCTAssertEqual(cache?.path, .partial, "expected a partial load", file: file, line: line)
        XCTAssertEqual(cache?.reused, reused, file: file, line: line)
        if let c = cache {
            XCTAssertLessThan(c.parsedBytes, doc.count, "a partial load gives libxml2 less than the document", file: file, line: line)
        }
        return set
    }

    /// A warm load that must take the full path (libxml2 parses everything).
    @discardableResult
    func loadFull(_ doc: [UInt8], _ cache: inout ProfileReadCache?, file: StaticString = #filePath, line: UInt = #line) throws -> ProfileSet {
        let set = try loadBoth(doc, &cache, file: file, line: line).get()
        XCTAssertEqual(cache?.path, .full, "expected a full load", file: file, line: line)
        XCTAssertEqual(cache?.parsedBytes, doc.count, file: file, line: line)
        return set
    }

    let six = (0..<6).map { $0 }

    func testPartialReloadOneProfileChanged() throws {
        var cache: ProfileReadCache? = nil
        try loadFull(document(six.map { block($0) }), &cache)
        let v2 = document(six.map { block($0, vid: $0 == 3 ? 33 : 10) })
        let set = try loadPartial(v2, &cache, reused: 5)
        XCTAssertEqual(set.profiles.map(\.portVID), [10, 10, 10, 33, 10, 10])
        // Chained: the cache a partial load made serves the next one (back to the first document, then
        // another change elsewhere).
        try loadPartial(document(six.map { block($0) }), &cache, reused: 5)
        try loadPartial(document(six.map { block($0, vid: $0 == 0 || $0 == 5 ? 50 : 10) }), &cache, reused: 4)
        try loadPartial(document(six.map { block($0, vid: $0 == 0 || $0 == 5 ? 50 : 10) }), &cache, reused: 6)
    }

    func testPartialReloadProfileAddedRemovedReordered() throws {
        var cache: ProfileReadCache? = nil
        try loadFull(document(six.map { block($0) }), &cache)
        // Added, in the middle and at the end.
        var set = try loadPartial(document([block(0), block(1), block(7), block(2), block(3), block(4), block(5), block(8)]), &cache, reused: 6)
        XCTAssertEqual(set.profiles.map(\.networkPortProfileID), [0, 1, 7, 2, 3, 4, 5, 8].map { "urn:test:p\($0)" })
        // Removed (nothing to parse but the envelope).
        set = try loadPartial(document([block(0), block(2), block(5)]), &cache, reused: 3)
        XCTAssertEqual(set.profiles.map(\.networkPortProfileID), [0, 2, 5].map { "urn:test:p\($0)" })
        // Reordered.
        set = try loadPartial(document([block(5), block(0), block(2)]), &cache, reused: 3)
        XCTAssertEqual(set.profiles.map(\.networkPortProfileID), [5, 0, 2].map { "urn:test:p\($0)" })
        // All removed: an empty set is a full load (nothing to leave out).
        try loadFull(document([]), &cache)
        XCTAssertEqual(cache?.count, 0)
    }

    func testPartialReloadRootAttributesAndCommentsBetweenProfiles() throws {
        var cache: ProfileReadCache? = nil
        try loadFull(document(six.map { block($0) }), &cache)
        // The root's other attributes change (quotes, order, spaces): the namespace declarations are the
        // same as libxml2 reads them, and the root start tag is parsed anyway.
        let reordered = """
            <vsx:NetworkPortProfiles xmlns:epasd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_EthernetPortAllocationSettingData"
              xmlns:ovf='http://schemas.dmtf.org/ovf/envelope/2'   FormatVersion=' 1.0 ' xmlns:vsx="urn:vswitch:port-profile:1">
            """
        try loadPartial(document(six.map { block($0) }, header: reordered), &cache, reused: 6)
        // Comments, a PI and whitespace between profiles, and after the root.
        let blocks = six.map { block($0) }
        let commented = Array(blocks[0..<2]).joined() + "<!-- a comment <ovf:NetworkPortProfile> -->\n<?note x?>\n"
            + Array(blocks[2...]).joined() + "\n\n  <!-- last -->"
        try loadPartial(document([commented], header: reordered), &cache, reused: 6)
        // A bad root attribute value is the root's own error, found in the reduced document: the full path
        // then gives the cold load's diagnostics.
        let bad = reordered.replacingOccurrences(of: "' 1.0 '", with: "'2.0'")
        guard case .failure(let e) = loadBoth(document(six.map { block($0) }, header: bad), &cache) else { return XCTFail("must be refused") }
        XCTAssertTrue(e.errors.contains { $0.message.contains("FormatVersion '2.0' is not supported") }, "\(e)")
        // Text between profiles: an XSD error (the root has element-only content), exactly as cold.
        guard case .failure = loadBoth(document([blocks[0], "stray text\n", blocks[1]], header: reordered), &cache) else { return XCTFail("must be refused") }
        XCTAssertEqual(cache?.path, .partial, "a refused load leaves the cache")
    }

    func testAChangedProfileWithAnXSDErrorGivesTheColdDiagnostics() throws {
        var cache: ProfileReadCache? = nil
        try loadFull(document(six.map { block($0) }), &cache)
        let before = cache
        // An XSD finding only (a vsx:Acl without its required Weight) in a changed profile.
        let noWeight = block(2).replacingOccurrences(of: " Weight=\"10\"", with: "")
        let doc = document([block(0), block(1), noWeight, block(3), block(4), block(5)])
        guard case .failure(let e) = loadBoth(doc, &cache) else { return XCTFail("must be refused") }
        XCTAssertTrue(e.diagnostics.contains { $0.attribute == "Weight" && $0.line > 20 }, "\(e)")
        XCTAssertTrue(cache === before)
        // A well-formedness error in a changed profile: the cold load's message and position.
        let broken = document([block(0), block(1), block(2).replacingOccurrences(of: "</ovf:Item>", with: "</ovf:Itme>"), block(3)])
        guard case .failure(let w) = loadBoth(broken, &cache) else { return XCTFail("must be refused") }
        XCTAssertTrue((26...37).contains(w.diagnostics.first?.line ?? 0), "the position in the whole document (block 2 is lines 26-36): \(w)")
        XCTAssertTrue(cache === before)
    }

    func testAChangedProfileWithASemanticErrorGivesTheColdDiagnostics() throws {
        var cache: ProfileReadCache? = nil
        try loadFull(document(six.map { block($0) }), &cache)
        let before = cache
        // A semantic error in a changed profile, and a clash of a new profile's ID with an unchanged one.
        let bad = document([block(0), block(1), block(2, extra: "<vsx:TrunkedVLANList>7</vsx:TrunkedVLANList>"), block(3),
                            block(4), block(5), block(6, id: "urn:test:p4")])
        guard case .failure(let e) = loadBoth(bad, &cache) else { return XCTFail("must be refused") }
        XCTAssertTrue(e.errors.contains { $0.profile == "urn:test:p2" && $0.element == "vsx:TrunkedVLANList" }, "\(e)")
        XCTAssertTrue(e.errors.contains { $0.message.contains("NetworkPortProfileID 'urn:test:p4' is already used by profile urn:test:p4 (line ") }, "\(e)")
        XCTAssertTrue(cache === before)
        // A warning in a changed profile: accepted, with the cold load's warning (from the full path).
        let dup = "<epasd:AllowedPriorities>1</epasd:AllowedPriorities><epasd:AllowedPriorities>1</epasd:AllowedPriorities>"
        let warned = try loadFull(document(six.map { block($0, extra: $0 == 4 ? dup : "") }), &cache)
        XCTAssertEqual(warned.warnings.count, 1)
        // A document accepted with a warning does not allow the next load to be partial (its profiles were
        // validated with a finding somewhere); the one after does again.
        try loadFull(document(six.map { block($0) }), &cache)
        try loadPartial(document(six.map { block($0, vid: $0 == 1 ? 11 : 10) }), &cache, reused: 5)
    }

    func testChangesOutsideTheProfilesThatCannotBeProvenTakeTheFullPath() throws {
        var cache: ProfileReadCache? = nil
        let blocks = six.map { block($0) }
        try loadFull(document(blocks), &cache)
        // The prolog (before the root): an XML declaration appears.
        try loadFull(Array("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n".utf8) + document(blocks), &cache)
        try loadPartial(Array("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n".utf8) + document(blocks), &cache, reused: 6)
        // Another encoding declared: the same bytes could mean other characters.
        try loadFull(Array("<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?>\n".utf8) + document(blocks), &cache)
        try loadFull(document(blocks), &cache)
        // The root's namespace declarations: one more.
        let other = header.replacingOccurrences(of: "FormatVersion=\"1.0\"", with: "FormatVersion=\"1.0\" xmlns:x=\"urn:x\"")
        try loadFull(document(blocks, header: other), &cache)
        // …or a prefix bound to another namespace: the same profile bytes are other elements.
        let rebound = header.replacingOccurrences(of: "xmlns:ovf=\"http://schemas.dmtf.org/ovf/envelope/2\"",
                                                  with: "xmlns:ovf=\"http://schemas.dmtf.org/ovf/envelope/1\"")
        // (Accepted, as cold: elements of a foreign namespace are ignored with a warning.)
        let foreign = try loadFull(document(blocks, header: rebound), &cache)
        XCTAssertEqual(foreign.profiles.count, 0)
        XCTAssertEqual(foreign.warnings.count, 6)
        // The placeholder's PI target written in the document itself.
        try loadFull(document(blocks, header: other) + Array("<?\(ProfileLoader.placeholderTarget)?>".utf8), &cache)
        try loadPartial(document(blocks, header: other), &cache, reused: 6)
        // A document with an ID (xml:id): libxml2 keeps IDs across elements, so a document holding one does not
        // allow the next load to be partial (the reader also warns about the attribute, which alone forbids it:
        // XMLLayerTests checks `hasIDs` itself).
        let withID = blocks.enumerated().map { $0 == 2 ? $1.replacingOccurrences(of: "<ovf:NetworkPortProfile>", with: "<ovf:NetworkPortProfile xml:id=\"a\">") : $1 }
        try loadFull(document(withID, header: other), &cache)
        try loadFull(document(withID, header: other), &cache)
        // A duplicate ID, one in an unchanged profile: exactly the cold load's result.
        let twoIDs = withID.enumerated().map { $0 == 4 ? $1.replacingOccurrences(of: "<ovf:NetworkPortProfile>", with: "<ovf:NetworkPortProfile xml:id=\"a\">") : $1 }
        loadBoth(document(twoIDs, header: other), &cache)
    }

    func testANewProfileClashingWithAnUnchangedOneIsRefusedAsCold() throws {
        var cache: ProfileReadCache? = nil
        try loadFull(document(six.map { block($0) }), &cache)
        let before = cache
        // Only the rule across profiles fails: the new profile is fine on its own.
        guard case .failure(let e) = loadBoth(document(six.map { block($0) } + [block(9, id: "urn:test:p1")]), &cache) else {
            return XCTFail("must be refused")
        }
        XCTAssertEqual(e.errors.count, 1, "\(e)")
        XCTAssertTrue(e.errors[0].message.contains("NetworkPortProfileID 'urn:test:p1' is already used by profile urn:test:p1 (line 19)"), "\(e)")
        XCTAssertTrue(cache === before)
        // The same with InstanceIDs.
        let twin = block(9).replacingOccurrences(of: "example.org:p9", with: "example.org:p3")
        guard case .failure(let f) = loadBoth(document(six.map { block($0) } + [twin]), &cache) else { return XCTFail("must be refused") }
        XCTAssertTrue(f.errors.contains { $0.message.contains("InstanceID 'example.org:p3' is already used") }, "\(f)")
    }

    func testAPrologOfTheSameLengthDeclaringAnotherEncodingIsReadInFull() throws {
        // The profiles' bytes are the same, but they mean other characters: é in UTF-8 is "Ã©" in ISO-8859-1.
        var cache: ProfileReadCache? = nil
        let blocks = six.map { block($0).replacingOccurrences(of: "<epasd:ElementName>p", with: "<epasd:ElementName>é") }
        let utf8 = Array("<?xml version=\"1.0\" encoding=\"UTF-8\"?><!--abcde-->\n".utf8)
        let latin1 = Array("<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><!---->\n".utf8)
        XCTAssertEqual(utf8.count, latin1.count)
        let first = try loadFull(utf8 + document(blocks), &cache)
        XCTAssertEqual(first.profiles.first?.elementName, "é0")
        try loadPartial(utf8 + document(blocks), &cache, reused: 6)
        let other = try loadFull(latin1 + document(blocks), &cache)
        XCTAssertEqual(other.profiles.first?.elementName, "Ã©0")
    }

    /// Encodings where ASCII characters have other spellings (UTF-7: "+ADw-" is "<") could hide a comment or a
    /// PI from the byte scans: such documents get no cache, so every load of them is a cold one.
    func testDocumentsInEncodingsThatRespellASCIIAreNeverCached() throws {
        let blocks = six.map { block($0) }
        for (prolog, cached) in [("", true), ("<?xml version=\"1.0\"?>\n", true), ("<?xml version=\"1.0\" encoding=\"utf-8\"?>\n", true),
                                 ("<?xml version='1.0' encoding='ISO-8859-15'?>\n", true), ("<?xml version=\"1.0\" encoding=\"US-ASCII\"?>\n", true),
                                 ("<?xml version=\"1.0\" encoding=\"UTF-7\"?>\n", false),
                                 ("<?xml version=\"1.0\" encoding=\"ISO-2022-JP\"?>\n", false)] {
            var cache: ProfileReadCache? = nil
            let doc = Array(prolog.utf8) + document(blocks)
            XCTAssertEqual(ProfileReadCache.asciiTransparent(doc, prologLength: prolog.utf8.count), cached, prolog)
            _ = try? ProfileLoader.load(data: doc, fileName: "t.xml", cache: &cache)
            if cached { XCTAssertNotNil(cache, prolog) } else { XCTAssertNil(cache, "no cache for \(prolog)") }
        }
        XCTAssertFalse(ProfileReadCache.asciiTransparent([0x4C, 0x6F, 0xA7, 0x94], prologLength: 0), "EBCDIC-looking start")
    }

    func testACutThatIsNotAChildOfTheRootIsNotTaken() throws {
        // The byte scan that plans the cuts is only a guess; here it is given a wrong one on purpose: it
        // says an unchanged profile sitting inside a comment is a child of the root. The placeholder then
        // lands in the comment, libxml2 does not put it in the root's content, and the load goes the full way.
        var cache: ProfileReadCache? = nil
        let blocks = six.map { block($0) }
        try loadFull(document(blocks), &cache)
        let previous = try XCTUnwrap(cache)
        let text = String(decoding: header.utf8, as: UTF8.self) + blocks[0] + "<!--" + blocks[1] + "-->" + blocks[2] + "</vsx:NetworkPortProfiles>\n"
        let doc = Array(text.utf8)
        let honest = try XCTUnwrap(XMLTopLevel(doc))
        XCTAssertEqual(honest.children.count, 2, "the scan itself skips the comment")
        let commented = Array(text.utf8).firstRange(of: Array(blocks[1].utf8))!
        let b1 = commented.lowerBound + 2..<(commented.upperBound - 1)   // "<ovf:…" to "…Profile>"
        XCTAssertEqual(doc[b1].first, UInt8(ascii: "<"))
        let wrong = XMLTopLevel(rootStart: 0, children: [honest.children[0], b1, honest.children[1]])
        let schema = try ProfileSchema.compiled.get()
        XCTAssertNil(ProfileLoader.partialLoad(data: doc, fileName: "t.xml", schema: schema, previous: previous, top: wrong))
        XCTAssertNotNil(ProfileLoader.partialLoad(data: doc, fileName: "t.xml", schema: schema, previous: previous, top: honest))
        let set = try loadPartial(doc, &cache, reused: 2)
        XCTAssertEqual(set.profiles.map(\.networkPortProfileID), ["urn:test:p0", "urn:test:p2"])
    }

    /// Random edits of a document whose profiles are all in the cache, many of them around the places a
    /// partial load cuts: each load through the cache (partial or not) gives exactly a cold load's result.
    func testRandomEditsLoadLikeColdLoads() throws {
        var base: ProfileReadCache? = nil
        let blocks = (0..<5).map { block($0) }
        let doc = document(blocks)
        try loadFull(doc, &base)
        try loadPartial(doc, &base, reused: 5)
        var rng = SplitMix(seed: 3)
        let pieces: [[UInt8]] = ["<", ">", "/", "!--", "-->", "<!--", "<![CDATA[", "]]>", "<?x ", "?>", "\"", "'", "&", "&amp;", " ",
                                 "</ovf:NetworkPortProfile>", "<ovf:NetworkPortProfile>", "</vsx:NetworkPortProfiles>", "xmlns:a='b' ",
                                 "<?\(ProfileLoader.placeholderTarget)?>", "\u{00e9}", "\r", "\n", "<a/>", "xml:id='q' "].map { Array($0.utf8) }
        // Offsets where a profile starts or ends, and where a cut would be.
        let boundaries = Array(String(decoding: doc, as: UTF8.self).utf8.enumerated().filter { $0.element == UInt8(ascii: "<") }.map(\.offset))
        var partial = 0
        for round in 0..<400 {
            var d = doc
            for _ in 0..<(1 + Int(rng.next() % 3)) {
                let near = rng.next() % 2 == 0 ? boundaries[Int(rng.next() % UInt64(boundaries.count))] + Int(rng.next() % 3) - 1
                                               : Int(rng.next() % UInt64(d.count))
                let at = max(0, min(d.count, near))
                switch rng.next() % 3 {
                case 0: d.insert(contentsOf: pieces[Int(rng.next() % UInt64(pieces.count))], at: at)
                case 1: if at < d.count { d.remove(at: at) }
                default: if at < d.count { d[at] = UInt8(truncatingIfNeeded: rng.next() % 128) }
                }
            }
            var c = base
            loadBoth(d, &c)
            if c !== base, c?.path == .partial { partial += 1 }
            // And the cache that load made serves the original document the same as a cold load.
            loadBoth(doc, &c)
            _ = round
        }
        XCTAssertGreaterThan(partial, 10, "some edited documents must have loaded partially")
    }
}

/// A small deterministic generator (SplitMix64).
struct SplitMix {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
