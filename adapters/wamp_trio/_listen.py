"""Router-side listeners: one TCP port for WebSocket, HTTP long-poll and RawSocket
(optionally over TLS), and RawSocket over a Unix domain socket.

Both servers follow ``trio.serve_tcp``: ``listeners = await nursery.start(serve_tcp,
handler, "127.0.0.1", 0)`` returns once bound. Each connection runs in its own
task: TLS handshake (when configured), then the first byte decides. RawSocket's
magic byte 0x7F never starts an HTTP request (methods are tokens of letters);
anything else is read as an HTTP request head and routed by its path. Until a
transport is open, the connection must make progress within
``handshake_timeout`` seconds, or it is dropped.

Every failure of one connection (a bad TLS handshake, a client leaving
half-way, an exception from ``handler``) is logged on the ``wamp_trio`` logger
and ends that connection only.
"""

from __future__ import annotations

import errno
import logging
import os
import socket
import ssl
import stat
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, NoReturn, Protocol

import trio
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

from wamp_core import CHANNEL_BINDING, get_serializer, rawsocket_length_exponent

from ._rawsocket import accept_rawsocket, stream_peer
from ._transport import MessageTransport
from ._websocket import (
    ALL_SUBPROTOCOLS,
    DEFAULT_MAX_MESSAGE_SIZE,
    HeadTooLarge,
    accept_websocket,
    parse_request_head,
    read_http_head,
    send_http_error,
)

__all__ = ["HttpEndpoint", "serve_tcp", "serve_unix", "tls_server_end_point"]

logger = logging.getLogger("wamp_trio")

Handler = Callable[[MessageTransport], Awaitable[object]]

# An HTTP request starts with a method token (letters in practice); RFC 9112
# section 2.2 lets a server ignore empty lines before it.
_HTTP_FIRST_BYTES = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ\r\n")
_RAWSOCKET_MAGIC = 0x7F


class HttpEndpoint(Protocol):
    """What ``serve_tcp`` needs of a long-poll server (``LongPollServer``)."""

    base_path: str

    async def serve_http(self, stream: trio.abc.Stream, initial: bytes) -> None:
        """Serve HTTP requests on ``stream``; ``initial`` holds the first request head."""


def _rawsocket_ids(serializers: Sequence[str]) -> list[int]:
    ids: list[int] = []
    for name in serializers:
        rawsocket_id = get_serializer(name).rawsocket_id
        if rawsocket_id not in ids:
            ids.append(rawsocket_id)
    return ids


def _connection_info(stream: trio.abc.Stream) -> dict[str, Any]:
    """``peer`` (as ``stream_peer`` spells it) and ``tls`` (False until the TLS
    handshake adds its facts)."""
    return {"peer": stream_peer(stream), "tls": False}


def tls_server_end_point(cert_file: str) -> bytes:
    """RFC 5929 ``tls-server-end-point`` channel binding data for a server whose
    certificate is the first one in ``cert_file`` (PEM): the certificate's hash
    with its signature's hash algorithm, SHA-256 in place of MD5 and SHA-1 and
    for signatures without one (Ed25519, Ed448)."""
    with open(cert_file, "rb") as file:
        certificate = x509.load_pem_x509_certificate(file.read())
    algorithm = certificate.signature_hash_algorithm
    if algorithm is None or isinstance(algorithm, hashes.MD5 | hashes.SHA1):
        algorithm = hashes.SHA256()
    digest = hashes.Hash(algorithm)
    digest.update(certificate.public_bytes(serialization.Encoding.DER))
    return digest.finalize()


