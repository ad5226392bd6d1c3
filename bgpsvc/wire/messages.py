"""OPEN, NOTIFICATION, KEEPALIVE and ROUTE-REFRESH (RFC 4271 §4.2/4.4/4.5, RFC 2918, RFC 7313, RFC 9072),
plus ``encode``/``decode_message`` dispatch over all five message types."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from struct import Struct
from typing import ClassVar, TypeVar

from .buffer import Buffer, BufferUnderrun
from .capabilities import Capability, FourOctetAs, decode_capabilities
from .constants import AS_TRANS, BGP_VERSION, MAX_MESSAGE_SIZE, MessageType, RouteRefreshSubtype
from .errors import (
    CeaseSubcode,
    ErrorCode,
    FsmSubcode,
    HeaderSubcode,
    MessageHeaderError,
    NotificationError,
    OpenMessageError,
    OpenSubcode,
    RouteRefreshMessageError,
    RouteRefreshSubcode,
    UpdateSubcode,
)
from .header import frame
from .negotiated import DEFAULT, Negotiated
from .update import Update, decode_update, encode_update

_OPEN_FIXED = Struct(">BHH4sB")
_RR = Struct(">HBB")
_CAPABILITY_PARAM = 2
_EXTENDED_PARAMS = 255  # RFC 9072 §2 marker in the Non-Ext OP Type field
_C = TypeVar("_C", bound=Capability)


@dataclass(frozen=True, slots=True)
class Open:
    """OPEN (RFC 4271 §4.2); capabilities in optional parameter 2 (RFC 5492), extended form per RFC 9072."""

    TYPE: ClassVar[int] = MessageType.OPEN

    my_as: int
    hold_time: int
    bgp_id: ipaddress.IPv4Address
    capabilities: tuple[Capability, ...] = ()
    version: int = BGP_VERSION

    def __post_init__(self) -> None:
        if not isinstance(self.bgp_id, ipaddress.IPv4Address):
            object.__setattr__(self, "bgp_id", ipaddress.IPv4Address(self.bgp_id))
        if not 0 <= self.my_as <= 0xFFFF:
            raise ValueError("the OPEN My Autonomous System field is 2 octets; use Open.build for 4-octet AS")
        if not 0 <= self.hold_time <= 0xFFFF:
            raise ValueError("hold time is 2 octets")

    @classmethod
    def build(
        cls,
        asn: int,
        hold_time: int,
        bgp_id: ipaddress.IPv4Address | str,
        capabilities: tuple[Capability, ...] = (),
    ) -> Open:
        """An OPEN for local AS ``asn``: AS_TRANS in My AS and a 4-octet AS capability (RFC 6793 §3)."""
        caps = (*(c for c in capabilities if not isinstance(c, FourOctetAs)), FourOctetAs(asn))
        return cls(asn if asn <= 0xFFFF else AS_TRANS, hold_time, ipaddress.IPv4Address(bgp_id), caps)

    @property
    def asn(self) -> int:
        """The sender's true AS: from the 4-octet AS capability if present (RFC 6793 §4.1)."""
        cap = self.get(FourOctetAs)
        return cap.asn if cap is not None else self.my_as

    def get(self, cls: type[_C]) -> _C | None:
        """The first capability of ``cls``."""
        for c in self.capabilities:
            if isinstance(c, cls):
                return c
        return None

    def get_all(self, cls: type[_C]) -> list[_C]:
        """Every capability of ``cls`` (Multiprotocol appears once per family)."""
        return [c for c in self.capabilities if isinstance(c, cls)]


@dataclass(frozen=True, slots=True)
class Keepalive:
    """KEEPALIVE (RFC 4271 §4.4): a header and nothing else."""

    TYPE: ClassVar[int] = MessageType.KEEPALIVE


@dataclass(frozen=True, slots=True)
class RouteRefresh:
    """ROUTE-REFRESH (RFC 2918 §3) with the RFC 7313 subtype (0 normal, 1 BoRR, 2 EoRR)."""

    TYPE: ClassVar[int] = MessageType.ROUTE_REFRESH

    afi: int
    safi: int
    subtype: int = RouteRefreshSubtype.NORMAL

    def __post_init__(self) -> None:
        if not (0 <= self.afi <= 0xFFFF and 0 <= self.safi <= 255 and 0 <= self.subtype <= 255):
            raise ValueError("ROUTE-REFRESH fields out of range")


