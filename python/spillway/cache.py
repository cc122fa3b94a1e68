"""A bounded local cache of the shards of remote datasets, safe to share between processes.

    cache = ShardCache("~/.cache/spillway", parse_size("50GiB"))
    with cache.acquire(url, entry, fetch) as pin:       # entry: the manifest's shard entry
        f = spillway.open(pin.path)                     # mapped while the pin is held

Shards are immutable and checksummed, so a cached file is named by its content:
``<cache_dir>/<sha256(dataset directory URL)[:16]>/<shard stem>.<crc hex>.spill`` (a rebuilt shard
of the same name gets a new name). Three kinds of ``flock`` make it safe between processes on one
machine (a local filesystem: ``flock`` over NFS is not reliable):

- ``<name>.lock``, exclusive while a shard is checked or downloaded: one download per shard, a
  second process waits, then finds the file in place;
- the cached file itself, shared while a :class:`Pinned` holds it (while it is mapped); eviction
  takes it exclusively without waiting, so a pinned shard is never evicted;
- ``<cache_dir>/cache.lock``, exclusive while room is made, so two processes do not both count
  the same free space.

Recency is the file's mtime, refreshed on every acquire; room is made before a download by
deleting the least recently used unpinned shards. A download goes to ``.<name>.<pid>.<random>.part``
in the same directory, is checked (length, metadata CRC against the manifest, every chunk with
``verify``), synced and renamed into place; parts left by dead processes are removed.
:class:`MappedShards` maps one remote dataset's shards through the cache, within its limit.
"""
from __future__ import annotations

import errno
import fcntl
import hashlib
import os
import re
import secrets
import threading
import zlib
from collections import OrderedDict
from concurrent.futures import Future, ThreadPoolExecutor
from typing import (Any, Callable, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple,
                    Union)

from .errors import DataError, UsageError

__all__ = ["ShardCache", "Pinned", "MappedShards", "CacheFull", "parse_size", "cache_name",
           "check_shard"]

TRAILER = 64
_MAGIC = b"SPILLEND"
_UNITS = {"": 1, "b": 1, "k": 1 << 10, "kib": 1 << 10, "m": 1 << 20, "mib": 1 << 20,
          "g": 1 << 30, "gib": 1 << 30, "t": 1 << 40, "tib": 1 << 40, "kb": 10**3, "mb": 10**6,
          "gb": 10**9, "tb": 10**12}
_LOOKAHEAD = 256  # runs scanned for the next shards to prefetch
_PART = re.compile(r"^\.(?P<name>.+)\.(?P<pid>\d+)\.[0-9a-f]+\.part$")

#: ``fetch(url, dest_path, expect_len)``: download the object at ``url`` into ``dest_path``.
Fetch = Callable[[str, str, int], Any]


class CacheFull(UsageError):
    """The cache limit cannot hold what was asked (a shard, or the shards that must be mapped
    together). Raise ``cache_limit`` or ask for less at once."""


def parse_size(value: Union[int, str, None], name: str = "cache_limit") -> Optional[int]:
    """``value`` in bytes: an int, or a str such as ``"50GiB"``, ``"512MiB"``, ``"1.5G"``
    (K/M/G/T and KiB..TiB are powers of 1024, KB..TB of 1000). None stays None (no limit).
    TypeError for another type, UsageError for a bad or negative value."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise TypeError(f"{name} must be an int (bytes) or a str such as '50GiB', not "
                        f"{type(value).__name__}")
    if isinstance(value, int):
        n = value
    else:
        m = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]*)?)\s*([A-Za-z]*)\s*", value)
        mult = _UNITS.get(m.group(2).lower()) if m else None
        if mult is None:
            raise UsageError(f"{name}={value!r} is not a size (e.g. 50GiB, 512MiB, or bytes)")
        n = int(float(m.group(1)) * mult)
    if n < 0:
        raise UsageError(f"{name}={value!r} is negative")
    return n


def cache_name(entry: Mapping[str, Any]) -> str:
    """The cached file name of a manifest shard entry: ``<stem>.<crc hex>.spill``."""
    path, crc = str(entry["path"]), str(entry["checksum"])
    if not re.fullmatch(r"crc32:[0-9a-f]{8}", crc):
        raise DataError(f"shard {path!r}: checksum {crc!r} is not crc32:xxxxxxxx")
    stem = path[:-len(".spill")] if path.endswith(".spill") else path
    return re.sub(r"[^A-Za-z0-9._-]", "_", stem) + f".{crc[6:]}.spill"


def _lock(path: str, how: int) -> int:
    """An fd of ``path`` (created if missing) locked with ``flock(how)``."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(fd, how)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _unlock(fd: int) -> None:
    os.close(fd)  # closing the last fd of an open file description drops its flock


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's live process
    return True


