"""Where a suite's cells run: in this process one after another, or as tasks on a Ray cluster.

``slb suite ... --executor local`` (the default) runs cells in sequence. ``--executor ray`` submits
every cell as one Ray task (``pip install 'subliminal-bench[dist]'``; ``--ray-address`` names a
running cluster, else Ray starts a local one) with the resources it needs: by default one GPU per
cell when the cell generates with vLLM or a GPU is visible, else none, and one CPU; ``--gpus-per-cell``
sets it (e.g. 2 for a tensor-parallel teacher). Workers need this package installed and the
artifact store on a filesystem every node sees (the store's writes are atomic, so two cells that
need the same stage at once both compute it and one copy is kept).

Stages shared by many cells are computed once, before the cells: the trait teachers (a fine-tuned
teacher takes minutes; every cell of a trait needs it). Results come back in completion order; an
exception in one cell is returned with the cell, never raised, so the others and everything they
stored survive.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

log = logging.getLogger(__name__)
T = TypeVar("T")
MISSING_RAY = "the ray executor needs Ray: pip install 'subliminal-bench[dist]' (or pip install 'ray[default]')"


@dataclass(frozen=True)
class Outcome:
    """One job's result, or the exception it raised (``error``); ``item`` is what was submitted."""

    item: Any
    result: Any = None
    error: BaseException | None = None


class Executor(Protocol):
    def map(
        self, fn: Callable[[T], Any], items: Sequence[T], needs_gpu: Sequence[bool] | None = None
    ) -> Iterator[Outcome]:
        """Run ``fn`` on every item; yield an :class:`Outcome` per item as each finishes."""
        ...


@dataclass
class LocalExecutor:
    """Cells one after another in this process (2 CPU cores cannot run two at once usefully)."""

    def map(self, fn, items, needs_gpu=None):
        for item in items:
            try:
                yield Outcome(item, fn(item))
            except Exception as e:  # noqa: BLE001 - one failed cell must not lose the others
                log.exception("job failed")
                yield Outcome(item, error=e)


@dataclass
class RayExecutor:
    """Every item as a Ray task; ``gpus_per_cell`` None = 1 where ``needs_gpu`` says so, else 0."""

    address: str | None = None
    gpus_per_cell: float | None = None
    cpus_per_cell: float = 1.0

    def __post_init__(self) -> None:
        if self.gpus_per_cell is not None and self.gpus_per_cell < 0:
            raise ValueError(f"Invalid gpus_per_cell: {self.gpus_per_cell} (must be >= 0)")
        if self.cpus_per_cell <= 0:
            raise ValueError(f"Invalid cpus_per_cell: {self.cpus_per_cell} (must be > 0)")
        try:
            import ray  # noqa: F401
        except ModuleNotFoundError as e:
            if e.name != "ray":
                raise RuntimeError(f"Ray is installed but cannot be imported: {e}") from e
            raise RuntimeError(MISSING_RAY) from None

    def map(self, fn, items, needs_gpu=None):
        import ray

        if not ray.is_initialized():
            ray.init(address=self.address, ignore_reinit_error=True, log_to_driver=True)
        needs = list(needs_gpu) if needs_gpu is not None else [False] * len(items)
        gpus = [self.gpus_per_cell if self.gpus_per_cell is not None else float(g) for g in needs]
        have = ray.cluster_resources().get("GPU", 0)
        if gpus and max(gpus) > have:  # Ray would queue such a task forever
            raise ValueError(
                f"a cell needs {max(gpus):g} GPU(s) but the Ray cluster has {have:g}; "
                "set --gpus-per-cell 0 for CPU cells or connect to a cluster with GPUs"
            )
        pending: dict[Any, Any] = {}
        for item, n_gpus in zip(items, gpus, strict=True):
            task = ray.remote(num_cpus=self.cpus_per_cell, num_gpus=n_gpus, max_retries=0)(fn)
            pending[task.remote(item)] = item
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            item = pending.pop(done[0])
            try:
                yield Outcome(item, ray.get(done[0]))
            except Exception as e:  # noqa: BLE001 - a RayTaskError carries the cell's exception
                cause = getattr(e, "cause", None)
                yield Outcome(item, error=cause if isinstance(cause, BaseException) else e)


def get_executor(name: str, **kwargs: Any) -> Executor:
    """``local`` or ``ray`` (imported lazily; a clear error when Ray is not installed)."""
    if name == "local":
        return LocalExecutor()
    if name == "ray":
        return RayExecutor(**kwargs)
    raise ValueError(f"unknown executor {name!r}; known: local, ray")


def cell_needs_gpu(cfg: Any) -> bool:
    """A cell wants a GPU when it generates with vLLM or this machine (the driver) has CUDA."""
    if cfg.backend == "vllm":
        return True
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a core dependency
        return False
    return bool(torch.cuda.is_available())


def distinct(items: Iterable[T], key: Callable[[T], Any]) -> list[T]:
    """The first item of each distinct ``key``, in order."""
    seen: set[Any] = set()
    out = []
    for it in items:
        if (k := key(it)) not in seen:
            seen.add(k)
            out.append(it)
    return out
