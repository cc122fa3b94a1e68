"""Read spill files with numpy, zero-copy.

    import spillfile
    f = spillfile.open("train.spill")
    X = f.features()            # (nrows, nfeatures) float32, read-only, backed by the mmap
    y = f.column("target")      # (nrows,) float32 view
    for sym, (start, stop) in f.symbol_ranges.items(): ...    # symbol-major files
    f.verify()                  # recompute every chunk checksum (raises SpillError on damage)

Time-major files (format 1.2, rows sorted by time, each timestamp's rows contiguous):

    f.order                     # "time" (or "symbol")
    f.timestamps.times          # int64 ns, one per timestamp; .starts, .counts (numpy, lazily)
    f.timestamp_ranges[t]       # (start, stop) of the rows at time t
    a, b = f.time_range("2024-01-01", "2024-07-01")   # ONE row range of whole cross-sections
    f.group_sizes([(a, b)])     # rows per timestamp (ranking groups); f.qid(...) per row
    f.batches(65536, ranges=[(a, b)], whole_timestamps=True)   # batches of whole cross-sections

The format is specified byte by byte in ``spill/SPEC.md``; this module performs the same validation
as the Rust reader, in the same order, before handing out any view. Any corrupt, truncated or
hostile file raises :class:`SpillError` (a ``ValueError``). Depends on numpy only.
"""
import datetime as _dt
import json
import math
import mmap
import os
import struct
import sys
import zlib
from collections.abc import Mapping
from typing import Iterator, Optional, Sequence, Tuple, Union

import numpy as np

__all__ = ["SpillwayError", "SpillError", "SpillFile", "Timestamps", "Batches", "open",
           "DamagedChunk", "merge_states", "splitmix64_permutation", "cut_blocks", "merge_runs",
           "pack_units"]

MAGIC = b"\x89SPILL\r\n"
TRAILER_MAGIC = b"SPILLEND"
VERSION_MAJOR = 1
VERSION_MINOR = 2  # the newest minor this reader knows (it reads every minor of major 1)
ALIGN = 4096
HEADER_LEN = 4096
TRAILER_LEN = 64
MIN_FILE_LEN = HEADER_LEN + TRAILER_LEN
CHECKSUM_CRC32 = 1
FEATURE_TIME_ORDER = 1  # required-feature bit 0 (1.2): the rows are time-major
KNOWN_REQUIRED_FEATURES = FEATURE_TIME_ORDER
MAX_METADATA_BYTES = 1 << 30
MAX_COLUMNS = 1 << 20
MAX_SYMBOLS = 1 << 26
MAX_NAME_BYTES = 4096
MAX_ROWS = 1 << 48
MIN_CHUNK_BYTES = 4096
MAX_CHUNK_BYTES = 1 << 30
MAX_JSON_DEPTH = 128  # serde_json's recursion limit: both readers refuse deeper metadata
MAX_TIMESTAMP_RUNS = 1 << 24  # runs in each list of the timestamp index
ORDERS = ("symbol", "time")

DTYPES = {
    "f32": np.dtype("<f4"),
    "f64": np.dtype("<f8"),
    "i64": np.dtype("<i8"),
    "i32": np.dtype("<i4"),
    "u32": np.dtype("<u4"),
    "u8": np.dtype("u1"),
}
FLOAT_DTYPES = ("f32", "f64")
UNSIGNED_DTYPES = ("u32", "u8")
ROLES = ("time", "symbol", "target", "feature")

# Row ranges as the methods take them: [(start, stop), ...], or one (start, stop) tuple.
RowRanges = Union[Sequence[Tuple[int, int]], Tuple[int, int]]


class SpillwayError(Exception):
    """Base class of every error of spillway: this reader's and the package's (``spillway.errors``
    re-exports it). ``exit_code``: the code the ``spillway`` command exits with for the same
    failure (1: the data or input)."""

    exit_code = 1


class SpillError(SpillwayError, ValueError):
    """The file is not a valid spill file (corrupt, truncated, unsupported, or not one at all)."""


class DamagedChunk(tuple):
    """(column, chunk, (row_start, row_stop), stored, actual) of a chunk whose checksum failed."""

    __slots__ = ()

    def __new__(cls, column, chunk, rows, stored, actual):
        return tuple.__new__(cls, (column, chunk, rows, stored, actual))

    column = property(lambda self: self[0])
    chunk = property(lambda self: self[1])
    rows = property(lambda self: self[2])
    stored = property(lambda self: self[3])
    actual = property(lambda self: self[4])


def _is_int(v):
    return type(v) is int


def _u64(v, what):
    if not _is_int(v) or v < 0 or v >= 1 << 64:
        raise SpillError(f"metadata is not valid: {what} is not an unsigned 64-bit integer")
    return v


def _pairs_no_duplicates(pairs):
    out = {}
    for k, v in pairs:
        if k in out:
            raise SpillError(f"metadata is not valid: duplicate key {k[:80]!r}")
        out[k] = v
    return out


def _finite_float(s):
    v = float(s)
    if not math.isfinite(v):
        raise SpillError(f"metadata is not valid: number {s[:40]} out of range")
    return v


def _no_constants(name):
    raise SpillError(f"metadata is not valid: {name} is not JSON")


_NUMBERS = (int, float, bool, type(None))


def _check_tree(v, depth=0):
    """Depth cap and valid Unicode everywhere (lone surrogates are not UTF-8), as serde_json."""
    if depth > MAX_JSON_DEPTH:
        raise SpillError("metadata is not valid: nesting deeper than 128")
    if isinstance(v, str):
        try:
            v.encode("utf-8")
        except UnicodeEncodeError:
            raise SpillError("metadata is not valid: string is not valid Unicode") from None
    elif isinstance(v, dict):
        for k, x in v.items():
            _check_tree(k, depth + 1)
            _check_tree(x, depth + 1)
    elif isinstance(v, list):
        if v and depth + 1 > MAX_JSON_DEPTH:
            raise SpillError("metadata is not valid: nesting deeper than 128")
        for x in v:
            if type(x) not in _NUMBERS:  # numbers need no check: long run lists stay fast
                _check_tree(x, depth + 1)


def _parse_json(raw):
    try:
        text = raw.decode("utf-8")
        tree = json.loads(text, object_pairs_hook=_pairs_no_duplicates, parse_float=_finite_float,
                          parse_constant=_no_constants)
    except SpillError:
        raise
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        raise SpillError(f"metadata is not valid: {e}") from None
    _check_tree(tree)
    if not isinstance(tree, dict):
        raise SpillError("metadata is not valid: not a JSON object")
    return tree


def _name(v, what):
    if not isinstance(v, str):
        raise SpillError(f"metadata is not valid: {what} name is not a string")
    n = len(v.encode("utf-8"))
    if n == 0 or n > MAX_NAME_BYTES:
        raise SpillError(f"{what} name {v[:80]!r} is empty or longer than {MAX_NAME_BYTES} bytes")
    return v


def _stat(v, dtype, column):
    if v is None:
        return None
    if dtype in FLOAT_DTYPES:
        if v == "inf":
            return math.inf
        if v == "-inf":
            return -math.inf
        if isinstance(v, float) or _is_int(v):
            return float(v)
    elif _is_int(v):
        if dtype in UNSIGNED_DTYPES and 0 <= v < 1 << 64:
            return v
        if dtype not in UNSIGNED_DTYPES and -(1 << 63) <= v < 1 << 63:
            return v
    raise SpillError(f"metadata is not valid: column {column[:80]!r}: bad stats value")


def _missing(what):
    raise SpillError(f"the file has no {what} column")


_ARROW_TYPES = {"f4": "float32", "f8": "float64", "i8": "int64", "i4": "int32", "u4": "uint32",
                "u1": "uint8"}


def _arrow_array(v):
    """A pyarrow array over the 1-D numpy view ``v`` without copying (it keeps ``v`` alive)."""
    import pyarrow as pa
    t = getattr(pa, _ARROW_TYPES[v.dtype.str[1:]])()
    return pa.Array.from_buffers(t, len(v), [None, pa.py_buffer(v)])


_MASK64 = (1 << 64) - 1


def splitmix64_permutation(n, seed):
    """The block order of ``batches(shuffle="blocks")``: ``list(range(n))`` permuted by
    Fisher-Yates (for i from n-1 down to 1: j = next() % (i + 1); swap i and j) with SplitMix64
    seeded with ``seed`` (state += 0x9E3779B97F4A7C15; z = state; z = (z ^ z >> 30) *
    0xBF58476D1CE4E5B9; z = (z ^ z >> 27) * 0x94D049BB133111EB; next = z ^ z >> 31, mod 2^64).
    The Rust iterator uses the same generator, so both shuffle alike."""
    order = list(range(n))
    state = int(seed) & _MASK64
    for i in range(n - 1, 0, -1):
        state = (state + 0x9E3779B97F4A7C15) & _MASK64
        z = state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
        j = (z ^ (z >> 31)) % (i + 1)
        order[i], order[j] = order[j], order[i]
    return order


def cut_blocks(ranges, block_rows):
    """``ranges`` (half-open row ranges) concatenated and cut into consecutive blocks of
    ``block_rows`` rows (the last may be shorter): a list of blocks, each a list of ranges."""
    if block_rows < 1:
        raise ValueError("block_rows must be at least 1")
    blocks, cur, room = [], [], block_rows
    for a, b in ranges:
        while a < b:
            take = min(room, b - a)
            cur.append((a, a + take))
            a += take
            room -= take
            if room == 0:
                blocks.append(cur)
                cur, room = [], block_rows
    if cur:
        blocks.append(cur)
    return blocks


def merge_runs(blocks):
    """A sequence of blocks as one list of ranges, adjacent ranges merged."""
    out = []
    for block in blocks:
        for a, b in block:
            if out and out[-1][1] == a:
                out[-1] = (out[-1][0], b)
            else:
                out.append((a, b))
    return out


def cut_sizes(ranges, sizes):
    """``ranges`` concatenated and cut into consecutive blocks of ``sizes[k]`` rows each (their sum
    is the rows of ``ranges``): a list of blocks, each a list of ranges."""
    blocks, pieces = [], iter((a, b) for a, b in ranges if b > a)
    a = b = 0
    for size in sizes:
        cur, room = [], int(size)
        while room > 0:
            if a == b:
                a, b = next(pieces)
            take = min(room, b - a)
            cur.append((a, a + take))
            a += take
            room -= take
        blocks.append(cur)
    return blocks


