"""Regression tests of issue 21 for the Python package (item 10): `build`'s option errors (no JSON
positions, integers reported as given), its `summary=` and `quiet=` (and a config file's), and
the sharded dataset's `batches` and `take` arguments."""
import json
import os
import stat
import threading

import numpy as np
import pytest

import spillway
from conftest import make_universe


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    return make_universe(str(tmp_path_factory.mktemp("u21")), symbols=3, rows=200, features=3)


def _no_position(e):
    assert "line 1" not in str(e.value) and "column 1" not in str(e.value), str(e.value)


# ------------------------------------------------------------------ build's option errors
@pytest.mark.parametrize("kw, name", [
    (dict(min_cs="600"), "min_cs"),
    (dict(threads=1.5), "threads"),
    (dict(target=3), "target"),
    (dict(drop_null_target=1), "drop_null_target"),
    (dict(time_unit=5), "time_unit"),
    (dict(shard=["0/2"]), "shard"),
])
def test_i21_10_build_type_errors_name_the_option_without_json_positions(small, tmp_path, kw,
                                                                         name):
    with pytest.raises(TypeError, match=name) as e:
        spillway.build(small, tmp_path / "x.spill", **kw)
    _no_position(e)
    assert not os.listdir(tmp_path)


def test_i21_10_the_extension_names_options_without_json_positions(small, tmp_path):
    # What the package does not check itself (options the library gains later) the extension
    # refuses the same way: the keyword's name, no JSON position, TypeError for a type.
    base = {"input": small, "output": str(tmp_path / "x.spill")}
    usage = spillway.UsageError
    for extra, cls, text in [({"time-unit": 5}, TypeError, "option 'time_unit': invalid type"),
                             ({"min-cs": 1.5}, TypeError, "option 'min_cs': invalid type"),
                             ({"min-cs": -1}, usage, "option 'min_cs': invalid value"),
                             ({"order": "random"}, usage, "option 'order'")]:
        with pytest.raises(cls, match=text) as e:
            spillway._native.build(json.dumps({**base, **extra}))
        _no_position(e)


def test_i21_10_unknown_keyword_names_itself_without_json_positions(small, tmp_path):
    with pytest.raises(TypeError, match=r"unknown option 'max_row' \(the options are: .*max_rows")\
            as e:
        spillway.build(small, tmp_path / "x.spill", max_row=3)
    _no_position(e)


@pytest.mark.parametrize("kw, text", [
    (dict(min_cs=2**64), "min_cs=18446744073709551616 is out of range"),
    (dict(max_rows=2**70), "max_rows=1180591620717411303424 is out of range"),
    (dict(seed=-1), "seed=-1 is out of range"),
    (dict(memory_budget=-5), "memory_budget=-5 is out of range"),
    (dict(on_error="sometimes"), "option 'on_error': unknown variant sometimes"),
    (dict(time_unit="hours"), "option 'time_unit': unknown variant hours"),
])
def test_i21_10_bad_values_are_usage_errors_reported_as_given(small, tmp_path, kw, text):
    with pytest.raises(spillway.UsageError) as e:
        spillway.build(small, tmp_path / "x.spill", **kw)
    assert text in str(e.value) and isinstance(e.value, ValueError)
    assert "e+19" not in str(e.value) and "e19" not in str(e.value)
    _no_position(e)


# ------------------------------------------------------------------ quiet= and summary=
def test_i21_10_build_takes_quiet(small, tmp_path):
    s = spillway.build(small, tmp_path / "q.spill", target="target", quiet=True, progress=True)
    assert s["rows"] == 600
    with pytest.raises(TypeError, match="quiet must be True or False"):
        spillway.build(small, tmp_path / "q2.spill", quiet="yes")


def test_i21_10_build_writes_the_summary_atomically_with_the_umask(small, tmp_path):
    out, path = tmp_path / "s.spill", tmp_path / "summary.json"
    path.write_text("old")
    old = os.umask(0o022)
    try:
        s = spillway.build(small, out, target="target", summary=path)
    finally:
        os.umask(old)
    assert json.loads(path.read_text()) == s
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o644
    assert sorted(os.listdir(tmp_path)) == ["s.spill", "summary.json"]  # no temporary left


