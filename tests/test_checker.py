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


# --------------------------------------------------------------------------- test blocks

_POLICY = """policy "p" version "1"
proposition a { match keywords ["a"] }
proposition b { match keywords ["b"] }
proposition c { match keywords ["c"] }
derived ab = a and b
derived never = a and not a
tiers { ideal less_good unacceptable spare }
response_type t {
  ideal when ab
  less_good when a and not b
  unacceptable otherwise
  reward { extra = [c] }
}
response_type u {
  ideal when b
  unacceptable otherwise
}
"""


@pytest.mark.parametrize(
    ("test", "expected"),
    [
        ('test "x" { response_type t }', [("E302", "expects nothing")]),
        (
            'test "x" { response_type t given { a = true } completion "c" expect ideal }',
            [("E302", "has both givens and a completion")],
        ),
        (
            'test "x" { user "u" expect { a = true } }',
            [("E302", "no completion"), ("E302", "names no response type")],
        ),
        ('test "x" { given { a = true } expect ideal }', [("E302", "names no response type")]),
        ('test "x" { response_type t expect idael }', [("E104", "unknown tier 'idael'")]),
        (
            'test "x" { response_type u expect not less_good }',
            [("E104", "response type 'u' has no tier 'less_good'")],
        ),
        ('test "x" { response_type v expect ideal }', [("E105", "unknown response type 'v'")]),
        ('test "x" { given { z = true } expect { a = true } }', [("E101", "'z'")]),
        (
            'test "x" { given { ab = true a = false } expect { b = true } }',
            [("E301", "contradict each other")],
        ),
        ('test "x" { given { never = true } expect { b = true } }', [("E301", "contradict")]),
        (
            'test "x" { response_type u completion "c" expect { a = true } }',
            [("E303", "'a' is not graded for response type 'u'")],
        ),
        (
            'test "x" { response_type u completion "c" expect { ab = true } }',
            [("E303", "'ab' is not graded for response type 'u'")],
        ),
        (
            'test "x" { expect { a = true } }\ntest "x" { expect { b = true } }',
            [("E102", 'test "x" is defined twice')],
        ),
        ('test "x" { response_type t completion "c" expect { c = true } expect ideal }', []),
    ],
)
def test_test_block_diagnostics(tmp_path: Path, test: str, expected: list[tuple[str, str]]) -> None:
    path = tmp_path / "p.rbr"
    path.write_text(_POLICY + test + "\n")
    found = [
        (d.code, d.message)
        for d in check_file(path).diagnostics
        if d.code not in ("W001", "W005")  # `never`, the spare tier
    ]
    assert len(found) == len(expected), found
    for (code, message), (want_code, want) in zip(found, expected, strict=True):
        assert code == want_code and want in message


def test_a_proposition_only_tests_mention_is_still_unused(tmp_path: Path) -> None:
    path = tmp_path / "p.rbr"
    path.write_text(
        _POLICY
        + 'proposition d { match keywords ["d"] }\n'
        + 'test "x" { given { d = true } expect { d = true } }\n'
    )
    unused = [d.message for d in check_file(path).diagnostics if d.code == "W001"]
    assert len(unused) == 2 and "'d'" in unused[1]
