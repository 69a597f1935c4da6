"""UDP segmentation offload (USO, issue 7): a virtual system sends UDP with the UDP_SEGMENT socket
option (one sendmsg = one super-frame of many datagrams when its TAP has USO), through the switch, to a
virtual system whose TAP takes USO too (the super-frame crosses as one unit) or takes no offloads (the
switch cuts it into datagrams in software, each with its own IP/UDP lengths and a full UDP checksum).
The receiver checks every datagram's content and order; the receiving kernel's UdpInCsumErrors,
UdpInErrors and IpInHdrErrors must stay 0 (a wrong software checksum is dropped and counted there).

Names: namespaces vsu-*, TAPs vsu-t* (unique to this file)."""

import json
import os
import subprocess
import sys
import time

import pytest

import harness
from ctlharness import PROFILES, TENANT_A, VSWITCHCTL, CtlDaemon, wait_for, ping

NS = ["vsu-a", "vsu-b"]
LINKS = ["vsu-ta", "vsu-tb"]
MAC_A, MAC_B = "02:00:00:00:7b:01", "02:00:00:00:7b:02"
IP_A, IP_B = "10.78.0.1", "10.78.0.2"
IP6_A, IP6_B = "fd00:78::1", "fd00:78::2"
SEG = 1200          # UDP payload per datagram
PER_SEND = 20       # datagrams per sendmsg (one super-frame of 24,000 bytes)
SENDS = 100

SENDER = r"""
import socket, struct, sys, time
dst, port, seg, per, sends, v6 = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), sys.argv[6] == "1"
s = socket.socket(socket.AF_INET6 if v6 else socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_UDP, 103, seg)          # UDP_SEGMENT
n = 0
for k in range(sends):
    buf = b"".join(struct.pack("!I", n + i) + bytes(((n + i) * 7 + j) & 0xFF for j in range(seg - 4)) for i in range(per))
    s.sendto(buf, (dst, port))
    n += per
    time.sleep(0.002)                             # no queue overflow: this checks content, not rate
print(n)
"""

RECEIVER = r"""
import json, socket, struct, sys
port, seg, want, v6 = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4] == "1"
s = socket.socket(socket.AF_INET6 if v6 else socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
s.bind(("::" if v6 else "0.0.0.0", port))
s.settimeout(8)
got = bad = out_of_order = 0
last = -1
print("ready", flush=True)
try:
    while got < want:
        d = s.recv(65536)
        got += 1
        n = struct.unpack("!I", d[:4])[0]
        if len(d) != seg or d[4:] != bytes((n * 7 + j) & 0xFF for j in range(seg - 4)):
            bad += 1
        if n <= last:
            out_of_order += 1
        last = n
except socket.timeout:
    pass
print(json.dumps({"got": got, "bad": bad, "out_of_order": out_of_order}), flush=True)
"""


@pytest.fixture
def ctl(environment, tmp_path):
    for tool in ("nstat", "ethtool"):
        if subprocess.run(["which", tool], capture_output=True).returncode != 0:
            pytest.fail("%s not installed (scripts/install-deps.sh)" % tool, pytrace=False)
    if not os.access(VSWITCHCTL, os.X_OK):
        pytest.fail("vswitchctl binary %s not found" % VSWITCHCTL, pytrace=False)
    harness.delete_leftovers(NS, LINKS)
    d = CtlDaemon(tmp_path, namespaces=NS, links=LINKS)
    try:
        yield d.start()
    finally:
        d.cleanup()


def add_vs(ctl, port, ns, mac, ip, ip6, offload):
    ctl.ctl("add-port", port, "--profile", TENANT_A, "--mac", mac, "--namespace", ns, "--address", ip + "/24",
            "--address", ip6 + "/64", "--offload", "on" if offload else "off")
    harness.ns_exec(ns, "ip", "link", "set", "lo", "up")


def udp_counters(ns):
    out = harness.ns_exec(ns, "nstat", "-a", "-s", "-z").stdout
    vals = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[1].isdigit():
            vals[parts[0]] = int(parts[1])
    return vals


def run_udp(ctl, on_b, v6=False):
    ctl.ctl("profile", "load", str(PROFILES))
    add_vs(ctl, "vsu-ta", "vsu-a", MAC_A, IP_A, IP6_A, True)
    add_vs(ctl, "vsu-tb", "vsu-b", MAC_B, IP_B, IP6_B, on_b)
    a, b = ctl.port("vsu-ta"), ctl.port("vsu-tb")
    assert a["offload"] is True and b["offload"] is on_b
    assert a["uso"] is True, "this kernel (6.2+) takes TUN_F_USO4/6: the TAP must have USO (%s)" % a
    features = harness.ns_exec("vsu-a", "ethtool", "-k", "eth0").stdout
    assert "tx-udp-segmentation: on" in features, features
    assert wait_for(lambda: ping("vsu-a", IP_B, count=1).returncode == 0, timeout=10, interval=0.2)
    if v6:
        assert wait_for(lambda: harness.ns_exec("vsu-a", "ping", "-6", "-c", "1", "-W", "1", IP6_B).returncode == 0,
                        timeout=10, interval=0.3)
    before = {ns: udp_counters(ns) for ns in NS}
    rx_before = {p["name"]: p for p in ctl.json("port", "stats")["ports"]}["vsu-ta"]["rx_packets"]
    want = PER_SEND * SENDS
    recv = subprocess.Popen(["ip", "netns", "exec", "vsu-b", sys.executable, "-c", RECEIVER, "6000", str(SEG), str(want),
                             "1" if v6 else "0"], stdout=subprocess.PIPE, text=True)
    try:
        assert recv.stdout.readline().strip() == "ready"
        r = harness.ns_exec("vsu-a", sys.executable, "-c", SENDER, IP6_B if v6 else IP_B, "6000", str(SEG), str(PER_SEND),
                            str(SENDS), "1" if v6 else "0", timeout=60)
        assert r.returncode == 0, r.stderr
        result = json.loads(recv.stdout.readline())
    finally:
        recv.kill()
        recv.wait(timeout=10)
    assert result == {"got": want, "bad": 0, "out_of_order": 0}, result
    for ns in NS:
        after = udp_counters(ns)
        for k in ("UdpInCsumErrors", "UdpInErrors", "Udp6InCsumErrors", "Udp6InErrors", "IpInHdrErrors", "Ip6InHdrErrors"):
            assert after.get(k, 0) - before[ns].get(k, 0) == 0, (ns, k, after.get(k), before[ns].get(k))
    stats = {p["name"]: p for p in ctl.json("port", "stats")["ports"]}
    rx = stats["vsu-ta"]["rx_packets"] - rx_before
    # The sender's TAP handed over super-frames: far fewer frames than datagrams.
    assert rx <= SENDS * 2, (rx, stats["vsu-ta"])
    tx_b = stats["vsu-tb"]["tx_packets"]
    if on_b:
        assert tx_b < want, ("USO port: super-frames cross whole", stats["vsu-tb"])
    else:
        assert tx_b >= want, ("no offloads: every datagram cut in software", stats["vsu-tb"])
    for name in ("vsu-ta", "vsu-tb"):
        assert not stats[name].get("drops_malformed") and not stats[name].get("drops_mtu_exceeded"), stats[name]


def test_udp_super_frames_cross_whole_between_uso_ports(ctl):
    run_udp(ctl, on_b=True)


def test_udp_super_frames_cut_in_software_for_a_port_without_offloads(ctl):
    run_udp(ctl, on_b=False)


def test_udp_ipv6_super_frames_cut_in_software(ctl):
    run_udp(ctl, on_b=False, v6=True)
