"""Incremental reconcile (issue 14): after every random event, the incrementally kept answer equals a full
``evaluate`` of the same stores -- reasons, routes, weights and problems -- and the Reconciler's result
equals ``desired_routes``; plus the Store's change log it runs on."""

from __future__ import annotations

import asyncio
import gc
from collections import Counter
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bgpsvc.k8s import reconcile as reconcile_module
from bgpsvc.k8s.advertise import PolicyEntry, PolicySet
from bgpsvc.k8s.desired import (
    CLUSTER_IP,
    CLUSTER_RANGE,
    EXTERNAL_IP,
    LOADBALANCER_IP,
    AdvertisePolicy,
    Snapshot,
    desired_routes,
    evaluate,
    explain,
    route_class,
)
from bgpsvc.k8s.incremental import IncrementalPolicySet, IncrementalRoutes
from bgpsvc.k8s.labels import selector_from_dict
from bgpsvc.k8s.reconcile import Reconciler, reconcile_step
from bgpsvc.k8s.store import Changes, Store
from bgpsvc.k8s.views import Endpoint, EndpointSliceView, Key, NodeView, ServiceView
from bgpsvc.rib import RouteAttrs
from bgpsvc.wire import Prefix

from .test_desired import (
    ANNOTATION_SETS,
    EXCLUDE,
    FAMILY_SETS,
    NODES,
    POLICY,
    P,
    any_cluster_ip,
    any_endpoint,
    any_external_ip,
    eps,
    policies,
    svc,
)

NAMES = ["s0", "s1", "s2"]
#: Few addresses, so that Services share IPs (and host routes), and most of them inside the ranges.
CLUSTER_IPS = st.one_of(
    st.sampled_from(["10.96.0.7", "10.96.0.8", "10.96.0.9", "fd00:10:96::7"]), any_cluster_ip
)
#: Mostly this node's ready endpoints: they are what makes a Local Service's routes.
EXTERNAL_IPS = st.one_of(
    st.sampled_from(["203.0.113.9", "198.51.100.7", "198.51.100.140", "2001:db8:e::7"]), any_external_ip
)
endpoints = st.builds(
    Endpoint,
    st.lists(st.sampled_from(["10.244.0.1", "10.244.0.2", "fd00:244::1"]), min_size=1, max_size=2).map(tuple),
    st.sampled_from(["node-a", "node-a", *NODES, None]),
    st.sampled_from([True, True, False, None]),
    st.sampled_from([True, False, None]),
)


@st.composite
def services(draw: st.DrawFn) -> ServiceView:
    return ServiceView(
        "default",
        draw(st.sampled_from(NAMES)),
        type=draw(
            st.sampled_from(["ClusterIP", "LoadBalancer", "LoadBalancer", "LoadBalancer", "ExternalName"])
        ),
        cluster_ips=tuple(
            draw(st.lists(CLUSTER_IPS, min_size=draw(st.sampled_from([0, 1, 1, 1])), max_size=2, unique=True))
        ),
        external_ips=tuple(draw(st.lists(EXTERNAL_IPS, max_size=2))),
        lb_ips=tuple(draw(st.lists(EXTERNAL_IPS, max_size=2))),
        external_traffic_policy=draw(st.sampled_from(["Local", "Local", "Cluster"])),
        ip_families=draw(st.sampled_from([(), (), (), *FAMILY_SETS])),
        advertise=draw(st.integers(0, 9)) > 0,
        headless=draw(st.integers(0, 9)) == 0,
        annotations=draw(st.sampled_from([(), (), *ANNOTATION_SETS])),
        labels=draw(st.sampled_from([(), (("team", "a"),), (("team", "b"),)])),
    )


@st.composite
def slices(draw: st.DrawFn) -> EndpointSliceView:
    name = draw(st.sampled_from(NAMES))
    return EndpointSliceView(
        "default",
        f"{name}-{draw(st.integers(0, 1))}",
        draw(st.sampled_from([name, name, name, *NAMES, None])),  # mostly its own Service's
        draw(st.sampled_from(["IPv4", "IPv4", "IPv4", "IPv6", "FQDN"])),
        tuple(draw(st.lists(st.one_of(endpoints, endpoints, endpoints, any_endpoint), max_size=4))),
    )


