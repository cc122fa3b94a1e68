"""A sharded dataset (``dataset.json`` and its shards) as one dataset, and the sharded build's
engine-neutral building blocks.

    ds = spillway.open_dataset("out/dataset.json")
    ds.nrows, ds.columns, ds[123]                      # global row indexing
    train, valid = ds.split_by_time("2024-06-01")      # global (start, stop) row ranges
    for X, y in ds.batches(65536, ranges=train, shuffle="blocks", seed=0): ...
    ds.column_chunks("target")                          # per-shard zero-copy views
    ds.to_arrow()                                       # one table, zero-copy per shard

    ds = spillway.open_dataset("s3://bucket/prefix/dataset.json", cache_limit="50GiB")
    for X, y in ds.batches(65536, shuffle="shards", seed=epoch): ...   # each shard downloaded once

Rows are numbered across shards in manifest order (shard 0's rows, then shard 1's...), which is
the single-machine file's row order: the same ``batches(..., seed=s)`` gives the same batches as
the single-machine file. Each shard is mapped by the numpy reader (:mod:`spillway.spillfile`),
so this module works without the extension; :func:`count`, :func:`plan_cs`,
:func:`write_manifest`, :func:`verify_dataset` and remote datasets need it.

A remote dataset (a manifest URL) reads the manifest at open and nothing else: its shards are
downloaded on first use into a local :class:`~spillway.cache.ShardCache` (shared by processes,
bounded by ``cache_limit``) and mapped from there, at most ``cache_limit`` bytes of them at once.
"""
from __future__ import annotations

import bisect
import contextlib
import json
import os
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np

from . import spillfile
from ._mapped import MappedShards
from .cache import CacheFull, ShardCache, parse_size
from .errors import UsageError
from .spillfile import RowRanges, SpillError
from .sharded import count, plan_cs, verify_dataset, write_manifest  # noqa: F401 (re-exported)
from .sharded import is_url as _is_url

FORMAT = "spillway-dataset"
_MASK64 = (1 << 64) - 1

__all__ = ["Dataset", "open_dataset", "count", "plan_cs", "write_manifest", "verify_dataset"]


def _metadata_crc(path: str, size: int) -> int:
    """The trailer's metadata checksum (SPEC.md: trailer bytes 40..44)."""
    with open(path, "rb") as fh:
        fh.seek(size - 64 + 40)
        return int.from_bytes(fh.read(4), "little")


def _parse_manifest(data: bytes, where: str) -> Dict[str, Any]:
    if len(data) > 64 << 20:
        raise SpillError(f"{where}: too large for a dataset manifest")
    try:
        m = json.loads(data)
    except ValueError as e:
        raise SpillError(f"{where}: not a dataset manifest: {e}") from None
    if not isinstance(m, dict) or m.get("format") != FORMAT or \
            not isinstance(m.get("version"), list) or m["version"][:1] != [1]:
        raise SpillError(f"{where}: not a {FORMAT} 1.x manifest")
    shards = m.get("shards")
    if not isinstance(shards, list) or not shards:
        raise SpillError(f"{where}: no shards")
    for e in shards:
        ok = isinstance(e, dict) and isinstance(e.get("path"), str) and \
            all(spillfile._is_row(e.get(k)) and e[k] >= 0 for k in ("rows", "bytes")) and \
            isinstance(e.get("checksum"), str)
        p = e.get("path", "") if isinstance(e, dict) else ""
        if not ok or not p or p.startswith("/") or "\\" in p or ".." in p.split("/"):
            raise SpillError(f"{where}: a shard entry is not {{path (relative), rows, bytes, "
                             f"checksum}}: {e!r:.200}")
    return m


def read_manifest(path) -> Dict[str, Any]:
    """The manifest at ``path``, checked for its format and major version."""
    path = os.fspath(path)
    if os.path.getsize(path) > 64 << 20:
        raise SpillError(f"{path}: too large for a dataset manifest")
    with open(path, "rb") as fh:
        return _parse_manifest(fh.read(), path)


