"""A real QEMU virtual machine on VSwitch (issue 8): the scenario shared by test_vm_guest.py and
`make demo-vm` (scripts/vm/demo-vm.py).

  guest (QEMU, TCG, Debian cloud kernel + virtio-net, busybox /init)   10.79.0.2/24, MAC 52:54:00:79:00:02
     └ virtio-net-pci ── TAP vswvm-tap0 (persistent, its fd held by QEMU)
                             └ VSwitch netdev port vswvm-vm1 (AF_PACKET rings), profile tenant-a (VLAN 10)
  namespace vswvm-ns1 ── TAP port vswvm-p1, profile tenant-a                10.79.0.1/24

The guest pings the namespace (its console prints VSW-GUEST-PING-OK), then the namespace pings the
guest. Everything (QEMU, daemon, TAPs, namespace) is removed on exit, also on failure.
"""

import contextlib
import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import harness
from ctlharness import PROFILES, TENANT_A, CtlDaemon

TAP = "vswvm-tap0"
PORT_VM = "vswvm-vm1"
PORT_NS = "vswvm-p1"
NS = "vswvm-ns1"
GUEST_IP, NS_IP = "10.79.0.2", "10.79.0.1"
GUEST_MAC, NS_MAC = "52:54:00:79:00:02", "02:00:00:00:79:01"
QEMU = os.environ.get("QEMU", "qemu-system-x86_64")
BUILD_GUEST = harness.REPO / "scripts" / "vm" / "build-guest.sh"
VM_CACHE = Path(os.environ.get("VM_CACHE", str(harness.REPO / ".cache" / "vm")))


class ScenarioError(Exception):
    pass


def build_guest(log=print):
    p = subprocess.run(["bash", str(BUILD_GUEST)], capture_output=True, text=True, timeout=600,
                       env={**os.environ, "VM_CACHE": str(VM_CACHE)})
    if p.returncode != 0:
        raise ScenarioError("build-guest.sh failed:\n" + p.stdout + p.stderr)
    log(p.stdout.strip())
    return VM_CACHE / "vmlinuz", VM_CACHE / "initrd.gz"


class Console:
    """The guest's serial console, written by QEMU to a file."""

    def __init__(self, path):
        self.path = Path(path)

    def text(self):
        try:
            return self.path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def wait(self, pattern, timeout, qemu=None):
        deadline = time.monotonic() + timeout
        rx = re.compile(pattern, re.M)
        while time.monotonic() < deadline:
            m = rx.search(self.text())
            if m:
                return m
            if qemu is not None and qemu.poll() is not None:
                break
            time.sleep(0.2)
        return rx.search(self.text())

    def markers(self):
        return [line[line.index("VSW-GUEST-"):].strip() for line in self.text().splitlines() if "VSW-GUEST-" in line]


@contextlib.contextmanager
def scenario(workdir, log=print, accel="tcg"):
    """Yields (daemon, qemu, console) once the guest has booted, with both ports attached.
    Cleans up everything on exit."""
    if shutil.which(QEMU) is None:
        raise ScenarioError("%s not found: apt-get install --no-install-recommends qemu-system-x86 "
                            "(scripts/install-deps.sh does it)" % QEMU)
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    kernel, initrd = build_guest(log)
    harness.delete_leftovers([NS], [TAP, PORT_NS])
    d = CtlDaemon(workdir, namespaces=[NS], links=[TAP, PORT_NS])
    qemu = None
    try:
        # The TAP QEMU will own: created persistent first, so VSwitch can attach to it before QEMU starts.
        harness.run(["ip", "tuntap", "add", "dev", TAP, "mode", "tap"], check=True)
        with open("/proc/sys/net/ipv6/conf/%s/disable_ipv6" % TAP, "w") as f:
            f.write("1")
        log("vswitchd --state-dir %s" % d.state_dir)
        d.start()
        d.ctl("profile", "load", str(PROFILES))
        d.ctl("add-port", PORT_VM, "--type", "netdev", "--interface", TAP, "--profile", TENANT_A, "--mac", GUEST_MAC)
        d.ctl("add-port", PORT_NS, "--profile", TENANT_A, "--mac", NS_MAC, "--namespace", NS,
              "--address", NS_IP + "/24")
        harness.ns_exec(NS, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1")
        log("ports: %s" % ", ".join("%s (%s, %s)" % (p["name"], p["type"], p["profile"]) for p in d.show()["ports"]))

        console = Console(workdir / "console.log")
        cmd = [QEMU, "-accel", accel, "-m", "256", "-smp", "1", "-nographic", "-no-reboot",
               "-monitor", "none", "-serial", "file:%s" % console.path,
               "-kernel", str(kernel), "-initrd", str(initrd),
               "-append", "console=ttyS0 quiet panic=-1 vsw.ip=%s/24 vsw.peer=%s vsw.count=5 vsw.wait=90"
                          % (GUEST_IP, NS_IP),
               "-netdev", "tap,id=n0,ifname=%s,script=no,downscript=no" % TAP,
               "-device", "virtio-net-pci,netdev=n0,mac=%s,romfile=" % GUEST_MAC]
        log("starting QEMU (%s): %s" % (accel, " ".join(cmd)))
        t0 = time.monotonic()
        qemu = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=open(workdir / "qemu.out", "w"),
                                stderr=subprocess.STDOUT, start_new_session=True)
        if not console.wait(r"VSW-GUEST-BOOTED", 60, qemu):
            raise ScenarioError("the guest did not boot in 60 s; console:\n%s\nqemu: %s"
                                % (console.text()[-3000:], (workdir / "qemu.out").read_text()[-2000:]))
        log("guest booted in %.1f s" % (time.monotonic() - t0))
        yield d, qemu, console
    finally:
        if qemu is not None and qemu.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(qemu.pid, signal.SIGKILL)
            qemu.wait(timeout=10)
        d.cleanup()
        harness.delete_leftovers([NS], [TAP, PORT_NS])


def guest_pinged(console, qemu, timeout=60):
    """Waits for the guest's verdict on its ping of the namespace: (ok, marker line)."""
    m = console.wait(r"VSW-GUEST-PING-(OK|FAIL).*$", timeout, qemu)
    if not m:
        return False, None
    return m.group(1) == "OK", m.group(0).strip()


def ping_guest(count=5):
    return harness.ns_exec(NS, "ping", "-c", str(count), "-i", "0.2", "-W", "2", GUEST_IP, timeout=60)


def received(ping_output):
    m = re.search(r"(\d+) received", ping_output)
    return int(m.group(1)) if m else 0
