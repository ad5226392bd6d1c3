"""The level-triggered reconcile loop (STYLE §7): dirty -> debounce -> snapshot -> step -> speaker.

``reconcile_step`` is the pure part: (snapshot, node, policy, previous result, now) -> desired routes,
their classes, what changed and the next deadline (flap damping, ``damping.py``). ``Reconciler`` is the
loop around it and only marks dirty, debounces, takes the snapshot, applies the result and runs again
at the deadline. Watch events only mark the loop dirty; it never looks at an event's payload. Nothing
per-service is advertised until every informer has synced once, so a restart does not withdraw and
re-announce. While the API server is unreachable the informers keep their
stores, nothing changes, and the last known routes stay advertised.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from ..rib import RouteAttrs
from ..wire import Prefix
from .advertise import PolicySet
from .damping import DampingState, damp
from .desired import AdvertisePolicy, Problem, Snapshot, evaluate, route_class
from .policy import NO_DAMPING
from .views import EndpointSliceView, Key, NodeView, ServiceView

log = logging.getLogger("bgpsvc.k8s")

#: Seconds a burst of changes is coalesced for. A rolling update writes its EndpointSlices within
#: milliseconds of each other; 10 ms folds such a burst into one reconcile, and a lone change after a
#: quiet spell is not delayed at all (leading edge, see ``run``).
DEBOUNCE = 0.01


class Source(Protocol):
    """What the reconciler needs from an informer."""

    @property
    def synced(self) -> bool: ...

    @property
    def healthy(self) -> bool: ...

    @property
    def relists(self) -> int: ...

    def snapshot(self) -> Mapping[Key, Any]: ...


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

    snapshot: Snapshot
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
        and previous.node == node
        and previous.policy is policy
        and _same_cluster(previous.snapshot, snapshot)
    ):
        if previous.deadline is None or now < previous.deadline:
            unchanged = replace(previous.stats, announced=0, withdrawn=0, changed=0)
            return replace(previous, snapshot=snapshot, stats=unchanged)
        wanted, classes, problems = previous.wanted, previous.classes, previous.problems
    elif isinstance(policy, PolicySet):  # BGPAdvertisements: one policy per advertisement, merged
        explained, wanted = policy.explain(snapshot, node)
        classes = {prefix: route_class(reasons) for prefix, reasons in explained.items()}
        problems = ()
    else:
        ev = evaluate(snapshot, node, policy)
        wanted, problems = ev.routes, ev.problems
        classes = {prefix: route_class(reasons) for prefix, reasons in ev.reasons.items()}
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
    by_class: dict[str, int] = {}
    for cls in classes.values():
        by_class[cls] = by_class.get(cls, 0) + 1
    stats = StepStats(
        routes=len(routes),
        by_class=tuple(sorted(by_class.items())),
        announced=sum(1 for p in routes if p not in before),
        withdrawn=sum(1 for p in before if p not in routes),
        changed=sum(1 for p, a in routes.items() if p in before and before[p] != a),
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
    )


@dataclass
class ReconcileStats:
    """Counters and timings of the loop, for status and metrics."""

    count: int = 0
    last_duration: float = 0.0
    total_duration: float = 0.0
    last_at: float | None = None
    routes: int = 0
    by_class: dict[str, int] = field(default_factory=dict)
    waiting_for_sync: bool = True


class Reconciler:
    """Keeps a speaker's desired set equal to ``desired_routes`` of the latest snapshot."""

    def __init__(
        self,
        services: Source,
        slices: Source,
        nodes: Source,
        *,
        node: str,
        policy: AdvertisePolicy | PolicySet,
        apply: Callable[[Mapping[Prefix, RouteAttrs]], None],
        on_node: Callable[[NodeView | None], None] | None = None,
        debounce: float = DEBOUNCE,
    ) -> None:
        self.sources = {"services": services, "endpointslices": slices, "nodes": nodes}
        self.node = node
        self.policy = policy
        self.apply = apply
        self.on_node = on_node
        self.debounce = debounce
        self.stats = ReconcileStats()
        #: The last step's result: the next step's ``previous``.
        self.result: StepResult | None = None
        self._dirty = asyncio.Event()
        self._loop = asyncio.get_running_loop()
        self._stopped = False
        #: The wake-up for the last result's deadline (flap damping), and when it fires.
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None

    def mark_dirty(self) -> None:
        """Thread-safe: something changed (called by informers from their threads)."""
        if not self._stopped:
            self._loop.call_soon_threadsafe(self._dirty.set)

    @property
    def synced(self) -> bool:
        """Every informer has completed one list."""
        return all(s.synced for s in self.sources.values())

    @property
    def api_reachable(self) -> bool:
        """Every informer's last request to the API succeeded."""
        return all(s.healthy for s in self.sources.values())

    def status(self) -> dict[str, Any]:
        """Plain data for /status and metrics."""
        st = self.stats
        return {
            "node": self.node,
            "synced": self.synced,
            "api_reachable": self.api_reachable,
            "waiting_for_sync": st.waiting_for_sync,
            "reconciles": st.count,
            "reconcile_seconds_total": st.total_duration,
            "last_reconcile_seconds": st.last_duration,
            "last_reconcile_at": st.last_at,
            "routes": st.routes,
            "routes_by_class": dict(st.by_class),
            "routes_held_by_damping": len(self.result.held) if self.result is not None else 0,
            "annotation_problems": [str(p) for p in self.result.problems] if self.result is not None else [],
            "informers": {
                name: {
                    "synced": s.synced,
                    "healthy": s.healthy,
                    "relists": s.relists,
                    "objects": len(s.snapshot()),
                }
                for name, s in self.sources.items()
            },
        }

    def snapshot(self) -> Snapshot:
        """A consistent-enough view: each store is swapped atomically by its informer."""
        return Snapshot(
            services=self.sources["services"].snapshot(),
            slices=self.sources["endpointslices"].snapshot(),
            nodes=self.sources["nodes"].snapshot(),
        )

    def reconcile_once(self) -> Mapping[Prefix, RouteAttrs]:
        """Compute and apply the desired set now; returns it."""
        t0 = time.perf_counter()
        snap = self.snapshot()
        if self.on_node is not None:
            node_view = snap.nodes.get(("", self.node))
            assert node_view is None or isinstance(node_view, NodeView)
            self.on_node(node_view)
        previous = self.result
        result = reconcile_step(snap, self.node, self.policy, previous, now=self._loop.time())
        self.apply(result.routes)
        self.result = result
        self._arm(result.deadline)
        if previous is None or result.problems != previous.problems:
            known = set(previous.problems) if previous is not None else set()
            for problem in result.problems:
                if problem not in known:
                    log.warning("Service %s: advertised with the class attributes", problem)
        dt = time.perf_counter() - t0
        st = self.stats
        st.count += 1
        st.last_duration = dt
        st.total_duration += dt
        st.last_at = time.time()
        st.routes = result.stats.routes
        st.by_class = dict(result.stats.by_class)
        changes = result.stats
        if changes.announced or changes.withdrawn or changes.changed:
            log.debug(
                "reconcile: %d routes (%d new, %d gone, %d changed) in %.1f ms",
                changes.routes,
                changes.announced,
                changes.withdrawn,
                changes.changed,
                dt * 1000,
            )
        return result.routes

    def _arm(self, deadline: float | None) -> None:
        """Run again at ``deadline`` (a damped change comes due), even if nothing else changes."""
        if deadline == self._timer_at:
            return
        if self._timer is not None:
            self._timer.cancel()
        self._timer, self._timer_at = None, deadline
        if deadline is not None and not self._stopped:
            self._timer = self._loop.call_at(deadline, self._dirty.set)

    @property
    def classes(self) -> Mapping[Prefix, str]:
        """Route class of each prefix in the last desired set (for per-peer, per-class metrics)."""
        return self.result.classes if self.result is not None else {}

    async def run(self) -> None:
        """Reconcile on every change (debounced) until cancelled."""
        self.mark_dirty()
        last = float("-inf")
        try:
            while True:
                await self._dirty.wait()
                # Leading edge: a change after a quiet spell is handled at once; only a burst (changes
                # arriving within ``debounce`` of the last reconcile) waits, to be coalesced.
                wait = self.debounce - (self._loop.time() - last)
                if wait > 0:
                    await asyncio.sleep(wait)
                self._dirty.clear()
                last = self._loop.time()
                if not self.synced:
                    self.stats.waiting_for_sync = True
                    continue  # the informers mark dirty again when they sync
                first = self.stats.count == 0
                self.stats.waiting_for_sync = False
                try:
                    self.reconcile_once()
                except Exception:
                    log.exception("reconcile failed; keeping the previous routes")
                if first:
                    # The synced stores are long-lived: move them out of the collector's sight, so a
                    # full collection (100+ ms with a large cluster) no longer lands in a reconcile.
                    gc.collect()
                    gc.freeze()
        finally:
            self._stopped = True
            self._arm(None)


__all__ = [
    "EndpointSliceView",
    "ReconcileStats",
    "Reconciler",
    "ServiceView",
    "Source",
    "StepResult",
    "StepStats",
    "reconcile_step",
]
