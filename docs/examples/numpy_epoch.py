"""Train a linear model with numpy alone: one epoch of block-shuffled batches accumulates the
normal equations, and the rows after a time cut score it.

    python docs/examples/numpy_epoch.py [SPILL]
"""
import sys

import numpy as np

import spillway


def with_intercept(X: np.ndarray) -> np.ndarray:
    return np.hstack([X, np.ones((len(X), 1), dtype=X.dtype)]).astype(np.float64)


def main(path: str) -> None:
    f = spillway.open(path)
    cut = int(np.quantile(f.column("ts"), 0.8))
    train, valid = f.split_by_time(cut)
    k = len(f.columns_with_role("feature")) + 1
    xtx, xty = np.zeros((k, k)), np.zeros(k)
    for X, y in f.batches(65536, ranges=train, shuffle="blocks", block_rows=16384, seed=0):
        assert y is not None  # None only in a file built without a target
        keep = np.isfinite(y) & np.isfinite(X).all(axis=1)  # NaN marks a null
        A = with_intercept(X[keep])
        xtx += A.T @ A
        xty += A.T @ y[keep]
    w = np.linalg.lstsq(xtx, xty, rcond=None)[0]
    sse = sst = 0.0
    ys = [y[np.isfinite(y)] for _, y in f.batches(65536, ranges=valid) if y is not None]
    mean = float(np.concatenate(ys).mean())
    for X, y in f.batches(65536, ranges=valid):
        assert y is not None
        keep = np.isfinite(y) & np.isfinite(X).all(axis=1)
        pred = with_intercept(X[keep]) @ w
        sse += float(((y[keep] - pred) ** 2).sum())
        sst += float(((y[keep] - mean) ** 2).sum())
    print(f"validation R^2: {1 - sse / sst:.3f}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "data/train.spill")
