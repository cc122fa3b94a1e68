#!/usr/bin/env python3
"""Prints what ../shared/anchors/peers.py --extra-verify expects, read from a spill file with the
numpy reader: {"rows": N, "sums": {"target": x, "f000": y, "f004": z}, "symbol_runs": [[sym, n], ...]}
(float64 sums of the float32 columns, NaN skipped).

    peers_verify.py OUTPUT.spill
"""
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "spill", "python"))
import numpy as np  # noqa: E402
import spillfile  # noqa: E402


def main(path):
    f = spillfile.open(path)
    sums = {}
    for name in ("target", "f000", "f004"):
        if name in f.columns:
            sums[name] = float(np.nansum(f.column(name), dtype=np.float64))
    runs = [[s, stop - start] for s, (start, stop) in ((s, f.symbol_ranges[s]) for s in f.symbols)]
    print(json.dumps({"rows": f.nrows, "sums": sums, "symbol_runs": runs}))


if __name__ == "__main__":
    main(sys.argv[1])
