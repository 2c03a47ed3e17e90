"""What an untrusted defense's ``teacher()`` and ``training()`` hooks may return, checked in the parent.

A plugin's child sends its hook result back as JSON; :class:`defenses.isolation.IsolatedDefense`
checks that dict here *before* it builds a ``TeacherSpec`` or ``TrainConfig`` from it, so the
pipeline never generates with, or trains on, a value it would not choose itself. Every field must
be one the dataclass has, of its type, within the bounds below (this table is the one place they
are written down); a bad value is a :class:`HookValueError` naming the field, which the caller
turns into a one-line ``DefenseError`` naming the defense and the hook too.

A teacher's ``model`` must be the model it was given (unchanged), an embedded model name
(``benchmark.core.models.EMBEDDED``), a local path the submission declared (``local_paths``), or a
Hugging Face id ``owner/name`` — letters, digits, ``.``, ``_`` and ``-`` only, no ``..``, and not
something that exists on disk under that name. Its ``backend`` must be a known one
(``benchmark.core.backends.BACKENDS``).

The bounds are written down once, in the tables :data:`SAMPLING` and :data:`TRAINING` below
(one check per field; ``number(lo, hi)`` is inclusive unless ``open_lo``/``open_hi``; a test holds
that every field of ``SamplingParams`` and ``TrainConfig`` has one). They are generous for real
runs (up to 100 epochs, learning rates up to 0.1, 8192 new tokens) and refuse what no pipeline
owner would pick.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from benchmark.core.backends import BACKENDS
from benchmark.core.distill import LABELS, MAX_TEMPERATURE, MAX_TOP_K
from benchmark.core.models import EMBEDDED
from benchmark.core.train_env import PRECISIONS
from benchmark.core.types import TeacherSpec

HF_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,95}/[A-Za-z0-9][A-Za-z0-9._-]{0,95}$")
MODULE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.]{0,99}$")
SCHEDULERS = (
    "linear",
    "cosine",
    "cosine_with_restarts",
    "polynomial",
    "constant",
    "constant_with_warmup",
    "inverse_sqrt",
    "reduce_lr_on_plateau",
    "cosine_with_min_lr",
    "warmup_stable_decay",
)


class HookValueError(ValueError):
    """One field of a hook's result is not allowed; ``field`` names it (dotted for nested)."""

    def __init__(self, field: str, problem: str):
        super().__init__(f"{field} {problem}")
        self.field = field


Check = Callable[[str, Any], None]


def number(
    lo: float, hi: float, integer: bool = False, open_lo: bool = False, open_hi: bool = False
) -> Check:
    def check(name: str, v: Any) -> None:
        kinds = (int,) if integer else (int, float)
        if isinstance(v, bool) or not isinstance(v, kinds):
            want = "an integer" if integer else "a number"
            raise HookValueError(name, f"is {type(v).__name__} {v!r}, expected {want}")
        bad_lo = v <= lo if open_lo else v < lo
        bad_hi = v >= hi if open_hi else v > hi
        if not math.isfinite(v) or bad_lo or bad_hi:
            span = f"{'(' if open_lo else '['}{lo:g}, {hi:g}{')' if open_hi else ']'}"
            raise HookValueError(name, f"is {v!r}, outside the allowed range {span}")

    return check


def boolean(name: str, v: Any) -> None:
    if not isinstance(v, bool):
        raise HookValueError(name, f"is {type(v).__name__} {v!r}, expected true or false")


def choice(options: Iterable[str]) -> Check:
    allowed = tuple(options)

    def check(name: str, v: Any) -> None:
        if v not in allowed or not isinstance(v, str):
            raise HookValueError(name, f"is {v!r}, expected one of {', '.join(allowed)}")

    return check


def strings(
    most: int, longest: int, least: int = 0, pattern: re.Pattern[str] | None = None
) -> Check:
    def check(name: str, v: Any) -> None:
        if not isinstance(v, (list, tuple)) or not least <= len(v) <= most:
            raise HookValueError(
                name, f"must be a list of {least} to {most} strings, got {v!r}"[:300]
            )
        for x in v:
            if not (isinstance(x, str) and 0 < len(x) <= longest) or (
                pattern and not pattern.match(x)
            ):
                raise HookValueError(
                    name, f"has {x!r}, expected a name of 1 to {longest} characters"
                )

    return check


