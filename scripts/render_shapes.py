#!/usr/bin/env python3
"""Render scripts/bench_shapes.sh's JSON as two markdown sections: `shapes` in the performance
chapter (the full table, every job's medians and the command to reproduce) and `headline` in the
README (per shape spillway against the fastest writing peer).

    scripts/render_shapes.py docs/bench/shapes.json              # rewrite both sections in place
    scripts/render_shapes.py docs/bench/shapes.json --check      # CI: exit 1 if a section differs
    scripts/render_shapes.py RESULT.json --stdout                # print the sections only
    scripts/render_shapes.py RESULT.json --section shapes --doc docs/book/performance.md

Replaces the text between `<!-- shapes:begin -->` and `<!-- shapes:end -->` (default doc
docs/book/performance.md) and between `<!-- headline:begin -->` and `<!-- headline:end -->`
(default README.md); a doc without the markers gets a section holding them appended.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import render_section as section  # noqa: E402
from render_section import stamp, wrap  # noqa: E402

JSON = "docs/bench/shapes.json"
# Every shape scripts/bench_shapes.sh knows, in its order.
ALL_SHAPES = ("narrow", "small", "wide1000", "wide4000", "M")
LABELS = {
    "spillway": "**spillway build**",
    "spillway_decode_only": "spillway build `--decode-only` (decode + convert, write nothing)",
    "pyarrow_stream": "pyarrow streaming",
    "polars_scan_sink_ipc": "polars `scan_parquet().sink_ipc()`",
    "polars_sink_ipc": "polars per-file scans, concat, `sink_ipc()`",
    "duckdb_arrow": "DuckDB -> arrow",
    "decode_mt": "pyarrow multi-threaded decode, writes nothing (`decode_mt`)",
}


def label(job):
    return LABELS.get(job, f"`{job}`")


def peer_label(job):
    return "-" if job is None else label(job)


def num(x, nd=2):
    return "-" if x is None else f"{x:,.{nd}f}"


def mib(x):
    return "-" if x is None else f"{x:,.0f}"


def mib_unit(x):
    return "-" if x is None else f"{x:,.0f} MiB"


def size(n):
    return f"{n / 1e9:,.1f} GB" if n >= 1e9 else f"{n / 1e6:,.0f} MB"


def per_symbol(rows, symbols):
    n = rows / symbols
    return f"{n / 1000:.0f}k" if n >= 10_000 else f"{n / 1000:.1f}k" if n >= 1000 else f"{n:.0f}"


def shape_label(name, u):
    return f"{name} ({u['symbols']} x {per_symbol(u['rows'], u['symbols'])} x {u['features']})"


def failure(j):
    """Why a job has no number, or None."""
    if j["wall_s"] is None:
        why = {r.get("killed") or f"exit {r.get('rc')}" for r in j["runs"]}
        return "failed (" + ", ".join(sorted(why)) + ")"
    if not j["ok"]:
        return "failed in some runs"
    if j["verified"] is False:
        return "output not verified"
    return None


def test_warning(doc):
    if doc["settings"].get("small"):
        return ["**A test of the script on tiny universes (`SPILLWAY_SHAPES_SMALL=1`): not a measurement.**", ""]
    return []


def medians(n):
    return "one run" if n == 1 else f"medians of {n} runs"


def versions(doc):
    v = doc.get("versions", {})
    names = (("polars", "polars"), ("pyarrow", "pyarrow"), ("duckdb", "DuckDB"), ("python", "Python"))
    return ", ".join([v.get("spillway", "spillway ?")] + [f"{n} {v[k]}" for k, n in names if k in v])


def reproduce(doc):
    return ["```sh", doc["command"], f"python3 scripts/render_shapes.py {JSON}", "```"]


def render_shapes(doc):
    st, shapes = doc["settings"], doc["shapes"]
    peers = "; ".join(label(p) for p in st["peers"] if not p.startswith("decode_"))
    head = (f"**Every universe shape** (`scripts/bench_shapes.sh`, {stamp(doc)}; {versions(doc)}). Each shape "
            "against the peers in one run: every job a separate process timed by `../shared/anchors/peers.py` "
            "under `/usr/bin/time -v` (wall time, peak RSS) with the page cache warm, every output verified "
            f"(rows, sums, symbol runs); {medians(st['repeat'])}. Universes from `spillway gen`"
            + ("" if st.get("small") else ", M from `../shared/anchors/gen_universe.py`")
            + f". The fastest writing peer is the fastest of ({peers}) whose outputs all verified; "
            "`--decode-only` is the same build with its batches dropped instead of written; the zstd floor is every "
            "compressed page of the universe decompressed by the same codec library on as many threads as cores, "
            "with nothing else (`zstd-floor`, crates/floor; pages in memory beforehand).")
    lines = test_warning(doc) + [wrap(head), "",
             "| shape (symbols x rows x features) | parquet | spillway s | peak RSS MiB | fastest writing peer "
             "| its s | its peak RSS MiB | ratio | `--decode-only` s | build / decode-only | zstd floor s "
             "| build / floor |",
             "|---|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|"]
    for name, s in shapes.items():
        me, dec = s["jobs"].get("spillway"), s["jobs"].get("spillway_decode_only")
        best = s["jobs"].get(s["fastest_peer"]) if s["fastest_peer"] else None
        r = s["ratios"]
        me_s = (failure(me) or num(me["wall_s"])) if me else "-"
        lines.append(f"| {shape_label(name, s['universe'])} | {size(s['universe']['parquet_bytes'])} | {me_s} | "
                     f"{mib(me and me['peak_rss_mib'])} | {peer_label(s['fastest_peer'])} | "
                     f"{num(best and best['wall_s'])} | {mib(best and best['peak_rss_mib'])} | "
                     f"{num(r['spillway_vs_fastest_peer'])} | {num(dec and dec['wall_s'])} | "
                     f"{num(r['spillway_vs_decode_only'])} | {num((s.get('zstd_floor') or {}).get('wall_s'))} | "
                     f"{num(r.get('spillway_vs_zstd_floor'))} |")
    left_out = [n for n in ALL_SHAPES if n not in shapes]
    if left_out:
        lines += ["", wrap(f"Not in this run: {', '.join(left_out)} (`scripts/bench_shapes.sh` measures only the shapes "
                  "it is given).")]
    # Every job on every shape: where the prose's figures on the peers come from.
    jobs = list(dict.fromkeys(j for s in shapes.values() for j in s["jobs"]))
    lines += ["", "Every job, median wall s / peak RSS MiB:", "",
              "| job | " + " | ".join(shapes) + " |", "|---|" + "---:|" * len(shapes)]
    for j in jobs:
        cells = []
        for s in shapes.values():
            m = s["jobs"].get(j)
            if m is None:
                cells.append("-")
                continue
            why = failure(m)
            cells.append(why if m["wall_s"] is None else f"{m['wall_s']:.2f} / {mib(m['peak_rss_mib'])}"
                         + (f" ({why})" if why else ""))
        lines.append(f"| {label(j)} | " + " | ".join(cells) + " |")
    return "\n".join(lines + [""] + reproduce(doc))


def render_headline(doc):
    st = doc["settings"]
    lines = test_warning(doc) + [
        "| shape | spillway s | spillway peak RSS | fastest peer | its s | its peak RSS | spillway / peer |",
        "|---|---:|---:|---|---:|---:|---:|"]
    for name, s in doc["shapes"].items():
        u = s["universe"]
        me = s["jobs"].get("spillway") or {}
        best = s["jobs"].get(s["fastest_peer"]) if s["fastest_peer"] else None
        me_s = failure(me) or num(me["wall_s"]) if me else "-"
        lines.append(f"| {name}: {u['symbols']:,} files x {u['features']:,} features, "
                     f"{size(u['parquet_bytes'])} | {me_s} | {mib_unit(me.get('peak_rss_mib'))} | "
                     f"{peer_label(s['fastest_peer'])} | {num(best and best['wall_s'])} | "
                     f"{mib_unit(best and best['peak_rss_mib'])} | {num(s['ratios']['spillway_vs_fastest_peer'])} |")
    shown = [j for s in doc["shapes"].values() for j in (s["jobs"].get("spillway"), s["jobs"].get(s["fastest_peer"])) if j]
    verified = "outputs verified" if all(j["verified"] for j in shown) else "**not every output verified**"
    note = (f"{medians(st['repeat']).capitalize()}, {verified}; {stamp(doc)}. From `{JSON}`, measured by "
            f"`{doc['command']}`.")
    return "\n".join(lines + ["", wrap(note)])


SECTIONS = [
    section.Section("shapes", "Every universe shape", render_shapes, section.PERFORMANCE),
    section.Section("headline", "Performance", render_headline, section.README),
]

if __name__ == "__main__":
    sys.exit(section.main_sections(__doc__, SECTIONS))
