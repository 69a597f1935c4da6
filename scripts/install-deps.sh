#!/usr/bin/env bash
# Installs the Debian packages VSwitch needs to build, demo and test. Idempotent; quiet when all are present.
set -euo pipefail
pkgs=(libnl-3-dev libnl-route-3-dev libxml2-dev libxml2-utils libpcap-dev liburing-dev
      iproute2 iputils-ping tcpdump tshark python3-scapy python3-pytest procps
      netsniff-ng iperf3 openvswitch-switch nftables ethtool python3-matplotlib cpio kmod
      e2fsprogs util-linux)   # mkfs.ext4, fsfreeze, losetup: the stalled-disk capture test
# The VM test and `make demo-vm` (issue 8): QEMU without its recommends (no GUI, no firmware extras).
norec=(qemu-system-x86)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  if [ "$(id -u)" -ne 0 ]; then echo "install-deps: run as root (apt-get needs it)" >&2; exit 1; fi
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}"
fi
missing=()
for p in "${norec[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing (no recommends): ${missing[*]}"
  if [ "$(id -u)" -ne 0 ]; then echo "install-deps: run as root (apt-get needs it)" >&2; exit 1; fi
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
