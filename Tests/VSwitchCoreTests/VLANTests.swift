import VSwitchCore
import VSwitchPacket
import VSwitchPolicy
import XCTest

/// port-profile.md "How a frame is treated", row by row.
final class VLANTests: XCTestCase {
    // 0: access 10, 1: access 10, 2: trunk 10,20 tagged-only, 3: trunk 10,20,30 native 30, 4: access 20
    func makeSwitch(nativeTagged: Bool = false, defaultPriority: UInt8 = 0) -> TestSwitch {
        var native = PortPolicy.trunk([10, 20, 30], native: 30, nativeTagged: nativeTagged)
        native.defaultPriority = defaultPriority
        var access = PortPolicy.access(10)
        access.defaultPriority = defaultPriority
        return TestSwitch([PortSpec(index: 0, policy: access), PortSpec(index: 1, policy: .access(10)),
                           PortSpec(index: 2, policy: .trunk([10, 20], taggedOnly: true)),
                           PortSpec(index: 3, policy: native), PortSpec(index: 4, policy: .access(20))])
    }

    func testAccessUntaggedIngressJoinsPortVIDAndIsTaggedOnTrunks() {
        let sw = makeSwitch()
        let out = sw.inject(0, [frame(dst: bcast, src: macA)])
        XCTAssertEqual(Set(out.keys), [1, 2, 3])
        XCTAssertEqual(Wire(out[1]![0]).tags, [], "access egress is untagged")
        XCTAssertEqual(Wire(out[2]![0]).tags, [tag(10)])
        XCTAssertEqual(Wire(out[3]![0]).tags, [tag(10)])
        XCTAssertEqual(Wire(out[2]![0]).payload, 46, "payload untouched")
    }

    func testAccessPriorityTaggedIngressKeepsPCP() {
        let sw = makeSwitch()
        let out = sw.inject(0, [frame(dst: bcast, src: macA, tags: [(0x8100, 0, 5)])])
        XCTAssertEqual(Wire(out[1]![0]).tags, [])
        XCTAssertEqual(Wire(out[2]![0]).tags, [tag(10, pcp: 5)])
    }

    func testAccessTaggedIngress() {
        let sw = makeSwitch()
        let out = sw.inject(0, [frame(dst: bcast, src: macA, tags: [(0x8100, 10, 0)]),
                                frame(dst: bcast, src: macB, tags: [(0x8100, 20, 0)])])
        XCTAssertEqual(out[1]?.count, 1, "own VID admitted")
        XCTAssertEqual(Wire(out[1]![0]).tags, [])
        XCTAssertEqual(sw.counters(0).drops(.vlanNotAllowed), 1, "other VID dropped")
        XCTAssertEqual(out[4] ?? [], [])
    }

    func testTrunkTaggedIngressOnlyForTrunkedVIDs() {
        let sw = makeSwitch()
        let out = sw.inject(2, [frame(dst: bcast, src: macA, tags: [(0x8100, 20, 2)]),
                                frame(dst: bcast, src: macB, tags: [(0x8100, 30, 0)])])
        XCTAssertEqual(Set(out.keys), [3, 4])
        XCTAssertEqual(Wire(out[4]![0]).tags, [], "access 20 gets it untagged")
        XCTAssertEqual(Wire(out[3]![0]).tags, [tag(20, pcp: 2)], "trunk keeps VID and PCP")
        XCTAssertEqual(sw.counters(2).drops(.vlanNotAllowed), 1, "30 is not trunked on port 2")
    }

    func testTaggedOnlyTrunkDropsUntagged() {
        let sw = makeSwitch()
        let out = sw.inject(2, [frame(dst: bcast, src: macA)])
        XCTAssertTrue(out.isEmpty)
        XCTAssertEqual(sw.counters(2).drops(.untaggedNotAllowed), 1)
    }

    func testTrunkWithoutNativeVLANDropsUntagged() {
        let sw = TestSwitch([PortSpec(index: 0, policy: .trunk([10])), PortSpec(index: 1, policy: .access(10))])
        sw.inject(0, [frame(dst: bcast, src: macA)])
        XCTAssertEqual(sw.counters(0).drops(.untaggedNotAllowed), 1)
    }

    func testTrunkNativeVLANUntaggedBothWays() {
        let sw = makeSwitch()
        // Untagged on the trunk joins native VLAN 30 (only port 3 carries 30: nothing else to flood to).
        let sw2 = TestSwitch([PortSpec(index: 0, policy: .trunk([10, 30], native: 30)), PortSpec(index: 1, policy: .access(30)),
                              PortSpec(index: 2, policy: .trunk([30], native: 10))])
        var out = sw2.inject(0, [frame(dst: bcast, src: macA)])
        XCTAssertEqual(Wire(out[1]![0]).tags, [])
        XCTAssertEqual(Wire(out[2]![0]).tags, [tag(30)], "30 is not port 2's native VLAN")
        out = sw2.inject(1, [frame(dst: bcast, src: macB)])
        XCTAssertEqual(Wire(out[0]![0]).tags, [], "native VLAN leaves untagged")
        // Tagged with the native VID is admitted too.
        out = sw.inject(3, [frame(dst: bcast, src: macC, tags: [(0x8100, 30, 0)])])
        XCTAssertTrue(out.isEmpty)
        XCTAssertEqual(sw.counters(3).totalDrops, 0)
    }

