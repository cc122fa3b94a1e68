"""Fixtures of the package tests: parquet universes written with pyarrow, or by `spillway gen
--signal` where a model must learn, and spill files built from them in-process."""
import contextlib
import os
import shutil
import subprocess
import sys
import time

import numpy as np
import pytest

GRID_NS = 300_000_000_000  # 5 minutes
BASE_NS = 1_704_067_200_000_000_000  # 2024-01-01 UTC

# target = SIGNAL_WEIGHTS . (f000, f001, f002) + noise, scaled so the features explain `signal`
# of its variance.
SIGNAL_WEIGHTS = np.array([0.6, -0.4, 0.3])
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def cli():
    """The `spillway` command: ``$SPILLWAY_BIN`` when set, else the one the package installed
    beside this interpreter (scripts/test.sh runs these tests from the wheel, with no cargo on
    PATH). Missing: a failure under SPILLWAY_REQUIRE_PYTHON (CI), a skip elsewhere."""
    path = os.environ.get("SPILLWAY_BIN") or shutil.which(
        "spillway", path=os.path.dirname(sys.executable))
    if path and os.path.exists(path):
        return path
    if os.environ.get("SPILLWAY_REQUIRE_PYTHON"):
        pytest.fail("no spillway command beside this python: install the wheel "
                    "(scripts/install-python.sh)")
    pytest.skip("no spillway command beside this python: install the wheel (scripts/install-python.sh)")


def pytest_terminal_summary(terminalreporter):
    """Every skipped test (and module skipped at collection) as a line ``python<TAB><node
    id><TAB><reason>`` appended to ``$SPILLWAY_SKIP_LOG`` when it is set: scripts/test.sh sets
    it, and scripts/skips.py lists the log and fails on a reason .ci/allowed-skips.txt does not
    allow. An expected failure (xfail) is not a skip."""
    log = os.environ.get("SPILLWAY_SKIP_LOG")
    if not log:
        return
    lines = []
    for report in terminalreporter.stats.get("skipped", []):
        if hasattr(report, "wasxfail"):
            continue
        longrepr = report.longrepr
        reason = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
        reason = reason.removeprefix("Skipped: ")
        node = report.nodeid or (longrepr[0] if isinstance(longrepr, tuple) else "?")
        node, reason = (str(x).replace("\t", " ").replace("\n", " ") for x in (node, reason))
        lines.append(f"python\t{node}\t{reason}\n")
    if lines:
        os.makedirs(os.path.dirname(os.path.abspath(log)), exist_ok=True)
        with open(log, "a") as fh:  # appended after the Rust tests' lines (scripts/test.sh)
            fh.write("".join(lines))


def gone(pid, wait=10.0):
    """Whether process ``pid`` has exited (or is a zombie) within ``wait`` seconds."""
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/stat") as fh:
                if fh.read().rsplit(")", 1)[1].split()[0] == "Z":
                    return True
        except FileNotFoundError:
            return True
        time.sleep(0.05)
    return False


def child_of(pid, wait=10.0):
    """The pid of a child of process ``pid``, once it has one (within ``wait`` seconds)."""
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        for entry in os.listdir("/proc"):
            try:
                with open(f"/proc/{entry}/stat") as fh:
                    ppid = int(fh.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue  # not a process, or gone
            if ppid == pid:
                return int(entry)
        time.sleep(0.05)
    raise AssertionError(f"process {pid} started no child within {wait} s")


@contextlib.contextmanager
def moto_bucket(bucket, secret):
    """moto's S3 server on 127.0.0.1 (``ThreadedMotoServer``, as polars' own tests use it) with
    an empty ``bucket``: yields ``(client, options)``, a boto3 client and the storage_options
    that reach it (key ``k``, secret ``secret``). Skips without moto[server]."""
    moto_server = pytest.importorskip("moto.server", reason="moto[server] is in "
                                      "scripts/requirements-test.txt")
    boto3 = pytest.importorskip("boto3")
    srv = moto_server.ThreadedMotoServer("127.0.0.1", 0, verbose=False)
    srv.start()
    try:
        host, port = srv.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        client = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id="k",
                              aws_secret_access_key=secret, region_name="us-east-1")
        client.create_bucket(Bucket=bucket)
        yield client, {"aws_endpoint_url": endpoint, "aws_access_key_id": "k",
                       "aws_secret_access_key": secret, "aws_region": "us-east-1",
                       "aws_allow_http": True}
    finally:
        srv.stop()


