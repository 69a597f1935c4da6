// Counters in the Prometheus text exposition format (version 0.0.4), written by hand:
// the daemon's `port-stats` and `fdb-stats` results turned into metric families.

public enum PrometheusText {
    /// Renders `portStats` (the `port-stats` result) and `fdbStats` (the `fdb-stats` result).
    public static func render(portStats: JSON, fdbStats: JSON) -> String {
        var out = ""
        let ports = portStats["ports"]?.arrayValue ?? []
        func family(_ name: String, _ help: String, _ type: String, _ field: String) {
            out += "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n"
            for p in ports {
                let port = p["name"]?.stringValue ?? "?"
                out += "\(name){port=\"\(escape(port))\"} \(p[field]?.intValue ?? 0)\n"
            }
        }
        family("vswitch_port_rx_packets_total", "Frames received on the port.", "counter", "rx_packets")
        family("vswitch_port_rx_bytes_total", "Bytes received on the port.", "counter", "rx_bytes")
        family("vswitch_port_tx_packets_total", "Frames sent out of the port.", "counter", "tx_packets")
        family("vswitch_port_tx_bytes_total", "Bytes sent out of the port.", "counter", "tx_bytes")
        family("vswitch_port_floods_total", "Frames from the port that were flooded.", "counter", "floods")
        family("vswitch_port_mac_moves_total", "MAC addresses that moved onto the port.", "counter", "mac_moves")
        family("vswitch_port_learn_table_full_total", "New MACs not learned because the MAC table was full.",
               "counter", "learn_table_full")
        family("vswitch_port_capture_copies_total", "Capture copies of the port's frames taken into a capture ring.",
               "counter", "capture_copies")
        family("vswitch_port_capture_drops_total", "Capture copies refused because a capture ring was full (frames forwarded).",
               "counter", "capture_drops")
        family("vswitch_port_mirror_tx_total", "Mirror copies sent out of the port (a mirror destination).", "counter", "mirror_tx")
        family("vswitch_port_mirror_drops_total", "Mirror copies the port could not send.", "counter", "mirror_drops")
        out += "# HELP vswitch_port_drops_total Frames dropped, by reason (each frame counted once).\n"
        out += "# TYPE vswitch_port_drops_total counter\n"
        for p in ports {
            let port = p["name"]?.stringValue ?? "?"
            let drops = p["drops"]?.objectValue ?? [:]
            for reason in drops.keys.sorted() {
                out += "vswitch_port_drops_total{port=\"\(escape(port))\",reason=\"\(escape(reason))\"} \(drops[reason]?.intValue ?? 0)\n"
            }
        }
        out += "# HELP vswitch_port_up Whether the port forwards (admin and link up).\n# TYPE vswitch_port_up gauge\n"
        for p in ports {
            out += "vswitch_port_up{port=\"\(escape(p["name"]?.stringValue ?? "?"))\"} \(p["up"]?.boolValue == true ? 1 : 0)\n"
        }
        let gauges: [(String, String, String)] = [
            ("vswitch_mac_table_entries", "Live MAC table entries.", "entries"),
            ("vswitch_mac_table_static_entries", "Static MAC table entries.", "static"),
            ("vswitch_mac_table_limit", "Switch-wide MAC table size limit.", "limit"),
            ("vswitch_mac_aging_time_seconds", "MAC aging time.", "aging_time"),
        ]
        for (name, help, field) in gauges {
            out += "# HELP \(name) \(help)\n# TYPE \(name) gauge\n\(name) \(fdbStats[field]?.intValue ?? 0)\n"
        }
        return out
    }

    /// Label value escaping: backslash, double quote and newline.
    public static func escape(_ s: String) -> String {
        // By Unicode scalar, not Character: "\r\n" is one Character, and it went out unescaped (a label value could
        // end the line and forge a sample). Other control characters have no escape in the text format: U+FFFD.
        var r = String.UnicodeScalarView()
        for u in s.unicodeScalars {
            switch u {
            case "\\": r.append(contentsOf: "\\\\".unicodeScalars)
            case "\"": r.append(contentsOf: "\\\"".unicodeScalars)
            case "\n": r.append(contentsOf: "\\n".unicodeScalars)
            case _ where u.value < 0x20 || u.value == 0x7F: r.append("\u{FFFD}")
            default: r.append(u)
            }
        }
        return String(r)
    }
}
