// SwitchConfig: everything an operator configured, as one Codable value — the switch
// settings, the loaded profile documents (their XML text, so a restart needs no file), the
// ports with their stable indices and bindings, and the static FDB entries. It is what the
// state file holds (StateStore) and what a topology file is turned into at start-up.
//
// StateStore writes it atomically: a temporary file in the state directory is written and
// fsync'd, renamed over `state.json`, and the directory is fsync'd. The file is a header line
// `vswitch-state 1 length=N crc32=XXXXXXXX` followed by exactly N bytes of JSON; a truncated
// or corrupted file fails the length or CRC-32 check and is refused whole (never half-applied).
// The profile documents' text is kept out of the JSON: each is a file `profile-CRC-LENGTH.xml`
// beside it, written, fsync'd and renamed into place before the state file that names it (the
// directory is fsync'd once, after both renames). The CRC-32 and length in the name are checked
// on load; files no state names any more are removed after each save; an unchanged document is
// not written again. (Escaping a 2.5 MB document into the JSON and checksumming it a byte at a
// time took ~30 ms of every change of a 1,000-port switch.) A state file of the earlier form,
// the text inline in `xml`, loads as before.
//
// Threading: control thread only.

import Foundation
#if canImport(Glibc)
import Glibc
#endif

public struct PortConfig: Codable, Equatable, Sendable {
    /// Stable port index (the forwarding tables' port number).
    public var index: Int
    public var name: String
    /// "tap" (created or adopted by the switch), "netdev" (an existing interface through AF_PACKET
    /// rings: `interface`), "pcap" (replays `file`, optionally looping at `rate` frames/s).
    public var type: String
    public var profile: String
    /// The port's MAC binding (the virtual system's MAC), "aa:bb:cc:dd:ee:ff".
    public var mac: String?
    public var mtu: Int
    /// Virtual system: a network namespace the TAP's netdev is moved into.
    public var namespace: String?
    public var interface: String?
    public var addresses: [String]
    /// Attach to an existing TAP the switch did not create (left in place on del-port).
    public var adopt: Bool
    /// pcap ports: the file replayed, looping or not, frames/s (nil/0: as fast as polled), output file.
    public var file: String?
    public var loop: Bool?
    public var rate: Int?
    public var output: String?
    /// tap ports: IFF_VNET_HDR with checksum/TSO offloads (nil = the default, on; `--offloads off` on the
    /// daemon forces every port off).
    public var offload: Bool?

    public init(index: Int = -1, name: String, type: String = "tap", profile: String, mac: String? = nil, mtu: Int = 1500,
                namespace: String? = nil, interface: String? = nil, addresses: [String] = [], adopt: Bool = false) {
        self.index = index; self.name = name; self.type = type; self.profile = profile; self.mac = mac; self.mtu = mtu
        self.namespace = namespace; self.interface = interface; self.addresses = addresses; self.adopt = adopt
    }
}

public struct ProfileSource: Codable, Equatable, Sendable {
    /// Where the document was loaded from (used by `profile reload`).
    public var path: String
    /// Its text when it was (re)loaded.
    public var xml: String
    /// In the state file only: the file beside it holding `xml` (then stored as ""); nil in memory.
    public var file: String?
    public init(path: String, xml: String) { self.path = path; self.xml = xml }
}

public struct StaticFDBEntry: Codable, Hashable, Sendable {
    public var port: String
    public var vlan: Int
    public var mac: String
    public init(port: String, vlan: Int, mac: String) { self.port = port; self.vlan = vlan; self.mac = mac }
}

public struct SettingsConfig: Codable, Equatable, Sendable {
    public var macAgingTime: Int
    public var macTableSize: Int
    public var forwardingThreads: Int
    public var maxMACsPerPort: UInt32?
    /// Reservable bandwidth of the switch in bit/s, per direction (issue 3's admission check): the
    /// Reservation of every port (transmit) and its ReceiveBandwidthReservation (receive) must each sum
    /// to at most this. nil = no admission check (the default: a software switch has no fixed capacity).
    public var bandwidthCapacity: UInt64?
    public init(macAgingTime: Int = 300, macTableSize: Int = 65536, forwardingThreads: Int = 0, maxMACsPerPort: UInt32? = nil) {
        self.macAgingTime = macAgingTime; self.macTableSize = macTableSize
        self.forwardingThreads = forwardingThreads; self.maxMACsPerPort = maxMACsPerPort
    }
    public static let macAgingTimeRange = 10...3600
    public static let macTableSizeRange = 1...4_000_000
}

