#!/usr/bin/env python3
"""Writes the seed corpus of the pipeline fuzzer (fuzz/corpus/frames/): hand-made frames in the
driver's record format ([port byte][length, 2 bytes big-endian][frame]; see fuzz/PipelineFuzz.swift).
Re-run after changing it: python3 fuzz/make-frame-corpus.py"""
import os, struct, shutil

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "frames")
BCAST = b"\xff" * 6

def mac(p):  # the driver binds port p to 02:00:00:00:00:(p+1)
    return bytes([2, 0, 0, 0, 0, p + 1])

def eth(dst, src, ethertype, payload, tags=()):
    b = dst + src
    for tpid, vid, pcp in tags:
        b += struct.pack("!HH", tpid, (pcp << 13) | vid)
    return b + struct.pack("!H", ethertype) + payload

def pad(b, n=60):
    return b + b"\0" * max(0, n - len(b))

def ipv4(proto, l4, src="10.0.0.1", dst="10.0.0.2"):
    s = bytes(int(x) for x in src.split(".")); d = bytes(int(x) for x in dst.split("."))
    return struct.pack("!BBHHHBBH", 0x45, 0, 20 + len(l4), 0, 0, 64, proto, 0) + s + d + l4

def ipv6(nxt, l4, src=b"\xfe\x80" + b"\0" * 13 + b"\x01", dst=b"\xff\x02" + b"\0" * 13 + b"\x01"):
    return struct.pack("!IHBB", 0x60000000, len(l4), nxt, 255) + src + dst + l4

def udp(sp, dp, n=8): return struct.pack("!HHHH", sp, dp, 8 + n, 0) + b"\0" * n
def tcp(sp, dp, flags=0x02): return struct.pack("!HHIIBBHHH", sp, dp, 1, 0, 0x50, flags, 8192, 0, 0)
def icmp(t, c=0): return struct.pack("!BBHI", t, c, 0, 0) + b"x" * 16

def rec(port, frame, advance=False):
    return bytes([port | (0x80 if advance else 0)]) + struct.pack("!H", len(frame)) + frame

def toggle(port):
    return bytes([0x70 | port, 0x5A, 0])

