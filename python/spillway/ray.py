"""Sharded builds on a Ray cluster, and a Ray Data datasource over the result.

    import spillway.ray
    manifest = spillway.ray.build("/shared/universe", "/shared/train", shards=8,
                                  target="target", min_cs=600, max_cs_samples=64, seed=1,
                                  memory_budget="2GiB")
    ds = spillway.ray.read_spill(manifest)          # ray.data.Dataset, one block per row range

or ``python -m spillway.ray --input DIR --output-dir OUT --shards 8 --target target ...``.

The build is three waves of Ray tasks, each declaring ``num_cpus`` and ``memory`` (the
``memory_budget`` plus a fixed allowance for the interpreter) and retried (``max_retries``) when
its worker dies or it raises anything but a ``UsageError`` (``retry_exceptions``):

1. when ``min_cs`` or ``max_cs_samples`` is set, one ``count`` per shard (the map) writes
   ``OUT/cs/count-I-of-N``; the counts are reduced by ``plan_cs`` into ``OUT/cs/cs.plan``, in a
   tree of ``fanout``-way merges when there are more than ``fanout`` count files;
   Under ``on_error="skip"`` the counts run even without filters: the plan carries the
   symbols they skipped to every shard;
2. one ``build --shard I/N --cs-plan`` per shard writes ``OUT/shard-I-of-N.spill`` (the library
   writes a temporary name and renames it when complete); a shard whose file exists, verifies,
   and records this shard, plan, options and universe is skipped, so a rerun redoes only what is
   missing;
   A shard that finds symbols failing while decoding (``on_error="skip"``) writes nothing and
   names them: the driver counts its shard again excluding them, plans again and rebuilds every
   shard (``max_attempts`` rounds at most);
3. the driver writes ``OUT/dataset.json`` last, atomically: the dataset exists once it does.

With ``order="time"`` the shards are time shards (``build --order time --shard I/N``: the
timeline cut into N ranges balanced by rows, every shard holding whole cross-sections), so the
filters are decided within each shard and wave 1 is skipped: no count, no plan (under
``on_error="skip"``, symbols a time shard finds failing are passed as ``exclude`` to every
time shard, all built again). With
``append=True`` too, a time-major ``OUT/dataset.json`` already there grows instead: one task per
new time shard (``spillway append --only I``), then the driver commits the next generation
(``--commit``); see :func:`build`.

Only paths and small summaries go through Ray's object store. The shards go to ``output_dir``:
a directory every node sees (a shared filesystem), or a bucket URL (``s3://bucket/train/day``),
for clusters whose nodes share a bucket and nothing else. Then each task builds its file in its
node's ``scratch`` directory (refused up front when it lacks room), uploads it in parts, checks
its size in the store and removes the local copy; ``dataset.json`` is committed last with one
conditional PUT. Shard names carry a key of the universe, options and plan
(``shard-00000-of-00008-1a2b3c4d.spill``), so a build of other data never overwrites the shards of
a manifest generation that readers may still use. A worker killed mid-build (OOM killer, SIGKILL,
a lost node) is retried by Ray; its temporary file is left behind and removed at the end (an
unfinished upload is aborted by ``spillway clean s3://…``). Tasks
run in the worker's process through the extension with the GIL released, or with
``mode="subprocess"`` as the ``spillway`` binary (``count``, ``plan-cs``, ``build``), which dies
with its worker (``PR_SET_PDEATHSIG``).

Supported Ray: 2.60.x (the version CI tests; ``pip install 'spillway[ray]'``).
"""
from __future__ import annotations

import argparse
import glob
import json
import logging
import os
import shutil
import sys
import time
from types import ModuleType
from typing import TYPE_CHECKING, Any, Dict, List, Mapping, Optional, Sequence, Tuple, Type

from . import sharded as _sharded
from .sharded import PathLike, is_url as _is_url
from ._options import options_json
from .errors import DataError, HistoryError, InternalError, UsageError
# The tasks, in this namespace: the driver sends them to Ray from here.
from ._ray_tasks import (APPEND_FLAGS, COUNT_OPTIONS, ShardBuildError, _append_shard,  # noqa: F401
                         _build, _cli_flags, _count, _current, _describe, _merge,
                         _remove_stale_scratch, _run, _same_options, _storage_json, _transform,
                         exclusion)

