#!/usr/bin/env python3
"""Stress runs over growing synthetic universes: generate with `spillway gen`, build, verify,
record wall time, rows/s, input MB/s, peak RSS and output bytes, and plot peak RSS and throughput
against universe size.

    scripts/stress.py [--sizes 16:100,64:100,256:40,728:40] [--rows 75000] [--work target/stress]
                      [--json target/stress.json] [--png target/stress.png] [--spillway BIN] [--keep]
    scripts/stress.py --shapes      # the universe shapes: target/stress_shapes.json and .png
    scripts/stress.py --plot-only [--json FILE]   # redraw the plot from the JSON

Each size is SYMBOLS:FEATURES[:ROWS]. `--shapes` runs two sweeps of about 2.4 GB of float64 each:
the column count (10, 100, 1000, 4000 features; fewer symbols as the files widen) and the file
count (16 to 4096 files of 100 features; fewer rows per file), and plots wall time and peak RSS
against each. A universe is deleted after its run unless --keep (728 x 75k x 40
is ~11 GB of parquet plus ~9 GB of spill).

The JSON (rewritten after each size, "complete" once all ran) has the date, commit, machine and
command (scripts/bench_meta.py), the settings and one entry per size under "runs". It is not
published: nothing renders it into the docs. Needs matplotlib for the plot (the test venv has it
with `pip install matplotlib`); the JSON is written regardless. Without --spillway the release
binary is built first (cargo build --release).
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "target", "release", "spillway")
sys.path.insert(0, os.path.join(ROOT, "scripts"))
import bench_meta  # noqa: E402


def run(cmd, **kw):
    t0 = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if p.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{p.stderr}")
    return p, time.perf_counter() - t0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="16:100,64:100,256:40,728:40")
    ap.add_argument("--rows", type=int, default=75_000)
    ap.add_argument("--work", default=os.path.join(ROOT, "target", "stress"))
    ap.add_argument("--json", help="default target/stress.json (--shapes: target/stress_shapes.json)")
    ap.add_argument("--png", help="default: --json's path with .png")
    ap.add_argument("--spillway", help="the binary to run (default: cargo build --release, then target/release/spillway)")
    ap.add_argument("--budget", default="256MiB")
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--plot-only", action="store_true", help="redraw the PNG from the JSON")
    ap.add_argument("--shapes", action="store_true", help="the column-count and file-count sweeps")
    a = ap.parse_args()
    if a.shapes:
        a.sizes = ",".join(COLUMN_SWEEP + FILE_SWEEP)
    a.json = a.json or os.path.join(ROOT, "target", "stress_shapes.json" if a.shapes else "stress.json")
    a.png = a.png or os.path.splitext(a.json)[0] + ".png"
    if a.plot_only:
        with open(a.json) as fh:
            doc = json.load(fh)
        a.budget, a.shapes = doc["settings"]["budget"], doc["settings"]["shapes"]
        plot(doc["runs"], a)
        return

    binary = a.spillway
    if binary is None:
        run(["cargo", "build", "--release", "--quiet"], cwd=ROOT)
        binary = BIN
    binary = os.path.abspath(binary)
    os.makedirs(a.work, exist_ok=True)
    doc = bench_meta.meta()
    doc["versions"] = {"spillway": run([binary, "--version"])[0].stdout.strip()}
    doc["settings"] = {"sizes": a.sizes.split(","), "rows": a.rows, "budget": a.budget, "shapes": a.shapes,
                       "spillway": binary, "work": a.work, "keep": a.keep}
    doc["complete"] = False
    doc["runs"] = rows_out = []
    for size in a.sizes.split(","):
        symbols, features, *rest = (int(x) for x in size.split(":"))
        nrows = rest[0] if rest else a.rows
        uni = os.path.join(a.work, f"u{symbols}x{features}x{nrows}")
        out = uni + ".spill"
        summ = out + ".json"
        if not os.path.isdir(uni):
            _, gsecs = run([binary, "gen", "--output", uni, "--symbols", str(symbols), "--rows", str(nrows),
                            "--features", str(features)])
            print(f"generated {symbols} x {nrows} x {features} in {gsecs:.0f}s", file=sys.stderr)
        # Flush the generator's dirty pages (writeback would compete with the build), warm the cache.
        subprocess.run(["sync"], check=True)
        subprocess.run(["sh", "-c", f"cat {uni}/*.parquet > /dev/null"], check=True)
        _, secs = run(["/usr/bin/time", "-v", binary, "build", "--input", uni, "--output", out, "--target", "target",
                       "--memory-budget", a.budget, "--summary", summ, "--quiet"])
        s = json.load(open(summ))
        _, vsecs = run([binary, "verify", out])
        row = {
            "symbols": symbols, "features": features, "rows_per_symbol": nrows, "rows": s["rows"], "input_bytes": s["input_bytes"],
            "output_bytes": s["output_bytes"], "wall_s": round(s["seconds"], 3), "process_wall_s": round(secs, 3),
            "rows_per_s": round(s["rows_per_second"]), "input_mb_per_s": round(s["input_mb_per_second"], 1),
            "peak_rss_mib": round(s["peak_rss_bytes"] / 2**20, 1), "bound_mib": round(s["planned_bound_bytes"] / 2**20, 1),
            "readers": s["budget"]["readers"], "batch_rows": s["budget"]["batch_rows"],
            "capacity": s["budget"]["capacity"], "bottleneck": s["bottleneck"], "verify_s": round(vsecs, 2),
        }
        rows_out.append(row)
        print(json.dumps(row), file=sys.stderr)
        os.remove(out)
        os.remove(summ)
        if not a.keep:
            shutil.rmtree(uni)
        bench_meta.write_json(doc, a.json)  # what ran so far, should a later size fail
    doc["complete"] = True
    bench_meta.write_json(bench_meta.finish(doc), a.json)
    print(f"wrote {a.json}", file=sys.stderr)
    plot(rows_out, a)


# SYMBOLS:FEATURES:ROWS, about 300M float64 values (2.4 GB) each.
COLUMN_SWEEP = ["400:10:75000", "40:100:75000", "4:1000:75000", "1:4000:75000"]
FILE_SWEEP = ["16:100:187500", "256:100:11719", "1024:100:2930", "4096:100:732"]


def pyplot():
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        return plt
    except ImportError:
        print("matplotlib missing: no plot", file=sys.stderr)
        return None


def plot(rows_out, a):
    if a.shapes:
        return plot_shapes(rows_out, a)
    plt = pyplot()
    if plt is None:
        return
    fig, ax1 = plt.subplots(figsize=(7.5, 4.2))
    xs = list(range(len(rows_out)))
    labels = [f'{r["symbols"]} x {r["features"]}\n{r["input_bytes"] / 1e9:.1f} GB in' for r in rows_out]
    ax1.plot(xs, [r["peak_rss_mib"] for r in rows_out], "o-", color="tab:red", label="peak RSS (MiB)")
    ax1.plot(xs, [r["bound_mib"] for r in rows_out], ":", color="tab:red", label="planned bound (MiB)")
    ax1.set_xticks(xs, labels)
    ax1.set_xlabel("universe: symbols x features (75k rows each)")
    ax1.set_ylabel("peak RSS, MiB", color="tab:red")
    ax1.set_ylim(0, 300)
    ax2 = ax1.twinx()
    ax2.plot(xs, [r["input_mb_per_s"] for r in rows_out], "s-", color="tab:blue", label="input MB/s")
    ax2.set_ylabel("throughput, input MB/s", color="tab:blue")
    ax2.set_ylim(0, max(r["input_mb_per_s"] for r in rows_out) * 1.3)
    h1, l1 = ax1.get_legend_handles_labels()
    h2, l2 = ax2.get_legend_handles_labels()
    ax1.legend(h1 + h2, l1 + l2, loc="lower left", fontsize=8)
    ax1.set_title(f"spillway build ({a.budget} budget): memory stays flat as the universe grows", fontsize=10)
    fig.tight_layout()
    fig.savefig(a.png, dpi=110)
    print(f"wrote {a.png}", file=sys.stderr)


def plot_shapes(rows_out, a):
    """Two panels: wall time and peak RSS against the column count, and against the file count."""
    plt = pyplot()
    if plt is None:
        return
    key = lambda r: f'{r["symbols"]}:{r["features"]}:{r["rows_per_symbol"]}'
    sweeps = [
        ("features (columns) per file", COLUMN_SWEEP, "features"),
        ("files (100 features each)", FILE_SWEEP, "symbols"),
    ]
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.2))
    for ax1, (xlabel, sweep, field) in zip(axes, sweeps):
        rows = [r for r in rows_out if key(r) in sweep]
        if not rows:
            continue
        xs = [r[field] for r in rows]
        ax1.plot(xs, [r["wall_s"] for r in rows], "s-", color="tab:blue", label="wall s")
        ax1.set_xscale("log")
        ax1.set_xticks(xs, [str(x) for x in xs])
        ax1.set_xlabel(xlabel)
        ax1.set_ylabel("wall time, s", color="tab:blue")
        ax1.set_ylim(0, max(r["wall_s"] for r in rows) * 1.3)
        ax2 = ax1.twinx()
        ax2.plot(xs, [r["peak_rss_mib"] for r in rows], "o-", color="tab:red", label="peak RSS (MiB)")
        ax2.plot(xs, [r["bound_mib"] for r in rows], ":", color="tab:red", label="planned bound (MiB)")
        ax2.set_ylabel("MiB", color="tab:red")
        ax2.set_ylim(0, 300)
        h1, l1 = ax1.get_legend_handles_labels()
        h2, l2 = ax2.get_legend_handles_labels()
        ax1.legend(h1 + h2, l1 + l2, loc="lower left", fontsize=8)
    fig.suptitle(f"spillway build ({a.budget} budget), ~2.4 GB of float64 per universe", fontsize=10)
    fig.tight_layout()
    fig.savefig(a.png, dpi=110)
    print(f"wrote {a.png}", file=sys.stderr)


if __name__ == "__main__":
    main()
