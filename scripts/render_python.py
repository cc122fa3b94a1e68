#!/usr/bin/env python3
"""Render scripts/bench_python.py's JSON as the `python-epoch` section of the performance chapter.

    scripts/render_python.py docs/bench/python.json [--doc docs/book/performance.md]
    scripts/render_python.py RESULT.json --stdout        # print the section only
    scripts/render_python.py RESULT.json --check         # CI: exit 1 if --doc's section differs

Replaces the text between `<!-- python-epoch:begin -->` and `<!-- python-epoch:end -->` in --doc;
when the markers are absent, appends a `## Training from Python` section holding them. The section
has the date, commit and machine, the universe and the spill file, one row per job (medians: wall
seconds, peak RSS), the spill / parquet ratios and the commands.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import render_section as section  # noqa: E402
from render_section import stamp, wrap  # noqa: E402

JSON = "docs/bench/python.json"


def labels(st):
    return {
        "spill_seq": "`f.batches()` epoch, file order",
        "spill_shuffled": f"`f.batches(shuffle=\"blocks\", block_rows={st['block_rows']})` epoch",
        "polars_epoch": "same epoch from the parquet universe, polars `read_parquet` per file",
        "pyarrow_epoch": "same epoch from the parquet universe, pyarrow `iter_batches` per file",
        "lgb_spill": "LightGBM from the spill (`spillway.lightgbm.dataset`)",
        "lgb_polars": "LightGBM from polars (whole universe to numpy)",
        "xgb_spill": "XGBoost `QuantileDMatrix` from the spill (`spillway.xgboost.DataIter`)",
        "xgb_polars": "XGBoost `QuantileDMatrix` from polars (whole universe to numpy)",
    }


def size(n):
    return f"{n / 1e9:,.2f} GB" if n >= 1e9 else f"{n / 1e6:,.1f} MB"


def versions(v):
    names = (("numpy", "numpy"), ("polars", "polars"), ("pyarrow", "pyarrow"), ("lightgbm", "LightGBM"),
             ("xgboost", "XGBoost"), ("python", "Python"))
    sw = f"spillway {v.get('spillway', '?')}" + ("" if v.get("spillway_native", True)
                                                  else " (pure-Python reader, no native extension)")
    return ", ".join([sw] + [f"{n} {v[k]}" for k, n in names if k in v])


def rows(r):
    return "-" if r is None else f"{r:,}" if isinstance(r, int) else " / ".join(f"{x:,}" for x in r)


def runs_range(m):
    ok = [r for r in m["runs"] if r["ok"]]
    if len(m["runs"]) < 2 or not ok:
        return ""
    s = [r["seconds"] for r in ok]
    return f" ({min(s):.2f}-{max(s):.2f})"


def render(doc):
    st, u, sp, lab = doc["settings"], doc["universe"], doc["spill"], labels(doc["settings"])
    n = st["repeat"]
    uni = f"{u['files']} files"
    if "rows" in u:
        uni += f", {u['rows']:,} rows"
    head = (f"**Training from Python** (`scripts/bench_python.py`, {stamp(doc)}; {versions(doc['versions'])}). "
            f"The universe `{u['dir']}`: {uni}, {u['features']} features, {size(u['bytes'])} of parquet; the "
            f"spill file built from it: {size(sp['bytes'])}, {sp['rows']:,} rows. Each job in its own process, "
            "peak RSS its VmHWM (which counts the pages of a mapped file it touched), page cache warm; "
            + ("one run" if n == 1 else f"medians of {n} runs, interleaved (the range of the runs' seconds in "
               "brackets)") + f". An epoch is every row's {sp['features']} features and target as float32 "
            f"batches of {st['batch_rows']:,} rows; training is {st['rounds']} boosting rounds, `max_bin` "
            f"{st['lightgbm']['max_bin']}, {st['lightgbm']['num_threads']} threads.")
    lines = [wrap(head), "", "| job | wall s | peak RSS MiB | rows |", "|---|---:|---:|---:|"]
    for job, m in doc["jobs"].items():
        if m["seconds"] is None:
            lines.append(f"| {lab.get(job, job)} | failed | | |")
            continue
        flag = "" if m["ok"] else " (failed in some runs)"
        lines.append(f"| {lab.get(job, job)}{flag} | {m['seconds']:.2f}{runs_range(m)} | {m['peak_rss_mib']:,.0f} | "
                     f"{rows(m['rows'])} |")
    if doc["ratios"]:
        lines += ["", "| spill job / parquet job | wall time | peak RSS |", "|---|---:|---:|"]
        for pair, r in doc["ratios"].items():
            a, b = pair.split("/")
            lines.append(f"| `{a}` / `{b}` | {r['seconds']:.2f} | {r['peak_rss']:.2f} |")
    lines += ["", "```sh",
              f"target/release/spillway build --input {u['dir']} --output {sp['path']} --target {sp['target']}",
              doc["command"], f"python3 scripts/render_python.py {JSON}", "```"]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(section.main(__doc__, render, "python-epoch", "Training from Python"))
