#!/usr/bin/env python3
"""What `spillway append` and `spillway compact` cost (issue 26), in ONE run, on one machine:

- **hive**: an M-like universe (`spillway gen`), each symbol's rows split by time into a hive
  layout, `symbol=<S>/part-0.parquet` (the first 99% of the timestamps) and `part-1.parquet` (the
  last 1%), pyarrow, zstd, row groups of gen's 65,536 rows. The time-major dataset is built from
  part-0 alone (`build --order time --shard 0/1` + `manifest`); then part-1 is added and
  `spillway append` timed against a full `build --order time` of the grown universe (runs
  alternating, the dataset restored to its first generation before each append; medians).
- **flat**: the same rows as flat `<S>.parquet` files: the dataset built from the first 99%
  (hard links to the hive's part-0 files), then every file rewritten with the grown rows, so the
  history check rebuilds every symbol's old rows; append against full build likewise.
- **appends**: a smaller universe whose timeline is cut into an initial 50% and --appends equal
  slices of the rest (one new hive part per symbol each); the dataset built from the first part,
  then one `spillway append` per slice (each timed), then `spillway compact` into one shard; an
  epoch (`spillway.open_dataset(manifest)` and every batch of 65,536 rows, in file order and
  block-shuffled) over the uncompacted dataset against the compacted one, runs alternating after
  a warm-up of each (warm page cache), each in its own process; the epochs' rows and sums must
  agree. The epochs read with this tree's Python package (`python/spillway`, over the installed
  package's native extension: see ``overlay``).

Every command is a separate process; its peak RSS is GNU time's `%M` (/usr/bin/time), and builds
and compactions also report their own VmHWM (`peak_rss_bytes` of their summaries).

    cargo build --release
    target/peers/bin/python scripts/bench_append.py --repeat 3 --json docs/bench/append.json
    python3 scripts/render_append.py docs/bench/append.json

Writes --json: date, commit, machine, command (scripts/bench_meta.py), versions, settings, per
case the universe, every run and the medians, the goals, and what was not measured.
scripts/render_append.py renders it into the performance chapter.
"""
import argparse
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_meta  # noqa: E402

REPO = bench_meta.REPO
GOALS = {"append_over_build": 0.05, "epoch_over_compacted": 1.05}
BATCH = 65536
ROW_GROUP = 65536
TIME = "/usr/bin/time"  # GNU time


def rel(path):
    p = os.path.abspath(path)
    return os.path.relpath(p, REPO) if p.startswith(REPO + os.sep) else path


