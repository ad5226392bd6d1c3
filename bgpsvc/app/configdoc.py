"""``python -m bgpsvc.app.configdoc``: docs/config.md, generated from the configuration dataclasses.

Every section of the file format is one or more dataclasses; each field's ``metadata["doc"]`` is its
meaning, its type and default come from the class (``metadata["kind"]``/``["yaml"]`` name a YAML form
the Python type does not show). A field that is not written in a file is listed in ``SKIP`` with the
reason, so a new field can be neither undocumented nor forgotten (tests/test_config_doc.py).

    python -m bgpsvc.app.configdoc > docs/config.md      # regenerate
    python -m bgpsvc.app.configdoc --check docs/config.md  # exit 1 when stale
"""

from __future__ import annotations

import argparse
import dataclasses
import ipaddress
import sys
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..aio import SpeakerConfig
from ..fsm import BfdSettings, GracefulRestartConfig, PeerConfig
from ..k8s.config import KubernetesConfig
from ..k8s.desired import AdvertisePolicy
from ..k8s.policy import Damping, LinkBandwidth, ServiceRange
from ..rib import RouteAttrs
from .config import ControlConfig, PeerFileFields, RunConfig

#: Kinds of ``doc(..., kind)`` as a reader writes them.
KINDS = {
    "asn": "AS number (asplain, or asdot 'X.Y')",
    "ip": "IP address",
    "families": "list: ipv4-unicast, ipv6-unicast",
    "hold": "integer, 0 or 3..65535",
}
#: (class, field) -> why it is not a key of the file.
SKIP: dict[tuple[type[Any], str], str] = {
    (RunConfig, "speaker"): "the top level itself",
    (RunConfig, "warnings"): "computed: logged at start",
    (GracefulRestartConfig, "restarting"): "set by the speaker from `restarting_on_start`",
    (KubernetesConfig, "policy"): "its fields are keys of `kubernetes:` (below)",
    (KubernetesConfig, "router_id_from_node"): "implied: when `router_id` is not given",
    (KubernetesConfig, "node_selectors"): "from `peers[].node_selector`",
    (AdvertisePolicy, "ranges"): "from the mapping entries of the three range lists (below)",
    (ServiceRange, "network"): "the entry's `cidr`",
    (RouteAttrs, "extended_communities"): "library API only",
}
#: (class, field) -> the default ``bgpsvc run`` uses where it differs from the dataclass's.
RUN_DEFAULTS: dict[tuple[type[Any], str], str] = {
    (SpeakerConfig, "listen"): "0.0.0.0 and :: port 179 (the library's `SpeakerConfig`: none)",
    (SpeakerConfig, "router_id"): "required; a node speaker: the node's IPv4 InternalIP",
    (KubernetesConfig, "node_name"): "$NODE_NAME",
}
#: Forms a file writes a field in, where the class's type says something else.
FORMS: dict[tuple[type[Any], str], str] = {
    (SpeakerConfig, "listen"): "list of {address, port}, or false",
    (SpeakerConfig, "peers"): "list of peers (below)",
    (SpeakerConfig, "graceful_restart"): "mapping (below)",
    (RunConfig, "routes"): "list of routes (below)",
    (RunConfig, "control"): "mapping (below), or false",
    (RunConfig, "kubernetes"): "mapping (below)",
    (AdvertisePolicy, "attributes"): "mapping: route class -> route attributes (below)",
    (AdvertisePolicy, "link_bandwidth"): "mapping (below)",
    (PeerConfig, "bfd"): "true, a `bfd_profiles` name, or a mapping (below)",
    (AdvertisePolicy, "damping"): "mapping (below)",
}


@dataclass(frozen=True, slots=True)
class DocSection:
    """One part of the file: where it sits, what it is, and the classes whose fields are its keys."""

    path: str
    intro: str
    classes: tuple[type[Any], ...]
    extra: tuple[tuple[str, str, str, str], ...] = ()  # (key, type, default, meaning) not in a class


