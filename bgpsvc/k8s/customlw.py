"""A ``ListerWatcher`` for custom resources, generic over group, version and plural (``CustomObjectsApi``).

Everything but the call is ``ClientListerWatcher``'s (raw JSON, timeouts, ``close`` from any thread). One
thing differs: a CustomResourceDefinition that is not installed (yet) is not a failure to back off on.
The list answers 404; that is an empty collection here, so the informer syncs with nothing in it and a
node speaker without bgpsvc's CRDs runs on its file alone. Its watch then waits ``ABSENT_RECHECK`` seconds
and asks again whether the resource is served; once it is, the watch raises ``Expired`` and the informer
lists the new resource at once.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Iterator
from typing import Any

from kubernetes import client as k8s_client

from .listwatch import ApiError, ClientListerWatcher, Event, Expired, Page, WatchStream

log = logging.getLogger(__name__)

#: Seconds between checks whether an absent CRD has been installed: installing bgpsvc's CRDs after the
#: DaemonSet is a rare operator step, and a minute keeps 1,000 nodes without the CRDs at 50 cheap 404s/s
#: for the three kinds (``kubernetes.custom_resources: false`` turns the informers off altogether).
ABSENT_RECHECK = 60.0


class _Idle:
    """A watch on an absent resource: no events; ends after ``seconds`` or when its owner closes."""

    def __init__(self, closed: threading.Event, seconds: float) -> None:
        self._closed = closed
        self._seconds = seconds

    def __iter__(self) -> Iterator[Event]:
        return self

    def __next__(self) -> Event:
        self._closed.wait(self._seconds)
        raise StopIteration

    def close(self) -> None:
        """Nothing to release."""


class CustomObjectListerWatcher(ClientListerWatcher):
    """List and watch one custom resource (cluster-scoped, or one namespace) through ``CustomObjectsApi``."""

    def __init__(
        self,
        api_client: k8s_client.ApiClient,
        group: str,
        version: str,
        plural: str,
        *,
        namespace: str | None = None,
        absent_recheck: float = ABSENT_RECHECK,
        **kwargs: Any,
    ) -> None:
        api = k8s_client.CustomObjectsApi(api_client)
        call = (
            functools.partial(api.list_cluster_custom_object, group, version, plural)
            if namespace is None
            else functools.partial(api.list_namespaced_custom_object, group, version, namespace, plural)
        )
        super().__init__(api_client, f"{plural}.{group}", call=call, **kwargs)
        self.absent_recheck = absent_recheck
        #: The last list found the resource not served (its CRD is not installed).
        self.absent = False

    def list(self, limit: int, continue_token: str | None) -> Page:
        """One page; a resource that is not served lists as empty."""
        try:
            page = super().list(limit, continue_token)
        except ApiError as e:
            if e.status != 404:
                raise
            if not self.absent:
                log.info("%s: not served (CRD not installed); treated as empty", self.resource)
            self.absent = True
            return Page((), None)
        self.absent = False
        return page

    def watch(self, resource_version: str | None, timeout: int) -> WatchStream:
        """The watch; on an absent resource first ask whether it is served now (``Expired``: list it)."""
        if not self.absent:
            return super().watch(resource_version, timeout)
        try:
            super().list(1, None)
        except ApiError as e:
            if e.status == 404:
                return _Idle(self._closed, min(float(timeout), self.absent_recheck))
            raise
        log.info("%s: now served; listing it", self.resource)
        raise Expired(f"{self.resource} is served now")
