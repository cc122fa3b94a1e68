"""The adapters: LightGBM and XGBoost learn a planted signal and beat a constant predictor on a
later time split; the PyTorch dataset shards blocks across workers (skipped without torch)."""
import pickle

import numpy as np
import pytest

import spillway


def split(f):
    ts = f.column(f.time_column)
    cut = int(np.quantile(ts, 0.7))
    return f.split_by_time(cut)


def holdout(f, ranges):
    X, y = f.take(ranges, copy=True)
    keep = ~np.isnan(y)
    return X[keep], y[keep]


def nan_targets(f, ranges):
    y = f.column("target")
    return int(sum(np.isnan(y[a:b]).sum() for a, b in ranges))


def test_nan_labels_are_dropped_and_counted(signal_spill):
    pytest.importorskip("lightgbm")
    pytest.importorskip("xgboost")
    f = spillway.open(signal_spill)
    ds = spillway.lightgbm.dataset(f, verbose=-1).construct()
    assert ds.spillway_dropped == nan_targets(f, [(0, f.nrows)]) == 16  # each symbol's last row
    assert ds.num_data() == f.nrows - 16
    it = spillway.xgboost.DataIter(f, batch_rows=7000)
    import xgboost as xgb
    assert xgb.QuantileDMatrix(it).num_row() == f.nrows - 16 and it.dropped == 16


def mapped_rss_kib(path):
    """Resident KiB of the mappings of ``path`` in this process (/proc/self/smaps)."""
    import re
    rss, cur = 0, False
    with open("/proc/self/smaps") as fh:
        for line in fh:
            parts = line.split()
            if re.match(r"^[0-9a-f]+-[0-9a-f]+$", parts[0]):
                cur = parts[-1] == path
            elif cur and parts[0] == "Rss:":
                rss += int(parts[1])
    return rss


def test_lightgbm_releases_the_file_pages_once_constructed(signal_spill):
    pytest.importorskip("lightgbm")
    f = spillway.open(signal_spill)
    ds = spillway.lightgbm.dataset(f, verbose=-1)
    np.asarray(f.features()).sum()  # every feature page resident
    assert mapped_rss_kib(f.path) > 1024
    ds.construct()
    assert mapped_rss_kib(f.path) < 256
    assert ds.num_data() > 0


def mse(a, b):
    return float(np.mean((np.asarray(a, np.float64) - b) ** 2))


def test_lightgbm_learns_the_signal(signal_spill):
    lgb = pytest.importorskip("lightgbm")
    f = spillway.open(signal_spill)
    before, after = split(f)
    train = spillway.lightgbm.dataset(f, ranges=before, max_bin=63, verbose=-1)
    assert train.spillway_dropped == nan_targets(f, before)
    booster = lgb.train({"objective": "regression", "learning_rate": 0.1, "num_leaves": 15,
                         "verbose": -1, "num_threads": 2}, train, num_boost_round=60)
    X, y = holdout(f, after)
    _, ytr = holdout(f, before)
    model, constant = mse(booster.predict(X), y), mse(np.full_like(y, ytr.mean()), y)
    assert model < 0.75 * constant, (model, constant)
    assert train.num_data() == sum(b - a for a, b in before) - train.spillway_dropped


@pytest.mark.parametrize("kind", ["QuantileDMatrix", "ExtMemQuantileDMatrix"])
def test_xgboost_learns_the_signal(signal_spill, tmp_path, kind):
    xgb = pytest.importorskip("xgboost")
    f = spillway.open(signal_spill)
    before, after = split(f)
    cache = str(tmp_path / "cache") if kind.startswith("ExtMem") else None
    it = spillway.xgboost.DataIter(f, batch_rows=10_000, ranges=before, cache_prefix=cache)
    assert isinstance(it, xgb.DataIter)
    dtrain = getattr(xgb, kind)(it, max_bin=63)
    assert it.dropped == nan_targets(f, before)
    assert dtrain.num_row() == sum(b - a for a, b in before) - it.dropped
    booster = xgb.train({"tree_method": "hist", "max_depth": 4, "eta": 0.1, "nthread": 2,
                         "max_bin": 63},
                        dtrain, num_boost_round=60)
    X, y = holdout(f, after)
    _, ytr = holdout(f, before)
    model = mse(booster.predict(xgb.DMatrix(X)), y)
    constant = mse(np.full_like(y, ytr.mean()), y)
    assert model < 0.75 * constant, (model, constant)


def test_adapters_import_their_framework_lazily():
    import subprocess
    import sys
    code = ("import sys, spillway, spillway.torch, spillway.xgboost, spillway.lightgbm; "
            "print(sorted(m for m in ('torch', 'xgboost', 'lightgbm') if m in sys.modules))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert r.stdout.strip() == "[]"
