#!/usr/bin/env bash
# Builds the small QEMU guest of `make demo-vm` and Tests/Integration/test_vm_guest.py from Debian packages:
#   - Debian's cloud kernel (linux-image-cloud-amd64 → the versioned linux-image-*-cloud-amd64 it depends on),
#     fetched with `apt-get download` and unpacked with `dpkg-deb -x` (never installed);
#   - its virtio / virtio_ring / virtio_pci / virtio_net modules and their dependencies (from modules.dep, which
#     `depmod -b` generates in the extracted tree; whatever is built in (modules.builtin) is skipped);
#   - busybox-static, for a busybox initramfs (cpio newc, gzip) whose /init loads the modules, configures eth0
#     from the kernel command line and pings a peer, printing markers on the serial console (ttyS0).
#
# Output (cached; rebuilt only when missing or when this script changes): $VM_CACHE (default <repo>/.cache/vm)
#   vmlinuz  initrd.gz  guest.env (KERNEL_VERSION=…)
#
# Guest kernel command line (read by /init):
#   vsw.ip=CIDR  vsw.peer=IP  vsw.count=N (pings of the peer, default 5)  vsw.wait=S (seconds to stay up
#   answering pings after that, default 60; then the guest powers off)
# Console markers (one line each): VSW-GUEST-BOOTED, VSW-GUEST-MODULES <list>, VSW-GUEST-ETH0-UP <ip> <mac>,
#   VSW-GUEST-PING-OK <peer> <received>/<count>  or  VSW-GUEST-PING-FAIL <peer>, VSW-GUEST-IDLE, VSW-GUEST-POWEROFF.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
out="${VM_CACHE:-$repo/.cache/vm}"
stamp_want="$(sha256sum "$0" | cut -c1-16)"

if [ -f "$out/vmlinuz" ] && [ -f "$out/initrd.gz" ] && [ -f "$out/guest.env" ] \
   && grep -q "^SCRIPT_HASH=$stamp_want$" "$out/guest.env"; then
  echo "build-guest: cached in $out ($(grep KERNEL_VERSION "$out/guest.env"))"
  exit 0
fi

for tool in apt-get dpkg-deb depmod cpio gzip; do
  command -v "$tool" >/dev/null || { echo "build-guest: $tool not found" >&2; exit 1; }
done

mkdir -p "$out"
work="$(mktemp -d "$out/build.XXXXXX")"
trap 'rm -rf "$work"' EXIT
cd "$work"

# 1. The versioned kernel package behind the metapackage (apt-cache reads the local package lists).
kpkg="$(apt-cache depends linux-image-cloud-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')"
if [ -z "$kpkg" ]; then
  echo "build-guest: no linux-image-*-cloud-amd64 in the apt lists (run apt-get update)" >&2
  exit 1
fi
echo "build-guest: downloading $kpkg and busybox-static (apt-get download, not installed)"
apt-get download -q -o APT::Sandbox::User=root "$kpkg" busybox-static >/dev/null
dpkg-deb -x "$kpkg"_*.deb kernel
dpkg-deb -x busybox-static_*.deb busybox

kver="$(ls kernel/lib/modules | head -1)"
vmlinuz="kernel/boot/vmlinuz-$kver"
[ -f "$vmlinuz" ] || { echo "build-guest: $vmlinuz missing in $kpkg" >&2; exit 1; }
moddir="kernel/lib/modules/$kver"
# The package ships no modules.dep (depmod runs at install time): generate it inside the extracted tree.
[ -f "$moddir/modules.dep" ] || depmod -b "$work/kernel" "$kver"

# 2. Modules: the wanted ones and their dependencies, in load order (dependencies first).
declare -A seen=()
order=()
resolve() {  # $1 = path relative to $moddir, as in modules.dep
  local m="$1"
  [ -n "${seen[$m]:-}" ] && return 0
  seen[$m]=1
  local deps
  deps="$(awk -F': ' -v m="$m" '$1 == m {print $2}' "$moddir/modules.dep")"
  for d in $deps; do resolve "$d"; done
  order+=("$m")
}
for want in virtio virtio_ring virtio_pci virtio_net; do
  path="$(awk -F: -v w="/$want.ko" 'index($1, w) && substr($1, length($1) - length(w) + 1) == w {print $1; exit}' "$moddir/modules.dep")"
  if [ -z "$path" ]; then
    # Not a module: built in (modules.builtin) or absent.
    if grep -q "/$want.ko" "$moddir/modules.builtin" 2>/dev/null; then echo "build-guest: $want is built in"; continue; fi
    echo "build-guest: $want is neither a module nor built in to $kver" >&2; exit 1
  fi
  resolve "$path"
