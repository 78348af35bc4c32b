"""Transports, below the WAMP peer: the RawSocket handshake and framing
(AP/ap_transport_rawsocket.md), WebSocket subprotocol negotiation
(BP/transports.md) and the HTTP long-poll transport
(AP/ap_transport_http_longpoll.md).

These scenarios open their own TCP (or TLS) connections to the URL given for
the transport kind (``--transport``) and speak the handshakes byte by byte, so
that what the router answers is seen exactly as sent.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import ssl
import struct
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import h11
import trio
from wsproto import ConnectionType, WSConnection
from wsproto.events import (
    AcceptConnection,
    CloseConnection,
    Ping,
    RejectConnection,
)
from wsproto.events import BytesMessage as WsBytesMessage
from wsproto.events import Message as WsMessage
from wsproto.events import Request as WsRequest
from wsproto.events import TextMessage as WsTextMessage
from wsproto.utilities import RemoteProtocolError as WsRemoteProtocolError

from wamp_core import Hello, Serializer, Welcome, get_serializer

from .._peer import Failure, describe
from .._suite import Context, scenario

SPEC_RAWSOCKET = "AP/ap_transport_rawsocket.md, Handshake"
SPEC_RAWSOCKET_FRAMING = "AP/ap_transport_rawsocket.md, Framing"
SPEC_WEBSOCKET = "BP/transports.md, WebSocket Transport"
SPEC_LONGPOLL = "AP/ap_transport_http_longpoll.md"

MAGIC = 0x7F
UNKNOWN_SERIALIZER_ID = 15  # "3 - 15: reserved for future serializers"; 15 is the last to be used
UNKNOWN_SUBPROTOCOL = "wamp.2.conformance-unknown"
FRAME_MESSAGE, FRAME_PING, FRAME_PONG = 0, 1, 2
_TLS_SCHEMES = frozenset({"wss", "rss", "https"})
_RECEIVE = 65536


# -- connections ------------------------------------------------------------------------


def _url(ctx: Context, kind: str) -> str:
    url = ctx.target.url_for(kind)
    if url is None:  # run_one skips first; for a direct call
        ctx.skip(f"no {kind} URL given (--transport)")
    return url


def _host_header(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


@contextlib.asynccontextmanager
async def _connection(ctx: Context, url: str) -> AsyncIterator[trio.abc.Stream]:
    """A TCP (TLS for wss/rss/https; Unix socket for unix) connection to ``url``, closed on exit."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    host = parts.hostname
    port = parts.port or (443 if scheme in _TLS_SCHEMES else 80)
    stream: trio.abc.Stream
    if not host and scheme != "unix":
        ctx.fail(f"no host in {url!r}")
    try:
        with trio.fail_after(ctx.timeout):
            if scheme == "unix":  # RawSocket over a Unix domain socket
                stream = await trio.open_unix_socket(parts.netloc + parts.path)
            else:
                assert host is not None
                tcp = await trio.open_tcp_stream(host, port)
                if scheme in _TLS_SCHEMES:
                    stream = trio.SSLStream(
                        tcp,
                        ssl.create_default_context(),
                        server_hostname=host,
                        https_compatible=scheme != "rss",
                    )
                    await stream.do_handshake()
                else:
                    stream = tcp
    except (OSError, trio.BrokenResourceError, trio.TooSlowError) as exc:
        ctx.fail(f"cannot connect to {url}: {exc!r}")
    try:
        yield stream
    finally:
        with trio.move_on_after(2) as scope:
            scope.shield = True
            await trio.aclose_forcefully(stream)


async def _receive_some(stream: trio.abc.Stream) -> bytes:
    """The next bytes; ``b""`` once the router closed (or reset) the connection."""
    try:
        return bytes(await stream.receive_some(_RECEIVE))
    except (trio.BrokenResourceError, trio.ClosedResourceError):
        return b""


async def _send(stream: trio.abc.Stream, data: bytes) -> bool:
    """Send ``data``; False when the router already closed the connection."""
    try:
        await stream.send_all(data)
    except (trio.BrokenResourceError, trio.ClosedResourceError):
        return False
    return True


