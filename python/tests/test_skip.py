"""``on_error="skip"`` bounded, in this process (issue 27): ``spillway.build``'s
``max_attempts`` and ``exclude``, and :class:`spillway.ExcludeError` (exit code 4) raised by a
shard build that finds a symbol failing mid-decode, from the extension and from the ``spillway``
command (``spillway.ray``'s subprocess mode). The universe is 9 symbols plus ``S004B``: S004's
rows with a column of its own, ``zz``, whose bytes are broken, so planning passes and decoding
fails (the same universe python/tests/test_ray.py builds on a cluster)."""
import os
import pickle
import shutil

import numpy as np
import pytest

import spillway
from conftest import cli, make_universe
from spillway._ray_tasks import _run
from spillway.errors import EXCLUDE_MARKER, DataError, ExcludeError, SpillwayError, UsageError

BAD = "S004B"
OPTS = dict(target="target", memory_budget="64MiB")


def break_column(path, column):
    """Overwrites the bytes of ``column``'s first chunk in the parquet file ``path`` (past its
    first 8): the footer and time column stay readable, so planning passes and decoding fails."""
    import pyarrow.parquet as pq
    rg = pq.ParquetFile(path).metadata.row_group(0)
    c = next(rg.column(j) for j in range(rg.num_columns) if rg.column(j).path_in_schema == column)
    start = c.dictionary_page_offset or c.data_page_offset
    with open(path, "r+b") as fh:
        fh.seek(start + 8)
        fh.write(b"\xa5" * (c.total_compressed_size - 8))


