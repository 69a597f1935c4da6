"""Assertion helpers shared by the integration tests: each failure message says what was
sent, what every capture saw and, where useful, the daemon's counters."""

import json

from scapy.layers.l2 import Dot1Q

import harness


def vlan_of(pkt):
    """(vid, pcp) of the outer 802.1Q tag of a parsed frame, or None if untagged."""
    if Dot1Q in pkt:
        return pkt[Dot1Q].vlan, pkt[Dot1Q].prio
    return None


def received(cap, port, token):
    return cap.frames(port, token)


def describe_capture(cap, ports):
    lines = []
    for port in ports:
        frames = cap.describe(port)
        lines.append("  %s: %d frame(s)%s" % (port, len(frames), "".join("\n      " + f for f in frames[:8])))
    return "\n".join(lines)


def expect_frames(cap, port, token, count, what, ports=None):
    got = cap.frames(port, token)
    assert len(got) == count, (
        "%s: expected %d frame(s) carrying the test token in %s, captured %d.\nCaptures:\n%s"
        % (what, count, port, len(got), describe_capture(cap, ports or sorted(cap.raw))))
    return got


def expect_untagged(pkt, what):
    assert vlan_of(pkt) is None, "%s: expected an untagged frame, got tag %s: %s" % (what, vlan_of(pkt), pkt.summary())


def expect_tagged(pkt, vid, what, pcp=None):
    tag = vlan_of(pkt)
    assert tag is not None, "%s: expected a frame tagged VID %d, got an untagged one: %s" % (what, vid, pkt.summary())
    assert tag[0] == vid, "%s: expected VID %d, got VID %d (PCP %d)" % (what, vid, tag[0], tag[1])
    if pcp is not None:
        assert tag[1] == pcp, "%s: expected PCP %d on VID %d, got PCP %d" % (what, pcp, vid, tag[1])
    # The inner EtherType must be the test's, i.e. exactly one tag.
    assert pkt[Dot1Q].type == harness.TEST_ETHERTYPE, "%s: unexpected inner EtherType %#x (double tag?)" % (
        what, pkt[Dot1Q].type)


def counters_text(stats, ports):
    out = []
    for p in stats["ports"]:
        if p["name"] in ports:
            drops = {k: v for k, v in p["drops"].items() if v}
            out.append("  %s rx=%d tx=%d floods=%d drops=%s" % (p["name"], p["rx_packets"], p["tx_packets"],
                                                              p["floods"], json.dumps(drops)))
    return "\n".join(out)


def drop_delta(before, after, port, reason):
    def get(st):
        for p in st["ports"]:
            if p["name"] == port:
                if reason not in p["drops"]:
                    raise AssertionError("drop reason %r missing from the JSON of port %s: %s"
                                         % (reason, port, sorted(p["drops"])))
                return p["drops"][reason]
        raise AssertionError("port %s missing from the JSON" % port)
    return get(after) - get(before)


def total_drops(stats, port):
    for p in stats["ports"]:
        if p["name"] == port:
            return sum(p["drops"].values())
    raise AssertionError("port %s missing from the JSON" % port)


def counter(stats, port, key):
    for p in stats["ports"]:
        if p["name"] == port:
            return p[key]
    raise AssertionError("port %s missing from the JSON" % port)


def expect_verdicts(cap, port, cases, what, ports=None):
    """`cases`: [(label, token, should_arrive)], one token per frame sent. Asserts that exactly
    the frames marked True arrived (once each) at `port`, naming every frame that did not."""
    wrong = []
    for label, token, should in cases:
        n = len(cap.frames(port, token))
        if n != (1 if should else 0):
            wrong.append("  %-40s expected %s, captured %d" % (label, "to arrive" if should else "dropped", n))
    assert not wrong, "%s at %s:\n%s\nCaptures:\n%s" % (
        what, port, "\n".join(wrong), describe_capture(cap, ports or sorted(cap.raw)))


def l3frame(src, dst, layers, token, vlan=None, prio=0, tpid=0x8100):
    """Ethernet [+ 802.1Q] + the given scapy L3/L4 layers + a Raw payload carrying `token`."""
    from scapy.layers.l2 import Dot1Q, Ether
    from scapy.packet import Raw
    if vlan is None:
        pkt = Ether(src=src, dst=dst)
    else:
        pkt = Ether(src=src, dst=dst, type=tpid) / Dot1Q(vlan=vlan, prio=prio)
    return bytes(pkt / layers / Raw(load=token + bytes(max(0, 24 - len(token)))))


def retype(raw, ethertype):
    """A harness.frame() with its (innermost) EtherType replaced."""
    off = 12
    while raw[off:off + 2] in (b"\x81\x00", b"\x88\xa8"):
        off += 4
    return raw[:off] + ethertype.to_bytes(2, "big") + raw[off + 2:]
