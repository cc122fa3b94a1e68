"""The loader API of batches(): epochs, ranks and workers with even counts, resumable state
(exact at the same world size, elastic across world sizes), column subsets, dtypes, out=, checked
reads, take_rows. Rows carry their own number (feature ``row``) so unions can be counted."""
import collections
import hashlib
import json
import shutil

import numpy as np
import pytest

import spillfile
from writer import write_spill

N = 1000


@pytest.fixture(scope="module")
def f(tmp_path_factory):
    """N rows; feature ``row`` holds each row's number, ``sq`` its square root, ``neg`` -row."""
    r = np.arange(N, dtype=np.float32)
    cols = [("target", "target", r * 2), ("row", "feature", r), ("sq", "feature", np.sqrt(r)),
            ("neg", "feature", -r)]
    p = str(tmp_path_factory.mktemp("loader") / "rows.spill")
    return spillfile.open(write_spill(p, cols, [("A", 0, 600), ("B", 600, N)], chunk_bytes=4096))


def rows_of(batches):
    return [int(v) for X, _ in batches for v in X[:, 0]]


def digest(batches):
    h = hashlib.sha256()
    for b in batches:
        for a in b:
            h.update(b"-" if a is None else a.tobytes())
    return h.hexdigest()


SHUFFLES = [dict(), dict(shuffle="blocks", block_rows=64, seed=7)]


def test_fingerprint_test_vector_shared_with_rust():
    # SPEC.md and spill/tests/spill/batch_state.rs assert the same value.
    assert spillfile._fingerprint("spill-batches-v1;len=8192;meta=12345;ranges=0-100") == \
        "1b59de144a8c991e"


def test_epoch_reshuffles_and_epoch_zero_is_the_seed(f):
    a = rows_of(f.batches(32, shuffle="blocks", block_rows=16, seed=3))
    b = rows_of(f.batches(32, shuffle="blocks", block_rows=16, seed=3, epoch=1))
    c = rows_of(f.batches(32, shuffle="blocks", block_rows=16, seed=4))
    assert a != b and b == c and sorted(a) == sorted(b) == list(range(N))


@pytest.mark.parametrize("kw", SHUFFLES)
@pytest.mark.parametrize("world, workers", [(1, 1), (2, 1), (3, 2), (4, 3), (7, 1)])
@pytest.mark.parametrize("even", ["drop_last", "pad"])
@pytest.mark.parametrize("batch_rows", [1, 30, 64])
def test_ranks_and_workers_get_equal_counts_and_every_row_once(f, kw, world, workers, even,
                                                              batch_rows):
    seen, counts = collections.Counter(), set()
    ranges = [(10, 900), (950, 1000)]
    for rank in range(world):
        for w in range(workers):
            it = f.batches(batch_rows, ranges=ranges, rank=rank, world_size=world, worker=w,
                           num_workers=workers, **{even: True}, **kw)
            n = len(it)
            got = list(it)
            assert len(got) == n and len(it) == 0
            counts.add(n)
            if even == "drop_last":
                assert all(len(X) == batch_rows for X, _ in got)
            seen.update(rows_of(got))
    assert len(counts) == 1  # every (rank, worker) yields as many batches
    want = collections.Counter(r for a, b in ranges for r in range(a, b))
    dropped = [r for a, b in it.dropped for r in range(a, b)]
    padded = [r for a, b in it.padded for r in range(a, b)]
    want.subtract(dropped)
    want.update(padded)
    assert +want == seen
    assert (not dropped or even == "drop_last") and (not padded or even == "pad")


def test_several_ranks_need_an_explicit_evenness(f):
    with pytest.raises(ValueError, match="drop_last=True or pad=True"):
        f.batches(10, rank=0, world_size=2)
    with pytest.raises(ValueError, match="exclude"):
        f.batches(10, drop_last=True, pad=True)
    with pytest.raises(ValueError, match="rank < world_size"):
        f.batches(10, rank=2, world_size=2, pad=True)
    # One rank: drop_last drops the short last batch; nothing else changes.
    it = f.batches(300, drop_last=True)
    assert [len(X) for X, _ in it] == [300] * 3 and it.dropped == [(900, 1000)]


@pytest.mark.parametrize("kw", SHUFFLES)
def test_resume_gives_exactly_the_next_10000_batches(tmp_path, kw):
    n = 90_000  # 11250 batches of 8
    r = np.arange(n, dtype=np.float32)
    g = spillfile.open(write_spill(str(tmp_path / "r.spill"),
                                   [("target", "target", r), ("row", "feature", r)], [("A", 0, n)]))
    it = g.batches(8, **kw)
    for _ in range(1234):
        next(it)
    state = json.loads(json.dumps(it.state_dict()))
    assert len(json.dumps(state)) <= 1024
    want = digest(b for _, b in zip(range(10_000), it))
    resumed = g.batches(8, state=state, **kw)
    assert len(resumed) == len(it) + 10_000
    assert digest(b for _, b in zip(range(10_000), resumed)) == want


