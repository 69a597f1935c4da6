#!/usr/bin/python3
"""Plots for `vswitch-bench compare`: results.json -> PNGs in the results folder.

rate_vs_size.png   loss-free rate (solid) and flat-out forwarded rate (dashed) per frame size, per switch
latency.png        latency percentile distribution (HdrHistogram) per switch, one panel per load level
mac_scale.png      forwarded rate vs number of source MACs, per switch
cpu_per_frame.png  CPU time per forwarded 64-byte frame at the fixed offered load
Usage: plot.py results.json OUTDIR   (Debian's python3-matplotlib, /usr/bin/python3)
"""
import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main():
    res = json.load(open(sys.argv[1]))
    out = sys.argv[2]
    sw = [s for s in res["switches"] if not s.get("error")]
    title = f"vswitch-bench compare {res['started']}{' (quick)' if res['quick'] else ''}"

    # Rate vs frame size.
    fig, ax = plt.subplots(figsize=(8, 5))
    for s in sw:
        sizes = [z["size"] for z in s["sizes"]]
        if not sizes:
            continue
        line, = ax.plot(sizes, [z["loss_free_pps"] / 1e3 for z in s["sizes"]], marker="o", label=f"{s['name']} loss-free")
        ax.plot(sizes, [z["ceiling_forwarded_pps"] / 1e3 for z in s["sizes"]], ls="--", marker="x",
                color=line.get_color(), alpha=0.6, label=f"{s['name']} flat-out")
    ax.set_xlabel("frame size (bytes)")
    ax.set_ylabel("k frames/s")
    ax.set_xticks([64, 512, 1518])
    ax.set_title(title + "\nforwarding rate (trafgen)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(f"{out}/rate_vs_size.png", dpi=110)
    plt.close(fig)

    # Latency distribution.
    levels = sorted({p["percent_of_loss_free"] for s in sw for p in s["latency"]})
    if levels:
        fig, axes = plt.subplots(1, len(levels), figsize=(5 * len(levels), 4.5), squeeze=False)
        for ax, lvl in zip(axes[0], levels):
            for s in sw:
                for p in s["latency"]:
                    if p["percent_of_loss_free"] != lvl or not p["distribution"]:
                        continue
                    xs = [1.0 / max(1e-7, 1 - d[1] / 100.0) for d in p["distribution"]]
                    ax.plot(xs, [d[0] for d in p["distribution"]], label=f"{s['name']} ({p['rate_pps'] / 1e3:.0f} kpps)")
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_xticks([1, 2, 10, 100, 1000])
            ax.set_xticklabels(["0%", "50%", "90%", "99%", "99.9%"])
            ax.set_xlabel("percentile")
            ax.set_ylabel("latency (µs)")
            ax.set_title(f"{lvl}% of loss-free rate")
            ax.grid(alpha=0.3, which="both")
            ax.legend(fontsize=7)
        fig.suptitle(title + " — latency (own AF_PACKET probe, HdrHistogram)")
        fig.tight_layout()
        fig.savefig(f"{out}/latency.png", dpi=110)
        plt.close(fig)

    # MAC scale.
    fig, ax = plt.subplots(figsize=(8, 5))
    for s in sw:
        if s["mac_scale"]:
            ax.plot([m["macs"] for m in s["mac_scale"]], [m["forwarded_pps"] / 1e3 for m in s["mac_scale"]], marker="o", label=s["name"])
    ax.set_xscale("log")
    ax.set_xlabel("source MACs")
    ax.set_ylabel("forwarded k frames/s (64 B, flat out)")
    ax.set_title(title + "\nMAC scale")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(f"{out}/mac_scale.png", dpi=110)
    plt.close(fig)

    # CPU per frame.
    names, proc, delta = [], [], []
    for s in sw:
        c = s.get("cpu")
        if not c or s["name"] == "direct":
            continue
        names.append(s["name"])
        proc.append(c.get("switch_process_ns_per_frame") or 0)
        delta.append(c.get("switch_ns_per_frame") or 0)
    if names:
        fig, ax = plt.subplots(figsize=(8, 4.5))
        xs = range(len(names))
        ax.bar([x - 0.2 for x in xs], proc, width=0.4, label="switch process utime+stime")
        ax.bar([x + 0.2 for x in xs], delta, width=0.4, label="machine busy minus no-switch baseline")
        ax.set_xticks(list(xs))
        ax.set_xticklabels(names)
        ax.set_ylabel("ns of CPU per forwarded frame")
        ax.set_title(title + f"\nCPU per 64-byte frame at {res['cpu_load_pps']} pps offered")
        ax.grid(alpha=0.3, axis="y")
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(f"{out}/cpu_per_frame.png", dpi=110)
        plt.close(fig)


if __name__ == "__main__":
    main()
