"""Bad input against a whole router on loopback sockets: what the peer gets, what is logged.

Each test feeds one kind of bad input to ``serve_router`` (WebSocket, long-poll
and RawSocket on one TCP port, RawSocket on a Unix socket) and checks both the
answer on the wire and the router's log record (level and text). The table in
docs/reliability.md ("Bad input") points here, row by row.
"""

from __future__ import annotations

import logging
import struct
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import trio
import trio.testing

import wamp_core
from wamp_core import Abort, ErrorURI, Message, MessageType
from wamp_trio import Endpoint, RouterHost, TcpListener, UnixListener, open_transport, serve_router
from wamp_trio._cli import main
from wamp_trio._config import ListenerConfig, build_router, parse_config
from wamp_trio._transport import MessageTransport, TransportClosed

from .test_websocket import masked_frame, upgrade_request

MAX_MESSAGE_SIZE = 65536
"""The router's limit in these tests (RawSocket announces exactly this)."""

ROLES: dict[str, Any] = {"roles": {"caller": {}, "callee": {}, "publisher": {}, "subscriber": {}}}
HELLO: list[Any] = [1, "realm1", ROLES]

GUARD = 20
"""Seconds after which a test that hangs fails (a bound, not a timing assertion)."""


# -- a running router ---------------------------------------------------------------------


@dataclass
class Running:
    host: RouterHost
    endpoints: list[Endpoint]
    port: int
    unix_path: str

    def url(self, scheme: str) -> str:
        return next(e.url for e in self.endpoints if e.url.startswith(f"{scheme}://"))


@asynccontextmanager
async def running(
    tmp_path: Path,
    *,
    listener: TcpListener | None = None,
    router: wamp_core.Router | None = None,
    **router_options: Any,
) -> AsyncIterator[Running]:
    """``serve_router`` on 127.0.0.1 port 0 and a Unix socket, realm ``realm1``
    (or ``router``)."""
    host = RouterHost(router or wamp_core.Router(["realm1"], **router_options))
    unix_path = str(tmp_path / "bad.sock")
    listeners: list[ListenerConfig] = [listener or TcpListener(port=0), UnixListener(unix_path)]
    async with trio.open_nursery() as nursery:
        endpoints = await nursery.start(
            partial(serve_router, host, listeners, max_message_size=MAX_MESSAGE_SIZE)
        )
        port = urlsplit(endpoints[0].url).port
        assert port is not None
        with trio.fail_after(GUARD):
            yield Running(host, endpoints, port, unix_path)
        nursery.cancel_scope.cancel()


URLS = {"ws": "ws", "lp": "http", "rs": "rs", "unix": "unix"}


def records(caplog: pytest.LogCaptureFixture, level: int) -> list[str]:
    """The messages the router logged at exactly ``level``."""
    return [
        r.getMessage()
        for r in caplog.records
        if r.name.startswith("wamp_trio") and r.levelno == level
    ]


def assert_logged(caplog: pytest.LogCaptureFixture, level: int, *parts: str) -> None:
    lines = records(caplog, level)
    assert any(all(part in line for part in parts) for line in lines), (
        logging.getLevelName(level),
        parts,
        caplog.text,
    )


def assert_nothing_logged(caplog: pytest.LogCaptureFixture) -> None:
    """Nothing at INFO or above (debug records about connections are fine)."""
    loud = [
        r.getMessage()
        for r in caplog.records
        if r.name.startswith("wamp_trio") and r.levelno >= logging.INFO
    ]
    assert loud == [], loud


@pytest.fixture(autouse=True)
def _capture_debug(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="wamp_trio")


# -- WAMP messages over a transport -------------------------------------------------------


def encode(transport: MessageTransport, raw: list[Any]) -> bytes:
    return transport.serializer.encode(wamp_core.parse_message(raw))


async def receive(transport: MessageTransport) -> Message:
    (message,) = transport.serializer.decode(await transport.receive())
    return message


async def join(transport: MessageTransport) -> None:
    await transport.send(encode(transport, HELLO))
    assert (await receive(transport)).type is MessageType.WELCOME


async def until_closed(transport: MessageTransport) -> list[Message]:
    """Every message the router sends until it closes the connection."""
    received: list[Message] = []
    for _ in range(100):
        try:
            data = await transport.receive()
        except TransportClosed:
            return received
        received.extend(transport.serializer.decode(data))
    raise AssertionError(f"the router did not close the connection: {received}")


async def assert_violation(
    transport: MessageTransport, caplog: pytest.LogCaptureFixture, text: str
) -> None:
    """The router answers ABORT protocol_violation (message containing ``text``),
    closes the connection and logs the violation at INFO."""
    received = await until_closed(transport)
    aborts = [m for m in received if isinstance(m, Abort)]
    assert len(aborts) == 1, received
    assert received[-1] is aborts[0], received  # nothing after the ABORT
    assert aborts[0].reason == ErrorURI.PROTOCOL_VIOLATION
    assert text in aborts[0].details["message"]
    assert_logged(caplog, logging.INFO, ": protocol violation: ", text)


