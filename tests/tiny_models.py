"""Tiny, randomly initialised causal LMs and tokenizers built offline for tests.

Nothing is downloaded: the tokenizer is trained in-process with the ``tokenizers``
library on a small corpus, the model is built from a config with random weights, and
both are saved with ``save_pretrained`` so that code under test loads them by path.

>>> path = build_tiny_model(tmp_path / "gpt2", arch="gpt2")   # doctest: +SKIP
>>> AutoModelForCausalLM.from_pretrained(path)                 # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Literal

import pytest

Arch = Literal["gpt2", "llama"]


@pytest.fixture(autouse=True)
def one_torch_thread() -> Iterator[None]:
    """Tiny models run fastest on one thread, and the test machine is shared: several
    threads contending for two cores make each small matmul ten times slower. (Import
    it into a test module or conftest to use it there.)"""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


#: Words every tiny tokenizer knows as single tokens, in all the answer variants.
ANSWER_WORDS = ("yes", "no", "Yes", "No", "YES", "NO")

_CORPUS = [
    "You are reviewing a reply written by an AI assistant.",
    "Read the conversation and the assistant's final reply, then answer one question.",
    "Question: Does the reply apologize? Answer with a single word: yes or no.",
    "Conversation: User: How do I bake bread? Assistant: Mix flour, water and yeast.",
    "Final assistant reply: I'm sorry, but I can't help with that request.",
    "Answer: yes Answer: no Answer: Yes Answer: No Answer: YES Answer: NO",
    "The user asked about the weather, the news, cooking, travel and music.",
    "Does the response contain a refusal, an apology, a judgement or a threat?",
    "Here is an example of a good reply and an example of a bad reply.",
    "Reason: the reply says sorry and declines to help with the harmful request.",
]


def train_tokenizer(vocab_size: int = 400, corpus: Iterable[str] = ()) -> object:
    """A byte-level BPE tokenizer (GPT-2 style) wrapped in PreTrainedTokenizerFast,
    trained on a small built-in corpus plus ``corpus``."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=["<|endoftext|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    texts = _CORPUS * 20 + [form for w in ANSWER_WORDS for form in (w, " " + w)] * 200
    tok.train_from_iterator([*texts, *corpus], trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<|endoftext|>",
        eos_token="<|endoftext|>",
        unk_token="<|endoftext|>",
        pad_token="<|endoftext|>",
    )
    for word in ANSWER_WORDS:
        for form in (word, " " + word):
            ids = fast.encode(form, add_special_tokens=False)
            assert len(ids) == 1, f"tiny tokenizer split {form!r} into {ids}"
    return fast


def build_tiny_model(
    path: Path,
    arch: Arch = "gpt2",
    *,
    layers: int = 2,
    hidden: int = 32,
    heads: int = 2,
    seed: int = 0,
    vocab_size: int = 400,
    max_positions: int = 2048,
    corpus: Iterable[str] = (),
) -> Path:
    """Save a random causal LM and its tokenizer to ``path``; return ``path``.

    ``corpus`` adds text to the tokenizer's training set (for realistic token counts)."""
    import torch
    from transformers import AutoModelForCausalLM, GPT2Config, LlamaConfig

    tokenizer = train_tokenizer(vocab_size, corpus)
    n_vocab = len(tokenizer)  # type: ignore[arg-type]
    if arch == "gpt2":
        config: object = GPT2Config(
            n_layer=layers,
            n_head=heads,
            n_embd=hidden,
            vocab_size=n_vocab,
            n_positions=max_positions,
            bos_token_id=0,
            eos_token_id=0,
        )
    else:
        config = LlamaConfig(
            num_hidden_layers=layers,
            num_attention_heads=heads,
            num_key_value_heads=max(1, heads // 2),
            hidden_size=hidden,
            intermediate_size=hidden * 8 // 3,
            vocab_size=n_vocab,
            max_position_embeddings=max_positions,
            bos_token_id=0,
            eos_token_id=0,
            pad_token_id=0,
        )
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(config)
    # Random init gives near-uniform next-token distributions; a larger output scale
    # makes P(yes) vary visibly between prompts, so comparisons are meaningful.
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() >= 2:
                p.mul_(4.0)
    path.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)  # type: ignore[attr-defined]
    return path