def _tls_info(stream: trio.SSLStream[Any], server_end_point: bytes | None) -> dict[str, Any]:
    cipher = stream.cipher()
    details: dict[str, Any] = {
        "tls": True,
        "tls_version": stream.version(),
        "tls_cipher": cipher[0] if cipher else None,
    }
    certificate = stream.getpeercert()
    if certificate:
        details["tls_peer_certificate"] = certificate
        subject = _name_fields(certificate.get("subject", ()))
        details["tls_peer_subject"] = subject
        details["tls_peer_issuer"] = _name_fields(certificate.get("issuer", ()))
        if "commonName" in subject:
            details["tls_peer_cn"] = subject["commonName"]
    # RFC 5929 channel binding data, read by cryptosign and WAMP-SCRAM
    # (wamp_core.CHANNEL_BINDING): what the ssl module reports. On TLS 1.3 it is
    # the first Finished message as well, as Autobahn computes it, although
    # RFC 9266 leaves tls-unique undefined there.
    bindings: dict[str, bytes] = {}
    try:
        unique = stream.get_channel_binding("tls-unique")
    except (ValueError, ssl.SSLError):  # pragma: no cover - not before the handshake
        unique = None
    if unique:
        bindings["tls-unique"] = unique
    if server_end_point is not None:
        bindings["tls-server-end-point"] = server_end_point
    if bindings:
        details[CHANNEL_BINDING] = bindings
    return details


def _name_fields(name: Any) -> dict[str, str]:
    """An ``ssl`` certificate name (tuple of RDNs of (key, value) pairs) as a flat
    dictionary: ``{"commonName": "alice", "organizationName": "Example"}``."""
    fields: dict[str, str] = {}
    for rdn in name:
        for key, value in rdn:
            fields.setdefault(str(key), str(value))
    return fields


