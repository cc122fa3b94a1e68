#!/usr/bin/env bash
# The PyTorch tests (python/tests/test_adapters.py), which scripts/test.sh skips: torch's wheel is
# large, so it lives in its own venv, target/venv-torch. Tries the CPU-only wheel index first,
# then PyPI.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=target/venv-torch
if ! "$venv/bin/python" -c 'import torch, numpy, pytest, pyarrow, maturin' 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r scripts/requirements-test.txt
  "$venv/bin/pip" install --quiet --disable-pip-version-check torch \
      --index-url https://download.pytorch.org/whl/cpu 2>/dev/null \
    || "$venv/bin/pip" install --quiet --disable-pip-version-check torch
fi
"$venv/bin/python" -c 'import torch; print("torch", torch.__version__)'
scripts/install-python.sh "$venv" --profile dev
"$venv/bin/python" -m pytest -v python/tests/test_torch.py python/tests/test_adapters.py "$@"
