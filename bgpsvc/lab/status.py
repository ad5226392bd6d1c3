"""``metav1.Status`` failures as kube-apiserver returns them (apimachinery ``api/errors``), and the
exception that carries one to the HTTP layer."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bgpsvc.lab.store import JSON, Resource


def status(code: int, reason: str, message: str, **extra: Any) -> JSON:
    """A ``metav1.Status`` failure, as the API server returns it."""
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        **extra,
        "code": code,
    }


class HTTPError(Exception):
    """A request the server answers with a Status."""

    def __init__(self, body: JSON, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(body.get("message"))
        self.body = body
        self.headers = dict(headers or {})


def _qualified(res: Resource) -> str:
    return f"{res.plural}.{res.group}" if res.group else res.plural


def _details(res: Resource, name: str) -> JSON:
    return {"name": name, "group": res.group, "kind": res.plural}


def bad_request(message: str) -> HTTPError:
    """400 BadRequest."""
    return HTTPError(status(400, "BadRequest", message))


def not_found(res: Resource, name: str) -> HTTPError:
    """404 NotFound for one object (``errors.NewNotFound``)."""
    return HTTPError(
        status(404, "NotFound", f'{_qualified(res)} "{name}" not found', details=_details(res, name))
    )


def no_route() -> HTTPError:
    """404 for a URL that names no resource."""
    return HTTPError(status(404, "NotFound", "the server could not find the requested resource", details={}))


def already_exists(res: Resource, name: str) -> HTTPError:
    """409 AlreadyExists (``errors.NewAlreadyExists``)."""
    msg = f'{_qualified(res)} "{name}" already exists'
    return HTTPError(status(409, "AlreadyExists", msg, details=_details(res, name)))


def conflict(res: Resource, name: str, why: str) -> HTTPError:
    """409 Conflict (``errors.NewConflict``), e.g. a stale resourceVersion."""
    msg = f'Operation cannot be fulfilled on {_qualified(res)} "{name}": {why}'
    return HTTPError(status(409, "Conflict", msg, details=_details(res, name)))


STALE = "the object has been modified; please apply your changes to the latest version and try again"


def not_allowed() -> HTTPError:
    """405 MethodNotAllowed."""
    msg = "the server does not allow this method on the requested resource"
    return HTTPError(status(405, "MethodNotAllowed", msg))


def unsupported_media(content_type: str, supported: tuple[str, ...]) -> HTTPError:
    """415 UnsupportedMediaType, as for a strategic merge patch of a custom resource."""
    msg = "the body of the request was in an unknown format - accepted media types include: " + ", ".join(
        supported
    )
    return HTTPError(
        status(415, "UnsupportedMediaType", msg, details={"causes": [{"message": content_type}]})
    )


def invalid_list_options(message: str) -> HTTPError:
    """422 for bad list/watch options (``ListOptions.meta.k8s.io "" is invalid``)."""
    return HTTPError(
        status(
            422,
            "Invalid",
            f'ListOptions.meta.k8s.io "" is invalid: {message}',
            details={"group": "meta.k8s.io", "kind": "ListOptions"},
        )
    )
