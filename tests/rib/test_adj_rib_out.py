"""Adj-RIB-Out: diff/commit/pack against the desired set, per-peer attribute building."""

from __future__ import annotations

import ipaddress

from hypothesis import given, settings
from hypothesis import strategies as st

from bgpsvc.rib import AdjRibIn, AdjRibOut, Export, RouteAttrs
from bgpsvc.wire import (
    AS_TRANS,
    DEFAULT,
    IPV4_UNICAST,
    IPV6_UNICAST,
    TWO_OCTET,
    As4Path,
    AsPath,
    Communities,
    Community,
    LocalPref,
    MpReachNlri,
    NextHop,
    Prefix,
    RouteRefresh,
    Update,
    decode,
    merge_as4,
)

V4 = ipaddress.IPv4Address("192.0.2.10")
V6 = ipaddress.IPv6Address("2001:db8::10")
LL = ipaddress.IPv6Address("fe80::10")
EBGP = Export(4200000001, 64513, next_hop_v4=V4, next_hop_v6=V6, link_local_v6=LL)
IBGP = Export(64512, 64512, next_hop_v4=V4, next_hop_v6=V6)


def replay(msgs: list[bytes], ctx=DEFAULT) -> dict[Prefix, Update]:  # type: ignore[no-untyped-def]
    """What a peer would hold after receiving ``msgs``: prefix -> the UPDATE that announced it."""
    held: dict[Prefix, Update] = {}
    for m in msgs:
        u = decode(m, ctx)
        assert isinstance(u, Update)
        for _, p in u.withdrawals():
            held.pop(p, None)
        for _, p in u.announced():
            held[p] = u
    return held


def test_ebgp_prepends_our_as_and_sets_next_hop_self() -> None:
    rib = AdjRibOut(EBGP, DEFAULT)
    desired = {
        Prefix.from_network("198.51.100.0/24"): RouteAttrs(med=5, communities=(Community.NO_EXPORT,)),
        Prefix.from_network("2001:db8:5::/48"): RouteAttrs(),
    }
    held = replay(rib.update(desired))
    u4 = held[Prefix.from_network("198.51.100.0/24")]
    assert u4.get(AsPath) == AsPath.sequence(4200000001)
    assert u4.get(NextHop) == NextHop(V4)
    assert u4.get(LocalPref) is None
    assert u4.get(Communities) == Communities((Community.NO_EXPORT,))
    u6 = held[Prefix.from_network("2001:db8:5::/48")]
    mp = u6.get(MpReachNlri)
    assert isinstance(mp, MpReachNlri) and mp.next_hop == (V6, LL)


def test_ibgp_sends_local_pref_and_empty_path() -> None:
    rib = AdjRibOut(IBGP, DEFAULT)
    held = replay(rib.update({Prefix.host("203.0.113.1"): RouteAttrs()}))
    u = held[Prefix.host("203.0.113.1")]
    assert u.get(AsPath) == AsPath(()) and u.get(LocalPref) == LocalPref(100)


def test_two_octet_peer_gets_as4_path() -> None:
    rib = AdjRibOut(Export(4200000001, 64513, next_hop_v4=V4, four_octet_as=False), TWO_OCTET)
    held = replay(rib.update({Prefix.host("203.0.113.1"): RouteAttrs(as_path=(4200000002,))}), TWO_OCTET)
    u = held[Prefix.host("203.0.113.1")]
    assert u.get(AsPath) == AsPath.sequence(AS_TRANS, AS_TRANS)
    assert u.get(As4Path) is not None
    merged = {a.type_code: a for a in merge_as4(u.attributes)}
    assert merged[2] == AsPath.sequence(4200000001, 4200000002)


def test_graceful_shutdown_readvertises_everything_with_65535_0_and_lp0_for_ibgp() -> None:
    rib = AdjRibOut(IBGP, DEFAULT)
    desired = {Prefix.host(f"198.51.100.{i}"): RouteAttrs() for i in range(50)}
    rib.update(desired)
    assert rib.diff(desired) == rib.diff(desired) and not rib.diff(desired)
    rib.set_export(Export(64512, 64512, next_hop_v4=V4, graceful_shutdown=True))
    held = replay(rib.update(desired))
    assert len(held) == 50
    for u in held.values():
        assert u.get(Communities) == Communities((Community.GRACEFUL_SHUTDOWN,))
        assert u.get(LocalPref) == LocalPref(0)


def test_route_refresh_resends_the_table_wrapped_in_borr_eorr() -> None:
    rib = AdjRibOut(EBGP, DEFAULT)
    desired = {Prefix.host(f"198.51.100.{i}"): RouteAttrs() for i in range(5)}
    first = rib.update(desired)
    again = rib.refresh(IPV4_UNICAST, enhanced=True)
    assert decode(again[0]) == RouteRefresh(1, 1, 1) and decode(again[-1]) == RouteRefresh(1, 1, 2)
    assert replay(again[1:-1]).keys() == replay(first).keys()
    assert rib.refresh(IPV6_UNICAST, enhanced=False) == []


