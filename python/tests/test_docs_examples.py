"""The docs' examples (docs/examples/*.py) run as written: each in its own process on a small
synthetic universe, exit 0, and follow the frameworks' rules (LightGBM never warns that it
overrides the validation set's parameters). `mypy --strict` checks them together with the
package itself, and the README's Python quick start is the quick-start example, byte for byte."""
import os
import re
import subprocess
import sys

import pytest

from conftest import ROOT, make_universe

EXAMPLES = os.path.join(ROOT, "docs", "examples")

# What each training example needs besides spillway and numpy (a missing one is a skip, named).
FRAMEWORKS = {"torch_loader.py": "torch", "lightgbm_train.py": "lightgbm",
              "xgboost_train.py": "xgboost"}


def installed(module):
    return subprocess.run([sys.executable, "-c", f"import {module}"],
                          capture_output=True).returncode == 0


def run(example, *args, cwd):
    r = subprocess.run([sys.executable, os.path.join(EXAMPLES, example), *map(str, args)],
                       capture_output=True, text=True, cwd=cwd, timeout=600)
    assert r.returncode == 0, f"{example} exited {r.returncode}\n{r.stdout}\n{r.stderr}"
    return r


@pytest.fixture(scope="module")
def docs_universe(tmp_path_factory):
    """A universe with a learnable target (30% of its variance), and its spill file."""
    import spillway
    d = tmp_path_factory.mktemp("docs")
    u = make_universe(str(d / "universe"), symbols=8, rows=3000, features=8, signal=0.3)
    spill = str(d / "train.spill")
    spillway.build(u, spill, target="target")
    return u, spill


def test_every_example_is_tested():
    names = {n for n in os.listdir(EXAMPLES) if n.endswith(".py")}
    tested = {"quickstart.py", "build.py", "numpy_epoch.py", "sharded_dataset.py",
              "preemptible.py"} | set(FRAMEWORKS)
    assert names == tested, "a new docs example needs a test here"


@pytest.mark.parametrize("example", ["quickstart.py", "build.py"])
def test_building_examples(example, docs_universe, tmp_path):
    universe, _ = docs_universe
    out = tmp_path / "train.spill"
    run(example, universe, out, cwd=tmp_path)
    assert out.exists()


def test_preemptible_epoch_resumes_on_other_ranks(docs_universe, tmp_path):
    r = run("preemptible.py", docs_universe[1], tmp_path, cwd=tmp_path)
    assert "before:" in r.stdout and (tmp_path / "batches.json").exists()


def test_numpy_epoch_learns(docs_universe, tmp_path):
    r = run("numpy_epoch.py", docs_universe[1], cwd=tmp_path)
    r2 = float(re.search(r"R\^2: (-?[0-9.]+)", r.stdout).group(1))
    assert r2 > 0.1, r.stdout


@pytest.mark.parametrize("example", sorted(FRAMEWORKS))
def test_training_examples(example, docs_universe, tmp_path):
    if not installed(FRAMEWORKS[example]):
        pytest.skip(f"{FRAMEWORKS[example]} is not installed in this venv "
                    "(torch: scripts/test-torch.sh runs this test)")
    r = run(example, docs_universe[1], cwd=tmp_path)
    assert "Overriding the parameters" not in r.stderr + r.stdout
    assert "Warning" not in r.stderr, r.stderr


def test_sharded_dataset_example(docs_universe, tmp_path):
    r = run("sharded_dataset.py", docs_universe[0], tmp_path / "dataset", cwd=tmp_path)
    assert "2 shards, 24000 rows" in r.stdout
    assert (tmp_path / "dataset" / "dataset.json").exists()


def test_package_and_examples_type_check(tmp_path):
    """`mypy --strict -p spillway` (python/pyproject.toml's [tool.mypy], from python/: the
    package's source, typed against its stubs spillfile.pyi and _native.pyi) and the examples,
    which are the README's, as a user's code calling the typed package."""
    if not installed("mypy"):
        pytest.skip("mypy is not installed in this venv (scripts/requirements-test.txt)")
    examples = sorted(os.path.join(EXAMPLES, n) for n in os.listdir(EXAMPLES) if n.endswith(".py"))
    python = os.path.join(ROOT, "python")
    # One run (mypy takes -p or files, not both: the package's directory is the same package).
    r = subprocess.run([sys.executable, "-m", "mypy", "--strict",
                        "--config-file", os.path.join(python, "pyproject.toml"),
                        "--cache-dir", str(tmp_path / "cache"), "spillway", *examples],
                       capture_output=True, text=True, cwd=python)
    assert r.returncode == 0, r.stdout + r.stderr


@pytest.mark.parametrize("readme", ["README.md", "python/README.md"])
def test_readme_quick_start_is_the_example(readme):
    with open(os.path.join(ROOT, readme)) as fh:
        text = fh.read()
    with open(os.path.join(EXAMPLES, "quickstart.py")) as fh:
        example = fh.read()
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    assert example in blocks, f"{readme}'s Python quick start must be docs/examples/quickstart.py"
