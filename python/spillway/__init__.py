"""spillway: train on a universe of per-symbol parquet files through one memory-mapped spill file.

    import spillway
    summary = spillway.build("data/universe", "train.spill", target="target")  # in-process
    f = spillway.open("train.spill")           # the numpy reader: zero-copy, read-only views
    before, after = f.split_by_time("2024-01-01")
    for X, y in f.batches(65536, ranges=before, shuffle="blocks", seed=1):
        ...                                     # C-contiguous float32, bounded memory
    spillway.verify("train.spill")

Building, inspecting, native verification and export run in the Rust library
(``spillway._native``); the reader (:mod:`spillway.spillfile`, numpy only) works without it, and
is also a single file that can be copied next to any code (``import spillfile``). Adapters import
their framework only when used: :mod:`spillway.torch`, :mod:`spillway.xgboost`,
:mod:`spillway.lightgbm`. Sharded datasets: :func:`open_dataset` (:mod:`spillway.dataset`), built on
a Ray cluster by :mod:`spillway.ray`; a time-major one grows by :func:`append`. Errors:
:mod:`spillway.errors`.
"""
from __future__ import annotations

import importlib
import json
import os
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union, overload

from . import spillfile
from ._options import check_flag, check_path
from ._options import options_json as _options
from .errors import (DataError, ExcludeError, HistoryError, InternalError, SpillwayError,
                     UsageError)
from .spillfile import SpillError, SpillFile
from .dataset import Dataset, open_dataset

_native_error: Optional[ImportError] = None
try:
    from . import _native
except ImportError as _e:  # the numpy reader still works; build/inspect/export need the extension
    _native = None  # type: ignore[assignment]  # typed as the module: _need_native() checks
    _native_error = _e
else:
    spillfile._read_rows = _native.read_rows  # batches() read and transpose in Rust
    spillfile._take_rows = _native.take_rows

__all__ = ["open", "open_dataset", "Dataset", "build", "inspect", "verify", "export", "append",
           "AppendReport", "HistoryCheck", "SpillFile", "SpillError", "SpillwayError", "DataError",
           "HistoryError", "ExcludeError", "UsageError", "InternalError", "__version__"]


@overload
def open(path: Union[str, "os.PathLike[str]"]) -> SpillFile: ...  # noqa: A001


@overload
def open(path: Union[List[Union[str, "os.PathLike[str]"]],  # noqa: A001
                     Tuple[Union[str, "os.PathLike[str]"], ...]]) -> Dataset: ...


def open(path: Any) -> Any:  # noqa: A001 - the reader's entry point, as spillfile.open
    """Open a spill file (the numpy reader's :class:`SpillFile`: validated, memory-mapped); given
    a list of paths, those independent spill files with one schema as one :class:`Dataset`
    (:meth:`Dataset.from_files`: rows in that order, symbol codes mapped by name into one
    table), as their collection manifest (``spillway manifest --collection``) would open."""
    if isinstance(path, (list, tuple)):
        return Dataset.from_files(path)
    return spillfile.open(path)


def _version() -> str:
    if _native is not None:
        return _native.__version__
    try:
        from importlib.metadata import version
        return version("spillway")
    except Exception:  # not installed (the reader used from a source tree)
        return "0+unknown"


__version__ = _version()

_SUBMODULES = ("torch", "xgboost", "lightgbm", "spillfile", "errors", "dataset", "ray")


def __getattr__(name: str) -> ModuleType:
    """``spillway.torch`` and friends are imported on first use (each imports its framework)."""
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _need_native() -> ModuleType:
    """The extension, ``spillway._native``; ImportError, saying why, when it did not load."""
    if _native is None:
        raise ImportError("spillway's native extension is not available "
                          f"({_native_error}); install the package with pip to build, inspect "
                          "or export (the numpy reader, spillway.open, works without it)")
    return _native


PathLike = Union[str, "os.PathLike[str]"]


