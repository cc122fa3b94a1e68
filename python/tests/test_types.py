"""The reader's types: its stub (python/spillway/spillfile.pyi) against the module itself
(spill/python/spillfile.py, a file that also works alone, so its types are not inline), checked
by mypy's stubtest: a public name, method or parameter missing from either, or a signature that
differs, fails. The package must ship the stub beside the module."""
import os
import shutil
import subprocess
import sys

import pytest

import spillway
from conftest import ROOT

STUB = os.path.join(ROOT, "python", "spillway", "spillfile.pyi")
READER = os.path.join(ROOT, "spill", "python", "spillfile.py")


def test_the_reader_stub_matches_the_reader(tmp_path):
    if subprocess.run([sys.executable, "-c", "import mypy.stubtest"]).returncode != 0:
        pytest.skip("mypy is not installed in this venv (scripts/requirements-test.txt)")
    # The reader alone (it imports numpy only), as `import spillfile` with its stub beside it.
    for path in (READER, STUB):
        shutil.copy(path, tmp_path)
    (tmp_path / "mypy.ini").write_text("[mypy]\n")
    env = {**os.environ, "PYTHONPATH": str(tmp_path), "MYPYPATH": str(tmp_path)}
    r = subprocess.run([sys.executable, "-m", "mypy.stubtest", "spillfile", "--mypy-config-file",
                        str(tmp_path / "mypy.ini")], capture_output=True, text=True,
                       cwd=tmp_path, env=env)
    assert r.returncode == 0, r.stdout + r.stderr


def test_the_package_ships_the_stub():
    pkg = os.path.dirname(spillway.__file__)
    with open(os.path.join(pkg, "spillfile.pyi"), "rb") as a, open(STUB, "rb") as b:
        assert a.read() == b.read()
