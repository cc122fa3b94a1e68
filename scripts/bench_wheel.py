#!/usr/bin/env python3
"""What a user of the release wheel waits for: its size, `pip install` into a fresh venv, and
`import spillway` and `spillway --version` in a fresh process. Writes docs/bench/wheel.json (date,
commit, machine); scripts/render_wheel.py renders it into the performance chapter.

    scripts/build-wheel.sh                              # dist/spillway-*-cp39-abi3-manylinux_2_28_*.whl
    python3 scripts/bench_wheel.py [--wheel dist/...whl] [--repeat 5] [--json docs/bench/wheel.json]

Install is timed twice, each into a new venv: the wheel alone (`--no-deps`), and the wheel with its
dependency (numpy) from PyPI through pip's cache, as a user's second install would be. Import and
command times are medians over --repeat fresh processes, less an empty interpreter's start-up.
"""
import argparse
import glob
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_meta  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def timed(cmd, **kw):
    t = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, **kw)
    return time.perf_counter() - t


def median_of(n, cmd):
    return statistics.median(timed(cmd) for _ in range(n))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--wheel", help="default: the newest manylinux wheel in dist/")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--json", default=os.path.join(REPO, "docs/bench/wheel.json"))
    a = ap.parse_args()
    wheel = a.wheel or max(glob.glob(os.path.join(REPO, "dist/spillway-*-cp39-abi3-manylinux*.whl")),
                           key=os.path.getmtime, default=None)
    if wheel is None:
        raise SystemExit("no wheel in dist/: run scripts/build-wheel.sh")
    doc = bench_meta.meta()
    with zipfile.ZipFile(wheel) as z:
        native = [i for i in z.infolist() if i.filename.endswith(".so")]
        files = len(z.infolist())
    sdists = glob.glob(os.path.join(os.path.dirname(wheel), "spillway-*.tar.gz"))
    doc["wheel"] = {"name": os.path.basename(wheel), "bytes": os.path.getsize(wheel), "files": files,
                    "extension_bytes": sum(i.file_size for i in native),
                    "sdist_bytes": os.path.getsize(max(sdists, key=os.path.getmtime)) if sdists else None}
    with tempfile.TemporaryDirectory() as tmp:
        venvs = {}
        for kind, extra in (("no_deps", ["--no-deps"]), ("with_numpy", [])):
            v = venvs[kind] = os.path.join(tmp, kind)
            subprocess.run([sys.executable, "-m", "venv", v], check=True)
            pip = [os.path.join(v, "bin", "pip"), "install", "--quiet", "--disable-pip-version-check"]
            if kind == "with_numpy":  # fill pip's cache first: the timed install is a cached one
                subprocess.run([*pip, "--dry-run", "numpy>=1.24"], check=True, stdout=subprocess.DEVNULL)
            doc.setdefault("install_s", {})[kind] = timed([*pip, *extra, wheel])
        py = os.path.join(venvs["with_numpy"], "bin", "python")
        exe = os.path.join(venvs["with_numpy"], "bin", "spillway")
        base = median_of(a.repeat, [py, "-c", "pass"])
        doc["startup"] = {
            "repeat": a.repeat,
            "python_s": base,
            "import_spillway_s": median_of(a.repeat, [py, "-c", "import spillway"]) - base,
            "import_numpy_s": median_of(a.repeat, [py, "-c", "import numpy"]) - base,
            "cli_version_s": median_of(a.repeat, [exe, "--version"]),
        }
        doc["versions"] = {"python": sys.version.split()[0], "pip": subprocess.run(
            [py, "-m", "pip", "--version"], capture_output=True, text=True).stdout.split()[1]}
    bench_meta.write_json(bench_meta.finish(doc), a.json)
    print(f"wrote {a.json}", file=sys.stderr)


if __name__ == "__main__":
    main()
