"""The time methods of :class:`spillway.Dataset`: a time-major dataset (the shards of one
``spillway build --order time --shard I/N`` build, or a collection of time-major files whose
times follow one another) read as ONE timeline, with the single time-major file's answers.

Its rows, numbered across shards in manifest order, are the single ``--order time`` file's rows;
a timestamp never straddles two shards. So the dataset's timestamp index is the shards' indexes
end to end, each shifted by its shard's first row. Each shard's index comes from its metadata:
mapped already for a local dataset; for a remote one, read from the end of its object (the
trailer and the metadata block, checked against the manifest's checksum), so that nothing is
downloaded. :meth:`time_range` reads at most two shard indexes (the manifest's ``time_range`` of
each shard says which); :attr:`timestamps`, :attr:`timestamp_ranges` and :meth:`group_sizes`
read every shard's, once per :class:`~spillway.Dataset`.
"""
from __future__ import annotations

import bisect
import struct
import zlib
from concurrent.futures import ThreadPoolExecutor
from typing import (TYPE_CHECKING, Any, Callable, ContextManager, Dict, List, Mapping, Optional,
                    Tuple)

import numpy as np
from numpy.typing import NDArray

from . import spillfile
from .spillfile import RowRanges, SpillError, Timestamps

if TYPE_CHECKING:
    from ._mapped import MappedShards

__all__ = ["TimeMethods", "read_index"]

_Range = Tuple[int, int]
_Span = Optional[Tuple[int, int]]  # a shard's (first, last) time; None when it has no rows

# The reader's own parsers of the stored index and of metadata JSON (private to the reader,
# whose stub leaves them out): a shard's index read from a bucket is checked as the reader
# checks one it opens.
_timestamps_raw: Callable[[Any], Tuple[int, int, NDArray[np.uint64], NDArray[np.uint64]]] = \
    getattr(spillfile, "_timestamps_raw")
_parse_json: Callable[[bytes], Any] = getattr(spillfile, "_parse_json")

_TAIL = 64 << 10  # the first read from a shard's end: its trailer and, mostly, its metadata
_INDEX_READS = 8  # shard indexes read from a bucket at once


class _Bounds:
    """The reader's conversion of a time bound to int64 UTC ns (``SpillFile._time_ns``, which
    uses nothing of its file), borrowed rather than copied."""

    _time_ns = getattr(spillfile.SpillFile, "_time_ns")


def time_ns(v: Any) -> int:
    """A time bound as the reader takes it (int ns, datetime64, datetime, date, ISO string)."""
    return int(_Bounds()._time_ns(v))


def read_index(tail: Callable[[int], bytes], entry: Mapping[str, Any], where: str) -> Timestamps:
    """The timestamp index of the shard ``entry`` of a manifest, from the end of its object:
    ``tail(n)`` returns the object's last ``n`` bytes. Its trailer must record the manifest's
    length and metadata checksum, and its metadata that checksum, as for a shard mapped from
    the cache. One read when trailer and metadata fit in 64 KiB, else two."""
    size = int(entry["bytes"])
    if size < spillfile.MIN_FILE_LEN:
        raise SpillError(f"{where}: {size} bytes, too short for a spill file")
    got = tail(min(size, _TAIL))
    n = spillfile.TRAILER_LEN
    t = got[-n:]
    if len(t) != n or t[56:64] != spillfile.TRAILER_MAGIC:
        raise SpillError(f"{where}: no spill trailer at the end of the object")
    meta_off, meta_len, file_len, _, _, _, _, meta_crc, _, t_crc, _ = \
        struct.unpack_from("<QQQQHHIIIII", t, 0)
    if zlib.crc32(t[0:48]) != t_crc:
        raise SpillError(f"{where}: trailer checksum mismatch")
    if file_len != size or f"crc32:{meta_crc:08x}" != entry["checksum"]:
        raise SpillError(f"{where}: the shard is not the one the manifest lists (length or "
                         "metadata checksum differs)")
    if meta_len > spillfile.MAX_METADATA_BYTES or meta_off + meta_len + n != size:
        raise SpillError(f"{where}: metadata block at {meta_off} of {meta_len} bytes does not "
                         "end at the trailer")
    if len(got) < meta_len + n:
        got = tail(meta_len + n)
    raw = got[len(got) - n - meta_len:len(got) - n]
    if len(raw) != meta_len or zlib.crc32(raw) != meta_crc:
        raise SpillError(f"{where}: metadata checksum mismatch")
    m = _parse_json(raw)
    if not isinstance(m, dict) or m.get("order") != "time" or m.get("timestamps") is None:
        raise SpillError(f"{where}: a symbol-major shard: it has no timestamp index")
    index = Timestamps(*_timestamps_raw(m["timestamps"]))
    if index.nrows != entry["rows"]:
        raise SpillError(f"{where}: its timestamp index covers {index.nrows} rows, the manifest "
                         f"says {entry['rows']}")
    return index


