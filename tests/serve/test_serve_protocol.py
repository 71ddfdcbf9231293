"""The wire formats: splitting OpenRLHF queries, stripping EOS text, strict JSON."""

from __future__ import annotations

import sys
from collections.abc import Callable

import pytest

from specc.serve.config import DEFAULT_EOS_TEXTS, is_loopback
from specc.serve.protocol import (
    MIN_TAIL,
    RequestError,
    decode_json,
    parse_get_reward,
    parse_score,
    response_from_query,
    strip_eos,
)

PROMPT = "<|im_start|>system\nYou are helpful.<|im_end|>\n<|im_start|>user\nHi there<|im_end|>\n"


def test_response_is_the_query_minus_its_prompt() -> None:
    assert response_from_query(PROMPT + "Hello!", PROMPT) == "Hello!"
    assert response_from_query(PROMPT, PROMPT) == ""
    assert response_from_query("anything", "") == "anything"


def test_a_prompt_cut_from_the_left_still_splits() -> None:
    # OpenRLHF keeps the last tokens of an over-long prompt: the query starts inside it.
    cut = PROMPT[20:]
    assert response_from_query(cut + "Hello!", PROMPT) == "Hello!"
    # A repeated probe is tried at each place until the whole tail matches.
    prompt = "abcdefghij" * 10 + "<|im_start|>assistant\n"
    assert response_from_query(prompt[25:] + "Yes.", prompt) == "Yes."


def test_a_query_that_does_not_continue_its_prompt_is_refused() -> None:
    with pytest.raises(RequestError, match="does not start with its prompt") as info:
        response_from_query("something else entirely, and long enough to probe", PROMPT)
    assert info.value.status == 422
    short_tail = PROMPT[-(MIN_TAIL - 1) :]
    with pytest.raises(RequestError):
        response_from_query(short_tail + "Hello!", PROMPT)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Sorry.<|im_end|>", "Sorry."),
        ("Sorry.<|im_end|>\n", "Sorry."),
        ("Sorry.<|endoftext|><|endoftext|><|endoftext|>", "Sorry."),
        ("Sorry. </s> \n", "Sorry. "),
        ("Sorry.\n", "Sorry.\n"),  # no EOS text: unchanged, whitespace kept
        ("<|im_end|> inside, not at the end", "<|im_end|> inside, not at the end"),
    ],
)
def test_strip_eos(text: str, expected: str) -> None:
    assert strip_eos(text, DEFAULT_EOS_TEXTS) == expected


def _calls(run: Callable[..., object], *args: object) -> int:
    """How many built-in functions and methods ``run(*args)`` calls."""
    calls = 0

    def count(frame: object, event: str, arg: object) -> None:
        nonlocal calls
        calls += event == "c_call"

    sys.setprofile(count)
    try:
        run(*args)
    finally:
        sys.setprofile(None)
    return calls


def test_strip_eos_cuts_once_however_many_eos_texts() -> None:
    """A response of 500,000 ``</s>`` (a 2 MiB request) was cut one ``</s>`` at a
    time, copying the rest at each cut: quadratic, seconds of the event loop. Now
    the work in Python is the same for 10 and for 100,000 of them."""
    for tail in ("</s>", "</s> \n"):
        few = _calls(strip_eos, "Sorry." + tail * 10, DEFAULT_EOS_TEXTS)
        many = _calls(strip_eos, "Sorry." + tail * 100_000, DEFAULT_EOS_TEXTS)
        assert many == few
        assert strip_eos("Sorry. " + tail * 100_000, DEFAULT_EOS_TEXTS) == "Sorry. "


def test_strip_eos_with_nothing_to_strip() -> None:
    assert strip_eos("Sorry.<|im_end|>", ()) == "Sorry.<|im_end|>"
    assert strip_eos("Sorry.", ("",)) == "Sorry."


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{", "invalid JSON"),
        (b"\xff\xfe{}", "not UTF-8"),
        (b'{"a": NaN}', "NaN is not a JSON number"),
        (b'{"a": -Infinity}', "-Infinity is not a JSON number"),
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
        (b"[" * 65 + b"]" * 65, "nested too deeply"),
        (b'{"a": ' + b"9" * 5000 + b"}", "at most 64"),
        (b'{"a": "\\ud800"}', "surrogate"),
    ],
)
def test_decode_json_is_strict(body: bytes, message: str) -> None:
    with pytest.raises(RequestError, match=message) as info:
        decode_json(body)
    assert info.value.status == 400


def test_parse_get_reward_builds_rows() -> None:
    body = {
        "query": [PROMPT + "Sorry, no.<|im_end|>"],
        "prompts": [PROMPT],
        "labels": ["Refuse"],
    }
    (row,) = parse_get_reward(body, eos_texts=DEFAULT_EOS_TEXTS, max_rows=4).rows
    assert row.messages == (("user", PROMPT),)
    assert row.completion == "Sorry, no."
    assert row.response_type == "Refuse"
    # An empty label takes the server's default response type, if it has one.
    body["labels"] = [""]
    with pytest.raises(RequestError, match="label_key"):
        parse_get_reward(body, eos_texts=(), max_rows=4)
    (row,) = parse_get_reward(body, eos_texts=(), max_rows=4, default_response_type="comply").rows
    assert row.response_type == "comply" and row.completion == "Sorry, no.<|im_end|>"


def test_parse_score_counts_observe_flag() -> None:
    rows = [{"prompt": "Hi", "completion": "Hello", "response_type": "comply"}]
    parsed = parse_score({"rows": rows, "observe": False}, max_rows=4)
    assert not parsed.observe and parsed.rows[0].completion == "Hello"
    with pytest.raises(RequestError, match="'observe' must be true or false"):
        parse_score({"rows": rows, "observe": "no"}, max_rows=4)


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.4.5.6", True),
        ("::1", True),
        ("[::1]", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("::", False),
        ("10.0.0.1", False),
        ("example.com", False),
    ],
)
def test_is_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback
