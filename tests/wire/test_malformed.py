"""Malformed-message vectors: what each broken UPDATE, header, OPEN or ROUTE-REFRESH must turn into.

Every message is written by hand (the helpers only concatenate header, length fields and the hex
below); no encoder is involved. Each row's expected (code, subcode, handling) is taken from the RFC
text cited next to it, not from the codec:

- RFC 4271 §6.1-6.3: error codes, subcodes and what the NOTIFICATION Data field holds.
- RFC 7606 §2-§5, §7.1-§7.14: which UPDATE errors are session reset, AFI/SAFI disable,
  treat-as-withdraw or attribute discard.
- RFC 6793 §6 (AS4_PATH, AS4_AGGREGATOR), RFC 8092 §6 (LARGE_COMMUNITY), RFC 9234 §5 (OTC),
  RFC 4760 §7 (MP_REACH/MP_UNREACH), RFC 7313 §5 (ROUTE-REFRESH), RFC 8654 §4 (extended messages).

Rows that first exposed codec bugs (RFC 7606 §5.2, §7.11, §3(c)/(j); RFC 6793 §6) now pass.
Where the RFC leaves a choice (two subcodes, or "session reset or AFI/SAFI disable") the row
accepts every permitted answer, written as a tuple.

Conventions of the UPDATE table (``UpdateCase``):

- ``handling`` None means a clean decode (no errors at all). AFI/SAFI disable and session reset
  must raise ``UpdateMessageError``; treat-as-withdraw and attribute discard must return an
  ``Update`` whose ``.errors`` say what happened.
- ``subcode``, ``attr_type`` and ``data`` describe the error with the strongest handling.
  ``data`` is only given where the RFC says what the Data field holds.
- ``withdrawn``/``announced`` are the prefixes of ``update.withdrawals()``/``update.announced()``.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from bgpsvc.wire import (
    DEFAULT,
    IPV4_UNICAST,
    TWO_OCTET,
    AddPath,
    AsPath,
    AttrType,
    Framer,
    Handling,
    Keepalive,
    LargeCommunities,
    LocalPref,
    MessageHeaderError,
    MpReachNlri,
    MpUnreachNlri,
    Negotiated,
    NextHop,
    NotificationError,
    Open,
    OpenMessageError,
    Origin,
    Prefix,
    RouteRefreshMessageError,
    UnknownAttribute,
    Update,
    UpdateMessageError,
    UpdateSubcode,
    decode,
    decode_attributes,
    pack_updates,
)

# RFC 7606 §2 approaches, weakest to strongest.
DISCARD = Handling.ATTRIBUTE_DISCARD
TAW = Handling.TREAT_AS_WITHDRAW
DISABLE = Handling.AFI_SAFI_DISABLE
RESET = Handling.SESSION_RESET
#: RFC 7606 §3(j), §5.3, §7.11: "the 'session reset' or 'AFI/SAFI disable' approach MUST be used".
DISABLE_OR_RESET = (DISABLE, RESET)

# RFC 4271 §6.3 UPDATE Message Error subcodes.
ATTR_LIST = UpdateSubcode.MALFORMED_ATTRIBUTE_LIST  # 1
UNRECOGNIZED = UpdateSubcode.UNRECOGNIZED_WELL_KNOWN_ATTRIBUTE  # 2
MISSING = UpdateSubcode.MISSING_WELL_KNOWN_ATTRIBUTE  # 3
FLAGS = UpdateSubcode.ATTRIBUTE_FLAGS_ERROR  # 4
LENGTH = UpdateSubcode.ATTRIBUTE_LENGTH_ERROR  # 5
BAD_ORIGIN = UpdateSubcode.INVALID_ORIGIN_ATTRIBUTE  # 6
BAD_NEXT_HOP = UpdateSubcode.INVALID_NEXT_HOP_ATTRIBUTE  # 8
OPTIONAL = UpdateSubcode.OPTIONAL_ATTRIBUTE_ERROR  # 9
NETWORK = UpdateSubcode.INVALID_NETWORK_FIELD  # 10
AS_PATH_ERR = UpdateSubcode.MALFORMED_AS_PATH  # 11
#: A variable-length optional attribute whose length is not a multiple of its unit: RFC 4271 §6.3
#: allows reading it as an Attribute Length Error or as an Optional Attribute Error.
LENGTH_OR_OPTIONAL = (LENGTH, OPTIONAL)
#: RFC 7606 §4 names no subcode for a Total Attribute Length conflict.
LIST_OR_LENGTH = (ATTR_LIST, LENGTH)

EXTENDED = Negotiated(extended_message=True)
#: An external (eBGP) peer: RFC 7606 §7.5, §7.9, §7.10 and RFC 5065 §5 depend on it.
EBGP = Negotiated(ebgp=True)
#: Extended Next Hop negotiated for IPv4 unicast with IPv6 next hops (RFC 8950 §3).
EXT_NEXT_HOP = Negotiated(extended_next_hop=frozenset({(IPV4_UNICAST, 2)}))


# ---------------------------------------------------------------------------------------------
# Byte builders: they only concatenate; every octet that matters is written out below.
# ---------------------------------------------------------------------------------------------

MARKER = b"\xff" * 16


def h(text: str) -> bytes:
    """Hex with spaces between fields."""
    return bytes.fromhex(text)


def header(length: int, msg_type: int) -> bytes:
    """RFC 4271 §4.1: 16-octet marker, 2-octet length (header included), 1-octet type."""
    return MARKER + length.to_bytes(2, "big") + bytes((msg_type,))


def message(msg_type: int, body: bytes) -> bytes:
    """A header whose length field matches ``body``."""
    return header(19 + len(body), msg_type) + body


def raw_update(body: bytes) -> bytes:
    """An UPDATE whose body is given verbatim (for lying length fields)."""
    return message(2, body)


def update(attrs: bytes = b"", nlri: bytes = b"", withdrawn: bytes = b"") -> bytes:
    """RFC 4271 §4.3: withdrawn length, withdrawn routes, total attribute length, attributes, NLRI."""
    return raw_update(
        len(withdrawn).to_bytes(2, "big") + withdrawn + len(attrs).to_bytes(2, "big") + attrs + nlri
    )


KEEPALIVE = message(4, b"")

# Well-formed path attributes (RFC 4271 §4.3: flags, type code, length, value).
ORIGIN_IGP = h(
    "40"  # flags: well-known, transitive
    "01"  # type 1 ORIGIN
    "01"  # length 1
    "00"  # IGP
)
AS_PATH_4 = h(
    "40"  # flags: well-known, transitive
    "02"  # type 2 AS_PATH
    "06"  # length 6
    "02 01"  # AS_SEQUENCE of one AS
    "0000fde9"  # AS 65001, four octets (RFC 6793 session)
)
AS_PATH_2 = h(
    "40"  # flags: well-known, transitive
    "02"  # type 2 AS_PATH
    "04"  # length 4
    "02 01"  # AS_SEQUENCE of one AS
    "fde9"  # AS 65001, two octets (OLD speaker)
)
NEXT_HOP = h(
    "40"  # flags: well-known, transitive
    "03"  # type 3 NEXT_HOP
    "04"  # length 4
    "c0000201"  # 192.0.2.1
)
MED = h(
    "80"  # flags: optional, non-transitive
    "04"  # type 4 MULTI_EXIT_DISC
    "04"  # length 4
    "00000000"  # 0
)
LOCAL_PREF = h(
    "40"  # flags: well-known, transitive
    "05"  # type 5 LOCAL_PREF
    "04"  # length 4
    "00000064"  # 100
)
ATOMIC_AGGREGATE = h(
    "40"  # flags: well-known, transitive
    "06"  # type 6 ATOMIC_AGGREGATE
    "00"  # length 0
)
AGGREGATOR_4 = h(
    "c0"  # flags: optional, transitive
    "07"  # type 7 AGGREGATOR
    "08"  # length 8 (4-octet AS session)
    "0000fde9"  # AS 65001
    "c0000201"  # 192.0.2.1
)
COMMUNITIES = h(
    "c0"  # flags: optional, transitive
    "08"  # type 8 COMMUNITIES
    "04"  # length 4
    "fde90064"  # 65001:100
)
ORIGINATOR_ID = h(
    "80"  # flags: optional, non-transitive
    "09"  # type 9 ORIGINATOR_ID
    "04"  # length 4
    "c0000202"  # 192.0.2.2
)
CLUSTER_LIST = h(
    "80"  # flags: optional, non-transitive
    "0a"  # type 10 CLUSTER_LIST
    "04"  # length 4
    "c0000203"  # 192.0.2.3
)
MP_REACH_V6 = h(
    "80"  # flags: optional, non-transitive
    "0e"  # type 14 MP_REACH_NLRI
    "1a"  # length 26
    "0002 01"  # AFI 2 (IPv6), SAFI 1 (unicast)
    "10"  # next hop length 16
    "20010db8000000000000000000000001"  # 2001:db8::1
    "00"  # reserved
    "20 20010db8"  # 2001:db8::/32
)
MP_UNREACH_V6 = h(
    "80"  # flags: optional, non-transitive
    "0f"  # type 15 MP_UNREACH_NLRI
    "08"  # length 8
    "0002 01"  # AFI 2 (IPv6), SAFI 1 (unicast)
    "20 20010db9"  # 2001:db9::/32
)
EXTENDED_COMMUNITIES = h(
    "c0"  # flags: optional, transitive
    "10"  # type 16 EXTENDED_COMMUNITIES
    "08"  # length 8
    "0002 fde9 00000064"  # route target 65001:100
)
AS4_PATH = h(
    "c0"  # flags: optional, transitive
    "11"  # type 17 AS4_PATH
    "06"  # length 6
    "02 01"  # AS_SEQUENCE of one AS
    "0001d4c0"  # AS 120000
)
LARGE_COMMUNITY = h(
    "c0"  # flags: optional, transitive
    "20"  # type 32 LARGE_COMMUNITY
    "0c"  # length 12
    "0000fde9 00000001 00000002"  # 65001:1:2
)
OTC = h(
    "c0"  # flags: optional, transitive
    "23"  # type 35 OTC
    "04"  # length 4
    "0000fde9"  # AS 65001
)

# The well-known mandatory attributes (RFC 4271 §5), one of each.
BASE = ORIGIN_IGP + AS_PATH_4 + NEXT_HOP
BASE_2 = ORIGIN_IGP + AS_PATH_2 + NEXT_HOP

NLRI = h("18 0a0100")  # 10.1.0.0/24
WITHDRAWN = h("10 0a02")  # 10.2.0.0/16
P_NLRI = "10.1.0.0/24"
P_WITHDRAWN = "10.2.0.0/16"
P_V6 = "2001:db8::/32"
P_V6_UNREACH = "2001:db9::/32"


def mp_reach(value: bytes, flags: int = 0x80) -> bytes:
    """MP_REACH_NLRI (type 14) around ``value``; the one-octet length is counted here."""
    return bytes((flags, 0x0E, len(value))) + value


def mp_unreach(value: bytes, flags: int = 0x80) -> bytes:
    """MP_UNREACH_NLRI (type 15) around ``value``."""
    return bytes((flags, 0x0F, len(value))) + value


# ---------------------------------------------------------------------------------------------
# The UPDATE table.
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class UpdateCase:
    """One malformed (or deliberately well-formed) UPDATE and what RFC 7606 makes of it."""

    description: str
    message: bytes
    ctx: Negotiated
    handling: Handling | tuple[Handling, ...] | None
    subcode: int | tuple[int, ...] | None
    attr_type: int | None
    data: bytes | None = None
    withdrawn: tuple[str, ...] = ()
    announced: tuple[str, ...] = ()
    #: Type codes left in ``update.attributes`` (sorted); None: not checked beyond the defaults.
    attrs: tuple[int, ...] | None = None
    n_errors: int | None = None
    #: Attribute types of every error in ``update.errors`` (sorted).
    error_types: tuple[int | None, ...] | None = None
    #: Next hops of the MP_REACH_NLRI that survives, as strings.
    next_hops: tuple[str, ...] | None = None
    #: A section the strongest error must cite in its ``rfc`` (the rule that made it an error).
    rfc: str | None = None


def row(  # noqa: PLR0917 - positional on purpose: each table row reads as the brief's 6-tuple
    description: str,
    message: bytes,
    ctx: Negotiated,
    handling: Handling | tuple[Handling, ...] | None,
    subcode: int | tuple[int, ...] | None,
    attr_type: int | None,
    *,
    marks: Any = (),
    **expect: Any,
) -> Any:
    """A ``pytest.param`` whose id is the description."""
    case = UpdateCase(description, message, ctx, handling, subcode, attr_type, **expect)
    return pytest.param(case, id=description, marks=marks)


# Shorthands for the common outcome "classic NLRI 10.1.0.0/24 moved to the withdrawn side".
AS_WITHDRAWN = {"withdrawn": (P_NLRI,), "announced": ()}
KEPT = {"withdrawn": (), "announced": (P_NLRI,)}


def _bad(attr: bytes) -> dict[str, Any]:
    """RFC 4271 §6.3: the Data field holds the erroneous attribute (type, length and value)."""
    return {"data": attr}


ORIGIN_LEN_0 = h("40 01 00")  # ORIGIN, length 0
ORIGIN_LEN_2 = h("40 01 02 0000")  # ORIGIN, length 2
ORIGIN_3 = h("40 01 01 03")  # ORIGIN value 3 (only 0, 1, 2 are defined)
ORIGIN_OPTIONAL = h("c0 01 01 00")  # ORIGIN with the Optional bit set
ORIGIN_NOT_TRANSITIVE = h("00 01 01 00")  # ORIGIN without the Transitive bit
NEXT_HOP_LEN_3 = h("40 03 03 c00002")  # NEXT_HOP, length 3
NEXT_HOP_LEN_5 = h("40 03 05 c0000201 00")  # NEXT_HOP, length 5
NEXT_HOP_ZERO = h("40 03 04 00000000")  # NEXT_HOP 0.0.0.0
NEXT_HOP_MULTICAST = h("40 03 04 e0000001")  # NEXT_HOP 224.0.0.1
NEXT_HOP_PARTIAL = h("60 03 04 c0000201")  # NEXT_HOP with the Partial bit set
MED_LEN_3 = h("80 04 03 000064")  # MULTI_EXIT_DISC, length 3
MED_TRANSITIVE = h("c0 04 04 00000064")  # MULTI_EXIT_DISC sent optional *transitive*
MED_PARTIAL = h("a0 04 04 00000064")  # MULTI_EXIT_DISC (optional non-transitive) with Partial
LOCAL_PREF_LEN_5 = h("40 05 05 00000064 00")  # LOCAL_PREF, length 5
ATOMIC_LEN_1 = h("40 06 01 00")  # ATOMIC_AGGREGATE, length 1
ATOMIC_LEN_2 = h("40 06 02 0000")  # ATOMIC_AGGREGATE, length 2
AGGREGATOR_LEN_7 = h("c0 07 07 0000fde9 c00002")  # AGGREGATOR, length 7
AGGREGATOR_LEN_8 = h("c0 07 08 0000fde9 c0000201")  # AGGREGATOR, length 8 (4-octet form)
AGGREGATOR_NON_TRANSITIVE = h("80 07 08 0000fde9 c0000201")  # AGGREGATOR without Transitive
COMMUNITIES_LEN_3 = h("c0 08 03 fde900")  # COMMUNITIES, length 3
COMMUNITIES_LEN_0 = h("c0 08 00")  # COMMUNITIES, length 0
COMMUNITIES_PARTIAL = h("e0 08 04 fde90064")  # COMMUNITIES with Partial (legal: optional transitive)
ORIGINATOR_LEN_3 = h("80 09 03 c00002")  # ORIGINATOR_ID, length 3
CLUSTER_LEN_6 = h("80 0a 06 c0000203 c000")  # CLUSTER_LIST, length 6
CLUSTER_LEN_0 = h("80 0a 00")  # CLUSTER_LIST, length 0
EXT_COMM_LEN_7 = h("c0 10 07 0002fde9 000000")  # EXTENDED_COMMUNITIES, length 7
LARGE_LEN_11 = h("c0 20 0b 0000fde9 00000001 000000")  # LARGE_COMMUNITY, length 11
LARGE_LEN_0 = h("c0 20 00")  # LARGE_COMMUNITY, length 0
OTC_LEN_3 = h("c0 23 03 00fde9")  # OTC, length 3
AS4_AGGREGATOR_LEN_6 = h("c0 12 06 fde9 c0000201")  # AS4_AGGREGATOR, length 6
AS4_PATH_BAD_TYPE = h("c0 11 06 05 01 0001d4c0")  # AS4_PATH, segment type 5
AS4_PATH_LEN_0 = h("c0 11 00")  # AS4_PATH, length 0 (< 6)
AS4_PATH_ODD = h("c0 11 07 02 01 0001d4c0 00")  # AS4_PATH, length 7 (not a multiple of 2)
UNKNOWN_WELL_KNOWN = h("40 63 02 abcd")  # type 99, flags well-known transitive
UNKNOWN_OPTIONAL = h("c0 c8 03 010203")  # type 200, flags optional transitive

MP_REACH_V6_129 = mp_reach(
    h(
        "0002 01"  # AFI 2, SAFI 1
        "10 20010db8000000000000000000000001"  # next hop length 16, 2001:db8::1
        "00"  # reserved
        "81 20010db8000000000000000000000000 00"  # prefix length 129 (> 128) and 17 octets
    )
)
MP_REACH_V6_NH_5 = mp_reach(
    h(
        "0002 01"  # AFI 2, SAFI 1
        "05 20010db800"  # next hop length 5 (IPv6 allows 16 or 32)
        "00"  # reserved
        "20 20010db8"  # 2001:db8::/32
    )
)
MP_REACH_V6_NH_OVERRUN = mp_reach(
    h(
        "0002 01"  # AFI 2, SAFI 1
        "10 2001"  # next hop length 16, but only 2 octets follow
    )
)
MP_REACH_LEN_4 = mp_reach(h("0002 01 10"))  # AFI, SAFI, next-hop length: 4 octets (< 5)
MP_UNREACH_LEN_2 = mp_unreach(h("0002"))  # AFI only: 2 octets (< 3)
MP_UNREACH_V6_129 = mp_unreach(
    h(
        "0002 01"  # AFI 2, SAFI 1
        "81 20010db9000000000000000000000000 00"  # prefix length 129
    )
)
MP_REACH_V6_TRANSITIVE = mp_reach(MP_REACH_V6[3:], flags=0xC0)  # MP_REACH sent optional transitive
MP_UNREACH_V6_TRANSITIVE = mp_unreach(MP_UNREACH_V6[3:], flags=0xC0)

LAST_ATTR_OVERRUNS = h("c0 08 08 fde90064")  # COMMUNITIES claims 8 octets, 4 are left in the field
ONE_OCTET_LEFT = h("c0")  # a lone flags octet at the end of the field
EXT_LEN_THREE_LEFT = h("d0 08 00")  # Extended Length set, only 3 octets left (needs 4)

# Whole UPDATEs after the marker (length, type 2, body), as the brief of the RFC 8950 / RFC 7607 /
# RFC 5065 findings wrote them.
MP_V4_NH_V6_MESSAGE = h(
    "0040 02"  # length 64, UPDATE
    "0000"  # no withdrawn routes
    "0029"  # 41 octets of path attributes
    "400101 00"  # ORIGIN IGP
    "400206 02010000fde9"  # AS_PATH: AS_SEQUENCE 65001
    "800e19"  # MP_REACH_NLRI, length 25
    "0001 01"  # AFI 1 (IPv4), SAFI 1 (unicast)
    "10 20010db8000000000000000000000002"  # next hop length 16: 2001:db8::2
    "00"  # reserved
    "18c61201"  # 198.18.1.0/24
)
MP_REACH_V4_NH_V6 = MP_V4_NH_V6_MESSAGE[-28:]  # the MP_REACH_NLRI attribute alone
AS_PATH_AS_0_MESSAGE = h(
    "0033 02"  # length 51, UPDATE
    "0000"  # no withdrawn routes
    "0018"  # 24 octets of path attributes
    "400101 00"  # ORIGIN IGP
    "40020a 0202 0000fde9 00000000"  # AS_PATH: AS_SEQUENCE 65001, 0
    "4003047f000002"  # NEXT_HOP 127.0.0.2
    "18c63364"  # 198.51.100.0/24
)
CONFED_SEQUENCE_MESSAGE = h(
    "002f 02"  # length 47, UPDATE
    "0000"  # no withdrawn routes
    "0014"  # 20 octets of path attributes
    "400101 00"  # ORIGIN IGP
    "400206 0301 0000fde9"  # AS_PATH: AS_CONFED_SEQUENCE 65001
    "4003047f000002"  # NEXT_HOP 127.0.0.2
    "18c63364"  # 198.51.100.0/24
)
BASE_LOOPBACK = ORIGIN_IGP + AS_PATH_4 + h("40 03 04 7f000002")  # ... NEXT_HOP 127.0.0.2
NLRI_C63364 = h("18 c63364")  # 198.51.100.0/24
P_C63364 = "198.51.100.0/24"
P_C61201 = "198.18.1.0/24"
ORIGINATOR_LEN_5 = h("80 09 05 c000020100")  # ORIGINATOR_ID, length 5
CLUSTER_LEN_5 = h("80 0a 05 c000020100")  # CLUSTER_LIST, length 5
AS4_PATH_AS_0 = h("c0 11 0a 02 02 0001d4c0 00000000")  # AS4_PATH: AS_SEQUENCE 120000, 0
AGGREGATOR_AS_0 = h("c0 07 08 00000000 c0000201")  # AGGREGATOR AS 0, 192.0.2.1 (4-octet session)
AS4_AGGREGATOR_AS_0 = h("c0 12 08 00000000 c0000201")  # AS4_AGGREGATOR AS 0, 192.0.2.1

UPDATE_ERRORS = [
    # --- ORIGIN: RFC 7606 §7.1 (length not 1 or undefined value -> treat-as-withdraw). ---------
    row("origin-length-0", update(ORIGIN_LEN_0 + AS_PATH_4 + NEXT_HOP, NLRI), DEFAULT,
        TAW, LENGTH, 1, **_bad(ORIGIN_LEN_0), **AS_WITHDRAWN),
    row("origin-length-2", update(ORIGIN_LEN_2 + AS_PATH_4 + NEXT_HOP, NLRI), DEFAULT,
        TAW, LENGTH, 1, **_bad(ORIGIN_LEN_2), **AS_WITHDRAWN),
    # RFC 4271 §6.3: undefined value -> Invalid Origin Attribute, Data = the attribute.
    row("origin-value-3", update(ORIGIN_3 + AS_PATH_4 + NEXT_HOP, NLRI), DEFAULT,
        TAW, BAD_ORIGIN, 1, **_bad(ORIGIN_3), **AS_WITHDRAWN),
    # RFC 7606 §3(c): Optional/Transitive bits in conflict -> malformed, treat-as-withdraw;
    # RFC 4271 §6.3: Attribute Flags Error, Data = the attribute.
    row("origin-flags-optional", update(ORIGIN_OPTIONAL + AS_PATH_4 + NEXT_HOP, NLRI), DEFAULT,
        TAW, FLAGS, 1, **_bad(ORIGIN_OPTIONAL), **AS_WITHDRAWN),
    row("origin-flags-not-transitive", update(ORIGIN_NOT_TRANSITIVE + AS_PATH_4 + NEXT_HOP, NLRI),
        DEFAULT, TAW, FLAGS, 1, **_bad(ORIGIN_NOT_TRANSITIVE), **AS_WITHDRAWN),
    # --- AS_PATH: RFC 7606 §7.2 (bad segment type, overrun, underrun, zero-length segment). ----
    row("as-path-segment-type-5", update(ORIGIN_IGP + h("40 02 06 05 01 0000fde9") + NEXT_HOP, NLRI),
        DEFAULT, TAW, AS_PATH_ERR, 2, **AS_WITHDRAWN),
    row("as-path-segment-overrun",  # segment says 2 ASes, one follows
        update(ORIGIN_IGP + h("40 02 06 02 02 0000fde9") + NEXT_HOP, NLRI),
        DEFAULT, TAW, AS_PATH_ERR, 2, **AS_WITHDRAWN),
    row("as-path-one-octet-underrun",  # a good segment, then a single stray octet
        update(ORIGIN_IGP + h("40 02 07 02 01 0000fde9 02") + NEXT_HOP, NLRI),
        DEFAULT, TAW, AS_PATH_ERR, 2, **AS_WITHDRAWN),
    row("as-path-zero-length-segment", update(ORIGIN_IGP + h("40 02 02 02 00") + NEXT_HOP, NLRI),
        DEFAULT, TAW, AS_PATH_ERR, 2, **AS_WITHDRAWN),
    row("as-path-odd-length-two-octet",  # 2-octet segment + 1 stray octet: length 5
        update(ORIGIN_IGP + h("40 02 05 02 01 fde9 00") + NEXT_HOP, NLRI),
        TWO_OCTET, TAW, AS_PATH_ERR, 2, **AS_WITHDRAWN),
    # --- NEXT_HOP: RFC 7606 §7.3 (length not 4); RFC 4271 §6.3 (not a valid host address). -----
    row("next-hop-length-3", update(ORIGIN_IGP + AS_PATH_4 + NEXT_HOP_LEN_3, NLRI), DEFAULT,
        TAW, LENGTH, 3, **_bad(NEXT_HOP_LEN_3), **AS_WITHDRAWN),
    row("next-hop-length-5", update(ORIGIN_IGP + AS_PATH_4 + NEXT_HOP_LEN_5, NLRI), DEFAULT,
        TAW, LENGTH, 3, **_bad(NEXT_HOP_LEN_5), **AS_WITHDRAWN),
    row("next-hop-0.0.0.0", update(ORIGIN_IGP + AS_PATH_4 + NEXT_HOP_ZERO, NLRI), DEFAULT,
        TAW, BAD_NEXT_HOP, 3, **_bad(NEXT_HOP_ZERO), **AS_WITHDRAWN),
    row("next-hop-224.0.0.1", update(ORIGIN_IGP + AS_PATH_4 + NEXT_HOP_MULTICAST, NLRI), DEFAULT,
        TAW, BAD_NEXT_HOP, 3, **_bad(NEXT_HOP_MULTICAST), **AS_WITHDRAWN),
    # --- Fixed-length optional and well-known attributes, treat-as-withdraw. -------------------
    row("med-length-3", update(BASE + MED_LEN_3, NLRI), DEFAULT,  # RFC 7606 §7.4
        TAW, LENGTH, 4, **_bad(MED_LEN_3), **AS_WITHDRAWN),
    # RFC 7606 §7.5 (read as iBGP: the codec does not know the session type; from eBGP the
    # attribute would be discarded whatever its length).
    row("local-pref-length-5", update(BASE + LOCAL_PREF_LEN_5, NLRI), DEFAULT,
        TAW, LENGTH, 5, **_bad(LOCAL_PREF_LEN_5), **AS_WITHDRAWN),
    row("originator-id-length-3", update(BASE + ORIGINATOR_LEN_3, NLRI), DEFAULT,  # RFC 7606 §7.9
        TAW, LENGTH, 9, **_bad(ORIGINATOR_LEN_3), **AS_WITHDRAWN),
    row("otc-length-3", update(BASE + OTC_LEN_3, NLRI), DEFAULT,  # RFC 9234 §5
        TAW, LENGTH, 35, **_bad(OTC_LEN_3), **AS_WITHDRAWN),
    # --- Variable-length optional attributes: "not a non-zero multiple of N" -> treat-as-withdraw.
    row("cluster-list-length-6", update(BASE + CLUSTER_LEN_6, NLRI), DEFAULT,  # RFC 7606 §7.10
        TAW, LENGTH_OR_OPTIONAL, 10, **_bad(CLUSTER_LEN_6), **AS_WITHDRAWN),
    row("cluster-list-length-0", update(BASE + CLUSTER_LEN_0, NLRI), DEFAULT,
        TAW, LENGTH_OR_OPTIONAL, 10, **_bad(CLUSTER_LEN_0), **AS_WITHDRAWN),
    row("communities-length-3", update(BASE + COMMUNITIES_LEN_3, NLRI), DEFAULT,  # RFC 7606 §7.8
        TAW, LENGTH_OR_OPTIONAL, 8, **_bad(COMMUNITIES_LEN_3), **AS_WITHDRAWN),
    row("communities-length-0", update(BASE + COMMUNITIES_LEN_0, NLRI), DEFAULT,
        TAW, LENGTH_OR_OPTIONAL, 8, **_bad(COMMUNITIES_LEN_0), **AS_WITHDRAWN),
    row("extended-communities-length-7", update(BASE + EXT_COMM_LEN_7, NLRI), DEFAULT,  # §7.14
        TAW, LENGTH_OR_OPTIONAL, 16, **_bad(EXT_COMM_LEN_7), **AS_WITHDRAWN),
    row("large-community-length-11", update(BASE + LARGE_LEN_11, NLRI), DEFAULT,  # RFC 8092 §6
        TAW, LENGTH_OR_OPTIONAL, 32, **_bad(LARGE_LEN_11), **AS_WITHDRAWN),
    row("large-community-length-0", update(BASE + LARGE_LEN_0, NLRI), DEFAULT,
        TAW, LENGTH_OR_OPTIONAL, 32, **_bad(LARGE_LEN_0), **AS_WITHDRAWN),
    # --- Attribute discard: the bad attribute goes, the route and the rest stay. ---------------
    row("atomic-aggregate-length-1", update(BASE + ATOMIC_LEN_1, NLRI), DEFAULT,  # RFC 7606 §7.6
        DISCARD, LENGTH, 6, **_bad(ATOMIC_LEN_1), **KEPT, attrs=(1, 2, 3)),
    row("aggregator-length-7-four-octet", update(BASE + AGGREGATOR_LEN_7, NLRI), DEFAULT,  # §7.7
        DISCARD, LENGTH, 7, **_bad(AGGREGATOR_LEN_7), **KEPT, attrs=(1, 2, 3)),
    row("aggregator-length-8-two-octet", update(BASE_2 + AGGREGATOR_LEN_8, NLRI), TWO_OCTET,
        DISCARD, LENGTH, 7, **_bad(AGGREGATOR_LEN_8), **KEPT, attrs=(1, 2, 3)),
    # RFC 6793 §6: malformed AS4_AGGREGATOR -> attribute discard. Its length is fixed at 8, and
    # RFC 4271 §6.3 says a length that "conflicts with the expected length (based on the
    # attribute type code)" is an Attribute Length Error (AGGREGATOR, above, gets exactly that).
    row("as4-aggregator-length-6", update(BASE_2 + AS4_AGGREGATOR_LEN_6, NLRI), TWO_OCTET,
        DISCARD, LENGTH, 18, **_bad(AS4_AGGREGATOR_LEN_6), **KEPT, attrs=(1, 2, 3),
        ),
    # RFC 6793 §6: AS4_PATH malformed (bad segment type; length < 6; length not a multiple of 2)
    # from an OLD speaker -> attribute discard. RFC 4271 §6.3: recognised optional attribute ->
    # Optional Attribute Error, Data = the attribute.
    row("as4-path-segment-type-5", update(BASE_2 + AS4_PATH_BAD_TYPE, NLRI), TWO_OCTET,
        DISCARD, OPTIONAL, 17, **_bad(AS4_PATH_BAD_TYPE), **KEPT, attrs=(1, 2, 3)),
    row("as4-path-length-0", update(BASE_2 + AS4_PATH_LEN_0, NLRI), TWO_OCTET,
        DISCARD, OPTIONAL, 17, **_bad(AS4_PATH_LEN_0), **KEPT, attrs=(1, 2, 3)),
    row("as4-path-odd-length", update(BASE_2 + AS4_PATH_ODD, NLRI), TWO_OCTET,
        DISCARD, OPTIONAL, 17, **_bad(AS4_PATH_ODD), **KEPT, attrs=(1, 2, 3)),
    # RFC 6793 §6: "A NEW BGP speaker that receives the AS4_PATH attribute ... from another NEW
    # BGP speaker MUST discard the path attribute and continue processing". No subcode is named.
    row("as4-path-between-new-speakers", update(BASE + AS4_PATH, NLRI), DEFAULT,
        DISCARD, None, 17, **KEPT, attrs=(1, 2, 3),
        ),
    # --- Flags conflicts (RFC 7606 §3(c), RFC 4271 §4.3 and §6.3). ----------------------------
    row("med-flags-transitive", update(BASE + MED_TRANSITIVE, NLRI), DEFAULT,
        TAW, FLAGS, 4, **_bad(MED_TRANSITIVE), **AS_WITHDRAWN),
    # RFC 4271 §4.3: "For well-known attributes and for optional non-transitive attributes, the
    # Partial bit MUST be set to 0"; a malformed NEXT_HOP/MED is treat-as-withdraw (§7.3, §7.4).
    row("next-hop-flags-partial", update(ORIGIN_IGP + AS_PATH_4 + NEXT_HOP_PARTIAL, NLRI), DEFAULT,
        TAW, FLAGS, 3, **_bad(NEXT_HOP_PARTIAL), **AS_WITHDRAWN),
    row("med-flags-partial", update(BASE + MED_PARTIAL, NLRI), DEFAULT,
        TAW, FLAGS, 4, **_bad(MED_PARTIAL), **AS_WITHDRAWN),
    # Partial on an optional transitive attribute is legal (RFC 4271 §5).
    row("communities-partial-is-fine", update(BASE + COMMUNITIES_PARTIAL, NLRI), DEFAULT,
        None, None, None, **KEPT, attrs=(1, 2, 3, 8)),
    # RFC 7606 §3(c): a flags conflict is treat-as-withdraw "unless the specification for the
    # attribute mandates different handling for incorrect Attribute Flags"; §7.7 defines AGGREGATOR
    # malformation by length only and says nothing about flags.
    row("aggregator-flags-non-transitive", update(BASE + AGGREGATOR_NON_TRANSITIVE, NLRI), DEFAULT,
        TAW, FLAGS, 7, **_bad(AGGREGATOR_NON_TRANSITIVE), **AS_WITHDRAWN,
        ),
    # --- Duplicates (RFC 7606 §3(g)). -----------------------------------------------------------
    row("origin-twice-first-kept", update(BASE + h("40 01 01 02"), NLRI), DEFAULT,
        DISCARD, ATTR_LIST, 1, **KEPT, attrs=(1, 2, 3)),
    row("mp-reach-twice", update(BASE + MP_REACH_V6 + MP_REACH_V6), DEFAULT,
        RESET, ATTR_LIST, 14),
    row("mp-unreach-twice", update(MP_UNREACH_V6 + MP_UNREACH_V6), DEFAULT,
        RESET, ATTR_LIST, 15),
    # --- Missing well-known mandatory attributes (RFC 7606 §3(d); RFC 4271 §6.3: Data = type). -
    row("missing-origin", update(AS_PATH_4 + NEXT_HOP, NLRI), DEFAULT,
        TAW, MISSING, 1, data=b"\x01", **AS_WITHDRAWN),
    row("missing-as-path", update(ORIGIN_IGP + NEXT_HOP, NLRI), DEFAULT,
        TAW, MISSING, 2, data=b"\x02", **AS_WITHDRAWN),
    row("missing-next-hop", update(ORIGIN_IGP + AS_PATH_4, NLRI), DEFAULT,
        TAW, MISSING, 3, data=b"\x03", **AS_WITHDRAWN),
    row("missing-origin-mp-reach", update(AS_PATH_4 + MP_REACH_V6), DEFAULT,
        TAW, MISSING, 1, data=b"\x01", withdrawn=(P_V6,), attrs=(15,)),
    row("withdrawals-only-no-attributes", update(withdrawn=WITHDRAWN), DEFAULT,
        None, None, None, withdrawn=(P_WITHDRAWN,), attrs=()),
    # RFC 4760 §3: NEXT_HOP is not needed when the only NLRI are in MP_REACH_NLRI.
    row("mp-reach-only-without-next-hop", update(ORIGIN_IGP + AS_PATH_4 + MP_REACH_V6), DEFAULT,
        None, None, None, announced=(P_V6,), attrs=(1, 2, 14)),
    # --- Unrecognised attributes (RFC 4271 §6.3: Data = the attribute; RFC 4271 §5). ----------
    row("unrecognised-well-known", update(BASE + UNKNOWN_WELL_KNOWN, NLRI), DEFAULT,
        RESET, UNRECOGNIZED, 99, **_bad(UNKNOWN_WELL_KNOWN)),
    row("unknown-optional-kept", update(BASE + UNKNOWN_OPTIONAL, NLRI), DEFAULT,
        None, None, None, **KEPT, attrs=(1, 2, 3, 200)),
    # --- Total length conflicts (RFC 7606 §4 and §3(b)). --------------------------------------
    # "the Total Attribute Length MUST be relied upon to enable the beginning of the NLRI field
    # to be located" -> the NLRI after the field are found and withdrawn.
    row("last-attribute-overruns-field", update(BASE + LAST_ATTR_OVERRUNS, NLRI), DEFAULT,
        TAW, LIST_OR_LENGTH, 8, **AS_WITHDRAWN),
    row("one-octet-left-in-field", update(BASE + ONE_OCTET_LEFT, NLRI), DEFAULT,
        TAW, LIST_OR_LENGTH, None, **AS_WITHDRAWN),
    row("extended-length-three-octets-left", update(BASE + EXT_LEN_THREE_LEFT, NLRI), DEFAULT,
        TAW, LIST_OR_LENGTH, 8, **AS_WITHDRAWN),
    # RFC 4271 §6.3 / RFC 7606 §3(b): "Withdrawn Routes Length + Total Attribute Length + 23
    # exceeds the message Length" -> Malformed Attribute List, session reset.
    row("withdrawn-length-exceeds-message", raw_update(h("00ff 0000") + NLRI), DEFAULT,
        RESET, ATTR_LIST, None),
    row("attribute-length-exceeds-message", raw_update(h("0000 00ff") + BASE + NLRI), DEFAULT,
        RESET, ATTR_LIST, None),
    # --- NLRI syntax (RFC 7606 §3(i), §3(j), §5.3; RFC 4271 §6.3: Invalid Network Field). -----
    row("nlri-prefix-length-33", update(BASE, h("21 0a010000 00")), DEFAULT,
        RESET, NETWORK, None),
    row("nlri-prefix-overrun", update(BASE, h("18 0a01")), DEFAULT,  # /24 with 2 octets
        RESET, NETWORK, None),
    row("withdrawn-prefix-length-33", update(withdrawn=h("21 0a020000 00")), DEFAULT,
        RESET, NETWORK, None),
    # RFC 7606 §5.3: MP NLRI longer than the AFI allows -> session reset or AFI/SAFI disable;
    # RFC 4760 §7: subcode Optional Attribute Error; RFC 4271 §6.3: Data = the attribute.
    row("mp-reach-ipv6-prefix-length-129", update(ORIGIN_IGP + AS_PATH_4 + MP_REACH_V6_129), DEFAULT,
        DISABLE, OPTIONAL, 14, **_bad(MP_REACH_V6_129)),
    row("mp-unreach-ipv6-prefix-length-129", update(MP_UNREACH_V6_129), DEFAULT,
        DISABLE, OPTIONAL, 15, **_bad(MP_UNREACH_V6_129)),
    # RFC 7606 §5.3: MP_REACH shorter than 5 / MP_UNREACH shorter than 3 octets is incorrect.
    row("mp-reach-length-4", update(ORIGIN_IGP + AS_PATH_4 + MP_REACH_LEN_4), DEFAULT,
        DISABLE_OR_RESET, OPTIONAL, 14, **_bad(MP_REACH_LEN_4)),
    row("mp-unreach-length-2", update(MP_UNREACH_LEN_2), DEFAULT,
        DISABLE_OR_RESET, OPTIONAL, 15, **_bad(MP_UNREACH_LEN_2)),
    row("mp-reach-next-hop-overruns", update(ORIGIN_IGP + AS_PATH_4 + MP_REACH_V6_NH_OVERRUN), DEFAULT,
        DISABLE_OR_RESET, (OPTIONAL, LENGTH), 14),
    # RFC 7606 §7.11: an inconsistent Length of Next Hop Network Address means "it will not be
    # possible to reliably locate the NLRI; thus, the 'session reset' or 'AFI/SAFI disable'
    # approach MUST be used".
    row("mp-reach-ipv6-next-hop-length-5", update(ORIGIN_IGP + AS_PATH_4 + MP_REACH_V6_NH_5), DEFAULT,
        DISABLE_OR_RESET, (OPTIONAL, LENGTH), 14,
        ),
    # RFC 7606 §5.3: MP_REACH/MP_UNREACH are incorrect if "the attribute flags are inconsistent
    # with those specified in [RFC4760]"; §3(j): then session reset or AFI/SAFI disable.
    row("mp-reach-flags-transitive", update(ORIGIN_IGP + AS_PATH_4 + MP_REACH_V6_TRANSITIVE), DEFAULT,
        DISABLE_OR_RESET, (FLAGS, OPTIONAL), 14, **_bad(MP_REACH_V6_TRANSITIVE),
        ),
    row("mp-unreach-flags-transitive", update(MP_UNREACH_V6_TRANSITIVE), DEFAULT,
        DISABLE_OR_RESET, (FLAGS, OPTIONAL), 15, **_bad(MP_UNREACH_V6_TRANSITIVE),
        ),
    # --- RFC 7606 §5.2: attributes but no reachable NLRI. ---------------------------------------
    # "if any path attribute errors are encountered in such an UPDATE message and if any
    # encountered error specifies an error-handling approach other than 'attribute discard', then
    # the 'session reset' approach MUST be used."
    row("no-reachable-nlri-escalates-to-reset",
        update(ORIGIN_LEN_2 + AS_PATH_4 + NEXT_HOP, withdrawn=WITHDRAWN), DEFAULT,
        RESET, LENGTH, 1, **_bad(ORIGIN_LEN_2),
        ),
    row("no-reachable-nlri-discard-stays-discard",
        update(BASE + ATOMIC_LEN_1, withdrawn=WITHDRAWN), DEFAULT,
        DISCARD, LENGTH, 6, **_bad(ATOMIC_LEN_1), withdrawn=(P_WITHDRAWN,), attrs=(1, 2, 3)),
    # --- Any order; one bad attribute never desynchronises the next. --------------------------
    row("discard-first-then-reverse-order",
        update(ATOMIC_LEN_2 + LARGE_COMMUNITY + COMMUNITIES + LOCAL_PREF + MED + NEXT_HOP + AS_PATH_4
               + ORIGIN_IGP, NLRI),
        DEFAULT, DISCARD, LENGTH, 6, **_bad(ATOMIC_LEN_2), **KEPT, attrs=(1, 2, 3, 4, 5, 8, 32),
        n_errors=1),
    row("bad-med-then-large-community", update(BASE + MED_LEN_3 + LARGE_COMMUNITY, NLRI), DEFAULT,
        TAW, LENGTH, 4, **_bad(MED_LEN_3), **AS_WITHDRAWN, n_errors=1),
    # --- Several errors fold with max() (RFC 7606 §3(h)). -------------------------------------
    row("discard-plus-withdraw", update(BASE + ATOMIC_LEN_1 + MED_LEN_3, NLRI), DEFAULT,
        TAW, LENGTH, 4, **_bad(MED_LEN_3), **AS_WITHDRAWN, n_errors=2, error_types=(4, 6)),
    row("withdraw-plus-discard-order-swapped", update(BASE + MED_LEN_3 + ATOMIC_LEN_1, NLRI), DEFAULT,
        TAW, LENGTH, 4, **_bad(MED_LEN_3), **AS_WITHDRAWN, n_errors=2, error_types=(4, 6)),
    row("discard-plus-session-reset", update(BASE + ATOMIC_LEN_1 + UNKNOWN_WELL_KNOWN, NLRI), DEFAULT,
        RESET, UNRECOGNIZED, 99, **_bad(UNKNOWN_WELL_KNOWN)),
    row("withdraw-plus-afi-safi-disable", update(ORIGIN_LEN_2 + AS_PATH_4 + MP_REACH_V6_129), DEFAULT,
        DISABLE, OPTIONAL, 14, **_bad(MP_REACH_V6_129)),
    # --- Rules that depend on the session (external peer, Extended Next Hop, RFC 7607). -------
    # RFC 8950 §3: IPv4 NLRI may carry an IPv6 next hop only once Extended Next Hop is negotiated.
    # Without it the Length of Next Hop Network Address is "inconsistent with that which was
    # expected": RFC 7606 §7.11 makes that session reset or AFI/SAFI disable (nothing stored).
    row("mp-reach-ipv4-nlri-ipv6-next-hop-without-extended-next-hop", MARKER + MP_V4_NH_V6_MESSAGE,
        DEFAULT, DISABLE_OR_RESET, OPTIONAL, 14, **_bad(MP_REACH_V4_NH_V6), rfc="RFC 8950 §3"),
    row("mp-reach-ipv4-nlri-ipv6-next-hop-with-extended-next-hop", MARKER + MP_V4_NH_V6_MESSAGE,
        EXT_NEXT_HOP, None, None, None, announced=(P_C61201,), attrs=(1, 2, 14),
        next_hops=("2001:db8::2",)),
    # RFC 7607 §2: AS 0 in AS_PATH makes it malformed -> RFC 7606 §7.2 treat-as-withdraw.
    row("as-path-as-0", MARKER + AS_PATH_AS_0_MESSAGE, DEFAULT,
        TAW, AS_PATH_ERR, 2, withdrawn=(P_C63364,), announced=(), rfc="RFC 7607 §2"),
    row("as-path-as-0-two-octet", update(ORIGIN_IGP + h("40 02 06 02 02 fde9 0000") + NEXT_HOP, NLRI),
        TWO_OCTET, TAW, AS_PATH_ERR, 2, **AS_WITHDRAWN, rfc="RFC 7607 §2"),
    # RFC 7607 §2 for AS4_PATH, AGGREGATOR and AS4_AGGREGATOR: malformed, and their own rules
    # (RFC 6793 §6, RFC 7606 §7.7) make that attribute discard; RFC 4271 §6.3: Optional Attribute
    # Error, Data = the attribute.
    row("as4-path-as-0", update(BASE_2 + AS4_PATH_AS_0, NLRI), TWO_OCTET,
        DISCARD, OPTIONAL, 17, **_bad(AS4_PATH_AS_0), **KEPT, attrs=(1, 2, 3), rfc="RFC 7607 §2"),
    row("aggregator-as-0", update(BASE + AGGREGATOR_AS_0, NLRI), DEFAULT,
        DISCARD, OPTIONAL, 7, **_bad(AGGREGATOR_AS_0), **KEPT, attrs=(1, 2, 3), rfc="RFC 7607 §2"),
    row("as4-aggregator-as-0", update(BASE_2 + AS4_AGGREGATOR_AS_0, NLRI), TWO_OCTET,
        DISCARD, OPTIONAL, 18, **_bad(AS4_AGGREGATOR_AS_0), **KEPT, attrs=(1, 2, 3), rfc="RFC 7607 §2"),
    # RFC 5065 §5: confederation segments from a peer outside the confederation (every external
    # peer: bgpsvc runs none) make a malformed AS_PATH -> RFC 7606 §7.2 treat-as-withdraw.
    row("as-confed-sequence-from-external-peer", MARKER + CONFED_SEQUENCE_MESSAGE, EBGP,
        TAW, AS_PATH_ERR, 2, withdrawn=(P_C63364,), announced=(), rfc="RFC 5065 §5"),
    row("as-confed-set-from-external-peer",
        update(ORIGIN_IGP + h("40 02 06 04 01 0000fde9") + NEXT_HOP, NLRI), EBGP,
        TAW, AS_PATH_ERR, 2, **AS_WITHDRAWN, rfc="RFC 5065 §5"),
    # From an internal peer they stay as they are (confederations are out of scope).
    row("as-confed-sequence-from-internal-peer", MARKER + CONFED_SEQUENCE_MESSAGE, DEFAULT,
        None, None, None, withdrawn=(), announced=(P_C63364,), attrs=(1, 2, 3)),
    # RFC 7606 §7.9/§7.10: ORIGINATOR_ID and CLUSTER_LIST from an external peer are discarded
    # ("attribute discard") whatever they hold, and the route is kept; the length check
    # (treat-as-withdraw) is for internal peers. The RFC names no subcode for the discard.
    row("originator-id-length-5-from-external-peer", update(BASE_LOOPBACK + ORIGINATOR_LEN_5, NLRI_C63364),
        EBGP, DISCARD, None, 9, **_bad(ORIGINATOR_LEN_5), withdrawn=(), announced=(P_C63364,),
        attrs=(1, 2, 3), rfc="RFC 7606 §7.9"),
    row("cluster-list-length-5-from-external-peer", update(BASE_LOOPBACK + CLUSTER_LEN_5, NLRI_C63364),
        EBGP, DISCARD, None, 10, **_bad(CLUSTER_LEN_5), withdrawn=(), announced=(P_C63364,),
        attrs=(1, 2, 3), rfc="RFC 7606 §7.10"),
    row("originator-id-and-cluster-list-from-external-peer",
        update(BASE + ORIGINATOR_ID + CLUSTER_LIST + COMMUNITIES, NLRI), EBGP,
        DISCARD, None, 9, **KEPT, attrs=(1, 2, 3, 8), n_errors=2, error_types=(9, 10)),
    row("originator-id-length-5-from-internal-peer", update(BASE_LOOPBACK + ORIGINATOR_LEN_5, NLRI_C63364),
        DEFAULT, TAW, LENGTH, 9, **_bad(ORIGINATOR_LEN_5), withdrawn=(P_C63364,), announced=()),
    row("cluster-list-length-5-from-internal-peer", update(BASE_LOOPBACK + CLUSTER_LEN_5, NLRI_C63364),
        DEFAULT, TAW, LENGTH_OR_OPTIONAL, 10, **_bad(CLUSTER_LEN_5), withdrawn=(P_C63364,), announced=()),
    # RFC 7606 §7.5: LOCAL_PREF from an external peer goes too, silently (RFC 4271 §5.1.5: ignored).
    row("local-pref-length-5-from-external-peer", update(BASE + LOCAL_PREF_LEN_5, NLRI), EBGP,
        None, None, None, **KEPT, attrs=(1, 2, 3)),
]  # fmt: skip


def _as_tuple(value: Any) -> tuple[Any, ...]:
    return value if isinstance(value, tuple) else (value,)


def _prefixes(pairs: list[Any]) -> list[str]:
    return sorted(str(p) for _, p in pairs)


def _check_update_case(case: UpdateCase, outcome: Any) -> None:
    """Compare a decode outcome (an ``Update`` or the exception it raised) with the row."""
    handlings = _as_tuple(case.handling)
    if case.handling is not None and min(handlings) >= DISABLE:
        assert isinstance(outcome, UpdateMessageError), f"expected a raise, got {outcome!r}"
        exc = outcome
        assert exc.code == 3
        assert exc.handling in handlings
        assert exc.subcode in _as_tuple(case.subcode)
        assert exc.attr_type == case.attr_type
        if case.data is not None:
            assert exc.data.hex() == case.data.hex()
        _check_error_fields(exc, case)
        return
    if isinstance(outcome, BaseException):
        raise outcome
    assert isinstance(outcome, Update)
    update = outcome
    if case.handling is None:
        assert update.errors == ()
        assert update.handling is None
    else:
        assert update.handling in handlings
        assert all(isinstance(e, UpdateMessageError) and e.code == 3 for e in update.errors)
        assert update.handling == max(e.handling for e in update.errors)
        worst = max(update.errors, key=lambda e: e.handling)
        if case.subcode is not None:
            assert worst.subcode in _as_tuple(case.subcode)
        assert worst.attr_type == case.attr_type
        if case.data is not None:
            assert worst.data.hex() == case.data.hex()
        _check_error_fields(worst, case)
    for e in update.errors:
        _check_error_fields(e)
    if case.n_errors is not None:
        assert len(update.errors) == case.n_errors, update.errors
    if case.error_types is not None:
        assert sorted(e.attr_type or 0 for e in update.errors) == sorted(t or 0 for t in case.error_types)
    assert _prefixes(update.withdrawals()) == sorted(case.withdrawn)
    assert _prefixes(update.announced()) == sorted(case.announced)
    if update.handling == TAW:
        # RFC 7606 §2: every route is withdrawn and no other attribute survives.
        assert update.announced() == []
        assert all(isinstance(a, MpUnreachNlri) for a in update.attributes)
    if case.attrs is not None:
        assert sorted(a.type_code for a in update.attributes) == sorted(case.attrs)
    if case.next_hops is not None:
        mp = update.get(MpReachNlri)
        assert isinstance(mp, MpReachNlri)
        assert tuple(str(a) for a in mp.next_hop) == case.next_hops


_LABELS = {"attribute-discard", "treat-as-withdraw", "afi-safi-disable", "session-reset"}


def _check_error_fields(error: UpdateMessageError, case: UpdateCase | None = None) -> None:
    """What the session logs for an outcome: attribute (code and name), handling, RFC section, reason."""
    assert error.handling.label in _LABELS
    assert error.rfc.startswith("RFC "), error
    assert error.reason
    if error.attr_type is None:
        assert error.attr_name is None
    else:
        try:
            assert error.attr_name == AttrType(error.attr_type).name
        except ValueError:
            assert error.attr_name == f"ATTR_{error.attr_type}"
        assert f"{error.attr_name} ({error.attr_type})" in error.summary
    assert error.handling.label in error.summary and error.rfc in error.summary
    if case is not None and case.rfc is not None:
        assert case.rfc in error.rfc, error


def _outcome(run: Any) -> Any:
    try:
        return run()
    except NotificationError as exc:
        return exc


def _trickle(data: bytes, ctx: Negotiated) -> Any:
    """Feed ``data`` and a KEEPALIVE one byte at a time; return the first message."""
    framer = Framer(ctx.max_message_size)
    got: list[Any] = []
    for byte in data + KEEPALIVE:
        framer.feed(bytes((byte,)))
        while (msg := framer.next_message(ctx)) is not None:
            got.append(msg)
    assert len(got) == 2
    assert isinstance(got[1], Keepalive)
    assert framer.pending() == 0
    return got[0]


@pytest.mark.parametrize("case", UPDATE_ERRORS)
def test_update_error(case: UpdateCase) -> None:
    _check_update_case(case, _outcome(lambda: decode(case.message, case.ctx)))


@pytest.mark.parametrize("case", UPDATE_ERRORS)
def test_update_error_fed_one_byte_at_a_time(case: UpdateCase) -> None:
    _check_update_case(case, _outcome(lambda: _trickle(case.message, case.ctx)))


def test_update_table_messages_have_consistent_headers() -> None:
    """Every UPDATE vector is one whole message: its header length matches its size."""
    for param in UPDATE_ERRORS:
        case = param.values[0]
        assert case.message[:16] == MARKER
        assert int.from_bytes(case.message[16:18], "big") == len(case.message), case.description
        assert case.message[18] == 2


def test_duplicate_origin_keeps_the_first() -> None:
    """RFC 7606 §3(g): "all the occurrences of the attribute other than the first one SHALL be
    discarded"."""
    got = decode(update(BASE + h("40 01 01 02"), NLRI))  # second ORIGIN says INCOMPLETE
    assert isinstance(got, Update)
    origin = got.get(Origin)
    assert isinstance(origin, Origin)
    assert origin.value == 0


