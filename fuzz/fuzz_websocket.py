"""Fuzz target: the WebSocket server side of ``wamp_trio._websocket``.

The first byte chooses the mode:

* even: the server's own frame parser (``WebSocketTransport._parse``, which is
  synchronous) fed the rest, cut into pieces of a size from the second byte.
  At its first frame it does not handle it hands the input over to wsproto,
  which this target then drives the same way. The complete messages must be
  those wsproto alone finds in the same bytes.
* odd: the opening handshake, ``accept_websocket`` over an in-memory stream
  under a mock clock, the rest being the client's request. It must answer with
  an HTTP response or close, and never raise.
"""

from __future__ import annotations

import trio
import trio.testing
from _common import instrumented, main

with instrumented():
    from wsproto import ConnectionType
    from wsproto.connection import Connection
    from wsproto.events import CloseConnection, Message, TextMessage

    from wamp_core import get_serializer
    from wamp_trio._websocket import WebSocketTransport, accept_websocket


def reference(data: bytes) -> list[bytes]:
    connection = Connection(ConnectionType.SERVER)
    connection.receive_data(data)
    found, partial = [], bytearray()
    for event in connection.events():
        if isinstance(event, CloseConnection):
            break
        if isinstance(event, Message):
            partial += event.data.encode() if isinstance(event, TextMessage) else event.data
            if event.message_finished:
                found.append(bytes(partial))
                partial = bytearray()
    return found


def ours(data: bytes, step: int) -> list[bytes]:
    """The messages the transport's parser finds, ``data`` fed ``step`` bytes at a time."""
    stream, _ = trio.testing.memory_stream_pair()
    transport = WebSocketTransport(
        stream,
        None,
        get_serializer("cbor"),
        max_message_size=1 << 24,
        close_timeout=1.0,
        info={},
    )
    found: list[bytes] = []
    for start in range(0, len(data), step):
        piece = data[start : start + step]
        if transport._fast:
            failure = transport._parse(piece, True)
            found += transport._messages
            transport._messages.clear()
            if failure is not None:  # an error the fast parser reports itself
                return found
            if transport._fast:
                continue
        else:
            transport._ws.receive_data(piece)
        # Handed over to wsproto (an invalid or a close frame): what it makes of it.
        for event in transport._ws.events():
            if isinstance(event, CloseConnection):
                return found
            if isinstance(event, Message):
                chunk = event.data.encode() if isinstance(event, TextMessage) else event.data
                transport._partial += chunk
                if event.message_finished:
                    found.append(bytes(transport._partial))
                    transport._partial = bytearray()
    return found


def frames_mode(data: bytes) -> None:
    step = data[0] % 64 + 1
    stream = data[1:]
    mine = ours(stream, step)
    expected = reference(stream)
    assert mine == expected, (mine, expected)


async def handshake(request: bytes) -> None:
    server, client = trio.testing.memory_stream_pair()
    await client.send_all(request)
    await client.send_eof()
    with trio.fail_after(30):
        transport = await accept_websocket(server, handshake_timeout=10.0)
        if transport is not None:
            await transport.aclose()
    response = bytearray()
    while chunk := await client.receive_some():
        response += chunk
    if response:
        assert response.startswith(b"HTTP/1.1 "), bytes(response[:40])


def handshake_mode(data: bytes) -> None:
    trio.run(handshake, data, clock=trio.testing.MockClock(autojump_threshold=0))


def test_one_input(data: bytes) -> None:
    if len(data) < 2:
        return
    if data[0] & 1:
        handshake_mode(data[1:])
    else:
        frames_mode(data[1:])


def _masked(opcode: int, payload: bytes, fin: bool = True) -> bytes:
    key = b"\x01\x02\x03\x04"
    head = bytes([(0x80 if fin else 0) | opcode])
    length = len(payload)
    if length < 126:
        head += bytes([0x80 | length])
    elif length < 65536:
        head += bytes([0x80 | 126]) + length.to_bytes(2, "big")
    else:
        head += bytes([0x80 | 127]) + length.to_bytes(8, "big")
    return head + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


REQUEST = (
    b"GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: MDEyMzQ1Njc4OWFiY2RlZg==\r\nSec-WebSocket-Version: 13\r\n"
    b"Sec-WebSocket-Protocol: wamp.2.json\r\n\r\n"
)
SEEDS = [
    b"\x00\x07" + _masked(1, b"[1,2]") + _masked(2, b"\x93\x01") + _masked(9, b"hi"),
    b"\x00\x01" + _masked(1, "é".encode()[:1], fin=False) + _masked(0, "é".encode()[1:]),
    b"\x00\x20" + _masked(2, b"x" * 300) + _masked(10, b"") + _masked(8, b"\x03\xe8"),
    b"\x00\x03" + _masked(2, b"y" * 70_000),
    b"\x01" + REQUEST,
    b"\x01" + REQUEST.replace(b"GET", b"POST"),
    b"\x01" + REQUEST.replace(b"Upgrade: websocket\r\n", b""),
    b"\x01" + REQUEST + _masked(1, b"[]"),
]

if __name__ == "__main__":
    main(test_one_input, SEEDS)
