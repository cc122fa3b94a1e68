"""The reader's training API: batches (sequential and block-shuffled, against a naive oracle),
time ranges, take, symbol names, Arrow, pickling, the 1.1 metadata keys, bounded memory."""
import datetime as dt
import os
import pickle
import subprocess
import sys

import numpy as np
import pytest

import spillfile
from writer import universe, write_spill

HERE = os.path.dirname(os.path.abspath(__file__))
GOLDEN = os.path.join(HERE, "..", "..", "tests", "data", "v1.0", "golden.spill")


@pytest.fixture
def small(tmp_path):
    return spillfile.open(universe(str(tmp_path / "u.spill")))


def oracle(f, batch_rows, ranges=None, shuffle=None, block_rows=None, seed=0):
    """The documented semantics, row by row."""
    ranges = [(0, f.nrows)] if ranges is None else ranges
    rows = [r for a, b in ranges for r in range(a, b)]
    if shuffle == "blocks":
        blocks = [rows[i:i + block_rows] for i in range(0, len(rows), block_rows)]
        state, mask = seed, (1 << 64) - 1
        for i in range(len(blocks) - 1, 0, -1):
            state = (state + 0x9E3779B97F4A7C15) & mask
            z = state
            z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & mask
            z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & mask
            j = (z ^ (z >> 31)) % (i + 1)
            blocks[i], blocks[j] = blocks[j], blocks[i]
        rows = [r for b in blocks for r in b]
    X, y = np.asarray(f.features()), np.asarray(f.column("target"))
    return [(X[rows[i:i + batch_rows]], y[rows[i:i + batch_rows]], rows[i:i + batch_rows])
            for i in range(0, len(rows), batch_rows)]


@pytest.mark.parametrize("batch_rows", [1, 5, 16, 74, 1000])
@pytest.mark.parametrize("shuffle, block_rows, seed", [(None, None, 0), ("blocks", 1, 0),
                                                       ("blocks", 7, 3), ("blocks", 16, 2**64 - 1)])
@pytest.mark.parametrize("ranges", [None, [(3, 9), (20, 21), (40, 74)], [(5, 5)], [(0, 74)]])
def test_batches_match_the_oracle(small, batch_rows, shuffle, block_rows, seed, ranges):
    got = list(small.batches(batch_rows, ranges=ranges, shuffle=shuffle, block_rows=block_rows,
                             seed=seed, with_time=True, with_symbols=True))
    want = oracle(small, batch_rows, ranges, shuffle, block_rows or batch_rows, seed)
    assert len(got) == len(want)
    ts, codes = small.column("ts"), small.symbol_codes()
    for (X, y, t, s), (wX, wy, rows) in zip(got, want):
        assert X.dtype == np.float32 and X.flags.c_contiguous and X.flags.writeable
        assert y.dtype == np.float32 and t.dtype == np.int64 and s.dtype == np.uint32
        np.testing.assert_array_equal(X, wX)
        np.testing.assert_array_equal(y, wy)
        np.testing.assert_array_equal(t, ts[rows])
        np.testing.assert_array_equal(s, codes[rows])


def test_splitmix_reference_values():
    """SplitMix64's published first outputs for seed 0 fix the generator; the permutation of 10."""
    order = spillfile.splitmix64_permutation(2, 0)
    # next() from state 0 is 0xE220A8397B1DCDAF: j = that % 2 = 1, so no swap.
    assert 0xE220A8397B1DCDAF % 2 == 1 and order == [0, 1]
    assert spillfile.splitmix64_permutation(10, 0) == [6, 3, 2, 9, 8, 1, 4, 7, 0, 5]
    # The Rust iterator's test vector (spill/tests/spill/batches.rs, BLOCK_ORDER_10_42): both
    # readers shuffle blocks identically.
    assert spillfile.splitmix64_permutation(10, 42) == [0, 9, 5, 8, 6, 4, 7, 2, 1, 3]
    assert sorted(spillfile.splitmix64_permutation(1000, 42)) == list(range(1000))


def test_batches_columns_float64_and_no_constant_stride(tmp_path):
    f = spillfile.open(universe(str(tmp_path / "d.spill"), dtype=np.float64))
    (X, y), = list(f.batches(1000, columns=["f003", "f000"]))
    assert X.dtype == np.float32 and y.dtype == np.float32
    np.testing.assert_array_equal(X[:, 0], f.column("f003").astype(np.float32))
    np.testing.assert_array_equal(X[:, 1], f.column("f000").astype(np.float32))


