"""An epoch that survives preemption: the iterator's state is saved with each checkpoint (a few
hundred bytes of JSON), and a restarted job continues with exactly the batches it had not seen,
at the same or another number of ranks. Each "rank" here is a loop; under DDP each is a process
(rank and world size from torch.distributed or RANK / WORLD_SIZE).

    python docs/examples/preemptible.py [SPILL] [CHECKPOINT_DIR]
"""
import json
import os
import sys
from typing import Any, Dict, List

import numpy as np

import spillway


def epoch_args(epoch: int) -> Dict[str, Any]:
    # The same arguments on every run: the state belongs to them (and to the file).
    return dict(shuffle="blocks", block_rows=65536, seed=7, epoch=epoch, pad=True,
                dtype="float16")


def main(path: str, ckpt: str) -> None:
    f = spillway.open(path)
    state_file = os.path.join(ckpt, "batches.json")
    world = 2
    its = [f.batches(4096, rank=r, world_size=world, **epoch_args(0)) for r in range(world)]
    seen: List[np.ndarray] = []
    for step in range(3):  # every rank takes a step, then the job checkpoints
        for it in its:
            X, y = next(it)
            seen.append(X)
        with open(state_file, "w") as fh:
            json.dump(its[0].state_dict(), fh)  # ranks move in lockstep: rank 0's is everyone's

    # ... preempted; restarted on 3 ranks. Each loads the saved state and takes its share.
    with open(state_file) as fh:
        state = json.load(fh)
    rest = 0
    for r in range(3):
        it = f.batches(4096, rank=r, world_size=3, state=state,
                       **{**epoch_args(state["epoch"]), "epoch": None})
        rest += sum(len(X) for X, _ in it)
    padded = sum(b - a for a, b in it.padded)
    print(f"before: {sum(len(X) for X in seen)} rows, after: {rest} rows, "
          f"padded: {padded} rows, file: {f.nrows} rows")
    assert sum(len(X) for X in seen) + rest == f.nrows + padded


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "data/train.spill",
         sys.argv[2] if len(sys.argv) > 2 else ".")
