"""The router side of the HTTP long-poll transport, as a pure state machine.

AP/ap_transport_http_longpoll.md (rfc/text/advanced/). The adapter parses HTTP
(h11) and hands each request over as ``(method, path, body, now)``; the core
answers with a ``LongPollResponse`` to send, or a ``LongPollWait`` for a receive
request that has nothing to return yet. Nothing here decodes WAMP messages: the
payloads go to and come from the WAMP router session as opaque transport
messages, exactly like WebSocket messages.

How the adapter drives it (one ``LongPollEndpoint`` per base path)::

    result = endpoint.handle(method, target, body, now)
    if isinstance(result, LongPollWait):          # a held receive request
        while not result.ready and not poll_timeout_passed:
            await something_changed()             # see below
        response = endpoint.finish_wait(result, now)   # (or abandon_wait on disconnect)
    else:
        response = result
    ...send response.status / response.headers / response.body...
    match response.event:
        case LongPollOpened(transport): attach a router session to it
        case LongPollMessage(transport, payload): feed payload to that session
        case LongPollClosed(transport): detach that session
    # deliveries of the router to a long-poll session: transport.send(payload);
    # the router closing the session: transport.close().
    # a timer: at endpoint.next_deadline(), detach every event of endpoint.expire(now).

"Something changed" is any of: ``transport.send()``, ``transport.close()``, a
``LongPollClosed`` event for the transport, or another receive request for it
(``handle`` returned); a broadcast to every held request after each of these is
enough, as each checks ``wait.ready``.

Decisions where the spec is silent (or where clients disagree with it):

* Status codes. ``open`` answers 200 with ``application/json``. ``send`` and
  ``close`` answer ``ack_status`` with an empty body: 204 by default. The spec
  says "202 (no content)" (202 is Accepted, not No Content); Crossbar answers
  204, and AutobahnJS's long-poll client accepts *only* 200 and 204 (a 202
  fails its transport), so 204 is what real clients need; ``ack_status=202``
  gives the spec's literal code.
* Errors are ``text/plain`` reasons: 400 for a bad ``open`` body, no common
  protocol, or an empty ``send`` body; 404 for an unknown path, an unknown or
  client-closed transport id, and for a transport the router closed (once its
  pending output is drained); 405 with ``Allow`` for any method but POST and
  OPTIONS; 413 for a body over ``max_body_size``; 503 when ``max_transports``
  are open.
* OPTIONS (a CORS preflight: browsers send one because clients post
  ``Content-Type: application/json``) on any well-formed path answers 204 with
  ``Allow``, ``Access-Control-Allow-Methods`` and ``Access-Control-Allow-Headers``.
  The origin headers (``Access-Control-Allow-Origin`` and ``-Credentials``) depend
  on the request's ``Origin`` and the server's policy, so the adapter adds them
  to every response.
* Every response carries ``Cache-Control: no-store`` and, unless it is a 204,
  ``Content-Length``. The query string (``?x=<random>`` cache busters) is
  ignored; so is the request body of ``receive`` and ``close``, and the
  ``Content-Type`` of ``open`` (a SHOULD in the spec; the adapter keeps headers).
* Protocol choice: the first entry of the client's list that the endpoint
  supports. Unknown names are skipped; entries that are not strings make the
  request malformed. By default all six serializers are offered: the spec lists
  only JSON and MessagePack, Crossbar adds CBOR (``application/cbor``).
* Transport ids: ``secrets.token_urlsafe(16)`` (128 random bits). An injected
  ``id_source`` must return URL-safe ids (``[A-Za-z0-9_-]+``) not in use.
* ``send`` bodies are not decoded here: a malformed message is a WAMP protocol
  violation that the router session answers with ABORT on the receive channel,
  as on any transport; 400 is kept for transport-level errors.
* One held receive per transport: a new receive request supersedes the held one,
  which is then answered 204 (clients reissue a receive when theirs timed out
  while the server still holds the old one).
* A held receive with nothing to return when the adapter's poll timeout passes
  is answered 204 with no body ("poll again"), which AutobahnJS handles.
* A client's ``close`` drops the transport at once (pending output is discarded)
  and a held receive is answered 204, as Crossbar does: answering it with an
  error would make AutobahnJS report an unclean close.
* The router closing the session (``transport.close()``) moves the transport to
  CLOSING: the output already queued (the GOODBYE or ABORT) is still delivered,
  after which ``receive`` answers 404; ``send`` answers 404; the client's
  ``close`` is acknowledged (AutobahnJS posts it after a GOODBYE and only then
  reports the close). A CLOSING transport that goes idle is dropped silently: its
  session was detached when the adapter closed it.
* Expiry: a transport is idle when no request for it arrived for
  ``idle_timeout`` seconds and no receive request is held (the count restarts
  when a held request ends). It expires at exactly ``last_activity +
  idle_timeout``. Transports closed or expired are forgotten: later requests get 404.
* Output bound: ``transport.send()`` returns False and queues nothing when the
  payload would take the queue past ``max_queue_messages`` or ``max_queue_bytes``;
  the adapter applies its slow-consumer policy. A payload is always accepted into
  an empty queue, so one large message cannot wedge a session for good (the
  router's own maximum message size bounds it). Sending on a transport that is
  not OPEN is a ``LocalProtocolError``.
* Content types of ``receive``: ``application/json``, ``application/x-msgpack``
  (what Crossbar and Autobahn use) and ``application/cbor``.
"""

