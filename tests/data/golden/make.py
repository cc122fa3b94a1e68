"""Writes the golden universe (committed; run again only to change it, then re-bless the golden
outputs with SPILLWAY_BLESS=1): three symbols, repeated timestamps within a symbol, null targets,
a missing feature, a zone-aware time column. pyarrow, fixed values, no randomness."""

import math
import pathlib

import pyarrow as pa
import pyarrow.parquet as pq

here = pathlib.Path(__file__).parent / "universe"
here.mkdir(exist_ok=True)
ts = pa.timestamp("ns", tz="UTC")
for k, (sym, n) in enumerate([("AAA", 60), ("BBB", 48), ("CCC", 36)]):
    # Every 4th row repeats the time before it; times overlap across symbols.
    t = []
    for i in range(n):
        t.append(t[-1] if i % 4 == 3 else (i + k) * 60_000_000_000)
    cols = {
        "ts": pa.array(t, ts),
        "f_a": pa.array([math.sin(i * 0.1 + k) for i in range(n)], pa.float64()),
        "f_b": pa.array([float(i * (k + 1)) if i % 7 else None for i in range(n)], pa.float64()),
        "target": pa.array([None if i % 5 == 2 else math.cos(i * 0.2) for i in range(n)], pa.float64()),
    }
    if sym != "CCC":
        cols["f_c"] = pa.array(list(range(n)), pa.int32())
    pq.write_table(pa.table(cols), here / f"{sym}.parquet", row_group_size=25, compression="zstd")
