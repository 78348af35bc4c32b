"""The router's listeners (wamp_trio._listen) over real loopback and Unix sockets."""

from __future__ import annotations

import datetime
import errno
import ipaddress
import logging
import socket
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import trio
import trio_websocket
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

import wamp_core
from wamp_trio import _listen
from wamp_trio._connect import open_transport
from wamp_trio._listen import serve_tcp, serve_unix
from wamp_trio._longpoll import LongPollServer
from wamp_trio._transport import MessageTransport, TransportClosed
from wamp_trio._websocket import connect_websocket

# -- helpers ----------------------------------------------------------------------------


class Echo:
    """A handler echoing every message; remembers each transport's info."""

    def __init__(self) -> None:
        self.infos: list[dict[str, Any]] = []

    async def __call__(self, transport: MessageTransport) -> None:
        self.infos.append(transport.info)
        while True:
            try:
                await transport.send(await transport.receive())
            except TransportClosed:
                return


def port_of(listener: trio.abc.Listener[Any]) -> int:
    inner: Any = listener
    while not isinstance(inner, trio.SocketListener):
        inner = inner.transport_listener
    port: int = inner.socket.getsockname()[1]
    return port


@asynccontextmanager
async def serving(
    handler: Any = None, *, longpoll: bool = False, **options: Any
) -> AsyncIterator[int]:
    """Run serve_tcp on 127.0.0.1 port 0 (and a LongPollServer at /lp); yield the port."""
    handler = handler or Echo()
    async with trio.open_nursery() as nursery:
        if longpoll:
            server = LongPollServer(handler, "/lp")
            await nursery.start(server.run)
            options["longpoll"] = server
        listeners = await nursery.start(partial(serve_tcp, handler, "127.0.0.1", 0, **options))
        yield port_of(listeners[0])
        nursery.cancel_scope.cancel()


async def exchange(port: int, request: bytes, *, close_after_send: bool = False) -> bytes:
    """Send raw bytes to the server; everything it answers until it closes."""
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    async with stream:
        await stream.send_all(request)
        if close_after_send:
            await stream.send_eof()
        answer = bytearray()
        while chunk := await stream.receive_some():
            answer += chunk
        return bytes(answer)


def parse_response(data: bytes) -> tuple[int, dict[str, str], bytes]:
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(lines[0].split()[1]), headers, body


async def round_trip(url: str, serializer: str, **options: Any) -> dict[str, Any]:
    async with open_transport(url, serializer, **options) as transport:
        hello = [1, "realm1", {"roles": {"caller": {}}}]
        publish = [16, 1, {}, "com.example.topic", ["z" * 100_000]]
        for message in (hello, publish):
            data = transport.serializer.encode(wamp_core.parse_message(message))
            await transport.send(data)
            assert await transport.receive() == data
        return transport.info


