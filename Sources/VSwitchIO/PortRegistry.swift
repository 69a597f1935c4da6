// PortRegistry: how a forwarding thread finds the state of a port that is not a plain fd.
//
// Netdev and replay ports keep their ring / file state in raw, manually allocated structs
// (NetdevRing, ReplayState); their PortEntry.handle is a slot of this registry, which holds the
// struct's address. The control thread fills a slot before publishing the snapshot that names it
// and clears it only after the snapshot without the port has been published (grace period
// passed), so a forwarding thread reads a slot with one plain load — no ARC, no lock.
//
// Threading: `register` / `unregister` on the control thread only; `slot` from any thread.

public enum PortRegistry {
    public static let capacity = 1024
    nonisolated(unsafe) static let slots: UnsafeMutablePointer<UnsafeMutableRawPointer?> = {
        let p = UnsafeMutablePointer<UnsafeMutableRawPointer?>.allocate(capacity: capacity)
        p.initialize(repeating: nil, count: capacity)
        return p
    }()

    /// Stores `state` in a free slot; returns the slot (the port's handle), or nil when full.
    public static func register(_ state: UnsafeMutableRawPointer) -> Int32? {
        for i in 0..<capacity where slots[i] == nil {
            slots[i] = state
            return Int32(i)
        }
        return nil
    }

    public static func unregister(_ slot: Int32) {
        if slot >= 0 && Int(slot) < capacity { slots[Int(slot)] = nil }
    }

    @inline(__always)
    public static func state(_ slot: Int32) -> UnsafeMutableRawPointer? {
        slot >= 0 && Int(slot) < capacity ? slots[Int(slot)] : nil
    }
}
