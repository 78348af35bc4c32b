"""Advanced Profile RPC features (AP/ap_rpc_*.md).

Every scenario names the dealer feature it checks, so it is skipped when the
router does not announce it in WELCOME. The peers announce every client
feature (``CLIENT_ROLES``) unless a scenario says otherwise.
"""

from __future__ import annotations

import copy
from typing import Any

import trio

from wamp_core import (
    CLIENT_ROLES,
    Call,
    Cancel,
    Error,
    Interrupt,
    Invocation,
    MessageType,
    Register,
    Registered,
    Unregister,
    Unregistered,
    Yield,
)

from .._peer import Failure, Peer, describe
from .._suite import Context, scenario
from ._common import expect_error, expect_result

SPEC_PROGRESS = "AP/ap_rpc_progressive_call_results.md"
SPEC_CANCEL = "AP/ap_rpc_call_canceling.md"
SPEC_TIMEOUT = "AP/ap_rpc_call_timeout.md"
SPEC_IDENTIFICATION = "AP/ap_rpc_caller_identification.md"
SPEC_PATTERN = "AP/ap_rpc_pattern_based_registration.md"
SPEC_SHARED = "AP/ap_rpc_shared_registration.md"
SPEC_INVOCATIONS = "AP/ap_rpc_progressive_call_invocations.md"
SPEC_REROUTE = "AP/ap_rpc_call_rerouting.md"

CANCELED = "wamp.error.canceled"
TIMEOUT = "wamp.error.timeout"
UNAVAILABLE = "wamp.error.unavailable"
NO_AVAILABLE_CALLEE = "wamp.error.no_available_callee"
DISCLOSE_REFUSED = "wamp.error.option_disallowed.disclose_me"

_T = MessageType


def _uri(name: str) -> str:
    return f"com.wamp_conformance.advanced_rpc.{name}"


async def _register(ctx: Context, callee: Peer, procedure: str, **options: Any) -> int:
    """REGISTER ``procedure`` with ``options``; REGISTERED expected; its registration ID."""
    request = callee.req()
    await callee.send(Register(request, options, procedure))
    reply = await callee.expect(Registered, Error, what=f"for REGISTER {procedure} {options}")
    if isinstance(reply, Error):
        ctx.fail(
            f"{callee.name}: REGISTER {procedure} with {options} was refused with"
            f" {reply.error} {reply.args or ''}"
        )
    assert isinstance(reply, Registered)
    ctx.check(
        reply.request == request,
        f"REGISTERED is for request {reply.request}, not {request}",
    )
    return reply.registration


async def _unregister(ctx: Context, callee: Peer, registration: int) -> None:
    request = callee.req()
    await callee.send(Unregister(request, registration))
    reply = await callee.expect(Unregistered, what=f"for UNREGISTER {registration}")
    ctx.check(
        reply.request == request,
        f"UNREGISTERED is for request {reply.request}, not {request}",
    )


async def _setup(ctx: Context, name: str, **options: Any) -> tuple[Peer, Peer, str]:
    """A caller and a callee that registered ``_uri(name)`` with ``options``."""
    callee = await ctx.peer(name="callee")
    caller = await ctx.peer(name="caller")
    procedure = _uri(name)
    await _register(ctx, callee, procedure, **options)
    return caller, callee, procedure


async def _invoked(
    ctx: Context, caller: Peer, callee: Peer, procedure: str, **options: Any
) -> tuple[int, Invocation]:
    """``caller`` CALLs ``procedure`` with ``options``; the INVOCATION ``callee``
    gets, and the CALL's request ID."""
    request = caller.req()
    await caller.send(Call(request, options, procedure, [request]))
    invocation = await callee.expect(Invocation, what=f"for CALL {procedure} {options}")
    ctx.check(
        invocation.args == [request],
        f"INVOCATION.Arguments are {invocation.args!r}, not the CALL's {[request]!r}",
    )
    return request, invocation


async def _invocation_on_any(
    ctx: Context, callees: list[Peer], what: str
) -> tuple[int, Invocation]:
    """The INVOCATION that one of ``callees`` gets (which one is not known in
    advance): its index and the message. Bounded by the peers' timeout."""
    deadline = trio.current_time() + ctx.timeout
    while trio.current_time() < deadline:
        for index, callee in enumerate(callees):
            item = await callee.receive(0.02)
            if item is None:
                continue
            if not isinstance(item, Invocation):
                ctx.fail(f"{callee.name}: expected INVOCATION {what}, got {describe(item)}")
            return index, item
    raise Failure(
        f"expected INVOCATION {what} on one of the callees; none came in {ctx.timeout:g} s"
    )


