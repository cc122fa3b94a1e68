"""spillway.ray on a local Ray cluster (one session-scoped `ray.init(num_cpus=2)`): the sharded
dataset equals the single-machine build row for row for 1, 2 and 5 shards, a shard killed
mid-build (SIGKILL of its worker; in subprocess mode its `spillway` child dies with it) is retried
and the dataset comes out identical, a rerun skips the shards in place, `python -m spillway.ray`
builds on a running cluster, read_spill and streaming_split yield every row once, and XGBoost and
LightGBM trainers fit on it (with torch installed: get_dataset_shard + iter_torch_batches in a
TorchTrainer, run by scripts/test-torch.sh).

Ray is a test requirement (scripts/requirements-test.txt pins the supported version); without it
these tests are skipped with the reason, unless SPILLWAY_REQUIRE_RAY is set (scripts/test.sh sets
it), which makes a missing Ray an error."""
import os

import numpy as np
import pytest

import spillway
from conftest import cli, gone, make_universe, moto_bucket

try:
    import ray
    import ray.data  # noqa: F401 - ray[data]: pyarrow and Ray Data's own dependencies
    import ray.train  # noqa: F401
except ImportError as e:
    why = (f"Ray is not installed ({e}): these tests need ray[data,train]==2.60.0 "
           "(pip install 'spillway[ray]', or -r scripts/requirements-test.txt)")
    if os.environ.get("SPILLWAY_REQUIRE_RAY"):  # scripts/test.sh: a missing Ray is a failure
        raise ImportError(f"SPILLWAY_REQUIRE_RAY is set but {why}") from e
    pytest.skip(why, allow_module_level=True)
import spillway.ray as sray  # noqa: E402

FILTERS = dict(target="target", drop_null_target=True, min_cs=7, max_cs_samples=4, seed=5,
               memory_budget="64MiB")


@pytest.fixture(scope="session")
def cluster():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             configure_logging=False)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def universe(tmp_path_factory):
    d = tmp_path_factory.mktemp("ray")
    u = make_universe(str(d / "u"), symbols=10, rows=800, features=4, signal=0.4, seed=9)
    single = str(d / "single.spill")
    spillway.build(u, single, **FILTERS)
    return u, single, d


def killing_the_first_attempt(shard, marker):
    """A stand-in for ``spillway.ray._build`` (the shard task) whose first attempt at shard
    ``shard`` SIGKILLs its own Ray worker mid-build, once the shard's temporary file exists,
    leaving ``marker.killed`` behind as the proof. In subprocess mode that file holds the pid of
    the worker's ``spillway`` child, stopped first so that it cannot finish on its own: it must
    die with its worker. Every other call is the real task. The chaos is the test's: the product
    has no hook for it. Made here, not at module level, so cloudpickle sends it by value
    (workers cannot import this test module)."""

    def kill_when_writing(out, scratch):
        import re
        import signal
        import tempfile
        import time
        # The writer's temporary file names the writer's pid: `.<name>.<pid>-<n>.spill-tmp`
        # beside a file on disk, `.spillway-<pid>-<name>.<random>.tmp` in the scratch directory
        # of a shard bound for a bucket.
        name = out.rsplit("/", 1)[-1]
        if "://" in out:
            where = scratch or tempfile.gettempdir()
            temp = re.compile(rf"\.spillway-(\d+)-{re.escape(name)}\.")
        else:
            where = os.path.dirname(out)
            temp = re.compile(rf"\.{re.escape(name)}\.(\d+)-\d+\.spill-tmp$")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and ("://" in out or not os.path.exists(out)):
            names = os.listdir(where) if os.path.isdir(where) else []
            found = next(filter(None, map(temp.match, names)), None)
            if found:
                writer = int(found.group(1))
                child = writer if writer != os.getpid() else None
                if child is not None:  # stopped, it can only end by a signal: PR_SET_PDEATHSIG's
                    os.kill(child, signal.SIGSTOP)
                with open(marker + ".killed", "w") as fh:
                    fh.write(str(child or ""))
                os.kill(os.getpid(), signal.SIGKILL)
            time.sleep(0.001)

    def build(input, out, i, n, options, *rest):
        import threading
        if i == shard and not os.path.exists(marker):
            open(marker, "w").close()
            threading.Thread(target=kill_when_writing, args=(out, options.get("scratch")),
                             daemon=True).start()
        # The real task: cloudpickle sends the module `sray` by reference, so a worker imports
        # spillway.ray as it loads this function (as it would the real one) and its own
        # `_build` is not patched.
        return sray._build(input, out, i, n, options, *rest)

    return build


