"""The dealer: routed Remote Procedure Calls inside one realm
(BP/remote_procedure_call.md).

Also the RPC features of the Advanced Profile (AP/ap_rpc_*.md): progressive call
results and invocations, call timeouts (through the router's clock), call
canceling, call rerouting, caller identification, call trust levels,
pattern-based and shared registrations, registration revocation; and payload
passthru mode (AP/payload_passthru_mode.md), whose checks the broker and the
client session share from here.
"""

from __future__ import annotations

import random
from collections.abc import Collection
from typing import TYPE_CHECKING, Any, NoReturn

from ._auth import Pending
from ._errors import LocalProtocolError, ProcedureError
from ._messages import (
    Call,
    Cancel,
    Error,
    Interrupt,
    Invocation,
    MessageType,
    Register,
    Registered,
    Result,
    Unregister,
    Unregistered,
    Yield,
)
from ._uri import MATCH_POLICIES, ErrorURI, MatchPolicy, PatternMap, is_reserved_uri, is_valid_uri

if TYPE_CHECKING:
    from ._authz import Action, Decision
    from ._router import ProcedureHandler, Router, RouterSession, Timer

__all__ = [
    "CANCEL_MODES",
    "DEFAULT_CALL_RECORDS",
    "INVOKE_POLICIES",
    "LIMIT_ERROR",
    "PPT_FEATURE",
    "PPT_OPTIONS",
    "AuthorizationDeferred",
    "Dealer",
    "PendingCall",
    "Registration",
    "authorize",
    "check_ppt_announced",
    "ppt_options",
    "ppt_problem",
    "refusal",
]

_T = MessageType

INVOKE_POLICIES = ("single", "roundrobin", "random", "first", "last")
"""AP/ap_rpc_shared_registration.md."""

CANCEL_MODES = ("skip", "kill", "killnowait")
"""AP/ap_rpc_call_canceling.md."""

DEFAULT_CANCEL_MODE = "killnowait"
# The spec names no default mode; killnowait answers the caller at once and
# still tells the callee to stop, which is what a caller that gives up expects.

PPT_FEATURE = "payload_passthru_mode"
"""The feature flag of payload passthru mode, for every role (AP/payload_passthru_mode.md)."""

PPT_OPTIONS = ("ppt_scheme", "ppt_serializer", "ppt_cipher", "ppt_keyid")
"""The payload passthru options of CALL, PUBLISH, YIELD and a callee's ERROR,
copied into the Details of INVOCATION, EVENT, RESULT and the caller's ERROR."""

_PPT_KEYS = frozenset(PPT_OPTIONS)

LIMIT_ERROR = ErrorURI.NOT_AUTHORIZED
"""The ERROR (or ABORT) reason of a request refused by a resource limit of the
router (``Router.max_pending_calls``, ``max_subscriptions`` ...)."""
# The spec has no URI for a resource limit (BP/uri_reference.md, AP/uris.md).
# wamp.error.not_authorized, "not authorized to perform the operation", is the
# closest, and every client knows it; the message names the limit.


def _at_limit(subject: str, limit: int, things: str) -> str:
    """The message of a refusal by a limit: "the session is at its limit of 2 calls"."""
    return f"{subject} is at its limit of {limit} {things[:-1] if limit == 1 else things}"


DEFAULT_CALL_RECORDS = 1000
"""How many calls that are over a session's records keep when
``Router.max_pending_calls`` is None (with it: that many): orphaned
invocations per callee, ended progressive call invocations per caller. The
oldest beyond it are forgotten."""


def ppt_options(options: dict[str, Any]) -> dict[str, Any]:
    """The payload passthru options in ``options`` (Options or Details), {} when
    there are none. Any of the four keys means the message uses the mode."""
    if not options or _PPT_KEYS.isdisjoint(options):
        return {}
    return {key: options[key] for key in PPT_OPTIONS if key in options}


def ppt_problem(
    ppt: dict[str, Any], args: list[Any] | None, kwargs: dict[str, Any] | None
) -> str | None:
    """What makes a payload passthru message malformed, or None.

    AP/payload_passthru_mode.md: the attributes are strings, ``ppt_scheme`` is
    required (the router recognises the mode by its non-empty value), and the
    payload is one binary item in Args with ArgumentsKw absent or empty. The
    values themselves are not judged: "a Router shall not inspect and analyze
    the ppt_ options" (custom schemes bring their own serializers and ciphers).
    """
    for key, value in ppt.items():
        if type(value) is not str:
            return f"{key} must be a string, got {type(value).__name__}"
    if not ppt.get("ppt_scheme"):
        return "payload passthru options need a non-empty ppt_scheme"
    if (
        args is None
        or len(args) != 1
        or not isinstance(args[0], (bytes, bytearray, memoryview))
        or kwargs
    ):
        return "a payload passthru payload must be one binary item in Args, without ArgumentsKw"
    return None


def check_ppt_announced(
    router: Router, session: RouterSession, role: str, router_role: str, what: str
) -> None:
    """Fail ``session`` (protocol violation) unless it announced payload passthru
    mode for ``role`` and the router for ``router_role``: AP/payload_passthru_mode.md
    makes both cases PROTOCOL ERRORS."""
    if not session.has_feature(role, PPT_FEATURE):
        _ppt_violation(router, session, what, f"the {role} did not announce it")
    features = router.roles.get(router_role, {}).get("features", {})
    if features.get(PPT_FEATURE) is not True:
        _ppt_violation(router, session, what, f"the {router_role} does not support it")


