"""The Ray Data side of :mod:`spillway.ray`: :func:`read_spill`, a ``ray.data.Dataset`` over a
sharded dataset on a shared filesystem or in a bucket, through ``SpillDatasource``."""
from __future__ import annotations

import os
from typing import Any, Dict, List, Optional

from . import dataset as _dataset
from .sharded import is_url as _is_url


def _ray():
    from .ray import _ray
    return _ray()


def _tasks(ds, parallelism, rows_per_task=None):
    """Read tasks as ``(shard, start, stop)``: whole shards, or pieces of ``rows_per_task`` rows
    (default: about ``nrows / parallelism``), never across a shard's end."""
    per = rows_per_task or max(1, -(-ds.nrows // max(1, int(parallelism))))
    return [(i, a, min(a + per, f.nrows)) for i, f in enumerate(ds.shards)
            for a in range(0, f.nrows, per)]


def _read_block(manifest, shard, a, b, columns, batch_rows, remote=None):
    """The rows ``[a, b)`` of one shard as Arrow tables, copied out of the mapping (of a shard
    fetched into this node's cache when the dataset is in a bucket: ``remote`` holds
    ``open_dataset``'s cache and storage arguments)."""
    import pyarrow as pa
    with _dataset.open_dataset(manifest, **(remote or {})) as ds:
        f = ds.shards[shard]
        names = columns or ds.columns
        symbols = pa.array(ds.symbols, pa.string())
        for lo in range(a, b, batch_rows):
            hi = min(b, lo + batch_rows)
            cols = {}
            for c in names:
                v = pa.array(f.column(c)[lo:hi].copy())
                cols[c] = pa.DictionaryArray.from_arrays(v, symbols) if c == "symbol" else v
            yield pa.table(cols)


_CLASS = None


def datasource_class():
    """:class:`SpillDatasource`, made on first use (it subclasses Ray's ``Datasource``)."""
    global _CLASS
    if _CLASS is not None:
        return _CLASS
    from ray.data import Datasource
    from ray.data.block import BlockMetadata
    from ray.data.datasource import ReadTask

    class SpillDatasource(Datasource):
        """The Ray Data ``Datasource`` of :func:`read_spill`."""

        def __init__(self, manifest, columns=None, rows_per_task=None, batch_rows=65536,
                     remote=None):
            super().__init__()
            manifest = os.fspath(manifest)
            self.manifest = manifest if _is_url(manifest) else os.path.abspath(manifest)
            self.remote = dict(remote or {}) if _is_url(manifest) else {}
            ds = _dataset.open_dataset(self.manifest, **self.remote)
            self.nrows = ds.nrows
            self.columns = list(columns or ds.columns)
            self._row_bytes = sum(4 if c["dtype"] in ("f32", "u32") else 8
                                  for c in ds.manifest["schema"] if c["name"] in self.columns)
            self.rows_per_task = rows_per_task
            self.batch_rows = int(batch_rows)

        def estimate_inmemory_data_size(self):
            return self.nrows * self._row_bytes

        def get_read_tasks(self, parallelism, per_task_row_limit=None, data_context=None):
            ds = _dataset.open_dataset(self.manifest, **self.remote)
            tasks = []
            for shard, a, b in _tasks(ds, parallelism, self.rows_per_task):
                meta = BlockMetadata(num_rows=b - a, size_bytes=(b - a) * self._row_bytes,
                                     input_files=[ds.shards[shard].path], exec_stats=None)
                args = (self.manifest, shard, a, b, self.columns, self.batch_rows, self.remote)
                tasks.append(ReadTask(lambda args=args: _read_block(*args), meta))
            return tasks

    _CLASS = SpillDatasource
    return _CLASS


def read_spill(manifest, *, columns: Optional[List[str]] = None,
               rows_per_task: Optional[int] = None, batch_rows: int = 65536,
               override_num_blocks: Optional[int] = None, cache_dir: Optional[str] = None,
               cache_limit=None, storage_options: Optional[Dict[str, Any]] = None,
               verify: bool = False):
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
    remote = None
    if _is_url(os.fspath(manifest)):
        remote = {"cache_dir": cache_dir, "cache_limit": cache_limit,
                  "storage_options": storage_options, "verify": verify}
        remote = {k: v for k, v in remote.items() if v is not None and v is not False}
    elif cache_dir is not None or cache_limit is not None or storage_options:
        raise ValueError("cache_dir, cache_limit and storage_options are for a manifest URL")
    source = datasource_class()(manifest, columns=columns, rows_per_task=rows_per_task,
                                 batch_rows=batch_rows, remote=remote)
    return ray.data.read_datasource(source, override_num_blocks=override_num_blocks)
