"""HTTP long-poll (AP/ap_transport_http_longpoll.md) over h11 and trio, both roles.

The router side is ``LongPollServer``: it parses HTTP with h11 and lets the
core's ``wamp_core.LongPollEndpoint`` decide every answer; each opened long-poll
transport becomes a ``MessageTransport`` handed to ``handler`` in the server's
own nursery. The client side is ``connect_longpoll``, an async context manager
(its receive loop is a background task).

Backpressure, both ways: a client's ``send`` request is answered only once its
message is in the transport's bounded receive buffer (a slow WAMP side makes
the HTTP client wait); the router's ``send`` waits while the core's outgoing
queue is full, until the client polls or the transport closes. On the client,
the poll loop stops polling while its receive buffer is full.
"""

from __future__ import annotations

import contextlib
import http
import json
import logging
import math
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager
from typing import Any, NoReturn
from urllib.parse import urlsplit

import h11
import trio

from wamp_core import (
    LONGPOLL_CONTENT_TYPES,
    LongPollClosed,
    LongPollEndpoint,
    LongPollMessage,
    LongPollOpened,
    LongPollResponse,
    LongPollState,
    LongPollTransport,
    LongPollWait,
    Serializer,
    get_serializer,
)

from ._rawsocket import RECEIVE_SIZE, _linger_close, stream_peer
from ._transport import MessageTransport, TransportClosed

logger = logging.getLogger("wamp_trio")

__all__ = ["LongPollServer", "connect_longpoll", "host_header"]

MAX_RESPONSE_SIZE = 64 << 20
"""The largest response body the client accepts (a batch of queued messages)."""

_OK_ACKS = frozenset({200, 202, 204})


def _log_refused(peer: str, request: h11.Request, status: int, body: bytes = b"") -> None:
    """Log a refused long-poll request at INFO (the path without its query string)."""
    path = request.target.partition(b"?")[0].decode("latin-1")
    why = body.decode("utf-8", "replace").strip()[:200]
    method = request.method.decode("latin-1")
    logger.info(
        "long-poll request %s %s from %s refused (%d)%s",
        method,
        path,
        peer,
        status,
        f": {why}" if why else "",
    )


def _reason(status: int) -> bytes:
    try:
        return http.HTTPStatus(status).phrase.encode("ascii")
    except ValueError:
        return b""


def host_header(host: str, port: int, default_port: int) -> str:
    """The ``Host`` header value for ``host``/``port``: the port only when not
    the scheme's default, IPv6 literals in brackets."""
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return host if port == default_port else f"{host}:{port}"


# -- the router side ------------------------------------------------------------


class _ServerTransport:
    """A long-poll transport as the WAMP side sees it (a ``MessageTransport``)."""

    serializer: Serializer
    info: dict[str, Any]

    def __init__(self, core: LongPollTransport, info: dict[str, Any], buffer: int) -> None:
        self.serializer = core.serializer
        self.info = info
        self._core = core
        self._incoming_send, self._incoming = trio.open_memory_channel[bytes](buffer)
        self._changed = trio.Event()
        self._closed = False

    def _notify(self) -> None:
        """Wake everything waiting on this transport's state: they recheck it."""
        self._changed.set()
        self._changed = trio.Event()

    async def _wait_changed(self) -> None:
        await self._changed.wait()

    async def send(self, data: bytes) -> None:
        """Queue ``data`` for the client's next receive request; waits while the queue is full."""
        if not data:
            raise ValueError("a long-poll transport message cannot be empty")
        await trio.lowlevel.checkpoint_if_cancelled()
        core = self._core
        while True:
            if self._closed or core.state is not LongPollState.OPEN:
                raise TransportClosed(f"long-poll transport {core.id} is {core.state.value}")
            if core.send(data):
                self._notify()  # a held receive request can answer now
                await trio.lowlevel.cancel_shielded_checkpoint()
                return
            # Full: wait for a receive request to drain it (or for the end).
            await self._changed.wait()

    async def receive(self) -> bytes:
        """The next message the client sent; ``TransportClosed`` once it closed or expired."""
        try:
            return await self._incoming.receive()
        except (trio.EndOfChannel, trio.ClosedResourceError):
            raise TransportClosed(
                f"long-poll transport {self._core.id} is {self._core.state.value}"
            ) from None

    async def aclose(self) -> None:
        """Close from the WAMP side: queued output is still delivered, then the
        client's receive gets 404. Idempotent."""
        if not self._closed:
            self._closed = True
            self._core.close()
            self._incoming.close()
            self._notify()
        await trio.lowlevel.checkpoint()

    async def _deliver(self, payload: bytes) -> None:
        """Hand a client's message to ``receive``; waits while the buffer is full."""
        # Closed meanwhile: the message has nobody to go to.
        with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
            await self._incoming_send.send(payload)

    def _detach(self) -> None:
        """The client closed the transport or it expired."""
        self._incoming_send.close()
        self._notify()


