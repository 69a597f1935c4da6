"""The saved state and the host's devices agree, whenever the daemon dies (session 8 review).

Every change is saved before it touches the system (write-ahead): a `kill -9` in the middle of
`add-port` comes back with the port (the restore adopts or recreates what was half made) or without
anything of it, never with an unowned namespace that blocks the name; a `del-port` whose devices were
not yet destroyed finishes at the next start; `--topology` with a saved state removes that state's
devices instead of leaving them unowned."""

import json
import os
import time
import zlib
import subprocess

import pytest

import harness
from ctlharness import PROFILES, TENANT_A, VSWITCHCTL, CtlDaemon, ping

NS = ["vsw8-ns1", "vsw8-ns2", "vst-p-a", "vst-p-b"]
PORTS = ["vsw8-p1", "vsw8-p2", "vswt-p-a", "vswt-p-b"]


@pytest.fixture
def daemon(environment, tmp_path):
    harness.delete_leftovers(NS, PORTS)
    d = CtlDaemon(tmp_path, namespaces=NS, links=PORTS)
    try:
        yield d
    finally:
        d.cleanup()   # a stop in state mode keeps the virtual systems: removed here


PORT_ARGS = {"vsw8-p1": ["--profile", TENANT_A, "--mac", "02:00:00:00:8a:01", "--namespace", "vsw8-ns1", "--address", "10.88.0.1/24"],
             "vsw8-p2": ["--profile", TENANT_A, "--mac", "02:00:00:00:8a:02", "--namespace", "vsw8-ns2", "--address", "10.88.0.2/24"]}


def add_port(d, name):
    d.ctl("add-port", name, *PORT_ARGS[name])


def test_kill9_during_add_port_leaves_the_port_or_nothing(daemon):
    d = daemon
    d.start()
    d.ctl("profile", "load", str(PROFILES))
    add_port(d, "vsw8-p2")
    outcomes = []
    for delay in [0.0, 0.004, 0.008, 0.012, 0.016, 0.02, 0.025, 0.03, 0.04, 0.06]:
        ctl = subprocess.Popen([VSWITCHCTL, "--socket", d.socket, "add-port", "vsw8-p1", *PORT_ARGS["vsw8-p1"]],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(delay)
        d.kill9()
        ctl.wait(timeout=10)
        d.start()
        present = d.port("vsw8-p1") is not None
        ns_there = "vsw8-ns1" in harness.netns_list()
        outcomes.append((delay, present, ns_there))
        if present:
            assert ns_there, "restored port without its virtual system"
            assert harness.ns_exec("vsw8-ns1", "ip", "link", "show", "eth0").returncode == 0
            r = ping("vsw8-ns1", "10.88.0.2")
            assert r.returncode == 0, "a port restored after kill -9 mid add-port does not forward: %s" % r.stdout
            d.ctl("del-port", "vsw8-p1")
        else:
            assert not ns_there, "kill -9 after %.3f s left namespace vsw8-ns1 with no port owning it" % delay
            assert not harness.link_exists("vsw8-p1"), "kill -9 left TAP vsw8-p1 with no port owning it"
        assert "vsw8-ns1" not in harness.netns_list()
    print("kill -9 during add-port (delay s, port restored, namespace present): %s" % outcomes)
    assert d.port("vsw8-p2") is not None, "the other port survived every restart"


def rewrite_state(path, edit):
    """Loads state.json (header line + JSON), applies `edit` to the object, writes it back with its header."""
    raw = path.read_bytes()
    nl = raw.index(b"\n")
    obj = json.loads(raw[nl + 1:])
    edit(obj)
    body = json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()
    path.write_bytes(b"vswitch-state 1 length=%d crc32=%08x\n" % (len(body), zlib.crc32(body) & 0xFFFFFFFF) + body)


def test_del_port_killed_before_its_devices_were_gone_is_finished_at_start(daemon):
    d = daemon
    d.start()
    d.ctl("profile", "load", str(PROFILES))
    add_port(d, "vsw8-p1")
    add_port(d, "vsw8-p2")
    d.kill9()
    # What del-port saves before it destroys anything: the port gone from "ports", named in "removing".
    def delete_p1(obj):
        p1 = [p for p in obj["ports"] if p["name"] == "vsw8-p1"]
        obj["ports"] = [p for p in obj["ports"] if p["name"] != "vsw8-p1"]
        obj["removing"] = p1
    rewrite_state(d.state_dir / "state.json", delete_p1)
    assert "vsw8-ns1" in harness.netns_list()
    d.start()
    assert "vsw8-ns1" not in harness.netns_list(), "the deleted port's namespace is still there: " + d.stderr()[-1500:]
    assert not harness.link_exists("vsw8-p1")
    assert "removing what a deleted port left behind" in d.stderr()
    assert [p["name"] for p in d.show()["ports"]] == ["vsw8-p2"]
    assert "removing" not in (d.state_dir / "state.json").read_text(), "the finished removal is still in the state"
    add_port(d, "vsw8-p1")
    assert ping("vsw8-ns1", "10.88.0.2").returncode == 0


TOPOLOGY = str(harness.REPO / "Tests" / "Integration" / "topologies" / "vswt-ping.xml")


def saved_state_with_one_port(d):
    """A state-mode daemon with port vsw8-p1 (namespace vsw8-ns1), stopped: its virtual system stays on the host."""
    d.start()
    d.ctl("profile", "load", str(PROFILES))
    add_port(d, "vsw8-p1")
    assert d.stop() == 0
    assert "vsw8-ns1" in harness.netns_list(), "a stop in state mode keeps the virtual systems"


def test_topology_replaces_the_saved_state_and_its_devices(daemon):
    d = daemon
    topology = TOPOLOGY
    saved_state_with_one_port(d)
    for run in range(2):
        d.start(extra=["--topology", topology])
        assert "vsw8-ns1" not in harness.netns_list(), "the replaced state's namespace is left unowned"
        assert not harness.link_exists("vsw8-p1")
        assert [p["name"] for p in d.show()["ports"]] == ["vswt-p-a", "vswt-p-b"]
        assert ping("vst-p-a", "10.77.1.2").returncode == 0
        if run == 0:
            assert "the topology replaces the saved state" in d.stderr()
        # The second start with the same arguments finds the first one's persistent ports and replaces them too.
        assert d.stop() == 0


def test_a_refused_topology_start_leaves_the_saved_state_devices(daemon):
    """--topology with a saved state removes that state's devices only once the start cannot be refused any more:
    a start refused by a later check (here a file in the control socket's way) destroys nothing."""
    d = daemon
    topology = TOPOLOGY
    saved_state_with_one_port(d)
    with open(d.socket, "w") as f:
        f.write("in the way\n")
    assert d.start(extra=["--topology", topology], expect_ready=False) != 0
    assert "not a socket is in the way" in d.stderr()
    assert "vsw8-ns1" in harness.netns_list(), "a refused start destroyed the saved state's namespace"
    os.unlink(d.socket)
    d.start(extra=["--topology", topology])
    assert "vsw8-ns1" not in harness.netns_list()
    assert [p["name"] for p in d.show()["ports"]] == ["vswt-p-a", "vswt-p-b"]
