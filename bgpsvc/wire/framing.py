"""Splitting a TCP byte stream into BGP messages, checking each header (RFC 4271 §4.1, §6.1).

Input may arrive in pieces of any size, down to one byte. Header errors are raised as soon as the
19 header octets are in, without waiting for the body.
"""

from __future__ import annotations

from .constants import HEADER_SIZE, MARKER, MAX_MESSAGE_SIZE, MessageType
from .errors import HeaderSubcode, MessageHeaderError
from .header import check_header
from .messages import Message, decode_message
from .negotiated import DEFAULT, Negotiated
from .update import decode_update

_COMPACT_AT = 1 << 16
_UPDATE = int(MessageType.UPDATE)
_MIN_UPDATE = HEADER_SIZE + 4  # RFC 4271 §4.3: withdrawn and path attribute lengths


class Framer:
    """Accumulates bytes and yields ``(type, body)`` frames (RFC 4271 §4.1)."""

    __slots__ = ("_buf", "_pos", "max_size")

    def __init__(self, max_size: int = MAX_MESSAGE_SIZE) -> None:
        self._buf = bytearray()
        self._pos = 0
        #: Largest accepted message; raise it to 65535 once extended messages are negotiated (RFC 8654).
        self.max_size = max_size

    def feed(self, data: bytes) -> None:
        """Append received bytes."""
        if self._pos >= _COMPACT_AT and self._pos * 2 >= len(self._buf):
            del self._buf[: self._pos]
            self._pos = 0
        self._buf += data

    def peek_type(self) -> int | None:
        """The type octet of the next (possibly incomplete) message, once its header is in."""
        if len(self._buf) - self._pos < HEADER_SIZE:
            return None
        return self._buf[self._pos + 18]

    def pending(self) -> int:
        """Bytes received but not yet returned as a frame."""
        return len(self._buf) - self._pos

    def next_frame(self) -> tuple[int, bytes] | None:
        """The next complete frame, or None; raises ``MessageHeaderError`` on a bad header."""
        buf, pos = self._buf, self._pos
        if len(buf) - pos < HEADER_SIZE:
            return None
        length, msg_type = check_header(buf, pos, self.max_size)
        end = pos + length
        if len(buf) < end:
            return None
        body = bytes(buf[pos + HEADER_SIZE : end])
        self._pos = end
        return msg_type, body

    def next_message(self, ctx: Negotiated = DEFAULT) -> Message | None:
        """The next decoded message, or None if incomplete."""
        frame = self.next_frame()
        return None if frame is None else decode_message(frame[0], frame[1], ctx)


def decode(data: bytes, ctx: Negotiated = DEFAULT) -> Message:
    """Decode exactly one whole message (header included); trailing bytes are a length error."""
    if type(data) is not bytes:
        data = bytes(data)  # slices of it become keys of the decoder's caches
    n = len(data)
    if (
        n >= _MIN_UPDATE
        and data[18] == _UPDATE
        and (data[16] << 8) | data[17] == n
        and (n <= MAX_MESSAGE_SIZE or ctx.extended_message)
        and data[:16] == MARKER
    ):
        # A well-formed UPDATE header, checked inline (what check_header finds for it, in one test).
        return decode_update(data, ctx, HEADER_SIZE)
    if n < HEADER_SIZE:
        raise MessageHeaderError(HeaderSubcode.BAD_MESSAGE_LENGTH, b"", "incomplete message")
    length, msg_type = check_header(data, 0, ctx.max_message_size)
    if length != len(data):
        reason = "incomplete message" if length > len(data) else "bytes after the message"
        raise MessageHeaderError(HeaderSubcode.BAD_MESSAGE_LENGTH, b"", reason)
    return decode_message(msg_type, bytes(data[HEADER_SIZE:]), ctx)


def split_messages(data: bytes, ctx: Negotiated = DEFAULT) -> list[Message]:
    """Decode a buffer holding whole messages back to back."""
    framer = Framer(ctx.max_message_size)
    framer.feed(data)
    out = []
    while (frame := framer.next_frame()) is not None:
        out.append(decode_message(frame[0], frame[1], ctx))
    if framer.pending():
        raise MessageHeaderError(HeaderSubcode.BAD_MESSAGE_LENGTH, b"", "truncated message at end of buffer")
    return out
