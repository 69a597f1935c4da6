"""VLANs on the wire: isolation between access VLANs, trunk tagging (push / pop / native /
PCP), and the VLAN drop reasons. Tagged frames are crafted with scapy (the kernel here has no
802.1Q module) and observed by captures inside the receiving namespaces."""


import checks
from checks import expect_frames, expect_tagged, expect_untagged
from harness import frame, new_token

# --- 2. VLAN isolation --------------------------------------------------------------------------

ISO = ["vswt-i-a10", "vswt-i-a20", "vswt-i-b20", "vswt-i-trk"]


def test_vlan_isolation(vswitch):
    d = vswitch("vswt-iso.xml")
    A10, A20, B20, TRK = ISO
    a10, a20, b20, trk = (d.vs(p) for p in ISO)

    # Same IP subnet, different VLANs: no reachability. Same VLAN: reachable (control).
    r = d.ping(A10, a20.ip, count=2)
    assert r.returncode != 0, "VLAN 10 -> VLAN 20 ping succeeded:\n" + r.stdout
    r = d.ping(A20, b20.ip)
    assert r.returncode == 0, "VLAN 20 -> VLAN 20 ping failed:\n" + r.stdout + r.stderr

    # A broadcast sent untagged in VLAN 20 reaches VLAN 20 (and the trunk, tagged 20), never VLAN 10.
    tok = new_token()
    with d.capture(A10, B20, TRK) as cap:
        d.send(A20, frame(a20.mac, token=tok))
    expect_untagged(expect_frames(cap, B20, tok, 1, "VLAN-20 broadcast at the other VLAN-20 port", ISO)[0], "at B20")
    expect_tagged(expect_frames(cap, TRK, tok, 1, "VLAN-20 broadcast at the trunk", ISO)[0], 20, "at the trunk")
    expect_frames(cap, A10, tok, 0, "VLAN-20 broadcast leaked into VLAN 10", ISO)

    # A broadcast tagged 20 entering on the trunk: both VLAN-20 ports, untagged; not VLAN 10.
    tok = new_token()
    with d.capture(A10, A20, B20) as cap:
        d.send(TRK, frame(trk.mac, vlan=20, token=tok))
    for p in (A20, B20):
        expect_untagged(expect_frames(cap, p, tok, 1, "trunk VID-20 broadcast at %s" % p, ISO)[0], "at " + p)
    expect_frames(cap, A10, tok, 0, "trunk VID-20 broadcast leaked into VLAN 10", ISO)

    # Unicast from VLAN 20 to the MAC of the VLAN-10 system (learned in VLAN 10 by its ARP
    # requests above): independent VLAN learning, so it is unknown in VLAN 20 and stays there.
    st = d.stats()
    assert [(r["port"], r["vlan"]) for r in d.mac_entries(st, a10.mac)] == [(A10, 10)], st["mac_table"]
    tok = new_token()
    with d.capture(A10, B20, TRK) as cap:
        d.send(A20, frame(a20.mac, dst=a10.mac, token=tok))
    expect_frames(cap, A10, tok, 0, "VLAN-20 unicast to the VLAN-10 MAC crossed VLANs", ISO)
    expect_frames(cap, B20, tok, 1, "VLAN-20 unicast to a MAC unknown in VLAN 20 is flooded in VLAN 20", ISO)

    # Control: the VLAN-10 system does receive VLAN-10 traffic (its capture works).
    tok = new_token()
    with d.capture(A10, A20, B20) as cap:
        d.send(TRK, frame(trk.mac, vlan=10, token=tok))
    expect_untagged(expect_frames(cap, A10, tok, 1, "trunk VID-10 broadcast at the VLAN-10 port", ISO)[0], "at A10")
    expect_frames(cap, A20, tok, 0, "trunk VID-10 broadcast leaked into VLAN 20", ISO)
    expect_frames(cap, B20, tok, 0, "trunk VID-10 broadcast leaked into VLAN 20", ISO)


# --- 3. trunk tagging -----------------------------------------------------------------------------

