"""RawSocket handshake and framing (wamp_core._rawsocket), in memory."""

from __future__ import annotations

import ast
import itertools
import struct
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wamp_core._errors import LocalProtocolError, RemoteProtocolError
from wamp_core._rawsocket import (
    DEFAULT_RAWSOCKET_SERIALIZERS,
    RAWSOCKET_MAGIC,
    RawSocketClient,
    RawSocketConnection,
    RawSocketErrorCode,
    RawSocketEvent,
    RawSocketFrameType,
    RawSocketMessage,
    RawSocketOpened,
    RawSocketPing,
    RawSocketPong,
    RawSocketProtocolError,
    RawSocketRejected,
    RawSocketRouter,
    RawSocketSerializerId,
    RawSocketState,
    rawsocket_length_exponent,
    rawsocket_max_length,
)
from wamp_core._serializers import serializer_for_rawsocket

MIB16 = 1 << 24


# -- helpers (an encoder independent of the module under test) -------------------


def frame(frame_type: int, payload: bytes) -> bytes:
    """A frame header built by hand: RRRR XTTT + 24-bit big-endian length."""
    length = len(payload)
    first = frame_type | (0x08 if length == MIB16 else 0)
    return struct.pack(">I", (first << 24) | (length & 0xFFFFFF)) + payload


def header(first: int, length: int) -> bytes:
    return bytes([first]) + length.to_bytes(3, "big")


def request(exponent: int, serializer: int, reserved: bytes = b"\0\0") -> bytes:
    return bytes([RAWSOCKET_MAGIC, (exponent << 4) | serializer]) + reserved


def open_router(**kwargs: object) -> RawSocketRouter:
    """A router that has accepted a JSON client announcing 16 MiB."""
    router = RawSocketRouter(**kwargs)  # type: ignore[arg-type]
    router.receive_data(request(15, 1))
    router.data_to_send()
    return router


def open_client(router_exponent: int = 15, **kwargs: object) -> RawSocketClient:
    """A JSON client whose handshake a router announcing ``router_exponent`` accepted."""
    client = RawSocketClient(1, **kwargs)  # type: ignore[arg-type]
    client.data_to_send()
    client.receive_data(request(router_exponent, 1))
    return client


def pair(
    client_exponent: int = 15, router_exponent: int = 15
) -> tuple[RawSocketClient, RawSocketRouter]:
    """A client and a router that completed the handshake through memory."""
    client = RawSocketClient(2, max_length_exponent=client_exponent)
    router = RawSocketRouter(max_length_exponent=router_exponent)
    assert router.receive_data(client.data_to_send()) == [
        RawSocketOpened(2, rawsocket_max_length(client_exponent))
    ]
    assert client.receive_data(router.data_to_send()) == [
        RawSocketOpened(2, rawsocket_max_length(router_exponent))
    ]
    return client, router


def transfer(source: RawSocketConnection, dest: RawSocketConnection) -> list[RawSocketEvent]:
    return dest.receive_data(source.data_to_send())


def assert_state(conn: RawSocketConnection, state: RawSocketState) -> None:
    """Out of line, so that mypy does not narrow ``conn.state`` at the call site."""
    assert conn.state is state


def assert_failed(conn: RawSocketConnection) -> None:
    """After a failure: state ERROR, receiving raises again, sending is refused."""
    assert conn.state is RawSocketState.ERROR
    with pytest.raises(RawSocketProtocolError, match="already failed"):
        conn.receive_data(b"\0\0\0\0")
    with pytest.raises(LocalProtocolError):
        conn.send_message(b"x")
    with pytest.raises(LocalProtocolError):
        conn.send_ping()


# -- constants and length helpers ---------------------------------------------------


def test_constants() -> None:
    assert RAWSOCKET_MAGIC == 0x7F
    assert [int(s) for s in RawSocketSerializerId] == [1, 2, 3, 4, 5]
    assert {code.name: int(code) for code in RawSocketErrorCode} == {
        "SERIALIZER_UNSUPPORTED": 1,
        "MAX_LENGTH_UNACCEPTABLE": 2,
        "RESERVED_BITS_USED": 3,
        "MAX_CONNECTIONS": 4,
    }
    assert {kind.name: int(kind) for kind in RawSocketFrameType} == {
        "MESSAGE": 0,
        "PING": 1,
        "PONG": 2,
    }


