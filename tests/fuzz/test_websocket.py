"""Fuzzing the WebSocket server side (``wamp_trio._websocket``): the opening
handshake and the server's own frame parser.

* Random HTTP request heads (request line, the handshake's headers, junk
  headers, line endings) and random bytes: ``accept_websocket`` answers with a
  well-formed 101 or 4xx response, or closes, within its handshake timeout, and
  never raises.
* Random frame streams after a good handshake, sent in random pieces: the
  messages received are exactly those wsproto (the reference parser) finds in
  the same bytes, every byte the server writes is valid WebSocket, and the
  connection ends cleanly.

Each example runs under ``trio.testing.MockClock(autojump_threshold=0)`` over an
in-memory stream pair, so the timeouts involved cost no wall time.
"""

from __future__ import annotations

import base64
import itertools
import struct
from collections.abc import Awaitable, Callable
from typing import TypeVar

import pytest
import trio
import trio.testing
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from wsproto import ConnectionType
from wsproto.connection import Connection
from wsproto.events import BytesMessage, CloseConnection, Message, Ping, Pong, TextMessage
from wsproto.utilities import RemoteProtocolError as WSRemoteProtocolError

from wamp_trio._transport import TransportClosed
from wamp_trio._websocket import ALL_SUBPROTOCOLS, WebSocketTransport, accept_websocket

T = TypeVar("T")
FUZZ = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])

HANDSHAKE_TIMEOUT = 10.0
# accept_websocket's own bound, plus the lingering close of a refusal (2 s) and
# the closing handshake of a transport (close_timeout 5 s), plus a margin.
VIRTUAL_BOUND = HANDSHAKE_TIMEOUT + 2 + 5 + 1


def run(async_fn: Callable[..., Awaitable[T]], *args: object) -> T:
    clock = trio.testing.MockClock(autojump_threshold=0)
    return trio.run(async_fn, *args, clock=clock)


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({0, len(data), *(cut % (len(data) + 1) for cut in cuts)})
    return [data[a:b] for a, b in itertools.pairwise(points)]


async def read_all(stream: trio.abc.ReceiveStream) -> bytes:
    data = bytearray()
    while chunk := await stream.receive_some():
        data += chunk
    return bytes(data)


# -- the opening handshake ----------------------------------------------------------------

KEY = base64.b64encode(b"0123456789abcdef").decode()
token = st.text("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.", max_size=8)
junk = st.text(st.characters(codec="latin-1"), max_size=12)
# wsproto decodes these as ASCII and raises UnicodeDecodeError on other bytes, which
# accept_websocket does not catch (see test_a_non_ascii_token_header_is_refused).
ASCII_ONLY = {"Connection", "Sec-WebSocket-Protocol", "Sec-WebSocket-Extensions"}
# wsproto decodes Host with the "idna" codec, which raises UnicodeError for a byte
# over 0x7F and for a bad punycode label such as "xn--zz" (see
# test_a_host_idna_cannot_decode_is_refused): no random values there.
NO_JUNK = {"Host"}
ascii_junk = st.text(st.characters(codec="ascii"), max_size=12)
# True once in ``n`` draws (hypothesis favours 0, so the rare case is another number).
rare = st.integers(0, 9).map(lambda n: n == 7)
very_rare = st.integers(0, 29).map(lambda n: n == 17)


