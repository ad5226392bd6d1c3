"""AS_PATH and AS4_PATH (RFC 4271 §4.3/§5.1.2, RFC 5065 §3, RFC 6793 §4, RFC 7606 §7.2)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from struct import Struct
from typing import Self

from .attr_base import OPTIONAL_TRANSITIVE, WELL_KNOWN, Malformed, PathAttribute, encode_attribute
from .constants import AS_TRANS, AttrType, SegmentType
from .errors import Handling, UpdateSubcode
from .negotiated import Negotiated

_SEG_HDR = Struct(">BB")
_MAX_SEGMENT = 255
_CONFED = (SegmentType.AS_CONFED_SEQUENCE, SegmentType.AS_CONFED_SET)
_AS_SEQUENCE = int(SegmentType.AS_SEQUENCE)


@dataclass(frozen=True, slots=True)
class AsPathSegment:
    """One path segment: a type and 1..255 AS numbers (RFC 4271 §4.3)."""

    type: int
    asns: tuple[int, ...]

    def __post_init__(self) -> None:
        if self.type not in (1, 2, 3, 4):
            raise ValueError(f"unknown AS_PATH segment type {self.type}")
        if not 1 <= len(self.asns) <= _MAX_SEGMENT:
            raise ValueError("an AS_PATH segment holds 1 to 255 AS numbers")
        for asn in self.asns:
            if not 0 <= asn <= 0xFFFFFFFF:
                raise ValueError(f"AS number {asn} out of range")

    def path_length(self) -> int:
        """Contribution to the path length used in route selection (RFC 4271 §9.1.2.2, RFC 5065 §5.3)."""
        if self.type == SegmentType.AS_SEQUENCE:
            return len(self.asns)
        if self.type == SegmentType.AS_SET:
            return 1
        return 0

    def __str__(self) -> str:
        inner = " ".join(map(str, self.asns))
        return {1: f"{{{inner}}}", 2: inner, 3: f"({inner})", 4: f"[{inner}]"}[self.type]


def _sequence_segments(
    asns: Iterable[int], seg_type: int = SegmentType.AS_SEQUENCE
) -> tuple[AsPathSegment, ...]:
    items = tuple(asns)
    return tuple(
        AsPathSegment(seg_type, items[i : i + _MAX_SEGMENT]) for i in range(0, len(items), _MAX_SEGMENT)
    )


# One Struct per segment size (count -> header + AS numbers), built once: making a Struct per segment
# cost more than the rest of encoding or decoding an AS_PATH (3.5 -> 0.9 us per 2-AS path encode).
_SEG4 = [Struct(f">BB{n}I") for n in range(_MAX_SEGMENT + 1)]
_SEG2 = [Struct(f">BB{n}H") for n in range(_MAX_SEGMENT + 1)]
_ASNS4 = [Struct(f">{n}I") for n in range(_MAX_SEGMENT + 1)]
_ASNS2 = [Struct(f">{n}H") for n in range(_MAX_SEGMENT + 1)]
#: A whole AS_PATH attribute holding one segment of n < 64 4-octet AS numbers.
_PATH4 = [Struct(f">BBBBB{n}I") for n in range(64)]
_new = object.__new__


def _encode_segments(segments: tuple[AsPathSegment, ...], four: bool) -> bytes:
    if four:
        if len(segments) == 1:
            seg = segments[0]
            return _SEG4[len(seg.asns)].pack(seg.type, len(seg.asns), *seg.asns)
        return b"".join([_SEG4[len(seg.asns)].pack(seg.type, len(seg.asns), *seg.asns) for seg in segments])
    return b"".join(
        [
            _SEG2[len(seg.asns)].pack(
                seg.type, len(seg.asns), *(a if a <= 0xFFFF else AS_TRANS for a in seg.asns)
            )
            for seg in segments
        ]
    )


def _decode_segments(value: bytes, four: bool, subcode: int, name: str) -> tuple[AsPathSegment, ...]:
    """Parse segments; malformed per RFC 7606 §7.2 (bad type, overrun, underrun, zero-length segment)
    and RFC 7607 §2 (AS 0)."""
    width = 4 if four else 2
    structs = _ASNS4 if four else _ASNS2
    segments = []
    i, n = 0, len(value)
    while i < n:
        if n - i < 2:
            raise Malformed(subcode, f"{name} underrun: one octet left after last segment")
        seg_type, count = value[i], value[i + 1]
        if seg_type not in (1, 2, 3, 4):
            raise Malformed(subcode, f"unknown {name} segment type {seg_type}")
        if count == 0:
            raise Malformed(subcode, f"{name} segment of length zero")
        end = i + 2 + count * width
        if end > n:
            raise Malformed(subcode, f"{name} segment overruns the attribute")
        asns = structs[count].unpack_from(value, i + 2)
        if 0 in asns:
            raise Malformed(subcode, f"AS 0 in {name}", rfc="RFC 7607 §2")
        # Type and count were checked above and unpacked ASNs are in range: skip __post_init__.
        seg = _new(AsPathSegment)
        _SET_SEG_TYPE(seg, seg_type)
        _SET_SEG_ASNS(seg, asns)
        segments.append(seg)
        i = end
    return tuple(segments)


@dataclass(frozen=True, slots=True)
class _Segments(PathAttribute):
    """What AS_PATH and AS4_PATH share: a run of path segments (RFC 4271 §4.3)."""

    segments: tuple[AsPathSegment, ...] = ()

    @property
    def asns(self) -> tuple[int, ...]:
        """Every AS number, in order."""
        return tuple(a for seg in self.segments for a in seg.asns)

    def path_length(self) -> int:
        """Path length for route selection (RFC 4271 §9.1.2.2, RFC 5065 §5.3, RFC 6793 §4.2.3)."""
        return sum(seg.path_length() for seg in self.segments)

    def __str__(self) -> str:
        return " ".join(map(str, self.segments))


@dataclass(frozen=True, slots=True)
class AsPath(_Segments):
    """AS_PATH (RFC 4271 §5.1.2); 2- or 4-octet AS numbers per the session (RFC 6793 §4)."""

    TYPE = AttrType.AS_PATH
    FLAGS = WELL_KNOWN
    MALFORMED = Handling.TREAT_AS_WITHDRAW
    MALFORMED_RFC = "RFC 7606 §7.2"
    AS_WIDTH_DEPENDENT = True

    @classmethod
    def sequence(cls, *asns: int) -> Self:
        """An AS_PATH made of one AS_SEQUENCE (split every 255 ASNs)."""
        return cls(_sequence_segments(asns))

    def encode_value(self, ctx: Negotiated) -> bytes:
        return _encode_segments(self.segments, ctx.four_octet_as)

    def encode_uncached(self, ctx: Negotiated) -> bytes:
        segments = self.segments
        if len(segments) == 1 and ctx.four_octet_as:
            # The usual path, one segment of fewer than 64 4-octet AS numbers (short length form):
            # the whole attribute in one pack, about 3x faster than the general route below.
            seg = segments[0]
            n = len(seg.asns)
            if n < len(_PATH4):
                return _PATH4[n].pack(self.FLAGS, self.TYPE, 2 + 4 * n, seg.type, n, *seg.asns)
        return encode_attribute(self.FLAGS, self.TYPE, _encode_segments(segments, ctx.four_octet_as))

    @classmethod
    def decode_value(cls, value: bytes, ctx: Negotiated) -> Self:
        four = ctx.four_octet_as
        n = len(value)
        if n > 2 and value[0] == _AS_SEQUENCE and n == 2 + value[1] * (4 if four else 2):
            # One AS_SEQUENCE filling the value, the usual path: one unpack, no segment walk and no
            # confederation check (a sequence is not a confederation segment): 1.26 -> 0.58 us per
            # bench/codec.py fulltable AS_PATH.
            asns = (_ASNS4 if four else _ASNS2)[value[1]].unpack_from(value, 2)
            if 0 not in asns:
                seg = _new(AsPathSegment)
                _SET_SEG_TYPE(seg, _AS_SEQUENCE)
                _SET_SEG_ASNS(seg, asns)
                path = _new(cls)
                _SET_SEGMENTS(path, (seg,))
                return path
        segments = _decode_segments(value, four, UpdateSubcode.MALFORMED_AS_PATH, "AS_PATH")
        if ctx.ebgp and any(seg.type in _CONFED for seg in segments):
            # We never run confederations, so every external peer is outside ours (RFC 5065 §5).
            raise Malformed(
                UpdateSubcode.MALFORMED_AS_PATH,
                "confederation segment from an external peer",
                rfc="RFC 5065 §5",
            )
        path = _new(cls)
        _SET_SEGMENTS(path, segments)
        return path


@dataclass(frozen=True, slots=True)
class As4Path(_Segments):
    """AS4_PATH, always 4-octet; malformed ones are discarded (RFC 6793 §4.1, §6)."""

    TYPE = AttrType.AS4_PATH
    FLAGS = OPTIONAL_TRANSITIVE
    MALFORMED = Handling.ATTRIBUTE_DISCARD
    MALFORMED_RFC = "RFC 6793 §6"

    def encode_value(self, ctx: Negotiated) -> bytes:
        return _encode_segments(self.segments, True)

    @classmethod
    def decode_value(cls, value: bytes, ctx: Negotiated) -> Self:
        segments = _decode_segments(value, True, UpdateSubcode.OPTIONAL_ATTRIBUTE_ERROR, "AS4_PATH")
        if not segments:
            raise Malformed(UpdateSubcode.OPTIONAL_ATTRIBUTE_ERROR, "empty AS4_PATH")
        return cls(segments)


# Slot setters used by the decoder to build checked values without __init__/__post_init__ (frozen
# dataclasses forbid plain assignment; the slot descriptor is what their __init__ uses underneath).
_SET_SEG_TYPE = AsPathSegment.__dict__["type"].__set__
_SET_SEG_ASNS = AsPathSegment.__dict__["asns"].__set__
_SET_SEGMENTS = _Segments.__dict__["segments"].__set__
