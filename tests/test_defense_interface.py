"""The defense interface: typed parameters, describe(), the filter and rewrite templates, the
registry (duplicates refused) and entry points found in an installed distribution."""

from __future__ import annotations

import hashlib
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import pytest

from defenses import (
    Defense,
    DefenseContext,
    FilterDefense,
    RewriteDefense,
    get_defense,
    known_defenses,
)
from defenses.loading import DefenseRegistryError, register_defense, resolve
from defenses.runner import DefenseError, run_apply

ROWS = [{"id": f"r{i}", "prompt": "p", "completion": "x" * i} for i in range(5)]
CTX = DefenseContext(teacher_model="smollm2-135m")


class Typed(Defense):
    """A defense with one parameter of each supported kind."""

    @dataclass(frozen=True)
    class Params:
        k: int = 3
        share: float = 0.5
        mode: Literal["sort", "dedupe"] = "sort"
        words: tuple[str, ...] = ("a",)
        flag: bool = False
        model: str | None = None
        extra: dict[str, int] = field(default_factory=dict)

        def __post_init__(self) -> None:
            if not 0 <= self.share <= 1:
                raise ValueError(f"Invalid share: {self.share} (must be in [0, 1])")


def test_params_are_typed_and_coerced() -> None:
    d = Typed(k=5, share=1, words=["x", "y"], mode="dedupe", extra={"a": 1})
    assert d.params.share == 1.0 and isinstance(d.params.share, float)
    assert d.params.words == ("x", "y")  # JSON lists become declared tuples
    assert d.describe()["params"]["words"] == ["x", "y"]
    assert Typed().params.k == 3


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ({"kk": 1}, r"unknown parameter\(s\) \['kk'\]; accepted: k: int, share: float"),
        ({"k": "3"}, "parameter 'k' expects int, got str '3'"),
        ({"k": True}, "parameter 'k' expects int, got bool"),
        ({"k": 2.5}, "parameter 'k' expects int, got float"),
        ({"mode": "shuffle"}, "parameter 'mode' expects Literal"),
        ({"words": "abc"}, r"parameter 'words' expects tuple\[str, \.\.\.\]"),
        ({"words": ["a", 1]}, "parameter 'words' expects"),
        ({"flag": 1}, "parameter 'flag' expects bool"),
        ({"model": 3}, "parameter 'model' expects str | None"),
        ({"share": 2}, r"defense 'Typed': Invalid share: 2.0 \(must be in \[0, 1\]\)"),
    ],
)
def test_bad_params_are_refused_naming_field_and_type(given, message) -> None:
    with pytest.raises(ValueError, match=message):
        Typed(**given)


def test_get_defense_refuses_unknown_params_of_a_builtin() -> None:
    with pytest.raises(
        ValueError, match="defense 'none' takes no parameters, got \\['strength'\\]"
    ):
        get_defense("none", strength=2)


def test_describe_names_version_params_docstring_hooks_and_source() -> None:
    class Quiet(FilterDefense):  # no docstring: must not inherit FilterDefense's
        def keep(self, row):
            return True

    d = get_defense("none").describe()
    assert d["name"] == "none" and d["version"] == "1" and d["params"] == {}
    assert d["description"].startswith("No defense") and d["hooks"] == []
    assert {k: v for k, v in d["source"].items() if k != "code_sha256"} == {
        "kind": "builtin",
        "module": "defenses.none",
    }
    none_py = Path(__file__).resolve().parents[1] / "defenses" / "none.py"
    assert d["source"]["code_sha256"] == hashlib.sha256(none_py.read_bytes()).hexdigest()
    assert Quiet().describe()["description"] == "" and Quiet().hooks() == ["apply"]
    s = {p["name"]: p for p in Typed().describe()["params_schema"]}
    assert s["mode"]["default"] == "sort" and s["words"]["default"] == ["a"]
    # The stage hash identity of "none" is what it was before describe() grew: stored stages stay valid.
    assert get_defense("none").identity() == {"name": "none", "version": "1", "params": {}}


def test_filter_template_is_a_few_lines() -> None:
    class EvenLength(FilterDefense):
        def keep(self, row):
            return len(row["completion"]) % 2 == 0

    assert [r["id"] for r in run_apply(EvenLength(), ROWS, CTX)] == ["r0", "r2", "r4"]


def test_filter_template_refuses_non_bool_and_missing_keep() -> None:
    class Scores(FilterDefense):
        def keep(self, row):
            return 0.7

    with pytest.raises(DefenseError, match="keep\\(\\) returned float for row 'r0', not bool"):
        run_apply(Scores(), ROWS, CTX)
    with pytest.raises(TypeError, match="must implement keep\\(\\) or keep_many\\(\\)"):
        type("Empty", (FilterDefense,), {})()


