"""``resolve``: custom resources, Secrets and a node in; the node's peers, policy, overrides, every object's
conditions and the last good configuration out. Pure, so every case is a function call; objects are
built from API JSON through the converters, as the informers build them."""

from __future__ import annotations

import base64
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from bgpsvc.k8s.advertise import PolicySet, advertisement_from_dict, merge_attrs
from bgpsvc.k8s.desired import CLUSTER_IP, CLUSTER_RANGE, Snapshot
from bgpsvc.k8s.resolve import LastGood, Resources, Secrets, resolve
from bgpsvc.k8s.resources import (
    ADVERTISEMENTS,
    NODE_CONFIGS,
    PEERS,
    node_config_from_dict,
    peer_from_dict,
    secret_from_dict,
)
from bgpsvc.k8s.views import Endpoint, EndpointSliceView, NodeView, ServiceView
from bgpsvc.rib import RouteAttrs
from bgpsvc.wire import Prefix, community

NS = "bgpsvc-system"
N1 = NodeView("node-1", labels=(("rack", "r1"),))
N2 = NodeView("node-2", labels=(("rack", "r2"),))
NODES = {("", "node-1"): N1, ("", "node-2"): N2}


def peer(name: str, address: str = "192.0.2.1", generation: int = 1, **spec: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "generation": generation},
        "spec": {"address": address, "peerASN": 64500, **spec},
    }


def secret(name: str, **data: str) -> dict[str, Any]:
    return {
        "metadata": {"namespace": NS, "name": name},
        "data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()},
    }


def resources(
    *peers: dict[str, Any], adverts: tuple[dict[str, Any], ...] = (), configs: tuple[dict[str, Any], ...] = ()
) -> Resources:
    return Resources(
        peers={("", p["metadata"]["name"]): peer_from_dict(p) for p in peers},
        advertisements={("", a["metadata"]["name"]): advertisement_from_dict(a) for a in adverts},
        node_configs={("", c["metadata"]["name"]): node_config_from_dict(c) for c in configs},
        nodes=NODES,
    )


def secrets(*objs: dict[str, Any], listed: tuple[str, ...] = ()) -> Secrets:
    items = {(NS, o["metadata"]["name"]): secret_from_dict(o) for o in objs}
    return Secrets(items, frozenset(items) | {(NS, n) for n in listed})


def run(res: Resources, sec: Secrets | None = None, node: NodeView = N1, last: LastGood | None = None) -> Any:
    return resolve(res, sec or Secrets(), node, last, secret_namespace=NS)


def conds(out: Any, ref: tuple[str, str]) -> dict[str, tuple[str, str]]:
    return {c.type: (c.status, c.reason) for c in out.conditions[ref]}


# -- peers ---------------------------------------------------------------------------------------------


def test_a_peer_applies_on_the_nodes_its_selector_picks() -> None:
    res = resources(peer("all"), peer("r2", "192.0.2.2", nodeSelector={"matchLabels": {"rack": "r2"}}))
    on1, on2 = run(res), run(res, node=N2)
    assert [p.name for p in on1.peers] == ["all"]
    assert [p.name for p in on2.peers] == ["all", "r2"]
    assert on1.peers[0].address == "192.0.2.1" and on1.peers[0].peer_as == 64500
    assert conds(on1, (PEERS, "r2")) == {
        "Accepted": ("True", "Accepted"),
        "NodesSelected": ("True", "Selected"),
    }
    assert on1.policy is None  # no BGPAdvertisement: the file's policy applies


def test_the_password_comes_from_the_secret() -> None:
    res = resources(peer("p", passwordSecretRef={"name": "md5"}))
    out = run(res, secrets(secret("md5", password="s3cret\n")))
    assert out.peers[0].password == "s3cret"  # a --from-file newline is not part of the key
    assert out.secret_refs == {(NS, "md5")}
    assert conds(out, (PEERS, "p"))["Accepted"] == ("True", "Accepted")


def test_a_secret_not_listed_yet_is_not_missing() -> None:
    out = run(resources(peer("p", passwordSecretRef={"name": "md5"})))
    assert out.peers == () and (PEERS, "p") not in out.conditions
    assert out.secret_refs == {(NS, "md5")}  # the node speaker starts its informer


def test_missing_secret_or_key_is_a_condition_and_the_peer_waits() -> None:
    res = resources(peer("p", passwordSecretRef={"name": "md5", "key": "pw"}))
    gone = run(res, secrets(listed=("md5",)))
    assert gone.peers == ()
    assert conds(gone, (PEERS, "p"))["Accepted"] == ("False", "SecretNotFound")
    nokey = run(res, secrets(secret("md5", password="x")))
    assert conds(nokey, (PEERS, "p"))["Accepted"] == ("False", "SecretKeyNotFound")
    assert "no key 'pw'" in nokey.conditions[(PEERS, "p")][0].message
    toolong = run(res, secrets(secret("md5", pw="x" * 81)))
    assert conds(toolong, (PEERS, "p"))["Accepted"] == ("False", "InvalidPassword")


