"""The codec's fast paths give exactly what its general paths give (issue 14).

Decoding has three shortcuts: whole attribute blocks cached per session, single attributes interned by
their octets per session, and the "plain" route that skips the flag and peer checks for an attribute
whose flags are exactly its type's. The reference below turns all three off (empty caches, no plain
route), so every attribute goes through the full RFC 7606 checks; the fast decoder must agree with it
cold, warm, and with only the attributes interned, on valid and on damaged messages. Encoding has
one-pack encoders per attribute class and a one-route UPDATE builder; they must give the octets of
the general TLV writer and of ``encode_update``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from contextlib import contextmanager

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from bgpsvc.wire import (
    AsPath,
    NextHop,
    Origin,
    Prefix,
    UnknownAttribute,
    Update,
    aspath,
    attr_block,
    decode_prefixes,
    decode_update,
    encode,
    encode_update,
    pack_updates,
    update,
)
from bgpsvc.wire.attr_base import Malformed, PathAttribute, encode_attribute
from bgpsvc.wire.errors import Handling, NotificationError, UpdateMessageError, UpdateSubcode
from bgpsvc.wire.framing import decode
from bgpsvc.wire.messages import decode_message
from bgpsvc.wire.negotiated import Negotiated
from bgpsvc.wire.prefix import _UNIFORM_MIN, decode_prefix_tuple

from . import strategies as ws

HEADER = 19
SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@contextmanager
def _general_path_only() -> Iterator[None]:
    """No caches and no plain route: every attribute through ``_decode_one``'s full checks."""
    saved = dict(attr_block._PLAIN)
    attr_block._PLAIN.clear()
    update.clear_cache()
    try:
        yield
    finally:
        attr_block._PLAIN.update(saved)
        update.clear_cache()


Outcome = tuple[str, object]


def _outcome(body: bytes, ctx: Negotiated) -> Outcome:
    """What decoding ``body`` gives: the Update and its errors in detail, or the NOTIFICATION raised."""
    try:
        u = decode_update(body, ctx)
    except NotificationError as exc:
        return ("raised", (type(exc), exc.code, exc.subcode, exc.data, getattr(exc, "handling", None)))
    errors = [(e.subcode, e.handling, e.attr_type, e.data, e.rfc) for e in u.errors]
    # repr and hash as well as ==: a value built without __post_init__ must be the same value, field
    # types included (a list where a tuple belongs would compare unequal only sometimes).
    return ("decoded", (u, repr(u), [hash(a) for a in u.attributes], errors))


def _reference(body: bytes, ctx: Negotiated) -> Outcome:
    with _general_path_only():
        return _outcome(body, ctx)


def _check_all_paths(body: bytes, ctx: Negotiated) -> None:
    expected = _reference(body, ctx)
    update.clear_cache()
    assert _outcome(body, ctx) == expected  # cold: parsed and interned
    assert _outcome(body, ctx) == expected  # again right after itself: admitted to the block cache
    assert _outcome(body, ctx) == expected  # warm: the whole block from the cache
    for caches in update._CACHE.values():
        caches[1].clear()  # blocks with NLRI
        caches[2].clear()  # and without
    assert _outcome(body, ctx) == expected  # block parsed again from interned attributes


@st.composite
def contexts(draw: st.DrawFn) -> Negotiated:
    """Any session context, external or internal (external peers change what is discarded)."""
    return dataclasses.replace(draw(ws.negotiated()), ebgp=draw(st.booleans()))


@st.composite
def update_bodies(draw: st.DrawFn) -> tuple[Negotiated, bytes]:
    """A valid UPDATE body, or one with a few octets overwritten past the length fields."""
    ctx = draw(contexts())
    body = bytearray(encode(draw(ws.updates(ctx)), ctx)[HEADER:])
    for _ in range(draw(st.integers(0, 3))):
        if len(body) > 4:
            body[draw(st.integers(4, len(body) - 1))] = draw(st.integers(0, 255))
    return ctx, bytes(body)


@SETTINGS
@given(update_bodies())
def test_fast_decode_equals_general_path(case: tuple[Negotiated, bytes]) -> None:
    ctx, body = case
    _check_all_paths(body, ctx)


@SETTINGS
@given(contexts(), st.binary(max_size=80))
def test_fast_decode_equals_general_path_on_random_blocks(ctx: Negotiated, block: bytes) -> None:
    body = b"\x00\x00" + len(block).to_bytes(2, "big") + block + b"\x18\xc6\x33\x64"  # NLRI 198.51.100/24
    _check_all_paths(body, ctx)


