"""Forwarding between virtual systems: reachability, provisioning, learning, flooding,
aging, MTU and malformed frames, and the SIGUSR1 report.

Every check is made by an independent observer: ping's exit code, or the frames a capture
inside the receiving namespace saw, plus the daemon's JSON counters."""

import json
import time

import checks
import harness
from harness import frame, new_token, ns_exec

# Every drop reason of shared/spec/dataplane.md ("Counters and drop reasons").
SPEC_DROP_REASONS = [
    "malformed", "mtu-exceeded", "vlan-not-allowed", "untagged-not-allowed", "spoofed-source",
    "priority-not-allowed", "acl-deny", "policer", "storm", "mac-limit", "dhcp-guard", "router-guard",
    "no-destination", "tx-queue-full", "port-down",
]


# --- 1. ping across ----------------------------------------------------------------------------

def test_ping_across_access_ports(vswitch):
    d = vswitch("vswt-ping.xml")
    a, b = d.vs("vswt-p-a"), d.vs("vswt-p-b")

    r = d.ping("vswt-p-a", b.ip)
    assert r.returncode == 0, "ping %s -> %s failed:\n%s%s\n%s" % (a.namespace, b.ip, r.stdout, r.stderr, d.stderr()[-2000:])
    r = d.ping("vswt-p-b", a.ip)
    assert r.returncode == 0, "ping %s -> %s failed:\n%s%s" % (b.namespace, a.ip, r.stdout, r.stderr)

    st = d.stats()
    for vs in (a, b):
        rows = d.mac_entries(st, vs.mac)
        assert len(rows) == 1, "MAC %s of %s: expected one MAC-table entry, got %s (table: %s)" % (
            vs.mac, vs.name, rows, st["mac_table"])
        assert rows[0]["port"] == vs.name and rows[0]["vlan"] == 10, rows[0]
        assert rows[0]["static"] is False, rows[0]
        assert 0 <= rows[0]["age"] < 10, rows[0]
    for vs in (a, b):
        # 3 echo requests/replies each way plus ARP: at least 6 frames in, 6 out.
        assert checks.counter(st, vs.name, "rx_packets") >= 6, checks.counters_text(st, [a.name, b.name])
        assert checks.counter(st, vs.name, "tx_packets") >= 6, checks.counters_text(st, [a.name, b.name])
        assert checks.counter(st, vs.name, "rx_bytes") >= 6 * 60, checks.counters_text(st, [a.name, b.name])
        assert checks.total_drops(st, vs.name) == 0, checks.counters_text(st, [a.name, b.name])


def test_virtual_system_provisioning(vswitch):
    d = vswitch("vswt-prov.xml")
    a, b = d.vs("vswt-v-a"), d.vs("vswt-v-b")

    r = ns_exec(a.namespace, "ip", "-j", "addr", "show", "dev", "lan0")
    assert r.returncode == 0, "interface lan0 missing in %s: %s" % (a.namespace, r.stderr)
    info = json.loads(r.stdout)[0]
    assert info["address"].lower() == a.mac, info["address"]
    assert info["mtu"] == 1400, info["mtu"]
    assert "UP" in info["flags"], info["flags"]
    inet = sorted("%s/%d" % (x["local"], x["prefixlen"]) for x in info["addr_info"] if x["family"] == "inet")
    assert inet == sorted(a.addresses), inet
    assert not [x for x in info["addr_info"] if x["family"] == "inet6"], "IPv6 address present: %s" % info["addr_info"]
    r = ns_exec(a.namespace, "cat", "/proc/sys/net/ipv6/conf/lan0/disable_ipv6")
    assert r.stdout.strip() == "1", "IPv6 not disabled on lan0 in %s: %r" % (a.namespace, r.stdout)

    r = ns_exec(b.namespace, "ip", "-j", "link", "show", "dev", "eth0")
    assert r.returncode == 0, "default InterfaceName eth0 missing in %s: %s" % (b.namespace, r.stderr)
    assert json.loads(r.stdout)[0]["mtu"] == 1500
    # The TAPs' netdevs left the root namespace.
    assert not harness.link_exists("vswt-v-a") and not harness.link_exists("vswt-v-b")

    r = d.ping("vswt-v-b", "10.77.9.1")
    assert r.returncode == 0, r.stdout + r.stderr


