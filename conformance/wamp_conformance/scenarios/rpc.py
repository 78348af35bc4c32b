"""Basic Profile Remote Procedure Calls (BP/remote_procedure_call.md,
BP/uri_reference.md, BP/building_blocks.md).

Every scenario joins its peers with the basic ``caller`` and ``callee`` roles
and no advanced features, so the dealer must behave as the Basic Profile says.
"""

from __future__ import annotations

from typing import Any

import trio

from wamp_core import (
    MAX_ID,
    Call,
    Error,
    Goodbye,
    Invocation,
    MessageType,
    Register,
    Registered,
    Result,
    Unregister,
    Unregistered,
    Yield,
    is_valid_uri,
)

from .._peer import Peer, describe
from .._suite import Context, scenario
from ._common import Payload, check_error, expect_error, expect_result, payload, same

SPEC_REGISTER = "BP/remote_procedure_call.md, Registering and Unregistering"
SPEC_CALL = "BP/remote_procedure_call.md, Calling and Invocations"
SPEC_CALLEE_LEAVING = "BP/remote_procedure_call.md, Callee Leaving During an RPC Invocation"

BASIC_ROLES: dict[str, Any] = {"caller": {}, "callee": {}}
"""The Basic Profile client roles, without any advanced feature."""

URI = "com.wamp_conformance.rpc"

NO_SUCH_PROCEDURE = "wamp.error.no_such_procedure"
PROCEDURE_ALREADY_EXISTS = "wamp.error.procedure_already_exists"
NO_SUCH_REGISTRATION = "wamp.error.no_such_registration"
INVALID_URI = "wamp.error.invalid_uri"
CANCELED = "wamp.error.canceled"
CANCELED_MISSPELT = "wamp.error.cancelled"  # the spelling of BP/remote_procedure_call.md

_CALL = MessageType.CALL
_INVOCATION = MessageType.INVOCATION

# -- helpers -----------------------------------------------------------------------


async def _peers(ctx: Context, *names: str) -> list[Peer]:
    return [await ctx.peer(roles=BASIC_ROLES, name=name) for name in names]


async def _register(ctx: Context, callee: Peer, procedure: str) -> int:
    """REGISTER ``procedure``; REGISTERED for that request with an ID in range expected."""
    request = callee.req()
    await callee.send(Register(request, {}, procedure))
    reply = await callee.expect(Registered, Error, what=f"in reply to REGISTER {procedure}")
    if isinstance(reply, Error):
        ctx.fail(f"{callee.name}: expected REGISTERED for {procedure}, got {describe(reply)}")
    assert isinstance(reply, Registered)
    ctx.check(
        reply.request == request,
        f"REGISTERED is for request {reply.request}, not REGISTER.Request {request}",
    )
    ctx.check(
        1 <= reply.registration <= MAX_ID,
        f"REGISTERED.Registration {reply.registration} is outside 1..2^53",
    )
    return reply.registration


async def _invocation(ctx: Context, callee: Peer, registration: int, what: str) -> Invocation:
    """The next message to ``callee`` must be an INVOCATION for ``registration``."""
    invocation = await callee.expect(Invocation, what=what)
    ctx.check(
        invocation.registration == registration,
        f"INVOCATION.Registration is {invocation.registration},"
        f" not the REGISTERED.Registration {registration}",
    )
    ctx.check(
        isinstance(invocation.details, dict),
        f"INVOCATION.Details is {invocation.details!r}, not a dict",
    )
    return invocation


def _short(value: Any, limit: int = 120) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _check_payload(
    ctx: Context, where: str, message: Invocation | Result | Error, sent: Payload
) -> None:
    got, expected = payload(message.args, message.kwargs), payload(*sent)
    ctx.check(
        same(got, expected),
        f"{where} carries Args={_short(got[0])} Kw={_short(got[1])}, expected exactly"
        f" Args={_short(expected[0])} Kw={_short(expected[1])} (the original payload,"
        f" {SPEC_CALL})",
    )