def _check_interrupt(ctx: Context, interrupt: Interrupt, invocation: int, mode: str) -> None:
    ctx.check(
        interrupt.request == invocation,
        f"INTERRUPT is for INVOCATION {interrupt.request}, not {invocation}",
    )
    sent = interrupt.options.get("mode", mode)
    ctx.check(
        sent == mode,
        f"INTERRUPT.Options.mode is {sent!r}, expected {mode!r} ({SPEC_CANCEL})",
    )


# -- progressive call results -------------------------------------------------------


@scenario(
    "advanced_rpc.progressive_call_results.chunks",
    "Progressive YIELDs reach the caller at once as RESULT progress=true, in order,"
    " then the final RESULT",
    SPEC_PROGRESS,
    feature=("dealer", "progressive_call_results"),
)
async def progressive_results(ctx: Context) -> None:
    caller, callee, procedure = await _setup(ctx, "progress.chunks")
    request, invocation = await _invoked(ctx, caller, callee, procedure, receive_progress=True)
    ctx.check(
        invocation.details.get("receive_progress") is True,
        "INVOCATION.Details.receive_progress is not true although the caller asked for"
        f" progressive results and the callee announced them: {invocation.details}",
    )
    for chunk in range(1, 4):
        await callee.send(Yield(invocation.request, {"progress": True}, [f"chunk{chunk}"]))
        # The spec: each progressive result is forwarded immediately, so it comes
        # before the callee sends anything else.
        result = await expect_result(ctx, caller, request, f"for progressive YIELD {chunk}")
        ctx.check(
            result.details.get("progress") is True,
            f"progressive RESULT {chunk} lacks Details.progress=true: {describe(result)}",
        )
        ctx.check(
            result.args == [f"chunk{chunk}"],
            f"progressive RESULT {chunk} carries {result.args!r}, expected {[f'chunk{chunk}']!r}",
        )
    await callee.send(Yield(invocation.request, {}, ["final"]))
    final = await expect_result(ctx, caller, request, "for the final YIELD")
    ctx.check(
        final.details.get("progress", False) is False,
        f"the final RESULT is marked progress: {describe(final)}",
    )
    ctx.check(final.args == ["final"], f"the final RESULT carries {final.args!r}, not ['final']")
    await caller.expect_nothing(0.2, what="after the final RESULT")


@scenario(
    "advanced_rpc.progressive_call_results.final_error",
    "Progressive RESULTs may end with an ERROR, which reaches the caller after them",
    SPEC_PROGRESS,
    feature=("dealer", "progressive_call_results"),
)
async def progressive_then_error(ctx: Context) -> None:
    caller, callee, procedure = await _setup(ctx, "progress.final_error")
    request, invocation = await _invoked(ctx, caller, callee, procedure, receive_progress=True)
    await callee.send(Yield(invocation.request, {"progress": True}, ["chunk"]))
    result = await expect_result(ctx, caller, request, "for the progressive YIELD")
    ctx.check(
        result.details.get("progress") is True,
        f"the progressive RESULT lacks Details.progress=true: {describe(result)}",
    )
    error = "com.wamp_conformance.advanced_rpc.error.failed"
    await callee.send(Error(_T.INVOCATION, invocation.request, {}, error, ["late failure"]))
    await expect_error(ctx, caller, _T.CALL, request, error, what="after the progressive RESULT")


@scenario(
    "advanced_rpc.progressive_call_results.not_requested",
    "Without CALL.Options.receive_progress the INVOCATION does not ask for progress",
    SPEC_PROGRESS,
    feature=("dealer", "progressive_call_results"),
)
async def progress_not_requested(ctx: Context) -> None:
    caller, callee, procedure = await _setup(ctx, "progress.not_requested")
    request, invocation = await _invoked(ctx, caller, callee, procedure)
    ctx.check(
        invocation.details.get("receive_progress") is not True,
        f"INVOCATION.Details.receive_progress is true though the caller did not ask:"
        f" {invocation.details}",
    )
    await callee.send(Yield(invocation.request, {}, ["done"]))
    await expect_result(ctx, caller, request, "for the YIELD")


# -- call canceling --------------------------------------------------------------------


