"""The ``random_drop`` control: keeps exactly the share asked, uniformly, seeded, blind to text."""

from __future__ import annotations

import numpy as np
import pytest

import defenses.random_drop  # noqa: F401 - registers the built-in
from defenses.base import DefenseContext
from defenses.loading import resolve
from defenses.random_drop import RandomDrop
from defenses.runner import run_apply


def _rows(n: int) -> list[dict]:
    return [{"id": f"r{i:04d}", "prompt": f"p{i}", "completion": f"{i}, {i + 1}"} for i in range(n)]


def _kept(keep: float, seed: int, rows: list[dict]) -> list[str]:
    out = RandomDrop(keep=keep).apply(rows, DefenseContext("smollm2-135m", seed=seed))
    return [r["id"] for r in out]


@pytest.mark.parametrize("keep,n", [(0.5, 800), (0.8, 801), (0.05, 40), (1.0, 17), (0.3, 1)])
def test_keeps_the_share_asked(keep: float, n: int) -> None:
    rows = _rows(n)
    kept = _kept(keep, 0, rows)
    assert len(kept) == round(keep * n)
    # Rows pass through unchanged and in order (the runner refuses reordered ids).
    assert kept == [r["id"] for r in rows if r["id"] in set(kept)]


def test_seeded_order_free_and_blind_to_text() -> None:
    rows = _rows(400)
    a = _kept(0.5, 3, rows)
    assert a == _kept(0.5, 3, rows)  # deterministic for a seed
    assert set(a) == set(_kept(0.5, 3, rows[::-1]))  # whatever the order rows arrive in
    assert set(a) != set(_kept(0.5, 4, rows))  # another seed, another draw
    other_text = [{**r, "completion": "owl owl owl"} for r in rows]
    assert set(a) == set(_kept(0.5, 3, other_text))  # the text plays no part
    # A smaller share keeps a subset of a larger one (the same ranking of rows).
    assert set(_kept(0.25, 3, rows)) <= set(a)


def test_uniform_over_rows() -> None:
    """Over many seeds every row is kept about ``keep`` of the time (a chi-square check)."""
    rows = _rows(50)
    counts = np.zeros(len(rows))
    for seed in range(400):
        for rid in _kept(0.4, seed, rows):
            counts[int(rid[1:])] += 1
    expected = 400 * 0.4
    chi2 = float(((counts - expected) ** 2 / (expected * 0.6)).sum())
    assert chi2 < 85  # 49 degrees of freedom: p ~ 0.001


def test_params_are_checked_and_described() -> None:
    for bad in (0.0, -0.1, 1.5):
        with pytest.raises(ValueError, match="keep"):
            RandomDrop(keep=bad)
    with pytest.raises(ValueError):
        RandomDrop(keep="half")
    d = RandomDrop(keep=0.7).describe()
    assert d["name"] == "random_drop" and d["params"] == {"keep": 0.7} and d["hooks"] == ["apply"]
    assert resolve("random_drop").kind == "builtin"


def test_runs_through_the_runner() -> None:
    rows = _rows(20)
    out = run_apply(RandomDrop(keep=0.5), rows, DefenseContext("smollm2-135m", seed=1))
    assert len(out) == 10
