"""WAMP over WebSocket (RFC 6455), on wsproto over any trio stream, in both roles.

The subprotocol decides the serializer (``wamp.2.json``, ``wamp.2.msgpack``,
``wamp.2.cbor`` and their ``.batched`` variants); JSON travels in text messages,
the others in binary ones.

Design (trio-websocket issue #82 is the trap to avoid: a reader task blocked on a
full queue stops answering pings and the closing handshake):

- There is no background task. ``receive()`` *is* the reader loop: it reads the
  stream, feeds wsproto, answers pings at once, completes a closing handshake,
  reassembles fragmented messages (at most ``max_message_size`` bytes, else close
  1009) and returns one complete message. Nothing is read that nobody asked for,
  so memory stays bounded without a queue that can fill up; the router host's
  reader task calls ``receive()`` continuously and never blocks elsewhere.
- The reader never waits for the writer: a pong is queued as bytes and sent at
  once when the send lock is free, or by the task holding the lock right after
  its own write. Two peers whose writers are both stuck on full buffers thus
  cannot deadlock on a ping.
- In the server role the data phase is parsed here, not by wsproto: data,
  continuation, ping and pong frames (unmasked with one big-integer XOR per
  frame). At the first frame it does not handle (a close frame, or anything
  invalid in a frame header: reserved bits, unknown opcode, unmasked frame,
  oversized or fragmented control frame, non-minimal length) the rest of the
  input goes to wsproto, which thus keeps the closing handshake and its error
  reports; only errors that depend on state (a data frame inside a fragmented
  message: 1002; invalid UTF-8 in a text message: 1007; over
  ``max_message_size``: 1009) are reported here, as wsproto words them.
- Sends are serialized by a ``trio.Lock``, so concurrent senders never interleave
  frames. A send cancelled half-way leaves the stream in an unknown state, so
  the transport is then broken and its stream closed.

Decisions: a message of the other frame type than the subprotocol uses (binary on
``wamp.2.json``, text on the binary ones) is accepted (be liberal in what you
accept): the payload's bytes go to the serializer, which refuses what it cannot
decode. ``Origin`` is not checked: WAMP authentication decides who may join.
Compression extensions (permessage-deflate) are not offered nor accepted.
"""

from __future__ import annotations

import contextlib
import logging
import re
import struct
from collections.abc import Callable, Iterable, Sequence
from http import HTTPStatus
from typing import Any

import h11
import trio
from wsproto import ConnectionType, WSConnection
from wsproto.connection import Connection, ConnectionState
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Message,
    Ping,
    RejectConnection,
    RejectData,
    Request,
    TextMessage,
)
from wsproto.frame_protocol import Opcode
from wsproto.utilities import RemoteProtocolError as WSRemoteProtocolError

from wamp_core import SERIALIZERS, LocalProtocolError, Serializer, get_serializer

from ._fastio import DirectSender, receive_some, socket_of
from ._transport import TransportClosed

__all__ = [
    "ALL_SUBPROTOCOLS",
    "DEFAULT_MAX_MESSAGE_SIZE",
    "MAX_HEAD_SIZE",
    "WebSocketHandshakeError",
    "WebSocketTransport",
    "accept_websocket",
    "connect_websocket",
]

logger = logging.getLogger("wamp_trio")

ALL_SUBPROTOCOLS: tuple[str, ...] = tuple(SERIALIZERS)
"""Every WAMP WebSocket subprotocol: json, msgpack, cbor, each plain and batched."""

DEFAULT_MAX_MESSAGE_SIZE = 16 * 1024 * 1024
"""Largest message received by default (bytes, after reassembly); larger closes with 1009."""

MAX_HEAD_SIZE = 16 * 1024
"""Largest HTTP request or response head accepted (bytes)."""

_RECEIVE_SIZE = 64 * 1024
_LARGE_READ = 1024 * 1024  # the most asked of the socket for the rest of a large frame

_HANDSHAKE_HEADERS = frozenset(
    (
        "connection",
        "upgrade",
        "sec-websocket-key",
        "sec-websocket-version",
        "sec-websocket-protocol",
        "sec-websocket-extensions",
    )
)
"""Request headers left out of the transport's ``http_headers``: what they said is
in the handshake's outcome (``protocol``; no extension is ever accepted)."""
_HEAD16 = struct.Struct("!BBH")  # data frame header with a 16-bit length
_HEAD64 = struct.Struct("!BBQ")  # ... with a 64-bit length
_MAX_REJECT_BODY = 64 * 1024
_LINGER_TIME = 2.0
_LINGER_BYTES = 64 * 1024
_HEAD_END = re.compile(rb"\r?\n\r?\n")

# RFC 6455 section 7.4.1 close codes used here.
_NORMAL_CLOSURE = 1000
_ABNORMAL_CLOSURE = 1006
_MESSAGE_TOO_BIG = 1009
_PROTOCOL_ERROR = 1002
_INVALID_PAYLOAD = 1007

# Opcodes the server's own frame parser handles: continuation, text, binary,
# ping, pong. Everything else (close, reserved opcodes) goes to wsproto.
_FAST_OPCODES = frozenset((0x0, 0x1, 0x2, 0x9, 0xA))


_XOR_TABLES: list[bytes | None] = [None] * 256
"""``bytes.translate`` tables XORing every byte with one key byte, made on first use."""