async def _roundtrip(ctx: Context, name: str, *, call: Payload, reply: Payload) -> None:
    """REGISTER, CALL with the ``call`` payload, INVOCATION with it, YIELD with
    ``reply``, RESULT with that."""
    callee, caller = await _peers(ctx, "callee", "caller")
    procedure = f"{URI}.{name}"
    registration = await _register(ctx, callee, procedure)
    request = caller.req()
    await caller.send(Call(request, {}, procedure, *call))
    invocation = await _invocation(ctx, callee, registration, f"for CALL {procedure}")
    _check_payload(ctx, "INVOCATION", invocation, call)
    await callee.send(Yield(invocation.request, {}, *reply))
    result = await expect_result(
        ctx, caller, request, "after the callee's YIELD", label="CALL.Request ", details=True
    )
    _check_payload(ctx, "RESULT", result, reply)


# -- registering -------------------------------------------------------------------


@scenario(
    "rpc.register.registered",
    "REGISTER is answered with REGISTERED for its request, with a registration ID in 1..2^53",
    SPEC_REGISTER,
)
async def register_registered(ctx: Context) -> None:
    (callee,) = await _peers(ctx, "callee")
    await _register(ctx, callee, f"{URI}.register.registered")


@scenario(
    "rpc.register.procedure_already_exists",
    "A second REGISTER of the same procedure by another session gets"
    " ERROR wamp.error.procedure_already_exists",
    f"{SPEC_REGISTER}; BP/uri_reference.md",
)
async def register_procedure_already_exists(ctx: Context) -> None:
    first, second = await _peers(ctx, "first_callee", "second_callee")
    procedure = f"{URI}.register.already_exists"
    await _register(ctx, first, procedure)
    request = second.req()
    await second.send(Register(request, {}, procedure))
    reply = await second.expect(Error, Registered, what="to a REGISTER of a registered procedure")
    if isinstance(reply, Registered):
        ctx.fail(
            f"expected ERROR {PROCEDURE_ALREADY_EXISTS}, got REGISTERED: the procedure"
            " was registered twice (one registration per procedure in the Basic Profile)"
        )
    assert isinstance(reply, Error)
    check_error(
        ctx, reply, MessageType.REGISTER, request, PROCEDURE_ALREADY_EXISTS, wanted="expected"
    )


@scenario(
    "rpc.register.invalid_uri",
    "REGISTER with an invalid procedure URI gets ERROR wamp.error.invalid_uri",
    "BP/uris.md; BP/uri_reference.md",
)
async def register_invalid_uri(ctx: Context) -> None:
    (callee,) = await _peers(ctx, "callee")
    for procedure in (f"{URI}.bad uri", f"{URI}..empty", f"{URI}.hash#"):
        assert not is_valid_uri(procedure)
        request = callee.req()
        await callee.send(Register(request, {}, procedure))
        reply = await callee.expect(Error, Registered, what=f"to REGISTER {procedure!r}")
        if isinstance(reply, Registered):
            ctx.fail(f"expected ERROR {INVALID_URI} for REGISTER {procedure!r}, got REGISTERED")
        assert isinstance(reply, Error)
        check_error(ctx, reply, MessageType.REGISTER, request, INVALID_URI, wanted="expected")


# -- unregistering ---------------------------------------------------------------------


@scenario(
    "rpc.unregister.unregistered",
    "UNREGISTER is answered with UNREGISTERED; later calls get wamp.error.no_such_procedure",
    SPEC_REGISTER,
)
async def unregister_unregistered(ctx: Context) -> None:
    callee, caller = await _peers(ctx, "callee", "caller")
    procedure = f"{URI}.unregister.unregistered"
    registration = await _register(ctx, callee, procedure)
    request = callee.req()
    await callee.send(Unregister(request, registration))
    reply = await callee.expect(Unregistered, what="in reply to UNREGISTER")
    ctx.check(
        reply.request == request,
        f"UNREGISTERED is for request {reply.request}, not UNREGISTER.Request {request}",
    )
    call = caller.req()
    await caller.send(Call(call, {}, procedure))
    await expect_error(
        ctx, caller, _CALL, call, NO_SUCH_PROCEDURE, what="for a CALL after UNREGISTER"
    )
    await callee.expect_nothing(0.2, "the procedure was unregistered")


