"""Proofs of rule tests: a test's givens as a BDD, and counterexamples.

A rule test (``specc test``) holds when **every** assignment of the base
propositions that agrees with its givens satisfies its expectation: the givens'
node implies the expectation's node. A proposition the givens leave out takes both
values, so a test proves a whole family of replies, and a failure comes with one
assignment where the expectation is false (:func:`counterexample`), in which the
values the givens did not fix are marked as left open.

Pure Python, like :mod:`specc.logic.checks`: ``specc check`` and ``specc test``
without a grader import no numpy.

>>> from specc.ir import Answer, Span
>>> s = Span.unknown()
>>> bdd = BDD(["apology", "refuses"])
>>> g = answers_node(bdd, [Answer(span=s, name="apology", value=True)])
>>> counterexample(bdd, g, bdd.var("refuses"))
Counterexample(assignment={'apology': True, 'refuses': False}, left_open=('refuses',))
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from specc.ir import Answer, Ref
from specc.logic.bdd import BDD, FALSE, TRUE

__all__ = [
    "Counterexample",
    "answer_node",
    "answers_node",
    "contradiction",
    "counterexample",
    "witness",
]


def answer_node(bdd: BDD, answer: Answer) -> int:
    """The node of ``name = value``; a derived proposition expands to its formula."""
    node = bdd.expr(Ref.model_construct(span=answer.span, name=answer.name))
    return node if answer.value else bdd.NOT(node)


def answers_node(bdd: BDD, answers: Sequence[Answer]) -> int:
    """The conjunction of the answers: the replies a test's givens describe."""
    return bdd.AND(*(answer_node(bdd, a) for a in answers)) if answers else TRUE


def contradiction(bdd: BDD, answers: Sequence[Answer]) -> int | None:
    """The index of the first answer that no reply can give together with the ones
    before it (the givens describe no reply at all), or None."""
    node = TRUE
    for i, answer in enumerate(answers):
        node = bdd.AND(node, answer_node(bdd, answer))
        if node == FALSE:
            return i
    return None


@dataclass(frozen=True)
class Counterexample:
    """Values that agree with the givens and break the expectation. ``assignment``
    names only the propositions that matter, in spec order; ``left_open`` are those
    the givens do not fix (the test must hold for each of their values)."""

    assignment: dict[str, bool]
    left_open: tuple[str, ...]


def witness(bdd: BDD, given: int, node: int) -> Counterexample | None:
    """A shortest assignment where the givens and ``node`` both hold, or None."""
    both = bdd.AND(given, node)
    if both == FALSE:
        return None
    assignment = bdd.sat_one(both)
    left_open = tuple(
        name
        for name, value in assignment.items()
        if bdd.AND(given, bdd.NOT(bdd.var(name)) if value else bdd.var(name)) != FALSE
    )
    return Counterexample(assignment, left_open)


def counterexample(bdd: BDD, given: int, expected: int) -> Counterexample | None:
    """None when ``given`` implies ``expected``; else a shortest counterexample."""
    return witness(bdd, given, bdd.NOT(expected))