def test_default_serializers_are_implemented() -> None:
    for serializer_id in DEFAULT_RAWSOCKET_SERIALIZERS:
        serializer = serializer_for_rawsocket(serializer_id)
        assert serializer is not None
        assert serializer.rawsocket_id == serializer_id


def test_length_exponent_conversion() -> None:
    assert rawsocket_max_length(0) == 512
    assert rawsocket_max_length(15) == MIB16
    assert rawsocket_length_exponent(512) == 0
    assert rawsocket_length_exponent(MIB16) == 15
    for exponent in range(16):
        assert rawsocket_length_exponent(rawsocket_max_length(exponent)) == exponent
    # rounds down, caps at 15
    assert rawsocket_length_exponent(1023) == 0
    assert rawsocket_length_exponent(MIB16 - 1) == 14
    assert rawsocket_length_exponent(1 << 30) == 15


@pytest.mark.parametrize("exponent", [-1, 16])
def test_length_exponent_out_of_range(exponent: int) -> None:
    with pytest.raises(ValueError, match=r"0\.\.15"):
        rawsocket_max_length(exponent)


def test_length_below_minimum() -> None:
    with pytest.raises(ValueError, match="at least 512"):
        rawsocket_length_exponent(511)


# -- client handshake ------------------------------------------------------------------


def test_client_sends_handshake_on_creation() -> None:
    client = RawSocketClient(RawSocketSerializerId.JSON)
    assert client.state is RawSocketState.HANDSHAKE
    assert client.serializer_id == 1
    assert client.max_receive_length == MIB16
    assert client.peer_max_length is None
    assert client.data_to_send() == b"\x7f\xf1\x00\x00"
    assert client.data_to_send() == b""
    small = RawSocketClient(RawSocketSerializerId.CBOR, max_length_exponent=0)
    assert small.data_to_send() == b"\x7f\x03\x00\x00"
    assert small.max_receive_length == 512


@pytest.mark.parametrize("serializer_id", [0, 16, -1])
def test_client_rejects_bad_serializer_argument(serializer_id: int) -> None:
    with pytest.raises(ValueError, match="serializer id"):
        RawSocketClient(serializer_id)


def test_client_rejects_bad_exponent_argument() -> None:
    with pytest.raises(ValueError, match=r"0\.\.15"):
        RawSocketClient(1, max_length_exponent=16)


def test_client_accepted() -> None:
    client = RawSocketClient(2, max_length_exponent=3)
    client.data_to_send()
    assert client.receive_data(b"\x7f\x52\x00\x00") == [RawSocketOpened(2, 1 << 14)]
    assert client.state is RawSocketState.OPEN
    assert client.peer_max_length == 1 << 14
    assert client.serializer_id == 2
    assert client.data_to_send() == b""


@pytest.mark.parametrize("code", range(1, 16))
def test_client_sees_every_error_code(code: int) -> None:
    client = RawSocketClient(1)
    client.data_to_send()
    with pytest.raises(RawSocketRejected, match=f"error code {code} ") as info:
        client.receive_data(bytes([0x7F, code << 4, 0, 0]))
    assert info.value.code == code
    assert isinstance(info.value, RemoteProtocolError)
    if code <= 4:
        assert isinstance(info.value.code, RawSocketErrorCode)
        assert RawSocketErrorCode(code).name in info.value.message
    else:
        assert "reserved" in info.value.message
    assert_failed(client)
    assert client.data_to_send() == b""


@pytest.mark.parametrize(
    ("code", "text"),
    [
        (RawSocketErrorCode.SERIALIZER_UNSUPPORTED, "serializer unsupported"),
        (RawSocketErrorCode.MAX_LENGTH_UNACCEPTABLE, "length unacceptable"),
        (RawSocketErrorCode.RESERVED_BITS_USED, "reserved bits"),
        (RawSocketErrorCode.MAX_CONNECTIONS, "maximum connection count"),
    ],
)
def test_client_error_messages_are_clear(code: RawSocketErrorCode, text: str) -> None:
    client = RawSocketClient(1)
    with pytest.raises(RawSocketRejected, match=text):
        client.receive_data(bytes([0x7F, code << 4, 0, 0]))


