#!/usr/bin/env python3
"""Cross-sectional filter universes and an independent pandas check of spillway's output.

    cs_oracle.py make OUT_DIR --writer pyarrow|polars [--symbols 9] [--steps 400] [--seed 1] [--repeat]
    cs_oracle.py check INPUT SPILL --target target [--drop-null-target] [--min-cs N]
                       [--max-cs-samples K] [--max-rows M]

`make`: symbols on one shared 5-minute grid with ragged starts and ends (so cross-sections vary
from 1 to all symbols), a few null times, null and NaN targets, float and int features. With
--repeat, a symbol holds 1 to 3 rows at each of its times, and some symbols write a stretch of
their times in reverse (time going backwards).

`check`: recomputes the expected rows with pandas (per symbol: null times dropped, last M rows;
then null/NaN targets dropped; then timestamps with fewer than N rows dropped) and compares with
the spill file. With --max-cs-samples K the output must be a subset of that, in the same order,
with exactly min(K, n_t) rows at every timestamp and identical values (rows are told apart by
symbol, time and f0, which is random per row). Prints "OK ..." or fails.
"""
import argparse
import glob
import os
import sys

import numpy as np
import pandas as pd

T0 = np.datetime64("2021-03-01T00:00:00", "ns").astype(np.int64)
STEP = 300_000_000_000


