"""Issue 26 (item 1, Python): time-major datasets, the shards of `spillway build --order time
--shard I/N` and their manifest, against the single `--order time` file of the same universe:
every column; time_range, time_ranges, split_by_time, timestamps, timestamp_ranges and
group_sizes for bounds before, inside, at and between shards and after the last time; batches;
a symbol-cut dataset as before; a manifest URL answering from the manifest and the end of each
shard object (nothing downloaded); read_spill's tasks and blocks on timestamp boundaries; and
spillway.ray.build(order="time") on disk and into a bucket equal to the CLI's dataset.

Shards are built by the `spillway` command (conftest.cli). The Ray tests need Ray (a test
requirement): without it they are skipped with the reason, unless SPILLWAY_REQUIRE_RAY is set
(scripts/test.sh), which makes a missing Ray a failure."""
import datetime
import itertools
import json
import os
import shutil
import subprocess
import threading

import numpy as np
import pytest

import spillway
from spillway.spillfile import SpillError
from conftest import cli, make_universe, moto_bucket

FILTERS = ["--drop-null-target", "--min-cs", "6", "--max-cs-samples", "5", "--seed", "4"]
RAY_FILTERS = dict(target="target", drop_null_target=True, min_cs=6, max_cs_samples=5, seed=4,
                   memory_budget="64MiB")