from __future__ import annotations

import json
import re
import secrets
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from enum import Enum
from types import MappingProxyType
from typing import Literal

from ._errors import LocalProtocolError
from ._serializers import SERIALIZERS, Serializer

__all__ = [
    "LONGPOLL_CONTENT_TYPES",
    "LongPollClosed",
    "LongPollEndpoint",
    "LongPollEvent",
    "LongPollMessage",
    "LongPollOpened",
    "LongPollResponse",
    "LongPollState",
    "LongPollTransport",
    "LongPollWait",
]

LONGPOLL_CONTENT_TYPES: Mapping[str, str] = MappingProxyType(
    {
        "json": "application/json",
        "msgpack": "application/x-msgpack",
        "cbor": "application/cbor",
    }
)
"""The ``Content-Type`` of ``receive`` responses, by codec."""

_TEXT = "text/plain; charset=utf-8"
_ALLOW = "POST, OPTIONS"
_ID = re.compile(r"[A-Za-z0-9_-]+")
_OPERATIONS = frozenset({"send", "receive", "close"})
_ACK_STATUSES = frozenset({200, 202, 204})


def _new_id() -> str:
    return secrets.token_urlsafe(16)


class LongPollState(Enum):
    """The life of a long-poll transport."""

    OPEN = "open"
    """Carrying a WAMP session."""
    CLOSING = "closing"
    """The router closed the session; queued output is still delivered."""
    CLOSED = "closed"
    """Closed by the client or expired; forgotten by the endpoint."""


class LongPollTransport:
    """One long-poll transport: the outgoing queue of one WAMP session.

    Made by the endpoint on ``open``. The adapter calls ``send()`` for every
    transport message the router produces for the session, and ``close()`` when
    the router closes the session.
    """

    __slots__ = (
        "_held",
        "_max_bytes",
        "_max_messages",
        "_queue",
        "id",
        "last_activity",
        "queued_bytes",
        "serializer",
        "state",
    )

    id: str
    serializer: Serializer
    state: LongPollState
    last_activity: float
    queued_bytes: int

    def __init__(
        self,
        transport_id: str,
        serializer: Serializer,
        now: float,
        *,
        max_queue_bytes: int,
        max_queue_messages: int,
    ) -> None:
        self.id = transport_id
        self.serializer = serializer
        self.state = LongPollState.OPEN
        self.last_activity = now
        self.queued_bytes = 0
        self._queue: deque[bytes] = deque()
        self._held: LongPollWait | None = None
        self._max_bytes = max_queue_bytes
        self._max_messages = max_queue_messages

    def __repr__(self) -> str:
        return f"LongPollTransport({self.id!r}, {self.protocol!r}, {self.state.value})"

    @property
    def protocol(self) -> str:
        """The negotiated protocol, e.g. ``"wamp.2.json.batched"``."""
        return self.serializer.subprotocol

    @property
    def content_type(self) -> str:
        """The ``Content-Type`` of this transport's ``receive`` responses."""
        return LONGPOLL_CONTENT_TYPES[self.serializer.codec]

    @property
    def queued_messages(self) -> int:
        """How many transport messages wait to be received."""
        return len(self._queue)

    @property
    def has_outgoing(self) -> bool:
        """Whether a receive request would get data now."""
        return bool(self._queue)

    @property
    def polling(self) -> bool:
        """Whether a receive request is held for this transport (it is then not idle)."""
        return self._held is not None

    def send(self, payload: bytes) -> bool:
        """Queue one transport message for the client; False (nothing queued) on overflow.

        ``payload`` is one serializer-encoded message (with its batch framing when
        the protocol is batched), e.g. ``transport.serializer.encode(message)``.
        Raises ``LocalProtocolError`` for an empty payload or a transport that is
        not OPEN.
        """
        if self.state is not LongPollState.OPEN:
            raise LocalProtocolError(f"long-poll transport {self.id} is {self.state.value}")
        if not payload:
            raise LocalProtocolError("a transport message cannot be empty")
        if self._queue and (
            len(self._queue) >= self._max_messages
            or self.queued_bytes + len(payload) > self._max_bytes
        ):
            return False
        self._queue.append(payload)
        self.queued_bytes += len(payload)
        return True

    def close(self) -> None:
        """The router closed the session: deliver what is queued, then refuse.

        Moves an OPEN transport to CLOSING; does nothing otherwise. Wake the held
        receive request afterwards (its ``ready`` is now true).
        """
        if self.state is LongPollState.OPEN:
            self.state = LongPollState.CLOSING

    def _take(self) -> bytes:
        # AP/ap_transport_http_longpoll.md, "Receiving WAMP Messages": one message
        # per response when unbatched, everything pending when batched. Batched
        # encodings carry their framing, so their concatenation is a batch.
        if self.serializer.batched:
            data = b"".join(self._queue)
            self._queue.clear()
            self.queued_bytes = 0
        else:
            data = self._queue.popleft()
            self.queued_bytes -= len(data)
        return data

    def _drop(self) -> None:
        self.state = LongPollState.CLOSED
        self._queue.clear()
        self.queued_bytes = 0
        self._held = None


