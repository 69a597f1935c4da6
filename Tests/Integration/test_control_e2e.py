"""Control plane end to end: vswitchctl against a running vswitchd in state mode — ports added and
removed at runtime, profiles, FDB, settings, counters, link events, root-only socket, bad requests,
kill -9 and restore."""

import json
import os
import time

import pytest

import harness
from ctlharness import PROFILES, TENANT_A, TENANT_B, VSWITCHCTL, CtlDaemon, ping, wait_for

NS = ["vsc-a1", "vsc-a2", "vsc-b1"]
PORTS = ["vsc-p1", "vsc-p2", "vsc-p3"]
MAC1, MAC2, MAC3 = "02:00:00:00:0c:01", "02:00:00:00:0c:02", "02:00:00:00:0c:03"


@pytest.fixture
def ctl(environment, tmp_path):
    if not os.access(VSWITCHCTL, os.X_OK):
        pytest.fail("vswitchctl binary %s not found (build it, or set VSWITCHCTL)" % VSWITCHCTL, pytrace=False)
    harness.delete_leftovers(NS, PORTS)
    d = CtlDaemon(tmp_path, namespaces=NS, links=PORTS)
    try:
        yield d
    finally:
        d.cleanup()


def two_ports(d):
    d.ctl("profile", "load", str(PROFILES))
    d.ctl("add-port", "vsc-p1", "--profile", TENANT_A, "--mac", MAC1, "--namespace", "vsc-a1", "--address", "10.77.0.1/24")
    d.ctl("add-port", "vsc-p2", "--profile", TENANT_A, "--mac", MAC2, "--namespace", "vsc-a2", "--address", "10.77.0.2/24")


def test_add_port_forwards_and_del_port_removes_and_flushes(ctl):
    ctl.start()
    assert ctl.show()["ports"] == []
    two_ports(ctl)
    r = ping("vsc-a1", "10.77.0.2")
    assert r.returncode == 0, r.stdout + r.stderr
    fdb = ctl.json("fdb", "show")["entries"]
    assert {(e["port"], e["vlan"], e["mac"]) for e in fdb} >= {("vsc-p1", 10, MAC1), ("vsc-p2", 10, MAC2)}
    stats = ctl.json("port", "stats", "vsc-p1")["ports"][0]
    assert stats["rx_packets"] >= 3 and stats["tx_packets"] >= 3 and "mtu-exceeded" in stats["drops"]
    text = ctl.ctl("show").stdout
    assert "vsc-p1" in text and "10.77.0.1/24" in text
    ctl.ctl("del-port", "vsc-p2")
    assert [p["name"] for p in ctl.show()["ports"]] == ["vsc-p1"]
    assert "vsc-a2" not in harness.netns_list(), "del-port left the virtual system behind"
    assert all(e["port"] != "vsc-p2" for e in ctl.json("fdb", "show")["entries"])
    # The freed index is reused, with fresh counters.
    ctl.ctl("add-port", "vsc-p3", "--profile", TENANT_A, "--mac", MAC3, "--namespace", "vsc-b1", "--address", "10.77.0.3/24")
    p3 = ctl.port("vsc-p3")
    assert p3["index"] == 1
    assert ctl.json("port", "stats", "vsc-p3")["ports"][0]["rx_packets"] <= 2
    r = ping("vsc-a1", "10.77.0.3")
    assert r.returncode == 0, r.stdout + r.stderr


