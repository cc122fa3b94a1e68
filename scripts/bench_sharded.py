#!/usr/bin/env python3
"""Sharded builds against the single-machine build of one universe, and spillway.ray end to end.

    target/venv/bin/python scripts/bench_sharded.py --input target/universe_M --out /tmp/bench \
        --shards 2,4 --filters "--target target --drop-null-target --min-cs 32 --max-cs-samples 48 --seed 1"

For each CLI job: wall seconds and peak RSS (of the process; the largest over a phase's processes).
1. `spillway build` of the whole universe (the reference);
2. per N: the CLI building blocks one after another on this machine (N counts, plan-cs, N shard
   builds, manifest), timed per phase; the dataset is checked against the reference, column by
   column;
3. per N: `spillway.ray.build(..., mode="subprocess")` on a local cluster (`ray.init(num_cpus=2)`,
   timed apart), then one pass of `read_spill` (every row's columns as Arrow blocks).
Outputs are removed as it goes. Prints a Markdown table.
"""
import argparse
import os
import shlex
import shutil
import subprocess
import sys
import time

import numpy as np


def run(argv):
    """(wall s, peak RSS MiB) of one process. Through /usr/bin/time: a child forked from this
    process would count this process's RSS at the fork in its own maxrss (Linux keeps the hiwater
    mark across exec), and this process maps whole spill files to compare them."""
    t = time.perf_counter()
    p = subprocess.run(["/usr/bin/time", "-f", "%M", *argv], stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE, text=True)
    wall = time.perf_counter() - t
    if p.returncode != 0:
        sys.exit(f"{shlex.join(argv)} failed ({p.returncode}): {p.stderr}")
    return wall, int(p.stderr.split()[-1]) / 1024


def same(single, manifest):
    import spillway
    a, ds = spillway.open(single), spillway.open_dataset(manifest)
    assert ds.nrows == a.nrows, (ds.nrows, a.nrows)
    for c in a.columns:
        for i, chunk in enumerate(ds.column_chunks(c)):
            lo, hi = ds.offsets[i], ds.offsets[i + 1]
            assert np.array_equal(chunk, a.column(c)[lo:hi], equal_nan=c != "symbol"), c
    return a.nrows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--input", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--shards", default="2,4")
    ap.add_argument("--bin", default="target/release/spillway")
    ap.add_argument("--filters", default="--target target --drop-null-target --min-cs 32 "
                    "--max-cs-samples 48 --seed 1")
    ap.add_argument("--no-ray", action="store_true")
    a = ap.parse_args()
    exe, u, out = os.path.abspath(a.bin), os.path.abspath(a.input), os.path.abspath(a.out)
    filters = shlex.split(a.filters)
    count_filters = []  # count takes the filters but --min-cs
    it = iter(filters)
    for f in it:
        if f == "--min-cs":
            next(it)
        else:
            count_filters.append(f)
    cs_args = []
    for flag in ("--min-cs", "--max-cs-samples", "--seed"):
        if flag in filters:
            cs_args += [flag, filters[filters.index(flag) + 1]]
    os.makedirs(out, exist_ok=True)
    rows = []
    subprocess.run(["sh", "-c", f"cat {shlex.quote(u)}/* > /dev/null"], check=True)  # warm
    single = os.path.join(out, "single.spill")
    w, r = run([exe, "build", "--input", u, "--output", single, "--quiet"] + filters)
    rows.append(("single build", w, r, ""))
    for n in [int(x) for x in a.shards.split(",")]:
        d = os.path.join(out, f"cli{n}")
        os.makedirs(d, exist_ok=True)
        counts = [os.path.join(d, f"c{i}") for i in range(n)]
        t = [run([exe, "count", "--input", u, "--shard", f"{i}/{n}", "--output", c]
                 + count_filters) for i, c in enumerate(counts)]
        plan = os.path.join(d, "cs.plan")
        p = run([exe, "plan-cs", *counts, *cs_args, "--output", plan])
        shards = [os.path.join(d, f"shard-{i}.spill") for i in range(n)]
        b = [run([exe, "build", "--input", u, "--shard", f"{i}/{n}", "--cs-plan", plan,
                  "--output", s, "--quiet"] + filters) for i, s in enumerate(shards)]
        m = run([exe, "manifest", *shards, "--cs-plan", plan, "--output",
                 os.path.join(d, "dataset.json")])
        nrows = same(single, os.path.join(d, "dataset.json"))
        for label, xs in ((f"{n} counts", t), ("plan-cs", [p]), (f"{n} shard builds", b),
                          ("manifest", [m])):
            rows.append((f"CLI, {n} shards: {label} (one after another)", sum(x[0] for x in xs),
                         max(x[1] for x in xs), ""))
        total = sum(x[0] for x in t + b + [p, m])
        rows.append((f"CLI, {n} shards: total", total, max(x[1] for x in t + b + [p, m]),
                     f"{nrows} rows, equal to the single build"))
        shutil.rmtree(d)
    if not a.no_ray:
        import ray
        import spillway.ray as sray
        t0 = time.perf_counter()
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
        rows.append(("ray.init(num_cpus=2)", time.perf_counter() - t0, None, ""))
        for n in [int(x) for x in a.shards.split(",")]:
            d = os.path.join(out, f"ray{n}")
            opts = {}
            it = iter(filters)
            for f in it:
                key = f[2:].replace("-", "_")
                opts[key] = True if key == "drop_null_target" else next(it)
            for key in ("min_cs", "max_cs_samples", "seed"):
                if key in opts:
                    opts[key] = int(opts[key])
            t0 = time.perf_counter()
            m = sray.build(u, d, shards=n, mode="subprocess", spillway_bin=exe, **opts)
            w = time.perf_counter() - t0
            nrows = same(single, m)
            rows.append((f"spillway.ray.build, {n} shards (counts, plan, builds, manifest)", w,
                         None, f"{nrows} rows, equal to the single build"))
            t0 = time.perf_counter()
            got = sum(b.num_rows for b in sray.read_spill(m).iter_batches(
                batch_size=65536, batch_format="pyarrow"))
            assert got == nrows
            rows.append((f"read_spill, {n} shards: one pass, every column",
                         time.perf_counter() - t0, None, f"{got} rows"))
            shutil.rmtree(d)
        ray.shutdown()
    os.remove(single)
    print("| job | wall s | peak RSS MiB | |\n|---|---:|---:|---|")
    for label, w, r, note in rows:
        print(f"| {label} | {w:.2f} | {'' if r is None else f'{r:.0f}'} | {note} |")


if __name__ == "__main__":
    main()
