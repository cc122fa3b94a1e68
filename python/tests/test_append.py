"""Issue 26 (Python): `spillway.append` and `spillway.ray.build(append=True)`. A time-major
dataset built from yesterday's universe (per-symbol parquet written here with pyarrow: hive parts
`symbol=S/part-k.parquet`, to which today adds a part, or flat `S.parquet` files rewritten whole
today), appended today's rows, equals the single `--order time` build of today's universe column
by column (its new symbol sorts after the old ones, so even the codes agree); nothing new leaves
it as it is; a changed history raises HistoryError naming the symbol and the first timestamp
that differs, and `rebuild=True` takes the universe whole; on a Ray cluster, on disk and into a
bucket (moto), in both modes, the append equals the CLI's.

Datasets are built by the `spillway` command (conftest.cli). The Ray tests need Ray (a test
requirement): without it they are skipped with the reason, unless SPILLWAY_REQUIRE_RAY is set
(scripts/test.sh), which makes a missing Ray a failure."""
import json
import os
import shutil
import subprocess

import numpy as np
import pytest

import spillway
from spillway.errors import DataError, HistoryError, SpillwayError, UsageError
from conftest import cli, moto_bucket

T0 = 1_700_000_000_000_000_000
MIN = 60_000_000_000
#: Yesterday's symbols and their first minutes; yesterday ends at minute 100, today at 130.
OLD = {"AA": 0, "BB": 5, "CC": 20}
YESTERDAY, TODAY = 100, 130
FILTERS = ["--drop-null-target", "--min-cs", "2", "--max-cs-samples", "2", "--seed", "3"]
RAY_OPTIONS = dict(target="target", drop_null_target=True, min_cs=2, max_cs_samples=2, seed=3,
                   memory_budget="64MiB")


def table(sym, first, last, salt=0.0):
    """Rows of ``sym`` at minutes ``first..=last``: a pure function of the symbol and the minute
    (and ``salt``: other values). The target is null every 7th minute."""
    import pyarrow as pa
    m = np.arange(first, last + 1, dtype=np.int64)
    k = sum(map(ord, sym))
    x = np.sin(m * 0.37 + k + salt)
    return pa.table({
        "ts": pa.array(T0 + m * MIN, pa.timestamp("ns", tz="UTC")),
        "target": pa.array(np.cos(m * 0.11 + k + salt), mask=(m % 7 == 3)),
        "f0": pa.array(x),
        "f1": pa.array((x * x + np.float64(salt)).astype(np.float32)),
    })


def write(path, t):
    import pyarrow.parquet as pq
    os.makedirs(os.path.dirname(path), exist_ok=True)
    pq.write_table(t, path, row_group_size=64)


def universes(root, layout, today_extra=None):
    """``(yesterday, today)``: directories of one layout. ``hive``: today is yesterday's parts
    (copied, unchanged) plus a part of minutes 101..130 per symbol; ``flat``: today's files are
    rewritten with every minute. Both add ZZ (minutes 101..130), a symbol that sorts last."""
    y, t = os.path.join(root, "yesterday"), os.path.join(root, "today")
    for sym, first in OLD.items():
        if layout == "hive":
            write(os.path.join(y, f"symbol={sym}", "part-0.parquet"), table(sym, first, YESTERDAY))
        else:
            write(os.path.join(y, f"{sym}.parquet"), table(sym, first, YESTERDAY))
    if layout == "hive":
        shutil.copytree(y, t)
        for sym in OLD:
            write(os.path.join(t, f"symbol={sym}", "part-1.parquet"),
                  table(sym, YESTERDAY + 1, TODAY))
        write(os.path.join(t, "symbol=ZZ", "part-1.parquet"), table("ZZ", YESTERDAY + 1, TODAY))
    else:
        for sym, first in OLD.items():
            write(os.path.join(t, f"{sym}.parquet"), table(sym, first, TODAY))
        write(os.path.join(t, "ZZ.parquet"), table("ZZ", YESTERDAY + 1, TODAY))
    return y, t


