// CIMView: the switch and its ports as the DMTF Virtual System Ethernet Switch Profile (DSP1097) names
// them, written as XML in the WS-CIM encoding (DSP0230): each instance is an element named after its
// class in the namespace http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/<Class>, each property a child
// element of that namespace, an array property the element repeated, NULL xsi:nil="true".
// `vswitchctl show --format cim` prints it (the daemon renders it: it holds the bound profiles).
//
// Output: <vsv:CIMView> holding one CIM_VirtualEthernetSwitchSettingData, then per port (by index) one
// CIM_EthernetPort and one CIM_EthernetPortAllocationSettingData. Names, values and the reasons for
// them: docs/cim-view.md. Deterministic: the same state gives the same bytes.
//
// Threading: pure function, any thread.

import VSwitchPolicy

public enum CIMView {
    public static let cimSchemaBase = "http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/"
    public static let viewNamespace = "urn:vswitch:cim-view:1"
    /// CIM_VirtualEthernetSwitchSettingData.EVBMode: 0 Unknown, 1 Other, 2 VEB, 3 VEPA, 4 Direct, 5 S-VLAN Component.
    public static let evbModeVEB = 2
    /// CIM_ResourceAllocationSettingData.ResourceType 33 = "Ethernet Connection" (DSP1050).
    public static let resourceTypeEthernetConnection = 33

    public struct Switch: Sendable {
        public var name: String
        public var macTableSize: Int
        public var macAgingTime: Int
        public init(name: String, macTableSize: Int, macAgingTime: Int) {
            self.name = name; self.macTableSize = macTableSize; self.macAgingTime = macAgingTime
        }
    }

    public enum Link: Sendable { case up, down, detached }

    public struct Port: Sendable {
        public var index: Int
        public var name: String
        public var type: String
        public var mac: String?
        public var mtu: Int
        public var link: Link
        public var profile: PortProfile
        public init(index: Int, name: String, type: String, mac: String?, mtu: Int, link: Link, profile: PortProfile) {
            self.index = index; self.name = name; self.type = type; self.mac = mac; self.mtu = mtu
            self.link = link; self.profile = profile
        }
    }

    /// The VLANs a profile places its port in: access → its VLAN, trunk → native + trunked, tunnel → its S-VLAN.
    public static func vlans(of p: PortProfile) -> [UInt16] {
        var s = Set<UInt16>()
        if let v = p.effectivePortVID { s.insert(v) }
        if p.mode == .trunk { s.formUnion(p.trunkedVLANs) }
        return s.sorted()
    }

    /// A MAC as CIM_NetworkPort / RASD.Address spell it: twelve upper-case hex digits, no separators.
    public static func cimMAC(_ mac: String) -> String {
        String(mac.uppercased().filter { $0.isHexDigit })
    }