def test_sigusr1_report_and_json_schema(vswitch):
    d = vswitch("vswt-usr1.xml")
    a = d.vs("vswt-u-a")
    d.send("vswt-u-a", frame(a.mac, token=new_token()))
    time.sleep(0.2)
    st = d.stats()

    assert set(st) >= {"ports", "mac_table", "mac_table_size", "generation"}, sorted(st)
    assert st["mac_table_size"] == 65536
    assert isinstance(st["generation"], int) and st["generation"] >= 1
    assert [p["name"] for p in st["ports"]] == ["vswt-u-a", "vswt-u-b"]
    for p in st["ports"]:
        for key in ("rx_packets", "rx_bytes", "tx_packets", "tx_bytes", "floods", "mac_moves", "learn_table_full"):
            assert isinstance(p.get(key), int), "port %s: %s = %r" % (p["name"], key, p.get(key))
        missing = [r for r in SPEC_DROP_REASONS if r not in p["drops"]]
        assert not missing, "port %s: drop reasons missing from JSON: %s" % (p["name"], missing)
    assert checks.counter(st, "vswt-u-a", "rx_packets") == 1, checks.counters_text(st, ["vswt-u-a", "vswt-u-b"])
    assert checks.counter(st, "vswt-u-b", "tx_packets") == 1, checks.counters_text(st, ["vswt-u-a", "vswt-u-b"])
    assert [(r["port"], r["vlan"]) for r in d.mac_entries(st, a.mac)] == [("vswt-u-a", 10)]

    # The same report goes to stdout, readable right away even when stdout is a file.
    deadline = time.monotonic() + 3
    out = d.stdout()
    while not (a.mac in out.lower() and "vswt-u-b" in out) and time.monotonic() < deadline:
        time.sleep(0.1)
        out = d.stdout()
    assert "vswt-u-a" in out and "vswt-u-b" in out and a.mac in out.lower(), (
        "SIGUSR1: counters and MAC table not on stdout within 3 s (stdout redirected to a file; "
        "is it flushed?). stdout so far: %r" % out[-1000:])


# --- 4. unknown-unicast flood, then learned unicast -----------------------------------------

def test_unknown_unicast_floods_then_learned_unicast(vswitch):
    d = vswitch("vswt-flood.xml")
    A, B, C = "vswt-f-a", "vswt-f-b", "vswt-f-c"
    a, b, c = d.vs(A), d.vs(B), d.vs(C)
    ports = [A, B, C]

    st0 = d.stats()
    assert not d.mac_entries(st0, c.mac), "C learned before it sent anything: %s" % st0["mac_table"]

    # A -> C while C is unknown: flooded to B and C.
    t1 = new_token()
    with d.capture(B, C) as cap:
        d.send(A, frame(a.mac, dst=c.mac, token=t1))
    checks.expect_frames(cap, C, t1, 1, "unknown unicast A->C, at C", ports)
    checks.expect_frames(cap, B, t1, 1, "unknown unicast A->C must be flooded, at B", ports)
    st1 = d.stats()
    assert checks.counter(st1, A, "floods") - checks.counter(st0, A, "floods") >= 1, checks.counters_text(st1, ports)
    assert [(r["port"], r["vlan"]) for r in d.mac_entries(st1, a.mac)] == [(A, 10)], st1["mac_table"]

    # C answers A: A is known, so only A gets it; C is learned.
    t2 = new_token()
    with d.capture(A, B) as cap:
        d.send(C, frame(c.mac, dst=a.mac, token=t2))
    checks.expect_frames(cap, A, t2, 1, "known unicast C->A, at A", ports)
    checks.expect_frames(cap, B, t2, 0, "known unicast C->A must not reach B", ports)
    st2 = d.stats()
    assert [(r["port"], r["vlan"]) for r in d.mac_entries(st2, c.mac)] == [(C, 10)], st2["mac_table"]

    # A -> C again: now learned, only C receives it, nothing is flooded.
    t3 = new_token()
    with d.capture(B, C) as cap:
        d.send(A, frame(a.mac, dst=c.mac, token=t3))
    checks.expect_frames(cap, C, t3, 1, "learned unicast A->C, at C", ports)
    checks.expect_frames(cap, B, t3, 0, "learned unicast A->C must not reach B", ports)
    st3 = d.stats()
    assert checks.counter(st3, A, "floods") == checks.counter(st2, A, "floods"), checks.counters_text(st3, ports)


