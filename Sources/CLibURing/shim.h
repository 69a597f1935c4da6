#ifndef VSWITCH_CLIBURING_SHIM_H
#define VSWITCH_CLIBURING_SHIM_H
// liburing defines _XOPEN_SOURCE/_GNU_SOURCE first thing, which changes glibc's fd_set and breaks
// the module in a clean build unless <sys/select.h> comes first (shared/notes/swift-on-linux.md).
#include <sys/select.h>
#include <liburing.h>
#endif
