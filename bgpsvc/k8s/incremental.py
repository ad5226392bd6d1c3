"""The desired routes of one node, kept up to date Service by Service (issue 14, incremental reconcile).

Theory of operation. ``desired.evaluate`` is a sum over Services: each Service's ``Contribution``
(its prefixes with reasons, its Link Bandwidth counts, its annotation attributes and problem) depends
only on the Service object, its EndpointSlices (the ``kubernetes.io/service-name`` label) and things
that change the whole answer: the policy and this node's Node object. So ``IncrementalRoutes`` keeps
the contributions and their sum -- reasons per prefix with reference counts (a prefix several Services
want, a shared IP or a range's aggregate, goes only when the last one lets go), per-class counts, and
the weights -- and an index slice -> Service of the slices that can make a route on this node. An
``update`` with the keys the informers changed recomputes only the Services those keys can affect,
swaps their old contributions for the new ones and rebuilds the attributes of just the prefixes they
touched. ``rebuild`` is the full recompute from a snapshot (the first reconcile, a relist, a Node or
policy change, and periodically as a safety net).

``IncrementalPolicySet`` does the same for BGPAdvertisements (CRD-driven policy): one state per
advertisement, its serviceSelector applied on read, merged per changed prefix as ``PolicySet.explain``.

The result equals ``desired.evaluate`` (``PolicySet.explain``) of a snapshot of the same stores; a
property test checks it on random event sequences (tests/k8s/test_incremental.py). Reads go through
``get`` on the live stores: a change that lands while an update runs is in the next ``changes_since``
and is recomputed then.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from collections.abc import Set as AbstractSet
from dataclasses import replace
from typing import Protocol, TypeVar

from ..rib import RouteAttrs
from ..wire import Prefix
from .advertise import PolicySet, merge_attrs
from .annotations import ServiceAttrs
from .desired import (
    Context,
    Contribution,
    Evaluation,
    Snapshot,
    contribution,
    node_eligible,
    range_reasons,
)
from .labels import LabelSelector
from .policy import CLASS_PRIORITY, AdvertisePolicy
from .reasons import AttrsCache, Problem, Reason, reason_order, route_attrs, service_extra
from .views import EndpointSliceView, Key, ServiceView, endpoint_counts

V_co = TypeVar("V_co", covariant=True)

#: The range aggregates' own reasons are kept as the contribution of this pseudo-Service.
_RANGES: Key = ("", "")


class Getter(Protocol[V_co]):
    """Read access to a store: an informer, ``Store`` or any mapping."""

    def get(self, key: Key, /) -> V_co | None: ...


class IncrementalRoutes:
    """A node's desired routes with the per-Service contributions behind them (module docstring)."""

    def __init__(self, node: str, policy: AdvertisePolicy) -> None:
        self.node = node
        self.policy = policy
        self._weighted = frozenset(policy.link_bandwidth.classes)
        self._needs_anywhere = any(s.require_ready_endpoint for s in policy.ranges)
        self.eligible = True
        #: Prefix -> attributes, route class, weight (Link Bandwidth endpoints): the answer.
        self.routes: dict[Prefix, RouteAttrs] = {}
        self.classes: dict[Prefix, str] = {}
        self.weights: dict[Prefix, int] = {}
        self._ctx = Context.of(policy, node, {}, frozenset())
        self._contrib: dict[Key, Contribution] = {}
        self._refs: dict[Prefix, dict[Reason, int]] = {}
        self._class_refs: dict[Prefix, dict[str, int]] = {}
        self._counts: dict[tuple[Prefix, str], list[int]] = {}  # [sum of endpoints, contributions]
        self._svc_attrs: dict[Key, ServiceAttrs] = {}
        self._problems: dict[Key, Problem] = {}
        self._problems_sorted: tuple[Problem, ...] | None = ()
        self._built: AttrsCache = {}
        self._owner: dict[Key, Key] = {}  # EndpointSlice -> its Service
        self._slices_of: dict[Key, set[Key]] = {}

    @property
    def problems(self) -> tuple[Problem, ...]:
        """Services whose annotations could not be used, sorted (as ``Evaluation.problems``)."""
        if self._problems_sorted is None:
            self._problems_sorted = tuple(sorted(self._problems.values()))
        return self._problems_sorted

    # -- the full recompute ---------------------------------------------------------------------------

    @classmethod
    def rebuild(cls, snapshot: Snapshot, node: str, policy: AdvertisePolicy) -> IncrementalRoutes:
        """Everything from a snapshot: ``desired.evaluate``'s answer, plus the state to update it."""
        inc = cls(node, policy)
        if not node_eligible(snapshot, node, policy):
            inc.eligible = False
            return inc
        inc._ctx = ctx = inc._scan(snapshot.slices)
        touched: set[Prefix] = set()
        ranges = [(p, r) for p, r, _ in range_reasons(ctx, inc._weighted)]
        weighed = tuple((p, r.route_class, 0) for p, r, w in range_reasons(ctx, inc._weighted) if w)
        inc._add(_RANGES, Contribution(tuple(ranges), weighed), touched)
        for key, svc in snapshot.services.items():
            c = contribution(ctx, key, svc, inc._weighted)
            if c is not None:
                inc._add(key, c, touched)
        inc._refresh(touched)
        inc._ctx = replace(ctx, local={}, anywhere=frozenset())  # updates bring their own
        return inc

    def _scan(self, slices: Mapping[Key, EndpointSliceView]) -> Context:
        """One pass over every slice: ``Context.build``'s endpoint facts (``local_endpoints``,
        ``ready_anywhere``; the property test holds them equal) and the index of the slices that
        matter -- those with a counting endpoint on this node, or ready anywhere when a range asks.
        A slice that matters to no route needs no index: changing it cannot change its Service's."""
        node, ep_policy, needs_anywhere = self.node, self.policy.endpoint_policy, self._needs_anywhere
        found: dict[tuple[Key, str], set[str]] = {}
        anywhere: set[tuple[Key, str]] = set()
        for key, s in slices.items():
            name = s.service_name
            if not name:
                continue
            svc: Key | None = None
            if needs_anywhere and s.ready_anywhere(ep_policy):
                svc = (s.namespace, name)
                anywhere.add((svc, s.address_type))
            for ep in s.endpoints:
                if ep.node_name == node and ep.addresses and endpoint_counts(ep.ready, ep.serving, ep_policy):
                    svc = svc or (s.namespace, name)
                    found.setdefault((svc, s.address_type), set()).add(ep.addresses[0])
            if svc is not None:
                self._index(key, svc)
        local = {k: tuple(sorted(v)) for k, v in found.items()}
        return Context.of(self.policy, node, local, anywhere)

    def _matters(self, s: EndpointSliceView) -> bool:
        """Whether a slice can make a route (``_scan``'s test)."""
        ep_policy = self.policy.endpoint_policy
        if self._needs_anywhere and s.ready_anywhere(ep_policy):
            return True
        node = self.node
        return any(
            ep.node_name == node and ep.addresses and endpoint_counts(ep.ready, ep.serving, ep_policy)
            for ep in s.endpoints
        )

    # -- the incremental step -------------------------------------------------------------------------

    def update(
        self,
        services: Getter[ServiceView],
        slices: Getter[EndpointSliceView],
        service_keys: Iterable[Key],
        slice_keys: Iterable[Key],
    ) -> set[Prefix]:
        """Recompute the Services these changed keys can affect; returns the prefixes whose route or
        class changed (added, withdrawn or new attributes)."""
        if not self.eligible:
            return set()  # a Node change (the exclusion label) is a full recompute
        affected = set(service_keys)
        for key in slice_keys:
            old = self._owner.get(key)
            if old is not None:
                affected.add(old)
                self._unindex(key, old)
            s = slices.get(key)
            if s is not None and s.service_name and self._matters(s):
                owner = (s.namespace, s.service_name)
                self._index(key, owner)
                affected.add(owner)
        ctx = self._context(affected, slices)
        touched: set[Prefix] = set()
        for key in affected:
            svc = services.get(key)
            new = contribution(ctx, key, svc, self._weighted) if svc is not None else None
            old_c = self._contrib.get(key)
            if new == old_c:
                continue
            if old_c is not None:
                self._remove(key, old_c, touched)
            if new is not None:
                self._add(key, new, touched)
        return self._refresh(touched)

    def _context(self, affected: AbstractSet[Key], slices: Getter[EndpointSliceView]) -> Context:
        """The evaluation context with the endpoint facts of just the ``affected`` Services."""
        found: dict[tuple[Key, str], set[str]] = {}
        anywhere: set[tuple[Key, str]] = set()
        node, ep_policy = self.node, self.policy.endpoint_policy
        for key in affected:
            for skey in self._slices_of.get(key, ()):
                s = slices.get(skey)
                if s is None or s.namespace != key[0] or s.service_name != key[1]:
                    continue  # changed under us: its event is in the next update
                fam = (key, s.address_type)
                if self._needs_anywhere and s.ready_anywhere(ep_policy):
                    anywhere.add(fam)
                for ep in s.endpoints:
                    if (
                        ep.node_name == node
                        and ep.addresses
                        and endpoint_counts(ep.ready, ep.serving, ep_policy)
                    ):
                        found.setdefault(fam, set()).add(ep.addresses[0])
        local = {k: tuple(sorted(v)) for k, v in found.items()}
        return replace(self._ctx, local=local, anywhere=anywhere)

    # -- bookkeeping ----------------------------------------------------------------------------------

    def _index(self, slice_key: Key, service: Key) -> None:
        self._owner[slice_key] = service
        self._slices_of.setdefault(service, set()).add(slice_key)

    def _unindex(self, slice_key: Key, service: Key) -> None:
        del self._owner[slice_key]
        keys = self._slices_of.get(service)
        if keys is not None:
            keys.discard(slice_key)
            if not keys:
                del self._slices_of[service]

    def _add(self, key: Key, c: Contribution, touched: set[Prefix]) -> None:
        self._contrib[key] = c
        for prefix, reason in c.reasons:
            refs = self._refs.setdefault(prefix, {})
            refs[reason] = refs.get(reason, 0) + 1
            by_class = self._class_refs.setdefault(prefix, {})
            by_class[reason.route_class] = by_class.get(reason.route_class, 0) + 1
            touched.add(prefix)
        for prefix, cls, n in c.counts:
            entry = self._counts.setdefault((prefix, cls), [0, 0])
            entry[0] += n
            entry[1] += 1
            touched.add(prefix)
        if c.problem is not None:
            self._problems[key] = c.problem
            self._problems_sorted = None
        if c.attrs is not None:
            self._svc_attrs[key] = c.attrs

    def _remove(self, key: Key, c: Contribution, touched: set[Prefix]) -> None:
        del self._contrib[key]
        for prefix, reason in c.reasons:
            refs = self._refs[prefix]
            refs[reason] -= 1
            if not refs[reason]:
                del refs[reason]
                if not refs:
                    del self._refs[prefix]
            by_class = self._class_refs[prefix]
            by_class[reason.route_class] -= 1
            if not by_class[reason.route_class]:
                del by_class[reason.route_class]
                if not by_class:
                    del self._class_refs[prefix]
            touched.add(prefix)
        for prefix, cls, n in c.counts:
            entry = self._counts[(prefix, cls)]
            entry[0] -= n
            entry[1] -= 1
            if not entry[1]:
                del self._counts[(prefix, cls)]
            touched.add(prefix)
        if c.problem is not None:
            del self._problems[key]
            self._problems_sorted = None
        if c.attrs is not None:
            del self._svc_attrs[key]

    def _refresh(self, touched: Iterable[Prefix]) -> set[Prefix]:
        """Rebuild the route of each touched prefix from its reasons; returns those that changed."""
        changed: set[Prefix] = set()
        for prefix in touched:
            refs = self._refs.get(prefix)
            if not refs:
                if self.routes.pop(prefix, None) is not None:
                    del self.classes[prefix]
                    self.weights.pop(prefix, None)
                    changed.add(prefix)
                continue
            by_class = self._class_refs[prefix]
            cls = next(c for c in CLASS_PRIORITY if c in by_class)
            extra = None
            if self._svc_attrs and Reason(cls) not in refs:
                mine = sorted((r for r in refs if r.route_class == cls), key=reason_order)
                extra = service_extra(mine, cls, self._svc_attrs)
            entry = self._counts.get((prefix, cls))
            count = entry[0] if entry is not None else None
            if count is None:
                self.weights.pop(prefix, None)
            else:
                self.weights[prefix] = count
            attrs = route_attrs(self.policy, cls, extra, count, self._built)
            if self.routes.get(prefix) != attrs or self.classes.get(prefix) != cls:
                self.routes[prefix] = attrs
                self.classes[prefix] = cls
                changed.add(prefix)
        return changed

    def evaluation(self) -> Evaluation:
        """The answer in ``desired.evaluate``'s shape (reasons sorted): for tests and ``plan``."""
        reasons = {p: tuple(sorted(refs, key=reason_order)) for p, refs in self._refs.items()}
        return Evaluation(reasons, dict(self.routes), dict(self.weights), self.problems)


