#!/usr/bin/env bash
# Builds the Python package as ONE abi3 wheel for this platform (CPython 3.9 and later), with the
# `spillway` command inside, plus an sdist, into dist/ (or $WHEEL_DIR):
#
#   scripts/build-wheel.sh            # release: dist/spillway-<v>-cp39-abi3-manylinux_2_28_<arch>.whl
#   scripts/build-wheel.sh --ci       # CI's: the dev profile (reuses what `cargo test` compiled),
#                                     # tagged plain `linux` (installable here only), no sdist
#
# The release wheel targets manylinux_2_28 (glibc 2.28: RHEL 8, Debian 10, Ubuntu 18.10 and later).
# This machine's glibc is newer than that, so the wheel is linked by zig (`ziglang` from PyPI)
# against the older glibc, and maturin checks the result for compliance (auditwheel's rules).
# Tools go into the venv target/venv-wheel (PyPI), so only cargo and python3 are needed.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${WHEEL_DIR:-dist}
venv=target/venv-wheel
tools=(maturin) && [ "${1:-}" = --ci ] || tools+=(ziglang)
if ! "$venv/bin/python" -c "import ${tools[*]// /, }" 2>/dev/null; then
  [ -x "$venv/bin/pip" ] || python3 -m venv "$venv"
  # ziglang 0.15 is the newest zig maturin 1.x links with.
  "$venv/bin/pip" install --quiet --disable-pip-version-check 'maturin>=1.9.4,<2' \
    $([ "${1:-}" = --ci ] || echo 'ziglang>=0.13,<0.16')
fi
export PATH="$PWD/$venv/bin:$PATH"
# The commit the summary records (build.rs): an sdist has no repository to ask.
SPILLWAY_COMMIT=${SPILLWAY_COMMIT:-$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)}
export SPILLWAY_COMMIT
if [ "${1:-}" = --ci ]; then
  maturin build --quiet -m python/Cargo.toml --profile dev --compatibility linux --out "$out"
else
  maturin build --quiet -m python/Cargo.toml --release --zig --compatibility manylinux_2_28 --out "$out"
  maturin sdist -m python/Cargo.toml --out "$out"
fi
ls -l "$out"/spillway-*
