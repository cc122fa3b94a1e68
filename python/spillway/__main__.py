"""``python -m spillway``: the ``spillway`` command line (see :mod:`spillway._cli`)."""
from ._cli import main

main()