@st.composite
def block_runs(draw: st.DrawFn) -> tuple[Negotiated, list[bytes]]:
    """UPDATE bodies one session receives in a row, their attribute blocks made of pieces from one
    small pool (valid attributes of the session, and random octets), so that successive blocks share
    their leading attributes, differ after them, repeat types and break off mid-attribute."""
    ctx = draw(contexts())
    pool = [a.encode(ctx) for a in draw(st.lists(ws.attributes(ctx), min_size=1, max_size=6))]
    pool += draw(st.lists(st.binary(min_size=1, max_size=12), max_size=2))
    # Near twins: the same attribute with its last octet changed (two MEDs, two community sets).
    pool += [p[:-1] + bytes((p[-1] ^ 1,)) for p in pool if draw(st.booleans())]
    bodies = []
    for _ in range(draw(st.integers(2, 6))):
        block = b"".join(draw(st.lists(st.sampled_from(pool), max_size=6)))
        nlri = draw(st.sampled_from((b"", b"\x18\xc6\x33\x64")))  # none, or 198.51.100/24
        bodies.append(b"\x00\x00" + len(block).to_bytes(2, "big") + block + nlri)
    return ctx, bodies


@SETTINGS
@given(block_runs())
def test_blocks_sharing_their_lead_decode_as_each_alone(case: tuple[Negotiated, list[bytes]]) -> None:
    """The session's last leading attributes are reused when the next block starts with the same
    octets (``attr_block.Lead``): each block of a run decodes as its reference says."""
    ctx, bodies = case
    expected = [_reference(body, ctx) for body in bodies]
    update.clear_cache()
    assert [_outcome(body, ctx) for body in bodies] == expected
    assert [_outcome(body, ctx) for body in reversed(bodies)] == expected[::-1]


@SETTINGS
@given(update_bodies(), st.integers(1, 24))
def test_interned_attribute_cut_short_by_the_field_is_not_a_hit(
    case: tuple[Negotiated, bytes], cut: int
) -> None:
    """The fast loop checks overruns only on intern misses: an interned attribute whose octets are
    cut short by the end of the field must still decode as the reference says."""
    ctx, body = case
    wlen = int.from_bytes(body[:2], "big")
    alen = int.from_bytes(body[2 + wlen : 4 + wlen], "big")
    assume(alen > cut)
    block = body[4 + wlen : 4 + wlen + alen]
    short = body[: 2 + wlen] + (alen - cut).to_bytes(2, "big") + block[:-cut] + body[4 + wlen + alen :]
    expected = _reference(short, ctx)
    update.clear_cache()
    _outcome(body, ctx)  # interns the whole attributes
    assert _outcome(short, ctx) == expected


@SETTINGS
@given(update_bodies())
def test_interned_attributes_do_not_cross_sessions(case: tuple[Negotiated, bytes]) -> None:
    """The same octets from another session decode as that session's reference says."""
    ctx, body = case
    other = dataclasses.replace(ctx, four_octet_as=not ctx.four_octet_as, ebgp=not ctx.ebgp)
    expected = _reference(body, other)
    update.clear_cache()
    _outcome(body, ctx)
    assert _outcome(body, other) == expected


@SETTINGS
@given(ws.ctx_and(ws.updates))
def test_framing_fast_path_equals_decode_message(case: tuple[Negotiated, Update]) -> None:
    ctx, u = case
    data = encode(u, ctx)
    assert decode(data, ctx) == decode_message(2, data[HEADER:], ctx) == u


def test_intern_table_is_bounded() -> None:
    ctx = Negotiated(intern_max=8)
    try:
        update.clear_cache()
        for med in range(50):
            block = b"\x40\x01\x01\x00" + b"\x40\x02\x00" + b"\x80\x04\x04" + med.to_bytes(4, "big")
            attrs, errors = attr_block.decode_attributes(block, ctx)
            assert [a.value for a in attrs if hasattr(a, "value")][-1] == med and not errors
            assert len(attr_block.interned_for(ctx)) <= 8
        # Full, it takes nothing new and keeps what came first: the ORIGIN and AS_PATH every block shares.
        table = attr_block.interned_for(ctx)
        assert len(table) == 8
        assert b"\x40\x01\x01\x00" in table and b"\x40\x02\x00" in table
        assert b"\x80\x04\x04" + (49).to_bytes(4, "big") not in table
    finally:
        update.clear_cache()


