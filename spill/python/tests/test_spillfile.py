"""Tests of the numpy reader against the committed golden files and corruptions of them.

Files written by the Rust writer are checked value for value by the Rust test suite
(spill/tests/spill/interop.rs), which drives this module over many random files.
"""
import json
import math
import os
import shutil
import struct
import zlib

import numpy as np
import pytest

import spillfile

HERE = os.path.dirname(os.path.abspath(__file__))
GOLDEN = os.path.join(HERE, "..", "..", "tests", "data", "v1.0", "golden.spill")


@pytest.fixture
def golden_bytes():
    with open(GOLDEN, "rb") as fh:
        return fh.read()


def write(tmp_path, data, name="x.spill"):
    p = tmp_path / name
    p.write_bytes(data)
    return str(p)


def split(data):
    """(metadata dict, metadata offset) of a valid file."""
    meta_off, meta_len = struct.unpack_from("<QQ", data, len(data) - 64)
    return json.loads(data[meta_off:meta_off + meta_len]), meta_off


def with_metadata(data, meta_bytes):
    """The file with its metadata replaced and checksums, lengths and trailer fixed up."""
    t = bytearray(data[-64:])
    meta_off = struct.unpack_from("<Q", t, 0)[0]
    out = bytearray(data[:meta_off]) + meta_bytes
    struct.pack_into("<QQ", t, 8, len(meta_bytes), len(out) + 64)
    struct.pack_into("<I", t, 40, zlib.crc32(meta_bytes))
    struct.pack_into("<I", t, 48, zlib.crc32(bytes(t[:48])))
    return bytes(out + t)


def with_trailer(data, **fields):
    """The file with trailer fields changed (and its checksum fixed)."""
    t = bytearray(data[-64:])
    offsets = {"metadata_offset": ("<Q", 0), "metadata_len": ("<Q", 8), "file_len": ("<Q", 16),
               "required_features": ("<Q", 24), "major": ("<H", 32), "minor": ("<H", 34),
               "checksum_algorithm": ("<I", 36)}
    for k, v in fields.items():
        fmt, at = offsets[k]
        struct.pack_into(fmt, t, at, v)
    struct.pack_into("<I", t, 48, zlib.crc32(bytes(t[:48])))
    return data[:-64] + bytes(t)


def test_golden_values():
    with spillfile.open(GOLDEN) as f:
        assert f.version == (1, 0)
        assert f.nrows == 5
        assert f.columns == ["ts", "symbol", "target", "f0", "f1", "f2", "w", "n", "b"]
        assert f.symbols == ["AAPL", "ÄPF", "BRK.B"]
        assert f.symbol_ranges == {"AAPL": (0, 3), "ÄPF": (3, 3), "BRK.B": (3, 5)}
        assert f.metadata["tool"] == "spill golden 1.0"
        ts = f.column("ts")
        assert ts.dtype == np.dtype("<i8") and ts[0] == 1_577_836_800_000_000_000
        assert np.diff(ts).tolist() == [300_000_000_000] * 4
        assert f.symbol_codes().tolist() == [0, 0, 0, 2, 2]
        f0 = f.column("f0")
        assert f0[0] == 1.0 and math.copysign(1, f0[1]) == -1 and np.isinf(f0[2]) and np.isnan(f0[3])
        assert f.column("n").tolist() == [-1, 2, -2**31, 2**31 - 1, 0]
        assert f.column("b").dtype == np.uint8
        info = f.column_info("f0")
        assert (info.min, info.max, info.nan_count) == (-0.0, math.inf, 1)
        assert math.copysign(1, info.min) == -1
        assert f.column_info("target").role == "target"
        f.verify()


def test_views_are_zero_copy_read_only_and_page_aligned():
    f = spillfile.open(GOLDEN)
    whole = np.frombuffer(f._mmap, dtype=np.uint8)
    base = whole.__array_interface__["data"][0]
    for name in f.columns:
        a = f.column(name)
        addr = a.__array_interface__["data"][0]
        assert addr % 4096 == 0
        assert addr - base == f.column_info(name).offset
        assert np.shares_memory(a, whole)
        assert not a.flags.writeable
        with pytest.raises(ValueError):
            a[0] = 0
    X = f.features()
    assert X.shape == (5, 3) and X.dtype == np.float32
    assert np.shares_memory(X, whole) and not X.flags.writeable
    assert X.__array_interface__["data"][0] % 4096 == 0
    assert X.strides == (4, 4096)
    np.testing.assert_array_equal(X[:, 1], f.column("f1"))
    assert X[2, 2] == np.float32(1e30)