def test_repeated_error_keeps_the_class_and_code() -> None:
    client = RawSocketClient(1)
    with pytest.raises(RawSocketRejected):
        client.receive_data(b"\x7f\x40\x00\x00")
    with pytest.raises(RawSocketRejected, match="already failed") as info:
        client.receive_data(b"")
    assert info.value.code == RawSocketErrorCode.MAX_CONNECTIONS


def test_client_error_code_zero_is_a_protocol_error() -> None:
    client = RawSocketClient(1)
    with pytest.raises(RawSocketProtocolError, match="illegal code 0") as info:
        client.receive_data(b"\x7f\x00\x00\x00")
    assert not isinstance(info.value, RawSocketRejected)
    assert info.value.code is None
    assert_failed(client)


@pytest.mark.parametrize(
    ("reply", "match"),
    [
        (b"\x7f\xf2\x00\x00", "echoed serializer 2, not the requested 1"),
        (b"\x7f\xf1\x00\x01", "reserved bytes"),
        (b"\x7f\xf1\x01\x00", "reserved bytes"),
        (b"\x7f\x10\x00\x01", "reserved bytes"),
        (b"\x7e\xf1\x00\x00", "first byte is 0x7e"),
    ],
)
def test_client_refuses_bad_reply(reply: bytes, match: str) -> None:
    client = RawSocketClient(1)
    with pytest.raises(RawSocketProtocolError, match=match) as info:
        client.receive_data(reply)
    assert info.value.code is None
    assert_failed(client)


def test_client_cannot_send_before_handshake() -> None:
    client = RawSocketClient(1)
    with pytest.raises(LocalProtocolError, match="HANDSHAKE"):
        client.send_message(b"[1]")
    with pytest.raises(LocalProtocolError):
        client.send_ping(b"")
    with pytest.raises(LocalProtocolError):
        client.send_pong(b"")
    assert client.data_to_send() == b"\x7f\xf1\x00\x00"


# -- router handshake ---------------------------------------------------------------


def test_router_accepts() -> None:
    router = RawSocketRouter(max_length_exponent=4)
    assert router.state is RawSocketState.HANDSHAKE
    assert router.serializer_id is None
    assert router.peer_max_length is None
    assert router.max_receive_length == 1 << 13
    assert router.serializers == DEFAULT_RAWSOCKET_SERIALIZERS
    assert router.data_to_send() == b""
    assert router.receive_data(b"\x7f\x23\x00\x00") == [RawSocketOpened(3, 2048)]
    assert router.data_to_send() == b"\x7f\x43\x00\x00"
    assert_state(router, RawSocketState.OPEN)
    assert router.serializer_id == 3
    assert router.peer_max_length == 2048


@pytest.mark.parametrize("serializer_id", [0, 4, *range(6, 16)])
def test_router_rejects_unsupported_serializer(serializer_id: int) -> None:
    router = RawSocketRouter()
    with pytest.raises(RawSocketProtocolError, match=f"serializer {serializer_id} is") as info:
        router.receive_data(request(15, serializer_id))
    assert info.value.code == RawSocketErrorCode.SERIALIZER_UNSUPPORTED
    assert router.data_to_send() == b"\x7f\x10\x00\x00"
    assert_failed(router)


def test_router_serializer_zero_is_illegal() -> None:
    router = RawSocketRouter(serializers=range(1, 16))
    with pytest.raises(RawSocketProtocolError, match="serializer 0 is illegal"):
        router.receive_data(request(0, 0))
    assert router.data_to_send() == b"\x7f\x10\x00\x00"


def test_router_configurable_serializers() -> None:
    router = RawSocketRouter(serializers=[RawSocketSerializerId.UBJSON, 9])
    assert router.serializers == {4, 9}
    assert router.receive_data(request(0, 9)) == [RawSocketOpened(9, 512)]
    assert router.data_to_send() == b"\x7f\xf9\x00\x00"
    router = RawSocketRouter(serializers=[4])
    with pytest.raises(RawSocketProtocolError, match="serializer 1 is not supported"):
        router.receive_data(request(0, 1))


@pytest.mark.parametrize("reserved", [b"\x00\x01", b"\x80\x00", b"\xff\xff"])
def test_router_rejects_reserved_bits(reserved: bytes) -> None:
    router = RawSocketRouter()
    with pytest.raises(RawSocketProtocolError, match="reserved bytes") as info:
        # a bad serializer too: the reserved bits are reported first
        router.receive_data(request(15, 0, reserved))
    assert info.value.code == RawSocketErrorCode.RESERVED_BITS_USED
    assert router.data_to_send() == b"\x7f\x30\x00\x00"
    assert_failed(router)


