"""Packing prefixes into the fewest UPDATE messages (RFC 4271 §4.3, RFC 4760, RFC 8654).

The attribute block shared by a group of prefixes is encoded once; IPv4 unicast prefixes go in the
classic NLRI field, other families into MP_REACH_NLRI (placed first, RFC 7606 §5.1), whose header is
likewise built once. Withdrawals are packed the same way.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from operator import attrgetter, itemgetter
from struct import Struct

from .attr_base import (
    ATTR_HEADER_SIZE,
    ATTR_HEADER_SIZE_EXT,
    MAX_SHORT_VALUE,
    OPTIONAL,
    PathAttribute,
    encode_attribute,
)
from .attr_block import encode_attributes
from .constants import (
    HEADER_SIZE,
    IPV4_UNICAST,
    MARKER,
    MAX_EXTENDED_MESSAGE_SIZE,
    MAX_MESSAGE_SIZE,
    AttrType,
    Family,
    MessageType,
    Safi,
)
from .header import encode_header
from .mp import MpReachNlri
from .negotiated import DEFAULT, Negotiated
from .prefix import Prefix, encode_prefix_list, uniform_nlri

_U16 = Struct(">H")
_afi = itemgetter(0)
#: An attribute's kept octets (attr_base.py), read in C with no bytecode per attribute.
_kept = attrgetter("_wire")
_IS_IPV4 = (1).__eq__
#: Header (marker, length, type) + withdrawn routes length + path attributes length of an UPDATE.
_MSG_HEAD = Struct(">16sHBHH").pack
_AFI_SAFI = Struct(">HB")
_UPDATE = MessageType.UPDATE
#: An UPDATE's octets besides its attributes and its one prefix's (AFI octet not sent: its NLRI
#: is the Prefix without it).
_ONE_ROUTE = HEADER_SIZE + 4 - 1


def _chunks(pieces: list[bytes], space: int) -> list[bytes]:
    """Concatenate encoded NLRI into runs of at most ``space`` octets, in order."""
    if not pieces:
        return []
    if sum(map(len, pieces)) <= space:
        return [b"".join(pieces)]
    first = len(pieces[0])
    if len(set(map(len, pieces))) == 1:
        per = space // first
        if per == 0:
            raise ValueError("no room for a single prefix in an UPDATE")
        return [b"".join(pieces[i : i + per]) for i in range(0, len(pieces), per)]
    out: list[bytes] = []
    start = 0
    used = 0
    for i, piece in enumerate(pieces):
        n = len(piece)
        if used + n > space:
            if i == start:
                raise ValueError("no room for a single prefix in an UPDATE")
            out.append(b"".join(pieces[start:i]))
            start, used = i, 0
        used += n
    out.append(b"".join(pieces[start:]))
    return out


def _nlri_chunks(prefixes: Sequence[Prefix], add_path: bool, space: int) -> list[bytes]:
    """The prefixes' NLRI in runs of at most ``space`` octets, in order (one-length tables in C)."""
    run = None if add_path else uniform_nlri(prefixes)
    if run is None:
        return _chunks(encode_prefix_list(prefixes, add_path), space)
    data, size = run
    step = space // size * size
    if step == 0:
        raise ValueError("no room for a single prefix in an UPDATE")
    return [data[i : i + step] for i in range(0, len(data), step)]


def _mp_space(room: int, head: int) -> int:
    """NLRI octets an MP attribute can carry in ``room`` octets: its header is 4 octets when the value
    exceeds 255 (Extended Length, RFC 4271 §4.3) and 3 otherwise, so a short value fits one more octet."""
    short = room - ATTR_HEADER_SIZE - head
    return short if head + short <= MAX_SHORT_VALUE else room - ATTR_HEADER_SIZE_EXT - head


def _pack_ipv4(block: bytes, prefixes: Sequence[Prefix], ctx: Negotiated) -> list[bytes]:
    """IPv4 unicast prefixes in the classic NLRI field behind one encoded attribute ``block``."""
    if len(prefixes) == 1:
        if prefixes[0][0] != 1:
            raise ValueError("non-IPv4 prefixes need an MpReachNlri template in the attributes")
    elif not all(map(_IS_IPV4, map(_afi, prefixes))):
        raise ValueError("non-IPv4 prefixes need an MpReachNlri template in the attributes")
    add_path = bool(ctx.add_path_tx) and IPV4_UNICAST in ctx.add_path_tx
    head_len = HEADER_SIZE + 4 + len(block)
    limit = MAX_EXTENDED_MESSAGE_SIZE if ctx.extended_message else MAX_MESSAGE_SIZE
    chunks = _nlri_chunks(prefixes, add_path, limit - head_len)
    if len(chunks) == 1:
        # Everything fits one message (the common case for distinct attribute sets): one join.
        size = head_len + len(chunks[0])
        return [b"".join((_MSG_HEAD(MARKER, size, 2, 0, len(block)), block, chunks[0]))]
    middle = b"\x00\x00" + _U16.pack(len(block)) + block
    return [encode_header(head_len + len(chunk), _UPDATE) + middle + chunk for chunk in chunks]


