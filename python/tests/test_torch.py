"""spillway.torch.Dataset: batches equal to the reader's, writable tensors, blocks sharded across
DataLoader workers (spawn and fork). Skipped where torch is absent: scripts/test-torch.sh."""
import pickle

import numpy as np
import pytest

import spillway
from test_adapters import split

torch = pytest.importorskip("torch", reason="PyTorch is not installed here (its wheel is large): "
                            "scripts/test-torch.sh installs it in target/venv-torch and runs these")


def rows_of(batches):
    return np.concatenate([b[0].numpy() for b in batches]) if batches else np.empty((0, 12))


def test_torch_dataset_single_process(signal_spill):
    f = spillway.open(signal_spill)
    before, _ = split(f)
    ds = spillway.torch.Dataset(signal_spill, batch_rows=1000, ranges=before, shuffle="blocks",
                                block_rows=3000, seed=4)
    assert isinstance(ds, torch.utils.data.IterableDataset)
    got = list(ds)
    X, y = got[0]
    assert X.dtype == torch.float32 and X.shape == (1000, 12) and y.shape == (1000,)
    X.add_(1.0)  # writable memory: in-place ops are safe
    want = np.concatenate([b[0] for b in f.batches(1000, ranges=before, shuffle="blocks",
                                                   block_rows=3000, seed=4)])
    np.testing.assert_array_equal(rows_of(got)[1000:], want[1000:])
    ds.set_epoch(1)
    assert not np.array_equal(rows_of(list(ds)), rows_of(got))


@pytest.mark.parametrize("context", ["spawn", "fork"])
def test_torch_dataset_shards_across_workers(signal_spill, context):
    f = spillway.open(signal_spill)
    ds = spillway.torch.Dataset(signal_spill, batch_rows=500, shuffle="blocks", block_rows=2000,
                                seed=1, with_time=True, with_symbols=True)
    pickle.loads(pickle.dumps(ds))
    loader = torch.utils.data.DataLoader(ds, batch_size=None, num_workers=2,
                                         multiprocessing_context=context)
    got = list(loader)
    X = rows_of(got)
    assert X.shape[0] == f.nrows  # every row once, across the two workers
    t = np.concatenate([b[2].numpy() for b in got])
    s = np.concatenate([b[3].numpy() for b in got])
    key = np.lexsort((t, s))
    order = np.lexsort((f.column("ts"), f.symbol_codes()))
    np.testing.assert_array_equal(X[key], f.features()[order])
