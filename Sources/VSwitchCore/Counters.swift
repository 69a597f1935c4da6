// Counters and drop reasons (dataplane.md "Counters and drop reasons").
//
// Each forwarding thread owns one CounterBlock: a flat array of 64-bit cells,
// `PortCounter.count` cells per port index. The owner thread updates a cell
// with a relaxed load + relaxed store (a plain `mov` on x86, no locked
// instruction); any thread may read a cell with a relaxed load at any time.
// Readers sum the blocks of all threads. Every dropped frame is counted under
// exactly one `DropReason`.

import Atomics

/// Why a frame was dropped. Raw values index the per-port counter cells.
public enum DropReason: UInt8, CaseIterable, Sendable {
    case malformed = 0
    case mtuExceeded
    case vlanNotAllowed
    case untaggedNotAllowed
    case spoofedSource
    case invalidSource
    case priorityNotAllowed
    case aclDeny
    case policer
    case storm
    case macLimit
    case dhcpGuard
    case routerGuard
    case noDestination
    case sameSegment
    case txQueueFull
    case txError
    case portDown

    /// The name used in logs, text and JSON output, and metrics labels.
    public var name: String {
        switch self {
        case .malformed: "malformed"
        case .mtuExceeded: "mtu-exceeded"
        case .vlanNotAllowed: "vlan-not-allowed"
        case .untaggedNotAllowed: "untagged-not-allowed"
        case .spoofedSource: "spoofed-source"
        case .invalidSource: "invalid-source"
        case .priorityNotAllowed: "priority-not-allowed"
        case .aclDeny: "acl-deny"
        case .policer: "policer"
        case .storm: "storm"
        case .macLimit: "mac-limit"
        case .dhcpGuard: "dhcp-guard"
        case .routerGuard: "router-guard"
        case .noDestination: "no-destination"
        case .sameSegment: "same-segment"
        case .txQueueFull: "tx-queue-full"
        case .txError: "tx-error"
        case .portDown: "port-down"
        }
    }
}

/// Cell layout of one port inside a CounterBlock.
public enum PortCounter {
    public static let rxPackets = 0
    public static let rxBytes = 1
    public static let txPackets = 2
    public static let txBytes = 3
    public static let floods = 4          // frames from this port that were flooded
    public static let macMoves = 5        // MACs that moved onto this port
    public static let learnTableFull = 6  // new MACs not learned: switch-wide table full
    public static let captureCopies = 7   // capture copies of this port's frames taken into a capture ring (issue 4)
    public static let dropBase = 8
    public static let captureDrops = 29  // capture copies refused: the capture ring was full (issue 4)
    public static let mirrorSent = 30    // mirror copies sent out of this (destination) port
    public static let mirrorDrops = 31   // mirror copies this port could not take (queue full, error)
    public static let count = 32          // cells per port (room for more reasons)
}

/// One thread's counters for up to `maxPorts` ports.
public struct CounterBlock: @unchecked Sendable {
    public let maxPorts: Int
    @usableFromInline let cells: UnsafeMutablePointer<UnsafeAtomic<UInt64>.Storage>

    public init(maxPorts: Int) {
        self.maxPorts = maxPorts
        cells = .allocate(capacity: maxPorts * PortCounter.count)
        for i in 0..<(maxPorts * PortCounter.count) { (cells + i).initialize(to: .init(0)) }
    }

    public func deallocate() { cells.deallocate() }

    /// Owner thread only.
    @inlinable @inline(__always)
    public func add(port: Int, _ cell: Int, _ n: UInt64) {
        let a = UnsafeAtomic<UInt64>(at: cells + (port &* PortCounter.count &+ cell))
        a.store(a.load(ordering: .relaxed) &+ n, ordering: .relaxed)
    }

    @inlinable @inline(__always)
    public func drop(port: Int, _ reason: UInt8) {
        add(port: port, PortCounter.dropBase &+ Int(reason), 1)
    }

    /// Any thread.
    public func read(port: Int, _ cell: Int) -> UInt64 {
        UnsafeAtomic<UInt64>(at: cells + (port * PortCounter.count + cell)).load(ordering: .relaxed)
    }

    /// Owner thread, or when the owner is stopped: zero one port's cells (port index reuse).
    public func reset(port: Int) {
        for c in 0..<PortCounter.count {
            UnsafeAtomic<UInt64>(at: cells + (port * PortCounter.count + c)).store(0, ordering: .relaxed)
        }
    }
}

/// A port's counters summed over threads (control path).
public struct PortCounters: Equatable, Sendable {
    public var rxPackets: UInt64 = 0
    public var rxBytes: UInt64 = 0
    public var txPackets: UInt64 = 0
    public var txBytes: UInt64 = 0
    public var floods: UInt64 = 0
    public var macMoves: UInt64 = 0
    public var learnTableFull: UInt64 = 0
    public var captureCopies: UInt64 = 0
    public var captureDrops: UInt64 = 0
    public var mirrorSent: UInt64 = 0
    public var mirrorDrops: UInt64 = 0
    public var drops: [DropReason: UInt64] = [:]

    public init() {}

    public init(port: Int, blocks: [CounterBlock]) {
        for b in blocks {
            rxPackets &+= b.read(port: port, PortCounter.rxPackets)
            rxBytes &+= b.read(port: port, PortCounter.rxBytes)
            txPackets &+= b.read(port: port, PortCounter.txPackets)
            txBytes &+= b.read(port: port, PortCounter.txBytes)
            floods &+= b.read(port: port, PortCounter.floods)
            macMoves &+= b.read(port: port, PortCounter.macMoves)
            learnTableFull &+= b.read(port: port, PortCounter.learnTableFull)
            captureCopies &+= b.read(port: port, PortCounter.captureCopies)
            captureDrops &+= b.read(port: port, PortCounter.captureDrops)
            mirrorSent &+= b.read(port: port, PortCounter.mirrorSent)
            mirrorDrops &+= b.read(port: port, PortCounter.mirrorDrops)
            for r in DropReason.allCases {
                let v = b.read(port: port, PortCounter.dropBase + Int(r.rawValue))
                if v > 0 { drops[r, default: 0] &+= v }
            }
        }
    }

    public var totalDrops: UInt64 { drops.values.reduce(0, &+) }
    public func drops(_ r: DropReason) -> UInt64 { drops[r] ?? 0 }
}
