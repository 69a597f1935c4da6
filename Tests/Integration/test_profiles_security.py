"""Port profiles on the wire (issue 3), part 1: source-MAC anti-spoofing with AllowedToTransmit
pairs, DHCP and router guards, the AllowedToReceive list, Promiscuous, AllowedPriorities with
both PriorityViolationActions, and MaxNumMACAddress with both MACLimitActions.

One daemon on topologies/vswt-pf-sec.xml (profiles in vswt-pf-profiles.xml) serves the whole
module; each test sends frames crafted with scapy from one namespace, captures in the others,
and checks the exact drop counter deltas of the ports it uses."""

import pytest
from scapy.layers.inet import ICMP, IP, UDP
from scapy.layers.inet6 import ICMPv6ND_NS, ICMPv6ND_RA, ICMPv6ND_Redirect, IPv6

import checks
from checks import expect_frames, expect_tagged, expect_untagged, expect_verdicts, l3frame
from harness import frame, new_token

TOPO = "vswt-pf-sec.xml"
SRC, PEER, TRK, RCV, PRM, PDR, PRR, MLD, MLF, A72 = (
    "vswt-ps-src", "vswt-ps-peer", "vswt-ps-trk", "vswt-ps-rcv", "vswt-ps-prm", "vswt-ps-pdr", "vswt-ps-prr",
    "vswt-ps-mld", "vswt-ps-mlf", "vswt-ps-a72")
ALL = [SRC, PEER, TRK, RCV, PRM, PDR, PRR, MLD, MLF, A72]
BCAST = "ff:ff:ff:ff:ff:ff"


@pytest.fixture(scope="module")
def d(vswitch_shared):
    return vswitch_shared(TOPO)


def deltas(before, after, port, *reasons):
    return {r: checks.drop_delta(before, after, port, r) for r in reasons}


def test_spoofed_source_dropped_and_listed_pair_passes(d):
    own = d.vs(SRC).mac
    cases = [("own MAC", own, True),
             ("AllowedToTransmit (…:aa, VID 71)", "02:77:71:00:00:aa", True),
             ("AllowedToTransmit (…:bb) is for VID 72", "02:77:71:00:00:bb", False),
             ("unlisted …:cc", "02:77:71:00:00:cc", False)]
    toks = [(label, new_token(), ok) for label, _, ok in cases]
    before = d.stats()
    with d.capture(PEER, TRK) as cap:
        d.send(SRC, *[frame(mac, token=t) for (_, mac, _), (_, t, _) in zip(cases, toks)])
    after = d.stats()
    expect_verdicts(cap, PEER, toks, "source-MAC filtering (default on)", [PEER, TRK])
    expect_verdicts(cap, TRK, toks, "source-MAC filtering (default on)", [PEER, TRK])
    assert checks.drop_delta(before, after, SRC, "spoofed-source") == 2, checks.counters_text(after, [SRC])
    assert checks.total_drops(after, SRC) - checks.total_drops(before, SRC) == 2, checks.counters_text(after, [SRC])
    learned = {r["mac"].lower() for r in after["mac_table"] if r["port"] == SRC}
    assert "02:77:71:00:00:cc" not in learned and "02:77:71:00:00:bb" not in learned, after["mac_table"]
    assert {own, "02:77:71:00:00:aa"} <= learned, after["mac_table"]


