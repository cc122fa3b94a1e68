"""A minimal spill file writer for the tests (the format's writer is the Rust crate): columns from
numpy arrays, page-aligned, with checksums, stats and the 1.1 keys when asked."""
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


def write_spill(path, columns, symbols, minor=1, timezone="UTC", chunk_bytes=1 << 22):
    """columns: list of (name, role, array); symbols: list of (name, start, stop)."""
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
    meta = {"nrows": nrows, "chunk_bytes": chunk_bytes, "columns": cols,
            "symbols": [{"name": n, "start": a, "stop": b} for n, a, b in symbols],
            "build": {"tool": "tests/writer.py"}}
    raw = json.dumps(meta, separators=(",", ":")).encode()
    meta_off = len(out)
    out += raw
    t = bytearray(64)
    struct.pack_into("<QQQQHHII", t, 0, meta_off, len(raw), len(out) + 64, 0, 1, minor, 1,
                     zlib.crc32(raw))
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
