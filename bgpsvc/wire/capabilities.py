"""Capabilities advertised in OPEN (RFC 5492 §4) and the capability registry.

Unknown capability codes decode to ``UnknownCapability`` and keep their bytes.
"""

from __future__ import annotations

from dataclasses import dataclass
from struct import Struct
from typing import ClassVar, Self

from .constants import CapabilityCode, Family
from .errors import OpenMessageError, OpenSubcode

_AFI_RES_SAFI = Struct(">HBB")
_AFI_SAFI_FLAGS = Struct(">HBB")
_GR_HEAD = Struct(">H")
_ENH = Struct(">HHH")


class CapabilityError(OpenMessageError):
    """A capability value that cannot be parsed (RFC 5492 §3: OPEN Message Error)."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(OpenSubcode.UNSPECIFIC, b"", f"capability {code}: {reason}")


@dataclass(frozen=True, slots=True)
class Capability:
    """A capability TLV (RFC 5492 §4)."""

    CODE: ClassVar[int] = 0

    @property
    def code(self) -> int:
        """The capability code."""
        return self.CODE

    def encode_value(self) -> bytes:
        """The capability value octets."""
        return b""

    @classmethod
    def decode_value(cls, value: bytes) -> Self:
        """Parse a value; raise ``CapabilityError`` if it is malformed."""
        if value:
            raise CapabilityError(cls.CODE, "expected an empty value")
        return cls()

    def encode(self) -> bytes:
        """Code, length and value."""
        value = self.encode_value()
        if len(value) > 255:
            raise ValueError(f"capability {self.code} value exceeds 255 octets")
        return bytes((self.code, len(value))) + value


@dataclass(frozen=True, slots=True)
class Multiprotocol(Capability):
    """Multiprotocol Extensions (RFC 4760 §8)."""

    CODE = CapabilityCode.MULTIPROTOCOL
    afi: int
    safi: int

    @property
    def family(self) -> Family:
        """The (AFI, SAFI) advertised."""
        return Family(self.afi, self.safi)

    def encode_value(self) -> bytes:
        return _AFI_RES_SAFI.pack(self.afi, 0, self.safi)

    @classmethod
    def decode_value(cls, value: bytes) -> Self:
        if len(value) != 4:
            raise CapabilityError(cls.CODE, "length is not 4")
        afi, _, safi = _AFI_RES_SAFI.unpack(value)
        return cls(afi, safi)


@dataclass(frozen=True, slots=True)
class RouteRefreshCapability(Capability):
    """Route Refresh (RFC 2918 §3)."""

    CODE = CapabilityCode.ROUTE_REFRESH


@dataclass(frozen=True, slots=True)
class EnhancedRouteRefresh(Capability):
    """Enhanced Route Refresh (RFC 7313 §3.1)."""

    CODE = CapabilityCode.ENHANCED_ROUTE_REFRESH


@dataclass(frozen=True, slots=True)
class ExtendedMessage(Capability):
    """BGP Extended Message (RFC 8654 §3)."""

    CODE = CapabilityCode.EXTENDED_MESSAGE


@dataclass(frozen=True, slots=True)
class ExtendedNextHop(Capability):
    """Extended Next Hop Encoding: (NLRI AFI, NLRI SAFI, next-hop AFI) triples (RFC 8950 §3)."""

    CODE = CapabilityCode.EXTENDED_NEXT_HOP
    entries: tuple[tuple[int, int, int], ...]

    def __post_init__(self) -> None:
        if len(self.entries) * 6 > 255:
            raise ValueError("at most 42 extended next hop entries fit a capability")

    def encode_value(self) -> bytes:
        return b"".join(_ENH.pack(*e) for e in self.entries)

    @classmethod
    def decode_value(cls, value: bytes) -> Self:
        if not value or len(value) % 6:
            raise CapabilityError(cls.CODE, "length is not a non-zero multiple of 6")
        return cls(tuple(_ENH.unpack_from(value, i) for i in range(0, len(value), 6)))


@dataclass(frozen=True, slots=True)
class BgpRole(Capability):
    """BGP Role: 0 provider, 1 RS, 2 RS-client, 3 customer, 4 peer (RFC 9234 §4.1)."""

    CODE = CapabilityCode.BGP_ROLE
    role: int

    def __post_init__(self) -> None:
        if not 0 <= self.role <= 255:
            raise ValueError("role is an octet")

    def encode_value(self) -> bytes:
        return bytes((self.role,))

    @classmethod
    def decode_value(cls, value: bytes) -> Self:
        if len(value) != 1:
            raise CapabilityError(cls.CODE, "length is not 1")
        return cls(value[0])


@dataclass(frozen=True, slots=True)
class GracefulRestartFamily:
    """One family in the Graceful Restart capability, with its Forwarding State bit (RFC 4724 §3)."""

    afi: int
    safi: int
    forwarding: bool = False


@dataclass(frozen=True, slots=True)
class GracefulRestart(Capability):
    """Graceful Restart (RFC 4724 §3), with the N bit of RFC 8538 §2."""

    CODE = CapabilityCode.GRACEFUL_RESTART
    restart_time: int = 120
    restarting: bool = False
    notification: bool = False
    families: tuple[GracefulRestartFamily, ...] = ()

    def __post_init__(self) -> None:
        if not 0 <= self.restart_time <= 0xFFF:
            raise ValueError("restart time is 12 bits (0..4095 s)")
        if 2 + 4 * len(self.families) > 255:
            raise ValueError("at most 63 families fit a graceful restart capability")

    def encode_value(self) -> bytes:
        head = (0x8000 if self.restarting else 0) | (0x4000 if self.notification else 0) | self.restart_time
        return _GR_HEAD.pack(head) + b"".join(
            _AFI_SAFI_FLAGS.pack(f.afi, f.safi, 0x80 if f.forwarding else 0) for f in self.families
        )

    @classmethod
    def decode_value(cls, value: bytes) -> Self:
        if len(value) < 2 or (len(value) - 2) % 4:
            raise CapabilityError(cls.CODE, "length is not 2 + 4n")
        (head,) = _GR_HEAD.unpack_from(value)
        fams = tuple(
            GracefulRestartFamily(afi, safi, bool(flags & 0x80))
            for afi, safi, flags in (_AFI_SAFI_FLAGS.unpack_from(value, i) for i in range(2, len(value), 4))
        )
        return cls(head & 0xFFF, bool(head & 0x8000), bool(head & 0x4000), fams)


@dataclass(frozen=True, slots=True)
class FourOctetAs(Capability):
    """Support for 4-octet AS numbers, carrying the true local AS (RFC 6793 §3)."""

    CODE = CapabilityCode.FOUR_OCTET_AS
    asn: int

    def __post_init__(self) -> None:
        if not 0 <= self.asn <= 0xFFFFFFFF:
            raise ValueError("AS number out of range")

    def encode_value(self) -> bytes:
        return self.asn.to_bytes(4, "big")

    @classmethod
    def decode_value(cls, value: bytes) -> Self:
        if len(value) != 4:
            raise CapabilityError(cls.CODE, "length is not 4")
        return cls(int.from_bytes(value, "big"))


#: ADD-PATH Send/Receive field values (RFC 7911 §4).
ADD_PATH_RECEIVE = 1
ADD_PATH_SEND = 2
ADD_PATH_BOTH = 3


@dataclass(frozen=True, slots=True)
class AddPath(Capability):
    """ADD-PATH: (AFI, SAFI, send/receive) triples (RFC 7911 §4)."""

    CODE = CapabilityCode.ADD_PATH
    entries: tuple[tuple[int, int, int], ...]

    def __post_init__(self) -> None:
        if len(self.entries) * 4 > 255:
            raise ValueError("at most 63 ADD-PATH entries fit a capability")
        for _, _, sr in self.entries:
            if sr not in (ADD_PATH_RECEIVE, ADD_PATH_SEND, ADD_PATH_BOTH):
                raise ValueError("ADD-PATH send/receive is 1, 2 or 3")

    def encode_value(self) -> bytes:
        return b"".join(_AFI_SAFI_FLAGS.pack(*e) for e in self.entries)

    @classmethod
    def decode_value(cls, value: bytes) -> Self:
        if not value or len(value) % 4:
            raise CapabilityError(cls.CODE, "length is not a non-zero multiple of 4")
        entries = (_AFI_SAFI_FLAGS.unpack_from(value, i) for i in range(0, len(value), 4))
        # RFC 7911 §4: any other Send/Receive value means the capability "SHOULD be treated as not
        # understood and ignored", never an OPEN error. Like FRR (bgp_open.c), only the entries that
        # carry such a value are dropped; the peer's other families stand.
        return cls(tuple(e for e in entries if e[2] in (ADD_PATH_RECEIVE, ADD_PATH_SEND, ADD_PATH_BOTH)))


@dataclass(frozen=True, slots=True)
class LongLivedGracefulRestartFamily:
    """One family in the LLGR capability: forwarding bit and 24-bit stale time (RFC 9494 §3)."""

    afi: int
    safi: int
    forwarding: bool
    stale_time: int


@dataclass(frozen=True, slots=True)
class LongLivedGracefulRestart(Capability):
    """Long-Lived Graceful Restart (RFC 9494 §3)."""

    CODE = CapabilityCode.LONG_LIVED_GRACEFUL_RESTART
    families: tuple[LongLivedGracefulRestartFamily, ...] = ()

    def __post_init__(self) -> None:
        if len(self.families) * 7 > 255:
            raise ValueError("at most 36 families fit a long-lived graceful restart capability")

    def encode_value(self) -> bytes:
        return b"".join(
            _AFI_SAFI_FLAGS.pack(f.afi, f.safi, 0x80 if f.forwarding else 0) + f.stale_time.to_bytes(3, "big")
            for f in self.families
        )

    @classmethod
    def decode_value(cls, value: bytes) -> Self:
        if len(value) % 7:
            raise CapabilityError(cls.CODE, "length is not a multiple of 7")
        fams = []
        for i in range(0, len(value), 7):
            afi, safi, flags = _AFI_SAFI_FLAGS.unpack_from(value, i)
            fams.append(
                LongLivedGracefulRestartFamily(
                    afi, safi, bool(flags & 0x80), int.from_bytes(value[i + 4 : i + 7], "big")
                )
            )
        return cls(tuple(fams))


@dataclass(frozen=True, slots=True)
class Fqdn(Capability):
    """Hostname and domain name (draft-walton-bgp-hostname-capability §3), as FRR sends them."""

    CODE = CapabilityCode.FQDN
    hostname: str
    domain: str = ""

    def __post_init__(self) -> None:
        if 2 + len(self.hostname.encode()) + len(self.domain.encode()) > 255:
            raise ValueError("hostname and domain together are at most 253 octets")

    def encode_value(self) -> bytes:
        h, d = self.hostname.encode(), self.domain.encode()
        return bytes((len(h),)) + h + bytes((len(d),)) + d

    @classmethod
    def decode_value(cls, value: bytes) -> Self:
        try:
            hlen = value[0]
            host = value[1 : 1 + hlen]
            dlen = value[1 + hlen]
            dom = value[2 + hlen : 2 + hlen + dlen]
            if len(host) != hlen or len(dom) != dlen or 2 + hlen + dlen != len(value):
                raise IndexError
            return cls(host.decode("utf-8", "replace"), dom.decode("utf-8", "replace"))
        except IndexError:
            raise CapabilityError(cls.CODE, "malformed hostname/domain") from None


@dataclass(frozen=True, slots=True)
class UnknownCapability(Capability):
    """A capability this codec does not interpret, kept byte-exact (RFC 5492 §4)."""

    cap_code: int
    value: bytes

    def __post_init__(self) -> None:
        if not 0 <= self.cap_code <= 255 or len(self.value) > 255:
            raise ValueError("capability code is an octet and its value at most 255 octets")

    @property
    def code(self) -> int:
        """The capability code, as received."""
        return self.cap_code

    def encode_value(self) -> bytes:
        return self.value


CAPABILITIES: dict[int, type[Capability]] = {
    cls.CODE: cls
    for cls in (
        Multiprotocol,
        RouteRefreshCapability,
        ExtendedNextHop,
        ExtendedMessage,
        BgpRole,
        GracefulRestart,
        FourOctetAs,
        AddPath,
        EnhancedRouteRefresh,
        LongLivedGracefulRestart,
        Fqdn,
    )
}


def decode_capabilities(data: bytes) -> list[Capability]:
    """A run of capability TLVs inside one optional parameter (RFC 5492 §4)."""
    caps: list[Capability] = []
    i, n = 0, len(data)
    while i < n:
        if n - i < 2:
            raise CapabilityError(data[i], "truncated capability header")
        code, length = data[i], data[i + 1]
        end = i + 2 + length
        if end > n:
            raise CapabilityError(code, "capability overruns its parameter")
        value = bytes(data[i + 2 : end])
        cls = CAPABILITIES.get(code)
        caps.append(cls.decode_value(value) if cls is not None else UnknownCapability(code, value))
        i = end
    return caps
