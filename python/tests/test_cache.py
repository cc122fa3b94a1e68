"""Issue 23 (part 2): the local shard cache of remote datasets (spillway.cache) and
Dataset.batches(shuffle="shards"). The cache is driven by a `fetch` that copies real shards from
a local dataset directory; remote datasets through the extension's get_object and download
against moto's S3 server on loopback (the downloads recorded on their way through)."""
import json
import os
import pickle
import shutil
import subprocess
import sys
import threading
import time
from collections import Counter

import numpy as np
import pytest

import spillway
from spillway.cache import CacheFull, ShardCache, parse_size
from conftest import make_universe, moto_bucket

N = 4


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """Four shards of 600 rows (about 35 KB each) and their manifest."""
    d = tmp_path_factory.mktemp("ds")
    u = make_universe(str(d / "u"), symbols=8, rows=300, features=3, seed=5)
    shards = [str(d / f"shard-{i}.spill") for i in range(N)]
    for i, s in enumerate(shards):
        spillway.build(u, s, shard=f"{i}/{N}", target="target")
    manifest = str(d / "dataset.json")
    spillway.dataset.write_manifest(shards, manifest)
    return manifest


def entries(manifest):
    with open(manifest) as fh:
        return json.load(fh)["shards"]


class Source:
    """`fetch` over a local directory standing in for a bucket: counts what it copies."""

    def __init__(self, manifest):
        self.dir = os.path.dirname(manifest)
        self.calls = []

    def url(self, entry):
        return f"mem://bucket/ds/{entry['path']}"

    def __call__(self, url, dest, expect):
        self.calls.append(url)
        shutil.copyfile(os.path.join(self.dir, url.rsplit("/", 1)[1]), dest)
        return json.dumps({"bytes": expect, "etag": "x"})


def log_lines(cache_dir):
    try:
        with open(os.path.join(cache_dir, "downloads.log")) as fh:
            return [line.split() for line in fh]
    except FileNotFoundError:
        return []


def flip(path, offset):
    with open(path, "r+b") as fh:
        fh.seek(offset)
        b = fh.read(1)
        fh.seek(offset)
        fh.write(bytes([b[0] ^ 0xFF]))


# ---------------------------------------------------------------------- ShardCache
def test_parse_size():
    assert parse_size(None) is None and parse_size(123) == 123
    assert parse_size("50GiB") == 50 << 30 and parse_size("512MiB") == 512 << 20
    assert parse_size("1.5k") == 1536 and parse_size("2 MB") == 2_000_000
    for bad in ("lots", "5 parsecs", "-1GiB", -1):
        with pytest.raises(spillway.UsageError, match="cache_limit"):
            parse_size(bad)
    with pytest.raises(TypeError):
        parse_size(1.5)


def test_a_cached_shard_is_a_hit_named_by_its_content(dataset, tmp_path):
    src, e = Source(dataset), entries(dataset)[0]
    cache = ShardCache(tmp_path, None)
    with cache.acquire(src.url(e), e, src) as pin:
        assert pin.path.endswith(f"shard-0.{e['checksum'][6:]}.spill")
        assert spillway.open(pin.path).nrows == e["rows"]
    cache.acquire(src.url(e), e, src).release()
    assert len(src.calls) == 1
    assert cache.stats() == {"downloads": 1, "bytes_downloaded": e["bytes"], "hits": 1,
                             "evictions": 0}
    assert [name for _, name in log_lines(tmp_path)] == [os.path.basename(pin.path)]
    assert not [n for n in os.listdir(os.path.dirname(pin.path)) if n.endswith(".part")]


def test_least_recently_used_unpinned_shards_are_evicted(dataset, tmp_path):
    src, es = Source(dataset), entries(dataset)
    two = sorted(e["bytes"] for e in es)[-2:]
    cache = ShardCache(tmp_path, sum(two) + 100)  # room for two shards
    paths = [cache.path_of(src.url(e), e) for e in es]
    for k in (0, 1, 0):  # shard 0 used last
        cache.acquire(src.url(es[k]), es[k], src).release()
        time.sleep(0.01)
    cache.acquire(src.url(es[2]), es[2], src).release()
    assert os.path.exists(paths[0]) and not os.path.exists(paths[1]) and os.path.exists(paths[2])
    assert cache.stats()["evictions"] == 1 and cache.stats()["downloads"] == 3


