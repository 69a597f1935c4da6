// VirtualSystemProvisioner: gives a TAP's netdev to a "virtual system" — a network namespace —
// and configures it there (name, MAC, MTU, addresses, up). The switch keeps the TAP fd in its
// own namespace; it keeps working after the move.

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import VSwitchPacket

/// The network side of one virtual system.
public struct VirtualSystemSpec: Sendable, Equatable {
    /// The namespace (/run/netns/NAME) standing for the virtual system.
    public var namespace: String
    /// The TAP's netdev name inside the namespace (e.g. "eth0").
    public var interfaceName: String
    public var mac: MACAddress?
    public var mtu: Int?
    /// CIDR addresses for the interface. Without an IPv6 one, IPv6 is disabled on it (and in
    /// the whole namespace if this call created it), keeping MLD/ND frames off the switch.
    public var addresses: [String]

    public init(namespace: String, interfaceName: String, mac: MACAddress? = nil, mtu: Int? = nil, addresses: [String] = []) {
        self.namespace = namespace
        self.interfaceName = interfaceName
        self.mac = mac
        self.mtu = mtu
        self.addresses = addresses
    }
}

public enum VirtualSystemProvisioner {
    /// Moves the netdev of TAP `tapName` (in the caller's namespace) into `vs.namespace` —
    /// created first unless `createNamespace` is false, in which case it must exist — then
    /// renames it to `vs.interfaceName`, sets MAC, MTU and addresses, and brings it and `lo`
    /// up. On failure everything done so far is undone (the netdev is moved back under its old
    /// name, a namespace made here is deleted) and the first error is thrown.
    public static func attach(tapName: String, to vs: VirtualSystemSpec, createNamespace: Bool = true) throws {
        let operation = "attach TAP"
        let context = "\(quoted(tapName)) to virtual system \(quoted(vs.namespace))"
        try validateInterfaceName(vs.interfaceName, operation: operation)
        let prefixes = try vs.addresses.map { try IPPrefix(parsing: $0, for: vs.interfaceName) }
        let disableIPv6 = !prefixes.contains { $0.isIPv6 }
        guard Netlink.linkExists(tapName) else {
            throw SystemError(operation: operation, errno: ENODEV, context: context, detail: "no such interface \(quoted(tapName))")
        }
        if !createNamespace, !NetworkNamespace.exists(vs.namespace) {
            throw SystemError(operation: operation, errno: ENOENT, context: context, detail: "no such network namespace")
        }

        // The caller's namespace, to move the netdev back into if a later step fails.
        let home = try NetworkNamespace.openCurrent()
        defer { _ = Glibc.close(home) }

        if createNamespace { try NetworkNamespace.create(vs.namespace) }
        var moved = false
        do {
            try Netlink.moveLink(tapName, toNamespace: vs.namespace)
            moved = true
            try NetworkNamespace.withNamespace(vs.namespace) {
                let socket = try RouteSocket(namespace: vs.namespace)
                if disableIPv6 && createNamespace {
                    try writeSysctl("net/ipv6/conf/all/disable_ipv6", "1")
                    try writeSysctl("net/ipv6/conf/default/disable_ipv6", "1")
                }
                try socket.setUp("lo", true)
                // Configure while down; IPv6 off before the first frame can leave.
                try socket.apply(LinkConfig(name: tapName, newName: vs.interfaceName, mac: vs.mac, mtu: vs.mtu),
                                 prefixes: prefixes)
                if disableIPv6 { try writeSysctl("net/ipv6/conf/\(vs.interfaceName)/disable_ipv6", "1") }
                try socket.setUp(vs.interfaceName, true)
            }
        } catch {
            if moved { moveBack(tapName: tapName, currentNames: [vs.interfaceName, tapName], from: vs.namespace, to: home) }
            if createNamespace { try? NetworkNamespace.delete(vs.namespace) }
            throw error
        }
    }

    /// Finishes a virtual system whose TAP netdev is already inside `vs.namespace` under `currentName` —
    /// `vs.interfaceName`, or the TAP's own name when a daemon was killed between the move and the rename
    /// — as `attach` would have left it: renamed, MTU and MAC where they differ, missing addresses added,
    /// `lo` and the interface up. Idempotent: on a finished virtual system it changes nothing.
    public static func complete(interface currentName: String, to vs: VirtualSystemSpec) throws {
        let operation = "complete virtual system"
        let context = "\(quoted(currentName)) in \(quoted(vs.namespace))"
        try validateInterfaceName(vs.interfaceName, operation: operation)
        let prefixes = try vs.addresses.map { try IPPrefix(parsing: $0, for: vs.interfaceName) }
        let disableIPv6 = !prefixes.contains { $0.isIPv6 }
        try NetworkNamespace.withNamespace(vs.namespace) {
            let socket = try RouteSocket(namespace: vs.namespace)
            guard let now = try socket.info(currentName) else {
                throw SystemError(operation: operation, errno: ENODEV, context: context, detail: "no such interface")
            }
            try socket.setUp("lo", true)
            try socket.apply(LinkConfig(name: currentName, newName: currentName == vs.interfaceName ? nil : vs.interfaceName,
                                        mac: vs.mac == now.mac ? nil : vs.mac, mtu: vs.mtu == now.mtu ? nil : vs.mtu),
                             prefixes: prefixes)
            if disableIPv6 { try writeSysctl("net/ipv6/conf/\(vs.interfaceName)/disable_ipv6", "1") }
            try socket.setUp(vs.interfaceName, true)
        }
    }

    /// Deletes the virtual system's namespace. The kernel destroys the virtual links in it
    /// (a TAP netdev goes with it). Errors are ignored: a missing namespace is already gone.
    public static func teardown(namespace: String) {
        try? NetworkNamespace.delete(namespace)
    }

    // MARK: private

    /// Best effort: bring the link down, give it its old name back and return it home.
    private static func moveBack(tapName: String, currentNames: [String], from namespace: String, to home: Int32) {
        _ = try? NetworkNamespace.withNamespace(namespace) {
            let socket = try RouteSocket(namespace: namespace)
            guard let name = currentNames.first(where: { (try? socket.info($0)) != nil }) else { return }
            try? socket.setUp(name, false)
            if name != tapName { try socket.rename(name, to: tapName) }
            try socket.move(tapName, toNamespaceFD: home, operation: "move link back", context: quoted(tapName))
        }
    }

    /// Writes /proc/sys/KEY from the calling thread (whose network namespace decides which
    /// per-namespace net.* sysctls it sees). A missing key (no IPv6 in the kernel) is ignored.
    static func writeSysctl(_ key: String, _ value: String) throws {
        let path = "/proc/sys/" + key
        let fd = retryingEINTR { open(path, O_WRONLY | O_CLOEXEC) }
        if fd < 0 {
            let code = errno
            if code == ENOENT { return }
            throw SystemError(operation: "write sysctl", errno: code, context: path)
        }
        defer { _ = Glibc.close(fd) }
        let bytes = Array((value + "\n").utf8)
        _ = try syscall("write sysctl", path) { bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) } }
    }
}
