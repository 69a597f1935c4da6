// vswitch_shim.c — see include/vswitch_shim.h.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include "vswitch_shim.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/vfs.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <linux/futex.h>
#include <time.h>
#include <unistd.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <net/if.h>
#include <linux/if_tun.h>

_Static_assert(VSW_IFF_TUN == IFF_TUN, "IFF_TUN");
_Static_assert(VSW_IFF_TAP == IFF_TAP, "IFF_TAP");
_Static_assert(VSW_IFF_NAPI == IFF_NAPI, "IFF_NAPI");
_Static_assert(VSW_IFF_NO_PI == IFF_NO_PI, "IFF_NO_PI");
_Static_assert(VSW_IFF_VNET_HDR == IFF_VNET_HDR, "IFF_VNET_HDR");
_Static_assert(VSW_IFF_TUN_EXCL == IFF_TUN_EXCL, "IFF_TUN_EXCL");
_Static_assert(VSW_IFF_MULTI_QUEUE == IFF_MULTI_QUEUE, "IFF_MULTI_QUEUE");
_Static_assert(VSW_IFF_PERSIST == IFF_PERSIST, "IFF_PERSIST");
_Static_assert(VSW_IFNAME_MAX + 1 == IFNAMSIZ, "IFNAMSIZ");

const unsigned long VSW_TUNSETIFF = TUNSETIFF;
const unsigned long VSW_TUNSETPERSIST = TUNSETPERSIST;
const unsigned long VSW_TUNSETOWNER = TUNSETOWNER;
const unsigned long VSW_TUNGETIFF = TUNGETIFF;
const unsigned long VSW_TUNSETOFFLOAD = TUNSETOFFLOAD;
const unsigned long VSW_TUNSETVNETHDRSZ = TUNSETVNETHDRSZ;
const int VSW_CLONE_NEWNET = CLONE_NEWNET;
_Static_assert(VSW_TUN_F_CSUM == TUN_F_CSUM && VSW_TUN_F_TSO4 == TUN_F_TSO4 && VSW_TUN_F_TSO6 == TUN_F_TSO6
               && VSW_TUN_F_TSO_ECN == TUN_F_TSO_ECN && VSW_TUN_F_UFO == TUN_F_UFO, "TUN_F_*");

int vsw_tun_set_vnet_hdr_size(int fd, int size) { return ioctl(fd, TUNSETVNETHDRSZ, &size); }
int vsw_tun_set_offload(int fd, unsigned flags) { return ioctl(fd, TUNSETOFFLOAD, (unsigned long)flags); }

int vsw_tun_attach(const char *name, int extra_flags, char *actual_name_out, int *failed_step_out) {
    int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        if (failed_step_out) *failed_step_out = 1;
        return -1;
    }
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    ifr.ifr_flags = (short)(IFF_TAP | IFF_NO_PI | extra_flags);
    if (name) strncpy(ifr.ifr_name, name, IFNAMSIZ - 1);
    if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
        int saved = errno;
        close(fd);
        errno = saved;
        if (failed_step_out) *failed_step_out = 2;
        return -1;
    }
    if (actual_name_out) {
        memcpy(actual_name_out, ifr.ifr_name, IFNAMSIZ);
        actual_name_out[IFNAMSIZ - 1] = 0;
    }
    return fd;
}

int vsw_tun_set_persist(int fd, int on) { return ioctl(fd, TUNSETPERSIST, (unsigned long)(on ? 1 : 0)); }
int vsw_tun_set_owner(int fd, uid_t owner) { return ioctl(fd, TUNSETOWNER, (unsigned long)owner); }

int vsw_tun_get_iff(int fd, char *name_out, int *flags_out) {
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    if (ioctl(fd, TUNGETIFF, &ifr) < 0) return -1;
    if (name_out) { memcpy(name_out, ifr.ifr_name, IFNAMSIZ); name_out[IFNAMSIZ - 1] = 0; }
    if (flags_out) *flags_out = (unsigned short)ifr.ifr_flags;
    return 0;
}

int vsw_setns(int fd, int nstype) { return setns(fd, nstype); }
int vsw_unshare(int flags) { return unshare(flags); }
pid_t vsw_gettid(void) { return (pid_t)syscall(SYS_gettid); }

int vsw_futex_wait(uint32_t *addr, uint32_t expected, int64_t timeout_ns) {
    struct timespec ts = { .tv_sec = timeout_ns / 1000000000, .tv_nsec = timeout_ns % 1000000000 };
    return (int)syscall(SYS_futex, addr, FUTEX_WAIT_PRIVATE, expected, &ts, NULL, 0);
}