@pytest.mark.parametrize("kw", SHUFFLES)
@pytest.mark.parametrize("w0, w1", [(2, 3), (3, 2), (4, 1), (1, 4)])
@pytest.mark.parametrize("even", ["drop_last", "pad"])
def test_resume_at_another_world_size_delivers_the_rest_once(f, kw, w0, w1, even):
    ev = {even: True}
    its = [f.batches(16, rank=r, world_size=w0, **ev, **kw) for r in range(w0)]
    before = collections.Counter()
    for _ in range(5):  # five steps in lockstep
        for it in its:
            before.update(rows_of([next(it)]))
    state = its[0].state_dict()
    assert all(it.state_dict()["cursor"] == state["cursor"] for it in its)
    after = collections.Counter()
    for r in range(w1):
        it = f.batches(16, rank=r, world_size=w1, state=state, **ev, **kw)
        after.update(rows_of(it))
    assert not (set(before) & set(after) - {x for a, b in it.padded for x in range(a, b)})
    total = before + after
    want = collections.Counter(range(N))
    want.subtract(x for a, b in it.dropped for x in range(a, b))
    want.update(x for a, b in it.padded for x in range(a, b))
    assert +want == total


def test_a_finished_rank_state_resumes_nothing(f):
    it = f.batches(100, shuffle="blocks", block_rows=50)
    list(it)
    assert list(f.batches(100, shuffle="blocks", block_rows=50, state=it.state_dict())) == []