    func testNativeVLANEgressTagged() {
        let sw = TestSwitch([PortSpec(index: 0, policy: .access(30)),
                             PortSpec(index: 1, policy: .trunk([10], native: 30, nativeTagged: true))])
        let out = sw.inject(0, [frame(dst: bcast, src: macA)])
        XCTAssertEqual(Wire(out[1]![0]).tags, [tag(30)])
    }

    func testDefaultPriorityOnFramesTheSwitchTags() {
        let sw = makeSwitch(defaultPriority: 3)
        let out = sw.inject(0, [frame(dst: bcast, src: macA)])
        XCTAssertEqual(Wire(out[2]![0]).tags, [tag(10, pcp: 3)])
    }

    func testPriorityNotAllowedIsRemarkedOrDropped() {
        var remark = PortPolicy.trunk([10])
        remark.allowedPriorityMask = 0b0000_0011
        remark.defaultPriority = 1
        var strict = remark
        strict.dropPriorityViolations = true
        let sw = TestSwitch([PortSpec(index: 0, policy: remark), PortSpec(index: 1, policy: strict),
                             PortSpec(index: 2, policy: .trunk([10]))])
        var out = sw.inject(0, [frame(dst: bcast, src: macA, tags: [(0x8100, 10, 6)])])
        XCTAssertEqual(Wire(out[2]![0]).tags, [tag(10, pcp: 1)])
        out = sw.inject(1, [frame(dst: bcast, src: macB, tags: [(0x8100, 10, 6)]), frame(dst: bcast, src: macB, tags: [(0x8100, 10, 0)])])
        XCTAssertEqual(out[2]?.count, 1)
        XCTAssertEqual(sw.counters(1).drops(.priorityNotAllowed), 1)
    }

    func testTunnelPortKeepsCustomerTagsInsideItsVLAN() {
        let sw = TestSwitch([PortSpec(index: 0, policy: .tunnel(50)), PortSpec(index: 1, policy: .trunk([50])),
                             PortSpec(index: 2, policy: .tunnel(50)), PortSpec(index: 3, policy: .tunnel(60))])
        let customer = frame(dst: bcast, src: macA, tags: [(0x8100, 100, 0)])
        let out = sw.inject(0, [customer])
        XCTAssertEqual(Set(out.keys), [1, 2])
        XCTAssertEqual(out[2]![0], customer, "tunnel to tunnel: identical")
        XCTAssertEqual(Wire(out[1]![0]).tags, [tag(50, tpid: 0x88A8), tag(100)], "outer 802.1ad S-tag pushed on the trunk")
    }

    func testVLANIsolation() {
        let sw = makeSwitch()
        sw.inject(4, [frame(dst: bcast, src: macD)])   // learn D in VLAN 20 on port 4
        let out = sw.inject(0, [frame(dst: macD, src: macA)])
        XCTAssertNil(out[4], "VLAN 10 frame never reaches a VLAN 20 port")
    }

    func testCompiledProfile() {
        var p = PortProfile(id: "urn:x", elementName: "x", instanceID: "o:x")
        p.desiredVLANEndpointMode = .trunk
        p.trunkedVLANs = [10, 20]
        p.portVID = 30
        p.acceptableFrameTypes = .all
        p.nativeVLANEgressTagged = true
        p.defaultPriority = 4
        p.allowedPriorities = [0, 4]
        let c = PolicyCompiler.compile(p)
        XCTAssertEqual(c.mode, .trunk)
        XCTAssertEqual(c.pvid, 30)
        XCTAssertEqual(c.vlans.members, [10, 20, 30])
        XCTAssertTrue(c.acceptUntagged)
        XCTAssertTrue(c.nativeEgressTagged)
        XCTAssertEqual(c.allowedPriorityMask, 0b0001_0001)
        XCTAssertEqual(c.egressTag(vlan: 30, pcp: 4), tag(30, pcp: 4))

        var a = PortProfile(id: "urn:y", elementName: "y", instanceID: "o:y")
        a.defaultPortVID = 7
        XCTAssertEqual(PolicyCompiler.compile(a), .access(7))
        a.portVID = 8
        XCTAssertEqual(PolicyCompiler.compile(a).pvid, 8, "PortVID wins over DefaultPortVID")
        a.desiredVLANEndpointMode = .trunk
        a.trunkedVLANs = [5]
        a.acceptableFrameTypes = .taggedOnly
        XCTAssertFalse(PolicyCompiler.compile(a).acceptUntagged)
    }
}
