#!/usr/bin/env python3
"""Python-side benchmark: one training epoch and model training, from a spill file against the
parquet universe it was built from. Every job runs in its own process; its peak RSS is VmHWM.

    target/release/spillway gen --output target/universe_M --symbols 64 --rows 75000 --features 100
    target/release/spillway build --input target/universe_M --output target/M.spill --target target
    target/venv/bin/python scripts/bench_python.py --spill target/M.spill --parquet target/universe_M \
        --repeat 3 --json docs/bench/python.json

Jobs (an epoch = every row's features and target as float32 batches of --batch-rows):
  spill_seq        f.batches() in file order (pread)
  spill_shuffled   f.batches(shuffle="blocks") (pread)
  polars_epoch     polars.read_parquet per file, to float32 numpy, cut into batches
  pyarrow_epoch    pyarrow iter_batches per file, to float32 numpy
  lgb_spill        LightGBM Dataset from spill (Arrow over the views) + 20 rounds
  lgb_polars       LightGBM from a polars frame of the whole universe (to numpy) + 20 rounds
  xgb_spill        XGBoost QuantileDMatrix from spillway.xgboost.DataIter + 20 rounds
  xgb_polars       XGBoost QuantileDMatrix from a polars frame (to numpy) + 20 rounds
Jobs run interleaved (every job once, --repeat times), each in a fresh process after the spill file
and the universe were read once (warm page cache). Prints a markdown table and writes --json
(default docs/bench/python.json): date, commit, machine and command (scripts/bench_meta.py), the
versions, the settings, the universe and the spill file, per job the medians (seconds, peak RSS)
and every run, and the spill / parquet ratios. scripts/render_python.py renders it into the
performance chapter.
"""
import argparse
import glob
import json
import os
import subprocess
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_meta  # noqa: E402

JOBS = ["spill_seq", "spill_shuffled", "polars_epoch", "pyarrow_epoch", "lgb_spill", "lgb_polars",
        "xgb_spill", "xgb_polars"]


def vmhwm_mib():
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def features_of(spill):
    import spillway
    f = spillway.open(spill)
    return f.columns_with_role("feature"), f.target_column


def parquet_files(d):
    return sorted(glob.glob(os.path.join(d, "*.parquet")))


def epoch_spill(a, shuffle):
    import spillway
    f = spillway.open(a.spill)
    rows = 0
    for X, y in f.batches(a.batch_rows, shuffle="blocks" if shuffle else None,
                          block_rows=a.block_rows, seed=0):
        rows += len(y)
    return rows


def epoch_polars(a):
    import polars as pl
    feats, target = features_of(a.spill)
    rows = 0
    for p in parquet_files(a.parquet):
        df = pl.read_parquet(p, columns=feats + [target])
        X = df.select(feats).to_numpy().astype(np.float32, order="C")
        y = df[target].to_numpy().astype(np.float32)
        for i in range(0, len(y), a.batch_rows):
            Xb, yb = np.ascontiguousarray(X[i:i + a.batch_rows]), y[i:i + a.batch_rows]
            rows += len(yb)
    return rows


def epoch_pyarrow(a):
    import pyarrow.parquet as pq
    feats, target = features_of(a.spill)
    rows = 0
    for p in parquet_files(a.parquet):
        for b in pq.ParquetFile(p).iter_batches(batch_size=a.batch_rows, columns=feats + [target]):
            X = np.stack([b.column(i).to_numpy(zero_copy_only=False) for i in range(len(feats))],
                         axis=1).astype(np.float32)
            y = b.column(len(feats)).to_numpy(zero_copy_only=False).astype(np.float32)
            rows += len(y)
    return rows


def polars_matrix(a):
    import polars as pl
    feats, target = features_of(a.spill)
    df = pl.concat([pl.read_parquet(p, columns=feats + [target]) for p in parquet_files(a.parquet)])
    df = df.filter(pl.col(target).is_not_null() & pl.col(target).is_not_nan())
    X = df.select(feats).to_numpy().astype(np.float32)
    y = df[target].to_numpy().astype(np.float32)
    del df
    return X, y


LGB = {"objective": "regression", "num_leaves": 31, "learning_rate": 0.1, "max_bin": 63,
       "num_threads": 2, "verbose": -1}
XGB = {"tree_method": "hist", "max_depth": 6, "eta": 0.1, "max_bin": 63, "nthread": 2}


