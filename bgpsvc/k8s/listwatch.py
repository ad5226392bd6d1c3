"""The seam between an informer and the API server: list a page, open a watch (client-go ``ListerWatcher``).

``ListerWatcher`` is all the informer knows of the API, so its tests can feed it pages, events, 410s and
broken streams without HTTP. ``ClientListerWatcher`` is the one implementation, on the official
``kubernetes`` client: responses are read raw and parsed with ``json``, so the client's model classes are
never built (at 100k objects they cost more than everything else). Requests go through the client's
``ApiClient`` (configuration, authentication, TLS, proxies, retries: ``param_serialize`` + ``call_api``,
what every generated function calls) on the kind's REST path, not through the generated ``CoreV1Api``:
importing that module builds some 250 pydantic model classes for every core kind, about 20 MB of a
node speaker's resident memory for functions that only format a URL.

Contract: ``list`` returns one ``Page`` or raises (``Expired`` for a 410 on a continue token,
``ApiError`` for another error status, anything else for a connection failure);
``watch`` has opened the stream when it returns (``Expired`` if the version left the history) and yields
the decoded watch events; any exception out of the iterator is a broken stream. ``close`` may be
called from another thread: it cuts the request in flight and refuses new ones.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
import urllib.parse
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from kubernetes import client as k8s_client
from kubernetes import config as k8s_config
from kubernetes.client.exceptions import ApiException

#: Seconds to wait for the TCP/TLS connection: a reachable API server answers in well under a second;
#: ten covers a loaded control plane without leaving an informer stuck on a dead address.
CONNECT_TIMEOUT = 10.0
#: Seconds to read one list page: a 500-object page is a few hundred kB, but a busy API server may take
#: a while to serve it from etcd; a minute is what kubectl tolerates by default for a slow list.
LIST_TIMEOUT = 60.0
#: Read timeout slack beyond the watch's own ``timeoutSeconds``: the server ends the stream itself at
#: that deadline, so the client-side timeout only catches a silently dead connection (no FIN, no RST).
WATCH_READ_SLACK = 30.0

Event = Mapping[str, Any]


class Expired(Exception):
    """410 Gone: the requested version (or continue token) left the server's history."""


class ApiError(Exception):
    """The API server answered with an error status other than 410."""

    def __init__(self, status: int | None, reason: str | None) -> None:
        super().__init__(f"HTTP {status} {reason or ''}".strip())
        self.status = status


@dataclass(frozen=True, slots=True)
class Page:
    """One list response: raw objects, the list's resourceVersion and the token for the next page."""

    items: tuple[Mapping[str, Any], ...]
    resource_version: str | None
    continue_token: str | None = None


class WatchStream(Protocol):
    """An open watch: its events as they arrive; ``close`` releases the connection (a generator fits)."""

    def __iter__(self) -> Iterator[Event]: ...

    def __next__(self) -> Event: ...

    def close(self) -> None: ...


class ListerWatcher(Protocol):
    """What an informer needs from the API server for one kind (client-go ``cache.ListerWatcher``)."""

    @property
    def resource(self) -> str:
        """The kind's plural name, for logs."""
        ...

    def list(self, limit: int, continue_token: str | None) -> Page:
        """One page of at most ``limit`` objects (0: no limit), continuing ``continue_token``."""
        ...

    def watch(self, resource_version: str | None, timeout: int) -> WatchStream:
        """Open a watch from ``resource_version`` that the server ends after ``timeout`` seconds."""
        ...

    def close(self) -> None:
        """Cut the request in flight (from any thread) and refuse new ones."""
        ...


def load_api_client(kubeconfig: str | None = None) -> k8s_client.ApiClient:
    """An ``ApiClient``: in-cluster (service account) in a pod without a kubeconfig, else the kubeconfig.

    ``kubeconfig=None`` outside a pod means the client's default (``$KUBECONFIG``, ``~/.kube/config``).
    """
    cfg = k8s_client.Configuration()
    if kubeconfig is None and os.environ.get("KUBERNETES_SERVICE_HOST"):
        k8s_config.load_incluster_config(client_configuration=cfg)  # refreshes the bound token itself
    else:
        k8s_config.load_kube_config(config_file=kubeconfig, client_configuration=cfg)
    return k8s_client.ApiClient(configuration=cfg)


#: resource -> its all-namespaces or cluster-scoped collection path (the API reference's list paths).
KINDS: dict[str, str] = {
    "services": "/api/v1/services",
    "endpointslices": "/apis/discovery.k8s.io/v1/endpointslices",
    "nodes": "/api/v1/nodes",
}
#: resource -> its path in one namespace: kinds read in one namespace only (Secrets: the RBAC Role grants
#: bgpsvc its own namespace's referenced Secrets, never the cluster's).
NAMESPACED_KINDS: dict[str, str] = {"secrets": "/api/v1/namespaces/{namespace}/secrets"}
#: Query parameter names, as the generated list functions send them (their keyword -> the API's name).
_QUERY = {
    "field_selector": "fieldSelector",
    "label_selector": "labelSelector",
    "limit": "limit",
    "_continue": "continue",
    "watch": "watch",
    "allow_watch_bookmarks": "allowWatchBookmarks",
    "resource_version": "resourceVersion",
    "timeout_seconds": "timeoutSeconds",
}


