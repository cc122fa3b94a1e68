"""The ``spillway`` command installed by the wheel: the Rust command line itself
(``spillway_cli::main`` in the extension), so it has the cargo binary's commands, exit codes and
signal behaviour."""
from __future__ import annotations

import signal
import sys


def main() -> None:
    """Runs ``spillway`` with this process's arguments and exits with its code."""
    from ._native import cli_main

    # As in the cargo binary: SIGINT's default action until a build installs its handlers (which
    # stop it cleanly with 130), not Python's KeyboardInterrupt on the way out.
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    sys.exit(cli_main(sys.argv, [sys.executable, "-m", "spillway"]))


if __name__ == "__main__":
    main()
