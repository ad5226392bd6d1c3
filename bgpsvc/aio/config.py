"""Speaker and peer configuration for the runtime and the library API."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from ..fsm import GracefulRestartConfig
from ..wire import IPV4_UNICAST, IPV6_UNICAST, Family


def _ip(value: str | None, name: str) -> None:
    if value is None:
        return
    try:
        ipaddress.ip_address(value)
    except ValueError:
        raise ValueError(f"{name}: {value!r} is not an IP address") from None


@dataclass(frozen=True, slots=True)
class PeerConfig:
    """One BGP neighbour."""

    address: str
    peer_as: int
    port: int = 179
    name: str | None = None
    local_address: str | None = None
    #: Overrides the speaker's AS for this peer.
    local_as: int | None = None
    hold_time: int = 90
    connect_retry_time: float = 10.0
    passive: bool = False
    password: str | None = None
    #: GTSM (RFC 5082): send with TTL 255 and accept only TTL >= 255 (directly connected).
    ttl_security: bool = False
    #: eBGP multihop: the TTL to send with; directly connected eBGP uses 1, iBGP 255.
    multihop: int | None = None
    families: tuple[Family, ...] = (IPV4_UNICAST, IPV6_UNICAST)
    graceful_restart: bool = True
    extended_message: bool = True
    next_hop_v4: str | None = None
    next_hop_v6: str | None = None
    link_local_v6: str | None = None
    #: Keep received routes (Adj-RIB-In); counting happens either way.
    store_routes: bool = False
    max_prefixes: int | None = 100_000
    max_prefix_action: str = "cease"
    #: Node labels this peer applies to (all must match); empty = every node. Used by the node speaker.
    node_selector: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        _ip(self.address, "address")
        _ip(self.local_address, "local_address")
        _ip(self.next_hop_v4, "next_hop_v4")
        _ip(self.next_hop_v6, "next_hop_v6")
        _ip(self.link_local_v6, "link_local_v6")
        if not 1 <= self.port <= 65535:
            raise ValueError(f"port: {self.port} is not a TCP port")
        if not 1 <= self.peer_as <= 0xFFFFFFFF:
            raise ValueError(f"peer_as: {self.peer_as} is not an AS number")
        if self.multihop is not None and not 1 <= self.multihop <= 255:
            raise ValueError("multihop: TTL must be 1..255")
        if self.ttl_security and self.multihop is not None:
            raise ValueError("ttl_security: cannot be combined with multihop")
        if self.password is not None and len(self.password.encode()) > 80:
            raise ValueError("password: TCP MD5 keys are at most 80 bytes")

    @property
    def label(self) -> str:
        """Name for logs and status."""
        return self.name or self.address

    def selects(self, labels: dict[str, str]) -> bool:
        """Whether this peer applies to a node with ``labels``."""
        return all(labels.get(k) == v for k, v in self.node_selector)


@dataclass(frozen=True, slots=True)
class SpeakerConfig:
    """The whole speaker."""

    local_as: int
    router_id: str
    peers: tuple[PeerConfig, ...] = ()
    #: (address, port) pairs to listen on; empty disables listening.
    listen: tuple[tuple[str, int], ...] = (("0.0.0.0", 179), ("::", 179))
    graceful_restart: GracefulRestartConfig = field(default_factory=GracefulRestartConfig)
    #: Set the Restart State bit on sessions established shortly after start (RFC 4724 §3).
    restarting_on_start: bool = True
    #: Seconds between the GRACEFUL_SHUTDOWN re-advertisement and the Cease on stop (RFC 8326).
    drain_time: float = 5.0
    shutdown_message: str = "bgpsvc shutting down"
    hostname: str | None = None

    def __post_init__(self) -> None:
        _ip(self.router_id, "router_id")
        if ipaddress.ip_address(self.router_id).version != 4:
            raise ValueError("router_id: must be an IPv4 address (RFC 4271 BGP Identifier)")
        if not 1 <= self.local_as <= 0xFFFFFFFF:
            raise ValueError(f"local_as: {self.local_as} is not an AS number")
        if self.drain_time < 0:
            raise ValueError("drain_time: must be >= 0")
        seen = set()
        for i, p in enumerate(self.peers):
            key = (ipaddress.ip_address(p.address), p.port)
            if key in seen:
                raise ValueError(f"peers[{i}].address: {p.address} is configured twice")
            seen.add(key)
        for i, (host, port) in enumerate(self.listen):
            _ip(host, f"listen[{i}]")
            if not 0 <= port <= 65535:
                raise ValueError(f"listen[{i}]: {port} is not a TCP port")
