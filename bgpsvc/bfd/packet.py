"""BFD Control packets (RFC 5880 §4.1-§4.4): frozen values, ``decode_control`` / ``encode_control``.

The decoder never raises: a datagram that fails one of the reception checks of RFC 5880 §6.8.6 that can
be made on the packet alone comes back as a :class:`DropReason` instead of a :class:`ControlPacket`.
The checks that need a session (discriminator lookup, authentication against the configured keys) are
made by the endpoint and the session, which count drops with the same enum.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import Enum, IntEnum

BFD_VERSION = 1
HEADER_SIZE = 24  # mandatory section (RFC 5880 §4.1)
_HEADER = struct.Struct("!BBBBIIIII")
_KEYED = struct.Struct("!BBBBI")  # Auth Type, Auth Len, Key ID, Reserved, Sequence Number


class State(IntEnum):
    """Session states as carried in the Sta field (RFC 5880 §4.1)."""

    ADMIN_DOWN = 0
    DOWN = 1
    INIT = 2
    UP = 3

    def __str__(self) -> str:
        return ("AdminDown", "Down", "Init", "Up")[self.value]


class Diag(IntEnum):
    """Diagnostic codes (RFC 5880 §4.1); 9-31 are reserved and kept as plain ints when received."""

    NO_DIAGNOSTIC = 0
    CONTROL_DETECTION_TIME_EXPIRED = 1
    ECHO_FUNCTION_FAILED = 2
    NEIGHBOR_SIGNALED_SESSION_DOWN = 3
    FORWARDING_PLANE_RESET = 4
    PATH_DOWN = 5
    CONCATENATED_PATH_DOWN = 6
    ADMINISTRATIVELY_DOWN = 7
    REVERSE_CONCATENATED_PATH_DOWN = 8

    def __str__(self) -> str:
        return self.name.replace("_", " ").lower()


class AuthType(IntEnum):
    """Authentication types (RFC 5880 §4.2-§4.4)."""

    SIMPLE_PASSWORD = 1
    KEYED_MD5 = 2
    METICULOUS_KEYED_MD5 = 3
    KEYED_SHA1 = 4
    METICULOUS_KEYED_SHA1 = 5


#: Auth Len of the keyed types: header (8) + digest (MD5 16, SHA1 20).
KEYED_AUTH_LEN = {
    AuthType.KEYED_MD5: 24,
    AuthType.METICULOUS_KEYED_MD5: 24,
    AuthType.KEYED_SHA1: 28,
    AuthType.METICULOUS_KEYED_SHA1: 28,
}


class DropReason(Enum):
    """Why a received datagram was discarded (RFC 5880 §6.8.6, RFC 5881 §5, RFC 5883 §5)."""

    TOO_SHORT = "shorter than the mandatory section"
    BAD_VERSION = "version is not 1"
    BAD_LENGTH = "length field below minimum"
    LENGTH_EXCEEDS_PAYLOAD = "length field exceeds the datagram"
    DETECT_MULT_ZERO = "detect multiplier is 0"
    MULTIPOINT = "multipoint bit set"
    MY_DISCRIMINATOR_ZERO = "my discriminator is 0"
    YOUR_DISCRIMINATOR_ZERO = "your discriminator is 0 in state Init/Up"
    BAD_AUTH_SECTION = "malformed authentication section"
    NO_SESSION = "no session for the packet"
    ADDRESS_MISMATCH = "source address does not match the session"
    TTL = "TTL / hop limit check failed"
    AUTH_UNEXPECTED = "A bit set but no authentication configured"
    AUTH_MISSING = "A bit clear but authentication configured"
    AUTH_FAILED = "authentication failed"
    ADMIN_DOWN = "session is administratively down"


@dataclass(frozen=True, slots=True)
class SimplePassword:
    """Simple Password authentication section (RFC 5880 §4.2): 1-16 octets of password."""

    key_id: int
    password: bytes

    def __post_init__(self) -> None:
        if not 1 <= len(self.password) <= 16 or not 0 <= self.key_id <= 255:
            raise ValueError("simple password: 1..16 octets, key id 0..255")


@dataclass(frozen=True, slots=True)
class KeyedAuth:
    """Keyed / Meticulous Keyed MD5 or SHA1 section (RFC 5880 §4.3, §4.4); ``digest`` as carried."""

    auth_type: AuthType
    key_id: int
    sequence: int
    digest: bytes

    def __post_init__(self) -> None:
        if self.auth_type not in KEYED_AUTH_LEN:
            raise ValueError(f"keyed auth: {self.auth_type!r} is not a keyed type")
        if len(self.digest) != KEYED_AUTH_LEN[self.auth_type] - 8:
            raise ValueError(f"keyed auth: digest must be {KEYED_AUTH_LEN[self.auth_type] - 8} octets")
        if not 0 <= self.key_id <= 255 or not 0 <= self.sequence <= 0xFFFFFFFF:
            raise ValueError("keyed auth: key id 0..255, sequence 0..2**32-1")


Auth = SimplePassword | KeyedAuth
_U32 = 0xFFFFFFFF


@dataclass(frozen=True, slots=True)
class ControlPacket:
    """A BFD Control packet (RFC 5880 §4.1); intervals in microseconds; ``auth`` present iff the A bit."""

    state: State
    detect_mult: int
    my_discriminator: int
    your_discriminator: int = 0
    desired_min_tx: int = 1_000_000
    required_min_rx: int = 1_000_000
    required_min_echo_rx: int = 0
    diag: int = Diag.NO_DIAGNOSTIC
    poll: bool = False
    final: bool = False
    control_plane_independent: bool = False
    demand: bool = False
    multipoint: bool = False
    auth: Auth | None = None
    version: int = BFD_VERSION

    def __post_init__(self) -> None:
        if not 0 <= self.version <= 7 or not 0 <= self.diag <= 31:
            raise ValueError("version is 3 bits, diag 5 bits")
        if not 0 <= self.detect_mult <= 255:
            raise ValueError("detect_mult: 0..255")
        for name in ("my_discriminator", "your_discriminator", "desired_min_tx", "required_min_rx"):
            if not 0 <= getattr(self, name) <= _U32:
                raise ValueError(f"{name}: 0..2**32-1")
        if not 0 <= self.required_min_echo_rx <= _U32:
            raise ValueError("required_min_echo_rx: 0..2**32-1")

    @property
    def diagnostic(self) -> Diag | None:
        """The diag as a :class:`Diag`, or None for a reserved code."""
        return Diag(self.diag) if self.diag <= max(Diag) else None


def _encode_auth(auth: Auth) -> bytes:
    if isinstance(auth, SimplePassword):
        return bytes((AuthType.SIMPLE_PASSWORD, 3 + len(auth.password), auth.key_id)) + auth.password
    return (
        _KEYED.pack(auth.auth_type, KEYED_AUTH_LEN[auth.auth_type], auth.key_id, 0, auth.sequence)
        + auth.digest
    )


def encode_control(pkt: ControlPacket) -> bytes:
    """The packet's octets (RFC 5880 §4.1); Length covers the mandatory and the auth section."""
    auth = _encode_auth(pkt.auth) if pkt.auth is not None else b""
    flags = (
        pkt.state << 6
        | pkt.poll << 5
        | pkt.final << 4
        | pkt.control_plane_independent << 3
        | (pkt.auth is not None) << 2
        | pkt.demand << 1
        | pkt.multipoint
    )
    return (
        _HEADER.pack(
            pkt.version << 5 | pkt.diag,
            flags,
            pkt.detect_mult,
            HEADER_SIZE + len(auth),
            pkt.my_discriminator,
            pkt.your_discriminator,
            pkt.desired_min_tx,
            pkt.required_min_rx,
            pkt.required_min_echo_rx,
        )
        + auth
    )


