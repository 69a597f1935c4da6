// Shared test support: privilege check, unique names, cleanup, running `ip`, frame helpers.
// These tests need root and /dev/net/tun. Without them they FAIL loudly, unless the
// environment has VSWITCH_ALLOW_SKIP=1 and is not CI (CI=true always fails them).

import Foundation
import VSwitchIO
import VSwitchPacket
import XCTest

class PrivilegedTestCase: XCTestCase {
    nonisolated(unsafe) private static var counter = 0

    private var namespaces: [String] = []
    private var taps: [TapDevice] = []
    private var rootLinks: [String] = []

    override func setUpWithError() throws {
        try super.setUpWithError()
        var problems: [String] = []
        if getuid() != 0 { problems.append("not running as root (uid \(getuid()))") }
        if access("/dev/net/tun", R_OK | W_OK) != 0 { problems.append("/dev/net/tun is missing or not accessible") }
        guard problems.isEmpty else {
            let text = "VSwitchIO tests need root and /dev/net/tun: " + problems.joined(separator: "; ")
            // Never skipped in CI (CI=true), whatever VSWITCH_ALLOW_SKIP says: there the capability must be present.
            let env = ProcessInfo.processInfo.environment
            if env["VSWITCH_ALLOW_SKIP"] == "1" && env["CI"] != "true" {
                throw XCTSkip(text + " (skipped: VSWITCH_ALLOW_SKIP=1)")
            }
            FileHandle.standardError.write(Data("\n*** \(text) — FAILING (set VSWITCH_ALLOW_SKIP=1 to skip) ***\n".utf8))
            XCTFail(text)
            throw SetupFailure(text: text)
        }
    }

    override func tearDown() {
        for tap in taps { tap.destroy() }
        taps.removeAll()
        for ns in namespaces where NetworkNamespace.exists(ns) {
            if (try? NetworkNamespace.delete(ns)) == nil { _ = try? ip(["netns", "delete", ns]) }
        }
        namespaces.removeAll()
        for link in rootLinks where Netlink.linkExists(link) { _ = try? ip(["link", "delete", link]) }
        rootLinks.removeAll()
        super.tearDown()
    }

    struct SetupFailure: Error, CustomStringConvertible { let text: String; var description: String { text } }

    /// A fresh name ≤ 15 bytes starting with "vswt"; remembered for cleanup as `kind`.
    func uniqueName(_ tag: String = "") -> String {
        Self.counter += 1
        let name = "vswt" + String(getpid() & 0xFFFF, radix: 16) + String(Self.counter, radix: 36) + tag
        precondition(name.utf8.count <= 15)
        return name
    }

    func uniqueNamespace() -> String {
        let name = uniqueName("n")
        namespaces.append(name)
        return name
    }

    func uniqueLinkName() -> String {
        let name = uniqueName("t")
        rootLinks.append(name)
        return name
    }

    /// Remembers a namespace made by other means for cleanup.
    func track(namespace: String) { namespaces.append(namespace) }
    func track(_ tap: TapDevice) -> TapDevice { taps.append(tap); return tap }

    // MARK: processes

    struct Output { var status: Int32; var stdout: String; var stderr: String }

    @discardableResult
    func run(_ tool: String, _ args: [String], timeout: TimeInterval = 10) throws -> Output {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: tool)
        p.arguments = args
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        try p.run()
        let o = out.fileHandleForReading.readDataToEndOfFile()
        let e = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return Output(status: p.terminationStatus, stdout: String(decoding: o, as: UTF8.self),
                      stderr: String(decoding: e, as: UTF8.self))
    }

    @discardableResult
    func ip(_ args: [String]) throws -> Output { try run("/usr/sbin/ip", args) }

    /// `ip -j …` parsed as a JSON array of objects.
    func ipJSON(_ args: [String], file: StaticString = #filePath, line: UInt = #line) throws -> [[String: Any]] {
        let out = try ip(["-j"] + args)
        XCTAssertEqual(out.status, 0, "ip -j \(args.joined(separator: " ")): \(out.stderr)", file: file, line: line)
        let json = try JSONSerialization.jsonObject(with: Data(out.stdout.utf8))
        return json as? [[String: Any]] ?? []
    }

    /// Waits until `condition` holds or `seconds` pass; returns the final value.
    func eventually(_ seconds: Double = 2, _ condition: () -> Bool) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if condition() { return true }
            usleep(20_000)
        }
        return condition()
    }

    /// Asserts that `body` throws a SystemError and returns it.
    func systemError(_ body: () throws -> Void, file: StaticString = #filePath, line: UInt = #line) -> SystemError? {
        do {
            try body()
            XCTFail("expected a SystemError, nothing was thrown", file: file, line: line)
        } catch let error as SystemError {
            return error
        } catch {
            XCTFail("expected a SystemError, got \(error)", file: file, line: line)
        }
        return nil
    }
}

// MARK: - frames

