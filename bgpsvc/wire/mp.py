"""MP_REACH_NLRI and MP_UNREACH_NLRI (RFC 4760 §3-4, RFC 2545 §3, RFC 8950 §3, RFC 7606 §7.11).

Only prefix families (unicast/multicast, IPv4/IPv6) are decoded into objects; the UPDATE decoder
discards MP attributes of other families, which bgpsvc never negotiates (RFC 4760 §7).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from struct import Struct
from typing import Self

from .attr_base import OPTIONAL_NON_TRANSITIVE, Malformed, PathAttribute
from .constants import PREFIX_FAMILIES, Afi, AttrType, Family
from .errors import Handling, UpdateMessageError, UpdateSubcode
from .negotiated import Negotiated
from .prefix import IPAddress, Prefix, decode_prefix_tuple, encode_prefixes

_AFI_SAFI_NHLEN = Struct(">HBB")
_AFI_SAFI = Struct(">HB")
_OPTIONAL_ERROR = UpdateSubcode.OPTIONAL_ATTRIBUTE_ERROR
#: NLRI that cannot be parsed, or an attribute too short to hold them (RFC 7606 §5.3).
_NLRI_RFC = "RFC 7606 §5.3"


def _decode_nlri(data: bytes, family: Family, ctx: Negotiated) -> tuple[Prefix, ...]:
    try:
        return decode_prefix_tuple(data, family.afi, family in ctx.add_path_rx, Handling.AFI_SAFI_DISABLE)
    except UpdateMessageError as exc:
        raise Malformed(_OPTIONAL_ERROR, exc.reason, rfc=_NLRI_RFC) from exc


def decode_next_hop(family: Family, raw: bytes, ctx: Negotiated) -> tuple[IPAddress, ...]:
    """Next hop by length (RFC 4760 §3, RFC 2545 §3): 4 octets for IPv4 NLRI, 16 (global) or 32 (global
    + link-local) for IPv6 NLRI, and for IPv4 NLRI only where Extended Next Hop was negotiated (RFC 8950 §3).
    """
    n = len(raw)
    if family.afi == Afi.IPV4:
        if n == 4:
            return (ipaddress.IPv4Address(raw),)
        if n in (16, 32) and (family, Afi.IPV6) not in ctx.extended_next_hop:
            raise Malformed(
                _OPTIONAL_ERROR,
                f"IPv6 next hop for {family} without the Extended Next Hop capability",
                rfc="RFC 8950 §3",
            )
    if n == 16:
        return (ipaddress.IPv6Address(raw),)
    if n == 32:
        return (ipaddress.IPv6Address(raw[:16]), ipaddress.IPv6Address(raw[16:]))
    raise Malformed(_OPTIONAL_ERROR, f"next hop length {n} invalid for {family}")


@dataclass(frozen=True, slots=True)
class _MpAttribute(PathAttribute):
    """What MP_REACH_NLRI and MP_UNREACH_NLRI share: an (AFI, SAFI) and its prefixes (RFC 4760 §3-4).

    Malformed ones are AFI/SAFI disable: the NLRI cannot be reliably located (RFC 7606 §7.11, §5.3).
    """

    FLAGS = OPTIONAL_NON_TRANSITIVE
    MALFORMED = Handling.AFI_SAFI_DISABLE
    KEEPS_WIRE = False

    afi: int
    safi: int

    @property
    def family(self) -> Family:
        """The (AFI, SAFI) this attribute carries."""
        return Family(self.afi, self.safi)

    @property
    def prefixes(self) -> tuple[Prefix, ...]:
        """The reachable or withdrawn prefixes."""
        raise NotImplementedError

    def routes(self) -> list[tuple[Family, Prefix]]:
        """Each prefix with its family."""
        family = self.family
        return [(family, p) for p in self.prefixes]

    def _check(self) -> None:
        if Family(self.afi, self.safi) not in PREFIX_FAMILIES:
            raise ValueError(f"unsupported family {self.afi}/{self.safi}")
        for p in self.prefixes:
            if p[0] != self.afi:
                raise ValueError(f"prefix {p} does not belong to AFI {self.afi}")


@dataclass(frozen=True, slots=True)
class MpReachNlri(_MpAttribute):
    """MP_REACH_NLRI (RFC 4760 §3); a bad next hop is AFI/SAFI disable (RFC 7606 §7.11)."""

    TYPE = AttrType.MP_REACH_NLRI
    MALFORMED_RFC = "RFC 7606 §7.11"

    next_hop: tuple[IPAddress, ...]
    nlri: tuple[Prefix, ...] = ()

    def __post_init__(self) -> None:
        self._check()
        if not 1 <= len(self.next_hop) <= 2:
            raise ValueError("MP_REACH_NLRI needs one next hop, or IPv6 global + link-local")
        if len(self.next_hop) == 2 and any(a.version != 6 for a in self.next_hop):
            raise ValueError("two next hops are only valid as IPv6 global + link-local")
        if self.afi == 2 and self.next_hop[0].version != 6:
            raise ValueError("IPv6 NLRI need an IPv6 next hop")

    @property
    def prefixes(self) -> tuple[Prefix, ...]:
        """The reachable prefixes."""
        return self.nlri

    def header(self) -> bytes:
        """Everything before the NLRI field; the packer reuses it across messages."""
        nh = b"".join(a.packed for a in self.next_hop)
        return _AFI_SAFI_NHLEN.pack(self.afi, self.safi, len(nh)) + nh + b"\x00"

    def encode_value(self, ctx: Negotiated) -> bytes:
        return self.header() + encode_prefixes(self.nlri, self.family in ctx.add_path_tx)

    @classmethod
    def decode_value(cls, value: bytes, ctx: Negotiated) -> Self:
        if len(value) < 3:
            raise Malformed(_OPTIONAL_ERROR, "MP_REACH_NLRI too short", Handling.SESSION_RESET, _NLRI_RFC)
        if len(value) < 5:
            raise Malformed(_OPTIONAL_ERROR, "MP_REACH_NLRI too short", rfc=_NLRI_RFC)
        afi, safi, nh_len = _AFI_SAFI_NHLEN.unpack_from(value)
        if 4 + nh_len + 1 > len(value):
            raise Malformed(_OPTIONAL_ERROR, "MP_REACH_NLRI next hop overruns")
        family = Family(afi, safi)
        nlri = _decode_nlri(value[5 + nh_len :], family, ctx)
        # A next hop the session cannot take means the NLRI behind it cannot be trusted either: the
        # error is AFI/SAFI disable (MALFORMED), never treat-as-withdraw (RFC 7606 §7.11).
        return cls(afi, safi, decode_next_hop(family, value[4 : 4 + nh_len], ctx), nlri)


@dataclass(frozen=True, slots=True)
class MpUnreachNlri(_MpAttribute):
    """MP_UNREACH_NLRI (RFC 4760 §4); an empty one is the End-of-RIB marker (RFC 4724 §2)."""

    TYPE = AttrType.MP_UNREACH_NLRI
    MALFORMED_RFC = "RFC 7606 §7.12"

    withdrawn: tuple[Prefix, ...] = ()

    def __post_init__(self) -> None:
        self._check()

    @property
    def prefixes(self) -> tuple[Prefix, ...]:
        """The withdrawn prefixes."""
        return self.withdrawn

    def encode_value(self, ctx: Negotiated) -> bytes:
        return _AFI_SAFI.pack(self.afi, self.safi) + encode_prefixes(
            self.withdrawn, self.family in ctx.add_path_tx
        )

    @classmethod
    def decode_value(cls, value: bytes, ctx: Negotiated) -> Self:
        if len(value) < 3:
            raise Malformed(_OPTIONAL_ERROR, "MP_UNREACH_NLRI too short", Handling.SESSION_RESET, _NLRI_RFC)
        afi, safi = _AFI_SAFI.unpack_from(value)
        return cls(afi, safi, _decode_nlri(value[3:], Family(afi, safi), ctx))


def mp_family(value: bytes) -> Family | None:
    """The family named by an MP attribute value, if it is long enough to name one."""
    if len(value) < 3:
        return None
    afi, safi = _AFI_SAFI.unpack_from(value)
    return Family(afi, safi)
