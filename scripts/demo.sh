#!/usr/bin/env bash
# The demo: brings up a topology (default: topologies/default.xml), shows that virtual systems in the
# same VLAN reach each other and that another VLAN is unreachable, prints the MAC table and counters,
# and tears everything down. Expects .build/release/vswitchd (make demo builds it).
set -uo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
# Absolute, so that the default topology is recognised however it is named (make demo passes a relative path).
topology=$(realpath "${1:-$top/topologies/default.xml}")
vswitchd=${VSWITCHD:-$top/.build/release/vswitchd}
work=$(mktemp -d)
pid=
cleanup() {
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then kill -TERM "$pid"; wait "$pid"; fi
  rm -rf "$work"
}
trap cleanup EXIT INT TERM

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
fail=0
expect() {  # expect ok|fail "description" command...
  local want=$1 what=$2; shift 2
  if "$@" >"$work/out" 2>&1; then got=ok; else got=fail; fi
  if [ "$got" = "$want" ]; then printf '  [ok]   %s\n' "$what"; else printf '  [FAIL] %s (expected %s)\n' "$what" "$want"; sed 's/^/         /' "$work/out"; fail=1; fi
}

say "starting vswitchd --topology ${topology#$top/}"
"$vswitchd" --topology "$topology" --ready-file "$work/ready" --stats-json "$work/stats.json" 2>"$work/log" &
pid=$!
for _ in $(seq 1 100); do [ -f "$work/ready" ] && break; kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
if [ ! -f "$work/ready" ]; then cat "$work/log"; echo "vswitchd did not start"; exit 1; fi
sed 's/^/  /' "$work/log"

say "virtual systems"
for ns in $(ip netns list | awk '{print $1}' | grep '^vs-' | sort); do
  printf '  %-8s %s\n' "$ns" "$(ip -n "$ns" -br addr show dev eth0 2>/dev/null | awk '{print $2, $3, $4}') $(ip -n "$ns" -br link show dev eth0 | awk '{print $3}')"
done

if [ "$topology" = "$top/topologies/default.xml" ]; then
  say "same VLAN: tenant A (VLAN 10) and tenant B (VLAN 20) reach their own"
  expect ok   "vs-a1 -> vs-a2 (VLAN 10)" ip netns exec vs-a1 ping -c 3 -i 0.2 -W 1 10.0.10.2
  expect ok   "vs-b1 -> vs-b2 (VLAN 20)" ip netns exec vs-b1 ping -c 3 -i 0.2 -W 1 10.0.10.4
  say "other VLAN: same IP subnet, but no path between VLAN 10 and VLAN 20"
  expect fail "vs-a1 -> vs-b1 (VLAN 10 -> 20) is unreachable" ip netns exec vs-a1 ping -c 2 -i 0.2 -W 1 10.0.10.3
  expect fail "vs-b2 -> vs-a2 (VLAN 20 -> 10) is unreachable" ip netns exec vs-b2 ping -c 2 -i 0.2 -W 1 10.0.10.2
fi

say "MAC table and counters (SIGUSR1)"
kill -USR1 "$pid"; sleep 0.5
say "stopping (SIGTERM): vswitchd removes its namespaces and TAPs"
kill -TERM "$pid"; wait "$pid"; rc=$?; pid=
tail -n 3 "$work/log" | sed 's/^/  /'
left=$(ip netns list | awk '{print $1}' | grep -c '^vs-' || true)
expect ok "vswitchd exited 0 and left no namespaces behind" test "$rc" -eq 0 -a "$left" -eq 0
[ $fail -eq 0 ] && say "demo passed" || say "demo FAILED"
exit $fail
