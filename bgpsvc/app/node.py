"""The node speaker: informers + reconciler + BGP peers in one process (``bgpsvc run`` with ``kubernetes:``).

Start-up: the control endpoint comes up at once (``/readyz`` stays 503); the Node informer must sync
first, because this node's labels choose the peers, its InternalIP may be the router ID and a label or
annotation may override the local AS. Then the speaker starts, advertising only static routes until
every informer has synced (no per-service flap on restart). From then on the reconciler keeps the
desired set equal to ``desired_routes`` of the latest snapshot, and the peer set follows the node's
labels. If the API server becomes unreachable nothing is withdrawn: the stores keep the last state.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import ipaddress
import logging
from collections.abc import Mapping
from collections.abc import Set as AbstractSet
from dataclasses import replace
from typing import Any

from ..aio import Speaker, SpeakerConfig, SpeakerStatus
from ..k8s.advertise import PolicySet
from ..k8s.config import KubernetesConfig, select_peers
from ..k8s.desired import AdvertisePolicy
from ..k8s.informer import Informer, endpointslice_informer, node_informer, service_informer
from ..k8s.kubeconfig import KubeconfigError, api_client
from ..k8s.reconcile import Reconciler
from ..k8s.resolve import Resolved
from ..k8s.views import NodeView, endpointslice_from_dict
from ..rib import RouteAttrs
from ..wire import Prefix
from .config import ConfigError, RunConfig
from .crnode import ClusterConfig, merge_peers
from .status import AppStatus, InformerStatus, KubernetesStatus

log = logging.getLogger("bgpsvc.node")

#: Seconds at most that automatic cyclic collection stays paused for the informers' first lists.
GC_PAUSE_MAX = 120.0


def node_speaker_config(
    base: SpeakerConfig, kube: KubernetesConfig, node: NodeView, resolved: Resolved | None = None
) -> SpeakerConfig:
    """The speaker configuration for this node: router ID, local AS and peers from the node itself and
    the custom resources (``resolved``; precedence in ``bgpsvc.app.crnode``)."""
    over = resolved.overrides if resolved is not None else None
    router_id = base.router_id
    if over is not None and over.router_id:
        router_id = over.router_id
    elif kube.router_id_from_node:
        v4 = [ip for ip in node.internal_ips if ipaddress.ip_address(ip).version == 4]
        if not v4:
            raise ValueError(f"node {node.name} has no IPv4 InternalIP for the router ID; set router_id")
        router_id = v4[0]
    local_as = base.local_as
    override = node.label(kube.local_as_key) or node.annotation(kube.local_as_key)
    if override:
        try:
            local_as = int(override)
        except ValueError:
            log.error(
                "node %s: %s=%r is not an AS number; using %d",
                node.name,
                kube.local_as_key,
                override,
                local_as,
            )
    if over is not None and over.local_as:
        local_as = over.local_as
    peers = select_peers(base.peers, kube, node)
    if resolved is not None:
        peers, _ = merge_peers(peers, resolved.peers)
    return replace(base, router_id=router_id, local_as=local_as, peers=peers)


class NodeSpeaker:
    """Owns the informers, the reconciler and the speaker of one node."""

    def __init__(self, config: RunConfig, static_routes: Mapping[Prefix, RouteAttrs]) -> None:
        assert config.kubernetes is not None
        self.config = config
        self.kube = config.kubernetes
        self.static = dict(static_routes)
        self.speaker: Speaker | None = None
        self.reconciler: Reconciler | None = None
        self._task: asyncio.Task[None] | None = None
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        self._release_timer: asyncio.TimerHandle | None = None
        self._gc_paused = False
        self._gc_timer: asyncio.TimerHandle | None = None
        self._node: NodeView | None = None
        try:
            api = api_client(self.kube.kubeconfig)
        except KubeconfigError as exc:
            raise ConfigError(str(exc)) from None
        self.informers: dict[str, Informer[Any]] = {
            "nodes": node_informer(
                api, on_change=self._changed, field_selector=f"metadata.name={self.kube.node_name}"
            ),
            "services": service_informer(api, on_change=self._changed),
            "endpointslices": endpointslice_informer(
                api,
                on_change=self._changed,
                converter=functools.partial(endpointslice_from_dict, node=self.kube.node_name),
            ),
        }
        self.cluster = ClusterConfig(api, self.kube, self._resolved) if self.kube.custom_resources else None
        self._cr_task: asyncio.Task[None] | None = None
        self._said: tuple[str, ...] = ()

    def _changed(self) -> None:
        # Informer threads call this; the reconciler (once it exists) does the rest on the loop.
        if self.reconciler is not None:
            self.reconciler.mark_dirty()
        else:
            self._loop.call_soon_threadsafe(self._wake.set)

    @property
    def ready(self) -> bool:
        """Speaker started and every informer synced once."""
        return self.speaker is not None and self.reconciler is not None and self.reconciler.synced

    async def start(self) -> None:
        """Start informers, wait for this node's object, then start the speaker and the reconcile loop."""
        self._pause_collector()
        for inf in self.informers.values():
            inf.start()
        if self.cluster is not None:
            self.cluster.start()
        node = self._node = await self._wait_for_node()
        resolved = None
        if self.cluster is not None:
            self.cluster.node = node
            if await self.cluster.wait_synced():
                resolved = self.cluster.refresh(node)
        cfg = node_speaker_config(self.config.speaker, self.kube, node, resolved)
        self._precedence(resolved)
        log.info(
            "node %s: router-id %s, AS %d, %d of %d peers selected",
            node.name,
            cfg.router_id,
            cfg.local_as,
            len(cfg.peers),
            len(self.config.speaker.peers),
        )
        # Hold every session's first advertisement (and End-of-RIB) until the informers have synced and
        # the first reconcile has set the whole desired set; a restarting node would otherwise tell its
        # graceful-restart helpers it is done with only static routes, and they would flush the rest.
        self.speaker = Speaker(cfg, hold_initial=True)
        await self.speaker.start()
        self.speaker.set_routes(self.static)
        restart_time = cfg.graceful_restart.restart_time
        self._release_timer = self._loop.call_later(max(restart_time - 5.0, 1.0), self._release_anyway)
        self.reconciler = Reconciler(
            self.informers["services"],
            self.informers["endpointslices"],
            self.informers["nodes"],
            node=self.kube.node_name,
            policy=self._policy(resolved, cfg.local_as),
            apply=self._apply,
            on_node=self._node_changed,
            debounce=self.kube.debounce,
            full_every=self.kube.full_resync,
            on_first=self._resume_collector,
        )
        self._task = asyncio.create_task(self.reconciler.run())
        if self.cluster is not None:
            self._cr_task = asyncio.create_task(self.cluster.run(lambda: self.speaker, self.kube.debounce))

    def _pause_collector(self) -> None:
        """No automatic cyclic collection while the informers make their first lists: the full ones
        their allocations trigger walk the growing stores with the GIL held (346 ms over the stores of a
        100k-Service sync, bench/gc_pause.py), and BFD's thread cannot send meanwhile. The first reconcile
        freezes the stores and resumes it; so does ``GC_PAUSE_MAX`` or ``stop``, whichever comes first
        (an API server away for long must not let garbage build up)."""
        if gc.isenabled():
            gc.disable()
            self._gc_paused = True
            self._gc_timer = self._loop.call_later(GC_PAUSE_MAX, self._resume_collector)

    def _resume_collector(self) -> None:
        if self._gc_timer is not None:
            self._gc_timer.cancel()
            self._gc_timer = None
        if self._gc_paused:
            self._gc_paused = False
            gc.enable()

    async def _wait_for_node(self) -> NodeView:
        nodes = self.informers["nodes"]
        waited = 0.0
        while True:
            view = nodes.snapshot().get(("", self.kube.node_name)) if nodes.synced else None
            if isinstance(view, NodeView):
                return view
            if waited % 10 < 0.5:
                state = "node object not found" if nodes.synced else f"API not synced ({nodes.last_error})"
                log.info("waiting for node %s: %s", self.kube.node_name, state)
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), 0.5)
            waited += 0.5

    def _apply(self, desired: Mapping[Prefix, RouteAttrs], changed: AbstractSet[Prefix] | None) -> None:
        assert self.speaker is not None
        # A fresh dict of Prefix -> RouteAttrs that nothing else holds: the speaker may keep it as it is
        # (no per-route conversion pass on every watch event); ``changed`` lets each peer compare only
        # the prefixes this step can have changed (static routes change only on reload, without it).
        self.speaker.set_routes({**self.static, **desired}, owned=True, changed=changed)
        self.speaker.release_initial()  # the first synced reconcile: the table is complete

    def _release_anyway(self) -> None:
        # The API stayed unreachable for (almost) the whole restart time: helpers will flush our stale
        # routes at its end anyway, so advertise what we know (static routes) rather than nothing.
        if self.speaker is not None and self.speaker.holding:
            log.warning("informers not synced within the restart time: advertising static routes only")
            self.speaker.release_initial()

    def _node_changed(self, node: NodeView | None) -> None:
        if self.speaker is None or node is None:
            return  # a vanished Node object (API hiccup) is not a reason to drop peers
        if node != self._node and self.cluster is not None:
            self.cluster.node = node
            self.cluster.mark_dirty()  # BGPPeers and BGPAdvertisements select nodes by label
        self._node = node
        self._apply_config()

    def _policy(self, resolved: Resolved | None, local_as: int) -> AdvertisePolicy | PolicySet:
        if resolved is not None and resolved.policy is not None:
            return resolved.policy
        return self.kube.policy_for(local_as)  # the node's AS in the Link Bandwidth community

    def _resolved(self, resolved: Resolved) -> None:
        self._precedence(resolved)
        self._apply_config()

    def _apply_config(self) -> None:
        """Make the speaker and the reconciler match the file, the node and the custom resources."""
        if self.speaker is None or self._node is None:
            return
        resolved = self.cluster.resolved if self.cluster is not None else None
        try:
            cfg = node_speaker_config(self.config.speaker, self.kube, self._node, resolved)
        except ValueError as exc:
            log.error("node %s: configuration not applied: %s", self._node.name, exc)
            return
        if cfg != self.speaker.config:
            old = {(p.address, p.port) for p in self.speaker.config.peers}
            new = {(p.address, p.port) for p in cfg.peers}
            log.info(
                "configuration changed: %d peers (%d added, %d removed), router-id %s, AS %d",
                len(cfg.peers),
                len(new - old),
                len(old - new),
                cfg.router_id,
                cfg.local_as,
            )
            self.speaker.reconfigure(cfg)
        policy = self._policy(resolved, cfg.local_as)
        if self.reconciler is not None and policy != self.reconciler.policy:
            self.reconciler.policy = policy
            self.reconciler.mark_dirty()

    def _precedence(self, resolved: Resolved | None) -> None:
        """Log, once per change, where custom resources take precedence over the file."""
        said: list[str] = []
        if resolved is not None:
            _, said = merge_peers(self.config.speaker.peers, resolved.peers)
            p = self.kube.policy
            file_policy = p.service_cluster_ips or p.service_external_ips or p.service_loadbalancer_ips
            if resolved.policy is not None and file_policy:
                said.append(
                    "BGPAdvertisements exist: the file's kubernetes ranges and attributes are not used"
                )
        for line in sorted(set(said) - set(self._said)):
            log.info("precedence: %s", line)
        self._said = tuple(said)

    def status(self) -> AppStatus:
        """Speaker status plus the Kubernetes side."""
        if self.speaker is not None:
            classes = self.reconciler.classes if self.reconciler is not None else {}
            speaker = self.speaker.status(lambda p: classes.get(p, "static"))
        else:
            base = self.config.speaker
            speaker = SpeakerStatus(base.local_as, base.router_id, 0, 0.0, False, ())
        return AppStatus(speaker, self.k8s_status())

    def k8s_status(self) -> KubernetesStatus:
        """Reconciler and informer state."""
        all_informers = dict(self.informers)
        if self.cluster is not None:
            all_informers |= self.cluster.watch.informers
        informers = {
            n: InformerStatus(i.synced, i.healthy, i.relists, i.size) for n, i in all_informers.items()
        }
        cluster = self.cluster
        leader = cluster.elector.leading if cluster is not None and self.kube.status_interval > 0 else None
        transitions = cluster.elector.transitions if cluster is not None else 0
        rec = self.reconciler
        if rec is None:
            return KubernetesStatus(
                node=self.kube.node_name,
                synced=False,
                api_reachable=all(i.healthy for i in self.informers.values()),
                waiting_for_sync=True,
                reconciles=0,
                reconcile_seconds_total=0.0,
                last_reconcile_seconds=0.0,
                last_reconcile_at=None,
                routes=0,
                informers=informers,
                conditions_leader=leader,
                lease_transitions=transitions,
            )
        st = rec.stats
        return KubernetesStatus(
            node=self.kube.node_name,
            synced=rec.synced,
            api_reachable=rec.api_reachable,
            waiting_for_sync=st.waiting_for_sync,
            reconciles=st.count,
            reconcile_seconds_total=st.total_duration,
            last_reconcile_seconds=st.last_duration,
            last_reconcile_at=st.last_at,
            routes=st.routes,
            routes_by_class=dict(st.by_class),
            informers=informers,
            reconciles_incremental=st.incremental,
            reconciles_full=st.full,
            incremental_mismatches=st.mismatches,
            event_to_update=rec.event_to_update.to_json(),
            event_to_update_processing=rec.event_to_update_processing.to_json(),
            event_to_step=rec.event_to_step.to_json(),
            conditions_leader=leader,
            lease_transitions=transitions,
        )

    def skip_drain(self) -> None:
        """End a graceful-shutdown drain now."""
        if self.speaker is not None:
            self.speaker.skip_drain()

    def reload(self, config: RunConfig, routes: Mapping[Prefix, RouteAttrs]) -> None:
        """Apply a new configuration live: peers, attributes, ranges and static routes."""
        kube = config.kubernetes
        assert kube is not None
        if (kube.node_name, kube.kubeconfig) != (self.kube.node_name, self.kube.kubeconfig):
            raise ValueError("kubernetes.node_name and kubeconfig take effect after a restart")
        if (kube.custom_resources, kube.secret_namespace) != (
            self.kube.custom_resources,
            self.kube.secret_namespace,
        ):
            raise ValueError("kubernetes.custom_resources and secret_namespace take effect after a restart")
        self.config, self.kube, self.static = config, kube, dict(routes)
        if self.cluster is not None:
            self.cluster.kube = kube
            self.cluster.mark_dirty()
        self._apply_config()
        if self.reconciler is not None:
            self.reconciler.debounce, self.reconciler.full_every = kube.debounce, kube.full_resync
            self.reconciler.resync()  # a configuration change: recompute everything
        elif self.speaker is not None:
            self.speaker.set_routes(self.static)

    async def stop(self, restart: bool = False) -> None:
        """Stop the loop, the informers and the speaker (gracefully unless ``restart``)."""
        self._resume_collector()
        if self._release_timer is not None:
            self._release_timer.cancel()
        if self._task is not None:
            self._task.cancel()
        if self._cr_task is not None:
            self._cr_task.cancel()
        if self.cluster is not None:
            await self.cluster.release()
            self.cluster.stop()
        for inf in self.informers.values():
            inf.stop(timeout=2.0)
        if self.speaker is not None:
            await self.speaker.stop(restart=restart)