def run(*args):
    r = subprocess.run([cli(), *map(str, args)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return r


def build(u, out, *flags):
    run("build", "--input", u, "--output", out, "--target", "target", "--quiet", *flags)
    return str(out)


def time_dataset(u, d, n, *flags):
    """``n`` time shards of ``u`` in the new directory ``d`` and their manifest (its path)."""
    os.makedirs(d)
    paths = [build(u, os.path.join(d, f"s{i}.spill"), "--order", "time", "--shard", f"{i}/{n}",
                   *flags) for i in range(n)]
    manifest = os.path.join(d, "dataset.json")
    run("manifest", *paths, "--output", manifest)
    return manifest


def cli_append(manifest, u, *flags):
    """``spillway append`` (the CLI's report, or None when nothing was appended)."""
    out = run("append", manifest, "--input", u, "--quiet", "--summary", "-", *flags).stdout
    return json.loads(out) if out.strip() else None


def same_columns(ds, f):
    """Every column of ``ds`` equals ``f``'s (a file or another dataset), symbol codes too;
    with ``f`` a file, the names of those codes too: the newest shard's table holds every
    symbol (the old shards' tables are its beginning)."""
    assert ds.nrows == f.nrows > 0 and ds.columns == f.columns
    for c in f.columns:
        a, b = ds.column(c), f.column(c)
        assert np.array_equal(a, b, equal_nan=a.dtype.kind == "f"), c
    if isinstance(f, spillway.SpillFile):
        newest = ds.shards[-1].symbols
        assert newest == f.symbols
        assert all(s.symbols == newest[:len(s.symbols)] for s in ds.shards)


def single(u, d, *flags):
    return spillway.open(build(u, os.path.join(d, "single.spill"), "--order", "time", *flags))


@pytest.mark.parametrize("layout", ["hive", "flat"])
@pytest.mark.parametrize("flags", [(), tuple(FILTERS)], ids=["plain", "filtered"])
def test_an_append_equals_the_single_build_of_today(layout, flags, tmp_path):
    y, t = universes(str(tmp_path), layout)
    m = time_dataset(y, str(tmp_path / "ds"), 2, *flags)
    before = spillway.open_dataset(m)
    after = json.load(open(m))["shards"][-1]["time_range"][1]
    r = spillway.append(m, t, shards=2)
    assert isinstance(r, spillway.AppendReport) and r.appended
    assert (r.manifest, r.generation, r.after, r.rebuilt) == (m, 2, after, False)
    assert len(r.shards) == 2 and all(s.startswith("time-g2-") for s in r.shards)
    assert r.last == T0 + TODAY * MIN and r.seconds >= 0
    h = r.history
    assert h is not None and h.recorded and h.problems == [] and h.new_symbols == ["ZZ"]
    if layout == "hive":  # the parts it was built from are unchanged: trusted, not read
        assert (h.trusted, h.rebuilt) == (3, [])
    else:  # rewritten: its rows up to yesterday built again and compared
        assert (h.trusted, sorted(h.rebuilt)) == (0, ["AA", "BB", "CC"])
    f = single(t, str(tmp_path), *flags)
    ds = spillway.open_dataset(m)
    assert ds.order == "time" and ds.nshards == 4
    assert r.rows == f.nrows - before.nrows
    same_columns(ds, f)
    assert spillway.dataset.verify_dataset(m)["problems"] == []
    assert os.path.exists(tmp_path / "ds" / "dataset.g1.json"), "generation 1 kept for readers"

    # Nothing new: the dataset as it is, a report of no shard.
    text = open(m).read()
    again = spillway.append(m, t, shards=2)
    assert not again.appended and (again.rows, again.shards, again.history) == (0, [], None)
    assert (again.generation, again.after, again.last) == (2, r.last, r.last)
    assert open(m).read() == text


def test_the_dataset_symbols_after_an_append_name_the_new_symbol(tmp_path):
    y, t = universes(str(tmp_path), "hive")
    m = time_dataset(y, str(tmp_path / "ds"), 1)
    spillway.append(m, t)
    assert spillway.open_dataset(m).symbols == ["AA", "BB", "CC", "ZZ"]


def rewrite_bb(t, at):
    """BB's history in ``t`` rewritten from minute ``at`` on (other values)."""
    import pyarrow as pa
    t_ = pa.concat_tables([table("BB", OLD["BB"], at - 1), table("BB", at, TODAY, salt=9.0)])
    write(os.path.join(t, "BB.parquet"), t_)


def test_a_changed_history_raises_naming_the_symbol_and_the_time(tmp_path):
    y, t = universes(str(tmp_path), "flat")
    rewrite_bb(t, 37)
    m = time_dataset(y, str(tmp_path / "ds"), 2)
    text = open(m).read()
    with pytest.raises(HistoryError) as e:
        spillway.append(m, t)
    msg = str(e.value)
    assert "BB:" in msg and str(T0 + 37 * MIN) in msg and "rebuild=True" in msg, msg
    assert "AA" not in msg and "CC" not in msg
    assert e.value.manifest == m and "BB" in e.value.what
    assert isinstance(e.value, DataError) and isinstance(e.value, SpillwayError)
    assert e.value.exit_code == 1
    assert open(m).read() == text, "nothing committed"
    assert not [p for p in os.listdir(tmp_path / "ds") if p.startswith("time-g2")]
    # rebuild=True: today's universe whole, as new shards (the dataset's codes kept).
    r = spillway.append(m, t, rebuild=True)
    assert r.rebuilt and r.generation == 2 and r.history is not None and r.history.problems
    ds = spillway.open_dataset(m)
    assert ds.nshards == 1 and r.rows == ds.nrows
    same_columns(ds, single(t, str(tmp_path)))


def test_backfilled_history_raises(tmp_path):
    y, t = universes(str(tmp_path), "hive")
    write(os.path.join(t, "symbol=EE", "part-0.parquet"), table("EE", 90, TODAY))
    m = time_dataset(y, str(tmp_path / "ds"), 1)
    with pytest.raises(HistoryError, match=f"EE: .*backfilled.*{T0 + 90 * MIN}|"
                                           f"EE: .*{T0 + 90 * MIN}.*backfilled"):
        spillway.append(m, t)


def test_what_append_refuses(tmp_path):
    y, t = universes(str(tmp_path), "flat")
    m = time_dataset(y, str(tmp_path / "ds"), 1)
    with pytest.raises(UsageError, match="shards"):
        spillway.append(m, t, shards=0)
    with pytest.raises(TypeError, match="rebuild"):
        spillway.append(m, t, rebuild="yes")
    with pytest.raises(TypeError, match="threads"):
        spillway.append(m, t, threads="2")
    with pytest.raises(DataError, match="no such manifest"):
        spillway.append(str(tmp_path / "none.json"), t)
    os.makedirs(tmp_path / "sym")
    s = build(y, tmp_path / "sym" / "s.spill", "--shard", "0/1")
    run("manifest", s, "--output", tmp_path / "sym" / "dataset.json")
    with pytest.raises(DataError, match="not a time-major dataset"):
        spillway.append(str(tmp_path / "sym" / "dataset.json"), t)
    assert spillway.append(m, t, threads=1, memory_budget="64MiB").generation == 2


def test_a_build_key_and_a_current_shard_tell_transforms_apart():
    """spillway.ray's shard names and its `_current` check see ``cs_transform`` (a rerun with
    another transform rebuilds), and a build without it keeps its shard names."""
    import spillway.ray as sray
    u = {"fingerprint": "crc32:00000001"}
    plain = dict(target="target", order="time")
    assert sray._build_key(u, plain) == sray._build_key(u, {**plain, "cs_transform": None})
    assert sray._build_key(u, plain) != sray._build_key(u, {**plain, "cs_transform": "rank"})
    assert sray._build_key(u, {**plain, "cs_transform": "winsorize=.05"}) == \
        sray._build_key(u, {**plain, "cs_transform": "winsorize=0.05"})
    recorded = {"target": "target", "features": None, "max_rows": None, "float32": True,
                "order": "time", "filters": {"drop_null_target": False, "min_cs": 0,
                                             "max_cs_samples": None, "seed": 0}}
    assert sray._same_options(recorded, plain)
    assert not sray._same_options(recorded, {**plain, "cs_transform": "rank"})
    assert sray._same_options({**recorded, "cs_transform": "rank"},
                              {**plain, "cs_transform": "rank"})


# ---------------------------------------------------------------------- Ray
BUCKET = "spw-append"



@pytest.fixture(scope="module")
def days(tmp_path_factory):
    """Yesterday's and today's hive universes, and the CLI's dataset of yesterday's (2 shards,
    the filters) grown by today's (2 new shards): what every cluster append must equal."""
    root = str(tmp_path_factory.mktemp("days"))
    y, t = universes(root, "hive")
    m = time_dataset(y, os.path.join(root, "cli"), 2, *FILTERS)
    r = cli_append(m, t, "--shards", "2")
    assert r is not None and r["generation"] == 2
    return y, t, m


def assert_same_dataset(m, want, **open_kw):
    ds, w = spillway.open_dataset(m, **open_kw), spillway.open_dataset(want)
    assert ds.order == "time" and ds.nshards == w.nshards == 4
    same_columns(ds, w)
    assert [e["time_range"] for e in ds.manifest["shards"]] == \
        [e["time_range"] for e in w.manifest["shards"]]
    assert ds.manifest["generation"] == 2


def test_ray_append_needs_time_order():
    import spillway.ray as sray
    with pytest.raises(ValueError, match="order='time'"):
        sray.build("u", "out", shards=2, append=True, target="target")
    with pytest.raises(ValueError, match="append=True"):
        sray.build("u", "out", shards=2, rebuild=True, order="time")


@pytest.mark.parametrize("mode", ["inprocess", "subprocess"])
def test_ray_append_on_disk_equals_the_cli(ray_cluster, days, mode, tmp_path, monkeypatch):
    import spillway.ray as sray
    monkeypatch.setenv("SPILLWAY_BIN", cli())
    y, t, want = days
    out = tmp_path / "out"
    kw = dict(shards=2, order="time", append=True, mode=mode, **RAY_OPTIONS)
    # No dataset yet: built as without append.
    m = sray.build(y, str(out), **kw)
    assert json.load(open(m))["generation"] == 1
    # The options that decide rows must be the dataset's.
    with pytest.raises(UsageError, match="min_cs=3"):
        sray.build(t, str(out), **{**kw, "min_cs": 3})
    assert sray.build(t, str(out), **kw) == m
    assert_same_dataset(m, want)
    # Nothing new: nothing written.
    text = open(m).read()
    assert sray.build(t, str(out), **kw) == m
    assert open(m).read() == text
    # Changed history: refused on every task, named, nothing committed; rebuild=True takes it.
    changed = tmp_path / "changed"
    shutil.copytree(t, changed)
    write(str(changed / "symbol=BB" / "part-0.parquet"), table("BB", OLD["BB"], YESTERDAY, 9.0))
    with pytest.raises(HistoryError, match=f"BB: .*{T0 + OLD['BB'] * MIN}") as e:
        sray.build(str(changed), str(out), **kw)
    assert "rebuild=True" in str(e.value) and e.value.manifest == m
    assert open(m).read() == text
    assert sray.build(str(changed), str(out), rebuild=True, **kw) == m
    ds = spillway.open_dataset(m)
    assert ds.manifest["generation"] == 3 and ds.nshards == 2
    same_columns(ds, single(str(changed), str(tmp_path), *FILTERS))


@pytest.fixture(scope="module")
def s3():
    with moto_bucket(BUCKET, "append-secret") as (client, options):
        yield client, options


@pytest.mark.parametrize("mode", ["inprocess", "subprocess"])
def test_ray_append_into_a_bucket_equals_the_cli(ray_cluster, days, s3, mode, tmp_path,
                                                 monkeypatch):
    import spillway.ray as sray
    client, options = s3
    monkeypatch.setenv("SPILLWAY_BIN", cli())
    y, t, want = days
    out = f"s3://{BUCKET}/{mode}"
    kw = dict(shards=2, order="time", append=True, mode=mode, storage_options=options,
              scratch=str(tmp_path / "scratch"), **RAY_OPTIONS)
    m = sray.build(y, out, **kw)
    assert m == f"{out}/dataset.json"
    assert sray.build(t, out, **kw) == m
    assert_same_dataset(m, want, cache_dir=str(tmp_path / "c"), storage_options=options)
    keys = {o["Key"]: o["LastModified"] for o in
            client.list_objects_v2(Bucket=BUCKET, Prefix=f"{mode}/")["Contents"]}
    assert len([k for k in keys if k.endswith(".spill")]) == 4
    assert len([k for k in keys if "/time-g2-" in k]) == 2
    assert f"{mode}/dataset.g1.json" in keys
    # Nothing new: nothing written.
    assert sray.build(t, out, **kw) == m
    again = {o["Key"]: o["LastModified"] for o in
             client.list_objects_v2(Bucket=BUCKET, Prefix=f"{mode}/")["Contents"]}
    assert again == keys
    # spillway.append on the bucket's dataset, in this process: nothing new either.
    r = spillway.append(m, t, storage_options=options, scratch=str(tmp_path / "scratch"))
    assert not r.appended and r.generation == 2