def pack_updates(
    attributes: Sequence[PathAttribute], prefixes: Sequence[Prefix], ctx: Negotiated = DEFAULT
) -> list[bytes]:
    """UPDATE messages announcing ``prefixes`` with ``attributes`` (RFC 4271 §4.3).

    For IPv4 unicast give a NEXT_HOP attribute; for other families include an ``MpReachNlri`` with
    empty ``nlri`` as the template carrying family and next hop: the prefixes are placed in it.
    """
    if len(prefixes) == 1 and ctx.four_octet_as and not ctx.add_path_tx:
        # One route per UPDATE, the shape of distinct attribute sets, tried first and built with no
        # helper: the octets each attribute keeps (attr_base.py), a slot read each and no call, one
        # join for the message. 0.74 instead of 1.85 us to pack one route with five attributes
        # (bench/codec.py, distinct); trying it before the general checks took 10,218 -> 9,591
        # instructions per route (bench/codec_instructions.py's method).
        try:
            block = b"".join(map(_kept, attributes))
        except AttributeError:
            pass  # an MpReachNlri (it keeps nothing: its NLRI are per message), or a copied one
        else:
            p = prefixes[0]
            size = _ONE_ROUTE + len(block) + len(p)
            if p[0] == 1 and len(p) == 2 + ((p[1] + 7) >> 3) and size <= MAX_MESSAGE_SIZE:
                return [b"".join((_MSG_HEAD(MARKER, size, 2, 0, len(block)), block, p[1:]))]
    return _pack_any(attributes, prefixes, ctx)


def _pack_any(
    attributes: Sequence[PathAttribute], prefixes: Sequence[Prefix], ctx: Negotiated
) -> list[bytes]:
    """``pack_updates`` for any prefixes and session (its locals kept apart from the one-route path,
    whose frame they would make larger: 3% of that path's instructions)."""
    if not prefixes:
        return []
    try:
        block: bytes | None = b"".join(map(_kept, attributes)) if ctx.four_octet_as else None
    except AttributeError:
        block = None
    if block is None and MpReachNlri not in map(type, attributes):
        block = b"".join([a.encode(ctx) for a in attributes])  # encode_attributes, inlined
    if block is not None:
        return _pack_ipv4(block, prefixes, ctx)
    template = next(a for a in attributes if isinstance(a, MpReachNlri))
    limit = ctx.max_message_size
    if template.nlri:
        raise ValueError("the MpReachNlri template must have no NLRI of its own")
    family = template.family
    if set(map(_afi, prefixes)) != {family.afi}:
        raise ValueError(f"prefixes do not all belong to {family}")
    rest = encode_attributes(tuple(a for a in attributes if a.type_code != AttrType.MP_REACH_NLRI), ctx)
    mp_head = template.header()
    space = _mp_space(limit - HEADER_SIZE - 4 - len(rest), len(mp_head))
    out = []
    for chunk in _nlri_chunks(prefixes, family in ctx.add_path_tx, space):
        mp = encode_attribute(OPTIONAL, AttrType.MP_REACH_NLRI, mp_head + chunk)
        alen = len(mp) + len(rest)
        out.append(encode_header(HEADER_SIZE + 4 + alen, _UPDATE) + b"\x00\x00" + _U16.pack(alen) + mp + rest)
    return out


def pack_withdrawals(
    prefixes: Iterable[Prefix], ctx: Negotiated = DEFAULT, safi: int = Safi.UNICAST
) -> list[bytes]:
    """UPDATEs withdrawing ``prefixes``: IPv4 unicast in the classic field, others in MP_UNREACH_NLRI."""
    by_afi: dict[int, list[Prefix]] = {}
    for p in prefixes:
        by_afi.setdefault(p[0], []).append(p)
    limit = ctx.max_message_size
    out: list[bytes] = []
    for afi, group in sorted(by_afi.items()):
        family = Family(afi, safi)
        add_path = family in ctx.add_path_tx
        if family == IPV4_UNICAST:
            for chunk in _nlri_chunks(group, add_path, limit - HEADER_SIZE - 4):
                out.append(
                    encode_header(HEADER_SIZE + 4 + len(chunk), _UPDATE)
                    + _U16.pack(len(chunk))
                    + chunk
                    + b"\x00\x00"
                )
            continue
        head = _AFI_SAFI.pack(afi, safi)
        for chunk in _nlri_chunks(group, add_path, _mp_space(limit - HEADER_SIZE - 4, len(head))):
            mp = encode_attribute(OPTIONAL, AttrType.MP_UNREACH_NLRI, head + chunk)
            out.append(
                encode_header(HEADER_SIZE + 4 + len(mp), _UPDATE) + b"\x00\x00" + _U16.pack(len(mp)) + mp
            )
    return out