extension MACAddress {
    var bytes: [UInt8] { octets }
}

func ipv4(_ text: String) -> [UInt8] { text.split(separator: ".").map { UInt8($0)! } }

/// An Ethernet + ARP frame (op 1 request, 2 reply).
func arpFrame(op: UInt16, srcMAC: MACAddress, dstMAC: MACAddress, senderIP: String, targetMAC: MACAddress, targetIP: String) -> [UInt8] {
    var f = dstMAC.bytes + srcMAC.bytes + [0x08, 0x06]
    f += [0x00, 0x01, 0x08, 0x00, 6, 4, UInt8(op >> 8), UInt8(op & 0xFF)]
    f += srcMAC.bytes + ipv4(senderIP) + targetMAC.bytes + ipv4(targetIP)
    f += [UInt8](repeating: 0, count: 60 - f.count) // pad to the minimum frame size
    return f
}

/// The Internet checksum of `bytes`.
func internetChecksum<C: Collection>(_ bytes: C) -> UInt16 where C.Element == UInt8 {
    var sum: UInt32 = 0
    var iterator = bytes.makeIterator()
    while let hi = iterator.next() {
        let lo = iterator.next() ?? 0
        sum += UInt32(hi) << 8 | UInt32(lo)
    }
    while sum > 0xFFFF { sum = (sum & 0xFFFF) + (sum >> 16) }
    return ~UInt16(sum)
}

struct ParsedFrame {
    let bytes: [UInt8]
    var dst: MACAddress { MACAddress(bytes[0], bytes[1], bytes[2], bytes[3], bytes[4], bytes[5]) }
    var src: MACAddress { MACAddress(bytes[6], bytes[7], bytes[8], bytes[9], bytes[10], bytes[11]) }
    var etherType: UInt16 { UInt16(bytes[12]) << 8 | UInt16(bytes[13]) }
    var isARP: Bool { bytes.count >= 42 && etherType == 0x0806 }
    var arpOp: UInt16 { UInt16(bytes[20]) << 8 | UInt16(bytes[21]) }
    var arpSenderIP: [UInt8] { Array(bytes[28..<32]) }
    var arpTargetIP: [UInt8] { Array(bytes[38..<42]) }
    var isIPv4: Bool { bytes.count >= 34 && etherType == 0x0800 }
    var ipHeaderLength: Int { Int(bytes[14] & 0x0F) * 4 }
    var ipProtocol: UInt8 { bytes[23] }
    var ipSource: [UInt8] { Array(bytes[26..<30]) }
    var ipDestination: [UInt8] { Array(bytes[30..<34]) }
    var isICMPEchoRequest: Bool { isIPv4 && ipProtocol == 1 && bytes.count > 14 + ipHeaderLength && bytes[14 + ipHeaderLength] == 8 }

    /// The echo reply to this echo request, from `mac`.
    func echoReply(from mac: MACAddress) -> [UInt8] {
        var r = bytes
        let ip = 14, icmp = 14 + ipHeaderLength
        let ipTotal = Int(bytes[16]) << 8 | Int(bytes[17])
        r.replaceSubrange(0..<6, with: src.bytes)
        r.replaceSubrange(6..<12, with: mac.bytes)
        r.replaceSubrange(26..<30, with: ipDestination)
        r.replaceSubrange(30..<34, with: ipSource)
        r[ip + 8] = 64                         // TTL
        r[ip + 10] = 0; r[ip + 11] = 0
        let ipSum = internetChecksum(r[ip..<icmp])
        r[ip + 10] = UInt8(ipSum >> 8); r[ip + 11] = UInt8(ipSum & 0xFF)
        r[icmp] = 0                            // echo reply
        r[icmp + 2] = 0; r[icmp + 3] = 0
        let icmpSum = internetChecksum(r[icmp..<(ip + ipTotal)])
        r[icmp + 2] = UInt8(icmpSum >> 8); r[icmp + 3] = UInt8(icmpSum & 0xFF)
        return Array(r[0..<(ip + ipTotal)])
    }
}

extension TapDevice {
    /// Reads frames until `match` accepts one or `seconds` pass.
    func awaitFrame(within seconds: Double = 3, where match: (ParsedFrame) -> Bool) throws -> ParsedFrame? {
        let deadline = Date().addingTimeInterval(seconds)
        var buffer = [UInt8](repeating: 0, count: 65536)
        while Date() < deadline {
            let left = Int32(max(1, deadline.timeIntervalSinceNow * 1000))
            guard waitReadable(timeoutMilliseconds: left) else { continue }
            while let n = try buffer.withUnsafeMutableBytes({ try read(into: $0) }) {
                let frame = ParsedFrame(bytes: Array(buffer[0..<n]))
                if n >= 14, match(frame) { return frame }
            }
        }
        return nil
    }

    func send(_ frame: [UInt8]) throws -> Bool {
        try frame.withUnsafeBytes { try write($0) }
    }
}
