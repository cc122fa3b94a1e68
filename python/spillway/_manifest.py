"""Dataset manifests (``dataset.json``) as :class:`spillway.Dataset` reads them: a sharded
build's (format 1.x) or a collection's (2.x, :mod:`spillway._collection`), checked before any
shard is opened; and the manifest a list of independent spill files would have
(:func:`files_manifest`), for :meth:`spillway.Dataset.from_files`."""
from __future__ import annotations

import json
import os
from typing import Any, Dict, List, Sequence, Union

from . import _collection
from .spillfile import SpillError, SpillFile

FORMAT = "spillway-dataset"
#: The row orders a manifest names (``order``; absent before version 1.2: symbol).
ORDERS = ("symbol", "time")

__all__ = ["read_manifest", "parse_manifest", "metadata_crc", "files_manifest"]


def metadata_crc(path: str, size: int) -> int:
    """The trailer's metadata checksum (SPEC.md: trailer bytes 40..44)."""
    with open(path, "rb") as fh:
        fh.seek(size - 64 + 40)
        return int.from_bytes(fh.read(4), "little")


def parse_manifest(data: bytes, where: str) -> Dict[str, Any]:
    """The manifest ``data`` (read from ``where``, named in errors) checked for its format and
    version, and, for a time-major dataset (``"order": "time"``, version 1.2), each shard's
    ``time_range``, in time order. A collection's ``files`` are also its ``shards``, so that
    readers treat both kinds alike."""
    if len(data) > 64 << 20:
        raise SpillError(f"{where}: too large for a dataset manifest")
    try:
        m = json.loads(data)
    except ValueError as err:
        raise SpillError(f"{where}: not a dataset manifest: {err}") from None
    if isinstance(m, dict) and _collection.is_collection(m):
        m = _collection.check_collection(m, where)
        m["shards"] = m["files"]
        return m
    if not isinstance(m, dict) or m.get("format") != FORMAT or \
            not isinstance(m.get("version"), list) or m["version"][:1] != [1]:
        raise SpillError(f"{where}: not a {FORMAT} 1.x manifest (nor a 2.x collection)")
    shards = m.get("shards")
    if not isinstance(shards, list) or not shards:
        raise SpillError(f"{where}: no shards")
    for e in shards:
        ok = isinstance(e, dict) and isinstance(e.get("path"), str) and \
            all(_is_count(e.get(k)) for k in ("rows", "bytes")) and \
            isinstance(e.get("checksum"), str)
        p = e.get("path", "") if isinstance(e, dict) else ""
        if not ok or not p or p.startswith("/") or "\\" in p or ".." in p.split("/"):
            raise SpillError(f"{where}: a shard entry is not {{path (relative), rows, bytes, "
                             f"checksum}}: {e!r:.200}")
    order = m.get("order", "symbol")
    if order not in ORDERS:
        raise SpillError(f"{where}: order {order!r:.40} is not one of {ORDERS}")
    if order == "time":
        _check_timeline(shards, where)
    return m


def _check_timeline(shards: List[Any], where: str) -> None:
    """The shards of a time-major dataset (version 1.2: ``"order": "time"``): each with its
    ``time_range`` ``[first, last]`` (ns) or null when empty, each starting after the last
    time of the shards before it (a timestamp's rows are in one shard)."""
    last = None
    for i, e in enumerate(shards):
        r = e.get("time_range")
        if r is None and e["rows"] == 0:
            continue
        if not (isinstance(r, list) and len(r) == 2 and all(map(_is_time, r)) and r[0] <= r[1]):
            raise SpillError(f"{where}: shard {i} ({e['path']}) of a time-major dataset: "
                             f"time_range is not [first, last] ns: {r!r:.100}")
        if last is not None and r[0] <= last:
            raise SpillError(f"{where}: shard {i} ({e['path']}) starts at time {r[0]}, not "
                             f"after the shards before it (last time {last})")
        last = r[1]


def _is_count(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


def _is_time(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and -(1 << 63) <= v < 1 << 63


def read_manifest(path: Union[str, "os.PathLike[str]"]) -> Dict[str, Any]:
    """The manifest at ``path``, checked for its format and major version."""
    path = os.fspath(path)
    if os.path.getsize(path) > 64 << 20:
        raise SpillError(f"{path}: too large for a dataset manifest")
    with open(path, "rb") as fh:
        return parse_manifest(fh.read(), path)


def _schema(f: SpillFile) -> List[Dict[str, str]]:
    return [{"name": c, "dtype": f.column_info(c).dtype_name, "role": f.column_info(c).role}
            for c in f.columns]


def files_manifest(paths: Sequence[str], files: Sequence[SpillFile]) -> Dict[str, Any]:
    """The collection manifest of the open spill ``files`` (at ``paths``, absolute), as
    ``spillway manifest --collection`` writes it (paths aside): the files must have the same
    columns (names, dtypes, roles, in order) and row order, else SpillError naming the file and
    the first column that differs."""
    first, ref = files[0], _schema(files[0])
    for p, f in zip(paths[1:], files[1:]):
        if f.order != first.order:
            raise SpillError(f"{p}: its rows are {f.order}-major, {paths[0]}'s {first.order}-major")
        cols = _schema(f)
        for k in range(max(len(cols), len(ref))):
            mine = cols[k] if k < len(cols) else None
            theirs = ref[k] if k < len(ref) else None
            if mine != theirs:
                raise SpillError(f"{p}: column {k} is {_describe(mine)}, {paths[0]}'s is "
                                 f"{_describe(theirs)}: not one schema")
    if len(set(paths)) != len(paths):
        raise SpillError(f"{next(p for p in paths if paths.count(p) > 1)}: listed twice")
    entries = []
    for p, f in zip(paths, files):
        size = os.path.getsize(p)
        entries.append({"path": p, "rows": f.nrows, "bytes": size,
                        "checksum": f"crc32:{metadata_crc(p, size):08x}"})
    return {"format": FORMAT, "version": [_collection.VERSION_MAJOR, 0],
            "kind": _collection.KIND, "order": first.order, "schema": ref,
            "nrows": sum(f.nrows for f in files), "files": entries, "shards": entries,
            "symbols": _collection.union_symbols([f.symbols for f in files])}


def _describe(c: Any) -> str:
    return "absent" if c is None else f"{c['name']!r} ({c['dtype']}, {c['role']})"
