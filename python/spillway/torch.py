"""PyTorch: :class:`Dataset`, an ``IterableDataset`` of tensor batches over a spill file, a
sharded dataset or a list of files, split across DDP ranks and DataLoader workers, resumable
mid-epoch.

    ds = spillway.torch.Dataset("train.spill", batch_rows=4096, shuffle="blocks", seed=0,
                                drop_last=True)      # rank, world_size: torch.distributed's
    loader = torch.utils.data.DataLoader(ds, batch_size=None, num_workers=4, pin_memory=True,
                                         multiprocessing_context="spawn")
    for epoch in range(10):
        ds.set_epoch(epoch)          # a new block order each epoch (seed + epoch)
        for X, y in loader: ...      # tensors (rows, features) in `dtype`, and (rows,) float32

**Batches.** The dataset yields what ``batches(batch_rows, ..., epoch=e, rank=r,
world_size=W, worker=w, num_workers=V, drop_last=..., pad=...)`` of the spill file (or of the
dataset) yields: the epoch's batches are dealt to the W ranks, and each rank's to its V
DataLoader workers (``get_worker_info()``), which an in-order DataLoader interleaves back into
the rank's sequence. With ``W x V > 1`` choose ``drop_last=True`` (the last few batches of the
epoch are left out) or ``pad=True`` (a few batches from the start of the epoch are repeated), so
every rank and worker yields the same number of batches and DDP never waits on a rank with one
batch more. ``rank`` and ``world_size`` default to ``torch.distributed``'s when it is
initialised, else to the ``RANK`` and ``WORLD_SIZE`` environment variables (torchrun sets them),
else 0 and 1. ``len(ds)`` (and ``len(loader)``) is the batches this rank yields in an epoch when
the dataset is told the loader's ``num_workers``.

**Tensors.** X in ``dtype`` (``"float32"``, ``"float16"``, ``"bfloat16"``: converted while the
rows are copied, so a half-precision epoch moves half the bytes), y float32 (None with
``target=False``), then int64 times (``with_time``) and int64 symbol codes (``with_symbols``).
Each is a fresh array handed over by ``torch.from_numpy`` (in-place ops are safe). Pass
``pin_memory=True`` to the DataLoader to have the batches copied into page-locked memory, for
fast asynchronous ``X.to("cuda", non_blocking=True)``. Each worker opens the file itself (the
dataset pickles as its arguments), so spawn and fork workers both work. Use ``batch_size=None``:
the dataset yields whole batches.

**Resume.** ``state_dict()`` / ``load_state_dict()`` follow torchdata's ``StatefulDataLoader``,
which calls them inside each worker: save ``loader.state_dict()`` with the checkpoint; to resume,
build the same dataset and loader, ``loader.load_state_dict(saved)``, and iterate: the batches
are exactly those the uninterrupted run would have yielded next. A dataset's state is the
reader's (a few ints, JSON-able); a loaded one is used by the next iteration.

**Elastic resume** (another world size or number of workers): the states of one rank's workers,
merged, resume at any world size: every batch not yet delivered is delivered once (less those
dropped, plus those padded, to even the new ranks out). DDP ranks advance in lockstep, so rank
0's state speaks for every rank::

    saved = loader.state_dict()                                   # rank 0, at the checkpoint
    state = spillway.torch.merge_states(spillway.torch.loader_states(saved))
    # after the restart, on every rank of the new world:
    ds = spillway.torch.Dataset(..., drop_last=True)              # same rows and batching
    ds.load_state_dict(state)                                     # its epoch comes with it
    loader = StatefulDataLoader(ds, batch_size=None, num_workers=V)   # any V
    for epoch in range(state["epoch"], epochs):
        ds.set_epoch(epoch)          # the loaded state's epoch keeps it; the next drops it
        for X, y in loader: ...

A state loaded into the dataset (not the loader) travels to the workers with the dataset, each
taking its share; ``set_epoch`` with another epoch discards it. With ``persistent_workers=True``
the workers keep the dataset they started with, so ``set_epoch`` does not reach them.
"""
from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, Dict, Iterable, Iterator, List, Mapping, Optional, \
    Sequence, Tuple, Union

from . import dataset as _dataset
from . import spillfile

__all__ = ["Dataset", "merge_states", "loader_states"]