def build(input: PathLike, output: PathLike, *, target: Optional[str] = None,
          features: Union[Sequence[str], str, None] = None, time_col: Optional[str] = None,
          max_rows: Optional[int] = None, no_float32: Optional[bool] = None,
          threads: Optional[int] = None, channel_capacity: Optional[int] = None,
          batch_rows: Optional[int] = None, memory_budget: Union[str, int, None] = None,
          on_error: Optional[str] = None, max_attempts: Optional[int] = None,
          exclude: Union[Sequence[str], str, None] = None, write_mode: Optional[str] = None,
          drop_null_target: Optional[bool] = None,
          min_cs: Optional[int] = None, max_cs_samples: Optional[int] = None,
          seed: Optional[int] = None, order: Optional[str] = None,
          cs_transform: Optional[str] = None,
          config: Optional[PathLike] = None, summary: Optional[PathLike] = None,
          quiet: Optional[bool] = None, progress: Optional[bool] = None,
          storage_options: Optional[Mapping[str, Any]] = None,
          **more: Any) -> Dict[str, Any]:
    """Build a spill file from a universe of parquet files, in this process, and return the build
    summary as a dict (the JSON of ``spillway build --summary``).

    The options are the CLI's (``spillway build --help``), with underscores:

    - ``input``: ``DIR/<SYMBOL>.parquet`` and/or ``DIR/symbol=<SYMBOL>/*.parquet``, or the same
      under an object-storage URL (``s3://bucket/prefix/``, ``gs://``, ``az://``);
      ``output``: the spill file (written to a temporary name, then renamed), or a URL
      (``s3://bucket/train/day.spill``): built in ``scratch`` (default: the temporary
      directory; refused up front when it lacks room), uploaded in parts, its size checked in
      the store, the local copy removed;
    - ``storage_options``: options of the object store of an ``input`` or ``output`` URL, by
      object_store's key names, as polars takes them (``aws_endpoint_url``, ``aws_region``,
      ``aws_access_key_id``, ...), over the environment (``AWS_*``, ``GOOGLE_*``, ``AZURE_*``);
      spillway's own: ``requests_in_flight``, ``request_size``, ``max_retries``,
      ``retry_timeout``. Secret values are never printed or recorded;
    - ``target``, ``features`` (list, or ``"a,b,c"``), ``time_col``, ``max_rows``, ``no_float32``;
    - ``memory_budget`` (default ``"256MiB"``; an int is bytes), ``threads``, ``batch_rows``,
      ``channel_capacity``, ``write_mode`` (``"auto"|"mmap"|"direct"``);
    - ``on_error`` (``"fail"`` (default) or ``"skip"``). Under ``"skip"`` a symbol whose
      footers or time column are bad is left out while planning; symbols that fail only while
      decoding stop the attempt, every one of them is found (the rest decoded, nothing
      written) and the build starts over without them all, as if the universe lacked them
      (``summary["attempts"]`` counts the plans, ``summary["symbols_skipped"]`` names them);
    - ``max_attempts``: under ``on_error="skip"``, the most attempts (plans) before the build
      fails with a :class:`DataError` naming the symbols still failing (default 3, at least
      1: ``1`` never starts over), as ``--max-attempts``;
    - ``exclude``: symbols (a list, or ``"A,B"``) left out as if the universe lacked them, as
      ``--exclude`` (a name the universe lacks excludes nothing); recorded in the file's
      options. A sharded build's driver passes those a shard found failing;
    - ``drop_null_target``, ``min_cs``, ``max_cs_samples``, ``seed``: the cross-sectional filters;
    - ``order``: ``"symbol"`` (default: each symbol's rows together) or ``"time"`` (rows sorted by
      time then symbol, each timestamp's rows together, for cross-sectional training and ranking:
      see :mod:`spillway.lightgbm` ``group=`` and :mod:`spillway.xgboost` ``qid=``); a time-major
      build writes a hidden symbol-major intermediate beside the output and transposes it, in the
      same memory budget;
    - ``cs_transform``: with ``order="time"`` only, each feature transformed within each
      timestamp's cross-section: ``"rank"`` (the percentile rank in (0, 1], ties averaged:
      pandas' ``groupby(time)[col].rank(pct=True)``), ``"zscore"`` (``(x - mean) / std``,
      population std, 0 where it is 0) or ``"winsorize=Q"`` (clipped to the ``Q`` and ``1 - Q``
      quantiles, ``0 <= Q < 0.5``, as pandas' ``Series.quantile``); NaN stays NaN and is left
      out; computed in float64, stored in the column's type; the target, time and symbol
      columns are never transformed. The transform is recorded in the file's options;
    - ``config``: a TOML file of the same options (``summary`` and ``quiet`` included), which the
      keywords override. A keyword left at None is not given: the file's value (else the
      default) holds. Flags override both ways: ``drop_null_target=False`` (``no_float32``,
      ``no_target``, ``quiet``) undoes the file's ``true``, as ``--drop-null-target=false``
      does on the command line;
    - ``summary``: also write the summary as JSON to this path, as ``--summary`` does: a regular
      file (or a new name) is written atomically, a FIFO or a device directly (never replaced),
      ``"-"`` to ``sys.stdout``; the output, an input, the config or the plan is refused
      (UsageError), before the build starts;
    - ``quiet``: no progress bar, even with ``progress=True`` (``quiet=False`` undoes a config
      file's ``quiet = true``); the build prints nothing else: its warnings are in the summary;
    - ``progress``: show the progress bar on stderr (when it is a terminal; default: not shown).

    Options the library gains later pass through ``**more``. An unknown keyword or a value of
    the wrong type is a TypeError, a bad value (out of range, an unknown choice) a UsageError (a
    ``ValueError``), each naming the option. The build runs with the GIL released. Ctrl-C
    (KeyboardInterrupt) cancels it: the temporary file is removed, a previous output is
    untouched, and the KeyboardInterrupt is re-raised.
    Raises :class:`DataError` (bad input), :class:`UsageError` (bad option), :class:`InternalError`;
    a shard build (``shard=``, ``symbols=``) under ``on_error="skip"`` that finds symbols
    failing while decoding writes nothing and raises :class:`ExcludeError` (a ``DataError``,
    exit code 4), whose ``symbols`` map each to its reason: build every shard again with
    ``exclude=`` them (symbol shards: count with ``exclude=`` and plan again first).
    """
    opts = _options(input=input, output=output, target=target, features=features,
                    time_col=time_col, max_rows=max_rows, no_float32=no_float32, threads=threads,
                    channel_capacity=channel_capacity, batch_rows=batch_rows,
                    memory_budget=memory_budget, on_error=on_error,
                    max_attempts=max_attempts, exclude=exclude, write_mode=write_mode,
                    drop_null_target=drop_null_target, min_cs=min_cs,
                    max_cs_samples=max_cs_samples, seed=seed, order=order,
                    cs_transform=cs_transform, storage_options=storage_options, **more)
    config = None if config is None else check_path("config", config)
    summary = None if summary is None else check_path("summary", summary)
    quiet = None if quiet is None else check_flag("quiet", quiet)
    show = False if progress is None else check_flag("progress", progress)
    _need_native()
    result: Dict[str, Any] = json.loads(_native.build(opts, config, show, summary, quiet))
    return result


