"""Open a client ``MessageTransport`` from a URL, whatever the transport.

| URL | transport |
|---|---|
| ``ws://host[:port]/path``, ``wss://...`` | WebSocket (ports 80 / 443 by default) |
| ``rs://host:port``, ``rss://host:port`` | RawSocket over TCP / TLS (port required) |
| ``unix:///abs/path``, ``unix://relative/path`` | RawSocket over a Unix domain socket |
| ``http://host[:port]/base``, ``https://...`` | HTTP long-poll at that base URL (ports 80 / 443) |

RawSocket has no registered port (Crossbar's examples use 8080, others 8000 or
9000), so ``rs``/``rss`` URLs must name one rather than get a guess.
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import SplitResult, urlsplit

import trio

from wamp_core import LocalProtocolError, Serializer, get_serializer

from ._longpoll import connect_longpoll, host_header
from ._rawsocket import connect_rawsocket, stream_peer
from ._transport import MessageTransport, TransportClosed

__all__ = ["open_transport"]

_TLS_SCHEMES = frozenset({"wss", "rss", "https"})
_DEFAULT_PORTS = {"ws": 80, "wss": 443}
_SCHEMES = ("ws", "wss", "rs", "rss", "unix", "http", "https")


def _serializer(serializer: str | Serializer) -> Serializer:
    if isinstance(serializer, Serializer):
        return serializer
    try:
        return get_serializer(serializer)
    except LocalProtocolError as exc:
        raise ValueError(str(exc)) from None


def _port(parts: SplitResult, url: str) -> int | None:
    try:
        return parts.port
    except ValueError:
        raise ValueError(f"bad port in {url!r}") from None


@asynccontextmanager
async def open_transport(
    url: str,
    serializer: str | Serializer = "json",
    *,
    ssl_context: ssl.SSLContext | None = None,
) -> AsyncIterator[MessageTransport]:
    """Connect to ``url`` and yield a ``MessageTransport``; close it on exit.

    ``async with open_transport("rs://127.0.0.1:8080", "cbor") as transport: ...``

    ``serializer`` is a codec name (``"json"``, ``"msgpack"``, ``"cbor"``), a
    subprotocol name (``"wamp.2.json.batched"``) or a ``Serializer``; WebSocket
    and long-poll offer exactly its subprotocol; RawSocket has no batched
    serializers. ``ssl_context`` is used for ``wss``, ``rss`` and ``https``
    (default: ``ssl.create_default_context()``). Raises ``ValueError`` for an
    unknown scheme or a malformed URL, ``OSError`` when the server cannot be
    reached, ``TransportClosed`` when the handshake fails (refused, broken,
    closed; the underlying error, e.g. ``wamp_core.RawSocketRejected`` with its
    ``code`` or the WebSocket refusal with its ``status_code``, is its
    ``__cause__``). There is no built-in timeout: wrap it in ``trio.fail_after``
    (``connect()`` bounds it with its ``join_timeout``).
    """
    chosen = _serializer(serializer)
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in _SCHEMES:
        raise ValueError(
            f"unknown transport scheme {parts.scheme!r} in {url!r}; use one of: "
            + ", ".join(f"{s}://" for s in _SCHEMES)
        )
    if scheme not in _TLS_SCHEMES:
        ssl_context = None
    elif ssl_context is None:
        ssl_context = ssl.create_default_context()

    if scheme in ("http", "https"):
        async with connect_longpoll(url, chosen, ssl_context=ssl_context) as transport:
            yield transport
        return

    if scheme in ("rs", "rss", "unix") and chosen.batched:
        raise ValueError(f"RawSocket has no batched serializers: {chosen.subprotocol!r}")
    port = _port(parts, url)
    host = parts.hostname
    stream: trio.abc.Stream
    if scheme == "unix":
        path = parts.netloc + parts.path
        if not path:
            raise ValueError(f"a unix URL needs a socket path: {url!r}")
        stream = await trio.open_unix_socket(path)
    else:
        if not host:
            raise ValueError(f"no host in {url!r}")
        if port is None:
            if scheme in ("rs", "rss"):
                raise ValueError(f"RawSocket URLs need an explicit port: {url!r}")
            port = _DEFAULT_PORTS[scheme]
        if scheme in _TLS_SCHEMES:
            stream = await trio.open_ssl_over_tcp_stream(
                host,
                port,
                ssl_context=ssl_context,
                # close_notify matters to RawSocket's framing, not to HTTP's.
                https_compatible=scheme == "wss",
            )
        else:
            stream = await trio.open_tcp_stream(host, port)

    try:
        if scheme in ("ws", "wss"):
            from ._websocket import WebSocketHandshakeError, connect_websocket  # noqa: PLC0415

            assert host is not None
            assert port is not None
            target = parts.path or "/"
            if parts.query:
                target += "?" + parts.query
            try:
                transport = await connect_websocket(
                    stream,
                    host_header(host, port, _DEFAULT_PORTS[scheme]),
                    target,
                    [chosen.subprotocol],
                    info={"peer": stream_peer(stream), "tls": scheme == "wss"},
                )
            except WebSocketHandshakeError as exc:
                raise TransportClosed(str(exc)) from exc
        else:
            transport = await connect_rawsocket(stream, chosen)
    except BaseException:
        await trio.aclose_forcefully(stream)
        raise
    try:
        yield transport
    finally:
        await transport.aclose()
