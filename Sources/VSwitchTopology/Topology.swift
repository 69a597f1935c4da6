// VSwitchTopology — topology documents: switch settings, profile files, ports, virtual systems.
//
// Design
// - A topology (namespace urn:vswitch:topology:1) names the profile files to load (paths
//   relative to the topology file), the switch settings and the ports; each port is bound
//   to one profile by ID and may describe the virtual system behind it (network namespace,
//   interface name, MAC, addresses) for the daemon to provision.
// - Reading: VSwitchXML parses and validates against the shipped XSD
//   (Sources/VSwitchProfiles/Schema/topology.xsd, compiled in from an identical copy); then
//   TopologyReader checks what an XSD cannot (unique names, namespaces and MACs, profile
//   bindings, CIDR syntax, burst sizes against the port MTU). Profile files go through
//   VSwitchProfiles; their diagnostics keep their own file names. Profile IDs must be
//   unique across all files.
// - All or nothing: any error refuses the topology; `TopologyLoadError` carries every
//   diagnostic. Warnings of an accepted topology are in `Topology.warnings`.
//
// Threading
// - Control plane only; synchronous and reentrant, callable from any thread (libxml2 work is
//   serialised inside VSwitchXML). The result is a plain Sendable value.

import VSwitchXML
import VSwitchProfiles
import VSwitchPacket

public enum PortKind: String, Sendable, Equatable, CaseIterable {
    /// A TAP device created (or adopted) by the switch.
    case tap
    /// An existing interface (veth end, a TAP QEMU owns, an uplink) attached through AF_PACKET rings.
    case netdev
}

public struct SwitchSettings: Sendable, Equatable {
    /// Seconds a learned MAC address stays without traffic (10...3600).
    public var macAgingTime: Int
    /// Entries of the MAC table (1...4_000_000).
    public var macTableSize: Int
    /// Forwarding threads (0...64); 0 = one per core.
    public var forwardingThreads: Int
    /// Default per-port learning limit, for profiles without MaxNumMACAddress; nil = no limit.
    public var maxMACsPerPort: UInt32?

    public init(macAgingTime: Int = 300, macTableSize: Int = 65536, forwardingThreads: Int = 0, maxMACsPerPort: UInt32? = nil) {
        self.macAgingTime = macAgingTime
        self.macTableSize = macTableSize
        self.forwardingThreads = forwardingThreads
        self.maxMACsPerPort = maxMACsPerPort
    }

    public static let macAgingTimeRange = 10...3600
    public static let macTableSizeRange = 1...4_000_000
    public static let forwardingThreadsRange = 0...64
}

public struct VirtualSystem: Sendable, Equatable {
    /// Network namespace name (`ip netns`), unique across the topology.
    public var namespace: String
    /// Interface name inside the namespace (default eth0).
    public var interfaceName: String
    public var mac: MACAddress
    /// IPv4/IPv6 addresses with prefix, as written (`10.0.10.1/24`).
    public var addresses: [String]

    public init(namespace: String, interfaceName: String = "eth0", mac: MACAddress, addresses: [String] = []) {
        self.namespace = namespace
        self.interfaceName = interfaceName
        self.mac = mac
        self.addresses = addresses
    }
}

public struct TopologyPort: Sendable, Equatable {
    public var name: String
    public var kind: PortKind
    /// The bound profile's NetworkPortProfileID (as the profile spells it).
    public var profileID: String
    public var mtu: Int
    /// The port's MAC binding: the VirtualSystem's MACAddress, else the Port's MACAddress attribute.
    public var mac: MACAddress?
    /// Use an existing TAP device of this name instead of creating one (and leave it on shutdown).
    public var adopt: Bool
    public var virtualSystem: VirtualSystem?
    /// netdev ports: the existing interface attached.
    public var interface: String?
    /// tap ports: offloads (IFF_VNET_HDR, checksum, TSO); nil = default (on).
    public var offload: Bool?

    public init(name: String, kind: PortKind = .tap, profileID: String, mtu: Int = 1500, mac: MACAddress? = nil,
                adopt: Bool = false, virtualSystem: VirtualSystem? = nil) {
        self.name = name
        self.kind = kind
        self.profileID = profileID
        self.mtu = mtu
        self.mac = mac
        self.adopt = adopt
        self.virtualSystem = virtualSystem
    }
}

