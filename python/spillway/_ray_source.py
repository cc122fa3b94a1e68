"""``SpillDatasource``, the Ray Data ``Datasource`` of :func:`spillway.ray.read_spill`: in its own
module because it subclasses Ray's class, so importing it imports Ray (``spillway.ray`` does not
until it is used)."""
from __future__ import annotations

import functools
from typing import Any, Dict, List, Optional, Sequence, Union

from ray.data import DataContext, Datasource
from ray.data.block import BlockMetadata
from ray.data.datasource import ReadTask

from . import dataset as _dataset
from ._ray_data import _empty_block, _read_block, _tasks, source_of
from .sharded import PathLike, is_url as _is_url

__all__ = ["SpillDatasource"]


class SpillDatasource(Datasource):
    """The Ray Data ``Datasource`` of :func:`spillway.ray.read_spill`."""

    def __init__(self, manifest: Union[PathLike, Sequence[PathLike]],
                 columns: Optional[List[str]] = None, rows_per_task: Optional[int] = None,
                 batch_rows: int = 65536, remote: Optional[Dict[str, Any]] = None) -> None:
        super().__init__()  # type: ignore[no-untyped-call]  # Ray's is unannotated
        self.manifest = source_of(manifest)
        url = isinstance(self.manifest, str) and _is_url(self.manifest)
        self.remote: Dict[str, Any] = dict(remote or {}) if url else {}
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
        block_rows = self.batch_rows
        time_major = ds.order == "time"
        if time_major:
            # Ray slices a task's output into blocks of its target size once a table it adds
            # reaches half of it, wherever a cross-section ends: tables of at most a quarter
            # of it are never sliced (a cross-section larger than that still may be).
            cap = (data_context or DataContext.get_current()).target_max_block_size
            if cap:
                block_rows = min(block_rows, max(1, cap // 4 // max(1, self._row_bytes)))
        tasks = []
        for shard, a, b, cuts in _tasks(ds, parallelism, self.rows_per_task, block_rows):
            meta = BlockMetadata(num_rows=b - a, size_bytes=(b - a) * self._row_bytes,
                                 input_files=(ds.shards[shard].path,), exec_stats=None)
            tasks.append(ReadTask(functools.partial(
                _read_block, self.manifest, shard, cuts, self.columns, self.remote), meta))
        if time_major and len(tasks) < parallelism:
            # Fewer tasks than asked (cuts moved up to timestamp boundaries), Ray would split
            # each task's blocks evenly, through cross-sections: tasks of no rows make up the
            # count instead.
            schema = [(c["name"], c["dtype"]) for c in ds.manifest["schema"]
                      if c["name"] in self.columns]
            schema.sort(key=lambda c: self.columns.index(c[0]))
            meta = BlockMetadata(num_rows=0, size_bytes=0, input_files=None, exec_stats=None)
            tasks += [ReadTask(functools.partial(_empty_block, schema), meta)
                      for _ in range(parallelism - len(tasks))]
        return tasks
