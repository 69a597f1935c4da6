import Foundation
import XCTest
import VSwitchPolicy
@testable import VSwitchXML
@testable import VSwitchProfiles
#if canImport(Glibc)
import Glibc
#endif

/// The byte-level fast paths added for issue 3 (reload speed) against the code they short-cut, kept
/// here as reference implementations: same answer for every input, tricky ones included.
final class FastPathTests: XCTestCase {
    // MARK: reference implementations (the code before issue 3's fast paths)

    static func refURIProblem(_ s: String) -> String? {
        guard let colon = s.firstIndex(of: ":") else { return "it has no scheme (expected scheme:rest, e.g. urn:example:profile:web)" }
        let scheme = s[..<colon]
        guard let first = scheme.first, first.isASCII, first.isLetter,
              scheme.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "+" || $0 == "-" || $0 == ".") }) else {
            return "its scheme '\(scheme)' is not a letter followed by letters, digits, '+', '-' or '.'"
        }
        let rest = s[s.index(after: colon)...]
        guard !rest.isEmpty else { return "nothing follows the scheme '\(scheme):'" }
        let allowed = Set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~:/?#[]@!$&'()*+,;=%")
        let chars = Array(rest)
        var i = 0
        while i < chars.count {
            let c = chars[i]
            if !allowed.contains(c) { return "it contains '\(c)', which is not allowed in a URI (percent-encode it)" }
            if c == "%" {
                guard i + 2 < chars.count, chars[i + 1].isASCII && chars[i + 1].isHexDigit, chars[i + 2].isASCII && chars[i + 2].isHexDigit else {
                    return "'%' is not followed by two hexadecimal digits"
                }
                i += 2
            }
            i += 1
        }
        return nil
    }

    static func refPortRange(_ s: String) -> ClosedRange<UInt16>? {
        let parts = s.split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count == 1 || parts.count == 2 else { return nil }
        var values: [UInt16] = []
        for p in parts {
            guard let v = ValueSyntax.unsigned(String(p)), v <= 65535 else { return nil }
            values.append(UInt16(v))
        }
        guard values.first! <= values.last! else { return nil }
        return values.first!...values.last!
    }

    static func refIPPrefix(_ text: String) -> (IPPrefix.Family, [UInt8], Int?)? {
        let parts = text.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
        let address = String(parts[0])
        let family: IPPrefix.Family, bytes: [UInt8]
        if address.contains(":") {
            var a = in6_addr()
            guard inet_pton(AF_INET6, address, &a) == 1 else { return nil }
            family = .ipv6; bytes = withUnsafeBytes(of: &a) { Array($0) }
        } else {
            var a = in_addr()
            guard inet_pton(AF_INET, address, &a) == 1 else { return nil }
            family = .ipv4; bytes = withUnsafeBytes(of: &a) { Array($0) }
        }
        var length: Int? = nil
        if parts.count == 2 {
            let p = parts[1]
            guard !p.isEmpty, p.count <= 3, p.allSatisfy({ $0.isASCII && $0.isNumber }), let n = Int(p),
                  n <= (family == .ipv4 ? 32 : 128) else { return nil }
            length = n
        }
        return (family, bytes, length)
    }

    // MARK: inputs

    let uris = ["urn:a:b", "urn:", ":x", "1urn:x", "ur n:x", "urn:x y", "urn:%4", "urn:%4g", "urn:%41", "urn:%", "urn:é",
                "urné:x", "", "a:b%", "http://x/y?z#w", "u+r.n-1:x", "urn:vswitch:profile:tenant-a", "x:\u{301}", "a:b<c",
                "URN:A", "u:\t", "u:[]@!$&'()*+,;=~", "u:%AF%af"]
    let ports = ["22", "0", "65535", "65536", "1-2", "2-1", "-1", "1-", "1--2", "", "a", "00022", "000000000000000000022",
                 "99999999999999999999", "999999999999999999999999", "1 - 2", "１", "5000-5100", "0-65535", "7-7", "-", "1-2-3"]
    let anys = ["ANY", "any", "AnY", "ANY ", "AN", "ANYx", "ａｎｙ", "İNY", "an\u{0079}", "", "10.0.0.0/8"]
    let protocols = ["TCP", "tcp", "Tcp", "udp", "ICMP", "icmpv6", "ICMPV6", "icmpv7", "6", "tcp ", "ｔｃｐ", "K", "", "ıcmp", "İCMP"]
    let addresses = ["10.0.0.0/8", "10.0.0.1", "10.0.0.0/33", "10.0.0.0/32", "10.0.0.0/", "10.0.0.0/08", "10.0.0.0/1/2",
                     "fe80::1", "2001:db8::/32", "2001:db8::/129", "2001:db8::/128", "::", "1.2.3", "01.2.3.4", "10.0.0.0/a",
                     "", "/8", "é", "10.0.0.0/８", "192.168.1.0/24", String(repeating: "1", count: 70), "::ffff:10.0.0.1/100",
                     "10.0.0.0/0", "10.0.0.0/0000", "1.2.3.4 ", " 1.2.3.4", "1:2:3:4:5:6:7:8:9"]

    func testURIProblem() {
        for u in uris { XCTAssertEqual(ValueSyntax.uriProblem(u), Self.refURIProblem(u), u) }
    }

    func testPortRange() {
        for p in ports { XCTAssertEqual(ValueSyntax.portRange(p), Self.refPortRange(p), p) }
    }

    func testAnyAndProtocolNames() {
        for a in anys { XCTAssertEqual(ValueSyntax.isAny(a), a.uppercased() == "ANY", a) }
        for p in protocols {
            XCTAssertEqual(ACLReader.protocolNumber(p), ACLReader.protocolNumbers.first(where: { $0.key.lowercased() == p.lowercased() })?.value, p)
        }
    }

    func testUnsigned() {
        let texts = ["", "0", "00", "7", "4094", "4095", "65535", "18446744073709551615", "18446744073709551616",
                     "000000000000000000000000018446744073709551615", "99999999999999999999", "+1", "-1", " 1", "1 ",
                     "0x10", "١٢", "１２", "12a", "1_000"]
        for t in texts {
            let want: UInt64? = !t.isEmpty && t.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }) ? UInt64(t) : nil
            XCTAssertEqual(ValueSyntax.unsigned(t), want, t)
        }
    }

    func testPrefixContains() {
        let texts = ["10.0.0.0/8", "10.0.0.0/9", "10.128.0.0/9", "10.1.2.3", "10.1.2.3/32", "10.1.2.0/24", "0.0.0.0/0",
                     "10.0.0.1/8", "192.168.1.0/24", "192.168.1.128/25", "192.168.1.0/23", "::/0", "2001:db8::/32",
                     "2001:db8::1", "2001:db8::/33", "2001:db8:8000::/33", "2001:db8::1/128", "::ffff:10.0.0.1/100"]
        let prefixes = texts.compactMap(IPPrefix.init)
        XCTAssertEqual(prefixes.count, texts.count)
        // ACLReader's IPKey gives the same answers as IPPrefix.
        for a in prefixes {
            XCTAssertEqual(IPKey(a).hasHostBits, a.hasHostBits, "\(a)")
            for b in prefixes { XCTAssertEqual(IPKey(a).contains(IPKey(b)), a.contains(b), "\(a) contains \(b)") }
        }
        for a in prefixes {
            for b in prefixes {
                var want = false
                if a.family == b.family, b.effectivePrefixLength >= a.effectivePrefixLength {
                    var o = b
                    o.prefixLength = a.effectivePrefixLength
                    want = o.masked == a.masked
                }
                XCTAssertEqual(a.contains(b), want, "\(a) contains \(b)")
            }
        }
    }

    func testKeyMapAgainstDictionary() {
        let keys = Array(ItemReader.epasdKinds.values.map(\.key)) + ItemReader.vsxKinds.values.map(\.key)
            + ["", "x", "epasd:", "vsx:", "epasd:PortVIDs", "é", "epasd:Pört"] + (0..<200).map { "k\($0)" }
        var map = KeyMap<Int>(), reference: [String: Int] = [:]
        var rng = SystemRandomNumberGenerator()
        for step in 0..<5000 {
            let key = keys.randomElement(using: &rng)!
            switch Int.random(in: 0..<10, using: &rng) {
            case 0: map[key] = nil; reference[key] = nil
            case 1...4: map[key] = step; reference[key] = step
            case 5: map[key, default: 0] += 1; reference[key, default: 0] += 1
            default: XCTAssertEqual(map[key], reference[key], key)
            }
        }
        for key in keys { XCTAssertEqual(map[key], reference[key], key) }
    }

    func testACLAttributeSlots() {
        for (k, name) in ACLReader.attributeNames.enumerated() { XCTAssertEqual(ACLReader.slot(of: name), k, name) }
        for name in ["", "name", "NAME", "Names", "Nam", "Weight ", "VLANId", "LocalMACAddres", "RemoteMACAddresS",
                     "ICMPtype", "Session", "First", "Last", "xsi:nil", "nil", "LocalIPAddresss"] {
            XCTAssertNil(ACLReader.slot(of: name), name)
        }
    }

    func testIPPrefix() {
        for a in addresses {
            let got = IPPrefix(a), want = Self.refIPPrefix(a)
            XCTAssertEqual(got == nil, want == nil, a)
            if let got, let want {
                XCTAssertEqual(got.family, want.0, a)
                XCTAssertEqual(got.bytes, want.1, a)
                XCTAssertEqual(got.prefixLength, want.2, a)
            }
        }
    }
    /// The element kind tables (`KeyMap`s) give what the dictionaries they replaced gave.
    func testKindTables() {
        for (names, isArray) in [(ItemReader.epasdScalars, false), (ItemReader.epasdArrays, true)] {
            for n in names {
                XCTAssertEqual(ItemReader.epasdKinds[n]?.key, "epasd:" + n)
                XCTAssertEqual(ItemReader.epasdKinds[n]?.isArray, isArray)
                XCTAssertNil(ItemReader.vsxKinds[n], n)
            }
        }
        for (names, isArray) in [(ItemReader.vsxScalars, false), (ItemReader.vsxArrays, true)] {
            for n in names {
                XCTAssertEqual(ItemReader.vsxKinds[n]?.key, "vsx:" + n)
                XCTAssertEqual(ItemReader.vsxKinds[n]?.isArray, isArray)
                XCTAssertEqual(ItemReader.vsxKinds[n]?.attributes, ItemReader.vsxAttributes[n] ?? [])
                XCTAssertNil(ItemReader.epasdKinds[n], n)
            }
        }
        XCTAssertEqual(ItemReader.epasdKinds.values.count, ItemReader.epasdScalars.count + ItemReader.epasdArrays.count)
        XCTAssertEqual(ItemReader.vsxKinds.values.count, ItemReader.vsxScalars.count + ItemReader.vsxArrays.count)
        for n in ["", "acl", "Acls", "portVID", "PortVID ", "epasd:PortVID", "vsx:Acl", "Pört", "TrunkedVLANRang", "ID"] {
            XCTAssertNil(ItemReader.epasdKinds[n], n)
            XCTAssertNil(ItemReader.vsxKinds[n], n)
        }
    }

    /// `XMLElement.isNil` and `hasText` (read in place) against what they were: `attribute("nil", namespace:)`
    /// trimmed, and `!trimmedText.isEmpty`.
    func testIsNilAndHasText() {
        let xsi = xsiNamespace
        let attributeSets: [[XMLAttribute]] = [
            [], [XMLAttribute(name: "Name", value: "x")],
            [XMLAttribute(name: "nil", value: "true")],
            [XMLAttribute(name: "nil", namespaceURI: xsi, prefix: "xsi", value: "true")],
            [XMLAttribute(name: "nil", namespaceURI: xsi, prefix: "xsi", value: " 1\n")],
            [XMLAttribute(name: "nil", namespaceURI: xsi, prefix: "xsi", value: "false")],
            [XMLAttribute(name: "nil", namespaceURI: xsi, prefix: "xsi", value: "TRUE")],
            [XMLAttribute(name: "type", namespaceURI: xsi, prefix: "xsi", value: "true"), XMLAttribute(name: "nil", namespaceURI: xsi, prefix: "i", value: "\ttrue ")],
            [XMLAttribute(name: "nil", namespaceURI: "urn:other", prefix: "o", value: "true"), XMLAttribute(name: "A", value: "1")],
            [XMLAttribute(name: "nil", namespaceURI: xsi, prefix: "xsi", value: "0"), XMLAttribute(name: "nil", namespaceURI: xsi, prefix: "x", value: "true")],
            [XMLAttribute(name: "Nil", namespaceURI: xsi, prefix: "xsi", value: "true")],
        ]
        let texts = ["", " ", "\n  \t\r", "0", " 0 ", "\u{A0}", "\n  x", "é", "\r\n", String(repeating: " ", count: 300) + "y", "\u{2003}"]
        for attributes in attributeSets {
            for text in texts {
                let e = XMLElement(name: "E", attributes: attributes, text: text)
                let wantNil = e.attribute("nil", namespace: xsi).map { a -> Bool in
                    let v = XMLElement.trim(a.value)
                    return v == "true" || v == "1"
                } ?? false
                XCTAssertEqual(e.isNil, wantNil, "\(attributes)")
                XCTAssertEqual(e.hasText, !e.trimmedText.isEmpty, text.debugDescription)
            }
        }
    }
    /// ACLReader's direction / action parsing against the enums' raw values.
    func testDirectionAndAction() {
        for t in ["Inbound", "Outbound", "Both", "Allow", "Deny", "inbound", "BOTH", "Both ", "", "Bot", "Inboun",
                  "Outbounds", "Allow\u{301}", "Den\u{79}", "D\u{65}ny", "\u{212A}", "Alow", "Deny\0"] {
            XCTAssertEqual(ACLReader.direction(t), ACLDirection(rawValue: t), t.debugDescription)
            XCTAssertEqual(ACLReader.action(t), ACLAction(rawValue: t), t.debugDescription)
        }
    }

    /// The source locator's scan (positions counted only where asked, room counted 8 bytes at a time, arrays
    /// filled in place) against the scan it replaced (`ReferenceSourceLocator`: a line and a column kept up to
    /// date at every byte): the same tags, attributes, positions, depths and ends, on the corpus, tricky
    /// documents and random byte soups of markup characters (malformed ones too: attributes with no '=',
    /// unclosed comments, a lone '<' at the end, CR, CR LF, multi-byte characters).
    func testLocatorScanMatchesTheByteWalk() throws {
        var docs: [[UInt8]] = []
        for root in [Fixture.directory.path, Fixture.packageRoot.appendingPathComponent("topologies").path] {
            let e = FileManager.default.enumerator(atPath: root)
            while let f = e?.nextObject() as? String {
                guard f.hasSuffix(".xml") || f.hasSuffix(".xsd") else { continue }
                docs.append(Array(try Data(contentsOf: URL(fileURLWithPath: root + "/" + f))))
            }
        }
        XCTAssertGreaterThan(docs.count, 70)
        for text in ["", "<", "<r", "<r/", "<r a", "<r a b c d/>", "<!-->x<r/>", "<?>x<r/>", "<!--", "<![CDATA[", "<?x",
                     "<r a=\"x", "<r a='>'/>", "<r><!x y></r>", "</r>", "</r><a>", "<a></a></b></c>",
                     "<r>\r\n <a b='x\r\ny'\r c=\"é\n€\">t\ré</a>\r\r<é\n  ü='1'/>𝄞<b\tx\n=\n'>'/></r>",
                     "<?xml version=\"1.0\"?>\r\n<!-- <x> -->\n<r><![CDATA[<y a='1'>]]>\n<z/><?p <q>?></r>",
                     "\u{FEFF}<r\ra=\"1\"\r\n\rb='2'>\r</r>", "<r a==\"1\" =b c= d=>é=é</r>", "<r/a b='1'/>"] {
            docs.append(Array(text.utf8))
        }
        // Random soups: tokens that steer the scan, with CR, LF and multi-byte characters between them.
        let tokens = ["<", ">", "/", "/>", "</", "<!--", "-->", "<![CDATA[", "]]>", "<?", "?>", "<!", "=", "\"", "'", " ", "\t",
                      "\n", "\r", "\r\n", "a", "bc", "é", "€", "𝄞", "x:y", "-", "]"]
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<20_000 {
            var text = ""
            for _ in 0..<Int.random(in: 0...60, using: &rng) { text += tokens.randomElement(using: &rng)! }
            docs.append(Array(text.utf8))
        }
        // Longer than the 8-byte steps, with the bytes the pre-count looks for in every lane.
        docs.append(Array(String(repeating: "<a b='1' c=\"=\"/>\r\n<é\rd=x>", count: 500).utf8))
        docs.append(Array(String(repeating: "<a b='1' c=\"=\"/>\n\n  <é d=x>text\n", count: 500).utf8))
        // Long runs (past the 64 bytes looked at in line before memchr takes over): text, values, comments, cut
        // off at every length near the end.
        let long = "<r a='" + String(repeating: "v", count: 200) + "' b=\"" + String(repeating: "w>", count: 50) + "\">"
            + String(repeating: "text ", count: 40) + "<c d='x'/>" + String(repeating: "y", count: 100) + "<!--"
            + String(repeating: "-", count: 90) + "-->" + String(repeating: "z", count: 65) + "</r>"
        docs.append(Array(long.utf8))
        for cut in stride(from: 1, to: long.utf8.count, by: 7) { docs.append(Array(long.utf8.prefix(cut))) }
        docs.append(Array(String(repeating: "<a b='1'\n\n\n\nc=\"=\"/>\n<<d e=x>text text text\n", count: 700).utf8))
        for bytes in docs {
            let new = SourceLocator(bytes), old = ReferenceSourceLocator(bytes)
            let name = String(decoding: bytes.prefix(200), as: UTF8.self).debugDescription
            guard new.tags.count == old.tags.count, new.attributes.count == old.attributes.count else {
                XCTFail("counts differ: \(new.tags.count) / \(old.tags.count) tags, \(new.attributes.count) / \(old.attributes.count) attributes: \(name)")
                continue
            }
            XCTAssertEqual(new.depths, old.depths, name)
            XCTAssertEqual(new.ends, old.ends, name)
            for (a, b) in zip(new.tags, old.tags) where a.position != b.position || a.offset != b.offset || a.attributes != b.attributes {
                XCTFail("tag at \(b.offset) differs: \(name)")
                break
            }
            for (a, b) in zip(new.attributes, old.attributes)
            where a.position != b.position || a.nameStart != b.nameStart || a.nameEnd != b.nameEnd {
                XCTFail("attribute at \(b.nameStart) differs: \(name)")
                break
            }
        }
    }

    /// `XMLTopLevel`'s scan (a start tag's quotes and '>' found 8 bytes at a time) against the scan it replaced
    /// (`ReferenceXMLTopLevel`): the same answer, the same `known` and `scanned` calls in the same order, on
    /// the corpus, a 200-profile document and random markup soups; `known` answers at some offsets (a length,
    /// a zero, one past the end) as a partial reload's would.
    func testTopLevelScanMatchesTheByteWalk() throws {
        var docs: [[UInt8]] = []
        let e = FileManager.default.enumerator(atPath: Fixture.directory.path)
        while let f = e?.nextObject() as? String {
            guard f.hasSuffix(".xml") else { continue }
            docs.append(Array(try Data(contentsOf: Fixture.directory.appendingPathComponent(f))))
        }
        let profiles = (0..<200).map { k -> PortProfile in
            var p = PortProfile(id: "urn:t:p\(k)", idType: .uri, elementName: "p\(k)", instanceID: "t:\(k)")
            p.acls = [ACLRule(name: "a>\"'", direction: .inbound, action: .allow, weight: k)]
            return p
        }
        docs.append(Array(ProfileWriter.write(profiles).utf8))
        let tokens = ["<", ">", "/", "/>", "</", "<!--", "-->", "<![CDATA[", "]]>", "<?", "?>", "<!", "=", "\"", "'", " ", "\n",
                      "a", "bc", "é", "<r>", "</r>", "<a b='>'>", "</a>", "<c d=\"x\"/>", "<e f=\"'\" g='\"'>", "</e>",
                      String(repeating: "t", count: 70), "<e f=\"" + String(repeating: "u>", count: 40) + "\">"]
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<20_000 {
            var text = ""
            for _ in 0..<Int.random(in: 0...60, using: &rng) { text += tokens.randomElement(using: &rng)! }
            docs.append(Array(text.utf8))
        }
        for bytes in docs {
            let name = String(decoding: bytes.prefix(200), as: UTF8.self).debugDescription
            for mode in 0..<3 {
                // mode 0: no callbacks; 1: `scanned` only; 2: both, `known` answering at every third offset asked.
                var calls: [[String]] = [[], []]
                func run(_ k: Int) -> (Int, [Range<Int>])? {
                    var asked = 0
                    let known: ((Int) -> Int?)? = mode < 2 ? nil : { at in
                        asked += 1
                        calls[k].append("known \(at)")
                        switch asked % 3 { case 0: return min(40, bytes.count - at + 1); case 1: return 0; default: return nil }
                    }
                    let scanned: ((Range<Int>) -> Void)? = mode < 1 ? nil : { calls[k].append("scanned \($0)") }
                    if k == 0 { return XMLTopLevel(bytes, known: known, scanned: scanned).map { ($0.rootStart, $0.children) } }
                    return ReferenceXMLTopLevel(bytes, known: known, scanned: scanned).map { ($0.rootStart, $0.children) }
                }
                let new = run(0), old = run(1)
                XCTAssertEqual(new?.0, old?.0, name)
                XCTAssertEqual(new?.1, old?.1, name)
                XCTAssertEqual(calls[0], calls[1], name)
            }
        }
    }

    /// `XMLElement.trim` (first and last bytes read in place) against trimming the UTF-8 bytes by hand.
    func testTrim() {
        let ws: Set<UInt8> = [0x20, 0x09, 0x0A, 0x0D]
        var texts = ["", " ", "\t\n\r ", "a", " a", "a ", " a b ", "\u{A0}a\u{A0}", "\u{2003}", "é", " é ", "𝄞\n",
                     "x\r\n", String(repeating: " ", count: 40) + "long text, not small" + String(repeating: "\n", count: 3),
                     "not a small string at all, no whitespace", "\u{0}", " \u{0} "]
        let pieces = [" ", "\t", "\n", "a", "é", "\u{A0}", "bc"]
        for _ in 0..<2_000 { texts.append((0..<Int.random(in: 0...24)).map { _ in pieces.randomElement()! }.joined()) }
        for t in texts {
            let b = Array(t.utf8)
            let lo = b.firstIndex { !ws.contains($0) } ?? b.count
            let hi = (b.lastIndex { !ws.contains($0) } ?? -1) + 1
            XCTAssertEqual(XMLElement.trim(t), lo < hi ? String(decoding: b[lo..<hi], as: UTF8.self) : "", t.debugDescription)
        }
    }

    /// The shadowing check's order of a direction's rules (insertion into a stack buffer) against the filter and
    /// stable sort it replaced, on random rule sets with many equal weights.
    func testShadowingOrder() {
        let all: [ACLDirection] = [.inbound, .outbound, .both]
        for n in 0..<40 {
            for _ in 0..<50 {
                let directions = (0..<n).map { _ in all.randomElement()! }
                let weights = (0..<n).map { _ in Int.random(in: 0...4) }
                for d in [ACLDirection.inbound, .outbound] {
                    let want = (0..<n).filter { directions[$0] == d || directions[$0] == .both }.sorted { weights[$0] > weights[$1] }
                    let got = [Int](unsafeUninitializedCapacity: max(1, n)) { buffer, made in
                        made = ACLReader.shadowingOrder(count: n, direction: { directions[$0] }, weight: { weights[$0] },
                                                        for: d, into: buffer)
                    }
                    XCTAssertEqual(got, want)
                }
            }
        }
    }

    /// The streaming builder's cache of short strings against decoding the bytes each time: random byte strings of
    /// 0–20 bytes from a small alphabet (so that they repeat and share slots), invalid UTF-8 and NUL included.
    func testSmallStringCache() {
        var cache = SmallStringCache()
        let alphabet: [UInt8] = [0x00, 0x20, 0x41, 0x61, 0x7A, 0x30, 0xC3, 0xA9, 0xE2, 0x82, 0xAC, 0xFF, 0x80]
        var seen: [[UInt8]] = []
        for step in 0..<50_000 {
            let bytes: [UInt8]
            if step % 3 == 0, let old = seen.randomElement() { bytes = old }
            else {
                bytes = (0..<Int.random(in: 0...20)).map { _ in alphabet[Int.random(in: 0..<(step % 2 == 0 ? 4 : alphabet.count))] }
                if seen.count < 2_000 { seen.append(bytes) }
            }
            let got = bytes.withUnsafeBufferPointer { cache.string($0) }
            let want = String(decoding: bytes, as: UTF8.self)
            XCTAssertEqual(got, want, "\(bytes)")
            XCTAssertEqual(Array(got.utf8), Array(want.utf8), "\(bytes)")
        }
    }
}
