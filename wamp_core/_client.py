"""The client side of a WAMP session, as a sans-IO state machine.

``ClientSession`` turns transport messages (bytes) into events and request
verbs into transport messages. It never does I/O: feed it what the transport
received with ``receive_data()``, send what ``data_to_send()`` returns.
Receiving alone can produce output (the echo of a GOODBYE, the ABORT after a
peer's protocol violation), so drain ``data_to_send()`` after every call.

States (BP/sessions.md, rfc/session-state-machine.md)::

    CLOSED --join()--> ESTABLISHING --WELCOME--> ESTABLISHED
                        |  ^     |                 |   |
              CHALLENGE |  | authenticate()  leave()   GOODBYE from router
                        v  |     |                 |   (echoed) --> CLOSED
                     AUTHENTICATING   ABORT        v
                                     --> CLOSED  SHUTTING_DOWN --GOODBYE--> CLOSED

Any protocol violation by the router queues ABORT ``wamp.error.protocol_violation``,
moves to FAILED and raises ``RemoteProtocolError``; after that only draining
is legal. Misuse of the verbs raises ``LocalProtocolError`` and changes nothing.
Every (state, message type) pair is listed in ``TRANSITIONS``; pairs not listed
are protocol violations.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from . import _events as ev
from ._dealer import PPT_FEATURE, ppt_options, ppt_problem
from ._errors import LocalProtocolError, RemoteProtocolError
from ._ids import SequentialIds, is_id
from ._messages import (
    Abort,
    Authenticate,
    Call,
    Cancel,
    Challenge,
    Error,
    Event,
    Goodbye,
    Hello,
    Interrupt,
    Invocation,
    Message,
    MessageType,
    Publish,
    Published,
    Register,
    Registered,
    Result,
    Subscribe,
    Subscribed,
    Unregister,
    Unregistered,
    Unsubscribe,
    Unsubscribed,
    Welcome,
    Yield,
)
from ._serializers import Serializer, get_serializer
from ._uri import CloseReason, ErrorURI, is_valid_uri

__all__ = ["CLIENT_ROLES", "TRANSITIONS", "ClientSession", "ClientState"]

_VERSION = "0.1.0"

CLIENT_ROLES: dict[str, dict[str, Any]] = {
    "caller": {
        "features": {
            "progressive_call_results": True,
            "progressive_call_invocations": True,
            "call_canceling": True,
            "call_timeout": True,
            "caller_identification": True,
            "payload_passthru_mode": True,
        }
    },
    "callee": {
        "features": {
            "progressive_call_results": True,
            "progressive_call_invocations": True,
            "call_canceling": True,
            "call_reroute": True,
            "call_trustlevels": True,
            "caller_identification": True,
            "pattern_based_registration": True,
            "shared_registration": True,
            "registration_revocation": True,
            "payload_passthru_mode": True,
        }
    },
    "publisher": {
        "features": {
            "publisher_exclusion": True,
            "publisher_identification": True,
            "subscriber_blackwhite_listing": True,
            "payload_passthru_mode": True,
        }
    },
    "subscriber": {
        "features": {
            "pattern_based_subscription": True,
            "publisher_identification": True,
            "subscription_revocation": True,
            "payload_passthru_mode": True,
        }
    },
}
"""The roles and features a ``ClientSession`` announces in HELLO by default.

Every feature listed is one the session handles at the message level; what it
means for the application is up to the code driving the session. A callee
takes part in call rerouting by answering ``wamp.error.unavailable``
(AP/ap_rpc_call_rerouting.md); ``call_timeout`` is not announced for the callee,
since only the application can time an invocation (with
``REGISTER.Options.forward_timeout`` the router forwards ``Details.timeout``).

