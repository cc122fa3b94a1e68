"""Collections: independent spill files with one schema (``spillway manifest --collection``),
read as one dataset. The helpers :mod:`spillway.dataset` uses for their manifests.

A collection's manifest (``dataset.json``) is format ``spillway-dataset`` version 2.0 with
``"kind": "collection"``; a 1.x reader refuses it, since it would read every file's symbol codes
against one table. Its fields::

    format   "spillway-dataset"
    version  [2, minor]
    kind     "collection"
    order    "symbol" or "time": every file's row order
    schema   [{"name", "dtype", "role"}, ...]: every file's columns, in order
    nrows    rows of all files
    files    [{"path", "rows", "bytes", "checksum", "time_range"}, ...], in row order: path
             relative to the manifest's directory; bytes and checksum ("crc32:" of the metadata
             block) pin the file; time_range [min, max] ns, or null for an empty file
    symbols  the union of the files' symbol tables: names in order of first appearance across
             the files, in their order
    generation  1 when first written, one more each time it is replaced

The files' symbol tables differ: a reader takes each file's own table from the file and maps its
codes to the union's by name (:func:`code_maps`), so that one code means one symbol across the
collection. Rows are numbered across the files in the manifest's order.
"""
from __future__ import annotations

from typing import Any, Dict, List, Mapping, Sequence

import numpy as np

from .spillfile import SpillError

__all__ = ["FORMAT", "KIND", "VERSION_MAJOR", "is_collection", "check_collection",
           "union_symbols", "code_maps", "union_codes"]

FORMAT = "spillway-dataset"
KIND = "collection"
#: The major version of collection manifests this reader reads.
VERSION_MAJOR = 2
ORDERS = ("symbol", "time")


def is_collection(manifest: Mapping[str, Any]) -> bool:
    """Whether the parsed ``dataset.json`` ``manifest`` says it is a collection (its ``kind``);
    :func:`check_collection` then checks the rest."""
    return manifest.get("kind") == KIND


def _is_count(v: Any) -> bool:
    """A JSON unsigned integer (not a bool, which Python counts as one)."""
    return isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 1 << 64


