"""Generation backends by name: the one place that knows both of them.

``get_backend("transformers")`` (any device; ``benchmark.core.generation``) or
``get_backend("vllm", tensor_parallel_size=2)`` (GPUs; ``benchmark.core.vllm_backend``, which imports
vLLM itself only when an engine starts). Keeping the lookup here lets the vLLM backend build on the
shared request and sampling types without the generation module importing it back.
"""

from __future__ import annotations

from typing import Any

from benchmark.core.generation import Backend, TransformersBackend
from benchmark.core.vllm_backend import VLLMBackend

BACKENDS = ("transformers", "vllm")


def get_backend(name: str, **kwargs: Any) -> Backend:
    """Backend by name: ``transformers`` (any device) or ``vllm`` (GPU)."""
    if name == "transformers":
        return TransformersBackend(**kwargs)
    if name == "vllm":
        return VLLMBackend(**kwargs)
    raise ValueError(f"unknown generation backend {name!r}; known: {', '.join(BACKENDS)}")