def test_unknown_optional_attribute_is_kept_byte_exact() -> None:
    """RFC 4271 §5: an unrecognised optional attribute is kept (and passed on if transitive)."""
    got = decode(update(BASE + UNKNOWN_OPTIONAL, NLRI))
    assert isinstance(got, Update)
    unknown = [a for a in got.attributes if isinstance(a, UnknownAttribute)]
    assert unknown == [UnknownAttribute(200, 0xC0, h("010203"))]


def test_bad_med_does_not_desynchronise_the_next_attribute() -> None:
    """The attribute after a malformed one is parsed from its own header (RFC 7606 §4)."""
    attrs, errors = decode_attributes(BASE + MED_LEN_3 + LARGE_COMMUNITY, DEFAULT, has_nlri=True)
    assert [(e.attr_type, e.subcode) for e in errors] == [(4, LENGTH)]
    assert LargeCommunities(((65001, 1, 2),)) in attrs


# ---------------------------------------------------------------------------------------------
# Header, OPEN, NOTIFICATION, KEEPALIVE and ROUTE-REFRESH errors.
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MessageCase:
    """One malformed message and the NOTIFICATION it must raise (``data`` None: not specified)."""

    description: str
    message: bytes
    ctx: Negotiated
    error: type[NotificationError]
    code: int
    subcode: int | None
    data: bytes | None


