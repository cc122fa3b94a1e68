#!/usr/bin/env python3
r"""Training epochs over a sharded dataset in a bucket, through the Python shard cache, against
the same epoch from local disk and the server's raw GETs of the same objects (issue 23 item 6).
Takes about 2 minutes on M on 2 cores, plus the dataset's build (about 15 s) the first time.

The dataset: the universe (default target/universe_M, 64 x 75k x 100, made by ../shared/anchors/
gen_universe.py as bench_object_storage.py does) built as 8 shards (`spillway build --shard I/8
--target target`, then `spillway manifest`) into ROOT/bench/m8/, kept between runs (--rebuild to
redo it). `s3kit serve --root ROOT --no-auth` serves that directory, so the local dataset and the
bucket's are the same files; per latency a `s3kit proxy --latency-ms N` sits in front of it (at
0 ms the jobs talk to the server directly). Then, interleaved per repeat and latency, each job a
separate process timed by ../shared/anchors/peers.py's `timed` (peak RSS under /usr/bin/time -v):

  local        open_dataset(ROOT/bench/m8/dataset.json), one epoch (page cache warm)
  bucket_cold  open_dataset("s3://bench/m8/dataset.json", cache_dir=<empty>, storage_options=
               endpoint, aws_allow_http, aws_skip_signature): the first epoch, every shard downloaded
  bucket_warm  the same in a second process over the cache the cold epoch left: the second epoch
  raw_get      s3kit get-ranges of the 8 whole shard objects at --concurrency C, for C in
               --concurrency (default 1,2,8; the cache downloads one shard at a time: see
               CACHE_CONCURRENCY)

An epoch is `for X, y in ds.batches(65536, shuffle="shards", seed=0)` with X and y summed (float64)
so every byte is read; its seconds run from open_dataset to the end of the loop, inside the process
(the process's wall time, interpreter start included, is recorded beside it). Every epoch's row
count and sums must equal the first local epoch's (same seed, same batches), a cold epoch must
download every shard once and a warm one none. In the bucket epochs the worker also times, by
wrapping the package's functions (not changing them): each download (`fetch`), each check of a
download (`check_shard`), and the reader's waits (`MappedShards.hold` and the wait for a
prefetch, `_claim`, on the iterating thread), so a slow epoch says where its time went.

Goals (per latency, medians): bucket_cold <= 1.2 x max(local, raw_get at the cache's concurrency);
bucket_warm <= 1.1 x local. Writes --json; render it into the docs with
scripts/render_bucket_epoch.py.

From the repo root, with release binaries (cargo build --release -p spillway -p s3kit) and a release
build of the package in its own venv (scripts/install-python.sh target/venv-bench):

  nice target/venv-bench/bin/python scripts/bench_bucket_epoch.py [--universe DIR] [--repeat 3]
      [--latencies 0,20] [--concurrency 1,2,8] [--json docs/bench/bucket-epoch.json]
"""
import argparse
import glob
import json
import os
import platform
import shutil
import subprocess
import sys
import threading
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "scripts"))
from bench_meta import finish, meta  # noqa: E402  (date, commit, machine, command)
from bench_object_storage import (ANCHORS, M_SHAPE, Daemon, arguments, peers,  # noqa: E402
                                  print_goals, sh)

BUCKET, PREFIX, SHARDS, BATCH_ROWS = "bench", "m8", 8, 65536
# python/spillway/_mapped.py, MappedShards.read: the reader downloads the first shard itself, then
# PREFETCH_THREADS (2) prefetch threads download the next `prefetch` shards not mapped yet, each a
# single streamed GET (native.download); the reader waits for a prefetch it needs. So up to two
# downloads at a time: the workers measure it (max_concurrent_downloads) to confirm.
CACHE_CONCURRENCY = 2
JOBS = ("local", "bucket_cold", "bucket_warm", "raw_get")
GOAL_COLD, GOAL_WARM = 1.2, 1.1


