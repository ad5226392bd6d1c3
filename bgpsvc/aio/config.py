"""The speaker's configuration (the library API); per-peer settings are ``bgpsvc.fsm.PeerConfig``."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from ..fsm import GracefulRestartConfig, PeerConfig
from ..fsm.config import check_asn, check_ip, doc


@dataclass(frozen=True, slots=True)
class SpeakerConfig:
    """The whole speaker: who we are, our peers, where we listen, how we stop."""

    local_as: int = field(metadata=doc("our AS number (asplain or asdot)", "asn"))
    router_id: str = field(metadata=doc("BGP Identifier, an IPv4 address (RFC 4271 §4.2, RFC 6286)", "ip"))
    peers: tuple[PeerConfig, ...] = field(default=(), metadata=doc("the neighbours"))
    listen: tuple[tuple[str, int], ...] = field(
        default=(),
        metadata=doc("(address, port) pairs to accept connections on; empty: connect out only"),
    )
    graceful_restart: GracefulRestartConfig = field(
        default_factory=GracefulRestartConfig, metadata=doc("graceful restart timers (RFC 4724)")
    )
    restarting_on_start: bool = field(
        default=True,
        metadata=doc(
            "set the Restart State bit on the sessions of a fresh start (RFC 4724 §4.1), so routers keep "
            "forwarding to us while we come back: a pod cannot tell a crash from a first boot"
        ),
    )
    drain_time: float = field(
        default=5.0,
        metadata=doc(
            "seconds between the GRACEFUL_SHUTDOWN re-advertisement and the Cease on stop (RFC 8326)"
        ),
    )
    shutdown_message: str = field(
        default="bgpsvc shutting down", metadata=doc("RFC 9003 text sent with the final Cease")
    )
    hostname: str | None = field(
        default=None, metadata=doc("hostname sent in the FQDN capability (shown by FRR), optional")
    )

    def __post_init__(self) -> None:
        check_ip(self.router_id, "router_id")
        if ipaddress.ip_address(self.router_id).version != 4:
            raise ValueError("router_id: must be an IPv4 address (RFC 4271 BGP Identifier)")
        check_asn(self.local_as, "local_as")
        if self.drain_time < 0:
            raise ValueError("drain_time: must be >= 0")
        seen = set()
        for i, p in enumerate(self.peers):
            key = (ipaddress.ip_address(p.address), p.port)
            if key in seen:
                raise ValueError(f"peers[{i}].address: {p.address} is configured twice")
            seen.add(key)
        for i, (host, port) in enumerate(self.listen):
            check_ip(host, f"listen[{i}]")
            if not 0 <= port <= 65535:
                raise ValueError(f"listen[{i}]: {port} is not a TCP port")


__all__ = ["PeerConfig", "SpeakerConfig"]
