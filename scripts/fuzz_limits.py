#!/usr/bin/env python3
"""Every fuzz seed, corpus entry and finding through the real binary on a memory-limited machine
(issue 27): under `ulimit -v` 2 GiB and inside a 256 MiB memory cgroup (scripts/memcg.py: v1
memory.limit_in_bytes + memsw, or v2 memory.max), each input must end in exit 0, or exit 1 with
the file named: never an abort (134), an OOM kill (137), an internal error (3) or a panic.

Inputs of the parquet crate's targets (fuzz/{seeds,corpus,findings}) are built as symbol B of a
universe beside a valid A, with `--decoder auto` and `--decoder arrow`; the spill crate's
(spill/fuzz/{seeds,corpus}) are opened and checked by `spillway verify`.

    scripts/fuzz_limits.py [--bin target/release/spillway] [--no-cgroup] [--jobs 2] [--json OUT]

--no-cgroup runs under `ulimit -v` alone (no root needed; what CI runs). Exit 1 when any input
broke the rule, listing them.
"""
import argparse
import concurrent.futures as cf
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "scripts"))

AS_LIMIT_KIB = 2 * 1024 * 1024
CGROUP_CAP = 256 * 2**20
GOOD = os.path.join(ROOT, "fuzz/seeds/decoders/v1-plain.parquet")


def inputs():
    """(kind, path) of every input: 'parquet' for the root fuzz crate, 'spill' for spill/fuzz."""
    found = []
    for crate, kind in (("fuzz", "parquet"), ("spill/fuzz", "spill")):
        for sub in ("seeds", "corpus", "findings"):
            base = os.path.join(ROOT, crate, sub)
            for d, _, files in os.walk(base):
                for f in sorted(files):
                    if f.endswith(".md"):
                        continue
                    found.append((kind, os.path.join(d, f)))
    return found


def commands(kind, path, work, bin_):
    """The runs of one input: (label, argv, the name its error must carry)."""
    if kind == "spill":
        return [("verify", [bin_, "verify", path], os.path.basename(path))]
    u = os.path.join(work, "u")
    os.makedirs(u, exist_ok=True)
    shutil.copy(GOOD, os.path.join(u, "A.parquet"))
    shutil.copy(path, os.path.join(u, "B.parquet"))
    return [(f"build --decoder {d}",
             [bin_, "build", "--input", u, "--output", os.path.join(work, f"{d}.spill"),
              "--target", "target", "--decoder", d, "--threads", "1"], "B.parquet")
            for d in ("auto", "arrow")]


def run_one(kind, path, bin_, cgroup):
    work = tempfile.mkdtemp(prefix="spillway-limits-")
    results = []
    try:
        for label, argv, name in commands(kind, path, work, bin_):
            cmd = ["sh", "-c", f'ulimit -v {AS_LIMIT_KIB} && exec "$@"', "sh"] + argv
            if cgroup is not None:
                cmd = cgroup.wrap(cmd)
            t = time.monotonic()
            p = subprocess.run(cmd, capture_output=True, text=True, timeout=600,
                               env={**os.environ, "RUST_BACKTRACE": "0"})
            err = p.stderr.strip()
            ok = p.returncode == 0 or (p.returncode == 1 and name in err and "panicked" not in err)
            results.append({"input": os.path.relpath(path, ROOT), "run": label, "exit": p.returncode,
                            "ok": ok, "seconds": round(time.monotonic() - t, 2),
                            "message": err.splitlines()[-1][:300] if err else ""})
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return results


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bin", default=os.path.join(ROOT, "target/release/spillway"))
    ap.add_argument("--no-cgroup", action="store_true")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--json")
    a = ap.parse_args()
    cgroup = None
    if not a.no_cgroup:
        from memcg import Cgroup
        cgroup = Cgroup(CGROUP_CAP, "fuzz-limits")
        if cgroup.path is None:
            print("fuzz_limits: no memory cgroup can be made here (run as root, or --no-cgroup):",
                  json.dumps(cgroup.tried), file=sys.stderr)
            return 2
        cgroup.reset()
    todo = inputs()
    t0 = time.monotonic()
    results = []
    try:
        with cf.ThreadPoolExecutor(a.jobs) as pool:
            for r in pool.map(lambda kp: run_one(*kp, a.bin, cgroup), todo):
                results.extend(r)
        counters = cgroup.counters() if cgroup else {}
    finally:
        if cgroup:
            cgroup.remove()
    bad = [r for r in results if not r["ok"]]
    exits = {}
    for r in results:
        exits[r["exit"]] = exits.get(r["exit"], 0) + 1
    summary = {"inputs": len(todo), "runs": len(results), "exits": exits, "bad": len(bad),
               "limits": {"ulimit_v_kib": AS_LIMIT_KIB,
                          "cgroup": f"{cgroup.kind} {CGROUP_CAP >> 20} MiB" if cgroup else None},
               "cgroup": counters, "seconds": round(time.monotonic() - t0, 1),
               "slowest": max(results, key=lambda r: r["seconds"], default=None)}
    print(json.dumps(summary, indent=1))
    for r in bad:
        print(f"BAD {r['input']} [{r['run']}]: exit {r['exit']}: {r['message']}", file=sys.stderr)
    if a.json:
        with open(a.json, "w") as fh:
            json.dump({"summary": summary, "results": results}, fh, indent=1)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