# -- the epoch, run in a child process ----------------------------------------------------------------
class Timeline:
    """Intervals (what, thread, start, end) of the wrapped calls, relative to `t0`."""

    def __init__(self):
        self.t0, self.events, self.lock = time.perf_counter(), [], threading.Lock()

    def wrap(self, what, fn):
        def timed(*args, **kw):
            t = time.perf_counter()
            try:
                return fn(*args, **kw)
            finally:
                e = time.perf_counter()
                with self.lock:
                    self.events.append((what, threading.current_thread().name, t - self.t0, e - self.t0))
        return timed

    def summary(self, reader):
        """Seconds per kind (the reader's waits apart), and the most downloads at once."""
        out = {}
        for what, th, a, b in self.events:
            key = f"reader_{what}" if what in ("hold", "claim") else what
            if what in ("hold", "claim") and th != reader:
                continue  # a prefetch's own hold is its download, counted as such
            out[key] = out.get(key, 0.0) + (b - a)
        out = {k: round(v, 3) for k, v in out.items()}
        out["reader_wait"] = round(out.get("reader_hold", 0) + out.get("reader_claim", 0), 3)
        edges = sorted([(a, 1) for w, _, a, _ in self.events if w == "download"]
                       + [(b, -1) for w, _, _, b in self.events if w == "download"])
        most = now = 0
        for _, d in edges:
            now += d
            most = max(most, now)
        out["max_concurrent_downloads"] = most
        out["downloads"] = [{"thread": th, "start": round(a, 3), "end": round(b, 3)}
                            for w, th, a, b in sorted(self.events, key=lambda e: e[2]) if w == "download"]
        return out


def w_epoch(manifest, cache_dir, endpoint):
    """One epoch; prints a JSON line: seconds, rows, batches, sums, cache stats, the timeline."""
    import numpy as np
    import spillway
    from spillway import _mapped as M
    from spillway import cache as C

    t0 = time.perf_counter()
    kw = {}
    if cache_dir:
        kw = {"cache_dir": cache_dir, "storage_options": {
            "aws_endpoint_url": endpoint, "aws_region": "us-east-1", "aws_allow_http": True,
            "aws_skip_signature": True}}
    ds = spillway.open_dataset(manifest, **kw)
    tl = Timeline() if ds.remote else None
    if tl:
        m = ds._remote
        m._fetch = tl.wrap("download", m._fetch)
        m.hold = tl.wrap("hold", m.hold)
        M._claim = tl.wrap("claim", M._claim)
        C.check_shard = tl.wrap("check", C.check_shard)
        tl.t0 = t0
    opened = time.perf_counter() - t0
    rows = batches = 0
    xsum = ysum = 0.0
    for X, y in ds.batches(BATCH_ROWS, shuffle="shards", seed=0):
        xsum += float(np.nansum(X, dtype=np.float64))
        ysum += float(np.nansum(y, dtype=np.float64))
        rows += len(X)
        batches += 1
    ds.close()
    out = {"seconds": round(time.perf_counter() - t0, 3), "open_s": round(opened, 3), "rows": rows,
           "batches": batches, "xsum": xsum, "ysum": ysum}
    if tl:
        out["stats"] = ds.cache.stats()
        out["phases"] = tl.summary(threading.current_thread().name)
    print(json.dumps(out))


# -- set-up -----------------------------------------------------------------------------------------
def build_dataset(a, dest):
    """The universe as SHARDS shards and dataset.json in `dest` (kept when already there)."""
    manifest = os.path.join(dest, "dataset.json")
    if os.path.exists(manifest) and not a.rebuild:
        return manifest, False
    shutil.rmtree(dest, ignore_errors=True)
    os.makedirs(dest)
    shards = []
    for i in range(SHARDS):
        out = os.path.join(dest, f"shard-{i}.spill")
        subprocess.run([a.spillway, "build", "--input", os.path.abspath(a.universe), "--shard", f"{i}/{SHARDS}",
                        "--target", "target", "--quiet", "--output", out], check=True)
        shards.append(out)
    subprocess.run([a.spillway, "manifest", *shards, "--output", manifest], check=True)
    return manifest, True


