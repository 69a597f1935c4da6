// SwitchModel + capture and mirroring (issue 4): what the snapshot's taps are made of.
//
// - Capture: `captureTaps` (from the capture writer's running sessions) become PortSpec.capture.
// - Mirroring: every distinct vsx:MonitorMode Session name among the loaded profiles gets a session
//   index (1…, in name order); a Source port carries it in policy.mirrorSession, a Destination
//   port in PortSpec.mirrorDestination. ConfigSnapshot turns that into the per-session
//   destination lists the forwarding threads use.
//
// Threading: control thread only.

import VSwitchCore
import VSwitchPolicy
import VSwitchProfiles

extension SwitchModel {
    /// Session name → index (1-based), over every loaded profile.
    public var mirrorSessions: [String: UInt16] {
        let names = Set(profiles.profiles.compactMap { p -> String? in
            guard let m = p.monitorMode, m != .none, let s = p.monitorSession, !s.isEmpty else { return nil }
            return s
        }).sorted()
        var out: [String: UInt16] = [:]
        for (k, n) in names.enumerated() { out[n] = UInt16(k + 1) }
        return out
    }

    func applyTaps(_ spec: inout PortSpec, index: Int, profile p: PortProfile) {
        spec.capture = captureTaps[index] ?? 0
        guard let role = p.monitorMode, role != .none, let name = p.monitorSession, let id = mirrorSessions[name] else { return }
        if role == .source { spec.compiled.policy.mirrorSession = id } else { spec.mirrorDestination = id }
    }

    /// Ports whose profile makes them sources of mirror session `name`.
    public func mirrorSources(session name: String) -> [Int] {
        sortedPorts.filter { port in
            guard let p = profiles.profile(id: port.config.profile) else { return false }
            return p.monitorMode == .source && p.monitorSession == name
        }.map(\.index)
    }

    /// Replaces the capture taps; publishes if they changed.
    public func setCaptureTaps(_ taps: [Int: UInt8]) {
        let clean = taps.filter { $0.value != 0 && ports[$0.key] != nil }
        if clean != captureTaps { captureTaps = clean; publish() }
    }
}
