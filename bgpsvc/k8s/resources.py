"""Frozen views of bgpsvc's custom resources (group ``bgpsvc.io``, version ``v1alpha1``) and of Secrets.

The CRDs are ``deploy/manifests/01-crds.yaml``: ``BGPPeer``, ``BGPAdvertisement`` (its view and mapping live
in ``bgpsvc.k8s.advertise``), ``BGPNodeConfig`` and ``BGPNodeStatus`` (written, never read). Converters
run in the informer threads and never raise: the API server has already checked the schema and CEL
rules, but a spec bgpsvc still cannot use (an older CRD version, a rule the cluster did not enforce)
becomes a view with ``error`` set, naming the field, which the resolver turns into a status condition.

A ``BGPPeer`` maps onto ``bgpsvc.fsm.PeerConfig``, the one source of per-peer fields and their
validation: ``PEER_FIELDS`` is the whole mapping, and PeerConfig's own checks name the CRD field in the
message. The password is not in the view; ``passwordSecretRef`` names the Secret the resolver reads.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from ..fsm import BfdSettings, PeerConfig
from ..wire import IPV4_UNICAST, IPV6_UNICAST, Family
from .labels import LabelSelector, selector_from_dict

GROUP = "bgpsvc.io"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
PEERS = "bgppeers"
ADVERTISEMENTS = "bgpadvertisements"
NODE_CONFIGS = "bgpnodeconfigs"
NODE_STATUSES = "bgpnodestatuses"
#: plural -> kind
KINDS = {
    PEERS: "BGPPeer",
    ADVERTISEMENTS: "BGPAdvertisement",
    NODE_CONFIGS: "BGPNodeConfig",
    NODE_STATUSES: "BGPNodeStatus",
}
FAMILY_NAMES: dict[str, Family] = {"ipv4-unicast": IPV4_UNICAST, "ipv6-unicast": IPV6_UNICAST}
#: BGPPeer spec field -> PeerConfig field (scalars; families, gracefulRestart and the rest below).
PEER_FIELDS = {
    "address": "address",
    "peerASN": "peer_as",
    "localASN": "local_as",
    "port": "port",
    "sourceAddress": "local_address",
    "holdTime": "hold_time",
    "keepaliveTime": "keepalive_time",
    "connectRetryTime": "connect_retry_time",
    "passive": "passive",
    "ebgpMultihop": "multihop",
    "ttlSecurity": "ttl_security",
}
_CR_FIELD = {v: k for k, v in PEER_FIELDS.items()} | {
    "families": "families",
    "graceful_restart": "gracefulRestart.enabled",
    "password": "passwordSecretRef",
}

ObjectRef = tuple[str, str]  # (plural, name): every bgpsvc resource is cluster-scoped


@dataclass(frozen=True, slots=True)
class Condition:
    """A ``metav1.Condition`` without its bookkeeping (generation and transition time come on write)."""

    type: str
    status: str  # "True" or "False"
    reason: str
    message: str = ""


@dataclass(frozen=True, slots=True)
class ObjectStatus:
    """What an object's status says now: whether a write is due is decided against this."""

    observed_generation: int | None = None
    conditions: tuple[Condition, ...] = ()
    #: condition type -> lastTransitionTime, kept when a condition is written again unchanged.
    transitions: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class SecretRef:
    """A key of a Secret in bgpsvc's own namespace."""

    name: str
    key: str = "password"


@dataclass(frozen=True, slots=True)
class PeerResource:
    """A ``BGPPeer``: the peer (without its password), where it applies, what it references."""

    name: str
    generation: int = 0
    status: ObjectStatus = field(default_factory=ObjectStatus)
    peer: PeerConfig | None = None  # None: ``error`` says why
    node_selector: LabelSelector | None = None  # None: every node
    password: SecretRef | None = None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class NodeConfigResource:
    """A ``BGPNodeConfig``, named after its node: router ID and local AS for that node."""

    name: str
    generation: int = 0
    status: ObjectStatus = field(default_factory=ObjectStatus)
    router_id: str | None = None
    local_as: int | None = None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class SecretView:
    """A Secret's decoded data (never printed)."""

    namespace: str
    name: str
    data: tuple[tuple[str, bytes], ...] = field(default=(), repr=False)

    def get(self, key: str) -> bytes | None:
        """The value of ``key``, or None."""
        return next((v for k, v in self.data if k == key), None)