def test_pinned_shards_are_never_evicted(dataset, tmp_path):
    src, es = Source(dataset), entries(dataset)
    cache = ShardCache(tmp_path, sum(sorted(e["bytes"] for e in es)[-2:]) + 100)
    a = cache.acquire(src.url(es[0]), es[0], src)
    b = cache.acquire(src.url(es[1]), es[1], src)
    with pytest.raises(CacheFull, match=r"cannot hold shard 'shard-2.spill' \(\d+ bytes\): "
                                        r"\d+ bytes of shards are pinned"):
        cache.acquire(src.url(es[2]), es[2], src)
    assert os.path.exists(a.path) and os.path.exists(b.path) and len(src.calls) == 2
    a.release()
    with cache.acquire(src.url(es[2]), es[2], src):
        assert not os.path.exists(a.path) and os.path.exists(b.path)
    b.release()


def test_a_shard_larger_than_the_limit_is_refused_before_downloading(dataset, tmp_path):
    src, e = Source(dataset), entries(dataset)[0]
    with pytest.raises(CacheFull, match="larger than the cache limit"):
        ShardCache(tmp_path, e["bytes"] - 1).acquire(src.url(e), e, src)
    assert src.calls == []


def test_a_flipped_data_byte_is_found_by_verify_and_downloaded_again(dataset, tmp_path):
    src, e = Source(dataset), entries(dataset)[0]
    cache = ShardCache(tmp_path, None)
    path = cache.acquire(src.url(e), e, src, verify=True).path
    cache.acquire(src.url(e), e, src).release()
    flip(path, 4096)  # the first column region: the metadata CRC does not cover it
    cache.acquire(src.url(e), e, src).release()
    assert len(src.calls) == 1, "without verify, a data byte is not looked at"
    cache.acquire(src.url(e), e, src, verify=True).release()
    assert len(src.calls) == 2
    spillway.verify(path)


def test_a_flipped_metadata_byte_is_found_without_verify(dataset, tmp_path):
    src, e = Source(dataset), entries(dataset)[1]
    cache = ShardCache(tmp_path, None)
    path = cache.acquire(src.url(e), e, src).path
    with open(path, "rb") as fh:
        fh.seek(-64, os.SEEK_END)
        meta = int.from_bytes(fh.read(8), "little")
    flip(path, meta + 5)
    cache.acquire(src.url(e), e, src).release()
    assert len(src.calls) == 2 and cache.stats()["hits"] == 0
    spillway.open(path)


def test_a_bad_download_is_refused_and_leaves_nothing(dataset, tmp_path):
    src, es = Source(dataset), entries(dataset)

    def wrong(url, dest, expect):  # another shard's bytes under this name
        shutil.copyfile(os.path.join(src.dir, "shard-2.spill"), dest)
    cache = ShardCache(tmp_path, None)
    with pytest.raises(spillway.DataError, match="not the shard the manifest lists"):
        cache.acquire(src.url(es[3]), es[3], wrong)
    d = os.path.dirname(cache.path_of(src.url(es[3]), es[3]))
    assert [n for n in os.listdir(d) if not n.endswith(".lock")] == []


def test_stale_parts_of_dead_processes_are_removed(dataset, tmp_path):
    src, es = Source(dataset), entries(dataset)
    cache = ShardCache(tmp_path, None)
    d = os.path.dirname(cache.path_of(src.url(es[0]), es[0]))
    os.makedirs(d)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = os.path.join(d, f".shard-0.00000000.spill.{dead.pid}.abcd1234.part")
    live = os.path.join(d, f".shard-1.00000000.spill.{os.getpid()}.abcd1234.part")
    for p in (stale, live):
        with open(p, "wb") as fh:
            fh.write(b"x" * 100)
    cache.acquire(src.url(es[0]), es[0], src).release()
    assert not os.path.exists(stale) and os.path.exists(live)


