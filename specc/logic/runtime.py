"""Compiled rules and their vectorised runtime: exact probabilities over rows.

:func:`compile_rules` turns a spec's derived propositions, tier rules and constraint
costs into one shared BDD node table with named roots:

* ``derived:<name>`` for every derived proposition,
* ``tier:<response type>:<tier>`` for every tier of every response type,
* ``cost:<constraint>`` for every constraint's cost expression.

:meth:`CompiledRules.evaluate` gives the probability that a root is true when each
base proposition ``v`` holds independently with probability ``p_v``: weighted model
counting, ``P(node) = p_v * P(high) + (1 - p_v) * P(low)``, computed bottom-up once
per node over whole columns of rows. It is exact (``a and not a`` is 0, ``a or a``
is ``p_a``) and reduces to the boolean rules on 0/1 inputs.

>>> rules = compile_rules(spec)                                    # doctest: +SKIP
>>> rules.tier_probabilities("hard_refuse", {"apology": p1, "judgement": p2})  # doctest: +SKIP
array([[0.72, 0.18, 0.1 ], ...])   # one row per input row, tiers best first

This module imports numpy; the check path (``specc check``) never imports it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from specc.errors import DataError, SpecError, did_you_mean
from specc.ir import Spec
from specc.logic.bdd import FALSE, TRUE
from specc.logic.checks import check_response_types, rule_conditions, spec_bdd

__all__ = ["FORMAT", "CompiledRules", "compile_rules"]

FORMAT = "specc.rules/1"
_RECOMPILE = "recompile the spec with `specc compile`"

FloatArray = npt.NDArray[np.float64]
Probability = npt.ArrayLike  # a float, or one value per row


def compile_rules(spec: Spec, *, check: bool = True) -> CompiledRules:
    """Compile every derived proposition, tier and constraint cost of ``spec``.

    With ``check`` (the default) the tier logic is verified first and a
    :class:`~specc.errors.SpecError` lists any E201-E204 errors, so that tier
    probabilities of a compiled spec always sum to one. A tier named by several rules
    (E109) holds when any of them does."""
    if check:
        errors = [d for d in check_response_types(spec) if d.severity == "error"]
        if errors:
            raise SpecError(errors)
    bdd = spec_bdd(spec)
    roots: dict[str, int] = {}
    for d in spec.derived:
        roots.setdefault(f"derived:{d.name}", bdd.derived(d.name))
    order = spec.tier_names()
    response_types: dict[str, tuple[str, ...]] = {}
    for rt in spec.response_types:
        by_tier: dict[str, int] = {}
        for rule, cond in zip(rt.rules, rule_conditions(bdd, rt), strict=True):
            by_tier[rule.tier] = bdd.OR(by_tier.get(rule.tier, FALSE), cond)
        tiers = [t for t in order if t in by_tier] + [t for t in by_tier if t not in order]
        response_types.setdefault(rt.name, tuple(tiers))
        for tier in tiers:
            roots.setdefault(f"tier:{rt.name}:{tier}", by_tier[tier])
    for c in spec.constraints:
        roots.setdefault(f"cost:{c.name}", bdd.expr(c.cost))
    nodes, named = bdd.export(roots)
    return CompiledRules(bdd.variables, nodes, named, response_types)


class CompiledRules:
    """A BDD node table with named roots, evaluated without the spec.

    ``nodes[0]`` and ``nodes[1]`` are the false and true terminals; every other
    node is ``(variable index, low, high)`` with both children at smaller ids."""

    def __init__(
        self,
        variables: Sequence[str],
        nodes: Sequence[Sequence[int]],
        roots: Mapping[str, int],
        response_types: Mapping[str, Sequence[str]],
    ):
        self._variables = tuple(variables)
        self._var: list[int] = []
        self._low: list[int] = []
        self._high: list[int] = []
        for node in nodes:
            var, low, high = (int(x) for x in node)
            self._var.append(var)
            self._low.append(low)
            self._high.append(high)
        self._roots = {name: int(roots[name]) for name in sorted(roots)}
        self._response_types = {
            name: tuple(response_types[name]) for name in sorted(response_types)
        }
        self._reach_cache: dict[tuple[int, ...], list[int]] = {}
        self._validate()

    # ------------------------------------------------------------------ (de)serialisation

    def to_json(self) -> dict[str, Any]:
        """A deterministic, JSON-ready form (see :meth:`from_json`)."""
        return {
            "format": FORMAT,
            "variables": list(self._variables),
            "nodes": [list(n) for n in zip(self._var, self._low, self._high, strict=True)],
            "roots": dict(self._roots),
            "response_types": {k: list(v) for k, v in self._response_types.items()},
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> CompiledRules:
        """Rebuild from :meth:`to_json` output; raises DataError on anything malformed."""
        if not isinstance(data, Mapping) or data.get("format") != FORMAT:
            found = data.get("format") if isinstance(data, Mapping) else type(data).__name__
            raise DataError(
                f"compiled rules have format {found!r}, expected {FORMAT!r}", hint=_RECOMPILE
            )
        try:
            variables = [str(v) for v in data["variables"]]
            nodes = [[int(x) for x in node] for node in data["nodes"]]
            if any(len(node) != 3 for node in nodes):
                raise ValueError("every node must be [variable, low, high]")
            roots = {str(k): int(v) for k, v in data["roots"].items()}
            types = {str(k): [str(t) for t in v] for k, v in data["response_types"].items()}
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise DataError(f"malformed compiled rules: {exc}", hint=_RECOMPILE) from None
        return cls(variables, nodes, roots, types)

    def _validate(self) -> None:
        def bad(msg: str) -> DataError:
            return DataError(f"malformed compiled rules: {msg}", hint=_RECOMPILE)

        n = len(self._var)
        if n < 2 or (self._var[0], self._low[0], self._high[0]) != (-1, FALSE, FALSE):
            raise bad("node 0 must be the false terminal [-1, 0, 0]")
        if (self._var[1], self._low[1], self._high[1]) != (-1, TRUE, TRUE):
            raise bad("node 1 must be the true terminal [-1, 1, 1]")
        if len(set(self._variables)) != len(self._variables):
            raise bad("duplicate variable names")
        for i in range(2, n):
            var, low, high = self._var[i], self._low[i], self._high[i]
            if not 0 <= var < len(self._variables):
                raise bad(f"node {i} tests variable {var}, which does not exist")
            if not (0 <= low < i and 0 <= high < i) or low == high:
                raise bad(f"node {i} has invalid children {low}, {high}")
            for child in (low, high):
                if child > TRUE and self._var[child] <= var:
                    raise bad(f"node {i} breaks the variable order")
        for name, root in self._roots.items():
            if not 0 <= root < n:
                raise bad(f"root {name!r} points to missing node {root}")
        for rt, tiers in self._response_types.items():
            for tier in tiers:
                if f"tier:{rt}:{tier}" not in self._roots:
                    raise bad(f"response type {rt!r} has no root for tier {tier!r}")

    # ------------------------------------------------------------------ introspection

    @property
    def variables(self) -> tuple[str, ...]:
        """The base propositions, in spec order."""
        return self._variables

    @property
    def roots(self) -> tuple[str, ...]:
        """Every root name, sorted."""
        return tuple(self._roots)

    @property
    def response_types(self) -> tuple[str, ...]:
        return tuple(self._response_types)

    def tiers(self, response_type: str) -> tuple[str, ...]:
        """The tiers of ``response_type``, best first."""
        return self._response_types[self._type_key(response_type)]

    def support(self, root: str) -> tuple[str, ...]:
        """The base propositions ``root`` depends on, in spec order."""
        levels = {self._var[i] for i in self._reachable((self._root_id(root),))}
        return tuple(self._variables[v] for v in sorted(levels))

    def __len__(self) -> int:
        """Number of nodes, terminals included."""
        return len(self._var)

    # ------------------------------------------------------------------ boolean evaluation

    def holds(self, root: str, assignment: Mapping[str, bool]) -> bool:
        """The truth of ``root`` under 0/1 labels (KeyError naming a missing one)."""
        node = self._root_id(root)
        while node > TRUE:
            name = self._variables[self._var[node]]
            if name not in assignment:
                raise KeyError(f"no value for proposition {name!r} (needed by {root!r})")
            node = self._high[node] if assignment[name] else self._low[node]
        return node == TRUE

    def tier_of(self, response_type: str, assignment: Mapping[str, bool]) -> str | None:
        """The tier whose rule holds under 0/1 labels (the first, best first, if the
        rules were not checked for overlap), or None when none does."""
        key = self._type_key(response_type)
        for tier in self._response_types[key]:
            if self.holds(f"tier:{key}:{tier}", assignment):
                return tier
        return None

    # ------------------------------------------------------------------ probabilities

    def evaluate(
        self, root: str, probs: Mapping[str, Probability], n: int | None = None
    ) -> FloatArray:
        """P(``root`` is true) per row, base propositions independent.

        ``probs`` maps proposition names to P(true): arrays of shape ``[n]`` (one
        entry per row) or floats (the same for every row). The result has shape
        ``[n]``, or ``[]`` when every input is a float. Pass ``n`` to fix the row
        count when no array says it (a root that needs no proposition, say)."""
        return self.evaluate_many([root], probs, n)[root]

    def tier_probabilities(
        self, response_type: str, probs: Mapping[str, Probability], n: int | None = None
    ) -> FloatArray:
        """``[n, n_tiers]`` tier probabilities, tiers best first (see :meth:`tiers`).

        Rows sum to 1 for a checked spec: its tiers are exclusive and exhaustive."""
        key = self._type_key(response_type)
        names = [f"tier:{key}:{tier}" for tier in self._response_types[key]]
        values = self.evaluate_many(names, probs, n)
        return np.stack([values[name] for name in names], axis=-1)

    def evaluate_many(
        self, roots: Iterable[str], probs: Mapping[str, Probability], n: int | None = None
    ) -> dict[str, FloatArray]:
        """:meth:`evaluate` for several roots in one bottom-up pass over shared nodes."""
        names = list(dict.fromkeys(roots))
        ids = tuple(sorted({self._root_id(name) for name in names}))
        order = self._reachable(ids)
        inputs, shape = self._inputs(order, names, probs, n)
        keep = set(ids)
        last_use: dict[int, int] = {}
        for i in order:
            last_use[self._low[i]] = i
            last_use[self._high[i]] = i
        values: dict[int, Any] = {
            FALSE: np.zeros(shape, dtype=np.float64),
            TRUE: np.ones(shape, dtype=np.float64),
        }
        low_of, high_of, var_of = self._low, self._high, self._var
        for i in order:
            lo_id, hi_id = low_of[i], high_of[i]
            p = inputs[var_of[i]]
            if lo_id == FALSE and hi_id == TRUE:
                value = p
            elif lo_id == FALSE:
                value = p * values[hi_id]
            else:
                lo = values[lo_id]
                value = values[hi_id] - lo
                value *= p
                value += lo
            values[i] = value
            for child in (lo_id, hi_id):
                if child > TRUE and last_use.get(child) == i and child not in keep:
                    del values[child]
        result: dict[str, FloatArray] = {}
        for name in names:
            value = values[self._roots[name]]
            out = np.array(np.broadcast_to(value, shape), dtype=np.float64, copy=True)
            np.clip(out, 0.0, 1.0, out=out)  # rounding can stray by an ulp
            result[name] = out
        return result

    def _inputs(
        self,
        order: list[int],
        names: list[str],
        probs: Mapping[str, Probability],
        n: int | None,
    ) -> tuple[dict[int, Any], tuple[int, ...]]:
        """Validated probability columns of the variables ``order`` tests, and the
        row shape (from every known proposition present in ``probs``)."""
        needed = sorted({self._var[i] for i in order})
        inputs: dict[int, Any] = {}
        for level in needed:
            name = self._variables[level]
            if name not in probs:
                users = [r for r in names if name in self.support(r)]
                raise KeyError(
                    f"missing probability for proposition {name!r} "
                    f"(needed by {', '.join(repr(u) for u in users)})"
                )
            arr = np.asarray(probs[name], dtype=np.float64)
            if arr.ndim > 1:
                raise DataError(
                    f"probabilities of {name!r} must be a float or a 1-D array, "
                    f"got shape {arr.shape}"
                )
            if not bool(np.all((arr >= 0.0) & (arr <= 1.0))):
                bad = arr[~((arr >= 0.0) & (arr <= 1.0))].reshape(-1)[0]
                raise DataError(f"probability of {name!r} is {bad}, expected a value in [0, 1]")
            inputs[level] = arr
        shapes = {np.shape(probs[v]) for v in self._variables if v in probs}
        shapes = {s for s in shapes if len(s) == 1}
        if n is not None:
            shapes.add((n,))
        if len(shapes) > 1:
            raise DataError(
                "probability arrays have different lengths: "
                + ", ".join(str(s[0]) for s in sorted(shapes))
                + ("" if n is None else f" (expected {n} rows)")
            )
        shape: tuple[int, ...] = shapes.pop() if shapes else ()
        return inputs, shape

    # ------------------------------------------------------------------ helpers

    def _root_id(self, root: str) -> int:
        node = self._roots.get(root)
        if node is None:
            hint = did_you_mean(root, self._roots)
            raise KeyError(f"no compiled root {root!r}" + (f"; {hint}" if hint else ""))
        return node

    def _type_key(self, response_type: str) -> str:
        if response_type not in self._response_types:
            hint = did_you_mean(response_type, self._response_types)
            known = ", ".join(self._response_types) or "none"
            raise KeyError(
                f"unknown response type {response_type!r}; " + (hint or f"known: {known}")
            )
        return response_type

    def _reachable(self, ids: tuple[int, ...]) -> list[int]:
        """Decision nodes reachable from ``ids``, ascending (children first)."""
        cached = self._reach_cache.get(ids)
        if cached is not None:
            return cached
        mark = bytearray(len(self._var))
        for node in ids:
            mark[node] = 1
        for i in range(max(ids, default=0), TRUE, -1):
            if mark[i]:
                mark[self._low[i]] = 1
                mark[self._high[i]] = 1
        order = [i for i in range(2, len(mark)) if mark[i]]
        if len(self._reach_cache) > 256:
            self._reach_cache.clear()
        self._reach_cache[ids] = order
        return order