def make_tls(tmp_path: Path) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """A self-signed certificate for 127.0.0.1: (server context, client context)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "wamp-core test")])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(cert_file, key_file)
    client = ssl.create_default_context(cafile=str(cert_file))
    return server, client


# -- serving ----------------------------------------------------------------------------


async def test_serve_tcp_binds_port_zero_and_returns_the_listeners() -> None:
    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(serve_tcp, Echo(), "127.0.0.1", 0)
        assert len(listeners) == 1
        assert isinstance(listeners[0], trio.SocketListener)
        assert listeners[0].socket.getsockname()[0] == "127.0.0.1"
        assert port_of(listeners[0]) != 0
        nursery.cancel_scope.cancel()


async def test_one_port_serves_websocket_longpoll_and_rawsocket() -> None:
    echo = Echo()
    async with serving(echo, longpoll=True) as port:
        await round_trip(f"ws://127.0.0.1:{port}/ws", "json")
        await round_trip(f"ws://127.0.0.1:{port}/ws", "wamp.2.msgpack.batched")
        await round_trip(f"rs://127.0.0.1:{port}", "cbor")
        await round_trip(f"http://127.0.0.1:{port}/lp", "json")
    types = [
        (info["type"], info["tls"], info["peer"].startswith("tcp4:127.0.0.1:"))
        for info in echo.infos
    ]
    assert types[:3] == [
        ("websocket", False, True),
        ("websocket", False, True),
        ("rawsocket", False, True),
    ]
    assert types[3][0] == "longpoll"
    assert echo.infos[0]["protocol"] == "wamp.2.json"
    assert echo.infos[1]["protocol"] == "wamp.2.msgpack.batched"


async def test_tls_on_every_transport_of_the_port(tmp_path: Path) -> None:
    server_context, client_context = make_tls(tmp_path)
    echo = Echo()
    async with serving(echo, longpoll=True, ssl_context=server_context) as port:
        await round_trip(f"wss://127.0.0.1:{port}/ws", "cbor", ssl_context=client_context)
        await round_trip(f"rss://127.0.0.1:{port}", "msgpack", ssl_context=client_context)
        await round_trip(f"https://127.0.0.1:{port}/lp", "json", ssl_context=client_context)
    assert [info["type"] for info in echo.infos] == ["websocket", "rawsocket", "longpoll"]
    for info in echo.infos[:2]:
        assert info["tls"] is True
        assert info["tls_version"].startswith("TLS")
        assert info["tls_cipher"]


async def test_a_failed_tls_handshake_is_logged_and_the_server_goes_on(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="wamp_trio")
    server_context, client_context = make_tls(tmp_path)
    async with serving(ssl_context=server_context) as port:
        answer = await exchange(port, b"GET /ws HTTP/1.1\r\nHost: x\r\n\r\n")
        assert not answer.startswith(b"HTTP")
        await round_trip(f"wss://127.0.0.1:{port}/ws", "json", ssl_context=client_context)
    assert "TLS handshake with tcp4:127.0.0.1:" in caplog.text


async def test_trio_websocket_client_through_the_dispatcher() -> None:
    async with (
        serving() as port,
        trio_websocket.open_websocket(
            "127.0.0.1", port, "/ws", use_ssl=False, subprotocols=["wamp.2.json"]
        ) as ws,
    ):
        await ws.send_message("[1]")
        assert await ws.get_message() == "[1]"


# -- HTTP answers -----------------------------------------------------------------------


async def test_unknown_paths_get_404() -> None:
    async with serving(longpoll=True) as port:
        for path in ("/", "/wsx", "/lpx", "/ws/more"):
            request = f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode()
            status, headers, body = parse_response(await exchange(port, request))
            assert status == 404
            assert headers["connection"] == "close"
            assert body == f"Not found: {path}\n".encode()
        # A body the server never reads does not turn the answer into a reset.
        request = b"POST /nope HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n"
        answer = await exchange(port, request + b"x" * 100_000, close_after_send=True)
        assert parse_response(answer)[0] == 404


async def test_garbage_gets_400() -> None:
    async with serving() as port:
        status, _, body = parse_response(await exchange(port, b"\x00\x01garbage"))
        assert status == 400
        assert body == b"Bad request: neither HTTP nor RawSocket.\n"
        status, _, body = parse_response(await exchange(port, b"HELLO\r\n\r\n"))
        assert status == 400
        assert body.startswith(b"Bad request: invalid HTTP request")
        status, _, _ = parse_response(await exchange(port, b"GET / HTTP/1.1\r\n" + b"a" * 20_000))
        assert status == 431


async def test_websocket_refusals_through_the_dispatcher() -> None:
    async with serving(serializers=["wamp.2.json"]) as port:
        status, headers, _ = parse_response(
            await exchange(port, b"GET /ws?x=1 HTTP/1.1\r\nHost: x\r\n\r\n")
        )
        assert (status, headers["upgrade"]) == (426, "websocket")
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        with pytest.raises(Exception, match="400") as info:
            await connect_websocket(stream, "x", "/ws", ["wamp.2.cbor"])
        assert b"This WAMP router supports: wamp.2.json." in info.value.body  # type: ignore[attr-defined]


async def test_disabled_transports() -> None:
    async with serving(websocket_path=None, rawsocket=False) as port:
        request = b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\r\n"
        assert parse_response(await exchange(port, request))[0] == 404
        assert await exchange(port, b"\x7f\xf1\x00\x00") == b""
        assert (
            parse_response(await exchange(port, b"GET /lp/open HTTP/1.1\r\nHost: x\r\n\r\n"))[0]
            == 404
        )


async def test_the_websocket_path_is_configurable() -> None:
    async with serving(websocket_path="/wamp") as port:
        await round_trip(f"ws://127.0.0.1:{port}/wamp", "json")


# -- misbehaving clients ----------------------------------------------------------------


async def test_a_silent_client_is_dropped_after_the_handshake_timeout(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with serving(handshake_timeout=3) as port:
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        async with stream:
            start = trio.current_time()
            assert await stream.receive_some() == b""
            assert trio.current_time() - start == pytest.approx(3, abs=0.1)
        # A partial request head is no better.
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        async with stream:
            await stream.send_all(b"GET /ws HTTP/1.1\r\nHost:")
            assert await stream.receive_some() == b""


async def test_a_silent_tls_client_is_dropped(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    server_context, _ = make_tls(tmp_path)
    async with serving(ssl_context=server_context, handshake_timeout=3) as port:
        assert await exchange(port, b"") == b""


async def test_clients_leaving_early_do_not_hurt_the_server() -> None:
    async with serving() as port:
        assert await exchange(port, b"", close_after_send=True) == b""
        assert await exchange(port, b"GET /ws HTTP/1.1\r\nHo", close_after_send=True) == b""
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        stream.socket.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00" * 2)
        await stream.send_all(b"GET /ws HTTP/1.1\r\n")
        await stream.aclose()  # a reset
        await round_trip(f"ws://127.0.0.1:{port}/ws", "json")


class Recorder(logging.Handler):
    """Collects the ``wamp_trio`` logger's error records; ``errors_seen`` waits for some."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []
        self._wanted = 0
        self._event = trio.Event()

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)
        if len(self.records) >= self._wanted:
            self._event.set()

    async def errors_seen(self, count: int) -> None:
        self._wanted = count
        if len(self.records) < count:
            with trio.fail_after(10):  # hang guard
                await self._event.wait()


