"""One remote dataset's shards mapped through a :class:`~spillway.cache.ShardCache`, within its
limit: held while read, closed after their last use, and the next ones downloaded ahead on
background threads (prefetch) so that an epoch does not wait at shard boundaries."""
from __future__ import annotations

import threading
from collections import OrderedDict
from concurrent.futures import Future, ThreadPoolExecutor
from typing import (TYPE_CHECKING, Any, Callable, Dict, Iterator, List, Mapping, Optional,
                    Sequence, Tuple)

from .cache import CacheFull, Fetch, Pinned, ShardCache
from .errors import InternalError

if TYPE_CHECKING:
    from .spillfile import SpillFile

__all__ = ["MappedShards", "RemoteShard"]

_LOOKAHEAD = 256  # runs scanned for the next shards to prefetch
PREFETCH_THREADS = 2  # downloads at once while prefetching


class MappedShards:
    """The shards of one remote dataset, mapped on first use through a :class:`ShardCache`,
    with at most the cache limit of them mapped (pinned) at once. A shard is *held* while a
    reader uses it; shards mapped but not held are closed, least recently used first, when
    another needs the room. Thread-safe (a prefetch thread opens shards beside the reader)."""

    def __init__(self, urls: List[str], entries: List[Mapping[str, Any]], cache: ShardCache,
                 fetch: Fetch, verify: bool = False,
                 tail: Optional[Callable[[str, int], bytes]] = None):
        self.urls, self.entries, self.cache = urls, entries, cache
        self._fetch, self._verify, self._tail = fetch, verify, tail
        self._files: "OrderedDict[int, Tuple[SpillFile, Pinned]]" = OrderedDict()  # LRU first
        self._holds: Dict[int, int] = {}
        self._reserved = 0
        self._lock = threading.Lock()
        self._opening: Dict[int, threading.Lock] = {}

    @property
    def limit(self) -> Optional[int]:
        return self.cache.limit

    def size(self, i: int) -> int:
        return int(self.entries[i]["bytes"])

    def tail(self, i: int, n: int) -> bytes:
        """The last ``n`` bytes of shard ``i``'s object (its trailer and metadata), read from the
        store with no download: what a time-major dataset reads each shard's index from."""
        if self._tail is None:
            raise InternalError("MappedShards made without a tail reader")
        return self._tail(self.urls[i], n)

    def mapped(self) -> List[int]:
        """The shards mapped now (least recently used first)."""
        with self._lock:
            return list(self._files)

    def hold(self, i: int) -> SpillFile:
        """Shard ``i`` mapped (downloaded if needed) and held until :meth:`unhold`: its
        ``SpillFile``. Raises :class:`CacheFull` when the held shards leave no room for it."""
        f = self._hold(i, make_room=True)
        assert f is not None, "hold makes room or raises"
        return f

    def try_hold(self, i: int, after: Sequence[int] = ()) -> Optional[bool]:
        """Prefetch: hold shard ``i`` if it is mapped or fits in the free room (closing nothing)
        beside the shards ``after`` (read before it) not mapped yet, so a later shard never
        takes the room of an earlier one: True (held), False (no room now) or None (it failed:
        the error, a bad download, is left for :meth:`hold` to raise, not retried by
        prefetching)."""
        with self._lock:
            pending = sum(self.size(j) for j in after if j not in self._files)
            used = self._reserved + sum(self.size(j) for j in self._files)
            if pending and self.limit is not None and used + pending + self.size(i) > self.limit:
                return False
        try:
            return self._hold(i, make_room=False) is not None
        except Exception:
            return None

    def unhold(self, i: int, close: bool = False) -> None:
        """Release one hold of shard ``i``; with ``close``, close and unpin it once unheld."""
        with self._lock:
            self._holds[i] -= 1
            if self._holds[i] == 0:
                del self._holds[i]
                if close and i in self._files:
                    self._close(i)

    def close(self) -> None:
        """Close every shard and release its pin (views handed out stay valid)."""
        with self._lock:
            for i in list(self._files):
                self._close(i)
            self._holds.clear()

    def check_room(self, runs: Sequence[Tuple[int, Any]], batch_rows: int,
                   window: Optional[int] = None) -> None:
        """Refuse (:class:`CacheFull`), before any download, a limit below what reading ``runs``
        (``(shard, local ranges)`` in order) in batches of ``batch_rows`` must keep mapped: the
        shards one batch reads in more than one piece; with ``window`` (``shuffle="shards"``),
        the shards of one window, needed together for each to be downloaded once."""
        if self.limit is None or not runs:
            return
        sizes = [self.size(i) for i in range(len(self.entries))]
        per_batch: Dict[int, List[int]] = {}
        at = 0
        for i, local in runs:
            n = sum(b - a for a, b in local)
            for k in {at // batch_rows, (at + n - 1) // batch_rows}:
                per_batch.setdefault(k, []).append(i)  # a run's middle batches are its alone
            at += n
        need = max(_peak(seq, sizes) for seq in per_batch.values())
        what = f"the shards one batch of {batch_rows} rows reads"
        if window is not None:
            whole = _peak([i for i, _ in runs], sizes)
            if whole > need:
                need, what = whole, f"the shards of one window (window={window})"
        if need > self.limit:
            raise CacheFull(f"cache_limit ({self.limit} bytes) cannot hold {what}: {need} bytes; "
                            f"raise cache_limit" + (" or lower window" if window else ""))

    def read(self, runs: Sequence[Tuple[int, Any]],
             read: Callable[[SpillFile, Any], Iterator[Any]],
             prefetch: int = 2) -> Iterator[Any]:
        """``read(file, local ranges)`` of every run ``(shard, local ranges)`` in order, each
        shard held while read and closed after its last run; the next ``prefetch`` shards are
        mapped (downloaded) ahead on a background thread, within the free room."""
        last = {i: k for k, (i, _) in enumerate(runs)}
        # Two downloads at once: one streams while the other is checked and renamed.
        pool = ThreadPoolExecutor(min(prefetch, PREFETCH_THREADS),
                                  thread_name_prefix="spillway-prefetch") if prefetch else None
        ahead: Dict[int, "Future[Optional[bool]]"] = {}
        try:
            for k, (i, local) in enumerate(runs):
                prefetched = _claim(ahead.pop(i, None))
                try:
                    f = self.hold(i)
                except CacheFull:  # prefetched shards hold the room: give it back, once
                    self._drain(ahead)
                    f = self.hold(i)
                if prefetched:
                    self.unhold(i)
                try:
                    if pool is not None:
                        self._schedule(pool, ahead, runs, k, prefetch)
                    yield from read(f, local)
                finally:
                    self.unhold(i, close=last[i] == k)
        finally:
            self._drain(ahead)
            if pool is not None:
                pool.shutdown(wait=True)

    # ------------------------------------------------------------------ internals
    def _close(self, i: int) -> None:
        f, pin = self._files.pop(i)
        f.close()
        pin.release()

    def _room(self, i: int, make_room: bool) -> bool:
        """Reserve shard ``i``'s bytes under the limit, closing idle shards (least recently used
        first) if ``make_room``; whether they are reserved."""
        need = self.size(i)
        with self._lock:
            limit = self.limit
            used = self._reserved + sum(self.size(j) for j in self._files)
            if limit is not None and used + need > limit and make_room:
                for j in [j for j in self._files if j not in self._holds]:
                    used -= self.size(j)
                    self._close(j)
                    if used + need <= limit:
                        break
            if limit is not None and used + need > limit:
                if not make_room:
                    return False
                raise CacheFull(
                    f"the cache limit ({limit} bytes) cannot map shard "
                    f"{self.entries[i]['path']!r} ({need} bytes) beside the {len(self._holds)} "
                    f"shards in use ({used} bytes): raise cache_limit or read fewer shards at once")
            self._reserved += need
            return True

    def _hold(self, i: int, make_room: bool) -> Optional[SpillFile]:
        with self._lock:
            gate = self._opening.setdefault(i, threading.Lock())
        with gate:  # one opener per shard: a second waits, then finds it mapped
            with self._lock:
                if i in self._files:
                    self._holds[i] = self._holds.get(i, 0) + 1
                    self._files.move_to_end(i)
                    return self._files[i][0]
            need = self.size(i)
            if not self._room(i, make_room):
                return None
            try:
                pin = self._acquire(i, make_room)
                try:
                    f = _open_shard(pin.path, self.entries[i])
                except BaseException:
                    pin.release()
                    raise
            finally:
                with self._lock:
                    self._reserved -= need
            with self._lock:
                self._files[i] = (f, pin)
                self._holds[i] = self._holds.get(i, 0) + 1
            return f

    def _schedule(self, pool: ThreadPoolExecutor, ahead: Dict[int, "Future[Optional[bool]]"],
                  runs: Sequence[Tuple[int, Any]], k: int, prefetch: int) -> None:
        """Prefetch the next ``prefetch`` shards not mapped yet after run ``k``, in the order they
        are read (a shard mapped already, such as the other shards of a window, takes no
        slot)."""
        for j in [j for j, f in ahead.items() if f.done() and f.result() is False]:
            del ahead[j]  # no room then: try again
        current = runs[k][0]
        upcoming: List[int] = []
        with self._lock:
            mapped = set(self._files)
        for j, _ in runs[k + 1:k + 1 + _LOOKAHEAD]:
            if len(upcoming) == prefetch:
                break
            if j != current and j not in upcoming and j not in mapped:
                upcoming.append(j)
        for n, j in enumerate(upcoming):
            if j not in ahead:
                ahead[j] = pool.submit(self.try_hold, j, upcoming[:n])

    def _drain(self, ahead: Dict[int, "Future[Optional[bool]]"]) -> None:
        """Give back every prefetch's hold (the shards stay mapped until the room is needed)."""
        for j in list(ahead):
            if _claim(ahead.pop(j)):
                self.unhold(j)

    def _acquire(self, i: int, retry: bool) -> Pinned:
        try:
            return self.cache.acquire(self.urls[i], self.entries[i], self._fetch, self._verify)
        except CacheFull:
            if not retry:
                raise
        with self._lock:  # our idle mappings pin room the cache needs: unpin them, once
            for j in [j for j in self._files if j not in self._holds]:
                self._close(j)
        return self.cache.acquire(self.urls[i], self.entries[i], self._fetch, self._verify)



class RemoteShard:
    """Shard ``i`` of a remote dataset: ``nrows``, ``path`` (its URL) and ``entry`` from the
    manifest; any other attribute is the mapped ``SpillFile``'s (downloading it on first use).
    It stays mapped until the dataset needs the room; readers of many shards should use the
    :class:`~spillway.Dataset`'s methods, which keep within the cache limit."""

    def __init__(self, ds: Any, i: int):
        self._ds, self._i = ds, i
        self.entry = ds.manifest["shards"][i]
        self.nrows: int = self.entry["rows"]
        assert ds._remote is not None
        self.path: str = ds._remote.urls[i]

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):  # never map for a protocol lookup (copy, pickle)
            raise AttributeError(name)
        with self._ds._using(self._i) as f:
            return getattr(f, name)

    def __repr__(self) -> str:
        return f"<remote shard {self.path!r}: {self.nrows} rows>"

def _claim(fut: "Optional[Future[Optional[bool]]]") -> bool:
    """Whether a prefetch holds its shard (one not started yet is cancelled)."""
    if fut is None or fut.cancel():
        return False
    return bool(fut.result())


def _peak(seq: Sequence[int], sizes: Sequence[int]) -> int:
    """The most bytes mapped at once to read shards ``seq`` in order with none read twice: at
    each step, the shards used both at or before it and at or after it."""
    first: Dict[int, int] = {}
    last: Dict[int, int] = {}
    for p, i in enumerate(seq):
        first.setdefault(i, p)
        last[i] = p
    live = best = 0
    for p, i in enumerate(seq):
        if first[i] == p:
            live += sizes[i]
        best = max(best, live)
        if last[i] == p:
            live -= sizes[i]
    return best


def _open_shard(path: str, entry: Mapping[str, Any]) -> SpillFile:
    from . import spillfile
    f = spillfile.open(path)
    if f.nrows != entry["rows"]:
        f.close()
        raise spillfile.SpillError(f"{path}: {f.nrows} rows, the manifest says {entry['rows']}")
    return f
