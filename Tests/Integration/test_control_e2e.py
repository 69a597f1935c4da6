"""Control plane end to end: vswitchctl against a running vswitchd in state mode — ports added and
removed at runtime, profiles, FDB, settings, counters, link events, root-only socket, bad requests,
kill -9 and restore."""

import json
import os
import time

import pytest

import harness
from ctlharness import PROFILES, TENANT_A, TENANT_B, VSWITCHCTL, CtlDaemon, ping, wait_for

NS = ["vsc-a1", "vsc-a2", "vsc-b1"]
PORTS = ["vsc-p1", "vsc-p2", "vsc-p3"]
MAC1, MAC2, MAC3 = "02:00:00:00:0c:01", "02:00:00:00:0c:02", "02:00:00:00:0c:03"


@pytest.fixture
def ctl(environment, tmp_path):
    if not os.access(VSWITCHCTL, os.X_OK):
        pytest.fail("vswitchctl binary %s not found (build it, or set VSWITCHCTL)" % VSWITCHCTL, pytrace=False)
    harness.delete_leftovers(NS, PORTS)
    d = CtlDaemon(tmp_path, namespaces=NS, links=PORTS)
    try:
        yield d
    finally:
        d.cleanup()


def two_ports(d):
    d.ctl("profile", "load", str(PROFILES))
    d.ctl("add-port", "vsc-p1", "--profile", TENANT_A, "--mac", MAC1, "--namespace", "vsc-a1", "--address", "10.77.0.1/24")
    d.ctl("add-port", "vsc-p2", "--profile", TENANT_A, "--mac", MAC2, "--namespace", "vsc-a2", "--address", "10.77.0.2/24")


def test_add_port_forwards_and_del_port_removes_and_flushes(ctl):
    ctl.start()
    assert ctl.show()["ports"] == []
    two_ports(ctl)
    r = ping("vsc-a1", "10.77.0.2")
    assert r.returncode == 0, r.stdout + r.stderr
    fdb = ctl.json("fdb", "show")["entries"]
    assert {(e["port"], e["vlan"], e["mac"]) for e in fdb} >= {("vsc-p1", 10, MAC1), ("vsc-p2", 10, MAC2)}
    stats = ctl.json("port", "stats", "vsc-p1")["ports"][0]
    assert stats["rx_packets"] >= 3 and stats["tx_packets"] >= 3 and "mtu-exceeded" in stats["drops"]
    text = ctl.ctl("show").stdout
    assert "vsc-p1" in text and "10.77.0.1/24" in text
    ctl.ctl("del-port", "vsc-p2")
    assert [p["name"] for p in ctl.show()["ports"]] == ["vsc-p1"]
    assert "vsc-a2" not in harness.netns_list(), "del-port left the virtual system behind"
    assert all(e["port"] != "vsc-p2" for e in ctl.json("fdb", "show")["entries"])
    # The freed index is reused, with fresh counters.
    ctl.ctl("add-port", "vsc-p3", "--profile", TENANT_A, "--mac", MAC3, "--namespace", "vsc-b1", "--address", "10.77.0.3/24")
    p3 = ctl.port("vsc-p3")
    assert p3["index"] == 1
    assert ctl.json("port", "stats", "vsc-p3")["ports"][0]["rx_packets"] <= 2
    r = ping("vsc-a1", "10.77.0.3")
    assert r.returncode == 0, r.stdout + r.stderr