# -- Encoding ------------------------------------------------------------------------------------


@settings(max_examples=50, deadline=None)
@given(data=st.data())
def test_attribute_encoders_equal_general_tlv(data: st.DataObject) -> None:
    ctx = data.draw(ws.negotiated())
    for strategy in ws.attribute_strategies(ctx).values():
        attr = data.draw(strategy)
        assert not isinstance(attr, UnknownAttribute)
        general = encode_attribute(attr.FLAGS, attr.TYPE, attr.encode_value(ctx))
        assert attr.encode(ctx) == general
        assert PathAttribute.encode(attr, ctx) == general


@st.composite
def ipv4_routes(draw: st.DrawFn) -> tuple[Negotiated, tuple[PathAttribute, ...], list[Prefix]]:
    ctx = draw(ws.negotiated())
    strategies = ws.attribute_strategies(ctx)
    codes = [1, 2, 3, *draw(st.sets(st.sampled_from((4, 5, 6, 7, 8, 16, 32, 35))))]
    attrs = tuple(draw(strategies[t]) for t in draw(st.permutations(codes)))
    prefixes = draw(st.lists(ws.prefixes(1, bool(ctx.add_path_tx)), min_size=1, max_size=3))
    return ctx, attrs, prefixes


@SETTINGS
@given(ipv4_routes())
def test_pack_updates_fast_path_equals_encode_update(
    case: tuple[Negotiated, tuple[PathAttribute, ...], list[Prefix]],
) -> None:
    ctx, attrs, prefixes = case
    expected = encode_update(Update(attributes=attrs, nlri=tuple(prefixes)), ctx)
    assert pack_updates(attrs, prefixes, ctx) == [expected]
    assert pack_updates(list(attrs), prefixes, ctx) == [expected]


@SETTINGS
@given(
    st.integers(0, 32),
    st.binary(min_size=4, max_size=4),
    st.integers(0, 32),
    st.binary(min_size=4, max_size=4),
)
def test_single_prefix_path_equals_general_loop(n: int, raw: bytes, m: int, other: bytes) -> None:
    """One prefix alone (fast path) decodes as it does followed by another (general loop)."""
    assume(m != n)
    one = bytes((n,)) + raw[: (n + 7) >> 3]
    two = one + bytes((m,)) + other[: (m + 7) >> 3]
    assert decode_prefixes(one, 1) == decode_prefixes(two, 1)[:1]
    assert repr(decode_prefixes(one, 1)) == repr(decode_prefixes(two, 1)[:1])


# -- Decoding fast paths of single attributes and NLRI runs ---------------------------------------


def _as_path_reference(value: bytes, ctx: Negotiated) -> object:
    """AS_PATH through the general segment walk and confederation check, as an outcome."""
    try:
        segments = aspath._decode_segments(
            value, ctx.four_octet_as, UpdateSubcode.MALFORMED_AS_PATH, "AS_PATH"
        )
    except Malformed as exc:
        return ("malformed", exc.subcode, exc.reason, exc.handling, exc.rfc)
    if ctx.ebgp and any(seg.type in (3, 4) for seg in segments):
        return ("malformed", UpdateSubcode.MALFORMED_AS_PATH, "confederation", None, "RFC 5065 §5")
    path = AsPath(segments)
    return (path, repr(path), hash(path))


def _as_path_outcome(value: bytes, ctx: Negotiated) -> object:
    try:
        path = AsPath.decode_value(value, ctx)
    except Malformed as exc:
        reason = "confederation" if "confederation" in exc.reason else exc.reason
        return ("malformed", exc.subcode, reason, exc.handling, exc.rfc)
    return (path, repr(path), hash(path))


@st.composite
def as_path_values(draw: st.DrawFn, four: bool) -> bytes:
    """Mostly one segment (an AS_SEQUENCE most often), its count and length sometimes wrong and its
    AS numbers sometimes 0; sometimes several segments or random octets."""
    width = 4 if four else 2
    segments = []
    for _ in range(draw(st.integers(1, 3))):
        seg_type = draw(st.sampled_from((2, 2, 2, 1, 3, 4, 0, 5)))
        asns = draw(st.lists(st.sampled_from((0, 1, 65535, 0xFFFFFFFF >> (32 - 8 * width))), max_size=6))
        count = draw(st.sampled_from((len(asns), len(asns), len(asns) + 1, max(0, len(asns) - 1))))
        segments.append(bytes((seg_type, count)) + b"".join(a.to_bytes(width, "big") for a in asns))
    value = b"".join(segments)
    cut = draw(st.integers(-2, 2))
    value = value[:cut] if cut < 0 else value + bytes(cut)
    return draw(st.one_of(st.just(value), st.binary(max_size=20)))


