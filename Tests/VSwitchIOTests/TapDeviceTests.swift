import Foundation
import VSwitchIO
import XCTest

final class TapDeviceTests: PrivilegedTestCase {
    func testCreateMakesANonBlockingTapVisibleToTheKernel() throws {
        let name = uniqueLinkName()
        let tap = track(try TapDevice.create(name: name))
        XCTAssertEqual(tap.name, name)
        XCTAssertGreaterThanOrEqual(tap.fd, 0)
        XCTAssertNotEqual(if_nametoindex(name), 0, "if_nametoindex does not see \(name)")
        XCTAssertEqual(Netlink.interfaceIndex(name), Int32(if_nametoindex(name)))
        XCTAssertTrue(Netlink.linkExists(name))
        XCTAssertNotEqual(fcntl(tap.fd, F_GETFL) & O_NONBLOCK, 0, "fd must be non-blocking")
        XCTAssertNotEqual(fcntl(tap.fd, F_GETFD) & FD_CLOEXEC, 0, "fd must be close-on-exec")

        let info = try XCTUnwrap(try Netlink.link(name))
        XCTAssertFalse(info.isUp)
        XCTAssertEqual(info.mtu, 1500)
        XCTAssertEqual(info.operState, .down)
        let details = try ipJSON(["-d", "link", "show", "dev", name])
        let tun = (details.first?["linkinfo"] as? [String: Any])?["info_data"] as? [String: Any]
        XCTAssertEqual(tun?["type"] as? String, "tap")
        XCTAssertEqual(tun?["pi"] as? Bool, false, "IFF_NO_PI expected")

        // Nothing to read yet: read() reports "no frame", not an error.
        var buffer = [UInt8](repeating: 0, count: 2048)
        XCTAssertNil(try buffer.withUnsafeMutableBytes { try tap.read(into: $0) })

        tap.close()
        tap.close() // idempotent
        XCTAssertTrue(tap.isClosed)
        XCTAssertTrue(eventually { !Netlink.linkExists(name) }, "a non-persistent TAP must vanish with its fd")
    }

    /// IFF_VNET_HDR + TUNSETOFFLOAD: the TAP's netdev gets TSO and checksum offload (the virtual system's
    /// kernel then hands over 64 KB super-frames); TUNSETOFFLOAD 0 takes them away again.
    func testOffloadsAreVisibleInTheNetdevFeatures() throws {
        func features(_ name: String) throws -> String {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/usr/sbin/ethtool")
            p.arguments = ["-k", name]
            let out = Pipe()
            p.standardOutput = out
            try p.run()
            p.waitUntilExit()
            return String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        }
        let name = uniqueLinkName()
        let tap = track(try TapDevice.create(name: name, options: [.vnetHeader]))
        let before = try features(name)
        XCTAssertTrue(before.contains("tcp-segmentation-offload: off"), before)
        try tap.enableOffloads()
        let on = try features(name)
        XCTAssertTrue(on.contains("tcp-segmentation-offload: on"), on)
        XCTAssertTrue(on.contains("tx-checksumming: on"), on)
        let details = try ipJSON(["-d", "link", "show", "dev", name])
        let tun = (details.first?["linkinfo"] as? [String: Any])?["info_data"] as? [String: Any]
        XCTAssertEqual(tun?["vnet_hdr"] as? Bool, true, "IFF_VNET_HDR expected")
        try tap.disableOffloads()
        XCTAssertTrue(try features(name).contains("tcp-segmentation-offload: off"))
    }

    func testCreateOnAnExistingNameFailsClearly() throws {
        let name = uniqueLinkName()
        let first = track(try TapDevice.create(name: name))
        let error = systemError { _ = try TapDevice.create(name: name) }
        XCTAssertEqual(error?.errno, EBUSY)
        XCTAssertEqual(error?.description, "cannot create TAP \"\(name)\": interface name already in use (EBUSY)")

        // Not only TAPs: any interface name is refused.
        XCTAssertEqual(systemError { _ = try TapDevice.create(name: "lo") }?.errno, EBUSY)
        XCTAssertGreaterThanOrEqual(first.fd, 0)
    }

