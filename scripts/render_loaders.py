#!/usr/bin/env python3
"""Render scripts/bench_loaders.py's JSON as the `loaders` section of the performance chapter.

    scripts/render_loaders.py docs/bench/loaders.json [--doc docs/book/performance.md]
    scripts/render_loaders.py RESULT.json --stdout        # print the section only
    scripts/render_loaders.py RESULT.json --check         # CI: exit 1 if --doc's section differs

Replaces the text between `<!-- loaders:begin -->` and `<!-- loaders:end -->` in --doc; when the
markers are absent, appends a `## Loading batches` section holding them. The section has the date,
commit and machine, the files, the epochs by page-cache state (medians: seconds, VmHWM), the epoch
in a memory cgroup, the torch DataLoader's memory, take_rows against numpy, the goals of issue 25
item 5 with met / not met, what was not measured and why, and the commands.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import render_section as section  # noqa: E402
from render_section import met, stamp, wrap  # noqa: E402

JSON = "docs/bench/loaders.json"
STATE = {"cold": "dropped (`POSIX_FADV_DONTNEED`)", "warm": "left cached by the job before",
         "other": "dropped, then read by another process (`cat`)"}


def size(n):
    return f"{n / 2**30:,.2f} GiB" if n >= 2**30 else f"{n / 2**20:,.0f} MiB"


def secs(m, key="seconds"):
    ok = [r[key] for r in m["runs"] if r["ok"] and r.get(key) is not None]
    if m.get(key) is None:
        return "failed"
    spread = f" ({min(ok):.2f}-{max(ok):.2f})" if len(m["runs"]) > 1 and ok else ""
    return f"{m[key]:.2f}{spread}" + ("" if m["ok"] else f" ({m['completed']} of {len(m['runs'])} runs ok)")


def num(v, fmt="{:,.0f}"):
    return "-" if v is None else fmt.format(v)


def cached(m, file_bytes):
    """The median share of the file in the page cache before the job's runs."""
    c = sorted(r["cached_before"] for r in m["runs"] if r.get("cached_before") is not None)
    return "" if not c else f" ({100 * c[(len(c) - 1) // 2] / file_bytes:.0f}% cached)"


def epoch_rows(doc):
    j, st, sp = doc["jobs"], doc["settings"], doc["spill"]
    b = f"{st['batch_rows']:,}"
    labels = {"seq": f"`f.batches({st['batch_rows']})`, file order",
              "blocks": f"`f.batches({st['batch_rows']}, shuffle=\"blocks\", block_rows={st['block_rows']})`"}
    out = []
    for kind in ("seq", "blocks"):
        for state in ("cold", "warm", "other"):
            name = f"epoch_{kind}_{state}"
            if name in j:
                m = j[name]
                out.append(f"| {labels[kind]} | {STATE[state]}{cached(m, sp['bytes'])} | {secs(m)} | "
                           f"{num(m.get('vmhwm_mib'))} ({num(m['max_vmhwm_mib'])}) |")
    extra = {"epoch_seq_verify": f"`f.batches({st['batch_rows']}, verify=True)`",
             "epoch_seq_float16": f"`f.batches({st['batch_rows']}, dtype=\"float16\")`",
             "epoch_seq_bfloat16": f"`f.batches({st['batch_rows']}, dtype=\"bfloat16\")`",
             "polars_epoch": f"the parquet universe, polars `read_parquet` per file, batches of {b}",
             "pyarrow_epoch": f"the parquet universe, pyarrow `iter_batches({b})` per file"}
    for name, label in extra.items():
        if name in j:
            m = j[name]
            state = "universe cached (read first when it was not)" if name.endswith("_epoch") else STATE["warm"]
            cache = cached(m, doc["universe"]["bytes"] if name.endswith("_epoch") else sp["bytes"])
            out.append(f"| {label} | {state}{cache} | {secs(m)} | {num(m.get('vmhwm_mib'))} ({num(m['max_vmhwm_mib'])}) |")
    return out


