"""The wheel's ``spillway`` command (``[project.scripts]`` -> ``spillway._cli`` -> the extension's
``spillway_cli::main``): the cargo binary's commands, exit codes and signal behaviour, from the
installed package alone. scripts/test.sh runs this suite with no cargo on PATH."""
import os
import re
import shutil
import signal
import subprocess
import sys
import time

import pytest

import spillway
from conftest import make_universe

BIN_DIR = os.path.dirname(sys.executable)


def command():
    """The ``spillway`` the package installed beside this interpreter."""
    path = shutil.which("spillway", path=BIN_DIR)
    if path is None:
        pytest.fail(f"no spillway command in {BIN_DIR}: the package is installed without its script")
    return path


def run(*args, **kw):
    return subprocess.run([command(), *args], capture_output=True, text=True, timeout=600, **kw)


def test_version_and_python_m():
    assert run("--version").stdout.strip() == f"spillway {spillway.__version__}"
    m = subprocess.run([sys.executable, "-m", "spillway", "--version"], capture_output=True,
                       text=True, timeout=60)
    assert m.returncode == 0 and m.stdout.strip() == f"spillway {spillway.__version__}"


def test_exit_codes(tmp_path):
    assert run("bogus").returncode == 2  # usage
    missing = run("build", "--input", str(tmp_path / "none"), "--output", str(tmp_path / "o.spill"),
                  "--target", "target")
    assert missing.returncode == 1, missing.stderr  # input
    assert missing.stderr.startswith("spillway: ") and "none" in missing.stderr
    assert "Traceback" not in missing.stderr


def test_build_equals_the_in_process_build(universe, spill_path, tmp_path):
    out = tmp_path / "cli.spill"
    r = run("build", "--input", str(universe), "--output", str(out), "--target", "target", "--quiet")
    assert r.returncode == 0, r.stderr
    with open(out, "rb") as a, open(spill_path, "rb") as b:
        assert a.read() == b.read()


def test_closed_stdout_is_not_an_error(spill_path):
    p = subprocess.Popen([command(), "inspect", "--help"], stdout=subprocess.PIPE)
    p.stdout.close()
    assert p.wait(timeout=60) == 0


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_stops_a_build_cleanly(tmp_path, sig):
    u = make_universe(tmp_path / "u", symbols=48, rows=60_000, features=32)
    out = tmp_path / "out.spill"
    p = subprocess.Popen([command(), "build", "--input", str(u), "--output", str(out), "--target",
                          "target", "--quiet", "--threads", "1"], stderr=subprocess.PIPE, text=True)
    time.sleep(1.5)
    assert p.poll() is None, "the build ended before the signal: make the universe larger"
    p.send_signal(sig)
    _, err = p.communicate(timeout=120)
    assert p.returncode == 128 + sig, err
    assert "Traceback" not in err
    assert not out.exists()
    assert [f for f in os.listdir(tmp_path) if f != "u"] == []


def test_demo(tmp_path):
    r = run("demo", "--symbols", "4", "--rows", "20000", "--features", "8", "--dir", str(tmp_path))
    assert r.returncode == 0, r.stderr
    assert re.match(r"ok: \d+ rows x 8 features as one zero-copy view", r.stdout), r.stdout