def test_bad_requests_get_one_line_errors_and_change_nothing(ctl):
    ctl.start()
    two_ports(ctl)
    before = ctl.show()
    state_before = (ctl.state_dir / "state.json").read_bytes()
    cases = [
        (("del-port", "vsc-nope"), "no such port: vsc-nope"),
        (("set-port", "vsc-nope", "profile=" + TENANT_B), "no such port"),
        (("set-port", "vsc-p1", "profile=urn:nope"), "unknown profile ID urn:nope"),
        (("add-port", "vsc-p1", "--profile", TENANT_A), "already exists"),
        (("add-port", "vsc-p9", "--profile", "urn:nope"), "unknown profile ID"),
        (("fdb", "add", "vsc-nope", "10", MAC1), "no such port"),
        (("fdb", "del", "10", "02:00:00:00:0c:77"), "no MAC table entry"),
        (("set", "switch", "mac-aging-time=5"), "out of range"),
        (("profile", "load", "/nonexistent.xml"), "cannot read"),
    ]
    for args, message in cases:
        p = ctl.ctl(*args, check=False)
        assert p.returncode != 0, "vswitchctl %s succeeded" % " ".join(args)
        lines = p.stderr.strip().splitlines()
        assert len(lines) == 1 and message in lines[0], "%s: %r" % (" ".join(args), p.stderr)
    replies = ctl.raw(b"garbage\n{\"command\": \"show\", \"args\": 3}\n{\"command\": \"explode\"}\n")
    assert [r["ok"] for r in replies] == [False, False, False], replies
    assert "malformed request" in replies[0]["error"] and "unknown command" in replies[2]["error"]
    replies = ctl.raw(b"x" * ((1 << 20) + 4096))
    assert len(replies) == 1 and not replies[0]["ok"] and "longer than" in replies[0]["error"], replies
    after = ctl.show()
    assert after == before
    assert (ctl.state_dir / "state.json").read_bytes() == state_before
    r = ping("vsc-a1", "10.77.0.2")
    assert r.returncode == 0, "forwarding broken after bad requests"


def test_profile_fdb_settings_metrics_commands(ctl, tmp_path):
    ctl.start()
    two_ports(ctl)
    assert "urn:vswitch:profile:tenant-a" in ctl.ctl("profile", "validate", str(PROFILES)).stdout
    shown = ctl.json("profile", "show")["profiles"]
    assert [p["ports"] for p in shown if p["id"] == TENANT_A] == [["vsc-p1", "vsc-p2"]]
    out = tmp_path / "export.xml"
    ctl.ctl("profile", "export", str(out))
    assert TENANT_B in out.read_text()
    assert "loaded:" in ctl.ctl("profile", "reload").stdout
    # Rebinding p2 to tenant B (VLAN 20) isolates it from p1.
    ctl.ctl("set-port", "vsc-p2", "profile=" + TENANT_B)
    assert ctl.port("vsc-p2")["profile"] == TENANT_B
    assert ping("vsc-a1", "10.77.0.2", count=2).returncode != 0
    ctl.ctl("set-port", "vsc-p2", "profile=" + TENANT_A)
    assert ping("vsc-a1", "10.77.0.2").returncode == 0
    # Static entries, flushes, stats.
    ctl.ctl("fdb", "add", "vsc-p2", "30", "02:00:00:00:0c:30")
    e = [x for x in ctl.json("fdb", "show")["entries"] if x["mac"] == "02:00:00:00:0c:30"]
    assert e == [{"port": "vsc-p2", "vlan": 30, "mac": "02:00:00:00:0c:30", "age": 0, "static": True}]
    assert "static" in ctl.ctl("fdb", "show").stdout
    assert ctl.json("fdb", "stats")["static"] == 1
    ctl.ctl("fdb", "flush", "--vlan", "10")
    assert [x["vlan"] for x in ctl.json("fdb", "show")["entries"]] == [30]
    ping("vsc-a1", "10.77.0.2", count=1)
    ctl.ctl("fdb", "flush", "--port", "vsc-p1")
    assert all(x["port"] != "vsc-p1" for x in ctl.json("fdb", "show")["entries"])
    ctl.ctl("fdb", "flush")
    ctl.ctl("fdb", "del", "30", "02:00:00:00:0c:30")
    assert ctl.json("fdb", "show")["entries"] == []
    ctl.ctl("set", "switch", "mac-aging-time=45", "mac-table-size=5000")
    st = ctl.show()["switch"]["settings"]
    assert st["mac-aging-time"] == 45 and st["mac-table-size"] == 5000
    assert ctl.json("fdb", "stats")["limit"] == 5000
    assert ping("vsc-a1", "10.77.0.2").returncode == 0, "forwarding broken after the MAC table was replaced"
    m = ctl.ctl("metrics").stdout
    assert "# TYPE vswitch_port_rx_packets_total counter" in m
    assert 'vswitch_port_drops_total{port="vsc-p1",reason="mtu-exceeded"} 0' in m
    assert "vswitch_mac_table_limit 5000" in m
    assert "drops" in ctl.ctl("port", "stats").stdout


