#!/usr/bin/env python3
"""Render scripts/bench_bucket_epoch.py's JSON as a markdown section of the docs book.

    scripts/render_bucket_epoch.py docs/bench/bucket-epoch.json [--doc docs/book/performance.md]
    scripts/render_bucket_epoch.py RESULT.json --stdout        # print the section only
    scripts/render_bucket_epoch.py RESULT.json --check         # exit 1 if --doc's section differs

Replaces the text between `<!-- bucket-epoch:begin -->` and `<!-- bucket-epoch:end -->` in --doc;
when the markers are absent, appends a `## Epochs from a bucket` section holding them. The section
has the date, commit and machine, one table per latency (medians: epoch seconds, peak RSS,
throughput, bytes downloaded, where the reader waited), the goals of issue 23 item 6 with met /
not met, and the command lines.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import render_section as section  # noqa: E402
from render_section import met, wrap  # noqa: E402,F401

LABELS = {
    "local": "epoch from local disk (page cache warm)",
    "bucket_cold": "**first epoch from the bucket** (cache empty)",
    "bucket_warm": "**second epoch from the bucket** (cache warm)",
}




def job_row(job, m, shards):
    label = LABELS.get(job) or f"raw GETs of the {shards} shard objects, concurrency {job.rsplit('_c', 1)[1]}"
    if not m:
        return f"| {label} | failed | | | | | | |"
    if not m.get("all_verified", True):
        label += " (NOT verified)"
    raw = job.startswith("raw_get")
    rss = "-" if raw else f"{m['peak_rss_mib']:,.0f} ({m['peak_rss_anon_mib'] or 0:,.0f})"
    got = m.get("stats", {}).get("bytes_downloaded") if not raw else m.get("bytes")
    got = "-" if got is None else f"{got / 1e6:,.0f} MB"
    ph = m.get("phases") or {}
    wait = "-" if not ph else f"{ph['reader_wait']:.2f}"
    dl = "-" if not ph else (f"{ph.get('download', 0):.2f} / {ph.get('check', 0):.2f}"
                             f" ({ph['max_concurrent_downloads']} at once)")
    cpu = "-" if raw else f"{m['user_s'] + m['sys_s']:.2f}"
    return (f"| {label} | {m['seconds']:.2f} | {cpu} | {rss} | {m['mb_per_s']:,.0f} | {got} | {wait} "
            f"| {dl} |")


def goal_rows(g):
    rows = []
    c = g["cold"]
    if "ratio" in c:
        extra = ""
        if "vs_fastest_raw" in c:
            f = c["vs_fastest_raw"]
            extra = f"; {f['ratio']:.2f}x against the fastest raw GET (concurrency {f['concurrency']}, {f['seconds']:.2f} s)"
        rows.append(f"| first epoch / max(local {c['local_s']:.2f} s, raw GET at concurrency {c['raw_concurrency']} "
                    f"{c['raw_get_s']:.2f} s) | <= {c['goal']} | {c['ratio']:.2f}{extra} | {met(c['met'])} |")
    else:
        rows.append(f"| first epoch | <= 1.2x | {c['detail']} | **not met** |")
    w = g["warm"]
    if "ratio" in w:
        rows.append(f"| second epoch / local ({w['local_s']:.2f} s) | <= {w['goal']} | {w['ratio']:.2f} | "
                    f"{met(w['met'])} |")
    else:
        rows.append(f"| second epoch | <= 1.1x | {w['detail']} | **not met** |")
    rows.append(f"| every epoch's rows and sums equal the local epoch's; each shard downloaded once | all | | "
                f"{met(g['verified']['met'])} |")
    return rows


def render(doc):
    mach, d, st = doc["machine"], doc["dataset"], doc["settings"]
    commit = doc["commit"][:12] + (" plus uncommitted changes" if doc.get("dirty") else "")
    load = mach.get("loadavg_start")
    head = (f"**Epochs from a bucket** (`scripts/bench_bucket_epoch.py`, {doc['date'][:16].replace('T', ' ')} UTC, "
            f"commit {commit}). Machine: {mach['cores']} cores ({mach['cpu']}), {mach['ram_gib']:g} GiB, "
            f"kernel {mach['kernel']}"
            + (f"; load average {load[0]:.1f} at the start, {mach['loadavg_end'][0]:.1f} at the end" if load else "")
            + f". {doc['versions']['spillway']}, Python {doc['versions']['python']} (the package's release build).")
    what = (f"The dataset: M built as {d['shards']} shards (`spillway build --shard I/{d['shards']}`, then "
            f"`spillway manifest`), {d['rows']:,} rows, {d['columns']} columns, {d['bytes'] / 1e9:,.2f} GB, served "
            "from the same files by `s3kit serve` on loopback behind `s3kit proxy --latency-ms N` (directly at "
            "0 ms); server, proxy and reader share the machine's cores. An epoch: `spillway.open_dataset(URL, "
            f"cache_dir=...)`, then `ds.batches({st['batch_rows']}, shuffle=\"shards\", seed={st['seed']})` "
            f"(window {st['window']}, prefetch {st['prefetch']}) with every batch summed, in a fresh process; "
            "its seconds run from `open_dataset` to the loop's end. The raw GETs (`s3kit get-ranges`) fetch the "
            f"whole shard objects. Medians of {st['repeat']} runs, interleaved. Peak RSS from `/usr/bin/time -v` "
            "(it counts the mapped shard pages), anonymous memory sampled in brackets. Reader wait: seconds the "
            "iterating thread spent waiting for a shard (`MappedShards.hold` plus waiting for a prefetch); "
            "download / check: seconds in each over the epoch, on any thread. CPU: the epoch process's user "
            "plus system seconds; the first epoch's exceed the local one's by the download (receiving and "
            "writing the shards into the page cache), while the server and the proxy run on the same two "
            "cores: the first epoch is bound by CPU here, not by the network or by waiting.")
    lines = [wrap(head), "", wrap(what)]
    for lat, med in doc["medians"].items():
        lines += ["", f"*{lat} ms added per request:*", "",
                  "| job | seconds | CPU s | peak RSS MiB (anon) | MB/s | downloaded | reader wait s | "
                  "download / check s |",
                  "|---|---:|---:|---:|---:|---:|---:|---|"]
        lines += [job_row(j, m, d["shards"]) for j, m in med.items()]
        lines += ["", "| goal | target | measured | |", "|---|---|---|---|"]
        lines += goal_rows(doc["goals"][lat])
    cmd = (f"nice target/venv-bench/bin/python scripts/bench_bucket_epoch.py --repeat {st['repeat']} --latencies "
           + ",".join(str(x) for x in st["latencies_ms"]) + " --concurrency "
           + ",".join(str(x) for x in st["concurrency"]) + " --json docs/bench/bucket-epoch.json")
    render_cmd = "python3 scripts/render_bucket_epoch.py docs/bench/bucket-epoch.json"
    lines += ["", "```sh", cmd, render_cmd, "```"]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(section.main(__doc__, render, "bucket-epoch", "Epochs from a bucket"))
