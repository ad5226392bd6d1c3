"""``Prefix`` as one flat bytes value (AFI, length, address octets, path id when not zero): its named
parts, order, pickling and NLRI encoding agree with the four fields it stands for (RFC 4271 §4.3,
RFC 7911 §3), including the C-level fast paths of the encoder and decoder."""

from __future__ import annotations

import copy
import pickle

from hypothesis import given
from hypothesis import strategies as st

from bgpsvc.wire.prefix import Prefix, decode_prefixes, encode_prefix_list, encode_prefixes, uniform_nlri
from tests.wire.strategies import prefixes

ANY = st.one_of(prefixes(1), prefixes(2), prefixes(1, path_id=True), prefixes(2, path_id=True))


def fields(p: Prefix) -> tuple[int, int, bytes, int]:
    return (p.afi, p.length, p.packed, p.path_id)


@given(ANY)
def test_the_named_parts_rebuild_the_same_prefix(p: Prefix) -> None:
    assert Prefix(*fields(p)) == p and hash(Prefix(*fields(p))) == hash(p)
    assert (p[0], p[1]) == (p.afi, p.length)
    assert len(p.packed) == (p.length + 7) // 8
    assert Prefix.from_network(p.network, p.path_id) == p
    assert pickle.loads(pickle.dumps(p)) == p and type(copy.deepcopy(p)) is Prefix


@given(ANY, ANY)
def test_order_and_equality_are_those_of_the_four_fields(a: Prefix, b: Prefix) -> None:
    assert (a < b) == (fields(a) < fields(b))
    assert (a == b) == (fields(a) == fields(b))


@given(st.lists(ANY, max_size=20), st.booleans())
def test_nlri_encoding_is_the_length_octet_address_and_path_id(ps: list[Prefix], add_path: bool) -> None:
    pid = [p.path_id.to_bytes(4, "big") if add_path else b"" for p in ps]
    expected = [i + bytes([p.length]) + p.packed for i, p in zip(pid, ps, strict=True)]
    assert encode_prefix_list(ps, add_path) == expected


@given(st.sampled_from([(1, 32), (1, 24), (2, 128), (2, 64), (1, 0), (2, 7)]), st.data())
def test_uniform_tables_round_trip(shape: tuple[int, int], data: st.DataObject) -> None:
    afi, length = shape
    ps = data.draw(st.lists(prefixes(afi, length=st.just(length)), min_size=1, max_size=50))
    wire = encode_prefixes(ps)
    assert wire == b"".join(bytes([p.length]) + p.packed for p in ps)
    back = decode_prefixes(wire, afi)
    assert back == ps and all(type(p) is Prefix for p in back)


@given(st.lists(prefixes(1, path_id=True), min_size=1, max_size=20))
def test_add_path_round_trips_and_path_id_zero_is_no_path_id(ps: list[Prefix]) -> None:
    back = decode_prefixes(encode_prefixes(ps, add_path=True), 1, add_path=True)
    assert back == ps
    zero = Prefix(1, 24, b"\xc0\x00\x02", 0)
    assert decode_prefixes(b"\x00\x00\x00\x00" + zero.nlri, 1, add_path=True) == [zero] and len(zero) == 5


def test_a_mixed_table_never_takes_the_uniform_encoder_with_a_path_id() -> None:
    plain = Prefix.from_network("192.0.2.0/24")
    with_id = Prefix.from_network("198.51.100.0/24", path_id=7)
    assert encode_prefix_list([plain, with_id]) == [b"\x18\xc0\x00\x02", b"\x18\xc6\x33\x64"]
    assert encode_prefix_list([with_id, with_id]) == [b"\x18\xc6\x33\x64"] * 2
    assert str(with_id) == "198.51.100.0/24#7" and repr(plain) == "Prefix('192.0.2.0/24')"


@given(st.sampled_from([1, 2]), st.data())
def test_a_uniform_run_is_the_joined_nlri_or_none_with_a_path_id(afi: int, data: st.DataObject) -> None:
    length = data.draw(st.integers(0, 32 if afi == 1 else 128))
    with_ids = data.draw(st.booleans())
    ps = data.draw(st.lists(prefixes(afi, path_id=with_ids, length=st.just(length)), max_size=30))
    run = uniform_nlri(ps)
    if not ps or any(p.path_id for p in ps):
        assert run is None
    else:
        assert run == (b"".join(encode_prefix_list(ps)), 1 + (length + 7) // 8)