def assert_equal(single, manifest, **open_kw):
    a, ds = spillway.open(single), spillway.open_dataset(manifest, **open_kw)
    assert ds.nrows == a.nrows > 0
    for c in a.columns:
        if c == "symbol":
            assert list(ds.symbol_names()) == list(a.symbol_names())
        else:
            np.testing.assert_array_equal(ds.column(c), a.column(c), err_msg=c)


@pytest.mark.parametrize("shards", [1, 2, 5])
def test_sharded_equals_single_machine(cluster, universe, shards):
    u, single, d = universe
    m = sray.build(u, str(d / f"out{shards}"), shards=shards, fanout=2, **FILTERS)
    assert_equal(single, m)
    assert spillway.dataset.verify_dataset(m)["shards"] == shards


@pytest.mark.parametrize("mode", ["inprocess", "subprocess"])
def test_a_killed_shard_is_retried_and_a_rerun_skips(cluster, universe, mode, monkeypatch):
    u, single, d = universe
    monkeypatch.setenv("SPILLWAY_BIN", cli())
    out, marker = d / f"killed-{mode}", str(d / f"killed-{mode}.marker")
    with monkeypatch.context() as patched:
        patched.setattr(sray, "_build", killing_the_first_attempt(1, marker))
        m = sray.build(u, str(out), shards=3, mode=mode, **FILTERS)
    assert os.path.exists(marker + ".killed"), "shard 1's first attempt was killed mid-build"
    if mode == "subprocess":  # its stopped spillway child was killed with it (by Ray's raylet,
        # which kills a dead worker's children, or by PR_SET_PDEATHSIG: test_dataset.py)
        with open(marker + ".killed") as fh:
            child = int(fh.read())
        if not gone(child):
            os.kill(child, 9)
            pytest.fail("the spillway child outlived its worker")
    assert_equal(single, m)
    assert not [p for p in os.listdir(out) if p.startswith(".")], "no temporary left"
    mtimes = {p: os.stat(out / p).st_mtime_ns for p in os.listdir(out) if p.endswith(".spill")}
    last = next(p for p in mtimes if p.startswith("shard-00002-of-00003-"))
    os.remove(out / last)
    generation = open(m).read()
    assert sray.build(u, str(out), shards=3, mode=mode, **FILTERS) == m
    assert open(m).read() == generation, "the same dataset: the manifest is left as it is"
    for p, t in mtimes.items():
        if p != last:
            assert os.stat(out / p).st_mtime_ns == t, f"{p} was rebuilt"
    assert_equal(single, m)


