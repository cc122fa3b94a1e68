#!/usr/bin/env python3
"""The loader's measurements (issue 25 item 5), in ONE run: epochs of `f.batches()` over the M spill
file, read with pread, in three page-cache states; the same epoch inside a memory cgroup that counts
page cache, over a file 4x the cap; a torch DataLoader with workers against one process; the epoch
against polars and pyarrow reading the parquet universe; `take_rows` against numpy fancy indexing;
the cost of `verify=True`; and half-precision epochs. Every job runs in its own process; its peak
RSS is VmHWM from its /proc/self/status.

    scripts/install-python.sh target/peers --release        # the release wheel of this tree
    scripts/install-python.sh target/venv-torch --release
    target/peers/bin/python scripts/bench_loaders.py --spill target/M.spill \\
        --parquet target/shapes/M --repeat 3 --json docs/bench/loaders.json
    python3 scripts/render_loaders.py docs/bench/loaders.json

Jobs (an epoch = every row's features and target in batches of --batch-rows, rows counted):
  epoch_{seq,blocks}_{cold,warm,other}   file order / shuffle="blocks" (--block-rows), the file
        dropped from the page cache first (posix_fadvise DONTNEED: clean pages, no root needed),
        left cached by the job before (warm), or dropped and then read by another process (`cat`)
  epoch_seq_verify                       verify=True (every chunk's CRC checked), warm
  epoch_seq_float16, epoch_seq_bfloat16  dtype="float16" / "bfloat16", warm
  take_N, numpy_take_N                   f.take_rows(idx) / f.features()[idx] plus the target,
        N random rows (numpy default_rng(0)), warm: the first call in a fresh process, then again
        with other indices
  polars_epoch, pyarrow_epoch            the epoch from the parquet universe, as
        scripts/bench_python.py reads it (polars read_parquet per file / pyarrow iter_batches)
  torch_w0, torch_w2_fork, torch_w2_spawn  a DataLoader(batch_size=None) over
        spillway.torch.Dataset(--spill, batch_rows, drop_last=True) with 0 or 2 workers (fork or
        spawn), in --torch-python; memory of the main process and its workers sampled every 50 ms
        (VmHWM and the sum of PSS from /proc/<pid>/smaps_rollup), and the peak of a memory cgroup
        (no cap) holding them
  memcg_seq                              epoch_seq over --big (made by linking the universe's files
        until the spill file is >= 4x --cap, then `spillway build`), dropped from the page cache
        first, inside a memory cgroup capped at --cap (v1 memory.limit_in_bytes or v2 memory.max,
        both of which charge page cache)

Jobs run interleaved (every job once, --repeat times). Writes --json: date, commit, machine and
command (scripts/bench_meta.py), versions, settings, the files, per job the medians and every run
(with the load average and the file's cached bytes before it), the goals and what could not be
measured. scripts/render_loaders.py renders it into the performance chapter.
"""
import argparse
import ctypes
import glob
import json
import mmap
import os
import shutil
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_meta  # noqa: E402
from memcg import Cgroup  # noqa: E402

REPO = bench_meta.REPO
PAGE = os.sysconf("SC_PAGE_SIZE")
STATES = ("cold", "warm", "other")
GOALS = {"epoch_vmhwm_mib": 200, "torch_pss_ratio": 2.0, "peer_speedup": 10.0, "verify_slowdown": 1.15}


def rel(path):
    p = os.path.abspath(path)
    return os.path.relpath(p, REPO) if p.startswith(REPO + os.sep) else path


# --------------------------------------------------------------------------- /proc and the cache
def status_kib(pid, key):
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def pss_kib(pid):
    try:
        with open(f"/proc/{pid}/smaps_rollup") as fh:
            for line in fh:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def mib(kib):
    return None if kib is None else round(kib / 1024, 1)


