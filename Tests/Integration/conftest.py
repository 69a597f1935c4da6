"""pytest fixtures for the vswitchd integration tests.

Run as root:  /usr/bin/python3 -m pytest Tests/Integration -v
Needs:        root, /dev/net/tun, `ip` (iproute2), `ping` (iputils-ping), Debian's python3-scapy and
              python3-pytest for /usr/bin/python3, and a built daemon ($VSWITCHD, default
              <repo>/.build/release/vswitchd; this suite never builds it).
Missing prerequisites fail the run; set VSWITCH_ALLOW_SKIP=1 to skip instead.
"""

import os
import shutil
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness  # noqa: E402


def _prerequisites():
    problems = []
    if os.geteuid() != 0:
        problems.append("not running as root (the daemon creates TAPs and namespaces)")
    if not os.path.exists("/dev/net/tun"):
        problems.append("/dev/net/tun is missing")
    for tool in ("ip", "ping"):
        if shutil.which(tool) is None:
            problems.append("`%s` not found (Debian: %s)" % (tool, "iproute2" if tool == "ip" else "iputils-ping"))
    try:
        import scapy.arch.linux  # noqa: F401
    except Exception as e:  # pragma: no cover
        problems.append("scapy not importable by %s (%s); apt-get install python3-scapy" % (sys.executable, e))
    if not (os.path.isfile(harness.VSWITCHD) and os.access(harness.VSWITCHD, os.X_OK)):
        problems.append("daemon binary %s not found (build it: swift build -c release --product vswitchd, "
                        "or set VSWITCHD)" % harness.VSWITCHD)
    return problems


@pytest.fixture(scope="session")
def environment():
    problems = _prerequisites()
    if problems:
        msg = "vswitchd integration tests cannot run: " + "; ".join(problems)
        if os.environ.get("VSWITCH_ALLOW_SKIP") == "1":
            pytest.skip(msg)
        pytest.fail(msg, pytrace=False)
    return True


@pytest.fixture
def vswitch(environment, tmp_path):
    """Factory: vswitch("vswt-ping.xml", threads=None) starts vswitchd on a topology from
    topologies/, waits for its ready file and returns a harness.Daemon. Every daemon started
    is stopped at teardown and its namespaces and TAPs are force-removed, whatever happened."""
    started = []

    def start(topology, threads=None, extra_args=()):
        d = harness.Daemon(harness.topology_path(topology), tmp_path / ("run%d" % len(started)),
                           threads=threads, extra_args=extra_args)
        started.append(d)
        error = None
        try:
            d.start()
        except harness.HarnessError as e:
            error = str(e)
        if error is not None:
            pytest.fail(error, pytrace=False)
        return d

    yield start

    for d in started:
        left = d.cleanup()
        if left:
            sys.stderr.write("cleanup removed leftovers of %s: %s\n" % (d.topo.path.name, ", ".join(left)))



@pytest.fixture(scope="module")
def vswitch_shared(environment, tmp_path_factory):
    """Like `vswitch`, but a daemon lives for the whole test module and is shared: the first
    call for a topology starts it, later calls return the same harness.Daemon. For modules
    whose tests each measure counter deltas on their own ports (the port-profile tests), so
    that a dozen namespaces start once rather than once per test."""
    running = {}

    def get(topology, threads=None, extra_args=()):
        if topology in running:
            d = running[topology]
            if not d.alive():
                pytest.fail("the shared vswitchd on %s has exited (%s); stderr:\n%s"
                            % (topology, d.proc.poll(), d.stderr()[-3000:]), pytrace=False)
            return d
        d = harness.Daemon(harness.topology_path(topology),
                           tmp_path_factory.mktemp("shared-" + topology.replace(".xml", "")),
                           threads=threads, extra_args=extra_args)
        running[topology] = d
        try:
            d.start()
        except harness.HarnessError as e:
            pytest.fail(str(e), pytrace=False)
        return d

    yield get

    for d in running.values():
        left = d.cleanup()
        if left:
            sys.stderr.write("cleanup removed leftovers of %s: %s\n" % (d.topo.path.name, ", ".join(left)))