def test_link_down_up_and_delete_are_observed(ctl):
    ctl.start()
    two_ports(ctl)
    assert ping("vsc-a1", "10.77.0.2").returncode == 0
    harness.run(["ip", "-n", "vsc-a2", "link", "set", "eth0", "down"], check=True)
    assert wait_for(lambda: ctl.port("vsc-p2")["link"] == "down"), ctl.port("vsc-p2")
    assert all(e["port"] != "vsc-p2" for e in ctl.json("fdb", "show")["entries"]), "MACs of a down port not flushed"
    assert "port link down" in ctl.stderr()
    harness.run(["ip", "-n", "vsc-a2", "link", "set", "eth0", "up"], check=True)
    assert wait_for(lambda: ctl.port("vsc-p2")["link"] == "up")
    assert ping("vsc-a1", "10.77.0.2").returncode == 0, "forwarding did not resume after link up"
    harness.run(["ip", "-n", "vsc-a2", "link", "delete", "eth0"], check=True)
    assert wait_for(lambda: ctl.port("vsc-p2")["link"] == "detached"), ctl.port("vsc-p2")
    assert ping("vsc-a1", "10.77.0.2", count=1).returncode != 0
    ctl.ctl("del-port", "vsc-p2")
    assert ctl.port("vsc-p2") is None


def test_non_root_is_refused(ctl):
    ctl.start()
    os.chmod(ctl.workdir, 0o755)  # let uid 65534 reach the socket file itself
    for d in ctl.workdir.parents:
        if str(d) in ("/", "/tmp"):
            break
        os.chmod(d, os.stat(d).st_mode | 0o005)
    p = ctl.ctl("show", check=False, user=65534)
    assert p.returncode != 0
    assert "permission denied" in p.stderr and "root" in p.stderr, p.stderr
    assert oct(os.stat(ctl.socket).st_mode & 0o777) == "0o600"


def test_kill9_and_restart_restores_everything(ctl):
    ctl.start()
    two_ports(ctl)
    ctl.ctl("fdb", "add", "vsc-p2", "10", "02:00:00:00:0c:55")
    ctl.ctl("set", "switch", "mac-aging-time=123")
    assert ping("vsc-a1", "10.77.0.2").returncode == 0
    before = ctl.show()
    ctl.kill9()
    # The virtual systems kept their interfaces.
    assert {"vsc-a1", "vsc-a2"} <= harness.netns_list()
    ctl.start()  # same state directory, no topology
    after = ctl.show()
    assert after["ports"] == before["ports"]
    assert after["switch"]["settings"] == before["switch"]["settings"]
    assert after["profiles"] == before["profiles"]
    assert any(e["static"] and e["mac"] == "02:00:00:00:0c:55" for e in ctl.json("fdb", "show")["entries"])
    r = ping("vsc-a1", "10.77.0.2")
    assert r.returncode == 0, "no traffic after restore: " + r.stdout + ctl.stderr()
    # A clean stop keeps them too; the next start adopts them again.
    assert ctl.stop() == 0
    ctl.start()
    assert ping("vsc-a1", "10.77.0.2").returncode == 0


def test_corrupt_state_is_refused_whole(ctl):
    ctl.start()
    two_ports(ctl)
    ctl.kill9()
    harness.delete_leftovers(NS, PORTS)
    state = ctl.state_dir / "state.json"
    good = state.read_bytes()
    for bad in (good[: len(good) // 2], good.replace(b"vsc-p2", b"vsc-q2")):
        state.write_bytes(bad)
        rc = ctl.start(expect_ready=False)
        assert rc != 0
        err = ctl.stderr()
        assert "corrupt" in err and str(state) in err, err
        assert not ({"vsc-a1", "vsc-a2"} & harness.netns_list()), "a corrupt state was half-applied"


def test_topology_mode_has_a_control_socket(vswitch, tmp_path):
    sock = str(tmp_path / "topo.sock")
    d = vswitch("vswt-ping.xml", extra_args=["--control-socket", sock])
    p = harness.run([VSWITCHCTL, "--socket", sock, "show", "--format", "json"])
    assert p.returncode == 0, p.stderr
    names = [x["name"] for x in json.loads(p.stdout)["ports"]]
    assert names == [x.name for x in d.topo.ports]