class _Reader:
    """Reads exact byte counts from a stream, keeping what came beyond them."""

    def __init__(self, stream: trio.abc.Stream) -> None:
        self.stream = stream
        self.buffer = b""

    async def read(self, count: int, timeout: float) -> tuple[bytes, bool]:
        """``count`` bytes within ``timeout`` seconds, or fewer; and whether the
        connection closed before ``count`` came."""
        closed = False
        with trio.move_on_after(timeout):
            while len(self.buffer) < count:
                chunk = await _receive_some(self.stream)
                if not chunk:
                    closed = True
                    break
                self.buffer += chunk
        data, self.buffer = self.buffer[:count], self.buffer[count:]
        return data, closed


async def _read_to_close(stream: trio.abc.Stream, timeout: float) -> tuple[bytes, bool]:
    """Everything until the router closes (at most 64 KiB); and whether it did
    within ``timeout`` seconds."""
    data = b""
    with trio.move_on_after(timeout):
        while len(data) < _RECEIVE:
            chunk = await _receive_some(stream)
            if not chunk:
                return data, True
            data += chunk
    return data, False


# -- RawSocket --------------------------------------------------------------------------


def _rawsocket_serializer(ctx: Context) -> Serializer:
    """The suite's serializer without batching (RawSocket has none)."""
    return get_serializer(get_serializer(ctx.target.serializer).codec)


def _handshake(serializer_id: int, length_exponent: int = 15, reserved: bytes = b"\0\0") -> bytes:
    return bytes((MAGIC, (length_exponent << 4) | serializer_id)) + reserved


def _frame(frame_type: int, payload: bytes) -> bytes:
    return struct.pack(">I", (frame_type << 24) | len(payload)) + payload


async def _rawsocket_reply(ctx: Context, reader: _Reader, request: bytes) -> bytes | None:
    """Send a handshake request; the router's 4-byte reply, or None if it
    closed the connection without one."""
    if not await _send(reader.stream, request):
        return None
    reply, closed = await reader.read(4, ctx.timeout)
    if len(reply) == 4:
        return reply
    if closed and not reply:
        return None
    if closed:
        ctx.fail(f"the router sent {reply.hex()} and closed: not a 4-byte handshake reply")
    ctx.fail(f"expected a 4-byte RawSocket handshake reply, got {reply.hex() or 'nothing'}")
    return None  # not reached


async def _open_rawsocket(ctx: Context, stream: trio.abc.Stream, serializer_id: int) -> _Reader:
    """A successful handshake for ``serializer_id``, checked; the stream's reader."""
    reader = _Reader(stream)
    reply = await _rawsocket_reply(ctx, reader, _handshake(serializer_id))
    if reply is None:
        ctx.fail("the router closed the connection instead of answering the RawSocket handshake")
    ctx.check(
        reply[0] == MAGIC and reply[2:] == b"\0\0",
        f"the handshake reply {reply.hex()} does not start with 0x7F or has"
        " non-zero reserved octets",
    )
    ctx.check(
        reply[1] & 0x0F == serializer_id,
        f"expected the reply to echo serializer {serializer_id}, got 0x{reply[1]:02x}"
        + (f" (error code {reply[1] >> 4})" if reply[1] & 0x0F == 0 else ""),
    )
    return reader


async def _next_frame(ctx: Context, reader: _Reader, what: str) -> tuple[int, bytes]:
    """The next frame (type, payload); failure if none came."""
    header, closed = await reader.read(4, ctx.timeout)
    if len(header) < 4:
        state = "the connection closed" if closed else "nothing"
        ctx.fail(f"expected {what}, got {state}")
    (word,) = struct.unpack(">I", header)
    frame_type, length = (word >> 24) & 0x07, word & 0xFFFFFF
    ctx.check(word >> 27 == 0, f"frame header {header.hex()} sets reserved bits")
    payload, _ = await reader.read(length, ctx.timeout)
    ctx.check(
        len(payload) == length, f"a {length}-byte frame ended after {len(payload)} bytes ({what})"
    )
    return frame_type, payload


@scenario(
    "transport.rawsocket.handshake",
    "A valid RawSocket handshake is answered with 0x7F, the router's length and the serializer",
    SPEC_RAWSOCKET,
    transport="rawsocket",
)
async def rawsocket_handshake(ctx: Context) -> None:
    serializer = _rawsocket_serializer(ctx)
    async with _connection(ctx, _url(ctx, "rawsocket")) as stream:
        await _open_rawsocket(ctx, stream, serializer.rawsocket_id)