@st.composite
def header_lines(draw: st.DrawFn) -> list[str]:
    """The handshake's headers, each present, missing, repeated or altered."""
    choices: dict[str, list[str]] = {
        "Host": ["127.0.0.1", "", "a b", "[::1]:80"],
        "Upgrade": ["websocket", "WebSocket", "h2c", "websocket, h2c", ""],
        "Connection": ["Upgrade", "keep-alive, upgrade", "close", ""],
        "Sec-WebSocket-Key": [KEY, "", "AAAA", "not base64!", KEY + KEY],
        "Sec-WebSocket-Version": ["13", "8", "13, 8", "", "x"],
        "Sec-WebSocket-Protocol": [
            "wamp.2.json",
            "wamp.2.cbor.batched, wamp.2.msgpack",
            "mqtt, wamp.2.json",
            "mqtt",
            "",
            ",,,",
        ],
        "Sec-WebSocket-Extensions": ["permessage-deflate", "x; y=1"],
        "Content-Length": ["0", "5", "-1", "99999999999999999999", "1" * 5000],
        "Transfer-Encoding": ["chunked", "gzip"],
        "Origin": ["http://example.com", "null"],
    }
    lines = []
    for name, values in choices.items():
        optional = name.startswith(("Content", "Transfer", "Origin", "Sec-WebSocket-E"))
        mode = draw(st.integers(0, 19))
        if (mode == 19) or (optional and mode >= 4):
            continue  # left out
        if mode == 18 and name not in NO_JUNK:
            value = draw(ascii_junk if name in ASCII_ONLY else junk)
        elif mode >= 12:
            value = draw(st.sampled_from(values))
        else:
            value = values[0]
        spelled = name.lower() if draw(rare) else name
        lines.append(f"{spelled}: {value}")
        if draw(rare):
            lines.append(f"{spelled}: {draw(st.sampled_from(values))}")  # repeated
    special = {n.lower() for n in ASCII_ONLY | NO_JUNK}
    other_names = token.filter(lambda t: t.lower() not in special)
    lines += draw(st.lists(st.builds("{}: {}".format, other_names, junk), max_size=2))
    if draw(rare):
        lines.append(" folded")  # obsolete line folding
    if draw(rare):
        lines.append(draw(junk))  # not a header at all
    return draw(st.permutations(lines))


@st.composite
def requests(draw: st.DrawFn) -> bytes:
    if draw(rare):
        return draw(st.binary(max_size=200))
    method = "GET"
    if draw(rare):
        method = draw(st.sampled_from(["POST", "get", "HEAD", "CONNECT"]) | token)
    target = "/ws"
    if draw(rare):
        target = draw(st.sampled_from(["/ws?x=1", "*", "http://h/ws", "/", "/%00"]) | junk)
    version = "HTTP/1.1"
    if draw(rare):
        version = draw(st.sampled_from(["HTTP/1.0", "HTTP/2", "HTTP/1.1 x"]))
    newline = "\n" if draw(rare) else "\r\n"
    lines = [f"{method} {target} {version}", *draw(header_lines())]
    head = (newline.join(lines) + newline + newline).encode("latin-1")
    if draw(rare):
        head = head[: draw(st.integers(0, len(head)))]  # cut short
    if draw(very_rare):
        head = b"GET /ws HTTP/1.1\r\nX: " + b"y" * 17000 + b"\r\n\r\n"  # over MAX_HEAD_SIZE
    return head + draw(st.binary(max_size=20))


def parse_response(data: bytes) -> tuple[int, bytes]:
    """The status and body of one HTTP/1.1 response, checking its framing."""
    head, separator, body = data.partition(b"\r\n\r\n")
    assert separator, data[:200]
    lines = head.decode("latin-1").split("\r\n")
    version, status, _ = lines[0].split(" ", 2)
    assert version == "HTTP/1.1"
    headers = dict(line.split(": ", 1) for line in lines[1:])
    if status != "101":
        assert int(headers["Content-Length"]) == len(body)
    return int(status), body


async def handshake(request: bytes, cuts: list[int], hang: bool) -> None:
    server_stream, client_stream = trio.testing.memory_stream_pair()
    result: list[WebSocketTransport | None] = []
    start = trio.current_time()

    async def server() -> None:
        transport = await accept_websocket(server_stream, handshake_timeout=HANDSHAKE_TIMEOUT)
        result.append(transport)
        if transport is not None:
            await transport.aclose()

    with trio.fail_after(VIRTUAL_BOUND):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(server)
            for piece in split(request, cuts):
                await client_stream.send_all(piece)
            if not hang:
                await client_stream.send_eof()
            response = await read_all(client_stream)
    (transport,) = result
    assert trio.current_time() - start <= VIRTUAL_BOUND
    if not response:  # closed without a word: the head never ended, or timed out
        assert transport is None
        return
    status, body = parse_response(response)
    if transport is None:
        assert status in (400, 405, 426, 431)
        assert body.endswith(b"\n")
        return
    assert status == 101
    assert transport.serializer.subprotocol in ALL_SUBPROTOCOLS
    offered = request.decode("latin-1").lower()
    assert transport.serializer.subprotocol in offered


