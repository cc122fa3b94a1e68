"""XGBoost: :func:`DataIter`, an ``xgboost.DataIter`` over a spill file in large batches.

    f = spillway.open("train.spill")
    before, after = f.split_by_time("2024-01-01")
    it = spillway.xgboost.DataIter(f, ranges=before)                 # ~1M-row batches
    dtrain = xgboost.QuantileDMatrix(it)                             # in memory, quantized
    it = spillway.xgboost.DataIter(f, ranges=before, cache_prefix="/tmp/xgb/cache")
    dtrain = xgboost.ExtMemQuantileDMatrix(it)                       # external memory
    print(it.dropped)                                                # NaN labels left out

Ranking on a time-major file (``spillway build --order time``), one query per timestamp:

    it = spillway.xgboost.DataIter(f, ranges=before, qid=True)       # whole cross-sections
    booster = xgboost.train({"objective": "rank:ndcg"}, xgboost.QuantileDMatrix(it))

Batches cross symbol boundaries (large batches are what makes XGBoost's iterators fast). Rows
whose label is NaN are dropped (XGBoost refuses them); ``dropped`` counts them over a pass. With
``qid=True`` every batch holds whole cross-sections (``batches(whole_timestamps=True)``: the
ranges must start and stop on timestamp boundaries, as ``time_range`` and ``split_by_time`` give
them in a time-major file), and each row's ``qid`` numbers its cross-section in the order read
(consecutive rows of one time, increasing across batches, as XGBoost requires). Ranking
objectives need integer relevance labels: make the target one before building, or grade it
yourself. xgboost is imported when an iterator is created.
"""
import os

import numpy as np

from . import spillfile

__all__ = ["DataIter"]

def _xgb():
    try:
        import xgboost
    except ImportError as e:
        raise ImportError("spillway.xgboost needs XGBoost (pip install xgboost-cpu)") from e
    return xgboost


def _make_class(xgboost):
    class DataIter(xgboost.DataIter):
        """An ``xgboost.DataIter`` feeding ``(X, y)`` batches of a spill file to
        ``QuantileDMatrix`` / ``ExtMemQuantileDMatrix``; see :mod:`spillway.xgboost`."""

        def __init__(self, f, batch_rows=1 << 20, ranges=None, columns=None, cache_prefix=None,
                     qid=False):
            """``f``: a :class:`spillway.SpillFile` or a path; ``batch_rows`` rows a batch (default
            1,048,576); the rows of ``ranges`` (default all); the feature ``columns`` (default
            all); labels from the target column. ``cache_prefix``: where
            ``ExtMemQuantileDMatrix`` keeps its cache (it needs one; ``QuantileDMatrix`` refuses
            one, so the default is None). ``qid=True`` (time-major files): whole cross-sections
            per batch, and each row's query id (see :mod:`spillway.xgboost`)."""
            # xgboost's __del__ needs its own attributes: initialise them before any check raises.
            super().__init__(cache_prefix=None if cache_prefix is None else os.fspath(cache_prefix))
            self._it = None
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
            self.dropped = 0
            self._counting = 0

        def reset(self):
            self._it = None

        def next(self, input_data):
            if self._it is None:
                self._it = self.file.batches(self.batch_rows, columns=self.columns,
                                             ranges=self.ranges, with_time=self.qid,
                                             whole_timestamps=self.qid)
                self._counting = 0
                self._next_query = 0
            for X, y, *time in self._it:
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

    DataIter.__module__ = __name__
    return DataIter


def __getattr__(name):
    """``DataIter`` is made on first use, subclassing ``xgboost.DataIter`` (importing this module
    does not import xgboost)."""
    if name != "DataIter":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    cls = _make_class(_xgb())
    globals()["DataIter"] = cls
    return cls
