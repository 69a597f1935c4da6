// The `capture` control command (docs/control-protocol.md "capture"; issue 4).
//
// The request carries the client's output descriptor (SCM_RIGHTS). Everything is checked first
// (port or mirror session, direction, BPF filter compiled by libpcap, limits); a refusal closes the
// descriptor and starts nothing. On success the response names the session; then the server hands
// the connection over: the session is added to the capture writer, the ports' taps are published,
// and the writer later writes the end summary on that connection.
//
// Threading: control thread only.

import Foundation
import VSwitchCapture
import VSwitchControl
import VSwitchCore

extension ControlCommands {
    func startCapture(_ r: ControlRequest) throws -> JSON {
        let fds = takeDescriptors()
        var owned = fds
        defer { owned.forEach { close($0) } }
        try r.allowOnly(["port", "session", "direction", "filter", "count", "duration", "snaplen"])
        guard let writer = capture else { throw DaemonError("capture: not available in this daemon") }
        guard fds.count == 1 else {
            throw DaemonError("capture: the request must carry exactly one output file descriptor (SCM_RIGHTS); use vswitchctl capture")
        }
        let dirText = try r.optionalString("direction") ?? "both"
        guard let direction = CaptureDirection(rawValue: dirText) else {
            throw DaemonError("capture: direction must be in, out or both (not \(dirText))")
        }
        var names: [String] = []
        var ports: [Int: UInt8] = [:]
        if let port = try r.optionalString("port") {
            guard let i = model.index(of: port) else { throw DaemonError("no such port: \(port)") }
            ports[i] = direction.taps; names = [port]
        }
        if let session = try r.optionalString("session") {
            if !ports.isEmpty { throw DaemonError("capture: give a port or a mirror session, not both") }
            let sources = model.mirrorSources(session: session)
            if sources.isEmpty { throw DaemonError("capture: mirror session \(session) has no source port") }
            for i in sources { ports[i] = direction.taps; names.append(model.portName(i)) }
        }
        if ports.isEmpty { throw DaemonError("capture: missing argument \"port\" (or \"session\")") }
        let snaplen = try r.optionalInt("snaplen") ?? CaptureRing.maxSnaplen
        guard snaplen >= 14 && snaplen <= CaptureRing.maxSnaplen else {
            throw DaemonError("capture: snaplen must be 14–\(CaptureRing.maxSnaplen) bytes")
        }
        let count = try r.optionalInt("count")
        if let count, count < 1 { throw DaemonError("capture: count must be at least 1") }
        var duration: Double?
        if let v = r.args["duration"], !v.isNull {
            if let i = v.intValue { duration = Double(i) } else if case .double(let d) = v { duration = d }
            else if let s = v.stringValue, let d = Double(s) { duration = d }
            else { throw DaemonError("capture: argument \"duration\" must be a number of seconds") }
            if duration! <= 0 { throw DaemonError("capture: duration must be positive") }
        }
        var filter: CaptureFilter?
        if let expr = try r.optionalString("filter"), !expr.trimmingCharacters(in: .whitespaces).isEmpty {
            do { filter = try CaptureFilter(expr, snaplen: snaplen) } catch { throw DaemonError("capture: \(error)") }
        }
        let id = writer.newID()
        owned = []
        let session: CaptureSession
        do {
            session = try CaptureSession(id: id, ports: ports, filter: filter, count: count, duration: duration,
                                         snaplen: snaplen, output: fds[0])
        } catch { throw DaemonError("capture: \(error)") }
        takeover = { [model] fd in
            session.controlFD = fd
            writer.add(session)
            model.setCaptureTaps(writer.activeTaps(), snaps: writer.activeSnaplens())
        }
        return ["capture": .int(id), "ports": .array(names.map { .string($0) }), "direction": .string(direction.rawValue),
                "snaplen": .int(snaplen), "filter": .optional(filter?.expression), "linktype": "EN10MB",
                "timestamps": "nanosecond"]
    }
}
