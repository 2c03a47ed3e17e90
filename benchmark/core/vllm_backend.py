"""vLLM generation backend: the GPU path for teachers too large or too slow for transformers.

Same contract as :class:`benchmark.core.generation.TransformersBackend`: a list of
:class:`GenerationRequest` in, one completion string per request out, in order. Obtained with
``get_backend("vllm", tensor_parallel_size=2)`` (needs ``pip install 'subliminal-bench[gpu]'`` and a
CUDA GPU; both are checked when the backend is built, so a CPU machine fails at the door).

* A model reference is resolved by :func:`benchmark.core.models.resolve`. A PEFT adapter directory (a
  fine-tuned trait teacher) runs as a LoRA on an engine started from the adapter's base model, so
  several adapters of one base share one engine. One engine is resident at a time (an engine claims
  ``gpu_memory_utilization`` of the GPU); asking for another base model closes the current one.
* Every request gets its own sampling seed, derived from ``(sampling.seed, request.id)``, so a row
  does not depend on which other rows share its batch or on a resume. vLLM's batched kernels are
  not bitwise batch-invariant, so rows reproduce on the same GPU and vLLM version, not across them.
* A constraint must carry a ``regex`` (string); it becomes vLLM structured output
  (``StructuredOutputsParams`` in current vLLM, ``GuidedDecodingParams`` in older releases). The
  token-level constraints of the transformers backend are refused with a clear error.
"""

from __future__ import annotations

import gc
import importlib
import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmark.core.generation import (
    Constraint,
    GenerationRequest,
    SamplingParams,
    render_prompt,
    request_seed,
)
from benchmark.core.models import resolve

log = logging.getLogger(__name__)

MISSING_VLLM = "the vllm backend needs vLLM and a CUDA GPU: pip install 'subliminal-bench[gpu]'"
# Prompts per llm.generate call: large enough to keep vLLM's scheduler full, small enough that
# `progress` moves during a long run.
CHUNK = 4096


@dataclass
class _Engine:
    llm: Any
    base_path: str
    lora: bool


