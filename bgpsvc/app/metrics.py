"""Prometheus metrics, collected at scrape time from the typed status (``AppStatus``).

Beside the per-session state and prefix counts: flaps, NOTIFICATIONs sent and received by code and
subcode, UPDATEs handled per RFC 7606, build information, the standard ``process_*``, ``python_gc_*``
and ``python_info`` metrics, and the objects frozen out of the cyclic collector's sight.
``deploy/prometheus/bgpsvc-alerts.yaml`` and the Grafana dashboard in ``deploy/grafana/`` use these
names (tests/test_observability.py checks them against a scrape).
"""

from __future__ import annotations

import gc
import platform
from collections.abc import Callable, Iterator, Mapping
from importlib.metadata import PackageNotFoundError, version

from prometheus_client import (
    CollectorRegistry,
    GCCollector,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    InfoMetricFamily,
)
from prometheus_client.registry import Collector

from ..fsm import PeerStatus
from .status import AppStatus, KubernetesStatus

STATES = ("Idle", "Connect", "Active", "OpenSent", "OpenConfirm", "Established")
BFD_STATES = ("AdminDown", "Down", "Init", "Up")  # RFC 5880 §4.1
Family = GaugeMetricFamily | CounterMetricFamily


def _peer_families() -> dict[str, Family]:
    g, c = GaugeMetricFamily, CounterMetricFamily
    return {
        "state": g("bgpsvc_session_state", "1 for the session's current FSM state", labels=["peer", "state"]),
        "up": g("bgpsvc_session_established", "1 if the session is Established", labels=["peer"]),
        "sent": g("bgpsvc_prefixes_advertised", "Prefixes the peer currently has from us", labels=["peer"]),
        "rcvd": g("bgpsvc_prefixes_received", "Prefixes received from the peer", labels=["peer", "family"]),
        "by_class": g(
            "bgpsvc_prefixes_advertised_by_class",
            "Prefixes the peer has from us, per route class",
            labels=["peer", "class"],
        ),
        "updates": c("bgpsvc_updates_sent", "UPDATE messages sent", labels=["peer"]),
        "updates_in": c("bgpsvc_updates_received", "UPDATE messages received", labels=["peer"]),
        "uptime": g(
            "bgpsvc_session_uptime_seconds", "Seconds the session has been Established", labels=["peer"]
        ),
        "flaps": c("bgpsvc_session_flaps", "Times the session left Established", labels=["peer"]),
        "notes_out": c(
            "bgpsvc_notifications_sent",
            "NOTIFICATION messages sent, by error code and subcode (RFC 4271 §4.5)",
            labels=["peer", "code", "subcode"],
        ),
        "notes_in": c(
            "bgpsvc_notifications_received",
            "NOTIFICATION messages received, by error code and subcode (RFC 4271 §4.5)",
            labels=["peer", "code", "subcode"],
        ),
        "update_errors": c(
            "bgpsvc_update_errors",
            "Malformed UPDATEs received, by RFC 7606 handling (treat-as-withdraw, attribute-discard, ...)",
            labels=["peer", "handling"],
        ),
        "stale": g(
            "bgpsvc_stale_routes", "Routes kept stale for a restarting peer (RFC 4724)", labels=["peer"]
        ),
        "unroutable": g(
            "bgpsvc_prefixes_unroutable",
            "Desired prefixes this session cannot carry (no next hop of their family)",
            labels=["peer"],
        ),
        "bfd_state": g("bgpsvc_bfd_state", "1 for the BFD session's current state", labels=["peer", "state"]),
        "bfd_flaps": c("bgpsvc_bfd_flaps", "Times the BFD session left Up", labels=["peer"]),
        "bfd_detect": g(
            "bgpsvc_bfd_detection_time_seconds",
            "Time without packets from the peer after which its BFD session is declared down",
            labels=["peer"],
        ),
        "bfd_tx": g("bgpsvc_bfd_tx_interval_seconds", "Negotiated BFD transmit interval", labels=["peer"]),
        "bfd_held": g(
            "bgpsvc_bfd_holding", "1 while the BGP session waits in Idle for BFD to come Up", labels=["peer"]
        ),
    }


def _notifications(family: Family, peer: str, counts: Mapping[str, int]) -> None:
    for name, n in counts.items():
        # "Cease / Administrative Shutdown": the code's name, then the subcode's (``notification_name``).
        code, _, subcode = name.partition(" / ")
        family.add_metric([peer, code, subcode or "-"], n)


def _add_peer(m: dict[str, Family], p: PeerStatus) -> None:
    name = p.name
    for s in STATES:
        m["state"].add_metric([name, s], 1.0 if p.state == s else 0.0)
    m["up"].add_metric([name], 1.0 if p.state == "Established" else 0.0)
    m["sent"].add_metric([name], p.prefixes_sent)
    for cls, n in p.prefixes_by_class.items():
        m["by_class"].add_metric([name, cls], n)
    for fam, n in p.prefixes_received.items():
        m["rcvd"].add_metric([name, fam], n)
    m["updates"].add_metric([name], p.updates_sent)
    m["updates_in"].add_metric([name], p.updates_received)
    m["uptime"].add_metric([name], p.uptime or 0.0)
    m["flaps"].add_metric([name], p.flaps)
    _notifications(m["notes_out"], name, p.notifications_sent)
    _notifications(m["notes_in"], name, p.notifications_received)
    for handling, n in p.update_errors.items():
        m["update_errors"].add_metric([name, handling], n)
    m["stale"].add_metric([name], p.stale_routes)
    m["unroutable"].add_metric([name], p.unroutable)
    bfd = p.bfd
    if bfd is not None:
        for s in BFD_STATES:
            m["bfd_state"].add_metric([name, s], 1.0 if bfd.state == s else 0.0)
        m["bfd_flaps"].add_metric([name], bfd.flaps)
        m["bfd_detect"].add_metric([name], bfd.detection_time_ms / 1000)
        m["bfd_tx"].add_metric([name], bfd.tx_interval_ms / 1000)
        m["bfd_held"].add_metric([name], 1.0 if bfd.holding else 0.0)


