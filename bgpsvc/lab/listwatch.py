"""List and watch, as kube-apiserver serves them (see the ``bgpsvc.lab.apiserver`` module docstring for
the semantics): consistent paginated lists from the store's history, resourceVersion/resourceVersionMatch,
and chunked watch streams with bookmarks and 410 Gone. A mixin of ``ApiServer``; subclasses may override
``_list`` (the e2e lab delays it)."""

from __future__ import annotations

import base64
import binascii
import bisect
import json
import random
import socket
import threading
import time
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler

from bgpsvc.lab.selectors import fields_match, labels_match, parse_field_selector, parse_label_selector
from bgpsvc.lab.status import HTTPError, bad_request, invalid_list_options, status
from bgpsvc.lab.store import JSON, Event, Expired, ObjectStore, Resource, as_version, with_rv

_TRUE = frozenset({"1", "t", "T", "true", "TRUE", "True"})  # Go's strconv.ParseBool
INITIAL_EVENTS_END = "k8s.io/initial-events-end"
CONTINUE_VERSION = "meta.k8s.io/v1"
MSG_LIST_EXPIRED = "The resourceVersion for the provided list is too old."

CONTINUE_VERSION = "meta.k8s.io/v1"
MSG_LIST_EXPIRED = "The resourceVersion for the provided list is too old."
MSG_INCONSISTENT_CONTINUE = (
    "The provided continue parameter is too old to display a consistent list result. You can start a new "
    "list without the continue parameter, or use the continue token in this response to retrieve the "
    "remainder of the results. Continuing with the provided token results in an inconsistent list - objects "
    "that were created, modified, or deleted between the time the first chunk was returned and now may show "
    "up in the list."
)
PRE_TIMEOUT_BOOKMARK = 2.0  # seconds before the watch deadline (cacher nextBookmarkTime)


def encode_continue(key: str, rv: int) -> str:
    """Upstream continue token: base64url (no padding) of ``{"v","rv","start"}``."""
    raw = json.dumps({"v": CONTINUE_VERSION, "rv": rv, "start": key}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).rstrip(b"=").decode()


def decode_continue(token: str) -> tuple[str, int]:
    """(start key, resourceVersion) of a continue token; raises ``HTTPError`` 400 when malformed."""
    try:
        data = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        if not isinstance(data, dict) or data.get("v") != CONTINUE_VERSION:
            raise ValueError("incorrect encoded start resourceVersion (version meta.k8s.io/v1)")
        rv, start = data.get("rv"), data.get("start")
        if not isinstance(rv, int) or rv == 0 or not isinstance(start, str):
            raise ValueError("incorrect encoded start resourceVersion (version meta.k8s.io/v1)")
    except (ValueError, binascii.Error) as e:
        raise bad_request(f"continue key is not valid: {e}") from None
    return start, rv


def _parse_rv(text: str) -> int:
    try:
        rv = int(text)
    except ValueError:
        raise bad_request(f"invalid resource version {text!r}") from None
    if rv < 0:
        raise bad_request(f"invalid resource version {text!r}")
    return rv


def _list_item(obj: JSON, res: Resource) -> JSON:
    if res.custom:  # unstructured lists keep each item's TypeMeta
        return as_version(obj, res)
    return {k: v for k, v in obj.items() if k not in ("kind", "apiVersion")}


def _obj_bytes(ev: Event, res: Resource) -> bytes:
    cached = ev._json.get(res.api_version)
    if cached is None:
        obj = as_version(ev.obj, res)
        cached = ev._json[res.api_version] = json.dumps(obj, separators=(",", ":")).encode()
    return cached


def _dumps(obj: JSON) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def _event_line(kind: str, obj_json: bytes) -> bytes:
    return b'{"type":"%s","object":%s}\n' % (kind.encode(), obj_json)


class Watcher:
    """One open watch connection, so ``drop_watches``/``pause`` can cut it."""

    def __init__(self, sock: socket.socket, bookmarks: bool) -> None:
        self.sock = sock
        self.bookmarks = bookmarks
        self.aborted = False


