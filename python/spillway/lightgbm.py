"""LightGBM: :func:`dataset`, an ``lgb.Dataset`` over a spill file without copying the features.

    f = spillway.open("train.spill")
    before, after = f.split_by_time("2024-01-01")
    train = spillway.lightgbm.dataset(f, ranges=before, max_bin=63)
    valid = spillway.lightgbm.dataset(f, ranges=after, reference=train)
    booster = lightgbm.train({"objective": "regression"}, train, valid_sets=[valid])

The data is a ``pyarrow.Table`` whose columns are the file's column views (no copy; LightGBM
reads it while constructing its binned dataset), the label the target column. Rows whose label is
NaN are left out, by splitting the ranges around them (``dataset.spillway_dropped`` counts them).
lightgbm and pyarrow are imported when a dataset is made.
"""
import os

import numpy as np

from . import spillfile

__all__ = ["dataset", "label_ranges"]


def label_ranges(f, ranges=None):
    """``(ranges, dropped)``: the row ranges of ``ranges`` (default all) split around rows whose
    target is NaN, and how many such rows there were."""
    y = f.column(f.target_column or spillfile._missing("target"))
    out, dropped = [], 0
    for a, b in f._ranges(ranges):
        bad = np.flatnonzero(np.isnan(y[a:b]))
        dropped += len(bad)
        start = a
        for r in bad:
            if a + r > start:
                out.append((start, a + r))
            start = a + r + 1
        if b > start:
            out.append((start, b))
    return out, dropped


def dataset(f, ranges=None, columns=None, reference=None, free_raw_data=True, **params):
    """An ``lightgbm.Dataset`` of the rows of ``ranges`` (default all) of spill file ``f`` (a
    :class:`spillway.SpillFile` or a path): features ``columns`` (default all) as an Arrow table
    over the mapping, label the target column, NaN labels left out. ``params`` are LightGBM
    dataset parameters (``max_bin=...``); ``reference`` as for ``lgb.Dataset``."""
    try:
        import lightgbm as lgb
        import pyarrow as pa
    except ImportError as e:
        raise ImportError("spillway.lightgbm needs lightgbm and pyarrow") from e
    f = spillfile.open(f) if isinstance(f, (str, os.PathLike)) else f
    kept, dropped = label_ranges(f, ranges)
    names = f.columns_with_role("feature") if columns is None else list(columns)
    table = f.to_arrow(names, ranges=kept or [(0, 0)])
    y = f.column(f.target_column)
    label = pa.chunked_array([spillfile._arrow_array(y[a:b]) for a, b in kept or [(0, 0)]])
    ds = lgb.Dataset(table, label=label, reference=reference, params=params or None,
                     free_raw_data=free_raw_data)
    ds.spillway_dropped = dropped
    return ds
