"""``python -m specc ...``: the ``specc`` command without relying on PATH."""

import sys

from specc.cli import main

raise SystemExit(main(sys.argv[1:]))
