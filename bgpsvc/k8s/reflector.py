"""The informer's list + watch loop, one per resource kind (client-go ``tools/cache`` Reflector).

Theory of operation (STYLE.md section 7). A daemon thread lists the collection in pages
(``limit``/``continue``), replaces the ``Store`` atomically, marks the informer synced and watches from
the list's resourceVersion. ADDED/MODIFIED/DELETED update the store; BOOKMARK only advances the resume
version. When a stream ends (server timeout) or breaks (connection cut) the informer watches again from
the last version it saw; when the server answers 410 Gone (an ERROR event or status: that version left
the history) it lists again, and objects deleted meanwhile simply vanish with the old store (no
tombstones). A continue token that expires mid-list falls back to one unpaginated list, as client-go's
pager does. Failures back off exponentially with jitter; the streak ends with progress (a list, a watch
event) or once a watch has stayed open ``healthy_watch`` seconds, so a quiet informer reconnects at once
after an outage is over. While the API is unreachable the store keeps its last state and ``healthy`` is
False.

The informer talks to the API only through a ``ListerWatcher`` (``bgpsvc.k8s.listwatch``); clock and
sleep are injected, so the whole loop runs in a test without HTTP or real time. ``on_change`` is called
from the informer thread after every change to the store; it must be cheap and thread-safe (the
reconciler passes ``loop.call_soon_threadsafe(event.set)``). Views that compare equal to what is stored
(a Node's status heartbeat, say) are not a change.
"""

from __future__ import annotations

import contextlib
import logging
import random
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, Generic, TypeVar

from .listwatch import ApiError, Event, Expired, ListerWatcher
from .store import Changes, Store
from .views import Key

log = logging.getLogger(__name__)

V = TypeVar("V")
Converter = Callable[[Mapping[str, Any]], V]

#: Objects per list page: client-go's pager default. A 10k-object list is 20 requests, and no single
#: response holds the API server's (or our) memory for long.
PAGE_SIZE = 500
#: Objects per list page of EndpointSlices: a slice holds up to 100 endpoints, so 500 of them parse into
#: tens of MB of dicts at once, most of which a node speaker drops (other nodes' endpoints). Pages of 100
#: cut a node speaker's peak at 10k Services/100k endpoints by ~10 MB (the freed heap is not returned),
#: for 80 more list requests per 10k slices at start-up.
ENDPOINTSLICE_PAGE_SIZE = 100
#: Server-side watch timeout, randomised to [x, 2x) per watch: client-go's 5 min minimum, so informers
#: restarted together spread their reconnects out instead of hitting the API server in lockstep.
WATCH_TIMEOUT = 300.0
#: Backoff after consecutive failures: base * 2^(n-1), capped, jittered to [d/2, d]. client-go's
#: reflector uses the same 800 ms start and 30 s cap: quick after a blip, gentle on a struggling server.
BACKOFF_BASE = 0.8
BACKOFF_MAX = 30.0
#: A watch open this long proves the server accepts and keeps streams again: the failure streak ends,
#: so the next break reconnects at once. Shorter-lived watches keep counting, so a server (or proxy)
#: that accepts and drops streams straight away is still backed off, not hammered. (client-go resets
#: after 2 min without a backoff; a quiet informer would then wait up to 30 s after a short outage.)
HEALTHY_WATCH = 5.0


class _WatchError(Exception):
    """An ERROR event other than 410; list again after a backoff (client-go returns from ListAndWatch)."""


class _StreamBroken(Exception):
    """The watch stream failed mid-way (connection cut); watch again from the last version."""


def _key(obj: Mapping[str, Any]) -> Key:
    meta = obj.get("metadata") or {}
    return (str(meta.get("namespace") or ""), str(meta.get("name") or ""))


def _store_key(obj: Mapping[str, Any], view: object) -> Key:
    """The object's key, built from the view's own strings when they are equal: a key made of the raw
    JSON strings would keep a second copy of every namespace and name alive (the views intern theirs)."""
    key = _key(obj)
    own = getattr(view, "key", None)
    return own if isinstance(own, tuple) and own == key else key


