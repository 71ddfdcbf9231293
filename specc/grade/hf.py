"""The ``hf`` backend: a local transformers causal LM answers yes/no.

P(yes) is read at the answer slot, the next token after the prompt:
``sum(p[yes ids]) / (sum(p[yes ids]) + sum(p[no ids]))``, computed in float32 as
``sigmoid(logsumexp(logits[yes]) - logsumexp(logits[no]))``.

Every proposition prompt starts with the same static text (instructions and
few-shot examples). The grader runs that prefix once, keeps its key/value cache and
for each batch copies it to the batch and runs only the suffix tokens (right
padding, positions continuing after the prefix). A row whose tokens do not start
with the prefix's tokens (a BPE merge across the boundary) is run in full, so the
result always equals plain one-prompt-at-a-time evaluation.

>>> g = HFGrader.from_pretrained("models/grader", device="cpu")   # doctest: +SKIP
>>> g.grade(["...Answer:"])                                       # doctest: +SKIP
array([0.73])
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from specc.devices import check_device
from specc.errors import UsageError
from specc.grade.base import Answers, answer_forms

if TYPE_CHECKING:
    import numpy as np
    import torch

#: Files hashed in full for the model fingerprint (config and tokenizer).
_SMALL_FILES = (
    "config.json",
    "generation_config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "vocab.json",
    "merges.txt",
    "tokenizer.model",
    "chat_template.jinja",
    "chat_template.json",
)
_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".gguf")
_SAMPLE_CHUNKS = 16
_CHUNK = 1 << 16
_DTYPES = ("auto", "float32", "bfloat16", "float16")


def cache_argument(model: Any) -> str:
    """The name under which ``model.forward`` takes (and its output returns) the KV
    cache: ``cache`` in transformers releases that renamed it, where
    ``past_key_values`` is deprecated and warns on every call; else ``past_key_values``."""
    import inspect

    try:
        parameters = inspect.signature(model.forward).parameters
    except (TypeError, ValueError):
        return "past_key_values"
    return "cache" if "cache" in parameters else "past_key_values"


def resolve_model_path(name_or_path: str) -> Path:
    """A local directory for ``name_or_path``: the path itself, or the snapshot of an
    already-cached hub name. Never downloads."""
    path = Path(name_or_path).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise UsageError(
                f"{name_or_path}: not a model directory (it has no config.json)\n"
                "  = hint: pass the folder a model was saved to with save_pretrained "
                "(config.json, weights, tokenizer files)"
            )
        return path
    if path.exists():
        raise UsageError(f"{name_or_path}: not a model directory (expected a folder)")
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(name_or_path, local_files_only=True))
    except Exception:
        raise UsageError(
            f"model {name_or_path!r} is neither a local directory nor in the local "
            "Hugging Face cache; specc never downloads weights: pass the path of a "
            "model directory (config.json, weights, tokenizer)"
        ) from None


def fingerprint_model_dir(path: Path) -> str:
    """A sha256 fingerprint of a model directory, cheap even for large weights.

    Config and tokenizer files are hashed in full. Weight files contribute their name,
    size and sampled content: the safetensors header (tensor names, shapes, offsets)
    plus 16 chunks of 64 KiB at evenly spaced offsets and the last chunk. A changed
    fine-tune changes every sampled chunk; a copied directory keeps its fingerprint."""
    h = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file())
    for file in files:
        rel = file.relative_to(path).as_posix()
        if rel.startswith(".") or "/." in rel:
            continue
        if file.name in _SMALL_FILES:
            h.update(f"file:{rel}\n".encode())
            h.update(file.read_bytes())
        elif file.name.endswith(_WEIGHT_SUFFIXES):
            size = file.stat().st_size
            h.update(f"weights:{rel}:{size}\n".encode())
            with file.open("rb") as f:
                if file.name.endswith(".safetensors") and size >= 8:
                    n = int.from_bytes(f.read(8), "little")
                    h.update(f.read(min(n, size - 8)))
                offsets = {size * i // _SAMPLE_CHUNKS for i in range(_SAMPLE_CHUNKS)}
                offsets.add(max(0, size - _CHUNK))
                for off in sorted(offsets):
                    f.seek(off)
                    h.update(f.read(_CHUNK))
    return h.hexdigest()


def answer_token_ids(tokenizer: Any, words: Sequence[str]) -> list[int]:
    """Token ids that count as answering one of ``words`` at the answer slot.

    Each form of a word (:func:`~specc.grade.base.answer_forms`: as written, lower,
    capitalised, upper; with and without a leading space) that the tokenizer encodes
    as one token contributes that token. A word none of whose forms is a single token
    contributes the first token of the word as written and of ``" " + word`` (a first
    token that is only whitespace is skipped). Ids are deduplicated, in order."""
    ids: list[int] = []
    for word in words:
        single = []
        for form in answer_forms(word):
            enc = tokenizer.encode(form, add_special_tokens=False)
            if len(enc) == 1:
                single.append(int(enc[0]))
        if not single:
            for form in (word, " " + word):
                enc = tokenizer.encode(form, add_special_tokens=False)
                if enc and tokenizer.decode([enc[0]]).strip():
                    single.append(int(enc[0]))
        if not single:
            raise UsageError(f"the grader's tokenizer cannot encode the answer word {word!r}")
        ids.extend(single)
    return list(dict.fromkeys(ids))


def _pick_device(device: str) -> str:
    device = check_device(device)
    if device != "auto":
        return device
    import torch

    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def _pick_dtype(dtype: str, device: str) -> torch.dtype:
    import torch

    if dtype not in _DTYPES:
        raise UsageError(f"unknown dtype {dtype!r}; use one of {', '.join(_DTYPES)}")
    if dtype == "auto":
        if device.startswith("cuda") and torch.cuda.is_bf16_supported():
            return torch.bfloat16
        return torch.float32
    result: torch.dtype = getattr(torch, dtype)
    return result


@dataclass
class _Batch:
    rows: list[int]  # indices into the prompt list
    ids: list[list[int]]  # suffix tokens (cached mode) or full tokens


class HFGrader:
    """A local causal LM as a yes/no grader (see the module docstring).

    ``batch_size`` bounds the rows per forward pass, ``max_batch_tokens`` the padded
    tokens per pass and ``max_padding`` the padding per pass as a share of its real
    tokens (whichever is hit first)."""

    kind = "hf"

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        *,
        name: str,
        fingerprint: str,
        answers: Answers | None = None,
        batch_size: int = 16,
        max_batch_tokens: int = 8192,
        use_prefix_cache: bool = True,
        max_padding: float = 0.1,
    ):
        import torch

        self.model = model
        self._cache_kw = cache_argument(model)
        self.tokenizer = tokenizer
        self.name = name
        self.fingerprint = fingerprint
        self.answers = answers or Answers()
        self.batch_size = max(1, batch_size)
        self.max_batch_tokens = max(1, max_batch_tokens)
        self.use_prefix_cache = use_prefix_cache
        self.max_padding = max_padding
        self.device = next(model.parameters()).device
        self.dtype = next(model.parameters()).dtype
        self._yes = answer_token_ids(tokenizer, self.answers.yes)
        self._no = answer_token_ids(tokenizer, self.answers.no)
        both = set(self._yes) & set(self._no)
        if both:
            shared = ", ".join(repr(tokenizer.decode([i])) for i in sorted(both))
            raise UsageError(
                f"the yes words {list(self.answers.yes)} and no words {list(self.answers.no)} "
                f"share the first token(s) {shared}; choose answer words that start differently"
            )
        self._yes_t = torch.tensor(self._yes, device=self.device)
        self._no_t = torch.tensor(self._no, device=self.device)
        pad = tokenizer.pad_token_id
        if pad is None:
            pad = tokenizer.eos_token_id if tokenizer.eos_token_id is not None else 0
        self._pad = int(pad)
        #: Counters for tests and the benchmark: forward passes, real tokens forwarded
        #: and padding tokens forwarded alongside them.
        self.forward_calls = 0
        self.tokens_forwarded = 0
        self.tokens_padding = 0
        #: Rows run after the cached prefix, and rows run in full.
        self.rows_cached = 0
        self.rows_full = 0
        # The last prefix's tokens and KV cache: grade() is called batch by batch with
        # the same proposition prefix, which is then run once, not once per call.
        self._memo: tuple[tuple[int, ...], Any] | None = None

    # ------------------------------------------------------------------ construction

    @classmethod
    def from_pretrained(
        cls,
        name_or_path: str,
        *,
        answers: Answers | None = None,
        device: str = "auto",
        dtype: str = "auto",
        batch_size: int = 16,
        max_batch_tokens: int = 8192,
    ) -> HFGrader:
        """Load a model directory (or an already-cached hub name) without downloading."""
        dev = _pick_device(device)
        torch_dtype = _pick_dtype(dtype, dev)  # options first, then the model's folder
        path = resolve_model_path(name_or_path)
        from transformers import AutoModelForCausalLM, AutoTokenizer

        try:
            tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
            model: Any = AutoModelForCausalLM.from_pretrained(
                path, local_files_only=True, dtype=torch_dtype
            )
        except (OSError, ValueError) as exc:
            raise UsageError(f"{path}: cannot load a causal LM and tokenizer: {exc}") from None
        model.to(dev)
        model.eval()
        name = Path(name_or_path).name if Path(name_or_path).is_dir() else name_or_path
        return cls(
            model,
            tokenizer,
            name=name,
            fingerprint=fingerprint_model_dir(path),
            answers=answers,
            batch_size=batch_size,
            max_batch_tokens=max_batch_tokens,
        )

    def with_answers(self, answers: Answers) -> HFGrader:
        if answers == self.answers:
            return self
        return HFGrader(
            self.model,
            self.tokenizer,
            name=self.name,
            fingerprint=self.fingerprint,
            answers=answers,
            batch_size=self.batch_size,
            max_batch_tokens=self.max_batch_tokens,
            use_prefix_cache=self.use_prefix_cache,
            max_padding=self.max_padding,
        )

    @property
    def source(self) -> str:
        return f"hf:{self.name}"

    @property
    def identity(self) -> str:
        dtype = str(self.dtype).removeprefix("torch.")
        return json.dumps(
            {"backend": "hf", "weights": self.fingerprint, "dtype": dtype, "slot": "next-token"},
            sort_keys=True,
        )

    # ------------------------------------------------------------------ grading

    def grade(self, prompts: Sequence[str], *, prefix: str | None = None) -> np.ndarray:
        """P(yes) for each prompt (float64), equal to one-prompt-at-a-time evaluation."""
        import numpy as np
        import torch

        out = np.empty(len(prompts), dtype=np.float64)
        if not prompts:
            return out
        if prefix is None and len(prompts) > 1:
            prefix = os.path.commonprefix(list(prompts))  # noqa: RUF071 (a string prefix)
        with torch.inference_mode():
            full_ids = self._tokenize(list(prompts), special=True)
            prefix_ids = self._tokenize([prefix], special=True)[0] if prefix else []
            k = self._shared_length(prefix_ids, full_ids) if self.use_prefix_cache else 0
            prefix_ids = prefix_ids[:k]
            cached: list[int] = []
            plain: list[int] = []
            for i, ids in enumerate(full_ids):
                if k and len(ids) > k and ids[:k] == prefix_ids:
                    cached.append(i)
                else:
                    plain.append(i)
            memo_hit = self._memo is not None and self._memo[0] == tuple(prefix_ids)
            if len(cached) == 1 and not memo_hit:  # nothing to share: run it in full
                plain += cached
                cached = []
            self.rows_cached += len(cached)
            self.rows_full += len(plain)
            if cached:
                cache = self._prefix_cache(prefix_ids)
                for batch in self._batches(cached, [full_ids[i][k:] for i in cached]):
                    out[batch.rows] = self._run(batch.ids, cache, k)
            if plain:
                for batch in self._batches(plain, [full_ids[i] for i in plain]):
                    out[batch.rows] = self._run(batch.ids, None, 0)
        return out

    @staticmethod
    def _shared_length(prefix_ids: list[int], full_ids: list[list[int]]) -> int:
        """How many prefix tokens to cache.

        The last prefix token can differ from the full prompt's (``" "`` then ``"the"``
        merges into ``" the"``; a tokenizer may append EOS), so the candidates are
        the whole tokenized prefix and it less its last 1-3 tokens; the one saving
        the most tokens over the batch wins. Rows that still do not start with the
        chosen tokens are run in full."""
        best, best_saved = 0, 0
        for k in range(len(prefix_ids), max(0, len(prefix_ids) - 4), -1):
            head = prefix_ids[:k]
            saved = k * sum(1 for ids in full_ids if len(ids) > k and ids[:k] == head)
            if saved > best_saved:
                best, best_saved = k, saved
        return best

    def _tokenize(self, texts: list[str], *, special: bool) -> list[list[int]]:
        enc = self.tokenizer(texts, add_special_tokens=special)["input_ids"]
        return [list(map(int, ids)) for ids in enc]

    def _batches(self, rows: list[int], seqs: list[list[int]]) -> list[_Batch]:
        """Rows sorted by length, cut into batches of at most ``batch_size`` rows and
        ``max_batch_tokens`` padded tokens, and cut early where padding would exceed
        ``max_padding`` of the batch's real tokens (padding is wasted compute)."""
        order = sorted(range(len(rows)), key=lambda j: len(seqs[j]))
        batches: list[_Batch] = []
        cur = _Batch([], [])
        real = 0
        for j in order:
            length = len(seqs[j])  # the longest so far: lengths ascend
            padded = (len(cur.ids) + 1) * length
            if cur.ids and (
                len(cur.ids) >= self.batch_size
                or padded > self.max_batch_tokens
                or padded > (real + length) * (1.0 + self.max_padding)
            ):
                batches.append(cur)
                cur, real = _Batch([], []), 0
            cur.rows.append(rows[j])
            cur.ids.append(seqs[j])
            real += length
        if cur.ids:
            batches.append(cur)
        return batches

    def _prefix_cache(self, prefix_ids: list[int]) -> Any:
        """The KV cache of ``prefix_ids`` (batch 1), computed once per distinct prefix."""
        import torch

        key = tuple(prefix_ids)
        if self._memo is not None and self._memo[0] == key:
            return self._memo[1]
        ids = torch.tensor([prefix_ids], device=self.device)
        out = self.model(input_ids=ids, use_cache=True, logits_to_keep=1)
        self.forward_calls += 1
        self.tokens_forwarded += len(prefix_ids)
        cache = getattr(out, self._cache_kw)
        self._memo = (key, cache)
        return cache

    def clear_prefix_cache(self) -> None:
        """Forget the prefix KV cache kept from the last call (to free memory, or to
        time grading from a cold start)."""
        self._memo = None

    @staticmethod
    def _expand_cache(prefix_cache: Any, n: int) -> Any:
        """A fresh cache holding the prefix for ``n`` rows; the prefix's own is untouched.

        A plain ``DynamicCache`` gets layers holding broadcast views of the prefix's
        keys and values: no copy until the model appends the suffix (which copies
        once, as it must). Other cache kinds are deep-copied and repeated."""
        from transformers.cache_utils import DynamicCache, DynamicLayer

        layers = getattr(prefix_cache, "layers", None)
        if (
            type(prefix_cache) is DynamicCache
            and layers
            and all(type(layer) is DynamicLayer and layer.keys is not None for layer in layers)
        ):
            # Start from empty layers (cheap), then point them at the views.
            fresh = DynamicCache(
                [(layer.keys[:, :, :0], layer.values[:, :, :0]) for layer in layers]
            )
            fresh_layers: list[Any] = list(fresh.layers)
            for new, old in zip(fresh_layers, layers, strict=True):
                new.keys = old.keys.expand(n, -1, -1, -1)
                new.values = old.values.expand(n, -1, -1, -1)
            return fresh
        cache = copy.deepcopy(prefix_cache)
        cache.batch_repeat_interleave(n)
        return cache

    def _run(self, seqs: list[list[int]], prefix_cache: Any, k: int) -> np.ndarray:
        """One forward pass over right-padded ``seqs`` after ``k`` cached tokens."""
        import torch

        n = len(seqs)
        width = max(len(s) for s in seqs)
        ids = torch.full((n, width), self._pad, dtype=torch.long)
        mask = torch.zeros((n, k + width), dtype=torch.long)
        mask[:, :k] = 1
        for r, s in enumerate(seqs):
            ids[r, : len(s)] = torch.tensor(s, dtype=torch.long)
            mask[r, k : k + len(s)] = 1
        positions = torch.arange(k, k + width, dtype=torch.long).unsqueeze(0).expand(n, width)
        last = torch.tensor([len(s) - 1 for s in seqs], dtype=torch.long)
        keep = torch.unique(last)  # sorted distinct positions whose logits are needed
        kwargs: dict[str, Any] = {
            "input_ids": ids.to(self.device),
            "attention_mask": mask.to(self.device),
            "position_ids": positions.to(self.device),
            "logits_to_keep": keep.to(self.device),
            "use_cache": prefix_cache is not None,
        }
        if prefix_cache is not None:
            kwargs[self._cache_kw] = self._expand_cache(prefix_cache, n)
        logits = self.model(**kwargs).logits  # [n, len(keep), vocab]
        self.forward_calls += 1
        self.tokens_forwarded += sum(len(s) for s in seqs)
        self.tokens_padding += n * width - sum(len(s) for s in seqs)
        col = torch.searchsorted(keep, last).to(self.device)
        rows = torch.arange(n, device=self.device)
        final = logits[rows, col].float()  # [n, vocab]
        diff = torch.logsumexp(final[:, self._yes_t], dim=-1) - torch.logsumexp(
            final[:, self._no_t], dim=-1
        )
        result: np.ndarray = torch.sigmoid(diff).double().cpu().numpy()
        return result


