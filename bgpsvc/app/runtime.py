"""``bgpsvc run``: a static speaker, or a node speaker when the config has ``kubernetes:``.

Both share the control endpoint (/status, /metrics, /healthz, /readyz) and the signals: SIGTERM/SIGINT
stop gracefully (a second one skips the drain), SIGHUP reloads the whole configuration, SIGUSR1 exits
for a restart (graceful restart: no withdrawal, no NOTIFICATION). The config file is also watched: a
changed file (a ConfigMap update) is reloaded like SIGHUP. An invalid new file is refused with one log
line and the running configuration stays.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import gc
import json
import logging
import os
import signal
from collections.abc import Mapping
from pathlib import Path
from typing import Protocol

from ..aio import Speaker
from ..rib import RouteAttrs
from ..wire import Prefix
from .config import ConfigError, RunConfig, load_config, load_routes
from .control import ControlServer, Response, json_handler
from .metrics import StatusCollector, metrics_handler
from .reload import describe_changes
from .ribview import routes_json
from .static import StaticSpeaker
from .status import AppStatus

log = logging.getLogger("bgpsvc")
#: What to do when the BGP listener cannot bind (``listen:``).
_LISTEN_HINTS = {
    errno.EACCES: "ports below 1024 need root or CAP_NET_BIND_SERVICE; or listen: false to connect out only",
    errno.EADDRINUSE: "another process (a BGP daemon?) listens there; change listen:, or listen: false",
    errno.EADDRNOTAVAIL: "no interface has that address; fix listen:",
}
#: How often the config file is checked for changes (ConfigMap updates reach the pod in ~1 min anyway).
WATCH_INTERVAL = 2.0


class App(Protocol):
    """What ``run`` drives."""

    @property
    def ready(self) -> bool: ...

    @property
    def speaker(self) -> Speaker | None: ...

    async def start(self) -> None: ...

    async def stop(self, restart: bool = False) -> None: ...

    def skip_drain(self) -> None: ...

    def status(self) -> AppStatus: ...

    def reload(self, config: RunConfig, routes: Mapping[Prefix, RouteAttrs]) -> None: ...


class Runner:
    """One ``bgpsvc run`` process: the app, its control endpoint, signals and reloads."""

    def __init__(
        self, config: RunConfig, config_path: str | Path | None, routes: Mapping[Prefix, RouteAttrs]
    ) -> None:
        self.config = config
        self.path = Path(config_path) if config_path is not None else None
        self.routes = routes  # the loaded mapping itself: the static speaker uses it without a copy
        self.app: App
        if config.kubernetes is not None:
            from .node import NodeSpeaker  # noqa: PLC0415 - a static speaker never loads the Kubernetes client

            self.app = NodeSpeaker(config, routes)
        else:
            self.app = StaticSpeaker(config, routes)
        self.stopping = asyncio.Event()
        self.restart = False
        self._terms = 0
        self._stamp = self._file_stamp()

    def _file_stamp(self) -> tuple[float, int, int] | None:
        # The inode too: a ConfigMap volume swaps a symlink to a new file, which may have the old size
        # and, within the filesystem's timestamp granularity, the old mtime.
        try:
            st = self.path.stat() if self.path is not None else None
        except OSError:
            return None
        return (st.st_mtime, st.st_size, st.st_ino) if st is not None else None

    def on_term(self) -> None:
        """SIGTERM/SIGINT: stop gracefully; the second one skips the drain."""
        self._terms += 1
        if self._terms == 1:
            log.info("stopping (graceful shutdown; send the signal again to skip the drain)")
            self.stopping.set()
        else:
            self.app.skip_drain()

    def on_restart(self) -> None:
        """SIGUSR1: exit for a restart, leaving our routes with graceful-restart helpers."""
        log.info("exiting for a restart (SIGUSR1): no withdrawal, peers keep our routes (graceful restart)")
        self.restart = True
        self.stopping.set()

    def reload(self, why: str) -> None:
        """Read the config file again and apply it; an invalid file changes nothing."""
        if self.path is None:
            return
        try:
            fresh = load_config(self.path)
            routes = load_routes(fresh)
        except ConfigError as exc:
            log.error("%s: configuration not reloaded, the running one stays: %s", why, exc)
            return
        changes = describe_changes(self.config, fresh, self.routes, routes)
        if not changes:
            log.info("%s: configuration unchanged", why)
            return
        if (fresh.kubernetes is None) != (self.config.kubernetes is None):
            log.error("%s: adding or removing the kubernetes: section needs a restart; not reloaded", why)
            return
        try:
            self.app.reload(fresh, routes)
        except (ValueError, OSError) as exc:
            log.error("%s: configuration not applied: %s", why, exc)
            return
        log.info("%s: configuration reloaded: %s", why, "; ".join(changes))
        self.config, self.routes = fresh, routes
        settle(routes)

    async def watch(self) -> None:
        """Reload when the config file changes (mtime or size)."""
        while True:
            await asyncio.sleep(WATCH_INTERVAL)
            stamp = self._file_stamp()
            if stamp is not None and stamp != self._stamp:
                self._stamp = stamp
                self.reload(f"{self.path} changed")

    def rib_endpoint(self, query: Mapping[str, str]) -> Response:
        """``/routes[?peer=NAME][&received=1]``: Adj-RIB-Out (and -In) per peer, as JSON."""
        received = query.get("received", "") not in ("", "0", "false")
        try:
            data = routes_json(self.app.speaker, query.get("peer") or None, received)
        except KeyError:
            return 404, "application/json", json.dumps({"error": f"no peer {query['peer']!r}"}).encode()
        return 200, "application/json", json.dumps(data).encode() + b"\n"

    async def control(self) -> ControlServer | None:
        """Start the control endpoint (None when disabled)."""
        c = self.config.control
        if not c.enabled:
            return None
        app = self.app
        server = ControlServer(
            {
                "/status": json_handler(lambda: app.status().to_json()),
                "/metrics": metrics_handler(StatusCollector(app.status)),
                "/healthz": lambda: (200, "text/plain", b"ok\n"),
                "/readyz": lambda: (
                    (200, "text/plain", b"ready\n") if app.ready else (503, "text/plain", b"not ready\n")
                ),
            },
            {"/routes": self.rib_endpoint},
        )
        host, port = await server.start(c.address, c.port)
        log.info("control endpoint on http://%s:%d/status", host, port)
        return server


#: A routes table this large is moved out of the garbage collector's sight once loaded.
SETTLE_ROUTES = 10_000


def settle(routes: Mapping[Prefix, RouteAttrs]) -> None:
    """Freeze a large routes table out of the cyclic collector's generations (``gc.freeze``): its
    prefixes hold no cycles (reference counting frees them when replaced), and a full collection that
    walks a 1M-route table stalls the event loop ~0.2 s (keepalives, BFD) each time it runs."""
    if len(routes) >= SETTLE_ROUTES:
        gc.collect()
        gc.freeze()


async def run(config: RunConfig, config_path: str | Path | None = None) -> int:
    """Run until stopped; returns the process exit code (2: an operator mistake, logged in one line)."""
    try:
        routes = load_routes(config)
    except ConfigError as exc:
        log.error("routes: %s", exc)
        return 2
    settle(routes)
    for warning in config.warnings:
        log.warning("config: %s", warning)
    try:
        runner = Runner(config, config_path, routes)
    except ConfigError as exc:
        log.error("%s", exc)
        return 2
    try:
        control = await runner.control()
    except OSError as exc:
        c = config.control
        log.error(
            "control endpoint: cannot listen on %s:%d: %s (set control.port, or control: false)",
            c.address,
            c.port,
            os.strerror(exc.errno).lower() if exc.errno else exc,
        )
        return 2
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, runner.on_term)
    loop.add_signal_handler(signal.SIGHUP, lambda: runner.reload("SIGHUP"))
    loop.add_signal_handler(signal.SIGUSR1, runner.on_restart)
    rc = await _serve(runner)
    if control is not None:
        await control.stop()
    log.info("stopped")
    return rc


async def _serve(runner: Runner) -> int:
    app = runner.app
    starting = asyncio.create_task(app.start())
    stopper = asyncio.create_task(runner.stopping.wait())
    await asyncio.wait({starting, stopper}, return_when=asyncio.FIRST_COMPLETED)
    if starting.done() and starting.exception() is not None:
        exc = starting.exception()
        stopper.cancel()
        await app.stop(restart=True)
        if isinstance(exc, OSError) and exc.errno in (errno.EACCES, errno.EADDRINUSE, errno.EADDRNOTAVAIL):
            hint = _LISTEN_HINTS[exc.errno]
            log.error("cannot start: %s (%s)", exc.strerror, hint)
            return 2
        if isinstance(exc, ConfigError | OSError | ValueError):
            log.error("cannot start: %s", exc)
            return 2
        log.error("start failed", exc_info=exc)
        return 1
    watcher = asyncio.create_task(runner.watch())
    if starting.done():
        st = app.status().speaker
        log.info(
            "bgpsvc AS %s router-id %s: %d peers, %d routes",
            st.local_as,
            st.router_id,
            len(st.peers),
            st.routes,
        )
    await stopper
    watcher.cancel()
    if not starting.done():
        starting.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await starting
    await app.stop(restart=runner.restart)
    return 0
