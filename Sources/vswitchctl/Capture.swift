// `vswitchctl capture`: tcpdump for a port of the switch (docs/control-protocol.md "capture").
// The output (a file, or stdout for `-w -`) is opened here and its descriptor passed to vswitchd,
// which writes a nanosecond pcap stream straight into it; this process then waits for the
// daemon's end summary (count reached, duration over) and prints it on stderr. Interrupting
// vswitchctl (Ctrl-C, a closed pipe) closes the control connection, which ends the capture.

import ArgumentParser
import Foundation
import VSwitchControl
#if canImport(Glibc)
import Glibc
#endif

struct CaptureCmd: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "capture",
        abstract: "Capture a port's frames (or a mirror session's source ports) to a pcap file or stdout.",
        discussion: "Example: vswitchctl capture vm1 --direction in --filter 'vlan 10' --count 100 -w - | tshark -r -")
    @OptionGroup var common: Common
    @Argument(help: "The port to capture (omit with --session).") var port: String?
    @Option(name: .long, help: "Capture every source port of this mirror session instead of one port.") var session: String?
    @Option(name: .long, help: "in (as received on the port's wire), out (as sent), or both.") var direction: String = "both"
    @Option(name: .long, help: "A BPF filter expression (pcap-filter(7)).") var filter: String?
    @Option(name: .long, help: "Stop after N frames.") var count: Int?
    @Option(name: .long, help: "Stop after S seconds.") var duration: Double?
    @Option(name: .long, help: "Bytes kept per frame.") var snaplen: Int?
    @Option(name: .customShort("w"), help: "Output pcap file, or - for stdout.") var output: String

    func run() throws {
        var args: [String: JSON] = ["direction": .string(direction)]
        if let port { args["port"] = .string(port) }
        if let session { args["session"] = .string(session) }
        if let filter { args["filter"] = .string(filter) }
        if let count { args["count"] = .int(count) }
        if let duration { args["duration"] = .double(duration) }
        if let snaplen { args["snaplen"] = .int(snaplen) }
        let fd: Int32
        // A regular file is written as a new file beside it, renamed over it once the daemon accepts the capture: a
        // refused capture (a typo in the port, a bad filter, no daemon) leaves whatever was there as it was. A FIFO
        // or a device is written as it is and never removed.
        var temporary: String?
        var st = stat()
        if output == "-" {
            fd = STDOUT_FILENO
        } else if stat(output, &st) == 0 && st.st_mode & S_IFMT != S_IFREG {
            fd = open(output, O_WRONLY | O_CLOEXEC)
            if fd < 0 { fail("cannot open \(output): \(String(cString: strerror(errno)))") }
        } else {
            let dir = (output as NSString).deletingLastPathComponent
            let tmp = (dir.isEmpty ? "" : dir + "/") + ".\((output as NSString).lastPathComponent).vswitchctl-\(getpid()).tmp"
            fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o644)
            if fd < 0 { fail("cannot create \(tmp) (for \(output)): \(String(cString: strerror(errno)))") }
            temporary = tmp
        }
        signal(SIGPIPE, SIG_IGN)
        let outcome: Result<(ControlClient, ControlResponse), ControlError> = Result { () throws(ControlError) in
            let client = try ControlClient(path: common.path)
            return (client, try client.call(ControlRequest("capture", args), passing: fd))
        }
        switch outcome {
        case .failure(let e):
            if let temporary { unlink(temporary) }
            fail(e.description)
        case .success(let (client, r)):
            if !r.ok {
                if let temporary { unlink(temporary) }
                fail(r.error ?? "capture refused")
            }
            if let temporary, rename(temporary, output) != 0 {
                let why = String(cString: strerror(errno))
                unlink(temporary)
                fail("cannot rename \(temporary) to \(output): \(why) (the capture goes on into the removed file: interrupt it)")
            }
            if fd != STDOUT_FILENO { close(fd) }
            let ports = str(r.result["ports"])
            FileHandle.standardError.write(Data("vswitchctl: capturing on \(ports) (\(direction))\(filter.map { ", filter \"\($0)\"" } ?? "")\n".utf8))
            // Wait for the end summary (no timeout without --duration/--count: until interrupted).
            let end: Result<Data, ControlError> = Result { () throws(ControlError) in try client.readLine(timeout: Int32.max / 1000) }
            switch end {
            case .failure(let e): fail(e.description)
            case .success(let line):
                let s = (try? ControlResponse.parse(line))?.result["capture-end"] ?? .null
                let slow = s["dropped_slow_output"]?.intValue ?? 0
                FileHandle.standardError.write(Data(("vswitchctl: \(str(s["captured"])) frames captured, \(str(s["filtered_out"])) filtered out, "
                    + "\(str(s["dropped"])) dropped (capture ring full)"
                    + (slow > 0 ? ", \(slow) dropped (output too slow)" : "")
                    + "; ended by \(str(s["reason"]))\n").utf8))
                if let error = s["output_error"]?.stringValue, error != String(cString: strerror(EPIPE)) {
                    // The output failed (disk full, …): the file may end in a cut-off record. A reader that went away
                    // (EPIPE: `-w - | head`) is an ordinary end.
                    fail("the capture output failed: \(error)" + (output == "-" ? "" : " (\(output) may end in a cut-off record)"))
                }
            }
        }
    }
}
