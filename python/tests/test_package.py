"""The installed package: import, version, docs, build/inspect/verify in-process, typed errors,
Ctrl-C cancelling a build, and the reader being the repository's one file."""
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import spillway
from conftest import cli as conftest_cli, make_universe

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_import_version_and_docs():
    assert spillway.__version__ == spillway._native.__version__
    assert spillway.__version__.count(".") >= 2
    for obj in (spillway, spillway.build, spillway.inspect, spillway.verify, spillway.export,
                spillway.open, spillway.SpillFile.batches, spillway.SpillFile.time_ranges):
        assert obj.__doc__ and len(obj.__doc__) > 40, obj
    import pydoc
    assert "memory_budget" in pydoc.render_doc(spillway.build)
    pkg = os.path.dirname(spillway.__file__)
    assert os.path.exists(os.path.join(pkg, "py.typed"))
    assert os.path.exists(os.path.join(pkg, "_native.pyi"))


def test_the_reader_is_the_repository_file():
    """The package ships spill/python/spillfile.py itself (not a second copy), importable alone."""
    with open(spillway.spillfile.__file__, "rb") as a, \
            open(os.path.join(ROOT, "spill", "python", "spillfile.py"), "rb") as b:
        assert a.read() == b.read()
    assert spillway.SpillError is spillway.spillfile.SpillError
    assert spillway.SpillwayError is spillway.spillfile.SpillwayError
    assert issubclass(spillway.SpillError, (spillway.SpillwayError, ValueError))
    assert issubclass(spillway.DataError, spillway.SpillwayError)
    code = ("import importlib.util, sys; s = importlib.util.spec_from_file_location('spillfile', "
            "sys.argv[1]); m = importlib.util.module_from_spec(s); s.loader.exec_module(m); "
            "print('spillway' in sys.modules)")
    r = subprocess.run([sys.executable, "-c", code, spillway.spillfile.__file__],
                       capture_output=True, text=True, check=True)
    assert r.stdout.strip() == "False"  # the reader alone imports nothing of the package


def test_build_returns_the_summary(universe, tmp_path):
    out = tmp_path / "b.spill"
    s = spillway.build(universe, out, target="target", features="f000,f001", max_rows=1000,
                       threads=1, memory_budget="64MiB", on_error="fail")
    assert s["rows"] == 8 * 1000 and s["features"] == 2 and s["symbols_read"] == 8
    f = spillway.open(out)
    assert f.columns_with_role("feature") == ["f000", "f001"] and f.nrows == 8000
    assert spillway.verify(out)["ok"]
    json.dumps(s)


def test_build_matches_the_cli(universe, spill_path, tmp_path):
    cli = conftest_cli()
    out = tmp_path / "cli.spill"
    subprocess.run([cli, "build", "--input", universe, "--output", str(out), "--target", "target",
                    "--quiet"], check=True)
    a, b = spillway.open(out), spillway.open(spill_path)
    for c in a.columns:
        np.testing.assert_array_equal(a.column(c), b.column(c))


def test_unknown_keyword_is_a_type_error(universe, tmp_path):
    with pytest.raises(TypeError, match="unknown option 'max_row'"):
        spillway.build(universe, tmp_path / "x.spill", max_row=3)
    with pytest.raises(TypeError):
        spillway.inspect(universe, nonsense=1)


@pytest.mark.parametrize("kw, cls, code, match", [
    (dict(threads=0), spillway.UsageError, 2, "--threads must be at least 1"),
    (dict(on_error="sometimes"), spillway.UsageError, 2, "on_error': unknown variant"),
    (dict(memory_budget="lots"), spillway.UsageError, 2, "not a size"),
    (dict(features=["nope"]), spillway.UsageError, 2, "nope"),
    (dict(target="no_such_column"), spillway.DataError, 1, "no symbol could be read|no_such_column"),
])
def test_errors_are_typed(universe, tmp_path, kw, cls, code, match):
    with pytest.raises(cls, match=match) as e:
        spillway.build(universe, tmp_path / "x.spill", **({} if "target" in kw else {"no_target": True}), **kw)
    if code is not None:
        assert isinstance(e.value, spillway.SpillwayError) and e.value.exit_code == code
    assert not os.listdir(tmp_path)


def test_missing_input_is_a_data_error(tmp_path):
    with pytest.raises(spillway.DataError, match="nowhere"):
        spillway.build(tmp_path / "nowhere", tmp_path / "x.spill", target="target")
    assert issubclass(spillway.InternalError, spillway.SpillwayError)
    assert spillway.InternalError.exit_code == 3


def test_config_file_under_keywords(universe, tmp_path):
    cfg = tmp_path / "b.toml"
    cfg.write_text('target = "target"\nmax-rows = 10\nthreads = 1\n')
    s = spillway.build(universe, tmp_path / "c.spill", config=cfg, max_rows=20)
    assert s["rows"] == 8 * 20


