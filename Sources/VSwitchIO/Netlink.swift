// Netlink: link configuration through rtnetlink (libnl-route-3), never by running `ip`.
// Every call opens its own libnl socket on the thread that needs it — inside the requested
// namespace, on a dedicated thread (see NetworkNamespace.withNamespace) — and closes it
// before returning. Kernel errors keep their errno and the kernel's extended-ACK message
// when there is one, otherwise libnl's message (nl_geterror).

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import CLibNL
import VSwitchPacket

/// What to change on one link. `nil` / empty fields are left as they are.
public struct LinkConfig: Sendable, Equatable {
    /// The link's current name.
    public var name: String
    /// Rename the link (it is brought down for the rename and back up if it was up).
    public var newName: String?
    public var mac: MACAddress?
    public var mtu: Int?
    /// Admin state to set last.
    public var up: Bool?
    /// Addresses to add, in CIDR form ("10.0.0.1/24", "fd00::1/64"); ones present are kept.
    public var addresses: [String]

    public init(name: String, newName: String? = nil, mac: MACAddress? = nil, mtu: Int? = nil,
                up: Bool? = nil, addresses: [String] = []) {
        self.name = name
        self.newName = newName
        self.mac = mac
        self.mtu = mtu
        self.up = up
        self.addresses = addresses
    }
}

/// RFC 2863 operational state, as the kernel reports it (IF_OPER_*).
public enum OperState: String, Sendable {
    case unknown, notPresent = "notpresent", down, lowerLayerDown = "lowerlayerdown", testing, dormant, up

    init(kernel value: UInt8) {
        switch value {
        case 1: self = .notPresent
        case 2: self = .down
        case 3: self = .lowerLayerDown
        case 4: self = .testing
        case 5: self = .dormant
        case 6: self = .up
        default: self = .unknown
        }
    }
}

/// A snapshot of one link as the kernel reports it.
public struct LinkInfo: Sendable, Equatable {
    public var index: Int32
    public var name: String
    public var mtu: Int
    public var mac: MACAddress?
    /// Administratively up (IFF_UP).
    public var isUp: Bool
    /// Carrier present (IFF_LOWER_UP; the kernel reports it only while the link is up).
    /// For a TAP: a file descriptor is attached.
    public var hasCarrier: Bool
    /// Note: an attached, up TAP reports `.unknown` (the tun driver does not drive RFC 2863
    /// state); use `isOperational`.
    public var operState: OperState

    /// Up, with carrier, and not reported down: what a switch port should call "link up".
    public var isOperational: Bool {
        isUp && hasCarrier && (operState == .up || operState == .unknown)
    }
}

public enum Netlink {
    /// The interface index of `name` (in `namespace`, or the caller's), or nil if absent.
    public static func interfaceIndex(_ name: String, inNamespace namespace: String? = nil) -> Int32? {
        let index = (try? NetworkNamespace.run(in: namespace) { if_nametoindex(name) }) ?? 0
        return index == 0 ? nil : Int32(bitPattern: index)
    }

    /// Whether a link called `name` exists (in `namespace`, or the caller's).
    public static func linkExists(_ name: String, inNamespace namespace: String? = nil) -> Bool {
        interfaceIndex(name, inNamespace: namespace) != nil
    }

    /// The kernel's view of link `name`, or nil if there is none.
    public static func link(_ name: String, inNamespace namespace: String? = nil) throws -> LinkInfo? {
        try NetworkNamespace.run(in: namespace) {
            let socket = try RouteSocket(namespace: namespace)
            return try socket.info(name)
        }
    }

    /// The operational state of `name`, or nil if there is no such link.
    public static func operState(_ name: String, inNamespace namespace: String? = nil) -> OperState? {
        (try? link(name, inNamespace: namespace))??.operState
    }

    /// Moves link `name` from the caller's namespace into namespace `target` (`ip link set
    /// NAME netns TARGET`). The link arrives down. A TAP's fd keeps working.
    public static func moveLink(_ name: String, toNamespace target: String) throws {
        let operation = "move link"
        let context = "\(quoted(name)) into network namespace \(quoted(target))"
        let nsPath = NetworkNamespace.path(target)
        let fd = retryingEINTR { open(nsPath, O_RDONLY | O_CLOEXEC) }
        if fd < 0 {
            let code = errno
            throw SystemError(operation: operation, errno: code, context: context,
                              detail: code == ENOENT ? "no such network namespace" : nil)
        }
        defer { _ = Glibc.close(fd) }
        let socket = try RouteSocket(namespace: nil)
        try socket.move(name, toNamespaceFD: fd, operation: operation, context: context)
    }

