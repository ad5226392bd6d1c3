"""ExaBGP's own BGP UPDATE codec, wrapped for the codec throughput benchmark.

ExaBGP (PyPI ``exabgp``) is used strictly as a library: routes are built as the
``Change`` objects its configuration parser and API produce, encoded with
``Update(nlris, attributes).messages(negotiated)`` (the call its reactor makes in
``Protocol.new_update`` to send to a peer) and decoded with
``Message.unpack(msg_id, body, Direction.IN, negotiated)`` (the call its reactor
makes in ``Protocol.read_message`` on received data).

The ``Negotiated`` object describes one eBGP session, AS 65001 (the encoder) to
AS 65000 (the decoder), where both OPENs carry exactly two capabilities:
Multiprotocol IPv4/unicast and 4-octet AS.  The peer's OPEN goes through
ExaBGP's OPEN decoder and the result is checked with ``Negotiated.validate``.
No Extended Message (so the message size is 4096) and no ADD-PATH.

eBGP matters: on an iBGP session ExaBGP's ``Attributes.pack`` would add a
LOCAL_PREF 100 that the benchmark's attribute set does not have.

If ``exabgp`` cannot be imported, importing this module still works and
``available()`` returns False.

Self-check and figures (needs the interpreter that has exabgp installed)::

    /tmp/probe-venv/bin/python bench/exabgp_codec.py
"""

from __future__ import annotations

import ipaddress
import struct
import time
from typing import Any, cast

try:
    from exabgp.bgp.message import Action, Message, Open, Update
    from exabgp.bgp.message.direction import Direction
    from exabgp.bgp.message.open import ASN, HoldTime, RouterID, Version
    from exabgp.bgp.message.open.capability import (
        ASN4,
        Capabilities,
        Capability,
        MultiProtocol,
        Negotiated,
    )
    from exabgp.bgp.message.update.attribute import (
        MED,
        SEQUENCE,
        ASPath,
        Attribute,
        Attributes,
        Communities,
        NextHop,
        Origin,
    )
    from exabgp.bgp.message.update.attribute.community.initial.community import Community
    from exabgp.bgp.message.update.attribute.community.large.communities import LargeCommunities
    from exabgp.bgp.message.update.attribute.community.large.community import LargeCommunity
    from exabgp.bgp.message.update.nlri import CIDR, INET
    from exabgp.bgp.neighbor import Neighbor
    from exabgp.environment import getenv
    from exabgp.logger import log
    from exabgp.protocol.family import AFI, SAFI
    from exabgp.protocol.ip import IP
    from exabgp.rib.change import Change
except Exception as exc:  # ImportError, or anything exabgp's import-time setup may raise
    _IMPORT_ERROR: BaseException | None = exc
else:
    _IMPORT_ERROR = None

__all__ = [
    "available",
    "build_routes_distinct",
    "build_routes_sets",
    "build_routes_shared",
    "decode",
    "describe",
    "encode",
]

# The session.  The encoding speaker is AS 65001, the first AS of the benchmark's AS_PATH.
_LOCAL_AS = 65001
_LOCAL_ID = "192.0.2.254"
_PEER_AS = 65000
_PEER_ID = "192.0.2.253"
_HOLD_TIME = 180

# The benchmark routes.
_FIRST_PREFIX = int(ipaddress.IPv4Address("10.0.0.0"))
_AS_PATH = (65001, 65002)
_NEXT_HOP = "192.0.2.1"
_SHARED_MED = 100
_SHARED_COMMUNITIES = ((65001, 100), (65535, 0))

_HEADER_LEN = 19
_MARKER = b"\xff" * 16
_UPDATE = 2

_state: dict[str, Any] = {}


