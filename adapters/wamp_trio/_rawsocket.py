"""RawSocket over any trio stream (TCP, TLS, Unix), both roles.

Binds the core's sans-IO codec (``wamp_core.RawSocketRouter`` /
``RawSocketClient``) to a ``trio.abc.Stream``. One task reads (``receive``);
sends from any number of tasks are serialized by a lock, and each message goes
out in one write (frame header and payload together). PINGs are answered at
once; a PONG never waits behind a blocked writer: the writer holding the lock
drains the codec's buffer, PONG included, before it lets go.

Cancellation: a cancelled ``receive`` loses nothing. A ``send`` cancelled while
waiting for its turn may still go out with a later write; one cancelled in the
middle of a write (the peer not reading) may have sent part of a frame, so the
transport is closed then: a half-sent frame would corrupt the stream.
"""

from __future__ import annotations

import contextlib
import logging
import socket
from collections.abc import Collection, Sequence
from typing import Any

import trio

from wamp_core import (
    LocalProtocolError,
    RawSocketClient,
    RawSocketConnection,
    RawSocketMessage,
    RawSocketPing,
    RawSocketProtocolError,
    RawSocketRouter,
    RawSocketState,
    Serializer,
    serializer_for_rawsocket,
)

from ._fastio import DirectSender, read_nowait, socket_of
from ._transport import MessageTransport, TransportClosed

__all__ = ["RawSocketTransport", "accept_rawsocket", "connect_rawsocket", "stream_peer"]

logger = logging.getLogger("wamp_trio")

RECEIVE_SIZE = 65536
"""Bytes asked of the stream per read: large enough for few reads per big
message, small enough to stay under the allocator's mmap threshold."""

LARGE_RECEIVE_SIZE = 1 << 20
"""The most asked per read while a large message arrives: ``receive`` asks four
times more after each read that came back full without completing a message,
so a megabyte takes a few reads and a few copies into the codec's buffer, not
sixteen."""

_DRAIN_LIMIT = 1 << 20
"""At most this many bytes of a refused peer's input are read (and discarded)
before closing, so that the close does not reset the connection (and destroy the
error reply) while unread input is pending."""

_DRAIN_TIMEOUT = 1.0

_ALL_SERIALIZER_IDS = frozenset((1, 2, 3))
"""A frozenset, which the codec keeps as it is: one for all connections."""


def stream_peer(stream: trio.abc.Stream) -> str:
    """Describe the remote end of ``stream`` the way WAMP transport details do:
    ``"tcp4:127.0.0.1:50123"``, ``"tcp6:::1:50123"``, ``"unix"`` (or
    ``"unix:<path>"`` when the peer's socket is bound), ``"unknown"`` otherwise.
    TLS streams are unwrapped.
    """
    inner: trio.abc.Stream = stream
    while isinstance(inner, trio.SSLStream):
        inner = inner.transport_stream
    if not isinstance(inner, trio.SocketStream):
        return "unknown"
    sock = inner.socket
    try:
        address = sock.getpeername()
    except OSError:
        return "unknown"
    if sock.family == socket.AF_INET:
        return f"tcp4:{address[0]}:{address[1]}"
    if sock.family == socket.AF_INET6:
        return f"tcp6:{address[0]}:{address[1]}"
    if sock.family == getattr(socket, "AF_UNIX", None):
        if isinstance(address, bytes):
            address = address.decode("utf-8", "backslashreplace")
        return f"unix:{address}" if address else "unix"
    return "unknown"  # pragma: no cover - no other stream families in trio


def _base_info(stream: trio.abc.Stream, info: dict[str, Any] | None) -> dict[str, Any]:
    details: dict[str, Any] = {
        "type": "rawsocket",
        "peer": stream_peer(stream),
        "tls": isinstance(stream, trio.SSLStream),
    }
    if info:
        details.update(info)
    return details