    /// Applies `config` to a link in `namespace` (nil: the caller's namespace): rename, MTU,
    /// MAC, addresses, then admin state. Inside a namespace, also brings `lo` up.
    public static func configure(_ config: LinkConfig, inNamespace namespace: String? = nil) throws {
        let prefixes = try config.addresses.map { try IPPrefix(parsing: $0, for: config.newName ?? config.name) }
        try NetworkNamespace.run(in: namespace) {
            let socket = try RouteSocket(namespace: namespace)
            if namespace != nil { try socket.setUp("lo", true) }
            try socket.apply(config, prefixes: prefixes)
        }
    }

    /// Sets the admin state of `name` (`ip link set NAME up|down`).
    public static func setUp(_ name: String, _ up: Bool, inNamespace namespace: String? = nil) throws {
        try NetworkNamespace.run(in: namespace) {
            try RouteSocket(namespace: namespace).setUp(name, up)
        }
    }

    /// Sets the MTU of `name`.
    public static func setMTU(_ name: String, _ mtu: Int, inNamespace namespace: String? = nil) throws {
        try NetworkNamespace.run(in: namespace) {
            try RouteSocket(namespace: namespace).setMTU(name, mtu)
        }
    }

    /// Deletes link `name` (`ip link delete NAME`).
    public static func deleteLink(_ name: String, inNamespace namespace: String? = nil) throws {
        try NetworkNamespace.run(in: namespace) {
            try RouteSocket(namespace: namespace).delete(name)
        }
    }
}

// MARK: - the per-call libnl socket

/// Where the last NLMSG_ERROR of a request is recorded (raw errno and extended-ACK text).
private final class ErrorCapture {
    var code: Int32 = 0
    var message: String?
    func reset() { code = 0; message = nil }
}

private let flagUp: UInt32 = 0x1          // IFF_UP
private let flagLowerUp: UInt32 = 0x10000 // IFF_LOWER_UP
private let solNetlink: Int32 = 270       // SOL_NETLINK
private let netlinkExtAck: Int32 = 11     // NETLINK_EXT_ACK

/// A libnl NETLINK_ROUTE socket living for one operation, on one thread. Not Sendable.
final class RouteSocket {
    private let sock: OpaquePointer
    private let capture = ErrorCapture()
    /// "" or ` in network namespace "x"`, appended to error contexts.
    let location: String

    init(namespace: String?) throws {
        location = namespace.map { " in network namespace \(quoted($0))" } ?? ""
        guard let sock = nl_socket_alloc() else {
            throw SystemError(operation: "open rtnetlink socket", errno: ENOMEM, context: location)
        }
        let rc = nl_connect(sock, NETLINK_ROUTE)
        if rc < 0 {
            nl_socket_free(sock)
            throw SystemError(operation: "open rtnetlink socket", errno: Self.errno(fromLibNL: rc),
                              context: location.isEmpty ? "" : location.dropFirst().description,
                              detail: String(cString: nl_geterror(rc)))
        }
        self.sock = sock
        var one: Int32 = 1
        _ = setsockopt(nl_socket_get_fd(sock), solNetlink, netlinkExtAck, &one, socklen_t(MemoryLayout<Int32>.size))
        _ = nl_socket_modify_err_cb(sock, NL_CB_CUSTOM, { _, err, arg in
            guard let err, let arg else { return Int32(NL_STOP.rawValue) }
            let capture = Unmanaged<ErrorCapture>.fromOpaque(arg).takeUnretainedValue()
            capture.code = -err.pointee.error
            capture.message = extendedAckMessage(err)
            return Int32(NL_STOP.rawValue) // libnl then returns its usual error code
        }, Unmanaged.passUnretained(capture).toOpaque())
    }

    deinit {
        nl_close(sock)
        nl_socket_free(sock)
    }

    /// Turns a negative libnl return code into a SystemError, preferring the kernel's errno
    /// and extended-ACK message; `details` explains errnos the kernel sends without a message.
    func failure(_ rc: Int32, _ operation: String, _ context: String, details: [Int32: String] = [:]) -> SystemError {
        let code = capture.code != 0 ? capture.code : Self.errno(fromLibNL: rc)
        let detail: String?
        if let kernel = capture.message, !kernel.isEmpty { detail = kernel }
        else if let special = details[code] { detail = special }
        else if code == EPERM || code == EACCES { detail = nil }
        else { detail = String(cString: nl_geterror(rc)).lowercasedFirst }
        return SystemError(operation: operation, errno: code, context: context + location, detail: detail)
    }