def test_bad_requests_get_one_line_errors_and_change_nothing(ctl):
    ctl.start()
    two_ports(ctl)
    before = ctl.show()
    state_before = (ctl.state_dir / "state.json").read_bytes()
    cases = [
        (("del-port", "vsc-nope"), "no such port: vsc-nope"),
        (("set-port", "vsc-nope", "profile=" + TENANT_B), "no such port"),
        (("set-port", "vsc-p1", "profile=urn:nope"), "unknown profile ID urn:nope"),
        (("add-port", "vsc-p1", "--profile", TENANT_A), "already exists"),
        (("add-port", "vsc-p9", "--profile", "urn:nope"), "unknown profile ID"),
        (("fdb", "add", "vsc-nope", "10", MAC1), "no such port"),
        (("fdb", "del", "10", "02:00:00:00:0c:77"), "no MAC table entry"),
        (("set", "switch", "mac-aging-time=5"), "out of range"),
        (("profile", "load", "/nonexistent.xml"), "cannot read"),
    ]
    for args, message in cases:
        p = ctl.ctl(*args, check=False)
        assert p.returncode != 0, "vswitchctl %s succeeded" % " ".join(args)
        lines = p.stderr.strip().splitlines()
        assert len(lines) == 1 and message in lines[0], "%s: %r" % (" ".join(args), p.stderr)
    replies = ctl.raw(b"garbage\n{\"command\": \"show\", \"args\": 3}\n{\"command\": \"explode\"}\n")
    assert [r["ok"] for r in replies] == [False, False, False], replies
    assert "malformed request" in replies[0]["error"] and "unknown command" in replies[2]["error"]
    replies = ctl.raw(b"x" * ((1 << 20) + 4096))
    assert len(replies) == 1 and not replies[0]["ok"] and "longer than" in replies[0]["error"], replies
    after = ctl.show()
    assert after == before
    assert (ctl.state_dir / "state.json").read_bytes() == state_before
    r = ping("vsc-a1", "10.77.0.2")
    assert r.returncode == 0, "forwarding broken after bad requests"


def test_profile_fdb_settings_metrics_commands(ctl, tmp_path):
    ctl.start()
    two_ports(ctl)
    assert "urn:vswitch:profile:tenant-a" in ctl.ctl("profile", "validate", str(PROFILES)).stdout
    shown = ctl.json("profile", "show")["profiles"]
    assert [p["ports"] for p in shown if p["id"] == TENANT_A] == [["vsc-p1", "vsc-p2"]]
    out = tmp_path / "export.xml"
    ctl.ctl("profile", "export", str(out))
    assert TENANT_B in out.read_text()
    assert "loaded:" in ctl.ctl("profile", "reload").stdout
    # Rebinding p2 to tenant B (VLAN 20) isolates it from p1.
    ctl.ctl("set-port", "vsc-p2", "profile=" + TENANT_B)
    assert ctl.port("vsc-p2")["profile"] == TENANT_B
    assert ping("vsc-a1", "10.77.0.2", count=2).returncode != 0
    ctl.ctl("set-port", "vsc-p2", "profile=" + TENANT_A)
    assert ping("vsc-a1", "10.77.0.2").returncode == 0
    # Static entries, flushes, stats.
    ctl.ctl("fdb", "add", "vsc-p2", "30", "02:00:00:00:0c:30")
    e = [x for x in ctl.json("fdb", "show")["entries"] if x["mac"] == "02:00:00:00:0c:30"]
    assert e == [{"port": "vsc-p2", "vlan": 30, "mac": "02:00:00:00:0c:30", "age": 0, "static": True}]
    assert "static" in ctl.ctl("fdb", "show").stdout
    assert ctl.json("fdb", "stats")["static"] == 1
    ctl.ctl("fdb", "flush", "--vlan", "10")
    assert [x["vlan"] for x in ctl.json("fdb", "show")["entries"]] == [30]
    ping("vsc-a1", "10.77.0.2", count=1)
    ctl.ctl("fdb", "flush", "--port", "vsc-p1")
    assert all(x["port"] != "vsc-p1" for x in ctl.json("fdb", "show")["entries"])
    ctl.ctl("fdb", "flush")
    ctl.ctl("fdb", "del", "30", "02:00:00:00:0c:30")
    assert ctl.json("fdb", "show")["entries"] == []
    ctl.ctl("set", "switch", "mac-aging-time=45", "mac-table-size=5000")
    st = ctl.show()["switch"]["settings"]
    assert st["mac-aging-time"] == 45 and st["mac-table-size"] == 5000
    assert ctl.json("fdb", "stats")["limit"] == 5000
    assert ping("vsc-a1", "10.77.0.2").returncode == 0, "forwarding broken after the MAC table was replaced"
    m = ctl.ctl("metrics").stdout
    assert "# TYPE vswitch_port_rx_packets_total counter" in m
    assert 'vswitch_port_drops_total{port="vsc-p1",reason="mtu-exceeded"} 0' in m
    assert "vswitch_mac_table_limit 5000" in m
    assert "drops" in ctl.ctl("port", "stats").stdout