def open_body(
    version: int = 4, hold_time: int = 90, bgp_id: str = "c0000201", params: bytes = b"", opt_len: int = -1
) -> bytes:
    """RFC 4271 §4.2: version, My AS 65001, hold time, BGP identifier, opt-param length, params."""
    return (
        bytes((version,))
        + h("fde9")  # My Autonomous System 65001
        + hold_time.to_bytes(2, "big")
        + h(bgp_id)
        + bytes((len(params) if opt_len < 0 else opt_len,))
        + params
    )


def big_update(total: int) -> bytes:
    """A valid UPDATE of exactly ``total`` octets: BASE attributes and many /32 NLRI."""
    room = total - 19 - 4 - len(BASE)
    count, rest = divmod(room, 5)
    nlri = h("20 0a000001") * count  # 10.0.0.1/32, repeated
    if rest:
        nlri += bytes(((rest - 1) * 8,)) + bytes(rest - 1)  # one /0, /8, /16 or /24 of zeros
    msg = update(BASE, nlri)
    assert len(msg) == total
    return msg


def big_open() -> bytes:
    """An OPEN of 4404 octets: RFC 9072 extended optional parameters full of unknown capabilities."""
    caps = b"".join(h("80 ff") + bytes(255) for _ in range(17))  # 17 x (capability 128, length 255)
    param = h("02") + len(caps).to_bytes(2, "big") + caps  # Capabilities parameter, 2-octet length
    body = (
        h("04 fde9 005a c0000201")  # version 4, AS 65001, hold 90, BGP ID 192.0.2.1
        + h("ff")  # Non-Ext OP Len 255
        + h("ff")  # Non-Ext OP Type 255: extended form follows (RFC 9072 §2)
        + len(param).to_bytes(2, "big")  # Extended Opt. Parm. Length
        + param
    )
    return message(1, body)


