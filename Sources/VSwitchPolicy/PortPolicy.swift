// PortPolicy: a port profile compiled into plain values for the forwarding
// core (design.md point 4): a 4096-bit VLAN set, the ingress classification
// rules and the egress tag rewrite, flags and limits. It is a POD value with
// no references, built on the control thread and copied into an immutable
// configuration snapshot; the per-frame path reads it and never sees XML.
//
// VLAN semantics (port-profile.md, "How a frame is treated"):
//   access  untagged / priority-tagged ingress -> PortVID; tagged with PortVID
//           admitted; any other VID dropped (vlan-not-allowed); egress untagged.
//   trunk   tagged ingress admitted only if trunked; untagged -> PortVID unless
//           tagged-only or no native VLAN (untagged-not-allowed); egress tagged,
//           the native VLAN untagged unless NativeVLANEgressTagged.
//   tunnel  every ingress frame joins PortVID with its own tags kept as payload
//           (802.1ad outer tag on trunks); egress removes it.

import VSwitchPacket

/// A set of VLAN IDs 0...4095 as 64 inline words.
public struct VLANSet: Equatable, Sendable {
    public var words: InlineArray<64, UInt64>

    public init() { words = InlineArray(repeating: 0) }
    public init<S: Sequence>(_ vids: S) where S.Element == UInt16 {
        self.init()
        for v in vids { insert(v) }
    }

    @inlinable @inline(__always)
    public func contains(_ vid: UInt16) -> Bool {
        let v = Int(vid & 0xFFF)
        return words[v &>> 6] & (1 &<< UInt64(v & 63)) != 0
    }

    public mutating func insert(_ vid: UInt16) {
        let v = Int(vid & 0xFFF)
        words[v >> 6] |= 1 << UInt64(v & 63)
    }

    /// The VIDs in the set, ascending (walks the 64 words, skipping empty ones).
    public var members: [UInt16] {
        var out: [UInt16] = []
        for w in 0..<64 {
            var bits = words[w]
            while bits != 0 {
                let b = bits.trailingZeroBitCount
                out.append(UInt16(w * 64 + b))
                bits &= bits - 1
            }
        }
        return out
    }
    public var isEmpty: Bool { (0..<64).allSatisfy { words[$0] == 0 } }

    public static func == (a: VLANSet, b: VLANSet) -> Bool { (0..<64).allSatisfy { a.words[$0] == b.words[$0] } }
}

public struct PortPolicy: Equatable, Sendable {
    public enum Mode: UInt8, Sendable { case access = 0, trunk = 1, tunnel = 2 }

    public var mode: Mode
    /// Access VLAN, trunk native VLAN or tunnel S-VLAN; 0 = none (trunk without native VLAN).
    public var pvid: UInt16
    /// VLANs the port carries (access/tunnel: just PortVID; trunk: trunk list plus native).
    public var vlans: VLANSet
    /// Trunk: untagged ingress allowed (native VLAN present and not tagged-only).
    public var acceptUntagged: Bool
    /// Trunk: the native VLAN leaves tagged.
    public var nativeEgressTagged: Bool
    /// PCP given to frames the switch tags.
    public var defaultPriority: UInt8
    /// Bit p set = PCP p allowed on ingress.
    public var allowedPriorityMask: UInt8
    /// PCP violation: true = drop, false = remark to `defaultPriority`.
    public var dropPriorityViolations: Bool
    /// Learn source MACs on this port.
    public var learning: Bool
    /// Most MACs the port may own in the table (UInt32.max = switch default applies).
    public var macLimit: UInt32
    /// Over the limit: false = drop the frame (mac-limit), true = forward without learning.
    public var forwardUnlearned: Bool

    // MARK: profile enforcement beyond VLANs (issue 3); all off by default

    /// Only the port's own MAC and its AllowedToTransmit pairs may be source addresses.
    public var sourceMACFiltering: Bool = false
    /// Also receive known unicast of the port's VLANs addressed to others.
    public var promiscuous: Bool = false
    /// Drop DHCP server messages (UDP source port 67 / 547) sent by the virtual system.
    public var dhcpGuard: Bool = false
    /// Drop ICMPv6 router advertisements / redirects and ICMPv4 redirects sent by the virtual system.
    public var routerGuard: Bool = false
    /// Policer on traffic from the virtual system (bits/s, 0 = off) and its bucket depth in bytes.
    public var transmitRate: UInt64 = 0
    public var transmitBurst: UInt64 = 0
    /// Policer on traffic to the virtual system.
    public var receiveRate: UInt64 = 0
    public var receiveBurst: UInt64 = 0
    /// Flood policing of frames from the virtual system, packets/s (0 = off).
    public var broadcastStormLimit: UInt64 = 0
    public var multicastStormLimit: UInt64 = 0
    public var unknownUnicastStormLimit: UInt64 = 0
    /// ACL defaults: true = deny when no rule matches.
    public var inboundDefaultDeny: Bool = false
    public var outboundDefaultDeny: Bool = false
    /// Index of the port's mirror session (0 = none); issue 4.
    public var mirrorSession: UInt16 = 0

    /// True when any ingress check beyond VLAN/PCP is on (one branch per frame when all are off).
    public var hasIngressPolicy: Bool {
        sourceMACFiltering || dhcpGuard || routerGuard || transmitRate > 0 || outboundDefaultDeny
            || broadcastStormLimit > 0 || multicastStormLimit > 0 || unknownUnicastStormLimit > 0
    }

