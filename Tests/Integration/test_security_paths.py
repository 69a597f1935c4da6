"""Paths and names a careless operator (or a client) gives the root daemon (session 8 security review):
nothing at a path that is not the daemon's own is destroyed, nothing blocks the control thread, nothing
a name holds reaches a log or a metric as a line of its own."""

import os
import subprocess
import time

import pytest

import harness
from ctlharness import PROFILES, TENANT_A, VSWITCHCTL, CtlDaemon

PCAP = harness.REPO / "Tests" / "Integration" / "topologies"


@pytest.fixture
def daemon(environment, tmp_path):
    d = CtlDaemon(tmp_path)
    try:
        yield d
    finally:
        d.cleanup()


def test_control_socket_path_holding_a_file_is_refused_not_destroyed(daemon, tmp_path):
    d = daemon
    precious = tmp_path / "ctl.sock"
    precious.write_text("important config\n")
    rc = d.start(expect_ready=False)
    assert rc != 0
    assert "not a socket is in the way" in d.stderr(), d.stderr()
    assert precious.read_text() == "important config\n", "the file at --control-socket was destroyed"


def test_pcap_port_on_a_fifo_is_refused_at_once(daemon, tmp_path):
    d = daemon
    d.start()
    d.ctl("profile", "load", str(PROFILES))
    fifo = tmp_path / "in.pcap"
    os.mkfifo(fifo)
    t = time.monotonic()
    p = d.ctl("add-port", "rs-p1", "--type", "pcap", "--file", str(fifo), "--profile", TENANT_A, check=False)
    assert p.returncode != 0 and "not a regular file" in p.stderr, p.stderr
    out = tmp_path / "out.pcap"
    os.mkfifo(out)
    good = tmp_path / "good.pcap"
    good.write_bytes(bytes.fromhex("d4c3b2a1020004000000000000000000ffff000001000000"))  # an empty pcap
    p = d.ctl("add-port", "rs-p2", "--type", "pcap", "--file", str(good), "--output", str(out), "--profile", TENANT_A, check=False)
    assert p.returncode != 0 and "not a regular file" in p.stderr, p.stderr
    assert time.monotonic() - t < 10, "the control thread blocked on a FIFO"
    assert d.show()["ports"] == []


def test_capture_refused_keeps_an_existing_file(daemon, tmp_path):
    d = daemon
    d.start()
    keep = tmp_path / "keep.pcap"
    keep.write_bytes(b"yesterday's capture")
    p = subprocess.run([VSWITCHCTL, "--socket", d.socket, "capture", "nosuchport", "-w", str(keep)],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode != 0 and "no such port" in p.stderr, p.stderr
    assert keep.read_bytes() == b"yesterday's capture", "a refused capture destroyed the existing file"
    assert [f.name for f in tmp_path.iterdir() if f.name.endswith(".tmp")] == [], "a temporary file was left"
    null = subprocess.run([VSWITCHCTL, "--socket", d.socket, "capture", "nosuchport", "-w", "/dev/null"],
                          capture_output=True, text=True, timeout=30)
    assert null.returncode != 0 and os.path.exists("/dev/null") and not os.path.isfile("/dev/null")


def test_port_names_with_control_characters_are_refused(daemon):
    d = daemon
    d.start()
    d.ctl("profile", "load", str(PROFILES))
    name = 'p\r\nvswitch_injected_total{port=\\"evil\\"} 31337\r\n#'
    line = ('{"command":"add-port","args":{"name":"%s","type":"pcap","file":"/dev/null","profile":"%s"}}\n'
            % (name.replace("\r", "\\r").replace("\n", "\\n"), TENANT_A)).encode()
    [resp] = d.raw(line)
    assert resp["ok"] is False and "is not valid" in resp["error"], resp
    assert "vswitch_injected_total" not in d.ctl("metrics").stdout


def test_a_client_piling_up_descriptors_is_dropped(daemon):
    """A request carries at most one descriptor: a (root) client passing them by the dozen without ever ending a
    request line is dropped before the daemon runs out of file descriptors."""
    import array
    import socket
    d = daemon
    d.start()
    fd_dir = "/proc/%d/fd" % d.proc.pid
    before = len(os.listdir(fd_dir))
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(d.socket)
    nulls = [os.open("/dev/null", os.O_RDONLY) for _ in range(12)]
    dropped = False
    try:
        for _ in range(200):
            s.sendmsg([b"x"], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", nulls))])
    except (BrokenPipeError, ConnectionResetError):
        dropped = True
    finally:
        for fd in nulls:
            os.close(fd)
    time.sleep(0.3)
    if not dropped:
        s.settimeout(2)
        try:
            dropped = s.recv(100) == b""
        except ConnectionResetError:
            dropped = True
    s.close()
    assert dropped, "the client was not dropped"
    assert len(os.listdir(fd_dir)) <= before + 2, "the daemon kept the passed descriptors"
    assert d.ctl("show").returncode == 0
