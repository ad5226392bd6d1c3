"""Informers on the official client against the lab API server: reflector semantics end to end.

List (paginated) -> synced -> watch from the list's version; bookmarks move the resume version; 410
Gone re-lists; a cut stream resumes without loss; an unreachable server keeps the store; deletions made
while disconnected vanish on the re-list; stop() is prompt.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import pytest
from kubernetes import config as k8s_config

from bgpsvc.k8s.informer import (
    Informer,
    endpointslice_informer,
    load_api_client,
    node_informer,
    service_informer,
)
from bgpsvc.k8s.views import NodeView, ServiceView, service_from_dict
from bgpsvc.lab import ApiServer

from .conftest import node, service, wait_until

Make = Callable[..., Informer[Any]]
FACTORIES: dict[str, Callable[..., Informer[Any]]] = {
    "services": service_informer,
    "endpointslices": endpointslice_informer,
    "nodes": node_informer,
}


class Changes:
    """A thread-safe on_change counter."""

    def __init__(self) -> None:
        self.count = 0
        self._lock = threading.Lock()

    def __call__(self) -> None:
        with self._lock:
            self.count += 1


@pytest.fixture
def make(api_client: Any) -> Iterator[Make]:
    made: list[Informer[Any]] = []

    def factory(resource: str = "services", **kwargs: Any) -> Informer[Any]:
        opts: dict[str, Any] = {
            "backoff_base": 0.02,
            "backoff_max": 0.2,
            "watch_timeout": 30,
            "rng": random.Random(7),
            **kwargs,
        }
        inf = FACTORIES[resource](api_client, **opts)
        made.append(inf)
        return inf.start()

    yield factory
    for inf in made:
        inf.stop()


def names(snap: Mapping[tuple[str, str], Any]) -> set[str]:
    return {name for _, name in snap}


def test_lists_in_pages_then_syncs_and_follows_the_watch(lab: ApiServer, make: Make) -> None:
    for i in range(5):
        lab.apply(service(f"s{i}", ip=f"10.96.0.{i + 1}"))
    changes = Changes()
    inf = make(page_size=2, on_change=changes)
    assert inf.wait_synced(5)
    snap = inf.snapshot()
    assert names(snap) == {f"s{i}" for i in range(5)}
    view = snap[("default", "s3")]
    assert isinstance(view, ServiceView) and view.cluster_ips == ("10.96.0.4",)
    assert inf.counters()["lists"] == 3 and lab.lists == 3  # 2 + 2 + 1
    assert inf.resource_version == lab.resource_version and inf.healthy and changes.count == 1

    lab.apply(service("s9"))
    lab.apply(service("s0", ip="10.96.7.7"))
    lab.delete("Service", "default", "s1")
    wait_until(lambda: inf.resource_version == lab.resource_version, what="watch caught up")
    snap2 = inf.snapshot()
    assert names(snap2) == {"s0", "s2", "s3", "s4", "s9"}
    assert snap2[("default", "s0")].cluster_ips == ("10.96.7.7",)
    assert names(snap) == {f"s{i}" for i in range(5)}  # an earlier snapshot never changes
    assert changes.count == 4 and inf.relists == 0 and lab.lists == 3
    with pytest.raises(TypeError):
        snap2[("default", "x")] = view  # type: ignore[index]


def test_snapshot_is_cached_until_the_store_changes(lab: ApiServer, make: Make) -> None:
    lab.apply(service("a"))
    inf = make()
    assert inf.wait_synced(5)
    assert inf.snapshot() is inf.snapshot()
    first = inf.snapshot()
    lab.apply(service("b"))
    wait_until(lambda: ("default", "b") in inf.snapshot(), what="b")
    assert inf.snapshot() is not first


def test_size_counts_the_store_without_copying_it(lab: ApiServer, make: Make) -> None:
    lab.apply(service("a"))
    inf = make()
    assert inf.wait_synced(5)
    first = inf.snapshot()
    lab.apply(service("b"))
    wait_until(lambda: inf.size == 2, what="b counted")
    lab.delete("services", "default", "a")
    wait_until(lambda: inf.size == 1, what="a gone")
    # Counting made no copy: the next snapshot is a new one, and it agrees.
    later = inf.snapshot()
    assert later is not first and len(later) == inf.size == 1


def test_an_irrelevant_change_does_not_call_on_change(lab: ApiServer, make: Make) -> None:
    lab.apply(node("n1"))
    changes = Changes()
    inf = make("nodes", on_change=changes)
    assert inf.wait_synced(5)
    assert changes.count == 1
    lab.apply(node("n1", ready="False"))  # a status heartbeat: the NodeView does not change
    lab.apply(node("n1", labels={"zone": "a"}))
    wait_until(lambda: inf.resource_version == lab.resource_version, what="both events")
    assert changes.count == 2 and inf.counters()["events"] == 2
    assert inf.snapshot()[("", "n1")].label("zone") == "a"


def test_bookmarks_advance_the_resume_version(lab: ApiServer, make: Make) -> None:
    lab.apply(service("a"))
    inf = make()
    assert inf.wait_synced(5)
    wait_until(lambda: lab.open_watches == 1, what="watch open")
    lab.apply(node("n1"))  # global version moves; no Service event
    assert inf.resource_version != lab.resource_version
    lab.send_bookmarks()
    wait_until(lambda: inf.resource_version == lab.resource_version, what="bookmark")
    assert inf.counters()["bookmarks"] >= 1 and names(inf.snapshot()) == {"a"}
    # Resuming from the bookmark's version survives a compaction that a stale version would not.
    lab.compact()
    lab.drop_watches()
    lab.apply(service("b"))
    wait_until(lambda: ("default", "b") in inf.snapshot(), what="b after resume")
    assert inf.relists == 0


def test_410_on_a_compacted_history_relists_and_converges(lab: ApiServer, make: Make) -> None:
    lab.apply(service("a"))
    lab.apply(service("b"))
    inf = make()
    assert inf.wait_synced(5)
    wait_until(lambda: lab.open_watches == 1, what="watch open")
    stale = inf.resource_version
    lab.apply(node("n1"))  # only other kinds change, so the informer's version falls behind ...
    lab.compact()  # ... and out of the history
    lab.drop_watches()
    wait_until(lambda: inf.relists == 1, what="relist after 410")
    assert "410" in (inf.last_error or "")
    lab.delete("Service", "default", "a")
    lab.apply(service("c"))
    wait_until(lambda: names(inf.snapshot()) == {"b", "c"}, what="converged")
    assert inf.healthy and inf.synced and inf.resource_version != stale


def test_drop_watches_resumes_from_last_version_without_losing_events(lab: ApiServer, make: Make) -> None:
    lab.apply(service("a"))
    inf = make()
    assert inf.wait_synced(5)
    for round_ in range(3):
        wait_until(lambda n=round_ + 1: lab.open_watches == 1 and lab.watches == n, what="watch open")
        assert lab.drop_watches() == 1
        # Written while the informer is between streams: must come from the resumed watch.
        lab.apply(service(f"x{round_}"))
        if round_ == 1:
            lab.delete("Service", "default", "a")
    wait_until(lambda: names(inf.snapshot()) == {"x0", "x1", "x2"}, what="all events")
    assert inf.relists == 0 and lab.lists == 1 and lab.watches == 4
    assert "broke" in (inf.last_error or "")


def test_pause_resume_health_and_store(lab: ApiServer, make: Make) -> None:
    lab.apply(service("a"))
    lab.apply(service("b"))
    inf = make()
    assert inf.wait_synced(5)
    before = inf.snapshot()
    lab.pause()
    wait_until(lambda: not inf.healthy, what="unhealthy while paused")
    assert inf.last_error is not None
    assert inf.snapshot() == before and inf.synced  # losing the API never clears the store
    lab.resume()
    wait_until(lambda: inf.healthy, timeout=5, what="healthy after resume")
    lab.apply(service("c"))
    wait_until(lambda: names(inf.snapshot()) == {"a", "b", "c"}, what="change after resume")


def test_after_an_outage_a_dropped_watch_reopens_at_once(lab: ApiServer, make: Make) -> None:
    """The failure streak of an outage ends once the new watch has stayed up: the next cut is retried
    without a backoff (it used to wait 0.8 s * 2^N, up to 30 s, with N the outage's failures)."""
    lab.apply(service("a"))
    # The production backoff; a short healthy period keeps the test brief.
    inf = make(backoff_base=0.8, backoff_max=30.0, healthy_watch=1.0)
    assert inf.wait_synced(5)
    wait_until(lambda: lab.open_watches == 1, what="watch open")
    lab.pause()  # connections refused
    wait_until(lambda: inf.counters()["failures"] >= 3, timeout=15, what="failed reconnects")
    assert not inf.healthy
    lab.resume()
    wait_until(lambda: inf.healthy and lab.open_watches == 1, timeout=30, what="watch after the outage")
    wait_until(lambda: inf.counters()["failures"] == 0, timeout=10, what="the new watch stayed up")
    before = inf.counters()
    assert lab.drop_watches() == 1
    wait_until(
        lambda: inf.counters()["watches"] > before["watches"] and lab.open_watches == 1,
        timeout=20,
        what="watch reopened",
    )
    assert inf.counters()["backoffs"] == before["backoffs"]  # reopened without waiting
    assert inf.relists == 0 and inf.healthy
    lab.apply(service("b"))
    wait_until(lambda: names(inf.snapshot()) == {"a", "b"}, what="events on the reopened watch")


def test_deletions_while_disconnected_vanish(lab: ApiServer, make: Make) -> None:
    for n in ("a", "b", "c", "d"):
        lab.apply(service(n))
    inf = make()
    assert inf.wait_synced(5)
    lab.pause()
    wait_until(lambda: not inf.healthy, what="unhealthy")
    lab.delete("Service", "default", "a")  # still in the history: replayed as DELETED by the watch
    lab.resume()
    wait_until(lambda: names(inf.snapshot()) == {"b", "c", "d"}, what="replayed deletion")
    assert inf.relists == 0

    lab.pause()
    wait_until(lambda: not inf.healthy, what="unhealthy again")
    lab.delete("Service", "default", "b")
    lab.apply(service("e"))
    lab.compact()  # the deletions are gone from the history: only a re-list can show them
    lab.resume()
    wait_until(lambda: names(inf.snapshot()) == {"c", "d", "e"}, what="relisted")
    assert inf.relists == 1


def test_expired_continue_token_falls_back_to_a_full_list(lab: ApiServer, make: Make) -> None:
    for i in range(6):
        lab.apply(service(f"s{i}"))
    compacted = threading.Event()

    def converter(obj: Mapping[str, Any]) -> ServiceView:
        if not compacted.is_set():  # while the first page is converted: expire its continue token
            compacted.set()
            lab.apply(node("n1"))
            lab.compact()
        return service_from_dict(obj)

    inf = make(page_size=2, converter=converter)
    assert inf.wait_synced(5)
    assert names(inf.snapshot()) == {f"s{i}" for i in range(6)}
    assert inf.counters()["lists"] == 2  # page 1, then one unpaginated list (page 2 was a 410)
    assert lab.stats()["rejected"] == 1


def test_node_speaker_watches_only_its_node(lab: ApiServer, make: Make, api_client: Any) -> None:
    lab.apply(node("n1", ip="192.0.2.1"))
    lab.apply(node("n2", ip="192.0.2.2"))
    inf = node_informer(api_client, field_selector="metadata.name=n2", backoff_base=0.02).start()
    try:
        assert inf.wait_synced(5)
        assert list(inf.snapshot()) == [("", "n2")]
        view = inf.snapshot()[("", "n2")]
        assert isinstance(view, NodeView) and view.internal_ips == ("192.0.2.2",)
        lab.apply(node("n1", labels={"x": "y"}))
        lab.apply(node("n2", labels={"x": "y"}))
        wait_until(lambda: inf.snapshot()[("", "n2")].label("x") == "y", what="n2 label")
        assert list(inf.snapshot()) == [("", "n2")]
    finally:
        inf.stop()


def test_stop_is_prompt_while_watching_and_while_backing_off(lab: ApiServer, make: Make) -> None:
    inf = make(watch_timeout=300)
    assert inf.wait_synced(5)
    wait_until(lambda: lab.open_watches == 1, what="watch open")
    t0 = time.monotonic()
    inf.stop()
    assert not inf.running and time.monotonic() - t0 < 1.0

    slow = make(backoff_base=30.0, backoff_max=60.0)
    assert slow.wait_synced(5)
    lab.pause()
    wait_until(lambda: not slow.healthy, what="backing off")
    t0 = time.monotonic()
    slow.stop()
    assert not slow.running and time.monotonic() - t0 < 1.0


def test_unreachable_at_start_then_syncs(lab: ApiServer, make: Make) -> None:
    lab.apply(service("a"))
    lab.pause()
    inf = make()
    wait_until(lambda: inf.last_error is not None, what="first failure")
    assert not inf.synced and not inf.healthy and inf.snapshot() == {}
    lab.resume()
    assert inf.wait_synced(5) and inf.healthy and names(inf.snapshot()) == {"a"}


def test_backoff_is_jittered_exponential_and_capped(api_client: Any) -> None:
    inf: Informer[ServiceView] = service_informer(
        api_client, backoff_base=1.0, backoff_max=8.0, rng=random.Random(3)
    )
    delays = [inf._backoff() for _ in range(6)]
    for n, d in enumerate(delays):
        cap = min(8.0, 2.0**n)
        assert cap / 2 <= d <= cap
    again: Informer[ServiceView] = service_informer(
        api_client, backoff_base=1.0, backoff_max=8.0, rng=random.Random(3)
    )
    assert [again._backoff() for _ in range(6)] == delays  # deterministic with an injected Random
    assert service_informer(api_client)._backoff(immediate_first=True) == 0.0


def test_load_api_client_prefers_in_cluster_only_without_kubeconfig(
    kubeconfig: Any, lab: ApiServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1")
    monkeypatch.setattr(
        k8s_config,
        "load_incluster_config",
        lambda client_configuration: calls.append("incluster"),
    )
    load_api_client(None)
    assert calls == ["incluster"]
    client = load_api_client(str(kubeconfig))  # an explicit kubeconfig wins, even in a pod
    assert client.configuration.host == lab.url and calls == ["incluster"]
    client.close()
