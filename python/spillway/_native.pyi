"""Type stubs of the Rust extension (see python/src/lib.rs). Call it through :mod:`spillway`."""
from typing import Any, List, Optional, Tuple

__version__: str
#: Bumped by every change to the bytes spillway writes for the same inputs and options.
SEMANTICS_VERSION: int

def build(options_json: str, config: Optional[str] = None, progress: bool = False,
          summary: Optional[str] = None, quiet: Optional[bool] = None) -> str:
    """Build from a JSON object of BuildOptions (kebab-case keys) over the config file's; also
    write the summary to ``summary`` (as ``--summary``); returns the summary as JSON."""

def inspect(options_json: str) -> str:
    """Inspect an input directory; returns the report as JSON."""

def verify(path: str) -> Tuple[bool, int, int, int, int, List[Tuple[str, int, int, int, int, int]]]:
    """(ok, nrows, columns, symbols, chunks, damaged) of a spill file."""

def export(path: str, to: str, columns: Optional[List[str]], start: Optional[int],
           stop: Optional[int], nan_as_null: bool, format: Optional[str]) -> str:
    """Stream a spill file to Parquet or Arrow IPC; returns a JSON report."""

def append(manifest: str, options_json: str, shards: int = 1, rebuild: bool = False,
           only: Optional[int] = None, commit_only: bool = False,
           progress: bool = False) -> str:
    """Append to the time-major dataset ``manifest`` (a path or a URL) the rows of the universe
    (``options_json``: BuildOptions of the input and resources: ``input``, ``threads``,
    ``memory-budget``, ``storage``, ``scratch``) after its last timestamp, as ``shards`` new
    time shards and the next manifest generation. ``only``: build that new shard, commit
    nothing; ``commit_only``: build nothing, commit the shards the ``only`` calls built. The
    report as JSON (no shards, 0 rows, ``"history": null`` when no row is new); history that
    differs raises ``spillway.errors.HistoryError`` unless ``rebuild``."""

def cli_main(argv: List[str], relaunch: List[str]) -> int:
    """Runs the ``spillway`` command line ``argv`` (program name first); returns its exit code.
    ``relaunch`` is how it runs itself as a child process (``[sys.executable, "-m", "spillway"]``)."""
    ...

# The native reads of SpillFile.batches and SpillFile.take (python/src/read.rs), without the GIL.
def read_rows(fd: int, offsets: List[int], col_bytes: int, runs: List[Tuple[int, int]],
              out: Any, at: int, dtype: str, itemsize: int = 4, chunk_bytes: int = 0,
              crcs: Optional[List[List[int]]] = None,
              verified: Optional[List[bytearray]] = None,
              names: Optional[List[str]] = None) -> None:
    """Copy rows of columns read with pread(2) from the open file ``fd`` (borrowed, not closed)
    into ``out``: column ``i`` is ``col_bytes`` bytes at byte ``offsets[i]`` of little-endian
    values of ``itemsize`` bytes; each run ``(a, b)`` in turn puts rows ``[a, b)`` of every
    column into the next rows of ``out`` from row ``at``. ``out``: writable C-contiguous
    ``(n, len(offsets))`` (or ``(n,)`` for one column) of ``<f4`` for ``dtype="float32"``,
    ``<f2`` for "float16", ``<u2`` (bfloat16 bits) for "bfloat16" (float32 columns, rounded to
    nearest even), or for "raw" any plain little-endian number of ``itemsize`` bytes (``<i8``,
    ``<M8[ns]``, ``<u4``, ``<f4``...), copied as stored.

    With ``crcs`` (``crcs[i]``: column ``i``'s chunk CRC-32s, chunks of ``chunk_bytes``), every
    chunk a run touches whose ``verified[i][k]`` is 0 (every one, without ``verified``) is read
    whole and checked before anything is copied; ``verified[i][k]`` is set to 1, in place, for
    each chunk found intact. A mismatch raises ``ValueError("column 'name' rows [r0, r1)
    (chunk k): checksum mismatch: stored 0x..., computed 0x...")`` (``names[i]``, else the
    index) and copies nothing. A file that ends inside a column is a ``ValueError`` naming it,
    a failed read an ``OSError``; bad arguments are ``TypeError``/``ValueError``."""

def take_rows(base: Any, offsets: List[int], nrows: int, rows: Any, dest: Any, out: Any,
              dtype: str) -> None:
    """``out[dest[i], j] = column_j[rows[i]]``: column ``j`` is ``nrows`` float32 values at byte
    ``offsets[j]`` of ``base`` (1-D uint8 over the whole mapping, ``np.frombuffer(mmap)``);
    ``rows`` (sorted ascending reads each column front to back) and ``dest`` are 1-D int64
    arrays of one length; ``out`` as for :func:`read_rows` with ``dtype`` "float32", "float16" or
    "bfloat16". Every index is checked before any read: ``IndexError``; a column beyond
    ``base`` or ``out`` sharing memory with an input: ``ValueError``."""

# The sharded build's building blocks (python/src/sharded.rs), through spillway.dataset.
def count(options_json: str) -> str:
    """Count one shard (BuildOptions with shard or symbols, and output); the summary as JSON."""

def plan_cs(counts: List[str], output: str, min_cs: int = 0,
            max_cs_samples: Optional[int] = None, seed: int = 0,
            merge_only: bool = False, storage_json: str = "{}",
            scratch: Optional[str] = None) -> str:
    """Merge count files into a cross-section plan (or, ``merge_only``, one count file); the
    summary as JSON. Counts and output may be URLs: fetched into, or built in, ``scratch``
    (default: the temporary directory). ``storage_json``: storage options as a JSON object."""

def manifest(shards: List[str], output: str, cs_plan: Optional[str] = None,
             storage_json: str = "{}", scratch: Optional[str] = None,
             replace: bool = False) -> str:
    """Check that the shards form one dataset and commit the manifest ``output`` (paths or
    URLs); an existing manifest of another dataset only with ``replace`` (kept as
    ``dataset.g<N>.json``). The manifest as JSON."""

def verify_dataset(path: str, chunks: bool = True, storage_json: str = "{}",
                   scratch: Optional[str] = None) -> str:
    """Check a whole dataset (a path or a URL): every shard against the manifest, the plan, and
    with ``chunks`` every chunk checksum (from a bucket: each shard downloaded into ``scratch``
    in turn). The report as JSON."""

def describe(path: str, storage_json: str = "{}") -> str:
    """What the spill file at ``path`` (a path or a URL) says of itself, checked, from its
    header and end alone: ``{"bytes", "checksum", "nrows", "metadata"}`` as JSON."""

def get_object(url: str, storage_json: str = "{}", tail: Optional[int] = None) -> bytes:
    """The whole object at ``url`` (a URL or a local path; at most 64 MiB: manifests), or its
    last ``tail`` bytes; DataError when it does not exist."""

def download(url: str, dest: str, storage_json: str = "{}",
             expect_len: Optional[int] = None) -> str:
    """Stream the object at ``url`` into the local file ``dest`` (one frame in memory at a
    time; Ctrl-C cancels), checking that it has ``expect_len`` bytes when given.
    ``{"bytes": n}`` as JSON."""

def universe(options_json: str) -> str:
    """The universe's identity (symbols, names CRC, fingerprint) as shards record it, as JSON."""
