"""Helpers for the control-plane integration tests (test_control_*.py): a vswitchd in state
mode (its own state directory and control socket under a temporary directory) and vswitchctl.

Independent of conftest.py's fixtures (which start vswitchd on a topology); uses the same
binaries: $VSWITCHD (default <repo>/.build/release/vswitchd) and $VSWITCHCTL (default
<repo>/.build/release/vswitchctl).
"""

import contextlib
import json
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import harness

VSWITCHCTL = os.environ.get("VSWITCHCTL", str(harness.REPO / ".build" / "release" / "vswitchctl"))
PROFILES = harness.REPO / "topologies" / "profiles" / "tenants.xml"
TENANT_A = "urn:vswitch:profile:tenant-a"
TENANT_B = "urn:vswitch:profile:tenant-b"


class CtlDaemon:
    """vswitchd --state-dir DIR --control-socket SOCK, restartable on the same state."""

    def __init__(self, workdir, namespaces=(), links=()):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.state_dir = self.workdir / "state"
        self.socket = str(self.workdir / "ctl.sock")
        self.namespaces = list(namespaces)
        self.links = list(links)
        self.proc = None
        self.runs = 0

    def start(self, extra=(), expect_ready=True):
        self.runs += 1
        ready = self.workdir / ("ready%d" % self.runs)
        self.err_path = self.workdir / ("stderr%d" % self.runs)
        self._err = open(self.err_path, "w")
        cmd = [harness.VSWITCHD, "--state-dir", str(self.state_dir), "--control-socket", self.socket,
               "--ready-file", str(ready), "--log-level", "debug", *extra]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=self._err, stdin=subprocess.DEVNULL,
                                     start_new_session=True)
        if not expect_ready:
            return self.proc.wait(timeout=20)
        deadline = time.monotonic() + 20
        while not ready.exists():
            if self.proc.poll() is not None:
                raise harness.HarnessError("vswitchd exited %s: %s" % (self.proc.returncode, self.stderr()))
            if time.monotonic() > deadline:
                raise harness.HarnessError("vswitchd not ready: %s" % self.stderr())
            time.sleep(0.05)
        return self

    def stderr(self):
        with contextlib.suppress(Exception):
            self._err.flush()
        return self.err_path.read_text(errors="replace")

    def kill9(self):
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=5)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                return self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill9()
        return self.proc.returncode if self.proc else None

    def cleanup(self):
        self.stop()
        return harness.delete_leftovers(self.namespaces, self.links)

    # -- vswitchctl --

    def ctl(self, *args, check=True, user=None):
        cmd = [VSWITCHCTL, "--socket", self.socket, *args]
        if user is not None:
            cmd = ["setpriv", "--reuid=%d" % user, "--regid=%d" % user, "--clear-groups", *cmd]
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
        if check and p.returncode != 0:
            raise AssertionError("vswitchctl %s failed (%d): %s" % (" ".join(args), p.returncode, p.stderr))
        return p

    def json(self, *args):
        return json.loads(self.ctl(*args, "--format", "json").stdout)

    def show(self):
        return self.json("show")

    def port(self, name):
        for p in self.show()["ports"]:
            if p["name"] == name:
                return p
        return None

    def raw(self, data, timeout=5):
        """Sends raw bytes on the control socket, returns the response lines (parsed)."""
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(timeout)
        s.connect(self.socket)
        try:
            s.sendall(data)
            s.shutdown(socket.SHUT_WR)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the daemon closed the connection (e.g. an oversized request): read what it said
        buf = b""
        with contextlib.suppress(socket.timeout, ConnectionResetError):
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                buf += chunk
        s.close()
        return [json.loads(line) for line in buf.decode().splitlines() if line.strip()]


def wait_for(predicate, timeout=5.0, interval=0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


def ping(ns, ip, count=3):
    return harness.ns_exec(ns, "ping", "-c", str(count), "-i", "0.2", "-W", "1", ip, timeout=30)