A10, A20, A30, TRK, TGO = "vswt-t-a10", "vswt-t-a20", "vswt-t-a30", "vswt-t-trk", "vswt-t-tgo"
TRUNK_PORTS = [A10, A20, A30, TRK, TGO]


def test_access_to_trunk_is_tagged_with_vid_and_default_priority(vswitch):
    d = vswitch("vswt-trunk.xml")
    tok = new_token()
    with d.capture(A20, A30, TRK, TGO) as cap:
        d.send(A10, frame(d.vs(A10).mac, token=tok))
    # The access-10 profile has DefaultPriority 5: the tag the switch pushes carries PCP 5.
    expect_tagged(expect_frames(cap, TRK, tok, 1, "access-10 broadcast at the trunk", TRUNK_PORTS)[0],
                  10, "access-10 frame on the trunk", pcp=5)
    expect_tagged(expect_frames(cap, TGO, tok, 1, "access-10 broadcast at the tagged-only trunk", TRUNK_PORTS)[0],
                  10, "access-10 frame on the tagged-only trunk", pcp=5)
    expect_frames(cap, A20, tok, 0, "access-10 broadcast leaked into VLAN 20", TRUNK_PORTS)
    expect_frames(cap, A30, tok, 0, "access-10 broadcast leaked into VLAN 30", TRUNK_PORTS)


def test_trunk_tagged_frame_arrives_untagged_at_access(vswitch):
    d = vswitch("vswt-trunk.xml")
    tok = new_token()
    with d.capture(A10, A20, A30, TGO) as cap:
        d.send(TRK, frame(d.vs(TRK).mac, vlan=20, prio=3, token=tok))
    got = expect_frames(cap, A20, tok, 1, "trunk VID-20 frame at access-20", TRUNK_PORTS)[0]
    expect_untagged(got, "trunk VID-20 frame at access-20")
    assert got.type == 0x88B5 and len(bytes(got)) == 60, got.summary()  # 64 - 4-byte tag popped
    expect_tagged(expect_frames(cap, TGO, tok, 1, "trunk VID-20 frame at the other trunk", TRUNK_PORTS)[0],
                  20, "VID 20 trunk to trunk")
    expect_frames(cap, A10, tok, 0, "VID-20 frame leaked into VLAN 10", TRUNK_PORTS)
    expect_frames(cap, A30, tok, 0, "VID-20 frame leaked into native VLAN 30", TRUNK_PORTS)


def test_trunk_untagged_frame_goes_to_native_vlan(vswitch):
    d = vswitch("vswt-trunk.xml")
    tok = new_token()
    with d.capture(A10, A20, A30, TGO) as cap:
        d.send(TRK, frame(d.vs(TRK).mac, token=tok))
    expect_untagged(expect_frames(cap, A30, tok, 1, "untagged trunk frame at access-30 (native)", TRUNK_PORTS)[0],
                    "native VLAN at access-30")
    # The tagged-only trunk has NativeVLANEgressTagged=true: VLAN 30 leaves it tagged.
    expect_tagged(expect_frames(cap, TGO, tok, 1, "native-VLAN frame at the tagged-only trunk", TRUNK_PORTS)[0],
                  30, "native VLAN with NativeVLANEgressTagged")
    expect_frames(cap, A10, tok, 0, "untagged trunk frame leaked into VLAN 10", TRUNK_PORTS)
    expect_frames(cap, A20, tok, 0, "untagged trunk frame leaked into VLAN 20", TRUNK_PORTS)


def test_native_vlan_leaves_trunk_untagged(vswitch):
    d = vswitch("vswt-trunk.xml")
    tok = new_token()
    with d.capture(A10, A20, TRK, TGO) as cap:
        d.send(A30, frame(d.vs(A30).mac, token=tok))
    expect_untagged(expect_frames(cap, TRK, tok, 1, "access-30 frame at the trunk (native 30)", TRUNK_PORTS)[0],
                    "native VLAN 30 on the trunk")
    expect_tagged(expect_frames(cap, TGO, tok, 1, "access-30 frame at the tagged-only trunk", TRUNK_PORTS)[0],
                  30, "native VLAN 30 with NativeVLANEgressTagged")
    expect_frames(cap, A10, tok, 0, "VLAN-30 frame leaked into VLAN 10", TRUNK_PORTS)
    expect_frames(cap, A20, tok, 0, "VLAN-30 frame leaked into VLAN 20", TRUNK_PORTS)


