"""A WAMP client session for trio, built on ``wamp_core.ClientSession``.

``connect(url, realm)`` is an async context manager: it owns a nursery in
which one connection at a time runs (with automatic reconnection when asked
for), and yields a ``Session`` with the verbs ``call``, ``register``,
``subscribe`` and ``publish``. ``open_session(transport, realm)`` does the same
over a transport that is already connected.

Each connection has exactly one reader task (transport -> core -> events) and
one writer task (``core.data_to_send()`` -> transport). Verbs only enqueue into
the core and wake the writer, so cleanup that must go out on the wire (CANCEL
for an abandoned call, GOODBYE, ERROR for an interrupted invocation) is a
synchronous enqueue that works inside a cancelled scope. The writer is shielded
and stopped explicitly, with a bounded flush, when the connection ends.

Incoming INVOCATIONs run one task each, inside the connection's nursery and in
their own cancel scope, which an INTERRUPT cancels (and a forwarded call
timeout bounds). The further chunks of a progressive call invocation go to the
task already serving it, through an unbounded channel (``Chunks``), never to a
new task. EVENTs go into one bounded channel per subscription without ever
blocking the reader: when the channel is full, the event is dropped and counted
(``Subscription.dropped``).

Times are in seconds throughout the Python API; the wire's milliseconds
(``CALL.Options.timeout``, ``INVOCATION.Details.timeout``) are converted here.
"""

from __future__ import annotations

import inspect
import logging
import math
import random
import ssl
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager, suppress
from dataclasses import dataclass, field
from typing import Any, Literal

import trio

import wamp_core
from wamp_core import (
    ChallengeReceived,
    ClientState,
    CloseReason,
    ErrorReceived,
    ErrorURI,
    EventReceived,
    InterruptReceived,
    InvocationReceived,
    PublishSucceeded,
    RegisterSucceeded,
    RegistrationRevoked,
    ResultReceived,
    Serializer,
    SessionAborted,
    SessionClosed,
    SessionEvent,
    SessionJoined,
    SubscribeSucceeded,
    SubscriptionRevoked,
    UnregisterSucceeded,
    UnsubscribeSucceeded,
)

from ._auth import ClientAuth
from ._connect import open_transport
from ._transport import MessageTransport, TransportClosed

__all__ = [
    "FATAL_ABORT_REASONS",
    "JOIN_TIMEOUT",
    "RUNTIME_ERROR",
    "ApplicationError",
    "CallResult",
    "CancelMode",
    "Chunks",
    "Event",
    "InvocationDetails",
    "JoinError",
    "ProgressiveCall",
    "ReconnectPolicy",
    "Registration",
    "Session",
    "SessionEnded",
    "StreamingCall",
    "Subscription",
    "TransportFactory",
    "TransportLost",
    "WampError",
    "connect",
    "open_session",
]

log = logging.getLogger("wamp_trio.client")

RUNTIME_ERROR = "wamp.error.runtime_error"
"""The error URI sent for a handler that raised something other than ApplicationError.

Nothing about the exception (type, message, traceback) goes on the wire; it is
logged on the callee's side (logger ``wamp_trio.client``).
"""

FATAL_ABORT_REASONS: frozenset[str] = frozenset(
    {
        ErrorURI.AUTHENTICATION_FAILED,
        ErrorURI.AUTHENTICATION_DENIED,
        ErrorURI.AUTHENTICATION_REQUIRED,
        ErrorURI.NO_SUCH_PRINCIPAL,
        ErrorURI.NO_MATCHING_AUTH_METHOD,
        ErrorURI.NOT_AUTHORIZED,
        ErrorURI.AUTHORIZATION_FAILED,
        ErrorURI.AUTHORIZATION_DENIED,
        ErrorURI.AUTHORIZATION_REQUIRED,
        ErrorURI.NO_SUCH_REALM,
        ErrorURI.NO_SUCH_ROLE,
    }
)
"""ABORT reasons after which automatic reconnection gives up: trying again
with the same credentials and realm would be refused again."""

JOIN_TIMEOUT = ErrorURI.TIMEOUT
"""``JoinError.reason`` when the session was not joined within ``join_timeout``."""

CancelMode = Literal["skip", "kill", "killnowait"]
"""CANCEL modes (AP/ap_rpc_call_canceling.md)."""

TransportFactory = Callable[[], AbstractAsyncContextManager[MessageTransport]]
"""A zero-argument callable returning an async context manager that yields a
connected transport; ``connect`` calls it once per connection attempt."""

_TRANSPORT_ERRORS = (TransportClosed, OSError, trio.BrokenResourceError, trio.ClosedResourceError)

# -- exceptions ----------------------------------------------------------------------


DEFAULT_ROLES: dict[str, dict[str, Any]] = wamp_core.CLIENT_ROLES
"""The roles a ``Session`` announces by default: the core's ``CLIENT_ROLES``
(every Advanced Profile feature the core handles, progressive call invocations
included: ``call_streaming`` on the caller's side, ``register(...,
streaming=True)`` on the callee's)."""


class WampError(Exception):
    """Base class of the exceptions this module raises."""


class ApplicationError(WampError):
    """An ERROR from the peer, or one a handler raises to answer with an error.

    ``error`` is the error URI; ``args`` and ``kwargs`` the error's payload
    (``Args`` and ``KwArgs``); ``details`` is ``ERROR.Details`` for a received
    error. Raised by ``call``, ``register``, ``subscribe``, ``unsubscribe``,
    ``unregister`` and acknowledged ``publish``; raise it in a procedure
    handler to answer the call with this error.
    """

    def __init__(self, error: str, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args)
        self.error = error
        self.kwargs: dict[str, Any] = kwargs
        self.details: dict[str, Any] = {}

    def __str__(self) -> str:
        parts = [repr(a) for a in self.args]
        parts += [f"{k}={v!r}" for k, v in self.kwargs.items()]
        return f"{self.error}({', '.join(parts)})" if parts else self.error

    def __repr__(self) -> str:
        parts = [repr(self.error), *(repr(a) for a in self.args)]
        parts += [f"{k}={v!r}" for k, v in self.kwargs.items()]
        return f"{type(self).__name__}({', '.join(parts)})"


def _application_error(event: ErrorReceived) -> ApplicationError:
    exc = ApplicationError(event.error, *(event.args or ()), **(event.kwargs or {}))
    exc.details = event.details
    return exc


def _timeout_error(timeout: float) -> ApplicationError:
    """The error of a call this client timed itself (for a router without
    ``call_timeout``)."""
    return ApplicationError(ErrorURI.TIMEOUT, f"the call timed out after {timeout:g} s")


class JoinError(WampError):
    """The router refused the session: ABORT in reply to HELLO or AUTHENTICATE;
    or the session was not joined within ``join_timeout``.

    ``reason`` is the ABORT reason URI (``wamp.error.no_such_realm``,
    ``wamp.error.authentication_failed``, ...), ``message`` the router's text.
    A join that timed out has reason ``wamp.error.timeout`` (``JOIN_TIMEOUT``)
    and a message saying which step did not finish.
    """

    def __init__(
        self, reason: str, message: str | None = None, details: dict[str, Any] | None = None
    ) -> None:
        super().__init__(reason, message)
        self.reason = reason
        self.message = message
        self.details: dict[str, Any] = details or {}

    def __str__(self) -> str:
        return f"{self.reason}: {self.message}" if self.message else self.reason


class SessionEnded(WampError):
    """The session ended (or was not there) while a request needed it.

    ``reason`` is the router's GOODBYE or ABORT reason, or the reason we left
    with; None when the transport went away (``TransportLost``).
    """

    def __init__(self, reason: str | None, message: str | None = None) -> None:
        super().__init__(reason, message)
        self.reason = reason
        self.message = message

    def __str__(self) -> str:
        text = self.message or "the session ended"
        return f"{self.reason}: {text}" if self.reason else text


class TransportLost(SessionEnded):
    """The transport closed or failed under the session."""

    def __init__(self, message: str | None = None) -> None:
        super().__init__(None, message or "the transport was lost")


# -- values ----------------------------------------------------------------------------


class CallResult:
    """A result with several values or keyword values: ``CallResult(*args, **kwargs)``.

    ``Session.call`` returns one when the result is not a single positional
    value; a procedure handler returns one to answer with exactly these
    ``Args`` and ``KwArgs``.
    """

    __slots__ = ("args", "kwargs")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.args: tuple[Any, ...] = args
        self.kwargs: dict[str, Any] = kwargs

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CallResult):
            return NotImplemented
        return self.args == other.args and self.kwargs == other.kwargs

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        parts = [repr(a) for a in self.args]
        parts += [f"{k}={v!r}" for k, v in self.kwargs.items()]
        return f"CallResult({', '.join(parts)})"


def _unpack(args: Sequence[Any] | None, kwargs: Mapping[str, Any] | None) -> Any:
    """RESULT payload -> return value: one positional value alone is returned as
    is, nothing at all is None, anything else a CallResult."""
    if not kwargs:
        if not args:
            return None
        if len(args) == 1:
            return args[0]
    return CallResult(*(args or ()), **(kwargs or {}))


def _pack(value: Any) -> tuple[list[Any] | None, dict[str, Any] | None]:
    """A handler's return value -> YIELD payload (the inverse of ``_unpack``)."""
    if value is None:
        return None, None
    if isinstance(value, CallResult):
        return list(value.args), dict(value.kwargs)
    return [value], None


def _payload(
    args: tuple[Any, ...], kwargs: dict[str, Any]
) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """A lone ``CallResult`` argument stands for exactly its args and kwargs (the
    way to send keyword arguments whose names the verbs reserve, like ``timeout``)."""
    if len(args) == 1 and not kwargs and isinstance(args[0], CallResult):
        return args[0].args, dict(args[0].kwargs)
    return args, kwargs


def _milliseconds(timeout: float | None) -> int | None:
    """A timeout in seconds as the wire's whole milliseconds (rounded up); None
    (or infinity) for no timeout."""
    if timeout is None or timeout == math.inf:
        return None
    if not timeout > 0:  # also NaN
        raise ValueError(f"timeout must be a positive number of seconds, not {timeout!r}")
    return max(1, math.ceil(round(timeout * 1000, 6)))


