"""Type stub of the numpy reader, spillway/spillfile.py (spill/python/spillfile.py): a file that
also works alone, copied next to any code, so its types live here. Keep it in step with the
module: python/tests/test_types.py compares the two."""
import datetime as _dt
import mmap
import os
from builtins import open as builtins_open
from collections.abc import Mapping as _MappingABC
from typing import (Any, Callable, Dict, Generic, Iterable, Iterator, List, Literal, Mapping,
                    NoReturn, Optional, Sequence, SupportsInt, Tuple, Union, overload)

import numpy as np
from numpy.typing import ArrayLike, NDArray
from typing_extensions import Self, TypeVar

__all__ = ["SpillwayError", "SpillError", "SpillFile", "Timestamps", "Batches", "open",
           "DamagedChunk", "merge_states", "splitmix64_permutation", "cut_blocks", "merge_runs",
           "pack_units"]

MAGIC: bytes
TRAILER_MAGIC: bytes
VERSION_MAJOR: int
VERSION_MINOR: int
ALIGN: int
HEADER_LEN: int
TRAILER_LEN: int
MIN_FILE_LEN: int
CHECKSUM_CRC32: int
FEATURE_TIME_ORDER: int
KNOWN_REQUIRED_FEATURES: int
MAX_METADATA_BYTES: int
MAX_COLUMNS: int
MAX_SYMBOLS: int
MAX_NAME_BYTES: int
MAX_ROWS: int
MIN_CHUNK_BYTES: int
MAX_CHUNK_BYTES: int
MAX_JSON_DEPTH: int
MAX_TIMESTAMP_RUNS: int
ORDERS: Tuple[str, ...]
DTYPES: Dict[str, np.dtype[Any]]
FLOAT_DTYPES: Tuple[str, ...]
UNSIGNED_DTYPES: Tuple[str, ...]
ROLES: Tuple[str, ...]
#: ``batches``' ``dtype`` choices and X's numpy dtype for each (bfloat16: uint16 bit patterns).
X_DTYPES: Dict[str, np.dtype[Any]]

#: Row ranges as the methods take them: ``[(start, stop), ...]``, or one ``(start, stop)`` tuple.
RowRanges = Union[Sequence[Tuple[int, int]], Tuple[int, int]]
#: A time bound: int nanoseconds, numpy datetime64, datetime (a pandas Timestamp is one; naive
#: means UTC), date, or an ISO string.
_TimeBound = Union[int, np.integer[Any], np.datetime64, _dt.date, str]

# One batch: (X, y[, time][, symbols]). X: (rows, columns) float32, float16, or uint16 holding
# bfloat16 bits (``dtype``); y: the target as float32, None without one (or ``target=False``);
# time: int64 ns; symbols: uint32 codes into ``symbols``.
_X = NDArray[Any]
_Y = Optional[NDArray[np.float32]]
_Time = NDArray[np.int64]
_Symbols = NDArray[np.uint32]
_Range = Tuple[int, int]
_B = TypeVar("_B", bound=Tuple[Any, ...], covariant=True, default=Tuple[Any, ...])

class SpillwayError(Exception):
    exit_code: int

class SpillError(SpillwayError, ValueError): ...

class DamagedChunk(Tuple[str, int, Tuple[int, int], int, int]):
    """(column, chunk, (row_start, row_stop), stored, actual) of a chunk whose checksum failed."""

    def __new__(cls, column: str, chunk: int, rows: Tuple[int, int], stored: int,
                actual: int) -> Self: ...
    @property
    def column(self) -> str: ...
    @property
    def chunk(self) -> int: ...
    @property
    def rows(self) -> Tuple[int, int]: ...
    @property
    def stored(self) -> int: ...
    @property
    def actual(self) -> int: ...

def splitmix64_permutation(n: int, seed: int) -> List[int]: ...
def cut_blocks(ranges: Iterable[_Range], block_rows: int) -> List[List[_Range]]: ...
def merge_runs(blocks: Iterable[Iterable[_Range]]) -> List[_Range]: ...
def cut_sizes(ranges: Iterable[_Range], sizes: Iterable[SupportsInt]) -> List[List[_Range]]: ...
def pack_units(units: ArrayLike, limit: int) -> Tuple[NDArray[np.int64], NDArray[np.int64]]: ...
def merge_states(states: Iterable[Mapping[str, Any]]) -> Dict[str, Any]: ...

