"""Regression tests of issue 21 for the numpy reader (item 10): `batches` and `take` refuse
arguments they used to take silently or fail on obscurely, with a TypeError for a wrong type and
a ValueError for a bad value, raised by the call itself."""
import os

import numpy as np
import pytest

import spillfile

HERE = os.path.dirname(os.path.abspath(__file__))
GOLDEN = os.path.join(HERE, "..", "..", "tests", "data", "v1.0", "golden.spill")


@pytest.fixture
def f():
    with spillfile.open(GOLDEN) as f:
        yield f


@pytest.mark.parametrize("bad", [10.5, "3", 2.0, None, True])
def test_i21_10_batches_refuses_a_batch_rows_that_is_not_an_int(f, bad):
    with pytest.raises(TypeError, match="batch_rows must be an int"):
        f.batches(bad)


def test_i21_10_batches_refuses_a_range_of_three_values(f):
    with pytest.raises(ValueError, match=r"\(0, 1, 2\) has 3 values"):
        f.batches(2, ranges=[(0, 1, 2)])


@pytest.mark.parametrize("bad", [[(0.0, 1.5)], [(0, 2.0)], (0.0, 2.0)])
def test_i21_10_batches_refuses_float_ranges(f, bad):
    with pytest.raises(TypeError, match=r"row ranges \[\(start, stop\), \.\.\.\]"):
        f.batches(2, ranges=bad)


@pytest.mark.parametrize("bad", ["1", 1.0, None])
def test_i21_10_batches_refuses_a_seed_that_is_not_an_int(f, bad):
    with pytest.raises(TypeError, match="seed must be an int"):
        f.batches(2, shuffle="blocks", seed=bad)


def test_i21_10_batches_refuses_block_rows_0_with_a_shuffle(f):
    # It used to fall back to batch_rows (`block_rows or batch_rows`).
    with pytest.raises(ValueError, match="block_rows must be at least 1"):
        f.batches(2, shuffle="blocks", block_rows=0)


@pytest.mark.parametrize("rows", [[1, 2], [1, 2, 3], np.array([0, 4]), 3])
def test_i21_10_take_refuses_row_indices_and_says_so(f, rows):
    with pytest.raises(TypeError, match=r"take\(\) takes row ranges .*take_rows"):
        f.take(rows, copy=True)


def test_row_ranges_and_numpy_integers_still_work(f):
    # One (start, stop) tuple, numpy integers and an (n, 2) array are row ranges as before.
    X, y = f.take((1, 3))
    assert X.shape == (2, 3) and len(y) == 2
    X, _ = f.take(np.array([[0, 2], [3, 5]]), copy=True)
    assert X.shape == (4, 3)
    got = list(f.batches(np.int64(2), shuffle="blocks", block_rows=np.uint32(1),
                         seed=np.uint64(7)))
    assert sum(len(b[0]) for b in got) == f.nrows
    assert [len(b[0]) for b in f.batches(2, ranges=[(0, 5)], seed=-1)] == [2, 2, 1]