done

# 3. The initramfs tree.
root="$work/root"
mkdir -p "$root"/{bin,sbin,proc,sys,dev,tmp,lib/modules}
cp busybox/bin/busybox "$root/bin/busybox"
for applet in sh mount umount insmod ip ping sleep cat echo grep sed poweroff sync mknod ls uname ifconfig; do
  ln -sf busybox "$root/bin/$applet"
done
loadlist=""
for m in "${order[@]}"; do
  base="$(basename "$m")"
  case "$base" in
    *.ko) cp "$moddir/$m" "$root/lib/modules/$base" ;;
    *.ko.xz) xz -dc "$moddir/$m" > "$root/lib/modules/${base%.xz}"; base="${base%.xz}" ;;
    *.ko.zst) zstd -q -dc "$moddir/$m" > "$root/lib/modules/${base%.zst}"; base="${base%.zst}" ;;
    *) echo "build-guest: unknown module format $m" >&2; exit 1 ;;
  esac
  loadlist="$loadlist $base"
done

cat > "$root/init" <<'INIT'
#!/bin/sh
# VSwitch test guest: load virtio-net, configure eth0, ping the peer, then stay up answering pings.
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
echo "VSW-GUEST-BOOTED $(uname -r)"
loaded=""
for m in @MODULES@; do
  if insmod /lib/modules/$m 2>/tmp/insmod.err; then loaded="$loaded ${m%.ko}"; else echo "VSW-GUEST-INSMOD-FAIL $m $(cat /tmp/insmod.err)"; fi
done
echo "VSW-GUEST-MODULES$loaded"
arg() { for kv in $(cat /proc/cmdline); do case "$kv" in "$1="*) echo "${kv#*=}"; return;; esac; done; echo "$2"; }
ipaddr=$(arg vsw.ip 192.168.77.2/24); peer=$(arg vsw.peer 192.168.77.1); count=$(arg vsw.count 5); wait=$(arg vsw.wait 60)
i=0
while [ ! -e /sys/class/net/eth0 ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i+1)); done
if [ ! -e /sys/class/net/eth0 ]; then echo "VSW-GUEST-NO-ETH0"; ls /sys/class/net; poweroff -f; fi
ip link set lo up
ip addr add "$ipaddr" dev eth0
ip link set eth0 up
echo "VSW-GUEST-ETH0-UP $ipaddr $(cat /sys/class/net/eth0/address)"
# The switch learns the guest's MAC from its first frame; retry until the peer answers (ARP included).
ok=0
for attempt in 1 2 3 4 5 6 7 8 9 10; do
  out=$(ping -c "$count" -i 0.2 -W 1 "$peer" 2>&1)
  rcv=$(echo "$out" | sed -n 's/.* \([0-9][0-9]*\) packets received.*/\1/p')
  if [ -n "$rcv" ] && [ "$rcv" -gt 0 ]; then ok=1; break; fi
  sleep 0.5
done
if [ $ok = 1 ]; then echo "VSW-GUEST-PING-OK $peer $rcv/$count"; else echo "VSW-GUEST-PING-FAIL $peer"; echo "$out"; fi
echo "VSW-GUEST-IDLE"
sleep "$wait"
echo "VSW-GUEST-POWEROFF"
sync
poweroff -f
INIT
sed -i "s|@MODULES@|${loadlist# }|" "$root/init"
chmod 755 "$root/init"

(cd "$root" && find . -print0 | cpio --null -o -H newc --quiet) | gzip -9 > "$work/initrd.gz"

cp "$vmlinuz" "$out/vmlinuz"
mv "$work/initrd.gz" "$out/initrd.gz"
{
  echo "KERNEL_PACKAGE=$kpkg"
  echo "KERNEL_VERSION=$kver"
  echo "MODULES=\"${loadlist# }\""
  echo "SCRIPT_HASH=$stamp_want"
} > "$out/guest.env"
echo "build-guest: $out: vmlinuz ($kver), initrd.gz ($(stat -c %s "$out/initrd.gz") bytes, modules:${loadlist})"
