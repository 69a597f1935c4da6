// TapPortSystem: the real PortSystem — TAP devices, virtual systems (network namespaces) and
// link state through VSwitchIO (rtnetlink via libnl, never `ip`).
//
// Restore (state mode): a persistent TAP left behind by a crashed daemon is adopted where it is
// now — inside its virtual system's namespace under its interface name (the tun fd is opened by a
// thread that entered the namespace, so TUNSETIFF finds it there), or still in ours under the port
// name; only when it is gone is it created and provisioned again.
//
// Threading: control thread only (namespace work happens on VSwitchIO's dedicated threads).

import Foundation
import VSwitchIO
import VSwitchPacket
#if canImport(Glibc)
import Glibc
#endif

public final class TapPortSystem: PortSystem {
    public init() {}
    /// Forwarding threads (each gets its own TX ring on every netdev port).
    public var forwardingThreads = 1
    /// False: every TAP is opened without offloads whatever its configuration (`vswitchd --offloads off`).
    public var offloadsAllowed = true
    /// RX / TX rings of netdev ports.
    public var netdevRing: NetdevRingTuning = .current

    /// Opens a TAP (created or adopted) with or without IFF_VNET_HDR, enabling TUNSETOFFLOAD when with.
    /// Opens a TAP and states its offloads; returns it and whether USO is on.
    func withOffloads(_ on: Bool, _ open: (TapDevice.Options) throws -> TapDevice) throws -> (TapDevice, Bool) {
        let tap = try open(on ? [.vnetHeader] : [])
        var uso = false
        do {
            // An adopted TAP keeps the netdev features an earlier run set: state them either way.
            if on { uso = try tap.enableOffloads() } else { try tap.disableOffloads() }
        } catch { tap.close(); throw error }
        return (tap, uso)
    }

    public func check(_ p: PortConfig) throws {
        if p.type != "tap" { return try checkOther(p) }
        if p.adopt {
            if !Netlink.linkExists(p.name) { throw DaemonError("port \(p.name): Adopt=\"true\" but no interface \(p.name) exists") }
        } else if Netlink.linkExists(p.name) {
            throw DaemonError("port \(p.name): an interface named \(p.name) already exists (remove it, or set Adopt=\"true\" for a persistent TAP)")
        }
        if let ns = p.namespace, NetworkNamespace.exists(ns) {
            throw DaemonError("port \(p.name): network namespace \(ns) already exists (ip netns delete \(ns), or pick another name)")
        }
    }

    func vsSpec(_ p: PortConfig) -> VirtualSystemSpec? {
        guard let ns = p.namespace else { return nil }
        return VirtualSystemSpec(namespace: ns, interfaceName: p.interface ?? "eth0", mac: p.mac.flatMap(MACAddress.init),
                                 mtu: p.mtu, addresses: p.addresses)
    }

    public func attach(_ p: PortConfig, persistent: Bool, restore: Bool) throws -> PortAttachment {
        if p.type != "tap" { return try attachOther(p) }
        let ifname = p.interface ?? "eth0"
        let offload = offloadsAllowed && (p.offload ?? true)
        if restore, let ns = p.namespace, let vs = vsSpec(p), NetworkNamespace.exists(ns),
           let inside = [ifname, p.name].first(where: { Netlink.linkExists($0, inNamespace: ns) }) {
            // The virtual system kept its interface: adopt it inside the namespace — under the TAP's own name if
            // the daemon was killed between the move and the rename — and finish what attach may not have done.
            let (tap, uso) = try NetworkNamespace.withNamespace(ns) { try withOffloads(offload) { try TapDevice.adopt(name: inside, options: $0) } }
            do { try VirtualSystemProvisioner.complete(interface: inside, to: vs) } catch { tap.close(); throw error }
            return PortAttachment(handle: tap.fd, ifindex: Netlink.interfaceIndex(ifname, inNamespace: ns), resource: tap, offload: offload, uso: uso)
        }
        let tap: TapDevice
        var uso = false
        if (restore || p.adopt) && Netlink.linkExists(p.name) {
            (tap, uso) = try withOffloads(offload) { try TapDevice.adopt(name: p.name, options: $0) }
        } else {
            tap = try TapDevice.create(name: p.name, persistent: persistent, options: offload ? [.vnetHeader] : [])
            if offload {
                do { uso = try tap.enableOffloads() } catch { tap.destroy(); throw error }
            }
        }
        do {
            if let vs = vsSpec(p) {
                try VirtualSystemProvisioner.attach(tapName: p.name, to: vs, createNamespace: !NetworkNamespace.exists(vs.namespace))
            } else {
                try Netlink.configure(LinkConfig(name: p.name, mtu: p.mtu, up: true))
            }
        } catch {
            if p.adopt { tap.close() } else { tap.destroy() }
            throw error
        }
        let index = p.namespace != nil ? Netlink.interfaceIndex(ifname, inNamespace: p.namespace) : Netlink.interfaceIndex(p.name)
        return PortAttachment(handle: tap.fd, ifindex: index, resource: tap, offload: offload, uso: uso)
    }