def inspect(input: PathLike, *, target: Optional[str] = None,
            features: Union[Sequence[str], str, None] = None, time_col: Optional[str] = None,
            max_rows: Optional[int] = None, no_float32: Optional[bool] = None,
            memory_budget: Union[str, int, None] = None, drop_null_target: Optional[bool] = None,
            min_cs: Optional[int] = None, max_cs_samples: Optional[int] = None,
            seed: Optional[int] = None, storage_options: Optional[Mapping[str, Any]] = None,
            **more: Any) -> Dict[str, Any]:
    """What a build of ``input`` would see, from the parquet footers alone (plus the time and
    target columns when filter options are given): symbols, rows, the column union with types,
    symbols missing the target, the estimated output size and peak memory. Returns the dict of
    ``spillway inspect --json``. Options as for :func:`build` (None: not given)."""
    opts = _options(input=input, target=target, features=features, time_col=time_col,
                    max_rows=max_rows, no_float32=no_float32, memory_budget=memory_budget,
                    drop_null_target=drop_null_target, min_cs=min_cs,
                    max_cs_samples=max_cs_samples, seed=seed, storage_options=storage_options,
                    **more)
    _need_native()
    report: Dict[str, Any] = json.loads(_native.inspect(opts))
    return report


def verify(path: PathLike) -> Dict[str, Any]:
    """Check a spill file's structure and every chunk checksum (in parallel, in Rust; with the
    numpy reader where the extension is missing). Returns ``{"ok": True, "nrows", "columns",
    "symbols", "chunks", "damaged": []}``; raises :class:`DataError` when the file does not open
    or a chunk is damaged (its ``report`` attribute then holds the dict, ``damaged`` listing
    ``{"column", "chunk", "rows": [start, stop], "stored", "actual"}``)."""
    path = os.fspath(path)
    if _native is not None:
        ok, nrows, ncols, nsyms, chunks, damaged = _native.verify(path)
    else:
        try:
            with spillfile.open(path) as f:
                found = f.damaged_chunks()
                nrows, ncols, nsyms = f.nrows, len(f.columns), len(f.symbols)
                chunks = sum(len(f.column_info(c).checksums) for c in f.columns)
        except SpillError as e:
            raise DataError(f"{path}: not a valid spill file: {e}") from None
        damaged = [(d.column, d.chunk, d.rows[0], d.rows[1], d.stored, d.actual) for d in found]
        ok = not damaged
    report: Dict[str, Any] = {
        "file": path, "ok": ok, "nrows": nrows, "columns": ncols, "symbols": nsyms,
        "chunks": chunks,
        "damaged": [{"column": c, "chunk": k, "rows": [a, b], "stored": s, "actual": t}
                    for c, k, a, b, s, t in damaged]}
    if not ok:
        first = report["damaged"][0]
        err = DataError(f"{path}: {len(damaged)} of {chunks} chunks damaged; first: column "
                        f"{first['column']!r} rows [{first['rows'][0]}, {first['rows'][1]})")
        err.report = report
        raise err
    return report