WORKER = """
import json, os, shutil, sys, time
from spillway.cache import ShardCache
src_dir, cache_dir, manifest = sys.argv[1:4]
es = json.load(open(manifest))["shards"]
def fetch(url, dest, expect):
    time.sleep(0.2)  # long enough for the other process to wait on the lock
    shutil.copyfile(os.path.join(src_dir, url.rsplit("/", 1)[1]), dest)
cache = ShardCache(cache_dir, None)
for e in es:
    cache.acquire("mem://bucket/ds/" + e["path"], e, fetch).release()
print(json.dumps(cache.stats()))
"""


def test_two_processes_download_each_shard_once(dataset, tmp_path):
    src_dir = os.path.dirname(dataset)
    procs = [subprocess.Popen([sys.executable, "-c", WORKER, src_dir, str(tmp_path), dataset],
                              stdout=subprocess.PIPE, text=True) for _ in range(2)]
    stats = [json.loads(p.communicate(timeout=60)[0]) for p in procs]
    assert all(p.returncode == 0 for p in procs)
    names = Counter(name for _, name in log_lines(tmp_path))
    assert len(names) == N and set(names.values()) == {1}
    assert sum(s["downloads"] for s in stats) == N and sum(s["hits"] for s in stats) == N


# ---------------------------------------------------------------------- shuffle="shards"
def rows_of(batches):
    """(symbol, time) of every row the batches hold: each row's identity."""
    return [(int(s), int(t)) for b in batches for s, t in zip(b[3], b[2])]


def test_shards_shuffle_reads_every_row_once_and_follows_the_seed(dataset):
    ds = spillway.open_dataset(dataset)
    every = sorted(zip(ds.column("symbol").tolist(), ds.column("ts").tolist()))
    _, late = ds.split_by_time(int(np.median(ds.column("ts"))))
    want_late = sorted(r for k, r in enumerate(zip(ds.column("symbol").tolist(),
                                                   ds.column("ts").tolist()))
                       if any(a <= k < b for a, b in late))
    epochs = {}
    for seed in (0, 1):
        for window in (1, 2, 5):
            kw = dict(shuffle="shards", block_rows=70, seed=seed, window=window,
                      with_time=True, with_symbols=True)
            got = list(ds.batches(128, **kw))
            assert all(len(b[0]) == 128 for b in got[:-1])
            assert sorted(rows_of(got)) == every
            assert rows_of(got) == rows_of(ds.batches(128, **kw)), "deterministic"
            assert sorted(rows_of(ds.batches(100, ranges=late, **kw))) == want_late
            epochs[seed, window] = rows_of(got)
    assert epochs[0, 2] != epochs[1, 2] and epochs[0, 1] != epochs[0, 2]
    with pytest.raises(ValueError, match="window"):
        ds.batches(10, shuffle="shards", window=0)
    with pytest.raises(TypeError, match="window"):
        ds.batches(10, shuffle="shards", window=1.5)


# ---------------------------------------------------------------------- remote datasets
BUCKET = "spw-cache"
URL = f"s3://{BUCKET}/ds/dataset.json"


@pytest.fixture(scope="module")
def bucket(dataset):
    """moto's S3 server holding the dataset under ``ds/``; its environment for object_store."""
    with moto_bucket(BUCKET, "cache-secret") as (client, o):
        d = os.path.dirname(dataset)
        for name in os.listdir(d):
            if name.endswith((".spill", ".json")):
                client.upload_file(os.path.join(d, name), BUCKET, f"ds/{name}")
        yield {"AWS_ENDPOINT_URL": o["aws_endpoint_url"], "AWS_ALLOW_HTTP": "true",
               "AWS_ACCESS_KEY_ID": "k", "AWS_SECRET_ACCESS_KEY": "cache-secret",
               "AWS_REGION": "us-east-1"}


class Spy:
    """The extension, its downloads recorded (and optionally slowed) on the way through."""

    def __init__(self, real):
        self.real = real
        self.downloads, self.threads, self.delay = [], [], 0.0

    def download(self, url, dest, options, expect):
        self.downloads.append(url.rsplit("/", 1)[1])
        self.threads.append(threading.current_thread().name)
        time.sleep(self.delay)
        return self.real.download(url, dest, options, expect)

    def __getattr__(self, name):
        return getattr(self.real, name)


