#!/usr/bin/python3
"""The soak (issue 6, item 5; `make soak`, not part of `make test`): SOAK_SECONDS (default 600) of
mixed traffic (legit, cross-VLAN and spoofed frames from three virtual systems, tools/blast.c at
SOAK_PPS each) on the vswt-hostile topology, with a profile reload and a port added and removed
every few seconds. Samples the daemon's RSS and open fds every 5 s. Passes when, after a warm-up
(the first 20% of the run): RSS stays within ±5% of its post-warm-up mean; the fd count ends where
it was after the warm-up (no fd leak); and for every sending port, the frames the switch received
equal the frames the namespace's kernel handed to the TAP (its tx_packets: tun counts a frame there when
the switch reads it, and a frame the full TAP queue refused only in tx_dropped, printed) and equal
floods + ingress drops by reason (every frame here is broadcast, so nothing is known unicast).
Usage: /usr/bin/python3 Tests/Integration/soak.py [--seconds N]   (VSWITCHD/VSWITCHCTL as for pytest)"""

import argparse
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import hostile  # noqa: E402

VSWITCHCTL = os.environ.get("VSWITCHCTL", str(harness.REPO / ".build" / "release" / "vswitchctl"))
EGRESS_REASONS = {"tx-queue-full", "tx-error", "no-destination", "port-down"}


def rss_kb(pid):
    for line in open("/proc/%d/status" % pid):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=int(os.environ.get("SOAK_SECONDS", "600")))
    ap.add_argument("--pps", type=int, default=int(os.environ.get("SOAK_PPS", "20000")))
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="vswitch-soak-")
    sock = os.path.join(work, "ctl.sock")
    d = harness.Daemon(harness.topology_path("vswt-hostile.xml"), os.path.join(work, "run"),
                       extra_args=["--control-socket", sock])
    procs = []
    try:
        d.start()
        blast = hostile.build_blast(work)
        ctl = lambda *a: harness.run([VSWITCHCTL, "--socket", sock, *a], timeout=30)  # noqa: E731
        vs = {p: d.vs(p) for p in ("vswt-h-a1", "vswt-h-b1", "vswt-h-trk", "vswt-h-a2", "vswt-h-b2")}
        a1, b1, trk, a2, b2 = vs.values()
        m, L, X, S, Q = hostile.marked, hostile.LEGIT, hostile.CROSS, hostile.SPOOF, 0x8100
        mixes = {
            "vswt-h-a1": [m(a1.mac, cls=L, vlan_mark=10), m(a1.mac, cls=X, vlan_mark=20, tags=[(Q, 20)]), m(b2.mac, cls=S, vlan_mark=10)],
            "vswt-h-b1": [m(b1.mac, cls=L, vlan_mark=20), m(b1.mac, cls=X, vlan_mark=10, tags=[(Q, 10)]), m(a2.mac, cls=S, vlan_mark=20)],
            "vswt-h-trk": [m(trk.mac, cls=L, vlan_mark=10, tags=[(Q, 10)]), m(trk.mac, cls=L, vlan_mark=20, tags=[(Q, 20)]),
                           m(trk.mac, cls=X, vlan_mark=30, tags=[(Q, 30)]), m(a2.mac, cls=S, vlan_mark=10, tags=[(Q, 10)])],
        }
        files = {}
        for port, frames in mixes.items():
            files[port] = os.path.join(work, port + ".hex")
            hostile.write_frames(files[port], frames)
        before = d.stats()
        ns_before = {p: (hostile.sysfs(vs[p].namespace, "tx_packets"), hostile.sysfs(vs[p].namespace, "tx_dropped")) for p in mixes}
        for i, port in enumerate(mixes):
            procs.append(subprocess.Popen(hostile.blast_cmd(blast, vs[port].namespace, files[port], args.pps * args.seconds,
                                                            pps=args.pps, seed=i + 7),
                                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
        pid = d.proc.pid
        samples = []
        t0 = time.monotonic()
        k = 0
        reload_fail = churn_fail = 0
        while time.monotonic() - t0 < args.seconds:
            k += 1
            if ctl("profile", "reload").returncode != 0:
                reload_fail += 1
            name = "vswt-soak%d" % (k % 3)
            if ctl("add-port", name, "--profile", "urn:vswitch:profile:hx-access10").returncode != 0 \
                    or ctl("del-port", name).returncode != 0:
                churn_fail += 1
            samples.append((time.monotonic() - t0, rss_kb(pid), len(os.listdir("/proc/%d/fd" % pid))))
            time.sleep(5)
        outs = [p.communicate(timeout=args.seconds + 60) for p in procs]
        time.sleep(1.0)
        after = d.stats()
        warm = [s for s in samples if s[0] >= 0.2 * args.seconds] or samples[-1:]
        mean = sum(s[1] for s in warm) / len(warm)
        worst = max(abs(s[1] - mean) / mean for s in warm)
        problems = []
        print("soak: %ds, %d samples; RSS after warm-up mean %.0f kB, worst deviation %.2f%%; fds %d -> %d; "
              "reload failures %d, port churn failures %d" % (args.seconds, len(samples), mean, 100 * worst,
                                                             warm[0][2], samples[-1][2], reload_fail, churn_fail))
        for (out, err), port in zip(outs, mixes):
            print("  blast %s: %s %s" % (port, out.strip(), err.strip()))
        if worst > 0.05:
            problems.append("RSS moved %.1f%% from its post-warm-up mean" % (100 * worst))
        if samples[-1][2] > warm[0][2]:
            problems.append("fd count grew from %d to %d" % (warm[0][2], samples[-1][2]))
        if reload_fail or churn_fail:
            problems.append("control failures: reload %d, churn %d" % (reload_fail, churn_fail))
        for port in mixes:
            pb, pa = harness.Daemon.port_stats(before, port), harness.Daemon.port_stats(after, port)
            rx = pa["rx_packets"] - pb["rx_packets"]
            floods = pa["floods"] - pb["floods"]
            ingress_drops = sum(v - pb["drops"].get(r, 0) for r, v in pa["drops"].items() if r not in EGRESS_REASONS)
            txp = hostile.sysfs(vs[port].namespace, "tx_packets") - ns_before[port][0]
            txd = hostile.sysfs(vs[port].namespace, "tx_dropped") - ns_before[port][1]
            print("  %s: namespace tx %d (TAP dropped %d); switch rx %d = floods %d + ingress drops %d"
                  % (port, txp, txd, rx, floods, ingress_drops))
            if rx != txp:
                problems.append("%s: switch rx %d != namespace tx %d (TAP drops %d apart)" % (port, rx, txp, txd))
            if rx != floods + ingress_drops:
                problems.append("%s: rx %d != floods %d + ingress drops %d" % (port, rx, floods, ingress_drops))
        if not d.alive():
            problems.append("vswitchd died")
        if problems:
            print("SOAK FAILED:\n  " + "\n  ".join(problems))
            return 1
        print("soak passed")
        return 0
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
        d.cleanup()


if __name__ == "__main__":
    sys.exit(main())