def cached_bytes(path):
    """Bytes of ``path`` in the page cache: mincore(2) over a mapping that is never touched."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mmap.restype = ctypes.c_void_p
    libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int,
                          ctypes.c_long]
    libc.mincore.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p]
    libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
    size = os.path.getsize(path)
    if size == 0:
        return 0
    fd = os.open(path, os.O_RDONLY)
    try:
        addr = libc.mmap(None, size, mmap.PROT_READ, mmap.MAP_SHARED, fd, 0)
        if addr is None or addr == ctypes.c_void_p(-1).value:
            return None
        try:
            vec = (ctypes.c_ubyte * ((size + PAGE - 1) // PAGE))()
            if libc.mincore(addr, size, vec) != 0:
                return None
            raw = bytes(vec)
            return min(size, (len(raw) - raw.count(0)) * PAGE)
        finally:
            libc.munmap(addr, size)
    finally:
        os.close(fd)


def drop_cache(path):
    """Drops ``path``'s clean pages from the page cache (no root needed)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def read_through(paths):
    """Reads every file once in this process (the page cache warm again)."""
    for p in paths:
        with open(p, "rb", buffering=0) as fh:
            while fh.read(1 << 24):
                pass


# --------------------------------------------------------------------------- the jobs (children)
def finish(out, t0, seconds=None):
    out["seconds"] = round(time.perf_counter() - t0 if seconds is None else seconds, 4)
    out["vmhwm_mib"] = mib(status_kib("self", "VmHWM"))
    out["vmrss_end_mib"] = mib(status_kib("self", "VmRSS"))
    print(json.dumps(out))


def job_epoch(a):
    import spillway
    t0 = time.perf_counter()
    f = spillway.open(a.file)
    rows = batches = 0
    for X, y in f.batches(a.batch_rows, shuffle="blocks" if a.shuffle else None,
                          block_rows=a.block_rows if a.shuffle else None, seed=0, dtype=a.dtype,
                          verify=a.verify):
        rows += len(y)
        batches += 1
    finish({"rows": rows, "batches": batches, "x_dtype": str(X.dtype)}, t0)


def job_take(a):
    import numpy as np
    import spillway
    f = spillway.open(a.file)
    rng = np.random.default_rng(0)
    out = {"rows": a.take, "features": len(f.columns_with_role("feature"))}
    for key in ("first", "again"):  # a fresh process (mapping not yet faulted in), then once more
        idx = rng.integers(0, f.nrows, a.take)
        t0 = time.perf_counter()
        if a.numpy:
            X, y = f.features()[idx], f.column(f.target_column)[idx]
        else:
            X, y = f.take_rows(idx)
        out[f"{key}_s"] = round(time.perf_counter() - t0, 4)
        out["x_bytes"] = X.nbytes
        del X, y
    finish(out, None, out["first_s"])  # the job's seconds: the first call's


def job_peer(a):
    import bench_python
    a.spill = a.file  # bench_python reads a.spill (the features and target) and a.parquet
    t0 = time.perf_counter()
    rows = bench_python.epoch_polars(a) if a.peer == "polars" else bench_python.epoch_pyarrow(a)
    finish({"rows": rows}, t0)


def descendants(pid):
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        try:
            tasks = os.listdir(f"/proc/{p}/task")
        except OSError:
            continue
        for t in tasks:
            try:
                with open(f"/proc/{p}/task/{t}/children") as fh:
                    kids = [int(x) for x in fh.read().split()]
            except OSError:
                continue
            out += kids
            todo += kids
    return out


class Sampler(threading.Thread):
    """This process and its descendants every ``every`` seconds: each one's last VmHWM and largest
    PSS, and the largest sum of PSS at one instant."""

    def __init__(self, every=0.05):
        super().__init__(daemon=True)
        self.every, self.stop, self.procs, self.peak_sum_pss, self.samples = every, threading.Event(), {}, 0, 0

    def sample(self):
        total = 0
        for pid in [os.getpid()] + descendants(os.getpid()):
            hwm, pss = status_kib(pid, "VmHWM"), pss_kib(pid)
            if hwm is None or pss is None:
                continue
            p = self.procs.setdefault(pid, {"pid": pid, "vmhwm_kib": 0, "peak_pss_kib": 0})
            if "comm" not in p:
                try:
                    with open(f"/proc/{pid}/cmdline", "rb") as fh:
                        p["comm"] = " ".join(x.decode(errors="replace") for x in fh.read().split(b"\0")[:3])[:80]
                except OSError:
                    p["comm"] = "?"
            p["vmhwm_kib"] = max(p["vmhwm_kib"], hwm)
            p["peak_pss_kib"] = max(p["peak_pss_kib"], pss)
            total += pss
        self.peak_sum_pss = max(self.peak_sum_pss, total)
        self.samples += 1

    def run(self):
        while not self.stop.is_set():
            self.sample()
            self.stop.wait(self.every)