_CODE_NAMES = {
    1: "Message Header Error",
    2: "OPEN Message Error",
    3: "UPDATE Message Error",
    4: "Hold Timer Expired",
    5: "Finite State Machine Error",
    6: "Cease",
    7: "ROUTE-REFRESH Message Error",
}
_SUBCODE_ENUMS: dict[
    int, type[HeaderSubcode | OpenSubcode | UpdateSubcode | FsmSubcode | CeaseSubcode | RouteRefreshSubcode]
] = {
    1: HeaderSubcode,
    2: OpenSubcode,
    3: UpdateSubcode,
    5: FsmSubcode,
    6: CeaseSubcode,
    7: RouteRefreshSubcode,
}
_SHUTDOWN_SUBCODES = (CeaseSubcode.ADMINISTRATIVE_SHUTDOWN, CeaseSubcode.ADMINISTRATIVE_RESET)
MAX_SHUTDOWN_MESSAGE = 255  # RFC 9003 §2


@dataclass(frozen=True, slots=True)
class Notification:
    """NOTIFICATION (RFC 4271 §4.5); Cease 2/4 may carry a shutdown communication (RFC 9003 §2)."""

    TYPE: ClassVar[int] = MessageType.NOTIFICATION

    code: int
    subcode: int = 0
    data: bytes = b""

    def __post_init__(self) -> None:
        if not (0 <= self.code <= 255 and 0 <= self.subcode <= 255):
            raise ValueError("code and subcode are octets")

    @classmethod
    def shutdown(cls, message: str = "", subcode: int = CeaseSubcode.ADMINISTRATIVE_SHUTDOWN) -> Notification:
        """Cease with an RFC 9003 shutdown communication (UTF-8, at most 255 octets)."""
        if subcode not in _SHUTDOWN_SUBCODES:
            raise ValueError("a shutdown communication goes in Cease subcode 2 or 4")
        text = message.encode("utf-8")
        if len(text) > MAX_SHUTDOWN_MESSAGE:
            raise ValueError(f"shutdown communication is {len(text)} octets; RFC 9003 allows 255")
        return cls(ErrorCode.CEASE, subcode, bytes((len(text),)) + text if text else b"")

    @classmethod
    def from_error(cls, exc: NotificationError) -> Notification:
        """The NOTIFICATION an error means."""
        return cls(exc.code, exc.subcode, exc.data)

    @property
    def shutdown_message(self) -> str | None:
        """The RFC 9003 communication, or None if absent or malformed (then ``data`` is still there)."""
        if self.code != ErrorCode.CEASE or self.subcode not in _SHUTDOWN_SUBCODES or not self.data:
            return None
        length = self.data[0]
        if length + 1 > len(self.data):
            return None
        try:
            return self.data[1 : 1 + length].decode("utf-8")
        except UnicodeDecodeError:
            return None

    def __str__(self) -> str:
        name = _CODE_NAMES.get(self.code, f"code {self.code}")
        sub_enum = _SUBCODE_ENUMS.get(self.code)
        try:
            sub = sub_enum(self.subcode).name.replace("_", " ").title() if sub_enum else str(self.subcode)
        except ValueError:
            sub = f"subcode {self.subcode}"
        text = f"{name} / {sub}"
        msg = self.shutdown_message
        return f"{text}: {msg!r}" if msg is not None else text


Message = Open | Update | Notification | Keepalive | RouteRefresh


def _encode_open(msg: Open) -> bytes:
    caps = [c.encode() for c in msg.capabilities]
    fixed = (msg.version, msg.my_as, msg.hold_time, msg.bgp_id.packed)
    # One capability per optional parameter; the classic form needs each parameter, and all of them
    # together, to fit one octet of length.
    if all(len(c) <= 255 for c in caps):
        regular = b"".join(bytes((_CAPABILITY_PARAM, len(c))) + c for c in caps)
        if len(regular) <= 255:
            return _OPEN_FIXED.pack(*fixed, len(regular)) + regular
    # RFC 9072 §2: Non-Ext OP Len 255, Non-Ext OP Type 255, 2-octet lengths from here on.
    ext = b"".join(bytes((_CAPABILITY_PARAM,)) + len(c).to_bytes(2, "big") + c for c in caps)
    return _OPEN_FIXED.pack(*fixed, 255) + bytes((_EXTENDED_PARAMS,)) + len(ext).to_bytes(2, "big") + ext


