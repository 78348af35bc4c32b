"""WebSocket transport (wamp_trio._websocket) over real loopback TCP sockets."""

from __future__ import annotations

import os
import struct
from collections import deque
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import pytest
import trio
import trio.testing
import trio_websocket
from wsproto import ConnectionType, WSConnection
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Event,
    Ping,
    Pong,
    Request,
    TextMessage,
)

from wamp_trio._transport import TransportClosed
from wamp_trio._websocket import (
    ALL_SUBPROTOCOLS,
    MAX_HEAD_SIZE,
    WebSocketHandshakeError,
    WebSocketTransport,
    accept_websocket,
    connect_websocket,
    http_response,
)

MiB = 1024 * 1024


# -- helpers ----------------------------------------------------------------------------


@asynccontextmanager
async def tcp_pair() -> AsyncIterator[tuple[trio.SocketStream, trio.SocketStream]]:
    """A connected (server, client) pair of loopback TCP streams, closed at the end."""
    (listener,) = await trio.open_tcp_listeners(0, host="127.0.0.1")
    async with listener:
        port = listener.socket.getsockname()[1]
        client = await trio.open_tcp_stream("127.0.0.1", port)
        server = await listener.accept()
    try:
        yield server, client
    finally:
        await trio.aclose_forcefully(server)
        await trio.aclose_forcefully(client)


async def close_both(*transports: WebSocketTransport) -> None:
    async with trio.open_nursery() as nursery:
        for transport in transports:
            nursery.start_soon(transport.aclose)


@asynccontextmanager
async def ws_pair(
    offers: Sequence[str] = ("wamp.2.json",),
    supported: Sequence[str] = ALL_SUBPROTOCOLS,
    **server_options: Any,
) -> AsyncIterator[tuple[WebSocketTransport, WebSocketTransport]]:
    """(server, client) transports made by accept_websocket and connect_websocket."""
    async with tcp_pair() as (server_stream, client_stream):
        accepted: list[WebSocketTransport | None] = []

        async def accept() -> None:
            accepted.append(
                await accept_websocket(
                    server_stream,
                    subprotocols=supported,
                    info={"peer": "test-peer"},
                    **server_options,
                )
            )

        async with trio.open_nursery() as nursery:
            nursery.start_soon(accept)
            client = await connect_websocket(client_stream, "127.0.0.1", "/ws", offers)
        server = accepted[0]
        assert server is not None
        try:
            yield server, client
        finally:
            await close_both(server, client)


class RawClient:
    """A bare wsproto client, to see and make frames on the wire."""

    def __init__(self, stream: trio.abc.Stream) -> None:
        self.stream = stream
        self.ws = WSConnection(ConnectionType.CLIENT)
        self.pending: deque[Event] = deque()

    async def handshake(self, subprotocols: Sequence[str], path: str = "/ws") -> AcceptConnection:
        request = Request(host="127.0.0.1", target=path, subprotocols=list(subprotocols))
        await self.stream.send_all(self.ws.send(request))
        event = await self.next_event()
        assert isinstance(event, AcceptConnection)
        return event

    async def send(self, event: Event) -> None:
        await self.stream.send_all(self.ws.send(event))

    async def next_event(self) -> Event | None:
        """The next event, or None at the end of the stream."""
        while not self.pending:
            self.pending.extend(self.ws.events())
            if self.pending:
                break
            data = await self.stream.receive_some()
            if not data:
                return None
            self.ws.receive_data(bytes(data))
        return self.pending.popleft()


@asynccontextmanager
async def raw_pair(
    offers: Sequence[str], **server_options: Any
) -> AsyncIterator[tuple[WebSocketTransport, RawClient]]:
    """(server transport, raw wsproto client)."""
    async with tcp_pair() as (server_stream, client_stream):
        raw = RawClient(client_stream)
        accepted: list[WebSocketTransport | None] = []

        async def accept() -> None:
            accepted.append(await accept_websocket(server_stream, **server_options))

        async with trio.open_nursery() as nursery:
            nursery.start_soon(accept)
            await raw.handshake(offers)
        server = accepted[0]
        assert server is not None
        try:
            yield server, raw
        finally:
            await raw.stream.aclose()
            await server.aclose()


def masked_frame(opcode: int, payload: bytes, *, fin: bool = True, mask: bool = True) -> bytes:
    """One client frame built by hand (for input wsproto would refuse to produce)."""
    head = bytes([(0x80 if fin else 0) | opcode])
    length = len(payload)
    bit = 0x80 if mask else 0
    if length < 126:
        head += bytes([bit | length])
    elif length < 1 << 16:
        head += bytes([bit | 126]) + struct.pack("!H", length)
    else:
        head += bytes([bit | 127]) + struct.pack("!Q", length)
    if not mask:
        return head + payload
    key = os.urandom(4)
    return head + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


async def read_all(stream: trio.abc.ReceiveStream) -> bytes:
    data = bytearray()
    while True:
        chunk = await stream.receive_some()
        if not chunk:
            return bytes(data)
        data += chunk