def _setup_exabgp() -> None:
    """Make ExaBGP's logger usable and quiet, once.

    ExaBGP's ``log`` has no backend until ``log.init(env)`` runs (its ``debug`` calls would
    fail on ``None``), so initialise it from its default ``Env``, sending output to stderr,
    then ``log.silence()`` it as ``exabgp decode`` does: debug/info/warning/error become
    no-ops, which is also the cheapest setting for ExaBGP in a benchmark.  ``critical``
    stays, so a route ExaBGP refuses to pack (``can not pack one NLRI``) is still reported.
    """
    if _state.get("setup"):
        return
    env = getenv()
    env.log.destination = "stderr"
    env.log.all = False
    env.log.parser = False
    env.log.routes = False
    log.init(env)
    log.silence()
    _state["setup"] = True


def _capabilities(asn: int) -> Any:
    """The capabilities one side puts in its OPEN: MP IPv4/unicast and 4-octet AS."""
    capabilities = Capabilities()
    multiprotocol = MultiProtocol()
    multiprotocol.append((AFI.ipv4, SAFI.unicast))
    capabilities[Capability.CODE.MULTIPROTOCOL] = multiprotocol
    capabilities[Capability.CODE.FOUR_BYTES_ASN] = ASN4(asn)
    return capabilities


def _negotiated(local_as: int, local_id: str, peer_as: int, peer_id: str) -> Any:
    """A ``Negotiated`` for one side of the session, built the way ExaBGP's reactor builds it.

    The local OPEN is handed to ``sent()``; the peer's OPEN is packed to the wire, parsed back
    with ``Open.unpack_message`` and handed to ``received()``, which runs the negotiation.
    """
    neighbor = Neighbor()
    neighbor["local-as"] = ASN(local_as)
    neighbor["peer-as"] = ASN(peer_as)
    neighbor["router-id"] = RouterID(local_id)
    neighbor["capability"]["asn4"] = True
    neighbor["capability"]["extended-message"] = False
    neighbor["capability"]["add-path"] = 0
    neighbor.add_family((AFI.ipv4, SAFI.unicast))

    negotiated = Negotiated(neighbor)
    sent = Open(Version(4), ASN(local_as), HoldTime(_HOLD_TIME), RouterID(local_id), _capabilities(local_as))
    peer = Open(Version(4), ASN(peer_as), HoldTime(_HOLD_TIME), RouterID(peer_id), _capabilities(peer_as))
    negotiated.sent(sent)
    negotiated.received(Open.unpack_message(peer.message()[_HEADER_LEN:], Direction.IN, negotiated))

    error = negotiated.validate(neighbor)
    if error is not None:
        raise RuntimeError(f"exabgp refused the benchmark session: {error}")
    if not negotiated.asn4 or negotiated.families != [(AFI.ipv4, SAFI.unicast)]:
        raise RuntimeError("exabgp did not negotiate 4-octet AS and IPv4 unicast")
    if negotiated.msg_size != 4096 or negotiated.addpath.send(AFI.ipv4, SAFI.unicast):
        raise RuntimeError("exabgp negotiated extended messages or add-path")
    return negotiated


def _sender() -> Any:
    """The encoding side of the session (AS 65001 sending to AS 65000)."""
    return _negotiated(_LOCAL_AS, _LOCAL_ID, _PEER_AS, _PEER_ID)


def _receiver() -> Any:
    """The decoding side of the session (AS 65000 receiving from AS 65001).

    A fresh one per ``decode()`` call: ExaBGP keeps a one-entry cache of the last attribute
    set parsed on the session (``Negotiated.cached_attributes``), and each decode run should
    start as a new session would.
    """
    return _negotiated(_PEER_AS, _PEER_ID, _LOCAL_AS, _LOCAL_ID)


def _attributes(med: int, communities: tuple[tuple[int, int], ...]) -> Any:
    """One ExaBGP attribute set: ORIGIN IGP, AS_PATH, NEXT_HOP, MED, COMMUNITIES."""
    attributes = Attributes()
    attributes.add(Origin(Origin.IGP))
    attributes.add(ASPath([SEQUENCE([ASN(asn) for asn in _AS_PATH])]))
    attributes.add(NextHop(_NEXT_HOP))
    attributes.add(MED(med))
    wanted = Communities()
    for high, low in communities:
        wanted.add(Community(struct.pack("!HH", high, low)))
    attributes.add(wanted)
    return attributes