def cgroup_median(runs, key):
    v = sorted(r["cgroup"][key] for r in runs if r.get("cgroup", {}).get(key) is not None)
    return v[(len(v) - 1) // 2] if v else None


def cgroup_max(runs, key):
    return max((r["cgroup"][key] for r in runs if r.get("cgroup", {}).get(key) is not None), default=None)


def memcg_lines(doc):
    m, cg, big = doc["jobs"].get("memcg_seq"), doc.get("cgroup", {}), doc.get("big")
    if not m or not big:
        return []
    runs, cap = m["runs"], cg["cap_bytes"]
    return ["", wrap(f"*Inside a memory cgroup* (cgroup {cg['kind']}, made under this process's own; the cap "
                     f"counts page cache): the epoch in file order over `{big['path']}`, {size(big['bytes'])} "
                     f"({big['bytes'] / cap:.1f}x the cap), {big['rows']:,} rows, dropped from the page cache "
                     "before each run so that every page it reads is charged to the cgroup."),
            "", "| cap | runs completed | seconds | VmHWM MiB | cgroup peak MiB (page cache incl.; largest) | "
                "page cache in the cgroup at the end MiB | OOM kills |", "|---:|---:|---:|---:|---:|---:|---:|",
            f"| {size(cap)} | {m['completed']} of {len(runs)} | {secs(m)} | {num(m.get('vmhwm_mib'))} | "
            f"{num(m.get('peak_mib'))} ({num(cgroup_max(runs, 'peak_mib'))}) | "
            f"{num(cgroup_median(runs, 'cache_mib_end'))} | {num(cgroup_max(runs, 'oom_kills'))} |"]


def torch_lines(doc):
    j = doc["jobs"]
    names = [n for n in ("torch_w0", "torch_w2_fork", "torch_w2_spawn") if n in j]
    if not names:
        return []
    st = doc["settings"]
    tv = doc["versions"].get("torch_venv", {})
    grouped = doc.get("torch_cgroup", {}).get("kind")
    lines = ["", wrap(f"*torch DataLoader* (torch {tv.get('torch', '?')}, `{tv.get('python', '?')}`): "
                      f"`DataLoader(spillway.torch.Dataset(M, batch_rows={st['batch_rows']}, drop_last=True), "
                      "batch_size=None, num_workers=W)`, one epoch, warm page cache. The main process samples "
                      f"itself and its children every {st.get('sample_ms', 20)} ms: the sum of their VmHWM "
                      "(which counts a page that a forked worker shares with its parent once in each process), "
                      "and the largest sum of their PSS at one instant (`/proc/<pid>/smaps_rollup`: a page "
                      "shared by k processes counts 1/k in each), which is what the processes hold together, "
                      "file pages included: the goal is judged on PSS. Other processes that map the same "
                      "libraries (torch, on this shared machine) can lower everyone's PSS a little. A forked "
                      "worker shares the parent's imported torch; a spawned one starts a new interpreter and "
                      "imports torch again (compare the main process's PSS before the loop). "
                      + ("The cgroup peak: the job's processes in a memory cgroup without a cap, each page "
                         "charged once; it counts anonymous memory and page cache they bring in, not the pages "
                         "of the file and libraries already cached. " if grouped else "")
                      + "Before the loop: the main process's PSS once torch and spillway are imported and the "
                      "dataset and loader made."),
             "", "| DataLoader | seconds | processes | main VmHWM MiB | sum of VmHWM MiB | peak sum of PSS MiB | "
                 + ("cgroup peak MiB | " if grouped else "") + "main PSS before the loop MiB |",
             "|---|---:|---:|---:|---:|---:|" + ("---:|" if grouped else "") + "---:|"]
    for n in names:
        m = j[n]
        run = next((r for r in m["runs"] if r["ok"]), m["runs"][0] if m["runs"] else {})
        label = "`num_workers=0`" if n == "torch_w0" else f"`num_workers=2`, {run.get('context', '?')}"
        before = sorted(r["before_loop"]["pss_mib"] for r in m["runs"] if r["ok"])
        lines.append(f"| {label} | {secs(m)} | {len(run.get('processes', []))} | {num(m.get('vmhwm_mib'))} | "
                     f"{num(m.get('sum_vmhwm_mib'))} | {num(m.get('peak_sum_pss_mib'))} | "
                     + (f"{num(m.get('peak_mib'))} | " if grouped else "")
                     + f"{num(before[(len(before) - 1) // 2] if before else None)} |")
    return lines


def take_lines(doc):
    j = doc["jobs"]
    sizes = doc["settings"]["take"]
    if not any(f"take_{n}" in j for n in sizes):
        return []
    lines = ["", wrap("*Random rows* (warm page cache): `X, y = f.take_rows(idx)` against numpy fancy indexing "
                      "of the mapped, column-major feature view, `f.features()[idx]` plus "
                      "`f.column(target)[idx]`, for `idx` uniform random rows (numpy `default_rng(0)`): the "
                      "first call in a fresh process (the mapping not yet faulted in), then a second call "
                      "with other indices. GB/s: bytes of X (float32) per second. Both read through the "
                      "mapping, so their VmHWM counts the file pages they touched."),
             "", "| gather | rows | first call s | rows/s | GB/s | second call s | rows/s | GB/s | VmHWM MiB |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for n in sizes:
        for name, label in ((f"take_{n}", "`f.take_rows(idx)`"), (f"numpy_take_{n}", "`f.features()[idx]`")):
            m = j.get(name)
            if not m or m.get("first_s") is None:
                continue
            xb = next(r["x_bytes"] for r in m["runs"] if r["ok"])
            cells = []
            for k in ("first_s", "again_s"):
                cells += [f"{m[k]:.3f}", f"{n / m[k] / 1e6:,.1f} M", f"{xb / m[k] / 1e9:.2f}"]
            lines.append(f"| {label} | {n:,} | " + " | ".join(cells) + f" | {num(m.get('vmhwm_mib'))} |")
    return lines


def goal_lines(doc):
    g, cap = doc["goals"], doc.get("cgroup", {}).get("cap_bytes")
    out = ["", "| goal (issue 25 item 5) | target | measured | |", "|---|---|---|---|"]
    if "epoch_vmhwm" in g:
        e = g["epoch_vmhwm"]
        worst = max(e["per_job_max_mib"], key=lambda k: e["per_job_max_mib"][k] or 0)
        out.append(f"| epoch's peak RSS, sequential and shuffled, every page-cache state (largest of every "
                   f"run) | <= {e['goal_mib']} MiB | {num(e['max_mib'])} MiB (`{worst}`) | {met(e['met'])} |")
    if "memcg" in g:
        c = g["memcg"]
        out.append(f"| epoch over {doc['big']['bytes'] / cap:.1f}x the cap inside a {size(cap)} cgroup | completes "
                   f"| {c['completed']} of {c['runs']} runs | {met(c['met'])} |")
    for ctx in ("fork", "spawn"):
        if f"torch_{ctx}" in g:
            t = g[f"torch_{ctx}"]
            also = [f"sum of VmHWM {t['ratio_vmhwm']:.2f}x"] + (
                [f"cgroup peak {t['ratio_cgroup']:.2f}x"] if t.get("ratio_cgroup") else [])
            out.append(f"| DataLoader, 2 workers ({ctx}) / no workers: peak sum of PSS | <= {t['goal']:g}x | "
                       f"{t['ratio_pss']:.2f}x ({', '.join(also)}) | {met(t['met'])} |")
    for key, v in g.items():
        if "/" in key:
            peer, spill = key.split("/")
            out.append(f"| `{peer}` / `{spill}` (seconds) | >= {v['goal']:g}x faster | {v['speedup']:.2f}x | "
                       f"{met(v['met'])} |")
    if "verify" in g:
        v = g["verify"]
        out.append(f"| `verify=True` / without (epoch seconds) | <= {v['goal']:g} | {v['ratio']:.2f} | "
                   f"{met(v['met'])} |")
    for dt in ("float16", "bfloat16"):
        if f"dtype_{dt}" in g:
            out.append(f"| `dtype=\"{dt}\"` / float32 (epoch seconds) | (no goal) | {g[f'dtype_{dt}']['ratio']:.2f} | |")
    for n in doc["settings"]["take"]:
        if f"take_{n}" in g:
            t = g[f"take_{n}"]
            out.append(f"| numpy fancy indexing / `take_rows`, {n:,} rows (seconds: first call, second) | (no goal) | "
                       f"{t['numpy_over_take_first']:.2f}, {t['numpy_over_take_again']:.2f} | |")
    return out


def versions(v):
    names = (("numpy", "numpy"), ("polars", "polars"), ("pyarrow", "pyarrow"), ("python", "Python"))
    sw = f"spillway {v.get('spillway', '?')}" + ("" if v.get("spillway_native", True) else " (no native extension)")
    for where, d in (("", v), (" (torch's)", v.get("torch_venv", {}))):
        if d.get("spillway_package_differs_from_tree"):
            sw += (f"; the installed package{where} differs from this tree in "
                   + ", ".join(f"`{x}`" for x in d["spillway_package_differs_from_tree"]))
    return ", ".join([sw] + [f"{n} {v[k]}" for k, n in names if k in v])


def render(doc):
    st, sp, u = doc["settings"], doc["spill"], doc["universe"]
    n = st["repeat"]
    head = (f"**Loading batches** (`scripts/bench_loaders.py`, {stamp(doc)}; {versions(doc['versions'])}). "
            f"The file: `{sp['path']}`, {size(sp['bytes'])}, {sp['rows']:,} rows, {sp['features']} features, "
            f"built from `{u['dir']}` ({u['files']} parquet files, {size(u['bytes'])}). An epoch is every row's "
            f"features and target in batches of {st['batch_rows']:,} rows. Each job in its own process, peak "
            "RSS its VmHWM; "
            + ("one run" if n == 1 else f"medians of {n} runs, jobs interleaved (the range of the runs' seconds "
               "in brackets, the largest VmHWM of the runs in brackets)")
            + ". The page cache before each job: the file dropped with `POSIX_FADV_DONTNEED`, left cached by "
            "the job before, or dropped and read by another process; the share of the file cached then, "
            "measured with `mincore(2)`, in brackets.")
    cold = [f"{what}: " + ", ".join(f"{r['seconds']:.2f}" for r in doc["jobs"][n]["runs"] if r["ok"])
            for n, what in (("epoch_seq_cold", "file order"), ("epoch_blocks_cold", "shuffled")) if n in doc["jobs"]]
    if cold:
        head += (" Cold means cold in this machine's page cache: it is a virtual machine whose disk its host may "
                 f"cache (the cold runs' seconds in the order they ran, {'; '.join(cold)}).")
    lines = [wrap(head), "", "| epoch | page cache before | seconds | VmHWM MiB (largest) |", "|---|---|---:|---:|"]
    lines += epoch_rows(doc)
    lines += memcg_lines(doc) + torch_lines(doc) + take_lines(doc) + goal_lines(doc)
    if doc.get("skipped"):
        lines += ["", "Not measured:", ""] + [f"- `{k}`: {v}" for k, v in doc["skipped"].items()]
    lines += ["", "```sh"]
    if doc.get("big_made"):
        lines.append(f"# {doc['big_made']['universe']}")
        lines.append(doc["big_made"]["command"])
    lines += [doc["command"], f"python3 scripts/render_loaders.py {JSON}", "```"]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(section.main(__doc__, render, "loaders", "Loading batches"))
