"""Port profiles on the wire (issue 3), part 4: Dot1Q tunnel (DesiredVLANEndpointMode 6, QinQ).
Topology vswt-pf-qinq.xml: two tunnel ports of S-VLAN 76 (DefaultPriority 2), a trunk carrying
76 and 77, an access port in 77. Frames from a tunnel port keep the customer's tags; on the
trunk they carry an outer 802.1ad tag (TPID 0x88A8, VID 76) in front of them, which is removed
again on the way back to a tunnel port."""

import pytest
from scapy.layers.l2 import Dot1AD, Dot1Q, Ether
from scapy.packet import Raw

import checks
from checks import expect_frames, expect_tagged
from harness import TEST_ETHERTYPE, frame, new_token

TUN, TN2, TRK, A77 = "vswt-pq-tun", "vswt-pq-tn2", "vswt-pq-trk", "vswt-pq-a77"
ALL = [TUN, TN2, TRK, A77]


@pytest.fixture(scope="module")
def d(vswitch_shared):
    return vswitch_shared("vswt-pf-qinq.xml")


def layers(pkt):
    """[(tpid, vid, pcp)] of the tags in order, then the final EtherType."""
    out = []
    tpid = pkt[Ether].type
    p = pkt[Ether].payload
    while tpid in (0x8100, 0x88A8):
        out.append((tpid, p.vlan, p.prio))
        tpid = p.type
        p = p.payload
    return out, tpid


def customer(src, token, cvid=100, pcp=3, dst="ff:ff:ff:ff:ff:ff"):
    return frame(src, dst=dst, vlan=cvid, prio=pcp, token=token)


def test_qinq_push_at_the_trunk(d):
    tun = d.vs(TUN)
    tc, tu = new_token(), new_token()
    before = d.stats()
    with d.capture(TN2, TRK, A77) as cap:
        d.send(TUN, customer(tun.mac, tc), frame(tun.mac, token=tu))
    after = d.stats()
    got = expect_frames(cap, TRK, tc, 1, "customer-tagged frame at the trunk", ALL)[0]
    tags, et = layers(got)
    assert tags == [(0x88A8, 76, 2), (0x8100, 100, 3)] and et == TEST_ETHERTYPE, (
        "trunk: expected S-tag 0x88A8 VID 76 PCP 2 (DefaultPriority) then the customer's 0x8100 VID 100 PCP 3, "
        "got %s, EtherType %#x: %s" % (tags, et, got.summary()))
    assert len(bytes(got)) == 64 + 4, "one 4-byte S-tag added to the 64-byte customer frame: %d" % len(bytes(got))
    got = expect_frames(cap, TRK, tu, 1, "untagged customer frame at the trunk", ALL)[0]
    tags, et = layers(got)
    assert tags == [(0x88A8, 76, 2)] and et == TEST_ETHERTYPE, "untagged customer frame on the trunk: %s" % tags
    # The other tunnel port of the same S-VLAN gets the customer frames as they were sent.
    got = expect_frames(cap, TN2, tc, 1, "customer frame at the other tunnel port", ALL)[0]
    assert layers(got) == ([(0x8100, 100, 3)], TEST_ETHERTYPE), layers(got)
    got = expect_frames(cap, TN2, tu, 1, "untagged customer frame at the other tunnel port", ALL)[0]
    assert layers(got) == ([], TEST_ETHERTYPE), layers(got)
    expect_frames(cap, A77, tc, 0, "S-VLAN 76 frame leaked into VLAN 77", ALL)
    assert checks.total_drops(after, TUN) == checks.total_drops(before, TUN), checks.counters_text(after, ALL)
    st = d.stats()
    assert [(r["port"], r["vlan"]) for r in d.mac_entries(st, tun.mac)] == [(TUN, 76)], st["mac_table"]


def test_qinq_pop_at_the_tunnel_port(d):
    trk = d.vs(TRK)
    t1, t2 = new_token(), new_token()
    stagged = bytes(Ether(src=trk.mac, dst="ff:ff:ff:ff:ff:ff", type=0x88A8) / Dot1AD(vlan=76, prio=4, type=0x8100)
                    / Dot1Q(vlan=200, prio=5, type=TEST_ETHERTYPE) / Raw(load=t1 + bytes(26)))
    before = d.stats()
    with d.capture(TUN, TN2, A77) as cap:
        d.send(TRK, stagged, frame(trk.mac, vlan=77, token=t2))
    after = d.stats()
    for port in (TUN, TN2):
        got = expect_frames(cap, port, t1, 1, "S-tagged trunk frame at tunnel port %s" % port, ALL)[0]
        tags, et = layers(got)
        assert tags == [(0x8100, 200, 5)] and et == TEST_ETHERTYPE, (
            "%s: expected only the customer tag 0x8100 VID 200 PCP 5, got %s: %s" % (port, tags, got.summary()))
        assert len(bytes(got)) == len(stagged) - 4, "S-tag removed: %d -> %d bytes" % (len(stagged), len(bytes(got)))
        expect_frames(cap, port, t2, 0, "VLAN-77 frame leaked into the tunnel", ALL)
    expect_frames(cap, A77, t1, 0, "S-VLAN 76 frame leaked into VLAN 77", ALL)
    expect_frames(cap, A77, t2, 1, "VLAN-77 frame at the access port", ALL)
    assert checks.total_drops(after, TRK) == checks.total_drops(before, TRK), checks.counters_text(after, ALL)


def test_ordinary_vlan_on_the_same_trunk_keeps_802_1q(d):
    a77 = d.vs(A77)
    tok = new_token()
    with d.capture(TRK, TUN) as cap:
        d.send(A77, frame(a77.mac, token=tok))
    expect_tagged(expect_frames(cap, TRK, tok, 1, "VLAN-77 frame at the trunk", ALL)[0], 77, "C-VLAN 77 on the trunk")
    assert expect_frames(cap, TRK, tok, 1, "VLAN-77 frame at the trunk", ALL)[0][Ether].type == 0x8100
    expect_frames(cap, TUN, tok, 0, "VLAN-77 frame leaked into the tunnel", ALL)