class Batches(Generic[_B]):
    """The iterator :meth:`SpillFile.batches` returns."""

    epoch: int
    rank: int
    world_size: int
    dropped: List[_Range]
    padded: List[_Range]
    def __init__(self, plan: _Plan, deal: _Deal, skip: int, base: Mapping[str, Any],
                 produce: Callable[[List[int]], Iterator[_B]]) -> None: ...
    def __iter__(self) -> Self: ...
    def __next__(self) -> _B: ...
    def __len__(self) -> int: ...
    def state_dict(self) -> Dict[str, Any]: ...

class Timestamps:
    """The timestamp index of a time-major file."""

    nrows: int
    def __init__(self, count: int, first: int, steps: NDArray[np.uint64],
                 rows: NDArray[np.uint64]) -> None: ...
    def __len__(self) -> int: ...
    @property
    def times(self) -> NDArray[np.int64]: ...
    @property
    def counts(self) -> NDArray[np.int64]: ...
    @property
    def bounds(self) -> NDArray[np.int64]: ...
    @property
    def starts(self) -> NDArray[np.int64]: ...
    def time(self, i: int) -> int: ...
    def range(self, i: int) -> _Range: ...
    def __getitem__(self, i: int) -> Tuple[int, _Range]: ...
    def __iter__(self) -> Iterator[Tuple[int, _Range]]: ...
    def find(self, t: int) -> Optional[int]: ...
    def first_at_or_after(self, t: int) -> int: ...
    def boundary(self, row: int) -> int: ...

class _TimestampRanges(_MappingABC[int, _Range]):
    def __init__(self, ts: Timestamps, to_ns: Callable[[_TimeBound], int]) -> None: ...
    def __getitem__(self, t: _TimeBound) -> _Range: ...
    def __iter__(self) -> Iterator[int]: ...
    def __len__(self) -> int: ...

class Column:
    """One column's metadata."""

    name: str
    dtype_name: str
    dtype: np.dtype[Any]
    role: str
    offset: int
    length: int
    checksums: List[int]
    min: Union[int, float, None]
    max: Union[int, float, None]
    nan_count: Optional[int]
    mean: Optional[float]
    std: Optional[float]
    unit: Optional[str]
    timezone: Optional[str]