class _RemoteShard:
    """Shard ``i`` of a remote dataset: ``nrows``, ``path`` (its URL) and ``entry`` from the
    manifest; any other attribute is the mapped ``SpillFile``'s (downloading it on first use).
    It stays mapped until the dataset needs the room; readers of many shards should use the
    :class:`Dataset`'s methods, which keep within the cache limit."""

    def __init__(self, ds: "Dataset", i: int):
        self._ds, self._i = ds, i
        self.entry = ds.manifest["shards"][i]
        self.nrows: int = self.entry["rows"]
        self.path: str = ds._remote.urls[i]

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):  # never map for a protocol lookup (copy, pickle)
            raise AttributeError(name)
        with self._ds._using(self._i) as f:
            return getattr(f, name)

    def __repr__(self) -> str:
        return f"<remote shard {self.path!r}: {self.nrows} rows>"


def _reopen(path: str, kw: Dict[str, Any]) -> "Dataset":
    return Dataset(path, **kw)


class Dataset:
    """The shards of a manifest as one dataset (see the module docs and :func:`open_dataset`).
    A local manifest: opening maps every shard and checks it against the manifest (length,
    metadata checksum, rows): O(metadata). A manifest URL: opening reads the manifest only."""

    def __init__(self, manifest, *, cache_dir=None, cache_limit: Union[int, str, None] = None,
                 storage_options: Optional[Dict[str, Any]] = None, verify: bool = False,
                 prefetch: int = 2):
        from ._options import check_flag, check_int
        verify = check_flag("verify", verify)
        self._prefetch = check_int("prefetch", prefetch)
        self._remote: Optional[MappedShards] = None
        self.cache: Optional[ShardCache] = None
        self._kw: Dict[str, Any] = dict(verify=verify, prefetch=self._prefetch)
        if _is_url(manifest):
            self._open_remote(manifest, cache_dir, parse_size(cache_limit), storage_options,
                              verify)
        else:
            given = [k for k, v in (("cache_dir", cache_dir), ("cache_limit", cache_limit),
                                    ("storage_options", storage_options)) if v is not None]
            if given:
                raise UsageError(f"{', '.join(given)}: only for a remote manifest (a URL such as "
                                 f"s3://bucket/prefix/dataset.json), not the local {manifest!r}")
            self._open_local(manifest, verify)

    def _open_local(self, manifest, verify: bool) -> None:
        self.path = os.path.abspath(os.fspath(manifest))
        self.manifest = read_manifest(self.path)
        base = os.path.dirname(self.path)
        self.shards: Any = []
        self.offsets = [0]
        for e in self.manifest["shards"]:
            p = os.path.join(base, e["path"])
            try:
                size = os.path.getsize(p)
            except OSError as err:
                raise SpillError(f"{p}: shard missing: {err}") from None
            if size != e["bytes"] or f"crc32:{_metadata_crc(p, size):08x}" != e["checksum"]:
                raise SpillError(f"{p}: the shard is not the one the manifest lists "
                                 "(length or metadata checksum differs)")
            if verify:
                from . import verify as verify_file
                verify_file(p)
            f = spillfile.open(p)
            if f.nrows != e["rows"]:
                raise SpillError(f"{p}: {f.nrows} rows, the manifest says {e['rows']}")
            self.shards.append(f)
            self.offsets.append(self.offsets[-1] + f.nrows)
        self._check_rows()

    def _open_remote(self, url: str, cache_dir, limit: Optional[int], storage_options,
                     verify: bool) -> None:
        from . import _need_native
        from .sharded import storage_json
        native = _need_native()
        opts = storage_json(storage_options)
        self._kw.update(cache_dir=cache_dir, cache_limit=limit, storage_options=storage_options)
        self.path = url
        self.manifest = _parse_manifest(native.get_object(url, opts), url)
        entries = self.manifest["shards"]
        base = url.rsplit("/", 1)[0]
        cache_dir = cache_dir if cache_dir is not None else \
            os.environ.get("SPILLWAY_CACHE_DIR") or os.path.join("~", ".cache", "spillway")
        self.cache = ShardCache(cache_dir, limit)
        big = max(entries, key=lambda e: e["bytes"])
        if limit is not None and big["bytes"] > limit:
            raise CacheFull(f"{url}: shard {big['path']!r} ({big['bytes']} bytes) is larger than "
                            f"cache_limit ({limit} bytes)")

        def fetch(u: str, dest: str, expect: int) -> Any:
            return native.download(u, dest, opts, expect)
        urls = [e["path"] if _is_url(e["path"]) else f"{base}/{e['path']}" for e in entries]
        self._remote = MappedShards(urls, entries,
                                    self.cache, fetch, verify)
        self.shards = [_RemoteShard(self, i) for i in range(len(entries))]
        self.offsets = [0]
        for e in entries:
            self.offsets.append(self.offsets[-1] + e["rows"])
        self._check_rows()

    def _check_rows(self) -> None:
        if not self.shards:
            raise SpillError(f"{self.path}: no shards")
        if self.offsets[-1] != self.manifest["nrows"]:
            raise SpillError(f"{self.path}: the shards hold {self.offsets[-1]} rows, "
                             f"the manifest says {self.manifest['nrows']}")

    @contextlib.contextmanager
    def _using(self, i: int) -> Iterator[spillfile.SpillFile]:
        """Shard ``i``'s reader, mapped (and, remote, held) for the ``with`` block."""
        if self._remote is None:
            yield self.shards[i]
            return
        f = self._remote.hold(i)
        try:
            yield f
        finally:
            self._remote.unhold(i)

    def _holding(self, shards: Sequence[int], what: str) -> "contextlib.ExitStack":
        """Every shard of ``shards`` held together, refused up front beyond the cache limit."""
        limit = None if self.cache is None else self.cache.limit
        need = sum(self.manifest["shards"][i]["bytes"] for i in shards)
        if limit is not None and need > limit:
            raise CacheFull(f"{what} maps {len(shards)} shards at once ({need} bytes), more than "
                            f"cache_limit ({limit} bytes): ask for fewer rows or raise the limit")
        stack = contextlib.ExitStack()
        with stack:
            for i in shards:
                stack.enter_context(self._using(i))
            return stack.pop_all()

    # ------------------------------------------------------------------ shape
    @property
    def nrows(self) -> int:
        return self.offsets[-1]

    def __len__(self):
        return self.nrows

    @property
    def nshards(self) -> int:
        return len(self.offsets) - 1

    @property
    def remote(self) -> bool:
        """Whether the shards come from object storage through the cache."""
        return self._remote is not None

    @property
    def columns(self) -> List[str]:
        return [c["name"] for c in self.manifest["schema"]]

    def _any(self) -> int:
        """A shard to read what every shard holds alike (symbols, roles): remote, one mapped
        already if there is one, so asking downloads nothing more."""
        mapped = self._remote.mapped() if self._remote is not None else []
        return mapped[-1] if mapped else 0

    @property
    def symbols(self) -> List[str]:
        """The global symbol table (every shard's)."""
        with self._using(self._any()) as f:
            return f.symbols

    def columns_with_role(self, role):
        return [c["name"] for c in self.manifest["schema"] if c["role"] == role]

    @property
    def time_column(self):
        with self._using(self._any()) as f:
            return f.time_column

    @property
    def target_column(self):
        with self._using(self._any()) as f:
            return f.target_column

    def __reduce__(self):  # Ray tasks and spawn workers re-open it, with the same arguments
        return (_reopen, (self.path, dict(self._kw)))

    def __repr__(self):
        return (f"<spillway.Dataset {self.path!r}: {self.nrows} rows, {len(self.columns)} "
                f"columns, {self.nshards} shards>")

    def close(self):
        if self._remote is not None:
            self._remote.close()
            return
        for s in self.shards:
            s.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # ------------------------------------------------------------------ rows
    def locate(self, row: int) -> Tuple[int, int]:
        """``(shard index, row within the shard)`` of global row ``row``."""
        row = int(row)
        if row < 0:
            row += self.nrows
        if not 0 <= row < self.nrows:
            raise IndexError(f"row {row} is not in [0, {self.nrows})")
        i = bisect.bisect_right(self.offsets, row) - 1
        return i, row - self.offsets[i]

    def _ranges(self, ranges, caller=None):
        """Global row ranges checked as the reader checks its own (see ``take``)."""
        return spillfile._row_ranges(ranges, self.nrows, caller)

    def _pieces(self, ranges, caller=None):
        """Global ranges as ``(shard, local_start, local_stop)`` pieces, in order."""
        for a, b in self._ranges(ranges, caller):
            while a < b:
                i, la = self.locate(a)
                take = min(b - a, self.offsets[i + 1] - self.offsets[i] - la)
                yield i, la, la + take
                a += take

    def _local(self, ranges):
        """Global ranges as per-shard lists of local ranges (order kept within a shard)."""
        per: List[List[Tuple[int, int]]] = [[] for _ in range(self.nshards)]
        for i, a, b in self._pieces(ranges):
            per[i].append((a, b))
        return per

    def __getitem__(self, key):
        """``ds[i]``: a dict of the row's values; ``ds[a:b]``: a dict of arrays (copies)."""
        if isinstance(key, slice):
            a, b, step = key.indices(self.nrows)
            if step != 1:
                raise ValueError("slices with a step are not supported")
            return {c: self.column(c, ranges=[(a, max(a, b))]) for c in self.columns}
        i, r = self.locate(key)
        with self._using(i) as f:
            return {c: f.column(c)[r] for c in self.columns}

    def column_chunks(self, name: str) -> List[np.ndarray]:
        """Column ``name`` of every shard: read-only zero-copy views, in row order. Remote: every
        shard mapped at once, refused (:class:`~spillway.cache.CacheFull`) beyond the limit."""
        with self._holding(range(self.nshards), "column_chunks"):
            out = []
            for i in range(self.nshards):
                with self._using(i) as f:
                    out.append(f.column(name))
            return out

    def column(self, name: str, ranges=None) -> np.ndarray:
        """Column ``name`` (of ``ranges``) as one new array (a copy across shards)."""
        parts = []
        for i, a, b in self._pieces(ranges):
            with self._using(i) as f:
                parts.append(f.column(name)[a:b])  # a view keeps its mapping until joined
        if parts:
            return np.concatenate(parts)
        with self._using(0) as f:
            return f.column(name)[:0].copy()

    def take(self, ranges: RowRanges,
             columns: Optional[Sequence[str]] = None) -> Tuple[np.ndarray, Optional[np.ndarray]]:
        """``(X, y)`` copies of the rows of ``ranges`` (features, target), across shards.
        ``ranges``: global ``[(start, stop), ...]`` or one ``(start, stop)`` tuple; a list of row
        indices is a TypeError (arbitrary rows get a method of their own, ``take_rows``)."""
        parts = []
        for i, a, b in self._pieces(ranges, "take"):
            with self._using(i) as f:
                parts.append(f.take([(a, b)], columns=columns, copy=True))
        if not parts:
            with self._using(0) as f:
                return f.take([(0, 0)], columns=columns, copy=True)
        X = np.concatenate([p[0] for p in parts])
        y = None if parts[0][1] is None else np.concatenate([p[1] for p in parts])
        return X, y

    def symbol_names(self, ranges=None, kind="pandas"):
        """The symbol of every row as a categorical over the global table (see the reader's)."""
        codes = self.column("symbol", ranges)
        if kind == "pandas":
            import pandas as pd
            return pd.Categorical.from_codes(codes.astype(np.int32), categories=self.symbols,
                                             validate=False)
        if kind == "arrow":
            import pyarrow as pa
            return pa.DictionaryArray.from_arrays(pa.array(codes), pa.array(self.symbols))
        raise ValueError(f"kind must be 'pandas' or 'arrow', not {kind!r}")

    # ------------------------------------------------------------------ time
    def time_ranges(self, start=None, stop=None) -> List[Tuple[int, int]]:
        """Global row ranges whose time lies in ``[start, stop)`` (bounds as for the reader).
        Remote: reads every shard's time index (each shard downloaded once, one at a time)."""
        out: List[Tuple[int, int]] = []
        for i, off in enumerate(self.offsets[:-1]):
            with self._using(i) as f:
                local = f.time_ranges(start, stop)
            for a, b in local:
                a, b = a + off, b + off
                if out and out[-1][1] == a:
                    out[-1] = (out[-1][0], b)
                else:
                    out.append((a, b))
        return out

    def split_by_time(self, cut):
        """``(before, after)``: global row ranges with time ``< cut`` and ``>= cut``."""
        return self.time_ranges(None, cut), self.time_ranges(cut, None)

    # ------------------------------------------------------------------ training
    def batches(self, batch_rows: int, columns: Optional[Sequence[str]] = None,
                ranges: Optional[RowRanges] = None, shuffle: Optional[str] = None,
                block_rows: Optional[int] = None, seed: int = 0, drop_behind: bool = True,
                with_time: bool = False, with_symbols: bool = False,
                window: int = 2) -> Iterator[tuple]:
        """As :meth:`SpillFile.batches`, across shards: the rows of ``ranges`` (global) cut into
        blocks of ``block_rows`` (default ``batch_rows``); pieces are joined so every batch but
        the last has ``batch_rows`` rows. Every row of ``ranges`` comes exactly once per call,
        and the same arguments give the same batches. The shuffles:

        - ``None``: rows in order. Remote: one shard mapped at a time, each downloaded once.
        - ``"blocks"``: the blocks of all of ``ranges`` permuted by ``seed`` exactly as the reader
          permutes one file's, so the single-machine file gives the same batches. The best
          shuffle, but every batch reads blocks of any shard: remote, each shard is downloaded
          once per epoch only if the cache holds every shard of ``ranges``; with less, a shard
          evicted between its blocks is downloaded again (up to once per block).
        - ``"shards"``: the shard order permuted by ``seed`` (:func:`~spillway.spillfile.
          splitmix64_permutation`), then the blocks of each ``window`` consecutive shards of that
          order (blocks cut per shard, never across two) permuted together by a seed derived
          from ``seed`` and the window's index, and read window after window. Each shard
          belongs to one window, so an epoch downloads each shard once when ``window`` shards
          fit the cache; a batch mixes rows of at most about ``window`` shards. ``window``
          (default 2, the same for local and remote datasets so both give the same batches)
          trades shuffle quality for cache room.

        Remote: a cache limit too small for the shards one batch must keep mapped together
        (those it reads in more than one piece), or, for ``"shards"``, for one window's
        shards, is refused up front (:class:`~spillway.cache.CacheFull`, a UsageError) before
        any download. Up to ``prefetch`` (:func:`open_dataset`) next shards are downloaded on a
        background thread, within the cache limit, while the current one is read, and a shard
        the iteration no longer needs is closed and unpinned.

        The arguments are checked as the reader's are, by this call: a wrong type is a
        TypeError, a bad value a ValueError."""
        if shuffle == "shards":
            batch_rows, block_rows, seed = spillfile._batch_args(batch_rows, block_rows,
                                                                 "blocks", seed)
            if not spillfile._is_row(window):
                raise TypeError(f"window must be an int, not {type(window).__name__}")
            if window < 1:
                raise ValueError(f"window must be at least 1, not {int(window)}")
            pieces = self._shard_sequence(self._ranges(ranges, "batches"), block_rows, seed,
                                          int(window))
        else:
            batch_rows, block_rows, seed = spillfile._batch_args(batch_rows, block_rows,
                                                                 shuffle, seed)
            segments = spillfile._block_sequence(self._ranges(ranges, "batches"), shuffle,
                                                 block_rows, seed)
            pieces = self._pieces(segments)
        runs = _runs(pieces)

        def read(f, local):
            return f.batches(batch_rows, columns=columns, ranges=local, drop_behind=drop_behind,
                             with_time=with_time, with_symbols=with_symbols)
        if self._remote is None:
            return _rechunk((p for i, local in runs for p in read(self.shards[i], local)),
                            batch_rows)
        self._remote.check_room(runs, batch_rows, int(window) if shuffle == "shards" else None)
        return _rechunk(self._remote.read(runs, read, self._prefetch), batch_rows)

    def _shard_sequence(self, ranges, block_rows: int, seed: int,
                        window: int) -> List[Tuple[int, int, int]]:
        """The ``(shard, start, stop)`` pieces of ``shuffle="shards"`` in read order."""
        per = self._local(ranges)
        order = spillfile.splitmix64_permutation(len(per), seed)
        out = []
        for w in range(0, len(order), window):
            blocks = [(i, blk) for i in order[w:w + window]
                      for blk in spillfile.cut_blocks(per[i], block_rows)]
            for k in spillfile.splitmix64_permutation(len(blocks), _window_seed(seed, w)):
                i, blk = blocks[k]
                out.extend((i, a, b) for a, b in blk)
        return out

    def to_arrow(self, columns=None, ranges=None):
        """One ``pyarrow.Table`` (chunked per shard, zero-copy over each mapping). Remote: the
        shards of ``ranges`` mapped at once, refused beyond the cache limit."""
        import pyarrow as pa
        per = self._local(ranges)
        used = [i for i, r in enumerate(per) if r]
        with self._holding(used, "to_arrow"):
            tables = []
            for i in used:
                with self._using(i) as f:
                    tables.append(f.to_arrow(columns, ranges=per[i]))
            if not tables:
                with self._using(0) as f:
                    return f.to_arrow(columns, ranges=[(0, 0)])
            return pa.concat_tables(tables)

    def verify(self):
        """Check the whole dataset: the report dict; raises :class:`spillway.DataError` on any
        problem (needs the extension). Local: every shard, every chunk, the plan
        (:func:`verify_dataset`). Remote: every shard's every chunk, each downloaded (or taken
        from the cache) and checked in turn; a damaged cached copy is downloaded again."""
        if self._remote is None:
            return verify_dataset(self.path)
        m = self._remote
        for i, url in enumerate(m.urls):
            m.cache.acquire(url, m.entries[i], m._fetch, verify=True).release()
        return {"dataset": self.path, "ok": True, "shards": self.nshards, "problems": []}