OPEN_HOLD_1 = message(1, open_body(hold_time=1))
MP_CAP_LEN_3 = h(
    "02 05"  # optional parameter: Capabilities, length 5
    "01 03"  # capability 1 (Multiprotocol), length 3 (must be 4)
    "0001 01"  # AFI 1, SAFI 1, no reserved octet
)
ROUTE_REFRESH_24 = message(5, h("0001 01 01 00"))  # AFI 1, subtype 1 (BoRR), SAFI 1, stray octet


def mrow(  # noqa: PLR0917 - positional on purpose: (description, bytes, class, code, subcode, data)
    description: str,
    message_bytes: bytes,
    error: type[NotificationError],
    code: int,
    subcode: int | None,
    data: bytes | None,
    ctx: Negotiated = DEFAULT,
) -> Any:
    """A ``pytest.param`` for the message table."""
    return pytest.param(
        MessageCase(description, message_bytes, ctx, error, code, subcode, data), id=description
    )


MESSAGE_ERRORS = [
    # RFC 4271 §6.1: marker not as expected -> Connection Not Synchronized (no Data specified).
    mrow("marker-not-all-ones", b"\xff" * 15 + h("fe 0013 04"), MessageHeaderError, 1, 1, None),
    # RFC 4271 §6.1: Bad Message Length, "The Data field MUST contain the erroneous Length field".
    mrow("length-18", header(18, 4), MessageHeaderError, 1, 2, h("0012")),
    mrow("length-4097", header(4097, 2) + bytes(4097 - 19), MessageHeaderError, 1, 2, h("1001")),
    mrow("keepalive-length-20", header(20, 4) + h("00"), MessageHeaderError, 1, 2, h("0014")),
    mrow("open-length-28", header(28, 1) + open_body()[:9], MessageHeaderError, 1, 2, h("001c")),
    mrow("update-length-22", header(22, 2) + h("000000"), MessageHeaderError, 1, 2, h("0016")),
    mrow("notification-length-20", header(20, 3) + h("06"), MessageHeaderError, 1, 2, h("0014")),
    # RFC 4271 §6.1: Bad Message Type, "The Data field MUST contain the erroneous Type field".
    mrow("type-6", header(19, 6), MessageHeaderError, 1, 3, h("06")),
    # RFC 8654 §4: the extended size does not apply to OPEN (or KEEPALIVE).
    mrow("update-5000-without-extended-messages", big_update(5000), MessageHeaderError, 1, 2, h("1388")),
    mrow("open-over-4096-with-extended-messages", big_open(), MessageHeaderError, 1, 2, h("1134"),
         ctx=EXTENDED),
    # RFC 4271 §6.2: Unsupported Version Number; Data is the 2-octet largest locally supported
    # version below the peer's bid, or (if none) the smallest locally supported one: 4 either way.
    mrow("open-version-3", message(1, open_body(version=3)), OpenMessageError, 2, 1, h("0004")),
    mrow("open-version-5", message(1, open_body(version=5)), OpenMessageError, 2, 1, h("0004")),
    # RFC 4271 §6.2: hold time 1 or 2 -> Unacceptable Hold Time.
    mrow("open-hold-time-1", OPEN_HOLD_1, OpenMessageError, 2, 6, None),
    mrow("open-hold-time-2", message(1, open_body(hold_time=2)), OpenMessageError, 2, 6, None),
    # RFC 4271 §6.2 / RFC 6286 §2.1: the BGP Identifier is a non-zero value.
    mrow("open-bgp-id-zero", message(1, open_body(bgp_id="00000000")), OpenMessageError, 2, 3, None),
    # RFC 4271 §6.2: an optional parameter that is not recognised -> Unsupported Optional Parameter.
    mrow("open-optional-parameter-type-1",
         message(1, open_body(params=h("01 02 abcd"))),  # type 1 (deprecated Authentication), len 2
         OpenMessageError, 2, 4, None),
    # Optional Parameters Length says 10, 4 octets follow: no specific subcode exists -> 0.
    mrow("open-opt-param-length-mismatch",
         message(1, open_body(params=h("02 02 0200"), opt_len=10)), OpenMessageError, 2, 0, None),
    # RFC 5492 names no subcode for an unparsable capability: only the class is fixed.
    mrow("open-multiprotocol-capability-length-3", message(1, open_body(params=MP_CAP_LEN_3)),
         OpenMessageError, 2, None, None),
    # RFC 7313 §5: ROUTE-REFRESH subtype 1/2 whose length (excluding the header) is not 4 ->
    # ROUTE-REFRESH Message Error / Invalid Message Length, Data = the complete message.
    mrow("route-refresh-length-24", ROUTE_REFRESH_24, RouteRefreshMessageError, 7, 1, ROUTE_REFRESH_24),
]  # fmt: skip