class _Dispatcher:
    """Runs one accepted connection from the first byte to the end of its transport."""

    def __init__(
        self,
        handler: Handler,
        *,
        websocket_path: str | None,
        longpoll: HttpEndpoint | None,
        rawsocket: bool,
        serializers: Sequence[str],
        max_message_size: int,
        max_length_exponent: int,
        handshake_timeout: float,
        server_end_point: bytes | None = None,
        unix: bool = False,
    ) -> None:
        self._handler = handler
        self._unix = unix
        self._server_end_point = server_end_point
        self._websocket_path = websocket_path
        self._longpoll = longpoll
        self._rawsocket = rawsocket
        self._subprotocols = list(serializers)
        # A frozenset: the RawSocket codec keeps it as given, one for all connections.
        self._rawsocket_ids = frozenset(_rawsocket_ids(serializers))
        self._max_message_size = max_message_size
        self._max_length_exponent = max_length_exponent
        self._handshake_timeout = handshake_timeout

    async def serve_stream(self, stream: trio.abc.Stream) -> None:
        """One accepted TCP, TLS or Unix socket connection; closes ``stream`` in the end."""
        info = _connection_info(stream)
        peer = info["peer"]
        try:
            # The handshake's frames (and ``info``) are gone once the connection
            # runs: only this one stays on the stack, under the handler's.
            transport = await self._accept(stream, info)
            del info
            if transport is not None:  # run inline: one coroutine less per connection
                try:
                    await self._handler(transport)
                finally:
                    await transport.aclose()
        except Exception:
            logger.exception("connection from %s failed", peer)
        finally:
            await trio.aclose_forcefully(stream)

    def _remaining(self, deadline: float) -> float:
        return max(0.0, deadline - trio.current_time())

    async def _accept(
        self, stream: trio.abc.Stream, info: dict[str, Any]
    ) -> MessageTransport | None:
        """The connection's WAMP transport once its handshake is done; None when it
        was refused, dropped or (long-poll) served here."""
        if self._unix:  # RawSocket only, from the first byte
            return await accept_rawsocket(
                stream,
                b"",
                serializers=self._rawsocket_ids,
                max_length_exponent=self._max_length_exponent,
                handshake_timeout=self._handshake_timeout,
                info=info,
            )
        peer = info["peer"]
        deadline = trio.current_time() + self._handshake_timeout
        with trio.CancelScope(deadline=deadline) as scope:
            route = await self._route(stream, info)
        if scope.cancelled_caught:
            logger.info("dropping %s: no handshake within %s s", peer, self._handshake_timeout)
            return None
        if route is None:
            return None
        kind, initial = route
        if kind == "rawsocket":
            return await accept_rawsocket(
                stream,
                initial,
                serializers=self._rawsocket_ids,
                max_length_exponent=self._max_length_exponent,
                handshake_timeout=self._remaining(deadline),
                info=info,
            )
        if kind == "websocket":
            return await accept_websocket(
                stream,
                initial,
                subprotocols=self._subprotocols,
                max_message_size=self._max_message_size,
                info=info,
                handshake_timeout=self._remaining(deadline),
            )
        assert self._longpoll is not None
        await self._longpoll.serve_http(stream, initial)
        return None

    async def _route(
        self, stream: trio.abc.Stream, info: dict[str, Any]
    ) -> tuple[str, bytes] | None:
        """TLS handshake, first bytes, request head: where the connection goes
        (``rawsocket``, ``websocket``, ``longpoll``) with the bytes read so far,
        or None once it has been answered or dropped."""
        peer = info["peer"]
        if isinstance(stream, trio.SSLStream):
            try:
                await stream.do_handshake()
            except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
                logger.info("TLS handshake with %s failed: %s", peer, exc.__cause__ or exc)
                return None
            info.update(_tls_info(stream, self._server_end_point))
        try:
            first = bytes(await stream.receive_some())
        except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            logger.info("connection from %s failed: %s", peer, exc.__cause__ or exc)
            return None
        if not first:
            logger.debug("%s closed the connection before sending anything", peer)
            return None
        if first[0] == _RAWSOCKET_MAGIC:
            if self._rawsocket:
                return ("rawsocket", first)
            logger.info("RawSocket from %s refused: RawSocket is disabled", peer)
            return None
        if first[0] not in _HTTP_FIRST_BYTES:
            await self._refuse(stream, peer, 400, "Bad request: neither HTTP nor RawSocket.\n")
            return None
        try:
            found = await read_http_head(stream, first)
        except HeadTooLarge:
            await self._refuse(stream, peer, 431, "The request head is too large.\n")
            return None
        if found is None:
            logger.info("%s closed the connection in the middle of a request head", peer)
            return None
        head, rest = found
        request = parse_request_head(head)
        if isinstance(request, str):
            await self._refuse(stream, peer, 400, f"Bad request: {request}\n")
            return None
        path = request.target.split(b"?", 1)[0].decode("ascii", "replace")
        if path == self._websocket_path:
            return ("websocket", head + rest)
        if self._longpoll is not None and _is_under(path, self._longpoll.base_path):
            return ("longpoll", head + rest)
        await self._refuse(stream, peer, 404, f"Not found: {path}\n")
        return None

    async def _refuse(self, stream: trio.abc.Stream, peer: str, status: int, body: str) -> None:
        logger.info("HTTP request from %s refused (%d): %s", peer, status, body.strip())
        await send_http_error(stream, status, body)


def _is_under(path: str, base: str) -> bool:
    base = base.rstrip("/")
    return path == base or path.startswith(base + "/")


