#!/usr/bin/env python3
r"""spillway from object storage against its peers and the server's raw speed (design doc
object-storage.md 12.4, issue 22 item 7). Takes minutes: roughly 10 on M on 2 cores, 30+ with --sweep.

One run: the universe (default target/universe_M, 64 x 75k x 100, made by ../shared/anchors/
gen_universe.py as bench_peers.sh does) is hard-linked into ROOT/bench/m and served by
`s3kit serve` (SigV4, for spillway and the peers) and by a second `s3kit serve --no-auth` over the
same root (for the raw GETs, which are unsigned); per latency a `s3kit proxy --latency-ms N` sits in
front of each (at 0 ms the jobs talk to the servers directly). Then, interleaved per repeat and latency, each job a separate process timed by
../shared/anchors/peers.py's `timed` (wall and peak RSS under /usr/bin/time -v, page cache warmed):

  spillway_s3     spillway build --input s3://bench/m/ (credentials in AWS_*), --summary FILE
  spillway_local  spillway build --input DIR (latency-independent; run every round for pairing)
  polars_s3       pl.scan_parquet("s3://bench/m/*.parquet", storage_options=..., include_file_paths)
                  + symbol from the path + cast Float32 + .sink_ipc (peers.py polars_scan_sink_ipc)
  pyarrow_s3      pyarrow.dataset over S3FileSystem(endpoint_override=...), batches cast to float32
                  and written with pa.ipc.new_file (peers.py pyarrow_stream, dataset readahead)
  raw_get         s3kit get-ranges: every column chunk and footer of every file (what a full build
                  reads, from the parquet metadata), contiguous runs cut at request_size, with
                  concurrency = readers (summary budget.readers) x requests_in_flight
  --sweep         spillway_s3 at requests_in_flight {1,2,4,8,16} x request_size {1,2,4,8}MiB

Verified: spillway_local against the inputs (rows, sums, symbol runs; scripts/peers_verify.py),
every spillway_s3 output column by column (bytes) against the first local output, polars/pyarrow
IPC outputs by peers.py's verify_output. Goals (per latency, medians): spillway_s3 <= 0.6x the
fastest peer; >= 70% (0 ms) / 50% (otherwise) of local throughput, or <= 1.2x the raw GET time;
peak RSS <= 256 MiB; bytes_fetched <= 1.05x bytes_needed. Writes --json; render it into the docs
with scripts/render_object_storage.py.

From the repo root, with release binaries (cargo build --release; cargo build --release -p s3kit):

  target/venv/bin/python scripts/bench_object_storage.py [--universe DIR] [--spillway BIN]
      [--s3kit BIN] [--repeat 3] [--latencies 0,20] [--sweep] [--json target/bench_object_storage.json]
"""
import argparse
import glob
import json
import os
import platform
import shutil
import struct
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ANCHORS = os.path.join(REPO, "..", "shared", "anchors")
sys.path.insert(0, ANCHORS)
sys.path.insert(0, os.path.join(REPO, "spill", "python"))
import peers  # noqa: E402  (timed, reference, verify_output, warm_cache)
sys.path.insert(0, os.path.join(REPO, "scripts"))
from bench_meta import finish, meta  # noqa: E402  (date, commit, machine, command)

BUCKET, PREFIX = "bench", "m"
M_SHAPE = ("64", "75000", "100")
MIB = 2**20
SWEEP_RIF, SWEEP_RS = (1, 2, 4, 8, 16), (1, 2, 4, 8)
PEER_JOBS = ("polars_s3", "pyarrow_s3")
JOBS = ("spillway_s3", "spillway_local") + PEER_JOBS + ("raw_get",)


# -- the peers' jobs, run in a child process (credentials and endpoint in AWS_*) ------------------
def _floats(names):
    return ["target"] + [n for n in names if n not in ("ts", "target", "symbol", "_path")]


