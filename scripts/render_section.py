"""What the render scripts share: a measured section of the docs, between two HTML comment
markers, rendered from a benchmark's JSON, written in place or checked (`--check`, which CI runs:
a table typed by hand, or left behind by a new run, is a failure).

A render script has one section (``main``) or several, each in its own doc (``main_sections``:
e.g. the full table in the performance chapter and a headline table in the README). Its command
line:

    render_x.py RESULT.json                      # rewrite every section in its doc
    render_x.py RESULT.json --check              # exit 1 if a doc's section is not the rendered one
    render_x.py RESULT.json --stdout             # print the sections instead
    render_x.py RESULT.json --section NAME       # only that section (repeatable)
    render_x.py RESULT.json --doc PATH           # the doc, when one section is rendered
    render_x.py RESULT.json --doc NAME=PATH      # the doc of section NAME (repeatable)
"""
import argparse
import json
import os
import shlex
import sys
import textwrap
from collections import namedtuple

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PERFORMANCE = "docs/book/performance.md"  # the performance chapter (relative to the repo)
README = "README.md"

# name: the markers' name; heading: the `## heading` appended when the doc has no markers yet;
# render: json doc -> section text; doc: the default doc, relative to the repo.
Section = namedtuple("Section", "name heading render doc")


def wrap(text):
    """A paragraph wrapped at 100 columns, as the book's sources are."""
    return textwrap.fill(text, 100, break_long_words=False, break_on_hyphens=False)


def met(flag):
    return "met" if flag else "**not met**"


def stamp(doc):
    """When and where a JSON's numbers were measured: "2026-12-07 04:18 UTC, commit 5b401f8328bd
    (plus uncommitted changes); 2 cores (AMD EPYC), 23.5 GiB, kernel 6.18.44" (and the load average
    at the start and end when recorded)."""
    mach = doc["machine"]
    commit = doc["commit"][:12] + (" plus uncommitted changes" if doc.get("dirty") else "")
    load = mach.get("loadavg_start")
    return (f"{doc['date'][:16].replace('T', ' ')} UTC, commit {commit}; {mach['cores']} cores ({mach['cpu']}), "
            f"{mach['ram_gib']:g} GiB, kernel {mach['kernel']}"
            + (f", load average {load[0]:.1f} at the start and {mach['loadavg_end'][0]:.1f} at the end"
               if load and mach.get("loadavg_end") else ""))


def replace_section(text, body, name, heading):
    """``text`` with the section ``name`` (between its markers) replaced by ``body``; appended under
    ``heading`` when the markers are missing."""
    begin, end = f"<!-- {name}:begin -->", f"<!-- {name}:end -->"
    block = f"{begin}\n{body}\n{end}"
    b, e = text.find(begin), text.find(end)
    if b >= 0 and e > b:
        return text[:b] + block + text[e + len(end):]
    if b >= 0 or e >= 0:
        raise SystemExit(f"only one of the {name} markers is in the doc; fix it by hand")
    return text.rstrip("\n") + f"\n\n## {heading}\n\n{block}\n"


def _docs(args, sections):
    """Section name -> doc path, from the defaults and --doc [NAME=]PATH."""
    docs = {s.name: os.path.join(REPO, s.doc) for s in sections}
    names = [s.name for s in sections]
    for d in args:
        name, eq, path = d.partition("=")
        if eq and name in docs:
            docs[name] = path
        elif eq and not os.path.exists(d):
            raise SystemExit(f"--doc {d}: no section {name} here (sections: {', '.join(docs)})")
        elif len(names) == 1:
            docs[names[0]] = d
        else:
            raise SystemExit(f"--doc {d}: give NAME=PATH, NAME one of {', '.join(names)}")
    return docs


def _shown(path):
    rel = os.path.relpath(os.path.abspath(path), REPO)
    return path if rel.startswith("..") else rel


def main_sections(doc, sections):
    """The command line of a render script with several sections: ``sections`` a list of Section."""
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("json")
    ap.add_argument("--doc", action="append", default=[], metavar="[NAME=]PATH",
                    help="the doc of a section (default: " + "; ".join(f"{s.name}: {s.doc}" for s in sections) + ")")
    ap.add_argument("--section", action="append", default=[], choices=[s.name for s in sections],
                    help="render only this section (default: all)")
    ap.add_argument("--stdout", action="store_true", help="print the sections instead of editing the docs")
    ap.add_argument("--check", action="store_true", help="exit 1 if a doc's section is not the rendered one")
    a = ap.parse_args()
    chosen = [s for s in sections if not a.section or s.name in a.section]
    docs = _docs(a.doc, chosen)
    with open(a.json) as fh:
        data = json.load(fh)
    data["_json"] = a.json
    if a.stdout:
        print("\n\n".join(s.render(data) for s in chosen))
        return 0
    texts, bad = {}, 0
    for s in chosen:  # several sections may share a doc: edit each doc's text in turn
        path = docs[s.name]
        if path not in texts:
            try:
                with open(path) as fh:
                    texts[path] = [fh.read()] * 2
            except FileNotFoundError:
                raise SystemExit(f"{_shown(path)}: no such doc (give --doc {s.name}=PATH)")
        new = replace_section(texts[path][1], s.render(data), s.name, s.heading)
        if a.check and new != texts[path][1]:
            again = [_shown(sys.argv[0])] + [x for x in sys.argv[1:] if x != "--check"]
            print(f"{_shown(path)}: the {s.name} section does not match {a.json}; run "
                  + " ".join(shlex.quote(x) for x in again), file=sys.stderr)
            bad += 1
        texts[path][1] = new
    if a.check:
        return 1 if bad else 0
    for path, (old, new) in texts.items():
        if new != old:
            with open(path, "w") as fh:
                fh.write(new)
            print(f"updated {_shown(path)}", file=sys.stderr)
        else:
            print(f"{_shown(path)} unchanged", file=sys.stderr)
    return 0


def main(doc, render, name, heading, default_doc=PERFORMANCE):
    """The command line of a render script with one section: ``render(json doc) -> section text``."""
    return main_sections(doc, [Section(name, heading, render, default_doc)])
