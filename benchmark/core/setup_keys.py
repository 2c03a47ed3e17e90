"""What cells of one setup share, read from a cell's config dict: the config minus the cell's
coordinates and every seed (:func:`without_cell_keys`), its hardware where it is not a CPU
(:func:`with_hardware`), and the seed its fine-tuned teachers were trained at
(:func:`teacher_seed`) and its other seeds (:func:`other_seeds`: the students', sampling's), which
the setup leaves out but a comparison of two cells must not.
The run layer names setups from these (``benchmark.run.setups``); readers check them
(``benchmark.core.artifact``, ``leaderboard.loader``)."""

from __future__ import annotations

from typing import Any

# Keys that say which cell or which replicate this is, not how the experiment was set up; the rest
# of the config must match for cells to be pooled or compared.
CELL_KEYS = frozenset({"task", "defense", "trait", "seed", "defense_params", "task_params"})
# The suite that ``slb run``, ``slb submit`` and the leaderboard start from: the setup whose
# subliminal leakage passed its pre-registered confirmation, so defenses are compared against the
# part of the leak that no filter of the teacher's animal words can see: the teacher's top-20
# kept to the tokens the number grammar allows, learnt for 3 epochs by students at a seed no
# teacher has, scored after a forced answer prefix
# (docs/prereg/restricted-epochs3-numbers-256.yaml). ``topk-prefix`` (the same labels with their
# off-grammar mass, where the animal words ride: passed as an overt channel), ``topk``, ``quick``
# and the rest stay runnable.
PRIMARY_SUITE = "restricted"


def seed_order(seed: Any) -> tuple[int, float, str]:
    """Integer seeds in numeric order (2 before 10), anything else after them by its text."""
    if isinstance(seed, int) and not isinstance(seed, bool):
        return (0, float(seed), "")
    return (1, 0.0, str(seed))


def without_seeds(obj: Any) -> Any:
    """A config dict (or any part of one) with every ``seed`` key dropped, at any depth: what the
    replicates of one cell share (pooling in ``slb pool`` and on the leaderboard)."""
    if isinstance(obj, dict):
        return {k: without_seeds(v) for k, v in obj.items() if k != "seed"}
    if isinstance(obj, list):
        return [without_seeds(v) for v in obj]
    return obj


def without_cell_keys(cfg: dict[str, Any]) -> dict[str, Any]:
    """``cfg`` minus the cell coordinates (:data:`CELL_KEYS`) and every seed: what cells of one
    setup share, before the suite's per-task knobs are accounted for."""
    return {k: v for k, v in without_seeds(cfg).items() if k not in CELL_KEYS}


def hardware_of(device: Any) -> str:
    """``cpu`` or ``cuda`` from ``run_info.device`` (``"cuda: NVIDIA H200"``); artifacts written
    before the field existed all ran on CPU."""
    return str(device or "cpu").split(":")[0].strip() or "cpu"


def with_hardware(setup_config: dict[str, Any], device: Any) -> dict[str, Any]:
    """GPU numerics differ from the CPU suite's: a cell computed on one is never pooled with the
    same config run on CPU, so its hardware joins the setup config (CPU, the default, does not)."""
    hardware = hardware_of(device)
    return setup_config if hardware == "cpu" else {**setup_config, "hardware": hardware}


def teacher_seed(cfg: dict[str, Any]) -> int | None:
    """The training seed of the cell's fine-tuned teachers: the cell's own seed where
    ``teacher.seed_per_cell``, else ``teacher.train.seed``; None where its teachers are not
    trained (a system prompt) or the config does not say."""
    t = cfg.get("teacher")
    if not isinstance(t, dict) or t.get("type", "finetuned") != "finetuned":
        return None
    if t.get("seed_per_cell"):
        seed = cfg.get("seed")
    else:
        train = t.get("train")
        seed = train.get("seed", 0) if isinstance(train, dict) else None
    return seed if isinstance(seed, int) and not isinstance(seed, bool) else None


def other_seeds(cfg: dict[str, Any]) -> dict[str, int | None]:
    """Every other seed of the config by dotted path (``student.seed``, ``student.init_seed``,
    ``sampling.seed``): keys named ``seed`` or ``*_seed`` below the top level, but the teachers'
    (:func:`teacher_seed`). The setup drops them all; a reader checks they follow the baseline's
    design, so no cell of a comparison picks its students' seeds."""
    out: dict[str, int | None] = {}

    def walk(obj: Any, path: str) -> None:
        for k, v in obj.items():
            at = f"{path}{k}"
            if isinstance(v, dict):
                if at != "teacher":
                    walk(v, at + ".")
            elif path and (k == "seed" or k.endswith("_seed")):
                ok = v is None or (isinstance(v, int) and not isinstance(v, bool))
                out[at] = v if ok else None

    walk(cfg, "")
    return out
