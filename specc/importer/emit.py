"""IR items to canonical ``.rbr`` text, verified by parsing it back.

The items are written out (strings and expressions by :mod:`specc.formatter`'s own
helpers), laid out by :func:`specc.formatter.format_source`, and the result is
parsed again: it must give exactly the items it was made from, spans aside.

>>> text = emit_policy([ir.PolicyHeader(span=S, name="p", version="1")])   # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Sequence

from specc import ir
from specc.formatter import format_expr, format_source, format_string
from specc.parser import parse_source

__all__ = ["EmitBug", "emit_policy"]

_IN = "  "


class EmitBug(RuntimeError):
    """The text does not parse back to the items it was made from (a bug in specc)."""


def _example(e: ir.Example) -> list[str]:
    inner = _IN * 2
    lines = [f"{_IN}example {'yes' if e.answer else 'no'} {{"]
    for m in e.conversation:
        lines += format_string(m.content, f"{inner}{m.role} ", inner)
    lines += format_string(e.completion, f"{inner}completion ", inner)
    if e.because is not None:
        lines += format_string(e.because, f"{inner}because ", inner)
    return [*lines, _IN + "}"]


def _item(item: ir.Item) -> list[str]:
    if isinstance(item, ir.PolicyHeader):
        return [f"policy {format_string(item.name)[0]} version {format_string(item.version)[0]}"]
    if isinstance(item, ir.GraderSettings):
        lines = ["grader {"]
        if item.template is not None:
            lines += format_string(item.template, f"{_IN}template = ", _IN)
        return [*lines, "}"]
    if isinstance(item, ir.TiersBlock):
        return ["tiers {", *(_IN + t.name for t in item.tiers), "}"]
    if isinstance(item, ir.RewardSettings):
        names = ", ".join(r.name for r in item.extra or ())
        return ["reward {", f"{_IN}extra = [{names}]", "}"]
    if isinstance(item, ir.Proposition):
        lines = [f"proposition {item.name} {{"]
        if item.description is not None:
            lines += format_string(item.description, f"{_IN}description = ", _IN)
        if item.question is not None:
            lines += format_string(item.question, f"{_IN}question = ", _IN)
        for example in item.examples:
            lines += _example(example)
        return [*lines, "}"]
    if isinstance(item, ir.Derived):
        prefix = f"derived {item.name} = "
        expr = format_expr(item.expr, len(prefix))
        return [prefix + expr[0], *expr[1:]]
    if isinstance(item, ir.ResponseType):
        title = f"response_type {item.name}"
        if item.display is not None:
            title += " " + format_string(item.display, block=False)[0]
        lines = [title + " {"]
        for rule in item.rules:
            if rule.when is None:
                lines.append(f"{_IN}{rule.tier} otherwise")
            else:
                lead = f"{_IN}{rule.tier} when "
                expr = format_expr(rule.when, len(lead), len(_IN))
                lines += [lead + expr[0], *expr[1:]]
        return [*lines, "}"]
    raise TypeError(f"the importer does not write {type(item).__name__}")  # pragma: no cover


def _fingerprint(items: Sequence[ir.Item]) -> object:
    return ir.strip_spans([item.model_dump() for item in items])


def emit_policy(items: Sequence[ir.Item], comments: Sequence[str] = (), file: str = "") -> str:
    """The canonical text of ``items`` (``comments``, each a line without ``#``, head
    the file). Raises :class:`EmitBug` if the text would parse to anything else."""
    draft: list[str] = [f"# {c}" for c in comments]
    for item in items:
        draft += [*_item(item), ""]
    text = format_source("\n".join(draft), file or "<import>")
    parsed, diagnostics = parse_source(text, file or "<import>")
    if diagnostics or _fingerprint(parsed.items) != _fingerprint(items):
        raise EmitBug(
            "specc import wrote text that does not parse back to the imported policy; "
            "nothing was written. This is a bug in specc: please report it with the config."
        )
    return text
