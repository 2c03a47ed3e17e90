"""Copy an `slb confirm` results folder into docs/experiments/confirm/<name>/: its report.json, the
cells the report names and the Inspect logs those cells name (plus any extra files given, such as
a pauses log), then print the runs as a markdown table for docs/results.md.

    python docs/experiments/collect.py <results>/confirm/<name> docs/experiments/confirm/<name> [FILE ...]

The destination folder is replaced.
"""

import json
import shutil
import sys
from pathlib import Path


def main(src: Path, dst: Path, extra: list[str]) -> None:
    if dst.exists():
        shutil.rmtree(dst)
    (dst / "logs").mkdir(parents=True)
    report = json.loads((src / "report.json").read_text())
    for name in [x["artifact"] for x in report["runs"] if "artifact" in x]:
        shutil.copy2(src / name, dst / name)
        art = json.loads((src / name).read_text())
        for paths in (art.get("inspect_logs") or {}).values():
            for p in map(Path, paths):
                log = p if p.is_absolute() else src / p
                if log.is_file():
                    shutil.copy2(log, dst / "logs" / log.name)
                else:
                    print(f"missing log: {log}", file=sys.stderr)
    shutil.copy2(src / "report.json", dst / "report.json")
    for e in extra:
        shutil.copy2(e, dst / Path(e).name)
    print(
        "| run | seed | own animal (log-odds) | trait pair's rank | p_rank | specific | cell wall s |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for x in report["runs"]:
        if "error" in x:
            print(f"| {x['arm']} | {x['seed']} | failed: {x['error']} | | | | |")
            continue
        print(
            f"| {x['arm']} | {x['seed']} | {x['value']:+.3f} | {x['rank']} of {x['n_pairs']} | "
            f"{x['p_rank']:.3f} | {'yes' if x['specific'] else 'no'} | {x['wall_seconds']:.0f} |"
        )
    for x in report.get("not_run", []):
        print(f"| {x['arm']} | {x['seed']} | not run | | | | |")
    print(json.dumps(report["result"], indent=1))


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3:])