SECTIONS = (
    DocSection(
        "Top level",
        "Who we are, where we listen, how we stop, logging, and the sections below.",
        (SpeakerConfig, RunConfig),
        (
            (
                "bfd_profiles",
                "mapping: name -> BFD settings (below)",
                "none",
                "named BFD settings peers refer to",
            ),
        ),
    ),
    DocSection(
        "`peers[]`",
        "One entry per BGP neighbour. A changed session setting (AS, address, hold time, families, "
        "password ...) renews that one session on reload; names, next hops and limits apply at once.",
        (PeerConfig, PeerFileFields),
    ),
    DocSection(
        "`peers[].bfd` (and `bfd_profiles.NAME`)",
        "BFD with the peer (RFC 5880/5881; multihop, RFC 5883, when the peer has `multihop:`). `bfd: true` "
        "takes these defaults; `bfd: NAME` a profile from the top-level `bfd_profiles:` mapping.",
        (BfdSettings,),
    ),
    DocSection(
        "`graceful_restart`",
        "What we advertise in the Graceful Restart capability.",
        (GracefulRestartConfig,),
    ),
    DocSection("`control`", "The HTTP endpoint `bgpsvc status` and `bgpsvc routes` read.", (ControlConfig,)),
    DocSection(
        "`routes[]` (and `routes_file` lines)",
        "Each entry is a prefix, or a mapping with `prefix` and these attributes. A `routes_file` line "
        "says the same as `PREFIX key=value ...`, lists comma-separated.",
        (RouteAttrs,),
        (("prefix", "prefix (CIDR, no host bits)", "required", "the route"),),
    ),
    DocSection(
        "`kubernetes`",
        "Present: a node speaker (`bgpsvc run` on a Kubernetes node) advertising Service IPs.",
        (KubernetesConfig, AdvertisePolicy),
    ),
    DocSection(
        "`kubernetes.service_*_ips[]` entries",
        "An entry of `service_cluster_ips`, `service_external_ips` or `service_loadbalancer_ips` is a CIDR, "
        "or a mapping with `cidr` and how that range is advertised (docs/traffic.md).",
        (ServiceRange,),
        (("cidr", "CIDR", "required", "the range"),),
    ),
    DocSection(
        "`kubernetes.link_bandwidth`",
        "Weighted ECMP with the Link Bandwidth extended community (docs/traffic.md).",
        (LinkBandwidth,),
    ),
    DocSection(
        "`kubernetes.damping`",
        "Flap damping of endpoint-driven routes (docs/traffic.md).",
        (Damping,),
    ),
    DocSection(
        "`kubernetes.attributes.CLASS`",
        "Route attributes per route class: `cluster-range`, `cluster-ip`, `external-ip`, `loadbalancer-ip`.",
        (RouteAttrs,),
    ),
)


def type_name(cls: type[Any], f: dataclasses.Field[Any], tp: Any) -> str:
    """The field's type as a config file writes it."""
    meta = f.metadata
    if (cls, f.name) in FORMS:
        return FORMS[(cls, f.name)]
    if "yaml" in meta:
        return str(meta["yaml"])
    if "kind" in meta:
        return KINDS[meta["kind"]]
    if isinstance(tp, types.UnionType):
        present = [a for a in typing.get_args(tp) if a is not type(None)]
        if set(present) == {ipaddress.IPv4Address, ipaddress.IPv6Address}:
            return "IP address"
        tp = present[0] if len(present) == 1 else tp
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if (
        origin is tuple
        and args
        and isinstance(args[0], types.UnionType)
        and ipaddress.IPv4Network in typing.get_args(args[0])
    ):
        return "list of CIDRs"
    if origin in (dict, Mapping) or tp is Mapping or origin is typing.get_origin(Mapping[str, str]):
        return "mapping"
    names = {int: "integer", float: "number (seconds)", bool: "boolean", str: "string", Path: "file path"}
    name = names.get(tp, getattr(tp, "__name__", str(tp)))
    if tp is int and "bounds" in meta:
        lo, hi = meta["bounds"]
        name += f", {lo}..{hi}"
    return name


def default_text(cls: type[Any], f: dataclasses.Field[Any]) -> str:
    """The default as a file would write it."""
    if (cls, f.name) in RUN_DEFAULTS:
        return RUN_DEFAULTS[(cls, f.name)]
    if "default" in f.metadata:  # the default as the file writes it (``origin``: igp, not 0)
        return str(f.metadata["default"])
    if f.default is not dataclasses.MISSING:
        value: Any = f.default
    elif f.default_factory is not dataclasses.MISSING:
        value = f.default_factory()
    else:
        return "required"
    if value is None:
        return "none"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, tuple | list | Mapping) and not value:
        return "none"
    if isinstance(value, tuple | list):
        return "[" + ", ".join(str(v) for v in value) + "]"
    if dataclasses.is_dataclass(value):
        return "see its section"
    return f"`{value}`" if isinstance(value, str) else str(value)