int vsw_futex_wake(uint32_t *addr, int count) {
    return (int)syscall(SYS_futex, addr, FUTEX_WAKE_PRIVATE, count, NULL, NULL, 0);
}

int vsw_pin_thread(int cpu) {
    if (cpu < 0 || cpu >= CPU_SETSIZE) return EINVAL;
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    return pthread_setaffinity_np(pthread_self(), sizeof set, &set);
}

int vsw_pin_thread_set(const int *cpus, int count) {
    if (count <= 0) return EINVAL;
    cpu_set_t set;
    CPU_ZERO(&set);
    for (int i = 0; i < count; i++) {
        if (cpus[i] < 0 || cpus[i] >= CPU_SETSIZE) return EINVAL;
        CPU_SET(cpus[i], &set);
    }
    return pthread_setaffinity_np(pthread_self(), sizeof set, &set);
}

int vsw_thread_cpus(unsigned char *mask, int bytes) {
    cpu_set_t set;
    CPU_ZERO(&set);
    int rc = pthread_getaffinity_np(pthread_self(), sizeof set, &set);
    if (rc != 0) return rc;
    for (int c = 0; c < CPU_SETSIZE && c / 8 < bytes; c++) {
        if (c % 8 == 0) mask[c / 8] = 0;
        if (CPU_ISSET(c, &set)) mask[c / 8] |= (unsigned char)(1u << (c % 8));
    }
    return 0;
}

int vsw_set_thread_name(const char *name) {
    char buf[16];
    strncpy(buf, name, sizeof buf - 1);
    buf[sizeof buf - 1] = 0;
    return pthread_setname_np(pthread_self(), buf);
}

int vsw_mount_make_shared(const char *path) { return mount("", path, "none", MS_SHARED | MS_REC, NULL); }
int vsw_mount_bind(const char *src, const char *dst, int recursive) {
    return mount(src, dst, "none", MS_BIND | (recursive ? MS_REC : 0), NULL);
}
int vsw_umount_detach(const char *path) { return umount2(path, MNT_DETACH); }
int vsw_is_nsfs(const char *path) {
    struct statfs st;
    return statfs(path, &st) == 0 && st.f_type == 0x6e736673 /* NSFS_MAGIC */;
}

int vsw_if_get_flags(const char *name) {
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (s < 0) s = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (s < 0) return -1;
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    strncpy(ifr.ifr_name, name, IFNAMSIZ - 1);
    int rc = ioctl(s, SIOCGIFFLAGS, &ifr);
    int saved = errno;
    close(s);
    if (rc < 0) { errno = saved; return -1; }
    return (unsigned short)ifr.ifr_flags;
}

int vsw_packet_socket(int ifindex, unsigned short protocol, int flags) {
    int fd = socket(AF_PACKET, SOCK_RAW | flags, htons(protocol));
    if (fd < 0) return -1;
    struct sockaddr_ll sll;
    memset(&sll, 0, sizeof sll);
    sll.sll_family = AF_PACKET;
    sll.sll_protocol = htons(protocol);
    sll.sll_ifindex = ifindex;
    if (bind(fd, (struct sockaddr *)&sll, sizeof sll) < 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

int vsw_signalfd(const sigset_t *mask) { return signalfd(-1, mask, SFD_NONBLOCK | SFD_CLOEXEC); }

int vsw_signalfd_read(int fd) {
    struct signalfd_siginfo si;
    ssize_t n = read(fd, &si, sizeof si);
    if (n == (ssize_t)sizeof si) return (int)si.ssi_signo;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return 0;
    return -1;
}

int vsw_peer_credentials(int fd, uid_t *uid, pid_t *pid) {
    struct ucred cred;
    socklen_t len = sizeof cred;
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) return -1;
    *uid = cred.uid;
    *pid = cred.pid;
    return 0;
}

// io_uring_register(IORING_REGISTER_ENABLE_RINGS): liburing 2.3 (Debian 12) has no wrapper, and
// syscall() is variadic. Enables a ring created with IORING_SETUP_R_DISABLED; the calling thread
// becomes its single issuer.
int vsw_uring_enable_rings(int ring_fd) {
    long rc = syscall(__NR_io_uring_register, ring_fd, 12 /* IORING_REGISTER_ENABLE_RINGS */, NULL, 0);
    return rc < 0 ? -errno : 0;
}
