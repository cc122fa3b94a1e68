"""How a dataset's batches are cut from its shards: the ``(shard, start, stop)`` pieces of the
``"shards"`` shuffle, and pieces grouped into per-shard runs. Pure functions over row numbers."""
from __future__ import annotations

from typing import Iterable, List, Tuple


from . import spillfile

MASK64 = (1 << 64) - 1


def shard_sequence(per: List[List[Tuple[int, int]]], block_rows: int, seed: int,
                   window: int) -> List[Tuple[int, int, int]]:
    """The ``(shard, start, stop)`` pieces of ``shuffle="shards"`` in read order, from the local
    ranges of each shard (``per``): the shard order permuted by ``seed``, then the blocks of each
    ``window`` consecutive shards of that order permuted together by :func:`window_seed`."""
    order = spillfile.splitmix64_permutation(len(per), seed)
    out: List[Tuple[int, int, int]] = []
    for w in range(0, len(order), window):
        blocks = [(i, blk) for i in order[w:w + window]
                  for blk in spillfile.cut_blocks(per[i], block_rows)]
        for k in spillfile.splitmix64_permutation(len(blocks), window_seed(seed, w)):
            i, blk = blocks[k]
            out.extend((i, a, b) for a, b in blk)
    return out


def window_seed(seed: int, w: int) -> int:
    """The block permutation seed of the window starting at shard position ``w``: SplitMix64's
    output number ``w + 1`` from state ``seed`` (a different, well-mixed seed per window)."""
    z = (seed + (w + 1) * 0x9E3779B97F4A7C15) & MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
    return z ^ (z >> 31)


def runs_of(pieces: Iterable[Tuple[int, int, int]]) -> List[Tuple[int, List[Tuple[int, int]]]]:
    """``(shard, start, stop)`` pieces as runs ``(shard, [local ranges])`` of consecutive pieces
    of one shard, adjacent ranges merged."""
    runs: List[Tuple[int, List[Tuple[int, int]]]] = []
    for i, a, b in pieces:
        if runs and runs[-1][0] == i:
            last = runs[-1][1]
            if last[-1][1] == a:
                last[-1] = (last[-1][0], b)
            else:
                last.append((a, b))
        else:
            runs.append((i, [(a, b)]))
    return runs