async def serve_tcp(
    handler: Handler,
    host: str | None,
    port: int,
    *,
    ssl_context: ssl.SSLContext | None = None,
    websocket_path: str | None = "/ws",
    longpoll: HttpEndpoint | None = None,
    rawsocket: bool = True,
    serializers: Sequence[str] = ALL_SUBPROTOCOLS,
    max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
    max_length_exponent: int | None = None,
    handshake_timeout: float = 10.0,
    tls_server_end_point: bytes | None = None,
    tcp_keepalive: tuple[float, float] | None = None,
    handler_nursery: trio.Nursery | None = None,
    task_status: trio.TaskStatus[list[trio.abc.Listener[Any]]] = trio.TASK_STATUS_IGNORED,
) -> NoReturn:
    """Serve WAMP on one TCP port: WebSocket at ``websocket_path``, HTTP long-poll
    under ``longpoll.base_path``, and RawSocket, each when enabled, with TLS on
    all of them when ``ssl_context`` is given.

    Use like ``trio.serve_tcp``: ``await nursery.start(serve_tcp, handler, host,
    port)`` returns the listeners once bound (port 0 picks a free port; host None
    listens on every interface). For each opened transport ``await
    handler(transport)`` runs in the connection's task, and the transport is
    closed when it returns. ``serializers`` names the WebSocket subprotocols
    offered (the RawSocket serializers follow from them); ``max_message_size``
    bounds WebSocket messages, and RawSocket ones too unless
    ``max_length_exponent`` is given (RawSocket can only say powers of two, so
    its limit is rounded down, and capped at 16 MiB). The
    ``longpoll`` server's own ``run()`` must be running (start it in the same
    nursery). Unknown paths get 404, non-HTTP garbage 400.
    ``tls_server_end_point`` (see ``tls_server_end_point()``) is put in each
    TLS connection's channel binding data, for WAMP-SCRAM.
    ``tcp_keepalive=(idle, timeout)`` turns TCP keepalive on for every accepted
    connection (see ``set_tcp_keepalive``).
    """
    dispatcher = _Dispatcher(
        handler,
        websocket_path=websocket_path,
        longpoll=longpoll,
        rawsocket=rawsocket,
        serializers=serializers,
        max_message_size=max_message_size,
        max_length_exponent=(
            rawsocket_length_exponent(max_message_size)
            if max_length_exponent is None
            else max_length_exponent
        ),
        handshake_timeout=handshake_timeout,
        server_end_point=tls_server_end_point,
    )
    tcp_listeners = await trio.open_tcp_listeners(port, host=host)
    if tcp_keepalive is not None:
        for tcp_listener in tcp_listeners:
            # Linux passes these options on to every accepted socket.
            set_tcp_keepalive(tcp_listener.socket, *tcp_keepalive)
    listeners: list[trio.abc.Listener[Any]]
    if ssl_context is None:
        listeners = list(tcp_listeners)
    else:
        # https_compatible: this port speaks HTTP, whose clients often skip close_notify.
        listeners = [
            trio.SSLListener(listener, ssl_context, https_compatible=True)
            for listener in tcp_listeners
        ]
    await _serve_listeners(dispatcher.serve_stream, listeners, handler_nursery, task_status)