@pytest.fixture
def native(bucket, monkeypatch):
    """The real extension against the bucket (credentials and endpoint in the environment, as
    object_store reads them), its downloads recorded."""
    for k, v in bucket.items():
        monkeypatch.setenv(k, v)
    spy = Spy(spillway._need_native())
    monkeypatch.setattr(spillway, "_need_native", lambda: spy)
    return spy


def test_a_remote_dataset_downloads_nothing_at_open(dataset, native, tmp_path):
    ds = spillway.open_dataset(URL, cache_dir=str(tmp_path), cache_limit="10MiB")
    local = spillway.open_dataset(dataset)
    assert (ds.nrows, ds.columns, ds.offsets) == (local.nrows, local.columns, local.offsets)
    assert native.downloads == [] and ds.remote and ds.shards[2].nrows == 600
    assert ds[700]["f001"] == local[700]["f001"] and native.downloads == ["shard-1.spill"]
    assert ds.symbols == local.symbols and ds.target_column == "target"
    assert native.downloads == ["shard-1.spill"], "what every shard holds comes from a mapped one"
    back = pickle.loads(pickle.dumps(ds))
    assert back.path == URL and back.cache.dir == ds.cache.dir and back.cache.limit == 10 << 20
    with pytest.raises(spillway.UsageError, match="cache_limit: only for a remote manifest"):
        spillway.open_dataset(dataset, cache_limit="1GiB")


def test_remote_batches_equal_local_ones_and_download_each_shard_once(dataset, native,
                                                                      tmp_path):
    local = spillway.open_dataset(dataset)
    sizes = sorted(e["bytes"] for e in entries(dataset))
    ds = spillway.open_dataset(URL, cache_dir=str(tmp_path), cache_limit=sum(sizes[-2:]) + 100)
    for seed in (0, 1, 2):
        kw = dict(shuffle="shards", block_rows=50, seed=seed, with_time=True,
                  with_symbols=True)
        got, want = list(ds.batches(128, **kw)), list(local.batches(128, **kw))
        assert len(got) == len(want)
        for g, w in zip(got, want):
            for x, y in zip(g, w):
                np.testing.assert_array_equal(x, y)
        assert len(ds._remote.mapped()) <= 2
        epoch, native.downloads = native.downloads, []
        assert len(set(epoch)) == len(epoch), "no shard downloaded twice in an epoch"
        if seed == 0:
            assert len(epoch) == N
    assert ds.cache.stats()["evictions"] >= N, "the cache holds 2 of 4 shards: it evicted"
    big = spillway.open_dataset(URL, cache_dir=str(tmp_path / "big"))
    kw = dict(shuffle="blocks", block_rows=97, seed=3)
    for g, w in zip(big.batches(250, **kw), local.batches(250, **kw)):
        np.testing.assert_array_equal(g[0], w[0])
    assert big.cache.stats()["downloads"] == N
    np.testing.assert_array_equal(big.to_arrow().column("f000").to_numpy(), local.column("f000"))


def test_a_cache_too_small_for_a_batch_is_refused_before_any_download(dataset, native,
                                                                      tmp_path):
    sizes = sorted(e["bytes"] for e in entries(dataset))
    ds = spillway.open_dataset(URL, cache_dir=str(tmp_path), cache_limit=sizes[-1] + 100)
    with pytest.raises(CacheFull, match="one window"):
        ds.batches(128, shuffle="shards", window=2)
    with pytest.raises(CacheFull, match="one batch of 1000 rows"):
        ds.batches(1000, shuffle="blocks", block_rows=10)
    with pytest.raises(CacheFull, match="column_chunks maps 4 shards"):
        ds.column_chunks("f000")
    assert native.downloads == []
    got = sum(len(b[0]) for b in ds.batches(128, shuffle="shards", window=1))
    assert got == ds.nrows and sorted(native.downloads) == sorted(e["path"]
                                                                  for e in entries(dataset))
    with pytest.raises(CacheFull, match="larger than cache_limit"):
        spillway.open_dataset(URL, cache_dir=str(tmp_path), cache_limit=sizes[0] - 1)


