"""How a dataset's batches are cut from its shards: the ``(shard, start, stop)`` pieces of the
``"shards"`` shuffle, pieces grouped into per-shard runs, and the pieces read from the shards
re-cut into batches of the planned sizes. Pure functions over row numbers and arrays."""
from __future__ import annotations

from typing import Any, Iterable, Iterator, List, Tuple

import numpy as np

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


def tag(runs: List[Tuple[int, List[Tuple[int, int]]]],
         pieces: Iterable[Tuple[Any, ...]]) -> Iterator[Tuple[int, Tuple[Any, ...]]]:
    """Each batch piece with its shard: the pieces come run after run, in order, each run's rows
    in whole pieces (a piece never spans two runs)."""
    it = iter(pieces)
    for i, local in runs:
        need = sum(b - a for a, b in local)
        while need > 0:
            p = next(it)
            need -= len(p[0])
            yield i, p


def rechunk(it: Iterable[Tuple[Any, ...]], sizes: Iterable[int]) -> Iterator[Tuple[Any, ...]]:
    """Batches (tuples of arrays, None allowed) re-cut to the rows of ``sizes``, in order,
    joining short pieces."""
    held: List[Tuple[Any, ...]] = []
    have = 0
    left = iter(sizes)
    want = next(left, None)
    for piece in it:
        rows = len(piece[0])
        if not held and rows == want:
            yield piece
            want = next(left, None)
            continue
        held.append(piece)
        have += rows
        while want is not None and have >= want:
            joined = tuple(None if parts[0] is None else np.concatenate(parts)
                           for parts in zip(*held))
            yield tuple(None if a is None else np.ascontiguousarray(a[:want]) for a in joined)
            rest = tuple(None if a is None else a[want:] for a in joined)
            have -= want
            held = [rest] if have else []
            want = next(left, None)
