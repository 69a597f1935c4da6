import CVSwitchShim
import Foundation
import XCTest

/// The C shim's constants and helpers (no privileges needed).
final class ShimTests: XCTestCase {
    func testIoctlNumbersMatchTheKernelABI() {
        XCTAssertEqual(VSW_TUNSETIFF, 0x4004_54CA)
        XCTAssertEqual(VSW_TUNSETPERSIST, 0x4004_54CB)
        XCTAssertEqual(VSW_TUNSETOWNER, 0x4004_54CC)
        XCTAssertEqual(VSW_TUNGETIFF, 0x8004_54D2)
        XCTAssertEqual(VSW_TUNSETOFFLOAD, 0x4004_54D0)
        XCTAssertEqual(VSW_TUNSETVNETHDRSZ, 0x4004_54D8)
        XCTAssertEqual(VSW_CLONE_NEWNET, 0x4000_0000)
    }

    func testClocksAndThreadHelpers() {
        let coarse = vsw_now_coarse_ns(), fine = vsw_now_ns()
        XCTAssertLessThan(abs(Int64(bitPattern: fine &- coarse)), 50_000_000, "coarse clock within 50 ms of CLOCK_MONOTONIC")
        XCTAssertGreaterThanOrEqual(vsw_now_coarse_ns(), coarse)
        XCTAssertEqual(vsw_pin_thread(-1), EINVAL)
        XCTAssertGreaterThan(vsw_gettid(), 0)

        // Pinning affects only the calling thread.
        let done = DispatchSemaphore(value: 0)
        nonisolated(unsafe) var rc: Int32 = -1
        nonisolated(unsafe) var allowed = ""
        let thread = Thread {
            rc = vsw_pin_thread(0)
            let status = (try? String(contentsOfFile: "/proc/thread-self/status", encoding: .utf8)) ?? ""
            allowed = status.split(separator: "\n").first { $0.hasPrefix("Cpus_allowed_list:") }
                .map { $0.split(separator: "\t").last.map(String.init) ?? "" } ?? ""
            done.signal()
        }
        thread.start()
        done.wait()
        XCTAssertEqual(rc, 0)
        XCTAssertEqual(allowed, "0")
    }

    func testInterfaceFlags() {
        let flags = vsw_if_get_flags("lo")
        XCTAssertGreaterThanOrEqual(flags, 0)
        XCTAssertNotEqual(flags & 0x8, 0, "lo has IFF_LOOPBACK")
        XCTAssertEqual(vsw_if_get_flags("vswt-none"), -1)
        XCTAssertEqual(errno, ENODEV)
    }
}
