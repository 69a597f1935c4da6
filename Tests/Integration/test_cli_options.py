"""vswitchd's command line: every option is checked before anything is created, and `--check` refuses
what a real start refuses (same one-line errors). Needs only the daemon binary ($VSWITCHD); nothing here
creates a TAP, a namespace or a forwarding thread (a start that is not refused would: each is run with a
timeout, an empty topology and no control socket)."""

import os
import subprocess

import pytest

import harness

PROFILES = harness.REPO / "topologies" / "profiles" / "tenants.xml"


@pytest.fixture
def vswitchd():
    if not (os.path.isfile(harness.VSWITCHD) and os.access(harness.VSWITCHD, os.X_OK)):
        pytest.fail("daemon binary %s not found (build it, or set VSWITCHD)" % harness.VSWITCHD, pytrace=False)
    return harness.VSWITCHD


def topology(tmp_path, ports="", name="t.xml"):
    path = tmp_path / name
    path.write_text('<?xml version="1.0" encoding="UTF-8"?>\n'
                    '<Topology xmlns="urn:vswitch:topology:1" Name="cli">\n'
                    '  <ProfileFile Path="%s"/>\n%s</Topology>\n' % (PROFILES, ports))
    return path


def run(*args, timeout=15):
    """vswitchd ARGS; a daemon that starts (the option was not refused) is killed at the timeout."""
    try:
        return subprocess.run([harness.VSWITCHD, *map(str, args)], capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as e:
        return subprocess.CompletedProcess(e.cmd, "timeout", e.stdout or "", e.stderr or "")


def refused(p, message):
    assert p.returncode not in (0, "timeout"), "accepted (rc %s): %s %s" % (p.returncode, p.stdout, p.stderr)
    lines = [l for l in (p.stderr or "").splitlines() if l.strip()]
    assert len(lines) == 1, "expected one error line, got: %r" % p.stderr
    assert message in lines[0], "expected %r in %r" % (message, lines[0])
    assert "Fatal error" not in p.stderr


@pytest.mark.parametrize("threads", [5000, 65, -1])
def test_threads_out_of_range_is_refused(vswitchd, tmp_path, threads):
    """--threads has the topology's ForwardingThreads range, 0...64 (5000 aborted in an allocation, 100000
    exhausted the host's memory): refused with one line and a non-zero exit, with --check and without."""
    t = topology(tmp_path)
    refused(run("--topology", t, "--check", "--threads=%d" % threads), "--threads must be 0...64")
    refused(run("--topology", t, "--no-control-socket", "--threads=%d" % threads), "--threads must be 0...64")


@pytest.mark.parametrize("threads", [0, 64])
def test_threads_in_range_pass_check(vswitchd, tmp_path, threads):
    p = run("--topology", topology(tmp_path), "--check", "--threads=%d" % threads)
    assert p.returncode == 0 and "OK" in p.stdout, p.stderr


@pytest.mark.parametrize("option, message", [
    (["--port-io", "foo"], "--port-io must be one of: uring, syscall"),
    (["--offloads", "maybe"], "--offloads must be on or off"),
    (["--netdev-ring", "fast"], "--netdev-ring must be latency or throughput"),
    (["--capture-ring-mib", "0"], "--capture-ring-mib must be 1...1024"),
    (["--capture-ring-mib", "1025"], "--capture-ring-mib must be 1...1024"),
    (["--idle-spin-us", "1000001"], "--idle-spin-us must be 0...1000000"),
    (["--forwarding-cpus", "x"], "bad CPU list 'x'"),
    (["--metrics-listen", "127.0.0.1"], "--metrics-listen 127.0.0.1: expected HOST:PORT"),
])
def test_check_validates_every_option(vswitchd, tmp_path, option, message):
    """--check answers OK only if a real start would get past its options: each bad option is refused by --check
    with the same one line as by a start."""
    t = topology(tmp_path)
    checked = run("--topology", t, "--check", *option)
    refused(checked, message)
    started = run("--topology", t, "--no-control-socket", *option)
    refused(started, message)
    assert checked.stderr == started.stderr


def test_check_refuses_an_mtu_the_daemon_refuses(vswitchd, tmp_path):
    """Port MTU 9500 passed --check (the reader allowed 68..65521) while start-up refused it (the daemon's 9000):
    one range now (PortMTU), so --check refuses it with the reader's located diagnostic, and 9000 passes."""
    ports = '  <Port Name="vswt-cli0" Profile="urn:vswitch:profile:tenant-a" MTU="%d"/>\n'
    bad = topology(tmp_path, ports % 9500, name="bad.xml")
    p = run("--topology", bad, "--check")
    assert p.returncode != 0, p.stdout
    assert "bad.xml:4:" in p.stderr and "'9500' is out of range; MTU is 68..9000" in p.stderr, p.stderr
    good = topology(tmp_path, ports % 9000, name="good.xml")
    p = run("--topology", good, "--check")
    assert p.returncode == 0 and "1 ports" in p.stdout, p.stderr


def test_unknown_log_level_is_refused(vswitchd, tmp_path):
    """--log-level loud was taken silently as info."""
    msg = "--log-level must be one of: trace, debug, info, notice, warning, error, critical, got loud"
    t = topology(tmp_path)
    refused(run("--topology", t, "--check", "--log-level", "loud"), msg)
    refused(run("--topology", t, "--no-control-socket", "--log-level", "loud"), msg)
    assert run("--topology", t, "--check", "--log-level", "warning").returncode == 0
