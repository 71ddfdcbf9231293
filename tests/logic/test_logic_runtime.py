"""Compiled rules: exact weighted model counting, tiers, JSON form, errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from specc.errors import DataError, SpecError
from specc.ir import Expr
from specc.logic.runtime import CompiledRules, compile_rules

from .helpers import (
    PROPS,
    TIERS5,
    VARS,
    and_,
    assignments,
    evaluate,
    exprs,
    make_spec,
    not_,
    or_,
    ref,
    reference_policy,
    rule,
    synthetic_spec,
)

ROOT = Path(__file__).resolve().parents[2]


def brute_force(e: Expr, probs: dict[str, float], derived: dict[str, Expr] | None = None) -> float:
    total = 0.0
    for a in assignments(VARS):
        if evaluate(e, a, derived or {}):
            weight = 1.0
            for name, value in a.items():
                weight *= probs[name] if value else 1.0 - probs[name]
            total += weight
    return total


probabilities = st.fixed_dictionaries(
    {v: st.floats(min_value=0.0, max_value=1.0, allow_nan=False) for v in VARS}
)


@settings(max_examples=150, deadline=None)
@given(exprs(), probabilities)
def test_wmc_equals_brute_force_enumeration(e: Expr, probs: dict[str, float]) -> None:
    rules = compile_rules(make_spec(VARS, constraints={"c": e}))
    got = rules.evaluate("cost:c", probs)
    assert got.shape == ()
    assert abs(float(got) - brute_force(e, probs)) <= 1e-9


@settings(max_examples=60, deadline=None)
@given(exprs(max_leaves=8), exprs(max_leaves=8), st.lists(probabilities, min_size=1, max_size=4))
def test_wmc_through_derived_propositions_over_rows(
    inner: Expr, outer: Expr, rows: list[dict[str, float]]
) -> None:
    derived = {"inner": inner, "outer": and_(or_(ref("inner"), ref("a")), outer)}
    rules = compile_rules(make_spec(VARS, derived=derived))
    columns = {v: np.array([r[v] for r in rows]) for v in VARS}
    got = rules.evaluate_many(["derived:inner", "derived:outer"], columns)
    for i, row in enumerate(rows):
        assert abs(got["derived:inner"][i] - brute_force(inner, row)) <= 1e-9
        assert abs(got["derived:outer"][i] - brute_force(ref("outer"), row, derived)) <= 1e-9


def test_worked_examples() -> None:
    spec = make_spec(
        ["a", "b"],
        constraints={
            "contradiction": and_(ref("a"), not_(ref("a"))),
            "twice": or_(ref("a"), ref("a")),
            "square": and_(ref("a"), ref("a")),
            "both": and_(ref("a"), ref("b")),
            "either": or_(ref("a"), ref("b")),
        },
    )
    rules = compile_rules(spec)
    probs = {"a": np.array([0.0, 0.3, 1.0]), "b": np.array([0.5, 0.5, 0.5])}
    got = rules.evaluate_many(
        ["cost:contradiction", "cost:twice", "cost:square", "cost:both", "cost:either"], probs
    )
    np.testing.assert_allclose(got["cost:contradiction"], [0, 0, 0])
    np.testing.assert_allclose(got["cost:twice"], probs["a"])
    np.testing.assert_allclose(got["cost:square"], probs["a"])  # not 0.09: counted once
    np.testing.assert_allclose(got["cost:both"], [0, 0.15, 0.5])
    np.testing.assert_allclose(got["cost:either"], [0.5, 0.65, 1.0])
    # results are fresh arrays, not views of the inputs
    got["cost:twice"][0] = 0.9
    assert probs["a"][0] == 0.0


@settings(max_examples=80, deadline=None)
@given(exprs(), st.lists(st.fixed_dictionaries({v: st.booleans() for v in VARS}), min_size=1))
def test_zero_one_inputs_reduce_to_the_boolean_rules(e: Expr, rows: list[dict[str, bool]]) -> None:
    rules = compile_rules(make_spec(VARS, constraints={"c": e}))
    columns = {v: np.array([float(r[v]) for r in rows]) for v in VARS}
    got = rules.evaluate("cost:c", columns)
    assert got.tolist() == [float(evaluate(e, r)) for r in rows]
    assert [rules.holds("cost:c", r) for r in rows] == [evaluate(e, r) for r in rows]


def test_tier_probabilities_sum_to_one_in_tier_order() -> None:
    rules = compile_rules(reference_policy())
    assert rules.tiers("hard_refuse") == TIERS5
    rng = np.random.default_rng(1)
    probs = {p: rng.random(500) for p in PROPS}
    table = rules.tier_probabilities("hard_refuse", probs)
    assert table.shape == (500, 5)
    np.testing.assert_allclose(table.sum(axis=1), 1.0, atol=1e-12)
    assert (table >= 0).all()


def test_tier_order_is_the_declared_order_not_the_rule_order() -> None:
    spec = make_spec(
        ["a"],
        types={"t": [rule("unacceptable", not_(ref("a")), 1), rule("ideal", ref("a"), 2)]},
    )
    rules = compile_rules(spec)
    assert rules.tiers("t") == ("ideal", "unacceptable")
    np.testing.assert_allclose(rules.tier_probabilities("t", {"a": [0.8]}), [[0.8, 0.2]])


def test_tier_of_with_labels() -> None:
    rules = compile_rules(reference_policy())
    labels = dict.fromkeys(PROPS, False)
    assert rules.tier_of("hard_refuse", labels) == "unacceptable"
    labels.update(refuses=True, apology=True)
    assert rules.tier_of("hard_refuse", labels) == "ideal"
    labels.update(judgemental=True)
    assert rules.tier_of("hard_refuse", labels) == "bad"
    for a in assignments(PROPS):
        tier = rules.tier_of("hard_refuse", a)
        one_hot = rules.tier_probabilities(
            "hard_refuse", {k: float(v) for k, v in a.items()}
        ).tolist()
        assert one_hot == [float(t == tier) for t in TIERS5]


def test_support_of_roots() -> None:
    rules = compile_rules(reference_policy())
    assert rules.support("derived:clean_refusal") == ("refuses", "judgemental", "harmful_content")
    assert rules.support("tier:hard_refuse:bad") == ("refuses", "judgemental", "harmful_content")
    assert set(rules.roots) == {"derived:clean_refusal"} | {f"tier:hard_refuse:{t}" for t in TIERS5}


def test_missing_proposition_is_a_clear_key_error() -> None:
    rules = compile_rules(reference_policy())
    probs = {p: 0.5 for p in PROPS if p != "apology"}
    with pytest.raises(KeyError, match="missing probability for proposition 'apology'"):
        rules.tier_probabilities("hard_refuse", probs)
    # roots that do not need it still evaluate
    assert float(rules.evaluate("tier:hard_refuse:bad", probs)) == pytest.approx(0.125)
    with pytest.raises(KeyError, match="did you mean 'hard_refuse'"):
        rules.tiers("hard_refuse_")
    with pytest.raises(KeyError, match="no compiled root"):
        rules.evaluate("tier:nope", probs)
    with pytest.raises(KeyError, match="'apology'"):
        rules.tier_of("hard_refuse", dict.fromkeys(["refuses"], True))


def test_bad_probabilities_are_data_errors() -> None:
    rules = compile_rules(make_spec(["a", "b"], constraints={"c": and_(ref("a"), ref("b"))}))
    with pytest.raises(DataError, match=r"'a' is 1\.5"):
        rules.evaluate("cost:c", {"a": [0.2, 1.5], "b": [0.1, 0.1]})
    with pytest.raises(DataError, match="'b' is nan"):
        rules.evaluate("cost:c", {"a": 0.3, "b": float("nan")})
    with pytest.raises(DataError, match="different lengths"):
        rules.evaluate("cost:c", {"a": [0.2, 0.5], "b": [0.1, 0.1, 0.3]})
    with pytest.raises(DataError, match="1-D"):
        rules.evaluate("cost:c", {"a": [[0.2]], "b": 0.5})
    # floats broadcast against rows
    np.testing.assert_allclose(rules.evaluate("cost:c", {"a": [0.2, 0.4], "b": 0.5}), [0.1, 0.2])


def test_constant_roots_take_the_row_shape() -> None:
    spec = make_spec(["a"], types={"t": [rule("ideal", or_(ref("a"), not_(ref("a"))), 1)]})
    rules = compile_rules(spec)
    np.testing.assert_allclose(rules.tier_probabilities("t", {"a": [0.1, 0.7]}), [[1.0], [1.0]])
    assert rules.tier_probabilities("t", {}).shape == (1,)
    assert rules.tier_probabilities("t", {}, n=3).shape == (3, 1)
    assert rules.tier_probabilities("t", {"a": np.zeros(0)}).shape == (0, 1)
    with pytest.raises(DataError, match="expected 3 rows"):
        rules.tier_probabilities("t", {"a": [0.5, 0.5]}, n=3)


def test_compile_refuses_inconsistent_tiers_unless_told() -> None:
    spec = make_spec(["a"], types={"t": [rule("ideal", ref("a"), 1), rule("bad", ref("a"), 2)]})
    with pytest.raises(SpecError) as info:
        compile_rules(spec)
    assert [d.code for d in info.value.diagnostics] == ["E201", "E202"]
    rules = compile_rules(spec, check=False)
    assert rules.tier_of("t", {"a": True}) == "ideal"
    assert rules.tier_of("t", {"a": False}) is None


def test_json_round_trip() -> None:
    rules = compile_rules(reference_policy())
    data = rules.to_json()
    text = json.dumps(data, sort_keys=True)
    again = CompiledRules.from_json(json.loads(text))
    assert again.to_json() == data
    probs = {p: np.linspace(0, 1, 7) for p in PROPS}
    np.testing.assert_array_equal(
        again.tier_probabilities("hard_refuse", probs),
        rules.tier_probabilities("hard_refuse", probs),
    )
    assert data["format"] == "specc.rules/1"
    assert data["variables"] == list(PROPS)
    assert data["nodes"][:2] == [[-1, 0, 0], [-1, 1, 1]]


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d.update(format="other/1"), "format"),
        (lambda d: d.pop("nodes"), "malformed"),
        (lambda d: d["nodes"].append([0, 1, 1]), "invalid children"),
        (lambda d: d["nodes"].append([0, 10**6, 1]), "invalid children"),
        (lambda d: d["nodes"].append([4, 0, 2]), "variable order"),
        (lambda d: d["nodes"].append([0, "x", 1]), "malformed"),
        (lambda d: d["nodes"].append([0, 1]), "malformed"),
        (lambda d: d["nodes"].append([99, 0, 1]), "does not exist"),
        (lambda d: d["roots"].update(x=1000), "missing node"),
        (lambda d: d["response_types"].update(t=["ideal"]), "no root for tier"),
        (lambda d: d["nodes"].__setitem__(0, [-1, 1, 1]), "false terminal"),
    ],
)
def test_malformed_json_is_a_data_error(mutate: object, message: str) -> None:
    data = json.loads(json.dumps(compile_rules(reference_policy()).to_json()))
    mutate(data)  # type: ignore[operator]
    with pytest.raises(DataError, match=message):
        CompiledRules.from_json(data)


def test_json_is_byte_for_byte_deterministic_across_processes() -> None:
    script = (
        "import json, sys; sys.path.insert(0, 'tests/logic'); "
        "from helpers import reference_policy; "
        "from specc.logic.runtime import compile_rules; "
        "print(json.dumps(compile_rules(reference_policy()).to_json(), sort_keys=True))"
    )
    outputs = set()
    for seed in ("0", "1", "12345"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        done = subprocess.run(
            [sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True
        )
        assert done.returncode == 0, done.stderr
        outputs.add(done.stdout)
    local = json.dumps(compile_rules(reference_policy()).to_json(), sort_keys=True) + "\n"
    assert outputs == {local}


def test_hundred_thousand_rows_twenty_propositions() -> None:
    """Correctness at scale; the time it takes is benchmarks/bench_logic.py's."""
    spec = synthetic_spec(20)
    rules = compile_rules(spec)
    rng = np.random.default_rng(0)
    probs = {p.name: rng.random(100_000) for p in spec.propositions}
    table = rules.tier_probabilities("ladder", probs)
    assert table.shape == (100_000, 5)
    np.testing.assert_allclose(table.sum(axis=1), 1.0, atol=1e-9)
    assert (table >= 0).all()
    # and the 0/1 corner agrees with tier_of
    labels = {p.name: bool(i % 3) for i, p in enumerate(spec.propositions)}
    row = rules.tier_probabilities("ladder", {k: float(v) for k, v in labels.items()})
    assert rules.tiers("ladder")[int(np.argmax(row))] == rules.tier_of("ladder", labels)


def test_check_path_does_not_import_numpy() -> None:
    code = (
        "import sys, specc.logic, specc.logic.checks, specc.logic.bdd; "
        "assert 'numpy' not in sys.modules, 'numpy imported'"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
