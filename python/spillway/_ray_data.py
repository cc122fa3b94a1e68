"""The Ray Data side of :mod:`spillway.ray`: :func:`read_spill`, a ``ray.data.Dataset`` over a
sharded dataset on a shared filesystem or in a bucket, through ``SpillDatasource``."""
from __future__ import annotations

import os
from types import ModuleType
from typing import (TYPE_CHECKING, Any, Dict, Iterator, List, Optional, Sequence, Tuple, Type,
                    Union)

import numpy as np

from . import dataset as _dataset
from .sharded import PathLike, is_url as _is_url

if TYPE_CHECKING:
    import pyarrow
    from ray.data import Dataset as RayDataset

    from ._ray_source import SpillDatasource
    from .dataset import Dataset


def _ray() -> ModuleType:
    from .ray import _ray
    return _ray()


#: A read task: ``(shard, start, stop, cuts)``, rows ``[start, stop)`` of one shard yielded as
#: blocks ``[cuts[k], cuts[k + 1])``.
Task = Tuple[int, int, int, List[int]]


def _tasks(ds: Dataset, parallelism: int, rows_per_task: Optional[int] = None,
           batch_rows: int = 65536) -> List[Task]:
    """Read tasks over ``ds``: whole shards, or pieces of ``rows_per_task`` rows (default: about
    ``nrows / parallelism``), never across a shard's end, each cut into blocks of
    ``batch_rows``. In a time-major dataset every cut is moved up to the next timestamp
    boundary, so that a task or block never splits a cross-section (one larger than a block
    is a block alone)."""
    per = rows_per_task or max(1, -(-ds.nrows // max(1, int(parallelism))))
    tasks: List[Task] = []
    for i in range(ds.nshards):
        n, bounds = ds.offsets[i + 1] - ds.offsets[i], None
        if ds.order == "time":  # each shard's cross-section boundaries (its index)
            bounds = ds._shard_index(i).bounds
        for a, b in _cut(0, n, per, bounds):
            tasks.append((i, a, b, [c for c, _ in _cut(a, b, batch_rows, bounds)] + [b]))
    return tasks


def _cut(a: int, b: int, size: int, bounds: Optional[Any]) -> List[Tuple[int, int]]:
    """``[a, b)`` as pieces of ``size`` rows, each end moved up to the first of ``bounds`` (a
    sorted array holding ``b``) at or after it, when given."""
    out = []
    while a < b:
        c = min(a + size, b)
        if bounds is not None:
            c = int(bounds[int(np.searchsorted(bounds, c, "left"))])
        out.append((a, c))
        a = c
    return out


def _read_block(manifest: Union[str, List[PathLike]], shard: int, cuts: List[int],
                columns: Optional[List[str]], remote: Optional[Dict[str, Any]] = None
                ) -> Iterator[pyarrow.Table]:
    """The rows ``[cuts[0], cuts[-1])`` of one shard as Arrow tables ``[cuts[k], cuts[k + 1])``,
    copied out of the shard's mapping, whose pages are released after each table. A shard of a
    dataset in a bucket is fetched into this node's cache first (``remote`` holds
    ``open_dataset``'s cache and storage arguments)."""
    import pyarrow as pa
    with _dataset.open_dataset(manifest, **(remote or {})) as ds:
        f = ds.shards[shard]
        names = columns or ds.columns
        symbols = pa.array(ds.symbols, pa.string())
        off = ds.offsets[shard]
        for lo, hi in zip(cuts, cuts[1:]):
            cols: Dict[str, Any] = {}
            for c in names:  # a copy (symbol codes in the dataset's table, for a collection)
                v = pa.array(ds.column(c, [(off + lo, off + hi)]))
                cols[c] = pa.DictionaryArray.from_arrays(v, symbols) if c == "symbol" else v
            f.release_pages()  # copied: the pages read leave this worker's resident set
            yield pa.table(cols)


def _empty_block(schema: List[Tuple[str, str]]) -> Iterator[pyarrow.Table]:
    """No rows, as one table of the columns ``schema`` (``(name, spill dtype)``, typed as
    :func:`_read_block` types them): a read task that pads the task count (see
    ``SpillDatasource.get_read_tasks``)."""
    import pyarrow as pa
    from .spillfile import DTYPES
    cols: Dict[str, Any] = {}
    for name, dtype in schema:
        v = pa.array(np.zeros(0, DTYPES[dtype]))
        cols[name] = pa.DictionaryArray.from_arrays(v, pa.array([], pa.string())) \
            if name == "symbol" else v
    yield pa.table(cols)


def source_of(manifest: Union[PathLike, Sequence[PathLike]]) -> Union[str, List[PathLike]]:
    """What :func:`read_spill` reads, as its tasks re-open it: a manifest (a path, made
    absolute, or a URL); a spill file (recognised by its magic bytes) or a list of spill files,
    as a list of absolute paths (:meth:`spillway.Dataset.from_files`)."""
    from .spillfile import MAGIC
    if not isinstance(manifest, (str, os.PathLike)):  # a list of files
        paths: List[PathLike] = [os.path.abspath(os.fspath(p)) for p in manifest]
        return paths
    path = os.fspath(manifest)
    if _is_url(path):
        return path
    path = os.path.abspath(path)
    one: List[PathLike] = [path]
    try:
        with open(path, "rb") as fh:
            spill = fh.read(len(MAGIC)) == MAGIC
    except OSError:
        spill = False  # open_dataset says what is wrong with it
    return one if spill else path


def datasource_class() -> Type[SpillDatasource]:
    """:class:`SpillDatasource` (imported on first use: it subclasses Ray's ``Datasource``)."""
    from ._ray_source import SpillDatasource
    return SpillDatasource


def read_spill(manifest: Union[PathLike, Sequence[PathLike]], *,
               columns: Optional[List[str]] = None, rows_per_task: Optional[int] = None,
               batch_rows: int = 65536,
               override_num_blocks: Optional[int] = None, cache_dir: Optional[str] = None,
               cache_limit: Union[int, str, None] = None,
               storage_options: Optional[Dict[str, Any]] = None,
               verify: bool = False) -> RayDataset:
    """A ``ray.data.Dataset`` over a sharded dataset (``dataset.json``), a spill file, or a list
    of spill files (read as :meth:`spillway.Dataset.from_files` reads them): one read task per
    shard or per ``rows_per_task`` rows of a shard, each mapping its shard on the node that runs
    it and yielding Arrow blocks of ``batch_rows`` rows; ``symbol`` is a dictionary column of
    names, the time column int64 UTC nanoseconds. Works with ``streaming_split``, Ray Train's
    ``get_dataset_shard`` / ``iter_torch_batches`` and the XGBoost and LightGBM trainers.

    Time-major data (``--order time``: a file, or a dataset of time shards): tasks and blocks
    are cut at timestamp boundaries, so that every block holds whole cross-sections (all rows
    of a timestamp in one block): a block or task ends at the first timestamp boundary at or
    after the rows asked for, so it may be up to one cross-section longer.

    ``manifest`` may be a URL (``s3://bucket/train/day/dataset.json``): no shared filesystem is
    needed. Each read task then fetches its shard into its node's cache (``cache_dir``, default
    ``$SPILLWAY_CACHE_DIR`` or ``~/.cache/spillway``, bounded by ``cache_limit``; tasks on one
    node share it and download each shard once), checked against the manifest (every chunk
    with ``verify``); ``storage_options`` as for :func:`spillway.build`."""
    ray = _ray()
    remote: Optional[Dict[str, Any]] = None
    if isinstance(manifest, str) and _is_url(manifest):
        given = {"cache_dir": cache_dir, "cache_limit": cache_limit,
                 "storage_options": storage_options, "verify": verify}
        remote = {k: v for k, v in given.items() if v is not None and v is not False}
    elif cache_dir is not None or cache_limit is not None or storage_options:
        raise ValueError("cache_dir, cache_limit and storage_options are for a manifest URL")
    source = datasource_class()(manifest, columns=columns, rows_per_task=rows_per_task,
                                 batch_rows=batch_rows, remote=remote)
    dataset: RayDataset = ray.data.read_datasource(
        source, override_num_blocks=override_num_blocks)
    return dataset
