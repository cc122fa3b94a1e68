#!/usr/bin/env python3
"""Render scripts/bench_wheel.py's JSON as the `wheel` section of the performance chapter.

    scripts/render_wheel.py docs/bench/wheel.json [--doc docs/book/performance.md]
    scripts/render_wheel.py RESULT.json --check         # CI: exit 1 if --doc's section differs
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import render_section as section  # noqa: E402
from render_section import stamp, wrap  # noqa: E402


def mb(n):
    return f"{n / 1e6:,.1f} MB"


def render(doc):
    w, i, s = doc["wheel"], doc["install_s"], doc["startup"]
    head = (f"**The release wheel** (`scripts/bench_wheel.py`, {stamp(doc)}; Python "
            f"{doc['versions']['python']}, pip {doc['versions']['pip']}). `{w['name']}`, built by "
            "`scripts/build-wheel.sh`. Installs are into new venvs; start-up times are medians of "
            f"{s['repeat']} fresh processes, less an empty interpreter's ({s['python_s'] * 1e3:.0f} ms).")
    rows = [
        ("wheel size", mb(w["bytes"])),
        ("the extension inside it (library and CLI), uncompressed", mb(w["extension_bytes"])),
    ]
    if w.get("sdist_bytes"):
        rows.append(("sdist size", mb(w["sdist_bytes"])))
    rows += [
        ("`pip install` of the wheel alone (`--no-deps`)", f"{i['no_deps']:.2f} s"),
        ("`pip install` with numpy (from pip's cache)", f"{i['with_numpy']:.2f} s"),
        ("`import spillway`", f"{s['import_spillway_s'] * 1e3:.0f} ms"),
        ("of which `import numpy`", f"{s['import_numpy_s'] * 1e3:.0f} ms"),
        ("`spillway --version` (whole process)", f"{s['cli_version_s'] * 1e3:.0f} ms"),
    ]
    lines = [wrap(head), "", "| | |", "|---|---:|"] + [f"| {k} | {v} |" for k, v in rows]
    lines += ["", "```sh", "scripts/build-wheel.sh", doc["command"],
              f"python3 scripts/render_wheel.py {doc['_json']}", "```"]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(section.main(__doc__, render, "wheel", "The wheel"))
