"""PyTorch: :class:`Dataset`, an ``IterableDataset`` of ``(X, y)`` batches over a spill file.

    ds = spillway.torch.Dataset("train.spill", batch_rows=4096, shuffle="blocks", seed=0)
    loader = torch.utils.data.DataLoader(ds, batch_size=None, num_workers=4,
                                         multiprocessing_context="spawn")
    for epoch in range(10):
        ds.set_epoch(epoch)          # a new block order each epoch (seed + epoch)
        for X, y in loader: ...      # float32 tensors, (batch_rows, features) and (batch_rows,)

The file is cut into blocks of ``block_rows`` (after the optional shuffle); DataLoader worker ``w``
of ``n`` reads blocks ``w, w + n, ...`` and maps the file itself (the dataset pickles as its
arguments), so spawn and fork workers both work. Tensors are built from fresh, writable copies
(``torch.from_numpy``), so in-place ops are safe. torch is imported when the dataset is created.
"""
import os

from . import spillfile

__all__ = ["Dataset"]


def _torch():
    try:
        import torch
    except ImportError as e:
        raise ImportError("spillway.torch needs PyTorch (pip install torch)") from e
    return torch


class _Base:
    def __init__(self, path, batch_rows=4096, columns=None, ranges=None, shuffle=None,
                 block_rows=None, seed=0, drop_behind=True, with_time=False, with_symbols=False):
        self.path = os.fspath(path)
        self.batch_rows = int(batch_rows)
        self.columns = None if columns is None else list(columns)
        self.ranges = None if ranges is None else [tuple(r) for r in ranges]
        self.shuffle = shuffle
        self.block_rows = int(block_rows or max(self.batch_rows, 65536))
        self.seed = int(seed)
        self.epoch = 0
        self.drop_behind = drop_behind
        self.with_time = with_time
        self.with_symbols = with_symbols
        if shuffle not in (None, "blocks"):
            raise ValueError(f"shuffle must be None or 'blocks', not {shuffle!r}")
        with spillfile.open(self.path) as f:  # fail early on a bad path or file
            self._nrows = sum(b - a for a, b in f._ranges(self.ranges))

    def set_epoch(self, epoch):
        """Use ``seed + epoch`` for the block order of the next iteration."""
        self.epoch = int(epoch)

    def _worker_ranges(self, f, worker, workers):
        blocks = spillfile.cut_blocks([r for r in f._ranges(self.ranges) if r[1] > r[0]],
                                      self.block_rows)
        if self.shuffle == "blocks":
            order = spillfile.splitmix64_permutation(len(blocks), self.seed + self.epoch)
            blocks = [blocks[k] for k in order]
        return spillfile.merge_runs(blocks[worker::workers])

    def __iter__(self):
        torch = _torch()
        info = torch.utils.data.get_worker_info()
        worker, workers = (0, 1) if info is None else (info.id, info.num_workers)
        f = spillfile.open(self.path)  # each worker maps the file itself
        ranges = self._worker_ranges(f, worker, workers)
        for batch in f.batches(self.batch_rows, columns=self.columns, ranges=ranges,
                               drop_behind=self.drop_behind, with_time=self.with_time,
                               with_symbols=self.with_symbols):
            # Fresh writable arrays: from_numpy shares them safely. uint32 codes become int64.
            yield tuple(None if a is None else
                        torch.from_numpy(a.astype("int64") if a.dtype.kind == "u" else a)
                        for a in batch)

    def __len__(self):
        """Batches per epoch with one worker (a worker's share can differ by a batch per block)."""
        return -(-self._nrows // self.batch_rows)


def __getattr__(name):
    """``Dataset`` is made on first use, subclassing ``torch.utils.data.IterableDataset`` (so
    importing this module does not import torch; pickling finds the class by name)."""
    if name != "Dataset":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    torch = _torch()
    cls = type("Dataset", (_Base, torch.utils.data.IterableDataset),
               {"__module__": __name__, "__qualname__": "Dataset", "__doc__": _DOC})
    globals()["Dataset"] = cls
    return cls


_DOC = """An ``torch.utils.data.IterableDataset`` yielding ``(X, y)`` float32 tensor batches (plus
time and symbol codes on request) from the spill file at ``path``; see :mod:`spillway.torch`.

``Dataset(path, batch_rows=4096, columns=None, ranges=None, shuffle=None, block_rows=None,
seed=0, drop_behind=True, with_time=False, with_symbols=False)``. ``block_rows`` (default
``max(batch_rows, 65536)``) is the unit of shuffling and of sharding across workers; ``ranges``
restricts the rows (e.g. ``f.split_by_time(cut)[0]``); ``set_epoch(e)`` reshuffles with
``seed + e``."""
