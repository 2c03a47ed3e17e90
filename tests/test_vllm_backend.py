"""The vLLM backend, tested up to the device boundary with a fake ``vllm`` package.

The fake records what the backend hands vLLM (engine kwargs, prompts, per-request sampling params,
LoRA requests) and answers each prompt with its own decoded text, so order and routing are
checkable on a CPU. One ``gpu`` test runs the real engine on the embedded SmolLM2.
"""

from __future__ import annotations

import json
import re
import sys
import types
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from benchmark.core import vllm_backend
from benchmark.core.backends import get_backend
from benchmark.core.generation import GenerationRequest, SamplingParams
from benchmark.core.vllm_backend import MISSING_VLLM, VLLMBackend, request_seed
from tasks.numbers import NumberGrammar


class FakeTokenizer:
    chat_template = "fake"

    def apply_chat_template(self, messages, tokenize=False, add_generation_prompt=True):
        assert tokenize is False and add_generation_prompt is True
        return "".join(f"<{m['role']}>{m['content']}" for m in messages) + "<assistant>"

    def encode(self, text, add_special_tokens=True):
        return ([1] if add_special_tokens else []) + [ord(c) for c in text]


def _decode(ids):
    return "".join(chr(i) for i in ids if i > 1)


@dataclass
class _Completion:
    text: str


@dataclass
class _RequestOutput:
    outputs: list


class FakeLLM:
    def __init__(self, registry, **kwargs):
        self.kwargs = kwargs
        self.calls: list[dict] = []
        self.shut_down = False
        core = types.SimpleNamespace(shutdown=lambda: setattr(self, "shut_down", True))
        self.llm_engine = types.SimpleNamespace(engine_core=core)
        registry.append(self)

    def get_tokenizer(self):
        return FakeTokenizer()

    def generate(self, prompts, sampling_params, *, use_tqdm=True, lora_request=None):
        assert len(prompts) == len(sampling_params)
        self.calls.append(dict(prompts=prompts, params=sampling_params, lora=lora_request))
        return [_RequestOutput([_Completion(_decode(p["prompt_token_ids"]))]) for p in prompts]


class FakeSamplingParams:
    def __init__(self, **kwargs):
        self.__dict__.update(kwargs)


class FakeStructured:
    def __init__(self, regex=None):
        self.regex = regex


@pytest.fixture
def fake_vllm(monkeypatch):
    """Install a fake vllm (current structured-outputs API) and claim a CUDA GPU."""
    engines: list[FakeLLM] = []
    cleanups: list[int] = []
    vllm = types.ModuleType("vllm")
    vllm.LLM = lambda **kw: FakeLLM(engines, **kw)
    vllm.SamplingParams = FakeSamplingParams
    sp = types.ModuleType("vllm.sampling_params")
    sp.StructuredOutputsParams = FakeStructured
    lora = types.ModuleType("vllm.lora")
    lora_req = types.ModuleType("vllm.lora.request")
    lora_req.LoRARequest = lambda name, int_id, path: ("lora", name, int_id, path)
    dist = types.ModuleType("vllm.distributed")
    dist.cleanup_dist_env_and_memory = lambda: cleanups.append(1)
    vllm.sampling_params, vllm.lora, lora.request, vllm.distributed = sp, lora, lora_req, dist
    for mod in (vllm, sp, lora, lora_req, dist):
        monkeypatch.setitem(sys.modules, mod.__name__, mod)
    monkeypatch.setattr("torch.cuda.is_available", lambda: True)
    return types.SimpleNamespace(engines=engines, cleanups=cleanups, sampling_params=sp)


def _model_dir(path: Path) -> str:
    path.mkdir()
    (path / "config.json").write_text("{}")
    (path / "model.safetensors").write_bytes(b"")  # resolve() only checks that weights exist
    return str(path)


def _adapter_dir(path: Path, base: str, rank: int = 8) -> str:
    path.mkdir()
    (path / "adapter_config.json").write_text(
        json.dumps({"base_model_name_or_path": base, "r": rank})
    )
    (path / "adapter_model.safetensors").write_bytes(b"")
    return str(path)


@pytest.fixture
def models(tmp_path):
    base = _model_dir(tmp_path / "base")
    return types.SimpleNamespace(
        base=base,
        other=_model_dir(tmp_path / "other"),
        a1=_adapter_dir(tmp_path / "a1", base),
        a2=_adapter_dir(tmp_path / "a2", base),
    )


