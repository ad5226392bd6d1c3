"""Hypothesis strategies for valid ``bgpsvc.wire`` objects (STYLE.md section 9).

Every strategy builds frozen objects through their public constructors, so whatever it draws is
something the codec must be able to encode and decode back to an equal object.  Strategy
factories are cached (``functools.cache``): the tests build them per drawn context, and building
and validating a strategy costs more than drawing from it.

Context rules (why some strategies take a ``Negotiated``):

* ``negotiated()`` sets ``add_path_rx == add_path_tx``: the encoder writes path identifiers for
  ``add_path_tx`` families and the decoder expects them for ``add_path_rx`` families, so only a
  symmetric context can decode what it encoded.  Prefixes carry a non-zero path identifier only
  for families in ``add_path_tx`` (without ADD-PATH the identifier is not on the wire).
* When ``four_octet_as`` is False (an RFC 6793 "OLD" session) the encoder writes 2-octet AS
  numbers in AS_PATH and AGGREGATOR and substitutes AS_TRANS (23456) for anything above 65535, so
  those AS numbers are drawn from 1..65535 for a roundtrip.  AS4_PATH, AS4_AGGREGATOR, OTC and
  the 4-octet AS capability are always 4-octet and stay unrestricted, except that AS 0 never
  appears in AS_PATH, AS4_PATH, AGGREGATOR or AS4_AGGREGATOR (RFC 7607 section 2: malformed).
* IPv4 NLRI in MP_REACH_NLRI get an IPv6 next hop only when the context negotiated Extended Next
  Hop for their family (RFC 8950 section 3); otherwise the receiver disables the family.
* UPDATEs carry AS4_PATH / AS4_AGGREGATOR only in a 2-octet context: between 4-octet speakers
  the receiver discards them (RFC 6793 section 3), so they would not roundtrip.
* UPDATEs stay below 4096 octets by bounding every list (see ``updates``), and carry ORIGIN,
  AS_PATH and (for classic NLRI) NEXT_HOP whenever they announce something, so the decoder's
  missing-attribute check (RFC 7606 section 3(d)) is never triggered here.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Callable
from typing import Any

from hypothesis import strategies as st

from bgpsvc.wire import (
    ATTRIBUTES,
    CAPABILITIES,
    IPV4_UNICAST,
    IPV6_UNICAST,
    AddPath,
    Aggregator,
    As4Aggregator,
    As4Path,
    AsPath,
    AsPathSegment,
    AtomicAggregate,
    BgpRole,
    Capability,
    ClusterList,
    Communities,
    EnhancedRouteRefresh,
    ExtendedCommunities,
    ExtendedCommunity,
    ExtendedMessage,
    ExtendedNextHop,
    Family,
    FourOctetAs,
    Fqdn,
    GracefulRestart,
    GracefulRestartFamily,
    Keepalive,
    LargeCommunities,
    LocalPref,
    LongLivedGracefulRestart,
    LongLivedGracefulRestartFamily,
    Message,
    MpReachNlri,
    MpUnreachNlri,
    MultiExitDisc,
    Multiprotocol,
    Negotiated,
    NextHop,
    Notification,
    Open,
    Origin,
    OriginatorId,
    Otc,
    PathAttribute,
    Prefix,
    RouteRefresh,
    RouteRefreshCapability,
    UnknownAttribute,
    UnknownCapability,
    Update,
)

U8 = st.integers(0, 0xFF)
U16 = st.integers(0, 0xFFFF)
U24 = st.integers(0, 0xFFFFFF)
U32 = st.integers(0, 0xFFFFFFFF)

IPV4_MULTICAST = Family(1, 2)
IPV6_MULTICAST = Family(2, 2)
PREFIX_FAMILIES = (IPV4_UNICAST, IPV6_UNICAST, IPV4_MULTICAST, IPV6_MULTICAST)

#: Attribute type codes the codec does not know: these decode to ``UnknownAttribute``.
UNKNOWN_ATTRIBUTE_TYPES = tuple(t for t in range(256) if t not in ATTRIBUTES)
#: Capability codes the codec does not know: these decode to ``UnknownCapability``.
UNKNOWN_CAPABILITY_CODES = tuple(c for c in range(256) if c not in CAPABILITIES)

_BITS = {1: 32, 2: 128}
# Lengths that hit the decoder's uniform-length fast paths, plus byte-aligned favourites.
_COMMON_LENGTHS = {1: (0, 8, 16, 24, 32), 2: (0, 32, 48, 64, 128)}


def sized_lists(
    elements: st.SearchStrategy[Any], min_size: int = 0, max_size: int = 20
) -> st.SearchStrategy[tuple[Any, ...]]:
    """A tuple of ``elements`` whose length is often exactly ``min_size`` or ``max_size`` (boundaries)."""
    sizes = st.one_of(st.integers(min_size, max_size), st.sampled_from((min_size, max_size)))
    return sizes.flatmap(lambda n: st.lists(elements, min_size=n, max_size=n).map(tuple))


def sized_binary(max_size: int, edges: tuple[int, ...] = ()) -> st.SearchStrategy[bytes]:
    """Bytes of any length up to ``max_size``, often exactly one of ``edges`` or ``max_size``."""
    sizes = st.one_of(st.integers(0, max_size), st.sampled_from((0, *edges, max_size)))
    return sizes.flatmap(lambda n: st.binary(min_size=n, max_size=n))


# -- Negotiated --------------------------------------------------------------------------------


#: RFC 8950 pairs (IPv4 NLRI family, next-hop AFI 2): IPv6 next hops for IPv4 unicast and multicast.
IPV6_NEXT_HOP_FOR_IPV4 = frozenset((f, 2) for f in PREFIX_FAMILIES if f.afi == 1)


def symmetric_ctx(
    four_octet_as: bool,
    extended_message: bool,
    add_path: frozenset[Family],
    extended_next_hop: bool = False,
) -> Negotiated:
    """A context that receives with ADD-PATH exactly the families it sends with it."""
    return Negotiated(
        four_octet_as,
        extended_message,
        add_path_rx=add_path,
        add_path_tx=add_path,
        extended_next_hop=IPV6_NEXT_HOP_FOR_IPV4 if extended_next_hop else frozenset(),
    )


@functools.cache
def negotiated(
    four_octet_as: bool | None = None, extended_message: bool | None = None, add_path: bool = True
) -> st.SearchStrategy[Negotiated]:
    """A session context; ``None`` lets hypothesis choose, ADD-PATH families are symmetric (rx == tx),
    Extended Next Hop (RFC 8950) for both IPv4 families or neither."""
    return st.builds(
        symmetric_ctx,
        st.booleans() if four_octet_as is None else st.just(four_octet_as),
        st.booleans() if extended_message is None else st.just(extended_message),
        st.frozensets(st.sampled_from(PREFIX_FAMILIES)) if add_path else st.just(frozenset()),
        st.booleans(),
    )


# -- Prefixes ------------------------------------------------------------------------------------


def _make_prefix(afi: int, length: int, address: int, path_id: int) -> Prefix:
    bits = _BITS[afi]
    network = (address >> (bits - length) << (bits - length)) if length else 0
    packed = network.to_bytes(bits // 8, "big")[: (length + 7) // 8]
    return Prefix(afi, length, packed, path_id)


@functools.cache
def prefix_lengths(afi: int) -> st.SearchStrategy[int]:
    """Any prefix length for the AFI, biased towards the common (fast-path) ones."""
    return st.one_of(st.integers(0, _BITS[afi]), st.sampled_from(_COMMON_LENGTHS[afi]))


@functools.cache
def prefixes(
    afi: int, path_id: bool = False, length: st.SearchStrategy[int] | None = None
) -> st.SearchStrategy[Prefix]:
    """An IPv4 (afi 1) or IPv6 (afi 2) prefix with host bits zero; a random path ID if ``path_id``."""
    return st.builds(
        _make_prefix,
        st.just(afi),
        prefix_lengths(afi) if length is None else length,
        st.integers(0, (1 << _BITS[afi]) - 1),
        U32 if path_id else st.just(0),
    )


@functools.cache
def prefix_lists(
    afi: int, path_id: bool = False, min_size: int = 0, max_size: int = 20
) -> st.SearchStrategy[tuple[Prefix, ...]]:
    """Prefixes of mixed lengths, or (to hit the decoder's fast paths) all of one length."""
    mixed = st.lists(prefixes(afi, path_id), min_size=min_size, max_size=max_size)
    uniform = prefix_lengths(afi).flatmap(
        lambda n: st.lists(prefixes(afi, path_id, st.just(n)), min_size=min_size, max_size=max_size)
    )
    return st.one_of(mixed, uniform).map(tuple)


@functools.cache
def family_prefixes(
    family: Family, ctx: Negotiated, max_size: int = 20
) -> st.SearchStrategy[tuple[Prefix, ...]]:
    """Prefixes of ``family``, with path IDs when the context sends ADD-PATH for it."""
    return prefix_lists(family.afi, family in ctx.add_path_tx, max_size=max_size)


# -- Addresses -----------------------------------------------------------------------------------

ipv4_addresses = st.builds(ipaddress.IPv4Address, U32)
ipv6_addresses = st.builds(ipaddress.IPv6Address, st.integers(0, (1 << 128) - 1))


def _valid_next_hop(a: ipaddress.IPv4Address) -> bool:
    return not (a.is_unspecified or a.is_multicast or int(a) == 0xFFFFFFFF)


#: NEXT_HOP values the decoder accepts (RFC 4271 section 6.3): not 0.0.0.0, broadcast or multicast.
next_hop_addresses = st.one_of(
    st.builds(ipaddress.IPv4Address, st.integers(1, 0xDFFFFFFF)),
    st.builds(ipaddress.IPv4Address, st.integers(0xF0000000, 0xFFFFFFFE)),
).filter(_valid_next_hop)


# -- Path attributes -----------------------------------------------------------------------------


@functools.cache
def asns(four_octet_as: bool = True) -> st.SearchStrategy[int]:
    """An AS number other than 0 (RFC 7607 section 2); 2-octet only when the session is 2-octet
    (AS_TRANS substitution otherwise)."""
    return st.integers(1, 0xFFFFFFFF if four_octet_as else 0xFFFF)


@functools.cache
def as_path_segments(
    four_octet_as: bool = True, types: tuple[int, ...] = (1, 2, 3, 4), max_asns: int = 40
) -> st.SearchStrategy[AsPathSegment]:
    """One AS_PATH segment of the given types (1 SET, 2 SEQUENCE, 3 CONFED_SEQUENCE, 4 CONFED_SET)."""
    return st.builds(
        AsPathSegment,
        st.sampled_from(types),
        st.lists(asns(four_octet_as), min_size=1, max_size=max_asns).map(tuple),
    )


@functools.cache
def as_paths(
    four_octet_as: bool = True,
    min_segments: int = 0,
    max_segments: int = 4,
    types: tuple[int, ...] = (1, 2, 3, 4),
) -> st.SearchStrategy[AsPath]:
    """AS_PATH of up to four segments of any type (an empty AS_PATH is valid for iBGP)."""
    return st.builds(
        AsPath,
        st.lists(as_path_segments(four_octet_as, types), min_size=min_segments, max_size=max_segments).map(
            tuple
        ),
    )


as4_paths = st.builds(As4Path, st.lists(as_path_segments(True, (1, 2)), min_size=1, max_size=4).map(tuple))

origins = st.builds(Origin, st.integers(0, 2))
next_hops = st.builds(NextHop, next_hop_addresses)
multi_exit_discs = st.builds(MultiExitDisc, U32)
local_prefs = st.builds(LocalPref, U32)
atomic_aggregates = st.just(AtomicAggregate())
communities = st.builds(Communities, st.lists(U32, min_size=1, max_size=30).map(tuple))
originator_ids = st.builds(OriginatorId, ipv4_addresses)
cluster_lists = st.builds(ClusterList, st.lists(ipv4_addresses, min_size=1, max_size=10).map(tuple))
extended_community_values = st.one_of(
    st.builds(ExtendedCommunity, st.binary(min_size=8, max_size=8)),
    st.builds(ExtendedCommunity.route_target, U32, U16),
)
extended_communities = st.builds(
    ExtendedCommunities, st.lists(extended_community_values, min_size=1, max_size=10).map(tuple)
)
as4_aggregators = st.builds(As4Aggregator, asns(), ipv4_addresses)
large_communities = st.builds(
    LargeCommunities, st.lists(st.tuples(U32, U32, U32), min_size=1, max_size=10).map(tuple)
)
otcs = st.builds(Otc, U32)


@functools.cache
def aggregators(four_octet_as: bool = True) -> st.SearchStrategy[Aggregator]:
    """AGGREGATOR; AS numbers 2-octet for a 2-octet session."""
    return st.builds(Aggregator, asns(four_octet_as), ipv4_addresses)


@st.composite
def unknown_attribute_flags(draw: st.DrawFn) -> int:
    """Optional (0x80) or optional transitive (0xC0); Partial (0x20) only on transitive ones."""
    flags = draw(st.sampled_from((0x80, 0xC0)))
    if flags == 0xC0 and draw(st.booleans()):
        flags |= 0x20
    return flags


@functools.cache
def unknown_attributes(
    type_codes: st.SearchStrategy[int] | None = None, max_value: int = 300
) -> st.SearchStrategy[UnknownAttribute]:
    """An optional attribute whose type code is not in ``ATTRIBUTES``; long values use Extended Length."""
    return st.builds(
        UnknownAttribute,
        st.sampled_from(UNKNOWN_ATTRIBUTE_TYPES) if type_codes is None else type_codes,
        unknown_attribute_flags(),
        sized_binary(max_value, (255, 256)),
    )


@functools.cache
@st.composite
def mp_next_hops(
    draw: st.DrawFn, afi: int, ipv6_for_ipv4: bool = True
) -> tuple[ipaddress.IPv4Address | ipaddress.IPv6Address, ...]:
    """IPv4 NLRI: one IPv4 or, if ``ipv6_for_ipv4`` (RFC 8950), IPv6 next hop; IPv6 NLRI: IPv6 global
    (+ link-local)."""
    count = draw(st.integers(1, 2))
    if afi == 1 and (not ipv6_for_ipv4 or (count == 1 and draw(st.booleans()))):
        return (draw(ipv4_addresses),)
    return tuple(draw(ipv6_addresses) for _ in range(count))


@functools.cache
@st.composite
def mp_reach_nlris(
    draw: st.DrawFn, ctx: Negotiated, families: tuple[Family, ...] = PREFIX_FAMILIES, max_nlri: int = 20
) -> MpReachNlri:
    """MP_REACH_NLRI for a prefix family, next hop per the class rules (RFC 4760, RFC 2545, RFC 8950)."""
    family = draw(st.sampled_from(families))
    return MpReachNlri(
        family.afi,
        family.safi,
        draw(mp_next_hops(family.afi, (family, 2) in ctx.extended_next_hop)),
        draw(family_prefixes(family, ctx, max_nlri)),
    )


@functools.cache
@st.composite
def mp_unreach_nlris(
    draw: st.DrawFn, ctx: Negotiated, families: tuple[Family, ...] = PREFIX_FAMILIES, max_nlri: int = 20
) -> MpUnreachNlri:
    """MP_UNREACH_NLRI for a prefix family (an empty one is End-of-RIB)."""
    family = draw(st.sampled_from(families))
    return MpUnreachNlri(family.afi, family.safi, draw(family_prefixes(family, ctx, max_nlri)))


def attribute_strategies(ctx: Negotiated) -> dict[int, st.SearchStrategy[Any]]:
    """One strategy per recognised attribute type code, valid for ``ctx``."""
    return dict(_attribute_strategies(ctx))


@functools.cache
def _attribute_strategies(ctx: Negotiated) -> dict[int, st.SearchStrategy[Any]]:
    # Cached: composite strategies draw these per example, and building strategies is not free.
    four = ctx.four_octet_as
    return {
        1: origins,
        2: as_paths(four),
        3: next_hops,
        4: multi_exit_discs,
        5: local_prefs,
        6: atomic_aggregates,
        7: aggregators(four),
        8: communities,
        9: originator_ids,
        10: cluster_lists,
        14: mp_reach_nlris(ctx),
        15: mp_unreach_nlris(ctx),
        16: extended_communities,
        17: as4_paths,
        18: as4_aggregators,
        32: large_communities,
        35: otcs,
    }


@functools.cache
def attributes(ctx: Negotiated) -> st.SearchStrategy[PathAttribute]:
    """Any single path attribute (every class in ``ATTRIBUTES`` plus ``UnknownAttribute``)."""
    return st.one_of(*_attribute_strategies(ctx).values(), unknown_attributes())


# -- Capabilities --------------------------------------------------------------------------------


def _fqdn_fits(names: tuple[str, str]) -> bool:
    return 2 + len(names[0].encode()) + len(names[1].encode()) <= 255


capability_strategies: dict[str, st.SearchStrategy[Any]] = {
    "Multiprotocol": st.builds(Multiprotocol, U16, U8),
    "RouteRefreshCapability": st.just(RouteRefreshCapability()),
    "ExtendedNextHop": st.builds(ExtendedNextHop, sized_lists(st.tuples(U16, U16, U16), 1, 42)),
    "ExtendedMessage": st.just(ExtendedMessage()),
    "BgpRole": st.builds(BgpRole, U8),
    "GracefulRestart": st.builds(
        GracefulRestart,
        st.integers(0, 0xFFF),
        st.booleans(),
        st.booleans(),
        sized_lists(st.builds(GracefulRestartFamily, U16, U8, st.booleans()), 0, 63),
    ),
    "FourOctetAs": st.builds(FourOctetAs, U32),
    "AddPath": st.builds(AddPath, sized_lists(st.tuples(U16, U8, st.integers(1, 3)), 1, 63)),
    "EnhancedRouteRefresh": st.just(EnhancedRouteRefresh()),
    "LongLivedGracefulRestart": st.builds(
        LongLivedGracefulRestart,
        sized_lists(st.builds(LongLivedGracefulRestartFamily, U16, U8, st.booleans(), U24), 0, 36),
    ),
    # Hostname and domain share the 255-octet value: 2 length octets + at most 253 of UTF-8.
    "Fqdn": st.tuples(st.text(max_size=130), st.text(max_size=130))
    .filter(_fqdn_fits)
    .map(lambda n: Fqdn(*n)),
    "UnknownCapability": st.builds(
        UnknownCapability, st.sampled_from(UNKNOWN_CAPABILITY_CODES), sized_binary(255, (252, 253, 254))
    ),
}

#: Any capability: every class in ``CAPABILITIES`` plus ``UnknownCapability``.
capabilities: st.SearchStrategy[Capability] = st.one_of(*capability_strategies.values())


# -- Messages ------------------------------------------------------------------------------------

hold_times = st.one_of(st.just(0), st.integers(3, 0xFFFF))
bgp_ids = st.builds(ipaddress.IPv4Address, st.integers(1, 0xFFFFFFFF))


@functools.cache
def opens(caps: st.SearchStrategy[Capability] = capabilities, max_caps: int = 8) -> st.SearchStrategy[Open]:
    """OPEN via the constructor: My AS 2-octet, hold time 0 or >= 3, non-zero BGP Identifier.

    More than 255 octets of capabilities make the encoder use RFC 9072 extended parameters.
    """
    return st.builds(Open, U16, hold_times, bgp_ids, st.lists(caps, max_size=max_caps).map(tuple))


@functools.cache
def notifications(max_data: int = 300) -> st.SearchStrategy[Notification]:
    """NOTIFICATION with any code, subcode and data."""
    return st.builds(Notification, U8, U8, st.binary(max_size=max_data))


route_refreshes = st.builds(RouteRefresh, U16, U8, U8)
keepalives = st.just(Keepalive())

# Optional attribute types an UPDATE may carry besides ORIGIN / AS_PATH / NEXT_HOP / MP_*.
_OPTIONAL_TYPES = (4, 5, 6, 7, 8, 9, 10, 16, 17, 18, 32, 35)
# RFC 6793 section 3: AS4_PATH and AS4_AGGREGATOR are not carried between NEW (4-octet) speakers, and
# a NEW receiver discards them, so UPDATEs for a 4-octet session leave them out.
_OPTIONAL_TYPES_NEW = tuple(t for t in _OPTIONAL_TYPES if t not in (17, 18))


@st.composite
def updates(
    draw: st.DrawFn,
    ctx: Negotiated,
    overrides: dict[int, st.SearchStrategy[Any]] | None = None,
    *,
    unknown_types: tuple[int, ...] = UNKNOWN_ATTRIBUTE_TYPES,
) -> Update:
    """An UPDATE: IPv4 withdrawn and NLRI, distinct attribute types in any order, sometimes MP_*.

    Bounds keep the worst case near 3.6 KB, below 4096 octets, whatever the context.
    ``overrides`` replaces the strategy of some attribute types and ``unknown_types`` limits the
    type codes of unknown attributes (the scapy cross-check uses both).
    """
    strategies = attribute_strategies(ctx)
    strategies.update(overrides or {})
    ap4 = IPV4_UNICAST in ctx.add_path_tx
    withdrawn = draw(prefix_lists(1, ap4))
    nlri = draw(prefix_lists(1, ap4))
    attrs: dict[int, PathAttribute] = {}
    if draw(st.integers(0, 2)) == 0:
        attrs[14] = draw(strategies[14])
    if draw(st.integers(0, 2)) == 0:
        attrs[15] = draw(strategies[15])
    reach = bool(nlri) or (14 in attrs and bool(attrs[14].nlri))  # type: ignore[attr-defined]
    if reach or draw(st.booleans()):
        attrs[1] = draw(strategies[1])
        attrs[2] = draw(strategies[2])
    if nlri or draw(st.integers(0, 3)) == 0:
        attrs[3] = draw(strategies[3])
    optional = _OPTIONAL_TYPES if not ctx.four_octet_as else _OPTIONAL_TYPES_NEW
    for t in draw(st.sets(st.sampled_from(optional))):
        attrs[t] = draw(strategies[t])
    for t in draw(st.sets(st.sampled_from(unknown_types), max_size=3)):
        a = draw(unknown_attributes())
        attrs[t] = UnknownAttribute(t, a.flags, a.value)
    order = draw(st.permutations(list(attrs.values())))
    return Update(withdrawn, tuple(order), nlri)


@functools.cache
def messages(ctx: Negotiated) -> st.SearchStrategy[Message]:
    """Any of the five message types, valid for ``ctx``."""
    return st.one_of(opens(), updates(ctx), notifications(), keepalives, route_refreshes)


def ctx_and(
    build: Callable[[Negotiated], st.SearchStrategy[Any]], ctxs: st.SearchStrategy[Negotiated] | None = None
) -> st.SearchStrategy[tuple[Negotiated, Any]]:
    """A context and something drawn from ``build(ctx)``."""
    cached = functools.cache(build)  # one strategy per context, not one per example
    return (negotiated() if ctxs is None else ctxs).flatmap(lambda c: st.tuples(st.just(c), cached(c)))
