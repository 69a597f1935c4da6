// The port-profile model: one value per ovf:NetworkPortProfile / ovf:Item
// (CIM_EthernetPortAllocationSettingData + our vsx extensions), see
// shared/spec/port-profile.md. Pure data, no XML and no hot-path use: the
// forwarding core only ever sees the compiled `PortPolicy`.
//
// Optionals record "absent in the document" so that export writes back exactly
// what was read; the `effective…` accessors apply the spec's defaults.

import VSwitchPacket

public enum VLANEndpointMode: Int, Sendable, CaseIterable {
    case access = 2, trunk = 5, dot1qTunnel = 6
}

public enum NetworkPortProfileIDType: Int, Sendable {
    case other = 1, uri = 2, uuid = 3, vsiInstanceID = 4
}

public enum AcceptableFrameTypes: Int, Sendable {
    case all = 2, taggedOnly = 3
}

public enum PriorityViolationAction: String, Sendable { case remark = "Remark", drop = "Drop" }
public enum MACLimitAction: String, Sendable { case drop = "Drop", forwardUnlearned = "ForwardUnlearned" }
public enum MonitorRole: String, Sendable { case none = "None", source = "Source", destination = "Destination" }
public enum ACLAction: String, Sendable { case allow = "Allow", deny = "Deny" }
public enum ACLDirection: String, Sendable { case inbound = "Inbound", outbound = "Outbound", both = "Both" }

/// A (MAC, VLAN) pair of the AllowedToTransmit / AllowedToReceive lists; `vlan == nil`: any VID the port carries.
public struct MACVLANPair: Hashable, Sendable {
    public var mac: MACAddress
    public var vlan: UInt16?
    public init(mac: MACAddress, vlan: UInt16? = nil) { self.mac = mac; self.vlan = vlan }
}

/// Bandwidth as written: value in `units` (DMTF programmatic units, e.g. "bit / second * 10^6").
public struct Bandwidth: Hashable, Sendable {
    public var value: UInt64
    public init(value: UInt64) { self.value = value }
}

public struct ACLRule: Hashable, Sendable {
    public var name: String
    public var direction: ACLDirection
    public var action: ACLAction
    public var weight: Int
    public var localMAC: MACAddress?
    public var remoteMAC: MACAddress?
    public var etherType: UInt16?
    public var vlanID: UInt16?
    public var priority: UInt8?
    public var localIP: String?       // address[/prefix] or "ANY", as written
    public var remoteIP: String?
    public var proto: String?         // TCP, UDP, ICMP, ICMPv6 or 0..255, as written
    public var localPort: String?     // N or lo-hi
    public var remotePort: String?
    public var icmpType: UInt8?
    public var icmpCode: UInt8?
    public init(name: String, direction: ACLDirection, action: ACLAction, weight: Int) {
        self.name = name; self.direction = direction; self.action = action; self.weight = weight
    }
}

public struct PortProfile: Hashable, Sendable {
    // Identity (DSP8049)
    public var networkPortProfileID: String
    public var networkPortProfileIDType: NetworkPortProfileIDType
    public var otherNetworkPortProfileIDTypeInfo: String?
    public var elementName: String
    public var instanceID: String
    public var caption: String?
    public var description: String?

    // VLANs
    public var desiredVLANEndpointMode: VLANEndpointMode?
    public var portVID: UInt16?
    public var defaultPortVID: UInt16?
    public var trunkedVLANs: [UInt16] = []          // sorted, unique, after merging lists and ranges
    public var acceptableFrameTypes: AcceptableFrameTypes?
    public var nativeVLANEgressTagged: Bool?

    // Priorities
    public var defaultPriority: UInt8?
    public var allowedPriorities: [UInt8] = []
    public var priorityViolationAction: PriorityViolationAction?

    // MAC policy
    public var sourceMACFilteringEnabled: Bool?
    public var allowedToTransmit: [MACVLANPair] = []
    public var allowedToReceive: [MACVLANPair] = []
    public var promiscuous: Bool?
    public var maxNumMACAddress: UInt32?
    public var macLimitAction: MACLimitAction?

    // Bandwidth (bits per second after applying AllocationUnits)
    public var allocationUnits: String?
    public var limit: UInt64?
    public var reservation: UInt64?
    public var receiveBandwidthLimit: UInt64?
    public var receiveBandwidthReservation: UInt64?
    public var transmitBurstSize: UInt64?
    public var receiveBurstSize: UInt64?

    // Storm control, packets per second; 0 = off
    public var broadcastStormLimit: UInt64?
    public var multicastStormLimit: UInt64?
    public var unknownUnicastStormLimit: UInt64?

    // Guards, monitoring, ACLs
    public var enableDhcpGuard: Bool?
    public var enableRouterGuard: Bool?
    public var monitorMode: MonitorRole?
    public var monitorSession: String?
    public var inboundAclDefaultAction: ACLAction?
    public var outboundAclDefaultAction: ACLAction?
    public var acls: [ACLRule] = []

    // IEEE 802.1Qbg VSI identity: stored, validated, shown
    public var managerID: String?
    public var groupID: UInt32?
    public var vsiTypeID: UInt32?
    public var vsiTypeIDVersion: UInt8?
    public var portCorrelationID: String?

    public init(id: String, idType: NetworkPortProfileIDType = .uri, elementName: String, instanceID: String) {
        self.networkPortProfileID = id
        self.networkPortProfileIDType = idType
        self.elementName = elementName
        self.instanceID = instanceID
    }

    // MARK: effective values (spec defaults applied)

    public var mode: VLANEndpointMode { desiredVLANEndpointMode ?? .access }
    /// PortVID, else DefaultPortVID, else VLAN 1 for access; nil (no native VLAN) for trunks without either.
    public var effectivePortVID: UInt16? {
        if let v = portVID { return v }
        if let v = defaultPortVID { return v }
        return mode == .trunk ? nil : 1
    }
    public var effectiveDefaultPriority: UInt8 { defaultPriority ?? 0 }
    public var effectiveAcceptableFrameTypes: AcceptableFrameTypes { acceptableFrameTypes ?? .all }
    public var effectiveNativeVLANEgressTagged: Bool { nativeVLANEgressTagged ?? false }
    public var effectiveSourceMACFiltering: Bool { sourceMACFilteringEnabled ?? true }
}
