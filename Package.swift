// swift-tools-version: 6.0
// VSwitch — a userspace virtual Ethernet switch for Linux.
// Module map (dependencies point downwards only):
//   VSwitchPacket      frames, batches, pool, Ethernet/802.1Q parsing (the only home of unsafe frame memory)
//   VSwitchPolicy      port-profile model (DSP8049 / EPASD) and its compiled, hot-path form (PortPolicy)
//   VSwitchXML         libxml2 fenced in: safe parsing, XSD validation, located diagnostics
//   VSwitchProfiles    profile documents (form 1, OVF envelopes): read, validate, write
//   VSwitchTopology    topology documents: switch settings, ports, virtual systems
//   VSwitchCore        lock-free forwarding: MAC table, snapshots + QSBR, pipeline, counters, threads
//   VSwitchIO          TAP devices, network namespaces, rtnetlink (libnl) link configuration
//   VSwitchDaemon      wires a topology into a running switch (used by vswitchd)
import PackageDescription

let optimise: [SwiftSetting] = [.unsafeFlags(["-Ounchecked", "-enforce-exclusivity=unchecked"], .when(configuration: .release))]

let package = Package(
    name: "VSwitch",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "vswitchd", targets: ["vswitchd"]),
        .executable(name: "vswitch-bench", targets: ["vswitch-bench"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-atomics.git", from: "1.3.0"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/ordo-one/malloc-interposer.git", from: "1.6.1"),
    ],
    targets: [
        .target(name: "CVSwitchShim", path: "Sources/CVSwitchShim"),
        .systemLibrary(name: "CLibXML2", path: "Sources/CLibXML2", pkgConfig: "libxml-2.0",
                       providers: [.apt(["libxml2-dev"])]),
        .systemLibrary(name: "CLibNL", path: "Sources/CLibNL", pkgConfig: "libnl-route-3.0",
                       providers: [.apt(["libnl-3-dev", "libnl-route-3-dev"])]),
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
                dependencies: ["CVSwitchShim", "CLibNL", "VSwitchPacket", "VSwitchCore"],
                swiftSettings: optimise),
        .target(name: "VSwitchDaemon",
                dependencies: ["VSwitchCore", "VSwitchIO", "VSwitchTopology", "VSwitchProfiles",
                               .product(name: "Logging", package: "swift-log"),
                               .product(name: "Atomics", package: "swift-atomics")]),
        .executableTarget(name: "vswitchd",
                          dependencies: ["VSwitchDaemon", .product(name: "ArgumentParser", package: "swift-argument-parser"),
                                         .product(name: "Logging", package: "swift-log")]),
        .executableTarget(name: "vswitch-bench",
                          dependencies: ["VSwitchCore", "VSwitchPacket", "VSwitchPolicy", "CVSwitchShim",
                                         .product(name: "ArgumentParser", package: "swift-argument-parser"),
                                         .product(name: "Atomics", package: "swift-atomics"),
                                         .product(name: "MallocInterposerSwift", package: "malloc-interposer")],
                          path: "bench/Sources/vswitch-bench", swiftSettings: optimise),
        .testTarget(name: "VSwitchPacketTests", dependencies: ["VSwitchPacket"]),
        .testTarget(name: "VSwitchPolicyTests", dependencies: ["VSwitchPolicy"]),
        .testTarget(name: "VSwitchCoreTests", dependencies: ["VSwitchCore", "VSwitchPacket", "VSwitchPolicy",
                                                             .product(name: "Atomics", package: "swift-atomics")]),
        .testTarget(name: "VSwitchProfilesTests", dependencies: ["VSwitchProfiles", "VSwitchTopology"],
                    resources: [.copy("Fixtures")]),
        .testTarget(name: "VSwitchIOTests", dependencies: ["VSwitchIO", "VSwitchCore", "VSwitchPacket"]),
    ]
)
