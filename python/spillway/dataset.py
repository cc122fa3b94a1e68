"""A sharded dataset (``dataset.json`` and its shards) as one dataset, and the sharded build's
engine-neutral building blocks.

    ds = spillway.open_dataset("out/dataset.json")
    ds.nrows, ds.columns, ds[123]                      # global row indexing
    train, valid = ds.split_by_time("2024-06-01")      # global (start, stop) row ranges
    a, b = ds.time_range("2024-01-01", "2024-06-01")   # time-major: ONE range, across shards
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
import os
from typing import (Any, Dict, Iterable, Iterator, List, Mapping, Optional, Sequence, Tuple,
                    Union)

import numpy as np

from . import spillfile
from ._mapped import MappedShards, RemoteShard
from ._pieces import runs_of, shard_sequence
from ._time import TimeMethods
from .cache import CacheFull, ShardCache, parse_size
from .errors import UsageError
from .spillfile import RowRanges, SpillError
from .sharded import count, plan_cs, verify_dataset, write_manifest  # noqa: F401 (re-exported)
from .sharded import is_url as _is_url
from ._manifest import files_manifest, metadata_crc, parse_manifest, read_manifest
from . import _collection


PathLike = Union[str, "os.PathLike[str]"]

__all__ = ["Dataset", "open_dataset", "count", "plan_cs", "write_manifest", "verify_dataset"]


def _reopen(path: Any, kw: Dict[str, Any]) -> "Dataset":
    return Dataset(path, **kw)


class Dataset(TimeMethods):
    """The shards of a manifest as one dataset (see the module docs and :func:`open_dataset`).
    A local manifest: opening maps every shard and checks it against the manifest (length,
    metadata checksum, rows): O(metadata). A manifest URL: opening reads the manifest only.
    A time-major dataset (:attr:`order` ``"time"``) answers the time methods (``time_range``,
    ``timestamps``, ``timestamp_ranges``, ``group_sizes``) as the single time-major file does:
    :mod:`spillway._time`."""

    def __init__(self, manifest: Union[PathLike, List[PathLike], Tuple[PathLike, ...]], *,
                 cache_dir: Optional[str] = None, cache_limit: Union[int, str, None] = None,
                 storage_options: Optional[Dict[str, Any]] = None, verify: bool = False,
                 prefetch: int = 2) -> None:
        from ._options import check_flag, check_int
        verify = check_flag("verify", verify)
        self._prefetch = check_int("prefetch", prefetch)
        self._remote: Optional[MappedShards] = None
        self.cache: Optional[ShardCache] = None
        self._kw: Dict[str, Any] = dict(verify=verify, prefetch=self._prefetch)
        self._maps: Dict[int, np.ndarray] = {}  # a collection's code map per file, once read
        self._files: Optional[List[str]] = None  # from_files: the paths (no manifest file)
        if not isinstance(manifest, (list, tuple)) and _is_url(manifest):
            self._open_remote(str(manifest), cache_dir, parse_size(cache_limit), storage_options,
                              verify)
        else:
            given = [k for k, v in (("cache_dir", cache_dir), ("cache_limit", cache_limit),
                                    ("storage_options", storage_options)) if v is not None]
            if given:
                raise UsageError(f"{', '.join(given)}: only for a remote manifest (a URL such as "
                                 f"s3://bucket/prefix/dataset.json), not the local {manifest!r}")
            if isinstance(manifest, (list, tuple)):
                self._open_files([os.path.abspath(os.fspath(p)) for p in manifest], verify)
            else:
                self._open_local(manifest, verify)

    def _open_local(self, manifest: Union[str, "os.PathLike[str]"], verify: bool) -> None:
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
            if size != e["bytes"] or f"crc32:{metadata_crc(p, size):08x}" != e["checksum"]:
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

    def _open_files(self, paths: List[str], verify: bool) -> None:
        if not paths:
            raise UsageError("an empty list of spill files")
        self._files = paths
        self.path = f"{len(paths)} files: {paths[0]}" + (", ..." if len(paths) > 1 else "")
        self.shards = []
        try:
            for p in paths:
                if verify:
                    from . import verify as verify_file
                    verify_file(p)
                self.shards.append(spillfile.open(p))
            self.manifest = files_manifest(paths, self.shards)
        except BaseException:
            for f in self.shards:
                f.close()
            raise
        self.offsets = [0]
        for f in self.shards:
            self.offsets.append(self.offsets[-1] + f.nrows)
        self._check_rows()

    @classmethod
    def from_files(cls, paths: Sequence[PathLike], *,
                   verify: bool = False) -> "Dataset":
        """Independent spill files with one schema (columns, dtypes, roles and row order; their
        symbol tables may differ), in this order, as one dataset: what the collection manifest
        ``spillway manifest --collection`` writes for them opens as (the same rows, symbol codes
        and batches; a saved batch state resumes on either). Symbol codes are mapped by name into
        one table (:attr:`symbols`). SpillError naming the file and column if they differ."""
        return cls(list(paths), verify=verify)

    @property
    def collection(self) -> bool:
        """Whether the shards are independent files (a collection), each with its own symbol
        table, rather than the shards of one build."""
        return _collection.is_collection(self.manifest)

    def _code_map(self, i: int) -> np.ndarray:
        """File ``i``'s symbol codes to the collection's (by name)."""
        if i not in self._maps:
            with self._using(i) as f:
                self._maps[i] = _collection.code_maps(self.manifest["symbols"], [f.symbols])[0]
        return self._maps[i]

    def _codes(self, i: int, codes: np.ndarray) -> np.ndarray:
        """Shard ``i``'s symbol codes in the dataset's table (a collection maps them by name)."""
        if not self.collection:
            return codes
        return _collection.union_codes(codes, self._code_map(i))

    def _open_remote(self, url: str, cache_dir: Optional[str], limit: Optional[int],
                     storage_options: Optional[Dict[str, Any]], verify: bool) -> None:
        from . import _need_native
        from .sharded import storage_json
        native = _need_native()
        opts = storage_json(storage_options)
        self._kw.update(cache_dir=cache_dir, cache_limit=limit, storage_options=storage_options)
        self.path = url
        self.manifest = parse_manifest(native.get_object(url, opts), url)
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

        def tail(u: str, n: int) -> bytes:  # a shard's end: its time index without a download
            return bytes(native.get_object(u, opts, n))
        urls = [e["path"] if _is_url(e["path"]) else f"{base}/{e['path']}" for e in entries]
        self._remote = MappedShards(urls, entries, self.cache, fetch, verify, tail)
        self.shards = [RemoteShard(self, i) for i in range(len(entries))]
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

    def __len__(self) -> int:
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
        """The global symbol table (every shard's; a collection's: the union of its files'; a
        time-major dataset's: its newest shard's, which every older table begins, as the
        manifest's history lists it)."""
        if self.collection:
            return list(self.manifest["symbols"])
        history = self.manifest.get("history")
        if history:
            return [s["name"] for s in history["symbols"]]
        newest = self.nshards - 1 if self.manifest.get("order") == "time" else self._any()
        with self._using(newest) as f:
            return f.symbols

    def columns_with_role(self, role: str) -> List[str]:
        return [c["name"] for c in self.manifest["schema"] if c["role"] == role]

    @property
    def time_column(self) -> Optional[str]:
        """Name of the time column (from the manifest's schema: nothing is downloaded)."""
        names = self.columns_with_role("time")
        return names[0] if names else None

    @property
    def target_column(self) -> Optional[str]:
        """Name of the target column (from the manifest's schema)."""
        names = self.columns_with_role("target")
        return names[0] if names else None

    def __reduce__(self) -> Tuple[Any, ...]:  # Ray tasks and spawn workers re-open it, with the same arguments
        return (_reopen, (self._files or self.path, dict(self._kw)))

    def __repr__(self) -> str:
        return (f"<spillway.Dataset {self.path!r}: {self.nrows} rows, {len(self.columns)} "
                f"columns, {self.nshards} shards>")

    def close(self) -> None:
        """Close every shard (remote: unmap and unpin them)."""
        if self._remote is not None:
            self._remote.close()
            return
        for s in self.shards:
            s.close()

    def __enter__(self) -> "Dataset":
        return self

    def __exit__(self, *exc: object) -> None:
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

    def _ranges(self, ranges: Optional[RowRanges],
                caller: Optional[str] = None) -> List[Tuple[int, int]]:
        """Global row ranges checked as the reader checks its own (see ``take``)."""
        return spillfile._row_ranges(ranges, self.nrows, caller)

    def _pieces(self, ranges: Optional[RowRanges],
                caller: Optional[str] = None) -> Iterator[Tuple[int, int, int]]:
        """Global ranges as ``(shard, local_start, local_stop)`` pieces, in order."""
        for a, b in self._ranges(ranges, caller):
            while a < b:
                i, la = self.locate(a)
                take = min(b - a, self.offsets[i + 1] - self.offsets[i] - la)
                yield i, la, la + take
                a += take

    def _local(self, ranges: Optional[RowRanges]) -> List[List[Tuple[int, int]]]:
        """Global ranges as per-shard lists of local ranges (order kept within a shard)."""
        per: List[List[Tuple[int, int]]] = [[] for _ in range(self.nshards)]
        for i, a, b in self._pieces(ranges):
            per[i].append((a, b))
        return per

    def __getitem__(self, key: Union[int, slice]) -> Dict[str, Any]:
        """``ds[i]``: a dict of the row's values; ``ds[a:b]``: a dict of arrays (copies)."""
        if isinstance(key, slice):
            a, b, step = key.indices(self.nrows)
            if step != 1:
                raise ValueError("slices with a step are not supported")
            return {c: self.column(c, ranges=[(a, max(a, b))]) for c in self.columns}
        i, r = self.locate(key)
        with self._using(i) as f:
            row = {c: f.column(c)[r] for c in self.columns}
        for c in self.columns_with_role("symbol"):
            row[c] = self._codes(i, np.asarray([row[c]]))[0]
        return row

    def column_chunks(self, name: str) -> List[np.ndarray]:
        """Column ``name`` of every shard: read-only zero-copy views, in row order. Remote: every
        shard mapped at once, refused (:class:`~spillway.cache.CacheFull`) beyond the limit."""
        with self._holding(range(self.nshards), "column_chunks"):
            out = []
            for i in range(self.nshards):
                with self._using(i) as f:
                    out.append(f.column(name))
            return out

    def column(self, name: str, ranges: Optional[RowRanges] = None) -> np.ndarray:
        """Column ``name`` (of ``ranges``) as one new array (a copy across shards)."""
        parts = []
        symbol = name in self.columns_with_role("symbol")
        for i, a, b in self._pieces(ranges):
            with self._using(i) as f:
                v = f.column(name)[a:b]  # a view keeps its mapping until joined
                parts.append(self._codes(i, v) if symbol else v)
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

    def symbol_names(self, ranges: Optional[RowRanges] = None, kind: str = "pandas") -> Any:
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

    # ------------------------------------------------------------------ training
    def batches(self, batch_rows: int, columns: Optional[Sequence[str]] = None,
                ranges: Optional[RowRanges] = None, shuffle: Optional[str] = None,
                block_rows: Optional[int] = None, seed: int = 0, with_time: bool = False,
                with_symbols: bool = False, window: int = 2, *, epoch: Optional[int] = None,
                rank: int = 0, world_size: int = 1, worker: int = 0, num_workers: int = 1,
                drop_last: bool = False, pad: bool = False,
                state: Optional[Mapping[str, Any]] = None, target: bool = True,
                dtype: str = "float32", out: Optional[np.ndarray] = None,
                verify: bool = False) -> spillfile.Batches:
        """As :meth:`SpillFile.batches <spillway.spillfile.SpillFile.batches>`, across shards:
        the rows of ``ranges`` (global) cut into blocks of ``block_rows`` (default
        ``batch_rows``), batches of ``batch_rows`` (the last may be shorter) joined across
        shards. Every row of ``ranges`` comes exactly once per epoch, and the same arguments give
        the same batches. Ranks, workers, ``drop_last``/``pad``, ``epoch``, ``state`` (resume),
        ``columns``, ``target``, ``dtype``, ``out`` and ``verify`` as the reader's; a state
        records the manifest's shards and refuses another dataset. The shuffles:

        - ``None``: rows in order. Remote: one shard mapped at a time, each downloaded once.
        - ``"blocks"``: the blocks of all of ``ranges`` permuted by ``seed + epoch`` exactly as
          the reader permutes one file's, so the single-machine file gives the same batches. The
          best shuffle, but every batch reads blocks of any shard: remote, each shard is
          downloaded once per epoch only if the cache holds every shard of ``ranges``; with
          less, a shard evicted between its blocks is downloaded again (up to once per block).
        - ``"shards"``: the shard order permuted by ``seed + epoch``
          (:func:`~spillway.spillfile.splitmix64_permutation`), then the blocks of each ``window``
          consecutive shards of that order (blocks cut per shard, never across two) permuted
          together by a seed derived from it and the window's index, and read window after
          window. Each shard belongs to one window, so an epoch downloads each shard once when
          ``window`` shards fit the cache; a batch mixes rows of at most about ``window`` shards.
          ``window`` (default 2, the same for local and remote datasets so both give the same
          batches) trades shuffle quality for cache room.

        Remote: a cache limit too small for the shards one batch must keep mapped together
        (those it reads in more than one piece), or, for ``"shards"``, for one window's
        shards, is refused up front (:class:`~spillway.cache.CacheFull`, a UsageError) before
        any download. Up to ``prefetch`` (:func:`open_dataset`) next shards are downloaded on a
        background thread, within the cache limit, while the current one is read, and a shard
        the iteration no longer needs is closed and unpinned.

        The arguments are checked as the reader's are, by this call: a wrong type is a
        TypeError, a bad value a ValueError."""
        mode = "blocks" if shuffle == "shards" else shuffle
        batch_rows, block_rows, seed = spillfile._batch_args(batch_rows, block_rows, mode, seed)
        deal_args = spillfile._deal_args(rank, world_size, worker, num_workers, drop_last, pad)
        sel = self._ranges(ranges, "batches")
        epoch_ = spillfile._epoch_of(epoch, state)
        order_seed = (seed + epoch_) & ((1 << 64) - 1)
        key = "spill-dataset-v1;shards=" + ",".join(
            f"{e['bytes']}:{e['checksum']}" for e in self.manifest["shards"])
        if shuffle == "shards":
            if not spillfile._is_row(window):
                raise TypeError(f"window must be an int, not {type(window).__name__}")
            if window < 1:
                raise ValueError(f"window must be at least 1, not {int(window)}")
            key += f";window={int(window)}"
            segments = [(self.offsets[i] + a, self.offsets[i] + b) for i, a, b in
                        shard_sequence(self._local(sel), block_rows, order_seed, int(window))]
        else:
            segments = spillfile._block_sequence(sel, shuffle, block_rows, order_seed)
        plan = spillfile._Plan(segments, batch_rows)
        base = spillfile._base_state(key + ";ranges=" + spillfile._ranges_text(sel), plan,
                                     shuffle, block_rows, seed, epoch_, False)
        # Checked by this call, from the manifest (a remote shard is not downloaded for it).
        names = self.columns_with_role("feature") if columns is None else list(columns)
        for n in names:
            if n not in self.columns:
                raise KeyError(n)
        if dtype not in spillfile.X_DTYPES:
            raise ValueError(f"dtype must be one of {', '.join(spillfile.X_DTYPES)}, not "
                             f"{dtype!r:.80}")
        spillfile._check_out(out, plan, len(names), dtype)
        deal, skip = spillfile._start({**base, "epoch": epoch}, plan, state, *deal_args)

        gs = [deal.batch(idx) for idx in deal.mine[skip:]]
        runs = runs_of(p for g in gs for p in self._pieces(plan.runs(g)))
        if self._remote is not None:  # refused up front, before any download
            self._remote.check_room(runs, batch_rows, int(window) if shuffle == "shards" else None)
        extra: List[Optional[str]] = [self.target_column if target else None]
        if with_time:
            extra.append(self.time_column or spillfile._missing("time"))
        if with_symbols:
            symbol = self.columns_with_role("symbol")
            extra.append(symbol[0] if symbol else spillfile._missing("symbol"))
        remap = with_symbols and self.collection  # each file's codes in the union's table

        def produce(mine: Sequence[int]) -> Iterator[Tuple[Any, ...]]:
            # mine: deal.mine[skip:], whose runs are above. Each run's rows are read straight
            # into the batch they belong to (a batch may take rows of several runs).
            opened: Iterable[Tuple[int, Any]]
            if self._remote is None:
                opened = ((i, self.shards[i]) for i, _ in runs)
            else:  # each shard held (downloaded) while its run is read
                held = self._remote.read(runs, lambda f, local: iter([f]), self._prefetch)
                opened = zip((i for i, _ in runs), held)
            pool = spillfile._Recycler()
            readers: Dict[int, Tuple[Any, Any]] = {}
            sizes = iter([plan.span(g)[1] for g in gs])
            want, arrays, at = next(sizes, 0), None, 0
            for (i, local), (_, f) in zip(runs, opened):
                if i not in readers or readers[i][0] is not f:  # (remote: a shard re-mapped)
                    if i in readers:
                        readers[i][1].close()
                    readers[i] = (f, spillfile._RowReader(f, names, extra, dtype, verify, pool))
                reader = readers[i][1]
                for a, b in local:
                    while a < b:
                        if arrays is None:
                            arrays = reader.empty(want, out)
                        take = min(b - a, want - at)
                        reader.read_into(arrays, [(a, a + take)], at)
                        if remap:
                            arrays[-1][at:at + take] = self._codes(i, arrays[-1][at:at + take])
                        a, at = a + take, at + take
                        if at == want:
                            batch = tuple(arrays)
                            pool.handed_out(batch if out is None else batch[1:])
                            yield batch
                            want, arrays, at = next(sizes, 0), None, 0
            for _, r in readers.values():
                r.close()
        return spillfile.Batches(plan, deal, skip, base, produce)

    def take_rows(self, indices: Any, columns: Optional[Sequence[str]] = None,
                  dtype: str = "float32") -> Tuple[np.ndarray, Optional[np.ndarray]]:
        """``(X, y)`` for arbitrary global rows, as :meth:`SpillFile.take_rows
        <spillway.spillfile.SpillFile.take_rows>`: each shard gathers its rows natively.
        Remote: the shards of those rows mapped at once, refused beyond the cache limit."""
        idx = spillfile._row_indices(indices, self.nrows)
        shard = np.searchsorted(np.asarray(self.offsets), idx, "right") - 1
        used = [int(i) for i in np.unique(shard)] or [0]
        X: Optional[np.ndarray] = None
        y: Optional[np.ndarray] = None
        with self._holding(used, "take_rows"):
            for i in used:
                at = np.flatnonzero(shard == i)
                with self._using(i) as f:
                    Xi, yi = f.take_rows(idx[at] - self.offsets[i], columns, dtype)
                if X is None:
                    X = np.empty((len(idx), Xi.shape[1]), Xi.dtype)
                    y = None if yi is None else np.empty(len(idx), yi.dtype)
                X[at] = Xi
                if y is not None:
                    y[at] = yi
        assert X is not None
        return X, y

    def to_arrow(self, columns: Optional[Sequence[str]] = None,
                 ranges: Optional[RowRanges] = None) -> Any:
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

    def verify(self) -> Dict[str, Any]:
        """Check the whole dataset: the report dict; raises :class:`spillway.DataError` on any
        problem (needs the extension). Local: every shard, every chunk, the plan
        (:func:`verify_dataset`). Remote: every shard's every chunk, each downloaded (or taken
        from the cache) and checked in turn; a damaged cached copy is downloaded again."""
        if self._files is not None:
            from . import verify as verify_file
            reports = [verify_file(p) for p in self._files]
            return {"dataset": self.path, "ok": True, "kind": "collection",
                    "shards": self.nshards, "files": reports, "problems": []}
        if self._remote is None:
            return verify_dataset(self.path)
        m = self._remote
        for i, url in enumerate(m.urls):
            m.cache.acquire(url, m.entries[i], m._fetch, verify=True).release()
        return {"dataset": self.path, "ok": True, "shards": self.nshards, "problems": []}


def open_dataset(manifest: Union[PathLike, List[PathLike], Tuple[PathLike, ...]], *, cache_dir: Optional[str] = None, cache_limit: Union[int, str, None] = None,
                 storage_options: Optional[Dict[str, Any]] = None, verify: bool = False,
                 prefetch: int = 2) -> Dataset:
    """Open the dataset of ``manifest`` (``dataset.json``: a sharded build's, or a collection of
    independent files, ``spillway manifest --collection``) as one :class:`Dataset`; a list of
    spill files is opened as their collection would be (:meth:`Dataset.from_files`).

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
