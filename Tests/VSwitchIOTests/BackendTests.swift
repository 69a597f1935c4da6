// The TAP backends (per-frame syscalls and io_uring) against a real TAP: frames the netdev
// transmits (injected with an AF_PACKET socket on the TAP's interface) are received in batches;
// frames the backend sends arrive on the interface (seen by the same socket), byte for byte.

import Foundation
import CVSwitchShim
import Glibc
import VSwitchCore
import VSwitchIO
import VSwitchPacket
import VSwitchPolicy
import XCTest

final class BackendTests: PrivilegedTestCase {
    /// A raw AF_PACKET socket bound to `ifname` (sees the interface's rx and tx).
    func packetSocket(_ ifname: String) throws -> Int32 {
        let fd = vsw_packet_socket(Int32(if_nametoindex(ifname)), 0x0003, 0)   // ETH_P_ALL
        guard fd >= 0 else { throw SystemError(operation: "open AF_PACKET socket", errno: errno) }
        var tv = timeval(tv_sec: 0, tv_usec: 200_000)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        return fd
    }

    func testFrame(_ n: Int) -> [UInt8] {
        var f: [UInt8] = [0x02, 0, 0, 0, 0, 0x02, 0x02, 0, 0, 0, 0, 0x01, 0x88, 0xB5]
        f += (0..<(50 + n)).map { UInt8(truncatingIfNeeded: $0 &+ n) }
        return f
    }

    func exercise<B: PollingBackend>(_ backend: inout B, name: String) throws {
        let tapName = uniqueLinkName()
        let tap = track(try TapDevice.create(name: tapName))
        try Netlink.configure(LinkConfig(name: tapName, up: true))
        _ = try? String(contentsOfFile: "/proc/sys/net/ipv6/conf/\(tapName)/disable_ipv6")
        try? "1".write(toFile: "/proc/sys/net/ipv6/conf/\(tapName)/disable_ipv6", atomically: false, encoding: .utf8)
        let sock = try packetSocket(tapName)
        defer { close(sock) }
        let table = MACTable(limit: 1024)
        defer { table.deallocate() }
        let snap = ConfigSnapshot(generation: 1, ports: [PortSpec(index: 0, handle: tap.fd, policy: .access(1))], macTable: table)
        let entry = snap.view.pointee.ports
        var batch = FrameBatch(capacity: 64)
        defer { batch.deallocate() }
        // Drain whatever the kernel sent on its own when the link came up.
        usleep(50_000)
        while backend.receive(port: 0, entry: entry, into: &batch) > 0 {}

        // Receive: 40 frames transmitted by the interface arrive in order, in batches.
        let frames = (0..<40).map(testFrame)
        for f in frames { _ = f.withUnsafeBytes { send(sock, $0.baseAddress, $0.count, 0) } }
        var got: [[UInt8]] = []
        for _ in 0..<20 where got.count < frames.count {
            let n = backend.receive(port: 0, entry: entry, into: &batch)
            got += (0..<n).map { batch.bytes($0) }.filter { $0.count > 13 && $0[12] == 0x88 && $0[13] == 0xB5 }
            if n == 0 { usleep(10_000) }
        }
        XCTAssertEqual(got, frames, "\(name): frames received in order, intact")

        // Send: 10 frames queued and flushed arrive on the interface.
        batch.count = 0
        for k in 0..<10 { _ = batch.append(testFrame(100 + k)) }
        var sent: UInt64 = 0
        for k in 0..<10 {
            if backend.send(port: 0, entry: entry, batch: batch, frame: k) == .sent { sent += 1 }
        }
        sent += backend.flush(port: 0, entry: entry).sent
        XCTAssertEqual(sent, 10, "\(name): every send completed")
        var seen: [[UInt8]] = []
        var buf = [UInt8](repeating: 0, count: 2048)
        while seen.count < 10 {
            let r = buf.withUnsafeMutableBytes { recv(sock, $0.baseAddress, $0.count, 0) }
            if r <= 0 { break }
            let f = Array(buf[0..<r])
            if f.count > 13 && f[12] == 0x88 && f[13] == 0xB5 && f[14] >= 100 - 0 && f.count >= 150 { seen.append(f) }
        }
        XCTAssertEqual(seen, (0..<10).map { testFrame(100 + $0) }, "\(name): sent frames arrive intact and in order")
    }

    func testPerFrameSyscallBackend() throws {
        var b = TapBackend()
        defer { b.deallocate() }
        try exercise(&b, name: "TapBackend")
    }

    func testIoUringBackend() throws {
        var b = try UringTapBackend()
        defer { b.deallocate() }
        try exercise(&b, name: "UringTapBackend")
    }
}
