import Atomics
import VSwitchCore
import VSwitchPacket
#if canImport(Glibc)
import Glibc
#endif

/// A backend for ForwardingThread tests (QuiescenceTests, IdleSpinTests): every prepared port is always
/// ready; each receive takes `delayUs` (a slow port) and gives one unicast frame while `frames` lasts (nil:
/// forever); every poll counts in `passes`, and in `zeroPolls` or `sleepPolls` by whether it could sleep
/// (timeout > 0, which then stands for epoll_wait's sleep with 1 ms).
struct ScriptedBackend: PollingBackend {
    var delayUs: UInt32 = 0
    var frames: ManagedAtomic<Int>? = nil
    let passes = ManagedAtomic<Int>(0)
    let zeroPolls = ManagedAtomic<Int>(0)
    let sleepPolls = ManagedAtomic<Int>(0)
    var prepared: [Int] = []
    /// Receives per port index (nil: not counted).
    var served: ServedCounts? = nil

    mutating func receive(port: Int, entry: UnsafeMutablePointer<PortEntry>, into batch: inout FrameBatch) -> Int {
        batch.count = 0
        if let frames {
            guard frames.load(ordering: .relaxed) > 0 else { return 0 }
            frames.wrappingDecrement(ordering: .relaxed)
        }
        if delayUs > 0 { usleep(delayUs) }
        served?.counts[port].wrappingIncrement(ordering: .relaxed)
        let p = batch.receiveBuffer(0)
        for k in 0..<12 { p.storeBytes(of: UInt8(k == 6 ? 2 : k == 11 ? UInt8(port & 0xFF) : 0x02), toByteOffset: k, as: UInt8.self) }
        p.storeBytes(of: UInt16(0x0800).bigEndian, toByteOffset: 12, as: UInt16.self)
        batch.setReceived(0, length: 64)
        batch.count = 1
        return 1
    }

    mutating func send(port: Int, entry: UnsafeMutablePointer<PortEntry>, batch: FrameBatch, frame: Int) -> SendResult { .sent }

    mutating func prepare(ports: UnsafePointer<UInt16>, count: Int, view: UnsafeMutablePointer<ConfigView>) {
        prepared = (0..<count).map { Int(ports[$0]) }
    }

    mutating func poll(timeoutMs: Int32, ready: UnsafeMutablePointer<UInt16>) -> Int {
        passes.wrappingIncrement(ordering: .relaxed)
        if timeoutMs == 0 {
            zeroPolls.wrappingIncrement(ordering: .relaxed)
        } else {
            sleepPolls.wrappingIncrement(ordering: .relaxed)
            usleep(1000)
        }
        for (k, p) in prepared.enumerated() { ready[k] = UInt16(p) }
        return prepared.count
    }
}

/// Per-port receive counts of a ScriptedBackend (shared with the test thread).
final class ServedCounts: @unchecked Sendable {
    let counts: [ManagedAtomic<Int>]
    init(ports: Int) { counts = (0..<ports).map { _ in ManagedAtomic<Int>(0) } }
    func snapshot() -> [Int] { counts.map { $0.load(ordering: .relaxed) } }
}