@pytest.mark.parametrize("data", [b"GET / HTTP/1.1\r\n", b"\x00", b"\xff\x11\x00\x00"])
def test_router_bad_magic_fails_at_first_byte(data: bytes) -> None:
    router = RawSocketRouter()
    with pytest.raises(RawSocketProtocolError, match="not a RawSocket handshake") as info:
        router.receive_data(data[:1])
    assert info.value.code is None
    assert router.data_to_send() == b""  # no RawSocket reply to a non-RawSocket peer
    assert_failed(router)


def test_router_min_client_length() -> None:
    router = RawSocketRouter(min_client_length_exponent=5)
    with pytest.raises(RawSocketProtocolError, match="at most 8192 bytes") as info:
        router.receive_data(request(4, 1))
    assert info.value.code == RawSocketErrorCode.MAX_LENGTH_UNACCEPTABLE
    assert router.data_to_send() == b"\x7f\x20\x00\x00"
    assert_failed(router)
    router = RawSocketRouter(min_client_length_exponent=5)
    assert router.receive_data(request(5, 1)) == [RawSocketOpened(1, 1 << 14)]


def test_router_reject_max_connections() -> None:
    router = RawSocketRouter()
    router.receive_data(b"\x7f")  # a partial request is discarded too
    router.reject(RawSocketErrorCode.MAX_CONNECTIONS)
    assert router.state is RawSocketState.REJECTED
    assert router.data_to_send() == b"\x7f\x40\x00\x00"
    # the client's request (and anything after it) is ignored
    assert router.receive_data(b"\xf1\x00\x00" + frame(0, b"[1]")) == []
    assert router.data_to_send() == b""
    with pytest.raises(LocalProtocolError, match="REJECTED"):
        router.send_message(b"x")
    with pytest.raises(LocalProtocolError, match="REJECTED"):
        router.reject(RawSocketErrorCode.MAX_CONNECTIONS)


def test_reject_reaches_client() -> None:
    client = RawSocketClient(1)
    router = RawSocketRouter()
    router.receive_data(client.data_to_send()[:2])
    router.reject(RawSocketErrorCode.MAX_CONNECTIONS)
    with pytest.raises(RawSocketRejected, match="MAX_CONNECTIONS") as info:
        transfer(router, client)
    assert info.value.code is RawSocketErrorCode.MAX_CONNECTIONS


@pytest.mark.parametrize("code", [0, 16, -1])
def test_reject_with_illegal_code(code: int) -> None:
    router = RawSocketRouter()
    with pytest.raises(LocalProtocolError, match=r"1\.\.15"):
        router.reject(code)
    assert router.state is RawSocketState.HANDSHAKE
    assert router.data_to_send() == b""


def test_reject_after_open_is_refused() -> None:
    router = open_router()
    with pytest.raises(LocalProtocolError, match="OPEN"):
        router.reject(RawSocketErrorCode.MAX_CONNECTIONS)
    assert router.data_to_send() == b""


