// LinkMonitor: rtnetlink link notifications (RTNLGRP_LINK) through libnl, for the control thread.
//
// Design (design.md point 11): one libnl NETLINK_ROUTE socket in the daemon's namespace, joined
// to RTNLGRP_LINK with nl_socket_add_membership and set NETLINK_LISTEN_ALL_NSID, so it also hears
// links in the virtual systems' namespaces (the kernel gives a namespace an id in ours when a link
// is moved there). The socket is non-blocking; the control thread polls `fd` and calls `drain()`,
// which reads every pending datagram and turns each RTM_NEWLINK / RTM_DELLINK into a small
// `LinkEvent` value, parsed by libnl (nlmsg_convert + nl_msg_parse with a capture-free
// @convention(c) callback). A receive-buffer overrun (ENOBUFS: notifications were lost) is
// reported as `overrun`, meaning "resynchronise everything".
//
// Threading: one thread (the control thread) owns a LinkMonitor. Forwarding threads never touch it.

#if canImport(Glibc)
import Glibc
#endif
import CLibNL

/// One link notification.
public struct LinkEvent: Sendable, Equatable {
    public var ifindex: Int32
    public var name: String
    /// IFF_UP.
    public var isUp: Bool
    /// IFF_LOWER_UP (carrier).
    public var hasCarrier: Bool
    /// RTM_DELLINK: the link is gone (or left the namespace).
    public var deleted: Bool
}

/// Where the libnl parse callback writes what it found (no captures: passed through `arg`).
private struct ParsedLink {
    var found = false
    var ifindex: Int32 = 0
    var flags: UInt32 = 0
    var name = [CChar](repeating: 0, count: 17)
}

public final class LinkMonitor {
    private let sock: OpaquePointer
    /// Poll this for POLLIN.
    public let fd: Int32
    private let buffer: UnsafeMutableRawPointer
    private static let bufferSize = 1 << 16

    public init() throws {
        guard let sock = nl_socket_alloc() else {
            throw SystemError(operation: "open link monitor", errno: ENOMEM, context: "")
        }
        nl_socket_disable_seq_check(sock)
        let rc = nl_connect(sock, NETLINK_ROUTE)
        if rc < 0 {
            nl_socket_free(sock)
            throw SystemError(operation: "open link monitor", errno: EIO, context: "", detail: String(cString: nl_geterror(rc)))
        }
        let mrc = nl_socket_add_membership(sock, Int32(RTNLGRP_LINK.rawValue))
        if mrc < 0 {
            nl_close(sock); nl_socket_free(sock)
            throw SystemError(operation: "join RTNLGRP_LINK", errno: EIO, context: "", detail: String(cString: nl_geterror(mrc)))
        }
        _ = nl_socket_set_nonblocking(sock)
        let fd = nl_socket_get_fd(sock)
        var one: Int32 = 1
        // NETLINK_LISTEN_ALL_NSID (8) at SOL_NETLINK (270): hear the other namespaces too.
        _ = setsockopt(fd, 270, 8, &one, socklen_t(MemoryLayout<Int32>.size))
        var size: Int32 = 1 << 20
        _ = setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<Int32>.size))
        self.sock = sock
        self.fd = fd
        buffer = .allocate(byteCount: LinkMonitor.bufferSize, alignment: 16)
    }

    deinit {
        nl_close(sock)
        nl_socket_free(sock)
        buffer.deallocate()
    }

    /// Reads every pending notification. `overrun`: some were lost; resynchronise.
    public func drain() -> (events: [LinkEvent], overrun: Bool) {
        var events: [LinkEvent] = []
        var overrun = false
        while true {
            let n = recv(fd, buffer, LinkMonitor.bufferSize, Int32(MSG_DONTWAIT))
            if n < 0 {
                let e = errno
                if e == EINTR { continue }
                if e == ENOBUFS { overrun = true; continue }
                break   // EAGAIN: drained
            }
            if n == 0 { break }
            var remaining = Int32(n)
            var hdr: UnsafeMutablePointer<nlmsghdr>? = buffer.assumingMemoryBound(to: nlmsghdr.self)
            while let h = hdr, nlmsg_ok(h, remaining) != 0 {
                let type = h.pointee.nlmsg_type
                if type == UInt16(RTM_NEWLINK) || type == UInt16(RTM_DELLINK), let ev = LinkMonitor.parse(h) {
                    var e = ev
                    e.deleted = type == UInt16(RTM_DELLINK)
                    events.append(e)
                } else if type == UInt16(NLMSG_OVERRUN) {
                    overrun = true
                }
                hdr = nlmsg_next(h, &remaining)
            }
        }
        return (events, overrun)
    }

    private static func parse(_ h: UnsafeMutablePointer<nlmsghdr>) -> LinkEvent? {
        guard let msg = nlmsg_convert(h) else { return nil }
        defer { nlmsg_free(msg) }
        nlmsg_set_proto(msg, NETLINK_ROUTE)   // nl_msg_parse finds the link parser by protocol + type
        var parsed = ParsedLink()
        _ = withUnsafeMutablePointer(to: &parsed) { p in
            nl_msg_parse(msg, { obj, arg in
                guard let obj, let arg else { return }
                let out = arg.assumingMemoryBound(to: ParsedLink.self)
                out.pointee.found = true
                out.pointee.ifindex = rtnl_link_get_ifindex(obj)
                out.pointee.flags = rtnl_link_get_flags(obj)
                if let n = rtnl_link_get_name(obj) {
                    var k = 0
                    while k < 16, n[k] != 0 { out.pointee.name[k] = n[k]; k += 1 }
                }
            }, p)
        }
        guard parsed.found else { return nil }
        return LinkEvent(ifindex: parsed.ifindex, name: String(cString: parsed.name), isUp: parsed.flags & 0x1 != 0,
                         hasCarrier: parsed.flags & 0x10000 != 0, deleted: false)
    }
}