class LongPollServer:
    """The router side of HTTP long-poll for one base path (e.g. ``"/lp"``).

    Start ``run()`` in a nursery (``await nursery.start(server.run)``): it drives
    expiry and owns the nursery where ``handler(transport)`` runs for each
    opened long-poll transport (the transport is closed when it returns). Then
    pass HTTP connections to ``serve_http``. ``endpoint`` is the core's
    ``LongPollEndpoint``: ``serializers`` (subprotocol names, default all),
    ``idle_timeout``, ``max_body_size`` and ``limits`` (``max_transports``,
    ``max_queue_bytes``, ``max_queue_messages``, ``ack_status``, ``id_source``)
    go to it. ``poll_timeout`` is how long a receive request is held before a
    204; ``receive_buffer`` how many client messages may wait for the WAMP side
    before ``send`` requests wait; ``http_timeout`` how long a connection may
    idle between requests (or stall within one).
    """

    def __init__(
        self,
        handler: Callable[[MessageTransport], Awaitable[None]],
        base_path: str = "/lp",
        *,
        serializers: Iterable[str] | None = None,
        idle_timeout: float = 30.0,
        poll_timeout: float = 10.0,
        max_body_size: int = 1 << 20,
        receive_buffer: int = 16,
        http_timeout: float = 60.0,
        max_head_size: int = 16384,
        **limits: Any,
    ) -> None:
        if poll_timeout <= 0 or http_timeout <= 0 or receive_buffer < 0:
            raise ValueError("timeouts must be positive and receive_buffer not negative")
        self.endpoint = LongPollEndpoint(
            base_path,
            protocols=serializers,
            idle_timeout=idle_timeout,
            max_body_size=max_body_size,
            **limits,
        )
        self.base_path = self.endpoint.base_path
        self.poll_timeout = poll_timeout
        self.http_timeout = http_timeout
        self._handler = handler
        self._receive_buffer = receive_buffer
        self._max_head_size = max_head_size
        self._nursery: trio.Nursery | None = None
        self._transports: dict[str, _ServerTransport] = {}
        self._timer_idle = False
        self._timer_wakeup = trio.Event()

    # -- expiry and handlers

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Run forever: expire idle transports and host the handlers' tasks."""
        if self._nursery is not None:
            raise RuntimeError("this LongPollServer is already running")
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                task_status.started()
                await self._expire_forever()
        finally:
            self._nursery = None

    async def _expire_forever(self) -> None:
        endpoint = self.endpoint
        while True:
            deadline = endpoint.next_deadline()
            self._timer_idle = deadline is None
            with trio.move_on_at(math.inf if deadline is None else deadline):
                await self._timer_wakeup.wait()
            if self._timer_wakeup.is_set():
                self._timer_wakeup = trio.Event()
            for event in endpoint.expire(trio.current_time()):
                transport = self._transports.get(event.transport.id)
                if transport is not None:
                    transport._detach()
            for transport_id in [
                i for i, t in self._transports.items() if t._core.state is LongPollState.CLOSED
            ]:
                del self._transports[transport_id]

    def _wake_timer(self) -> None:
        """A deadline may have appeared where there was none."""
        if self._timer_idle:
            self._timer_idle = False
            self._timer_wakeup.set()

    async def _run_handler(self, transport: _ServerTransport) -> None:
        try:
            await self._handler(transport)
        finally:
            await transport.aclose()

    # -- HTTP

    async def serve_http(self, stream: trio.abc.Stream, initial: bytes) -> None:
        """Serve HTTP/1.1 requests (keep-alive) on ``stream``, then close it.

        ``initial`` holds the bytes the caller already read from it (at least
        the first request's head).
        """
        conn = h11.Connection(h11.SERVER, max_incomplete_event_size=self._max_head_size)
        if initial:
            conn.receive_data(initial)
        peer = stream_peer(stream)
        try:
            while True:
                request = await self._next_event(conn, stream)
                if type(request) is not h11.Request:
                    break  # closed or timed out between requests
                if not await self._serve_request(conn, stream, request, peer):
                    break
                if conn.our_state is h11.MUST_CLOSE:
                    break
                conn.start_next_cycle()
        except h11.RemoteProtocolError as exc:
            # Not the text of exc: h11 quotes the offending bytes, which may carry
            # a credential (an Authorization or Cookie line).
            logger.info(
                "HTTP request from %s refused (%d): invalid HTTP", peer, exc.error_status_hint
            )
            await self._answer_garbage(conn, stream, exc)
        except (trio.BrokenResourceError, trio.ClosedResourceError, _Timeout):
            pass
        finally:
            await trio.aclose_forcefully(stream)

    async def _next_event(self, conn: h11.Connection, stream: trio.abc.Stream) -> Any:
        """The next h11 event; raises ``_Timeout`` after ``http_timeout`` without one."""
        while True:
            event = conn.next_event()
            if event is not h11.NEED_DATA:
                return event
            with trio.move_on_after(self.http_timeout):
                conn.receive_data(bytes(await stream.receive_some(RECEIVE_SIZE)))
                continue
            raise _Timeout

    async def _answer_garbage(
        self, conn: h11.Connection, stream: trio.abc.Stream, exc: h11.RemoteProtocolError
    ) -> None:
        status = exc.error_status_hint
        try:
            data = conn.send(
                h11.Response(
                    status_code=status,
                    reason=_reason(status),
                    headers=[
                        ("content-type", "text/plain; charset=utf-8"),
                        ("content-length", str(len(str(exc).encode()))),
                        ("access-control-allow-origin", "*"),
                        ("connection", "close"),
                    ],
                )
            )
        except h11.LocalProtocolError:
            return  # a response is already under way: just close
        data = (data or b"") + (conn.send(h11.Data(data=str(exc).encode())) or b"")
        data += conn.send(h11.EndOfMessage()) or b""
        try:
            await stream.send_all(data)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            return
        await _linger_close(stream)

    async def _send(
        self,
        conn: h11.Connection,
        stream: trio.abc.Stream,
        response: LongPollResponse,
        request: h11.Request,
        *,
        close: bool = False,
    ) -> None:
        headers: list[tuple[str, str]] = list(response.headers)
        origin = _header(request, b"origin")
        if origin:
            # Echo the origin and allow credentials: Autobahn|JS sends every request
            # with XMLHttpRequest.withCredentials, which browsers let through only
            # when the answer allows both. The router authenticates no session by
            # cookie; as with WebSocket (where browsers apply no CORS at all), any
            # page may open a session.
            headers += [
                ("access-control-allow-origin", origin),
                ("access-control-allow-credentials", "true"),
                ("vary", "origin"),
            ]
        else:
            headers.append(("access-control-allow-origin", "*"))
        if close:
            headers.append(("connection", "close"))
        status = response.status
        data = conn.send(h11.Response(status_code=status, reason=_reason(status), headers=headers))
        assert data is not None
        if response.body:
            data += conn.send(h11.Data(data=response.body)) or b""
        data += conn.send(h11.EndOfMessage()) or b""
        await stream.send_all(data)

    async def _serve_request(
        self, conn: h11.Connection, stream: trio.abc.Stream, request: h11.Request, peer: str
    ) -> bool:
        """Answer one request; False when the connection must close."""
        endpoint = self.endpoint
        if self._nursery is None:
            reason = b"the long-poll server is not running"
            unavailable = LongPollResponse(
                503,
                (
                    ("content-type", "text/plain; charset=utf-8"),
                    ("content-length", str(len(reason))),
                ),
                reason,
            )
            await self._send(conn, stream, unavailable, request, close=True)
            return False
        # The body: refuse a large one from its Content-Length, before reading it.
        length = _header(request, b"content-length")
        if length:
            too_large = endpoint.check_body_size(int(length))
            if too_large is not None:
                _log_refused(peer, request, too_large.status)
                await self._send(conn, stream, too_large, request, close=True)
                await _linger_close(stream)
                return False
        if conn.they_are_waiting_for_100_continue:
            await stream.send_all(
                conn.send(h11.InformationalResponse(status_code=100, headers=[])) or b""
            )
        body = bytearray()
        while True:
            event = await self._next_event(conn, stream)
            if type(event) is h11.Data:
                body += event.data
                too_large = endpoint.check_body_size(len(body))
                if too_large is not None:  # chunked
                    _log_refused(peer, request, too_large.status)
                    await self._send(conn, stream, too_large, request, close=True)
                    await _linger_close(stream)
                    return False
            elif type(event) is h11.EndOfMessage:
                break
            else:  # pragma: no cover - h11 raises RemoteProtocolError on a cut body
                return False

        target = request.target.decode("latin-1")
        transport = self._transport_for(target)
        result = endpoint.handle(request.method, target, bytes(body), trio.current_time())
        if isinstance(result, LongPollWait):
            transport = self._transports[result.transport.id]
            transport._notify()  # a receive request held before this one is superseded
            response = await self._hold(conn, stream, result, transport)
            if response is None:
                return False  # the client went away
        else:
            response = result
            event = response.event
            if type(event) is LongPollOpened:
                transport = self._open(event.transport, stream, peer)
            elif type(event) is LongPollMessage:
                assert transport is not None
                # Backpressure: answer only once the WAMP side has room for it.
                await transport._deliver(event.payload)
            elif type(event) is LongPollClosed:
                assert transport is not None
                transport._detach()
            if transport is not None:
                transport._notify()
                if transport._core.state is LongPollState.CLOSED:
                    self._transports.pop(transport._core.id, None)
        if response.status >= 400:
            _log_refused(peer, request, response.status, response.body)
        await self._send(conn, stream, response, request)
        return True

    def _transport_for(self, target: str) -> _ServerTransport | None:
        """The transport a request path names (``{base}/{id}/{operation}``), if known."""
        path = target.partition("?")[0]
        prefix = self.base_path + "/"
        if not path.startswith(prefix):
            return None
        parts = path[len(prefix) :].split("/")
        return self._transports.get(parts[0]) if len(parts) == 2 else None

    def _open(
        self, core: LongPollTransport, stream: trio.abc.Stream, peer: str
    ) -> _ServerTransport:
        assert self._nursery is not None
        info = {
            "type": "longpoll",
            "peer": peer,
            "tls": isinstance(stream, trio.SSLStream),
            "serializer": core.serializer.subprotocol,
            "transport_id": core.id,
        }
        transport = _ServerTransport(core, info, self._receive_buffer)
        self._transports[core.id] = transport
        self._nursery.start_soon(self._run_handler, transport)
        self._wake_timer()
        return transport

    async def _hold(
        self,
        conn: h11.Connection,
        stream: trio.abc.Stream,
        wait: LongPollWait,
        transport: _ServerTransport,
    ) -> LongPollResponse | None:
        """Hold a receive request until there is something to answer or the poll
        timeout passes; None if the client disconnected meanwhile."""
        endpoint = self.endpoint
        gone = False
        finished = False

        async def watch(cancel_scope: trio.CancelScope) -> None:
            # Notice a disconnect: else a message could be taken from the queue
            # for a response nobody reads.
            nonlocal gone
            try:
                data = await stream.receive_some(RECEIVE_SIZE)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                data = b""
            if data:
                conn.receive_data(bytes(data))  # a pipelined request: h11 keeps it
                return
            gone = True
            cancel_scope.cancel()

        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(watch, nursery.cancel_scope)
                with trio.move_on_after(self.poll_timeout):
                    while not wait.ready:
                        await transport._wait_changed()
                nursery.cancel_scope.cancel()
            if gone:
                return None
            finished = True
            response = endpoint.finish_wait(wait, trio.current_time())
        finally:
            if not finished:
                endpoint.abandon_wait(wait, trio.current_time())
            transport._notify()  # the queue drained: a waiting sender may go on
            self._wake_timer()
        if transport._core.state is LongPollState.CLOSED:
            self._transports.pop(transport._core.id, None)
        return response