``payload_passthru_mode`` (AP/payload_passthru_mode.md) works at the message
level: the verbs send ``ppt_*`` options and a payload of one binary item as
given (packing ``{"args", "kwargs"}`` into it, serializing and encrypting is
the application's part), and the ``ppt_*`` keys received stay in the events'
``details``.
"""

MAX_PPT_YIELDS = 1024
"""How many invocations answered with a payload passthru YIELD a callee session
remembers, to accept the router's ERROR refusing such a YIELD."""

_PPT_SCHEMES: dict[str, tuple[frozenset[str], bool, frozenset[str]]] = {
    # AP/payload_passthru_mode.md, "ppt_ Predefined Schemes": the serializers
    # allowed, whether one is required, the ciphers allowed.
    "mqtt": (frozenset({"native", "json", "msgpack", "cbor"}), False, frozenset()),
    "wamp": (
        frozenset({"cbor", "flatbuffers"}),
        True,
        frozenset({"xsalsa20poly1305", "aes256gcm"}),
    ),
}


def _ppt_scheme_problem(ppt: dict[str, Any]) -> str | None:
    """What the predefined schemes' tables forbid in ``ppt`` (checked options), or None.

    Custom schemes are named ``x_...`` (the spec's example, and what Wampy.js,
    by the feature's author, requires); their values are not checked.
    """
    scheme = ppt["ppt_scheme"]
    rules = _PPT_SCHEMES.get(scheme)
    if rules is None:
        if scheme.startswith("x_"):
            return None
        return f"unknown ppt_scheme {scheme!r}: use mqtt, wamp or a custom x_... scheme"
    serializers, required, ciphers = rules
    serializer = ppt.get("ppt_serializer")
    if serializer is None and required:
        return f"ppt_scheme {scheme!r} requires ppt_serializer"
    if serializer is not None and serializer not in serializers:
        return f"ppt_serializer {serializer!r} is not one of {sorted(serializers)} for {scheme!r}"
    cipher = ppt.get("ppt_cipher")
    if cipher is not None and cipher not in ciphers:
        return f"ppt_cipher {cipher!r} is not allowed for ppt_scheme {scheme!r}"
    if "ppt_keyid" in ppt and not ciphers:
        return f"ppt_scheme {scheme!r} takes no ppt_keyid"
    return None


MAX_ENDED_STREAMS = 1024
"""How many answered progressive call invocations a callee session remembers, to
drop the chunks the router sent before it got the answer."""


class ClientState(enum.Enum):
    """States of a client session."""

    CLOSED = "CLOSED"
    ESTABLISHING = "ESTABLISHING"
    AUTHENTICATING = "AUTHENTICATING"
    ESTABLISHED = "ESTABLISHED"
    SHUTTING_DOWN = "SHUTTING_DOWN"
    FAILED = "FAILED"


_S = ClientState
_T = MessageType

TRANSITIONS: dict[tuple[ClientState, MessageType], str] = {
    (_S.ESTABLISHING, _T.WELCOME): "_on_welcome",
    (_S.ESTABLISHING, _T.CHALLENGE): "_on_challenge",
    (_S.ESTABLISHING, _T.ABORT): "_on_abort",
    (_S.AUTHENTICATING, _T.ABORT): "_on_abort",
    (_S.ESTABLISHED, _T.ABORT): "_on_abort",
    (_S.ESTABLISHED, _T.GOODBYE): "_on_goodbye",
    (_S.ESTABLISHED, _T.ERROR): "_on_error",
    (_S.ESTABLISHED, _T.PUBLISHED): "_on_published",
    (_S.ESTABLISHED, _T.SUBSCRIBED): "_on_subscribed",
    (_S.ESTABLISHED, _T.UNSUBSCRIBED): "_on_unsubscribed",
    (_S.ESTABLISHED, _T.EVENT): "_on_event",
    (_S.ESTABLISHED, _T.RESULT): "_on_result",
    (_S.ESTABLISHED, _T.REGISTERED): "_on_registered",
    (_S.ESTABLISHED, _T.UNREGISTERED): "_on_unregistered",
    (_S.ESTABLISHED, _T.INVOCATION): "_on_invocation",
    (_S.ESTABLISHED, _T.INTERRUPT): "_on_interrupt",
    # BP/sessions.md: after sending GOODBYE, every incoming message but the
    # GOODBYE reply is ignored.
    **{(_S.SHUTTING_DOWN, t): "_ignore" for t in _T if t not in (_T.GOODBYE, _T.ABORT)},
    (_S.SHUTTING_DOWN, _T.GOODBYE): "_on_goodbye_reply",
    (_S.SHUTTING_DOWN, _T.ABORT): "_on_abort",
}
"""(state, incoming message type) -> handler name. Absent pairs are violations."""

_REPLY_TYPES = {
    _T.PUBLISHED: _T.PUBLISH,
    _T.SUBSCRIBED: _T.SUBSCRIBE,
    _T.UNSUBSCRIBED: _T.UNSUBSCRIBE,
    _T.RESULT: _T.CALL,
    _T.REGISTERED: _T.REGISTER,
    _T.UNREGISTERED: _T.UNREGISTER,
}


def _check_uri(uri: object, what: str, match: str = "exact") -> str:
    if not is_valid_uri(uri, match):
        raise LocalProtocolError(f"invalid {what} URI {uri!r}", ErrorURI.INVALID_URI)
    assert isinstance(uri, str)
    return uri


def _check_dict(value: object, what: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(type(key) is str for key in value):
        raise LocalProtocolError(f"{what} must be a dict with string keys")
    return value


def _check_payload(
    args: Sequence[Any] | None, kwargs: dict[str, Any] | None
) -> tuple[list[Any] | None, dict[str, Any] | None]:
    """Normalise a payload; empty Args/Kw are omitted (BP/messages.md SHOULD)."""
    if args is not None and (
        isinstance(args, (str, bytes, dict)) or not isinstance(args, Sequence)
    ):
        raise LocalProtocolError(f"args must be a list or tuple, got {type(args).__name__}")
    if kwargs is not None:
        _check_dict(kwargs, "kwargs")
    return (list(args) if args else None), (kwargs or None)


class ClientSession:
    """A WAMP client session over one transport (sans-IO).

    ``serializer`` is a ``Serializer`` or a name (``"json"``,
    ``"wamp.2.msgpack.batched"``, ...). ``roles`` replaces the roles announced
    in HELLO (default ``CLIENT_ROLES``).
    """

    def __init__(
        self,
        serializer: Serializer | str = "json",
        *,
        roles: dict[str, dict[str, Any]] | None = None,
        agent: str = f"wamp-core-{_VERSION}",
    ) -> None:
        self.serializer = get_serializer(serializer) if isinstance(serializer, str) else serializer
        self.roles = CLIENT_ROLES if roles is None else roles
        self.agent = agent
        self.state = ClientState.CLOSED
        self.session_id: int | None = None
        self.realm: str | None = None
        self.welcome_details: dict[str, Any] = {}
        self._out: list[Message] = []
        self._reset_session()

    def _reset_session(self) -> None:
        self._next_request = SequentialIds()
        # request id -> (request type, extra: subscription/registration id)
        self._requests: dict[int, tuple[MessageType, int]] = {}
        self._subscriptions: set[int] = set()
        self._registrations: set[int] = set()
        # CALL request id -> (procedure, ppt_* options), for progressive call
        # invocations the caller may still send chunks for
        self._streams: dict[int, tuple[str, dict[str, Any]]] = {}
        # INVOCATION request id -> True while the router may send more chunks
        # (progressive call invocations)
        self._invocations: dict[int, bool] = {}
        # invocations answered while chunks could still come (oldest first)
        self._ended_streams: dict[int, None] = {}
        # invocations answered with a payload passthru YIELD (oldest first)
        self._ppt_yields: dict[int, None] = {}

    # -- output ------------------------------------------------------------------

    def data_to_send(self) -> list[bytes]:
        """Take the queued output as transport messages (batched into one when the
        serializer is batched)."""
        out, self._out = self._out, []
        return self.serializer.encode_many(out)

    def messages_to_send(self) -> list[Message]:
        """Take the queued output as messages, for embedders that serialize themselves."""
        out, self._out = self._out, []
        return out

    # -- input -------------------------------------------------------------------

    def receive_data(self, data: bytes) -> list[ev.SessionEvent]:
        """Process one transport message; return the events it produced.

        Raises ``RemoteProtocolError`` (after queueing ABORT) when the router
        violated the protocol, ``LocalProtocolError`` when the session has
        already failed.
        """
        self._check_not_failed()
        try:
            messages = self.serializer.decode(data)
        except RemoteProtocolError as exc:
            self._fail(exc.message)
        events: list[ev.SessionEvent] = []
        for message in messages:
            events.extend(self.receive_message(message))
        return events

    def receive_message(self, message: Message) -> list[ev.SessionEvent]:
        """Process one already-decoded message; return the events it produced."""
        self._check_not_failed()
        handler = TRANSITIONS.get((self.state, message.type))
        if handler is None:
            self._fail(f"{message.type.name} is not allowed in state {self.state.name}")
        result: list[ev.SessionEvent] = getattr(self, handler)(message)
        return result

    def _check_not_failed(self) -> None:
        if self.state is ClientState.FAILED:
            raise LocalProtocolError("the session failed after a protocol violation")

    def _fail(self, text: str) -> NoReturn:
        """Handle a protocol violation by the router (BP/building_blocks.md,
        "Protocol Errors"): ABORT, drop all state, raise."""
        self._out.append(Abort({"message": text}, ErrorURI.PROTOCOL_VIOLATION))
        self.state = ClientState.FAILED
        self._reset_session()
        raise RemoteProtocolError(text)

    def _ignore(self, message: Message) -> list[ev.SessionEvent]:
        return []

    def _on_welcome(self, message: Welcome) -> list[ev.SessionEvent]:
        roles = message.details.get("roles", {})
        if not isinstance(roles, dict):
            self._fail("WELCOME.Details.roles must be a dict")
        self.state = ClientState.ESTABLISHED
        self.session_id = message.session
        self.welcome_details = message.details
        return [ev.SessionJoined(message.session, message.details)]

    def _on_challenge(self, message: Challenge) -> list[ev.SessionEvent]:
        self.state = ClientState.AUTHENTICATING
        return [ev.ChallengeReceived(message.authmethod, message.extra)]

    def _on_abort(self, message: Abort) -> list[ev.SessionEvent]:
        self._close()
        return [ev.SessionAborted(message.reason, message.details, message.args, message.kwargs)]

    def _close(self) -> None:
        self.state = ClientState.CLOSED
        self.session_id = None
        self._reset_session()

    def _on_goodbye(self, message: Goodbye) -> list[ev.SessionEvent]:
        # BP/sessions.md: a GOODBYE MUST be answered with a GOODBYE.
        self._out.append(Goodbye({}, CloseReason.GOODBYE_AND_OUT))
        self._close()
        return [ev.SessionClosed(message.reason, message.details, initiated_by_router=True)]

    def _on_goodbye_reply(self, message: Goodbye) -> list[ev.SessionEvent]:
        self._close()
        return [ev.SessionClosed(message.reason, message.details, initiated_by_router=False)]

    def _take_request(self, request: int, request_type: MessageType, what: str) -> int:
        entry = self._requests.get(request)
        if entry is None or entry[0] is not request_type:
            self._fail(f"{what} for request {request}, which is no pending {request_type.name}")
        del self._requests[request]
        return entry[1]

    def _on_error(self, message: Error) -> list[ev.SessionEvent]:
        if message.request_type == _T.INVOCATION:
            self._fail("ERROR for an INVOCATION can only be sent by a callee")
        if message.request_type == _T.YIELD:
            # AP/payload_passthru_mode.md: the dealer refuses a payload passthru
            # YIELD (feature_not_supported when the caller lacks the mode).
            if message.request not in self._ppt_yields:
                self._fail(
                    f"ERROR for YIELD {message.request}, which was no payload passthru YIELD"
                )
            del self._ppt_yields[message.request]
        else:
            self._take_request(message.request, _T(message.request_type), "ERROR")
            self._streams.pop(message.request, None)
        return [
            ev.ErrorReceived(
                message.request_type,
                message.request,
                message.error,
                message.args,
                message.kwargs,
                message.details,
            )
        ]

    def _on_published(self, message: Published) -> list[ev.SessionEvent]:
        self._take_request(message.request, _T.PUBLISH, "PUBLISHED")
        return [ev.PublishSucceeded(message.request, message.publication)]

    def _on_subscribed(self, message: Subscribed) -> list[ev.SessionEvent]:
        self._take_request(message.request, _T.SUBSCRIBE, "SUBSCRIBED")
        self._subscriptions.add(message.subscription)
        return [ev.SubscribeSucceeded(message.request, message.subscription)]

    def _on_unsubscribed(self, message: Unsubscribed) -> list[ev.SessionEvent]:
        if message.request == 0:
            details = message.details or {}
            subscription = details.get("subscription")
            if not isinstance(subscription, int) or not is_id(subscription):
                self._fail("revocation UNSUBSCRIBED.Details.subscription must be an ID")
            self._subscriptions.discard(subscription)
            reason = details.get("reason")
            return [
                ev.SubscriptionRevoked(subscription, reason if isinstance(reason, str) else None)
            ]
        subscription = self._take_request(message.request, _T.UNSUBSCRIBE, "UNSUBSCRIBED")
        self._subscriptions.discard(subscription)
        return [ev.UnsubscribeSucceeded(message.request, subscription)]

    def _on_event(self, message: Event) -> list[ev.SessionEvent]:
        if message.subscription not in self._subscriptions:
            # An EVENT can cross our UNSUBSCRIBE, or follow a revocation: drop it.
            return []
        if ppt_options(message.details) and not _announces(self.roles, "subscriber", PPT_FEATURE):
            # AP/payload_passthru_mode.md: a broker cannot tell; "covered at the
            # Subscriber side". Its payload is unreadable here: dropped.
            return []
        return [
            ev.EventReceived(
                message.subscription,
                message.publication,
                message.args,
                message.kwargs,
                message.details,
            )
        ]

    def _on_result(self, message: Result) -> list[ev.SessionEvent]:
        self._check_ppt_received(message.details, "caller", "RESULT")
        progress = message.details.get("progress") is True
        if progress:
            entry = self._requests.get(message.request)
            if entry is None or entry[0] is not _T.CALL:
                self._fail(f"RESULT for request {message.request}, which is no pending CALL")
        else:
            self._take_request(message.request, _T.CALL, "RESULT")
            self._streams.pop(message.request, None)
        return [
            ev.ResultReceived(
                message.request, message.args, message.kwargs, message.details, progress
            )
        ]

    def _on_registered(self, message: Registered) -> list[ev.SessionEvent]:
        self._take_request(message.request, _T.REGISTER, "REGISTERED")
        self._registrations.add(message.registration)
        return [ev.RegisterSucceeded(message.request, message.registration)]

    def _on_unregistered(self, message: Unregistered) -> list[ev.SessionEvent]:
        if message.request == 0:
            details = message.details or {}
            registration = details.get("registration")
            if not isinstance(registration, int) or not is_id(registration):
                self._fail("revocation UNREGISTERED.Details.registration must be an ID")
            self._registrations.discard(registration)
            reason = details.get("reason")
            return [
                ev.RegistrationRevoked(registration, reason if isinstance(reason, str) else None)
            ]
        registration = self._take_request(message.request, _T.UNREGISTER, "UNREGISTERED")
        self._registrations.discard(registration)
        return [ev.UnregisterSucceeded(message.request, registration)]

    def _on_invocation(self, message: Invocation) -> list[ev.SessionEvent]:
        self._check_ppt_received(message.details, "callee", "INVOCATION")
        request = message.request
        progress = message.details.get("progress") is True
        streaming = self._invocations.get(request)
        if streaming is not None:
            # AP/ap_rpc_progressive_call_invocations.md: the chunks of a call come
            # with the INVOCATION ID of its first.
            if not streaming:
                self._fail(f"INVOCATION {request} is already in progress")
        elif request in self._ended_streams:
            # A chunk sent before the router got our answer: dropped silently;
            # one without progress is the last.
            if not progress:
                del self._ended_streams[request]
            return []
        elif message.registration not in self._registrations:
            # It crossed our UNREGISTER (or a revocation): refuse it.
            self._out.append(Error(_T.INVOCATION, request, {}, ErrorURI.NO_SUCH_REGISTRATION))
            if progress:
                self._end_stream(request)
            return []
        self._invocations[request] = progress
        return [
            ev.InvocationReceived(
                message.request,
                message.registration,
                message.args,
                message.kwargs,
                message.details,
            )
        ]

    def _on_interrupt(self, message: Interrupt) -> list[ev.SessionEvent]:
        if message.request not in self._invocations:
            return []  # we already answered: the INTERRUPT crossed our YIELD
        return [ev.InterruptReceived(message.request, message.options)]

    # -- verbs -------------------------------------------------------------------

    def join(
        self,
        realm: str,
        *,
        authmethods: Sequence[str] | None = None,
        authid: str | None = None,
        authextra: dict[str, Any] | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        """Send HELLO to join ``realm``. ``details`` adds raw HELLO.Details keys."""
        self._require(ClientState.CLOSED, "join")
        _check_uri(realm, "realm")
        hello: dict[str, Any] = {"agent": self.agent, "roles": self.roles}
        if authmethods is not None:
            if isinstance(authmethods, str) or not all(isinstance(m, str) for m in authmethods):
                raise LocalProtocolError("authmethods must be a list of strings")
            hello["authmethods"] = list(authmethods)
        if authid is not None:
            if not isinstance(authid, str):
                raise LocalProtocolError("authid must be a string")
            hello["authid"] = authid
        if authextra is not None:
            hello["authextra"] = _check_dict(authextra, "authextra")
        hello.update(_check_dict(details, "details"))
        message = self._encodable(Hello(realm, hello))
        self._reset_session()
        self.realm = realm
        self.state = ClientState.ESTABLISHING
        self._out.append(message)

    def authenticate(self, signature: str, extra: dict[str, Any] | None = None) -> None:
        """Answer a CHALLENGE with AUTHENTICATE."""
        self._require(ClientState.AUTHENTICATING, "authenticate")
        if not isinstance(signature, str):
            raise LocalProtocolError("signature must be a string")
        message = self._encodable(Authenticate(signature, _check_dict(extra, "extra")))
        self.state = ClientState.ESTABLISHING
        self._out.append(message)

    def abort(
        self, reason: str = ErrorURI.AUTHENTICATION_FAILED, message: str | None = None
    ) -> None:
        """Give up joining (e.g. a CHALLENGE the client cannot answer): send ABORT."""
        if self.state not in (ClientState.ESTABLISHING, ClientState.AUTHENTICATING):
            raise LocalProtocolError(f"cannot abort in state {self.state.name}; use leave()")
        _check_uri(reason, "reason")
        self._out.append(
            self._encodable(Abort({} if message is None else {"message": message}, reason))
        )
        self._close()

    def leave(self, reason: str = CloseReason.CLOSE_REALM, message: str | None = None) -> None:
        """Send GOODBYE; the session closes when the router's GOODBYE arrives."""
        self._require(ClientState.ESTABLISHED, "leave")
        _check_uri(reason, "reason")
        self._out.append(
            self._encodable(Goodbye({} if message is None else {"message": message}, reason))
        )
        self.state = ClientState.SHUTTING_DOWN

    def call(
        self,
        procedure: str,
        args: Sequence[Any] | None = None,
        kwargs: dict[str, Any] | None = None,
        options: dict[str, Any] | None = None,
        *,
        progress: bool = False,
    ) -> int:
        """Send CALL; return its request id (answered by ResultReceived/ErrorReceived).

        With ``progress`` the call is a progressive call invocation
        (AP/ap_rpc_progressive_call_invocations.md): ``args``/``kwargs`` are its
        first chunk, ``continue_call()`` sends the others. It needs
        ``progressive_call_invocations`` announced by this session (caller
        role) and by the router (dealer role).

        ``ppt_*`` options (payload passthru mode) need ``payload_passthru_mode``
        announced on both sides, and ``args`` of one binary item, no ``kwargs``;
        the chunks of a progressive call repeat them.
        """
        self._require(ClientState.ESTABLISHED, "call")
        _check_uri(procedure, "procedure")
        opts = _check_dict(options, "options")
        payload = _check_payload(args, kwargs)
        ppt = self._check_ppt(opts, "caller", "dealer", payload)
        if progress:
            opts = {**opts, "progress": True}
        streaming = opts.get("progress") is True
        if streaming:
            # Sending it unannounced is a protocol violation the router aborts for.
            if not _announces(self.roles, "caller", "progressive_call_invocations"):
                raise LocalProtocolError(
                    "this session did not announce progressive_call_invocations (caller role)"
                )
            if not _announces(
                self.welcome_details.get("roles"), "dealer", "progressive_call_invocations"
            ):
                raise LocalProtocolError("the router did not announce progressive_call_invocations")
        request = self._request(lambda r: Call(r, opts, procedure, *payload), 0)
        if streaming:
            self._streams[request] = (procedure, ppt)
        return request

    def continue_call(
        self,
        request_id: int,
        args: Sequence[Any] | None = None,
        kwargs: dict[str, Any] | None = None,
        *,
        progress: bool = False,
    ) -> None:
        """Send the next chunk of progressive call invocation ``request_id``
        (started with ``call(..., progress=True)``): a CALL with the same request
        id. ``progress`` says more chunks follow; without it this is the last.

        The call's options are those of its first CALL (the spec freezes them).
        Raises ``LocalProtocolError`` once the last chunk was sent or the call
        was answered.
        """
        self._require(ClientState.ESTABLISHED, "continue a call")
        stream = self._streams.get(request_id)
        if stream is None:
            raise LocalProtocolError(
                f"no progressive call with request id {request_id} to continue"
            )
        procedure, ppt = stream
        payload = _check_payload(args, kwargs)
        if ppt:
            _check_ppt_payload(ppt, payload)
        options = {**ppt, "progress": True} if progress else ppt
        message = self._encodable(Call(request_id, options, procedure, *payload))
        if not progress:
            del self._streams[request_id]
        self._out.append(message)

    def cancel(self, request_id: int, mode: str | None = None) -> None:
        """Send CANCEL for a pending call (AP/ap_rpc_call_canceling.md).

        ``mode`` is ``"skip"``, ``"kill"`` or ``"killnowait"`` (None lets the
        router choose). The call stays pending until its RESULT or ERROR arrives.
        """
        self._require(ClientState.ESTABLISHED, "cancel")
        entry = self._requests.get(request_id)
        if entry is None or entry[0] is not _T.CALL:
            raise LocalProtocolError(f"no pending call with request id {request_id}")
        if mode not in (None, "skip", "kill", "killnowait"):
            raise LocalProtocolError(f"invalid cancel mode {mode!r}")
        self._out.append(Cancel(request_id, {} if mode is None else {"mode": mode}))

    def publish(
        self,
        topic: str,
        args: Sequence[Any] | None = None,
        kwargs: dict[str, Any] | None = None,
        options: dict[str, Any] | None = None,
        *,
        acknowledge: bool = False,
    ) -> int:
        """Send PUBLISH; return its request id. With ``acknowledge`` the broker answers
        with PublishSucceeded or ErrorReceived; without, nothing comes back."""
        self._require(ClientState.ESTABLISHED, "publish")
        _check_uri(topic, "topic")
        opts = _check_dict(options, "options")
        payload = _check_payload(args, kwargs)
        self._check_ppt(opts, "publisher", "broker", payload)
        if acknowledge:
            opts = {**opts, "acknowledge": True}
        if opts.get("acknowledge") is True:
            return self._request(lambda r: Publish(r, opts, topic, *payload), 0)
        message = self._encodable(Publish(self._next_request.peek(), opts, topic, *payload))
        self._out.append(message)
        return self._next_request()

    def subscribe(self, topic: str, options: dict[str, Any] | None = None) -> int:
        """Send SUBSCRIBE; return its request id. ``options["match"]`` selects
        ``exact`` (default), ``prefix`` or ``wildcard``."""
        self._require(ClientState.ESTABLISHED, "subscribe")
        opts = _check_dict(options, "options")
        _check_uri(topic, "topic", opts.get("match", "exact"))
        return self._request(lambda r: Subscribe(r, opts, topic), 0)

    def unsubscribe(self, subscription_id: int) -> int:
        """Send UNSUBSCRIBE for one of this session's subscriptions."""
        self._require(ClientState.ESTABLISHED, "unsubscribe")
        if subscription_id not in self._subscriptions:
            raise LocalProtocolError(f"no subscription {subscription_id}")
        return self._request(lambda r: Unsubscribe(r, subscription_id), subscription_id)

    def register(self, procedure: str, options: dict[str, Any] | None = None) -> int:
        """Send REGISTER; return its request id. ``options["match"]`` and
        ``options["invoke"]`` select pattern-based and shared registrations."""
        self._require(ClientState.ESTABLISHED, "register")
        opts = _check_dict(options, "options")
        _check_uri(procedure, "procedure", opts.get("match", "exact"))
        return self._request(lambda r: Register(r, opts, procedure), 0)

    def unregister(self, registration_id: int) -> int:
        """Send UNREGISTER for one of this session's registrations."""
        self._require(ClientState.ESTABLISHED, "unregister")
        if registration_id not in self._registrations:
            raise LocalProtocolError(f"no registration {registration_id}")
        return self._request(lambda r: Unregister(r, registration_id), registration_id)

    def yield_result(
        self,
        request_id: int,
        args: Sequence[Any] | None = None,
        kwargs: dict[str, Any] | None = None,
        options: dict[str, Any] | None = None,
        *,
        progress: bool = False,
    ) -> None:
        """Answer INVOCATION ``request_id`` with YIELD (``progress`` for a partial result).

        With ``ppt_*`` options (payload passthru mode) the router may refuse the
        YIELD, e.g. for a caller without the mode: ``ErrorReceived`` with
        ``request_type`` YIELD and ``request_id`` the invocation.
        """
        self._check_invocation(request_id)
        opts = _check_dict(options, "options")
        payload = _check_payload(args, kwargs)
        ppt = self._check_ppt(opts, "callee", "dealer", payload)
        if progress:
            opts = {**opts, "progress": True}
        message = self._encodable(Yield(request_id, opts, *payload))
        if opts.get("progress") is not True:
            self._answered(request_id)
        if ppt:
            _remember(self._ppt_yields, request_id, MAX_PPT_YIELDS)
        self._out.append(message)

    def yield_error(
        self,
        request_id: int,
        error: str,
        args: Sequence[Any] | None = None,
        kwargs: dict[str, Any] | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        """Answer INVOCATION ``request_id`` with ERROR ``error`` (``ppt_*`` keys
        in ``details`` for payload passthru mode, as for ``yield_result``)."""
        self._check_invocation(request_id)
        _check_uri(error, "error")
        dets = _check_dict(details, "details")
        payload = _check_payload(args, kwargs)
        self._check_ppt(dets, "callee", "dealer", payload)
        message = self._encodable(Error(_T.INVOCATION, request_id, dets, error, *payload))
        self._answered(request_id)
        self._out.append(message)

    def _answered(self, request_id: int) -> None:
        if self._invocations.pop(request_id):
            self._end_stream(request_id)

    def _end_stream(self, request_id: int) -> None:
        """Remember invocation ``request_id``, answered while the router may
        still send chunks for it (AP/ap_rpc_progressive_call_invocations.md,
        "Continuations on Completed Calls"): those are dropped."""
        _remember(self._ended_streams, request_id, MAX_ENDED_STREAMS)

    # -- payload passthru mode (AP/payload_passthru_mode.md) ----------------------

    def _check_ppt(
        self,
        options: dict[str, Any],
        role: str,
        router_role: str,
        payload: tuple[list[Any] | None, dict[str, Any] | None],
    ) -> dict[str, Any]:
        """The ``ppt_*`` options of a message to send ({} for none), checked:
        sent unannounced they are a protocol violation the router aborts for."""
        ppt = ppt_options(options)
        if not ppt:
            return ppt
        if not _announces(self.roles, role, PPT_FEATURE):
            raise LocalProtocolError(
                f"this session did not announce payload_passthru_mode ({role} role)"
            )
        if not _announces(self.welcome_details.get("roles"), router_role, PPT_FEATURE):
            raise LocalProtocolError("the router did not announce payload_passthru_mode")
        problem = ppt_problem(ppt, *payload) or _ppt_scheme_problem(ppt)
        if problem is not None:
            raise LocalProtocolError(problem, ErrorURI.INVALID_ARGUMENT)
        return ppt

    def _check_ppt_received(self, details: dict[str, Any], role: str, what: str) -> None:
        # AP/payload_passthru_mode.md: the dealer MUST NOT pass the mode to a
        # peer that did not announce it.
        if ppt_options(details) and not _announces(self.roles, role, PPT_FEATURE):
            self._fail(f"{what} in payload passthru mode, which this session did not announce")

    # -- helpers -------------------------------------------------------------------

    def _require(self, state: ClientState, verb: str) -> None:
        if self.state is not state:
            raise LocalProtocolError(f"cannot {verb} in state {self.state.name}")

    def _check_invocation(self, request_id: int) -> None:
        self._require(ClientState.ESTABLISHED, "answer an invocation")
        if request_id not in self._invocations:
            raise LocalProtocolError(f"no pending invocation {request_id}")

    def _encodable(self, message: Message) -> Message:
        """Encode ``message`` now (the result is cached for ``data_to_send``), so
        that a payload the serializer cannot carry raises ``SerializationError``
        before any state changes."""
        self.serializer.encode(message)
        return message

    def _request(self, build: Callable[[int], Message], extra: int) -> int:
        message = self._encodable(build(self._next_request.peek()))
        request = self._next_request()
        self._requests[request] = (message.type, extra)
        self._out.append(message)
        return request

    @property
    def pending_requests(self) -> dict[int, MessageType]:
        """Requests still waiting for their answer: request id -> request type."""
        return {request: kind for request, (kind, _) in self._requests.items()}

    @property
    def subscriptions(self) -> frozenset[int]:
        """IDs of this session's current subscriptions."""
        return frozenset(self._subscriptions)

    @property
    def registrations(self) -> frozenset[int]:
        """IDs of this session's current registrations."""
        return frozenset(self._registrations)

    @property
    def pending_invocations(self) -> frozenset[int]:
        """INVOCATION request ids not answered yet."""
        return frozenset(self._invocations)

    @property
    def open_calls(self) -> frozenset[int]:
        """Request ids of progressive call invocations that take more chunks
        (``continue_call()``)."""
        return frozenset(self._streams)


def _check_ppt_payload(
    ppt: dict[str, Any], payload: tuple[list[Any] | None, dict[str, Any] | None]
) -> None:
    problem = ppt_problem(ppt, *payload)
    if problem is not None:
        raise LocalProtocolError(problem, ErrorURI.INVALID_ARGUMENT)


def _remember(seen: dict[int, None], key: int, limit: int) -> None:
    """Add ``key`` to the insertion-ordered ``seen``, dropping the oldest beyond ``limit``."""
    seen[key] = None
    if len(seen) > limit:
        del seen[next(iter(seen))]


def _announces(roles: object, role: str, feature: str) -> bool:
    """Tell whether ``roles`` (HELLO/WELCOME ``Details.roles``) announce
    ``roles.<role>.features.<feature>``."""
    if not isinstance(roles, dict):
        return False
    details = roles.get(role)
    if not isinstance(details, dict):
        return False
    features = details.get("features")
    return isinstance(features, dict) and features.get(feature) is True
