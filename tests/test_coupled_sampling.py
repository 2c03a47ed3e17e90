"""Coupled sampling (``SamplingParams.coupled``): per-row Gumbel-max noise shared by both arms."""

from __future__ import annotations

import pytest
import torch

from benchmark.core.generation import (
    GenerationRequest,
    SamplingParams,
    TransformersBackend,
    _RowGumbelNoise,
)
from tasks.numbers import NumbersTask


def _draw(scores: torch.Tensor, seeds: list[int], steps: int = 1) -> torch.Tensor:
    """Tokens picked by argmax(scores + noise) for each row, ``steps`` times: (steps, rows)."""
    noise = _RowGumbelNoise(seeds)
    return torch.stack([noise(None, scores.clone()).argmax(-1) for _ in range(steps)])


def test_gumbel_max_is_an_exact_sample_of_the_softmax() -> None:
    probs = torch.tensor([0.5, 0.3, 0.15, 0.05])
    n = 20000
    picks = _draw(probs.log().expand(n, 4), list(range(n)))[0]
    freq = torch.bincount(picks, minlength=4).float() / n
    # 4 standard errors at n=20000 is < 0.015 for every p here; the draw is seeded, so not flaky.
    assert torch.allclose(freq, probs, atol=0.015), freq
    # -inf (a grammar's masked token) is never picked.
    masked = probs.log().clone()
    masked[0] = float("-inf")
    assert (_draw(masked.expand(2000, 4), list(range(2000)))[0] != 0).all()


def test_noise_depends_on_the_row_seed_and_step_only() -> None:
    scores = torch.zeros(3, 50)
    alone = _draw(scores[:1], [7], steps=5)[:, 0]
    in_batch = _draw(scores, [3, 7, 11], steps=5)[:, 1]
    assert torch.equal(alone, in_batch)  # the batch around a row does not change its draws
    assert len(set(alone.tolist())) > 1  # successive steps get fresh noise


def test_shared_noise_couples_close_distributions() -> None:
    """The reason for the option: two nearby distributions sampled with the same per-row noise pick
    the same token far more often than independent samples do."""
    p = torch.softmax(torch.randn(30, generator=torch.Generator().manual_seed(0)), -1)
    q = p.clone()
    q[0] += 0.05  # the "trait": one token made more likely
    q /= q.sum()
    n = 4000
    a = _draw(p.log().expand(n, 30), list(range(n)))[0]
    b_shared = _draw(q.log().expand(n, 30), list(range(n)))[0]
    b_indep = _draw(q.log().expand(n, 30), list(range(n, 2 * n)))[0]
    same_shared = (a == b_shared).float().mean().item()
    same_indep = (a == b_indep).float().mean().item()
    assert same_shared > 0.9 > 0.3 > same_indep, (same_shared, same_indep)
    # Where they differ, the trait arm moved toward the token the trait made more likely.
    diff = a != b_shared
    assert (b_shared[diff] == 0).float().mean() > 0.9


def test_sampling_dict_omits_the_flag_when_off() -> None:
    """Stage keys of generations made before the flag existed do not change."""
    from benchmark.run.presets import preset
    from benchmark.run.suite import cell_name

    assert "coupled" not in SamplingParams().to_dict()
    assert SamplingParams(coupled=True).to_dict()["coupled"] is True
    # The committed results carry these names: the first quick preset (bare-base control,
    # submissions/none/results/quick-bare-control/) and the current one (.../results/quick/).
    base_control = preset("quick", task="numbers", seed=0, settings=["teacher.placebo=null"])
    assert cell_name(base_control) == "numbers__none__owl__seed0__90de8d8a"
    assert cell_name(preset("quick", seed=0)) == "numbers__none__owl__seed0__042c225b"


def test_coupled_generation_is_per_row_on_the_real_model(smollm_dir: str) -> None:
    task = NumbersTask()
    reqs = [GenerationRequest(r["id"], (("user", r["prompt"]),)) for r in task.prompts(4, 0)]
    sp = SamplingParams(max_new_tokens=16, seed=3, coupled=True)  # short: the property is per token
    be = TransformersBackend(batch_size=4, autocast_bf16=False)
    out = be.generate("smollm2-135m", reqs, sp, task.constraint(True))
    # Other batch sizes and another order give each row the same text: its noise is its own.
    one = TransformersBackend(batch_size=1, autocast_bf16=False, _cache=be._cache)
    rev = one.generate("smollm2-135m", reqs[::-1], sp, task.constraint(True))
    assert rev[::-1] == out
    assert len(set(out)) == 4 and out != be.generate(
        "smollm2-135m",
        reqs,
        SamplingParams(max_new_tokens=16, seed=4, coupled=True),
        task.constraint(True),
    )


@pytest.mark.parametrize("t", [0.7, 1.0])
def test_coupled_temperature_is_applied(t: float) -> None:
    from benchmark.core.generation import _warpers

    kinds = [type(w).__name__ for w in _warpers(SamplingParams(temperature=t, top_p=0.9))]
    assert kinds == (["TemperatureLogitsWarper"] if t != 1.0 else []) + ["TopPLogitsWarper"]
