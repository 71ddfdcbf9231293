"""specc: a declarative rule-spec compiler for Rule Based Rewards.

The heavy parts (torch, transformers) load only when used, so ``import specc`` is
cheap. The main entry points:

>>> import specc
>>> spec = specc.parse_file("policies/minimal.rbr")          # doctest: +SKIP
>>> specc.compile_spec("policies/minimal.rbr", "out/minimal")  # doctest: +SKIP
>>> reward = specc.load("out/minimal")                        # doctest: +SKIP
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from specc.errors import DataError, SpecccError, SpecError, UsageError

if TYPE_CHECKING:
    from specc.artifact import Artifact, load_artifact

__version__ = "0.1.0"

__all__ = [
    "Artifact",
    "DataError",
    "SpecError",
    "SpecccError",
    "UsageError",
    "__version__",
    "check_file",
    "compile_spec",
    "load",
    "load_artifact",
    "parse_file",
]

_LAZY = {
    "Artifact": ("specc.artifact", "Artifact"),
    "load_artifact": ("specc.artifact", "load_artifact"),
    "parse_file": ("specc.loader", "parse_file"),
    "check_file": ("specc.checker", "check_file"),
    "compile_spec": ("specc.compiler", "compile_spec"),
    "load": ("specc.reward", "load"),
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        return getattr(importlib.import_module(module), attr)
    raise AttributeError(f"module 'specc' has no attribute {name!r}")