# -- the run ----------------------------------------------------------------------------------------
class Bench:
    def __init__(self, a, manifest, entries):
        self.a, self.manifest, self.entries = a, manifest, entries
        self.work = os.path.abspath(a.work)
        self.cache_dir = os.path.join(self.work, "cache")
        self.files = [os.path.join(os.path.dirname(manifest), e["path"]) for e in entries]
        self.bytes = sum(e["bytes"] for e in entries)
        self.runs, self.ref = [], None

    def job(self, name, lat, rep, cmd, config=None):
        r = peers.timed(cmd, self.a.timeout, 0)
        rec = {"job": name, "latency_ms": lat, "rep": rep, "wall_s": round(r["wall_s"], 3), "rc": r["rc"],
               "peak_rss_mib": round(r.get("maxrss_kb", 0) / 1024, 1),
               "peak_rss_anon_mib": r.get("sampled_peak_rss_anon_mib"),
               "user_s": r.get("user_s"), "sys_s": r.get("sys_s"), "ok": r["rc"] == 0 and not r["killed"]}
        if config is not None:
            rec["concurrency"] = config
        if rec["ok"]:
            rec.update(json.loads(r["stdout"].strip().splitlines()[-1]))
            rec["problems"] = self.check(name, rec)
        else:
            rec["stderr"], rec["problems"] = (r.get("stderr") or "")[-1500:], ["job failed"]
        rec["verified"] = rec["ok"] and not rec["problems"]
        self.runs.append(rec)
        label = name + (f" c={config}" if config is not None else "")
        extra = f"  {rec['problems']}" if rec["problems"] else ""
        extra += f"\n    stderr: {rec['stderr'][-600:]}" if not rec["ok"] else ""
        wait = rec.get("phases", {}).get("reader_wait")
        print(f"  {lat:>3} ms  rep {rep}  {label:<16} {rec.get('seconds', 0):7.2f} s (wall {rec['wall_s']:6.2f})"
              f" {rec['peak_rss_mib']:7.0f} MiB" + (f"  reader waited {wait:.2f} s" if wait is not None else "")
              + f"  {'ok' if rec['verified'] else 'NOT OK'}{extra}", flush=True)
        return rec

    def check(self, name, rec):
        if name == "raw_get":
            return [] if rec["bytes"] == self.bytes else [f"raw GET {rec['bytes']} bytes, not {self.bytes}"]
        got = (rec["rows"], rec["xsum"], rec["ysum"])
        if self.ref is None and name == "local":
            self.ref = got
        problems = [] if got == self.ref else [f"rows/sums {got} differ from the local epoch's {self.ref}"]
        if name != "local":
            s, want = rec["stats"], (SHARDS, self.bytes) if name == "bucket_cold" else (0, 0)
            if (s["downloads"], s["bytes_downloaded"]) != want:
                problems.append(f"downloaded {s['downloads']} shards, {s['bytes_downloaded']} bytes; expected {want}")
        return problems

    def epoch(self, name, lat, rep, front):
        url = f"s3://{BUCKET}/{PREFIX}/dataset.json"
        args = ["--manifest", self.manifest] if name == "local" else \
            ["--manifest", url, "--cache-dir", self.cache_dir, "--endpoint", front.info["endpoint"]]
        if name == "bucket_cold":
            shutil.rmtree(self.cache_dir, ignore_errors=True)
        return self.job(name, lat, rep, [sys.executable, __file__, "--worker", *args])

    def round(self, rep, lat, front):
        peers.warm_cache(self.files)
        self.epoch("local", lat, rep, front)
        self.epoch("bucket_cold", lat, rep, front)
        self.epoch("bucket_warm", lat, rep, front)
        for c in self.a.concurrency:
            self.job("raw_get", lat, rep, [self.a.s3kit, "get-ranges", "--endpoint", front.info["endpoint"],
                                           "--bucket", BUCKET, "--ranges", self.ranges, "--concurrency", str(c)],
                     config=c)

    def run(self, root):
        a = self.a
        self.ranges = os.path.join(self.work, "ranges.json")
        with open(self.ranges, "w") as fh:
            json.dump([{"key": f"{PREFIX}/{e['path']}", "start": 0, "end": e["bytes"]} for e in self.entries], fh)
        peers.warm_cache(self.files)
        print("  warming: one local epoch, untimed", flush=True)
        subprocess.run([sys.executable, __file__, "--worker", "--manifest", self.manifest], check=True,
                       stdout=subprocess.DEVNULL)
        log = open(os.path.join(self.work, "s3kit.log"), "a")
        daemons = [Daemon([a.s3kit, "serve", "--root", root, "--no-auth"], log)]
        try:
            fronts = {}
            for lat in a.latencies:
                if lat == 0:  # no added latency: straight to the server (a proxy costs CPU)
                    fronts[lat] = daemons[0]
                    continue
                fronts[lat] = Daemon([a.s3kit, "proxy", "--upstream", daemons[0].hostport,
                                      "--latency-ms", str(lat)], log)
                daemons.append(fronts[lat])
            for rep in range(a.repeat):
                for lat in a.latencies:
                    self.round(rep, lat, fronts[lat])
        finally:
            for d in reversed(daemons):
                d.stop()
            log.close()
            shutil.rmtree(self.cache_dir, ignore_errors=True)


