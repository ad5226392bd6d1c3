"""``bgpsvc run --config FILE``: YAML to ``SpeakerConfig`` and static routes, with errors that name the field.

Parsing is explicit rather than schema-library driven so every message can say where the problem is
(``peers[1].hold_time: must be 0 or 3..65535``) and suggest the field meant for an unknown one.
"""

from __future__ import annotations

import difflib
import ipaddress
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml

from .aio import PeerConfig, SpeakerConfig
from .fsm import GracefulRestartConfig
from .k8s.desired import CLASS_PRIORITY, AdvertisePolicy
from .rib import RouteAttrs
from .wire import IPV4_UNICAST, IPV6_UNICAST, Family, Prefix, community, large_community

T = TypeVar("T")
FAMILIES = {
    "ipv4-unicast": IPV4_UNICAST,
    "ipv6-unicast": IPV6_UNICAST,
    "ipv4": IPV4_UNICAST,
    "ipv6": IPV6_UNICAST,
}
ORIGINS = {"igp": 0, "egp": 1, "incomplete": 2}
_BOTH_FAMILIES: tuple[Family, ...] = (IPV4_UNICAST, IPV6_UNICAST)
_NO_ASNS: tuple[int, ...] = ()
_NO_LARGE: tuple[tuple[int, int, int], ...] = ()
_NO_PAIRS: tuple[tuple[str, str], ...] = ()
_NO_NETS: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()


class ConfigError(ValueError):
    """Invalid configuration; the message starts with the field's path."""


@dataclass(frozen=True, slots=True)
class ControlConfig:
    """Where the status/metrics HTTP endpoint listens (loopback by default)."""

    address: str = "127.0.0.1"
    port: int = 9179
    enabled: bool = True


@dataclass(frozen=True, slots=True)
class KubernetesConfig:
    """The node speaker's ``kubernetes:`` section."""

    node_name: str
    kubeconfig: str | None = None
    policy: AdvertisePolicy = field(default_factory=AdvertisePolicy)
    #: Coalesce bursts of watch events for this long before reconciling (seconds).
    debounce: float = 0.01
    #: Node label or annotation whose value overrides the local AS on that node.
    local_as_key: str = "bgpsvc.io/local-as"
    #: Take the router ID from the node's InternalIP when the config gives none.
    router_id_from_node: bool = False


@dataclass(frozen=True, slots=True)
class RunConfig:
    """Everything ``bgpsvc run`` needs."""

    speaker: SpeakerConfig
    routes: dict[Prefix, RouteAttrs] = field(default_factory=dict)
    routes_file: Path | None = None
    control: ControlConfig = field(default_factory=ControlConfig)
    log_level: str = "info"
    log_format: str = "text"
    kubernetes: KubernetesConfig | None = None