def test_reject_with_reserved_code() -> None:
    router = RawSocketRouter()
    router.reject(9)
    client = RawSocketClient(1)
    with pytest.raises(RawSocketRejected, match="error code 9 \\(reserved\\)") as info:
        transfer(router, client)
    assert info.value.code == 9


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"max_length_exponent": 16}, r"0\.\.15"),
        ({"min_client_length_exponent": -1}, r"0\.\.15"),
        ({"serializers": []}, "non-empty"),
        ({"serializers": [1, 0]}, r"1\.\.15"),
        ({"serializers": [16]}, r"1\.\.15"),
    ],
)
def test_router_bad_arguments(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        RawSocketRouter(**kwargs)  # type: ignore[arg-type]


def test_handshake_byte_by_byte() -> None:
    router = RawSocketRouter()
    data = request(15, 2) + frame(0, b"hello")
    events: list[RawSocketEvent] = []
    for i in range(len(data)):
        events += router.receive_data(data[i : i + 1])
    assert events == [RawSocketOpened(2, MIB16), RawSocketMessage(b"hello")]


def test_empty_data_is_a_no_op() -> None:
    router = RawSocketRouter()
    assert router.receive_data(b"") == []
    assert router.state is RawSocketState.HANDSHAKE
    router.receive_data(b"\x7f\x01")
    assert router.receive_data(b"") == []
    assert router.receive_data(bytearray(b"\x00\x00")) == [RawSocketOpened(1, 512)]


# -- a client and a router together -----------------------------------------------------


def test_exchange_messages_both_ways() -> None:
    client, router = pair(client_exponent=2, router_exponent=3)
    assert client.peer_max_length == 4096
    assert router.peer_max_length == 2048
    client.send_message(b'[1,"realm1",{}]')
    client.send_message(b"")
    assert transfer(client, router) == [
        RawSocketMessage(b'[1,"realm1",{}]'),
        RawSocketMessage(b""),
    ]
    router.send_message(b"[2,1,{}]")
    router.send_message(b"x" * 2048)
    assert transfer(router, client) == [
        RawSocketMessage(b"[2,1,{}]"),
        RawSocketMessage(b"x" * 2048),
    ]
    assert client.data_to_send() == router.data_to_send() == b""


def test_message_frame_bytes() -> None:
    client, _ = pair()
    client.send_message(b"abc")
    assert client.data_to_send() == b"\x00\x00\x00\x03abc"


def test_bytearray_payload_is_copied() -> None:
    client, router = pair()
    payload = bytearray(b"abc")
    client.send_message(payload)  # type: ignore[arg-type]
    payload[0] = ord("X")
    assert transfer(client, router) == [RawSocketMessage(b"abc")]


def test_many_small_frames_in_one_chunk() -> None:
    client, router = pair()
    for i in range(5000):
        client.send_message(str(i).encode())
    events = transfer(client, router)
    assert events == [RawSocketMessage(str(i).encode()) for i in range(5000)]


def test_handshake_and_frames_in_one_chunk() -> None:
    client = RawSocketClient(1)
    data = request(15, 1) + frame(0, b"a") + frame(1, b"p") + frame(2, b"q")
    assert client.receive_data(data) == [
        RawSocketOpened(1, MIB16),
        RawSocketMessage(b"a"),
        RawSocketPing(b"p"),
        RawSocketPong(b"q"),
    ]
    client.data_to_send()  # the handshake request
    router = RawSocketRouter()
    assert router.receive_data(request(15, 1) + frame(1, b"p")) == [
        RawSocketOpened(1, MIB16),
        RawSocketPing(b"p"),
    ]
    assert router.data_to_send() == b"\x7f\xf1\x00\x00" + frame(2, b"p")


# -- PING / PONG -------------------------------------------------------------------------


@pytest.mark.parametrize("payload", [b"", b"ping!", bytes(range(256))])
def test_ping_answered_with_one_pong(payload: bytes) -> None:
    client, router = pair()
    client.send_ping(payload)
    assert client.data_to_send() == frame(1, payload)
    client.send_ping(payload)
    assert router.receive_data(frame(1, payload)) == [RawSocketPing(payload)]
    assert router.data_to_send() == frame(2, payload)
    assert transfer(client, router) == [RawSocketPing(payload)]
    assert transfer(router, client) == [RawSocketPong(payload)]
    assert client.data_to_send() == b""  # a PONG is not answered


def test_each_ping_gets_exactly_one_pong_in_order() -> None:
    client, router = pair()
    for i in range(3):
        client.send_ping(bytes([i]))
    assert transfer(client, router) == [RawSocketPing(bytes([i])) for i in range(3)]
    assert router.data_to_send() == b"".join(frame(2, bytes([i])) for i in range(3))


def test_unsolicited_pong() -> None:
    client, router = pair()
    router.send_pong()
    router.send_pong(b"x")
    assert router.data_to_send() == frame(2, b"") + frame(2, b"x")
    router.send_pong(b"")
    assert transfer(router, client) == [RawSocketPong(b"")]


def test_ping_larger_than_the_peers_own_limit_is_refused() -> None:
    # The router accepts 16 MiB but the client only 512 bytes: its PING of
    # 513 bytes could not be answered within its own limit.
    router = RawSocketRouter()
    router.receive_data(request(0, 1))
    with pytest.raises(RawSocketProtocolError, match="513-byte PING"):
        router.receive_data(header(0x01, 513))
    assert_failed(router)
    router = RawSocketRouter()
    router.receive_data(request(0, 1))
    assert router.receive_data(frame(1, b"p" * 512)) == [RawSocketPing(b"p" * 512)]


# -- the 25th length bit ------------------------------------------------------------------


def test_25th_length_bit_message() -> None:
    client, router = pair(client_exponent=15, router_exponent=15)
    payload = b"\xab" * MIB16
    client.send_message(payload)
    data = client.data_to_send()
    assert data[:4] == b"\x08\x00\x00\x00"
    assert len(data) == MIB16 + 4
    assert router.receive_data(data) == [RawSocketMessage(payload)]
    router.send_ping(payload)
    data = router.data_to_send()
    assert data[:4] == b"\x09\x00\x00\x00"
    assert client.receive_data(data) == [RawSocketPing(payload)]
    assert client.data_to_send()[:4] == b"\x0a\x00\x00\x00"


def test_largest_length_without_x_bit() -> None:
    client, _ = pair()
    client.send_message(b"\0" * (MIB16 - 1))
    assert client.data_to_send()[:4] == b"\x00\xff\xff\xff"


@pytest.mark.parametrize("first", [0x08, 0x09, 0x0A])
def test_x_bit_with_nonzero_length_refused(first: int) -> None:
    router = open_router()
    with pytest.raises(RawSocketProtocolError, match="25th length bit"):
        router.receive_data(header(first, 1))
    assert_failed(router)


def test_x_bit_over_a_smaller_limit_refused() -> None:
    router = open_router(max_length_exponent=14)
    with pytest.raises(RawSocketProtocolError, match=f"{MIB16}-byte frame"):
        router.receive_data(header(0x08, 0))


# -- maximum lengths ---------------------------------------------------------------------


@pytest.mark.parametrize("first", [0x00, 0x01, 0x02])
def test_receiving_more_than_our_max_fails_on_the_header(first: int) -> None:
    router = open_router(max_length_exponent=0)
    assert router.max_receive_length == 512
    # only the header: the payload has not arrived and never needs to
    with pytest.raises(RawSocketProtocolError, match="513-byte frame; our maximum is 512") as info:
        router.receive_data(header(first, 513))
    assert info.value.code is None
    assert_failed(router)


def test_oversized_header_after_good_frames_in_one_chunk() -> None:
    client = open_client(max_length_exponent=0)
    data = frame(0, b"ok") + header(0x00, 1000)
    with pytest.raises(RawSocketProtocolError, match="1000-byte frame"):
        client.receive_data(data)
    assert_failed(client)


def test_receiving_exactly_our_max() -> None:
    router = open_router(max_length_exponent=0)
    assert router.receive_data(frame(0, b"m" * 512)) == [RawSocketMessage(b"m" * 512)]


def test_sending_more_than_the_peers_max_is_refused() -> None:
    client, router = pair(client_exponent=0, router_exponent=1)
    with pytest.raises(LocalProtocolError, match="1025-byte payload exceeds the router's"):
        client.send_message(b"x" * 1025)
    with pytest.raises(LocalProtocolError, match="513-byte payload exceeds the client's"):
        router.send_message(b"x" * 513)
    with pytest.raises(LocalProtocolError):
        router.send_ping(b"x" * 513)
    with pytest.raises(LocalProtocolError):
        router.send_pong(b"x" * 513)
    assert client.data_to_send() == router.data_to_send() == b""
    assert client.state is router.state is RawSocketState.OPEN
    client.send_message(b"x" * 1024)
    router.send_message(b"x" * 512)
    assert transfer(client, router) == [RawSocketMessage(b"x" * 1024)]
    assert transfer(router, client) == [RawSocketMessage(b"x" * 512)]


# -- reserved header bits ----------------------------------------------------------------


@pytest.mark.parametrize("frame_type", range(3, 8))
def test_reserved_frame_types_refused(frame_type: int) -> None:
    router = open_router()
    with pytest.raises(RawSocketProtocolError, match=f"reserved frame type {frame_type}"):
        router.receive_data(header(frame_type, 0))
    assert_failed(router)


@pytest.mark.parametrize("bits", [0x10, 0x20, 0x40, 0x80, 0xF0])
def test_reserved_header_bits_refused(bits: int) -> None:
    client = open_client()
    with pytest.raises(RawSocketProtocolError, match="reserved bits"):
        client.receive_data(header(bits, 0))
    assert_failed(client)


# -- chunking invariance ------------------------------------------------------------------

frames_strategy = st.lists(
    st.tuples(st.sampled_from([0, 1, 2]), st.binary(max_size=600)), max_size=12
)


def expected_events(frames: list[tuple[int, bytes]]) -> list[RawSocketEvent]:
    kinds = {0: RawSocketMessage, 1: RawSocketPing, 2: RawSocketPong}
    return [kinds[t](p) for t, p in frames]


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    bounds = [0, *points, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(bounds)]


@pytest.mark.parametrize("role", ["router", "client"])
@settings(max_examples=150, deadline=None)
@given(frames=frames_strategy, cuts=st.lists(st.integers(min_value=0), max_size=30))
def test_chunking_invariance(role: str, frames: list[tuple[int, bytes]], cuts: list[int]) -> None:
    stream = request(15, 2) + b"".join(frame(t, p) for t, p in frames)
    expected = [RawSocketOpened(2, MIB16), *expected_events(frames)]
    pongs = b"".join(frame(2, p) for t, p in frames if t == 1)

    def make() -> RawSocketConnection:
        if role == "router":
            return RawSocketRouter()
        conn = RawSocketClient(2)
        conn.data_to_send()
        return conn

    whole = make()
    assert whole.receive_data(stream) == expected
    chunked = make()
    events: list[RawSocketEvent] = []
    for chunk in split(stream, cuts):
        events += chunked.receive_data(chunk)
    assert events == expected
    handshake = b"\x7f\xf2\x00\x00" if role == "router" else b""
    assert whole.data_to_send() == chunked.data_to_send() == handshake + pongs


# -- fuzzing ------------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=64), cuts=st.lists(st.integers(min_value=0), max_size=5))
def test_fuzz_router_raises_only_remote_protocol_error(data: bytes, cuts: list[int]) -> None:
    router = RawSocketRouter(max_length_exponent=0)
    try:
        for chunk in split(data, cuts):
            router.receive_data(chunk)
    except RemoteProtocolError:
        assert router.state is RawSocketState.ERROR


@pytest.mark.parametrize("role", ["router", "client"])
@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=64))
def test_fuzz_frames_raise_only_remote_protocol_error(role: str, data: bytes) -> None:
    conn = (
        open_router(max_length_exponent=0)
        if role == "router"
        else open_client(0, max_length_exponent=0)
    )
    try:
        conn.receive_data(data)
    except RemoteProtocolError:
        assert conn.state is RawSocketState.ERROR
    else:
        assert conn.state is RawSocketState.OPEN


