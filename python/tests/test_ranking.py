"""Ranking on time-major files: LightGBM `lambdarank` with one query per timestamp learns the
planted signal and beats a constant ranking on a later time split; XGBoost's DataIter passes
whole cross-sections with their qid."""
import numpy as np
import pytest

import spillway
from spillway.lightgbm import quantile_grades


def split(f):
    """Before and after the timestamp at 70% of the index: one range each."""
    ts = f.timestamps
    return f.split_by_time(int(ts.times[int(len(ts) * 0.7)]))


def holdout(f, ranges):
    """Features, target and query sizes of the rows of ``ranges`` with a target."""
    X, y = f.take(ranges, copy=True)
    q = f.qid(ranges)
    keep = ~np.isnan(y)
    X, y, q = X[keep], y[keep], q[keep]
    sizes = np.diff(np.flatnonzero(np.diff(np.concatenate([[-1], q, [-2]])) != 0))
    return X, y, sizes


def rank_within(v, sizes):
    """Each value's rank within its group (ties in order)."""
    ids = np.repeat(np.arange(len(sizes)), sizes)
    order = np.lexsort((v, ids))
    starts = np.repeat(np.concatenate([[0], np.cumsum(sizes)[:-1]]), sizes)
    r = np.empty(len(v), dtype=np.float64)
    r[order] = np.arange(len(v)) - starts
    return r


def mean_rank_ic(pred, y, sizes):
    """Mean over queries of the Spearman correlation of predictions and targets."""
    rp, ry = rank_within(pred, sizes), rank_within(y, sizes)
    ics, at = [], 0
    for n in sizes:
        a, b, p = rp[at:at + n], ry[at:at + n], pred[at:at + n]
        at += n
        if n > 2 and np.ptp(p) > 0:
            ics.append(np.corrcoef(a, b)[0, 1])
        elif n > 2:
            ics.append(0.0)  # a constant prediction ranks nothing (its ties fall in file order)
    return float(np.mean(ics))


def ndcg(pred, grades, sizes, k=5):
    """Mean NDCG@k of ranking each query by ``pred`` (descending, ties in file order)."""
    out, at = [], 0
    for n in sizes:
        g, p = grades[at:at + n], pred[at:at + n]
        at += n
        disc = 1 / np.log2(np.arange(2, min(k, n) + 2))
        dcg = ((2 ** g[np.argsort(-p, kind="stable")][:k] - 1) * disc).sum()
        ideal = ((2 ** np.sort(g)[::-1][:k] - 1) * disc).sum()
        if ideal > 0:
            out.append(dcg / ideal)
    return float(np.mean(out))


def test_quantile_grades():
    y = np.array([5.0, 1.0, 3.0, 0.0, 9.0, 9.0, 2.0], np.float32)
    assert quantile_grades(y, [3, 4], 3).tolist() == [2, 0, 1, 0, 1, 2, 0]
    assert quantile_grades(y[:0], [], 5).tolist() == []


def test_lightgbm_lambdarank_learns_the_cross_sectional_signal(time_signal_spill):
    lgb = pytest.importorskip("lightgbm")
    f = spillway.open(time_signal_spill)
    assert f.order == "time"
    before, after = split(f)
    assert len(before) == len(after) == 1
    train = spillway.lightgbm.dataset(f, ranges=before, group=True, label_quantiles=5,
                                      max_bin=63, verbose=-1)
    groups = train.spillway_groups
    assert groups.sum() == sum(b - a for a, b in before) - train.spillway_dropped
    assert (groups >= 1).all() and len(groups) == len(f.group_sizes(before))
    booster = lgb.train({"objective": "lambdarank", "learning_rate": 0.1, "num_leaves": 15,
                         "min_data_in_leaf": 20, "verbose": -1, "num_threads": 2},
                        train, num_boost_round=40)
    X, y, sizes = holdout(f, after)
    pred = booster.predict(X)
    grades = quantile_grades(y, sizes, 5)
    constant = np.zeros(len(y))
    ic, ic0 = mean_rank_ic(pred, y, sizes), mean_rank_ic(constant, y, sizes)
    model_ndcg, constant_ndcg = ndcg(pred, grades, sizes), ndcg(constant, grades, sizes)
    assert ic > 0.3 and ic0 == 0.0, (ic, ic0)
    assert model_ndcg > constant_ndcg + 0.1, (model_ndcg, constant_ndcg)


def test_lightgbm_groups_need_a_time_major_file(signal_spill):
    pytest.importorskip("lightgbm")
    with pytest.raises(spillway.SpillError, match="time-major"):
        spillway.lightgbm.dataset(signal_spill, group=True)


def test_xgboost_qid_passes_whole_cross_sections(time_signal_spill, signal_spill):
    xgb = pytest.importorskip("xgboost")
    f = spillway.open(time_signal_spill)
    before, after = split(f)
    it = spillway.xgboost.DataIter(f, batch_rows=3000, ranges=before, qid=True)
    dtrain = xgb.QuantileDMatrix(it, max_bin=63)
    # One query per timestamp with a target, in order, whatever cuts the batches made.
    _, _, sizes = holdout(f, before)
    ptr = dtrain.get_uint_info("group_ptr")
    assert ptr.tolist() == np.concatenate([[0], np.cumsum(sizes)]).tolist()
    assert it.dropped == int(np.isnan(f.column("target")[before[0][0]:before[0][1]]).sum())
    booster = xgb.train({"objective": "rank:pairwise", "tree_method": "hist", "max_depth": 4,
                         "eta": 0.1, "nthread": 2, "max_bin": 63}, dtrain, num_boost_round=40)
    X, y, sizes = holdout(f, after)
    assert mean_rank_ic(booster.predict(xgb.DMatrix(X)), y, sizes) > 0.3
    with pytest.raises(spillway.SpillError, match="time-major"):
        spillway.xgboost.DataIter(signal_spill, qid=True)


def test_build_order_time_in_process_is_the_symbol_major_file_permuted(universe, spill_path,
                                                                         tmp_path):
    out = str(tmp_path / "t.spill")
    summary = spillway.build(universe, out, target="target", order="time")
    assert summary["order"] == "time" and summary["io_amplification"] > 2
    assert summary["transpose"]["timestamps"] == len(spillway.open(out).timestamp_ranges)
    s, t = spillway.open(spill_path), spillway.open(out)
    assert t.order == "time" and s.order == "symbol"
    perm = np.lexsort((s.column("symbol"), s.column("ts")))  # stable: by time, then symbol
    for name in s.columns:
        np.testing.assert_array_equal(s.column(name)[perm].view(np.uint8),
                                      t.column(name).view(np.uint8))
    t.verify_time_index()
    assert spillway.verify(out)["ok"]
