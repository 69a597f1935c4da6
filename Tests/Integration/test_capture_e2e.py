"""Capture and mirroring on the wire (issue 4): `vswitchctl capture` read back by tshark, per
direction and port mode, BPF filters, `-w -` into tshark, refusal of an invalid filter, and a
mirror session delivering copies into the destination's namespace."""

import os
import subprocess
import time

import checks
from checks import expect_frames, expect_tagged
from ctlharness import VSWITCHCTL
from harness import frame, new_token

A10, A20, A30, TRK, TGO = "vswt-t-a10", "vswt-t-a20", "vswt-t-a30", "vswt-t-trk", "vswt-t-tgo"


def start(vswitch, tmp_path, topology="vswt-trunk.xml"):
    sock = str(tmp_path / "ctl.sock")
    d = vswitch(topology, extra_args=("--control-socket", sock))
    return d, sock


def capture(sock, *args):
    """Starts `vswitchctl capture ARGS` and waits until the daemon has accepted it."""
    p = subprocess.Popen([VSWITCHCTL, "--socket", sock, "capture", *args], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=False)
    line = p.stderr.readline().decode()
    assert "capturing on" in line, "capture did not start: %r %s" % (line, p.stderr.read().decode())
    time.sleep(0.1)
    return p


def finish(p, timeout=10):
    out, err = p.communicate(timeout=timeout)
    assert p.returncode == 0, err.decode()
    return out, err.decode()


def tshark(path, *fields, filt="eth.type == 0x88b5 || vlan.etype == 0x88b5"):
    cmd = ["tshark", "-r", path, "-Y", filt, "-T", "fields"]
    for f in fields:
        cmd += ["-e", f]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    return [line for line in r.stdout.splitlines() if line.strip()]


def test_capture_per_direction_and_port_mode(vswitch, tmp_path):
    d, sock = start(vswitch, tmp_path)
    src = d.vs(A10).mac
    out_trk, in_a10 = str(tmp_path / "trk-out.pcap"), str(tmp_path / "a10-in.pcap")
    p1 = capture(sock, TRK, "--direction", "out", "--filter", "ether src %s" % src, "--count", "3", "-w", out_trk)
    p2 = capture(sock, A10, "--direction", "in", "--filter", "ether proto 0x88b5", "--count", "3", "-w", in_a10)
    tok = new_token()
    d.send(A10, *[frame(src, token=tok) for _ in range(3)])
    _, err = finish(p1)
    assert "3 frames captured" in err, err
    finish(p2)
    # Access port, ingress: untagged as received. Trunk, egress: tagged 10 with the profile's PCP 5.
    assert tshark(in_a10, "vlan.id", "eth.src") == ["\t" + src] * 3
    assert tshark(out_trk, "vlan.id", "vlan.priority", "eth.src") == ["10\t5\t" + src] * 3
    # Trunk ingress (tagged 20 on its wire) vs access egress (untagged).
    trk = d.vs(TRK).mac
    in_trk, out_a20 = str(tmp_path / "trk-in.pcap"), str(tmp_path / "a20-out.pcap")
    p1 = capture(sock, TRK, "--direction", "in", "--filter", "ether proto 0x88b5 or vlan", "--count", "2", "-w", in_trk)
    p2 = capture(sock, A20, "--direction", "out", "--filter", "ether proto 0x88b5", "--count", "2", "-w", out_a20)
    tok = new_token()
    d.send(TRK, *[frame(trk, vlan=20, token=tok) for _ in range(2)])
    finish(p1)
    finish(p2)
    assert tshark(in_trk, "vlan.id", "eth.src") == ["20\t" + trk] * 2
    assert tshark(out_a20, "vlan.id", "eth.src") == ["\t" + trk] * 2
    st = d.stats()
    assert st is not None