# -- medians and goals ------------------------------------------------------------------------------
def median_run(runs):
    """The run of median `seconds` (lower median) with its counters; None if none ran."""
    ok = sorted((r for r in runs if r["ok"]), key=lambda r: r["seconds"])
    if not ok:
        return None
    m = dict(ok[(len(ok) - 1) // 2])
    m["runs"], m["all_seconds"] = len(runs), [r.get("seconds") for r in runs]
    m["peak_rss_mib_max"] = max(r["peak_rss_mib"] for r in ok)
    m["all_verified"] = all(r["verified"] for r in runs)
    return m


def summarise(runs, latencies, concurrencies, nbytes):
    medians, goals = {}, {}
    for lat in latencies:
        at = [r for r in runs if r["latency_ms"] == lat]
        med = {j: median_run([r for r in at if r["job"] == j]) for j in JOBS if j != "raw_get"}
        for c in concurrencies:
            med[f"raw_get_c{c}"] = median_run([r for r in at if r["job"] == "raw_get" and r["concurrency"] == c])
        for m in med.values():
            if m:
                m["mb_per_s"] = round(nbytes / 1e6 / m["seconds"], 1)
        medians[str(lat)] = med
        local, cold, warm = med["local"], med["bucket_cold"], med["bucket_warm"]
        raw = med.get(f"raw_get_c{CACHE_CONCURRENCY}")
        fastest = min((m for k, m in med.items() if k.startswith("raw_get") and m), key=lambda m: m["seconds"],
                      default=None)
        g = {}
        if cold and local and raw:
            bound = max(local["seconds"], raw["seconds"])
            g["cold"] = {"seconds": cold["seconds"], "local_s": local["seconds"], "raw_get_s": raw["seconds"],
                         "raw_concurrency": CACHE_CONCURRENCY, "bound_s": bound,
                         "ratio": round(cold["seconds"] / bound, 3), "goal": GOAL_COLD,
                         "met": cold["seconds"] <= GOAL_COLD * bound}
            if fastest:  # for information: against the server's best
                g["cold"]["vs_fastest_raw"] = {"concurrency": fastest["concurrency"], "seconds": fastest["seconds"],
                                               "ratio": round(cold["seconds"] / max(local["seconds"],
                                                                                    fastest["seconds"]), 3)}
        else:
            g["cold"] = {"met": False, "detail": "a job failed in every run"}
        if warm and local:
            g["warm"] = {"seconds": warm["seconds"], "local_s": local["seconds"],
                         "ratio": round(warm["seconds"] / local["seconds"], 3), "goal": GOAL_WARM,
                         "met": warm["seconds"] <= GOAL_WARM * local["seconds"]}
        else:
            g["warm"] = {"met": False, "detail": "a job failed in every run"}
        g["verified"] = {"met": all(m and m["all_verified"] for m in med.values())}
        goals[str(lat)] = g
    return medians, goals


def print_table(medians, goals):
    for lat, med in medians.items():
        print(f"\n{lat} ms added latency per request (medians)")
        print(f"  {'job':<14} {'epoch s':>8} {'wall s':>7} {'RSS MiB':>8} {'anon MiB':>9} {'MB/s':>7} "
              f"{'reader wait s':>13} {'downloads s':>11}")
        for j, m in med.items():
            if not m:
                print(f"  {j:<14} failed")
                continue
            ph = m.get("phases", {})
            print(f"  {j:<14} {m['seconds']:8.2f} {m['wall_s']:7.2f} {m['peak_rss_mib']:8.0f} "
                  f"{m['peak_rss_anon_mib'] or 0:9.0f} {m['mb_per_s']:7.0f} {ph.get('reader_wait', '-'):>13} "
                  f"{ph.get('download', '-'):>11}")
        print_goals(goals[lat])


def main():
    ap = arguments(__doc__)
    ap.add_argument("--concurrency", default="1,2,8", type=lambda s: sorted({int(x) for x in s.split(",")}),
                    help=f"raw GETs at these concurrencies ({CACHE_CONCURRENCY}, the cache's, is always added)")
    ap.add_argument("--timeout", type=float, default=900.0)
    ap.add_argument("--work", default="target/bench_bucket_epoch", help="server root (the dataset), cache, logs")
    ap.add_argument("--rebuild", action="store_true", help="build the dataset again even if it is there")
    ap.add_argument("--json", default="target/bench_bucket_epoch.json")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--manifest", help=argparse.SUPPRESS)
    ap.add_argument("--cache-dir", help=argparse.SUPPRESS)
    ap.add_argument("--endpoint", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.worker:
        return w_epoch(a.manifest, a.cache_dir, a.endpoint)
    a.concurrency = sorted(set(a.concurrency) | {CACHE_CONCURRENCY})
    a.spillway, a.s3kit = os.path.abspath(a.spillway), os.path.abspath(a.s3kit)
    for b in (a.spillway, a.s3kit):
        if not os.access(b, os.X_OK):
            raise SystemExit(f"{b}: not an executable")
    try:
        import spillway
        spillway._need_native()
    except ImportError as e:
        raise SystemExit(f"{sys.executable}: no spillway with its extension ({e}): scripts/install-python.sh VENV")
    if not glob.glob(os.path.join(a.universe, "*.parquet")):
        print(f"generating {a.universe} (64 x 75k x 100)", flush=True)
        subprocess.run([sys.executable, os.path.join(ANCHORS, "gen_universe.py"), a.universe, "--symbols", M_SHAPE[0],
                        "--rows", M_SHAPE[1], "--features", M_SHAPE[2], "--seed", "42"], check=True)
    root = os.path.join(os.path.abspath(a.work), "root")
    t = time.perf_counter()
    manifest, built = build_dataset(a, os.path.join(root, BUCKET, PREFIX))
    if built:
        print(f"built {SHARDS} shards in {time.perf_counter() - t:.0f} s", flush=True)
    with open(manifest) as fh:
        m = json.load(fh)
    entries = m["shards"]
    doc = {**meta(),
           "versions": {"spillway": sh([a.spillway, "--version"]), "python": platform.python_version(),
                        "package": os.path.dirname(spillway.__file__)},
           "settings": {"repeat": a.repeat, "latencies_ms": a.latencies, "concurrency": a.concurrency,
                        "cache_concurrency": CACHE_CONCURRENCY, "batch_rows": BATCH_ROWS, "shuffle": "shards",
                        "seed": 0, "prefetch": 2, "window": 2, "spillway": a.spillway, "s3kit": a.s3kit,
                        "python": sys.executable},
           "dataset": {"universe": os.path.abspath(a.universe), "shards": len(entries), "rows": m["nrows"],
                       "columns": len(m["schema"]), "bytes": sum(e["bytes"] for e in entries),
                       "shard_bytes": [e["bytes"] for e in entries]}}
    print(f"# {manifest}: {len(entries)} shards, {m['nrows']:,} rows, {doc['dataset']['bytes'] / 1e6:,.0f} MB; "
          f"latencies {a.latencies} ms, {a.repeat} repeats", flush=True)
    bench = Bench(a, manifest, entries)
    bench.run(root)
    finish(doc)
    doc["runs"] = bench.runs
    doc["medians"], doc["goals"] = summarise(bench.runs, a.latencies, a.concurrency, bench.bytes)
    os.makedirs(os.path.dirname(os.path.abspath(a.json)), exist_ok=True)
    with open(a.json, "w") as fh:
        json.dump(doc, fh, indent=1)
    print_table(doc["medians"], doc["goals"])
    print(f"\nwrote {a.json}; render with scripts/render_bucket_epoch.py {a.json}")
    return 0 if all(g["verified"]["met"] for g in doc["goals"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
