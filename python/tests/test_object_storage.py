"""Universes in object storage, from Python: builds from ``s3://`` against moto's S3 server on
loopback (``ThreadedMotoServer``, as polars' own tests do) equal the local build; listings past
1,000 keys, a multipart-uploaded object, ``--if-changed`` on a rewritten object, wrong
credentials, and ``spillway.ray``'s child processes never seeing a secret on their command line.
"""
import os
import subprocess

import numpy as np
import pytest

from conftest import cli, make_universe

moto_server = pytest.importorskip("moto.server", reason="moto[server] is in "
                                  "scripts/requirements-test.txt")
boto3 = pytest.importorskip("boto3")

BUCKET = "spw-test"
KEY, SECRET = "testing-key", "testing-secret-9f8e7d6c"


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    """moto on 127.0.0.1, a bucket holding a universe under ``u/`` (one object uploaded in
    parts), 1,005 hidden objects under ``u/_pad/``; the local copy for comparison."""
    srv = moto_server.ThreadedMotoServer("127.0.0.1", 0, verbose=False)
    srv.start()
    host, port = srv.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    client = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=KEY,
                          aws_secret_access_key=SECRET, region_name="us-east-1")
    client.create_bucket(Bucket=BUCKET)
    local = make_universe(str(tmp_path_factory.mktemp("u")), symbols=5, rows=4000,
                          features=6)
    from boto3.s3.transfer import TransferConfig
    multipart = TransferConfig(multipart_threshold=5 << 20, multipart_chunksize=5 << 20)
    for name in sorted(os.listdir(local)):
        client.upload_file(os.path.join(local, name), BUCKET, f"u/{name}", Config=multipart)
    # A larger object, uploaded in two parts (its ETag is "...-2").
    big = make_universe(str(tmp_path_factory.mktemp("big")), symbols=1, rows=60000, features=12,
                        seed=7)
    src = os.path.join(big, "S000.parquet")
    assert os.path.getsize(src) > 5 << 20
    os.rename(src, os.path.join(local, "BIG.parquet"))
    client.upload_file(os.path.join(local, "BIG.parquet"), BUCKET, "u/BIG.parquet",
                       Config=multipart)
    head = client.head_object(Bucket=BUCKET, Key="u/BIG.parquet")
    assert head["ETag"].strip('"').endswith("-2"), head["ETag"]
    for i in range(1005):
        client.put_object(Bucket=BUCKET, Key=f"u/_pad/x{i:04d}", Body=b"x")
    options = {"aws_endpoint_url": endpoint, "aws_access_key_id": KEY,
               "aws_secret_access_key": SECRET, "aws_region": "us-east-1",
               "aws_allow_http": True}
    yield {"client": client, "local": local, "options": options, "endpoint": endpoint}
    srv.stop()


def same_columns(a, b):
    import spillway
    fa, fb = spillway.open(a), spillway.open(b)
    assert fa.nrows == fb.nrows
    assert fa.column_names == fb.column_names
    for name in fa.column_names:
        np.testing.assert_array_equal(fa.column(name), fb.column(name), err_msg=name)


def test_a_build_from_s3_equals_the_local_build(s3, tmp_path):
    import spillway
    local, remote = str(tmp_path / "local.spill"), str(tmp_path / "remote.spill")
    spillway.build(s3["local"], local, target="target")
    summary = spillway.build(f"s3://{BUCKET}/u/", remote, target="target",
                             storage_options=s3["options"])
    same_columns(local, remote)
    o = summary["object_storage"]
    assert o["list_pages"] >= 2, o  # 1,011 keys: past one page of 1,000
    assert o["unplanned"] == 0, o
    assert o["bytes_fetched"] <= 1.05 * o["bytes_needed"], o
    meta = spillway.open(remote).metadata
    assert meta["inputs"]["source"] == f"s3://{BUCKET}/u/"
    etags = dict(meta["inputs"]["etags"])
    assert etags["BIG.parquet"].strip('"').endswith("-2")
    assert SECRET not in str(meta) and SECRET not in str(summary)


