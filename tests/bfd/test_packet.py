"""BFD Control packet codec (RFC 5880 §4.1-§4.4, §6.8.6): golden vectors, round trips, drop reasons.

Expected bytes are written by hand from the RFC layout, one field per line; the codec only ever
produces the value under test. scapy's independent ``scapy.contrib.bfd`` is a second decoder.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bgpsvc.bfd import (
    AuthType,
    ControlPacket,
    Diag,
    DropReason,
    KeyedAuth,
    SimplePassword,
    State,
    decode_control,
    encode_control,
)

VECTORS: list[tuple[str, ControlPacket, bytes]] = [
    (
        "down-first-packet",
        ControlPacket(State.DOWN, 3, my_discriminator=1),
        bytes.fromhex(
            "20"  # Vers 1 (001), Diag 0 (00000)
            "40"  # Sta Down (01), P F C A D M all 0
            "03"  # Detect Mult 3
            "18"  # Length 24
            "00000001"  # My Discriminator 1
            "00000000"  # Your Discriminator 0
            "000f4240"  # Desired Min TX Interval 1,000,000 µs
            "000f4240"  # Required Min RX Interval 1,000,000 µs
            "00000000"  # Required Min Echo RX Interval 0
        ),
    ),
    (
        "up-poll-diag3",
        ControlPacket(
            State.UP,
            5,
            my_discriminator=0xDEADBEEF,
            your_discriminator=0x01020304,
            desired_min_tx=100_000,
            required_min_rx=50_000,
            required_min_echo_rx=7,
            diag=Diag.NEIGHBOR_SIGNALED_SESSION_DOWN,
            poll=True,
            control_plane_independent=True,
        ),
        bytes.fromhex(
            "23"  # Vers 1, Diag 3 (neighbor signaled session down)
            "e8"  # Sta Up (11), P 1, F 0, C 1, A 0, D 0, M 0
            "05"  # Detect Mult 5
            "18"  # Length 24
            "deadbeef"  # My Discriminator
            "01020304"  # Your Discriminator
            "000186a0"  # Desired Min TX 100,000 µs
            "0000c350"  # Required Min RX 50,000 µs
            "00000007"  # Required Min Echo RX 7 µs
        ),
    ),
    (
        "init-final-demand",
        ControlPacket(State.INIT, 1, 9, 10, 300_000, 300_000, final=True, demand=True),
        bytes.fromhex(
            "20"  # Vers 1, Diag 0
            "92"  # Sta Init (10), P 0, F 1, C 0, A 0, D 1, M 0
            "01"  # Detect Mult 1
            "18"  # Length 24
            "00000009"  # My Discriminator
            "0000000a"  # Your Discriminator
            "000493e0"  # Desired Min TX 300,000 µs
            "000493e0"  # Required Min RX 300,000 µs
            "00000000"  # Required Min Echo RX
        ),
    ),
    (
        "admindown-simple-password",
        ControlPacket(
            State.ADMIN_DOWN,
            3,
            my_discriminator=2,
            diag=Diag.ADMINISTRATIVELY_DOWN,
            auth=SimplePassword(key_id=5, password=b"abc"),
        ),
        bytes.fromhex(
            "27"  # Vers 1, Diag 7 (administratively down)
            "04"  # Sta AdminDown (00), A 1
            "03"  # Detect Mult 3
            "1e"  # Length 30 = 24 + 6
            "00000002"  # My Discriminator
            "00000000"  # Your Discriminator
            "000f4240"  # Desired Min TX
            "000f4240"  # Required Min RX
            "00000000"  # Required Min Echo RX
            "01"  # Auth Type 1 (simple password)
            "06"  # Auth Len 6 = 3 + password
            "05"  # Auth Key ID 5
            "616263"  # Password "abc"
        ),
    ),
    (
        "up-keyed-sha1",
        ControlPacket(
            State.UP,
            3,
            3,
            4,
            1_000_000,
            1_000_000,
            auth=KeyedAuth(AuthType.METICULOUS_KEYED_SHA1, 1, 0x11223344, bytes(range(20))),
        ),
        bytes.fromhex(
            "20"  # Vers 1, Diag 0
            "c4"  # Sta Up (11), A 1
            "03"  # Detect Mult 3
            "34"  # Length 52 = 24 + 28
            "00000003"  # My Discriminator
            "00000004"  # Your Discriminator
            "000f4240"  # Desired Min TX
            "000f4240"  # Required Min RX
            "00000000"  # Required Min Echo RX
            "05"  # Auth Type 5 (meticulous keyed SHA1)
            "1c"  # Auth Len 28
            "01"  # Auth Key ID 1
            "00"  # Reserved
            "11223344"  # Sequence Number
            "000102030405060708090a0b0c0d0e0f10111213"  # Auth Key/Hash (20 octets)
        ),
    ),
    (
        "down-keyed-md5",
        ControlPacket(
            State.DOWN,
            3,
            3,
            0,
            1_000_000,
            1_000_000,
            auth=KeyedAuth(AuthType.KEYED_MD5, 255, 0xFFFFFFFF, b"\xaa" * 16),
        ),
        bytes.fromhex(
            "20"  # Vers 1, Diag 0
            "44"  # Sta Down (01), A 1
            "03"  # Detect Mult 3
            "30"  # Length 48 = 24 + 24
            "00000003"  # My Discriminator
            "00000000"  # Your Discriminator
            "000f4240"  # Desired Min TX
            "000f4240"  # Required Min RX
            "00000000"  # Required Min Echo RX
            "02"  # Auth Type 2 (keyed MD5)
            "18"  # Auth Len 24
            "ff"  # Auth Key ID 255
            "00"  # Reserved
            "ffffffff" + "aa" * 16  # Sequence Number  # Auth Key/Digest
        ),
    ),
]


@pytest.mark.parametrize(("name", "pkt", "data"), VECTORS, ids=[v[0] for v in VECTORS])
def test_vector_encodes(name: str, pkt: ControlPacket, data: bytes) -> None:
    assert encode_control(pkt) == data


@pytest.mark.parametrize(("name", "pkt", "data"), VECTORS, ids=[v[0] for v in VECTORS])
def test_vector_decodes_also_with_trailing_bytes(name: str, pkt: ControlPacket, data: bytes) -> None:
    assert decode_control(data) == pkt
    assert decode_control(data + b"\x00\x01") == pkt  # bytes past Length are not part of the packet


@pytest.mark.parametrize(("name", "pkt", "data"), VECTORS, ids=[v[0] for v in VECTORS])
def test_vector_truncated_is_dropped(name: str, pkt: ControlPacket, data: bytes) -> None:
    for cut in range(len(data)):
        assert isinstance(decode_control(data[:cut]), DropReason)


@pytest.mark.parametrize(("name", "pkt", "data"), VECTORS, ids=[v[0] for v in VECTORS])
def test_scapy_decodes_what_we_encode(name: str, pkt: ControlPacket, data: bytes) -> None:
    bfd = pytest.importorskip("scapy.contrib.bfd")
    theirs = bfd.BFD(encode_control(pkt))
    assert theirs.version == 1 and theirs.diag == pkt.diag and theirs.sta == pkt.state
    assert theirs.detect_mult == pkt.detect_mult and theirs.len == len(data)
    assert (theirs.my_discriminator, theirs.your_discriminator) == (
        pkt.my_discriminator,
        pkt.your_discriminator,
    )
    assert (theirs.min_tx_interval, theirs.min_rx_interval, theirs.echo_rx_interval) == (
        pkt.desired_min_tx,
        pkt.required_min_rx,
        pkt.required_min_echo_rx,
    )
    assert bool(theirs.flags.P) == pkt.poll and bool(theirs.flags.F) == pkt.final
    assert bool(theirs.flags.A) == (pkt.auth is not None) and bool(theirs.flags.D) == pkt.demand


def _hdr(
    *, byte0: int = 0x20, flags: int = 0x40, mult: int = 3, length: int = 24, my: int = 1, your: int = 0
):
    return bytes((byte0, flags, mult, length)) + my.to_bytes(4, "big") + your.to_bytes(4, "big") + bytes(12)


BAD_AUTH = DropReason.BAD_AUTH_SECTION
DROPS = [
    ("too-short", _hdr()[:23], DropReason.TOO_SHORT),
    ("version-0", _hdr(byte0=0x00), DropReason.BAD_VERSION),
    ("version-2", _hdr(byte0=0x40), DropReason.BAD_VERSION),
    ("length-23", _hdr(length=23), DropReason.BAD_LENGTH),
    ("length-25-with-A", _hdr(flags=0x44, length=25) + b"\x01", DropReason.BAD_LENGTH),
    ("length-beyond-datagram", _hdr(length=25), DropReason.LENGTH_EXCEEDS_PAYLOAD),
    ("detect-mult-0", _hdr(mult=0), DropReason.DETECT_MULT_ZERO),
    ("multipoint", _hdr(flags=0x41), DropReason.MULTIPOINT),
    ("my-discr-0", _hdr(my=0), DropReason.MY_DISCRIMINATOR_ZERO),
    ("your-discr-0-in-up", _hdr(flags=0xC0), DropReason.YOUR_DISCRIMINATOR_ZERO),
    ("your-discr-0-in-init", _hdr(flags=0x80), DropReason.YOUR_DISCRIMINATOR_ZERO),
    ("auth-len-past-length", _hdr(flags=0x44, length=28) + bytes((1, 9, 1, 0x61)), BAD_AUTH),
    ("auth-simple-empty", _hdr(flags=0x44, length=27) + bytes((1, 3, 1)), BAD_AUTH),
    ("auth-md5-len-28", _hdr(flags=0x44, length=52) + bytes((2, 28)) + bytes(26), BAD_AUTH),
    ("auth-type-unknown", _hdr(flags=0x44, length=28) + bytes((9, 4, 1, 0x61)), BAD_AUTH),
]  # fmt: skip


@pytest.mark.parametrize(("name", "data", "reason"), DROPS, ids=[d[0] for d in DROPS])
def test_section_6_8_6_checks_on_the_packet_alone(name: str, data: bytes, reason: DropReason) -> None:
    assert decode_control(data) is reason


def test_your_discriminator_zero_is_fine_in_down_and_admin_down() -> None:
    assert isinstance(decode_control(_hdr(flags=0x40)), ControlPacket)
    assert isinstance(decode_control(_hdr(flags=0x00)), ControlPacket)


def test_reserved_diag_is_kept() -> None:
    pkt = decode_control(_hdr(byte0=0x20 | 31))
    assert isinstance(pkt, ControlPacket) and pkt.diag == 31 and pkt.diagnostic is None


# ------------------------------------------------------------------ properties

u32 = st.integers(0, 0xFFFFFFFF)
auths = st.one_of(
    st.none(),
    st.builds(SimplePassword, st.integers(0, 255), st.binary(min_size=1, max_size=16)),
    st.sampled_from(sorted(AuthType)).filter(lambda t: t is not AuthType.SIMPLE_PASSWORD).flatmap(
        lambda t: st.builds(
            KeyedAuth, st.just(t), st.integers(0, 255), u32,
            st.binary(min_size=16 if t <= AuthType.METICULOUS_KEYED_MD5 else 20,
                      max_size=16 if t <= AuthType.METICULOUS_KEYED_MD5 else 20),
        )
    ),
)  # fmt: skip


@st.composite
def packets(draw: st.DrawFn) -> ControlPacket:
    """Packets a sender may legally put on the wire (M clear, Your Discriminator set outside Down)."""
    state = draw(st.sampled_from(list(State)))
    your = draw(u32 if state in (State.DOWN, State.ADMIN_DOWN) else st.integers(1, 0xFFFFFFFF))
    return ControlPacket(
        state=state,
        detect_mult=draw(st.integers(1, 255)),
        my_discriminator=draw(st.integers(1, 0xFFFFFFFF)),
        your_discriminator=your,
        desired_min_tx=draw(u32),
        required_min_rx=draw(u32),
        required_min_echo_rx=draw(u32),
        diag=draw(st.integers(0, 31)),
        poll=draw(st.booleans()),
        final=draw(st.booleans()),
        control_plane_independent=draw(st.booleans()),
        demand=draw(st.booleans()),
        auth=draw(auths),
    )


@given(packets())
def test_round_trip(pkt: ControlPacket) -> None:
    data = encode_control(pkt)
    assert data[3] == len(data)
    assert decode_control(data) == pkt


@given(st.binary(max_size=80))
def test_arbitrary_bytes_never_raise(data: bytes) -> None:
    assert isinstance(decode_control(data), ControlPacket | DropReason)


@given(packets(), st.integers(0, 51), st.integers(0, 255))
def test_any_single_byte_change_never_raises(pkt: ControlPacket, index: int, value: int) -> None:
    data = bytearray(encode_control(pkt))
    data[index % len(data)] = value
    assert isinstance(decode_control(bytes(data)), ControlPacket | DropReason)


def test_invalid_values_cannot_be_built() -> None:
    with pytest.raises(ValueError, match="detect_mult"):
        ControlPacket(State.UP, 256, 1)
    with pytest.raises(ValueError, match="my_discriminator"):
        ControlPacket(State.UP, 3, 1 << 32)
    with pytest.raises(ValueError, match="simple password"):
        SimplePassword(1, b"x" * 17)
    with pytest.raises(ValueError, match="digest"):
        KeyedAuth(AuthType.KEYED_SHA1, 1, 0, bytes(16))
