#!/usr/bin/env bash
# The forwarding core alone: 64-byte frames, 1 / 1,000 / 100,000 MACs, access and trunk ports, 1 and 2
# threads. Prints a Markdown table and leaves the JSON lines in results/core-<date>.jsonl.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
bench=${BENCH:-$top/.build/release/vswitch-bench}
seconds=${SECONDS_PER_RUN:-2}
mkdir -p "$top/results"
out="$top/results/core-$(date -u +%Y%m%dT%H%M%SZ).jsonl"
echo "| mode | MACs | threads | Mpps total | Mpps/core | ns/frame | allocs/frame |"
echo "|---|---:|---:|---:|---:|---:|---:|"
for mode in access trunk; do
  for macs in 1 1000 100000; do
    for threads in 1 2; do
      j=$("$bench" core --size 64 --macs "$macs" --threads "$threads" --mode "$mode" --seconds "$seconds" --format json 2>/dev/null)
      echo "$j" >> "$out"
      /usr/bin/python3 - "$j" <<'PY'
import json, sys
r = json.loads(sys.argv[1])
print(f"| {r['mode']} | {r['macs']:,} | {r['threads']} | {r['mpps_total']:.1f} | {r['mpps_per_core']:.1f} | {r['ns_per_frame']:.1f} | {r['allocs_per_frame']:.4f} |")
PY
    done
  done
done
echo
echo "JSON lines: ${out#$top/}"
