import Foundation
import VSwitchIO
import VSwitchPacket
import XCTest

final class ProvisionerTests: PrivilegedTestCase {
    let vsMAC = MACAddress("02:00:00:99:00:01")!
    let peerMAC = MACAddress("02:00:00:99:00:02")!

    /// A TAP in the root namespace whose netdev is "eth0" at 10.99.0.1/24 in a fresh namespace.
    private func provisioned(mtu: Int = 1400, addresses: [String] = ["10.99.0.1/24"]) throws -> (TapDevice, String) {
        let tapName = uniqueLinkName()
        let tap = track(try TapDevice.create(name: tapName))
        let ns = uniqueNamespace()
        try VirtualSystemProvisioner.attach(tapName: tapName,
                                            to: VirtualSystemSpec(namespace: ns, interfaceName: "eth0", mac: vsMAC,
                                                                  mtu: mtu, addresses: addresses))
        return (tap, ns)
    }

    func testAttachConfiguresTheInterfaceInsideTheNamespace() throws {
        let (tap, ns) = try provisioned()
        XCTAssertTrue(NetworkNamespace.exists(ns))
        XCTAssertFalse(Netlink.linkExists(tap.name), "the netdev must have left the root namespace")

        let addr = try ipJSON(["-n", ns, "addr", "show", "dev", "eth0"])
        let eth0 = try XCTUnwrap(addr.first)
        XCTAssertEqual(eth0["ifname"] as? String, "eth0")
        XCTAssertEqual(eth0["address"] as? String, "02:00:00:99:00:01")
        XCTAssertEqual(eth0["mtu"] as? Int, 1400)
        XCTAssertTrue((eth0["flags"] as? [String] ?? []).contains("UP"), "\(eth0)")
        // A TAP reports RFC 2863 state UNKNOWN even when up with an fd attached; LOWER_UP is the carrier.
        XCTAssertTrue((eth0["flags"] as? [String] ?? []).contains("LOWER_UP"), "\(eth0)")
        XCTAssertEqual(eth0["operstate"] as? String, "UNKNOWN")
        let inet = (eth0["addr_info"] as? [[String: Any]] ?? []).filter { $0["family"] as? String == "inet" }
        XCTAssertEqual(inet.count, 1)
        XCTAssertEqual(inet.first?["local"] as? String, "10.99.0.1")
        XCTAssertEqual(inet.first?["prefixlen"] as? Int, 24)
        XCTAssertEqual(inet.first?["broadcast"] as? String, "10.99.0.255")
        XCTAssertFalse((eth0["addr_info"] as? [[String: Any]] ?? []).contains { $0["family"] as? String == "inet6" },
                       "IPv6 must be off when no IPv6 address is given")

        let lo = try ipJSON(["-n", ns, "link", "show", "dev", "lo"]).first
        XCTAssertTrue((lo?["flags"] as? [String] ?? []).contains("UP"), "lo must be up")

        let text = try ip(["-n", ns, "link"])
        XCTAssertTrue(text.stdout.contains("eth0"), text.stdout)

        // The library's own view agrees.
        let info = try XCTUnwrap(try Netlink.link("eth0", inNamespace: ns))
        XCTAssertEqual(info.mac, vsMAC)
        XCTAssertEqual(info.mtu, 1400)
        XCTAssertTrue(info.isUp)
        XCTAssertTrue(info.hasCarrier)
        XCTAssertTrue(info.isOperational)
        XCTAssertEqual(Netlink.operState("eth0", inNamespace: ns), .unknown)
        XCTAssertEqual(try NetworkNamespace.withNamespace(ns) { try sysctl("net/ipv6/conf/all/disable_ipv6") }, "1")
        XCTAssertEqual(try sysctl("net/ipv6/conf/all/disable_ipv6"), "0", "the root namespace must be untouched")
    }

