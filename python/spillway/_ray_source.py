"""``SpillDatasource``, the Ray Data ``Datasource`` of :func:`spillway.ray.read_spill`: in its own
module because it subclasses Ray's class, so importing it imports Ray (``spillway.ray`` does not
until it is used)."""
from __future__ import annotations

import functools
import os
from typing import Any, Dict, List, Optional

from ray.data import Datasource
from ray.data.block import BlockMetadata
from ray.data.datasource import ReadTask

from . import dataset as _dataset
from ._ray_data import _read_block, _tasks
from .sharded import PathLike, is_url as _is_url

__all__ = ["SpillDatasource"]


class SpillDatasource(Datasource):
    """The Ray Data ``Datasource`` of :func:`spillway.ray.read_spill`."""

    def __init__(self, manifest: PathLike, columns: Optional[List[str]] = None,
                 rows_per_task: Optional[int] = None, batch_rows: int = 65536,
                 remote: Optional[Dict[str, Any]] = None) -> None:
        super().__init__()  # type: ignore[no-untyped-call]  # Ray's is unannotated
        path = os.fspath(manifest)
        self.manifest = path if _is_url(path) else os.path.abspath(path)
        self.remote: Dict[str, Any] = dict(remote or {}) if _is_url(path) else {}
        ds = _dataset.open_dataset(self.manifest, **self.remote)
        self.nrows: int = ds.nrows
        self.columns = list(columns or ds.columns)
        self._row_bytes: int = sum(4 if c["dtype"] in ("f32", "u32") else 8
                                   for c in ds.manifest["schema"] if c["name"] in self.columns)
        self.rows_per_task = rows_per_task
        self.batch_rows = int(batch_rows)

    def estimate_inmemory_data_size(self) -> int:
        return self.nrows * self._row_bytes

    def get_read_tasks(self, parallelism: int, per_task_row_limit: Optional[int] = None,
                       data_context: Any = None) -> List[ReadTask]:
        ds = _dataset.open_dataset(self.manifest, **self.remote)
        tasks = []
        for shard, a, b in _tasks(ds, parallelism, self.rows_per_task):
            meta = BlockMetadata(num_rows=b - a, size_bytes=(b - a) * self._row_bytes,
                                 input_files=(ds.shards[shard].path,), exec_stats=None)
            tasks.append(ReadTask(functools.partial(
                _read_block, self.manifest, shard, a, b, self.columns, self.batch_rows,
                self.remote), meta))
        return tasks