def _window_seed(seed: int, w: int) -> int:
    """The block permutation seed of the window starting at shard position ``w``: SplitMix64's
    output number ``w + 1`` from state ``seed`` (a different, well-mixed seed per window)."""
    z = (seed + (w + 1) * 0x9E3779B97F4A7C15) & _MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
    return z ^ (z >> 31)


def _runs(pieces) -> List[Tuple[int, List[Tuple[int, int]]]]:
    """``(shard, start, stop)`` pieces as runs ``(shard, [local ranges])`` of consecutive pieces
    of one shard, adjacent ranges merged."""
    runs: List[Tuple[int, List[Tuple[int, int]]]] = []
    for i, a, b in pieces:
        if runs and runs[-1][0] == i:
            last = runs[-1][1]
            if last[-1][1] == a:
                last[-1] = (last[-1][0], b)
            else:
                last.append((a, b))
        else:
            runs.append((i, [(a, b)]))
    return runs


def _rechunk(it, n):
    """Batches (tuples of arrays, None allowed) re-cut to ``n`` rows, joining short pieces."""
    held: List[tuple] = []
    have = 0
    for piece in it:
        rows = len(piece[0])
        if not held and rows == n:
            yield piece
            continue
        held.append(piece)
        have += rows
        while have >= n:
            joined = tuple(None if parts[0] is None else np.concatenate(parts)
                           for parts in zip(*held))
            out = tuple(None if a is None else a[:n] for a in joined)
            rest = tuple(None if a is None else a[n:] for a in joined)
            yield tuple(None if a is None else np.ascontiguousarray(a) for a in out)
            have -= n
            held = [rest] if have else []
    if have:
        yield tuple(None if parts[0] is None else np.concatenate(parts) for parts in zip(*held))