# -- purity --------------------------------------------------------------------------------


def test_module_is_sans_io() -> None:
    import wamp_core._rawsocket as module

    tree = ast.parse(Path(module.__file__).read_text())
    imported: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            imported.add(node.module.split(".")[0])
    forbidden = {"trio", "asyncio", "socket", "ssl", "threading", "selectors", "time"}
    assert not imported & forbidden


def test_send_messages_frames_each_payload_as_send_message_does() -> None:
    client, router = pair()
    payloads: list[bytes] = [b"", b"[1]", bytes(b"x" * 300), b"y" * MIB16]
    router.send_messages(payloads)
    assert router.data_to_send() == b"".join(frame(0, bytes(p)) for p in payloads)
    router.send_messages([])
    assert router.data_to_send() == b""
    events = client.receive_data(b"".join(frame(0, bytes(p)) for p in payloads[:3]))
    assert [e.payload for e in events] == [b"", b"[1]", b"x" * 300]  # type: ignore[attr-defined]


def test_send_messages_queues_all_or_none() -> None:
    router = open_router()
    router.data_to_send()
    client = RawSocketClient(1)
    with pytest.raises(LocalProtocolError, match="RawSocket state HANDSHAKE"):
        client.send_messages([b"x"])
    small = open_client(router_exponent=0)  # the router takes 512 bytes at most
    with pytest.raises(LocalProtocolError, match="513-byte payload exceeds the router's maximum"):
        small.send_messages([b"ok", b"z" * 513])
    assert small.data_to_send() == b""  # the first one was not queued either
    small.send_messages([b"z" * 512])
    assert small.data_to_send() == frame(0, b"z" * 512)