def test_dhcp_and_router_guards(d):
    own = d.vs(SRC).mac
    ip4 = IP(src="10.77.71.1", dst="255.255.255.255")
    ip6 = IPv6(src="fe80::77:1", dst="ff02::1")
    cases = [
        ("DHCPv4 offer (UDP 67->68)", ip4 / UDP(sport=67, dport=68), False, "dhcp-guard"),
        ("DHCPv4 discover (UDP 68->67)", IP(src="0.0.0.0", dst="255.255.255.255") / UDP(sport=68, dport=67), True, None),
        ("DHCPv6 reply (UDP 547->546)", ip6 / UDP(sport=547, dport=546), False, "dhcp-guard"),
        ("ICMPv6 router advertisement (134)", ip6 / ICMPv6ND_RA(), False, "router-guard"),
        ("ICMPv6 redirect (137)", ip6 / ICMPv6ND_Redirect(tgt="fe80::1", dst="fe80::2"), False, "router-guard"),
        ("ICMPv4 redirect (type 5)", IP(src="10.77.71.1", dst="10.77.71.2") / ICMP(type=5, code=1, gw="10.77.71.9"),
         False, "router-guard"),
        ("ICMPv6 neighbour solicitation (135)", ip6 / ICMPv6ND_NS(tgt="fe80::2"), True, None),
    ]
    toks = [(label, new_token(), ok) for label, _, ok, _ in cases]
    before = d.stats()
    with d.capture(PEER) as cap:
        d.send(SRC, *[l3frame(own, BCAST, layers, t) for (_, layers, _, _), (_, t, _) in zip(cases, toks)])
    after = d.stats()
    expect_verdicts(cap, PEER, toks, "DHCP / router guard", [PEER])
    got = deltas(before, after, SRC, "dhcp-guard", "router-guard")
    assert got == {"dhcp-guard": 2, "router-guard": 3}, "%s\n%s" % (got, checks.counters_text(after, [SRC]))
    assert checks.total_drops(after, SRC) - checks.total_drops(before, SRC) == 5, checks.counters_text(after, [SRC])


def test_receive_allow_list(d):
    peer, rcv = d.vs(PEER), d.vs(RCV)
    cases = [("unicast to its own MAC (listed)", rcv.mac, True),
             ("broadcast (listed)", BCAST, True),
             ("multicast 01:00:5e:00:00:fb (listed)", "01:00:5e:00:00:fb", True),
             ("multicast 01:00:5e:00:00:fc (not listed)", "01:00:5e:00:00:fc", False),
             ("unknown unicast to another MAC (flooded)", "02:77:71:00:00:99", False)]
    toks = [(label, new_token(), ok) for label, _, ok in cases]
    before = d.stats()
    with d.capture(RCV, TRK) as cap:
        d.send(PEER, *[frame(peer.mac, dst=dst, token=t) for (_, dst, _), (_, t, _) in zip(cases, toks)])
    after = d.stats()
    expect_verdicts(cap, RCV, toks, "AllowedToReceive", [RCV, TRK])
    # Control: the trunk (no allow-list) gets all five, tagged 71.
    expect_verdicts(cap, TRK, [(l, t, True) for l, t, _ in toks], "control: trunk without allow-list", [RCV, TRK])
    assert checks.drop_delta(before, after, RCV, "no-destination") == 2, checks.counters_text(after, [RCV, PEER])
    assert checks.total_drops(after, RCV) - checks.total_drops(before, RCV) == 2, checks.counters_text(after, [RCV])
    assert checks.total_drops(after, PEER) - checks.total_drops(before, PEER) == 0, checks.counters_text(after, [PEER])


def test_promiscuous_port_sees_known_unicast_of_its_vlan_only(d):
    trk, a72, peer = d.vs(TRK), d.vs(A72), d.vs(PEER)
    # Make the trunk's MAC known in VLAN 71 and the VLAN-72 system's MAC known in VLAN 72.
    d.send(TRK, frame(trk.mac, vlan=71, token=new_token()))
    d.send(A72, frame(a72.mac, token=new_token()))
    st = d.stats()
    assert [(r["port"], r["vlan"]) for r in d.mac_entries(st, trk.mac)] == [(TRK, 71)], st["mac_table"]
    assert [(r["port"], r["vlan"]) for r in d.mac_entries(st, a72.mac)] == [(A72, 72)], st["mac_table"]

    t71, t72 = new_token(), new_token()
    before = d.stats()
    with d.capture(TRK, PRM, PDR, MLD, A72) as cap:
        d.send(PEER, frame(peer.mac, dst=trk.mac, token=t71))
        d.send(TRK, frame(trk.mac, dst=a72.mac, vlan=72, token=t72))
    after = d.stats()
    ports = [TRK, PRM, PDR, MLD, A72]
    expect_tagged(expect_frames(cap, TRK, t71, 1, "known unicast at its destination", ports)[0], 71, "at the trunk")
    expect_untagged(expect_frames(cap, PRM, t71, 1, "known unicast of VLAN 71 at the promiscuous port", ports)[0],
                    "at the promiscuous port")
    expect_frames(cap, PDR, t71, 0, "known unicast reached a non-promiscuous port", ports)
    expect_frames(cap, MLD, t71, 0, "known unicast reached a non-promiscuous port", ports)
    expect_frames(cap, A72, t72, 1, "known unicast of VLAN 72 at its destination", ports)
    expect_frames(cap, PRM, t72, 0, "promiscuous port (VLAN 71) saw VLAN-72 traffic", ports)
    assert checks.counter(after, PEER, "floods") == checks.counter(before, PEER, "floods"), "the unicast was flooded"
    assert checks.total_drops(after, PRM) == checks.total_drops(before, PRM), checks.counters_text(after, [PRM])