public struct SwitchConfig: Codable, Equatable, Sendable {
    public var version: Int = 1
    public var name: String = "vswitch"
    public var settings = SettingsConfig()
    public var profiles: [ProfileSource] = []
    public var ports: [PortConfig] = []
    public var fdb: [StaticFDBEntry] = []
    /// In the state file only, while `del-port` destroys a port's TAP and virtual system: the port, so that a
    /// daemon killed before they are gone removes them at its next start (nil in memory and once they are).
    public var removing: [PortConfig]?
    public init() {}
}

/// The state file of one state directory.
public final class StateStore {
    public let directory: String
    public var path: String { directory + "/state.json" }
    var lockFD: Int32 = -1

    public init(directory: String) { self.directory = directory }

    deinit { if lockFD >= 0 { Glibc.close(lockFD) } }

    /// Creates the directory (0700) and takes its lock: one daemon per state directory. An existing directory
    /// is used only if it is a directory (not a symlink to one) owned by the daemon's user and writable by no one
    /// else — anyone who can write in it could make the daemon (root) write through a link of theirs — and its
    /// mode is left as it is (it may be shared: only the daemon's own files in it are touched).
    public func prepare() throws {
        var path = ""
        var created = false
        for part in directory.split(separator: "/") {
            path += "/" + part
            if mkdir(path, 0o755) != 0 {
                if errno != EEXIST { throw DaemonError("state directory \(directory): cannot create \(path): \(String(cString: strerror(errno)))") }
                created = false
            } else {
                created = true
            }
        }
        if created { _ = chmod(directory, 0o700) }
        var st = stat()
        guard lstat(directory, &st) == 0 else {
            throw DaemonError("state directory \(directory): \(String(cString: strerror(errno)))")
        }
        if st.st_mode & S_IFMT != S_IFDIR {
            throw DaemonError("state directory \(directory) is not a directory (a symlink is refused: give the real path)")
        }
        if st.st_uid != geteuid() || st.st_mode & (S_IWGRP | S_IWOTH) != 0 {
            throw DaemonError("state directory \(directory) is owned by uid \(st.st_uid) with mode \(String(st.st_mode & 0o7777, radix: 8)): it must be owned by uid \(geteuid()) and writable by no one else (chown/chmod it, or use another directory)")
        }
        let fd = open(directory + "/lock", O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0o600)
        guard fd >= 0 else { throw DaemonError("state directory \(directory): cannot open its lock file: \(String(cString: strerror(errno)))") }
        if flock(fd, LOCK_EX | LOCK_NB) != 0 {
            Glibc.close(fd)
            throw DaemonError("state directory \(directory) is in use by another vswitchd (its lock is held)")
        }
        lockFD = fd
    }

    /// The stored configuration; nil when there is none. Throws when the file is corrupt or truncated,
    /// or a profile document it names is missing, truncated or corrupt.
    public func load() throws -> SwitchConfig? {
        guard let data = FileManager.default.contents(atPath: path) else {
            if access(path, F_OK) == 0 { throw DaemonError("state file \(path) cannot be read") }
            return nil
        }
        var config = try StateStore.decode(data, path: path)
        for k in config.profiles.indices {
            guard let file = config.profiles[k].file else { continue }
            let xml = try readProfileFile(file, for: config.profiles[k].path)
            config.profiles[k].xml = xml
            config.profiles[k].file = nil
            written[file] = xml
        }
        return config
    }

    /// Profile files this store wrote or read, by name, with their text (an unchanged document is not written again).
    var written: [String: String] = [:]
    static let profileFilePrefix = "profile-"

