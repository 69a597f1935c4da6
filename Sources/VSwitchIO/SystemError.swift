// SystemError: one-line, human-readable failures of system calls and rtnetlink requests,
// plus the EINTR retry helpers every wrapper in this module goes through.

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A failed system operation. `description` is one line, e.g.
/// `cannot create TAP "vsw-a1": interface name already in use (EBUSY)`.
public struct SystemError: Error, CustomStringConvertible, Sendable, Equatable {
    /// What was attempted, as a verb phrase: "create TAP", "move link".
    public var operation: String
    /// The errno value (for rtnetlink failures: the kernel's errno when known).
    public var errno: Int32
    /// The object the operation was about, as it should read after the operation:
    /// `"vsw-a1"`, `"eth0" in network namespace "vs1"`. May be empty.
    public var context: String
    /// A more precise reason than the errno's generic text (libnl's or the kernel's message,
    /// or an explanation known at the call site). `nil` uses the errno's explanation.
    public var detail: String?
    /// When set, replaces the whole "cannot <operation> <context>: <reason>" statement.
    public var message: String?

    public init(operation: String, errno: Int32, context: String = "", detail: String? = nil, message: String? = nil) {
        self.operation = operation
        self.errno = errno
        self.context = context
        self.detail = detail
        self.message = message
    }

    /// The plain-language reason: `detail`, or the explanation of `errno`.
    public var reason: String { detail ?? SystemError.explanation(for: errno) }

    /// The symbolic errno name ("EBUSY"), or "errno N" for uncommon values.
    public var errnoName: String { SystemError.name(of: errno) }

    public var description: String {
        let statement = message ?? "cannot \(operation)\(context.isEmpty ? "" : " " + context): \(reason)"
        return "\(statement) (\(errnoName))"
    }

    /// The generic explanation for an errno value.
    public static func explanation(for code: Int32) -> String {
        switch code {
        case EPERM, EACCES: return "must run as root (CAP_NET_ADMIN)"
        default:
            guard let text = strerror(code) else { return "error \(code)" }
            let s = String(cString: text)
            guard let first = s.first else { return s }
            return first.lowercased() + s.dropFirst()
        }
    }

    /// The symbolic name of an errno value.
    public static func name(of code: Int32) -> String {
        switch code {
        case EPERM: return "EPERM"
        case ENOENT: return "ENOENT"
        case ESRCH: return "ESRCH"
        case EINTR: return "EINTR"
        case EIO: return "EIO"
        case ENXIO: return "ENXIO"
        case E2BIG: return "E2BIG"
        case EBADF: return "EBADF"
        case EAGAIN: return "EAGAIN"
        case ENOMEM: return "ENOMEM"
        case EACCES: return "EACCES"
        case EFAULT: return "EFAULT"
        case EBUSY: return "EBUSY"
        case EEXIST: return "EEXIST"
        case EXDEV: return "EXDEV"
        case ENODEV: return "ENODEV"
        case ENOTDIR: return "ENOTDIR"
        case EISDIR: return "EISDIR"
        case EINVAL: return "EINVAL"
        case ENFILE: return "ENFILE"
        case EMFILE: return "EMFILE"
        case ENOTTY: return "ENOTTY"
        case ENOSPC: return "ENOSPC"
        case EROFS: return "EROFS"
        case ERANGE: return "ERANGE"
        case ENAMETOOLONG: return "ENAMETOOLONG"
        case ENOSYS: return "ENOSYS"
        case ENOTEMPTY: return "ENOTEMPTY"
        case ELOOP: return "ELOOP"
        case EBADFD: return "EBADFD"
        case EMSGSIZE: return "EMSGSIZE"
        case EPROTONOSUPPORT: return "EPROTONOSUPPORT"
        case EOPNOTSUPP: return "EOPNOTSUPP"
        case EAFNOSUPPORT: return "EAFNOSUPPORT"
        case EADDRINUSE: return "EADDRINUSE"
        case EADDRNOTAVAIL: return "EADDRNOTAVAIL"
        case ENETDOWN: return "ENETDOWN"
        case ENOBUFS: return "ENOBUFS"
        case ETIMEDOUT: return "ETIMEDOUT"
        case ECONNREFUSED: return "ECONNREFUSED"
        default: return "errno \(code)"
        }
    }
}

/// Calls `body` again while it fails with EINTR (result -1 and errno EINTR). Every system
/// call in this module goes through it; forwarding code may use it too.
@inlinable
public func retryingEINTR<R: BinaryInteger>(_ body: () -> R) -> R {
    while true {
        let r = body()
        if r == -1 && errno == EINTR { continue }
        return r
    }
}

/// Runs a system call through `retryingEINTR` and turns -1 into a `SystemError`.
/// `detail` may refine the reason for particular errno values.
@usableFromInline
func syscall<R: BinaryInteger>(_ operation: String, _ context: String,
                               detail: (Int32) -> String? = { _ in nil },
                               _ body: () -> R) throws(SystemError) -> R {
    let r = retryingEINTR(body)
    if r == -1 {
        let code = errno
        throw SystemError(operation: operation, errno: code, context: context, detail: detail(code))
    }
    return r
}

/// `"name"` — how names appear in error messages.
func quoted(_ s: String) -> String { "\"\(s)\"" }