    public static func render(switch sw: Switch, ports: [Port]) -> String {
        let ports = ports.sorted { $0.index < $1.index }
        let vessd = "CIM_VirtualEthernetSwitchSettingData", ep = "CIM_EthernetPort"
        let epasd = "CIM_EthernetPortAllocationSettingData"
        var s = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
        s += "<vsv:CIMView xmlns:vsv=\"\(viewNamespace)\" xmlns:vsx=\"\(ProfileNamespace.vsx)\""
        s += " xmlns:vessd=\"\(cimSchemaBase)\(vessd)\" xmlns:ep=\"\(cimSchemaBase)\(ep)\""
        s += " xmlns:epasd=\"\(cimSchemaBase)\(epasd)\""
        s += " xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" Profile=\"DSP1097\">\n"

        // The switch.
        let allVLANs = Set(ports.flatMap { vlans(of: $0.profile) }).sorted()
        s += "  <vessd:\(vessd)>\n"
        var sp: [(String, [String?])] = [
            ("Caption", ["VSwitch userspace virtual Ethernet switch"]),
            ("ElementName", [sw.name]),
            ("EVBMode", [String(evbModeVEB)]),
            ("InstanceID", ["VSwitch:\(sw.name)"]),
            ("MaxNumMACAddress", [String(sw.macTableSize)]),
            ("VirtualSystemIdentifier", [sw.name]),
            ("VirtualSystemType", ["VSwitch:VirtualEthernetSwitch"]),
        ]
        if !allVLANs.isEmpty { sp.append(("VLANConnection", allVLANs.map { String($0) })) }
        s += properties("vessd", sp.sorted { $0.0 < $1.0 }, indent: "    ")
        s += "  </vessd:\(vessd)>\n"

        for p in ports {
            // The switch port.
            let enabled: Int, operational: Int
            switch p.link {
            case .up: enabled = 2; operational = 2            // Enabled, OK
            case .down: enabled = 6; operational = 10         // Enabled but Offline, Stopped
            case .detached: enabled = 3; operational = 13     // Disabled, Lost Communication
            }
            var pp: [(String, [String?])] = [
                ("ActiveMaximumTransmissionUnit", [String(p.mtu)]),
                ("CreationClassName", [ep]),
                ("DeviceID", [p.name]),
                ("ElementName", [p.name]),
                ("EnabledState", [String(enabled)]),
                ("LinkTechnology", ["2"]),
                ("OperationalStatus", [String(operational)]),
                ("PortNumber", [String(p.index)]),
                ("SystemCreationClassName", ["CIM_ComputerSystem"]),
                ("SystemName", [sw.name]),
            ]
            if let mac = p.mac {
                pp.append(("NetworkAddresses", [cimMAC(mac)]))
                pp.append(("PermanentAddress", [cimMAC(mac)]))
            }
            s += "  <ep:\(ep)>\n" + properties("ep", pp.sorted { $0.0 < $1.0 }, indent: "    ") + "  </ep:\(ep)>\n"

            // Its allocation: port identity, then the bound profile's EPASD properties and extensions.
            var ap: [String: [String?]] = [
                "Connection": [sw.name],
                "ElementName": [p.name],
                "InstanceID": ["VSwitch:\(sw.name)/\(p.name)"],
                "ResourceType": [String(resourceTypeEthernetConnection)],
                "ResourceSubType": ["VSwitch:\(p.type)"],
                "Caption": [p.profile.elementName],
            ]
            if let mac = p.mac { ap["Address"] = [cimMAC(mac)] }
            for (name, values) in ProfileWriter.dmtfProperties(p.profile)
            where !["InstanceID", "ElementName", "Caption"].contains(name) {
                ap[name] = values
            }
            s += "  <epasd:\(epasd)>\n"
            s += properties("epasd", ap.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }, indent: "    ")
            for line in ProfileWriter.extensions(p.profile) {
                s += "    " + line + "\n"
            }
            s += "  </epasd:\(epasd)>\n"
        }
        s += "</vsv:CIMView>\n"
        return s
    }

    static func properties(_ prefix: String, _ props: [(String, [String?])], indent: String) -> String {
        var s = ""
        for (name, values) in props {
            for v in values {
                if let v { s += "\(indent)<\(prefix):\(name)>\(escape(v))</\(prefix):\(name)>\n" }
                else { s += "\(indent)<\(prefix):\(name) xsi:nil=\"true\"/>\n" }
            }
        }
        return s
    }

    /// Text content escaped for XML 1.0; characters XML 1.0 cannot carry at all (C0 controls other than
    /// tab, LF, CR; U+FFFE/U+FFFF) become U+FFFD so the document always parses.
    public static func escape(_ s: String) -> String {
        var out = ""
        for c in s.unicodeScalars {
            switch c {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "\r": out += "&#13;"
            case "\t", "\n": out.unicodeScalars.append(c)
            default:
                if c.value < 0x20 || c.value == 0xFFFE || c.value == 0xFFFF { out += "\u{FFFD}" }
                else { out.unicodeScalars.append(c) }
            }
        }
        return out
    }
}