    /// `profile-CRC-LENGTH.xml` (in the state directory) for a document's text.
    static func profileFileName(_ xml: String) -> String {
        var x = xml
        let (crc, n) = x.withUTF8 { (CRC32.checksum(UnsafeRawBufferPointer($0)), $0.count) }
        return "\(profileFilePrefix)\(hex8(crc))-\(n).xml"
    }

    func readProfileFile(_ file: String, for source: String) throws -> String {
        func corrupt(_ why: String) -> DaemonError {
            DaemonError("state file \(path) is corrupt (profile document \(source), stored as \(directory)/\(file): \(why)); nothing was restored — fix or remove it, or start with --topology")
        }
        let parts = file.dropFirst(StateStore.profileFilePrefix.count).dropLast(4).split(separator: "-")
        guard file.hasPrefix(StateStore.profileFilePrefix), file.hasSuffix(".xml"), !file.contains("/"), parts.count == 2,
              let crc = UInt32(parts[0], radix: 16), let length = Int(parts[1]) else { throw corrupt("not a profile file name") }
        guard let data = FileManager.default.contents(atPath: directory + "/" + file) else { throw corrupt("missing") }
        guard data.count == length else { throw corrupt("truncated: \(data.count) of \(length) bytes") }
        guard CRC32.checksum(data) == crc else { throw corrupt("checksum mismatch") }
        return String(decoding: data, as: UTF8.self)
    }

    /// Writes one profile document's file (temporary file, fsync, rename) unless this store already wrote or
    /// read that very text under that name. Returns the name.
    func storeProfileFile(_ xml: String) throws -> String {
        if let name = written.first(where: { StateStore.sameBytes($0.value, xml) })?.key { return name }
        let name = StateStore.profileFileName(xml)
        // Temporary file, fsync, rename; no directory fsync here: the state file that names it is renamed after it
        // in the same directory, and the one directory fsync after that covers both entries.
        try StateStore.writeDurably(Data(xml.utf8), to: directory + "/" + name, tmp: directory + "/.profile.xml.tmp")
        written[name] = xml
        return name
    }

    /// Byte equality (String's `==` is canonical equivalence: a document changed only in its Unicode normalization
    /// form must still be written).
    static func sameBytes(_ a: String, _ b: String) -> Bool {
        var a = a, b = b
        return a.withUTF8 { x in b.withUTF8 { y in x.count == y.count && (x.count == 0 || memcmp(x.baseAddress!, y.baseAddress!, x.count) == 0) } }
    }