def test_trunk_drops_vid_not_trunked(vswitch):
    d = vswitch("vswt-trunk.xml")
    before = d.stats()
    tok = new_token()
    with d.capture(A10, A20, A30, TGO) as cap:
        d.send(TRK, *[frame(d.vs(TRK).mac, vlan=40, token=tok)] * 3)
    for p in (A10, A20, A30, TGO):
        expect_frames(cap, p, tok, 0, "frame tagged 40 (not trunked) delivered", TRUNK_PORTS)
    after = d.stats()
    assert checks.drop_delta(before, after, TRK, "vlan-not-allowed") == 3, checks.counters_text(after, TRUNK_PORTS)
    assert checks.total_drops(after, TRK) - checks.total_drops(before, TRK) == 3, checks.counters_text(after, TRUNK_PORTS)


def test_access_port_drops_other_vid(vswitch):
    d = vswitch("vswt-trunk.xml")
    before = d.stats()
    tok = new_token()
    with d.capture(A20, A30, TRK, TGO) as cap:
        d.send(A10, frame(d.vs(A10).mac, vlan=20, token=tok), frame(d.vs(A10).mac, vlan=10 + 1, token=tok))
    for p in (A20, A30, TRK, TGO):
        expect_frames(cap, p, tok, 0, "tagged frame with a foreign VID from an access port delivered", TRUNK_PORTS)
    after = d.stats()
    assert checks.drop_delta(before, after, A10, "vlan-not-allowed") == 2, checks.counters_text(after, TRUNK_PORTS)
    assert checks.total_drops(after, A10) - checks.total_drops(before, A10) == 2, checks.counters_text(after, TRUNK_PORTS)


def test_access_port_accepts_priority_tagged(vswitch):
    """Priority-tagged (VID 0) ingress on an access port is classified to its PortVID."""
    d = vswitch("vswt-trunk.xml")
    tok = new_token()
    with d.capture(A20, TRK) as cap:
        d.send(A10, frame(d.vs(A10).mac, vlan=0, prio=6, token=tok))
    expect_tagged(expect_frames(cap, TRK, tok, 1, "priority-tagged access-10 frame at the trunk", TRUNK_PORTS)[0],
                  10, "priority-tagged frame classified to VLAN 10")
    expect_frames(cap, A20, tok, 0, "priority-tagged access-10 frame leaked into VLAN 20", TRUNK_PORTS)


def test_tagged_only_trunk_drops_untagged(vswitch):
    d = vswitch("vswt-trunk.xml")
    tgo = d.vs(TGO)
    before = d.stats()
    tok = new_token()
    with d.capture(A10, A20, A30, TRK) as cap:
        d.send(TGO, frame(tgo.mac, token=tok), frame(tgo.mac, token=tok))
    for p in (A10, A20, A30, TRK):
        expect_frames(cap, p, tok, 0, "untagged frame from a tagged-only trunk delivered", TRUNK_PORTS)
    after = d.stats()
    assert checks.drop_delta(before, after, TGO, "untagged-not-allowed") == 2, checks.counters_text(after, TRUNK_PORTS)
    assert checks.total_drops(after, TGO) - checks.total_drops(before, TGO) == 2, checks.counters_text(after, TRUNK_PORTS)

    # Control: the same port forwards tagged frames of its trunked VLANs.
    tok = new_token()
    with d.capture(A10, TRK) as cap:
        d.send(TGO, frame(tgo.mac, vlan=10, token=tok))
    expect_untagged(expect_frames(cap, A10, tok, 1, "VID-10 frame from the tagged-only trunk at access-10",
                                  TRUNK_PORTS)[0], "at access-10")
    expect_tagged(expect_frames(cap, TRK, tok, 1, "VID-10 frame from the tagged-only trunk at the trunk",
                                TRUNK_PORTS)[0], 10, "trunk to trunk")