@pytest.mark.parametrize("case", MESSAGE_ERRORS)
def test_message_error(case: MessageCase) -> None:
    assert int.from_bytes(case.message[16:18], "big") == len(case.message) or case.code == 1
    with pytest.raises(case.error) as info:
        decode(case.message, case.ctx)
    _check_message_error(case, info.value)


@pytest.mark.parametrize("case", MESSAGE_ERRORS)
def test_message_error_fed_one_byte_at_a_time(case: MessageCase) -> None:
    with pytest.raises(case.error) as info:
        _trickle(case.message, case.ctx)
    _check_message_error(case, info.value)


def _check_message_error(case: MessageCase, exc: NotificationError) -> None:
    assert exc.code == case.code
    if case.subcode is not None:
        assert exc.subcode == case.subcode
    if case.data is not None:
        assert exc.data.hex() == case.data.hex()


def test_update_5000_accepted_with_extended_messages() -> None:
    """RFC 8654 §3-4: once negotiated, UPDATEs may be up to 65535 octets."""
    got = decode(big_update(5000), EXTENDED)
    assert isinstance(got, Update)
    assert got.handling is None
    assert len(got.nlri) == (5000 - 19 - 4 - len(BASE)) // 5 + 1


def test_open_hold_times_0_and_3_accepted() -> None:
    """RFC 4271 §4.2: the Hold Time is zero or at least three seconds."""
    for hold in (0, 3):
        decode(message(1, open_body(hold_time=hold)))