def _id_list(value: Any, kind: type) -> list[Any] | None:
    """A black- or whitelist argument (one value or an iterable of them) as a list."""
    if value is None:
        return None
    if isinstance(value, kind) or not isinstance(value, Iterable):
        return [value]
    return list(value)


def _int_or_none(value: object) -> int | None:
    return value if type(value) is int else None


def _str_or_none(value: object) -> str | None:
    return value if isinstance(value, str) else None


@dataclass(frozen=True, slots=True)
class Event:
    """One event received on a subscription (or read from the event history).

    ``topic`` is the concrete topic (for a pattern subscription, the one the
    event was published to); ``publisher`` is the publisher's session ID when
    it disclosed itself (``publisher_authid`` and ``publisher_authrole`` then
    tell its identity); ``trustlevel`` is the trust level the router gave the
    publisher, if any; ``retained`` tells a retained event delivered on
    subscribing (``get_retained``); ``timestamp`` is the RFC 3339 time of an
    event from the event history (None for live events); ``details`` is the
    raw ``EVENT.Details``.
    """

    topic: str
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)
    publication_id: int = 0
    publisher: int | None = None
    details: dict[str, Any] = field(default_factory=dict)
    timestamp: str | None = None

    @property
    def publisher_authid(self) -> str | None:
        return _str_or_none(self.details.get("publisher_authid"))

    @property
    def publisher_authrole(self) -> str | None:
        return _str_or_none(self.details.get("publisher_authrole"))

    @property
    def trustlevel(self) -> int | None:
        return _int_or_none(self.details.get("trustlevel"))

    @property
    def retained(self) -> bool:
        return self.details.get("retained") is True


def _make_event(
    topic: str,
    publication: int,
    args: Sequence[Any] | None,
    kwargs: Mapping[str, Any] | None,
    details: dict[str, Any],
    *,
    timestamp: str | None = None,
) -> Event:
    return Event(
        _str_or_none(details.get("topic")) or topic,
        tuple(args or ()),
        dict(kwargs or {}),
        publication,
        _int_or_none(details.get("publisher")),
        details,
        timestamp,
    )


@dataclass(frozen=True, slots=True)
class ReconnectPolicy:
    """When and how often ``connect`` reconnects after losing its session.

    After the transport fails or the router ends the session (GOODBYE, ABORT,
    protocol violation), the session reconnects, joins again, re-registers and
    re-subscribes. The n-th consecutive attempt waits ``min(max_delay,
    initial_delay * multiplier ** (n - 1))``, varied by +/- ``jitter`` (a
    fraction). It gives up after ``max_attempts`` consecutive failed attempts
    (None: never), and at once when the router refuses the session with an
    ABORT reason in ``fatal_reasons`` (authentication and authorization
    failures, unknown realm or role). ``retry_initial`` applies the policy to
    the first connection too (otherwise ``connect`` raises at once).
    """

    max_attempts: int | None = None
    initial_delay: float = 0.5
    max_delay: float = 30.0
    multiplier: float = 2.0
    jitter: float = 0.1
    retry_initial: bool = False
    fatal_reasons: frozenset[str] = FATAL_ABORT_REASONS

    def delay(self, attempt: int, rng: random.Random) -> float:
        """The wait before attempt number ``attempt`` (1-based)."""
        base = min(self.max_delay, self.initial_delay * self.multiplier ** (attempt - 1))
        return max(0.0, base * (1.0 + rng.uniform(-self.jitter, self.jitter)))


def _wants_details(fn: Callable[..., Any]) -> bool:
    """Tell whether ``fn`` declares a keyword-only parameter named ``details``."""
    try:
        parameter = inspect.signature(fn).parameters.get("details")
    except (TypeError, ValueError):
        return False
    return parameter is not None and parameter.kind is inspect.Parameter.KEYWORD_ONLY


async def _maybe_await(value: Any) -> Any:
    if inspect.isawaitable(value):
        return await value
    return value


# -- how a connection ended ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _End:
    """Why a connection ended; makes a fresh exception for every waiter."""

    kind: Literal[
        "left",
        "closed",
        "aborted",
        "refused",
        "timeout",
        "lost",
        "unreachable",
        "violation",
        "error",
    ]
    reason: str | None = None
    message: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    cause: BaseException | None = None

    def exception(self) -> BaseException:
        if self.kind == "error":
            assert self.cause is not None
            return self.cause
        exc: BaseException
        if self.kind in ("refused", "timeout"):
            assert self.reason is not None
            exc = JoinError(self.reason, self.message, self.details)
        elif self.kind in ("lost", "unreachable"):
            exc = TransportLost(self.message)
        else:
            exc = SessionEnded(self.reason, self.message)
        if self.cause is not None:
            exc.__cause__ = self.cause
        return exc

    def is_fatal(self, policy: ReconnectPolicy) -> bool:
        if self.kind == "error":
            return True
        return self.kind in ("refused", "aborted") and self.reason in policy.fatal_reasons


# -- requests -----------------------------------------------------------------------


class _Request:
    """A request waiting for its answer(s): a tiny single-consumer queue."""

    __slots__ = ("abandoned", "changed", "error", "items", "target")

    def __init__(self, target: Any = None) -> None:
        self.items: deque[SessionEvent] = deque()
        self.error: BaseException | None = None
        self.changed = trio.Event()
        self.abandoned = False
        self.target = target

    def push(self, event: SessionEvent) -> None:
        self.items.append(event)
        self.changed.set()

    def fail(self, exc: BaseException) -> None:
        if self.error is None:
            self.error = exc
            self.changed.set()

    async def next(self) -> SessionEvent:
        """The next answer; ERROR raises ApplicationError, a lost session its exception."""
        while True:
            if self.items:
                event = self.items.popleft()
                if isinstance(event, ErrorReceived):
                    raise _application_error(event)
                return event
            if self.error is not None:
                raise self.error
            await self.changed.wait()
            self.changed = trio.Event()


class _Flush:
    """Set once the writer has handed a batch to the transport (``ok``) or died."""

    __slots__ = ("done", "ok")

    def __init__(self) -> None:
        self.done = trio.Event()
        self.ok = False


# -- registrations and subscriptions -------------------------------------------------


class Registration:
    """A procedure registered by ``Session.register``.

    It survives reconnection (it is registered again on the new session, and
    ``registration_id`` changes). ``active`` turns False after ``unregister()``,
    a revocation by the router (``revoked`` holds the reason: the revocation's
    reason URI, or ``"revoked"`` when the router gave none) or the end of the
    session. ``async with registration:`` unregisters on exit. ``streaming``
    tells whether the handler takes its arguments as ``Chunks``.
    """

    def __init__(
        self,
        session: Session,
        procedure: str,
        handler: Callable[..., Any],
        options: dict[str, Any],
        streaming: bool = False,
    ) -> None:
        self.session = session
        self.procedure = procedure
        self.handler = handler
        self.options = options
        self.streaming = streaming
        self.registration_id: int | None = None
        self.active = True
        self.revoked: str | None = None
        self._details = _wants_details(handler)
        self._conn: _Connection | None = None

    def __repr__(self) -> str:
        return f"<Registration {self.procedure!r} id={self.registration_id} active={self.active}>"

    async def unregister(self) -> None:
        """Unregister (UNREGISTER, waiting for UNREGISTERED). Idempotent.

        Invocations already running go on; ones arriving until the router
        confirms are still served.
        """
        if not self.active:
            return
        self._deactivate()
        conn = self._conn
        if conn is None or not conn.ready or self.registration_id is None:
            return
        if conn.registrations.get(self.registration_id) is not self:
            return
        request = conn.core.unregister(self.registration_id)
        await conn.wait_reply(request, _Request())

    def _unregister_nowait(self) -> None:
        if not self.active:
            return
        self._deactivate()
        conn = self._conn
        rid = self.registration_id
        if (
            conn is not None
            and conn.ready
            and rid is not None
            and conn.registrations.get(rid) is self
        ):
            conn.core.unregister(rid)
            conn.kick()

    def _deactivate(self, revoked: str | None = None) -> None:
        self.active = False
        self.revoked = revoked
        self.session._registrations.pop(self, None)

    async def __aenter__(self) -> Registration:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self._unregister_nowait()


class Subscription:
    """A subscription made by ``Session.subscribe``.

    Without a handler, iterate it: ``async for event in subscription:`` gives
    ``Event`` objects from a bounded channel (``queue_size``); iteration ends
    after ``unsubscribe()``, a revocation or ``leave()``, and raises the
    session's exception when the session was lost for good. With a handler,
    the session calls it for each event, in order, from a task of its own.
    Either way the reader never waits for you: an event that finds the
    channel full is dropped and counted in ``dropped``.

    It survives reconnection (``subscription_id`` changes). ``async with
    subscription:`` unsubscribes on exit.
    """

    def __init__(
        self,
        session: Session,
        topic: str,
        options: dict[str, Any],
        handler: Callable[..., Any] | None,
        queue_size: float,
    ) -> None:
        self.session = session
        self.topic = topic
        self.options = options
        self.handler = handler
        self.subscription_id: int | None = None
        self.active = True
        self.revoked: str | None = None
        self.dropped = 0
        self._details = handler is not None and _wants_details(handler)
        self._send, self._receive = trio.open_memory_channel[Event](queue_size)
        self._end: _End | None = None
        self._conn: _Connection | None = None

    def __repr__(self) -> str:
        return f"<Subscription {self.topic!r} id={self.subscription_id} active={self.active}>"

    async def unsubscribe(self) -> None:
        """Unsubscribe (UNSUBSCRIBE, waiting for UNSUBSCRIBED). Idempotent.

        Events already queued are still delivered; iteration then ends.
        """
        if not self.active:
            return
        request = self._detach()
        if request is not None:
            conn = self._conn
            assert conn is not None
            await conn.wait_reply(request, _Request())

    def _detach(self) -> int | None:
        """Stop locally; send UNSUBSCRIBE if no other local subscription shares the ID."""
        self._close(None)
        conn = self._conn
        sid = self.subscription_id
        if conn is None or not conn.ready or sid is None:
            return None
        subs = conn.subscriptions.get(sid)
        if subs is None or self not in subs:
            return None
        subs.remove(self)
        if subs:
            return None
        del conn.subscriptions[sid]
        request = conn.core.unsubscribe(sid)
        conn.kick()
        return request

    def _close(self, end: _End | None, revoked: str | None = None) -> None:
        if self.active:
            self.active = False
            self.revoked = revoked
            self._end = end
            self.session._subscriptions.pop(self, None)
            self._send.close()

    def _deliver(self, event: EventReceived) -> None:
        item = _make_event(
            self.topic, event.publication_id, event.args, event.kwargs, event.details
        )
        try:
            self._send.send_nowait(item)
        except trio.WouldBlock:
            self.dropped += 1
            if self.dropped == 1:
                log.warning("subscription %r: queue full, events are being dropped", self.topic)
        except (trio.ClosedResourceError, trio.BrokenResourceError):
            pass

    def __aiter__(self) -> Subscription:
        if self.handler is not None:
            raise TypeError("this subscription delivers its events to its handler")
        return self

    async def __anext__(self) -> Event:
        try:
            return await self._receive.receive()
        except trio.EndOfChannel:
            if self._end is not None:
                raise self._end.exception() from None
            raise StopAsyncIteration from None

    async def _consume(self) -> None:
        """Run the handler for each event, in order (a task in the session's nursery)."""
        assert self.handler is not None
        try:
            async for event in self._receive:
                if self._details:
                    result = self.handler(*event.args, **event.kwargs, details=event)
                else:
                    result = self.handler(*event.args, **event.kwargs)
                await _maybe_await(result)
        except Exception as exc:
            self.session._crash(exc)

    async def __aenter__(self) -> Subscription:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self.active:
            self._detach()


