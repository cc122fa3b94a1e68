"""spillway.torch.Dataset: the reader's batches as tensors (float32, float16, bfloat16), dealt to
DDP ranks and DataLoader workers (spawn and fork) with drop_last or pad, reshuffled by set_epoch,
and resumed by torchdata's StatefulDataLoader: exactly (same world) or elastically (another).
Skipped where torch is absent: scripts/test-torch.sh runs these in target/venv-torch."""
import hashlib
import pickle

import numpy as np
import pytest

import spillway
from test_adapters import split

torch = pytest.importorskip("torch", reason="PyTorch is not installed here (its wheel is large): "
                            "scripts/test-torch.sh installs it in target/venv-torch and runs these")

# torchdata 0.11 calls torch.set_vital, which torch 2.15 deprecates, once per loader.
pytestmark = pytest.mark.filterwarnings("ignore:'set_vital' is deprecated")

ARGS = dict(batch_rows=900, shuffle="blocks", block_rows=2000, seed=3)


def stateful_loader(ds, workers, context=None):
    sdl = pytest.importorskip("torchdata.stateful_dataloader", reason="torchdata is not installed "
                              "here: scripts/test-torch.sh installs it in target/venv-torch")
    return sdl.StatefulDataLoader(ds, batch_size=None, num_workers=workers,
                                  multiprocessing_context=context if workers else None)


def digest(batch):
    return hashlib.sha256(batch[0].numpy().tobytes() + batch[1].numpy().tobytes()).hexdigest()


def rows_of(batches):
    return np.concatenate([b[0].numpy() for b in batches]) if batches else np.empty((0, 12))


class Rows:
    """The file row of each row of batches yielded with_time and with_symbols (symbol and time
    identify a row), and row counts to compare deliveries with."""

    def __init__(self, f):
        codes, ts = f.symbol_codes().astype(np.int64), f.column(f.time_column)
        self.times = np.unique(ts)
        self.keys = codes * len(self.times) + np.searchsorted(self.times, ts)
        assert np.all(np.diff(self.keys) > 0)  # symbol-major: sorted, unique
        self.nrows = f.nrows

    def of(self, batches):
        if not batches:
            return np.empty(0, np.int64)
        t = np.concatenate([b[2].numpy() for b in batches])
        s = np.concatenate([b[3].numpy() for b in batches])
        assert s.dtype == np.int64
        return np.searchsorted(self.keys, s * len(self.times) + np.searchsorted(self.times, t))

    def count(self, rows):
        return np.bincount(rows, minlength=self.nrows)

    def ranges(self, ranges):
        out = np.zeros(self.nrows, np.int64)
        for a, b in ranges:
            out[a:b] += 1
        return out


def test_batches_are_the_readers(signal_spill):
    f = spillway.open(signal_spill)
    before, _ = split(f)
    ds = spillway.torch.Dataset(signal_spill, ranges=before, **ARGS)
    assert isinstance(ds, torch.utils.data.IterableDataset)
    ds.set_epoch(1)
    got = list(ds)
    X, y = got[0]
    assert X.dtype == torch.float32 and X.shape == (900, 12) and y.dtype == torch.float32
    X.add_(1.0)  # writable memory: in-place ops are safe
    want = list(f.batches(ranges=before, epoch=1, **ARGS))
    assert len(ds) == len(got) == len(want)
    np.testing.assert_array_equal(rows_of(got[1:]), np.concatenate([b[0] for b in want[1:]]))
    np.testing.assert_array_equal(got[5][1].numpy(), want[5][1])
    pickle.loads(pickle.dumps(ds))  # after iterating too: the open file is not pickled


def test_set_epoch_reshuffles(signal_spill):
    ds = spillway.torch.Dataset(signal_spill, **ARGS)
    ds.set_epoch(1)
    one = [digest(b) for b in ds]
    assert [digest(b) for b in ds] == one  # the same epoch, the same order
    ds.set_epoch(2)
    two = [digest(b) for b in ds]
    assert two != one
    want = spillway.open(signal_spill).batches(epoch=2, **ARGS)
    assert two == [digest(tuple(torch.from_numpy(a) for a in b)) for b in want]


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_half_precision_is_the_cast_of_float32(signal_spill, dtype):
    want = list(spillway.torch.Dataset(signal_spill, **ARGS))
    got = list(spillway.torch.Dataset(signal_spill, dtype=dtype, **ARGS))
    assert len(got) == len(want)
    for (X, y), (X32, y32) in zip(got, want):
        assert X.dtype == getattr(torch, dtype) and y.dtype == torch.float32
        torch.testing.assert_close(X, X32.to(X.dtype), rtol=0, atol=0, equal_nan=True)
        torch.testing.assert_close(y, y32, rtol=0, atol=0, equal_nan=True)


