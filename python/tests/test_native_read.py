"""spillway._native.read_rows and take_rows (python/src/read.rs) against numpy: every output
dtype, runs across chunk and block boundaries, checked chunks (one corrupted byte fails only its
chunk), and bad arguments raising instead of writing out of bounds."""
import mmap
import os
import shutil
import zlib

import numpy as np
import pytest

from spillway import _native

CHUNK = 4096                 # small chunks, so that runs cross many boundaries
NROWS = 9000                 # more than one 4096-row block of the bounce buffer
K = 37                       # two full 16-column groups and a partial one
ROWS_PER_CHUNK = CHUNK // 4


def special_values(n, rng):
    """float32 values with the cases a conversion gets wrong: NaNs, infinities, signed zeros,
    float16 overflow and subnormals, bfloat16 ties, mixed with normal values."""
    x = rng.standard_normal(n).astype(np.float32) * np.float32(1000)
    bits = np.array([0x7FC00000, 0xFFC00001, 0x7F800001, 0x7F800000, 0xFF800000, 0x00000000,
                     0x80000000, 0x3F808000, 0x3F818000, 0x3F80FFFF, 0x7F7FFFFF, 0xFF7FFFFF,
                     0x00000001, 0x33800000, 0x387FC000, 0x477FF000, 0x477FE000, 0x47800000,
                     0x7F7F8000, 0x7F7FFFFF], dtype=np.uint32)
    specials = np.concatenate([bits.view(np.float32),
                               np.array([65504, 65519.99, 65520, -65520, 6.1e-5, 6e-8, 3e-8,
                                         1 + 2 ** -11, 1 + 3 * 2 ** -11], np.float32)])
    pos = rng.choice(n, len(specials), replace=False)
    x[pos] = specials
    return x


def bf16_reference(x):
    """bfloat16 bits of float32 ``x``: round to nearest even on the uint32 bits, NaN kept quiet."""
    b = x.view(np.uint32).astype(np.uint64)
    rounded = ((b + 0x7FFF + ((b >> 16) & 1)) >> 16) & 0xFFFF
    nan = (b & 0x7FFFFFFF) > 0x7F800000
    return np.where(nan, (b >> 16) | 0x40, rounded).astype(np.uint16)


def assert_same_bits(got, want):
    """Equal bit for bit, except that a NaN need only be a NaN (payloads may differ)."""
    assert got.dtype == want.dtype and got.shape == want.shape
    if got.dtype.kind == "f":
        nan = np.isnan(want)
        assert np.array_equal(np.isnan(got), nan)
        got, want = got[~nan], want[~nan]
    got, want = np.ascontiguousarray(got), np.ascontiguousarray(want)
    assert np.array_equal(got.view(np.uint8), want.view(np.uint8))


def write_columns(path, columns):
    """A file of column regions as a spill file lays them out: a 4096-byte head, each column
    64-byte aligned and followed by padding, all filler bytes 0xA5 (read by mistake, they
    show). Returns (offsets, col_bytes, crcs) with crcs[i] the CRC-32 of each CHUNK bytes."""
    offsets, crcs, pos = [], [], 4096
    with open(path, "wb") as fh:
        fh.write(b"\xa5" * 4096)
        for c in columns:
            raw = np.ascontiguousarray(c).tobytes()
            pad = -len(raw) % 64 + 64
            offsets.append(pos)
            crcs.append([zlib.crc32(raw[k:k + CHUNK]) for k in range(0, len(raw), CHUNK)])
            fh.write(raw + b"\xa5" * pad)
            pos += len(raw) + pad
    return offsets, len(raw), crcs


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    rng = np.random.default_rng(3)
    X = np.stack([special_values(NROWS, rng) for _ in range(K)], axis=1)
    path = str(tmp_path_factory.mktemp("native_read") / "cols.bin")
    offsets, col_bytes, crcs = write_columns(path, [X[:, j] for j in range(K)])
    return path, X, offsets, col_bytes, crcs


@pytest.fixture
def fd(data):
    f = os.open(data[0], os.O_RDONLY)
    yield f
    os.close(f)


