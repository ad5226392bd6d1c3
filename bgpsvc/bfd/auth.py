"""BFD authentication (RFC 5880 §6.7): simple password, keyed and meticulous keyed MD5 / SHA1."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import replace

from .config import AuthConfig
from .packet import HEADER_SIZE, AuthType, ControlPacket, KeyedAuth, SimplePassword, encode_control

_MD5 = (AuthType.KEYED_MD5, AuthType.METICULOUS_KEYED_MD5)
METICULOUS = (AuthType.METICULOUS_KEYED_MD5, AuthType.METICULOUS_KEYED_SHA1)
_U32 = 1 << 32


def _digest(auth_type: AuthType, data: bytes) -> bytes:
    return hashlib.md5(data).digest() if auth_type in _MD5 else hashlib.sha1(data).digest()


def _padded(cfg: AuthConfig) -> bytes:
    return cfg.secret.ljust(16 if cfg.auth_type in _MD5 else 20, b"\0")


def sign(pkt: ControlPacket, cfg: AuthConfig, sequence: int) -> ControlPacket:
    """``pkt`` with its authentication section (§6.7.2-§6.7.4): the digest covers the packet with
    the key, zero padded, in place of the digest."""
    if cfg.auth_type is AuthType.SIMPLE_PASSWORD:
        return replace(pkt, auth=SimplePassword(cfg.key_id, cfg.secret))
    keyed = KeyedAuth(cfg.auth_type, cfg.key_id, sequence, _padded(cfg))
    digest = _digest(cfg.auth_type, encode_control(replace(pkt, auth=keyed)))
    return replace(pkt, auth=replace(keyed, digest=digest))


def verify(pkt: ControlPacket, cfg: AuthConfig, data: bytes | None = None) -> bool:
    """Whether ``pkt`` (received as ``data`` if given) carries our type, key id and a valid
    password or digest (§6.7.2-§6.7.4). Sequence numbers are the session's business."""
    auth = pkt.auth
    if auth is None or auth.key_id != cfg.key_id:
        return False
    if isinstance(auth, SimplePassword):
        return cfg.auth_type is AuthType.SIMPLE_PASSWORD and hmac.compare_digest(auth.password, cfg.secret)
    if auth.auth_type is not cfg.auth_type:
        return False
    raw = bytearray(data[: HEADER_SIZE + 8 + len(auth.digest)] if data is not None else encode_control(pkt))
    raw[HEADER_SIZE + 8 :] = _padded(cfg)
    return hmac.compare_digest(_digest(cfg.auth_type, bytes(raw)), auth.digest)


def sequence_ok(auth_type: AuthType, received: int, last: int | None, detect_mult: int) -> bool:
    """The receive window (§6.7.3, §6.7.4): ``last``..``last + 3*DetectMult`` modulo 2**32,
    excluding ``last`` itself for the meticulous types. Any number is fine before one is known."""
    if auth_type is AuthType.SIMPLE_PASSWORD or last is None:
        return True
    ahead = (received - last) % _U32
    low = 1 if auth_type in METICULOUS else 0
    return low <= ahead <= 3 * detect_mult
