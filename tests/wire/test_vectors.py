"""Golden wire vectors (STYLE.md section 9): one table drives encode, decode and framing tests.

Every expected byte string below is written by hand from the RFC layouts, one field per line with a
comment naming the field. Nothing here calls the codec to produce expected bytes; the codec is only
ever the thing under test. Where an RFC and the codec disagree, the vector keeps the RFC's bytes.

Layouts used: RFC 4271 (header 4.1, OPEN 4.2, UPDATE 4.3, NOTIFICATION 4.5, attributes 5), RFC 1997
(COMMUNITIES), RFC 2918 / RFC 7313 (ROUTE-REFRESH), RFC 4360 / RFC 5668 (extended communities),
draft-ietf-idr-link-bandwidth (link bandwidth), RFC 4456 (ORIGINATOR_ID, CLUSTER_LIST), RFC 4724 (GR,
End-of-RIB), RFC 4760 (MP_REACH/MP_UNREACH, MP capability), RFC 2545 (IPv6 next hop), RFC 5065
(confederation segments), RFC 5492 (capabilities), RFC 6793 (4-octet AS), RFC 7911 (ADD-PATH), RFC 8092
(LARGE_COMMUNITY), RFC 8538 (GR N bit), RFC 8654 (extended message), RFC 8950 (extended next hop),
RFC 9003 (shutdown communication), RFC 9072 (extended optional parameters), RFC 9234 (role, OTC),
RFC 9494 (LLGR), draft-walton-bgp-hostname-capability (FQDN).
"""

from __future__ import annotations

import ipaddress

import pytest

from bgpsvc.wire import (
    AS_TRANS,
    DEFAULT,
    IPV4_UNICAST,
    IPV6_UNICAST,
    TWO_OCTET,
    AddPath,
    Aggregator,
    As4Aggregator,
    As4Path,
    AsPath,
    AsPathSegment,
    AtomicAggregate,
    BgpRole,
    ClusterList,
    Communities,
    Community,
    EnhancedRouteRefresh,
    ExtendedCommunities,
    ExtendedCommunity,
    ExtendedMessage,
    ExtendedNextHop,
    Family,
    FourOctetAs,
    Fqdn,
    Framer,
    GracefulRestart,
    GracefulRestartFamily,
    Keepalive,
    LargeCommunities,
    LocalPref,
    LongLivedGracefulRestart,
    LongLivedGracefulRestartFamily,
    Message,
    MessageHeaderError,
    MpReachNlri,
    MpUnreachNlri,
    MultiExitDisc,
    Multiprotocol,
    Negotiated,
    NextHop,
    Notification,
    Open,
    Origin,
    OriginatorId,
    Otc,
    Prefix,
    RouteRefresh,
    RouteRefreshCapability,
    UnknownAttribute,
    UnknownCapability,
    Update,
    decode,
    encode,
    end_of_rib,
    merge_as4,
)

h = bytes.fromhex
MARKER = b"\xff" * 16

ADD_PATH_V4 = Negotiated(add_path_rx=frozenset({IPV4_UNICAST}), add_path_tx=frozenset({IPV4_UNICAST}))
ADD_PATH_V6 = Negotiated(add_path_rx=frozenset({IPV6_UNICAST}), add_path_tx=frozenset({IPV6_UNICAST}))
EXT_NEXT_HOP = Negotiated(extended_next_hop=frozenset({(IPV4_UNICAST, 2)}))

#: Trailing data for the framing tests: the first 7 octets of a KEEPALIVE (RFC 4271 4.1).
TRAILING = MARKER[:7]


def v4(text: str) -> ipaddress.IPv4Address:
    return ipaddress.IPv4Address(text)


def v6(text: str) -> ipaddress.IPv6Address:
    return ipaddress.IPv6Address(text)


def net(text: str, path_id: int = 0) -> Prefix:
    return Prefix.from_network(text, path_id)


# --------------------------------------------------------------------------------------------------
# Objects referenced again by the property tests below.
# --------------------------------------------------------------------------------------------------

SHUTDOWN_TEXT = "Wartung für 10 Min → zurück"  # 31 octets of UTF-8 (two 2-octet, one 3-octet char)
RESET_TEXT = "config change"

OPEN_FULL = Open.build(
    65001,
    90,
    "192.0.2.1",
    (
        Multiprotocol(1, 1),
        Multiprotocol(2, 1),
        RouteRefreshCapability(),
        EnhancedRouteRefresh(),
        ExtendedMessage(),
        GracefulRestart(
            restart_time=120,
            restarting=True,
            notification=True,
            families=(GracefulRestartFamily(1, 1, True), GracefulRestartFamily(2, 1, False)),
        ),
        FourOctetAs(65001),  # Open.build drops this one and appends its own FourOctetAs last
        AddPath(((1, 1, 3),)),
        BgpRole(3),
        ExtendedNextHop(((1, 1, 2),)),
        LongLivedGracefulRestart((LongLivedGracefulRestartFamily(1, 1, True, 3600),)),
        Fqdn("rtr1", "example.net"),
        UnknownCapability(200, b"\x01\x02"),
    ),
)
OPEN_AS4 = Open.build(4200000000, 180, "192.0.2.2", (Multiprotocol(1, 1),))
OPEN_MINIMAL = Open(65001, 180, v4("192.0.2.1"))

WITHDRAWN_PREFIXES = (
    net("0.0.0.0/0"),
    net("192.0.0.0/7"),
    net("203.0.113.128/25"),
    Prefix.host("192.0.2.1"),
)
UPDATE_WITHDRAWN = Update(withdrawn=WITHDRAWN_PREFIXES)

UPDATE_FULL = Update(
    attributes=(
        Origin(0),
        AsPath(
            (
                AsPathSegment(2, (65001, 4200000001)),
                AsPathSegment(1, (64512, 64513)),
            )
        ),
        NextHop(v4("192.0.2.1")),
        MultiExitDisc(100),
        LocalPref(200),
        AtomicAggregate(),
        Aggregator(4200000001, v4("192.0.2.9")),
        Communities((65001 << 16 | 100, Community.GRACEFUL_SHUTDOWN, Community.NO_EXPORT)),
        OriginatorId(v4("192.0.2.7")),
        ClusterList((v4("192.0.2.5"), v4("192.0.2.6"))),
        ExtendedCommunities(
            (
                ExtendedCommunity.route_target(65001, 100),
                ExtendedCommunity.route_target(4200000001, 100),
                ExtendedCommunity.link_bandwidth(65001, 125000000.0),
            )
        ),
        LargeCommunities(((4200000001, 1, 2),)),
        Otc(65002),
        UnknownAttribute(255, 0xE0, h("deadbeef")),
    ),
    nlri=(net("198.51.100.0/24"), net("203.0.113.64/26")),
)