def w_polars(out):
    import polars as pl
    e = os.environ
    so = {"aws_endpoint_url": e["AWS_ENDPOINT_URL"], "aws_access_key_id": e["AWS_ACCESS_KEY_ID"],
          "aws_secret_access_key": e["AWS_SECRET_ACCESS_KEY"], "aws_region": e["AWS_REGION"],
          "aws_allow_http": "true"}
    lf = pl.scan_parquet(f"s3://{BUCKET}/{PREFIX}/*.parquet", storage_options=so, include_file_paths="_path")
    floats = _floats(lf.collect_schema().names())
    (lf.with_columns(pl.col("_path").str.extract(r"([^/]+)\.parquet$", 1).alias("symbol"),
                     *[pl.col(c).cast(pl.Float32) for c in floats])
       .select(["symbol", "ts"] + floats).sink_ipc(out))


def w_pyarrow(out):
    import pyarrow as pa
    import pyarrow.dataset as ds
    import pyarrow.fs as pafs
    e = os.environ
    # pyarrow ignores AWS_ENDPOINT_URL (apache/arrow#49643): pass endpoint_override.
    fs = pafs.S3FileSystem(access_key=e["AWS_ACCESS_KEY_ID"], secret_key=e["AWS_SECRET_ACCESS_KEY"],
                           region=e["AWS_REGION"], scheme="http",
                           endpoint_override=e["AWS_ENDPOINT_URL"].split("://", 1)[1])
    d = ds.dataset(f"{BUCKET}/{PREFIX}", filesystem=fs, format="parquet")
    floats = _floats(d.schema.names)
    ts_type = d.schema.field("ts").type
    schema = pa.schema([("symbol", pa.string()), ("ts", ts_type)] + [(c, pa.float32()) for c in floats])
    cols = {"ts": ds.field("ts"), **{c: ds.field(c).cast(pa.float32()) for c in floats}}
    with pa.OSFile(out, "wb") as sink, pa.ipc.new_file(sink, schema) as w:
        for tb in d.scanner(columns=cols, batch_size=65536).scan_batches():
            b, sym = tb.record_batch, os.path.basename(tb.fragment.path)[: -len(".parquet")]
            w.write_batch(pa.RecordBatch.from_arrays([pa.array([sym] * b.num_rows, pa.string())] + b.columns,
                                                     schema=schema))


# -- set-up -----------------------------------------------------------------------------------------
def sh(cmd):
    return subprocess.run(cmd, capture_output=True, text=True).stdout.strip()


def link_universe(files, root):
    """ROOT/bench/m/<file> as hard links (the server does not follow a symlinked directory), else copies."""
    dest = os.path.join(root, BUCKET, PREFIX)
    shutil.rmtree(root, ignore_errors=True)
    os.makedirs(dest)
    for f in files:
        try:
            os.link(f, os.path.join(dest, os.path.basename(f)))
        except OSError:
            shutil.copy2(f, dest)


def byte_ranges(files, piece):
    """What a full build reads: every column chunk and the footer of every file, contiguous runs
    merged and cut into pieces of at most `piece` bytes. [{"key","start","end"}], bytes."""
    import pyarrow.parquet as pq
    out, total = [], 0
    for f in files:
        size = os.path.getsize(f)
        with open(f, "rb") as fh:
            fh.seek(size - 8)
            footer = struct.unpack("<i", fh.read(4))[0] + 8
        spans = [(size - footer, size)]
        md = pq.ParquetFile(f).metadata
        for g in range(md.num_row_groups):
            for c in range(md.num_columns):
                cc = md.row_group(g).column(c)
                start = cc.data_page_offset
                if cc.has_dictionary_page and cc.dictionary_page_offset:
                    start = cc.dictionary_page_offset
                spans.append((start, start + cc.total_compressed_size))
        merged = []
        for a, b in sorted(spans):
            if merged and a <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], b)
            else:
                merged.append([a, b])
        for a, b in merged:
            total += b - a
            for s in range(a, b, piece):
                out.append({"key": f"{PREFIX}/{os.path.basename(f)}", "start": s, "end": min(b, s + piece)})
    return out, total


class Daemon:
    """`s3kit serve|proxy`: reads its JSON line; runs until we close its stdin."""

    def __init__(self, argv, log):
        self.p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, text=True,
                                  env=dict(os.environ, RUST_BACKTRACE="0"))
        line = self.p.stdout.readline()
        if not line:
            raise SystemExit(f"{' '.join(argv[:2])} did not start (see {log.name})")
        self.info = json.loads(line)
        self.hostport = self.info["endpoint"].split("://", 1)[1]

    def stop(self):
        self.p.stdin.close()
        try:
            self.p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.p.kill()


