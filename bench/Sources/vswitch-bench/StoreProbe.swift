// `vswitch-bench store-probe`: how fast one thread can store capture output on this machine (issue 4).
//
// The capture writer's work per frame is, almost entirely, the kernel's copy of the pcap records into the page
// cache (perf: 96 % of its samples in copy_folio_from_iter_atomic at 1518 bytes). This probe does that work
// alone, the way the writer does it — write() calls of 64 KiB taken round-robin from a 4 MiB buffer (the size of
// a forwarding thread's capture ring) into a new file — and, for reference, the same bytes copied by memcpy into
// a buffer that is reused (no new pages). It prints GB/s and the time per 1534-byte record (a 1518-byte frame
// without FCS plus a 16-byte pcap record header), i.e. the most full-size frames per second one writer thread
// can store: the ceiling of a complete capture, whatever the switch does.

import ArgumentParser
import Foundation
#if canImport(Glibc)
import Glibc
#endif

struct StoreProbeRun: Codable {
    var target: String
    var round: Int
    var bytes: Int
    var seconds: Double
    var cpu_seconds: Double
    var gb_per_s: Double
    var ns_per_1534_byte_record: Double
    var records_per_s: Double
}

struct StoreProbe: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "store-probe",
        abstract: "How fast one thread stores capture output here: 64 KiB write() calls into a new file (the capture writer's work), and memcpy into a reused buffer for reference (issue 4).")

    @Option(help: "Directory of the file written (a tmpfs such as /dev/shm measures the page cache alone).") var dir = "/dev/shm"
    @Option(help: "MiB written per round.") var mib = 1024
    @Option(help: "Rounds (write and memcpy alternate).") var rounds = 3
    @Option(help: "Output format: text or json.") var format = "text"

    func run() throws {
        guard ["text", "json"].contains(format) else { throw ValidationError("--format must be text or json") }
        guard mib >= 16 else { throw ValidationError("--mib must be at least 16") }
        let source = 4 << 20, chunk = 64 << 10, total = mib << 20
        let src = UnsafeMutableRawPointer.allocate(byteCount: source, alignment: 4096)
        defer { src.deallocate() }
        for k in 0..<source { src.storeBytes(of: UInt8(truncatingIfNeeded: k &* 131), toByteOffset: k, as: UInt8.self) }
        let reused = UnsafeMutableRawPointer.allocate(byteCount: source, alignment: 4096)
        defer { reused.deallocate() }
        memset(reused, 0, source)
        let path = dir + "/vsb-store-probe-\(getpid()).bin"
        func measure(_ target: String, round: Int, _ body: () throws -> Void) rethrows -> StoreProbeRun {
            let c0 = threadCPU(), t0 = Date()
            try body()
            let s = Date().timeIntervalSince(t0), c = threadCPU() - c0
            let perRecord = s / Double(total) * 1534 * 1e9
            return StoreProbeRun(target: target, round: round, bytes: total, seconds: s, cpu_seconds: c,
                                 gb_per_s: Double(total) / s / 1e9, ns_per_1534_byte_record: perRecord,
                                 records_per_s: 1e9 / perRecord)
        }
        var runs: [StoreProbeRun] = []
        for r in 1...max(1, rounds) {
            runs.append(try measure("write() into a new file in \(dir)", round: r) {
                let fd = open(path, O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0o600)
                guard fd >= 0 else { throw BenchError.failed("store-probe: cannot create \(path): \(String(cString: strerror(errno)))") }
                defer { close(fd); unlink(path) }
                var off = 0
                while off < total {
                    let n = write(fd, src + (off % source), chunk)
                    guard n > 0 else { throw BenchError.failed("store-probe: write to \(path) failed: \(String(cString: strerror(errno)))") }
                    off += n
                }
            })
            runs.append(measure("memcpy into a reused 4 MiB buffer", round: r) {
                var off = 0
                while off < total { memcpy(reused + (off % source), src + (off % source), chunk); off += chunk }
            })
        }
        if format == "json" {
            let enc = JSONEncoder()
            enc.outputFormatting = [.prettyPrinted, .sortedKeys]
            print(String(decoding: try enc.encode(runs), as: UTF8.self))
            return
        }
        print("store-probe: \(mib) MiB per round, 64 KiB per call, from a 4 MiB source buffer; load \(loadAverage())")
        for run in runs {
            print(String(format: "  round %d  %@: %.2f GB/s (CPU %.2f s of %.2f s), %.0f ns per 1534-byte record = %.2f M records/s",
                         run.round, run.target, run.gb_per_s, run.cpu_seconds, run.seconds, run.ns_per_1534_byte_record,
                         run.records_per_s / 1e6))
        }
    }

    private func threadCPU() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }
}
