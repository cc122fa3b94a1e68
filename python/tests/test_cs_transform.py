"""``--cs-transform`` (issue 26, item 3) against pandas: a time-major build's features transformed
within each timestamp equal pandas' ``groupby(time)`` transforms of the same float32 values
(ranks to the bit, z-scores and winsorized values within one float32 ulp), on random universes
with NaN, nulls, ties and single-row timestamps; the target, time and symbol columns are
untouched, and the file records the transform. Built by the ``spillway`` command; the
``spillway.build`` keyword is checked too."""
import os
import subprocess

import numpy as np
import pytest

import spillway
from conftest import BASE_NS, GRID_NS, cli

pd = pytest.importorskip("pandas", reason="pandas is in scripts/requirements-test.txt")
pa = pytest.importorskip("pyarrow", reason="pyarrow is in scripts/requirements-test.txt")
pq = pytest.importorskip("pyarrow.parquet")

FEATURES = ("ties", "wide", "const", "sparse")


def write_universe(out, seed, symbols=12):
    """DIR/S00.parquet ...: symbols on a grid of 50 times, each a ragged stretch with gaps, and
    one symbol on times of its own (single-row timestamps). Features: ``ties`` on 0.5 steps,
    ``wide`` continuous over six orders of magnitude, ``const`` one value (std 0), ``sparse``
    mostly NaN (all-NaN and one-value timestamps); NaN and nulls in each but ``const``. Returns
    the rows as a DataFrame (ts, sym, target and features as float32 widened to float64, nulls
    as NaN), as the build converts them."""
    os.makedirs(out, exist_ok=True)
    rng = np.random.default_rng(seed)
    frames = []
    for s in range(symbols + 1):
        if s == symbols:
            ts = BASE_NS + np.arange(25, dtype=np.int64) * GRID_NS + 7
        else:
            start, stop = int(rng.integers(0, 15)), int(rng.integers(30, 51))
            steps = np.arange(start, stop, dtype=np.int64)
            ts = BASE_NS + steps[rng.random(len(steps)) > 0.15] * GRID_NS
        n = len(ts)
        cols = {
            "target": rng.standard_normal(n),
            "ties": np.round(rng.uniform(-6, 6, n) * 2) / 2,
            "wide": rng.standard_normal(n) * 10.0 ** rng.integers(-3, 3, n),
            "const": np.full(n, 0.1),
            "sparse": np.where(rng.random(n) < 0.8, np.nan, rng.standard_normal(n)),
        }
        table = {"ts": pa.array(ts, pa.timestamp("ns", tz="UTC"))}
        for name, v in cols.items():
            if name != "const":
                v[rng.random(n) < 0.07] = np.nan
            mask = (rng.random(n) < 0.05) if name not in ("const", "target") else None
            table[name] = pa.array(v, mask=mask)
            cols[name] = np.where(mask, np.nan, v) if mask is not None else v
        sym = f"S{s:02d}"
        pq.write_table(pa.table(table), os.path.join(out, f"{sym}.parquet"))
        frame = pd.DataFrame({k: np.asarray(v, np.float32).astype(np.float64)
                              for k, v in cols.items()})
        frame.insert(0, "sym", sym)
        frame.insert(0, "ts", ts)
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def build(universe, out, *extra):
    subprocess.run([cli(), "build", "--input", universe, "--output", out, "--target", "target",
                    "--order", "time", "--quiet", *extra], check=True, capture_output=True)
    return spillway.spillfile.open(out)


def reference(df, col, transform):
    """pandas' transform of ``col`` within each timestamp, in float64."""
    g = df.groupby("ts")[col]
    x = df[col]
    if transform == "rank":
        return g.rank(pct=True)
    if transform == "zscore":
        mean = g.transform("mean")
        std = g.transform(lambda s: s.std(ddof=0))
        constant = g.transform(lambda s: s.nunique() <= 1).astype(bool)
        z = (x - mean) / std
        return z.mask(constant & x.notna(), 0.0)
    q = float(transform.split("=", 1)[1])
    lo = g.transform(lambda s: s.quantile(q))
    hi = g.transform(lambda s: s.quantile(1 - q))
    return x.clip(lo, hi)