def test_shared_prefix_is_sent_once_and_withdrawn_when_gone() -> None:
    rib = AdjRibOut(EBGP, DEFAULT)
    p = Prefix.host("203.0.113.9")
    assert len(rib.update({p: RouteAttrs()})) == 1
    assert rib.update({p: RouteAttrs()}) == []
    msgs = rib.update({})
    assert [u.withdrawn for u in map(decode, msgs)] == [(p,)]  # type: ignore[union-attr]


def test_ipv6_over_ipv4_session_uses_mapped_next_hop() -> None:
    rib = AdjRibOut(Export(64512, 64513, next_hop_v4=V4), DEFAULT)
    held = replay(rib.update({Prefix.from_network("2001:db8::/32"): RouteAttrs()}))
    mp = held[Prefix.from_network("2001:db8::/32")].get(MpReachNlri)
    assert isinstance(mp, MpReachNlri) and mp.next_hop == (ipaddress.IPv6Address("::ffff:192.0.2.10"),)


def test_unroutable_family_is_counted_not_sent() -> None:
    rib = AdjRibOut(Export(64512, 64513, next_hop_v6=V6), DEFAULT)
    msgs = rib.update({Prefix.from_network("198.51.100.0/24"): RouteAttrs()})
    assert msgs == [] and rib.unroutable == 1


prefixes = st.builds(
    lambda i, n: Prefix.from_network(ipaddress.IPv4Network((i << 8, n), strict=False)),
    st.integers(0, 2**24 - 1),
    st.integers(8, 32),
)
routes = st.sampled_from(
    [RouteAttrs(), RouteAttrs(med=1), RouteAttrs(communities=(1, 2)), RouteAttrs(local_pref=7)]
)
tables = st.dictionaries(prefixes, routes, max_size=200)


@settings(max_examples=150, deadline=None)
@given(st.lists(tables, min_size=1, max_size=4))
def test_any_sequence_of_desired_sets_converges(seq: list[dict[Prefix, RouteAttrs]]) -> None:
    rib = AdjRibOut(EBGP, DEFAULT)
    peer: dict[Prefix, Update] = {}
    for desired in seq:
        msgs = rib.update(desired)
        for m in msgs:
            assert len(m) <= 4096
            u = decode(m)
            assert isinstance(u, Update) and not u.errors
            for _, p in u.withdrawals():
                peer.pop(p, None)
            for _, p in u.announced():
                peer[p] = u
        # After commit there is nothing left to do, and the peer holds exactly the desired set.
        assert not rib.diff(desired)
        assert peer.keys() == desired.keys()
        for p, route in desired.items():
            assert peer[p].attributes == EBGP.attributes(route, IPV4_UNICAST)


def test_adj_rib_in_cap_and_graceful_restart_stale() -> None:
    rib_out = AdjRibOut(EBGP, DEFAULT)
    msgs = rib_out.update({Prefix.host(f"198.51.100.{i}"): RouteAttrs() for i in range(20)})
    rib_in = AdjRibIn(max_prefixes=15)
    for m in msgs:
        u = decode(m)
        assert isinstance(u, Update)
        rib_in.apply(u)
    assert rib_in.count(IPV4_UNICAST) == 15 and rib_in.dropped == 5
    assert rib_in.mark_stale([IPV4_UNICAST]) == 15 and rib_in.stale_count() == 15
    # One UPDATE's routes shared one ReceivedRoute; their stale copies share one too, same attributes.
    table = rib_in.routes[IPV4_UNICAST]
    assert len({id(r) for r in table.values()}) == 1
    assert table[Prefix.host("198.51.100.0")].attributes == u.attributes
    again = decode(rib_out.full_table()[0])
    assert isinstance(again, Update)
    rib_in.apply(again)  # the restarted peer re-advertises: those are fresh again
    assert rib_in.end_of_rib(IPV4_UNICAST) == 0
    assert rib_in.stale_count() == 0


def test_diff_is_pure_and_commit_records_what_cannot_be_sent() -> None:
    rib = AdjRibOut(Export(64512, 64513, next_hop_v6=V6), DEFAULT)  # an IPv6 session: no IPv4 next hop
    desired = {
        Prefix.from_network("198.51.100.0/24"): RouteAttrs(),
        Prefix.from_network("2001:db8:1::/48"): RouteAttrs(),
    }
    delta = rib.diff(desired)
    assert rib.sent == {} and rib.unroutable == 0  # diff changed nothing
    assert list(delta.announce) == [Prefix.from_network("2001:db8:1::/48")] and delta.unroutable == 1
    rib.commit(delta)
    assert rib.unroutable == 1 and list(rib.sent) == [Prefix.from_network("2001:db8:1::/48")]
    assert rib.update(desired) == [] and rib.unroutable == 1