def _meta(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    meta = obj.get("metadata")
    return meta if isinstance(meta, Mapping) else {}


def _int(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"expected an integer, got {value!r}")
    return value


def status_from_dict(obj: Mapping[str, Any]) -> ObjectStatus:
    """The ``status`` of any of bgpsvc's resources (malformed entries are skipped)."""
    st = obj.get("status")
    if not isinstance(st, Mapping):
        return ObjectStatus()
    gen = st.get("observedGeneration")
    conds, times = [], []
    for c in st.get("conditions") or []:
        if isinstance(c, Mapping) and isinstance(c.get("type"), str):
            conds.append(
                Condition(c["type"], str(c.get("status")), str(c.get("reason")), str(c.get("message")))
            )
            times.append((c["type"], str(c.get("lastTransitionTime") or "")))
    return ObjectStatus(gen if isinstance(gen, int) else None, tuple(conds), tuple(times))


def _peer_config(name: str, spec: Mapping[str, Any]) -> PeerConfig:
    kw: dict[str, Any] = {"name": name}
    for cr, py in PEER_FIELDS.items():
        if spec.get(cr) is not None:
            value = spec[cr]
            kw[py] = str(value) if py in ("address", "local_address") else value
    if isinstance(kw.get("connect_retry_time"), int):
        kw["connect_retry_time"] = float(kw["connect_retry_time"])
    for key in ("peer_as", "local_as", "port", "hold_time", "keepalive_time", "multihop"):
        if key in kw:
            kw[key] = _int(kw[key])
    fams = spec.get("families")
    if fams is not None:
        if not isinstance(fams, list) or any(f not in FAMILY_NAMES for f in fams):
            raise ValueError(f"families: {fams!r} (use {', '.join(FAMILY_NAMES)})")
        kw["families"] = tuple(dict.fromkeys(FAMILY_NAMES[f] for f in fams))
    gr = spec.get("gracefulRestart")
    if isinstance(gr, Mapping) and gr.get("enabled") is not None:
        kw["graceful_restart"] = bool(gr["enabled"])
    try:
        return PeerConfig(**kw)
    except TypeError as exc:
        raise ValueError(str(exc)) from None


def _cr_error(exc: Exception) -> str:
    """PeerConfig's "field: why" with the field as the CRD spells it."""
    text = str(exc)
    py, sep, why = text.partition(": ")
    return f"spec.{_CR_FIELD.get(py, py)}: {why}" if sep and py in _CR_FIELD else f"spec: {text}"


def _secret_ref(value: object) -> SecretRef | None:
    if value is None:
        return None
    if not isinstance(value, Mapping) or not isinstance(value.get("name"), str) or not value["name"]:
        raise ValueError("spec.passwordSecretRef.name: required")
    return SecretRef(value["name"], str(value.get("key") or "password"))


def _bfd(value: object) -> BfdSettings | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise ValueError("spec.bfd: expected {minRxInterval, minTxInterval, multiplier}")
    d = BfdSettings()
    try:
        return BfdSettings(
            _int(value.get("minRxInterval", d.min_rx_ms)),
            _int(value.get("minTxInterval", d.min_tx_ms)),
            _int(value.get("multiplier", d.multiplier)),
        )
    except ValueError as exc:
        raise ValueError(f"spec.bfd.{exc}") from None


def peer_from_dict(obj: Mapping[str, Any]) -> PeerResource:
    """Build a ``PeerResource`` from a BGPPeer; an unusable spec sets ``error`` instead of raising."""
    meta = _meta(obj)
    name = str(meta.get("name") or "")
    gen = meta.get("generation")
    base = PeerResource(name, gen if isinstance(gen, int) else 0, status_from_dict(obj))
    spec = obj.get("spec")
    if not isinstance(spec, Mapping):
        return _with(base, error="spec: required")
    try:
        peer = _peer_config(name, spec)
    except ValueError as exc:
        return _with(base, error=_cr_error(exc))
    try:
        sel = spec.get("nodeSelector")
        return _with(
            base,
            peer=replace(peer, bfd=_bfd(spec.get("bfd"))),
            node_selector=None if sel is None else selector_from_dict(sel, "spec.nodeSelector"),
            password=_secret_ref(spec.get("passwordSecretRef")),
        )
    except ValueError as exc:
        return _with(base, error=str(exc))


def _with(base: PeerResource, **kw: Any) -> PeerResource:
    return PeerResource(**{**{f: getattr(base, f) for f in base.__dataclass_fields__}, **kw})


def node_config_from_dict(obj: Mapping[str, Any]) -> NodeConfigResource:
    """Build a ``NodeConfigResource`` from a BGPNodeConfig (an unusable spec sets ``error``)."""
    from ipaddress import IPv4Address  # noqa: PLC0415 - only here

    meta = _meta(obj)
    name = str(meta.get("name") or "")
    gen = meta.get("generation")
    generation, status = (gen if isinstance(gen, int) else 0), status_from_dict(obj)
    spec = obj.get("spec") if isinstance(obj.get("spec"), Mapping) else {}
    assert isinstance(spec, Mapping)
    try:
        rid = spec.get("routerID")
        if rid is not None:
            try:
                rid = str(IPv4Address(str(rid)))
            except ValueError:
                raise ValueError(f"spec.routerID: {rid!r} is not an IPv4 address") from None
            if rid == "0.0.0.0":
                raise ValueError("spec.routerID: 0.0.0.0 is not a BGP identifier (RFC 6286)")
        asn = spec.get("localASN")
        if asn is not None and not (isinstance(asn, int) and not isinstance(asn, bool) and 1 <= asn < 2**32):
            raise ValueError(f"spec.localASN: {asn!r} is not an AS number (1..4294967295)")
    except ValueError as exc:
        return NodeConfigResource(name, generation, status, error=str(exc))
    return NodeConfigResource(name, generation, status, rid, asn)


def secret_from_dict(obj: Mapping[str, Any]) -> SecretView:
    """Build a ``SecretView``: ``data`` base64-decoded, ``stringData`` as written; bad entries skipped."""
    meta = _meta(obj)
    out: dict[str, bytes] = {}
    data = obj.get("data")
    if isinstance(data, Mapping):
        for k, v in data.items():
            try:
                out[str(k)] = base64.b64decode(str(v), validate=True)
            except (binascii.Error, ValueError):
                continue
    sdata = obj.get("stringData")  # only on objects written as-is (the lab); the API folds it into data
    if isinstance(sdata, Mapping):
        out.update({str(k): str(v).encode() for k, v in sdata.items()})
    return SecretView(
        str(meta.get("namespace") or ""), str(meta.get("name") or ""), tuple(sorted(out.items()))
    )
