"""Held-out traits: the animals a suite evaluates, drawn at run time so a defense cannot be tuned
to a known one (``slb suite … --blind-traits N``, ``slb submit … --blind-traits N``).

The draw is ``N`` distinct animals from the eval's candidates
(``benchmark.core.animals.CANDIDATE_ANIMALS``, where the specificity check can rank them), by a
seed: ``--blind-seed S`` (or ``$SLB_BLIND_SEED``, which keeps it off the command line) for an
official run whose seed the maintainers keep secret until the results are out; otherwise a fresh
random one. The seed and the animals are recorded in the suite's ``summary.json``
(``blind_traits``), so the draw can be checked afterwards::

    traits, record = draw_traits(2, seed=None)   # record: {"n": 2, "seed": ..., "traits": [...]}
"""

from __future__ import annotations

import os
import random
import secrets
from typing import Any

from benchmark.core.animals import CANDIDATE_ANIMALS

ENV_SEED = "SLB_BLIND_SEED"


def draw_traits(n: int, seed: int | None = None) -> tuple[list[str], dict[str, Any]]:
    """``n`` distinct candidate animals drawn by ``seed`` (``$SLB_BLIND_SEED``, else fresh when
    None), and the record to keep with the results."""
    if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= len(CANDIDATE_ANIMALS):
        raise ValueError(
            f"Invalid --blind-traits: {n!r} (a count from 1 to {len(CANDIDATE_ANIMALS)}, the "
            "eval's candidate animals)"
        )
    source = "given"
    if seed is None and os.environ.get(ENV_SEED, "").strip():
        text = os.environ[ENV_SEED].strip()
        try:
            seed = int(text)
        except ValueError:
            raise ValueError(f"Invalid ${ENV_SEED}: {text!r} (an integer seed)") from None
        source = ENV_SEED
    if seed is None:
        seed, source = secrets.randbits(63), "fresh"
    if seed < 0:
        raise ValueError(f"Invalid blind seed: {seed} (a non-negative integer)")
    traits = random.Random(seed).sample(sorted(CANDIDATE_ANIMALS), n)
    return traits, {"n": n, "seed": seed, "seed_source": source, "traits": traits}


def add_arguments(sp: Any) -> None:
    """``--blind-traits N`` and ``--blind-seed S`` on a CLI subparser."""
    sp.add_argument(
        "--blind-traits",
        type=int,
        metavar="N",
        help="evaluate N trait animals drawn at run time (instead of --traits); the seed and "
        "the animals are recorded in summary.json",
    )
    sp.add_argument(
        "--blind-seed",
        type=int,
        metavar="S",
        help=f"the draw's seed (default ${ENV_SEED}, else a fresh random one)",
    )


def traits_from_args(
    args: Any, traits: list[str] | None
) -> tuple[list[str] | None, dict[str, Any] | None]:
    """The traits a command runs (``--traits`` or a blind draw) and the draw's record, if any."""
    if args.blind_traits is None:
        if args.blind_seed is not None:
            raise ValueError("--blind-seed needs --blind-traits N")
        return traits, None
    if traits:
        raise ValueError("--traits and --blind-traits exclude each other: name them or draw them")
    drawn, record = draw_traits(args.blind_traits, args.blind_seed)
    print(f"blind traits: {len(drawn)} drawn (seed {record['seed_source']}; in summary.json)")
    return drawn, {"blind_traits": record}