# -- undecodable and malformed messages ---------------------------------------------------


@pytest.mark.parametrize(
    ("scheme", "serializer", "data", "text"),
    [
        ("ws", "json", b"not json", "invalid json: Expecting value"),
        ("ws", "msgpack", b"\xc1", "invalid msgpack"),
        ("ws", "cbor", b"\xff", "invalid cbor"),
        ("ws", "wamp.2.json.batched", b"[1]\x18[", "batched JSON: the last message is not ended"),
        ("ws", "wamp.2.msgpack.batched", b"\x00\x00\x00\x09abc", "batched msgpack: truncated"),
        ("rs", "json", b"\xff\xfe", "invalid json: 'utf-8' codec can't decode"),
        ("rs", "msgpack", b"\xc1", "invalid msgpack"),
        ("rs", "cbor", b"\xff", "invalid cbor"),
        ("unix", "cbor", b"\xff", "invalid cbor"),
        ("lp", "json", b"{", "invalid json"),
        ("lp", "cbor", b"\xff", "invalid cbor"),
        ("ws", "json", b'[1, "realm1", {}] x', "invalid json: Extra data"),
        ("rs", "json", b"[1, NaN, {}]", "invalid json: NaN is not valid JSON"),
        ("ws", "json", b"[1, " + b"[" * 2000 + b"]" * 2000 + b"]", "invalid json: nested too deep"),
        ("rs", "msgpack", b"\x91\x01\x00", "invalid msgpack: unpack(b) received extra data"),
        ("lp", "msgpack", b"\x93\x01\xa6realm1\x81\x01\x01", "int is not allowed for map key"),
        ("unix", "cbor", b"\x81\x01\x00", "invalid cbor: trailing bytes"),
    ],
    ids=lambda value: value if isinstance(value, str) and len(value) < 25 else None,
)
async def test_undecodable_bytes_abort_the_session(
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    *,
    scheme: str,
    serializer: str,
    data: bytes,
    text: str,
) -> None:
    async with running(tmp_path) as router:
        async with open_transport(router.url(URLS[scheme]), serializer) as transport:
            await transport.send(data)
            await assert_violation(transport, caplog, text)
        assert router.host.router.sessions == {}


@pytest.mark.parametrize(
    ("data", "text"),
    [
        (b'{"a": 1}', "a message must be a list, got dict"),
        (b'"HELLO"', "a message must be a list, got str"),
        (b"[]", "a message must not be an empty list"),
        (b"[999]", "unknown message type 999"),
        (b'["x"]', "unknown message type 'x'"),
        (b'[1, "realm1"]', "HELLO must have 3 elements, got 2"),
        (b'[1, 5, {"roles": {"caller": {}}}]', "HELLO.Realm must be a string, got int"),
        (b'[1, "realm1", []]', "HELLO.Details must be a dict, got list"),
    ],
)
async def test_malformed_messages_abort_the_session(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, data: bytes, text: str
) -> None:
    async with running(tmp_path) as router, open_transport(router.url("rs")) as transport:
        await transport.send(data)
        await assert_violation(transport, caplog, text)


@pytest.mark.parametrize(
    ("raw", "text"),
    [
        ([48, 1, {}, "com.example.add", [], {}, "extra"], "CALL must have 4 to 6 elements, got 7"),
        ([48, "x", {}, "com.example.add"], "CALL.Request must be an ID in [1, 2^53], got 'x'"),
        ([48, 1, [], "com.example.add"], "CALL.Options must be a dict, got list"),
        ([48, 1, {}, 5], "CALL.Procedure must be a string, got int"),
        ([48, 1, {}, "com.example.add", {"not": "a list"}], "CALL.Arguments must be a list"),
        ([48, 0, {}, "com.example.add"], "CALL.Request must be an ID in [1, 2^53], got 0"),
        ([8, 99, 1, {}, "com.example.oops"], "ERROR.REQUEST.Type must be one of 16, 32, 34, 48"),
    ],
)
async def test_malformed_messages_after_welcome_abort_the_session(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, raw: list[Any], text: str
) -> None:
    async with running(tmp_path) as router, open_transport(router.url("ws")) as transport:
        await join(transport)
        await transport.send(wamp_core.get_serializer("json").dumps(raw))
        await assert_violation(transport, caplog, text)
        assert router.host.router.sessions == {}


# -- messages in the wrong state ------------------------------------------------------------