def test_i21_10_summary_through_a_symlink_replaces_the_file_not_the_link(small, tmp_path):
    real, link = tmp_path / "real.json", tmp_path / "link.json"
    real.write_text("old")
    os.symlink(real, link)
    s = spillway.build(small, tmp_path / "s.spill", target="target", summary=link)
    assert os.path.islink(link) and json.loads(real.read_text()) == s


def test_i21_10_summary_into_a_fifo_is_written_directly(small, tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    got = []
    reader = threading.Thread(target=lambda: got.append(open(fifo).read()), daemon=True)
    reader.start()
    try:
        s = spillway.build(small, tmp_path / "s.spill", target="target", summary=fifo)
    finally:  # a build that never opened the FIFO leaves the reader waiting for a writer
        try:
            os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        except OSError:
            pass
        reader.join(30)
    assert json.loads(got[0]) == s
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)  # never replaced by a regular file


def test_i21_10_summary_dash_is_stdout(small, tmp_path, capsys):
    s = spillway.build(small, tmp_path / "s.spill", target="target", summary="-")
    assert json.loads(capsys.readouterr().out) == s


def test_i21_10_summary_may_not_be_the_output_or_a_file_the_build_reads(small, tmp_path):
    out = tmp_path / "o.spill"
    cfg = tmp_path / "b.toml"
    cfg.write_text('target = "target"\n')
    parquet = os.path.join(small, "S000.parquet")
    before = open(parquet, "rb").read()
    hard = tmp_path / "hard.json"
    os.link(parquet, hard)
    cases = [(out, "is the --output file"), (parquet, "is one of the input files"),
             (hard, "is one of the input files"), (cfg, "is the --config file"),
             (tmp_path, "is a directory")]
    for path, why in cases:
        with pytest.raises(spillway.UsageError, match=why):
            spillway.build(small, out, config=cfg, summary=path)
    assert open(parquet, "rb").read() == before
    assert sorted(os.listdir(tmp_path)) == ["b.toml", "hard.json"]


def test_i21_10_config_file_takes_summary_and_quiet(small, tmp_path):
    summary = tmp_path / "from-config.json"
    cfg = tmp_path / "b.toml"
    cfg.write_text(f'target = "target"\nquiet = true\nsummary = "{summary}"\n')
    s = spillway.build(small, tmp_path / "c.spill", config=cfg)
    assert json.loads(summary.read_text()) == s
    # The keyword overrides the file's summary.
    other = tmp_path / "kw.json"
    spillway.build(small, tmp_path / "c.spill", config=cfg, summary=other, quiet=False)
    assert json.loads(other.read_text())["rows"] == 600


# ------------------------------------------------------------------ the sharded dataset
@pytest.fixture(scope="module")
def dataset(small, tmp_path_factory):
    d = tmp_path_factory.mktemp("ds21")
    shards = [str(d / f"s{i}.spill") for i in range(2)]
    for i, s in enumerate(shards):
        spillway.build(small, s, target="target", shard=f"{i}/2")
    manifest = str(d / "dataset.json")
    spillway.dataset.write_manifest(shards, manifest)
    return spillway.open_dataset(manifest)


@pytest.mark.parametrize("rows", [[1, 2], [1, 2, 3], np.array([0, 4])])
def test_i21_10_dataset_take_refuses_row_indices_and_says_so(dataset, rows):
    with pytest.raises(TypeError, match=r"take\(\) takes row ranges .*take_rows"):
        dataset.take(rows)


@pytest.mark.parametrize("kw, cls, text", [
    (dict(batch_rows=10.5), TypeError, "batch_rows must be an int"),
    (dict(batch_rows=10, ranges=[(0, 1, 2)]), ValueError, "has 3 values"),
    (dict(batch_rows=10, ranges=[(0.0, 5.0)]), TypeError, "not ints"),
    (dict(batch_rows=10, shuffle="blocks", seed="1"), TypeError, "seed must be an int"),
    (dict(batch_rows=10, shuffle="blocks", block_rows=0), ValueError, "block_rows must be at"),
])
def test_i21_10_dataset_batches_checks_its_arguments(dataset, kw, cls, text):
    with pytest.raises(cls, match=text):
        dataset.batches(**kw)


def test_dataset_ranges_still_work(dataset):
    X, y = dataset.take((10, 500))
    assert X.shape == (490, 3) and len(y) == 490
    assert sum(len(b[0]) for b in dataset.batches(np.int64(64), shuffle="blocks",
                                                  block_rows=50, seed=3)) == dataset.nrows
