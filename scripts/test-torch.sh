#!/usr/bin/env bash
# The PyTorch tests (python/tests/test_adapters.py, the book's DataLoader example, and Ray Train's get_dataset_shard +
# iter_torch_batches over spillway.ray.read_spill in test_ray.py), which scripts/test.sh skips:
# torch's wheel is large, so it lives in its own venv, target/venv-torch. Tries the CPU-only wheel
# index first, then PyPI.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=target/venv-torch
if ! "$venv/bin/python" -c 'import torch, numpy, pytest, pyarrow, mypy' 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r scripts/requirements-test.txt
  "$venv/bin/pip" install --quiet --disable-pip-version-check torch \
      --index-url https://download.pytorch.org/whl/cpu 2>/dev/null \
    || "$venv/bin/pip" install --quiet --disable-pip-version-check torch
fi
"$venv/bin/python" -c 'import torch; print("torch", torch.__version__)'
scripts/install-python.sh "$venv"   # CI's wheel
"$venv/bin/python" -m pytest -v python/tests/test_torch.py python/tests/test_adapters.py "$@"
"$venv/bin/python" -m pytest -v python/tests/test_docs_examples.py -k torch "$@"
SPILLWAY_REQUIRE_RAY=1 "$venv/bin/python" -m pytest -v python/tests/test_ray.py -k torch "$@"