def parse_response(data: bytes) -> tuple[int, dict[str, str], bytes]:
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return status, headers, body


async def http_exchange(
    request: bytes, **server_options: Any
) -> tuple[WebSocketTransport | None, int, dict[str, str], bytes]:
    """Send raw bytes to accept_websocket; its result and the HTTP response."""
    async with tcp_pair() as (server_stream, client_stream):
        accepted: list[WebSocketTransport | None] = []

        async def accept() -> None:
            accepted.append(await accept_websocket(server_stream, **server_options))

        async with trio.open_nursery() as nursery:
            nursery.start_soon(accept)
            await client_stream.send_all(request)
            response = await read_all(client_stream)
            await client_stream.aclose()
    status, headers, body = parse_response(response)
    return accepted[0], status, headers, body


def upgrade_request(
    protocols: str | None = "wamp.2.json", *, extra: str = "", method: str = "GET"
) -> bytes:
    lines = [
        f"{method} /ws HTTP/1.1",
        "Host: 127.0.0.1",
        "Upgrade: websocket",
        "Connection: Upgrade",
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
        "Sec-WebSocket-Version: 13",
    ]
    if protocols is not None:
        lines.append(f"Sec-WebSocket-Protocol: {protocols}")
    return ("\r\n".join(lines) + "\r\n" + extra + "\r\n").encode()


def sample_messages(binary: bool) -> list[bytes]:
    if binary:
        return [b"\x93\x01\xa6realm1\x80", b"", bytes(range(256)) * 4096]
    return [
        '[1,"realm1",{"note":"ü€😀"}]'.encode(),
        b"",
        b'["' + b"x" * MiB + b'"]',
    ]


# -- handshake and messages -------------------------------------------------------------


@pytest.mark.parametrize("subprotocol", ALL_SUBPROTOCOLS)
async def test_messages_both_ways_for_every_subprotocol(subprotocol: str) -> None:
    async with ws_pair([subprotocol]) as (server, client):
        assert server.serializer.subprotocol == subprotocol
        assert client.serializer.subprotocol == subprotocol
        assert server.info["type"] == "websocket"
        assert server.info["protocol"] == subprotocol
        assert server.info["peer"] == "test-peer"
        assert server.info["path"] == "/ws"
        assert server.info["http_headers"]["host"] == "127.0.0.1"
        assert client.info["protocol"] == subprotocol
        for message in sample_messages(server.serializer.binary):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(client.send, message)
                assert await server.receive() == message
            async with trio.open_nursery() as nursery:
                nursery.start_soon(server.send, message)
                assert await client.receive() == message


async def test_the_client_preference_order_decides() -> None:
    offers = ["wamp.2.cbor", "wamp.2.json"]
    async with ws_pair(offers, supported=["wamp.2.json", "wamp.2.cbor"]) as (server, client):
        assert server.serializer.subprotocol == client.serializer.subprotocol == "wamp.2.cbor"
    offers = ["com.example.other", "wamp.2.msgpack.batched", "wamp.2.json"]
    async with raw_pair(offers, subprotocols=["json", "msgpack.batched"]) as (server, _):
        assert server.serializer.subprotocol == "wamp.2.msgpack.batched"


async def test_unknown_subprotocol_names_are_refused_locally() -> None:
    async with tcp_pair() as (_, client_stream):
        with pytest.raises(ValueError, match="unknown WAMP subprotocol"):
            await connect_websocket(client_stream, "h", "/ws", ["wamp.2.xml"])
        with pytest.raises(ValueError, match="no WAMP subprotocol"):
            await connect_websocket(client_stream, "h", "/ws", [])


@pytest.mark.parametrize(
    ("subprotocol", "kind"),
    [("wamp.2.json", TextMessage), ("wamp.2.json.batched", TextMessage)]
    + [(p, BytesMessage) for p in ALL_SUBPROTOCOLS if "json" not in p],
)
async def test_json_travels_in_text_frames_the_others_in_binary(
    subprotocol: str, kind: type[Event]
) -> None:
    async with raw_pair([subprotocol]) as (server, raw):
        await server.send(b'["ping"]')
        event = await raw.next_event()
        assert isinstance(event, kind)
        assert isinstance(event, (TextMessage, BytesMessage))
        payload = event.data
        assert (payload.encode() if isinstance(payload, str) else payload) == b'["ping"]'


async def test_a_frame_of_the_other_type_is_accepted() -> None:
    # Decision: be liberal; the serializer judges the bytes.
    async with raw_pair(["wamp.2.json"]) as (server, raw):
        await raw.send(BytesMessage(data=b"[1]"))
        assert await server.receive() == b"[1]"
    async with raw_pair(["wamp.2.cbor"]) as (server, raw):
        await raw.send(TextMessage(data="é"))
        assert await server.receive() == "é".encode()