    static func errno(fromLibNL rc: Int32) -> Int32 {
        switch -rc {
        case NLE_INTR: return EINTR
        case NLE_BAD_SOCK: return EBADF
        case NLE_AGAIN: return EAGAIN
        case NLE_NOMEM: return ENOMEM
        case NLE_EXIST: return EEXIST
        case NLE_INVAL: return EINVAL
        case NLE_RANGE: return ERANGE
        case NLE_MSGSIZE: return EMSGSIZE
        case NLE_OPNOTSUPP: return EOPNOTSUPP
        case NLE_AF_NOSUPPORT: return EAFNOSUPPORT
        case NLE_OBJ_NOTFOUND, NLE_NODEV: return ENODEV
        case NLE_NOADDR: return EADDRNOTAVAIL
        case NLE_BUSY: return EBUSY
        case NLE_NOACCESS: return EACCES
        case NLE_PERM: return EPERM
        case NLE_PROTO_MISMATCH: return EPROTONOSUPPORT
        default: return EIO
        }
    }

    // MARK: links

    /// Fetches link `name` (caller must `rtnl_link_put` it), or nil if it does not exist.
    private func fetch(_ name: String, operation: String) throws -> OpaquePointer? {
        capture.reset()
        var link: OpaquePointer?
        let rc = rtnl_link_get_kernel(sock, 0, name, &link)
        if rc < 0 {
            let code = capture.code != 0 ? capture.code : Self.errno(fromLibNL: rc)
            if code == ENODEV || code == ENOENT { return nil }
            throw failure(rc, operation, quoted(name))
        }
        return link
    }

    private func require(_ name: String, operation: String, context: String) throws -> OpaquePointer {
        guard let link = try fetch(name, operation: operation) else {
            throw SystemError(operation: operation, errno: ENODEV, context: context + location, detail: "no such interface")
        }
        return link
    }

    func info(_ name: String) throws -> LinkInfo? {
        guard let link = try fetch(name, operation: "read link") else { return nil }
        defer { rtnl_link_put(link) }
        let flags = rtnl_link_get_flags(link)
        var mac: MACAddress?
        if let addr = rtnl_link_get_addr(link), nl_addr_get_len(addr) == 6, let raw = nl_addr_get_binary_addr(addr) {
            let b = raw.assumingMemoryBound(to: UInt8.self)
            mac = MACAddress(b[0], b[1], b[2], b[3], b[4], b[5])
        }
        return LinkInfo(index: Int32(rtnl_link_get_ifindex(link)),
                        name: rtnl_link_get_name(link).map { String(cString: $0) } ?? name,
                        mtu: Int(rtnl_link_get_mtu(link)), mac: mac,
                        isUp: flags & flagUp != 0, hasCarrier: flags & flagLowerUp != 0,
                        operState: OperState(kernel: rtnl_link_get_operstate(link)))
    }

    /// Sends one RTM_NEWLINK/SETLINK change for link `name`, filled in by `fill`.
    private func change(_ name: String, operation: String, context: String, details: [Int32: String] = [:],
                        _ fill: (OpaquePointer) throws -> Void) throws {
        let orig = try require(name, operation: operation, context: context)
        defer { rtnl_link_put(orig) }
        guard let changes = rtnl_link_alloc() else {
            throw SystemError(operation: operation, errno: ENOMEM, context: context + location)
        }
        defer { rtnl_link_put(changes) }
        try fill(changes)
        capture.reset()
        let rc = rtnl_link_change(sock, orig, changes, 0)
        if rc < 0 { throw failure(rc, operation, context, details: details) }
    }

    func setUp(_ name: String, _ up: Bool) throws {
        try change(name, operation: up ? "bring up link" : "bring down link", context: quoted(name)) { changes in
            if up { rtnl_link_set_flags(changes, flagUp) } else { rtnl_link_unset_flags(changes, flagUp) }
        }
    }

    func setMTU(_ name: String, _ mtu: Int) throws {
        let context = "of \(quoted(name)) to \(mtu)"
        guard mtu > 0, mtu <= Int(UInt32.max) else {
            throw SystemError(operation: "set MTU", errno: EINVAL, context: context + location, detail: "MTU out of range")
        }
        try change(name, operation: "set MTU", context: context) { rtnl_link_set_mtu($0, UInt32(mtu)) }
    }