def ulps(a, b):
    """float32 ulps between ``a`` and ``b`` elementwise (0 for NaN and NaN)."""
    def key(v):
        i = np.asarray(v, np.float32).view(np.int32).astype(np.int64)
        return np.where(i < 0, -(i & 0x7FFFFFFF), i)
    a, b = np.asarray(a, np.float32) + np.float32(0), np.asarray(b, np.float32) + np.float32(0)
    d = np.abs(key(a) - key(b))
    both, one = np.isnan(a) & np.isnan(b), np.isnan(a) ^ np.isnan(b)
    return np.where(both, 0, np.where(one, 1 << 40, d))


def in_file_order(df, f):
    """``df``'s rows in the file's order (time, then symbol code), checked against its columns."""
    codes = {name: i for i, name in enumerate(f.symbols)}
    df = df.assign(code=df["sym"].map(codes)).sort_values(["ts", "code"], kind="stable")
    assert np.array_equal(f.column("ts"), df["ts"].to_numpy())
    assert np.array_equal(f.symbol_codes(), df["code"].to_numpy(np.uint32))
    return df.reset_index(drop=True)


@pytest.fixture(scope="module")
def universes(tmp_path_factory):
    out = []
    for seed in (1, 2):
        u = str(tmp_path_factory.mktemp(f"cs{seed}") / "u")
        out.append((u, write_universe(u, seed)))
    return out


@pytest.mark.parametrize("transform", ["rank", "zscore", "winsorize=0.01", "winsorize=0.2"])
def test_each_transform_matches_pandas(universes, tmp_path, transform):
    for k, (u, df) in enumerate(universes):
        f = build(u, str(tmp_path / f"{k}.spill"), "--cs-transform", transform)
        df = in_file_order(df, f)
        assert (df.groupby("ts").size() == 1).any(), "a single-row timestamp"
        assert f.metadata["options"]["cs_transform"] == transform
        np.testing.assert_array_equal(f.column("target"), df["target"].to_numpy(np.float32))
        for col in FEATURES:
            want = reference(df, col, transform).to_numpy(np.float64)
            got = f.column(col)
            assert got.dtype == np.float32
            if transform == "rank":
                # The float32 of pandas' float64 rank, bit for bit.
                np.testing.assert_array_equal(got.view(np.uint32),
                                              want.astype(np.float32).view(np.uint32),
                                              err_msg=col)
            else:
                d = ulps(got, want)
                assert d.max() <= 1, (col, transform, np.flatnonzero(d > 1)[:5])


def test_float64_features_rank_as_pandas(universes, tmp_path):
    u, df = universes[0]
    f = build(u, str(tmp_path / "f64.spill"), "--no-float32", "--cs-transform", "rank")
    # float64 values as read (no float32 rounding): the reference from the files themselves.
    raw = pd.concat([pq.read_table(os.path.join(u, f"{s}.parquet")).to_pandas()
                     .assign(sym=s) for s in f.symbols], ignore_index=True)
    raw["ts"] = raw["ts"].astype("int64")
    raw = in_file_order(raw, f)
    for col in FEATURES:
        got = f.column(col)
        assert got.dtype == np.float64
        want = reference(raw, col, "rank").to_numpy(np.float64)
        np.testing.assert_array_equal(got.view(np.uint64), want.view(np.uint64), err_msg=col)


def test_the_keyword_reaches_the_build(universes, tmp_path):
    from spillway._options import options_json
    assert '"cs-transform": "winsorize=0.05"' in options_json(cs_transform="winsorize=0.05")
    with pytest.raises(TypeError, match="cs_transform"):
        options_json(cs_transform=0.05)
    u, _ = universes[0]
    out = str(tmp_path / "kw.spill")
    with pytest.raises(spillway.UsageError, match="--order time"):
        spillway.build(u, out, target="target", cs_transform="zscore")
    with pytest.raises(spillway.UsageError, match="winsorize=Q"):
        spillway.build(u, out, target="target", order="time", cs_transform="winsorize=0.5")
    assert not os.path.exists(out)
    summary = spillway.build(u, out, target="target", order="time", cs_transform="zscore")
    assert summary["order"] == "time"
    by_cli = build(u, str(tmp_path / "cli.spill"), "--cs-transform", "zscore")
    with open(out, "rb") as a, open(by_cli.path, "rb") as b:
        assert a.read() == b.read()