class InvocationDetails:
    """What a procedure handler learns about the call when it declares a
    keyword-only ``details`` parameter.

    ``procedure`` is the URI called (the concrete one for a pattern
    registration); ``caller``, ``caller_authid`` and ``caller_authrole``
    identify the caller when it was disclosed (``disclose_me`` on the call,
    ``disclose_caller`` on the registration); ``trustlevel`` is the trust
    level the router gave the caller, if any; ``timeout`` is the caller's
    timeout in seconds when the router forwarded it (``forward_timeout``),
    which this client enforces; ``receive_progress`` tells whether the caller
    accepts progressive results, sent with ``await details.progress(...)``;
    ``details`` is the raw ``INVOCATION.Details`` (of the first chunk, for a
    progressive call invocation).
    """

    __slots__ = (
        "_conn",
        "caller",
        "caller_authid",
        "caller_authrole",
        "details",
        "procedure",
        "receive_progress",
        "registration",
        "request_id",
        "timeout",
        "trustlevel",
    )

    def __init__(
        self, conn: _Connection, registration: Registration, invocation: InvocationReceived
    ) -> None:
        details = invocation.details
        self._conn = conn
        self.registration = registration
        self.request_id = invocation.request_id
        self.details = details
        self.procedure: str = invocation.procedure or registration.procedure
        self.caller = _int_or_none(details.get("caller"))
        self.caller_authid = _str_or_none(details.get("caller_authid"))
        self.caller_authrole = _str_or_none(details.get("caller_authrole"))
        self.trustlevel = _int_or_none(details.get("trustlevel"))
        self.timeout = _forwarded_timeout(details)
        self.receive_progress = details.get("receive_progress") is True

    async def progress(self, *args: Any, **kwargs: Any) -> None:
        """Send a progressive result (YIELD with ``progress``); returns once written.

        Does nothing when the caller did not ask for progressive results.
        """
        conn = self._conn
        if not self.receive_progress or not conn.can_answer(self.request_id):
            return
        args, kwargs = _payload(args, kwargs)
        conn.check_encodable(args, kwargs)
        conn.core.yield_result(self.request_id, args, kwargs, progress=True)
        await conn.flushed()


def _forwarded_timeout(details: Mapping[str, Any]) -> float | None:
    """``INVOCATION.Details.timeout`` (milliseconds) in seconds, if there is one."""
    timeout = details.get("timeout")
    if type(timeout) is int and timeout > 0:
        return timeout / 1000
    return None


class Chunks:
    """The arguments of a call to a streaming procedure (``register(...,
    streaming=True)``), chunk by chunk: ``async for chunk in chunks:``.

    Each chunk is unpacked like a call's result: one positional value alone is
    that value, nothing at all is None, anything else a ``CallResult``. A
    plain (not progressive) call gives exactly one chunk. Iteration ends after
    the caller's last chunk. Chunks that arrive faster than the handler takes
    them wait in memory (WAMP has no flow control).
    """

    def __init__(self, receive: trio.MemoryReceiveChannel[Any]) -> None:
        self._receive = receive
        self.count = 0
        """How many chunks were taken so far."""

    def __aiter__(self) -> Chunks:
        return self

    async def __anext__(self) -> Any:
        try:
            chunk = await self._receive.receive()
        except (trio.EndOfChannel, trio.ClosedResourceError):
            raise StopAsyncIteration from None
        self.count += 1
        return chunk


class _Invocation:
    """An invocation being served: its cancel scope, and its chunk channel when the
    handler is streaming."""

    __slots__ = ("chunks", "interrupted", "receive", "scope", "timeout")

    def __init__(self, streaming: bool, timeout: float | None) -> None:
        self.scope = trio.CancelScope()
        self.interrupted = False
        self.timeout = timeout
        if timeout is not None:
            # AP/ap_rpc_call_timeout.md: with the timeout forwarded, the callee
            # times the call and answers wamp.error.timeout.
            self.scope.deadline = trio.current_time() + timeout
        self.chunks: trio.MemorySendChannel[Any] | None = None
        self.receive: trio.MemoryReceiveChannel[Any] | None = None
        if streaming:
            self.chunks, self.receive = trio.open_memory_channel[Any](math.inf)

    def chunk(self, invocation: InvocationReceived) -> None:
        """Hand the handler one chunk; the last one (no ``progress``) ends the stream."""
        if self.chunks is None:  # pragma: no cover - the core passes repeats of streams only
            return
        with suppress(trio.BrokenResourceError, trio.ClosedResourceError):
            self.chunks.send_nowait(_unpack(invocation.args, invocation.kwargs))
        if invocation.details.get("progress") is not True:
            self.chunks.close()


# -- one connection -------------------------------------------------------------------


