"""reconcile_step: the pure part of the reconcile loop (snapshot, node, policy, previous) -> result."""

from __future__ import annotations

from types import MappingProxyType

from hypothesis import given, settings
from hypothesis import strategies as st

from bgpsvc.k8s.desired import (
    CLUSTER_IP,
    CLUSTER_RANGE,
    EXTERNAL_IP,
    LOADBALANCER_IP,
    Snapshot,
    desired_routes,
)
from bgpsvc.k8s.reconcile import StepResult, reconcile_step
from bgpsvc.rib import RouteAttrs

from .test_desired import NODES, POLICY, P, eps, mixed_clusters, snap, svc


def frozen(s: Snapshot) -> Snapshot:
    """As informers hand them out: immutable mappings, the same objects until a store changes."""
    return Snapshot(
        MappingProxyType(dict(s.services)), MappingProxyType(dict(s.slices)), MappingProxyType(dict(s.nodes))
    )


def test_first_step_announces_everything_with_classes_and_counts() -> None:
    s = frozen(snap(svc("web", ("10.96.0.10",)), eps("web", "IPv4", ("10.244.1.5", "node-a", True))))
    result = reconcile_step(s, "node-a", POLICY, None)
    assert result.routes == desired_routes(s, "node-a", POLICY)
    assert result.classes[P("10.96.0.10/32")] == CLUSTER_IP
    assert result.classes[P("10.96.0.0/12")] == CLUSTER_RANGE
    assert result.stats.routes == 7 and result.stats.announced == 7
    assert result.stats.withdrawn == result.stats.changed == 0
    # Every range (two cluster, two external, two LoadBalancer) and the Local Service's host route.
    assert dict(result.stats.by_class) == {
        CLUSTER_IP: 1,
        CLUSTER_RANGE: 2,
        EXTERNAL_IP: 2,
        LOADBALANCER_IP: 2,
    }


def test_an_unchanged_snapshot_reuses_the_previous_result() -> None:
    s = frozen(snap(svc("web", ("10.96.0.10",)), eps("web", "IPv4", ("10.244.1.5", "node-a", True))))
    first = reconcile_step(s, "node-a", POLICY, None)
    again = reconcile_step(Snapshot(s.services, s.slices, s.nodes), "node-a", POLICY, first)
    assert again.routes is first.routes and again.classes is first.classes
    assert (again.stats.announced, again.stats.withdrawn, again.stats.changed) == (0, 0, 0)
    assert again.stats.routes == first.stats.routes
    # Equal content in new mappings (a store that changed and changed back) is recomputed, same answer.
    recomputed = reconcile_step(frozen(s), "node-a", POLICY, first)
    assert recomputed.routes is not first.routes and recomputed.routes == first.routes
    # Another node is another answer.
    assert P("10.96.0.10/32") not in reconcile_step(s, "node-b", POLICY, first).routes


def test_changes_are_counted_against_the_previous_result() -> None:
    web = svc("web", ("10.96.0.10",))
    before = frozen(snap(web, eps("web", "IPv4", ("10.244.1.5", "node-a", True))))
    after = frozen(snap(web, eps("web", "IPv4", ("10.244.1.5", "node-b", True))))
    first = reconcile_step(before, "node-a", POLICY, None)
    second = reconcile_step(after, "node-a", POLICY, first)
    assert P("10.96.0.10/32") not in second.routes
    assert (second.stats.announced, second.stats.withdrawn, second.stats.changed) == (0, 1, 0)


@settings(max_examples=200, deadline=None)
@given(mixed_clusters(), mixed_clusters(), st.sampled_from(NODES))
def test_the_result_does_not_depend_on_the_previous_one(a: list[object], b: list[object], node: str) -> None:
    sa, sb = frozen(snap(*a)), frozen(snap(*b))
    previous: StepResult = reconcile_step(sa, node, POLICY, None)
    result = reconcile_step(sb, node, POLICY, previous)
    assert result.routes == desired_routes(sb, node, POLICY) == reconcile_step(sb, node, POLICY, None).routes
    old, new = previous.routes, result.routes
    assert result.stats.announced == len(new.keys() - old.keys())
    assert result.stats.withdrawn == len(old.keys() - new.keys())
    assert result.stats.changed == sum(1 for p in new.keys() & old.keys() if new[p] != old[p])
    assert set(result.classes) == set(new) and sum(n for _, n in result.stats.by_class) == len(new)
    assert all(isinstance(attrs, RouteAttrs) for attrs in new.values())