async def test_a_failing_handler_is_logged_and_the_server_goes_on() -> None:
    async def failing(transport: MessageTransport) -> None:
        raise RuntimeError("handler bug")

    recorder = Recorder()
    logger = logging.getLogger("wamp_trio")
    logger.addHandler(recorder)
    try:
        async with serving(failing) as port:
            for _ in range(2):
                async with open_transport(f"ws://127.0.0.1:{port}/ws", "json") as transport:
                    with pytest.raises(TransportClosed):
                        await transport.receive()
            await recorder.errors_seen(2)
    finally:
        logger.removeHandler(recorder)
    for record in recorder.records:
        assert record.getMessage().startswith("connection from tcp4:127.0.0.1:")
        assert record.exc_info is not None
        assert str(record.exc_info[1]) == "handler bug"


# -- the dispatcher's calls, with fakes -------------------------------------------------


async def test_the_rawsocket_branch_gets_the_first_bytes_and_options(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[tuple[bytes, dict[str, Any]]] = []

    async def fake_accept_rawsocket(
        stream: trio.abc.Stream, initial: bytes = b"", **options: Any
    ) -> MessageTransport | None:
        calls.append((initial, options))
        await stream.send_all(b"fake")
        return None

    monkeypatch.setattr(_listen, "accept_rawsocket", fake_accept_rawsocket)
    serializers = ["wamp.2.json", "wamp.2.cbor.batched"]
    async with serving(serializers=serializers, max_message_size=1 << 20) as port:
        assert await exchange(port, b"\x7f\xf1\x00\x00", close_after_send=True) == b"fake"
    ((initial, given),) = calls
    assert initial == b"\x7f\xf1\x00\x00"
    assert given["serializers"] == frozenset({1, 3})
    assert given["max_length_exponent"] == 11  # 2**(9+11) = 1 MiB
    assert 0 < given["handshake_timeout"] <= 10
    assert given["info"]["peer"].startswith("tcp4:127.0.0.1:")


async def test_the_longpoll_branch_gets_the_request(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[bytes] = []

    class FakeLongPoll:
        base_path = "/long/"

        async def serve_http(self, stream: trio.abc.Stream, initial: bytes) -> None:
            seen.append(initial)
            await stream.send_all(b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n")
            await stream.aclose()

    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(
            partial(serve_tcp, Echo(), "127.0.0.1", 0, longpoll=FakeLongPoll())
        )
        port = port_of(listeners[0])
        request = b"POST /long/abc/send HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\n[1]"
        answer = await exchange(port, request)
        assert parse_response(answer)[0] == 204
        assert await exchange(port, b"GET /long HTTP/1.1\r\nHost: x\r\n\r\n")
        nursery.cancel_scope.cancel()
    assert seen[0] == request  # head and the body bytes read with it
    assert seen[1] == b"GET /long HTTP/1.1\r\nHost: x\r\n\r\n"


# -- Unix domain sockets ----------------------------------------------------------------


async def test_serve_unix(tmp_path: Path) -> None:
    path = tmp_path / "wamp.sock"
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(str(path))
    stale.close()  # leaves a socket file nobody listens on
    echo = Echo()
    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(serve_unix, echo, path)
        assert isinstance(listeners[0], trio.SocketListener)
        for serializer in ("json", "msgpack", "cbor"):
            await round_trip(f"unix://{path}", serializer)
        with pytest.raises(OSError, match="another server") as info:
            await nursery.start(serve_unix, echo, path)
        assert info.value.errno == errno.EADDRINUSE
        nursery.cancel_scope.cancel()
    assert not path.exists()
    assert [info["type"] for info in echo.infos] == ["rawsocket"] * 3
    assert echo.infos[0]["peer"].startswith("unix")


async def test_serve_unix_refuses_to_remove_a_regular_file(tmp_path: Path) -> None:
    path = tmp_path / "not-a-socket"
    path.write_text("precious")
    with pytest.raises(FileExistsError):
        await serve_unix(Echo(), path)
    assert path.read_text() == "precious"


async def test_serve_unix_answers_rawsocket_errors(tmp_path: Path) -> None:
    path = tmp_path / "wamp.sock"
    async with trio.open_nursery() as nursery:
        await nursery.start(partial(serve_unix, Echo(), path, serializers=["json"]))
        stream = await trio.open_unix_socket(str(path))
        async with stream:
            await stream.send_all(b"\x7f\xf2\x00\x00")  # MessagePack: not offered
            reply = await stream.receive_some()
        assert reply == bytes([0x7F, 0x10, 0, 0])  # error 1: serializer unsupported
        nursery.cancel_scope.cancel()


def test_rawsocket_ids_follow_the_subprotocols() -> None:
    assert _listen._rawsocket_ids(list(wamp_core.SERIALIZERS)) == [1, 2, 3]


# -- the accept loop -----------------------------------------------------------------------


class FlakyListener(trio.abc.Listener[trio.abc.Stream]):
    """Fails accept() with each of ``errors`` in turn, then hands out ``streams``."""

    def __init__(self, errors: list[OSError], streams: list[trio.abc.Stream]) -> None:
        self.errors = errors
        self.streams = streams
        self.closed = False

    async def accept(self) -> trio.abc.Stream:
        await trio.lowlevel.checkpoint()
        if self.errors:
            raise self.errors.pop(0)
        if self.streams:
            return self.streams.pop(0)
        await trio.sleep_forever()
        raise AssertionError("unreachable")

    async def aclose(self) -> None:
        self.closed = True
        await trio.lowlevel.checkpoint()


async def test_the_accept_loop_waits_out_a_shortage_of_descriptors(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    stream: trio.abc.Stream = trio.testing.memory_stream_pair()[0]
    listener = FlakyListener([OSError(errno.EMFILE, "Too many open files")], [stream])
    served: list[tuple[trio.abc.Stream, str]] = []

    async def serve_stream(stream: trio.abc.Stream) -> None:
        served.append((stream, trio.lowlevel.current_task().name))
        await trio.lowlevel.checkpoint()

    async with trio.open_nursery() as nursery:
        start = trio.current_time()
        started = await nursery.start(_listen._serve_listeners, serve_stream, [listener], None)
        assert started == [listener]
        await trio.sleep(0.09)
        assert served == []  # still waiting before it accepts again
        await trio.sleep(0.02)
        assert served == [(stream, "wamp_trio connection")]
        assert trio.current_time() - start >= 0.1
        nursery.cancel_scope.cancel()
    assert listener.closed
    assert "accept failed: Too many open files; retrying in 0.1 s" in caplog.text


async def test_the_accept_loop_stops_on_other_errors() -> None:
    listener = FlakyListener([OSError(errno.EINVAL, "Invalid argument")], [])

    async def serve_stream(stream: trio.abc.Stream) -> None:
        raise AssertionError("no connection was accepted")

    with pytest.RaisesGroup(
        pytest.RaisesExc(OSError, match="Invalid argument"), flatten_subgroups=True
    ):
        async with trio.open_nursery() as nursery:
            await nursery.start(_listen._serve_listeners, serve_stream, [listener], None)
    assert listener.closed