UPDATE_MP_REACH = Update(
    attributes=(
        MpReachNlri(2, 1, (v6("2001:db8::1"),), (net("2001:db8:1::/48"), net("2001:db8:2:3::/64"))),
        Origin(0),
        AsPath.sequence(65001),
    )
)
UPDATE_MP_REACH_LL = Update(
    attributes=(
        MpReachNlri(2, 1, (v6("2001:db8::1"), v6("fe80::1")), (Prefix.host("2001:db8::53"),)),
        Origin(0),
        AsPath.sequence(65001),
    )
)
UPDATE_MP_UNREACH = Update(
    attributes=(MpUnreachNlri(2, 1, (net("2001:db8:1::/48"), net("2001:db8::/32"))),),
)
UPDATE_ADD_PATH = Update(
    withdrawn=(net("198.51.100.0/24", 1),),
    attributes=(Origin(0), AsPath.sequence(65001), NextHop(v4("192.0.2.1"))),
    nlri=(net("203.0.113.0/24", 1), net("203.0.113.0/24", 2)),
)
UPDATE_TWO_OCTET = Update(
    attributes=(
        Origin(1),
        AsPath((AsPathSegment(2, (65001, AS_TRANS)),)),
        NextHop(v4("192.0.2.1")),
        Aggregator(AS_TRANS, v4("192.0.2.9")),
        As4Path((AsPathSegment(2, (65001, 4200000001)),)),
        As4Aggregator(4200000001, v4("192.0.2.9")),
    ),
    nlri=(net("198.51.100.0/24"),),
)

ORIGIN_IGP = h("40") + h("01") + h("01") + h("00")  # ORIGIN: flags well-known, type 1, length 1, IGP
AS_PATH_65001 = (
    h("40")  # flags: well-known transitive
    + h("02")  # type AS_PATH
    + h("06")  # length 6
    + h("02")  # segment type AS_SEQUENCE
    + h("01")  # segment length 1 AS
    + h("0000fde9")  # AS 65001 (4 octets)
)
NEXT_HOP_192_0_2_1 = (
    h("40")  # flags: well-known transitive
    + h("03")  # type NEXT_HOP
    + h("04")  # length 4
    + h("c0000201")  # 192.0.2.1
)
NH_2001_DB8_1 = h("2001 0db8 0000 0000 0000 0000 0000 0001")  # 2001:db8::1