OUT_DTYPES = {"float32": np.float32, "float16": np.float16, "bfloat16": np.uint16}


def convert(X, dtype):
    if dtype == "float32":
        return X
    if dtype == "float16":
        with np.errstate(over="ignore"):
            return X.astype(np.float16)
    return bf16_reference(X)


# Runs crossing chunk boundaries (1024 rows a chunk) and the 4096-row block, single rows, an
# empty run, the last row, and one run over the whole column.
RUNS = [(1000, 1100), (1023, 1025), (0, NROWS), (4095, 4097), (3000, 3000), (NROWS - 1, NROWS),
        (5000, 8200), (2047, 2048)]


@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16"])
def test_read_rows_matches_numpy(data, fd, dtype):
    _, X, offsets, col_bytes, _ = data
    total = sum(b - a for a, b in RUNS)
    out = np.full((total + 5, K), 7, OUT_DTYPES[dtype])
    _native.read_rows(fd, offsets, col_bytes, RUNS, out, 3, dtype)
    want = convert(np.concatenate([X[a:b] for a, b in RUNS]), dtype)
    assert_same_bits(out[3:3 + total], want)
    assert (out[:3] == 7).all() and (out[3 + total:] == 7).all()


def test_conversions_of_special_values(data, fd):
    """The values that matter, one by one: float16 overflow is infinity, NaN stays NaN,
    bfloat16 ties go to even."""
    _, X, offsets, col_bytes, _ = data
    half = np.empty((NROWS, K), np.float16)
    _native.read_rows(fd, offsets, col_bytes, [(0, NROWS)], half, 0, "float16")
    big = np.abs(X) >= 65520
    assert np.isinf(half[big & ~np.isnan(X)]).all()
    assert np.isnan(half[np.isnan(X)]).all()
    bf = np.empty((NROWS, K), np.uint16)
    _native.read_rows(fd, offsets, col_bytes, [(0, NROWS)], bf, 0, "bfloat16")
    bits = X.view(np.uint32)
    assert (bf[bits == 0x3F808000] == 0x3F80).all()     # tie, to even (down)
    assert (bf[bits == 0x3F818000] == 0x3F82).all()     # tie, to even (up)
    assert (bf[bits == 0x7F7FFFFF] == 0x7F80).all()     # overflow to infinity
    nan = (bf & 0x7F80 == 0x7F80) & (bf & 0x7F != 0)
    assert np.array_equal(nan, np.isnan(X)) and (bf[np.isnan(X)] & 0x40).all()


def test_read_rows_raw(tmp_path):
    """"raw" copies values as stored: int64 times, uint32 codes, float32 targets, into 1-D or
    (n, 1) outputs."""
    rng = np.random.default_rng(5)
    n = 6000
    cols = {"<i8": rng.integers(-2 ** 62, 2 ** 62, n), "<u4": rng.integers(0, 2 ** 32, n, np.uint32),
            "<f4": special_values(n, rng), "|u1": rng.integers(0, 256, n, np.uint8)}
    runs = [(5, 4500), (4400, 6000), (0, 1)]
    for typestr, col in cols.items():
        dt = np.dtype(typestr)
        path = str(tmp_path / f"{dt.str[1:]}.bin")
        offsets, col_bytes, _ = write_columns(path, [col.astype(dt)])
        fd = os.open(path, os.O_RDONLY)
        try:
            want = np.concatenate([col.astype(dt)[a:b] for a, b in runs])
            for shape in [(len(want),), (len(want), 1)]:
                out = np.zeros(shape, dt)
                _native.read_rows(fd, offsets, col_bytes, runs, out, 0, "raw", itemsize=dt.itemsize)
                assert_same_bits(out.reshape(-1), want)
            times = np.zeros(len(want), "datetime64[ns]")
            if dt.itemsize == 8:
                _native.read_rows(fd, offsets, col_bytes, runs, times, 0, "raw", itemsize=8)
                assert np.array_equal(times.view(np.int64), want)
        finally:
            os.close(fd)