class _Timeout(Exception):
    """An HTTP connection idled or stalled past ``http_timeout``."""


def _header(request: h11.Request | h11.Response, name: bytes) -> str | None:
    for key, value in request.headers:
        if key == name:
            return value.decode("latin-1")
    return None


# -- the client side --------------------------------------------------------------


class _HTTPConnection:
    """One keep-alive HTTP/1.1 connection to the server, one request at a time;
    reconnects when the server closed it."""

    def __init__(
        self, host: str, port: int, host_value: str, ssl_context: ssl.SSLContext | None
    ) -> None:
        self._host = host
        self._port = port
        self._host_value = host_value
        self._ssl_context = ssl_context
        self._stream: trio.abc.Stream | None = None
        self._conn: h11.Connection | None = None

    async def _connect(self) -> tuple[trio.abc.Stream, h11.Connection]:
        stream: trio.abc.Stream
        if self._ssl_context is not None:
            stream = await trio.open_ssl_over_tcp_stream(
                self._host, self._port, ssl_context=self._ssl_context, https_compatible=True
            )
        else:
            stream = await trio.open_tcp_stream(self._host, self._port)
        self._stream = stream
        self._conn = h11.Connection(h11.CLIENT)
        return stream, self._conn

    async def request(self, target: str, body: bytes, content_type: str) -> tuple[int, bytes]:
        """POST ``body`` to ``target``; (status, body). ``TransportClosed`` on failure,
        ``OSError`` when no connection can be made."""
        if self._stream is not None and self._conn is not None:
            try:
                return await self._exchange(self._stream, self._conn, target, body, content_type)
            except _Stale:
                # The server closed the idle keep-alive connection before reading
                # the request: safe to send it again on a new connection.
                await self.aclose()
            except BaseException as exc:
                await self._fail(exc)
        stream, conn = await self._connect()
        try:
            return await self._exchange(stream, conn, target, body, content_type, fresh=True)
        except BaseException as exc:
            await self._fail(exc)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _fail(self, exc: BaseException) -> NoReturn:
        await self.aclose()  # the connection is in an unknown state
        if isinstance(exc, (trio.BrokenResourceError, trio.ClosedResourceError, h11.ProtocolError)):
            raise TransportClosed(f"HTTP request failed: {exc!r}") from exc
        raise exc

    async def _exchange(
        self,
        stream: trio.abc.Stream,
        conn: h11.Connection,
        target: str,
        body: bytes,
        content_type: str,
        *,
        fresh: bool = False,
    ) -> tuple[int, bytes]:
        headers = [
            ("host", self._host_value),
            ("content-type", content_type),
            ("content-length", str(len(body))),
        ]
        data = conn.send(h11.Request(method="POST", target=target, headers=headers)) or b""
        if body:
            data += conn.send(h11.Data(data=body)) or b""
        data += conn.send(h11.EndOfMessage()) or b""
        try:
            await stream.send_all(data)
        except trio.BrokenResourceError:
            if fresh:
                raise
            raise _Stale from None
        status = 0
        chunks: list[bytes] = []
        size = 0
        received = False
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                try:
                    chunk = await stream.receive_some(RECEIVE_SIZE)
                except trio.BrokenResourceError:
                    if fresh or received:
                        raise
                    raise _Stale from None
                if not chunk and not received and not fresh:
                    raise _Stale
                received = True
                conn.receive_data(bytes(chunk))
            elif type(event) is h11.Response:
                status = event.status_code
            elif type(event) is h11.Data:
                size += len(event.data)
                if size > MAX_RESPONSE_SIZE:
                    raise TransportClosed(f"a response body over {MAX_RESPONSE_SIZE} bytes")
                chunks.append(bytes(event.data))
            elif type(event) is h11.EndOfMessage:
                break
            # InformationalResponse: keep reading
        if conn.our_state is h11.MUST_CLOSE or conn.their_state is h11.MUST_CLOSE:
            await self.aclose()
        else:
            conn.start_next_cycle()
        return status, b"".join(chunks)

    async def aclose(self) -> None:
        stream, self._stream, self._conn = self._stream, None, None
        if stream is not None:
            await trio.aclose_forcefully(stream)