def make_universe(out, symbols=8, rows=3000, features=8, signal=0.0, seed=0, tz="UTC",
                  null_last_target=True):
    """DIR/S000.parquet ...: ts timestamp[ns, tz] on a shared 5-minute grid with ragged starts,
    target float64 (the last row null), features f000.. float64."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    os.makedirs(out, exist_ok=True)
    rng = np.random.default_rng(seed)
    for s in range(symbols):
        start = int(rng.integers(0, rows // 10 + 1))
        ts = BASE_NS + (start + np.arange(rows, dtype=np.int64)) * GRID_NS
        X = rng.standard_normal((rows, features))
        lin = X[:, :3] @ SIGNAL_WEIGHTS
        noise = rng.standard_normal(rows) * lin.std()
        y = np.sqrt(signal) * lin / lin.std() + np.sqrt(1 - signal) * noise / noise.std()
        target = pa.array(y, mask=(np.arange(rows) == rows - 1) if null_last_target else None)
        cols = {"ts": pa.array(ts, pa.timestamp("ns", tz=tz)), "target": target}
        for j in range(features):
            cols[f"f{j:03d}"] = pa.array(X[:, j])
        pq.write_table(pa.table(cols), os.path.join(out, f"S{s:03d}.parquet"),
                       row_group_size=4096)
    return out


@pytest.fixture(scope="session")
def universe(tmp_path_factory):
    return make_universe(str(tmp_path_factory.mktemp("u")), signal=0.0)


@pytest.fixture(scope="session")
def spill_path(universe, tmp_path_factory):
    import spillway
    out = str(tmp_path_factory.mktemp("s") / "train.spill")
    spillway.build(universe, out, target="target")
    return out


@pytest.fixture(scope="session")
def signal_spill(tmp_path_factory):
    """A `spillway gen --signal 0.5` universe: half the target's variance is a fixed linear
    combination of f001, f006 and f011."""
    import spillway
    u = str(tmp_path_factory.mktemp("sig") / "u")
    subprocess.run([cli(), "gen", "--output", u, "--symbols", "16", "--rows", "4000",
                    "--features", "12", "--signal", "0.5", "--seed", "7"],
                   check=True, capture_output=True)
    out = str(tmp_path_factory.mktemp("sigs") / "signal.spill")
    spillway.build(u, out, target="target")
    return out


def time_major(src, dst):
    """``src`` rewritten time-major at ``dst`` by the spill tests' writer (rows sorted by time,
    then symbol code): what `spillway build --order time` writes."""
    import sys
    import spillway
    sys.path.insert(0, os.path.join(ROOT, "spill", "python", "tests"))
    from writer import transpose
    return transpose(src, dst, spillway.spillfile)


@pytest.fixture(scope="session")
def time_signal_spill(tmp_path_factory):
    """A time-major file built by `spillway build --order time` from a `spillway gen --signal 0.3`
    universe (16 symbols, ragged starts on one grid): one query a timestamp."""
    u = str(tmp_path_factory.mktemp("tsig") / "u")
    subprocess.run([cli(), "gen", "--output", u, "--symbols", "16", "--rows", "4000",
                    "--features", "12", "--signal", "0.3", "--seed", "11"],
                   check=True, capture_output=True)
    out = str(tmp_path_factory.mktemp("tsigs") / "time.spill")
    subprocess.run([cli(), "build", "--input", u, "--output", out, "--target", "target",
                    "--order", "time", "--quiet"], check=True, capture_output=True)
    return out


@pytest.fixture(scope="module")
def ray_cluster():
    """A local Ray cluster with 2 CPUs (the one another module started, if it is up); skipped
    with the reason when Ray is missing, a failure under SPILLWAY_REQUIRE_RAY (scripts/test.sh)."""
    try:
        import ray
        import ray.data  # noqa: F401 - ray[data]
    except ImportError as e:
        why = (f"Ray is not installed ({e}): these tests need ray[data]==2.60.0 "
               "(pip install 'spillway[ray]', or -r scripts/requirements-test.txt)")
        if os.environ.get("SPILLWAY_REQUIRE_RAY"):  # scripts/test.sh: a failure, not a skip
            pytest.fail(f"SPILLWAY_REQUIRE_RAY is set but {why}")
        pytest.skip(why)
    started = not ray.is_initialized()
    if started:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
                 configure_logging=False)
    yield ray
    if started:
        ray.shutdown()