class Informer(Generic[V]):
    """List + watch one kind through a ``ListerWatcher`` into a ``Store`` of frozen views."""

    def __init__(
        self,
        lister_watcher: ListerWatcher,
        converter: Converter[V],
        *,
        on_change: Callable[[], None] | None = None,
        page_size: int = PAGE_SIZE,
        watch_timeout: float = WATCH_TIMEOUT,
        backoff_base: float = BACKOFF_BASE,
        backoff_max: float = BACKOFF_MAX,
        healthy_watch: float = HEALTHY_WATCH,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], object] | None = None,
    ) -> None:
        self._lw = lister_watcher
        self.resource = lister_watcher.resource
        self._converter = converter
        self._on_change = on_change
        self.page_size = page_size
        self.watch_timeout = watch_timeout
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.healthy_watch = healthy_watch
        self._rng = rng or random.Random()
        self._clock = clock
        self._stopping = threading.Event()
        self._sleep = sleep or self._stopping.wait  # the real one returns at once on stop()

        self._store: Store[V] = Store()
        self._lock = threading.Lock()  # counters, resume version, watch start
        self._rv: str | None = None
        self._synced = threading.Event()
        self._healthy = False
        self._relists = 0
        self._last_error: str | None = None
        self._counts = {"lists": 0, "watches": 0, "events": 0, "bookmarks": 0, "backoffs": 0}
        self._failures = 0  # consecutive, without progress in between
        self._expired_streak = 0  # 410s without a watch event in between
        self._watch_since: float | None = None  # clock() when the open watch started
        self._thread: threading.Thread | None = None

    # -- public surface -----------------------------------------------------------------------------

    def start(self) -> Informer[V]:
        """Start the list/watch loop in a daemon thread; returns self."""
        if self._thread is not None:
            raise RuntimeError("informer already started")
        self._thread = threading.Thread(target=self.run, name=f"informer-{self.resource}", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the loop: cut the open request so it returns at once, then join (bounded: a thread that
        does not end within ``timeout`` is a daemon and dies with the process)."""
        self._stopping.set()
        self._lw.close()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    def wait_synced(self, timeout: float | None = None) -> bool:
        """Block until the first complete list (or timeout); returns ``synced``."""
        return self._synced.wait(timeout)

    @property
    def synced(self) -> bool:
        """True once the first complete list is in the store; stays true."""
        return self._synced.is_set()

    @property
    def healthy(self) -> bool:
        """The last list/watch attempt succeeded (False while the API server is unreachable)."""
        return self._healthy

    @property
    def relists(self) -> int:
        """Lists after the first one (410 Gone, watch errors)."""
        return self._relists

    @property
    def size(self) -> int:
        """Objects in the store, without the copy ``snapshot()`` makes after a change (status and metrics
        scrapes ask for this; at 100k objects a copy per scrape was ~10 MB churned)."""
        return len(self._store)

    @property
    def last_error(self) -> str | None:
        """The most recent error, kept after recovery for diagnosis."""
        return self._last_error

    @property
    def resource_version(self) -> str | None:
        """The version the next watch resumes from (advanced by events and BOOKMARKs)."""
        return self._rv

    @property
    def running(self) -> bool:
        """The informer thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    def counters(self) -> dict[str, int]:
        """``lists`` (pages), ``watches``, ``events``, ``bookmarks``, ``backoffs`` (waits taken),
        ``relists``, and ``failures``: the current streak that sets the next backoff."""
        with self._lock:
            since = self._watch_since
            settled = since is not None and self._clock() - since >= self.healthy_watch
            return {**self._counts, "relists": self._relists, "failures": 0 if settled else self._failures}

    def snapshot(self) -> Mapping[Key, V]:
        """An immutable view of the store, the same object until the store changes."""
        return self._store.snapshot()

    def versioned_snapshot(self) -> tuple[int, Mapping[Key, V]]:
        """``snapshot()`` with the store version it shows (``Store.versioned_snapshot``)."""
        return self._store.versioned_snapshot()

    def changes_since(self, version: int) -> Changes:
        """Keys changed after ``version`` (``Store.changes_since``): the incremental reconcile's input."""
        return self._store.changes_since(version)

    def get(self, key: Key) -> V | None:
        """One object of the store, or None."""
        return self._store.get(key)

    # -- the loop -------------------------------------------------------------------------------------

    def run(self) -> None:
        """Run the list/watch loop in the calling thread until ``stop()``."""
        need_list = True
        while not self._stopping.is_set():
            try:
                if need_list:
                    self._list()
                    need_list = False
                self._watch()  # returns when the server ends the stream: watch again at once
                self._failures = self._expired_streak = 0
                continue
            except Expired as e:
                log.info("%s: %s; listing again", self.resource, e)
                self._last_error = f"410 Gone: {e}"
                need_list = True
                # The server answered, so earlier connection failures are over; list again at once unless
                # the previous list's version was already too old (a server that only says 410).
                self._failures = 0
                self._expired_streak += 1
                delay = self._backoff() if self._expired_streak > 1 else 0.0
            except _StreamBroken as e:
                log.info("%s: watch stream broke (%s); watching again from %s", self.resource, e, self._rv)
                self._last_error = f"watch stream broke: {e}"
                delay = self._backoff(immediate_first=True)
            except _WatchError as e:
                log.warning("%s: watch error %s; listing again", self.resource, e)
                self._last_error = f"watch error: {e}"
                need_list = True
                delay = self._backoff()
            except Exception as e:
                if self._stopping.is_set():
                    break
                self._fail(e)
                delay = self._backoff()
            if delay > 0 and not self._stopping.is_set():
                with self._lock:
                    self._counts["backoffs"] += 1
                self._sleep(delay)
        log.debug("%s: informer stopped", self.resource)

    def _backoff(self, immediate_first: bool = False) -> float:
        """Jittered exponential backoff over consecutive failures (a cut stream is retried once at once)."""
        self._failures += 1
        if immediate_first and self._failures == 1:
            return 0.0
        delay = min(self.backoff_max, self.backoff_base * 2.0 ** (self._failures - 1))
        return delay * (0.5 + 0.5 * self._rng.random())  # in [delay/2, delay]

    def _fail(self, e: Exception) -> None:
        msg = str(e) if isinstance(e, ApiError) else f"{type(e).__name__}: {e}"
        if self._healthy:
            log.warning("%s: API server unreachable or failing: %s", self.resource, msg)
        else:
            log.debug("%s: still failing: %s", self.resource, msg)
        self._healthy = False
        self._last_error = msg

    # -- list -----------------------------------------------------------------------------------------

    def _list(self) -> None:
        items: dict[Key, V] = {}
        token: str | None = None
        limit = self.page_size
        while True:
            try:
                page = self._lw.list(limit, token)
            except Expired:
                if not token:
                    raise
                # The continue token expired mid-list: one full, unpaginated list (client-go pager).
                log.info("%s: continue token expired; listing without pagination", self.resource)
                items, token, limit = {}, None, 0
                continue
            with self._lock:
                self._counts["lists"] += 1
            for obj in page.items:
                view = self._convert(obj)
                if view is not None:
                    items[_store_key(obj, view)] = view
            token = page.continue_token
            if not token:
                break
        self._listed(items, page.resource_version)

    def _listed(self, items: Mapping[Key, V], rv: str | None) -> None:
        first = not self._synced.is_set()
        changed = self._store.replace(items)
        with self._lock:
            self._rv = rv  # after the store: whoever sees this version sees its objects
            if not first:
                self._relists += 1
        self._healthy = True
        self._failures = 0
        self._synced.set()
        log.info("%s: listed %d objects at resourceVersion %s", self.resource, len(items), rv)
        if changed or first:
            self._notify()

    def _convert(self, obj: Mapping[str, Any]) -> V | None:
        try:
            return self._converter(obj)
        except Exception:
            log.exception("%s: cannot convert %s; ignored", self.resource, _key(obj))
            return None

    # -- watch ----------------------------------------------------------------------------------------

    def _watch(self) -> None:
        timeout = max(1, int(self.watch_timeout * (1.0 + self._rng.random())))
        stream = self._lw.watch(self._rv, timeout)
        self._healthy = True
        with self._lock:
            self._counts["watches"] += 1
            self._watch_since = self._clock()
        try:
            for ev in stream:
                self._handle(ev)
                self._failures = self._expired_streak = 0  # the stream delivers: failures are over
        except (Expired, _WatchError):
            raise
        except Exception as e:
            if self._stopping.is_set():
                return
            raise _StreamBroken(f"{type(e).__name__}: {e}") from e
        finally:
            self._watch_ended()
            with contextlib.suppress(Exception):
                stream.close()

    def _watch_ended(self) -> None:
        with self._lock:
            since, self._watch_since = self._watch_since, None
            if since is not None and self._clock() - since >= self.healthy_watch:
                self._failures = self._expired_streak = 0  # it stayed up: the outage is over

    def _handle(self, ev: Event) -> None:
        received = time.perf_counter()  # the speaker's event -> UPDATE latency starts here
        kind, obj = ev.get("type"), ev.get("object")
        if not isinstance(obj, Mapping):
            raise _WatchError(f"malformed watch event {str(ev)[:200]}")
        if kind == "ERROR":
            if obj.get("code") == 410:
                raise Expired(str(obj.get("message") or "Expired"))
            raise _WatchError(f"{obj.get('code')} {obj.get('reason')}: {obj.get('message')}")
        changed = False
        if kind in ("ADDED", "MODIFIED"):
            view = self._convert(obj)
            changed = view is not None and self._store.put(_store_key(obj, view), view, received)
        elif kind == "DELETED":
            changed = self._store.delete(_key(obj), received)
        elif kind != "BOOKMARK":
            log.debug("%s: ignoring watch event type %r", self.resource, kind)
            return
        rv = (obj.get("metadata") or {}).get("resourceVersion")
        with self._lock:
            self._counts["bookmarks" if kind == "BOOKMARK" else "events"] += 1
            if rv:
                self._rv = str(rv)  # after the store, as in _listed
        if changed:
            self._notify()

    def _notify(self) -> None:
        if self._on_change is None:
            return
        try:
            self._on_change()
        except Exception:
            log.exception("%s: on_change failed", self.resource)