def rows(section: DocSection) -> list[tuple[str, str, str, str]]:
    """(key, type, default, meaning) of every key of ``section``; raises on an undocumented field."""
    out = list(section.extra)
    for cls in section.classes:
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            if (cls, f.name) in SKIP:
                continue
            meaning = f.metadata.get("doc")
            if not meaning:
                raise ValueError(f"{cls.__name__}.{f.name}: no doc(...) metadata: document it or SKIP it")
            out.append((f.name, type_name(cls, f, hints[f.name]), default_text(cls, f), str(meaning)))
    return out


def _default(cls: type[Any], name: str) -> Any:
    return next(f.default for f in dataclasses.fields(cls) if f.name == name)


def notes() -> list[str]:
    """Prose for the settings whose interplay a table cannot show (values from the classes)."""
    idle, top, stable = (
        _default(PeerConfig, n) for n in ("idle_hold_time", "max_idle_hold_time", "stable_time")
    )
    return [
        "## Notes",
        "",
        f"**Session damping** (RFC 4271 §8.1.1 DampPeerOscillations). After a failed or lost session a peer "
        f"waits `idle_hold_time` ({idle:g} s) in Idle before the next attempt; each consecutive failure "
        f"doubles the wait, up to `max_idle_hold_time` ({top:g} s), with jitter. A session that stays "
        f"Established for `stable_time` ({stable:g} s) resets the wait to `idle_hold_time`. A router that "
        "rejects every session (a wrong AS, a refused next hop) is thus tried less and less often, down "
        f"to once every {top:g} s, and every attempt is one log line.",
        "",
        "**The Restart State bit** (RFC 4724 §4.1). `restarting_on_start` is true by default: the first "
        'sessions after a start say "I restarted", so a graceful-restart router keeps our routes, stale, '
        "until our End-of-RIB instead of dropping them at once. A DaemonSet pod cannot tell a crash or an "
        "upgrade from a first boot, and on a first boot the router has nothing of ours to keep, so the bit "
        "costs nothing then. Set it false for a speaker whose routes must never be kept across a restart.",
        "",
        "**Reloading.** SIGHUP, or a change of the file (a ConfigMap update), re-reads everything. An "
        "invalid file is refused with one log line naming the field, and the running configuration stays. "
        "`control`, `log_format` and `kubernetes.node_name`/`kubeconfig` take effect after a restart.",
    ]


def render() -> str:
    """docs/config.md."""
    lines = [
        "# Configuration reference",
        "",
        "<!-- Generated by `python -m bgpsvc.app.configdoc > docs/config.md` from the dataclasses' field",
        "     metadata; do not edit by hand (tests/test_config_doc.py fails when this file is stale). -->",
        "",
        "`bgpsvc run --config FILE` reads one YAML file. Every key is checked at start, and an error names "
        "its path and the reason (`peers[1].hold_time: must be 0 or 3..65535 (RFC 4271 §4.2)`); an unknown "
        "key suggests the one meant. Examples: `examples/` (a static anycast speaker, a node speaker).",
        "",
    ]
    for section in SECTIONS:
        lines += [f"## {section.path}", "", section.intro, "", "| key | type | default | meaning |"]
        lines.append("|---|---|---|---|")
        lines += [f"| `{k}` | {t} | {d} | {m} |" for k, t, d, m in rows(section)]
        lines.append("")
    skipped = sorted(f"`{cls.__name__}.{name}`: {why}" for (cls, name), why in SKIP.items())
    lines += notes()
    lines += ["", "## Fields that are not keys of the file", ""]
    lines += [f"- {s}" for s in skipped]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Print docs/config.md, or with ``--check FILE`` compare it (exit 1 when stale)."""
    ap = argparse.ArgumentParser(prog="python -m bgpsvc.app.configdoc", description=__doc__.splitlines()[0])
    ap.add_argument(
        "--check", metavar="FILE", help="compare FILE with the generated text instead of printing"
    )
    args = ap.parse_args(argv)
    text = render()
    if args.check is None:
        sys.stdout.write(text)
        return 0
    if Path(args.check).read_text() != text:
        print(f"{args.check} is stale: python -m bgpsvc.app.configdoc > {args.check}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