_DTYPES = ("float32", "float16", "bfloat16")
_Batch = Tuple[Any, ...]


def _torch() -> Any:
    try:
        import torch
    except ImportError as e:
        raise ImportError("spillway.torch needs PyTorch (pip install torch)") from e
    return torch


def merge_states(states: Iterable[Mapping[str, Any]]) -> Dict[str, Any]:
    """The dataset states of every DataLoader worker of one rank (as :func:`loader_states`
    returns them) as one state, which resumes at any world size and number of workers:
    :func:`spillway.spillfile.merge_states`. A list of one rank's state returns it."""
    return spillfile.merge_states(list(states))


def loader_states(loader_state: Mapping[str, Any]) -> List[Dict[str, Any]]:
    """The dataset states in a ``torchdata.stateful_dataloader.StatefulDataLoader``'s
    ``state_dict()``: one per worker (one with ``num_workers=0``), for :func:`merge_states`. A
    snapshot that lags the last batches yielded (``snapshot_every_n_steps > 1``) is refused: the
    merged state would deliver them again."""
    if not isinstance(loader_state, Mapping):
        raise TypeError(f"loader_state must be a StatefulDataLoader.state_dict(), not "
                        f"{type(loader_state).__name__}")
    if "dataset_state" in loader_state:  # num_workers=0: the single-process iterator's
        states = [loader_state["dataset_state"]]
    elif "_snapshot" in loader_state:
        lag = loader_state.get("_steps_since_snapshot", 0)
        if lag:
            raise ValueError(f"the loader's snapshot is {lag} batches old: take the state with "
                             "snapshot_every_n_steps=1 (the default), or at a snapshot step")
        workers = loader_state["_snapshot"].get("_worker_snapshots", {})
        states = [(workers.get(f"worker_{i}") or {}).get("dataset_state")
                  for i in range(len(workers))]
    else:
        raise ValueError("not a StatefulDataLoader state (no dataset_state nor _snapshot)")
    if not states or any(s is None for s in states):
        raise ValueError("the loader state holds no dataset state for some worker: was the "
                         "dataset a spillway.torch.Dataset, and had its workers started?")
    return [dict(s) for s in states]


def _distributed() -> Tuple[int, int]:
    """``(rank, world_size)`` of torch.distributed when initialised, else of the environment
    (``RANK``, ``WORLD_SIZE``), else ``(0, 1)``."""
    dist = _torch().distributed
    if dist.is_available() and dist.is_initialized():
        return int(dist.get_rank()), int(dist.get_world_size())
    env = os.environ
    try:
        return int(env.get("RANK", 0)), int(env.get("WORLD_SIZE", 1))
    except ValueError:
        raise ValueError(f"RANK={env.get('RANK')!r}, WORLD_SIZE={env.get('WORLD_SIZE')!r}: not "
                         "integers; pass rank= and world_size= to spillway.torch.Dataset") from None


def _source(path_or_dataset: Any) -> Union[str, _dataset.Dataset]:
    """A spill file's path, or a dataset (of a manifest, or of a list of files)."""
    if isinstance(path_or_dataset, _dataset.Dataset):
        return path_or_dataset
    if isinstance(path_or_dataset, (list, tuple)):
        return _dataset.Dataset.from_files(path_or_dataset)
    path: str = os.fspath(path_or_dataset)
    if "://" in path or path.endswith(".json"):
        return _dataset.open_dataset(path)
    return path


