"""The running program's status as typed values: ``/status`` (JSON), ``bgpsvc status`` and ``/metrics``."""

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