@FUZZ
@given(request=requests(), cuts=st.lists(st.integers(0), max_size=4), hang=st.booleans())
def test_random_handshakes_get_an_http_answer_or_a_close(
    request: bytes, cuts: list[int], hang: bool
) -> None:
    run(handshake, request, cuts, hang)


async def refused_in_one_task(request: bytes) -> int:
    """The status accept_websocket answers ``request`` with (sent whole, then EOF)."""
    server_stream, client_stream = trio.testing.memory_stream_pair()
    await client_stream.send_all(request)
    await client_stream.send_eof()
    with trio.fail_after(VIRTUAL_BOUND):
        assert await accept_websocket(server_stream) is None
        status, _ = parse_response(await read_all(client_stream))
    return status


@pytest.mark.parametrize("name", sorted(ASCII_ONLY))
def test_a_non_ascii_token_header_is_refused(name: str) -> None:
    """Found by test_random_handshakes_get_an_http_answer_or_a_close: a byte over
    0x7F in a header wsproto splits on commas must give a 400, like other bad
    values, not an exception."""
    good = GOOD_REQUEST.format("wamp.2.json")
    lines = [
        f"{line}, x\x80" if line.startswith(f"{name}:") else line for line in good.split("\r\n")
    ]
    if not any(line.startswith(f"{name}:") for line in lines):
        lines.insert(1, f"{name}: x\x80")
    assert run(refused_in_one_task, "\r\n".join(lines).encode("latin-1")) == 400


@pytest.mark.parametrize("host", ["xn--zz", "x\x80", "xn--a.example"])
def test_a_host_idna_cannot_decode_is_refused(host: str) -> None:
    """Found by test_random_handshakes_get_an_http_answer_or_a_close: wsproto reads
    Host with the "idna" codec; a Host it cannot decode -- even plain ASCII like
    "xn--zz" -- must give a 400, not an exception."""
    good = GOOD_REQUEST.format("wamp.2.json")
    request = good.replace("Host: 127.0.0.1", f"Host: {host}")
    assert run(refused_in_one_task, request.encode("latin-1")) == 400


# -- frames after a good handshake ----------------------------------------------------------

GOOD_REQUEST = (
    "GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    f"Sec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n"
    "Sec-WebSocket-Protocol: {}\r\n\r\n"
)