@scenario(
    "rpc.unregister.no_such_registration",
    "UNREGISTER of a registration the session does not hold gets"
    " ERROR wamp.error.no_such_registration",
    f"{SPEC_REGISTER}; BP/uri_reference.md",
)
async def unregister_unknown(ctx: Context) -> None:
    (callee,) = await _peers(ctx, "callee")
    request = callee.req()
    await callee.send(Unregister(request, MAX_ID - 12345))
    await expect_error(
        ctx, callee, MessageType.UNREGISTER, request, NO_SUCH_REGISTRATION,
        what="for UNREGISTER of a registration never handed out",
    )  # fmt: skip


@scenario(
    "rpc.unregister.twice",
    "A second UNREGISTER of the same registration gets ERROR wamp.error.no_such_registration",
    f"{SPEC_REGISTER}; BP/uri_reference.md",
)
async def unregister_twice(ctx: Context) -> None:
    (callee,) = await _peers(ctx, "callee")
    registration = await _register(ctx, callee, f"{URI}.unregister.twice")
    request = callee.req()
    await callee.send(Unregister(request, registration))
    await callee.expect(Unregistered, what="in reply to the first UNREGISTER")
    request = callee.req()
    await callee.send(Unregister(request, registration))
    await expect_error(
        ctx, callee, MessageType.UNREGISTER, request, NO_SUCH_REGISTRATION,
        what="for the second UNREGISTER",
    )  # fmt: skip


# -- calling ------------------------------------------------------------------------


@scenario(
    "rpc.call.no_payload",
    "CALL without payload: INVOCATION and RESULT carry no payload either",
    SPEC_CALL,
)
async def call_no_payload(ctx: Context) -> None:
    await _roundtrip(ctx, "call.no_payload", call=(None, None), reply=(None, None))


@scenario(
    "rpc.call.args",
    "CALL with Args: INVOCATION gets the Args, RESULT the YIELD's Args, exactly",
    SPEC_CALL,
)
async def call_args(ctx: Context) -> None:
    await _roundtrip(ctx, "call.args", call=(["Hello, world!", 23, 7], None), reply=([30], None))


@scenario(
    "rpc.call.args_kwargs",
    "CALL with Args and Kw: INVOCATION and RESULT carry both, exactly",
    SPEC_CALL,
)
async def call_args_kwargs(ctx: Context) -> None:
    await _roundtrip(
        ctx,
        "call.args_kwargs",
        call=(["johnny"], {"firstname": "John", "surname": "Doe"}),
        reply=(["ok", 1], {"userid": 123, "karma": 10}),
    )


@scenario(
    "rpc.call.kwargs_only",
    "CALL with empty Args and Kw: INVOCATION and RESULT carry the Kw, exactly",
    SPEC_CALL,
)
async def call_kwargs_only(ctx: Context) -> None:
    await _roundtrip(
        ctx,
        "call.kwargs_only",
        call=([], {"a": 1, "b": "two"}),
        reply=([], {"userid": 123, "karma": 10}),
    )


NESTED: dict[str, Any] = {
    "unicode": "Grüße, 世界 — ☃ 🚀",
    "ключ": ["значение", {"深い": [1, -2, 3.5, True, False, None]}],
    "empty": {"list": [], "dict": {}, "string": ""},
    "numbers": [0, -1, 2**53, -(2**31), 0.25, 1e100],
    "deep": {"a": {"b": {"c": {"d": [[["bottom"]]]}}}},
}


@scenario(
    "rpc.call.nested_unicode",
    "Nested lists and dicts, Unicode strings, booleans, null, big integers and floats"
    " pass CALL→INVOCATION and YIELD→RESULT unchanged",
    SPEC_CALL,
)
async def call_nested_unicode(ctx: Context) -> None:
    await _roundtrip(
        ctx,
        "call.nested_unicode",
        call=([NESTED, "ünïcødé", [True, 1, 1.0]], {"nested": NESTED, "ø": None}),
        reply=([[NESTED], "ありがとう"], {"echo": NESTED, "flag": False}),
    )


