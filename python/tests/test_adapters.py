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


def mse(a, b):
    return float(np.mean((np.asarray(a, np.float64) - b) ** 2))


def test_lightgbm_learns_the_signal(signal_spill):
    lgb = pytest.importorskip("lightgbm")
    f = spillway.open(signal_spill)
    before, after = split(f)
    train = spillway.lightgbm.dataset(f, ranges=before, max_bin=63, verbose=-1)
    assert train.spillway_dropped > 0  # the last row of every symbol has a null target
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
    it = spillway.xgboost.DataIter(f, batch_rows=10_000, ranges=before,
                                   cache_prefix=str(tmp_path / "cache"))
    assert isinstance(it, xgb.DataIter)
    dtrain = getattr(xgb, kind)(it, max_bin=63)
    assert it.dropped > 0
    assert dtrain.num_row() == sum(b - a for a, b in before) - it.dropped
    booster = xgb.train({"tree_method": "hist", "max_depth": 4, "eta": 0.1, "nthread": 2},
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


# ---------------------------------------------------------------------------------- PyTorch
torch = pytest.importorskip("torch", reason="PyTorch is not installed here (its wheel is large): "
                            "scripts/test-torch.sh installs it in target/venv-torch and runs these")


def rows_of(batches):
    return np.concatenate([b[0].numpy() for b in batches]) if batches else np.empty((0, 8))


def test_torch_dataset_single_process(signal_spill):
    f = spillway.open(signal_spill)
    before, _ = split(f)
    ds = spillway.torch.Dataset(signal_spill, batch_rows=1000, ranges=before, shuffle="blocks",
                                block_rows=3000, seed=4)
    assert isinstance(ds, torch.utils.data.IterableDataset)
    got = list(ds)
    X, y = got[0]
    assert X.dtype == torch.float32 and X.shape == (1000, 8) and y.shape == (1000,)
    X.add_(1.0)  # writable memory: in-place ops are safe
    want = np.concatenate([b[0] for b in f.batches(1000, ranges=before, shuffle="blocks",
                                                   block_rows=3000, seed=4)])
    np.testing.assert_array_equal(rows_of(got)[1000:], want[1000:])
    ds.set_epoch(1)
    assert not np.array_equal(rows_of(list(ds)), rows_of(got))


@pytest.mark.parametrize("context", ["spawn", "fork"])
def test_torch_dataset_shards_across_workers(signal_spill, context):
    f = spillway.open(signal_spill)
    ds = spillway.torch.Dataset(signal_spill, batch_rows=500, shuffle="blocks", block_rows=2000,
                                seed=1, with_time=True, with_symbols=True)
    pickle.loads(pickle.dumps(ds))
    loader = torch.utils.data.DataLoader(ds, batch_size=None, num_workers=2,
                                         multiprocessing_context=context)
    got = list(loader)
    X = rows_of(got)
    assert X.shape[0] == f.nrows  # every row once, across the two workers
    t = np.concatenate([b[2].numpy() for b in got])
    s = np.concatenate([b[3].numpy() for b in got])
    key = np.lexsort((t, s))
    order = np.lexsort((f.column("ts"), f.symbol_codes()))
    np.testing.assert_array_equal(X[key], f.features()[order])
