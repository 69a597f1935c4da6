#!/usr/bin/env python3
"""Profile reloads through the running daemon (issue 3): `profile-reload` timed on the control socket.

`vswitch-bench reload` times the library path (parse + validate + read + compile + snapshot + publish) on the
forwarding core alone. This is the operator's view of the same thing: vswitchd in state mode (--state-dir:
every change is saved with write + fsync + rename before the response) with N TAP ports, each bound to its own
profile of the bench's realistic kind (anti-spoofing, 16 ACL rules) from one document of N profiles; each round
rewrites the file with `--changed` of its profiles changed (DefaultPriority 0 <-> 1, spread over the set) and
sends `profile-reload`, timed from the request's first byte to the response's last (the daemon re-reads the
file, loads it through its read cache, admits it, compiles, publishes a snapshot and saves its state). No
traffic flows: `vswitch-bench reload` measures reloads under full load.

Run as root from the repository (release builds of vswitchd, vswitchctl and vswitch-bench must exist):
  /usr/bin/python3 bench/daemon-reload.py [--ports 1000] [--changed 10,all] [--reloads 20] [--json out.json]
"""

import argparse
import importlib.util
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "Tests" / "Integration"))

import harness  # noqa: E402
from ctlharness import CtlDaemon  # noqa: E402

_spec = importlib.util.spec_from_file_location("control_churn", ROOT / "bench" / "control-churn.py")
control_churn = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(control_churn)
Ctl, summary, quiet = control_churn.Ctl, control_churn.summary, control_churn.quiet

BENCH = ROOT / ".build" / "release" / "vswitch-bench"
PRIORITY = re.compile(rb"<epasd:DefaultPriority>[0-7]</epasd:DefaultPriority>")


def documents(ports, work):
    """The bench's document of `ports` distinct profiles (urn:bench:profile-P, DefaultPriority 0), split into
    (head, [profile blocks], tail) so that versions with some profiles changed can be written."""
    path = work / "profiles-0.xml"
    env = dict(os.environ, VSWITCH_BENCH_WRITE_DOCUMENT=str(path))
    subprocess.run([str(BENCH), "reload", "--ports", str(ports), "--reloads", "1", "--threads", "0"],
                   check=True, env=env, stdout=subprocess.DEVNULL)
    data = path.read_bytes()
    marker = b"<ovf:NetworkPortProfile>"
    parts = data.split(marker)
    head, blocks = parts[0], [marker + b for b in parts[1:]]
    last = blocks[-1]
    cut = last.index(b"</ovf:NetworkPortProfile>") + len(b"</ovf:NetworkPortProfile>")
    blocks[-1], tail = last[:cut], last[cut:]
    assert len(blocks) == ports, "expected %d profiles, found %d" % (ports, len(blocks))
    assert all(len(PRIORITY.findall(b)) == 1 for b in blocks), "one DefaultPriority per profile"
    return head, blocks, tail


def version(head, blocks, tail, changed, v):
    """The document with `changed` profiles (spread evenly) at DefaultPriority v."""
    n = len(blocks)
    out = [head]
    for p, b in enumerate(blocks):
        if changed > 0 and (p * changed) % n < changed:
            b = PRIORITY.sub(b"<epasd:DefaultPriority>%d</epasd:DefaultPriority>" % v, b)
        out.append(b)
    out.append(tail)
    return b"".join(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--ports", type=int, default=1000)
    ap.add_argument("--changed", default="10,all", help="comma-separated: profiles changed per reload, or all")
    ap.add_argument("--reloads", type=int, default=20)
    ap.add_argument("--json")
    a = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("daemon-reload: run as root")
    if not BENCH.exists():
        sys.exit("daemon-reload: %s missing (swift build -c release)" % BENCH)
    # SIGTERM / SIGHUP clean up like Ctrl-C (the finally below stops the daemon and removes its TAPs).
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.default_int_handler)
    names = ["vsr-%d" % i for i in range(a.ports)]
    harness.delete_leftovers([], names)
    work = Path(tempfile.mkdtemp(prefix="vswitch-daemon-reload."))
    head, blocks, tail = documents(a.ports, work)
    doc = work / "profiles.xml"
    doc.write_bytes(version(head, blocks, tail, 0, 0))
    d = CtlDaemon(work / "daemon", links=names)
    result = {"command": " ".join(["/usr/bin/python3", "bench/daemon-reload.py"] + sys.argv[1:]),
              "ports": a.ports, "document_bytes": doc.stat().st_size, "nproc": os.cpu_count(),
              "loadavg_start": os.getloadavg(), "cases": {}}
    try:
        d.start(extra=("--log-level", "warning"))
        c = Ctl(d.socket)
        c.request("profile-load", path=str(doc))
        t0 = time.perf_counter()
        for i, n in enumerate(names):
            mac = "02:00:00:00:%02x:%02x" % (((i + 1) >> 8) & 0xFF, (i + 1) & 0xFF)
            c.request("add-port", name=n, profile="urn:bench:profile-%d" % i, mac=mac)
            quiet(n)
        result["add_ports_s"] = time.perf_counter() - t0
        print("daemon-reload: %d TAP ports added in %.1f s, document %d bytes" % (a.ports, result["add_ports_s"],
                                                                                 result["document_bytes"]), flush=True)
        for case in a.changed.split(","):
            changed = a.ports if case == "all" else int(case)
            times = []
            for r in range(a.reloads):
                doc.write_bytes(version(head, blocks, tail, changed, (r + 1) & 1))
                dt, resp = c.request("profile-reload")
                assert len(resp.get("result", {}).get("loaded", [])) == a.ports, resp
                times.append(dt)
            s = summary(times)
            result["cases"][str(case)] = s
            print("  %s of %d profiles changed per reload: profile-reload p50 %.1f ms, p99 %.1f ms, max %.1f ms (%d reloads)"
                  % (case, a.ports, s["p50_ms"], s["p99_ms"], s["max_ms"], s["n"]), flush=True)
    finally:
        left = d.cleanup()
        if left:
            print("daemon-reload: removed %d links the daemon left (its TAPs are persistent)" % len(left))
        shutil.rmtree(work, ignore_errors=True)
    result["loadavg_end"] = os.getloadavg()
    if a.json:
        Path(a.json).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
