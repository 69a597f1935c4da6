// The port MTU range, one constant for every layer that checks an MTU: the topology reader
// (VSwitchTopology), the daemon's model (VSwitchDaemon: add-port, state restore) and the
// forwarding threads' frame room (sized for the largest MTU). It lives here, the lowest module
// both see, so neither depends on the other for it.

public enum PortMTU {
    /// Smallest MTU of a port (IPv4's minimum).
    public static let minimum = 68
    /// Largest MTU of a port: the forwarding threads' frames are sized for it (plus headers).
    public static let maximum = 9000
    /// 68...9000: what a topology's Port/@MTU, `add-port --mtu` and a restored state may hold.
    public static let range = minimum...maximum
}