class SpillFile:
    """A validated, memory-mapped spill file. Use :func:`open`."""

    path: str
    nrows: int
    order: str
    chunk_bytes: int
    symbols: List[str]
    metadata: Dict[str, Any]
    version: Tuple[int, int]
    file_len: int
    _mmap: Optional[mmap.mmap]
    def __init__(self, path: Union[str, os.PathLike[str]]) -> None: ...
    @property
    def columns(self) -> List[str]: ...
    def column_info(self, name: str) -> Column: ...
    def columns_with_role(self, role: str) -> List[str]: ...
    def column(self, name: str) -> NDArray[Any]: ...
    def features(self, names: Optional[Sequence[str]] = None,
                 copy: bool = False) -> NDArray[Any]: ...
    def symbol_codes(self) -> Optional[NDArray[np.uint32]]: ...
    def __len__(self) -> int: ...
    def __reduce__(self) -> Tuple[Callable[[str], SpillFile], Tuple[str]]: ...
    @property
    def time_column(self) -> Optional[str]: ...
    @property
    def target_column(self) -> Optional[str]: ...
    @property
    def time_unit(self) -> Optional[str]: ...
    @property
    def timezone(self) -> Optional[str]: ...
    @property
    def symbol_ranges(self) -> Dict[str, _Range]: ...
    @property
    def timestamps(self) -> Optional[Timestamps]: ...
    @property
    def timestamp_ranges(self) -> Optional[_TimestampRanges]: ...
    def time_range(self, start: Optional[_TimeBound] = None,
                   stop: Optional[_TimeBound] = None) -> Optional[_Range]: ...
    def group_sizes(self, ranges: Optional[RowRanges] = None) -> NDArray[np.int64]: ...
    def qid(self, ranges: Optional[RowRanges] = None) -> NDArray[Union[np.int32, np.int64]]: ...
    def time_ranges(self, start: Optional[_TimeBound] = None,
                    stop: Optional[_TimeBound] = None) -> List[_Range]: ...
    def split_by_time(self, cut: _TimeBound) -> Tuple[List[_Range], List[_Range]]: ...
    def take(self, ranges: RowRanges, columns: Optional[Sequence[str]] = None,
             copy: bool = False) -> Tuple[NDArray[Any], Optional[NDArray[Any]]]: ...
    def take_rows(self, indices: ArrayLike, columns: Optional[Sequence[str]] = None,
                  dtype: str = "float32") -> Tuple[NDArray[Any], Optional[NDArray[np.float32]]]: ...
    # A pandas.Categorical (kind="pandas") or a pyarrow DictionaryArray / ChunkedArray
    # (kind="arrow"); neither library is a dependency (pyarrow has no type information).
    def symbol_names(self, ranges: Optional[RowRanges] = None, kind: str = "pandas") -> Any: ...
    # A pyarrow.Table (pyarrow has no type information).
    def to_arrow(self, columns: Optional[Sequence[str]] = None,
                 ranges: Optional[RowRanges] = None) -> Any: ...
    # The batch's arity follows with_time and with_symbols (Literal overloads).
    @overload
    def batches(self, batch_rows: int, columns: Optional[Sequence[str]] = None,
                ranges: Optional[RowRanges] = None, shuffle: Optional[str] = None,
                block_rows: Optional[int] = None, seed: int = 0,
                with_time: Literal[False] = False, with_symbols: Literal[False] = False,
                whole_timestamps: bool = False, *, epoch: Optional[int] = None, rank: int = 0,
                world_size: int = 1, worker: int = 0, num_workers: int = 1,
                drop_last: bool = False, pad: bool = False,
                state: Optional[Mapping[str, Any]] = None, target: bool = True,
                dtype: str = "float32", out: Optional[NDArray[Any]] = None,
                verify: bool = False) -> Batches[Tuple[_X, _Y]]: ...
    @overload
    def batches(self, batch_rows: int, columns: Optional[Sequence[str]] = None,
                ranges: Optional[RowRanges] = None, shuffle: Optional[str] = None,
                block_rows: Optional[int] = None, seed: int = 0,
                with_time: Literal[True] = ..., with_symbols: Literal[False] = False,
                whole_timestamps: bool = False, *, epoch: Optional[int] = None, rank: int = 0,
                world_size: int = 1, worker: int = 0, num_workers: int = 1,
                drop_last: bool = False, pad: bool = False,
                state: Optional[Mapping[str, Any]] = None, target: bool = True,
                dtype: str = "float32", out: Optional[NDArray[Any]] = None,
                verify: bool = False) -> Batches[Tuple[_X, _Y, _Time]]: ...
    @overload
    def batches(self, batch_rows: int, columns: Optional[Sequence[str]] = None,
                ranges: Optional[RowRanges] = None, shuffle: Optional[str] = None,
                block_rows: Optional[int] = None, seed: int = 0,
                with_time: Literal[False] = False, with_symbols: Literal[True] = ...,
                whole_timestamps: bool = False, *, epoch: Optional[int] = None, rank: int = 0,
                world_size: int = 1, worker: int = 0, num_workers: int = 1,
                drop_last: bool = False, pad: bool = False,
                state: Optional[Mapping[str, Any]] = None, target: bool = True,
                dtype: str = "float32", out: Optional[NDArray[Any]] = None,
                verify: bool = False) -> Batches[Tuple[_X, _Y, _Symbols]]: ...
    @overload
    def batches(self, batch_rows: int, columns: Optional[Sequence[str]] = None,
                ranges: Optional[RowRanges] = None, shuffle: Optional[str] = None,
                block_rows: Optional[int] = None, seed: int = 0,
                with_time: Literal[True] = ..., with_symbols: Literal[True] = ...,
                whole_timestamps: bool = False, *, epoch: Optional[int] = None, rank: int = 0,
                world_size: int = 1, worker: int = 0, num_workers: int = 1,
                drop_last: bool = False, pad: bool = False,
                state: Optional[Mapping[str, Any]] = None, target: bool = True,
                dtype: str = "float32", out: Optional[NDArray[Any]] = None,
                verify: bool = False) -> Batches[Tuple[_X, _Y, _Time, _Symbols]]: ...
    @overload
    def batches(self, batch_rows: int, columns: Optional[Sequence[str]] = None,
                ranges: Optional[RowRanges] = None, shuffle: Optional[str] = None,
                block_rows: Optional[int] = None, seed: int = 0, with_time: bool = False,
                with_symbols: bool = False, whole_timestamps: bool = False, *,
                epoch: Optional[int] = None, rank: int = 0, world_size: int = 1,
                worker: int = 0, num_workers: int = 1, drop_last: bool = False,
                pad: bool = False, state: Optional[Mapping[str, Any]] = None,
                target: bool = True, dtype: str = "float32",
                out: Optional[NDArray[Any]] = None,
                verify: bool = False) -> Batches[Tuple[Optional[NDArray[Any]], ...]]: ...
    def verify_time_index(self) -> None: ...
    def damaged_chunks(self) -> List[DamagedChunk]: ...
    def verify(self) -> None: ...
    def release_pages(self) -> None: ...
    def close(self) -> None: ...
    def __enter__(self) -> Self: ...
    def __exit__(self, *exc: object) -> None: ...
    # Used by the package (spillway.lightgbm): not API.
    def _ranges(self, ranges: Optional[RowRanges], caller: Optional[str] = None) -> List[_Range]: ...
    def _group_runs(self, ranges: Optional[RowRanges]) -> NDArray[np.int64]: ...

