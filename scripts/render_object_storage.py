#!/usr/bin/env python3
"""Render scripts/bench_object_storage.py's JSON as a markdown section of the docs book.

    scripts/render_object_storage.py target/bench_object_storage.json [--doc docs/book/performance.md]
    scripts/render_object_storage.py RESULT.json --stdout        # print the section only

Replaces the text between `<!-- object-storage:begin -->` and `<!-- object-storage:end -->` in
--doc; when the markers are absent, appends a `## Object storage` section holding them. The
section has the date, commit and machine, one table per latency (medians: wall, peak RSS,
throughput, requests, bytes fetched / needed), the goals of issue 22 item 7 with met / not met and,
when the run had --sweep, the requests_in_flight x request_size grid.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import render_section as section  # noqa: E402
from render_section import met, wrap  # noqa: E402,F401

LABELS = {
    "spillway_s3": "**spillway build from `s3://`**",
    "spillway_local": "spillway build from local disk",
    "polars_s3": "polars `scan_parquet(\"s3://...\").sink_ipc()`",
    "pyarrow_s3": "pyarrow `S3FileSystem` dataset -> IPC",
    "raw_get": "raw parallel GETs of the same byte ranges (`s3kit get-ranges`)",
}


def size(n):
    return f"{n / 1e9:,.2f} GB" if n >= 1e9 else f"{n / 1e6:,.1f} MB"



def mib(x):
    return "-" if x is None else f"{x:,.0f}"


def job_row(job, m):
    if not m:
        return f"| {LABELS.get(job, job)} | failed | | | | |"
    wall = m["raw_seconds"] if job == "raw_get" else m["wall_s"]
    fetched = "-"
    if m.get("bytes_needed"):
        f, n = m["bytes_fetched"], m["bytes_needed"]
        fetched = f"{f / 1e6:,.1f} / {n / 1e6:,.1f} MB ({f / n:.3f}x)"
    elif job == "raw_get":
        fetched = f"{m['bytes_fetched'] / 1e6:,.1f} MB"
    label = LABELS.get(job, job) + ("" if m.get("all_verified", True) else " (output NOT verified)")
    rss = "-" if job == "raw_get" else mib(m["peak_rss_mib"])  # the get-ranges client, not a peer
    return (f"| {label} | {wall:.2f} | {rss} | {m['mb_per_s']:,.0f} | {m.get('requests') or '-'} | {fetched} |")



def goal_rows(g):
    rows = []
    if "ran" in g:
        return [f"| spillway from `s3://` ran | | {g['ran']['detail']} | **not met** |"]
    if "vs_fastest_peer" in g:
        v = g["vs_fastest_peer"]
        rows.append(f"| spillway s3 / fastest peer ({v['peer']}) | <= {v['goal']} | {v['ratio']:.2f} | "
                    f"{met(v['met'])} |")
    t = g["throughput"]
    share = "-" if t["share_of_local"] is None else f"{t['share_of_local']:.0%}"
    raw = "-" if t["vs_raw_get"] is None else f"{t['vs_raw_get']:.2f}x raw GET"
    how = {"local": " (by local share)", "raw": " (by raw GET: the server is the limit)"}.get(t["met_by"], "")
    rows.append(f"| share of local throughput, or time vs raw GET | >= {t['goal_share']:.0%}, or <= {t['goal_raw']}x | "
                f"{share}; {raw} | {met(t['met'])}{how} |")
    r = g["peak_rss"]
    rows.append(f"| spillway s3 peak RSS (max of runs) | <= {r['goal']} MiB | {r['mib']:,.0f} MiB | {met(r['met'])} |")
    if "bytes" in g:
        b = g["bytes"]
        extra = f" ({b['vs_plan']:.3f}x the column chunks and footers)" if "vs_plan" in b else ""
        rows.append(f"| bytes fetched / needed | <= {b['goal']} | {b['ratio']:.3f}{extra} | {met(b['met'])} |")
    rows.append(f"| every output verified | all | | {met(g['verified']['met'])} |")
    return rows


def sweep_table(cells):
    """cells: {"rif=N,rs=XMiB": median run}. Rows: requests_in_flight; columns: request_size."""
    def parse(c):
        kv = dict(x.split("=") for x in c.split(","))
        return int(kv["rif"]), int(kv["rs"].rstrip("MiB"))
    grid = {parse(c): m for c, m in cells.items()}
    rifs, rss = sorted({k[0] for k in grid}), sorted({k[1] for k in grid})
    out = ["| requests_in_flight \\ request_size | " + " | ".join(f"{r} MiB" for r in rss) + " |",
           "|---:|" + "---:|" * len(rss)]
    for n in rifs:
        cells_ = []
        for r in rss:
            m = grid.get((n, r))
            cells_.append("failed" if not m else f"{m['wall_s']:.2f} s, {m['peak_rss_mib_max']:,.0f} MiB"
                          + ("" if m["all_verified"] else " (NOT verified)"))
        out.append(f"| {n} | " + " | ".join(cells_) + " |")
    return out


def render(doc):
    mach, u, st = doc["machine"], doc["universe"], doc["settings"]
    commit = doc["commit"][:12] + (" plus uncommitted changes" if doc.get("dirty") else "")
    load = mach.get("loadavg_start")
    lines = [
        f"**From object storage** (`scripts/bench_object_storage.py`, {doc['date'][:16].replace('T', ' ')} UTC, "
        f"commit {commit}). Machine: {mach['cores']} cores ({mach['cpu']}), "
        f"{mach['ram_gib']:g} GiB, kernel {mach['kernel']}"
        + (f"; load average {load[0]:.1f} at the start, {mach['loadavg_end'][0]:.1f} at the end" if load else "")
        + f". {doc['versions']['spillway']}, polars {doc['versions']['polars']}, pyarrow {doc['versions']['pyarrow']}.",
        "",
        f"The universe: {u['files']} files, {u['rows']:,} rows, {u['features']} features, {size(u['bytes'])} "
        f"of parquet ({size(u['plan_bytes'])} of column chunks and footers, {u['plan_requests']:,} GETs of "
        f"at most {st['request_size'] // 2**20} MiB for the raw baseline), served by `s3kit serve` on loopback "
        f"behind `s3kit proxy --latency-ms N` (directly at 0 ms). Server, proxy and clients share the "
        f"machine's cores. spillway with requests_in_flight={st['requests_in_flight']}, "
        f"request_size={st['request_size'] // 2**20}MiB. Medians of {st['repeat']} runs, interleaved; each job a "
        "separate process; wall and peak RSS from `/usr/bin/time -v`; MB/s is parquet bytes over wall time.",
    ]
    lines = [wrap(lines[0]), "", wrap(lines[2])]
    for lat, med in doc["medians"].items():
        lines += ["", f"*{lat} ms added per request:*", "",
                  "| job | wall s | peak RSS MiB | MB/s | requests | bytes fetched / needed |",
                  "|---|---:|---:|---:|---:|---|"]
        lines += [job_row(j, m) for j, m in med.items()]
        lines += ["", "| goal | target | measured | |", "|---|---|---|---|"]
        lines += goal_rows(doc["goals"][lat])
        if doc.get("sweep", {}).get(lat):
            lines += ["", f"Sweep at {lat} ms (spillway from `s3://`, median wall, max peak RSS):", ""]
            lines += sweep_table(doc["sweep"][lat])
    cmd = (f"target/venv/bin/python scripts/bench_object_storage.py --repeat {st['repeat']} --latencies "
           + ",".join(str(x) for x in st["latencies_ms"]) + (" --sweep" if st.get("sweep") else "")
           + " --json docs/bench/object-storage.json")
    render_cmd = "target/venv/bin/python scripts/render_object_storage.py docs/bench/object-storage.json"
    lines += ["", "```sh", cmd, render_cmd, "```"]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(section.main(__doc__, render, "object-storage", "Object storage"))
