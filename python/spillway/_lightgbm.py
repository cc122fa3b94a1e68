""":class:`spillway.lightgbm.Dataset`, in its own module because it subclasses
``lightgbm.Dataset``: importing it imports lightgbm (``spillway.lightgbm`` does not)."""
from __future__ import annotations

from typing import Any, Optional

import numpy as np
from numpy.typing import NDArray

try:
    import lightgbm as lgb
    import pyarrow  # noqa: F401 - the features go to LightGBM as an Arrow table
except ImportError as e:
    raise ImportError("spillway.lightgbm needs lightgbm and pyarrow") from e

from .spillfile import SpillFile

__all__ = ["Dataset"]


class Dataset(lgb.Dataset):
    """What :func:`spillway.lightgbm.dataset` returns: an ``lgb.Dataset`` (use it as one) that
    says how many rows were left out for a NaN label and, with ``group=True``, the query sizes
    it was given. Its ``construct()`` then drops the spill file's mapped pages from the process
    (:meth:`~spillway.spillfile.SpillFile.release_pages`): LightGBM holds its binned copy, and
    the views it read from would otherwise stay resident (the whole feature matrix)."""

    #: The spill file the features are views of.
    spillway_file: Optional[SpillFile] = None
    #: Rows of the ranges left out because their label is NaN.
    spillway_dropped: int = 0
    #: LightGBM's ``group`` (rows per cross-section, in order) with ``group=True``, else None.
    spillway_groups: Optional[NDArray[np.int64]] = None

    def construct(self) -> Any:
        out = super().construct()
        f = self.spillway_file
        if f is not None and f._mmap is not None:
            f.release_pages()
        return out


Dataset.__module__ = "spillway.lightgbm"
