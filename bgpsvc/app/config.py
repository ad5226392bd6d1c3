"""``bgpsvc run --config FILE``: YAML to ``SpeakerConfig``, static routes and the Kubernetes section.

Peers and the speaker are read against their dataclasses (``schema.read_fields``), so fields, defaults and
validation are written once, in ``bgpsvc.fsm.PeerConfig`` and ``bgpsvc.aio.SpeakerConfig``. What only a
file can say (``password_file``, ``password_env``, ``node_selector``, ``routes_file``, the control
endpoint and logging) is read here.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..aio import SpeakerConfig
from ..fsm import BfdSettings, GracefulRestartConfig, PeerConfig
from ..fsm.config import doc
from ..k8s.config import KubernetesConfig, Selector
from ..k8s.desired import CLASS_PRIORITY, AdvertisePolicy
from ..rib import RouteAttrs
from ..wire import Prefix
from .advertise import read_damping, read_link_bandwidth, read_ranges
from .routes import parse_route_attrs, parse_routes, parse_routes_file
from .schema import (
    ConfigError,
    Section,
    build,
    load_yaml,
    read_fields,
    read_text,
    to_bool,
    to_int,
    to_ip,
    to_number,
    to_positive,
    to_str,
)

#: What ``bgpsvc run`` listens on when the file says nothing (the library listens nowhere by default).
DEFAULT_LISTEN: tuple[tuple[str, int], ...] = (("0.0.0.0", 179), ("::", 179))
_NO_NETS: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()
_NO_PAIRS: Selector = ()
__all__ = [
    "ConfigError",
    "ControlConfig",
    "KubernetesConfig",
    "PeerFileFields",
    "RunConfig",
    "load_config",
    "parse_config",
    "parse_route_attrs",
    "parse_routes",
    "parse_routes_file",
]


@dataclass(frozen=True, slots=True)
class ControlConfig:
    """Where the status/metrics HTTP endpoint listens (loopback by default); ``control: false``: none."""

    address: str = field(
        default="127.0.0.1", metadata=doc("address of /status, /routes, /metrics, /healthz", "ip")
    )
    port: int = field(default=9179, metadata=doc("TCP port (0: any free port)", bounds=(0, 65535)))
    enabled: bool = field(default=True, metadata=doc("false: no control endpoint (as control: false)"))


@dataclass(frozen=True, slots=True)
class PeerFileFields:
    """What a ``peers[]`` entry says beyond ``PeerConfig``: where the TCP MD5 key comes from (at most one of
    password, password_file, password_env) and, on a node speaker, which nodes peer with it."""

    password_file: str | None = field(
        default=None, metadata=doc("file holding the TCP MD5 key (e.g. a mounted Secret); read at start")
    )
    password_env: str | None = field(
        default=None,
        metadata=doc("environment variable holding the TCP MD5 key; must be set, empty means no MD5"),
    )
    node_selector: Mapping[str, str] = field(
        default_factory=dict,
        metadata=doc("node labels (all must match) of the nodes that peer with it; absent: every node"),
    )


@dataclass(frozen=True, slots=True)
class RunConfig:
    """Everything ``bgpsvc run`` needs."""

    speaker: SpeakerConfig
    routes: dict[Prefix, RouteAttrs] = field(
        default_factory=dict, metadata=doc("routes to advertise: a list of prefixes or {prefix, attributes}")
    )
    routes_file: Path | None = field(
        default=None,
        metadata=doc("file of routes, one per line: 'PREFIX [key=value ...]' (relative to the config file)"),
    )
    control: ControlConfig = field(
        default_factory=ControlConfig, metadata=doc("the control endpoint, or false to have none")
    )
    log_level: str = field(default="info", metadata=doc("debug, info, warning or error (--log-level wins)"))
    log_format: str = field(
        default="text",
        metadata=doc("text, or json: one object per line with the event's fields (--log-format wins)"),
    )
    kubernetes: KubernetesConfig | None = field(
        default=None, metadata=doc("present: a node speaker advertising Service IPs (see its section)")
    )
    #: Things worth a line in the log at start (e.g. a config with no peers).
    warnings: tuple[str, ...] = ()


def _selector(v: Any) -> Selector:
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


def _policy(s: Section, env: Mapping[str, str]) -> AdvertisePolicy:
    cluster, cluster_specs = read_ranges(s, "service_cluster_ips")
    for var in ("BGPSVC_ADVERTISE_CLUSTER_IPS", "CALICO_ADVERTISE_CLUSTER_IPS"):
        if not cluster and env.get(var):
            try:
                cluster = _cidrs(env[var])
            except ValueError as exc:
                raise ConfigError(f"{var}: {exc}") from None
    external, external_specs = read_ranges(s, "service_external_ips")
    lbs, lb_specs = read_ranges(s, "service_loadbalancer_ips")
    attributes: dict[str, RouteAttrs] = {}
    attrs_raw = s.raw("attributes")
    if attrs_raw is not None:
        a = Section(attrs_raw, "kubernetes.attributes")
        for cls in CLASS_PRIORITY:
            raw = a.raw(cls)
            if raw is not None:
                cs = Section(raw, f"kubernetes.attributes.{cls}")
                attributes[cls] = parse_route_attrs(cs)
                cs.finish()
        a.finish()
    kw = {
        "service_cluster_ips": cluster,
        "service_external_ips": external,
        "service_loadbalancer_ips": lbs,
        "endpoint_policy": s.get("endpoint_policy", to_str, "ready"),
        "honour_exclude_label": s.get("honour_exclude_label", to_bool, True),
        "attributes": attributes,
        "ranges": (*cluster_specs, *external_specs, *lb_specs),
        "link_bandwidth": read_link_bandwidth(s.raw("link_bandwidth"), "kubernetes.link_bandwidth"),
        "damping": read_damping(s.raw("damping"), "kubernetes.damping"),
    }
    return build(AdvertisePolicy, kw, "kubernetes")


def parse_kubernetes(
    data: object, env: Mapping[str, str], router_id_given: bool, selectors: Mapping[tuple[str, int], Selector]
) -> KubernetesConfig:
    """The ``kubernetes:`` section; NODE_NAME and the *_ADVERTISE_CLUSTER_IPS variables fill gaps."""
    s = Section(data if data is not None else {}, "kubernetes")
    node = s.get("node_name", to_str, None) or env.get("NODE_NAME")
    if not node:
        raise ConfigError("kubernetes.node_name: required (or set the NODE_NAME environment variable)")
    cfg = KubernetesConfig(
        node_name=node,
        kubeconfig=s.get("kubeconfig", to_str, None) or env.get("KUBECONFIG"),
        policy=_policy(s, env),
        debounce=s.get("debounce", to_number, 0.01),
        full_resync=s.get("full_resync", to_number, 300.0),
        local_as_key=s.get("local_as_key", to_str, "bgpsvc.io/local-as"),
        router_id_from_node=not router_id_given,
        node_selectors=dict(selectors),
        custom_resources=s.get("custom_resources", to_bool, True),
        secret_namespace=s.get("secret_namespace", to_str, None)
        or env.get("POD_NAMESPACE")
        or "bgpsvc-system",
        status_interval=s.get("status_interval", to_number, 5.0),
        lease_poll=s.get("lease_poll", to_positive, 30.0),
    )
    s.finish()
    return cfg


def _password(section: Section, env: Mapping[str, str], secrets: bool = True) -> str | None:
    pw = section.get("password", to_str, None)
    pw_file = section.get("password_file", to_str, None)
    pw_env = section.get("password_env", to_str, None)
    if sum(x is not None for x in (pw, pw_file, pw_env)) > 1:
        raise ConfigError(f"{section.path}.password: give only one of password, password_file, password_env")
    if not secrets:
        return None  # ``plan`` needs no session, so no key
    if pw_file is not None:
        try:
            return Path(pw_file).read_text().strip()
        except OSError as exc:
            raise ConfigError(f"{section.path}.password_file: {exc.strerror}: {pw_file}") from None
        except UnicodeDecodeError:
            raise ConfigError(f"{section.path}.password_file: {pw_file} is not UTF-8 text") from None
    if pw_env is not None:
        if pw_env not in env:
            raise ConfigError(f"{section.path}.password_env: environment variable {pw_env} is not set")
        return env[pw_env] or None  # empty: no MD5 (an optional Secret that is absent)
    return pw


def _bfd_settings(raw: object, path: str) -> BfdSettings:
    s = Section(raw if raw is not None else {}, path)
    kw = read_fields(BfdSettings, s)
    s.finish()
    return build(BfdSettings, kw, path)


def parse_bfd_profiles(raw: object) -> dict[str, BfdSettings]:
    """The top-level ``bfd_profiles:`` mapping, name -> ``{min_rx_ms, min_tx_ms, multiplier}``."""
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise ConfigError("bfd_profiles: expected a mapping such as {fast: {min_rx_ms: 100, min_tx_ms: 100}}")
    return {str(name): _bfd_settings(v, f"bfd_profiles.{name}") for name, v in raw.items()}


def _peer_bfd(raw: object, path: str, profiles: Mapping[str, BfdSettings]) -> BfdSettings | None:
    """A peer's ``bfd:``: true (the defaults), false, a profile name, or the settings inline."""
    if raw is None or raw is False:
        return None
    if raw is True:
        return BfdSettings()
    if isinstance(raw, str):
        if raw not in profiles:
            known = ", ".join(sorted(profiles)) or "none defined"
            raise ConfigError(f"{path}: no BFD profile {raw!r} in bfd_profiles (known: {known})")
        return profiles[raw]
    if isinstance(raw, Mapping):
        return _bfd_settings(raw, path)
    raise ConfigError(
        f"{path}: expected true, false, a bfd_profiles name or {{min_rx_ms, min_tx_ms, multiplier}}"
    )


