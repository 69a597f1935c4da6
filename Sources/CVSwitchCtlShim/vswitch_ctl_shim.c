#define _GNU_SOURCE
#include "vswitch_ctl_shim.h"
#include <errno.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

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
