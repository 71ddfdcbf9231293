"""A small reduced ordered BDD (ROBDD) manager, pure Python.

Nodes are ints: ``0`` is false, ``1`` is true, every other id is a hash-consed
decision node ``(var, low, high)`` meaning "if var then high else low". Two
equivalent formulas over the same manager are the same int, so equivalence is ``==``
and satisfiability is ``!= FALSE``. The variable order is the order in which names
are declared (specc declares the spec's propositions in spec order); a name the
manager has not seen becomes a fresh variable at the bottom of the order.

Every algorithm is iterative, so neither deep expressions nor long variable orders
can hit Python's recursion limit.

>>> from specc.ir import Ref, Not, And, Span
>>> s = Span.unknown()
>>> bdd = BDD(["apology", "judgement"])
>>> f = bdd.expr(And(span=s, operands=(Ref(span=s, name="apology"),
...                                     Not(span=s, operand=Ref(span=s, name="judgement")))))
>>> bdd.sat_one(f)
{'apology': True, 'judgement': False}
>>> bdd.AND(f, bdd.NOT(f)) == FALSE
True
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from specc.errors import SpecccError
from specc.ir import And, Const, Expr, Not, Or, Ref

__all__ = ["BDD", "FALSE", "TRUE", "BDDTooLarge"]

FALSE = 0
TRUE = 1
_TERMINAL_LEVEL = 1 << 62  # below every variable
DEFAULT_MAX_NODES = 1_000_000
_PENDING = -1  # "expansion scheduled" marker inside BDD.expr


class BDDTooLarge(SpecccError):
    """The rules need more BDD nodes than the manager allows (a pathological order)."""


class BDD:
    """A BDD manager: unique table, memoised ``ite`` and derived-proposition expansion.

    ``variables`` fixes the order (first = top). ``derived`` maps derived-proposition
    names to their expressions; :meth:`expr` expands a reference to one of them (once,
    memoised). A name that is neither a variable nor derived becomes a fresh variable.
    """

    def __init__(
        self,
        variables: Iterable[str] = (),
        derived: Mapping[str, Expr] | None = None,
        max_nodes: int = DEFAULT_MAX_NODES,
    ):
        self._names: list[str] = []
        self._index: dict[str, int] = {}
        # Node table; slots 0 and 1 are the terminals.
        self._level: list[int] = [_TERMINAL_LEVEL, _TERMINAL_LEVEL]
        self._low: list[int] = [FALSE, TRUE]
        self._high: list[int] = [FALSE, TRUE]
        self._unique: dict[tuple[int, int, int], int] = {}
        self._ite_cache: dict[tuple[int, int, int], int] = {}
        self._derived: dict[str, Expr] = dict(derived or {})
        self._derived_nodes: dict[str, int] = {}
        self.max_nodes = max_nodes
        for name in variables:
            self.declare(name)

    # ------------------------------------------------------------------ variables

    @property
    def variables(self) -> tuple[str, ...]:
        """Every variable, in order (top first)."""
        return tuple(self._names)

    def declare(self, name: str) -> int:
        """The level of variable ``name``, appending it to the order if it is new."""
        level = self._index.get(name)
        if level is None:
            level = len(self._names)
            self._names.append(name)
            self._index[name] = level
        return level

    def var(self, name: str) -> int:
        """The node of the formula ``name`` (declared on first use)."""
        return self._mk(self.declare(name), FALSE, TRUE)

    def level(self, node: int) -> int:
        """The variable index tested at ``node`` (a huge number for terminals)."""
        return self._level[node]

    def low(self, node: int) -> int:
        return self._low[node]

    def high(self, node: int) -> int:
        return self._high[node]

    def __len__(self) -> int:
        """Number of nodes allocated, terminals included."""
        return len(self._level)

    # ------------------------------------------------------------------ core

    def _mk(self, level: int, low: int, high: int) -> int:
        if low == high:
            return low
        key = (level, low, high)
        node = self._unique.get(key)
        if node is None:
            node = len(self._level)
            if node >= self.max_nodes:
                raise BDDTooLarge(
                    f"the rules need more than {self.max_nodes:,} BDD nodes; put "
                    "propositions that are used together next to each other in the spec "
                    "(the proposition order is the variable order)"
                )
            self._level.append(level)
            self._low.append(low)
            self._high.append(high)
            self._unique[key] = node
        return node

    def ite(self, f: int, g: int, h: int) -> int:
        """``if f then g else h``; every other connective is built on this."""
        level, low, high = self._level, self._low, self._high
        cache = self._ite_cache
        # Work items are (f, g, h, split_level): split_level < 0 means "compute",
        # otherwise "combine the two results on top of ``out`` at that level".
        stack: list[tuple[int, int, int, int]] = [(f, g, h, -1)]
        out: list[int] = []
        while stack:
            f, g, h, split = stack.pop()
            if split >= 0:
                hi = out.pop()
                lo = out.pop()
                node = self._mk(split, lo, hi)
                cache[(f, g, h)] = node
                out.append(node)
                continue
            if f == TRUE:
                out.append(g)
                continue
            if f == FALSE:
                out.append(h)
                continue
            if g == f:
                g = TRUE
            if h == f:
                h = FALSE
            if g == h:
                out.append(g)
                continue
            if g == TRUE and h == FALSE:
                out.append(f)
                continue
            cached = cache.get((f, g, h))
            if cached is not None:
                out.append(cached)
                continue
            top = min(level[f], level[g], level[h])
            f0, f1 = (low[f], high[f]) if level[f] == top else (f, f)
            g0, g1 = (low[g], high[g]) if level[g] == top else (g, g)
            h0, h1 = (low[h], high[h]) if level[h] == top else (h, h)
            stack.append((f, g, h, top))
            stack.append((f1, g1, h1, -1))
            stack.append((f0, g0, h0, -1))  # popped first: its result lands below
        return out[0]

    def NOT(self, f: int) -> int:
        return self.ite(f, FALSE, TRUE)

    def AND(self, *fs: int) -> int:
        result = TRUE
        for f in self._bottom_up(fs):
            result = self.ite(result, f, FALSE)
            if result == FALSE:
                break
        return result

    def OR(self, *fs: int) -> int:
        result = FALSE
        for f in self._bottom_up(fs):
            result = self.ite(result, TRUE, f)
            if result == TRUE:
                break
        return result

    def _bottom_up(self, fs: tuple[int, ...]) -> list[int]:
        """Operands deepest top variable first: folding ``a and b and c ...`` then adds
        one node per operand instead of rebuilding the whole chain each time."""
        level = self._level
        return sorted(fs, key=lambda f: level[f], reverse=True)

    def is_false(self, f: int) -> bool:
        return f == FALSE

    def is_true(self, f: int) -> bool:
        return f == TRUE

    def implies(self, f: int, g: int) -> bool:
        """Whether every assignment satisfying ``f`` satisfies ``g``."""
        return self.ite(f, g, TRUE) == TRUE

    # ------------------------------------------------------------------ expressions

    def expr(self, expr: Expr) -> int:
        """Build the node of an IR expression, expanding derived propositions.

        A reference to a derived proposition that is being expanded (a cycle, which
        the checker reports) is treated as an opaque variable of that name."""
        results: list[int] = []
        # (item, expanded): an Expr to visit or to combine, or a derived name to finish.
        stack: list[tuple[Expr | str, bool]] = [(expr, False)]
        building: set[str] = set()
        while stack:
            item, expanded = stack.pop()
            if isinstance(item, str):  # a derived proposition's expansion is complete
                self._derived_nodes[item] = results[-1]
                building.discard(item)
            elif isinstance(item, Ref):
                node = self._ref(item.name, building, stack)
                if node != _PENDING:
                    results.append(node)
            elif isinstance(item, Const):
                results.append(TRUE if item.value else FALSE)
            elif isinstance(item, Not):
                if expanded:
                    results.append(self.NOT(results.pop()))
                else:
                    stack.append((item, True))
                    stack.append((item.operand, False))
            elif isinstance(item, (And, Or)):
                if expanded:
                    count = len(item.operands)
                    operands = results[len(results) - count :]
                    del results[len(results) - count :]
                    combine = self.AND if isinstance(item, And) else self.OR
                    results.append(combine(*operands))
                else:
                    stack.append((item, True))
                    stack.extend((op, False) for op in reversed(item.operands))
            else:  # pragma: no cover - the Expr union is closed
                raise TypeError(f"not an expression: {item!r}")
        return results[0]

    def _ref(self, name: str, building: set[str], stack: list[tuple[Expr | str, bool]]) -> int:
        """The node for ``name`` if it is known now. For a derived proposition that
        still needs expanding, schedule the expansion and return ``_PENDING``: the
        finished expansion lands on the result stack in its place."""
        if name in self._index or name not in self._derived or name in building:
            return self.var(name)
        done = self._derived_nodes.get(name)
        if done is not None:
            return done
        building.add(name)
        stack.append((name, False))
        stack.append((self._derived[name], False))
        return _PENDING

    def derived(self, name: str) -> int:
        """The node of derived proposition ``name`` (its base-proposition formula)."""
        if name not in self._derived:
            raise KeyError(f"no derived proposition {name!r}")
        node = self._derived_nodes.get(name)
        if node is None:
            ref = Ref.model_construct(name=name)
            node = self.expr(ref)
        return node

    # ------------------------------------------------------------------ queries

    def _reachable(self, roots: Iterable[int]) -> list[int]:
        """Decision nodes reachable from ``roots``, children before parents."""
        low, high = self._low, self._high
        seen: set[int] = {FALSE, TRUE}
        order: list[int] = []
        for root in roots:
            if root in seen:
                continue
            stack = [(root, False)]
            while stack:
                node, expanded = stack.pop()
                if expanded:
                    order.append(node)
                    continue
                if node in seen:
                    continue
                seen.add(node)
                stack.append((node, True))
                stack.append((high[node], False))
                stack.append((low[node], False))
        return order

    def support(self, node: int) -> tuple[str, ...]:
        """The variables ``node`` depends on, in order."""
        levels = {self._level[n] for n in self._reachable([node])}
        return tuple(self._names[level] for level in sorted(levels))

    def size(self, node: int) -> int:
        """Number of decision nodes reachable from ``node``."""
        return len(self._reachable([node]))

    def sat_one(self, node: int) -> dict[str, bool]:
        """A satisfying partial assignment with as few variables as possible (the
        unassigned ones do not matter), in variable order; ties prefer ``False``.

        Raises ``ValueError`` for the false node."""
        if node == FALSE:
            raise ValueError("the formula is unsatisfiable")
        low, high = self._low, self._high
        inf = len(self._names) + 1
        dist: dict[int, int] = {FALSE: inf, TRUE: 0}
        for n in self._reachable([node]):
            dist[n] = min(inf, 1 + min(dist[low[n]], dist[high[n]]))
        assignment: dict[str, bool] = {}
        while node > TRUE:
            take_high = dist[high[node]] < dist[low[node]]
            assignment[self._names[self._level[node]]] = take_high
            node = high[node] if take_high else low[node]
        return assignment

    def evaluate(self, node: int, assignment: Mapping[str, bool]) -> bool:
        """The value of ``node`` under a total assignment of its support.

        Raises ``KeyError`` naming a variable the assignment lacks."""
        while node > TRUE:
            name = self._names[self._level[node]]
            if name not in assignment:
                raise KeyError(f"no value for proposition {name!r}")
            node = self._high[node] if assignment[name] else self._low[node]
        return node == TRUE

    def value_under(self, node: int, partial: Mapping[str, bool]) -> bool | None:
        """The value of ``node`` when the variables in ``partial`` are fixed, or None
        when it still depends on the unfixed ones."""
        low, high, level, names = self._low, self._high, self._level, self._names
        seen: set[int] = set()
        found: set[int] = set()
        stack = [node]
        while stack:
            n = stack.pop()
            if n in seen:
                continue
            seen.add(n)
            if n <= TRUE:
                found.add(n)
                if len(found) > 1:
                    return None
                continue
            name = names[level[n]]
            if name in partial:
                stack.append(high[n] if partial[name] else low[n])
            else:
                stack.extend((low[n], high[n]))
        return found == {TRUE}

    def export(self, roots: Mapping[str, int]) -> tuple[list[tuple[int, int, int]], dict[str, int]]:
        """A canonical, self-contained node table for ``roots``.

        Returns ``(nodes, roots)`` where ``nodes[0]`` and ``nodes[1]`` are the
        terminals ``(-1, 0, 0)`` and ``(-1, 1, 1)`` and every other entry is
        ``(variable index, low, high)`` with both children earlier in the table.
        Ids are assigned by a post-order walk of the roots in sorted name order, so
        the table depends only on the functions, not on how they were built."""
        names = sorted(roots)
        order = self._reachable(roots[name] for name in names)
        renumber = {FALSE: FALSE, TRUE: TRUE}
        nodes: list[tuple[int, int, int]] = [(-1, FALSE, FALSE), (-1, TRUE, TRUE)]
        for node in order:
            renumber[node] = len(nodes)
            nodes.append((self._level[node], renumber[self._low[node]], renumber[self._high[node]]))
        return nodes, {name: renumber[roots[name]] for name in names}

    def format_assignment(self, assignment: Mapping[str, bool]) -> str:
        """``"apology=true, judgement=false"`` in variable order."""
        ordered = sorted(assignment, key=lambda name: self._index.get(name, len(self._names)))
        return ", ".join(f"{name}={'true' if assignment[name] else 'false'}" for name in ordered)
