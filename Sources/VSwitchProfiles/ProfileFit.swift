// What a profile needs of the port bound to it, checked wherever a binding is made or a profile
// changes under a bound port: the topology loader (VSwitchTopology) and the daemon's add-port,
// set-port, profile load and reload (VSwitchDaemon.SwitchModel) all call this one function.

import VSwitchPolicy

public enum ProfileFit {
    /// Ethernet header plus two VLAN tags: what a full frame adds to the MTU.
    public static let frameOverhead = 22

    /// The size of a full frame at `mtu`.
    public static func fullFrame(mtu: Int) -> UInt64 { UInt64(max(0, mtu) + frameOverhead) }

    /// Spec (vsx:TransmitBurstSize, vsx:ReceiveBurstSize): "refuse a depth below one full frame" — at the MTU of
    /// the port bound to the profile, which the profile document alone does not know. One message per burst
    /// size below a full frame at `mtu` (empty: the profile fits); each names the profile, the burst and the frame
    /// size (the caller adds where: the port, the element).
    public static func burstProblems(_ profile: PortProfile, mtu: Int) -> [String] {
        let frame = fullFrame(mtu: mtu)
        var problems: [String] = []
        for (name, value) in [("TransmitBurstSize", profile.transmitBurstSize), ("ReceiveBurstSize", profile.receiveBurstSize)] {
            if let v = value, v < frame {
                problems.append("profile '\(profile.networkPortProfileID)' has \(name) \(v) bytes, less than one full frame at this port's MTU \(mtu) (\(frame) bytes); raise it or lower the MTU")
            }
        }
        return problems
    }
}