def test_add_path_entry_with_undefined_send_receive_is_ignored() -> None:
    """RFC 7911 §4: a Send/Receive value other than 1, 2 or 3 is "treated as not understood and
    ignored", not an OPEN error; the entries carrying it are dropped and the others stand (as FRR)."""
    params = h(
        "02 0e"  # optional parameter: Capabilities, length 14
        "45 0c"  # capability 69 (ADD-PATH), length 12
        "0001 01 06"  # IPv4 unicast, Send/Receive 6: undefined
        "0002 01 01"  # IPv6 unicast, receive
        "0001 02 00"  # IPv4 multicast, Send/Receive 0: undefined
    )
    got = decode(message(1, open_body(params=params)))
    assert isinstance(got, Open)
    assert got.get(AddPath) == AddPath(((2, 1, 1),))
    only_bad = decode(message(1, open_body(params=h("02 06 45 04 0001 01 06"))))
    assert isinstance(only_bad, Open)
    assert only_bad.get(AddPath) == AddPath(())


# ---------------------------------------------------------------------------------------------
# Hypothesis: a mutated UPDATE decodes or raises a NotificationError, nothing else.
# ---------------------------------------------------------------------------------------------

FULL_ATTRS = [
    ORIGIN_IGP,
    AS_PATH_4,
    NEXT_HOP,
    MED,
    LOCAL_PREF,
    ATOMIC_AGGREGATE,
    AGGREGATOR_4,
    COMMUNITIES,
    ORIGINATOR_ID,
    CLUSTER_LIST,
    MP_REACH_V6,
    MP_UNREACH_V6,
    EXTENDED_COMMUNITIES,
    LARGE_COMMUNITY,
    OTC,
]
FULL = update(b"".join(FULL_ATTRS), NLRI + h("20 0a010101"), withdrawn=WITHDRAWN)
#: Offset of the path attribute block in FULL: header, withdrawn length, routes, attribute length.
BLOCK_START = 19 + 2 + len(WITHDRAWN) + 2
BLOCK_END = BLOCK_START + sum(map(len, FULL_ATTRS))
#: Offsets of each attribute's flags octet in FULL.
FLAG_OFFSETS = [BLOCK_START + sum(map(len, FULL_ATTRS[:i])) for i in range(len(FULL_ATTRS))]


