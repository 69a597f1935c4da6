// The latency probe: a small generator/sink of our own on AF_PACKET.
//
// One thread (pinned to CPU 0, like trafgen's worker) holds a raw AF_PACKET
// socket bound to vsb-a's eth0 (opened after setns into vsb-a) and one bound
// to vsb-b's eth0 (ETH_P_ALL, filtered to ethertype 0x88b6 and a magic). It sends 64-byte frames at a paced
// rate, each carrying a sequence number and its CLOCK_MONOTONIC send time, and
// between sends drains the receive socket without blocking, recording
// (receive time - send time) in an HdrHistogram (ns, 3 significant digits).
// The receive time is taken in userspace after recv(), so the figures include
// the sink's own scheduling delay. AF_PACKET taps see the frames before the
// nftables ingress rule drops them.

import ArgumentParser
import CVSwitchShim
import Foundation
import Histogram
#if canImport(Glibc)
import Glibc
#endif

struct LatencyPoint: Codable {
    var percent_of_loss_free: Int
    var rate_pps: Double
    var sent: Int
    var received: Int
    var p50_us: Double
    var p99_us: Double
    var p999_us: Double
    var max_us: Double
    var mean_us: Double
    /// (latency µs, percentile) pairs for the distribution plot.
    var distribution: [[Double]]
}

/// sockaddr_ll, laid out by hand (netpacket/packet.h is not in every Glibc module map).
private struct SockaddrLL {
    var family: UInt16 = UInt16(AF_PACKET)
    var proto: UInt16 = 0
    var ifindex: Int32 = 0
    var hatype: UInt16 = 0
    var pkttype: UInt8 = 0
    var halen: UInt8 = 0
    var addr: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) = (0, 0, 0, 0, 0, 0, 0, 0)
}

func openPacketSocket(namespace: String, ifname: String, etherType: UInt16) throws -> Int32 {
    let home = open("/proc/self/ns/net", O_RDONLY)
    let target = open("/run/netns/\(namespace)", O_RDONLY)
    guard home >= 0, target >= 0 else { throw BenchError.failed("cannot open namespace \(namespace)") }
    defer { close(home); close(target) }
    guard vsw_setns(target, 0x4000_0000 /* CLONE_NEWNET */) == 0 else { throw BenchError.failed("setns \(namespace): \(String(cString: strerror(errno)))") }
    defer { _ = vsw_setns(home, 0x4000_0000 /* CLONE_NEWNET */) }
    let fd = socket(AF_PACKET, Int32(SOCK_RAW.rawValue), Int32(etherType.bigEndian))
    guard fd >= 0 else { throw BenchError.failed("AF_PACKET socket: \(String(cString: strerror(errno)))") }
    let idx = if_nametoindex(ifname)
    guard idx > 0 else { close(fd); throw BenchError.failed("no \(ifname) in \(namespace)") }
    var sll = SockaddrLL(proto: etherType.bigEndian, ifindex: Int32(idx))
    let rc = withUnsafePointer(to: &sll) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<SockaddrLL>.size)) }
    }
    guard rc == 0 else { close(fd); throw BenchError.failed("bind AF_PACKET: \(String(cString: strerror(errno)))") }
    var buf: Int32 = 4 << 20
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buf, socklen_t(4))
    return fd
}

private func macBytes(_ s: String) -> [UInt8] { s.split(separator: ":").map { UInt8($0, radix: 16)! } }

func runLatencyProbe(rate: Double, seconds: Double, percent: Int) throws -> LatencyPoint {
    let tx = try openPacketSocket(namespace: nsA, ifname: "eth0", etherType: probeEtherType)
    defer { close(tx) }
    // ETH_P_ALL: protocol-specific packet sockets are served after the nftables ingress hook (which
    // drops the probe's frames); ETH_P_ALL taps see them before it. Other frames are skipped by the magic.
    let rx = try openPacketSocket(namespace: nsB, ifname: "eth0", etherType: 0x0003)
    defer { close(rx) }
    final class Box: @unchecked Sendable { var result: LatencyPoint? }
    let box = Box()
    // A thread of its own, pinned to CPU 0; the caller waits for it.
    let done = DispatchSemaphore(value: 0)
    let runner = Thread {
        _ = vsw_pin_thread(0)
        box.result = probeLoop(tx: tx, rx: rx, rate: rate, seconds: seconds, percent: percent)
        done.signal()
    }
    runner.start()
    done.wait()
    return box.result!
}