class RawSocketTransport(DirectSender):
    """A ``MessageTransport`` over a stream whose RawSocket handshake succeeded.

    Made by ``accept_rawsocket`` and ``connect_rawsocket``; not meant to be
    built directly. ``peer_max_length`` is the longest message the peer takes:
    ``send`` raises ``ValueError`` for a longer one. ``idle_ticks`` is reset to
    0 by every read that brings bytes (messages, PINGs, PONGs alike); the router
    host's keepalive sweep counts up in it (see ``RouterHost``).
    """

    __slots__ = (
        "_closed",
        "_connection",
        "_error",
        "_messages",
        "_stream",
        "idle_ticks",
        "info",
        "peer_max_length",
        "serializer",
    )

    serializer: Serializer
    info: dict[str, Any]

    def __init__(
        self,
        stream: trio.abc.Stream,
        connection: RawSocketConnection,
        serializer: Serializer,
        info: dict[str, Any],
        pending: Collection[bytes] = (),
    ) -> None:
        self.serializer = serializer
        self.info = info
        self._stream = stream
        super().__init__(socket_of(stream))  # direct I/O on plain sockets (see _fastio)
        self._connection = connection
        self._messages: list[bytes] = list(pending)  # cheaper than a deque when idle
        self._closed = False
        self._error: str | None = None
        self.idle_ticks = 0
        peer_max = connection.peer_max_length
        assert peer_max is not None
        self.peer_max_length: int = peer_max

    # -- sending

    async def send(self, data: bytes) -> None:
        """Send one message as one frame; ``ValueError`` if it exceeds the peer's maximum."""
        await self.send_many((data,))

    async def send_many(self, messages: Sequence[bytes]) -> None:
        """Send several messages, one frame each, in one write. ``ValueError``
        (and nothing sent) if one exceeds the peer's maximum."""
        self._check_lengths(messages)
        self._check_open()
        # Raise a pending cancellation before queueing: a send that raises Cancelled
        # here has certainly not been sent.
        await trio.lowlevel.checkpoint_if_cancelled()
        try:
            self._connection.send_messages(messages)
        except LocalProtocolError:  # the codec failed (the peer broke the protocol)
            raise TransportClosed(self._error or "the RawSocket connection failed") from None
        await self._flush()

    def try_send_many(self, messages: Sequence[bytes]) -> bool | None:
        """Send several messages without awaiting, if no write is in progress.

        None: not taken (a write is in progress, the stream is TLS, the transport
        is closed); use ``send_many``. True: written. False: taken, but part of it
        is still to be written by ``flush()``, which must be awaited before the
        next ``try_send_many`` can succeed. ``ValueError`` as for ``send_many``.
        """
        sock = self._sock
        if sock is None or self._closed or self._unsent or self._sending():
            return None
        self._check_lengths(messages)
        try:
            self._connection.send_messages(messages)
        except LocalProtocolError:
            return None  # send_many reports it
        return self._write_now(sock, self._connection.data_to_send())

    async def flush(self) -> None:
        """Write what ``try_send_many`` left over. ``TransportClosed`` if it cannot."""
        self._check_open()
        await self._flush()

    def _check_lengths(self, messages: Sequence[bytes]) -> None:
        peer_max = self.peer_max_length
        for data in messages:
            if len(data) > peer_max:
                raise ValueError(
                    f"a {len(data)}-byte message exceeds the peer's maximum of {peer_max} bytes"
                )

    async def send_ping(self, payload: bytes = b"") -> None:
        """Send a PING (the peer answers with a PONG, which ``receive`` discards)."""
        if len(payload) > self.peer_max_length:
            raise ValueError(f"a {len(payload)}-byte PING exceeds the peer's maximum")
        self._check_open()
        await trio.lowlevel.checkpoint_if_cancelled()
        try:
            self._connection.send_ping(payload)
        except LocalProtocolError:
            raise TransportClosed(self._error or "the RawSocket connection failed") from None
        await self._flush()

    def try_send_ping(self, payload: bytes = b"") -> bool | None:
        """Send a PING without awaiting, as ``try_send_many`` sends messages.

        True: written, or queued for the write in progress (whose task writes
        everything queued before it lets go). False: taken, but ``flush()`` must
        be awaited to write it (a rest of an earlier direct write waits). None:
        not taken (the transport is closed, or not a plain socket and idle); use
        ``send_ping``.
        """
        if self._closed:
            return None
        busy = self._sending()
        sock = self._sock
        if sock is None and not busy:
            return None
        if len(payload) > self.peer_max_length:
            raise ValueError(f"a {len(payload)}-byte PING exceeds the peer's maximum")
        try:
            self._connection.send_ping(payload)
        except LocalProtocolError:
            return None
        if busy:
            return True
        if self._unsent or sock is None:
            return False
        return self._write_now(sock, self._connection.data_to_send())

    def _check_open(self) -> None:
        if self._closed:
            raise TransportClosed(self._error or "the RawSocket transport is closed")

    async def _flush(self) -> None:
        """Write everything the codec holds; whoever holds the lock writes for all."""
        try:
            self._send_lock.acquire_nowait()
        except trio.WouldBlock:
            await self._send_lock.acquire()
        try:
            while True:
                self._check_open()
                # Raising here leaves the data in the codec, for the next writer.
                await trio.lowlevel.checkpoint_if_cancelled()
                data = self._connection.data_to_send()
                if self._unsent:  # left over by try_send_many: it goes first
                    data = self._unsent + data
                    self._unsent = b""
                if not data:
                    return
                try:
                    await self._stream.send_all(data)
                except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
                    await self._abort(f"the connection is broken ({exc or type(exc).__name__})")
                    raise TransportClosed(self._error) from None
                except BaseException:
                    # Cancelled (or worse) mid-write: part of a frame may be out.
                    await self._abort("a write was interrupted; the stream is unusable")
                    raise
        finally:
            self._send_lock.release()

    # -- receiving

    def receive_buffered(self) -> bytes | None:
        """The next message if one is already received, else None (never waits)."""
        messages = self._messages
        return messages.pop(0) if messages else None

    async def receive(self) -> bytes:
        """The next message; ``TransportClosed`` when the connection ends or fails."""
        messages = self._messages
        sock = self._sock
        size = RECEIVE_SIZE
        while not messages:
            self._check_open()
            try:
                data: bytes | bytearray | None
                if sock is None:
                    data = await self._stream.receive_some(size)
                else:
                    # _fastio.receive_some inline: one coroutine less while waiting.
                    await trio.lowlevel.checkpoint_if_cancelled()
                    data = read_nowait(sock, size)
                    if data is None:
                        while data is None:
                            await trio.lowlevel.wait_readable(sock)
                            data = read_nowait(sock, size)
                    else:  # data at once: still a schedule point
                        await trio.lowlevel.cancel_shielded_checkpoint()
            except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
                await self._abort(f"the connection is broken ({exc or type(exc).__name__})")
                raise TransportClosed(self._error) from None
            if not data:
                await self._abort("the peer closed the connection")
                raise TransportClosed(self._error)
            self.idle_ticks = 0  # the keepalive's sign of life (see RouterHost)
            try:
                events = self._connection.receive_data(data)
            except RawSocketProtocolError as exc:
                logger.info("closing RawSocket connection %s: %s", self.info.get("peer"), exc)
                await self._abort(f"RawSocket protocol error: {exc}")
                raise TransportClosed(self._error) from None
            if len(data) == size and size < LARGE_RECEIVE_SIZE:
                size *= 4  # a full read: more may be waiting (see LARGE_RECEIVE_SIZE)
            pinged = False
            for event in events:
                if type(event) is RawSocketMessage:
                    messages.append(event.payload)
                elif type(event) is RawSocketPing:
                    pinged = True
            # A locked writer drains the codec (PONG included) before releasing.
            if pinged and not self._sending():
                try:
                    await self._flush()
                except TransportClosed:
                    if not messages:
                        raise
        return messages.pop(0)

    # -- closing

    async def _abort(self, reason: str) -> None:
        if self._error is None:
            self._error = reason
        self._closed = True
        await trio.aclose_forcefully(self._stream)

    def close_now(self) -> bool:
        """Close a plain-socket connection at once, from any task, without waiting:
        a task in ``receive``, ``send`` or ``flush`` then gets ``TransportClosed``.

        Returns False, doing nothing, on a TLS or other stream (use ``aclose``).
        RawSocket has no closing handshake, so this loses nothing ``aclose`` would
        send; unwritten output is dropped.
        """
        sock = self._sock
        if sock is None:
            return False
        if not self._closed:
            self._closed = True
            self._error = "the RawSocket transport was closed locally"
            sock.close()  # wakes a task waiting on the socket (trio's notify_closing)
        return True

    async def aclose(self) -> None:
        """Close the stream (RawSocket has no closing handshake). Idempotent."""
        if self._closed:
            await trio.lowlevel.checkpoint()
            return
        self._closed = True
        self._error = "the RawSocket transport was closed locally"
        with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
            await self._stream.aclose()


