"""The tasks of :func:`spillway.ray.build`, plain functions Ray runs on its workers: ``_count``,
``_merge`` (plan-cs), ``_build`` (one shard, or none when it is current) and ``_append_shard``,
in the worker's process through the extension or, with ``mode="subprocess"``, as the
``spillway`` binary (``_run``: a child that dies with its worker). ``spillway.ray`` imports them
into its namespace, where the driver finds them (and tests may stand in for them).

A shard build under ``on_error="skip"`` that finds symbols failing after the plan was fixed
(:class:`~spillway.errors.ExcludeError` in the worker's process; the CLI's exit code 4,
``EXCLUDE_MARKER`` then the symbols as JSON, raised as the same by :func:`_run`) returns
``{"failed": {symbol: reason}}`` instead of raising: Ray must not retry it, and the driver
excludes the symbols from every shard (and count) and builds them again.
"""
from __future__ import annotations

import glob
import json
import os
import signal
import subprocess
from typing import Any, Dict, List, Mapping, Optional

from . import dataset as _dataset
from . import sharded as _sharded
from . import spillfile
from .cache import alive
from .sharded import is_url as _is_url
from ._options import option_text as _option_text
from .errors import EXCLUDE_MARKER, DataError, ExcludeError, HistoryError, UsageError

#: Options as given to :func:`spillway.ray.build` (``build_options``), keyword to value.
Options = Dict[str, Any]

#: The CLI's exit code when a shard names symbols to exclude (after ``EXCLUDE_MARKER``).
EXIT_EXCLUDE = ExcludeError.exit_code


class ShardBuildError(DataError):
    """The ``spillway`` binary (``mode="subprocess"``) failed or was killed building a shard."""



def _storage_json(options: Options) -> str:
    return _sharded.storage_json(options.get("storage_options"))


def _transform(value: Any) -> Any:
    """A ``cs_transform`` as compared: ``"winsorize=.05"`` and ``"winsorize=0.05"`` are one."""
    if value is None:
        return None
    name, eq, q = str(value).strip().partition("=")
    try:
        return [name, float(q) if eq else None]
    except ValueError:
        return [name, q]


# ---------------------------------------------------------------------- tasks (plain functions)
#: The options ``spillway count`` takes (the rest, e.g. ``threads``, only shape a build).
COUNT_OPTIONS = {"target", "no_target", "features", "time_col", "time_unit", "max_rows", "no_float32",
                 "memory_budget", "drop_null_target", "min_cs", "max_cs_samples", "seed",
                 "on_error", "storage_options", "scratch", "exclude"}


def _count(input: str, out: str, i: int, n: int, options: Options,
           exe: Optional[str]) -> Dict[str, Any]:
    if exe is not None:
        opts = {k: v for k, v in options.items() if k in COUNT_OPTIONS}
        _run(exe, ["count", "--input", input, "--shard", f"{i}/{n}", "--output", out]
             + _cli_flags(opts), out, f"count of shard {i}/{n}", opts.get("storage_options"))
        return {"output": out}
    return _dataset.count(input, out, shard=f"{i}/{n}", **options)


def _merge(counts: List[str], out: str, min_cs: int, k: Optional[int], seed: int,
           merge_only: bool, exe: Optional[str],
           storage_options: Optional[Mapping[str, Any]] = None,
           scratch: Optional[str] = None) -> Dict[str, Any]:
    if exe is not None:
        flags = _cli_flags({"min_cs": min_cs, "max_cs_samples": k, "seed": seed,
                            "merge_only": merge_only, "scratch": scratch})
        _run(exe, ["plan-cs", *counts, "--output", out] + flags, out, "plan-cs", storage_options)
        return {"output": out}
    return _sharded.plan_cs(counts, out, min_cs=min_cs, max_cs_samples=k, seed=seed,
                            merge_only=merge_only, storage_options=storage_options,
                            scratch=scratch)


def _cli_flags(options: Options) -> List[str]:
    """Options as CLI flags. ``storage_options`` is left out: it may hold secrets, which a
    command line shows to every user (``ps``); :func:`_run` passes it in the environment."""
    flags = []
    for key, value in options.items():
        if value is None or value is False or key == "storage_options":
            continue
        flag = "--" + key.replace("_", "-")
        if value is True:
            flags.append(flag)
        elif key in ("features", "exclude") and not isinstance(value, str):
            flags += [flag, ",".join(map(str, value))]
        else:
            flags += [flag, str(value)]
    return flags


