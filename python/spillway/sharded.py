"""The sharded build's engine-neutral building blocks (they need the extension): ``count`` (the
map), ``plan_cs`` (the reduce), ``write_manifest`` (the commit) and ``verify_dataset``. Every
path may be a URL (``s3://bucket/train/day/...``): files bound for a bucket are written in
``scratch`` (default: the temporary directory) and uploaded; files in one are fetched there.
``spillway.dataset`` re-exports them."""
from __future__ import annotations

import json
import os
from types import ModuleType
from typing import Any, Dict, Mapping, Optional, Sequence, Union

from ._options import check_storage, options_json

#: A local path (str or ``os.PathLike``) or, where the docstring says so, a URL (``s3://…``).
PathLike = Union[str, "os.PathLike[str]"]

__all__ = ["count", "plan_cs", "write_manifest", "verify_dataset"]


def _native() -> ModuleType:
    from . import _need_native
    return _need_native()


def storage_json(storage_options: Optional[Mapping[str, Any]]) -> str:
    """``storage_options`` as the extension takes them (``"{}"``: none)."""
    return json.dumps(check_storage(storage_options) if storage_options else {})


def is_url(path: object) -> bool:
    """Whether ``path`` names an object in a store (``scheme://…``), not a local file."""
    return isinstance(path, str) and "://" in path


def _path(p: Optional[PathLike]) -> Optional[str]:
    return None if p is None else os.fspath(p)


def count(input: PathLike, output: PathLike, *, shard: Optional[str] = None,
          symbols: Optional[str] = None, **options: Any) -> Dict[str, Any]:
    """``spillway count``: one shard's (``shard="I/N"`` or ``symbols="A..B"``) rows per timestamp
    and sampling keys, to the count file ``output``. Options as :func:`spillway.build`'s that
    decide rows (target, time_col, time_unit, max_rows, drop_null_target, max_cs_samples, seed,
    memory_budget, on_error), plus ``storage_options`` and ``scratch``. Returns the summary."""
    opts = options_json(input=input, output=output, shard=shard, symbols=symbols, **options)
    summary: Dict[str, Any] = json.loads(_native().count(opts))
    return summary


def plan_cs(counts: Sequence[PathLike], output: PathLike, *, min_cs: Optional[int] = 0,
            max_cs_samples: Optional[int] = None, seed: Optional[int] = 0,
            merge_only: bool = False, storage_options: Optional[Mapping[str, Any]] = None,
            scratch: Optional[PathLike] = None) -> Dict[str, Any]:
    """``spillway plan-cs``: merge count files into the cross-section plan ``output`` (or, with
    ``merge_only``, into one count file, for a tree of merges). Returns the summary dict."""
    summary: Dict[str, Any] = json.loads(_native().plan_cs(
        [os.fspath(c) for c in counts], os.fspath(output), int(min_cs or 0),
        None if max_cs_samples is None else int(max_cs_samples), int(seed or 0),
        bool(merge_only), storage_json(storage_options), _path(scratch)))
    return summary


def write_manifest(shards: Sequence[PathLike], output: PathLike,
                   cs_plan: Optional[PathLike] = None, *, replace: bool = False,
                   storage_options: Optional[Mapping[str, Any]] = None,
                   scratch: Optional[PathLike] = None) -> Dict[str, Any]:
    """``spillway manifest``: check that ``shards`` form one dataset and commit ``output``
    (``dataset.json``) in one step (a rename, or one conditional PUT in a bucket). An existing
    manifest of another dataset is replaced only with ``replace`` (it is kept as
    ``dataset.g<N>.json``); the same dataset again changes nothing. Returns the manifest."""
    manifest: Dict[str, Any] = json.loads(_native().manifest(
        [os.fspath(s) for s in shards], os.fspath(output), _path(cs_plan),
        storage_json(storage_options), _path(scratch), bool(replace)))
    return manifest


def verify_dataset(manifest: PathLike, chunks: Optional[bool] = None, *,
                   storage_options: Optional[Mapping[str, Any]] = None,
                   scratch: Optional[PathLike] = None) -> Dict[str, Any]:
    """``spillway verify dataset.json``: every shard against the manifest and together, the plan,
    and (``chunks``) every chunk checksum. ``chunks`` defaults, as the CLI, to True on disk and
    False for a URL (``--deep``: each shard downloaded into ``scratch`` in turn, checked and
    removed). Returns the report; raises DataError on a problem."""
    from .errors import DataError
    path = os.fspath(manifest)
    if chunks is None:
        chunks = not is_url(path)
    r: Dict[str, Any] = json.loads(_native().verify_dataset(
        path, bool(chunks), storage_json(storage_options), _path(scratch)))
    if r["problems"]:
        err = DataError(f"{path}: {len(r['problems'])} problems; first: {r['problems'][0]}")
        err.report = r
        raise err
    return r