class ListWatch:
    """List and watch handlers; the state they use is ``ApiServer``'s."""

    store: ObjectStore
    bookmark_interval: float
    watch_timeout: float
    _rng: random.Random
    _watchers: set[Watcher]
    _bookmark_gen: int
    _paused: bool
    _stopped: bool
    _lock: threading.Lock

    # -- list -----------------------------------------------------------------------------------------

    def _list(self, res: Resource, ns: str | None, q: Mapping[str, str]) -> JSON:
        labels = parse_label_selector(q.get("labelSelector"))
        fields = parse_field_selector(q.get("fieldSelector"), res.plural)
        try:
            limit = max(0, int(q.get("limit") or 0))
        except ValueError:
            raise bad_request(f"invalid limit {q.get('limit')!r}") from None
        token, rv_text = q.get("continue") or "", q.get("resourceVersion") or ""
        match = q.get("resourceVersionMatch")
        if match:
            if match not in ("NotOlderThan", "Exact"):
                raise invalid_list_options(
                    f'resourceVersionMatch: Unsupported value: "{match}": supported values: '
                    '"Exact", "NotOlderThan", ""'
                )
            if not rv_text:
                raise invalid_list_options(
                    "resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden unless "
                    "resourceVersion is provided"
                )
            if token:
                raise invalid_list_options(
                    "resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden when "
                    "continue is provided"
                )
            if match == "Exact" and rv_text == "0":
                raise invalid_list_options(
                    'resourceVersionMatch: Forbidden: resourceVersionMatch "exact" is forbidden '
                    'for resourceVersion "0"'
                )
        start, snap = self._list_snapshot(limit, token, rv_text, match)
        try:
            keys, objs = self.store.sorted_at(res, snap)
        except Expired:
            raise HTTPError(status(410, "Expired", MSG_LIST_EXPIRED)) from None
        lo, hi = 0, len(keys)
        if ns is not None:
            lo, hi = bisect.bisect_left(keys, ns + "/"), bisect.bisect_left(keys, ns + "0")  # "0" follows "/"
        if start:
            lo = max(lo, bisect.bisect_left(keys, start))
        items: list[JSON] = []
        i = lo
        while i < hi and (not limit or len(items) < limit):
            obj = objs[i]
            if (not labels or labels_match(labels, obj["metadata"].get("labels") or {})) and (
                not fields or fields_match(fields, obj)
            ):
                items.append(_list_item(obj, res))
            i += 1
        meta: JSON = {"resourceVersion": str(snap)}
        if limit and i < hi:
            meta["continue"] = encode_continue(keys[i - 1] + "\x00", snap)
            if not labels and not fields:
                meta["remainingItemCount"] = hi - i
        return {"kind": res.list_kind, "apiVersion": res.api_version, "metadata": meta, "items": items}

    def _list_snapshot(self, limit: int, token: str, rv_text: str, match: str | None) -> tuple[str, int]:
        """(start key, resourceVersion) a list is served at, per the continue token and resourceVersion."""
        start = ""
        with self.store.cond:
            current, oldest = self.store.rv, self.store.oldest_rv
        if token:
            if rv_text not in ("", "0"):
                raise bad_request("specifying resource version is not allowed when using continue")
            start, snap = decode_continue(token)
            if snap == -1:  # an inconsistent-continue token handed out with a 410: latest state
                snap = current
            elif snap < oldest:
                raise HTTPError(
                    status(
                        410,
                        "Expired",
                        MSG_INCONSISTENT_CONTINUE,
                        metadata={"continue": encode_continue(start, -1)},
                    )
                )
        elif rv_text in ("", "0"):
            snap = current  # "Most Recent" and "Any" are the same thing for a single in-memory store
        else:
            want = _parse_rv(rv_text)
            exact = match == "Exact" or (limit > 0 and not match)
            if want > current:
                current = self._wait_for_rv(want)
            if exact:
                if want < oldest:
                    raise HTTPError(status(410, "Expired", MSG_LIST_EXPIRED))
                snap = want
            else:
                snap = current
        return start, snap

    def _wait_for_rv(self, want: int, timeout: float = 3.0) -> int:
        """Wait briefly for a future resourceVersion, as upstream does, then 504 ``Too large``."""
        with self.store.cond:
            if not self.store.cond.wait_for(lambda: self.store.rv >= want, timeout):
                causes = [{"reason": "ResourceVersionTooLarge", "message": "Too large resource version"}]
                body = status(
                    504,
                    "Timeout",
                    f"Too large resource version: {want}, current: {self.store.rv}",
                    details={"causes": causes, "retryAfterSeconds": 1},
                )
                raise HTTPError(body, {"Retry-After": "1"})
            return self.store.rv

    # -- watch ----------------------------------------------------------------------------------------

    def _watch(
        self, h: BaseHTTPRequestHandler, res: Resource, ns: str | None, fs: str, q: Mapping[str, str]
    ) -> None:
        labels = parse_label_selector(q.get("labelSelector"))
        fields = parse_field_selector(fs, res.plural)
        bookmarks = q.get("allowWatchBookmarks", "") in _TRUE
        initial_events, timeout = self._watch_options(q, bookmarks)
        rv_text = q.get("resourceVersion") or ""
        send_initial = initial_events in _TRUE if initial_events is not None else rv_text in ("", "0")
        want = 0 if rv_text in ("", "0") else _parse_rv(rv_text)

        def passes(obj: JSON) -> bool:
            meta = obj["metadata"]
            return (
                (ns is None or meta.get("namespace") == ns)
                and (not labels or labels_match(labels, meta.get("labels") or {}))
                and (not fields or fields_match(fields, obj))
            )

        lines: list[bytes] = []
        watcher = Watcher(h.connection, bookmarks)
        watcher.aborted = self._paused or self._stopped  # raced with pause(): behave as cut
        with self.store.cond:
            if send_initial:
                pos = self.store.rv
                _, objs = self.store.sorted_at(res, pos)
                lines = [_event_line("ADDED", _dumps(as_version(o, res))) for o in objs if passes(o)]
                if initial_events in _TRUE:
                    lines.append(self._bookmark_line(res, pos, initial_end=True))
            elif want < self.store.oldest_rv:
                pos = -1
                err = status(410, "Expired", f"too old resource version: {want} ({self.store.oldest_rv})")
                lines = [_event_line("ERROR", _dumps(err))]
            else:
                pos = want
            gen = self._bookmark_gen
            if pos >= 0:
                self._watchers.add(watcher)
        try:
            h.send_response(200)
            h.send_header("Content-Type", "application/json")
            h.send_header("Cache-Control", "no-cache, private")
            h.send_header("Transfer-Encoding", "chunked")
            h.end_headers()  # flushes: the client's call returns before any event, as upstream
            for line in lines:
                self._chunk(h, line)
            if pos >= 0:
                self._stream(
                    h, res, watcher, pos=pos, gen=gen, passes=passes, deadline=time.monotonic() + timeout
                )
            if watcher.aborted:
                h.close_connection = True
                return
            h.wfile.write(b"0\r\n\r\n")
        except OSError:
            h.close_connection = True
        finally:
            with self.store.cond:
                self._watchers.discard(watcher)

    def _watch_options(self, q: Mapping[str, str], bookmarks: bool) -> tuple[str | None, float]:
        """(sendInitialEvents, timeout) of a watch request; raises for invalid combinations."""
        match = q.get("resourceVersionMatch")
        initial_events = q.get("sendInitialEvents")
        if initial_events is not None:
            if match != "NotOlderThan":
                raise invalid_list_options(
                    "resourceVersionMatch: Forbidden: sendInitialEvents requires setting "
                    "resourceVersionMatch to NotOlderThan"
                )
            if not bookmarks:
                raise invalid_list_options(
                    "allowWatchBookmarks: Forbidden: sendInitialEvents requires setting "
                    "allowWatchBookmarks to true"
                )
        elif match:
            raise invalid_list_options(
                "resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden for watch"
            )
        try:
            timeout = float(q.get("timeoutSeconds") or 0)
        except ValueError:
            raise bad_request(f"invalid timeoutSeconds {q.get('timeoutSeconds')!r}") from None
        if timeout <= 0:
            timeout = self.watch_timeout * (1.0 + self._rng.random())
        return initial_events, timeout

    def _stream(
        self,
        h: BaseHTTPRequestHandler,
        res: Resource,
        watcher: Watcher,
        *,
        pos: int,
        gen: int,
        passes: Callable[[JSON], bool],
        deadline: float,
    ) -> None:
        cond = self.store.cond
        now = time.monotonic()
        inf = float("inf")
        next_bookmark = now + self.bookmark_interval if watcher.bookmarks else inf
        pre_timeout = deadline - PRE_TIMEOUT_BOOKMARK if watcher.bookmarks else inf
        if pre_timeout <= now:
            pre_timeout = inf  # too short a watch for a pre-timeout bookmark (nextBookmarkTime returns false)
        while True:
            with cond:
                while True:
                    now = time.monotonic()
                    if watcher.aborted or self.store.rv > pos or now >= deadline:
                        break
                    due = now >= min(next_bookmark, pre_timeout)
                    if watcher.bookmarks and (gen != self._bookmark_gen or due):
                        break
                    cond.wait(min(deadline, next_bookmark, pre_timeout) - now)
                if watcher.aborted:
                    return
                try:
                    # pos may be ahead of the store (a watch from a future version waits for it).
                    events = list(self.store.events_after_locked(pos)) if self.store.rv > pos else []
                except Expired:
                    return  # fell behind the history (a stalled reader): end, the client re-watches
                ahead = pos > self.store.rv  # never bookmark a version the store has not reached
                pos = max(pos, self.store.rv)
                bookmark_due = watcher.bookmarks and (
                    gen != self._bookmark_gen or now >= next_bookmark or now >= pre_timeout
                )
                gen = self._bookmark_gen
            for ev in events:
                line = self._convert(ev, res, passes)
                if line is not None:
                    self._chunk(h, line)
            if bookmark_due:
                if not ahead:
                    self._chunk(h, self._bookmark_line(res, pos))
                if now >= pre_timeout:
                    pre_timeout = inf
                next_bookmark = now + self.bookmark_interval
            if now >= deadline:
                return

    @staticmethod
    def _convert(ev: Event, res: Resource, passes: Callable[[JSON], bool]) -> bytes | None:
        """The watch event this write means to a watcher with these selectors (cacher semantics)."""
        if ev.res.storage != res.storage:
            return None
        cur = ev.type != "DELETED" and passes(ev.obj)
        old = ev.prev is not None and passes(ev.prev)
        if cur:
            return _event_line("MODIFIED" if old else "ADDED", _obj_bytes(ev, res))
        if not old:
            return None
        if ev.type == "DELETED":
            return _event_line("DELETED", _obj_bytes(ev, res))
        assert ev.prev is not None
        return _event_line("DELETED", _dumps(as_version(with_rv(ev.prev, ev.rv), res)))

    @staticmethod
    def _bookmark_line(res: Resource, rv: int, initial_end: bool = False) -> bytes:
        meta: JSON = {"resourceVersion": str(rv)}
        if initial_end:
            meta["annotations"] = {INITIAL_EVENTS_END: "true"}
        obj = {"kind": res.kind, "apiVersion": res.api_version, "metadata": meta}
        return _event_line("BOOKMARK", _dumps(obj))

    @staticmethod
    def _chunk(h: BaseHTTPRequestHandler, data: bytes) -> None:
        h.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
