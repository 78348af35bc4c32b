"""Dynamic authentication through a WAMP procedure (as Crossbar's dynamic
authenticators), sans-IO.

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

The internal session calls as authid ``router``, authrole ``trusted``; with an
authorizer, that role must be allowed to call the procedure.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ._auth import Accept, AuthChallenge, AuthOutcome, Deny, HelloInfo, Pending
from ._messages import Error, Result
from ._uri import ErrorURI

if TYPE_CHECKING:
    from ._router import Router, Timer

__all__ = ["ProcedureAuthenticator"]

_FAILED = "authentication failed"


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

    def hello(self, info: HelloInfo) -> AuthOutcome | Pending:
        """Call the procedure (after a ticket CHALLENGE in ``ticket`` mode)."""
        if not self.ticket:
            return self._ask(info, {}, "dynamic")
        if "ticket" not in info.authmethods:
            return Deny(ErrorURI.NO_MATCHING_AUTH_METHOD, "this realm requires a ticket")
        return AuthChallenge("ticket", {})

    def authenticate(
        self, info: HelloInfo, challenge: AuthChallenge, signature: str, extra: dict[str, Any]
    ) -> AuthOutcome | Pending:
        """Call the procedure with the ticket."""
        return self._ask(info, {"ticket": signature}, "ticket")

    def _ask(self, info: HelloInfo, more: dict[str, Any], authmethod: str) -> Pending:
        details: dict[str, Any] = {
            "authmethods": info.authmethods,
            "session": info.session_id,
            "transport": info.transport,
        }
        for key in ("authid", "authextra"):
            if key in info.details:
                details[key] = info.details[key]
        details.update(more)
        router = self.router
        timer: Timer | None = None

        def on_reply(reply: Result | Error) -> None:
            if timer is not None:
                timer.cancel()
            pending.resolve(self._decide(info, reply, authmethod))

        def on_cancel() -> None:
            # Only a pending that was not resolved at once can be cancelled.
            assert timer is not None
            timer.cancel()
            cancel_call()

        def on_timeout() -> None:
            cancel_call()
            pending.resolve(Deny(ErrorURI.AUTHENTICATION_FAILED, _FAILED))

        pending = Pending(on_cancel)
        cancel_call: Callable[[], None] = router.call_procedure(
            self.realm, self.procedure, on_reply, args=[info.realm, info.authid, details]
        )
        if not pending.done:
            timer = router.call_at(router.now + self.timeout, on_timeout)
        return pending

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