def median(xs):
    xs = sorted(x for x in xs if x is not None)
    return None if not xs else (xs[(len(xs) - 1) // 2] + xs[len(xs) // 2]) / 2


def mib(n):
    return None if n is None else round(n / 2**20, 1)


def run(cmd, check=True, env=None):
    """Runs ``cmd`` as a child under GNU time: its wall seconds, its peak RSS (``%M``: a fork of
    this interpreter would inherit the interpreter's high-water mark, GNU time's does not) and
    its output."""
    with tempfile.NamedTemporaryFile("r", suffix=".time") as t:
        t0 = time.perf_counter()
        p = subprocess.run([TIME, "-f", "%M", "-o", t.name, *cmd], capture_output=True, stdin=subprocess.DEVNULL,
                           env=env)
        seconds = time.perf_counter() - t0
        kib = t.read().strip().splitlines()
    r = {"seconds": round(seconds, 3), "rc": p.returncode,
         "maxrss_mib": round(int(kib[-1]) / 1024, 1) if kib and kib[-1].isdigit() else None,
         "stdout": p.stdout.decode(errors="replace"), "stderr": p.stderr.decode(errors="replace")}
    if check and p.returncode != 0:
        raise SystemExit(f"failed ({p.returncode}): {' '.join(cmd)}\n{r['stderr']}")
    return r


def clean(r):
    """A run as the JSON keeps it (no captured output)."""
    return {k: v for k, v in r.items() if k not in ("stdout", "stderr")}


def metadata(path):
    """The length of the spill file's metadata block, and the block parsed (from its trailer)."""
    with open(path, "rb") as fh:
        fh.seek(-64, os.SEEK_END)
        offset, length = struct.unpack("<QQ", fh.read(16))
        fh.seek(offset)
        return length, json.loads(fh.read(length))


def tree_bytes(d):
    n = files = 0
    for root, _, names in os.walk(d):
        for x in names:
            n += os.path.getsize(os.path.join(root, x))
            files += 1
    return n, files


def read_through(d):
    """Reads every file under ``d`` once (the page cache warm)."""
    for root, _, names in os.walk(d):
        for x in names:
            with open(os.path.join(root, x), "rb", buffering=0) as fh:
                while fh.read(1 << 24):
                    pass


class Bench:
    def __init__(self, a):
        self.a = a
        self.bin = os.path.abspath(a.spillway)
        self.work = os.path.abspath(a.work)
        self.reader_env = None

    def sw(self, *args, check=True):
        return run([self.bin, *map(str, args)], check=check)

    # ------------------------------------------------------------------ universes
    def gen(self, out, symbols, rows, features):
        shutil.rmtree(out, ignore_errors=True)
        self.sw("gen", "--output", out, "--symbols", symbols, "--rows", rows, "--features", features)

    @staticmethod
    def times(flat):
        """The universe's distinct timestamps (int64 ns), sorted."""
        import numpy as np
        import pyarrow.parquet as pq
        ts = [pq.read_table(os.path.join(flat, f), columns=["ts"])["ts"].cast("int64").to_numpy(zero_copy_only=False)
              for f in sorted(os.listdir(flat)) if f.endswith(".parquet")]
        return np.unique(np.concatenate(ts))

    @staticmethod
    def split(flat, edges, dest):
        """Writes each symbol's rows of ``flat`` with time in ``(edges[k-1], edges[k]]`` (edges[-1]
        = -inf) as ``dest(k)/symbol=<S>/part-<k>.parquet`` (none when it has no row there)."""
        import numpy as np
        import pyarrow.compute as pc
        import pyarrow.parquet as pq
        for f in sorted(os.listdir(flat)):
            if not f.endswith(".parquet"):
                continue
            sym = f[: -len(".parquet")]
            t = pq.read_table(os.path.join(flat, f))
            ts = pc.fill_null(t["ts"].cast("int64"), np.iinfo(np.int64).min).to_numpy()
            part = np.searchsorted(np.asarray(edges), ts, side="left")
            for k in np.unique(part):
                rows = t.filter(part == k)
                d = os.path.join(dest(int(k)), f"symbol={sym}")
                os.makedirs(d, exist_ok=True)
                pq.write_table(rows, os.path.join(d, f"part-{int(k)}.parquet"), compression="zstd",
                               row_group_size=ROW_GROUP)

    def dataset(self, universe, dirname):
        """The time-major dataset of ``universe`` in one shard: (manifest, the build's run)."""
        shutil.rmtree(dirname, ignore_errors=True)
        os.makedirs(dirname)
        shard = os.path.join(dirname, "s0.spill")
        b = self.build(universe, shard, ["--shard", "0/1"])
        m = os.path.join(dirname, "dataset.json")
        self.sw("manifest", shard, "--output", m)
        return m, b

    def build(self, universe, out, extra=()):
        summary = out + ".summary.json"
        r = self.sw("build", "--input", universe, "--output", out, "--target", "target", "--order", "time",
                    "--quiet", "--summary", summary, *extra)
        with open(summary) as fh:
            s = json.load(fh)
        os.remove(summary)
        return {**clean(r), "rows": s["rows"], "build_seconds": round(s["seconds"], 3),
                "peak_rss_mib": mib(s.get("peak_rss_bytes"))}

    def append(self, manifest, universe):
        r = self.sw("append", manifest, "--input", universe, "--quiet", "--summary", "-")
        rep = json.loads(r["stdout"])
        return {**clean(r), "rows": rep["rows"], "shards": rep["shards"], "generation": rep["generation"],
                "history": {k: (len(v) if isinstance(v, list) else v) for k, v in rep["history"].items()}}

    @staticmethod
    def restore(manifest, base_bytes, appended):
        """The dataset back at its first generation: the appended shards and generation file gone."""
        d = os.path.dirname(manifest)
        for s in appended:
            os.remove(os.path.join(d, s))
        os.remove(os.path.join(d, "dataset.g1.json"))
        with open(manifest, "wb") as fh:
            fh.write(base_bytes)

    # ------------------------------------------------------------------ append vs build
    def append_vs_build(self, case, universe, grow, dsdir):
        """The dataset of ``universe`` as it is, then ``grow()``; appends and full builds of the grown
        universe, alternating."""
        m, base = self.dataset(universe, dsdir)
        with open(m, "rb") as fh:
            base_bytes = fh.read()
        grow()
        read_through(universe)
        full = os.path.join(self.work, f"{case}-full.spill")
        appends, builds = [], []
        for i in range(self.a.repeat):
            r = self.append(m, universe)
            self.sw("verify", m)
            appends.append(r)
            if i + 1 < self.a.repeat:
                self.restore(m, base_bytes, r["shards"])
            builds.append(self.build(universe, full))
            print(f"{case} run {i + 1}: append {r['seconds']:.2f} s, build {builds[-1]['seconds']:.2f} s",
                  file=sys.stderr)
        grown_rows = base["rows"] + appends[-1]["rows"]
        if grown_rows != builds[-1]["rows"]:
            raise SystemExit(f"{case}: the grown dataset has {grown_rows} rows, the full build {builds[-1]['rows']}")
        size, files = tree_bytes(universe)
        a_s, b_s = median(r["seconds"] for r in appends), median(r["seconds"] for r in builds)
        out = {"universe": {"dir": rel(universe), "bytes": size, "files": files}, "base_build": base,
               "appends": appends, "builds": builds, "append_s": a_s, "build_s": b_s, "ratio": a_s / b_s,
               "rows_before": base["rows"], "rows_appended": appends[-1]["rows"], "rows": grown_rows,
               "append_maxrss_mib": max(r["maxrss_mib"] for r in appends),
               "build_maxrss_mib": max(r["maxrss_mib"] for r in builds),
               "build_peak_rss_mib": max(r["peak_rss_mib"] or 0 for r in builds)}
        os.remove(full)
        shutil.rmtree(dsdir)
        return out

    def hive_and_flat(self, doc):
        """The hive case, then the flat one, on one generated universe. The disk holds at most the
        universe twice over (the flat copy replaces the hive one symbol by symbol) plus the
        dataset, a full build and its intermediate."""
        a = self.a
        import pyarrow as pa
        import pyarrow.parquet as pq
        flat = os.path.join(self.work, "m")
        self.gen(flat, a.symbols, a.rows, a.features)
        times = self.times(flat)
        cut = int(times[int(len(times) * (1 - a.tail)) - 1])
        hive, tail = os.path.join(self.work, "m-hive"), os.path.join(self.work, "m-hive-tail")
        for d in (hive, tail):
            shutil.rmtree(d, ignore_errors=True)
        self.split(flat, [cut], lambda k: hive if k == 0 else tail)
        size, files = tree_bytes(flat)
        doc["universe"] = {"gen": f"spillway gen --symbols {a.symbols} --rows {a.rows} --features {a.features}",
                           "bytes": size, "files": files, "timestamps": int(len(times)), "cut_ns": cut,
                           "tail": a.tail, "timestamps_after_cut": int((times > cut).sum())}
        shutil.rmtree(flat)

        def add_tail():
            for s in os.listdir(tail):
                os.rename(os.path.join(tail, s, "part-1.parquet"), os.path.join(hive, s, "part-1.parquet"))
            shutil.rmtree(tail)

        doc["hive"] = self.append_vs_build("hive", hive, add_tail, os.path.join(self.work, "ds-hive"))
        # Flat: hard links to the first 99% (the hive's part-0), then each file rewritten with the
        # grown rows (part-0 then part-1: the symbol's rows in time order), its hive parts removed.
        fl = os.path.join(self.work, "m-flat")
        shutil.rmtree(fl, ignore_errors=True)
        os.makedirs(fl)
        for s in sorted(os.listdir(hive)):
            os.link(os.path.join(hive, s, "part-0.parquet"), os.path.join(fl, s[len("symbol="):] + ".parquet"))

        def rewrite():
            for s in sorted(os.listdir(hive)):
                parts = sorted(os.listdir(os.path.join(hive, s)), key=lambda p: int(p[5:-8]))
                t = pa.concat_tables([pq.read_table(os.path.join(hive, s, p)) for p in parts])
                out = os.path.join(fl, s[len("symbol="):] + ".parquet")
                pq.write_table(t, out + ".tmp", compression="zstd", row_group_size=ROW_GROUP)
                os.replace(out + ".tmp", out)
                shutil.rmtree(os.path.join(hive, s))

        doc["flat"] = self.append_vs_build("flat", fl, rewrite, os.path.join(self.work, "ds-flat"))
        shutil.rmtree(fl)
        shutil.rmtree(hive, ignore_errors=True)

    # ------------------------------------------------------------------ many appends, compaction
    def epoch(self, manifest, shuffle):
        code = (
            "import json, sys, time\n"
            "t0 = time.perf_counter()\n"
            "import numpy as np, spillway\n"
            "t1 = time.perf_counter()\n"
            "ds = spillway.open_dataset(sys.argv[1])\n"
            "t2 = time.perf_counter()\n"
            "kw = {'shuffle': 'blocks', 'seed': 0} if sys.argv[2] == 'blocks' else {}\n"
            f"rows, total = 0, 0.0\n"
            f"for X, y in ds.batches({BATCH}, **kw):\n"
            "    rows += len(X); total += float(np.nansum(y, dtype=np.float64))\n"
            "t3 = time.perf_counter()\n"
            "print(json.dumps({'open_s': t2 - t1, 'batches_s': t3 - t2, 'rows': rows, 'sum': total,\n"
            "                  'shards': len(ds.shards) if hasattr(ds, 'shards') else None}))\n")
        r = run([self.a.python, "-c", code, manifest, shuffle], env=self.reader_env)
        e = json.loads(r["stdout"])
        return {"maxrss_mib": r["maxrss_mib"], "open_s": round(e["open_s"], 4), "batches_s": round(e["batches_s"], 4),
                "seconds": round(e["open_s"] + e["batches_s"], 4), "rows": e["rows"], "sum": e["sum"]}

    def many_appends(self, doc):
        a = self.a
        flat = os.path.join(self.work, "small")
        self.gen(flat, a.a_symbols, a.a_rows, a.a_features)
        times = self.times(flat)
        first = len(times) // 2
        rest = len(times) - first
        # Edge k (k >= 1) ends slice k: the initial half, then --appends slices of equal timestamps.
        edges = [int(times[first - 1])] + [int(times[first - 1 + (rest * k) // a.appends]) for k in range(1, a.appends)]
        hive, staged = os.path.join(self.work, "small-hive"), os.path.join(self.work, "small-staged")
        for d in (hive, staged):
            shutil.rmtree(d, ignore_errors=True)
        self.split(flat, edges, lambda k: hive if k == 0 else os.path.join(staged, str(k)))
        size, files = tree_bytes(flat)
        out = {"universe": {"gen": f"spillway gen --symbols {a.a_symbols} --rows {a.a_rows} --features {a.a_features}",
                            "symbols": a.a_symbols, "bytes": size, "files": files,
                            "timestamps": int(len(times)), "initial_timestamps": first},
               "appends": a.appends}
        dsdir = os.path.join(self.work, "ds-appends")
        m, out["initial"] = self.dataset(hive, dsdir)
        steps = []
        for k in range(1, a.appends + 1):
            src = os.path.join(staged, str(k))
            for s in os.listdir(src):
                os.rename(os.path.join(src, s, f"part-{k}.parquet"), os.path.join(hive, s, f"part-{k}.parquet"))
            r = self.append(m, hive)
            steps.append({"seconds": r["seconds"], "maxrss_mib": r["maxrss_mib"], "rows": r["rows"],
                          "trusted": r["history"]["trusted"]})
            if k % 25 == 0:
                print(f"append {k}/{a.appends}: {r['seconds']:.2f} s", file=sys.stderr)
        shutil.rmtree(staged)
        self.sw("verify", m)
        secs = [s["seconds"] for s in steps]
        ten = max(1, len(secs) // 10)
        out["steps"] = steps
        out["step_s"] = {"median": median(secs), "max": max(secs), "first": median(secs[:ten]),
                         "last": median(secs[-ten:]), "total": round(sum(secs), 2), "of": ten}
        out["step_maxrss_mib"] = max(s["maxrss_mib"] for s in steps)
        with open(m) as fh:
            shards = [os.path.join(dsdir, e["path"]) for e in json.load(fh)["shards"]]
        out["shards_before"] = len(shards)
        lengths = [metadata(p)[0] for p in shards]
        stamp = metadata(shards[-1])[1]["build"]["inputs"]["stamp"]
        out["metadata_bytes"] = {"total": sum(lengths), "first": lengths[0], "last": lengths[-1],
                                 "last_stamp": len(json.dumps(stamp, separators=(",", ":"))),
                                 "last_stamp_files": len(stamp)}
        uncompacted = os.path.join(dsdir, "uncompacted.json")
        shutil.copyfile(m, uncompacted)
        r = self.sw("compact", m, "--quiet", "--summary", "-")
        rep = json.loads(r["stdout"])
        out["compact"] = {**clean(r), "shards": len(rep["shards"]), "bytes": rep["bytes"],
                          "metadata_bytes": sum(metadata(os.path.join(dsdir, p))[0] for p in rep["shards"]),
                          "generation": rep["generation"], "peak_rss_mib": mib(rep.get("peak_rss_bytes"))}
        out["verify_deep"] = clean(self.sw("verify", "--deep", m))
        # Epochs: a warm-up of each, then runs alternating.
        epochs = {(w, s): [] for w in ("uncompacted", "compacted") for s in ("seq", "blocks")}
        for w, path in (("uncompacted", uncompacted), ("compacted", m)):
            read_through(dsdir)
            self.epoch(path, "seq")
        for _ in range(a.repeat):
            for s in ("seq", "blocks"):
                for w, path in (("uncompacted", uncompacted), ("compacted", m)):
                    epochs[(w, s)].append(self.epoch(path, s))
        for s in ("seq", "blocks"):
            got = {(e["rows"], round(e["sum"], 3)) for w in ("uncompacted", "compacted") for e in epochs[(w, s)]}
            if len(got) != 1:
                raise SystemExit(f"epochs disagree ({s}): {got}")
        out["epochs"] = {}
        for s in ("seq", "blocks"):
            u, c = epochs[("uncompacted", s)], epochs[("compacted", s)]
            out["epochs"][s] = {
                "uncompacted": u, "compacted": c,
                "uncompacted_s": median(e["seconds"] for e in u), "compacted_s": median(e["seconds"] for e in c),
                "uncompacted_batches_s": median(e["batches_s"] for e in u),
                "compacted_batches_s": median(e["batches_s"] for e in c),
                "rows": u[0]["rows"]}
            x = out["epochs"][s]
            x["ratio"] = x["uncompacted_s"] / x["compacted_s"]
            x["ratio_batches"] = x["uncompacted_batches_s"] / x["compacted_batches_s"]
        doc["appends"] = out
        if not a.keep:
            for d in (dsdir, hive, flat):
                shutil.rmtree(d)


def overlay(python, work):
    """A package directory holding this tree's Python sources (``python/spillway``) over the
    installed package's native extension, so that the epochs read with this tree's reader: its
    PYTHONPATH environment, and the installed package's directory."""
    code = "import os, spillway; print(os.path.dirname(spillway.__file__))"
    installed = run([python, "-c", code])["stdout"].strip()
    pkg = os.path.join(work, "pyoverlay", "spillway")
    shutil.rmtree(os.path.dirname(pkg), ignore_errors=True)
    os.makedirs(pkg)
    tree = os.path.join(REPO, "python", "spillway")
    for name in os.listdir(tree):
        if name.endswith(".py") or name == "py.typed":
            os.symlink(os.path.realpath(os.path.join(tree, name)), os.path.join(pkg, name))
    for name in os.listdir(installed):
        if name.startswith("_native") and name.endswith(".so"):
            os.symlink(os.path.join(installed, name), os.path.join(pkg, name))
    return {**os.environ, "PYTHONPATH": os.path.dirname(pkg)}, installed


def versions(python, env, installed):
    out = {"spillway_cli": run([os.path.join(REPO, "target/release/spillway"), "--version"])["stdout"].strip()}
    code = ("import json, os, sys, numpy, pyarrow, spillway; print(json.dumps({'python': sys.version.split()[0], "
            "'numpy': numpy.__version__, 'pyarrow': pyarrow.__version__, 'spillway': spillway.__version__, "
            "'reader': os.path.dirname(os.path.realpath(spillway.dataset.__file__))}))")
    v = json.loads(run([python, "-c", code], env=env)["stdout"])
    v["reader"] = rel(v["reader"])
    v["native_extension"] = rel(installed)
    return {**out, **v}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--spillway", default=os.path.join(REPO, "target/release/spillway"))
    ap.add_argument("--python", default=sys.executable, help="the interpreter of the epochs (spillway, numpy)")
    ap.add_argument("--work", default=os.path.join(REPO, "target/bench-append"))
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--symbols", type=int, default=64)
    ap.add_argument("--rows", type=int, default=75000)
    ap.add_argument("--features", type=int, default=100)
    ap.add_argument("--tail", type=float, default=0.01, help="the share of timestamps appended (hive, flat)")
    ap.add_argument("--a-symbols", type=int, default=64)
    ap.add_argument("--a-rows", type=int, default=25000)
    ap.add_argument("--a-features", type=int, default=20)
    ap.add_argument("--appends", type=int, default=250)
    ap.add_argument("--only", choices=("append", "appends"), help="run one part only (append: hive and flat)")
    ap.add_argument("--keep", action="store_true", help="keep the appended dataset and its universe")
    ap.add_argument("--json", default=os.path.join(REPO, "docs/bench/append.json"))
    a = ap.parse_args()
    os.makedirs(a.work, exist_ok=True)
    b = Bench(a)
    b.reader_env, installed = overlay(a.python, b.work)
    doc = {**bench_meta.meta(), "versions": versions(a.python, b.reader_env, installed),
           "settings": {"repeat": a.repeat, "batch_rows": BATCH, "row_group_rows": ROW_GROUP,
                        "binary": rel(a.spillway), "python": rel(a.python), "goals": GOALS},
           "disk_free_gib": round(shutil.disk_usage(a.work).free / 2**30, 1), "skipped": {}}
    if a.only != "appends":
        b.hive_and_flat(doc)
    else:
        doc["skipped"]["hive, flat"] = "not run (--only appends)"
    if a.only != "append":
        b.many_appends(doc)
    else:
        doc["skipped"]["appends"] = "not run (--only append)"
    goals = {}
    if "hive" in doc:
        goals["hive"] = {"goal": GOALS["append_over_build"], "ratio": doc["hive"]["ratio"],
                         "met": doc["hive"]["ratio"] <= GOALS["append_over_build"]}
    if "appends" in doc:
        r = doc["appends"]["epochs"]["seq"]["ratio"]
        goals["epoch"] = {"goal": GOALS["epoch_over_compacted"], "ratio": r, "met": r <= GOALS["epoch_over_compacted"]}
    doc["goals"] = goals
    bench_meta.finish(doc)
    bench_meta.write_json(doc, a.json)
    print(f"wrote {rel(a.json)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