VECTORS = [
    # ==============================================================================================
    # KEEPALIVE (RFC 4271 4.4)
    # ==============================================================================================
    pytest.param(
        Keepalive(),
        DEFAULT,
        MARKER
        + h("0013")  # length 19
        + h("04"),  # type KEEPALIVE
        id="keepalive",
    ),
    # ==============================================================================================
    # NOTIFICATION (RFC 4271 4.5)
    # ==============================================================================================
    pytest.param(
        Notification(4, 0),
        DEFAULT,
        MARKER
        + h("0015")  # length 21
        + h("03")  # type NOTIFICATION
        + h("04")  # error code 4 Hold Timer Expired
        + h("00"),  # error subcode 0
        id="notification-hold-timer-expired-no-data",
    ),
    pytest.param(
        Notification.shutdown(),
        DEFAULT,
        MARKER
        + h("0015")  # length 21
        + h("03")  # type NOTIFICATION
        + h("06")  # error code 6 Cease
        + h("02"),  # subcode 2 Administrative Shutdown, no shutdown communication
        id="notification-cease-shutdown-empty",
    ),
    pytest.param(
        Notification.shutdown(SHUTDOWN_TEXT),
        DEFAULT,
        MARKER
        + h("0035")  # length 53
        + h("03")  # type NOTIFICATION
        + h("06")  # error code 6 Cease
        + h("02")  # subcode 2 Administrative Shutdown (RFC 9003 2)
        + h("1f")  # shutdown communication length 31
        + b"Wartung f"  # UTF-8
        + h("c3bc")  # U+00FC LATIN SMALL LETTER U WITH DIAERESIS
        + b"r 10 Min "
        + h("e28692")  # U+2192 RIGHTWARDS ARROW
        + b" zur"
        + h("c3bc")  # U+00FC
        + b"ck",
        id="notification-cease-shutdown-utf8",
    ),
    pytest.param(
        Notification.shutdown(RESET_TEXT, subcode=4),
        DEFAULT,
        MARKER
        + h("0023")  # length 35
        + h("03")  # type NOTIFICATION
        + h("06")  # error code 6 Cease
        + h("04")  # subcode 4 Administrative Reset (RFC 9003 2)
        + h("0d")  # shutdown communication length 13
        + b"config change",  # UTF-8
        id="notification-cease-reset-message",
    ),
    pytest.param(
        Notification(3, 5, h("4001020000")),
        DEFAULT,
        MARKER
        + h("001a")  # length 26
        + h("03")  # type NOTIFICATION
        + h("03")  # error code 3 UPDATE Message Error
        + h("05")  # subcode 5 Attribute Length Error
        + h("40")  # data: the erroneous attribute's flags (RFC 4271 6.3)
        + h("01")  # data: type ORIGIN
        + h("02")  # data: length 2
        + h("0000"),  # data: value
        id="notification-update-attribute-length-error",
    ),
    pytest.param(
        Notification(2, 7, h("4700")),
        DEFAULT,
        MARKER
        + h("0017")  # length 23
        + h("03")  # type NOTIFICATION
        + h("02")  # error code 2 OPEN Message Error
        + h("07")  # subcode 7 Unsupported Capability (RFC 5492 5)
        + h("47")  # data: capability code 71 (LLGR)
        + h("00"),  # data: capability length 0
        id="notification-open-unsupported-capability",
    ),
    # ==============================================================================================
    # ROUTE-REFRESH (RFC 2918 3, RFC 7313 3)
    # ==============================================================================================
    pytest.param(
        RouteRefresh(1, 1),
        DEFAULT,
        MARKER
        + h("0017")  # length 23
        + h("05")  # type ROUTE-REFRESH
        + h("0001")  # AFI 1 IPv4
        + h("00")  # reserved / subtype 0 normal
        + h("01"),  # SAFI 1 unicast
        id="route-refresh-ipv4",
    ),
    pytest.param(
        RouteRefresh(2, 1),
        DEFAULT,
        MARKER
        + h("0017")  # length 23
        + h("05")  # type ROUTE-REFRESH
        + h("0002")  # AFI 2 IPv6
        + h("00")  # subtype 0 normal
        + h("01"),  # SAFI 1 unicast
        id="route-refresh-ipv6",
    ),
    pytest.param(
        RouteRefresh(2, 1, 1),
        DEFAULT,
        MARKER
        + h("0017")  # length 23
        + h("05")  # type ROUTE-REFRESH
        + h("0002")  # AFI 2 IPv6
        + h("01")  # subtype 1 BoRR
        + h("01"),  # SAFI 1 unicast
        id="route-refresh-ipv6-borr",
    ),
    pytest.param(
        RouteRefresh(2, 1, 2),
        DEFAULT,
        MARKER
        + h("0017")  # length 23
        + h("05")  # type ROUTE-REFRESH
        + h("0002")  # AFI 2 IPv6
        + h("02")  # subtype 2 EoRR
        + h("01"),  # SAFI 1 unicast
        id="route-refresh-ipv6-eorr",
    ),
    # ==============================================================================================
    # OPEN (RFC 4271 4.2, RFC 5492, RFC 9072)
    # ==============================================================================================
    pytest.param(
        OPEN_MINIMAL,
        DEFAULT,
        MARKER
        + h("001d")  # length 29
        + h("01")  # type OPEN
        + h("04")  # version 4
        + h("fde9")  # my AS 65001
        + h("00b4")  # hold time 180
        + h("c0000201")  # BGP identifier 192.0.2.1
        + h("00"),  # optional parameters length 0
        id="open-minimal",
    ),
    pytest.param(
        Open(64512, 0, v4("203.0.113.1")),
        DEFAULT,
        MARKER
        + h("001d")  # length 29
        + h("01")  # type OPEN
        + h("04")  # version 4
        + h("fc00")  # my AS 64512
        + h("0000")  # hold time 0 (no keepalives)
        + h("cb007101")  # BGP identifier 203.0.113.1
        + h("00"),  # optional parameters length 0
        id="open-hold-time-zero",
    ),
    pytest.param(
        OPEN_FULL,
        DEFAULT,
        MARKER
        + h("008c")  # length 140
        + h("01")  # type OPEN
        + h("04")  # version 4
        + h("fde9")  # my AS 65001
        + h("005a")  # hold time 90
        + h("c0000201")  # BGP identifier 192.0.2.1
        + h("6f")  # optional parameters length 111
        # Multiprotocol IPv4 unicast (RFC 4760 8)
        + h("02")  # param type 2 Capabilities
        + h("06")  # param length 6
        + h("01")  # cap code 1 Multiprotocol
        + h("04")  # cap length 4
        + h("0001")  # AFI 1
        + h("00")  # reserved
        + h("01")  # SAFI 1
        # Multiprotocol IPv6 unicast
        + h("02")  # param type 2
        + h("06")  # param length 6
        + h("01")  # cap code 1 Multiprotocol
        + h("04")  # cap length 4
        + h("0002")  # AFI 2
        + h("00")  # reserved
        + h("01")  # SAFI 1
        # Route Refresh (RFC 2918)
        + h("02")  # param type 2
        + h("02")  # param length 2
        + h("02")  # cap code 2 Route Refresh
        + h("00")  # cap length 0
        # Enhanced Route Refresh (RFC 7313)
        + h("02")  # param type 2
        + h("02")  # param length 2
        + h("46")  # cap code 70 Enhanced Route Refresh
        + h("00")  # cap length 0
        # Extended Message (RFC 8654)
        + h("02")  # param type 2
        + h("02")  # param length 2
        + h("06")  # cap code 6 Extended Message
        + h("00")  # cap length 0
        # Graceful Restart (RFC 4724 3, RFC 8538 2)
        + h("02")  # param type 2
        + h("0c")  # param length 12
        + h("40")  # cap code 64 Graceful Restart
        + h("0a")  # cap length 10
        + h("c078")  # flags R=1 N=1, restart time 120 (12 bits)
        + h("0001")  # AFI 1
        + h("01")  # SAFI 1
        + h("80")  # flags: forwarding state preserved
        + h("0002")  # AFI 2
        + h("01")  # SAFI 1
        + h("00")  # flags: forwarding state not preserved
        # ADD-PATH (RFC 7911 4)
        + h("02")  # param type 2
        + h("06")  # param length 6
        + h("45")  # cap code 69 ADD-PATH
        + h("04")  # cap length 4
        + h("0001")  # AFI 1
        + h("01")  # SAFI 1
        + h("03")  # send/receive 3 both
        # BGP Role (RFC 9234 4.1)
        + h("02")  # param type 2
        + h("03")  # param length 3
        + h("09")  # cap code 9 BGP Role
        + h("01")  # cap length 1
        + h("03")  # role 3 customer
        # Extended Next Hop Encoding (RFC 8950 3)
        + h("02")  # param type 2
        + h("08")  # param length 8
        + h("05")  # cap code 5 Extended Next Hop
        + h("06")  # cap length 6
        + h("0001")  # NLRI AFI 1
        + h("0001")  # NLRI SAFI 1 (2 octets)
        + h("0002")  # next hop AFI 2
        # Long-Lived Graceful Restart (RFC 9494 3)
        + h("02")  # param type 2
        + h("09")  # param length 9
        + h("47")  # cap code 71 LLGR
        + h("07")  # cap length 7
        + h("0001")  # AFI 1
        + h("01")  # SAFI 1
        + h("80")  # flags: F bit
        + h("000e10")  # long-lived stale time 3600 (24 bits)
        # FQDN (draft-walton-bgp-hostname-capability)
        + h("02")  # param type 2
        + h("13")  # param length 19
        + h("49")  # cap code 73 FQDN
        + h("11")  # cap length 17
        + h("04")  # hostname length 4
        + b"rtr1"  # hostname
        + h("0b")  # domain length 11
        + b"example.net"  # domain name
        # Unknown capability 200 (private use, kept opaque)
        + h("02")  # param type 2
        + h("04")  # param length 4
        + h("c8")  # cap code 200
        + h("02")  # cap length 2
        + h("0102")  # value
        # 4-octet AS (RFC 6793 3), appended last by Open.build
        + h("02")  # param type 2
        + h("06")  # param length 6
        + h("41")  # cap code 65 4-octet AS
        + h("04")  # cap length 4
        + h("0000fde9"),  # AS 65001
        id="open-build-all-capabilities",
    ),
    pytest.param(
        OPEN_AS4,
        DEFAULT,
        MARKER
        + h("002d")  # length 45
        + h("01")  # type OPEN
        + h("04")  # version 4
        + h("5ba0")  # my AS 23456 AS_TRANS (RFC 6793 9)
        + h("00b4")  # hold time 180
        + h("c0000202")  # BGP identifier 192.0.2.2
        + h("10")  # optional parameters length 16
        + h("02")  # param type 2 Capabilities
        + h("06")  # param length 6
        + h("01")  # cap code 1 Multiprotocol
        + h("04")  # cap length 4
        + h("0001")  # AFI 1
        + h("00")  # reserved
        + h("01")  # SAFI 1
        + h("02")  # param type 2 Capabilities
        + h("06")  # param length 6
        + h("41")  # cap code 65 4-octet AS
        + h("04")  # cap length 4
        + h("fa56ea00"),  # AS 4200000000
        id="open-build-as4-as-trans",
    ),
    pytest.param(
        Open(65001, 180, v4("192.0.2.1"), (UnknownCapability(200, bytes(range(251))),)),
        DEFAULT,
        MARKER
        + h("011c")  # length 284
        + h("01")  # type OPEN
        + h("04")  # version 4
        + h("fde9")  # my AS 65001
        + h("00b4")  # hold time 180
        + h("c0000201")  # BGP identifier 192.0.2.1
        + h("ff")  # optional parameters length 255: still the RFC 4271 format (RFC 9072 2)
        + h("02")  # param type 2 Capabilities (not 255, so not the extended format)
        + h("fd")  # param length 253 (1 octet)
        + h("c8")  # cap code 200
        + h("fb")  # cap length 251
        + bytes(range(251)),  # value 00 01 .. fa
        id="open-optional-parameters-exactly-255",
    ),
    pytest.param(
        Open(65001, 180, v4("192.0.2.1"), tuple(UnknownCapability(200 + i, bytes(12)) for i in range(20))),
        DEFAULT,
        MARKER
        + h("0174")  # length 372
        + h("01")  # type OPEN
        + h("04")  # version 4
        + h("fde9")  # my AS 65001
        + h("00b4")  # hold time 180
        + h("c0000201")  # BGP identifier 192.0.2.1
        + h("ff")  # Non-Ext OP Len 255 (RFC 9072 2)
        + h("ff")  # Non-Ext OP Type 255: extended format
        + h("0154")  # Extended Opt. Parm. Length 340 = 20 * 17
        + b"".join(
            h("02")  # param type 2 Capabilities
            + h("000e")  # param length 14 (2 octets in the extended format)
            + bytes((200 + i,))  # cap code 200 + i
            + h("0c")  # cap length 12
            + bytes(12)  # value: 12 zero octets
            for i in range(20)
        ),
        id="open-rfc9072-extended-optional-parameters",
    ),
    # ==============================================================================================
    # UPDATE (RFC 4271 4.3)
    # ==============================================================================================
    pytest.param(
        Update(),
        DEFAULT,
        MARKER
        + h("0017")  # length 23
        + h("02")  # type UPDATE
        + h("0000")  # withdrawn routes length 0
        + h("0000"),  # total path attribute length 0
        id="update-end-of-rib-ipv4",
    ),
    pytest.param(
        end_of_rib(IPV6_UNICAST),
        DEFAULT,
        MARKER
        + h("001d")  # length 29
        + h("02")  # type UPDATE
        + h("0000")  # withdrawn routes length 0
        + h("0006")  # total path attribute length 6
        + h("80")  # flags: optional non-transitive
        + h("0f")  # type MP_UNREACH_NLRI
        + h("03")  # length 3
        + h("0002")  # AFI 2
        + h("01"),  # SAFI 1, no withdrawn routes (RFC 4724 2)
        id="update-end-of-rib-ipv6",
    ),
    pytest.param(
        UPDATE_WITHDRAWN,
        DEFAULT,
        MARKER
        + h("0024")  # length 36
        + h("02")  # type UPDATE
        + h("000d")  # withdrawn routes length 13
        + h("00")  # 0.0.0.0/0: length 0, no prefix octets
        + h("07")  # length 7
        + h("c0")  # 192.0.0.0/7: ceil(7/8) = 1 octet
        + h("19")  # length 25
        + h("cb007180")  # 203.0.113.128/25: ceil(25/8) = 4 octets
        + h("20")  # length 32
        + h("c0000201")  # 192.0.2.1/32
        + h("0000"),  # total path attribute length 0
        id="update-withdrawn-only",
    ),
    pytest.param(
        UPDATE_FULL,
        DEFAULT,
        MARKER
        + h("00b7")  # length 183
        + h("02")  # type UPDATE
        + h("0000")  # withdrawn routes length 0
        + h("0097")  # total path attribute length 151
        # ORIGIN (5.1.1)
        + h("40")  # flags: well-known transitive
        + h("01")  # type ORIGIN
        + h("01")  # length 1
        + h("00")  # IGP
        # AS_PATH (5.1.2), 4-octet AS numbers (RFC 6793 3)
        + h("40")  # flags: well-known transitive
        + h("02")  # type AS_PATH
        + h("14")  # length 20
        + h("02")  # segment type AS_SEQUENCE
        + h("02")  # segment length 2 ASes
        + h("0000fde9")  # AS 65001
        + h("fa56ea01")  # AS 4200000001
        + h("01")  # segment type AS_SET
        + h("02")  # segment length 2 ASes
        + h("0000fc00")  # AS 64512
        + h("0000fc01")  # AS 64513
        # NEXT_HOP (5.1.3)
        + h("40")  # flags: well-known transitive
        + h("03")  # type NEXT_HOP
        + h("04")  # length 4
        + h("c0000201")  # 192.0.2.1
        # MULTI_EXIT_DISC (5.1.4)
        + h("80")  # flags: optional non-transitive
        + h("04")  # type MULTI_EXIT_DISC
        + h("04")  # length 4
        + h("00000064")  # 100
        # LOCAL_PREF (5.1.5)
        + h("40")  # flags: well-known transitive
        + h("05")  # type LOCAL_PREF
        + h("04")  # length 4
        + h("000000c8")  # 200
        # ATOMIC_AGGREGATE (5.1.6)
        + h("40")  # flags: well-known transitive
        + h("06")  # type ATOMIC_AGGREGATE
        + h("00")  # length 0
        # AGGREGATOR (5.1.7), 4-octet AS
        + h("c0")  # flags: optional transitive
        + h("07")  # type AGGREGATOR
        + h("08")  # length 8
        + h("fa56ea01")  # AS 4200000001
        + h("c0000209")  # 192.0.2.9
        # COMMUNITIES (RFC 1997)
        + h("c0")  # flags: optional transitive
        + h("08")  # type COMMUNITIES
        + h("0c")  # length 12
        + h("fde90064")  # 65001:100
        + h("ffff0000")  # GRACEFUL_SHUTDOWN 65535:0 (RFC 8326)
        + h("ffffff01")  # NO_EXPORT
        # ORIGINATOR_ID (RFC 4456 8)
        + h("80")  # flags: optional non-transitive
        + h("09")  # type ORIGINATOR_ID
        + h("04")  # length 4
        + h("c0000207")  # 192.0.2.7
        # CLUSTER_LIST (RFC 4456 8)
        + h("80")  # flags: optional non-transitive
        + h("0a")  # type CLUSTER_LIST
        + h("08")  # length 8
        + h("c0000205")  # 192.0.2.5
        + h("c0000206")  # 192.0.2.6
        # EXTENDED_COMMUNITIES (RFC 4360)
        + h("c0")  # flags: optional transitive
        + h("10")  # type EXTENDED_COMMUNITIES
        + h("18")  # length 24
        + h("00")  # type: transitive two-octet AS specific (RFC 4360 3.1)
        + h("02")  # sub-type: route target (RFC 4360 4)
        + h("fde9")  # global administrator AS 65001
        + h("00000064")  # local administrator 100
        + h("02")  # type: transitive four-octet AS specific (RFC 5668 2)
        + h("02")  # sub-type: route target
        + h("fa56ea01")  # global administrator AS 4200000001
        + h("0064")  # local administrator 100
        + h("40")  # type: non-transitive two-octet AS specific
        + h("04")  # sub-type: link bandwidth (draft-ietf-idr-link-bandwidth)
        + h("fde9")  # global administrator AS 65001
        + h("4cee6b28")  # IEEE 754 single 125e6 bytes/s (1 Gbit/s) = 1.862645149 * 2^26
        # LARGE_COMMUNITY (RFC 8092 3)
        + h("c0")  # flags: optional transitive
        + h("20")  # type LARGE_COMMUNITY (32)
        + h("0c")  # length 12
        + h("fa56ea01")  # global administrator 4200000001
        + h("00000001")  # local data part 1
        + h("00000002")  # local data part 2
        # OTC (RFC 9234 5)
        + h("c0")  # flags: optional transitive
        + h("23")  # type OTC (35)
        + h("04")  # length 4
        + h("0000fdea")  # AS 65002
        # Unknown attribute 255, optional transitive partial (RFC 4271 4.3, 5)
        + h("e0")  # flags: optional, transitive, partial
        + h("ff")  # type 255 (reserved for development, RFC 2042)
        + h("04")  # length 4
        + h("deadbeef")  # value, kept opaque
        # NLRI
        + h("18")  # length 24
        + h("c63364")  # 198.51.100.0/24
        + h("1a")  # length 26
        + h("cb007140"),  # 203.0.113.64/26
        id="update-announce-all-attributes",
    ),
    pytest.param(
        UPDATE_TWO_OCTET,
        TWO_OCTET,
        MARKER
        + h("0050")  # length 80
        + h("02")  # type UPDATE
        + h("0000")  # withdrawn routes length 0
        + h("0035")  # total path attribute length 53
        # ORIGIN
        + h("40")  # flags: well-known transitive
        + h("01")  # type ORIGIN
        + h("01")  # length 1
        + h("01")  # EGP
        # AS_PATH with 2-octet AS numbers (RFC 6793 4.2.2)
        + h("40")  # flags: well-known transitive
        + h("02")  # type AS_PATH
        + h("06")  # length 6
        + h("02")  # segment type AS_SEQUENCE
        + h("02")  # segment length 2 ASes
        + h("fde9")  # AS 65001 (2 octets)
        + h("5ba0")  # AS_TRANS 23456 standing in for 4200000001
        # NEXT_HOP
        + h("40")  # flags: well-known transitive
        + h("03")  # type NEXT_HOP
        + h("04")  # length 4
        + h("c0000201")  # 192.0.2.1
        # AGGREGATOR with a 2-octet AS (RFC 4271 5.1.7)
        + h("c0")  # flags: optional transitive
        + h("07")  # type AGGREGATOR
        + h("06")  # length 6
        + h("5ba0")  # AS_TRANS
        + h("c0000209")  # 192.0.2.9
        # AS4_PATH (RFC 6793 3)
        + h("c0")  # flags: optional transitive
        + h("11")  # type AS4_PATH (17)
        + h("0a")  # length 10
        + h("02")  # segment type AS_SEQUENCE
        + h("02")  # segment length 2 ASes
        + h("0000fde9")  # AS 65001 (4 octets)
        + h("fa56ea01")  # AS 4200000001
        # AS4_AGGREGATOR (RFC 6793 3)
        + h("c0")  # flags: optional transitive
        + h("12")  # type AS4_AGGREGATOR (18)
        + h("08")  # length 8
        + h("fa56ea01")  # AS 4200000001
        + h("c0000209")  # 192.0.2.9
        # NLRI
        + h("18")  # length 24
        + h("c63364"),  # 198.51.100.0/24
        id="update-two-octet-as4-path-as4-aggregator",
    ),
    pytest.param(
        UPDATE_MP_REACH,
        DEFAULT,
        MARKER
        + h("004c")  # length 76
        + h("02")  # type UPDATE
        + h("0000")  # withdrawn routes length 0
        + h("0035")  # total path attribute length 53
        # MP_REACH_NLRI (RFC 4760 3)
        + h("80")  # flags: optional non-transitive
        + h("0e")  # type MP_REACH_NLRI (14)
        + h("25")  # length 37
        + h("0002")  # AFI 2
        + h("01")  # SAFI 1
        + h("10")  # next hop length 16: global only (RFC 2545 3)
        + NH_2001_DB8_1  # next hop 2001:db8::1
        + h("00")  # reserved
        + h("30")  # length 48
        + h("20010db80001")  # 2001:db8:1::/48
        + h("40")  # length 64
        + h("20010db800020003")  # 2001:db8:2:3::/64
        + ORIGIN_IGP
        + AS_PATH_65001,
        id="update-mp-reach-ipv6-global-next-hop",
    ),
    pytest.param(
        UPDATE_MP_REACH_LL,
        DEFAULT,
        MARKER
        + h("005d")  # length 93
        + h("02")  # type UPDATE
        + h("0000")  # withdrawn routes length 0
        + h("0046")  # total path attribute length 70
        # MP_REACH_NLRI (RFC 4760 3)
        + h("80")  # flags: optional non-transitive
        + h("0e")  # type MP_REACH_NLRI
        + h("36")  # length 54
        + h("0002")  # AFI 2
        + h("01")  # SAFI 1
        + h("20")  # next hop length 32: global + link-local (RFC 2545 3)
        + NH_2001_DB8_1  # global next hop 2001:db8::1
        + h("fe80 0000 0000 0000 0000 0000 0000 0001")  # link-local next hop fe80::1
        + h("00")  # reserved
        + h("80")  # length 128
        + h("2001 0db8 0000 0000 0000 0000 0000 0053")  # 2001:db8::53/128
        + ORIGIN_IGP
        + AS_PATH_65001,
        id="update-mp-reach-ipv6-link-local-next-hop",
    ),
    pytest.param(
        Update(
            attributes=(
                MpReachNlri(1, 1, (v6("2001:db8::1"),), (net("198.51.100.0/24"),)),
                Origin(0),
                AsPath.sequence(65001),
            )
        ),
        EXT_NEXT_HOP,
        MARKER
        + h("0040")  # length 64
        + h("02")  # type UPDATE
        + h("0000")  # withdrawn routes length 0
        + h("0029")  # total path attribute length 41
        # MP_REACH_NLRI, IPv4 NLRI over an IPv6 next hop (RFC 8950 3)
        + h("80")  # flags: optional non-transitive
        + h("0e")  # type MP_REACH_NLRI
        + h("19")  # length 25
        + h("0001")  # AFI 1
        + h("01")  # SAFI 1
        + h("10")  # next hop length 16
        + NH_2001_DB8_1  # next hop 2001:db8::1
        + h("00")  # reserved
        + h("18")  # length 24
        + h("c63364")  # 198.51.100.0/24
        + ORIGIN_IGP
        + AS_PATH_65001,
        id="update-mp-reach-ipv4-over-ipv6-next-hop",
    ),
    pytest.param(
        UPDATE_MP_UNREACH,
        DEFAULT,
        MARKER
        + h("0029")  # length 41
        + h("02")  # type UPDATE
        + h("0000")  # withdrawn routes length 0
        + h("0012")  # total path attribute length 18
        # MP_UNREACH_NLRI (RFC 4760 4)
        + h("80")  # flags: optional non-transitive
        + h("0f")  # type MP_UNREACH_NLRI (15)
        + h("0f")  # length 15
        + h("0002")  # AFI 2
        + h("01")  # SAFI 1
        + h("30")  # length 48
        + h("20010db80001")  # 2001:db8:1::/48
        + h("20")  # length 32
        + h("20010db8"),  # 2001:db8::/32
        id="update-mp-unreach-ipv6",
    ),
    pytest.param(
        Update(attributes=(Communities(tuple(65001 << 16 | i for i in range(70))),)),
        DEFAULT,
        MARKER
        + h("0133")  # length 307
        + h("02")  # type UPDATE
        + h("0000")  # withdrawn routes length 0
        + h("011c")  # total path attribute length 284
        + h("d0")  # flags: optional transitive + extended length (0x10)
        + h("08")  # type COMMUNITIES
        + h("0118")  # length 280 (2 octets)
        + b"".join(
            h("fde9")  # community high half: AS 65001
            + i.to_bytes(2, "big")  # community low half: i
            for i in range(70)
        ),
        id="update-attribute-over-255-extended-length",
    ),
    pytest.param(
        Update(attributes=(UnknownAttribute(255, 0xC0, bytes(range(255))),)),
        DEFAULT,
        MARKER
        + h("0119")  # length 281
        + h("02")  # type UPDATE
        + h("0000")  # withdrawn routes length 0
        + h("0102")  # total path attribute length 258
        + h("c0")  # flags: optional transitive, NO extended length: 255 fits one octet
        + h("ff")  # type 255
        + h("ff")  # length 255 (1 octet)
        + bytes(range(255)),  # value 00 01 .. fe
        id="update-attribute-255-not-extended",
    ),
    pytest.param(
        Update(attributes=(UnknownAttribute(255, 0xC0, bytes(256)),)),
        DEFAULT,
        MARKER
        + h("011b")  # length 283
        + h("02")  # type UPDATE
        + h("0000")  # withdrawn routes length 0
        + h("0104")  # total path attribute length 260
        + h("d0")  # flags: optional transitive + extended length
        + h("ff")  # type 255
        + h("0100")  # length 256 (2 octets)
        + bytes(256),  # value: 256 zero octets
        id="update-unknown-attribute-256-extended",
    ),
    pytest.param(
        Update(
            attributes=(
                Origin(0),
                AsPath((AsPathSegment(2, (64512,) * 255), AsPathSegment(2, (64512,)))),
                NextHop(v4("192.0.2.1")),
            ),
            nlri=(net("198.51.100.0/24"),),
        ),
        DEFAULT,
        MARKER
        + h("042e")  # length 1070
        + h("02")  # type UPDATE
        + h("0000")  # withdrawn routes length 0
        + h("0413")  # total path attribute length 1043
        + ORIGIN_IGP
        + h("50")  # flags: well-known transitive + extended length
        + h("02")  # type AS_PATH
        + h("0404")  # length 1028 (2 octets)
        + h("02")  # segment type AS_SEQUENCE
        + h("ff")  # segment length 255 ASes (the maximum)
        + h("0000fc00") * 255  # AS 64512, prepended 255 times
        + h("02")  # segment type AS_SEQUENCE
        + h("01")  # segment length 1
        + h("0000fc00")  # AS 64512
        + NEXT_HOP_192_0_2_1
        + h("18")  # length 24
        + h("c63364"),  # 198.51.100.0/24
        id="update-as-path-two-full-segments-extended-length",
    ),
    pytest.param(
        UPDATE_ADD_PATH,
        ADD_PATH_V4,
        MARKER
        + h("0043")  # length 67
        + h("02")  # type UPDATE
        + h("0008")  # withdrawn routes length 8
        + h("00000001")  # path identifier 1 (RFC 7911 3)
        + h("18")  # length 24
        + h("c63364")  # 198.51.100.0/24
        + h("0014")  # total path attribute length 20
        + ORIGIN_IGP
        + AS_PATH_65001
        + NEXT_HOP_192_0_2_1
        + h("00000001")  # path identifier 1
        + h("18")  # length 24
        + h("cb0071")  # 203.0.113.0/24
        + h("00000002")  # path identifier 2
        + h("18")  # length 24
        + h("cb0071"),  # 203.0.113.0/24
        id="update-add-path-ipv4",
    ),
    pytest.param(
        Update(
            attributes=(
                MpReachNlri(2, 1, (v6("2001:db8::1"),), (net("2001:db8:1::/48", 10),)),
                Origin(0),
                AsPath.sequence(65001),
            )
        ),
        ADD_PATH_V6,
        MARKER
        + h("0047")  # length 71
        + h("02")  # type UPDATE
        + h("0000")  # withdrawn routes length 0
        + h("0030")  # total path attribute length 48
        + h("80")  # flags: optional non-transitive
        + h("0e")  # type MP_REACH_NLRI
        + h("20")  # length 32
        + h("0002")  # AFI 2
        + h("01")  # SAFI 1
        + h("10")  # next hop length 16
        + NH_2001_DB8_1  # next hop 2001:db8::1
        + h("00")  # reserved
        + h("0000000a")  # path identifier 10 (RFC 7911 3)
        + h("30")  # length 48
        + h("20010db80001")  # 2001:db8:1::/48
        + ORIGIN_IGP
        + AS_PATH_65001,
        id="update-add-path-ipv6-mp-reach",
    ),
    pytest.param(
        Update(
            attributes=(
                Origin(0),
                AsPath(
                    (
                        AsPathSegment(3, (64512, 64513)),
                        AsPathSegment(4, (64514,)),
                        AsPathSegment(2, (65001,)),
                    )
                ),
                NextHop(v4("192.0.2.1")),
                LocalPref(100),
            ),
            nlri=(net("198.51.100.0/24"),),
        ),
        DEFAULT,
        MARKER
        + h("0046")  # length 70
        + h("02")  # type UPDATE
        + h("0000")  # withdrawn routes length 0
        + h("002b")  # total path attribute length 43
        + ORIGIN_IGP
        + h("40")  # flags: well-known transitive
        + h("02")  # type AS_PATH
        + h("16")  # length 22
        + h("03")  # segment type AS_CONFED_SEQUENCE (RFC 5065 3)
        + h("02")  # segment length 2
        + h("0000fc00")  # AS 64512
        + h("0000fc01")  # AS 64513
        + h("04")  # segment type AS_CONFED_SET (RFC 5065 3)
        + h("01")  # segment length 1
        + h("0000fc02")  # AS 64514
        + h("02")  # segment type AS_SEQUENCE
        + h("01")  # segment length 1
        + h("0000fde9")  # AS 65001
        + NEXT_HOP_192_0_2_1
        + h("40")  # flags: well-known transitive
        + h("05")  # type LOCAL_PREF
        + h("04")  # length 4
        + h("00000064")  # 100
        + h("18")  # length 24
        + h("c63364"),  # 198.51.100.0/24
        id="update-as-path-confederation-segments",
    ),
    pytest.param(
        Update(
            attributes=(Origin(2), AsPath(()), NextHop(v4("192.0.2.1")), LocalPref(100)),
            nlri=(Prefix.host("192.0.2.10"),),
        ),
        DEFAULT,
        MARKER
        + h("0031")  # length 49
        + h("02")  # type UPDATE
        + h("0000")  # withdrawn routes length 0
        + h("0015")  # total path attribute length 21
        + h("40")  # flags: well-known transitive
        + h("01")  # type ORIGIN
        + h("01")  # length 1
        + h("02")  # INCOMPLETE
        + h("40")  # flags: well-known transitive
        + h("02")  # type AS_PATH
        + h("00")  # length 0: empty path, locally originated iBGP route (RFC 4271 5.1.2)
        + NEXT_HOP_192_0_2_1
        + h("40")  # flags: well-known transitive
        + h("05")  # type LOCAL_PREF
        + h("04")  # length 4
        + h("00000064")  # 100
        + h("20")  # length 32
        + h("c000020a"),  # 192.0.2.10/32
        id="update-empty-as-path-host-route",
    ),
    pytest.param(
        Update(
            withdrawn=(net("203.0.113.0/24"),),
            attributes=(Origin(0), AsPath.sequence(65001), NextHop(v4("192.0.2.1"))),
            nlri=(net("198.51.100.0/24"),),
        ),
        DEFAULT,
        MARKER
        + h("0033")  # length 51
        + h("02")  # type UPDATE
        + h("0004")  # withdrawn routes length 4
        + h("18")  # length 24
        + h("cb0071")  # 203.0.113.0/24
        + h("0014")  # total path attribute length 20
        + ORIGIN_IGP
        + AS_PATH_65001
        + NEXT_HOP_192_0_2_1
        + h("18")  # length 24
        + h("c63364"),  # 198.51.100.0/24
        id="update-withdraw-and-announce",
    ),
]

