#!/usr/bin/env python3
"""The `spillway build` contract, implemented independently with pyarrow + numpy, and universes
written by real writers (pyarrow, polars, DuckDB) that exercise it.

    contract.py make KIND OUT_DIR            # KIND: types, times, codecs, hive_duckdb, polars,
                                             #       timestamp_name, target_partial
    contract.py check INPUT SPILL [--target T] [--features a,b] [--time-col C] [--max-rows N]
                                  [--no-float32]

`check` discovers, reads and converts the universe itself (never asking spillway), then compares
every column name, dtype, role, value, the symbol table and the ranges with the spill file.
Floats must match bit for bit, except values converted from integers beyond 2^24 and decimals,
which may differ by 1 ulp (the contract allows it). Prints "OK ..." or exits 1 with the first
difference.
"""
import argparse
import datetime as dt
import decimal
import os
import sys
import urllib.parse

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

HERE = os.path.dirname(os.path.abspath(__file__))
T0 = 1_600_000_000_000_000_000  # 2020-09-13T12:26:40Z in ns


# --------------------------------------------------------------------------------------------
# universes
# --------------------------------------------------------------------------------------------
def base(n, seed, start=0):
    rng = np.random.default_rng(seed)
    ts = T0 + (np.arange(start, start + n, dtype=np.int64)) * 60_000_000_000
    return rng, ts


def make_types(out):
    """Every numeric type, every non-numeric kind, drift, missing columns, an empty symbol."""
    rng, ts = base(40, 1)
    n = len(ts)
    cols = {
        "__index_level_0__": pa.array(np.arange(n)),
        "ts": pa.array(ts, mask=(np.arange(n) % 13 == 5)).cast(pa.timestamp("ns", tz="UTC")),
        "target": pa.array(rng.standard_normal(n), mask=(np.arange(n) % 7 == 0)),
        "i8": pa.array(rng.integers(-100, 100, n), type=pa.int8()),
        "i16": pa.array(rng.integers(-30000, 30000, n), type=pa.int16()),
        "i32": pa.array(rng.integers(-2**31, 2**31 - 1, n), type=pa.int32()),
        "i64": pa.array(rng.integers(-2**62, 2**62, n), type=pa.int64()),
        "u8": pa.array(rng.integers(0, 255, n), type=pa.uint8()),
        "u16": pa.array(rng.integers(0, 65535, n), type=pa.uint16()),
        "u32": pa.array(rng.integers(0, 2**32 - 1, n), type=pa.uint32()),
        "u64": pa.array(rng.integers(0, 2**63, n, dtype=np.uint64), type=pa.uint64()),
        "f16": pa.array(rng.standard_normal(n).astype(np.float16), type=pa.float16()),
        "f32": pa.array(rng.standard_normal(n).astype(np.float32), mask=(np.arange(n) % 9 == 1)),
        "f64": pa.array(rng.standard_normal(n) * 1e10),
        "dec": pa.array([decimal.Decimal(int(v)) / 1000 for v in rng.integers(-10**9, 10**9, n)], type=pa.decimal128(12, 3)),
        "flag": pa.array(rng.random(n) < 0.5, mask=(np.arange(n) % 11 == 3)),
        "name": pa.array([f"s{i}" for i in range(n)]),
        "blob": pa.array([b"x" * (i % 3) for i in range(n)], type=pa.binary()),
        "day": pa.array(np.arange(n, dtype=np.int32), type=pa.date32()),
        "tod": pa.array(np.arange(n, dtype=np.int64) * 1000, type=pa.time64("us")),
        "other_ts": pa.array(ts).cast(pa.timestamp("ms")),
        "nothing": pa.nulls(n),
        "lst": pa.array([[1.0, 2.0]] * n, type=pa.list_(pa.float64())),
        "st": pa.array([{"a": 1.0}] * n, type=pa.struct([("a", pa.float64())])),
        "mp": pa.array([[("k", 1.0)]] * n, type=pa.map_(pa.string(), pa.float64())),
        "symbol": pa.array(np.arange(n, dtype=np.int64)),
    }
    pq.write_table(pa.table(cols), os.path.join(out, "AAA.parquet"))
    # Drift: f64 stored as float32 and i32 as int64; some columns missing, one new column, a
    # feature null-typed; a dotted symbol name.
    rng, ts = base(25, 2, start=10)
    t = pa.table({
        "ts": pa.array(ts).cast(pa.timestamp("ns", tz="UTC")),
        "target": pa.array(rng.standard_normal(25)),
        "f64": pa.array(rng.standard_normal(25).astype(np.float32)),
        "i32": pa.array(rng.integers(-2**40, 2**40, 25), type=pa.int64()),
        "late": pa.array(rng.standard_normal(25)),
        "u8": pa.nulls(25),
    })
    pq.write_table(t, os.path.join(out, "BRK.B.parquet"))
    # A unicode symbol (file stem) with two row groups.
    rng, ts = base(30, 3, start=5)
    t = pa.table({"ts": pa.array(ts).cast(pa.timestamp("ns", tz="UTC")), "target": pa.array(rng.standard_normal(30)),
                  "f32": pa.array(rng.standard_normal(30).astype(np.float32))})
    pq.write_table(t, os.path.join(out, "ÄPF.parquet"), row_group_size=12)
    # Every time null: the symbol keeps an empty range.
    t = pa.table({"ts": pa.nulls(5, type=pa.timestamp("ns", tz="UTC")), "target": pa.array(np.ones(5)), "f64": pa.array(np.ones(5))})
    pq.write_table(t, os.path.join(out, "ZZZ.parquet"))
    # Junk that must be ignored.
    open(os.path.join(out, "_SUCCESS"), "w").close()
    open(os.path.join(out, "notes.txt"), "w").write("not data")
    open(os.path.join(out, ".AAA.parquet.crc"), "wb").write(b"\0\1")
    os.makedirs(os.path.join(out, ".hidden"))
    pq.write_table(t, os.path.join(out, ".hidden", "X.parquet"))