if TYPE_CHECKING:
    from ray.data import Datasource

#: Options as given to :func:`build` (``build_options``), keyword to value.
Options = Dict[str, Any]

SUPPORTED_RAY = ((2, 60), (2, 61))  # [low, high)


#: Exceptions a task is retried on: a failure of the data, the machine or the binary. A
#: ``UsageError`` (a bad option, mismatched count or plan files) would fail again: not retried.
RETRIED: List[Type[BaseException]] = [DataError, InternalError, OSError]
#: Memory a task declares beyond ``memory_budget``: the interpreter, the extension, Ray's worker.
TASK_OVERHEAD = 256 << 20

_log = logging.getLogger("spillway.ray")

__all__ = ["build", "read_spill", "SpillDatasource", "ShardBuildError", "SUPPORTED_RAY",
           "MAX_ATTEMPTS"]

#: Default ``max_attempts`` of :func:`build` under ``on_error="skip"`` (the CLI's
#: ``--max-attempts`` default): rounds of count, plan and shard builds.
MAX_ATTEMPTS = 3


def _ray() -> ModuleType:
    import ray
    v = tuple(int(x) for x in ray.__version__.split(".")[:2])
    if not SUPPORTED_RAY[0] <= v < SUPPORTED_RAY[1]:
        import warnings
        warnings.warn(f"spillway.ray is tested with Ray 2.60.x, not {ray.__version__}",
                      stacklevel=3)
    return ray


def _parse_size(s: Optional[object]) -> int:
    """``memory_budget`` in bytes (as the library parses it: K/M/G/T powers of 1024)."""
    if s is None:
        return 256 << 20
    if isinstance(s, int):
        return s
    t = str(s).strip().lower()
    num = t.rstrip("abcdefghijklmnopqrstuvwxyz ")
    unit = t[len(num):].strip()
    mult = {"": 1, "b": 1, "k": 1 << 10, "kib": 1 << 10, "m": 1 << 20, "mib": 1 << 20,
            "g": 1 << 30, "gib": 1 << 30, "t": 1 << 40, "tib": 1 << 40, "kb": 10**3,
            "mb": 10**6, "gb": 10**9, "tb": 10**12}.get(unit)
    if mult is None:
        raise ValueError(f"memory_budget {s!r} is not a size (e.g. 256MiB)")
    return int(float(num) * mult)


def _shard_name(i: int, n: int, key: str) -> str:
    return f"shard-{i:05d}-of-{n:05d}-{key}.spill"


def _join(base: str, *parts: str) -> str:
    """``parts`` under ``base``, a directory or a URL."""
    if _is_url(base):
        return "/".join([base.rstrip("/"), *parts])
    return os.path.join(base, *parts)


def _build_key(universe: Mapping[str, Any], options: Options) -> str:
    """8 hex digits of CRC-32 over what decides a shard's bytes: the universe's fingerprint and
    the options that change rows (the cross-section plan is a function of both)."""
    import zlib
    rows = {k: options.get(k) for k in sorted(COUNT_OPTIONS | {"order"})
            if k not in ("storage_options", "memory_budget", "on_error", "scratch")}
    if options.get("cs_transform") is not None:  # only when set: other keys stay as they were
        rows["cs_transform"] = _transform(options["cs_transform"])
    text = json.dumps([universe.get("fingerprint"), rows], sort_keys=True, default=str)
    return f"{zlib.crc32(text.encode()):08x}"


def _read_manifest(manifest: str, options: Options) -> Optional[Dict[str, Any]]:
    """The manifest at ``manifest`` (a path or a URL), parsed; None when there is none."""
    try:
        if _is_url(manifest):
            from . import _native, _need_native
            _need_native()
            raw = _native.get_object(manifest, _storage_json(options))
        else:
            with open(manifest, "rb") as fh:
                raw = fh.read()
    except (FileNotFoundError, DataError):
        return None
    parsed: Dict[str, Any] = json.loads(raw)
    return parsed


