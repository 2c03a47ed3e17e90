"""Generation backends: batched transformers (CPU or GPU) and, lazily, vLLM (GPUs).

Both take the same :class:`GenerationRequest` list and :class:`SamplingParams` and return one
completion string per request, in order. A request carries chat messages; for a base model with no
chat template (Gemma-3-270M pretrained) the caller passes ``raw_prompt`` instead.

The transformers backend sorts requests by prompt length (less padding), decodes in batches, is
seeded per batch (so results do not depend on how many batches ran before a resume) or, with
``SamplingParams.coupled``, per row (see there), and accepts a *constraint*: a logits-level
grammar that a small model can be held to (see ``tasks.numbers.NumberGrammar``). A constraint
maps the text generated so far to the set of allowed next-token ids (or ``None`` when only EOS is
allowed).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from benchmark.core.models import load_causal_lm

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SamplingParams:
    temperature: float = 1.0
    top_p: float = 1.0
    min_p: float = 0.0
    max_new_tokens: int = 48
    seed: int = 0
    # Per-row sampling noise (common random numbers): the t-th token of request ``id`` is drawn by
    # Gumbel-max with noise that depends only on (seed, id, t), never on the batch. Two arms that
    # write for the same prompts then share their noise, so wherever the trait teacher's next-token
    # distribution matches the base's they write the same token, and the rows of the two arms
    # differ mostly where the trait moved the distribution. Each arm is still an exact sample of its
    # own model; only the trait − control difference gets less noisy. The vLLM backend always
    # seeds per request (vLLM's seeded sampling is the same kind of coupling).
    coupled: bool = False
    # Stop strings: a row ends at the first one it writes, which is left out of its text (vLLM's
    # rule). A few-shot base model otherwise writes on into the next worked example until
    # max_new_tokens, and the batch waits for its longest row. The text before the stop is the same
    # with or without it (each step still samples every row), so it is an efficiency setting.
    stop: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.temperature < 0:
            raise ValueError(f"Invalid temperature: {self.temperature} (must be >= 0)")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"Invalid top_p: {self.top_p} (must be in (0, 1])")
        if not 0 <= self.min_p < 1:
            raise ValueError(f"Invalid min_p: {self.min_p} (must be in [0, 1))")
        if self.max_new_tokens < 1:
            raise ValueError(f"Invalid max_new_tokens: {self.max_new_tokens}")
        if isinstance(self.stop, str) or not all(isinstance(x, str) and x for x in self.stop):
            raise ValueError(f"Invalid stop: {self.stop!r} (must be a tuple of non-empty strings)")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        # Absent when off, so generations made before these fields keep their keys.
        if not self.coupled:
            del d["coupled"]
        if not self.stop:
            del d["stop"]
        else:
            d["stop"] = list(self.stop)
        return d


def progress_bar(desc: str, total: int) -> Callable[[int], None]:
    """A tqdm bar over ``total`` rows; its update function is what ``Backend.generate`` takes as
    ``progress``."""
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="row", leave=False).update


def cut_at_stop(text: str, stop: Sequence[str]) -> str:
    """``text`` up to the first occurrence of any of ``stop`` (the whole text when none occurs)."""
    cut = min((i for i in (text.find(s) for s in stop) if i >= 0), default=len(text))
    return text[:cut]


@dataclass(frozen=True)
class GenerationRequest:
    id: str
    messages: tuple[tuple[str, str], ...] = ()  # (role, content) pairs
    raw_prompt: str | None = None  # used verbatim (no chat template) when set

    def chat(self) -> list[dict[str, str]]:
        return [{"role": r, "content": c} for r, c in self.messages]


class Constraint(Protocol):
    """A per-row grammar: given the decoded text so far, which token ids may come next."""

    def bind(self, tokenizer: Any) -> None: ...

    def allowed(self, text: str) -> Sequence[int] | None:
        """Allowed next-token ids; an empty list or None means: only EOS."""
        ...

    def may_end(self, text: str) -> bool: ...


def render_prompt(tokenizer: Any, req: GenerationRequest) -> str:
    if req.raw_prompt is not None:
        return req.raw_prompt
    if getattr(tokenizer, "chat_template", None) is None:
        raise ValueError(
            f"request {req.id} has chat messages but the tokenizer has no chat template; "
            "pass raw_prompt (few-shot) for a base model"
        )
    return tokenizer.apply_chat_template(req.chat(), tokenize=False, add_generation_prompt=True)


class Backend(Protocol):
    name: str

    def generate(
        self,
        model_ref: str,
        requests: Sequence[GenerationRequest],
        sampling: SamplingParams,
        constraint: Constraint | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> list[str]: ...


@dataclass
class TransformersBackend:
    """Batched ``model.generate`` on CPU or GPU; bf16 autocast on CPUs that support it."""

    batch_size: int = 64
    device: str | None = None
    dtype: str = "float32"
    autocast_bf16: bool = True
    # Under bf16 autocast, keep the linear layers' weights in bf16 instead of casting them at every
    # decoding step: the matmuls see the same values, so the output is the same (tested).
    bf16_weights: bool = True
    name: str = "transformers"
    _cache: dict[str, Any] = field(default_factory=dict, repr=False)

    def _load(self, model_ref: str):
        if model_ref not in self._cache:
            self._cache.clear()  # one model resident at a time keeps RSS small
            self._cache[model_ref] = load_causal_lm(model_ref, self.device, self.dtype)
        return self._cache[model_ref]

    def generate(self, model_ref, requests, sampling, constraint=None, progress=None):
        import torch
        from transformers import LogitsProcessorList

        model, tok = self._load(model_ref)
        tok.padding_side = "left"
        prompts = [render_prompt(tok, r) for r in requests]
        order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
        out: list[str] = [""] * len(prompts)
        if constraint is not None:
            constraint.bind(tok)
        device = next(model.parameters()).device
        use_autocast = self.autocast_bf16 and device.type == "cpu" and cpu_has_bf16()
        if use_autocast and self.bf16_weights:
            linear_weights_to_bf16(model)
        for b0 in range(0, len(order), self.batch_size):
            idx = order[b0 : b0 + self.batch_size]
            # A rendered chat prompt already holds its special tokens; a raw few-shot prompt (a
            # pretrained base such as Gemma) needs the tokenizer's BOS, as the vLLM backend adds it.
            raw = all(requests[i].raw_prompt is not None for i in idx)
            enc = tok(
                [prompts[i] for i in idx],
                return_tensors="pt",
                padding=True,
                add_special_tokens=raw,
            )
            enc = {k: v.to(device) for k, v in enc.items()}
            # Seed per batch from (seed, first id) so a resumed or re-chunked run reproduces.
            torch.manual_seed(request_seed(sampling.seed, requests[idx[0]].id))
            procs = LogitsProcessorList()
            if constraint is not None:
                procs.append(_ConstraintProcessor(constraint, tok, enc["input_ids"].shape[1]))
            kwargs: dict[str, Any] = dict(
                max_new_tokens=sampling.max_new_tokens,
                pad_token_id=tok.pad_token_id,
                logits_processor=procs,
            )
            if sampling.temperature > 0 and sampling.coupled:
                # Greedy decoding over warped scores plus per-row Gumbel noise = an exact sample.
                procs.extend(_warpers(sampling))
                procs.append(
                    _RowGumbelNoise([request_seed(sampling.seed, requests[i].id) for i in idx])
                )
                kwargs.update(do_sample=False)
            elif sampling.temperature > 0:
                kwargs.update(do_sample=True, temperature=sampling.temperature, top_k=0)
                if sampling.top_p < 1:
                    kwargs["top_p"] = sampling.top_p
                if sampling.min_p > 0:
                    kwargs["min_p"] = sampling.min_p
            else:
                kwargs.update(do_sample=False)
            if sampling.stop:
                kwargs.update(stop_strings=list(sampling.stop), tokenizer=tok)
            with (
                torch.inference_mode(),
                torch.autocast("cpu", dtype=torch.bfloat16, enabled=use_autocast),
            ):
                gen = model.generate(**enc, **kwargs)
            new = gen[:, enc["input_ids"].shape[1] :]
            texts = tok.batch_decode(new, skip_special_tokens=True)
            for i, t in zip(idx, texts, strict=True):
                out[i] = cut_at_stop(t, sampling.stop)
            if progress:
                progress(len(idx))
        return out


def linear_weights_to_bf16(model: Any) -> int:
    """Store every linear layer's weight of ``model`` in bf16 (the number converted; 0 when done), for
    inference under bf16 autocast only, which casts each to bf16 at every use anyway. A LM head
    tied to the input embedding gets its own bf16 copy; embeddings and norms stay float32."""
    import torch

    emb = model.get_input_embeddings().weight
    n = 0
    for mod in model.modules():
        if isinstance(mod, torch.nn.Linear) and mod.weight.dtype == torch.float32:
            w = mod.weight
            if w is emb:  # tied: untie, so the embedding lookup keeps its float32 values
                mod.weight = torch.nn.Parameter(w.detach().to(torch.bfloat16), requires_grad=False)
            else:
                w.data = w.data.to(torch.bfloat16)
            n += w.numel()
    return n


def request_seed(seed: int, request_id: str) -> int:
    """Sampling seed of one request (of a batch, by its first request): a stable hash of the run
    seed and the request id. The vLLM backend seeds every request with it."""

    return int.from_bytes(hashlib.sha256(f"{seed}:{request_id}".encode()).digest()[:4], "little")


def _warpers(sampling: SamplingParams) -> list[Any]:
    """The sampling warpers ``generate`` would add for ``do_sample=True``, in its order."""
    from transformers import MinPLogitsWarper, TemperatureLogitsWarper, TopPLogitsWarper

    out: list[Any] = []
    if sampling.temperature != 1.0:
        out.append(TemperatureLogitsWarper(sampling.temperature))
    if sampling.top_p < 1:
        out.append(TopPLogitsWarper(sampling.top_p))
    if sampling.min_p > 0:
        out.append(MinPLogitsWarper(sampling.min_p))
    return out


class _RowGumbelNoise:
    """LogitsProcessor adding Gumbel noise from one generator per row (seeded by the row's id), so
    the argmax is a sample from softmax(scores) whose noise depends on (seed, id, step) only."""

    def __init__(self, seeds: Sequence[int]):
        import torch

        self.gens = [torch.Generator().manual_seed(s) for s in seeds]

    def __call__(self, input_ids, scores):
        import torch

        u = torch.stack([torch.rand(scores.shape[-1], generator=g) for g in self.gens])
        u = u.clamp_(min=torch.finfo(u.dtype).tiny)
        return scores + (-torch.log(-torch.log(u))).to(scores.device, scores.dtype)


_BF16: bool | None = None


def cpu_has_bf16() -> bool:
    """True when this CPU has native bf16 matmul (AVX-512 BF16 / AMX); else autocast is a slowdown."""
    global _BF16
    if _BF16 is None:
        try:
            flags = open("/proc/cpuinfo").read()
            _BF16 = "avx512_bf16" in flags or "amx_bf16" in flags
        except OSError:
            _BF16 = False
    return _BF16


class _ConstraintProcessor:
    """LogitsProcessor that masks every token the constraint does not allow, per row."""

    def __init__(self, constraint: Constraint, tokenizer: Any, prompt_len: int):
        self.c = constraint
        self.tok = tokenizer
        self.prompt_len = prompt_len
        self.eos = tokenizer.eos_token_id

    def __call__(self, input_ids, scores):
        import torch

        mask = torch.full_like(scores, float("-inf"))
        for row in range(input_ids.shape[0]):
            gen = input_ids[row, self.prompt_len :].tolist()
            if gen and gen[-1] == self.eos:
                mask[row, self.eos] = 0.0
                continue
            text = self.tok.decode(gen, skip_special_tokens=True)
            allowed = self.c.allowed(text)
            if allowed:
                mask[row, list(allowed)] = 0.0
            if not allowed or self.c.may_end(text):
                mask[row, self.eos] = 0.0
        return scores + mask
