import VSwitchPolicy
import XCTest

final class IntegerRunsTests: XCTestCase {
    func testRunsAndTheirDescription() {
        XCTAssertEqual(consecutiveRuns([1, 2, 3, 7, 9, 10] as [Int]), [1...3, 7...7, 9...10])
        XCTAssertEqual(consecutiveRuns([] as [Int]), [])
        XCTAssertEqual(describeRuns([10, 20, 21, 22, 30] as [UInt16], separator: ", "), "10, 20-22, 30")
        XCTAssertEqual(describeRuns([0, 2, 3, 4, 5, 8], separator: ","), "0,2-5,8")
        // Up to the type's maximum: no overflow trap.
        XCTAssertEqual(describeRuns([4093, 4094, 65534, 65535] as [UInt16], separator: ","), "4093-4094,65534-65535")
    }
}