@scenario(
    "advanced_rpc.call_canceling.skip",
    "CANCEL mode=skip: ERROR wamp.error.canceled to the caller at once, no INTERRUPT,"
    " the late YIELD is discarded",
    SPEC_CANCEL,
    feature=("dealer", "call_canceling"),
)
async def cancel_skip(ctx: Context) -> None:
    caller, callee, procedure = await _setup(ctx, "cancel.skip")
    request, invocation = await _invoked(ctx, caller, callee, procedure)
    await caller.send(Cancel(request, {"mode": "skip"}))
    await expect_error(
        ctx, caller, _T.CALL, request, CANCELED,
        what="after CANCEL mode=skip (AP: skip -- ERROR is sent immediately back to the caller)",
    )  # fmt: skip
    await callee.expect_nothing(0.3, what="mode skip sends the callee no INTERRUPT")
    await callee.send(Yield(invocation.request, {}, ["too late"]))
    await caller.expect_nothing(0.3, what="the result after CANCEL mode=skip is discarded")


@scenario(
    "advanced_rpc.call_canceling.killnowait",
    "CANCEL mode=killnowait: ERROR wamp.error.canceled to the caller at once, INTERRUPT"
    " to the callee, its late YIELD is discarded",
    SPEC_CANCEL,
    feature=("dealer", "call_canceling"),
)
async def cancel_killnowait(ctx: Context) -> None:
    caller, callee, procedure = await _setup(ctx, "cancel.killnowait")
    request, invocation = await _invoked(ctx, caller, callee, procedure)
    await caller.send(Cancel(request, {"mode": "killnowait"}))
    # The ERROR and the INTERRUPT go to different peers: either may come first.
    await expect_error(ctx, caller, _T.CALL, request, CANCELED, what="after CANCEL mode=killnowait")
    interrupt = await callee.expect(Interrupt, what="after CANCEL mode=killnowait")
    _check_interrupt(ctx, interrupt, invocation.request, "killnowait")
    await callee.send(Yield(invocation.request, {}, ["too late"]))
    await caller.expect_nothing(0.3, what="the result after CANCEL mode=killnowait is discarded")


@scenario(
    "advanced_rpc.call_canceling.kill",
    "CANCEL mode=kill: INTERRUPT to the callee; the caller's ERROR comes only after"
    " the callee's ERROR",
    SPEC_CANCEL,
    feature=("dealer", "call_canceling"),
)
async def cancel_kill(ctx: Context) -> None:
    caller, callee, procedure = await _setup(ctx, "cancel.kill")
    request, invocation = await _invoked(ctx, caller, callee, procedure)
    await caller.send(Cancel(request, {"mode": "kill"}))
    interrupt = await callee.expect(Interrupt, what="after CANCEL mode=kill")
    _check_interrupt(ctx, interrupt, invocation.request, "kill")
    await caller.expect_nothing(
        0.3, what="with mode kill the caller waits until the callee has responded"
    )
    await callee.send(Error(_T.INVOCATION, invocation.request, {}, CANCELED))
    await expect_error(
        ctx, caller, _T.CALL, request, CANCELED, what="after the callee's ERROR (mode kill)"
    )


@scenario(
    "advanced_rpc.call_canceling.kill_result",
    "CANCEL mode=kill, but the callee finishes first: the caller gets its RESULT",
    SPEC_CANCEL,
    feature=("dealer", "call_canceling"),
)
async def cancel_kill_result(ctx: Context) -> None:
    caller, callee, procedure = await _setup(ctx, "cancel.kill_result")
    request, invocation = await _invoked(ctx, caller, callee, procedure)
    await caller.send(Cancel(request, {"mode": "kill"}))
    interrupt = await callee.expect(Interrupt, what="after CANCEL mode=kill")
    _check_interrupt(ctx, interrupt, invocation.request, "kill")
    await callee.send(Yield(invocation.request, {}, ["finished anyway"]))
    result = await expect_result(
        ctx, caller, request,
        "after the callee's YIELD (mode kill; AP: the caller may receive RESULT or ERROR"
        " depending whether the callee finishes processing the invocation or the interrupt"
        " first -- this callee finished the invocation)",
    )  # fmt: skip
    ctx.check(
        result.args == ["finished anyway"],
        f"RESULT carries {result.args!r}, not the callee's ['finished anyway']",
    )


