// The switches under test, all between the same two virtual systems:
//   vsb-a (sender, eth0 02:00:00:00:00:01, 10.99.0.1/24) and
//   vsb-b (receiver, eth0 02:00:00:00:00:02, 10.99.0.2/24),
// each a network namespace. Every name the benchmark creates starts with
// `vsb-` (namespaces, links, bridges, temp directories /tmp/vsb-run-*).
//
//   direct      a veth pair from vsb-a straight to vsb-b: no switch; the
//               generator's ceiling and the CPU baseline
//   bridge      the Linux bridge vsb-br0 in the root namespace, veth ports
//   ovs-system  Open vSwitch, userspace (netdev) datapath, veth ports of type
//               system (AF_PACKET), ovsdb-server + ovs-vswitchd started here
//   ovs-afxdp   the same with port type afxdp (native XDP mode on veth,
//               generic if native fails)
//   vswitch-Nt  vswitchd with N forwarding threads and TAP ports; it creates
//               the namespaces and TAPs itself from a generated topology
//
// In vsb-b an nftables netdev ingress chain counts the test frames (ethertype
// 0x88b5 from trafgen, 0x88b6 from the latency probe) and drops them before
// the IP stack: the receiving count is independent of the switch, and cheap.

import Foundation
#if canImport(Glibc)
import Glibc
#endif

let nsA = "vsb-a", nsB = "vsb-b"
let macA = "02:00:00:00:00:01", macB = "02:00:00:00:00:02"
let ipA = "10.99.0.1", ipB = "10.99.0.2"
let trafgenEtherType: UInt16 = 0x88b5
let probeEtherType: UInt16 = 0x88b6

final class SwitchUnderTest {
    let name: String
    let summary: String
    var notes: [String] = []
    /// Processes whose CPU time is the switch's (empty for the kernel bridge and direct).
    var switchPids: [pid_t] = []
    /// vswitchd's --stats-json file (SIGUSR1 writes it).
    var statsPath: String?
    /// Run after the measurements, before tear-down; returns notes (e.g. the capture's own counters).
    var afterMeasure: (() -> [String])?
    /// Capture entries: stop / start the capture (the A/B of `--parts capture-ab`, same daemon, same minute).
    var captureOff: (() -> Void)?
    var captureOn: (() throws -> Void)?
    let setUpBody: (SwitchUnderTest) throws -> Void
    var mark = 0

    init(name: String, summary: String, setUp: @escaping (SwitchUnderTest) throws -> Void) {
        self.name = name; self.summary = summary; self.setUpBody = setUp
    }

    func setUp() throws {
        mark = Cleanup.mark()
        try setUpBody(self)
        try prepareEndpoints()
    }

    func tearDown() { Cleanup.unwind(to: mark) }
}