#: ("put", view) | ("delete", kind, index) | ("flip", kind, index): flip readiness of a slice's first
#: endpoint or a Service's externalTrafficPolicy | ("move", "slices", index, name): relabel a slice to
#: another Service; objects picked by index among the stored ones.
events = st.one_of(
    st.tuples(st.just("put"), st.one_of(services(), slices(), slices())),
    st.tuples(st.just("put"), st.sampled_from(NODES).map(lambda n: NodeView(n, labels=((EXCLUDE, ""),)))),
    st.tuples(st.just("put"), st.sampled_from(NODES).map(NodeView)),
    st.tuples(st.just("delete"), st.sampled_from(["services", "slices", "nodes"]), st.integers(0, 20)),
    st.tuples(st.just("flip"), st.sampled_from(["services", "slices"]), st.integers(0, 20)),
    st.tuples(st.just("move"), st.just("slices"), st.integers(0, 20), st.sampled_from([*NAMES, None])),
)


class Cluster:
    """Three real Stores, changed as an informer changes them."""

    def __init__(self) -> None:
        self.stores: dict[str, Store[Any]] = {"services": Store(), "slices": Store(), "nodes": Store()}

    def apply(self, ev: tuple[Any, ...]) -> str | None:
        """Apply one event; returns the store it changed (None if nothing changed)."""
        if ev[0] == "put":
            view = ev[1]
            kind = {ServiceView: "services", EndpointSliceView: "slices", NodeView: "nodes"}[type(view)]
            return kind if self.stores[kind].put(view.key, view) else None
        kind, index = ev[1], ev[2]
        store = self.stores[kind]
        keys = sorted(store.snapshot())
        if not keys:
            return None
        key = keys[index % len(keys)]
        if ev[0] == "delete":
            return kind if store.delete(key) else None
        old = store.get(key)
        assert old is not None
        if ev[0] == "move":
            return kind if store.put(key, replace(old, service_name=ev[3])) else None
        if isinstance(old, ServiceView):
            flipped = "Cluster" if old.local else "Local"
            return kind if store.put(key, replace(old, external_traffic_policy=flipped)) else None
        if isinstance(old, EndpointSliceView) and old.endpoints:
            first = old.endpoints[0]
            ep = replace(first, ready=first.ready is False)  # False <-> ready (True / unset)
            return (
                kind
                if store.put(key, replace(old, endpoints=(ep, *old.endpoints[1:]), any_ready=None))
                else None
            )
        return None

    def snapshot(self) -> Snapshot:
        return Snapshot(*(self.stores[k].snapshot() for k in ("services", "slices", "nodes")))


@st.composite
def initial(draw: st.DrawFn) -> list[object]:
    """A starting cluster: most Services with a slice or two of their own."""
    objs: list[object] = []
    for name in NAMES:
        if draw(st.integers(0, 4)) == 0:
            continue
        objs.append(replace(draw(services()), name=name))
        for j in range(draw(st.integers(1, 2))):
            objs.append(replace(draw(slices()), name=f"{name}-{j}", service_name=name))
    return objs


@settings(max_examples=300, deadline=None)
@given(initial(), st.lists(events, min_size=3, max_size=30), st.sampled_from(["node-a", *NODES]), policies())
def test_incremental_equals_full_after_every_event(
    start: list[object], evs: list[tuple[Any, ...]], node: str, policy: AdvertisePolicy
) -> None:
    cluster = Cluster()
    for view in start:
        cluster.apply(("put", view))
    inc = IncrementalRoutes.rebuild(cluster.snapshot(), node, policy)
    versions = {k: s.version for k, s in cluster.stores.items()}
    for ev in evs:
        cluster.apply(ev)
        changes = {k: s.changes_since(versions[k]) for k, s in cluster.stores.items()}
        versions = {k: c.version for k, c in changes.items()}
        if changes["nodes"].keys:
            inc = IncrementalRoutes.rebuild(cluster.snapshot(), node, policy)  # as the Reconciler does
        else:
            svc_keys, slice_keys = changes["services"].keys, changes["slices"].keys
            assert svc_keys is not None and slice_keys is not None
            inc.update(cluster.stores["services"], cluster.stores["slices"], svc_keys, slice_keys)
        full = evaluate(cluster.snapshot(), node, policy)
        got = inc.evaluation()
        assert got.reasons == full.reasons
        assert got.routes == full.routes
        assert got.weights == full.weights
        assert got.problems == full.problems
        assert inc.classes == {p: route_class(r) for p, r in full.reasons.items()}


