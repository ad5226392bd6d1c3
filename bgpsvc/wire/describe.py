"""Plain-data views of messages for humans and JSON (CLI, logs, status). Not used on hot paths."""

from __future__ import annotations

from typing import Any

from .aspath import As4Path, AsPath
from .attr_base import PathAttribute
from .attributes import (
    Aggregator,
    As4Aggregator,
    AtomicAggregate,
    ClusterList,
    LocalPref,
    MultiExitDisc,
    NextHop,
    Origin,
    OriginatorId,
    Otc,
    UnknownAttribute,
)
from .capabilities import Capability, UnknownCapability
from .communities import Communities, ExtendedCommunities, LargeCommunities, community_str
from .constants import CapabilityCode, attr_name
from .messages import Keepalive, Message, Notification, Open, RouteRefresh
from .mp import MpReachNlri, MpUnreachNlri
from .update import Update


def describe_attribute(a: PathAttribute) -> Any:
    """The attribute's value as plain data."""
    if isinstance(a, Origin):
        return str(a)
    if isinstance(a, (AsPath, As4Path)):
        return " ".join(map(str, a.segments))
    if isinstance(a, (NextHop, OriginatorId)):
        return str(a.address)
    if isinstance(a, (MultiExitDisc, LocalPref)):
        return a.value
    if isinstance(a, AtomicAggregate):
        return True
    if isinstance(a, (Aggregator, As4Aggregator)):
        return {"asn": a.asn, "address": str(a.address)}
    if isinstance(a, Communities):
        return [community_str(v) for v in a.values]
    if isinstance(a, ClusterList):
        return [str(i) for i in a.ids]
    if isinstance(a, ExtendedCommunities):
        return [str(c) for c in a.values]
    if isinstance(a, LargeCommunities):
        return [f"{x}:{y}:{z}" for x, y, z in a.values]
    if isinstance(a, Otc):
        return a.asn
    if isinstance(a, MpReachNlri):
        return {
            "family": str(a.family),
            "next_hop": [str(n) for n in a.next_hop],
            "nlri": [str(p) for p in a.nlri],
        }
    if isinstance(a, MpUnreachNlri):
        return {"family": str(a.family), "withdrawn": [str(p) for p in a.withdrawn]}
    if isinstance(a, UnknownAttribute):
        return {"flags": a.flags, "value": a.value.hex()}
    return repr(a)


def _capability(c: Capability) -> dict[str, Any]:
    if isinstance(c, UnknownCapability):
        return {"code": c.code, "value": c.value.hex()}
    try:
        name = CapabilityCode(c.code).name.lower()
    except ValueError:
        name = str(c.code)
    fields = {k: getattr(c, k) for k in getattr(c, "__dataclass_fields__", {})}
    return {"name": name, **{k: _plain(v) for k, v in fields.items()}}


def _plain(v: Any) -> Any:
    if isinstance(v, (tuple, list)):
        return [_plain(x) for x in v]
    if hasattr(v, "__dataclass_fields__"):
        return {k: _plain(getattr(v, k)) for k in v.__dataclass_fields__}
    if isinstance(v, (bool, int, float, str)) or v is None:
        return v
    return str(v)


def describe(msg: Message) -> dict[str, Any]:
    """A JSON-serialisable description of any message."""
    if isinstance(msg, Update):
        out: dict[str, Any] = {"type": "UPDATE"}
        eor = msg.end_of_rib
        if eor is not None:
            out["end_of_rib"] = str(eor)
        out["withdrawn"] = [str(p) for p in msg.withdrawn]
        out["attributes"] = {attr_name(a.type_code).lower(): describe_attribute(a) for a in msg.attributes}
        out["nlri"] = [str(p) for p in msg.nlri]
        if msg.errors:
            out["errors"] = [
                {
                    "subcode": e.subcode,
                    "handling": e.handling.name.lower(),
                    "attr_type": e.attr_type,
                    "attr_name": e.attr_name,
                    "rfc": e.rfc,
                    "reason": e.reason,
                }
                for e in msg.errors
            ]
        return out
    if isinstance(msg, Open):
        return {
            "type": "OPEN",
            "version": msg.version,
            "asn": msg.asn,
            "my_as": msg.my_as,
            "hold_time": msg.hold_time,
            "bgp_id": str(msg.bgp_id),
            "capabilities": [_capability(c) for c in msg.capabilities],
        }
    if isinstance(msg, Notification):
        d: dict[str, Any] = {
            "type": "NOTIFICATION",
            "code": msg.code,
            "subcode": msg.subcode,
            "data": msg.data.hex(),
            "text": str(msg),
        }
        if msg.shutdown_message is not None:
            d["shutdown_message"] = msg.shutdown_message
        return d
    if isinstance(msg, Keepalive):
        return {"type": "KEEPALIVE"}
    if isinstance(msg, RouteRefresh):
        return {"type": "ROUTE_REFRESH", "afi": msg.afi, "safi": msg.safi, "subtype": msg.subtype}
    raise TypeError(f"not a message: {msg!r}")


__all__ = ["describe", "describe_attribute"]
