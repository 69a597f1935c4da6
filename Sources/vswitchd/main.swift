// vswitchd: the VSwitch daemon. Thin: options, logging, then VSwitchDaemon.

import ArgumentParser
import Foundation
import Logging
import VSwitchControl
import VSwitchDaemon
import VSwitchTopology
#if canImport(Glibc)
import Glibc
#endif

struct VSwitchd: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vswitchd",
        abstract: "VSwitch daemon: a userspace virtual Ethernet switch with TAP ports, VLANs and port profiles.",
        discussion: """
            With --topology, the switch starts from a topology file (ephemeral unless --state-dir is given).
            Without it, the switch restores the state saved in the state directory (default /var/lib/vswitch),
            or starts empty. Drive it with vswitchctl through the control socket.
            """)

    @Option(name: .long, help: "Topology file (XML, see topologies/): the initial configuration.") var topology: String?
    @Option(name: .long, help: "State directory: every accepted change is saved there and restored at start (default /var/lib/vswitch when no --topology is given).") var stateDir: String?
    @Option(name: .long, help: "Control socket path (default \(ControlProtocol.defaultSocketPath)).") var controlSocket: String?
    @Flag(name: .long, help: "Run without a control socket.") var noControlSocket = false
    @Option(name: .long, help: "Serve the Prometheus metrics (as `vswitchctl metrics`) over HTTP on GET /metrics at HOST:PORT, e.g. 127.0.0.1:9477 (off by default).") var metricsListen: String?
    @Option(name: .long, help: "Forwarding threads, 0...64 like the topology's ForwardingThreads (default: the topology's setting, else one per core; 0: one per core).") var threads: Int?
    @Option(name: .long, help: "TAP port I/O: uring (batched io_uring submissions, default) or syscall (one read/write per frame).") var portIo = "uring"
    @Option(name: .long, help: "TAP offloads: on (default: IFF_VNET_HDR with checksum and TSO, per port unless a port turns them off) or off (every port without, e.g. for A/B benchmarks).") var offloads = "on"
    @Option(name: .long, help: "Netdev port RX rings: latency (default: TPACKET_V2, a frame is read as soon as it lands, ~30 µs) or throughput (TPACKET_V3 blocks: fewer wake-ups, less CPU per frame at moderate rates, but a frame waits up to the 1 ms block timeout).") var netdevRing = "latency"
    @Option(name: .long, help: "CPUs of the forwarding threads, as a list like 1 or 2-5,8: thread t runs on the t-th (round robin). Default: thread t on the t-th CPU the process may use outside --housekeeping-cpus, when there are enough of them; else unpinned.") var forwardingCpus: String?
    @Option(name: .long, help: "CPUs for every other thread of the daemon (control loop, capture writer, metrics, namespace helpers), e.g. 0. Default: any CPU. Keeps the capture writer's page-cache writes off the forwarding cores.") var housekeepingCpus: String?
    @Option(name: .long, help: "MiB of capture ring per forwarding thread (1-1024, default 4): the frames copied for captures and pcap mirrors wait there for the writer thread; a larger ring rides out the writer's stalls (page-cache allocation, a busy housekeeping CPU) at high capture rates, at the cost of that much memory per thread.") var captureRingMib: Int = 4
    @Option(name: .long, help: "Microseconds a forwarding thread keeps busy-polling its ports after the last frame before it sleeps (0, the default: sleep after two empty passes; the thread never burns a core when no traffic flows either way).") var idleSpinUs: Int = 0
    @Option(name: .long, help: "Also write counters and the MAC table as JSON to this file on SIGUSR1 and at exit.") var statsJson: String?
    @Option(name: .long, help: "Create this file once the switch forwards.") var readyFile: String?
    @Option(name: .long, help: "Log level: trace, debug, info, notice, warning, error, critical.") var logLevel = "info"
    @Flag(name: .long, help: "Validate the topology and its profiles, print a summary, and exit.") var check = false

    func run() throws {
        // Refused before anything is created: each forwarding thread allocates its frame pool and capture ring, so
        // an unchecked --threads 5000 aborted in an allocation and --threads 100000 exhausted the host's memory.
        let threadsRange = SwitchSettings.forwardingThreadsRange   // the topology's ForwardingThreads range
        if let threads, !threadsRange.contains(threads) {
            FileHandle.standardError.write(Data("vswitchd: --threads must be \(threadsRange.lowerBound)...\(threadsRange.upperBound) (0: one per core), got \(threads)\n".utf8))
            throw ExitCode(2)
        }
        guard let level = Logger.Level(rawValue: logLevel) else {
            FileHandle.standardError.write(Data("vswitchd: --log-level must be one of: \(Logger.Level.allCases.map(\.rawValue).joined(separator: ", ")), got \(logLevel)\n".utf8))
            throw ExitCode(2)
        }
        LoggingSystem.bootstrap { label in
            var h = StreamLogHandler.standardError(label: label)
            h.logLevel = level
            return h
        }
        let log = Logger(label: "vswitchd")
        // Every option is checked before the topology is read and before --check answers: --check must refuse what
        // a real start refuses, with the same one-line errors (it said OK to --port-io foo, --capture-ring-mib 0, …).
        var options = DaemonOptions(threads: threads, statsJSONPath: statsJson, readyFile: readyFile)
        func refuse(_ message: String) -> ExitCode {
            FileHandle.standardError.write(Data("vswitchd: \(message)\n".utf8))
            return ExitCode(2)
        }
        guard let io = PortIO(rawValue: portIo) else {
            throw refuse("--port-io must be one of: \(PortIO.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        options.portIO = io
        guard offloads == "on" || offloads == "off" else { throw refuse("--offloads must be on or off") }
        options.offloads = offloads == "on"
        switch netdevRing {
        case "latency": options.netdevRing = .latency
        case "throughput": options.netdevRing = .throughput
        default: throw refuse("--netdev-ring must be latency or throughput")
        }
        do {
            options.cpus = CPUPlacement(forwarding: try forwardingCpus.map { try CPUList(parsing: $0) },
                                        housekeeping: try housekeepingCpus.map { try CPUList(parsing: $0) })
            try options.cpus.check(allowed: CPUList.allowed())   // as start() does (same error)
            if let metricsListen { _ = try MetricsHTTPServer.parse(metricsListen) }   // syntax only: start() binds it
        } catch {
            throw refuse("\(error)")
        }
        guard (0...1_000_000).contains(idleSpinUs) else { throw refuse("--idle-spin-us must be 0...1000000 (microseconds)") }
        options.idleSpinNs = UInt64(idleSpinUs) * 1_000
        guard (1...1024).contains(captureRingMib) else { throw refuse("--capture-ring-mib must be 1...1024") }
        options.captureRingBytes = captureRingMib << 20

        var topo: Topology?
        if let topology {
            do {
                topo = try TopologyLoader.load(path: topology)
            } catch {
                throw refuse("\(error)")
            }
        }
        if check {
            guard let topo else { throw refuse("--check needs --topology") }
            print("topology \(topo.name): \(topo.ports.count) ports, \(topo.profiles.profiles.count) profiles: OK")
            return
        }
        // Signals are handled by the control loop through a signalfd: block them in every thread.
        var set = sigset_t()
        sigemptyset(&set)
        for s in [SIGINT, SIGTERM, SIGUSR1, SIGHUP] { sigaddset(&set, s) }
        pthread_sigmask(SIG_BLOCK, &set, nil)
        signal(SIGPIPE, SIG_IGN)
        options.topology = topo
        options.metricsListen = metricsListen
        options.stateDirectory = stateDir ?? (topo == nil ? "/var/lib/vswitch" : nil)
        options.controlSocket = noControlSocket ? nil : (controlSocket ?? ProcessInfo.processInfo.environment["VSWITCH_CONTROL_SOCKET"] ?? ControlProtocol.defaultSocketPath)
        // An ephemeral topology run without an explicit socket does not fail because another daemon has the default one.
        options.controlSocketOptional = controlSocket == nil && topo != nil && stateDir == nil
        let daemon = SwitchDaemon(options: options, logger: log)
        do {
            try daemon.start()
        } catch {
            FileHandle.standardError.write(Data("vswitchd: \(error)\n".utf8))
            throw ExitCode(1)
        }
        daemon.run()
        daemon.shutdown()
    }
}

VSwitchd.main()
