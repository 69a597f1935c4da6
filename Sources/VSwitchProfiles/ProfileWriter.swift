// Writes profiles as a form-1 document (`vswitchctl profile export`): DMTF elements in
// alphabetical order, then the vsx extensions in the order of the spec's table.
// Deterministic: the same profiles always give the same bytes, and a document written
// here loads back into equal profiles.
//
// Canonical forms: MACs lower-case with colons; EtherType 0xHHHH; bandwidth in the
// profile's AllocationUnits when every value divides evenly, else in "bit / second";
// trunk VLANs as vsx:TrunkedVLANList entries, runs of three or more as vsx:TrunkedVLANRange;
// a NULL VLAN in an AllowedTo… pair is written xsi:nil="true".

import VSwitchPolicy
import VSwitchPacket

public enum ProfileWriter {
    public static func write(_ profiles: [PortProfile]) -> String {
        var s = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
        s += "<vsx:NetworkPortProfiles FormatVersion=\"1.0\""
        s += " xmlns:vsx=\"\(ProfileNamespace.vsx)\""
        s += " xmlns:ovf=\"\(ProfileNamespace.ovf)\""
        s += " xmlns:epasd=\"\(ProfileNamespace.epasd)\""
        s += " xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\">\n"
        for p in profiles {
            s += "  <ovf:NetworkPortProfile>\n"
            s += "    <ovf:Item>\n"
            for (name, values) in dmtfProperties(p) {
                for v in values {
                    if let v { s += "      <epasd:\(name)>\(escapeText(v))</epasd:\(name)>\n" }
                    else { s += "      <epasd:\(name) xsi:nil=\"true\"/>\n" }
                }
            }
            for line in extensions(p) { s += "      " + line + "\n" }
            s += "    </ovf:Item>\n"
            s += "  </ovf:NetworkPortProfile>\n"
        }
        s += "</vsx:NetworkPortProfiles>\n"
        return s
    }

    /// (EPASD property, values) sorted by property name; a nil value is written as NULL.
    public static func dmtfProperties(_ p: PortProfile) -> [(String, [String?])] {
        var props: [String: [String?]] = [:]
        func put(_ name: String, _ value: String?) { if let value { props[name] = [value] } }
        func putAll(_ name: String, _ values: [String?]) { if !values.isEmpty { props[name] = values } }

        put("NetworkPortProfileID", p.networkPortProfileID)
        put("NetworkPortProfileIDType", String(p.networkPortProfileIDType.rawValue))
        put("OtherNetworkPortProfileIDTypeInfo", p.otherNetworkPortProfileIDTypeInfo)
        put("ElementName", p.elementName)
        put("InstanceID", p.instanceID)
        put("Caption", p.caption)
        put("Description", p.description)
        put("DesiredVLANEndpointMode", p.desiredVLANEndpointMode.map { String($0.rawValue) })
        put("PortVID", p.portVID.map { String($0) })
        put("DefaultPortVID", p.defaultPortVID.map { String($0) })
        put("DefaultPriority", p.defaultPriority.map { String($0) })
        putAll("AllowedPriorities", p.allowedPriorities.map { String($0) })
        put("SourceMACFilteringEnabled", p.sourceMACFilteringEnabled.map { $0 ? "true" : "false" })
        put("Promiscuous", p.promiscuous.map { $0 ? "true" : "false" })
        for (list, macName, vlanName) in [(p.allowedToTransmit, "AllowedToTransmitMACAddresses", "AllowedToTransmitVLANs"),
                                          (p.allowedToReceive, "AllowedToReceiveMACAddresses", "AllowedToReceiveVLANs")] {
            putAll(macName, list.map { $0.mac.description })
            if list.contains(where: { $0.vlan != nil }) {
                putAll(vlanName, list.map { $0.vlan.map { String($0) } })
            }
        }

        let bandwidth: [(String, UInt64?)] = [("Limit", p.limit), ("Reservation", p.reservation),
                                              ("ReceiveBandwidthLimit", p.receiveBandwidthLimit),
                                              ("ReceiveBandwidthReservation", p.receiveBandwidthReservation)]
        let present = bandwidth.compactMap { $0.1 }
        var units = p.allocationUnits.flatMap(ValueSyntax.bandwidthUnit) ?? ValueSyntax.bandwidthUnits[0]
        if !present.allSatisfy({ $0 % units.multiplier == 0 }) { units = ValueSyntax.bandwidthUnits[0] }
        if p.allocationUnits != nil || !present.isEmpty { put("AllocationUnits", units.canonical) }
        for (name, v) in bandwidth { put(name, v.map { String($0 / units.multiplier) }) }

        put("ManagerID", p.managerID)
        put("GroupID", p.groupID.map { String($0) })
        put("VSITypeID", p.vsiTypeID.map { String($0) })
        put("VSITypeIDVersion", p.vsiTypeIDVersion.map { String($0) })
        put("PortCorrelationID", p.portCorrelationID)
        return props.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
    }