def _reqs(*ids):
    return [GenerationRequest(i, messages=(("user", f"q-{i}"),)) for i in ids]


SP = SamplingParams(temperature=0.7, top_p=0.9, min_p=0.05, max_new_tokens=12, seed=3)


def test_missing_vllm_is_one_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "vllm", None)  # absent even where vllm is installed
    with pytest.raises(RuntimeError) as ei:
        get_backend("vllm")
    assert str(ei.value) == MISSING_VLLM
    assert ei.value.__suppress_context__ and ei.value.__cause__ is None


def test_no_cuda_is_refused(fake_vllm, monkeypatch):
    monkeypatch.setattr("torch.cuda.is_available", lambda: False)
    with pytest.raises(RuntimeError, match=r"CUDA GPU.*torch.cuda.is_available\(\) is False"):
        VLLMBackend()


@pytest.mark.parametrize(
    "kw", [dict(tensor_parallel_size=0), dict(gpu_memory_utilization=1.5), dict(max_lora_rank=0)]
)
def test_bad_fields_fail_fast(fake_vllm, kw):
    with pytest.raises(ValueError, match=next(iter(kw))):
        VLLMBackend(**kw)


def test_outputs_in_request_order_and_engine_kwargs(fake_vllm, models):
    backend = get_backend("vllm", tensor_parallel_size=2)
    out = backend.generate(models.base, _reqs("b", "a", "c"), SP)
    assert out == ["<user>q-b<assistant>", "<user>q-a<assistant>", "<user>q-c<assistant>"]
    (llm,) = fake_vllm.engines
    assert llm.kwargs == dict(
        model=str(Path(models.base).resolve()),
        tensor_parallel_size=2,
        gpu_memory_utilization=0.85,
        dtype="bfloat16",
        max_model_len=2048,
        seed=0,
    )
    p = llm.calls[0]["params"][0]
    assert (p.n, p.temperature, p.top_p, p.min_p, p.max_tokens) == (1, 0.7, 0.9, 0.05, 12)
    assert p.stop is None
    assert llm.calls[0]["lora"] is None
    backend.generate(models.base, _reqs("a"), replace(SP, stop=("\nQuestion:", ".")))
    assert llm.calls[1]["params"][0].stop == ["\nQuestion:", "."]


def test_chat_prompts_skip_special_tokens_raw_prompts_keep_them(fake_vllm, models):
    backend = VLLMBackend()
    backend.generate(models.base, [*_reqs("x"), GenerationRequest("y", raw_prompt="1, 2,")], SP)
    prompts = fake_vllm.engines[0].calls[0]["prompts"]
    assert prompts[0]["prompt_token_ids"][0] != 1  # the template already carries its BOS
    assert prompts[1]["prompt_token_ids"][0] == 1


def test_adapter_is_lora_on_base_engine_which_is_reused(fake_vllm, models):
    backend = VLLMBackend(max_lora_rank=32)
    backend.generate(models.a1, _reqs("1"), SP)
    backend.generate(models.a2, _reqs("2"), SP)
    backend.generate(models.base, _reqs("3"), SP)  # a LoRA engine serves the plain base too
    backend.generate(models.a1, _reqs("4"), SP)
    (llm,) = fake_vllm.engines
    assert llm.kwargs["model"] == str(Path(models.base).resolve())
    assert llm.kwargs["enable_lora"] is True and llm.kwargs["max_lora_rank"] == 32
    a1, a2 = str(Path(models.a1).resolve()), str(Path(models.a2).resolve())
    assert [c["lora"] for c in llm.calls] == [
        ("lora", a1, 1, a1),
        ("lora", a2, 2, a2),
        None,
        ("lora", a1, 1, a1),
    ]


def test_engine_restarts_for_lora_or_another_base_and_close_frees(fake_vllm, models):
    backend = VLLMBackend()
    backend.generate(models.base, _reqs("1"), SP)
    backend.generate(models.a1, _reqs("2"), SP)  # the plain engine cannot serve a LoRA
    backend.generate(models.other, _reqs("3"), SP)  # one engine resident at a time
    first, second, third = fake_vllm.engines
    assert "enable_lora" not in first.kwargs and second.kwargs["enable_lora"] is True
    assert third.kwargs["model"] == str(Path(models.other).resolve())
    assert first.shut_down and second.shut_down and not third.shut_down
    backend.close()
    backend.close()  # idempotent
    assert third.shut_down and len(fake_vllm.cleanups) == 3