class LongPollEvent:
    """Base class of what a long-poll request tells the adapter to do."""

    __slots__ = ()


@dataclass(frozen=True, slots=True)
class LongPollOpened(LongPollEvent):
    """A client opened ``transport``: attach a WAMP router session to it."""

    transport: LongPollTransport


@dataclass(frozen=True, slots=True)
class LongPollMessage(LongPollEvent):
    """The client sent ``payload``: feed it to the transport's session as one transport message.

    It is one WAMP message, or a batch when the protocol is batched; the session
    decodes it with ``transport.serializer``.
    """

    transport: LongPollTransport
    payload: bytes


@dataclass(frozen=True, slots=True)
class LongPollClosed(LongPollEvent):
    """``transport`` is gone (the client closed it, or it expired): detach its session.

    Never reported for a transport the adapter closed itself (``transport.close()``).
    """

    transport: LongPollTransport
    reason: Literal["closed", "expired"]


@dataclass(frozen=True, slots=True)
class LongPollResponse:
    """An HTTP response to send, and what the request means for the router.

    ``headers`` are (lower-case name, value) pairs; ``event`` is None for
    requests that change no session.
    """

    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes = b""
    event: LongPollOpened | LongPollMessage | LongPollClosed | None = None


@dataclass(frozen=True, slots=True, eq=False)
class LongPollWait:
    """A receive request with nothing to return yet: hold it.

    Answer it with ``endpoint.finish_wait()`` once ``ready`` or when the poll
    timeout passes; forget it with ``endpoint.abandon_wait()`` if the client
    goes away.
    """

    transport: LongPollTransport

    @property
    def current(self) -> bool:
        """False once superseded by a newer receive request, answered, or closed."""
        return self.transport._held is self

    @property
    def ready(self) -> bool:
        """Whether ``finish_wait`` answers without waiting any longer."""
        transport = self.transport
        return (
            not self.current or transport.has_outgoing or transport.state is not LongPollState.OPEN
        )


