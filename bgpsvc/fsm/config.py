"""Per-peer configuration (RFC 4271 §8.1.1, §10): the one source of fields, defaults and validation.

``PeerConfig`` is what a user configures for one neighbour. Each field's ``metadata["doc"]`` is its
documentation: the YAML loader derives the ``peers[]`` schema from these fields (``metadata["kind"]``
names a non-obvious YAML form, e.g. ``asn`` accepts asdot), and ``docs/config.md`` is generated from
them, so a new per-peer setting is one field here plus its doc string. ``SessionConfig`` adds what
comes from the speaker (local AS, router ID, graceful restart, hostname) and the injected RNG.
"""

from __future__ import annotations

import ipaddress
import random
from dataclasses import dataclass, field
from typing import Any

from ..wire import INTERN_STORED, INTERN_STREAMED, IPV4_UNICAST, IPV6_UNICAST, Family

#: BFD intervals we accept, in ms: FRR's range; a Python process cannot keep time much below 10 ms.
BFD_MS = (10, 60_000)


def doc(text: str, kind: str | None = None, bounds: tuple[int, int] | None = None) -> dict[str, Any]:
    """Field metadata: its documentation, optionally its YAML form (``asn``, ``ip``, ``families``,
    ``hold``) and an integer's bounds, which the loader checks with a message naming them."""
    meta: dict[str, Any] = {"doc": text}
    if kind:
        meta["kind"] = kind
    if bounds:
        meta["bounds"] = bounds
    return meta


def check_ip(value: str | None, name: str) -> None:
    """Raise ``ValueError("name: ...")`` unless ``value`` is None or an IP address."""
    if value is None:
        return
    try:
        ipaddress.ip_address(value)
    except ValueError:
        raise ValueError(f"{name}: {value!r} is not an IP address") from None


def check_asn(value: int, name: str) -> None:
    """Raise ``ValueError`` unless ``value`` is a 4-octet AS number (RFC 6793)."""
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 0xFFFFFFFF:
        raise ValueError(f"{name}: {value!r} is not an AS number (1..4294967295)")


@dataclass(frozen=True, slots=True)
class GracefulRestartConfig:
    """Graceful restart as advertised (RFC 4724 §3)."""

    restart_time: int = field(
        default=120,
        metadata=doc("seconds peers keep our routes while we restart (RFC 4724 §3)", bounds=(0, 4095)),
    )
    restarting: bool = field(
        default=False,
        metadata=doc("set the Restart State bit: we are coming back from a restart (RFC 4724 §3)"),
    )
    forwarding: bool = field(
        default=True, metadata=doc("forwarding state preserved across the restart (F bit, per family)")
    )
    notification: bool = field(
        default=True,
        metadata=doc("RFC 8538 N bit: NOTIFICATIONs other than Hard Reset also keep routes as stale"),
    )

    def __post_init__(self) -> None:
        if not 0 <= self.restart_time <= 4095:
            raise ValueError("restart_time: must be 0..4095 seconds")