def job_torch(a):
    import torch
    import spillway
    import spillway.torch
    ds = spillway.torch.Dataset(a.file, batch_rows=a.batch_rows, drop_last=True, num_workers=a.workers)
    kw = {"multiprocessing_context": a.context} if a.workers else {}
    loader = torch.utils.data.DataLoader(ds, batch_size=None, num_workers=a.workers, **kw)
    before = {"vmrss_mib": mib(status_kib("self", "VmRSS")), "pss_mib": mib(pss_kib("self"))}
    s = Sampler()
    s.start()
    t0 = time.perf_counter()
    rows = batches = 0
    for X, y in loader:
        rows += len(y)
        batches += 1
    seconds = time.perf_counter() - t0
    s.sample()
    s.stop.set()
    s.join()
    del loader
    me = s.procs[os.getpid()]
    me["vmhwm_kib"] = status_kib("self", "VmHWM")
    procs = sorted(s.procs.values(), key=lambda p: p["pid"])
    print(json.dumps({
        "rows": rows, "batches": batches, "seconds": round(seconds, 3), "workers": a.workers,
        "context": a.context if a.workers else None, "vmhwm_mib": mib(me["vmhwm_kib"]),
        "sum_vmhwm_mib": mib(sum(p["vmhwm_kib"] for p in procs)), "peak_sum_pss_mib": mib(s.peak_sum_pss),
        "before_loop": before, "samples": s.samples,
        "processes": [{"pid": p["pid"], "cmd": p["comm"], "vmhwm_mib": mib(p["vmhwm_kib"]),
                       "peak_pss_mib": mib(p["peak_pss_kib"])} for p in procs],
        "torch": torch.__version__, "spillway": spillway.__version__,
        "spillway_package": rel(os.path.dirname(spillway.__file__))}))


def run_job(a):
    {"epoch": job_epoch, "take": job_take, "peer": job_peer, "torch": job_torch}[a.job](a)


# --------------------------------------------------------------------------- a memory cgroup
def parquet_files(d):
    return sorted(glob.glob(os.path.join(d, "*.parquet")))


def spill_info(path):
    import spillway
    f = spillway.open(path)
    return {"path": rel(path), "bytes": os.path.getsize(path), "rows": f.nrows,
            "features": len(f.columns_with_role("feature")), "target": f.target_column, "columns": len(f.columns)}


def make_big(a, cap, spill_bytes):
    """A spill file >= 4x the cap: the universe's files linked (again, under other symbol names)
    until the rows are enough, then built. Returns how it was made."""
    files = parquet_files(a.parquet)
    want = 4 * cap * 1.15  # a margin over 4x
    n = len(files)
    while spill_bytes * n / len(files) < want:
        n += 1
    src = os.path.join(os.path.dirname(os.path.abspath(a.big)), "big_universe")
    shutil.rmtree(src, ignore_errors=True)
    os.makedirs(src)
    for i in range(n):
        p = os.path.abspath(files[i % len(files)])
        name = os.path.basename(p) if i < len(files) else f"R{i:04d}.parquet"
        os.symlink(p, os.path.join(src, name))
    cmd = [a.spillway_bin, "build", "--input", src, "--output", a.big, "--target", "target", "--quiet"]
    print(f"making {a.big}: {n} files linked from {a.parquet}", file=sys.stderr)
    subprocess.run(cmd, check=True)
    made = {"universe": f"{rel(src)}: the {len(files)} files of {rel(a.parquet)} and {n - len(files)} of them again "
                        "(symlinks named R<i>.parquet)", "command": " ".join(rel(c) for c in cmd),
            "date": bench_meta.meta()["date"]}
    with open(a.big + ".made.json", "w") as fh:  # read back when the file is reused
        json.dump(made, fh)
    return made