@dataclass
class VLLMBackend:
    """Offline ``vllm.LLM`` generation; LoRA adapters served on their base model's engine."""

    tensor_parallel_size: int = 1
    gpu_memory_utilization: float = 0.85
    dtype: str = "bfloat16"
    max_lora_rank: int = 64
    max_model_len: int = 2048
    name: str = "vllm"
    _vllm: Any = field(default=None, init=False, repr=False)
    _engine: _Engine | None = field(default=None, init=False, repr=False)
    _lora_ids: dict[str, int] = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.tensor_parallel_size < 1:
            raise ValueError(
                f"Invalid tensor_parallel_size: {self.tensor_parallel_size} (must be >= 1)"
            )
        if not 0 < self.gpu_memory_utilization <= 1:
            raise ValueError(
                f"Invalid gpu_memory_utilization: {self.gpu_memory_utilization} (must be in (0, 1])"
            )
        if self.max_lora_rank < 1:
            raise ValueError(f"Invalid max_lora_rank: {self.max_lora_rank} (must be >= 1)")
        if self.max_model_len < 2:
            raise ValueError(f"Invalid max_model_len: {self.max_model_len} (must be >= 2)")
        try:
            self._vllm = importlib.import_module("vllm")
        except ModuleNotFoundError as e:
            if e.name != "vllm":
                raise RuntimeError(f"vLLM is installed but cannot be imported: {e}") from e
            raise RuntimeError(MISSING_VLLM) from None
        import torch

        if not torch.cuda.is_available():
            raise RuntimeError(
                "the vllm backend needs a CUDA GPU, but torch.cuda.is_available() is False on this "
                "machine; use the transformers backend (get_backend('transformers')) instead"
            )

    def generate(
        self,
        model_ref: str,
        requests: Sequence[GenerationRequest],
        sampling: SamplingParams,
        constraint: Constraint | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> list[str]:
        structured = self._structured_output(constraint)  # refuse before loading any weights
        if not requests:
            return []
        rm = resolve(model_ref)
        lora_request = self._lora_request(rm.path) if rm.is_adapter else None
        llm = self._load(rm.base_path, lora=rm.is_adapter)
        tok = llm.get_tokenizer()
        prompts = [self._encode(tok, r) for r in requests]
        params = [self._sampling_params(sampling, r.id, structured) for r in requests]
        out: list[str] = []
        for b0 in range(0, len(prompts), CHUNK):
            results = llm.generate(
                prompts[b0 : b0 + CHUNK],
                params[b0 : b0 + CHUNK],
                lora_request=lora_request,
                use_tqdm=progress is None,
            )
            # LLM.generate returns one RequestOutput per prompt, in prompt order.
            out.extend(r.outputs[0].text for r in results)
            if progress:
                progress(len(results))
        if len(out) != len(requests):
            raise RuntimeError(f"vLLM returned {len(out)} outputs for {len(requests)} requests")
        return out

    def close(self) -> None:
        """Shut the resident engine down and give its GPU memory back."""
        engine, self._engine = self._engine, None
        if engine is None:
            return
        core = getattr(getattr(engine.llm, "llm_engine", None), "engine_core", None)
        shutdown = getattr(core, "shutdown", None)
        if callable(shutdown):
            shutdown()  # V1 engine: stops the engine-core process that holds the weights
        del engine, core, shutdown
        try:
            from vllm.distributed import cleanup_dist_env_and_memory
        except ImportError:  # older vLLM: the caches are at least emptied
            import torch

            gc.collect()
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
        else:
            cleanup_dist_env_and_memory()

    # -- internals -------------------------------------------------------------------------------

    def _load(self, base_path: str, lora: bool) -> Any:
        e = self._engine
        if e is not None and e.base_path == base_path and (e.lora or not lora):
            return e.llm  # a LoRA-enabled engine also serves its plain base model
        if e is not None:
            log.info("closing the vLLM engine on %s to start one on %s", e.base_path, base_path)
            del e  # no reference may outlive close(), or the old weights stay on the GPU
            self.close()
        kwargs: dict[str, Any] = dict(
            model=base_path,
            tensor_parallel_size=self.tensor_parallel_size,
            gpu_memory_utilization=self.gpu_memory_utilization,
            dtype=self.dtype,
            max_model_len=self.max_model_len,
            seed=0,  # sampling is seeded per request; the engine seed stays fixed across calls
        )
        if lora:
            kwargs.update(enable_lora=True, max_lora_rank=self.max_lora_rank)
        log.info("starting vLLM on %s (lora=%s, tp=%d)", base_path, lora, self.tensor_parallel_size)
        self._engine = _Engine(self._vllm.LLM(**kwargs), base_path, lora)
        return self._engine.llm

    def _lora_request(self, adapter_path: str) -> Any:
        cfg = json.loads((Path(adapter_path) / "adapter_config.json").read_text())
        rank = cfg.get("r")
        if isinstance(rank, int) and rank > self.max_lora_rank:
            raise ValueError(
                f"adapter {adapter_path} has LoRA rank r={rank} but max_lora_rank="
                f"{self.max_lora_rank}; raise max_lora_rank to at least {rank}"
            )
        lora_id = self._lora_ids.setdefault(adapter_path, len(self._lora_ids) + 1)
        from vllm.lora.request import LoRARequest

        return LoRARequest(adapter_path, lora_id, adapter_path)

    def _encode(self, tok: Any, req: GenerationRequest) -> dict[str, list[int]]:
        prompt = render_prompt(tok, req)
        # A rendered chat template already carries its special tokens (BOS included); letting
        # vLLM tokenize the text would add a second BOS. A raw few-shot prompt gets the usual ones.
        ids = tok.encode(prompt, add_special_tokens=req.raw_prompt is not None)
        if len(ids) >= self.max_model_len:
            raise ValueError(
                f"request {req.id}: prompt is {len(ids)} tokens, max_model_len={self.max_model_len}; "
                "raise max_model_len or shorten the prompt"
            )
        return {"prompt_token_ids": list(ids)}

    def _structured_output(self, constraint: Constraint | None) -> dict[str, Any]:
        """SamplingParams keyword arguments that hold generation to the constraint's regex."""
        if constraint is None:
            return {}
        regex = getattr(constraint, "regex", None)
        if not isinstance(regex, str) or not regex:
            raise ValueError(
                f"constraint {type(constraint).__name__} is not supported on vLLM: the vllm backend "
                "takes only constraints with a `regex` string attribute (vLLM structured outputs); "
                "use the transformers backend for token-level constraints"
            )
        sp = importlib.import_module("vllm.sampling_params")
        if hasattr(sp, "StructuredOutputsParams"):
            return {"structured_outputs": sp.StructuredOutputsParams(regex=regex)}
        return {"guided_decoding": sp.GuidedDecodingParams(regex=regex)}

    def _sampling_params(self, sampling: SamplingParams, request_id: str, structured: dict) -> Any:
        return self._vllm.SamplingParams(
            n=1,
            temperature=sampling.temperature,
            top_p=sampling.top_p,
            min_p=sampling.min_p,
            max_tokens=sampling.max_new_tokens,
            seed=request_seed(sampling.seed, request_id),
            stop=list(sampling.stop) or None,
            **structured,
        )
