// VSwitchIO — the system-facing half of the switch: TAP devices, network namespaces and
// rtnetlink link configuration (through libnl-route-3, never by running `ip`).
//
// Design
// - Control path only. Nothing here is called per frame except, optionally,
//   `TapDevice.read(into:)` / `write(_:)` (thin EINTR-safe wrappers; the forwarding code may
//   just as well use `TapDevice.fd` directly).
// - Every system call goes through `retryingEINTR` and every failure becomes a `SystemError`
//   whose description is one line naming the operation, the object, a plain-language reason
//   and the errno name.
// - Network namespaces are per *thread* on Linux. Anything that must run inside a namespace
//   (`NetworkNamespace.create`, `withNamespace`, `Netlink.*(inNamespace:)`,
//   `VirtualSystemProvisioner.attach`) runs on a fresh, dedicated pthread that enters the
//   namespace and dies afterwards, so no other thread ever changes namespace. Never call
//   `vsw_setns`/`vsw_unshare` from a Swift-concurrency task: tasks hop threads.
// - Each rtnetlink operation opens its own libnl socket on the thread that needs it (inside
//   the right namespace) and closes it before returning; no libnl state is shared.
//
// Threads
// - All functions are synchronous and block the caller until done (a namespace switch costs a
//   thread creation, ~50 µs). Call them from the control thread, or from any thread that may
//   block; they are safe to call concurrently with each other.
// - A `TapDevice` may be shared between threads (`@unchecked Sendable`): its fd is read and
//   written by forwarding threads while the control thread may `close()` or `destroy()` it
//   once those threads have stopped using the fd. `close()` is idempotent and thread-safe.
