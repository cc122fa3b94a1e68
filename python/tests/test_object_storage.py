"""Universes in object storage, from Python: builds from ``s3://`` against moto's S3 server on
loopback (``ThreadedMotoServer``, as polars' own tests do) equal the local build; listings past
1,000 keys, a multipart-uploaded object, ``--if-changed`` on a rewritten object, wrong
credentials, and ``spillway.ray``'s child processes never seeing a secret on their command line.
"""
import json
import os
import subprocess

import numpy as np
import pytest

from conftest import cli, make_universe, moto_bucket


BUCKET = "spw-test"
KEY, SECRET = "k", "testing-secret-9f8e7d6c"  # the key moto_bucket gives


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    """moto on 127.0.0.1, a bucket holding a universe under ``u/`` (one object uploaded in
    parts), 1,005 hidden objects under ``u/_pad/``; the local copy for comparison."""
    with moto_bucket(BUCKET, SECRET) as (client, options):
        local = make_universe(str(tmp_path_factory.mktemp("u")), symbols=5, rows=4000,
                              features=6)
        from boto3.s3.transfer import TransferConfig
        multipart = TransferConfig(multipart_threshold=5 << 20, multipart_chunksize=5 << 20)
        for name in sorted(os.listdir(local)):
            client.upload_file(os.path.join(local, name), BUCKET, f"u/{name}",
                               Config=multipart)
        # A larger object, uploaded in two parts (its ETag is "...-2").
        big = make_universe(str(tmp_path_factory.mktemp("big")), symbols=1, rows=60000,
                            features=12, seed=7)
        src = os.path.join(big, "S000.parquet")
        assert os.path.getsize(src) > 5 << 20
        os.rename(src, os.path.join(local, "BIG.parquet"))
        client.upload_file(os.path.join(local, "BIG.parquet"), BUCKET, "u/BIG.parquet",
                           Config=multipart)
        head = client.head_object(Bucket=BUCKET, Key="u/BIG.parquet")
        assert head["ETag"].strip('"').endswith("-2"), head["ETag"]
        for i in range(1005):
            client.put_object(Bucket=BUCKET, Key=f"u/_pad/x{i:04d}", Body=b"x")
        yield {"client": client, "local": local, "options": options,
               "endpoint": options["aws_endpoint_url"]}


def same_columns(a, b):
    import spillway
    fa, fb = spillway.open(a), spillway.open(b)
    assert fa.nrows == fb.nrows
    assert fa.columns == fb.columns
    for name in fa.columns:
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
    assert o["bytes_needed"] <= o["bytes_fetched"], o
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


def test_a_missing_bucket_is_a_data_error_without_the_secret(s3, tmp_path):
    """(moto accepts any credentials: wrong ones are tested in Rust, against s3kit.)"""
    import spillway
    with pytest.raises(spillway.DataError) as e:
        spillway.build("s3://no-such-bucket/u/", str(tmp_path / "o.spill"), target="target",
                       storage_options=dict(s3["options"], max_retries="0"))
    assert SECRET not in str(e.value)
    assert "s3://no-such-bucket/u/" in str(e.value) and "does not exist" in str(e.value)
    with pytest.raises(spillway.UsageError, match="no_such_option"):
        spillway.build(f"s3://{BUCKET}/u/", str(tmp_path / "o.spill"), target="target",
                       storage_options={"no_such_option": "1"})
    with pytest.raises(TypeError):
        spillway.build(f"s3://{BUCKET}/u/", str(tmp_path / "o.spill"), target="target",
                       storage_options=["aws_region"])


def test_ray_children_get_storage_options_in_the_environment_not_argv(monkeypatch):
    from spillway import _ray_tasks as tasks
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

    monkeypatch.setattr(tasks.subprocess, "Popen", Child)
    opts = {"target": "target", "storage_options": {"aws_secret_access_key": SECRET,
                                                    "aws_allow_http": True}}
    tasks._count("s3://b/u/", "/tmp/c.count", 0, 2, opts, "/bin/true")
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


AZURITE = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))), "target", "azurite", "node_modules", ".bin", "azurite-blob")
# Azurite's well-known development account.
AZ_ACCOUNT = "devstoreaccount1"
AZ_KEY = ("Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==")