VECTOR_IDS = [p.id for p in VECTORS]


# --------------------------------------------------------------------------------------------------
# Table-driven tests
# --------------------------------------------------------------------------------------------------


def test_table_is_big_and_ids_unique() -> None:
    assert len(VECTORS) >= 35
    assert len(set(VECTOR_IDS)) == len(VECTOR_IDS)


@pytest.mark.parametrize(("obj", "ctx", "data"), VECTORS)
def test_vector_header_is_self_consistent(obj: Message, ctx: Negotiated, data: bytes) -> None:
    """Checks the hand-written bytes themselves (no codec): marker, length field, type octet."""
    assert data[:16] == MARKER
    assert int.from_bytes(data[16:18], "big") == len(data)
    assert data[18] == obj.TYPE


@pytest.mark.parametrize(("obj", "ctx", "data"), VECTORS)
def test_encode(obj: Message, ctx: Negotiated, data: bytes) -> None:
    assert encode(obj, ctx) == data


@pytest.mark.parametrize(("obj", "ctx", "data"), VECTORS)
def test_decode(obj: Message, ctx: Negotiated, data: bytes) -> None:
    msg = decode(data, ctx)
    assert msg == obj
    if isinstance(msg, Update):
        assert msg.errors == ()  # decoded clean, no RFC 7606 handling applied
        assert msg.handling is None


