"""Benchmark the tier logic: exclusivity/exhaustiveness checks and exact WMC.

Builds a synthetic response type over N propositions with five ladder-like tiers
defined through nested derived propositions, then times

* ``check_response_types`` (best of 5),
* ``compile_rules``,
* ``CompiledRules.tier_probabilities`` over 100,000 rows (best of 5).

Run: ``python benchmarks/bench_logic.py``. The last line is machine-readable, e.g.
``exhaustive_20_props_s=0.004 wmc_100k_rows_s=0.05 meets_targets=1``.

Targets (20 propositions, on a 2-core machine; they were timed tests once, and
moved here because a shared machine's load made them fail while the code was right):
the tier check under :data:`CHECK_TARGET_S` and 100,000 rows of tier probabilities
under :data:`WMC_TARGET_S`. Missing a target prints ``SLOW`` and
``meets_targets=0``; the correctness checks stay in tests/logic/.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from specc.ir import (
    And,
    Derived,
    Expr,
    Not,
    Or,
    Proposition,
    Ref,
    ResponseType,
    Span,
    Spec,
    TierDecl,
    TierRule,
)

TIERS = ("ideal", "good", "acceptable", "poor", "unacceptable")
#: Seconds: the tier check of a 20-proposition response type.
CHECK_TARGET_S = 0.5
#: Seconds: tier probabilities of 100,000 rows over 20 propositions.
WMC_TARGET_S = 0.5
_S = Span.unknown("<synthetic>")


def _ref(name: str) -> Ref:
    return Ref(span=_S, name=name)


def _and(*ops: Expr) -> And:
    return And(span=_S, operands=ops)


def _or(*ops: Expr) -> Or:
    return Or(span=_S, operands=ops)


def _not(op: Expr) -> Not:
    return Not(span=_S, operand=op)


def synthetic_spec(n_props: int) -> Spec:
    """A spec with ``n_props`` propositions ``p00, p01, ...`` and one response type
    ``ladder`` whose five tiers are exclusive and exhaustive.

    The propositions fall into four groups; each group folds into a chain of nested
    derived propositions ``g<k>_<j>`` (alternating ``and``/``or``), giving ``ok<k>``.
    Derived ``level<k>`` = ``ok0 and ... and ok<k-1>`` and the tiers form a ladder::

        ideal        when level4
        good         when level3 and not ok3
        acceptable   when level2 and not ok2
        poor         when ok0 and not ok1
        unacceptable when not ok0
    """
    if n_props < 4:
        raise ValueError("synthetic_spec needs at least 4 propositions")
    props = [f"p{i:02d}" for i in range(n_props)]
    groups = [props[k::4] for k in range(4)]
    derived: list[Derived] = []
    for k, group in enumerate(groups):
        prev = group[0]
        for j, name in enumerate(group[1:], start=1):
            combine = _and if j % 2 else _or
            derived_name = f"g{k}_{j}"
            derived.append(
                Derived(span=_S, name=derived_name, expr=combine(_ref(prev), _ref(name)))
            )
            prev = derived_name
        derived.append(Derived(span=_S, name=f"ok{k}", expr=_ref(prev)))
    derived.append(Derived(span=_S, name="level1", expr=_ref("ok0")))
    for k in range(2, 5):
        expr = _and(_ref(f"level{k - 1}"), _ref(f"ok{k - 1}"))
        derived.append(Derived(span=_S, name=f"level{k}", expr=expr))
    rules = (
        TierRule(span=_S, tier="ideal", when=_ref("level4")),
        TierRule(span=_S, tier="good", when=_and(_ref("level3"), _not(_ref("ok3")))),
        TierRule(span=_S, tier="acceptable", when=_and(_ref("level2"), _not(_ref("ok2")))),
        TierRule(span=_S, tier="poor", when=_and(_ref("ok0"), _not(_ref("ok1")))),
        TierRule(span=_S, tier="unacceptable", when=_not(_ref("ok0"))),
    )
    return Spec(
        span=_S,
        name="synthetic",
        version="1",
        tiers=tuple(TierDecl(span=_S, name=t) for t in TIERS),
        propositions=tuple(Proposition(span=_S, name=p, question=f"{p}?") for p in props),
        derived=tuple(derived),
        response_types=(ResponseType(span=_S, name="ladder", rules=rules),),
    )


def _best_of(fn: Callable[[], object], repeat: int = 5) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    import numpy as np

    from specc.logic.checks import check_response_types
    from specc.logic.runtime import compile_rules

    rows = 100_000
    rng = np.random.default_rng(0)
    print(f"{'props':>5} {'check_s':>9} {'compile_s':>9} {'nodes':>6} {'wmc_100k_s':>10}")
    figures: dict[int, tuple[float, float]] = {}
    for n in (10, 20, 40, 80):
        spec = synthetic_spec(n)
        diagnostics = check_response_types(spec)
        assert not diagnostics, diagnostics
        check_s = _best_of(partial(check_response_types, spec))
        start = time.perf_counter()
        rules = compile_rules(spec)
        compile_s = time.perf_counter() - start
        probs = {p.name: rng.random(rows) for p in spec.propositions}
        wmc_s = _best_of(partial(rules.tier_probabilities, "ladder", probs))
        sums = rules.tier_probabilities("ladder", probs).sum(axis=1)
        assert np.allclose(sums, 1.0), "tier probabilities must sum to one"
        figures[n] = (check_s, wmc_s)
        print(f"{n:>5} {check_s:>9.4f} {compile_s:>9.4f} {len(rules):>6} {wmc_s:>10.4f}")
    check_20, wmc_20 = figures[20]
    print()
    print(f"{'target (20 propositions)':<36} {'s':>8} {'target s':>9}")
    ok = True
    for name, got, target in (
        ("tier check", check_20, CHECK_TARGET_S),
        ("tier probabilities, 100,000 rows", wmc_20, WMC_TARGET_S),
    ):
        ok &= got <= target
        print(f"{name:<36} {got:8.4f} {target:9.2f} {'ok' if got <= target else 'SLOW'}")
    print(
        f"exhaustive_20_props_s={check_20:.4f} wmc_100k_rows_s={wmc_20:.4f} meets_targets={int(ok)}"
    )


if __name__ == "__main__":
    main()
