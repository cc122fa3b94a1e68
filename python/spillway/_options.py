"""Keyword options of :func:`spillway.build` (and ``inspect``, ``dataset.count``) checked and
turned into the JSON object of the library's ``BuildOptions``.

The options the package knows are checked here, so that a wrong type is a ``TypeError`` and a
bad value a :class:`~spillway.errors.UsageError` (a ``ValueError``), each naming the keyword.
Options the library gains later pass through unchecked, and the extension names them in its
errors the same way (``python/src/lib.rs``).
"""
from __future__ import annotations

import json
import numbers
import os
from typing import Any, Dict, List, Tuple, Type

from .errors import UsageError

__all__ = ["options_json", "check_path", "check_flag", "check_storage", "option_text"]

U64_MAX = (1 << 64) - 1

# Every integer option of BuildOptions is a u64 (or a usize: the same on 64-bit platforms).
_INTS = ("max_rows", "threads", "channel_capacity", "batch_rows", "min_cs", "max_cs_samples",
         "seed")
_STRS = ("target", "time_col", "time_unit", "on_error", "write_mode", "order", "cs_transform",
         "shard", "symbols")
_FLAGS = ("no_float32", "drop_null_target", "no_target")
_PATHS = ("input", "output", "cs_plan", "summary", "scratch")


def _type(value: Any) -> str:
    return type(value).__name__


def check_int(name: str, value: Any) -> int:
    """``value`` as an int from 0 to 2**64 - 1 (numpy integers too, not bools): TypeError for
    another type, UsageError out of range, reported as the integer given."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int, not {_type(value)} ({value!r})")
    n = int(value)
    if n < 0:
        raise UsageError(f"{name}={n} is out of range: it must be at least 0")
    if n > U64_MAX:
        raise UsageError(f"{name}={n} is out of range: the largest value is 2**64 - 1 "
                         f"({U64_MAX}), an unsigned 64-bit integer")
    return n


def check_flag(name: str, value: Any) -> bool:
    """``value`` as a bool (numpy's too): TypeError for anything else."""
    if not isinstance(value, _np_bool()):
        raise TypeError(f"{name} must be True or False, not {_type(value)} ({value!r})")
    return bool(value)


def check_path(name: str, value: Any) -> str:
    """``value`` (a str or an ``os.PathLike`` of str) as a str: TypeError for anything else."""
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a path (str or os.PathLike), not {_type(value)} "
                        f"({value!r})")
    return value


def _check_str(name: str, value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str, not {_type(value)} ({value!r})")
    return value


def _check_names(name: str, value: Any, what: str = "column names") -> List[str]:
    """``features`` or ``exclude``: a list of names, or ``"a,b,c"`` as the CLI takes them."""
    if isinstance(value, str):
        return value.split(",")  # as the CLI's --features a,b,c
    if isinstance(value, (bytes, dict)) or not hasattr(value, "__iter__"):
        raise TypeError(f"{name} must be a list of {what} or 'a,b,c', not "
                        f"{_type(value)} ({value!r})")
    return [str(c) for c in value]


def _check_attempts(value: Any) -> int:
    n = check_int("max_attempts", value)
    if not 1 <= n < 1 << 32:
        raise UsageError(f"max_attempts={n} is out of range: it must be from 1 to 2**32 - 1")
    return n


def _check_size(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        return str(check_int("memory_budget", value))
    raise TypeError(f"memory_budget must be a size such as '256MiB' or an int of bytes, not "
                    f"{_type(value)} ({value!r})")


def option_text(value: Any) -> str:
    """A storage option's value as the text object_store parses (``True`` -> ``"true"``)."""
    if isinstance(value, _np_bool()):
        return "true" if value else "false"
    return str(value)


def check_storage(value: Any) -> Dict[str, str]:
    """``storage_options``: a mapping of object_store's keys (``aws_endpoint_url``,
    ``aws_region``, ...; those polars' ``storage_options`` takes) to str, bool or int values."""
    if not hasattr(value, "items"):
        raise TypeError(f"storage_options must be a dict of option names to values, not "
                        f"{_type(value)}")
    out: Dict[str, str] = {}
    for k, v in value.items():
        if not isinstance(k, str):
            raise TypeError(f"storage_options keys must be str, not {_type(k)}")
        if not isinstance(v, (str, bool, numbers.Integral, float)):
            raise TypeError(f"storage_options[{k!r}] must be a str, bool or number, not "
                            f"{_type(v)}")
        out[k] = option_text(v)
    return out


def _np_bool() -> Tuple[Type[Any], ...]:
    """The bool types a flag may be: ``bool`` and numpy's ``bool_``."""
    try:
        import numpy as np
    except ImportError:  # numpy is a requirement; without it, bool alone
        return (bool,)
    return (bool, np.bool_)


def _value(name: str, value: Any) -> Any:
    """One option checked (known ones) or made JSON-ready (the others)."""
    if name in _INTS:
        return check_int(name, value)
    if name in _STRS:
        return _check_str(name, value)
    if name in _FLAGS:
        return check_flag(name, value)
    if name in _PATHS:
        return check_path(name, value)
    if name == "features":
        return _check_names(name, value)
    if name == "exclude":
        return _check_names(name, value, "symbols")
    if name == "max_attempts":
        return _check_attempts(value)
    if name == "memory_budget":
        return _check_size(value)
    if name == "storage_options":
        return check_storage(value)
    # An option the library gained after this module: JSON-ready, checked by the extension.
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, _np_bool()):
        return bool(value)
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        return check_int(name, value)
    return value


def options_json(**kw: Any) -> str:
    """A JSON object of the library's BuildOptions: kebab-case keys, options not given (None)
    left out. A flag given as False is kept (``"drop-null-target": false``): laid over a config
    file, it overrides the file's ``true``. Raises TypeError or UsageError naming the keyword."""
    out: Dict[str, Any] = {}
    for name, value in kw.items():
        if value is None:
            continue
        key = "storage" if name == "storage_options" else name.replace("_", "-")
        out[key] = _value(name, value)
    try:
        return json.dumps(out)
    except (TypeError, ValueError) as e:  # a value of an unchecked option json cannot write
        raise TypeError(f"an option value is not a str, number, bool or list: {e}") from None
