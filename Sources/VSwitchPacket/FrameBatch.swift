// VSwitchPacket — the only module that touches raw frame memory.
//
// Design: a FrameBatch is a fixed-capacity set of frame buffers carved out of
// one preallocated, 64-byte aligned block (the pool). Every buffer has
// `headroom` bytes in front of the frame so that 802.1Q / 802.1ad tags can be
// pushed in place (move 12 bytes, write 4) without copying the payload.
// Metadata lives beside the buffers in a struct-of-arrays (`FrameMeta`), so
// the pipeline reads and writes plain integers. Nothing here allocates after
// `init`; nothing here is reference counted (the batch is a struct of
// pointers; its owner calls `deallocate()` once).
//
// Threading: a batch belongs to one forwarding thread at a time. It is not
// shared; no synchronisation is needed or done here.

/// Per-frame metadata written by the receive path and the pipeline.
public struct FrameMeta {
    /// Offset of the first byte of the frame from the buffer start.
    public var head: UInt32
    /// Frame length in bytes (Ethernet header to end of payload, no FCS).
    public var length: UInt32
    /// Length as received on the wire (for rx byte counters).
    public var wireLength: UInt32
    /// Internal VLAN assigned at ingress (1...4094).
    public var vlan: UInt16
    /// 802.1p priority carried inside the switch.
    public var pcp: UInt8
    /// Pipeline flags: `FrameMeta.tagged` = the frame currently carries the switch's 802.1Q tag at offset 12.
    public var flags: UInt8
    /// Decision: an output port index, `FrameMeta.flood`, or `FrameMeta.drop`.
    public var output: UInt16
    /// Drop reason code when `output == FrameMeta.drop` (meaning defined by the core).
    public var reason: UInt8
    public var reserved: UInt8 = 0

    public static let tagged: UInt8 = 1
    /// The frame belongs to a Dot1Q-tunnel (QinQ) VLAN: trunks carry it with an 802.1ad S-tag.
    public static let serviceTag: UInt8 = 2
    /// The engine's flow key for this frame was computed at ingress (and stays valid at egress).
    public static let flowKeyValid: UInt8 = 4
    /// The inbound ACL of the frame's unicast output port (`output`) was evaluated at ingress, with the
    /// outbound ACL, in one verdict-cache probe; `inboundACLDenied` holds its answer.
    public static let inboundACLChecked: UInt8 = 0x40
    public static let inboundACLDenied: UInt8 = 0x80
    public static let flood: UInt16 = 0xFFFF
    public static let drop: UInt16 = 0xFFFE
}

public struct FrameBatch {
    public let capacity: Int
    public let bufferSize: Int
    public let headroom: Int
    public var count: Int = 0
    @usableFromInline let base: UnsafeMutableRawPointer
    public let meta: UnsafeMutablePointer<FrameMeta>

    /// Default headroom: room for two tags pushed in front, rounded to a cache line.
    public static let defaultHeadroom = 64

    /// - Parameters:
    ///   - capacity: frames per batch (32–256 is the useful range).
    ///   - dataRoom: largest frame the batch can hold (e.g. MTU + 22).
    public init(capacity: Int, dataRoom: Int = 2048, headroom: Int = FrameBatch.defaultHeadroom) {
        precondition(capacity > 0 && dataRoom >= 64 && headroom >= 8)
        self.capacity = capacity
        self.headroom = headroom
        self.bufferSize = (headroom + dataRoom + 63) & ~63
        self.base = UnsafeMutableRawPointer.allocate(byteCount: capacity * bufferSize, alignment: 64)
        self.base.initializeMemory(as: UInt8.self, repeating: 0, count: capacity * bufferSize)
        self.meta = .allocate(capacity: capacity)
        self.meta.initialize(repeating: FrameMeta(head: UInt32(headroom), length: 0, wireLength: 0, vlan: 0, pcp: 0,
                                                  flags: 0, output: FrameMeta.drop, reason: 0), count: capacity)
    }

    /// Frees the pool. The batch must not be used afterwards.
    public func deallocate() {
        base.deallocate()
        meta.deallocate()
    }

    /// Largest frame a buffer can hold when its head is at the default headroom.
    @inlinable public var dataRoom: Int { bufferSize - headroom }

    /// Start of buffer `i` (headroom included).
    @inlinable @inline(__always)
    public func buffer(_ i: Int) -> UnsafeMutableRawPointer { base + i &* bufferSize }

    /// Points at the first byte of frame `i`.
    @inlinable @inline(__always)
    public func data(_ i: Int) -> UnsafeMutableRawPointer { base + (i &* bufferSize &+ Int(meta[i].head)) }

    /// Resets frame `i` so that a receive can write a frame of up to `dataRoom` bytes at `receiveBuffer(i)`.
    @inlinable @inline(__always)
    public func rearm(_ i: Int) { meta[i].head = UInt32(headroom); meta[i].flags = 0 }

