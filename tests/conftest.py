"""Test switches: ``--runslow`` runs tests marked slow (minutes on the real model), ``--rungpu``
runs tests marked gpu (need CUDA + vllm). The default run needs neither network nor GPU."""

from __future__ import annotations

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--runslow", action="store_true", help="run slow tests")
    parser.addoption("--rungpu", action="store_true", help="run GPU tests")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if "slow" in item.keywords and not config.getoption("--runslow"):
            item.add_marker(pytest.mark.skip(reason="slow: run with --runslow"))
        if "gpu" in item.keywords and not config.getoption("--rungpu"):
            item.add_marker(pytest.mark.skip(reason="gpu: run with --rungpu"))


@pytest.fixture(scope="session")
def smollm_dir() -> str:
    """The embedded SmolLM2-135M as a plain HF dir (dequantised once into the user's cache)."""
    from benchmark.models import materialize_embedded

    return str(materialize_embedded("smollm2-135m"))
