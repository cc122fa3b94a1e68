#!/usr/bin/env python3
"""Lists the tests that skipped themselves, and fails on a skip nobody allowed.

    python3 scripts/skips.py target/test-skips.log --allow .ci/allowed-skips.txt

The log is written by the tests themselves when ``SPILLWAY_SKIP_LOG`` names it (scripts/test.sh
sets it): one line ``<kind>\t<test>\t<reason>`` per skip, ``kind`` being ``rust`` (the
``skip`` helper of tests/common.rs) or ``python`` (the hook in python/tests/conftest.py). This
prints ``N tests skipped:`` and the skips grouped by kind and reason, and exits 1 when a skip
matches no pattern of the allow-list, naming those. An allow-list line is a regular expression
searched (``re.search``) in ``<kind>\t<test>\t<reason>``; blank lines and ``#`` comments are
ignored. A missing or empty log is ``0 tests skipped`` and exit 0. Python 3 standard library only.
"""
from __future__ import annotations

import argparse
import re
import sys
from collections import defaultdict
from pathlib import Path
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple


class Skip(NamedTuple):
    """One line of the log."""

    kind: str
    test: str
    reason: str

    def line(self) -> str:
        """The text the allow-list's patterns are searched in."""
        return f"{self.kind}\t{self.test}\t{self.reason}"


def read_log(path: Path) -> List[Skip]:
    """The skips of the log at ``path``, in order, each once; none when it does not exist. A line
    without two tabs is kept whole as the reason of an unknown test (so it must be allowed)."""
    if not path.exists():
        return []
    seen: Dict[Skip, None] = {}
    for raw in path.read_text(encoding="utf-8", errors="replace").splitlines():
        if not raw.strip():
            continue
        parts = raw.split("\t", 2)
        skip = Skip(*parts) if len(parts) == 3 else Skip("?", "?", raw)
        seen.setdefault(skip, None)
    return list(seen)


def read_allow_list(path: Optional[Path]) -> List[re.Pattern[str]]:
    """The patterns of the allow-list at ``path`` (none without one); a bad pattern is an error
    naming its line."""
    if path is None:
        return []
    patterns = []
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        text = raw.strip()
        if not text or text.startswith("#"):
            continue
        try:
            patterns.append(re.compile(text))
        except re.error as e:
            raise SystemExit(f"skips.py: {path}:{number}: not a regular expression: {e}")
    return patterns


def report(skips: Sequence[Skip], allowed: Sequence[re.Pattern[str]]) -> List[Skip]:
    """Prints the skips grouped by kind and reason; returns those no pattern allows."""
    plural = "test" if len(skips) == 1 else "tests"
    if not skips:
        print(f"0 {plural} skipped")
        return []
    print(f"{len(skips)} {plural} skipped:")
    groups: Dict[Tuple[str, str], List[str]] = defaultdict(list)
    for s in skips:
        groups[(s.kind, s.reason)].append(s.test)
    for (kind, reason), tests in sorted(groups.items()):
        print(f"  {kind}: {reason} ({len(tests)}):")
        for test in sorted(tests):
            print(f"    {test}")
    return [s for s in skips if not any(p.search(s.line()) for p in allowed)]


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(prog="scripts/skips.py", description=__doc__.split("\n")[0])
    p.add_argument("log", type=Path, help="the skip log (SPILLWAY_SKIP_LOG)")
    p.add_argument("--allow", type=Path, metavar="FILE",
                   help="the allow-list: one regular expression a line, # comments")
    a = p.parse_args(argv)
    unallowed = report(read_log(a.log), read_allow_list(a.allow))
    if unallowed:
        sys.stdout.flush()  # the list first, then what fails it
        where = a.allow or "an allow-list (--allow)"
        print(f"\n{len(unallowed)} skipped without a reason {where} allows: make them run, or "
              "allow their reason there, saying why:", file=sys.stderr)
        for s in unallowed:
            print(f"  {s.kind} {s.test}: {s.reason}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
