"""``bgpsvc run``: speaker, control endpoint and signals.

SIGTERM/SIGINT stop gracefully (a second one skips the drain), SIGHUP reloads routes, SIGUSR1 exits
for a restart (graceful restart: no withdrawal, no NOTIFICATION).
"""

from __future__ import annotations

import asyncio
import logging
import signal
from pathlib import Path

from .aio import Speaker
from .aio.control import ControlServer, json_handler
from .aio.metrics import StatusCollector, metrics_handler
from .config import ConfigError, RunConfig, load_config, load_routes

log = logging.getLogger("bgpsvc")


async def run(config: RunConfig, config_path: str | Path | None = None) -> int:
    """Run until stopped; returns the process exit code."""
    speaker = Speaker(config.speaker)
    try:
        routes = load_routes(config)
    except (ConfigError, OSError) as exc:
        log.error("routes: %s", exc)
        return 2
    await speaker.start()
    speaker.set_routes(routes)
    control = None
    if config.control.enabled:
        control = ControlServer(
            {
                "/status": json_handler(speaker.status),
                "/metrics": metrics_handler(StatusCollector(speaker.status)),
                "/healthz": lambda: (200, "text/plain", b"ok\n"),
                "/readyz": lambda: (200, "text/plain", b"ready\n"),
            }
        )
        host, port = await control.start(config.control.address, config.control.port)
        log.info("control endpoint on http://%s:%d/status", host, port)
    log.info(
        "bgpsvc AS %d router-id %s: %d peers, %d routes",
        config.speaker.local_as,
        config.speaker.router_id,
        len(config.speaker.peers),
        len(routes),
    )
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    terms = 0
    restart = False

    def on_restart() -> None:
        nonlocal restart
        log.info("exiting for a restart (SIGUSR1): no withdrawal, peers keep our routes (graceful restart)")
        restart = True
        stop.set()

    def on_term() -> None:
        nonlocal terms
        terms += 1
        if terms == 1:
            log.info("stopping (graceful shutdown; send the signal again to skip the drain)")
            stop.set()
        else:
            speaker.skip_drain()

    def on_hup() -> None:
        # Routes (inline and file) are re-read and applied as a delta; other settings need a restart.
        try:
            fresh = load_config(config_path) if config_path is not None else config
            new = load_routes(fresh)
        except (ConfigError, OSError) as exc:
            log.error("SIGHUP: routes not reloaded: %s", exc)
            return
        if fresh.speaker != config.speaker:
            log.warning("SIGHUP: only routes are reloaded; restart to apply other changes")
        log.info("SIGHUP: %d routes", len(new))
        speaker.set_routes(new)

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_term)
    loop.add_signal_handler(signal.SIGHUP, on_hup)
    loop.add_signal_handler(signal.SIGUSR1, on_restart)
    await stop.wait()
    await speaker.stop(restart=restart)
    if control is not None:
        await control.stop()
    log.info("stopped")
    return 0