def train(a, job):
    import spillway
    rounds = a.rounds
    if job == "lgb_spill":
        import lightgbm as lgb
        ds = spillway.lightgbm.dataset(a.spill, max_bin=63, verbose=-1)
        lgb.train(LGB, ds, num_boost_round=rounds)
        return ds.num_data()
    if job == "lgb_polars":
        import lightgbm as lgb
        X, y = polars_matrix(a)
        ds = lgb.Dataset(X, label=y, params={"max_bin": 63, "verbose": -1})
        lgb.train(LGB, ds, num_boost_round=rounds)
        return len(y)
    if job == "xgb_spill":
        import xgboost as xgb
        it = spillway.xgboost.DataIter(a.spill, batch_rows=1 << 20)
        d = xgb.QuantileDMatrix(it, max_bin=63)
        xgb.train(XGB, d, num_boost_round=rounds)
        return d.num_row()
    if job == "xgb_polars":
        import xgboost as xgb
        X, y = polars_matrix(a)
        d = xgb.QuantileDMatrix(X, label=y, max_bin=63)
        xgb.train(XGB, d, num_boost_round=rounds)
        return d.num_row()
    raise SystemExit(f"unknown job {job}")


def run_job(a):
    t0 = time.perf_counter()
    if a.job == "spill_seq":
        rows = epoch_spill(a, False)
    elif a.job == "spill_shuffled":
        rows = epoch_spill(a, True)
    elif a.job == "polars_epoch":
        rows = epoch_polars(a)
    elif a.job == "pyarrow_epoch":
        rows = epoch_pyarrow(a)
    else:
        rows = train(a, a.job)
    print(json.dumps({"job": a.job, "rows": rows, "seconds": time.perf_counter() - t0,
                      "vmhwm_mib": vmhwm_mib()}))


def warm(paths):
    """Reads every file once, so each job starts from the same (warm) page cache."""
    for p in paths:
        with open(p, "rb") as fh:
            while fh.read(1 << 24):
                pass


# spill job / parquet job: the ratios the docs quote
PAIRS = [("spill_seq", "polars_epoch"), ("spill_seq", "pyarrow_epoch"), ("spill_shuffled", "polars_epoch"),
         ("lgb_spill", "lgb_polars"), ("xgb_spill", "xgb_polars")]


def rel(path):
    """``path`` relative to the repo when it is inside it (the JSON does not name this checkout)."""
    p = os.path.abspath(path)
    return os.path.relpath(p, bench_meta.REPO) if p.startswith(bench_meta.REPO + os.sep) else path


def versions():
    from importlib.metadata import PackageNotFoundError, version
    out = {"python": ".".join(str(x) for x in sys.version_info[:3])}
    for pkg, dists in (("spillway", ()), ("numpy", ()), ("polars", ()), ("pyarrow", ()), ("lightgbm", ()),
                       ("xgboost", ("xgboost-cpu",))):
        for dist in (pkg,) + dists:
            try:
                out[pkg] = version(dist)
                break
            except PackageNotFoundError:
                pass
    try:
        import spillway
        out["spillway_native"] = getattr(spillway, "_native", None) is not None
        out["spillway_package"] = rel(os.path.dirname(spillway.__file__))
    except ImportError:
        pass
    return out


def describe(a):
    """The universe (parquet footers) and the spill file."""
    import spillway
    files = parquet_files(a.parquet)
    uni = {"dir": rel(a.parquet), "files": len(files), "bytes": sum(os.path.getsize(p) for p in files)}
    try:
        import pyarrow.parquet as pq
        metas = [pq.ParquetFile(p).metadata for p in files]
        uni["rows"] = sum(m.num_rows for m in metas)
    except ImportError:
        pass
    f = spillway.open(a.spill)
    feats, target = f.columns_with_role("feature"), f.target_column
    uni["features"] = len(feats)
    spill = {"path": rel(a.spill), "bytes": os.path.getsize(a.spill), "rows": f.nrows, "features": len(feats),
             "target": target, "columns": len(f.columns)}
    return uni, spill