    /// Whether `name` is a file name this store writes: `profile-` + 8 lowercase hex digits + `-` + a length + `.xml`.
    static func isProfileFileName(_ name: String) -> Bool {
        let u = Array(name.utf8)
        let prefix = Array(profileFilePrefix.utf8), suffix = Array(".xml".utf8)
        guard u.count > prefix.count + 8 + 1 + suffix.count, u.starts(with: prefix), u.suffix(4).elementsEqual(suffix) else { return false }
        let hex = u[prefix.count..<(prefix.count + 8)]
        let digits = u[(prefix.count + 9)..<(u.count - 4)]
        return hex.allSatisfy { ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x61 && $0 <= 0x66) } && u[prefix.count + 8] == 0x2D
            && !digits.isEmpty && digits.allSatisfy { $0 >= 0x30 && $0 <= 0x39 }
    }

    /// Removes the profile files `keep` does not name (after a save: no state names them any more). Only names of
    /// the store's own form are touched: the directory may hold other files (the operator's own profile-*.xml too).
    func removeProfileFiles(except keep: Set<String>) {
        for f in (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
            where StateStore.isProfileFileName(f) && !keep.contains(f) {
            unlink(directory + "/" + f)
            written[f] = nil
        }
    }

    public static func encode(_ config: SwitchConfig) throws -> Data {
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys, .prettyPrinted]
        return withHeader(try enc.encode(config))
    }

    static func withHeader(_ body: Data) -> Data {
        let header = "vswitch-state 1 length=\(body.count) crc32=\(hex8(CRC32.checksum(body)))\n"
        return Data(header.utf8) + body
    }

    /// Each port entry's JSON as last encoded, by position, reused while the entry is unchanged: re-encoding all
    /// of a 1,000-port switch's entries with JSONEncoder on every change was ~27 % of a reload's CPU.
    var portJSON: [(port: PortConfig, json: Data)] = []

    /// The same configuration as `encode` (it decodes to an equal value), compact, the port entries from `portJSON`
    /// where unchanged: the rest of the object is encoded with `ports` empty and the entries spliced into its
    /// `"ports":[]` (no other key of the object is named "ports", and inside a string value its quotes would be
    /// escaped).
    func encodeReusingPorts(_ config: SwitchConfig) throws -> Data {
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys]
        var rest = config
        rest.ports = []
        let outer = try enc.encode(rest)
        var entries: [(port: PortConfig, json: Data)] = []
        entries.reserveCapacity(config.ports.count)
        for (k, p) in config.ports.enumerated() {
            if k < portJSON.count && portJSON[k].port == p { entries.append(portJSON[k]) } else { entries.append((p, try enc.encode(p))) }
        }
        portJSON = entries
        let empty = Data("\"ports\":[]".utf8)
        guard let r = outer.firstRange(of: empty) else { return StateStore.withHeader(try StateStore.encodedCompact(config)) }
        var body = Data(outer[..<r.lowerBound])
        body.reserveCapacity(outer.count + entries.reduce(0) { $0 + $1.json.count + 1 })
        body.append(contentsOf: "\"ports\":[".utf8)
        for (k, e) in entries.enumerated() {
            if k > 0 { body.append(UInt8(ascii: ",")) }
            body.append(e.json)
        }
        body.append(UInt8(ascii: "]"))
        body.append(outer[r.upperBound...])
        return StateStore.withHeader(body)
    }

    static func encodedCompact(_ config: SwitchConfig) throws -> Data {
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys]
        return try enc.encode(config)
    }

    public static func decode(_ data: Data, path: String) throws -> SwitchConfig {
        func corrupt(_ why: String) -> DaemonError {
            DaemonError("state file \(path) is corrupt (\(why)); nothing was restored — fix or remove it, or start with --topology")
        }
        guard let nl = data.firstIndex(of: 0x0A) else { throw corrupt("no header line") }
        let header = String(decoding: data[data.startIndex..<nl], as: UTF8.self).split(separator: " ")
        guard header.count == 4, header[0] == "vswitch-state", header[1] == "1",
              header[2].hasPrefix("length="), let length = Int(header[2].dropFirst(7)),
              header[3].hasPrefix("crc32="), let crc = UInt32(header[3].dropFirst(6), radix: 16) else {
            throw corrupt("bad header line")
        }
        let body = data[(nl + 1)...]
        guard body.count == length else { throw corrupt("truncated: \(body.count) of \(length) bytes") }
        guard CRC32.checksum(Data(body)) == crc else { throw corrupt("checksum mismatch") }
        do {
            return try JSONDecoder().decode(SwitchConfig.self, from: Data(body))
        } catch {
            throw corrupt("not a valid configuration: \(error)")
        }
    }

    /// Writes `config` atomically: the profile documents that changed to their own files first, then the state
    /// file (temp file, fsync, rename, fsync of the directory), then removes profile files no longer named.
    public func save(_ config: SwitchConfig) throws {
        var stored = config
        var keep: Set<String> = []
        for k in stored.profiles.indices {
            let name = try storeProfileFile(stored.profiles[k].xml)
            stored.profiles[k].xml = ""
            stored.profiles[k].file = name
            keep.insert(name)
        }
        try StateStore.writeDurably(try encodeReusingPorts(stored), to: path, tmp: directory + "/.state.json.tmp")
        let dfd = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if dfd >= 0 { _ = fsync(dfd); Glibc.close(dfd) }
        removeProfileFiles(except: keep)
    }

    /// Writes `data` to `tmp`, fsyncs it and renames it to `path` (the caller fsyncs the directory).
    static func writeDurably(_ data: Data, to path: String, tmp: String) throws {
        // A new file, never through a link: whatever is at the temporary name goes first.
        _ = unlink(tmp)
        let fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw DaemonError("cannot write state file \(tmp): \(String(cString: strerror(errno)))") }
        var ok = data.withUnsafeBytes { raw -> Bool in
            var off = 0
            while off < raw.count {
                let n = write(fd, raw.baseAddress! + off, raw.count - off)
                if n < 0 { if errno == EINTR { continue }; return false }
                off += n
            }
            return true
        }
        ok = ok && fsync(fd) == 0
        let err = errno
        Glibc.close(fd)
        guard ok else { unlink(tmp); throw DaemonError("cannot write \(tmp): \(String(cString: strerror(err)))") }
        guard rename(tmp, path) == 0 else {
            let e = errno
            unlink(tmp)
            throw DaemonError("cannot rename \(tmp) to \(path): \(String(cString: strerror(e)))")
        }
    }
}