def _change(index: int, attributes: Any, nexthop: Any) -> Any:
    """Route ``index``: 10.0.0.0 + index /32, announced, as ExaBGP's parsers build it."""
    nlri = INET(AFI.ipv4, SAFI.unicast, Action.ANNOUNCE)
    nlri.cidr = CIDR(struct.pack("!L", _FIRST_PREFIX + index), 32)
    nlri.nexthop = nexthop
    change = Change(nlri, attributes)
    # ExaBGP computes both indexes when a route enters its adj-rib-out, not when it sends;
    # computing them here keeps that work out of the timed region for every run alike.
    change.index()
    attributes.index()
    return change


def build_routes_shared(n: int) -> object:
    """``n`` IPv4 /32 routes (10.0.0.0 + i) sharing ONE ExaBGP ``Attributes`` object.

    ORIGIN IGP, AS_PATH SEQUENCE [65001, 65002], NEXT_HOP 192.0.2.1, MED 100,
    COMMUNITIES [65001:100, 65535:0].  Returns a list of ExaBGP ``Change`` objects.
    """
    _setup_exabgp()
    attributes = _attributes(_SHARED_MED, _SHARED_COMMUNITIES)
    nexthop = IP.create(_NEXT_HOP)
    return [_change(index, attributes, nexthop) for index in range(n)]


def build_routes_distinct(n: int) -> object:
    """``n`` IPv4 /32 routes (10.0.0.0 + i), route i with its own ``Attributes``.

    As ``build_routes_shared`` but MED = i and COMMUNITIES [65001:(i % 65536)].
    Returns a list of ExaBGP ``Change`` objects.
    """
    _setup_exabgp()
    nexthop = IP.create(_NEXT_HOP)
    return [_change(index, _attributes(index, ((65001, index % 65536),)), nexthop) for index in range(n)]


#: One attribute set and its prefixes, neutral between the two codecs (built by bench/codec.py):
#: (origin, AS_PATH AS numbers, next hop, MED or None, communities, large communities,
#: ((IPv4 address as int, prefix length), ...)).
RouteSet = tuple[
    int,
    tuple[int, ...],
    str,
    "int | None",
    tuple[int, ...],
    tuple[tuple[int, int, int], ...],
    tuple[tuple[int, int], ...],
]


def _set_attributes(route_set: RouteSet) -> Any:
    """ExaBGP ``Attributes`` for one ``RouteSet``, built with the classes its parser uses."""
    origin, as_path, next_hop, med, communities, large, _ = route_set
    attributes = Attributes()
    attributes.add(Origin(origin))
    attributes.add(ASPath([SEQUENCE([ASN(asn) for asn in as_path])]))
    attributes.add(NextHop(next_hop))
    if med is not None:
        attributes.add(MED(med))
    if communities:
        wanted = Communities()
        for value in communities:
            wanted.add(Community(struct.pack("!L", value)))
        attributes.add(wanted)
    if large:
        wanted_large = LargeCommunities()
        for triple in large:
            wanted_large.add(LargeCommunity(struct.pack("!LLL", *triple)))
        attributes.add(wanted_large)
    return attributes


def build_routes_sets(route_sets: list[RouteSet]) -> object:
    """ExaBGP ``Change`` objects for ``route_sets``: one ``Attributes`` per set, shared by its prefixes."""
    _setup_exabgp()
    changes = []
    hops: dict[str, Any] = {}
    for route_set in route_sets:
        attributes = _set_attributes(route_set)
        next_hop = route_set[2]
        nexthop = hops.get(next_hop) or hops.setdefault(next_hop, IP.create(next_hop))
        for address, length in route_set[6]:
            nlri = INET(AFI.ipv4, SAFI.unicast, Action.ANNOUNCE)
            nlri.cidr = CIDR(struct.pack("!L", address), length)
            nlri.nexthop = nexthop
            change = Change(nlri, attributes)
            change.index()
            changes.append(change)
        attributes.index()
    return changes