def _runs(v: NDArray[Any]) -> NDArray[np.uint64]:
    """``v`` run-length encoded as the index stores it: ``[value, n, value, n, ...]``."""
    if not len(v):
        return np.zeros(0, dtype=np.uint64)
    starts = np.concatenate([[0], np.flatnonzero(np.diff(v)) + 1])
    lengths = np.diff(np.concatenate([starts, [len(v)]]))
    return np.column_stack([v[starts], lengths]).astype(np.uint64).ravel()


def joined(indexes: List[Timestamps]) -> Timestamps:
    """The shards' indexes end to end (times strictly increasing across them, checked by the
    caller) as one index, stored as the reader stores one (maximal runs)."""
    times = np.concatenate([ix.times for ix in indexes]) if indexes else np.zeros(0, np.int64)
    counts = np.concatenate([ix.counts for ix in indexes]) if indexes else np.zeros(0, np.int64)
    if not len(times):
        return Timestamps(0, 0, np.zeros(0, np.uint64), np.zeros(0, np.uint64))
    steps = np.diff(times.astype(np.uint64))  # wraps to the positive step: times rise
    return Timestamps(len(times), int(times[0]), _runs(steps), _runs(counts))


class _Timeline:
    """One dataset's timeline: each shard's time span (from the manifest, else its index) and,
    on demand, each shard's index (``load``) and the joined index."""

    def __init__(self, where: str, entries: List[Mapping[str, Any]], offsets: List[int],
                 load: Callable[[int], Timestamps], parallel: bool) -> None:
        self.where, self.offsets = where, offsets
        self._load, self._parallel = load, parallel
        self._shard: Dict[int, Timestamps] = {}
        self._all: Optional[Timestamps] = None
        spans: List[_Span] = []
        for i, e in enumerate(entries):
            if "time_range" in e:
                r = e["time_range"]
                spans.append(None if r is None else (int(r[0]), int(r[1])))
            else:  # a list of files opened as a collection: their indexes are mapped
                ix = self._shard[i] = load(i)
                spans.append((int(ix.times[0]), int(ix.times[-1])) if len(ix) else None)
        self.spans = spans
        self.shards = [i for i, s in enumerate(spans) if s is not None]  # those with rows
        self.first = [s[0] for s in spans if s is not None]
        self.last = [s[1] for s in spans if s is not None]
        for k in range(1, len(self.shards)):
            if self.first[k] <= self.last[k - 1]:
                i, j = self.shards[k - 1], self.shards[k]
                raise SpillError(f"{where}: shard {j} starts at time {self.first[k]}, not after "
                                 f"shard {i}'s last time {self.last[k - 1]}: its shards are not "
                                 "one timeline (time-major files whose times overlap)")

    def shard(self, i: int) -> Timestamps:
        """Shard ``i``'s index, read once."""
        return self._shard[i] if i in self._shard else self._keep(i, self._load(i))

    def _keep(self, i: int, ix: Timestamps) -> Timestamps:
        """Shard ``i``'s index ``ix``, checked against its span in the manifest, kept."""
        have = (int(ix.times[0]), int(ix.times[-1])) if len(ix) else None
        if have != self.spans[i]:
            raise SpillError(f"{self.where}: shard {i}'s timestamps span {have}, the manifest "
                             f"says {self.spans[i]}")
        self._shard[i] = ix
        return ix

    def row_at(self, t: int) -> int:
        """The first global row whose time is at or after ``t`` (``nrows`` if none)."""
        k = bisect.bisect_left(self.last, t)  # the first shard whose last time is >= t
        if k == len(self.shards):
            return self.offsets[-1]
        i = self.shards[k]
        if t <= self.first[k]:
            return self.offsets[i]
        ix = self.shard(i)
        return self.offsets[i] + int(ix.bounds[ix.first_at_or_after(t)])

    def index(self) -> Timestamps:
        """The joined index of every shard (read once)."""
        if self._all is None:
            todo = [i for i in self.shards if i not in self._shard]
            if self._parallel and len(todo) > 1:
                with ThreadPoolExecutor(min(_INDEX_READS, len(todo)),
                                        thread_name_prefix="spillway-index") as pool:
                    for i, ix in zip(todo, pool.map(self._load, todo)):
                        self._keep(i, ix)
            self._all = joined([self.shard(i) for i in self.shards])
        return self._all