def parse_peer(
    data: object,
    path: str,
    env: Mapping[str, str] | None = None,
    secrets: bool = True,
    profiles: Mapping[str, BfdSettings] | None = None,
) -> tuple[PeerConfig, Selector]:
    """One ``peers[]`` entry: the peer and its node selector (node speakers only). ``secrets=False``
    leaves the TCP MD5 key unread (``password_env``/``password_file`` need not resolve); ``profiles``:
    the ``bfd_profiles`` a peer's ``bfd:`` may name."""
    s = Section(data, path)
    kw = read_fields(PeerConfig, s, skip=frozenset({"password"}))
    kw["password"] = _password(s, os.environ if env is None else env, secrets)
    kw["bfd"] = _peer_bfd(s.raw("bfd"), s.sub("bfd"), profiles or {})
    selector = s.get("node_selector", _selector, _NO_PAIRS)
    s.finish()
    return build(PeerConfig, kw, path), selector


def _listen(raw: object) -> tuple[tuple[str, int], ...]:
    if raw is False or raw == []:
        return ()
    if raw is None:
        return DEFAULT_LISTEN
    if not isinstance(raw, list):
        raise ConfigError("listen: expected a list of {address, port}, or false")
    items = []
    for i, entry in enumerate(raw):
        ls = Section(entry, f"listen[{i}]")
        items.append((ls.require("address", to_ip), ls.get("port", to_int(0, 65535), 179)))
        ls.finish()
    return tuple(items)


