import Foundation
import XCTest
import VSwitchXML
@testable import VSwitchProfiles

/// Fixtures are read from the source tree (#filePath), which works the same under
/// `swift test` and when the test bundle's resources are not where Bundle.module looks.
enum Fixture {
    static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures")
    static let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent()

    static func path(_ name: String) -> String { directory.appendingPathComponent(name).path }

    static func files(in subdirectory: String) -> [String] {
        let dir = directory.appendingPathComponent(subdirectory)
        let names = (try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? []
        return names.filter { $0.hasSuffix(".xml") }.sorted().map { dir.appendingPathComponent($0).path }
    }

    static func text(_ path: String) -> String { (try? String(contentsOfFile: path, encoding: .utf8)) ?? "" }
}

/// An expectation written in a fixture as `<!-- expect: LINE[:COL] error|warning: fragment -->`.
struct Expectation: CustomStringConvertible {
    var line: Int
    var column: Int?
    var severity: XMLDiagnostic.Severity
    var fragment: String

    var description: String { "\(line)\(column.map { ":\($0)" } ?? ""): \(severity.rawValue): \(fragment)" }

    static func parse(fixture path: String) -> [Expectation] {
        var result: [Expectation] = []
        for line in Fixture.text(path).split(separator: "\n", omittingEmptySubsequences: false) {
            guard let r = line.range(of: "<!-- expect: ") else { continue }
            var rest = line[r.upperBound...]
            if let end = rest.range(of: " -->") { rest = rest[..<end.lowerBound] }
            // LINE[:COL] severity: fragment
            let parts = rest.split(separator: " ", maxSplits: 1)
            guard parts.count == 2 else { continue }
            let position = parts[0].split(separator: ":")
            let body = parts[1]
            guard let colon = body.firstIndex(of: ":"),
                  let severity = XMLDiagnostic.Severity(rawValue: String(body[..<colon])),
                  let l = Int(position[0]) else { continue }
            let fragment = body[body.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            result.append(Expectation(line: l, column: position.count > 1 ? Int(position[1]) : nil,
                                      severity: severity, fragment: fragment))
        }
        return result
    }

    func isMet(by d: XMLDiagnostic, file: String) -> Bool {
        d.file == file && d.line == line && (column == nil || d.column == column) && d.severity == severity
            && d.description.contains(fragment)
    }
}

func loadError(_ body: () throws -> Any) -> ProfileLoadError? {
    do {
        _ = try body()
        return nil
    } catch let e as ProfileLoadError {
        return e
    } catch {
        XCTFail("unexpected error type: \(error)")
        return nil
    }
}