def _xor_table(key: int) -> bytes:
    table = _XOR_TABLES[key]
    if table is None:
        table = _XOR_TABLES[key] = bytes([byte ^ key for byte in range(256)])
    return table


def _unmask_python(data: bytes | memoryview, mask: bytes) -> bytes:
    """XOR ``data`` with the repeated 4-byte ``mask`` (RFC 6455 section 5.3); the
    fallback for ``websockets``' C ``apply_mask``, 8 to 13 times slower."""
    length = len(data)
    if length < 2048:
        # One big-integer XOR: the fastest way for short payloads.
        key = mask * ((length + 3) >> 2)
        if len(key) != length:
            key = key[:length]
        return (int.from_bytes(data, "little") ^ int.from_bytes(key, "little")).to_bytes(
            length, "little"
        )
    # Every fourth byte through a translate table: 2.5 times faster for 1 MB
    # than the big integers, whose conversions dominate at that size.
    out = bytearray(data)
    for offset in range(4):
        out[offset::4] = out[offset::4].translate(_xor_table(mask[offset]))
    return bytes(out)


_unmask: Callable[[bytes | memoryview, bytes], bytes]
try:
    # The websockets library's C speedup (a dependency for this alone): from
    # 8 times faster for 100 bytes to 13 times for 1 MB than _unmask_python.
    from websockets.speedups import apply_mask as _unmask
except ImportError:  # pragma: no cover  (no C extension on this platform)
    _unmask = _unmask_python


class WebSocketHandshakeError(Exception):
    """The server refused the WebSocket handshake or answered it wrongly.

    ``status_code`` is the HTTP status of a refusal (``None`` for an invalid
    response) and ``body`` the refusal's body.
    """

    def __init__(self, message: str, status_code: int | None = None, body: bytes = b"") -> None:
        super().__init__(message)
        self.status_code = status_code
        self.body = body


# -- HTTP helpers shared with the listener ----------------------------------------------


class HeadTooLarge(Exception):
    """The HTTP head did not end within ``MAX_HEAD_SIZE`` bytes."""


async def read_http_head(
    stream: trio.abc.ReceiveStream, initial: bytes = b"", limit: int = MAX_HEAD_SIZE
) -> tuple[bytes, bytes] | None:
    """Read until the end of an HTTP head (the first empty line).

    Returns ``(head, rest)`` where ``rest`` is what was read past the head, or
    None when the peer closed (or broke) the connection first. Raises
    ``HeadTooLarge`` when the head exceeds ``limit`` bytes.
    """
    buffer = bytearray(initial)
    while True:
        end = _HEAD_END.search(buffer)
        if end is not None:
            if end.end() > limit:
                raise HeadTooLarge
            return bytes(buffer[: end.end()]), bytes(buffer[end.end() :])
        if len(buffer) >= limit:
            raise HeadTooLarge
        try:
            data = await stream.receive_some(_RECEIVE_SIZE)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            return None
        if not data:
            return None
        buffer += data


def parse_request_head(head: bytes) -> h11.Request | str:
    """Parse a complete request head with h11: the request, or why it is invalid."""
    connection = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEAD_SIZE)
    connection.receive_data(head)
    try:
        event = connection.next_event()
    except h11.RemoteProtocolError as exc:
        # h11 quotes the offending bytes (b'...'), which may carry a credential
        # (an Authorization or Cookie line): keep only what kind of error it is.
        reason, colon, rest = str(exc).partition(": ")
        if not colon or ("b'" not in rest and 'b"' not in rest):
            reason = str(exc)
        return f"invalid HTTP request: {reason}"
    if not isinstance(event, h11.Request):
        return "invalid HTTP request"
    return event


