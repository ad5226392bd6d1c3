"""Why a node does *not* advertise a Service's address: the other half of ``bgpsvc plan``.

A sibling of ``desired.evaluate`` that walks the same rules (``desired.decide``) and keeps the reasons
an address gets no route: the node is excluded, the Service is opted out (or headless/ExternalName),
the address's family is not the Service's, it is outside every configured range, there is no ready
endpoint of its family on this node (Local) or anywhere in the cluster (``require_ready_endpoint``),
or flap damping holds its route back. Addresses of a class with no configured range at all are not
listed: the operator chose not to advertise that class.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from ..wire import Prefix
from .desired import (
    Context,
    Snapshot,
    decide,
    evaluate,
    node_eligible,
    service_families,
    service_skip,
)
from .policy import AdvertisePolicy
from .views import Key

NODE_EXCLUDED = "node excluded (node.kubernetes.io/exclude-from-external-load-balancers)"
HELD_BY_DAMPING = "held by damping"


@dataclass(frozen=True, slots=True, order=True)
class NotAdvertised:
    """One Service address (or a whole Service, ``address`` empty) this node does not advertise, and why."""

    service: Key
    address: str
    route_class: str
    why: str

    def __str__(self) -> str:
        what = f"{self.service[0]}/{self.service[1]}"
        if self.address:
            what += f" {self.route_class} {self.address}"
        return f"{what}: {self.why}"


def not_advertised(
    snapshot: Snapshot,
    node: str,
    policy: AdvertisePolicy,
    held: Mapping[Prefix, str] | None = None,
) -> tuple[NotAdvertised, ...]:
    """Every Service address ``node`` does not advertise, with the reason (sorted).

    ``held`` maps the prefixes flap damping keeps back (wanted, not yet advertised) to why; the
    Services behind them are listed as held. Without it (``bgpsvc plan`` reads the cluster once and has
    no history) nothing is held.
    """
    out: list[NotAdvertised] = []
    eligible = node_eligible(snapshot, node, policy)
    ctx = Context.build(snapshot, node, policy) if eligible else None
    for key, svc in snapshot.services.items():
        skip = service_skip(svc)
        if skip is None and not eligible:
            skip = NODE_EXCLUDED
        if skip is not None:
            out.append(NotAdvertised(key, "", "", skip))
            continue
        assert ctx is not None
        families = svc.ip_families or service_families(svc)
        for cls, ranges, addresses in ctx.classes:
            if not ranges:
                continue
            for ip in addresses(svc):
                d = decide(ctx, cls, ranges, svc, ip, key=key, families=families)
                if isinstance(d, str):
                    out.append(NotAdvertised(key, ip, cls, d))
    if held and eligible:
        reasons = evaluate(snapshot, node, policy).reasons
        for prefix, why in held.items():
            for r in reasons.get(prefix, ()):
                if r.service is not None:
                    text = f"{HELD_BY_DAMPING}: {why}"
                    out.append(NotAdvertised(r.service, str(prefix), r.route_class, text))
    return tuple(sorted(set(out)))