def test_reference_update_is_clean() -> None:
    """The message the fuzzer mutates decodes without errors."""
    got = decode(FULL)
    assert isinstance(got, Update)
    assert got.errors == ()
    assert sorted(a.type_code for a in got.attributes) == [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 14, 15, 16, 32, 35]
    assert _prefixes(got.announced()) == sorted([P_NLRI, "10.1.1.1/32", P_V6])
    assert _prefixes(got.withdrawals()) == sorted([P_WITHDRAWN, P_V6_UNREACH])


@st.composite
def mutated_updates(draw: st.DrawFn) -> bytes:
    """FULL after 1-4 mutations: flipped block bytes, random attribute flags, truncation."""
    msg = bytearray(FULL)
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["flip", "flags", "truncate"]))
        if kind == "flip":
            pos = draw(st.integers(BLOCK_START, BLOCK_END - 1))
            if pos < len(msg):
                msg[pos] ^= draw(st.integers(1, 255))
        elif kind == "flags":
            pos = draw(st.sampled_from(FLAG_OFFSETS))
            if pos < len(msg):
                msg[pos] = draw(st.integers(0, 255))
        else:
            cut = draw(st.integers(19, len(msg) - 1)) if len(msg) > 19 else len(msg)
            del msg[cut:]
            msg[16:18] = len(msg).to_bytes(2, "big")  # keep the header honest: a shorter UPDATE
    return bytes(msg)


