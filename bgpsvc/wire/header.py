"""The BGP message header: 16-octet marker, 2-octet length, 1-octet type (RFC 4271 §4.1, §6.1)."""

from __future__ import annotations

from struct import Struct

from .constants import HEADER_SIZE, MARKER, MAX_MESSAGE_SIZE, MessageType
from .errors import HeaderSubcode, MessageHeaderError

_HEADER = Struct(">16sHB")  # HEADER_SIZE octets


def encode_header(length: int, msg_type: int) -> bytes:
    """The 19 header octets of a message of ``length`` octets, header included (RFC 4271 §4.1)."""
    return _HEADER.pack(MARKER, length, msg_type)


def frame(msg_type: int, body: bytes) -> bytes:
    """Prefix ``body`` with its header (RFC 4271 §4.1)."""
    return _HEADER.pack(MARKER, HEADER_SIZE + len(body), msg_type) + body


def header_length_ok(msg_type: int, length: int, max_size: int) -> bool:
    """Per-type length bounds (RFC 4271 §6.1, RFC 8654 §4: OPEN and KEEPALIVE stay within 4096)."""
    if msg_type == MessageType.UPDATE:
        return 23 <= length <= max_size
    if msg_type == MessageType.KEEPALIVE:
        return length == HEADER_SIZE
    if msg_type == MessageType.OPEN:
        return 29 <= length <= MAX_MESSAGE_SIZE
    if msg_type == MessageType.NOTIFICATION:
        return 21 <= length <= max_size
    return 23 <= length <= max_size  # ROUTE-REFRESH; exact 23 is checked with code 7 (RFC 7313 §5)


def check_header(data: bytes | bytearray, pos: int, max_size: int) -> tuple[int, int]:
    """Validate the header at ``pos`` (RFC 4271 §6.1); return (length, type)."""
    marker, length, msg_type = _HEADER.unpack_from(data, pos)
    if marker != MARKER:
        raise MessageHeaderError(HeaderSubcode.CONNECTION_NOT_SYNCHRONIZED, b"", "marker is not all ones")
    if not 1 <= msg_type <= 5:
        raise MessageHeaderError(
            HeaderSubcode.BAD_MESSAGE_TYPE, bytes((msg_type,)), f"message type {msg_type}"
        )
    if not header_length_ok(msg_type, length, max_size):
        raise MessageHeaderError(
            HeaderSubcode.BAD_MESSAGE_LENGTH,
            length.to_bytes(2, "big"),
            f"length {length} invalid for message type {msg_type}",
        )
    return int(length), int(msg_type)
