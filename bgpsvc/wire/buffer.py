"""Bounds-checked big-endian reader for the non-hot parts of the codec (the OPEN message).

``pull_*`` raise ``BufferUnderrun``; the decoder that owns the buffer turns it into the NOTIFICATION
its RFC mandates, because only it knows which one that is.
"""

from __future__ import annotations

from struct import Struct

_U16 = Struct(">H")


class BufferUnderrun(Exception):
    """Fewer bytes remain than a field needs."""


class Buffer:
    """A read cursor over immutable bytes."""

    __slots__ = ("data", "end", "pos")

    def __init__(self, data: bytes, pos: int = 0, end: int | None = None) -> None:
        self.data = data
        self.pos = pos
        self.end = len(data) if end is None else end

    def remaining(self) -> int:
        """Bytes left before ``end``."""
        return self.end - self.pos

    def eof(self) -> bool:
        """True when nothing is left."""
        return self.pos >= self.end

    def pull_uint8(self) -> int:
        """One octet."""
        if self.pos + 1 > self.end:
            raise BufferUnderrun
        value = self.data[self.pos]
        self.pos += 1
        return value

    def pull_uint16(self) -> int:
        """Two octets, network order."""
        if self.pos + 2 > self.end:
            raise BufferUnderrun
        (value,) = _U16.unpack_from(self.data, self.pos)
        self.pos += 2
        return int(value)

    def pull_bytes(self, n: int) -> bytes:
        """``n`` octets."""
        if n < 0 or self.pos + n > self.end:
            raise BufferUnderrun
        value = self.data[self.pos : self.pos + n]
        self.pos += n
        return bytes(value)