def test_link_down_up_and_delete_are_observed(ctl):
    ctl.start()
    two_ports(ctl)
    assert ping("vsc-a1", "10.77.0.2").returncode == 0
    harness.run(["ip", "-n", "vsc-a2", "link", "set", "eth0", "down"], check=True)
    assert wait_for(lambda: ctl.port("vsc-p2")["link"] == "down"), ctl.port("vsc-p2")
    assert all(e["port"] != "vsc-p2" for e in ctl.json("fdb", "show")["entries"]), "MACs of a down port not flushed"
    assert "port link down" in ctl.stderr()
    harness.run(["ip", "-n", "vsc-a2", "link", "set", "eth0", "up"], check=True)
    assert wait_for(lambda: ctl.port("vsc-p2")["link"] == "up")
    assert ping("vsc-a1", "10.77.0.2").returncode == 0, "forwarding did not resume after link up"
    harness.run(["ip", "-n", "vsc-a2", "link", "delete", "eth0"], check=True)
    assert wait_for(lambda: ctl.port("vsc-p2")["link"] == "detached"), ctl.port("vsc-p2")
    assert ping("vsc-a1", "10.77.0.2", count=1).returncode != 0
    ctl.ctl("del-port", "vsc-p2")
    assert ctl.port("vsc-p2") is None


def test_non_root_is_refused(ctl):
    ctl.start()
    os.chmod(ctl.workdir, 0o755)  # let uid 65534 reach the socket file itself
    for d in ctl.workdir.parents:
        if str(d) in ("/", "/tmp"):
            break
        os.chmod(d, os.stat(d).st_mode | 0o005)
    p = ctl.ctl("show", check=False, user=65534)
    assert p.returncode != 0
    assert "permission denied" in p.stderr and "root" in p.stderr, p.stderr
    assert oct(os.stat(ctl.socket).st_mode & 0o777) == "0o600"


def test_kill9_and_restart_restores_everything(ctl):
    ctl.start()
    two_ports(ctl)
    ctl.ctl("fdb", "add", "vsc-p2", "10", "02:00:00:00:0c:55")
    ctl.ctl("set", "switch", "mac-aging-time=123")
    assert ping("vsc-a1", "10.77.0.2").returncode == 0
    before = ctl.show()
    ctl.kill9()
    # The virtual systems kept their interfaces.
    assert {"vsc-a1", "vsc-a2"} <= harness.netns_list()
    ctl.start()  # same state directory, no topology
    after = ctl.show()
    assert after["ports"] == before["ports"]
    assert after["switch"]["settings"] == before["switch"]["settings"]
    assert after["profiles"] == before["profiles"]
    assert any(e["static"] and e["mac"] == "02:00:00:00:0c:55" for e in ctl.json("fdb", "show")["entries"])
    r = ping("vsc-a1", "10.77.0.2")
    assert r.returncode == 0, "no traffic after restore: " + r.stdout + ctl.stderr()
    # A clean stop keeps them too; the next start adopts them again.
    assert ctl.stop() == 0
    ctl.start()
    assert ping("vsc-a1", "10.77.0.2").returncode == 0


