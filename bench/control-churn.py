#!/usr/bin/python3
"""Control plane under load (issue 8, "How fast"): how long control operations take while the switch
forwards a steady flow, and how much of that flow is lost while 1,000 ports are added, re-bound and
removed, and while a 100,000-entry MAC table is dumped.

  namespace vswcc-s ── TAP port vswcc-ps ─┐  VSwitch (vswitchd --state-dir, every change saved with fsync)
  namespace vswcc-r ── TAP port vswcc-pr ─┘  profile tenant-a (VLAN 10); a static FDB entry for the receiver

The flow: tools/blast.c in vswcc-s sends 64-byte unicast frames to the receiver's MAC at --pps. The
receiver counts them in its own kernel, independently of the switch, with an nftables netdev-ingress
counter (Tests/Integration/hostile.py). Loss of a phase = frames blast sent - frames the counter saw.

Phases, each with its own flow of the same rate and length (--seconds):
  baseline     no control operations
  churn        add-port x N (TAP ports in the root namespace, tenant-b / VLAN 20, so the flow's VLAN is
               untouched; their host side's IPv6 is turned off after each add unless --host-ipv6),
               set-port x N (bind profile tenant-a <-> tenant-b), del-port x N
  ports-present  N ports added (untimed), then a flow with no control operation, then removed
  fdb-show     the MAC table is first filled with >= --fdb-entries random source MACs (blast --random-src,
               a port without MAC limit), then `fdb-show` is timed repeatedly (the whole JSON response)

Each control operation is timed from the request's first byte to the response's last on one persistent
connection to the control socket (the daemon's work + the socket; no process start-up), and a few are also
timed end to end through the vswitchctl binary. Prints a table (p50 / p99 / max) and writes JSON (--json).

Run as root from the repository (a release build of vswitchd and vswitchctl must exist):
  /usr/bin/python3 bench/control-churn.py [--ports 1000] [--pps 20000] [--fdb-entries 100000] [--json out.json]
"""

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "Tests" / "Integration"))

import harness  # noqa: E402
import hostile  # noqa: E402
from ctlharness import PROFILES, TENANT_A, TENANT_B, VSWITCHCTL, CtlDaemon  # noqa: E402

NS_S, NS_R = "vswcc-s", "vswcc-r"
P_S, P_R = "vswcc-ps", "vswcc-pr"
MAC_S, MAC_R = "02:00:00:00:cc:01", "02:00:00:00:cc:02"


class Ctl:
    """One persistent connection to the control socket; request() returns (seconds, response)."""

    def __init__(self, path):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.s.connect(path)
        self.buf = b""
        self.n = 0

    def request(self, command, **args):
        self.n += 1
        line = (json.dumps({"command": command, "args": args, "id": self.n}) + "\n").encode()
        t0 = time.perf_counter()
        self.s.sendall(line)
        chunks = [self.buf]
        self.first_byte = None
        while b"\n" not in chunks[-1]:
            chunk = self.s.recv(1 << 20)
            if not chunk:
                raise RuntimeError("control socket closed")
            if self.first_byte is None:
                self.first_byte = time.perf_counter() - t0
            chunks.append(chunk)
        t1 = time.perf_counter()
        resp, self.buf = b"".join(chunks).split(b"\n", 1)
        r = json.loads(resp)
        if not r.get("ok"):
            raise RuntimeError("%s %s: %s" % (command, args, r.get("error")))
        return t1 - t0, r


def summary(samples):
    if not samples:
        return {}
    s = sorted(samples)
    pick = lambda q: s[min(len(s) - 1, int(round(q * (len(s) - 1))))]  # noqa: E731
    return {"n": len(s), "p50_ms": pick(0.5) * 1e3, "p99_ms": pick(0.99) * 1e3, "max_ms": s[-1] * 1e3,
            "mean_ms": statistics.fmean(s) * 1e3}


