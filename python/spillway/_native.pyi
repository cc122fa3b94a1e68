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

def cli_main(argv: List[str], relaunch: List[str]) -> int:
    """Runs the ``spillway`` command line ``argv`` (program name first); returns its exit code.
    ``relaunch`` is how it runs itself as a child process (``[sys.executable, "-m", "spillway"]``)."""
    ...

def gather_rows(dst: Any, at: int, src: Any, start: int, rows: int) -> None:
    """Rows [start, start+rows) of a 2-D float32 buffer into rows [at, ...) of a C-contiguous one."""

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