def rest_list_call(api_client: k8s_client.ApiClient, path: str) -> Callable[..., Any]:
    """A list function on ``path`` with the generated functions' keywords and ``_preload_content=False``
    behaviour: the raw urllib3 response, ``ApiException`` for a status outside 2xx."""

    def call(*, _request_timeout: Any = None, _preload_content: bool = False, **kwargs: Any) -> Any:
        query = [(_QUERY[k], v) for k, v in kwargs.items() if v is not None]
        request = api_client.param_serialize(
            method="GET",
            resource_path=path,
            query_params=query,
            header_params={"Accept": "application/json"},
            auth_settings=["BearerToken"],
        )
        resp = api_client.call_api(*request, _request_timeout=_request_timeout)
        if not 200 <= resp.status <= 299:
            resp.read()
            raise ApiException.from_response(http_resp=resp, body=None, data=None)
        return resp.response

    return call


def iter_lines(resp: Any) -> Iterator[bytes]:
    """Non-empty lines of a (chunked) urllib3 response body, as they arrive."""
    buf = bytearray()
    for chunk in resp.stream(amt=None, decode_content=False):
        buf.extend(chunk)
        start = 0
        while (nl := buf.find(b"\n", start)) >= 0:
            if nl > start:
                yield bytes(buf[start:nl])
            start = nl + 1
        del buf[:start]
    if buf.strip():
        yield bytes(buf)


class _ResponseStream:
    """A watch response as a ``WatchStream``; ``close`` releases it even if it was never read."""

    def __init__(self, owner: ClientListerWatcher, resp: Any) -> None:
        self._owner = owner
        self._resp = resp
        self._lines = iter_lines(resp)

    def __iter__(self) -> Iterator[Event]:
        return self

    def __next__(self) -> Event:
        event: Event = json.loads(next(self._lines))
        return event

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._resp.close()
        self._owner._release(self._resp)


class ClientListerWatcher:
    """``ListerWatcher`` on the official client's generated list functions (``watch=True`` for a watch)."""

    def __init__(
        self,
        api_client: k8s_client.ApiClient,
        resource: str,
        *,
        field_selector: str | None = None,
        label_selector: str | None = None,
        connect_timeout: float = CONNECT_TIMEOUT,
        list_timeout: float = LIST_TIMEOUT,
        namespace: str | None = None,
        call: Callable[..., Any] | None = None,
    ) -> None:
        """``namespace``: list one namespace (``NAMESPACED_KINDS``); ``call``: a list function of its own
        (custom resources), ``resource`` then only names it in logs."""
        self._resource = resource
        if call is not None:
            self._call = call
        elif namespace is not None and resource in NAMESPACED_KINDS:
            path = NAMESPACED_KINDS[resource].format(namespace=urllib.parse.quote(namespace, safe=""))
            self._call = rest_list_call(api_client, path)
        elif namespace is None and resource in KINDS:
            self._call = rest_list_call(api_client, KINDS[resource])
        else:
            known = ", ".join([*KINDS, *(f"{k} (with a namespace)" for k in NAMESPACED_KINDS)])
            raise ValueError(f"unsupported resource {resource!r} (one of {known})")
        self._selectors = {
            k: v for k, v in (("field_selector", field_selector), ("label_selector", label_selector)) if v
        }
        self.connect_timeout = connect_timeout
        self.list_timeout = list_timeout
        self._closed = threading.Event()
        self._resp: Any = None

    @property
    def resource(self) -> str:
        """The kind's plural name."""
        return self._resource

    def list(self, limit: int, continue_token: str | None) -> Page:
        """One page, parsed from the raw body."""
        kwargs: dict[str, Any] = {"limit": limit} if limit else {}
        if continue_token:
            kwargs["_continue"] = continue_token
        resp = self._request(
            (self.connect_timeout, self.list_timeout),
            f"HTTP 410 for a continue token of {self._resource}",
            **kwargs,
        )
        try:
            body = json.loads(resp.data)
        finally:
            self._release(resp)
        meta = body.get("metadata") or {}
        return Page(
            items=tuple(body.get("items") or ()),
            resource_version=str(meta.get("resourceVersion") or "") or None,
            continue_token=meta.get("continue") or None,
        )

    def watch(self, resource_version: str | None, timeout: int) -> WatchStream:
        """Open the stream now (so a 410 raises here); its events are decoded as they arrive."""
        resp = self._request(
            (self.connect_timeout, timeout + WATCH_READ_SLACK),
            f"HTTP 410 for resourceVersion {resource_version}",
            watch=True,
            allow_watch_bookmarks=True,
            resource_version=resource_version,
            timeout_seconds=timeout,
        )
        return _ResponseStream(self, resp)

    def close(self) -> None:
        """Refuse new requests and cut the one in flight, so a blocked read returns at once."""
        self._closed.set()
        resp = self._resp
        if resp is None:
            return
        try:
            resp.shutdown()  # urllib3 >= 2.3: unblocks a read in another thread
        except Exception:
            sock = getattr(getattr(resp, "connection", None), "sock", None)
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    def _request(self, timeout: tuple[float, float], gone: str, **kwargs: Any) -> Any:
        if self._closed.is_set():
            raise InterruptedError("closed")
        try:
            resp = self._call(_preload_content=False, _request_timeout=timeout, **self._selectors, **kwargs)
        except ApiException as e:
            if e.status == 410:
                raise Expired(gone) from e
            raise ApiError(e.status, e.reason) from e
        self._resp = resp
        if self._closed.is_set():  # close() ran between the call and publishing resp
            self.close()
        return resp

    def _release(self, resp: Any) -> None:
        self._resp = None
        with contextlib.suppress(Exception):
            resp.release_conn()