    func setMAC(_ name: String, _ mac: MACAddress) throws {
        let context = "of \(quoted(name)) to \(mac)"
        try change(name, operation: "set MAC address", context: context,
                   details: [EADDRNOTAVAIL: "not a usable unicast MAC address"]) { changes in
            let octets = mac.octets
            guard let addr = octets.withUnsafeBytes({ nl_addr_build(AF_LLC, $0.baseAddress, 6) }) else {
                throw SystemError(operation: "set MAC address", errno: ENOMEM, context: context + location)
            }
            rtnl_link_set_addr(changes, addr) // takes its own reference
            nl_addr_put(addr)
        }
    }

    func rename(_ name: String, to newName: String) throws {
        let operation = "rename link"
        let context = "\(quoted(name)) to \(quoted(newName))"
        try validateInterfaceName(newName, operation: operation)
        try change(name, operation: operation, context: context,
                   details: [EEXIST: "an interface named \(quoted(newName)) already exists",
                             EBUSY: "the link must be down to be renamed"]) { rtnl_link_set_name($0, newName) }
    }

    func move(_ name: String, toNamespaceFD fd: Int32, operation: String, context: String) throws {
        try change(name, operation: operation, context: context,
                   details: [EEXIST: "an interface named \(quoted(name)) already exists there",
                             EINVAL: "the link cannot change namespace (e.g. lo, or a device marked netns-local)"]) {
            rtnl_link_set_ns_fd($0, fd)
        }
    }

    func delete(_ name: String) throws {
        let operation = "delete link"
        let link = try require(name, operation: operation, context: quoted(name))
        defer { rtnl_link_put(link) }
        capture.reset()
        let rc = rtnl_link_delete(sock, link)
        if rc < 0 {
            throw failure(rc, operation, quoted(name),
                          details: [EOPNOTSUPP: "this kind of link cannot be deleted through rtnetlink"])
        }
    }

    /// Index of `name`, or a "no such interface" error.
    func index(_ name: String, operation: String, context: String) throws -> Int32 {
        let link = try require(name, operation: operation, context: context)
        defer { rtnl_link_put(link) }
        return Int32(rtnl_link_get_ifindex(link))
    }

    // MARK: addresses

    /// Adds `prefix` to link `name`; an address already present is not an error.
    func addAddress(_ prefix: IPPrefix, to name: String) throws {
        let operation = "add address"
        let context = "\(prefix.text) to \(quoted(name))"
        let ifindex = try index(name, operation: operation, context: context)
        guard let addr = rtnl_addr_alloc() else {
            throw SystemError(operation: operation, errno: ENOMEM, context: context + location)
        }
        defer { rtnl_addr_put(addr) }
        rtnl_addr_set_ifindex(addr, ifindex)
        let local = try prefix.nlAddress(bytes: prefix.bytes, operation: operation, context: context + location)
        defer { nl_addr_put(local) }
        var rc = rtnl_addr_set_local(addr, local)
        if rc >= 0, let broadcast = prefix.ipv4Broadcast {
            let b = try prefix.nlAddress(bytes: broadcast, operation: operation, context: context + location)
            defer { nl_addr_put(b) }
            rc = rtnl_addr_set_broadcast(addr, b)
        }
        if rc < 0 { throw failure(rc, operation, context) }
        capture.reset()
        rc = rtnl_addr_add(sock, addr, 0)
        if rc < 0 {
            let code = capture.code != 0 ? capture.code : Self.errno(fromLibNL: rc)
            if code == EEXIST { return }
            throw failure(rc, operation, context)
        }
    }

    // MARK: a whole LinkConfig

    /// Rename, MTU, MAC, addresses, admin state — each its own request, for precise errors.
    func apply(_ config: LinkConfig, prefixes: [IPPrefix]) throws {
        var name = config.name
        var restoreUp = false
        if let newName = config.newName, newName != name {
            guard let current = try info(name) else {
                throw SystemError(operation: "rename link", errno: ENODEV,
                                  context: "\(quoted(name)) to \(quoted(newName))" + location, detail: "no such interface")
            }
            if current.isUp {
                try setUp(name, false)
                restoreUp = true
            }
            try rename(name, to: newName)
            name = newName
        }
        if let mtu = config.mtu { try setMTU(name, mtu) }
        if let mac = config.mac { try setMAC(name, mac) }
        for prefix in prefixes { try addAddress(prefix, to: name) }
        if let up = config.up { try setUp(name, up) } else if restoreUp { try setUp(name, true) }
    }
}