def test_python_m_spillway_ray_builds_on_a_running_cluster(cluster, universe):
    import subprocess
    import sys
    u, single, d = universe
    argv = [sys.executable, "-m", "spillway.ray", "--address",
            ray.get_runtime_context().gcs_address, "--input", u, "--output-dir", str(d / "cli"),
            "--shards", "3", "--fanout", "2", "--mode", "subprocess", "--spillway-bin", cli()]
    for k, v in FILTERS.items():
        argv += ["--" + k.replace("_", "-")] + ([] if v is True else [str(v)])
    r = subprocess.run(argv, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == str(d / "cli" / "dataset.json")
    assert "3 shard builds" in r.stderr and "1 tree levels" in r.stderr, r.stderr
    assert_equal(single, r.stdout.strip())


def test_python_m_spillway_ray_builds_into_a_bucket(cluster, universe, s3, tmp_path):
    """``--output-dir s3://…``: the endpoint as a --storage-option, the keys in
    ``SPILLWAY_STORAGE_OPTIONS`` (never on a command line: the cluster's workers do not have the
    driver's environment, so they travel as the tasks' storage_options); ``--replace`` over an
    existing dataset."""
    import subprocess
    import sys
    u, single, _ = universe
    o = s3["options"]
    import json
    keys = {k: o[k] for k in ("aws_access_key_id", "aws_secret_access_key", "aws_region")}
    env = {**os.environ, "SPILLWAY_STORAGE_OPTIONS": json.dumps(keys)}
    argv = [sys.executable, "-m", "spillway.ray", "--address",
            ray.get_runtime_context().gcs_address, "--input", u, "--output-dir",
            "s3://ray-out/cli", "--shards", "2", "--scratch", str(tmp_path / "scratch"),
            "--storage-option", f"aws_endpoint_url={o['aws_endpoint_url']}",
            "--storage-option", "aws_allow_http=true", "--quiet"]
    for k, v in FILTERS.items():
        argv += ["--" + k.replace("_", "-")] + ([] if v is True else [str(v)])
    r = subprocess.run(argv, capture_output=True, text=True, timeout=300, env=env)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "s3://ray-out/cli/dataset.json"
    assert o["aws_secret_access_key"] not in " ".join(argv)
    ds = spillway.open_dataset(r.stdout.strip(), cache_dir=str(tmp_path / "c"),
                               storage_options=o)
    np.testing.assert_array_equal(ds.column("target"), spillway.open(single).column("target"))
    # Another dataset (other options) over it: refused, then replaced with --replace.
    other = [a if a != "5" else "6" for a in argv]  # --seed 6
    r = subprocess.run(other, capture_output=True, text=True, timeout=300, env=env)
    assert r.returncode != 0 and "--replace" in r.stderr, r.stderr
    listed = s3["client"].list_objects_v2(Bucket="ray-out", Prefix="cli/")["Contents"]
    assert len({x["Key"].split("/")[2] for x in listed if "/cs/" in x["Key"]}) == 1, \
        "refused before any task: no counts of the other dataset"
    r = subprocess.run(other + ["--replace"], capture_output=True, text=True, timeout=300,
                       env=env)
    assert r.returncode == 0, r.stderr
    keys = [x["Key"] for x in s3["client"].list_objects_v2(Bucket="ray-out",
                                                            Prefix="cli/")["Contents"]]
    assert "cli/dataset.g1.json" in keys, keys


def test_a_bad_option_fails_in_the_driver_before_any_task(cluster, universe):
    u, _, d = universe
    with pytest.raises(spillway.UsageError, match="max-cs-samples"):
        sray.build(u, str(d / "bad"), shards=2, **{**FILTERS, "max_cs_samples": 0})
    assert os.listdir(d / "bad") == [], "no task ran"


@pytest.fixture(scope="module")
def manifest(cluster, universe):
    u, _, d = universe
    return sray.build(u, str(d / "read"), shards=3, **FILTERS)


@pytest.fixture(scope="module")
def s3():
    """moto's S3 server on loopback with an empty bucket ``ray-out``."""
    with moto_bucket("ray-out", "ray-secret-value") as (client, options):
        yield {"client": client, "options": options}


@pytest.fixture(scope="module")
def bucket_manifest(cluster, universe, s3, tmp_path_factory):
    """A 3-shard dataset built on Ray into the bucket (no shared filesystem for its output)."""
    u, _, _ = universe
    m = sray.build(u, "s3://ray-out/read", shards=3, storage_options=s3["options"], **FILTERS)
    return m, {"storage_options": s3["options"],
               "cache_dir": str(tmp_path_factory.mktemp("cache"))}


@pytest.fixture(params=["disk", "bucket"])
def source(request):
    """``(manifest, read_spill keywords)`` of the dataset on disk, then in a bucket."""
    if request.param == "disk":
        return request.getfixturevalue("manifest"), {}
    return request.getfixturevalue("bucket_manifest")


@pytest.mark.parametrize("mode", ["inprocess", "subprocess"])
def test_a_dataset_built_to_a_bucket_equals_the_single_machine_build(cluster, universe, s3,
                                                                     mode, tmp_path,
                                                                     monkeypatch):
    """Shards built in each task's scratch directory and uploaded, count and plan files in the
    bucket, the manifest committed last; a shard task SIGKILLed mid-build is retried; a rerun
    rebuilds nothing and leaves the manifest as it is."""
    u, single, _ = universe
    monkeypatch.setenv("SPILLWAY_BIN", cli())
    marker = str(tmp_path / "kill")
    out = f"s3://ray-out/built-{mode}"
    with monkeypatch.context() as patched:
        patched.setattr(sray, "_build", killing_the_first_attempt(1, marker))
        m = sray.build(u, out, shards=3, mode=mode, storage_options=s3["options"],
                       scratch=str(tmp_path / "scratch"), **FILTERS)
    assert m == f"{out}/dataset.json"
    assert os.path.exists(marker + ".killed"), "shard 1's first attempt was killed mid-build"
    assert_equal(single, m, cache_dir=str(tmp_path / "cache"), storage_options=s3["options"])
    client = s3["client"]
    keys = {o["Key"]: o["LastModified"] for o in
            client.list_objects_v2(Bucket="ray-out", Prefix=f"built-{mode}/")["Contents"]}
    assert any(k.endswith("/cs.plan") for k in keys), keys
    assert len([k for k in keys if ".spill" in k]) == 3
    assert not client.list_multipart_uploads(Bucket="ray-out").get("Uploads")
    assert not os.listdir(tmp_path / "scratch"), "scratch copies removed"
    assert "ray-secret-value" not in client.get_object(
        Bucket="ray-out", Key=f"built-{mode}/dataset.json")["Body"].read().decode()
    assert sray.build(u, out, shards=3, mode=mode, storage_options=s3["options"],
                      scratch=str(tmp_path / "scratch"), **FILTERS) == m
    again = {o["Key"]: o["LastModified"] for o in
             client.list_objects_v2(Bucket="ray-out", Prefix=f"built-{mode}/")["Contents"]}
    for k in keys:
        if k.endswith(".spill") or k.endswith("dataset.json"):
            assert again[k] == keys[k], f"{k} was written again"
    assert spillway.dataset.verify_dataset(m, storage_options=s3["options"])["shards"] == 3


def test_read_spill_yields_every_row_once(manifest, source):
    ds = spillway.open_dataset(manifest)
    rd = sray.read_spill(source[0], rows_per_task=700, batch_rows=256, **source[1])
    rows = rd.take_all()
    assert len(rows) == ds.nrows
    got = sorted((r["symbol"], r["ts"]) for r in rows)
    names = np.asarray(ds.symbols)[ds.column("symbol")]
    want = sorted(zip(names.tolist(), ds.column("ts").tolist()))
    assert got == want
    assert {"ts", "symbol", "target", "f000"} <= set(rd.schema().names)


def test_iter_torch_batches_in_a_torch_trainer(manifest, source, tmp_path):
    pytest.importorskip("torch", reason="torch is not installed: get_dataset_shard + "
                        "iter_torch_batches not tested here (scripts/test-torch.sh tests them)")
    from ray.train import RunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer

    def loop(config):
        import ray.train
        import torch
        rows = 0
        for b in ray.train.get_dataset_shard("train").iter_torch_batches(batch_size=500):
            assert b["f000"].dtype == torch.float32 and b["target"].dtype == torch.float32
            rows += len(b["target"])
        return {"rows": rows}

    train = sray.read_spill(source[0], columns=["f000", "target"], **source[1])
    trainer = TorchTrainer(loop, datasets={"train": train},
                           scaling_config=ScalingConfig(num_workers=1,
                                                        resources_per_worker={"CPU": 1}),
                           run_config=RunConfig(storage_path=str(tmp_path), name="torch"))
    assert trainer.fit().return_value["rows"] == spillway.open_dataset(manifest).nrows


def test_streaming_split_yields_every_row_once(manifest):
    import threading
    ds = spillway.open_dataset(manifest)
    splits = sray.read_spill(manifest, columns=["ts", "symbol"], rows_per_task=500) \
        .streaming_split(2, equal=False)
    seen = [[], []]

    def consume(j):  # the splits must be read concurrently
        for b in splits[j].iter_batches(batch_size=300, batch_format="pyarrow"):
            seen[j] += zip(b.column("symbol").to_pylist(), b.column("ts").to_pylist())

    threads = [threading.Thread(target=consume, args=(j,)) for j in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    names = np.asarray(ds.symbols)[ds.column("symbol")]
    assert sorted(seen[0] + seen[1]) == sorted(zip(names.tolist(), ds.column("ts").tolist()))


def train_loop():
    """A Ray Train loop: this worker's shard of the dataset through get_dataset_shard, one model
    of ``config["framework"]``, its in-sample R^2 returned. Made here, not at module level, so
    cloudpickle sends it by value (workers cannot import this test module)."""

    def fit(config):
        import ray.train
        shard = ray.train.get_dataset_shard("train")
        parts = list(shard.iter_batches(batch_size=4096, batch_format="numpy"))
        X = np.concatenate([np.column_stack([p[c] for c in config["features"]]) for p in parts])
        y = np.concatenate([p["target"] for p in parts])
        if config["framework"] == "xgboost":
            import xgboost as xgb
            booster = xgb.train({"max_depth": 3, "eta": 0.3, "nthread": 1},
                                xgb.DMatrix(X, label=y), 20)
            pred = booster.predict(xgb.DMatrix(X))
        else:
            import lightgbm as lgb
            params = {"objective": "regression", "num_leaves": 15, "learning_rate": 0.3,
                      "num_threads": 1, "verbose": -1}
            booster = lgb.train(params, lgb.Dataset(X, label=y), 20)
            pred = booster.predict(X)
        r2 = 1 - np.mean((pred - y) ** 2) / np.var(y)
        # Ray Train 2.60 keeps metrics only with a checkpoint; the loop's return value is kept.
        return {"rows": int(len(y)), "r2": float(r2)}

    return fit


@pytest.mark.parametrize("framework", ["xgboost", "lightgbm"])
def test_a_trainer_fits(manifest, source, tmp_path, framework):
    pytest.importorskip(framework, reason=f"{framework} is not installed")
    from ray.train import RunConfig, ScalingConfig
    if framework == "xgboost":
        from ray.train.xgboost import XGBoostTrainer as Trainer
    else:
        from ray.train.lightgbm import LightGBMTrainer as Trainer

    config = {"framework": framework, "features": ["f000", "f001", "f002", "f003"]}
    trainer = Trainer(train_loop(), train_loop_config=config,
                      datasets={"train": sray.read_spill(source[0], **source[1])},
                      scaling_config=ScalingConfig(num_workers=1,
                                                   resources_per_worker={"CPU": 1}),
                      run_config=RunConfig(storage_path=str(tmp_path), name="fit"))
    fitted = trainer.fit().return_value
    assert fitted["rows"] == spillway.open_dataset(manifest).nrows
    assert fitted["r2"] > 0.2, fitted


@pytest.mark.parametrize("mode", ["inprocess", "subprocess"])
def test_a_universe_in_a_bucket_builds_on_ray(cluster, universe, s3, mode):
    """No shared filesystem for the input: every task reads ``s3://`` (moto on loopback), the
    credentials in ``storage_options`` (in subprocess mode, the children's environment)."""
    u, single, d = universe
    for name in os.listdir(u):
        s3["client"].upload_file(os.path.join(u, name), "ray-out", f"u/{name}")
    m = sray.build("s3://ray-out/u/", str(d / f"bucket-{mode}"), shards=2, fanout=2,
                   mode=mode, spillway_bin=cli() if mode == "subprocess" else None,
                   storage_options=s3["options"], **FILTERS)
    assert_equal(single, m)
    assert "ray-secret-value" not in open(m).read()



@pytest.fixture(scope="module")
def bad_universe(tmp_path_factory):
    """9 symbols plus ``S004B``, whose own column ``zz`` fails mid-decode (test_skip.py's)."""
    from test_skip import with_a_bad_symbol
    return with_a_bad_symbol(str(tmp_path_factory.mktemp("bad") / "u"))


@pytest.mark.parametrize("mode", ["inprocess", "subprocess"])
def test_on_error_skip_with_a_bad_symbol_equals_the_single_build(cluster, bad_universe, tmp_path,
                                                                 mode, monkeypatch):
    """A symbol with a column of its own (``zz``) that fails mid-decode: the single
    ``on_error="skip"`` build leaves it out, and so do the 3 shards (no all-NaN ``zz``): the
    shard holding it names it, the driver counts again excluding it, plans and rebuilds."""
    monkeypatch.setenv("SPILLWAY_BIN", cli())
    u = bad_universe
    opts = dict(FILTERS, on_error="skip")
    single = str(tmp_path / "single.spill")
    spillway.build(u, single, **opts)
    assert "zz" not in spillway.open(single).columns
    m = sray.build(u, str(tmp_path / "out"), shards=3, mode=mode, **opts)
    assert_equal(single, m)
    ds = spillway.open_dataset(m)
    assert "zz" not in ds.columns
    # The cap: one round allowed, the bad symbol is named.
    with pytest.raises(spillway.DataError, match="S004B"):
        sray.build(u, str(tmp_path / "capped"), shards=3, mode=mode, max_attempts=1, **opts)


@pytest.mark.parametrize("mode", ["inprocess", "subprocess"])
def test_time_shards_on_error_skip_with_a_bad_symbol_equal_the_single_build(
        cluster, bad_universe, tmp_path, mode, monkeypatch, caplog):
    """Time shards have no count or plan: every shard that reads ``S004B`` names it, and the
    driver builds every time shard again with ``exclude``; the dataset is the single
    ``order="time"`` ``on_error="skip"`` build. A rerun keeps it; one round is not enough."""
    monkeypatch.setenv("SPILLWAY_BIN", cli())
    u = bad_universe
    opts = dict(FILTERS, on_error="skip", order="time")
    single = str(tmp_path / "single.spill")
    assert spillway.build(u, single, **opts)["attempts"] == 2
    assert "zz" not in spillway.open(single).columns
    out = str(tmp_path / "out")
    with caplog.at_level("WARNING", logger="spillway.ray"):
        m = sray.build(u, out, shards=3, mode=mode, **opts)
    assert "S004B" in caplog.text and "in 2 attempts" in caplog.text
    assert_equal(single, m)
    ds = spillway.open_dataset(m)
    assert ds.manifest["order"] == "time" and "zz" not in ds.columns
    for shard in ds.shards:  # each records the exclusion: one built without it is not current
        assert shard.metadata["options"]["exclude"] == ["S004B"]
    # A rerun over the same directory (the shard names do not depend on the exclusion).
    assert sray.build(u, out, shards=3, mode=mode, **opts) == m
    assert_equal(single, m)
    with pytest.raises(spillway.DataError, match="S004B") as e:
        sray.build(u, str(tmp_path / "capped"), shards=3, mode=mode, max_attempts=1, **opts)
    assert "attempt 1, the last max_attempts allows" in str(e.value)
