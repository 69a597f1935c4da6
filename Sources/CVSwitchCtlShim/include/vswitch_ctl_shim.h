// vswitch_ctl_shim.h — control-plane pieces of the Linux C API Swift cannot import:
// signalfd(2) (<sys/signalfd.h> is not in the Glibc module) and SO_PEERCRED's struct ucred
// (needs _GNU_SOURCE). Used by the daemon's control thread only.
#ifndef VSWITCH_CTL_SHIM_H
#define VSWITCH_CTL_SHIM_H
#include <signal.h>
#include <sys/types.h>

/// signalfd(-1, mask, SFD_NONBLOCK | SFD_CLOEXEC); the signals must be blocked by the caller.
int vsw_signalfd(const sigset_t *mask);
/// Reads one signalfd_siginfo from `fd`: returns the signal number, 0 when none is pending, -1 on error.
int vsw_signalfd_read(int fd);
/// SO_PEERCRED of a connected Unix socket: 0 and *uid/*pid set, or -1 with errno.
int vsw_peer_credentials(int fd, uid_t *uid, pid_t *pid);
#endif
