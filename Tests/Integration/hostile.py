"""Helpers of the hostile-traffic tests (test_hostile_*.py, issue 6): the fast C sender
(tools/blast.c, compiled once per session) and per-namespace nftables counters that count, in the
receiving virtual system's kernel and independently of the switch, the test frames by class."""

import json
import os
import shutil
import struct
import subprocess

import harness

TOOLS = harness.HERE / "tools"
MAGIC = b"VSWHOST"          # 7 bytes after the EtherType (0x88B5), then class and VLAN bytes
LEGIT, CROSS, SPOOF = b"L", b"X", b"S"


def build_blast(outdir):
    cc = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if cc is None:
        raise harness.HarnessError("no C compiler (cc/gcc/clang) for tools/blast.c")
    out = os.path.join(str(outdir), "blast")
    r = harness.run([cc, "-O2", "-o", out, str(TOOLS / "blast.c")], timeout=120)
    if r.returncode != 0:
        raise harness.HarnessError("cannot compile blast.c: %s" % r.stderr)
    return out


def mac_bytes(mac):
    return bytes(int(x, 16) for x in mac.split(":"))


def marked(src, dst="ff:ff:ff:ff:ff:ff", cls=LEGIT, vlan_mark=0, tags=(), size=64):
    """Ethernet [+ tags (tpid, vid)] + 0x88B5 + MAGIC + class + VLAN mark, padded to `size`."""
    b = mac_bytes(dst) + mac_bytes(src)
    for tpid, vid in tags:
        b += struct.pack("!HH", tpid, vid)
    b += struct.pack("!H", harness.TEST_ETHERTYPE) + MAGIC + cls + bytes([vlan_mark])
    return b + bytes(max(0, size - len(b)))


def write_frames(path, frames):
    with open(path, "w") as f:
        for fr in frames:
            f.write(fr.hex() + "\n")


def blast_cmd(blast, ns, frames_file, count, random_src=False, pps=0, seed=1):
    cmd = ["ip", "netns", "exec", ns, blast, "eth0", str(frames_file), str(count), "--seed", str(seed)]
    if random_src:
        cmd.append("--random-src")
    if pps:
        cmd += ["--pps", str(pps)]
    return cmd


def parse_blast(out):
    # "sent N errors E seconds S"
    w = out.split()
    return {"sent": int(w[1]), "errors": int(w[3]), "seconds": float(w[5])}


NFT_TABLE = "vswhostile"


def nft_install(ns, my_vlan):
    """Named counters on eth0's ingress (netdev family) in `ns`: own_legit (class L, this VLAN),
    any_legit (class L), cross (class X), spoof (class S). Offsets are of an untagged frame
    (what an access port delivers): EtherType at bit 96, MAGIC at 112, class at 168, VLAN at 176."""
    magic = "0x" + MAGIC.hex()
    m = "ether type 0x88b5 @ll,112,56 %s" % magic
    script = "\n".join([
        "table netdev %s {" % NFT_TABLE,
        "  counter own_legit {}", "  counter any_legit {}", "  counter cross {}", "  counter spoof {}",
        "  chain in { type filter hook ingress device eth0 priority 0; policy accept;",
        "    %s @ll,168,8 0x%s @ll,176,8 %d counter name own_legit" % (m, LEGIT.hex(), my_vlan),
        "    %s @ll,168,8 0x%s counter name any_legit" % (m, LEGIT.hex()),
        "    %s @ll,168,8 0x%s counter name cross" % (m, CROSS.hex()),
        "    %s @ll,168,8 0x%s counter name spoof" % (m, SPOOF.hex()),
        "  }",
        "}",
    ]) + "\n"
    harness.ns_exec(ns, "nft", "delete", "table", "netdev", NFT_TABLE)   # fresh counters (absent: ignored)
    r = subprocess.run(["ip", "netns", "exec", ns, "nft", "-f", "-"], input=script, capture_output=True, text=True, timeout=30)
    if r.returncode != 0:
        raise harness.HarnessError("nft in %s: %s" % (ns, r.stderr))


def nft_counters(ns):
    r = harness.ns_exec(ns, "nft", "-j", "list", "counters", "table", "netdev", NFT_TABLE)
    if r.returncode != 0:
        raise harness.HarnessError("nft list in %s: %s" % (ns, r.stderr))
    out = {}
    for item in json.loads(r.stdout)["nftables"]:
        c = item.get("counter")
        if c:
            out[c["name"]] = c["packets"]
    return out


def sysfs(ns, name, iface="eth0"):
    r = harness.ns_exec(ns, "cat", "/sys/class/net/%s/statistics/%s" % (iface, name))
    return int(r.stdout.strip() or 0)