def test_an_unusable_object_keeps_the_last_good_configuration() -> None:
    res = resources(peer("p", passwordSecretRef={"name": "md5"}))
    good = run(res, secrets(secret("md5", password="old")))
    # The Secret is deleted: the node keeps the peer with the old key, and says so.
    kept = run(res, secrets(listed=("md5",)), last=good.last_good)
    assert kept.peers == good.peers and kept.peers[0].password == "old"
    assert conds(kept, (PEERS, "p"))["Accepted"] == ("False", "SecretNotFound")
    assert kept.problems == ("BGPPeer p: Secret bgpsvc-system/md5 not found; keeping the last good",)
    # A node that never had it applies nothing of it.
    assert run(res, secrets(listed=("md5",)), node=N2).peers == ()
    # Deleting the object ends it, last good or not.
    assert run(resources(), last=kept.last_good).peers == ()


def test_a_selector_matching_no_node_is_reported_and_the_old_version_stays() -> None:
    before = run(resources(peer("p", nodeSelector={"matchLabels": {"rack": "r1"}})))
    assert [p.name for p in before.peers] == ["p"]
    typo = resources(peer("p", generation=2, nodeSelector={"matchLabels": {"rack": "rl"}}))
    after = run(typo, last=before.last_good)
    assert conds(after, (PEERS, "p"))["NodesSelected"] == ("False", "NoMatchingNode")
    assert "rack=rl" in after.conditions[(PEERS, "p")][1].message
    assert after.peers == before.peers and after.problems
    assert run(typo).peers == ()  # nothing to keep


def test_a_selector_that_moves_to_other_nodes_applies_at_once() -> None:
    before = run(resources(peer("p", nodeSelector={"matchLabels": {"rack": "r1"}})))
    moved = run(resources(peer("p", nodeSelector={"matchLabels": {"rack": "r2"}})), last=before.last_good)
    assert moved.peers == () and moved.problems == ()


def test_an_invalid_spec_is_a_condition_naming_the_field() -> None:
    out = run(resources(peer("p", holdTime=2)))
    assert conds(out, (PEERS, "p"))["Accepted"] == ("False", "InvalidSpec")
    assert out.conditions[(PEERS, "p")][0].message.startswith("spec.holdTime: ")
    assert out.peers == ()


def test_two_peers_for_one_address_on_a_node_the_first_by_name_wins() -> None:
    out = run(resources(peer("b"), peer("a")))
    assert [p.name for p in out.peers] == ["a"]
    assert out.problems == ("BGPPeer b: 192.0.2.1 port 179 is BGPPeer a's; ignored",)


def test_fields_map_onto_peerconfig() -> None:
    spec = {
        "localASN": 65001,
        "port": 1179,
        "sourceAddress": "192.0.2.10",
        "holdTime": 30,
        "keepaliveTime": 5,
        "connectRetryTime": 2,
        "passive": True,
        "families": ["ipv4-unicast"],
        "ebgpMultihop": 3,
        "gracefulRestart": {"enabled": False},
    }
    (p,) = run(resources(peer("p", **spec))).peers
    assert (p.local_as, p.port, p.local_address, p.hold_time, p.keepalive_time) == (
        65001,
        1179,
        "192.0.2.10",
        30,
        5,
    )
    assert (p.connect_retry_time, p.passive, p.multihop, p.graceful_restart) == (2.0, True, 3, False)
    assert [str(f) for f in p.families] == ["ipv4-unicast"]


# -- advertisements ------------------------------------------------------------------------------------


def advert(name: str, **spec: Any) -> dict[str, Any]:
    return {"metadata": {"name": name, "generation": 1}, "spec": spec}


def svc(name: str, ip: str, **labels: str) -> ServiceView:
    return ServiceView("default", name, cluster_ips=(ip,), external_traffic_policy="Local",
                       ip_families=("IPv4",), labels=tuple(sorted(labels.items())))  # fmt: skip