def integers(most: int, lo: int, hi: int) -> Check:
    def check(name: str, v: Any) -> None:
        if not isinstance(v, (list, tuple)) or len(v) > most:
            raise HookValueError(name, f"must be a list of at most {most} integers")
        for x in v:
            number(lo, hi, integer=True, open_hi=True)(name, x)

    return check


def optional(inner: Check) -> Check:
    def check(name: str, v: Any) -> None:
        if v is not None:
            inner(name, v)

    return check


def json_object(max_bytes: int) -> Check:
    def check(name: str, v: Any) -> None:
        if not isinstance(v, dict):
            raise HookValueError(name, f"is {type(v).__name__}, expected an object")
        try:
            size = len(json.dumps(v, allow_nan=False))
        except (TypeError, ValueError) as e:
            raise HookValueError(name, f"is not plain JSON ({e})") from None
        if size > max_bytes:
            raise HookValueError(name, f"is {size} bytes of JSON, more than {max_bytes}")

    return check


SAMPLING: dict[str, Check] = {
    "temperature": number(0, 5),
    "top_p": number(0, 1, open_lo=True),
    "min_p": number(0, 1, open_hi=True),
    "max_new_tokens": number(1, 8192, integer=True),
    "seed": number(0, 2**63, integer=True, open_hi=True),
    "coupled": boolean,
    "stop": strings(16, 64),
}
TRAINING: dict[str, Check] = {
    "method": choice(("lora", "full")),
    "lora_r": number(1, 1024, integer=True),
    "lora_alpha": number(0, 4096, open_lo=True),
    "lora_dropout": number(0, 1, open_hi=True),
    "target_modules": strings(64, 100, least=1, pattern=MODULE_NAME),
    "epochs": number(0, 100, open_lo=True),
    "learning_rate": number(0, 0.1, open_lo=True),
    "batch_size": number(1, 4096, integer=True),
    "grad_accum": number(1, 1024, integer=True),
    "max_length": number(8, 32768, integer=True),
    "weight_decay": number(0, 10),
    "warmup_ratio": number(0, 1),
    "lr_scheduler": choice(SCHEDULERS),
    "seed": number(0, 2**32, integer=True, open_hi=True),
    "init_seed": optional(number(0, 2**32, integer=True, open_hi=True)),
    "bf16": boolean,
    "precision": choice(PRECISIONS),
    "frozen_layers": integers(1024, 0, 1024),
    "extra": json_object(16 << 10),
    "labels": choice(LABELS),
    "top_k": number(1, MAX_TOP_K, integer=True),
    "label_temperature": number(0, MAX_TEMPERATURE, open_lo=True),
}


def _fields(value: Any, table: Mapping[str, Check], prefix: str = "") -> None:
    if not isinstance(value, dict):
        raise HookValueError(
            prefix.rstrip(".") or "result", f"is {type(value).__name__}, expected an object"
        )
    for k, v in value.items():
        if k not in table:
            raise HookValueError(f"{prefix}{k}", f"is not a field (allowed: {', '.join(table)})")
        table[k](f"{prefix}{k}", v)


def check_model(model: Any, given: str, local_paths: Iterable[str | Path] = ()) -> None:
    """Refuse a teacher model that is not the one given, an embedded name, a declared local path,
    or a plausible Hugging Face id (module docstring)."""
    if not isinstance(model, str):
        raise HookValueError("model", f"is {type(model).__name__}, expected a model reference")
    if model == given or model in EMBEDDED:
        return
    declared = {Path(p).resolve() for p in local_paths}
    if declared and not model.startswith("~") and Path(model).resolve() in declared:
        return
    if HF_ID.match(model) and ".." not in model and not Path(model).exists():
        return
    raise HookValueError(
        "model",
        f"{model!r} is not allowed: expected the given model {given!r}, an embedded model "
        f"({', '.join(EMBEDDED)}), a local path the submission declared, or a Hugging Face id "
        "'owner/name'",
    )


def check_teacher(value: Any, given: TeacherSpec, local_paths: Iterable[str | Path] = ()) -> None:
    """Check a ``teacher()`` result (the dict form of a TeacherSpec) against ``given``."""
    _fields(
        value,
        {"model": lambda n, v: None, "sampling": lambda n, v: None, "backend": choice(BACKENDS)},
    )
    check_model(value.get("model", given.model), given.model, local_paths)
    if "sampling" in value:
        _fields(value["sampling"], SAMPLING, "sampling.")


def check_training(value: Any) -> None:
    """Check a ``training()`` result (the dict form of a TrainConfig)."""
    _fields(value, TRAINING)