async def test_fragments_are_reassembled_and_pings_answered_between_them() -> None:
    async with raw_pair(["wamp.2.json"]) as (server, raw):
        async with trio.open_nursery() as nursery:
            received: list[bytes] = []

            async def receive() -> None:
                received.append(await server.receive())

            nursery.start_soon(receive)
            await raw.send(TextMessage(data="[1,", message_finished=False))
            await raw.send(Ping(payload=b"between"))
            assert await raw.next_event() == Pong(payload=b"between")
            await raw.send(TextMessage(data='"é"', message_finished=False))
            await raw.send(TextMessage(data="]", message_finished=True))
        assert received == ['[1,"é"]'.encode()]


async def test_ping_is_answered_while_receiving() -> None:
    async with raw_pair(["wamp.2.msgpack"]) as (server, raw), trio.open_nursery() as nursery:
        nursery.start_soon(server.receive)
        await raw.send(Ping(payload=b"hello"))
        assert await raw.next_event() == Pong(payload=b"hello")
        await raw.send(BytesMessage(data=b"done"))


async def test_a_pong_waits_for_a_writer_holding_the_lock() -> None:
    # The reader never blocks on the send lock: the pong goes out with the next write.
    async with raw_pair(["wamp.2.msgpack"]) as (server, raw):
        await server._send_lock.acquire()
        await raw.send(Ping(payload=b"1"))
        await raw.send(BytesMessage(data=b"after the ping"))
        assert await server.receive() == b"after the ping"
        server._send_lock.release()
        await server.send(b"reply")
        assert await raw.next_event() == Pong(payload=b"1")
        assert await raw.next_event() == BytesMessage(data=b"reply")


async def test_data_sent_right_after_the_request_is_not_lost() -> None:
    async with tcp_pair() as (server_stream, client_stream):
        ws = WSConnection(ConnectionType.CLIENT)
        request = ws.send(Request(host="h", target="/ws", subprotocols=["wamp.2.cbor"]))
        await client_stream.send_all(request + masked_frame(0x2, b"early"))
        server = await accept_websocket(server_stream)
        assert server is not None
        assert await server.receive() == b"early"
        await trio.aclose_forcefully(server_stream)


async def test_messages_before_a_close_frame_are_delivered_first() -> None:
    async with raw_pair(["wamp.2.cbor"]) as (server, raw):
        data = raw.ws.send(BytesMessage(data=b"one")) + raw.ws.send(BytesMessage(data=b"two"))
        data += raw.ws.send(CloseConnection(code=1000, reason="bye"))
        await raw.stream.send_all(data)
        assert await server.receive() == b"one"
        assert await server.receive() == b"two"
        with pytest.raises(TransportClosed, match="1000 bye"):
            await server.receive()
        assert (server.close_code, server.close_reason) == (1000, "bye")
        assert await raw.next_event() == CloseConnection(code=1000, reason="bye")
        assert await raw.next_event() is None


async def test_concurrent_sends_do_not_interleave() -> None:
    async with ws_pair(["wamp.2.msgpack"]) as (server, client):
        senders, count, size = 8, 10, 100_000

        async def sender(tag: int) -> None:
            for i in range(count):
                await client.send(bytes([tag]) * size + i.to_bytes(2, "big"))

        received: list[bytes] = []
        async with trio.open_nursery() as nursery:
            for tag in range(senders):
                nursery.start_soon(sender, tag)
            for _ in range(senders * count):
                received.append(await server.receive())
        seen: dict[int, list[int]] = {tag: [] for tag in range(senders)}
        for message in received:
            assert len(message) == size + 2
            body, index = message[:size], int.from_bytes(message[size:], "big")
            assert body == bytes([body[0]]) * size
            seen[body[0]].append(index)
        assert all(indexes == list(range(count)) for indexes in seen.values())


async def test_json_send_must_be_utf8() -> None:
    async with ws_pair(["wamp.2.json"]) as (_, client):
        with pytest.raises(ValueError, match="UTF-8"):
            await client.send(b"\xff")


# -- limits and protocol errors ---------------------------------------------------------


async def test_an_oversize_message_closes_with_1009() -> None:
    async with ws_pair(["wamp.2.msgpack"], max_message_size=1024) as (server, client):
        await client.send(b"a" * 1024)  # exactly the limit is fine
        assert await server.receive() == b"a" * 1024
        async with trio.open_nursery() as nursery:

            async def client_side() -> None:
                await client.send(b"b" * 4096)
                with pytest.raises(TransportClosed, match="1009"):
                    await client.receive()

            nursery.start_soon(client_side)
            with pytest.raises(TransportClosed, match="1009"):
                await server.receive()
        assert server.close_code == client.close_code == 1009
        with pytest.raises(TransportClosed):
            await client.send(b"more")


async def test_an_oversize_fragmented_message_closes_with_1009() -> None:
    async with (
        raw_pair(["wamp.2.json"], max_message_size=10) as (server, raw),
        trio.open_nursery() as nursery,
    ):

        async def peer() -> None:
            await raw.send(TextMessage(data="123456", message_finished=False))
            await raw.send(TextMessage(data="789012", message_finished=True))
            event = await raw.next_event()
            assert isinstance(event, CloseConnection)
            assert event.code == 1009
            await raw.send(event.response())
            assert await raw.next_event() is None

        nursery.start_soon(peer)
        with pytest.raises(TransportClosed, match="1009"):
            await server.receive()


