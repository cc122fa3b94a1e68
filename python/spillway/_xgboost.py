""":class:`spillway.xgboost.DataIter`, in its own module because it subclasses
``xgboost.DataIter``: importing it imports xgboost (``spillway.xgboost`` does not)."""
from __future__ import annotations

import os
from typing import Any, Callable, Iterator, Optional, Sequence, Tuple, Union

import numpy as np
from numpy.typing import NDArray

try:
    import xgboost
except ImportError as e:
    raise ImportError("spillway.xgboost needs XGBoost (pip install xgboost-cpu)") from e

from . import spillfile
from .spillfile import RowRanges, SpillFile

__all__ = ["DataIter"]


class DataIter(xgboost.DataIter):
    """An ``xgboost.DataIter`` feeding ``(X, y)`` batches of a spill file to
    ``QuantileDMatrix`` / ``ExtMemQuantileDMatrix``; see :mod:`spillway.xgboost`."""

    def __init__(self, f: Union[SpillFile, str, "os.PathLike[str]"], batch_rows: int = 1 << 20,
                 ranges: Optional[RowRanges] = None, columns: Optional[Sequence[str]] = None,
                 cache_prefix: Union[str, "os.PathLike[str]", None] = None,
                 qid: bool = False) -> None:
        """``f``: a :class:`spillway.SpillFile` or a path; ``batch_rows`` rows a batch (default
        1,048,576); the rows of ``ranges`` (default all); the feature ``columns`` (default
        all); labels from the target column. ``cache_prefix``: where
        ``ExtMemQuantileDMatrix`` keeps its cache (it needs one; ``QuantileDMatrix`` refuses
        one, so the default is None). ``qid=True`` (time-major files): whole cross-sections
        per batch, and each row's query id (see :mod:`spillway.xgboost`)."""
        # xgboost's __del__ needs its own attributes: initialise them before any check raises.
        super().__init__(cache_prefix=None if cache_prefix is None else os.fspath(cache_prefix))
        self._it: Optional[Iterator[Tuple[Optional[NDArray[Any]], ...]]] = None
        self.file = spillfile.open(f) if isinstance(f, (str, os.PathLike)) else f
        if self.file.target_column is None:
            raise spillfile.SpillError("the file has no target column")
        if qid and self.file.order != "time":
            raise spillfile.SpillError(
                "qid=True needs a time-major file (one query per timestamp, its rows "
                "contiguous): build it with `spillway build --order time`")
        if qid and self.file.time_column is None:
            raise spillfile.SpillError("the file has no time column")
        self.batch_rows, self.ranges, self.columns = int(batch_rows), ranges, columns
        self.qid = bool(qid)
        self._next_query = 0
        #: Rows left out of the last complete pass because their label is NaN.
        self.dropped = 0
        self._counting = 0

    def reset(self) -> None:
        self._it = None

    def next(self, input_data: Callable[..., Any]) -> bool:
        if self._it is None:
            self._it = self.file.batches(self.batch_rows, columns=self.columns,
                                         ranges=self.ranges, with_time=self.qid,
                                         whole_timestamps=self.qid)
            self._counting = 0
            self._next_query = 0
        for X, y, *extra in self._it:
            # The file has a target (checked above), and with qid its time follows.
            assert X is not None and y is not None
            time = [t for t in extra if t is not None]
            keep = ~np.isnan(y)
            if not keep.all():
                self._counting += int(len(y) - keep.sum())
                X, y = X[keep], y[keep]
                time = [t[keep] for t in time]
            if not len(y):
                continue
            if self.qid:
                t = time[0]
                new = np.concatenate([[True], t[1:] != t[:-1]])
                q = self._next_query + np.cumsum(new, dtype=np.int64) - 1
                self._next_query = int(q[-1]) + 1
                input_data(data=X, label=y, qid=q)
            else:
                input_data(data=X, label=y)
            return True
        self.dropped = self._counting
        return False


DataIter.__module__ = "spillway.xgboost"