@scenario(
    "transport.rawsocket.session",
    "After the RawSocket handshake, HELLO in a message frame gets WELCOME in a message frame",
    SPEC_RAWSOCKET_FRAMING,
    transport="rawsocket",
)
async def rawsocket_session(ctx: Context) -> None:
    serializer = _rawsocket_serializer(ctx)
    async with _connection(ctx, _url(ctx, "rawsocket")) as stream:
        reader = await _open_rawsocket(ctx, stream, serializer.rawsocket_id)
        hello = Hello(ctx.realm, {"roles": {"caller": {}, "subscriber": {}}})
        await _send(stream, _frame(FRAME_MESSAGE, serializer.encode(hello)))
        for _ in range(10):
            frame_type, payload = await _next_frame(ctx, reader, "WELCOME")
            if frame_type == FRAME_PING:  # the router may check us; answer as the spec says
                await _send(stream, _frame(FRAME_PONG, payload))
                continue
            ctx.check(
                frame_type == FRAME_MESSAGE,
                f"expected a message frame (type 0) with WELCOME, got frame type {frame_type}",
            )
            messages = serializer.decode(payload)
            ctx.check(
                len(messages) == 1 and isinstance(messages[0], Welcome),
                f"expected WELCOME, got {', '.join(describe(m) for m in messages)}",
            )
            return
        ctx.fail("expected WELCOME, got only PINGs")


@scenario(
    "transport.rawsocket.unsupported_serializer",
    "A RawSocket request for a reserved serializer (15) gets error 1 or a closed connection",
    SPEC_RAWSOCKET,
    transport="rawsocket",
)
async def rawsocket_unsupported_serializer(ctx: Context) -> None:
    async with _connection(ctx, _url(ctx, "rawsocket")) as stream:
        reply = await _rawsocket_reply(ctx, _Reader(stream), _handshake(UNKNOWN_SERIALIZER_ID))
        if reply is None:
            return  # failing the connection without the error reply is tolerated
        ctx.check(reply[0] == MAGIC, f"the reply {reply.hex()} does not start with 0x7F")
        ctx.check(
            reply[1] & 0x0F == 0,
            f"expected error reply 0x7F 0x10 (serializer unsupported), got {reply.hex()}:"
            f" the router accepted serializer {reply[1] & 0x0F}",
        )
        ctx.check(
            reply[1] >> 4 == 1,
            f"expected error code 1 (serializer unsupported), got {reply[1] >> 4}",
        )


@scenario(
    "transport.rawsocket.illegal_serializer",
    "A RawSocket request for the illegal serializer 0 gets error 1 or a closed connection",
    SPEC_RAWSOCKET,
    transport="rawsocket",
)
async def rawsocket_illegal_serializer(ctx: Context) -> None:
    async with _connection(ctx, _url(ctx, "rawsocket")) as stream:
        reply = await _rawsocket_reply(ctx, _Reader(stream), _handshake(0))
        if reply is None:
            return  # "fail the connection: illegal serializer value"
        ctx.check(
            reply[0] == MAGIC and reply[1] == 0x10 and reply[2:] == b"\0\0",
            f"expected the error reply 7f100000 (serializer unsupported) or a closed"
            f" connection, got {reply.hex()}",
        )


@scenario(
    "transport.rawsocket.reserved_bits",
    "A RawSocket handshake with non-zero reserved octets gets error 3 or a closed connection",
    SPEC_RAWSOCKET,
    transport="rawsocket",
)
async def rawsocket_reserved_bits(ctx: Context) -> None:
    serializer = _rawsocket_serializer(ctx)
    async with _connection(ctx, _url(ctx, "rawsocket")) as stream:
        request = _handshake(serializer.rawsocket_id, reserved=b"\x01\x00")
        reply = await _rawsocket_reply(ctx, _Reader(stream), request)
        if reply is None:
            return
        ctx.check(reply[0] == MAGIC, f"the reply {reply.hex()} does not start with 0x7F")
        if reply[1] & 0x0F != 0:
            # "The third and forth octet are reserved and MUST be all zeros" binds the
            # Client; the spec defines error 3 but never requires a Router to check.
            ctx.skip(
                f"the router accepted a handshake with non-zero reserved octets ({reply.hex()})"
                " instead of error 3; allowed: the spec does not require Routers to check them"
            )
        ctx.check(
            reply[1] >> 4 == 3,
            f"expected error code 3 (use of reserved bits), got {reply[1] >> 4}",
        )