def test_rewrite_template_rewrites_and_none_drops() -> None:
    class Upper(RewriteDefense):
        def rewrite(self, row):
            return None if row["id"] == "r1" else row["completion"].upper() + "!"

    out = run_apply(Upper(), ROWS, CTX)
    assert [r["id"] for r in out] == ["r0", "r2", "r3", "r4"]
    assert out[1]["completion"] == "XX!" and ROWS[2]["completion"] == "xx"  # input untouched


def test_rewrite_many_batches_through_a_lent_helper() -> None:
    class FakeRewriter:
        def __init__(self, model: str, seed: int = 0):
            self.model, self.usage = model, {"calls": 0, "items": 0, "tokens": 0, "seconds": 0.0}

        def rewrite(self, texts):
            u = self.usage
            self.usage = dict(u, calls=u["calls"] + 1, items=u["items"] + len(texts), tokens=7)
            self.usage["seconds"] = 0.5
            return [t[::-1] for t in texts]

    class Rephrase(RewriteDefense):
        def rewrite_many(self, rows, ctx):
            return ctx.rewriter().rewrite([r["completion"] + "ab" for r in rows])

    ctx = DefenseContext("smollm2-135m", helper_factories={"rewriter": FakeRewriter})
    out = run_apply(Rephrase(), ROWS[:2], ctx)
    assert [r["completion"] for r in out] == ["ba", "bax"]
    assert ctx.cost["helper_calls"] == 1 and ctx.cost["helper_items"] == 2
    assert ctx.cost["helpers"] == {
        "rewriter:model=gemma3-270m:seed=0": {"calls": 1, "items": 2, "tokens": 7, "seconds": 0.5}
    }
    with pytest.raises(ValueError, match="unknown helper 'oracle'; known helpers: rewriter"):
        ctx.helper("oracle")


def test_context_holds_no_trait_or_cell_config() -> None:
    fields = set(vars(DefenseContext("m")))
    # generation: the teacher's sampling, grammar and few-shot examples (no system prompt or arm)
    assert fields == {
        "teacher_model",
        "seed",
        "helper_factories",
        "notes",
        "generation",
        "_lent",
        "_carried",
    }


def test_duplicate_builtin_name_is_refused_naming_both() -> None:
    with pytest.raises(DefenseRegistryError, match="already registered by defenses.none.NoDefense"):

        @register_defense("none")
        class Again(Defense):
            pass


def test_unknown_reference_lists_known_defenses(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown defense 'magic'; known defenses: .*none"):
        get_defense("magic")
    with pytest.raises(ValueError, match="does not exist"):
        get_defense(f"{tmp_path}/missing.py:X")


def _install(site: Path, dist: str, module: str, body: str, eps: dict[str, str]) -> None:
    """A minimal installed distribution: a module and a dist-info with entry_points.txt."""
    (site / f"{module}.py").write_text(textwrap.dedent(body))
    info = site / f"{dist}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n")
    lines = "".join(f"{n} = {v}\n" for n, v in eps.items())
    (info / "entry_points.txt").write_text(f"[subliminal_bench.defenses]\n{lines}")


PLUGIN = """
    from defenses.base import FilterDefense

    class NoEmpty(FilterDefense):
        '''Drops empty completions.'''
        version = "2"
        def keep(self, row):
            return bool(row["completion"])
"""


def test_entry_point_defense_is_usable_by_name_and_runs_isolated(tmp_path, monkeypatch) -> None:
    _install(tmp_path, "slb-noempty", "slb_noempty", PLUGIN, {"no_empty": "slb_noempty:NoEmpty"})
    monkeypatch.syspath_prepend(str(tmp_path))
    assert "no_empty" in known_defenses()
    assert resolve("no_empty").kind == "entry_point"
    d = get_defense("no_empty")
    desc = d.describe()
    assert desc["version"] == "2" and desc["source"]["entry_point"] == "slb_noempty:NoEmpty"
    assert len(desc["source"]["sha256"]) == 64 and "sha256" in d.identity()
    assert [r["id"] for r in run_apply(d, ROWS, CTX)] == ["r1", "r2", "r3", "r4"]


def test_entry_point_named_like_a_builtin_is_refused(tmp_path, monkeypatch) -> None:
    _install(tmp_path, "slb-shadow", "slb_shadow", PLUGIN, {"none": "slb_shadow:NoEmpty"})
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(
        DefenseRegistryError,
        match=r"entry point 'none' \(slb_shadow:NoEmpty from slb-shadow\) collides with the "
        r"built-in defense 'none' \(defenses.none.NoDefense\)",
    ):
        get_defense("none")


def test_two_entry_points_of_one_name_are_refused(tmp_path, monkeypatch) -> None:
    _install(tmp_path, "slb-a", "slb_a", PLUGIN, {"twin": "slb_a:NoEmpty"})
    _install(tmp_path, "slb-b", "slb_b", PLUGIN, {"twin": "slb_b:NoEmpty"})
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(DefenseRegistryError, match="two entry points are named 'twin'"):
        get_defense("twin")