def test_advertisements_pick_services_by_label_and_merge_attributes() -> None:
    res = resources(
        adverts=(
            advert(
                "gold",
                serviceClusterIPs=["10.96.0.0/16"],
                serviceSelector={"matchLabels": {"tier": "gold"}},
                attributes=[{"communities": ["64512:1"], "localPreference": 200}],
            ),
            advert(
                "all",
                serviceClusterIPs=["10.96.0.0/16"],
                attributes=[
                    {"routeClasses": ["ClusterRange"], "communities": ["64512:9"], "localPreference": 100}
                ],
            ),
        )
    )
    out = run(res)
    assert isinstance(out.policy, PolicySet) and [e.name for e in out.policy.entries] == ["all", "gold"]
    assert conds(out, (ADVERTISEMENTS, "gold")) == {
        "Accepted": ("True", "Accepted"),
        "NodesSelected": ("True", "Selected"),
    }
    slices = {
        ("default", f"{n}-x"): EndpointSliceView(
            "default", f"{n}-x", n, "IPv4", (Endpoint(("10.244.1.1",), "node-1"),)
        )
        for n in ("web", "db")
    }
    snap = Snapshot(
        services={
            ("default", "web"): svc("web", "10.96.0.10", tier="gold"),
            ("default", "db"): svc("db", "10.96.0.20"),
        },
        slices=slices,
        nodes={("", "node-1"): N1},
    )
    explained, routes = out.policy.explain(snap, "node-1")
    web, db, rng = (
        Prefix.from_network("10.96.0.10/32"),
        Prefix.from_network("10.96.0.20/32"),
        Prefix.from_network("10.96.0.0/16"),
    )
    assert {str(r) for r in explained[web]} >= {f"{CLUSTER_IP} default/web (endpoints 10.244.1.1)"}
    assert routes[web].communities == (community("64512:1"),) and routes[web].local_pref == 200
    assert (
        db in routes and routes[db].communities == ()
    )  # only "all" covers db, and it has no cluster-ip attrs
    # Both want the range: communities united, the higher LOCAL_PREF.
    assert routes[rng].communities == (community("64512:1"), community("64512:9"))
    assert routes[rng].local_pref == 200
    assert {r.route_class for r in explained[rng]} == {CLUSTER_RANGE}


def test_advertisements_exist_but_none_applies_advertises_nothing() -> None:
    res = resources(
        adverts=(
            advert("edge", serviceClusterIPs=["10.96.0.0/16"], nodeSelector={"matchLabels": {"rack": "r2"}}),
        )
    )
    assert run(res).policy == PolicySet(())
    assert len(run(res, node=N2).policy.entries) == 1


def test_an_unusable_advertisement_keeps_the_last_good() -> None:
    good = run(resources(adverts=(advert("a", serviceClusterIPs=["10.96.0.0/16"]),)))
    bad = run(resources(adverts=(advert("a", serviceClusterIPs=["10.96.0.1/16"]),)), last=good.last_good)
    assert conds(bad, (ADVERTISEMENTS, "a"))["Accepted"] == ("False", "InvalidSpec")
    assert bad.policy == good.policy and bad.problems


# -- node overrides ------------------------------------------------------------------------------------


def test_a_node_config_overrides_router_id_and_as_of_its_node_only() -> None:
    configs = (
        {
            "metadata": {"name": "node-1", "generation": 1},
            "spec": {"routerID": "192.0.2.99", "localASN": 65009},
        },
        {"metadata": {"name": "node-9", "generation": 1}, "spec": {"localASN": 65009}},
    )
    out = run(resources(configs=configs))
    assert (out.overrides.router_id, out.overrides.local_as) == ("192.0.2.99", 65009)
    assert run(resources(configs=configs), node=N2).overrides.router_id is None
    assert conds(out, (NODE_CONFIGS, "node-9"))["NodesSelected"] == ("False", "NoMatchingNode")
    broken = ({"metadata": {"name": "node-1", "generation": 2}, "spec": {"routerID": "2001:db8::1"}},)
    kept = run(resources(configs=broken), last=out.last_good)
    assert kept.overrides == out.overrides and conds(kept, (NODE_CONFIGS, "node-1"))["Accepted"][0] == "False"


# -- properties ----------------------------------------------------------------------------------------

_attrs = st.builds(
    RouteAttrs,
    local_pref=st.none() | st.integers(0, 2**32 - 1),
    med=st.none() | st.integers(0, 2**32 - 1),
    communities=st.lists(st.integers(0, 2**32 - 1), max_size=3).map(tuple),
    large_communities=st.lists(st.tuples(*[st.integers(0, 2**32 - 1)] * 3), max_size=2).map(tuple),
)


@given(st.lists(_attrs, min_size=1, max_size=5), st.randoms())
def test_merged_attributes_do_not_depend_on_order(attrs: list[RouteAttrs], rnd: Any) -> None:
    shuffled = list(attrs)
    rnd.shuffle(shuffled)
    assert merge_attrs(attrs) == merge_attrs(shuffled)


_names = st.lists(st.sampled_from("abcdefgh"), min_size=1, max_size=6, unique=True)


@given(
    _names,
    st.lists(st.sampled_from(["192.0.2.1", "192.0.2.2", "192.0.2.3"]), min_size=6, max_size=6),
    st.randoms(),
)
def test_resolve_does_not_depend_on_listing_order(names: list[str], addrs: list[str], rnd: Any) -> None:
    objs = [
        peer(n, addrs[i], nodeSelector={"matchLabels": {"rack": "r1"}} if i % 2 else None)
        for i, n in enumerate(names)
    ]
    for o in objs:
        if o["spec"]["nodeSelector"] is None:
            del o["spec"]["nodeSelector"]
    shuffled = list(objs)
    rnd.shuffle(shuffled)
    a, b = run(resources(*objs)), run(resources(*shuffled))
    assert (a.peers, a.conditions, a.problems) == (b.peers, b.conditions, b.problems)
    assert len({(p.address, p.port) for p in a.peers}) == len(a.peers)  # never two sessions for one peer
