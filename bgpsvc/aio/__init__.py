"""Thin asyncio drivers: TCP for BGP peers (and the listener), one timer each; no protocol decisions."""

from ..fsm import PeerConfig
from .config import SpeakerConfig
from .speaker import PeerEvent, Speaker, SpeakerStatus, session_config

__all__ = ["PeerConfig", "PeerEvent", "Speaker", "SpeakerConfig", "SpeakerStatus", "session_config"]
