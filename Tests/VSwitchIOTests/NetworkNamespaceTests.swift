import Foundation
import VSwitchIO
import XCTest

final class NetworkNamespaceTests: PrivilegedTestCase {
    func testCreateExistsDeleteInteroperateWithIpNetns() throws {
        let ns = uniqueNamespace()
        XCTAssertFalse(NetworkNamespace.exists(ns))
        try NetworkNamespace.create(ns)
        XCTAssertTrue(NetworkNamespace.exists(ns))
        XCTAssertTrue(NetworkNamespace.list().contains(ns))

        let list = try ip(["netns", "list"])
        XCTAssertTrue(list.stdout.split(separator: "\n").contains { $0.split(separator: " ").first.map(String.init) == ns },
                      "`ip netns list` does not show \(ns):\n\(list.stdout)")
        let links = try ip(["netns", "exec", ns, "ip", "-o", "link"])
        XCTAssertEqual(links.status, 0, links.stderr)
        XCTAssertEqual(links.stdout.split(separator: "\n").count, 1, "a new namespace holds only lo:\n\(links.stdout)")
        XCTAssertTrue(links.stdout.contains("lo:"))

        let duplicate = systemError { try NetworkNamespace.create(ns) }
        XCTAssertEqual(duplicate?.errno, EEXIST)
        XCTAssertEqual(duplicate?.description, "network namespace \"\(ns)\" already exists (EEXIST)")

        try NetworkNamespace.delete(ns)
        XCTAssertFalse(NetworkNamespace.exists(ns))
        XCTAssertFalse(try ip(["netns", "list"]).stdout.contains(ns))
        XCTAssertEqual(systemError { try NetworkNamespace.delete(ns) }?.description,
                       "cannot delete network namespace \"\(ns)\": no such network namespace (ENOENT)")
    }

    /// A daemon killed between creating /run/netns/NAME and mounting the namespace on it leaves a bare file:
    /// not a namespace (nothing can enter it), reclaimed by the next create, removed by delete.
    func testABareFileIsNoNamespaceAndIsReclaimed() throws {
        let ns = uniqueNamespace()
        let file = NetworkNamespace.path(ns)
        XCTAssertTrue(FileManager.default.createFile(atPath: file, contents: nil))
        XCTAssertFalse(NetworkNamespace.exists(ns), "a bare file is not a namespace")
        try NetworkNamespace.create(ns)
        XCTAssertTrue(NetworkNamespace.exists(ns))
        XCTAssertEqual(try ip(["netns", "exec", ns, "true"]).status, 0)
        try NetworkNamespace.delete(ns)
        XCTAssertTrue(FileManager.default.createFile(atPath: file, contents: nil))
        try NetworkNamespace.delete(ns)
        XCTAssertFalse(FileManager.default.fileExists(atPath: file), "delete removes a bare file too")
    }

    func testNamespacesMadeByIpAreUsable() throws {
        let ns = uniqueNamespace()
        XCTAssertEqual(try ip(["netns", "add", ns]).status, 0)
        XCTAssertTrue(NetworkNamespace.exists(ns))
        XCTAssertEqual(try NetworkNamespace.withNamespace(ns) { if_nametoindex("lo") }, 1)
        try NetworkNamespace.delete(ns)
        XCTAssertFalse(try ip(["netns", "list"]).stdout.contains(ns))
    }

    func testWithNamespaceRunsInsideAndLeavesTheCallerAlone() throws {
        let ns = uniqueNamespace()
        try NetworkNamespace.create(ns)
        let outside = try namespaceInode()
        let inside = try NetworkNamespace.withNamespace(ns) { try namespaceInode() }
        XCTAssertNotEqual(inside, outside)
        XCTAssertEqual(try namespaceInode(), outside, "the calling thread must not change namespace")
        var st = stat()
        XCTAssertEqual(stat(NetworkNamespace.path(ns), &st), 0)
        XCTAssertEqual(UInt64(st.st_ino), inside, "/run/netns/\(ns) must be that namespace")

        struct Marker: Error {}
        XCTAssertThrowsError(try NetworkNamespace.withNamespace(ns) { throw Marker() }) { XCTAssertTrue($0 is Marker) }

        let missing = uniqueName("m")
        XCTAssertEqual(systemError { _ = try NetworkNamespace.withNamespace(missing) { 0 } }?.description,
                       "cannot enter network namespace \"\(missing)\": no such network namespace (ENOENT)")
    }

    func testConcurrentCreateAndDelete() throws {
        let names = (0..<6).map { _ in uniqueNamespace() }
        let failures = Failures()
        DispatchQueue.concurrentPerform(iterations: names.count) { i in
            do {
                try NetworkNamespace.create(names[i])
                let lo = try NetworkNamespace.withNamespace(names[i]) { if_nametoindex("lo") }
                if lo != 1 { failures.add("lo index \(lo) in \(names[i])") }
                try NetworkNamespace.delete(names[i])
            } catch { failures.add("\(error)") }
        }
        XCTAssertEqual(failures.all, [])
        for name in names { XCTAssertFalse(NetworkNamespace.exists(name)) }
    }

    func testInvalidNamespaceNames() {
        for bad in ["", ".", "..", "a/b"] {
            XCTAssertEqual(systemError { try NetworkNamespace.create(bad) }?.errno, EINVAL, bad)
            XCTAssertFalse(NetworkNamespace.exists(bad))
        }
    }

    private func namespaceInode() throws -> UInt64 {
        var st = stat()
        guard stat("/proc/thread-self/ns/net", &st) == 0 else { throw SystemError(operation: "stat", errno: errno) }
        return UInt64(st.st_ino)
    }
}

final class Failures: @unchecked Sendable {
    private let lock = NSLock()
    private var items: [String] = []
    func add(_ s: String) { lock.lock(); items.append(s); lock.unlock() }
    var all: [String] { lock.lock(); defer { lock.unlock() }; return items }
}
