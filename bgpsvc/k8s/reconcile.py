"""The level-triggered reconcile loop (STYLE §7): dirty -> debounce -> what changed -> step -> speaker.

``reconcile_step`` (``step.py``) is the pure part: (snapshot, node, policy, previous result, now) ->
desired routes, their classes, what changed and the next deadline (flap damping, ``damping.py``).
``Reconciler`` is the loop around it: it marks dirty, debounces, asks each store which keys changed
since the last step (``Store.changes_since``) and recomputes only the Services those keys can affect
(``incremental.py``); a relist, a change of this node's Node object or of the policy, a store that
cannot say what changed, and every ``full_every`` seconds recompute everything from a snapshot
instead -- the periodic one also checks the incremental answer and warns (and counts) if it differs.
Watch events only mark the loop dirty: the step reads the stores' current objects, never an event's
payload, so coalesced or repeated events are harmless. Nothing per-service is advertised until every
informer has synced once, so a restart does not withdraw and re-announce. While the API server is
unreachable the informers keep their stores, nothing changes, and the last known routes stay
advertised. The time from a watch event's arrival to the UPDATE written is kept per event
(``event_to_update``).
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections.abc import Callable, Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..rib import RouteAttrs
from ..wire import Prefix
from .advertise import PolicySet
from .desired import AdvertisePolicy, Snapshot
from .incremental import IncrementalPolicySet, IncrementalRoutes, same_answer
from .latency import LatencyHistogram
from .step import StepResult, StepStats, finish_step, reconcile_step, unchanged_step
from .store import Changes
from .views import EndpointSliceView, Key, NodeView, ServiceView

log = logging.getLogger("bgpsvc.k8s")

#: Seconds a burst of changes is coalesced for. A rolling update writes its EndpointSlices within
#: milliseconds of each other; 10 ms folds such a burst into one reconcile, and a lone change after a
#: quiet spell is not delayed at all (leading edge, see ``run``).
DEBOUNCE = 0.01
#: Objects in the stores from which a relist's new stores are frozen out of the cyclic collector's
#: sight (``gc.freeze``), as the first reconcile's are: below it a full collection is short.
RELIST_FREEZE_MIN = 10_000
#: Seconds between full recomputes when nothing forces one (a relist, a Node or policy change): the
#: level-triggered safety net under the incremental steps, and their check. A full recompute costs about
#: as much as a reconcile did before issue 14 (tens of ms at 10k Services); every five minutes is noise.
FULL_EVERY = 300.0


class Source(Protocol):
    """What the reconciler needs from an informer."""

    @property
    def synced(self) -> bool: ...

    @property
    def healthy(self) -> bool: ...

    @property
    def relists(self) -> int: ...

    @property
    def size(self) -> int: ...

    def snapshot(self) -> Mapping[Key, Any]: ...


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
    #: Steps that recomputed only the changed Services, and full recomputes.
    incremental: int = 0
    full: int = 0
    #: Periodic full recomputes that found the incremental answer different (a bug: logged).
    mismatches: int = 0


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
        apply: Callable[[Mapping[Prefix, RouteAttrs], AbstractSet[Prefix] | None], None],
        on_node: Callable[[NodeView | None], None] | None = None,
        debounce: float = DEBOUNCE,
        full_every: float = FULL_EVERY,
        on_first: Callable[[], None] | None = None,
    ) -> None:
        self.sources = {"services": services, "endpointslices": slices, "nodes": nodes}
        #: Called once, right after the first reconcile has frozen the synced stores out of the collector.
        self.on_first = on_first
        self.node = node
        self.policy = policy
        self.apply = apply
        self.on_node = on_node
        self.debounce = debounce
        self.full_every = full_every
        self.stats = ReconcileStats()
        #: The last step's result: the next step's ``previous``.
        self.result: StepResult | None = None
        #: Watch event -> UPDATE written, with and without the debounce wait (``latency``).
        self.event_to_update = LatencyHistogram()
        self.event_to_update_processing = LatencyHistogram()
        #: Its first part: watch event arrival -> this loop starting the step (thread hand-off, debounce).
        self.event_to_step = LatencyHistogram()
        self._inc: IncrementalRoutes | IncrementalPolicySet | None = None
        self._versions: dict[str, int] = {}
        self._full_at = 0.0
        self._waited = 0.0  # debounce sleep before this step (set by ``run``)
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

    def resync(self) -> None:
        """Recompute everything at the next step (the level-triggered safety net, on demand)."""
        self._full_at = 0.0
        self.mark_dirty()

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
            "reconciles_incremental": st.incremental,
            "reconciles_full": st.full,
            "incremental_mismatches": st.mismatches,
            "reconcile_seconds_total": st.total_duration,
            "last_reconcile_seconds": st.last_duration,
            "last_reconcile_at": st.last_at,
            "routes": st.routes,
            "routes_by_class": dict(st.by_class),
            "routes_held_by_damping": len(self.result.held) if self.result is not None else 0,
            "annotation_problems": [str(p) for p in self.result.problems] if self.result is not None else [],
            "event_to_update_seconds": self.event_to_update.to_json(),
            "event_to_step_seconds": self.event_to_step.to_json(),
            "informers": {
                name: {
                    "synced": s.synced,
                    "healthy": s.healthy,
                    "relists": s.relists,
                    "objects": s.size,
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
        previous = self.result
        now = self._loop.time()
        result, received = self._step(previous, now)
        # With the prefixes that can have changed (None: any), so a peer diffs only those.
        self.apply(result.routes, result.changed_routes)
        self.result = result
        self._arm(result.deadline)
        changes = result.stats
        if received and (changes.announced or changes.withdrawn or changes.changed):
            # The speaker writes the UPDATEs in a callback it scheduled with call_soon during apply;
            # callbacks run in order, so this one runs right after the bytes went to the transports.
            self._loop.call_soon(self._written, received, self._waited, t0)
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
        st.routes = changes.routes
        st.by_class = dict(changes.by_class)
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

    def _written(self, received: tuple[float, ...], waited: float, started: float) -> None:
        now = time.perf_counter()
        for t in received:
            self.event_to_update.observe(now - t)
            self.event_to_update_processing.observe(max(0.0, now - t - waited))
            self.event_to_step.observe(max(0.0, started - t))

    def _tracked(self) -> dict[str, Changes] | None:
        """What changed in each store since the last step, or None if a store cannot say."""
        out = {}
        for name, src in self.sources.items():
            since = getattr(src, "changes_since", None)
            if since is None:
                return None
            out[name] = since(self._versions.get(name, -1))
        return out

    def _step(self, previous: StepResult | None, now: float) -> tuple[StepResult, tuple[float, ...]]:
        """One step, incremental when the stores can say what changed and nothing global did."""
        policy = self.policy
        changes = self._tracked()
        received = tuple(t for c in (changes or {}).values() for t in c.received)
        inc = self._inc
        replaced = changes is not None and any(c.keys is None for c in changes.values())
        if changes is None or inc is None or previous is None or inc.policy is not policy or replaced:
            result = self._full(previous, now, None)
            if replaced and previous is not None and self._size() >= RELIST_FREEZE_MIN:
                # A relist (410 Gone, a compacted change log) replaced a store: its new objects are
                # long-lived too. Freeze them as the first reconcile did, so that later full
                # collections do not walk them with the GIL held (346 ms at 100k Services).
                gc.freeze()
            return result, received
        if changes["nodes"].keys:
            return self._full(previous, now, None), received
        svc, eps = changes["services"], changes["endpointslices"]
        if svc.keys or eps.keys:
            assert svc.keys is not None and eps.keys is not None
            services, slices = self.sources["services"], self.sources["endpointslices"]
            changed = inc.update(services, slices, svc.keys, eps.keys)  # type: ignore[arg-type]
            self._versions.update((n, c.version) for n, c in changes.items())
            routes, classes = dict(inc.routes), dict(inc.classes)
            result = finish_step(
                None,
                self.node,
                policy,
                previous,
                wanted=routes,
                classes=classes,
                problems=inc.problems,
                now=now,
                changed=changed,
            )
            self.stats.incremental += 1
        else:
            result = unchanged_step(previous, now)
        if now >= self._full_at:
            return self._full(result, now, inc), received
        return result, received

    def _size(self) -> int:
        return sum(src.size for src in self.sources.values())

    def _full(
        self, previous: StepResult | None, now: float, check: IncrementalRoutes | IncrementalPolicySet | None
    ) -> StepResult:
        """Recompute everything from a snapshot; with ``check``, warn if it differs from that state."""
        self.stats.full += 1
        self._full_at = now + self.full_every
        versions: dict[str, int] = {}
        views: dict[str, Mapping[Key, Any]] = {}
        for name, src in self.sources.items():
            vs = getattr(src, "versioned_snapshot", None)
            versions[name], views[name] = vs() if vs is not None else (-1, src.snapshot())
        snap = Snapshot(views["services"], views["endpointslices"], views["nodes"])
        if self.on_node is not None:
            node_view = snap.nodes.get(("", self.node))
            assert node_view is None or isinstance(node_view, NodeView)
            self.on_node(node_view)
        policy = self.policy
        if min(versions.values()) < 0:
            self._inc = None  # sources that cannot say what changed: a full step every time
            return reconcile_step(snap, self.node, policy, previous, now)
        inc: IncrementalRoutes | IncrementalPolicySet
        if isinstance(policy, AdvertisePolicy):
            inc = IncrementalRoutes.rebuild(snap, self.node, policy)
        else:
            inc = IncrementalPolicySet.rebuild(snap, self.node, policy)
        self._inc = inc
        if check is not None and versions == self._versions and not same_answer(check, inc):
            self.stats.mismatches += 1
            log.warning(
                "incremental reconcile differed from the full recompute (%d vs %d routes); using the full",
                len(check.routes),
                len(inc.routes),
            )
        self._versions = versions
        routes, classes = dict(inc.routes), dict(inc.classes)
        return finish_step(
            snap, self.node, policy, previous, wanted=routes, classes=classes, problems=inc.problems, now=now
        )

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
                woke = self._loop.time()
                wait = self.debounce - (woke - last)
                if wait > 0:
                    await asyncio.sleep(wait)
                self._dirty.clear()
                self._waited = self._loop.time() - woke
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
                    # full collection no longer walks them. No collection first: freezing is O(1), where
                    # a full collection of a 100k-Service node speaker's 731k store objects holds the
                    # GIL for 346 ms (bench/gc_pause.py), long enough for BFD's own thread to miss a
                    # 100 ms x 3 detection time. A sync leaves no cyclic garbage to freeze (same bench: 0).
                    gc.freeze()
                    if self.on_first is not None:
                        self.on_first()
        finally:
            self._stopped = True
            self._arm(None)


__all__ = [
    "FULL_EVERY",
    "EndpointSliceView",
    "ReconcileStats",
    "Reconciler",
    "ServiceView",
    "Source",
    "StepResult",
    "StepStats",
    "finish_step",
    "reconcile_step",
]