@st.composite
def ws_frames(draw: st.DrawFn) -> bytes:
    """One client frame, field by field: mostly valid, sometimes not."""
    if draw(very_rare):
        return draw(st.binary(max_size=12))
    opcode = draw(st.sampled_from([1, 2, 9, 10, 0]))
    if draw(very_rare):
        opcode = draw(st.sampled_from([8, 3, 11]))  # close, reserved opcodes
    fin = not draw(rare) or (opcode >= 8 and draw(st.booleans()))
    rsv = draw(st.sampled_from([0x10, 0x40])) if draw(very_rare) else 0
    masked = not draw(very_rare)
    if opcode == 8:
        code = draw(st.sampled_from([1000, 1001, 1002, 1005, 1006, 999, 3000, 4999, 5000]))
        reason = draw(st.text(max_size=5)).encode("utf-8", "surrogatepass")
        payload = draw(st.sampled_from([b"", b"\x03"])) or struct.pack("!H", code) + reason
    elif opcode == 1 and not draw(rare):
        text = draw(st.text(max_size=20) | st.sampled_from(["é", "😀"]))
        payload = text.encode("utf-8", "surrogatepass")
        if draw(rare):
            cut = draw(st.integers(0, len(payload)))
            payload = payload[:cut]  # a UTF-8 sequence may be split between fragments
    else:
        size = None
        if draw(rare):
            size = draw(st.sampled_from([125, 126, 200, 65535, 65536, 70_000]))
        if size is None:
            payload = draw(st.binary(max_size=30))
        else:
            payload = (draw(st.binary(min_size=1, max_size=3)) * size)[:size]
    length = len(payload)
    form = draw(st.sampled_from(["16", "64"])) if draw(very_rare) else "minimal"
    if form == "minimal":
        form = "7" if length < 126 else "16" if length < 65536 else "64"
    if form == "16" and length >= 65536:
        form = "64"
    mask_bit = 0x80 if masked else 0
    head = bytes([(0x80 if fin else 0) | rsv | opcode])
    if form == "7":
        head += bytes([mask_bit | length])
    elif form == "16":
        head += bytes([mask_bit | 126]) + struct.pack("!H", length)
    else:
        head += bytes([mask_bit | 127]) + struct.pack("!Q", length)
    if not masked:
        return head + payload
    key = draw(st.binary(min_size=4, max_size=4))
    mask = (key * (length // 4 + 1))[:length]
    return (
        head
        + key
        + (int.from_bytes(payload, "big") ^ int.from_bytes(mask, "big")).to_bytes(length, "big")
    )


def reference_messages(data: bytes) -> list[bytes]:
    """The complete messages wsproto's server side finds in ``data``, up to the first
    close frame or error."""
    connection = Connection(ConnectionType.SERVER)
    found: list[bytes] = []
    partial = bytearray()
    try:
        connection.receive_data(data)
        for event in connection.events():
            if isinstance(event, CloseConnection):
                break
            if isinstance(event, Message):
                chunk = event.data.encode() if isinstance(event, TextMessage) else event.data
                partial += chunk
                if event.message_finished:
                    found.append(bytes(partial))
                    partial = bytearray()
    except WSRemoteProtocolError:  # pragma: no cover - wsproto reports errors as events
        pass
    return found


def check_server_output(data: bytes) -> None:
    """Everything the server wrote after the 101 is valid WebSocket: pongs and at
    most one close frame, which is last."""
    connection = Connection(ConnectionType.CLIENT)
    connection.receive_data(data)
    events = list(connection.events())
    for event in events[:-1]:
        assert isinstance(event, Pong), events
    if events:
        assert isinstance(events[-1], (Pong, CloseConnection)), events
        if isinstance(events[-1], CloseConnection):
            assert events[-1].code != 1006 or not data  # a close frame, not the end of input
    assert not any(isinstance(event, (Ping, BytesMessage, TextMessage)) for event in events)


async def frames_session(
    subprotocol: str, frames: list[bytes], cuts: list[int], close: bool
) -> tuple[list[bytes], bytes]:
    server_stream, client_stream = trio.testing.memory_stream_pair()
    received: list[bytes] = []

    async def server() -> None:
        transport = await accept_websocket(server_stream)
        assert transport is not None
        try:
            while True:
                received.append(await transport.receive())
        except TransportClosed:
            pass
        await transport.aclose()

    stream = b"".join(frames)
    with trio.fail_after(VIRTUAL_BOUND):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(server)
            pieces = [GOOD_REQUEST.format(subprotocol).encode(), *split(stream, cuts)]
            if close:
                pieces.append(b"\x88\x82abcd" + bytes([0x03 ^ 0x61, 0xE8 ^ 0x62]))
            try:
                for piece in pieces:
                    await client_stream.send_all(piece)
                await client_stream.send_eof()
            except trio.BrokenResourceError:
                pass  # the server closed after a protocol error: the rest is moot
            output = await read_all(client_stream)
    head, _, rest = output.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 101 ")
    return received, rest


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    subprotocol=st.sampled_from(ALL_SUBPROTOCOLS),
    frames=st.lists(ws_frames(), min_size=1, max_size=8),
    cuts=st.lists(st.integers(0), max_size=6),
    close=st.booleans(),
)
def test_random_frames_give_the_reference_parsers_messages(
    subprotocol: str, frames: list[bytes], cuts: list[int], close: bool
) -> None:
    received, output = run(frames_session, subprotocol, frames, cuts, close)
    assert received == reference_messages(b"".join(frames))
    check_server_output(output)
