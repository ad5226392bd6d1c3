"""The static speaker: ``bgpsvc run`` without a ``kubernetes:`` section advertises configured routes."""

from __future__ import annotations

from collections.abc import Mapping

from ..aio import Speaker
from ..rib import RouteAttrs
from ..wire import Prefix
from .config import RunConfig
from .status import AppStatus


class StaticSpeaker:
    """A speaker that advertises the routes of its configuration (inline and ``routes_file``)."""

    def __init__(self, config: RunConfig, routes: Mapping[Prefix, RouteAttrs]) -> None:
        self.config = config
        self.speaker = Speaker(config.speaker)
        self.routes = routes  # never changed: a reload brings a new mapping
        self.started = False

    @property
    def ready(self) -> bool:
        """Started."""
        return self.started

    async def start(self) -> None:
        """Start and advertise."""
        await self.speaker.start()
        self.speaker.set_routes(self.routes, owned=isinstance(self.routes, dict))
        self.started = True

    async def stop(self, restart: bool = False) -> None:
        """Stop (gracefully unless ``restart``)."""
        await self.speaker.stop(restart=restart)

    def skip_drain(self) -> None:
        """End a graceful-shutdown drain now."""
        self.speaker.skip_drain()

    def status(self) -> AppStatus:
        """Speaker status."""
        return AppStatus(self.speaker.status())

    def reload(self, config: RunConfig, routes: Mapping[Prefix, RouteAttrs]) -> None:
        """Apply a new configuration: peers and routes change live (``Speaker.reconfigure``)."""
        self.config = config
        self.routes = routes
        if self.started:
            self.speaker.reconfigure(config.speaker)
            self.speaker.set_routes(self.routes, owned=isinstance(self.routes, dict))
