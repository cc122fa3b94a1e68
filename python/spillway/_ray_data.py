"""The Ray Data side of :mod:`spillway.ray`: :func:`read_spill`, a ``ray.data.Dataset`` over a
sharded dataset on a shared filesystem or in a bucket, through ``SpillDatasource``."""
from __future__ import annotations

import os
from types import ModuleType
from typing import TYPE_CHECKING, Any, Dict, Iterator, List, Optional, Tuple, Type, Union

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


def _tasks(ds: Dataset, parallelism: int,
           rows_per_task: Optional[int] = None) -> List[Tuple[int, int, int]]:
    """Read tasks as ``(shard, start, stop)``: whole shards, or pieces of ``rows_per_task`` rows
    (default: about ``nrows / parallelism``), never across a shard's end."""
    per = rows_per_task or max(1, -(-ds.nrows // max(1, int(parallelism))))
    return [(i, a, min(a + per, f.nrows)) for i, f in enumerate(ds.shards)
            for a in range(0, f.nrows, per)]


def _read_block(manifest: str, shard: int, a: int, b: int, columns: Optional[List[str]],
                batch_rows: int, remote: Optional[Dict[str, Any]] = None
                ) -> Iterator[pyarrow.Table]:
    """The rows ``[a, b)`` of one shard as Arrow tables, copied out of the shard's mapping, whose
    pages are released after each table. A shard of a dataset in a bucket is fetched into this
    node's cache first (``remote`` holds ``open_dataset``'s cache and storage arguments)."""
    import pyarrow as pa
    with _dataset.open_dataset(manifest, **(remote or {})) as ds:
        f = ds.shards[shard]
        names = columns or ds.columns
        symbols = pa.array(ds.symbols, pa.string())
        off = ds.offsets[shard]
        for lo in range(a, b, batch_rows):
            hi = min(b, lo + batch_rows)
            cols: Dict[str, Any] = {}
            for c in names:  # a copy (symbol codes in the dataset's table, for a collection)
                v = pa.array(ds.column(c, [(off + lo, off + hi)]))
                cols[c] = pa.DictionaryArray.from_arrays(v, symbols) if c == "symbol" else v
            f.release_pages()  # copied: the pages read leave this worker's resident set
            yield pa.table(cols)


def datasource_class() -> Type[SpillDatasource]:
    """:class:`SpillDatasource` (imported on first use: it subclasses Ray's ``Datasource``)."""
    from ._ray_source import SpillDatasource
    return SpillDatasource


def read_spill(manifest: PathLike, *, columns: Optional[List[str]] = None,
               rows_per_task: Optional[int] = None, batch_rows: int = 65536,
               override_num_blocks: Optional[int] = None, cache_dir: Optional[str] = None,
               cache_limit: Union[int, str, None] = None,
               storage_options: Optional[Dict[str, Any]] = None,
               verify: bool = False) -> RayDataset:
    """A ``ray.data.Dataset`` over a sharded dataset (``dataset.json``): one read task per shard
    or per ``rows_per_task`` rows of a shard, each mapping its shard on the node that runs it and
    yielding Arrow blocks of ``batch_rows`` rows; ``symbol`` is a dictionary column of names, the
    time column int64 UTC nanoseconds. Works with ``streaming_split``, Ray Train's
    ``get_dataset_shard`` / ``iter_torch_batches`` and the XGBoost and LightGBM trainers.

    ``manifest`` may be a URL (``s3://bucket/train/day/dataset.json``): no shared filesystem is
    needed. Each read task then fetches its shard into its node's cache (``cache_dir``, default
    ``$SPILLWAY_CACHE_DIR`` or ``~/.cache/spillway``, bounded by ``cache_limit``; tasks on one
    node share it and download each shard once), checked against the manifest (every chunk
    with ``verify``); ``storage_options`` as for :func:`spillway.build`."""
    ray = _ray()
    remote: Optional[Dict[str, Any]] = None
    if _is_url(os.fspath(manifest)):
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
