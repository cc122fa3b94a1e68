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
``verify``) and renamed into place, not synced: a copy written in an earlier boot (its
``.boot`` mark says which) gets every chunk checked once before it is used, so pages lost in a
machine crash are found; parts left by dead processes are removed.
:class:`spillway._mapped.MappedShards` maps one remote dataset's shards through the cache.
"""
from __future__ import annotations

import errno
import fcntl
import hashlib
import os
import re
import secrets
import zlib
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple, Union

from .errors import DataError, UsageError

__all__ = ["ShardCache", "Pinned", "CacheFull", "parse_size", "cache_name", "check_shard"]

TRAILER = 64
_MAGIC = b"SPILLEND"
_UNITS = {"": 1, "b": 1, "k": 1 << 10, "kib": 1 << 10, "m": 1 << 20, "mib": 1 << 20,
          "g": 1 << 30, "gib": 1 << 30, "t": 1 << 40, "tib": 1 << 40, "kb": 10**3, "mb": 10**6,
          "gb": 10**9, "tb": 10**12}
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
        if m is None or mult is None:
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


def alive(pid: int) -> bool:
    """Whether process ``pid`` runs on this machine (a zombie, killed but not yet reaped, does
    not; another user's does)."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False
    except (OSError, IndexError):  # no /proc: ask the kernel
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            pass
        return True


def _boot_id() -> str:
    try:
        with open("/proc/sys/kernel/random/boot_id") as fh:
            return fh.read().strip()
    except OSError:
        return ""  # unknown: no copy is ever trusted without a full check


_BOOT = _boot_id()


def _boot_mark(path: str) -> Optional[str]:
    """The boot in which the cached file at ``path`` was written or fully checked."""
    try:
        with open(path + ".boot") as fh:
            return fh.read().strip() or None
    except OSError:
        return None


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def _mark_boot(path: str) -> None:
    if not _BOOT:
        return
    with open(path + ".boot", "w") as fh:
        fh.write(_BOOT)


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
        # A copy written in an earlier boot may have lost pages that were never synced (the
        # cache does not fsync: see _download): every chunk is checked once, then trusted.
        trusted = _boot_mark(path) == _BOOT
        if check_shard(path, entry, verify or not trusted) is None:
            if not trusted:
                _mark_boot(path)
            return pin
        pin.release()
        _unlink(path)  # damaged: a reader still mapping it keeps its inode, the name goes
        _unlink(path + ".boot")
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
            # No fsync: forcing a shard to disk costs about as much as downloading it, and the
            # page cache serves it whole until the machine restarts. A copy whose boot mark is
            # not this boot's gets every chunk checked before it is used (_cached).
            os.rename(part, path)
            _mark_boot(path)
        finally:
            _unlink(part)
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
                    if alive(int(m.group("pid"))):
                        parts += st.st_size
                    else:
                        _unlink(e.path)
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
                _unlink(path + ".boot")
            finally:
                os.close(fd)
            self._stats["evictions"] += 1
            return True
        finally:
            _unlock(guard)

    def __repr__(self) -> str:
        return f"<ShardCache {self.dir!r} limit={self.limit}>"
