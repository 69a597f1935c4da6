#!/usr/bin/python3
"""`make demo-vm`: boots a small QEMU guest (scripts/vm/build-guest.sh) on a TAP that QEMU owns, attaches
that TAP to VSwitch as a netdev port bound to a profile, adds a namespace virtual system on the same VLAN,
and pings both ways, with readable output. The same scenario as Tests/Integration/test_vm_guest.py
(Tests/Integration/vmguest.py); everything it creates is removed at the end, also on failure or Ctrl-C."""

import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "Tests" / "Integration"))

import vmguest  # noqa: E402


def say(s):
    print("\n\033[1m== %s\033[0m" % s, flush=True)


def main():
    ok = True
    with tempfile.TemporaryDirectory(prefix="vswitch-demo-vm.") as work:
        try:
            say("building the guest (Debian cloud kernel + virtio-net modules + busybox initramfs)")
            with vmguest.scenario(work, log=lambda s: print("  " + s, flush=True)) as (d, qemu, console):
                say("the switch")
                print("\n".join("  " + line for line in d.ctl("show").stdout.splitlines()))
                say("guest -> namespace (%s -> %s), as the guest's serial console reports it" % (vmguest.GUEST_IP, vmguest.NS_IP))
                good, marker = vmguest.guest_pinged(console, qemu)
                for line in console.markers():
                    print("  console: " + line)
                print("  [%s] guest pinged the namespace" % ("ok" if good else "FAIL"))
                ok &= good
                say("namespace -> guest (ip netns exec %s ping %s)" % (vmguest.NS, vmguest.GUEST_IP))
                r = vmguest.ping_guest(5)
                print("\n".join("  " + line for line in r.stdout.strip().splitlines()[-3:]))
                n = vmguest.received(r.stdout)
                print("  [%s] namespace pinged the guest (%d/5 replies)" % ("ok" if n >= 4 else "FAIL", n))
                ok &= n >= 4
                say("MAC table and the VM port's counters")
                print("\n".join("  " + line for line in d.ctl("fdb", "show").stdout.splitlines()))
                print("\n".join("  " + line for line in d.ctl("port", "stats", vmguest.PORT_VM).stdout.splitlines()))
                say("tearing down (QEMU, vswitchd, TAPs, namespace)")
        except vmguest.ScenarioError as e:
            print("demo-vm: %s" % e, file=sys.stderr)
            return 1
    say("demo-vm: %s" % ("all pings answered" if ok else "FAILED"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