def describe(message: bytes) -> list[tuple[tuple[int, int], tuple[Any, ...]]]:
    """Decode one UPDATE with ExaBGP and read back, per announced prefix, the attribute values in the
    ``RouteSet`` layout: ((address, length), (origin, AS numbers, next hop, MED, communities, large))."""
    update = Message.unpack(_UPDATE, message[_HEADER_LEN:], Direction.IN, _receiver())
    attributes = update.attributes
    code = Attribute.CODE
    origin = attributes[code.ORIGIN].origin
    as_path = tuple(int(asn) for segment in attributes[code.AS_PATH].aspath for asn in segment)
    med = attributes[code.MED].med if code.MED in attributes else None
    communities: tuple[int, ...] = ()
    if code.COMMUNITY in attributes:
        communities = tuple(
            struct.unpack("!L", c.community)[0] for c in attributes[code.COMMUNITY].communities
        )
    large: tuple[tuple[int, ...], ...] = ()
    if code.LARGE_COMMUNITY in attributes:
        large = tuple(
            struct.unpack("!LLL", c.large_community) for c in attributes[code.LARGE_COMMUNITY].communities
        )
    out = []
    for nlri in update.nlris:
        address = struct.unpack("!L", nlri.cidr.ton().ljust(4, b"\x00"))[0]
        values = (origin, as_path, str(nlri.nexthop), med, communities, large)
        out.append(((address, nlri.cidr.mask), values))
    return out


def encode(routes: object) -> list[bytes]:
    """Encode ``routes`` (from a ``build_routes_*``) into full BGP UPDATE messages.

    Routes are grouped by ``Attributes.index()``, the key ExaBGP's adj-rib-out groups on
    (with ``group-updates``, its default), and each group goes through
    ``Update(nlris, attributes).messages(negotiated)``, which packs the attributes once
    and fills each message up to 4096 octets.  Returns the messages, 19-octet header
    included, in the order ExaBGP produces them.
    """
    negotiated = _sender()
    groups: dict[str, tuple[Any, list[Any]]] = {}
    for change in cast("list[Any]", routes):
        attributes = change.attributes
        key = attributes.index()
        group = groups.get(key)
        if group is None:
            groups[key] = (attributes, [change.nlri])
        else:
            group[1].append(change.nlri)
    messages: list[bytes] = []
    for attributes, nlris in groups.values():
        messages.extend(Update(nlris, attributes).messages(negotiated))
    return messages


def decode(messages: list[bytes]) -> int:
    """Decode full BGP messages with ExaBGP's receive path; return the prefixes announced.

    Each message's header is checked (marker, length, type UPDATE) and the body handed to
    ``Message.unpack(..., Direction.IN, negotiated)``, which builds every attribute object and
    an ``INET`` NLRI object (with its next hop) per prefix.  An UPDATE ExaBGP decides to treat
    as withdraw, or anything that is not a well-formed UPDATE, raises ``ValueError``.
    """
    negotiated = _receiver()
    announced = 0
    for number, data in enumerate(messages):
        if len(data) < _HEADER_LEN or data[:16] != _MARKER:
            raise ValueError(f"message {number}: no BGP marker")
        length = (data[16] << 8) | data[17]
        if length != len(data) or length > negotiated.msg_size:
            raise ValueError(f"message {number}: bad length {length} for {len(data)} octets")
        if data[18] != _UPDATE:
            raise ValueError(f"message {number}: type {data[18]} is not UPDATE")
        update = Message.unpack(_UPDATE, data[_HEADER_LEN:], Direction.IN, negotiated)
        if update.EOR:
            continue
        if Attribute.CODE.INTERNAL_TREAT_AS_WITHDRAW in update.attributes:
            raise ValueError(f"message {number}: exabgp treats this UPDATE as withdraw")
        for nlri in update.nlris:
            if nlri.action == Action.ANNOUNCE:
                announced += 1
    return announced


def available() -> bool:
    """True if ``exabgp`` imports and three shared and three distinct routes round-trip through it."""
    if "available" in _state:
        return bool(_state["available"])
    ok = False
    if _IMPORT_ERROR is None:
        try:
            ok = decode(encode(build_routes_shared(3))) == 3 and decode(encode(build_routes_distinct(3))) == 3
        except Exception:
            ok = False
    _state["available"] = ok
    return ok


