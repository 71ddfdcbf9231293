"""Checker passes that the negative fixtures do not reach."""

from __future__ import annotations

from pathlib import Path

import pytest

from specc.checker import PASSES, check_file


def test_passes_are_an_ordered_tuple_of_functions() -> None:
    assert isinstance(PASSES, tuple) and all(callable(p) for p in PASSES)


def test_oversized_rules_become_E205(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import specc.logic.bdd as bdd

    n = 12
    props = "".join(
        f'proposition {v}{i} {{ question = "{v}{i}?" example yes {{ completion "x" }} }}\n'
        for v in "xy"
        for i in range(n)
    )
    # x1 and y1 or x2 and y2 ... with every x declared before every y: the worst order.
    rule = " or ".join(f"x{i} and y{i}" for i in range(n))
    path = tmp_path / "big.rbr"
    path.write_text(
        f'policy "p" version "1"\n{props}'
        f"response_type t {{\n  ideal when {rule}\n  unacceptable otherwise\n}}\n"
    )
    assert check_file(path).ok  # fine with the normal budget
    import specc.logic.checks as checks

    class SmallBDD(bdd.BDD):
        def __init__(self, *args: object, **kwargs: object) -> None:
            super().__init__(*args, **{**kwargs, "max_nodes": 500})  # type: ignore[arg-type]

    monkeypatch.setattr(checks, "BDD", SmallBDD)
    codes = [d.code for d in check_file(path).diagnostics]
    assert codes == ["E205"]
