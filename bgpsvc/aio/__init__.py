"""The asyncio runtime: the only package that touches sockets, signals and the wall clock."""

from .config import PeerConfig, SpeakerConfig
from .speaker import PeerEvent, Speaker

__all__ = ["PeerConfig", "PeerEvent", "Speaker", "SpeakerConfig"]
