#!/bin/bash
# Issue 7 item 3: AF_XDP copy mode vs AF_PACKET rings (bench/README.md "Netdev ports"). The prototype forwarder
# fwd.c (vsb-a-h -> vsb-b-h) runs on CPU 1, trafgen on CPU 0 in namespace vsb-a; latency by `vswitch-bench probe`.
# Build: apt-get install libxdp-dev libbpf-dev; gcc -O2 -o bench/netdev-proto/fwd bench/netdev-proto/fwd.c -lxdp -lbpf
# Run (root; it uses the benchmark's vsb-* names, so hold the lock):
#   flock /tmp/vsb-bench.lock env BENCH=.build/release/vswitch-bench [MODES="tp3 tp2 xdp-drv xdp-skb"] [SIZE=64] \
#         [RATE=100000] [BLOCKS=32] [COALESCE_US=0] bench/netdev-proto/eval.sh
D=$(cd "$(dirname "$0")" && pwd)
OUT=${OUT:-/tmp}
B=${BENCH:-.build/release/vswitch-bench}
cleanup() { ip netns del vsb-a 2>/dev/null; ip netns del vsb-b 2>/dev/null; ip link del vsb-a-h 2>/dev/null; ip link del vsb-b-h 2>/dev/null; }
cleanup
for x in a b; do
  ip netns add vsb-$x
  ip link add vsb-$x-h type veth peer name eth0 netns vsb-$x
  ip netns exec vsb-$x sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
  ip link set vsb-$x-h up; ip -n vsb-$x link set lo up
done
ip -n vsb-a link set eth0 address 02:00:00:00:00:01 up; ip -n vsb-b link set eth0 address 02:00:00:00:00:02 up
sysctl -qw net.ipv6.conf.vsb-a-h.disable_ipv6=1 net.ipv6.conf.vsb-b-h.disable_ipv6=1
echo "{ eth(da=02:00:00:00:00:02, sa=02:00:00:00:00:01, type=0x88b5), fill(0x00, $(( ${SIZE:-64} - 18 ))) }" > $OUT/tg.cfg
rxb() { ip netns exec vsb-b cat /sys/class/net/eth0/statistics/rx_packets; }
sn() { python3 -c 'import sys; print(sum(int(l.split()[1],16) for l in open("/proc/net/softnet_stat")))'; }
txa() { ip netns exec vsb-a cat /sys/class/net/eth0/statistics/tx_packets; }
for mode in ${MODES:-tp3 tp2 xdp-drv xdp-skb}; do
  taskset -c 1 $D/fwd $mode vsb-a-h vsb-b-h ${FSECS:-9} > $OUT/fwd-$mode.out 2>&1 & fp=$!
  sleep 0.5
  r0=$(rxb); t0=$(txa); s0=$(sn)
  ip netns exec vsb-a trafgen --no-sock-mem -Q -i $OUT/tg.cfg -o eth0 -P 1 -b ${RATE:-100000}pps -n $(( ${RATE:-100000} * 4 )) > /dev/null 2>&1
  r1=$(rxb); t1=$(txa); s1=$(sn)
  echo "$mode ${SIZE:-64}B ${RATE:-100000}pps: offered $((t1-t0)) received $((r1-r0)) softnet drops $((s1-s0))"
  $B probe --rate 10000 2>&1 | grep -i "p50" | sed "s/^/$mode probe 10kpps: /"
  wait $fp; cat $OUT/fwd-$mode.out
  # flat out
  taskset -c 1 $D/fwd $mode vsb-a-h vsb-b-h 4 > $OUT/fwd-$mode-flat.out 2>&1 & fp=$!
  sleep 0.5
  r0=$(rxb); t0=$(txa)
  timeout -s INT 3 ip netns exec vsb-a trafgen --no-sock-mem -Q -i $OUT/tg.cfg -o eth0 -P 1 > /dev/null 2>&1
  sleep 0.3; r1=$(rxb); t1=$(txa)
  echo "$mode flat out 3 s: offered $(( (t1-t0)/3 )) pps received $(( (r1-r0)/3 )) pps"
  wait $fp; cat $OUT/fwd-$mode-flat.out
done
cleanup