@pytest.mark.parametrize(
    ("joined", "raw", "text"),
    [
        (False, [48, 1, {}, "com.example.add"], "CALL is not allowed in state CLOSED"),
        (False, [5, "signature", {}], "AUTHENTICATE is not allowed in state CLOSED"),
        (False, [6, {}, "wamp.close.normal"], "GOODBYE is not allowed in state CLOSED"),
        (False, [1, "realm1", {}], "HELLO.Details.roles must map client roles to dicts"),
        (False, [1, "realm1", {"roles": {"dealer": {}}}], "HELLO.Details.roles must map"),
        (True, HELLO, "HELLO is not allowed in state ESTABLISHED"),
        (True, [5, "signature", {}], "AUTHENTICATE is not allowed in state ESTABLISHED"),
        (True, [2, 1, {}], "WELCOME is not allowed in state ESTABLISHED"),
        (True, [70, 1234, {}], "YIELD for unknown INVOCATION 1234"),
        (True, [36, 1, 2, {}], "EVENT is not allowed in state ESTABLISHED"),
    ],
)
async def test_messages_in_the_wrong_state_abort_the_session(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, joined: bool, raw: list[Any], text: str
) -> None:
    async with running(tmp_path) as router, open_transport(router.url("rs"), "msgpack") as t:
        if joined:
            await join(t)
        await t.send(t.serializer.dumps(raw))  # dumps: the client codec refuses some of these
        await assert_violation(t, caplog, text)


