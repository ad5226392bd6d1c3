"""Prometheus metrics, collected at scrape time from the speaker's and reconciler's own state."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

STATES = ("Idle", "Connect", "Active", "OpenSent", "OpenConfirm", "Established")


class StatusCollector(Collector):
    """Turns ``status()`` dictionaries into metric families on each scrape."""

    def __init__(
        self,
        speaker_status: Callable[[], dict[str, Any]],
        k8s_status: Callable[[], dict[str, Any] | None] | None = None,
    ) -> None:
        self.speaker_status = speaker_status
        self.k8s_status = k8s_status

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        st = self.speaker_status()
        state = GaugeMetricFamily(
            "bgpsvc_session_state", "1 for the session's current FSM state", labels=["peer", "state"]
        )
        up = GaugeMetricFamily(
            "bgpsvc_session_established", "1 if the session is Established", labels=["peer"]
        )
        sent = GaugeMetricFamily(
            "bgpsvc_prefixes_advertised", "Prefixes the peer currently has from us", labels=["peer"]
        )
        rcvd = GaugeMetricFamily(
            "bgpsvc_prefixes_received", "Prefixes received from the peer", labels=["peer", "family"]
        )
        by_class = GaugeMetricFamily(
            "bgpsvc_prefixes_advertised_by_class",
            "Prefixes the peer has from us, per route class",
            labels=["peer", "class"],
        )
        updates = CounterMetricFamily("bgpsvc_updates_sent", "UPDATE messages sent", labels=["peer"])
        updates_in = CounterMetricFamily(
            "bgpsvc_updates_received", "UPDATE messages received", labels=["peer"]
        )
        for p in st["peers"]:
            name = p["name"]
            for s in STATES:
                state.add_metric([name, s], 1.0 if p["state"] == s else 0.0)
            up.add_metric([name], 1.0 if p["state"] == "Established" else 0.0)
            sent.add_metric([name], p["prefixes_sent"])
            for cls, n in p.get("prefixes_by_class", {}).items():
                by_class.add_metric([name, cls], n)
            for fam, n in p["prefixes_received"].items():
                rcvd.add_metric([name, fam], n)
            updates.add_metric([name], p["updates_sent"])
            updates_in.add_metric([name], p["updates_received"])
        routes = GaugeMetricFamily("bgpsvc_routes_desired", "Routes in the desired set")
        routes.add_metric([], st["routes"])
        yield from (state, up, sent, by_class, rcvd, updates, updates_in, routes)
        k8s = self.k8s_status() if self.k8s_status is not None else None
        if not k8s:
            return
        desired_by_class = GaugeMetricFamily(
            "bgpsvc_routes_by_class", "Desired routes per route class", labels=["class"]
        )
        for cls, n in k8s.get("routes_by_class", {}).items():
            desired_by_class.add_metric([cls], n)
        rec = CounterMetricFamily("bgpsvc_reconciles", "Reconcile passes")
        rec.add_metric([], k8s["reconciles"])
        rec_time = CounterMetricFamily("bgpsvc_reconcile_seconds", "Time spent reconciling")
        rec_time.add_metric([], k8s["reconcile_seconds_total"])
        last = GaugeMetricFamily("bgpsvc_reconcile_last_duration_seconds", "Duration of the last reconcile")
        last.add_metric([], k8s["last_reconcile_seconds"])
        reach = GaugeMetricFamily("bgpsvc_kubernetes_api_reachable", "1 while every informer reaches the API")
        reach.add_metric([], 1.0 if k8s["api_reachable"] else 0.0)
        synced = GaugeMetricFamily("bgpsvc_kubernetes_synced", "1 once every informer has listed once")
        synced.add_metric([], 1.0 if k8s["synced"] else 0.0)
        relists = CounterMetricFamily("bgpsvc_informer_relists", "Informer re-lists", labels=["resource"])
        for res, info in k8s.get("informers", {}).items():
            relists.add_metric([res], info["relists"])
        yield from (desired_by_class, rec, rec_time, last, reach, synced, relists)


def metrics_handler(collector: StatusCollector) -> Callable[[], tuple[int, str, bytes]]:
    """A control-server handler serving the exposition format."""
    registry = CollectorRegistry()
    registry.register(collector)
    return lambda: (200, "text/plain; version=0.0.4; charset=utf-8", generate_latest(registry))