@pytest.mark.parametrize(("obj", "ctx", "data"), VECTORS)
def test_framer_one_byte_at_a_time(obj: Message, ctx: Negotiated, data: bytes) -> None:
    framer = Framer()
    out: list[tuple[int, Message]] = []
    for i in range(len(data)):
        framer.feed(data[i : i + 1])
        msg = framer.next_message(ctx)
        if msg is not None:
            out.append((i, msg))
    assert out == [(len(data) - 1, obj)]
    assert framer.pending() == 0
    assert framer.next_message(ctx) is None


@pytest.mark.parametrize(("obj", "ctx", "data"), VECTORS)
def test_framer_with_trailing_bytes(obj: Message, ctx: Negotiated, data: bytes) -> None:
    framer = Framer()
    framer.feed(data + TRAILING)
    assert framer.next_message(ctx) == obj
    assert framer.pending() == len(TRAILING)
    assert framer.next_message(ctx) is None  # 7 octets are not yet a header
    assert framer.pending() == len(TRAILING)
    # The rest of the KEEPALIVE completes the trailing message.
    framer.feed(MARKER[7:] + h("0013") + h("04"))
    assert framer.next_message(ctx) == Keepalive()
    assert framer.pending() == 0


@pytest.mark.parametrize(("obj", "ctx", "data"), VECTORS)
def test_decode_rejects_trailing_bytes(obj: Message, ctx: Negotiated, data: bytes) -> None:
    with pytest.raises(MessageHeaderError):
        decode(data + TRAILING, ctx)