@scenario(
    "rpc.call.invocation_request_ids",
    "INVOCATION request IDs of a new callee session start at 1 and go up by 1",
    "BP/building_blocks.md, Identifiers (session scope); " + SPEC_CALL,
)
async def invocation_request_ids(ctx: Context) -> None:
    callee, caller = await _peers(ctx, "callee", "caller")
    procedure = f"{URI}.call.invocation_request_ids"
    registration = await _register(ctx, callee, procedure)
    seen = []
    for index in range(3):
        request = caller.req()
        await caller.send(Call(request, {}, procedure, [index]))
        invocation = await _invocation(ctx, callee, registration, f"for CALL #{index + 1}")
        seen.append(invocation.request)
        await callee.send(Yield(invocation.request, {}, [index]))
        await expect_result(
            ctx, caller, request, f"for CALL #{index + 1}", label="CALL.Request ", details=True
        )
    ctx.check(
        seen == [1, 2, 3],
        f"INVOCATION.Request IDs to a new callee session were {seen}, expected [1, 2, 3]"
        " (BP/building_blocks.md: IDs in the session scope MUST be incremented by 1"
        " beginning with 1, for each direction; INVOCATION.Request is session scope)",
    )


@scenario(
    "rpc.call.no_such_procedure",
    "CALL to a procedure nobody registered gets ERROR wamp.error.no_such_procedure",
    f"{SPEC_CALL}; BP/uri_reference.md",
)
async def call_no_such_procedure(ctx: Context) -> None:
    (caller,) = await _peers(ctx, "caller")
    request = caller.req()
    await caller.send(Call(request, {}, f"{URI}.call.no_such_procedure.nobody", ["x"]))
    await expect_error(
        ctx, caller, _CALL, request, NO_SUCH_PROCEDURE, what="for a CALL nobody registered"
    )


@scenario(
    "rpc.call.invalid_uri",
    "CALL with an invalid procedure URI gets ERROR wamp.error.invalid_uri",
    "BP/uris.md; BP/uri_reference.md",
)
async def call_invalid_uri(ctx: Context) -> None:
    (caller,) = await _peers(ctx, "caller")
    for procedure in (f"{URI}.bad uri", f"{URI}..empty", f"{URI}.hash#"):
        assert not is_valid_uri(procedure)
        request = caller.req()
        await caller.send(Call(request, {}, procedure))
        await expect_error(ctx, caller, _CALL, request, INVALID_URI, what=f"for CALL {procedure!r}")


@scenario(
    "rpc.call.callee_error",
    "A callee's ERROR for an INVOCATION reaches the caller as ERROR for the CALL,"
    " with the same URI, Args and Kw",
    SPEC_CALL,
)
async def call_callee_error(ctx: Context) -> None:
    callee, caller = await _peers(ctx, "callee", "caller")
    procedure = f"{URI}.call.callee_error"
    registration = await _register(ctx, callee, procedure)
    request = caller.req()
    await caller.send(Call(request, {}, procedure, ["write"]))
    invocation = await _invocation(ctx, callee, registration, f"for CALL {procedure}")
    uri = "com.wamp_conformance.rpc.error.object_write_protected"
    args: list[Any] = ["Object is write protected.", {"code": 42}]
    kwargs: dict[str, Any] = {"severity": 3, "détail": ["ü", None]}
    await callee.send(Error(_INVOCATION, invocation.request, {}, uri, args, kwargs))
    error = await expect_error(ctx, caller, _CALL, request, uri, what="after the callee's ERROR")
    ctx.check(isinstance(error.details, dict), f"ERROR.Details is {error.details!r}")
    _check_payload(ctx, "the caller's ERROR", error, (args, kwargs))


