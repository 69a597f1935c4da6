// swift-tools-version: 6.0
// VSwitch — a userspace virtual Ethernet switch for Linux.
// Module map (dependencies point downwards only):
//   VSwitchPacket      frames, batches, pool, Ethernet/802.1Q parsing (the only home of unsafe frame memory)
//   VSwitchPolicy      port-profile model (DSP8049 / EPASD) and its compiled, hot-path form (PortPolicy)
//   VSwitchXML         libxml2 fenced in: safe parsing, XSD validation, located diagnostics
//   VSwitchProfiles    profile documents (form 1, OVF envelopes): read, validate, write
//   VSwitchTopology    topology documents: switch settings, ports, virtual systems
//   VSwitchCore        lock-free forwarding: MAC table, snapshots + QSBR, pipeline, counters, threads
//   VSwitchIO          TAP devices and their backends (read/write, io_uring), network namespaces, rtnetlink (libnl)
//   VSwitchCapture     capture sessions: drains the forwarding threads' capture rings, BPF (libpcap), pcap output
//   VSwitchControl     control protocol (JSON lines over a Unix socket), blocking client, Prometheus text
//   VSwitchDaemon      the running switch: dynamic model, control server, link monitor, state (used by vswitchd)
//   vswitchctl         the operator's CLI (VSwitchControl only)
//   vswitch-bench      bench/: the forwarding core alone, and the comparison with the Linux bridge and OVS
// C, only where Swift cannot call something: CVSwitchShim (TUN ioctls, setns/unshare, mounts, AF_PACKET
// sockaddr_ll, signalfd, SO_PEERCRED, clocks, thread pinning); system libraries CLibXML2, CLibNL, CLibURing, CLibPcap.
import PackageDescription

let optimise: [SwiftSetting] = [.unsafeFlags(["-Ounchecked", "-enforce-exclusivity=unchecked"], .when(configuration: .release))]

let package = Package(
    name: "VSwitch",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "vswitchd", targets: ["vswitchd"]),
        .executable(name: "vswitch-bench", targets: ["vswitch-bench"]),
        .executable(name: "vswitchctl", targets: ["vswitchctl"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-atomics.git", from: "1.3.0"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/ordo-one/malloc-interposer.git", from: "1.6.1"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift.git", from: "0.2.0"),
    ],
    targets: [
        .target(name: "CVSwitchShim", path: "Sources/CVSwitchShim"),
        .target(name: "VSwitchControl"),
        .systemLibrary(name: "CLibXML2", path: "Sources/CLibXML2", pkgConfig: "libxml-2.0",
                       providers: [.apt(["libxml2-dev"])]),
        .systemLibrary(name: "CLibURing", path: "Sources/CLibURing", pkgConfig: "liburing",
                       providers: [.apt(["liburing-dev"])]),
        .target(name: "VSwitchCapture", dependencies: ["CLibPcap", "VSwitchCore"], swiftSettings: optimise),
        .systemLibrary(name: "CLibNL", path: "Sources/CLibNL", pkgConfig: "libnl-route-3.0",
                       providers: [.apt(["libnl-3-dev", "libnl-route-3-dev"])]),
        .systemLibrary(name: "CLibPcap", path: "Sources/CLibPcap", pkgConfig: "libpcap",
                       providers: [.apt(["libpcap-dev"])]),
        .target(name: "VSwitchPacket", swiftSettings: optimise),
        .target(name: "VSwitchPolicy", dependencies: ["VSwitchPacket"], swiftSettings: optimise),
        .target(name: "VSwitchXML", dependencies: ["CLibXML2"]),
        .target(name: "VSwitchProfiles", dependencies: ["VSwitchXML", "VSwitchPolicy"],
                resources: [.copy("Schema")]),
        .target(name: "VSwitchTopology", dependencies: ["VSwitchXML", "VSwitchProfiles"]),
        .target(name: "VSwitchCore",
                dependencies: ["VSwitchPacket", "VSwitchPolicy", "CVSwitchShim", .product(name: "Atomics", package: "swift-atomics")],
                swiftSettings: optimise),
        .target(name: "VSwitchIO",
                dependencies: ["CVSwitchShim", "CLibNL", "CLibURing", "CLibPcap", "VSwitchPacket", "VSwitchCore"],
                swiftSettings: optimise),
        .target(name: "VSwitchDaemon",
                dependencies: ["VSwitchCore", "VSwitchCapture", "VSwitchIO", "VSwitchTopology", "VSwitchProfiles", "VSwitchControl",
                               "CVSwitchShim",
                               .product(name: "Logging", package: "swift-log"),
                               .product(name: "Atomics", package: "swift-atomics")]),
        .executableTarget(name: "vswitchd",
                          dependencies: ["VSwitchDaemon", "VSwitchControl",
                                         .product(name: "ArgumentParser", package: "swift-argument-parser"),
                                         .product(name: "Logging", package: "swift-log")]),
        .executableTarget(name: "vswitchctl",
                          dependencies: ["VSwitchControl", .product(name: "ArgumentParser", package: "swift-argument-parser")]),
        .executableTarget(name: "vswitch-bench",
                          dependencies: ["VSwitchCore", "VSwitchPacket", "VSwitchPolicy", "VSwitchProfiles", "VSwitchCapture", "CVSwitchShim",
                                         .product(name: "ArgumentParser", package: "swift-argument-parser"),
                                         .product(name: "Atomics", package: "swift-atomics"),
                                         .product(name: "MallocInterposerSwift", package: "malloc-interposer"),
                                         .product(name: "Histogram", package: "hdrhistogram-swift")],
                          path: "bench/Sources/vswitch-bench", swiftSettings: optimise),
        .testTarget(name: "VSwitchPacketTests", dependencies: ["VSwitchPacket"]),
        .testTarget(name: "VSwitchPolicyTests", dependencies: ["VSwitchPolicy"]),
        .testTarget(name: "VSwitchCoreTests", dependencies: ["VSwitchCore", "VSwitchPacket", "VSwitchPolicy",
                                                             .product(name: "Atomics", package: "swift-atomics")]),
        .testTarget(name: "VSwitchCaptureTests", dependencies: ["VSwitchCapture", "VSwitchCore", "VSwitchPacket", "VSwitchPolicy"]),
        .testTarget(name: "VSwitchProfilesTests", dependencies: ["VSwitchProfiles", "VSwitchTopology"],
                    resources: [.copy("Fixtures")]),
        .testTarget(name: "VSwitchControlTests", dependencies: ["VSwitchControl", "VSwitchDaemon", "VSwitchCore",
                                                                "VSwitchPacket", "VSwitchProfiles",
                                                                .product(name: "Logging", package: "swift-log")]),
        .testTarget(name: "VSwitchIOTests", dependencies: ["VSwitchIO", "VSwitchCore", "VSwitchPacket", "VSwitchPolicy", "CVSwitchShim"]),
    ]
)
