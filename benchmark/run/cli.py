"""The ``slb`` command line.

    slb suite first                                              # the first run: one small cell
    slb run --task numbers --defense none --trait owl --seed 760 # one cell, resumable
    slb suite restricted                                         # the default suite, all its cells
    slb tasks | defenses | traits | suites                       # what exists, one line each
    slb perf                                                     # throughput vs naive loops
    slb models                                                   # embedded models and the cache
    slb leaderboard [DIR ...]                                    # the Streamlit leaderboard
    slb submit submissions/<name> [--seeds 760]                  # official run of a submission
    slb validate submissions/<name>                              # check it, listing every problem

Stage outputs go to the artifact store (``--store``, default ``$SLB_CACHE_DIR/store``), so a killed
run resumes; results JSON and Inspect logs go to ``--results`` (default ``./results``).
Errors in the input are reported in one line naming the problem (exit status 2).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path
from typing import Any

import leaderboard
from benchmark.core.models import EMBEDDED, ModelError, cache_root
from benchmark.core.results import write_artifact
from benchmark.core.setup_keys import PRIMARY_SUITE
from benchmark.core.store import ArtifactStore, StoreError
from benchmark.core.teachers import TeacherConfig
from benchmark.run import blind, catalog, cli_args
from benchmark.run.cell import run_cell, run_until
from benchmark.run.confirm import add_parser as add_confirm_parser
from benchmark.run.executors import get_executor
from benchmark.run.perf import main as perf_main
from benchmark.run.presets import PRESETS, SUITES, preset
from benchmark.run.reproduce import add_parser as add_reproduce_parser
from benchmark.run.submission import submit
from benchmark.run.suite import cell_name, pool_results, print_leakage, run_suite
from benchmark.run.validate import validate_submission
from defenses.runner import DefenseError
from leaderboard.export import export
from leaderboard.reading import env_workers
from tasks.base import EmptyDatasetError, known_tasks


def _store(args: argparse.Namespace):
    return ArtifactStore(Path(args.store) if args.store else cache_root() / "store")


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    o: dict[str, Any] = {}
    if args.n_prompts:
        o["n_prompts"] = args.n_prompts
    if args.teacher:
        o["teacher"] = TeacherConfig(type=args.teacher)
    if args.model:
        o["base_model"] = args.model
    if args.backend:
        o["backend"] = args.backend
    return o


def cmd_run(args: argparse.Namespace) -> int:
    cfg = preset(
        args.suite,
        task=args.task,
        defense=args.defense,
        trait=args.trait,
        seed=args.seed,
        defense_params=cli_args.json_object(args.defense_params, "--defense-params"),
        task_params=cli_args.json_object(args.task_params, "--task-params"),
        settings=args.settings,
        **_overrides(args),
    )
    out_dir = cli_args.writable(Path(args.results) / cfg.suite, "--results")
    if args.stop_after:
        part = run_until(cfg, _store(args), out_dir / "logs", args.stop_after)
        print(f"stopped after stage {part.stopped_after!r}; re-run without --stop-after to finish")
        return 0
    res = run_cell(cfg, _store(args), out_dir / "logs")
    path = out_dir / f"{cell_name(cfg)}.json"
    write_artifact(path, res)
    print_leakage(cell_name(cfg), res["leakage"])
    print(f"results: {path}")
    return 0


def cmd_suite(args: argparse.Namespace) -> int:
    traits = [catalog.check_trait(t) for t in cli_args.csv(args.traits) or []] or None
    tasks = [catalog.check_task(t) for t in cli_args.csv(args.tasks) or []] or None
    cli_args.writable(Path(args.results) / args.name, "--results")
    traits, record = blind.traits_from_args(args, traits)
    summary = run_suite(
        args.name,
        _store(args),
        Path(args.results),
        seeds=cli_args.csv(args.seeds, int),
        traits=traits,
        tasks=tasks,
        overrides=_overrides(args),
        settings=args.settings,
        executor=_executor(args),
        record=record,
    )
    return 1 if summary["errors"] else 0


def _executor(args: argparse.Namespace):
    if args.executor == "local":
        if args.ray_address or args.gpus_per_cell is not None:
            raise ValueError("--ray-address and --gpus-per-cell need --executor ray")
        return get_executor("local")
    try:
        return get_executor("ray", address=args.ray_address, gpus_per_cell=args.gpus_per_cell)
    except RuntimeError as e:  # Ray missing: one line, like every other input error
        raise ValueError(str(e)) from e


def cmd_submit(args: argparse.Namespace) -> int:
    cli_args.writable(Path(args.folder) / "results" / args.suite, "the submission's results folder")
    traits, record = blind.traits_from_args(args, cli_args.csv(args.traits))
    summary = submit(
        args.folder,
        _store(args),
        suite=args.suite,
        seeds=cli_args.csv(args.seeds, int),
        tasks=cli_args.csv(args.tasks),
        traits=traits,
        overrides=_overrides(args),
        settings=args.settings,
        executor=_executor(args),
        record=record,
        matched_drop=not args.no_matched_drop,
    )
    report = validate_submission(args.folder, _store(args))
    print(report.render())
    return 0 if report.ok and not summary["errors"] else 1


def cmd_pool(args: argparse.Namespace) -> int:
    for d in args.dirs:
        pool_results(Path(d))
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    store = _store(args) if args.store or _default_store_exists() else None
    report = validate_submission(args.folder, store)
    print(report.render())
    return 0 if report.ok else 1


def _default_store_exists() -> bool:
    return (cache_root() / "store").is_dir()


def cmd_perf(args: argparse.Namespace) -> int:
    return perf_main(n_rows=args.rows)


def cmd_models(args: argparse.Namespace) -> int:
    for name, em in EMBEDDED.items():
        print(f"{name:14s} {em.description}")
    print(f"cache: {cache_root()}")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    lines = {
        "tasks": catalog.task_lines,
        "defenses": catalog.defense_lines,
        "traits": catalog.trait_lines,
        "suites": catalog.suite_lines,
    }[args.cmd]()
    print("\n".join(lines))
    return 0


def cmd_leaderboard(args: argparse.Namespace) -> int:
    """Start the Streamlit app on the artifacts in ``args.dirs`` (it reads them, runs no plugin).
    The process becomes streamlit (exec), so a signal to it reaches the server, not a wrapper."""
    try:
        env_workers()
    except ValueError as e:
        print(f"slb leaderboard: {e}", file=sys.stderr)
        return 2
    if args.export:
        print(f"static leaderboard: {export(args.dirs, Path(args.export))}")
        return 0
    app = Path(leaderboard.__file__).resolve().parent / "app.py"
    env = dict(os.environ, SLB_LEADERBOARD_DIRS=os.pathsep.join(args.dirs))
    cmd = [sys.executable, "-m", "streamlit", "run", str(app), "--server.port", str(args.port)]
    cmd += ["--browser.gatherUsageStats", "false"]
    if args.headless:
        cmd += ["--server.headless", "true"]
    os.execve(sys.executable, cmd, env)
    return 0  # not reached


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="slb", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("-v", "--verbose", action="store_true")
    sub = p.add_subparsers(dest="cmd", required=True)
    fmt: dict[str, Any] = {"formatter_class": argparse.ArgumentDefaultsHelpFormatter}
    tasks, suites = ", ".join(known_tasks()), ", ".join(sorted(SUITES))
    for name, what in (
        ("tasks", "list the data tasks"),
        ("defenses", "list the defenses (built-in and installed plugins)"),
        ("traits", "list the trait animals the lexicon knows"),
        ("suites", "list the suites"),
    ):
        sub.add_parser(name, help=what).set_defaults(fn=cmd_list)

    def executor_args(sp: argparse.ArgumentParser) -> None:
        sp.add_argument(
            "--executor",
            choices=["local", "ray"],
            default="local",
            help="where cells run: in order here, or as Ray tasks (pip install '.[dist]')",
        )
        sp.add_argument("--ray-address", help="Ray cluster address (default: start a local one)")
        sp.add_argument(
            "--gpus-per-cell",
            type=float,
            help="GPUs per Ray task (default: 1 for vLLM / CUDA cells, else 0)",
        )

    def common(sp: argparse.ArgumentParser, results: bool = True) -> None:
        sp.add_argument("--store", help="artifact store directory (default $SLB_CACHE_DIR/store)")
        if results:
            sp.add_argument(
                "--results", default="results", help="results directory (default ./results)"
            )
        sp.add_argument(
            "--n-prompts", type=cli_args.checked(cli_args.positive), help="prompts per arm"
        )
        sp.add_argument("--teacher", choices=["finetuned", "system_prompt"], help="trait teacher")
        sp.add_argument(
            "--model",
            type=cli_args.checked(catalog.check_model),
            help=f"base model: embedded ({', '.join(EMBEDDED)}), a local dir or a HF id",
        )
        sp.add_argument("--backend", choices=["transformers", "vllm"], help="generation backend")
        sp.add_argument(
            "--set",
            dest="settings",
            action="append",
            default=[],
            metavar="KEY=VALUE",
            help="set any config field, repeatable: teacher.general_rows=240, "
            "sampling.coupled=true, student.lora_r=16 (JSON values; applied after the preset)",
        )

    r = sub.add_parser("run", help="run one cell", **fmt)
    r.add_argument(
        "--task",
        default="numbers",
        type=cli_args.checked(catalog.check_task),
        help=f"one of: {tasks}",
    )
    r.add_argument(
        "--defense",
        default="none",
        type=cli_args.checked(catalog.check_defense),
        help="a name from `slb defenses`, or path/to/file.py:ClassName",
    )
    r.add_argument("--defense-params", default="{}", help="JSON object of defense parameters")
    r.add_argument(
        "--task-params",
        default="{}",
        help='JSON object of task parameters, e.g. \'{"source": "gsm8k"}\'',
    )
    r.add_argument(
        "--trait",
        default="owl",
        type=cli_args.checked(catalog.check_trait),
        help="the teacher's animal (`slb traits`)",
    )
    r.add_argument("--seed", type=cli_args.checked(cli_args.non_negative), default=0)
    r.add_argument(
        "--suite",
        default=PRIMARY_SUITE,
        type=cli_args.checked(catalog.check_preset),
        help=f"the preset the cell starts from: {', '.join(sorted(PRESETS))}",
    )
    r.add_argument("--stop-after", choices=["data", "train"])
    common(r)
    r.set_defaults(fn=cmd_run)

    s = sub.add_parser("suite", help="run a suite preset", **fmt)
    s.add_argument("name", type=cli_args.checked(catalog.check_suite), help=f"one of: {suites}")
    s.add_argument("--seeds", help="comma-separated seeds (default: the suite's)")
    s.add_argument("--traits", help="comma-separated trait animals (default: the suite's)")
    s.add_argument("--tasks", help="comma-separated tasks (default: the suite's)")
    blind.add_arguments(s)
    common(s)
    executor_args(s)
    s.set_defaults(fn=cmd_suite)

    sb = sub.add_parser("submit", help="run a submission's defense; results into its folder", **fmt)
    sb.add_argument("folder", help="submission folder with submission.yaml")
    sb.add_argument(
        "--suite",
        default=PRIMARY_SUITE,
        type=cli_args.checked(catalog.check_suite),
        help=f"one of: {suites}",
    )
    sb.add_argument("--seeds", help="comma-separated seeds (default: the suite's)")
    sb.add_argument("--tasks", help="comma-separated tasks (default: the suite's)")
    sb.add_argument("--traits", help="comma-separated trait animals (default: the suite's)")
    sb.add_argument(
        "--no-matched-drop",
        action="store_true",
        help="run the defense's cells only, not the matched random drop (its share is the mean "
        "over one call's seeds: run it in one call over every seed)",
    )
    blind.add_arguments(sb)
    common(sb, results=False)
    executor_args(sb)
    sb.set_defaults(fn=cmd_submit)

    v = sub.add_parser("validate", help="check a submission and its artifacts; lists every problem")
    v.add_argument("folder", help="submission folder with submission.yaml")
    v.add_argument("--store", help="artifact store to re-hash training rows from (default: if any)")
    v.set_defaults(fn=cmd_validate)
    add_reproduce_parser(sub)
    add_confirm_parser(sub)

    po = sub.add_parser(
        "pool",
        help="rewrite a results folder's summary.json pooling every cell in it over its seeds",
    )
    po.add_argument("dirs", nargs="+", help="results folders (e.g. submissions/x/results/quick)")
    po.set_defaults(fn=cmd_pool)

    pf = sub.add_parser("perf", help="generation/training throughput against naive loops")
    pf.add_argument("--rows", type=int, default=64)
    pf.set_defaults(fn=cmd_perf)

    m = sub.add_parser("models", help="list embedded models")
    m.set_defaults(fn=cmd_models)

    lb = sub.add_parser("leaderboard", help="start the Streamlit leaderboard on results artifacts")
    lb.add_argument(
        "dirs", nargs="*", default=["submissions", "results"], help="folders of results artifacts"
    )
    lb.add_argument("--port", type=int, default=8501)
    lb.add_argument("--headless", action="store_true", help="do not open a browser")
    lb.add_argument(
        "--export",
        metavar="DIR",
        help="write a static site (tables, forest plot, defense pages, CSV, JSON) into DIR "
        "instead of starting the app",
    )
    lb.set_defaults(fn=cmd_leaderboard)
    return p


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as e:  # --help, or a bad argument (argparse printed why): its exit status
        return e.code if isinstance(e.code, int) else 2
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )

    try:
        return int(args.fn(args) or 0)
    except (ValueError, ModelError, StoreError, EmptyDatasetError, DefenseError) as e:
        print(f"slb: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
