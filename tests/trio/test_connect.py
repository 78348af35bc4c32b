"""open_transport for every scheme, against small echo servers on real sockets."""

from __future__ import annotations

import functools
import socket
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import trio

import wamp_core
from wamp_trio._connect import open_transport
from wamp_trio._longpoll import LongPollServer
from wamp_trio._rawsocket import accept_rawsocket
from wamp_trio._transport import MessageTransport, TransportClosed
from wamp_trio._websocket import WebSocketHandshakeError, accept_websocket

from .test_longpoll import serve_connection
from .test_rawsocket import make_tls_contexts

StreamHandler = Callable[[trio.abc.Stream], Awaitable[None]]


async def echo(transport: MessageTransport | None) -> None:
    """Send every message back; record nothing."""
    if transport is None:
        return
    try:
        while True:
            await transport.send(await transport.receive())
    except TransportClosed:
        pass
    finally:
        await transport.aclose()


async def rawsocket_echo(stream: trio.abc.Stream) -> None:
    await echo(await accept_rawsocket(stream))


async def websocket_echo(stream: trio.abc.Stream, subprotocols: list[str]) -> None:
    await echo(await accept_websocket(stream, b"", subprotocols=subprotocols))


def tls(handler: StreamHandler, context: ssl.SSLContext) -> StreamHandler:
    async def wrapped(stream: trio.abc.Stream) -> None:
        await handler(trio.SSLStream(stream, context, server_side=True))

    return wrapped


@asynccontextmanager
async def tcp_server(handler: StreamHandler) -> AsyncIterator[int]:
    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(
            functools.partial(trio.serve_tcp, handler, 0, host="127.0.0.1")
        )
        yield listeners[0].socket.getsockname()[1]
        nursery.cancel_scope.cancel()


@asynccontextmanager
async def unix_server(path: str, handler: StreamHandler) -> AsyncIterator[None]:
    sock = trio.socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    await sock.bind(path)
    sock.listen()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(trio.serve_listeners, handler, [trio.SocketListener(sock)])
        yield
        nursery.cancel_scope.cancel()


@asynccontextmanager
async def longpoll_server(context: ssl.SSLContext | None) -> AsyncIterator[int]:
    server = LongPollServer(echo, "/lp")
    handler: StreamHandler = functools.partial(serve_connection, server)
    if context is not None:
        handler = tls(handler, context)
    async with trio.open_nursery() as nursery:
        await nursery.start(server.run)
        async with tcp_server(handler) as port:
            yield port
        nursery.cancel_scope.cancel()


@asynccontextmanager
async def echo_server(
    scheme: str, tmp_path: Path, server_context: ssl.SSLContext
) -> AsyncIterator[str]:
    """An echo server for ``scheme``; yields the URL to open."""
    if scheme in ("rs", "rss"):
        handler = rawsocket_echo if scheme == "rs" else tls(rawsocket_echo, server_context)
        async with tcp_server(handler) as port:
            yield f"{scheme}://127.0.0.1:{port}"
    elif scheme in ("ws", "wss"):
        ws: StreamHandler = functools.partial(
            websocket_echo, subprotocols=list(wamp_core.SERIALIZERS)
        )
        async with tcp_server(ws if scheme == "ws" else tls(ws, server_context)) as port:
            yield f"{scheme}://127.0.0.1:{port}/ws?x=1"
    elif scheme in ("http", "https"):
        async with longpoll_server(server_context if scheme == "https" else None) as port:
            yield f"{scheme}://127.0.0.1:{port}/lp/"
    else:
        async with unix_server(str(tmp_path / "echo.sock"), rawsocket_echo):
            yield f"unix://{tmp_path / 'echo.sock'}"


@pytest.mark.parametrize("scheme", ["rs", "rss", "unix", "ws", "wss", "http", "https"])
@pytest.mark.parametrize("serializer", ["json", "msgpack", "cbor"])
async def test_every_scheme(tmp_path: Path, scheme: str, serializer: str) -> None:
    server_context, client_context = make_tls_contexts(tmp_path)
    expected = wamp_core.get_serializer(serializer)
    message = expected.encode(wamp_core.Hello("realm1", {"roles": {"caller": {}}}))
    with trio.fail_after(10):
        async with echo_server(scheme, tmp_path, server_context) as url:
            async with open_transport(url, serializer, ssl_context=client_context) as transport:
                assert transport.serializer is expected
                await transport.send(message)
                assert await transport.receive() == message
            with pytest.raises(TransportClosed):
                await transport.send(message)  # closed on exit


