// CPUPlacement (vswitchd --forwarding-cpus / --housekeeping-cpus): parsing, the thread → CPU map,
// and confinement of a real thread (sched affinity needs no privilege for one's own threads).

import Foundation
import VSwitchCore
@testable import VSwitchDaemon
import XCTest

final class CPUPlacementTests: XCTestCase {
    func testParsesCPUListsLikeTaskset() throws {
        XCTAssertEqual(try CPUList(parsing: "1").cpus, [1])
        XCTAssertEqual(try CPUList(parsing: "0,2").cpus, [0, 2])
        XCTAssertEqual(try CPUList(parsing: "2-5,8").cpus, [2, 3, 4, 5, 8])
        XCTAssertEqual(try CPUList(parsing: " 3 , 1-2,2").cpus, [1, 2, 3])
        XCTAssertEqual(try CPUList(parsing: "8,2-5,0").description, "0,2-5,8")
    }

    func testRefusesMalformedListsWithTheItem() {
        for bad in ["", "a", "1,", "3-1", "-1", "1-2-3", "1024", "0-1024"] {
            XCTAssertThrowsError(try CPUList(parsing: bad), bad) { error in
                XCTAssertTrue("\(error)".contains("bad CPU list '\(bad)'"), "\(error)")
            }
        }
    }

    func testForwardingThreadsGoRoundRobinOverTheirList() throws {
        let two = CPUList(cpus: [0, 1])
        let p = CPUPlacement(forwarding: try CPUList(parsing: "1,3"))
        XCTAssertEqual((0..<4).map { p.forwardingCPU(thread: $0, of: 4, allowed: two) }, [1, 3, 1, 3])
        // Default: thread t on the t-th allowed CPU when there are enough, else unpinned.
        let d = CPUPlacement()
        XCTAssertEqual((0..<2).map { d.forwardingCPU(thread: $0, of: 2, allowed: two) }, [0, 1])
        XCTAssertNil(d.forwardingCPU(thread: 0, of: 3, allowed: two))
        XCTAssertEqual(d.forwardingCPU(thread: 0, of: 1, allowed: CPUList(cpus: [2, 3])), 2, "a taskset/cpuset narrows the default")
    }

    func testHousekeepingAloneMovesForwardingThreadsOffItsCPUs() throws {
        let four = CPUList(cpus: [0, 1, 2, 3])
        let p = CPUPlacement(housekeeping: CPUList(cpus: [0]))
        XCTAssertEqual((0..<3).map { p.forwardingCPU(thread: $0, of: 3, allowed: four) }, [1, 2, 3])
        XCTAssertNil(p.forwardingCPU(thread: 0, of: 4, allowed: four), "not enough free CPUs: unpinned")
        XCTAssertEqual(CPUPlacement(housekeeping: CPUList(cpus: [0])).forwardingCPU(thread: 0, of: 1, allowed: CPUList(cpus: [0, 1])), 1)
    }

    func testRefusesCPUsTheProcessMayNotUse() throws {
        let allowed = CPUList(cpus: [0, 1])
        XCTAssertNoThrow(try CPUPlacement(forwarding: CPUList(cpus: [1]), housekeeping: CPUList(cpus: [0])).check(allowed: allowed))
        XCTAssertThrowsError(try CPUPlacement(housekeeping: CPUList(cpus: [0, 7])).check(allowed: allowed)) { error in
            XCTAssertEqual("\(error)", "--housekeeping-cpus 0,7: CPU 7 not available to this process (available: 0-1)")
        }
    }

    /// A thread confined to the housekeeping set stays there, and threads it starts inherit the set.
    func testConfinementIsInheritedByThreadsStartedLater() throws {
        let allowed = CPUList.allowed()
        guard let last = allowed.cpus.last else { return XCTFail("no CPU allowed?") }
        let placement = CPUPlacement(housekeeping: CPUList(cpus: [last]))
        var own = CPUList(cpus: []), child = CPUList(cpus: [])
        var failure: Error?
        let t = spawnThread {
            do { try placement.confineCurrentThread() } catch { failure = error; return }
            own = CPUPlacement.currentThreadCPUs()
            let c = spawnThread { child = CPUPlacement.currentThreadCPUs() }
            pthread_join(c, nil)
        }
        pthread_join(t, nil)
        XCTAssertNil(failure)
        XCTAssertEqual(own.cpus, [last])
        XCTAssertEqual(child.cpus, [last])
        // This (test) thread was not touched.
        XCTAssertEqual(CPUPlacement.currentThreadCPUs(), allowed)
    }
}
