// SwitchModel + capture and mirroring (issue 4): what the snapshot's taps are made of.
//
// - Capture: `captureTaps` (from the capture writer's running sessions) become PortSpec.capture, and
//   `captureSnaps` (the largest snaplen of a port's sessions) PortSpec.captureSnap: the forwarding
//   thread copies no more of a frame than some session keeps.
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
        spec.captureSnap = spec.capture != 0 ? captureSnaps[index] ?? 0 : 0
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
    /// `snaps`: bytes to copy per port (the largest snaplen of its sessions; absent or 0 = all the ring keeps).
    public func setCaptureTaps(_ taps: [Int: UInt8], snaps: [Int: Int] = [:]) {
        let clean = taps.filter { $0.value != 0 && ports[$0.key] != nil }
        var cleanSnaps: [Int: UInt16] = [:]
        for (p, n) in snaps where clean[p] != nil && n > 0 { cleanSnaps[p] = UInt16(min(n, Int(UInt16.max))) }
        if clean != captureTaps || cleanSnaps != captureSnaps { captureTaps = clean; captureSnaps = cleanSnaps; publish() }
    }
}
