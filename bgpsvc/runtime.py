"""``bgpsvc run``: a static speaker, or a node speaker when the config has ``kubernetes:``.

Both share the control endpoint (/status, /metrics, /healthz, /readyz) and the signals: SIGTERM/SIGINT
stop gracefully (a second one skips the drain), SIGHUP reloads the static routes, SIGUSR1 exits for a
restart (graceful restart: no withdrawal, no NOTIFICATION).
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

from .aio import Speaker
from .aio.control import ControlServer, json_handler
from .aio.metrics import StatusCollector, metrics_handler
from .config import ConfigError, RunConfig, load_config, load_routes
from .node import NodeSpeaker
from .rib import RouteAttrs
from .wire import Prefix

log = logging.getLogger("bgpsvc")


class App(Protocol):
    """What ``run`` drives."""

    @property
    def ready(self) -> bool: ...

    async def start(self) -> None: ...

    async def stop(self, restart: bool = False) -> None: ...

    def status(self) -> dict[str, Any]: ...

    def k8s_status(self) -> dict[str, Any] | None: ...

    def set_static(self, routes: Mapping[Prefix, RouteAttrs]) -> None: ...


class StaticSpeaker:
    """A speaker that advertises the configured routes."""

    def __init__(self, config: RunConfig, routes: Mapping[Prefix, RouteAttrs]) -> None:
        self.speaker = Speaker(config.speaker)
        self.routes = dict(routes)
        self.started = False

    @property
    def ready(self) -> bool:
        """Started."""
        return self.started

    async def start(self) -> None:
        """Start and advertise."""
        await self.speaker.start()
        self.speaker.set_routes(self.routes)
        self.started = True

    async def stop(self, restart: bool = False) -> None:
        """Stop (gracefully unless ``restart``)."""
        await self.speaker.stop(restart=restart)

    def status(self) -> dict[str, Any]:
        """Speaker status."""
        return self.speaker.status()

    def k8s_status(self) -> dict[str, Any] | None:
        """No Kubernetes here."""
        return None

    def set_static(self, routes: Mapping[Prefix, RouteAttrs]) -> None:
        """Replace the routes."""
        self.speaker.set_routes(routes)


async def run(config: RunConfig, config_path: str | Path | None = None) -> int:
    """Run until stopped; returns the process exit code."""
    try:
        routes = load_routes(config)
    except (ConfigError, OSError) as exc:
        log.error("routes: %s", exc)
        return 2
    app: App
    app = NodeSpeaker(config, routes) if config.kubernetes is not None else StaticSpeaker(config, routes)
    control = None
    if config.control.enabled:
        control = ControlServer(
            {
                "/status": json_handler(app.status),
                "/metrics": metrics_handler(StatusCollector(app.status, app.k8s_status)),
                "/healthz": lambda: (200, "text/plain", b"ok\n"),
                "/readyz": lambda: (
                    (200, "text/plain", b"ready\n") if app.ready else (503, "text/plain", b"not ready\n")
                ),
            }
        )
        host, port = await control.start(config.control.address, config.control.port)
        log.info("control endpoint on http://%s:%d/status", host, port)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    terms = 0
    restart = False

    def on_term() -> None:
        nonlocal terms
        terms += 1
        if terms == 1:
            log.info("stopping (graceful shutdown; send the signal again to skip the drain)")
            stop.set()
        elif (speaker := getattr(app, "speaker", None)) is not None:
            speaker.skip_drain()  # the second signal: end the graceful-shutdown drain now

    def on_restart() -> None:
        nonlocal restart
        log.info("exiting for a restart (SIGUSR1): no withdrawal, peers keep our routes (graceful restart)")
        restart = True
        stop.set()

    def on_hup() -> None:
        # Static routes (inline and file) are re-read and applied as a delta; other settings need a restart.
        try:
            fresh = load_config(config_path) if config_path is not None else config
            new = load_routes(fresh)
        except (ConfigError, OSError) as exc:
            log.error("SIGHUP: routes not reloaded: %s", exc)
            return
        if fresh.speaker != config.speaker:
            log.warning("SIGHUP: only routes are reloaded; restart to apply other changes")
        log.info("SIGHUP: %d static routes", len(new))
        app.set_static(new)

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_term)
    loop.add_signal_handler(signal.SIGHUP, on_hup)
    loop.add_signal_handler(signal.SIGUSR1, on_restart)
    starting = asyncio.create_task(app.start())
    stopper = asyncio.create_task(stop.wait())
    await asyncio.wait({starting, stopper}, return_when=asyncio.FIRST_COMPLETED)
    if starting.done() and starting.exception() is not None:
        log.error("start failed: %s", starting.exception())
        stopper.cancel()
        await app.stop(restart=True)
        return 1
    if starting.done():
        st = app.status()
        log.info(
            "bgpsvc AS %s router-id %s: %d peers, %d routes",
            st["local_as"],
            st["router_id"],
            len(st["peers"]),
            st["routes"],
        )
    await stopper
    if not starting.done():
        starting.cancel()
    await app.stop(restart=restart)
    if control is not None:
        await control.stop()
    log.info("stopped")
    return 0
