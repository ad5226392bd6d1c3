"""The pure reconcile step: (snapshot or incremental answer, node, policy, previous result, now) ->
the routes to advertise, their classes, what changed and the next deadline (flap damping).

``reconcile_step`` recomputes from a snapshot; ``finish_step`` is its second half, shared with the
incremental path (``bgpsvc.k8s.incremental``): damping and statistics over what the cluster wants.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field, replace

from ..rib import RouteAttrs
from ..wire import Prefix
from .advertise import PolicySet
from .damping import DampingState, damp
from .desired import AdvertisePolicy, Problem, Snapshot, evaluate, route_class
from .policy import NO_DAMPING

__all__ = ["StepResult", "StepStats", "finish_step", "reconcile_step", "unchanged_step"]


@dataclass(frozen=True, slots=True)
class StepStats:
    """What one reconcile step found: routes per class, and the change from the previous result."""

    routes: int = 0
    by_class: tuple[tuple[str, int], ...] = ()
    announced: int = 0  # prefixes new since the previous result
    withdrawn: int = 0  # prefixes gone since the previous result
    changed: int = 0  # prefixes whose attributes changed
    held: int = 0  # wanted routes flap damping holds back


@dataclass(frozen=True, slots=True)
class StepResult:
    """The routes to advertise for one snapshot, with each prefix's route class (for per-class metrics).

    ``routes`` is what goes out (after flap damping); ``wanted`` what the cluster asks for right now.
    """

    #: The snapshot a full step computed from (None after an incremental step).
    snapshot: Snapshot | None
    node: str
    policy: AdvertisePolicy | PolicySet
    routes: Mapping[Prefix, RouteAttrs]
    classes: Mapping[Prefix, str]
    stats: StepStats
    wanted: Mapping[Prefix, RouteAttrs] = field(default_factory=dict)
    damping: DampingState = field(default_factory=DampingState)
    #: When to run again although nothing in the cluster changed (a damped change comes due).
    deadline: float | None = None
    held: Mapping[Prefix, str] = field(default_factory=dict)
    #: Services whose annotations could not be used (advertised with the class attributes).
    problems: tuple[Problem, ...] = ()
    #: The only prefixes whose route in ``routes`` can differ from the previous step's (None: any).
    changed_routes: AbstractSet[Prefix] | None = None


def _same_cluster(a: Snapshot, b: Snapshot) -> bool:
    # Informer snapshots are cached until their store changes: the same objects mean nothing changed.
    return a.services is b.services and a.slices is b.slices and a.nodes is b.nodes


def reconcile_step(
    snapshot: Snapshot,
    node: str,
    policy: AdvertisePolicy | PolicySet,
    previous: StepResult | None,
    now: float = 0.0,
) -> StepResult:
    """Pure: the routes and classes of ``node`` for ``snapshot`` at ``now``, how they differ from
    ``previous``, and the next deadline. An unchanged snapshot (same store snapshots, node and policy)
    reuses ``previous`` -- re-running only the damping once its deadline has come."""
    if (
        previous is not None
        and previous.snapshot is not None
        and previous.node == node
        and previous.policy is policy
        and _same_cluster(previous.snapshot, snapshot)
    ):
        return unchanged_step(previous, now, snapshot)
    if isinstance(policy, PolicySet):  # BGPAdvertisements: one policy per advertisement, merged
        explained, full = policy.explain(snapshot, node)
        wanted: Mapping[Prefix, RouteAttrs] = full
        classes = {prefix: route_class(reasons) for prefix, reasons in explained.items()}
        problems: tuple[Problem, ...] = ()
    else:
        ev = evaluate(snapshot, node, policy)
        wanted, problems = ev.routes, ev.problems
        classes = {prefix: route_class(reasons) for prefix, reasons in ev.reasons.items()}
    return finish_step(
        snapshot, node, policy, previous, wanted=wanted, classes=classes, problems=problems, now=now
    )


def unchanged_step(previous: StepResult, now: float, snapshot: Snapshot | None = None) -> StepResult:
    """Nothing in the cluster changed: ``previous`` again, with the damping re-run once it is due."""
    if previous.deadline is None or now < previous.deadline:
        unchanged = replace(previous.stats, announced=0, withdrawn=0, changed=0)
        return replace(
            previous, snapshot=snapshot or previous.snapshot, stats=unchanged, changed_routes=frozenset()
        )
    return finish_step(
        snapshot or previous.snapshot,
        previous.node,
        previous.policy,
        previous,
        wanted=previous.wanted,
        classes=previous.classes,
        problems=previous.problems,
        now=now,
    )


def finish_step(
    snapshot: Snapshot | None,
    node: str,
    policy: AdvertisePolicy | PolicySet,
    previous: StepResult | None,
    *,
    wanted: Mapping[Prefix, RouteAttrs],
    classes: Mapping[Prefix, str],
    problems: tuple[Problem, ...],
    now: float,
    changed: AbstractSet[Prefix] | None = None,
) -> StepResult:
    """Pure: flap damping and statistics over what the cluster wants (full or incremental step).
    ``changed``: the only prefixes whose wanted route can differ from ``previous.wanted``."""
    before = previous.routes if previous is not None else {}
    damped = damp(
        wanted,
        previous.wanted if previous is not None else None,
        before if previous is not None else None,
        previous.damping if previous is not None else None,
        now=now,
        # BGPAdvertisements carry no damping settings (yet): their routes follow the cluster at once.
        config=policy.damping if isinstance(policy, AdvertisePolicy) else NO_DAMPING,
    )
    routes = damped.advertised
    if routes is not wanted:
        # A withdrawal held back by damping keeps its class (and its count) until it goes.
        classes = {p: classes.get(p) or (previous.classes.get(p, "") if previous else "") for p in routes}
    # Without damping (routes is wanted, before was the previous wanted) only ``changed`` can differ.
    exact = changed is not None and routes is wanted and previous is not None and before is previous.wanted
    new: Iterable[Prefix] = changed if exact and changed is not None else routes
    old: Iterable[Prefix] = changed if exact and changed is not None else before
    if exact and previous is not None and changed is not None:
        by_class = dict(previous.stats.by_class)
        for p in changed:
            for cls, delta in ((previous.classes.get(p), -1), (classes.get(p), 1)):
                if cls is not None:
                    by_class[cls] = by_class.get(cls, 0) + delta
        by_class = {cls: n for cls, n in by_class.items() if n}
    else:
        by_class = {}
        for cls in classes.values():
            by_class[cls] = by_class.get(cls, 0) + 1
    stats = StepStats(
        routes=len(routes),
        by_class=tuple(sorted(by_class.items())),
        announced=sum(1 for p in new if p in routes and p not in before),
        withdrawn=sum(1 for p in old if p in before and p not in routes),
        changed=sum(1 for p in new if p in routes and p in before and before[p] != routes[p]),
        held=len(damped.held),
    )
    return StepResult(
        snapshot,
        node,
        policy,
        routes,
        classes,
        stats,
        wanted,
        damped.state,
        damped.deadline,
        damped.held,
        problems,
        changed if exact else None,
    )