@scenario(
    "advanced_rpc.call_canceling.callee_without_feature",
    "CANCEL mode=kill to a callee without call_canceling is treated as skip",
    SPEC_CANCEL,
    feature=("dealer", "call_canceling"),
)
async def cancel_callee_without_feature(ctx: Context) -> None:
    roles = copy.deepcopy(CLIENT_ROLES)
    callee_features = roles["callee"]["features"]
    for flag in ("call_canceling", "progressive_call_results", "progressive_call_invocations"):
        callee_features.pop(flag, None)
    callee = await ctx.peer(roles=roles, name="callee")
    caller = await ctx.peer(name="caller")
    procedure = _uri("cancel.callee_without_feature")
    await _register(ctx, callee, procedure)
    request, invocation = await _invoked(ctx, caller, callee, procedure)
    await caller.send(Cancel(request, {"mode": "kill"}))
    await expect_error(
        ctx, caller, _T.CALL, request, CANCELED,
        what="at once (AP: if the callee does not support call canceling, then behavior"
        " is skip, and with skip ERROR is sent immediately back to the caller)",
    )  # fmt: skip
    await callee.expect_nothing(0.3, what="no INTERRUPT to a callee without call_canceling")
    await callee.send(Yield(invocation.request, {}, ["too late"]))
    await caller.expect_nothing(0.3, what="the late result is discarded")


# -- call timeout -------------------------------------------------------------------


@scenario(
    "advanced_rpc.call_timeout.dealer",
    "CALL timeout=400 ms on a silent callee: ERROR wamp.error.timeout after the timeout,"
    " INTERRUPT to the callee",
    SPEC_TIMEOUT,
    feature=("dealer", "call_timeout"),
)
async def call_timeout(ctx: Context) -> None:
    # The callee announces call_canceling but not call_timeout: the dealer times the call.
    caller, callee, procedure = await _setup(ctx, "timeout.dealer")
    started = trio.current_time()
    request, invocation = await _invoked(ctx, caller, callee, procedure, timeout=400)
    reply = await caller.receive(ctx.timeout + 0.4)
    elapsed = trio.current_time() - started
    if not isinstance(reply, Error):
        ctx.fail(
            f"expected ERROR {TIMEOUT} about 0.4 s after CALL timeout=400,"
            f" got {describe(reply)} after {elapsed:.2f} s"
        )
    ctx.check(
        (reply.request_type, reply.request) == (_T.CALL, request),
        f"ERROR is for ({reply.request_type}, {reply.request}), not ({_T.CALL}, {request})",
    )
    ctx.check(reply.error == TIMEOUT, f"ERROR URI is {reply.error!r}, not {TIMEOUT}")
    ctx.check(
        elapsed >= 0.35,
        f"ERROR {TIMEOUT} came after {elapsed:.2f} s, before the 0.4 s timeout ran out",
    )
    interrupt = await callee.expect(
        Interrupt, what="when the call timed out (the callee announced call_canceling)"
    )
    _check_interrupt(ctx, interrupt, invocation.request, "killnowait")
    await callee.send(Yield(invocation.request, {}, ["too late"]))
    await caller.expect_nothing(0.3, what="the result after the timeout is discarded")


@scenario(
    "advanced_rpc.call_timeout.answered_in_time",
    "A call answered before its timeout gets its RESULT, and no ERROR later",
    SPEC_TIMEOUT,
    feature=("dealer", "call_timeout"),
)
async def call_timeout_answered(ctx: Context) -> None:
    caller, callee, procedure = await _setup(ctx, "timeout.answered_in_time")
    request, invocation = await _invoked(ctx, caller, callee, procedure, timeout=300)
    await callee.send(Yield(invocation.request, {}, ["in time"]))
    await expect_result(ctx, caller, request, "for the YIELD sent before the timeout")
    await caller.expect_nothing(0.5, what="the timeout of a finished call does nothing")
    await callee.expect_nothing(0.05, what="no INTERRUPT for a finished call")


# -- caller identification ----------------------------------------------------------


async def _disclosed(ctx: Context, caller: Peer, invocation: Invocation, why: str) -> None:
    disclosed = invocation.details.get("caller")
    ctx.check(
        disclosed == caller.session_id,
        f"INVOCATION.Details.caller is {disclosed!r}, expected the caller's session ID"
        f" {caller.session_id} ({why})",
    )


