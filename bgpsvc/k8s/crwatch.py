"""Informers for bgpsvc's custom resources, every Node's labels (on the elected speaker only) and the
Secrets the peers reference.

``ResourceWatch`` owns them and hands out frozen snapshots for ``resolve``: ``resources()`` and
``secrets()``. The Secret informers follow the references (``track``): one per referenced Secret, with a
``metadata.name`` field selector, in bgpsvc's own namespace, so RBAC can grant exactly those Secrets
(``resourceNames``) and nothing else. A Secret whose informer has not listed yet is "not known", which
``resolve`` tells apart from "missing". ``on_change`` is called from informer threads, as the other
informers do.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from kubernetes import client as k8s_client

from .advertise import advertisement_from_dict
from .informer import Informer, custom_object_informer, node_informer, secret_informer
from .resolve import Resources, Secrets
from .resources import (
    ADVERTISEMENTS,
    GROUP,
    NODE_CONFIGS,
    PEERS,
    VERSION,
    SecretView,
    node_config_from_dict,
    peer_from_dict,
    secret_from_dict,
)
from .statuswriter import Current
from .views import Key

log = logging.getLogger("bgpsvc.k8s")

#: The all-Nodes informer's name in ``ResourceWatch.informers`` (present only while it runs).
ALL_NODES = "allnodes"

_CONVERTERS: dict[str, Callable[[Mapping[str, Any]], Any]] = {
    PEERS: peer_from_dict,
    ADVERTISEMENTS: advertisement_from_dict,
    NODE_CONFIGS: node_config_from_dict,
}


class ResourceWatch:
    """The informers behind ``resolve``'s inputs."""

    def __init__(
        self,
        api_client: k8s_client.ApiClient,
        *,
        secret_namespace: str,
        on_change: Callable[[], None],
    ) -> None:
        self._api = api_client
        self.secret_namespace = secret_namespace
        self._on_change = on_change
        self.informers: dict[str, Informer[Any]] = {
            plural: custom_object_informer(
                api_client, GROUP, VERSION, plural, converter=conv, on_change=on_change
            )
            for plural, conv in _CONVERTERS.items()
        }
        self.secret_informers: dict[Key, Informer[SecretView]] = {}
        self._started = False

    def watch_all_nodes(self, on: bool) -> None:
        """Start or stop the informer over every Node's labels (whether a node selector matches any node
        at all: ``NoMatchingNode``). Only the speaker that writes conditions runs it (``LeaseElector``): each
        Node update goes to every watcher, so N speakers watching N nodes cost the API server O(N^2)."""
        running = ALL_NODES in self.informers
        if on and not running:
            inf = node_informer(self._api, on_change=self._on_change)
            self.informers[ALL_NODES] = inf
            if self._started:
                inf.start()
        elif not on and running:
            # Cut its request and let the thread end on its own: called on the event loop, no join.
            self.informers.pop(ALL_NODES).stop(timeout=0.0)
            self._on_change()

    @property
    def all_nodes_synced(self) -> bool:
        """The all-Nodes informer runs and has listed."""
        inf = self.informers.get(ALL_NODES)
        return inf is not None and inf.synced

    def start(self) -> None:
        """Start the resource informers (Secrets start as they are referenced)."""
        self._started = True
        for inf in self.informers.values():
            inf.start()

    def stop(self) -> None:
        """Stop every informer (each cut at once; bounded)."""
        self._started = False
        for inf in [*self.informers.values(), *self.secret_informers.values()]:
            inf.stop(timeout=2.0)

    @property
    def synced(self) -> bool:
        """Every resource informer has listed once (an absent CRD lists as empty)."""
        return all(i.synced for name, i in self.informers.items() if name != ALL_NODES)

    def track(self, refs: frozenset[Key]) -> None:
        """Watch exactly the Secrets in ``refs``: start informers for new ones, stop the others."""
        for key in refs - self.secret_informers.keys():
            inf = secret_informer(
                self._api, key[0], key[1], converter=secret_from_dict, on_change=self._on_change
            )
            self.secret_informers[key] = inf
            if self._started:
                inf.start()
            log.info("watching Secret %s/%s (a BGPPeer's password)", *key)
        for key in self.secret_informers.keys() - refs:
            self.secret_informers.pop(key).stop(timeout=2.0)
            log.info("no longer watching Secret %s/%s", *key)

    def resources(self) -> Resources:
        """The current snapshots."""
        return Resources(
            peers=self.informers[PEERS].snapshot(),
            advertisements=self.informers[ADVERTISEMENTS].snapshot(),
            node_configs=self.informers[NODE_CONFIGS].snapshot(),
            nodes=self.informers[ALL_NODES].snapshot() if ALL_NODES in self.informers else {},
        )

    def secrets(self) -> Secrets:
        """The referenced Secrets found, and which have been listed."""
        items: dict[Key, SecretView] = {}
        listed = set()
        for key, inf in self.secret_informers.items():
            if inf.synced:
                listed.add(key)
                found = inf.snapshot().get(key)
                if found is not None:
                    items[key] = found
        return Secrets(items, frozenset(listed))

    def current(self, ref: tuple[str, str]) -> Current | None:
        """An object's generation and status as last seen (None: not there)."""
        plural, name = ref
        inf = self.informers.get(plural)
        view = inf.snapshot().get(("", name)) if inf is not None else None
        return None if view is None else Current(view.generation, view.status)