# -- verification (untimed) -------------------------------------------------------------------------
def same_spill(a, b):
    """Problems (empty: equal) comparing two spill files column by column, byte for byte."""
    import spillfile
    fa, fb = spillfile.open(a), spillfile.open(b)
    if fa.columns != fb.columns or fa.nrows != fb.nrows:
        return [f"shape differs: {len(fa.columns)} x {fa.nrows} vs {len(fb.columns)} x {fb.nrows}"]
    if dict(fa.symbol_ranges) != dict(fb.symbol_ranges):
        return ["symbol ranges differ"]
    return [f"column {c} differs" for c in fa.columns if fa.column(c).tobytes() != fb.column(c).tobytes()]


# -- the run ----------------------------------------------------------------------------------------
class Bench:
    def __init__(self, a, files, ref):
        self.a, self.files, self.ref = a, files, ref
        self.work = os.path.abspath(a.work)
        self.out = os.path.join(self.work, "out")
        os.makedirs(self.out, exist_ok=True)
        self.local_ref = os.path.join(self.work, "local_reference.spill")
        self.runs, self.readers, self.ranges = [], None, {}

    def spill_cmd(self, src, out, summary, opts=()):
        cmd = [self.a.spillway, "build", "--input", src, "--output", out, "--target", "target", "--quiet",
               "--summary", summary]
        for kv in opts:
            cmd += ["--storage-option", kv]
        return cmd

    def job(self, name, lat, rep, cmd, env=None, out=None, config=None):
        peers.warm_cache(self.files)
        for p in (out, out and out + ".summary.json"):
            if p and os.path.exists(p):
                os.remove(p)
        r = peers.timed(cmd, self.a.timeout, 0, env=env)
        rec = {"job": name, "latency_ms": lat, "rep": rep, "wall_s": r["wall_s"], "rc": r["rc"],
               "peak_rss_mib": round(r.get("maxrss_kb", 0) / 1024, 1), "user_s": r.get("user_s"),
               "sys_s": r.get("sys_s"), "ok": r["rc"] == 0 and not r["killed"]}
        if config:
            rec["config"] = config
        if not rec["ok"]:
            rec["stderr"] = (r.get("stderr") or "")[-1500:]
        rec["problems"] = self.check(name, rec, r, out) if rec["ok"] else ["job failed"]
        rec["verified"] = rec["ok"] and not rec["problems"]
        self.runs.append(rec)
        extra = f"  {rec['problems']}" if rec["problems"] else ""
        extra += f"\n    stderr: {rec['stderr'][-600:]}" if not rec["ok"] else ""
        print(f"  {lat:>3} ms  rep {rep}  {name + (' ' + config if config else ''):<34} {rec['wall_s']:8.2f} s "
              f"{rec['peak_rss_mib']:8.0f} MiB  {'ok' if rec['verified'] else 'NOT OK'}{extra}", flush=True)
        return rec

    def check(self, name, rec, r, out):
        if name == "raw_get":
            got = json.loads(r["stdout"].strip().splitlines()[-1])
            rec.update(raw_seconds=got["seconds"], bytes_fetched=got["bytes"], requests=got["requests"])
            return [] if got["bytes"] == self.ranges[self.a.request_size][1] else ["raw GET byte count differs"]
        problems = []
        if name.startswith("spillway"):
            with open(out + ".summary.json") as fh:
                s = json.load(fh)
            os.remove(out + ".summary.json")
            rec.update(rows=s.get("rows"), summary_seconds=s.get("seconds"),
                       summary_peak_rss_mib=round(s.get("peak_rss_bytes", 0) / MIB, 1),
                       readers=s.get("budget", {}).get("readers"))
            rec.update({k: v for k, v in (s.get("object_storage") or {}).items() if k != "url"})
            if name == "spillway_local" and not os.path.exists(self.local_ref):
                ok, det = peers.verify_with_command(
                    f"{sys.executable} {os.path.join(REPO, 'scripts', 'peers_verify.py')} {{output}}", out, self.ref)
                problems += det["problems"]
                os.replace(out, self.local_ref)
            else:
                problems += same_spill(out, self.local_ref)
        else:
            ok, det = peers.verify_output(out, self.ref)
            problems += det["problems"]
            rec["rows"] = det.get("rows")
        if out and os.path.exists(out):
            os.remove(out)
        return problems

    def round(self, rep, lat, front, raw):
        a, env = self.a, {"AWS_ENDPOINT_URL": front.info["endpoint"], "AWS_ACCESS_KEY_ID": self.key,
                          "AWS_SECRET_ACCESS_KEY": self.secret, "AWS_REGION": "us-east-1", "AWS_ALLOW_HTTP": "true"}
        # local first: its first output is the reference every s3 output is compared with
        o = os.path.join(self.out, "spillway_local.spill")
        cmd = self.spill_cmd(os.path.abspath(a.universe), o, o + ".summary.json")
        self.job("spillway_local", lat, rep, cmd, None, o)
        url, o = f"s3://{BUCKET}/{PREFIX}/", os.path.join(self.out, "spillway_s3.spill")
        opts = [f"requests_in_flight={a.requests_in_flight}", f"request_size={a.request_size // MIB}MiB"]
        s3 = self.job("spillway_s3", lat, rep, self.spill_cmd(url, o, o + ".summary.json", opts), env, o)
        for name, fn in (("polars_s3", "polars"), ("pyarrow_s3", "pyarrow")):
            o = os.path.join(self.out, name + ".arrow")
            self.job(name, lat, rep, [sys.executable, __file__, "--worker", fn, "--output", o], env, o)
        self.readers = self.readers or s3.get("readers") or min(os.cpu_count(), len(self.files))
        conc = self.readers * a.requests_in_flight
        rf = os.path.join(self.work, f"ranges_{a.request_size}.json")
        self.job("raw_get", lat, rep, [a.s3kit, "get-ranges", "--endpoint", raw.info["endpoint"], "--bucket", BUCKET,
                                       "--ranges", rf, "--concurrency", str(conc)], config=f"concurrency={conc}")
        if a.sweep:
            for rif in SWEEP_RIF:
                for rs in SWEEP_RS:
                    o = os.path.join(self.out, "sweep.spill")
                    cmd = self.spill_cmd(url, o, o + ".summary.json",
                                         [f"requests_in_flight={rif}", f"request_size={rs}MiB"])
                    self.job("spillway_s3_sweep", lat, rep, cmd, env, o, config=f"rif={rif},rs={rs}MiB")

    def run(self):
        a, root = self.a, os.path.join(self.work, "root")
        link_universe(self.files, root)
        self.ranges[a.request_size] = byte_ranges(self.files, a.request_size)
        with open(os.path.join(self.work, f"ranges_{a.request_size}.json"), "w") as fh:
            json.dump(self.ranges[a.request_size][0], fh)
        log = open(os.path.join(self.work, "s3kit.log"), "a")
        daemons = [Daemon([a.s3kit, "serve", "--root", root], log),  # SigV4: spillway and the peers
                   Daemon([a.s3kit, "serve", "--root", root, "--no-auth"], log)]  # unsigned: get-ranges
        self.key, self.secret = daemons[0].info["key"], daemons[0].info["secret"]
        try:
            proxies = {}
            for lat in a.latencies:
                if lat == 0:  # no added latency: straight to the servers (a proxy costs CPU)
                    proxies[lat] = daemons[:2]
                    continue
                proxies[lat] = [Daemon([a.s3kit, "proxy", "--upstream", d.hostport, "--latency-ms", str(lat)], log)
                                for d in daemons[:2]]
                daemons += proxies[lat]
            for rep in range(a.repeat):
                for lat in a.latencies:
                    self.round(rep, lat, *proxies[lat])
        finally:
            for d in reversed(daemons):
                d.stop()
            log.close()
            if os.path.exists(self.local_ref):
                os.remove(self.local_ref)


