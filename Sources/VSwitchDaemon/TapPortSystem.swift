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

    public func check(_ p: PortConfig) throws {
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
        let ifname = p.interface ?? "eth0"
        if restore, let ns = p.namespace, NetworkNamespace.exists(ns), Netlink.linkExists(ifname, inNamespace: ns) {
            // The virtual system kept its interface: adopt it inside the namespace.
            let tap = try NetworkNamespace.withNamespace(ns) { try TapDevice.adopt(name: ifname) }
            return PortAttachment(handle: tap.fd, ifindex: Netlink.interfaceIndex(ifname, inNamespace: ns), resource: tap)
        }
        let tap: TapDevice
        if (restore || p.adopt) && Netlink.linkExists(p.name) {
            tap = try TapDevice.adopt(name: p.name)
        } else {
            tap = try TapDevice.create(name: p.name, persistent: persistent)
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
        return PortAttachment(handle: tap.fd, ifindex: index, resource: tap)
    }

    public func detach(_ p: PortConfig, _ a: PortAttachment, destroy: Bool) {
        guard let tap = a.resource as? TapDevice else { return }
        if destroy {
            tap.destroy()
            if let ns = p.namespace { VirtualSystemProvisioner.teardown(namespace: ns) }
        } else {
            tap.close()
        }
    }

    public func linkStatus(_ p: PortConfig, _ a: PortAttachment) -> LinkStatus {
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
        (a.resource as? TapDevice)?.isAttached ?? true
    }
}
