"""Adj-RIB-Out: the whole desired set in, a delta out, packed UPDATEs (RFC 4271 §3.2, §9.2).

``diff`` is pure (it reads what was sent and returns a ``Delta``) and ``commit`` records what was
queued, so "nothing to do" is an empty delta and nothing the peer already has is sent again.
Announcements are grouped by their (identical) wire attribute tuple and packed with one encoded
attribute block per group.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from operator import itemgetter

from ..wire import (
    Family,
    Negotiated,
    Prefix,
    RouteRefreshSubtype,
    Safi,
    encode,
    end_of_rib,
    pack_updates,
    pack_withdrawals,
)
from ..wire.messages import RouteRefresh
from .export import Attrs, Export, RouteAttrs


@dataclass(frozen=True, slots=True)
class Delta:
    """Changes to send: prefixes to (re)announce with their wire attributes, and prefixes to withdraw."""

    announce: Mapping[Prefix, Attrs] = field(default_factory=dict)
    withdraw: tuple[Prefix, ...] = ()
    #: From ``diff``: desired prefixes this session cannot carry (no next hop of their family).
    unroutable: int | None = None

    def __bool__(self) -> bool:
        return bool(self.announce) or bool(self.withdraw)

    def __len__(self) -> int:
        return len(self.announce) + len(self.withdraw)


EMPTY = Delta()
_FAMILIES = {1: Family(1, Safi.UNICAST), 2: Family(2, Safi.UNICAST)}
_MISSING: Attrs = ()
_afi = itemgetter(0)  # a Prefix's AFI octet


def _family(afi: int) -> Family:
    return _FAMILIES.get(afi) or Family(afi, Safi.UNICAST)


class AdjRibOut:
    """What one peer has been sent, and how to bring it to a new desired set."""

    def __init__(self, export: Export, ctx: Negotiated) -> None:
        self.export = export
        self.ctx = ctx
        #: Prefix -> the wire attributes the peer has for it.
        self.sent: dict[Prefix, Attrs] = {}
        #: Desired prefixes this session cannot carry (no next hop of that family): counted, not sent.
        self.unroutable = 0
        #: The desired set ``sent`` is exactly the image of (by the last ``update``), and its families;
        #: None once anything else changed ``sent`` or the export.
        self.base: Mapping[Prefix, RouteAttrs] | None = None
        self._base_afis: frozenset[int] = frozenset()
        #: Prefixes announced or withdrawn by the last ``update``.
        self.last_delta = 0

    def set_export(self, export: Export) -> None:
        """Change per-peer parameters (e.g. graceful shutdown); the next diff re-announces what changed."""
        self.export = export
        self.base = None

    def diff(self, desired: Mapping[Prefix, RouteAttrs], families: Iterable[Family] | None = None) -> Delta:
        """Delta from what was sent to ``desired`` (pure: ``commit`` it once the bytes are queued).

        A table shares a handful of ``RouteAttrs`` objects, so attributes are built once per distinct
        object and address family; the per-prefix work is dictionary lookups and identity checks.
        """
        allowed = {1, 2} if families is None else {f.afi for f in families}
        build = self.export.attributes
        distinct = {id(r): r for r in desired.values()}
        by_afi: dict[int, dict[int, Attrs | None]] = {}
        for afi in allowed:
            fam = _family(afi)
            by_afi[afi] = {rid: build(route, fam) for rid, route in distinct.items()}
        none: dict[int, Attrs | None] = {}
        pairs = [(p, by_afi.get(p[0], none).get(id(r))) for p, r in desired.items()]
        if not self.sent:
            # The first advertisement: nothing to compare against and nothing to withdraw.
            announce = {p: a for p, a in pairs if a is not None}
            return Delta(announce, (), len(pairs) - len(announce))
        get = self.sent.get
        announce = {p: a for p, a in pairs if a is not None and (h := get(p)) is not a and h != a}
        keep = {p for p, a in pairs if a is not None}
        unroutable = len(pairs) - len(keep)
        if not announce and len(keep) == len(self.sent):
            return Delta({}, (), unroutable)
        withdraw = tuple(p for p in self.sent if p not in keep)
        return Delta(announce, withdraw, unroutable)

    def announce_delta(
        self,
        routes: Mapping[Prefix, RouteAttrs],
        families: Iterable[Family] | None = None,
        *,
        unsent: bool = False,
    ) -> Delta:
        """Announcements only, for part of a table (streaming the first advertisement in chunks);
        prefixes outside ``families`` are left out. ``unsent``: the caller knows none of ``routes`` has
        been sent (chunks of one table streamed into an empty Adj-RIB-Out; saves a lookup per prefix)."""
        allowed = {1, 2} if families is None else {f.afi for f in families}
        afis = set(map(_afi, routes))
        fresh = unsent or self.sent.keys().isdisjoint(routes)
        if len(afis) == 1 and len(set(map(id, routes.values()))) == 1 and fresh:
            # One attribute set, one family, nothing sent yet: the shape of a first table's chunk. Built
            # in C (dict.fromkeys), this halves the sender's CPU per streamed prefix (300k: 1.9 -> 0.9 s
            # profiled) over the per-prefix loop below.
            (afi,) = afis
            a = self.export.attributes(next(iter(routes.values())), _family(afi)) if afi in allowed else None
            return Delta(dict.fromkeys(routes, a)) if a is not None else EMPTY
        build = self.export.attributes
        get = self.sent.get
        cache: dict[tuple[int, int], Attrs | None] = {}
        announce: dict[Prefix, Attrs] = {}
        for p, r in routes.items():
            key = (id(r), p[0])
            a = cache.get(key, _MISSING)
            if a is _MISSING:
                a = cache[key] = build(r, _family(p[0])) if p[0] in allowed else None
            if a is not None and (h := get(p)) is not a and h != a:
                announce[p] = a
        return Delta(announce, ()) if announce else EMPTY

    def diff_changed(
        self,
        desired: Mapping[Prefix, RouteAttrs],
        changed: Iterable[Prefix],
        families: Iterable[Family] | None = None,
    ) -> Delta | None:
        """``diff`` looking only at ``changed``: valid when ``sent`` is the image of ``self.base`` and
        ``desired`` differs from it only in ``changed`` (the caller's promise). None when ``sent`` is not
        the image of a known set (then ``diff``). A node speaker's event changes a route or two of
        thousands: 5k routes, 2.8-13 ms for ``diff``, a few microseconds here."""
        allowed = frozenset({1, 2} if families is None else {f.afi for f in families})
        base = self.base
        if base is None or allowed != self._base_afis:
            return None
        build = self.export.attributes
        get = self.sent.get
        announce: dict[Prefix, Attrs] = {}
        withdraw: list[Prefix] = []
        unroutable = self.unroutable
        for p in changed:
            was, route = base.get(p), desired.get(p)
            ok = p[0] in allowed
            a = build(route, _family(p[0])) if route is not None and ok else None
            # Desired but not sendable (no next hop of its family, or a family not negotiated):
            # counted as ``diff`` counts it.
            if was is not None and (not ok or build(was, _family(p[0])) is None):
                unroutable -= 1
            if route is not None and a is None:
                unroutable += 1
            h = get(p)
            if a is None:
                if h is not None:
                    withdraw.append(p)
            elif h is not a and h != a:
                announce[p] = a
        return Delta(announce, tuple(withdraw), unroutable)

    def commit(self, delta: Delta) -> None:
        """Record that ``delta`` has been queued for the peer."""
        self.base = None  # ``update`` sets it again when the delta took ``sent`` to a whole desired set
        if delta.unroutable is not None:
            self.unroutable = delta.unroutable
        self.sent.update(delta.announce)
        for p in delta.withdraw:
            self.sent.pop(p, None)

    def pack(self, delta: Delta) -> list[bytes]:
        """UPDATE messages for ``delta``: withdrawals first, then announcements grouped by attributes."""
        out = pack_withdrawals(delta.withdraw, self.ctx) if delta.withdraw else []
        out += self._pack_announce(delta.announce)
        return out

    def _pack_announce(self, announce: Mapping[Prefix, Attrs]) -> list[bytes]:
        if len(set(map(id, announce.values()))) == 1:
            # One attribute set (every streamed chunk of a uniform table): no grouping pass.
            return pack_updates(next(iter(announce.values())), list(announce), self.ctx)
        groups: dict[int, tuple[Attrs, list[Prefix]]] = {}
        for prefix, attrs in announce.items():
            g = groups.get(id(attrs))
            if g is None:
                groups[id(attrs)] = (attrs, [prefix])
            else:
                g[1].append(prefix)
        # Equal tuples built separately still pack together: merge groups by value.
        merged: dict[Attrs, list[Prefix]] = {}
        for attrs, prefixes in groups.values():
            merged.setdefault(attrs, []).extend(prefixes)
        out: list[bytes] = []
        for attrs, prefixes in merged.items():
            out += pack_updates(attrs, prefixes, self.ctx)
        return out

    def update(
        self,
        desired: Mapping[Prefix, RouteAttrs],
        families: Iterable[Family] | None = None,
        *,
        changed: Iterable[Prefix] | None = None,
        since: Mapping[Prefix, RouteAttrs] | None = None,
    ) -> list[bytes]:
        """``diff`` + ``pack`` + ``commit`` in one step; the messages must then be sent.

        ``changed``/``since``: ``desired`` differs from ``since`` only in ``changed``; if ``sent`` is the
        image of ``since`` (``self.base``), only those prefixes are compared (``diff_changed``)."""
        fams = tuple(families) if families is not None else None
        delta = None
        if changed is not None and since is not None and since is self.base:
            delta = self.diff_changed(desired, changed, fams)
        if delta is None:
            delta = self.diff(desired, fams)
        msgs = self.pack(delta) if delta else []
        self.commit(delta)
        self.last_delta = len(delta)
        self.base = desired
        self._base_afis = frozenset({1, 2} if fams is None else {f.afi for f in fams})
        return msgs

    def full_table(self) -> list[bytes]:
        """Everything the peer has, again (ROUTE-REFRESH, RFC 2918 §4)."""
        return self._pack_announce(self.sent)

    def refresh(self, family: Family, enhanced: bool) -> list[bytes]:
        """Answer a ROUTE-REFRESH for ``family``, wrapped in BoRR/EoRR if enhanced (RFC 7313 §4)."""
        table = self._pack_announce({p: a for p, a in self.sent.items() if p[0] == family.afi})
        if not enhanced:
            return table
        borr = encode(RouteRefresh(family.afi, family.safi, RouteRefreshSubtype.BORR), self.ctx)
        eorr = encode(RouteRefresh(family.afi, family.safi, RouteRefreshSubtype.EORR), self.ctx)
        return [borr, *table, eorr]

    def end_of_rib(self, families: Iterable[Family]) -> list[bytes]:
        """End-of-RIB markers (RFC 4724 §2)."""
        return [encode(end_of_rib(f), self.ctx) for f in families]

    def clear(self) -> None:
        """Forget everything (the session went down)."""
        self.sent.clear()
        self.base = None