def exclusion(options: Options) -> List[str]:
    """The symbols ``options["exclude"]`` names (a list, or ``"A,B"``), sorted, once each."""
    given = options.get("exclude") or []
    return sorted(set(given.split(",") if isinstance(given, str) else map(str, given)))


def _die_with_parent(parent: int) -> None:
    """In the child, before exec: SIGKILL when the parent (the Ray worker, pid ``parent``) dies;
    exit at once if it died before the request took effect (the child was already reparented)."""
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
    if os.getppid() != parent:
        os._exit(137)


def _run(exe: str, args: List[str], out: str, what: str,
         storage_options: Optional[Mapping[str, Any]] = None) -> str:
    """``exe args`` as a child that dies with this worker; its exit code as an exception: 2 a
    :class:`UsageError` (not retried), 4 with the symbols to exclude on its stderr an
    :class:`~spillway.errors.ExcludeError`, others a :class:`ShardBuildError` (retried).
    ``storage_options`` reach the child as JSON in ``SPILLWAY_STORAGE_OPTIONS`` (its environment
    is readable only by this user), never on its command line. Returns its standard output."""
    parent = os.getpid()
    env = None
    if storage_options:
        env = {**os.environ, "SPILLWAY_STORAGE_OPTIONS": json.dumps(
            {str(k): _option_text(v) for k, v in storage_options.items()})}
    with subprocess.Popen([exe, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True, env=env,
                          preexec_fn=lambda: _die_with_parent(parent)) as child:
        stdout, err = child.communicate()
    if child.returncode == EXIT_EXCLUDE and EXCLUDE_MARKER in err:
        raise ExcludeError(f"spillway {what} exited {child.returncode}: {err}")
    if child.returncode != 0:
        kind = UsageError if child.returncode == 2 else ShardBuildError
        raise kind(f"spillway {what} exited {child.returncode}: {err}")
    return stdout


def _build(input: str, out: str, i: int, n: int, options: Options, cs_plan: Optional[str],
           exe: Optional[str], plan_crc: Optional[str],
           universe: Mapping[str, Any]) -> Dict[str, Any]:
    """One shard build, or none when ``out`` is current (checked here, on the worker, so a
    rerun checks the shards in parallel, not in the driver): ``{"output", "rows", "skipped"}``,
    with ``"failed": {symbol: reason}`` when it found symbols every shard must exclude (it
    wrote nothing)."""
    rows = _current(out, i, n, plan_crc, universe, options)
    if rows is not None:
        return {"output": out, "rows": rows, "skipped": True}
    scope: Options = {"shard": f"{i}/{n}", "cs_plan": cs_plan}
    if _is_url(out):
        _remove_stale_scratch(options.get("scratch"))
    try:
        if exe is not None:  # mode="subprocess"
            _run(exe, ["build", "--input", input, "--output", out, "--quiet"]
                 + _cli_flags({**options, **scope}), out, f"build of shard {i}/{n}",
                 options.get("storage_options"))
            return {"output": out, "rows": _describe(out, options)["nrows"], "skipped": False}
        from . import build
        s = build(input, out, **options, **scope)
    except ExcludeError as e:
        # Returned, not raised: Ray would retry it, and it would fail the same way.
        return {"output": out, "rows": 0, "skipped": False, "failed": e.symbols}
    return {"output": out, "rows": s["rows"], "skipped": False}


#: The options ``spillway append`` takes from a cluster's append (the resources; the dataset's
#: manifest records the rest): ``mode="subprocess"`` refuses others up front.
APPEND_FLAGS = {"threads", "memory_budget", "scratch", "storage_options"}
#: The CLI's words for a history it refuses (its message names ``--rebuild``).
_HISTORY_REFUSED = "spillway append --rebuild"


def _append_shard(manifest: str, input: str, i: int, n: int, rebuild: bool, resources: Options,
                  exe: Optional[str]) -> Dict[str, Any]:
    """New time shard ``i`` of ``n`` of an append (``spillway append --only I``): ``{"shards",
    "rows"}`` (no shards: no row is new), or ``{"refused": what}`` when the history differs,
    returned rather than raised so that Ray does not retry what would fail again."""
    if exe is not None:  # mode="subprocess"
        args = ["append", manifest, "--input", input, "--shards", str(n), "--only", str(i),
                "--quiet", "--summary", "-"] + (["--rebuild"] if rebuild else [])
        try:
            out = _run(exe, args + _cli_flags(resources), manifest,
                       f"append of new shard {i}/{n}", resources.get("storage_options"))
        except ShardBuildError as e:
            # Its line: "[... exited 1: ]spillway: MANIFEST: WHAT; rebuild the dataset (...)".
            line = next((x for x in str(e).splitlines() if _HISTORY_REFUSED in x), None)
            if line is None:
                raise
            what = line.split("spillway: ", 1)[-1].removeprefix(f"{manifest}: ")
            return {"refused": what.split("; rebuild the dataset")[0]}
        if not out.strip():  # exit 0 and no summary: nothing to append
            return {"shards": [], "rows": 0}
        r: Dict[str, Any] = json.loads(out)
        return {"shards": r["shards"], "rows": r["rows"]}
    from . import _append
    try:
        report = _append(manifest, input, shards=n, only=i, rebuild=rebuild, **resources)
    except HistoryError as e:
        return {"refused": e.what or str(e)}
    return {"shards": report.shards, "rows": report.rows}


def _describe(path: str, options: Options) -> Dict[str, Any]:
    """What a spill file (a path or a URL) says of itself, from its end alone."""
    from . import _native, _need_native
    _need_native()
    described: Dict[str, Any] = json.loads(_native.describe(path, _storage_json(options)))
    return described


def _current(path: str, i: int, n: int, plan_crc: Optional[str], universe: Mapping[str, Any],
             options: Options) -> Optional[int]:
    """The rows of the shard file at ``path`` when it can be kept (else None): it is intact and
    records this shard of this universe, filtered by this plan, built with these options. On
    disk every chunk is verified; in a bucket, its size and metadata checksum (read from its
    end)."""
    try:
        if _is_url(path):
            d = _describe(path, options)
            meta, rows = d["metadata"], d["nrows"]
        else:
            if not os.path.exists(path):
                return None
            from . import verify
            verify(path)
            f = spillfile.open(path)
            meta, rows = f.metadata, f.nrows
    except Exception:
        return None
    shard = meta.get("shard") or {}
    # Written by a spillway whose output bytes differ (a fix since): rebuild.
    from . import _native, _need_native
    _need_native()
    if meta.get("semantics_version", 1) != _native.SEMANTICS_VERSION:
        return None
    current = (shard.get("scope") == f"{i}/{n}" and shard.get("cs_plan") == plan_crc
               and shard.get("fingerprint") == universe["fingerprint"]
               and _same_options(meta.get("options") or {}, options))
    return int(rows) if current else None


def _remove_stale_scratch(scratch: Optional[str]) -> None:
    """Scratch files of killed processes on this node, pid gone: copies (``.spillway-<pid>-….tmp``)
    and the spill writer's temporary files of copies (``..spillway-<pid>-….spill-tmp``)."""
    import tempfile
    d = scratch or tempfile.gettempdir()
    for p in glob.glob(os.path.join(d, ".spillway-*-*.tmp")) + glob.glob(os.path.join(d, "..spillway-*-*.spill-tmp")):
        try:
            pid = int(os.path.basename(p).lstrip(".").split("-")[1])
        except (ValueError, IndexError):
            continue
        if not alive(pid):
            try:
                os.remove(p)
            except OSError:
                pass


def _same_options(recorded: Mapping[str, Any], options: Options) -> bool:
    """The options that change a shard's rows, as recorded, against those asked for."""
    f = recorded.get("filters") or {}
    asked = {"target": options.get("target"), "max_rows": options.get("max_rows"),
             "float32": not options.get("no_float32", False),
             "drop_null_target": bool(options.get("drop_null_target")),
             "min_cs": int(options.get("min_cs") or 0),
             "max_cs_samples": options.get("max_cs_samples"),
             "seed": int(options.get("seed") or 0), "order": options.get("order") or "symbol",
             "cs_transform": _transform(options.get("cs_transform")),
             "exclude": exclusion(options)}
    have = {"target": recorded.get("target"), "max_rows": recorded.get("max_rows"),
            "float32": recorded.get("float32"), "drop_null_target": f.get("drop_null_target"),
            "min_cs": f.get("min_cs"), "max_cs_samples": f.get("max_cs_samples"),
            "seed": f.get("seed"), "order": recorded.get("order") or "symbol",
            "cs_transform": _transform(recorded.get("cs_transform")),
            "exclude": sorted(recorded.get("exclude") or [])}
    feats = options.get("features")
    if isinstance(feats, str):
        feats = feats.split(",")
    return asked == have and recorded.get("features") == (None if feats is None else list(feats))
