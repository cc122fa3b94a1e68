"""A sharded dataset (``dataset.json`` and its shards) as one dataset, and the sharded build's
engine-neutral building blocks.

    ds = spillway.open_dataset("out/dataset.json")
    ds.nrows, ds.columns, ds[123]                      # global row indexing
    train, valid = ds.split_by_time("2024-06-01")      # global (start, stop) row ranges
    for X, y in ds.batches(65536, ranges=train, shuffle="blocks", seed=0): ...
    ds.column_chunks("target")                          # per-shard zero-copy views
    ds.to_arrow()                                       # one table, zero-copy per shard

Rows are numbered across shards in manifest order (shard 0's rows, then shard 1's...), which is
the single-machine file's row order: the same ``batches(..., seed=s)`` gives the same batches as
the single-machine file. Each shard is mapped by the numpy reader (:mod:`spillway.spillfile`),
so this module works without the extension; :func:`count`, :func:`plan_cs`,
:func:`write_manifest` and :func:`verify_dataset` need it.
"""
from __future__ import annotations

import bisect
import json
import os
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np

from . import spillfile
from .spillfile import RowRanges, SpillError

FORMAT = "spillway-dataset"

__all__ = ["Dataset", "open_dataset", "count", "plan_cs", "write_manifest", "verify_dataset"]


def _metadata_crc(path: str, size: int) -> int:
    """The trailer's metadata checksum (SPEC.md: trailer bytes 40..44)."""
    with open(path, "rb") as fh:
        fh.seek(size - 64 + 40)
        return int.from_bytes(fh.read(4), "little")


def read_manifest(path) -> Dict[str, Any]:
    """The manifest at ``path``, checked for its format and major version."""
    path = os.fspath(path)
    if os.path.getsize(path) > 64 << 20:
        raise SpillError(f"{path}: too large for a dataset manifest")
    with open(path, "rb") as fh:
        try:
            m = json.loads(fh.read())
        except ValueError as e:
            raise SpillError(f"{path}: not a dataset manifest: {e}") from None
    if not isinstance(m, dict) or m.get("format") != FORMAT or \
            not isinstance(m.get("version"), list) or m["version"][:1] != [1]:
        raise SpillError(f"{path}: not a {FORMAT} 1.x manifest")
    return m


class Dataset:
    """The shards of a manifest as one dataset (see the module docs). Opening maps every shard
    and checks it against the manifest (length, metadata checksum, rows): O(metadata)."""

    def __init__(self, manifest):
        self.path = os.path.abspath(os.fspath(manifest))
        self.manifest = read_manifest(self.path)
        base = os.path.dirname(self.path)
        self.shards: List[spillfile.SpillFile] = []
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
            f = spillfile.open(p)
            if f.nrows != e["rows"]:
                raise SpillError(f"{p}: {f.nrows} rows, the manifest says {e['rows']}")
            self.shards.append(f)
            self.offsets.append(self.offsets[-1] + f.nrows)
        if not self.shards:
            raise SpillError(f"{self.path}: no shards")
        if self.offsets[-1] != self.manifest["nrows"]:
            raise SpillError(f"{self.path}: the shards hold {self.offsets[-1]} rows, "
                             f"the manifest says {self.manifest['nrows']}")

    # ------------------------------------------------------------------ shape
    @property
    def nrows(self) -> int:
        return self.offsets[-1]

    def __len__(self):
        return self.nrows

    @property
    def columns(self) -> List[str]:
        return [c["name"] for c in self.manifest["schema"]]

    @property
    def symbols(self) -> List[str]:
        """The global symbol table (every shard's)."""
        return self.shards[0].symbols

    def columns_with_role(self, role):
        return [c["name"] for c in self.manifest["schema"] if c["role"] == role]

    @property
    def time_column(self):
        return self.shards[0].time_column

    @property
    def target_column(self):
        return self.shards[0].target_column

    def __reduce__(self):  # pickles as its path: Ray tasks and spawn workers re-open it
        return (Dataset, (self.path,))

    def __repr__(self):
        return (f"<spillway.Dataset {self.path!r}: {self.nrows} rows, {len(self.columns)} "
                f"columns, {len(self.shards)} shards>")

    def close(self):
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
                take = min(b - a, self.shards[i].nrows - la)
                yield i, la, la + take
                a += take

    def _local(self, ranges):
        """Global ranges as per-shard lists of local ranges (order kept within a shard)."""
        per = [[] for _ in self.shards]
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
        f = self.shards[i]
        return {c: f.column(c)[r] for c in self.columns}

    def column_chunks(self, name: str) -> List[np.ndarray]:
        """Column ``name`` of every shard: read-only zero-copy views, in row order."""
        return [f.column(name) for f in self.shards]

    def column(self, name: str, ranges=None) -> np.ndarray:
        """Column ``name`` (of ``ranges``) as one new array (a copy across shards)."""
        parts = [self.shards[i].column(name)[a:b] for i, a, b in self._pieces(ranges)]
        return np.concatenate(parts) if parts else self.shards[0].column(name)[:0].copy()

    def take(self, ranges: RowRanges,
             columns: Optional[Sequence[str]] = None) -> Tuple[np.ndarray, Optional[np.ndarray]]:
        """``(X, y)`` copies of the rows of ``ranges`` (features, target), across shards.
        ``ranges``: global ``[(start, stop), ...]`` or one ``(start, stop)`` tuple; a list of row
        indices is a TypeError (arbitrary rows get a method of their own, ``take_rows``)."""
        parts = [self.shards[i].take([(a, b)], columns=columns, copy=True)
                 for i, a, b in self._pieces(ranges, "take")]
        if not parts:
            return self.shards[0].take([(0, 0)], columns=columns, copy=True)
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
        """Global row ranges whose time lies in ``[start, stop)`` (bounds as for the reader)."""
        out = []
        for off, f in zip(self.offsets, self.shards):
            for a, b in f.time_ranges(start, stop):
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
                with_time: bool = False, with_symbols: bool = False) -> Iterator[tuple]:
        """As :meth:`SpillFile.batches`, across shards: the rows of ``ranges`` (global), cut into
        blocks and permuted exactly as the reader does on one file, so the single-machine file
        gives the same batches. Each run of blocks within one shard is read by that shard's
        reader; pieces are joined so every batch but the last has ``batch_rows`` rows. The
        arguments are checked as the reader's are, by this call: a wrong type is a TypeError, a
        bad value a ValueError."""
        batch_rows, block_rows, seed = spillfile._batch_args(batch_rows, block_rows, shuffle, seed)
        segments = spillfile._block_sequence(self._ranges(ranges, "batches"), shuffle,
                                             block_rows, seed)
        runs: List[Tuple[int, List[Tuple[int, int]]]] = []
        for i, a, b in self._pieces(segments):
            if runs and runs[-1][0] == i:
                last = runs[-1][1]
                if last[-1][1] == a:
                    last[-1] = (last[-1][0], b)
                else:
                    last.append((a, b))
            else:
                runs.append((i, [(a, b)]))

        def pieces():
            for i, local in runs:
                yield from self.shards[i].batches(batch_rows, columns=columns, ranges=local,
                                                  drop_behind=drop_behind, with_time=with_time,
                                                  with_symbols=with_symbols)
        return _rechunk(pieces(), batch_rows)

    def to_arrow(self, columns=None, ranges=None):
        """One ``pyarrow.Table`` (chunked per shard, zero-copy over each mapping)."""
        import pyarrow as pa
        per = self._local(ranges)
        tables = [f.to_arrow(columns, ranges=r) for f, r in zip(self.shards, per) if r]
        if not tables:
            return self.shards[0].to_arrow(columns, ranges=[(0, 0)])
        return pa.concat_tables(tables)

    def verify(self):
        """Check the whole dataset (every shard, every chunk, the plan): the report dict; raises
        :class:`spillway.DataError` on any problem (needs the extension)."""
        return verify_dataset(self.path)


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