def jobs_table(a):
    """name -> (kind, file state, extra argv, which python)."""
    t = {}
    for shuffle in ("seq", "blocks"):
        for st in STATES:
            t[f"epoch_{shuffle}_{st}"] = ("epoch", st, ["--shuffle"] if shuffle == "blocks" else [], "main")
    t["epoch_seq_verify"] = ("epoch", "warm", ["--verify"], "main")
    for dt in ("float16", "bfloat16"):
        t[f"epoch_seq_{dt}"] = ("epoch", "warm", ["--dtype", dt], "main")
    for n in a.take:
        t[f"take_{n}"] = ("take", "warm", ["--take", str(n)], "main")
        t[f"numpy_take_{n}"] = ("take", "warm", ["--take", str(n), "--numpy"], "main")
    t["polars_epoch"] = ("peer", "parquet", ["--peer", "polars"], "main")
    t["pyarrow_epoch"] = ("peer", "parquet", ["--peer", "pyarrow"], "main")
    t["torch_w0"] = ("torch", "warm", ["--workers", "0"], "torch")
    t["torch_w2_fork"] = ("torch", "warm", ["--workers", "2", "--context", "fork"], "torch")
    t["torch_w2_spawn"] = ("torch", "warm", ["--workers", "2", "--context", "spawn"], "torch")
    t["memcg_seq"] = ("epoch", "cold", [], "main")
    return t


def prepare(state, path, parquet):
    """Puts ``path`` (or the parquet universe) in the page-cache state; returns what was done."""
    if state == "parquet":
        files = parquet_files(parquet)
        cached = sum(cached_bytes(p) or 0 for p in files)
        total = sum(os.path.getsize(p) for p in files)
        if cached < total:
            read_through(files)
        return {"cached_before": cached, "size": total, "rewarmed": cached < total}
    done = {}
    if state in ("cold", "other"):
        drop_cache(path)
    if state == "other":
        t0 = time.perf_counter()
        subprocess.run(["cat", path], stdout=subprocess.DEVNULL, check=True)
        done["other_process_read_s"] = round(time.perf_counter() - t0, 2)
    cached = cached_bytes(path)
    if state == "warm" and cached is not None and cached < os.path.getsize(path):
        read_through([path])  # not left cached by the job before (evicted meanwhile): say so
        done["rewarmed_from"] = cached
        cached = cached_bytes(path)
    done["cached_before"] = cached
    return done