def test_corrupt_state_is_refused_whole(ctl):
    ctl.start()
    two_ports(ctl)
    ctl.kill9()
    harness.delete_leftovers(NS, PORTS)
    state = ctl.state_dir / "state.json"
    good = state.read_bytes()
    for bad in (good[: len(good) // 2], good.replace(b"vsc-p2", b"vsc-q2")):
        state.write_bytes(bad)
        rc = ctl.start(expect_ready=False)
        assert rc != 0
        err = ctl.stderr()
        assert "corrupt" in err and str(state) in err, err
        assert not ({"vsc-a1", "vsc-a2"} & harness.netns_list()), "a corrupt state was half-applied"


def test_topology_mode_has_a_control_socket(vswitch, tmp_path):
    sock = str(tmp_path / "topo.sock")
    d = vswitch("vswt-ping.xml", extra_args=["--control-socket", sock])
    p = harness.run([VSWITCHCTL, "--socket", sock, "show", "--format", "json"])
    assert p.returncode == 0, p.stderr
    names = [x["name"] for x in json.loads(p.stdout)["ports"]]
    assert names == [x.name for x in d.topo.ports]


def reservation_profiles(tx_a, rx_a, tx_b):
    """Two access profiles in VLAN 10 with Reservations (AllocationUnits Mbit/s)."""
    def item(name, tx, rx):
        return """  <ovf:NetworkPortProfile>
    <ovf:Item>
      <epasd:AllocationUnits>bit / second * 10^6</epasd:AllocationUnits>
      <epasd:DesiredVLANEndpointMode>2</epasd:DesiredVLANEndpointMode>
      <epasd:ElementName>%(n)s</epasd:ElementName>
      <epasd:InstanceID>vsc.test:%(n)s</epasd:InstanceID>
      <epasd:NetworkPortProfileID>urn:vsc:%(n)s</epasd:NetworkPortProfileID>
      <epasd:NetworkPortProfileIDType>2</epasd:NetworkPortProfileIDType>
      <epasd:PortVID>10</epasd:PortVID>
      <epasd:ReceiveBandwidthReservation>%(rx)d</epasd:ReceiveBandwidthReservation>
      <epasd:Reservation>%(tx)d</epasd:Reservation>
    </ovf:Item>
  </ovf:NetworkPortProfile>
""" % {"n": name, "tx": tx, "rx": rx}
    return ("""<?xml version="1.0" encoding="UTF-8"?>
<vsx:NetworkPortProfiles FormatVersion="1.0" xmlns:vsx="urn:vswitch:port-profile:1"
    xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/2"
    xmlns:epasd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_EthernetPortAllocationSettingData">
""" + item("res-a", tx_a, rx_a) + item("res-b", tx_b, 0) + "</vsx:NetworkPortProfiles>\n")


def test_bandwidth_reservations_are_admitted_against_the_capacity(ctl, tmp_path):
    """Issue 3: Reservation / ReceiveBandwidthReservation shown per port and summed per switch; with a
    bandwidth-capacity set, add-port, set-port, a profile reload and lowering the capacity are each refused
    (one clear line, nothing changed, state file untouched) when the reservations would not fit."""
    ctl.start()
    prof = tmp_path / "reservations.xml"
    prof.write_text(reservation_profiles(2000, 1000, 5000))     # res-a: 2 Gbit/s tx, 1 Gbit/s rx; res-b: 5 Gbit/s tx
    ctl.ctl("profile", "load", str(prof))
    sw = ctl.show()["switch"]
    assert sw["settings"]["bandwidth-capacity"] is None, "no capacity configured by default"
    ctl.ctl("add-port", "vsc-p1", "--profile", "urn:vsc:res-a")
    ctl.ctl("set", "switch", "bandwidth-capacity=6G")
    show = ctl.show()
    assert show["switch"]["settings"]["bandwidth-capacity"] == 6_000_000_000
    assert show["switch"]["reserved"] == {"transmit": 2_000_000_000, "receive": 1_000_000_000}
    p1 = ctl.port("vsc-p1")
    assert (p1["reservation"], p1["receive-reservation"]) == (2_000_000_000, 1_000_000_000)
    text = ctl.ctl("show").stdout
    assert "bandwidth-capacity=6 Gbit/s" in text and "reserved transmit=2 Gbit/s receive=1 Gbit/s" in text, text

    ctl.ctl("add-port", "vsc-p2", "--profile", "urn:vsc:res-a")            # 4 of 6 Gbit/s
    state = (ctl.state_dir / "state.json").read_bytes()
    before = ctl.show()
    refusals = [
        (("add-port", "vsc-p3", "--profile", "urn:vsc:res-b"), "adding port vsc-p3 would reserve 9 Gbit/s transmit"),
        (("set-port", "vsc-p2", "profile=urn:vsc:res-b"), "binding vsc-p2 to urn:vsc:res-b would reserve 7 Gbit/s transmit"),
        (("set", "switch", "bandwidth-capacity=3G"), "setting bandwidth-capacity to 3 Gbit/s would reserve 4 Gbit/s transmit"),
    ]
    for args, message in refusals:
        p = ctl.ctl(*args, check=False)
        assert p.returncode != 0, "vswitchctl %s succeeded" % " ".join(args)
        err = p.stderr.strip()
        assert message in err and "bandwidth-capacity of" in err and "nothing changed" in err, err
        assert "vsc-p1 2 Gbit/s" in err, "the refusal names the ports holding the reservations: " + err
        assert len(err.splitlines()) == 1, err
    # A reload that raises res-a's receive reservation to 4 Gbit/s per port (8 > 6) is refused too.
    prof.write_text(reservation_profiles(2000, 4000, 5000))
    p = ctl.ctl("profile", "reload", check=False)
    assert p.returncode != 0 and "the new profile set would reserve 8 Gbit/s receive" in p.stderr, p.stderr
    assert ctl.show()["ports"] == before["ports"] and ctl.show()["switch"]["settings"] == before["switch"]["settings"]
    assert (ctl.state_dir / "state.json").read_bytes() == state, "a refused change rewrote the state file"
    assert "vsc-p3" not in [q["name"] for q in ctl.show()["ports"]]

    # Without a capacity nothing is refused; the setting persists in the state.
    ctl.ctl("set", "switch", "bandwidth-capacity=none")
    ctl.ctl("add-port", "vsc-p3", "--profile", "urn:vsc:res-b")
    assert ctl.show()["switch"]["reserved"]["transmit"] == 9_000_000_000
    def saved_settings():
        header, body = (ctl.state_dir / "state.json").read_text().split("\n", 1)   # "vswitch-state 1 length=… crc32=…"
        return json.loads(body)["settings"]
    assert saved_settings().get("bandwidthCapacity") is None
    ctl.ctl("set", "switch", "bandwidth-capacity=12G")
    assert saved_settings()["bandwidthCapacity"] == 12_000_000_000
    bad = ctl.ctl("set", "switch", "bandwidth-capacity=lots", check=False)
    assert bad.returncode != 0 and "bandwidth-capacity must be" in bad.stderr


CIM = "http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/"


def test_show_format_cim_is_dsp1097_ws_cim_xml(ctl, tmp_path):
    """`vswitchctl show --format cim`: well-formed XML (parsed back with xml.etree), WS-CIM namespaces,
    the switch (EVBMode 2 = VEB, MaxNumMACAddress = mac-table-size, VLANConnection), and per port a
    CIM_EthernetPort and a CIM_EthernetPortAllocationSettingData with the bound profile's properties."""
    import xml.etree.ElementTree as ET

    ctl.start()
    # A profile whose display name needs escaping, to prove the output is escaped.
    prof = tmp_path / "esc.xml"
    prof.write_text(PROFILES.read_text().replace("<epasd:ElementName>tenant-b</epasd:ElementName>",
                                                 "<epasd:ElementName>tenant &amp; &lt;b&gt; \"x\"</epasd:ElementName>"))
    ctl.ctl("profile", "load", str(prof))
    ctl.ctl("add-port", "vsc-p1", "--profile", TENANT_A, "--mac", MAC1, "--namespace", "vsc-a1", "--address", "10.77.0.1/24")
    ctl.ctl("add-port", "vsc-p2", "--profile", TENANT_B, "--mac", MAC2, "--namespace", "vsc-a2", "--address", "10.77.0.2/24")
    ctl.ctl("set", "switch", "mac-table-size=123456")
    harness.ns_exec("vsc-a2", "ip", "link", "set", "eth0", "down")
    assert wait_for(lambda: ctl.port("vsc-p2")["link"] == "down")

    text = ctl.ctl("show", "--format", "cim").stdout
    root = ET.fromstring(text.encode())
    assert root.tag == "{urn:vswitch:cim-view:1}CIMView"

    def cls(name):
        return root.findall("{%s%s}%s" % (CIM, name, name))

    def val(e, prop, cname):
        return [c.text for c in e.findall("{%s%s}%s" % (CIM, cname, prop))]

    vessd_name = "CIM_VirtualEthernetSwitchSettingData"
    [sw] = cls(vessd_name)
    assert val(sw, "EVBMode", vessd_name) == ["2"]
    assert val(sw, "MaxNumMACAddress", vessd_name) == ["123456"]
    assert val(sw, "VLANConnection", vessd_name) == ["10", "20"]
    assert val(sw, "ElementName", vessd_name) == [ctl.show()["switch"]["name"]]

    ports = cls("CIM_EthernetPort")
    allocs = cls("CIM_EthernetPortAllocationSettingData")
    assert [val(p, "DeviceID", "CIM_EthernetPort") for p in ports] == [["vsc-p1"], ["vsc-p2"]]
    e = "CIM_EthernetPort"
    assert val(ports[0], "PermanentAddress", e) == [MAC1.replace(":", "").upper()]
    assert val(ports[0], "EnabledState", e) == ["2"] and val(ports[1], "EnabledState", e) == ["6"]
    a = "CIM_EthernetPortAllocationSettingData"
    assert [val(x, "ElementName", a) for x in allocs] == [["vsc-p1"], ["vsc-p2"]]
    assert val(allocs[0], "NetworkPortProfileID", a) == [TENANT_A]
    assert val(allocs[1], "NetworkPortProfileID", a) == [TENANT_B]
    assert val(allocs[0], "PortVID", a) == ["10"] and val(allocs[1], "PortVID", a) == ["20"]
    assert val(allocs[1], "Address", a) == [MAC2.replace(":", "").upper()]
    assert val(allocs[1], "Caption", a) == ['tenant & <b> "x"']
    assert val(allocs[0], "ResourceType", a) == ["33"]

    # The view is read-only (the generation does not move); a change shows at once.
    gen = ctl.show()["switch"]["generation"]
    ctl.ctl("show", "--format", "cim")
    assert ctl.show()["switch"]["generation"] == gen
    ctl.ctl("set-port", "vsc-p2", "profile=" + TENANT_A)
    root = ET.fromstring(ctl.ctl("show", "--format", "cim").stdout.encode())
    allocs = root.findall("{%s%s}%s" % (CIM, a, a))
    assert val(allocs[1], "NetworkPortProfileID", a) == [TENANT_A]
    assert val(root.find("{%s%s}%s" % (CIM, vessd_name, vessd_name)), "VLANConnection", vessd_name) == ["10"]


def test_metrics_http_endpoint(ctl):
    """`vswitchd --metrics-listen 127.0.0.1:PORT`: GET /metrics serves the same Prometheus text as
    `vswitchctl metrics`; other paths 404, other methods 405, garbage 400; a silent client does not
    block the control socket; off by default."""
    import socket as so
    import urllib.error
    import urllib.request

    s = so.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    ctl.start(extra=["--metrics-listen", "127.0.0.1:%d" % port])
    two_ports(ctl)
    r = ping("vsc-a1", "10.77.0.2")
    assert r.returncode == 0, r.stdout + r.stderr
    url = "http://127.0.0.1:%d/metrics" % port

    # Clients that connect and say nothing must not hold up the daemon, nor lock scrapes out: 16 of them (the
    # limit) and a scrape still gets through (the oldest silent one makes room).
    silent = [so.create_connection(("127.0.0.1", port)) for _ in range(16)]
    time.sleep(0.2)
    with urllib.request.urlopen(url, timeout=5) as resp:
        assert resp.status == 200
    for s in silent:
        s.close()
    idle = so.create_connection(("127.0.0.1", port))
    with urllib.request.urlopen(url, timeout=5) as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        body = resp.read().decode()
    idle.close()
    via_ctl = ctl.ctl("metrics").stdout

    def samples(text):
        return {line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
                for line in text.splitlines() if line and not line.startswith("#")}

    http, cli = samples(body), samples(via_ctl)
    assert http.keys() == cli.keys() and len(http) > 10
    key = next(k for k in http if k.startswith("vswitch_port_rx_packets_total") and 'port="vsc-p1"' in k)
    assert http[key] >= 3 and cli[key] >= http[key]
    assert "# TYPE vswitch_port_rx_packets_total counter" in body

    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen("http://127.0.0.1:%d/other" % port, timeout=5)
    assert e.value.code == 404
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(urllib.request.Request(url, data=b"x", method="POST"), timeout=5)
    assert e.value.code == 405
    raw = so.create_connection(("127.0.0.1", port), timeout=5)
    raw.sendall(b"hello\r\n\r\n")
    assert raw.recv(100).startswith(b"HTTP/1.1 400")
    raw.close()
    assert ctl.ctl("show").returncode == 0

    # Off by default: a daemon without the option listens on no TCP port.
    ctl.stop()
    ctl.start()
    with pytest.raises(OSError):
        so.create_connection(("127.0.0.1", port), timeout=2).close()
    # A bad address is one clear line and a non-zero exit.
    ctl.stop()
    assert ctl.start(extra=["--metrics-listen", "127.0.0.1:http"], expect_ready=False) != 0
    assert "--metrics-listen 127.0.0.1:http" in ctl.stderr()
