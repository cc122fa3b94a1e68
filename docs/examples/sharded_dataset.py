"""Build a universe as shards without Ray, commit their manifest, and read them as one dataset.
The same steps run on a cluster with spillway.ray.build, or as plain `spillway` commands.

    python docs/examples/sharded_dataset.py [UNIVERSE] [OUTPUT_DIR]
"""
import os
import sys

import spillway
import spillway.dataset


def main(universe: str, out: str, shards: int = 2) -> None:
    os.makedirs(out, exist_ok=True)
    paths = [os.path.join(out, f"shard-{i}.spill") for i in range(shards)]
    for i, path in enumerate(paths):  # each shard is an independent task: any scheduler
        spillway.build(universe, path, target="target", shard=f"{i}/{shards}")
    manifest = os.path.join(out, "dataset.json")
    spillway.dataset.write_manifest(paths, manifest, replace=True)  # the commit, written last

    ds = spillway.open_dataset(manifest)  # rows numbered across shards: the single file's order
    rows = 0
    for X, y in ds.batches(65536, shuffle="blocks", block_rows=16384, seed=0):
        rows += len(X)
    assert rows == ds.nrows
    print(f"{ds.nshards} shards, {ds.nrows} rows; {spillway.dataset.verify_dataset(manifest)['chunks']}"
          " chunks verified")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "data/universe",
         sys.argv[2] if len(sys.argv) > 2 else "data/dataset")
