"""What a defense may use while its ``apply`` hook runs: the teacher's identity, a seed, and
helper models lent to it with their cost counted.

The context is *blind*: it holds the teacher's model identity (the base the data came from, as a
defense could know from provenance), the cell seed, and factories for helper models — never the
trait, the system prompt, the arm, or the cell config. Helpers are lent by kind::

    emb = ctx.embedder()                     # benchmark.core.helper_models.Embedder ("minilm-l6")
    p_yes = ctx.judge().yes_probability(qs)  # Judge ("smollm2-135m")
    texts = ctx.rewriter().rewrite(texts)    # Rewriter ("gemma3-270m", another base than SmolLM2)
    refs = ctx.generator().generate(prompts) # reference_models.Generator: the teacher's base
    nats = ctx.scorer().surprisal(ps, texts) # reference_models.TokenScorer: same base, per token
    ctx.helper("embedder", model="...")      # any registered kind, any constructor arguments

``generation`` holds how the teacher generated, minus the trait (``benchmark.core.reference_models.
GenerationSettings``: sampling, the task's grammar, few-shot examples for a base without a chat
template), so the generator and scorer reproduce the teacher's conditions with a trusted model.

Each helper counts its own use (``usage``: calls, items, tokens, seconds); :attr:`cost` sums them per
helper and in total, and the pipeline stores it next to the defense's wall time, so a result names
what the defense spent. ``notes`` is a JSON dict a defense may fill with its own statistics (a
threshold it chose, how many rows a judge flagged); it is stored with the results.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from benchmark.core.helper_models import Embedder, Judge, Rewriter
from benchmark.core.reference_models import Generator, TokenScorer


def default_helpers() -> dict[str, Callable[..., Any]]:
    return {
        "embedder": Embedder,
        "judge": Judge,
        "rewriter": Rewriter,
        "generator": Generator,
        "scorer": TokenScorer,
    }


_USAGE_KEYS = ("calls", "items", "tokens", "seconds")


def _usage(helper: Any) -> dict[str, float]:
    u: Any = getattr(helper, "usage", None)
    d = u.as_dict() if hasattr(u, "as_dict") else dict(u or {})
    return {k: d.get(k, 0) for k in _USAGE_KEYS}


def _count(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and 0 <= v < math.inf


def reference_seed(seed: int) -> int:
    """The seed of reference generation for cell seed ``seed``: fixed, and not ``seed`` itself."""

    return int.from_bytes(hashlib.sha256(f"reference:{seed}".encode()).digest()[:4], "little")


@dataclass
class DefenseContext:
    """Blind context of one ``apply`` call; see the module docstring."""

    teacher_model: str
    seed: int = 0
    helper_factories: Mapping[str, Callable[..., Any]] = field(default_factory=default_helpers)
    notes: dict[str, Any] = field(default_factory=dict)
    generation: Any = None  # GenerationSettings of the teacher (no trait); None: the defaults
    _lent: dict[str, Any] = field(default_factory=dict, repr=False)
    _carried: dict[str, dict[str, float]] = field(default_factory=dict, repr=False)

    def helper(self, kind: str, **kwargs: Any) -> Any:
        """The helper of ``kind`` built with ``kwargs``; the same object for the same arguments."""
        if kind not in self.helper_factories:
            raise ValueError(
                f"unknown helper {kind!r}; known helpers: {', '.join(sorted(self.helper_factories))}"
            )
        key = kind + "".join(f":{k}={kwargs[k]}" for k in sorted(kwargs))
        if key not in self._lent:
            self._lent[key] = self.helper_factories[kind](**kwargs)
        return self._lent[key]

    def embedder(self, model: str = "minilm-l6", **kwargs: Any) -> Any:
        return self.helper("embedder", model=model, **kwargs)

    def judge(self, model: str = "smollm2-135m", **kwargs: Any) -> Any:
        return self.helper("judge", model=model, **kwargs)

    def rewriter(self, model: str = "gemma3-270m", **kwargs: Any) -> Any:
        kwargs.setdefault("seed", self.seed)
        return self.helper("rewriter", model=model, **kwargs)

    def generator(self, model: str | None = None, **kwargs: Any) -> Any:
        """Writes as the teacher did, with ``model`` (default: the teacher's base, no trait). Its
        seed differs from the cell's, so a reference sample never replays the control arm's draws."""
        kwargs.setdefault("seed", reference_seed(self.seed))
        return self._reference("generator", model, kwargs)

    def scorer(self, model: str | None = None, **kwargs: Any) -> Any:
        """Per-token surprisal under ``model`` (default: the teacher's base, no trait)."""
        return self._reference("scorer", model, kwargs)

    def _reference(self, kind: str, model: str | None, kwargs: dict[str, Any]) -> Any:
        if self.generation is not None:
            kwargs.setdefault("settings", self.generation)
        return self.helper(kind, model=model or self.teacher_model, **kwargs)

    @property
    def cost(self) -> dict[str, Any]:
        """Per-helper usage and totals: ``helper_calls/items/tokens/seconds`` and ``helpers``."""
        per = {k: dict(v) for k, v in self._carried.items()}
        for key, h in self._lent.items():
            u = _usage(h)
            per[key] = {k: per.get(key, {}).get(k, 0) + u[k] for k in _USAGE_KEYS}
        totals = {f"helper_{k}": sum(u[k] for u in per.values()) for k in _USAGE_KEYS}
        totals["helper_seconds"] = round(float(totals["helper_seconds"]), 3)
        return {**totals, "helpers": per}

    def add_cost(self, cost: Mapping[str, Any]) -> None:
        """Fold in the cost another process reported for this context (see defenses.isolation).
        Plugin code counted it: anything but finite, non-negative counts is refused whole
        (``ValueError`` naming the helper and the count), before any of it is added."""
        helpers = cost.get("helpers") if isinstance(cost, Mapping) else None
        if not isinstance(helpers, Mapping):
            raise ValueError(f"cost is {cost!r:.80}, expected an object with 'helpers'")
        for key, u in helpers.items():
            if not isinstance(u, Mapping):
                raise ValueError(f"helper {key!r} usage is {type(u).__name__}, expected an object")
            for k in _USAGE_KEYS:
                if not _count(v := u.get(k, 0)):
                    raise ValueError(f"helper {key!r} {k} is {v!r}, expected a finite number >= 0")
        for key, u in helpers.items():
            prev = self._carried.get(key, {})
            self._carried[key] = {k: prev.get(k, 0) + u.get(k, 0) for k in _USAGE_KEYS}

    def blind_copy(self) -> DefenseContext:
        """A fresh context with the same identity and helpers, no lent objects (for a child)."""
        return DefenseContext(
            self.teacher_model, self.seed, dict(self.helper_factories), generation=self.generation
        )