def _refuse_another(manifest: str, paths: List[str], replace: bool, options: Options) -> None:
    """Before any task: a manifest at ``manifest`` naming other shards than ``paths`` (another
    dataset) is refused unless ``replace``, so that a build that cannot commit builds nothing."""
    if replace:
        return
    m = _read_manifest(manifest, options)
    if m is None:
        return  # none yet
    base = manifest.rsplit("/", 1)[0]
    there = [_join(base, e["path"]) for e in m.get("shards", [])]
    if there != paths:
        raise UsageError(f"{manifest}: a manifest of another dataset is already there; pass "
                         "replace=True (--replace) to replace it (it is kept as its generation, "
                         "dataset.g<N>.json)")


# ---------------------------------------------------------------------- the driver
def build(input: PathLike, output_dir: PathLike, shards: int = 1, *, num_cpus: float = 1,
          max_retries: int = 3,
          fanout: int = 16, mode: str = "inprocess", spillway_bin: Optional[str] = None,
          replace: bool = False, scratch: Optional[str] = None, append: bool = False,
          max_attempts: int = MAX_ATTEMPTS,
          rebuild: bool = False, **build_options: Any) -> str:
    """Build ``input`` as ``shards`` spill files in ``output_dir`` on the connected Ray cluster
    (``ray.init()`` first) and return the path (or URL) of the manifest,
    ``output_dir/dataset.json``.

    ``on_error="skip"`` leaves out the symbols a single build would skip, so the shards
    together equal the single ``on_error="skip"`` build: the counts record the symbols they
    skip and the plan carries them to every shard (symbol shards are counted and planned even
    without filters then); a shard that finds a symbol failing while decoding writes nothing
    and names it (not retried), and the driver counts that shard again excluding it, plans
    again and rebuilds every shard, at most ``max_attempts`` rounds in all (then a
    ``DataError`` naming the symbols). The symbols excluded are logged (WARNING) with their
    reasons. Time shards (``order="time"``) have no count or plan: the symbols any of them
    finds failing are excluded (``exclude``) from every time shard, all built again, within
    the same ``max_attempts``; the dataset equals the single ``order="time"``
    ``on_error="skip"`` build. Symbols given as ``exclude`` are left out of every task from
    the start.

    ``build_options`` are :func:`spillway.build`'s (``target``, ``min_cs``, ``max_cs_samples``,
    ``seed``, ``memory_budget``, ``storage_options``, ``order``...). ``order="time"``: a
    time-major dataset, the shards cut along the timeline (each task ``build --order time
    --shard I/N``; no count or plan step, the filters decided within each shard): read back
    with :func:`spillway.open_dataset`, its rows are the single ``--order time`` build's and
    its time methods (``time_range``, ``group_sizes``...) answer as that file's.

    ``input`` may be a URL (``s3://bucket/universe/``): every task then reads the bucket
    itself, with no shared filesystem for the input. ``output_dir`` may be a URL too
    (``s3://bucket/train/day``): each task builds its shard in ``scratch`` on its node
    (default: the temporary directory), uploads it and removes it; the count and plan files go
    the same way, and the manifest is committed last with one conditional PUT.
    ``storage_options`` serve both URLs and travel with the tasks (credentials already in the
    workers' environment, e.g. through a ``runtime_env``, need not be passed at all).

    An existing ``dataset.json`` of another dataset is replaced only with ``replace=True``; the
    one replaced is kept as ``dataset.g<N>.json`` (``spillway clean DATASET
    --keep-generations K`` removes old ones). A rerun that changes nothing rebuilds nothing
    and leaves the manifest as it is.

    ``append=True`` (with ``order="time"`` only, else a ValueError): when a time-major
    ``dataset.json`` is already there, it grows by the rows of ``input`` after its last
    timestamp instead, as :func:`spillway.append` does: ``shards`` tasks each build one new
    time shard (``spillway append --only I``), then the driver commits the next manifest
    generation over the one the tasks read (``--commit``). The dataset's recorded options
    decide the rows: those given here must agree with them (else a UsageError), and only the
    resources (``threads``, ``memory_budget``, ``storage_options``, ``scratch``) shape the
    work. History that changed raises :class:`spillway.HistoryError` (nothing is committed)
    unless ``rebuild=True``; when no row is new, nothing is written. Without a manifest there,
    the dataset is built as without ``append``, so one call serves every day.

    Each task declares ``num_cpus`` and ``memory`` = ``memory_budget`` + 256 MiB (a scheduling
    hint: the build itself stays within ``memory_budget``), and is retried ``max_retries`` times
    when its worker dies or it raises anything but a :class:`spillway.UsageError` (see
    ``RETRIED``); a bad option fails in the driver before any task runs. ``fanout``: count
    files merged per reduce task. ``mode``: ``"inprocess"`` (counts, merges and builds through
    the extension) or ``"subprocess"`` (each task runs the ``spillway`` binary at
    ``spillway_bin``, else ``$SPILLWAY_BIN``, else on ``PATH``, as seen by the driver; it dies
    with its worker). Phase timings are logged to the ``spillway.ray`` logger at INFO.
    """
    if append and build_options.get("order") != "time":
        raise ValueError("append=True grows a time-major dataset by new time shards: pass "
                         "order='time' too")
    if rebuild and not append:
        raise ValueError("rebuild=True is for append=True (a dataset whose history changed "
                         "is rebuilt whole); without append, pass replace=True")
    ray = _ray()
    if int(shards) < 1:
        raise ValueError("shards must be at least 1")
    if int(fanout) < 2:
        raise ValueError("fanout must be at least 2")
    if int(max_attempts) < 1:
        raise ValueError("max_attempts must be at least 1")
    if mode not in ("inprocess", "subprocess"):
        raise ValueError("mode must be 'inprocess' or 'subprocess'")
    exe = None
    if mode == "subprocess":
        exe = spillway_bin or os.environ.get("SPILLWAY_BIN") or shutil.which("spillway")
        if exe is None:
            raise ValueError("mode='subprocess' needs the spillway binary: spillway_bin=, "
                             "$SPILLWAY_BIN or PATH")
        exe = os.path.abspath(exe)
    for key in ("shard", "symbols", "cs_plan", "output"):
        if key in build_options:
            raise TypeError(f"spillway.ray.build chooses {key!r} itself")
    n = int(shards)
    input = os.fspath(input)
    if not _is_url(input):  # a URL (s3://...) is read by every task as it is
        input = os.path.abspath(input)
    out_dir = os.fspath(output_dir)
    if _is_url(out_dir):
        out_dir = out_dir.rstrip("/")
    else:
        out_dir = os.path.abspath(out_dir)
        os.makedirs(out_dir, exist_ok=True)
    opts = {k: v for k, v in build_options.items() if v is not None}
    if scratch is not None:
        opts["scratch"] = os.path.abspath(os.fspath(scratch))
    storage = opts.get("storage_options")
    manifest = _join(out_dir, "dataset.json")
    task = dict(num_cpus=num_cpus, memory=_parse_size(opts.get("memory_budget")) + TASK_OVERHEAD,
                max_retries=int(max_retries), retry_exceptions=RETRIED)
    if append:
        existing = _read_manifest(manifest, opts)
        if existing is not None and existing.get("order") == "time":
            return _grow(ray, input, manifest, existing, n, opts, exe, task, bool(rebuild))
    # The universe (every footer, read here once) first: a bad option fails before any task.
    from . import _native, _need_native
    _need_native()
    t = time.perf_counter()
    universe: Dict[str, Any] = json.loads(_native.universe(
        options_json(input=input, **{k: v for k, v in opts.items() if k != "scratch"})))
    t = _phase(t, f"universe read (every footer): {universe.get('symbols')} symbols")
    count_t = ray.remote(**task)(_count)
    merge_t = ray.remote(**task)(_merge)
    build_t = ray.remote(**task)(_build)

    # What decides the bytes (the universe, the options: the plan follows from them) names the
    # shards and the plan's directory, so another build never overwrites what a manifest names.
    key = _build_key(universe, opts)
    paths = [_join(out_dir, _shard_name(i, n, key)) for i in range(n)]
    _refuse_another(manifest, paths, replace, opts)
    cs = _join(out_dir, "cs", key)
    if not _is_url(cs):
        os.makedirs(cs, exist_ok=True)

    k, min_cs = opts.get("max_cs_samples"), int(opts.get("min_cs") or 0)
    # Time shards hold whole cross-sections: each decides its own filters, with no plan. Under
    # on_error="skip", symbol shards are counted and planned even without filters: the plan
    # carries the symbols every shard leaves out.
    symbol_shards = opts.get("order") != "time"
    skip = opts.get("on_error") == "skip"
    counting = symbol_shards and (min_cs > 1 or k is not None or skip)
    counts = [_join(cs, f"count-{i:05d}-of-{n:05d}") for i in range(n)]
    recount, attempt = list(range(n)), 0
    excluded: Dict[str, str] = {}  # symbol to reason: those found failing so far
    while True:
        attempt += 1
        plan = None
        # The symbols found failing, with those given: the counts (which record them in the
        # plan) or, with no plan, every time shard leave them out. The shards' names stay.
        more = {"exclude": sorted(set(exclusion(opts)) | set(excluded))} if excluded else {}
        if counting:
            ray.get([count_t.remote(input, counts[i], i, n, {**opts, **more}, exe)
                     for i in recount])
            t = _phase(t, f"{len(recount)} counts")
            plan, level = _plan(ray, merge_t, cs, counts, fanout, min_cs, k, opts, exe)
            t = _phase(t, f"cross-section plan ({level} tree levels below it)")
        plan_crc = None if plan is None else _plan_crc(plan, opts)
        bopts = opts if counting else {**opts, **more}
        built = ray.get([build_t.remote(input, paths[i], i, n, bopts, plan, exe, plan_crc,
                                        universe) for i in range(n)])
        failed = {s: r for b in built for s, r in sorted(b.get("failed", {}).items())}
        skipped = sum(b["skipped"] for b in built)
        t = _phase(t, f"{n - skipped} shard builds ({skipped} current, skipped)"
                      + (f": {len(failed)} symbol(s) to exclude" if failed else ""))
        if not failed:
            break
        listed = "; ".join(f"{s}: {r}" for s, r in failed.items())
        if attempt >= int(max_attempts):
            raise DataError(f"on_error='skip': {len(failed)} symbol(s) failed while decoding "
                            f"in attempt {attempt}, the last max_attempts allows"
                            + (f" ({len(excluded)} excluded by earlier attempts: "
                               f"{', '.join(sorted(excluded))})" if excluded else "")
                            + f": {listed}")
        excluded.update(failed)
        # Each failing symbol is of the shard that found it: only those counts change. Every
        # shard is built again: the plan changed, or (time shards) each records its exclusion.
        recount = [i for i, b in enumerate(built) if b.get("failed")]
    if excluded:
        _log.warning("on_error='skip': %d symbol(s) failed while decoding and were excluded "
                     "from every shard in %d attempts: %s", len(excluded), attempt,
                     "; ".join(f"{s}: {r}" for s, r in sorted(excluded.items())))
    if _is_url(out_dir):
        _remove_stale_scratch(opts.get("scratch"))  # this node's: the tasks clean their own
    else:
        for stale in glob.glob(os.path.join(out_dir, ".shard-*")):
            os.remove(stale)  # temporaries of killed attempts: every shard is in place now
    m = _sharded.write_manifest(paths, manifest, cs_plan=plan, replace=replace,
                                storage_options=storage, scratch=opts.get("scratch"))
    _phase(t, f"manifest {manifest} (generation {m.get('generation', 1)}): "
              f"{sum(b['rows'] for b in built)} rows")
    return manifest


