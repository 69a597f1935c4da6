// MoveLog: a single-producer / single-consumer ring of MAC-move events.
//
// The forwarding thread that sees a MAC move (producer) pushes (MAC, VLAN,
// from, to) without blocking; when the ring is full the event is dropped and
// counted (the per-port macMoves counter still counts every move). The control
// thread (consumer) drains it and logs, rate-limited. No allocation after init.

import Atomics

public struct MACMove: Equatable, Sendable {
    public var mac: UInt64
    public var vlan: UInt16
    public var from: Int
    public var to: Int
    public init(mac: UInt64, vlan: UInt16, from: Int, to: Int) { self.mac = mac; self.vlan = vlan; self.from = from; self.to = to }
}

public final class MoveLog: @unchecked Sendable {
    let capacity: Int
    let ring: UnsafeMutablePointer<MACMove>
    let head = ManagedAtomic<Int>(0)   // next slot to write (producer)
    let tail = ManagedAtomic<Int>(0)   // next slot to read (consumer)
    public let lost = ManagedAtomic<Int>(0)

    public init(capacity: Int = 256) {
        self.capacity = capacity
        ring = .allocate(capacity: capacity)
        ring.initialize(repeating: MACMove(mac: 0, vlan: 0, from: 0, to: 0), count: capacity)
    }

    deinit { ring.deallocate() }

    /// Producer (one forwarding thread).
    @inline(__always)
    public func push(_ m: MACMove) {
        let h = head.load(ordering: .relaxed)
        if h &- tail.load(ordering: .acquiring) >= capacity {
            lost.wrappingIncrement(ordering: .relaxed)
            return
        }
        ring[h % capacity] = m
        head.store(h &+ 1, ordering: .releasing)
    }

    /// Consumer (control thread).
    public func drain() -> [MACMove] {
        let t = tail.load(ordering: .relaxed)
        let h = head.load(ordering: .acquiring)
        var out: [MACMove] = []
        out.reserveCapacity(h - t)
        for i in t..<h { out.append(ring[i % capacity]) }
        tail.store(h, ordering: .releasing)
        return out
    }
}
