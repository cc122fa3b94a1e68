"""LightGBM: :func:`dataset`, an ``lgb.Dataset`` over a spill file without copying the features.

    f = spillway.open("train.spill")
    before, after = f.split_by_time("2024-01-01")
    train = spillway.lightgbm.dataset(f, ranges=before, max_bin=63)
    valid = spillway.lightgbm.dataset(f, ranges=after, reference=train)
    booster = lightgbm.train({"objective": "regression"}, train, valid_sets=[valid])

Ranking on a time-major file (``spillway build --order time``), one query per timestamp:

    train = spillway.lightgbm.dataset(f, ranges=before, group=True, label_quantiles=5)
    booster = lightgbm.train({"objective": "lambdarank"}, train)

The data is a ``pyarrow.Table`` whose columns are the file's column views (no copy; LightGBM
reads it while constructing its binned dataset), the label the target column. Rows whose label is
NaN are left out, by splitting the ranges around them (``dataset.spillway_dropped`` counts them).
With ``group=True`` LightGBM's ``group`` is each cross-section's row count (after the NaN labels
are left out): a time-major file's rows of one timestamp are contiguous, so a query is a run of
rows, as LightGBM needs. ``label_quantiles=K`` makes the label each row's quantile grade
(``0 .. K-1``) of the target within its cross-section: ranking objectives need integer relevance
(LightGBM's default ``label_gain`` allows K up to 31). lightgbm and pyarrow are imported when a
dataset is made.
"""
from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, List, Optional, Sequence, Tuple, Union

import numpy as np
from numpy.typing import ArrayLike, NDArray

from . import spillfile
from .spillfile import RowRanges, SpillFile

if TYPE_CHECKING:
    from ._lightgbm import Dataset

__all__ = ["dataset", "label_ranges", "quantile_grades", "Dataset"]


def label_ranges(f: SpillFile,
                 ranges: Optional[RowRanges] = None) -> Tuple[List[Tuple[int, int]], int]:
    """``(ranges, dropped)``: the row ranges of ``ranges`` (default all) split around rows whose
    target is NaN, and how many such rows there were."""
    y = f.column(f.target_column or spillfile._missing("target"))
    out: List[Tuple[int, int]] = []
    dropped = 0
    for a, b in f._ranges(ranges):
        bad = np.flatnonzero(np.isnan(y[a:b]))
        dropped += len(bad)
        start = a
        for r in bad.tolist():
            if a + r > start:
                out.append((start, a + r))
            start = a + r + 1
        if b > start:
            out.append((start, b))
    return out, dropped


def quantile_grades(y: ArrayLike, sizes: ArrayLike, k: int) -> NDArray[np.float32]:
    """Each value's quantile grade ``0 .. k-1`` within its group: ``y`` holds consecutive groups
    of ``sizes`` values; the value of rank ``r`` (0 the smallest, ties in order) in a group of
    ``n`` gets ``floor(r * k / n)``. Returns float32 (integral values)."""
    values = np.asarray(y)
    n = np.asarray(sizes, dtype=np.int64)
    ids = np.repeat(np.arange(len(n)), n)
    order = np.lexsort((values, ids))
    starts = np.cumsum(n) - n
    rank = np.empty(len(values), dtype=np.int64)
    rank[order] = np.arange(len(values)) - np.repeat(starts, n)
    return (rank * int(k) // np.repeat(n, n)).astype(np.float32)


def dataset(f: Union[SpillFile, str, "os.PathLike[str]"], ranges: Optional[RowRanges] = None,
            columns: Optional[Sequence[str]] = None, reference: Optional[Any] = None,
            free_raw_data: bool = True, group: bool = False,
            label_quantiles: Optional[int] = None, **params: Any) -> Dataset:
    """An ``lightgbm.Dataset`` of the rows of ``ranges`` (default all) of spill file ``f`` (a
    :class:`spillway.SpillFile` or a path): features ``columns`` (default all) as an Arrow table
    over the mapping, label the target column, NaN labels left out. ``params`` are LightGBM
    dataset parameters (``max_bin=...``); ``reference`` as for ``lgb.Dataset``.

    ``group=True`` (time-major files only, else SpillError): one query per timestamp, LightGBM's
    ``group`` set to the cross-sections' row counts (``dataset.spillway_groups``).
    ``label_quantiles=K`` (time-major files only): the label becomes each row's quantile grade
    ``0 .. K-1`` of the target within its cross-section (:func:`quantile_grades`), for ranking
    objectives, which need integer relevance. Returns a :class:`Dataset`: an ``lgb.Dataset``
    whose ``construct()`` also drops the file's mapped pages."""
    from ._lightgbm import Dataset
    import pyarrow as pa
    f = spillfile.open(f) if isinstance(f, (str, os.PathLike)) else f
    if (group or label_quantiles) and f.order != "time":
        raise spillfile.SpillError(
            "group=True and label_quantiles need a time-major file (one query per timestamp, its "
            "rows contiguous): build it with `spillway build --order time`")
    kept, dropped = label_ranges(f, ranges)
    names = f.columns_with_role("feature") if columns is None else list(columns)
    table = f.to_arrow(names, ranges=kept or [(0, 0)])
    y = f.column(f.target_column or spillfile._missing("target"))
    sizes = f._group_runs(kept) if (group or label_quantiles) else None
    label: Any
    if label_quantiles and sizes is not None:
        values = np.concatenate([y[a:b] for a, b in kept]) if kept else y[:0]
        label = quantile_grades(values, sizes, int(label_quantiles))
    else:
        label = pa.chunked_array([spillfile._arrow_array(y[a:b]) for a, b in kept or [(0, 0)]])
    ds = Dataset(table, label=label, reference=reference, params=params or None,
                 free_raw_data=free_raw_data, group=sizes if group else None)
    ds.spillway_file = f
    ds.spillway_dropped = dropped
    ds.spillway_groups = sizes if group else None
    return ds


def __getattr__(name: str) -> Any:
    """``Dataset`` is imported on first use (it subclasses ``lightgbm.Dataset``: importing this
    module does not import lightgbm)."""
    if name != "Dataset":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from ._lightgbm import Dataset
    return Dataset