#: The options that decide a shard's rows: an append takes the dataset's (its manifest's).
ROW_OPTIONS = ("target", "no_target", "features", "time_col", "time_unit", "max_rows",
               "no_float32", "drop_null_target", "min_cs", "max_cs_samples", "seed", "order",
               "cs_transform")


def _differs(m: Mapping[str, Any], options: Options) -> List[str]:
    """The options that decide rows given in ``options`` whose values are not those the
    manifest ``m`` records, each as ``key=given (the dataset's: recorded)``."""
    rec = m.get("options") or {}
    f = rec.get("filters") or {}
    time_col = next((c["name"] for c in m.get("schema", []) if c.get("role") == "time"), None)
    have = {"target": rec.get("target"), "no_target": rec.get("target") is None,
            "features": rec.get("features"), "time_col": time_col,
            "time_unit": rec.get("time_unit"), "max_rows": rec.get("max_rows"),
            "no_float32": not rec.get("float32", True),
            "drop_null_target": bool(f.get("drop_null_target")),
            "min_cs": int(f.get("min_cs") or 0), "max_cs_samples": f.get("max_cs_samples"),
            "seed": int(f.get("seed") or 0), "order": rec.get("order") or "symbol",
            "cs_transform": _transform(rec.get("cs_transform"))}
    out = []
    for key in ROW_OPTIONS:
        if key not in options:
            continue
        given = options[key]
        if key == "features":
            given = given.split(",") if isinstance(given, str) else [str(c) for c in given]
        elif key == "cs_transform":
            given = _transform(given)
        elif key in ("no_target", "no_float32", "drop_null_target"):
            given = bool(given)
        if given != have[key]:
            out.append(f"{key}={options[key]!r} (the dataset's: {have[key]!r})")
    return out