@dataclass(frozen=True, slots=True)
class BfdSettings:
    """BFD for one peer: the RFC 5880 §6.8.1 timers we ask for. A BFD failure takes the BGP session down
    at once (Cease/BFD Down, RFC 9384) and keeps it Idle until BFD is Up again (RFC 5882)."""

    min_rx_ms: int = field(
        default=300,
        metadata=doc("bfd.RequiredMinRxInterval: the fastest the peer may send to us, ms", bounds=BFD_MS),
    )
    min_tx_ms: int = field(
        default=300,
        metadata=doc(
            "bfd.DesiredMinTxInterval: how fast we send once Up, ms (1 s before, RFC 5880 §6.8.3)",
            bounds=BFD_MS,
        ),
    )
    multiplier: int = field(
        default=3,
        metadata=doc("bfd.DetectMult: packets the peer may miss before it declares us down", bounds=(1, 255)),
    )

    def __post_init__(self) -> None:
        lo, hi = BFD_MS
        for name in ("min_rx_ms", "min_tx_ms"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
                raise ValueError(f"{name}: {value!r} must be {lo}..{hi} milliseconds")
        if isinstance(self.multiplier, bool) or not 1 <= self.multiplier <= 255:
            raise ValueError(f"multiplier: {self.multiplier!r} must be 1..255")

    @property
    def detection_time_ms(self) -> int:
        """What the peer takes to notice our silence if it sends no slower than we ask (RFC 5880 §6.8.4)."""
        return self.multiplier * self.min_rx_ms


@dataclass(frozen=True, slots=True)
class PeerConfig:
    """One BGP neighbour (RFC 4271 §8.1.1 session attributes, plus what we send it)."""

    address: str = field(metadata=doc("the neighbour's IP address (IPv4 or IPv6)", "ip"))
    peer_as: int = field(metadata=doc("the neighbour's AS number (asplain or asdot)", "asn"))
    port: int = field(default=179, metadata=doc("TCP port to connect to", bounds=(1, 65535)))
    name: str | None = field(
        default=None, metadata=doc("name in logs, status and metrics (default: address)")
    )
    local_address: str | None = field(
        default=None, metadata=doc("source address for the connection (default: chosen by the kernel)", "ip")
    )
    local_as: int | None = field(
        default=None, metadata=doc("AS we present to this neighbour (default: the speaker's local_as)", "asn")
    )
    hold_time: int = field(
        default=90, metadata=doc("proposed hold time in seconds, 0 or 3..65535 (RFC 4271 §4.2)", "hold")
    )
    keepalive_time: int | None = field(
        default=None,
        metadata=doc(
            "seconds between KEEPALIVEs, at most a third of the negotiated hold time (default: that third; "
            "RFC 4271 §4.4, §10)",
            bounds=(1, 21845),
        ),
    )
    connect_retry_time: float = field(
        default=10.0, metadata=doc("seconds between connection attempts (RFC 4271 §10 ConnectRetryTime)")
    )
    idle_hold_time: float = field(
        default=1.0,
        metadata=doc(
            "seconds in Idle after the first failure; doubles per consecutive failure "
            "(RFC 4271 §8.1.1 DampPeerOscillations; BIRD's error wait time)"
        ),
    )
    max_idle_hold_time: float = field(
        default=120.0, metadata=doc("upper bound of the growing idle hold time, seconds")
    )
    stable_time: float = field(
        default=60.0, metadata=doc("a session up this long resets the idle hold time to idle_hold_time")
    )
    passive: bool = field(default=False, metadata=doc("never connect; wait for the neighbour to connect"))
    password: str | None = field(
        default=None,
        metadata=doc("TCP MD5 key (RFC 2385); in files prefer password_file or password_env"),
    )
    ttl_security: bool = field(
        default=False,
        metadata=doc("GTSM (RFC 5082): send with TTL 255, accept only TTL 255 (directly connected)"),
    )
    multihop: int | None = field(
        default=None,
        metadata=doc(
            "eBGP multihop: the TTL to send with (default: 1 for eBGP, 255 for iBGP)", bounds=(1, 255)
        ),
    )
    families: tuple[Family, ...] = field(
        default=(IPV4_UNICAST, IPV6_UNICAST),
        metadata=doc("address families to negotiate (RFC 4760): ipv4-unicast, ipv6-unicast", "families"),
    )
    graceful_restart: bool = field(
        default=True, metadata=doc("advertise graceful restart (RFC 4724) and act as helper")
    )
    extended_message: bool = field(default=True, metadata=doc("offer 65535-octet messages (RFC 8654)"))
    extended_next_hop: bool = field(
        default=False,
        metadata=doc("offer IPv4 routes over an IPv6 next hop (RFC 8950 Extended Next Hop capability)"),
    )
    route_refresh: bool = field(default=True, metadata=doc("offer ROUTE-REFRESH (RFC 2918)"))
    enhanced_route_refresh: bool = field(
        default=True, metadata=doc("offer Enhanced Route Refresh (RFC 7313)")
    )
    next_hop_v4: str | None = field(
        default=None,
        metadata=doc("IPv4 next hop to advertise (default: our address on the session)", "ip"),
    )
    next_hop_v6: str | None = field(
        default=None,
        metadata=doc("IPv6 global next hop to advertise (default: our address on an IPv6 session)", "ip"),
    )
    link_local_v6: str | None = field(
        default=None,
        metadata=doc("IPv6 link-local next hop sent beside the global one (RFC 2545 §3)", "ip"),
    )
    store_routes: bool = field(
        default=False,
        metadata=doc(
            "keep received routes (Adj-RIB-In); they are counted either way. A storing session's"
            f" decoder keeps up to {INTERN_STORED:,} distinct attribute encodings ({INTERN_STREAMED:,}"
            " otherwise), so that held routes share their attribute objects (docs/performance.md §3)"
        ),
    )
    max_prefixes: int | None = field(
        default=100_000,
        metadata=doc(
            "received prefixes allowed per family before max_prefix_action (RFC 4486)",
            bounds=(1, 100_000_000),
        ),
    )
    max_prefix_action: str = field(
        default="cease",
        metadata=doc("'cease': Cease/Maximum Number of Prefixes Reached; 'log': report and ignore the rest"),
    )
    bfd: BfdSettings | None = field(
        default=None,
        metadata=doc(
            "BFD (RFC 5880/5881, multihop RFC 5883 with multihop:): true for the defaults, a name from "
            "bfd_profiles, or {min_rx_ms, min_tx_ms, multiplier}; a BFD failure takes the session down"
        ),
    )

    def __post_init__(self) -> None:
        for name in ("address", "local_address", "next_hop_v4", "next_hop_v6", "link_local_v6"):
            check_ip(getattr(self, name), name)
        if not 1 <= self.port <= 65535:
            raise ValueError(f"port: {self.port} is not a TCP port")
        check_asn(self.peer_as, "peer_as")
        if self.local_as is not None:
            check_asn(self.local_as, "local_as")
        if self.hold_time != 0 and not 3 <= self.hold_time <= 65535:
            raise ValueError(f"hold_time: {self.hold_time} must be 0 or 3..65535 (RFC 4271 §4.2)")
        if self.keepalive_time is not None and not 1 <= self.keepalive_time <= 21845:
            raise ValueError("keepalive_time: must be 1..21845 seconds (a third of 65535)")
        if self.keepalive_time is not None and self.hold_time and self.keepalive_time * 3 > self.hold_time:
            raise ValueError(f"keepalive_time: must be at most a third of hold_time ({self.hold_time})")
        if self.connect_retry_time <= 0:
            raise ValueError("connect_retry_time: must be positive")
        if self.idle_hold_time < 0 or self.max_idle_hold_time < self.idle_hold_time:
            raise ValueError("idle_hold_time: must be >= 0 and <= max_idle_hold_time")
        if self.stable_time < 0:
            raise ValueError("stable_time: must be >= 0")
        if self.multihop is not None and not 1 <= self.multihop <= 255:
            raise ValueError("multihop: TTL must be 1..255")
        if self.ttl_security and self.multihop is not None:
            raise ValueError("ttl_security: cannot be combined with multihop")
        if self.password is not None and len(self.password.encode()) > 80:
            raise ValueError("password: TCP MD5 keys are at most 80 bytes")
        if not self.families:
            raise ValueError("families: at least one address family is needed")
        if self.max_prefixes is not None and self.max_prefixes < 1:
            raise ValueError("max_prefixes: must be >= 1")
        if self.max_prefix_action not in ("cease", "log"):
            raise ValueError("max_prefix_action: must be 'cease' or 'log'")

    @property
    def label(self) -> str:
        """Name for logs and status."""
        return self.name or self.address

    @property
    def session_key(self) -> tuple[object, ...]:
        """The settings a session is built on: a change here needs a new session (RFC 4271 §8.1.1)."""
        return (
            ipaddress.ip_address(self.address),
            self.port,
            self.peer_as,
            self.local_as,
            self.local_address,
            self.hold_time,
            self.keepalive_time,
            self.passive,
            self.password,
            self.ttl_security,
            self.multihop,
            self.families,
            self.graceful_restart,
            self.extended_message,
            self.extended_next_hop,
            self.route_refresh,
            self.enhanced_route_refresh,
            self.store_routes,
        )


@dataclass(frozen=True, slots=True)
class SessionConfig:
    """One session: the peer's settings plus what comes from the speaker, and the injected RNG."""

    peer: PeerConfig
    local_as: int
    router_id: ipaddress.IPv4Address
    graceful_restart: GracefulRestartConfig | None = None
    hostname: str | None = None
    rng: random.Random = field(default_factory=random.Random, compare=False, repr=False)

    def __post_init__(self) -> None:
        if not isinstance(self.router_id, ipaddress.IPv4Address):
            object.__setattr__(self, "router_id", ipaddress.IPv4Address(self.router_id))
        check_asn(self.local_as, "local_as")
        if int(self.router_id) == 0:
            raise ValueError("router_id: 0.0.0.0 is not a valid BGP identifier (RFC 6286)")

    @classmethod
    def build(
        cls,
        local_as: int,
        peer_as: int,
        router_id: ipaddress.IPv4Address | str,
        *,
        address: str = "192.0.2.254",
        graceful_restart: GracefulRestartConfig | None = None,
        hostname: str | None = None,
        rng: random.Random | None = None,
        **peer: Any,
    ) -> SessionConfig:
        """A session config from flat keywords (``PeerConfig`` fields go to the peer)."""
        return cls(
            PeerConfig(address, peer_as, **peer),
            local_as,
            ipaddress.IPv4Address(router_id),
            graceful_restart,
            hostname,
            rng or random.Random(),
        )

    @property
    def ibgp(self) -> bool:
        """Internal peer (same AS)."""
        return self.local_as == self.peer.peer_as