class _Connection:
    """One transport and the WAMP session it carries: a reader, a writer, invocations."""

    def __init__(
        self,
        session: Session,
        transport: MessageTransport,
        *,
        close: bool,
        join_deadline: float = math.inf,
    ) -> None:
        self.session = session
        self.transport = transport
        self.join_deadline = join_deadline
        self.core = wamp_core.ClientSession(transport.serializer, roles=session._roles)
        self.requests: dict[int, _Request] = {}
        self.registrations: dict[int, Registration] = {}
        self.subscriptions: dict[int, list[Subscription]] = {}
        self.invocations: dict[int, _Invocation] = {}
        self.joined: SessionJoined | None = None
        self.ready = False
        self.was_ready = False
        self.end: _End | None = None
        self.closed = trio.Event()
        self._close_transport = close
        self._joined = trio.Event()
        self._kick = trio.Event()
        self._flush = _Flush()
        self._writer_stop = False
        self._writer_done = trio.Event()
        self._writer_scope = trio.CancelScope(shield=True)
        self._tasks: trio.Nursery | None = None
        self._heard = False

    # -- running --------------------------------------------------------------------

    async def run(self) -> None:
        """Join, restore, serve until the connection ends; then flush and close."""
        timeout = self.session._close_timeout
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._writer)
                try:
                    async with trio.open_nursery() as tasks:
                        self._tasks = tasks
                        tasks.start_soon(self._reader)
                        self._start_keepalive(tasks)
                        await self._establish()
                finally:
                    self._finish(_End("lost", message="the connection was closed"))
                    with trio.CancelScope(shield=True):
                        with trio.move_on_after(timeout):
                            self._writer_stop = True
                            self.kick()
                            await self._writer_done.wait()
                        self._writer_scope.cancel()
        finally:
            if self._close_transport:
                with trio.move_on_after(timeout, shield=True):
                    with suppress(*_TRANSPORT_ERRORS):
                        await self.transport.aclose()

    async def _establish(self) -> None:
        session = self.session
        try:
            if session._auth is not None:
                # A fresh HELLO each attempt (new nonces on reconnect).
                self.core.join(session.realm, **session._auth.hello(session._authid))
            else:
                self.core.join(
                    session.realm,
                    authmethods=session._authmethods,
                    authid=session._authid,
                    authextra=session._authextra,
                )
        except wamp_core.LocalProtocolError as exc:
            self._finish(_End("error", cause=exc))
            return
        self.kick()
        with trio.move_on_at(self.join_deadline):
            await self._joined.wait()
        if self.end is None and self.joined is None:
            self._join_timed_out()
            return
        try:
            if self.end is None:
                await self._restore()
        except SessionEnded:
            pass  # the connection ended while restoring: self.end says why
        if self.end is not None:
            return
        self.ready = self.was_ready = True
        session._connection_ready(self)
        if session._on_join is not None:
            try:
                await _maybe_await(session._on_join(session))
            except Exception as exc:
                self._finish(_End("error", cause=exc))

    async def _restore(self) -> None:
        """Register and subscribe again what the session held before a reconnect."""
        session = self.session
        pending: list[tuple[Registration | Subscription, _Request]] = []
        for registration in list(session._registrations):
            request = _Request(registration)
            self.requests[self.core.register(registration.procedure, registration.options)] = (
                request
            )
            pending.append((registration, request))
        for subscription in list(session._subscriptions):
            request = _Request(subscription)
            self.requests[self.core.subscribe(subscription.topic, subscription.options)] = request
            pending.append((subscription, request))
        self.kick()
        for target, request in pending:
            try:
                await request.next()
            except ApplicationError as exc:
                log.warning("could not restore %r after reconnecting: %s", target, exc)
                if isinstance(target, Registration):
                    target._deactivate()
                else:
                    target._close(_End("error", cause=exc))

    def _join_timed_out(self) -> None:
        """No WELCOME by ``join_deadline``: ABORT (a polite router may still read
        it) and end the connection with a ``JoinError``."""
        timeout = self.session._join_timeout
        if self.core.state in (ClientState.ESTABLISHING, ClientState.AUTHENTICATING):
            self.core.abort(JOIN_TIMEOUT, "the client gave up waiting for WELCOME")
            self.kick()
        message = f"the router did not welcome the session within {timeout:g} s (join_timeout)"
        log.warning("%s", message)
        self._finish(_End("timeout", JOIN_TIMEOUT, message))

    # -- keepalive ------------------------------------------------------------------

    def _start_keepalive(self, tasks: trio.Nursery) -> None:
        """Start ``_keepalive`` when asked for and the transport can ping and
        tells whether it received anything (WebSocket, RawSocket)."""
        interval = self.session._keepalive_interval
        ping = getattr(self.transport, "send_ping", None)
        if interval is None or ping is None or not hasattr(self.transport, "idle_ticks"):
            return
        tasks.start_soon(self._keepalive, ping, interval, self.session._keepalive_timeout)

    def _listen(self) -> None:
        """Start a silence: ``_heard`` turns True when anything arrives after this."""
        self._heard = False
        self.transport.idle_ticks = 1  # type: ignore[attr-defined]  # reset on every read

    def _heard_anything(self) -> bool:
        return self._heard or getattr(self.transport, "idle_ticks", 1) == 0

    async def _keepalive(
        self, ping: Callable[[bytes], Any], interval: float, timeout: float
    ) -> None:
        """Ping the router once it has been silent for ``interval`` seconds
        (looking every half interval: the ping goes out 1 to 1.5 intervals
        after the last input); end the connection as lost when nothing (a PONG
        included) arrives within ``timeout`` seconds of the ping."""
        step = interval / 2
        silent = 0
        while self.end is None:
            self._listen()
            await trio.sleep(step)
            silent = 0 if self._heard_anything() else silent + 1
            if silent < 2:
                continue
            silent = 0
            self._listen()
            deadline = trio.current_time() + timeout
            try:
                with trio.move_on_at(deadline):
                    await ping(b"")
            except (*_TRANSPORT_ERRORS, ValueError) as exc:
                self._finish(_End("lost", message=str(exc) or None, cause=exc))
                return
            # The answer shows only as a reset idle_ticks: look every half interval.
            while not self._heard_anything():
                now = trio.current_time()
                if now >= deadline:
                    message = f"no data from the router within {timeout:g} s of a ping (keepalive)"
                    log.warning("%s", message)
                    self._finish(_End("lost", message=message))
                    return
                await trio.sleep_until(min(deadline, now + step))

    def _finish(self, end: _End) -> None:
        """Record why the connection ended (first call wins) and stop its tasks."""
        if self.end is not None:
            return
        self.end = end
        self.ready = False
        for request in self.requests.values():
            request.fail(end.exception())
        self.requests.clear()
        self.closed.set()
        self._joined.set()
        if self._tasks is not None:
            self._tasks.cancel_scope.cancel()
        self.session._notify()

    # -- the writer -----------------------------------------------------------------

    def kick(self) -> None:
        """Wake the writer: the core may have output."""
        self._kick.set()

    async def flushed(self) -> None:
        """Wait until what is queued now has been handed to the transport."""
        flush = self._flush
        self.kick()
        await flush.done.wait()
        if not flush.ok:
            raise self.end.exception() if self.end is not None else TransportLost()

    async def _writer(self) -> None:
        with self._writer_scope:
            try:
                while True:
                    data = self.core.data_to_send()
                    if data:
                        flush, self._flush = self._flush, _Flush()
                        for chunk in data:
                            await self.transport.send(chunk)
                        flush.ok = True
                        flush.done.set()
                        continue
                    if self._writer_stop:
                        return
                    await self._kick.wait()
                    self._kick = trio.Event()
            except (*_TRANSPORT_ERRORS, ValueError, wamp_core.SerializationError) as exc:
                # ValueError: a transport refusing a message larger than the peer's
                # limit. Either way the session is broken: the core believes the
                # message was sent.
                self._finish(_End("lost", message=str(exc) or None, cause=exc))
            finally:
                self._flush.done.set()
                self._writer_done.set()

    # -- the reader -----------------------------------------------------------------

    async def _reader(self) -> None:
        core = self.core
        while True:
            try:
                data = await self.transport.receive()
            except _TRANSPORT_ERRORS as exc:
                self._finish(_End("lost", cause=exc))
                return
            self._heard = True
            try:
                events = core.receive_data(data)
            except wamp_core.RemoteProtocolError as exc:
                self.kick()  # the core queued ABORT
                log.warning("the router violated the protocol: %s", exc.message)
                self._finish(_End("violation", ErrorURI.PROTOCOL_VIOLATION, exc.message, cause=exc))
                return
            for event in events:
                await self._dispatch(event)
            self.kick()
            if self.end is not None:
                return

    async def _dispatch(self, event: SessionEvent) -> None:
        if isinstance(event, ResultReceived):
            self._reply(event.request_id, event, final=not event.progress)
        elif isinstance(event, EventReceived):
            for subscription in self.subscriptions.get(event.subscription_id, ()):
                subscription._deliver(event)
        elif isinstance(event, InvocationReceived):
            self._on_invocation(event)
        elif isinstance(event, InterruptReceived):
            current = self.invocations.get(event.request_id)
            if current is not None:
                current.interrupted = True
                current.scope.cancel()
        elif isinstance(
            event,
            (
                ErrorReceived,
                SubscribeSucceeded,
                UnsubscribeSucceeded,
                RegisterSucceeded,
                UnregisterSucceeded,
                PublishSucceeded,
            ),
        ):
            self._reply(event.request_id, event, final=True)
        elif isinstance(event, SubscriptionRevoked):
            for subscription in self.subscriptions.pop(event.subscription_id, ()):
                subscription._close(None, revoked=event.reason or "revoked")
        elif isinstance(event, RegistrationRevoked):
            registration = self.registrations.pop(event.registration_id, None)
            if registration is not None:
                registration._deactivate(revoked=event.reason or "revoked")
        elif isinstance(event, SessionJoined):
            if self.session._auth is not None:
                try:
                    # The router must prove itself (SCRAM's server signature)
                    # before the session is used.
                    self.session._auth.welcome(event.details)
                except Exception as exc:
                    self._finish(_End("error", cause=exc))
                    return
            self.joined = event
            self._joined.set()
        elif isinstance(event, ChallengeReceived):
            await self._on_challenge(event)
        elif isinstance(event, SessionAborted):
            kind: Literal["aborted", "refused"] = "aborted" if self.joined else "refused"
            self._finish(_End(kind, event.reason, event.message, event.details))
        elif isinstance(event, SessionClosed):
            message = event.details.get("message")
            if event.initiated_by_router:
                text = message if isinstance(message, str) else "the router closed the session"
                self._finish(_End("closed", event.reason, text))
            else:
                self._finish(_End("left", event.reason, "the session was left"))

    def _reply(self, request_id: int, event: SessionEvent, *, final: bool) -> None:
        request = self.requests.get(request_id)
        if request is None:
            return  # e.g. the UNSUBSCRIBED for an abandoned SUBSCRIBE
        if final:
            del self.requests[request_id]
        # Bind at once: an EVENT or INVOCATION may follow in the same batch,
        # before the task waiting for this answer runs.
        if isinstance(event, SubscribeSucceeded):
            self._bind_subscription(request, event.subscription_id)
        elif isinstance(event, RegisterSucceeded):
            self._bind_registration(request, event.registration_id)
        elif isinstance(event, UnregisterSucceeded):
            self.registrations.pop(event.registration_id, None)
        if not request.abandoned:
            request.push(event)

    def _bind_subscription(self, request: _Request, subscription_id: int) -> None:
        subscription: Subscription = request.target
        if request.abandoned or not subscription.active:
            # Nobody wants it any more: undo, unless another local one shares it.
            if subscription_id not in self.subscriptions:
                self.core.unsubscribe(subscription_id)
            return
        subscription.subscription_id = subscription_id
        subscription._conn = self
        self.subscriptions.setdefault(subscription_id, []).append(subscription)
        self.session._subscriptions[subscription] = None

    def _bind_registration(self, request: _Request, registration_id: int) -> None:
        registration: Registration = request.target
        if request.abandoned or not registration.active:
            self.core.unregister(registration_id)
            return
        registration.registration_id = registration_id
        registration._conn = self
        self.registrations[registration_id] = registration
        self.session._registrations[registration] = None

    async def wait_reply(self, request_id: int, request: _Request) -> SessionEvent:
        """Register ``request`` under ``request_id``, kick the writer, wait for the answer."""
        self.requests[request_id] = request
        self.kick()
        try:
            return await request.next()
        except BaseException:
            request.abandoned = True
            raise

    # -- authentication -------------------------------------------------------------

    async def _on_challenge(self, challenge: ChallengeReceived) -> None:
        auth = self.session._auth
        handler = auth.on_challenge if auth is not None else self.session._on_challenge
        if handler is None:
            text = f"the router asked for {challenge.authmethod!r} but no on_challenge was given"
            self.core.abort(ErrorURI.AUTHENTICATION_FAILED, text)
            self._finish(_End("refused", ErrorURI.AUTHENTICATION_FAILED, text))
            return
        try:
            answer = await _maybe_await(handler(challenge))
            if isinstance(answer, tuple):
                signature, extra = answer
            else:
                signature, extra = answer, None
            self.core.authenticate(signature, extra)
        except Exception as exc:
            if self.core.state is ClientState.AUTHENTICATING:
                self.core.abort(ErrorURI.AUTHENTICATION_FAILED, "the client gave up")
            self._finish(_End("error", cause=exc))

    # -- invocations ----------------------------------------------------------------

    def can_answer(self, request_id: int) -> bool:
        return (
            self.end is None
            and self.core.state is ClientState.ESTABLISHED
            and request_id in self.invocations
        )

    def check_encodable(self, args: Sequence[Any] | None, kwargs: Mapping[str, Any] | None) -> None:
        """Raise SerializationError now for a payload the serializer cannot encode.

        The core encodes only when the writer drains it, after the request has
        changed its state; checking first keeps a bad payload a local error.
        """
        self.core.serializer.dumps([list(args or ()), dict(kwargs or {})])

    def _on_invocation(self, invocation: InvocationReceived) -> None:
        request = invocation.request_id
        current = self.invocations.get(request)
        if current is not None:
            # The core passes a repeated INVOCATION only for a progressive call
            # invocation still open: the next chunk of a call being served.
            current.chunk(invocation)
            return
        registration = self.registrations.get(invocation.registration_id)
        if registration is None:  # pragma: no cover - the core refuses these itself
            self.core.yield_error(request, ErrorURI.NO_SUCH_REGISTRATION)
            return
        if invocation.details.get("progress") is True and not registration.streaming:
            # A progressive call invocation for a handler that takes its arguments
            # at once: refuse it (the core drops the chunks that follow).
            self.core.yield_error(
                request,
                ErrorURI.FEATURE_NOT_SUPPORTED,
                [f"procedure {registration.procedure!r} takes no progressive call invocations"],
            )
            return
        current = _Invocation(registration.streaming, _forwarded_timeout(invocation.details))
        if current.chunks is not None:
            current.chunk(invocation)
        self.invocations[request] = current
        assert self._tasks is not None
        self._tasks.start_soon(self._invoke, registration, invocation, current)

    async def _invoke(
        self, registration: Registration, invocation: InvocationReceived, current: _Invocation
    ) -> None:
        request = invocation.request_id
        scope = current.scope
        if current.receive is not None:
            args: tuple[Any, ...] = (Chunks(current.receive),)
            kwargs: dict[str, Any] = {}
        else:
            args, kwargs = tuple(invocation.args or ()), dict(invocation.kwargs or {})
        if registration._details:
            kwargs["details"] = InvocationDetails(self, registration, invocation)
        error: tuple[str, Sequence[Any] | None, Mapping[str, Any] | None] | None = None
        result: Any = None
        try:
            with scope:
                result = await _maybe_await(registration.handler(*args, **kwargs))
            if scope.cancelled_caught:
                if current.interrupted:
                    error = (ErrorURI.CANCELED, ["the call was canceled"], None)
                else:
                    text = f"the call timed out after {current.timeout:g} s"
                    error = (ErrorURI.TIMEOUT, [text], None)
        except ApplicationError as exc:
            error = (exc.error, exc.args, exc.kwargs)
        except Exception:
            log.exception("procedure %r raised", registration.procedure)
            error = (RUNTIME_ERROR, None, None)
        finally:
            if current.receive is not None:
                current.receive.close()  # later chunks go nowhere
        if not self.can_answer(request):
            self.invocations.pop(request, None)
            return
        self.invocations.pop(request, None)
        if error is None:
            result_args, result_kwargs = _pack(result)
            try:
                self.check_encodable(result_args, result_kwargs)
            except wamp_core.SerializationError:
                log.exception(
                    "procedure %r returned a value that cannot be sent", registration.procedure
                )
                error = (RUNTIME_ERROR, None, None)
            else:
                self.core.yield_result(request, result_args, result_kwargs)
        if error is not None:
            uri, args_, kwargs_ = error
            try:
                self.check_encodable(args_, kwargs_)
                self.core.yield_error(request, uri, args_, dict(kwargs_ or {}))
            except wamp_core.LocalProtocolError:  # a bad URI or payload in the error
                log.warning(
                    "procedure %r: cannot send error %r as it is", registration.procedure, uri
                )
                self.core.yield_error(request, RUNTIME_ERROR)
        self.kick()

    # -- calls ----------------------------------------------------------------------

    def router_has(self, role: str, feature: str) -> bool:
        roles = self.joined.router_roles if self.joined is not None else {}
        role_details = roles.get(role)
        if not isinstance(role_details, dict):
            return False
        features = role_details.get("features")
        return isinstance(features, dict) and features.get(feature) is True

    def abandon_call(self, request_id: int, request: _Request, mode: str | None) -> None:
        """Forget a call nobody waits for any more; CANCEL it when still pending.
        Idempotent."""
        if request.abandoned:
            return
        request.abandoned = True
        if (
            self.end is None
            and request_id in self.requests
            and self.core.state is ClientState.ESTABLISHED
            and self.router_has("dealer", "call_canceling")
        ):
            self.core.cancel(request_id, mode)
            self.kick()