class _Selected:
    """The Services a BGPAdvertisement's serviceSelector picks, read through the live store."""

    def __init__(self, services: Getter[ServiceView], selector: LabelSelector) -> None:
        self.services, self.selector = services, selector

    def get(self, key: Key, /) -> ServiceView | None:
        svc = self.services.get(key)
        return svc if svc is not None and self.selector.matches(dict(svc.labels)) else None


class IncrementalPolicySet:
    """``PolicySet.explain`` kept up to date: one ``IncrementalRoutes`` per advertisement, merged per
    changed prefix as ``PolicySet.explain`` merges them (``merge_attrs``; the winning class over all)."""

    def __init__(self, node: str, policy: PolicySet, parts: tuple[IncrementalRoutes, ...]) -> None:
        self.node, self.policy, self.parts = node, policy, parts
        self.routes: dict[Prefix, RouteAttrs] = {}
        self.classes: dict[Prefix, str] = {}
        self.problems: tuple[Problem, ...] = ()  # PolicySet results carry none
        self._merged: dict[tuple[RouteAttrs, ...], RouteAttrs] = {}

    @classmethod
    def rebuild(cls, snapshot: Snapshot, node: str, policy: PolicySet) -> IncrementalPolicySet:
        """Everything from a snapshot (``PolicySet.explain``'s answer)."""
        parts = []
        for entry in policy.entries:
            snap = snapshot
            if entry.services is not None:
                sel = entry.services
                services = {k: v for k, v in snapshot.services.items() if sel.matches(dict(v.labels))}
                snap = Snapshot(services, snapshot.slices, snapshot.nodes)
            parts.append(IncrementalRoutes.rebuild(snap, node, entry.policy))
        inc = cls(node, policy, tuple(parts))
        inc._merge({p for part in parts for p in part.routes})
        return inc

    def update(
        self,
        services: Getter[ServiceView],
        slices: Getter[EndpointSliceView],
        service_keys: Iterable[Key],
        slice_keys: Iterable[Key],
    ) -> set[Prefix]:
        """``IncrementalRoutes.update`` for each advertisement; returns the prefixes that changed."""
        service_keys, slice_keys = frozenset(service_keys), frozenset(slice_keys)
        touched: set[Prefix] = set()
        for entry, part in zip(self.policy.entries, self.parts, strict=True):
            selected = services if entry.services is None else _Selected(services, entry.services)
            touched |= part.update(selected, slices, service_keys, slice_keys)
        return self._merge(touched)

    def _merge(self, touched: Iterable[Prefix]) -> set[Prefix]:
        changed: set[Prefix] = set()
        for prefix in touched:
            wanted = [part for part in self.parts if prefix in part.routes]
            if not wanted:
                if self.routes.pop(prefix, None) is not None:
                    del self.classes[prefix]
                    changed.add(prefix)
                continue
            key = tuple(part.routes[prefix] for part in wanted)
            attrs = self._merged.get(key) or self._merged.setdefault(key, merge_attrs(key))
            classes = {part.classes[prefix] for part in wanted}
            cls = next(c for c in CLASS_PRIORITY if c in classes)
            if self.routes.get(prefix) != attrs or self.classes.get(prefix) != cls:
                self.routes[prefix], self.classes[prefix] = attrs, cls
                changed.add(prefix)
        return changed

    def evaluation(self) -> Evaluation:
        """Reasons (the union over advertisements, sorted) and merged routes: for tests."""
        reasons: dict[Prefix, set[Reason]] = {}
        for part in self.parts:
            for p, why in part.evaluation().reasons.items():
                reasons.setdefault(p, set()).update(why)
        explained = {p: tuple(sorted(r, key=reason_order)) for p, r in reasons.items()}
        return Evaluation(explained, dict(self.routes))


def same_answer(
    a: IncrementalRoutes | IncrementalPolicySet, b: IncrementalRoutes | IncrementalPolicySet
) -> bool:
    """Whether two states advertise the same routes with the same classes and problems."""
    return a.routes == b.routes and a.classes == b.classes and a.problems == b.problems


__all__ = ["Getter", "IncrementalPolicySet", "IncrementalRoutes", "same_answer"]