/// Removes leftovers of an earlier benchmark run that was killed hard (SIGKILL).
func removeStale() {
    quiet("rmdir /sys/fs/cgroup/cpuset/vsb-cpu1")
    if let dirs = try? FileManager.default.contentsOfDirectory(atPath: "/tmp") {
        for d in dirs where d.hasPrefix("vsb-run-") {
            let path = "/tmp/" + d
            for f in (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? [] where f.hasSuffix(".pid") {
                if let s = try? String(contentsOfFile: path + "/" + f, encoding: .utf8),
                   let pid = Int32(s.trimmingCharacters(in: .whitespacesAndNewlines)), pid > 1 {
                    kill(pid, SIGKILL)
                }
            }
            try? FileManager.default.removeItem(atPath: path)
        }
    }
    if let out = try? sh("ip netns list").out {
        for line in out.split(separator: "\n") {
            let ns = String(line.split(separator: " ").first ?? "")
            if ns.hasPrefix("vsb-") { quiet("ip netns delete \(ns)") }
        }
    }
    if let out = try? sh("ip -o link show").out {
        for line in out.split(separator: "\n") {
            let f = line.split(separator: ":")
            guard f.count > 1 else { continue }
            let name = f[1].trimmingCharacters(in: .whitespaces).split(separator: "@").first.map(String.init) ?? ""
            if name.hasPrefix("vsb-") { quiet("ip link delete \(name)") }
        }
    }
}

/// A namespace with a veth whose other end stays in the root namespace as `hostEnd`.
func makeNamespace(_ ns: String, mac: String, ip: String, hostEnd: String) throws {
    try must("ip netns add \(ns)")
    Cleanup.push("netns \(ns)") { quiet("ip netns delete \(ns)") }
    try must("ip link add \(hostEnd) type veth peer name eth0 netns \(ns)")
    Cleanup.push("link \(hostEnd)") { quiet("ip link delete \(hostEnd)") }
    try must("ip -n \(ns) link set eth0 address \(mac) && ip -n \(ns) addr add \(ip)/24 dev eth0 && ip -n \(ns) link set eth0 up && ip link set \(hostEnd) up")
}

extension SwitchUnderTest {
    /// IPv6 off, loopback up, the counting nftables chain in vsb-b; then traffic
    /// both ways (ping), which also teaches the switch both stations.
    func prepareEndpoints() throws {
        for ns in [nsA, nsB] {
            try must("ip netns exec \(ns) sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1; ip -n \(ns) link set lo up")
        }
        let nft = """
        table netdev vsb {
          counter rx { }
          counter probe { }
          chain in {
            type filter hook ingress device eth0 priority 0;
            ether type 0x88b5 counter name rx drop
            ether type 0x88b6 counter name probe drop
          }
        }
        """
        let f = "\(runDir)/nft-\(name).conf"
        try nft.write(toFile: f, atomically: true, encoding: .utf8)
        try must("ip netns exec \(nsB) nft -f \(f)")
        let deadline = Date().addingTimeInterval(20)
        while true {
            if (try? sh("ip netns exec \(nsB) ping -c 2 -i 0.2 -W 1 \(ipA)").status) == 0 { break }
            if Date() > deadline { throw BenchError.failed("\(name): no connectivity between \(nsB) and \(nsA) after 20 s") }
        }
        _ = try? sh("ip netns exec \(nsA) ping -c 1 -W 1 \(ipB)")
    }
}

/// Confines a process (and the threads it starts later) to CPU 1 with a cgroup-v1 cpuset, so a userspace
/// switch gets the core trafgen's worker (pinned to CPU 0) does not use. vswitchd pins forwarding thread
/// N to CPU N; inside the cpuset the pin to CPU 0 fails and thread 0 stays on CPU 1.
func confineToCPU1(_ pid: pid_t, _ sut: SwitchUnderTest) {
    let root = "/sys/fs/cgroup/cpuset"
    let dir = root + "/vsb-cpu1"
    guard FileManager.default.fileExists(atPath: root + "/cpuset.cpus"), sysconf(Int32(_SC_NPROCESSORS_ONLN)) >= 2 else {
        sut.notes.append("no cgroup-v1 cpuset: \(sut.name) not confined to CPU 1"); return
    }
    if !FileManager.default.fileExists(atPath: dir) { quiet("mkdir \(dir)") }   // removed at the very end (makeRunDir)
    let mems = (try? String(contentsOfFile: root + "/cpuset.mems", encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines) ?? "0"
    if (try? sh("echo 1 > \(dir)/cpuset.cpus && echo \(mems) > \(dir)/cpuset.mems && echo \(pid) > \(dir)/cgroup.procs").status) == 0 {
        sut.notes.append("\(sut.name) confined to CPU 1 (cpuset cgroup): trafgen's worker and the latency probe use CPU 0")
    } else {
        sut.notes.append("could not confine \(sut.name) to CPU 1")
    }
}

/// Extra vswitchd options from VSWITCH_BENCH_VSWITCHD_ARGS (split on spaces), for A/Bs of daemon settings.
let extraVswitchdArgs: [String] = (ProcessInfo.processInfo.environment["VSWITCH_BENCH_VSWITCHD_ARGS"] ?? "")
    .split(separator: " ").map(String.init)

nonisolated(unsafe) var runDir = "/tmp/vsb-run-\(getpid())"

func makeRunDir() throws {
    try FileManager.default.createDirectory(atPath: runDir, withIntermediateDirectories: true)
    Cleanup.push("run dir") {
        try? FileManager.default.removeItem(atPath: runDir)
        quiet("rmdir /sys/fs/cgroup/cpuset/vsb-cpu1")
    }
}

// MARK: - direct (no switch)

func directSUT() -> SwitchUnderTest {
    SwitchUnderTest(name: "direct", summary: "veth pair vsb-a <-> vsb-b, no switch (generator ceiling, CPU baseline)") { _ in
        try must("ip netns add \(nsA)")
        Cleanup.push("netns a") { quiet("ip netns delete \(nsA)") }
        try must("ip netns add \(nsB)")
        Cleanup.push("netns b") { quiet("ip netns delete \(nsB)") }
        try must("ip link add eth0 netns \(nsA) type veth peer name eth0 netns \(nsB)")
        try must("ip -n \(nsA) link set eth0 address \(macA) && ip -n \(nsA) addr add \(ipA)/24 dev eth0 && ip -n \(nsA) link set eth0 up")
        try must("ip -n \(nsB) link set eth0 address \(macB) && ip -n \(nsB) addr add \(ipB)/24 dev eth0 && ip -n \(nsB) link set eth0 up")
    }
}

// MARK: - Linux bridge

func bridgeSUT() -> SwitchUnderTest {
    SwitchUnderTest(name: "bridge", summary: "Linux bridge vsb-br0 (root namespace), veth ports, default settings") { sut in
        // br_netfilter: if loaded, bridged IPv4 frames go through iptables even without rules. Switch it off for the run.
        for k in ["iptables", "ip6tables", "arptables"] {
            let path = "/proc/sys/net/bridge/bridge-nf-call-\(k)"
            if let old = try? String(contentsOfFile: path, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines) {
                if old != "0" {
                    try must("sysctl -qw net.bridge.bridge-nf-call-\(k)=0")
                    Cleanup.push("restore \(path)") { quiet("sysctl -qw net.bridge.bridge-nf-call-\(k)=\(old)") }
                    sut.notes.append("br_netfilter is loaded: net.bridge.bridge-nf-call-\(k) was \(old), set to 0 for the run and restored after")
                }
            }
        }
        try must("ip link add vsb-br0 type bridge")
        Cleanup.push("bridge") { quiet("ip link delete vsb-br0") }
        try makeNamespace(nsA, mac: macA, ip: ipA, hostEnd: "vsb-a-h")
        try makeNamespace(nsB, mac: macB, ip: ipB, hostEnd: "vsb-b-h")
        try must("ip link set vsb-a-h master vsb-br0 && ip link set vsb-b-h master vsb-br0 && ip link set vsb-br0 up")
    }
}

// MARK: - Open vSwitch, userspace datapath

func ovsSUT(portType: String) -> SwitchUnderTest {
    SwitchUnderTest(name: "ovs-\(portType)",
                    summary: "Open vSwitch \(ovsVersion()) userspace datapath (netdev), veth ports of type \(portType == "system" ? "system (AF_PACKET)" : "afxdp"), NORMAL action") { sut in
        let dir = runDir + "/ovs-\(portType)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        setenv("OVS_RUNDIR", dir, 1); setenv("OVS_LOGDIR", dir, 1); setenv("OVS_DBDIR", dir, 1); setenv("OVS_SYSCONFDIR", dir, 1)
        let db = "unix:\(dir)/db.sock"
        try must("ovsdb-tool create \(dir)/conf.db /usr/share/openvswitch/vswitch.ovsschema")
        let dbs = try Child(["ovsdb-server", "\(dir)/conf.db", "--remote=punix:\(dir)/db.sock", "--pidfile=\(dir)/ovsdb-server.pid",
                             "--unixctl=\(dir)/ovsdb-server.ctl", "--log-file=\(dir)/ovsdb-server.log"],
                            log: "\(dir)/ovsdb-server.out")
        Cleanup.push("ovsdb-server") { dbs.stop(signal: SIGTERM) }
        var up = false
        for _ in 0..<100 { if FileManager.default.fileExists(atPath: "\(dir)/db.sock") { up = true; break }; usleep(50_000) }
        guard up else { throw BenchError.failed("ovsdb-server did not start; see \(dir)/ovsdb-server.log") }
        let vsctl = "ovs-vsctl --db=\(db) --timeout=20"
        try must("\(vsctl) --no-wait init")
        let vsd = try Child(["ovs-vswitchd", db, "--pidfile=\(dir)/ovs-vswitchd.pid", "--unixctl=\(dir)/ovs-vswitchd.ctl",
                             "--log-file=\(dir)/ovs-vswitchd.log"], log: "\(dir)/ovs-vswitchd.out")
        Cleanup.push("ovs-vswitchd") { vsd.stop(signal: SIGTERM) }
        confineToCPU1(vsd.pid, sut)
        sut.switchPids = [vsd.pid]
        try makeNamespace(nsA, mac: macA, ip: ipA, hostEnd: "vsb-a-h")
        try makeNamespace(nsB, mac: macB, ip: ipB, hostEnd: "vsb-b-h")
        // PMD threads (afxdp) on core 1 too: trafgen's worker pins itself to core 0.
        try must("\(vsctl) set Open_vSwitch . other_config:pmd-cpu-mask=0x2")
        try must("\(vsctl) add-br vsb-ovs0 -- set bridge vsb-ovs0 datapath_type=netdev other_config:mac-table-size=1000000")
        Cleanup.push("ovs bridge") { quiet("\(vsctl) --if-exists del-br vsb-ovs0") }
        for port in ["vsb-a-h", "vsb-b-h"] {
            if portType == "system" {
                try must("\(vsctl) add-port vsb-ovs0 \(port)")
            } else {
                try must("\(vsctl) add-port vsb-ovs0 \(port) -- set interface \(port) type=afxdp options:xdp-mode=native")
                usleep(500_000)
                let err = (try? sh("\(vsctl) get interface \(port) error").out) ?? ""
                if err.contains("\"") {
                    sut.notes.append("\(port): native XDP mode failed (\(err.trimmingCharacters(in: .whitespacesAndNewlines))); using generic")
                    try must("\(vsctl) set interface \(port) options:xdp-mode=generic")
                }
            }
        }
        try must("ip link set vsb-ovs0 up")
        // The userspace datapath forwards veth frames with partial checksums as they are (no checksum
        // offload handling for system/afxdp ports): TCP needs TX checksum offload off in the endpoints.
        for ns in [nsA, nsB] { quiet("ip netns exec \(ns) ethtool -K eth0 tx off") }
        sut.notes.append("TX checksum offload switched off on the endpoints' eth0 (ethtool -K eth0 tx off), as OVS's userspace datapath needs for TCP over veth")
        if portType == "afxdp" {
            let modes = (try? sh("\(vsctl) --columns=name,status list interface | grep -o 'xdp-mode[^,]*' ").out) ?? ""
            sut.notes.append("afxdp: PMD threads busy-poll (pmd-cpu-mask=0x2), so ovs-vswitchd burns a core whatever the load; "
                             + modes.split(separator: "\n").joined(separator: "; "))
        }
    }
}

func ovsVersion() -> String {
    let v = (try? sh("ovs-vswitchd --version").out) ?? ""
    return v.split(separator: "\n").first.map { String($0.split(separator: " ").last ?? "") } ?? "?"
}

// MARK: - VSwitch

func vswitchdPath() throws -> String {
    if let e = ProcessInfo.processInfo.environment["VSWITCHD"], !e.isEmpty { return e }
    let me = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
    let p = URL(fileURLWithPath: me).deletingLastPathComponent().appendingPathComponent("vswitchd").path
    guard FileManager.default.isExecutableFile(atPath: p) else {
        throw BenchError.failed("vswitchd not found next to \(me); build it into the same folder (swift build -c release --product vswitchd) or set VSWITCHD")
    }
    return p
}

let benchProfile = """
<?xml version="1.0" encoding="UTF-8"?>
<vsx:NetworkPortProfiles FormatVersion="1.0"
    xmlns:vsx="urn:vswitch:port-profile:1"
    xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/2"
    xmlns:epasd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_EthernetPortAllocationSettingData">
  <ovf:NetworkPortProfile>
    <ovf:Item>
      <epasd:Description>Benchmark: access port in VLAN 10</epasd:Description>
      <epasd:DesiredVLANEndpointMode>2</epasd:DesiredVLANEndpointMode>
      <epasd:ElementName>bench</epasd:ElementName>
      <epasd:InstanceID>vswitch.example:bench</epasd:InstanceID>
      <epasd:NetworkPortProfileID>urn:vswitch:profile:bench</epasd:NetworkPortProfileID>
      <epasd:NetworkPortProfileIDType>2</epasd:NetworkPortProfileIDType>
      <epasd:PortVID>10</epasd:PortVID>
      <epasd:SourceMACFilteringEnabled>false</epasd:SourceMACFilteringEnabled>
    </ovf:Item>
  </ovf:NetworkPortProfile>
</vsx:NetworkPortProfiles>
"""

/// `io`: vswitchd's --port-io (uring: batched io_uring submissions; syscall: one read()/write() per frame).
/// `netdev`: the virtual systems sit behind veth pairs (like the bridge's) whose host ends vswitchd attaches
/// as netdev ports (AF_PACKET RX rings: TPACKET_V2 by default, see NetdevPort.swift) instead of TAPs.
/// `capture`: a `vswitchctl capture` of every frame of the receiving port (vsb-tb, both directions, whole
/// frames) writes a pcap file on /dev/shm for the whole measurement (issue 4's "How fast").
/// `offloads`: vswitchd's --offloads (on: TAPs with IFF_VNET_HDR, checksum and TSO, the default; off: plain TAPs).
/// `housekeepingOnCPU0`: instead of confining the whole daemon to CPU 1, `--forwarding-cpus 1 --housekeeping-cpus 0`:
/// the forwarding thread alone on CPU 1, the control thread and the capture writer on CPU 0 beside trafgen's worker
/// (the deployment README.md recommends: writer off the forwarding cores, like OVS's non-PMD threads).
func vswitchSUT(threads: Int, io: String = "uring", netdev: Bool = false, capture: Bool = false, offloads: Bool = true,
                housekeepingOnCPU0: Bool = false) -> SwitchUnderTest {
    SwitchUnderTest(name: "vswitch-\(threads)t",
                    summary: netdev
                        ? "VSwitch vswitchd, netdev ports (AF_PACKET rings on veth host ends, vswitchd --netdev-ring default), \(threads) forwarding thread\(threads == 1 ? "" : "s"), access ports in VLAN 10"
                        : "VSwitch vswitchd, TAP ports (\(io == "uring" ? "io_uring, one submission per batch and direction" : "one read()/write() per frame"), offloads \(offloads ? "on: virtio-net header, checksum, TSO" : "off")), \(threads) forwarding thread\(threads == 1 ? "" : "s"), access ports in VLAN 10") { sut in
        let bin = try vswitchdPath()
        let dir = runDir + "/vswitch-\(threads)t-\(netdev ? "netdev" : io)\(capture ? "-capture" : "")\(housekeepingOnCPU0 ? "-hk" : "")\(offloads ? "" : "-nooffload")"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try benchProfile.write(toFile: dir + "/profiles.xml", atomically: true, encoding: .utf8)
        let portsXML = netdev
            ? "  <Port Name=\"vsb-na\" Type=\"netdev\" Interface=\"vsb-a-h\" Profile=\"urn:vswitch:profile:bench\" MACAddress=\"\(macA)\"/>\n"
                + "  <Port Name=\"vsb-nb\" Type=\"netdev\" Interface=\"vsb-b-h\" Profile=\"urn:vswitch:profile:bench\" MACAddress=\"\(macB)\"/>"
            : "  <Port Name=\"vsb-ta\" Type=\"tap\" Profile=\"urn:vswitch:profile:bench\">\n"
                + "    <VirtualSystem Namespace=\"\(nsA)\" InterfaceName=\"eth0\" MACAddress=\"\(macA)\"><Address>\(ipA)/24</Address></VirtualSystem>\n"
                + "  </Port>\n"
                + "  <Port Name=\"vsb-tb\" Type=\"tap\" Profile=\"urn:vswitch:profile:bench\">\n"
                + "    <VirtualSystem Namespace=\"\(nsB)\" InterfaceName=\"eth0\" MACAddress=\"\(macB)\"><Address>\(ipB)/24</Address></VirtualSystem>\n"
                + "  </Port>"
        let topo = """
        <?xml version="1.0" encoding="UTF-8"?>
        <Topology xmlns="urn:vswitch:topology:1" Name="vsb">
          <Switch MACTableSize="1000000"/>
          <ProfileFile Path="profiles.xml"/>
        \(portsXML)
        </Topology>
        """
        try topo.write(toFile: dir + "/topology.xml", atomically: true, encoding: .utf8)
        if netdev {
            try makeNamespace(nsA, mac: macA, ip: ipA, hostEnd: "vsb-a-h")
            try makeNamespace(nsB, mac: macB, ip: ipB, hostEnd: "vsb-b-h")
            // The endpoints keep their default offloads: the netdev ports take partial checksums and GSO
            // frames with their virtio_net_hdr (PACKET_VNET_HDR) and complete / segment them (issue 7).
            sut.notes.append("netdev ports: the endpoints keep their veth offloads (tx checksum, TSO); VSwitch completes partial checksums and segments GSO frames it reads through PACKET_VNET_HDR")
        }
        let ready = dir + "/ready", stats = dir + "/stats.json"
        let sock = dir + "/ctl.sock"
        let d = try Child([bin, "--topology", dir + "/topology.xml", "--threads", "\(threads)", "--ready-file", ready,
                           "--stats-json", stats, "--log-level", "warning", "--port-io", io,
                           "--offloads", offloads ? "on" : "off"] + (capture ? ["--control-socket", sock] : [])
                            + (housekeepingOnCPU0 ? ["--forwarding-cpus", "1", "--housekeeping-cpus", "0"] : [])
                            // VSWITCH_BENCH_VSWITCHD_ARGS="--idle-spin-us 50": extra daemon options for A/Bs (noted in the report).
                            + extraVswitchdArgs,
                          log: dir + "/vswitchd.log")
        sut.statsPath = stats
        if !extraVswitchdArgs.isEmpty { sut.notes.append("vswitchd run with VSWITCH_BENCH_VSWITCHD_ARGS: \(extraVswitchdArgs.joined(separator: " "))") }
        try "\(d.pid)\n".write(toFile: dir + "/vswitchd.pid", atomically: true, encoding: .utf8)
        Cleanup.push("vswitchd") {
            d.stop(signal: SIGTERM, grace: 10)
            quiet("ip netns delete \(nsA)"); quiet("ip netns delete \(nsB)")
            quiet("ip link delete vsb-ta"); quiet("ip link delete vsb-tb")
        }
        if housekeepingOnCPU0 {
            sut.notes.append("\(sut.name): vswitchd --forwarding-cpus 1 --housekeeping-cpus 0: the forwarding thread alone on CPU 1; control thread and capture writer on CPU 0 with trafgen's worker (their CPU still counts in the process's CPU per frame)")
        } else if threads == 1 { confineToCPU1(d.pid, sut) }
        else { sut.notes.append("\(threads) threads: vswitchd pins thread N to CPU N, so thread 0 shares CPU 0 with trafgen's worker") }
        sut.switchPids = [d.pid]
        let deadline = Date().addingTimeInterval(20)
        while !FileManager.default.fileExists(atPath: ready) {
            if !d.running {
                let log = (try? String(contentsOfFile: dir + "/vswitchd.log", encoding: .utf8)) ?? ""
                throw BenchError.failed("vswitchd exited during start-up: \(log)")
            }
            if Date() > deadline { throw BenchError.failed("vswitchd not ready after 20 s; see \(dir)/vswitchd.log") }
            usleep(50_000)
        }
        if capture { try startBenchCapture(sut, bin: bin, socket: sock, dir: dir, port: netdev ? "vsb-nb" : "vsb-tb", writerOnCPU0: housekeepingOnCPU0) }
        if io == "syscall" { sut.notes.append("VSwitch's TAP I/O here is per-frame syscalls (one read() and one write() per frame); see issue 7") }
    }
}

/// Starts `vswitchctl capture PORT --direction both -w /dev/shm/vsb-capture-PID.pcap` (whole frames, no filter) and
/// waits until the daemon has accepted it; afterwards `afterMeasure` reports the capture's own counters.
func startBenchCapture(_ sut: SwitchUnderTest, bin: String, socket: String, dir: String, port: String, writerOnCPU0: Bool = false) throws {
    let ctl = URL(fileURLWithPath: bin).deletingLastPathComponent().appendingPathComponent("vswitchctl").path
    guard FileManager.default.isExecutableFile(atPath: ctl) else {
        throw BenchError.failed("vswitchctl not found next to vswitchd (\(ctl)): swift build -c release --product vswitchctl")
    }
    // /dev/shm: the cost of capture, not of the disk (a 2 GB pcap on /tmp's disk hits the kernel's dirty-page
    // throttling; the file is removed at tear-down). VSWITCH_BENCH_CAPTURE_FS=huge-tmpfs writes it instead to a
    // tmpfs of the bench's own mounted `huge=within_size` (2 MiB pages: the kernel's cost of storing a byte
    // halves, see bench/README.md "Capture cost"), the set-up README.md recommends for full-rate captures.
    var captureDir = "/dev/shm"
    let fsChoice = ProcessInfo.processInfo.environment["VSWITCH_BENCH_CAPTURE_FS"] ?? "shm"
    switch fsChoice {
    case "shm": break
    case "huge-tmpfs":
        captureDir = dir + "/capture-tmpfs"
        try FileManager.default.createDirectory(atPath: captureDir, withIntermediateDirectories: true)
        let r = try sh("mount -t tmpfs -o size=32g,huge=within_size vsb-capture \(captureDir)")
        guard r.status == 0 else { throw BenchError.failed("mounting a huge-page tmpfs on \(captureDir) failed: \(r.out)") }
        // Cleanups run last-in first-out, so this one runs while vswitchd (stopped later) may still hold the pcap
        // open: a plain umount then fails with EBUSY and left the mount behind (one per run); a lazy one detaches it
        // at once and frees its pages when the daemon closes the file.
        Cleanup.push("capture tmpfs") { quiet("umount \(captureDir) 2>/dev/null || umount -l \(captureDir)") }
        sut.notes.append("capture file on a tmpfs mounted huge=within_size (VSWITCH_BENCH_CAPTURE_FS=huge-tmpfs)")
    default:
        throw BenchError.failed("VSWITCH_BENCH_CAPTURE_FS=\(fsChoice): expected shm or huge-tmpfs")
    }
    let pcap = captureDir + "/vsb-capture-\(getpid()).pcap", log = dir + "/capture.log"
    // VSWITCH_BENCH_CAPTURE_SNAPLEN=N: every frame, its first N bytes (`vswitchctl capture --snaplen N`).
    var snap: [String] = []
    if let v = ProcessInfo.processInfo.environment["VSWITCH_BENCH_CAPTURE_SNAPLEN"] {
        guard let n = Int(v), n > 0 else { throw BenchError.failed("VSWITCH_BENCH_CAPTURE_SNAPLEN=\(v): expected a positive byte count") }
        snap = ["--snaplen", "\(n)"]
        sut.notes.append("capture truncated to \(n) bytes per frame (VSWITCH_BENCH_CAPTURE_SNAPLEN)")
    }
    var current: Child?
    var bytesBefore = 0   // pcap bytes of the captures already stopped (capture-ab restarts it)
    func stop() {
        current?.stop(signal: SIGINT, grace: 5)
        current = nil
        bytesBefore += (try? FileManager.default.attributesOfItem(atPath: pcap)[.size] as? Int) ?? 0
        unlink(pcap)
    }
    func start() throws {
        stop()
        try? FileManager.default.removeItem(atPath: log)
        let c = try Child([ctl, "--socket", socket, "capture", port, "--direction", "both"] + snap + ["-w", pcap], log: log, name: "vswitchctl capture")
        current = c
        let deadline = Date().addingTimeInterval(10)
        while !((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").contains("capturing on") {
            if !c.running || Date() > deadline {
                throw BenchError.failed("vswitchctl capture did not start: \((try? String(contentsOfFile: log, encoding: .utf8)) ?? "")")
            }
            usleep(20_000)
        }
    }
    Cleanup.push("capture") { stop() }
    try start()
    sut.captureOff = { stop() }
    sut.captureOn = { try start() }
    sut.notes.append("capture: `vswitchctl capture \(port) --direction both -w \(pcap)` (every frame of the receiving port, whole, both directions, pcap written by the daemon's writer thread, \(writerOnCPU0 ? "on the housekeeping CPU 0" : "which shares CPU 1 with the forwarding thread")) runs for the whole measurement")
    sut.afterMeasure = {
        let r = try? sh("\(ctl) --socket \(socket) port stats \(port) --format json")
        var copies = "?", drops = "?"
        if let out = r?.out, let j = try? JSONSerialization.jsonObject(with: Data(out.utf8)) as? [String: Any],
           let row = (j["ports"] as? [[String: Any]])?.first {
            copies = "\(row["capture_copies"] ?? "?")"; drops = "\(row["capture_drops"] ?? "?")"
        } else {
            copies = "? (port stats failed: \(r?.out.prefix(200) ?? "no output"))"
        }
        let size = bytesBefore + ((try? FileManager.default.attributesOfItem(atPath: pcap)[.size] as? Int) ?? 0)
        return ["capture: \(copies) copies taken on \(port), \(drops) dropped for a full ring; pcap files \(size / 1_000_000) MB"]
    }
}

/// Asks vswitchd for its counters (SIGUSR1 writes --stats-json) and returns the JSON.
func vswitchStats(_ sut: SwitchUnderTest) -> Any? {
    guard sut.name.hasPrefix("vswitch"), let pid = sut.switchPids.first else { return nil }
    let path = sut.statsPath ?? runDir + "/\(sut.name)/stats.json"
    try? FileManager.default.removeItem(atPath: path)
    kill(pid, SIGUSR1)
    for _ in 0..<40 {
        if let d = FileManager.default.contents(atPath: path), let j = try? JSONSerialization.jsonObject(with: d) { return j }
        usleep(50_000)
    }
    return nil
}
