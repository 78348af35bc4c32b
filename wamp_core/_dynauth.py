"""Dynamic authentication and authorization through WAMP procedures (as
Crossbar.io's dynamic authenticators and authorizers), sans-IO.

Authentication
--------------

A trusted session registers a procedure (say ``com.example.authenticate``) in
some realm. On each HELLO, ``ProcedureAuthenticator`` has the router call it
from its internal session with ``[realm, authid, details]`` and keeps the new
session waiting (``Pending``) until the answer comes:

* a RESULT whose first argument (or, without arguments, whose keyword
  arguments) is a dict ``{"role": ..., "authid"?: ..., "authprovider"?: ...,
  "authmethod"?: ..., "extra"?: {...}}`` -- or just the role as a string --
  admits the session (authid: the result's, else the one in HELLO, else one
  derived from the session ID);
* an ERROR (``wamp.error.no_such_procedure`` when nobody registered it), a
  malformed result, or no answer within ``timeout`` seconds refuses it with
  ``wamp.error.authentication_failed`` and a message that tells nothing more.

``details`` holds HELLO's ``authmethods``, ``authid`` and ``authextra`` (when
given), the ``session`` ID the client will get and the ``transport`` details
the adapter reported. With ``ticket=True`` the router first sends CHALLENGE
``ticket`` and calls the procedure with the ticket in ``details["ticket"]``
(the default authmethod is then ``ticket``).

Authorization
-------------

``ProcedureAuthorizer`` is an ``AuthorizeFunction`` (wrap it in a
``DynamicAuthorizer``, which caches its decisions) that calls a procedure with
``[session, uri, action, options]``: ``session`` is a dict with the session's
``session`` ID, ``realm``, ``authid``, ``authrole``, ``authmethod``,
``authprovider`` and ``authextra``; ``action`` is ``call``, ``register``,
``publish`` or ``subscribe``; ``options`` those of the request. The answer:

* ``true`` / ``false`` -- allowed / refused (``wamp.error.not_authorized``), not
  cached, no identity disclosed;
* a dict ``{"allow": bool, "disclose"?: bool, "cache"?: bool}`` (Crossbar.io's
  form; ``disclose`` and ``cache`` default to false);
* an ERROR, anything else, or no answer within ``timeout`` seconds fails the
  request with ``wamp.error.authorization_failed`` (not cached).

The procedure is called in the acting session's realm unless ``realm`` names
another. The session that provides it must be able to register it without
it: give that session a role the procedure does not decide for.

The router calls from an internal session (authid ``router``, authrole
``trusted``), which no authorizer is asked about.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from ._auth import Accept, AuthChallenge, AuthOutcome, Deny, HelloInfo, Pending
from ._authz import AUTHORIZER_FAILED, Action, Decision
from ._messages import Error, Result
from ._uri import ErrorURI

if TYPE_CHECKING:
    from ._router import Router, RouterSession, Timer

__all__ = ["ProcedureAuthenticator", "ProcedureAuthorizer"]

_FAILED = "authentication failed"


_T = TypeVar("_T")


def _ask_procedure(
    router: Router,
    realm: str,
    procedure: str,
    args: list[Any],
    *,
    timeout: float,
    decide: Callable[[Result | Error], _T],
    failed: _T,
) -> Pending[_T]:
    """Call ``procedure`` in ``realm`` from the router with ``args``; the
    ``Pending`` resolves to ``decide(reply)``, or to ``failed`` when no reply
    came within ``timeout`` seconds (the call is then cancelled). Cancelling the
    ``Pending`` cancels the call."""
    timer: Timer | None = None

    def on_reply(reply: Result | Error) -> None:
        if timer is not None:
            timer.cancel()
        pending.resolve(decide(reply))

    def on_cancel() -> None:
        # Only a pending that was not resolved at once can be cancelled.
        assert timer is not None
        timer.cancel()
        cancel_call()

    def on_timeout() -> None:
        cancel_call()
        pending.resolve(failed)

    pending: Pending[_T] = Pending(on_cancel)
    cancel_call = router.call_procedure(realm, procedure, on_reply, args=args)
    if not pending.done:
        timer = router.call_at(router.now + timeout, on_timeout)
    return pending


class ProcedureAuthenticator:
    """Admit or refuse sessions by calling ``procedure`` in ``realm`` (see the
    module's documentation)."""

    def __init__(
        self,
        router: Router,
        realm: str,
        procedure: str,
        *,
        timeout: float = 10.0,
        ticket: bool = False,
    ) -> None:
        self.router = router
        self.realm = realm
        self.procedure = procedure
        self.timeout = timeout
        self.ticket = ticket

    def hello(self, info: HelloInfo) -> AuthOutcome | Pending[AuthOutcome]:
        """Call the procedure (after a ticket CHALLENGE in ``ticket`` mode)."""
        if not self.ticket:
            return self._ask(info, {}, "dynamic")
        if "ticket" not in info.authmethods:
            return Deny(ErrorURI.NO_MATCHING_AUTH_METHOD, "this realm requires a ticket")
        return AuthChallenge("ticket", {})

    def authenticate(
        self, info: HelloInfo, challenge: AuthChallenge, signature: str, extra: dict[str, Any]
    ) -> AuthOutcome | Pending[AuthOutcome]:
        """Call the procedure with the ticket."""
        return self._ask(info, {"ticket": signature}, "ticket")

    def _ask(self, info: HelloInfo, more: dict[str, Any], authmethod: str) -> Pending[AuthOutcome]:
        details: dict[str, Any] = {
            "authmethods": info.authmethods,
            "session": info.session_id,
            "transport": info.transport,
        }
        for key in ("authid", "authextra"):
            if key in info.details:
                details[key] = info.details[key]
        details.update(more)
        return _ask_procedure(
            self.router,
            self.realm,
            self.procedure,
            [info.realm, info.authid, details],
            timeout=self.timeout,
            decide=lambda reply: self._decide(info, reply, authmethod),
            failed=Deny(ErrorURI.AUTHENTICATION_FAILED, _FAILED),
        )

    @staticmethod
    def _decide(info: HelloInfo, reply: Result | Error, authmethod: str) -> AuthOutcome:
        deny = Deny(ErrorURI.AUTHENTICATION_FAILED, _FAILED)
        if isinstance(reply, Error):
            return deny
        answer: Any = reply.args[0] if reply.args else reply.kwargs
        if isinstance(answer, str):
            answer = {"role": answer}
        if not isinstance(answer, dict):
            return deny
        role = answer.get("role")
        authid = answer.get("authid", info.authid or f"dynamic-{info.session_id}")
        method = answer.get("authmethod", authmethod)
        provider = answer.get("authprovider", "dynamic")
        extra = answer.get("extra", {})
        if not (
            isinstance(role, str)
            and all(isinstance(v, str) and v for v in (role, authid, method, provider))
            and isinstance(extra, dict)
        ):
            return deny
        return Accept(authid, role, method, provider, extra)


class ProcedureAuthorizer:
    """An ``AuthorizeFunction`` that asks ``procedure`` (see the module's
    documentation); use it as ``DynamicAuthorizer(ProcedureAuthorizer(router, uri))``."""

    def __init__(
        self,
        router: Router,
        procedure: str,
        *,
        realm: str | None = None,
        timeout: float = 10.0,
    ) -> None:
        self.router = router
        self.procedure = procedure
        self.realm = realm
        self.timeout = timeout

    def __call__(
        self, session: RouterSession, uri: str, action: Action, options: dict[str, Any]
    ) -> Pending[Decision]:
        """Call the procedure; the decision comes with its answer."""
        realm = self.realm or session.realm_name
        assert realm is not None  # only established sessions are authorized
        details = {
            "session": session.session_id,
            "realm": session.realm_name,
            "authid": session.authid,
            "authrole": session.authrole,
            "authmethod": session.authmethod,
            "authprovider": session.authprovider,
            "authextra": session.authextra,
        }
        return _ask_procedure(
            self.router,
            realm,
            self.procedure,
            [details, uri, action, options],
            timeout=self.timeout,
            decide=_decision,
            failed=AUTHORIZER_FAILED,
        )


def _decision(reply: Result | Error) -> Decision:
    if isinstance(reply, Error) or not reply.args:
        return AUTHORIZER_FAILED
    answer = reply.args[0]
    if type(answer) is bool:
        return Decision(answer, cache=False)
    if not isinstance(answer, dict):
        return AUTHORIZER_FAILED
    allow, disclose, cache = (
        answer.get("allow"), answer.get("disclose", False), answer.get("cache", False)
    )  # fmt: skip
    if type(allow) is not bool or type(disclose) is not bool or type(cache) is not bool:
        return AUTHORIZER_FAILED
    return Decision(allow, disclose, cache)