class TimeMethods:
    """The time methods of :class:`~spillway.Dataset` (a mixin over the dataset's manifest,
    shards and row offsets): see the module's docs."""

    # The dataset's own (spillway.dataset.Dataset).
    path: str
    manifest: Dict[str, Any]
    offsets: List[int]
    shards: Any
    _remote: Optional["MappedShards"]
    _timeline_state: Optional[_Timeline] = None

    def _using(self, i: int) -> ContextManager[spillfile.SpillFile]:
        raise NotImplementedError

    def _ranges(self, ranges: Optional[RowRanges],
                caller: Optional[str] = None) -> List[_Range]:
        raise NotImplementedError

    @property
    def order(self) -> str:
        """The row order: ``"time"`` for the shards of an ``--order time`` build (rows sorted by
        time across shards, each timestamp's rows contiguous and in one shard; the time
        methods below give the single time-major file's answers) and for a collection of
        time-major files (the time methods then need each file's times to follow the previous
        file's, else SpillError; ``time_ranges`` reads such files one by one);
        ``"symbol"`` otherwise (manifests before version 1.2 have no ``order``: symbol)."""
        return str(self.manifest.get("order") or "symbol")

    def _timeline(self, what: str) -> _Timeline:
        """The dataset's timeline, or SpillError, as the reader raises for a symbol-major
        file, when it has none."""
        if self.order != "time":
            raise SpillError(f"{what} needs a time-major dataset (rows sorted by time, each "
                             "timestamp's rows contiguous); this one is symbol-major")
        if self._timeline_state is None:
            self._timeline_state = _Timeline(self.path, self.manifest["shards"], self.offsets,
                                             self._loader(), self._remote is not None)
        return self._timeline_state

    def _loader(self) -> Callable[[int], Timestamps]:
        """How shard ``i``'s index is read: from the mapped shard, or from the end of its
        object in the store."""
        remote = self._remote
        if remote is not None:
            return lambda i: read_index(lambda n: remote.tail(i, n), remote.entries[i],
                                        remote.urls[i])

        def load(i: int) -> Timestamps:
            ix: Optional[Timestamps] = self.shards[i].timestamps
            if ix is None:
                raise SpillError(f"{self.shards[i].path}: a symbol-major shard in a "
                                 "time-major dataset")
            return ix
        return load

    def _shard_index(self, i: int) -> Timestamps:
        """Shard ``i``'s own index (its rows numbered from 0), whether or not the shards make
        one timeline (a collection of time-major files whose times overlap)."""
        tl = self._one_timeline()
        return tl.shard(i) if tl is not None else self._loader()(i)

    def _one_timeline(self) -> Optional[_Timeline]:
        """The timeline of a time-major dataset; None for a symbol-major one, or a collection
        of time-major files whose times overlap (they are read file by file)."""
        if self.order != "time":
            return None
        try:
            return self._timeline("time ranges")
        except SpillError:
            if self.manifest.get("kind") == "collection":
                return None
            raise

    @property
    def timestamps(self) -> Optional[Timestamps]:
        """The :class:`~spillway.spillfile.Timestamps` index of a time-major dataset, global
        (row numbers across shards): the single time-major file's. None in a symbol-major
        one. Remote: every shard's index read from the end of its object (nothing
        downloaded)."""
        return None if self.order != "time" else self._timeline("timestamps").index()

    @property
    def timestamp_ranges(self) -> Optional[Mapping[int, _Range]]:
        """A mapping ``time -> (start, stop)``: the global rows of each timestamp of a time-major
        dataset (None in a symbol-major one), as the reader's. Keys are int ns, or any time
        bound :meth:`time_ranges` takes."""
        if self.order != "time":
            return None
        return spillfile._TimestampRanges(self._timeline("timestamp ranges").index(), time_ns)

    def time_range(self, start: Any = None, stop: Any = None) -> Optional[_Range]:
        """Time-major datasets: the ONE global row range ``(start_row, stop_row)`` whose times
        lie in ``[start, stop)`` (None: unbounded; a stop below the start is raised to it), as
        the single time-major file gives it: whole cross-sections, perhaps across shards. None
        in a symbol-major dataset (see :meth:`time_ranges`). Bounds as for
        :meth:`time_ranges`. Reads at most two shards' indexes (remote: from the end of their
        objects; a bound at a shard's first time or between two shards' times reads none)."""
        if self.order != "time":
            return None
        tl = self._timeline("time_range")
        a = 0 if start is None else tl.row_at(time_ns(start))
        b = self.offsets[-1] if stop is None else max(tl.row_at(time_ns(stop)), a)
        return a, b

    def group_sizes(self, ranges: Optional[RowRanges] = None) -> NDArray[np.int64]:
        """Time-major datasets: the rows of each timestamp within the global ``ranges`` (default
        all), in order: LightGBM's ``group``, as the single file gives it. Every non-empty range
        must start and stop on a timestamp boundary (:meth:`time_range` gives such ranges);
        SpillError otherwise, and in a symbol-major dataset."""
        ix = self._timeline("group sizes").index()
        parts = [ix.counts[ix.boundary(a):ix.boundary(b)]
                 for a, b in self._ranges(ranges) if b > a]
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)

    def time_ranges(self, start: Any = None, stop: Any = None) -> List[_Range]:
        """Global row ranges whose time lies in ``[start, stop)``: in a time-major dataset ONE
        range (from :meth:`time_range`), or none when it is empty, as the single file gives;
        otherwise each shard's (the reader's ``time_ranges``), adjacent ranges merged. Bounds:
        int nanoseconds, numpy datetime64, pandas Timestamp, datetime (naive means UTC), ISO
        string, or None for unbounded. Remote symbol-major datasets: reads every shard's time
        column (each shard downloaded once, one at a time)."""
        if self._one_timeline() is not None:
            r = self.time_range(start, stop)
            assert r is not None
            return [r] if r[1] > r[0] else []
        out: List[_Range] = []
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

    def split_by_time(self, cut: Any) -> Tuple[List[_Range], List[_Range]]:
        """``(before, after)``: global row ranges with time ``< cut`` and ``>= cut``."""
        return self.time_ranges(None, cut), self.time_ranges(cut, None)
