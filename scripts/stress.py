#!/usr/bin/env python3
"""Stress runs over growing synthetic universes: generate with `spillway gen`, build, verify,
record wall time, rows/s, input MB/s, peak RSS and output bytes in a CSV, and plot peak RSS and
throughput against universe size.

    scripts/stress.py [--sizes 16:100,64:100,256:40,728:40] [--rows 75000] [--work target/stress]
                      [--csv docs/stress.csv] [--png docs/stress.png] [--keep]

Each size is SYMBOLS:FEATURES. A universe is deleted after its run unless --keep (728 x 75k x 40
is ~11 GB of parquet plus ~9 GB of spill). Needs matplotlib for the plot (the test venv has it
with `pip install matplotlib`); the CSV is written regardless.
"""
import argparse
import csv
import json
import os
import platform
import shutil
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "target", "release", "spillway")


def run(cmd, **kw):
    t0 = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if p.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{p.stderr}")
    return p, time.perf_counter() - t0


def machine():
    cpu = "?"
    try:
        with open("/proc/cpuinfo") as fh:
            cpu = next(line.split(":", 1)[1].strip() for line in fh if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{os.cpu_count()} cores ({cpu}), {mem:.0f} GiB RAM, {platform.system()} {platform.release()}"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="16:100,64:100,256:40,728:40")
    ap.add_argument("--rows", type=int, default=75_000)
    ap.add_argument("--work", default=os.path.join(ROOT, "target", "stress"))
    ap.add_argument("--csv", default=os.path.join(ROOT, "docs", "stress.csv"))
    ap.add_argument("--png", default=os.path.join(ROOT, "docs", "stress.png"))
    ap.add_argument("--budget", default="256MiB")
    ap.add_argument("--keep", action="store_true")
    a = ap.parse_args()

    run(["cargo", "build", "--release", "--quiet"], cwd=ROOT)
    os.makedirs(a.work, exist_ok=True)
    os.makedirs(os.path.dirname(a.csv), exist_ok=True)
    rows_out = []
    for size in a.sizes.split(","):
        symbols, features = (int(x) for x in size.split(":"))
        uni = os.path.join(a.work, f"u{symbols}x{features}")
        out = os.path.join(a.work, f"u{symbols}x{features}.spill")
        summ = out + ".json"
        if not os.path.isdir(uni):
            _, gsecs = run([BIN, "gen", "--output", uni, "--symbols", str(symbols), "--rows", str(a.rows),
                            "--features", str(features)])
            print(f"generated {symbols} x {a.rows} x {features} in {gsecs:.0f}s", file=sys.stderr)
        subprocess.run(["sh", "-c", f"cat {uni}/*.parquet > /dev/null"], check=True)  # warm cache
        _, secs = run(["/usr/bin/time", "-v", BIN, "build", "--input", uni, "--output", out, "--target", "target",
                       "--memory-budget", a.budget, "--summary", summ, "--quiet"])
        s = json.load(open(summ))
        _, vsecs = run([BIN, "verify", out])
        row = {
            "symbols": symbols, "features": features, "rows": s["rows"], "input_bytes": s["input_bytes"],
            "output_bytes": s["output_bytes"], "wall_s": round(s["seconds"], 3),
            "rows_per_s": round(s["rows_per_second"]), "input_mb_per_s": round(s["input_mb_per_second"], 1),
            "peak_rss_mib": round(s["peak_rss_bytes"] / 2**20, 1), "bound_mib": round(s["budget"]["bound_bytes"] / 2**20, 1),
            "readers": s["budget"]["readers"], "batch_rows": s["budget"]["batch_rows"],
            "capacity": s["budget"]["capacity"], "bottleneck": s["bottleneck"], "verify_s": round(vsecs, 2),
        }
        rows_out.append(row)
        print(json.dumps(row), file=sys.stderr)
        os.remove(out)
        os.remove(summ)
        if not a.keep:
            shutil.rmtree(uni)
    with open(a.csv, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows_out[0]))
        w.writeheader()
        w.writerows(rows_out)
    print(f"wrote {a.csv}; machine: {machine()}", file=sys.stderr)
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib missing: no plot", file=sys.stderr)
        return
    fig, ax1 = plt.subplots(figsize=(7, 4))
    xs = [r["symbols"] for r in rows_out]
    labels = [f'{r["symbols"]}x{r["features"]}' for r in rows_out]
    ax1.plot(xs, [r["peak_rss_mib"] for r in rows_out], "o-", color="tab:red", label="peak RSS (MiB)")
    ax1.axhline(int(a.budget.rstrip("MiB")) if a.budget.endswith("MiB") else 256, color="tab:red", ls=":",
                label="memory budget")
    ax1.set_xscale("log")
    ax1.set_xticks(xs, labels)
    ax1.set_xlabel("universe: symbols x features (75k rows each)")
    ax1.set_ylabel("peak RSS, MiB", color="tab:red")
    ax1.set_ylim(0, None)
    ax2 = ax1.twinx()
    ax2.plot(xs, [r["input_mb_per_s"] for r in rows_out], "s-", color="tab:blue", label="input MB/s")
    ax2.set_ylabel("throughput, input MB/s", color="tab:blue")
    ax2.set_ylim(0, None)
    fig.legend(loc="lower right", bbox_to_anchor=(0.88, 0.15))
    ax1.set_title("spillway build: memory stays flat as the universe grows")
    fig.tight_layout()
    fig.savefig(a.png, dpi=110)
    print(f"wrote {a.png}", file=sys.stderr)


if __name__ == "__main__":
    main()