    public init(mode: Mode, pvid: UInt16, vlans: VLANSet, acceptUntagged: Bool = true, nativeEgressTagged: Bool = false,
                defaultPriority: UInt8 = 0, allowedPriorityMask: UInt8 = 0xFF, dropPriorityViolations: Bool = false,
                learning: Bool = true, macLimit: UInt32 = .max, forwardUnlearned: Bool = false) {
        self.mode = mode; self.pvid = pvid; self.vlans = vlans; self.acceptUntagged = acceptUntagged
        self.nativeEgressTagged = nativeEgressTagged; self.defaultPriority = defaultPriority
        self.allowedPriorityMask = allowedPriorityMask; self.dropPriorityViolations = dropPriorityViolations
        self.learning = learning; self.macLimit = macLimit; self.forwardUnlearned = forwardUnlearned
    }

    public static func == (a: PortPolicy, b: PortPolicy) -> Bool {
        a.mode == b.mode && a.pvid == b.pvid && a.vlans == b.vlans && a.acceptUntagged == b.acceptUntagged
            && a.nativeEgressTagged == b.nativeEgressTagged && a.defaultPriority == b.defaultPriority
            && a.allowedPriorityMask == b.allowedPriorityMask && a.dropPriorityViolations == b.dropPriorityViolations
            && a.learning == b.learning && a.macLimit == b.macLimit && a.forwardUnlearned == b.forwardUnlearned
            && a.sourceMACFiltering == b.sourceMACFiltering && a.promiscuous == b.promiscuous
            && a.dhcpGuard == b.dhcpGuard && a.routerGuard == b.routerGuard
            && a.transmitRate == b.transmitRate && a.transmitBurst == b.transmitBurst
            && a.receiveRate == b.receiveRate && a.receiveBurst == b.receiveBurst
            && a.broadcastStormLimit == b.broadcastStormLimit && a.multicastStormLimit == b.multicastStormLimit
            && a.unknownUnicastStormLimit == b.unknownUnicastStormLimit
            && a.inboundDefaultDeny == b.inboundDefaultDeny && a.outboundDefaultDeny == b.outboundDefaultDeny
            && a.mirrorSession == b.mirrorSession
    }

    public static func access(_ vid: UInt16) -> PortPolicy {
        PortPolicy(mode: .access, pvid: vid, vlans: VLANSet([vid]))
    }

    public static func trunk(_ vids: [UInt16], native: UInt16? = nil, taggedOnly: Bool = false, nativeTagged: Bool = false) -> PortPolicy {
        var set = VLANSet(vids)
        if let n = native { set.insert(n) }
        return PortPolicy(mode: .trunk, pvid: native ?? 0, vlans: set,
                          acceptUntagged: native != nil && !taggedOnly, nativeEgressTagged: nativeTagged)
    }

    public static func tunnel(_ vid: UInt16) -> PortPolicy {
        PortPolicy(mode: .tunnel, pvid: vid, vlans: VLANSet([vid]))
    }

    /// Egress tag for a frame of internal VLAN `vlan` with priority `pcp`:
    /// 0 = send untagged, otherwise (TPID << 16 | TCI).
    /// `serviceTag`: the frame belongs to a Dot1Q-tunnel VLAN, so a trunk carries it with an
    /// 802.1ad S-tag (TPID 0x88A8) in front of the customer's own tags.
    @inlinable @inline(__always)
    public func egressTag(vlan: UInt16, pcp: UInt8, serviceTag: Bool = false) -> UInt32 {
        if mode != .trunk || (vlan == pvid && !nativeEgressTagged) { return 0 }
        let tpid = serviceTag ? UInt32(EtherType.qinq) : UInt32(EtherType.vlan)
        return tpid << 16 | UInt32(pcp & 7) << 13 | UInt32(vlan)
    }
}

public enum PolicyCompiler {
    /// Compiles a validated profile into the port's hot-path policy.
    /// `switchMACLimit` applies when the profile has no MaxNumMACAddress.
    public static func compile(_ p: PortProfile, switchMACLimit: UInt32? = nil) -> PortPolicy {
        var policy: PortPolicy
        switch p.mode {
        case .access:
            policy = .access(p.effectivePortVID ?? 1)
        case .trunk:
            policy = .trunk(p.trunkedVLANs, native: p.effectivePortVID,
                            taggedOnly: p.effectiveAcceptableFrameTypes == .taggedOnly,
                            nativeTagged: p.effectiveNativeVLANEgressTagged)
        case .dot1qTunnel:
            policy = .tunnel(p.effectivePortVID ?? 1)
        }
        policy.defaultPriority = p.effectiveDefaultPriority & 7
        if !p.allowedPriorities.isEmpty {
            var mask: UInt8 = 0
            for pcp in p.allowedPriorities where pcp < 8 { mask |= 1 << pcp }
            policy.allowedPriorityMask = mask
        }
        policy.dropPriorityViolations = p.priorityViolationAction == .drop
        if let limit = p.maxNumMACAddress {
            policy.macLimit = limit
            policy.learning = limit > 0
        } else if let limit = switchMACLimit {
            // The same meaning as the profile's own value: 0 = learn nothing (frames still forwarded).
            policy.macLimit = limit
            policy.learning = limit > 0
        }
        policy.forwardUnlearned = p.macLimitAction == .forwardUnlearned
        return policy
    }
}
