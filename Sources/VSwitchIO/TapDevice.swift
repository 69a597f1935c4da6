// TapDevice: a TAP netdev and the /dev/net/tun file descriptor attached to it
// (IFF_TAP | IFF_NO_PI, non-blocking, close-on-exec; with `.vnetHeader` and `enableOffloads`,
// IFF_VNET_HDR + TUNSETVNETHDRSZ 12 + TUNSETOFFLOAD CSUM|TSO4|TSO6|TSO_ECN[|USO4|USO6]: see VSwitchPacket/Offload.swift).

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import CVSwitchShim

public final class TapDevice: @unchecked Sendable {
    /// Extra TUNSETIFF flags.
    public struct Options: OptionSet, Sendable, Hashable {
        public let rawValue: Int32
        public init(rawValue: Int32) { self.rawValue = rawValue }
        /// IFF_VNET_HDR: every frame is preceded by a virtio-net header.
        public static let vnetHeader = Options(rawValue: Int32(VSW_IFF_VNET_HDR))
        /// IFF_MULTI_QUEUE: several fds may attach to one device (one per queue).
        public static let multiQueue = Options(rawValue: Int32(VSW_IFF_MULTI_QUEUE))
    }

    /// The interface name the kernel gave the device (in the namespace it was created in;
    /// moving the netdev elsewhere or renaming it does not change this value).
    public let name: String
    /// The non-blocking TAP file descriptor. Valid until `close()` or `destroy()`.
    public let fd: Int32

    private let lock = Lock()
    private var closed = false

    private init(name: String, fd: Int32) {
        self.name = name
        self.fd = fd
    }

    deinit { close() }

    /// Creates a new TAP device called `name`. Fails — without touching it — if any interface
    /// of that name already exists in the caller's network namespace (checked first, and again
    /// atomically by the kernel through IFF_TUN_EXCL, so an existing persistent TAP is never
    /// silently attached). With `persistent`, the netdev outlives the fd (see `adopt`).
    public static func create(name: String, persistent: Bool = false, options: Options = []) throws -> TapDevice {
        let operation = "create TAP"
        let context = quoted(name)
        try validateInterfaceName(name, operation: operation)
        if if_nametoindex(name) != 0 {
            throw SystemError(operation: operation, errno: EBUSY, context: context, detail: "interface name already in use")
        }
        let tap = try attach(name: name, flags: Int32(VSW_IFF_TUN_EXCL) | options.rawValue,
                             operation: operation, context: context)
        if persistent {
            do { try tap.setPersistent(true) } catch { tap.close(); throw error }
        }
        return tap
    }

    /// Attaches to an existing persistent TAP device called `name` (one made with
    /// `create(name:persistent: true)`, `ip tuntap add mode tap`, …).
    public static func adopt(name: String, options: Options = []) throws -> TapDevice {
        let operation = "adopt TAP"
        let context = quoted(name)
        try validateInterfaceName(name, operation: operation)
        if if_nametoindex(name) == 0 {
            throw SystemError(operation: operation, errno: ENODEV, context: context, detail: "no such interface")
        }
        return try attach(name: name, flags: options.rawValue, operation: operation, context: context)
    }

    private static func attach(name: String, flags: Int32, operation: String, context: String) throws -> TapDevice {
        var actual = [CChar](repeating: 0, count: Int(VSW_IFNAME_MAX) + 1)
        var step: Int32 = 0
        let fd = retryingEINTR { vsw_tun_attach(name, flags, &actual, &step) }
        guard fd >= 0 else {
            let code = errno
            var detail: String?
            if step == 1 {
                switch code {
                case ENOENT, ENODEV, ENXIO: detail = "/dev/net/tun missing: load the tun module"
                case EPERM, EACCES: detail = "cannot open /dev/net/tun: must run as root (CAP_NET_ADMIN)"
                default: detail = "cannot open /dev/net/tun: " + SystemError.explanation(for: code)
                }
            } else {
                switch code {
                case EBUSY where flags & Int32(VSW_IFF_TUN_EXCL) != 0: detail = "interface name already in use"
                case EBUSY: detail = "already attached to another file descriptor"
                case EINVAL where operation == "adopt TAP":
                    detail = "not a TAP device, or its flags (multi-queue, TUN/TAP) differ"
                case EINVAL: detail = "invalid interface name or flags"
                default: break
                }
            }
            throw SystemError(operation: operation, errno: code, context: context, detail: detail)
        }
        let kernelName = actual.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
        return TapDevice(name: kernelName, fd: fd)
    }

    /// Whether `close()` or `destroy()` has run.
    public var isClosed: Bool { lock.withLock { closed } }

    /// False once the kernel detached the netdev from this fd (its namespace was deleted, or it was
    /// removed with `ip link delete`): TUNGETIFF then fails with EBADFD. One ioctl, no allocation.
    public var isAttached: Bool {
        lock.withLock { !closed && vsw_tun_get_iff(fd, nil, nil) == 0 }
    }

    /// Sets or clears TUNSETPERSIST: a persistent netdev stays after its last fd closes.
    public func setPersistent(_ on: Bool) throws {
        try lock.withLock {
            guard !closed else {
                throw SystemError(operation: on ? "make TAP persistent" : "make TAP non-persistent",
                                  errno: EBADF, context: quoted(name), detail: "the TAP device was closed")
            }
            _ = try syscall(on ? "make TAP persistent" : "make TAP non-persistent", quoted(name)) {
                vsw_tun_set_persist(fd, on ? 1 : 0)
            }
        }
    }

