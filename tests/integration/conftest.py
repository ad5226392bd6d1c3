"""Fixtures for integration tests that run real FRR routers in throw-away network namespaces.

* ``lab``: a :class:`netlab.Lab` - ``lab.netns("r1")``, ``lab.veth(a, b, "192.0.2.1/24", "192.0.2.2/24")``,
  everything deleted at teardown (also when the test fails).
* ``frr_factory``: ``frr_factory(ns, config, name=None, daemons=("zebra", "bgpd"))`` -> started
  :class:`netlab.Frr`; all instances are stopped at teardown, before the namespaces go.

Both skip the test when not root or FRR is missing (fail instead when ``CI=true``). Every test in this
directory is marked ``integration`` (deselect with ``-m "not integration"``). When a test fails, the
state and log tails of its FRR instances are attached to the report.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from . import netlab

_HERE = Path(__file__).resolve().parent


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "integration: needs root, network namespaces and FRR (tests/integration)"
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if _HERE in Path(item.path).resolve().parents:
            item.add_marker(pytest.mark.integration)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    if report.when == "call" and report.failed:
        # Runs before fixture teardown, so the routers are still up and can be queried.
        for router in getattr(item, "_netlab_routers", []):
            try:
                report.sections.append((f"FRR {router.name}", router.diagnostics()))
            except Exception as exc:
                report.sections.append((f"FRR {router.name}", f"diagnostics failed: {exc}"))
    return report


@pytest.fixture(scope="session")
def _netlab_session() -> Iterator[None]:
    netlab.require_root_and_frr()
    netlab.sweep_stale_namespaces()
    yield
    leaked = sorted(netlab.live_namespaces())
    errors = netlab.cleanup_all()
    assert not leaked, f"namespaces still alive at the end of the session (now removed): {leaked}"
    assert not errors, f"netlab session cleanup: {errors}"


@pytest.fixture
def lab(_netlab_session: None) -> Iterator[netlab.Lab]:
    """A fresh :class:`netlab.Lab`; all its namespaces (and anything in them) are removed at teardown."""
    lab = netlab.Lab()
    try:
        yield lab
    finally:
        lab.cleanup()


@pytest.fixture
def frr_factory(lab: netlab.Lab, request: pytest.FixtureRequest) -> Iterator[Callable[..., netlab.Frr]]:
    """``frr_factory(ns, config, name=None, **kw)`` -> a started :class:`netlab.Frr` in ``ns``."""
    routers: list[netlab.Frr] = []
    request.node._netlab_routers = routers  # for the failure report (pytest_runtest_makereport)

    def factory(ns: netlab.Netns, config: str, name: str | None = None, **kw: Any) -> netlab.Frr:
        router = lab.frr(ns, config, name, start=False, **kw)
        routers.append(router)
        router.start()
        return router

    try:
        yield factory
    finally:
        errors = []
        for router in reversed(routers):
            try:
                router.stop()
            except Exception as exc:
                errors.append(f"{router.name}: {exc}")
        if errors:
            raise RuntimeError(f"stopping FRR: {errors}")