def export(path: PathLike, to: PathLike, *, columns: Optional[Sequence[str]] = None,
           rows: Optional[Tuple[Optional[int], Optional[int]]] = None, nan_as_null: bool = False,
           format: Optional[str] = None) -> Dict[str, Any]:
    """Write spill file ``path`` (or some of its rows and columns) to ``to`` as Parquet (snappy)
    or an Arrow IPC file, streaming in bounded memory, like ``spillway export``. The format comes
    from the extension (``.parquet``, ``.arrow``/``.feather``) unless ``format`` is given.
    ``columns``: names in output order (default all); ``rows``: ``(start, stop)`` (either may be
    None); ``nan_as_null``: write NaN floats as null. ``symbol`` becomes a dictionary string
    column, the time column ``timestamp[ns, tz]`` (the recorded zone, else UTC). The output is
    written to a temporary name and renamed when complete. Returns ``{"output", "format", "rows",
    "columns", "bytes"}``. For an in-memory Arrow table without copying, see
    :meth:`SpillFile.to_arrow`."""
    start, stop = (None, None) if rows is None else rows
    cols = None if columns is None else [str(c) for c in columns]
    _need_native()
    result: Dict[str, Any] = json.loads(_native.export(
        os.fspath(path), os.fspath(to), cols, None if start is None else int(start),
        None if stop is None else int(stop), bool(nan_as_null), format))
    return result


@dataclass(frozen=True)
class HistoryCheck:
    """How :func:`append` checked that the universe still holds the dataset's history."""

    #: Whether the dataset records a history (datasets built before spillway kept one do not:
    #: nothing can be trusted, and only ``rebuild=True`` appends to them).
    recorded: bool
    #: Symbols whose files are all unchanged since the dataset was built: trusted, not read.
    trusted: int
    #: Symbols whose files changed (a flat ``<SYM>.parquet`` rewritten): their rows up to the
    #: dataset's last timestamp were built again and compared with the dataset's.
    rebuilt: List[str]
    #: Symbols new to the dataset (they take the next symbol codes).
    new_symbols: List[str]
    #: What differs, symbol by symbol: empty, or the dataset was rebuilt (``rebuild=True``).
    problems: List[str]


@dataclass(frozen=True)
class AppendReport:
    """What :func:`append` did (``spillway append --summary``'s JSON, typed)."""

    #: The manifest (as given: a path or a URL).
    manifest: str
    #: Its generation now (the one read, when nothing was appended).
    generation: int
    #: The dataset's last timestamp before the append (int64 ns, UTC).
    after: int
    #: Its last timestamp now (``after`` when nothing was appended).
    last: int
    #: The new shards, relative to the manifest (none when nothing was appended).
    shards: List[str]
    #: Rows added (every row of the dataset after a rebuild).
    rows: int
    #: Whether the whole dataset was rebuilt (``rebuild=True`` and a history that differs).
    rebuilt: bool
    #: How the history was checked; None when nothing was appended (no row is new: not checked).
    history: Optional[HistoryCheck]
    #: Seconds, all told.
    seconds: float

    @property
    def appended(self) -> bool:
        """Whether a new generation was committed (False: no row of the universe is new)."""
        return bool(self.shards)

    @classmethod
    def from_json(cls, text: str) -> "AppendReport":
        """The report from the JSON of ``spillway append --summary`` (or the extension)."""
        r = json.loads(text)
        h = r.get("history")
        return cls(manifest=str(r["manifest"]), generation=int(r["generation"]),
                   after=int(r["after"]), last=int(r["last"]),
                   shards=[str(x) for x in r["shards"]], rows=int(r["rows"]),
                   rebuilt=bool(r["rebuilt"]),
                   history=None if h is None else HistoryCheck(
                       recorded=bool(h["recorded"]), trusted=int(h["trusted"]),
                       rebuilt=list(h["rebuilt"]), new_symbols=list(h["new_symbols"]),
                       problems=list(h["problems"])),
                   seconds=float(r["seconds"]))