def test_worker_states_resume_the_worker_or_merge(f):
    kw = dict(shuffle="blocks", block_rows=32, seed=1, world_size=2, num_workers=3, pad=True)
    full = {(r, w): [X for X, _ in f.batches(16, rank=r, worker=w, **kw)]
            for r in range(2) for w in range(3)}
    # An in-order DataLoader of rank 0 delivered 7 batches: workers 0, 1, 2, 0, 1, 2, 0.
    its = {w: f.batches(16, rank=0, worker=w, **kw) for w in range(3)}
    for j in range(7):
        next(its[j % 3])
    states = [its[w].state_dict() for w in range(3)]
    again = f.batches(16, rank=0, worker=1, state=states[1], **kw)
    assert [X.tolist() for X, _ in again] == [X.tolist() for X in full[(0, 1)][2:]]
    with pytest.raises(ValueError, match="merge the workers' states"):
        f.batches(16, rank=0, worker=1, state=states[1], **{**kw, "num_workers": 2})
    merged = spillfile.merge_states(states)
    assert merged["num_workers"] == 1 and merged["cursor"] == 7 * 2
    with pytest.raises(ValueError, match="not a prefix"):
        spillfile.merge_states([states[0], its[1].state_dict() | {"worker_batches": 0},
                                states[2]])
    # Resumed by one process with no workers, rank 0 continues with its 8th batch.
    rest = f.batches(16, rank=0, world_size=2, pad=True, shuffle="blocks", block_rows=32, seed=1,
                     state=merged)
    interleaved = [X for j in range(10) for X in full[(0, j % 3)][j // 3:j // 3 + 1]]
    assert [X.tolist() for X, _ in rest][:3] == [X.tolist() for X in interleaved[7:10]]


def test_a_state_of_another_file_or_selection_is_refused(f, tmp_path):
    state = f.batches(16).state_dict()
    with pytest.raises(ValueError, match="another file or another selection"):
        f.batches(16, ranges=[(0, 500)], state=state)
    with pytest.raises(ValueError, match="batch_rows=16, this call has batch_rows=32"):
        f.batches(32, state=state)
    with pytest.raises(ValueError, match="epoch 0, this call asks for epoch 2"):
        f.batches(16, state=state, epoch=2)
    r = np.arange(N, dtype=np.float32)
    other = spillfile.open(write_spill(str(tmp_path / "other.spill"),
                                       [("target", "target", r), ("row", "feature", r + 1)],
                                       [("A", 0, N)]))
    with pytest.raises(ValueError, match="another file"):
        other.batches(16, state=state)
    with pytest.raises(ValueError, match="state must be a dict"):
        f.batches(16, state={"cursor": 3})


def test_columns_in_any_order_dtypes_and_out(f):
    (X, y), = f.batches(N, columns=["neg", "row"], target=False)
    assert y is None
    np.testing.assert_array_equal(X, np.stack([-np.arange(N), np.arange(N)], 1))
    (H, _), = f.batches(N, columns=["sq", "row"], dtype="float16")
    ref = np.stack([np.sqrt(np.arange(N, dtype=np.float32)), np.arange(N, dtype=np.float32)], 1)
    assert H.dtype == np.float16
    np.testing.assert_array_equal(H, ref.astype(np.float16))
    (B, _), = f.batches(N, columns=["sq", "row"], dtype="bfloat16")
    assert B.dtype == np.uint16
    back = (B.astype(np.uint32) << 16).view(np.float32)
    assert np.all(np.abs(back - ref) <= np.abs(ref) / 128)
    np.testing.assert_array_equal(B, spillfile._bfloat16_bits(ref))
    out = np.empty((64, 3), np.float32)
    seen = []
    for X, _ in f.batches(64, out=out):
        assert np.shares_memory(X, out)
        seen.extend(X[:, 0].astype(int).tolist())
    assert seen == list(range(N))
    with pytest.raises(ValueError, match="need"):
        f.batches(128, out=out)
    with pytest.raises(TypeError, match="out must be"):
        f.batches(64, out=out.astype(np.float16))


def test_bfloat16_rounds_to_nearest_even_and_keeps_nan():
    x = np.array([1.0, 1.00390625, 1.01171875, -2.5, np.inf, np.nan, 3.4e38], np.float32)
    b = spillfile._bfloat16_bits(x)
    back = (b.astype(np.uint32) << 16).view(np.float32)
    assert back[0] == 1.0 and back[1] == 1.0 and back[2] == 1.015625 and back[3] == -2.5
    assert np.isinf(back[4]) and np.isnan(back[5])


def test_verify_names_the_damaged_column_and_rows(tmp_path):
    n = 3000  # float32 columns in 4 KiB chunks: rows [0, 1024), [1024, 2048), [2048, 3000)
    r = np.arange(n, dtype=np.float32)
    path = write_spill(str(tmp_path / "bad.spill"), [("target", "target", r), ("row", "feature", r),
                                                    ("sq", "feature", np.sqrt(r))],
                       [("A", 0, n)], chunk_bytes=4096)
    col = spillfile.open(path).column_info("sq")
    with open(path, "r+b") as fh:  # one byte of "sq" in its second chunk
        fh.seek(col.offset + 4096 + 8)
        b = fh.read(1)
        fh.seek(col.offset + 4096 + 8)
        fh.write(bytes([b[0] ^ 0x40]))
    g = spillfile.open(path)
    assert len(list(g.batches(100))) == 30  # unchecked: served silently
    assert len(list(g.batches(100, ranges=[(0, 1024), (2048, 3000)], verify=True))) == 20
    it = g.batches(100, verify=True)
    assert len([next(it) for _ in range(10)]) == 10  # rows below 1000: chunk 0 only
    with pytest.raises(spillfile.SpillError, match=r"column 'sq' rows \[1024, 2048\) \(chunk 1\)"):
        list(it)
    with pytest.raises(spillfile.SpillError, match="checksum mismatch"):
        g.batches(10, columns=["sq"], ranges=[(1500, 1510)], verify=True).__next__()


def test_take_rows_gathers_any_rows_in_any_order(f):
    idx = np.array([999, 0, 5, 5, 640, 3])
    X, y = f.take_rows(idx, columns=["neg", "row"])
    np.testing.assert_array_equal(X, np.stack([-idx, idx], 1).astype(np.float32))
    np.testing.assert_array_equal(y, idx * 2)
    H, _ = f.take_rows(idx, dtype="float16")
    assert H.dtype == np.float16 and H.shape == (6, 3)
    with pytest.raises(IndexError, match="row 1000"):
        f.take_rows([1000])
    with pytest.raises(IndexError, match="row -1"):
        f.take_rows([-1])
    with pytest.raises(TypeError, match="1-D array of ints"):
        f.take_rows([1.5])
    X, y = f.take_rows([])
    assert X.shape == (0, 3)


def test_take_copies_only_the_rows_asked_for(f):
    X, y = f.take([(3, 6), (10, 12)], columns=["neg", "row"], copy=True)
    np.testing.assert_array_equal(X[:, 1], [3, 4, 5, 10, 11])
    np.testing.assert_array_equal(X[:, 0], [-3, -4, -5, -10, -11])
    with pytest.raises(spillfile.SpillError, match="copy=True"):
        f.take((3, 6), columns=["neg", "row"])
