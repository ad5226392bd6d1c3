"""Path attributes of RFC 4271 §5.1, RFC 4456, RFC 6793 and RFC 9234, and the attribute registry.

Each class states its type code, flags and RFC 7606 handling; ``ATTRIBUTES`` maps type codes to
classes. Unknown optional attributes decode to ``UnknownAttribute`` and keep their bytes.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from struct import Struct
from typing import Self

from .aspath import As4Path, AsPath
from .attr_base import (
    OPTIONAL_NON_TRANSITIVE,
    OPTIONAL_TRANSITIVE,
    WELL_KNOWN,
    Malformed,
    PathAttribute,
    check_u32,
    encode_attribute,
    length_error,
)
from .communities import Communities, ExtendedCommunities, LargeCommunities
from .constants import AS_TRANS, AttrType, attr_name
from .errors import Handling, UpdateSubcode
from .mp import MpReachNlri, MpUnreachNlri
from .negotiated import Negotiated

_U32 = Struct(">I")
#: Flags, type, length 4, value: a whole fixed-size 4-octet attribute in one pack.
_U32_TLV = Struct(">BBBI")
_new = object.__new__
_ORIGIN_VALUES = (b"\x00", b"\x01", b"\x02")
_AGG2 = Struct(">H4s")
_AGG4 = Struct(">I4s")

__all__ = [
    "ATTRIBUTES",
    "Aggregator",
    "As4Aggregator",
    "AtomicAggregate",
    "ClusterList",
    "LocalPref",
    "MultiExitDisc",
    "NextHop",
    "Origin",
    "OriginatorId",
    "Otc",
    "UnknownAttribute",
]


def _u32(value: bytes, name: str) -> int:
    if len(value) != 4:
        raise length_error(f"{name} length {len(value)} is not 4")
    return int(_U32.unpack(value)[0])


@dataclass(frozen=True, slots=True)
class Origin(PathAttribute):
    """ORIGIN (RFC 4271 §5.1.1); malformed is treat-as-withdraw (RFC 7606 §7.1)."""

    TYPE = AttrType.ORIGIN
    FLAGS = WELL_KNOWN
    MALFORMED = Handling.TREAT_AS_WITHDRAW
    MALFORMED_RFC = "RFC 7606 §7.1"
    VALUE_SIZE = 1

    value: int = 0

    def __post_init__(self) -> None:
        if self.value not in (0, 1, 2):
            raise ValueError(f"ORIGIN {self.value} is not IGP(0), EGP(1) or INCOMPLETE(2)")
        PathAttribute.__post_init__(self)

    def __str__(self) -> str:
        return ("igp", "egp", "incomplete")[self.value]

    def encode_value(self, ctx: Negotiated) -> bytes:
        return _ORIGIN_VALUES[self.value]

    def encode_uncached(self, ctx: Negotiated) -> bytes:
        return _ORIGIN_TLVS[self.value]

    @classmethod
    def decode_value(cls, value: bytes, ctx: Negotiated) -> Self:
        if len(value) != 1:
            raise length_error(f"ORIGIN length {len(value)} is not 1")
        if value[0] > 2:
            raise Malformed(UpdateSubcode.INVALID_ORIGIN_ATTRIBUTE, f"undefined ORIGIN {value[0]}")
        return cls(value[0])


#: The whole attribute per ORIGIN value, header included: encoding it is an index.
_ORIGIN_TLVS = tuple(Origin._HEADER + v for v in _ORIGIN_VALUES)


@dataclass(frozen=True, slots=True)
class NextHop(PathAttribute):
    """NEXT_HOP (RFC 4271 §5.1.3); malformed is treat-as-withdraw (RFC 7606 §7.3)."""

    TYPE = AttrType.NEXT_HOP
    FLAGS = WELL_KNOWN
    MALFORMED = Handling.TREAT_AS_WITHDRAW
    MALFORMED_RFC = "RFC 7606 §7.3"
    VALUE_SIZE = 4

    address: ipaddress.IPv4Address

    def __post_init__(self) -> None:
        if not isinstance(self.address, ipaddress.IPv4Address):
            object.__setattr__(self, "address", ipaddress.IPv4Address(self.address))
        PathAttribute.__post_init__(self)

    def __str__(self) -> str:
        return str(self.address)

    def encode_value(self, ctx: Negotiated) -> bytes:
        return self.address.packed

    def encode_uncached(self, ctx: Negotiated) -> bytes:
        # ``_ip`` is the integer every ipaddress.IPv4Address keeps in its slot; reading it and packing
        # the whole attribute at once avoids ``.packed`` (two Python-level calls, about 4x slower).
        return _U32_TLV.pack(self.FLAGS, self.TYPE, 4, self.address._ip)  # type: ignore[attr-defined]

    @classmethod
    def decode_value(cls, value: bytes, ctx: Negotiated) -> Self:
        if len(value) != 4:
            raise length_error(f"NEXT_HOP length {len(value)} is not 4")
        # Syntactically incorrect next hops (RFC 4271 §6.3): unspecified, multicast (224/4), broadcast.
        if value == b"\x00\x00\x00\x00" or value[0] >> 4 == 14 or value == b"\xff\xff\xff\xff":
            raise Malformed(
                UpdateSubcode.INVALID_NEXT_HOP_ATTRIBUTE, f"invalid NEXT_HOP {ipaddress.IPv4Address(value)}"
            )
        return cls(ipaddress.IPv4Address(value))


@dataclass(frozen=True, slots=True)
class MultiExitDisc(PathAttribute):
    """MULTI_EXIT_DISC (RFC 4271 §5.1.4); malformed is treat-as-withdraw (RFC 7606 §7.4)."""

    TYPE = AttrType.MULTI_EXIT_DISC
    FLAGS = OPTIONAL_NON_TRANSITIVE
    MALFORMED = Handling.TREAT_AS_WITHDRAW
    MALFORMED_RFC = "RFC 7606 §7.4"
    VALUE_SIZE = 4

    value: int = 0

    def __post_init__(self) -> None:
        check_u32("MED", self.value)
        PathAttribute.__post_init__(self)

    def encode_value(self, ctx: Negotiated) -> bytes:
        return _U32.pack(self.value)

    def encode_uncached(self, ctx: Negotiated) -> bytes:
        return _U32_TLV.pack(self.FLAGS, self.TYPE, 4, self.value)

    @classmethod
    def decode_value(cls, value: bytes, ctx: Negotiated) -> Self:
        # Four octets always fit the field: build without __post_init__'s range check.
        if len(value) != 4:
            raise length_error(f"MULTI_EXIT_DISC length {len(value)} is not 4")
        attr = _new(cls)
        _SET_MULTI_EXIT_DISC(attr, int.from_bytes(value))
        return attr


@dataclass(frozen=True, slots=True)
class LocalPref(PathAttribute):
    """LOCAL_PREF (RFC 4271 §5.1.5); malformed is treat-as-withdraw (RFC 7606 §7.5)."""

    TYPE = AttrType.LOCAL_PREF
    FLAGS = WELL_KNOWN
    MALFORMED = Handling.TREAT_AS_WITHDRAW
    MALFORMED_RFC = "RFC 7606 §7.5"
    VALUE_SIZE = 4

    value: int = 100

    def __post_init__(self) -> None:
        check_u32("LOCAL_PREF", self.value)
        PathAttribute.__post_init__(self)

    def encode_value(self, ctx: Negotiated) -> bytes:
        return _U32.pack(self.value)

    def encode_uncached(self, ctx: Negotiated) -> bytes:
        return _U32_TLV.pack(self.FLAGS, self.TYPE, 4, self.value)

    @classmethod
    def decode_value(cls, value: bytes, ctx: Negotiated) -> Self:
        # Four octets always fit the field: build without __post_init__'s range check.
        if len(value) != 4:
            raise length_error(f"LOCAL_PREF length {len(value)} is not 4")
        attr = _new(cls)
        _SET_LOCAL_PREF(attr, int.from_bytes(value))
        return attr


@dataclass(frozen=True, slots=True)
class AtomicAggregate(PathAttribute):
    """ATOMIC_AGGREGATE (RFC 4271 §5.1.6); a bad length is attribute-discard (RFC 7606 §7.6)."""

    TYPE = AttrType.ATOMIC_AGGREGATE
    FLAGS = WELL_KNOWN
    MALFORMED = Handling.ATTRIBUTE_DISCARD
    MALFORMED_RFC = "RFC 7606 §7.6"
    VALUE_SIZE = 0

    def encode_value(self, ctx: Negotiated) -> bytes:
        return b""

    @classmethod
    def decode_value(cls, value: bytes, ctx: Negotiated) -> Self:
        if value:
            raise length_error("ATOMIC_AGGREGATE length is not 0")
        return cls()


def _aggregator(value: bytes, fmt: Struct, name: str) -> tuple[int, ipaddress.IPv4Address]:
    """AS and address of an AGGREGATOR-shaped value; AS 0 makes it malformed (RFC 7607 §2)."""
    if len(value) != fmt.size:
        raise length_error(f"{name} length {len(value)} is not {fmt.size}")
    asn, addr = fmt.unpack(value)
    if asn == 0:
        raise Malformed(UpdateSubcode.OPTIONAL_ATTRIBUTE_ERROR, f"AS 0 in {name}", rfc="RFC 7607 §2")
    return asn, ipaddress.IPv4Address(addr)


@dataclass(frozen=True, slots=True)
class _AggregatorBase(PathAttribute):
    """What AGGREGATOR and AS4_AGGREGATOR share: the aggregating AS and its BGP identifier."""

    FLAGS = OPTIONAL_TRANSITIVE
    MALFORMED = Handling.ATTRIBUTE_DISCARD

    asn: int
    address: ipaddress.IPv4Address

    def __post_init__(self) -> None:
        check_u32(f"{attr_name(self.TYPE)} AS", self.asn)
        if not isinstance(self.address, ipaddress.IPv4Address):
            object.__setattr__(self, "address", ipaddress.IPv4Address(self.address))
        PathAttribute.__post_init__(self)


@dataclass(frozen=True, slots=True)
class Aggregator(_AggregatorBase):
    """AGGREGATOR (RFC 4271 §5.1.7), 2- or 4-octet AS per session; malformed is discarded (RFC 7606 §7.7)."""

    TYPE = AttrType.AGGREGATOR
    MALFORMED_RFC = "RFC 7606 §7.7"
    AS_WIDTH_DEPENDENT = True

    def encode_value(self, ctx: Negotiated) -> bytes:
        if ctx.four_octet_as:
            return _AGG4.pack(self.asn, self.address.packed)
        return _AGG2.pack(self.asn if self.asn <= 0xFFFF else AS_TRANS, self.address.packed)

    @classmethod
    def decode_value(cls, value: bytes, ctx: Negotiated) -> Self:
        return cls(*_aggregator(value, _AGG4 if ctx.four_octet_as else _AGG2, "AGGREGATOR"))


@dataclass(frozen=True, slots=True)
class As4Aggregator(_AggregatorBase):
    """AS4_AGGREGATOR (RFC 6793 §4.1); malformed is discarded (RFC 6793 §6)."""

    TYPE = AttrType.AS4_AGGREGATOR
    MALFORMED_RFC = "RFC 6793 §6"

    def encode_value(self, ctx: Negotiated) -> bytes:
        return _AGG4.pack(self.asn, self.address.packed)

    @classmethod
    def decode_value(cls, value: bytes, ctx: Negotiated) -> Self:
        return cls(*_aggregator(value, _AGG4, "AS4_AGGREGATOR"))


@dataclass(frozen=True, slots=True)
class OriginatorId(PathAttribute):
    """ORIGINATOR_ID (RFC 4456 §8); malformed is treat-as-withdraw (RFC 7606 §7.9)."""

    TYPE = AttrType.ORIGINATOR_ID
    FLAGS = OPTIONAL_NON_TRANSITIVE
    MALFORMED = Handling.TREAT_AS_WITHDRAW
    MALFORMED_RFC = "RFC 7606 §7.9"
    VALUE_SIZE = 4

    address: ipaddress.IPv4Address

    def __post_init__(self) -> None:
        if not isinstance(self.address, ipaddress.IPv4Address):
            object.__setattr__(self, "address", ipaddress.IPv4Address(self.address))
        PathAttribute.__post_init__(self)

    def encode_value(self, ctx: Negotiated) -> bytes:
        return self.address.packed

    @classmethod
    def decode_value(cls, value: bytes, ctx: Negotiated) -> Self:
        if len(value) != 4:
            raise length_error("ORIGINATOR_ID length is not 4")
        return cls(ipaddress.IPv4Address(value))


@dataclass(frozen=True, slots=True)
class ClusterList(PathAttribute):
    """CLUSTER_LIST (RFC 4456 §8); malformed is treat-as-withdraw (RFC 7606 §7.10)."""

    TYPE = AttrType.CLUSTER_LIST
    FLAGS = OPTIONAL_NON_TRANSITIVE
    MALFORMED = Handling.TREAT_AS_WITHDRAW
    MALFORMED_RFC = "RFC 7606 §7.10"

    ids: tuple[ipaddress.IPv4Address, ...]

    def __post_init__(self) -> None:
        if not self.ids:
            raise ValueError("CLUSTER_LIST must hold at least one cluster ID")
        object.__setattr__(self, "ids", tuple(ipaddress.IPv4Address(i) for i in self.ids))
        PathAttribute.__post_init__(self)

    def encode_value(self, ctx: Negotiated) -> bytes:
        return b"".join(i.packed for i in self.ids)

    @classmethod
    def decode_value(cls, value: bytes, ctx: Negotiated) -> Self:
        if not value or len(value) % 4:
            raise length_error("CLUSTER_LIST length is not a non-zero multiple of 4")
        return cls(tuple(ipaddress.IPv4Address(value[i : i + 4]) for i in range(0, len(value), 4)))


@dataclass(frozen=True, slots=True)
class Otc(PathAttribute):
    """Only to Customer (RFC 9234 §5); malformed is treat-as-withdraw."""

    TYPE = AttrType.OTC
    FLAGS = OPTIONAL_TRANSITIVE
    MALFORMED = Handling.TREAT_AS_WITHDRAW
    MALFORMED_RFC = "RFC 9234 §5"
    VALUE_SIZE = 4

    asn: int

    def __post_init__(self) -> None:
        check_u32("OTC AS", self.asn)
        PathAttribute.__post_init__(self)

    def encode_value(self, ctx: Negotiated) -> bytes:
        return _U32.pack(self.asn)

    def encode_uncached(self, ctx: Negotiated) -> bytes:
        return _U32_TLV.pack(self.FLAGS, self.TYPE, 4, self.asn)

    @classmethod
    def decode_value(cls, value: bytes, ctx: Negotiated) -> Self:
        # Four octets always fit the field: build without __post_init__'s range check.
        if len(value) != 4:
            raise length_error(f"OTC length {len(value)} is not 4")
        attr = _new(cls)
        _SET_OTC(attr, int.from_bytes(value))
        return attr


@dataclass(frozen=True, slots=True)
class UnknownAttribute(PathAttribute):
    """An attribute this codec does not recognise, kept byte-exact (RFC 4271 §5, §9.1.3)."""

    attr_type: int
    flags: int
    value: bytes

    def __post_init__(self) -> None:
        if not 0 <= self.attr_type <= 255 or not 0 <= self.flags <= 255:
            raise ValueError("attribute type and flags are octets")
        PathAttribute.__post_init__(self)

    @property
    def type_code(self) -> int:
        """The attribute type code, as received."""
        return self.attr_type

    def encode_value(self, ctx: Negotiated) -> bytes:
        return self.value

    def encode_uncached(self, ctx: Negotiated) -> bytes:
        return encode_attribute(self.flags, self.attr_type, self.value)


# Slot setters of the one-field attributes decoded above: ``setter(obj, value)`` writes the frozen
# field directly (what the dataclass __init__ does, minus __post_init__); about 2x faster than cls(v).
_SET_MULTI_EXIT_DISC = MultiExitDisc.__dict__["value"].__set__
_SET_LOCAL_PREF = LocalPref.__dict__["value"].__set__
_SET_OTC = Otc.__dict__["asn"].__set__

ATTRIBUTES: dict[int, type[PathAttribute]] = {
    cls.TYPE: cls
    for cls in (
        Origin,
        AsPath,
        NextHop,
        MultiExitDisc,
        LocalPref,
        AtomicAggregate,
        Aggregator,
        Communities,
        OriginatorId,
        ClusterList,
        MpReachNlri,
        MpUnreachNlri,
        ExtendedCommunities,
        As4Path,
        As4Aggregator,
        LargeCommunities,
        Otc,
    )
}