def plain_p_yes(model: Any, tokenizer: Any, prompt: str, answers: Answers | None = None) -> float:
    """Reference P(yes) of one prompt: one forward pass over the full prompt, batch 1,
    full-vocabulary softmax. What the cached, batched path must reproduce."""
    import torch

    answers = answers or Answers()
    yes = answer_token_ids(tokenizer, answers.yes)
    no = answer_token_ids(tokenizer, answers.no)
    with torch.inference_mode():
        ids = tokenizer(prompt, return_tensors="pt")["input_ids"].to(
            next(model.parameters()).device
        )
        probs = torch.softmax(model(input_ids=ids).logits[0, -1].float(), dim=-1)
        y = float(probs[yes].sum())
        n = float(probs[no].sum())
    return y / (y + n)


class LazyHFGrader:
    """An :class:`HFGrader` that loads its model on the first :meth:`grade` call.

    Its :attr:`identity` (the cache key part) needs only the weights' fingerprint and
    the resolved dtype, so a re-run whose grades are all in the cache never loads the
    model. Any other attribute (``model``, ``tokenizer``, counters) loads it."""

    kind = "hf"

    def __init__(
        self,
        name_or_path: str,
        *,
        answers: Answers | None = None,
        device: str = "auto",
        dtype: str = "auto",
        batch_size: int = 16,
    ):
        self._device = _pick_device(device)  # cheap checks first: device, then the path
        self._path = resolve_model_path(name_or_path)  # a missing model fails now
        self._dtype = _pick_dtype(dtype, self._device)
        self._dtype_name = dtype if dtype != "auto" else str(self._dtype).removeprefix("torch.")
        self._name_or_path = name_or_path
        self.answers = answers or Answers()
        self.batch_size = max(1, batch_size)
        self._fingerprint = fingerprint_model_dir(self._path)
        # Shared with copies made by with_answers: the model is loaded at most once.
        self._shared: list[HFGrader] = []
        self._real: HFGrader | None = None

    def _load(self) -> HFGrader:
        if self._real is None:
            if not self._shared:
                self._shared.append(
                    HFGrader.from_pretrained(
                        self._name_or_path,
                        answers=self.answers,
                        device=self._device,
                        dtype=self._dtype_name,
                        batch_size=self.batch_size,
                    )
                )
            self._real = self._shared[0].with_answers(self.answers)
        return self._real

    @property
    def loaded(self) -> bool:
        return bool(self._shared)

    @property
    def source(self) -> str:
        name = Path(self._name_or_path)
        return f"hf:{name.name if name.is_dir() else self._name_or_path}"

    @property
    def identity(self) -> str:
        dtype = str(self._dtype).removeprefix("torch.")
        return json.dumps(
            {"backend": "hf", "weights": self._fingerprint, "dtype": dtype, "slot": "next-token"},
            sort_keys=True,
        )

    def with_answers(self, answers: Answers) -> LazyHFGrader:
        if answers == self.answers:
            return self
        other = copy.copy(self)  # shares the (possibly not yet loaded) model
        other.answers = answers
        other._real = None
        return other

    def grade(self, prompts: Sequence[str], *, prefix: str | None = None) -> np.ndarray:
        return self._load().grade(prompts, prefix=prefix)

    def close(self) -> None:
        """Release nothing that was never loaded (cleanup must not load the model)."""
        real = self._shared[0] if self._shared else None
        close = getattr(real, "close", None)
        if callable(close):
            close()

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self._load(), name)
