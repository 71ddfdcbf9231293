"""``python -m specc.grade ARTIFACT DATA --grader ... -o FEATURES``."""

from specc.grade.command import main

raise SystemExit(main())