@scenario(
    "advanced_rpc.caller_identification.disclose_me",
    "CALL disclose_me=true puts the caller's session ID in INVOCATION.Details.caller",
    SPEC_IDENTIFICATION,
    feature=("dealer", "caller_identification"),
)
async def disclose_me(ctx: Context) -> None:
    caller, callee, procedure = await _setup(ctx, "identification.disclose_me")
    request = caller.req()
    await caller.send(Call(request, {"disclose_me": True}, procedure))
    reply = await callee.receive()
    if reply is None:  # the dealer may refuse disclosure: then the caller hears why
        refusal = await caller.expect(Error, what="for CALL disclose_me=true")
        if refusal.error == DISCLOSE_REFUSED:
            ctx.skip("the router does not allow this caller to disclose itself")
        ctx.fail(f"CALL disclose_me=true was refused with {refusal.error}")
    if not isinstance(reply, Invocation):
        ctx.fail(f"callee: expected INVOCATION, got {describe(reply)}")
    await _disclosed(ctx, caller, reply, "CALL.Options.disclose_me was true")
    await callee.send(Yield(reply.request, {}))
    await expect_result(ctx, caller, request, "for the YIELD")


@scenario(
    "advanced_rpc.caller_identification.disclose_caller",
    "REGISTER disclose_caller=true puts the caller's session ID in INVOCATION.Details.caller",
    SPEC_IDENTIFICATION,
    feature=("dealer", "caller_identification"),
)
async def disclose_caller(ctx: Context) -> None:
    caller, callee, procedure = await _setup(
        ctx, "identification.disclose_caller", disclose_caller=True
    )
    request, invocation = await _invoked(ctx, caller, callee, procedure)
    await _disclosed(ctx, caller, invocation, "REGISTER.Options.disclose_caller was true")
    await callee.send(Yield(invocation.request, {}))
    await expect_result(ctx, caller, request, "for the YIELD")


# -- pattern-based registration -----------------------------------------------------


async def _pattern_call(
    ctx: Context,
    caller: Peer,
    callee: Peer,
    called: str,
    *,
    registration: int,
    what: str,
    check_procedure: bool = True,
) -> None:
    request, invocation = await _invoked(ctx, caller, callee, called)
    ctx.check(
        invocation.registration == registration,
        f"a CALL to {called} was invoked through registration {invocation.registration},"
        f" expected {registration} ({what})",
    )
    if check_procedure:
        ctx.check(
            invocation.details.get("procedure") == called,
            f"INVOCATION.Details.procedure is {invocation.details.get('procedure')!r},"
            f" expected the called URI {called!r} ({what}; {SPEC_PATTERN} says MUST)",
        )
    await callee.send(Yield(invocation.request, {}))
    await expect_result(ctx, caller, request, f"for the call to {called}")


@scenario(
    "advanced_rpc.pattern_based_registration.prefix",
    "A prefix registration is invoked for longer URIs, with Details.procedure",
    SPEC_PATTERN,
    feature=("dealer", "pattern_based_registration"),
)
async def prefix_registration(ctx: Context) -> None:
    callee = await ctx.peer(name="callee")
    caller = await ctx.peer(name="caller")
    prefix = _uri("pattern.prefix")
    registration = await _register(ctx, callee, prefix, match="prefix")
    for called in (f"{prefix}.alpha", f"{prefix}.beta.gamma"):
        await _pattern_call(
            ctx, caller, callee, called, registration=registration, what="match=prefix"
        )


@scenario(
    "advanced_rpc.pattern_based_registration.wildcard",
    "A wildcard registration is invoked for URIs matching it, with Details.procedure",
    SPEC_PATTERN,
    feature=("dealer", "pattern_based_registration"),
)
async def wildcard_registration(ctx: Context) -> None:
    callee = await ctx.peer(name="callee")
    caller = await ctx.peer(name="caller")
    base = _uri("pattern.wildcard")
    registration = await _register(ctx, callee, f"{base}..end", match="wildcard")
    for called in (f"{base}.one.end", f"{base}.two.end"):
        await _pattern_call(
            ctx, caller, callee, called, registration=registration, what="match=wildcard"
        )
    request = caller.req()
    await caller.send(Call(request, {}, f"{base}.one.other"))
    await expect_error(
        ctx, caller, _T.CALL, request, "wamp.error.no_such_procedure",
        what=f"for a URI the wildcard {base}..end does not match",
    )  # fmt: skip


