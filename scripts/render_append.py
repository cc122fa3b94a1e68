#!/usr/bin/env python3
"""Render scripts/bench_append.py's JSON as the `append` section of the performance chapter.

    scripts/render_append.py docs/bench/append.json [--doc docs/book/performance.md]
    scripts/render_append.py RESULT.json --stdout        # print the section only
    scripts/render_append.py RESULT.json --check         # CI: exit 1 if --doc's section differs

Replaces the text between `<!-- append:begin -->` and `<!-- append:end -->` in --doc; when the
markers are absent, appends an `## Appends and compaction` section holding them. The section has
the date, commit and machine, the universes, `spillway append` against a full build (hive and
flat), the per-step cost of many appends, `spillway compact`, the epoch over the appended dataset
against the compacted one, the goals of issue 26 with met / not met, and the commands.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import render_section as section  # noqa: E402
from render_section import met, stamp, wrap  # noqa: E402

JSON = "docs/bench/append.json"


def size(n):
    if n < 2**20:
        return f"{n / 2**10:,.0f} KiB"
    if n < 10 * 2**20:
        return f"{n / 2**20:.1f} MiB"
    return f"{n / 2**30:,.2f} GiB" if n >= 2**30 else f"{n / 2**20:,.0f} MiB"


def secs(runs, key="seconds", fmt="{:.2f}"):
    """The median of the runs' ``key``, and their range when there are several."""
    v = sorted(r[key] for r in runs)
    m = (v[(len(v) - 1) // 2] + v[len(v) // 2]) / 2
    spread = f" ({fmt.format(v[0])}-{fmt.format(v[-1])})" if len(v) > 1 else ""
    return fmt.format(m) + spread


def num(v, fmt="{:,.0f}"):
    return "-" if v is None else fmt.format(v)


def history(h):
    return f"{h['trusted']} trusted, {h['rebuilt']} rebuilt and compared"


def append_lines(doc):
    u = doc["universe"]
    lines = ["", wrap(f"*Appending the last {100 * u['tail']:g}% of the timestamps* "
                      f"({u['timestamps_after_cut']:,} of {u['timestamps']:,}) to the time-major dataset of the "
                      f"rest, against a full `--order time` build of the grown universe: `{u['gen']}`, "
                      f"{size(u['bytes'])} in {u['files']} files. Hive: each symbol's rows split by time into "
                      "`symbol=<S>/part-0.parquet` and `part-1.parquet` (pyarrow, zstd, row groups of "
                      f"{doc['settings']['row_group_rows']:,} rows as gen's), the dataset built from part-0, "
                      "then part-1 added. Flat: the same rows as `<S>.parquet` files, each rewritten with the "
                      "grown rows, so the history check builds every symbol's old rows again and compares "
                      "them. Peak RSS: the largest of the runs (GNU time's maximum resident set)."),
             "", "| universe | `spillway append` s | full build s | append / build | rows appended (of) | "
                 "append peak RSS MiB | build peak RSS MiB | history check |",
             "|---|---:|---:|---:|---:|---:|---:|---|"]
    for case, label in (("hive", "hive: one new part per symbol"), ("flat", "flat: every file rewritten")):
        c = doc.get(case)
        if not c:
            continue
        lines.append(f"| {label} | {secs(c['appends'])} | {secs(c['builds'])} | {100 * c['ratio']:.1f}% | "
                     f"{c['rows_appended']:,} ({c['rows']:,}) | {num(c['append_maxrss_mib'])} | "
                     f"{num(c['build_maxrss_mib'])} | {history(c['appends'][-1]['history'])} |")
    return lines


def appends_lines(doc):
    a = doc.get("appends")
    if not a:
        return []
    u, st, c, mb = a["universe"], a["step_s"], a["compact"], a.get("metadata_bytes")
    lines = ["", wrap(f"*{a['appends']} appends, then `spillway compact`*: `{u['gen']}` ({size(u['bytes'])}, "
                      f"{u['timestamps']:,} timestamps), the dataset built from the first "
                      f"{u['initial_timestamps']:,} timestamps ({a['initial']['rows']:,} rows), then "
                      f"{a['appends']} appends of equal slices of the rest, each one new hive part per symbol. "
                      f"An append took {st['median']:.2f} s (median; {st['first']:.2f} s over the first "
                      f"{st['of']}, {st['last']:.2f} s over the last {st['of']}, at most {st['max']:.2f} s; "
                      f"{st['total']:.0f} s in all), its peak RSS from {num(a['steps'][0]['maxrss_mib'])} MiB "
                      f"(the first) to {num(a['step_maxrss_mib'])} MiB: a step costs more as the universe "
                      f"gains files ({u['symbols']} a step) and the dataset shards (one a step). "
                      f"`spillway compact` merged the {a['shards_before']} shards into {c['shards']} in "
                      f"{c['seconds']:.2f} s ({size(c['bytes'])} written, peak RSS {num(c['maxrss_mib'])} MiB), "
                      "verified with `spillway verify --deep`."),
             "", wrap(f"*The epoch*: in a fresh process, `spillway.open_dataset(manifest)` and every batch of "
                      f"`batches({doc['settings']['batch_rows']})`, in file order and with "
                      "`shuffle=\"blocks\", seed=0`, over the appended dataset and over the compacted one; "
                      "a warm-up epoch of each first (warm page cache), then the runs alternating; both give "
                      "the same rows and sums. Seconds: opening the dataset (every shard mapped and checked "
                      "against the manifest) plus the batches."
                      + (f" The {a['shards_before']} shards' metadata blocks, which opening reads, hold "
                         f"{size(mb['total'])} (the newest {size(mb['last'])}, of which its `inputs.stamp`, "
                         f"the {mb['last_stamp_files']:,} files of the universe as its cut read them, takes "
                         f"{size(mb['last_stamp'])}); the compacted file's, "
                         f"{size(c['metadata_bytes'])}." if mb else "")),
             "", f"| epoch | {a['shards_before']} shards s | compacted s | ratio | batches alone: ratio | "
                 "opening s (appended, compacted) | peak RSS MiB (appended, compacted) |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for s, label in (("seq", "file order"), ("blocks", "`shuffle=\"blocks\"`")):
        e = a["epochs"][s]
        lines.append(f"| {label} | {secs(e['uncompacted'], fmt='{:.3f}')} | {secs(e['compacted'], fmt='{:.3f}')} | "
                     f"{e['ratio']:.3f} | {e['ratio_batches']:.3f} | {secs(e['uncompacted'], 'open_s', '{:.3f}')}, "
                     f"{secs(e['compacted'], 'open_s', '{:.3f}')} | "
                     f"{num(max(r['maxrss_mib'] for r in e['uncompacted']))}, "
                     f"{num(max(r['maxrss_mib'] for r in e['compacted']))} |")
    return lines


def goal_lines(doc):
    g = doc["goals"]
    out = ["", "| goal (issue 26) | target | measured | |", "|---|---|---|---|"]
    if "hive" in g:
        out.append(f"| append of the last {100 * doc['universe']['tail']:g}% (hive) / full build (seconds) | "
                   f"<= {100 * g['hive']['goal']:g}% | {100 * g['hive']['ratio']:.1f}% | {met(g['hive']['met'])} |")
    if "flat" in doc:
        out.append(f"| the same, flat files rewritten (history rebuilt) / full build | (reported beside) | "
                   f"{100 * doc['flat']['ratio']:.1f}% | |")
    if "epoch" in g:
        n = doc["appends"]["shards_before"]
        out.append(f"| epoch over {n} shards / over the compacted file (seconds, file order) | "
                   f"<= {g['epoch']['goal']:g} | {g['epoch']['ratio']:.3f} | {met(g['epoch']['met'])} |")
    return out


def render(doc):
    v, st = doc["versions"], doc["settings"]
    n = st["repeat"]
    head = (f"**Appends and compaction** (`scripts/bench_append.py`, {stamp(doc)}; {v.get('spillway_cli', '?')} "
            f"(`{st['binary']}`), Python {v['python']}, numpy {v['numpy']}, pyarrow {v['pyarrow']}; the epochs read "
            f"with this tree's `python/spillway` {v['spillway']}). Every command a separate process; "
            + ("one run" if n == 1 else f"medians of {n} runs, alternating (their range in brackets)") + ".")
    lines = [wrap(head)] + append_lines(doc) + appends_lines(doc) + goal_lines(doc)
    if doc.get("skipped"):
        lines += ["", "Not measured:", ""] + [f"- {k}: {x}" for k, x in doc["skipped"].items()]
    command = doc["command"]
    if command.startswith("scripts/"):  # run by an interpreter: show which
        command = f"{st['python']} {command}"
    lines += ["", "```sh", "cargo build --release", command, f"python3 scripts/render_append.py {JSON}", "```"]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(section.main(__doc__, render, "append", "Appends and compaction"))
