"""Test-wide settings.

Hypothesis's default 200 ms deadline per example is a wall-clock assertion: on a
loaded machine it fails tests whose code is correct. Tests assert behaviour; timing
targets live in benchmarks/."""

from hypothesis import settings

settings.register_profile("specc", deadline=None)
settings.load_profile("specc")