def test_inspect(universe):
    r = spillway.inspect(universe, target="target")
    assert r["symbols"] == 8 and r["time_column"] == "ts"
    assert [c["name"] for c in r["columns"] if c["feature"]] == [f"f{j:03d}" for j in range(8)]
    r = spillway.inspect(universe, target="target", min_cs=5)
    assert r["filter_stats"]["distinct_timestamps"] > 0


def test_verify_reports_damage(spill_path, tmp_path):
    ok = spillway.verify(spill_path)
    assert ok["ok"] and ok["damaged"] == [] and ok["chunks"] > 0
    data = bytearray(open(spill_path, "rb").read())
    f = spillway.open(spill_path)
    data[f.column_info("f003").offset + 40] ^= 1
    bad = tmp_path / "bad.spill"
    bad.write_bytes(bytes(data))
    with pytest.raises(spillway.DataError, match="'f003' rows") as e:
        spillway.verify(bad)
    assert e.value.report["damaged"][0]["column"] == "f003"
    (tmp_path / "junk.spill").write_bytes(b"x" * 10000)
    with pytest.raises(spillway.DataError, match="not a valid spill file"):
        spillway.verify(tmp_path / "junk.spill")


CANCEL_SCRIPT = r"""
import sys, spillway
try:
    spillway.build(sys.argv[1], sys.argv[2], target="target", threads=1, batch_rows=1024,
                   channel_capacity=1, write_mode="mmap")
    print("finished")
except KeyboardInterrupt:
    print("cancelled")
"""


def test_ctrl_c_cancels_a_build_and_leaves_no_temporary(tmp_path):
    u = make_universe(str(tmp_path / "big"), symbols=12, rows=60_000, features=24, seed=3)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    out = out_dir / "x.spill"
    p = subprocess.Popen([sys.executable, "-c", CANCEL_SCRIPT, u, str(out)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 60
    seen = False
    while time.time() < deadline and p.poll() is None:
        if any(n.endswith(".spill-tmp") for n in os.listdir(out_dir)):
            seen = True
            break
        time.sleep(0.01)
    assert seen, "the build finished (or failed) before it could be interrupted: " + \
        (p.communicate()[1] if p.poll() is not None else "")
    t0 = time.time()
    p.send_signal(signal.SIGINT)
    stdout, stderr = p.communicate(timeout=60)
    assert time.time() - t0 < 10, "the build took too long to stop"
    assert p.returncode == 0, stderr
    assert stdout.strip() == "cancelled", (stdout, stderr)
    assert os.listdir(out_dir) == []  # no .spill-tmp, no output


def test_the_reader_works_without_the_extension(spill_path):
    """From the source tree (no compiled _native): open() and the training API work, verify falls
    back to the numpy reader, build/export say what is missing."""
    code = r"""
import sys, spillway
assert spillway._native is None
f = spillway.open(sys.argv[1])
n = sum(len(y) for _, y in f.batches(1000))
assert n == f.nrows, n
assert spillway.verify(sys.argv[1])["ok"]
try:
    spillway.build("in", "out")
except ImportError as e:
    assert "native extension" in str(e)
else:
    raise SystemExit("build without the extension did not raise")
print("ok", spillway.__version__)
"""
    env = dict(os.environ, PYTHONPATH=os.path.join(ROOT, "python"))
    r = subprocess.run([sys.executable, "-c", code, spill_path], capture_output=True, text=True,
                       env=env, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("ok ")


@pytest.mark.parametrize("batch_rows, shuffle", [(1, None), (333, None), (4096, "blocks"),
                                                 (100_000, "blocks")])
@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16"])
def test_native_reader_gives_the_numpy_readers_batches(spill_path, batch_rows, shuffle, dtype):
    """With the package, batches() and take_rows() run natively (read_rows, take_rows); the
    values must be the numpy path's (spill/python/tests) in the documented order."""
    sf = spillway.spillfile
    assert sf._read_rows is spillway._native.read_rows
    assert sf._take_rows is spillway._native.take_rows
    f = spillway.open(spill_path)
    kw = dict(shuffle=shuffle, block_rows=777, seed=9, with_time=True, dtype=dtype,
              columns=list(reversed(f.columns_with_role("feature"))))
    got = list(f.batches(batch_rows, **kw))
    try:
        sf._read_rows = None  # the numpy path
        want = list(f.batches(batch_rows, **kw))
    finally:
        sf._read_rows = spillway._native.read_rows
    assert len(got) == len(want)
    for g, w in zip(got, want):
        for a, b in zip(g, w):
            assert a.dtype == b.dtype
            np.testing.assert_array_equal(a, b)
    idx = np.random.default_rng(0).integers(0, f.nrows, 1000)
    X, y = f.take_rows(idx, dtype=dtype)
    try:
        sf._take_rows = None
        np.testing.assert_array_equal(X, f.take_rows(idx, dtype=dtype)[0])
    finally:
        sf._take_rows = spillway._native.take_rows