class _Stale(Exception):
    """A reused connection turned out closed before any response byte arrived."""


class _ClientTransport:
    """The client end of a long-poll transport (a ``MessageTransport``)."""

    serializer: Serializer
    info: dict[str, Any]

    close_timeout = 5.0
    """How long ``aclose`` tries to tell the server (even when cancelled)."""

    def __init__(  # noqa: PLR0917
        self,
        serializer: Serializer,
        info: dict[str, Any],
        base: str,
        transport_id: str,
        sender: _HTTPConnection,
        poller: _HTTPConnection,
        buffer: int,
    ) -> None:
        self.serializer = serializer
        self.info = info
        self._prefix = f"{base}/{transport_id}/"
        self._content_type = LONGPOLL_CONTENT_TYPES[serializer.codec]
        self._sender = sender
        self._poller = poller
        self._incoming_send, self._incoming = trio.open_memory_channel[bytes](buffer)
        self._send_lock = trio.Lock()
        self._poll_scope = trio.CancelScope()
        self._closed = False  # no more sending: closed locally or by the server
        self._close_posted = False
        self._error: str | None = None

    def _end(self, reason: str) -> None:
        if self._error is None:
            self._error = reason
        self._closed = True
        self._poll_scope.cancel()
        self._incoming_send.close()  # receive() drains what arrived, then ends

    async def send(self, data: bytes) -> None:
        """POST one message to ``{base}/{id}/send``; ``TransportClosed`` if refused."""
        if not data:
            raise ValueError("a long-poll transport message cannot be empty")
        async with self._send_lock:
            if self._closed:
                raise TransportClosed(self._error or "the long-poll transport is closed")
            try:
                status, body = await self._sender.request(
                    self._prefix + "send", data, self._content_type
                )
            except (TransportClosed, OSError) as exc:
                self._end(str(exc))
                raise TransportClosed(self._error) from exc
        if status not in _OK_ACKS:
            self._end(f"send refused: {status} {body.decode('utf-8', 'replace')}")
            raise TransportClosed(self._error)

    async def receive(self) -> bytes:
        """The next response body of the poll loop (one message, or a batch)."""
        try:
            return await self._incoming.receive()
        except (trio.EndOfChannel, trio.ClosedResourceError):
            raise TransportClosed(self._error or "the long-poll transport is closed") from None

    async def _poll_forever(self) -> None:
        reason = "the long-poll transport is closed"
        try:
            with self._poll_scope:
                while True:
                    status, body = await self._poller.request(
                        self._prefix + "receive", b"", self._content_type
                    )
                    if status == 200 and body:
                        await self._incoming_send.send(body)
                    elif status not in _OK_ACKS:
                        reason = f"receive answered {status}: {body.decode('utf-8', 'replace')}"
                        break
        except (TransportClosed, OSError) as exc:
            reason = str(exc)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass  # aclose() closed the receive buffer
        finally:
            await self._poller.aclose()
        self._end(reason)

    async def aclose(self) -> None:
        """POST ``{base}/{id}/close`` (best effort, for at most ``close_timeout``
        seconds, even inside a cancelled scope), stop polling. Idempotent."""
        self._end("the long-poll transport was closed locally")
        self._incoming.close()
        if self._close_posted:
            await trio.lowlevel.checkpoint()
            return
        self._close_posted = True
        with trio.move_on_after(self.close_timeout, shield=True):
            try:
                async with self._send_lock:
                    await self._sender.request(self._prefix + "close", b"", self._content_type)
            except (TransportClosed, OSError):
                pass
        await self._sender.aclose()