class _HTTPError(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def _response(
    status: int,
    content_type: str | None = None,
    body: bytes = b"",
    *,
    event: LongPollOpened | LongPollMessage | LongPollClosed | None = None,
    extra: tuple[tuple[str, str], ...] = (),
) -> LongPollResponse:
    headers = [("cache-control", "no-store")]
    if content_type is not None:
        headers.append(("content-type", content_type))
    if status != 204:  # RFC 9110 section 8.6: no Content-Length in a 204
        headers.append(("content-length", str(len(body))))
    return LongPollResponse(status, (*headers, *extra), body, event)


def _text(status: int, reason: str) -> LongPollResponse:
    return _response(status, _TEXT, reason.encode("utf-8"))


def _as_str(value: str | bytes) -> str:
    return value.decode("latin-1") if isinstance(value, bytes) else value


def _open_protocols(body: bytes) -> list[str]:
    """The ``protocols`` list of an ``open`` request body; raises ``_HTTPError`` (400)."""
    try:
        document = json.loads(body.decode("utf-8"))
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        raise _HTTPError(400, f"open: the body is not JSON ({exc})") from None
    if not isinstance(document, dict):
        raise _HTTPError(400, "open: the body must be a JSON object")
    protocols = document.get("protocols")
    if (
        not isinstance(protocols, list)
        or not protocols
        or not all(isinstance(p, str) for p in protocols)
    ):
        raise _HTTPError(400, 'open: "protocols" must be a non-empty list of strings')
    return protocols


class LongPollEndpoint:
    """All long-poll transports under one base path (e.g. ``"/lp"``).

    ``protocols`` are the subprotocols offered (default: every serializer);
    ``idle_timeout`` (seconds) expires idle transports; ``max_body_size`` bounds
    request bodies; ``max_queue_bytes`` / ``max_queue_messages`` bound each
    transport's outgoing queue; ``ack_status`` is the status of ``send`` and
    ``close`` (202 per spec, 204 for AutobahnJS and Crossbar's behaviour);
    ``id_source`` makes transport ids (injected for tests). Bad settings raise
    ``LocalProtocolError``.
    """

    def __init__(
        self,
        base_path: str,
        *,
        protocols: Iterable[str] | None = None,
        max_transports: int = 1000,
        idle_timeout: float = 30.0,
        max_body_size: int = 1 << 20,
        max_queue_bytes: int = 1 << 20,
        max_queue_messages: int = 1000,
        ack_status: int = 204,
        id_source: Callable[[], str] = _new_id,
    ) -> None:
        if not base_path.startswith("/") or "?" in base_path or "#" in base_path:
            raise LocalProtocolError(f"base path must be an absolute path, got {base_path!r}")
        offered = tuple(SERIALIZERS) if protocols is None else tuple(protocols)
        unknown = [p for p in offered if p not in SERIALIZERS]
        if unknown or not offered:
            raise LocalProtocolError(f"unknown or no protocols: {unknown}")
        limits = (max_transports, idle_timeout, max_body_size, max_queue_bytes, max_queue_messages)
        if min(limits) <= 0:
            raise LocalProtocolError("limits and timeouts must be positive")
        if ack_status not in _ACK_STATUSES:
            raise LocalProtocolError(f"ack_status must be 200, 202 or 204, got {ack_status}")
        self.base_path = base_path.rstrip("/")
        """The base path without its trailing slash (``""`` for the root)."""
        self.protocols = offered
        self.max_transports = max_transports
        self.idle_timeout = idle_timeout
        self.max_body_size = max_body_size
        self.max_queue_bytes = max_queue_bytes
        self.max_queue_messages = max_queue_messages
        self.ack_status = ack_status
        self._id_source = id_source
        self._transports: dict[str, LongPollTransport] = {}

    @property
    def transports(self) -> Mapping[str, LongPollTransport]:
        """The live transports (OPEN or CLOSING) by id; a read-only view."""
        return MappingProxyType(self._transports)

    def check_body_size(self, length: int) -> LongPollResponse | None:
        """The 413 response if a body of ``length`` bytes is too large, else None.

        Call it with the ``Content-Length`` before reading a body (and with the
        count so far while reading a chunked one).
        """
        if length > self.max_body_size:
            return _text(413, f"request body over {self.max_body_size} bytes")
        return None

    def handle(
        self, method: str | bytes, path: str | bytes, body: bytes, now: float
    ) -> LongPollResponse | LongPollWait:
        """Answer one HTTP request; ``path`` is the request target, query string included."""
        route = self._route(_as_str(path))
        if route is None:
            return _text(404, "no such long-poll resource")
        method = _as_str(method)
        if method == "OPTIONS":
            return _response(
                204,
                extra=(
                    ("allow", _ALLOW),
                    ("access-control-allow-methods", _ALLOW),
                    ("access-control-allow-headers", "content-type"),
                ),
            )
        if method != "POST":
            return _response(405, _TEXT, b"only POST is allowed here", extra=(("allow", _ALLOW),))
        too_large = self.check_body_size(len(body))
        if too_large is not None:
            return too_large
        operation, transport_id = route
        try:
            if operation == "open":
                return self._open(body, now)
            transport = self._transports.get(transport_id)
            if transport is None:
                raise _HTTPError(404, f"no long-poll transport {transport_id!r}")
            transport.last_activity = now
            if operation == "send":
                return self._send(transport, body)
            if operation == "receive":
                return self._receive(transport)
            return self._close(transport)
        except _HTTPError as exc:
            return _text(exc.status, exc.reason)

    def finish_wait(self, wait: LongPollWait, now: float) -> LongPollResponse:
        """Answer a held receive request: data, 404 if the router closed the transport,
        or 204 (poll again) when there is nothing -- the answer on poll timeout, and
        for a request that was superseded or whose transport the client closed.
        """
        if not wait.current:
            return _response(204)
        transport = wait.transport
        transport._held = None
        transport.last_activity = now
        try:
            return self._answer(transport)
        except _HTTPError as exc:
            return _text(exc.status, exc.reason)

    def abandon_wait(self, wait: LongPollWait, now: float) -> None:
        """The client of a held receive request went away: stop holding it, keep the data."""
        if wait.current:
            wait.transport._held = None
            wait.transport.last_activity = now

    def expire(self, now: float) -> list[LongPollClosed]:
        """Forget transports idle for ``idle_timeout``; return those whose sessions to detach."""
        events = []
        for transport in [t for t in self._transports.values() if self._expired(t, now)]:
            del self._transports[transport.id]
            if transport.state is LongPollState.OPEN:
                events.append(LongPollClosed(transport, "expired"))
            transport._drop()
        return events

    def next_deadline(self) -> float | None:
        """When the next transport expires (call ``expire`` then), or None.

        Both this and ``expire`` scan every transport: O(n), fine for the
        thousands of transports one endpoint is meant to hold.
        """
        return min(
            (
                t.last_activity + self.idle_timeout
                for t in self._transports.values()
                if not t.polling
            ),
            default=None,
        )

    # -- internals ---------------------------------------------------------------

    def _expired(self, transport: LongPollTransport, now: float) -> bool:
        return not transport.polling and now >= transport.last_activity + self.idle_timeout

    def _route(self, path: str) -> tuple[str, str] | None:
        """(operation, transport id) for a path under the base, else None."""
        path = path.partition("?")[0]  # the "x" cache buster, or anything else
        prefix = self.base_path + "/"
        if not path.startswith(prefix):
            return None
        parts = path[len(prefix) :].split("/")
        if parts == ["open"]:
            return ("open", "")
        if len(parts) == 2 and parts[1] in _OPERATIONS:
            return (parts[1], parts[0])
        return None

    def _open(self, body: bytes, now: float) -> LongPollResponse:
        if len(self._transports) >= self.max_transports:
            raise _HTTPError(503, "too many long-poll transports")
        requested = _open_protocols(body)
        chosen = next((p for p in requested if p in self.protocols), None)
        if chosen is None:
            raise _HTTPError(400, f"open: no common protocol; offered: {', '.join(self.protocols)}")
        transport_id = self._id_source()
        if not _ID.fullmatch(transport_id) or transport_id in self._transports:
            raise LocalProtocolError(f"id_source gave an unusable transport id {transport_id!r}")
        transport = LongPollTransport(
            transport_id,
            SERIALIZERS[chosen],
            now,
            max_queue_bytes=self.max_queue_bytes,
            max_queue_messages=self.max_queue_messages,
        )
        self._transports[transport_id] = transport
        document = {"protocol": chosen, "transport": transport_id}
        return _response(
            200,
            "application/json",
            json.dumps(document).encode("utf-8"),
            event=LongPollOpened(transport),
        )

    def _send(self, transport: LongPollTransport, body: bytes) -> LongPollResponse:
        if transport.state is not LongPollState.OPEN:
            raise _HTTPError(404, f"long-poll transport {transport.id!r} is closed")
        if not body:
            raise _HTTPError(400, "send: the body must hold a WAMP message")
        return _response(self.ack_status, event=LongPollMessage(transport, bytes(body)))

    def _receive(self, transport: LongPollTransport) -> LongPollResponse | LongPollWait:
        transport._held = None  # a newer receive supersedes a held one
        if transport.has_outgoing or transport.state is not LongPollState.OPEN:
            return self._answer(transport)
        wait = transport._held = LongPollWait(transport)
        return wait

    def _answer(self, transport: LongPollTransport) -> LongPollResponse:
        if transport.has_outgoing:
            return _response(200, transport.content_type, transport._take())
        if transport.state is LongPollState.CLOSING:
            raise _HTTPError(404, f"long-poll transport {transport.id!r} is closed")
        return _response(204)

    def _close(self, transport: LongPollTransport) -> LongPollResponse:
        del self._transports[transport.id]
        event = (
            LongPollClosed(transport, "closed") if transport.state is LongPollState.OPEN else None
        )
        transport._drop()
        return _response(self.ack_status, event=event)
