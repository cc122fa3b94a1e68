"""Export to Parquet and Arrow IPC (Python and CLI), read back by pyarrow, polars, DuckDB and
pandas; to_arrow without copying."""
import os
import subprocess

import numpy as np
import pytest

import spillway
from conftest import cli as conftest_cli
from conftest import time_major



@pytest.fixture(scope="module")
def nan_spill(tmp_path_factory):
    """A spill file with NaN features (and the last target of each symbol null)."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    u = tmp_path_factory.mktemp("nan")
    rng = np.random.default_rng(5)
    for s, n in (("AAA", 500), ("BB.B", 0), ("CÇ", 1300)):
        x = rng.standard_normal(n)
        x[::7] = np.nan
        ts = pa.array(1_700_000_000_000_000_000 + np.arange(n, dtype=np.int64) * 60_000_000_000,
                      pa.timestamp("ns", tz="UTC"))
        pq.write_table(pa.table({"ts": ts, "target": rng.standard_normal(n), "x": x,
                                 "z": rng.standard_normal(n)}), str(u / f"{s}.parquet"))
    out = str(tmp_path_factory.mktemp("nans") / "n.spill")
    spillway.build(str(u), out, target="target")
    return out


@pytest.mark.parametrize("ext", ["parquet", "arrow"])
def test_export_round_trips_through_every_reader(nan_spill, tmp_path, ext):
    pa = pytest.importorskip("pyarrow")
    pl = pytest.importorskip("polars")
    duckdb = pytest.importorskip("duckdb")
    pytest.importorskip("pandas")
    f = spillway.open(nan_spill)
    out = str(tmp_path / f"o.{ext}")
    r = spillway.export(nan_spill, out)
    assert r["rows"] == f.nrows and r["columns"] == len(f.columns) and r["format"] == ext
    if ext == "parquet":
        import pyarrow.parquet as pq
        t = pq.read_table(out)
    else:
        import pyarrow.feather as feather
        t = feather.read_table(out)
    assert t.column_names == f.columns
    assert t.schema.field("ts").type == pa.timestamp("ns", tz="UTC")
    assert pa.types.is_dictionary(t.schema.field("symbol").type)
    assert t.column("symbol").to_pylist() == [f.symbols[c] for c in f.symbol_codes()]
    np.testing.assert_array_equal(t.column("x").to_numpy(), f.column("x"))  # NaN stays NaN
    assert t.column("x").null_count == 0
    np.testing.assert_array_equal(t.column("ts").cast(pa.int64()).to_numpy(), f.column("ts"))
    # polars, DuckDB, pandas read it.
    df = pl.read_parquet(out) if ext == "parquet" else pl.read_ipc(out)
    assert df.height == f.nrows and df["symbol"].to_list()[:1] == ["AAA"]
    assert str(df.schema["ts"]) .startswith("Datetime(time_unit='ns'")
    if ext == "parquet":
        n, s = duckdb.sql(f"select count(*), sum(z) from read_parquet('{out}')").fetchall()[0]
    else:  # DuckDB reads Arrow IPC through an extension it downloads: query the table instead
        n, s = duckdb.sql("select count(*), sum(z) from t").fetchall()[0]
    assert n == f.nrows and s == pytest.approx(float(f.column("z").astype(np.float64).sum()), rel=1e-6)
    pdf = t.to_pandas() if ext == "arrow" else __import__("pandas").read_parquet(out)
    assert len(pdf) == f.nrows and str(pdf["symbol"].dtype) == "category"


def test_export_columns_rows_and_nan_as_null(nan_spill, tmp_path):
    pl = pytest.importorskip("polars")
    f = spillway.open(nan_spill)
    out = str(tmp_path / "part.parquet")
    r = spillway.export(nan_spill, out, columns=["x", "symbol"], rows=(100, 900), nan_as_null=True)
    assert r["rows"] == 800
    df = pl.read_parquet(out)
    assert df.columns == ["x", "symbol"]
    x = f.column("x")[100:900]
    assert df["x"].null_count() == int(np.isnan(x).sum()) > 0
    np.testing.assert_array_equal(df["x"].drop_nulls().to_numpy(), x[~np.isnan(x)])
    assert df["symbol"].to_list() == [f.symbols[c] for c in f.symbol_codes()[100:900]]


def test_export_errors(nan_spill, tmp_path):
    with pytest.raises(spillway.UsageError, match='no column "nope"'):
        spillway.export(nan_spill, tmp_path / "a.parquet", columns=["nope"])
    with pytest.raises(spillway.UsageError, match="extension"):
        spillway.export(nan_spill, tmp_path / "a.csv")
    with pytest.raises(spillway.DataError):
        spillway.export(tmp_path / "missing.spill", tmp_path / "a.parquet")
    assert os.listdir(tmp_path) == []  # nothing half-written


def test_cli_export(nan_spill, tmp_path):
    cli = conftest_cli()
    pa = pytest.importorskip("pyarrow")
    import pyarrow.feather as feather
    out = tmp_path / "c.arrow"
    subprocess.run([cli, "export", nan_spill, "--to", str(out), "--columns", "ts,symbol,x",
                    "--rows", "10:", "--nan-as-null"], check=True, capture_output=True)
    t = feather.read_table(str(out))
    f = spillway.open(nan_spill)
    assert t.num_rows == f.nrows - 10 and t.column_names == ["ts", "symbol", "x"]
    assert t.column("x").null_count == int(np.isnan(f.column("x")[10:]).sum())
    bad = subprocess.run([cli, "export", nan_spill, "--to", str(tmp_path / "d.parquet"), "--rows",
                          "9:3"], capture_output=True, text=True)
    assert bad.returncode != 0 and "stop is before start" in bad.stderr, bad.stderr
    assert pa is not None


def test_to_arrow_reads_like_the_export(nan_spill, tmp_path):
    pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq
    f = spillway.open(nan_spill)
    out = str(tmp_path / "e.parquet")
    spillway.export(nan_spill, out)
    a, b = pq.read_table(out), f.to_arrow()
    assert [(x.name, x.type) for x in a.schema] == [(x.name, x.type) for x in b.schema]
    for name in a.column_names:
        if name == "symbol":
            assert a.column(name).to_pylist() == b.column(name).to_pylist()
        else:
            np.testing.assert_array_equal(a.column(name).to_numpy(), b.column(name).to_numpy())


def test_export_writes_a_time_major_file_in_stored_order(nan_spill, tmp_path):
    """Export reads rows in stored order, so a time-major file exports sorted by time."""
    pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq
    src = time_major(nan_spill, str(tmp_path / "t.spill"))
    f = spillway.open(src)
    assert f.order == "time"
    r = spillway.export(src, str(tmp_path / "t.parquet"))
    assert r["rows"] == f.nrows
    t = pq.read_table(str(tmp_path / "t.parquet"))
    assert t.column_names == f.columns
    ts = t.column("ts").cast("int64").to_numpy()
    np.testing.assert_array_equal(ts, f.column("ts"))
    assert (np.diff(ts) >= 0).all()
    assert t.column("symbol").to_pylist() == [f.symbols[c] for c in f.symbol_codes()]
    np.testing.assert_array_equal(t.column("x").to_numpy(), f.column("x"))
    assert spillway.verify(src)["ok"]
