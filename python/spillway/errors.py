"""The exceptions of :mod:`spillway`, one class per kind of failure of the CLI's exit codes.

``SpillwayError`` is the base; ``exit_code`` is the code ``spillway`` on the command line exits
with for the same failure. A cancelled build (Ctrl-C) raises ``KeyboardInterrupt``, as Python does.
A file the numpy reader refuses raises :class:`spillway.spillfile.SpillError` (a ``ValueError``
and a ``SpillwayError``).
"""
import json
from typing import Any, Dict, Optional, Tuple

# The base class lives in the numpy reader, so that file keeps working alone and its SpillError
# is a SpillwayError too.
from .spillfile import SpillwayError

__all__ = ["SpillwayError", "DataError", "HistoryError", "ExcludeError", "UsageError",
           "InternalError", "EXCLUDE_MARKER"]

#: What precedes, in an :class:`ExcludeError`'s message (and on the CLI's stderr, exit code 4),
#: the JSON object of the symbols to exclude (the library's ``spillway::EXCLUDE_MARKER``).
EXCLUDE_MARKER = "symbols to exclude: "


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


class ExcludeError(DataError):
    """A shard build under ``on_error="skip"`` (``shard=`` or ``symbols=``, plain or
    ``order="time"``) found symbols failing while decoding after the shards' plan was fixed.
    Leaving them out in this shard alone would make it disagree with the other shards (and with
    the single build), so it wrote nothing: its driver must exclude them from every shard
    (``exclude=``; for symbol shards also from the counts, then plan again) and build every
    shard again, as :func:`spillway.ray.build` does. The CLI exits with code 4 and ends its
    stderr with :data:`EXCLUDE_MARKER` and the symbols as one line of JSON."""

    exit_code = 4

    def __init__(self, message: str, symbols: Optional[Dict[str, str]] = None,
                 scope: Optional[str] = None) -> None:
        super().__init__(message)
        #: The symbols every shard must leave out, each to the reason it failed, in symbol
        #: order (from the message when not given).
        self.symbols: Dict[str, str] = dict(sorted(
            (symbols if symbols is not None else excluded_symbols(message) or {}).items()))
        #: The shard that found them (``"I/N"`` or ``"A..B"``), when known.
        self.scope: Optional[str] = scope

    def __reduce__(self) -> Tuple[Any, ...]:
        # Ray and multiprocessing pickle exceptions: keep the symbols and the scope.
        return (type(self), (str(self), self.symbols, self.scope))


def excluded_symbols(message: str) -> Optional[Dict[str, str]]:
    """The symbols (each to its reason) that a message (an :class:`ExcludeError`'s, or the CLI's
    stderr) names after the last :data:`EXCLUDE_MARKER`; None when it names none."""
    at = len(message)
    # From the last marker back: a reason that quotes the marker is inside the JSON, not before.
    while (at := message.rfind(EXCLUDE_MARKER, 0, at)) >= 0:
        line = message[at + len(EXCLUDE_MARKER):].split("\n", 1)[0]
        try:
            found = json.loads(line)
        except ValueError:
            continue
        if isinstance(found, dict):
            return {str(k): str(v) for k, v in found.items()}
    return None


class UsageError(SpillwayError, ValueError):
    """The request itself is invalid: a bad option value or config file. The CLI exits with 2."""

    exit_code = 2


class InternalError(SpillwayError):
    """spillway broke its own protocol: a bug, please report it. The CLI exits with code 3."""

    exit_code = 3