def with_a_bad_symbol(out):
    """``make_universe`` of 9 symbols at ``out``, plus ``S004B`` (see the module's docs)."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    u = make_universe(out, symbols=9, rows=400, features=3, seed=4)
    t = pq.read_table(os.path.join(u, "S004.parquet"))
    t = t.append_column("zz", pa.array(np.arange(t.num_rows, dtype=np.float64)))
    bad = os.path.join(u, f"{BAD}.parquet")
    pq.write_table(t, bad, compression="none", use_dictionary=False)
    break_column(bad, "zz")
    return u


@pytest.fixture(scope="module")
def bad(tmp_path_factory):
    d = tmp_path_factory.mktemp("skip")
    u = with_a_bad_symbol(str(d / "u"))
    good = d / "good"  # the universe that never had it
    shutil.copytree(u, good, ignore=shutil.ignore_patterns(f"{BAD}.parquet"))
    return u, str(good), d


def assert_same_rows(a, b):
    fa, fb = spillway.open(a), spillway.open(b)
    assert fa.columns == fb.columns and fa.nrows == fb.nrows > 0
    for c in fa.columns:
        if c == "symbol":
            assert list(fa.symbol_names()) == list(fb.symbol_names())
        else:
            np.testing.assert_array_equal(fa.column(c), fb.column(c), err_msg=c)


@pytest.mark.parametrize("order", ["symbol", "time"])
def test_skip_starts_over_once_without_the_symbol_as_exclude_does(bad, order):
    u, good, d = bad
    skipped = str(d / f"skip-{order}.spill")
    s = spillway.build(u, skipped, on_error="skip", order=order, **OPTS)
    assert s["attempts"] == 2
    assert [k["symbol"] for k in s["symbols_skipped"]] == [BAD]
    assert "zz" not in spillway.open(skipped).columns
    # exclude= leaves it out from the start, under either policy (as a string like the CLI's).
    excluded = str(d / f"exclude-{order}.spill")
    s = spillway.build(u, excluded, exclude=BAD, order=order, **OPTS)
    assert s["attempts"] == 1
    assert spillway.open(excluded).metadata["options"]["exclude"] == [BAD]
    assert_same_rows(skipped, excluded)
    never = str(d / f"never-{order}.spill")
    spillway.build(good, never, order=order, **OPTS)
    assert_same_rows(skipped, never)
    assert "exclude" not in spillway.open(never).metadata["options"]


def test_max_attempts_bounds_the_attempts(bad):
    u, _, d = bad
    out = d / "capped.spill"
    with pytest.raises(DataError, match=BAD) as e:
        spillway.build(u, out, on_error="skip", max_attempts=1, **OPTS)
    assert type(e.value) is DataError and e.value.exit_code == 1
    assert "attempt 1, the last --max-attempts allows" in str(e.value)
    assert not out.exists()
    # Without skip, the symbol fails the build; the failing symbol is named either way.
    with pytest.raises(DataError, match=BAD):
        spillway.build(u, out, **OPTS)
    assert not out.exists()


def test_bad_max_attempts_and_exclude_name_the_keyword(bad):
    u, _, d = bad
    out = str(d / "never-written.spill")
    for value in (0, 2**32):
        with pytest.raises(UsageError, match=f"max_attempts={value} is out of range"):
            spillway.build(u, out, on_error="skip", max_attempts=value, **OPTS)
    with pytest.raises(TypeError, match="max_attempts must be an int"):
        spillway.build(u, out, on_error="skip", max_attempts="3", **OPTS)
    with pytest.raises(TypeError, match="exclude must be a list of symbols"):
        spillway.build(u, out, exclude=5, **OPTS)
    assert not os.path.exists(out)


def test_a_shard_that_finds_a_failing_symbol_raises_exclude_error(bad):
    """Time shards: every one reads S004B's row group, so each names it; built again with
    ``exclude=`` (the driver's second round) they are the single skip build's rows."""
    u, _, d = bad
    opts = dict(OPTS, on_error="skip", order="time")
    os.makedirs(d / "time")
    paths = [str(d / "time" / f"shard-{i}-of-2.spill") for i in range(2)]
    for i, path in enumerate(paths):
        with pytest.raises(ExcludeError) as e:
            spillway.build(u, path, shard=f"{i}/2", **opts)
        err = e.value
        assert isinstance(err, DataError) and isinstance(err, SpillwayError)
        assert err.exit_code == 4 and err.scope == f"{i}/2"
        assert list(err.symbols) == [BAD] and "zz" in err.symbols[BAD]
        assert EXCLUDE_MARKER in str(err)
        assert not os.path.exists(path)
    for i, path in enumerate(paths):
        spillway.build(u, path, shard=f"{i}/2", exclude=[BAD], **opts)
    manifest = str(d / "time" / "dataset.json")
    spillway.sharded.write_manifest(paths, manifest)
    single = str(d / "time-single.spill")
    spillway.build(u, single, **opts)
    a, ds = spillway.open(single), spillway.open_dataset(manifest)
    assert ds.nrows == a.nrows and "zz" not in ds.columns
    for c in a.columns:
        if c != "symbol":
            np.testing.assert_array_equal(ds.column(c), a.column(c), err_msg=c)


def test_symbol_shards_name_it_in_the_shard_that_holds_it(bad):
    u, _, d = bad
    raised = []
    for i in range(3):
        try:
            spillway.build(u, d / f"sym-{i}.spill", shard=f"{i}/3", on_error="skip", **OPTS)
        except ExcludeError as e:
            raised.append((i, e.symbols))
    assert len(raised) == 1 and list(raised[0][1]) == [BAD]


def test_the_command_exits_4_and_the_task_raises_exclude_error(bad):
    """``mode="subprocess"``: the ``spillway`` command's exit code 4 and the JSON after the
    marker on its stderr become the same :class:`ExcludeError`."""
    u, _, d = bad
    out = str(d / "cli-0-of-2.spill")
    with pytest.raises(ExcludeError) as e:
        _run(cli(), ["build", "--input", u, "--output", out, "--target", "target", "--quiet",
                     "--on-error", "skip", "--order", "time", "--shard", "0/2"], out,
             "build of shard 0/2")
    assert e.value.exit_code == 4 and "exited 4" in str(e.value)
    assert list(e.value.symbols) == [BAD] and "zz" in e.value.symbols[BAD]
    assert not os.path.exists(out)


def test_exclude_error_keeps_its_symbols_through_pickle_and_parses_messages():
    e = ExcludeError("shard 0/2: ... " + EXCLUDE_MARKER + '{"B": "b failed", "A": "a failed"}\n')
    assert e.symbols == {"A": "a failed", "B": "b failed"} and list(e.symbols) == ["A", "B"]
    back = pickle.loads(pickle.dumps(ExcludeError("msg", {"X": "r"}, "1/3")))
    assert (str(back), back.symbols, back.scope) == ("msg", {"X": "r"}, "1/3")
    # A reason that quotes the marker is inside the JSON, not its start.
    quoted = EXCLUDE_MARKER + '{"Q": "said symbols to exclude: {}"}'
    assert ExcludeError(quoted).symbols == {"Q": "said symbols to exclude: {}"}
    assert ExcludeError("no marker").symbols == {}
    assert spillway.ExcludeError is ExcludeError and "ExcludeError" in spillway.__all__