def test_batches_refuse_bad_arguments(small):
    with pytest.raises(ValueError):
        next(small.batches(0))
    with pytest.raises(ValueError, match="shuffle"):
        next(small.batches(4, shuffle="rows"))
    with pytest.raises(ValueError, match="not within"):
        next(small.batches(4, ranges=[(10, 5)]))
    with pytest.raises(ValueError, match="not within"):
        next(small.batches(4, ranges=[(0, 75)]))


def test_time_ranges_and_split(small):
    ts = small.column("ts")
    cut = int(np.median(ts))
    before, after = small.split_by_time(cut)
    rb = [r for a, b in before for r in range(a, b)]
    ra = [r for a, b in after for r in range(a, b)]
    assert sorted(rb + ra) == list(range(small.nrows))
    assert (ts[rb] < cut).all() and (ts[ra] >= cut).all()
    lo, hi = int(ts.min()) + 600_000_000_000, cut
    got = [r for a, b in small.time_ranges(lo, hi) for r in range(a, b)]
    assert got == [r for r in range(small.nrows) if lo <= ts[r] < hi]
    # Every accepted kind of bound gives the same ranges.
    d64 = np.datetime64(hi, "ns")
    naive = dt.datetime(1970, 1, 1) + dt.timedelta(microseconds=hi // 1000)
    aware = naive.replace(tzinfo=dt.timezone.utc).astimezone(dt.timezone(dt.timedelta(hours=-5)))
    assert hi % 1000 == 0
    for bound in (d64, naive, aware, str(d64), pytest.importorskip("pandas").Timestamp(hi, tz="UTC")):
        assert small.time_ranges(lo, bound) == small.time_ranges(lo, hi), bound
    assert small.time_ranges() == [(0, small.nrows)]


def test_take_views_and_copies(small):
    X, y = small.take([(3, 9)])
    assert not X.flags.writeable and np.shares_memory(X, small.features())
    np.testing.assert_array_equal(y, small.column("target")[3:9])
    Xc, yc = small.take([(3, 9), (20, 22)], copy=True)
    assert Xc.flags.writeable and Xc.flags.c_contiguous and Xc.shape == (8, 4)
    np.testing.assert_array_equal(Xc[6:], small.features()[20:22])
    with pytest.raises(ValueError, match="copy=True"):
        small.take([(3, 9), (20, 22)])


def test_symbol_names(small):
    pd = pytest.importorskip("pandas")
    pa = pytest.importorskip("pyarrow")
    codes = small.symbol_codes()
    cat = small.symbol_names()
    assert isinstance(cat, pd.Categorical) and list(cat.categories) == small.symbols
    assert list(cat) == [small.symbols[c] for c in codes]
    arr = small.symbol_names(kind="arrow")
    assert arr.type == pa.dictionary(pa.uint32(), pa.string())
    assert arr.to_pylist() == list(cat)
    part = small.symbol_names([(3, 9), (40, 41)], kind="arrow")
    assert part.to_pylist() == [small.symbols[c] for c in list(codes[3:9]) + [codes[40]]]


def test_to_arrow_is_zero_copy(small):
    pa = pytest.importorskip("pyarrow")
    t = small.to_arrow()
    assert t.column_names == small.columns and t.num_rows == small.nrows
    assert t.schema.field("ts").type == pa.timestamp("ns", tz="UTC")
    assert t.schema.field("symbol").type == pa.dictionary(pa.uint32(), pa.string())
    f0 = t.column("f000").chunk(0)
    view = small.column("f000")
    assert f0.buffers()[1].address == view.__array_interface__["data"][0]
    np.testing.assert_array_equal(f0.to_numpy(), view)
    parts = small.to_arrow(["f001"], ranges=[(0, 3), (10, 12)])
    assert parts.column("f001").num_chunks == 2 and parts.num_rows == 5


def test_pickle_reopens_by_path(small):
    g = pickle.loads(pickle.dumps(small))
    assert g.path == small.path and g is not small
    np.testing.assert_array_equal(g.features(), small.features())


def test_format_1_1_keys(tmp_path):
    f = spillfile.open(universe(str(tmp_path / "n.spill"), timezone="America/New_York"))
    assert f.version == (1, 1) and f.time_unit == "ns" and f.timezone == "America/New_York"
    col = f.column("f001")
    info = f.column_info("f001")
    assert info.mean == pytest.approx(float(col.astype(np.float64).mean()), rel=1e-9)
    assert info.std == pytest.approx(float(col.astype(np.float64).std()), rel=1e-9)
    t = f.to_arrow(["ts"])
    assert str(t.schema.field("ts").type.tz) == "America/New_York"


def test_format_1_0_has_no_1_1_keys(tmp_path):
    f = spillfile.open(GOLDEN)
    assert f.version == (1, 0) and f.time_unit == "ns" and f.timezone is None
    assert f.column_info("f0").mean is None and f.column_info("f0").std is None
    g = spillfile.open(universe(str(tmp_path / "o.spill"), minor=0))
    assert g.version == (1, 0) and g.column_info("f000").mean is None


@pytest.mark.parametrize("key, value", [("unit", 5), ("timezone", ["UTC"])])
def test_bad_1_1_time_keys(tmp_path, key, value):
    import json, struct, zlib  # noqa: E401
    p = universe(str(tmp_path / "b.spill"))
    data = open(p, "rb").read()
    meta_off, meta_len = struct.unpack_from("<QQ", data, len(data) - 64)
    meta = json.loads(data[meta_off:meta_off + meta_len])
    meta["columns"][0][key] = value
    raw = json.dumps(meta).encode()
    t = bytearray(data[-64:])
    struct.pack_into("<QQ", t, 8, len(raw), meta_off + len(raw) + 64)
    struct.pack_into("<I", t, 40, zlib.crc32(raw))
    struct.pack_into("<I", t, 48, zlib.crc32(bytes(t[:48])))
    open(p, "wb").write(data[:meta_off] + raw + bytes(t))
    with pytest.raises(spillfile.SpillError, match="unit and timezone"):
        spillfile.open(p)


RSS_SCRIPT = r"""
import sys
import numpy as np
import spillfile
from writer import write_spill

path, pread = sys.argv[1], sys.argv[2] == "1"
nrows, nfeat = 400_000, 64               # 100 MiB of features
f = spillfile.open(path)
def rss_file():
    for line in open("/proc/self/status"):
        if line.startswith("RssFile:"):
            return int(line.split()[1]) // 1024
next(iter(f.batches(16, ranges=[(0, 16)])))  # the reader's imports
base = peak = rss_file()
if pread:
    for X, y in f.batches(16384, shuffle="blocks", block_rows=4096, seed=1):
        peak = max(peak, rss_file())
else:  # the control: the same rows copied out of the mapping
    F = f.features()
    for a in range(0, nrows, 16384):
        X = np.array(F[a:a + 16384])
        peak = max(peak, rss_file())
print(peak - base)
"""


def test_batches_map_no_file_pages(tmp_path):
    """batches() reads with pread: the file's pages never enter the resident set (RssFile, the
    libraries' and the file's mapped pages, grows by under 2 MiB while reading a 100 MiB file); copying the same rows out of the
    mapping makes them grow to the file. CI keeps the file small; the benchmark
    (scripts/bench_loaders.py) measures an epoch of the M file."""
    rng = np.random.default_rng(0)
    n, k = 400_000, 64
    cols = [("target", "target", rng.standard_normal(n).astype(np.float32))]
    cols += [(f"f{j}", "feature", np.full(n, j, np.float32)) for j in range(k)]
    p = write_spill(str(tmp_path / "big.spill"), cols, [("A", 0, n)])
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([os.path.dirname(spillfile.__file__), HERE]))
    peaks = []
    for pread in ("1", "0"):
        r = subprocess.run([sys.executable, "-c", RSS_SCRIPT, p, pread], capture_output=True,
                           text=True, env=env, timeout=120)
        assert r.returncode == 0, r.stderr
        peaks.append(int(r.stdout))
    assert peaks[0] < 2, peaks
    assert peaks[1] > 60, peaks  # the check can see growth


def test_dropped_batches_are_recycled_held_ones_never(small):
    """Batches the caller dropped are reused for later ones (no new pages to fault in); a batch,
    or a view of it, that the caller still holds is never written again."""
    want = oracle(small, 8, None, "blocks", 5, 1)
    addresses, held = set(), []
    for i, (X, y) in enumerate(small.batches(8, shuffle="blocks", block_rows=5, seed=1)):
        np.testing.assert_array_equal(X, want[i][0])
        np.testing.assert_array_equal(y, want[i][1])
        addresses.add(X.__array_interface__["data"][0])
        if i % 3 == 0:
            held.append((i, X[1:], y))  # a view keeps its base alive
    assert len(addresses) < len(want)  # dropped ones were reused
    for i, Xv, y in held:
        np.testing.assert_array_equal(Xv, want[i][0][1:])
        np.testing.assert_array_equal(y, want[i][1])