public struct Topology: Sendable {
    public var name: String
    /// Absolute path of the topology file.
    public var path: String
    public var settings: SwitchSettings
    /// Absolute paths of the profile files, in document order.
    public var profileFiles: [String]
    /// The profiles of all files, merged (IDs unique across files).
    public var profiles: ProfileSet
    public var ports: [TopologyPort]
    /// Warnings of the topology and of its profile files.
    public var warnings: [XMLDiagnostic]

    public init(name: String, path: String, settings: SwitchSettings = SwitchSettings(), profileFiles: [String] = [],
                profiles: ProfileSet = ProfileSet(), ports: [TopologyPort] = [], warnings: [XMLDiagnostic] = []) {
        self.name = name
        self.path = path
        self.settings = settings
        self.profileFiles = profileFiles
        self.profiles = profiles
        self.ports = ports
        self.warnings = warnings
    }

    public func port(named name: String) -> TopologyPort? { ports.first { $0.name == name } }
}

/// A refused topology: every diagnostic (of the topology and its profile files), in order.
public struct TopologyLoadError: Error, CustomStringConvertible, Sendable {
    public var diagnostics: [XMLDiagnostic]
    public init(diagnostics: [XMLDiagnostic]) { self.diagnostics = diagnostics }
    public var errors: [XMLDiagnostic] { diagnostics.filter(\.isError) }
    public var description: String { diagnostics.map(\.description).joined(separator: "\n") }
}

public enum TopologyLoader {
    public static let namespace = "urn:vswitch:topology:1"
    public static let limits = XMLLimits(maxBytes: 4 << 20, maxDepth: 64)

    /// Reads a topology file and every profile file it names.
    public static func load(path: String) throws -> Topology {
        let absolute = Paths.absolute(path)
        let bytes: [UInt8]
        do {
            bytes = try XMLParser.readFile(path: path, maxBytes: limits.maxBytes)
        } catch {
            throw TopologyLoadError(diagnostics: error.diagnostics)
        }
        let schema: XMLSchema
        switch TopologySchema.compiled {
        case .success(let s): schema = s
        case .failure(let e): throw TopologyLoadError(diagnostics: e.diagnostics)
        }
        let parsed: XMLParseResult
        do {
            parsed = try XMLParser.parse(bytes: bytes, fileName: path, limits: limits, schema: schema)
        } catch {
            throw TopologyLoadError(diagnostics: error.diagnostics)
        }
        var reader = TopologyReader(file: path, absolutePath: absolute)
        let topology = reader.read(parsed.document.root)
        var out = reader.out
        out.append(contentsOf: parsed.warnings)
        if reader.rootIsTopology {
            out.merge(validation: parsed.validationIssues, profileOf: { _ in nil })
        }
        var diagnostics = out.sorted
        // Profile-file diagnostics after the topology's own, each file's in document order.
        diagnostics += reader.profileDiagnostics
        if diagnostics.contains(where: \.isError) {
            throw TopologyLoadError(diagnostics: diagnostics)
        }
        var result = topology
        result.warnings = diagnostics
        return result
    }

    /// Loads and merges profile files (for a reload): IDs must be unique across files.
    /// Throws `TopologyLoadError` with the diagnostics of every file.
    public static func loadProfiles(paths: [String]) throws -> ProfileSet {
        var merger = ProfileMerger()   // IDs and InstanceIDs unique across files (shared with the daemon)
        var diagnostics: [XMLDiagnostic] = []
        for path in paths {
            do {
                let set = try ProfileLoader.load(path: path)
                diagnostics += set.warnings
                diagnostics += merger.add(file: path, set).map(\.diagnostic)
            } catch let e as ProfileLoadError {
                diagnostics += e.diagnostics
            }
        }
        if diagnostics.contains(where: \.isError) { throw TopologyLoadError(diagnostics: diagnostics) }
        return merger.merged
    }
}

@_spi(Differential) public enum TopologySchema {
    public static let compiled: Result<XMLSchema, XMLError> = {
        do throws(XMLError) {
            return .success(try XMLSchema(main: "topology.xsd", documents: ["topology.xsd": EmbeddedTopologySchema.topology],
                                          prefixes: [TopologyLoader.namespace: ""]))
        } catch {
            return .failure(error)
        }
    }()
}
