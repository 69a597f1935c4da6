// PortBackend: the one batch interface every port kind implements (design.md
// point 6). A forwarding thread is generic over its backend, so calls are
// specialised and inlined: no existential, no dynamic dispatch per frame.
// "Would block" (EAGAIN) is a normal result, not an error.

import VSwitchPacket

public enum SendResult: UInt8 {
    case sent
    case wouldBlock   // queue full: counted as tx-queue-full
    case failed       // counted as tx-error (e.g. the device vanished)
}

public protocol PortBackend {
    /// Reads up to `batch.capacity` frames from `port` into `batch` (sets `batch.count`).
    /// Returns the number read; 0 when nothing is waiting.
    mutating func receive(port: Int, entry: UnsafeMutablePointer<PortEntry>, into batch: inout FrameBatch) -> Int
    /// Sends frame `frame` of `batch` (already in the port's wire form) out of `port`.
    mutating func send(port: Int, entry: UnsafeMutablePointer<PortEntry>, batch: FrameBatch, frame: Int) -> SendResult
}