class _Section:
    """A mapping being read, remembering its path and which keys were used."""

    def __init__(self, data: object, path: str) -> None:
        if not isinstance(data, Mapping):
            raise ConfigError(f"{path or 'config'}: expected a mapping, got {type(data).__name__}")
        self.data = data
        self.path = path
        self.used: set[str] = set()

    def _p(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def get(self, key: str, kind: Callable[[Any], T], default: T) -> T:
        self.used.add(key)
        if key not in self.data or self.data[key] is None:
            return default
        return self.convert(key, kind, self.data[key])

    def require(self, key: str, kind: Callable[[Any], T]) -> T:
        self.used.add(key)
        if key not in self.data or self.data[key] is None:
            raise ConfigError(f"{self._p(key)}: required")
        return self.convert(key, kind, self.data[key])

    def convert(self, key: str, kind: Callable[[Any], T], value: object) -> T:
        try:
            return kind(value)
        except ConfigError:
            raise
        except (ValueError, TypeError) as exc:
            raise ConfigError(f"{self._p(key)}: {exc}") from None

    def finish(self) -> None:
        for key in self.data:
            if key not in self.used:
                close = difflib.get_close_matches(str(key), sorted(self.used), n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                raise ConfigError(f"{self._p(str(key))}: unknown field{hint}")


def _int(lo: int, hi: int) -> Callable[[Any], int]:
    def conv(v: Any) -> int:
        if isinstance(v, bool) or not isinstance(v, int):
            raise ValueError(f"expected an integer, got {v!r}")
        if not lo <= v <= hi:
            raise ValueError(f"{v} is outside {lo}..{hi}")
        return v

    return conv


def _asn(v: Any) -> int:
    if isinstance(v, str) and "." in v:  # asdot notation, RFC 5396
        hi, lo = v.split(".", 1)
        v = (int(hi) << 16) | int(lo)
    return _int(1, 0xFFFFFFFF)(v)


def _number(v: Any) -> float:
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise ValueError(f"expected a number, got {v!r}")
    if v < 0:
        raise ValueError("must be >= 0")
    return float(v)


def _bool(v: Any) -> bool:
    if not isinstance(v, bool):
        raise ValueError(f"expected true or false, got {v!r}")
    return v


def _str(v: Any) -> str:
    if not isinstance(v, str | int | float) or isinstance(v, bool):
        raise ValueError(f"expected a string, got {v!r}")
    return str(v)


def _ip(v: Any) -> str:
    return str(ipaddress.ip_address(_str(v)))


def _hold(v: Any) -> int:
    h = _int(0, 65535)(v)
    if h in (1, 2):
        raise ValueError("must be 0 or 3..65535 (RFC 4271 §4.2)")
    return h


def _families(v: Any) -> tuple[Family, ...]:
    if not isinstance(v, list) or not v:
        raise ValueError("expected a non-empty list such as [ipv4-unicast, ipv6-unicast]")
    out = []
    for item in v:
        if item not in FAMILIES:
            raise ValueError(f"unknown family {item!r} (use ipv4-unicast or ipv6-unicast)")
        out.append(FAMILIES[item])
    return tuple(dict.fromkeys(out))


def _selector(v: Any) -> tuple[tuple[str, str], ...]:
    if not isinstance(v, Mapping):
        raise ValueError("expected a mapping of node labels, e.g. {topology.kubernetes.io/zone: rack1}")
    return tuple(sorted((str(k), str(val)) for k, val in v.items()))


def _cidrs(v: Any) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    items = v.split(",") if isinstance(v, str) else v
    if not isinstance(items, list | tuple):
        raise ValueError("expected a list of CIDRs")
    out = []
    for item in items:
        text = str(item).strip()
        if not text:
            continue
        try:
            out.append(ipaddress.ip_network(text))
        except ValueError as exc:
            raise ValueError(f"{text!r}: {exc}") from None
    return tuple(out)


def parse_kubernetes(data: object, env: Mapping[str, str], router_id_given: bool) -> KubernetesConfig:
    """The ``kubernetes:`` section; NODE_NAME and the *_ADVERTISE_CLUSTER_IPS variables fill gaps."""
    s = _Section(data if data is not None else {}, "kubernetes")
    node = s.get("node_name", _str, None) or env.get("NODE_NAME")
    if not node:
        raise ConfigError("kubernetes.node_name: required (or set the NODE_NAME environment variable)")
    cluster = s.get("service_cluster_ips", _cidrs, _NO_NETS)
    for var in ("BGPSVC_ADVERTISE_CLUSTER_IPS", "CALICO_ADVERTISE_CLUSTER_IPS"):
        if not cluster and env.get(var):
            try:
                cluster = _cidrs(env[var])
            except ValueError as exc:
                raise ConfigError(f"{var}: {exc}") from None
    attrs_raw = s.get("attributes", lambda v: v, None)
    attributes: dict[str, RouteAttrs] = {}
    if attrs_raw is not None:
        a = _Section(attrs_raw, "kubernetes.attributes")
        for cls in CLASS_PRIORITY:
            raw = a.get(cls, lambda v: v, None)
            if raw is not None:
                cs = _Section(raw, f"kubernetes.attributes.{cls}")
                attributes[cls] = parse_route_attrs(cs)
                cs.finish()
        a.finish()
    try:
        policy = AdvertisePolicy(
            service_cluster_ips=cluster,
            service_external_ips=s.get("service_external_ips", _cidrs, _NO_NETS),
            service_loadbalancer_ips=s.get("service_loadbalancer_ips", _cidrs, _NO_NETS),
            endpoint_policy=s.get("endpoint_policy", _str, "ready"),
            honour_exclude_label=s.get("honour_exclude_label", _bool, True),
            attributes=attributes,
        )
    except ValueError as exc:
        raise ConfigError(f"kubernetes.{exc}") from None
    cfg = KubernetesConfig(
        node_name=node,
        kubeconfig=s.get("kubeconfig", _str, None) or env.get("KUBECONFIG"),
        policy=policy,
        debounce=s.get("debounce", _number, 0.01),
        local_as_key=s.get("local_as_key", _str, "bgpsvc.io/local-as"),
        router_id_from_node=not router_id_given,
    )
    s.finish()
    return cfg


def _password(section: _Section, env: Mapping[str, str]) -> str | None:
    pw = section.get("password", _str, None)
    pw_file = section.get("password_file", _str, None)
    pw_env = section.get("password_env", _str, None)
    if sum(x is not None for x in (pw, pw_file, pw_env)) > 1:
        raise ConfigError(f"{section.path}.password: give only one of password, password_file, password_env")
    if pw_file is not None:
        try:
            return Path(pw_file).read_text().strip()
        except OSError as exc:
            raise ConfigError(f"{section.path}.password_file: {exc.strerror}: {pw_file}") from None
    if pw_env is not None:
        if pw_env not in env:
            raise ConfigError(f"{section.path}.password_env: environment variable {pw_env} is not set")
        return env[pw_env] or None  # empty: no MD5 (an optional Secret that is absent)
    return pw


def parse_peer(data: object, path: str, env: Mapping[str, str] | None = None) -> PeerConfig:
    """One ``peers[]`` entry."""
    s = _Section(data, path)
    kw: dict[str, Any] = {
        "address": s.require("address", _ip),
        "peer_as": s.require("peer_as", _asn),
        "port": s.get("port", _int(1, 65535), 179),
        "name": s.get("name", _str, None),
        "local_address": s.get("local_address", _ip, None),
        "local_as": s.get("local_as", _asn, None),
        "hold_time": s.get("hold_time", _hold, 90),
        "connect_retry_time": s.get("connect_retry_time", _number, 10.0),
        "passive": s.get("passive", _bool, False),
        "password": _password(s, os.environ if env is None else env),
        "ttl_security": s.get("ttl_security", _bool, False),
        "multihop": s.get("multihop", _int(1, 255), None),
        "families": s.get("families", _families, _BOTH_FAMILIES),
        "graceful_restart": s.get("graceful_restart", _bool, True),
        "extended_message": s.get("extended_message", _bool, True),
        "next_hop_v4": s.get("next_hop_v4", _ip, None),
        "next_hop_v6": s.get("next_hop_v6", _ip, None),
        "link_local_v6": s.get("link_local_v6", _ip, None),
        "store_routes": s.get("store_routes", _bool, False),
        "max_prefixes": s.get("max_prefixes", _int(1, 100_000_000), 100_000),
        "max_prefix_action": s.get("max_prefix_action", _str, "cease"),
        "node_selector": s.get("node_selector", _selector, _NO_PAIRS),
    }
    s.finish()
    try:
        return PeerConfig(**kw)
    except ValueError as exc:
        raise ConfigError(f"{path}.{exc}") from None


def parse_route_attrs(s: _Section) -> RouteAttrs:
    """Route attributes shared by inline routes, routes files and Kubernetes classes."""

    def communities(v: Any) -> tuple[int, ...]:
        if not isinstance(v, list):
            raise ValueError("expected a list such as ['64512:100', NO_EXPORT]")
        return tuple(community(str(c)) for c in v)

    def larges(v: Any) -> tuple[tuple[int, int, int], ...]:
        if not isinstance(v, list):
            raise ValueError("expected a list such as ['64512:1:2']")
        return tuple(large_community(str(c)) for c in v)

    def origin(v: Any) -> int:
        if v not in ORIGINS:
            raise ValueError("must be igp, egp or incomplete")
        return ORIGINS[v]

    def as_path(v: Any) -> tuple[int, ...]:
        if not isinstance(v, list):
            raise ValueError("expected a list of AS numbers")
        return tuple(_asn(a) for a in v)

    nh = s.get("next_hop", _ip, None)
    kw: dict[str, Any] = {
        "origin": s.get("origin", origin, 0),
        "as_path": s.get("as_path", as_path, _NO_ASNS),
        "med": s.get("med", _int(0, 0xFFFFFFFF), None),
        "local_pref": s.get("local_pref", _int(0, 0xFFFFFFFF), None),
        "communities": s.get("communities", communities, _NO_ASNS),
        "large_communities": s.get("large_communities", larges, _NO_LARGE),
        "next_hop": ipaddress.ip_address(nh) if nh else None,
    }
    try:
        return RouteAttrs(**kw)
    except ValueError as exc:
        raise ConfigError(f"{s.path}.{exc}") from None


def _prefix(v: Any) -> Prefix:
    return Prefix.from_network(_str(v))


def parse_routes(data: object, path: str) -> dict[Prefix, RouteAttrs]:
    """The inline ``routes:`` list."""
    if not isinstance(data, list):
        raise ConfigError(f"{path}: expected a list of routes")
    out: dict[Prefix, RouteAttrs] = {}
    for i, item in enumerate(data):
        s = _Section(item if isinstance(item, Mapping) else {"prefix": item}, f"{path}[{i}]")
        prefix = s.require("prefix", _prefix)
        attrs = parse_route_attrs(s)
        s.finish()
        out[prefix] = attrs
    return out


def parse_routes_file(text: str, name: str) -> dict[Prefix, RouteAttrs]:
    """One route per line: ``PREFIX [key=value ...]``; ``#`` comments; lists comma-separated."""
    out: dict[Prefix, RouteAttrs] = {}
    # Lines with the same attributes share one RouteAttrs: the Adj-RIB-Out then builds them once.
    interned: dict[tuple[str, ...], RouteAttrs] = {(): RouteAttrs()}
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        where = f"{name}:{lineno}"
        prefix_text, *pairs = line.split()
        known = interned.get(tuple(pairs))
        if known is not None:
            try:
                out[_prefix(prefix_text)] = known
            except ValueError as exc:
                raise ConfigError(f"{where}: {exc}") from None
            continue
        item: dict[str, Any] = {}
        for pair in pairs:
            key, sep, value = pair.partition("=")
            if not sep:
                raise ConfigError(f"{where}: expected key=value, got {pair!r}")
            if key in ("communities", "large_communities", "as_path"):
                item[key] = [x for x in value.split(",") if x]
                if key == "as_path":
                    item[key] = [int(x) for x in item[key]]
            elif key in ("med", "local_pref"):
                item[key] = int(value) if value.isdigit() else value
            else:
                item[key] = value
        s = _Section(item, where)
        try:
            prefix = _prefix(prefix_text)
        except ValueError as exc:
            raise ConfigError(f"{where}: {exc}") from None
        attrs = parse_route_attrs(s)
        s.finish()
        out[prefix] = interned.setdefault(tuple(pairs), attrs)
    return out


def parse_config(data: object, base: Path | None = None, env: Mapping[str, str] | None = None) -> RunConfig:
    """The whole YAML document."""
    s = _Section(data if data is not None else {}, "")
    local_as = s.require("local_as", _asn)
    kube_raw = s.get("kubernetes", lambda v: v, None)
    kube = None
    if kube_raw is not None or "kubernetes" in s.data:
        kube = parse_kubernetes(
            kube_raw, os.environ if env is None else env, s.data.get("router_id") is not None
        )
    # A node speaker may take its router ID from the node's InternalIP; 0.0.0.0 marks "not yet known".
    router_id = s.require("router_id", _ip) if kube is None else s.get("router_id", _ip, "0.0.0.0")
    listen_raw = s.get("listen", lambda v: v, None)
    listen: tuple[tuple[str, int], ...] = (("0.0.0.0", 179), ("::", 179))
    if listen_raw is False or listen_raw == []:
        listen = ()
    elif listen_raw is not None:
        if not isinstance(listen_raw, list):
            raise ConfigError("listen: expected a list of {address, port}, or false")
        items = []
        for i, entry in enumerate(listen_raw):
            ls = _Section(entry, f"listen[{i}]")
            items.append((ls.require("address", _ip), ls.get("port", _int(0, 65535), 179)))
            ls.finish()
        listen = tuple(items)
    gr_raw = s.get("graceful_restart", lambda v: v, None)
    gr = GracefulRestartConfig()
    if gr_raw is not None:
        gs = _Section(gr_raw, "graceful_restart")
        try:
            gr = GracefulRestartConfig(
                restart_time=gs.get("restart_time", _int(0, 4095), 120),
                notification=gs.get("notification", _bool, True),
            )
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        gs.finish()
    peers_raw: object = s.get("peers", lambda v: v, [])
    if not isinstance(peers_raw, list):
        raise ConfigError("peers: expected a list")
    peers = tuple(parse_peer(p, f"peers[{i}]", env) for i, p in enumerate(peers_raw))
    routes = parse_routes(s.get("routes", lambda v: v, []), "routes")
    routes_file = s.get("routes_file", _str, None)
    rf_path = None
    if routes_file is not None:
        rf_path = Path(routes_file)
        if base is not None and not rf_path.is_absolute():
            rf_path = base / rf_path
        if not rf_path.is_file():
            raise ConfigError(f"routes_file: no such file: {rf_path}")
    control_raw = s.get("control", lambda v: v, None)
    control = ControlConfig()
    if control_raw is False:
        control = ControlConfig(enabled=False)
    elif control_raw is not None:
        cs = _Section(control_raw, "control")
        control = ControlConfig(
            cs.get("address", _ip, "127.0.0.1"),
            cs.get("port", _int(0, 65535), 9179),
            cs.get("enabled", _bool, True),
        )
        cs.finish()
    log_level = s.get("log_level", _str, "info").lower()
    if log_level not in ("debug", "info", "warning", "error"):
        raise ConfigError("log_level: must be debug, info, warning or error")
    log_format = s.get("log_format", _str, "text").lower()
    if log_format not in ("text", "json"):
        raise ConfigError("log_format: must be text or json")
    kw: dict[str, Any] = {
        "local_as": local_as,
        "router_id": router_id,
        "peers": peers,
        "listen": listen,
        "graceful_restart": gr,
        "restarting_on_start": s.get("restarting_on_start", _bool, True),
        "drain_time": s.get("drain_time", _number, 5.0),
        "shutdown_message": s.get("shutdown_message", _str, "bgpsvc shutting down"),
        "hostname": s.get("hostname", _str, None),
    }
    s.finish()
    try:
        speaker = SpeakerConfig(**kw)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    return RunConfig(speaker, routes, rf_path, control, log_level, log_format, kube)


def load_config(path: str | Path, env: Mapping[str, str] | None = None) -> RunConfig:
    """Read and validate a YAML config file."""
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as exc:
        raise ConfigError(f"{p}: {exc.strerror}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{p}: not valid YAML: {exc}") from None
    return parse_config(data, p.parent, env)


def load_routes(config: RunConfig) -> dict[Prefix, RouteAttrs]:
    """Inline routes plus the routes file (re-read on SIGHUP)."""
    routes = dict(config.routes)
    if config.routes_file is not None:
        routes.update(parse_routes_file(config.routes_file.read_text(), str(config.routes_file)))
    return routes