@scenario(
    "transport.rawsocket.bad_magic",
    "A handshake whose first octet is not 0x7F is failed without a RawSocket reply",
    "AP/ap_transport_rawsocket.md, Handshake (Router-to-Client Reply)",
    transport="rawsocket",
)
async def rawsocket_bad_magic(ctx: Context) -> None:
    serializer = _rawsocket_serializer(ctx)
    async with _connection(ctx, _url(ctx, "rawsocket")) as stream:
        # 0x00 starts neither RawSocket nor HTTP: a router sharing the port with
        # WebSocket or long-poll may answer it as a bad HTTP request, nothing else.
        request = b"\x00" + _handshake(serializer.rawsocket_id)[1:]
        if not await _send(stream, request):
            return
        data, closed = await _read_to_close(stream, ctx.timeout)
        ctx.check(
            not data.startswith(bytes((MAGIC,))),
            f"expected no RawSocket reply to a request without the magic octet, got {data.hex()}",
        )
        ctx.check(closed, "expected the router to fail the connection; it stayed open")


@scenario(
    "transport.rawsocket.ping",
    "A RawSocket PING is answered by exactly one PONG echoing its payload",
    SPEC_RAWSOCKET_FRAMING,
    transport="rawsocket",
)
async def rawsocket_ping(ctx: Context) -> None:
    serializer = _rawsocket_serializer(ctx)
    payload = b"wamp-conformance ping \x00\x01\xfe\xff"
    async with _connection(ctx, _url(ctx, "rawsocket")) as stream:
        reader = await _open_rawsocket(ctx, stream, serializer.rawsocket_id)
        await _send(stream, _frame(FRAME_PING, payload))
        for _ in range(10):
            try:
                frame_type, echoed = await _next_frame(ctx, reader, "PONG")
            except Failure as exc:
                raise Failure(
                    f"{exc} (AP/transport_rawsocket.md, Framing: a Peer MUST reply to each PING"
                    " by sending exactly one PONG immediately)"
                ) from None
            if frame_type == FRAME_PING:
                await _send(stream, _frame(FRAME_PONG, echoed))
                continue
            ctx.check(
                frame_type == FRAME_PONG,
                f"expected PONG (frame type 2), got frame type {frame_type}",
            )
            ctx.check(
                echoed == payload,
                f"expected the PONG to echo {payload!r}, got {echoed!r}",
            )
            return
        ctx.fail("expected PONG, got only PINGs")


# -- WebSocket --------------------------------------------------------------------------


class _Answer:
    """The router's answer to a WebSocket opening handshake."""

    def __init__(self, status: int, subprotocol: str | None, stream: trio.abc.Stream) -> None:
        self.status = status
        self.subprotocol = subprotocol
        self.stream = stream


@contextlib.asynccontextmanager
async def _websocket(ctx: Context, offers: list[str]) -> AsyncIterator[_Answer | None]:
    """Open a WebSocket offering ``offers``; the answer, or None when the
    router closed the connection without one."""
    url = _url(ctx, "websocket")
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme.lower() == "wss" else 80)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    async with _connection(ctx, url) as stream:
        conn = h11.Connection(h11.CLIENT, max_incomplete_event_size=65536)
        key = base64.b64encode(os.urandom(16)).decode("ascii")
        request = h11.Request(
            method="GET",
            target=target,
            headers=[
                ("Host", _host_header(host, port)),
                ("Upgrade", "websocket"),
                ("Connection", "Upgrade"),
                ("Sec-WebSocket-Key", key),
                ("Sec-WebSocket-Version", "13"),
                ("Sec-WebSocket-Protocol", ", ".join(offers)),
            ],
        )
        await _send(stream, conn.send(request) or b"")
        answer: _Answer | None = None
        with trio.move_on_after(ctx.timeout) as scope:
            while answer is None:
                try:
                    event = conn.next_event()
                except h11.RemoteProtocolError as exc:
                    if conn.their_state is h11.SEND_RESPONSE:
                        break  # the connection closed before any response
                    ctx.fail(f"the router's handshake response is not valid HTTP: {exc}")
                if event is h11.NEED_DATA:
                    conn.receive_data(await _receive_some(stream))
                elif isinstance(event, h11.ConnectionClosed):
                    break
                elif isinstance(event, (h11.Response, h11.InformationalResponse)):
                    values = [
                        v.decode("latin-1")
                        for n, v in event.headers
                        if n == b"sec-websocket-protocol"
                    ]
                    answer = _Answer(event.status_code, ", ".join(values) or None, stream)
        if scope.cancelled_caught:
            ctx.fail(f"no answer to the WebSocket opening handshake within {ctx.timeout:g} s")
        yield answer


