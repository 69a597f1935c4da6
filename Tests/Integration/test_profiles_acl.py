"""Port profiles on the wire (issue 3), part 2: vsx:Acl in both directions, one rule per match
family (local/remote MAC, EtherType, VLAN, priority, IPv4 and IPv6 prefixes, protocol with
TCP/UDP port ranges, ICMP type/code), weights (higher first, whatever the document order) and
both default actions. Topology vswt-pf-acl.xml:

  vswt-pa-out  trunk 73 (native) + 74, outbound deny rules, inbound VLAN/EtherType denies, defaults Allow
  vswt-pa-in   access 73, inbound allow rules, both defaults Deny
  vswt-pa-peer access 73 (no anti-spoofing), vswt-pa-a74 access 74: senders and observers

Outbound denies count `acl-deny` on the sending port, inbound denies on the port that refuses
the frame (its egress)."""

import pytest
from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.inet6 import ICMPv6EchoReply, ICMPv6EchoRequest, IPv6
from scapy.layers.l2 import ARP

import checks
from checks import expect_verdicts, l3frame, retype
from harness import frame, new_token

OUT, IN, PEER, A74 = "vswt-pa-out", "vswt-pa-in", "vswt-pa-peer", "vswt-pa-a74"
ALL = [OUT, IN, PEER, A74]
BCAST = "ff:ff:ff:ff:ff:ff"


@pytest.fixture(scope="module")
def d(vswitch_shared):
    return vswitch_shared("vswt-pf-acl.xml")


def run_cases(d, sender, observers, cases):
    """cases: [(label, build(token) -> bytes, should_pass)]; sends them all, returns (cap, tokens, before, after)."""
    toks = [(label, new_token(), ok) for label, _, ok in cases]
    before = d.stats()
    with d.capture(*observers) as cap:
        d.send(sender, *[build(t) for (_, build, _), (_, t, _) in zip(cases, toks)])
    after = d.stats()
    return cap, toks, before, after


def test_outbound_acl_every_family_weights_default_allow(d):
    me = d.vs(OUT).mac

    def raw(src=me, dst=BCAST, vlan=None, prio=0, et=0x88B5):
        def build(t):
            return retype(frame(src, dst=dst, vlan=vlan, prio=prio, token=t), et)
        return build

    def ip(layers, vlan=None):
        return lambda t: l3frame(me, BCAST, layers, t, vlan=vlan)

    v4 = lambda dst: IP(src="10.77.73.1", dst=dst)  # noqa: E731
    cases = [
        ("control: own MAC, EtherType 0x88B5", raw(), True),
        ("LocalMACAddress …:e1 (deny, w200)", raw(src="02:77:73:00:00:e1"), False),
        ("RemoteMACAddress …:d1 (deny, w190)", raw(dst="02:77:73:00:00:d1"), False),
        ("EtherType 0x88B6 (deny Both, w180)", raw(et=0x88B6), False),
        ("VLANID 74 (deny, w170)", raw(vlan=74), False),
        ("VID 73 PCP 6 (deny Priority 6, w160)", raw(vlan=73, prio=6), False),
        ("VID 73 PCP 5 (no rule: default Allow)", raw(vlan=73, prio=5), True),
        ("IPv4 to 10.77.73.5 (allow w150 beats deny /24 w140)", ip(v4("10.77.73.5") / UDP(sport=9, dport=9)), True),
        ("IPv4 to 10.77.73.6 (deny 10.77.73.0/24)", ip(v4("10.77.73.6") / UDP(sport=9, dport=9)), False),
        ("IPv4 to 10.77.99.6 (default Allow)", ip(v4("10.77.99.6") / UDP(sport=9, dport=9)), True),
        ("IPv6 to fd77:73::9 (deny fd77:73::/64)", ip(IPv6(src="fd77:99::1", dst="fd77:73::9") / UDP(sport=9, dport=9)), False),
        ("IPv6 to fd77:73:0:1::9 (outside the /64)", ip(IPv6(src="fd77:99::1", dst="fd77:73:0:1::9") / UDP(sport=9, dport=9)), True),
        ("TCP to port 22 (deny 22-23)", ip(v4("10.77.99.2") / TCP(sport=40000, dport=22)), False),
        ("TCP to port 23 (deny 22-23)", ip(v4("10.77.99.2") / TCP(sport=40000, dport=23)), False),
        ("TCP to port 24", ip(v4("10.77.99.2") / TCP(sport=40000, dport=24)), True),
        ("UDP to port 22 (rule is TCP only)", ip(v4("10.77.99.2") / UDP(sport=40000, dport=22)), True),
        ("UDP from port 5005 (deny local 5000-5010)", ip(v4("10.77.99.2") / UDP(sport=5005, dport=9)), False),
        ("UDP from port 5011", ip(v4("10.77.99.2") / UDP(sport=5011, dport=9)), True),
        ("ICMP echo request 8/0 (deny)", ip(v4("10.77.99.2") / ICMP(type=8, code=0)), False),
        ("ICMP type 8 code 1", ip(v4("10.77.99.2") / ICMP(type=8, code=1)), True),
        ("ICMP echo reply 0/0", ip(v4("10.77.99.2") / ICMP(type=0, code=0)), True),
        ("ICMPv6 echo request 128 (deny)", ip(IPv6(src="fd77:99::1", dst="fd77:99::2") / ICMPv6EchoRequest()), False),
        ("ICMPv6 echo reply 129", ip(IPv6(src="fd77:99::1", dst="fd77:99::2") / ICMPv6EchoReply()), True),
    ]
    cap, toks, before, after = run_cases(d, OUT, [PEER, A74], cases)
    expect_verdicts(cap, PEER, [c for c in toks if "VLANID 74" not in c[0]], "outbound ACL of %s" % OUT, [PEER, A74])
    expect_verdicts(cap, A74, [c for c in toks if "VLANID 74" in c[0]], "outbound ACL of %s (VLAN 74)" % OUT, [PEER, A74])
    denied = sum(1 for c in cases if not c[2])
    assert checks.drop_delta(before, after, OUT, "acl-deny") == denied, checks.counters_text(after, ALL)
    assert checks.total_drops(after, OUT) - checks.total_drops(before, OUT) == denied, checks.counters_text(after, ALL)