def chunks_of(runs):
    return sorted({k for a, b in runs if b > a for k in range(a // ROWS_PER_CHUNK,
                                                              (b - 1) // ROWS_PER_CHUNK + 1)})


def test_checked_reads_mark_verified_chunks(data, fd):
    _, X, offsets, col_bytes, crcs = data
    nchunks = len(crcs[0])
    verified = [bytearray(nchunks) for _ in range(K)]
    runs = [(1000, 1100), (5000, 5100)]
    out = np.empty((200, K), np.float32)
    _native.read_rows(fd, offsets, col_bytes, runs, out, 0, "float32", chunk_bytes=CHUNK,
                      crcs=crcs, verified=verified, names=[f"c{j}" for j in range(K)])
    assert_same_bits(out, np.concatenate([X[1000:1100], X[5000:5100]]))
    touched = chunks_of(runs)
    assert touched == [0, 1, 4]
    for v in verified:
        assert list(v) == [1 if k in touched else 0 for k in range(nchunks)]
    # Without `verified`, every touched chunk is checked on every call.
    _native.read_rows(fd, offsets, col_bytes, [(0, NROWS)], np.empty((NROWS, K), np.float32), 0,
                      "float32", chunk_bytes=CHUNK, crcs=crcs)


def test_corrupted_byte_fails_only_its_chunk(data, tmp_path):
    path, X, offsets, col_bytes, crcs = data
    bad = str(tmp_path / "bad.bin")
    shutil.copyfile(path, bad)
    col, chunk = 5, 3
    with open(bad, "r+b") as fh:                       # one byte in chunk 3 of column 5
        fh.seek(offsets[col] + chunk * CHUNK + 123)
        b = fh.read(1)
        fh.seek(-1, os.SEEK_CUR)
        fh.write(bytes([b[0] ^ 0x10]))
        fh.seek(offsets[col] + chunk * CHUNK)
        actual = zlib.crc32(fh.read(CHUNK))
    names = [f"feat_{j}" for j in range(K)]
    verified = [bytearray(len(crcs[0])) for _ in range(K)]
    kw = dict(chunk_bytes=CHUNK, crcs=crcs, verified=verified, names=names)
    fd = os.open(bad, os.O_RDONLY)
    try:
        # Every chunk but 3: fine.
        runs = [(0, 3 * ROWS_PER_CHUNK), (4 * ROWS_PER_CHUNK, NROWS)]
        out = np.empty((NROWS - ROWS_PER_CHUNK, K), np.float32)
        _native.read_rows(fd, offsets, col_bytes, runs, out, 0, "float32", **kw)
        assert_same_bits(out, np.concatenate([X[a:b] for a, b in runs]))
        # One row of chunk 3: the mismatch, naming the column, the chunk's rows and the CRCs.
        out = np.full((10, K), 7, np.float32)
        r0, r1 = chunk * ROWS_PER_CHUNK, (chunk + 1) * ROWS_PER_CHUNK
        msg = (f"column 'feat_5' rows [{r0}, {r1}) (chunk 3): checksum mismatch: stored "
               f"{crcs[col][chunk]:#010x}, computed {actual:#010x}")
        with pytest.raises(ValueError) as e:
            _native.read_rows(fd, offsets, col_bytes, [(r0 + 500, r0 + 510)], out, 0, "float32", **kw)
        assert str(e.value) == msg
        assert (out == 7).all()                        # nothing copied
        assert verified[col][chunk] == 0 and all(v[chunk] == 1 for v in verified[:col])
        assert all(v[chunk] == 0 for v in verified[col + 1:])
        # Again: the same error (a damaged chunk is never marked).
        with pytest.raises(ValueError, match="chunk 3"):
            _native.read_rows(fd, offsets, col_bytes, [(r1 - 1, r1)], out, 0, "float32", **kw)
        # Columns without damage read chunk 3 fine.
        others = [o for j, o in enumerate(offsets) if j != col]
        kw2 = dict(chunk_bytes=CHUNK, crcs=crcs[:col] + crcs[col + 1:])
        _native.read_rows(fd, others, col_bytes, [(r0, r1)], np.empty((r1 - r0, K - 1), np.float32),
                          0, "float32", **kw2)
        # Unchecked, the damaged value comes through as it is.
        one = np.empty((1, 1), np.float32)
        _native.read_rows(fd, [offsets[col]], col_bytes, [(r0 + 123 // 4, r0 + 123 // 4 + 1)], one,
                          0, "float32")
        assert one[0, 0] != X[r0 + 123 // 4, col] or np.isnan(X[r0 + 123 // 4, col])
    finally:
        os.close(fd)


def test_read_rows_rejects_bad_arguments(data, fd):
    _, X, offsets, col_bytes, crcs = data
    ok = np.empty((100, K), np.float32)
    call = _native.read_rows
    call(fd, offsets, col_bytes, [(0, 100)], ok, 0, "float32")
    cases = [
        (ValueError, dict(out=np.empty((100, K - 1), np.float32))),             # columns
        (ValueError, dict(out=np.empty((99, K), np.float32))),                  # rows
        (ValueError, dict(at=1)),                                               # rows from at
        (ValueError, dict(runs=[(0, NROWS + 1)])),                              # past the column
        (ValueError, dict(runs=[(50, 10)])),                                    # backwards
        (OverflowError, dict(runs=[(-1, 10)])),
        (TypeError, dict(out=np.empty((100, K), np.float64))),                  # type
        (TypeError, dict(out=np.empty((100, K), np.float32, order="F"))),       # layout
        (TypeError, dict(out=np.empty((100, 2 * K), np.float32)[:, ::2])),
        (TypeError, dict(out=np.empty((100, K), np.float16))),                  # f16 for float32
        (TypeError, dict(out=[[0.0] * K] * 100)),                               # not an array
        (ValueError, dict(dtype="float64")),
        (ValueError, dict(itemsize=8)),                                         # float32 is 4
        (TypeError, dict(out=np.empty((100, K), object), dtype="raw")),         # objects
        (TypeError, dict(out=np.empty((100, K), ">f4"), dtype="raw")),          # big-endian
        (ValueError, dict(crcs=crcs, chunk_bytes=0)),
        (ValueError, dict(crcs=crcs, chunk_bytes=CHUNK * 2)),                   # checksum count
        (ValueError, dict(crcs=crcs[:-1], chunk_bytes=CHUNK)),
        (ValueError, dict(crcs=crcs, chunk_bytes=CHUNK, verified=[bytearray(1)] * K)),
        (ValueError, dict(verified=[bytearray(9)] * K)),                        # without crcs
        (ValueError, dict(names=["a"])),
        (ValueError, dict(fd=-1)),
        (ValueError, dict(offsets=[2 ** 63] * K)),
    ]
    ro = np.empty((100, K), np.float32)
    ro.flags.writeable = False
    cases.append((TypeError, dict(out=ro)))
    base = dict(fd=fd, offsets=offsets, col_bytes=col_bytes, runs=[(0, 100)], out=ok, at=0,
                dtype="float32")
    for exc, change in cases:
        with pytest.raises(exc):
            call(**{**base, **change})
    # An fd that is not open: OSError.
    closed = os.open(os.devnull, os.O_RDONLY)
    os.close(closed)
    with pytest.raises(OSError):
        call(**{**base, "fd": closed})


def test_truncated_file_names_the_column(data, tmp_path):
    path, X, offsets, col_bytes, _ = data
    short = str(tmp_path / "short.bin")
    with open(path, "rb") as src, open(short, "wb") as dst:
        dst.write(src.read(offsets[20] + 1000))
    fd = os.open(short, os.O_RDONLY)
    try:
        out = np.empty((NROWS, K), np.float32)
        names = [f"f{j:03d}" for j in range(K)]
        with pytest.raises(ValueError, match=r"column 'f020': the file ends at byte"):
            _native.read_rows(fd, offsets, col_bytes, [(0, NROWS)], out, 0, "float32", names=names)
    finally:
        os.close(fd)


@pytest.fixture(scope="module")
def mapped(data):
    path, X, offsets, _, _ = data
    with open(path, "rb") as fh:
        mm = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
    # The array holds a buffer export of the mapping, which keeps it open while it lives.
    return np.frombuffer(mm, np.uint8), X, offsets


@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16"])
def test_take_rows_matches_numpy(mapped, dtype):
    base, X, offsets = mapped
    rng = np.random.default_rng(11)
    rows = np.sort(rng.choice(NROWS, 5000, replace=False)).astype(np.int64)
    rows[:3] = [0, 0, 1]                                  # repeats are fine
    dest = rng.permutation(len(rows)).astype(np.int64)
    out = np.full((len(rows) + 2, K), 7, OUT_DTYPES[dtype])
    _native.take_rows(base, offsets, NROWS, rows, dest + 1, out, dtype)
    want = np.empty((len(rows), K), out.dtype)
    want[dest] = convert(X[rows], dtype)
    assert_same_bits(out[1:-1], want)
    assert (out[0] == 7).all() and (out[-1] == 7).all()
    # A column subset, in any order.
    cols = [30, 2, 17]
    sub = np.empty((len(rows), 3), out.dtype)
    _native.take_rows(base, [offsets[j] for j in cols], NROWS, rows, np.arange(len(rows)), sub,
                      dtype)
    assert_same_bits(sub, convert(X[rows][:, cols], dtype))


def test_take_rows_rejects_bad_arguments(mapped):
    base, X, offsets = mapped
    rows = np.arange(10, dtype=np.int64)
    out = np.full((10, K), 7, np.float32)
    base_args = dict(base=base, offsets=offsets, nrows=NROWS, rows=rows, dest=rows, out=out,
                     dtype="float32")
    bad_rows = rows.copy()
    bad_rows[-1] = NROWS
    neg = rows.copy()
    neg[4] = -1
    writable = np.zeros(len(base), np.uint8)
    cases = [
        (IndexError, dict(rows=bad_rows)),
        (IndexError, dict(rows=neg)),
        (IndexError, dict(dest=rows + 1)),
        (IndexError, dict(nrows=9)),
        (ValueError, dict(nrows=NROWS * 10)),                   # columns past the mapping
        (ValueError, dict(offsets=offsets[:-1] + [len(base) - 100])),
        (ValueError, dict(dest=rows[:5])),
        (ValueError, dict(out=np.empty((10, K - 1), np.float32))),
        (ValueError, dict(dtype="raw")),
        (TypeError, dict(rows=rows.astype(np.int32))),
        (TypeError, dict(rows=np.arange(20, dtype=np.int64)[::2])),
        (TypeError, dict(base=base.view(np.int8))),
        (TypeError, dict(out=np.empty((10, K), np.float16))),
        (ValueError, dict(base=writable,
                          out=writable[:10 * K * 4].view(np.float32).reshape(10, K))),
    ]
    for exc, change in cases:
        with pytest.raises(exc):
            _native.take_rows(**{**base_args, **change})
        assert (out == 7).all()


def test_spill_file_built_by_spillway(spill_path):
    """The real thing: a file spillway built, read through its own offsets and checksums."""
    import spillway
    f = spillway.open(spill_path)
    names = f.columns_with_role("feature")
    infos = [f.column_info(n) for n in names]
    X = np.asarray(f.features())
    verified = [bytearray(len(c.checksums)) for c in infos]
    out = np.empty((f.nrows, len(names)), np.float32)
    fd = os.open(spill_path, os.O_RDONLY)
    try:
        _native.read_rows(fd, [c.offset for c in infos], infos[0].length, [(0, f.nrows)], out, 0,
                          "float32", chunk_bytes=f.chunk_bytes,
                          crcs=[list(c.checksums) for c in infos], verified=verified, names=names)
    finally:
        os.close(fd)
    assert_same_bits(out, X)
    assert all(all(v) for v in verified)
    rows = np.arange(0, f.nrows, 7, dtype=np.int64)
    taken = np.empty((len(rows), len(names)), np.float32)
    with open(spill_path, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mm:
        base = np.frombuffer(mm, np.uint8)
        _native.take_rows(base, [c.offset for c in infos], f.nrows, rows,
                          np.arange(len(rows), dtype=np.int64), taken, "float32")
        del base
    assert_same_bits(taken, X[rows])