def _grow(ray: ModuleType, input: str, manifest: str, existing: Mapping[str, Any], n: int,
          opts: Options, exe: Optional[str], task: Dict[str, Any], rebuild: bool) -> str:
    """``build(append=True)`` over the time-major dataset ``existing`` at ``manifest``: ``n``
    tasks each build one new time shard, then the driver commits them; returns ``manifest``."""
    differ = _differs(existing, opts)
    if differ:
        raise UsageError(f"{manifest}: append=True grows the dataset with the options its "
                         f"manifest records, and these differ: {'; '.join(differ)}; build "
                         "another dataset to change them (replace=True, without append)")
    resources = {k: v for k, v in opts.items() if k not in ROW_OPTIONS}
    if exe is not None and set(resources) - APPEND_FLAGS:
        raise ValueError(f"mode='subprocess' appends with `spillway append`, which takes only "
                         f"{sorted(APPEND_FLAGS)}, not {sorted(set(resources) - APPEND_FLAGS)}")
    t = time.perf_counter()
    append_t = ray.remote(**task)(_append_shard)
    got = ray.get([append_t.remote(manifest, input, i, n, rebuild, resources, exe)
                   for i in range(n)])
    refused = [g["refused"] for g in got if "refused" in g]
    if refused:
        err = HistoryError(f"{manifest}: {refused[0]}; rebuild the dataset "
                           "(spillway.ray.build(..., append=True, rebuild=True)) to take it")
        err.manifest, err.what = manifest, refused[0]
        raise err
    if not any(g["shards"] for g in got):
        _phase(t, f"{manifest}: no row of {input} is after the dataset's last timestamp; "
                  "nothing to append")
        return manifest
    t = _phase(t, f"{n} new time shards: {sum(g['rows'] for g in got)} rows")
    from . import _append
    r = _append(manifest, input, shards=n, rebuild=rebuild, commit_only=True, **resources)
    _phase(t, f"manifest {manifest} (generation {r.generation}): {r.rows} rows appended after "
              f"{r.after} ns{' (the dataset rebuilt)' if r.rebuilt else ''}")
    return manifest