@pytest.mark.parametrize("scheme", ["ws", "http"])
async def test_batched_serializers_over_websocket_and_longpoll(tmp_path: Path, scheme: str) -> None:
    server_context, _ = make_tls_contexts(tmp_path)
    serializer = wamp_core.get_serializer("wamp.2.cbor.batched")
    message = serializer.encode(wamp_core.Hello("realm1", {"roles": {"caller": {}}}))
    with trio.fail_after(10):
        async with (
            echo_server(scheme, tmp_path, server_context) as url,
            open_transport(url, serializer) as transport,
        ):
            assert transport.serializer is serializer
            await transport.send(message)
            assert await transport.receive() == message


async def test_unix_relative_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "relative").mkdir()
    monkeypatch.chdir(tmp_path)
    with trio.fail_after(10):
        async with (
            unix_server("relative/path", rawsocket_echo),
            open_transport("unix://relative/path", "cbor") as transport,
        ):
            assert transport.info["type"] == "rawsocket"
            await transport.send(b"\x81\x01")
            assert await transport.receive() == b"\x81\x01"


async def test_the_server_sees_the_close_on_exit() -> None:
    closed = trio.Event()

    async def handler(stream: trio.abc.Stream) -> None:
        transport = await accept_rawsocket(stream)
        assert transport is not None
        with pytest.raises(TransportClosed):
            await transport.receive()
        await transport.aclose()
        closed.set()

    with trio.fail_after(10):
        async with tcp_server(handler) as port:
            async with open_transport(f"rs://127.0.0.1:{port}"):
                pass
            await closed.wait()


async def test_websocket_refusal_is_transport_closed() -> None:
    handler = functools.partial(websocket_echo, subprotocols=["wamp.2.cbor"])
    with trio.fail_after(10):
        async with tcp_server(handler) as port:
            with pytest.raises(TransportClosed) as caught:
                async with open_transport(f"ws://127.0.0.1:{port}/", "json"):
                    pass  # pragma: no cover
    assert isinstance(caught.value.__cause__, WebSocketHandshakeError)
    assert caught.value.__cause__.status_code == 400


async def test_rawsocket_refusal_is_transport_closed() -> None:
    async def handler(stream: trio.abc.Stream) -> None:
        await echo(await accept_rawsocket(stream, serializers=(1,)))

    with trio.fail_after(10):
        async with tcp_server(handler) as port:
            with pytest.raises(TransportClosed) as caught:
                async with open_transport(f"rs://127.0.0.1:{port}", "msgpack"):
                    pass  # pragma: no cover
    assert isinstance(caught.value.__cause__, wamp_core.RawSocketRejected)


async def test_connection_refused_is_oserror() -> None:
    (listener,) = await trio.open_tcp_listeners(0, host="127.0.0.1")
    port = listener.socket.getsockname()[1]
    await listener.aclose()
    with trio.fail_after(10), pytest.raises(OSError, match="onnect"):
        async with open_transport(f"rs://127.0.0.1:{port}"):
            pass  # pragma: no cover


@pytest.mark.parametrize(
    ("url", "serializer", "error"),
    [
        ("ftp://127.0.0.1:21", "json", "unknown transport scheme 'ftp'"),
        ("127.0.0.1:8080", "json", "unknown transport scheme"),
        ("rs://127.0.0.1", "json", "explicit port"),
        ("rss://127.0.0.1", "json", "explicit port"),
        ("rs://127.0.0.1:99999", "json", "bad port"),
        ("rs://:8080", "json", "no host"),
        ("ws:///ws", "json", "no host"),
        ("unix://", "json", "socket path"),
        ("rs://127.0.0.1:8080", "wamp.2.json.batched", "batched"),
        ("unix:///tmp/x", "wamp.2.cbor.batched", "batched"),
        ("ws://127.0.0.1/ws", "xml", "unknown serializer"),
    ],
)
async def test_bad_urls_and_serializers(url: str, serializer: str, error: str) -> None:
    with pytest.raises(ValueError, match=error):
        async with open_transport(url, serializer):
            pass  # pragma: no cover


async def test_ssl_context_is_ignored_for_plain_schemes(tmp_path: Path) -> None:
    _, client_context = make_tls_contexts(tmp_path)
    with trio.fail_after(10):
        async with (
            tcp_server(rawsocket_echo) as port,
            open_transport(f"rs://127.0.0.1:{port}", ssl_context=client_context) as transport,
        ):
            assert transport.info["tls"] is False
            await transport.send(b"[1]")
            assert await transport.receive() == b"[1]"


async def test_tls_verification_uses_the_default_context(tmp_path: Path) -> None:
    """Without ``ssl_context``, a self-signed server certificate is refused."""
    server_context, _ = make_tls_contexts(tmp_path)
    any_error: Any = (TransportClosed, OSError)
    with trio.fail_after(10):
        async with tcp_server(tls(rawsocket_echo, server_context)) as port:
            with pytest.raises(any_error):
                async with open_transport(f"rss://127.0.0.1:{port}"):
                    pass  # pragma: no cover
