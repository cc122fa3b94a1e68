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
from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._xgboost import DataIter

__all__ = ["DataIter"]


def __getattr__(name: str) -> Any:
    """``DataIter`` is imported on first use (it subclasses ``xgboost.DataIter``: importing this
    module does not import xgboost)."""
    if name != "DataIter":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from ._xgboost import DataIter
    globals()["DataIter"] = DataIter
    return DataIter
