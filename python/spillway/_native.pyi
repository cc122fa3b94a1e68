"""Type stubs of the Rust extension (see python/src/lib.rs). Call it through :mod:`spillway`."""
from typing import Any, List, Optional, Tuple

__version__: str

def build(options_json: str, config: Optional[str] = None, progress: bool = False) -> str:
    """Build from a JSON object of BuildOptions (kebab-case keys); returns the summary as JSON."""

def inspect(options_json: str) -> str:
    """Inspect an input directory; returns the report as JSON."""

def verify(path: str) -> Tuple[bool, int, int, int, int, List[Tuple[str, int, int, int, int, int]]]:
    """(ok, nrows, columns, symbols, chunks, damaged) of a spill file."""

def export(path: str, to: str, columns: Optional[List[str]], start: Optional[int],
           stop: Optional[int], nan_as_null: bool, format: Optional[str]) -> str:
    """Stream a spill file to Parquet or Arrow IPC; returns a JSON report."""

def gather_rows(dst: Any, at: int, src: Any, start: int, rows: int) -> None:
    """Rows [start, start+rows) of a 2-D float32 buffer into rows [at, ...) of a C-contiguous one."""
