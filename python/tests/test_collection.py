"""Collections (``spillway manifest --collection``): the helpers of ``spillway._collection`` on
manifests the real CLI writes over files built apart from different universes (overlapping and
distinct symbols): the manifest checked, the union symbol table rebuilt, every file's codes
mapped to it by name; bad manifests and tables refused."""
import copy
import json
import os
import shutil
import subprocess

import numpy as np
import pytest

from conftest import cli, make_universe
from spillway import _collection as coll
from spillway import spillfile
from spillway.spillfile import SpillError


def _run(*args):
    return subprocess.run([cli(), *args], capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def collection(tmp_path_factory):
    """a.spill from S002..S005, day2/b.spill from S000..S003 (two universes of one schema) and
    their collection manifest, files in that order."""
    d = tmp_path_factory.mktemp("collection")
    every = make_universe(str(d / "all"), symbols=6, rows=200, features=3, seed=5)
    files = []
    for name, symbols in (("a.spill", (2, 3, 4, 5)), ("day2/b.spill", (0, 1, 2, 3))):
        u = d / f"u-{len(files)}"
        u.mkdir()
        for s in symbols:
            shutil.copy(os.path.join(every, f"S{s:03d}.parquet"), u / f"S{s:03d}.parquet")
        out = d / "out" / name
        out.parent.mkdir(parents=True, exist_ok=True)
        r = _run("build", "--input", str(u), "--output", str(out), "--target", "target",
                 "--quiet")
        assert r.returncode == 0, r.stderr
        files.append(str(out))
    manifest = str(d / "out" / "dataset.json")
    r = _run("manifest", "--collection", *files, "--output", manifest)
    assert r.returncode == 0, r.stderr
    return manifest, files


def _load(path):
    with open(path, "rb") as fh:
        return json.loads(fh.read())


def test_the_cli_manifest_checks_and_maps_codes_by_name(collection):
    manifest, files = collection
    m = coll.check_collection(_load(manifest), manifest)
    assert coll.is_collection(m)
    assert m["version"][0] == coll.VERSION_MAJOR and m["order"] == "symbol"
    assert [e["path"] for e in m["files"]] == ["a.spill", "day2/b.spill"]
    opened = [spillfile.open(f) for f in files]
    tables = [list(f.symbols) for f in opened]
    assert tables == [["S002", "S003", "S004", "S005"], ["S000", "S001", "S002", "S003"]]
    assert m["symbols"] == coll.union_symbols(tables) == \
        ["S002", "S003", "S004", "S005", "S000", "S001"]
    assert m["nrows"] == sum(f.nrows for f in opened)
    maps = coll.code_maps(m["symbols"], tables)
    assert [mp.dtype for mp in maps] == [np.uint32, np.uint32]
    np.testing.assert_array_equal(maps[0], [0, 1, 2, 3])
    np.testing.assert_array_equal(maps[1], [4, 5, 0, 1])
    for f, mp in zip(opened, maps):
        codes = f.column("symbol")
        union = coll.union_codes(codes, mp)
        assert union.dtype == np.uint32
        by_union = [m["symbols"][c] for c in union]
        by_file = [f.symbols[c] for c in codes]
        assert by_union == by_file and len(by_file) == f.nrows > 0
    # The same symbol has one code across the collection.
    s2 = [set(coll.union_codes(f.column("symbol"), mp)[
        np.asarray([f.symbols[c] == "S002" for c in f.column("symbol")])]) for f, mp in
        zip(opened, maps)]
    assert s2 == [{0}, {0}]
    r = _run("verify", "--json", manifest)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["kind"] == "collection"


def test_the_cli_refuses_a_file_with_another_schema(collection, tmp_path):
    _, files = collection
    u = make_universe(str(tmp_path / "u"), symbols=2, rows=100, features=4, seed=1)
    x = str(tmp_path / "x.spill")
    r = _run("build", "--input", u, "--output", x, "--target", "target", "--quiet")
    assert r.returncode == 0, r.stderr
    out = str(tmp_path / "dataset.json")
    r = _run("manifest", "--collection", files[0], x, "--output", out)
    assert r.returncode == 1 and "x.spill" in r.stderr and '"f003"' in r.stderr, r.stderr
    assert not os.path.exists(out)


@pytest.mark.parametrize("change, message", [
    (lambda m: m.update(kind="sharded"), "is not a spillway-dataset 2.x collection"),
    (lambda m: m.update(version=[1, 1]), "is not a spillway-dataset 2.x collection"),
    (lambda m: m.update(format="other"), "not a spillway-dataset manifest"),
    (lambda m: m.update(order="random"), "order"),
    (lambda m: m.update(schema=[{"name": "ts"}]), "schema"),
    (lambda m: m.update(files=[]), "lists no files"),
    (lambda m: m["files"][0].update(path="/abs/a.spill"), "file 0"),
    (lambda m: m["files"][1].update(path="../b.spill"), "file 1"),
    (lambda m: m["files"][0].update(rows=-1), "file 0"),
    (lambda m: m["files"][0].update(bytes=True), "file 0"),
    (lambda m: m["files"][0].update(checksum="crc32:XYZ"), "file 0"),
    (lambda m: m["files"][0].update(time_range=[5, 1]), "time_range"),
    (lambda m: m["files"].append(dict(m["files"][0])), "listed twice"),
    (lambda m: m.update(nrows=m["nrows"] + 1), "nrows"),
    (lambda m: m.update(symbols=["A", "A"]), "twice"),
    (lambda m: m.update(symbols=["A", ""]), "symbols"),
    (lambda m: m.update(generation=0), "generation"),
])
def test_check_collection_refuses_bad_fields(collection, change, message):
    manifest, _ = collection
    m = copy.deepcopy(_load(manifest))
    change(m)
    with pytest.raises(SpillError, match=message):
        coll.check_collection(m, manifest)


def test_code_maps_refuse_what_does_not_belong():
    with pytest.raises(SpillError, match="'Z' is not in the collection's symbol table"):
        coll.code_maps(["A", "B"], [["A"], ["B", "Z"]])
    with pytest.raises(SpillError, match="names 'A' twice"):
        coll.code_maps(["A", "B", "A"], [["A"]])
    assert [m.tolist() for m in coll.code_maps(["A"], [[], ["A"]])] == [[], [0]]
    mp = coll.code_maps(["A", "B", "C"], [["C", "A"]])[0]
    np.testing.assert_array_equal(coll.union_codes(np.array([1, 0, 1], np.uint32), mp), [0, 2, 0])
    for bad in ([2], [-1]):
        with pytest.raises(SpillError, match="outside the file's table of 2"):
            coll.union_codes(np.array(bad), mp)
    assert coll.union_symbols([["B", "A"], ["A", "C"], []]) == ["B", "A", "C"]
    assert not coll.is_collection({"format": "spillway-dataset", "version": [1, 1]})


def test_open_dataset_reads_a_collection_and_a_list_alike(collection):
    """The collection manifest and the list of its files open as one dataset: rows in file
    order, symbol codes in the union's table (names kept), the same batches and states."""
    import spillway
    manifest, files = collection
    by_manifest, by_list = spillway.open_dataset(manifest), spillway.open(files)
    opened = [spillfile.open(f) for f in files]
    assert by_manifest.collection and by_list.collection
    assert by_manifest.nrows == by_list.nrows == sum(f.nrows for f in opened)
    assert by_manifest.symbols == by_list.symbols == _load(manifest)["symbols"]
    want = [f.symbols[c] for f in opened for c in f.symbol_codes()]
    for ds in (by_manifest, by_list):
        assert [ds.symbols[c] for c in ds.column("symbol")] == want
        assert list(ds.symbol_names()) == want
        assert ds.symbols[ds[opened[0].nrows]["symbol"]] == want[opened[0].nrows]
        codes = np.concatenate([b[-1] for b in ds.batches(64, with_symbols=True,
                                                          shuffle="blocks", seed=2)])
        ref = np.concatenate([b[-1] for b in by_manifest.batches(64, with_symbols=True,
                                                                 shuffle="blocks", seed=2)])
        np.testing.assert_array_equal(codes, ref)
        assert sorted(ds.symbols[c] for c in codes) == sorted(want)
    it = by_list.batches(50, shuffle="blocks", seed=1)
    next(it)
    rest = by_manifest.batches(50, shuffle="blocks", seed=1, state=it.state_dict())
    for (x, _), (w, _) in zip(rest, it):
        np.testing.assert_array_equal(x, w)
    assert by_list.verify()["problems"] == by_manifest.verify()["problems"] == []


def test_a_list_of_files_of_other_schemas_is_refused(collection, tmp_path):
    import spillway
    _, files = collection
    u = make_universe(str(tmp_path / "u"), symbols=2, rows=50, features=4, seed=1)
    other = str(tmp_path / "o.spill")
    r = _run("build", "--input", u, "--output", other, "--target", "target", "--quiet")
    assert r.returncode == 0, r.stderr
    with pytest.raises(SpillError, match="not one schema"):
        spillway.open([files[0], other])
    with pytest.raises(SpillError, match="listed twice"):
        spillway.open([files[0], files[0]])
