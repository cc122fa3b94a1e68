"""Read spill files with numpy, zero-copy.

    import spillfile
    f = spillfile.open("train.spill")
    X = f.features()            # (nrows, nfeatures) float32, read-only, backed by the mmap
    y = f.column("target")      # (nrows,) float32 view
    for sym, (start, stop) in f.symbol_ranges.items(): ...
    f.verify()                  # recompute every chunk checksum (raises SpillError on damage)

The format is specified byte by byte in ``spill/SPEC.md``; this module performs the same validation
as the Rust reader, in the same order, before handing out any view. Any corrupt, truncated or
hostile file raises :class:`SpillError` (a ``ValueError``). Depends on numpy only.
"""
import json
import math
import mmap
import os
import struct
import zlib

import numpy as np

__all__ = ["SpillError", "SpillFile", "open", "DamagedChunk"]

MAGIC = b"\x89SPILL\r\n"
TRAILER_MAGIC = b"SPILLEND"
VERSION_MAJOR = 1
VERSION_MINOR = 0
ALIGN = 4096
HEADER_LEN = 4096
TRAILER_LEN = 64
MIN_FILE_LEN = HEADER_LEN + TRAILER_LEN
CHECKSUM_CRC32 = 1
KNOWN_REQUIRED_FEATURES = 0
MAX_METADATA_BYTES = 1 << 30
MAX_COLUMNS = 1 << 20
MAX_SYMBOLS = 1 << 26
MAX_NAME_BYTES = 4096
MAX_ROWS = 1 << 48
MIN_CHUNK_BYTES = 4096
MAX_CHUNK_BYTES = 1 << 30
MAX_JSON_DEPTH = 128  # serde_json's recursion limit: both readers refuse deeper metadata

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


class SpillError(ValueError):
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
        for x in v:
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


class Column:
    """One column's metadata: name, dtype (numpy), role, offset, length, checksums, stats."""

    __slots__ = ("name", "dtype_name", "dtype", "role", "offset", "length", "checksums", "min", "max",
                 "nan_count")

    def __repr__(self):
        return f"Column({self.name!r}, {self.dtype_name}, role={self.role}, offset={self.offset})"


class SpillFile:
    """A validated, memory-mapped spill file. Use :func:`open`."""

    def __init__(self, path):
        self.path = os.fspath(path)
        with builtins_open(self.path, "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            if size < MIN_FILE_LEN:
                raise SpillError(f"file is {size} bytes, shorter than the smallest spill file "
                                 f"({MIN_FILE_LEN} bytes): truncated or not a spill file")
            self._mmap = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
        try:
            self._validate(self._mmap)
        except BaseException:
            self._mmap.close()
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
        self._parse_metadata(_parse_json(raw), meta_off)
        self.version = (major, minor)
        self.file_len = size

    def _parse_metadata(self, m, data_end):
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

        symbols, ranges, nxt = [], {}, 0
        for s in syms:
            if not isinstance(s, dict) or not all(k in s for k in ("name", "start", "stop")):
                raise SpillError("metadata is not valid: a symbol is not {name, start, stop}")
            name = _name(s["name"], "symbol")
            start, stop = _u64(s["start"], "symbol start"), _u64(s["stop"], "symbol stop")
            if name in ranges:
                raise SpillError(f"duplicate symbol name {name[:80]!r}")
            if start != nxt or stop < start or stop > nrows:
                raise SpillError(f"symbol {name[:80]!r} range [{start}, {stop}) does not continue the "
                                 f"tiling at row {nxt} of {nrows}")
            symbols.append(name)
            ranges[name] = (start, stop)
            nxt = stop
        if nxt != nrows:
            raise SpillError(f"symbol ranges end at row {nxt}, the file has {nrows} rows")

        self.nrows = nrows
        self.chunk_bytes = chunk
        self._columns = columns
        self._index = {c.name: i for i, c in enumerate(columns)}
        self.symbols = symbols
        self.symbol_ranges = ranges
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

    # ------------------------------------------------------------------ verify
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