@pytest.fixture(scope="module")
def azurite(tmp_path_factory):
    """Azurite's blob service on loopback (installed by scripts/test.sh with npm), a container
    ``bkt`` holding the universe under ``u/``."""
    if not os.path.exists(AZURITE):
        if os.environ.get("SPILLWAY_REQUIRE_AZURITE"):
            pytest.fail(f"no Azurite at {AZURITE} (scripts/test.sh installs it with npm)")
        pytest.skip("Azurite is not installed (target/azurite; scripts/test.sh installs it with "
                    "npm)")
    blob = pytest.importorskip("azure.storage.blob", reason="azure-storage-blob is in "
                               "scripts/requirements-test.txt")
    import socket
    import time
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    where = str(tmp_path_factory.mktemp("azurite"))
    proc = subprocess.Popen([AZURITE, "--silent", "--location", where, "--blobHost",
                             "127.0.0.1", "--blobPort", str(port), "--skipApiVersionCheck"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                pytest.fail("Azurite did not start")
            time.sleep(0.1)
    url = f"http://127.0.0.1:{port}/{AZ_ACCOUNT}"
    conn = (f"DefaultEndpointsProtocol=http;AccountName={AZ_ACCOUNT};AccountKey={AZ_KEY};"
            f"BlobEndpoint={url};")
    service = blob.BlobServiceClient.from_connection_string(conn)
    container = service.create_container("bkt")
    local = make_universe(str(tmp_path_factory.mktemp("azu")), symbols=4, rows=3000,
                          features=5)
    for name in sorted(os.listdir(local)):
        with open(os.path.join(local, name), "rb") as fh:
            container.upload_blob(f"u/{name}", fh)
    yield {"local": local, "port": port}
    proc.kill()
    proc.wait()


def test_a_build_from_azure_equals_the_local_build(azurite, tmp_path, monkeypatch):
    import spillway
    monkeypatch.setenv("AZURITE_BLOB_STORAGE_URL", f"http://127.0.0.1:{azurite['port']}")
    local, remote = str(tmp_path / "local.spill"), str(tmp_path / "remote.spill")
    spillway.build(azurite["local"], local, target="target")
    summary = spillway.build("az://bkt/u/", remote, target="target",
                             storage_options={"azure_storage_use_emulator": True})
    same_columns(local, remote)
    assert summary["object_storage"]["unplanned"] == 0
    assert AZ_KEY not in str(summary)



def test_a_dataset_in_azure_is_built_committed_and_read(azurite, tmp_path, monkeypatch):
    """Outputs in Azure (Azurite): a shard over 8 MiB goes up in blocks (object_store's
    multipart on Azure) byte for byte; the manifest is committed with Azure's conditional PUT,
    kept as generation 1 when replaced; verify and open_dataset read it back."""
    import spillway
    monkeypatch.setenv("AZURITE_BLOB_STORAGE_URL", f"http://127.0.0.1:{azurite['port']}")
    opts = {"azure_storage_use_emulator": True}
    big = str(tmp_path / "big")
    subprocess.run([cli(), "gen", "--output", big, "--symbols", "2", "--rows", "120000",
                    "--features", "20"], check=True, capture_output=True)
    kw = dict(target="target", storage_options=opts, scratch=str(tmp_path / "scratch"))
    shards = [f"az://bkt/ds/shard-{i}.spill" for i in range(2)]
    for i, url in enumerate(shards):
        spillway.build(big, url, shard=f"{i}/2", **kw)
        local = str(tmp_path / f"local-{i}.spill")
        spillway.build(big, local, target="target", shard=f"{i}/2")
        fetched = str(tmp_path / f"fetched-{i}.spill")
        spillway._need_native().download(url, fetched, json.dumps({"azure_storage_use_emulator":
                                                                   "true"}), None)
        assert open(fetched, "rb").read() == open(local, "rb").read(), url
    assert os.path.getsize(str(tmp_path / "local-0.spill")) > 8 << 20, "uploaded in blocks"
    assert not os.listdir(tmp_path / "scratch")
    manifest = "az://bkt/ds/dataset.json"
    m = spillway.dataset.write_manifest(shards, manifest, storage_options=opts)
    assert m["generation"] == 1
    assert spillway.dataset.write_manifest(shards, manifest, storage_options=opts) == m
    other = "az://bkt/other/shard.spill"
    spillway.build(big, other, shard="0/1", max_rows=100, **kw)
    with pytest.raises(spillway.UsageError, match="--replace"):
        spillway.dataset.write_manifest([other], manifest, storage_options=opts)
    m2 = spillway.dataset.write_manifest([other], manifest, storage_options=opts, replace=True)
    assert m2["generation"] == 2 and m2["nrows"] == 200
    assert spillway.dataset.verify_dataset(manifest, chunks=True, storage_options=opts)
    g1 = spillway.open_dataset("az://bkt/ds/dataset.g1.json", cache_dir=str(tmp_path / "c"),
                               storage_options=opts, verify=True)
    whole = str(tmp_path / "whole.spill")
    spillway.build(big, whole, target="target")
    np.testing.assert_array_equal(g1.column("f000"), spillway.open(whole).column("f000"))
    assert AZ_KEY not in json.dumps(m2)