@SETTINGS
@given(contexts(), st.data())
def test_as_path_fast_path_equals_segment_walk(ctx: Negotiated, data: st.DataObject) -> None:
    value = data.draw(as_path_values(ctx.four_octet_as))
    assert _as_path_outcome(value, ctx) == _as_path_reference(value, ctx)


def _prefixes_outcome(data: bytes, add_path: bool, classic: bool = False) -> object:
    try:
        if classic:
            prefixes = list(decode_prefix_tuple(data, 1, add_path))
        else:
            prefixes = decode_prefixes(data, 1, add_path, Handling.SESSION_RESET)
    except UpdateMessageError as exc:
        return ("raised", exc.subcode, exc.data, exc.reason, exc.handling)
    return (prefixes, repr(prefixes))


@SETTINGS
@given(
    st.lists(
        st.tuples(
            st.one_of(st.sampled_from((24, 32)), st.integers(0, 40)), st.binary(min_size=5, max_size=5)
        ),
        min_size=1,
        max_size=6,
    ),
    st.integers(0, 5),
)
def test_nlri_fast_paths_equal_path_id_loop(records: list[tuple[int, bytes]], cut: int) -> None:
    """A run of IPv4 NLRI (any lengths, host bits set or not, the last record maybe cut short)
    decodes as it does with a zero path identifier before each record (the general ADD-PATH loop)."""
    whole = [bytes((n,)) + raw[: (n + 7) >> 3] for n, raw in records]
    runs = [*whole[:-1], whole[-1][: max(1, len(whole[-1]) - cut)]]
    plain = b"".join(runs)
    with_ids = b"".join(b"\0\0\0\0" + r for r in runs)
    expected = _prefixes_outcome(with_ids, True)
    assert _prefixes_outcome(plain, False) == expected
    if all(len(r) == 1 + ((r[0] + 7) >> 3) and r[0] <= 32 for r in runs):
        # Whole records of valid lengths: each is the prefix of its octets with the host bits cleared,
        # built by the checking constructor (a reference that shares no code with either loop).
        reference = []
        for r in runs:
            n = r[0]
            address = int.from_bytes(r[1:].ljust(4, b"\0")) & (0xFFFFFFFF << (32 - n)) & 0xFFFFFFFF
            reference.append(Prefix(1, n, address.to_bytes(4)[: (n + 7) >> 3]))
        assert expected == (reference, repr(reference))
    assert _prefixes_outcome(plain, False, classic=True) == expected  # the UPDATE fields' entry point
    assert _prefixes_outcome(with_ids, True, classic=True) == expected
    # Uniform runs, short (the loop) and from _UNIFORM_MIN records on (the C-level split), and single
    # prefixes against the same loop.
    # The first record whole (a cut one repeated would be read out of step by the two loops).
    first = whole[0]
    for count in (len(runs), len(runs) + _UNIFORM_MIN):
        uniform = b"".join([first] * count)
        assert _prefixes_outcome(uniform, False) == _prefixes_outcome(
            b"".join([b"\0\0\0\0" + first] * count), True
        )


def test_block_cache_admits_a_block_that_comes_again_right_after_itself() -> None:
    ctx = Negotiated()
    body = encode(
        Update(
            attributes=(Origin(0), AsPath.sequence(65001), NextHop("192.0.2.1")),
            nlri=(Prefix.from_network("198.51.100.0/24"),),
        ),
        ctx,
    )[HEADER:]
    other = body[:-1] + b"\x65"  # the same block, another NLRI
    update.clear_cache()
    first = decode_update(body, ctx)
    assert not update._CACHE[id(ctx)][1]  # seen once: not stored
    second = decode_update(other, ctx)
    assert list(update._CACHE[id(ctx)][1].values()) == [second.attributes]
    assert decode_update(body, ctx).attributes is second.attributes == first.attributes
    update.clear_cache()