def test_feature_subsets_need_constant_stride():
    f = spillfile.open(GOLDEN)
    assert f.features(["f1", "f2"]).shape == (5, 2)
    assert f.features(["f0", "f2"]).strides == (4, 8192)  # every other column: still constant
    with pytest.raises(spillfile.SpillError, match="constant stride"):
        f.features(["f0", "f1", "w"])  # mixed dtypes
    with pytest.raises(spillfile.SpillError):
        f.features(["f2", "f0", "f1"])
    copied = f.features(["f2", "f0", "f1"], copy=True)
    assert copied.flags.owndata or copied.base is not None
    np.testing.assert_array_equal(copied[:, 0], f.column("f2"))


def test_spill_error_is_a_value_error():
    assert issubclass(spillfile.SpillError, ValueError)


@pytest.mark.parametrize("cut", [0, 1, 16, 4095, 4096, 4160, 20000, -65, -64, -1])
def test_truncation(tmp_path, golden_bytes, cut):
    with pytest.raises(spillfile.SpillError):
        spillfile.open(write(tmp_path, golden_bytes[:cut]))


def test_flipped_metadata_bit(tmp_path, golden_bytes):
    _, off = split(golden_bytes)
    b = bytearray(golden_bytes)
    b[off + 3] ^= 0x20
    with pytest.raises(spillfile.SpillError, match="metadata checksum"):
        spillfile.open(write(tmp_path, bytes(b)))


def test_flipped_data_bit_fails_verify_with_rows(tmp_path, golden_bytes):
    f = spillfile.open(GOLDEN)
    off = f.column_info("f1").offset
    b = bytearray(golden_bytes)
    b[off + 4 * 3] ^= 0x01
    g = spillfile.open(write(tmp_path, bytes(b)))
    damaged = g.damaged_chunks()
    assert [(d.column, d.chunk, d.rows) for d in damaged] == [("f1", 0, (0, 5))]
    with pytest.raises(spillfile.SpillError, match="'f1' rows \\[0, 5\\)"):
        g.verify()


@pytest.mark.parametrize("change, match", [
    (dict(major=2), "trailer checksum|version"),
    (dict(required_features=4), "requires features"),
    (dict(checksum_algorithm=3), "checksum algorithm"),
    (dict(file_len=1), "file length"),
    (dict(metadata_len=1 << 40), "over the cap"),
    (dict(metadata_offset=10), "does not end at the trailer"),
])
def test_trailer_lies(tmp_path, golden_bytes, change, match):
    with pytest.raises(spillfile.SpillError, match=match):
        spillfile.open(write(tmp_path, with_trailer(golden_bytes, **change)))


def test_newer_minor_opens(tmp_path, golden_bytes):
    b = bytearray(with_trailer(golden_bytes, minor=9))
    struct.pack_into("<H", b, 10, 9)
    assert spillfile.open(write(tmp_path, bytes(b))).version == (1, 9)


def test_major_two_is_refused_before_the_trailer(tmp_path, golden_bytes):
    b = bytearray(golden_bytes)
    struct.pack_into("<H", b, 8, 2)
    with pytest.raises(spillfile.SpillError, match="version 2.0 is not supported"):
        spillfile.open(write(tmp_path, bytes(b)))


def lie(meta, path, value):
    """Set meta[path...] = value."""
    *head, last = path
    for k in head:
        meta = meta[k]
    meta[last] = value


@pytest.mark.parametrize("path, value, match", [
    (("columns", 3, "offset"), 1 << 40, "outside the data area"),
    (("columns", 3, "offset"), 4096 * 3 + 4, "not a multiple of 4096"),
    (("columns", 3, "offset"), 4096 * 3, "overlap"),
    (("columns", 3, "length"), 1 << 62, "expected 20"),
    (("nrows",), 1 << 60, "over the cap"),
    (("nrows",), 4, "expected 32"),
    (("chunk_bytes",), 1000, "power of two"),
    (("columns", 0, "checksums"), [], "chunk checksums"),
    (("columns", 0, "dtype"), "f16", "unknown dtype"),
    (("columns", 1, "name"), "ts", "duplicate column"),
    (("columns", 1, "name"), "", "empty"),
    (("columns", 0, "offset"), -4096, "unsigned"),
    (("columns", 0, "offset"), 4096.0, "unsigned"),
    (("columns", 0, "offset"), True, "unsigned"),
    (("symbols", 2, "start"), 4, "does not continue the tiling"),
    (("symbols", 2, "stop"), 4, "end at row 4"),
    (("symbols", 2, "name"), "AAPL", "duplicate symbol"),
    (("columns", 2, "stats", "min"), "low", "bad stats"),
    (("build",), [1], "build an object"),
])
def test_metadata_lies(tmp_path, golden_bytes, path, value, match):
    meta, _ = split(golden_bytes)
    lie(meta, path, value)
    data = with_metadata(golden_bytes, json.dumps(meta).encode())
    with pytest.raises(spillfile.SpillError, match=match):
        spillfile.open(write(tmp_path, data))


