"""Time-major files (format 1.2) in the numpy reader: the index, time ranges, group sizes and qid,
whole-cross-section batches against a naive oracle, and every rule a hostile file can break.
(The Rust suite checks that both readers agree value for value: spill/tests/spill/time.rs.)"""
import json
import os
import struct
import zlib

import numpy as np
import pytest

import spillfile
from writer import time_universe, transpose, universe

HERE = os.path.dirname(os.path.abspath(__file__))
GOLDEN_TIME = os.path.join(HERE, "..", "..", "tests", "data", "v1.2", "golden-time.spill")
GOLDEN_SYM = os.path.join(HERE, "..", "..", "tests", "data", "v1.2", "golden.spill")


@pytest.fixture(params=range(6))
def tm(request, tmp_path):
    """Random time-major files: ragged symbols, missing and repeated timestamps, one symbol."""
    seed = request.param
    return spillfile.open(time_universe(str(tmp_path / "t.spill"), nsym=1 if seed == 3 else 5,
                                       grid=30 + 7 * seed, seed=seed))


def naive_index(ts):
    """[(time, start, stop)] of each run of equal times."""
    out = []
    for r, t in enumerate(ts.tolist()):
        if out and out[-1][0] == t:
            out[-1][2] += 1
        else:
            out.append([t, r, r + 1])
    return out


def test_the_index_tiles_the_rows_and_matches_the_time_column(tm):
    ts = tm.column("ts")
    idx = naive_index(ts)
    t = tm.timestamps
    assert tm.order == "time" and tm.version == (1, 2) and len(t) == len(idx)
    assert t.times.tolist() == [x[0] for x in idx]
    assert t.starts.tolist() == [x[1] for x in idx]
    assert t.counts.tolist() == [x[2] - x[1] for x in idx]
    assert t.bounds[-1] == tm.nrows and (np.diff(t.bounds) >= 1).all()
    assert list(t) == [(x[0], (x[1], x[2])) for x in idx]
    for k, (time, a, b) in enumerate(idx):
        assert t.find(time) == k and t[k] == (time, (a, b))
        assert tm.timestamp_ranges[time] == (a, b)
        assert time in tm.timestamp_ranges and time + 1 not in tm.timestamp_ranges
    assert len(tm.timestamp_ranges) == len(idx) and list(tm.timestamp_ranges) == t.times.tolist()
    assert not t.times.flags.writeable
    tm.verify_time_index()
    with pytest.raises(spillfile.SpillError, match="no per-symbol row ranges"):
        tm.symbol_ranges


def test_time_range_is_one_range_matching_a_naive_scan(tm):
    ts = tm.column("ts")
    grid = 300_000_000_000
    t0 = int(ts.min()) if len(ts) else 0
    bounds = [None, t0 - 1, t0, t0 + 1] + [t0 + k * grid for k in (3, 7, 11, 40, 200)]
    for a in bounds:
        for b in bounds:
            lo, hi = tm.time_range(a, b)
            want = [r for r in range(tm.nrows) if (a is None or ts[r] >= a) and
                    (b is None or ts[r] < b)]
            assert list(range(lo, hi)) == want, (a, b)
            assert tm.time_ranges(a, b) == ([(lo, hi)] if hi > lo else [])
    before, after = tm.split_by_time(t0 + 5 * grid)
    assert len(before) <= 1 and len(after) <= 1
    assert sum(b - a for a, b in before + after) == tm.nrows
    assert tm.time_range(np.datetime64(t0, "ns"), str(np.datetime64(t0 + grid, "ns"))) == \
        tm.time_range(t0, t0 + grid)


def test_group_sizes_and_qid(tm):
    idx = naive_index(tm.column("ts"))
    lo, hi = tm.time_range(idx[2][0], idx[-2][0]) if len(idx) > 4 else (0, tm.nrows)
    assert tm.group_sizes().tolist() == [b - a for _, a, b in idx]
    assert tm.group_sizes([(lo, hi), (0, 0)]).tolist() == \
        [b - a for _, a, b in idx if lo <= a and b <= hi]
    row_ts = np.repeat(np.arange(len(idx)), [b - a for _, a, b in idx])
    assert tm.qid().dtype == np.int32 and tm.qid().tolist() == row_ts.tolist()
    cuts = [(3, 17), (0, 2), (tm.nrows - 5, tm.nrows)] if tm.nrows > 20 else [(0, tm.nrows)]
    assert tm.qid(cuts).tolist() == [int(row_ts[r]) for a, b in cuts for r in range(a, b)]
    # Group runs of any rows: pieces of one timestamp that follow each other merge.
    keep = [(0, 5), (6, 9), (9, 20)] if tm.nrows > 20 else [(0, tm.nrows)]
    q = tm.qid(keep)
    runs = np.diff(np.flatnonzero(np.diff(np.concatenate([[-1], q, [-2]])) != 0))
    assert tm._group_runs(keep).tolist() == runs.tolist()
    inside = next((a + 1 for _, a, b in idx if b - a > 1), None)
    if inside is not None:
        with pytest.raises(spillfile.SpillError, match=f"row {inside} is not a timestamp boundary"):
            tm.group_sizes([(0, inside)])