func hex8(_ v: UInt32) -> String {
    let s = String(v, radix: 16)
    return String(repeating: "0", count: 8 - s.count) + s
}

/// CRC-32 (IEEE 802.3, as zlib), table-driven, 8 bytes per step ("slicing-by-8": eight 256-entry tables, table k
/// advancing a byte's contribution by k more bytes); `checksumBytewise` is the one-byte-per-step reference.
public enum CRC32 {
    static let table: [UInt32] = (0..<256).map { i -> UInt32 in
        var c = UInt32(i)
        for _ in 0..<8 { c = c & 1 != 0 ? 0xEDB8_8320 ^ (c >> 1) : c >> 1 }
        return c
    }
    /// tables[k * 256 + i]: table k (k = 0 is `table`), allocated once and never freed; read-only after its lazy init.
    nonisolated(unsafe) static let tables: UnsafePointer<UInt32> = {
        let t = UnsafeMutablePointer<UInt32>.allocate(capacity: 8 * 256)
        for i in 0..<256 { t[i] = table[i] }
        for k in 1..<8 {
            for i in 0..<256 { let prev = t[(k - 1) * 256 + i]; t[k * 256 + i] = t[Int(prev & 0xFF)] ^ (prev >> 8) }
        }
        return UnsafePointer(t)
    }()

    public static func checksum(_ data: Data) -> UInt32 { data.withUnsafeBytes { checksum($0) } }

    public static func checksum(_ raw: UnsafeRawBufferPointer) -> UInt32 {
        guard let base = raw.baseAddress else { return 0 }
        let t = tables
        var c: UInt32 = 0xFFFF_FFFF
        var i = 0
        let n = raw.count
        while i &+ 8 <= n {
            let w = UInt64(littleEndian: base.loadUnaligned(fromByteOffset: i, as: UInt64.self))
            let lo = UInt32(truncatingIfNeeded: w) ^ c, hi = UInt32(truncatingIfNeeded: w >> 32)
            c = t[7 * 256 + Int(lo & 0xFF)] ^ t[6 * 256 + Int((lo >> 8) & 0xFF)] ^ t[5 * 256 + Int((lo >> 16) & 0xFF)]
                ^ t[4 * 256 + Int(lo >> 24)] ^ t[3 * 256 + Int(hi & 0xFF)] ^ t[2 * 256 + Int((hi >> 8) & 0xFF)]
                ^ t[256 + Int((hi >> 16) & 0xFF)] ^ t[Int(hi >> 24)]
            i &+= 8
        }
        while i < n { c = t[Int((c ^ UInt32(base.load(fromByteOffset: i, as: UInt8.self))) & 0xFF)] ^ (c >> 8); i &+= 1 }
        return c ^ 0xFFFF_FFFF
    }

    /// One byte per step: the reference the tests compare `checksum` with.
    public static func checksumBytewise(_ data: Data) -> UInt32 {
        var c: UInt32 = 0xFFFF_FFFF
        data.withUnsafeBytes { raw in
            for b in raw { c = table[Int((c ^ UInt32(b)) & 0xFF)] ^ (c >> 8) }
        }
        return c ^ 0xFFFF_FFFF
    }
}
