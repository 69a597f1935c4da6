"""Harness for the vswitchd integration tests: runs the daemon on a topology, talks to the
virtual systems (network namespaces) it creates, and cleans up whatever happens.

Nothing here builds the daemon: the binary comes from $VSWITCHD (default
<repo>/.build/release/vswitchd, built by the Makefile).
"""

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import uuid
import xml.etree.ElementTree as ET
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
TOPOLOGIES = HERE / "topologies"
AGENT = HERE / "nsagent.py"
PYTHON = "/usr/bin/python3"  # Debian's python3-scapy lives here, not in a pyenv Python
VSWITCHD = os.environ.get("VSWITCHD", str(REPO / ".build" / "release" / "vswitchd"))
TOPO_NS = "{urn:vswitch:topology:1}"

READY_TIMEOUT = 20.0
STOP_TIMEOUT = 5.0
STATS_TIMEOUT = 5.0

# An EtherType from the IEEE "local experimental" range: no namespace's kernel answers it.
TEST_ETHERTYPE = 0x88B5


class HarnessError(Exception):
    pass


def run(cmd, check=False, timeout=30, **kw):
    """Runs a command, returns CompletedProcess with text output."""
    return subprocess.run(cmd, capture_output=True, text=True, check=check, timeout=timeout, **kw)


def ns_exec(ns, *cmd, timeout=30):
    return run(["ip", "netns", "exec", ns, *cmd], timeout=timeout)


def netns_list():
    out = run(["ip", "netns", "list"]).stdout
    return {line.split()[0] for line in out.splitlines() if line.strip()}


def link_exists(name):
    return run(["ip", "link", "show", "dev", name]).returncode == 0


def delete_leftovers(namespaces=(), links=()):
    """Removes namespaces and root-namespace links, ignoring what is already gone.
    Returns the names that were actually still there."""
    found = []
    present = netns_list()
    for ns in namespaces:
        if ns in present:
            found.append(ns)
            run(["ip", "netns", "delete", ns])
    for link in links:
        if link_exists(link):
            found.append(link)
            run(["ip", "link", "delete", "dev", link])
    return found


# ---------------------------------------------------------------------------------------
# Topology files


class PortInfo:
    def __init__(self, name, namespace, ifname, mac, addresses, mtu, profile):
        self.name = name
        self.namespace = namespace
        self.ifname = ifname
        self.mac = mac
        self.addresses = addresses
        self.mtu = mtu
        self.profile = profile

    @property
    def ip(self):
        return self.addresses[0].split("/")[0] if self.addresses else None


class TopologyInfo:
    """What the tests need to know about a topology file (its ports and virtual systems)."""

    def __init__(self, path):
        self.path = Path(path)
        root = ET.parse(self.path).getroot()
        self.name = root.get("Name")
        self.ports = []
        for p in root.iter(TOPO_NS + "Port"):
            vs = p.find(TOPO_NS + "VirtualSystem")
            self.ports.append(PortInfo(
                name=p.get("Name"),
                namespace=vs.get("Namespace") if vs is not None else None,
                ifname=(vs.get("InterfaceName") or "eth0") if vs is not None else None,
                mac=(vs.get("MACAddress") or "").lower() if vs is not None else None,
                addresses=[a.text.strip() for a in vs.iter(TOPO_NS + "Address")] if vs is not None else [],
                mtu=int(p.get("MTU") or 1500),
                profile=p.get("Profile"),
            ))

    @property
    def namespaces(self):
        return [p.namespace for p in self.ports if p.namespace]

    @property
    def links(self):
        return [p.name for p in self.ports]

    def port(self, name):
        for p in self.ports:
            if p.name == name:
                return p
        raise KeyError(name)


def topology_path(name):
    p = TOPOLOGIES / name
    if not p.exists():
        raise HarnessError("no topology %s" % p)
    return p


# ---------------------------------------------------------------------------------------
# Namespace agents


class NsAgent:
    """One nsagent.py process inside a namespace, driven over JSON lines."""

    def __init__(self, ns):
        self.ns = ns
        self.proc = subprocess.Popen(
            ["ip", "netns", "exec", ns, PYTHON, "-u", str(AGENT)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            bufsize=1, start_new_session=True)

    def call(self, timeout=15, **cmd):
        if self.proc.poll() is not None:
            raise HarnessError("agent in %s exited (%s): %s" % (self.ns, self.proc.returncode, self.proc.stderr.read()))
        self.proc.stdin.write(json.dumps(cmd) + "\n")
        self.proc.stdin.flush()
        import select
        r, _, _ = select.select([self.proc.stdout], [], [], timeout)
        if not r:
            raise HarnessError("agent in %s did not answer %r within %ss" % (self.ns, cmd.get("op"), timeout))
        line = self.proc.stdout.readline()
        if not line:
            err = ""
            with contextlib.suppress(Exception):
                self.proc.wait(timeout=2)
                err = self.proc.stderr.read()
            raise HarnessError("agent in %s died: %s" % (self.ns, err.strip()))
        reply = json.loads(line)
        if not reply.get("ok"):
            raise HarnessError("agent in %s: %s failed: %s" % (self.ns, cmd.get("op"), reply.get("error")))
        return reply

    def close(self):
        if self.proc.poll() is None:
            with contextlib.suppress(Exception):
                self.proc.stdin.write(json.dumps({"op": "exit"}) + "\n")
                self.proc.stdin.flush()
            try:
                self.proc.wait(timeout=2)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=2)
        for f in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            with contextlib.suppress(Exception):
                f.close()