async def check_protocol_error(frame: bytes, code: int) -> None:
    """The server answers ``frame`` with a close frame ``code`` and ends."""
    async with raw_pair(["wamp.2.json"]) as (server, raw):
        async with trio.open_nursery() as nursery:

            async def peer() -> None:
                await raw.stream.send_all(frame)
                event = await raw.next_event()
                assert isinstance(event, CloseConnection)
                assert event.code == code
                # The server half-closed: its input can no longer be parsed.
                assert await raw.stream.receive_some() == b""
                await raw.stream.aclose()

            nursery.start_soon(peer)
            with pytest.raises(TransportClosed, match=str(code)):
                await server.receive()
        assert server.close_code == code


async def test_invalid_utf8_in_a_text_message_closes_with_1007() -> None:
    await check_protocol_error(masked_frame(0x1, b"\xff\xfe"), 1007)


async def test_an_unmasked_client_frame_closes_with_1002() -> None:
    await check_protocol_error(masked_frame(0x1, b"[]", mask=False), 1002)


async def test_a_lost_connection_is_1006() -> None:
    async with raw_pair(["wamp.2.json"]) as (server, raw):
        await raw.stream.aclose()
        with pytest.raises(TransportClosed, match="1006"):
            await server.receive()
        assert server.close_code == 1006
        with pytest.raises(TransportClosed):
            await server.send(b"[]")


# -- closing ----------------------------------------------------------------------------


async def test_close_started_by_the_client() -> None:
    async with ws_pair(["wamp.2.json"]) as (server, client):
        async with trio.open_nursery() as nursery:

            async def server_side() -> None:
                with pytest.raises(TransportClosed, match="1000"):
                    await server.receive()

            nursery.start_soon(server_side)
            await client.aclose()
        assert server.close_code == 1000
        assert client.close_code == 1000
        await client.aclose()  # idempotent
        with pytest.raises(TransportClosed, match="closed locally"):
            await client.receive()
        with pytest.raises(TransportClosed):
            await client.send(b"[]")
        with pytest.raises(TransportClosed):
            await server.send(b"[]")


async def test_close_started_by_the_server_while_the_client_is_not_reading() -> None:
    async with ws_pair(["wamp.2.cbor"]) as (server, client):
        await client.send(b"unread by the server")
        async with trio.open_nursery() as nursery:
            nursery.start_soon(server.aclose)
            with pytest.raises(TransportClosed, match="1000"):
                await client.receive()
        await server.aclose()


async def test_close_while_another_task_is_receiving() -> None:
    async with ws_pair(["wamp.2.cbor"]) as (server, client):
        async with trio.open_nursery() as nursery:

            async def receiver() -> None:
                with pytest.raises(TransportClosed):
                    await server.receive()

            async def peer() -> None:
                with pytest.raises(TransportClosed, match="1000"):
                    await client.receive()

            nursery.start_soon(receiver)
            nursery.start_soon(peer)
            await trio.testing.wait_all_tasks_blocked()
            await server.aclose()
        assert server.close_code == 1000


async def test_messages_arriving_while_closing_are_dropped() -> None:
    async with raw_pair(["wamp.2.cbor"]) as (server, raw):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(server.aclose)
            await raw.send(BytesMessage(data=b"late"))
            event = await raw.next_event()
            assert isinstance(event, CloseConnection)
            assert event.code == 1000
            await raw.send(event.response())
        with pytest.raises(TransportClosed, match="closed locally"):
            await server.receive()
        assert await raw.next_event() is None


async def test_close_gives_up_on_a_silent_peer(autojump_clock: trio.testing.MockClock) -> None:
    async with raw_pair(["wamp.2.json"], close_timeout=3) as (server, raw):
        start = trio.current_time()
        await server.aclose()
        assert trio.current_time() - start == pytest.approx(3)
        event = await raw.next_event()
        assert isinstance(event, CloseConnection)
        assert event.code == 1000
        assert await raw.next_event() is None


async def test_a_send_cancelled_half_way_breaks_the_transport() -> None:
    async with ws_pair(["wamp.2.msgpack"]) as (server, client):
        with trio.CancelScope() as scope:
            async with trio.open_nursery() as nursery:

                async def send_too_much() -> None:
                    await client.send(b"x" * (64 * MiB))  # more than the socket buffers

                nursery.start_soon(send_too_much)
                await trio.testing.wait_all_tasks_blocked()
                scope.cancel()
        with pytest.raises(TransportClosed):
            await client.send(b"y")
        with pytest.raises(TransportClosed):
            await server.receive()


async def test_a_send_cancelled_before_writing_changes_nothing() -> None:
    async with ws_pair(["wamp.2.msgpack"]) as (server, client):
        with trio.CancelScope() as scope:
            scope.cancel()
            await client.send(b"never")
        await client.send(b"sent")
        assert await server.receive() == b"sent"