def open_dataset(manifest, *, cache_dir=None, cache_limit: Union[int, str, None] = None,
                 storage_options: Optional[Dict[str, Any]] = None, verify: bool = False,
                 prefetch: int = 2) -> Dataset:
    """Open the sharded dataset of ``manifest`` (``dataset.json``) as one :class:`Dataset`.

    ``manifest`` is a local path, or a URL (``s3://bucket/prefix/dataset.json``, ``gs://``,
    ``az://``: anything with ``://``) read through the extension. A remote dataset reads only
    the manifest at open; shards are downloaded on first use into ``cache_dir`` (default
    ``$SPILLWAY_CACHE_DIR``, else ``~/.cache/spillway``), shared with other processes and
    bounded by ``cache_limit`` (bytes, or ``"50GiB"``; default no limit): see
    :class:`spillway.cache.ShardCache`. ``storage_options``: as for :func:`spillway.build`.
    ``verify``: check every chunk CRC of each shard when it is downloaded or taken from the
    cache (local: of every shard at open), not only its length and metadata CRC. ``prefetch``:
    how many next shards ``batches`` downloads ahead (remote; within the cache limit).
    ``cache_dir``, ``cache_limit`` and ``storage_options`` are refused for a local manifest
    (UsageError): nothing is cached there."""
    return Dataset(manifest, cache_dir=cache_dir, cache_limit=cache_limit,
                   storage_options=storage_options, verify=verify, prefetch=prefetch)