class Flow:
    """A paced blast from the sender to the receiver for one phase; loss counted by the receiver's nft."""

    def __init__(self, blast, frames, pps, seconds):
        self.blast, self.frames, self.pps, self.count = blast, frames, pps, int(pps * seconds)

    def start(self):
        self.before = hostile.nft_counters(NS_R)["own_legit"]
        self.proc = subprocess.Popen(hostile.blast_cmd(self.blast, NS_S, self.frames, self.count, pps=self.pps),
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        return self

    def running(self):
        return self.proc.poll() is None

    def finish(self):
        out, err = self.proc.communicate(timeout=600)
        if self.proc.returncode != 0:
            raise RuntimeError("blast: %s" % err)
        time.sleep(0.5)   # the last frames drain through the switch
        sent = hostile.parse_blast(out)
        got = hostile.nft_counters(NS_R)["own_legit"] - self.before
        return {"sent": sent["sent"], "received": got, "lost": sent["sent"] - got,
                "loss_pct": 100.0 * (sent["sent"] - got) / max(1, sent["sent"]), "seconds": sent["seconds"]}


def quiet(tap):
    """Turns IPv6 off on a churn TAP's host side (untimed). These TAPs stay in the root namespace, where
    the host's IPv6 stack would answer every flooded ND/MLD frame on each of 1,000 interfaces (see
    --host-ipv6 and bench/README.md)."""
    try:
        with open("/proc/sys/net/ipv6/conf/%s/disable_ipv6" % tap, "w") as f:
            f.write("1")
    except OSError:
        pass


def vswitchctl_timed(sock, *args):
    t0 = time.perf_counter()
    r = subprocess.run([VSWITCHCTL, "--socket", sock, *args], capture_output=True, text=True, timeout=120)
    t1 = time.perf_counter()
    if r.returncode != 0:
        raise RuntimeError("vswitchctl %s: %s" % (" ".join(args), r.stderr))
    return t1 - t0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--ports", type=int, default=1000)
    ap.add_argument("--pps", type=int, default=20000)
    ap.add_argument("--seconds", type=float, default=0, help="flow length per phase (default: long enough for the churn)")
    ap.add_argument("--fdb-entries", type=int, default=100000)
    ap.add_argument("--fdb-shows", type=int, default=20)
    ap.add_argument("--host-ipv6", action="store_true",
                    help="leave IPv6 on for the churn TAPs' host side (the root namespace's IPv6 stack then "
                         "processes every flooded ND/MLD frame on each of them: see bench/README.md)")
    ap.add_argument("--json")
    a = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("control-churn: run as root")
    churn_names = ["vswcc-c%d" % i for i in range(a.ports)]
    links = [P_S, P_R] + churn_names
    harness.delete_leftovers([NS_S, NS_R], links)
    work = Path(tempfile.mkdtemp(prefix="vswitch-control-churn."))
    d = CtlDaemon(work, namespaces=[NS_S, NS_R], links=links)
    result = {"command": " ".join(["/usr/bin/python3", "bench/control-churn.py"] + sys.argv[1:]),
              "ports": a.ports, "pps": a.pps, "host_ipv6": a.host_ipv6, "nproc": os.cpu_count(), "loadavg_start": os.getloadavg()}
    try:
        blast = hostile.build_blast(work)
        d.start()
        c = Ctl(d.socket)
        c.request("profile-load", path=str(PROFILES))
        c.request("set-switch", **{"mac-table-size": max(65536, a.fdb_entries * 2)})
        for ns, port, mac, ip in ((NS_S, P_S, MAC_S, "10.80.0.1/24"), (NS_R, P_R, MAC_R, "10.80.0.2/24")):
            c.request("add-port", name=port, profile=TENANT_A, mac=mac, namespace=ns, addresses=[ip])
            harness.ns_exec(ns, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1")
        c.request("fdb-add", port=P_R, vlan=10, mac=MAC_R)
        hostile.nft_install(NS_R, 10)
        frames = work / "flow.hex"
        hostile.write_frames(frames, [hostile.marked(MAC_S, MAC_R, hostile.LEGIT, 10)])

        # Warm-up: a short flow must arrive whole (the path works).
        w = Flow(blast, frames, a.pps, 1.0).start().finish()
        print("warm-up: %(sent)d sent, %(received)d received" % w, flush=True)

        # 1. The churn, timed without a flow first, to size the flow of each phase.
        t_churn = time.perf_counter()
        lat = {"add-port": [], "set-port": [], "del-port": []}

        def churn(flow):
            for n in churn_names:
                dt, _ = c.request("add-port", name=n, profile=TENANT_B)
                lat["add-port"].append(dt)
                if not a.host_ipv6:
                    quiet(n)
            for i, n in enumerate(churn_names):
                dt, _ = c.request("set-port", name=n, profile=TENANT_A if i % 2 == 0 else TENANT_B)
                lat["set-port"].append(dt)
            for n in churn_names:
                dt, _ = c.request("del-port", name=n)
                lat["del-port"].append(dt)

        seconds = a.seconds
        if not seconds:
            churn(None)
            seconds = max(5.0, round((time.perf_counter() - t_churn) * 1.2 + 1, 1))
            result["churn_unloaded_seconds"] = time.perf_counter() - t_churn
            result["latency_unloaded"] = {k: summary(v) for k, v in lat.items()}
            lat = {k: [] for k in lat}
        result["phase_seconds"] = seconds
        print("phase length %.1f s at %d pps" % (seconds, a.pps), flush=True)

        # 2. Baseline.
        result["baseline"] = Flow(blast, frames, a.pps, seconds).start().finish()
        print("baseline: %s" % result["baseline"], flush=True)

        # 3. Churn under load.
        f = Flow(blast, frames, a.pps, seconds).start()
        t0 = time.perf_counter()
        churn(f)
        result["churn_seconds"] = time.perf_counter() - t0
        result["churn_finished_during_flow"] = f.running()
        result["churn"] = f.finish()
        result["latency"] = {k: summary(v) for k, v in lat.items()}
        print("churn: %s in %.2f s" % (result["churn"], result["churn_seconds"]), flush=True)

        # 3b. The same number of ports present and idle, no control operation during the flow: separates
        # the cost of having the ports from the cost of changing them.
        for n in churn_names:
            c.request("add-port", name=n, profile=TENANT_B)
            if not a.host_ipv6:
                quiet(n)
        time.sleep(1)
        result["ports_present"] = Flow(blast, frames, a.pps, seconds).start().finish()
        print("ports present: %s" % result["ports_present"], flush=True)
        for n in churn_names:
            c.request("del-port", name=n)

        # 4. A 100,000-entry MAC table: random source MACs from the sender (tenant-a has no MAC limit).
        learn = work / "learn.hex"
        hostile.write_frames(learn, [hostile.marked(MAC_S, MAC_R, hostile.LEGIT, 10)])
        target = a.fdb_entries
        sent = 0
        while True:
            n = c.request("fdb-stats")[1]["result"]["entries"]
            if n >= target or sent > 3 * target:
                break
            need = int((target - n) * 1.05) + 100
            r = subprocess.run(hostile.blast_cmd(blast, NS_S, learn, need, random_src=True, pps=100000, seed=sent + 7),
                               capture_output=True, text=True, timeout=300)
            sent += need
            time.sleep(0.3)
        result["fdb_entries"] = n
        print("MAC table: %d entries" % n, flush=True)
        lat_fdb = []
        f = Flow(blast, frames, a.pps, seconds).start()
        sizes = []
        for _ in range(a.fdb_shows):
            dt, r = c.request("fdb-show")
            lat_fdb.append(dt)
            sizes.append(len(r["result"]["entries"]))
            if not f.running():
                break
        result["fdb_show"] = dict(summary(lat_fdb), entries=min(sizes))
        result["fdb_show_flow"] = f.finish()
        # End to end through the binary, JSON and text (includes process start-up and printing).
        result["vswitchctl_fdb_show_json_ms"] = vswitchctl_timed(d.socket, "fdb", "show", "--format", "json") * 1e3
        result["vswitchctl_fdb_show_text_ms"] = vswitchctl_timed(d.socket, "fdb", "show") * 1e3
        result["vswitchctl_add_port_ms"] = vswitchctl_timed(d.socket, "add-port", churn_names[0], "--profile", TENANT_B) * 1e3
        result["vswitchctl_set_port_ms"] = vswitchctl_timed(d.socket, "set-port", churn_names[0], "profile=" + TENANT_A) * 1e3
        result["vswitchctl_del_port_ms"] = vswitchctl_timed(d.socket, "del-port", churn_names[0]) * 1e3
        print("fdb-show: %s; flow %s" % (result["fdb_show"], result["fdb_show_flow"]), flush=True)
    finally:
        d.cleanup()
        harness.delete_leftovers([NS_S, NS_R], links)

    result["loadavg_end"] = os.getloadavg()
    print()
    print("load average (1 min) at start %.2f, at end %.2f on %d CPUs (other work on the machine competes)"
          % (result["loadavg_start"][0], result["loadavg_end"][0], os.cpu_count()))
    print("control operations while a %d pps flow runs (%d ports added, re-bound, removed; %d-entry fdb-show):"
          % (a.pps, a.ports, result["fdb_show"]["entries"]))
    print("  %-10s %6s %9s %9s %9s" % ("operation", "n", "p50 ms", "p99 ms", "max ms"))
    for k, v in list(result["latency"].items()) + [("fdb-show", result["fdb_show"])]:
        print("  %-10s %6d %9.2f %9.2f %9.2f" % (k, v["n"], v["p50_ms"], v["p99_ms"], v["max_ms"]))
    print("  via the vswitchctl binary (process start-up included): add-port %.1f ms, set-port %.1f ms, "
          "del-port %.1f ms, fdb show --format json %.1f ms, fdb show (text) %.1f ms"
          % (result["vswitchctl_add_port_ms"], result["vswitchctl_set_port_ms"], result["vswitchctl_del_port_ms"],
             result["vswitchctl_fdb_show_json_ms"], result["vswitchctl_fdb_show_text_ms"]))
    print("flow loss (sent by blast, counted by nftables in the receiver):")
    for k in ("baseline", "churn", "ports_present", "fdb_show_flow"):
        v = result[k]
        print("  %-14s sent %8d received %8d lost %6d (%.3f %%)" % (k, v["sent"], v["received"], v["lost"], v["loss_pct"]))
    print("  churn of %d ports took %.2f s, within the flow: %s" % (a.ports, result["churn_seconds"],
                                                                    result["churn_finished_during_flow"]))
    if a.json:
        Path(a.json).write_text(json.dumps(result, indent=2) + "\n")
        print("JSON: %s" % a.json)


if __name__ == "__main__":
    main()