async def _linger_close(stream: trio.abc.Stream, reply: bytes = b"") -> None:
    """Send ``reply`` (a refused client's error reply, if any), then close gracefully."""
    try:
        if reply:
            await stream.send_all(reply)
        if isinstance(stream, trio.abc.HalfCloseableStream):
            # Closing with unread input makes the kernel answer RST, which may
            # destroy our reply before the client reads it: signal EOF, read the
            # (bounded) rest, then close.
            await stream.send_eof()
            with trio.move_on_after(_DRAIN_TIMEOUT):
                drained = 0
                while drained < _DRAIN_LIMIT:
                    data = await stream.receive_some(RECEIVE_SIZE)
                    if not data:
                        break
                    drained += len(data)
        await stream.aclose()
    except (trio.BrokenResourceError, trio.ClosedResourceError):
        await trio.aclose_forcefully(stream)
    except BaseException:
        await trio.aclose_forcefully(stream)
        raise


async def accept_rawsocket(
    stream: trio.abc.Stream,
    initial: bytes = b"",
    *,
    serializers: Collection[int] = _ALL_SERIALIZER_IDS,
    max_length_exponent: int = 15,
    handshake_timeout: float = 10.0,
    info: dict[str, Any] | None = None,
) -> MessageTransport | None:
    """Router side: run the RawSocket handshake over an accepted ``stream``.

    ``initial`` holds bytes the caller already read from it (the dispatcher's
    first byte). A bad request is answered with its error code (unsupported
    serializer 1, reserved bits 3, ...) and the stream closed; a client that
    does not complete its request within ``handshake_timeout`` seconds is
    dropped; a first byte other than 0x7F closes at once. Returns None in those
    cases, else the transport (``info`` entries are added to its ``info``).
    ``serializers`` are RawSocket serializer ids (1 JSON, 2 MessagePack, 3 CBOR).
    """
    unknown = [s for s in serializers if serializer_for_rawsocket(s) is None]
    if unknown or not serializers:
        raise ValueError(f"unsupported or no RawSocket serializer ids: {unknown}")
    connection = RawSocketRouter(max_length_exponent=max_length_exponent, serializers=serializers)
    pending: list[bytes] = []
    with trio.move_on_after(handshake_timeout) as timer:
        try:
            data: bytes | bytearray = initial
            opened = False
            while not opened:
                if data:
                    events = connection.receive_data(data)
                    pending.extend(e.payload for e in events if type(e) is RawSocketMessage)
                    opened = connection.state is RawSocketState.OPEN
                    if opened:
                        break
                data = await stream.receive_some(RECEIVE_SIZE)
                if not data:
                    await trio.aclose_forcefully(stream)
                    return None
            # The reply, and PONGs for any PINGs pipelined after the request.
            await stream.send_all(connection.data_to_send())
        except RawSocketProtocolError as exc:
            logger.info("RawSocket handshake from %s refused: %s", stream_peer(stream), exc)
            # The reply carrying the error code is queued (none for a bad magic byte).
            await _linger_close(stream, connection.data_to_send())
            return None
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            await trio.aclose_forcefully(stream)
            return None
        except BaseException:
            if timer.cancel_called:  # logged now: closing is a checkpoint
                logger.info(
                    "dropping %s: its RawSocket handshake did not complete in time",
                    stream_peer(stream),
                )
            await trio.aclose_forcefully(stream)
            raise
        serializer = serializer_for_rawsocket(connection.serializer_id or 0)
        assert serializer is not None
        details = _base_info(stream, info)
        details["serializer"] = serializer.subprotocol
        return RawSocketTransport(stream, connection, serializer, details, pending)
    # The stream is closed by now (the cancellation's way out above).
    await trio.aclose_forcefully(stream)
    return None