    /// The vsx elements, one line each, in the order of the spec's table.
    public static func extensions(_ p: PortProfile) -> [String] {
        var lines: [String] = []
        func element(_ name: String, _ value: String?) {
            if let value { lines.append("<vsx:\(name)>\(escapeText(value))</vsx:\(name)>") }
        }
        // Trunk list: runs of 3+ as ranges, the rest as single entries.
        var singles: [UInt16] = [], ranges: [(UInt16, UInt16)] = []
        for run in consecutiveRuns(p.trunkedVLANs.sorted()) {
            if run.count >= 3 { ranges.append((run.lowerBound, run.upperBound)) } else { singles.append(contentsOf: run) }
        }
        for v in singles { element("TrunkedVLANList", String(v)) }
        for (lo, hi) in ranges { lines.append("<vsx:TrunkedVLANRange First=\"\(lo)\" Last=\"\(hi)\"/>") }
        element("Dot1qAcceptableVLANFramesTypes", p.acceptableFrameTypes.map { String($0.rawValue) })
        element("NativeVLANEgressTagged", p.nativeVLANEgressTagged.map { $0 ? "true" : "false" })
        element("PriorityViolationAction", p.priorityViolationAction?.rawValue)
        element("TransmitBurstSize", p.transmitBurstSize.map { String($0) })
        element("ReceiveBurstSize", p.receiveBurstSize.map { String($0) })
        element("MaxNumMACAddress", p.maxNumMACAddress.map { String($0) })
        element("MACLimitAction", p.macLimitAction?.rawValue)
        element("BroadcastStormLimit", p.broadcastStormLimit.map { String($0) })
        element("MulticastStormLimit", p.multicastStormLimit.map { String($0) })
        element("UnknownUnicastStormLimit", p.unknownUnicastStormLimit.map { String($0) })
        if let m = p.monitorMode {
            let session = p.monitorSession.map { " Session=\"\(escapeAttribute($0))\"" } ?? ""
            lines.append("<vsx:MonitorMode\(session)>\(m.rawValue)</vsx:MonitorMode>")
        }
        element("EnableDhcpGuard", p.enableDhcpGuard.map { $0 ? "true" : "false" })
        element("EnableRouterGuard", p.enableRouterGuard.map { $0 ? "true" : "false" })
        element("InboundAclDefaultAction", p.inboundAclDefaultAction?.rawValue)
        element("OutboundAclDefaultAction", p.outboundAclDefaultAction?.rawValue)
        for rule in p.acls { lines.append(acl(rule)) }
        return lines
    }

    static func acl(_ r: ACLRule) -> String {
        var attrs: [(String, String?)] = [
            ("Name", r.name), ("Direction", r.direction.rawValue), ("Action", r.action.rawValue), ("Weight", String(r.weight)),
            ("LocalMACAddress", r.localMAC?.description), ("RemoteMACAddress", r.remoteMAC?.description),
            ("EtherType", r.etherType.map(ACLReader.hex4)),
            ("VLANID", r.vlanID.map { String($0) }), ("Priority", r.priority.map { String($0) }),
            ("LocalIPAddress", r.localIP), ("RemoteIPAddress", r.remoteIP), ("Protocol", r.proto),
            ("LocalPort", r.localPort), ("RemotePort", r.remotePort),
            ("ICMPType", r.icmpType.map { String($0) }), ("ICMPCode", r.icmpCode.map { String($0) }),
        ]
        attrs.removeAll { $0.1 == nil }
        return "<vsx:Acl" + attrs.map { " \($0.0)=\"\(escapeAttribute($0.1!))\"" }.joined() + "/>"
    }

    static func escapeText(_ s: String) -> String {
        var out = ""
        for c in s.unicodeScalars {
            switch c {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\r": out += "&#13;"
            default: out.unicodeScalars.append(c)
            }
        }
        return out
    }

    static func escapeAttribute(_ s: String) -> String {
        var out = ""
        for c in s.unicodeScalars {
            switch c {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "\t": out += "&#9;"
            case "\n": out += "&#10;"
            case "\r": out += "&#13;"
            default: out.unicodeScalars.append(c)
            }
        }
        return out
    }
}
