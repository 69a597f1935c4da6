// NetworkNamespace: named network namespaces, interoperable with `ip netns`.
// A namespace "x" is the file /run/netns/x with the namespace bind-mounted on it, made
// exactly as iproute2 does (the run directory is a shared mount point so the mount propagates).

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import CVSwitchShim

public enum NetworkNamespace {
    /// Where named namespaces live (iproute2's NETNS_RUN_DIR).
    public static let runDirectory = "/run/netns"

    /// The bind-mount path of namespace `name`.
    public static func path(_ name: String) -> String { runDirectory + "/" + name }

    /// Creates namespace `name` like `ip netns add NAME`. Throws if it already exists.
    public static func create(_ name: String) throws {
        let operation = "create network namespace"
        let context = quoted(name)
        try validate(name, operation: operation)
        try prepareRunDirectory(operation: operation, context: context)

        let nsPath = path(name)
        var fd = retryingEINTR { open(nsPath, O_RDONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0) }
        if fd < 0 && errno == EEXIST && !isNamespaceMount(nsPath) {
            // A bare file, no namespace on it: what a creation killed between its two steps leaves (ours or
            // `ip netns add`'s). It names nothing; reclaim it.
            _ = unlink(nsPath)
            fd = retryingEINTR { open(nsPath, O_RDONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0) }
        }
        if fd < 0 {
            let code = errno
            if code == EEXIST {
                throw SystemError(operation: operation, errno: code, context: context,
                                  message: "network namespace \(context) already exists")
            }
            throw SystemError(operation: operation, errno: code, context: context,
                              detail: "cannot create \(nsPath): " + SystemError.explanation(for: code))
        }
        _ = Glibc.close(fd)

        do {
            try DedicatedThread.run(name: "vsw-netns-add") {
                _ = try syscall(operation, context, detail: { "unshare(CLONE_NEWNET) failed: " + SystemError.explanation(for: $0) }) {
                    vsw_unshare(VSW_CLONE_NEWNET)
                }
                _ = try syscall(operation, context, detail: { "cannot bind-mount it on \(nsPath): " + SystemError.explanation(for: $0) }) {
                    vsw_mount_bind("/proc/thread-self/ns/net", nsPath, 0)
                }
            }
        } catch {
            _ = unlink(nsPath)
            throw error
        }
    }

    /// Deletes namespace `name` like `ip netns delete NAME` (lazy unmount, then unlink). The
    /// kernel frees the namespace, and the virtual links in it, once nothing else holds it.
    public static func delete(_ name: String) throws {
        let operation = "delete network namespace"
        let context = quoted(name)
        try validate(name, operation: operation)
        let nsPath = path(name)
        guard access(nsPath, F_OK) == 0 else {   // a bare file (no namespace on it) is removed too
            throw SystemError(operation: operation, errno: ENOENT, context: context, detail: "no such network namespace")
        }
        if retryingEINTR({ vsw_umount_detach(nsPath) }) != 0 {
            let code = errno
            // EINVAL: not a mount point (a stale file): removing it is all that is left to do.
            if code != EINVAL {
                throw SystemError(operation: operation, errno: code, context: context,
                                  detail: "cannot unmount \(nsPath): " + SystemError.explanation(for: code))
            }
        }
        _ = try syscall(operation, context, detail: { "cannot remove \(nsPath): " + SystemError.explanation(for: $0) }) {
            unlink(nsPath)
        }
    }

    /// Whether namespace `name` exists: its file in /run/netns has a namespace mounted on it. A bare file is
    /// what a creation killed between creating the file and mounting the namespace leaves: no namespace can be
    /// entered through it (`ip netns exec` fails with EINVAL), and `create` reclaims it.
    public static func exists(_ name: String) -> Bool {
        guard (try? validate(name, operation: "")) != nil else { return false }
        return isNamespaceMount(path(name))
    }

    /// Whether `path` is a namespace bind mount (nsfs).
    static func isNamespaceMount(_ path: String) -> Bool { vsw_is_nsfs(path) == 1 }

    /// The names in /run/netns, sorted.
    public static func list() -> [String] {
        guard let dir = opendir(runDirectory) else { return [] }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(cString: raw.bindMemory(to: CChar.self).baseAddress!)
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names.sorted()
    }

    /// Runs `body` on a fresh dedicated thread that has entered namespace `name`, waits for it
    /// and returns its result (or rethrows its error). The caller's thread is never switched.
    public static func withNamespace<T>(_ name: String, _ body: () throws -> T) throws -> T {
        let operation = "enter network namespace"
        let context = quoted(name)
        try validate(name, operation: operation)
        let nsPath = path(name)
        let fd = retryingEINTR { open(nsPath, O_RDONLY | O_CLOEXEC) }
        if fd < 0 {
            let code = errno
            throw SystemError(operation: operation, errno: code, context: context,
                              detail: code == ENOENT ? "no such network namespace" : nil)
        }
        defer { _ = Glibc.close(fd) }
        return try DedicatedThread.run(name: "vsw-netns") {
            _ = try syscall(operation, context, detail: { code in
                code == EINVAL ? "\(nsPath) is not a network namespace (a stale entry? remove it with `ip netns delete \(name)`)" : nil
            }) { vsw_setns(fd, VSW_CLONE_NEWNET) }
            return try body()
        }
    }

    /// Runs `body` in namespace `name`, or directly on the calling thread when `name` is nil.
    static func run<T>(in name: String?, _ body: () throws -> T) throws -> T {
        guard let name else { return try body() }
        return try withNamespace(name, body)
    }

    /// Opens the calling thread's own network namespace (to come back to it later).
    static func openCurrent() throws -> Int32 {
        try syscall("open the current network namespace", "") {
            open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC)
        }
    }

    // MARK: private

    private static func validate(_ name: String, operation: String) throws {
        let bad = name.isEmpty || name == "." || name == ".." || name.contains("/")
            || name.utf8.count >= Int(NAME_MAX) || name.utf8.contains(0)
        if bad {
            throw SystemError(operation: operation, errno: EINVAL, context: quoted(name),
                              detail: "invalid namespace name (no '/', not '.' or '..', under 255 bytes)")
        }
    }

    /// mkdir -p /run/netns, and make it a shared mount point (bind-mounting it onto itself
    /// first if it is not a mount point yet), like iproute2.
    private static func prepareRunDirectory(operation: String, context: String) throws {
        for dir in ["/run", runDirectory] where mkdir(dir, 0o755) != 0 && errno != EEXIST {
            let code = errno
            throw SystemError(operation: operation, errno: code, context: context,
                              detail: "cannot create \(dir): " + SystemError.explanation(for: code))
        }
        var madeMountPoint = false
        while retryingEINTR({ vsw_mount_make_shared(runDirectory) }) != 0 {
            let code = errno
            guard code == EINVAL, !madeMountPoint else {
                throw SystemError(operation: operation, errno: code, context: context,
                                  detail: "mount --make-shared \(runDirectory) failed: " + SystemError.explanation(for: code))
            }
            _ = try syscall(operation, context, detail: { "mount --rbind \(runDirectory) \(runDirectory) failed: " + SystemError.explanation(for: $0) }) {
                vsw_mount_bind(runDirectory, runDirectory, 1)
            }
            madeMountPoint = true
        }
    }
}