def _graceful_restart(raw: object) -> GracefulRestartConfig:
    if raw is None:
        return GracefulRestartConfig()
    gs = Section(raw, "graceful_restart")
    kw = read_fields(GracefulRestartConfig, gs, skip=frozenset({"restarting"}))
    gs.finish()
    return build(GracefulRestartConfig, kw, "graceful_restart")


def _control(raw: object) -> ControlConfig:
    if raw is False:
        return ControlConfig(enabled=False)
    if raw is None:
        return ControlConfig()
    cs = Section(raw, "control")
    cfg = ControlConfig(
        cs.get("address", to_ip, "127.0.0.1"),
        cs.get("port", to_int(0, 65535), 9179),
        cs.get("enabled", to_bool, True),
    )
    cs.finish()
    return cfg


def _routes_file(s: Section, base: Path | None) -> Path | None:
    routes_file = s.get("routes_file", to_str, None)
    if routes_file is None:
        return None
    path = Path(routes_file)
    if base is not None and not path.is_absolute():
        path = base / path
    if not path.is_file():
        raise ConfigError(f"routes_file: no such file: {path}")
    return path


def _choice(s: Section, key: str, default: str, choices: tuple[str, ...]) -> str:
    value = s.get(key, to_str, default).lower()
    if value not in choices:
        raise ConfigError(f"{key}: must be {', '.join(choices[:-1])} or {choices[-1]}")
    return value