@st.composite
def policy_sets(draw: st.DrawFn) -> PolicySet:
    """One or two BGPAdvertisements, each for every Service or those of one team."""
    entries = []
    for i in range(draw(st.integers(1, 2))):
        team = draw(st.sampled_from([None, "a", "b"]))
        selector = None if team is None else selector_from_dict({"matchLabels": {"team": team}}, "sel")
        pref, med = draw(st.sampled_from([None, 100, 200])), draw(st.sampled_from([None, 5, 9]))
        classes = (CLUSTER_IP, CLUSTER_RANGE, EXTERNAL_IP, LOADBALANCER_IP)
        attrs = {c: RouteAttrs(local_pref=pref, med=med, communities=(i, j)) for j, c in enumerate(classes)}
        entries.append(PolicyEntry(f"adv-{i}", replace(draw(policies()), attributes=attrs), selector))
    return PolicySet(tuple(entries))


@settings(max_examples=150, deadline=None)
@given(
    initial(), st.lists(events, min_size=3, max_size=20), st.sampled_from(["node-a", *NODES]), policy_sets()
)
def test_incremental_policy_set_equals_explain_after_every_event(
    start: list[object], evs: list[tuple[Any, ...]], node: str, policy: PolicySet
) -> None:
    """BGPAdvertisements (CRD-driven policy): the same property against ``PolicySet.explain``."""
    cluster = Cluster()
    for view in start:
        cluster.apply(("put", view))
    inc = IncrementalPolicySet.rebuild(cluster.snapshot(), node, policy)
    versions = {k: s.version for k, s in cluster.stores.items()}
    for ev in evs:
        cluster.apply(ev)
        changes = {k: s.changes_since(versions[k]) for k, s in cluster.stores.items()}
        versions = {k: c.version for k, c in changes.items()}
        if changes["nodes"].keys:
            inc = IncrementalPolicySet.rebuild(cluster.snapshot(), node, policy)
        else:
            svc_keys, slice_keys = changes["services"].keys, changes["slices"].keys
            assert svc_keys is not None and slice_keys is not None
            inc.update(cluster.stores["services"], cluster.stores["slices"], svc_keys, slice_keys)
        explained, routes = policy.explain(cluster.snapshot(), node)
        assert inc.evaluation().reasons == explained
        assert inc.routes == routes
        assert inc.classes == {p: route_class(r) for p, r in explained.items()}


def test_update_reports_exactly_the_prefixes_that_changed() -> None:
    cluster = Cluster()
    web = svc("web", ("10.96.0.10",))
    cluster.apply(("put", web))
    inc = IncrementalRoutes.rebuild(cluster.snapshot(), "node-a", POLICY)
    v = cluster.stores["slices"].version
    on = eps("web", "IPv4", ("10.244.1.5", "node-a", True))
    cluster.apply(("put", on))
    ch = cluster.stores["slices"].changes_since(v)
    assert ch.keys == frozenset({on.key}) and len(ch.received) == 1
    assert inc.update(cluster.stores["services"], cluster.stores["slices"], (), ch.keys) == {
        P("10.96.0.10/32")
    }
    # Another node's endpoint moving changes nothing here.
    v = ch.version
    cluster.apply(("put", eps("web", "IPv4", ("10.244.1.5", "node-a", True), ("10.244.2.5", "node-b", True))))
    ch = cluster.stores["slices"].changes_since(v)
    assert ch.keys is not None
    assert inc.update(cluster.stores["services"], cluster.stores["slices"], (), ch.keys) == set()
    # Deleting the Service withdraws its host route; the slice alone keeps nothing.
    cluster.apply(("delete", "services", 0))
    assert inc.update(cluster.stores["services"], cluster.stores["slices"], {web.key}, ()) == {
        P("10.96.0.10/32")
    }
    assert P("10.96.0.10/32") not in inc.routes


