"""The exceptions of :mod:`spillway`, one class per kind of failure of the CLI's exit codes.

``SpillwayError`` is the base; ``exit_code`` is the code ``spillway`` on the command line exits
with for the same failure. A cancelled build (Ctrl-C) raises ``KeyboardInterrupt``, as Python does.
A file the numpy reader refuses raises :class:`spillway.spillfile.SpillError` (a ``ValueError``
and a ``SpillwayError``).
"""
from typing import Any, Dict, Optional

# The base class lives in the numpy reader, so that file keeps working alone and its SpillError
# is a SpillwayError too.
from .spillfile import SpillwayError

__all__ = ["SpillwayError", "DataError", "HistoryError", "UsageError", "InternalError"]


class DataError(SpillwayError):
    """The input (or the machine) cannot give what was asked: a bad file or value, an I/O
    failure, a memory budget that cannot be met. The CLI exits with code 1."""

    exit_code = 1
    #: The whole report of :func:`spillway.verify` or ``verify_dataset`` that found the problem
    #: (None from elsewhere).
    report: Optional[Dict[str, Any]] = None


class HistoryError(DataError):
    """:func:`spillway.append` found that the universe no longer holds the dataset's history: a
    file it was built from changed and its rows up to the dataset's last timestamp differ, or a
    file it was not built from has rows at or before that timestamp (backfilled history). The
    message names each symbol and the first timestamp (ns) that differs; nothing was written.
    ``append(..., rebuild=True)`` takes the universe whole instead. The CLI exits with code 1."""

    #: The dataset's manifest (a path or a URL).
    manifest: Optional[str] = None
    #: What differs, symbol by symbol (``"; "`` between symbols).
    what: Optional[str] = None


class UsageError(SpillwayError, ValueError):
    """The request itself is invalid: a bad option value or config file. The CLI exits with 2."""

    exit_code = 2


class InternalError(SpillwayError):
    """spillway broke its own protocol: a bug, please report it. The CLI exits with code 3."""

    exit_code = 3
