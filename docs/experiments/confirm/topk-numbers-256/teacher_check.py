"""Do teachers retrained in a fresh store reproduce the first store's? Regenerates the arms of
the committed cells main 400 and null 500 and compares the teacher completions the artifacts kept as
examples. Run from the repository root:
``python docs/experiments/confirm/topk-numbers-256/teacher_check.py STORE docs/experiments/confirm/topk-numbers-256``
(STORE: the store the confirmation ran with; its teachers are trained there if missing)."""

import json
import sys
import tempfile
from pathlib import Path

from benchmark.core.store import ArtifactStore
from benchmark.run.cell import teacher_spec
from benchmark.run.prereg import cells, load_prereg
from benchmark.run.stages import Stages
from defenses import get_defense

prereg = load_prereg(Path("docs/prereg/topk-numbers-256.yaml"))
store = ArtifactStore(Path(sys.argv[1]))
folder = Path(sys.argv[2])
for kind, cfg in cells(prereg):
    if (kind, cfg.seed) not in {("main", 400), ("null", 500)}:
        continue
    art = json.loads(next(folder.glob(f"{kind}__*seed{cfg.seed}__*.json")).read_text())
    ts = teacher_spec(cfg, get_defense(cfg.defense, **cfg.defense_params))
    st = Stages(cfg, store, Path(tempfile.mkdtemp()))
    prompts = st.prompts()
    for arm in ("trait", "control"):
        if kind == "null" and arm == "trait":
            continue  # the same owl teacher as main's trait arm
        rows, _ = st.generate(arm, prompts, st.teacher(arm, ts.model), ts)
        by_id = {r["id"]: r for r in rows}
        same = [
            by_id[e["id"]]["completion"] == e["teacher_completion"]
            for e in art["data"][arm]["examples"]
        ]
        print(kind, cfg.seed, arm, f"{sum(same)} of {len(same)} examples identical", flush=True)