/// The kernel's extended-ACK message (NLMSGERR_ATTR_MSG) in an NLMSG_ERROR, if any.
private func extendedAckMessage(_ err: UnsafeMutablePointer<nlmsgerr>) -> String? {
    let headerLength = 16 // NLMSG_HDRLEN
    let raw = UnsafeRawPointer(err) - headerLength
    let header = raw.loadUnaligned(as: nlmsghdr.self)
    let total = Int(header.nlmsg_len)
    guard header.nlmsg_flags & UInt16(0x200) != 0 else { return nil } // NLM_F_ACK_TLVS
    let align = { (n: Int) in (n + 3) & ~3 }
    var offset = headerLength + 4 // nlmsgerr.error
    if header.nlmsg_flags & UInt16(0x100) != 0 { // NLM_F_CAPPED: only the original header
        offset += headerLength
    } else {
        offset += align(Int(err.pointee.msg.nlmsg_len))
    }
    while offset + 4 <= total {
        let length = Int(raw.loadUnaligned(fromByteOffset: offset, as: UInt16.self))
        let type = raw.loadUnaligned(fromByteOffset: offset + 2, as: UInt16.self) & 0x3FFF
        guard length >= 4, offset + length <= total else { return nil }
        if type == 1, length > 4 { // NLMSGERR_ATTR_MSG
            let bytes = UnsafeRawBufferPointer(start: raw + offset + 4, count: length - 4)
            let text = bytes.prefix { $0 != 0 }
            return String(decoding: text, as: UTF8.self)
        }
        offset += align(length)
    }
    return nil
}

// MARK: - addresses in CIDR form

/// An IPv4 or IPv6 address with prefix length, parsed from "10.0.0.1/24" or "fd00::1/64"
/// (no prefix: /32 or /128).
struct IPPrefix: Sendable, Equatable {
    let family: Int32
    let bytes: [UInt8]
    let length: Int
    let text: String

    var isIPv6: Bool { family == AF_INET6 }

    init(parsing text: String, for interface: String) throws {
        func invalid(_ why: String) -> SystemError {
            SystemError(operation: "add address", errno: EINVAL, context: "\(quoted(text)) to \(quoted(interface))",
                        detail: why + " (expected CIDR like 10.0.0.1/24 or fd00::1/64)")
        }
        let parts = text.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
        let host = String(parts[0])
        var buffer = [UInt8](repeating: 0, count: 16)
        if inet_pton(AF_INET, host, &buffer) == 1 {
            family = AF_INET
            bytes = Array(buffer[0..<4])
        } else if inet_pton(AF_INET6, host, &buffer) == 1 {
            family = AF_INET6
            bytes = buffer
        } else {
            throw invalid("not an IPv4 or IPv6 address")
        }
        let maxLength = bytes.count * 8
        if parts.count == 2 {
            guard let n = Int(parts[1]), (0...maxLength).contains(n) else {
                throw invalid("prefix length must be 0–\(maxLength)")
            }
            length = n
        } else {
            length = maxLength
        }
        self.text = text
    }

    /// The directed broadcast address for IPv4 prefixes up to /30 (like `ip addr add … brd +`).
    var ipv4Broadcast: [UInt8]? {
        guard family == AF_INET, length <= 30 else { return nil }
        let value = bytes.reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
        let hostMask: UInt32 = length == 0 ? .max : (UInt32.max >> UInt32(length))
        let b = value | hostMask
        return [UInt8(b >> 24), UInt8(b >> 16 & 0xFF), UInt8(b >> 8 & 0xFF), UInt8(b & 0xFF)]
    }

    /// A new libnl address (caller must `nl_addr_put` it) with this prefix length.
    func nlAddress(bytes: [UInt8], operation: String, context: String) throws -> OpaquePointer {
        guard let addr = bytes.withUnsafeBytes({ nl_addr_build(family, $0.baseAddress, $0.count) }) else {
            throw SystemError(operation: operation, errno: ENOMEM, context: context)
        }
        nl_addr_set_prefixlen(addr, Int32(length))
        return addr
    }
}

extension String {
    /// "Object exists" → "object exists" (libnl's messages start with a capital).
    var lowercasedFirst: String {
        guard let first else { return self }
        return first.lowercased() + dropFirst()
    }
}