    /// Offloads a TAP opened with `.vnetHeader` asks for: checksum, TSO for IPv4/IPv6 (with ECN).
    public static let tcpOffloads: UInt32 = UInt32(VSW_TUN_F_CSUM | VSW_TUN_F_TSO4 | VSW_TUN_F_TSO6 | VSW_TUN_F_TSO_ECN)
    /// UDP segmentation offload for IPv4/IPv6 (USO, GSO_UDP_L4; Linux 6.2+): asked for on top of
    /// `tcpOffloads` when the kernel has it.
    public static let udpOffloads: UInt32 = UInt32(VSW_TUN_F_USO4 | VSW_TUN_F_USO6)

    /// TUNSETVNETHDRSZ `headerSize` and TUNSETOFFLOAD `flags` (the device must have been opened with
    /// `.vnetHeader`): the kernel then hands the switch GSO super-frames with partial checksums and
    /// takes them back.
    /// With `udp` the TAP also gets USO when the kernel has it (TUNSETOFFLOAD refuses unknown flags
    /// with EINVAL: then it is asked again without). Returns whether USO is on.
    @discardableResult
    public func enableOffloads(headerSize: Int32 = 12, flags: UInt32 = TapDevice.tcpOffloads, udp: Bool = true) throws -> Bool {
        try lock.withLock {
            guard !closed else { throw SystemError(operation: "enable TAP offloads", errno: EBADF, context: quoted(name)) }
            _ = try syscall("set the TAP's virtio-net header size", quoted(name)) { vsw_tun_set_vnet_hdr_size(fd, headerSize) }
            if udp && vsw_tun_set_offload(fd, flags | TapDevice.udpOffloads) == 0 { return true }
            _ = try syscall("enable TAP offloads (TUNSETOFFLOAD)", quoted(name)) { vsw_tun_set_offload(fd, flags) }
            return false
        }
    }

    /// TUNSETOFFLOAD 0: the device hands over only complete, MTU-sized frames. For a persistent TAP
    /// adopted without `.vnetHeader` that an earlier run had opened with offloads (its netdev would
    /// otherwise keep TSO and checksum offload on).
    public func disableOffloads() throws {
        try lock.withLock {
            guard !closed else { throw SystemError(operation: "disable TAP offloads", errno: EBADF, context: quoted(name)) }
            _ = try syscall("disable TAP offloads (TUNSETOFFLOAD)", quoted(name)) { vsw_tun_set_offload(fd, 0) }
        }
    }

    /// Closes the fd (idempotent). A non-persistent netdev disappears with its last fd.
    public func close() {
        lock.withLock {
            guard !closed else { return }
            closed = true
            _ = Glibc.close(fd) // never retried: Linux releases the fd even on EINTR
        }
    }

    /// Clears persistence and closes the fd, so the kernel removes the netdev (wherever it
    /// lives now). Never throws; idempotent.
    public func destroy() {
        lock.withLock {
            guard !closed else { return }
            closed = true
            _ = vsw_tun_set_persist(fd, 0)
            _ = Glibc.close(fd)
        }
    }

    // MARK: frame I/O (thin wrappers; the forwarding path may use `fd` directly)

    /// Reads one frame. Returns its length, or nil when no frame is waiting (EAGAIN).
    public func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int? {
        let n = retryingEINTR { Glibc.read(fd, buffer.baseAddress, buffer.count) }
        if n >= 0 { return n }
        let code = errno
        if code == EAGAIN || code == EWOULDBLOCK { return nil }
        throw SystemError(operation: "read from TAP", errno: code, context: quoted(name))
    }

    /// Writes one frame. Returns false when the device queue is full (EAGAIN).
    public func write(_ frame: UnsafeRawBufferPointer) throws -> Bool {
        let n = retryingEINTR { Glibc.write(fd, frame.baseAddress, frame.count) }
        if n >= 0 { return true }
        let code = errno
        if code == EAGAIN || code == EWOULDBLOCK { return false }
        throw SystemError(operation: "write to TAP", errno: code, context: quoted(name))
    }

    /// Waits until a frame can be read or `timeoutMilliseconds` pass (negative: forever).
    public func waitReadable(timeoutMilliseconds: Int32) -> Bool {
        var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        return retryingEINTR { poll(&pfd, 1, timeoutMilliseconds) } > 0 && pfd.revents & Int16(POLLIN) != 0
    }
}

/// Checks a Linux interface name the way the kernel does (dev_valid_name): 1–15 bytes,
/// not "." or "..", no '/', ':' or whitespace.
func validateInterfaceName(_ name: String, operation: String) throws {
    let bytes = Array(name.utf8)
    let bad = bytes.isEmpty || bytes.count > Int(VSW_IFNAME_MAX) || name == "." || name == ".."
        || bytes.contains { $0 == UInt8(ascii: "/") || $0 == UInt8(ascii: ":") || $0 <= 0x20 || $0 == 0x7F }
    if bad {
        throw SystemError(operation: operation, errno: EINVAL, context: quoted(name),
                          detail: "invalid interface name (1–15 bytes, no '/', ':' or spaces)")
    }
}
