"""Adj-RIB-Out comparing only the changed prefixes (``update(changed=, since=)``) does exactly what the
full diff does, on random sequences of desired sets; a wrong ``since`` falls back to the full diff."""

from __future__ import annotations

import ipaddress

from hypothesis import given, settings
from hypothesis import strategies as st

from bgpsvc.rib import AdjRibOut, Export, RouteAttrs
from bgpsvc.wire import DEFAULT, IPV4_UNICAST, IPV6_UNICAST, MpReachNlri, Prefix, Update, decode

# No IPv6 next hop: IPv6 prefixes are unroutable for this export (counted, never sent).
EXPORT = Export(64512, 64500, next_hop_v4=ipaddress.IPv4Address("192.0.2.10"))
ROUTES = [RouteAttrs(), RouteAttrs(med=1), RouteAttrs(med=2), RouteAttrs(local_pref=200)]
POOL = [Prefix.from_network(f"198.51.100.{i}/32") for i in range(12)] + [
    Prefix.from_network(f"2001:db8::{i:x}/128") for i in range(4)
]


def effect(msgs: list[bytes]) -> tuple[set[tuple[Prefix, object]], set[Prefix]]:
    """What the messages announce (prefix, attributes) and withdraw."""
    announced: set[tuple[Prefix, object]] = set()
    withdrawn: set[Prefix] = set()
    for m in msgs:
        u = decode(m)
        assert isinstance(u, Update)
        # The MP_REACH_NLRI's own list of prefixes is order, not meaning: keep its next hop only.
        attrs = tuple(a.next_hop if isinstance(a, MpReachNlri) else a for a in u.attributes)
        announced |= {(p, attrs) for _, p in u.announced()}
        withdrawn |= {p for _, p in u.withdrawals()}
    return announced, withdrawn


desired_sets = st.dictionaries(st.sampled_from(POOL), st.sampled_from(ROUTES), max_size=len(POOL))
steps_of = st.lists(st.tuples(desired_sets, st.sets(st.sampled_from(POOL))), min_size=1, max_size=8)


@settings(max_examples=200, deadline=None)
@given(steps_of, st.booleans())
def test_comparing_only_the_changed_prefixes_equals_the_full_diff(
    steps: list[tuple[dict[Prefix, RouteAttrs], set[Prefix]]], both_families: bool
) -> None:
    families = (IPV4_UNICAST, IPV6_UNICAST) if both_families else (IPV4_UNICAST,)
    full, targeted = AdjRibOut(EXPORT, DEFAULT), AdjRibOut(EXPORT, DEFAULT)
    previous: dict[Prefix, RouteAttrs] = {}
    for desired, extra in steps:
        # What differs, plus prefixes that did not change (a promise may cover more than the change).
        changed = {p for p in previous.keys() | desired.keys() if previous.get(p) is not desired.get(p)}
        want = full.update(desired, families)
        got = targeted.update(desired, families, changed=changed | extra, since=previous)
        assert targeted.sent == full.sent
        assert targeted.unroutable == full.unroutable
        assert targeted.last_delta == full.last_delta
        assert effect(got) == effect(want)  # the same routes (order inside a message may differ)
        previous = desired


def test_a_since_that_is_not_what_was_sent_falls_back_to_the_full_diff() -> None:
    rib = AdjRibOut(EXPORT, DEFAULT)
    a = {POOL[0]: ROUTES[0], POOL[1]: ROUTES[0]}
    rib.update(a, (IPV4_UNICAST,))
    b = {POOL[0]: ROUTES[1]}  # POOL[1] withdrawn too, but the promise below names only POOL[0]
    rib.update(b, (IPV4_UNICAST,), changed={POOL[0]}, since=dict(a))  # an equal copy is not ``base``
    assert set(rib.sent) == {POOL[0]}
    # With the right ``since`` the promise is trusted: only POOL[0] is compared.
    c = {POOL[0]: ROUTES[2], POOL[2]: ROUTES[0]}
    rib.update(c, (IPV4_UNICAST,), changed={POOL[0]}, since=b)
    assert set(rib.sent) == {POOL[0]} and rib.last_delta == 1
    # Streaming or anything else that commits outside ``update`` forgets the base.
    rib.commit(rib.announce_delta({POOL[3]: ROUTES[0]}))
    rib.update(c, (IPV4_UNICAST,), changed=set(), since=c)
    assert set(rib.sent) == {POOL[0], POOL[2]}