private func probeLoop(tx: Int32, rx: Int32, rate: Double, seconds: Double, percent: Int) -> LatencyPoint {
    var hist = Histogram<UInt64>(highestTrackableValue: 60_000_000_000, numberOfSignificantValueDigits: .three)
    var frame = [UInt8](repeating: 0, count: 60)
    let dst = macBytes(macB), src = macBytes(macA)
    for i in 0..<6 { frame[i] = dst[i]; frame[6 + i] = src[i] }
    frame[12] = UInt8(probeEtherType >> 8); frame[13] = UInt8(probeEtherType & 0xff)
    let magic: UInt32 = 0x5653_4231   // "VSB1"
    var rbuf = [UInt8](repeating: 0, count: 2048)
    let interval = UInt64(1e9 / max(rate, 1))
    let start = vsw_now_ns()
    let end = start + UInt64(seconds * 1e9)
    let drainEnd = end + 200_000_000
    var next = start
    var sent = 0, received = 0
    var seq: UInt64 = 0
    while true {
        let now = vsw_now_ns()
        if now >= drainEnd { break }
        if now < end && now >= next {
            seq &+= 1
            frame.withUnsafeMutableBytes { p in
                p.storeBytes(of: magic.bigEndian, toByteOffset: 14, as: UInt32.self)
                p.storeBytes(of: seq, toByteOffset: 18, as: UInt64.self)
                p.storeBytes(of: vsw_now_ns(), toByteOffset: 26, as: UInt64.self)
                if send(tx, p.baseAddress, 60, 0) == 60 { sent += 1 }
            }
            next &+= interval
            if now > next &+ 1_000_000 { next = now }   // more than 1 ms behind: do not burst to catch up
        }
        // Drain what arrived.
        for _ in 0..<32 {
            let n = rbuf.withUnsafeMutableBytes { recv(rx, $0.baseAddress, 2048, Int32(MSG_DONTWAIT)) }
            if n < 34 { break }
            let t = vsw_now_ns()
            rbuf.withUnsafeBytes { p in
                guard p[12] == UInt8(probeEtherType >> 8), p[13] == UInt8(probeEtherType & 0xff),
                      UInt32(bigEndian: p.loadUnaligned(fromByteOffset: 14, as: UInt32.self)) == magic else { return }
                let ts = p.loadUnaligned(fromByteOffset: 26, as: UInt64.self)
                if t > ts { _ = hist.record(t - ts) }
                received += 1
            }
        }
    }
    func us(_ v: UInt64) -> Double { Double(v) / 1000 }
    var dist: [[Double]] = []
    if hist.totalCount > 0 {
        for iv in hist.percentiles(ticksPerHalfDistance: 5) {
            dist.append([us(iv.value), iv.percentileLevelIteratedTo])
            if dist.count > 400 { break }
        }
    }
    return LatencyPoint(percent_of_loss_free: percent, rate_pps: rate, sent: sent, received: received,
                        p50_us: us(hist.valueAtPercentile(50)), p99_us: us(hist.valueAtPercentile(99)),
                        p999_us: us(hist.valueAtPercentile(99.9)), max_us: us(hist.max),
                        mean_us: hist.totalCount > 0 ? hist.mean / 1000 : 0, distribution: dist)
}

/// `vswitch-bench probe`: the latency probe alone, between vsb-a and vsb-b as they are now (for debugging a setup).
struct Probe: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "The latency probe alone between existing namespaces vsb-a and vsb-b.")
    @Option(help: "Frames per second.") var rate = 10_000.0
    @Option(help: "Seconds.") var seconds = 1.0
    func run() throws {
        let p = try runLatencyProbe(rate: rate, seconds: seconds, percent: 0)
        print(String(format: "sent %d received %d p50 %.1f µs p99 %.1f µs p99.9 %.1f µs max %.1f µs", p.sent, p.received, p.p50_us, p.p99_us, p.p999_us, p.max_us))
    }
}
