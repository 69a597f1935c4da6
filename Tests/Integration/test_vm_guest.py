"""A real virtual machine on VSwitch (issue 8, item 6): a QEMU guest (Debian's cloud kernel with its
virtio-net modules, a busybox initramfs; built by scripts/vm/build-guest.sh, cached in .cache/vm) on a
TAP whose fd QEMU holds, attached to VSwitch as a netdev port bound to a profile; a namespace virtual
system on the same VLAN. Pings both ways. Scenario and cleanup: vmguest.py (also `make demo-vm`)."""

import os

import pytest

import vmguest
from ctlharness import TENANT_A, VSWITCHCTL


@pytest.fixture
def vm(environment, tmp_path):
    if not os.access(VSWITCHCTL, os.X_OK):
        pytest.fail("vswitchctl binary %s not found (build it, or set VSWITCHCTL)" % VSWITCHCTL, pytrace=False)
    try:
        with vmguest.scenario(tmp_path, log=lambda s: print(s)) as (d, qemu, console):
            yield d, qemu, console
    except vmguest.ScenarioError as e:
        pytest.fail(str(e), pytrace=False)


def _out(p):
    return p.stdout + p.stderr


def test_qemu_guest_on_a_netdev_port_pings_a_namespace_both_ways(vm):
    d, qemu, console = vm
    port = d.port(vmguest.PORT_VM)
    assert port["type"] == "netdev" and port["interface"] == vmguest.TAP and port["profile"] == TENANT_A, port

    # guest -> namespace: the guest's /init pings 10.79.0.1 and reports on its serial console.
    ok, marker = vmguest.guest_pinged(console, qemu)
    assert ok, "guest -> namespace ping failed: %s\nconsole:\n%s" % (marker, console.text()[-3000:])
    assert console.wait(r"VSW-GUEST-MODULES .*virtio_net", 1), console.markers()
    assert console.wait(r"VSW-GUEST-ETH0-UP %s/24 %s" % (vmguest.GUEST_IP, vmguest.GUEST_MAC), 1), console.markers()

    # namespace -> guest.
    r = vmguest.ping_guest(5)
    assert vmguest.received(r.stdout) >= 4, r.stdout + r.stderr

    # The switch learned the guest's MAC on the netdev port, in the profile's VLAN, and counted the frames.
    fdb = d.json("fdb", "show")["entries"]
    # On failure, say what the switch saw (an empty table once, in 1 of 5 CI runs on 2026-12-06: see the
    # closing note of that session), so that the next occurrence can be diagnosed.
    assert {"port": vmguest.PORT_VM, "vlan": 10, "mac": vmguest.GUEST_MAC} in [
        {k: e[k] for k in ("port", "vlan", "mac")} for e in fdb], \
        "fdb %s\nport stats %s\nfdb stats %s\nvswitchd stderr:\n%s" % (
            fdb, _out(d.ctl("port", "stats", check=False)), _out(d.ctl("fdb", "stats", check=False)), d.stderr()[-4000:])
    stats = d.json("port", "stats", vmguest.PORT_VM)["ports"][0]
    assert stats["rx_packets"] >= 10 and stats["tx_packets"] >= 10, stats
    assert qemu.poll() is None, "the guest is still running"