def set_tcp_keepalive(sock: trio.socket.SocketType, idle: float, timeout: float) -> None:
    """Turn TCP keepalive on for ``sock``: the kernel probes a peer silent for
    ``idle`` seconds, three times within ``timeout`` seconds, then resets the
    connection (a read or write on it fails). Where the system has no such
    per-socket settings, only ``SO_KEEPALIVE`` is set (the system's timings)."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    probes = 3
    options = (
        ("TCP_KEEPIDLE", max(1, round(idle))),
        ("TCP_KEEPINTVL", max(1, round(timeout / probes))),
        ("TCP_KEEPCNT", probes),
    )
    for name, value in options:
        option = getattr(socket, name, None)
        if option is not None:  # pragma: no branch - Linux has all three
            sock.setsockopt(socket.IPPROTO_TCP, option, value)


async def serve_unix(
    handler: Handler,
    path: str | os.PathLike[str],
    *,
    serializers: Sequence[str] = ALL_SUBPROTOCOLS,
    max_length_exponent: int = 15,
    handshake_timeout: float = 10.0,
    backlog: int | None = None,
    handler_nursery: trio.Nursery | None = None,
    task_status: trio.TaskStatus[list[trio.SocketListener]] = trio.TASK_STATUS_IGNORED,
) -> NoReturn:
    """Serve WAMP over RawSocket on a Unix domain socket at ``path``.

    A stale socket file (nobody listening) is removed first; a live one raises
    ``OSError(EADDRINUSE)``, and a path that is not a socket ``FileExistsError``.
    The socket file is removed when the server stops. Otherwise like
    ``serve_tcp``: ``await nursery.start(serve_unix, handler, path)`` returns
    the listeners once bound.
    """
    path = os.fspath(path)
    dispatcher = _Dispatcher(
        handler,
        websocket_path=None,
        longpoll=None,
        rawsocket=True,
        serializers=serializers,
        max_message_size=DEFAULT_MAX_MESSAGE_SIZE,
        max_length_exponent=max_length_exponent,
        handshake_timeout=handshake_timeout,
        unix=True,
    )
    await _remove_stale_socket(path)
    sock = trio.socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        await sock.bind(path)
        sock.listen(socket.SOMAXCONN if backlog is None else backlog)
        status = os.stat(path)
    except BaseException:
        sock.close()
        raise
    try:
        await _serve_listeners(
            dispatcher.serve_stream, [trio.SocketListener(sock)], handler_nursery, task_status
        )
    finally:
        _remove_socket_file(path, status)


# accept(2) errors that say the system is out of resources for now: the accept
# loop logs them, waits a little and goes on (as trio.serve_listeners does).
_ACCEPT_CAPACITY_ERRNOS = frozenset((errno.EMFILE, errno.ENFILE, errno.ENOMEM, errno.ENOBUFS))
_ACCEPT_RETRY_DELAY = 0.1
_CONNECTION_TASK = "wamp_trio connection"
"""The name of every connection's task. A string given to ``start_soon`` is kept
as it is; without one trio formats a name per task (200 bytes each)."""


async def _serve_listeners(
    serve_stream: Callable[[trio.abc.Stream], Awaitable[None]],
    listeners: Sequence[trio.abc.Listener[Any]],
    handler_nursery: trio.Nursery | None,
    task_status: trio.TaskStatus[Any],
) -> NoReturn:
    """``trio.serve_listeners`` for a ``serve_stream`` that closes its stream
    itself: each connection's task runs it directly, with no wrapper coroutine
    and a shared task name (an idle connection costs that much less)."""
    async with trio.open_nursery() as nursery:
        for listener in listeners:
            nursery.start_soon(_accept_loop, listener, handler_nursery or nursery, serve_stream)
        task_status.started(list(listeners))
    raise AssertionError("the accept loops never return")  # pragma: no cover


async def _accept_loop(
    listener: trio.abc.Listener[Any],
    handler_nursery: trio.Nursery,
    serve_stream: Callable[[trio.abc.Stream], Awaitable[None]],
) -> NoReturn:
    async with listener:
        while True:
            try:
                stream = await listener.accept()
            except OSError as exc:
                if exc.errno not in _ACCEPT_CAPACITY_ERRNOS:
                    raise
                logger.error(
                    "accept failed: %s; retrying in %s s",
                    os.strerror(exc.errno or 0),
                    _ACCEPT_RETRY_DELAY,
                )
                await trio.sleep(_ACCEPT_RETRY_DELAY)
            else:
                handler_nursery.start_soon(serve_stream, stream, name=_CONNECTION_TASK)


async def _remove_stale_socket(path: str) -> None:
    try:
        status = os.lstat(path)
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(status.st_mode):
        raise FileExistsError(errno.EEXIST, "exists and is not a socket; not removing it", path)
    probe = trio.socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    with probe:
        try:
            await probe.connect(path)
        except ConnectionRefusedError:
            logger.info("removing stale socket file %s", path)
            os.unlink(path)
            return
        except FileNotFoundError:
            return
    raise OSError(errno.EADDRINUSE, "another server is listening on this socket", path)


def _remove_socket_file(path: str, created: os.stat_result) -> None:
    """Remove the socket file if it is still the one this server created."""
    try:
        current = os.lstat(path)
        if (current.st_dev, current.st_ino) == (created.st_dev, created.st_ino):
            os.unlink(path)
    except OSError:
        pass
