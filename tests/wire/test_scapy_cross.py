"""scapy as a second, independent decoder of what we encode (STYLE.md section 9).

For hypothesis-generated messages, ``scapy_oracle.decode(encode(m, ctx))`` must give the field values
of ``m``.  The expected oracle dict is built here from the object's fields and the RFC layouts (RFC
4271, 1997, 4360, 4456, 4724, 4760, 5492, 6793, 7313, 7911, 8092, 9234, draft-walton-bgp-hostname-
capability), never from our encoder.

scapy cannot decode everything (see "Known scapy limitations" in ``scapy_oracle``).  The strategies
below steer clear of those cases; if one still comes up, the example is rejected only when the
message really has that documented feature *and* the oracle's reason names it, so a new failure
cannot hide behind a skip.  (``pytest.skip`` inside ``@given`` would end the whole property at the
first such example, so the example is rejected with ``hypothesis.reject`` instead.)  ADD-PATH
contexts are not used: the oracle decodes plain NLRI only.
"""

from __future__ import annotations

import functools
import ipaddress
import re
import struct
from collections.abc import Callable
from typing import Any

from hypothesis import HealthCheck, given, reject, settings
from hypothesis import strategies as st

from bgpsvc.wire import (
    AS_TRANS,
    AddPath,
    Aggregator,
    As4Aggregator,
    As4Path,
    AsPath,
    AtomicAggregate,
    BgpRole,
    Capability,
    ClusterList,
    Communities,
    EnhancedRouteRefresh,
    ExtendedCommunities,
    ExtendedMessage,
    ExtendedNextHop,
    FourOctetAs,
    Fqdn,
    GracefulRestart,
    Keepalive,
    LargeCommunities,
    LocalPref,
    LongLivedGracefulRestart,
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
    encode,
)
from tests.wire import strategies as ws
from tests.wire.scapy_oracle import OracleUnsupported
from tests.wire.scapy_oracle import decode as oracle_decode

CROSS = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])

#: Contexts scapy can follow: 2- or 4-octet AS, no ADD-PATH, 4096-octet messages.
contexts = ws.negotiated(extended_message=False, add_path=False)


# -- Expected values, from the object's fields and the RFC layouts ------------------------------


def prefix_str(p: Prefix) -> str:
    """``a.b.c.d/n`` or IPv6 text: the significant octets padded to the address size."""
    size = 4 if p.afi == 1 else 16
    return str(ipaddress.ip_network((p.packed + bytes(size - len(p.packed)), p.length)))