def append(dataset: PathLike, input: PathLike, *, shards: int = 1, rebuild: bool = False,
           threads: Optional[int] = None, memory_budget: Union[str, int, None] = None,
           storage_options: Optional[Mapping[str, Any]] = None,
           scratch: Optional[PathLike] = None, quiet: bool = True) -> AppendReport:
    """Grow the time-major dataset ``dataset`` (its ``dataset.json``: a path or a URL) by the
    rows of the universe ``input`` after the dataset's last timestamp, in this process, as
    ``spillway append`` does, and return what was done.

    The new rows are cut into ``shards`` time shards (``time-g<G>-<i>-of-<n>-<key>.spill``)
    written beside the manifest (into a bucket: built in ``scratch``, default the temporary
    directory, and uploaded), then the next manifest generation, old shards and new, is
    committed only over the generation this append read (a concurrent writer makes it fail,
    never mix; readers of the old generation keep ``dataset.g<N>.json``). The grown dataset
    holds the rows a single ``order="time"`` build of ``input`` holds, with the dataset's symbol
    codes kept (new symbols take the next codes). The options that decide rows (target,
    features, filters, transform) are the dataset's, which its manifest records; ``threads``,
    ``memory_budget`` (per shard build) and ``storage_options`` (as for :func:`build`) only
    shape the work. ``quiet=False`` shows the progress bar on stderr (on a terminal).

    The universe must still hold the dataset's history: files the dataset was built from are
    trusted when unchanged; a changed one has its rows up to the last timestamp built again and
    compared. History that differs (or rows at or before the last timestamp in new files:
    backfilled) raises :class:`HistoryError`, naming each symbol and the first timestamp (ns)
    that differs, and writes nothing; ``rebuild=True`` takes the grown universe whole instead
    (new shards of every timestamp, codes kept: ``report.rebuilt``). When no row is new the
    dataset is left as it is and the report has no shards and 0 rows (``report.appended`` is
    False). A dataset that is not time-major, or was built with ``max_rows``, is a
    :class:`DataError`; a bad value a :class:`UsageError`. Runs with the GIL released; Ctrl-C
    cancels (nothing is committed) and re-raises ``KeyboardInterrupt``.
    """
    return _append(dataset, input, shards=shards, rebuild=rebuild, threads=threads,
                   memory_budget=memory_budget, storage_options=storage_options,
                   scratch=scratch, quiet=quiet)


def _append(dataset: PathLike, input: PathLike, *, shards: int = 1, rebuild: bool = False,
            only: Optional[int] = None, commit_only: bool = False, quiet: bool = True,
            **resources: Any) -> AppendReport:
    """:func:`append`, with the two halves of a cluster's append (:mod:`spillway.ray`):
    ``only=I`` builds new shard ``I`` and commits nothing; ``commit_only`` builds nothing and
    commits the ``shards`` new shards the ``only`` tasks built. ``resources``: options of
    :func:`build` that only shape the work (``threads``, ``memory_budget``,
    ``storage_options``, ``scratch``...); the library refuses the others."""
    from ._options import check_int
    manifest = check_path("dataset", dataset)
    n = check_int("shards", shards)
    if not 1 <= n < 1 << 32:
        raise UsageError(f"shards={n} is out of range: it must be from 1 to 2**32 - 1")
    i = None if only is None else check_int("only", only)
    if i is not None and i >= n:
        raise UsageError(f"only={i}: there are {n} new shards (0 to {n - 1})")
    opts = _options(input=input, **resources)
    _need_native()
    return AppendReport.from_json(_native.append(
        manifest, opts, n, check_flag("rebuild", rebuild), i,
        check_flag("commit_only", commit_only), not check_flag("quiet", quiet)))