# --------------------------------------------------------------------------------------------------
# Properties of particular vectors
# --------------------------------------------------------------------------------------------------


def _vector(vector_id: str) -> tuple[Message, Negotiated, bytes]:
    obj, ctx, data = VECTORS[VECTOR_IDS.index(vector_id)].values
    assert isinstance(obj, Message)
    assert isinstance(ctx, Negotiated)
    assert isinstance(data, bytes)
    return obj, ctx, data


def _decoded(vector_id: str) -> Message:
    _, ctx, data = _vector(vector_id)
    return decode(data, ctx)


def _decoded_update(vector_id: str) -> Update:
    msg = _decoded(vector_id)
    assert isinstance(msg, Update)
    return msg


def _decoded_open(vector_id: str) -> Open:
    msg = _decoded(vector_id)
    assert isinstance(msg, Open)
    return msg


@pytest.mark.parametrize(
    ("vector_id", "family"),
    [
        ("update-end-of-rib-ipv4", IPV4_UNICAST),
        ("update-end-of-rib-ipv6", IPV6_UNICAST),
        ("update-withdrawn-only", None),
        ("update-announce-all-attributes", None),
        ("update-mp-reach-ipv6-global-next-hop", None),
        ("update-mp-unreach-ipv6", None),
        ("update-attribute-over-255-extended-length", None),
        ("update-add-path-ipv4", None),
    ],
)
def test_end_of_rib(vector_id: str, family: Family | None) -> None:
    assert _decoded_update(vector_id).end_of_rib == family