    /// Where a receive writes frame `i` (after `rearm`).
    @inlinable @inline(__always)
    public func receiveBuffer(_ i: Int) -> UnsafeMutableRawPointer { base + (i &* bufferSize &+ headroom) }

    /// Records a received frame of `length` bytes in slot `i`.
    @inlinable @inline(__always)
    public func setReceived(_ i: Int, length: Int) {
        meta[i].head = UInt32(headroom)
        meta[i].length = UInt32(truncatingIfNeeded: length)
        meta[i].wireLength = UInt32(truncatingIfNeeded: length)
        meta[i].flags = 0
    }

    /// Moves received frame `from` (at the default headroom) to slot `to`, with its metadata and its
    /// virtio-net header (receive compaction).
    @inlinable
    public func moveFrame(from: Int, to: Int) {
        let len = Int(meta[from].length)
        receiveBuffer(to).copyMemory(from: receiveBuffer(from), byteCount: len)
        buffer(to).copyMemory(from: buffer(from), byteCount: 12)
        meta[to] = meta[from]
        meta[from].length = 0
    }

    /// Copies `bytes` in as frame `count` and increments `count` (tests, replay, benchmark set-up).
    @discardableResult
    public mutating func append(_ bytes: UnsafeRawBufferPointer) -> Bool {
        guard count < capacity, bytes.count <= dataRoom else { return false }
        let dst = receiveBuffer(count)
        if let src = bytes.baseAddress { dst.copyMemory(from: src, byteCount: bytes.count) }
        setReceived(count, length: bytes.count)
        count += 1
        return true
    }

    public mutating func append(_ bytes: [UInt8]) -> Bool {
        bytes.withUnsafeBytes { append($0) }
    }

    /// A copy of frame `i`'s bytes (tests and control path only: allocates).
    public func bytes(_ i: Int) -> [UInt8] {
        Array(UnsafeRawBufferPointer(start: data(i), count: Int(meta[i].length)))
    }
}

// MARK: - Ethernet / 802.1Q accessors

public enum EtherType {
    public static let vlan: UInt16 = 0x8100      // 802.1Q C-tag
    public static let qinq: UInt16 = 0x88A8      // 802.1ad S-tag
    public static let ipv4: UInt16 = 0x0800
    public static let arp: UInt16 = 0x0806
    public static let ipv6: UInt16 = 0x86DD
}

public extension FrameBatch {
    /// Destination MAC of frame `i` in the low 48 bits (caller checked length >= 14).
    @inlinable @inline(__always)
    func destination(_ i: Int) -> UInt64 {
        UInt64(bigEndian: data(i).loadUnaligned(as: UInt64.self)) >> 16
    }

    /// Source MAC of frame `i` in the low 48 bits.
    @inlinable @inline(__always)
    func source(_ i: Int) -> UInt64 {
        UInt64(bigEndian: data(i).loadUnaligned(fromByteOffset: 4, as: UInt64.self)) & 0xFFFF_FFFF_FFFF
    }

    /// Big-endian 16-bit field at `offset` of frame `i`.
    @inlinable @inline(__always)
    func be16(_ i: Int, at offset: Int) -> UInt16 {
        UInt16(bigEndian: data(i).loadUnaligned(fromByteOffset: offset, as: UInt16.self))
    }

    /// Removes the 4-byte tag that follows the MAC addresses (the caller checked it is there).
    @inlinable @inline(__always)
    func popTag(_ i: Int) {
        let p = data(i)
        (p + 4).copyMemory(from: p, byteCount: 12)   // overlapping move, dst > src: memmove semantics
        meta[i].head &+= 4
        meta[i].length &-= 4
    }

    /// Overwrites the tag that follows the MAC addresses (the caller checked it is there).
    @inlinable @inline(__always)
    func setTag(_ i: Int, tpid: UInt16, tci: UInt16) {
        let p = data(i)
        p.storeBytes(of: tpid.bigEndian, toByteOffset: 12, as: UInt16.self)
        p.storeBytes(of: tci.bigEndian, toByteOffset: 14, as: UInt16.self)
    }

    /// `setTag(_:tpid:tci:)` with the tag as one word (TPID << 16 | TCI): one store.
    @inlinable @inline(__always)
    func setTag(_ i: Int, tag: UInt32) {
        data(i).storeBytes(of: tag.bigEndian, toByteOffset: 12, as: UInt32.self)
    }

    /// Inserts a tag (TPID, TCI) after the MAC addresses, using the headroom.
    @inlinable @inline(__always)
    func pushTag(_ i: Int, tpid: UInt16, tci: UInt16) {
        let old = data(i)
        let p = old - 4
        p.copyMemory(from: old, byteCount: 12)
        p.storeBytes(of: tpid.bigEndian, toByteOffset: 12, as: UInt16.self)
        p.storeBytes(of: tci.bigEndian, toByteOffset: 14, as: UInt16.self)
        meta[i].head &-= 4
        meta[i].length &+= 4
    }
}
