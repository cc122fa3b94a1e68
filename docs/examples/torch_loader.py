"""Train a linear model with PyTorch: a DataLoader over spillway.torch.Dataset, whose workers
each map the file and read their share of the shuffled blocks.

    python docs/examples/torch_loader.py [SPILL]
"""
import sys

import numpy as np
import torch

import spillway
import spillway.torch


def main(path: str) -> None:
    f = spillway.open(path)
    cut = int(np.quantile(f.column("ts"), 0.8))
    train, valid = f.split_by_time(cut)
    nfeatures = len(f.columns_with_role("feature"))
    ds = spillway.torch.Dataset(path, batch_rows=4096, ranges=train, shuffle="blocks", seed=0,
                                num_workers=2, drop_last=True)  # as many batches per worker
    loader = torch.utils.data.DataLoader(ds, batch_size=None, num_workers=2,
                                         multiprocessing_context="spawn")
    model = torch.nn.Linear(nfeatures, 1)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for epoch in range(2):
        ds.set_epoch(epoch)  # a new block order each epoch
        for X, y in loader:  # float32 tensors (batch_rows, features) and (batch_rows,)
            keep = torch.isfinite(y) & torch.isfinite(X).all(dim=1)
            loss = torch.nn.functional.mse_loss(model(X[keep]).squeeze(1), y[keep])
            opt.zero_grad()
            loss.backward()
            opt.step()
    with torch.no_grad():
        X, y = (torch.from_numpy(a) for a in f.take(valid, copy=True))
        keep = torch.isfinite(y) & torch.isfinite(X).all(dim=1)
        mse = torch.nn.functional.mse_loss(model(X[keep]).squeeze(1), y[keep])
    print(f"validation MSE: {mse.item():.6f}")


if __name__ == "__main__":  # DataLoader's spawned workers import this file
    main(sys.argv[1] if len(sys.argv) > 1 else "data/train.spill")