def _offer(ctx: Context) -> str:
    """The suite's subprotocol (the router serves it: the run joined with it)."""
    return get_serializer(ctx.target.serializer).subprotocol


@scenario(
    "transport.websocket.subprotocol_single",
    "Offering one WAMP subprotocol gets exactly that subprotocol back",
    SPEC_WEBSOCKET,
    transport="websocket",
)
async def websocket_single(ctx: Context) -> None:
    offer = _offer(ctx)
    async with _websocket(ctx, [offer]) as answer:
        if answer is None:
            ctx.fail(f"offering {offer} only: the router closed the connection without an answer")
        ctx.check(
            answer.status == 101,
            f"offering {offer} only: expected 101 Switching Protocols, got HTTP {answer.status}",
        )
        ctx.check(
            answer.subprotocol == offer,
            f"offering {offer} only: expected Sec-WebSocket-Protocol {offer},"
            f" got {answer.subprotocol!r} (the router MUST pick a subprotocol the client offered)",
        )


@scenario(
    "transport.websocket.subprotocol_choice",
    "Offering two WAMP subprotocols gets one of the two back",
    SPEC_WEBSOCKET,
    transport="websocket",
)
async def websocket_choice(ctx: Context) -> None:
    first = _offer(ctx)
    second = "wamp.2.msgpack" if first == "wamp.2.json" else "wamp.2.json"
    offers = [first, second]
    async with _websocket(ctx, offers) as answer:
        if answer is None:
            ctx.fail(f"offering {offers}: the router closed the connection without an answer")
        ctx.check(
            answer.status == 101,
            f"offering {offers}: expected 101 Switching Protocols, got HTTP {answer.status}",
        )
        ctx.check(
            answer.subprotocol in offers,
            f"offering {offers}: expected one of them in Sec-WebSocket-Protocol,"
            f" got {answer.subprotocol!r}",
        )


@scenario(
    "transport.websocket.message_type",
    "WAMP messages travel in text WebSocket messages with JSON, binary ones otherwise",
    SPEC_WEBSOCKET,
    transport="websocket",
)
async def websocket_message_type(ctx: Context) -> None:
    serializer = _rawsocket_serializer(ctx)
    url = _url(ctx, "websocket")
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme.lower() == "wss" else 80)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    hello = serializer.encode(Hello(ctx.realm, {"roles": {"caller": {}, "subscriber": {}}}))
    text = serializer.codec == "json"
    async with _connection(ctx, url) as stream:
        ws = WSConnection(ConnectionType.CLIENT)
        request = WsRequest(
            host=_host_header(host, port), target=target, subprotocols=[serializer.subprotocol]
        )
        await _send(stream, ws.send(request))
        with trio.move_on_after(ctx.timeout * 2) as scope:
            while True:
                data = await _receive_some(stream)
                if not data:
                    ctx.fail("the connection closed before WELCOME")
                try:
                    ws.receive_data(data)
                    events = list(ws.events())
                except WsRemoteProtocolError as exc:
                    ctx.fail(f"invalid WebSocket data from the router: {exc}")
                for event in events:
                    if isinstance(event, AcceptConnection):
                        message = WsTextMessage(hello.decode()) if text else WsBytesMessage(hello)
                        await _send(stream, ws.send(message))
                    elif isinstance(event, RejectConnection):
                        ctx.fail(
                            f"the router refused {serializer.subprotocol}: HTTP {event.status_code}"
                        )
                    elif isinstance(event, WsMessage):
                        kind = "text" if isinstance(event, WsTextMessage) else "binary"
                        ctx.check(
                            isinstance(event, WsTextMessage) == text,
                            f"with {serializer.subprotocol}, WAMP messages MUST be"
                            f" {'text' if text else 'binary'} WebSocket messages; WELCOME came"
                            f" in a {kind} message",
                        )
                        return
                    elif isinstance(event, CloseConnection):
                        ctx.fail(f"the router closed the WebSocket ({event.code}) before WELCOME")
                    elif isinstance(event, Ping):
                        await _send(stream, ws.send(event.response()))
        if scope.cancelled_caught:
            ctx.fail("no WELCOME over the WebSocket")