seeds = {}
web, acc, rate, tun, mon, uplink, ta, tb, trab, trn, acc2 = range(11)
# Runts and the zero-length read.
seeds["runt-0"] = rec(acc, b"")
seeds["runt-1"] = rec(acc, b"\xff")
seeds["runt-13"] = rec(acc, BCAST + mac(acc)[:7])
seeds["header-only-14"] = rec(acc, BCAST + mac(acc) + b"\x08\x00")
# Truncated and stacked tags.
seeds["tag-truncated-16"] = rec(trab, BCAST + mac(trab) + b"\x81\x00\x00")
seeds["tag-truncated-17"] = rec(trab, BCAST + mac(trab) + b"\x81\x00\x00\x0a\x08")
seeds["stacked-truncated-20"] = rec(uplink, BCAST + mac(uplink) + b"\x88\xa8\x01\x2c\x81\x00\x00\x0a")
seeds["stacked-qinq"] = rec(uplink, pad(eth(BCAST, mac(uplink), 0x0800, ipv4(17, udp(1, 2)), tags=[(0x88A8, 300, 0), (0x8100, 10, 0)])))
seeds["stacked-dot1q-dot1q"] = rec(trab, pad(eth(BCAST, mac(trab), 0x0800, ipv4(17, udp(1, 2)), tags=[(0x8100, 10, 0), (0x8100, 20, 0)])))
seeds["tunnel-customer-tag"] = rec(tun, pad(eth(BCAST, mac(tun), 0x0800, ipv4(1, icmp(8)), tags=[(0x8100, 42, 3)])))
seeds["tunnel-untagged"] = rec(tun, pad(eth(BCAST, mac(tun), 0x0806, b"\0" * 28)))
seeds["vid-4095"] = rec(trab, pad(eth(BCAST, mac(trab), 0x0800, b"", tags=[(0x8100, 4095, 0)])))
seeds["priority-tag-vid0"] = rec(acc, pad(eth(BCAST, mac(acc), 0x0800, ipv4(17, udp(1, 2)), tags=[(0x8100, 0, 5)])))
seeds["access-wrong-vid"] = rec(ta, pad(eth(BCAST, mac(ta), 0x0800, b"", tags=[(0x8100, 20, 0)])))
seeds["trunk-not-allowed-vid"] = rec(trab, pad(eth(BCAST, mac(trab), 0x0800, b"", tags=[(0x8100, 30, 0)])))
seeds["trunk-untagged-tagged-only"] = rec(uplink, pad(eth(BCAST, mac(uplink), 0x0800, b"")))
seeds["pcp-7-web"] = rec(web, pad(eth(BCAST, mac(web), 0x0800, ipv4(17, udp(1, 2)), tags=[(0x8100, 100, 7)])))
# Sources.
seeds["multicast-source"] = rec(acc, pad(eth(BCAST, b"\x01\x00\x5e\x00\x00\x01", 0x0800, b"")))
seeds["zero-source"] = rec(acc, pad(eth(BCAST, b"\0" * 6, 0x0800, b"")))
seeds["spoofed-source-web"] = rec(web, pad(eth(BCAST, b"\x02\x99\x99\x99\x99\x99", 0x0800, ipv4(6, tcp(1000, 80)))))
seeds["vrrp-mac-web"] = rec(web, pad(eth(BCAST, b"\x00\x00\x5e\x00\x01\x01", 0x0800, ipv4(112, b"\0" * 20))))
# Giants around the MTU (1500 + 14; + 18 tagged) and the jumbo port.
seeds["giant-1515"] = rec(acc, eth(BCAST, mac(acc), 0x0800, b"\0" * 1501))
seeds["mtu-exact-1514"] = rec(acc, eth(BCAST, mac(acc), 0x0800, b"\0" * 1500))
seeds["tagged-mtu-1518"] = rec(trab, eth(BCAST, mac(trab), 0x0800, b"\0" * 1500, tags=[(0x8100, 10, 0)]))
seeds["jumbo-9018"] = rec(trab, eth(BCAST, mac(trab), 0x0800, b"\0" * 9000, tags=[(0x8100, 20, 0)]))
seeds["jumbo-too-big"] = rec(trab, eth(BCAST, mac(trab), 0x0800, b"\0" * 9050, tags=[(0x8100, 20, 0)]))
# L3/L4 (guards and ACLs on the web server port; rate-limited tenant).
seeds["ipv4-tcp-syn"] = rec(web, pad(eth(mac(acc), mac(web), 0x0800, ipv4(6, tcp(40000, 80)))))
seeds["ipv4-tcp-22"] = rec(web, pad(eth(mac(acc), mac(web), 0x0800, ipv4(6, tcp(40000, 22)))))
seeds["ipv4-udp-dns"] = rec(web, pad(eth(mac(acc), mac(web), 0x0800, ipv4(17, udp(5353, 53)))))
seeds["ipv4-icmp-echo"] = rec(acc, pad(eth(mac(web), mac(acc), 0x0800, ipv4(1, icmp(8)))))
seeds["ipv4-icmp-router-adv"] = rec(web, pad(eth(BCAST, mac(web), 0x0800, ipv4(1, icmp(9)))))
seeds["ipv4-fragment"] = rec(web, pad(eth(BCAST, mac(web), 0x0800, ipv4(17, udp(1, 2))[:6] + b"\x20\x10" + ipv4(17, udp(1, 2))[8:])))
seeds["ipv4-bad-ihl"] = rec(web, pad(eth(BCAST, mac(web), 0x0800, b"\x4f" + ipv4(6, tcp(1, 2))[1:])))
seeds["ipv4-truncated"] = rec(web, eth(BCAST, mac(web), 0x0800, ipv4(6, tcp(1, 2))[:22]))
seeds["dhcp-server-v4"] = rec(web, pad(eth(BCAST, mac(web), 0x0800, ipv4(17, udp(67, 68, 240)))))
seeds["dhcp-server-v6"] = rec(web, pad(eth(b"\x33\x33\0\x01\0\x02", mac(web), 0x86DD, ipv6(17, udp(547, 546)))))
seeds["ipv6-ra"] = rec(web, pad(eth(b"\x33\x33\0\0\0\x01", mac(web), 0x86DD, ipv6(58, icmp(134)))))
seeds["ipv6-redirect"] = rec(web, pad(eth(b"\x33\x33\0\0\0\x01", mac(web), 0x86DD, ipv6(58, icmp(137)))))
seeds["ipv6-udp"] = rec(rate, pad(eth(BCAST, mac(rate), 0x86DD, ipv6(17, udp(1000, 2000)))))
seeds["ipv6-tcp-ext-hdr"] = rec(rate, pad(eth(BCAST, mac(rate), 0x86DD, ipv6(0, b"\x06\x00" + b"\0" * 6 + tcp(1, 80)))))
seeds["ipv6-truncated"] = rec(rate, eth(BCAST, mac(rate), 0x86DD, ipv6(6, tcp(1, 2))[:30]))
seeds["arp"] = rec(ta, pad(eth(BCAST, mac(ta), 0x0806, bytes.fromhex("0001080006040001") + mac(ta) + b"\x0a\0\x0a\x01" + b"\0" * 6 + b"\x0a\0\x0a\x02")))
# Conversations: learn, then unicast; floods to several VLANs; a port going down and up; time passing.
conv = rec(acc, pad(eth(BCAST, mac(acc), 0x0806, b"\0" * 28))) + rec(acc2, pad(eth(mac(acc), mac(acc2), 0x0800, ipv4(6, tcp(1, 2))))) \
     + rec(acc, pad(eth(mac(acc2), mac(acc), 0x0800, ipv4(6, tcp(2, 1)))))
