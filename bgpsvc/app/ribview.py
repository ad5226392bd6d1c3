"""What was sent to each peer and what it sent us: ``/routes`` (JSON) and ``bgpsvc routes`` (a table).

Read from each ``Peer``'s Adj-RIB-Out (the wire attributes the peer has from us, as FRR's ``show bgp
neighbor X advertised-routes``) and, where the peer stores them (``store_routes``), its Adj-RIB-In.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from ..aio import Speaker
from ..fsm import Peer
from ..rib import Attrs
from ..wire import MpReachNlri, NextHop, Prefix
from ..wire.constants import attr_name
from ..wire.describe import describe_attribute

#: JSON keys of the attributes an operator compares most, in the table's column order.
_KEYS = {"multi_exit_disc": "med", "large_community": "large_communities"}


def route_json(prefix: Prefix, attrs: Attrs, stale: bool = False) -> dict[str, Any]:
    """One route: the prefix, its next hops and each attribute by name (``describe_attribute``)."""
    out: dict[str, Any] = {"prefix": str(prefix)}
    for a in attrs:
        if isinstance(a, MpReachNlri):
            out["next_hop"] = [str(n) for n in a.next_hop]
        elif isinstance(a, NextHop):
            out["next_hop"] = [str(a.address)]
        else:
            name = attr_name(a.type_code).lower()
            out[_KEYS.get(name, name)] = describe_attribute(a)
    if stale:
        out["stale"] = True
    return out


def _sorted(prefixes: Iterable[Prefix]) -> list[Prefix]:
    return sorted(prefixes, key=lambda p: (p.afi, p.packed, p.length))


def peer_json(peer: Peer, received: bool) -> dict[str, Any]:
    """One peer's Adj-RIB-Out, and with ``received`` its Adj-RIB-In (None when not stored)."""
    p = peer.config.peer
    sent = peer.rib_out.sent if peer.rib_out is not None else {}
    out: dict[str, Any] = {
        "name": peer.label,
        "address": p.address,
        "peer_as": p.peer_as,
        "state": peer.state.value,
        "advertised": [route_json(prefix, sent[prefix]) for prefix in _sorted(sent)],
    }
    if received:
        rib_in = peer.rib_in
        if rib_in is None:
            out["received"] = None
        else:
            table = {pfx: r for routes in rib_in.routes.values() for pfx, r in routes.items()}
            out["received"] = [route_json(x, table[x].attributes, table[x].stale) for x in _sorted(table)]
    return out


def routes_json(speaker: Speaker | None, peer: str | None = None, received: bool = False) -> dict[str, Any]:
    """Every peer (or the one named ``peer``, by name or address); ``KeyError`` for an unknown name."""
    peers = [] if speaker is None else [d.peer for d in speaker.drivers]
    if peer is not None:
        peers = [x for x in peers if peer in (x.label, x.config.peer.address)]
        if not peers:
            raise KeyError(peer)
    return {"peers": [peer_json(x, received) for x in peers]}


def _cell(route: Mapping[str, Any], key: str) -> str:
    value = route.get(key)
    if value is None:
        return "-"
    if isinstance(value, list):
        return " ".join(map(str, value)) or "-"
    return str(value)


_ORIGIN_CODES = {"IGP": "i", "EGP": "e", "INCOMPLETE": "?"}
_HEADER = f"  {'Network':<24} {'Next Hop':<26} {'MED':>10} {'LocPrf':>10}  {'Path':<16} Communities"


def format_routes(data: Mapping[str, Any], received: bool = False) -> str:
    """The table ``bgpsvc routes`` prints (FRR's ``advertised-routes`` layout)."""
    lines: list[str] = []
    key = "received" if received else "advertised"
    for p in data["peers"]:
        routes = p.get(key)
        who = f"peer {p['name']}" + (f" ({p['address']})" if p["name"] != p["address"] else "")
        head = f"{who} AS {p['peer_as']}, {p['state']}: "
        if routes is None:
            lines.append(head + "received routes are not stored (set store_routes: true on this peer)")
            continue
        lines.append(head + f"{len(routes)} prefixes {key}")
        if not routes:
            continue
        lines.append(_HEADER)
        for r in routes:
            origin = _ORIGIN_CODES.get(str(r.get("origin", "")).upper(), "?")
            path = f"{r.get('as_path', '')} {origin}".strip()
            comms = " ".join(x for x in (_cell(r, "communities"), _cell(r, "large_communities")) if x != "-")
            stale = " (stale)" if r.get("stale") else ""
            lines.append(
                f"  {r['prefix']:<24} {_cell(r, 'next_hop'):<26} {_cell(r, 'med'):>10} "
                f"{_cell(r, 'local_pref'):>10}  {path:<16} {comms or '-'}{stale}"
            )
    return "\n".join(lines)