@scenario(
    "rpc.call.concurrent_callers",
    "Several callers with several calls outstanding each get their own RESULT,"
    " matched by request ID",
    SPEC_CALL,
)
async def call_concurrent_callers(ctx: Context) -> None:
    callee, *callers = await _peers(ctx, "callee", "caller1", "caller2", "caller3")
    procedure = f"{URI}.call.concurrent_callers"
    registration = await _register(ctx, callee, procedure)
    calls_per_caller = 2
    requests: dict[tuple[int, int], int] = {}  # (caller index, call index) -> request ID
    for n in range(calls_per_caller):
        for index, caller in enumerate(callers):
            request = caller.req()
            requests[index, n] = request
            await caller.send(Call(request, {}, procedure, [index, n], {"who": caller.name}))
    invocations = []
    for count in range(len(requests)):
        invocation = await _invocation(
            ctx, callee, registration, f"#{count + 1} of {len(requests)} outstanding calls"
        )
        args = invocation.args or []
        ctx.check(
            len(args) == 2
            and all(type(arg) is int for arg in args)
            and (args[0], args[1]) in requests,
            f"INVOCATION carries Args={_short(invocation.args)}, which no CALL sent",
        )
        invocations.append(invocation)
    ids = [invocation.request for invocation in invocations]
    ctx.check(len(set(ids)) == len(ids), f"INVOCATION.Request IDs repeat: {ids}")
    seen = [tuple((invocation.args or [])[:2]) for invocation in invocations]
    ctx.check(
        sorted(seen) == sorted(requests),
        f"the callee got invocations for {sorted(seen)}, expected {sorted(requests)}",
    )
    # Answer in reverse order: RESULTs must still find their calls.
    for invocation in reversed(invocations):
        index, n = (invocation.args or [])[:2]
        await callee.send(Yield(invocation.request, {}, ["result", index, n]))
    for index, caller in enumerate(callers):
        expected = {requests[index, n]: n for n in range(calls_per_caller)}
        for _ in range(calls_per_caller):
            result = await caller.expect(Result, what="for one of its outstanding calls")
            ctx.check(
                result.request in expected,
                f"{caller.name}: RESULT for request {result.request}, expected one of"
                f" {sorted(expected)} (each caller gets only its own results)",
            )
            n = expected.pop(result.request)
            ctx.check(
                same(result.args, ["result", index, n]),
                f"{caller.name}: RESULT for request {result.request} carries"
                f" Args={result.args!r}, expected {['result', index, n]!r}"
                " (the result of that call)",
            )
        await caller.expect_nothing(0.1, "every call already has its RESULT")


# -- the callee leaving ------------------------------------------------------------------


async def _in_flight(ctx: Context, name: str) -> tuple[Peer, Peer, int, str]:
    """A callee holding an INVOCATION for a call of caller's: (callee, caller,
    CALL.Request, procedure)."""
    callee, caller = await _peers(ctx, "callee", "caller")
    procedure = f"{URI}.{name}"
    registration = await _register(ctx, callee, procedure)
    request = caller.req()
    await caller.send(Call(request, {}, procedure))
    await _invocation(ctx, callee, registration, f"for CALL {procedure}")
    return callee, caller, request, procedure


async def _callee_goodbye(callee: Peer) -> None:
    await callee.send(Goodbye({}, "wamp.close.close_realm"))
    await callee.expect(Goodbye, what="in reply to GOODBYE")


async def _caller_error(ctx: Context, caller: Peer, request: int, how: str) -> Error:
    reply = await caller.expect(
        Error, what=f"for the outstanding CALL after the callee {how} (caller left hanging?)"
    )
    ctx.check(
        (reply.request_type, reply.request) == (_CALL, request),
        f"ERROR is for request ({reply.request_type}, {reply.request}), not (CALL, {request})",
    )
    return reply