def test_prefetch_and_close_keep_within_the_limit(dataset, native, tmp_path):
    sizes = sorted(e["bytes"] for e in entries(dataset))
    ds = spillway.open_dataset(URL, cache_dir=str(tmp_path), cache_limit=sum(sizes[-2:]) + 100,
                               prefetch=3)
    it = ds.batches(200, with_time=True)
    next(it)
    assert len(ds._remote.mapped()) <= 2
    assert sum(len(b[0]) for b in it) + 200 == ds.nrows
    assert ds._remote.mapped() == [], "shards no longer needed are closed"
    assert len(native.downloads) == N
    native.downloads, native.delay = [], 0.05
    kw = dict(shuffle="shards", window=1, block_rows=64, seed=4)
    shutil.rmtree(tmp_path)
    assert sum(len(b[0]) for b in ds.batches(100, **kw)) == ds.nrows
    assert sorted(native.downloads) == [e["path"] for e in entries(dataset)]
    assert "spillway-prefetch" in " ".join(native.threads), "downloads ran ahead, in background"
    assert ds.verify()["ok"]


EPOCH = """
import sys, spillway
ds = spillway.open_dataset(sys.argv[1], cache_dir=sys.argv[2])
print(sum(len(b[0]) for b in ds.batches(128, shuffle="shards", seed=int(sys.argv[3]))))
"""


def test_two_processes_on_one_cache_download_each_shard_once_from_s3(dataset, bucket,
                                                                      tmp_path):
    """Two epochs at once, in two processes sharing a cache, from the bucket: each shard is
    downloaded once in all (``downloads.log``), and both read every row."""
    env = {**os.environ, **bucket}
    procs = [subprocess.Popen([sys.executable, "-c", EPOCH, URL, str(tmp_path), str(seed)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env=env) for seed in (0, 1)]
    out = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), [e for _, e in out]
    nrows = spillway.open_dataset(dataset).nrows
    assert [int(o) for o, _ in out] == [nrows, nrows]
    names = Counter(name for _, name in log_lines(tmp_path))
    assert len(names) == N and set(names.values()) == {1}, names


def test_a_flipped_byte_in_a_cached_shard_is_downloaded_again_from_s3(dataset, native,
                                                                      tmp_path):
    ds = spillway.open_dataset(URL, cache_dir=str(tmp_path), verify=True)
    want = spillway.open_dataset(dataset).column("f000")
    np.testing.assert_array_equal(ds.column("f000"), want)
    assert sorted(native.downloads) == sorted(e["path"] for e in entries(dataset))
    ds.close()
    cached = ds.cache.path_of(URL.rsplit("/", 1)[0] + "/shard-2.spill", entries(dataset)[2])
    flip(cached, 4096 + 100)  # a data byte: only the chunk CRCs see it
    native.downloads.clear()
    again = spillway.open_dataset(URL, cache_dir=str(tmp_path), verify=True)
    np.testing.assert_array_equal(again.column("f000"), want)
    assert native.downloads == ["shard-2.spill"], "the damaged copy was replaced"


def test_a_copy_from_an_earlier_boot_is_checked_whole_once(dataset, tmp_path):
    """The cache does not fsync: a copy written before the machine restarted may have lost
    pages. One whose boot mark is not this boot's gets every chunk checked (without
    ``verify``): a damaged one is downloaded again, an intact one is marked and trusted."""
    src = Source(dataset)
    cache = ShardCache(str(tmp_path), None)
    e = entries(dataset)[1]
    cache.acquire(src.url(e), e, src).release()
    path = cache.path_of(src.url(e), e)
    with open(path + ".boot") as fh:
        assert fh.read() == open("/proc/sys/kernel/random/boot_id").read().strip()
    flip(path, 4096 + 100)  # a data byte: only the chunk CRCs see it
    cache.acquire(src.url(e), e, src).release()
    assert len(src.calls) == 1, "this boot's copy is trusted: only length and metadata checked"
    with open(path + ".boot", "w") as fh:
        fh.write("an-earlier-boot")
    cache.acquire(src.url(e), e, src).release()
    assert len(src.calls) == 2, "the earlier boot's damaged copy was downloaded again"
    with open(path + ".boot", "w") as fh:
        fh.write("an-earlier-boot")
    cache.acquire(src.url(e), e, src).release()
    assert len(src.calls) == 2, "an intact copy of an earlier boot is checked and kept"
    with open(path + ".boot") as fh:
        assert fh.read() != "an-earlier-boot"