def test_inspect_reads_s3(s3):
    import spillway
    remote = spillway.inspect(f"s3://{BUCKET}/u/", target="target",
                              storage_options=s3["options"])
    local = spillway.inspect(s3["local"], target="target")
    for key in ("symbols", "files", "rows"):
        assert remote[key] == local[key], key


def test_if_changed_notices_a_rewritten_object(s3, tmp_path):
    out = str(tmp_path / "o.spill")
    env = {**os.environ, "AWS_ENDPOINT_URL": s3["endpoint"], "AWS_ACCESS_KEY_ID": KEY,
           "AWS_SECRET_ACCESS_KEY": SECRET, "AWS_REGION": "us-east-1", "AWS_ALLOW_HTTP": "true"}
    args = [cli(), "build", "--input", f"s3://{BUCKET}/u/", "--output", out, "--target",
            "target", "--quiet", "--if-changed", "--summary", "-"]
    subprocess.run(args, env=env, check=True, capture_output=True)
    again = subprocess.run(args, env=env, check=True, capture_output=True, text=True)
    assert '"current"' in again.stdout
    # The same bytes uploaded again: a new object (new last-modified), same size.
    path = os.path.join(s3["local"], "S001.parquet")
    s3["client"].upload_file(path, BUCKET, "u/S001.parquet")
    rebuilt = subprocess.run(args, env=env, check=True, capture_output=True, text=True)
    assert '"current"' not in rebuilt.stdout, rebuilt.stdout


def test_wrong_credentials_are_a_data_error_without_the_secret(s3, tmp_path):
    import spillway
    wrong = dict(s3["options"], aws_secret_access_key="wrong-secret-5a4b3c2d1e",
                 max_retries="0")
    with pytest.raises(spillway.DataError) as e:
        spillway.build(f"s3://{BUCKET}/u/", str(tmp_path / "o.spill"), target="target",
                       storage_options=wrong)
    assert "wrong-secret-5a4b3c2d1e" not in str(e.value)
    assert f"s3://{BUCKET}/u/" in str(e.value)
    with pytest.raises(spillway.UsageError, match="no_such_option"):
        spillway.build(f"s3://{BUCKET}/u/", str(tmp_path / "o.spill"), target="target",
                       storage_options={"no_such_option": "1"})
    with pytest.raises(TypeError):
        spillway.build(f"s3://{BUCKET}/u/", str(tmp_path / "o.spill"), target="target",
                       storage_options=["aws_region"])


def test_ray_children_get_storage_options_in_the_environment_not_argv(monkeypatch):
    from spillway import ray as sray
    seen = {}

    class Child:
        pid, returncode = 1, 0

        def __init__(self, args, **kw):
            seen["args"], seen["env"] = args, kw.get("env")

        def __enter__(self):
            return self

        def __exit__(self, *a):
            return False

        def communicate(self):
            return "", ""

    monkeypatch.setattr(sray.subprocess, "Popen", Child)
    opts = {"target": "target", "storage_options": {"aws_secret_access_key": SECRET,
                                                    "aws_allow_http": True}}
    sray._count("s3://b/u/", "/tmp/c.count", 0, 2, opts, "/bin/true")
    assert SECRET not in " ".join(seen["args"])
    assert "--storage-options" not in seen["args"]
    assert SECRET in seen["env"]["SPILLWAY_STORAGE_OPTIONS"]
    assert '"aws_allow_http": "true"' in seen["env"]["SPILLWAY_STORAGE_OPTIONS"]


def test_the_cli_reads_storage_options_from_the_environment(s3, tmp_path):
    import json
    out = str(tmp_path / "o.spill")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env["SPILLWAY_STORAGE_OPTIONS"] = json.dumps(
        {k: str(v).lower() if isinstance(v, bool) else v for k, v in s3["options"].items()})
    done = subprocess.run([cli(), "build", "--input", f"s3://{BUCKET}/u/", "--output", out,
                           "--target", "target", "--quiet"], env=env, capture_output=True,
                          text=True)
    assert done.returncode == 0, done.stderr
    assert os.path.exists(out)
