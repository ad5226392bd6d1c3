"""What we want to say about a route, and how it becomes wire attributes for one peer.

``RouteAttrs`` is policy-level and peer-independent (the Kubernetes layer produces these). ``Export``
holds what depends on the peer and the session: eBGP prepends our AS and sets NEXT_HOP to our session
address (RFC 4271 §5.1.2-5.1.3); iBGP sends LOCAL_PREF, default 100 (§5.1.5), and an AS_PATH without
our AS; a 2-octet peer gets AS4_PATH (RFC 6793 §4.2.2); graceful shutdown adds GRACEFUL_SHUTDOWN and
LOCAL_PREF 0 towards iBGP peers (RFC 8326 §4).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from ..wire import (
    AsPath,
    Communities,
    Community,
    ExtendedCommunities,
    ExtendedCommunity,
    Family,
    LargeCommunities,
    LocalPref,
    MpReachNlri,
    MultiExitDisc,
    NextHop,
    Origin,
    PathAttribute,
    split_as4,
)
from ..wire.communities import LargeCommunity

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Attrs = tuple[PathAttribute, ...]


@dataclass(frozen=True, slots=True)
class RouteAttrs:
    """Peer-independent attributes of a route we originate."""

    # ``metadata``: the documentation (docs/config.md is generated from it) and the form a config file
    # writes the value in, where it is not the Python type's (rib imports no config helper).
    origin: int = field(
        default=0,
        metadata={"doc": "ORIGIN (RFC 4271 §5.1.1)", "yaml": "igp, egp or incomplete", "default": "igp"},
    )
    #: AS numbers after ours (e.g. to originate on behalf of another AS); eBGP prepends our AS.
    as_path: tuple[int, ...] = field(
        default=(),
        metadata={"doc": "AS numbers after ours (eBGP prepends our AS)", "yaml": "list of AS numbers"},
    )
    med: int | None = field(default=None, metadata={"doc": "MULTI_EXIT_DISC", "bounds": (0, 0xFFFFFFFF)})
    local_pref: int | None = field(
        default=None,
        metadata={"doc": "LOCAL_PREF towards iBGP peers (default there: 100)", "bounds": (0, 0xFFFFFFFF)},
    )
    communities: tuple[int, ...] = field(
        default=(),
        metadata={
            "doc": "COMMUNITIES (RFC 1997)",
            "yaml": "list: 'ASN:VALUE' or a well-known name (NO_EXPORT, GRACEFUL_SHUTDOWN ...)",
        },
    )
    large_communities: tuple[LargeCommunity, ...] = field(
        default=(), metadata={"doc": "LARGE_COMMUNITY (RFC 8092)", "yaml": "list: 'GLOBAL:LOCAL1:LOCAL2'"}
    )
    extended_communities: tuple[ExtendedCommunity, ...] = field(
        default=(), metadata={"doc": "EXTENDED_COMMUNITIES (RFC 4360); library API only"}
    )
    next_hop: IPAddress | None = field(
        default=None,
        metadata={"doc": "explicit next hop (default: our address on the session, next-hop-self)"},
    )

    def __post_init__(self) -> None:
        if self.origin not in (0, 1, 2):
            raise ValueError("origin: must be igp(0), egp(1) or incomplete(2)")
        if self.med is not None and not 0 <= self.med <= 0xFFFFFFFF:
            raise ValueError("med: must fit 32 bits")
        if self.local_pref is not None and not 0 <= self.local_pref <= 0xFFFFFFFF:
            raise ValueError("local_pref: must fit 32 bits")
        # Canonical order, so equal sets compare (and group) equal.
        object.__setattr__(self, "communities", tuple(sorted(set(self.communities))))
        object.__setattr__(self, "large_communities", tuple(sorted(set(self.large_communities))))


DEFAULT_ROUTE = RouteAttrs()


@dataclass(frozen=True, slots=True)
class Export:
    """Per-peer, per-session parameters for building attributes."""

    local_as: int
    peer_as: int
    next_hop_v4: ipaddress.IPv4Address | None = None
    next_hop_v6: ipaddress.IPv6Address | None = None
    link_local_v6: ipaddress.IPv6Address | None = None
    four_octet_as: bool = True
    default_local_pref: int = 100
    graceful_shutdown: bool = False
    #: IPv4 NLRI over an IPv6 next hop (RFC 8950), when negotiated and there is no IPv4 address.
    extended_next_hop: bool = False
    _cache: dict[tuple[RouteAttrs, int], Attrs | None] = field(
        default_factory=dict, init=False, compare=False, repr=False, hash=False
    )

    @property
    def ibgp(self) -> bool:
        """Internal peer."""
        return self.local_as == self.peer_as

    def attributes(self, route: RouteAttrs, family: Family) -> Attrs | None:
        """Wire attributes for ``route`` in ``family``; None when this session has no usable next hop.

        Cached per (route, AFI): a table of 100k prefixes sharing one ``RouteAttrs`` builds one tuple,
        and the identical tuple lets the Adj-RIB-Out compare by identity.
        """
        key = (route, family.afi)
        cached = self._cache.get(key, False)
        if cached is not False:
            return cached  # type: ignore[return-value]
        built = self._build(route, family)
        self._cache[key] = built
        return built

    def _build(self, route: RouteAttrs, family: Family) -> Attrs | None:
        attrs: list[PathAttribute] = [Origin(route.origin)]
        if self.ibgp:
            attrs.append(AsPath.sequence(*route.as_path) if route.as_path else AsPath(()))
            lp = (
                0
                if self.graceful_shutdown
                else (route.local_pref if route.local_pref is not None else self.default_local_pref)
            )
            attrs.append(LocalPref(lp))
        else:
            attrs.append(AsPath.sequence(self.local_as, *route.as_path))
        if route.med is not None:
            attrs.append(MultiExitDisc(route.med))
        comms = route.communities
        if self.graceful_shutdown and Community.GRACEFUL_SHUTDOWN not in comms:
            comms = tuple(sorted((*comms, int(Community.GRACEFUL_SHUTDOWN))))
        if comms:
            attrs.append(Communities(comms))
        if route.extended_communities:
            attrs.append(ExtendedCommunities(route.extended_communities))
        if route.large_communities:
            attrs.append(LargeCommunities(route.large_communities))
        hop = self._next_hop(route, family)
        if hop is None:
            return None
        attrs.append(hop)
        built = tuple(sorted(attrs, key=lambda a: a.type_code))
        if not self.four_octet_as:
            built = split_as4(built)
        return built

    def _next_hop(self, route: RouteAttrs, family: Family) -> PathAttribute | None:
        nh = route.next_hop
        if family.afi == 1:
            if isinstance(nh, ipaddress.IPv4Address):
                return NextHop(nh)
            if nh is None and self.next_hop_v4 is not None:
                return NextHop(self.next_hop_v4)
            v6 = nh if isinstance(nh, ipaddress.IPv6Address) else self.next_hop_v6
            if self.extended_next_hop and v6 is not None:
                return MpReachNlri(1, family.safi, self._v6_hops(v6), ())
            return None
        v6 = nh if isinstance(nh, ipaddress.IPv6Address) else self.next_hop_v6
        if v6 is None and self.next_hop_v4 is not None:
            # IPv6 routes over an IPv4 session: an IPv4-mapped next hop, as FRR and BIRD send it.
            v6 = ipaddress.IPv6Address("::ffff:" + str(self.next_hop_v4))
        if v6 is None:
            return None
        return MpReachNlri(2, family.safi, self._v6_hops(v6), ())

    def _v6_hops(self, v6: ipaddress.IPv6Address) -> tuple[IPAddress, ...]:
        if self.link_local_v6 is not None and not v6.is_link_local:
            return (v6, self.link_local_v6)
        return (v6,)