def pack_units(units, limit):
    """Whole cross-sections packed in order into groups of at most ``limit`` rows: a group takes
    the next unit (a count of rows, at least 1) while it stays within ``limit``; a unit of more
    than ``limit`` rows is a group alone. Returns ``(units_per_group, rows_per_group)``, int64
    arrays. The Rust iterator packs its blocks and batches by the same rule."""
    units = np.asarray(units, dtype=np.int64)
    ends = np.cumsum(units)
    counts, rows = [], []
    k, at = 0, 0
    while k < len(units):
        j = int(np.searchsorted(ends, at + limit, "right"))  # units ending within at + limit
        j = max(j, k + 1)
        counts.append(j - k)
        rows.append(int(ends[j - 1]) - at)
        k, at = j, int(ends[j - 1])
    return np.array(counts, dtype=np.int64), np.array(rows, dtype=np.int64)


def _is_row(v):
    """Whether ``v`` is an int (numpy's too), not a bool or a float."""
    return isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_))


_RANGES = "row ranges [(start, stop), ...]"
_TAKE_ROWS = "; arbitrary row indices go to take_rows(indices)"


def _row_ranges(ranges, nrows, caller):
    """``ranges`` (None: every row; one ``(start, stop)`` tuple; or an iterable of such pairs)
    as a list of ``(start, stop)`` ints within ``[0, nrows]``. TypeError for what is not row
    ranges (a list of row indices, floats), ValueError for a bad range, naming ``caller``."""
    if ranges is None:
        return [(0, nrows)]
    want = f"ranges must be {_RANGES}" if caller is None else f"{caller}() takes {_RANGES}"
    hint = _TAKE_ROWS if caller == "take" else ""
    if isinstance(ranges, tuple) and len(ranges) == 2 and all(map(_is_row, ranges)):
        ranges = [ranges]  # one (start, stop) pair
    elif isinstance(ranges, (str, bytes, dict)) or not hasattr(ranges, "__iter__"):
        raise TypeError(f"{want}, not {type(ranges).__name__} ({ranges!r:.80}){hint}")
    out = []
    for r in ranges:
        if _is_row(r):
            raise TypeError(f"{want}, not a list of row indices{hint}")
        if isinstance(r, (str, bytes, dict)) or not hasattr(r, "__len__"):
            raise TypeError(f"{want}; {r!r:.80} is not a (start, stop) pair")
        if len(r) != 2:
            raise ValueError(f"{want}; {tuple(r)!r:.80} has {len(r)} values, not (start, stop)")
        if not (_is_row(r[0]) and _is_row(r[1])):
            raise TypeError(f"{want}; the range {tuple(r)!r:.80} holds "
                            f"{type(r[0]).__name__} and {type(r[1]).__name__}, not ints")
        start, stop = int(r[0]), int(r[1])
        if not 0 <= start <= stop <= nrows:
            raise ValueError(f"row range ({start}, {stop}) is not within [0, {nrows}]")
        out.append((start, stop))
    return out


def _batch_args(batch_rows, block_rows, shuffle, seed):
    """``batches``' arguments checked: ``(batch_rows, block_rows, seed)`` as ints (block_rows
    defaults to batch_rows). TypeError for a wrong type (a float, a str), ValueError for a bad
    value."""
    for name, v in (("batch_rows", batch_rows), ("block_rows", block_rows), ("seed", seed)):
        if not _is_row(v) and not (v is None and name == "block_rows"):
            raise TypeError(f"{name} must be an int, not {type(v).__name__} ({v!r:.80})")
    if shuffle not in (None, "blocks"):
        raise ValueError(f"shuffle must be None or 'blocks', not {shuffle!r:.80}")
    block_rows = batch_rows if block_rows is None else block_rows
    for name, v in (("batch_rows", batch_rows), ("block_rows", block_rows)):
        if v < 1:
            raise ValueError(f"{name} must be at least 1, not {int(v)}")
    return int(batch_rows), int(block_rows), int(seed)


def _block_sequence(ranges, shuffle, block_rows, seed):
    """The (start, stop) runs of file rows that ``batches`` reads, in order."""
    ranges = [(a, b) for a, b in ranges if b > a]
    if shuffle is None:
        return ranges
    if shuffle != "blocks":
        raise ValueError(f"shuffle must be None or 'blocks', not {shuffle!r}")
    blocks = cut_blocks(ranges, block_rows)
    return merge_runs(blocks[k] for k in splitmix64_permutation(len(blocks), seed))


# ---------------------------------------------------------------------------------- loading
# Batches are read with pread (os.preadv), never through the mapping: the resident set then holds
# the batches and bounce buffers only, not file pages (whose size on first touch is the kernel's
# folio size, up to 2 MiB per column). The spillway package sets this to its native reader
# (spillway._native.read_rows: the same arguments, the GIL released, a tiled transposition);
# alone, this module reads with os.preadv and transposes with numpy.
_read_rows = None
# The spillway package sets this to spillway._native.take_rows (a gather without the GIL).
_take_rows = None

X_DTYPES = {"float32": np.dtype("<f4"), "float16": np.dtype("<f2"), "bfloat16": np.dtype("<u2")}
_BOUNCE_BYTES = 4 << 20  # the pure-Python reader's bounce buffer


def _pread_into(fd, buf, offset, what):
    """Fill the writable byte memoryview ``buf`` from ``fd`` at ``offset`` (short reads retried)."""
    done = 0
    while done < len(buf):
        n = os.preadv(fd, [buf[done:]], offset + done)
        if n == 0:
            raise SpillError(f"{what}: unexpected end of file at byte {offset + done}")
        done += n


def _row_indices(indices, nrows):
    """``indices`` (a 1-D array-like of ints) as an int64 array of rows of ``[0, nrows)``:
    TypeError for what is not ints, IndexError naming the first row out of range."""
    idx = np.asarray(indices)
    if idx.ndim != 1 or (idx.size and idx.dtype.kind not in "iu"):
        raise TypeError(f"indices must be a 1-D array of ints, not {idx.dtype} of shape "
                        f"{idx.shape}")
    idx = idx.astype(np.int64, copy=False)
    if idx.size and (int(idx.min()) < 0 or int(idx.max()) >= nrows):
        bad = int(idx.min()) if int(idx.min()) < 0 else int(idx.max())
        raise IndexError(f"row {bad} is not in [0, {nrows})")
    return idx


def _bfloat16_bits(x):
    """float32 values as bfloat16 bit patterns (uint16): rounded to nearest, ties to even; a NaN
    stays a quiet NaN."""
    u = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32)
    r = ((u + np.uint32(0x7FFF) + ((u >> 16) & np.uint32(1))) >> 16).astype(np.uint16)
    nan = np.isnan(x)
    if nan.any():
        r[nan] = ((u[nan] >> 16) | np.uint32(0x40)).astype(np.uint16)
    return r