class _Base:
    def __init__(self, path_or_dataset: Any, batch_rows: int = 4096,
                 columns: Optional[Sequence[str]] = None, ranges: Any = None,
                 shuffle: Optional[str] = None, block_rows: Optional[int] = None, seed: int = 0,
                 drop_last: bool = False, pad: bool = False, target: bool = True,
                 dtype: str = "float32", verify: bool = False, with_time: bool = False,
                 with_symbols: bool = False, rank: Optional[int] = None,
                 world_size: Optional[int] = None, num_workers: Optional[int] = None,
                 whole_timestamps: bool = False, window: Optional[int] = None):
        self._source = _source(path_or_dataset)
        self.batch_rows = batch_rows
        self.columns = None if columns is None else list(columns)
        self.ranges = ranges if ranges is None or isinstance(ranges, tuple) else \
            [tuple(r) for r in ranges]
        self.shuffle, self.block_rows, self.seed = shuffle, block_rows, seed
        self.drop_last, self.pad = bool(drop_last), bool(pad)
        self.target, self.dtype, self.verify = bool(target), dtype, bool(verify)
        self.with_time, self.with_symbols = bool(with_time), bool(with_symbols)
        self.whole_timestamps, self.window = bool(whole_timestamps), window
        if rank is None or world_size is None:
            r, w = _distributed()
            rank = r if rank is None else rank
            world_size = w if world_size is None else world_size
        self.rank, self.world_size = rank, world_size
        if dtype not in _DTYPES:
            raise ValueError(f"dtype must be one of {', '.join(_DTYPES)}, not {dtype!r}")
        if num_workers is not None and (type(num_workers) is not int or num_workers < 0):
            raise ValueError(f"num_workers must be the DataLoader's (an int >= 0), not "
                             f"{num_workers!r}")
        self.num_workers = num_workers
        self.epoch = 0
        self._loaded: Optional[Dict[str, Any]] = None  # a state for the next __iter__
        self._it: Any = None  # the live reader iterator: its state is the dataset's
        self._opened: Optional[Tuple[int, spillfile.SpillFile]] = None  # (pid, file)
        # The arguments checked here, not first in a worker (a remote dataset would download a
        # shard for it: there, in the workers).
        if not getattr(self._source, "remote", False):
            self._reader(0, max(1, num_workers or 0), None)

    # ------------------------------------------------------------------ reading
    def _open(self) -> Any:
        """The file (opened once per process: a forked worker opens its own) or dataset."""
        if not isinstance(self._source, str):
            return self._source
        if self._opened is None or self._opened[0] != os.getpid():
            self._opened = (os.getpid(), spillfile.open(self._source))
        return self._opened[1]

    def _reader(self, worker: int, workers: int, state: Optional[Dict[str, Any]]) -> Any:
        """The reader's iterator for worker ``worker`` of this rank's ``workers``."""
        if self.world_size * workers > 1 and not (self.drop_last or self.pad):
            raise ValueError(f"world_size x num_workers = {self.world_size} x {workers} > 1: "
                             "pass drop_last=True or pad=True to spillway.torch.Dataset, so every "
                             "rank and DataLoader worker gets the same number of batches")
        kw: Dict[str, Any] = dict(
            columns=self.columns, ranges=self.ranges, shuffle=self.shuffle,
            block_rows=self.block_rows, seed=self.seed, with_time=self.with_time,
            with_symbols=self.with_symbols, rank=self.rank, world_size=self.world_size,
            worker=worker, num_workers=workers, drop_last=self.drop_last, pad=self.pad,
            target=self.target, dtype=self.dtype, verify=self.verify,
            epoch=self.epoch if state is None else None, state=state)
        if self.whole_timestamps:
            kw["whole_timestamps"] = True
        if self.window is not None:
            kw["window"] = self.window
        return self._open().batches(self.batch_rows, **kw)

    def _worker(self) -> Tuple[int, int]:
        """``(worker, num_workers)`` of this process: a DataLoader worker's, else ``(0, 1)``."""
        info = _torch().utils.data.get_worker_info()
        if info is None:
            return 0, 1
        if self.num_workers not in (None, info.num_workers):
            raise ValueError(f"spillway.torch.Dataset(num_workers={self.num_workers}) is read by "
                             f"a DataLoader with num_workers={info.num_workers}")
        return int(info.id), int(info.num_workers)

    def __iter__(self) -> Iterator[_Batch]:
        worker, workers = self._worker()
        state, self._loaded = self._loaded, None  # a loaded state serves one iteration
        self._it = self._reader(worker, workers, state)
        return self._tensors(self._it)

    def _tensors(self, it: Iterable[_Batch]) -> Iterator[_Batch]:
        torch = _torch()
        bf16 = self.dtype == "bfloat16"
        for X, *rest in it:
            X = torch.from_numpy(X)
            if bf16:  # numpy has no bfloat16: the reader hands over its bits as uint16
                X = X.view(torch.bfloat16)
            yield (X, *(None if a is None else
                        torch.from_numpy(a.astype("int64") if a.dtype.kind == "u" else a)
                        for a in rest))

    def __len__(self) -> int:
        """Batches this rank yields in an epoch: over all the loader's workers when the dataset
        was given its ``num_workers``; in a worker, that worker's (each yields as many)."""
        if _torch().utils.data.get_worker_info() is not None:
            return len(self._reader(*self._worker(), None))
        workers = self.num_workers or 1
        return len(self._reader(0, workers, None)) * workers

    # ------------------------------------------------------------------ epochs and state
    def set_epoch(self, epoch: int) -> None:
        """Use block order ``seed + epoch`` from the next iteration on. A loaded state of another
        epoch is discarded (one of this epoch is kept: it resumes this epoch)."""
        self.epoch = int(epoch)
        self._it = None
        if self._loaded is not None and self._loaded.get("epoch") != self.epoch:
            self._loaded = None

    def state_dict(self) -> Dict[str, Any]:
        """Where this dataset is: the live iterator's state (in a DataLoader worker, that
        worker's), else the loaded state, else the start of the epoch. A small JSON-able dict."""
        if self._it is not None:
            return dict(self._it.state_dict())
        if self._loaded is not None:
            return dict(self._loaded)
        return dict(self._reader(*self._worker(), None).state_dict())

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Resume from ``state_dict`` at the next iteration (its epoch becomes the dataset's).
        A worker's state resumes that worker; a rank's (num_workers 1, e.g. from
        :func:`merge_states`) resumes at any rank, world size and number of workers."""
        if not isinstance(state_dict, Mapping) or state_dict.get("spillway_batches") != 1:
            raise ValueError("not a spillway.torch.Dataset state (a dict with spillway_batches: "
                             f"1), but {state_dict!r:.200}")
        self._loaded = dict(state_dict)
        self.epoch = int(state_dict["epoch"])
        self._it = None

    # ------------------------------------------------------------------ pickling
    def __getstate__(self) -> Dict[str, Any]:
        state = dict(self.__dict__)
        state["_it"] = state["_opened"] = None  # an open file and a generator stay here
        return state


if TYPE_CHECKING:
    Dataset = _Base  # made on first use, below, as a subclass of _Base and IterableDataset


def __getattr__(name: str) -> Any:
    """``Dataset`` is made on first use, subclassing ``torch.utils.data.IterableDataset`` (so
    importing this module does not import torch; pickling finds the class by name)."""
    if name != "Dataset":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    torch = _torch()
    cls = type("Dataset", (_Base, torch.utils.data.IterableDataset),
               {"__module__": __name__, "__qualname__": "Dataset", "__doc__": _DOC})
    globals()["Dataset"] = cls
    return cls


_DOC = """A ``torch.utils.data.IterableDataset`` of tensor batches ``(X, y[, time][, symbols])``
of a spill file, a sharded dataset or a list of files, dealt to ranks and DataLoader workers,
resumable; see :mod:`spillway.torch`.

``Dataset(path_or_dataset, batch_rows=4096, columns=None, ranges=None, shuffle=None,
block_rows=None, seed=0, drop_last=False, pad=False, target=True, dtype="float32", verify=False,
with_time=False, with_symbols=False, rank=None, world_size=None, num_workers=None,
whole_timestamps=False, window=None)``.

- ``path_or_dataset``: a spill file's path; a ``dataset.json`` (a path or a URL), opened with
  :func:`spillway.open_dataset`, or a dataset opened so; or a list of spill files with the same
  feature columns, read as one dataset of them in that order (rows numbered across them).
- ``batch_rows``, ``columns``, ``ranges``, ``shuffle``, ``block_rows`` (default
  ``batch_rows``), ``seed``, ``with_time``, ``with_symbols``, ``whole_timestamps`` (a time-major
  file), ``window`` (a dataset's ``shuffle="shards"``), ``target``, ``dtype``, ``verify``: as
  for ``batches``.
- ``drop_last`` / ``pad``: how the epoch is evened out over ranks and workers (one of them is
  needed when ``world_size x num_workers > 1``).
- ``rank``, ``world_size``: default torch.distributed's, else ``$RANK`` / ``$WORLD_SIZE``, else
  0 / 1.
- ``num_workers``: the DataLoader's, for an exact ``len(ds)`` (and ``len(loader)``) with several
  workers, and to check evenness when the dataset is made rather than in the workers.

``set_epoch(e)`` reshuffles with ``seed + e``; ``state_dict()`` / ``load_state_dict(sd)`` resume
(torchdata's ``StatefulDataLoader`` calls them in each worker)."""