def _plan(ray: ModuleType, merge_t: Any, cs: str, counts: List[str], fanout: int, min_cs: int,
          k: Optional[int], opts: Options, exe: Optional[str]) -> Tuple[str, int]:
    """Merges ``counts`` into ``cs/cs.plan`` (through a tree of ``fanout``-way merges when there
    are more); returns the plan's path and the tree's levels below it."""
    storage, scratch = opts.get("storage_options"), opts.get("scratch")
    seed, level = int(opts.get("seed") or 0), 0
    while len(counts) > fanout:  # a tree: groups of `fanout` merged into count files
        groups = [counts[j:j + fanout] for j in range(0, len(counts), fanout)]
        merged = [_join(cs, f"merge-{level}-{j:05d}") for j in range(len(groups))]
        ray.get([merge_t.remote(g, m, 0, k, seed, True, exe, storage, scratch)
                 for g, m in zip(groups, merged)])
        counts, level = merged, level + 1
    plan = _join(cs, "cs.plan")
    ray.get(merge_t.remote(counts, plan, min_cs, k, seed, False, exe, storage, scratch))
    return plan, level


def _phase(start: float, what: str) -> float:
    """Logs ``what`` with the seconds since ``start``; returns now."""
    now = time.perf_counter()
    _log.info("%s in %.2f s", what, now - start)
    return now