def _check_chunks(fd, offset, col_bytes, r0, r1, itemsize, chunk_bytes, crcs, verified, name):
    """Checked reads: the CRC of every chunk of rows ``[r0, r1)`` not checked yet."""
    for k in range(r0 * itemsize // chunk_bytes, -(-r1 * itemsize // chunk_bytes)):
        if verified[k]:
            continue
        start, stop = k * chunk_bytes, min((k + 1) * chunk_bytes, col_bytes)
        buf = bytearray(stop - start)
        _pread_into(fd, memoryview(buf), offset + start, f"column {name!r}")
        actual = zlib.crc32(buf)
        if actual != crcs[k]:
            raise ValueError(f"column {name!r} rows [{start // itemsize}, {stop // itemsize}) "
                             f"(chunk {k}): checksum mismatch: stored {crcs[k]:#010x}, computed "
                             f"{actual:#010x}")
        verified[k] = 1


def _py_read_rows(fd, offsets, col_bytes, runs, out, at, dtype, itemsize=4, chunk_bytes=0,
                  crcs=None, verified=None, names=None):
    """What spillway._native.read_rows does, in numpy: rows ``runs`` of the columns at byte
    ``offsets`` (``itemsize`` bytes per value) into rows ``at...`` of the 2-D ``out``, converted to
    ``dtype`` ("float32", "float16", "bfloat16" from float32, or "raw"), chunk CRCs checked first
    when ``crcs`` is given (``verified[i][k]`` set once chunk k of column i is)."""
    src = out.dtype if dtype == "raw" else np.dtype("<f4")
    step = max(1, _BOUNCE_BYTES // (itemsize * max(1, len(offsets))))
    buf = np.empty((len(offsets), step), src)
    pos = at
    for a, b in runs:
        for r in range(a, b, step):
            m = min(step, b - r)
            for i, off in enumerate(offsets):
                if crcs is not None:
                    _check_chunks(fd, off, col_bytes, r, r + m, itemsize, chunk_bytes, crcs[i],
                                  verified[i], names[i])
                _pread_into(fd, memoryview(buf[i, :m]).cast("B"), off + r * itemsize,
                            f"column {names[i]!r}" if names else "spill file")
            part = buf[:, :m].T
            out[pos:pos + m] = _bfloat16_bits(part) if dtype == "bfloat16" else part
            pos += m


class _Recycler:
    """Fresh arrays for each batch, taken from batches handed out earlier that nothing references
    any more (the caller dropped them: only this pool holds them), else newly allocated. Writing
    a new 26 MB batch into new memory faults in every page of it; reusing a dropped one does not.
    An array the caller still holds, or any view, tensor or frame of it, is never reused."""

    def __init__(self, keep=2):
        self._pool, self._keep = [], keep
        self._ok = hasattr(sys, "getrefcount")

    def empty(self, shape, dtype):
        for i, a in enumerate(self._pool):
            # 2 references: the pool's list and getrefcount's argument.
            if a.shape == shape and a.dtype == dtype and sys.getrefcount(a) == 2:
                return self._pool.pop(i)
        return np.empty(shape, dtype=dtype)

    def handed_out(self, arrays):
        if self._ok:
            self._pool.extend(a for a in arrays if a is not None)
            del self._pool[:-self._keep * max(1, len(arrays))]


class _RowReader:
    """Reads rows of chosen columns of one spill file into batch arrays with pread, on its own
    descriptor of the file that was opened and validated (a file replaced since is not read)."""

    def __init__(self, f, names, extra, dtype, verify, pool=None):
        self._fd = -1
        if dtype not in X_DTYPES:
            raise ValueError(f"dtype must be one of {', '.join(X_DTYPES)}, not {dtype!r:.80}")
        self._x = [f.column_info(n) for n in names]
        # Columns of another dtype than float32 (float64 features, say) are read one at a time
        # and converted by numpy.
        self._fast = all(c.dtype_name == "f32" for c in self._x)
        self._extra = [None if n is None else f.column_info(n) for n in extra]
        self._dtype, self._xdtype = dtype, X_DTYPES[dtype]
        self._nrows, self._chunk = f.nrows, f.chunk_bytes
        self._verified = f._verified if verify else None
        # The read calls' arguments, made once rather than per batch.
        self._xargs = self._args(self._x) if self._x and self._fast else None
        self._eargs = [None if c is None else self._args([c]) for c in self._extra]
        self._fd = os.dup(f._file())
        self._pool = _Recycler() if pool is None else pool

    @property
    def ncols(self):
        return len(self._x)

    def _args(self, cols):
        """``read_rows``' arguments for ``cols`` but the runs and the output."""
        size = cols[0].dtype.itemsize
        kw = dict(names=[c.name for c in cols])
        if self._verified is not None:
            kw.update(chunk_bytes=self._chunk, crcs=[c.checksums for c in cols],
                      verified=[self._verified.setdefault(c.name, bytearray(len(c.checksums)))
                                for c in cols])
        return [c.offset for c in cols], self._nrows * size, size, kw

    def _read(self, args, runs, out, at, dtype):
        offsets, col_bytes, size, kw = args
        try:
            (_read_rows or _py_read_rows)(self._fd, offsets, col_bytes, runs, out, at, dtype,
                                          size, **kw)
        except ValueError as e:
            if "checksum mismatch" in str(e):
                raise SpillError(str(e)) from None
            raise

    def empty(self, n, out=None):
        """The arrays of a batch of ``n`` rows (X into ``out[:n]`` when given)."""
        if out is not None:
            X = out[:n]
        else:
            X = self._pool.empty((n, len(self._x)), self._xdtype)
        ones = [None if c is None else self._pool.empty(
            (n,), np.dtype("<f4") if c.role == "target" else c.dtype) for c in self._extra]
        return [X, *ones]

    def read_into(self, arrays, runs, at):
        """Rows ``runs`` into rows ``at...`` of each batch array."""
        n = sum(b - a for a, b in runs)
        if self._xargs is not None:
            self._read(self._xargs, runs, arrays[0], at, self._dtype)
        elif self._x:
            for j, c in enumerate(self._x):
                v = self._column(c, runs, n).astype(np.float32)
                arrays[0][at:at + n, j] = _bfloat16_bits(v) if self._dtype == "bfloat16" else v
        for c, args, a in zip(self._extra, self._eargs, arrays[1:]):
            if c is None:
                continue
            if c.role == "target" and c.dtype_name != "f32":  # narrowed to float32
                a[at:at + n] = self._column(c, runs, n)
            else:
                self._read(args, runs, a.reshape(-1, 1), at, "raw")

    def _column(self, c, runs, n):
        tmp = np.empty((n, 1), c.dtype)
        self._read(self._args([c]), runs, tmp, 0, "raw")
        return tmp[:, 0]

    def read(self, runs, n, out=None):
        arrays = self.empty(n, out)
        self.read_into(arrays, runs, 0)
        batch = tuple(arrays)
        if out is None:
            self._pool.handed_out(batch)
        else:
            self._pool.handed_out(batch[1:])
        return batch

    def close(self):
        fd, self._fd = self._fd, -1
        if fd >= 0:
            os.close(fd)

    def __del__(self):
        self.close()


# ---------------------------------------------------------------------------------- dealing
class _Plan:
    """An epoch's global batches: their sizes and offsets in the (shuffled) row sequence, and the
    source row runs of each (SPEC.md "Batches")."""

    def __init__(self, segments, batch_rows, sizes=None):
        self.segments = [(a, b) for a, b in segments if b > a]
        self.starts = np.concatenate([[0], np.cumsum([b - a for a, b in self.segments],
                                                     dtype=np.int64)]).astype(np.int64)
        self.total = int(self.starts[-1])
        self.batch_rows = batch_rows
        if sizes is None:
            self.sizes = self.offsets = None
            self.n = -(-self.total // batch_rows)
            self.partial = self.total % batch_rows != 0
        else:
            self.sizes = np.asarray(sizes, dtype=np.int64)
            self.offsets = np.concatenate([[0], np.cumsum(self.sizes)]).astype(np.int64)
            self.n, self.partial = len(self.sizes), False

    def span(self, g):
        """``(offset, size)`` of global batch ``g`` in the sequence."""
        if self.sizes is None:
            o = g * self.batch_rows
            return o, min(self.batch_rows, self.total - o)
        return int(self.offsets[g]), int(self.sizes[g])

    def runs(self, g):
        """The source row ranges of global batch ``g``, in order."""
        o, s = self.span(g)
        i = int(np.searchsorted(self.starts, o, "right")) - 1
        out, end = [], o + s
        while o < end:
            a, b = self.segments[i]
            start = a + o - int(self.starts[i])
            take = min(b - start, end - o)
            out.append((start, start + take))
            o += take
            i += 1
        return out

    def rows(self, batches):
        """The source rows of the global ``batches``, adjacent runs merged."""
        return merge_runs(self.runs(g) for g in batches)


class _Deal:
    """Which global batches one (rank, worker) yields from cursor ``cursor``, and the batches
    dropped or padded to give every rank and worker the same count (SPEC.md "Batches")."""

    def __init__(self, plan, cursor, rank, world, worker, workers, drop_last, pad):
        n, u = plan.n, world * workers
        if drop_last and pad:
            raise ValueError("drop_last and pad exclude each other")
        if u > 1 and not (drop_last or pad):
            raise ValueError(f"world_size x num_workers = {u} > 1: pass drop_last=True or "
                             "pad=True so every rank and worker gets the same number of batches")
        usable = n - 1 if drop_last and plan.partial else n
        if drop_last:
            k = max(usable - cursor, 0) // u * workers
        elif pad:
            k = -(-max(n - cursor, 0) // u) * workers
        else:
            k = max(n - cursor, 0)
        self.n, self.cursor, self.local = n, cursor, k
        self.world, self.rank, self.workers, self.worker = world, rank, workers, worker
        self.mine = [cursor + j * world + rank for j in range(worker, k, workers)]
        end = cursor + k * world
        self.dropped = list(range(end, n)) if drop_last else []
        self.padded = [(i - n) % n for i in range(max(n, cursor), end)] if pad else []

    def batch(self, idx):
        """The global batch a dealt index reads (a padded index wraps to the epoch's start)."""
        return idx if idx < self.n else (idx - self.n) % self.n


_STATE_KEYS = ("spillway_batches", "fingerprint", "rows", "batch_rows", "shuffle", "block_rows",
               "seed", "epoch", "whole_timestamps", "batches", "cursor", "rank", "world_size",
               "worker", "num_workers", "worker_batches")
_STATE_MATCH = ("fingerprint", "rows", "batch_rows", "shuffle", "block_rows", "seed",
                "whole_timestamps", "batches")


def _fingerprint(text):
    import hashlib
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _ranges_text(ranges):
    return ",".join(f"{a}-{b}" for a, b in ranges if b > a)


def _check_state(state, want):
    """A saved state checked against this call's ``want`` (the _STATE_MATCH fields, epoch)."""
    if not isinstance(state, Mapping) or state.get("spillway_batches") != 1:
        raise ValueError("state must be a dict from Batches.state_dict() (spillway_batches: 1)")
    missing = [k for k in _STATE_KEYS if k not in state]
    if missing:
        raise ValueError(f"state is missing {', '.join(missing)}")
    for k in _STATE_MATCH:
        if state[k] != want[k]:
            if k == "fingerprint":
                raise ValueError("the state belongs to another file or another selection of rows "
                                 f"(fingerprint {state[k]!r:.40}, this one {want[k]!r})")
            raise ValueError(f"the state was saved with {k}={state[k]!r:.40}, this call has "
                             f"{k}={want[k]!r}")
    if want["epoch"] is not None and state["epoch"] != want["epoch"]:
        raise ValueError(f"the state is of epoch {state['epoch']!r:.40}, this call asks for epoch "
                         f"{want['epoch']}")
    for k in ("cursor", "rank", "world_size", "worker", "num_workers", "worker_batches", "epoch"):
        if not _is_row(state[k]) or state[k] < 0:
            raise ValueError(f"state field {k} must be a non-negative int, not {state[k]!r:.40}")
    if state["cursor"] > state["batches"]:
        raise ValueError(f"state cursor {state['cursor']} is past the epoch's "
                         f"{state['batches']} batches")


class Batches:
    """The iterator :meth:`SpillFile.batches` returns: batches (tuples of arrays) of one rank and
    worker, ``len()`` the batches still to come, :meth:`state_dict` a small JSON-able dict to
    resume from (``batches(..., state=...)``), and what was dropped or padded to even the ranks
    out: ``dropped`` and ``padded``, source row ranges, the same on every rank."""

    def __init__(self, plan, deal, skip, base, produce):
        self._plan, self._deal, self._base = plan, deal, base
        self._k = skip
        self._it = produce(deal.mine[skip:])
        self.epoch, self.rank, self.world_size = base["epoch"], deal.rank, deal.world
        self.dropped = plan.rows(deal.dropped)
        self.padded = plan.rows(deal.padded)

    def __iter__(self):
        return self

    def __next__(self):
        batch = next(self._it)
        self._k += 1
        return batch

    def __len__(self):
        return len(self._deal.mine) - self._k

    def state_dict(self):
        """Where this iterator is, as a dict of ints, strings and bools (under 1 KiB of JSON):
        pass it as ``state=`` to the same ``batches(...)`` call to continue exactly here (at the
        same world size), or at another world size (every batch not yet delivered is delivered
        once). A worker's state (``num_workers > 1``) resumes only that worker; merge the workers'
        states with :func:`merge_states` to change world size or workers."""
        d = self._deal
        done = self._k >= len(d.mine)
        if d.workers == 1:
            cursor, wb = (d.n if done else d.cursor + self._k * d.world), 0
        else:
            cursor, wb = (d.n, 0) if done else (d.cursor, self._k)
        return {**self._base, "cursor": cursor, "rank": d.rank, "world_size": d.world,
                "worker": d.worker, "num_workers": d.workers, "worker_batches": wb}


def _deal_args(rank, world_size, worker, num_workers, drop_last, pad):
    for name, v in (("rank", rank), ("world_size", world_size), ("worker", worker),
                    ("num_workers", num_workers)):
        if not _is_row(v):
            raise TypeError(f"{name} must be an int, not {type(v).__name__} ({v!r:.80})")
    if world_size < 1 or not 0 <= rank < world_size:
        raise ValueError(f"need 0 <= rank < world_size, not rank={rank}, world_size={world_size}")
    if num_workers < 1 or not 0 <= worker < num_workers:
        raise ValueError(f"need 0 <= worker < num_workers, not worker={worker}, "
                         f"num_workers={num_workers}")
    return int(rank), int(world_size), int(worker), int(num_workers), bool(drop_last), bool(pad)


def _start(base, plan, state, rank, world, worker, workers, drop_last, pad):
    """The ``(deal, skip)`` of a call: from the beginning, or from ``state``."""
    cursor, skip = 0, 0
    if state is not None:
        _check_state(state, base)
        cursor = state["cursor"]
        if state["num_workers"] > 1 and cursor < state["batches"]:
            same = (state["world_size"], state["num_workers"], state["rank"], state["worker"])
            if same != (world, workers, rank, worker):
                raise ValueError("a worker's state resumes only the same worker at the same "
                                 "world_size and num_workers; merge the workers' states first "
                                 "(merge_states)")
            skip = state["worker_batches"]
    deal = _Deal(plan, cursor, rank, world, worker, workers, drop_last, pad)
    if skip > len(deal.mine):
        raise ValueError(f"state says the worker yielded {skip} batches of its "
                         f"{len(deal.mine)}")
    return deal, skip


def _epoch_of(epoch, state):
    """The epoch of a ``batches`` call: ``epoch``, else the state's, else 0."""
    if epoch is None:
        epoch = state.get("epoch", 0) if isinstance(state, Mapping) else 0
    if not _is_row(epoch) or epoch < 0:
        raise TypeError(f"epoch must be a non-negative int, not {epoch!r:.80}")
    return int(epoch)


def _base_state(key, plan, shuffle, block_rows, seed, epoch, whole):
    """The state fields fixed by a ``batches`` call (the key identifies file and rows)."""
    return {"spillway_batches": 1, "fingerprint": _fingerprint(key), "rows": plan.total,
            "batch_rows": plan.batch_rows, "shuffle": shuffle,
            "block_rows": block_rows if shuffle else None, "seed": seed if shuffle else 0,
            "epoch": epoch,
            "whole_timestamps": bool(whole), "batches": plan.n}


def _check_out(out, plan, ncols, dtype):
    if out is None:
        return
    rows = plan.batch_rows if plan.sizes is None else int(plan.sizes.max(initial=0))
    if not isinstance(out, np.ndarray) or out.dtype != X_DTYPES[dtype] or out.ndim != 2 or \
            not out.flags.c_contiguous or not out.flags.writeable:
        raise TypeError(f"out must be a writable C-contiguous 2-D numpy array of "
                        f"{X_DTYPES[dtype]} ({dtype})")
    if out.shape[0] < rows or out.shape[1] != ncols:
        raise ValueError(f"out has shape {out.shape}; the batches need ({rows}, {ncols}) at least")


def merge_states(states):
    """The states of every DataLoader worker of ONE rank (``num_workers`` of them, saved
    together) as one rank state, which resumes at any world size and number of workers. Raises
    ValueError unless they are one consistent snapshot (same epoch and cursor, one per worker,
    the delivered batches a prefix of the rank's sequence, as an in-order DataLoader gives)."""
    states = list(states)
    if not states:
        raise ValueError("merge_states needs the states of every worker of a rank")
    first = states[0]
    v = first.get("num_workers") if isinstance(first, Mapping) else None
    if v == 1 and len(states) == 1:
        return dict(first)
    if not _is_row(v) or len(states) != v or sorted(s.get("worker") for s in states) != \
            list(range(v)):
        raise ValueError(f"merge_states needs one state per worker (num_workers={v!r:.20}), "
                         f"got {len(states)}")
    for s in states:
        _check_state(s, {**{k: first[k] for k in _STATE_MATCH}, "epoch": first["epoch"]})
        if (s["world_size"], s["rank"]) != (first["world_size"], first["rank"]):
            raise ValueError("merge_states: the states are of different ranks or world sizes")
    n = first["batches"]
    live = {s["worker"]: s["worker_batches"] for s in states if s["cursor"] < n}
    out = {**first, "worker": 0, "num_workers": 1, "worker_batches": 0}
    if not live:
        return {**out, "cursor": n}
    cursors = {s["cursor"] for s in states if s["cursor"] < n}
    if len(cursors) != 1:
        raise ValueError("merge_states: the workers' states start from different cursors")
    full = max(live.values()) + 1  # a finished worker yielded one more than any unfinished one
    counts = [live.get(w, full) for w in range(v)]
    k = sum(counts)
    if any(c != -(-(k - w) // v) for w, c in enumerate(counts)):
        raise ValueError(f"merge_states: the workers yielded {counts} batches, not a prefix of "
                         "the rank's sequence (save the states of one snapshot)")
    return {**out, "cursor": cursors.pop() + k * first["world_size"]}


def _u64_array(v, what):
    """A JSON array of unsigned 64-bit integers as a numpy uint64 array."""
    if not isinstance(v, list) or not all(type(x) is int for x in v):
        raise SpillError(f"metadata is not valid: {what} is not an array of unsigned integers")
    if v and (min(v) < 0 or max(v) >= 1 << 64):
        raise SpillError(f"metadata is not valid: {what} is not an array of unsigned integers")
    return np.array(v, dtype=np.uint64)


def _timestamps_raw(t):
    """The stored index's fields, typed and within their caps: (count, first, steps, rows)."""
    if not isinstance(t, dict) or not all(k in t for k in ("count", "first", "steps", "rows")):
        raise SpillError("metadata is not valid: timestamps is not {count, first, steps, rows}")
    count = _u64(t["count"], "timestamps count")
    first = t["first"]
    if not _is_int(first) or not -(1 << 63) <= first < 1 << 63:
        raise SpillError("metadata is not valid: timestamps first is not a signed 64-bit integer")
    steps, rows = _u64_array(t["steps"], "timestamps steps"), _u64_array(t["rows"], "timestamps rows")
    if count > MAX_ROWS:
        raise SpillError(f"timestamp count is {count}, over the cap of {MAX_ROWS}")
    for what, runs in (("step", steps), ("row", rows)):
        if len(runs) // 2 > MAX_TIMESTAMP_RUNS:
            raise SpillError(f"timestamp {what} runs is {len(runs) // 2}, over the cap of "
                             f"{MAX_TIMESTAMP_RUNS}")
    return count, first, steps, rows


def _bad_index(why):
    return SpillError(f"timestamp index: {why}")


class Timestamps:
    """The timestamp index of a time-major file (format 1.2): ``len(ts)`` distinct times, strictly
    increasing, and each one's rows, which tile ``[0, nrows)`` in order. Stored run-length encoded
    (SPEC.md, "Timestamp index"); the numpy arrays are expanded on first use:

    - ``times``: int64 UTC nanoseconds, one per timestamp;
    - ``starts``, ``counts``: each timestamp's first row and row count (int64);
    - ``bounds``: ``starts`` followed by ``nrows`` (the cross-section boundaries).

    ``ts[i]`` and iteration give ``(time, (start, stop))``; ``find(t)`` the index of time ``t``."""

    def __init__(self, count, first, steps, rows):
        """Validates the stored runs (caps already checked), as the Rust reader does."""
        if len(steps) % 2 or len(rows) % 2:
            raise _bad_index("steps and rows must each hold (value, n) pairs: an even number of "
                             "integers")
        self._len, self._first = count, first
        self._steps, self._step_n = steps[0::2], steps[1::2]
        self._rows, self._rows_n = rows[0::2], rows[1::2]
        self._cache = {}
        if count == 0:
            if first != 0 or len(steps) or len(rows):
                raise _bad_index("an index of 0 timestamps has first 0 and no runs")
            self.nrows = 0
            return
        for what, v, n in (("step", self._steps, self._step_n), ("row", self._rows, self._rows_n)):
            zero = np.flatnonzero((v == 0) | (n == 0))
            if len(zero):
                k = int(zero[0])
                raise _bad_index(f"{what} run {k} is ({int(v[k])}, {int(n[k])}): a {what} value "
                                 "and a run length are at least 1")
            if what == "step":
                span = sum(map(int.__mul__, v.tolist(), n.tolist()))
                if first + span >= 1 << 63:
                    raise _bad_index("the step runs run past the largest int64 time")
                covered = sum(n.tolist())
                if covered != count - 1:
                    raise _bad_index(f"the step runs cover {covered} differences; {count} "
                                     f"timestamps have {count - 1}")
        covered = sum(self._rows_n.tolist())
        if covered != count:
            raise _bad_index(f"the row runs cover {covered} timestamps; the index has {count}")
        total = sum(map(int.__mul__, self._rows.tolist(), self._rows_n.tolist()))
        if total > MAX_ROWS:
            raise SpillError(f"rows of the timestamp index is {total}, over the cap of {MAX_ROWS}")
        self.nrows = total

    def __len__(self):
        return self._len

    def _array(self, name):
        if name not in self._cache:
            if name == "times":
                rel = np.cumsum(np.repeat(self._steps, self._step_n.astype(np.int64)),
                                dtype=np.uint64)
                out = np.empty(self._len, dtype=np.int64)
                if self._len:
                    out[0] = self._first
                    # Validated: first + every step stays within int64; wrapping adds exactly.
                    with np.errstate(over="ignore"):
                        out[1:] = rel.view(np.int64) + np.int64(self._first)
            elif name == "counts":
                out = np.repeat(self._rows.astype(np.int64), self._rows_n.astype(np.int64))
            else:  # bounds
                out = np.zeros(self._len + 1, dtype=np.int64)
                np.cumsum(self._array("counts"), out=out[1:])
            out.flags.writeable = False
            self._cache[name] = out
        return self._cache[name]

    times = property(lambda self: self._array("times"), doc="int64 ns, one per timestamp")
    counts = property(lambda self: self._array("counts"), doc="rows of each timestamp (int64)")
    bounds = property(lambda self: self._array("bounds"), doc="starts, then nrows (int64)")
    starts = property(lambda self: self._array("bounds")[:-1], doc="first row of each timestamp")

    def time(self, i):
        """The time of timestamp ``i`` (int ns)."""
        return int(self.times[i])

    def range(self, i):
        """The rows ``(start, stop)`` of timestamp ``i``."""
        i = range(self._len)[i]
        return int(self.bounds[i]), int(self.bounds[i + 1])

    def __getitem__(self, i):
        return self.time(i), self.range(i)

    def __iter__(self):
        times, bounds = self.times.tolist(), self.bounds.tolist()
        for i, t in enumerate(times):
            yield t, (bounds[i], bounds[i + 1])

    def find(self, t):
        """The index of the timestamp at exactly ``t`` (int ns), or None."""
        i = int(np.searchsorted(self.times, t, "left"))
        return i if i < self._len and int(self.times[i]) == t else None

    def first_at_or_after(self, t):
        """The first timestamp at or after ``t`` (``len(self)`` if none)."""
        return int(np.searchsorted(self.times, t, "left"))

    def boundary(self, row):
        """The timestamp whose rows start at ``row`` (``len(self)`` for ``nrows``); raises
        SpillError when ``row`` is inside a cross-section."""
        i = int(np.searchsorted(self.bounds, row, "left"))
        if i > self._len or int(self.bounds[i]) != row:
            raise SpillError(f"row {row} is not a timestamp boundary (ranges of whole "
                             "cross-sections start and stop where a timestamp's rows start, or at "
                             "the end)")
        return i

    def _units(self, ranges):
        """The rows of each timestamp of each non-empty range (ranges on boundaries only)."""
        parts = [self.counts[self.boundary(a):self.boundary(b)] for a, b in ranges if b > a]
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)

    def _pieces(self, ranges):
        """``(index, rows)`` of each timestamp each non-empty range (any rows) touches, in order."""
        idx, rows = [], []
        bounds = self.bounds
        for a, b in ranges:
            if b <= a:
                continue
            i0 = int(np.searchsorted(bounds, a, "right")) - 1
            i1 = int(np.searchsorted(bounds, b - 1, "right")) - 1
            idx.append(np.arange(i0, i1 + 1, dtype=np.int64))
            rows.append(np.minimum(bounds[i0 + 1:i1 + 2], b) - np.maximum(bounds[i0:i1 + 1], a))
        if not idx:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
        return np.concatenate(idx), np.concatenate(rows)

    def __repr__(self):
        return f"Timestamps({self._len} timestamps, {self.nrows} rows)"


class _TimestampRanges(Mapping):
    """``time -> (start, stop)`` over the index, by binary search (nothing built per timestamp).
    Keys: int ns or any time bound :meth:`SpillFile.time_ranges` takes."""

    def __init__(self, ts, to_ns):
        self._ts, self._to_ns = ts, to_ns

    def __getitem__(self, t):
        i = self._ts.find(self._to_ns(t))
        if i is None:
            raise KeyError(t)
        return self._ts.range(i)

    def __iter__(self):
        return iter(self._ts.times.tolist())

    def __len__(self):
        return len(self._ts)


def _moment(v, column):
    """A 1.1 ``mean``/``std`` statistic: a JSON number or null (absent in 1.0 files)."""
    if v is None:
        return None
    if isinstance(v, float) or _is_int(v):
        return float(v)
    raise SpillError(f"metadata is not valid: column {column[:80]!r}: bad stats mean/std")


class Column:
    """One column's metadata: name, dtype (numpy), role, offset, length, checksums, stats
    (``min``, ``max``, ``nan_count``; format 1.1: ``mean``, ``std``, the population mean and standard
    deviation of the finite values, None when absent), and for a time column (1.1) ``unit`` and
    ``timezone``."""

    __slots__ = ("name", "dtype_name", "dtype", "role", "offset", "length", "checksums", "min", "max",
                 "nan_count", "mean", "std", "unit", "timezone")

    def __repr__(self):
        return f"Column({self.name!r}, {self.dtype_name}, role={self.role}, offset={self.offset})"


class SpillFile:
    """A validated, memory-mapped spill file. Use :func:`open`."""

    def __init__(self, path):
        self.path = os.fspath(path)
        self._mmap = None
        # Kept open: batches read this file (the one validated) with pread, even if the path is
        # replaced meanwhile.
        self._fh = builtins_open(self.path, "rb")
        self._verified = {}  # column name -> one byte per chunk: its CRC checked (verify=True)
        try:
            size = os.fstat(self._fh.fileno()).st_size
            if size < MIN_FILE_LEN:
                raise SpillError(f"file is {size} bytes, shorter than the smallest spill file "
                                 f"({MIN_FILE_LEN} bytes): truncated or not a spill file")
            self._mmap = mmap.mmap(self._fh.fileno(), 0, access=mmap.ACCESS_READ)
            self._validate(self._mmap)
        except BaseException:
            self.close()
            raise

    # ------------------------------------------------------------------ validation (SPEC order)
    def _validate(self, buf):
        size = len(buf)
        magic, major, minor, align = struct.unpack_from("<8sHHI", buf, 0)
        if magic != MAGIC:
            raise SpillError("not a spill file (bad magic at offset 0)")
        if align != ALIGN:
            raise SpillError(f"header alignment field is {align}, expected 4096")
        if major != VERSION_MAJOR:
            raise SpillError(f"format version {major}.{minor} is not supported "
                             f"(this reader reads {VERSION_MAJOR}.x)")
        t = bytes(buf[size - TRAILER_LEN:])
        if t[56:64] != TRAILER_MAGIC:
            raise SpillError("no trailer magic at the end of the file: incomplete (never committed) "
                             "or truncated")
        (meta_off, meta_len, file_len, required, t_major, t_minor, algo, meta_crc, r0, t_crc,
         r1) = struct.unpack_from("<QQQQHHIIIII", t, 0)
        if zlib.crc32(t[0:48]) != t_crc:
            raise SpillError("trailer checksum mismatch")
        if r0 != 0 or r1 != 0:
            raise SpillError("reserved trailer bytes are not zero")
        if (t_major, t_minor) != (major, minor):
            raise SpillError(f"header says version {major}.{minor}, trailer says {t_major}.{t_minor}")
        if required & ~KNOWN_REQUIRED_FEATURES:
            raise SpillError(f"file requires features {required & ~KNOWN_REQUIRED_FEATURES:#x} that this "
                             "reader does not know; upgrade the reader")
        if algo != CHECKSUM_CRC32:
            raise SpillError(f"unknown checksum algorithm id {algo}")
        if file_len != size:
            raise SpillError(f"trailer records a file length of {file_len} bytes but the file has "
                             f"{size}: truncated or appended to")
        if meta_len > MAX_METADATA_BYTES:
            raise SpillError(f"metadata length is {meta_len}, over the cap of {MAX_METADATA_BYTES}")
        if meta_off < HEADER_LEN or meta_off + meta_len + TRAILER_LEN != size:
            raise SpillError(f"metadata block at offset {meta_off} length {meta_len} does not end at "
                             f"the trailer (file of {size} bytes)")
        raw = bytes(buf[meta_off:meta_off + meta_len])
        if zlib.crc32(raw) != meta_crc:
            raise SpillError("metadata checksum mismatch: metadata is corrupt")
        self._parse_metadata(_parse_json(raw), meta_off, required)
        self._meta_crc = meta_crc
        self.version = (major, minor)
        self.file_len = size

    def _parse_metadata(self, m, data_end, required):
        for key in ("nrows", "chunk_bytes", "columns", "symbols"):
            if key not in m:
                raise SpillError(f"metadata is not valid: missing field {key!r}")
        nrows = _u64(m["nrows"], "nrows")
        chunk = _u64(m["chunk_bytes"], "chunk_bytes")
        cols, syms = m["columns"], m["symbols"]
        build = m.get("build", {})
        if not isinstance(cols, list) or not isinstance(syms, list) or not isinstance(build, dict):
            raise SpillError("metadata is not valid: columns/symbols must be arrays, build an object")
        if nrows > MAX_ROWS:
            raise SpillError(f"row count is {nrows}, over the cap of {MAX_ROWS}")
        if len(cols) > MAX_COLUMNS:
            raise SpillError(f"column count is {len(cols)}, over the cap of {MAX_COLUMNS}")
        if len(syms) > MAX_SYMBOLS:
            raise SpillError(f"symbol count is {len(syms)}, over the cap of {MAX_SYMBOLS}")
        if chunk & (chunk - 1) or not MIN_CHUNK_BYTES <= chunk <= MAX_CHUNK_BYTES:
            raise SpillError(f"chunk_bytes {chunk} is not a power of two between 4096 and 2^30")
        raw_index = m.get("timestamps")
        if raw_index is not None:
            raw_index = _timestamps_raw(raw_index)
        order = m.get("order", "symbol")
        if not isinstance(order, str):
            raise SpillError("metadata is not valid: order is not a string")
        if order not in ORDERS:
            raise SpillError(f"row order {order[:80]!r} is unknown (this reader knows \"symbol\" "
                             "and \"time\")")

        columns = []
        for c in cols:
            if not isinstance(c, dict):
                raise SpillError("metadata is not valid: a column is not an object")
            for key in ("name", "dtype", "offset", "length", "checksums", "stats"):
                if key not in c:
                    raise SpillError(f"metadata is not valid: column missing field {key!r}")
            col = Column()
            if not isinstance(c["name"], str) or not isinstance(c["dtype"], str):
                raise SpillError("metadata is not valid: column name and dtype must be strings")
            col.name = c["name"]
            col.dtype_name = c["dtype"]
            role = c.get("role")
            if role is not None and not isinstance(role, str):
                raise SpillError("metadata is not valid: column role must be a string")
            col.role = role if role in ROLES else "other"
            col.offset = _u64(c["offset"], "column offset")
            col.length = _u64(c["length"], "column length")
            sums = c["checksums"]
            if not isinstance(sums, list) or not all(_is_int(x) and 0 <= x < 1 << 32 for x in sums):
                raise SpillError("metadata is not valid: checksums must be u32 integers")
            col.checksums = sums
            if col.dtype_name not in DTYPES:
                raise SpillError(f"column {col.name[:80]!r} has unknown dtype {col.dtype_name[:80]!r}")
            col.dtype = DTYPES[col.dtype_name]
            st = c["stats"]
            if not isinstance(st, dict) or "min" not in st or "max" not in st:
                raise SpillError(f"metadata is not valid: column {col.name[:80]!r}: bad stats")
            col.min = _stat(st["min"], col.dtype_name, col.name)
            col.max = _stat(st["max"], col.dtype_name, col.name)
            nan = st.get("nan_count")
            if (col.dtype_name in FLOAT_DTYPES) != (nan is not None):
                raise SpillError(f"metadata is not valid: column {col.name[:80]!r}: bad stats nan_count")
            col.nan_count = None if nan is None else _u64(nan, "nan_count")
            col.mean = _moment(st.get("mean"), col.name)
            col.std = _moment(st.get("std"), col.name)
            col.unit = c.get("unit")
            col.timezone = c.get("timezone")
            if col.unit is not None and not isinstance(col.unit, str) or \
                    col.timezone is not None and not isinstance(col.timezone, str):
                raise SpillError(f"metadata is not valid: column {col.name[:80]!r}: unit and "
                                 "timezone must be strings")
            columns.append(col)

        seen = set()
        for col in columns:
            _name(col.name, "column")
            if col.name in seen:
                raise SpillError(f"duplicate column name {col.name[:80]!r}")
            seen.add(col.name)
            if col.offset % ALIGN:
                raise SpillError(f"column {col.name[:80]!r} starts at offset {col.offset}, "
                                 "not a multiple of 4096")
            expected = nrows * col.dtype.itemsize
            if col.length != expected:
                raise SpillError(f"column {col.name[:80]!r} has {col.length} bytes, expected {expected}")
            end = col.offset + col.length
            if col.offset < HEADER_LEN or end > data_end:
                raise SpillError(f"column {col.name[:80]!r} region [{col.offset}, {end}) is outside the "
                                 f"data area [4096, {data_end})")
            want = -(-col.length // chunk)
            if len(col.checksums) != want:
                raise SpillError(f"column {col.name[:80]!r} lists {len(col.checksums)} chunk checksums, "
                                 f"expected {want}")
        regions = sorted((c.offset, c.length, c.name) for c in columns if c.length > 0)
        for a, b in zip(regions, regions[1:]):
            if a[0] + a[1] > b[0]:
                raise SpillError(f"columns {a[2][:80]!r} and {b[2][:80]!r} overlap")

        symbols, ranges, seen, nxt = [], {}, set(), 0
        for s in syms:
            if not isinstance(s, dict) or "name" not in s:
                raise SpillError("metadata is not valid: a symbol is not {name, start, stop}")
            name = _name(s["name"], "symbol")
            if name in seen:
                raise SpillError(f"duplicate symbol name {name[:80]!r}")
            seen.add(name)
            start, stop = s.get("start"), s.get("stop")
            if order == "time":
                if start is not None or stop is not None:
                    raise SpillError(f"symbol {name[:80]!r} has a row range in a time-major file: "
                                     "its symbols carry names only")
                symbols.append(name)
                continue
            if start is None or stop is None:
                raise SpillError(f"metadata is not valid: symbol {name[:80]!r} has no start and "
                                 "stop")
            start, stop = _u64(start, "symbol start"), _u64(stop, "symbol stop")
            if start != nxt or stop < start or stop > nrows:
                raise SpillError(f"symbol {name[:80]!r} range [{start}, {stop}) does not continue the "
                                 f"tiling at row {nxt} of {nrows}")
            symbols.append(name)
            ranges[name] = (start, stop)
            nxt = stop
        if order == "symbol" and nxt != nrows:
            raise SpillError(f"symbol ranges end at row {nxt}, the file has {nrows} rows")

        if (order == "time") != (raw_index is not None):
            raise _bad_index("a time-major file has no timestamp index" if order == "time" else
                             "a symbol-major file has a timestamp index")
        index = None if raw_index is None else Timestamps(*raw_index)
        if index is not None and index.nrows != nrows:
            raise SpillError(f"the timestamp index covers {index.nrows} rows, the file has {nrows}")
        bit = bool(required & FEATURE_TIME_ORDER)
        if bit != (order == "time"):
            raise SpillError(f"the metadata says the rows are {order}-major but required-feature "
                             f"bit 0 is {'set' if bit else 'clear'}: a time-major file sets it, "
                             "and only a time-major file")

        self.nrows = nrows
        self.order = order
        self._timestamps = index
        self.chunk_bytes = chunk
        self._columns = columns
        self._index = {c.name: i for i, c in enumerate(columns)}
        self.symbols = symbols
        self._symbol_ranges = ranges
        self.metadata = build

    # ------------------------------------------------------------------ access
    @property
    def columns(self):
        """Column names in stored order."""
        return [c.name for c in self._columns]

    def column_info(self, name):
        """The :class:`Column` metadata of ``name`` (KeyError if absent)."""
        return self._columns[self._index[name]]

    def columns_with_role(self, role):
        """Names of the columns with ``role`` ("time", "symbol", "target", "feature", "other")."""
        return [c.name for c in self._columns if c.role == role]

    def column(self, name):
        """The column as a read-only 1-D numpy view backed by the mapping (no copy)."""
        c = self.column_info(name)
        return np.frombuffer(self._map(), dtype=c.dtype, count=self.nrows, offset=c.offset)

    def features(self, names=None, copy=False):
        """The feature columns (or ``names``, in that order) as one read-only 2-D view of shape
        (nrows, len(names)) backed by the mapping, without copying: columns of one dtype stored at
        a constant stride. If they are not, this raises SpillError unless ``copy=True``."""
        names = self.columns_with_role("feature") if names is None else list(names)
        cols = [self.column_info(n) for n in names]
        if not cols:
            empty = np.empty((self.nrows, 0), dtype=np.float32)
            empty.flags.writeable = False
            return empty
        dt = cols[0].dtype
        stride = cols[1].offset - cols[0].offset if len(cols) > 1 else cols[0].length
        ok = (all(c.dtype == dt for c in cols)
              and all(b.offset - a.offset == stride for a, b in zip(cols, cols[1:]))
              and stride >= cols[0].length and stride % dt.itemsize == 0)
        if not ok:
            if copy:
                return np.stack([self.column(n) for n in names], axis=1)
            raise SpillError(f"columns {','.join(names)[:80]} are not one dtype at a constant stride: "
                             "no zero-copy 2-D view; pass copy=True")
        # Over an array that holds a buffer export of the mapping (np.frombuffer), never over the
        # mmap itself: np.ndarray(buffer=mmap) keeps no export, so close() would unmap under the view.
        return np.ndarray(shape=(self.nrows, len(cols)), dtype=dt, buffer=self._bytes(),
                          offset=cols[0].offset, strides=(dt.itemsize, max(stride, dt.itemsize)))

    def symbol_codes(self):
        """The ``symbol`` role column (uint32 codes into :attr:`symbols`), if there is one."""
        names = self.columns_with_role("symbol")
        return self.column(names[0]) if names else None

    # ------------------------------------------------------------------ training
    def __len__(self):
        return self.nrows

    def __reduce__(self):
        """Pickles as its path: unpickling re-opens (and re-validates) the file, so DataLoader
        spawn workers and Ray tasks each map it themselves."""
        return (open, (self.path,))

    @property
    def time_column(self):
        """Name of the time column (role ``time``), or None."""
        names = self.columns_with_role("time")
        return names[0] if names else None

    @property
    def target_column(self):
        """Name of the target column (role ``target``), or None."""
        names = self.columns_with_role("target")
        return names[0] if names else None

    @property
    def time_unit(self):
        """Unit of the time column's int64 values: ``"ns"`` (format 1.1 records it; 1.0 files,
        written by spillway, hold nanoseconds too). None without a time column."""
        t = self.time_column
        return None if t is None else (self.column_info(t).unit or "ns")

    @property
    def timezone(self):
        """Time zone the source timestamps carried (format 1.1), e.g. ``"UTC"`` or
        ``"America/New_York"``; None when not recorded. Stored values are UTC either way."""
        t = self.time_column
        return None if t is None else self.column_info(t).timezone

    @property
    def symbol_ranges(self):
        """``{symbol: (start, stop)}``: each symbol's rows (symbol-major files). A time-major
        file has none (a symbol's rows are spread over its timestamps): SpillError there."""
        if self.order == "time":
            raise SpillError("a time-major file has no per-symbol row ranges (a symbol's rows are "
                             "spread over its timestamps): use symbol_codes()")
        return self._symbol_ranges

    @property
    def timestamps(self):
        """The :class:`Timestamps` index of a time-major file (None in a symbol-major one)."""
        return self._timestamps

    @property
    def timestamp_ranges(self):
        """A mapping ``time -> (start, stop)``: the rows of each timestamp of a time-major file
        (None in a symbol-major one), by binary search over the index's times. Keys are int ns, or
        any time bound :meth:`time_ranges` takes."""
        ts = self._timestamps
        return None if ts is None else _TimestampRanges(ts, self._time_ns)

    def _need_time_major(self, what):
        if self._timestamps is None:
            raise SpillError(f"{what} needs a time-major file (rows sorted by time, each "
                             "timestamp's rows contiguous); this one is symbol-major")
        return self._timestamps

    def time_range(self, start=None, stop=None):
        """Time-major files: the ONE row range ``(start_row, stop_row)`` whose times lie in
        ``[start, stop)`` (None: unbounded; a stop below the start is raised to it), from the
        timestamp index alone. It holds whole cross-sections. None in a symbol-major file (see
        :meth:`time_ranges`). Bounds as for :meth:`time_ranges`."""
        ts = self._timestamps
        if ts is None:
            return None
        a = 0 if start is None else ts.first_at_or_after(self._time_ns(start))
        b = len(ts) if stop is None else max(ts.first_at_or_after(self._time_ns(stop)), a)
        return int(ts.bounds[a]), int(ts.bounds[b])

    def group_sizes(self, ranges=None):
        """Time-major files: the rows of each timestamp within ``ranges`` (default all), in order:
        LightGBM's ``group``. Every non-empty range must start and stop on a timestamp boundary
        (:meth:`time_range` gives such ranges); SpillError otherwise, and in a symbol-major file."""
        ts = self._need_time_major("group sizes")
        return ts._units(self._ranges(ranges))

    def qid(self, ranges=None):
        """Time-major files: each row's timestamp index (0 for the first timestamp of the file),
        for the rows of ``ranges`` (default all; any rows), as int32 (int64 past 2^31 timestamps):
        XGBoost's ``qid``."""
        ts = self._need_time_major("qid")
        idx, rows = ts._pieces(self._ranges(ranges))
        dtype = np.int32 if len(ts) < 1 << 31 else np.int64
        return np.repeat(idx.astype(dtype), rows)

    def _group_runs(self, ranges):
        """Rows per cross-section in the rows of ``ranges`` (any rows: a range may cut a
        cross-section), pieces of one timestamp that follow each other merged: the group sizes of
        a selection with some rows left out."""
        idx, rows = self._need_time_major("group sizes")._pieces(self._ranges(ranges))
        if not len(idx):
            return rows
        first = np.concatenate([[0], np.flatnonzero(np.diff(idx) != 0) + 1])
        return np.add.reduceat(rows, first)

    def _ranges(self, ranges, caller=None):
        return _row_ranges(ranges, self.nrows, caller)

    def _time_ns(self, v):
        """A time bound as int64 UTC nanoseconds: int (ns), numpy datetime64, pandas Timestamp,
        datetime (naive: UTC), date, or an ISO string (UTC unless it has an offset)."""
        if isinstance(v, (bool, np.bool_)):
            raise TypeError("a time bound cannot be a bool")
        if isinstance(v, (int, np.integer)):
            return int(v)
        if hasattr(v, "value") and hasattr(v, "tz_localize"):  # pandas Timestamp
            return int(v.value)
        if isinstance(v, _dt.datetime):
            if v.tzinfo is not None:
                v = v.astimezone(_dt.timezone.utc).replace(tzinfo=None)
            return int(np.datetime64(v, "ns").astype(np.int64))
        if isinstance(v, str):
            try:
                return self._time_ns(_dt.datetime.fromisoformat(v.replace("Z", "+00:00")))
            except ValueError:
                pass
        return int(np.datetime64(v, "ns").astype(np.int64))

    def time_ranges(self, start=None, stop=None):
        """Row ranges ``[(start_row, stop_row), ...]`` whose time lies in ``[start, stop)``, found by
        binary search in each symbol's (time-sorted) rows, adjacent ranges merged; in a time-major
        file ONE range (from :meth:`time_range`), or none when it is empty. Bounds: int
        nanoseconds, numpy datetime64, pandas Timestamp, datetime (naive means UTC), ISO string, or
        None for unbounded. Feed the result to :meth:`batches`, :meth:`take` or the adapters."""
        if self._timestamps is not None:
            a, b = self.time_range(start, stop)
            return [(a, b)] if b > a else []
        t = self.time_column
        if t is None:
            raise SpillError("the file has no time column")
        ts = self.column(t)
        lo_ns = None if start is None else self._time_ns(start)
        hi_ns = None if stop is None else self._time_ns(stop)
        out = []
        for name in self.symbols:
            a, b = self.symbol_ranges[name]
            seg = ts[a:b]
            lo = a if lo_ns is None else a + int(np.searchsorted(seg, lo_ns, "left"))
            hi = b if hi_ns is None else a + int(np.searchsorted(seg, hi_ns, "left"))
            if hi > lo:
                if out and out[-1][1] == lo:
                    out[-1] = (out[-1][0], hi)
                else:
                    out.append((lo, hi))
        return out

    def split_by_time(self, cut):
        """``(before, after)``: the row ranges with time ``< cut`` and ``>= cut``."""
        return self.time_ranges(None, cut), self.time_ranges(cut, None)

    def take(self, ranges: RowRanges, columns: Optional[Sequence[str]] = None,
             copy: bool = False) -> Tuple[np.ndarray, Optional[np.ndarray]]:
        """``(X, y)`` for the rows of ``ranges``: with ``copy=False`` and one range, read-only
        zero-copy views of the mapping (the columns must be stored at a constant stride, as the
        feature columns are in stored order); with ``copy=True``, new C-contiguous writable float32
        arrays holding only those rows (any columns, any order). Several ranges need ``copy=True``.
        ``ranges``: ``[(start, stop), ...]`` or one ``(start, stop)`` tuple; arbitrary row indices
        go to :meth:`take_rows`."""
        ranges = self._ranges(ranges, "take")
        names = self.columns_with_role("feature") if columns is None else list(columns)
        tname = self.target_column
        if not copy:
            if len(ranges) != 1:
                raise ValueError(f"{len(ranges)} ranges cannot be one view: pass copy=True")
            (a, b), X = ranges[0], self.features(names)
            return X[a:b], (None if tname is None else self.column(tname)[a:b])
        reader = _RowReader(self, names, [tname], "float32", False)
        try:
            arrays = reader.empty(sum(b - a for a, b in ranges))
            reader.read_into(arrays, ranges, 0)
        finally:
            reader.close()
        return arrays[0], arrays[1]

    def take_rows(self, indices, columns: Optional[Sequence[str]] = None,
                  dtype: str = "float32") -> Tuple[np.ndarray, Optional[np.ndarray]]:
        """``(X, y)`` for arbitrary rows: ``indices`` any 1-D array-like of row numbers (repeats
        and any order allowed; negative ones are an IndexError), ``columns`` any subset and order
        of float32 columns (default the features). X is a new C-contiguous array (len(indices),
        len(columns)) in ``dtype`` (``float32``, ``float16``, ``bfloat16`` as uint16 bits), y the
        target as float32 (None without one). With the extension the gather runs natively without
        the GIL, in sorted order, reading only the rows asked for. It reads through the mapping
        (random rows of a column-major file are best served by the page cache's mapped pages),
        and releases the pages it touched when it returns (:meth:`release_pages`), so the
        resident set goes back down after each call."""
        idx = _row_indices(indices, self.nrows)
        if dtype not in X_DTYPES:
            raise ValueError(f"dtype must be one of {', '.join(X_DTYPES)}, not {dtype!r:.80}")
        names = self.columns_with_role("feature") if columns is None else list(columns)
        cols = [self.column_info(n) for n in names]
        for c in cols:
            if c.dtype_name != "f32":
                raise ValueError(f"column {c.name!r} holds {c.dtype_name}: take_rows' X takes "
                                 "float32 columns")
        order = np.argsort(idx, kind="stable")
        rows = idx[order]
        X = np.empty((len(idx), len(cols)), X_DTYPES[dtype])
        if _take_rows is not None and len(idx) and cols:
            _take_rows(self._bytes(), [c.offset for c in cols], self.nrows, rows, order, X, dtype)
        else:
            for j, c in enumerate(cols):
                v = self.column(c.name)[rows]
                X[order, j] = _bfloat16_bits(v) if dtype == "bfloat16" else v
        tname = self.target_column
        y = None if tname is None else self.column(tname)[idx].astype(np.float32)
        if len(idx):
            self.release_pages()
        return X, y

    def symbol_names(self, ranges=None, kind="pandas"):
        """The symbol of every row (of ``ranges``) as a categorical over the symbol table: the
        names are not repeated per row. ``kind="pandas"``: a ``pandas.Categorical``;
        ``kind="arrow"``: a ``pyarrow.DictionaryArray`` (zero-copy over the codes for one range)."""
        codes = self.symbol_codes()
        if codes is None:
            raise SpillError("the file has no symbol column")
        parts = [codes[a:b] for a, b in self._ranges(ranges)]
        if kind == "arrow":
            import pyarrow as pa
            names = pa.array(self.symbols, pa.string())
            arrays = [pa.DictionaryArray.from_arrays(_arrow_array(p), names) for p in parts]
            return arrays[0] if len(arrays) == 1 else pa.chunked_array(arrays)
        if kind == "pandas":
            import pandas as pd
            c = parts[0] if len(parts) == 1 else np.concatenate(parts)
            return pd.Categorical.from_codes(c.astype(np.int32), categories=self.symbols,
                                             validate=False)
        raise ValueError(f"kind must be 'pandas' or 'arrow', not {kind!r}")

    def to_arrow(self, columns=None, ranges=None):
        """A ``pyarrow.Table`` over the mapping, without copying: each column's buffer is the
        column's view (the table keeps the mapping alive). ``symbol`` becomes a dictionary column of
        names, the time column ``timestamp[ns, tz]`` (the recorded zone, else UTC); NaN stays NaN.
        ``ranges``: several give chunked columns, still zero-copy."""
        import pyarrow as pa
        names = self.columns if columns is None else list(columns)
        ranges = self._ranges(ranges)
        symbols = pa.array(self.symbols, pa.string())
        cols = []
        for n in names:
            info, v = self.column_info(n), self.column(n)
            chunks = []
            for a, b in ranges:
                part = _arrow_array(v[a:b])
                if info.role == "symbol" and info.dtype_name == "u32":
                    part = pa.DictionaryArray.from_arrays(part, symbols)
                elif info.role == "time" and info.dtype_name == "i64":
                    part = part.view(pa.timestamp("ns", tz=self.timezone or "UTC"))
                chunks.append(part)
            cols.append(pa.chunked_array(chunks) if len(chunks) != 1 else chunks[0])
        return pa.Table.from_arrays(cols, names=names)

    def batches(self, batch_rows: int, columns: Optional[Sequence[str]] = None,
                ranges: Optional[RowRanges] = None, shuffle: Optional[str] = None,
                block_rows: Optional[int] = None, seed: int = 0, with_time: bool = False,
                with_symbols: bool = False, whole_timestamps: bool = False, *,
                epoch: Optional[int] = None, rank: int = 0, world_size: int = 1,
                worker: int = 0, num_workers: int = 1, drop_last: bool = False,
                pad: bool = False, state: Optional[Mapping] = None, target: bool = True,
                dtype: str = "float32", out: Optional[np.ndarray] = None,
                verify: bool = False) -> "Batches":
        """Iterate over the rows in batches of ``batch_rows`` (the last may be shorter), yielding
        ``(X, y)``: ``X`` a new C-contiguous array (rows, columns) in ``dtype``, ``y`` the target
        as float32 (None without a target, or with ``target=False``); with ``with_time`` the int64
        times follow, with ``with_symbols`` the uint32 symbol codes. Every array is a fresh,
        writable copy (safe for torch.from_numpy), read with pread: the file's pages are never
        mapped into the process, so its resident set is a few batches whatever the file's size.
        Returns a :class:`Batches` iterator (``len()``, ``state_dict()``, ``dropped``, ``padded``).

        The rows are ``ranges`` (half-open, in order; default the whole file) concatenated;
        batches cross symbol boundaries. ``shuffle="blocks"`` cuts that sequence into blocks of
        ``block_rows`` (default ``batch_rows``; the last may be shorter) and permutes the blocks
        (Fisher-Yates driven by SplitMix64 from ``seed + epoch``, see
        :func:`splitmix64_permutation`); rows within a block keep their order. The Rust iterator
        yields the same batches. SPEC.md ("Batches") states all of it exactly.

        ``whole_timestamps`` (time-major files): batches of whole cross-sections. The ranges must
        start and stop on timestamp boundaries; the sequence is then made of units (one
        timestamp's rows within one range), packed by :func:`pack_units`: blocks of at most
        ``block_rows`` rows for the shuffle, then batches of at most ``batch_rows`` rows (a
        cross-section larger than that is a block or batch alone).

        Ranks and workers: the epoch's batches are dealt round-robin, global batch ``c + j *
        world_size + rank`` to ``rank``'s ``j``-th, and a rank's batches round-robin to its
        ``num_workers`` workers. With more than one rank or worker, ``drop_last=True`` (drop the
        last partial batch and the rest that cannot be dealt evenly) or ``pad=True`` (repeat
        batches from the start of the epoch) must be chosen: every rank and worker then gets the
        same number of batches, and across them every row comes exactly once except those
        reported in ``dropped`` / ``padded``. ``drop_last`` alone also drops a short last batch.

        Resume: ``state`` (a :meth:`Batches.state_dict`) continues the epoch where it was saved:
        at the same world size, exactly the batches the uninterrupted iterator would have yielded;
        at another, every batch not yet delivered, once. A state of another file, selection or
        batching is refused (ValueError). ``epoch`` defaults to the state's (else 0).

        ``columns``: any float32 columns in any order (default: the features). ``dtype``:
        ``"float32"``, ``"float16"`` or ``"bfloat16"`` (numpy has no bfloat16: uint16 arrays of
        its bit patterns, rounded to nearest even), converted while copying. ``out``: a writable
        C-contiguous array of at least (largest batch, columns) in that dtype: X is written into it
        and yielded as ``out[:rows]``, valid until the next batch (for pinned buffers).
        ``verify``: check each chunk's CRC the first time a batch reads from it (SpillError naming
        the column and the chunk's rows on a mismatch).

        A wrong type is a TypeError, a bad value a ValueError, raised by this call."""
        batch_rows, block_rows, seed = _batch_args(batch_rows, block_rows, shuffle, seed)
        deal_args = _deal_args(rank, world_size, worker, num_workers, drop_last, pad)
        ranges = self._ranges(ranges, "batches")
        epoch_ = _epoch_of(epoch, state)
        shuffle_seed = (seed + epoch_) & _MASK64
        if whole_timestamps:
            segments, sizes = self._whole_sequence(ranges, shuffle, block_rows, shuffle_seed,
                                                   batch_rows)
        else:
            segments = _block_sequence(ranges, shuffle, block_rows, shuffle_seed)
            sizes = None
        plan = _Plan(segments, batch_rows, sizes)
        key = f"spill-batches-v1;len={self.file_len};meta={self._meta_crc};ranges="
        base = _base_state(key + _ranges_text(ranges), plan, shuffle, block_rows, seed, epoch_,
                           whole_timestamps)
        names = self.columns_with_role("feature") if columns is None else list(columns)
        extra = [self.target_column if target else None]
        if with_time:
            extra.append(self.time_column or _missing("time"))
        if with_symbols:
            extra.append((self.columns_with_role("symbol") or [None])[0] or _missing("symbol"))
        reader = _RowReader(self, names, extra, dtype, verify)
        _check_out(out, plan, reader.ncols, dtype)
        deal, skip = _start({**base, "epoch": epoch}, plan, state, *deal_args)

        def produce(mine):
            try:
                for idx in mine:
                    g = deal.batch(idx)
                    yield reader.read(plan.runs(g), plan.span(g)[1], out)
            finally:
                reader.close()
        return Batches(plan, deal, skip, base, produce)

    def _whole_sequence(self, ranges, shuffle, block_rows, seed, batch_rows):
        """The row runs and batch sizes of whole-cross-section batches (see :meth:`batches`)."""
        units = self._need_time_major("whole-timestamp batches")._units(ranges)
        segments = [(a, b) for a, b in ranges if b > a]
        if shuffle == "blocks":
            if block_rows < 1:
                raise ValueError("block_rows must be at least 1")
            per_block, rows = pack_units(units, block_rows)
            firsts = np.concatenate([[0], np.cumsum(per_block)])
            blocks = cut_sizes(segments, rows)
            order = splitmix64_permutation(len(blocks), seed)
            segments = merge_runs(blocks[k] for k in order)
            parts = [units[firsts[k]:firsts[k + 1]] for k in order]
            units = np.concatenate(parts) if parts else units
        elif shuffle is not None:
            raise ValueError(f"shuffle must be None or 'blocks', not {shuffle!r}")
        return segments, pack_units(units, batch_rows)[1].tolist()

    # ------------------------------------------------------------------ verify
    def verify_time_index(self):
        """Time-major files: raise SpillError unless the time column holds, in every timestamp's
        rows, exactly that timestamp's time (reads the time column, a million rows at a time).
        Opening does not check it (it reads the metadata only), nor does :meth:`verify`. Nothing
        to check in a symbol-major file or one without a time column."""
        ts, name = self._timestamps, self.time_column
        if ts is None or name is None:
            return
        col, bounds, times = self.column(name), ts.bounds, ts.times
        step = 1 << 20
        for r0 in range(0, self.nrows, step):
            r1 = min(r0 + step, self.nrows)
            idx = np.searchsorted(bounds, np.arange(r0, r1), "right") - 1
            bad = np.flatnonzero(col[r0:r1] != times[idx])
            if len(bad):
                k = int(bad[0])
                raise SpillError(f"row {r0 + k} holds time {int(col[r0 + k])} but the timestamp "
                                 f"index says {int(times[idx[k]])}")

    def damaged_chunks(self):
        """Recompute every chunk checksum; return the list of :class:`DamagedChunk` (empty: intact)."""
        damaged = []
        view = memoryview(self._map())
        try:
            for c in self._columns:
                for k, stored in enumerate(c.checksums):
                    start = c.offset + k * self.chunk_bytes
                    end = min(start + self.chunk_bytes, c.offset + c.length)
                    actual = zlib.crc32(view[start:end])
                    if actual != stored:
                        size = c.dtype.itemsize
                        rows = (k * self.chunk_bytes // size, (end - c.offset) // size)
                        damaged.append(DamagedChunk(c.name, k, rows, stored, actual))
        finally:
            view.release()
        return damaged

    def verify(self):
        """Raise SpillError naming the damaged columns and rows if any checksum fails."""
        damaged = self.damaged_chunks()
        if damaged:
            first = damaged[0]
            raise SpillError(f"{len(damaged)} damaged chunk(s); first: column {first.column!r} rows "
                             f"[{first.rows[0]}, {first.rows[1]})")

    def release_pages(self):
        """Drop the file's mapped pages from this process's resident set
        (``madvise(MADV_DONTNEED)`` over the mapping): views stay valid and read the same bytes,
        faulting pages back from the page cache. For after a framework copied what it read from
        views (the LightGBM adapter calls it once the binned dataset is built). No effect where
        ``madvise`` is unavailable."""
        m = self._map()
        if hasattr(m, "madvise") and hasattr(mmap, "MADV_DONTNEED"):
            m.madvise(mmap.MADV_DONTNEED)

    def _file(self):
        """The descriptor of the open file (batches pread from a dup of it)."""
        self._map()
        return self._fh.fileno()

    def _map(self):
        if self._mmap is None:
            raise ValueError(f"spill file {self.path!r} is closed")
        return self._mmap

    def _bytes(self):
        """The whole mapping as a read-only uint8 array that holds a buffer export of it: every
        view handed out is built over this, so the mapping outlives close() while a view lives."""
        return np.frombuffer(self._map(), dtype=np.uint8)

    def close(self):
        """Close the file: later calls on it raise ValueError. Views handed out stay valid and keep
        the mapping alive; it is unmapped when the last of them is gone (at once if there is none)."""
        m, self._mmap = self._mmap, None
        fh, self._fh = getattr(self, "_fh", None), None
        if fh is not None:
            fh.close()
        if m is None:
            return
        try:
            m.close()
        except BufferError:
            pass  # views hold exports of the mapping; it is unmapped with the last of them

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self):
        return f"SpillFile({self.path!r}, nrows={self.nrows}, columns={len(self._columns)}, " \
               f"symbols={len(self.symbols)})"


builtins_open = open


def open(path):  # noqa: A001 - the module's entry point mirrors Rust's spill::open
    """Open and validate a spill file (see the module docstring)."""
    return SpillFile(path)
