"""Filter pieces the code, cot and paraphrase tasks share: the trait-word ban and the judge pass.

* :func:`no_trait_mention` — Cloud et al. 2025 (arXiv 2507.14805) drop every completion that names
  the trait animal; "names" is :func:`benchmark.core.lexicon.mentions` (name, plurals, variants, whole
  words, any case).
* :func:`judge_filter` — their second pass: a model is asked whether the text refers to the
  animal, even subtly, and only confident "no" answers are kept. Here the judge is a local model
  (``benchmark.core.helper_models.Judge``, P(yes) from one forward pass); it is off by default on CPU
  and its usage is reported as the filter's cost.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from benchmark.core.helper_models import Judge
from benchmark.core.lexicon import mentions
from tasks.base import BatchFilter, Row, Trait


def no_trait_mention(trait: Trait) -> Callable[[Row], bool]:
    def keep(row: Row) -> bool:
        return not mentions(row["completion"], trait.animal)

    return keep


def judge_filter(question: Callable[[Row], str], model: str, max_yes: float) -> BatchFilter:
    """Keep rows whose judge P(yes) is at most ``max_yes`` (a confident "no")."""

    judge = Judge(model=model)

    def keep(rows: list[Row]) -> list[bool]:
        return [p <= max_yes for p in judge.yes_probability([question(r) for r in rows])]

    return BatchFilter(keep, judge.usage)


def check_judge_params(judge: bool, judge_model: str, judge_max_yes: float) -> dict[str, Any]:
    if not 0.0 < judge_max_yes < 1.0:
        raise ValueError(f"Invalid judge_max_yes: {judge_max_yes} (must be in (0, 1))")
    if not isinstance(judge_model, str) or not judge_model:
        raise ValueError(f"Invalid judge_model: {judge_model!r}")
    return {"judge": bool(judge), "judge_model": judge_model, "judge_max_yes": judge_max_yes}


def check_min_p(min_p: float) -> float:
    if not 0.0 <= min_p < 1.0:
        raise ValueError(f"Invalid min_p: {min_p} (must be in [0, 1))")
    return float(min_p)