def test_inbound_deny_rules_on_default_allow_port(d):
    """vswt-pa-out: inbound VLANID 74 deny, EtherType 0x88B6 deny (Direction=Both), default Allow."""
    t74, t6, t5 = new_token(), new_token(), new_token()
    before = d.stats()
    with d.capture(OUT) as cap:
        d.send(A74, frame(d.vs(A74).mac, token=t74))
        d.send(PEER, retype(frame(d.vs(PEER).mac, token=t6), 0x88B6),
               frame(d.vs(PEER).mac, token=t5))
    after = d.stats()
    expect_verdicts(cap, OUT, [("VLAN 74 broadcast (deny VLANID 74 inbound)", t74, False),
                               ("EtherType 0x88B6 (deny, Direction=Both)", t6, False),
                               ("EtherType 0x88B5 (default Allow)", t5, True)], "inbound ACL of %s" % OUT, [OUT])
    assert checks.drop_delta(before, after, OUT, "acl-deny") == 2, checks.counters_text(after, ALL)
    assert checks.total_drops(after, A74) == checks.total_drops(before, A74), "inbound denies must count on the egress port"


def test_inbound_allow_rules_every_family_weights_default_deny(d):
    peer = d.vs(PEER).mac

    def raw(src=peer, vlan=None, prio=0, et=0x88B5):
        def build(t):
            return retype(frame(src, vlan=vlan, prio=prio, token=t), et)
        return build

    def ip(layers):
        return lambda t: l3frame(peer, BCAST, layers, t)

    def v4(src, dst="10.77.73.2"):
        return IP(src=src, dst=dst)

    cases = [
        ("EtherType 0x88B5 (allow w190)", raw(), True),
        ("RemoteMACAddress …:d2 (deny w200 beats allow w190)", raw(src="02:77:73:00:00:d2"), False),
        ("EtherType 0x88B7, no rule (default Deny)", raw(et=0x88B7), False),
        ("priority tag PCP 5, 0x88B7 (allow Priority 5)", raw(vlan=0, prio=5, et=0x88B7), True),
        ("priority tag PCP 3, 0x88B7 (default Deny)", raw(vlan=0, prio=3, et=0x88B7), False),
        ("IPv4 10.77.73.65 -> .2 (allow net w170)", ip(v4("10.77.73.65") / UDP(sport=9, dport=9999)), True),
        ("IPv4 10.77.73.66 -> .2 (deny host w175 beats allow)", ip(v4("10.77.73.66") / UDP(sport=9, dport=9999)), False),
        ("IPv4 10.77.74.1 -> .2 (default Deny)", ip(v4("10.77.74.1") / UDP(sport=9, dport=9999)), False),
        ("IPv4 10.77.73.65 -> .3 (LocalIPAddress differs)", ip(v4("10.77.73.65", "10.77.73.3") / UDP(sport=9, dport=9999)), False),
        ("IPv6 from fd77:73::5 (allow /64)", ip(IPv6(src="fd77:73::5", dst="fd77:73::2") / UDP(sport=9, dport=9999)), True),
        ("IPv6 from fd77:74::5 (default Deny)", ip(IPv6(src="fd77:74::5", dst="fd77:73::2") / UDP(sport=9, dport=9999)), False),
        ("TCP to local port 443 (allow 80-443)", ip(v4("10.77.99.1", "10.77.99.2") / TCP(sport=40000, dport=443)), True),
        ("TCP to local port 80 (allow 80-443)", ip(v4("10.77.99.1", "10.77.99.2") / TCP(sport=40000, dport=80)), True),
        ("TCP to local port 8080 (default Deny)", ip(v4("10.77.99.1", "10.77.99.2") / TCP(sport=40000, dport=8080)), False),
        ("UDP from remote port 53 (allow)", ip(v4("10.77.99.1", "10.77.99.2") / UDP(sport=53, dport=40000)), True),
        ("UDP from remote port 54 (default Deny)", ip(v4("10.77.99.1", "10.77.99.2") / UDP(sport=54, dport=40000)), False),
        ("ICMP echo reply 0/0 (allow)", ip(v4("10.77.99.1", "10.77.99.2") / ICMP(type=0, code=0)), True),
        ("ICMP echo request 8/0 (default Deny)", ip(v4("10.77.99.1", "10.77.99.2") / ICMP(type=8, code=0)), False),
        ("ICMP type 0 code 1 (code differs)", ip(v4("10.77.99.1", "10.77.99.2") / ICMP(type=0, code=1)), False),
        ("ARP in VLAN 73 (allow EtherType+VLANID)", lambda t: l3frame(peer, BCAST, ARP(psrc="10.77.99.1", pdst="10.77.99.2"), t), True),
    ]
    cap, toks, before, after = run_cases(d, PEER, [IN, OUT], cases)
    expect_verdicts(cap, IN, toks, "inbound ACL of %s (default Deny)" % IN, [IN, OUT])
    denied = sum(1 for c in cases if not c[2])
    assert checks.drop_delta(before, after, IN, "acl-deny") == denied, checks.counters_text(after, ALL)
    assert checks.total_drops(after, IN) - checks.total_drops(before, IN) == denied, checks.counters_text(after, ALL)
    assert checks.total_drops(after, PEER) == checks.total_drops(before, PEER), checks.counters_text(after, ALL)
    # Control: the other port (inbound default Allow, no matching deny) received every frame.
    expect_verdicts(cap, OUT, [(l, t, True) for l, t, _ in toks], "control: %s" % OUT, [IN, OUT])


def test_outbound_default_deny(d):
    me = d.vs(IN).mac
    t5, t6 = new_token(), new_token()
    before = d.stats()
    with d.capture(PEER) as cap:
        d.send(IN, frame(me, token=t5), retype(frame(me, token=t6), 0x88B6))
    after = d.stats()
    expect_verdicts(cap, PEER, [("EtherType 0x88B5 (allow-out-test)", t5, True),
                                ("EtherType 0x88B6 (OutboundAclDefaultAction Deny)", t6, False)],
                    "outbound ACL of %s" % IN, [PEER])
    assert checks.drop_delta(before, after, IN, "acl-deny") == 1, checks.counters_text(after, ALL)