def test_end_of_rib_constructor_matches_rfc_4724_shape() -> None:
    assert end_of_rib() == Update()
    assert end_of_rib(IPV4_UNICAST) == Update()
    assert end_of_rib(IPV6_UNICAST) == Update(attributes=(MpUnreachNlri(2, 1, ()),))


def test_announced_and_withdrawals_classic() -> None:
    full = _decoded_update("update-announce-all-attributes")
    assert full.announced() == [
        (IPV4_UNICAST, net("198.51.100.0/24")),
        (IPV4_UNICAST, net("203.0.113.64/26")),
    ]
    assert full.withdrawals() == []

    withdrawn = _decoded_update("update-withdrawn-only")
    assert withdrawn.announced() == []
    assert withdrawn.withdrawals() == [(IPV4_UNICAST, p) for p in WITHDRAWN_PREFIXES]
    assert [str(p) for _, p in withdrawn.withdrawals()] == [
        "0.0.0.0/0",
        "192.0.0.0/7",
        "203.0.113.128/25",
        "192.0.2.1/32",
    ]


def test_announced_and_withdrawals_multiprotocol() -> None:
    reach = _decoded_update("update-mp-reach-ipv6-global-next-hop")
    assert reach.announced() == [
        (IPV6_UNICAST, net("2001:db8:1::/48")),
        (IPV6_UNICAST, net("2001:db8:2:3::/64")),
    ]
    assert reach.withdrawals() == []

    ll = _decoded_update("update-mp-reach-ipv6-link-local-next-hop")
    mp = ll.get(MpReachNlri)
    assert isinstance(mp, MpReachNlri)
    assert mp.next_hop == (v6("2001:db8::1"), v6("fe80::1"))
    assert ll.announced() == [(IPV6_UNICAST, Prefix.host("2001:db8::53"))]

    unreach = _decoded_update("update-mp-unreach-ipv6")
    assert unreach.announced() == []
    assert unreach.withdrawals() == [
        (IPV6_UNICAST, net("2001:db8:1::/48")),
        (IPV6_UNICAST, net("2001:db8::/32")),
    ]

    eor = _decoded_update("update-end-of-rib-ipv6")
    assert eor.announced() == []
    assert eor.withdrawals() == []