    func testFramesFlowBetweenTheFdAndTheNamespace() throws {
        let (tap, ns) = try provisioned()
        let before = try rxPackets(ns)

        // Root side → namespace: an ARP request for the namespace's address; the kernel there
        // counts it and answers through the TAP.
        let request = arpFrame(op: 1, srcMAC: peerMAC, dstMAC: .broadcast, senderIP: "10.99.0.2",
                               targetMAC: .zero, targetIP: "10.99.0.1")
        XCTAssertTrue(try tap.send(request))
        let reply = try tap.awaitFrame { $0.isARP && $0.arpOp == 2 }
        XCTAssertNotNil(reply, "no ARP reply read back from the TAP fd")
        XCTAssertEqual(reply?.src, vsMAC)
        XCTAssertEqual(reply?.dst, peerMAC)
        XCTAssertEqual(reply?.arpSenderIP, ipv4("10.99.0.1"))
        XCTAssertTrue(eventually { ((try? self.rxPackets(ns)) ?? 0) > before }, "rx_packets of eth0 did not grow")

        // Namespace → root side: ping an unknown neighbour; read its ARP request from the fd,
        // answer it and the echo request, and ping must succeed.
        let ping = Process()
        ping.executableURL = URL(fileURLWithPath: "/usr/sbin/ip")
        ping.arguments = ["netns", "exec", ns, "ping", "-c1", "-W3", "10.99.0.3"]
        ping.standardOutput = FileHandle.nullDevice
        ping.standardError = FileHandle.nullDevice
        try ping.run()
        defer { if ping.isRunning { ping.terminate() } }

        let who = try tap.awaitFrame { $0.isARP && $0.arpOp == 1 && $0.arpTargetIP == ipv4("10.99.0.3") }
        let arp = try XCTUnwrap(who, "no ARP request for 10.99.0.3 read from the TAP fd")
        XCTAssertEqual(arp.dst, .broadcast)
        XCTAssertEqual(arp.src, vsMAC)
        XCTAssertEqual(arp.arpSenderIP, ipv4("10.99.0.1"))

        XCTAssertTrue(try tap.send(arpFrame(op: 2, srcMAC: peerMAC, dstMAC: vsMAC, senderIP: "10.99.0.3",
                                            targetMAC: vsMAC, targetIP: "10.99.0.1")))
        let echo = try XCTUnwrap(try tap.awaitFrame { $0.isICMPEchoRequest }, "no ICMP echo request after the ARP reply")
        XCTAssertEqual(echo.dst, peerMAC)
        XCTAssertEqual(echo.ipDestination, ipv4("10.99.0.3"))
        XCTAssertTrue(try tap.send(echo.echoReply(from: peerMAC)))
        ping.waitUntilExit()
        XCTAssertEqual(ping.terminationStatus, 0, "ping from the namespace must get our crafted echo reply")
    }

    func testAttachUndoesEverythingWhenAStepFails() throws {
        let tapName = uniqueLinkName()
        let tap = track(try TapDevice.create(name: tapName))
        let index = Netlink.interfaceIndex(tapName)
        let ns = uniqueNamespace()
        let error = systemError {
            try VirtualSystemProvisioner.attach(tapName: tapName, to: VirtualSystemSpec(
                namespace: ns, interfaceName: "eth0", mac: vsMAC, mtu: 70000, addresses: ["10.99.0.1/24"]))
        }
        XCTAssertEqual(error?.errno, EINVAL)
        XCTAssertTrue(error?.description.hasPrefix("cannot set MTU of \"eth0\" to 70000 in network namespace \"\(ns)\": ") ?? false,
                      error?.description ?? "")
        XCTAssertFalse(NetworkNamespace.exists(ns), "the namespace made by attach must be gone")
        XCTAssertFalse(try ip(["netns", "list"]).stdout.contains(ns))
        XCTAssertTrue(Netlink.linkExists(tapName), "the TAP must be back in the root namespace under its old name")
        XCTAssertEqual(Netlink.interfaceIndex(tapName), index)

        // …and still usable: a second attach succeeds.
        try VirtualSystemProvisioner.attach(tapName: tapName, to: VirtualSystemSpec(namespace: ns, interfaceName: "eth0"))
        XCTAssertEqual(try Netlink.link("eth0", inNamespace: ns)?.isOperational, true)
        _ = tap
    }