@pytest.mark.parametrize("context", ["spawn", "fork"])
def test_workers_share_the_epoch(signal_spill, context):
    f = spillway.open(signal_spill)
    kw = dict(batch_rows=500, shuffle="blocks", block_rows=2000, seed=1, drop_last=True)
    ds = spillway.torch.Dataset(signal_spill, with_time=True, with_symbols=True, num_workers=2,
                                **kw)
    loader = torch.utils.data.DataLoader(ds, batch_size=None, num_workers=2,
                                         multiprocessing_context=context)
    got = list(loader)
    assert len(got) == len(loader) == len(ds)
    rows = Rows(f)
    dropped = f.batches(num_workers=2, **kw).dropped  # the epoch's partial last batch
    assert sum(b - a for a, b in dropped) == f.nrows % 500
    np.testing.assert_array_equal(rows.count(rows.of(got)), 1 - rows.ranges(dropped))
    np.testing.assert_array_equal(rows_of(got), f.features()[rows.of(got)])


def test_uneven_workers_need_drop_last_or_pad(signal_spill):
    with pytest.raises(ValueError, match="pass drop_last=True or pad=True to "
                                         "spillway.torch.Dataset"):
        spillway.torch.Dataset(signal_spill, rank=1, world_size=2)
    ds = spillway.torch.Dataset(signal_spill, batch_rows=5000)
    loader = torch.utils.data.DataLoader(ds, batch_size=None, num_workers=2)
    with pytest.raises(ValueError, match=r"world_size x num_workers = 1 x 2 > 1: pass drop_last"):
        list(loader)


def test_rank_and_world_size_defaults(signal_spill, monkeypatch, tmp_path):
    monkeypatch.setenv("RANK", "2")
    monkeypatch.setenv("WORLD_SIZE", "3")
    ds = spillway.torch.Dataset(signal_spill, pad=True)
    assert (ds.rank, ds.world_size) == (2, 3)
    dist = torch.distributed
    if not dist.is_available():
        pytest.skip("this torch has no torch.distributed")
    dist.init_process_group("gloo", init_method=f"file://{tmp_path}/store", rank=0, world_size=1)
    try:
        ds = spillway.torch.Dataset(signal_spill)
        assert (ds.rank, ds.world_size) == (0, 1)  # torch.distributed's, not the environment's
        assert spillway.torch.Dataset(signal_spill, rank=1, world_size=2, pad=True).rank == 1
    finally:
        dist.destroy_process_group()


@pytest.mark.parametrize("workers", [0, 2])
def test_stateful_loader_resumes_exactly(signal_spill, workers):
    def loader():
        ds = spillway.torch.Dataset(signal_spill, drop_last=True, **ARGS)
        ds.set_epoch(2)
        return stateful_loader(ds, workers)
    full = [digest(b) for b in loader()]
    for k in (0, 7, len(full)):
        first = loader()
        it = iter(first)
        assert [digest(next(it)) for _ in range(k)] == full[:k]
        saved = pickle.loads(pickle.dumps(first.state_dict()))  # as a checkpoint keeps it
        del it
        again = loader()
        again.load_state_dict(saved)
        assert [digest(b) for b in again] == full[k:], k
        assert [digest(b) for b in again] == full  # the next iteration starts the epoch over


@pytest.mark.parametrize("world", [2, 3])
@pytest.mark.parametrize("even", ["drop_last", "pad"])
def test_ranks_and_workers_get_equal_shares(signal_spill, world, even):
    f = spillway.open(signal_spill)
    rows = Rows(f)
    kw = dict(batch_rows=650, shuffle="blocks", block_rows=3000, seed=5, **{even: True})
    delivered, counts = [], set()
    for rank in range(world):
        ds = spillway.torch.Dataset(signal_spill, rank=rank, world_size=world, num_workers=2,
                                    with_time=True, with_symbols=True, **kw)
        got = list(torch.utils.data.DataLoader(ds, batch_size=None, num_workers=2))
        assert len(got) == len(ds)
        counts.add(len(got))
        delivered.append(rows.of(got))
    assert len(counts) == 1
    it = f.batches(world_size=world, num_workers=2, **kw)
    want = 1 - rows.ranges(it.dropped) + rows.ranges(it.padded)
    assert (it.dropped if even == "drop_last" else it.padded)  # the case is not trivial
    np.testing.assert_array_equal(rows.count(np.concatenate(delivered)), want)


