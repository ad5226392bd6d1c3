"""MP_REACH_NLRI and MP_UNREACH_NLRI (RFC 4760 §3-4, RFC 2545 §3, RFC 8950 §3, RFC 7606 §7.11).

Only prefix families (unicast/multicast, IPv4/IPv6) are decoded into objects; the UPDATE decoder
keeps other families as opaque attributes.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from struct import Struct
from typing import Self

from .attr_base import OPTIONAL_NON_TRANSITIVE, Malformed, PathAttribute
from .constants import PREFIX_FAMILIES, AttrType, Family
from .errors import Handling, UpdateMessageError, UpdateSubcode
from .negotiated import Negotiated
from .prefix import IPAddress, Prefix, decode_prefixes, encode_prefixes

_AFI_SAFI_NHLEN = Struct(">HBB")
_AFI_SAFI = Struct(">HB")


class NlriError(Malformed):
    """An MP attribute whose NLRI cannot be located or parsed: AFI/SAFI disable, or session reset when
    not even the AFI/SAFI can be read (RFC 7606 §5.3, §7.11)."""

    def __init__(self, subcode: int, reason: str, handling: Handling = Handling.AFI_SAFI_DISABLE) -> None:
        super().__init__(subcode, reason)
        self.handling = handling


def _check_prefixes(prefixes: tuple[Prefix, ...], afi: int) -> None:
    for p in prefixes:
        if p[0] != afi:
            raise ValueError(f"prefix {p} does not belong to AFI {afi}")


def _decode_nlri(data: bytes, family: Family, ctx: Negotiated) -> tuple[Prefix, ...]:
    try:
        return tuple(decode_prefixes(data, family.afi, family in ctx.add_path_rx, Handling.AFI_SAFI_DISABLE))
    except UpdateMessageError as exc:
        raise NlriError(UpdateSubcode.OPTIONAL_ATTRIBUTE_ERROR, exc.reason) from exc


def decode_next_hop(afi: int, raw: bytes) -> tuple[IPAddress, ...]:
    """Next hop by length: 4 (IPv4), 16 (IPv6) or 32 (IPv6 global + link-local) (RFC 2545, RFC 8950)."""
    n = len(raw)
    if n == 4 and afi == 1:
        return (ipaddress.IPv4Address(raw),)
    if n == 16:
        return (ipaddress.IPv6Address(raw),)
    if n == 32:
        return (ipaddress.IPv6Address(raw[:16]), ipaddress.IPv6Address(raw[16:]))
    raise Malformed(UpdateSubcode.OPTIONAL_ATTRIBUTE_ERROR, f"next hop length {n} invalid for AFI {afi}")


@dataclass(frozen=True, slots=True)
class MpReachNlri(PathAttribute):
    """MP_REACH_NLRI (RFC 4760 §3); a bad next-hop length is treat-as-withdraw (RFC 7606 §7.11)."""

    TYPE = AttrType.MP_REACH_NLRI
    FLAGS = OPTIONAL_NON_TRANSITIVE
    MALFORMED = Handling.AFI_SAFI_DISABLE

    afi: int
    safi: int
    next_hop: tuple[IPAddress, ...]
    nlri: tuple[Prefix, ...] = ()

    def __post_init__(self) -> None:
        if Family(self.afi, self.safi) not in PREFIX_FAMILIES:
            raise ValueError(f"unsupported family {self.afi}/{self.safi}")
        if not 1 <= len(self.next_hop) <= 2:
            raise ValueError("MP_REACH_NLRI needs one next hop, or IPv6 global + link-local")
        if len(self.next_hop) == 2 and any(a.version != 6 for a in self.next_hop):
            raise ValueError("two next hops are only valid as IPv6 global + link-local")
        if self.afi == 2 and self.next_hop[0].version != 6:
            raise ValueError("IPv6 NLRI need an IPv6 next hop")
        _check_prefixes(self.nlri, self.afi)

    @property
    def family(self) -> Family:
        """The (AFI, SAFI) this attribute carries."""
        return Family(self.afi, self.safi)

    def header(self) -> bytes:
        """Everything before the NLRI field; the packer reuses it across messages."""
        nh = b"".join(a.packed for a in self.next_hop)
        return _AFI_SAFI_NHLEN.pack(self.afi, self.safi, len(nh)) + nh + b"\x00"

    def encode_value(self, ctx: Negotiated) -> bytes:
        return self.header() + encode_prefixes(self.nlri, self.family in ctx.add_path_tx)

    @classmethod
    def decode_value(cls, value: bytes, ctx: Negotiated) -> Self:
        if len(value) < 3:
            raise NlriError(
                UpdateSubcode.OPTIONAL_ATTRIBUTE_ERROR, "MP_REACH_NLRI too short", Handling.SESSION_RESET
            )
        if len(value) < 5:
            raise NlriError(UpdateSubcode.OPTIONAL_ATTRIBUTE_ERROR, "MP_REACH_NLRI too short")
        afi, safi, nh_len = _AFI_SAFI_NHLEN.unpack_from(value)
        if 4 + nh_len + 1 > len(value):
            raise NlriError(UpdateSubcode.OPTIONAL_ATTRIBUTE_ERROR, "MP_REACH_NLRI next hop overruns")
        family = Family(afi, safi)
        nlri = _decode_nlri(value[5 + nh_len :], family, ctx)
        try:
            next_hop = decode_next_hop(afi, value[4 : 4 + nh_len])
        except Malformed as exc:
            # RFC 7606 §7.11: the next hop precedes the NLRI, so a bad one means the NLRI cannot be
            # reliably located: AFI/SAFI disable (or session reset), never treat-as-withdraw.
            raise NlriError(UpdateSubcode.OPTIONAL_ATTRIBUTE_ERROR, exc.reason) from None
        return cls(afi, safi, next_hop, nlri)


@dataclass(frozen=True, slots=True)
class MpUnreachNlri(PathAttribute):
    """MP_UNREACH_NLRI (RFC 4760 §4); an empty one is the End-of-RIB marker (RFC 4724 §2)."""

    TYPE = AttrType.MP_UNREACH_NLRI
    FLAGS = OPTIONAL_NON_TRANSITIVE
    MALFORMED = Handling.AFI_SAFI_DISABLE

    afi: int
    safi: int
    withdrawn: tuple[Prefix, ...] = ()

    def __post_init__(self) -> None:
        if Family(self.afi, self.safi) not in PREFIX_FAMILIES:
            raise ValueError(f"unsupported family {self.afi}/{self.safi}")
        _check_prefixes(self.withdrawn, self.afi)

    @property
    def family(self) -> Family:
        """The (AFI, SAFI) this attribute carries."""
        return Family(self.afi, self.safi)

    def encode_value(self, ctx: Negotiated) -> bytes:
        return _AFI_SAFI.pack(self.afi, self.safi) + encode_prefixes(
            self.withdrawn, self.family in ctx.add_path_tx
        )

    @classmethod
    def decode_value(cls, value: bytes, ctx: Negotiated) -> Self:
        if len(value) < 3:
            raise NlriError(
                UpdateSubcode.OPTIONAL_ATTRIBUTE_ERROR, "MP_UNREACH_NLRI too short", Handling.SESSION_RESET
            )
        afi, safi = _AFI_SAFI.unpack_from(value)
        return cls(afi, safi, _decode_nlri(value[3:], Family(afi, safi), ctx))


def mp_family(value: bytes) -> Family | None:
    """The family named by an MP attribute value, if it is long enough to name one."""
    if len(value) < 3:
        return None
    afi, safi = _AFI_SAFI.unpack_from(value)
    return Family(afi, safi)
