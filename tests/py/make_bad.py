#!/usr/bin/env python3
"""Writes a universe with two good symbols (A, B) and one bad input (symbol C, unless the case says
otherwise), for the bad-input matrix of tests/reliability.rs.

    make_bad.py OUT_DIR CASE        # CASE from --list
    make_bad.py --list

Good symbols: ts timestamp[ns, UTC], target float64, f0 float64, f1 float64; 50 rows each.
"""
import os
import sys

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

T0 = 1_577_836_800_000_000_000


def table(n=50, seed=0, **over):
    rng = np.random.default_rng(seed)
    cols = {
        "ts": pa.array(T0 + np.arange(n, dtype=np.int64) * 300_000_000_000).cast(pa.timestamp("ns", tz="UTC")),
        "target": pa.array(rng.standard_normal(n)),
        "f0": pa.array(rng.standard_normal(n)),
        "f1": pa.array(rng.standard_normal(n)),
    }
    cols.update(over)
    return pa.table(cols)


def write(path, t, **kw):
    pq.write_table(t, path, **kw)


def flip_middle_of_column(path, column_index, delta=0):
    """Flips a byte in the middle of a column chunk (row group 0), past its page header."""
    md = pq.ParquetFile(path).metadata.row_group(0).column(column_index)
    at = md.data_page_offset + md.total_compressed_size // 2 + delta
    with open(path, "r+b") as fh:
        fh.seek(at)
        b = fh.read(1)
        fh.seek(at)
        fh.write(bytes([b[0] ^ 0x5A]))


def case_zero(d):
    open(os.path.join(d, "C.parquet"), "wb").close()


def case_truncated(d):
    p = os.path.join(d, "C.parquet")
    write(p, table(seed=3))
    data = open(p, "rb").read()
    open(p, "wb").write(data[: len(data) // 2])


def case_garbage(d):
    rng = np.random.default_rng(7)
    open(os.path.join(d, "C.parquet"), "wb").write(b"PAR1" + rng.bytes(3000) + b"\x10\x00\x00\x00PAR1")


def case_corrupt_footer(d):
    p = os.path.join(d, "C.parquet")
    write(p, table(seed=3))
    data = bytearray(open(p, "rb").read())
    flen = int.from_bytes(data[-8:-4], "little")
    for i in range(len(data) - 8 - flen + 5, len(data) - 8, 7):
        data[i] ^= 0xFF
    open(p, "wb").write(bytes(data))


def case_page_checksum(d):
    """A corrupted data page in a file written with page checksums: uncompressed, plain, so the
    flip lands in values and only the CRC can tell."""
    p = os.path.join(d, "C.parquet")
    write(p, table(n=2000, seed=3), compression="none", use_dictionary=False, write_page_checksum=True)
    flip_middle_of_column(p, 3)


def case_page_no_checksum(d):
    """A corrupted compressed page without checksums: the decompressor or decoder must refuse it
    (or decode something), never panic."""
    p = os.path.join(d, "C.parquet")
    write(p, table(n=2000, seed=3), compression="snappy", use_dictionary=False)
    flip_middle_of_column(p, 3, delta=-7)


def case_target_string(d):
    write(os.path.join(d, "C.parquet"), table(seed=3, target=pa.array([f"x{i}" for i in range(50)])))


def case_feature_list(d):
    write(os.path.join(d, "C.parquet"), table(seed=3, f1=pa.array([[1.0, 2.0]] * 50, type=pa.list_(pa.float64()))))


def case_feature_string(d):
    write(os.path.join(d, "C.parquet"), table(seed=3, f1=pa.array(["1.5"] * 50)))


def case_time_overflow(d):
    secs = np.arange(50, dtype=np.int64) + 32_503_680_000  # year 3000, in seconds
    write(os.path.join(d, "C.parquet"), table(seed=3, ts=pa.array(secs, type=pa.timestamp("s"))))


def case_no_time(d):
    t = table(seed=3).drop_columns(["ts"])
    write(os.path.join(d, "C.parquet"), t)


def case_duplicate_layouts(d):
    os.makedirs(os.path.join(d, "symbol=A"))
    write(os.path.join(d, "symbol=A", "part-0.parquet"), table(seed=9))


def case_symlink_loop(d):
    os.symlink("D.parquet", os.path.join(d, "C.parquet"))
    os.symlink("C.parquet", os.path.join(d, "D.parquet"))


def case_not_utf8(d):
    tmp = os.path.join(d, "tmp-not-utf8")
    write(tmp, table(seed=3))
    os.rename(tmp, os.fsencode(d) + b"/C\xff.parquet")


def case_many_columns(d):
    n = 20_000
    cols = {f"g{i}": pa.array([float(i)]) for i in range(n)}
    cols["ts"] = pa.array([T0], type=pa.int64()).cast(pa.timestamp("ns", tz="UTC"))
    cols["target"] = pa.array([0.5])
    write(os.path.join(d, "C.parquet"), pa.table(cols))


CASES = {name[5:]: fn for name, fn in globals().items() if name.startswith("case_")}


def main():
    if sys.argv[1:] == ["--list"]:
        print("\n".join(CASES))
        return
    out, case = sys.argv[1], sys.argv[2]
    os.makedirs(out, exist_ok=True)
    write(os.path.join(out, "A.parquet"), table(seed=1))
    write(os.path.join(out, "B.parquet"), table(seed=2))
    CASES[case](out)


if __name__ == "__main__":
    main()