# -- server handshake refusals ----------------------------------------------------------


async def test_no_known_subprotocol_is_refused_with_400() -> None:
    result, status, headers, body = await http_exchange(upgrade_request("mqtt, wamp.1.json"))
    assert result is None
    assert status == 400
    assert headers["connection"] == "close"
    assert headers["content-type"].startswith("text/plain")
    text = body.decode()
    assert "No supported WebSocket subprotocol" in text
    assert "mqtt, wamp.1.json" in text
    for subprotocol in ALL_SUBPROTOCOLS:
        assert subprotocol in text
    result, status, _, body = await http_exchange(upgrade_request(None))
    assert (result, status) == (None, 400)
    assert b"offered: none" in body


async def test_the_client_sees_the_refusal() -> None:
    async with tcp_pair() as (server_stream, client_stream):
        async with trio.open_nursery() as nursery:

            async def accept() -> None:
                assert await accept_websocket(server_stream, subprotocols=["json"]) is None

            nursery.start_soon(accept)
            with pytest.raises(WebSocketHandshakeError, match="400") as info:
                await connect_websocket(client_stream, "h", "/ws", ["wamp.2.cbor"])
        assert info.value.status_code == 400
        assert b"This WAMP router supports: wamp.2.json." in info.value.body


async def test_a_plain_http_request_to_the_websocket_path_gets_426() -> None:
    request = b"GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    result, status, headers, body = await http_exchange(request)
    assert (result, status) == (None, 426)
    assert headers["upgrade"] == "websocket"
    assert b"WAMP WebSocket endpoint" in body


