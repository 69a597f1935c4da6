"""Netdev and pcap-replay ports end to end (vswitchctl add-port --type netdev|pcap against a running
vswitchd): a veth end attached as a netdev port forwards real traffic to a TAP virtual system (ping),
a netdev trunk carries 802.1Q-tagged frames, and a replayed pcap comes out of the switch identical."""

import os
import re
import subprocess
import time

import pytest

import harness
from ctlharness import PROFILES, TENANT_A, VSWITCHCTL, CtlDaemon, ping, wait_for

TRUNK_AB = "urn:vswitch:profile:trunk-ab"
NS = ["vsn-a1", "vsn-peer"]
LINKS = ["vsn-t1", "vsn-up", "vsn-peer0"]
MAC1 = "02:00:00:00:0e:01"


@pytest.fixture
def ctl(environment, tmp_path):
    if not os.access(VSWITCHCTL, os.X_OK):
        pytest.fail("vswitchctl binary %s not found (build it, or set VSWITCHCTL)" % VSWITCHCTL, pytrace=False)
    harness.delete_leftovers(NS, LINKS)
    d = CtlDaemon(tmp_path, namespaces=NS, links=LINKS)
    try:
        yield d.start()
    finally:
        d.cleanup()


def veth_to_namespace(address=None):
    """vsn-up (root namespace, for the switch) <-> eth0 in namespace vsn-peer."""
    harness.run(["ip", "netns", "add", "vsn-peer"])
    harness.run(["ip", "link", "add", "vsn-up", "type", "veth", "peer", "name", "vsn-peer0"])
    harness.run(["ip", "link", "set", "vsn-peer0", "netns", "vsn-peer", "name", "eth0"])
    harness.ns_exec("vsn-peer", "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1")
    if address:
        harness.ns_exec("vsn-peer", "ip", "addr", "add", address, "dev", "eth0")
    harness.ns_exec("vsn-peer", "ip", "link", "set", "eth0", "up")
    harness.ns_exec("vsn-peer", "ip", "link", "set", "lo", "up")
    with open("/proc/sys/net/ipv6/conf/vsn-up/disable_ipv6", "w") as f:
        f.write("1")


def tcpdump(ns, path, expr, count):
    p = subprocess.Popen(["ip", "netns", "exec", ns, "tcpdump", "-U", "-n", "-i", "eth0", "-c", str(count),
                          "-w", str(path), *expr.split()], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1.0)   # tcpdump attached
    return p