@scenario(
    "transport.websocket.subprotocol_unknown",
    "Offering only an unknown subprotocol is never accepted with a subprotocol"
    " (HTTP 4xx, a close, or 101 without one)",
    SPEC_WEBSOCKET,
    transport="websocket",
)
async def websocket_unknown(ctx: Context) -> None:
    async with _websocket(ctx, [UNKNOWN_SUBPROTOCOL]) as answer:
        if answer is None:
            return  # closed without an answer
        if 400 <= answer.status < 500:
            return
        ctx.check(
            answer.status == 101,
            f"offering only {UNKNOWN_SUBPROTOCOL}: expected HTTP 4xx, got HTTP {answer.status}",
        )
        ctx.check(
            answer.subprotocol is None,
            f"offering only {UNKNOWN_SUBPROTOCOL}: expected a refusal, got 101 with"
            f" Sec-WebSocket-Protocol {answer.subprotocol!r}",
        )
        # 101 without Sec-WebSocket-Protocol is how RFC 6455 (section 4.2.2) lets a
        # server decline every offered subprotocol ("it MUST NOT send back a
        # |Sec-WebSocket-Protocol| header field"); failing the connection is then up
        # to the client, so an open connection is allowed too.


# -- HTTP long-poll ---------------------------------------------------------------------


async def _post(
    ctx: Context, path: str, body: bytes = b"", content_type: str = "application/json"
) -> tuple[int, bytes]:
    """POST ``body`` to ``<base>/<path>`` on a fresh connection; (status, body).
    Status 0: the router closed the connection without a response."""
    url = _url(ctx, "longpoll")
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme.lower() == "https" else 80)
    target = parts.path.rstrip("/") + "/" + path
    async with _connection(ctx, url) as stream:
        conn = h11.Connection(h11.CLIENT)
        headers = [
            ("Host", _host_header(host, port)),
            ("Content-Type", content_type),
            ("Content-Length", str(len(body))),
            ("Connection", "close"),
        ]
        data = conn.send(h11.Request(method="POST", target=target, headers=headers)) or b""
        data += conn.send(h11.Data(data=body)) or b""
        data += conn.send(h11.EndOfMessage()) or b""
        await _send(stream, data)
        status = 0
        chunks: list[bytes] = []
        with trio.move_on_after(ctx.timeout) as scope:
            while True:
                try:
                    event = conn.next_event()
                except h11.RemoteProtocolError as exc:
                    if status == 0 and conn.their_state is h11.SEND_RESPONSE:
                        break  # the connection closed before any response
                    ctx.fail(f"POST {target}: the response is not valid HTTP: {exc}")
                if event is h11.NEED_DATA:
                    conn.receive_data(await _receive_some(stream))
                elif isinstance(event, h11.Response):
                    status = event.status_code
                elif isinstance(event, h11.Data):
                    chunks.append(bytes(event.data))
                elif isinstance(event, (h11.EndOfMessage, h11.ConnectionClosed)):
                    break
        if scope.cancelled_caught:
            ctx.fail(f"POST {target}: no response within {ctx.timeout:g} s")
        return status, b"".join(chunks)


async def _longpoll_open(ctx: Context, serializer: Serializer) -> str:
    """Open a long-poll transport; its id (checked)."""
    body = json.dumps({"protocols": [serializer.subprotocol]}).encode()
    status, answer = await _post(ctx, "open", body)
    ctx.check(
        200 <= status < 300,
        f"POST <base>/open offering {serializer.subprotocol}: expected 2xx, got {status}"
        f" {answer[:200]!r}",
    )
    try:
        document = json.loads(answer)
    except ValueError:
        ctx.fail(f"POST <base>/open: expected a JSON document, got {answer[:200]!r}")
    ctx.check(isinstance(document, dict), f"POST <base>/open answered {document!r}, not an object")
    transport = document.get("transport")
    ctx.check(
        isinstance(transport, str) and transport and "/" not in transport,
        f"POST <base>/open: expected a transport id string, got {transport!r}",
    )
    protocol = document.get("protocol")
    ctx.check(
        protocol == serializer.subprotocol,
        f"POST <base>/open offering only {serializer.subprotocol}: the answer's protocol"
        f" is {protocol!r}",
    )
    assert isinstance(transport, str)
    return transport


_CONTENT_TYPES = {
    "json": "application/json",
    "msgpack": "application/x-msgpack",
    "cbor": "application/cbor",
}


