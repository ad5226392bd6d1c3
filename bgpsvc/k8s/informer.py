"""Informers for the kinds bgpsvc reads, on the official client: one factory per kind, same arguments.

``service_informer``, ``endpointslice_informer`` and ``node_informer`` each build a
``ClientListerWatcher`` (selectors, request timeouts) and an ``Informer`` (the loop, see
``bgpsvc.k8s.reflector``) from one set of keyword arguments, ``InformerOptions``.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any, TypedDict, TypeVar, Unpack

from kubernetes import client as k8s_client

from .customlw import CustomObjectListerWatcher
from .listwatch import CONNECT_TIMEOUT, LIST_TIMEOUT, ClientListerWatcher, ListerWatcher, load_api_client
from .reflector import (
    BACKOFF_BASE,
    BACKOFF_MAX,
    ENDPOINTSLICE_PAGE_SIZE,
    HEALTHY_WATCH,
    PAGE_SIZE,
    WATCH_TIMEOUT,
    Converter,
    Informer,
)
from .views import (
    EndpointSliceView,
    NodeView,
    ServiceView,
    endpointslice_from_dict,
    node_from_dict,
    service_from_dict,
)

V = TypeVar("V")

__all__ = [
    "Converter",
    "Informer",
    "InformerOptions",
    "custom_object_informer",
    "endpointslice_informer",
    "load_api_client",
    "node_informer",
    "secret_informer",
    "service_informer",
]


class InformerOptions(TypedDict, total=False):
    """Keyword arguments every factory takes: the request's (selectors, timeouts) and the informer's."""

    on_change: Callable[[], None] | None
    field_selector: str | None
    label_selector: str | None
    connect_timeout: float
    list_timeout: float
    page_size: int
    watch_timeout: float
    backoff_base: float
    backoff_max: float
    healthy_watch: float
    rng: random.Random | None


def _request_options(options: InformerOptions) -> dict[str, Any]:
    return {
        "field_selector": options.get("field_selector"),
        "label_selector": options.get("label_selector"),
        "connect_timeout": options.get("connect_timeout", CONNECT_TIMEOUT),
        "list_timeout": options.get("list_timeout", LIST_TIMEOUT),
    }


def _informer(
    api_client: k8s_client.ApiClient,
    resource: str,
    converter: Converter[V],
    options: InformerOptions,
    lw: ListerWatcher | None = None,
) -> Informer[V]:
    if lw is None:
        lw = ClientListerWatcher(api_client, resource, **_request_options(options))
    return Informer(
        lw,
        converter,
        on_change=options.get("on_change"),
        page_size=options.get("page_size", PAGE_SIZE),
        watch_timeout=options.get("watch_timeout", WATCH_TIMEOUT),
        backoff_base=options.get("backoff_base", BACKOFF_BASE),
        backoff_max=options.get("backoff_max", BACKOFF_MAX),
        healthy_watch=options.get("healthy_watch", HEALTHY_WATCH),
        rng=options.get("rng"),
    )


def service_informer(
    api_client: k8s_client.ApiClient,
    *,
    converter: Converter[ServiceView] = service_from_dict,
    **options: Unpack[InformerOptions],
) -> Informer[ServiceView]:
    """An informer over v1 Services (all namespaces)."""
    return _informer(api_client, "services", converter, options)


def endpointslice_informer(
    api_client: k8s_client.ApiClient,
    *,
    converter: Converter[EndpointSliceView] = endpointslice_from_dict,
    **options: Unpack[InformerOptions],
) -> Informer[EndpointSliceView]:
    """An informer over discovery.k8s.io/v1 EndpointSlices (all namespaces), in smaller list pages."""
    options.setdefault("page_size", ENDPOINTSLICE_PAGE_SIZE)
    return _informer(api_client, "endpointslices", converter, options)


def node_informer(
    api_client: k8s_client.ApiClient,
    *,
    converter: Converter[NodeView] = node_from_dict,
    **options: Unpack[InformerOptions],
) -> Informer[NodeView]:
    """An informer over v1 Nodes; ``field_selector="metadata.name=<node>"`` watches one node."""
    return _informer(api_client, "nodes", converter, options)


def custom_object_informer(
    api_client: k8s_client.ApiClient,
    group: str,
    version: str,
    plural: str,
    *,
    converter: Converter[V],
    namespace: str | None = None,
    **options: Unpack[InformerOptions],
) -> Informer[V]:
    """An informer over one custom resource (cluster-scoped unless ``namespace``); an absent CRD is an
    empty collection (``CustomObjectListerWatcher``)."""
    lw = CustomObjectListerWatcher(
        api_client, group, version, plural, namespace=namespace, **_request_options(options)
    )
    return _informer(api_client, lw.resource, converter, options, lw)


def secret_informer(
    api_client: k8s_client.ApiClient,
    namespace: str,
    name: str,
    *,
    converter: Converter[V],
    **options: Unpack[InformerOptions],
) -> Informer[V]:
    """An informer over one Secret: ``metadata.name`` field selector in one namespace, which is what an
    RBAC rule with ``resourceNames`` allows for list and watch."""
    options = {**options, "field_selector": f"metadata.name={name}"}
    lw = ClientListerWatcher(api_client, "secrets", namespace=namespace, **_request_options(options))
    return _informer(api_client, "secrets", converter, options, lw)