def http_response(status: int, body: str, headers: Iterable[tuple[str, str]] = ()) -> bytes:
    """A complete ``Connection: close`` HTTP/1.1 response with a plain-text body."""
    payload = body.encode("utf-8")
    lines = [
        f"HTTP/1.1 {status} {HTTPStatus(status).phrase}",
        "Content-Type: text/plain; charset=utf-8",
        f"Content-Length: {len(payload)}",
        "Connection: close",
        *(f"{name}: {value}" for name, value in headers),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + payload


async def send_http_error(
    stream: trio.abc.Stream,
    status: int,
    body: str,
    headers: Iterable[tuple[str, str]] = (),
) -> None:
    """Answer with an HTTP error response and close the stream.

    The close lingers (half-close, then read and discard for a moment) so that
    unread request bytes don't make the kernel reset the connection before the
    client has read the response.
    """
    try:
        await stream.send_all(http_response(status, body, headers))
        with trio.move_on_after(_LINGER_TIME):
            if isinstance(stream, trio.abc.HalfCloseableStream):
                await stream.send_eof()
            discarded = 0
            while discarded < _LINGER_BYTES:
                data = await stream.receive_some(_RECEIVE_SIZE)
                if not data:
                    break
                discarded += len(data)
    except (trio.BrokenResourceError, trio.ClosedResourceError, trio.BusyResourceError):
        pass
    finally:
        await trio.aclose_forcefully(stream)


def _resolve_subprotocols(names: Sequence[str]) -> list[str]:
    result: list[str] = []
    for name in names:
        try:
            subprotocol = get_serializer(name).subprotocol
        except LocalProtocolError:
            raise ValueError(f"unknown WAMP subprotocol {name!r}") from None
        if subprotocol not in result:
            result.append(subprotocol)
    if not result:
        raise ValueError("no WAMP subprotocol given")
    return result


# -- the transport ---------------------------------------------------------------------


class WebSocketTransport(DirectSender):
    """A ``MessageTransport`` over one open WebSocket connection (either role).

    Made by ``accept_websocket`` and ``connect_websocket``. ``close_code`` and
    ``close_reason`` tell how the connection ended: the peer's close frame, our
    own when we closed it for a protocol error (1009 for an oversize message),
    or 1006 when the connection was lost without a close frame. ``idle_ticks``
    is reset to 0 by every read that brings bytes (data, pings, pongs alike);
    the router host's keepalive sweep counts up in it (see ``RouterHost``).
    """

    def __init__(
        self,
        stream: trio.abc.Stream,
        ws: WSConnection | Connection | None,
        serializer: Serializer,
        *,
        max_message_size: int,
        close_timeout: float,
        info: dict[str, Any],
        received: bytes = b"",
    ) -> None:
        self.serializer = serializer
        self.info = info
        self.close_code: int | None = None
        self.close_reason: str | None = None
        super().__init__(socket_of(stream))  # direct I/O on plain sockets (see _fastio)
        self._stream = stream
        # wsproto's connection; None for a server until it is needed (closing,
        # errors): our own framing and parser do the data phase without it.
        self._wsconn = ws
        self._max_message_size = max_message_size
        self._close_timeout = close_timeout
        self.idle_ticks = 0
        # The send lock (DirectSender) and the end event (_ended) are made on
        # first use: most server connections write directly and end once.
        # A task is in receive() (or aclose() reads the close frame). A flag, not a
        # lock: taking a trio.Lock costs a scheduling round per message.
        self._receiving = False
        self._messages: list[bytes] = []  # a list: cheaper than a deque when idle
        self._partial = bytearray()
        self._control = bytearray()  # pongs and close frames not yet written
        self._parser_failed = False  # wsproto gave up on the input: discard the rest
        self._send_broken = False
        self._local_close = False  # aclose() was called
        self._stream_closed = False
        self._is_ended = False  # the connection is over and the stream closed
        self._ended_event: trio.Event | None = None  # set then too; made for waiters
        # First header byte of our data frames when we frame them ourselves (server
        # role: no masking; no extension is ever negotiated), else 0: wsproto does.
        client = ws is not None and ws.client
        self._frame_opcode = 0 if client else (0x82 if serializer.binary else 0x81)
        # Our own frame parser (server role) until it hands over to wsproto.
        self._fast = not client
        self._initial = b""  # bytes read with the handshake, not parsed yet
        self._rbuf = b""  # unparsed input, from the start of a frame
        self._skip = 0  # bytes of a dropped frame's payload still to discard
        self._fragment = 0  # opcode of the fragmented message in progress, else 0
        self._need = 0  # bytes still missing from a large incomplete frame
        self._chunks: list[bytes] = []  # ... and what was received of it
        if received:
            if self._fast:
                self._initial = received
            else:
                self._ws.receive_data(received)

    # -- the MessageTransport interface --

    async def send(self, data: bytes) -> None:
        """Send one message: text for JSON subprotocols, binary for the others.

        Raises ``TransportClosed`` once the connection is closing or closed, and
        ``ValueError`` for a JSON message that is not UTF-8.
        """
        await self.send_many((data,))

    async def send_many(self, messages: Sequence[bytes]) -> None:
        """Send several messages (as ``send`` does each) in one write.

        ``ValueError``, and nothing sent, when one of them is a JSON message that
        is not UTF-8.
        """
        if self._frame_opcode:
            # Server role, no extensions: frame here, without wsproto's copies.
            framed = self._frame(messages)
            async with self._send_lock:
                if self._local_close or self._send_broken or not self._open():
                    raise TransportClosed(self._why_closed())
                if self._control:
                    await self._write_control()
                await self._write(framed)
                if self._control:
                    await self._write_control()
            return
        ws = self._ws
        events: list[Message[Any]]
        if self.serializer.binary:
            events = [BytesMessage(data=data) for data in messages]
        else:
            try:
                events = [TextMessage(data=data.decode("utf-8")) for data in messages]
            except UnicodeDecodeError:
                raise ValueError("a WAMP JSON message must be UTF-8") from None
        async with self._send_lock:
            if self._local_close or self._send_broken or ws.state is not ConnectionState.OPEN:
                raise TransportClosed(self._why_closed())
            if self._control:
                await self._write_control()
            await self._write(b"".join([ws.send(event) for event in events]))
            if self._control:
                await self._write_control()

    def _ended(self) -> trio.Event:
        """An event set when the connection is over and the stream closed."""
        event = self._ended_event
        if event is None:
            event = self._ended_event = trio.Event()
            if self._is_ended:
                event.set()
        return event

    def _end(self) -> None:
        self._is_ended = True
        if self._ended_event is not None:
            self._ended_event.set()

    @property
    def _ws(self) -> WSConnection | Connection:
        """wsproto's connection, made on first use (server role)."""
        ws = self._wsconn
        if ws is None:
            ws = self._wsconn = Connection(ConnectionType.SERVER)
        return ws

    def _open(self) -> bool:
        """wsproto's state is OPEN (it is while it was never needed)."""
        ws = self._wsconn
        return ws is None or ws.state is ConnectionState.OPEN

    def _frame(self, messages: Sequence[bytes]) -> bytes:
        """Our own data frames (server role) for ``messages``, joined."""
        if not self.serializer.binary:
            try:
                for data in messages:
                    data.decode("utf-8")
            except UnicodeDecodeError:
                raise ValueError("a WAMP JSON message must be UTF-8") from None
        head = self._frame_opcode
        frames: list[bytes] = []
        for data in messages:
            length = len(data)
            if length <= 125:
                frames.append(bytes((head, length)))
            elif length <= 0xFFFF:
                frames.append(_HEAD16.pack(head, 126, length))
            else:
                frames.append(_HEAD64.pack(head, 127, length))
            frames.append(data)
        return b"".join(frames)

    def try_send_many(self, messages: Sequence[bytes]) -> bool | None:
        """Send several messages without awaiting, if no write is in progress.

        None: not taken (a write or a control frame is pending, the stream is
        TLS, the client role, the connection is closing); use ``send_many``.
        True: written. False: taken, but part of it is still to be written by
        ``flush()``, which must be awaited before the next ``try_send_many`` can
        succeed. ``ValueError`` as for ``send_many``.
        """
        sock = self._sock
        if (
            sock is None
            or not self._frame_opcode
            or self._unsent
            or self._control
            or self._sending()
            or self._local_close
            or self._send_broken
            or not self._open()
        ):
            return None
        return self._write_now(sock, self._frame(messages))

    async def flush(self) -> None:
        """Write what ``try_send_many`` or ``try_send_ping`` left over.
        ``TransportClosed`` if it cannot."""
        async with self._send_lock:
            if self._unsent or self._control:
                if self._send_broken:
                    raise TransportClosed(self._why_closed())
                await self._write_control()  # after the rest in _unsent

    def _ping_frame(self, payload: bytes) -> bytes:
        """A PING frame (RFC 6455 section 5.5.2): our own in the server role
        (unmasked), wsproto's (masked) in the client role."""
        if len(payload) > 125:
            raise ValueError(f"a {len(payload)}-byte PING payload exceeds 125 bytes")
        if self._frame_opcode:
            return bytes((0x89, len(payload))) + payload
        return self._ws.send(Ping(payload))

    async def send_ping(self, payload: bytes = b"") -> None:
        """Send a PING (the peer answers with a PONG, which ``receive`` discards).
        ``TransportClosed`` once the connection is closing or closed."""
        frame = self._ping_frame(payload)
        async with self._send_lock:
            if self._local_close or self._send_broken or not self._open():
                raise TransportClosed(self._why_closed())
            self._control += frame
            await self._write_control()

    def try_send_ping(self, payload: bytes = b"") -> bool | None:
        """Send a PING without awaiting, as ``try_send_many`` sends messages.

        True: written, or queued for the write in progress (its task writes the
        pending control frames after its own). False: queued, but ``flush()``
        must be awaited to write it (a rest of an earlier direct write waits).
        None: not taken (the connection is closing, or the stream is not a plain
        socket and no write is in progress); use ``send_ping``.
        """
        if self._local_close or self._send_broken or not self._open():
            return None
        busy = self._sending()
        sock = self._sock
        if sock is None and not busy:
            return None
        self._control += self._ping_frame(payload)
        if busy:
            return True
        if self._unsent or sock is None:
            return False
        data = bytes(self._control)
        self._control.clear()
        return self._write_now(sock, data)

    def receive_buffered(self) -> bytes | None:
        """The next message if one is already received, else None (never waits)."""
        if self._messages and not self._local_close and not self._receiving:
            return self._messages.pop(0)
        return None

    async def receive(self) -> bytes:
        """Receive the next complete message (its UTF-8 bytes for a text message).

        Raises ``TransportClosed`` when the connection has ended, and
        ``trio.BusyResourceError`` if another task is receiving already.
        """
        if self._receiving:
            raise trio.BusyResourceError("another task is receiving on this WebSocket")
        self._receiving = True
        try:
            if self._messages or self._initial:
                await trio.lowlevel.checkpoint()  # no read below: schedule here
            while True:
                if self._local_close:
                    if not self._is_ended:
                        # aclose() waits for the peer's close frame: read it for it.
                        await self._read_until_closed()
                        await self._close_stream()
                    raise TransportClosed(self._why_closed())
                if self._messages:
                    return self._messages.pop(0)
                if self._is_ended:
                    raise TransportClosed(self._why_closed())
                if self._fast:
                    await self._read_fast()
                    continue
                await self._handle_events()
                if not (self._messages or self._is_ended or self._local_close):
                    await self._read()
        finally:
            self._receiving = False

    async def aclose(self) -> None:
        """Close with code 1000 and wait (``close_timeout`` at most) for the peer's
        close frame, then close the stream. Idempotent; forceful when cancelled."""
        if self._local_close:
            await trio.lowlevel.checkpoint()
            return
        self._local_close = True
        try:
            with trio.move_on_after(self._close_timeout):
                state = self._ws.state
                if state is ConnectionState.OPEN:
                    self._control += self._ws.send(CloseConnection(code=_NORMAL_CLOSURE))
                    self.close_code = _NORMAL_CLOSURE
                    self.close_reason = ""
                if self._control:
                    await self._flush_control(wait=True)
                if not self._is_ended:
                    if self._receiving:
                        # The task in receive() reads the peer's close frame.
                        await self._ended().wait()
                    else:
                        self._receiving = True
                        try:
                            await self._read_until_closed()
                        finally:
                            self._receiving = False
        finally:
            await self._close_stream()

    # -- reading --

    async def _receive_some(self) -> bytes:
        try:
            if self._sock is not None:
                return await receive_some(self._sock, _RECEIVE_SIZE)
            return bytes(await self._stream.receive_some(_RECEIVE_SIZE))
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            return b""

    async def _read_fast(self) -> None:
        """Read and parse with our own frame parser (server role, data phase)."""
        if self._initial:
            data, self._initial = self._initial, b""
        else:
            sock = self._sock
            if sock is None:
                data = await self._receive_some()
            else:  # the same, inline: one coroutine less under every idle connection
                # The rest of a large frame in few reads (up to 1 MiB at once).
                size = min(self._need, _LARGE_READ) if self._need > _RECEIVE_SIZE else _RECEIVE_SIZE
                try:
                    data = await receive_some(sock, size)
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    data = b""
            if not data:
                # The end of the stream: wsproto reports close code 1006.
                self._fast = False
                self._ws.receive_data(None)
                return
        self.idle_ticks = 0  # the keepalive's sign of life (see RouterHost)
        failure = self._parse(data, True)
        if failure is not None:
            code, reason = failure
            self._parser_failed = code != _MESSAGE_TOO_BIG
            await self._fail(code, reason)
        elif self._control:
            await self._flush_control(wait=False)

    def _hand_over(self, rest: bytes) -> None:
        """Leave the rest of the input (from a frame's start) and all that follows to wsproto."""
        self._fast = False
        self._rbuf = b""
        self._ws.receive_data(rest)

    def _parse(self, data: bytes, deliver: bool) -> tuple[int, str] | None:
        """Parse complete frames out of the input; keep the rest for later.

        With ``deliver`` (the connection is open) messages are queued and pings
        answered; without, data frames are dropped (we are closing). Returns the
        close code and reason of an error found here, or None.
        """
        if self._need:
            # A frame is incomplete: gather its chunks, join them once it is whole
            # (not at every read: a large frame would be copied over and over).
            self._chunks.append(data)
            self._need -= len(data)
            if self._need > 0:
                return None
            self._need = 0
            buf = b"".join(self._chunks)
            self._chunks = []
        elif self._rbuf:
            buf = self._rbuf + data
        else:
            buf = data
        if self._skip:
            if self._skip >= len(buf):
                self._skip -= len(buf)
                self._rbuf = b""
                return None
            buf = buf[self._skip :]
            self._skip = 0
        size = len(buf)
        pos = 0
        while size - pos >= 2:
            b0 = buf[pos]
            b1 = buf[pos + 1]
            opcode = b0 & 0x0F
            length = b1 & 0x7F
            if (
                b0 & 0x70  # reserved bits: no extension is negotiated
                or not b1 & 0x80  # a client frame must be masked
                or opcode not in _FAST_OPCODES
                or (opcode >= 8 and (length > 125 or not b0 & 0x80))
                or (opcode == 0 and not self._fragment)
            ):
                self._hand_over(buf[pos:])
                return None
            if length < 126:
                start = pos + 6
            elif length == 126:
                if size - pos < 4:
                    break
                length = (buf[pos + 2] << 8) | buf[pos + 3]
                if length < 126:
                    self._hand_over(buf[pos:])
                    return None
                start = pos + 8
            else:
                if size - pos < 10:
                    break
                length = int.from_bytes(buf[pos + 2 : pos + 10], "big")
                if length <= 0xFFFF or length >> 63:
                    self._hand_over(buf[pos:])
                    return None
                start = pos + 14
            if start > size:
                break
            end = start + length
            if opcode < 8:
                if opcode and self._fragment:
                    self._rbuf = b""
                    return _PROTOCOL_ERROR, f"expected CONTINUATION, got {Opcode(opcode)!r}"
                failure = None
                if not deliver or len(self._partial) + length > self._max_message_size:
                    # Dropped unread: we are closing, or it is too big (1009).
                    if deliver:
                        failure = (
                            _MESSAGE_TOO_BIG,
                            f"message larger than {self._max_message_size} bytes",
                        )
                        self._partial = bytearray()
                    self._fragment = 0 if b0 & 0x80 else (opcode or self._fragment)
                    if end > size:
                        self._skip = end - size
                        end = size
                    pos = end
                    if failure is not None:
                        self._rbuf = buf[pos:]
                        return failure
                    continue
                if end > size:
                    if end - size > _RECEIVE_SIZE:
                        self._need = end - size
                        self._chunks = [buf[pos:]]
                        self._rbuf = b""
                        return None
                    break
                if length < 2048:
                    payload = _unmask(buf[start:end], buf[start - 4 : start])
                else:  # no copy before the unmasked one
                    payload = _unmask(memoryview(buf)[start:end], buf[start - 4 : start])
                pos = end
                if not b0 & 0x80:  # a fragment, more to come
                    if opcode:
                        self._fragment = opcode
                    self._partial += payload
                    continue
                if not opcode:  # the last fragment
                    if self._partial:
                        self._partial += payload
                        payload = bytes(self._partial)
                        self._partial = bytearray()
                    opcode, self._fragment = self._fragment, 0
                if opcode == 1 and not payload.isascii():
                    try:
                        payload.decode("utf-8")
                    except UnicodeDecodeError as exc:
                        self._rbuf = b""
                        return _INVALID_PAYLOAD, str(exc)
                self._messages.append(payload)
                continue
            if end > size:
                break
            if opcode == 0x9 and deliver:
                payload = _unmask(buf[start:end], buf[start - 4 : start])
                self._control += bytes((0x8A, length)) + payload
            # A pong (its read reset idle_ticks already), or a ping while
            # closing: nothing more to do.
            pos = end
        self._rbuf = buf[pos:] if pos < size else b""
        return None

    async def _read(self) -> None:
        data = await self._receive_some()
        self.idle_ticks = 0  # the keepalive's sign of life (see RouterHost)
        if self._parser_failed:
            if not data:
                await self._close_stream()
            return
        if self._ws.state in (ConnectionState.OPEN, ConnectionState.LOCAL_CLOSING):
            # b"" is the end of the stream: wsproto reports close code 1006.
            self._ws.receive_data(data or None)
        elif not data:  # pragma: no cover - wsproto ends in CLOSED, handled before
            await self._close_stream()

    async def _handle_events(self) -> None:
        for event in self._ws.events():
            if isinstance(event, (TextMessage, BytesMessage)):
                if self._local_close or self._ws.state is not ConnectionState.OPEN:
                    continue  # we are closing: late messages are dropped
                chunk = event.data.encode("utf-8") if isinstance(event, TextMessage) else event.data
                if len(self._partial) + len(chunk) > self._max_message_size:
                    self._partial = bytearray()
                    await self._fail(
                        _MESSAGE_TOO_BIG,
                        f"message larger than {self._max_message_size} bytes",
                    )
                    return
                if not event.message_finished:
                    self._partial += chunk
                elif self._partial:
                    self._partial += chunk
                    self._messages.append(bytes(self._partial))
                    self._partial = bytearray()
                else:
                    self._messages.append(bytes(chunk))
            elif isinstance(event, Ping):
                if self._ws.state is ConnectionState.OPEN:
                    self._control += self._ws.send(event.response())
            elif isinstance(event, CloseConnection):
                await self._on_close(event)
                return
            # Pong: nothing more to do (its read reset idle_ticks).
        if self._control:
            await self._flush_control(wait=False)

    async def _on_close(self, event: CloseConnection) -> None:
        state = self._ws.state
        if state is ConnectionState.REMOTE_CLOSING:
            # The peer starts the closing handshake: echo its code, then close.
            self.close_code, self.close_reason = event.code, event.reason
            self._control += self._ws.send(event.response())
            await self._close_stream()
        elif state is ConnectionState.CLOSED:
            # The peer's answer to our close frame, or the stream ended (1006).
            if self.close_code is None or event.code == _ABNORMAL_CLOSURE:
                self.close_code, self.close_reason = event.code, event.reason
            await self._close_stream()
        else:
            # wsproto reports invalid input (bad framing, invalid UTF-8 in a text
            # message...) as a CloseConnection event without a state change.
            self._parser_failed = True
            await self._fail(event.code, event.reason or "protocol error")

    async def _fail(self, code: int, reason: str) -> None:
        """Close the connection because of the peer's error: send a close frame
        with ``code``, read (and discard) until the peer answers, close."""
        logger.info("closing WebSocket connection %s: %s %s", self._peer(), code, reason)
        self.close_code, self.close_reason = code, reason
        try:
            with trio.move_on_after(self._close_timeout):
                if self._ws.state is ConnectionState.OPEN:
                    self._control += self._ws.send(CloseConnection(code=code, reason=reason))
                    await self._flush_control(wait=True)
                await self._read_until_closed()
        finally:
            await self._close_stream()

    async def _read_until_closed(self) -> None:
        """Read and discard until the peer's close frame or the end of the stream
        (the caller bounds the time and holds the receive lock)."""
        if self._parser_failed:
            # The peer's close frame can no longer be recognised: half-close so
            # that it sees our close frame and the end of the stream, then wait
            # for its end of the stream.
            await self._send_eof()
        elif (
            self._fast
            and self._ws.state is ConnectionState.LOCAL_CLOSING
            and self._rbuf
            # What is left unparsed may hold the peer's close frame.
            and self._parse(b"", False) is not None
        ):
            self._parser_failed = True
            return
        while not self._is_ended:
            if (
                not self._parser_failed
                and not self._fast
                and self._ws.state is not ConnectionState.OPEN
            ):
                for event in self._ws.events():
                    if isinstance(event, CloseConnection):
                        if self._ws.state is not ConnectionState.CLOSED:
                            self._parser_failed = True  # invalid input, not a close frame
                        return
            data = await self._receive_some()
            if not data:
                return
            if not self._parser_failed and self._ws.state is ConnectionState.LOCAL_CLOSING:
                if not self._fast:
                    self._ws.receive_data(data)
                elif self._parse(data, False) is not None:
                    self._parser_failed = True  # a broken fragmented message
                    return

    # -- writing --

    async def _write(self, data: bytes | bytearray) -> None:
        """Write with the send lock held (after what ``try_send_many`` left over)."""
        if self._unsent:
            data = self._unsent + data
            self._unsent = b""
        try:
            await self._stream.send_all(data)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            self._send_broken = True
            raise TransportClosed(self._why_closed()) from None
        except BaseException:
            # Cancelled half-way: the peer may have got part of a frame.
            self._send_broken = True
            self._stream_closed = True
            self._end()
            await trio.aclose_forcefully(self._stream)
            raise

    async def _write_control(self) -> None:
        """Write the queued control frames (after ``_unsent``), and those queued
        meanwhile: a pong or ping queued during a write is left to the task
        holding the send lock, which must not let go of it unwritten."""
        while True:
            data = bytes(self._control)
            self._control.clear()
            await self._write(data)  # writes the rest in _unsent first
            if not self._control:  # nothing more was queued during the write
                return

    async def _flush_control(self, *, wait: bool) -> None:
        """Send queued control frames. Without ``wait``, leave them to the task
        holding the send lock, if any: the reader never waits for a writer."""
        if not wait and self._sending():
            return
        try:
            async with self._send_lock:
                if (self._control or self._unsent) and not self._send_broken:
                    await self._write_control()
        except TransportClosed:
            pass

    async def _send_eof(self) -> None:
        if not isinstance(self._stream, trio.abc.HalfCloseableStream):
            return
        async with self._send_lock:
            if (self._control or self._unsent) and not self._send_broken:
                try:
                    await self._write_control()
                except TransportClosed:
                    return
            self._send_broken = True  # nothing more can be sent
            with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
                await self._stream.send_eof()

    async def _close_stream(self) -> None:
        """Send the pending control frames (a close frame) if possible, close the stream."""
        if self._stream_closed:
            return
        try:
            if self._control or self._unsent:
                with trio.move_on_after(self._close_timeout):
                    await self._flush_control(wait=True)
        finally:
            self._stream_closed = True
            self._end()
            try:
                with trio.move_on_after(self._close_timeout):
                    await self._stream.aclose()
            except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
                pass

    # -- descriptions --

    def _peer(self) -> str:
        return str(self.info.get("peer", "?"))

    def _why_closed(self) -> str:
        if self._local_close:
            return "the WebSocket transport was closed locally"
        if self.close_code is None:
            return "the WebSocket connection is closed"
        if self.close_code == _ABNORMAL_CLOSURE:
            return "the WebSocket connection was lost (1006, no close frame)"
        reason = f" {self.close_reason}" if self.close_reason else ""
        return f"the WebSocket connection was closed ({self.close_code}{reason})"


# -- server side -----------------------------------------------------------------------


async def accept_websocket(
    stream: trio.abc.Stream,
    initial: bytes = b"",
    *,
    subprotocols: Sequence[str] = ALL_SUBPROTOCOLS,
    max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
    info: dict[str, Any] | None = None,
    handshake_timeout: float = 10.0,
    close_timeout: float = 5.0,
) -> WebSocketTransport | None:
    """Complete the server side of a WebSocket handshake on ``stream``.

    ``initial`` holds the bytes already read from the stream (the dispatcher's
    copy of the request head); the rest of the head is read if missing. The
    subprotocol chosen is the first of the client's offers that is in
    ``subprotocols``. Refusals are HTTP responses with a plain-text body, after
    which the stream is closed and None returned: 400 for a bad handshake or
    when no supported subprotocol is offered (the body names the supported
    ones), 405 for a method other than GET, 426 for a request without
    ``Upgrade: websocket``, 431 for a head over ``MAX_HEAD_SIZE``. A handshake
    not done within ``handshake_timeout`` seconds, or a client that disconnects,
    also gives None. ``Origin`` is not checked.
    """
    supported = _resolve_subprotocols(subprotocols)
    details = dict(info or {})
    with trio.move_on_after(handshake_timeout):
        return await _server_handshake(
            stream,
            initial,
            supported=supported,
            info=details,
            max_message_size=max_message_size,
            close_timeout=close_timeout,
        )
    logger.info("WebSocket handshake with %s timed out", details.get("peer", "?"))
    await trio.aclose_forcefully(stream)
    return None


async def _server_handshake(
    stream: trio.abc.Stream,
    initial: bytes,
    *,
    supported: list[str],
    info: dict[str, Any],
    max_message_size: int,
    close_timeout: float,
) -> WebSocketTransport | None:
    peer = info.get("peer", "?")

    async def refuse(status: int, body: str, headers: Iterable[tuple[str, str]] = ()) -> None:
        logger.info("WebSocket handshake with %s refused (%d): %s", peer, status, body.strip())
        await send_http_error(stream, status, body, headers)

    try:
        found = await read_http_head(stream, initial)
    except HeadTooLarge:
        await refuse(431, f"The request head is larger than {MAX_HEAD_SIZE} bytes.\n")
        return None
    if found is None:
        logger.info("%s closed the connection during the WebSocket handshake", peer)
        await trio.aclose_forcefully(stream)
        return None
    head, rest = found
    request = parse_request_head(head)
    if isinstance(request, str):
        await refuse(400, f"Bad request: {request}\n")
        return None
    offer = ", ".join(supported)
    if request.method != b"GET":
        await refuse(405, "A WebSocket handshake is a GET request.\n", [("Allow", "GET")])
        return None
    headers: dict[str, str] = {}
    for name, value in request.headers:
        key, text = name.decode("latin-1"), value.decode("latin-1")
        headers[key] = f"{headers[key]}, {text}" if key in headers else text
    upgrade = {token.strip().lower() for token in headers.get("upgrade", "").split(",")}
    if "websocket" not in upgrade:
        await refuse(
            426,
            "This is a WAMP WebSocket endpoint: connect with a WebSocket client "
            f"offering one of the subprotocols {offer}.\n",
            [("Upgrade", "websocket")],
        )
        return None

    ws = WSConnection(ConnectionType.SERVER)
    try:
        ws.receive_data(head)
        event = next(ws.events(), None)
    except WSRemoteProtocolError as exc:
        hint = exc.event_hint
        status = hint.status_code if isinstance(hint, RejectConnection) else 400
        extra = (
            [(n.decode("latin-1"), v.decode("latin-1")) for n, v in hint.headers]
            if isinstance(hint, RejectConnection)
            else []
        )
        await refuse(status, f"Bad WebSocket handshake: {exc}.\n", extra)
        return None
    except UnicodeError:
        # wsproto decodes Host with the idna codec and token headers as ASCII.
        await refuse(400, "Bad WebSocket handshake: a header is not valid ASCII or IDNA.\n")
        return None
    if not isinstance(event, Request):  # pragma: no cover - h11 parsed a request above
        await refuse(400, "Bad WebSocket handshake.\n")
        return None
    chosen = next((p for p in event.subprotocols if p in supported), None)
    if chosen is None:
        offered = ", ".join(event.subprotocols) or "none"
        await refuse(
            400,
            "No supported WebSocket subprotocol offered "
            f"(offered: {offered}). This WAMP router supports: {offer}.\n",
        )
        return None
    try:
        await stream.send_all(ws.send(AcceptConnection(subprotocol=chosen)))
    except (trio.BrokenResourceError, trio.ClosedResourceError):
        logger.info("%s closed the connection during the WebSocket handshake", peer)
        await trio.aclose_forcefully(stream)
        return None
    info.update(
        type="websocket",
        protocol=chosen,
        path=event.target,
        # The request's headers but those of the handshake's mechanics (kept for
        # the connection's lifetime: no need to keep the key and the like).
        http_headers={k: v for k, v in headers.items() if k not in _HANDSHAKE_HEADERS},
    )
    logger.debug("WebSocket connection from %s (%s)", peer, chosen)
    # Nothing of the handshake is kept (its h11 connection, the request, nor
    # wsproto's connection: the transport makes its own when it needs one).
    return WebSocketTransport(
        stream,
        None,
        get_serializer(chosen),
        max_message_size=max_message_size,
        close_timeout=close_timeout,
        info=info,
        received=rest,
    )


# -- client side -----------------------------------------------------------------------


async def connect_websocket(
    stream: trio.abc.Stream,
    host: str,
    path: str,
    subprotocols: Sequence[str] = ALL_SUBPROTOCOLS,
    *,
    max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
    close_timeout: float = 5.0,
    info: dict[str, Any] | None = None,
) -> WebSocketTransport:
    """Run the client side of a WebSocket handshake on a connected ``stream``.

    ``host`` is the ``Host`` header (``"example.com"``, or ``"example.com:8080"``
    for a non-default port), ``path`` the request target (``"/ws"``), and
    ``subprotocols`` the offers in order of preference. The transport's
    serializer is the one the server chose. Raises ``WebSocketHandshakeError``
    when the server refuses or answers wrongly (no subprotocol chosen included),
    ``TransportClosed`` when the connection ends first; the stream is closed then.
    """
    offers = _resolve_subprotocols(subprotocols)
    ws = WSConnection(ConnectionType.CLIENT)
    try:
        accepted = await _client_handshake(stream, ws, host, path, offers)
    except BaseException:
        await trio.aclose_forcefully(stream)
        raise
    if accepted.subprotocol is None:
        await trio.aclose_forcefully(stream)
        raise WebSocketHandshakeError("the server accepted the WebSocket but chose no subprotocol")
    details = dict(info or {})
    details.update(type="websocket", protocol=accepted.subprotocol, host=host, path=path)
    return WebSocketTransport(
        stream,
        ws,
        get_serializer(accepted.subprotocol),
        max_message_size=max_message_size,
        close_timeout=close_timeout,
        info=details,
    )


async def _client_handshake(
    stream: trio.abc.Stream, ws: WSConnection, host: str, path: str, offers: list[str]
) -> AcceptConnection:
    try:
        await stream.send_all(ws.send(Request(host=host, target=path, subprotocols=offers)))
        rejected: RejectConnection | None = None
        body = bytearray()
        while True:
            data = bytes(await stream.receive_some(_RECEIVE_SIZE))
            if not data:
                if rejected is not None:
                    raise _refused(rejected, body)
                raise TransportClosed("the server closed the connection during the handshake")
            ws.receive_data(data)
            for event in ws.events():
                if isinstance(event, AcceptConnection):
                    return event
                if isinstance(event, RejectConnection):
                    rejected = event
                    if not event.has_body:
                        raise _refused(rejected, body)
                elif isinstance(event, RejectData) and rejected is not None:
                    body += event.data[: _MAX_REJECT_BODY - len(body)]
                    if event.body_finished:
                        raise _refused(rejected, body)
    except WSRemoteProtocolError as exc:
        raise WebSocketHandshakeError(f"invalid WebSocket handshake response: {exc}") from None
    except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
        raise TransportClosed(f"the connection failed during the handshake: {exc}") from None


def _refused(event: RejectConnection, body: bytearray) -> WebSocketHandshakeError:
    text = bytes(body).decode("utf-8", "replace").strip()
    message = f"the server refused the WebSocket handshake ({event.status_code})"
    return WebSocketHandshakeError(
        f"{message}: {text}" if text else message, event.status_code, bytes(body)
    )