def median(v):
    v = sorted(x for x in v if x is not None)
    return v[(len(v) - 1) // 2] if v else None  # the lower median: a measured run


MEDIAN_KEYS = ("seconds", "vmhwm_mib", "first_s", "again_s", "sum_vmhwm_mib", "peak_sum_pss_mib", "peak_mib",
               "limit_hits")


def summarise(runs, names):
    out = {}
    for job in names:
        mine = [r for r in runs if r["job"] == job]
        ok = [r for r in mine if r["ok"]]
        m = {k: median(r.get(k) for r in ok) for k in MEDIAN_KEYS
             if k in ("seconds", "vmhwm_mib") or any(k in r for r in ok)}
        m["max_vmhwm_mib"] = max((r["vmhwm_mib"] for r in ok if r.get("vmhwm_mib") is not None), default=None)
        rows = sorted({r["rows"] for r in ok if "rows" in r})
        m.update(rows=rows[0] if len(rows) == 1 else rows, ok=bool(mine) and len(ok) == len(mine),
                 completed=len(ok), runs=mine)
        out[job] = m
    return out


def ratio(x, y, nd=3):
    return round(x / y, nd) if x and y else None


def goals(j):
    g = {}
    def sec(name):
        return (j.get(name) or {}).get("seconds")
    item1 = {n: j[n]["max_vmhwm_mib"] for n in (f"epoch_{s}_{st}" for s in ("seq", "blocks") for st in STATES)
             if n in j}
    if item1:
        worst = max((v for v in item1.values() if v is not None), default=None)
        g["epoch_vmhwm"] = {"goal_mib": GOALS["epoch_vmhwm_mib"], "max_mib": worst, "per_job_max_mib": item1,
                            "met": worst is not None and worst <= GOALS["epoch_vmhwm_mib"]
                            and all(j[n]["ok"] for n in item1)}
    if "memcg_seq" in j:
        m = j["memcg_seq"]
        g["memcg"] = {"completed": m["completed"], "runs": len(m["runs"]), "met": m["ok"] and m["completed"] > 0}
    for ctx in ("fork", "spawn"):
        w0, w2 = j.get("torch_w0"), j.get(f"torch_w2_{ctx}")
        if w0 and w2 and w0.get("peak_sum_pss_mib") and w2.get("peak_sum_pss_mib"):
            r = ratio(w2["peak_sum_pss_mib"], w0["peak_sum_pss_mib"], 2)
            g[f"torch_{ctx}"] = {"goal": GOALS["torch_pss_ratio"], "ratio_pss": r,
                                 "ratio_vmhwm": ratio(w2["sum_vmhwm_mib"], w0["sum_vmhwm_mib"], 2),
                                 "ratio_cgroup": ratio(w2.get("peak_mib"), w0.get("peak_mib"), 2),
                                 "met": r <= GOALS["torch_pss_ratio"]}
    for spill in ("epoch_seq_warm", "epoch_blocks_warm"):
        for peer in ("polars_epoch", "pyarrow_epoch"):
            r = ratio(sec(peer), sec(spill), 2)
            if r is not None:
                g[f"{peer}/{spill}"] = {"goal": GOALS["peer_speedup"], "speedup": r, "met": r >= GOALS["peer_speedup"]}
    r = ratio(sec("epoch_seq_verify"), sec("epoch_seq_warm"))
    if r is not None:
        g["verify"] = {"goal": GOALS["verify_slowdown"], "ratio": r, "met": r <= GOALS["verify_slowdown"]}
    for dt in ("float16", "bfloat16"):
        r = ratio(sec(f"epoch_seq_{dt}"), sec("epoch_seq_warm"))
        if r is not None:
            g[f"dtype_{dt}"] = {"ratio": r}
    for name in j:
        if name.startswith("take_"):
            n, np_ = name.split("_")[1], j.get(f"numpy_{name}")
            if np_ and j[name].get("first_s") and np_.get("first_s"):
                g[f"take_{n}"] = {"numpy_over_take_first": ratio(np_["first_s"], j[name]["first_s"], 2),
                                  "numpy_over_take_again": ratio(np_["again_s"], j[name]["again_s"], 2)}
    return g


def versions(torch_python, env):
    from importlib.metadata import PackageNotFoundError, version
    out = {"python": ".".join(str(x) for x in sys.version_info[:3])}
    for pkg in ("spillway", "numpy", "polars", "pyarrow"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            pass
    import spillway
    out["spillway_native"] = getattr(spillway, "_native", None) is not None
    out["spillway_package"] = rel(os.path.dirname(spillway.__file__))
    out["spillway_package_differs_from_tree"] = differs_from_tree(os.path.dirname(spillway.__file__))
    if torch_python:
        code = ("import json, os, torch, numpy, spillway; print(json.dumps({'torch': torch.__version__, 'numpy': "
                "numpy.__version__, 'spillway': spillway.__version__, 'dir': os.path.dirname(spillway.__file__)}))")
        p = subprocess.run([torch_python, "-c", code], capture_output=True, text=True, env=env)
        if p.returncode == 0:
            t = json.loads(p.stdout)
            out["torch_venv"] = {"python": rel(torch_python), "torch": t["torch"], "numpy": t["numpy"],
                                 "spillway": t["spillway"], "spillway_package": rel(t["dir"]),
                                 "spillway_package_differs_from_tree": differs_from_tree(t["dir"])}
        else:
            out["torch_venv"] = {"python": rel(torch_python), "error": p.stderr.strip().splitlines()[-1:]}
    return out


def differs_from_tree(pkg_dir):
    """The Python sources of an installed package that are not this tree's (empty: the wheel is
    current)."""
    tree = os.path.join(REPO, "python", "spillway")
    out = []
    for name in sorted(os.listdir(tree)):
        if name.endswith(".py"):
            try:
                with open(os.path.join(tree, name), "rb") as x, open(os.path.join(pkg_dir, name), "rb") as y:
                    if x.read() != y.read():
                        out.append(name)
            except OSError:
                out.append(name)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--spill", default="target/M.spill")
    ap.add_argument("--parquet", default="target/shapes/M", help="the universe --spill was built from")
    ap.add_argument("--big", default="target/loaders/big.spill", help="the file of memcg_seq (made when missing)")
    ap.add_argument("--cap", default="512M", help="the memory cgroup's cap (K, M, G suffixes)")
    ap.add_argument("--torch-python", default="target/venv-torch/bin/python")
    ap.add_argument("--torch-path", help="a directory put first on the torch jobs' PYTHONPATH, holding this tree's "
                                         "package (pip install --target DIR WHEEL) when the torch venv's is not")
    ap.add_argument("--spillway-bin", default=os.path.join(os.path.dirname(sys.executable), "spillway"),
                    help="the spillway command that builds --big")
    ap.add_argument("--batch-rows", type=int, default=65536)
    ap.add_argument("--block-rows", type=int, default=65536)
    ap.add_argument("--take", default="100000,1000000", help="take_rows sizes")
    ap.add_argument("--jobs", help="a comma-separated subset of the jobs (default all)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--json", default=os.path.join(REPO, "docs", "bench", "loaders.json"))
    for hidden in ("--job", "--file", "--dtype", "--peer", "--context"):
        ap.add_argument(hidden, help=argparse.SUPPRESS)
    for flag in ("--shuffle", "--verify", "--numpy"):
        ap.add_argument(flag, action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--workers", type=int, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.job:
        a.take = int(a.take) if a.job == "take" else None
        a.dtype = a.dtype or "float32"
        return run_job(a)
    a.take = [int(x) for x in a.take.split(",") if x]
    cap = int(a.cap[:-1]) * {"K": 2**10, "M": 2**20, "G": 2**30}[a.cap[-1].upper()] if a.cap[-1].isalpha() else int(a.cap)
    table = jobs_table(a)
    names = list(table) if not a.jobs else a.jobs.split(",")
    for n in names:
        if n not in table:
            raise SystemExit(f"unknown job {n}; known: {', '.join(table)}")

    doc = bench_meta.meta(command=f"{rel(sys.executable)} {bench_meta.command_line()}")
    torch_python = a.torch_python if os.path.exists(a.torch_python) else None
    scripts = os.path.dirname(os.path.abspath(__file__))
    env = {"main": {**os.environ, "PYTHONPATH": scripts},
           "torch": {**os.environ, "PYTHONPATH": os.pathsep.join(
               ([os.path.abspath(a.torch_path)] if a.torch_path else []) + [scripts])}}
    doc["versions"] = versions(torch_python, env["torch"])
    doc["settings"] = {"repeat": a.repeat, "jobs": names, "batch_rows": a.batch_rows, "block_rows": a.block_rows,
                       "seed": 0, "take": a.take, "cap": a.cap, "python": rel(sys.executable),
                       "torch_python": rel(a.torch_python), "torch_path": a.torch_path and rel(a.torch_path),
                       "goals": GOALS,
                       "median": "lower median of the successful runs (a measured run)",
                       "sample_ms": 50, "torch_memory": "sampled every 50 ms in the main process: its VmHWM and its workers' "
                                       "(last seen), and the largest sum of PSS (smaps_rollup) at one instant"}
    for where, v in (("spill", doc["versions"]), ("torch", doc["versions"].get("torch_venv", {}))):
        if v.get("spillway_package_differs_from_tree"):
            print(f"warning: the {where} venv's spillway package differs from this tree in "
                  f"{', '.join(v['spillway_package_differs_from_tree'])}: reinstall it "
                  "(scripts/install-python.sh VENV --release)", file=sys.stderr)
    doc["spill"] = spill_info(a.spill)
    files = parquet_files(a.parquet)
    doc["universe"] = {"dir": rel(a.parquet), "files": len(files), "bytes": sum(os.path.getsize(p) for p in files)}
    skipped = {}
    cg = None
    if "memcg_seq" in names:
        if not os.path.exists(a.big) or os.path.getsize(a.big) < 4 * cap:
            os.makedirs(os.path.dirname(os.path.abspath(a.big)), exist_ok=True)
            make_big(a, cap, doc["spill"]["bytes"])
        try:
            with open(a.big + ".made.json") as fh:
                doc["big_made"] = json.load(fh)
        except (OSError, ValueError):
            doc["big_made"] = None  # made some other way: the JSON says only what it is
        doc["big"] = spill_info(a.big)
        cg = Cgroup(cap, "cap")
        doc["cgroup"] = {"kind": cg.kind, "cap_bytes": cap, "tried": cg.tried,
                         "path": cg.path and os.path.basename(cg.path)}
        if cg.path is None:
            skipped["memcg_seq"] = "no way to make a memory cgroup here: " + "; ".join(
                f"{t['way']}: {t['why']}" for t in cg.tried)
    if torch_python is None or "error" in doc["versions"].get("torch_venv", {}):
        why = f"no {a.torch_python}" if torch_python is None else "torch does not import: " + " ".join(
            doc["versions"]["torch_venv"]["error"])
        for n in names:
            if table[n][0] == "torch":
                skipped[n] = why
    tcg = None  # the torch jobs' processes, counted together (no cap)
    if any(table[n][0] == "torch" for n in names if n not in skipped):
        tcg = Cgroup(None, "torch")
        doc["torch_cgroup"] = {"kind": tcg.kind, "tried": tcg.tried}
        tcg = tcg if tcg.path else None
    doc["skipped"] = skipped
    if any(table[n][1] == "parquet" for n in names if n not in skipped):
        read_through(files)

    runs = []
    try:
        for rep in range(a.repeat):
            for name in names:
                if name in skipped:
                    continue
                kind, state, extra, which = table[name]
                target = a.big if name == "memcg_seq" else a.spill
                prep = prepare(state, target, a.parquet)
                py = a.torch_python if which == "torch" else sys.executable
                cmd = [py, os.path.abspath(__file__), "--job", kind, "--file", target, "--parquet", a.parquet,
                       "--batch-rows", str(a.batch_rows), "--block-rows", str(a.block_rows), *extra]
                group = cg if name == "memcg_seq" else tcg if kind == "torch" else None
                if group:
                    cmd = group.wrap(cmd)
                    before = group.reset()
                load = bench_meta.loadavg()
                t0 = time.perf_counter()
                p = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, env=env[which])
                wall = time.perf_counter() - t0
                try:
                    r = json.loads(p.stdout.strip().splitlines()[-1])
                except (IndexError, ValueError):
                    r = {}
                r = {"job": name, "rep": rep, **r, "loadavg_before": load, **prep,
                     "process_wall_s": round(wall, 3), "rc": p.returncode}
                if group:
                    r["cgroup"] = group.counters()
                    r["cgroup_before"] = before
                    r.update(peak_mib=r["cgroup"]["peak_mib"], limit_hits=r["cgroup"]["limit_hits"])
                want = doc["big" if name == "memcg_seq" else "spill"]["rows"]
                r["ok"] = p.returncode == 0 and "seconds" in r and (kind != "epoch" or r.get("rows") == want)
                if not r["ok"]:
                    r["stderr"] = p.stderr[-2000:]
                    print(f"{name}: FAILED (exit {p.returncode})\n{p.stderr[-800:]}", file=sys.stderr)
                else:
                    print(f"{name}: {r['seconds']:.2f} s, VmHWM {r.get('vmhwm_mib')} MiB, cached before "
                          f"{(r.get('cached_before') or 0) / 2**20:.0f} MiB, load {load[0]}", file=sys.stderr)
                runs.append(r)
    finally:
        for group in (cg, tcg):
            if group is not None:
                group.remove()
    bench_meta.finish(doc)
    doc["jobs"] = summarise(runs, [n for n in names if n not in skipped])
    doc["goals"] = goals(doc["jobs"])
    bench_meta.write_json(doc, a.json)
    print(json.dumps(doc["goals"], indent=1))
    print(f"wrote {a.json}; render with python3 scripts/render_loaders.py {rel(a.json)}", file=sys.stderr)
    return 0 if all(m["ok"] for m in doc["jobs"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
