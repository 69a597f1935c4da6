import XCTest
import VSwitchXML
@testable import VSwitchProfiles

/// The bad-document corpus: every Fixtures/bad/*.xml must be refused, and the diagnostics must be
/// exactly the ones its `<!-- expect: LINE[:COL] severity: fragment -->` comments announce (file,
/// line, column when given, severity, message fragment) — no more, no fewer.
/// Fixtures/warn/*.xml must load, with exactly the announced warnings.
final class CorpusTests: XCTestCase {
    func check(_ path: String, refused: Bool) {
        let name = (path as NSString).lastPathComponent
        let expectations = Expectation.parse(fixture: path)
        XCTAssertFalse(expectations.isEmpty, "\(name): no <!-- expect: … --> comment")
        var diagnostics: [XMLDiagnostic] = []
        do {
            let set = try ProfileLoader.load(path: path)
            if refused { XCTFail("\(name): loaded, but it must be refused") }
            diagnostics = set.warnings
        } catch let e as ProfileLoadError {
            if !refused { XCTFail("\(name): refused, but it must load:\n\(e)") }
            diagnostics = e.diagnostics
            XCTAssertTrue(e.diagnostics.contains(where: \.isError), "\(name): refused without an error")
        } catch {
            XCTFail("\(name): unexpected error \(error)")
        }
        for x in expectations where !diagnostics.contains(where: { x.isMet(by: $0, file: path) }) {
            XCTFail("\(name): missing diagnostic \(x)\n  got:\n    " + diagnostics.map(\.description).joined(separator: "\n    "))
        }
        for d in diagnostics where !expectations.contains(where: { $0.isMet(by: d, file: path) }) {
            XCTFail("\(name): unexpected diagnostic \(d)")
        }
    }

    func testBadDocumentsAreRefusedWithLocatedDiagnostics() {
        let files = Fixture.files(in: "bad")
        XCTAssertGreaterThanOrEqual(files.count, 50)
        for f in files { check(f, refused: true) }
    }

    func testWarningDocumentsLoadWithLocatedWarnings() {
        let files = Fixture.files(in: "warn")
        XCTAssertGreaterThanOrEqual(files.count, 3)
        for f in files { check(f, refused: false) }
    }
}