@scenario(
    "advanced_rpc.pattern_based_registration.precedence",
    "Exact beats prefix beats wildcard for a URI that all three match",
    SPEC_PATTERN,
    feature=("dealer", "pattern_based_registration"),
)
async def pattern_precedence(ctx: Context) -> None:
    callee = await ctx.peer(name="callee")
    caller = await ctx.peer(name="caller")
    base = _uri("pattern.precedence")
    called = f"{base}.b.c"
    exact = await _register(ctx, callee, called)
    prefix = await _register(ctx, callee, f"{base}.b", match="prefix")
    wildcard = await _register(ctx, callee, f"{base}..c", match="wildcard")
    ctx.check(
        len({exact, prefix, wildcard}) == 3,
        f"three different registrations share IDs: {exact}, {prefix}, {wildcard}",
    )
    await _pattern_call(
        ctx, caller, callee, called, registration=exact, what="the exact registration wins",
        check_procedure=False,
    )  # fmt: skip
    await _unregister(ctx, callee, exact)
    await _pattern_call(
        ctx, caller, callee, called, registration=prefix, what="prefix wins over wildcard"
    )
    await _unregister(ctx, callee, prefix)
    await _pattern_call(
        ctx, caller, callee, called, registration=wildcard, what="only the wildcard is left"
    )


# -- shared registration ------------------------------------------------------------


async def _shared_callees(ctx: Context, name: str, invoke: str) -> tuple[Peer, list[Peer], str]:
    callees = [await ctx.peer(name=f"callee{index}") for index in (1, 2)]
    caller = await ctx.peer(name="caller")
    procedure = _uri(name)
    registrations = {await _register(ctx, callee, procedure, invoke=invoke) for callee in callees}
    ctx.check(
        len(registrations) == 1,
        f"two callees of a shared registration got different IDs: {sorted(registrations)}",
    )
    return caller, callees, procedure


async def _served_by(
    ctx: Context, caller: Peer, callees: list[Peer], procedure: str, count: int
) -> list[int]:
    """Make ``count`` calls one after the other; which callee served each."""
    served = []
    for _ in range(count):
        request = caller.req()
        await caller.send(Call(request, {}, procedure, [request]))
        index, invocation = await _invocation_on_any(ctx, callees, f"for CALL {request}")
        served.append(index)
        await callees[index].send(Yield(invocation.request, {}, [index]))
        await expect_result(ctx, caller, request, f"for CALL {request}")
    return served


async def _shared_always(ctx: Context, invoke: str, index: int) -> None:
    """invoke=first/last: three calls in a row all go to callee ``index``."""
    caller, callees, procedure = await _shared_callees(ctx, f"shared.{invoke}", invoke)
    served = await _served_by(ctx, caller, callees, procedure, 3)
    ctx.check(
        served == [index] * 3,
        f"invoke={invoke} calls went to callees {[i + 1 for i in served]},"
        f" expected {[index + 1] * 3}",
    )


@scenario(
    "advanced_rpc.shared_registration.roundrobin",
    "invoke=roundrobin alternates between two callees",
    SPEC_SHARED,
    feature=("dealer", "shared_registration"),
)
async def shared_roundrobin(ctx: Context) -> None:
    caller, callees, procedure = await _shared_callees(ctx, "shared.roundrobin", "roundrobin")
    served = await _served_by(ctx, caller, callees, procedure, 4)
    ctx.check(
        all(served[i] != served[i + 1] for i in range(len(served) - 1)),
        f"roundrobin calls went to callees {[i + 1 for i in served]}, expected them to alternate",
    )


@scenario(
    "advanced_rpc.shared_registration.first",
    "invoke=first always invokes the callee that registered first",
    SPEC_SHARED,
    feature=("dealer", "shared_registration"),
)
async def shared_first(ctx: Context) -> None:
    await _shared_always(ctx, "first", 0)


@scenario(
    "advanced_rpc.shared_registration.last",
    "invoke=last always invokes the callee that registered last",
    SPEC_SHARED,
    feature=("dealer", "shared_registration"),
)
async def shared_last(ctx: Context) -> None:
    await _shared_always(ctx, "last", 1)


