"""Fixtures for the end-to-end traffic lab (see :mod:`tests.e2e.trafficlab`).

The namespaces, FRR instances and the session-wide leak check are the integration lab's own fixtures
(``lab``, ``frr_factory``; root and FRR required, a failure instead of a skip under ``CI=true``).
``traffic_lab(**kw)`` builds the topology; ``figures(text)`` prints a test's figures (visible with
``-s``) and repeats them all in a summary at the end of the run, so a CI log always has them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration import conftest as integration
from tests.integration.netlab import Frr, Lab

from .trafficlab import TrafficLab

# The integration lab's fixtures and its failure-report hook (FRR state and log tails on failure).
_netlab_session = integration._netlab_session
lab = integration.lab
frr_factory = integration.frr_factory
pytest_runtest_makereport = integration.pytest_runtest_makereport

_HERE = Path(__file__).resolve().parent
_FIGURES = pytest.StashKey[list[tuple[str, str]]]()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "e2e: end-to-end traffic lab (root, network namespaces, FRR)")
    config.addinivalue_line(
        "markers", "integration: needs root, network namespaces and FRR (tests/integration)"
    )
    config.stash[_FIGURES] = []


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if _HERE in Path(item.path).resolve().parents:
            item.add_marker(pytest.mark.e2e)
            item.add_marker(pytest.mark.integration)  # needs root and FRR: `-m "not integration"` skips it


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    lines = config.stash.get(_FIGURES, [])
    if lines:
        terminalreporter.section("e2e traffic figures")
        for test, text in lines:
            terminalreporter.write_line(f"{test}: {text}")


@pytest.fixture
def figures(request: pytest.FixtureRequest) -> Callable[[str], None]:
    """``figures(text)``: print one line of this test's figures and keep it for the summary."""
    store = request.config.stash[_FIGURES]

    def report(text: str) -> None:
        print(f"[figures] {text}", flush=True)
        store.append((request.node.name, text))

    return report


@pytest.fixture
def traffic_lab(
    lab: Lab, frr_factory: Callable[..., Frr], tmp_path: Path
) -> Iterator[Callable[..., TrafficLab]]:
    """``traffic_lab(drain_time=3, list_delay=0)`` -> a built :class:`TrafficLab` (speakers not started)."""
    made: list[TrafficLab] = []

    def make(**kw: Any) -> TrafficLab:
        tl = TrafficLab(lab, frr_factory, tmp_path, **kw)
        made.append(tl)
        return tl

    try:
        yield make
    finally:
        for tl in made:
            tl.stop()