def test_netdev_port_on_a_veth_forwards_to_a_tap_virtual_system(ctl):
    veth_to_namespace("10.78.0.2/24")
    ctl.ctl("profile", "load", str(PROFILES))
    ctl.ctl("add-port", "vsn-t1", "--profile", TENANT_A, "--mac", MAC1, "--namespace", "vsn-a1", "--address", "10.78.0.1/24")
    ctl.ctl("add-port", "vsn-n1", "--type", "netdev", "--interface", "vsn-up", "--profile", TENANT_A)
    port = ctl.port("vsn-n1")
    assert port["type"] == "netdev" and port["interface"] == "vsn-up" and port["link"] == "up", port
    r = ping("vsn-a1", "10.78.0.2")
    assert r.returncode == 0, r.stdout + r.stderr
    # Latency (issue 7): every echo reply crosses the netdev port's RX ring once. With the default ring
    # (TPACKET_V2) a frame is read as soon as it lands; a TPACKET_V3 ring held it until its block retired
    # (1 ms timer: +0.5 ms on average, median round trip ~0.6 ms). The interval (17.3 ms) is no multiple of
    # 1 ms, so the replies land at every phase of that timer (at 20 ms they kept one phase: any wait 0–1 ms).
    r = subprocess.run(["ip", "netns", "exec", "vsn-a1", "ping", "-n", "-c", "21", "-i", "0.0173", "-W", "1", "10.78.0.2"],
                       capture_output=True, text=True)
    rtts = sorted(float(x) for x in re.findall(r"time=([\d.]+) ms", r.stdout))
    assert len(rtts) >= 19, r.stdout + r.stderr
    assert rtts[len(rtts) // 2] < 0.3, "median round trip %.3f ms: %s" % (rtts[len(rtts) // 2], rtts)
    stats = {p["name"]: p for p in ctl.json("port", "stats")["ports"]}
    assert stats["vsn-n1"]["rx_packets"] >= 3 and stats["vsn-n1"]["tx_packets"] >= 3, stats["vsn-n1"]
    # The RX ring's own counters: every frame the ring took reached the switch, none dropped for a full ring.
    ring = stats["vsn-n1"]["netdev_ring"]
    assert ring["drops"] == 0 and ring["packets"] >= stats["vsn-n1"]["rx_packets"], ring
    assert "netdev_ring" not in stats["vsn-t1"], stats["vsn-t1"]
    # The state file holds the netdev port; link monitoring covers it.
    assert '"netdev"' in (ctl.state_dir / "state.json").read_text()
    harness.run(["ip", "link", "set", "vsn-up", "down"])
    assert wait_for(lambda: ctl.port("vsn-n1")["link"] == "down"), ctl.port("vsn-n1")
    harness.run(["ip", "link", "set", "vsn-up", "up"])
    assert wait_for(lambda: ctl.port("vsn-n1")["link"] == "up"), ctl.port("vsn-n1")
    assert ping("vsn-a1", "10.78.0.2").returncode == 0
    ctl.ctl("del-port", "vsn-n1")
    assert ping("vsn-a1", "10.78.0.2", count=1).returncode != 0


def test_netdev_trunk_carries_tagged_frames(ctl, tmp_path):
    from scapy.all import rdpcap, Dot1Q, ARP
    veth_to_namespace()
    ctl.ctl("profile", "load", str(PROFILES))
    ctl.ctl("add-port", "vsn-t1", "--profile", TENANT_A, "--mac", MAC1, "--namespace", "vsn-a1", "--address", "10.78.0.1/24")
    ctl.ctl("add-port", "vsn-n1", "--type", "netdev", "--interface", "vsn-up", "--profile", TRUNK_AB)
    cap = tmp_path / "trunk.pcap"
    p = tcpdump("vsn-peer", cap, "arp", 2)
    ping("vsn-a1", "10.78.0.9", count=2)   # unanswered: ARP broadcasts flood to the trunk
    p.wait(timeout=10)
    frames = rdpcap(str(cap))
    assert frames, "no ARP reached the trunk's peer"
    for f in frames:
        assert f.haslayer(Dot1Q) and f[Dot1Q].vlan == 10 and f.haslayer(ARP), f.summary()
    # Tagged VLAN 10 frames from the trunk reach the access port untagged.
    cap2 = tmp_path / "access.pcap"
    p2 = tcpdump("vsn-a1", cap2, "ether proto 0x88b5", 3)
    harness.ns_exec("vsn-peer", "/usr/bin/python3", "-c",
                    "from scapy.all import *; sendp([Ether(src='02:00:00:00:0e:77', dst='ff:ff:ff:ff:ff:ff')/Dot1Q(vlan=10, type=0x88b5)/"
                    "Raw(bytes(range(60)))]*3, iface='eth0', verbose=0)")
    p2.wait(timeout=10)
    got = rdpcap(str(cap2))
    assert len(got) == 3 and all(not g.haslayer(Dot1Q) for g in got), [g.summary() for g in got]


def test_pcap_replay_port_frames_come_out_identical(ctl, tmp_path):
    from scapy.all import Ether, Raw, rdpcap, wrpcap
    ctl.ctl("profile", "load", str(PROFILES))
    ctl.ctl("add-port", "vsn-t1", "--profile", TENANT_A, "--mac", MAC1, "--namespace", "vsn-a1", "--address", "10.78.0.1/24")
    harness.ns_exec("vsn-a1", "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1")
    sent = [Ether(src="02:00:00:00:0e:%02x" % (0x80 + k), dst="ff:ff:ff:ff:ff:ff", type=0x88B5) / Raw(bytes([k]) * (46 + k))
            for k in range(20)]
    wrpcap(str(tmp_path / "in.pcap"), sent)
    cap = tmp_path / "out.pcap"
    p = tcpdump("vsn-a1", cap, "ether proto 0x88b5", len(sent))
    ctl.ctl("add-port", "vsn-r1", "--type", "pcap", "--file", str(tmp_path / "in.pcap"), "--rate", "200",
            "--profile", TENANT_A)
    p.wait(timeout=15)
    got = [bytes(f) for f in rdpcap(str(cap))]
    assert got == [bytes(f) for f in sent]
    assert ctl.port("vsn-r1")["type"] == "pcap"
