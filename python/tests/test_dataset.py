"""Sharded datasets without Ray: count / plan_cs / build(shard=...) / write_manifest through the
package, open_dataset's row indexing, batches, time API and Arrow view against the
single-machine file, refusals (a missing or replaced shard), and the `spillway` child of a
spillway.ray task dying with its process (PR_SET_PDEATHSIG)."""
import os
import shutil

import numpy as np
import pytest

import spillway
from conftest import child_of, gone, make_universe

FILTERS = dict(target="target", drop_null_target=True, min_cs=6, max_cs_samples=5, seed=11)


@pytest.fixture(scope="module")
def sharded(tmp_path_factory):
    d = tmp_path_factory.mktemp("sharded")
    u = make_universe(str(d / "u"), symbols=9, rows=600, features=3, seed=4)
    single = str(d / "single.spill")
    spillway.build(u, single, **FILTERS)
    n = 3
    counts = [str(d / f"c{i}") for i in range(n)]
    count_opts = {k: v for k, v in FILTERS.items() if k != "min_cs"}
    for i, c in enumerate(counts):
        s = spillway.dataset.count(u, c, shard=f"{i}/{n}", **count_opts)
        assert s["symbols"][1] > s["symbols"][0]
    plan = str(d / "cs.plan")
    p = spillway.dataset.plan_cs(counts, plan, min_cs=6, max_cs_samples=5, seed=11)
    assert p["inputs"] == 3 and p["kept"] <= p["distinct"]
    shards = [str(d / f"s{i}.spill") for i in range(n)]
    for i, s in enumerate(shards):
        spillway.build(u, s, shard=f"{i}/{n}", cs_plan=plan, **FILTERS)
    manifest = str(d / "dataset.json")
    spillway.dataset.write_manifest(shards, manifest, cs_plan=plan)
    return single, manifest, d


def test_the_dataset_equals_the_single_machine_file(sharded):
    single, manifest, _ = sharded
    a, ds = spillway.open(single), spillway.open_dataset(manifest)
    assert ds.nrows == a.nrows > 0 and ds.columns == a.columns
    for c in a.columns:
        if c == "symbol":
            assert list(ds.symbol_names()) == list(a.symbol_names())
        else:
            np.testing.assert_array_equal(ds.column(c), a.column(c))
    assert sum(len(v) for v in ds.column_chunks("target")) == a.nrows
    row = a.nrows // 2
    assert ds[row]["f000"] == a.column("f000")[row]
    np.testing.assert_array_equal(ds[row - 5:row + 5]["ts"], a.column("ts")[row - 5:row + 5])
    cut = int(np.median(a.column("ts")))
    for x, y in zip(ds.split_by_time(cut), a.split_by_time(cut)):
        assert ds.take(x)[0].shape == a.take(y, copy=True)[0].shape
        np.testing.assert_array_equal(ds.take(x)[1], a.take(y, copy=True)[1])
    for kw in (dict(), dict(shuffle="blocks", block_rows=97, seed=3)):
        got = list(ds.batches(250, with_time=True, **kw))
        want = list(a.batches(250, with_time=True, **kw))
        assert len(got) == len(want)
        for g, w in zip(got, want):
            for x, y in zip(g, w):
                np.testing.assert_array_equal(x, y)
    t = ds.to_arrow()
    assert t.num_rows == a.nrows and t.column_names == a.columns
    assert t.column("symbol").to_pylist() == a.to_arrow().column("symbol").to_pylist()
    assert spillway.dataset.verify_dataset(manifest)["chunks"] > 0
    import pickle
    assert pickle.loads(pickle.dumps(ds)).nrows == ds.nrows