def nlri_len(prefixes: tuple[Prefix, ...]) -> int:
    """RFC 4271 section 4.3: a length octet and ceil(length / 8) address octets per prefix."""
    return sum(1 + (p.length + 7) // 8 for p in prefixes)


def capability_value(c: Capability) -> bytes:
    """Capability value octets per the defining RFC (not via our encoder)."""
    if isinstance(c, Multiprotocol):  # RFC 4760 section 8: AFI, reserved, SAFI
        return struct.pack(">HBB", c.afi, 0, c.safi)
    if isinstance(c, (RouteRefreshCapability, EnhancedRouteRefresh, ExtendedMessage)):
        return b""
    if isinstance(c, ExtendedNextHop):  # RFC 8950 section 3: NLRI AFI, NLRI SAFI, next-hop AFI
        return b"".join(struct.pack(">HHH", *e) for e in c.entries)
    if isinstance(c, BgpRole):  # RFC 9234 section 4.1
        return bytes((c.role,))
    if isinstance(c, GracefulRestart):  # RFC 4724 section 3 (+ N bit, RFC 8538 section 2)
        flags = (8 if c.restarting else 0) | (4 if c.notification else 0)
        head = struct.pack(">H", flags << 12 | c.restart_time)
        return head + b"".join(
            struct.pack(">HBB", f.afi, f.safi, 0x80 if f.forwarding else 0) for f in c.families
        )
    if isinstance(c, FourOctetAs):  # RFC 6793 section 3
        return struct.pack(">I", c.asn)
    if isinstance(c, AddPath):  # RFC 7911 section 4
        return b"".join(struct.pack(">HBB", *e) for e in c.entries)
    if isinstance(c, LongLivedGracefulRestart):  # RFC 9494 section 3
        return b"".join(
            struct.pack(">HBB", f.afi, f.safi, 0x80 if f.forwarding else 0) + f.stale_time.to_bytes(3, "big")
            for f in c.families
        )
    if isinstance(c, Fqdn):  # draft-walton-bgp-hostname-capability section 3
        host, domain = c.hostname.encode(), c.domain.encode()
        return bytes((len(host),)) + host + bytes((len(domain),)) + domain
    if isinstance(c, UnknownCapability):
        return c.value
    raise AssertionError(f"no expected value for {c!r}")


def _segments(segments: Any, four: bool) -> tuple[list[tuple[int, list[int]]], int]:
    width = 4 if four else 2
    # RFC 6793 section 4.2.2: a 2-octet AS field carries AS_TRANS for an AS above 65535.
    out = [(s.type, [a if four or a <= 0xFFFF else AS_TRANS for a in s.asns]) for s in segments]
    return out, sum(2 + width * len(s.asns) for s in segments)


def attribute_value(a: PathAttribute, four: bool) -> tuple[int, object, int]:
    """(flags without Extended Length, normalised oracle value, value length) for one attribute."""
    if isinstance(a, Origin):
        return 0x40, a.value, 1
    if isinstance(a, AsPath):
        value, size = _segments(a.segments, four)
        return 0x40, value, size
    if isinstance(a, NextHop):
        return 0x40, str(a.address), 4
    if isinstance(a, MultiExitDisc):
        return 0x80, a.value, 4
    if isinstance(a, LocalPref):
        return 0x40, a.value, 4
    if isinstance(a, AtomicAggregate):
        return 0x40, None, 0
    if isinstance(a, Aggregator):
        asn = a.asn if four or a.asn <= 0xFFFF else AS_TRANS
        return 0xC0, (asn, str(a.address)), 8 if four else 6
    if isinstance(a, Communities):
        return 0xC0, list(a.values), 4 * len(a.values)
    if isinstance(a, OriginatorId):
        return 0x80, str(a.address), 4
    if isinstance(a, ClusterList):
        return 0x80, [str(i) for i in a.ids], 4 * len(a.ids)
    if isinstance(a, MpReachNlri):
        value = {
            "afi": a.afi,
            "safi": a.safi,
            "next_hops": [str(h) for h in a.next_hop],
            "nlri": [prefix_str(p) for p in a.nlri],
        }
        # RFC 4760 section 3: AFI (2), SAFI (1), next-hop length (1), next hop, reserved (1), NLRI.
        return 0x80, value, 5 + sum(len(h.packed) for h in a.next_hop) + nlri_len(a.nlri)
    if isinstance(a, MpUnreachNlri):
        value = {"afi": a.afi, "safi": a.safi, "withdrawn": [prefix_str(p) for p in a.withdrawn]}
        return 0x80, value, 3 + nlri_len(a.withdrawn)
    if isinstance(a, ExtendedCommunities):
        return 0xC0, [c.value for c in a.values], 8 * len(a.values)
    if isinstance(a, As4Path):
        value, size = _segments(a.segments, True)
        return 0xC0, value, size
    if isinstance(a, As4Aggregator):
        return 0xC0, (a.asn, str(a.address)), 8
    if isinstance(a, LargeCommunities):
        return 0xC0, [tuple(v) for v in a.values], 12 * len(a.values)
    if isinstance(a, Otc):  # RFC 9234 section 5: not normalised by the oracle, so raw octets
        return 0xC0, struct.pack(">I", a.asn), 4
    if isinstance(a, UnknownAttribute):
        return a.flags, a.value, len(a.value)
    raise AssertionError(f"no expected value for {a!r}")


def expected_attribute(a: PathAttribute, four: bool) -> tuple[int, int, object]:
    flags, value, size = attribute_value(a, four)
    # RFC 4271 section 4.3: the Extended Length bit is set exactly when the value exceeds 255 octets.
    return a.type_code, flags | (0x10 if size > 255 else 0), value


def expected(msg: Message, ctx: Negotiated) -> tuple[dict[str, object], int]:
    """The oracle's normalised dict for ``msg`` and the message length, from the RFC layouts."""
    if isinstance(msg, Open):
        caps = [(c.code, capability_value(c)) for c in msg.capabilities]
        # RFC 4271 section 4.2 + RFC 5492: one Capabilities parameter (type, length) per capability.
        body = 10 + sum(2 + 2 + len(v) for _, v in caps)
        fields: dict[str, object] = {
            "version": 4,
            "my_as": msg.my_as,
            "hold_time": msg.hold_time,
            "bgp_id": str(msg.bgp_id),
            "capabilities": caps,
        }
        return {"type": 1, **fields}, 19 + body
    if isinstance(msg, Update):
        attrs = [expected_attribute(a, ctx.four_octet_as) for a in msg.attributes]
        sizes = [attribute_value(a, ctx.four_octet_as)[2] for a in msg.attributes]
        body = (
            4 + nlri_len(msg.withdrawn) + sum((4 if n > 255 else 3) + n for n in sizes) + nlri_len(msg.nlri)
        )
        fields = {
            "withdrawn": [prefix_str(p) for p in msg.withdrawn],
            "nlri": [prefix_str(p) for p in msg.nlri],
            "attributes": attrs,
        }
        return {"type": 2, **fields}, 19 + body
    if isinstance(msg, Notification):
        return {"type": 3, "code": msg.code, "subcode": msg.subcode, "data": msg.data}, 21 + len(msg.data)
    if isinstance(msg, Keepalive):
        return {"type": 4}, 19
    if isinstance(msg, RouteRefresh):
        return {"type": 5, "afi": msg.afi, "subtype": msg.subtype, "safi": msg.safi}, 23
    raise AssertionError(f"not a message: {msg!r}")


# -- Documented scapy limitations ----------------------------------------------------------------


def _attrs(msg: Message) -> tuple[PathAttribute, ...]:
    return msg.attributes if isinstance(msg, Update) else ()


def _open_is_extended(msg: Message) -> bool:
    return isinstance(msg, Open) and sum(3 + 2 + len(capability_value(c)) for c in msg.capabilities) > 255


def _as4_path_segments(msg: Message) -> bool:
    return any(isinstance(a, As4Path) and len(a.segments) > 1 for a in _attrs(msg))


def _ext_community_81_82(msg: Message) -> bool:
    return any(
        isinstance(a, ExtendedCommunities)
        and any(c.value[0] in (0x81, 0x82) and c.value[1] != 0x08 for c in a.values)
        for a in _attrs(msg)
    )


def _mp_reach_family(msg: Message) -> bool:
    return any(
        isinstance(a, MpReachNlri)
        and (
            (a.nlri and (a.afi, a.safi) != (2, 1)) or (a.afi == 1 and any(h.version != 4 for h in a.next_hop))
        )
        for a in _attrs(msg)
    )


def _mp_unreach_family(msg: Message) -> bool:
    return any(
        isinstance(a, MpUnreachNlri) and a.withdrawn and (a.afi, a.safi) != (2, 1) for a in _attrs(msg)
    )


def _mp_unreach_marker(msg: Message) -> bool:
    return any(
        isinstance(a, MpUnreachNlri)
        and b"\xff" * 16 in b"".join(bytes((p.length,)) + p.packed for p in a.withdrawn)
        for a in _attrs(msg)
    )


def _orf_capability(msg: Message) -> bool:
    return isinstance(msg, Open) and any(c.code in (3, 130) for c in msg.capabilities)


_ANY_UPDATE_FAILURE = r"UPDATE body|undissected|take \d+ bytes|dissected .* as|AS4_PATH"

#: (name, does the message have the feature, what the oracle's reason must look like).
LIMITATIONS: tuple[tuple[str, Callable[[Message], bool], str], ...] = (
    ("RFC 9072 extended optional parameters", _open_is_extended, r"RFC 9072"),
    ("Outbound Route Filtering capability", _orf_capability, r"Outbound Route Filtering"),
    ("AS4_PATH with more than one segment", _as4_path_segments, _ANY_UPDATE_FAILURE),
    (
        "EXTENDED_COMMUNITIES type 0x81/0x82",
        _ext_community_81_82,
        r"extended communit|" + _ANY_UPDATE_FAILURE,
    ),
    ("MP_REACH_NLRI family / next hop", _mp_reach_family, r"MP_REACH_NLRI"),
    ("MP_UNREACH_NLRI family", _mp_unreach_family, r"MP_UNREACH_NLRI"),
    ("MP_UNREACH_NLRI marker-like prefix", _mp_unreach_marker, r"MP_UNREACH_NLRI|" + _ANY_UPDATE_FAILURE),
)


def oracle_or_reject(data: bytes, msg: Message, ctx: Negotiated) -> dict[str, object]:
    """The oracle's dict; a documented limitation rejects the example, anything else fails the test."""
    try:
        return oracle_decode(data, four_octet_as=ctx.four_octet_as)
    except OracleUnsupported as exc:
        matching = [name for name, has, reason in LIMITATIONS if has(msg) and re.search(reason, exc.reason)]
        assert matching, f"scapy could not decode {msg!r}: {exc.reason} (not a documented limitation)"
        reject()


def check(msg: Message, ctx: Negotiated) -> None:
    data = encode(msg, ctx)
    want, length = expected(msg, ctx)
    got = oracle_or_reject(data, msg, ctx)
    assert got == {**want, "length": length}


# -- Strategies that keep clear of the limitations ----------------------------------------------

# Capability codes scapy dissects as ORF (RFC 5291 and Cisco's 130): not normalised by the oracle.
_SCAPY_ORF_CODES = (3, 130)
cross_capabilities = st.one_of(
    *(s for name, s in ws.capability_strategies.items() if name != "UnknownCapability"),
    st.builds(
        UnknownCapability,
        st.sampled_from([c for c in ws.UNKNOWN_CAPABILITY_CODES if c not in _SCAPY_ORF_CODES]),
        ws.sized_binary(120),
    ),
)


@st.composite
def cross_opens(draw: st.DrawFn) -> Open:
    """OPEN whose capabilities fit the regular 255-octet optional parameters (scapy lacks RFC 9072)."""
    caps: list[Capability] = []
    used = 0
    for _ in range(draw(st.integers(0, 6))):
        cap = draw(cross_capabilities)
        size = 3 + len(cap.encode())
        if used + size <= 255:
            caps.append(cap)
            used += size
    return Open(draw(ws.U16), draw(ws.hold_times), draw(ws.bgp_ids), tuple(caps))


@functools.cache
def cross_mp_reach(ctx: Negotiated) -> st.SearchStrategy[MpReachNlri]:
    """IPv6 unicast with NLRI (the one family scapy dissects), others with an empty NLRI field."""
    other = st.sampled_from((ws.IPV4_UNICAST, ws.IPV4_MULTICAST, ws.IPV6_MULTICAST))
    return st.one_of(
        st.builds(MpReachNlri, st.just(2), st.just(1), ws.mp_next_hops(2), ws.prefix_lists(2)),
        other.flatmap(
            lambda f: st.builds(
                MpReachNlri,
                st.just(f.afi),
                st.just(f.safi),
                st.tuples(ws.ipv4_addresses) if f.afi == 1 else ws.mp_next_hops(2),
                st.just(()),
            )
        ),
    )


@functools.cache
def cross_mp_unreach(ctx: Negotiated) -> st.SearchStrategy[MpUnreachNlri]:
    """IPv6 unicast with withdrawn routes, others empty (End-of-RIB)."""
    other = st.sampled_from((ws.IPV4_UNICAST, ws.IPV4_MULTICAST, ws.IPV6_MULTICAST))
    return st.one_of(
        st.builds(MpUnreachNlri, st.just(2), st.just(1), ws.prefix_lists(2)),
        other.map(lambda f: MpUnreachNlri(f.afi, f.safi, ())),
    )


def _scapy_ext_community(c: Any) -> bool:
    return not (c.value[0] in (0x81, 0x82) and c.value[1] != 0x08)


cross_overrides = {
    16: st.builds(
        ExtendedCommunities,
        st.lists(ws.extended_community_values.filter(_scapy_ext_community), min_size=1, max_size=10).map(
            tuple
        ),
    ),
    17: st.builds(As4Path, st.tuples(ws.as_path_segments(True, (1, 2)))),
}


# Attribute type 25 (RFC 5701 IPv6 Address Specific Extended Community) is unknown to bgpsvc, so it is
# opaque bytes to us, but scapy dissects it with a class that needs 18 octets: a value of 1-17 octets
# makes the whole UPDATE undissectable. (Not in the oracle's list of known limitations.)
_SCAPY_TYPED_UNKNOWN = (25,)


@functools.cache
def cross_updates(ctx: Negotiated) -> st.SearchStrategy[Update]:
    return ws.updates(
        ctx,
        {**cross_overrides, 14: cross_mp_reach(ctx), 15: cross_mp_unreach(ctx)},
        unknown_types=tuple(t for t in ws.UNKNOWN_ATTRIBUTE_TYPES if t not in _SCAPY_TYPED_UNKNOWN),
    )


# -- Tests ---------------------------------------------------------------------------------------


@settings(CROSS, max_examples=200)
@given(ctx=contexts, msg=cross_opens())
def test_scapy_decodes_open(ctx: Negotiated, msg: Open) -> None:
    check(msg, ctx)


@settings(CROSS, max_examples=250)
@given(case=ws.ctx_and(cross_updates, contexts))
def test_scapy_decodes_update(case: tuple[Negotiated, Update]) -> None:
    ctx, msg = case
    check(msg, ctx)


@CROSS
@given(ctx=contexts, msg=ws.notifications())
def test_scapy_decodes_notification(ctx: Negotiated, msg: Notification) -> None:
    check(msg, ctx)


@settings(CROSS, max_examples=5)
@given(ctx=contexts)
def test_scapy_decodes_keepalive(ctx: Negotiated) -> None:
    check(Keepalive(), ctx)


@CROSS
@given(ctx=contexts, msg=ws.route_refreshes)
def test_scapy_decodes_route_refresh(ctx: Negotiated, msg: RouteRefresh) -> None:
    check(msg, ctx)
