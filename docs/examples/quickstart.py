"""Build a spill file from a universe of parquet files, then read it in shuffled batches."""
import sys

import numpy as np

import spillway

universe = sys.argv[1] if len(sys.argv) > 1 else "data/universe"
output = sys.argv[2] if len(sys.argv) > 2 else "data/train.spill"

summary = spillway.build(universe, output, target="target")  # in-process, bounded memory
f = spillway.open(output)                                     # zero-copy, read-only numpy views
cut = int(np.quantile(f.column("ts"), 0.8))                   # the last fifth of the time validates
train, valid = f.split_by_time(cut)                           # row ranges, one or more a symbol
for X, y in f.batches(65536, ranges=train, shuffle="blocks", seed=0):
    pass                                                      # X float32 (rows, features), y (rows,)
print(f"{summary['rows']} rows x {summary['features']} features in {output}")
