"""A memory cgroup of our own for the benchmarks (scripts/bench_loaders.py): capped at a number of
bytes that counts page cache, or uncapped to measure a group of processes' peak. Made under this
process's own cgroup (v2 memory.max or v1 memory.limit_in_bytes), since `systemd-run --user` needs a
user bus that CI machines and containers often lack; `tried` records why each way did or did not
work."""
import os
import shutil
import subprocess
import time


class Cgroup:
    """A memory cgroup capped at ``cap`` bytes (page cache counted; None: no cap, to measure),
    made under our own: cgroup v2 (memory.max) or v1 (memory.limit_in_bytes). ``tried`` says why
    each way did or did not work."""

    def __init__(self, cap, tag):
        self.cap, self.path, self.kind, self.tried = cap, None, None, []
        probe = ["systemd-run", "--user", "--scope", "-p", f"MemoryMax={cap or 'infinity'}", "true"]
        if shutil.which("systemd-run"):
            p = subprocess.run(probe, capture_output=True, text=True, timeout=30)
            why = (p.stderr.strip().splitlines() or ["?"])[-1]
            self.tried.append({"way": "systemd-run --user --scope", "ok": p.returncode == 0,
                               "why": "works, but reports no peak; a cgroup of our own does" if p.returncode == 0
                               else f"exit {p.returncode}: {why}"})
        else:
            self.tried.append({"way": "systemd-run --user --scope", "ok": False, "why": "no systemd-run"})
        groups = {}
        with open("/proc/self/cgroup") as fh:
            for line in fh:
                hid, ctrls, path = line.rstrip("\n").split(":", 2)
                groups[ctrls] = path
        for kind, parent, limit in (("v2", self._v2_parent(groups), "memory.max"),
                                    ("v1", self._v1_parent(groups), "memory.limit_in_bytes")):
            if parent is None:
                self.tried.append({"way": f"cgroup {kind}", "ok": False, "why": "no memory controller mounted"})
                continue
            path = os.path.join(parent, f"spillway-loaders-{tag}-{os.getpid()}")
            try:
                os.mkdir(path)
            except OSError as e:
                self.tried.append({"way": f"cgroup {kind}", "ok": False, "why": f"mkdir under our cgroup: {e.strerror}"})
                continue
            try:
                if cap is not None:  # v1: memory before memory+swap, which may not be below it
                    self._write(path, limit, str(cap))
                    for swap in ("memory.swap.max", "memory.memsw.limit_in_bytes"):
                        if os.path.exists(os.path.join(path, swap)):
                            self._write(path, swap, "0" if swap == "memory.swap.max" else str(cap))
            except OSError as e:
                os.rmdir(path)
                self.tried.append({"way": f"cgroup {kind}", "ok": False, "why": f"{limit}: {e.strerror}"})
                continue
            self.path, self.kind = path, kind
            self.tried.append({"way": f"cgroup {kind}", "ok": True, "why": "made under this process's own cgroup"})
            return

    @staticmethod
    def _v2_parent(groups):
        for root in ("/sys/fs/cgroup", "/sys/fs/cgroup/unified"):
            try:
                with open(os.path.join(root, "cgroup.controllers")) as fh:
                    if "memory" in fh.read().split():
                        return root + groups.get("", "/")
            except OSError:
                pass
        return None

    @staticmethod
    def _v1_parent(groups):
        for ctrls, path in groups.items():
            if "memory" in ctrls.split(","):
                p = "/sys/fs/cgroup/memory" + path
                return p if os.path.exists(os.path.join(p, "memory.limit_in_bytes")) else None
        return None

    @staticmethod
    def _write(path, name, value):
        with open(os.path.join(path, name), "w") as fh:
            fh.write(value)

    def _read(self, name):
        try:
            with open(os.path.join(self.path, name)) as fh:
                return fh.read()
        except OSError:
            return ""

    def _events(self, name):
        return {k: int(v) for k, v in (ln.split() for ln in self._read(name).splitlines() if len(ln.split()) == 2)}

    def wrap(self, cmd):
        return ["sh", "-c", 'echo $$ > "$0/cgroup.procs" && exec "$@"', self.path] + cmd

    def reset(self):
        for name in ("memory.max_usage_in_bytes", "memory.failcnt", "memory.peak"):
            try:
                self._write(self.path, name, "0")
            except OSError:
                pass
        return self.counters()

    def counters(self):
        if self.kind == "v1":
            stat = self._events("memory.stat")
            return {"peak_mib": round(int(self._read("memory.max_usage_in_bytes") or 0) / 2**20, 1),
                    "limit_hits": int(self._read("memory.failcnt") or 0),
                    "oom_kills": self._events("memory.oom_control").get("oom_kill", 0),
                    "cache_mib_end": round(stat.get("cache", 0) / 2**20, 1),
                    "rss_mib_end": round(stat.get("rss", 0) / 2**20, 1)}
        ev, stat = self._events("memory.events"), self._events("memory.stat")
        peak = self._read("memory.peak").strip()
        return {"peak_mib": round(int(peak) / 2**20, 1) if peak else None, "limit_hits": ev.get("max", 0),
                "oom_kills": ev.get("oom_kill", 0), "cache_mib_end": round(stat.get("file", 0) / 2**20, 1),
                "rss_mib_end": round(stat.get("anon", 0) / 2**20, 1)}

    def remove(self):
        if self.path:
            for _ in range(50):
                try:
                    os.rmdir(self.path)
                    return
                except OSError:
                    time.sleep(0.1)


# --------------------------------------------------------------------------- the run (parent)