async def test_other_bad_handshakes() -> None:
    _, status, headers, _ = await http_exchange(upgrade_request(method="POST"))
    assert (status, headers["allow"]) == (405, "GET")
    no_key = upgrade_request().replace(b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n", b"")
    _, status, _, body = await http_exchange(no_key)
    assert status == 400
    assert b"Sec-WebSocket-Key" in body
    old = upgrade_request().replace(b"Version: 13", b"Version: 8")
    _, status, headers, _ = await http_exchange(old)
    assert (status, headers["sec-websocket-version"]) == (426, "13")
    _, status, _, body = await http_exchange(b"GET /ws HTTP/1.1\r\nno colon\r\n\r\n")
    assert status == 400
    assert body.startswith(b"Bad request")
    big = upgrade_request(extra="X-Big: " + "a" * MAX_HEAD_SIZE + "\r\n")
    result, status, _, _ = await http_exchange(big)
    assert (result, status) == (None, 431)


async def test_a_client_leaving_mid_handshake_gives_none() -> None:
    async with tcp_pair() as (server_stream, client_stream):
        await client_stream.send_all(b"GET /ws HTTP/1.1\r\nHost: x\r\n")
        await client_stream.aclose()
        assert await accept_websocket(server_stream) is None


async def test_a_silent_client_times_out(autojump_clock: trio.testing.MockClock) -> None:
    async with tcp_pair() as (server_stream, client_stream):
        start = trio.current_time()
        assert await accept_websocket(server_stream, handshake_timeout=7) is None
        assert trio.current_time() - start == pytest.approx(7)
        assert await client_stream.receive_some() == b""


def test_http_response_format() -> None:
    response = http_response(404, "Not found: /x\n", [("X-A", "b")])
    assert response == (
        b"HTTP/1.1 404 Not Found\r\nContent-Type: text/plain; charset=utf-8\r\n"
        b"Content-Length: 14\r\nConnection: close\r\nX-A: b\r\n\r\nNot found: /x\n"
    )


# -- client handshake failures ----------------------------------------------------------


async def fake_server_answer(answer: bytes) -> BaseException:
    async with tcp_pair() as (server_stream, client_stream):
        async with trio.open_nursery() as nursery:

            async def server() -> None:
                await server_stream.receive_some()
                await server_stream.send_all(answer)
                await server_stream.aclose()

            nursery.start_soon(server)
            with pytest.raises((WebSocketHandshakeError, TransportClosed)) as info:
                await connect_websocket(client_stream, "h", "/ws", ["wamp.2.json"])
        return info.value


async def test_client_handshake_failures() -> None:
    error = await fake_server_answer(b"HTTP/1.1 404 Not Found\r\nContent-Length: 4\r\n\r\nnope")
    assert isinstance(error, WebSocketHandshakeError)
    assert (error.status_code, error.body) == (404, b"nope")
    assert str(error) == "the server refused the WebSocket handshake (404): nope"
    error = await fake_server_answer(b"HTTP/1.1 403 Forbidden\r\n\r\nno length")
    assert isinstance(error, WebSocketHandshakeError)
    assert (error.status_code, error.body) == (403, b"no length")
    error = await fake_server_answer(b"HTTP/1.1 503 Busy\r\nContent-Length: 0\r\n\r\n")
    assert isinstance(error, WebSocketHandshakeError)
    assert error.status_code == 503
    error = await fake_server_answer(b"HTTP/1.1 101 Switching\r\nUpgrade: websocket\r\n\r\n")
    assert isinstance(error, WebSocketHandshakeError)
    assert "invalid WebSocket handshake response" in str(error)
    error = await fake_server_answer(b"")
    assert isinstance(error, TransportClosed)


async def test_a_server_choosing_no_subprotocol_is_an_error() -> None:
    async with tcp_pair() as (server_stream, client_stream), trio.open_nursery() as nursery:

        async def server() -> None:
            ws = WSConnection(ConnectionType.SERVER)
            ws.receive_data(await server_stream.receive_some())
            assert isinstance(next(ws.events()), Request)
            await server_stream.send_all(ws.send(AcceptConnection()))

        nursery.start_soon(server)
        with pytest.raises(WebSocketHandshakeError, match="no subprotocol"):
            await connect_websocket(client_stream, "h", "/ws", ["wamp.2.json"])


# -- interoperability -------------------------------------------------------------------


async def test_trio_websocket_client_interop() -> None:
    (listener,) = await trio.open_tcp_listeners(0, host="127.0.0.1")
    port = listener.socket.getsockname()[1]
    async with trio.open_nursery() as nursery:

        async def serve_one() -> None:
            async with listener:
                stream = await listener.accept()
            transport = await accept_websocket(stream)
            assert transport is not None
            assert transport.serializer.subprotocol == "wamp.2.json"
            while True:
                try:
                    message = await transport.receive()
                except TransportClosed:
                    break
                await transport.send(message)
            await transport.aclose()

        nursery.start_soon(serve_one)
        async with trio_websocket.open_websocket(
            "127.0.0.1", port, "/ws", use_ssl=False, subprotocols=["wamp.2.json"]
        ) as ws:
            assert ws.subprotocol == "wamp.2.json"
            await ws.send_message('[1,"realm1",{"ü":1}]')
            assert await ws.get_message() == '[1,"realm1",{"ü":1}]'
            await ws.ping(b"abc")  # returns when our pong arrives
            await ws.send_message(b"binary is accepted too")
            assert await ws.get_message() == "binary is accepted too"


# -- several messages per write, messages already received ----------------------------


@pytest.mark.parametrize("subprotocol", ["wamp.2.json", "wamp.2.msgpack"])
async def test_send_many_frames_each_message_in_one_write(subprotocol: str) -> None:
    # The server frames data itself (no masking, every length encoding); the
    # client goes through wsproto: both must read the same messages back.
    sizes = [0, 5, 125, 126, 65535, 65536, 70000]
    messages = [b"[" + b"7" * max(0, size - 2) + b"]" if size else b"" for size in sizes]
    async with ws_pair([subprotocol]) as (server, client):
        with trio.fail_after(10):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(server.send_many, messages)
                assert [await client.receive() for _ in messages] == messages
            await client.send_many([b"[1]", b"[2]"])
            assert [await server.receive() for _ in range(2)] == [b"[1]", b"[2]"]


async def test_send_many_refuses_a_batch_with_invalid_utf8_and_sends_nothing() -> None:
    async with ws_pair(["wamp.2.json"]) as (server, client):
        with pytest.raises(ValueError, match="UTF-8"):
            await server.send_many([b"[1]", b"\xff"])
        with pytest.raises(ValueError, match="UTF-8"):
            await client.send_many([b"[1]", b"\xff"])
        await server.send(b"[2]")
        with trio.fail_after(10):
            assert await client.receive() == b"[2]"


async def test_send_many_on_a_closed_transport_raises() -> None:
    async with ws_pair(["wamp.2.cbor"]) as (server, client):
        await server.aclose()
        with pytest.raises(TransportClosed):
            await server.send_many([b"\x01", b"\x02"])
        with trio.fail_after(10), pytest.raises(TransportClosed):
            await client.receive()


async def test_send_many_writes_a_pending_pong_first() -> None:
    async with raw_pair(["wamp.2.msgpack"]) as (server, raw):
        server._control += server._ws.send(Ping(b"p").response())
        await server.send_many([b"\x01", b"\x02"])
        with trio.fail_after(10):
            assert isinstance(await raw.next_event(), Pong)
            first, second = await raw.next_event(), await raw.next_event()
        assert isinstance(first, BytesMessage)
        assert isinstance(second, BytesMessage)
        assert (first.data, second.data) == (b"\x01", b"\x02")


async def test_receive_buffered_gives_what_was_already_read() -> None:
    async with raw_pair(["wamp.2.json"]) as (server, raw):
        assert server.receive_buffered() is None
        await raw.stream.send_all(
            b"".join(masked_frame(1, payload) for payload in (b"[1]", b"[2]", b"[3]"))
        )
        with trio.fail_after(10):
            received = [await server.receive()]
            while len(received) < 3:
                data = server.receive_buffered()
                received.append(await server.receive() if data is None else data)
        assert received == [b"[1]", b"[2]", b"[3]"]
        assert server.receive_buffered() is None


# -- the server's own frame parser (data phase) ------------------------------------------


def frame_with_key(opcode: int, payload: bytes, key: bytes, *, fin: bool = True) -> bytes:
    head = masked_frame(opcode, b"", fin=fin)[:1]
    length = len(payload)
    if length < 126:
        head += bytes([0x80 | length])
    elif length < 1 << 16:
        head += bytes([0x80 | 126]) + struct.pack("!H", length)
    else:
        head += bytes([0x80 | 127]) + struct.pack("!Q", length)
    return head + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


@pytest.mark.parametrize("length", [0, 1, 3, 4, 5, 125, 126, 127, 65535, 65536, 70001])
@pytest.mark.parametrize("key", [b"\0\0\0\0", b"\xff\xff\xff\xff", b"\x01\x80\x7f\xfe"])
async def test_every_length_class_and_mask_is_unmasked(length: int, key: bytes) -> None:
    payload = bytes(range(256)) * (length // 256 + 1)
    payload = payload[:length]
    async with raw_pair(["wamp.2.msgpack"]) as (server, raw):
        await raw.stream.send_all(frame_with_key(0x2, payload, key))
        assert await server.receive() == payload


async def test_frames_split_anywhere_are_parsed() -> None:
    data = (
        masked_frame(0x1, b"[1]")
        + masked_frame(0x9, b"ping")
        + masked_frame(0x1, b"[" + b"2" * 300 + b"]")
        + masked_frame(0xA, b"pong")
        + masked_frame(0x2, b"x" * 70000)
        + masked_frame(0x1, b"[4,", fin=False)
        + masked_frame(0x0, b"5]")
    )
    expected = [b"[1]", b"[" + b"2" * 300 + b"]", b"x" * 70000, b"[4,5]"]
    async with raw_pair(["wamp.2.json"]) as (server, _raw):
        for step in (1, 2, 3, 7, 13, 1000):
            for start in range(0, len(data), step):
                assert server._parse(data[start : start + step], True) is None
            assert list(server._messages) == expected
            assert bytes(server._control) == b"\x8a\x04ping"
            assert server._fast
            server._messages.clear()
            server._control.clear()


async def test_fragmented_messages_with_control_frames_between() -> None:
    async with raw_pair(["wamp.2.msgpack"]) as (server, raw):
        await raw.stream.send_all(
            masked_frame(0x2, b"", fin=False)  # an empty first fragment
            + masked_frame(0x0, b"ab", fin=False)
            + masked_frame(0x9, b"p1")
            + masked_frame(0xA, b"ignored")
            + masked_frame(0x0, b"", fin=False)
            + masked_frame(0x0, b"cd")
            + masked_frame(0x1, b"[", fin=False)
            + masked_frame(0x0, b"]")
            + masked_frame(0x2, b"", fin=False)
            + masked_frame(0x0, b"")
        )
        assert await server.receive() == b"abcd"
        assert await raw.next_event() == Pong(payload=b"p1")
        assert await server.receive() == b"[]"
        assert await server.receive() == b""
        assert server._fast


async def test_invalid_utf8_in_a_fragmented_text_message_closes_with_1007() -> None:
    await check_protocol_error(
        masked_frame(0x1, b"[\xc3", fin=False) + masked_frame(0x0, b"\x28]"), 1007
    )


@pytest.mark.parametrize(
    "frame",
    [
        masked_frame(0x1, b"[", fin=False) + masked_frame(0x1, b"]"),  # not a continuation
        masked_frame(0x2, b"[", fin=False) + masked_frame(0x2, b"]"),
        masked_frame(0x0, b"[]"),  # a continuation of nothing
        bytes([0xC1]) + masked_frame(0x1, b"[]")[1:],  # a reserved bit
        masked_frame(0x3, b"[]"),  # a reserved opcode
        masked_frame(0xB, b""),
        masked_frame(0x9, b"x" * 126),  # a control frame over 125 bytes
        masked_frame(0x9, b"x", fin=False),  # a fragmented control frame
        b"\x82\xfe\x00\x05" + b"\0" * 4 + b"12345",  # 2 length bytes for a short frame
        b"\x82\xff" + struct.pack("!Q", 300) + b"\0" * 4 + b"x" * 300,  # 8 for a medium one
        b"\x82\xff" + struct.pack("!Q", 1 << 63) + b"\0" * 4,  # the top bit set
        masked_frame(0x2, b"[]", mask=False),
        masked_frame(0x1, b"[", fin=False) + masked_frame(0x2, b"x", mask=False),
    ],
)
async def test_protocol_errors_close_with_1002(frame: bytes) -> None:
    await check_protocol_error(frame, 1002)


async def test_close_frame_inside_a_fragmented_message() -> None:
    async with raw_pair(["wamp.2.json"]) as (server, raw):
        await raw.stream.send_all(
            masked_frame(0x1, b"[1]")
            + masked_frame(0x1, b"[2,", fin=False)
            + masked_frame(0x8, struct.pack("!H", 4000) + b"bye")
        )
        assert await server.receive() == b"[1]"
        with pytest.raises(TransportClosed, match="4000 bye"):
            await server.receive()
        event = await raw.next_event()
        assert isinstance(event, CloseConnection)
        assert (event.code, event.reason) == (4000, "bye")
        assert server.close_code == 4000


async def test_an_announced_oversize_frame_closes_with_1009_and_is_skipped() -> None:
    async with raw_pair(["wamp.2.msgpack"], max_message_size=100) as (server, raw):
        head = b"\x82\xff" + struct.pack("!Q", 100_000) + b"\0" * 4
        async with trio.open_nursery() as nursery:

            async def peer() -> None:
                await raw.stream.send_all(head + b"x" * 1000)
                event = await raw.next_event()
                assert isinstance(event, CloseConnection)
                assert event.code == 1009
                # The rest of the frame, a late message, a ping, then the answer.
                await raw.stream.send_all(b"y" * 99_000)
                await raw.stream.send_all(masked_frame(0x2, b"late") + masked_frame(0x9, b""))
                await raw.send(event.response())
                assert await raw.next_event() is None

            nursery.start_soon(peer)
            with pytest.raises(TransportClosed, match="1009"):
                await server.receive()
        assert server.close_code == 1009


async def test_the_peer_close_frame_already_read_ends_our_close() -> None:
    async with raw_pair(["wamp.2.msgpack"], max_message_size=10) as (server, raw):
        # An oversize message and the peer's close frame arrive in one read.
        await raw.stream.send_all(
            masked_frame(0x2, b"x" * 11)
            + masked_frame(0x2, b"dropped", fin=False)
            + masked_frame(0x8, struct.pack("!H", 1000))
        )
        with pytest.raises(TransportClosed, match="1009"):
            await server.receive()
        event = await raw.next_event()
        assert isinstance(event, CloseConnection)
        assert event.code == 1009


async def test_a_broken_fragment_while_closing_ends_the_close() -> None:
    async with raw_pair(["wamp.2.msgpack"]) as (server, raw):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(server.aclose)
            event = await raw.next_event()
            assert isinstance(event, CloseConnection)
            await raw.stream.send_all(
                masked_frame(0x2, b"late", fin=False)
                + masked_frame(0x9, b"unanswered")
                + masked_frame(0x2, b"not a continuation")
            )
            # The server gives up parsing: it half-closes and waits for our end.
            assert await raw.stream.receive_some() == b""
            await raw.stream.aclose()
        assert server.close_code == 1000


async def test_a_broken_fragment_already_read_when_closing() -> None:
    async with raw_pair(["wamp.2.msgpack"], max_message_size=10) as (server, raw):
        await raw.stream.send_all(
            masked_frame(0x2, b"x" * 11)
            + masked_frame(0x2, b"a", fin=False)
            + masked_frame(0x2, b"b")
        )
        async with trio.open_nursery() as nursery:

            async def peer() -> None:
                event = await raw.next_event()
                assert isinstance(event, CloseConnection)
                assert event.code == 1009
                assert await raw.stream.receive_some() == b""
                await raw.stream.aclose()

            nursery.start_soon(peer)
            with pytest.raises(TransportClosed, match="1009"):
                await server.receive()


async def test_the_client_role_keeps_wsproto_for_reading() -> None:
    async with ws_pair(["wamp.2.json"]) as (server, client):
        assert server._fast
        assert not client._fast
        await server.send(b"[1]")
        assert await client.receive() == b"[1]"


@pytest.mark.parametrize("length", [0, 1, 3, 4, 5, 125, 2047, 2048, 2049, 10_241, 1 << 20])
def test_unmasking_xors_with_the_repeated_key(length: int) -> None:
    from wamp_trio import _websocket

    data, mask = os.urandom(length), os.urandom(4)
    expected = bytes(byte ^ mask[i % 4] for i, byte in enumerate(data))
    for unmask in (_websocket._unmask, _websocket._unmask_python):
        assert unmask(data, mask) == expected
        assert unmask(memoryview(data), mask) == expected
        assert type(unmask(memoryview(data), mask)) is bytes
    assert _websocket._unmask is not _websocket._unmask_python  # the C version is used


async def test_one_task_receives_at_a_time_and_buffered_messages_still_checkpoint() -> None:
    async with ws_pair() as (server, client):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(server.receive)
            await trio.testing.wait_all_tasks_blocked()
            with pytest.raises(trio.BusyResourceError):
                await server.receive()
            assert server.receive_buffered() is None  # nothing while another task receives
            await client.send(b'["first"]')
        await client.send_many([b'["a"]', b'["b"]'])
        assert await server.receive() == b'["a"]'  # "b" arrived with it: it is buffered
        with trio.testing.assert_checkpoints():
            assert await server.receive() == b'["b"]'
        assert "sec-websocket-key" not in server.info["http_headers"]
        await close_both(server, client)