seeds["conversation-100"] = conv
seeds["conversation-port-down"] = conv + toggle(acc2) + rec(acc, pad(eth(mac(acc2), mac(acc), 0x0800, b""))) + toggle(acc2)
seeds["conversation-aging"] = conv + rec(acc, pad(eth(mac(acc2), mac(acc), 0x0800, b"")), advance=True)[:1] + b"\xff\xff" + b"\0" * 60
seeds["trunk-to-access-10"] = rec(ta, pad(eth(BCAST, mac(ta), 0x0800, b""))) + rec(trab, pad(eth(mac(ta), mac(trab), 0x0800, b"", tags=[(0x8100, 10, 2)])))
seeds["native-to-trunk"] = rec(trn, pad(eth(BCAST, mac(trn), 0x0800, b""))) + rec(trab, pad(eth(BCAST, mac(trab), 0x0800, b"", tags=[(0x8100, 20, 0)])))
seeds["storm-broadcast"] = b"".join(rec(web, pad(eth(BCAST, mac(web), 0x0806, b"\0" * 28))) for _ in range(70))
seeds["policer-burst"] = b"".join(rec(rate, eth(BCAST, mac(rate), 0x0800, b"\0" * 1400)) for _ in range(12))
seeds["mac-flood"] = b"".join(rec(tun, pad(eth(BCAST, bytes([2, 0, 0, 1, i >> 8, i & 255]), 0x0800, b""))) for i in range(100))
seeds["promiscuous-sees-unicast"] = conv + rec(mon, pad(eth(BCAST, mac(mon), 0x0800, b"")))

if __name__ == "__main__":
    # Regenerates the written seeds; keeps `found-*`, inputs a fuzzing run discovered and merged in
    # (RELIABILITY.md, "Growing the seed corpora").
    os.makedirs(OUT, exist_ok=True)
    for f in os.listdir(OUT):
        if not f.startswith("found-"):
            os.unlink(os.path.join(OUT, f))
    for name, data in seeds.items():
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(data)
    print(f"{len(seeds)} seeds in {OUT}")