def make_times(out):
    """One symbol per time type; the same instants written differently."""
    n = 20
    secs = 1_600_000_000 + np.arange(n, dtype=np.int64) * 3600
    def write(name, arr, **kw):
        t = pa.table({"ts": arr, "target": pa.array(np.arange(n, dtype=np.float64)), "x": pa.array(np.arange(n, dtype=np.float64))})
        pq.write_table(t, os.path.join(out, name + ".parquet"), **kw)
    write("T_s", pa.array(secs, type=pa.timestamp("s")))
    write("T_ms_ny", pa.array(secs * 1000, type=pa.timestamp("ms", tz="America/New_York")))
    write("T_us_utc", pa.array(secs * 1_000_000, type=pa.timestamp("us", tz="UTC")))
    write("T_ns", pa.array(secs * 1_000_000_000, type=pa.timestamp("ns")))
    write("T_int96", pa.array(secs * 1_000_000_000, type=pa.timestamp("ns")), use_deprecated_int96_timestamps=True)
    write("T_date32", pa.array((secs // 86400).astype(np.int32), type=pa.date32()))
    write("T_date64", pa.array((secs // 86400) * 86_400_000, type=pa.date64()))
    write("T_old", pa.array(np.arange(n, dtype=np.int64) * -86_400_000_000_000, type=pa.timestamp("ns")))


def make_codecs(out):
    """The same data through every codec, encoding and page version."""
    rng, ts = base(3000, 4)
    n = len(ts)
    t = pa.table({
        "ts": pa.array(ts).cast(pa.timestamp("ns", tz="UTC")),
        "target": pa.array(rng.standard_normal(n), mask=(rng.random(n) < 0.05)),
        "a": pa.array(rng.standard_normal(n)),
        "b": pa.array(rng.integers(-10**6, 10**6, n)),
        "c": pa.array(np.round(rng.standard_normal(n), 1)),  # low cardinality: dictionary
        "d": pa.array(rng.random(n) < 0.3),
        "e": pa.array(rng.standard_normal(n).astype(np.float32), mask=(rng.random(n) < 0.1)),
    })
    variants = {
        "none": dict(compression="none"),
        "snappy": dict(compression="snappy"),
        "gzip": dict(compression="gzip"),
        "zstd": dict(compression="zstd"),
        "lz4": dict(compression="lz4"),
        "brotli": dict(compression="brotli"),
        "plain_v2": dict(compression="snappy", use_dictionary=False, data_page_version="2.0"),
        "delta_bss": dict(compression="zstd", use_dictionary=["c"],
                          column_encoding={"b": "DELTA_BINARY_PACKED", "a": "BYTE_STREAM_SPLIT", "e": "BYTE_STREAM_SPLIT"}),
        "crc_small_pages": dict(compression="gzip", write_page_checksum=True, data_page_size=1024, row_group_size=700),
    }
    for name, kw in variants.items():
        pq.write_table(t, os.path.join(out, f"C_{name}.parquet"), **kw)


def make_hive_duckdb(out):
    """DuckDB's hive partitioning, non-ASCII values percent-encoded, several files per symbol."""
    import duckdb
    con = duckdb.connect()
    con.execute("""CREATE TABLE t AS SELECT * FROM (VALUES ('ÄPF', 1), ('A B', 2), ('MSFT', 3), ('x%y', 4)) s(symbol, k),
                   (SELECT range AS i FROM range(50))""")
    for part in range(2):
        con.execute(f"""COPY (SELECT symbol, make_timestamp(1600000000000000 + (i + {part} * 50) * 60000000) AS ts,
                              i * 1.5 + k AS f0, CAST(i AS INTEGER) - k AS f1, CASE WHEN i % 10 = 3 THEN NULL ELSE k * 0.1 END AS target
                         FROM t) TO '{out}' (FORMAT parquet, PARTITION_BY (symbol), OVERWRITE_OR_IGNORE,
                         FILENAME_PATTERN 'part-{part}-{{i}}')""")
    # Junk Spark-style writers leave.
    for d in os.listdir(out):
        open(os.path.join(out, d, "_SUCCESS"), "w").close()
        open(os.path.join(out, d, ".part.crc"), "w").close()


def make_polars(out):
    """polars' writer, flat files and a hive directory (polars' partitioned write)."""
    import polars as pl
    rng = np.random.default_rng(5)
    for sym, n in (("PL1", 120), ("PL2", 90)):
        df = pl.DataFrame({
            "ts": pl.Series(T0 + np.arange(n, dtype=np.int64) * 1_000_000_000).cast(pl.Datetime("ns", "UTC")),
            "target": rng.standard_normal(n),
            "g": rng.integers(-5, 5, n),
            "h": pl.Series(rng.standard_normal(n).astype(np.float32)),
        })
        df.write_parquet(os.path.join(out, sym + ".parquet"))
    df = pl.DataFrame({
        "symbol": ["HV1"] * 40 + ["HV2"] * 40,
        "ts": pl.Series(T0 // 1000 + np.tile(np.arange(40, dtype=np.int64), 2) * 1_000_000).cast(pl.Datetime("us")),
        "target": rng.standard_normal(80),
        "g": rng.integers(-5, 5, 80),
    })
    df.write_parquet(out, partition_by="symbol")


def make_timestamp_name(out):
    """Files whose time column is called `timestamp` (no `ts`), plus a custom-named one."""
    rng, ts = base(30, 6)
    for sym in ("A", "B"):
        pq.write_table(pa.table({"timestamp": pa.array(ts // 1000, type=pa.timestamp("us")), "target": pa.array(rng.standard_normal(30)),
                                 "v": pa.array(rng.standard_normal(30))}), os.path.join(out, sym + ".parquet"))


def make_target_partial(out):
    """A hive symbol whose second file lacks the target (NaN there), and a symbol without any
    target file (skipped and reported)."""
    rng, ts = base(20, 7)
    d = os.path.join(out, "symbol=HALF")
    os.makedirs(d)
    pq.write_table(pa.table({"ts": pa.array(ts[:10]).cast(pa.timestamp("ns")), "target": pa.array(rng.standard_normal(10)),
                             "v": pa.array(rng.standard_normal(10))}), os.path.join(d, "a.parquet"))
    pq.write_table(pa.table({"ts": pa.array(ts[10:]).cast(pa.timestamp("ns")), "v": pa.array(rng.standard_normal(10)),
                             "w": pa.array(rng.standard_normal(10))}), os.path.join(d, "b.parquet"))
    pq.write_table(pa.table({"ts": pa.array(ts).cast(pa.timestamp("ns")), "v": pa.array(rng.standard_normal(20))}),
                   os.path.join(out, "NOTARGET.parquet"))
    pq.write_table(pa.table({"ts": pa.array(ts).cast(pa.timestamp("ns")), "target": pa.array(rng.standard_normal(20)),
                             "v": pa.array(rng.standard_normal(20))}), os.path.join(out, "FULL.parquet"))


def make_conflict(out):
    """`x` is numeric in A and C but a string in B: B fails (skippable); `only_b` exists only in B,
    so a build that skips B must not have it either."""
    rng, ts = base(15, 8)
    for sym, x in (("A", pa.array(rng.standard_normal(15))), ("B", pa.array([str(i) for i in range(15)])),
                   ("C", pa.array(rng.integers(0, 9, 15)))):
        cols = {"ts": pa.array(ts).cast(pa.timestamp("ns")), "target": pa.array(rng.standard_normal(15)), "x": x}
        if sym == "B":
            cols["only_b"] = pa.array(rng.standard_normal(15))
        pq.write_table(pa.table(cols), os.path.join(out, sym + ".parquet"))


# --------------------------------------------------------------------------------------------
# the independent implementation of the contract
# --------------------------------------------------------------------------------------------
def hidden(name):
    return name.startswith((".", "_"))


def discover(root):
    syms = {}
    for name in sorted(os.listdir(root), key=lambda n: os.fsencode(n)):
        p = os.path.join(root, name)
        if hidden(name):
            continue
        if os.path.isdir(p):
            if not name.startswith("symbol="):
                continue
            sym = urllib.parse.unquote_to_bytes(name[len("symbol="):]).decode("utf-8")
            files = []
            for dirpath, dirnames, filenames in os.walk(p):
                dirnames[:] = [d for d in dirnames if not hidden(d)]
                files += [os.path.join(dirpath, f) for f in filenames if f.endswith(".parquet") and not hidden(f)]
            files.sort(key=lambda f: os.fsencode(os.path.relpath(f, p)))
            syms[sym] = files
        elif name.endswith(".parquet"):
            syms[name[: -len(".parquet")]] = [p]
    return sorted(syms.items(), key=lambda kv: kv[0].encode("utf-8"))


def is_numeric(t):
    if pa.types.is_dictionary(t):
        return is_numeric(t.value_type)
    return (pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t) or pa.types.is_boolean(t))


def time_ns(col):
    t = col.type
    if pa.types.is_timestamp(t):
        return pc.cast(col, pa.timestamp("ns", tz=t.tz)).cast(pa.int64())
    if pa.types.is_date32(t):
        return pc.multiply(col.cast(pa.int32()).cast(pa.int64()), 86_400_000_000_000)
    if pa.types.is_date64(t):
        return pc.multiply(col.cast(pa.int64()), 1_000_000)
    raise SystemExit(f"oracle: time column of type {t}")


def as_float(col, float32):
    """A column as float32/float64 with NaN at nulls, and whether 1 ulp of slack is allowed."""
    t = col.type
    if pa.types.is_dictionary(t):
        col = col.cast(t.value_type)
        t = t.value_type
    slack = pa.types.is_decimal(t) or (pa.types.is_integer(t) and t.bit_width > 16)
    if pa.types.is_boolean(t):
        col = col.cast(pa.uint8())
    if pa.types.is_null(t):
        v = np.full(len(col), np.nan)
    else:
        # safe=False: large integers round to the nearest float64 (then float32), as allowed.
        v = pc.cast(col, pa.float64(), safe=False).to_numpy(zero_copy_only=False).astype(np.float64)
    return (v.astype(np.float32) if float32 else v), slack


def expected(root, a):
    float32 = not a.no_float32
    symbols = discover(root)
    tables = [(s, [pq.read_table(f) for f in files]) for s, files in symbols]
    time_col = a.time_col
    if time_col is None:
        time_col = "ts"
        for _, ts in tables:
            names = ts[0].column_names if ts else []
            if "ts" in names:
                break
            if "timestamp" in names:
                time_col = "timestamp"
                break
    read = [(s, ts) for s, ts in tables if not a.target or any(a.target in t.column_names for t in ts)]
    if a.features:
        features = a.features.split(",")
    else:
        features, seen = [], set()
        for _, ts in read:
            for t in ts:
                for field in t.schema:
                    n = field.name
                    if (n not in seen and is_numeric(field.type) and n not in (time_col, a.target, "symbol")
                            and not n.startswith("__index_level_")):
                        seen.add(n)
                        features.append(n)
    values = ([a.target] if a.target else []) + features
    out = {"time": [], "symbol": [], "values": {c: [] for c in values}, "slack": {c: False for c in values},
           "symbols": [s for s, _ in read], "ranges": [], "time_col": time_col, "features": features}
    row = 0
    for code, (sym, ts) in enumerate(read):
        parts = []
        for t in ts:
            keep = pc.is_valid(t.column(time_col))
            t = t.filter(keep)
            parts.append(t)
        n_total = sum(p.num_rows for p in parts)
        drop = max(0, n_total - a.max_rows) if a.max_rows is not None else 0
        start = row
        for t in parts:
            k = min(drop, t.num_rows)
            drop -= k
            t = t.slice(k)
            out["time"].append(time_ns(t.column(time_col)).to_numpy(zero_copy_only=False))
            out["symbol"].append(np.full(t.num_rows, code, dtype=np.uint32))
            for c in values:
                if c in t.column_names:
                    v, slack = as_float(t.column(c), float32)
                    out["slack"][c] |= slack
                else:
                    v = np.full(t.num_rows, np.nan, dtype=np.float32 if float32 else np.float64)
                out["values"][c].append(v)
            row += t.num_rows
        out["ranges"].append((start, row))
    return out


def ulps(a, b):
    """Distance in units of last place between equal-typed float arrays (NaN == NaN: 0)."""
    it = np.int32 if a.dtype == np.float32 else np.int64
    ai, bi = a.view(it).astype(np.int64), b.view(it).astype(np.int64)
    ai = np.where(ai < 0, np.iinfo(it).min - ai, ai)
    bi = np.where(bi < 0, np.iinfo(it).min - bi, bi)
    d = np.abs(ai - bi)
    d[np.isnan(a) & np.isnan(b)] = 0
    return d


def check(root, spill_path, a):
    sys.path.insert(0, os.path.join(HERE, "..", "..", "spill", "python"))
    import spillfile
    exp = expected(root, a)
    f = spillfile.open(spill_path)
    want_cols = [exp["time_col"], "symbol"] + ([a.target] if a.target else []) + exp["features"]
    if f.columns != want_cols:
        sys.exit(f"columns: {f.columns} != expected {want_cols}")
    roles = [f.column_info(c).role for c in f.columns]
    want_roles = ["time", "symbol"] + (["target"] if a.target else []) + ["feature"] * len(exp["features"])
    if roles != want_roles:
        sys.exit(f"roles {roles} != {want_roles}")
    if f.symbols != exp["symbols"]:
        sys.exit(f"symbols {f.symbols} != {exp['symbols']}")
    if [f.symbol_ranges[s] for s in f.symbols] != exp["ranges"]:
        sys.exit(f"ranges {[f.symbol_ranges[s] for s in f.symbols]} != {exp['ranges']}")
    cat = lambda xs, dt: np.concatenate(xs) if xs else np.array([], dtype=dt)
    t = cat(exp["time"], np.int64)
    if f.column(exp["time_col"]).dtype != np.int64 or not np.array_equal(f.column(exp["time_col"]), t):
        sys.exit("time column differs")
    if not np.array_equal(f.column("symbol"), cat(exp["symbol"], np.uint32)):
        sys.exit("symbol codes differ")
    fdt = np.float32 if not a.no_float32 else np.float64
    for c, parts in exp["values"].items():
        want = cat(parts, fdt)
        got = f.column(c)
        if got.dtype != fdt:
            sys.exit(f"column {c}: dtype {got.dtype}, expected {np.dtype(fdt)}")
        d = ulps(want.astype(fdt), got)
        limit = 1 if exp["slack"][c] else 0
        if (d > limit).any():
            i = int(np.argmax(d > limit))
            sys.exit(f"column {c} row {i}: expected {want[i]!r}, got {got[i]!r} ({d[i]} ulp)")
    f.verify()
    print(f"OK rows={f.nrows} columns={len(f.columns)} symbols={len(f.symbols)}")


MAKERS = {k[5:]: v for k, v in globals().items() if k.startswith("make_")}


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    m = sub.add_parser("make")
    m.add_argument("kind", choices=sorted(MAKERS))
    m.add_argument("out")
    c = sub.add_parser("check")
    c.add_argument("input")
    c.add_argument("spill")
    c.add_argument("--target")
    c.add_argument("--features")
    c.add_argument("--time-col")
    c.add_argument("--max-rows", type=int)
    c.add_argument("--no-float32", action="store_true")
    a, _ = ap.parse_known_args()  # build-only flags (--summary, ...) are not the oracle's concern
    if a.cmd == "make":
        os.makedirs(a.out, exist_ok=True)
        MAKERS[a.kind](a.out)
    else:
        check(a.input, a.spill, a)


if __name__ == "__main__":
    main()