    func testAttachRefusesBadInputWithoutTouchingAnything() throws {
        let tapName = uniqueLinkName()
        _ = track(try TapDevice.create(name: tapName))
        let ns = uniqueNamespace()

        let badAddress = systemError {
            try VirtualSystemProvisioner.attach(tapName: tapName, to: VirtualSystemSpec(
                namespace: ns, interfaceName: "eth0", addresses: ["10.99.0.300/24"]))
        }
        XCTAssertEqual(badAddress?.errno, EINVAL)
        XCTAssertTrue(badAddress?.description.contains("not an IPv4 or IPv6 address") ?? false, badAddress?.description ?? "")
        XCTAssertFalse(NetworkNamespace.exists(ns))

        let noNamespace = systemError {
            try VirtualSystemProvisioner.attach(tapName: tapName, to: VirtualSystemSpec(namespace: ns, interfaceName: "eth0"),
                                                createNamespace: false)
        }
        XCTAssertEqual(noNamespace?.errno, ENOENT)

        let missingTap = uniqueLinkName()
        XCTAssertEqual(systemError {
            try VirtualSystemProvisioner.attach(tapName: missingTap, to: VirtualSystemSpec(namespace: ns, interfaceName: "eth0"))
        }?.errno, ENODEV)

        // An existing namespace is neither reused nor deleted when createNamespace is true.
        try NetworkNamespace.create(ns)
        let exists = systemError {
            try VirtualSystemProvisioner.attach(tapName: tapName, to: VirtualSystemSpec(namespace: ns, interfaceName: "eth0"))
        }
        XCTAssertEqual(exists?.errno, EEXIST)
        XCTAssertTrue(NetworkNamespace.exists(ns))
        XCTAssertTrue(Netlink.linkExists(tapName))

        // With createNamespace: false it is used as it is.
        try VirtualSystemProvisioner.attach(tapName: tapName, to: VirtualSystemSpec(
            namespace: ns, interfaceName: "veth9", addresses: ["fd00:99::1/64"]), createNamespace: false)
        let addr = try ipJSON(["-n", ns, "addr", "show", "dev", "veth9"]).first
        let inet6 = (addr?["addr_info"] as? [[String: Any]] ?? []).compactMap { $0["local"] as? String }
        XCTAssertTrue(inet6.contains("fd00:99::1"), "\(inet6)")
    }

    func testTeardownDeletesTheNamespaceAndTheTapNetdev() throws {
        let (tap, ns) = try provisioned()
        let index = try XCTUnwrap(Netlink.interfaceIndex("eth0", inNamespace: ns))
        VirtualSystemProvisioner.teardown(namespace: ns)
        XCTAssertFalse(NetworkNamespace.exists(ns))
        XCTAssertFalse(try ip(["netns", "list"]).stdout.contains(ns))
        VirtualSystemProvisioner.teardown(namespace: ns) // a missing namespace is fine
        // The namespace dies asynchronously; with it, the kernel unregisters the TAP netdev
        // even though our fd is still open (tun has rtnl_link_ops, so it is deleted, not
        // returned to the root namespace).
        XCTAssertTrue(eventually(3) { !Netlink.linkExists(tap.name) && !self.rootHasIndex(index) })
        // The fd stays open but is detached: writes fail with EBADFD.
        XCTAssertTrue(eventually(3) { (try? tap.send(arpFrame(op: 1, srcMAC: self.peerMAC, dstMAC: .broadcast, senderIP: "10.99.0.2",
                                                               targetMAC: .zero, targetIP: "10.99.0.1"))) == nil })
        let error = systemError { _ = try tap.send([UInt8](repeating: 0xFF, count: 60)) }
        XCTAssertEqual(error?.errno, EBADFD, error?.description ?? "")
        tap.close()
    }

