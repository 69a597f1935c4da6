// PortBackend: the one batch interface every port kind implements (design.md
// point 6). A forwarding thread is generic over its backend, so calls are
// specialised and inlined: no existential, no dynamic dispatch per frame.
// "Would block" (EAGAIN) is a normal result, not an error.

import VSwitchPacket

public enum SendResult: UInt8 {
    case sent
    case wouldBlock   // queue full: counted as tx-queue-full
    case failed       // counted as tx-error (e.g. the device vanished)
    case queued       // accepted for a batched submission; its outcome is reported by `flush`
}

/// Outcome of the frames a backend queued for one port (see `PortBackend.flush`).
public struct FlushResult {
    public var sent: UInt64 = 0
    public var bytes: UInt64 = 0
    public var wouldBlock: UInt64 = 0
    public var failed: UInt64 = 0
    @inlinable public init() {}
}

public protocol PortBackend {
    /// Reads up to `batch.capacity` frames from `port` into `batch` (sets `batch.count`).
    /// Returns the number read; 0 when nothing is waiting.
    mutating func receive(port: Int, entry: UnsafeMutablePointer<PortEntry>, into batch: inout FrameBatch) -> Int
    /// Sends frame `frame` of `batch` (already in the port's wire form) out of `port`.
    mutating func send(port: Int, entry: UnsafeMutablePointer<PortEntry>, batch: FrameBatch, frame: Int) -> SendResult
    /// Completes every frame queued for `port` (called after the engine's last `send` to that port in
    /// a batch, before any of those frames' bytes change again). Backends that send synchronously
    /// keep the default, which reports nothing.
    mutating func flush(port: Int, entry: UnsafeMutablePointer<PortEntry>) -> FlushResult
}

public extension PortBackend {
    @inlinable @inline(__always)
    mutating func flush(port: Int, entry: UnsafeMutablePointer<PortEntry>) -> FlushResult { FlushResult() }
}
