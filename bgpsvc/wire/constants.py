"""Protocol numbers from RFC 4271, RFC 4760 and the IANA BGP registries."""

from __future__ import annotations

from enum import IntEnum
from typing import NamedTuple

MARKER = b"\xff" * 16
HEADER_SIZE = 19
MAX_MESSAGE_SIZE = 4096  # RFC 4271 §4.1
MAX_EXTENDED_MESSAGE_SIZE = 65535  # RFC 8654 §3
AS_TRANS = 23456  # RFC 6793 §9
BGP_VERSION = 4


class MessageType(IntEnum):
    """BGP message types (RFC 4271 §4.1, RFC 2918 §3)."""

    OPEN = 1
    UPDATE = 2
    NOTIFICATION = 3
    KEEPALIVE = 4
    ROUTE_REFRESH = 5


class AttrType(IntEnum):
    """Path attribute type codes (IANA "BGP Path Attributes")."""

    ORIGIN = 1
    AS_PATH = 2
    NEXT_HOP = 3
    MULTI_EXIT_DISC = 4
    LOCAL_PREF = 5
    ATOMIC_AGGREGATE = 6
    AGGREGATOR = 7
    COMMUNITIES = 8
    ORIGINATOR_ID = 9
    CLUSTER_LIST = 10
    MP_REACH_NLRI = 14
    MP_UNREACH_NLRI = 15
    EXTENDED_COMMUNITIES = 16
    AS4_PATH = 17
    AS4_AGGREGATOR = 18
    LARGE_COMMUNITY = 32
    OTC = 35


def attr_name(code: int) -> str:
    """IANA name of a path attribute type code (``AS_PATH``), or ``ATTR_<code>`` for an unknown one."""
    try:
        return AttrType(code).name
    except ValueError:
        return f"ATTR_{code}"


class AttrFlag:
    """Attribute flag bits (RFC 4271 §4.3)."""

    OPTIONAL = 0x80
    TRANSITIVE = 0x40
    PARTIAL = 0x20
    EXTENDED_LENGTH = 0x10


class Afi(IntEnum):
    """Address Family Identifiers used by bgpsvc (IANA)."""

    IPV4 = 1
    IPV6 = 2


class Safi(IntEnum):
    """Subsequent Address Family Identifiers used by bgpsvc (RFC 4760)."""

    UNICAST = 1
    MULTICAST = 2


class Family(NamedTuple):
    """An (AFI, SAFI) pair (RFC 4760 §2)."""

    afi: int
    safi: int

    def __str__(self) -> str:
        names = {
            (1, 1): "ipv4-unicast",
            (2, 1): "ipv6-unicast",
            (1, 2): "ipv4-multicast",
            (2, 2): "ipv6-multicast",
        }
        return names.get((self.afi, self.safi), f"afi{self.afi}-safi{self.safi}")


IPV4_UNICAST = Family(Afi.IPV4, Safi.UNICAST)
IPV6_UNICAST = Family(Afi.IPV6, Safi.UNICAST)
#: Families whose NLRI are plain prefixes (RFC 4271 §4.3 encoding), which this codec decodes.
PREFIX_FAMILIES = frozenset({Family(1, 1), Family(1, 2), Family(2, 1), Family(2, 2)})


class Origin(IntEnum):
    """ORIGIN values (RFC 4271 §5.1.1)."""

    IGP = 0
    EGP = 1
    INCOMPLETE = 2


class SegmentType(IntEnum):
    """AS_PATH segment types (RFC 4271 §4.3, RFC 5065 §3)."""

    AS_SET = 1
    AS_SEQUENCE = 2
    AS_CONFED_SEQUENCE = 3
    AS_CONFED_SET = 4


class Community(IntEnum):
    """Well-known communities (RFC 1997, RFC 8326, RFC 7999, RFC 8642)."""

    GRACEFUL_SHUTDOWN = 0xFFFF0000
    ACCEPT_OWN = 0xFFFF0001
    LLGR_STALE = 0xFFFF0006
    NO_LLGR = 0xFFFF0007
    BLACKHOLE = 0xFFFF029A
    NO_EXPORT = 0xFFFFFF01
    NO_ADVERTISE = 0xFFFFFF02
    NO_EXPORT_SUBCONFED = 0xFFFFFF03
    NOPEER = 0xFFFFFF04


class CapabilityCode(IntEnum):
    """Capability codes (IANA "Capability Codes")."""

    MULTIPROTOCOL = 1
    ROUTE_REFRESH = 2
    EXTENDED_NEXT_HOP = 5
    EXTENDED_MESSAGE = 6
    BGP_ROLE = 9
    GRACEFUL_RESTART = 64
    FOUR_OCTET_AS = 65
    ADD_PATH = 69
    ENHANCED_ROUTE_REFRESH = 70
    LONG_LIVED_GRACEFUL_RESTART = 71
    FQDN = 73


class RouteRefreshSubtype(IntEnum):
    """ROUTE-REFRESH message subtypes (RFC 7313 §3)."""

    NORMAL = 0
    BORR = 1
    EORR = 2