def _plan_crc(path: str, options: Options) -> str:
    """``crc32:`` of a plan, as shards record it (the CRC stored before its last 4 bytes)."""
    if _is_url(path):
        from . import _native, _need_native
        _need_native()
        raw = _native.get_object(path, _storage_json(options), 8)
        return f"crc32:{int.from_bytes(raw[0:4], 'little'):08x}"
    with open(path, "rb") as fh:
        fh.seek(-8, os.SEEK_END)
        return f"crc32:{int.from_bytes(fh.read(4), 'little'):08x}"


# ---------------------------------------------------------------------- Ray Data
from ._ray_data import read_spill  # noqa: E402 (re-exported: spillway.ray.read_spill)


def __getattr__(name: str) -> "Type[Datasource]":
    """``SpillDatasource`` is made on first use (it subclasses Ray's ``Datasource``)."""
    if name == "SpillDatasource":
        from ._ray_data import datasource_class
        return datasource_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# ---------------------------------------------------------------------- python -m spillway.ray
def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(prog="python -m spillway.ray",
                                description="Build a sharded spill dataset on a Ray cluster.")
    p.add_argument("--input", required=True, help="a directory, or a bucket URL (s3://…)")
    p.add_argument("--output-dir", required=True,
                   help="a directory every node sees, or a bucket URL (s3://bucket/train/day)")
    p.add_argument("--scratch", help="where each task builds a shard bound for a bucket "
                                     "(default: the temporary directory)")
    p.add_argument("--replace", action="store_true",
                   help="replace an existing dataset.json of another dataset (kept as "
                        "dataset.g<N>.json)")
    p.add_argument("--append", action="store_true",
                   help="with --order time: grow the time-major dataset.json already there by "
                        "the rows after its last timestamp (build it when there is none)")
    p.add_argument("--rebuild", action="store_true",
                   help="with --append: rebuild a dataset whose history changed, instead of "
                        "refusing")
    p.add_argument("--shards", type=int, default=1)
    p.add_argument("--address", default=None, help="Ray cluster address (default: local/auto)")
    p.add_argument("--num-cpus", type=float, default=1, help="CPUs each task declares")
    p.add_argument("--max-retries", type=int, default=3)
    p.add_argument("--fanout", type=int, default=16)
    p.add_argument("--mode", choices=["inprocess", "subprocess"], default="inprocess")
    p.add_argument("--spillway-bin", help="the spillway binary for --mode subprocess")
    for flag in ("target", "time-col", "time-unit", "memory-budget", "on-error", "features",
                 "order", "exclude"):
        p.add_argument("--" + flag)
    for flag in ("max-rows", "min-cs", "max-cs-samples", "seed", "threads", "max-attempts"):
        p.add_argument("--" + flag, type=int)
    for flag in ("drop-null-target", "no-float32", "no-target"):
        p.add_argument("--" + flag, action="store_true")
    p.add_argument("--storage-option", action="append", default=[], metavar="KEY=VALUE",
                   help="an option of the object store of the --input or --output-dir URL, "
                        "over those of $SPILLWAY_STORAGE_OPTIONS (a JSON object: the place for "
                        "secrets the workers' environment lacks; never a command line)")
    p.add_argument("--quiet", action="store_true", help="no phase timings on stderr")
    a = vars(p.parse_args(argv))
    if not a.pop("quiet"):
        logging.basicConfig(format="spillway.ray: %(message)s")
        _log.setLevel(logging.INFO)
    # As the CLI: SPILLWAY_STORAGE_OPTIONS (a JSON object) under the flags, so that secrets
    # need not be on a command line; they reach the tasks as storage_options.
    storage = json.loads(os.environ.get("SPILLWAY_STORAGE_OPTIONS") or "{}")
    storage.update(kv.split("=", 1) for kv in a.pop("storage_option") if "=" in kv)
    if storage:
        a["storage_options"] = storage
    ray = _ray()
    ray.init(address=a.pop("address"), include_dashboard=False, log_to_driver=False)
    opts = {k: v for k, v in a.items() if k not in ("input", "output_dir", "shards") and
            v is not None and v is not False}
    manifest = build(a["input"], a["output_dir"], a["shards"], **opts)
    print(manifest)
    return 0


if __name__ == "__main__":
    sys.exit(main())
