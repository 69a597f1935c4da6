#!/usr/bin/env bash
# Checks a `vswitch-bench compare` results folder: every output file is there, results.json parses and
# has the sections the report promises, the PNGs are PNGs. No thresholds: numbers on a shared 2-core
# machine are not pass/fail material. Usage: bench/check-output.sh DIR
set -euo pipefail
dir=${1:?usage: check-output.sh RESULTS_DIR}
fail=0
for f in results.json summary.md table.txt rate_vs_size.png latency.png mac_scale.png cpu_per_frame.png; do
  if [ ! -s "$dir/$f" ]; then echo "bench-smoke: missing or empty: $dir/$f"; fail=1; fi
done
for f in "$dir"/*.png; do
  [ -e "$f" ] || continue
  if [ "$(head -c 4 "$f" | od -An -c | tr -d ' \n')" != "211PNG" ]; then echo "bench-smoke: not a PNG: $f"; fail=1; fi
done
/usr/bin/python3 - "$dir/results.json" <<'PY' || fail=1
import json, sys
r = json.load(open(sys.argv[1]))
for k in ("command", "machine", "generator", "core", "switches", "ratios", "findings"):
    assert k in r, f"results.json: no '{k}'"
names = [s["name"] for s in r["switches"]]
for n in ("bridge", "ovs-system", "vswitch-1t"):
    assert n in names, f"results.json: switch {n} missing (have {names})"
for s in r["switches"]:
    if s.get("error"):
        print(f"bench-smoke: note: {s['name']} failed: {s['error'][:200]}")
    else:
        assert s["sizes"], f"{s['name']}: no rate results"
        assert s.get("cpu"), f"{s['name']}: no CPU result"
assert r["core"] and r["core"][0]["mpps_per_core"] > 0, "no core result"
vs = next(s for s in r["switches"] if s["name"] == "vswitch-1t")
assert not vs.get("error"), f"vswitch-1t failed: {vs['error']}"
# A broken run must not pass (session 8 review): VSwitch forwarded something at every size, and every ratio published
# is a finite positive number (ratios are left out, not set to 0, when a side failed or did not sustain the load).
for z in vs["sizes"]:
    assert z["ceiling_forwarded_pps"] > 0 and z["loss_free_pps"] > 0, f"vswitch-1t forwarded nothing at {z['size']} B: {z}"
for k, v in r["ratios"].items():
    assert v == v and 0 < v < float("inf"), f"ratio {k} = {v}"
print(f"bench-smoke: results.json OK ({len(names)} switches, {len(r['ratios'])} ratios)")
PY
# `vswitch-bench capture-replay` (issue 4's capture cost with the load made inside the switch), when run.
if [ -e "$dir/capture-replay.json" ]; then
  /usr/bin/python3 - "$dir/capture-replay.json" <<'PY' || fail=1
import json, sys
r = json.load(open(sys.argv[1]))
assert r["points"], "capture-replay.json: no A/B rounds"
for p in r["points"]:
    assert p["without_pps"] > 0 and p["with_pps"] > 0, f"capture-replay: nothing forwarded: {p}"
    assert p["with_copies"] > 0, f"capture-replay: the capture took no copy: {p}"
print(f"bench-smoke: capture-replay.json OK (rate ratio medians {r['rate_ratio_median']})")
PY
fi
# `vswitch-bench store-probe` (one thread's store rate into the page cache: the ceiling of a complete capture), when run.
if [ -e "$dir/store-probe.json" ]; then
  /usr/bin/python3 - "$dir/store-probe.json" <<'PY' || fail=1
import json, sys, os
runs = json.load(open(sys.argv[1]))
assert {r["target"].split()[0] for r in runs} == {"write()", "memcpy"}, f"store-probe.json: targets {runs}"
for r in runs:
    assert r["bytes"] > 0 and r["seconds"] > 0 and r["gb_per_s"] > 0, f"store-probe: {r}"
    assert abs(r["ns_per_1534_byte_record"] * r["records_per_s"] - 1e9) < 1e3, f"store-probe: inconsistent {r}"
left = [f for f in os.listdir("/dev/shm") if f.startswith("vsb-store-probe-")]
assert not left, f"store-probe left {left} in /dev/shm"
print("bench-smoke: store-probe.json OK (" + ", ".join("%s %.2f GB/s" % (r["target"].split()[0], r["gb_per_s"]) for r in runs) + ")")
PY
fi
# `bench/daemon-reload.py` (profile-reload through the daemon), when run.
if [ -e "$dir/daemon-reload.json" ]; then
  /usr/bin/python3 - "$dir/daemon-reload.json" <<'PY' || fail=1
import json, sys
r = json.load(open(sys.argv[1]))
assert r["cases"], "daemon-reload.json: no case"
for case, s in r["cases"].items():
    assert s["n"] > 0 and 0 < s["p50_ms"] <= s["p99_ms"] <= s["max_ms"], f"daemon-reload {case}: {s}"
print("bench-smoke: daemon-reload.json OK (" + ", ".join("%s changed p50 %.1f ms" % (c, s["p50_ms"]) for c, s in r["cases"].items()) + ")")
PY
fi
# Nothing the benchmark created is left behind.
if ip netns list | grep -q '^vsb-'; then echo "bench-smoke: namespaces left: $(ip netns list | grep '^vsb-')"; fail=1; fi
if ip -o link show | grep -q ': vsb-'; then echo "bench-smoke: links left"; fail=1; fi
if mount | grep -q '^vsb-capture '; then echo "bench-smoke: capture tmpfs mounts left: $(mount | grep '^vsb-capture ' | cut -d' ' -f3)"; fail=1; fi
if [ $fail -ne 0 ]; then echo "bench-smoke: FAILED"; exit 1; fi
echo "bench-smoke: all outputs present in $dir"