def _is_time(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and -(1 << 63) <= v < 1 << 63


def _is_relative(p: Any) -> bool:
    """A path as a manifest stores it: relative, inside the manifest's directory."""
    return isinstance(p, str) and p != "" and not p.startswith("/") and "\\" not in p \
        and ".." not in p.split("/") and "://" not in p


def _is_checksum(c: Any) -> bool:
    if not isinstance(c, str) or not c.startswith("crc32:") or len(c) != 14:
        return False
    return all(ch in "0123456789abcdef" for ch in c[6:])


def _check_file(e: Any, where: str, i: int) -> None:
    ok = isinstance(e, dict) and _is_relative(e.get("path")) and _is_count(e.get("rows")) \
        and _is_count(e.get("bytes")) and _is_checksum(e.get("checksum"))
    if not ok:
        raise SpillError(f"{where}: file {i} is not {{path (relative, inside the manifest's "
                         f"directory), rows, bytes, checksum (crc32:xxxxxxxx)}}: {e!r:.200}")
    r = e.get("time_range")
    if r is not None and not (isinstance(r, list) and len(r) == 2 and all(map(_is_time, r))
                              and r[0] <= r[1]):
        raise SpillError(f"{where}: file {i} ({e['path']}): time_range is not null or "
                         f"[min, max] ns: {r!r:.100}")


def check_collection(manifest: Any, where: str) -> Dict[str, Any]:
    """Check the parsed ``dataset.json`` ``manifest`` (read from ``where``, named in errors) as
    a collection's: format, major version, kind, order, schema, files (each path relative to
    the manifest, rows, bytes, checksum, time range), ``nrows`` their sum, ``symbols`` unique
    non-empty names. Returns it; raises :class:`~spillway.spillfile.SpillError` naming the
    first field that is wrong. Untrusted input: never anything but that error."""
    m = manifest
    if not isinstance(m, dict) or m.get("format") != FORMAT:
        raise SpillError(f"{where}: not a {FORMAT} manifest")
    v = m.get("version")
    if not (isinstance(v, list) and len(v) == 2 and all(map(_is_count, v))) \
            or v[0] != VERSION_MAJOR or m.get("kind") != KIND:
        raise SpillError(f"{where}: version {v!r:.40} kind {m.get('kind')!r:.40} is not a "
                         f"{FORMAT} {VERSION_MAJOR}.x collection")
    if m.get("order") not in ORDERS:
        raise SpillError(f"{where}: order {m.get('order')!r:.40} is not one of {ORDERS}")
    schema = m.get("schema")
    if not isinstance(schema, list) or not schema or not all(
            isinstance(c, dict) and all(isinstance(c.get(k), str) and c[k]
                                        for k in ("name", "dtype", "role")) for c in schema):
        raise SpillError(f"{where}: schema is not a list of {{name, dtype, role}}")
    files = m.get("files")
    if not isinstance(files, list) or not files:
        raise SpillError(f"{where}: a collection lists no files")
    for i, e in enumerate(files):
        _check_file(e, where, i)
    paths = [e["path"] for e in files]
    if len(set(paths)) != len(paths):
        twice = next(p for p in paths if paths.count(p) > 1)
        raise SpillError(f"{where}: file {twice!r} is listed twice")
    total = sum(e["rows"] for e in files)
    if m.get("nrows") != total or not _is_count(m.get("nrows")):
        raise SpillError(f"{where}: nrows is {m.get('nrows')!r:.40}, its files hold {total} rows")
    symbols = m.get("symbols")
    if not isinstance(symbols, list) or not all(isinstance(s, str) and s for s in symbols):
        raise SpillError(f"{where}: symbols is not a list of names")
    if len(set(symbols)) != len(symbols):
        twice = next(s for s in symbols if symbols.count(s) > 1)
        raise SpillError(f"{where}: symbol {twice!r} is in the symbol table twice")
    g = m.get("generation")
    if g is not None and not (_is_count(g) and g >= 1):
        raise SpillError(f"{where}: generation {g!r:.40} is not a positive integer")
    return m


def union_symbols(file_symbols: Sequence[Sequence[str]]) -> List[str]:
    """The union of the files' symbol tables (``file_symbols``, one list of names per file, in
    the collection's order): names in order of first appearance, as the manifest's ``symbols``
    is made. A reader compares it with the manifest's to check that the files are its own."""
    seen: Dict[str, None] = {}
    for names in file_symbols:
        for n in names:
            seen.setdefault(n, None)
    return list(seen)


def code_maps(union_symbols: Sequence[str],
              file_symbols: Sequence[Sequence[str]]) -> List[np.ndarray]:
    """Per file, a ``uint32`` array mapping its symbol codes to the collection's: entry ``c`` of
    file ``i``'s array is the union code (index in ``union_symbols``, the manifest's
    ``symbols``) of the name the file's own table (``file_symbols[i]``) gives code ``c``. A
    name missing from the union, or a union naming a symbol twice, raises
    :class:`~spillway.spillfile.SpillError`: the file is not one of the collection's."""
    index = {name: code for code, name in enumerate(union_symbols)}
    if len(index) != len(union_symbols):
        twice = next(s for s in union_symbols if list(union_symbols).count(s) > 1)
        raise SpillError(f"the collection's symbol table names {twice!r} twice")
    if len(index) > 1 << 32:
        raise SpillError(f"the collection has {len(index)} symbols, more than uint32 codes hold")
    maps = []
    for i, names in enumerate(file_symbols):
        try:
            maps.append(np.fromiter((index[n] for n in names), dtype=np.uint32, count=len(names)))
        except KeyError as e:
            raise SpillError(f"file {i}: symbol {e.args[0]!r} is not in the collection's symbol "
                             "table") from None
    return maps


def union_codes(codes: np.ndarray, code_map: np.ndarray) -> np.ndarray:
    """The file codes ``codes`` (a file's ``symbol`` column, or part of it) as union codes, by
    its ``code_map`` (from :func:`code_maps`): a new ``uint32`` array. A code outside the file's
    table raises :class:`~spillway.spillfile.SpillError`."""
    codes = np.asarray(codes)
    if codes.size:
        low, high = int(codes.min()), int(codes.max())
        bad = low if low < 0 else high
        if low < 0 or high >= len(code_map):
            raise SpillError(f"symbol code {bad} is outside the file's table of {len(code_map)}")
    out: np.ndarray = code_map[codes]
    return out
