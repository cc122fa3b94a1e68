"""What the render scripts share: a measured section of the docs, between two HTML comment
markers, rendered from a benchmark's JSON, written in place or checked (`--check`, which CI runs:
a table typed by hand, or left behind by a new run, is a failure)."""
import argparse
import json
import sys
import textwrap


def wrap(text):
    """A paragraph wrapped at 100 columns, as the book's sources are."""
    return textwrap.fill(text, 100, break_long_words=False, break_on_hyphens=False)


def met(flag):
    return "met" if flag else "**not met**"


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


def main(doc, render, name, heading):
    """The command line of a render script: ``render(json doc) -> section text``."""
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("json")
    ap.add_argument("--doc", default="docs/book/src/measurements.md")
    ap.add_argument("--stdout", action="store_true", help="print the section instead of editing --doc")
    ap.add_argument("--check", action="store_true", help="exit 1 if --doc's section is not the rendered one")
    a = ap.parse_args()
    with open(a.json) as fh:
        data = json.load(fh)
    data["_json"] = a.json
    body = render(data)
    if a.stdout:
        print(body)
        return 0
    with open(a.doc) as fh:
        text = fh.read()
    new = replace_section(text, body, name, heading)
    if a.check:
        if new != text:
            print(f"{a.doc}: the {name} section does not match {a.json}; run {sys.argv[0]} {a.json}",
                  file=sys.stderr)
            return 1
        return 0
    with open(a.doc, "w") as fh:
        fh.write(new)
    print(f"updated {a.doc}", file=sys.stderr)
    return 0