def test_a_shared_address_stays_until_its_last_service_goes() -> None:
    cluster = Cluster()
    a, b = svc("a", ("10.96.0.10",)), svc("b", ("10.96.0.10",))
    for view in (
        a,
        b,
        eps("a", "IPv4", ("10.244.1.5", "node-a", True)),
        eps("b", "IPv4", ("10.244.1.6", "node-a", True)),
    ):
        cluster.apply(("put", view))
    inc = IncrementalRoutes.rebuild(cluster.snapshot(), "node-a", POLICY)
    host = P("10.96.0.10/32")
    assert host in inc.routes
    cluster.stores["services"].delete(a.key)
    assert inc.update(cluster.stores["services"], cluster.stores["slices"], {a.key}, ()) == set()
    assert host in inc.routes
    cluster.stores["services"].delete(b.key)
    assert inc.update(cluster.stores["services"], cluster.stores["slices"], {b.key}, ()) == {host}
    assert host not in inc.routes


def test_store_change_log() -> None:
    s: Store[int] = Store()
    assert s.changes_since(-1).keys is None  # before any list: start over
    s.replace({("ns", "a"): 1})
    v = s.version
    assert s.changes_since(v) == Changes(v, frozenset(), ())
    assert not s.put(("ns", "a"), 1)  # equal: no change, no version
    assert s.version == v
    s.put(("ns", "b"), 2, at=10.0)
    s.put(("ns", "a"), 3, at=11.0)
    s.delete(("ns", "b"), at=12.0)
    ch = s.changes_since(v)
    assert (
        ch.version == v + 3
        and ch.keys == frozenset({("ns", "a"), ("ns", "b")})
        and ch.received == (10.0, 11.0, 12.0)
    )
    assert s.changes_since(v + 2).keys == frozenset({("ns", "b")})
    assert s.get(("ns", "a")) == 3 and s.get(("ns", "b")) is None
    # A relist: consumers older than it start over.
    s.replace({("ns", "c"): 4})
    assert s.changes_since(ch.version).keys is None
    assert s.versioned_snapshot() == (s.version, {("ns", "c"): 4})


def test_store_log_is_compacted_when_names_churn() -> None:
    s: Store[int] = Store()
    s.replace({})
    v = s.version
    for i in range(3000):  # objects come and go under new names (generated EndpointSlice names)
        s.put(("ns", f"x{i}"), i)
        s.delete(("ns", f"x{i}"))
    assert len(s._log) <= 2 * len(s) + 1025
    assert s.changes_since(v).keys is None  # the log no longer reaches back: start over
    w = s.version
    s.put(("ns", "y"), 1)
    assert s.changes_since(w).keys == frozenset({("ns", "y")})


class Source:
    """A synced, healthy informer stand-in over a real Store (what the Reconciler reads)."""

    def __init__(self, store: Store[Any]) -> None:
        self.store = store
        self.synced = self.healthy = True
        self.relists = 0

    @property
    def size(self) -> int:
        return len(self.store)

    def snapshot(self) -> Mapping[Key, Any]:
        return self.store.snapshot()

    def versioned_snapshot(self) -> tuple[int, Mapping[Key, Any]]:
        return self.store.versioned_snapshot()

    def changes_since(self, version: int) -> Changes:
        return self.store.changes_since(version)

    def get(self, key: Key) -> Any:
        return self.store.get(key)