# -- the session ----------------------------------------------------------------------


class Session:
    """A WAMP session (over successive connections when reconnecting).

    Obtain one from ``connect()`` or ``open_session()``. ``session_id``,
    ``authid``, ``authrole``, ``authmethod``, ``details`` (WELCOME.Details)
    and ``router_roles`` describe the current (or last) joined session;
    ``connected`` tells whether one is established right now.
    """

    def __init__(
        self,
        factory: TransportFactory,
        realm: str,
        *,
        close_transport: bool,
        authmethods: Sequence[str] | None,
        authid: str | None,
        authextra: dict[str, Any] | None,
        on_challenge: Callable[[ChallengeReceived], Any] | None,
        auth: ClientAuth | None = None,
        roles: dict[str, dict[str, Any]] | None,
        reconnect: ReconnectPolicy | None,
        cancel_mode: CancelMode | None,
        close_timeout: float,
        on_join: Callable[[Session], Any] | None,
        on_leave: Callable[[Session, BaseException | None], Any] | None,
        join_timeout: float | None = None,
        keepalive_interval: float | None = None,
        keepalive_timeout: float = 30.0,
    ) -> None:
        self.realm = realm
        self.session_id: int | None = None
        self.authid: str | None = None
        self.authrole: str | None = None
        self.authmethod: str | None = None
        self.details: dict[str, Any] = {}
        self.router_roles: dict[str, Any] = {}
        self._factory = factory
        self._close_transport_flag = close_transport
        self._authmethods = authmethods
        self._authid = authid
        self._authextra = authextra
        self._on_challenge = on_challenge
        self._auth = auth
        self._roles = DEFAULT_ROLES if roles is None else roles
        self._reconnect = reconnect
        self._cancel_mode = cancel_mode
        self._close_timeout = close_timeout
        self._join_timeout = join_timeout
        self._keepalive_interval = keepalive_interval
        self._keepalive_timeout = keepalive_timeout
        self._on_join = on_join
        self._on_leave = on_leave
        self._rng = random.Random()
        self._conn: _Connection | None = None
        self._registrations: dict[Registration, None] = {}
        self._subscriptions: dict[Subscription, None] = {}
        self._changed = trio.Event()
        self._closing = False
        self._done = False
        self._final: _End | None = None
        self._crashed: BaseException | None = None
        self._ever_ready = False
        self._first_ready = trio.Event()
        self._run_done = trio.Event()
        self._attempt_scope: trio.CancelScope | None = None
        self._body_scope: trio.CancelScope | None = None
        self._nursery: trio.Nursery | None = None

    def __repr__(self) -> str:
        return f"<Session realm={self.realm!r} id={self.session_id} connected={self.connected}>"

    @property
    def connected(self) -> bool:
        """True while a session is established and usable."""
        conn = self._conn
        return conn is not None and conn.ready

    @property
    def serializer(self) -> Serializer | None:
        """The serializer of the current connection."""
        conn = self._conn
        return None if conn is None else conn.transport.serializer

    # -- state ----------------------------------------------------------------------

    def _notify(self) -> None:
        self._changed.set()
        self._changed = trio.Event()

    def _ended(self) -> BaseException:
        if self._crashed is not None:
            return SessionEnded(None, "the session failed")
        if self._final is not None:
            return self._final.exception()
        return SessionEnded(CloseReason.CLOSE_REALM, "the session was left")

    async def _connection(self) -> _Connection:
        """The current established connection; waits while reconnecting."""
        while True:
            if self._closing or self._done:
                raise self._ended()
            conn = self._conn
            if conn is not None and conn.ready:
                return conn
            await self._changed.wait()

    def _connection_ready(self, conn: _Connection) -> None:
        joined = conn.joined
        assert joined is not None
        self.session_id = joined.session_id
        self.authid = joined.authid
        self.authrole = joined.authrole
        method = joined.details.get("authmethod")
        self.authmethod = method if isinstance(method, str) else None
        self.details = joined.details
        self.router_roles = joined.router_roles
        self._ever_ready = True
        self._first_ready.set()
        self._notify()

    def _crash(self, exc: BaseException) -> None:
        """An application callback raised: end the session, re-raise from ``async with``."""
        if self._crashed is None:
            self._crashed = exc
        self._closing = True
        self._first_ready.set()
        if self._body_scope is not None:
            self._body_scope.cancel()
        self._notify()

    async def _run(self) -> None:
        """The session's connection loop (one task in the session's nursery)."""
        try:
            await self._run_connections()
        except Exception as exc:
            self._crash(exc)
        finally:
            self._done = True
            for subscription in list(self._subscriptions):
                subscription._close(self._final)
            for registration in list(self._registrations):
                registration._deactivate()
            self._first_ready.set()
            self._run_done.set()
            self._notify()

    async def _run_connections(self) -> None:
        attempt = 0
        while not self._closing:
            conn: _Connection | None = None
            end = _End("lost")
            timeout = self._join_timeout
            deadline = math.inf if timeout is None else trio.current_time() + timeout
            # The deadline bounds opening the transport here, and joining in
            # _Connection._establish.
            with trio.CancelScope(deadline=deadline) as self._attempt_scope:
                try:
                    async with self._factory() as transport:
                        self._attempt_scope.deadline = math.inf
                        conn = _Connection(
                            self,
                            transport,
                            close=self._close_transport_flag,
                            join_deadline=deadline,
                        )
                        self._conn = conn
                        await conn.run()
                except _TRANSPORT_ERRORS as exc:
                    if conn is None:
                        end = _End("unreachable", message=str(exc) or None, cause=exc)
                    else:
                        conn._finish(_End("lost", cause=exc))
                finally:
                    self._conn = None
                    self._notify()
            if conn is None and self._attempt_scope.cancelled_caught and not self._closing:
                message = f"no connection to the router within {timeout:g} s (join_timeout)"
                log.warning("%s", message)
                end = _End("timeout", JOIN_TIMEOUT, message)
            if conn is not None and conn.end is not None:
                end = conn.end
            if conn is not None and conn.was_ready:
                attempt = 0
                if self._on_leave is not None:
                    await _maybe_await(
                        self._on_leave(self, None if end.kind == "left" else end.exception())
                    )
            if self._closing:
                return
            policy = self._reconnect
            if (
                policy is None
                or end.is_fatal(policy)
                or not (self._ever_ready or policy.retry_initial)
                or (policy.max_attempts is not None and attempt >= policy.max_attempts)
            ):
                self._final = end
                self._closing = True
                self._first_ready.set()
                if self._body_scope is not None:
                    self._body_scope.cancel()
                return
            attempt += 1
            delay = policy.delay(attempt, self._rng)
            log.info("session lost (%s); reconnecting in %.2fs", end.kind, delay)
            with trio.CancelScope() as self._attempt_scope:
                await trio.sleep(delay)

    # -- verbs ----------------------------------------------------------------------

    def _call_options(
        self,
        conn: _Connection,
        options: dict[str, Any] | None,
        *,
        timeout: float | None,
        disclose_me: bool | None,
        receive_progress: bool,
    ) -> tuple[dict[str, Any], float | None]:
        """CALL.Options from the verbs' keyword arguments, and the timeout (seconds)
        the client must apply itself because the router does not announce
        ``call_timeout`` (AP/ap_rpc_call_timeout.md, "Caller-Initiated Timeouts")."""
        opts = dict(options or {})
        if disclose_me is not None:
            opts["disclose_me"] = disclose_me
        if receive_progress:
            opts["receive_progress"] = True
        milliseconds = _milliseconds(timeout)
        if milliseconds is None:
            return opts, None
        if conn.router_has("dealer", "call_timeout"):
            opts["timeout"] = milliseconds
            return opts, None
        return opts, timeout

    async def call(
        self,
        procedure: str,
        *args: Any,
        timeout: float | None = None,
        disclose_me: bool | None = None,
        options: dict[str, Any] | None = None,
        cancel_mode: CancelMode | None = None,
        **kwargs: Any,
    ) -> Any:
        """Call ``procedure`` and return its result.

        A result of exactly one positional value is returned as that value, an
        empty result as None, anything else as ``CallResult(args, kwargs)``.
        An ERROR raises ``ApplicationError``.

        ``timeout`` (seconds) asks the router to give up after that long: the
        call then raises ``ApplicationError`` ``wamp.error.timeout`` and the
        callee is interrupted. It goes on the wire in whole milliseconds
        (rounded up); when the router does not announce ``call_timeout`` the
        client times the call itself, with the same outcome. ``disclose_me``
        asks the router to tell the callee who calls. ``options`` are raw
        CALL.Options (the keywords win over them). Cancelling the awaiting task
        sends CANCEL (``cancel_mode``, default the session's) and forgets the
        call. A lone ``CallResult`` argument gives exactly its args and kwargs.
        """
        call = _Call(
            self, procedure, timeout=timeout, disclose_me=disclose_me, options=options,
            cancel_mode=cancel_mode, receive_progress=False,
        )  # fmt: skip
        await call._start(*_payload(args, kwargs))
        try:
            while True:
                event = await call._next()
                assert event is not None
                # Progressive results (asked for with raw options) are skipped here.
                if not event.progress:
                    return _unpack(event.args, event.kwargs)
        except BaseException:
            call._abandon()
            raise

    def call_progressive(
        self,
        procedure: str,
        *args: Any,
        timeout: float | None = None,
        disclose_me: bool | None = None,
        options: dict[str, Any] | None = None,
        cancel_mode: CancelMode | None = None,
        **kwargs: Any,
    ) -> ProgressiveCall:
        """Call ``procedure`` asking for progressive results (``receive_progress``).

        Use as ``async with session.call_progressive(...) as results:`` and
        ``async for result in results:``; each result is unpacked as by
        ``call()``; the progressive ones come first, the final one last.
        Leaving the ``async with`` before the final result cancels the call.
        ``timeout`` applies to the first result, then between results.
        """
        args, kwargs = _payload(args, kwargs)
        return ProgressiveCall(
            self, procedure, args=args, kwargs=kwargs, timeout=timeout, disclose_me=disclose_me,
            options=options, cancel_mode=cancel_mode,
        )  # fmt: skip

    def call_streaming(
        self,
        procedure: str,
        *,
        timeout: float | None = None,
        disclose_me: bool | None = None,
        receive_progress: bool = False,
        options: dict[str, Any] | None = None,
        cancel_mode: CancelMode | None = None,
    ) -> StreamingCall:
        """Call ``procedure`` with its arguments sent in chunks (a progressive call
        invocation, AP/ap_rpc_progressive_call_invocations.md).

        ``async with session.call_streaming(...) as call:``, then ``await
        call.send(*args, **kwargs)`` for each chunk and ``result = await
        call.finish(*args, **kwargs)`` with the last. The first chunk sends the
        CALL (with the options given here); the callee's handler, registered
        with ``streaming=True``, iterates the chunks. With ``receive_progress``
        the callee may answer with progressive results meanwhile: iterate the
        call (``async for result in call``) to get them, then the final one.
        Leaving the ``async with`` before the final answer cancels the call.
        """
        return StreamingCall(
            self, procedure, timeout=timeout, disclose_me=disclose_me, options=options,
            cancel_mode=cancel_mode, receive_progress=receive_progress,
        )  # fmt: skip

    async def register(
        self,
        procedure: str,
        handler: Callable[..., Any],
        *,
        match: Literal["exact", "prefix", "wildcard"] | None = None,
        invoke: Literal["single", "roundrobin", "random", "first", "last"] | None = None,
        disclose_caller: bool | None = None,
        forward_timeout: bool | None = None,
        streaming: bool = False,
        options: dict[str, Any] | None = None,
    ) -> Registration:
        """Register ``handler`` (sync or async) for ``procedure``.

        Each invocation runs ``handler(*args, **kwargs)`` in a task of its
        own; a keyword-only ``details`` parameter receives
        ``InvocationDetails``. The return value is the result (None: an empty
        result; a ``CallResult``: exactly its args and kwargs). Raising
        ``ApplicationError`` answers with that error (``wamp.error.unavailable``
        asks the router to try another callee of a shared registration); any
        other exception answers ``wamp.error.runtime_error`` with no payload
        (it is logged here). An INTERRUPT cancels the task and answers
        ``wamp.error.canceled``.

        ``match`` (``"prefix"``, ``"wildcard"``) and ``invoke``
        (``"roundrobin"``, ``"random"``, ``"first"``, ``"last"``) select
        pattern-based and shared registrations. ``disclose_caller`` asks the
        router to identify every caller. ``forward_timeout`` asks the router to
        leave the callers' timeouts to this callee: the handler is then
        cancelled when a call's timeout passes and the call answered
        ``wamp.error.timeout``. With ``streaming`` the handler takes the
        call's arguments as one ``Chunks`` argument, for progressive call
        invocations (``Session.call_streaming``); without, such calls are
        refused with ``wamp.error.feature_not_supported``. ``options`` adds
        raw REGISTER.Options.
        """
        opts = dict(options or {})
        for key, value in (
            ("match", match),
            ("invoke", invoke),
            ("disclose_caller", disclose_caller),
            ("forward_timeout", forward_timeout),
        ):
            if value is not None:
                opts[key] = value
        conn = await self._connection()
        registration = Registration(self, procedure, handler, opts, streaming)
        request_id = conn.core.register(procedure, opts)
        await conn.wait_reply(request_id, _Request(registration))
        return registration

    async def subscribe(
        self,
        topic: str,
        handler: Callable[..., Any] | None = None,
        *,
        match: Literal["exact", "prefix", "wildcard"] | None = None,
        get_retained: bool | None = None,
        options: dict[str, Any] | None = None,
        queue_size: float = 100,
    ) -> Subscription:
        """Subscribe to ``topic``.

        With ``handler`` (sync or async), it is called as
        ``handler(*args, **kwargs)`` for each event, in order, from a task of
        the session (a keyword-only ``details`` parameter receives the
        ``Event``); an exception from it ends the session and is raised from
        ``async with connect(...)``. Without, iterate the returned
        ``Subscription``. At most ``queue_size`` events wait; more are dropped
        and counted. ``match`` selects a pattern-based subscription;
        ``get_retained`` asks for the retained event of each matching topic
        first (``Event.retained``); ``options`` adds raw SUBSCRIBE.Options.
        """
        if not queue_size >= 1:
            raise ValueError(f"queue_size must be at least 1, not {queue_size!r}")
        opts = dict(options or {})
        if match is not None:
            opts["match"] = match
        if get_retained is not None:
            opts["get_retained"] = get_retained
        conn = await self._connection()
        subscription = Subscription(self, topic, opts, handler, queue_size)
        request_id = conn.core.subscribe(topic, opts)
        await conn.wait_reply(request_id, _Request(subscription))
        if handler is not None:
            assert self._nursery is not None
            self._nursery.start_soon(subscription._consume)
        return subscription

    async def publish(
        self,
        topic: str,
        *args: Any,
        acknowledge: bool = False,
        retain: bool | None = None,
        exclude_me: bool | None = None,
        disclose_me: bool | None = None,
        exclude: int | Iterable[int] | None = None,
        eligible: int | Iterable[int] | None = None,
        exclude_authid: str | Iterable[str] | None = None,
        exclude_authrole: str | Iterable[str] | None = None,
        eligible_authid: str | Iterable[str] | None = None,
        eligible_authrole: str | Iterable[str] | None = None,
        options: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> int | None:
        """Publish an event to ``topic``.

        Without ``acknowledge``, returns None once the PUBLISH has been handed
        to the transport (so a fast publisher is paced by its connection).
        With it, waits for the broker: returns the publication ID, or raises
        ``ApplicationError`` (``wamp.error.not_authorized``, ...).

        ``retain`` asks the broker to keep the event for later subscribers
        (``get_retained``); ``exclude_me=False`` delivers it to this session
        too; ``disclose_me`` tells subscribers who published. ``exclude`` and
        ``eligible`` (session IDs), ``exclude_authid``, ``exclude_authrole``,
        ``eligible_authid`` and ``eligible_authrole`` (one value or several)
        are the black- and whitelists. ``options`` adds raw PUBLISH.Options
        (the keywords win over them). A lone ``CallResult`` argument gives
        exactly its args and kwargs.
        """
        opts = dict(options or {})
        for key, flag in (
            ("retain", retain),
            ("exclude_me", exclude_me),
            ("disclose_me", disclose_me),
        ):
            if flag is not None:
                opts[key] = flag
        for key, value, kind in (
            ("exclude", exclude, int),
            ("eligible", eligible, int),
            ("exclude_authid", exclude_authid, str),
            ("exclude_authrole", exclude_authrole, str),
            ("eligible_authid", eligible_authid, str),
            ("eligible_authrole", eligible_authrole, str),
        ):
            listed = _id_list(value, kind)
            if listed is not None:
                opts[key] = listed
        args, kwargs = _payload(args, kwargs)
        conn = await self._connection()
        conn.check_encodable(args, kwargs)
        request_id = conn.core.publish(topic, args, kwargs, opts, acknowledge=acknowledge)
        if not acknowledge:
            await conn.flushed()
            return None
        event = await conn.wait_reply(request_id, _Request())
        assert isinstance(event, PublishSucceeded)
        return event.publication_id

    async def get_events(self, subscription: Subscription | int, **filters: Any) -> list[Event]:
        """Read the router's event history of a subscription
        (``wamp.subscription.get_events``, AP/ap_pubsub_event_history.md).

        ``subscription`` is a ``Subscription`` of this session or a subscription
        ID. ``filters`` are the procedure's keyword arguments, passed as they
        are: ``limit``, ``reverse``, ``topic``, ``from_time``, ``after_time``,
        ``before_time``, ``until_time`` (RFC 3339 strings), ``from_publication``,
        ``after_publication``, ``before_publication``, ``until_publication``.
        Returns ``Event`` objects (oldest first unless ``reverse``) with
        ``timestamp`` set. Raises ``ApplicationError`` as the router answers
        (``wamp.error.history_unavailable`` when no history is kept for it,
        ``wamp.error.no_such_subscription``, ...).
        """
        if isinstance(subscription, Subscription):
            subscription_id = subscription.subscription_id
            if subscription_id is None:
                raise ValueError(f"{subscription!r} has no subscription ID")
            topic = subscription.topic
        else:
            subscription_id = subscription
            conn = self._conn
            local = [] if conn is None else conn.subscriptions.get(subscription_id, [])
            topic = local[0].topic if local else ""
        found = await self.call(
            "wamp.subscription.get_events", CallResult(subscription_id, **filters)
        )
        events: list[Event] = []
        for item in found if isinstance(found, list) else ():
            if not isinstance(item, dict):
                continue
            details = item.get("details")
            publication = item.get("publication")
            args = item.get("args")
            kwargs = item.get("kwargs")
            events.append(
                _make_event(
                    topic,
                    publication if type(publication) is int else 0,
                    args if isinstance(args, list) else None,
                    kwargs if isinstance(kwargs, dict) else None,
                    details if isinstance(details, dict) else {},
                    timestamp=_str_or_none(item.get("timestamp")),
                )
            )
        return events

    async def leave(
        self, reason: str = CloseReason.CLOSE_REALM, message: str | None = None
    ) -> None:
        """Leave the realm: GOODBYE, wait (at most ``close_timeout``) for the
        router's GOODBYE, close the transport. Idempotent; no reconnection
        follows. Subscription iterators end; later verbs raise SessionEnded."""
        self._closing = True
        self._notify()
        conn = self._conn
        if conn is not None and conn.end is None:
            if conn.core.state is ClientState.ESTABLISHED:
                conn.ready = False
                conn.core.leave(reason, message)
                conn.kick()
                with trio.move_on_after(self._close_timeout):
                    await conn.closed.wait()
            elif conn.core.state in (ClientState.ESTABLISHING, ClientState.AUTHENTICATING):
                conn.core.abort(reason, message)
                conn.kick()
            conn._finish(_End("left", reason, "the session was left"))
        if self._attempt_scope is not None:
            self._attempt_scope.cancel()
        await self._run_done.wait()


class _Call:
    """One call: its request, its connection, and the deadline of a call the
    client times itself (when the router does not announce ``call_timeout``)."""

    def __init__(
        self,
        session: Session,
        procedure: str,
        *,
        timeout: float | None,
        disclose_me: bool | None,
        options: dict[str, Any] | None,
        cancel_mode: CancelMode | None,
        receive_progress: bool,
    ) -> None:
        _milliseconds(timeout)  # a bad timeout is refused before anything happens
        self._session = session
        self._procedure = procedure
        self._timeout = timeout
        self._disclose_me = disclose_me
        self._options = options
        self._cancel_mode = cancel_mode or session._cancel_mode
        self._receive_progress = receive_progress
        self._conn: _Connection | None = None
        self._request_id = 0
        self._request = _Request()
        self._local_timeout: float | None = None
        self._deadline = math.inf
        self._finished = False  # the final answer was taken, or the call given up
        self._gave_up = False
        self._error: ApplicationError | None = None

    @property
    def request_id(self) -> int | None:
        """The CALL's request ID, once it was sent."""
        return self._request_id or None

    async def _start(
        self, args: Sequence[Any], kwargs: Mapping[str, Any], *, progress: bool = False
    ) -> _Connection:
        """Send the CALL (the first chunk of a progressive call invocation with
        ``progress``)."""
        conn = await self._session._connection()
        conn.check_encodable(args, kwargs)
        options, self._local_timeout = self._session._call_options(
            conn,
            self._options,
            timeout=self._timeout,
            disclose_me=self._disclose_me,
            receive_progress=self._receive_progress,
        )
        self._request_id = conn.core.call(
            self._procedure, args, dict(kwargs), options, progress=progress
        )
        conn.requests[self._request_id] = self._request
        conn.kick()
        self._conn = conn
        self._arm()
        return conn

    def _arm(self) -> None:
        if self._local_timeout is not None:
            self._deadline = trio.current_time() + self._local_timeout

    async def _next(self) -> ResultReceived | None:
        """The next answer; None once the final one was taken. An ERROR raises
        ``ApplicationError``, a lost session its exception."""
        if self._finished or self._conn is None:
            return None
        try:
            event: SessionEvent | None = None
            with trio.move_on_at(self._deadline):
                event = await self._request.next()
            if event is None:
                assert self._local_timeout is not None
                self._abandon()
                raise _timeout_error(self._local_timeout)
        except ApplicationError as exc:
            self._finished = True
            self._error = exc
            raise
        except SessionEnded:
            self._finished = True
            raise
        assert isinstance(event, ResultReceived)
        if event.progress:
            self._arm()  # as the router's timer: the timeout applies between results
        else:
            self._finished = True
        return event

    def _abandon(self) -> None:
        """Give the call up: CANCEL it if it is still pending. Idempotent."""
        self._finished = True
        self._gave_up = True
        if self._conn is not None:
            self._conn.abandon_call(self._request_id, self._request, self._cancel_mode)


class ProgressiveCall(_Call):
    """A call with progressive results: ``async with`` it, then ``async for`` it.

    Leaving the ``async with`` before the final result (an exception, a
    cancellation, a ``break``) cancels the call.
    """

    def __init__(
        self,
        session: Session,
        procedure: str,
        *,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        timeout: float | None = None,
        disclose_me: bool | None = None,
        options: dict[str, Any] | None,
        cancel_mode: CancelMode | None,
    ) -> None:
        super().__init__(
            session, procedure, timeout=timeout, disclose_me=disclose_me, options=options,
            cancel_mode=cancel_mode, receive_progress=True,
        )  # fmt: skip
        self._payload = (args, kwargs)

    async def __aenter__(self) -> ProgressiveCall:
        await self._start(*self._payload)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if not self._finished:
            self._abandon()

    def __aiter__(self) -> ProgressiveCall:
        return self

    async def __anext__(self) -> Any:
        event = await self._next()
        if event is None:
            raise StopAsyncIteration
        return _unpack(event.args, event.kwargs)


class StreamingCall(_Call):
    """A call whose arguments go in chunks (progressive call invocations), made by
    ``Session.call_streaming``; use it as an async context manager.

    ``send()`` sends a chunk, ``send_last()`` the last one, ``finish()`` the
    last one and waits for the result; ``result()`` waits for the final result,
    and iterating the call gives the progressive results (when asked for with
    ``receive_progress``) and then the final one. Send from one task.

    The callee may answer before the last chunk (AP/ap_rpc_progressive_call_invocations.md
    lets it): then ``answered`` turns True, further chunks are not sent, and
    ``send()`` raises the ``ApplicationError`` if the answer was an error.
    Leaving the ``async with`` before the final answer (an exception, a
    cancellation, no ``finish()``) cancels the call.
    """

    def __init__(
        self,
        session: Session,
        procedure: str,
        *,
        timeout: float | None,
        disclose_me: bool | None,
        options: dict[str, Any] | None,
        cancel_mode: CancelMode | None,
        receive_progress: bool,
    ) -> None:
        super().__init__(
            session, procedure, timeout=timeout, disclose_me=disclose_me, options=options,
            cancel_mode=cancel_mode, receive_progress=receive_progress,
        )  # fmt: skip
        self._entered = False
        self._last_sent = False
        self._value: Any = None

    async def __aenter__(self) -> StreamingCall:
        self._entered = True
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if not self._finished:
            self._abandon()

    @property
    def answered(self) -> bool:
        """True once the call's final answer (result or error) has arrived: chunks
        are no longer sent."""
        conn = self._conn
        if conn is None or self._gave_up:
            return False
        return self._finished or (conn.end is None and self._request_id not in conn.requests)

    async def send(self, *args: Any, **kwargs: Any) -> None:
        """Send a chunk; more follow. Returns once it was handed to the transport
        (so a fast producer is paced by its connection)."""
        await self._send(args, kwargs, last=False)

    async def send_last(self, *args: Any, **kwargs: Any) -> None:
        """Send the last chunk (without waiting for the result)."""
        await self._send(args, kwargs, last=True)

    async def finish(self, *args: Any, **kwargs: Any) -> Any:
        """Send the last chunk and return the call's result (as ``call()`` does)."""
        await self._send(args, kwargs, last=True)
        return await self.result()

    async def result(self) -> Any:
        """Wait for the final result (skipping progressive ones nobody iterated)."""
        if self._conn is None:
            raise wamp_core.LocalProtocolError("nothing was sent on this call yet")
        while True:
            event = await self._next()
            if event is None:
                if self._error is not None:
                    raise _copy_error(self._error)
                return self._value
            if not event.progress:
                self._value = _unpack(event.args, event.kwargs)
                return self._value

    def __aiter__(self) -> StreamingCall:
        return self

    async def __anext__(self) -> Any:
        event = await self._next()
        if event is None:
            raise StopAsyncIteration
        value = _unpack(event.args, event.kwargs)
        if not event.progress:
            self._value = value
        return value

    async def _send(self, args: tuple[Any, ...], kwargs: dict[str, Any], *, last: bool) -> None:
        if not self._entered:
            raise wamp_core.LocalProtocolError("use the call as `async with` first")
        if self._last_sent:
            raise wamp_core.LocalProtocolError("the last chunk was sent already")
        if self._error is not None:  # the call ended with this error (or timed out)
            raise _copy_error(self._error)
        if self._gave_up:
            raise wamp_core.LocalProtocolError("the call was given up")
        args, kwargs = _payload(args, kwargs)
        conn = self._conn
        if conn is None:
            conn = await self._start(args, kwargs, progress=not last)
        else:
            if conn.end is not None:
                raise conn.end.exception()
            if self._request_id not in conn.core.open_calls:
                # Answered before our last chunk: nothing more goes out.
                for event in self._request.items:
                    if isinstance(event, ErrorReceived):
                        raise _application_error(event)
                self._last_sent = last
                return
            conn.check_encodable(args, kwargs)
            conn.core.continue_call(self._request_id, args, kwargs, progress=not last)
        self._last_sent = last
        await conn.flushed()


def _copy_error(exc: ApplicationError) -> ApplicationError:
    copy = ApplicationError(exc.error, *exc.args, **exc.kwargs)
    copy.details = exc.details
    return copy


# -- entry points ---------------------------------------------------------------------


@asynccontextmanager
async def _run_session(session: Session) -> AsyncIterator[Session]:
    error: BaseException | None = None
    body_scope: trio.CancelScope | None = None
    async with trio.open_nursery() as nursery:
        session._nursery = nursery
        nursery.start_soon(session._run)
        try:
            await session._first_ready.wait()
            if session._crashed is not None:
                error = session._crashed
            elif not session._ever_ready:
                final = session._final
                if final is not None and final.kind == "unreachable" and final.cause is not None:
                    error = final.cause  # as trio.open_tcp_stream would raise it
                else:
                    error = session._ended()
            else:
                with trio.CancelScope() as body_scope:
                    session._body_scope = body_scope
                    try:
                        yield session
                    except Exception as exc:
                        # Re-raised below, outside the nursery, so that it is not
                        # wrapped in an ExceptionGroup.
                        error = exc
        finally:
            session._body_scope = None
            with trio.move_on_after(session._close_timeout * 3, shield=True):
                await session.leave()
            nursery.cancel_scope.cancel()
    if error is not None:
        try:
            raise error
        finally:
            error = None
    if session._crashed is not None:
        raise session._crashed
    if body_scope is not None and body_scope.cancelled_caught and session._final is not None:
        raise session._final.exception()


def _session(
    factory: TransportFactory,
    realm: str,
    *,
    close_transport: bool,
    authmethods: Sequence[str] | None,
    authid: str | None,
    authextra: dict[str, Any] | None,
    on_challenge: Callable[[ChallengeReceived], Any] | None,
    auth: ClientAuth | None,
    roles: dict[str, dict[str, Any]] | None,
    reconnect: bool | ReconnectPolicy,
    cancel_mode: CancelMode | None,
    close_timeout: float,
    on_join: Callable[[Session], Any] | None,
    on_leave: Callable[[Session, BaseException | None], Any] | None,
    join_timeout: float | None,
    keepalive_interval: float | None = None,
    keepalive_timeout: float = 30.0,
) -> AbstractAsyncContextManager[Session]:
    if not wamp_core.is_valid_uri(realm):
        raise wamp_core.LocalProtocolError(f"invalid realm URI {realm!r}", ErrorURI.INVALID_URI)
    _check_seconds("join_timeout", join_timeout)
    _check_seconds("keepalive_interval", keepalive_interval)
    _check_seconds("keepalive_timeout", keepalive_timeout, optional=False)
    policy = ReconnectPolicy() if reconnect is True else (reconnect or None)
    session = Session(
        factory,
        realm,
        close_transport=close_transport,
        authmethods=authmethods,
        authid=authid,
        authextra=authextra,
        on_challenge=on_challenge,
        auth=auth,
        roles=roles,
        reconnect=policy,
        cancel_mode=cancel_mode,
        close_timeout=close_timeout,
        on_join=on_join,
        on_leave=on_leave,
        join_timeout=join_timeout,
        keepalive_interval=keepalive_interval,
        keepalive_timeout=keepalive_timeout,
    )
    return _run_session(session)


def _check_seconds(name: str, value: float | None, *, optional: bool = True) -> None:
    """``ValueError`` unless ``value`` is a number of seconds > 0 (or None, when
    ``optional``)."""
    if value is None and optional:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        allowed = " or None" if optional else ""
        raise ValueError(f"{name} must be a number of seconds > 0{allowed}, not {value!r}")


def connect(
    url: str | TransportFactory,
    realm: str = "realm1",
    *,
    serializer: str | Serializer = "json",
    ssl_context: ssl.SSLContext | None = None,
    authmethods: Sequence[str] | None = None,
    authid: str | None = None,
    authextra: dict[str, Any] | None = None,
    on_challenge: Callable[[ChallengeReceived], Any] | None = None,
    auth: ClientAuth | None = None,
    reconnect: bool | ReconnectPolicy = False,
    roles: dict[str, dict[str, Any]] | None = None,
    cancel_mode: CancelMode | None = "killnowait",
    close_timeout: float = 5.0,
    on_join: Callable[[Session], Any] | None = None,
    on_leave: Callable[[Session, BaseException | None], Any] | None = None,
    join_timeout: float | None = 10.0,
    keepalive_interval: float | None = None,
    keepalive_timeout: float = 30.0,
) -> AbstractAsyncContextManager[Session]:
    """Connect to a router and join ``realm``: ``async with connect(url) as session:``.

    ``url`` is ``ws://``/``wss://`` (WebSocket), ``rs://``/``rss://`` (RawSocket
    over TCP/TLS), ``unix:///path`` (RawSocket over a Unix socket) or
    ``http://``/``https://`` (long-poll base URL, e.g. ``http://host:8080/lp``);
    or a ``TransportFactory`` for any other transport. The router's refusal
    raises ``JoinError``; a failure to connect raises the transport's error.

    ``auth`` (``ticket_auth(...)``, ``wampcra_auth(...)``, ``cryptosign_auth(...)``,
    ``scram_auth(...)``) authenticates: it supplies HELLO's authmethods and
    authextra (fresh for each attempt), answers the CHALLENGE and checks the
    router's WELCOME (SCRAM's server signature) before the session is used.
    Without it, ``on_challenge(challenge)`` (sync or async) answers a CHALLENGE
    with a signature, or ``(signature, extra)``. ``reconnect`` (True or a
    ``ReconnectPolicy``) reconnects after losing the session. ``on_join(session)``
    runs after each join (after re-registering), ``on_leave(session, exc)``
    after each loss (``exc`` None when we left). Leaving the ``async with``
    sends GOODBYE and waits at most ``close_timeout`` for the reply. When the
    session ends for good while the body runs (router GOODBYE or ABORT,
    transport lost and no reconnection), the body is cancelled and the
    ``async with`` raises ``SessionEnded`` (or ``JoinError``).

    ``join_timeout`` (seconds, None: none) bounds each connection attempt, from
    opening the transport to WELCOME (authentication included): when it runs
    out, the transport is closed and the attempt fails with ``JoinError``
    ``wamp.error.timeout`` (raised by ``connect``, or retried as the reconnect
    policy says). ``keepalive_interval`` (seconds, None: off) pings the router
    over WebSocket and RawSocket after that long without data from it;
    nothing (a PONG included) within ``keepalive_timeout`` seconds of the ping
    counts as a lost transport.
    """
    factory = _url_factory(url, serializer, ssl_context) if isinstance(url, str) else url
    return _session(
        factory,
        realm,
        close_transport=True,
        authmethods=authmethods,
        authid=authid,
        authextra=authextra,
        on_challenge=on_challenge,
        auth=auth,
        roles=roles,
        reconnect=reconnect,
        cancel_mode=cancel_mode,
        close_timeout=close_timeout,
        on_join=on_join,
        on_leave=on_leave,
        join_timeout=join_timeout,
        keepalive_interval=keepalive_interval,
        keepalive_timeout=keepalive_timeout,
    )


def open_session(
    transport: MessageTransport,
    realm: str = "realm1",
    *,
    authmethods: Sequence[str] | None = None,
    authid: str | None = None,
    authextra: dict[str, Any] | None = None,
    on_challenge: Callable[[ChallengeReceived], Any] | None = None,
    auth: ClientAuth | None = None,
    roles: dict[str, dict[str, Any]] | None = None,
    cancel_mode: CancelMode | None = "killnowait",
    close_timeout: float = 5.0,
    join_timeout: float | None = 10.0,
) -> AbstractAsyncContextManager[Session]:
    """Join ``realm`` over a transport that is already connected.

    Like ``connect()`` without reconnection (and without keepalive). The
    transport stays open afterwards (it may carry another session); closing it
    is the caller's job.
    """

    @asynccontextmanager
    async def factory() -> AsyncIterator[MessageTransport]:
        yield transport

    return _session(
        factory,
        realm,
        close_transport=False,
        authmethods=authmethods,
        authid=authid,
        authextra=authextra,
        on_challenge=on_challenge,
        auth=auth,
        roles=roles,
        reconnect=False,
        cancel_mode=cancel_mode,
        close_timeout=close_timeout,
        on_join=None,
        on_leave=None,
        join_timeout=join_timeout,
    )


def _url_factory(
    url: str, serializer: str | Serializer, ssl_context: ssl.SSLContext | None
) -> TransportFactory:
    def factory() -> AbstractAsyncContextManager[MessageTransport]:
        return open_transport(url, serializer, ssl_context=ssl_context)

    return factory
