// vswitch_shim.h — the few pieces of the Linux C API that Swift cannot import directly:
// function-like ioctl macros (TUNSETIFF & co.), calls that need _GNU_SOURCE (setns, unshare,
// pthread_setaffinity_np), and mount(2) flags. Everything else lives in Swift.
//
// Conventions: functions return 0 (or a file descriptor) on success and -1 with errno set
// on failure, like the system calls they wrap; none of them retries on EINTR (the Swift
// callers do). Nothing here allocates or keeps state.
#ifndef VSWITCH_SHIM_H
#define VSWITCH_SHIM_H

#include <stdint.h>
#include <sys/epoll.h>   // epoll: not in Glibc's Swift module map (PortSetBackend)
#include <sys/types.h>
#include <sys/socket.h>
#include <netpacket/packet.h>

#ifdef __cplusplus
extern "C" {
#endif

// MARK: TUN/TAP ioctl request numbers (function-like macros in <linux/if_tun.h>)
extern const unsigned long VSW_TUNSETIFF;
extern const unsigned long VSW_TUNSETPERSIST;
extern const unsigned long VSW_TUNSETOWNER;
extern const unsigned long VSW_TUNGETIFF;
extern const unsigned long VSW_TUNSETOFFLOAD;
extern const unsigned long VSW_TUNSETVNETHDRSZ;

// MARK: TUNSETIFF flags (same values as <linux/if_tun.h>; checked at compile time in the .c)
enum {
    VSW_IFF_TUN         = 0x0001,
    VSW_IFF_TAP         = 0x0002,
    VSW_IFF_NAPI        = 0x0010,
    VSW_IFF_NO_PI       = 0x1000,
    VSW_IFF_VNET_HDR    = 0x4000,
    VSW_IFF_TUN_EXCL    = 0x8000,
    VSW_IFF_MULTI_QUEUE = 0x0100,
    VSW_IFF_PERSIST     = 0x0800,
};

/// Largest interface name in bytes, without the terminating NUL (IFNAMSIZ - 1).
enum { VSW_IFNAME_MAX = 15 };

/// Opens /dev/net/tun (O_RDWR | O_NONBLOCK | O_CLOEXEC) and attaches it with TUNSETIFF to the
/// TAP `name` using IFF_TAP | IFF_NO_PI | `extra_flags` (e.g. VSW_IFF_TUN_EXCL to refuse an
/// existing device, VSW_IFF_VNET_HDR, VSW_IFF_MULTI_QUEUE). On success returns the fd and, if
/// `actual_name_out` is not NULL, copies the kernel's name for the device into it (it must
/// hold VSW_IFNAME_MAX + 1 bytes). On failure returns -1 with errno from open() or ioctl();
/// `*failed_step_out` (optional) is 1 when open() failed and 2 when TUNSETIFF failed.
int vsw_tun_attach(const char *name, int extra_flags, char *actual_name_out, int *failed_step_out);

/// TUNSETPERSIST: `on` != 0 keeps the netdev alive after the last fd closes.
int vsw_tun_set_persist(int fd, int on);
/// TUNSETOWNER.
int vsw_tun_set_owner(int fd, uid_t owner);
/// TUNSETOFFLOAD flags (<linux/if_tun.h>; checked at compile time in the .c).
enum {
    VSW_TUN_F_CSUM = 0x01, VSW_TUN_F_TSO4 = 0x02, VSW_TUN_F_TSO6 = 0x04, VSW_TUN_F_TSO_ECN = 0x08,
    VSW_TUN_F_UFO = 0x10, VSW_TUN_F_USO4 = 0x20, VSW_TUN_F_USO6 = 0x40,
};
/// TUNSETVNETHDRSZ: the virtio-net header size in front of every frame (10 or 12; needs IFF_VNET_HDR).
int vsw_tun_set_vnet_hdr_size(int fd, int size);
/// TUNSETOFFLOAD: which offloads the device may hand to / accept from the fd (VSW_TUN_F_*).
int vsw_tun_set_offload(int fd, unsigned flags);
/// TUNGETIFF: the attached device's name (VSW_IFNAME_MAX + 1 bytes) and flags.
int vsw_tun_get_iff(int fd, char *name_out, int *flags_out);

// MARK: namespaces and threads (need _GNU_SOURCE)
extern const int VSW_CLONE_NEWNET;
/// setns(2) for the calling thread only.
int vsw_setns(int fd, int nstype);
/// unshare(2) for the calling thread only.
int vsw_unshare(int flags);
/// The kernel thread id of the caller.
pid_t vsw_gettid(void);
/// Enables an io_uring created with IORING_SETUP_R_DISABLED; the caller becomes its single issuer.
int vsw_uring_enable_rings(int ring_fd);
/// Pins the calling thread to one CPU. Returns 0, or an errno value (not -1).
int vsw_pin_thread(int cpu);
/// Confines the calling thread to the `count` CPUs in `cpus` (threads it creates later inherit the set).
/// Returns 0 or an errno value (EINVAL: a CPU number out of range or an empty set).
int vsw_pin_thread_set(const int *cpus, int count);
/// The calling thread's CPU affinity as a bit mask (bit c of byte c/8 = CPU c), `bytes` bytes at most.
/// Returns 0 or an errno value.
int vsw_thread_cpus(unsigned char *mask, int bytes);
/// Names the calling thread (at most 15 bytes are kept). Returns 0 or an errno value.
int vsw_set_thread_name(const char *name);

// MARK: mounts (what `ip netns add/delete` does)
/// mount("", path, "none", MS_SHARED | MS_REC, NULL)
int vsw_mount_make_shared(const char *path);
/// mount(src, dst, "none", MS_BIND | (recursive ? MS_REC : 0), NULL)
int vsw_mount_bind(const char *src, const char *dst, int recursive);
/// umount2(path, MNT_DETACH)
int vsw_umount_detach(const char *path);
/// 1 when `path` is a namespace bind mount (statfs f_type == NSFS_MAGIC), 0 otherwise (or on error).
int vsw_is_nsfs(const char *path);

// MARK: interfaces
/// SIOCGIFFLAGS on `name` in the calling thread's network namespace: the IFF_* flags, or -1.
int vsw_if_get_flags(const char *name);

// MARK: futex (the snapshot publisher sleeps through a grace period instead of spinning, issue 3)
/// FUTEX_WAIT_PRIVATE on `addr` while it holds `expected`, for at most `timeout_ns`: 0 when woken, -1 with
/// errno EAGAIN (the value differed), ETIMEDOUT or EINTR.
int vsw_futex_wait(uint32_t *addr, uint32_t expected, int64_t timeout_ns);
/// FUTEX_WAKE_PRIVATE: wakes up to `count` threads waiting on `addr`; returns how many.
int vsw_futex_wake(uint32_t *addr, int count);

// MARK: time
/// CLOCK_MONOTONIC_COARSE in nanoseconds (cheap, a few ms resolution: aging, rate limits).
static inline uint64_t vsw_now_coarse_ns(void);
/// CLOCK_MONOTONIC in nanoseconds.
static inline uint64_t vsw_now_ns(void);

#ifdef __cplusplus
}
#endif