@asynccontextmanager
async def connect_longpoll(
    url: str,
    serializer: Serializer,
    *,
    ssl_context: ssl.SSLContext | None = None,
    receive_buffer: int = 16,
) -> AsyncIterator[MessageTransport]:
    """Open a long-poll transport at base URL ``url`` (``http://host:port/lp``,
    or ``https://``); an async context manager that closes it on exit.

    ``async with connect_longpoll(url, serializer) as transport: ...``. The
    background poll loop runs inside it; ``receive_buffer`` bounds what it
    fetches ahead of ``receive``. ``ssl_context`` is for https (default: the
    system's default context). Raises ``OSError`` when the server cannot be
    reached and ``TransportClosed`` when it refuses the transport.
    """
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"a long-poll URL is http://host[:port]/path or https://...: {url!r}")
    default_port = 443 if scheme == "https" else 80
    port = parts.port or default_port
    if scheme == "https" and ssl_context is None:
        ssl_context = ssl.create_default_context()
    elif scheme == "http":
        ssl_context = None
    host = parts.hostname
    host_value = host_header(host, port, default_port)
    base = parts.path.rstrip("/")
    sender = _HTTPConnection(host, port, host_value, ssl_context)
    try:
        body = json.dumps({"protocols": [serializer.subprotocol]}).encode()
        status, answer = await sender.request(f"{base}/open", body, "application/json")
        if status != 200:
            raise TransportClosed(
                f"long-poll open refused: {status} {answer.decode('utf-8', 'replace')}"
            )
        try:
            document = json.loads(answer)
            protocol, transport_id = document["protocol"], document["transport"]
            negotiated = get_serializer(protocol)
        except Exception as exc:
            raise TransportClosed(f"long-poll open: unusable answer {answer[:200]!r}") from exc
        if negotiated.subprotocol != serializer.subprotocol:
            raise TransportClosed(f"long-poll open: the server chose {protocol!r}, not offered")
    except BaseException:
        await sender.aclose()
        raise
    info = {
        "type": "longpoll",
        "peer": f"{scheme}://{host_value}",
        "tls": ssl_context is not None,
        "serializer": negotiated.subprotocol,
        "url": url,
        "transport_id": transport_id,
    }
    poller = _HTTPConnection(host, port, host_value, ssl_context)
    transport = _ClientTransport(
        negotiated, info, base, str(transport_id), sender, poller, receive_buffer
    )
    async with trio.open_nursery() as nursery:
        nursery.start_soon(transport._poll_forever)
        try:
            yield transport
        finally:
            await transport.aclose()
