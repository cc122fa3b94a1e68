"""Train LightGBM from a spill file: the features go to LightGBM as Arrow columns over the
mapping (no copy), and the validation set is binned like the training set.

    python docs/examples/lightgbm_train.py [SPILL]
"""
import sys
from typing import Any, Dict

import lightgbm as lgb
import numpy as np

import spillway
import spillway.lightgbm

# Dataset parameters: the validation set (reference=) must be built with the same ones, and the
# training parameters repeat them, so LightGBM never overrides one with another.
DATASET: Dict[str, Any] = {"max_bin": 63, "verbose": -1}


def main(path: str) -> None:
    f = spillway.open(path)
    cut = int(np.quantile(f.column("ts"), 0.8))
    train, valid = f.split_by_time(cut)
    dtrain = spillway.lightgbm.dataset(f, ranges=train, **DATASET)  # NaN labels left out
    dvalid = spillway.lightgbm.dataset(f, ranges=valid, reference=dtrain, **DATASET)
    params = {"objective": "regression", "learning_rate": 0.1, "num_leaves": 31,
              "num_threads": 2, **DATASET}
    booster = lgb.train(params, dtrain, num_boost_round=20, valid_sets=[dvalid],
                        valid_names=["valid"], callbacks=[lgb.log_evaluation(5)])
    print(f"{booster.num_trees()} trees; left out for a NaN label: {dtrain.spillway_dropped}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "data/train.spill")
