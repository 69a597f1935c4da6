// PolicyDiff: what changes for a port when its compiled policy is replaced (the dry run of
// `vswitchctl profile validate`). Control path only; plain strings for operators.

public enum PolicyDiff {
    /// One line per difference, e.g. "VLANs: 10,20 -> 10,20,30"; empty when nothing changes.
    public static func describe(old a: CompiledPort, new b: CompiledPort) -> [String] {
        var out: [String] = []
        func add<T: Equatable>(_ name: String, _ x: T, _ y: T, _ show: (T) -> String = { "\($0)" }) {
            if x != y { out.append("\(name): \(show(x)) -> \(show(y))") }
        }
        let p = a.policy, q = b.policy
        add("mode", p.mode, q.mode) { "\($0)" }
        add("port VID", p.pvid, q.pvid)
        add("VLANs", p.vlans.members, q.vlans.members) { $0.map(String.init).joined(separator: ",") }
        add("untagged ingress", p.acceptUntagged, q.acceptUntagged)
        add("native VLAN egress tagged", p.nativeEgressTagged, q.nativeEgressTagged)
        add("default priority", p.defaultPriority, q.defaultPriority)
        add("allowed priorities", p.allowedPriorityMask, q.allowedPriorityMask) { m in
            (0..<8).filter { m & (1 << $0) != 0 }.map(String.init).joined(separator: ",")
        }
        add("priority violations", p.dropPriorityViolations, q.dropPriorityViolations) { $0 ? "drop" : "remark" }
        add("learning", p.learning, q.learning)
        add("MAC limit", p.macLimit, q.macLimit) { $0 == .max ? "none" : "\($0)" }
        add("MAC limit action", p.forwardUnlearned, q.forwardUnlearned) { $0 ? "forward unlearned" : "drop" }
        add("source MAC filtering", p.sourceMACFiltering, q.sourceMACFiltering)
        add("promiscuous", p.promiscuous, q.promiscuous)
        add("DHCP guard", p.dhcpGuard, q.dhcpGuard)
        add("router guard", p.routerGuard, q.routerGuard)
        add("transmit limit (bit/s)", p.transmitRate, q.transmitRate)
        add("transmit burst (bytes)", p.transmitBurst, q.transmitBurst)
        add("receive limit (bit/s)", p.receiveRate, q.receiveRate)
        add("receive burst (bytes)", p.receiveBurst, q.receiveBurst)
        add("broadcast storm limit (pps)", p.broadcastStormLimit, q.broadcastStormLimit)
        add("multicast storm limit (pps)", p.multicastStormLimit, q.multicastStormLimit)
        add("unknown-unicast storm limit (pps)", p.unknownUnicastStormLimit, q.unknownUnicastStormLimit)
        add("inbound ACL default", p.inboundDefaultDeny, q.inboundDefaultDeny) { $0 ? "deny" : "allow" }
        add("outbound ACL default", p.outboundDefaultDeny, q.outboundDefaultDeny) { $0 ? "deny" : "allow" }
        add("AllowedToTransmit entries", a.allowedTransmit.count, b.allowedTransmit.count)
        if a.allowedTransmit.count == b.allowedTransmit.count && a.allowedTransmit != b.allowedTransmit {
            out.append("AllowedToTransmit entries changed")
        }
        add("AllowedToReceive entries", a.allowedReceive.count, b.allowedReceive.count)
        if a.allowedReceive.count == b.allowedReceive.count && a.allowedReceive != b.allowedReceive {
            out.append("AllowedToReceive entries changed")
        }
        add("inbound ACL rules", a.inboundACL.count, b.inboundACL.count)
        if a.inboundACL.count == b.inboundACL.count && a.inboundACL != b.inboundACL { out.append("inbound ACL rules changed") }
        add("outbound ACL rules", a.outboundACL.count, b.outboundACL.count)
        if a.outboundACL.count == b.outboundACL.count && a.outboundACL != b.outboundACL { out.append("outbound ACL rules changed") }
        return out
    }
}