def reconciler(cluster: Cluster, **kw: Any) -> Reconciler:
    """A Reconciler over ``cluster``'s stores (each emptied as a first list would leave it), for node-a
    with ``POLICY`` and no-op apply unless ``kw`` says otherwise."""
    for store in cluster.stores.values():
        store.replace({})
    stores = cluster.stores
    args: dict[str, Any] = {"node": "node-a", "policy": POLICY, "apply": lambda _r, _c: None, "debounce": 0}
    return Reconciler(
        Source(stores["services"]), Source(stores["slices"]), Source(stores["nodes"]), **(args | kw)
    )


@settings(max_examples=100, deadline=None)
@given(
    initial(), st.lists(events, max_size=20), st.sampled_from(["node-a", *NODES]), policies(), st.booleans()
)
def test_reconciler_results_equal_full_recompute(
    start: list[object], evs: list[tuple[Any, ...]], node: str, policy: AdvertisePolicy, relist: bool
) -> None:
    async def run() -> None:
        cluster = Cluster()
        for store in cluster.stores.values():
            store.replace({})
        for view in start:
            cluster.apply(("put", view))
        applied: list[Mapping[Prefix, RouteAttrs]] = []
        stores = cluster.stores
        rec = Reconciler(
            Source(stores["services"]),
            Source(stores["slices"]),
            Source(stores["nodes"]),
            node=node,
            policy=policy,
            apply=lambda routes, _changed: applied.append(routes),
            debounce=0,
        )
        rec.reconcile_once()
        node_changes = 0
        for i, ev in enumerate(evs):
            kind = cluster.apply(ev)
            node_changes += kind == "nodes"
            if relist and i == len(evs) // 2:
                stores["slices"].replace(
                    dict(stores["slices"].snapshot()) | {("default", "x"): eps("x", "IPv4")}
                )
            rec.reconcile_once()
            snap = cluster.snapshot()
            assert applied[-1] == desired_routes(snap, node, policy)
            assert rec.classes == {p: route_class(r) for p, r in explain(snap, node, policy).items()}
            assert rec.result is not None and rec.result.problems == evaluate(snap, node, policy).problems
            assert dict(rec.result.stats.by_class) == dict(Counter(rec.classes.values()))
            if kind in ("services", "slices") and not relist:
                assert rec.stats.full == 1 + node_changes  # the rest was incremental
        assert rec.stats.mismatches == 0

    asyncio.run(run())


def test_a_relist_freezes_the_new_stores_once_they_are_large(monkeypatch: pytest.MonkeyPatch) -> None:
    froze: list[int] = []
    monkeypatch.setattr(gc, "freeze", lambda: froze.append(1))
    monkeypatch.setattr(reconcile_module, "RELIST_FREEZE_MIN", 2)

    async def run() -> None:
        cluster = Cluster()
        rec = reconciler(cluster)
        stores = cluster.stores
        rec.reconcile_once()
        cluster.apply(("put", svc("web", ("10.96.0.10",))))
        rec.reconcile_once()  # an event: incremental, nothing frozen
        assert froze == []
        stores["slices"].replace({("default", "web"): eps("web", "IPv4", ("10.244.1.5", "node-a", True))})
        rec.reconcile_once()  # a relist of a store: full, and the new objects frozen
        assert froze == [1] and rec.stats.full == 2
        monkeypatch.setattr(reconcile_module, "RELIST_FREEZE_MIN", 100)
        stores["slices"].replace({})
        rec.reconcile_once()  # a small cluster: a full collection is short, nothing to freeze
        assert froze == [1]

    asyncio.run(run())


def test_periodic_full_recompute_checks_the_incremental_answer(caplog: pytest.LogCaptureFixture) -> None:
    async def run() -> None:
        cluster = Cluster()
        # Every step is also a full recompute, checked against the incremental one.
        rec = reconciler(cluster, full_every=0.0)
        rec.reconcile_once()
        cluster.apply(("put", svc("web", ("10.96.0.10",))))
        cluster.apply(("put", eps("web", "IPv4", ("10.244.1.5", "node-a", True))))
        rec.reconcile_once()
        assert P("10.96.0.10/32") in rec.classes
        assert rec.stats.incremental == 1 and rec.stats.full == 2 and rec.stats.mismatches == 0
        # Corrupt the incremental state behind the Reconciler's back: the next check must notice.
        assert rec._inc is not None
        rec._inc.routes[P("192.0.2.0/24")] = RouteAttrs()
        cluster.apply(("put", svc("db", ("10.96.0.11",))))
        rec.reconcile_once()
        assert rec.stats.mismatches == 1
        assert P("192.0.2.0/24") not in rec.classes  # the full answer won

    with caplog.at_level("WARNING", logger="bgpsvc.k8s"):
        asyncio.run(run())
    assert "incremental reconcile differed" in caplog.text