def test_priority_violation_drop(d):
    mac = d.vs(PDR).mac
    toks = [("tagged VID 71 PCP 2 (allowed)", new_token(), True),
            ("tagged VID 71 PCP 6 (not allowed)", new_token(), False),
            ("priority-tagged VID 0 PCP 7 (not allowed)", new_token(), False),
            ("untagged (gets DefaultPriority 1)", new_token(), True)]
    before = d.stats()
    with d.capture(TRK, PEER) as cap:
        d.send(PDR, frame(mac, vlan=71, prio=2, token=toks[0][1]), frame(mac, vlan=71, prio=6, token=toks[1][1]),
               frame(mac, vlan=0, prio=7, token=toks[2][1]), frame(mac, token=toks[3][1]))
    after = d.stats()
    expect_verdicts(cap, TRK, toks, "PriorityViolationAction=Drop", [TRK, PEER])
    expect_verdicts(cap, PEER, toks, "PriorityViolationAction=Drop", [TRK, PEER])
    expect_tagged(cap.frames(TRK, toks[0][1])[0], 71, "allowed PCP kept", pcp=2)
    expect_tagged(cap.frames(TRK, toks[3][1])[0], 71, "untagged frame tagged with DefaultPriority", pcp=1)
    assert checks.drop_delta(before, after, PDR, "priority-not-allowed") == 2, checks.counters_text(after, [PDR])
    assert checks.total_drops(after, PDR) - checks.total_drops(before, PDR) == 2, checks.counters_text(after, [PDR])


def test_priority_violation_remark(d):
    mac = d.vs(PRR).mac
    t6, t3, t0 = new_token(), new_token(), new_token()
    before = d.stats()
    with d.capture(TRK) as cap:
        d.send(PRR, frame(mac, vlan=71, prio=6, token=t6), frame(mac, vlan=71, prio=3, token=t3),
               frame(mac, vlan=0, prio=7, token=t0))
    after = d.stats()
    expect_tagged(expect_frames(cap, TRK, t6, 1, "PCP 6 frame (remarked)", [TRK])[0], 71, "PCP 6 remarked", pcp=1)
    expect_tagged(expect_frames(cap, TRK, t3, 1, "PCP 3 frame (allowed)", [TRK])[0], 71, "PCP 3 kept", pcp=3)
    expect_tagged(expect_frames(cap, TRK, t0, 1, "priority-tagged PCP 7 (remarked)", [TRK])[0], 71,
                  "priority tag PCP 7 remarked", pcp=1)
    assert checks.total_drops(after, PRR) == checks.total_drops(before, PRR), checks.counters_text(after, [PRR])


@pytest.mark.parametrize("port,action", [(MLD, "Drop"), (MLF, "ForwardUnlearned")])
def test_mac_limit(d, port, action):
    own = d.vs(port).mac
    base = "02:77:71:00:%02x:" % (1 if port == MLD else 2)
    macs = [own, base + "01", base + "02", base + "03"]
    toks = [("source %s" % m, new_token(), action == "ForwardUnlearned" or k < 2) for k, m in enumerate(macs)]
    before = d.stats()
    with d.capture(PEER) as cap:
        for m, (_, t, _) in zip(macs, toks):
            d.send(port, frame(m, token=t))
    after = d.stats()
    expect_verdicts(cap, PEER, toks, "MaxNumMACAddress=2, MACLimitAction=%s" % action, [PEER])
    learned = sorted(r["mac"].lower() for r in after["mac_table"] if r["port"] == port)
    assert learned == sorted(macs[:2]), "MAC table entries of %s: %s (expected the first two)" % (port, learned)
    want = 2 if action == "Drop" else 0
    assert checks.drop_delta(before, after, port, "mac-limit") == want, checks.counters_text(after, [port])
    assert checks.total_drops(after, port) - checks.total_drops(before, port) == want, checks.counters_text(after, [port])
