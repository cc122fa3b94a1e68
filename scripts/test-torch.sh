#!/usr/bin/env bash
# The PyTorch tests, which scripts/test.sh skips: spillway.torch.Dataset (test_torch.py: ranks,
# DataLoader workers, torchdata's StatefulDataLoader resuming exactly and elastically), the book's
# DataLoader example, and Ray Train's get_dataset_shard + iter_torch_batches over
# spillway.ray.read_spill in test_ray.py. torch's wheel is large, so it lives in its own venv,
# target/venv-torch, with torchdata (StatefulDataLoader). Tries the CPU-only wheel index for
# torch first, then PyPI.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=target/venv-torch
pip=("$venv/bin/pip" install --quiet --disable-pip-version-check)
if ! "$venv/bin/python" -c 'import numpy, pytest, pyarrow, mypy' 2>/dev/null; then
  python3 -m venv "$venv"
  "${pip[@]}" -r scripts/requirements-test.txt
fi
if ! "$venv/bin/python" -c 'import torch' 2>/dev/null; then
  "${pip[@]}" torch --index-url https://download.pytorch.org/whl/cpu 2>/dev/null \
    || "${pip[@]}" torch
fi
# StatefulDataLoader came with torchdata 0.8, which asks only torch>=2: the torch above stays.
if ! "$venv/bin/python" -c 'import torchdata.stateful_dataloader' 2>/dev/null; then
  "${pip[@]}" 'torchdata>=0.8'
fi
"$venv/bin/python" -c 'import torch, torchdata
print("torch", torch.__version__, "torchdata", torchdata.__version__)'
scripts/install-python.sh "$venv"   # CI's wheel
"$venv/bin/python" -m pytest -v python/tests/test_torch.py python/tests/test_adapters.py "$@"
"$venv/bin/python" -m pytest -v python/tests/test_docs_examples.py -k torch "$@"
SPILLWAY_REQUIRE_RAY=1 "$venv/bin/python" -m pytest -v python/tests/test_ray.py -k torch "$@"
