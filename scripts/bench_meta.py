#!/usr/bin/env python3
"""What every bench script records about its run, so that each published number has one source and
one date: the date (UTC), the commit (12 hex digits, "-dirty" when tracked files differ from it),
the machine (from /proc) and the command line. Standard library only, so any interpreter can use it.

    from bench_meta import meta, finish
    doc = {**meta(), ...}         # at the start of the run
    ...
    finish(doc)                   # at the end: the load average then
    write_json(doc, path)

    scripts/bench_meta.py [--command "scripts/x.sh 3"]   # the same as JSON on stdout (for shell scripts)
    scripts/bench_meta.py --finish FILE                  # add the end load average to FILE's machine

Keys: date, commit, dirty (bool), command, machine {cores, cpu, ram_gib, kernel, loadavg_start,
loadavg_end}.
"""
import argparse
import datetime as dt
import json
import os
import shlex
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _git(*args):
    try:
        return subprocess.run(["git", "-C", REPO, *args], capture_output=True, text=True).stdout.strip()
    except OSError:
        return ""


def commit():
    """(``git rev-parse --short=12 HEAD``, plus "-dirty" when a tracked file differs; dirty)."""
    head = _git("rev-parse", "--short=12", "HEAD") or "unknown"
    dirty = bool(_git("status", "--porcelain", "--untracked-files=no"))
    return head + ("-dirty" if dirty else ""), dirty


def _read(path):
    try:
        with open(path) as fh:
            return fh.read()
    except OSError:
        return ""


def loadavg():
    return [round(x, 2) for x in os.getloadavg()]


def machine():
    """Cores, CPU model, memory and kernel from /proc; the load average now (``loadavg_start``)."""
    cpuinfo = _read("/proc/cpuinfo")
    cpu = next((ln.split(":", 1)[1].strip() for ln in cpuinfo.splitlines() if ln.startswith("model name")), "?")
    mem_kb = next((int(ln.split()[1]) for ln in _read("/proc/meminfo").splitlines()
                   if ln.startswith("MemTotal:")), 0)
    kernel = _read("/proc/sys/kernel/osrelease").strip() or os.uname().release
    return {"cores": os.cpu_count(), "cpu": cpu, "ram_gib": round(mem_kb / 2**20, 1), "kernel": kernel,
            "loadavg_start": loadavg()}


def command_line(argv=None):
    """The command as run, relative to the repo when it is inside it."""
    argv = list(sys.argv if argv is None else argv)
    if argv:
        p = os.path.abspath(argv[0])
        if p.startswith(REPO + os.sep):
            argv[0] = os.path.relpath(p, REPO)
    return " ".join(shlex.quote(a) for a in argv)


def meta(command=None):
    """The keys every bench JSON starts with."""
    c, dirty = commit()
    return {"date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"), "commit": c, "dirty": dirty,
            "command": command if command is not None else command_line(), "machine": machine()}


def finish(doc):
    """At the end of the run: the load average then, next to the one at the start."""
    doc["machine"]["loadavg_end"] = loadavg()
    return doc


def write_json(doc, path):
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path + ".tmp", "w") as fh:
        json.dump(doc, fh, indent=1)
        fh.write("\n")
    os.replace(path + ".tmp", path)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--command", help="the command line to record (default: this one)")
    ap.add_argument("--finish", metavar="FILE", help="add loadavg_end to FILE's machine, in place")
    a = ap.parse_args()
    if a.finish:
        with open(a.finish) as fh:
            doc = json.load(fh)
        write_json(finish(doc), a.finish)
        return 0
    print(json.dumps(meta(a.command), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
