"""Adj-RIB-In: routes received from one peer, capped, with graceful-restart stale marking (RFC 4724 §4.2).

Optional: a node speaker that only advertises need not store what its routers send. When stored, the
cap bounds memory whatever the peer sends.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ..wire import Family, MpReachNlri, MpUnreachNlri, Prefix, Update
from .export import Attrs


@dataclass(frozen=True, slots=True)
class ReceivedRoute:
    """A received path: its attributes (MP_REACH_NLRI kept without NLRI) and the GR stale mark."""

    attributes: Attrs
    stale: bool = False


class AdjRibIn:
    """Received routes per family, at most ``max_prefixes`` per family."""

    def __init__(self, max_prefixes: int | None = None) -> None:
        self.max_prefixes = max_prefixes
        self.routes: dict[Family, dict[Prefix, ReceivedRoute]] = {}
        self.dropped = 0

    def withdraw(self, prefixes: Iterable[tuple[Family, Prefix]]) -> None:
        """Remove these (family, prefix) routes."""
        for family, prefix in prefixes:
            self.routes.get(family, {}).pop(prefix, None)

    def apply(self, update: Update) -> None:
        """Apply withdrawals then announcements (RFC 4271 §9)."""
        self.withdraw(update.withdrawals())
        announced = update.announced()
        if not announced:
            return
        attrs = tuple(
            MpReachNlri(a.afi, a.safi, a.next_hop, ()) if isinstance(a, MpReachNlri) else a
            for a in update.attributes
            if not isinstance(a, MpUnreachNlri)
        )
        route = ReceivedRoute(attrs)
        limit = self.max_prefixes
        for family, prefix in announced:
            table = self.routes.setdefault(family, {})
            if limit is not None and len(table) >= limit and prefix not in table:
                self.dropped += 1
                continue
            table[prefix] = route

    def count(self, family: Family) -> int:
        """Prefixes held for ``family``."""
        return len(self.routes.get(family, {}))

    def mark_stale(self, families: Iterable[Family]) -> int:
        """The restarting peer's session went down: keep its routes, marked stale (RFC 4724 §4.2)."""
        n = 0
        # Routes of one UPDATE share one ReceivedRoute; their stale copies share one too (not one per
        # prefix: a 1M-route table marked stale would otherwise allocate 1M objects).
        stale: dict[int, tuple[ReceivedRoute, ReceivedRoute]] = {}  # id -> (route kept alive, copy)
        for family in families:
            table = self.routes.get(family, {})
            for prefix, route in table.items():
                if not route.stale:
                    pair = stale.get(id(route))
                    if pair is None:
                        pair = stale[id(route)] = (route, ReceivedRoute(route.attributes, True))
                    table[prefix] = pair[1]
                    n += 1
        return n

    def end_of_rib(self, family: Family) -> int:
        """End-of-RIB from the restarted peer: drop routes still stale in ``family``; returns how many."""
        table = self.routes.get(family, {})
        stale = [p for p, r in table.items() if r.stale]
        for p in stale:
            del table[p]
        return len(stale)

    def flush_stale(self) -> int:
        """The restart time passed without the peer: drop every stale route."""
        return sum(self.end_of_rib(f) for f in list(self.routes))

    def stale_count(self) -> int:
        """Routes currently stale."""
        return sum(1 for t in self.routes.values() for r in t.values() if r.stale)

    def clear(self) -> None:
        """Forget everything."""
        self.routes.clear()
