"""Attributes keep their octets from construction (attr_base.py); what they keep is what they encode.

The kept octets are a cache with no say in the value: equality and hashing ignore them, a copy made
around ``__init__`` (pickle) computes them again, ``dataclasses.replace`` computes new ones, a 2-octet
AS session never sees the 4-octet ones, and an attribute the decoder built gives back the octets it
was read from.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import pickle

from hypothesis import given, settings
from hypothesis import strategies as st

from bgpsvc.wire import (
    AsPath,
    MpReachNlri,
    MultiExitDisc,
    NextHop,
    Origin,
    Prefix,
    Update,
    decode_attributes,
    decode_update,
    encode_update,
    pack_updates,
    update,
)
from bgpsvc.wire.attr_base import PathAttribute, encode_attribute
from bgpsvc.wire.errors import NotificationError
from bgpsvc.wire.negotiated import DEFAULT, TWO_OCTET, Negotiated

from . import strategies as ws


def _general(attr: PathAttribute, ctx: Negotiated) -> bytes:
    return encode_attribute(attr.FLAGS, attr.TYPE, attr.encode_value(ctx))


@settings(max_examples=60, deadline=None)
@given(data=st.data(), ctx=st.sampled_from((DEFAULT, TWO_OCTET)))
def test_kept_octets_are_the_encoding_for_every_session(data: st.DataObject, ctx: Negotiated) -> None:
    for code, strategy in ws.attribute_strategies(DEFAULT).items():
        attr = data.draw(strategy)
        if code in (14, 15):
            assert not attr.KEEPS_WIRE  # MP attributes carry per-message NLRI
            continue
        assert attr._wire == _general(attr, DEFAULT)
        if ctx is TWO_OCTET and code in (2, 7):
            # AS_PATH and AGGREGATOR with AS numbers above 65535 change on a 2-octet session.
            assert attr.AS_WIDTH_DEPENDENT
        assert attr.encode(ctx) == _general(attr, ctx)


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_copies_without_kept_octets_encode_the_same_and_compare_equal(data: st.DataObject) -> None:
    for code, strategy in ws.attribute_strategies(DEFAULT).items():
        attr = data.draw(strategy)
        copy = pickle.loads(pickle.dumps(attr))
        assert copy == attr
        assert hash(copy) == hash(attr)
        if code in (14, 15):
            continue
        assert not hasattr(copy, "_wire")  # pickling goes around __init__: nothing kept yet
        assert copy.encode(TWO_OCTET) == attr.encode(TWO_OCTET)
        assert copy.encode(DEFAULT) == attr.encode(DEFAULT)
        assert copy._wire == attr._wire  # kept on first use


def test_replace_computes_new_octets() -> None:
    med = MultiExitDisc(1)
    other = dataclasses.replace(med, value=2)
    assert other.encode() == b"\x80\x04\x04\x00\x00\x00\x02"
    assert med.encode() == b"\x80\x04\x04\x00\x00\x00\x01"


def test_two_octet_session_never_gets_the_four_octet_path() -> None:
    path = AsPath.sequence(65001, 400000)
    assert path.encode() == bytes.fromhex("40020a02020000fde900061a80")
    assert path.encode(TWO_OCTET) == bytes.fromhex("4002060202fde95ba0")  # AS_TRANS for 400000


@settings(max_examples=100, deadline=None)
@given(ws.negotiated(), st.data())
def test_decoded_attributes_encode_as_they_were_read(ctx: Negotiated, data: st.DataObject) -> None:
    """A clean UPDATE decoded and encoded again gives its own octets, cold and from the caches."""
    strategies = ws.attribute_strategies(ctx)
    codes = [1, 2, 3, *data.draw(st.sets(st.sampled_from((4, 5, 6, 7, 8, 16, 32, 35))))]
    attrs = tuple(data.draw(strategies[t]) for t in codes)
    prefixes = data.draw(st.lists(ws.prefixes(1, bool(ctx.add_path_tx)), min_size=1, max_size=3))
    wire = encode_update(Update(attributes=attrs, nlri=tuple(prefixes)), ctx)
    update.clear_cache()
    for _ in range(2):  # cold, then warm
        decoded = decode_update(wire[19:], ctx)
        assert not decoded.errors
        assert encode_update(decoded, ctx) == wire
        assert [a.encode(ctx) for a in decoded.attributes] == [a.encode(ctx) for a in attrs]


def test_pack_updates_falls_back_for_attributes_without_kept_octets() -> None:
    attrs = (Origin(0), AsPath.sequence(65001), NextHop("192.0.2.1"))
    copies = tuple(pickle.loads(pickle.dumps(a)) for a in attrs)
    prefix = Prefix.from_network("198.51.100.0/24")
    assert pack_updates(copies, [prefix]) == pack_updates(attrs, [prefix])
    assert pack_updates(attrs, [prefix], TWO_OCTET) == pack_updates(copies, [prefix], TWO_OCTET)


def test_pack_updates_with_an_mp_template_still_works() -> None:
    template = MpReachNlri(2, 1, (ipaddress.IPv6Address("2001:db8::1"),))
    attrs = (Origin(0), AsPath.sequence(65001), template)
    (msg,) = pack_updates(attrs, [Prefix.from_network("2001:db8:1::/48")])
    decoded = decode_update(msg[19:], DEFAULT)
    assert [str(p) for _, p in decoded.announced()] == ["2001:db8:1::/48"]


def _assert_kept_octets_are_the_encoding(attrs: tuple[PathAttribute, ...]) -> None:
    for a in attrs:
        if hasattr(a, "_wire"):
            assert a._wire == a.encode_uncached(DEFAULT), a


@settings(max_examples=200, deadline=None)
@given(ws.negotiated(), st.data())
def test_decoder_keeps_only_octets_that_are_the_encoding(ctx: Negotiated, data: st.DataObject) -> None:
    """Whatever the flags (low bits set, Extended Length on a short value) and the session's AS width,
    an attribute the decoder built keeps octets only if they equal what encoding it would give."""
    strategies = ws.attribute_strategies(ctx)
    codes = data.draw(st.lists(st.sampled_from((1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 16, 32, 35)), unique=True))
    block = b""
    for code in codes:
        attr = data.draw(strategies[code])
        value = attr.encode_value(ctx)
        flags = attr.FLAGS | data.draw(st.sampled_from((0, 0, 0x01, 0x0F)))
        if data.draw(st.booleans()) or len(value) > 255:
            block += encode_attribute(flags | 0x10, attr.TYPE, value)[:2] + len(value).to_bytes(2) + value
        else:
            block += bytes((flags, attr.TYPE, len(value))) + value
    update.clear_cache()
    for _ in range(2):  # cold, then from the intern table
        try:
            attrs, _errors = decode_attributes(block, ctx)
        except NotificationError:
            return  # e.g. a next hop this session refuses: nothing decoded to check
        _assert_kept_octets_are_the_encoding(attrs)


@settings(max_examples=300, deadline=None)
@given(ws.negotiated(), st.binary(max_size=80))
def test_decoder_keeps_only_encodings_on_random_blocks(ctx: Negotiated, block: bytes) -> None:
    update.clear_cache()
    try:
        attrs, _errors = decode_attributes(block, ctx)
    except NotificationError:
        return
    _assert_kept_octets_are_the_encoding(attrs)


def test_attributes_decoded_past_the_intern_bound_keep_nothing_and_encode_right() -> None:
    attrs = (Origin(2), AsPath.sequence(65001, 400000), NextHop("192.0.2.9"), MultiExitDisc(7))
    block = b"".join(a.encode() for a in attrs)
    try:
        update.clear_cache()
        decoded, errors = decode_attributes(block, Negotiated(intern_max=0))
        assert not errors and decoded == attrs
        # AS_PATH and MED are built around __init__ (trusted construction): nothing kept past the bound.
        assert not hasattr(decoded[1], "_wire") and not hasattr(decoded[3], "_wire")
        assert [a.encode(TWO_OCTET) for a in decoded] == [a.encode(TWO_OCTET) for a in attrs]
        assert b"".join(a.encode() for a in decoded) == block
        assert decoded[1]._wire == attrs[1]._wire  # kept on first use
    finally:
        update.clear_cache()