@settings(max_examples=500, deadline=None)
@given(mutated_updates())
def test_mutated_update_decodes_or_raises_notification(data: bytes) -> None:
    try:
        got = decode(data, DEFAULT)
    except UpdateMessageError as exc:
        event(f"raised UPDATE error, {exc.handling.name}")
        assert exc.code == 3
        assert exc.handling >= DISABLE, "weaker errors are reported on the Update, not raised"
        return
    except NotificationError as exc:
        event(f"raised {type(exc).__name__}")
        return
    assert isinstance(got, Update)
    event(f"returned, handling {got.handling.name if got.handling else None}")
    if not got.errors:
        assert got.handling is None
        return
    assert all(isinstance(e, UpdateMessageError) for e in got.errors)
    assert got.handling == max(e.handling for e in got.errors)
    assert got.handling < DISABLE
    if got.handling == TAW:
        assert got.announced() == []
        assert all(isinstance(a, MpUnreachNlri) for a in got.attributes)


def test_local_pref_from_an_external_peer_is_ignored() -> None:
    """RFC 4271 §5.1.5 / RFC 7606 §7.5: well-formed or not, LOCAL_PREF from eBGP is dropped silently."""
    attrs = (Origin(0), AsPath.sequence(64500), NextHop(ipaddress.IPv4Address("192.0.2.1")), LocalPref(500))
    (msg,) = pack_updates(attrs, [Prefix.from_network("198.51.100.0/24")])
    ibgp, ebgp = decode(msg, Negotiated()), decode(msg, Negotiated(ebgp=True))
    assert ibgp.get(LocalPref) == LocalPref(500)  # type: ignore[union-attr]
    assert ebgp.get(LocalPref) is None and ebgp.errors == () and ebgp.nlri  # type: ignore[union-attr]