if _IMPORT_ERROR is None:
    try:
        _setup_exabgp()
    except Exception as exc:
        _IMPORT_ERROR = exc


def _hexdump(data: bytes) -> str:
    """16 octets per line, offset first."""
    rows = range(0, len(data), 16)
    return "\n".join(f"  {offset:04x}  {data[offset : offset + 16].hex(' ')}" for offset in rows)


def _layout(message: bytes) -> str:
    """Where the fields of one UPDATE sit, read straight off the octets."""
    length, kind, withdrawn = struct.unpack("!HBH", message[16:21])
    attr_at = 21 + withdrawn
    (attr_len,) = struct.unpack("!H", message[attr_at : attr_at + 2])
    nlri_at = attr_at + 2 + attr_len
    lines = [
        "  0x00-0x0f marker ff*16",
        f"  0x10-0x11 length {length}, 0x12 type {kind}",
        f"  0x13-0x14 withdrawn routes length {withdrawn}",
        f"  0x{attr_at:02x}-0x{attr_at + 1:02x} total path attribute length {attr_len}",
    ]
    offset = attr_at + 2
    while offset < nlri_at:
        flags, code = message[offset], message[offset + 1]
        if flags & 0x10:  # extended length
            header, size = 4, struct.unpack("!H", message[offset + 2 : offset + 4])[0]
        else:
            header, size = 3, message[offset + 2]
        value = message[offset + header : offset + header + size].hex(" ")
        lines.append(f"  0x{offset:02x} attribute flags 0x{flags:02x} type {code} length {size}: {value}")
        offset += header + size
    first = message[nlri_at : nlri_at + 5]
    lines.append(
        f"  0x{nlri_at:02x} NLRI: {len(message) - nlri_at} octets, first {first.hex(' ')}"
        f" = /{first[0]} {ipaddress.IPv4Address(first[1:5])}"
    )
    return "\n".join(lines)


def _best_of_3(function: Any, argument: Any) -> tuple[float, Any]:
    """Lowest wall time of three calls, and the last call's result."""
    best = float("inf")
    result = None
    for _ in range(3):
        start = time.perf_counter()
        result = function(argument)
        best = min(best, time.perf_counter() - start)
    return best, result


def _main() -> None:
    """Round-trip check, byte layout of the first message, and throughput figures."""
    if not available():
        raise SystemExit(f"exabgp is not usable here: {_IMPORT_ERROR!r}")
    from exabgp.version import version  # noqa: PLC0415 - only known to exist once available()

    print(f"exabgp {version}")
    for name, build, n in (("shared", build_routes_shared, 1000), ("distinct", build_routes_distinct, 100)):
        messages = encode(build(n))
        decoded = decode(messages)
        octets = sum(map(len, messages))
        print(f"{name:8} n={n}: {len(messages)} messages, {octets} octets, decoded {decoded}")
        assert decoded == n, (name, decoded, n)
        assert all(len(message) <= 4096 for message in messages)

    first = encode(build_routes_shared(1000))[0]
    print("\nfirst shared message, first 64 octets:")
    print(_hexdump(first[:64]))
    print(_layout(first))

    print("\nthroughput, best of 3 (prefixes per second):")
    timed = (("shared", build_routes_shared, 100_000), ("distinct", build_routes_distinct, 10_000))
    for name, build, n in timed:
        routes = build(n)
        encode_time, messages = _best_of_3(encode, routes)
        decode_time, decoded = _best_of_3(decode, messages)
        assert decoded == n, (name, decoded, n)
        print(
            f"  {name:8} n={n:>6}: {len(messages):>5} messages;"
            f" encode {n / encode_time:>10,.0f}/s ({encode_time * 1000:7.1f} ms);"
            f" decode {n / decode_time:>10,.0f}/s ({decode_time * 1000:7.1f} ms)"
        )


if __name__ == "__main__":
    _main()
