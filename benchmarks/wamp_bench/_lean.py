"""The lean hot path: plain sockets, hand framing, pre-encoded messages, a selector loop.

A worker whose role is ``callee``, ``caller``, ``publisher`` or ``subscriber`` and
whose URL is ``ws://``, ``rs://`` or ``unix://`` runs here instead of under trio
(``worker_main`` decides). Each session is set up the ordinary way -- a
``wamp_core.ClientSession`` joins, registers or subscribes -- but over a plain
socket framed by this module (WebSocket or RawSocket); then the measured loop
leaves the session object aside:

- requests are encoded from templates: for JSON by bytes formatting of
  pre-encoded parts (``b"[48,%d%s" % (request_id, tail)``), for MessagePack and
  CBOR by the C codec on a small list;
- frames are built by hand (a WebSocket client frame carries a mask key of four
  zero bytes: valid on the wire, and masking is then the identity), and every
  frame of a batch goes out in one ``send``;
- received frames are split by hand; each WAMP message is decoded with the C
  codec only for its type and request ID (and the event's timestamp);
- non-blocking sockets in one ``selectors`` loop per process; a write the
  kernel does not take at once waits for the socket to be writable.

Every loop is bounded in time (the window's end plus the drain, or the
worker's own deadline) and the control pipe protocol is that of ``_worker``.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import selectors
import socket
import struct
import time
from collections.abc import Callable
from multiprocessing.connection import Connection as Pipe
from typing import Any
from urllib.parse import urlsplit

import cbor2
import msgpack

import wamp_core

from ._session import BenchError
from ._stats import Recorder

__all__ = ["LEAN_ROLES", "lean_main", "runs_lean"]

LEAN_ROLES = ("callee", "caller", "publisher", "subscriber")
LEAN_SCHEMES = ("ws", "rs", "unix")
RECEIVE_SIZE = 1 << 18
LEAVE_TIMEOUT = 2.0
MAX_ERRORS = 100

clock = time.monotonic_ns
READ, WRITE = selectors.EVENT_READ, selectors.EVENT_WRITE

_WS_SHORT = struct.Struct(">BB4x").pack  # FIN+opcode, MASK|length, zero mask key
_WS_MEDIUM = struct.Struct(">BBH4x").pack
_WS_LONG = struct.Struct(">BBQ4x").pack
_RS_HEADER = struct.Struct(">I").pack  # message type 0 (regular) + 24-bit length
_UNPACK_H = struct.Struct(">H").unpack_from
_UNPACK_Q = struct.Struct(">Q").unpack_from


def runs_lean(role: str, url: str) -> bool:
    """Whether a worker of ``role`` against ``url`` takes the lean path."""
    return role in LEAN_ROLES and urlsplit(url).scheme.lower() in LEAN_SCHEMES


# -- codecs ---------------------------------------------------------------------


def _json_dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


def _msgpack_dumps(obj: Any) -> bytes:
    return msgpack.packb(obj, use_bin_type=True)  # type: ignore[no-any-return]


def _msgpack_loads(data: bytes) -> Any:
    return msgpack.unpackb(data, raw=False, strict_map_key=False)


CODECS: dict[str, tuple[Callable[[Any], bytes], Callable[[bytes], Any]]] = {
    "json": (_json_dumps, json.loads),
    "msgpack": (_msgpack_dumps, _msgpack_loads),
    "cbor": (cbor2.dumps, cbor2.loads),
}


def call_encoder(codec: str, uri: str, payload: str) -> Callable[[int], bytes]:
    """CALL ``[48, id, {}, uri, [payload]]`` for a request ID."""
    if codec == "json":
        tail = b"," + _json_dumps([{}, uri, [payload]])[1:]
        return lambda request: b"[48,%d%s" % (request, tail)
    dumps = CODECS[codec][0]
    options: dict[str, Any] = {}
    args = [payload]
    return lambda request: dumps([48, request, options, uri, args])


def publish_encoder(codec: str, uri: str, payload: str) -> Callable[[int], bytes]:
    """PUBLISH ``[16, id, {acknowledge: true}, uri, [payload, monotonic_ns]]``."""
    if codec == "json":
        head = b'[16,%d,{"acknowledge":true},' + _json_dumps(uri).replace(b"%", b"%%") + b",["
        head += _json_dumps(payload).replace(b"%", b"%%") + b",%d]]"
        return lambda request: head % (request, clock())
    dumps = CODECS[codec][0]
    options = {"acknowledge": True}
    return lambda request: dumps([16, request, options, uri, [payload, clock()]])


def answer_peek(codec: str, answer: int) -> Callable[[bytes], tuple[int, int, Any]]:
    """``(type, request ID, message)`` of a received message: for JSON, an
    ``answer`` (``[50,ID,...`` or ``[17,ID,...``) is sliced, not decoded (its
    message is then None); ERROR's request ID is its third element."""
    loads = CODECS[codec][1]

    def decode(payload: bytes) -> tuple[int, int, Any]:
        message = loads(payload)
        kind = message[0]
        if kind == 8:
            return 8, message[2], message
        return kind, message[1] if len(message) > 1 else 0, message

    if codec != "json":
        return decode
    prefix = b"[%d," % answer

    def peek(payload: bytes) -> tuple[int, int, Any]:
        if payload[:4] == prefix:
            with contextlib.suppress(ValueError):
                return answer, int(payload[4 : payload.index(b",", 4)]), None
        return decode(payload)

    return peek


def event_peek(codec: str) -> Callable[[bytes], Any]:
    """An EVENT's ``Args[1]`` (the publisher's clock), ``None`` when the message
    is not an EVENT, ``False`` when it is one without an integer ``Args[1]``.
    For JSON, ``[36,...,[...,T]]`` is sliced, not decoded."""
    loads = CODECS[codec][1]

    def decode(payload: bytes) -> Any:
        message = loads(payload)
        if message[0] != 36:
            return None
        args = message[4] if len(message) > 4 else None
        if not args or len(args) < 2 or type(args[1]) is not int:
            return False
        return args[1]

    if codec != "json":
        return decode

    def peek(payload: bytes) -> Any:
        if payload[:4] == b"[36," and payload[-2:] == b"]]":
            with contextlib.suppress(ValueError):
                return int(payload[payload.rindex(b",", 0, -2) + 1 : -2])
        return decode(payload)

    return peek


# -- a framed socket -------------------------------------------------------------


class Link:
    """A connected socket with WAMP framing (WebSocket client or RawSocket)."""

    __slots__ = (
        "binary",
        "buffer",
        "fragments",
        "frame",
        "pending",
        "selector",
        "sock",
        "websocket",
        "writing",
    )

    def __init__(self, sock: socket.socket, websocket: bool, binary: bool) -> None:
        self.sock = sock
        self.websocket = websocket
        self.binary = binary
        self.buffer = b""
        self.fragments: list[bytes] = []
        self.pending: list[bytes] = []
        self.selector: selectors.BaseSelector | None = None
        self.writing = False
        opcode = 0x82 if binary else 0x81
        if websocket:
            self.frame: Callable[[bytes], bytes] = lambda payload: _ws_frame(opcode, payload)
        else:
            self.frame = _rs_frame

    # writing

    def send(self, data: bytes) -> None:
        """Send ``data`` (frames) now, or as soon as the socket takes it."""
        if self.pending:
            self.pending.append(data)
            return
        try:
            sent = self.sock.send(data)
        except BlockingIOError:
            sent = 0
        if sent < len(data):
            self.pending.append(data[sent:])
            self._watch(True)

    def pump(self) -> None:
        """The socket is writable: send what waits."""
        data = b"".join(self.pending)
        try:
            sent = self.sock.send(data)
        except BlockingIOError:
            sent = 0
        self.pending = [data[sent:]] if sent < len(data) else []
        if not self.pending:
            self._watch(False)

    def _watch(self, writing: bool) -> None:
        if self.selector is not None and writing != self.writing:
            self.writing = writing
            self.selector.modify(self.sock, READ | WRITE if writing else READ, self)

    def send_blocking(self, data: bytes, deadline: float) -> None:
        """Send everything by ``deadline`` (``time.monotonic()``): setup and leave."""
        self.send(data)
        while self.pending:
            _wait(self.sock, WRITE, deadline)
            self.pump()

    # reading

    def read(self) -> list[bytes]:
        """What one ``recv`` completes: the payloads of the WAMP messages.
        ``BenchError`` when the peer has closed the connection."""
        try:
            data = self.sock.recv(RECEIVE_SIZE)
        except BlockingIOError:
            return []
        if not data:
            raise BenchError("the router closed the connection")
        buffer = self.buffer + data if self.buffer else data
        if self.websocket:
            return self._websocket_frames(buffer)
        return self._rawsocket_frames(buffer)

    def _rawsocket_frames(self, buffer: bytes) -> list[bytes]:
        out: list[bytes] = []
        pos, size = 0, len(buffer)
        while size - pos >= 4:
            kind = buffer[pos] & 0x07
            length = (buffer[pos + 1] << 16) | (buffer[pos + 2] << 8) | buffer[pos + 3]
            stop = pos + 4 + length
            if stop > size:
                break
            if kind == 0:
                out.append(buffer[pos + 4 : stop])
            elif kind == 1:  # PING: PONG with its payload
                self.send(bytes((2,)) + buffer[pos + 1 : stop])
            pos = stop
        self.buffer = buffer[pos:]
        return out

    def _websocket_frames(self, buffer: bytes) -> list[bytes]:
        out: list[bytes] = []
        pos, size = 0, len(buffer)
        while size - pos >= 2:
            first, second = buffer[pos], buffer[pos + 1]
            length, header = second & 0x7F, 2
            if length == 126:
                if size - pos < 4:
                    break
                (length,) = _UNPACK_H(buffer, pos + 2)
                header = 4
            elif length == 127:
                if size - pos < 10:
                    break
                (length,) = _UNPACK_Q(buffer, pos + 2)
                header = 10
            if second & 0x80:
                header += 4
            stop = pos + header + length
            if stop > size:
                break
            payload = buffer[pos + header : stop]
            if second & 0x80:  # a server must not mask, but unmask anyway
                payload = _unmask(buffer[pos + header - 4 : pos + header], payload)
            pos = stop
            opcode = first & 0x0F
            if opcode in (1, 2) and first & 0x80:
                out.append(payload)
            elif opcode <= 2:  # a fragment
                self.fragments.append(payload)
                if first & 0x80:
                    out.append(b"".join(self.fragments))
                    self.fragments = []
            elif opcode == 9:  # PING: PONG with its payload
                self.send(_ws_frame(0x8A, payload))
            elif opcode == 8:
                raise BenchError("the router closed the WebSocket connection")
        self.buffer = buffer[pos:]
        return out

    def read_blocking(self, deadline: float) -> list[bytes]:
        """Payloads, waiting by ``deadline`` (``time.monotonic()``) for at least one recv."""
        _wait(self.sock, READ, deadline)
        return self.read()

    def close(self) -> None:
        if self.selector is not None:
            with contextlib.suppress(KeyError, ValueError, OSError):
                self.selector.unregister(self.sock)
            self.selector = None
        self.sock.close()


def _ws_frame(first: int, payload: bytes) -> bytes:
    length = len(payload)
    if length < 126:
        return _WS_SHORT(first, 0x80 | length) + payload
    if length < 65536:
        return _WS_MEDIUM(first, 0xFE, length) + payload
    return _WS_LONG(first, 0xFF, length) + payload


def _rs_frame(payload: bytes) -> bytes:
    return _RS_HEADER(len(payload)) + payload


def _unmask(key: bytes, payload: bytes) -> bytes:
    length = len(payload)
    mask = (key * (length // 4 + 1))[:length]
    value = int.from_bytes(payload, "little") ^ int.from_bytes(mask, "little")
    return value.to_bytes(length, "little")


def _wait(sock: socket.socket, events: int, deadline: float) -> None:
    """Until ``sock`` is ready for ``events``; ``BenchError`` at ``deadline``."""
    with selectors.DefaultSelector() as selector:
        selector.register(sock, events)
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise BenchError("no answer from the router in time (a stuck router?)")
            if selector.select(remaining):
                return


# -- connecting and joining -------------------------------------------------------


def open_link(url: str, serializer: wamp_core.Serializer, deadline: float) -> Link:
    """A framed connection to ``url`` (``ws``, ``rs``, ``unix``), handshake done."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    remaining = max(0.001, deadline - time.monotonic())
    if scheme == "unix":
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.settimeout(remaining)
            sock.connect(parts.netloc + parts.path)
        except BaseException:
            sock.close()
            raise
    else:
        port = parts.port or (80 if scheme == "ws" else None)
        if not parts.hostname or port is None:
            raise ValueError(f"no host or port in {url!r}")
        sock = socket.create_connection((parts.hostname, port), timeout=remaining)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.setblocking(False)
    link = Link(sock, scheme == "ws", serializer.binary)
    try:
        if scheme == "ws":
            _websocket_handshake(link, parts.hostname or "", parts, serializer, deadline)
        else:
            _rawsocket_handshake(link, serializer, deadline)
    except BaseException:
        link.close()
        raise
    return link


def _websocket_handshake(
    link: Link, host: str, parts: Any, serializer: wamp_core.Serializer, deadline: float
) -> None:
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    netloc = f"[{host}]" if ":" in host else host
    if parts.port and parts.port != 80:
        netloc += f":{parts.port}"
    key = base64.b64encode(os.urandom(16)).decode()
    request = (
        f"GET {target} HTTP/1.1\r\nHost: {netloc}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
        f"Sec-WebSocket-Protocol: {serializer.subprotocol}\r\n\r\n"
    )
    link.send_blocking(request.encode(), deadline)
    received = b""
    while b"\r\n\r\n" not in received:
        _wait(link.sock, READ, deadline)
        try:
            data = link.sock.recv(65536)
        except BlockingIOError:
            continue
        if not data:
            raise BenchError("the router closed the connection in the WebSocket handshake")
        received += data
        if len(received) > 65536:
            raise BenchError("the WebSocket handshake's answer is too long")
    head, _, rest = received.partition(b"\r\n\r\n")
    status = head.split(b"\r\n", 1)[0]
    if status.split(b" ")[1:2] != [b"101"]:
        raise BenchError(f"the WebSocket handshake was refused: {status.decode(errors='replace')}")
    if serializer.subprotocol.encode() not in head:
        raise BenchError(f"the router did not accept the subprotocol {serializer.subprotocol}")
    link.buffer = rest


def _rawsocket_handshake(link: Link, serializer: wamp_core.Serializer, deadline: float) -> None:
    link.send_blocking(bytes((0x7F, 0xF0 | serializer.rawsocket_id, 0, 0)), deadline)
    received = b""
    while len(received) < 4:
        _wait(link.sock, READ, deadline)
        try:
            data = link.sock.recv(4 - len(received))
        except BlockingIOError:
            continue
        if not data:
            raise BenchError("the router closed the connection in the RawSocket handshake")
        received += data
    if received[0] != 0x7F:
        raise BenchError("not a RawSocket server")
    if received[1] & 0x0F != serializer.rawsocket_id:
        raise BenchError(f"the RawSocket handshake was refused (error {received[1] >> 4})")


class Session:
    """A joined session on a ``Link``; ``next_request`` is the next free request ID."""

    __slots__ = ("link", "next_request", "session")

    def __init__(self, link: Link, session: wamp_core.ClientSession) -> None:
        self.link = link
        self.session = session
        self.next_request = 1

    def flush(self, deadline: float) -> None:
        data = b"".join(self.link.frame(item) for item in self.session.data_to_send())
        if data:
            self.link.send_blocking(data, deadline)

    def request(self, request_id: int, deadline: float) -> wamp_core.SessionEvent:
        """Send what is queued; the answer to ``request_id`` (``BenchError`` for an ERROR)."""
        self.next_request = max(self.next_request, request_id + 1)
        self.flush(deadline)
        while True:
            for payload in self.link.read_blocking(deadline):
                for event in self.session.receive_data(payload):
                    if getattr(event, "request_id", None) != request_id:
                        continue
                    if isinstance(event, wamp_core.ErrorReceived):
                        raise BenchError(f"{event.error} {event.args or ''}".rstrip())
                    return event


def join(url: str, serializer: str, realm: str, timeout: float) -> Session:
    """A session joined to ``realm`` at ``url`` within ``timeout`` s."""
    deadline = time.monotonic() + timeout
    chosen = wamp_core.get_serializer(serializer)
    link = open_link(url, chosen, deadline)
    try:
        session = Session(link, wamp_core.ClientSession(chosen))
        session.session.join(realm)
        session.flush(deadline)
        while True:
            for payload in link.read_blocking(deadline):
                for event in session.session.receive_data(payload):
                    if isinstance(event, wamp_core.SessionJoined):
                        return session
                    if isinstance(event, wamp_core.SessionAborted):
                        raise BenchError(f"the router refused realm {realm!r}: {event.reason}")
                    if isinstance(event, wamp_core.ChallengeReceived):
                        raise BenchError(
                            f"realm {realm!r} wants authentication ({event.authmethod})"
                        )
    except BaseException:
        link.close()
        raise


def leave_all(links: list[Link], codec: str, timeout: float) -> None:
    """GOODBYE on every link, wait at most ``timeout`` s for the replies, close."""
    dumps, loads = CODECS[codec]
    goodbye = dumps([6, {}, "wamp.close.system_shutdown"])
    deadline = time.monotonic() + timeout
    with selectors.DefaultSelector() as selector:
        waiting = 0
        for link in links:
            link.selector = None
            link.writing = False
            with contextlib.suppress(OSError):
                link.send(link.frame(goodbye))
                selector.register(link.sock, READ, link)
                waiting += 1
        while waiting:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            for key, _ in selector.select(remaining):
                link = key.data
                try:
                    if link.pending:
                        link.pump()
                    done = any(_kind(loads, p) in (3, 6) for p in link.read())
                except (OSError, BenchError):
                    done = True
                if done:
                    selector.unregister(link.sock)
                    waiting -= 1
    for link in links:
        link.close()


def _kind(loads: Callable[[bytes], Any], payload: bytes) -> Any:
    try:
        return loads(payload)[0]
    except Exception:
        return None


# -- the roles ---------------------------------------------------------------------


class _Role:
    def __init__(self, spec: Any) -> None:
        self.spec = spec
        self.codec: str = wamp_core.get_serializer(spec.serializer).codec
        self.dumps, self.loads = CODECS[self.codec]
        self.sessions: list[Session] = []
        self.payload = "x" * spec.payload

    def setup(self, deadline: float) -> dict[str, Any]:
        raise NotImplementedError

    def wait(self, pipe: Pipe, deadline: float) -> tuple[Any, ...]:
        """The parent's next message (by ``deadline``)."""
        while not pipe.poll(max(0.0, min(1.0, deadline - time.monotonic()))):
            if time.monotonic() >= deadline:
                raise BenchError("the worker's deadline passed (a stuck router?)")
        return _receive(pipe)

    def run(self, warm: int, end: int) -> dict[str, Any]:
        return {}

    def final(self) -> dict[str, Any]:
        return {}

    def _join(self, deadline: float) -> Session:
        timeout = min(self.spec.connect_timeout, deadline - time.monotonic())
        session = join(self.spec.url, self.spec.serializer, self.spec.realm, timeout)
        self.sessions.append(session)
        return session

    def close(self) -> None:
        links = [session.link for session in self.sessions]
        self.sessions = []
        leave_all(links, self.codec, LEAVE_TIMEOUT)


def _receive(pipe: Pipe) -> tuple[Any, ...]:
    try:
        message: tuple[Any, ...] = pipe.recv()
    except EOFError:
        return ("stop",)  # the parent is gone
    return message


class _Callee(_Role):
    """One session answering each INVOCATION with a YIELD of the call's Args
    (and KwArgs), served while waiting for the parent."""

    invocations = 0

    def setup(self, deadline: float) -> dict[str, Any]:
        session = self._join(deadline)
        options = {"invoke": "roundrobin"} if self.spec.shared else None
        timeout = time.monotonic() + self.spec.connect_timeout
        session.request(session.session.register(self.spec.uri, options), min(timeout, deadline))
        return {}

    def wait(self, pipe: Pipe, deadline: float) -> tuple[Any, ...]:
        link = self.sessions[0].link
        frame, answer = link.frame, self._answerer()
        invocations = 0
        with selectors.DefaultSelector() as selector:
            selector.register(pipe.fileno(), READ, None)
            selector.register(link.sock, READ, link)
            link.selector = selector
            try:
                while True:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        raise BenchError("the worker's deadline passed (a stuck router?)")
                    for key, mask in selector.select(min(remaining, 1.0)):
                        if key.data is None:
                            return _receive(pipe)
                        if mask & WRITE:
                            link.pump()
                        if not mask & READ:
                            continue
                        out = []
                        for payload in link.read():
                            reply = answer(payload)
                            if reply is not None:
                                out.append(frame(reply))
                        if out:
                            invocations += len(out)
                            link.send(b"".join(out))
            finally:
                self.invocations += invocations
                link.selector = None
                link.writing = False

    def _answerer(self) -> Callable[[bytes], bytes | None]:
        """The YIELD for an INVOCATION ``[68, id, registration, details, args?,
        kwargs?]``: ``[70, id, {}, args, kwargs?]``; None for other messages.
        For JSON with empty details, the YIELD is the INVOCATION's own tail."""
        dumps, loads = self.dumps, self.loads
        empty: dict[str, Any] = {}

        def decode(payload: bytes) -> bytes | None:
            message = loads(payload)
            kind = message[0]
            if kind in (3, 6):
                raise BenchError(f"the router ended the session: {message}")
            if kind != 68:
                return None
            if len(message) > 5 and message[5]:
                return dumps([70, message[1], empty, message[4], message[5]])
            return dumps([70, message[1], empty, message[4] if len(message) > 4 else []])

        if self.codec != "json":
            return decode

        def slice_json(payload: bytes) -> bytes | None:
            if payload[:4] == b"[68,":
                request = payload.find(b",", 4)
                registration = payload.find(b",", request + 1)
                if request > 0 and registration > 0:
                    details = registration + 1
                    if payload[details : details + 3] == b"{},":
                        return b"[70,%s,{},%s" % (payload[4:request], payload[details + 3 :])
            return decode(payload)

        return slice_json

    def final(self) -> dict[str, Any]:
        return {"invocations": self.invocations}


class _Caller(_Role):
    """One session calling: ``outstanding`` calls in flight during the window,
    or (``count`` > 0) ``warmup_calls`` + ``count`` sequential calls."""

    def setup(self, deadline: float) -> dict[str, Any]:
        self._join(deadline)
        return {}

    def run(self, warm: int, end: int) -> dict[str, Any]:
        session = self.sessions[0]
        encode = call_encoder(self.codec, self.spec.uri, self.payload)
        if self.spec.count > 0:
            return self._sequential(session, encode)
        return windowed(session, encode, 50, self.codec, self.spec, warm=warm, end=end)

    def _sequential(self, session: Session, encode: Callable[[int], bytes]) -> dict[str, Any]:
        spec, link, loads = self.spec, session.link, self.loads
        recorder = Recorder()
        deadline = time.monotonic() + spec.connect_timeout
        request = session.next_request
        first = last = clock()
        for index in range(spec.warmup_calls + spec.count):
            if index == spec.warmup_calls:
                first = clock()
            data = link.frame(encode(request))
            started = clock()
            link.send_blocking(data, deadline)
            answered = False
            while not answered:
                for payload in link.read_blocking(deadline):
                    message = loads(payload)
                    kind = message[0]
                    if kind == 50 and message[1] == request:
                        answered = True
                    elif kind == 8 and message[2] == request:
                        raise BenchError(f"the call failed: {message[4]}")
                    elif kind in (3, 6):
                        raise BenchError(f"the router ended the session: {message}")
            last = clock()
            if index >= spec.warmup_calls:
                recorder.add(last - started)
            request += 1
        session.next_request = request
        return {
            "completed": spec.count,
            "errors": 0,
            "unfinished": 0,
            "seconds": (last - first) / 1e9,
            "samples": recorder.samples,
        }


class _Publisher(_Role):
    """One session publishing with acknowledgement, at most ``outstanding``
    unacknowledged; each EVENT's Args are ``[payload, monotonic_ns at publish]``."""

    def setup(self, deadline: float) -> dict[str, Any]:
        self._join(deadline)
        return {}

    def run(self, warm: int, end: int) -> dict[str, Any]:
        encode = publish_encoder(self.codec, self.spec.uri, self.payload)
        return windowed(self.sessions[0], encode, 17, self.codec, self.spec, warm=warm, end=end)


def windowed(
    session: Session,
    encode: Callable[[int], bytes],
    answer: int,
    codec: str,
    spec: Any,
    *,
    warm: int,
    end: int,
) -> dict[str, Any]:
    """Keep ``spec.outstanding`` requests in flight until ``end``; count the
    answers (message type ``answer``, request ID in position 1) that arrive in
    [``warm``, ``end``) and their latency. Waits at most ``spec.drain`` s after
    ``end`` for the rest."""
    link, frame = session.link, session.link.frame
    peek = answer_peek(codec, answer)
    recorder = Recorder()
    add = recorder.add
    sent: dict[int, int] = {}
    pop = sent.pop
    completed = errors = 0
    first_error: str | None = None
    request = session.next_request
    stop = end + int(spec.drain * 1e9)
    with selectors.DefaultSelector() as selector:
        selector.register(link.sock, READ, link)
        link.selector = selector
        try:
            frames = []
            for _ in range(spec.outstanding):
                frames.append(frame(encode(request)))
                sent[request] = clock()
                request += 1
            link.send(b"".join(frames))
            issuing = True
            while sent:
                now = clock()
                if now >= stop:
                    break
                events = selector.select(min((stop - now) / 1e9, 1.0))
                if not events:
                    continue
                if events[0][1] & WRITE:
                    link.pump()
                if not events[0][1] & READ:
                    continue
                payloads = link.read()
                now = clock()
                if now >= end:
                    issuing = False
                issue = 0
                for payload in payloads:
                    kind, answered, message = peek(payload)
                    if kind == answer:
                        started = pop(answered, None)
                        if started is None:
                            continue
                        if issuing and now >= warm:
                            completed += 1
                            add(now - started)
                    elif kind == 8:
                        if pop(answered, None) is None:
                            continue
                        errors += 1
                        first_error = first_error or str(message[4])
                        if errors >= MAX_ERRORS:
                            issuing = False
                    elif kind in (3, 6):
                        raise BenchError(f"the router ended the session: {message}")
                    else:
                        continue
                    if issuing:
                        issue += 1
                if issue:
                    frames = []
                    first = request
                    for _ in range(issue):
                        frames.append(frame(encode(request)))
                        request += 1
                    now = clock()
                    for one in range(first, request):
                        sent[one] = now
                    link.send(b"".join(frames))
        finally:
            link.selector = None
            link.writing = False
    session.next_request = request
    return {
        "completed": completed,
        "errors": errors,
        "first_error": first_error,
        "unfinished": len(sent),
        "seconds": (end - warm) / 1e9,
        "samples": recorder.samples,
    }


class _Subscriber(_Role):
    """``sessions`` sessions subscribed to ``uri``, counting the EVENTs received
    in the window and their delivery latency."""

    def setup(self, deadline: float) -> dict[str, Any]:
        errors: list[str] = []
        for _ in range(self.spec.sessions):
            try:
                session = self._join(deadline)
                timeout = min(time.monotonic() + self.spec.connect_timeout, deadline)
                session.request(session.session.subscribe(self.spec.uri), timeout)
            except (OSError, BenchError) as exc:
                errors.append(f"{type(exc).__name__}: {exc}")
        if errors:
            count = self.spec.sessions
            raise BenchError(f"{len(errors)} of {count} connections failed: {errors[0]}")
        return {"sessions": len(self.sessions)}

    def run(self, warm: int, end: int) -> dict[str, Any]:
        recorder = Recorder()
        add = recorder.add
        peek = event_peek(self.codec)
        events = malformed = 0
        with selectors.DefaultSelector() as selector:
            for session in self.sessions:
                selector.register(session.link.sock, READ, session.link)
                session.link.selector = selector
            try:
                while True:
                    now = clock()
                    if now >= end:
                        break
                    for key, mask in selector.select(min((end - now) / 1e9, 1.0)):
                        link = key.data
                        if mask & WRITE:
                            link.pump()
                        if not mask & READ:
                            continue
                        payloads = link.read()
                        now = clock()
                        if now >= end or now < warm:
                            continue
                        for payload in payloads:
                            published = peek(payload)
                            if published is None:
                                continue
                            if published is False:
                                malformed += 1
                                continue
                            events += 1
                            add(now - published)
            finally:
                for session in self.sessions:
                    with contextlib.suppress(KeyError, ValueError):
                        selector.unregister(session.link.sock)
                    session.link.selector = None
                    session.link.writing = False
        return {"events": events, "malformed": malformed, "samples": recorder.samples}


_ROLES: dict[str, Callable[[Any], _Role]] = {
    "callee": _Callee,
    "caller": _Caller,
    "publisher": _Publisher,
    "subscriber": _Subscriber,
}


def lean_main(pipe: Pipe, spec: Any, describe: Callable[[BaseException], str]) -> None:
    """The worker process for a lean role: the protocol of ``_worker``, in plain
    blocking-free code bounded by ``spec.deadline``."""
    deadline = time.monotonic() + spec.deadline
    role = _ROLES[spec.role](spec)
    try:
        try:
            pipe.send(("ready", role.setup(deadline)))
            while True:
                message = role.wait(pipe, deadline)
                if message[0] == "stop":
                    break
                if message[0] == "go":
                    start, warm, end = message[1:]
                    time.sleep(max(0.0, (start - clock()) / 1e9))
                    pipe.send(("result", role.run(warm, end)))
        finally:
            role.close()
        pipe.send(("done", role.final()))
    except BaseException as exc:
        with contextlib.suppress(OSError):
            pipe.send(("error", describe(exc)))
    finally:
        pipe.close()
