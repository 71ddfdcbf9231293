"""``python -m specc.grade ARTIFACT DATA --grader ... -o FEATURES``: the same as
``specc grade ...`` (one argument parser, one set of exit codes)."""

import sys

from specc.cli import main

raise SystemExit(main(["grade", *sys.argv[1:]]))