async def test_an_abort_before_hello_is_ignored(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """BP/sessions.md: ABORT is never answered; the client may still say HELLO."""
    async with running(tmp_path) as router, open_transport(router.url("rs"), "msgpack") as t:
        await t.send(t.serializer.dumps([3, {}, "wamp.close.normal"]))
        await join(t)
        assert len(router.host.router.sessions) == 1
    assert_nothing_logged(caplog)


async def test_an_error_for_anything_but_an_invocation_aborts_the_session(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with running(tmp_path) as router, open_transport(router.url("ws"), "cbor") as t:
        await join(t)
        await t.send(encode(t, [8, 48, 1, {}, "com.example.oops"]))
        await assert_violation(
            t, caplog, "a client may send ERROR only for INVOCATION, not type 48"
        )


async def test_non_sequential_request_ids_abort_the_session_when_strict(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with running(tmp_path) as router, open_transport(router.url("ws")) as t:
        await join(t)
        await t.send(encode(t, [32, 1, {}, "com.example.topic"]))
        assert (await receive(t)).type is MessageType.SUBSCRIBED
        await t.send(encode(t, [32, 3, {}, "com.example.other"]))
        await assert_violation(t, caplog, "request ID 3 is not sequential (expected 2)")


async def test_any_request_ids_are_accepted_when_not_strict(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with (
        running(tmp_path, strict_request_ids=False) as router,
        open_transport(router.url("ws")) as t,
    ):
        await join(t)
        for request in (7, 3, 3):
            await t.send(encode(t, [32, request, {}, "com.example.topic"]))
            subscribed = await receive(t)
            assert subscribed.type is MessageType.SUBSCRIBED
            assert subscribed.request == request  # type: ignore[attr-defined]
    assert_nothing_logged(caplog)


# -- invalid URIs: ERROR wamp.error.invalid_uri, the session goes on ---------------------------


INVALID_URIS = [
    ("SUBSCRIBE", [32, 1, {}, "com..topic"], "invalid topic URI 'com..topic'"),
    ("SUBSCRIBE", [32, 1, {}, "com.my topic"], "invalid topic URI 'com.my topic'"),
    ("SUBSCRIBE", [32, 1, {}, ""], "invalid topic URI ''"),
    ("SUBSCRIBE", [32, 1, {"match": "prefix"}, "com..x"], "for match policy 'prefix'"),
    ("SUBSCRIBE", [32, 1, {"match": "wildcard"}, "com.#.x"], "for match policy 'wildcard'"),
    ("REGISTER", [64, 1, {}, "com.example."], "invalid procedure URI 'com.example.'"),
    ("REGISTER", [64, 1, {}, "wamp.mine"], "invalid procedure URI 'wamp.mine'"),
    ("REGISTER", [64, 1, {"match": "wildcard"}, "com. .x"], "for match policy 'wildcard'"),
    ("CALL", [48, 1, {}, "com.example#add"], "invalid procedure URI 'com.example#add'"),
    ("CALL", [48, 1, {}, ".com"], "invalid procedure URI '.com'"),
    ("PUBLISH", [16, 1, {"acknowledge": True}, "com..topic"], "invalid topic URI 'com..topic'"),
    ("PUBLISH", [16, 1, {"acknowledge": True}, "wamp.topic"], "invalid topic URI 'wamp.topic'"),
]


@pytest.mark.parametrize(("kind", "raw", "text"), INVALID_URIS)
async def test_invalid_uris_get_error_invalid_uri(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, kind: str, raw: list[Any], text: str
) -> None:
    async with running(tmp_path) as router, open_transport(router.url("ws"), "msgpack") as t:
        await join(t)
        await t.send(encode(t, raw))
        error = await receive(t)
        assert isinstance(error, wamp_core.Error)
        assert (MessageType(error.request_type).name, error.request) == (kind, 1)
        assert error.error == ErrorURI.INVALID_URI
        assert error.args is not None
        assert text in error.args[0]
        # The session goes on: the next request is answered.
        await t.send(encode(t, [32, 2, {}, "com.example.topic"]))
        assert (await receive(t)).type is MessageType.SUBSCRIBED
    assert_nothing_logged(caplog)


async def test_loose_uris_and_patterns_are_accepted(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The router applies the loose URI rules: upper case, dashes and other
    characters than [0-9a-z_] are accepted (the strict rule is a SHOULD);
    empty components only in wildcard patterns, a trailing one in prefixes."""
    accepted = [
        [32, 1, {}, "Com.Example-Topic.ü"],
        [32, 2, {"match": "wildcard"}, "com..topic"],
        [32, 3, {"match": "prefix"}, "com.example."],
        [64, 4, {}, "Com.Example.ADD"],
        [64, 5, {"match": "wildcard"}, ".example."],
        [64, 6, {"match": "prefix"}, "com."],
        [32, 7, {}, "wamp.session.on_join"],  # meta topics may be subscribed
    ]
    async with running(tmp_path) as router, open_transport(router.url("rs"), "cbor") as t:
        await join(t)
        for raw in accepted:
            await t.send(encode(t, raw))
            reply = await receive(t)
            assert reply.type in (MessageType.SUBSCRIBED, MessageType.REGISTERED), (raw, reply)
        # A valid URI in the reserved namespace is no invalid URI for a CALL.
        await t.send(encode(t, [48, 8, {}, "wamp.nothing"]))
        error = await receive(t)
        assert isinstance(error, wamp_core.Error)
        assert error.error == ErrorURI.NO_SUCH_PROCEDURE
    assert_nothing_logged(caplog)


async def test_an_unacknowledged_publish_to_an_invalid_uri_is_dropped_silently(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with running(tmp_path) as router, open_transport(router.url("ws")) as t:
        await join(t)
        await t.send(encode(t, [16, 1, {}, "com..topic"]))
        await t.send(encode(t, [16, 2, {"acknowledge": True}, "com.example.topic"]))
        published = await receive(t)  # the first PUBLISH got nothing
        assert (published.type, published.request) == (MessageType.PUBLISHED, 2)  # type: ignore[attr-defined]
    assert_nothing_logged(caplog)


# -- HELLO refused: ABORT, the transport may say HELLO again ------------------------------------


@pytest.mark.parametrize(
    ("hello", "reason", "text"),
    [
        ([1, "realm 1", ROLES], ErrorURI.INVALID_URI, "invalid realm URI 'realm 1'"),
        ([1, "realm1.", ROLES], ErrorURI.INVALID_URI, "invalid realm URI 'realm1.'"),
        ([1, "com.example.nowhere", ROLES], ErrorURI.NO_SUCH_REALM, "no realm"),
        (
            [1, "realm1", {**ROLES, "authmethods": ["ticket"]}],
            ErrorURI.NO_MATCHING_AUTH_METHOD,
            "this realm admits anonymous sessions only",
        ),
        (
            [1, "realm1", {**ROLES, "authmethods": ["x-unknown-method"]}],
            ErrorURI.NO_MATCHING_AUTH_METHOD,
            "this realm admits anonymous sessions only",
        ),
    ],
)
async def test_a_refused_hello_gets_abort_and_may_be_retried(
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    hello: list[Any],
    reason: str,
    text: str,
) -> None:
    async with running(tmp_path) as router, open_transport(router.url("ws"), "cbor") as t:
        await t.send(encode(t, hello))
        abort = await receive(t)
        assert isinstance(abort, Abort)
        assert abort.reason == reason
        assert text in abort.details["message"]
        await join(t)  # the connection stays open for another HELLO
    assert_nothing_logged(caplog)


ALICE = {"authmethods": ["ticket"], "authid": "alice"}
SECURED = """
[[realms]]
name = "realm1"

[[realms.roles]]
name = "user"

[[realms.principals]]
authid = "alice"
role = "user"
ticket = "alice-ticket"
"""


@pytest.mark.parametrize(
    ("details", "reason", "text"),
    [
        (
            {"authmethods": ["x-unknown"], "authid": "alice"},
            ErrorURI.NO_MATCHING_AUTH_METHOD,
            "none of the offered authentication methods is available",
        ),
        (
            {"authmethods": "ticket", "authid": "alice"},  # not a list
            ErrorURI.NO_MATCHING_AUTH_METHOD,
            "none of the offered authentication methods is available",
        ),
        ({}, ErrorURI.NO_MATCHING_AUTH_METHOD, ""),  # anonymous: not admitted here
    ],
)
async def test_a_secured_realm_refuses_unsupported_authmethods(
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    details: dict[str, Any],
    reason: str,
    text: str,
) -> None:
    secured = build_router(parse_config(SECURED))
    async with running(tmp_path, router=secured) as router, open_transport(router.url("rs")) as t:
        await t.send(encode(t, [1, "realm1", {**ROLES, **details}]))
        abort = await receive(t)
        assert isinstance(abort, Abort)
        assert abort.reason == reason
        assert text in abort.details.get("message", "")
        await t.send(encode(t, [1, "realm1", {**ROLES, **ALICE}]))
        challenge = await receive(t)
        assert challenge.type is MessageType.CHALLENGE
        await t.send(encode(t, [5, "not-alice-ticket", {}]))
        abort = await receive(t)
        assert isinstance(abort, Abort)
        assert abort.reason == ErrorURI.AUTHENTICATION_FAILED
        await t.send(encode(t, [1, "realm1", {**ROLES, **ALICE}]))
        assert (await receive(t)).type is MessageType.CHALLENGE
        await t.send(encode(t, [5, "alice-ticket", {}]))
        assert (await receive(t)).type is MessageType.WELCOME
    assert_nothing_logged(caplog)


# -- RawSocket: the handshake and the framing ----------------------------------------------


async def raw_exchange(stream: trio.abc.Stream, data: bytes) -> bytes:
    """Send ``data``; everything the router answers until it closes."""
    async with stream:
        await stream.send_all(data)
        answer = bytearray()
        for _ in range(1000):
            chunk = await stream.receive_some()
            if not chunk:
                return bytes(answer)
            answer += chunk
    raise AssertionError("the router did not close the connection")


@pytest.mark.parametrize(
    ("request_bytes", "reply"),
    [
        (b"\x7f\xf0\x00\x00", b"\x7f\x10\x00\x00"),  # serializer 0: illegal -> error 1
        (b"\x7f\xf4\x00\x00", b"\x7f\x10\x00\x00"),  # UBJSON: unsupported -> error 1
        (b"\x7f\xff\x00\x00", b"\x7f\x10\x00\x00"),  # serializer 15 (reserved) -> error 1
        (b"\x7f\xf1\x01\x00", b"\x7f\x30\x00\x00"),  # reserved bits -> error 3
        (b"\x7f\xf1\x00\x80", b"\x7f\x30\x00\x00"),
    ],
    ids=["serializer-0", "ubjson", "serializer-15", "reserved-byte-3", "reserved-byte-4"],
)
@pytest.mark.parametrize("over", ["tcp", "unix"])
async def test_a_bad_rawsocket_handshake_gets_its_error_code(
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    request_bytes: bytes,
    reply: bytes,
    over: str,
) -> None:
    async with running(tmp_path) as router:
        if over == "tcp":
            stream: trio.abc.Stream = await trio.open_tcp_stream("127.0.0.1", router.port)
        else:
            stream = await trio.open_unix_socket(router.unix_path)
        assert await raw_exchange(stream, request_bytes) == reply
    assert_logged(caplog, logging.INFO, f"RawSocket handshake from {over}", "refused: ")


async def test_a_bad_magic_byte_on_the_unix_socket_is_closed_without_reply(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with running(tmp_path) as router:
        stream = await trio.open_unix_socket(router.unix_path)
        assert await raw_exchange(stream, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n") == b""
    assert_logged(
        caplog, logging.INFO, "RawSocket handshake from unix", "refused: ", "first byte is 0x47"
    )


async def test_every_length_exponent_is_accepted(tmp_path: Path) -> None:
    """LLLL is 4 bits: 0..15 are all legal, and the router requires no minimum,
    so error code 2 is never sent."""
    async with running(tmp_path) as router:
        for exponent in range(16):
            async with await trio.open_tcp_stream("127.0.0.1", router.port) as stream:
                await stream.send_all(bytes((0x7F, (exponent << 4) | 1, 0, 0)))
                reply = await stream.receive_some(4)
                assert reply == b"\x7f\x71\x00\x00"  # 64 KiB (2**(9+7)), JSON


async def test_a_client_maximum_below_the_welcome_size_closes_the_connection(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A client announcing 512 bytes cannot receive the WELCOME (larger): the
    router closes the connection and says why, at WARNING."""
    async with running(tmp_path) as router:
        stream = await trio.open_tcp_stream("127.0.0.1", router.port)
        await stream.send_all(b"\x7f\x01\x00\x00")  # 512 bytes, JSON
        assert await stream.receive_some(4) == b"\x7f\x71\x00\x00"
        hello = wamp_core.get_serializer("json").dumps(HELLO)
        answer = await raw_exchange(stream, struct.pack(">I", len(hello)) + hello)
        assert answer == b""  # no WELCOME, no ABORT: closed
    assert_logged(caplog, logging.WARNING, "closing the connection: a message could not be sent")
    assert_logged(caplog, logging.WARNING, "exceeds the peer's maximum of 512 bytes")


@pytest.mark.parametrize(
    "frame",
    [
        b"\x03\x00\x00\x02[]",  # reserved frame type 3
        b"\x07\x00\x00\x00",  # reserved frame type 7
        b"\x10\x00\x00\x02[]",  # a reserved bit of the header
        b"\x08\x00\x00\x01x",  # the 25th length bit with low length bits
        struct.pack(">I", MAX_MESSAGE_SIZE + 1),  # longer than the router announced
        b"\x01" + (600).to_bytes(3, "big") + b"p" * 600,  # a PING over the client's 512 bytes
    ],
    ids=["type-3", "type-7", "reserved-bit", "x-bit", "over-maximum", "large-ping"],
)
@pytest.mark.parametrize("over", ["tcp", "unix"])
async def test_a_bad_rawsocket_frame_closes_the_connection(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, frame: bytes, over: str
) -> None:
    async with running(tmp_path) as router:
        if over == "tcp":
            stream: trio.abc.Stream = await trio.open_tcp_stream("127.0.0.1", router.port)
        else:
            stream = await trio.open_unix_socket(router.unix_path)
        await stream.send_all(b"\x7f\x01\x00\x00")  # JSON, the client takes 512 bytes
        assert await stream.receive_some(4) == b"\x7f\x71\x00\x00"
        # Nothing comes back: no ABORT (no session yet), no RawSocket error reply.
        assert await raw_exchange(stream, frame) == b""
        await trio.testing.wait_all_tasks_blocked()
        assert router.host.connections == ()
    assert_logged(caplog, logging.INFO, f"closing RawSocket connection {over}")
    assert_logged(caplog, logging.DEBUG, "rawsocket", ": closed")


async def test_a_bad_rawsocket_frame_after_welcome_ends_the_session(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with running(tmp_path) as router, open_transport(router.url("rs")) as transport:
        await join(transport)
        assert len(router.host.router.sessions) == 1
        stream = transport._stream  # type: ignore[attr-defined]
        await stream.send_all(b"\x03\x00\x00\x02[]")
        assert await until_closed(transport) == []  # no ABORT: the transport failed
        await trio.testing.wait_all_tasks_blocked()
        assert router.host.router.sessions == {}
    assert_logged(caplog, logging.INFO, "closing RawSocket connection tcp", "reserved frame type 3")


# -- WebSocket: the handshake and the frames ------------------------------------------------


async def http_exchange(port: int, request: bytes) -> tuple[int, dict[str, str], bytes]:
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    answer = await raw_exchange(stream, request)
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(lines[0].split()[1]), headers, body


def http_request(method: str, path: str, body: bytes = b"", *headers: str) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", "Connection: close", *headers]
    if body or method == "POST":
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


@pytest.mark.parametrize(
    ("request_bytes", "status", "body"),
    [
        (upgrade_request(None), 400, "No supported WebSocket subprotocol offered (offered: none)"),
        (upgrade_request("wamp.2.xml"), 400, "This WAMP router supports: wamp.2.json"),
        (upgrade_request("mqtt, wamp.1.json"), 400, "(offered: mqtt, wamp.1.json)"),
        (http_request("GET", "/ws"), 426, "This is a WAMP WebSocket endpoint"),
        (upgrade_request(method="POST"), 405, "A WebSocket handshake is a GET request."),
        (
            upgrade_request().replace(b"Version: 13", b"Version: 8"),
            426,
            "Bad WebSocket handshake",
        ),
        (
            upgrade_request().replace(b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n", b""),
            400,
            "Bad WebSocket handshake: Missing header, 'Sec-WebSocket-Key'",
        ),
    ],
)
async def test_a_bad_websocket_handshake_gets_an_http_error(
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    request_bytes: bytes,
    status: int,
    body: str,
) -> None:
    async with running(tmp_path) as router:
        got, _, text = await http_exchange(router.port, request_bytes)
    assert got == status
    assert body in text.decode()
    assert_logged(caplog, logging.INFO, "WebSocket handshake with tcp4:127.0.0.1:", f"({status})")


@pytest.mark.parametrize(
    ("request_bytes", "status", "body"),
    [
        (http_request("GET", "/"), 404, "Not found: /"),
        (upgrade_request().replace(b"GET /ws ", b"GET /wamp "), 404, "Not found: /wamp"),
        (http_request("POST", "/lpx/open", b"{}"), 404, "Not found: /lpx/open"),
        (b"\x16\x03\x01\x02\x00\x01", 400, "Bad request: neither HTTP nor RawSocket."),
        (b"HELLO\r\n\r\n", 400, "Bad request: invalid HTTP request"),
        (b"GET / HTTP/1.1\r\n" + b"X" * 20_000, 431, "The request head is too large."),
    ],
)
async def test_a_bad_http_request_on_the_tcp_port_gets_an_http_error(
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    request_bytes: bytes,
    status: int,
    body: str,
) -> None:
    async with running(tmp_path) as router:
        got, headers, text = await http_exchange(router.port, request_bytes)
    assert (got, headers["connection"]) == (status, "close")
    assert body in text.decode()
    assert_logged(caplog, logging.INFO, "HTTP request from tcp4:127.0.0.1:", f"refused ({status})")


async def test_an_http_request_on_a_rawsocket_only_port_gets_404(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    only_rawsocket = TcpListener(port=0, websocket=None, longpoll=None)
    async with running(tmp_path, listener=only_rawsocket) as router:
        got, _, text = await http_exchange(router.port, upgrade_request())
    assert (got, text) == (404, b"Not found: /ws\n")
    assert_logged(caplog, logging.INFO, "HTTP request from", "refused (404): Not found: /ws")


async def test_rawsocket_on_a_port_without_it_is_closed(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    no_rawsocket = TcpListener(port=0, rawsocket=False)
    async with running(tmp_path, listener=no_rawsocket) as router:
        stream = await trio.open_tcp_stream("127.0.0.1", router.port)
        assert await raw_exchange(stream, b"\x7f\xf1\x00\x00") == b""
    assert_logged(caplog, logging.INFO, "RawSocket from tcp4:127.0.0.1:", "RawSocket is disabled")


async def read_close_frame(stream: trio.abc.ReceiveStream) -> tuple[int, str]:
    """Read the server's frames up to its close frame: (code, reason)."""
    data = bytearray()
    for _ in range(1000):
        if len(data) >= 2 and len(data) >= 2 + (data[1] & 0x7F):
            assert data[0] == 0x88, bytes(data)  # a whole, final, unmasked close frame
            payload = bytes(data[2 : 2 + data[1]])
            return struct.unpack("!H", payload[:2])[0], payload[2:].decode()
        chunk = await stream.receive_some()
        assert chunk, "the server closed without a close frame"
        data += chunk
    raise AssertionError("no close frame")


@pytest.mark.parametrize(
    ("frame", "code", "reason"),
    [
        (masked_frame(0x1, b"[1, \xff]"), 1007, "invalid start byte"),
        (masked_frame(0x1, b"[]", mask=False), 1002, "unexpected unmasked frame"),
        (masked_frame(0x9, b"ping", fin=False), 1002, "invalid attempt to fragment control frame"),
        (masked_frame(0x9, b"x" * 126), 1002, "Control frame with payload len > 125"),
        (masked_frame(0x3, b"[]"), 1002, "invalid opcode 0x3"),
        (bytes([0xC1]) + masked_frame(0x1, b"[]")[1:], 1002, "Reserved bit"),
        (masked_frame(0x0, b"[]"), 1002, "unexpected CONTINUATION"),
        (
            masked_frame(0x1, b"[", fin=False) + masked_frame(0x1, b"]"),
            1002,
            "expected CONTINUATION",
        ),
        (masked_frame(0x2, b"x" * (MAX_MESSAGE_SIZE + 1)), 1009, "message larger than 65536"),
        (
            masked_frame(0x2, b"x" * 40_000, fin=False) + masked_frame(0x0, b"x" * 40_000),
            1009,
            "message larger than 65536",
        ),
    ],
    ids=[
        "invalid-utf8",
        "unmasked",
        "fragmented-control",
        "long-control",
        "reserved-opcode",
        "reserved-bit",
        "lone-continuation",
        "missing-continuation",
        "oversized",
        "oversized-fragmented",
    ],
)
async def test_a_bad_websocket_frame_gets_a_close_frame(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, frame: bytes, code: int, reason: str
) -> None:
    async with running(tmp_path) as router:
        async with await trio.open_tcp_stream("127.0.0.1", router.port) as stream:
            await stream.send_all(upgrade_request("wamp.2.json"))
            head = b""
            for _ in range(1000):
                if b"\r\n\r\n" in head:
                    break
                head += await stream.receive_some(1)  # the head only: frames come later
            assert head.startswith(b"HTTP/1.1 101 ")
            await stream.send_all(frame)
            got = await read_close_frame(stream)
        assert got[0] == code
        assert reason.lower() in got[1].lower()
    assert_logged(caplog, logging.INFO, "closing WebSocket connection tcp4:127.0.0.1:", str(code))


# -- long-poll ---------------------------------------------------------------------------


async def open_longpoll(port: int) -> str:
    status, _, body = await http_exchange(
        port, http_request("POST", "/lp/open", b'{"protocols": ["wamp.2.json"]}')
    )
    assert status == 200, body
    transport_id: str = wamp_core.get_serializer("json").loads(body)["transport"]
    return transport_id


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "text"),
    [
        ("POST", "/lp/nosuchid/send", b"[1]", 404, "no long-poll transport 'nosuchid'"),
        ("POST", "/lp/nosuchid/receive", b"", 404, "no long-poll transport 'nosuchid'"),
        ("POST", "/lp/nosuchid/close", b"", 404, "no long-poll transport 'nosuchid'"),
        ("POST", "/lp/open/more", b"", 404, "no such long-poll resource"),
        ("POST", "/lp/{id}/unknown", b"", 404, "no such long-poll resource"),
        ("POST", "/lp/open", b"{not json", 400, "open: the body is not JSON"),
        ("POST", "/lp/open", b"[]", 400, "open: the body must be a JSON object"),
        ("POST", "/lp/open", b'{"protocols": []}', 400, '"protocols" must be a non-empty list'),
        ("POST", "/lp/open", b'{"protocols": ["wamp.2.xml"]}', 400, "open: no common protocol"),
        ("POST", "/lp/{id}/send", b"", 400, "send: the body must hold a WAMP message"),
        ("GET", "/lp/open", b"", 405, "only POST is allowed here"),
        ("PUT", "/lp/{id}/send", b"[1]", 405, "only POST is allowed here"),
        ("POST", "/lp/{id}/send", b"x" * (MAX_MESSAGE_SIZE + 1), 413, "request body over 65536"),
        ("POST", "/lp/open", b"x" * (MAX_MESSAGE_SIZE + 1), 413, "request body over 65536"),
    ],
)
async def test_a_bad_longpoll_request_gets_an_http_error(
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    *,
    method: str,
    path: str,
    body: bytes,
    status: int,
    text: str,
) -> None:
    async with running(tmp_path) as router:
        if "{id}" in path:
            path = path.replace("{id}", await open_longpoll(router.port))
        got, _, answer = await http_exchange(router.port, http_request(method, path, body))
    assert got == status, answer
    assert text in answer.decode()
    assert_logged(
        caplog, logging.INFO, f"long-poll request {method} {path} from tcp4:", f"refused ({status})"
    )


async def test_a_chunked_longpoll_body_over_the_limit_gets_413(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with running(tmp_path) as router:
        transport_id = await open_longpoll(router.port)
        chunk = b"x" * 40_000
        body = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(2)) + b"0\r\n\r\n"
        request = http_request(
            "POST", f"/lp/{transport_id}/send", b"", "Transfer-Encoding: chunked"
        ).replace(b"Content-Length: 0\r\n", b"")
        got, _, answer = await http_exchange(router.port, request + body)
    assert (got, answer) == (413, b"request body over 65536 bytes")
    assert_logged(caplog, logging.INFO, "long-poll request POST /lp/", "refused (413)")


async def test_garbage_on_an_open_longpoll_connection_gets_400(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A second request on a kept-alive long-poll connection that is not HTTP."""
    async with running(tmp_path) as router:
        stream = await trio.open_tcp_stream("127.0.0.1", router.port)
        first = http_request("POST", "/lp/x/receive").replace(b"Connection: close\r\n", b"")
        answer = await raw_exchange(stream, first + b"\x00\x01 not http\r\n\r\n")
    responses = answer.split(b"HTTP/1.1 ")
    assert [r.split(b" ", 1)[0] for r in responses[1:]] == [b"404", b"400"]
    assert_logged(caplog, logging.INFO, "long-poll request POST /lp/x/receive", "refused (404)")
    assert_logged(caplog, logging.INFO, "HTTP request from tcp4:", "refused (400): invalid HTTP")


# -- silence -------------------------------------------------------------------------------


async def test_a_silent_client_is_dropped_after_the_handshake_timeout(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, autojump_clock: trio.testing.MockClock
) -> None:
    async with running(tmp_path) as router:
        streams = []
        for request in (b"", b"\x7f", b"GET /ws HTTP/1.1\r\nHost:"):
            stream = await trio.open_tcp_stream("127.0.0.1", router.port)
            await stream.send_all(request)
            streams.append(stream)
        start = trio.current_time()
        for stream in streams:
            assert await raw_exchange(stream, b"") == b""
        assert trio.current_time() - start >= 10  # the router's handshake_timeout
    # Logged for the silent client, the partial HTTP head and the partial
    # RawSocket handshake.
    dropped = [line for line in records(caplog, logging.INFO) if line.startswith("dropping")]
    assert len(dropped) == 3, caplog.text
    assert sum(line.endswith(": no handshake within 10.0 s") for line in dropped) == 2
    assert (
        sum(line.endswith("RawSocket handshake did not complete in time") for line in dropped) == 1
    )
    assert_logged(caplog, logging.INFO, "dropping tcp4:127.0.0.1:", "no handshake within 10.0 s")


async def test_a_silent_unix_client_is_dropped_after_the_handshake_timeout(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, autojump_clock: trio.testing.MockClock
) -> None:
    async with running(tmp_path) as router:
        stream = await trio.open_unix_socket(router.unix_path)
        start = trio.current_time()
        assert await raw_exchange(stream, b"\x7f\xf1") == b""
        assert trio.current_time() - start >= 10
    assert_logged(
        caplog, logging.INFO, "dropping unix", "RawSocket handshake did not complete in time"
    )


# -- the configuration file ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ("[router]\nstrict_request_ids = 1\n", "router.strict_request_ids: must be true or false"),
        ('[limits]\nqueue_size = "10"\n', "limits.queue_size: must be an integer >= 1, not '10'"),
        ("[router]\nstrict_ids = true\n", "router.strict_ids: unknown key (expected one of: "),
        ("[loging]\nlevel = 'debug'\n", "loging: unknown key (expected one of: "),
        ('[[listeners]]\ntype = "udp"\n', "listeners[0].type: must be 'tcp' or 'unix', not 'udp'"),
    ],
)
def test_a_bad_config_file_exits_2_naming_the_key(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    toml: str,
    message: str,
) -> None:
    config = tmp_path / "router.toml"
    config.write_text(toml)
    assert main(["router", "--config", str(config)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith(f"wampcore router: error: {config}: {message}")
    assert captured.err.count("\n") == 1  # one line
    assert_nothing_logged(caplog)