def _content_type(serializer: Serializer) -> str:
    return _CONTENT_TYPES.get(serializer.codec, "application/octet-stream")


@contextlib.asynccontextmanager
async def _longpoll(ctx: Context, serializer: Serializer) -> AsyncIterator[str]:
    """An open long-poll transport id, closed (best effort) on exit."""
    transport = await _longpoll_open(ctx, serializer)
    try:
        yield transport
    finally:
        with trio.move_on_after(2) as scope:
            scope.shield = True
            with contextlib.suppress(Exception):
                await _post(ctx, f"{transport}/close", b"", _content_type(serializer))


@scenario(
    "transport.longpoll.open",
    "POST <base>/open answers a transport id and the protocol offered",
    SPEC_LONGPOLL,
    transport="longpoll",
)
async def longpoll_open(ctx: Context) -> None:
    async with _longpoll(ctx, _rawsocket_serializer(ctx)):
        pass


@scenario(
    "transport.longpoll.no_common_protocol",
    "POST <base>/open offering only an unknown protocol fails",
    SPEC_LONGPOLL,
    transport="longpoll",
)
async def longpoll_no_common_protocol(ctx: Context) -> None:
    body = json.dumps({"protocols": [UNKNOWN_SUBPROTOCOL]}).encode()
    status, answer = await _post(ctx, "open", body)
    if 200 <= status < 300:
        with contextlib.suppress(ValueError, AttributeError, TypeError):
            transport = json.loads(answer).get("transport")
            if isinstance(transport, str) and transport:
                await _post(ctx, f"{transport}/close")
    ctx.check(
        not 200 <= status < 300,
        f"offering only {UNKNOWN_SUBPROTOCOL}: expected the open request to fail"
        f' ("fail the request when no protocol overlap was found"), got {status}'
        f" {answer[:200]!r}",
    )


@scenario(
    "transport.longpoll.session",
    "HELLO posted to <base>/<id>/send is answered by WELCOME from <base>/<id>/receive",
    SPEC_LONGPOLL,
    transport="longpoll",
)
async def longpoll_session(ctx: Context) -> None:
    serializer = _rawsocket_serializer(ctx)
    kind = _content_type(serializer)
    async with _longpoll(ctx, serializer) as transport:
        hello = Hello(ctx.realm, {"roles": {"caller": {}, "subscriber": {}}})
        status, answer = await _post(ctx, f"{transport}/send", serializer.encode(hello), kind)
        ctx.check(
            200 <= status < 300, f"POST <base>/<id>/send with HELLO: expected 2xx, got {status}"
        )
        with trio.move_on_after(ctx.timeout * 3):
            while True:
                status, answer = await _post(ctx, f"{transport}/receive", b"", kind)
                ctx.check(
                    200 <= status < 300,
                    f"POST <base>/<id>/receive: expected 2xx, got {status} {answer[:200]!r}",
                )
                if not answer:  # nothing yet: poll again
                    continue
                messages = serializer.decode(answer)
                ctx.check(
                    messages and isinstance(messages[0], Welcome),
                    f"expected WELCOME, got {', '.join(describe(m) for m in messages)}",
                )
                return
        ctx.fail("expected WELCOME from <base>/<id>/receive, got nothing")


@scenario(
    "transport.longpoll.closed",
    "After POST <base>/<id>/close, send and receive on that id fail (HTTP 4xx)",
    SPEC_LONGPOLL,
    transport="longpoll",
)
async def longpoll_closed(ctx: Context) -> None:
    serializer = _rawsocket_serializer(ctx)
    kind = _content_type(serializer)
    transport = await _longpoll_open(ctx, serializer)
    status, answer = await _post(ctx, f"{transport}/close", b"", kind)
    ctx.check(200 <= status < 300, f"POST <base>/<id>/close: expected 2xx, got {status}")
    hello = Hello(ctx.realm, {"roles": {"caller": {}}})
    status, answer = await _post(ctx, f"{transport}/send", serializer.encode(hello), kind)
    ctx.check(
        400 <= status < 500,
        f"POST <base>/<id>/send after close: expected HTTP 4xx, got {status} {answer[:200]!r}",
    )
    status, answer = await _post(ctx, f"{transport}/receive", b"", kind)
    ctx.check(
        400 <= status < 500,
        f"POST <base>/<id>/receive after close: expected HTTP 4xx, got {status} {answer[:200]!r}",
    )