def test_bpf_filter_selects_exactly_its_frames_and_stdout_pipe(vswitch, tmp_path):
    d, sock = start(vswitch, tmp_path)
    a10, a20 = d.vs(A10).mac, d.vs(A20).mac
    # `-w -` into tshark: only VLAN 10 on the trunk's wire, although VLAN 20 frames pass too.
    cmd = "%s --socket %s capture %s --direction out --filter 'vlan 10 and vlan.etype' --duration 3 -w - " \
          "| tshark -r - -T fields -e vlan.id -e eth.src" % (VSWITCHCTL, sock, TRK)
    cmd = cmd.replace("vlan 10 and vlan.etype", "vlan 10 and ether proto 0x88b5")
    pipe = subprocess.Popen(cmd, shell=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(1.0)
    tok = new_token()
    d.send(A10, *[frame(a10, token=tok) for _ in range(4)])
    d.send(A20, *[frame(a20, token=tok) for _ in range(5)])
    out, err = pipe.communicate(timeout=20)
    assert pipe.returncode == 0, err
    lines = [line for line in out.splitlines() if line.strip()]
    assert lines == ["10\t" + a10] * 4, (out, err)
    assert "4 frames captured" in err and "ended by duration" in err, err


def test_invalid_bpf_is_refused_with_libpcaps_message(vswitch, tmp_path):
    d, sock = start(vswitch, tmp_path)
    out = tmp_path / "bad.pcap"
    r = subprocess.run([VSWITCHCTL, "--socket", sock, "capture", TRK, "--filter", "vlan and and", "-w", str(out)],
                       capture_output=True, text=True, timeout=10)
    assert r.returncode == 1
    assert "syntax error" in r.stderr, r.stderr
    assert not out.exists(), "a refused capture leaves no file"
    r = subprocess.run([VSWITCHCTL, "--socket", sock, "capture", "no-such-port", "-w", str(out)],
                       capture_output=True, text=True, timeout=10)
    assert r.returncode == 1 and "no such port" in r.stderr


SRC, B, DST = "vswt-m-src", "vswt-m-b", "vswt-m-dst"


def test_mirror_session_delivers_copies_to_destination(vswitch, tmp_path):
    d, sock = start(vswitch, tmp_path, "vswt-mirror.xml")
    src, b = d.vs(SRC).mac, d.vs(B).mac
    tok = new_token()
    with d.capture(B, DST) as cap:
        d.send(SRC, *[frame(src, token=tok) for _ in range(3)])          # source ingress
    expect_frames(cap, B, tok, 3, "normal forwarding to the VLAN-10 port", [SRC, B, DST])
    expect_frames(cap, DST, tok, 3, "mirror copies of the source's received frames", [SRC, B, DST])
    tok = new_token()
    with d.capture(SRC, DST) as cap:
        d.send(B, *[frame(b, dst=src, token=tok) for _ in range(2)])      # source egress (unicast to it)
    expect_frames(cap, SRC, tok, 2, "unicast to the source port", [SRC, B, DST])
    expect_frames(cap, DST, tok, 2, "mirror copies of the source's sent frames", [SRC, B, DST])
    st = d.stats()
    # Copies are never learned: the source's MAC stays on the source port only.
    assert [r["port"] for r in d.mac_entries(st, src)] == [SRC], st["mac_table"]
    # The session to a pcap file: capture --session.
    path = str(tmp_path / "span.pcap")
    p = capture(sock, "--session", "vswt-span", "--filter", "ether proto 0x88b5", "--count", "2", "-w", path)
    tok = new_token()
    d.send(SRC, *[frame(src, token=tok) for _ in range(2)])
    finish(p)
    assert tshark(path, "eth.src") == [src] * 2
    ps = subprocess.run([VSWITCHCTL, "--socket", sock, "port", "stats", DST, "--format", "json"],
                        capture_output=True, text=True, timeout=10)
    assert '"mirror_tx"' in ps.stdout, ps.stdout
    import json as _json
    row = _json.loads(ps.stdout)["ports"][0]
    assert row["mirror_tx"] >= 7 and row["mirror_drops"] == 0, row
    txt = subprocess.run([VSWITCHCTL, "--socket", sock, "port", "stats", DST], capture_output=True, text=True,
                         timeout=10).stdout
    assert "mirror: sent %d dropped 0" % row["mirror_tx"] in txt, txt
    src_row = _json.loads(subprocess.run([VSWITCHCTL, "--socket", sock, "port", "stats", SRC, "--format", "json"],
                                         capture_output=True, text=True, timeout=10).stdout)["ports"][0]
    assert src_row["capture_copies"] >= 2, src_row   # the --session capture copied the source's frames


JA, JB = "vswt-rj-a", "vswt-rj-b"


def pcap_records(path):
    """(caplen, original length, bytes) of every record of a pcap file (any timestamp precision)."""
    import struct
    data = open(path, "rb").read()
    magic = data[:4]
    assert magic in (b"\x4d\x3c\xb2\xa1", b"\xd4\xc3\xb2\xa1"), magic
    off, out = 24, []
    while off + 16 <= len(data):
        _, _, caplen, length = struct.unpack_from("<IIII", data, off)
        out.append((caplen, length, data[off + 16:off + 16 + caplen]))
        off += 16 + caplen
    assert off == len(data), "trailing bytes in %s" % path
    return out


def test_jumbo_frames_captured_whole_and_snaplen(vswitch, tmp_path):
    """9000-byte MTU ports: a 9014-byte frame (and a 9018-byte tagged one as it leaves a trunk would be
    longer still) is captured whole in both directions; --snaplen truncates and keeps the length."""
    d, sock = start(vswitch, tmp_path, "vswt-rel-jumbo.xml")
    a = d.vs(JA).mac
    tok = new_token()
    sent = [frame(a, token=tok + bytes([k]), size=9014) for k in range(3)] + [frame(a, token=tok + b"s", size=1514)]
    full_in, full_out, snap = str(tmp_path / "in.pcap"), str(tmp_path / "out.pcap"), str(tmp_path / "snap.pcap")
    p1 = capture(sock, JA, "--direction", "in", "--filter", "ether proto 0x88b5", "--count", "4", "-w", full_in)
    p2 = capture(sock, JB, "--direction", "out", "--filter", "ether proto 0x88b5", "--count", "4", "-w", full_out)
    p3 = capture(sock, JB, "--direction", "out", "--filter", "ether proto 0x88b5", "--count", "4", "--snaplen", "100",
                 "-w", snap)
    d.send(JA, *sent)
    for p in (p1, p2, p3):
        _, err = finish(p)
        assert "4 frames captured" in err, err
    for path in (full_in, full_out):
        recs = pcap_records(path)
        assert [(c, n) for c, n, _ in recs] == [(9014, 9014)] * 3 + [(1514, 1514)], path
        assert [b for _, _, b in recs] == sent, "%s: the frames read back are the frames sent, byte for byte" % path
    recs = pcap_records(snap)
    assert [(c, n) for c, n, _ in recs] == [(100, 9014)] * 3 + [(100, 1514)]
    assert [b for _, _, b in recs] == [f[:100] for f in sent]
    # tshark reads the jumbo capture whole too.
    assert tshark(full_out, "frame.len", "frame.cap_len") == ["9014\t9014"] * 3 + ["1514\t1514"]
    # port stats: the capture counters in text equal the JSON ones; every copy was taken, none dropped.
    js = subprocess.run([VSWITCHCTL, "--socket", sock, "port", "stats", "--format", "json"],
                        capture_output=True, text=True, timeout=10)
    import json as _json
    rows = {r["name"]: r for r in _json.loads(js.stdout)["ports"]}
    txt = subprocess.run([VSWITCHCTL, "--socket", sock, "port", "stats"], capture_output=True, text=True, timeout=10).stdout
    assert rows[JA]["capture_copies"] >= 4 and rows[JB]["capture_copies"] >= 4, rows
    assert rows[JA]["capture_drops"] == 0 and rows[JB]["capture_drops"] == 0, rows
    for name in (JA, JB):
        after = txt.split(name + " (#", 1)[1].splitlines()[1:]
        block = "\n".join(next(iter([after[:k] for k, l in enumerate(after) if not l.startswith(" ")]), after))
        line = "  capture: copies %d dropped-ring-full %d  mirror: sent %d dropped %d" % (
            rows[name]["capture_copies"], rows[name]["capture_drops"], rows[name]["mirror_tx"], rows[name]["mirror_drops"])
        assert line in block, (line, txt)


def _thread_cpus(pid):
    """{thread name: Cpus_allowed_list} of every thread of a process."""
    out = {}
    for tid in os.listdir("/proc/%d/task" % pid):
        with open("/proc/%d/task/%s/comm" % (pid, tid)) as f:
            name = f.read().strip()
        with open("/proc/%d/task/%s/status" % (pid, tid)) as f:
            cpus = [line.split(":", 1)[1].strip() for line in f if line.startswith("Cpus_allowed_list:")][0]
        out.setdefault(name, set()).add(cpus)
    return out


def test_housekeeping_cpus_keep_the_capture_writer_off_the_forwarding_core(vswitch, tmp_path):
    """vswitchd --forwarding-cpus 1 --housekeeping-cpus 0: the forwarding thread alone on CPU 1, the control
    thread and the capture writer on CPU 0 (bench entry vswitch-1t-capture-hk); capture still exact."""
    if os.cpu_count() < 2:
        raise AssertionError("this test needs 2 CPUs (CI machines have 2); this machine has %d" % os.cpu_count())
    sock = str(tmp_path / "ctl.sock")
    d = vswitch("vswt-trunk.xml", threads=1,
                extra_args=("--control-socket", sock, "--forwarding-cpus", "1", "--housekeeping-cpus", "0"))
    src = d.vs(A10).mac
    out = str(tmp_path / "hk.pcap")
    p = capture(sock, A10, "--direction", "in", "--filter", "ether proto 0x88b5", "--count", "4", "-w", out)
    threads = _thread_cpus(d.proc.pid)
    assert threads.get("vsw-fwd-0") == {"1"}, threads
    assert threads.get("vsw-capture") == {"0"}, threads
    # Every other thread of the daemon (io_uring's kernel workers, iou-*, follow their ring's owner) on CPU 0.
    others = {n: c for n, c in threads.items() if not n.startswith(("vsw-fwd-", "iou-"))}
    assert all(c == {"0"} for c in others.values()), others
    tok = new_token()
    d.send(A10, *[frame(src, token=tok) for _ in range(4)])
    _, err = finish(p)
    assert "4 frames captured" in err, err
    assert tshark(out, "eth.src") == [src] * 4
    # A CPU the process may not use is refused at start, naming it.
    r = subprocess.run([d.command()[0], "--topology", str(d.topo.path), "--no-control-socket",
                        "--housekeeping-cpus", "0,4095"], capture_output=True, text=True, timeout=20)
    assert r.returncode != 0 and "bad CPU list" in r.stderr, r.stderr
    r = subprocess.run([d.command()[0], "--topology", str(d.topo.path), "--no-control-socket",
                        "--forwarding-cpus", "%d" % (os.cpu_count() + 7)], capture_output=True, text=True, timeout=20)
    assert r.returncode != 0 and "not available to this process" in r.stderr, r.stderr


def _port_row(sock, name):
    import json as _json
    js = subprocess.run([VSWITCHCTL, "--socket", sock, "port", "stats", "--format", "json"],
                        capture_output=True, text=True, timeout=10)
    assert js.returncode == 0, js.stderr
    return {r["name"]: r for r in _json.loads(js.stdout)["ports"]}[name]


def test_capture_ring_size_holds_a_stalled_writers_backlog(vswitch, tmp_path):
    """--capture-ring-mib: the copies a stalled writer has not written wait in the ring. The writer is stalled the
    way a slow disk stalls it: the capture goes to a file on an ext4 loop file system that is then frozen
    (fsfreeze: every write to it blocks until it is thawed; a pipe no longer stalls it, its outputs are
    non-blocking). 2,000 frames of 1514 bytes (3.06 MB of records) go through the port: an 8 MiB ring holds them
    all (no copy dropped), a 1 MiB ring ~700 (the rest dropped and counted); the frames themselves are forwarded
    either way. Values outside 1...1024 are refused."""
    image, mnt = tmp_path / "stall.img", tmp_path / "stall"
    mnt.mkdir()
    subprocess.run(["truncate", "-s", "64M", str(image)], check=True)
    subprocess.run(["mkfs.ext4", "-q", "-F", str(image)], check=True)
    subprocess.run(["mount", "-o", "loop", str(image), str(mnt)], check=True)
    results = {}
    try:
        for mib in (1, 8):
            sock = str(tmp_path / ("ctl%d.sock" % mib))
            d = vswitch("vswt-trunk.xml", threads=1, extra_args=("--control-socket", sock, "--capture-ring-mib", str(mib)))
            src = d.vs(A10).mac
            with open(mnt / ("cap%d.pcap" % mib), "wb") as out:
                p = subprocess.Popen([VSWITCHCTL, "--socket", sock, "capture", A10, "--direction", "in",
                                      "--filter", "ether proto 0x88b5", "-w", "-"], stdout=out, stderr=subprocess.PIPE)
                line = p.stderr.readline().decode()
                assert "capturing on" in line, line
                time.sleep(0.2)   # the pcap header is written (on the control thread) before the freeze
                subprocess.run(["fsfreeze", "-f", str(mnt)], check=True)
                try:
                    before = _port_row(sock, A10)
                    sent = d.pace(A10, [frame(src, token=new_token(), size=1514)], rate=20000, count=2000)
                    assert sent["sent"] == 2000, sent
                    deadline = time.time() + 10
                    while True:
                        row = _port_row(sock, A10)
                        got = row["rx_packets"] - before["rx_packets"]
                        if got >= 2000 or time.time() > deadline:
                            break
                        time.sleep(0.1)
                    assert got >= 2000, "the switch received %d of the 2000 frames" % got
                    time.sleep(0.3)
                    row = _port_row(sock, A10)
                    copies = row["capture_copies"] - before["capture_copies"]
                    drops = row["capture_drops"] - before["capture_drops"]
                finally:
                    subprocess.run(["fsfreeze", "-u", str(mnt)])
                p.kill()
                p.communicate(timeout=10)
            results[mib] = (copies, drops)
            assert d.alive()
    finally:
        subprocess.run(["fsfreeze", "-u", str(mnt)], capture_output=True)
        subprocess.run(["umount", "-l", str(mnt)])
    # capture_copies counts the copies taken; capture_drops those a full ring refused.
    assert results[8][1] == 0 and results[8][0] >= 2000, results
    assert results[1][1] >= 1000 and results[1][0] + results[1][1] >= 2000, results
    for bad in ("0", "1025"):
        r = subprocess.run([d.command()[0], "--topology", str(d.topo.path), "--no-control-socket",
                            "--capture-ring-mib", bad], capture_output=True, text=True, timeout=20)
        assert r.returncode == 2 and "--capture-ring-mib must be 1...1024" in r.stderr, r.stderr