# -- medians and goals ------------------------------------------------------------------------------
def median_run(runs):
    """The run of median wall time (lower median), its RSS and counters with it; None if none ran."""
    ok = sorted((r for r in runs if r["ok"]), key=lambda r: r["wall_s"])
    if not ok:
        return None
    m = dict(ok[(len(ok) - 1) // 2])
    m["runs"], m["walls"] = len(runs), [r["wall_s"] for r in runs]
    m["peak_rss_mib_max"] = max(r["peak_rss_mib"] for r in ok)
    m["all_verified"] = all(r["verified"] for r in runs)
    return m


def summarise(runs, latencies, input_bytes, plan_bytes):
    medians, goals, sweep = {}, {}, {}
    for lat in latencies:
        at = [r for r in runs if r["latency_ms"] == lat]
        med = {j: median_run([r for r in at if r["job"] == j]) for j in JOBS if any(r["job"] == j for r in at)}
        for j, m in med.items():
            if m:  # universe MB over wall time (the raw GETs: over their own timing)
                m["mb_per_s"] = round(input_bytes / 1e6 / (m["raw_seconds"] if j == "raw_get" else m["wall_s"]), 1)
        medians[str(lat)] = med
        sw = {}
        for r in at:
            if r["job"] == "spillway_s3_sweep":
                sw.setdefault(r["config"], []).append(r)
        sweep[str(lat)] = {c: median_run(rs) for c, rs in sw.items()}
        s3, local, raw = med.get("spillway_s3"), med.get("spillway_local"), med.get("raw_get")
        peer = [(med[p]["wall_s"], p) for p in PEER_JOBS if med.get(p) and med[p]["all_verified"]]
        if not s3:
            goals[str(lat)] = {"ran": {"met": False, "detail": "spillway_s3 failed in every run"}}
            continue
        g = {}
        if peer:
            best = min(peer)
            g["vs_fastest_peer"] = {"peer": best[1], "ratio": round(s3["wall_s"] / best[0], 3), "goal": 0.6,
                                    "met": s3["wall_s"] / best[0] <= 0.6}
        need = 0.7 if lat == 0 else 0.5
        share = local["wall_s"] / s3["wall_s"] if local else None
        raw_ratio = s3["wall_s"] / raw["raw_seconds"] if raw else None
        g["throughput"] = {"share_of_local": share and round(share, 3), "goal_share": need,
                           "vs_raw_get": raw_ratio and round(raw_ratio, 3), "goal_raw": 1.2,
                           "met_by": "local" if share and share >= need else
                           ("raw" if raw_ratio and raw_ratio <= 1.2 else None)}
        g["throughput"]["met"] = g["throughput"]["met_by"] is not None
        g["peak_rss"] = {"mib": s3["peak_rss_mib_max"], "goal": 256, "met": s3["peak_rss_mib_max"] <= 256}
        if s3.get("bytes_needed"):
            ratio = s3["bytes_fetched"] / s3["bytes_needed"]
            g["bytes"] = {"fetched": s3["bytes_fetched"], "needed": s3["bytes_needed"], "ratio": round(ratio, 4),
                          "goal": 1.05, "met": ratio <= 1.05,  # and, for information, against the plan:
                          "vs_plan": round(s3["bytes_fetched"] / plan_bytes, 4)}
        g["verified"] = {"met": all(m["all_verified"] for m in med.values() if m)}
        goals[str(lat)] = g
    return medians, goals, sweep


def print_table(medians, goals):
    for lat, med in medians.items():
        print(f"\n{lat} ms added latency per request (medians)")
        print(f"  {'job':<16} {'wall s':>8} {'RSS MiB':>8} {'MB/s':>8} {'requests':>9} {'fetched/needed':>15}")
        for j, m in med.items():
            if not m:
                print(f"  {j:<16} failed")
                continue
            fn = f"{m['bytes_fetched'] / m['bytes_needed']:.3f}" if m.get("bytes_needed") else "-"
            wall = m.get("raw_seconds") if j == "raw_get" else m["wall_s"]
            print(f"  {j:<16} {wall:8.2f} {m['peak_rss_mib']:8.0f} {m['mb_per_s']:8.0f} "
                  f"{m.get('requests') or '-':>9} {fn:>15}")
        print_goals(goals[lat])


def print_goals(goals):
    """One line per goal of one latency: met or not, and its figures."""
    for k, g in goals.items():
        rest = json.dumps({x: y for x, y in g.items() if x != "met"})
        print(f"  goal {k}: {'met' if g.get('met') else 'NOT MET'}  {rest}")


def arguments(doc):
    """The arguments both object-storage benches take."""
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--universe", default="target/universe_M")
    ap.add_argument("--spillway", default="target/release/spillway")
    ap.add_argument("--s3kit", default="target/release/s3kit", help="cargo build --release -p s3kit")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--latencies", default="0,20", type=lambda s: [int(x) for x in s.split(",")])
    return ap


def main():
    ap = arguments(__doc__)
    ap.add_argument("--sweep", action="store_true")
    ap.add_argument("--requests-in-flight", type=int, default=8, help="spillway_s3's setting (and the raw GET's)")
    ap.add_argument("--request-size-mib", type=int, default=4)
    ap.add_argument("--timeout", type=float, default=900.0)
    ap.add_argument("--work", default="target/bench_object_storage", help="server root, outputs, logs")
    ap.add_argument("--json", default="target/bench_object_storage.json")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--output", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.worker:
        return {"polars": w_polars, "pyarrow": w_pyarrow}[a.worker](a.output)
    a.request_size = a.request_size_mib * MIB
    a.spillway, a.s3kit = os.path.abspath(a.spillway), os.path.abspath(a.s3kit)
    for b in (a.spillway, a.s3kit):
        if not os.access(b, os.X_OK):
            raise SystemExit(f"{b}: not an executable")
    if "storage-option" not in sh([a.spillway, "build", "--help"]):
        raise SystemExit(f"{a.spillway} has no object-storage input (--storage-option); rebuild it")
    if not glob.glob(os.path.join(a.universe, "*.parquet")):
        print(f"generating {a.universe} (64 x 75k x 100)", flush=True)
        subprocess.run([sys.executable, os.path.join(ANCHORS, "gen_universe.py"), a.universe, "--symbols", M_SHAPE[0],
                        "--rows", M_SHAPE[1], "--features", M_SHAPE[2], "--seed", "42"], check=True)
    files = peers.universe_files(a.universe)
    ref = peers.reference(a.universe)
    import polars
    import pyarrow
    doc = {**meta(),
           "versions": {"spillway": sh([a.spillway, "--version"]), "polars": polars.__version__,
                        "pyarrow": pyarrow.__version__, "python": platform.python_version()},
           "settings": {"repeat": a.repeat, "latencies_ms": a.latencies, "sweep": a.sweep,
                        "requests_in_flight": a.requests_in_flight, "request_size": a.request_size,
                        "spillway": a.spillway, "s3kit": a.s3kit}}
    print(f"# {a.universe}: {ref['files']} files, {ref['rows']:,} rows, {ref['input_bytes'] / 1e6:,.0f} MB; "
          f"latencies {a.latencies} ms, {a.repeat} repeats", flush=True)
    bench = Bench(a, files, ref)
    bench.run()
    raw_ranges, raw_bytes = bench.ranges[a.request_size]
    doc["universe"] = {"dir": os.path.abspath(a.universe), "files": ref["files"], "rows": ref["rows"],
                       "features": ref["features"], "bytes": ref["input_bytes"], "plan_bytes": raw_bytes,
                       "plan_requests": len(raw_ranges)}
    finish(doc)
    doc["runs"] = bench.runs
    doc["medians"], doc["goals"], doc["sweep"] = summarise(bench.runs, a.latencies, ref["input_bytes"], raw_bytes)
    os.makedirs(os.path.dirname(os.path.abspath(a.json)), exist_ok=True)
    with open(a.json, "w") as fh:
        json.dump(doc, fh, indent=1)
    print_table(doc["medians"], doc["goals"])
    print(f"\nwrote {a.json}; render with scripts/render_object_storage.py {a.json}")
    return 0 if all(g.get("verified", {}).get("met") for g in doc["goals"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