# ---------------------------------------------------------------------------------------
# Frames


def new_token():
    """A marker put into every test frame's payload, so captures can ignore foreign traffic."""
    return ("VSWT" + uuid.uuid4().hex[:16]).encode()


def frame(src, dst="ff:ff:ff:ff:ff:ff", vlan=None, prio=0, token=b"", size=None, tpid=0x8100):
    """Builds a test frame with scapy: Ethernet [+ 802.1Q] + EtherType 0x88B5 + token payload.
    `size` is the total frame length on the wire (without FCS)."""
    from scapy.layers.l2 import Dot1Q, Ether
    from scapy.packet import Raw
    if vlan is None:
        pkt = Ether(src=src, dst=dst, type=TEST_ETHERTYPE)
        hdr = 14
    else:
        pkt = Ether(src=src, dst=dst, type=tpid) / Dot1Q(vlan=vlan, prio=prio, type=TEST_ETHERTYPE)
        hdr = 18
    payload = token
    want = (size - hdr) if size else max(46, len(token))
    if len(payload) < want:
        payload = payload + bytes(want - len(payload))
    return bytes(pkt / Raw(load=payload))


def parse(raw):
    from scapy.layers.l2 import Ether
    return Ether(raw)


# ---------------------------------------------------------------------------------------
# The daemon


class Capture:
    """Frames captured in several namespaces during a `with daemon.capture(...)` block.
    With `summary=token`, the agents only count the frames carrying the token, per
    destination MAC: `cap.summary[port]` is {dst_hex: [frames, bytes]} and `raw` stays empty."""

    def __init__(self):
        self.raw = {}
        self.summary = {}

    def counted(self, port, dst=None):
        """(frames, bytes) counted in a summary capture at `port` (to `dst`, or in total)."""
        rows = self.summary.get(port, {})
        if dst is not None:
            return tuple(rows.get(dst.replace(":", "").lower(), [0, 0]))
        return (sum(r[0] for r in rows.values()), sum(r[1] for r in rows.values()))

    def frames(self, ns, token):
        """Parsed frames captured in `ns` whose bytes contain `token`."""
        return [parse(bytes.fromhex(h)) for h in self.raw.get(ns, []) if token in bytes.fromhex(h)]

    def describe(self, ns):
        return [parse(bytes.fromhex(h)).summary() for h in self.raw.get(ns, [])]