def _decode_auth(section: bytes) -> Auth | DropReason:
    """The auth section (RFC 5880 §4.2-§4.4), ``section`` cut at the packet's Length."""
    if len(section) < 3 or section[1] > len(section) or section[1] < 3:
        return DropReason.BAD_AUTH_SECTION
    auth_type, auth_len, key_id = section[0], section[1], section[2]
    if auth_type == AuthType.SIMPLE_PASSWORD:
        if not 4 <= auth_len <= 19:
            return DropReason.BAD_AUTH_SECTION
        return SimplePassword(key_id, section[3:auth_len])
    if auth_type not in KEYED_AUTH_LEN or auth_len != KEYED_AUTH_LEN[AuthType(auth_type)]:
        return DropReason.BAD_AUTH_SECTION
    sequence = _KEYED.unpack_from(section)[4]
    return KeyedAuth(AuthType(auth_type), key_id, sequence, section[8:auth_len])


def decode_control(data: bytes) -> ControlPacket | DropReason:
    """Decode one datagram; every §6.8.6 check that needs no session yields a :class:`DropReason`."""
    if len(data) < HEADER_SIZE:
        return DropReason.TOO_SHORT
    vd, flags, mult, length, my_d, your_d, tx, rx, echo = _HEADER.unpack_from(data)
    auth_bit = bool(flags & 0x04)
    if vd >> 5 != BFD_VERSION:
        return DropReason.BAD_VERSION
    if length < HEADER_SIZE + (2 if auth_bit else 0):
        return DropReason.BAD_LENGTH
    if length > len(data):
        return DropReason.LENGTH_EXCEEDS_PAYLOAD
    if mult == 0:
        return DropReason.DETECT_MULT_ZERO
    if flags & 0x01:
        return DropReason.MULTIPOINT
    if my_d == 0:
        return DropReason.MY_DISCRIMINATOR_ZERO
    state = State(flags >> 6)
    if your_d == 0 and state not in (State.DOWN, State.ADMIN_DOWN):
        return DropReason.YOUR_DISCRIMINATOR_ZERO
    auth: Auth | None = None
    if auth_bit:
        decoded = _decode_auth(bytes(data[HEADER_SIZE:length]))
        if isinstance(decoded, DropReason):
            return decoded
        auth = decoded
    return ControlPacket(
        state=state,
        detect_mult=mult,
        my_discriminator=my_d,
        your_discriminator=your_d,
        desired_min_tx=tx,
        required_min_rx=rx,
        required_min_echo_rx=echo,
        diag=vd & 0x1F,
        poll=bool(flags & 0x20),
        final=bool(flags & 0x10),
        control_plane_independent=bool(flags & 0x08),
        demand=bool(flags & 0x02),
        auth=auth,
    )
