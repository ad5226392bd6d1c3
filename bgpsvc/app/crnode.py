"""The node speaker's custom-resource side: BGPPeer, BGPAdvertisement and BGPNodeConfig applied live,
and status written back (``BGPNodeStatus``, objects' conditions).

Level-triggered like the route reconciler: any change (a custom resource, a referenced Secret, a Node's
labels) only marks it dirty; ``ClusterConfig.refresh`` then takes fresh snapshots, runs the pure
``resolve`` and hands the result to the node speaker, which applies whatever differs from what runs
(``Speaker.reconfigure``: unchanged sessions untouched). The last good configuration of each object
survives an object becoming unusable.

Precedence, when the config file and custom resources both say something (logged when it applies):
peers are the file's (for this node) plus the BGPPeers selecting it, a BGPPeer replacing a file peer with
the same address and port; once any BGPAdvertisement exists, BGPAdvertisements alone decide what is
advertised (the file's ``kubernetes:`` ranges and attributes are the bootstrap until then); router ID and
local AS: BGPNodeConfig, then the node label/annotation, then the file.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Callable
from typing import Any

from ..aio import Speaker
from ..fsm import PeerConfig
from ..k8s.config import KubernetesConfig
from ..k8s.crwatch import ResourceWatch
from ..k8s.lease import LeaseElector
from ..k8s.nodestatus import NodeStatusBuilder, family_of, rfc3339
from ..k8s.resolve import LastGood, Resolved, resolve
from ..k8s.statuswriter import ConditionReporter, NodeStatusWriter
from ..k8s.views import NodeView

log = logging.getLogger("bgpsvc.node")

#: Seconds between looks at the speaker for this node's status; the writer coalesces what changed.
STATUS_POLL = 1.0
#: Seconds to wait at start for the custom-resource informers before starting on the file alone (an RBAC
#: or API problem): the CR side then applies as soon as they list.
SYNC_WAIT = 10.0


def merge_peers(
    file_peers: tuple[PeerConfig, ...], cr_peers: tuple[PeerConfig, ...]
) -> tuple[tuple[PeerConfig, ...], list[str]]:
    """File peers plus BGPPeers; a BGPPeer replaces a file peer with its address and port. Returns the
    peers and, in words, which file peers were replaced."""
    by_key = {(p.address, p.port): p for p in cr_peers}
    kept = [p for p in file_peers if (p.address, p.port) not in by_key]
    replaced = [
        f"BGPPeer {by_key[(p.address, p.port)].label} replaces the file's peer {p.label}"
        for p in file_peers
        if (p.address, p.port) in by_key
    ]
    return (*kept, *cr_peers), replaced


class ClusterConfig:
    """Resolve custom resources for one node and report status (owned by ``NodeSpeaker``)."""

    def __init__(
        self,
        api: Any,  # a kubernetes ApiClient (only bgpsvc.k8s touches the client)
        kube: KubernetesConfig,
        on_resolved: Callable[[Resolved], None],
    ) -> None:
        self.kube = kube
        self._loop = asyncio.get_running_loop()
        self._dirty = asyncio.Event()
        self.watch = ResourceWatch(api, secret_namespace=kube.secret_namespace, on_change=self.mark_dirty)
        self._on_resolved = on_resolved
        self.resolved: Resolved | None = None
        self.last_good = LastGood()
        self.node: NodeView | None = None
        self._problems: tuple[str, ...] = ()
        self.writer = NodeStatusWriter(api, kube.node_name, kube.status_interval or 1.0)
        self.reporter = ConditionReporter(api, lambda: rfc3339(time.time()))
        # One speaker, elected by a Lease, watches every Node and writes objects' conditions.
        self.elector = LeaseElector(
            api,
            kube.secret_namespace,
            f"{kube.node_name}_{secrets.token_hex(4)}",
            self._leading,
            poll=kube.lease_poll,
        )
        self.builder = NodeStatusBuilder(kube.node_name)
        self._tasks: list[asyncio.Task[None]] = []

    def mark_dirty(self) -> None:
        """Thread-safe: something the configuration depends on changed."""
        self._loop.call_soon_threadsafe(self._dirty.set)

    def start(self) -> None:
        """Start the informers."""
        self.watch.start()

    async def wait_synced(self, timeout: float = SYNC_WAIT) -> bool:
        """Wait (bounded) for the resource informers' first lists."""
        deadline = self._loop.time() + timeout
        while not self.watch.synced and self._loop.time() < deadline:
            await asyncio.sleep(0.05)
        if not self.watch.synced:
            log.warning("custom resources not listed within %.0f s; starting on the file alone", timeout)
        return self.watch.synced

    def refresh(self, node: NodeView) -> Resolved:
        """Resolve now for ``node`` (pure), follow the Secrets, log what changed, report conditions."""
        self.node = node
        res = resolve(
            self.watch.resources(),
            self.watch.secrets(),
            node,
            self.last_good,
            secret_namespace=self.kube.secret_namespace,
            honour_exclude_label=self.kube.policy.honour_exclude_label,
        )
        self.watch.track(res.secret_refs)
        self.last_good, self.resolved = res.last_good, res
        for problem in sorted(set(res.problems) - set(self._problems)):
            log.warning("node %s: %s", node.name, problem)
        self._problems = res.problems
        if self.watch.synced and self.kube.status_interval > 0:
            # Conditions need every Node's labels: only the elected speaker has them, once listed.
            ours = self.elector.leading and self.watch.all_nodes_synced
            self.reporter.offer(res.conditions if ours else {}, self.watch.current)
        return res

    def _leading(self, leading: bool) -> None:
        self.watch.watch_all_nodes(leading)
        self.mark_dirty()

    async def run(self, speaker: Callable[[], Speaker | None], debounce: float) -> None:
        """Resolve on every change (debounced) and write status, until cancelled."""
        if self.kube.status_interval > 0:
            self._tasks = [
                asyncio.create_task(self.elector.run()),
                asyncio.create_task(self.writer.run()),
                asyncio.create_task(self.reporter.run()),
                asyncio.create_task(self._status_loop(speaker)),
            ]
        try:
            while True:
                await self._dirty.wait()
                await asyncio.sleep(debounce)
                self._dirty.clear()
                if self.node is None or not self.watch.synced:
                    continue
                try:
                    self._on_resolved(self.refresh(self.node))
                except Exception:
                    log.exception("applying custom resources failed; the running configuration stays")
        finally:
            for t in self._tasks:
                t.cancel()

    def status(self, speaker: Speaker) -> dict[str, Any]:
        """This node's BGPNodeStatus ``status`` now."""
        st = speaker.status(family_of)
        sources = {p.label: f"BGPPeer/{p.label}" for p in (self.resolved.peers if self.resolved else ())}
        return self.builder.build(
            st.router_id,
            local_as=st.local_as,
            peers=st.peers,
            sources=sources,
            problems=self._problems,
            now=time.time(),
        )

    async def _status_loop(self, speaker: Callable[[], Speaker | None]) -> None:
        while True:
            sp = speaker()
            if sp is not None:
                try:
                    self.writer.offer(self.status(sp))
                except Exception:
                    log.exception("node status not built")  # a bug: say so, keep the loop
            await asyncio.sleep(STATUS_POLL)

    async def release(self) -> None:
        """Give the Lease up, if held, so that another speaker takes the cluster-wide work at once."""
        for t in self._tasks:
            t.cancel()
        await self.elector.release()

    def stop(self) -> None:
        """Stop the informers and the status tasks."""
        for t in self._tasks:
            t.cancel()
        self.watch.stop()
