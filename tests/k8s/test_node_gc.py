"""The node speaker pauses automatic cyclic collection while its informers make their first lists, then
freezes the synced stores without a full collection (a 100k-Service one holds the GIL for ~0.35 s:
bench/gc_pause.py) and resumes; an API server that stays away does not keep it paused."""

from __future__ import annotations

import asyncio
import gc
from pathlib import Path
from typing import Any

import pytest

from bgpsvc.app import node as node_module
from bgpsvc.app.config import parse_config
from bgpsvc.app.node import NodeSpeaker
from bgpsvc.lab.apiserver import ApiServer
from tests.loopback import wait_for


def config(kubeconfig: Path) -> Any:
    return parse_config(
        {
            "local_as": 64512,
            "listen": False,
            "control": False,
            "drain_time": 0,
            "kubernetes": {
                "node_name": "node-1",
                "kubeconfig": str(kubeconfig),
                "service_cluster_ips": ["198.51.100.0/24"],
                "custom_resources": False,
            },
        },
        env={},
    )


@pytest.fixture(autouse=True)
def collector_back_on() -> Any:
    yield
    gc.enable()


def test_the_first_reconcile_freezes_while_paused_then_resumes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[bool] = []
    real_freeze = gc.freeze

    def freeze() -> None:
        seen.append(gc.isenabled())
        real_freeze()

    monkeypatch.setattr(gc, "freeze", freeze)

    async def main() -> None:
        with ApiServer() as api:
            status = {"addresses": [{"type": "InternalIP", "address": "192.0.2.31"}]}
            api.apply({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "node-1"}, "status": status})
            ns = NodeSpeaker(config(api.write_kubeconfig(tmp_path / "kubeconfig")), {})
            assert gc.isenabled()
            await ns.start()
            try:
                await wait_for(
                    lambda: ns.reconciler is not None and ns.reconciler.stats.count >= 1, 10, "sync"
                )
                await wait_for(lambda: seen, 5, "the freeze")
                assert seen == [False]  # frozen while the collector was still paused, with no collection
                assert gc.isenabled()  # and resumed right after
            finally:
                await ns.stop()

    asyncio.run(main())


def test_an_api_server_that_stays_away_does_not_keep_the_collector_paused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(node_module, "GC_PAUSE_MAX", 0.3)

    async def main() -> None:
        api = ApiServer().start()
        kubeconfig = api.write_kubeconfig(tmp_path / "kubeconfig")
        api.stop()  # nothing answers: the speaker waits for its Node
        ns = NodeSpeaker(config(kubeconfig), {})
        task = asyncio.create_task(ns.start())
        try:
            await wait_for(lambda: not gc.isenabled(), 5, "paused for the first lists")
            await wait_for(gc.isenabled, 5, "resumed after GC_PAUSE_MAX")
        finally:
            task.cancel()
            await ns.stop()
        # And stop() resumes it whatever the timer says.
        monkeypatch.setattr(node_module, "GC_PAUSE_MAX", 60.0)
        ns = NodeSpeaker(config(kubeconfig), {})
        task = asyncio.create_task(ns.start())
        await wait_for(lambda: not gc.isenabled(), 5, "paused again")
        task.cancel()
        await ns.stop()
        assert gc.isenabled()

    asyncio.run(main())
