#!/usr/bin/python3
"""A small traffic agent that lives inside one network namespace.

Started by the test suite as ``ip netns exec NS /usr/bin/python3 nsagent.py`` and driven
through JSON lines on stdin/stdout, so that scapy is imported once per namespace and the
send/capture timing stays tight.

Commands (one JSON object per line), each answered by one JSON line ``{"ok": true, ...}``
or ``{"ok": false, "error": "..."}``:

  {"op": "hello"}                                   -> {"ok": true, "pid": N}
  {"op": "send", "iface": "eth0", "frames": [hex]}  -> {"ok": true, "sent": N}
  {"op": "sniff_start", "iface": "eth0"}            -> {"ok": true}
  {"op": "sniff_stop", "iface": "eth0", "linger": s} -> {"ok": true, "frames": [hex]}
  {"op": "sniff_stop", ..., "summary": token_hex}   -> {"ok": true, "frames": [], "summary": {dst_hex: [n, bytes]}}
      (counts only the frames containing the token, per destination MAC; for rate tests)
  {"op": "pace", "iface": "eth0", "frames": [hex], "rate": fps, "count": n}
      -> {"ok": true, "sent": n, "bytes": b, "duration": s}   (frames cycled, paced at `rate`/s)
  {"op": "exit"}

Capturing uses scapy's Linux L2Socket (an AF_PACKET socket with PACKET_AUXDATA): it drops
frames this namespace sends itself (PACKET_OUTGOING) and puts back the 802.1Q tag that the
kernel strips into the skb metadata, so the test sees each frame as it was on the wire.
Sending writes the raw bytes (built with scapy by the test) to an AF_PACKET socket.
"""

import json
import os
import select
import socket
import sys
import time

from scapy.arch.linux import L2Socket  # noqa: E402  (Debian python3-scapy)

ETH_P_ALL = 0x0003


class Agent:
    def __init__(self):
        self.senders = {}
        self.sniffers = {}

    def sender(self, iface):
        s = self.senders.get(iface)
        if s is None:
            # Protocol 0: this socket receives nothing, it only sends.
            s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
            s.bind((iface, 0))
            self.senders[iface] = s
        return s

    def op_hello(self, _cmd):
        return {"pid": os.getpid()}

    def op_send(self, cmd):
        s = self.sender(cmd.get("iface", "eth0"))
        gap = float(cmd.get("gap", 0.0))
        n = 0
        for h in cmd["frames"]:
            s.send(bytes.fromhex(h))
            n += 1
            if gap:
                time.sleep(gap)
        return {"sent": n}

    def op_sniff_start(self, cmd):
        iface = cmd.get("iface", "eth0")
        old = self.sniffers.pop(iface, None)
        if old is not None:
            old.close()
        sock = L2Socket(iface=iface, type=ETH_P_ALL, promisc=False)
        sock.ins.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        self.sniffers[iface] = sock
        return {}

    def op_sniff_stop(self, cmd):
        iface = cmd.get("iface", "eth0")
        linger = float(cmd.get("linger", 0.0))
        sock = self.sniffers.pop(iface, None)
        if sock is None:
            raise RuntimeError("no capture running on %s" % iface)
        frames = []
        summary_token = bytes.fromhex(cmd["summary"]) if cmd.get("summary") else None
        summary = {}
        deadline = time.monotonic() + linger
        try:
            while True:
                timeout = max(0.0, deadline - time.monotonic())
                r, _, _ = select.select([sock.ins], [], [], timeout)
                if not r:
                    break
                _cls, data, _ts = sock.recv_raw(65535)
                if data is None:  # outgoing frame of this namespace
                    continue
                raw = bytes(data)
                if summary_token is not None:
                    if summary_token in raw:
                        entry = summary.setdefault(raw[:6].hex(), [0, 0])
                        entry[0] += 1
                        entry[1] += len(raw)
                    continue
                frames.append(raw.hex())
        finally:
            sock.close()
        reply = {"frames": frames}
        if summary_token is not None:
            reply["summary"] = summary
        return reply

    def op_pace(self, cmd):
        """Sends `count` frames (cycling through `frames`) at `rate` frames/s, on schedule:
        frame k is due at t0 + k/rate; the sender sleeps only when it is ahead."""
        s = self.sender(cmd.get("iface", "eth0"))
        frames = [bytes.fromhex(h) for h in cmd["frames"]]
        rate = float(cmd["rate"])
        count = int(cmd["count"])
        sent = 0
        nbytes = 0
        t0 = time.monotonic()
        for k in range(count):
            due = t0 + k / rate
            now = time.monotonic()
            if due > now:
                time.sleep(due - now)
            f = frames[k % len(frames)]
            s.send(f)
            sent += 1
            nbytes += len(f)
        return {"sent": sent, "bytes": nbytes, "duration": time.monotonic() - t0}


def main():
    agent = Agent()
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        try:
            cmd = json.loads(line)
            op = cmd["op"]
            if op == "exit":
                print(json.dumps({"ok": True}), flush=True)
                return
            reply = getattr(agent, "op_" + op)(cmd)
            reply["ok"] = True
        except Exception as e:  # reported to the test, which fails with it
            reply = {"ok": False, "error": "%s: %s" % (type(e).__name__, e)}
        print(json.dumps(reply), flush=True)


if __name__ == "__main__":
    main()
