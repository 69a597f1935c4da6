// vswitchd: the VSwitch daemon. Thin: options, logging, then VSwitchDaemon.

import ArgumentParser
import Foundation
import Logging
import VSwitchDaemon
import VSwitchTopology
#if canImport(Glibc)
import Glibc
#endif

struct VSwitchd: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vswitchd",
        abstract: "VSwitch daemon: a userspace virtual Ethernet switch with TAP ports, VLANs and port profiles.")

    @Option(name: .long, help: "Topology file (XML, see topologies/).") var topology: String
    @Option(name: .long, help: "Forwarding threads (default: the topology's setting, else one per core).") var threads: Int?
    @Option(name: .long, help: "Also write counters and the MAC table as JSON to this file on SIGUSR1 and at exit.") var statsJson: String?
    @Option(name: .long, help: "Create this file once the switch forwards.") var readyFile: String?
    @Option(name: .long, help: "Log level: trace, debug, info, notice, warning, error, critical.") var logLevel = "info"
    @Flag(name: .long, help: "Validate the topology and its profiles, print a summary, and exit.") var check = false

    func run() throws {
        let level = Logger.Level(rawValue: logLevel) ?? .info
        LoggingSystem.bootstrap { label in
            var h = StreamLogHandler.standardError(label: label)
            h.logLevel = level
            return h
        }
        let log = Logger(label: "vswitchd")
        let topo: Topology
        do {
            topo = try TopologyLoader.load(path: topology)
        } catch {
            FileHandle.standardError.write(Data("vswitchd: \(error)\n".utf8))
            throw ExitCode(2)
        }
        if check {
            print("topology \(topo.name): \(topo.ports.count) ports, \(topo.profiles.profiles.count) profiles: OK")
            return
        }
        // Signals are handled synchronously by the control loop: block them in every thread.
        var set = sigset_t()
        sigemptyset(&set)
        for s in [SIGINT, SIGTERM, SIGUSR1, SIGHUP] { sigaddset(&set, s) }
        pthread_sigmask(SIG_BLOCK, &set, nil)
        let daemon = SwitchDaemon(topology: topo, options: DaemonOptions(threads: threads, statsJSONPath: statsJson,
                                                                        readyFile: readyFile), logger: log)
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
