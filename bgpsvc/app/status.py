"""The running program's status as typed values: ``/status`` (JSON), ``bgpsvc status`` and ``/metrics``."""
# The table ``bgpsvc status`` prints is made from the JSON (``format_status``): the CLI reads it over HTTP.

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from ..aio import SpeakerStatus


@dataclass(frozen=True, slots=True)
class InformerStatus:
    """One informer (list + watch of one kind)."""

    synced: bool
    healthy: bool
    relists: int
    objects: int


@dataclass(frozen=True, slots=True)
class KubernetesStatus:
    """The node speaker's Kubernetes side."""

    node: str
    synced: bool
    api_reachable: bool
    waiting_for_sync: bool
    reconciles: int
    reconcile_seconds_total: float
    last_reconcile_seconds: float
    last_reconcile_at: float | None
    routes: int
    routes_by_class: dict[str, int] = field(default_factory=dict)
    informers: dict[str, InformerStatus] = field(default_factory=dict)
    #: Steps that recomputed only what changed, full recomputes, and full ones that found them wrong.
    reconciles_incremental: int = 0
    reconciles_full: int = 0
    incremental_mismatches: int = 0
    #: Watch event arrival -> UPDATE written (``LatencyHistogram.to_json``), and the same without the
    #: debounce wait: count, sum, cumulative buckets and the recent samples, in seconds.
    event_to_update: dict[str, Any] = field(default_factory=dict)
    event_to_update_processing: dict[str, Any] = field(default_factory=dict)
    #: Its first part: event arrival -> the reconcile step starting (informer thread hand-off, debounce).
    event_to_step: dict[str, Any] = field(default_factory=dict)
    #: Whether this speaker holds the Lease (watches every Node, writes objects' conditions); None when it
    #: takes no part (custom resources or status writes off). And how often that changed.
    conditions_leader: bool | None = None
    lease_transitions: int = 0


@dataclass(frozen=True, slots=True)
class AppStatus:
    """Everything ``/status`` shows."""

    speaker: SpeakerStatus
    kubernetes: KubernetesStatus | None = None

    def to_json(self) -> dict[str, Any]:
        """The JSON document: the speaker's fields at the top, ``kubernetes`` beside them."""
        out = dataclasses.asdict(self.speaker)
        if self.kubernetes is not None:
            out["kubernetes"] = dataclasses.asdict(self.kubernetes)
        return out


def _uptime(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    s = int(seconds)
    return f"{s // 3600}h{s % 3600 // 60:02d}m{s % 60:02d}s"


def bfd_column(bfd: dict[str, Any] | None) -> str:
    """``Up 100ms x3`` (the negotiated TX interval and multiplier), ``Down`` (``Down held`` while BGP waits
    for it), or ``-`` without BFD."""
    if not bfd:
        return "-"
    if bfd["state"] == "Up":
        return f"Up {bfd['tx_interval_ms']:g}ms x{bfd['multiplier']}"
    return f"{bfd['state']} held" if bfd.get("holding") else str(bfd["state"])


def format_status(data: dict[str, Any]) -> str:
    """The ``bgpsvc status`` table from the ``/status`` JSON."""
    lines = [
        f"AS {data['local_as']}  router-id {data['router_id']}  routes {data['routes']}",
        f"{'peer':<28}{'AS':>11}  {'state':<12}{'uptime':>10}{'sent':>9}{'rcvd':>9}{'flaps':>7}  "
        f"{'bfd':<16}last down",
    ]
    for p in data["peers"]:
        rcvd = sum(p["prefixes_received"].values())
        lines.append(
            f"{p['name']:<28}{p['peer_as']:>11}  {p['state']:<12}{_uptime(p['uptime']):>10}"
            f"{p['prefixes_sent']:>9}{rcvd:>9}{p.get('flaps', 0):>7}  {bfd_column(p.get('bfd')):<16}"
            f"{p['last_down'] or '-'}"
        )
    return "\n".join(lines)