    func testCreateNeverAttachesToAnExistingPersistentTap() throws {
        let name = uniqueLinkName()
        let persistent = try TapDevice.create(name: name, persistent: true)
        persistent.close()
        XCTAssertTrue(Netlink.linkExists(name), "a persistent TAP outlives its fd")
        let error = systemError { _ = try TapDevice.create(name: name) }
        XCTAssertEqual(error?.description, "cannot create TAP \"\(name)\": interface name already in use (EBUSY)")
        track(try TapDevice.adopt(name: name)).destroy()
        XCTAssertTrue(eventually { !Netlink.linkExists(name) })
    }

    func testAdoptAttachesToAPersistentTap() throws {
        let name = uniqueLinkName()
        let original = try TapDevice.create(name: name, persistent: true)
        let index = Netlink.interfaceIndex(name)
        original.close()
        XCTAssertTrue(Netlink.linkExists(name))

        let adopted = track(try TapDevice.adopt(name: name))
        XCTAssertEqual(adopted.name, name)
        XCTAssertEqual(Netlink.interfaceIndex(name), index, "adopt must reuse the same netdev")

        // A second attach while one fd holds it is refused.
        let busy = systemError { _ = try TapDevice.adopt(name: name) }
        XCTAssertEqual(busy?.errno, EBUSY)
        XCTAssertEqual(busy?.description, "cannot adopt TAP \"\(name)\": already attached to another file descriptor (EBUSY)")

        adopted.destroy()
        adopted.destroy() // idempotent
        XCTAssertTrue(eventually { !Netlink.linkExists(name) }, "destroy() must remove a persistent TAP")
    }

    func testAdoptErrors() throws {
        let missing = uniqueLinkName()
        XCTAssertEqual(systemError { _ = try TapDevice.adopt(name: missing) }?.description,
                       "cannot adopt TAP \"\(missing)\": no such interface (ENODEV)")
        let notTap = systemError { _ = try TapDevice.adopt(name: "lo") }
        XCTAssertEqual(notTap?.errno, EINVAL)
        XCTAssertTrue(notTap?.description.contains("not a TAP device") ?? false, notTap?.description ?? "")
    }

    func testInvalidNamesAreRefusedBeforeAnySystemCall() {
        for bad in ["", "sixteen-chars-xx", "a/b", "a b", "a:b", ".", ".."] {
            let error = systemError { _ = try TapDevice.create(name: bad) }
            XCTAssertEqual(error?.errno, EINVAL, bad)
            XCTAssertTrue(error?.description.contains("invalid interface name") ?? false, error?.description ?? bad)
        }
    }

    func testSetPersistentTogglesTheKernelFlag() throws {
        let name = uniqueLinkName()
        let tap = track(try TapDevice.create(name: name))
        try tap.setPersistent(true)
        XCTAssertEqual(try persistFlag(name), true)
        try tap.setPersistent(false)
        XCTAssertEqual(try persistFlag(name), false)
        tap.close()
        XCTAssertEqual(systemError { try tap.setPersistent(true) }?.errno, EBADF)
    }

    func testErrorDescriptionsAreOneClearLine() {
        XCTAssertEqual(SystemError(operation: "create TAP", errno: EPERM, context: "\"vsw-a1\"").description,
                       "cannot create TAP \"vsw-a1\": must run as root (CAP_NET_ADMIN) (EPERM)")
        XCTAssertEqual(SystemError(operation: "create TAP", errno: EBUSY, context: "\"vsw-a1\"",
                                   detail: "interface name already in use").description,
                       "cannot create TAP \"vsw-a1\": interface name already in use (EBUSY)")
        XCTAssertEqual(SystemError(operation: "read", errno: EIO).description, "cannot read: input/output error (EIO)")
        XCTAssertEqual(SystemError(operation: "x", errno: 4095).errnoName, "errno 4095")
        XCTAssertFalse(SystemError(operation: "x", errno: EINVAL, context: "y").description.contains("\n"))
    }

    private func persistFlag(_ name: String) throws -> Bool? {
        let details = try ipJSON(["-d", "link", "show", "dev", name])
        let info = (details.first?["linkinfo"] as? [String: Any])?["info_data"] as? [String: Any]
        return info?["persist"] as? Bool
    }
}