def median(v):
    v = sorted(x for x in v if x is not None)
    return v[(len(v) - 1) // 2] if v else None  # the lower median: a measured run


def summarise(runs, jobs):
    out = {}
    for job in jobs:
        mine = [r for r in runs if r["job"] == job]
        ok = [r for r in mine if r["ok"]]
        rows = sorted({r["rows"] for r in ok})
        out[job] = {"seconds": median(r["seconds"] for r in ok), "peak_rss_mib": median(r["vmhwm_mib"] for r in ok),
                    "rows": rows[0] if len(rows) == 1 else rows, "ok": len(ok) == len(mine), "runs": mine}
    ratios = {}
    for a, b in PAIRS:
        ma, mb = out.get(a), out.get(b)
        if ma and mb and ma["seconds"] and mb["seconds"]:
            ratios[f"{a}/{b}"] = {"seconds": round(ma["seconds"] / mb["seconds"], 3),
                                  "peak_rss": round(ma["peak_rss_mib"] / mb["peak_rss_mib"], 3)}
    return out, ratios


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--spill", required=True)
    ap.add_argument("--parquet", required=True, help="the universe directory the spill was built from")
    ap.add_argument("--batch-rows", type=int, default=65536)
    ap.add_argument("--block-rows", type=int, default=16384)
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--jobs", default=",".join(JOBS))
    ap.add_argument("--repeat", type=int, default=3, help="runs of each job, interleaved (medians)")
    ap.add_argument("--json", default=os.path.join(bench_meta.REPO, "docs", "bench", "python.json"))
    ap.add_argument("--job", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.job:
        return run_job(a)
    jobs = a.jobs.split(",")
    for job in jobs:
        if job not in JOBS:
            raise SystemExit(f"unknown job {job}; known: {', '.join(JOBS)}")
    doc = bench_meta.meta(command=f"{rel(sys.executable)} {bench_meta.command_line()}")
    doc["versions"] = versions()
    doc["settings"] = {"repeat": a.repeat, "jobs": jobs, "batch_rows": a.batch_rows, "block_rows": a.block_rows,
                       "rounds": a.rounds, "lightgbm": LGB, "xgboost": XGB, "python": rel(sys.executable),
                       "median": "lower median of the successful runs (a measured run)"}
    doc["universe"], doc["spill"] = describe(a)
    warm([a.spill] + parquet_files(a.parquet))
    runs = []
    for rep in range(a.repeat):
        for job in jobs:
            cmd = [sys.executable, __file__, "--spill", a.spill, "--parquet", a.parquet, "--job", job,
                   "--batch-rows", str(a.batch_rows), "--block-rows", str(a.block_rows),
                   "--rounds", str(a.rounds)]
            t0 = time.perf_counter()
            p = subprocess.run(cmd, capture_output=True, text=True)
            wall = time.perf_counter() - t0
            try:
                r = json.loads(p.stdout.strip().splitlines()[-1])
                r["vmhwm_mib"] = round(r["vmhwm_mib"], 1)
                r["seconds"] = round(r["seconds"], 3)
            except (IndexError, ValueError):
                r = {"job": job, "rows": None, "seconds": None, "vmhwm_mib": None}
            r.update(rep=rep, process_wall_s=round(wall, 3), rc=p.returncode, ok=p.returncode == 0 and r["seconds"] is not None)
            if not r["ok"]:
                r["stderr"] = p.stderr[-2000:]
                print(f"{job}: FAILED (exit {p.returncode})\n{p.stderr[-800:]}", file=sys.stderr)
            else:
                print(f"{job}: {r['seconds']:.2f} s, VmHWM {r['vmhwm_mib']:.0f} MiB, {r['rows']} rows",
                      file=sys.stderr)
            runs.append(r)
    bench_meta.finish(doc)
    doc["jobs"], doc["ratios"] = summarise(runs, jobs)
    bench_meta.write_json(doc, a.json)
    size = doc["spill"]["bytes"] / 2**20
    print(f"\nspill file {size:.0f} MiB; batch_rows {a.batch_rows}, block_rows {a.block_rows}, "
          f"{a.rounds} boosting rounds; medians of {a.repeat}\n")
    print("| job | wall s | peak RSS MiB | rows |\n|---|---:|---:|---:|")
    for job, m in doc["jobs"].items():
        if m["seconds"] is None:
            print(f"| {job} | failed | | |")
        else:
            print(f"| {job} | {m['seconds']:.2f} | {m['peak_rss_mib']:.0f} | {m['rows']} |")
    print(f"\nwrote {a.json}; render with scripts/render_python.py {a.json}", file=sys.stderr)
    return 0 if all(m["ok"] for m in doc["jobs"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