def make(out, writer, symbols, steps, seed, repeat=False):
    os.makedirs(out, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(symbols):
        start = int(rng.integers(0, steps // 3))
        stop = steps - int(rng.integers(0, steps // 3))
        ts = T0 + np.arange(start, stop, dtype=np.int64) * STEP
        if repeat:
            ts = np.repeat(ts, rng.integers(1, 4, len(ts)))
            if i % 3 == 1:
                a = int(rng.integers(0, len(ts) // 2))
                ts[a:a + 40] = ts[a:a + 40][::-1].copy()
        n = len(ts)
        ts_null = rng.random(n) < 0.01
        target = rng.standard_normal(n)
        target[rng.random(n) < 0.05] = np.nan  # NaN targets
        target_null = rng.random(n) < 0.05  # null targets
        f0 = rng.standard_normal(n)
        f1 = rng.integers(-1000, 1000, n)
        name = f"SYM{i:02d}"
        path = os.path.join(out, name + ".parquet")
        if writer == "pyarrow":
            import pyarrow as pa
            import pyarrow.parquet as pq
            t = pa.table({
                "ts": pa.array(ts, mask=ts_null, type=pa.int64()).cast(pa.timestamp("ns", tz="UTC")),
                "target": pa.array(target, mask=target_null, from_pandas=False),
                "f0": pa.array(f0),
                "f1": pa.array(f1),
            })
            pq.write_table(t, path)
        else:
            import polars as pl
            df = pl.DataFrame({
                "ts": pl.Series(np.where(ts_null, None, ts).tolist(), dtype=pl.Int64).cast(pl.Datetime("ns", "UTC")),
                "target": pl.Series([None if m else v for v, m in zip(target.tolist(), target_null)],
                                    dtype=pl.Float64, nan_to_null=False),
                "f0": f0,
                "f1": f1,
            })
            df.write_parquet(path)


def expected(inp, a):
    frames = []
    for path in sorted(glob.glob(os.path.join(inp, "*.parquet")), key=lambda p: os.path.basename(p).encode()):
        df = pd.read_parquet(path)
        df = df[df["ts"].notna()]
        if a.max_rows is not None:
            df = df.iloc[max(0, len(df) - a.max_rows):]
        df = df.assign(symbol=os.path.basename(path)[: -len(".parquet")])
        frames.append(df)
    df = pd.concat(frames, ignore_index=True)
    df["ts_ns"] = df["ts"].astype("int64")
    if a.drop_null_target:
        df = df[df["target"].notna() & ~np.isnan(df["target"].astype("float64"))]
    if a.min_cs is not None:
        counts = df.groupby("ts_ns")["ts_ns"].transform("size")
        df = df[counts >= a.min_cs]
    return df.reset_index(drop=True)


def check(inp, spill_path, a):
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "spill", "python"))
    import spillfile
    f = spillfile.open(spill_path)
    exp = expected(inp, a)
    got = pd.DataFrame({
        "ts_ns": f.column("ts").astype("int64"),
        "symbol": np.array(f.symbols, dtype=object)[f.column("symbol")] if f.nrows else np.array([], dtype=object),
        "target": f.column("target"),
        "f0": f.column("f0"),
        "f1": f.column("f1"),
    })
    if a.max_cs_samples is None:
        chosen = exp
    else:
        # The output must be an order-preserving subset of the expected rows.
        f0 = lambda d: d["f0"].astype("float64").to_numpy().astype(np.float32)
        key = list(zip(exp["symbol"], exp["ts_ns"], f0(exp)))
        pos = {k: i for i, k in enumerate(key)}
        if len(pos) != len(key):
            sys.exit("the oracle cannot tell two input rows apart")
        idx = [pos.get(k) for k in zip(got["symbol"], got["ts_ns"], f0(got))]
        if any(i is None for i in idx):
            sys.exit("sampled output has rows the filters before sampling removed")
        if idx != sorted(idx) or len(set(idx)) != len(idx):
            sys.exit("sampled rows are not in symbol-major input order")
        chosen = exp.iloc[idx].reset_index(drop=True)
        n_t = exp.groupby("ts_ns").size()
        k_t = got.groupby("ts_ns").size().reindex(n_t.index, fill_value=0)
        want = np.minimum(n_t, a.max_cs_samples)
        bad = (k_t != want)
        if bad.any():
            t = bad.idxmax()
            sys.exit(f"timestamp {t}: {k_t[t]} rows kept, expected {want[t]} (of {n_t[t]})")
    if len(chosen) != len(got):
        sys.exit(f"rows: spill has {len(got)}, expected {len(chosen)}")
    if not (chosen["ts_ns"].to_numpy() == got["ts_ns"].to_numpy()).all():
        sys.exit("timestamps differ")
    if list(chosen["symbol"]) != list(got["symbol"]):
        sys.exit("symbols differ")
    for c in ("target", "f0", "f1"):
        e = chosen[c].astype("float64").to_numpy().astype(np.float32)
        g = got[c].to_numpy()
        if not np.array_equal(e, g, equal_nan=True):
            i = int(np.argmax(~((e == g) | (np.isnan(e) & np.isnan(g)))))
            sys.exit(f"column {c} row {i}: expected {e[i]}, got {g[i]}")
    # Symbol ranges: contiguous, in table order, matching the rows.
    for s, (start, stop) in f.symbol_ranges.items():
        if (got["symbol"][start:stop] != s).any():
            sys.exit(f"symbol range of {s} does not match its rows")
    print(f"OK rows={len(got)} timestamps={got['ts_ns'].nunique()}")


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    m = sub.add_parser("make")
    m.add_argument("out")
    m.add_argument("--writer", default="pyarrow")
    m.add_argument("--symbols", type=int, default=9)
    m.add_argument("--steps", type=int, default=400)
    m.add_argument("--seed", type=int, default=1)
    m.add_argument("--repeat", action="store_true")
    c = sub.add_parser("check")
    c.add_argument("input")
    c.add_argument("spill")
    c.add_argument("--target", default="target")
    c.add_argument("--drop-null-target", action="store_true")
    c.add_argument("--min-cs", type=int)
    c.add_argument("--max-cs-samples", type=int)
    c.add_argument("--max-rows", type=int)
    a = ap.parse_args()
    if a.cmd == "make":
        make(a.out, a.writer, a.symbols, a.steps, a.seed, a.repeat)
    else:
        check(a.input, a.spill, a)


if __name__ == "__main__":
    main()
