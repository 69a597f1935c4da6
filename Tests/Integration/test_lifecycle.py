"""Start-up errors and clean stops: what the daemon leaves behind on the system."""

import json
import re
import signal
import subprocess
import time

import pytest

import harness
from harness import TopologyInfo, delete_leftovers, link_exists, netns_list, run, topology_path

CRASH_MARKERS = ("Fatal error", "Stack dump", "Backtrace", "Segmentation fault", "💣")


def run_daemon_expecting_failure(tmp_path, topology):
    ready = tmp_path / "ready"
    cmd = [harness.VSWITCHD, "--topology", str(topology), "--ready-file", str(ready),
           "--stats-json", str(tmp_path / "stats.json")]
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=20, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as e:
        pytest.fail("vswitchd did not exit within 20 s on a bad start-up (it should refuse to start); "
                    "stderr: %s" % (e.stderr or b"")[-2000:], pytrace=False)
    assert p.returncode != 0, "vswitchd exited 0 on a bad start-up; stderr:\n%s" % p.stderr
    assert not ready.exists(), "vswitchd created its ready file although start-up failed"
    for marker in CRASH_MARKERS:
        assert marker not in p.stderr, "vswitchd crashed instead of refusing cleanly:\n%s" % p.stderr
    return p


def assert_nothing_left(namespaces, links, keep=()):
    present = netns_list()
    left_ns = [ns for ns in namespaces if ns in present and ns not in keep]
    left_links = [link for link in links if link not in keep and link_exists(link)]
    assert not left_ns and not left_links, "left behind: namespaces %s, links %s" % (left_ns, left_links)


def lines_naming(stderr, word):
    return [line for line in stderr.splitlines() if word in line]


# --- 7. start-up errors ---------------------------------------------------------------------------

def test_existing_namespace_refused_and_nothing_left(environment, tmp_path):
    topo = TopologyInfo(topology_path("vswt-err-ns.xml"))
    delete_leftovers(topo.namespaces, topo.links)
    taken = "vst-e1-b"  # the namespace of the second port
    assert run(["ip", "netns", "add", taken]).returncode == 0
    try:
        p = run_daemon_expecting_failure(tmp_path, topo.path)
        named = lines_naming(p.stderr, taken)
        assert named, "stderr does not name the existing namespace %s:\n%s" % (taken, p.stderr)
        assert len(named) == 1, "expected one clear line naming %s, got %d:\n%s" % (taken, len(named), p.stderr)
        assert taken in netns_list(), "vswitchd deleted the namespace %s it did not create" % taken
        assert_nothing_left(topo.namespaces, topo.links, keep=[taken])
    finally:
        delete_leftovers(topo.namespaces, topo.links)


def test_existing_interface_refused_and_nothing_left(environment, tmp_path):
    topo = TopologyInfo(topology_path("vswt-err-if.xml"))
    delete_leftovers(topo.namespaces, topo.links)
    taken = "vswt-e2-b"  # the TAP name of the second port
    peer = "vswt-e2-peer"
    delete_leftovers(links=[peer])
    # No dummy module in this kernel: a veth pair stands for "some other interface".
    r = run(["ip", "link", "add", taken, "type", "veth", "peer", "name", peer])
    assert r.returncode == 0, r.stderr
    try:
        p = run_daemon_expecting_failure(tmp_path, topo.path)
        named = lines_naming(p.stderr, taken)
        assert named, "stderr does not name the existing interface %s:\n%s" % (taken, p.stderr)
        assert len(named) == 1, "expected one clear line naming %s, got %d:\n%s" % (taken, len(named), p.stderr)
        assert link_exists(taken), "vswitchd deleted the interface %s it did not create" % taken
        assert_nothing_left(topo.namespaces, topo.links, keep=[taken])
    finally:
        delete_leftovers(topo.namespaces, topo.links + [peer])


def test_malformed_topology_reports_file_line_and_creates_nothing(environment, tmp_path):
    path = topology_path("vswt-err-xml.xml")  # </Prt> on line 9 closes the <Port> of line 6
    delete_leftovers(["vst-e4-a"], ["vswt-e4-a"])
    p = run_daemon_expecting_failure(tmp_path, path)
    m = re.search(r"vswt-err-xml\.xml:(\d+):(\d+): error:", p.stderr)
    assert m, "no FILE:LINE:COL: error: in stderr:\n%s" % p.stderr
    assert int(m.group(1)) in (6, 9), "error reported at line %s, the mismatch is on line 9 (opened on 6):\n%s" % (
        m.group(1), p.stderr)
    assert_nothing_left(["vst-e4-a"], ["vswt-e4-a"])


def test_unknown_profile_refused_and_nothing_left(environment, tmp_path):
    topo = TopologyInfo(topology_path("vswt-err-prof.xml"))
    delete_leftovers(topo.namespaces, topo.links)
    try:
        p = run_daemon_expecting_failure(tmp_path, topo.path)
        assert "urn:vswitch:profile:vswt-no-such-profile" in p.stderr, (
            "stderr does not name the unknown profile ID:\n%s" % p.stderr)
        assert_nothing_left(topo.namespaces, topo.links)
    finally:
        delete_leftovers(topo.namespaces, topo.links)


# --- 8. clean stop ------------------------------------------------------------------------------------

@pytest.mark.parametrize("sig,topology", [(signal.SIGTERM, "vswt-stop.xml"), (signal.SIGINT, "vswt-stopint.xml")],
                         ids=["SIGTERM", "SIGINT"])
def test_clean_stop(vswitch, sig, topology):
    d = vswitch(topology)
    a, b = d.topo.ports[0], d.topo.ports[1]
    tok = harness.new_token()
    d.send(a.name, *[harness.frame(a.mac, dst=b.mac, token=tok)] * 5)
    time.sleep(0.3)
    assert not d.stats_path.exists(), "stats JSON written before any SIGUSR1/stop"

    rc = d.stop(sig=sig, timeout=harness.STOP_TIMEOUT)
    assert rc is not None, "vswitchd did not exit within %ss of %s (killed); stderr tail:\n%s" % (
        harness.STOP_TIMEOUT, sig.name, d.stderr()[-2000:])
    assert rc == 0, "vswitchd exited %s after %s; stderr tail:\n%s" % (rc, sig.name, d.stderr()[-2000:])

    assert_nothing_left(d.topo.namespaces, d.topo.links)

    assert d.stats_path.exists(), "no final stats JSON written at %s" % sig.name
    st = json.loads(d.stats_path.read_text())
    names = [p["name"] for p in st["ports"]]
    assert names == [a.name, b.name], names
    rx = d.port_stats(st, a.name)["rx_packets"]
    tx = d.port_stats(st, b.name)["tx_packets"]
    assert rx == 5 and tx == 5, "final counters: %s rx_packets=%d, %s tx_packets=%d (sent 5 A->B)" % (
        a.name, rx, b.name, tx)
    out = d.stdout()
    assert a.name in out and b.name in out, "final counters not printed on stdout: %r" % out[-1000:]