async def _gone(ctx: Context, caller: Peer, procedure: str, how: str, stale: int) -> None:
    """Calls to ``procedure`` must get no_such_procedure once the router noticed
    the callee left (a closed transport may take a moment to notice). The ERROR
    for the call that was in flight (CALL.Request ``stale``) is skipped: other
    scenarios judge it."""
    last = "nothing"
    with trio.move_on_after(ctx.timeout * 2):
        while True:
            request = caller.req()
            await caller.send(Call(request, {}, procedure))
            reply = await caller.receive()
            while isinstance(reply, Error) and reply.request == stale:
                reply = await caller.receive()
            if not (isinstance(reply, Error) and reply.request == request):
                ctx.fail(
                    f"expected ERROR for CALL {request} after the callee {how},"
                    f" got {describe(reply)}"
                )
            if reply.error == NO_SUCH_PROCEDURE:
                return
            last = f"ERROR {reply.error}"
            await trio.sleep(0.05)
    ctx.fail(
        f"after the callee {how}, expected ERROR {NO_SUCH_PROCEDURE} (its registration is"
        f" gone), got {last}"
    )


@scenario(
    "rpc.callee_leaves.goodbye.caller_error",
    "A callee that says GOODBYE with an invocation open: the caller gets ERROR"
    " (the spec says wamp.error.canceled), not silence",
    SPEC_CALLEE_LEAVING,
)
async def callee_goodbye_caller_error(ctx: Context) -> None:
    callee, caller, request, _ = await _in_flight(ctx, "callee_leaves.goodbye.caller_error")
    await _callee_goodbye(callee)
    await _caller_error(ctx, caller, request, "said GOODBYE")


@scenario(
    "rpc.callee_leaves.disconnect.caller_error",
    "A callee whose transport closes with an invocation open: the caller gets ERROR"
    " (the spec says wamp.error.canceled), not silence",
    SPEC_CALLEE_LEAVING,
)
async def callee_disconnect_caller_error(ctx: Context) -> None:
    callee, caller, request, _ = await _in_flight(ctx, "callee_leaves.disconnect.caller_error")
    await callee.aclose()
    await _caller_error(ctx, caller, request, "disconnected")


@scenario(
    "rpc.callee_leaves.canceled_uri",
    "The caller's ERROR after its callee left mid-call is wamp.error.canceled",
    SPEC_CALLEE_LEAVING,
)
async def callee_leaves_canceled_uri(ctx: Context) -> None:
    callee, caller, request, _ = await _in_flight(ctx, "callee_leaves.canceled_uri")
    await _callee_goodbye(callee)
    reply = await _caller_error(ctx, caller, request, "said GOODBYE")
    # BP/remote_procedure_call.md spells it "cancelled" once; the URI list says "canceled".
    ctx.check(
        reply.error in (CANCELED, CANCELED_MISSPELT),
        f"ERROR URI is {reply.error!r}, expected {CANCELED} (the Dealer SHALL return it)",
    )


@scenario(
    "rpc.callee_leaves.goodbye.unregistered",
    "After a callee with a call in flight says GOODBYE, its procedure is gone:"
    " calls get wamp.error.no_such_procedure",
    f"{SPEC_CALLEE_LEAVING}; BP/sessions.md, Session Closing",
)
async def callee_goodbye_unregistered(ctx: Context) -> None:
    callee, caller, request, procedure = await _in_flight(ctx, "callee_leaves.goodbye.unregistered")
    await _callee_goodbye(callee)
    await _gone(ctx, caller, procedure, "said GOODBYE", request)


@scenario(
    "rpc.callee_leaves.disconnect.unregistered",
    "After a callee with a call in flight disconnects, its procedure is gone:"
    " calls get wamp.error.no_such_procedure",
    f"{SPEC_CALLEE_LEAVING}; BP/sessions.md, Session Closing",
)
async def callee_disconnect_unregistered(ctx: Context) -> None:
    callee, caller, request, procedure = await _in_flight(
        ctx, "callee_leaves.disconnect.unregistered"
    )
    await callee.aclose()
    # Give the router a moment to notice the closed transport, so that the next
    # CALL is not routed to the dead callee (which other scenarios judge).
    await trio.sleep(min(0.2, ctx.timeout / 2))
    await _gone(ctx, caller, procedure, "disconnected", request)
