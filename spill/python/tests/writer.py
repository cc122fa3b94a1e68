"""A minimal spill file writer for the tests (the format's writer is the Rust crate): columns from
numpy arrays, page-aligned, with checksums, stats, the 1.1 keys and 1.2's order and timestamp index
when asked; and `transpose`, which rewrites a symbol-major file time-major (the oracle of what
`spillway build --order time` writes: the same rows, sorted by (time, symbol code), stably)."""
import json
import math
import struct
import zlib

import numpy as np

DTYPE_NAMES = {"<f4": "f32", "<f8": "f64", "<i8": "i64", "<i4": "i32", "<u4": "u32", "|u1": "u8"}
ALIGN = 4096


def _pad(n):
    return -(-n // ALIGN) * ALIGN


def _stat(v, kind):
    if kind == "f":
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return float(v)
    return int(v)


def runs(values):
    """A flat run-length list [value, n, value, n, ...] of ``values`` (the index's encoding)."""
    out = []
    for v in values:
        v = int(v)
        if out and out[-2] == v:
            out[-1] += 1
        else:
            out += [v, 1]
    return out


def index(times, counts):
    """The stored timestamp index of distinct ``times`` (increasing) holding ``counts`` rows."""
    times = [int(t) for t in times]
    return {"count": len(times), "first": times[0] if times else 0,
            "steps": runs(b - a for a, b in zip(times, times[1:])), "rows": runs(counts)}


def write_spill(path, columns, symbols, minor=2, timezone="UTC", chunk_bytes=1 << 22, order=None,
                timestamps=None):
    """columns: list of (name, role, array); symbols: list of (name, start, stop), or of names
    for ``order="time"``, whose index is ``timestamps`` (a dict as stored) or computed from the
    time column. ``order`` is written when given, and by default on minor 2 and later."""
    nrows = len(columns[0][2]) if columns else 0
    out = bytearray(ALIGN)
    struct.pack_into("<8sHHI", out, 0, b"\x89SPILL\r\n", 1, minor, ALIGN)
    cols = []
    for name, role, arr in columns:
        a = np.ascontiguousarray(arr)
        assert len(a) == nrows
        raw = a.tobytes()
        off = len(out)
        out += raw + b"\0" * (_pad(len(raw)) - len(raw))
        sums = [zlib.crc32(raw[k:k + chunk_bytes]) for k in range(0, len(raw), chunk_bytes)]
        kind = a.dtype.kind
        st = {}
        if kind == "f":
            fin = a[~np.isnan(a)]
            st["min"] = _stat(fin.min(), "f") if len(fin) else None
            st["max"] = _stat(fin.max(), "f") if len(fin) else None
            st["nan_count"] = int(np.isnan(a).sum())
            if minor >= 1:
                good = a[np.isfinite(a)].astype(np.float64)
                st["mean"] = float(good.mean()) if len(good) else None
                st["std"] = float(good.std()) if len(good) else None
        else:
            st["min"] = int(a.min()) if len(a) else None
            st["max"] = int(a.max()) if len(a) else None
        c = {"name": name, "dtype": DTYPE_NAMES[a.dtype.str], "role": role, "offset": off,
             "length": len(raw), "checksums": sums, "stats": st}
        if role == "time" and minor >= 1:
            c["unit"] = "ns"
            c["timezone"] = timezone
        cols.append(c)
    order = order or ("symbol" if minor >= 2 else None)
    meta = {"nrows": nrows, "chunk_bytes": chunk_bytes}
    if order is not None:
        meta["order"] = order
    meta["columns"] = cols
    if order == "time":
        meta["symbols"] = [{"name": n} for n in symbols]
        if timestamps is None:
            t = next(a for _, role, a in columns if role == "time")
            times, counts = np.unique(t, return_counts=True)
            timestamps = index(times, counts)
        meta["timestamps"] = timestamps
    else:
        meta["symbols"] = [{"name": n, "start": a, "stop": b} for n, a, b in symbols]
    meta["build"] = {"tool": "tests/writer.py"}
    raw = json.dumps(meta, separators=(",", ":")).encode()
    meta_off = len(out)
    out += raw
    t = bytearray(64)
    struct.pack_into("<QQQQHHII", t, 0, meta_off, len(raw), len(out) + 64, int(order == "time"), 1,
                     minor, 1, zlib.crc32(raw))
    struct.pack_into("<I", t, 48, zlib.crc32(bytes(t[:48])))
    t[56:64] = b"SPILLEND"
    out += t
    with open(path, "wb") as fh:
        fh.write(out)
    return path


def universe(path, nsym=5, rows=(7, 0, 30, 12, 25), nfeat=4, seed=0, minor=1, timezone="UTC",
             dtype=np.float32):
    """A small file: nsym symbols with ragged row counts on a shared 5-minute grid."""
    rng = np.random.default_rng(seed)
    rows = list(rows)[:nsym]
    ts, sym, syms, start = [], [], [], 0
    base = 1_700_000_000_000_000_000
    for k, n in enumerate(rows):
        first = int(rng.integers(0, 10))
        ts.append(base + (first + np.arange(n, dtype=np.int64)) * 300_000_000_000)
        sym.append(np.full(n, k, np.uint32))
        syms.append((f"S{k:03d}", start, start + n))
        start += n
    n = start
    cols = [("ts", "time", np.concatenate(ts)), ("symbol", "symbol", np.concatenate(sym)),
            ("target", "target", rng.standard_normal(n).astype(dtype))]
    for j in range(nfeat):
        cols.append((f"f{j:03d}", "feature", rng.standard_normal(n).astype(dtype)))
    return write_spill(path, cols, syms, minor=minor, timezone=timezone)


def transpose(src, dst, spillfile):
    """Writes symbol-major spill file ``src`` time-major at ``dst``: every column permuted by
    (time, symbol code), stably (a symbol's rows keep their order within a timestamp)."""
    f = spillfile.open(src)
    ts, codes = f.column(f.time_column), f.symbol_codes()
    perm = np.lexsort((codes, ts))
    cols = [(n, f.column_info(n).role, np.asarray(f.column(n))[perm]) for n in f.columns]
    return write_spill(dst, cols, f.symbols, order="time", timezone=f.timezone)


def time_universe(path, nsym=5, grid=40, nfeat=3, seed=0, dup=0.1, keep=0.7, signal=None):
    """A time-major file written directly: ``nsym`` symbols on a 5-minute grid of ``grid`` steps,
    each keeping a random share ``keep`` of the grid (missing timestamps, ragged symbols), some
    rows repeated within a symbol (``dup``). Feature f000 is each row's position in the
    symbol-major order (exact in float32) so tests can check any permutation; with ``signal``,
    the target is ``signal * f001 + noise`` (a learnable cross-sectional signal)."""
    rng = np.random.default_rng(seed)
    base = 1_700_000_000_000_000_000
    ts, sym = [], []
    for k in range(nsym):
        t = np.flatnonzero(rng.random(grid) < keep)
        t = np.sort(np.concatenate([t, t[rng.random(len(t)) < dup]]))
        ts.append(base + t.astype(np.int64) * 300_000_000_000)
        sym.append(np.full(len(t), k, np.uint32))
    ts, sym = np.concatenate(ts), np.concatenate(sym)
    n = len(ts)
    perm = np.lexsort((sym, ts))
    X = rng.standard_normal((n, nfeat)).astype(np.float32)
    X[:, 0] = np.arange(n, dtype=np.float32)
    y = rng.standard_normal(n).astype(np.float32)
    if signal is not None:
        y = (signal * X[:, 1] + y).astype(np.float32)
    cols = [("ts", "time", ts[perm]), ("symbol", "symbol", sym[perm]),
            ("target", "target", y[perm])]
    cols += [(f"f{j:03d}", "feature", X[perm, j]) for j in range(nfeat)]
    return write_spill(path, cols, [f"S{k:03d}" for k in range(nsym)], order="time")
