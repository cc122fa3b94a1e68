"""Train XGBoost from a spill file: QuantileDMatrix pulls large batches through
spillway.xgboost.DataIter, and the validation matrix takes the training matrix's quantiles.

    python docs/examples/xgboost_train.py [SPILL]
"""
import sys

import numpy as np
import xgboost as xgb

import spillway
import spillway.xgboost

MAX_BIN = 63  # the same for the training and the validation QuantileDMatrix, and in the params


def main(path: str) -> None:
    f = spillway.open(path)
    cut = int(np.quantile(f.column("ts"), 0.8))
    train, valid = f.split_by_time(cut)
    it = spillway.xgboost.DataIter(f, ranges=train)  # ~1M-row batches, NaN labels dropped
    dtrain = xgb.QuantileDMatrix(it, max_bin=MAX_BIN)
    dvalid = xgb.QuantileDMatrix(spillway.xgboost.DataIter(f, ranges=valid), ref=dtrain,
                                 max_bin=MAX_BIN)
    params = {"objective": "reg:squarederror", "tree_method": "hist", "max_bin": MAX_BIN,
              "eta": 0.1, "nthread": 2}
    booster = xgb.train(params, dtrain, num_boost_round=20, evals=[(dvalid, "valid")],
                        verbose_eval=5)
    print(f"{booster.num_boosted_rounds()} rounds; NaN labels dropped: {it.dropped}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "data/train.spill")