def run(*args):
    r = subprocess.run([cli(), *args], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return r


def build(u, out, *flags):
    run("build", "--input", u, "--output", out, "--target", "target", "--quiet", *flags)
    return out


def time_shards(u, d, n, *flags):
    """``n`` time shards of ``u`` in ``d`` and their manifest (its path)."""
    paths = [build(u, os.path.join(d, f"s{i}.spill"), "--order", "time", "--shard", f"{i}/{n}",
                   *flags) for i in range(n)]
    manifest = os.path.join(d, "dataset.json")
    run("manifest", *paths, "--output", manifest)
    return manifest


@pytest.fixture(scope="module")
def universe(tmp_path_factory):
    return make_universe(str(tmp_path_factory.mktemp("tu") / "u"), symbols=10, rows=600,
                         features=3, seed=8)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """3 symbols on the same 4 timestamps: as many shards as timestamps."""
    return make_universe(str(tmp_path_factory.mktemp("tiny") / "u"), symbols=3, rows=4,
                         features=3, seed=1)


CASES = {"3 shards": (3, ()), "1 shard": (1, ()), "3 shards, filters": (3, FILTERS),
         "a shard a timestamp": (4, ())}


@pytest.fixture(scope="module", params=list(CASES))
def case(request, universe, tiny, tmp_path_factory):
    """``(single time-major file, manifest of its time shards)``."""
    n, flags = CASES[request.param]
    u = tiny if request.param == "a shard a timestamp" else universe
    d = str(tmp_path_factory.mktemp("case"))
    single = build(u, os.path.join(d, "single.spill"), "--order", "time", *flags)
    if request.param == "a shard a timestamp":
        assert len(spillway.open(single).timestamps) == n
    return single, time_shards(u, d, n, *flags)


def same_columns(ds, f):
    assert ds.nrows == f.nrows > 0 and ds.columns == f.columns
    for c in f.columns:
        a, b = ds.column(c), f.column(c)
        assert np.array_equal(a, b, equal_nan=a.dtype.kind == "f"), c


def bounds_of(f, manifest):
    """Time bounds: unbounded, before the first time, at and around each shard's first and last
    times (the manifest's), inside shards, after the last time."""
    times = f.timestamps.times
    edges = [t for e in json.load(open(manifest))["shards"] for t in e["time_range"]]
    out = {None, int(times[0]) - 1, int(times[-1]) + 1, int(times[len(times) // 3]),
           int(times[len(times) // 2]) + 1}
    for t in edges:
        out |= {t - 1, t, t + 1}
    return sorted(out, key=lambda t: (t is not None, t))


def test_a_time_dataset_is_the_single_time_major_file(case):
    single, manifest = case
    ds, f = spillway.open_dataset(manifest), spillway.open(single)
    assert ds.order == "time" and f.order == "time"
    same_columns(ds, f)
    assert ds.symbols == f.symbols
    assert spillway.dataset.verify_dataset(manifest)["problems"] == []


def test_time_queries_answer_as_the_single_file(case):
    single, manifest = case
    ds, f = spillway.open_dataset(manifest), spillway.open(single)
    bounds = bounds_of(f, manifest)
    for a, b in itertools.product(bounds, bounds):
        assert ds.time_range(a, b) == f.time_range(a, b), (a, b)
        assert ds.time_ranges(a, b) == f.time_ranges(a, b), (a, b)
    for cut in bounds:
        assert ds.split_by_time(cut) == f.split_by_time(cut), cut
    t = int(f.timestamps.times[len(f.timestamps) // 2])
    when = np.datetime64(t, "ns")
    iso = datetime.datetime.fromtimestamp(t / 1e9, datetime.timezone.utc).isoformat()
    assert ds.time_range(when, iso) == f.time_range(when, iso)
    assert ds.time_range(iso) == f.time_range(iso)

    got, want = ds.timestamps, f.timestamps
    assert len(got) == len(want) and got.nrows == want.nrows
    for name in ("times", "counts", "bounds", "starts"):
        np.testing.assert_array_equal(getattr(got, name), getattr(want, name), err_msg=name)
    assert list(got) == list(want)
    assert dict(ds.timestamp_ranges) == dict(f.timestamp_ranges)
    assert ds.timestamp_ranges[when] == f.timestamp_ranges[when]
    with pytest.raises(KeyError):
        ds.timestamp_ranges[int(want.times[0]) - 1]

    np.testing.assert_array_equal(ds.group_sizes(), f.group_sizes())
    ranges = [r for r in (f.time_range(a, b) for a, b in zip(bounds, bounds[3:])) if r[1] > r[0]]
    for r in ranges:
        np.testing.assert_array_equal(ds.group_sizes([r]), f.group_sizes([r]))
    np.testing.assert_array_equal(ds.group_sizes(ranges[::2]), f.group_sizes(ranges[::2]))
    inside = next((int(a) + 1, int(b)) for a, b in zip(want.bounds, want.bounds[1:]) if b - a > 1)
    for reader in (ds, f):
        with pytest.raises(SpillError, match="not a timestamp boundary"):
            reader.group_sizes([inside])


def test_time_shards_as_a_collection_of_files(case):
    """The shards as independent files: in order, one timeline, as the manifest; out of order,
    no timeline (time_range refused), each file's time ranges."""
    single, manifest = case
    paths = [os.path.join(os.path.dirname(manifest), e["path"])
             for e in json.load(open(manifest))["shards"]]
    ds, f = spillway.Dataset.from_files(paths), spillway.open(single)
    assert ds.order == "time"
    bounds = bounds_of(f, manifest)
    for a, b in zip(bounds, bounds[2:]):
        assert ds.time_range(a, b) == f.time_range(a, b)
    np.testing.assert_array_equal(ds.group_sizes(), f.group_sizes())
    if len(paths) < 2:
        return
    turned = spillway.Dataset.from_files(paths[::-1])
    with pytest.raises(SpillError, match="not one timeline"):
        turned.time_range()
    first = spillway.open(paths[-1])
    assert turned.time_ranges(None, None) == [(0, turned.nrows)]
    t = int(first.timestamps.times[-1])  # the first file's last time: the others' are before
    want = [(0, first.time_range(None, t)[1]), (first.nrows, turned.nrows)]
    assert turned.time_ranges(None, t) == [(a, b) for a, b in want if b > a]


@pytest.mark.parametrize("kw", [
    dict(),
    dict(shuffle="blocks", block_rows=97, seed=5, with_time=True, with_symbols=True),
    dict(shuffle="blocks", block_rows=40, seed=2, epoch=3, world_size=2, rank=1, drop_last=True),
])
def test_batches_equal_the_single_files(case, kw):
    single, manifest = case
    ds, f = spillway.open_dataset(manifest), spillway.open(single)
    bounds = bounds_of(f, manifest)
    for ranges in (None, [f.time_range(bounds[2], bounds[-3])]):
        rows = max(2, f.nrows // 40)
        got = list(ds.batches(rows, ranges=ranges, **kw))
        want = list(f.batches(rows, ranges=ranges, **kw))
        assert len(got) == len(want) > 0
        for g, w in zip(got, want):
            assert len(g) == len(w)
            for x, y in zip(g, w):
                np.testing.assert_array_equal(x, y)


def test_a_symbol_dataset_keeps_its_behaviour(universe, tmp_path):
    single = build(universe, str(tmp_path / "single.spill"))
    paths = [build(universe, str(tmp_path / f"s{i}.spill"), "--shard", f"{i}/3")
             for i in range(3)]
    manifest = str(tmp_path / "dataset.json")
    run("manifest", *paths, "--output", manifest)
    ds, f = spillway.open_dataset(manifest), spillway.open(single)
    assert ds.order == f.order == "symbol"
    assert ds.time_range() is None and f.time_range() is None
    assert ds.timestamps is None and ds.timestamp_ranges is None
    for reader in (ds, f):
        with pytest.raises(SpillError, match="symbol-major"):
            reader.group_sizes()
    t = int(np.median(f.column("ts")))
    assert ds.time_ranges(t, t + 10**12) == f.time_ranges(t, t + 10**12)
    assert ds.split_by_time(t) == f.split_by_time(t)


def edited(manifest, dest, edit):
    """A copy of ``manifest`` in ``dest`` (its shards copied beside it) after ``edit(parsed)``."""
    m = json.load(open(manifest))
    edit(m)
    os.makedirs(dest)
    for e in m["shards"]:
        shutil.copy(os.path.join(os.path.dirname(manifest), e["path"]), dest / e["path"])
    path = dest / "dataset.json"
    path.write_text(json.dumps(m))
    return str(path)


def test_a_bad_time_manifest_is_refused(universe, tmp_path_factory, tmp_path):
    d = str(tmp_path_factory.mktemp("bad"))
    manifest = time_shards(universe, d, 3)

    def overlap(m):
        m["shards"][1]["time_range"][0] = m["shards"][0]["time_range"][1]

    def unknown(m):
        m["order"] = "diagonal"

    def missing(m):
        del m["shards"][2]["time_range"]
    for edit, why in ((overlap, "not after the shards before it"), (unknown, "diagonal"),
                      (missing, "time_range is not")):
        with pytest.raises(SpillError, match=why):
            spillway.open_dataset(edited(manifest, tmp_path / edit.__name__, edit))

    def moved(m):  # still in order, but not shard 1's own times
        m["shards"][1]["time_range"][1] -= 1
    ds = spillway.open_dataset(edited(manifest, tmp_path / "moved", moved))
    with pytest.raises(SpillError, match="the manifest says"):
        ds.timestamps


def test_read_spill_tasks_cut_at_timestamp_boundaries(case):
    from spillway._ray_data import _tasks
    single, manifest = case
    f = spillway.open(single)
    for ds in (spillway.open_dataset(manifest), spillway.Dataset.from_files([single])):
        assert ds.order == "time"
        for parallelism, per, block in ((7, None, 50), (3, 90, 1000), (200, None, 1)):
            tasks = _tasks(ds, parallelism, per, block)
            at = 0
            for shard, a, b, cuts in tasks:
                assert ds.offsets[shard] + a == at and cuts[0] == a and cuts[-1] == b
                assert all(x < y for x, y in zip(cuts, cuts[1:]))
                for c in cuts:  # every cut is where a cross-section starts (or the end)
                    f.timestamps.boundary(ds.offsets[shard] + c)
                at = ds.offsets[shard] + b
            assert at == f.nrows


def test_read_spill_tasks_of_a_symbol_dataset_are_as_before(tmp_path):
    from spillway._ray_data import _tasks
    u = make_universe(str(tmp_path / "u"), symbols=4, rows=100, features=3)
    ds = spillway.Dataset.from_files([build(u, str(tmp_path / "s.spill"))])
    assert _tasks(ds, 1, 150, 64) == [(0, 0, 150, [0, 64, 128, 150]),
                                      (0, 150, 300, [150, 214, 278, 300]),
                                      (0, 300, 400, [300, 364, 400])]


# ---------------------------------------------------------------------- remote datasets
BUCKET = "spw-time"


@pytest.fixture(scope="module")
def s3():
    with moto_bucket(BUCKET, "time-secret") as (client, options):
        yield client, options


class Spy:
    """The extension, its downloads and tail reads recorded on the way through."""

    def __init__(self, real):
        self.real, self.downloads, self.tails = real, [], []
        self.lock = threading.Lock()

    def download(self, url, dest, options, expect):
        with self.lock:
            self.downloads.append(url.rsplit("/", 1)[1])
        return self.real.download(url, dest, options, expect)

    def get_object(self, url, options="{}", tail=None):
        if tail is not None:
            with self.lock:
                self.tails.append(url.rsplit("/", 1)[1])
        return self.real.get_object(url, options, tail)

    def __getattr__(self, name):
        return getattr(self.real, name)


@pytest.fixture
def native(monkeypatch):
    spy = Spy(spillway._need_native())
    monkeypatch.setattr(spillway, "_need_native", lambda: spy)
    return spy


def upload(client, manifest, prefix):
    d = os.path.dirname(manifest)
    for e in json.load(open(manifest))["shards"]:
        client.upload_file(os.path.join(d, e["path"]), BUCKET, f"{prefix}/{e['path']}")
    client.upload_file(manifest, BUCKET, f"{prefix}/dataset.json")
    return f"s3://{BUCKET}/{prefix}/dataset.json"


@pytest.mark.parametrize("first_read", [64 << 10, 100])  # 100: metadata in a second read
def test_a_remote_time_dataset_answers_without_downloading(universe, s3, native, tmp_path,
                                                           tmp_path_factory, monkeypatch,
                                                           first_read):
    monkeypatch.setattr(spillway._time, "_TAIL", first_read)
    client, options = s3
    d = str(tmp_path_factory.mktemp("remote"))
    single = build(universe, os.path.join(d, "single.spill"), "--order", "time")
    manifest = time_shards(universe, d, 3)
    url = upload(client, manifest, f"ds-{first_read}")
    f = spillway.open(single)
    entries = json.load(open(manifest))["shards"]
    ds = spillway.open_dataset(url, cache_dir=str(tmp_path / "c"), storage_options=options)
    assert ds.order == "time" and ds.remote
    first1, last1 = entries[1]["time_range"]
    # Bounds at or between shards' times: from the manifest alone.
    assert ds.time_range(first1, last1 + 1) == f.time_range(first1, last1 + 1)
    assert native.tails == [] and native.downloads == []
    # A bound inside shard 1: its index, from the end of its object.
    times = f.timestamps.times
    inside = times[(times > first1) & (times <= last1)]
    mid = int(inside[len(inside) // 2])
    assert ds.time_range(mid) == f.time_range(mid)
    assert set(native.tails) == {entries[1]["path"]}
    assert len(native.tails) == (1 if first_read > 1000 else 2) and native.downloads == []
    np.testing.assert_array_equal(ds.group_sizes(), f.group_sizes())
    np.testing.assert_array_equal(ds.timestamps.bounds, f.timestamps.bounds)
    assert dict(ds.timestamp_ranges) == dict(f.timestamp_ranges)
    assert ds.split_by_time(mid) == f.split_by_time(mid)
    assert sorted(set(native.tails)) == sorted(e["path"] for e in entries)
    assert native.downloads == [], "no shard downloaded for the time index"
    same_columns(ds, f)
    assert sorted(native.downloads) == sorted(e["path"] for e in entries)


def test_a_remote_shard_that_is_not_the_listed_one_is_refused(universe, s3, native, tmp_path,
                                                              tmp_path_factory):
    client, options = s3
    manifest = time_shards(universe, str(tmp_path_factory.mktemp("swap")), 2)
    m = json.load(open(manifest))
    m["shards"][0]["checksum"] = "crc32:00000000"
    with open(manifest, "w") as fh:
        json.dump(m, fh)
    url = upload(client, manifest, "swapped")
    ds = spillway.open_dataset(url, cache_dir=str(tmp_path / "c"), storage_options=options)
    with pytest.raises(SpillError, match="not the one the manifest lists"):
        ds.timestamps
    assert native.downloads == []


# ---------------------------------------------------------------------- Ray

def blocks_of(rd):
    """The Ray dataset's blocks (non-empty), as numpy dicts."""
    return [b for b in rd.iter_batches(batch_size=None, batch_format="numpy") if len(b["ts"])]


def assert_whole_cross_sections(rd, f):
    """Each block of ``rd`` holds all rows of its timestamps, and every row of ``f`` comes once."""
    blocks = blocks_of(rd)
    owner = {}
    for k, b in enumerate(blocks):
        for t in np.unique(b["ts"]).tolist():
            assert owner.setdefault(t, k) == k, f"time {t} in blocks {owner[t]} and {k}"
    got = sorted((int(t), s) for b in blocks for t, s in zip(b["ts"], b["symbol"]))
    names = np.asarray(f.symbols)[f.column("symbol")]
    assert got == sorted(zip(f.column("ts").tolist(), names.tolist()))
    return blocks


@pytest.mark.parametrize("how", ["dataset", "file"])
def test_read_spill_blocks_hold_whole_cross_sections(ray_cluster, case, how):
    import spillway.ray as sray
    single, manifest = case
    rd = sray.read_spill(manifest if how == "dataset" else single, columns=["ts", "symbol"],
                         rows_per_task=500, batch_rows=130)
    assert_whole_cross_sections(rd, spillway.open(single))


def test_read_spill_asked_for_more_blocks_than_timestamps(ray_cluster, tiny, tmp_path):
    """Fewer read tasks than blocks asked for: Ray would split each task's output evenly,
    through cross-sections, so tasks of no rows make up the count."""
    import spillway.ray as sray
    single = build(tiny, str(tmp_path / "single.spill"), "--order", "time")
    manifest = time_shards(tiny, str(tmp_path), 2)
    for source in (single, manifest):
        rd = sray.read_spill(source, columns=["ts", "symbol"], override_num_blocks=7)
        assert len(assert_whole_cross_sections(rd, spillway.open(single))) <= 4


@pytest.fixture(scope="module")
def cli_filtered(universe, tmp_path_factory):
    """The CLI's 3 time shards of ``universe`` with the filters."""
    return time_shards(universe, str(tmp_path_factory.mktemp("clif")), 3, *FILTERS)


def test_ray_build_in_time_order(ray_cluster, universe, cli_filtered, tmp_path):
    import spillway.ray as sray
    out = tmp_path / "out"
    m = sray.build(universe, str(out), shards=3, order="time", **RAY_FILTERS)
    ds, want = spillway.open_dataset(m), spillway.open_dataset(cli_filtered)
    assert ds.order == "time" and ds.nshards == 3
    same_columns(ds, want)
    assert [e["time_range"] for e in ds.manifest["shards"]] == \
        [e["time_range"] for e in want.manifest["shards"]]
    assert not [p for p in os.listdir(out / "cs") if os.listdir(out / "cs" / p)], \
        "no count or plan for time shards"
    mtimes = {p: os.stat(out / p).st_mtime_ns for p in os.listdir(out) if p.endswith(".spill")}
    last = sorted(mtimes)[-1]
    os.remove(out / last)
    assert sray.build(universe, str(out), shards=3, order="time", **RAY_FILTERS) == m
    for p, t in mtimes.items():
        if p != last:
            assert os.stat(out / p).st_mtime_ns == t, f"{p} was rebuilt"
    same_columns(spillway.open_dataset(m), want)
    # A time shard is not current for a symbol-order build of the same shard.
    from spillway._options import options_json
    identity = json.loads(spillway._need_native().universe(options_json(
        input=universe, order="time", **RAY_FILTERS)))
    shard = str(out / last)
    opts = dict(order="time", **RAY_FILTERS)
    assert sray._current(shard, 2, 3, None, identity, opts) == ds.shards[2].nrows
    assert sray._current(shard, 2, 3, None, identity, {**opts, "order": "symbol"}) is None


@pytest.mark.parametrize("mode", ["inprocess", "subprocess"])
def test_ray_build_in_time_order_into_a_bucket(ray_cluster, universe, cli_filtered, s3, mode,
                                               tmp_path, monkeypatch):
    import spillway.ray as sray
    client, options = s3
    monkeypatch.setenv("SPILLWAY_BIN", cli())
    out = f"s3://{BUCKET}/built-{mode}"
    kw = dict(shards=3, order="time", mode=mode, storage_options=options,
              scratch=str(tmp_path / "scratch"), **RAY_FILTERS)
    m = sray.build(universe, out, **kw)
    assert m == f"{out}/dataset.json"
    ds = spillway.open_dataset(m, cache_dir=str(tmp_path / "c"), storage_options=options)
    assert ds.order == "time"
    same_columns(ds, spillway.open_dataset(cli_filtered))
    keys = {o["Key"]: o["LastModified"] for o in
            client.list_objects_v2(Bucket=BUCKET, Prefix=f"built-{mode}/")["Contents"]}
    assert len([k for k in keys if k.endswith(".spill")]) == 3
    assert not [k for k in keys if "/cs/" in k], "no count or plan for time shards"
    assert sray.build(universe, out, **kw) == m
    again = {o["Key"]: o["LastModified"] for o in
             client.list_objects_v2(Bucket=BUCKET, Prefix=f"built-{mode}/")["Contents"]}
    assert again == keys, "a rerun rebuilt nothing"
