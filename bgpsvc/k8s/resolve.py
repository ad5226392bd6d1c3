"""From custom resources to one node's configuration: a pure function (STYLE §7, level-triggered).

``resolve(resources, secrets, node, last_good)`` returns the node's peers (``PeerConfig`` with their
passwords), its advertisement policy (``PolicySet``; None while no BGPAdvertisement exists, so the file's
policy applies), its overrides (router ID, local AS from the ``BGPNodeConfig`` named after it), the
status conditions of every object, and the new last good configuration.

Conditions (``metav1.Condition`` types, positive polarity as the API conventions ask):

- ``Accepted``: False with reason ``InvalidSpec``, ``SecretNotFound``, ``SecretKeyNotFound`` or
  ``InvalidPassword`` when bgpsvc cannot use the object. No condition while a referenced Secret has not
  been listed yet (that is not known to be missing).
- ``NodesSelected``: False with reason ``NoMatchingNode`` when the node selector (a BGPNodeConfig: its
  name) matches no node in the cluster.

An object that is not usable, for either reason, does not take a working configuration away: a node
that had applied an earlier version keeps that version (``last_good``) and says so in ``problems``; a
node that never had it applies nothing of it. Two BGPPeers for the same address and port on one node: the
first by name applies, the other is a problem of that node.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from ..fsm import PeerConfig
from .advertise import AdvertisementResource, PolicyEntry, PolicySet
from .labels import LabelSelector
from .resources import (
    ADVERTISEMENTS,
    NODE_CONFIGS,
    PEERS,
    Condition,
    NodeConfigResource,
    ObjectRef,
    PeerResource,
    SecretView,
)
from .views import Key, NodeView

ACCEPTED = "Accepted"
NODES_SELECTED = "NodesSelected"
_OK = Condition(ACCEPTED, "True", "Accepted")


@dataclass(frozen=True, slots=True)
class Resources:
    """The informers' snapshots: bgpsvc's custom resources and every node (for ``NoMatchingNode``)."""

    peers: Mapping[Key, PeerResource] = field(default_factory=dict)
    advertisements: Mapping[Key, AdvertisementResource] = field(default_factory=dict)
    node_configs: Mapping[Key, NodeConfigResource] = field(default_factory=dict)
    nodes: Mapping[Key, NodeView] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Secrets:
    """Referenced Secrets: those found, and every (namespace, name) whose informer has listed."""

    items: Mapping[Key, SecretView] = field(default_factory=dict)
    listed: frozenset[Key] = frozenset()


@dataclass(frozen=True, slots=True)
class Overrides:
    """Per-node values from a BGPNodeConfig (None: not overridden)."""

    router_id: str | None = None
    local_as: int | None = None


@dataclass(frozen=True, slots=True)
class LastGood:
    """What this node applied of each object the last time it could use it."""

    peers: Mapping[str, PeerConfig] = field(default_factory=dict)
    advertisements: Mapping[str, PolicyEntry] = field(default_factory=dict)
    overrides: Overrides = Overrides()


@dataclass(frozen=True, slots=True)
class Resolved:
    """One node's configuration from the custom resources, and every object's conditions."""

    peers: tuple[PeerConfig, ...]
    policy: PolicySet | None
    overrides: Overrides
    conditions: Mapping[ObjectRef, tuple[Condition, ...]]
    #: This node's objects it could not use as they are, in words (for its BGPNodeStatus and the log).
    problems: tuple[str, ...]
    #: Secrets the peers reference: (namespace, name).
    secret_refs: frozenset[Key]
    last_good: LastGood


def _selects_some(sel: LabelSelector | None, nodes: list[dict[str, str]]) -> bool:
    return sel is None or any(sel.matches(labels) for labels in nodes)


def _selected(sel: LabelSelector | None, nodes: list[dict[str, str]]) -> Condition:
    if _selects_some(sel, nodes):
        return Condition(NODES_SELECTED, "True", "Selected")
    return Condition(NODES_SELECTED, "False", "NoMatchingNode", f"nodeSelector {sel} matches no node")


def peer_password(
    res: PeerResource, secrets: Secrets, namespace: str
) -> tuple[PeerConfig | None, Condition | None]:
    """The peer with its password, or why not (None, None: its Secret has not been listed yet)."""
    if res.peer is None:
        return None, Condition(ACCEPTED, "False", "InvalidSpec", res.error or "unusable spec")
    if res.password is None:
        return res.peer, _OK
    key = (namespace, res.password.name)
    if key not in secrets.listed:
        return None, None
    secret = secrets.items.get(key)
    if secret is None:
        return None, Condition(ACCEPTED, "False", "SecretNotFound", f"Secret {key[0]}/{key[1]} not found")
    raw = secret.get(res.password.key)
    if raw is None:
        why = f"Secret {key[0]}/{key[1]} has no key {res.password.key!r}"
        return None, Condition(ACCEPTED, "False", "SecretKeyNotFound", why)
    try:
        # A file made with `kubectl create secret --from-file` may end in a newline; no key does.
        return replace(res.peer, password=raw.decode().rstrip("\r\n") or None), _OK
    except (UnicodeDecodeError, ValueError) as exc:
        why = f"Secret {key[0]}/{key[1]} key {res.password.key!r}: {exc}"
        return None, Condition(ACCEPTED, "False", "InvalidPassword", why)


def _peers(
    resources: Resources, secrets: Secrets, node: dict[str, str], nodes: list[dict[str, str]],
    *, last: LastGood, namespace: str,
) -> tuple[dict[str, PeerConfig], dict[ObjectRef, tuple[Condition, ...]], list[str]]:  # fmt: skip
    applied: dict[str, PeerConfig] = {}
    conditions: dict[ObjectRef, tuple[Condition, ...]] = {}
    problems: list[str] = []
    for res in sorted(resources.peers.values(), key=lambda r: r.name):
        peer, accepted = peer_password(res, secrets, namespace)
        selected = _selected(res.node_selector, nodes)
        if accepted is not None:
            conditions[(PEERS, res.name)] = (accepted, selected)
        if peer is not None and selected.status == "True":
            if res.node_selector is None or res.node_selector.matches(node):
                applied[res.name] = peer
        elif res.name in last.peers:
            applied[res.name] = last.peers[res.name]
            why = (
                accepted.message if accepted is not None and accepted.status == "False" else selected.message
            )
            problems.append(f"BGPPeer {res.name}: {why or 'waiting for its Secret'}; keeping the last good")
    return applied, conditions, problems


def _no_clash(applied: dict[str, PeerConfig], problems: list[str]) -> tuple[PeerConfig, ...]:
    seen: dict[tuple[str, int], str] = {}
    out = []
    for name in sorted(applied):
        p = applied[name]
        key = (p.address, p.port)
        if key in seen:
            problems.append(f"BGPPeer {name}: {p.address} port {p.port} is BGPPeer {seen[key]}'s; ignored")
            continue
        seen[key] = name
        out.append(p)
    return tuple(out)


def _advertisements(
    resources: Resources, node: dict[str, str], nodes: list[dict[str, str]], last: LastGood,
    honour_exclude_label: bool,
) -> tuple[dict[str, PolicyEntry], dict[ObjectRef, tuple[Condition, ...]], list[str]]:  # fmt: skip
    applied: dict[str, PolicyEntry] = {}
    conditions: dict[ObjectRef, tuple[Condition, ...]] = {}
    problems: list[str] = []
    for res in sorted(resources.advertisements.values(), key=lambda r: r.name):
        selected = _selected(res.node_selector, nodes)
        if res.policy is None:
            accepted = Condition(ACCEPTED, "False", "InvalidSpec", res.error or "unusable spec")
        else:
            accepted = _OK
        conditions[(ADVERTISEMENTS, res.name)] = (accepted, selected)
        if res.policy is not None and selected.status == "True":
            if res.node_selector is None or res.node_selector.matches(node):
                policy = replace(res.policy, honour_exclude_label=honour_exclude_label)
                applied[res.name] = PolicyEntry(res.name, policy, res.service_selector)
        elif res.name in last.advertisements:
            applied[res.name] = last.advertisements[res.name]
            why = accepted.message if accepted.status == "False" else selected.message
            problems.append(f"BGPAdvertisement {res.name}: {why}; keeping the last good")
    return applied, conditions, problems


def _overrides(
    resources: Resources, node: NodeView, last: LastGood
) -> tuple[Overrides, dict[ObjectRef, tuple[Condition, ...]], list[str]]:
    names = {n.name for n in resources.nodes.values()} | {node.name}
    conditions: dict[ObjectRef, tuple[Condition, ...]] = {}
    for res in resources.node_configs.values():
        accepted = _OK if res.error is None else Condition(ACCEPTED, "False", "InvalidSpec", res.error)
        selected = (
            Condition(NODES_SELECTED, "True", "Selected")
            if res.name in names
            else Condition(NODES_SELECTED, "False", "NoMatchingNode", f"no node is named {res.name}")
        )
        conditions[(NODE_CONFIGS, res.name)] = (accepted, selected)
    mine = resources.node_configs.get(("", node.name))
    if mine is None:
        return Overrides(), conditions, []
    if mine.error is not None:
        return last.overrides, conditions, [f"BGPNodeConfig {mine.name}: {mine.error}; keeping the last good"]
    return Overrides(mine.router_id, mine.local_as), conditions, []


def resolve(
    resources: Resources,
    secrets: Secrets,
    node: NodeView,
    last_good: LastGood | None = None,
    *,
    secret_namespace: str,
    honour_exclude_label: bool = True,
) -> Resolved:
    """This node's configuration from the custom resources (see the module docstring)."""
    last = last_good or LastGood()
    labels = dict(node.labels)
    nodes = [dict(n.labels) for n in resources.nodes.values()]
    if not any(n.name == node.name for n in resources.nodes.values()):
        nodes.append(labels)  # the node itself exists, whatever the all-nodes informer says yet
    peers, conditions, problems = _peers(
        resources, secrets, labels, nodes, last=last, namespace=secret_namespace
    )
    ordered = _no_clash(peers, problems)
    adverts, adv_conditions, adv_problems = _advertisements(
        resources, labels, nodes, last, honour_exclude_label
    )
    overrides, node_conditions, node_problems = _overrides(resources, node, last)
    policy = None
    if resources.advertisements:
        policy = PolicySet(tuple(adverts[n] for n in sorted(adverts)))
    refs = frozenset(
        (secret_namespace, r.password.name) for r in resources.peers.values() if r.password is not None
    )
    return Resolved(
        peers=ordered,
        policy=policy,
        overrides=overrides,
        conditions={**conditions, **adv_conditions, **node_conditions},
        problems=tuple(problems + adv_problems + node_problems),
        secret_refs=refs,
        last_good=LastGood(peers, adverts, overrides),
    )