@pytest.mark.parametrize("raw, match", [
    (b'{"nrows": 5, oops', "not valid"),
    (b'{"nrows": NaN}', "not JSON"),
    (b'{"nrows": 1e999}', "out of range"),
    (b'{"nrows": 5, "nrows": 5}', "duplicate key"),
    (b'{"a": "\xff"}', "not valid"),
    (b'{"a": "\\ud800"}', "Unicode"),
    (b'[1, 2]', "not a JSON object"),
    (b'{"k": ' + b"[" * 200 + b"]" * 200 + b"}", "nesting"),
    (b'{"k": ' + b"[" * 5000 + b"]" * 5000 + b"}", "not valid|nesting"),
])
def test_hostile_json(tmp_path, golden_bytes, raw, match):
    with pytest.raises(spillfile.SpillError, match=match):
        spillfile.open(write(tmp_path, with_metadata(golden_bytes, raw)))


def test_not_a_spill_file(tmp_path):
    with pytest.raises(spillfile.SpillError, match="bad magic"):
        spillfile.open(write(tmp_path, b"PAR1" + b"\0" * 9000))


def test_uncommitted_file_is_refused(tmp_path, golden_bytes):
    b = bytearray(golden_bytes)
    b[-8:] = b"\0" * 8
    with pytest.raises(spillfile.SpillError, match="never committed"):
        spillfile.open(write(tmp_path, bytes(b)))


def test_file_replaced_under_a_reader_keeps_old_view(tmp_path):
    """Readers keep the file they opened when a rebuild renames a new one over it."""
    p = tmp_path / "live.spill"
    shutil.copy(GOLDEN, p)
    f = spillfile.open(str(p))
    before = f.column("f1").copy()
    tmp = tmp_path / ".live.spill.new"
    tmp.write_bytes(b"something else entirely")
    os.replace(tmp, p)
    np.testing.assert_array_equal(f.column("f1"), before)
    f.verify()


LIFETIME_SCRIPT = r"""
import gc, mmap, os, sys
import numpy as np
import spillfile

path = sys.argv[1]
def mapped():
    with open("/proc/self/maps") as fh:
        return sum(path in line for line in fh)

def churn():  # fill the address space freed by an unmap, so that a dangling view reads 0xff
    maps = [mmap.mmap(-1, os.path.getsize(path)) for _ in range(16)]
    for m in maps:
        m.write(b"\xff" * len(m))
    return maps

f = spillfile.open(path)
X, Xc = f.features(), f.features(copy=True)  # constant stride: copy=True is a view too
f.close()
junk = churn()
with spillfile.open(path) as g:
    Z = g.features(["f0", "f2"])
junk += churn()
with spillfile.open(path) as h:
    y, t = h.column("f1"), h.column("ts")
junk += churn()
print(X[2, 2], X[0, 0], y.tolist(), Xc[4, 1], Z[0, 1], int(t[0]))
assert mapped() > 0, "views lost their mapping"
del X, y, Xc, Z, t
gc.collect()
print("mapped after views gone:", mapped())
f.close()  # twice is fine
try:
    f.column("f1")
    raise SystemExit("a closed file handed out a view")
except ValueError:
    pass
"""


def test_views_outlive_close_issue_12_1(tmp_path):
    """Issue 12 item 1: views handed out before close() (or the end of a with block) keep the
    mapping alive and read the file's values; it is unmapped once they are gone."""
    import subprocess
    import sys
    p = tmp_path / "g.spill"
    shutil.copy(GOLDEN, p)
    env = dict(os.environ, PYTHONPATH=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    r = subprocess.run([sys.executable, "-c", LIFETIME_SCRIPT, str(p)], capture_output=True, text=True,
                       env=env, timeout=60)
    assert r.returncode == 0, f"exit {r.returncode}\n{r.stdout}\n{r.stderr}"
    with spillfile.open(GOLDEN) as f:
        X, y = f.features(), f.column("f1")
        want = " ".join(str(v) for v in (X[2, 2], X[0, 0], y.tolist(), X[4, 1], f.column("f2")[0],
                                          int(f.column("ts")[0])))
        del X, y
    lines = r.stdout.splitlines()
    assert lines[0] == want
    assert lines[1] == "mapped after views gone: 0"
