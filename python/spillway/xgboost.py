"""XGBoost: :func:`DataIter`, an ``xgboost.DataIter`` over a spill file in large batches.

    f = spillway.open("train.spill")
    before, after = f.split_by_time("2024-01-01")
    it = spillway.xgboost.DataIter(f, ranges=before)                 # ~1M-row batches
    dtrain = xgboost.QuantileDMatrix(it)                             # in memory, quantized
    it = spillway.xgboost.DataIter(f, ranges=before, cache_prefix="/tmp/xgb/cache")
    dtrain = xgboost.ExtMemQuantileDMatrix(it)                       # external memory
    print(it.dropped)                                                # NaN labels left out

Batches cross symbol boundaries (large batches are what makes XGBoost's iterators fast). Rows
whose label is NaN are dropped (XGBoost refuses them); ``dropped`` counts them over a pass.
xgboost is imported when an iterator is created.
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

        def __init__(self, f, batch_rows=1 << 20, ranges=None, columns=None, cache_prefix=None):
            """``f``: a :class:`spillway.SpillFile` or a path; ``batch_rows`` rows a batch (default
            1,048,576); the rows of ``ranges`` (default all); the feature ``columns`` (default
            all); labels from the target column. ``cache_prefix``: where
            ``ExtMemQuantileDMatrix`` keeps its cache (it needs one; ``QuantileDMatrix`` refuses
            one, so the default is None)."""
            self.file = spillfile.open(f) if isinstance(f, (str, os.PathLike)) else f
            if self.file.target_column is None:
                raise spillfile.SpillError("the file has no target column")
            self.batch_rows, self.ranges, self.columns = int(batch_rows), ranges, columns
            self.dropped = 0
            self._counting = 0
            self._it = None
            super().__init__(cache_prefix=None if cache_prefix is None else os.fspath(cache_prefix))

        def reset(self):
            self._it = None

        def next(self, input_data):
            if self._it is None:
                self._it = self.file.batches(self.batch_rows, columns=self.columns,
                                             ranges=self.ranges)
                self._counting = 0
            for X, y in self._it:
                keep = ~np.isnan(y)
                if not keep.all():
                    self._counting += int(len(y) - keep.sum())
                    X, y = X[keep], y[keep]
                if len(y):
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