def _ppt_violation(router: Router, session: RouterSession, what: str, why: str) -> NoReturn:
    router.fail(session, f"{what} with payload passthru options, but {why}")


class AuthorizationDeferred(Exception):
    """Raised by ``authorize`` while the authorizer's decision is ``Pending``.

    The request has changed nothing yet (every handler asks before it acts):
    the router holds it, with the session's later requests, and runs it again
    once the decision is known, which ``authorize`` then answers from
    ``RouterSession._decided`` (see ``Router._defer``).
    """

    def __init__(self, key: tuple[str, str, str], pending: Pending[Decision]) -> None:
        super().__init__(key)
        self.key = key
        self.pending = pending


def authorize(
    router: Router, session: RouterSession, uri: str, action: Action, options: dict[str, Any]
) -> Decision | None:
    """The router's authorizer's decision on ``session`` doing ``action`` on
    ``uri`` (see wamp_core._authz); None when the router has no authorizer
    (everything is allowed, identity is disclosed on request) and for the
    router's own internal sessions, which it trusts. Raises
    ``AuthorizationDeferred`` while the decision is pending."""
    authorizer = router.authorizer
    if authorizer is None or session._sink is not None:
        return None
    match = options.get("match", "exact") if action in ("register", "subscribe") else "exact"
    key = (uri, action, match)
    decided = session._decided
    if key in decided:
        return decided[key]
    decision = authorizer.authorize(session, uri, action, options)
    if isinstance(decision, Pending):
        if decision.outcome is not None:  # resolved at once
            return decision.outcome
        if decision.cancelled:
            # _authz imports _router, which imports this module.
            from ._authz import AUTHORIZER_FAILED  # noqa: PLC0415

            return AUTHORIZER_FAILED
        raise AuthorizationDeferred(key, decision)
    return decision


def refusal(
    decision: Decision | None, action: Action, uri: str, disclose_me: bool = False
) -> tuple[str, str] | None:
    """The (error URI, message) that refuses a request after ``decision``, or None.

    ``disclose_me``: a CALL or PUBLISH asks to disclose its identity, which a
    decision without ``disclose`` refuses with ``wamp.error.option_disallowed.disclose_me``
    (AP/ap_uris.md; AP/ap_rpc_caller_identification.md's example URI
    ``wamp.error.disclose_me.not_allowed`` is a spec bug).
    """
    if decision is None:
        return None
    if not decision.allow:
        return decision.reason, f"not authorized to {action} {uri!r}"
    if disclose_me and not decision.disclose:
        return (
            ErrorURI.OPTION_DISALLOWED_DISCLOSE_ME,
            f"not allowed to disclose your identity when you {action} {uri!r}",
        )
    return None


DEFAULT_GRACE_PERIOD = 60.0
"""Seconds a progressive call invocation is remembered after it ended while the
caller could still be sending chunks (AP/ap_rpc_progressive_call_invocations.md,
"Verification of CALL Request IDs"): chunks arriving meanwhile are dropped."""


class Registration:
    """One registration: a (procedure, match policy) pair and its callees."""

    __slots__ = (
        "callees",
        "created",
        "disclose_caller",
        "forward_timeout",
        "id",
        "invoke",
        "match",
        "next_index",
        "uri",
    )

    def __init__(
        self,
        registration_id: int,
        uri: str,
        match: MatchPolicy,
        invoke: str,
        created: float = 0.0,
    ) -> None:
        self.id = registration_id
        self.uri = uri
        self.match = match
        self.invoke = invoke
        self.created = created
        """Router time (``Router.now``) when the registration was created."""
        self.callees: list[RouterSession] = []  # in registration order
        self.next_index = 0  # round-robin position
        self.disclose_caller: set[RouterSession] = set()
        """Callees that registered with ``disclose_caller`` (AP/ap_rpc_caller_identification.md)."""
        self.forward_timeout: set[RouterSession] = set()
        """Callees that registered with ``forward_timeout`` (AP/ap_rpc_call_timeout.md)."""


class PendingCall:
    """A call in flight: known to the caller by ``request``, to the callee by
    ``invocation``. ``orphaned`` is set once the caller no longer waits (it left,
    canceled with skip/killnowait, or the call timed out): the dealer then
    keeps only the INVOCATION ID, among the callee's orphans, and drops the
    callee's late answer.

    ``call`` is the initiating CALL (without its payload for a progressive call
    invocation, whose payload comes in chunks); ``details`` the INVOCATION
    details for the current callee, except ``progress``; ``streaming`` tells
    whether the caller may still send chunks; ``tried`` holds the callees that
    answered ``wamp.error.unavailable``.
    """

    __slots__ = (
        "call",
        "callee",
        "caller",
        "chunked",
        "details",
        "disclose",
        "interrupted",
        "invocation",
        "orphaned",
        "progress",
        "registration",
        "replied",
        "request",
        "streaming",
        "timeout",
        "timer",
        "tried",
    )

    def __init__(
        self,
        caller: RouterSession,
        call: Call,
        registration: Registration,
        timeout: int,
        chunked: bool,
        *,
        disclose: bool | None = None,
    ) -> None:
        self.caller = caller
        self.request = call.request
        self.call = call
        self.registration = registration
        self.timeout = timeout
        """CALL.Options.timeout in milliseconds (0: none)."""
        self.chunked = chunked
        """The call uses progressive call invocations."""
        self.streaming = chunked
        self.callee: RouterSession = caller  # set by Dealer._invoke
        self.invocation = 0
        self.details: dict[str, Any] = {}
        self.progress = False  # the callee was asked for progressive results
        self.replied = False  # a progressive RESULT went to the caller
        self.orphaned = False
        self.interrupted = False
        self.timer: Timer | None = None
        self.tried: set[RouterSession] = set()
        self.disclose = disclose
        """The authorizer's ``Decision.disclose`` for the call; None without an
        authorizer (the caller is disclosed on request)."""