def test_elastic_resume_delivers_every_row_once(signal_spill):
    """Two ranks of two workers stop after k batches; rank 0's merged state resumes three ranks
    of two (spawned) workers: the rows delivered before and after are every row once, less
    those the new world drops to even out."""
    f = spillway.open(signal_spill)
    rows = Rows(f)
    kw = dict(drop_last=True, with_time=True, with_symbols=True, **ARGS)
    before, saved = [], []
    for rank in range(2):
        ds = spillway.torch.Dataset(signal_spill, rank=rank, world_size=2, **kw)
        ds.set_epoch(4)
        loader = stateful_loader(ds, 2)
        it = iter(loader)
        before += [next(it) for _ in range(9)]
        saved.append(pickle.loads(pickle.dumps(loader.state_dict())))
        del it
    merged = [spillway.torch.merge_states(spillway.torch.loader_states(s)) for s in saved]
    assert merged[0]["cursor"] == merged[1]["cursor"] == 2 * 9 and merged[0]["epoch"] == 4
    after, counts = [], set()
    for rank in range(3):
        ds = spillway.torch.Dataset(signal_spill, rank=rank, world_size=3, num_workers=2, **kw)
        ds.load_state_dict(merged[0])
        ds.set_epoch(4)  # the state's epoch: kept
        got = list(stateful_loader(ds, 2, "spawn"))
        counts.add(len(got))
        after += got
    assert len(counts) == 1
    dropped = f.batches(world_size=3, num_workers=2, state=merged[0], **ARGS,
                        drop_last=True).dropped
    want = 1 - rows.ranges(dropped)
    np.testing.assert_array_equal(rows.count(np.concatenate([rows.of(before),
                                                             rows.of(after)])), want)
    ds.set_epoch(5)  # another epoch: the loaded state is dropped, the epoch starts over
    assert ds.state_dict()["cursor"] == 0 and ds.state_dict()["epoch"] == 5


def test_a_dataset_manifest_and_a_list_of_files(tmp_path):
    """A dataset.json, and a list of its shards, read as the single-machine file with the same
    arguments; a state of the list resumes the manifest (both name the same shards)."""
    from conftest import make_universe
    u = make_universe(str(tmp_path / "u"), symbols=6, rows=900, features=4, seed=2)
    single = str(tmp_path / "single.spill")
    spillway.build(u, single, target="target")
    shards = [str(tmp_path / f"s{i}.spill") for i in range(2)]
    for i, s in enumerate(shards):
        spillway.build(u, s, target="target", shard=f"{i}/2")
    manifest = str(tmp_path / "dataset.json")
    spillway.dataset.write_manifest(shards, manifest)
    kw = dict(batch_rows=700, shuffle="blocks", block_rows=500, seed=9)
    want = [digest(b) for b in spillway.torch.Dataset(single, **kw)]
    assert [digest(b) for b in spillway.torch.Dataset(manifest, **kw)] == want
    files = spillway.torch.Dataset(shards, **kw)
    files = pickle.loads(pickle.dumps(files))  # as a spawned worker gets it: the files re-opened
    assert [digest(b) for b in files] == want
    it = iter(files)
    next(it), next(it)
    state = pickle.loads(pickle.dumps(files.state_dict()))
    again = spillway.torch.Dataset(spillway.open_dataset(manifest), **kw)
    again.load_state_dict(state)
    assert [digest(b) for b in again] == want[2:]
    with pytest.raises(ValueError, match="another file or another selection"):
        other = spillway.torch.Dataset(single, **kw)
        other.load_state_dict(state)
        list(other)


def test_loader_states_refuses_what_is_not_one():
    with pytest.raises(ValueError, match="not a StatefulDataLoader state"):
        spillway.torch.loader_states({"x": 1})
    with pytest.raises(ValueError, match="snapshot is 2 batches old"):
        spillway.torch.loader_states({"_snapshot": {}, "_steps_since_snapshot": 2})
