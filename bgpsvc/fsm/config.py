"""Per-peer session configuration (RFC 4271 §8, §10): frozen, validated, with the injected RNG."""

from __future__ import annotations

import ipaddress
import random
from dataclasses import dataclass, field

from ..wire import IPV4_UNICAST, Family


@dataclass(frozen=True, slots=True)
class GracefulRestartConfig:
    """Graceful restart as advertised (RFC 4724 §3)."""

    restart_time: int = 120
    #: Set the Restart State bit: we are coming back from a restart and the peer should keep our routes.
    restarting: bool = False
    #: Forwarding state preserved across the restart, advertised per family (F bit).
    forwarding: bool = True
    #: RFC 8538 N bit: NOTIFICATIONs other than Hard Reset also keep routes.
    notification: bool = True

    def __post_init__(self) -> None:
        if not 0 <= self.restart_time <= 4095:
            raise ValueError("graceful_restart.restart_time: must be 0..4095 seconds")


@dataclass(frozen=True, slots=True)
class SessionConfig:
    """What one BGP session needs to know about its peer (RFC 4271 §8.1.1 attributes and timers)."""

    local_as: int
    peer_as: int
    router_id: ipaddress.IPv4Address
    hold_time: int = 90
    connect_retry_time: float = 30.0
    passive: bool = False
    families: tuple[Family, ...] = (IPV4_UNICAST,)
    route_refresh: bool = True
    enhanced_route_refresh: bool = True
    extended_message: bool = False
    extended_next_hop: bool = False
    graceful_restart: GracefulRestartConfig | None = None
    hostname: str | None = None
    #: DampPeerOscillations (RFC 4271 §8.1.1): idle hold starts here, doubles per failure, up to the max.
    idle_hold_time: float = 1.0
    max_idle_hold_time: float = 120.0
    #: A session up this long resets the damping.
    stable_time: float = 60.0
    #: Received prefixes kept per family before the max-prefix action (RFC 4486 Cease 1); None = no limit.
    max_prefixes: int | None = None
    #: "cease" sends Cease/Maximum Number of Prefixes Reached; "log" only reports and stops counting new ones.
    max_prefix_action: str = "cease"
    rng: random.Random = field(default_factory=random.Random, compare=False, repr=False)

    def __post_init__(self) -> None:
        if not isinstance(self.router_id, ipaddress.IPv4Address):
            object.__setattr__(self, "router_id", ipaddress.IPv4Address(self.router_id))
        for name in ("local_as", "peer_as"):
            v = getattr(self, name)
            if not 1 <= v <= 0xFFFFFFFF:
                raise ValueError(f"{name}: {v} is not an AS number (1..4294967295)")
        if self.hold_time != 0 and not 3 <= self.hold_time <= 65535:
            raise ValueError(f"hold_time: {self.hold_time} must be 0 or 3..65535 (RFC 4271 §4.2)")
        if int(self.router_id) == 0:
            raise ValueError("router_id: 0.0.0.0 is not a valid BGP identifier (RFC 6286)")
        if self.connect_retry_time <= 0:
            raise ValueError("connect_retry_time: must be positive")
        if not self.families:
            raise ValueError("families: at least one address family is needed")
        if self.max_prefix_action not in ("cease", "log"):
            raise ValueError("max_prefix_action: must be 'cease' or 'log'")
        if self.idle_hold_time < 0 or self.max_idle_hold_time < self.idle_hold_time:
            raise ValueError("idle_hold_time: must be >= 0 and <= max_idle_hold_time")

    @property
    def ibgp(self) -> bool:
        """Internal peer (same AS)."""
        return self.local_as == self.peer_as