class Dealer:
    """Registrations and calls of one realm."""

    def __init__(self, router: Router, rng: random.Random) -> None:
        self._router = router
        self._rng = rng
        self._table: PatternMap[Registration] = PatternMap()
        self.registrations: dict[int, Registration] = {}
        """Live registrations by ID."""
        self.grace_period = DEFAULT_GRACE_PERIOD
        """Seconds an ended progressive call invocation is remembered (see
        ``DEFAULT_GRACE_PERIOD``)."""
        # session -> {CALL request ID: (procedure, router time it ended)}
        self._ended: dict[RouterSession, dict[int, tuple[str, float]]] = {}

    # -- registrations -----------------------------------------------------------

    def register(self, session: RouterSession, message: Register) -> None:
        """Handle REGISTER: REGISTERED, or ERROR (invalid_uri, invalid_argument,
        procedure_already_exists; not_authorized beyond ``Router.max_registrations``)."""
        router = self._router
        options = message.options
        match = options.get("match", "exact")
        invoke = options.get("invoke", "single")
        registration = None
        error = ErrorURI.INVALID_ARGUMENT
        if match not in MATCH_POLICIES:
            problem = f"unknown match policy {match!r}"
        elif invoke not in INVOKE_POLICIES:
            problem = f"unknown invocation policy {invoke!r}"
        elif not is_valid_uri(message.procedure, match) or is_reserved_uri(message.procedure):
            problem = f"invalid procedure URI {message.procedure!r} for match policy {match!r}"
            error = ErrorURI.INVALID_URI
        elif (
            refused := refusal(
                authorize(router, session, message.procedure, "register", options),
                "register",
                message.procedure,
            )
        ) is not None:
            error, problem = refused
        elif (
            router.max_registrations is not None
            and len(session.registrations) >= router.max_registrations
        ):
            error = LIMIT_ERROR
            problem = _at_limit("the session", router.max_registrations, "registrations")
            router.limit_reached(session, "max_registrations", problem)
        else:
            registration = self._table.get(message.procedure, match)
            error = ErrorURI.PROCEDURE_ALREADY_EXISTS
            if registration is None:
                registration = Registration(
                    router.new_router_id(self.registrations),
                    message.procedure,
                    match,
                    invoke,
                    router.now,
                )
                self._table.set(message.procedure, match, registration)
                self.registrations[registration.id] = registration
                for observer in router.observers:
                    observer.registration_created(session, registration)
            elif "single" in (invoke, registration.invoke) or invoke != registration.invoke:
                # AP/ap_rpc_shared_registration.md: a second registration must use
                # the same shared policy; the spec names no error URI for a mismatch.
                problem = f"procedure {message.procedure!r} is already registered"
                registration = None
            elif session in registration.callees:
                problem = f"this session already registered {message.procedure!r}"
                registration = None
        if registration is None:
            router.send_error(session, _T.REGISTER, message.request, error, problem)
            return
        registration.callees.append(session)
        # Both options belong to this callee's REGISTER, not to the (shared)
        # registration as a whole.
        if options.get("disclose_caller") is True:
            registration.disclose_caller.add(session)
        if options.get("forward_timeout") is True:
            registration.forward_timeout.add(session)
        session.registrations[registration.id] = None
        router.send(session, Registered(message.request, registration.id))
        for observer in router.observers:
            observer.registered(session, registration)

    def unregister(self, session: RouterSession, message: Unregister) -> None:
        """Handle UNREGISTER: UNREGISTERED, or ERROR no_such_registration."""
        registration = self.registrations.get(message.registration)
        if registration is None or session not in registration.callees:
            self._router.send_error(
                session, _T.UNREGISTER, message.request, ErrorURI.NO_SUCH_REGISTRATION,
                f"no registration {message.registration} for this session",
            )  # fmt: skip
            return
        self._drop(session, registration)
        self._router.send(session, Unregistered(message.request))

    def revoke(self, registration_id: int, reason: str | None = None) -> bool:
        """Revoke registration ``registration_id`` from all its callees
        (AP/ap_rpc_registration_revocation.md); False if there is no such registration.

        Each callee that announced ``registration_revocation`` gets
        ``[UNREGISTERED, 0, {"registration": id, "reason": reason}]``; the others
        are removed silently (the spec forbids sending it to them). Observers
        hear ``unregistered`` per callee, then ``registration_deleted``. Calls
        already invoked still finish.
        """
        registration = self._revocable(registration_id, reason)
        if registration is None:
            return False
        for callee in list(registration.callees):
            self._revoke(callee, registration, reason)
        return True

    def revoke_callee(
        self, registration_id: int, session: RouterSession, reason: str | None = None
    ) -> bool:
        """Revoke ``session``'s part of a (shared) registration, as ``revoke()``
        does for all callees; False if ``session`` is not one of its callees."""
        registration = self._revocable(registration_id, reason)
        if registration is None or session not in registration.callees:
            return False
        self._revoke(session, registration, reason)
        return True

    def _revocable(self, registration_id: int, reason: str | None) -> Registration | None:
        if reason is not None and not isinstance(reason, str):
            raise LocalProtocolError("the revocation reason must be a string")
        return self.registrations.get(registration_id)

    def _revoke(
        self, callee: RouterSession, registration: Registration, reason: str | None
    ) -> None:
        if callee.has_feature("callee", "registration_revocation"):
            details: dict[str, Any] = {"registration": registration.id}
            if reason is not None:
                details["reason"] = reason
            self._router.send(callee, Unregistered(0, details))
        self._drop(callee, registration)

    def _drop(self, session: RouterSession, registration: Registration) -> None:
        registration.callees.remove(session)
        registration.disclose_caller.discard(session)
        registration.forward_timeout.discard(session)
        session.registrations.pop(registration.id, None)
        observers = self._router.observers
        for observer in observers:
            observer.unregistered(session, registration)
        if not registration.callees:
            self._table.remove(registration.uri, registration.match)
            del self.registrations[registration.id]
            for observer in observers:
                observer.registration_deleted(session, registration)

    # -- calls ---------------------------------------------------------------------

    def continues_call(self, session: RouterSession, request: int) -> bool:
        """Tell whether a CALL with ``request`` belongs to a call ``session``
        already made, so that it is no new request and the router must not apply
        its sequential request-ID check (AP/ap_rpc_progressive_call_invocations.md,
        "Verification of CALL Request IDs").

        True for a call in progress (``call()`` then forwards the chunk, or
        fails the session if that call takes no chunks) and for a progressive
        call invocation that ended within ``grace_period`` while the caller
        could still be sending (``call()`` then drops the late chunk).
        """
        return request in session.calls or self._ended_call(session, request) is not None

    def call(self, session: RouterSession, message: Call) -> None:
        """Handle CALL: INVOCATION to a callee, or ERROR (invalid_uri,
        invalid_argument, no_such_procedure, feature_not_supported; not_authorized
        beyond ``Router.max_pending_calls``); a CALL that continues a progressive
        call invocation is forwarded to its callee."""
        router = self._router
        ppt = ppt_options(message.options)
        if ppt:
            check_ppt_announced(router, session, "caller", "dealer", "CALL")
        pending = session.calls.get(message.request)
        if pending is not None:
            self._continue(session, pending, message)
            return
        ended = self._ended_call(session, message.request)
        if ended is not None:
            self._check_procedure(session, message, ended)
            return  # a late chunk of a call that is over: dropped silently
        options = message.options
        chunked = options.get("progress") is True
        if chunked:
            # AP/ap_rpc_progressive_call_invocations.md: progress from a caller
            # that did not announce the feature, or to a dealer that did not,
            # is a protocol error.
            if not session.has_feature("caller", "progressive_call_invocations"):
                router.fail(
                    session, "CALL with progress, but the caller did not announce"
                    " progressive_call_invocations",
                )  # fmt: skip
            features = router.roles.get("dealer", {}).get("features", {})
            if features.get("progressive_call_invocations") is not True:
                router.fail(session, "CALL with progress, but the dealer does not support it")
        if not is_valid_uri(message.procedure):
            self._refuse(
                session, message, ErrorURI.INVALID_URI,
                f"invalid procedure URI {message.procedure!r}",
            )  # fmt: skip
            return
        # Before anything else is looked at: an unauthorized caller learns
        # nothing (not even whether the procedure exists). Router-provided
        # procedures (the meta API) are authorized the same way.
        decision = authorize(router, session, message.procedure, "call", options)
        refused = (
            None
            if decision is None
            else refusal(decision, "call", message.procedure, options.get("disclose_me") is True)
        )
        if refused is not None:
            self._refuse(session, message, *refused)
            return
        timeout = options.get("timeout", 0)
        if type(timeout) is not int or timeout < 0:
            # AP/ap_rpc_call_timeout.md: an integer number of milliseconds.
            self._refuse(
                session, message, ErrorURI.INVALID_ARGUMENT,
                f"invalid timeout {timeout!r}: must be a non-negative integer (milliseconds)",
            )  # fmt: skip
            return
        if ppt:
            problem = ppt_problem(ppt, message.args, message.kwargs)
            if problem is not None:
                self._refuse(session, message, ErrorURI.INVALID_ARGUMENT, problem)
                return
        provided = router.procedures.get(message.procedure)
        if provided is not None:
            if chunked or ppt:
                # The router's own procedures read their arguments.
                feature = "progressive call invocations" if chunked else "payload passthru mode"
                self._refuse(
                    session, message, ErrorURI.FEATURE_NOT_SUPPORTED,
                    f"procedure {message.procedure!r} takes no {feature}",
                )  # fmt: skip
                return
            self._call_provided(session, message, provided)
            return
        registration = self._table.best(message.procedure)
        if registration is None:
            self._refuse(
                session, message, ErrorURI.NO_SUCH_PROCEDURE,
                f"no callee registered procedure {message.procedure!r}",
            )  # fmt: skip
            return
        # The router's own calls (dynamic authentication, authorization) are
        # not limited: they are bounded by the sessions waiting for them.
        if len(session.calls) >= router._call_limit and session._sink is None:
            text = _at_limit("the session", router._call_limit, "pending calls")
            router.limit_reached(session, "max_pending_calls", text)
            self._refuse(session, message, LIMIT_ERROR, text)
            return
        callee = self._pick(registration)
        assert callee is not None  # a registration has callees while it exists
        if chunked and not (
            callee.has_feature("callee", "progressive_call_invocations") and _can_cancel(callee)
        ):
            # AP/ap_rpc_progressive_call_invocations.md: the callee chosen by the
            # policy decides; it needs call canceling too.
            self._refuse(
                session, message, ErrorURI.FEATURE_NOT_SUPPORTED,
                "the callee does not support progressive call invocations",
            )  # fmt: skip
            return
        if ppt and not callee.has_feature("callee", PPT_FEATURE):
            # AP/payload_passthru_mode.md: an APPLICATION ERROR for the caller. As
            # for progressive call invocations, the callee the policy chose decides.
            self._refuse(
                session, message, ErrorURI.FEATURE_NOT_SUPPORTED, _PPT_CALLEE_LACKS
            )  # fmt: skip
            return
        # A progressive call keeps its options, not its first chunk.
        call = Call(message.request, options, message.procedure) if chunked else message
        disclose = None if decision is None else decision.disclose
        pending = PendingCall(session, call, registration, timeout, chunked, disclose=disclose)
        if not self._invoke(pending, callee, message):
            self._refuse(
                session, message, ErrorURI.INVALID_ARGUMENT,
                "the call's arguments cannot be encoded for the callee's serializer",
            )  # fmt: skip
            return
        session.calls[message.request] = pending

    def _refuse(self, session: RouterSession, message: Call, error: str, text: str) -> None:
        """Answer a new CALL with ERROR; the chunks a progressive caller may
        already have sent after it are dropped."""
        self._router.send_error(session, _T.CALL, message.request, error, text)
        if message.options.get("progress") is True:
            self._remember(session, message.request, message.procedure)

    def _check_procedure(self, session: RouterSession, message: Call, procedure: str) -> None:
        if message.procedure != procedure:
            self._router.fail(
                session,
                f"CALL request {message.request} continues a call to {procedure!r},"
                f" not to {message.procedure!r}",
            )

    def _continue(self, session: RouterSession, pending: PendingCall, message: Call) -> None:
        """Forward a chunk of a progressive call invocation to its callee, with
        the INVOCATION ID and Details of the first (AP/ap_rpc_progressive_call_invocations.md:
        the options of the initiating CALL are frozen; later ones but
        ``progress`` are ignored)."""
        if not pending.streaming:
            self._router.fail(session, f"CALL request {message.request} is already in progress")
        self._check_procedure(session, message, pending.call.procedure)
        pending.streaming = message.options.get("progress") is True
        problem = None
        if "ppt_scheme" in pending.details:
            # Every chunk of a payload passthru call carries a passthru payload.
            problem = ppt_problem(ppt_options(pending.details), message.args, message.kwargs)
        if problem is None and self._send_invocation(pending, pending.callee, message):
            return
        self._router.send_error(
            session, _T.CALL, pending.request, ErrorURI.INVALID_ARGUMENT,
            problem or "the call's arguments cannot be encoded for the callee's serializer",
        )  # fmt: skip
        self._give_up(pending)

    def _send_invocation(self, pending: PendingCall, callee: RouterSession, chunk: Call) -> bool:
        details = pending.details
        if pending.streaming:
            details = {**details, "progress": True}
        return self._router.send(
            callee,
            Invocation(
                pending.invocation, pending.registration.id, details, chunk.args, chunk.kwargs
            ),
        )

    def _invoke(self, pending: PendingCall, callee: RouterSession, chunk: Call) -> bool:
        """Send ``callee`` the INVOCATION for ``pending`` (payload from ``chunk``)
        and start the timeout; False if it cannot be encoded for the callee (the
        call then ends: the callee is not told and the timer is not started)."""
        registration = pending.registration
        call = pending.call
        caller = pending.caller
        options = call.options
        details: dict[str, Any] = {}
        if registration.match != "exact":
            details["procedure"] = call.procedure
        # AP/ap_rpc_progressive_call_results.md: a callee that supports progressive
        # results but not call canceling is treated as not supporting them.
        progress = (
            options.get("receive_progress") is True
            and callee.has_feature("callee", "progressive_call_results")
            and _can_cancel(callee)
        )
        if progress:
            details["receive_progress"] = True
        # AP/ap_rpc_caller_identification.md: asked for by the caller (disclose_me)
        # or by this callee's REGISTER (disclose_caller); with an authorizer, its
        # decision alone (the "Dealer configuration"; see wamp_core._authz).
        disclose = pending.disclose
        if disclose is None:
            disclose = options.get("disclose_me") is True or callee in registration.disclose_caller
        if disclose:
            details["caller"] = caller.session_id
            details["caller_authid"] = caller.authid
            details["caller_authrole"] = caller.authrole
        if caller.trustlevel is not None:
            details["trustlevel"] = caller.trustlevel  # AP/ap_rpc_call_trustlevels.md
        details.update(ppt_options(options))  # AP/payload_passthru_mode.md
        forward = pending.timeout > 0 and callee in registration.forward_timeout
        if forward:
            # AP/ap_rpc_call_timeout.md leaves the key unnamed; Crossbar and
            # Autobahn use "timeout" (milliseconds).
            details["timeout"] = pending.timeout
        # The INVOCATION ID is taken only once the INVOCATION is sent, so the
        # callee's IDs stay sequential (BP/building_blocks.md, "IDs").
        pending.invocation = callee.next_invocation.peek()
        pending.details = details
        if not self._send_invocation(pending, callee, chunk):
            return False
        callee.next_invocation()
        pending.callee = callee
        pending.progress = progress
        callee.invocations[pending.invocation] = pending
        if forward:
            self._stop_timer(pending)  # the callee times the call itself
        elif pending.timeout > 0 and pending.timer is None:
            self._start_timer(pending)
        return True

    def _call_provided(
        self, session: RouterSession, message: Call, handler: ProcedureHandler
    ) -> None:
        router = self._router
        try:
            args, kwargs = handler(session, message)
        except ProcedureError as exc:
            error = Error(
                _T.CALL, message.request, {}, exc.error,
                exc.error_args or None, exc.error_kwargs or None,
            )  # fmt: skip
            router.send(session, error)
            return
        if not router.send(session, Result(message.request, {}, args, kwargs)):
            router.send_error(
                session, _T.CALL, message.request, ErrorURI.INVALID_ARGUMENT,
                "the result cannot be encoded for the caller's serializer",
            )  # fmt: skip

    def _pick(
        self, registration: Registration, tried: Collection[RouterSession] = ()
    ) -> RouterSession | None:
        """The callee the registration's policy chooses among those not ``tried``
        (AP/ap_rpc_shared_registration.md, AP/ap_rpc_call_rerouting.md), or None."""
        callees = registration.callees
        invoke = registration.invoke
        if invoke == "roundrobin":
            # The next one in the queue that was not tried yet.
            count = len(callees)
            for step in range(count):
                index = (registration.next_index + step) % count
                if callees[index] not in tried:
                    registration.next_index = index + 1
                    return callees[index]
            return None
        untried = [callee for callee in callees if callee not in tried] if tried else callees
        if not untried:
            return None  # single: its one callee was tried
        if invoke == "random":
            return untried[self._rng.randrange(len(untried))]
        if invoke == "last":
            return untried[-1]  # when rerouting: the one registered before
        return untried[0]  # single, first (when rerouting: the one registered after)

    def _take(self, session: RouterSession, invocation: int, what: str) -> PendingCall | None:
        """The call ``session`` answers with ``what`` for ``invocation``; None
        for an answer that comes late (the caller no longer waits)."""
        pending = session.invocations.get(invocation)
        if (
            pending is None
            and invocation not in session._orphans
            and invocation > session._forgotten
        ):
            # BP/building_blocks.md, "Protocol Errors": YIELD for an invalid
            # INVOCATION.Request is a protocol violation. An ID at or below the
            # highest forgotten orphan's may be one of those (see _orphan).
            self._router.fail(session, f"{what} for unknown INVOCATION {invocation}")
        return pending

    def yield_(self, session: RouterSession, message: Yield) -> None:
        """Handle YIELD: RESULT to the caller (progressive ones at once).

        A payload passthru YIELD the caller cannot take (it did not announce
        the mode, or the YIELD is malformed) ends the call: the callee gets
        ``[ERROR, YIELD, INVOCATION.Request, {}, error]``, the caller ERROR
        ``error`` (feature_not_supported or invalid_argument).
        """
        ppt = ppt_options(message.options)
        if ppt:
            check_ppt_announced(self._router, session, "callee", "dealer", "YIELD")
        pending = self._take(session, message.request, "YIELD")
        if message.options.get("progress") is True:
            if pending is not None and pending.progress:
                if ppt and not self._ppt_result_ok(pending, ppt, message):
                    self._give_up(pending)
                elif self._send_result(pending, {**ppt, "progress": True}, message):
                    pending.replied = True
                    # AP/ap_rpc_progressive_call_results.md, "Timeouts": the timeout
                    # applies to the first result, then between results.
                    if pending.timer is not None:
                        self._stop_timer(pending)
                        self._start_timer(pending)
                else:
                    # The caller got ERROR instead, which ends the call for it: a
                    # later RESULT would be a protocol violation on its side.
                    self._give_up(pending)
            return
        if pending is None:
            session._orphans.pop(message.request, None)  # a late answer: dropped
            return
        self._finish(pending)
        if not ppt or self._ppt_result_ok(pending, ppt, message):
            self._send_result(pending, ppt, message)

    def _ppt_result_ok(self, pending: PendingCall, ppt: dict[str, Any], message: Yield) -> bool:
        """Check a payload passthru YIELD against AP/payload_passthru_mode.md; if
        it cannot go to the caller, send both sides ERROR and return False."""
        problem = ppt_problem(ppt, message.args, message.kwargs)
        if problem is not None:
            error, text = ErrorURI.INVALID_ARGUMENT, problem
        elif not pending.caller.has_feature("caller", PPT_FEATURE):
            # The spec: an APPLICATION ERROR, the dealer MUST answer the callee
            # feature_not_supported. It names no message layout; this is ERROR
            # answering the YIELD. The caller would wait forever: it gets one too.
            error, text = ErrorURI.FEATURE_NOT_SUPPORTED, _PPT_CALLER_LACKS
        else:
            return True
        router = self._router
        router.send_error(pending.callee, _T.YIELD, message.request, error, text)
        router.send_error(
            pending.caller,
            _T.CALL,
            pending.request,
            error,
            f"the callee's result was refused: {text}",
        )
        return False

    def _send_result(self, pending: PendingCall, details: dict[str, Any], message: Yield) -> bool:
        """Send RESULT, or ERROR invalid_argument if it cannot be encoded (then False)."""
        router = self._router
        result = Result(pending.request, details, message.args, message.kwargs)
        if router.send(pending.caller, result):
            return True
        router.send_error(
            pending.caller, _T.CALL, pending.request, ErrorURI.INVALID_ARGUMENT,
            "the result cannot be encoded for the caller's serializer",
        )  # fmt: skip
        return False

    def error(self, session: RouterSession, message: Error) -> None:
        """Handle a callee's ERROR for an INVOCATION: relay it to the caller as CALL
        ERROR, or reroute the call if the callee is unavailable."""
        router = self._router
        ppt = ppt_options(message.details)
        if ppt:
            check_ppt_announced(router, session, "callee", "dealer", "ERROR")
        pending = self._take(session, message.request, "ERROR")
        if pending is None:
            session._orphans.pop(message.request, None)  # a late answer: dropped
            return
        if message.error == ErrorURI.UNAVAILABLE:
            self._reroute(pending)
            return
        self._finish(pending)
        text = None
        if ppt:
            # A callee's ERROR in payload passthru mode (AP/payload_passthru_mode.md):
            # the spec has no answer for a malformed one or a caller without the
            # mode (ERROR cannot answer ERROR); the caller gets the error URI
            # without the payload it could not read, as below.
            text = ppt_problem(ppt, message.args, message.kwargs)
            if text is None and not pending.caller.has_feature("caller", PPT_FEATURE):
                text = _PPT_CALLER_LACKS
        if text is None:
            error = Error(
                _T.CALL, pending.request, message.details, message.error,
                message.args, message.kwargs,
            )  # fmt: skip
            if router.send(pending.caller, error):
                return
            text = "the error's arguments cannot be encoded for the caller's serializer"
        # The payload does not fit the caller: keep the URI, drop the payload;
        # if even the URI does not fit, say so with a URI of ours.
        if not router.send(
            pending.caller, Error(_T.CALL, pending.request, {}, message.error, [text])
        ):
            router.send_error(
                pending.caller, _T.CALL, pending.request, ErrorURI.INVALID_ARGUMENT,
                f"the callee's error {message.error!r:.200} cannot be encoded"
                " for the caller's serializer",
            )  # fmt: skip

    def _reroute(self, pending: PendingCall) -> None:
        """AP/ap_rpc_call_rerouting.md: the callee answered ``wamp.error.unavailable``;
        invoke another callee of the registration as its policy says, or answer
        the caller ``wamp.error.no_available_callee``.

        Only a call that nothing but its INVOCATION went out for can move: not
        a progressive call invocation (its earlier chunks are gone), not one that
        already sent progressive results or an INTERRUPT. The caller never sees
        ``wamp.error.unavailable``.
        """
        callee = pending.callee
        del callee.invocations[pending.invocation]
        pending.tried.add(callee)
        error = ErrorURI.NO_AVAILABLE_CALLEE
        text = f"no callee is available for {pending.call.procedure!r}"
        if not (pending.chunked or pending.replied or pending.interrupted):
            target = self._pick(pending.registration, pending.tried)
            if target is not None:
                if "ppt_scheme" in pending.details and not target.has_feature(
                    "callee", PPT_FEATURE
                ):
                    error = ErrorURI.FEATURE_NOT_SUPPORTED
                    text = _PPT_CALLEE_LACKS
                elif self._invoke(pending, target, pending.call):
                    return
                else:
                    error = ErrorURI.INVALID_ARGUMENT
                    text = "the call's arguments cannot be encoded for the callee's serializer"
        self._release(pending)
        self._router.send_error(pending.caller, _T.CALL, pending.request, error, text)

    def _finish(self, pending: PendingCall) -> None:
        del pending.callee.invocations[pending.invocation]
        self._release(pending)

    def cancel(self, session: RouterSession, message: Cancel) -> None:
        """Handle CANCEL (AP/ap_rpc_call_canceling.md).

        ``skip``: the caller gets ERROR canceled now, the callee is not told.
        ``killnowait``: the same, and the callee gets INTERRUPT.
        ``kill``: the callee gets INTERRUPT and the caller waits for its answer.
        A callee without ``call_canceling`` is always treated as ``skip``. A
        CANCEL for a call that already finished, or with an unknown mode, is
        ignored (ERROR cannot answer a CANCEL).
        """
        pending = session.calls.get(message.request)
        mode = message.options.get("mode", DEFAULT_CANCEL_MODE)
        if pending is None or mode not in CANCEL_MODES:
            return
        if not _can_cancel(pending.callee):
            mode = "skip"
        if mode != "skip" and not pending.interrupted:
            pending.interrupted = True
            self._router.send(pending.callee, Interrupt(pending.invocation, {"mode": mode}))
        if mode != "kill":
            self._orphan(pending)
            self._router.send_error(
                session, _T.CALL, pending.request, ErrorURI.CANCELED, "the call was canceled"
            )

    def _orphan(self, pending: PendingCall) -> None:
        """The caller no longer waits for ``pending``: release it, and keep only
        its INVOCATION ID among the callee's orphans until the callee answers.

        A callee that never answers must not make them pile up: beyond
        ``Router.max_pending_calls`` (or ``DEFAULT_CALL_RECORDS``) orphans the
        oldest is forgotten. The callee's INVOCATION IDs are sequential (see
        ``_invoke``), so ``_forgotten``, the highest forgotten one, tells a late
        answer to a forgotten orphan (at or below it: dropped) from an answer to
        an INVOCATION never sent (above it: a protocol violation).
        """
        pending.orphaned = True
        self._release(pending)
        callee = pending.callee
        del callee.invocations[pending.invocation]
        orphans = callee._orphans
        if not orphans:  # perhaps the empty dict all sessions share
            orphans = callee._orphans = {}
        orphans[pending.invocation] = None
        if len(orphans) > self._records():
            oldest = next(iter(orphans))
            del orphans[oldest]
            callee._forgotten = max(callee._forgotten, oldest)

    def _records(self) -> int:
        """How many calls that are over a session's records keep."""
        return self._router.max_pending_calls or DEFAULT_CALL_RECORDS

    def _release(self, pending: PendingCall) -> None:
        """The caller no longer waits for ``pending``: forget it on the caller's
        side, stop its timer, and remember it if chunks may still come."""
        del pending.caller.calls[pending.request]
        self._stop_timer(pending)
        if pending.streaming:
            self._remember(pending.caller, pending.request, pending.call.procedure)

    def _give_up(self, pending: PendingCall, options: dict[str, Any] | None = None) -> None:
        """The caller no longer waits: orphan the call and send the callee
        INTERRUPT (killnowait) if it supports call canceling (and had none yet)."""
        self._orphan(pending)
        if _can_cancel(pending.callee) and not pending.interrupted:
            pending.interrupted = True
            self._router.send(
                pending.callee,
                Interrupt(pending.invocation, options or {"mode": "killnowait"}),
            )

    # -- timeouts (AP/ap_rpc_call_timeout.md) ---------------------------------------------

    def _start_timer(self, pending: PendingCall) -> None:
        router = self._router
        pending.timer = router.call_at(
            router.now + pending.timeout / 1000, lambda: self._timed_out(pending)
        )

    @staticmethod
    def _stop_timer(pending: PendingCall) -> None:
        if pending.timer is not None:
            pending.timer.cancel()
            pending.timer = None

    def _timed_out(self, pending: PendingCall) -> None:
        """The dealer's timer ran out: the caller gets ERROR ``wamp.error.timeout``;
        the callee gets INTERRUPT killnowait if it supports call canceling (the
        spec's implicit mode), and nothing otherwise (skip)."""
        pending.timer = None
        # The reason is not in the spec; Autobahn's INTERRUPT carries one.
        self._give_up(pending, {"mode": "killnowait", "reason": ErrorURI.TIMEOUT})
        self._router.send_error(
            pending.caller, _T.CALL, pending.request, ErrorURI.TIMEOUT,
            f"the call timed out after {pending.timeout} ms",
        )  # fmt: skip

    # -- ended progressive call invocations ------------------------------------------

    def _remember(self, session: RouterSession, request: int, procedure: str) -> None:
        """Remember the progressive call ``request`` of ``session`` as ended, for
        ``grace_period`` seconds, and forget the entries that are older, and the
        oldest beyond ``Router.max_pending_calls`` (or ``DEFAULT_CALL_RECORDS``)
        entries: a late chunk of a forgotten call is then a new CALL."""
        now = self._router.now
        ended = self._ended.setdefault(session, {})
        ended[request] = (procedure, now)
        horizon = now - self.grace_period
        records = self._records()
        while True:
            oldest = next(iter(ended))
            if ended[oldest][1] >= horizon and len(ended) <= records:
                break
            del ended[oldest]

    def _ended_call(self, session: RouterSession, request: int) -> str | None:
        """The procedure of ``session``'s ended progressive call ``request``, if
        it ended within ``grace_period``."""
        entry = self._ended.get(session, _NO_ENDED).get(request)
        if entry is None or entry[1] < self._router.now - self.grace_period:
            return None
        return entry[0]

    def remove_session(self, session: RouterSession) -> None:
        """Clean up after a session that leaves (BP/remote_procedure_call.md).

        Its registrations go; callers waiting on it get ERROR canceled; calls it
        made are orphaned, and their callees get INTERRUPT killnowait when they
        support call canceling.
        """
        router = self._router
        for registration_id in list(session.registrations):
            self._drop(session, self.registrations[registration_id])
        for pending in list(session.invocations.values()):
            del session.invocations[pending.invocation]
            self._release(pending)
            router.send_error(
                pending.caller, _T.CALL, pending.request, ErrorURI.CANCELED,
                "the callee left before answering",
            )  # fmt: skip
        for pending in list(session.calls.values()):
            self._give_up(pending)
        self._ended.pop(session, None)


_NO_ENDED: dict[int, tuple[str, float]] = {}  # read-only

_PPT_CALLEE_LACKS = "the callee does not support payload passthru mode"
_PPT_CALLER_LACKS = "the caller does not support payload passthru mode"


def _can_cancel(session: RouterSession) -> bool:
    # AP/ap_rpc_progressive_call_invocations.md spells the flag "call_cancelling".
    return session.has_feature("callee", "call_canceling") or session.has_feature(
        "callee", "call_cancelling"
    )
