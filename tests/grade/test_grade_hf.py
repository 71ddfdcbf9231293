"""The hf backend: prefix-cached, batched P(yes) equals plain evaluation."""

from __future__ import annotations

import random
import shutil
from pathlib import Path

import numpy as np
import pytest

from specc.errors import UsageError
from specc.grade.base import Answers
from specc.grade.hf import (
    HFGrader,
    answer_token_ids,
    cache_argument,
    fingerprint_model_dir,
    plain_p_yes,
    resolve_model_path,
)

WORDS = ["the", "user", "asked", "about", "weather", "news", "cooking", "travel", "sorry"]
PREFIX = (
    "You are reviewing a reply.\n\nQuestion: Does the reply apologise?\n"
    "Answer with yes or no.\n\n## Example 1\nFinal assistant reply:\nSorry.\n\nAnswer: yes\n"
    "## Now the reply to grade\nConversation:\n"
)


def prompts(n: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        body = " ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 40)))
        if i % 4 == 1:
            # No separator after the prefix: the prefix's last token is not a token of
            # this prompt (it merges differently), so fewer prefix tokens are shared.
            out.append(PREFIX[:-1] + "xyz" + body + "\nAnswer:")
        elif i % 4 == 2:
            # Differs inside the prefix: it cannot use the cached prefix at all.
            out.append(PREFIX.replace("a reply", "a REPLY") + body + "\nAnswer:")
        else:
            out.append(PREFIX + "User: " + body + "\n\nAnswer:")
    return out


@pytest.mark.parametrize("fixture", ["tiny_gpt2", "tiny_llama"])
def test_cached_batched_equals_plain(fixture: str, request: pytest.FixtureRequest) -> None:
    path = request.getfixturevalue(fixture)
    grader = HFGrader.from_pretrained(str(path), device="cpu", dtype="float32", batch_size=3)
    texts = prompts(13)
    got = grader.grade(texts, prefix=PREFIX)
    want = np.array([plain_p_yes(grader.model, grader.tokenizer, t) for t in texts])
    assert np.max(np.abs(got - want)) <= 1e-4
    # Both paths were taken: most rows reused the prefix, the others ran in full.
    assert grader.rows_cached == 10
    assert grader.rows_full == 3
    # The answers are not all the same (a constant would pass the comparison trivially).
    assert np.ptp(want) > 1e-3


def test_prefix_cache_forwards_fewer_tokens(tiny_gpt2: Path) -> None:
    grader = HFGrader.from_pretrained(str(tiny_gpt2), device="cpu", dtype="float32")
    texts = [PREFIX + "User: " + w + "\n\nAnswer:" for w in WORDS]
    grader.grade(texts)  # no prefix hint: the common prefix is found
    full = sum(len(grader.tokenizer(t)["input_ids"]) for t in texts)
    assert grader.rows_cached == len(texts)
    assert grader.tokens_forwarded < full / 3
    # The prefix's cache is kept: a later call with the same prefix, even for one
    # row, runs only that row's own tokens, and still equals plain evaluation.
    before = grader.tokens_forwarded
    one = texts[2]
    got = grader.grade([one], prefix=PREFIX + "User: ")
    assert grader.tokens_forwarded - before < len(grader.tokenizer(one)["input_ids"]) / 3
    want = plain_p_yes(grader.model, grader.tokenizer, one)
    assert abs(got[0] - want) < 1e-4


def test_prefix_cache_off_and_empty_input(tiny_gpt2: Path) -> None:
    grader = HFGrader.from_pretrained(str(tiny_gpt2), device="cpu", dtype="float32")
    assert grader.grade([]).shape == (0,)
    texts = prompts(5, seed=3)
    cached = grader.grade(texts, prefix=PREFIX)
    grader.use_prefix_cache = False
    assert np.allclose(grader.grade(texts, prefix=PREFIX), cached, atol=1e-5)


def test_answer_token_ids_cover_variants_and_dedupe(tiny_gpt2: Path) -> None:
    grader = HFGrader.from_pretrained(str(tiny_gpt2), device="cpu")
    tok = grader.tokenizer
    ids = answer_token_ids(tok, ["yes", "Yes"])  # the same forms twice: no duplicates
    assert len(ids) == len(set(ids))
    texts = {tok.decode([i]) for i in ids}
    assert {"yes", " yes", "Yes", " Yes", "YES", " YES"} <= texts
    # A multi-token word contributes its first token.
    multi = answer_token_ids(tok, ["yesno"])
    assert tok.decode([multi[0]]).strip() in {"yes", "y", "ye"}


def test_answer_words_that_share_a_token_are_refused(tiny_gpt2: Path) -> None:
    grader = HFGrader.from_pretrained(str(tiny_gpt2), device="cpu")
    with pytest.raises(UsageError, match="share the first token"):
        grader.with_answers(Answers(yes=("yes",), no=("Yes",)))


def test_other_answer_words_change_p_yes(tiny_gpt2: Path) -> None:
    grader = HFGrader.from_pretrained(str(tiny_gpt2), device="cpu", dtype="float32")
    texts = prompts(4)
    swapped = grader.with_answers(Answers(yes=("no",), no=("yes",)))
    assert swapped.model is grader.model
    assert np.allclose(grader.grade(texts) + swapped.grade(texts), 1.0, atol=1e-6)


def test_fingerprint_tracks_weights_not_location(tiny_gpt2: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(tiny_gpt2, copy)
    assert fingerprint_model_dir(copy) == fingerprint_model_dir(tiny_gpt2)
    weights = next(copy.glob("*.safetensors"))
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF  # flip the last byte: the last sampled chunk sees it
    weights.write_bytes(bytes(data))
    assert fingerprint_model_dir(copy) != fingerprint_model_dir(tiny_gpt2)


def test_identity_includes_dtype(tiny_gpt2: Path) -> None:
    a = HFGrader.from_pretrained(str(tiny_gpt2), device="cpu", dtype="float32")
    b = HFGrader.from_pretrained(str(tiny_gpt2), device="cpu", dtype="bfloat16")
    assert a.identity != b.identity
    assert a.source == "hf:gpt2"


def test_missing_model_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="never downloads"):
        resolve_model_path(str(tmp_path / "nope"))
    with pytest.raises(UsageError, match="unknown dtype"):
        HFGrader.from_pretrained(str(tmp_path), dtype="float8")


def test_grading_uses_the_cache_argument_transformers_asks_for(
    tiny_llama: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """transformers releases that renamed ``past_key_values`` to ``cache`` warn on every
    call that uses the old name (and will drop it): grading must not."""
    import inspect
    import warnings

    grader = HFGrader.from_pretrained(str(tiny_llama), device="cpu", dtype="float32")
    new_name = "cache" in inspect.signature(grader.model.forward).parameters
    assert cache_argument(grader.model) == ("cache" if new_name else "past_key_values")
    with warnings.catch_warnings(), caplog.at_level("WARNING"):
        warnings.simplefilter("error", FutureWarning)
        got = grader.grade(prompts(6), prefix=PREFIX)
    assert grader.rows_cached > 0 and np.isfinite(got).all()
    assert "deprecated" not in caplog.text
