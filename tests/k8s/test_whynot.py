"""not_advertised: every reason a node does not advertise a Service's address, and its consistency
with ``evaluate`` (an address is either behind an advertised route or listed, never both)."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from bgpsvc.k8s.desired import LOADBALANCER_IP, AdvertisePolicy, explain
from bgpsvc.k8s.policy import ServiceRange
from bgpsvc.k8s.views import NodeView
from bgpsvc.k8s.whynot import HELD_BY_DAMPING, NODE_EXCLUDED, NotAdvertised, not_advertised

from .test_desired import EXCLUDE, LB, NODES, POLICY, P, eps, mixed_clusters, policies, snap, svc

WEB = ("default", "web")


def reasons(objs: list[object], node: str = "node-a", **kw: object) -> set[tuple[str, str]]:
    return {(n.address, n.why) for n in not_advertised(snap(*objs), node, POLICY, **kw)}  # type: ignore[arg-type]


def test_each_reason() -> None:
    web = svc(
        "web",
        ("10.96.0.10", "fd00:10:96::a"),
        ip_families=("IPv4",),
        external_ips=("192.0.2.99", "203.0.113.4"),
    )
    assert reasons([web]) == {
        ("10.96.0.10", "no ready endpoint of that family on this node"),
        ("fd00:10:96::a", "family not in the Service's ipFamilies"),
        ("192.0.2.99", "outside every configured range"),
        ("203.0.113.4", "no ready endpoint of that family on this node"),
    }
    assert reasons([web, eps("web", "IPv4", ("10.244.1.5", "node-a", True))]) == {
        ("fd00:10:96::a", "family not in the Service's ipFamilies"),
        ("192.0.2.99", "outside every configured range"),
    }
    assert reasons([svc("web", ("10.96.0.10",), advertise=False)]) == {
        ("", "opted out (bgpsvc.io/advertise: false)")
    }
    assert reasons([svc("web", (), headless=True)]) == {("", "headless")}
    assert reasons([svc("web", ("10.96.0.10",), type="ExternalName")]) == {("", "ExternalName")}
    excluded = NodeView("node-a", labels=((EXCLUDE, ""),))
    assert reasons([web, excluded]) == {("", NODE_EXCLUDED)}


def test_no_ready_endpoint_anywhere_and_held_by_damping() -> None:
    policy = replace(POLICY, ranges=(ServiceRange(LB, "host-routes-only", require_ready_endpoint=True),))
    g = svc("g", ("10.96.0.1",), local=False, lb_ips=("198.51.100.200",))
    down = snap(g, eps("g", "IPv4", ("10.244.1.5", "node-x", False)))
    assert not_advertised(down, "node-a", policy) == (
        NotAdvertised(
            ("default", "g"),
            "198.51.100.200",
            LOADBALANCER_IP,
            "no ready endpoint of that family in the cluster",
        ),
    )
    up = snap(g, eps("g", "IPv4", ("10.244.1.5", "node-x", True)))
    assert not_advertised(up, "node-a", policy) == ()
    held = not_advertised(up, "node-a", policy, held={P("198.51.100.200/32"): "rise"})
    assert held == (
        NotAdvertised(("default", "g"), "198.51.100.200/32", LOADBALANCER_IP, f"{HELD_BY_DAMPING}: rise"),
    )
    assert str(held[0]) == "default/g loadbalancer-ip 198.51.100.200/32: held by damping: rise"


CLASS_ADDRESSES = (
    ("cluster-ip", "cluster_ips"),
    ("external-ip", "external_ips"),
    ("loadbalancer-ip", "lb_ips"),
)


@settings(max_examples=200, deadline=None)
@given(mixed_clusters(), st.sampled_from(NODES), policies())
def test_an_address_is_advertised_or_listed_never_both(
    objs: list[object], node: str, policy: AdvertisePolicy
) -> None:
    """For an eligible node, each address of each advertised Service, in a class with configured ranges,
    is either inside an advertised prefix or listed with a reason; a listed one is never inside a
    prefix advertised for that Service."""
    s = snap(*objs)
    routes = explain(s, node, policy)
    listed = not_advertised(s, node, policy)
    whole = {n.service for n in listed if not n.address}
    by_address = {(n.service, n.route_class, n.address) for n in listed if n.address}
    ranges = {"cluster-ip": policy.service_cluster_ips, "external-ip": policy.service_external_ips,
              "loadbalancer-ip": policy.service_loadbalancer_ips}  # fmt: skip
    for key, service in s.services.items():
        if key in whole:
            continue
        for cls, attr in CLASS_ADDRESSES:
            if not ranges[cls]:
                continue
            for ip in getattr(service, attr):
                host = P(f"{ip}/{32 if '.' in ip else 128}").network
                inside = [
                    p for p in routes if p.network.version == host.version and host.subnet_of(p.network)
                ]  # type: ignore[arg-type]
                if (key, cls, ip) in by_address:
                    named = [
                        p for p in inside if any(r.service == key and r.route_class == cls for r in routes[p])
                    ]
                    assert not named, (key, cls, ip, named)
                else:
                    assert inside, (key, cls, ip)


def test_str() -> None:
    assert str(NotAdvertised(WEB, "", "", "headless")) == "default/web: headless"
