import XCTest
import CLibXML2
@testable import VSwitchProfiles

/// VSwitchXML swaps libxml2's error handler and entity loader only for the duration of a call.
final class LibXML2StateTests: XCTestCase {
    func testGlobalLibXML2StateIsRestored() throws {
        xmlInitParser()
        let loaderBefore = xmlGetExternalEntityLoader().map { unsafeBitCast($0, to: UnsafeRawPointer.self) }
        let handlerBefore = __xmlStructuredError().pointee.map { unsafeBitCast($0, to: UnsafeRawPointer.self) }
        _ = try ProfileLoader.load(path: Fixture.path("valid-form1.xml"))
        _ = try? ProfileLoader.load(path: Fixture.path("bad/malformed.xml"))
        let loaderAfter = xmlGetExternalEntityLoader().map { unsafeBitCast($0, to: UnsafeRawPointer.self) }
        let handlerAfter = __xmlStructuredError().pointee.map { unsafeBitCast($0, to: UnsafeRawPointer.self) }
        XCTAssertEqual(loaderBefore, loaderAfter)
        XCTAssertEqual(handlerBefore, handlerAfter)
    }
}
