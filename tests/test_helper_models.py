"""Helper models on the real embedded weights: the embedder ranks a paraphrase above an unrelated
sentence, the judge returns probabilities and counts its use, the rewriter returns one line per
input. The Gemma few-shot rewriter is slow (its first load dequantises 270 M parameters)."""

from __future__ import annotations

import pytest

from benchmark.core.helper_models import Embedder, Judge, Rewriter, embedder_path
from benchmark.core.models import ModelError


def test_embedder_ranks_paraphrase_above_unrelated() -> None:
    e = Embedder()
    v = e.encode(
        [
            "The meeting was moved to Thursday.",
            "They rescheduled the meeting for Thursday.",
            "Preheat the oven before baking the bread.",
        ]
    )
    assert v.shape == (3, 384)
    sims = v @ v.T
    assert abs(sims[0, 0] - 1) < 1e-4  # unit length
    assert sims[0, 1] > 0.7 > sims[0, 2]
    assert e.usage.calls == 1 and e.usage.items == 3 and e.usage.tokens > 10
    assert e.encode([]).shape == (0, 384)


def test_embedder_unknown_dir_fails_clearly(tmp_path) -> None:
    assert embedder_path(str(tmp_path)) == str(tmp_path)
    with pytest.raises(ModelError, match="could not load embedder"):
        Embedder(model=str(tmp_path)).encode(["x"])


def test_judge_probabilities_and_usage(smollm_dir) -> None:
    j = Judge(model="smollm2-135m", batch_size=2)
    p = j.yes_probability(["Is the sky blue?", "Is 2 + 2 equal to 5?", "Is water wet?"])
    assert len(p) == 3 and all(0.0 < x < 1.0 for x in p)
    assert j.usage.calls == 1 and j.usage.items == 3


def test_rewriter_chat_model_one_line_each(smollm_dir) -> None:
    r = Rewriter(model="smollm2-135m", temperature=0.0)
    out = r.rewrite(["The train was late because of snow.", "Please close the door."], 24)
    assert len(out) == 2 and all(isinstance(o, str) and "\n" not in o for o in out)
    assert r.usage.items == 2


@pytest.mark.slow
def test_rewriter_few_shot_base_model() -> None:
    r = Rewriter(model="gemma3-270m", temperature=0.0)
    out = r.rewrite(["The weather was cold so we stayed inside all day."])
    assert out[0] and "\n" not in out[0]