def test_frame_to_own_segment_is_not_sent_back(vswitch):
    """A frame whose destination is learned on its own ingress port is dropped (same-segment)."""
    d = vswitch("vswt-flood.xml")
    A, B, C = "vswt-f-a", "vswt-f-b", "vswt-f-c"
    a = d.vs(A)
    d.send(A, frame(a.mac, token=new_token()))  # A learned on port A
    time.sleep(0.2)
    before = d.stats()
    tok = new_token()
    with d.capture(A, B, C) as cap:
        d.send(A, frame(a.mac, dst=a.mac, token=tok))
    for p in (A, B, C):
        checks.expect_frames(cap, p, tok, 0, "frame A->A (destination on the ingress port)", [A, B, C])
    after = d.stats()
    assert checks.drop_delta(before, after, A, "same-segment") == 1, checks.counters_text(after, [A, B, C])
    assert checks.total_drops(after, A) - checks.total_drops(before, A) == 1, checks.counters_text(after, [A, B, C])


# --- 5. aging -------------------------------------------------------------------------------------

def test_mac_aging(vswitch):
    d = vswitch("vswt-age.xml")  # MACAgingTime="10"
    A = "vswt-g-a"
    a = d.vs(A)
    d.send(A, frame(a.mac, token=new_token()))
    t0 = time.monotonic()
    time.sleep(0.2)
    st = d.stats()
    assert [(r["port"], r["vlan"]) for r in d.mac_entries(st, a.mac)] == [(A, 10)], st["mac_table"]

    gone_at = None
    ages = []
    while time.monotonic() - t0 < 16:
        time.sleep(0.5)
        st = d.stats()
        rows = d.mac_entries(st, a.mac)
        if not rows:
            gone_at = time.monotonic() - t0
            break
        ages.append((round(time.monotonic() - t0, 1), rows[0]["age"]))
    assert gone_at is not None, "MAC %s still in the table 16 s after its only frame (aging 10 s); ages seen %s" % (
        a.mac, ages)
    assert 9.0 <= gone_at <= 13.0, "MAC %s aged out after %.1f s (aging time 10 s); ages seen %s" % (
        a.mac, gone_at, ages)
    # The reported age grows with silence.
    late = [age for t, age in ages if t >= 6]
    assert late and max(late) >= 5, "age field did not grow: %s" % ages


# --- 6. MTU and malformed frames -------------------------------------------------------------

def test_frame_over_port_mtu_is_dropped(vswitch):
    d = vswitch("vswt-mtu.xml")  # port MTU 1500
    A, B = "vswt-m-a", "vswt-m-b"
    a = d.vs(A)
    r = ns_exec(a.namespace, "ip", "link", "set", "dev", a.ifname, "mtu", "2000")
    assert r.returncode == 0, r.stderr

    before = d.stats()
    t_ok, t_big = new_token(), new_token()
    with d.capture(B) as cap:
        d.send(A, frame(a.mac, token=t_ok, size=1514))   # exactly MTU: 1500-byte payload
        d.send(A, frame(a.mac, token=t_big, size=1600))  # 1586-byte payload
    ok = checks.expect_frames(cap, B, t_ok, 1, "1514-byte frame (payload = MTU 1500)", [B])
    assert len(bytes(ok[0])) == 1514
    checks.expect_frames(cap, B, t_big, 0, "1600-byte frame over the port MTU", [B])
    after = d.stats()
    assert checks.drop_delta(before, after, A, "mtu-exceeded") == 1, checks.counters_text(after, [A, B])
    assert checks.total_drops(after, A) - checks.total_drops(before, A) == 1, checks.counters_text(after, [A, B])


def test_truncated_vlan_tag_is_malformed(vswitch):
    d = vswitch("vswt-mtu.xml")
    A, B = "vswt-m-a", "vswt-m-b"
    a = d.vs(A)
    before = d.stats()
    # 16 bytes: destination, source, TPID 0x8100 and a TCI, but no inner EtherType.
    runt = bytes.fromhex("ffffffffffff" + a.mac.replace(":", "") + "8100" + "000a")
    with d.capture(B) as cap:
        d.send(A, runt)
    assert not cap.raw.get(B), "truncated frame (or something) reached B: %s" % cap.describe(B)
    after = d.stats()
    assert checks.drop_delta(before, after, A, "malformed") == 1, checks.counters_text(after, [A, B])
    assert checks.total_drops(after, A) - checks.total_drops(before, A) == 1, checks.counters_text(after, [A, B])