def parse_config(
    data: object, base: Path | None = None, env: Mapping[str, str] | None = None, secrets: bool = True
) -> RunConfig:
    """The whole YAML document (``secrets=False``: peer passwords are not read, see ``parse_peer``)."""
    env = os.environ if env is None else env
    s = Section(data if data is not None else {}, "")
    kw = read_fields(SpeakerConfig, s, skip=frozenset({"router_id"}))
    peers_raw = s.raw("peers") or []
    if not isinstance(peers_raw, list):
        raise ConfigError("peers: expected a list")
    profiles = parse_bfd_profiles(s.raw("bfd_profiles"))
    parsed = [parse_peer(p, f"peers[{i}]", env, secrets, profiles) for i, p in enumerate(peers_raw)]
    kube = None
    if "kubernetes" in s.data:
        selectors = {(p.address, p.port): sel for p, sel in parsed if sel}
        kube = parse_kubernetes(s.raw("kubernetes"), env, s.data.get("router_id") is not None, selectors)
    # A node speaker may take its router ID from the node's InternalIP; 0.0.0.0 marks "not yet known".
    kw["router_id"] = s.require("router_id", to_ip) if kube is None else s.get("router_id", to_ip, "0.0.0.0")
    kw["peers"] = tuple(p for p, _ in parsed)
    kw["listen"] = _listen(s.raw("listen"))
    kw["graceful_restart"] = _graceful_restart(s.raw("graceful_restart"))
    routes = parse_routes(s.get("routes", lambda v: v, []), "routes")
    rf_path = _routes_file(s, base)
    control = _control(s.raw("control"))
    log_level = _choice(s, "log_level", "info", ("debug", "info", "warning", "error"))
    log_format = _choice(s, "log_format", "text", ("text", "json"))
    s.finish()
    speaker = build(SpeakerConfig, kw, "")
    warnings = []
    if not speaker.peers:
        warnings.append("no peers configured: nothing will be advertised")
    if kube is None and any(sel for _, sel in parsed):
        warnings.append("peers[].node_selector is ignored without a kubernetes: section")
    return RunConfig(speaker, routes, rf_path, control, log_level, log_format, kube, tuple(warnings))


def load_config(path: str | Path, env: Mapping[str, str] | None = None, secrets: bool = True) -> RunConfig:
    """Read and validate a YAML config file; errors name the file (and line, for YAML errors)."""
    p = Path(path)
    data = load_yaml(read_text(p), str(p))
    return parse_config(data, p.parent, env, secrets)


def load_routes(config: RunConfig) -> dict[Prefix, RouteAttrs]:
    """Inline routes plus the routes file (re-read on SIGHUP)."""
    if config.routes_file is None:
        return dict(config.routes)
    routes = parse_routes_file(read_text(config.routes_file), str(config.routes_file))
    if config.routes:
        routes = {**config.routes, **routes}  # the file wins over inline routes, as before
    return routes
