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
// Offloads (issue 7; the frame-level design is in VSwitchPacket/Offload.swift)
// - A TAP port with offloads (the default; topology Port/@Offload, `add-port --offload`,
//   `vswitchd --offloads off` forces all off) is opened with IFF_VNET_HDR, then TUNSETVNETHDRSZ 12
//   and TUNSETOFFLOAD CSUM|TSO4|TSO6|TSO_ECN, plus USO4|USO6 where the kernel has them (PortEntry.uso;
//   `TapDevice.enableOffloads` falls back without on EINVAL). The virtual system's
//   kernel then hands the switch TCP super-frames of up to 64 KB with partial checksums and takes
//   them back, so a 64 KB burst of a TCP stream costs one read and one write instead of ~45.
//   PortEntry.offload tells the backends to read and write the 12-byte header with every frame
//   (in the same read()/write() or io_uring SQE: the header sits just in front of the frame).
// - Not asked for: UFO/USO (UDP is never segmented by the switch), so UDP stays MTU-sized.
// - Netdev ports ask for PACKET_VNET_HDR on their RX ring (TPACKET_V2 or V3): partial checksums and GSO
//   frames from the interface's peer are taken with their metadata; on TX a GSO frame is sent as
//   one unit behind its header through that socket (`NetdevRing.sendOffloaded`).
// - Memory: with offloads the daemon's batch buffers hold 64 KiB frames (64 × 65.6 KB ≈ 4.2 MB
//   per forwarding thread); `--offloads off` keeps them at MTU size.
//
// Threads
// - All functions are synchronous and block the caller until done (a namespace switch costs a
//   thread creation, ~50 µs). Call them from the control thread, or from any thread that may
//   block; they are safe to call concurrently with each other.
// - A `TapDevice` may be shared between threads (`@unchecked Sendable`): its fd is read and
//   written by forwarding threads while the control thread may `close()` or `destroy()` it
//   once those threads have stopped using the fd. `close()` is idempotent and thread-safe.
