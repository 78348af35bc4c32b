"""The dealer: routed Remote Procedure Calls inside one realm
(BP/remote_procedure_call.md).

Also the RPC features of the Advanced Profile that need no more than the
messages themselves: progressive call results
(AP/ap_rpc_progressive_call_results.md), call canceling
(AP/ap_rpc_call_canceling.md), caller identification, pattern-based and shared
registrations.
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING, Any

from ._errors import ProcedureError
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
    from ._router import ProcedureHandler, Router, RouterSession

__all__ = ["CANCEL_MODES", "INVOKE_POLICIES", "Dealer", "PendingCall", "Registration"]

_T = MessageType

INVOKE_POLICIES = ("single", "roundrobin", "random", "first", "last")
"""AP/ap_rpc_shared_registration.md."""

CANCEL_MODES = ("skip", "kill", "killnowait")
"""AP/ap_rpc_call_canceling.md."""

DEFAULT_CANCEL_MODE = "killnowait"
# The spec names no default mode; killnowait answers the caller at once and
# still tells the callee to stop, which is what a caller that gives up expects.


class Registration:
    """One registration: a (procedure, match policy) pair and its callees."""

    __slots__ = ("callees", "created", "id", "invoke", "match", "next_index", "uri")

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


class PendingCall:
    """A call in flight: known to the caller by ``request``, to the callee by
    ``invocation``. ``orphaned`` is set once the caller no longer waits (it left,
    or canceled with skip/killnowait); the callee's late answer is then dropped.
    """

    __slots__ = ("callee", "caller", "interrupted", "invocation", "orphaned", "progress", "request")

    def __init__(
        self,
        caller: RouterSession,
        request: int,
        callee: RouterSession,
        invocation: int,
        progress: bool,
    ) -> None:
        self.caller = caller
        self.request = request
        self.callee = callee
        self.invocation = invocation
        self.progress = progress
        self.orphaned = False
        self.interrupted = False


class Dealer:
    """Registrations and calls of one realm."""

    def __init__(self, router: Router, rng: random.Random) -> None:
        self._router = router
        self._rng = rng
        self._table: PatternMap[Registration] = PatternMap()
        self.registrations: dict[int, Registration] = {}
        """Live registrations by ID."""

    # -- registrations -----------------------------------------------------------

    def register(self, session: RouterSession, message: Register) -> None:
        """Handle REGISTER: REGISTERED, or ERROR (invalid_uri, invalid_argument,
        procedure_already_exists)."""
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
        session.registrations.add(registration.id)
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

    def _drop(self, session: RouterSession, registration: Registration) -> None:
        registration.callees.remove(session)
        session.registrations.discard(registration.id)
        observers = self._router.observers
        for observer in observers:
            observer.unregistered(session, registration)
        if not registration.callees:
            self._table.remove(registration.uri, registration.match)
            del self.registrations[registration.id]
            for observer in observers:
                observer.registration_deleted(session, registration)

    # -- calls ---------------------------------------------------------------------

    def call(self, session: RouterSession, message: Call) -> None:
        """Handle CALL: INVOCATION to a callee, or ERROR (invalid_uri, no_such_procedure)."""
        router = self._router
        if message.request in session.calls:
            router.fail(session, f"CALL request {message.request} is already in progress")
        if not is_valid_uri(message.procedure):
            router.send_error(
                session, _T.CALL, message.request, ErrorURI.INVALID_URI,
                f"invalid procedure URI {message.procedure!r}",
            )  # fmt: skip
            return
        provided = router.procedures.get(message.procedure)
        if provided is not None:
            self._call_provided(session, message, provided)
            return
        registration = self._table.best(message.procedure)
        if registration is None:
            router.send_error(
                session, _T.CALL, message.request, ErrorURI.NO_SUCH_PROCEDURE,
                f"no callee registered procedure {message.procedure!r}",
            )  # fmt: skip
            return
        callee = self._pick(registration)
        options = message.options
        details: dict[str, Any] = {}
        if registration.match != "exact":
            details["procedure"] = message.procedure
        progress = options.get("receive_progress") is True and callee.has_feature(
            "callee", "progressive_call_results"
        )
        if progress:
            details["receive_progress"] = True
        if options.get("disclose_me") is True:
            details["caller"] = session.session_id
            details["caller_authid"] = session.authid
            details["caller_authrole"] = session.authrole
        # The INVOCATION ID is taken only once the INVOCATION is sent, so the
        # callee's IDs stay sequential (BP/building_blocks.md, "IDs").
        invocation = callee.next_invocation.peek()
        invocation_message = Invocation(
            invocation, registration.id, details, message.args, message.kwargs
        )
        if not router.send(callee, invocation_message):
            router.send_error(
                session, _T.CALL, message.request, ErrorURI.INVALID_ARGUMENT,
                "the call's arguments cannot be encoded for the callee's serializer",
            )  # fmt: skip
            return
        callee.next_invocation()
        pending = PendingCall(session, message.request, callee, invocation, progress)
        session.calls[message.request] = pending
        callee.invocations[invocation] = pending

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

    def _pick(self, registration: Registration) -> RouterSession:
        callees = registration.callees
        invoke = registration.invoke
        if invoke == "roundrobin":
            index = registration.next_index % len(callees)
            registration.next_index = index + 1
            return callees[index]
        if invoke == "random":
            return callees[self._rng.randrange(len(callees))]
        if invoke == "last":
            return callees[-1]
        return callees[0]  # single, first

    def _take(self, session: RouterSession, invocation: int, what: str) -> PendingCall:
        pending = session.invocations.get(invocation)
        if pending is None:
            # BP/building_blocks.md, "Protocol Errors": YIELD for an invalid
            # INVOCATION.Request is a protocol violation.
            self._router.fail(session, f"{what} for unknown INVOCATION {invocation}")
        return pending

    def yield_(self, session: RouterSession, message: Yield) -> None:
        """Handle YIELD: RESULT to the caller (progressive ones at once)."""
        pending = self._take(session, message.request, "YIELD")
        if message.options.get("progress") is True:
            if (
                pending.progress
                and not pending.orphaned
                and not self._send_result(pending, {"progress": True}, message)
            ):
                # The caller got ERROR instead, which ends the call for it: a
                # later RESULT would be a protocol violation on its side.
                self._give_up(pending)
            return
        self._finish(pending)
        if not pending.orphaned:
            self._send_result(pending, {}, message)

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
        """Handle a callee's ERROR for an INVOCATION: relay it to the caller as CALL ERROR."""
        pending = self._take(session, message.request, "ERROR")
        self._finish(pending)
        if pending.orphaned:
            return
        router = self._router
        error = Error(
            _T.CALL, pending.request, message.details, message.error, message.args, message.kwargs
        )
        if router.send(pending.caller, error):
            return
        # The payload does not fit the caller's serializer: keep the URI, drop
        # the payload; if even the URI does not fit, say so with a URI of ours.
        text = "the error's arguments cannot be encoded for the caller's serializer"
        if not router.send(
            pending.caller, Error(_T.CALL, pending.request, {}, message.error, [text])
        ):
            router.send_error(
                pending.caller, _T.CALL, pending.request, ErrorURI.INVALID_ARGUMENT,
                f"the callee's error {message.error!r:.200} cannot be encoded"
                " for the caller's serializer",
            )  # fmt: skip

    def _finish(self, pending: PendingCall) -> None:
        del pending.callee.invocations[pending.invocation]
        if not pending.orphaned:
            del pending.caller.calls[pending.request]

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

    @staticmethod
    def _orphan(pending: PendingCall) -> None:
        pending.orphaned = True
        del pending.caller.calls[pending.request]

    def _give_up(self, pending: PendingCall) -> None:
        """The caller no longer waits: orphan the call and send the callee
        INTERRUPT killnowait if it supports call canceling (and had none yet)."""
        self._orphan(pending)
        if _can_cancel(pending.callee) and not pending.interrupted:
            pending.interrupted = True
            self._router.send(pending.callee, Interrupt(pending.invocation, {"mode": "killnowait"}))

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
            if not pending.orphaned:
                self._orphan(pending)
                router.send_error(
                    pending.caller, _T.CALL, pending.request, ErrorURI.CANCELED,
                    "the callee left before answering",
                )  # fmt: skip
        for pending in list(session.calls.values()):
            self._give_up(pending)


def _can_cancel(session: RouterSession) -> bool:
    # AP/ap_rpc_progressive_call_invocations.md spells the flag "call_cancelling".
    return session.has_feature("callee", "call_canceling") or session.has_feature(
        "callee", "call_cancelling"
    )
