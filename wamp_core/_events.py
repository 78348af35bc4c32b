"""Events the client session reports (``ClientSession.receive_data``).

Each is a frozen dataclass. Events that answer a request carry the
``request_id`` the request verb returned, so an embedder can pair them.
Application errors are events too (``ErrorReceived``), never exceptions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = [
    "ChallengeReceived",
    "ErrorReceived",
    "EventReceived",
    "InterruptReceived",
    "InvocationReceived",
    "PublishSucceeded",
    "RegisterSucceeded",
    "RegistrationRevoked",
    "ResultReceived",
    "SessionAborted",
    "SessionClosed",
    "SessionEvent",
    "SessionJoined",
    "SubscribeSucceeded",
    "SubscriptionRevoked",
    "UnregisterSucceeded",
    "UnsubscribeSucceeded",
]


class SessionEvent:
    """Base class of all client session events."""

    __slots__ = ()


@dataclass(frozen=True, slots=True)
class SessionJoined(SessionEvent):
    """WELCOME: the session is established. ``details`` is WELCOME.Details."""

    session_id: int
    details: dict[str, Any]

    @property
    def realm(self) -> str | None:
        """The realm the router reports (WELCOME.Details.realm), if it does."""
        value = self.details.get("realm")
        return value if isinstance(value, str) else None

    @property
    def authid(self) -> str | None:
        """The authid the router assigned, if it reports one."""
        value = self.details.get("authid")
        return value if isinstance(value, str) else None

    @property
    def authrole(self) -> str | None:
        """The authrole the router assigned, if it reports one."""
        value = self.details.get("authrole")
        return value if isinstance(value, str) else None

    @property
    def router_roles(self) -> dict[str, Any]:
        """WELCOME.Details.roles (``broker``/``dealer`` with their features)."""
        value = self.details.get("roles")
        return value if isinstance(value, dict) else {}


@dataclass(frozen=True, slots=True)
class ChallengeReceived(SessionEvent):
    """CHALLENGE: answer with ``ClientSession.authenticate()`` (or ``abort()``)."""

    authmethod: str
    extra: dict[str, Any]


@dataclass(frozen=True, slots=True)
class SessionAborted(SessionEvent):
    """ABORT from the router: the session was refused or torn down."""

    reason: str
    details: dict[str, Any]
    args: list[Any] | None = None
    kwargs: dict[str, Any] | None = None

    @property
    def message(self) -> str | None:
        """ABORT.Details.message, the router's human-readable explanation."""
        value = self.details.get("message")
        return value if isinstance(value, str) else None


@dataclass(frozen=True, slots=True)
class SessionClosed(SessionEvent):
    """The GOODBYE exchange finished; ``reason`` is the router's GOODBYE reason.

    ``initiated_by_router`` tells whether the router sent GOODBYE first (the
    session echoed it) or answered ours.
    """

    reason: str
    details: dict[str, Any]
    initiated_by_router: bool


@dataclass(frozen=True, slots=True)
class ResultReceived(SessionEvent):
    """RESULT for a call; ``progress`` is True for a progressive (non-final) result."""

    request_id: int
    args: list[Any] | None
    kwargs: dict[str, Any] | None
    details: dict[str, Any]
    progress: bool = False


@dataclass(frozen=True, slots=True)
class ErrorReceived(SessionEvent):
    """ERROR answering one of this session's requests (``request_type`` says which kind)."""

    request_type: int
    request_id: int
    error: str
    args: list[Any] | None
    kwargs: dict[str, Any] | None
    details: dict[str, Any]


@dataclass(frozen=True, slots=True)
class SubscribeSucceeded(SessionEvent):
    """SUBSCRIBED."""

    request_id: int
    subscription_id: int


@dataclass(frozen=True, slots=True)
class UnsubscribeSucceeded(SessionEvent):
    """UNSUBSCRIBED answering an UNSUBSCRIBE."""

    request_id: int
    subscription_id: int


@dataclass(frozen=True, slots=True)
class SubscriptionRevoked(SessionEvent):
    """UNSUBSCRIBED in its revocation form (AP/ap_pubsub_subscription_revocation.md)."""

    subscription_id: int
    reason: str | None


@dataclass(frozen=True, slots=True)
class PublishSucceeded(SessionEvent):
    """PUBLISHED: the broker acknowledged a publication (``acknowledge=True``)."""

    request_id: int
    publication_id: int


@dataclass(frozen=True, slots=True)
class EventReceived(SessionEvent):
    """EVENT on one of this session's subscriptions."""

    subscription_id: int
    publication_id: int
    args: list[Any] | None
    kwargs: dict[str, Any] | None
    details: dict[str, Any]

    @property
    def topic(self) -> str | None:
        """EVENT.Details.topic: the concrete topic (set for pattern subscriptions)."""
        value = self.details.get("topic")
        return value if isinstance(value, str) else None


@dataclass(frozen=True, slots=True)
class RegisterSucceeded(SessionEvent):
    """REGISTERED."""

    request_id: int
    registration_id: int


@dataclass(frozen=True, slots=True)
class UnregisterSucceeded(SessionEvent):
    """UNREGISTERED answering an UNREGISTER."""

    request_id: int
    registration_id: int


@dataclass(frozen=True, slots=True)
class RegistrationRevoked(SessionEvent):
    """UNREGISTERED in its revocation form (AP/ap_rpc_registration_revocation.md)."""

    registration_id: int
    reason: str | None


@dataclass(frozen=True, slots=True)
class InvocationReceived(SessionEvent):
    """INVOCATION: answer with ``ClientSession.yield_result()`` or ``yield_error()``."""

    request_id: int
    registration_id: int
    args: list[Any] | None
    kwargs: dict[str, Any] | None
    details: dict[str, Any]

    @property
    def procedure(self) -> str | None:
        """INVOCATION.Details.procedure (the URI called, for pattern registrations)."""
        value = self.details.get("procedure")
        return value if isinstance(value, str) else None


@dataclass(frozen=True, slots=True)
class InterruptReceived(SessionEvent):
    """INTERRUPT: the caller canceled invocation ``request_id`` (``mode`` per the spec)."""

    request_id: int
    options: dict[str, Any]

    @property
    def mode(self) -> str | None:
        """INTERRUPT.Options.mode (``kill`` or ``killnowait``)."""
        value = self.options.get("mode")
        return value if isinstance(value, str) else None