// Inline definitions (kept out of the call path: no PLT hop for the per-batch clock read).
#include <time.h>
static inline uint64_t vsw_now_coarse_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}
static inline uint64_t vsw_now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/// Opens an AF_PACKET raw socket for `protocol` (host order, e.g. 0x0003 = ETH_P_ALL) bound to
/// interface `ifindex`; returns the fd or -1 with errno. (struct sockaddr_ll's header is not part of
/// Swift's Glibc module.)
int vsw_packet_socket(int ifindex, unsigned short protocol, int flags);

// Control plane (the daemon's control thread): signalfd(2), whose header is not in Swift's Glibc
// module, and SO_PEERCRED's struct ucred (needs _GNU_SOURCE).
#include <signal.h>
/// signalfd(-1, mask, SFD_NONBLOCK | SFD_CLOEXEC); the signals must be blocked by the caller.
int vsw_signalfd(const sigset_t *mask);
/// Reads one signalfd_siginfo from `fd`: returns the signal number, 0 when none is pending, -1 on error.
int vsw_signalfd_read(int fd);
/// SO_PEERCRED of a connected Unix socket: 0 and *uid/*pid set, or -1 with errno.
int vsw_peer_credentials(int fd, uid_t *uid, pid_t *pid);

// MARK: AF_PACKET rings (netdev ports). <linux/if_packet.h> clashes with <netpacket/packet.h>, so the
// header describes the ring layouts by offset (checked against the kernel structs with
// _Static_assert in the .c) and the ring set-up, which needs those structs, lives in the .c.

