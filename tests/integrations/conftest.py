"""Fixtures for the trainer integration tests: a fitted policy and tiny models.

Every model is built offline, with random weights (``tests/tiny_models.py``), and saved
first: TRL reloads the reference model from its path when ``beta != 0``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fitted import build_fitted
from tiny_models import build_tiny_model

from .policy import SPEC, fit_rows

#: A minimal chat template for the tiny tokenizers (they are trained without one).
CHAT_TEMPLATE = (
    "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}assistant:{% endif %}"
)


@pytest.fixture(scope="session", autouse=True)
def single_torch_thread() -> Iterator[None]:
    """The machine is shared and the models are tiny: one thread each is fastest."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def artifact(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_fitted(tmp_path_factory.mktemp("policy"), SPEC, fit_rows())


def _with_chat_template(path: Path) -> Path:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(path)
    tokenizer.chat_template = CHAT_TEMPLATE
    tokenizer.save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def policy_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny causal LM a trainer trains (a llama, with a chat template)."""
    return _with_chat_template(
        build_tiny_model(tmp_path_factory.mktemp("models") / "policy", arch="llama")
    )


@pytest.fixture(scope="session")
def grader_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny LM that answers the policy's propositions (``hf:PATH``)."""
    return build_tiny_model(tmp_path_factory.mktemp("models") / "grader", arch="gpt2")


@pytest.fixture(scope="session")
def helpfulness_rm(tmp_path_factory: pytest.TempPathFactory, grader_model: Path) -> Path:
    """A tiny sequence classifier with one label: the RBR paper's helpfulness RM."""
    import torch
    from transformers import AutoTokenizer, GPT2Config, GPT2ForSequenceClassification

    path = tmp_path_factory.mktemp("models") / "helpfulness"
    tokenizer = AutoTokenizer.from_pretrained(grader_model)
    config = GPT2Config(
        n_layer=1,
        n_head=2,
        n_embd=16,
        vocab_size=len(tokenizer),
        num_labels=1,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(1)
    GPT2ForSequenceClassification(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return _with_chat_template(path)