def naive_whole(f, batch_rows, ranges=None, shuffle=None, block_rows=None, seed=0):
    """The documented semantics: units as lists of rows, each group the longest run of units
    within the limit (or one unit), blocks permuted, then batches."""
    idx = naive_index(f.column("ts"))
    ranges = [(0, f.nrows)] if ranges is None else ranges
    units = [list(range(a, b)) for lo, hi in ranges for _, a, b in idx if lo <= a and b <= hi]

    def groups(units, limit):
        out = []
        while units:
            k = 1
            while k < len(units) and sum(len(u) for u in units[:k + 1]) <= limit:
                k += 1
            out.append(units[:k])
            units = units[k:]
        return out

    if shuffle == "blocks":
        blocks = groups(units, block_rows)
        units = [u for k in spillfile.splitmix64_permutation(len(blocks), seed) for u in blocks[k]]
    return [[r for u in g for r in u] for g in groups(units, batch_rows)]


@pytest.mark.parametrize("batch_rows, shuffle, block_rows, seed", [
    (1, None, None, 0), (7, None, None, 0), (20, "blocks", 9, 3), (5, "blocks", 1, 0),
    (64, "blocks", 30, 2**64 - 1), (1000, "blocks", 13, 1)])
def test_whole_timestamp_batches_match_the_oracle(tm, batch_rows, shuffle, block_rows, seed):
    idx = naive_index(tm.column("ts"))
    starts = [a for _, a, _ in idx] + [tm.nrows]
    for ranges in (None, [(starts[len(starts) // 3], starts[-1]), (0, starts[len(starts) // 2]),
                          (starts[1 % len(starts)], starts[1 % len(starts)])]):
        got = list(tm.batches(batch_rows, columns=["f000"], ranges=ranges, shuffle=shuffle,
                              block_rows=block_rows, seed=seed, with_time=True, with_symbols=True,
                              whole_timestamps=True))
        want = naive_whole(tm, batch_rows, ranges, shuffle, block_rows, seed)
        assert len(got) == len(want)
        f0, ts, codes = tm.column("f000"), tm.column("ts"), tm.symbol_codes()
        for (X, y, t, s), rows in zip(got, want):
            assert X[:, 0].tolist() == f0[rows].tolist()
            assert t.tolist() == ts[rows].tolist() and s.tolist() == codes[rows].tolist()
            assert rows[-1] + 1 in starts  # a batch ends where a cross-section ends


def test_whole_timestamps_refusals(tmp_path, tm):
    sym = spillfile.open(universe(str(tmp_path / "s.spill"), minor=2))
    assert sym.order == "symbol" and sym.timestamps is None and sym.timestamp_ranges is None
    assert sym.time_range(0, 10) is None
    for call in (lambda: sym.group_sizes(), lambda: sym.qid(),
                 lambda: next(sym.batches(4, whole_timestamps=True))):
        with pytest.raises(spillfile.SpillError, match="needs a time-major file"):
            call()
    idx = naive_index(tm.column("ts"))
    inside = next((a + 1 for _, a, b in idx if b - a > 1), None)
    if inside is not None:
        with pytest.raises(spillfile.SpillError, match="not a timestamp boundary"):
            next(tm.batches(4, ranges=[(inside, tm.nrows)], whole_timestamps=True))
    with pytest.raises(ValueError, match="shuffle"):
        next(tm.batches(4, shuffle="rows", whole_timestamps=True))


def test_transpose_permutes_every_column_by_time_then_symbol(tmp_path):
    src = universe(str(tmp_path / "s.spill"), minor=2)
    f = spillfile.open(src)
    g = spillfile.open(transpose(src, str(tmp_path / "t.spill"), spillfile))
    perm = np.lexsort((f.symbol_codes(), f.column("ts")))
    for name in f.columns:
        np.testing.assert_array_equal(g.column(name), f.column(name)[perm])
    assert g.symbols == f.symbols and g.timezone == f.timezone
    g.verify()
    g.verify_time_index()


def test_golden_time_major_file():
    f = spillfile.open(GOLDEN_TIME)
    assert (f.version, f.order, f.symbols) == ((1, 2), "time", ["AAPL", "ÄPF", "BRK.B"])
    assert f.group_sizes().tolist() == [2, 3, 2, 2]
    t0 = 1_577_836_800_000_000_000
    assert f.timestamp_ranges[t0 + 1_200_000_000_000] == (7, 9)
    assert f.time_range("2020-01-01T00:05:00Z", "2020-01-01T00:15:00Z") == (2, 7)
    f.verify()


# ---------------------------------------------------------------- hostile files


def with_metadata(data, change, bits=None):
    meta_off, meta_len = struct.unpack_from("<QQ", data, len(data) - 64)
    meta = json.loads(data[meta_off:meta_off + meta_len])
    change(meta)
    raw = json.dumps(meta).encode()
    t = bytearray(data[-64:])
    struct.pack_into("<QQ", t, 8, len(raw), meta_off + len(raw) + 64)
    if bits is not None:
        struct.pack_into("<Q", t, 24, bits)
    struct.pack_into("<I", t, 40, zlib.crc32(raw))
    struct.pack_into("<I", t, 48, zlib.crc32(bytes(t[:48])))
    return data[:meta_off] + raw + bytes(t)


def setter(*path_value):
    *path, value = path_value

    def change(m):
        for k in path[:-1]:
            m = m[k]
        if value is KeyError:
            del m[path[-1]]
        else:
            m[path[-1]] = value
    return change


@pytest.mark.parametrize("golden, change, bits, match", [
    ("time", setter("order", "space"), None, "row order 'space' is unknown"),
    ("time", setter("order", 5), None, "order is not a string"),
    ("time", setter("order", "time"), 0, "bit 0 is clear"),
    ("sym", setter("order", "symbol"), 1, "bit 0 is set"),
    ("time", setter("timestamps", KeyError), None, "has no timestamp index"),
    ("sym", setter("timestamps", {"count": 0, "first": 0, "steps": [], "rows": []}), None,
     "a symbol-major file has a timestamp index"),
    ("time", setter("timestamps", "steps", [5]), None, "even number"),
    ("time", setter("timestamps", "steps", [0, 2, 5, 1]), None, "step run 0 is"),
    ("time", setter("timestamps", "rows", [2, 1, 0, 1, 2, 2]), None, "row run 1 is"),
    ("time", setter("timestamps", "steps", [300, 2]), None, "cover 2 differences"),
    ("time", setter("timestamps", "rows", [2, 4]), None, "covers 8 rows"),
    ("time", setter("timestamps", "rows", [2, 5]), None, "the row runs cover 5 timestamps"),
    ("time", setter("timestamps", "first", 2**63 - 10), None, "past the largest int64"),
    ("time", setter("timestamps", "count", 2**48 + 1), None, "over the cap"),
    ("time", setter("timestamps", "steps", [-5, 2, 5, 1]), None, "unsigned integers"),
    ("time", setter("timestamps", "steps", [True, 3]), None, "unsigned integers"),
    ("time", setter("timestamps", "first", 1.5), None, "signed 64-bit"),
    ("time", setter("timestamps", [4]), None, "timestamps is not"),
    ("time", setter("symbols", 1, "start", 0), None, "row range in a time-major file"),
    ("sym", setter("symbols", 1, "stop", KeyError), None, "no start and stop"),
])
def test_every_rule_is_checked(tmp_path, golden, change, bits, match):
    data = open(GOLDEN_TIME if golden == "time" else GOLDEN_SYM, "rb").read()
    p = tmp_path / "x.spill"
    p.write_bytes(with_metadata(data, change, bits))
    with pytest.raises(spillfile.SpillError, match=match):
        spillfile.open(str(p))


def test_a_time_major_file_without_bit_0_support_is_refused_by_old_readers(tmp_path):
    """What a 1.1 reader (no known bits) does with a time-major file: refuse it, by the bit."""
    old = spillfile.KNOWN_REQUIRED_FEATURES
    spillfile.KNOWN_REQUIRED_FEATURES = 0
    try:
        with pytest.raises(spillfile.SpillError, match="requires features 0x1"):
            spillfile.open(GOLDEN_TIME)
        spillfile.open(GOLDEN_SYM)  # a symbol-major 1.2 file opens in a 1.1 reader
    finally:
        spillfile.KNOWN_REQUIRED_FEATURES = old