/// An RX socket with a TPACKET_V3 ring of `block_count` blocks of `block_size` bytes bound to
/// `ifindex` (ETH_P_ALL), non-blocking, PACKET_IGNORE_OUTGOING, the interface in promiscuous mode
/// (PACKET_MR_PROMISC, dropped when the socket closes), blocks retired after `retire_ms`. Returns
/// the fd and sets *map (block_size * block_count bytes mmap'd), or -1 with errno.
int vsw_tpacket_rx_open(int ifindex, unsigned block_size, unsigned block_count, unsigned retire_ms, void **map);
/// As vsw_tpacket_rx_open, and asks for PACKET_VNET_HDR first (a 10-byte virtio_net_hdr in front of
/// every frame in the ring: GSO and partial-checksum metadata). *vnet_out = 1 if the kernel took it.
int vsw_tpacket_rx_open_vnet(int ifindex, unsigned block_size, unsigned block_count, unsigned retire_ms, void **map,
                             int *vnet_out);
/// A TX-only socket (bound with protocol 0: it receives nothing) with a TPACKET_V2 TX ring of
/// `frame_count` frames of `frame_size` bytes, PACKET_QDISC_BYPASS. Returns the fd and *map, or -1.
int vsw_tpacket_tx_open(int ifindex, unsigned frame_size, unsigned frame_count, void **map);
/// Kicks the TX ring: sendto(fd, NULL, 0, MSG_DONTWAIT). Returns bytes sent or -1 with errno.
long vsw_tpacket_tx_kick(int fd);
/// The general RX ring: `version` 2 (TPACKET_V2: fixed frames of `frame_size`, one status word per frame) or
/// 3 (TPACKET_V3: variable frames in blocks retired when full or after `retire_ms`). `flags`: 1 = ask for
/// PACKET_VNET_HDR (*vnet_out says whether it took), 2 = PACKET_COPY_THRESH (V2: a frame larger than a ring
/// frame is also queued whole to the socket, its ring frame flagged TP_STATUS_COPY). `rcvbuf` > 0: SO_RCVBUF.
int vsw_tpacket_rx_open_ring(int ifindex, int version, unsigned block_size, unsigned block_count, unsigned frame_size,
                             unsigned retire_ms, int flags, int rcvbuf, void **map, int *vnet_out);
/// PACKET_STATISTICS (reset by every read): frames received, frames dropped for a full ring.
int vsw_tpacket_stats(int fd, unsigned *packets, unsigned *drops);

// TPACKET_V3 block descriptor (struct tpacket_block_desc) and frame header (struct tpacket3_hdr).
enum {
    VSW_TP3_BLOCK_STATUS = 8, VSW_TP3_BLOCK_NUM_PKTS = 12, VSW_TP3_BLOCK_FIRST = 16,
    VSW_TP3_NEXT = 0, VSW_TP3_SNAPLEN = 12, VSW_TP3_STATUS = 20, VSW_TP3_MAC = 24,
    VSW_TP3_VLAN_TCI = 32, VSW_TP3_VLAN_TPID = 36,
    // struct tpacket2_hdr (TX ring): status, len; data at TPACKET2_HDRLEN - sizeof(struct sockaddr_ll)
    VSW_TP2_STATUS = 0, VSW_TP2_LEN = 4, VSW_TP2_DATA = 32,
    // struct tpacket2_hdr (RX ring)
    VSW_TP2_SNAPLEN = 8, VSW_TP2_MAC = 12, VSW_TP2_VLAN_TCI = 24, VSW_TP2_VLAN_TPID = 26,
    VSW_TP_STATUS_COPY = 2,
    VSW_TP_STATUS_KERNEL = 0, VSW_TP_STATUS_USER = 1, VSW_TP_STATUS_SEND_REQUEST = 1,
    VSW_TP_STATUS_VLAN_VALID = 0x10, VSW_TP_STATUS_VLAN_TPID_VALID = 0x40,
};
/// Loads / stores a ring status word with acquire / release ordering (the kernel shares it).
/// A hint that `p` will be read and written soon (the capture writer's walk over ring record headers).
static inline void vsw_prefetch_write(const void *p) { __builtin_prefetch(p, 1, 3); }
static inline unsigned vsw_ring_load_status(const void *p) { return __atomic_load_n((const unsigned *)p, __ATOMIC_ACQUIRE); }
static inline void vsw_ring_store_status(void *p, unsigned v) { __atomic_store_n((unsigned *)p, v, __ATOMIC_RELEASE); }

#endif // VSWITCH_SHIM_H
