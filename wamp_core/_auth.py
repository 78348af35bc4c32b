"""The router's authentication hook (AP/ap_authentication.md), sans-IO.

The router asks an ``Authenticator`` what to do with a HELLO and with each
AUTHENTICATE. The answer is one of three outcomes:

* ``Accept`` -- send WELCOME with this identity;
* ``AuthChallenge`` -- send CHALLENGE and wait for AUTHENTICATE (the object is
  handed back to ``authenticate()``, so it may carry the method's state, such
  as the nonce that was sent);
* ``Deny`` -- send ABORT with this reason.

An authenticator that must ask somebody else (a WAMP procedure, see
``wamp_core._dynauth``) returns ``Pending`` instead and resolves it later.

``AnonymousAuthenticator`` admits everybody as role ``anonymous``. The
authentication methods themselves (ticket, WAMP-CRA, cryptosign, SCRAM) plug in
here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

from ._uri import ErrorURI

__all__ = [
    "Accept",
    "AnonymousAuthenticator",
    "AuthChallenge",
    "AuthOutcome",
    "Authenticator",
    "Deny",
    "HelloInfo",
    "Pending",
]

_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class HelloInfo:
    """What the authenticator learns from a HELLO.

    ``session_id`` is the ID the session will get (some methods sign it);
    ``transport`` is what the adapter reported about the connection (peer
    address, TLS details, ...).
    """

    realm: str
    details: dict[str, Any]
    session_id: int
    transport: dict[str, Any]
    now: float | None = None
    """The router's clock (``Router.now``) when this HELLO or AUTHENTICATE arrived."""

    @property
    def authmethods(self) -> list[str]:
        """HELLO.Details.authmethods, or ``["anonymous"]`` when absent."""
        methods = self.details.get("authmethods")
        if isinstance(methods, list):
            return [m for m in methods if isinstance(m, str)]
        return ["anonymous"]

    @property
    def authid(self) -> str | None:
        """HELLO.Details.authid, if the client gave one."""
        authid = self.details.get("authid")
        return authid if isinstance(authid, str) else None


@dataclass(frozen=True, slots=True)
class Accept:
    """Admit the session with this identity."""

    authid: str
    authrole: str
    authmethod: str = "anonymous"
    authprovider: str = "static"
    authextra: dict[str, Any] = field(default_factory=dict)
    trustlevel: int | None = None
    """AP/ap_rpc_call_trustlevels.md, AP/ap_pubsub_publication_trustlevels.md:
    the trust level the router assigns the session (0 is the lowest), or None."""


@dataclass(frozen=True, slots=True)
class Deny:
    """Refuse the session: ABORT with ``reason`` (and ``message`` in Details).

    The message must not reveal which part of the credentials was wrong.
    """

    reason: str = ErrorURI.AUTHENTICATION_FAILED
    message: str | None = None


@dataclass(frozen=True, slots=True)
class AuthChallenge:
    """Send CHALLENGE ``[4, authmethod, extra]``; ``state`` stays with the router."""

    authmethod: str
    extra: dict[str, Any]
    state: Any = None


AuthOutcome = Accept | Deny | AuthChallenge


class Pending(Generic[_T]):
    """An answer that comes later: ``Pending[AuthOutcome]`` from an
    authenticator, ``Pending[Decision]`` from an authorizer.

    For authentication the router keeps the session waiting (in
    ``CHALLENGING``, where only ABORT from the client is allowed) until
    ``resolve()`` is called, then goes on as if the outcome had been returned;
    for authorization it holds the request, and every later request of that
    session, until the decision comes (see ``wamp_core._authz``).

    ``on_cancel`` runs when nobody waits any more (the client aborted, its
    transport went away, the router shut down); a later ``resolve()`` is then
    ignored. ``resolve()`` may come before the router has seen the ``Pending``
    (even from inside ``hello()``): the outcome is kept until then.
    """

    __slots__ = ("_callback", "_on_cancel", "cancelled", "outcome")

    def __init__(self, on_cancel: Callable[[], None] | None = None) -> None:
        self._on_cancel = on_cancel
        self._callback: Callable[[_T], None] | None = None
        self.outcome: _T | None = None
        """The outcome, once resolved."""
        self.cancelled = False
        """Set once nobody waits for the outcome."""

    @property
    def done(self) -> bool:
        """Resolved or cancelled: a ``resolve()`` now is ignored."""
        return self.outcome is not None or self.cancelled

    def resolve(self, outcome: _T) -> bool:
        """Deliver the outcome; False when it is ignored (already done)."""
        if self.done:
            return False
        self.outcome = outcome
        if self._callback is not None:
            self._callback(outcome)
        return True

    def cancel(self) -> None:
        """Nobody waits any more: run ``on_cancel`` (once, unless resolved)."""
        if self.done:
            return
        self.cancelled = True
        if self._on_cancel is not None:
            self._on_cancel()

    def _bind(self, callback: Callable[[_T], None]) -> None:
        """Called by the one who waits: ``callback`` gets the outcome (at once if known)."""
        self._callback = callback
        if self.outcome is not None:
            callback(self.outcome)


class Authenticator(Protocol):
    """Decides who may join. Implementations must not do I/O."""

    def hello(self, info: HelloInfo) -> AuthOutcome | Pending[AuthOutcome]:
        """Answer a HELLO."""

    def authenticate(
        self, info: HelloInfo, challenge: AuthChallenge, signature: str, extra: dict[str, Any]
    ) -> AuthOutcome | Pending[AuthOutcome]:
        """Answer an AUTHENTICATE sent in reply to ``challenge``."""


class AnonymousAuthenticator:
    """Admit every session that offers ``anonymous`` (or no method) as ``authrole``.

    The authid is the one the client asked for, else one derived from the
    session ID.
    """

    def __init__(self, authrole: str = "anonymous") -> None:
        self.authrole = authrole

    def hello(self, info: HelloInfo) -> AuthOutcome:
        """Accept when ``anonymous`` is among the offered methods."""
        if "anonymous" not in info.authmethods:
            return Deny(
                ErrorURI.NO_MATCHING_AUTH_METHOD, "this realm admits anonymous sessions only"
            )
        return Accept(info.authid or f"anonymous-{info.session_id}", self.authrole)

    def authenticate(
        self, info: HelloInfo, challenge: AuthChallenge, signature: str, extra: dict[str, Any]
    ) -> AuthOutcome:
        """Never reached: this authenticator sends no CHALLENGE."""
        return Deny(message="no challenge was sent")
