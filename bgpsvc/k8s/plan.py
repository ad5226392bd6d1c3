"""``bgpsvc plan``: read the cluster once and say what each node would advertise, and why -- and what
it would not advertise, and why not."""

from __future__ import annotations

from typing import Any

from kubernetes import client as k8s_client

from ..rib import RouteAttrs
from .desired import AdvertisePolicy, Snapshot, evaluate, node_eligible, route_class
from .informer import Informer, endpointslice_informer, node_informer, service_informer
from .whynot import not_advertised


def read_snapshot(api_client: k8s_client.ApiClient, timeout: float = 30.0) -> Snapshot:
    """One consistent list of Services, EndpointSlices and Nodes (through the informers' list path).

    ``timeout`` bounds the wait for all three lists: long enough for a large cluster's paginated lists,
    short enough that an operator running ``bgpsvc plan`` soon learns the API server is unreachable.
    """
    informers: list[Informer[Any]] = [
        service_informer(api_client),
        endpointslice_informer(api_client),
        node_informer(api_client),
    ]
    try:
        for inf in informers:
            inf.start()
        for inf in informers:
            if not inf.wait_synced(timeout):
                raise TimeoutError(f"could not list {inf.resource} within {timeout} s: {inf.last_error}")
        services, slices, nodes = (inf.snapshot() for inf in informers)
        return Snapshot(services, slices, nodes)
    finally:
        for inf in informers:
            inf.stop(timeout=2.0)  # stop() cuts the open request: returns in ms, 2 s bounds a stuck one


def plan(snapshot: Snapshot, nodes: list[str], policy: AdvertisePolicy) -> dict[str, Any]:
    """Per node: eligibility, every prefix with its class, attributes, weight and reasons, every Service
    address not advertised with the reason, and Services whose annotations could not be used."""
    out: dict[str, Any] = {}
    for node in nodes:
        ev = evaluate(snapshot, node, policy)
        routes = []
        for prefix in sorted(ev.reasons, key=lambda p: (p.afi, p.packed, p.length)):
            reasons = ev.reasons[prefix]
            route: dict[str, Any] = {
                "prefix": str(prefix),
                "class": route_class(reasons),
                "attributes": attributes(ev.routes[prefix]),
                "reasons": [
                    {
                        "class": r.route_class,
                        "service": f"{r.service[0]}/{r.service[1]}" if r.service else None,
                        "endpoints": list(r.endpoints),
                    }
                    for r in reasons
                ],
            }
            if prefix in ev.weights:
                route["weight"] = ev.weights[prefix]
            routes.append(route)
        out[node] = {
            "eligible": node_eligible(snapshot, node, policy),
            "known": ("", node) in snapshot.nodes,
            "routes": routes,
            "not_advertised": [
                {
                    "service": f"{n.service[0]}/{n.service[1]}",
                    "address": n.address or None,
                    "class": n.route_class or None,
                    "why": n.why,
                }
                for n in not_advertised(snapshot, node, policy)
            ],
            "problems": [{"service": f"{p.service[0]}/{p.service[1]}", "error": p.text} for p in ev.problems],
        }
    return out


def attributes(a: RouteAttrs) -> dict[str, Any]:
    """A route's attributes as plain data, without the unset ones."""
    data = {
        "med": a.med,
        "local_pref": a.local_pref,
        "communities": list(a.communities),
        "large_communities": [":".join(map(str, c)) for c in a.large_communities],
        "extended_communities": [str(c) for c in a.extended_communities],
    }
    return {k: v for k, v in data.items() if v not in (None, (), [])}


def render(result: dict[str, Any]) -> str:
    """``plan``'s result as the table ``bgpsvc plan`` prints."""
    lines = []
    for node, info in result.items():
        flags = "" if info["eligible"] else "  (excluded by label: advertises nothing)"
        flags += "" if info["known"] else "  (no such Node object)"
        lines.append(f"node {node}: {len(info['routes'])} routes{flags}")
        for r in info["routes"]:
            why = "; ".join(
                r2["class"]
                + (f" {r2['service']}" if r2["service"] else "")
                + (f" via {', '.join(r2['endpoints'])}" if r2["endpoints"] else "")
                for r2 in r["reasons"]
            )
            weight = f"  [weight {r['weight']}]" if "weight" in r else ""
            lines.append(f"  {r['prefix']:<24} {r['class']:<16} {why}{weight}")
        if info["not_advertised"]:
            lines.append(f"  not advertised ({len(info['not_advertised'])}):")
            for n in info["not_advertised"]:
                what = f" {n['class']} {n['address']}" if n["address"] else ""
                lines.append(f"    {n['service']}{what}: {n['why']}")
        for p in info["problems"]:
            lines.append(f"  annotation problem: {p['service']}: {p['error']} (class attributes used)")
    return "\n".join(lines)
