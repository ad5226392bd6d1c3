"""Per-session BFD configuration (RFC 5880 §6.8.1 variables a user sets; RFC 5881/5883 addressing)."""

from __future__ import annotations

import ipaddress
import random
from dataclasses import dataclass, field

from .packet import AuthType

SLOW_TX_US = 1_000_000  # bfd.DesiredMinTxInterval floor while not Up (RFC 5880 §6.8.3)


def _normalise(addr: str, name: str) -> str:
    try:
        return str(ipaddress.ip_address(addr))
    except ValueError:
        raise ValueError(f"{name}: {addr!r} is not an IP address") from None


@dataclass(frozen=True, slots=True)
class SessionKey:
    """How a session is found when Your Discriminator is 0 (RFC 5881 §3, RFC 5883 §4).

    ``local`` None matches any local address (single hop sessions usually leave it open).
    """

    peer: str
    local: str | None = None
    multihop: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "peer", _normalise(self.peer, "peer"))
        if self.local is not None:
            object.__setattr__(self, "local", _normalise(self.local, "local"))
            if ipaddress.ip_address(self.local).version != ipaddress.ip_address(self.peer).version:
                raise ValueError(f"local: {self.local} is not of the peer's address family")

    def __str__(self) -> str:
        hop = " multihop" if self.multihop else ""
        return f"{self.peer}{f' from {self.local}' if self.local else ''}{hop}"


@dataclass(frozen=True, slots=True)
class AuthConfig:
    """Authentication for a session (RFC 5880 §6.7): one type, one key id and its secret."""

    auth_type: AuthType
    key_id: int
    secret: bytes

    def __post_init__(self) -> None:
        limit = 16 if self.auth_type in (AuthType.SIMPLE_PASSWORD, AuthType.KEYED_MD5,
                                         AuthType.METICULOUS_KEYED_MD5) else 20  # fmt: skip
        if not 1 <= len(self.secret) <= limit:
            raise ValueError(f"auth.secret: 1..{limit} octets for {self.auth_type.name}")
        if not 0 <= self.key_id <= 255:
            raise ValueError("auth.key_id: 0..255")


@dataclass(frozen=True, slots=True)
class BfdConfig:
    """One BFD session: addressing, timers in microseconds (RFC 5880 §6.8.1), TTL policy, auth.

    ``min_ttl``: lowest TTL / hop limit accepted on receipt; 255 for single hop (RFC 5881 §5), for
    multihop a configured value (RFC 5883 §5), 254 by default, i.e. one router in between.
    ``passive``: send nothing until the peer has sent something (RFC 5880 §6.1).
    """

    key: SessionKey
    desired_min_tx_us: int = 300_000
    required_min_rx_us: int = 300_000
    detect_mult: int = 3
    passive: bool = False
    min_ttl: int | None = None
    auth: AuthConfig | None = None
    rng: random.Random = field(default_factory=random.Random, compare=False, repr=False)

    def __post_init__(self) -> None:
        check_timers(self.desired_min_tx_us, self.required_min_rx_us, self.detect_mult)
        if self.min_ttl is not None and not 1 <= self.min_ttl <= 255:
            raise ValueError(f"min_ttl: {self.min_ttl} is not 1..255")
        if self.min_ttl is not None and not self.key.multihop and self.min_ttl != 255:
            raise ValueError("min_ttl: single hop sessions accept TTL 255 only (RFC 5881 §5)")

    @property
    def accepted_ttl(self) -> int:
        """The lowest received TTL / hop limit a packet of this session may carry."""
        if self.min_ttl is not None:
            return self.min_ttl
        return 254 if self.key.multihop else 255


def check_timers(desired_min_tx_us: int, required_min_rx_us: int, detect_mult: int) -> None:
    """One clear line naming the field when a timer is out of range."""
    if not 1 <= desired_min_tx_us <= 0xFFFFFFFF:
        raise ValueError(f"desired_min_tx_us: {desired_min_tx_us} must be 1..4294967295 microseconds")
    if not 0 <= required_min_rx_us <= 0xFFFFFFFF:
        raise ValueError(f"required_min_rx_us: {required_min_rx_us} must be 0..4294967295 microseconds")
    if not 1 <= detect_mult <= 255:
        raise ValueError(f"detect_mult: {detect_mult} must be 1..255")