class Daemon:
    """A running vswitchd on one topology, with helpers to drive its virtual systems."""

    def __init__(self, topology, workdir, threads=None, extra_args=()):
        self.topo = TopologyInfo(topology)
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.stats_path = self.workdir / "stats.json"
        self.ready_path = self.workdir / "ready"
        self.stdout_path = self.workdir / "vswitchd.stdout"
        self.stderr_path = self.workdir / "vswitchd.stderr"
        self.threads = threads
        self.extra_args = list(extra_args)
        self.proc = None
        self.agents = {}
        self.returncode = None
        self.stop_duration = None

    # -- lifecycle ------------------------------------------------------------------------

    def command(self):
        cmd = [VSWITCHD, "--topology", str(self.topo.path), "--stats-json", str(self.stats_path),
               "--ready-file", str(self.ready_path), "--log-level", "debug"]
        if self.threads:
            cmd += ["--threads", str(self.threads)]
        return cmd + self.extra_args

    def start(self):
        leftovers = delete_leftovers(self.topo.namespaces, self.topo.links)
        if leftovers:
            sys.stderr.write("note: removed leftovers of an earlier run: %s\n" % ", ".join(leftovers))
        with contextlib.suppress(FileNotFoundError):
            self.ready_path.unlink()
        self._out = open(self.stdout_path, "w")
        self._err = open(self.stderr_path, "w")
        self.proc = subprocess.Popen(self.command(), stdout=self._out, stderr=self._err,
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + READY_TIMEOUT
        while not self.ready_path.exists():
            if self.proc.poll() is not None:
                raise HarnessError("vswitchd exited with %s before it was ready; stderr:\n%s"
                                   % (self.proc.returncode, self.stderr()))
            if time.monotonic() > deadline:
                raise HarnessError("vswitchd not ready within %ss (no %s); stderr:\n%s"
                                   % (READY_TIMEOUT, self.ready_path, self.stderr()))
            time.sleep(0.05)
        # One agent per virtual system, started in parallel (each imports scapy once).
        for ns in self.topo.namespaces:
            self.agents[ns] = NsAgent(ns)
        for agent in self.agents.values():
            agent.call(op="hello", timeout=20)
        return self

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, sig=signal.SIGTERM, timeout=STOP_TIMEOUT):
        """Signals the daemon and waits; returns its exit code (None if it had to be killed)."""
        self.close_agents()
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            t0 = time.monotonic()
            self.proc.send_signal(sig)
            try:
                self.returncode = self.proc.wait(timeout=timeout)
                self.stop_duration = time.monotonic() - t0
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=5)
                self.returncode = None
        else:
            self.returncode = self.proc.returncode
        for f in (self._out, self._err):
            with contextlib.suppress(Exception):
                f.close()
        return self.returncode

    def close_agents(self):
        for agent in self.agents.values():
            agent.close()
        self.agents = {}

    def cleanup(self):
        """Always safe: stops everything and removes whatever the topology may have left."""
        with contextlib.suppress(Exception):
            self.stop()
        return delete_leftovers(self.topo.namespaces, self.topo.links)

    def stderr(self):
        with contextlib.suppress(Exception):
            self._err.flush()
        try:
            return self.stderr_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def stdout(self):
        with contextlib.suppress(Exception):
            self._out.flush()
        try:
            return self.stdout_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    # -- counters ------------------------------------------------------------------------

    def _stamp(self):
        try:
            st = os.stat(self.stats_path)
            return (st.st_mtime_ns, st.st_ino, st.st_size)
        except FileNotFoundError:
            return None

    def stats(self):
        """SIGUSR1, wait for a fresh --stats-json file, return it parsed."""
        if not self.alive():
            raise HarnessError("vswitchd is not running (exit %s); stderr:\n%s" % (self.proc.poll(), self.stderr()))
        before = self._stamp()
        self.proc.send_signal(signal.SIGUSR1)
        deadline = time.monotonic() + STATS_TIMEOUT
        while True:
            now = self._stamp()
            if now is not None and now != before:
                try:
                    return json.loads(self.stats_path.read_text())
                except (json.JSONDecodeError, FileNotFoundError):
                    pass  # not renamed into place atomically? retry until the deadline
            if time.monotonic() > deadline:
                raise HarnessError("no fresh %s within %ss of SIGUSR1" % (self.stats_path, STATS_TIMEOUT))
            time.sleep(0.02)

    @staticmethod
    def port_stats(stats, port):
        for p in stats["ports"]:
            if p["name"] == port:
                return p
        raise KeyError("port %s not in stats: %s" % (port, [p["name"] for p in stats["ports"]]))

    def drops(self, stats, port, reason):
        d = self.port_stats(stats, port)["drops"]
        if reason not in d:
            raise KeyError("drop reason %r not in the JSON of port %s (has %s)" % (reason, port, sorted(d)))
        return d[reason]

    @staticmethod
    def mac_entries(stats, mac=None):
        rows = stats["mac_table"]
        if mac is not None:
            rows = [r for r in rows if r["mac"].lower() == mac.lower()]
        return rows

    # -- traffic -------------------------------------------------------------------------

    def vs(self, port):
        """PortInfo (namespace, MAC, interface, addresses) of a port's virtual system."""
        return self.topo.port(port)

    def send(self, port, *frames, gap=0.0):
        """Sends raw frames from the virtual system of `port` (inside its namespace)."""
        p = self.vs(port)
        return self.agents[p.namespace].call(op="send", iface=p.ifname, frames=[f.hex() for f in frames], gap=gap)

    def pace(self, port, frames, rate, count):
        """Sends `count` frames (cycling through `frames`) at `rate` frames/s from the virtual
        system of `port`; returns the agent's {"sent", "bytes", "duration"}."""
        p = self.vs(port)
        return self.agents[p.namespace].call(op="pace", iface=p.ifname, frames=[f.hex() for f in frames],
                                             rate=rate, count=count, timeout=count / rate + 30)

    @contextlib.contextmanager
    def capture(self, *ports, settle=0.3, linger=0.5, summary=None):
        """Captures in the virtual systems of `ports` while the block runs, plus `linger` s.
        `summary` (a token): count the frames carrying it instead of returning them (Capture.summary)."""
        cap = Capture()
        started = []
        try:
            for port in ports:
                p = self.vs(port)
                self.agents[p.namespace].call(op="sniff_start", iface=p.ifname)
                started.append(p)
            time.sleep(settle)
            yield cap
        finally:
            first = True
            for p in started:
                extra = {"summary": summary.hex()} if summary is not None else {}
                reply = self.agents[p.namespace].call(op="sniff_stop", iface=p.ifname,
                                                      linger=linger if first else 0.05, timeout=60, **extra)
                first = False
                cap.raw[port_key(p)] = reply["frames"]
                if summary is not None:
                    cap.summary[port_key(p)] = reply.get("summary", {})

    def ping(self, port, ip, count=3, timeout=1, interval=0.2):
        p = self.vs(port)
        return ns_exec(p.namespace, "ping", "-c", str(count), "-i", str(interval), "-W", str(timeout), ip,
                       timeout=count * (timeout + interval) + 10)


def port_key(p):
    return p.name