    public func detach(_ p: PortConfig, _ a: PortAttachment, destroy: Bool) {
        if let n = a.resource as? NetdevPort { n.close(); return }
        if let r = a.resource as? ReplayPort { r.close(); return }
        guard let tap = a.resource as? TapDevice else { return }
        if destroy {
            tap.destroy()
            if let ns = p.namespace { VirtualSystemProvisioner.teardown(namespace: ns) }
        } else {
            tap.close()
        }
    }

    public func removeLeftover(_ p: PortConfig) {
        guard p.type == "tap", !p.adopt else { return }
        let ifname = p.interface ?? "eth0"
        if let ns = p.namespace, NetworkNamespace.exists(ns) {
            for name in [ifname, p.name] where Netlink.linkExists(name, inNamespace: ns) {
                if let tap = try? NetworkNamespace.withNamespace(ns, { try TapDevice.adopt(name: name, options: []) }) { tap.destroy() }
            }
            VirtualSystemProvisioner.teardown(namespace: ns)
        }
        if Netlink.linkExists(p.name), let tap = try? TapDevice.adopt(name: p.name, options: []) { tap.destroy() }
    }

    public func linkStatus(_ p: PortConfig, _ a: PortAttachment) -> LinkStatus {
        if a.resource is ReplayPort { return .up }
        if let n = a.resource as? NetdevPort {
            guard let info = try? Netlink.link(n.interface), info.index == n.ifindex else { return .gone }
            return info.isOperational ? .up : .down
        }
        guard let tap = a.resource as? TapDevice else { return .up }
        if !tap.isAttached { return .gone }
        if let ns = p.namespace, !NetworkNamespace.exists(ns) { return .gone }
        let name = p.namespace != nil ? (p.interface ?? "eth0") : p.name
        guard let info = try? Netlink.link(name, inNamespace: p.namespace) else { return .gone }
        if let idx = a.ifindex, info.index != idx { return .gone }
        return info.isOperational ? .up : .down
    }

    /// Cheap periodic check (one ioctl per port): whether the TAP is still attached to its netdev.
    public func isAttached(_ a: PortAttachment) -> Bool {
        if let n = a.resource as? NetdevPort { return if_nametoindex(n.interface) == UInt32(n.ifindex) }
        return (a.resource as? TapDevice)?.isAttached ?? true
    }
}

// Netdev ports (an existing interface through AF_PACKET rings) and pcap-replay ports.
extension TapPortSystem {
    func checkOther(_ p: PortConfig) throws {
        switch p.type {
        case "netdev":
            guard let ifname = p.interface, Netlink.linkExists(ifname) else {
                throw DaemonError("port \(p.name): no interface \(p.interface ?? "?") to attach as a netdev port")
            }
        case "pcap":
            guard let f = p.file, access(f, R_OK) == 0 else {
                throw DaemonError("port \(p.name): cannot read pcap file \(p.file ?? "?")")
            }
            try checkPcapFiles(p)
        default:
            throw DaemonError("port \(p.name): unsupported port type \(p.type)")
        }
    }

    /// A pcap port's files must be regular files (its output may not exist yet): libpcap opens them on the control
    /// thread, and a FIFO or a device there would block it (and with it SIGTERM) until someone opened the other end.
    func checkPcapFiles(_ p: PortConfig) throws {
        for (what, path, mayBeNew) in [("pcap file", p.file, false), ("output file", p.output, true)] {
            guard let path else { continue }
            var st = stat()
            if stat(path, &st) != 0 {
                if mayBeNew && errno == ENOENT { continue }
                throw DaemonError("port \(p.name): \(what) \(path): \(String(cString: strerror(errno)))")
            }
            if st.st_mode & S_IFMT != S_IFREG {
                throw DaemonError("port \(p.name): \(what) \(path) is not a regular file")
            }
        }
    }

    func attachOther(_ p: PortConfig) throws -> PortAttachment {
        switch p.type {
        case "netdev":
            let ifname = p.interface ?? p.name
            let port = try NetdevPort(interface: ifname, txQueues: forwardingThreads, tuning: netdevRing)
            // Bring the interface up (an uplink or veth end may be down); its MTU is the operator's.
            if let info = try? Netlink.link(ifname), !info.isUp { try? Netlink.configure(LinkConfig(name: ifname, up: true)) }
            // With PACKET_VNET_HDR the port takes GSO frames and partial checksums (NetdevRing.sendOffloaded).
            // The kernel's packet_snd takes GSO_UDP_L4 headers as well (USO).
            return PortAttachment(handle: port.slot, ifindex: port.ifindex, resource: port,
                                  offload: offloadsAllowed && port.ring.pointee.vnet, uso: true)
        default:
            try checkPcapFiles(p)   // also on restore: a FIFO put there since would block the control thread
            let port = try ReplayPort(file: p.file ?? "", loop: p.loop ?? false, rate: UInt64(max(0, p.rate ?? 0)), output: p.output)
            return PortAttachment(handle: port.slot, ifindex: nil, resource: port)
        }
    }
}