def check_shard(path: str, entry: Mapping[str, Any], full: bool = False) -> Optional[str]:
    """Why the file at ``path`` is not the shard of ``entry`` (None: it is): its length, its
    trailer (magic, checksum, layout), its metadata CRC recomputed and compared with the stored
    one and the manifest's; with ``full``, every chunk CRC (:func:`spillway.verify`)."""
    try:
        with open(path, "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            if size != entry["bytes"]:
                return f"{size} bytes, the manifest says {entry['bytes']}"
            if size < TRAILER:
                return "shorter than a trailer"
            fh.seek(size - TRAILER)
            t = fh.read(TRAILER)
            if t[56:64] != _MAGIC or zlib.crc32(t[:48]) != int.from_bytes(t[48:52], "little"):
                return "no valid trailer"
            off, length = int.from_bytes(t[0:8], "little"), int.from_bytes(t[8:16], "little")
            if off + length + TRAILER != size or length > 1 << 30:
                return "the trailer's metadata block does not fit the file"
            fh.seek(off)
            actual = zlib.crc32(fh.read(length))
    except OSError as e:
        return f"unreadable: {e}"
    stored = int.from_bytes(t[40:44], "little")
    if actual != stored:
        return f"metadata CRC {actual:08x}, the trailer says {stored:08x}"
    if f"crc32:{actual:08x}" != entry["checksum"]:
        return f"metadata crc32:{actual:08x}, the manifest says {entry['checksum']}"
    if full:
        from . import SpillError, SpillwayError, verify
        try:
            verify(path)
        except (SpillwayError, SpillError) as e:
            return f"damaged: {e}"
    return None


class Pinned:
    """A cached shard held in the cache: a shared ``flock`` on the file that eviction respects.
    Hold it as long as the file is mapped; :meth:`release` (or leaving the ``with``) drops it."""

    def __init__(self, path: str, fd: int):
        self.path = path
        self._fd: Optional[int] = fd

    def release(self) -> None:
        """Drop the pin (idempotent): the shard may be evicted from now on."""
        fd, self._fd = self._fd, None
        if fd is not None:
            _unlock(fd)

    @property
    def held(self) -> bool:
        return self._fd is not None

    def __enter__(self) -> "Pinned":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.release()

    def __del__(self) -> None:
        self.release()

    def __repr__(self) -> str:
        return f"<Pinned {self.path!r}{'' if self.held else ' (released)'}>"


class ShardCache:
    """The shard cache at ``cache_dir`` holding at most ``limit_bytes`` (None: no limit) of
    cached shards and downloads in flight, across every process using the directory."""

    def __init__(self, cache_dir: Union[str, "os.PathLike[str]"], limit_bytes: Optional[int]):
        self.dir = os.path.abspath(os.path.expanduser(os.fspath(cache_dir)))
        self.limit = parse_size(limit_bytes, "limit_bytes")
        os.makedirs(self.dir, exist_ok=True)
        self._stats = {"downloads": 0, "bytes_downloaded": 0, "hits": 0, "evictions": 0}

    def stats(self) -> Dict[str, int]:
        """This instance's counts: ``downloads``, ``bytes_downloaded``, ``hits``, ``evictions``."""
        return dict(self._stats)

    def path_of(self, url: str, entry: Mapping[str, Any]) -> str:
        """Where the shard ``entry`` at ``url`` is cached (whether or not it is)."""
        rel = str(entry["path"])
        base = url[:-len(rel) - 1] if url.endswith("/" + rel) else url.rsplit("/", 1)[0]
        key = hashlib.sha256(base.encode()).hexdigest()[:16]
        return os.path.join(self.dir, key, cache_name(entry))

    def acquire(self, url: str, entry: Mapping[str, Any], fetch: Fetch,
                verify: bool = False) -> Pinned:
        """The shard ``entry`` (the manifest's) at ``url``, cached and pinned. A cached copy of
        the right length and metadata CRC (and, with ``verify``, every chunk CRC) is used;
        anything else is deleted and downloaded with ``fetch`` (at most once across processes),
        after making room. Raises :class:`CacheFull` when the shard does not fit beside the
        pinned ones, DataError when the download is not the shard the manifest lists."""
        path = self.path_of(url, entry)
        size = int(entry["bytes"])
        if self.limit is not None and size > self.limit:
            raise CacheFull(f"shard {entry['path']!r} ({size} bytes) is larger than the cache "
                            f"limit ({self.limit} bytes)")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        guard = _lock(path + ".lock", fcntl.LOCK_EX)
        try:
            pin = self._cached(path, entry, verify)
            if pin is not None:
                self._stats["hits"] += 1
                return pin
            self._make_room(size, entry)
            self._download(url, path, entry, fetch, verify)
            return self._pin(path)
        finally:
            _unlock(guard)

    # ------------------------------------------------------------------ internals
    def _pin(self, path: str) -> Pinned:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        pin = Pinned(path, fd)  # closes the fd if the lock fails
        fcntl.flock(fd, fcntl.LOCK_SH)
        try:
            os.utime(path)  # recency for the LRU
        except PermissionError:
            pass  # another user's file in a shared cache: its recency stays
        return pin

    def _cached(self, path: str, entry: Mapping[str, Any], verify: bool) -> Optional[Pinned]:
        """The cached copy pinned, if it is intact; a damaged one is deleted."""
        try:
            pin = self._pin(path)
        except FileNotFoundError:
            return None
        if check_shard(path, entry, verify) is None:
            return pin
        pin.release()
        try:  # damaged: a reader still mapping it keeps its inode, the name goes
            os.unlink(path)
        except FileNotFoundError:
            pass
        return None

    def _download(self, url: str, path: str, entry: Mapping[str, Any], fetch: Fetch,
                  verify: bool) -> None:
        d, name = os.path.split(path)
        part = os.path.join(d, f".{name}.{os.getpid()}.{secrets.token_hex(4)}.part")
        size = int(entry["bytes"])
        try:
            fetch(url, part, size)
            why = check_shard(part, entry, verify)
            if why is not None:
                raise DataError(f"{url}: the download is not the shard the manifest lists: {why}")
            # Crash safety: the bytes reach the disk before the name does, and the rename (atomic
            # within one directory) reaches it before we report the shard cached.
            fd = os.open(part, os.O_RDONLY | os.O_CLOEXEC)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
            os.rename(part, path)
            dfd = os.open(d, os.O_RDONLY | os.O_CLOEXEC)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)
        finally:
            try:
                os.unlink(part)
            except FileNotFoundError:
                pass
        self._stats["downloads"] += 1
        self._stats["bytes_downloaded"] += size
        line = f"{os.getpid()} {name}\n".encode()
        fd = os.open(os.path.join(self.dir, "downloads.log"),
                     os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            os.write(fd, line)  # one small O_APPEND write: whole lines across processes
        finally:
            os.close(fd)

    def _entries(self) -> Tuple[List[Tuple[float, int, str]], int]:
        """``([(mtime, bytes, path)] of cached shards, bytes of live downloads)``; parts left
        by dead processes are removed on the way."""
        shards, parts = [], 0
        for sub in os.scandir(self.dir):
            if not sub.is_dir(follow_symlinks=False):
                continue
            for e in os.scandir(sub.path):
                try:
                    st = e.stat(follow_symlinks=False)
                except FileNotFoundError:
                    continue
                m = _PART.match(e.name)
                if m:
                    if _alive(int(m.group("pid"))):
                        parts += st.st_size
                    else:
                        try:
                            os.unlink(e.path)
                        except FileNotFoundError:
                            pass
                elif e.name.endswith(".spill") and not e.name.startswith("."):
                    shards.append((st.st_mtime, st.st_size, e.path))
        return shards, parts

    def _make_room(self, size: int, entry: Mapping[str, Any]) -> None:
        """Evict least recently used unpinned shards until ``size`` more bytes fit, within the
        limit and within the room the cache directory's filesystem has."""
        guard = _lock(os.path.join(self.dir, "cache.lock"), fcntl.LOCK_EX)
        try:
            shards, parts = self._entries()
            used = parts + sum(s for _, s, _ in shards)
            st = os.statvfs(self.dir)
            disk = used + st.f_bavail * st.f_frsize if st.f_blocks else None
            caps = [c for c in (self.limit, disk) if c is not None]
            if not caps:
                return
            cap = min(caps)
            pinned = 0
            for _, n, path in sorted(shards):
                if used + size <= cap:
                    break
                if self._evict(path):
                    used -= n
                else:
                    pinned += n
            if used + size > cap:
                what = (f"the cache limit ({self.limit} bytes)" if cap == self.limit else
                        f"the filesystem of {self.dir} ({cap - used} bytes free after evicting)")
                raise CacheFull(
                    f"{what} cannot hold shard {entry['path']!r} ({size} bytes): {pinned} bytes "
                    f"of shards are pinned (mapped) and {parts} bytes are being downloaded in "
                    f"{self.dir}")
        finally:
            _unlock(guard)

    def _evict(self, path: str) -> bool:
        """Delete ``path`` unless it is pinned or being checked: whether it is gone."""
        try:
            guard = _lock(path + ".lock", fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        try:
            try:
                fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            except FileNotFoundError:
                return True
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as e:
                os.close(fd)
                if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                    return False
                raise
            try:
                os.unlink(path)
            finally:
                os.close(fd)
            self._stats["evictions"] += 1
            return True
        finally:
            _unlock(guard)

    def __repr__(self) -> str:
        return f"<ShardCache {self.dir!r} limit={self.limit}>"



class MappedShards:
    """The shards of one remote dataset, mapped on first use through a :class:`ShardCache`,
    with at most the cache limit of them mapped (pinned) at once. A shard is *held* while a
    reader uses it; shards mapped but not held are closed, least recently used first, when
    another needs the room. Thread-safe (a prefetch thread opens shards beside the reader)."""

    def __init__(self, urls: List[str], entries: List[Mapping[str, Any]], cache: ShardCache,
                 fetch: Fetch, verify: bool = False):
        self.urls, self.entries, self.cache = urls, entries, cache
        self._fetch, self._verify = fetch, verify
        self._files: "OrderedDict[int, Tuple[Any, Pinned]]" = OrderedDict()  # LRU first
        self._holds: Dict[int, int] = {}
        self._reserved = 0
        self._lock = threading.Lock()
        self._opening: Dict[int, threading.Lock] = {}

    @property
    def limit(self) -> Optional[int]:
        return self.cache.limit

    def size(self, i: int) -> int:
        return int(self.entries[i]["bytes"])

    def mapped(self) -> List[int]:
        """The shards mapped now (least recently used first)."""
        with self._lock:
            return list(self._files)

    def hold(self, i: int) -> Any:
        """Shard ``i`` mapped (downloaded if needed) and held until :meth:`unhold`: its
        ``SpillFile``. Raises :class:`CacheFull` when the held shards leave no room for it."""
        f = self._hold(i, make_room=True)
        assert f is not None, "hold makes room or raises"
        return f

    def try_hold(self, i: int, after: Sequence[int] = ()) -> Optional[bool]:
        """Prefetch: hold shard ``i`` if it is mapped or fits in the free room (closing nothing)
        and the shards ``after`` (read before it) are mapped, so a later shard never takes the
        room of an earlier one: True (held), False (no room now) or None (it failed: the error,
        a bad download, is left for :meth:`hold` to raise, not retried by prefetching)."""
        with self._lock:
            if any(j not in self._files for j in after):
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

    def read(self, runs: Sequence[Tuple[int, Any]], read: Callable[[Any, Any], Iterator[Any]],
             prefetch: int = 2) -> Iterator[Any]:
        """``read(file, local ranges)`` of every run ``(shard, local ranges)`` in order, each
        shard held while read and closed after its last run; the next ``prefetch`` shards are
        mapped (downloaded) ahead on a background thread, within the free room."""
        last = {i: k for k, (i, _) in enumerate(runs)}
        pool = ThreadPoolExecutor(1, thread_name_prefix="spillway-prefetch") if prefetch else None
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

    def _hold(self, i: int, make_room: bool) -> Optional[Any]:
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
        """Prefetch the next ``prefetch`` shards after run ``k``, in the order they are read."""
        for j in [j for j, f in ahead.items() if f.done() and f.result() is False]:
            del ahead[j]  # no room then: try again
        current, upcoming = runs[k][0], []
        for j, _ in runs[k + 1:k + 1 + _LOOKAHEAD]:
            if len(upcoming) == prefetch:
                break
            if j != current and j not in upcoming:
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


def _open_shard(path: str, entry: Mapping[str, Any]) -> Any:
    from . import spillfile
    f = spillfile.open(path)
    if f.nrows != entry["rows"]:
        f.close()
        raise spillfile.SpillError(f"{path}: {f.nrows} rows, the manifest says {entry['rows']}")
    return f
