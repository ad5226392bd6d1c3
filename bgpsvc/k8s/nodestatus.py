"""The ``status`` of a node's ``BGPNodeStatus``: its sessions as the cluster sees them (cf. Cilium's
``CiliumBGPNodeConfig.status``), built from the typed ``PeerStatus`` values.

Per peer: session state and since when, the last down reason, negotiated families and hold time, routes
advertised and received per family, flaps, BFD state when present, and where the peer came from
(``BGPPeer/<name>`` or ``file``). The node's ``ConfigApplied`` condition lists objects it could not use.

Nothing in it changes by itself as time passes (no uptime counter, only the time a state began), so the
status changes only when something happens, and the writer (``statuswriter``) writes only then.
``NodeStatusBuilder`` remembers when each state and condition began; its ``now`` is injected.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ..fsm import PeerStatus
from ..wire import Prefix
from .resources import Condition


def rfc3339(t: float) -> str:
    """Seconds since the epoch as metav1.Time writes them (whole seconds, UTC)."""
    return datetime.fromtimestamp(int(t), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def family_of(prefix: Prefix) -> str:
    """The address family name a prefix is sent in (``ipv4-unicast``, ``ipv6-unicast``)."""
    return "ipv4-unicast" if prefix.afi == 1 else "ipv6-unicast"


@dataclass(frozen=True, slots=True)
class Since:
    """A peer's session state and the wall-clock time it began."""

    state: str
    since: float


def advance(previous: Mapping[str, Since], peers: Iterable[PeerStatus], now: float) -> dict[str, Since]:
    """Each peer's state and its start: kept while the state stays, ``now`` (or the Established time the
    session reports) when it changes. Peers that are gone are forgotten."""
    out: dict[str, Since] = {}
    for p in peers:
        prev = previous.get(p.name)
        if prev is not None and prev.state == p.state:
            out[p.name] = prev
        elif p.state == "Established" and p.uptime is not None:
            out[p.name] = Since(p.state, now - p.uptime)
        else:
            out[p.name] = Since(p.state, now)
    return out


def peer_entry(p: PeerStatus, since: Since, source: str) -> dict[str, Any]:
    """One ``status.peers[]`` item. ``p.prefixes_by_class`` must be keyed by family (``family_of``)."""
    families = sorted(set(p.prefixes_received) | set(p.prefixes_by_class) | set(p.families))
    entry: dict[str, Any] = {
        "name": p.name,
        "source": source,
        "peerAddress": p.address,
        "peerASN": p.peer_as,
        "localASN": p.local_as,
        "state": p.state,
        "since": rfc3339(since.since),
        "flaps": p.flaps,
        "families": list(p.families),
        "routes": [
            {
                "family": f,
                "advertised": p.prefixes_by_class.get(f, 0),
                "received": p.prefixes_received.get(f, 0),
            }
            for f in families
        ],
    }
    if p.last_down:
        entry["lastDownReason"] = p.last_down
    if p.hold_time is not None:
        entry["holdTime"] = p.hold_time
    bfd = getattr(p, "bfd", None)  # the BFD coupling adds it to PeerStatus
    if bfd is not None:
        entry["bfd"] = {"state": str(getattr(bfd, "state", bfd))}
    return entry


@dataclass
class NodeStatusBuilder:
    """Builds successive ``status`` values of one node's BGPNodeStatus, remembering transition times."""

    node: str
    since: dict[str, Since] = field(default_factory=dict)
    _transitions: dict[str, tuple[Condition, str]] = field(default_factory=dict)

    def condition(self, cond: Condition, now: float, generation: int | None = None) -> dict[str, Any]:
        """A ``metav1.Condition`` whose lastTransitionTime moves only when its status does."""
        prev = self._transitions.get(cond.type)
        when = prev[1] if prev is not None and prev[0].status == cond.status else rfc3339(now)
        self._transitions[cond.type] = (cond, when)
        out: dict[str, Any] = {
            "type": cond.type,
            "status": cond.status,
            "reason": cond.reason,
            "message": cond.message,
            "lastTransitionTime": when,
        }
        if generation is not None:
            out["observedGeneration"] = generation
        return out

    def build(
        self,
        router_id: str,
        *,
        local_as: int,
        peers: Iterable[PeerStatus],
        sources: Mapping[str, str],
        problems: Iterable[str],
        now: float,
    ) -> dict[str, Any]:
        """The whole status (``sources``: peer name -> ``BGPPeer/<name>``; others are ``file``)."""
        peers = sorted(peers, key=lambda p: p.name)
        self.since = advance(self.since, peers, now)
        issues = sorted(problems)
        applied = (
            Condition("ConfigApplied", "False", "ObjectsNotUsable", "; ".join(issues))
            if issues
            else Condition("ConfigApplied", "True", "Applied")
        )
        return {
            "nodeName": self.node,
            "routerID": router_id,
            "localASN": local_as,
            "peers": [peer_entry(p, self.since[p.name], sources.get(p.name, "file")) for p in peers],
            "conditions": [self.condition(applied, now)],
        }
