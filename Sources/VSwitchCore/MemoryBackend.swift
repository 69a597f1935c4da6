// MemoryBackend: in-memory ports for unit tests of the pipeline and for the
// core benchmark's correctness checks. Frames queued per port are received
// in batches; frames sent are recorded per port in their wire form.
// Single-threaded use only (tests drive it from one thread). Not a substitute
// for the TAP integration tests.

import VSwitchPacket

public final class MemoryPorts {
    public var inbound: [Int: [[UInt8]]] = [:]
    public var outbound: [Int: [[UInt8]]] = [:]
    /// Ports whose transmit queue is "full": sends return `.wouldBlock`.
    public var full: Set<Int> = []
    public init() {}

    public func enqueue(_ port: Int, _ frame: [UInt8]) { inbound[port, default: []].append(frame) }
    public func sent(_ port: Int) -> [[UInt8]] { outbound[port] ?? [] }
    public func clearSent() { outbound.removeAll() }
}

public struct MemoryBackend: PollingBackend {
    public let store: MemoryPorts
    var prepared: [Int] = []

    public init(store: MemoryPorts) { self.store = store }

    public mutating func receive(port: Int, entry: UnsafeMutablePointer<PortEntry>, into batch: inout FrameBatch) -> Int {
        batch.count = 0
        guard var q = store.inbound[port], !q.isEmpty else { return 0 }
        while batch.count < batch.capacity, !q.isEmpty {
            _ = batch.append(q.removeFirst())
        }
        store.inbound[port] = q
        return batch.count
    }

    public mutating func send(port: Int, entry: UnsafeMutablePointer<PortEntry>, batch: FrameBatch, frame: Int) -> SendResult {
        if store.full.contains(port) { return .wouldBlock }
        store.outbound[port, default: []].append(batch.bytes(frame))
        return .sent
    }

    public mutating func prepare(ports: UnsafePointer<UInt16>, count: Int, view: UnsafeMutablePointer<ConfigView>) {
        prepared = (0..<count).map { Int(ports[$0]) }
    }

    public mutating func poll(timeoutMs: Int32, ready: UnsafeMutablePointer<UInt16>) -> Int {
        var n = 0
        for p in prepared where !(store.inbound[p]?.isEmpty ?? true) { ready[n] = UInt16(p); n += 1 }
        return n
    }
}