def open_dataset(manifest) -> Dataset:
    """Open the sharded dataset of ``manifest`` (``dataset.json``) as one :class:`Dataset`."""
    return Dataset(manifest)


# ---------------------------------------------------------------------- building blocks
def _native():
    from . import _need_native
    return _need_native()


def count(input, output, *, shard=None, symbols=None, **options) -> Dict[str, Any]:
    """``spillway count``: one shard's (``shard="I/N"`` or ``symbols="A..B"``) rows per timestamp
    and sampling keys, to the count file ``output``. Options as :func:`spillway.build`'s that
    decide rows (target, time_col, time_unit, max_rows, drop_null_target, max_cs_samples, seed,
    memory_budget, on_error). Returns the summary dict."""
    from . import _options
    opts = _options(input=input, output=output, shard=shard, symbols=symbols, **options)
    return json.loads(_native().count(opts))


def plan_cs(counts: Sequence, output, *, min_cs=0, max_cs_samples=None, seed=0,
            merge_only=False) -> Dict[str, Any]:
    """``spillway plan-cs``: merge count files into the cross-section plan ``output`` (or, with
    ``merge_only``, into one count file, for a tree of merges). Returns the summary dict."""
    return json.loads(_native().plan_cs([os.fspath(c) for c in counts], os.fspath(output),
                                        int(min_cs or 0),
                                        None if max_cs_samples is None else int(max_cs_samples),
                                        int(seed or 0), bool(merge_only)))


def write_manifest(shards: Sequence, output, cs_plan=None) -> Dict[str, Any]:
    """``spillway manifest``: check that ``shards`` form one dataset and write ``output``
    (``dataset.json``) atomically. Returns the manifest dict."""
    return json.loads(_native().manifest([os.fspath(s) for s in shards], os.fspath(output),
                                         None if cs_plan is None else os.fspath(cs_plan)))


def verify_dataset(manifest, chunks=True) -> Dict[str, Any]:
    """``spillway verify dataset.json``: every shard against the manifest and together, the plan,
    and (``chunks``) every chunk checksum. Returns the report; raises DataError on a problem."""
    from .errors import DataError
    r = json.loads(_native().verify_dataset(os.fspath(manifest), bool(chunks)))
    if r["problems"]:
        err = DataError(f"{manifest}: {len(r['problems'])} problems; first: {r['problems'][0]}")
        err.report = r
        raise err
    return r