    func testConfigureAndLinkSettersInsideANamespace() throws {
        let tapName = uniqueLinkName()
        _ = track(try TapDevice.create(name: tapName))
        let ns = uniqueNamespace()
        try NetworkNamespace.create(ns)
        try Netlink.moveLink(tapName, toNamespace: ns)
        XCTAssertFalse(Netlink.linkExists(tapName))
        XCTAssertTrue(Netlink.linkExists(tapName, inNamespace: ns))
        XCTAssertEqual(Netlink.operState(tapName, inNamespace: ns), .down, "a moved link arrives down")

        try Netlink.configure(LinkConfig(name: tapName, newName: "uplink", mac: vsMAC, mtu: 9000, up: true,
                                         addresses: ["10.98.0.1/16", "10.98.0.2/16"]), inNamespace: ns)
        var info = try XCTUnwrap(try Netlink.link("uplink", inNamespace: ns))
        XCTAssertEqual(info.mtu, 9000)
        XCTAssertEqual(info.mac, vsMAC)
        XCTAssertTrue(info.isUp)
        XCTAssertTrue(try ipJSON(["-n", ns, "link", "show", "dev", "lo"]).first.map { ($0["flags"] as? [String] ?? []).contains("UP") } ?? false)
        // Re-applying is harmless (addresses already present are kept); renaming while up works.
        try Netlink.configure(LinkConfig(name: "uplink", newName: "up2", addresses: ["10.98.0.1/16"]), inNamespace: ns)
        info = try XCTUnwrap(try Netlink.link("up2", inNamespace: ns))
        XCTAssertTrue(info.isUp, "a rename must restore the admin state")
        let locals = (try ipJSON(["-n", ns, "addr", "show", "dev", "up2"]).first?["addr_info"] as? [[String: Any]] ?? [])
            .filter { $0["family"] as? String == "inet" }.compactMap { $0["local"] as? String }
        XCTAssertEqual(Set(locals), ["10.98.0.1", "10.98.0.2"])

        try Netlink.setMTU("up2", 1280, inNamespace: ns)
        try Netlink.setUp("up2", false, inNamespace: ns)
        info = try XCTUnwrap(try Netlink.link("up2", inNamespace: ns))
        XCTAssertEqual(info.mtu, 1280)
        XCTAssertFalse(info.isUp)
        XCTAssertEqual(info.operState, .down)

        // Errors name the link, the namespace, and the reason.
        XCTAssertEqual(systemError { try Netlink.setUp("nope0", true, inNamespace: ns) }?.description,
                       "cannot bring up link \"nope0\" in network namespace \"\(ns)\": no such interface (ENODEV)")
        XCTAssertEqual(systemError { try Netlink.configure(LinkConfig(name: "up2", newName: "lo"), inNamespace: ns) }?.description,
                       "cannot rename link \"up2\" to \"lo\" in network namespace \"\(ns)\": an interface named \"lo\" already exists (EEXIST)")
        let tooSmall = systemError { try Netlink.setMTU("up2", 10, inNamespace: ns) }
        XCTAssertEqual(tooSmall?.errno, EINVAL)
        XCTAssertTrue(tooSmall?.description.hasPrefix("cannot set MTU of \"up2\" to 10 in network namespace \"\(ns)\": ") ?? false,
                      tooSmall?.description ?? "")
        XCTAssertEqual(systemError { try Netlink.moveLink("lo", toNamespace: uniqueName("x")) }?.errno, ENOENT)

        try Netlink.deleteLink("up2", inNamespace: ns)
        XCTAssertFalse(Netlink.linkExists("up2", inNamespace: ns))
    }

    // MARK: helpers

    private func rxPackets(_ ns: String) throws -> Int {
        let link = try ipJSON(["-n", ns, "-s", "link", "show", "dev", "eth0"]).first
        let rx = ((link?["stats64"] as? [String: Any])?["rx"] as? [String: Any])?["packets"] as? Int
        return try XCTUnwrap(rx, "no rx counter in \(String(describing: link))")
    }

    private func rootHasIndex(_ index: Int32) -> Bool {
        var buffer = [CChar](repeating: 0, count: Int(IF_NAMESIZE))
        return if_indextoname(UInt32(index), &buffer) != nil
    }
}

/// Reads /proc/sys/KEY as the calling thread sees it.
func sysctl(_ key: String) throws -> String {
    try String(contentsOfFile: "/proc/sys/" + key, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
}