def _decode_open(body: bytes) -> Open:
    buf = Buffer(body)
    try:
        version, my_as, hold_time, bgp_id, opt_len = _OPEN_FIXED.unpack_from(body)
        if version != BGP_VERSION:
            raise OpenMessageError(
                OpenSubcode.UNSUPPORTED_VERSION_NUMBER,
                BGP_VERSION.to_bytes(2, "big"),
                f"unsupported version {version}",
            )
        buf.pos = _OPEN_FIXED.size
        extended = opt_len > 0 and buf.remaining() >= 1 and body[buf.pos] == _EXTENDED_PARAMS
        if extended:
            buf.pos += 1
            opt_len = buf.pull_uint16()
        if opt_len != buf.remaining():
            raise OpenMessageError(OpenSubcode.UNSPECIFIC, b"", "optional parameters length does not match")
        caps: list[Capability] = []
        while not buf.eof():
            ptype = buf.pull_uint8()
            plen = buf.pull_uint16() if extended else buf.pull_uint8()
            value = buf.pull_bytes(plen)
            if ptype != _CAPABILITY_PARAM:
                raise OpenMessageError(
                    OpenSubcode.UNSUPPORTED_OPTIONAL_PARAMETER, b"", f"optional parameter type {ptype}"
                )
            caps += decode_capabilities(value)
    except BufferUnderrun:
        raise OpenMessageError(OpenSubcode.UNSPECIFIC, b"", "truncated OPEN") from None
    if hold_time in (1, 2):
        raise OpenMessageError(OpenSubcode.UNACCEPTABLE_HOLD_TIME, b"", f"hold time {hold_time}")
    if bgp_id == b"\x00\x00\x00\x00":
        raise OpenMessageError(OpenSubcode.BAD_BGP_IDENTIFIER, b"", "BGP identifier 0.0.0.0")
    return Open(my_as, hold_time, ipaddress.IPv4Address(bgp_id), tuple(caps), version)


def encode_body(msg: Message) -> bytes:
    """The message body after the header."""
    if isinstance(msg, Open):
        return _encode_open(msg)
    if isinstance(msg, Notification):
        return bytes((msg.code, msg.subcode)) + msg.data
    if isinstance(msg, Keepalive):
        return b""
    if isinstance(msg, RouteRefresh):
        return _RR.pack(msg.afi, msg.subtype, msg.safi)
    raise TypeError(f"not a BGP message: {msg!r}")


#: A KEEPALIVE is always these 19 octets (RFC 4271 §4.4): sessions send it without encoding.
KEEPALIVE_BYTES = frame(MessageType.KEEPALIVE, b"")


def encode(msg: Message, ctx: Negotiated = DEFAULT) -> bytes:
    """A whole message, header included (RFC 4271 §4.1)."""
    if isinstance(msg, Update):
        return encode_update(msg, ctx)
    if isinstance(msg, Keepalive):
        return KEEPALIVE_BYTES
    data = frame(msg.TYPE, encode_body(msg))
    limit = MAX_MESSAGE_SIZE if isinstance(msg, Open) else ctx.max_message_size
    if len(data) > limit:
        raise ValueError(f"{type(msg).__name__} of {len(data)} octets exceeds {limit}")
    return data


def decode_message(msg_type: int, body: bytes, ctx: Negotiated = DEFAULT) -> Message:
    """Decode a body whose header the framer has already checked."""
    if msg_type == MessageType.UPDATE:
        return decode_update(body, ctx)
    if msg_type == MessageType.KEEPALIVE:
        return Keepalive()
    if msg_type == MessageType.OPEN:
        return _decode_open(body)
    if msg_type == MessageType.NOTIFICATION:
        return Notification(body[0], body[1], bytes(body[2:]))
    if msg_type == MessageType.ROUTE_REFRESH:
        if len(body) != 4:
            # RFC 7313 §5: the data field carries the whole offending message.
            raise RouteRefreshMessageError(
                RouteRefreshSubcode.INVALID_MESSAGE_LENGTH,
                frame(MessageType.ROUTE_REFRESH, body),
                "ROUTE-REFRESH length is not 23",
            )
        afi, subtype, safi = _RR.unpack(body)
        return RouteRefresh(afi, safi, subtype)
    raise MessageHeaderError(HeaderSubcode.BAD_MESSAGE_TYPE, bytes((msg_type,)), f"message type {msg_type}")