def open(path: Union[str, os.PathLike[str]]) -> SpillFile: ...

# ---------------------------------------------------------------------------------------------
# Internals the package uses (spillway/__init__.py sets the native readers; spillway.dataset
# deals its shards' batches with the same plan; the adapters): not API.
_read_rows: Optional[Callable[..., object]]
_take_rows: Optional[Callable[..., object]]

def _missing(what: str) -> NoReturn: ...
def _arrow_array(v: NDArray[Any]) -> Any: ...
def _is_row(v: object) -> bool: ...
def _row_ranges(ranges: Optional[RowRanges], nrows: int, caller: Optional[str]) -> List[_Range]: ...
def _row_indices(indices: ArrayLike, nrows: int) -> NDArray[np.int64]: ...
def _batch_args(batch_rows: int, block_rows: Optional[int], shuffle: Optional[str],
                seed: int) -> Tuple[int, int, int]: ...
def _block_sequence(ranges: Iterable[_Range], shuffle: Optional[str], block_rows: int,
                    seed: int) -> List[_Range]: ...
def _deal_args(rank: int, world_size: int, worker: int, num_workers: int, drop_last: bool,
               pad: bool) -> Tuple[int, int, int, int, bool, bool]: ...
def _epoch_of(epoch: Optional[int], state: Optional[Mapping[str, Any]]) -> int: ...
def _base_state(key: str, plan: _Plan, shuffle: Optional[str], block_rows: int, seed: int,
                epoch: int, whole: bool) -> Dict[str, Any]: ...
def _ranges_text(ranges: Iterable[_Range]) -> str: ...
def _check_out(out: Optional[NDArray[Any]], plan: _Plan, ncols: int, dtype: str) -> None: ...
def _start(base: Mapping[str, Any], plan: _Plan, state: Optional[Mapping[str, Any]], rank: int,
           world: int, worker: int, workers: int, drop_last: bool,
           pad: bool) -> Tuple[_Deal, int]: ...

class _Plan:
    segments: List[_Range]
    starts: NDArray[np.int64]
    total: int
    batch_rows: int
    sizes: Optional[NDArray[np.int64]]
    offsets: Optional[NDArray[np.int64]]
    n: int
    partial: bool
    def __init__(self, segments: Iterable[_Range], batch_rows: int,
                 sizes: Optional[ArrayLike] = None) -> None: ...
    def span(self, g: int) -> Tuple[int, int]: ...
    def runs(self, g: int) -> List[_Range]: ...
    def rows(self, batches: Iterable[int]) -> List[_Range]: ...

class _Deal:
    n: int
    cursor: int
    local: int
    world: int
    rank: int
    workers: int
    worker: int
    mine: List[int]
    dropped: List[int]
    padded: List[int]
    def __init__(self, plan: _Plan, cursor: int, rank: int, world: int, worker: int,
                 workers: int, drop_last: bool, pad: bool) -> None: ...
    def batch(self, idx: int) -> int: ...

class _Recycler:
    def __init__(self, keep: int = 2) -> None: ...
    def empty(self, shape: Tuple[int, ...], dtype: np.dtype[Any]) -> NDArray[Any]: ...
    def handed_out(self, arrays: Sequence[Optional[NDArray[Any]]]) -> None: ...

class _RowReader:
    def __init__(self, f: SpillFile, names: Sequence[str], extra: Sequence[Optional[str]],
                 dtype: str, verify: bool, pool: Optional[_Recycler] = None) -> None: ...
    @property
    def ncols(self) -> int: ...
    def empty(self, n: int,
              out: Optional[NDArray[Any]] = None) -> List[Optional[NDArray[Any]]]: ...
    def read_into(self, arrays: Sequence[Optional[NDArray[Any]]], runs: Iterable[_Range],
                  at: int) -> None: ...
    def read(self, runs: Iterable[_Range], n: int,
             out: Optional[NDArray[Any]] = None) -> Tuple[Optional[NDArray[Any]], ...]: ...
    def close(self) -> None: ...
    def __del__(self) -> None: ...