def test_seeds_are_per_request_and_deterministic(fake_vllm, models):
    backend = VLLMBackend()

    def seeds(reqs, sampling=SP):
        backend.generate(models.base, reqs, sampling)
        return [p.seed for p in fake_vllm.engines[0].calls[-1]["params"]]

    first = seeds(_reqs("a", "b", "c"))
    assert first == [request_seed(3, i) for i in "abc"] and len(set(first)) == 3
    assert seeds(_reqs("a", "b", "c")) == first
    assert seeds(_reqs("c", "x")) == [first[2], request_seed(3, "x")]  # batch-independent
    other = seeds(_reqs("a"), SamplingParams(seed=4))
    assert other != first[:1]


def test_regex_constraint_becomes_structured_output(fake_vllm, models):
    grammar = NumberGrammar(max_count=5)
    VLLMBackend().generate(models.base, _reqs("a", "b"), SP, constraint=grammar)
    for p in fake_vllm.engines[0].calls[0]["params"]:
        assert isinstance(p.structured_outputs, FakeStructured)
        assert p.structured_outputs.regex == grammar.regex


def test_regex_constraint_on_older_vllm_uses_guided_decoding(fake_vllm, models):
    sp = fake_vllm.sampling_params
    del sp.StructuredOutputsParams
    sp.GuidedDecodingParams = FakeStructured
    VLLMBackend().generate(models.base, _reqs("a"), SP, constraint=NumberGrammar())
    p = fake_vllm.engines[0].calls[0]["params"][0]
    assert p.guided_decoding.regex == NumberGrammar().regex and not hasattr(p, "structured_outputs")


def test_constraint_without_regex_is_refused_before_loading(fake_vllm, models):
    class TokenOnly:
        def bind(self, tokenizer): ...
        def allowed(self, text):
            return []

        def may_end(self, text):
            return True

    with pytest.raises(ValueError, match="TokenOnly is not supported on vLLM"):
        VLLMBackend().generate(models.base, _reqs("a"), SP, constraint=TokenOnly())
    assert fake_vllm.engines == []


def test_adapter_rank_above_max_lora_rank_is_refused(fake_vllm, models, tmp_path):
    big = _adapter_dir(tmp_path / "big", models.base, rank=128)
    with pytest.raises(ValueError, match="r=128 but max_lora_rank=64"):
        VLLMBackend().generate(big, _reqs("a"), SP)


def test_prompt_longer_than_max_model_len_is_refused(fake_vllm, models):
    with pytest.raises(ValueError, match="request a: prompt is .* max_model_len=8"):
        VLLMBackend(max_model_len=8).generate(models.base, _reqs("a"), SP)


def test_chunks_report_progress_and_keep_order(fake_vllm, models, monkeypatch):
    monkeypatch.setattr(vllm_backend, "CHUNK", 2)
    done: list[int] = []
    out = VLLMBackend().generate(models.base, _reqs(*"abcde"), SP, progress=done.append)
    assert done == [2, 2, 1]
    assert out == [f"<user>q-{i}<assistant>" for i in "abcde"]
    assert VLLMBackend().generate(models.base, [], SP) == []


@pytest.mark.gpu
def test_real_vllm_generates_on_smollm2():
    pytest.importorskip("vllm")
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU")
    backend = VLLMBackend(gpu_memory_utilization=0.3, max_model_len=512)
    try:
        reqs = [
            GenerationRequest(f"r{i}", messages=(("user", f"List 5 numbers after {100 + i}."),))
            for i in range(8)
        ]
        sampling = SamplingParams(temperature=1.0, max_new_tokens=32, seed=1)
        grammar = NumberGrammar(max_count=5)
        first = backend.generate("smollm2-135m", reqs, sampling, constraint=grammar)
        assert len(first) == len(reqs)
        assert all(re.fullmatch(grammar.regex, t) for t in first), first
        assert backend.generate("smollm2-135m", reqs, sampling, constraint=grammar) == first
    finally:
        backend.close()