def test_endpoint_readiness_flip_is_incremental_and_recorded() -> None:
    async def run() -> None:
        cluster = Cluster()
        rec = reconciler(cluster)
        stores = cluster.stores
        stores["services"].put(("default", "web"), svc("web", ("10.96.0.10",)))
        rec.reconcile_once()
        for ready in (True, False, True):
            on = eps("web", "IPv4", ("10.244.1.5", "node-a", ready))
            stores["slices"].put(on.key, on)
            rec.reconcile_once()
            assert (P("10.96.0.10/32") in rec.classes) is ready
            await asyncio.sleep(0)  # the write callback runs after the speaker's
        assert rec.stats.incremental == 3 and rec.stats.full == 1
        assert rec.event_to_update.count == 3 and all(v >= 0 for v in rec.event_to_update.recent)
        assert rec.status()["event_to_update_seconds"]["count"] == 3

    asyncio.run(run())


def test_endpoint_of_another_node_is_ignored_but_an_endpoint_object_change_is_not() -> None:
    # An EndpointSlice whose node-a endpoints did not change is recomputed and found equal: no route,
    # no UPDATE, no latency sample (there is no UPDATE to measure).
    async def run() -> None:
        cluster = Cluster()
        rec = reconciler(cluster)
        stores = cluster.stores
        stores["services"].put(("default", "web"), svc("web", ("10.96.0.10",)))
        rec.reconcile_once()
        far = eps("web", "IPv4", ("10.244.2.5", "node-b", True))
        stores["slices"].put(far.key, far)
        rec.reconcile_once()
        await asyncio.sleep(0)
        assert rec.result is not None and rec.result.stats.announced == 0
        assert rec.event_to_update.count == 0
        stores["slices"].put(far.key, replace(far, endpoints=(Endpoint(("10.244.1.9",), "node-a", True),)))
        rec.reconcile_once()
        await asyncio.sleep(0)
        assert rec.result.stats.announced == 1 and rec.event_to_update.count == 1

    asyncio.run(run())


def test_reconciler_keeps_a_policy_set_incrementally() -> None:
    """CRD-driven policy goes through the incremental path too, and equals ``reconcile_step``."""
    team_a = selector_from_dict({"matchLabels": {"team": "a"}}, "sel")
    policy = PolicySet(
        (PolicyEntry("all", POLICY), PolicyEntry("team-a", replace(POLICY, attributes={}), team_a))
    )

    async def run() -> None:
        cluster = Cluster()
        for store in cluster.stores.values():
            store.replace({})
        stores = cluster.stores
        applied: list[Mapping[Prefix, RouteAttrs]] = []
        rec = Reconciler(
            Source(stores["services"]),
            Source(stores["slices"]),
            Source(stores["nodes"]),
            node="node-a",
            policy=policy,
            apply=lambda routes, _changed: applied.append(routes),
            debounce=0,
        )
        rec.reconcile_once()
        web = svc("web", ("10.96.0.10",), labels=(("team", "a"),))
        for ev in (
            ("put", web),
            ("put", eps("web", "IPv4", ("10.244.1.5", "node-a", True))),
            ("put", replace(web, labels=(("team", "b"),))),
            ("delete", "services", 0),
        ):
            cluster.apply(ev)
            rec.reconcile_once()
            assert applied[-1] == reconcile_step(cluster.snapshot(), "node-a", policy, None).routes
        assert rec.stats.full == 1 and rec.stats.incremental == 4

    asyncio.run(run())