async def connect_rawsocket(
    stream: trio.abc.Stream, serializer: Serializer, *, max_length_exponent: int = 15
) -> MessageTransport:
    """Client side: run the RawSocket handshake over a connected ``stream``.

    ``serializer`` must be unbatched (RawSocket has no batched mode: ``ValueError``).
    ``max_length_exponent`` announces the longest message we take,
    ``2**(9+exponent)`` bytes. If the handshake fails the stream is closed and
    ``TransportClosed`` raised, its ``__cause__`` being the core's error when
    there is one (``wamp_core.RawSocketRejected`` with the router's ``code``).
    """
    if serializer.batched:
        raise ValueError(f"RawSocket has no batched serializers: {serializer.subprotocol!r}")
    connection = RawSocketClient(serializer.rawsocket_id, max_length_exponent=max_length_exponent)
    pending: list[bytes] = []
    try:
        await stream.send_all(connection.data_to_send())
        while connection.state is RawSocketState.HANDSHAKE:
            data = await stream.receive_some(RECEIVE_SIZE)
            if not data:
                raise TransportClosed("the router closed the connection during the handshake")
            events = connection.receive_data(data)
            pending.extend(e.payload for e in events if type(e) is RawSocketMessage)
        leftover = connection.data_to_send()  # PONGs for pipelined PINGs
        if leftover:
            await stream.send_all(leftover)
    except RawSocketProtocolError as exc:
        await trio.aclose_forcefully(stream)
        raise TransportClosed(f"RawSocket handshake failed: {exc}") from exc
    except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
        await trio.aclose_forcefully(stream)
        raise TransportClosed(f"the connection broke during the RawSocket handshake: {exc}") from (
            exc
        )
    except BaseException:
        await trio.aclose_forcefully(stream)
        raise
    details = _base_info(stream, None)
    details["serializer"] = serializer.subprotocol
    return RawSocketTransport(stream, connection, serializer, details, pending)