def test_dataset_loaders_equal_the_single_machine_file(sharded):
    """Ranks, evenness, resume, dtypes, columns and take_rows across shards give what the
    single-machine file gives; a state of one is refused by the other (another fingerprint)."""
    single, manifest, _ = sharded
    a, ds = spillway.open(single), spillway.open_dataset(manifest)
    kw = dict(shuffle="blocks", block_rows=97, seed=3, epoch=2, columns=["f002", "f000"],
              dtype="float16", world_size=3, pad=True)
    for rank in range(3):
        got, want = ds.batches(64, rank=rank, **kw), a.batches(64, rank=rank, **kw)
        assert len(got) == len(want) > 0 and got.padded == want.padded
        for g, w in zip(got, want):
            assert g[0].dtype == np.float16
            for x, y in zip(g, w):
                np.testing.assert_array_equal(x, y)
    it = ds.batches(64, rank=1, **kw)
    for _ in range(3):
        next(it)
    state = it.state_dict()
    resumed = [b[0] for b in ds.batches(64, rank=1, state=state, **{**kw, "epoch": None})]
    assert [x.tolist() for x in resumed] == [b[0].tolist() for b in it]
    with pytest.raises(ValueError, match="another file or another selection"):
        a.batches(64, rank=1, state=state, **kw)
    idx = np.random.default_rng(0).integers(0, a.nrows, 500)
    for x, y in zip(ds.take_rows(idx, columns=["f001", "f000"]),
                    a.take_rows(idx, columns=["f001", "f000"])):
        np.testing.assert_array_equal(x, y)
    out = np.empty((64, 2), np.float16)
    for (x, _), (w, _) in zip(ds.batches(64, out=out, **kw), a.batches(64, **kw)):
        assert np.shares_memory(x, out)
        np.testing.assert_array_equal(x, w)


def test_a_missing_or_replaced_shard_is_refused(sharded, tmp_path):
    _, manifest, d = sharded
    copy = tmp_path / "copy"
    shutil.copytree(d, copy, ignore=shutil.ignore_patterns("u"))
    m = str(copy / "dataset.json")
    os.replace(str(copy / "s1.spill"), str(copy / "s1.old"))
    with pytest.raises(spillway.SpillError, match="shard missing"):
        spillway.open_dataset(m)
    shutil.copy(str(copy / "s0.spill"), str(copy / "s1.spill"))
    with pytest.raises(spillway.SpillError, match="not the one the manifest lists"):
        spillway.open_dataset(m)
    with pytest.raises(spillway.DataError):
        spillway.dataset.verify_dataset(m)
    with pytest.raises(spillway.DataError, match="cross-section plan crc32:.*the dataset's is"):
        spillway.dataset.write_manifest([str(copy / "s0.spill")], str(tmp_path / "m.json"))
    with pytest.raises(spillway.DataError, match="a shard is missing"):
        spillway.dataset.write_manifest([str(copy / "s0.spill")], str(tmp_path / "m.json"),
                                        cs_plan=str(copy / "cs.plan"))


def test_mismatched_count_options_are_a_usage_error(sharded, tmp_path):
    _, _, d = sharded
    other = str(tmp_path / "c")
    spillway.dataset.count(str(d / "u"), other, shard="0/3", target="target",
                           drop_null_target=True, max_cs_samples=5, seed=12)
    with pytest.raises(spillway.UsageError, match="--seed"):
        spillway.dataset.plan_cs([other, str(d / "c1"), str(d / "c2")], str(tmp_path / "p"),
                                 min_cs=6, max_cs_samples=5, seed=11)


def test_a_spawned_spillway_dies_with_the_process_that_ran_it():
    """spillway.ray's subprocess mode without Ray: the process running a task is SIGKILLed, and
    the program it spawned (a sleep standing in for `spillway build`) dies with it."""
    import subprocess
    import sys
    code = "import spillway.ray as r\nr._run('/bin/sleep', ['60'], 'x', 'sleep')\n"
    parent = subprocess.Popen([sys.executable, "-c", code])
    child = child_of(parent.pid)
    assert not gone(child, wait=0.2), "the child runs while its parent does"
    parent.kill()
    parent.wait()
    if not gone(child, wait=5):
        os.kill(child, 9)
        pytest.fail("the spawned program outlived the process that ran it")
