"""The lab API server's byte counters (``ApiServer.traffic``): what a client received, list and watch."""

from __future__ import annotations

from typing import Any

from bgpsvc.k8s.listwatch import ClientListerWatcher
from bgpsvc.lab import ApiServer

from .conftest import service, wait_until


def test_traffic_counts_list_bodies_and_watch_events(lab: ApiServer, api_client: Any) -> None:
    start = lab.traffic()
    assert start is not None
    for i in range(50):
        lab.apply(service(f"svc-{i}", ip=f"10.96.0.{i + 1}", labels={"app": "x" * 100}))
    lw = ClientListerWatcher(api_client, "services")
    page = lw.list(0, None)
    listed = lab.traffic()
    assert listed is not None
    assert listed["sent"] - start["sent"] > 50 * 100  # at least the labels' bytes went out
    assert listed["received"] > start["received"]  # the request line and headers came in
    stream = lw.watch(page.resource_version, 10)
    try:
        lab.apply(service("svc-0", ip="10.96.0.1", labels={"app": "y" * 5000}))
        assert next(stream)["type"] == "MODIFIED"
        # Counted while the watch is still open (the kernel's counters of a live connection).
        wait_until(lambda: lab.traffic()["sent"] - listed["sent"] > 5000, what="the event's bytes")  # type: ignore[index]
    finally:
        stream.close()
    lw.close()
    end = lab.traffic()
    assert end is not None and end["sent"] >= listed["sent"] + 5000  # closed connections stay counted