def _kubernetes(k8s: KubernetesStatus) -> Iterator[Family | HistogramMetricFamily]:
    desired_by_class = GaugeMetricFamily(
        "bgpsvc_routes_by_class", "Desired routes per route class", labels=["class"]
    )
    for cls, n in k8s.routes_by_class.items():
        desired_by_class.add_metric([cls], n)
    rec = CounterMetricFamily("bgpsvc_reconciles", "Reconcile passes")
    rec.add_metric([], k8s.reconciles)
    rec_time = CounterMetricFamily("bgpsvc_reconcile_seconds", "Time spent reconciling")
    rec_time.add_metric([], k8s.reconcile_seconds_total)
    last = GaugeMetricFamily("bgpsvc_reconcile_last_duration_seconds", "Duration of the last reconcile")
    last.add_metric([], k8s.last_reconcile_seconds)
    reach = GaugeMetricFamily("bgpsvc_kubernetes_api_reachable", "1 while every informer reaches the API")
    reach.add_metric([], 1.0 if k8s.api_reachable else 0.0)
    synced = GaugeMetricFamily("bgpsvc_kubernetes_synced", "1 once every informer has listed once")
    synced.add_metric([], 1.0 if k8s.synced else 0.0)
    relists = CounterMetricFamily("bgpsvc_informer_relists", "Informer re-lists", labels=["resource"])
    for res, info in k8s.informers.items():
        relists.add_metric([res], info.relists)
    yield from (desired_by_class, rec, rec_time, last, reach, synced, relists)
    if k8s.conditions_leader is not None:
        leader = GaugeMetricFamily(
            "bgpsvc_conditions_leader",
            "1 while this speaker holds the Lease (watches every Node, writes conditions)",
        )
        leader.add_metric([], 1.0 if k8s.conditions_leader else 0.0)
        changes = CounterMetricFamily(
            "bgpsvc_lease_transitions", "Times this speaker started or stopped leading"
        )
        changes.add_metric([], k8s.lease_transitions)
        yield from (leader, changes)
    kinds = CounterMetricFamily("bgpsvc_reconciles_by_kind", "Reconcile passes by kind", labels=["kind"])
    kinds.add_metric(["incremental"], k8s.reconciles_incremental)
    kinds.add_metric(["full"], k8s.reconciles_full)
    mismatches = CounterMetricFamily(
        "bgpsvc_reconcile_incremental_mismatches",
        "Periodic full recomputes whose answer differed from the incremental one (a bug; logged)",
    )
    mismatches.add_metric([], k8s.incremental_mismatches)
    yield from (kinds, mismatches)
    for name, doc, data in (
        (
            "bgpsvc_event_to_update_seconds",
            "Watch event received -> the UPDATE it caused written to the peers' transports",
            k8s.event_to_update,
        ),
        (
            "bgpsvc_event_to_update_processing_seconds",
            "The same, without the time the reconcile loop waited to coalesce a burst (debounce)",
            k8s.event_to_update_processing,
        ),
    ):
        if data:
            yield HistogramMetricFamily(name, doc, buckets=data["buckets"], sum_value=data["sum"])


class StatusCollector(Collector):
    """Turns the typed status into metric families on each scrape."""

    def __init__(self, status: Callable[[], AppStatus]) -> None:
        self.status = status

    def collect(self) -> Iterator[Family | HistogramMetricFamily]:
        st = self.status()
        m = _peer_families()
        for p in st.speaker.peers:
            _add_peer(m, p)
        routes = GaugeMetricFamily("bgpsvc_routes_desired", "Routes in the desired set")
        routes.add_metric([], st.speaker.routes)
        yield from (*m.values(), routes)
        if st.kubernetes is not None:
            yield from _kubernetes(st.kubernetes)


def _version() -> str:
    try:
        return version("bgpsvc")
    except PackageNotFoundError:
        return "unknown"


class BuildInfo(Collector):
    """``bgpsvc_build_info{version, python}``: which release runs where (a constant 1)."""

    def collect(self) -> Iterator[InfoMetricFamily]:
        info = InfoMetricFamily("bgpsvc_build", "bgpsvc version and Python it runs on")
        info.add_metric([], {"version": _version(), "python": platform.python_version()})
        yield info


class FrozenObjects(Collector):
    """``bgpsvc_gc_frozen_objects``: objects moved out of the cyclic collector's generations
    (``gc.freeze``, after the first reconcile of a large cluster, a relist, or a large routes table),
    which no collection walks again. Reference counting still frees them, so it falls as frozen
    objects go; one that climbs across relists is frozen cyclic garbage (docs/performance.md §4)."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        frozen = GaugeMetricFamily(
            "bgpsvc_gc_frozen_objects", "Objects frozen out of the cyclic garbage collector (gc.freeze)"
        )
        frozen.add_metric([], gc.get_freeze_count())
        yield frozen


def metrics_handler(collector: StatusCollector) -> Callable[[], tuple[int, str, bytes]]:
    """A control-server handler serving the exposition format: the status collector, build info and
    the process/platform metrics every Prometheus exporter has (``process_*``, ``python_gc_*``,
    ``python_info``)."""
    registry = CollectorRegistry()
    registry.register(collector)
    registry.register(BuildInfo())
    registry.register(FrozenObjects())
    GCCollector(registry=registry)
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    return lambda: (200, "text/plain; version=0.0.4; charset=utf-8", generate_latest(registry))
