"""What every grading backend shares: the grader protocols and the answer words.

An LLM grader turns fully rendered prompts into P(yes): the probability mass of the
yes-answer tokens over the yes and no mass together, at the answer slot (the next
token after the prompt). ``labels`` and ``rules`` are not prompt graders: they mark
how the non-extractor propositions are valued (from the rows, or not at all).

>>> answer_forms("yes")
('yes', ' yes', 'Yes', ' Yes', 'YES', ' YES')
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from specc.errors import SpecccError

if TYPE_CHECKING:
    import numpy as np

    from specc.artifact import Artifact

DEFAULT_YES: tuple[str, ...] = ("yes",)
DEFAULT_NO: tuple[str, ...] = ("no",)


class GraderError(SpecccError):
    """A grader failed or answered something that is not a yes/no grade (exit code 1;
    grades already in the cache are kept). ``prompt_index`` is the position, in the
    ``grade`` call's prompts, of the prompt that failed, when the grader knows it."""

    def __init__(self, message: str, prompt_index: int | None = None):
        super().__init__(message)
        self.prompt_index = prompt_index


@dataclass(frozen=True)
class Answers:
    """The answer words of a grader prompt (``manifest.grader.yes`` / ``.no``)."""

    yes: tuple[str, ...] = DEFAULT_YES
    no: tuple[str, ...] = DEFAULT_NO

    @classmethod
    def of(cls, artifact: Artifact) -> Answers:
        """The answer words ``artifact``'s prompts ask for (what every grader of its
        propositions answers with)."""
        g = artifact.manifest.grader
        return cls(yes=tuple(g.yes), no=tuple(g.no))

    def key(self) -> str:
        return "yes=" + "|".join(self.yes) + ";no=" + "|".join(self.no)


def answer_forms(word: str) -> tuple[str, ...]:
    """The surface forms of an answer word a model may emit: as written, lower,
    capitalised and upper case, each with and without a leading space (deduplicated,
    in that order)."""
    cases = dict.fromkeys([word, word.lower(), word.capitalize(), word.upper()])
    return tuple(form for case in cases for form in (case, " " + case))


def logaddexp_all(values: Iterable[float]) -> float:
    """``log(sum(exp(v)))`` of plain floats, ``-inf`` for none."""
    vals = [v for v in values if v != -math.inf]
    if not vals:
        return -math.inf
    top = max(vals)
    return top + math.log(sum(math.exp(v - top) for v in vals))


@runtime_checkable
class Grader(Protocol):
    """An LLM grader: rendered prompts in, P(yes) out.

    ``source`` names the backend and model for the ``sources`` of a feature row
    (``hf:<model>``, ``openai:<model>``); ``identity`` is everything that changes its
    answers (model weights fingerprint, dtype, decoding settings) and keys the cache
    together with the answer words and the prompt."""

    answers: Answers
    batch_size: int

    @property
    def kind(self) -> str: ...

    @property
    def source(self) -> str: ...

    @property
    def identity(self) -> str: ...

    def grade(self, prompts: Sequence[str], *, prefix: str | None = None) -> np.ndarray:
        """P(yes) per prompt, float64 in [0, 1]. ``prefix``, when given, is a string
        every prompt starts with (a hint the hf backend uses to reuse its KV cache)."""
        ...

    def with_answers(self, answers: Answers) -> Grader:
        """The same grader (same model, no reload) answering with other words."""
        ...


@dataclass(frozen=True)
class LabelsGrader:
    """``--grader labels``: take each row's own ``propositions`` values."""

    kind: str = "labels"
    source: str = "labels"


@dataclass(frozen=True)
class RulesGrader:
    """``--grader rules``: only propositions with a declared extractor can be graded."""

    kind: str = "rules"
    source: str = "rules"


AnyGrader = Grader | LabelsGrader | RulesGrader