def test_add_path_identifiers_survive() -> None:
    upd = _decoded_update("update-add-path-ipv4")
    assert [(f, p.path_id) for f, p in upd.withdrawals()] == [(IPV4_UNICAST, 1)]
    assert [(f, str(p)) for f, p in upd.announced()] == [
        (IPV4_UNICAST, "203.0.113.0/24#1"),
        (IPV4_UNICAST, "203.0.113.0/24#2"),
    ]
    v6_upd = _decoded_update("update-add-path-ipv6-mp-reach")
    assert [(f, p.path_id) for f, p in v6_upd.announced()] == [(IPV6_UNICAST, 10)]


def test_two_octet_vector_merges_to_true_path() -> None:
    upd = _decoded_update("update-two-octet-as4-path-as4-aggregator")
    merged = merge_as4(upd.attributes)
    as_path = next(a for a in merged if isinstance(a, AsPath))
    assert as_path.asns == (65001, 4200000001)
    agg = next(a for a in merged if isinstance(a, Aggregator))
    assert (agg.asn, agg.address) == (4200000001, v4("192.0.2.9"))
    assert not any(isinstance(a, (As4Path, As4Aggregator)) for a in merged)


def test_link_bandwidth_float() -> None:
    upd = _decoded_update("update-announce-all-attributes")
    ext = upd.get(ExtendedCommunities)
    assert isinstance(ext, ExtendedCommunities)
    lb = ext.values[2]
    assert lb.value == h("40 04 fde9 4cee6b28")
    assert lb.bandwidth() == 125000000.0
    assert not lb.transitive
    assert ext.values[0].bandwidth() is None


@pytest.mark.parametrize(
    ("vector_id", "my_as", "asn"),
    [
        ("open-minimal", 65001, 65001),
        ("open-hold-time-zero", 64512, 64512),
        ("open-build-all-capabilities", 65001, 65001),
        ("open-build-as4-as-trans", 23456, 4200000000),
        ("open-rfc9072-extended-optional-parameters", 65001, 65001),
    ],
)
def test_open_asn(vector_id: str, my_as: int, asn: int) -> None:
    msg = _decoded_open(vector_id)
    assert msg.my_as == my_as
    assert msg.asn == asn


def test_open_build_capabilities() -> None:
    msg = _decoded_open("open-build-all-capabilities")
    assert msg == OPEN_FULL
    assert [m.family for m in msg.get_all(Multiprotocol)] == [IPV4_UNICAST, IPV6_UNICAST]
    assert msg.get_all(FourOctetAs) == [FourOctetAs(65001)]
    assert isinstance(msg.capabilities[-1], FourOctetAs)
    gr = msg.get(GracefulRestart)
    assert gr is not None
    assert (gr.restart_time, gr.restarting, gr.notification) == (120, True, True)
    assert [f.forwarding for f in gr.families] == [True, False]
    assert msg.get(Fqdn) == Fqdn("rtr1", "example.net")
    assert msg.get(UnknownCapability) == UnknownCapability(200, b"\x01\x02")
    assert len(_decoded_open("open-rfc9072-extended-optional-parameters").capabilities) == 20


@pytest.mark.parametrize(
    ("vector_id", "text"),
    [
        ("notification-cease-shutdown-utf8", SHUTDOWN_TEXT),
        ("notification-cease-reset-message", RESET_TEXT),
        ("notification-cease-shutdown-empty", None),
        ("notification-hold-timer-expired-no-data", None),
        ("notification-update-attribute-length-error", None),
    ],
)
def test_shutdown_message(vector_id: str, text: str | None) -> None:
    msg = _decoded(vector_id)
    assert isinstance(msg, Notification)
    assert msg.shutdown_message == text


def test_decode_ignores_trailing_prefix_bits() -> None:
    """RFC 4271 4.3: "the value of trailing bits is irrelevant"; decode-only, never encoded this way."""
    data = (
        MARKER
        + h("001e")  # length 30
        + h("02")  # type UPDATE
        + h("0007")  # withdrawn routes length 7
        + h("07")  # length 7
        + h("c1")  # 192.0.0.0/7 with the irrelevant 8th bit set
        + h("19")  # length 25
        + h("cb0071ff")  # 203.0.113.128/25 with the 7 irrelevant low bits set
        + h("0000")  # total path attribute length 0
    )
    msg = decode(data)
    assert msg == Update(withdrawn=(net("192.0.0.0/7"), net("203.0.113.128/25")))