@scenario(
    "advanced_rpc.shared_registration.policy_mismatch",
    "A second REGISTER with a different invoke policy is refused with ERROR",
    SPEC_SHARED,
    feature=("dealer", "shared_registration"),
)
async def shared_policy_mismatch(ctx: Context) -> None:
    first = await ctx.peer(name="callee1")
    second = await ctx.peer(name="callee2")
    procedure = _uri("shared.policy_mismatch")
    await _register(ctx, first, procedure, invoke="roundrobin")
    request = second.req()
    await second.send(Register(request, {"invoke": "first"}, procedure))
    reply = await second.expect(
        Error, what="for REGISTER invoke=first of a procedure registered with roundrobin"
    )
    # The spec names no error URI for this refusal.
    ctx.check(
        (reply.request_type, reply.request) == (_T.REGISTER, request),
        f"ERROR is for ({reply.request_type}, {reply.request}), not ({_T.REGISTER}, {request})",
    )


# -- progressive call invocations ---------------------------------------------------


@scenario(
    "advanced_rpc.progressive_call_invocations.chunks",
    "CALL progress=true chunks with one request ID reach the callee as INVOCATIONs in order",
    SPEC_INVOCATIONS,
    feature=("dealer", "progressive_call_invocations"),
)
async def progressive_invocations(ctx: Context) -> None:
    caller, callee, procedure = await _setup(ctx, "invocations.chunks")
    request = caller.req()
    chunks = ["one", "two", "three"]
    invocation_id: int | None = None
    for number, chunk in enumerate(chunks, 1):
        last = number == len(chunks)
        await caller.send(Call(request, {} if last else {"progress": True}, procedure, [chunk]))
        invocation = await callee.expect(Invocation, what=f"for CALL chunk {number}")
        if invocation_id is None:
            invocation_id = invocation.request
        ctx.check(
            invocation.request == invocation_id,
            f"chunk {number} came as INVOCATION {invocation.request}, not {invocation_id}"
            " like the first (all chunks share the INVOCATION request ID)",
        )
        ctx.check(
            invocation.args == [chunk],
            f"INVOCATION {number} carries {invocation.args!r}, expected {[chunk]!r}",
        )
        progress = invocation.details.get("progress", False)
        ctx.check(
            progress is (not last),
            f"INVOCATION {number} of {len(chunks)} has Details.progress={progress!r},"
            f" expected {not last}",
        )
    assert invocation_id is not None
    await callee.send(Yield(invocation_id, {}, ["all received"]))
    result = await expect_result(ctx, caller, request, "after the last chunk")
    ctx.check(result.args == ["all received"], f"RESULT carries {result.args!r}")


# -- call rerouting -----------------------------------------------------------------


@scenario(
    "advanced_rpc.call_reroute.next_callee",
    "A callee's ERROR wamp.error.unavailable makes the dealer invoke the other callee",
    SPEC_REROUTE,
    feature=("dealer", "call_reroute"),
)
async def reroute(ctx: Context) -> None:
    ctx.require("dealer", "shared_registration")
    caller, callees, procedure = await _shared_callees(ctx, "reroute.next_callee", "roundrobin")
    request = caller.req()
    await caller.send(Call(request, {}, procedure, [request]))
    first, invocation = await _invocation_on_any(ctx, callees, f"for CALL {request}")
    await callees[first].send(Error(_T.INVOCATION, invocation.request, {}, UNAVAILABLE))
    other = callees[1 - first]
    again = await other.expect(Invocation, what="after the first callee answered unavailable")
    ctx.check(
        again.args == [request],
        f"the rerouted INVOCATION carries {again.args!r}, expected {[request]!r}",
    )
    await other.send(Yield(again.request, {}, ["rerouted"]))
    result = await expect_result(ctx, caller, request, "from the second callee")
    ctx.check(result.args == ["rerouted"], f"RESULT carries {result.args!r}, not ['rerouted']")


@scenario(
    "advanced_rpc.call_reroute.no_available_callee",
    "When the only callee answers wamp.error.unavailable the caller gets"
    " wamp.error.no_available_callee",
    SPEC_REROUTE,
    feature=("dealer", "call_reroute"),
)
async def reroute_exhausted(ctx: Context) -> None:
    caller, callee, procedure = await _setup(ctx, "reroute.no_available_callee")
    request, invocation = await _invoked(ctx, caller, callee, procedure)
    await callee.send(Error(_T.INVOCATION, invocation.request, {}, UNAVAILABLE))
    await expect_error(
        ctx, caller, _T.CALL, request, NO_AVAILABLE_CALLEE,
        what="after the only callee answered unavailable",
    )  # fmt: skip
