"""Advanced Profile RPC features of the dealer and the client session, in memory:
progressive call invocations, call timeouts, call rerouting, registration
revocation, caller identification on REGISTER, call trust levels, and how they
combine with progressive results and canceling (AP/ap_rpc_*.md).

Harness: tests/core/test_router.py (``Hub``, ``Wire``) and tests/core/pair.py.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from typing import Any

import pytest

import wamp_core._client as client_module
from tests.core.test_dealer import call_error, register, wire_register
from tests.core.test_router import (
    Hub,
    Recorder,
    ScriptedAuth,
    Wire,
    assert_clean,
    only,
    roles_with,
)
from wamp_core import (
    CLIENT_ROLES,
    ROUTER_ROLES,
    Accept,
    AuthOutcome,
    Call,
    Cancel,
    ClientSession,
    Error,
    ErrorReceived,
    ErrorURI,
    HelloInfo,
    Interrupt,
    Invocation,
    InvocationReceived,
    LocalProtocolError,
    MessageType,
    Registered,
    RegistrationRevoked,
    RemoteProtocolError,
    Result,
    ResultReceived,
    Router,
    SerializationError,
    SessionState,
    Subscribe,
    Subscribed,
    Unregister,
    Unregistered,
    Welcome,
    Yield,
)

T0 = 1_000_000.0
"""Router time at the start of every test (seconds)."""

NEW_DEALER_FEATURES = (
    "call_reroute",
    "call_timeout",
    "call_trustlevels",
    "progressive_call_invocations",
    "registration_revocation",
)
DEALER_ROLES: dict[str, dict[str, Any]] = {
    **ROUTER_ROLES,
    "dealer": {
        "features": {
            **ROUTER_ROLES["dealer"]["features"],
            **dict.fromkeys(NEW_DEALER_FEATURES, True),
        }
    },
}
"""ROUTER_ROLES with the dealer features this module implements (see the report)."""

CALLEE = roles_with(
    call_canceling=True,
    progressive_call_results=True,
    progressive_call_invocations=True,
    registration_revocation=True,
)
NO_CANCELING = roles_with(progressive_call_results=True, progressive_call_invocations=True)
NO_PCI = roles_with(call_canceling=True, progressive_call_results=True)
CANCELLING = roles_with(call_cancelling=True, progressive_call_invocations=True)
PROGRESS = {"progress": True}
TIMEOUT_INTERRUPT = {"mode": "killnowait", "reason": ErrorURI.TIMEOUT}


# -- helpers ----------------------------------------------------------------------------------


def make_hub(**options: Any) -> Hub:
    options.setdefault("roles", DEALER_ROLES)
    return Hub(Router(["realm1"], now=T0, **options))


def dealer_of(hub: Hub) -> Any:
    return hub.router.realms["realm1"].dealer


def shared(hub: Hub, invoke: str) -> tuple[Wire, Wire, Wire]:
    """Two callees sharing ``com.proc`` with policy ``invoke``, and a caller."""
    one, two = hub.joined_wire(roles=CALLEE), hub.joined_wire(roles=CALLEE)
    wire_register(one, "com.proc", {"invoke": invoke})
    wire_register(two, "com.proc", {"invoke": invoke})
    return one, two, hub.joined_wire()


def pair(
    hub: Hub,
    callee_roles: dict[str, Any] = CALLEE,
    options: dict[str, Any] | None = None,
    procedure: str = "com.proc",
) -> tuple[Wire, Wire, int]:
    """A callee wire that registered ``procedure`` and a caller wire."""
    callee = hub.joined_wire(roles=callee_roles)
    registration = wire_register(callee, procedure, options)
    return callee, hub.joined_wire(), registration


def tick(hub: Hub, seconds: float) -> None:
    """Advance the router's clock to T0 + ``seconds``."""
    hub.router.tick(T0 + seconds)


def error_uri(wire: Wire) -> str:
    error = wire.one(Error)
    return error.error


def assert_idle(hub: Hub, *wires: Wire) -> None:
    """No call is left in flight, no timer is pending, nothing comes later."""
    for wire in wires:
        assert wire.slot.calls == {}
        assert wire.slot.invocations == {}
    assert hub.router.next_deadline() is None
    hub.router.tick(hub.router.now + 10_000)
    for wire in wires:
        assert wire.take() == []


# -- progressive call results (AP/ap_rpc_progressive_call_results.md) ----------------------------


@pytest.mark.parametrize(
    ("roles", "forwarded"),
    [
        (roles_with(progressive_call_results=True, call_canceling=True), True),
        (roles_with(progressive_call_results=True, call_cancelling=True), True),
        (roles_with(progressive_call_results=True), False),
    ],
)
def test_progressive_results_need_call_canceling(roles: dict[str, Any], forwarded: bool) -> None:
    hub = make_hub()
    callee, caller, _ = pair(hub, roles)
    caller.send(Call(caller.req(), {"receive_progress": True}, "com.proc"))
    invocation = callee.one(Invocation)
    assert invocation.details == ({"receive_progress": True} if forwarded else {})
    callee.send(Yield(invocation.request, PROGRESS, [1]), Yield(invocation.request, {}, [2]))
    progressive = [Result(1, PROGRESS, [1])] if forwarded else []
    assert caller.take() == [*progressive, Result(1, {}, [2])]


# -- progressive call invocations (AP/ap_rpc_progressive_call_invocations.md) --------------------


def test_progressive_call_invocation() -> None:
    hub = make_hub(authenticator=ScriptedAuth())
    callee, caller, registration = pair(hub)
    options = {"progress": True, "disclose_me": True, "receive_progress": True}
    caller.send(Call(1, options, "com.proc", [1]))
    frozen = {
        "receive_progress": True,
        "caller": caller.session_id,
        "caller_authid": "nobody",
        "caller_authrole": "anonymous",
    }
    first = callee.one(Invocation)
    assert first == Invocation(first.request, registration, {**frozen, "progress": True}, [1])
    # Later options but progress are ignored: the first CALL's are frozen.
    caller.send(Call(1, {"progress": True, "disclose_me": False, "x": 1}, "com.proc", [2]))
    assert callee.take() == [Invocation(first.request, registration, {**frozen, **PROGRESS}, [2])]
    # Other requests go on with the next request ID meanwhile.
    caller.send(Call(2, {}, "com.nope"))
    assert error_uri(caller) == ErrorURI.NO_SUCH_PROCEDURE
    callee.send(Yield(first.request, PROGRESS, ["partial"]))
    assert caller.take() == [Result(1, PROGRESS, ["partial"])]
    caller.send(Call(1, {}, "com.proc", [3], {"last": True}))
    assert callee.take() == [Invocation(first.request, registration, frozen, [3], {"last": True})]
    callee.send(Yield(first.request, {}, ["done"]))
    assert caller.take() == [Result(1, {}, ["done"])]
    assert_idle(hub, caller, callee)
    caller.send(Call(3, {}, "com.nope"))  # the request IDs go on from the watermark
    assert error_uri(caller) == ErrorURI.NO_SUCH_PROCEDURE


def test_progressive_call_invocation_stays_with_its_callee() -> None:
    hub = make_hub()
    one, two, caller = shared(hub, "roundrobin")
    caller.send(Call(1, PROGRESS, "com.proc", ["a"]))
    invocation = one.one(Invocation)
    caller.send(Call(2, {}, "com.proc"))  # round-robin moves on for new calls
    assert two.one(Invocation).args is None
    caller.send(Call(1, PROGRESS, "com.proc", ["b"]), Call(1, {}, "com.proc", ["c"]))
    assert [(m.request, m.args) for m in one.take() if isinstance(m, Invocation)] == [
        (invocation.request, ["b"]),
        (invocation.request, ["c"]),
    ]
    assert two.take() == []


def test_callee_answering_early_drops_later_chunks() -> None:
    hub = make_hub()
    callee, caller, _ = pair(hub)
    caller.send(Call(1, PROGRESS, "com.proc", [1]))
    invocation = callee.one(Invocation)
    callee.send(Error(MessageType.INVOCATION, invocation.request, {}, "app.full"))
    assert caller.take() == [Error(MessageType.CALL, 1, {}, "app.full")]
    caller.send(Call(1, PROGRESS, "com.proc", [2]), Call(1, {}, "com.proc", [3]))
    assert callee.take() == []
    assert caller.take() == []
    assert caller.slot.state is SessionState.ESTABLISHED
    caller.send(Call(2, {}, "com.nope"))
    assert error_uri(caller) == ErrorURI.NO_SUCH_PROCEDURE


def test_chunk_after_the_last_one_is_a_violation() -> None:
    hub = make_hub()
    callee, caller, _ = pair(hub)
    caller.send(Call(1, PROGRESS, "com.proc"), Call(1, {}, "com.proc"))
    assert len(callee.take()) == 2
    assert (
        caller.violation(Call(1, PROGRESS, "com.proc")) == "CALL request 1 is already in progress"
    )


def test_continuing_a_plain_call_is_a_violation() -> None:
    hub = make_hub()
    callee, caller, _ = pair(hub)
    caller.send(Call(1, {}, "com.proc"))
    callee.one(Invocation)
    assert (
        caller.violation(Call(1, PROGRESS, "com.proc")) == "CALL request 1 is already in progress"
    )


@pytest.mark.parametrize("ended", [False, True])
def test_continuing_with_another_procedure_is_a_violation(ended: bool) -> None:
    hub = make_hub()
    callee, caller, _ = pair(hub)
    caller.send(Call(1, PROGRESS, "com.proc"))
    invocation = callee.one(Invocation)
    if ended:
        callee.send(Yield(invocation.request, {}))
        assert caller.take() == [Result(1, {})]
    assert caller.violation(Call(1, PROGRESS, "com.other")) == (
        "CALL request 1 continues a call to 'com.proc', not to 'com.other'"
    )


@pytest.mark.parametrize(
    ("request_id", "text"),
    [
        (3, "request ID 3 is not sequential (expected 2)"),  # > wm + 1: a gap
        (7, "request ID 7 is not sequential (expected 2)"),
    ],
)
def test_request_id_gap_is_a_violation(request_id: int, text: str) -> None:
    hub = make_hub()
    callee, caller, _ = pair(hub)
    caller.send(Call(1, PROGRESS, "com.proc"))
    callee.one(Invocation)
    assert caller.violation(Call(request_id, PROGRESS, "com.proc")) == text


def test_old_request_id_of_no_call_is_a_violation() -> None:
    hub = make_hub()
    callee, caller, _ = pair(hub)
    caller.send(Subscribe(1, {}, "com.t"), Call(2, PROGRESS, "com.proc"))
    assert isinstance(caller.one(Subscribed), Subscribed)
    callee.one(Invocation)
    assert caller.violation(Call(1, PROGRESS, "com.proc")) == (
        "request ID 1 is not sequential (expected 3)"
    )


def test_ended_calls_are_remembered_for_the_grace_period() -> None:
    hub = make_hub()
    dealer = dealer_of(hub)
    assert dealer.grace_period == 60.0
    callee, caller, _ = pair(hub)
    for request in (1, 2, 3):
        tick(hub, 20 * (request - 1))
        caller.send(Call(request, PROGRESS, "com.proc"))
        invocation = callee.one(Invocation)
        callee.send(Yield(invocation.request, {}))
        assert caller.take() == [Result(request, {})]
    # Ended at T0, T0+20, T0+40: all remembered at T0+40.
    assert list(dealer._ended[caller.slot]) == [1, 2, 3]
    tick(hub, 60)
    caller.send(Call(1, PROGRESS, "com.proc"))  # ended exactly 60 s ago: dropped
    assert caller.take() == []
    tick(hub, 70)
    # Another call ending now forgets the one that ended at T0.
    caller.send(Call(4, PROGRESS, "com.proc"))
    invocation = callee.one(Invocation)
    callee.send(Error(MessageType.INVOCATION, invocation.request, {}, "app.e"))
    caller.take()
    assert list(dealer._ended[caller.slot]) == [2, 3, 4]
    tick(hub, 85)
    caller.send(Call(3, {}, "com.proc"))  # still remembered: dropped
    assert caller.take() == []
    # 2 ended at T0+20, more than 60 s ago: no longer a continuation.
    assert caller.violation(Call(2, PROGRESS, "com.proc")) == (
        "request ID 2 is not sequential (expected 5)"
    )
    assert dealer._ended == {}  # the session left


def test_non_strict_request_ids() -> None:
    hub = make_hub(strict_request_ids=False)
    callee, caller, _ = pair(hub)
    caller.send(Call(40, PROGRESS, "com.proc", [1]))
    invocation = callee.one(Invocation)
    caller.send(Call(40, {}, "com.proc", [2]))
    assert callee.one(Invocation).args == [2]
    callee.send(Yield(invocation.request, {}))
    assert caller.take() == [Result(40, {})]
    caller.send(Call(9, PROGRESS, "com.proc"))
    invocation = callee.one(Invocation)
    callee.send(Yield(invocation.request, {}))
    caller.take()
    caller.send(Call(9, PROGRESS, "com.proc"))  # a late chunk: dropped
    assert caller.take() == []
    assert callee.take() == []
    caller.send(Call(40, {}, "com.proc"))  # 40 ended with its last chunk: a new call
    assert isinstance(callee.one(Invocation), Invocation)


def _no_progress_roles() -> dict[str, Any]:
    roles = dict(CLIENT_ROLES)
    features = dict(roles["caller"]["features"])
    del features["progressive_call_invocations"]
    roles["caller"] = {"features": features}
    return roles


@pytest.mark.parametrize(
    ("caller_roles", "router_roles", "text"),
    [
        (
            "no_feature",
            DEALER_ROLES,
            "CALL with progress, but the caller did not announce progressive_call_invocations",
        ),
        (
            "plain",
            {"dealer": {"features": {"call_canceling": True}}},
            "CALL with progress, but the dealer does not support it",
        ),
        ("plain", {"dealer": {}}, "CALL with progress, but the dealer does not support it"),
        ("plain", {}, "CALL with progress, but the dealer does not support it"),
    ],
)
def test_unannounced_progressive_call_is_a_violation(
    caller_roles: str, router_roles: dict[str, Any], text: str
) -> None:
    hub = make_hub(roles=router_roles)
    callee, _, _ = pair(hub)
    roles = _no_progress_roles() if caller_roles == "no_feature" else CLIENT_ROLES
    caller = hub.joined_wire(roles=roles)
    assert caller.violation(Call(1, PROGRESS, "com.proc")) == text
    assert callee.take() == []


@pytest.mark.parametrize("roles", [NO_PCI, NO_CANCELING, roles_with()])
def test_callee_without_the_features_is_refused(roles: dict[str, Any]) -> None:
    hub = make_hub()
    callee, caller, _ = pair(hub, roles)
    caller.send(Call(1, PROGRESS, "com.proc", [1]))
    assert caller.take() == [
        call_error(
            1,
            ErrorURI.FEATURE_NOT_SUPPORTED,
            "the callee does not support progressive call invocations",
        )
    ]
    # The chunks the caller sent meanwhile are dropped.
    caller.send(Call(1, PROGRESS, "com.proc", [2]), Call(1, {}, "com.proc", [3]))
    assert caller.take() == []
    assert callee.take() == []
    caller.send(Call(2, {}, "com.proc"))  # a plain call is fine
    assert isinstance(callee.one(Invocation), Invocation)


def test_callee_with_the_cancelling_spelling_is_accepted() -> None:
    hub = make_hub()
    callee, caller, _ = pair(hub, CANCELLING)
    caller.send(Call(1, PROGRESS, "com.proc"))
    assert callee.one(Invocation).details == PROGRESS


@pytest.mark.parametrize(
    ("procedure", "options", "error"),
    [
        ("com..bad", PROGRESS, ErrorURI.INVALID_URI),
        ("com.nope", PROGRESS, ErrorURI.NO_SUCH_PROCEDURE),
        ("com.proc", {"progress": True, "timeout": -1}, ErrorURI.INVALID_ARGUMENT),
        ("wamp.provided", PROGRESS, ErrorURI.FEATURE_NOT_SUPPORTED),
    ],
)
def test_refused_progressive_call_drops_later_chunks(
    procedure: str, options: dict[str, Any], error: str
) -> None:
    hub = make_hub()
    hub.router.add_procedure("wamp.provided", lambda session, call: (["r"], None))
    callee, caller, _ = pair(hub)
    caller.send(Call(1, options, procedure))
    assert error_uri(caller) == error
    caller.send(Call(1, PROGRESS, procedure), Call(1, {}, procedure))
    assert caller.take() == []
    assert callee.take() == []
    assert caller.slot.state is SessionState.ESTABLISHED


def test_first_chunk_the_callee_cannot_decode() -> None:
    hub = make_hub()
    callee = hub.joined_wire("json", roles=CALLEE)
    wire_register(callee, "com.proc")
    caller = hub.joined_wire("msgpack")
    caller.send(Call(1, PROGRESS, "com.proc", [math.nan]))
    assert caller.take() == [
        call_error(
            1,
            ErrorURI.INVALID_ARGUMENT,
            "the call's arguments cannot be encoded for the callee's serializer",
        )
    ]
    caller.send(Call(1, {}, "com.proc", [1]))
    assert caller.take() == []
    assert callee.take() == []


def test_later_chunk_the_callee_cannot_decode() -> None:
    hub = make_hub()
    callee = hub.joined_wire("json", roles=CALLEE)
    wire_register(callee, "com.proc")
    caller = hub.joined_wire("msgpack")
    caller.send(Call(1, {"progress": True, "timeout": 1000}, "com.proc", [1]))
    invocation = callee.one(Invocation)
    caller.send(Call(1, PROGRESS, "com.proc", [math.nan]))
    assert caller.take() == [
        call_error(
            1,
            ErrorURI.INVALID_ARGUMENT,
            "the call's arguments cannot be encoded for the callee's serializer",
        )
    ]
    assert callee.take() == [Interrupt(invocation.request, {"mode": "killnowait"})]
    caller.send(Call(1, {}, "com.proc", [2]))
    callee.send(Yield(invocation.request, {}))
    assert_idle(hub, caller, callee)


@pytest.mark.parametrize("mode", ["skip", "killnowait"])
def test_canceled_progressive_call_drops_later_chunks(mode: str) -> None:
    hub = make_hub()
    callee, caller, _ = pair(hub)
    caller.send(Call(1, PROGRESS, "com.proc", [1]))
    invocation = callee.one(Invocation)
    caller.send(Cancel(1, {"mode": mode}))
    assert caller.take() == [call_error(1, ErrorURI.CANCELED, "the call was canceled")]
    interrupt = [] if mode == "skip" else [Interrupt(invocation.request, {"mode": mode})]
    assert callee.take() == interrupt
    caller.send(Call(1, {}, "com.proc", [2]))
    assert callee.take() == []
    callee.send(Yield(invocation.request, {}))
    assert caller.take() == []


def test_killed_progressive_call_still_takes_chunks() -> None:
    hub = make_hub()
    callee, caller, _ = pair(hub)
    caller.send(Call(1, PROGRESS, "com.proc", [1]))
    invocation = callee.one(Invocation)
    caller.send(Cancel(1, {"mode": "kill"}))
    assert callee.take() == [Interrupt(invocation.request, {"mode": "kill"})]
    caller.send(Call(1, {}, "com.proc", [2]))
    assert callee.one(Invocation).args == [2]
    callee.send(Error(MessageType.INVOCATION, invocation.request, {}, ErrorURI.CANCELED))
    assert caller.take() == [Error(MessageType.CALL, 1, {}, ErrorURI.CANCELED)]


def test_caller_leaving_mid_stream_interrupts_the_callee() -> None:
    hub = make_hub()
    callee, caller, _ = pair(hub)
    caller.send(Call(1, PROGRESS, "com.proc", [1]))
    invocation = callee.one(Invocation)
    hub.drop(caller)
    assert callee.take() == [Interrupt(invocation.request, {"mode": "killnowait"})]
    assert dealer_of(hub)._ended == {}
    callee.send(Yield(invocation.request, {}))
    assert callee.take() == []


def test_callee_leaving_mid_stream_cancels_the_call() -> None:
    hub = make_hub()
    callee, caller, _ = pair(hub)
    caller.send(Call(1, PROGRESS, "com.proc", [1]))
    callee.one(Invocation)
    hub.drop(callee)
    assert caller.take() == [call_error(1, ErrorURI.CANCELED, "the callee left before answering")]
    caller.send(Call(1, {}, "com.proc", [2]))
    assert caller.take() == []
    hub.drop(caller)
    assert_clean(hub.router)
    assert dealer_of(hub)._ended == {}


def test_progressive_invocations_and_results_between_client_sessions() -> None:
    hub = make_hub()
    callee, caller = hub.client(), hub.client()
    register(hub, callee, "com.upload")
    request = caller.client.call(
        "com.upload", ["a"], options={"receive_progress": True}, progress=True
    )
    assert caller.client.open_calls == frozenset({request})
    hub.pump()
    first = only(callee, InvocationReceived)
    assert first.details == {"receive_progress": True, "progress": True}
    callee.client.yield_result(first.request_id, ["got a"], progress=True)
    caller.client.continue_call(request, ["b"], progress=True)
    hub.pump()
    assert caller.take() == [ResultReceived(request, ["got a"], None, PROGRESS, True)]
    second = only(callee, InvocationReceived)
    assert (second.request_id, second.args) == (first.request_id, ["b"])
    caller.client.continue_call(request, ["c"])
    assert caller.client.open_calls == frozenset()
    hub.pump()
    last = only(callee, InvocationReceived)
    assert (last.request_id, last.args, last.details) == (
        first.request_id,
        ["c"],
        {"receive_progress": True},
    )
    callee.client.yield_result(first.request_id, ["abc"])
    hub.pump()
    assert caller.take() == [ResultReceived(request, ["abc"], None, {})]


def test_callee_session_answering_early_drops_chunks_in_flight() -> None:
    hub = make_hub()
    callee, caller = hub.client(), hub.client()
    register(hub, callee, "com.upload")
    request = caller.client.call("com.upload", ["a"], progress=True)
    hub.pump()
    invocation = only(callee, InvocationReceived)
    # The router sends two more chunks before it gets the callee's answer.
    caller.client.continue_call(request, ["b"], progress=True)
    caller.client.continue_call(request, ["c"])
    for data in caller.client.data_to_send():
        hub.router.receive_data(caller.slot, data)
    callee.client.yield_error(invocation.request_id, "app.enough")
    hub.pump()
    assert callee.take() == []
    assert caller.take() == [ErrorReceived(MessageType.CALL, request, "app.enough", None, None, {})]
    assert callee.slot.state is SessionState.ESTABLISHED


def test_unavailable_progressive_call_is_not_rerouted() -> None:
    hub = make_hub()
    one, two, caller = shared(hub, "first")
    caller.send(Call(1, PROGRESS, "com.proc", [1]))
    invocation = one.one(Invocation)
    one.send(Error(MessageType.INVOCATION, invocation.request, {}, ErrorURI.UNAVAILABLE))
    assert caller.take() == [
        call_error(1, ErrorURI.NO_AVAILABLE_CALLEE, "no callee is available for 'com.proc'")
    ]
    assert two.take() == []
    caller.send(Call(1, {}, "com.proc", [2]))  # dropped
    assert_idle(hub, caller, one, two)


# -- call timeouts (AP/ap_rpc_call_timeout.md) ----------------------------------------------------


@pytest.mark.parametrize(
    ("roles", "interrupt"),
    [
        (CALLEE, [TIMEOUT_INTERRUPT]),
        (CANCELLING, [TIMEOUT_INTERRUPT]),
        (NO_CANCELING, []),  # skip: the callee is not told
    ],
)
def test_dealer_times_the_call(roles: dict[str, Any], interrupt: list[dict[str, Any]]) -> None:
    hub = make_hub()
    callee, caller, _ = pair(hub, roles)
    caller.send(Call(1, {"timeout": 1500}, "com.proc"))
    invocation = callee.one(Invocation)
    assert invocation.details == {}  # not forwarded
    assert hub.router.next_deadline() == T0 + 1.5
    tick(hub, 1.499)
    assert caller.take() == []
    tick(hub, 1.5)
    assert caller.take() == [call_error(1, ErrorURI.TIMEOUT, "the call timed out after 1500 ms")]
    assert callee.take() == [Interrupt(invocation.request, options) for options in interrupt]
    assert hub.router.next_deadline() is None
    callee.send(Error(MessageType.INVOCATION, invocation.request, {}, ErrorURI.CANCELED))
    assert_idle(hub, caller, callee)


@pytest.mark.parametrize("options", [{}, {"timeout": 0}])
def test_no_timeout(options: dict[str, Any]) -> None:
    hub = make_hub()
    callee, caller, _ = pair(hub)
    caller.send(Call(1, options, "com.proc"))
    callee.one(Invocation)
    assert hub.router.next_deadline() is None


@pytest.mark.parametrize("timeout", [-1, 1.5, 1000.0, True, False, "100", None, [100]])
def test_invalid_timeout_is_refused(timeout: Any) -> None:
    hub = make_hub()
    callee, caller, _ = pair(hub)
    caller.send(Call(1, {"timeout": timeout}, "com.proc"))
    assert caller.take() == [
        call_error(
            1,
            ErrorURI.INVALID_ARGUMENT,
            f"invalid timeout {timeout!r}: must be a non-negative integer (milliseconds)",
        )
    ]
    assert callee.take() == []
    assert hub.router.next_deadline() is None


def _yield(hub: Hub, caller: Wire, callee: Wire, invocation: Invocation) -> None:
    callee.send(Yield(invocation.request, {}, ["ok"]))
    assert caller.take() == [Result(1, {}, ["ok"])]


def _error(hub: Hub, caller: Wire, callee: Wire, invocation: Invocation) -> None:
    callee.send(Error(MessageType.INVOCATION, invocation.request, {}, "app.e"))
    assert caller.take() == [Error(MessageType.CALL, 1, {}, "app.e")]


def _cancel(mode: str) -> Callable[[Hub, Wire, Wire, Invocation], None]:
    def cancel(hub: Hub, caller: Wire, callee: Wire, invocation: Invocation) -> None:
        caller.send(Cancel(1, {"mode": mode}))
        assert caller.take() == [call_error(1, ErrorURI.CANCELED, "the call was canceled")]
        callee.take()
        callee.send(Yield(invocation.request, {}))

    return cancel


def _caller_leaves(hub: Hub, caller: Wire, callee: Wire, invocation: Invocation) -> None:
    hub.drop(caller)
    assert callee.take() == [Interrupt(invocation.request, {"mode": "killnowait"})]


def _callee_leaves(hub: Hub, caller: Wire, callee: Wire, invocation: Invocation) -> None:
    hub.drop(callee)
    assert caller.take() == [call_error(1, ErrorURI.CANCELED, "the callee left before answering")]


def _unavailable(hub: Hub, caller: Wire, callee: Wire, invocation: Invocation) -> None:
    callee.send(Error(MessageType.INVOCATION, invocation.request, {}, ErrorURI.UNAVAILABLE))
    assert error_uri(caller) == ErrorURI.NO_AVAILABLE_CALLEE


def _unreadable_progress(hub: Hub, caller: Wire, callee: Wire, invocation: Invocation) -> None:
    callee.send(Yield(invocation.request, PROGRESS, [math.nan]))
    assert error_uri(caller) == ErrorURI.INVALID_ARGUMENT
    assert callee.take() == [Interrupt(invocation.request, {"mode": "killnowait"})]
    callee.send(Yield(invocation.request, {}))


@pytest.mark.parametrize(
    "finish",
    [
        _yield,
        _error,
        _cancel("skip"),
        _cancel("killnowait"),
        _caller_leaves,
        _callee_leaves,
        _unavailable,
        _unreadable_progress,
    ],
    ids=[
        "yield",
        "error",
        "skip",
        "killnowait",
        "caller_leaves",
        "callee_leaves",
        "unavailable",
        "unreadable_progress",
    ],
)
def test_timer_stops_when_the_call_ends(
    finish: Callable[[Hub, Wire, Wire, Invocation], None],
) -> None:
    hub = make_hub()
    callee = hub.joined_wire("msgpack", roles=CALLEE)
    wire_register(callee, "com.proc")
    caller = hub.joined_wire("json")
    caller.send(Call(1, {"timeout": 1000, "receive_progress": True}, "com.proc"))
    invocation = callee.one(Invocation)
    tick(hub, 0.5)
    finish(hub, caller, callee, invocation)
    assert hub.router.next_deadline() is None
    tick(hub, 5)
    assert caller.take() == []
    assert callee.take() == []


def test_kill_then_timeout() -> None:
    hub = make_hub()
    callee, caller, _ = pair(hub)
    caller.send(Call(1, {"timeout": 1000}, "com.proc"))
    invocation = callee.one(Invocation)
    caller.send(Cancel(1, {"mode": "kill"}))
    assert callee.take() == [Interrupt(invocation.request, {"mode": "kill"})]
    assert caller.take() == []
    tick(hub, 1)
    # The caller stops waiting; the callee was interrupted already.
    assert caller.take() == [call_error(1, ErrorURI.TIMEOUT, "the call timed out after 1000 ms")]
    assert callee.take() == []
    callee.send(Error(MessageType.INVOCATION, invocation.request, {}, ErrorURI.CANCELED))
    assert_idle(hub, caller, callee)


def test_progressive_results_restart_the_timer() -> None:
    hub = make_hub()
    callee, caller, _ = pair(hub)
    caller.send(Call(1, {"timeout": 1000, "receive_progress": True}, "com.proc"))
    invocation = callee.one(Invocation)
    tick(hub, 0.8)
    callee.send(Yield(invocation.request, PROGRESS, [1]))
    assert caller.take() == [Result(1, PROGRESS, [1])]
    assert hub.router.next_deadline() == T0 + 1.8
    tick(hub, 1.5)
    assert caller.take() == []
    tick(hub, 1.8)
    assert error_uri(caller) == ErrorURI.TIMEOUT
    assert callee.take() == [Interrupt(invocation.request, TIMEOUT_INTERRUPT)]


def test_dropped_progressive_yield_does_not_restart_the_timer() -> None:
    hub = make_hub()
    callee, caller, _ = pair(hub)
    caller.send(Call(1, {"timeout": 1000}, "com.proc"))  # no receive_progress
    invocation = callee.one(Invocation)
    tick(hub, 0.8)
    callee.send(Yield(invocation.request, PROGRESS, [1]))
    assert caller.take() == []
    assert hub.router.next_deadline() == T0 + 1


def test_chunks_do_not_restart_the_timer() -> None:
    hub = make_hub()
    callee, caller, _ = pair(hub)
    caller.send(Call(1, {"timeout": 1000, "progress": True}, "com.proc", [1]))
    invocation = callee.one(Invocation)
    tick(hub, 0.9)
    caller.send(Call(1, PROGRESS, "com.proc", [2]))
    assert callee.one(Invocation).details == PROGRESS
    tick(hub, 1)
    assert error_uri(caller) == ErrorURI.TIMEOUT
    assert callee.take() == [Interrupt(invocation.request, TIMEOUT_INTERRUPT)]
    caller.send(Call(1, {}, "com.proc", [3]))  # dropped
    assert_idle(hub, caller)


def test_forward_timeout() -> None:
    hub = make_hub()
    callee, caller, _ = pair(hub, options={"forward_timeout": True})
    caller.send(Call(1, {"timeout": 2500}, "com.proc"))
    invocation = callee.one(Invocation)
    assert invocation.details == {"timeout": 2500}
    assert hub.router.next_deadline() is None
    callee.send(Error(MessageType.INVOCATION, invocation.request, {}, ErrorURI.TIMEOUT))
    assert caller.take() == [Error(MessageType.CALL, 1, {}, ErrorURI.TIMEOUT)]
    caller.send(Call(2, {}, "com.proc"))  # no timeout: nothing forwarded
    assert callee.one(Invocation).details == {}


@pytest.mark.parametrize("value", [False, "yes", 1])
def test_forward_timeout_must_be_true(value: Any) -> None:
    hub = make_hub()
    callee, caller, _ = pair(hub, options={"forward_timeout": value})
    caller.send(Call(1, {"timeout": 2500}, "com.proc"))
    assert callee.one(Invocation).details == {}
    assert hub.router.next_deadline() == T0 + 2.5


def test_rerouting_between_timing_and_forwarding_callees() -> None:
    hub = make_hub()
    timed, forwarding, timed_too = (hub.joined_wire(roles=CALLEE) for _ in range(3))
    wire_register(timed, "com.proc", {"invoke": "first"})
    wire_register(forwarding, "com.proc", {"invoke": "first", "forward_timeout": True})
    wire_register(timed_too, "com.proc", {"invoke": "first"})
    caller = hub.joined_wire()
    caller.send(Call(1, {"timeout": 1000}, "com.proc"))
    invocation = timed.one(Invocation)
    assert hub.router.next_deadline() == T0 + 1
    tick(hub, 0.5)
    timed.send(Error(MessageType.INVOCATION, invocation.request, {}, ErrorURI.UNAVAILABLE))
    # The forwarding callee times the call itself: the dealer's timer stops.
    invocation = forwarding.one(Invocation)
    assert invocation.details == {"timeout": 1000}
    assert hub.router.next_deadline() is None
    tick(hub, 0.7)
    forwarding.send(Error(MessageType.INVOCATION, invocation.request, {}, ErrorURI.UNAVAILABLE))
    # The next one does not: a new timer, from now.
    invocation = timed_too.one(Invocation)
    assert invocation.details == {}
    assert hub.router.next_deadline() == T0 + 1.7
    tick(hub, 1.7)
    assert error_uri(caller) == ErrorURI.TIMEOUT
    assert timed_too.take() == [Interrupt(invocation.request, TIMEOUT_INTERRUPT)]


def test_rerouting_keeps_the_running_timer() -> None:
    hub = make_hub()
    one, two, caller = shared(hub, "last")
    caller.send(Call(1, {"timeout": 1000}, "com.proc"))
    invocation = two.one(Invocation)
    tick(hub, 0.6)
    two.send(Error(MessageType.INVOCATION, invocation.request, {}, ErrorURI.UNAVAILABLE))
    assert isinstance(one.one(Invocation), Invocation)
    assert hub.router.next_deadline() == T0 + 1


def test_timeout_of_a_router_provided_procedure() -> None:
    hub = make_hub()
    hub.router.add_procedure("wamp.answer", lambda session, call: ([42], None))
    caller = hub.joined_wire()
    caller.send(Call(1, {"timeout": 10}, "wamp.answer"))
    assert caller.take() == [Result(1, {}, [42])]
    assert hub.router.next_deadline() is None


def test_caller_leaving_a_timed_call_stops_the_timer() -> None:
    hub = make_hub()
    callee, caller, _ = pair(hub, NO_CANCELING)
    caller.send(Call(1, {"timeout": 1000}, "com.proc"))
    invocation = callee.one(Invocation)
    caller.send(Call(2, {"timeout": 3000}, "com.proc"))
    second = callee.one(Invocation)
    hub.drop(caller)
    assert callee.take() == []  # no call canceling: nothing to tell
    assert hub.router.next_deadline() is None
    callee.send(Yield(invocation.request, {}), Yield(second.request, {}))
    assert_idle(hub, callee)


# -- caller identification and trust levels -----------------------------------------------


def test_disclose_caller_on_register() -> None:
    hub = make_hub(authenticator=ScriptedAuth())
    asking, plain = hub.joined_wire(), hub.joined_wire()
    wire_register(asking, "com.proc", {"invoke": "roundrobin", "disclose_caller": True})
    registration = wire_register(plain, "com.proc", {"invoke": "roundrobin"})
    caller = hub.joined_wire(authid="carol", authextra={"role": "ops"})
    caller.send(Call(1, {}, "com.proc"), Call(2, {}, "com.proc"))
    identity = {"caller": caller.session_id, "caller_authid": "carol", "caller_authrole": "ops"}
    assert asking.one(Invocation).details == identity
    assert plain.one(Invocation).details == {}
    caller.send(Call(3, {}, "com.proc"), Call(4, {"disclose_me": True}, "com.proc"))
    assert asking.one(Invocation).details == identity
    assert plain.one(Invocation).details == identity
    # Leaving the registration forgets the option.
    registration_object = dealer_of(hub).registrations[registration]
    assert registration_object.disclose_caller == {asking.slot}
    hub.drop(asking)
    assert registration_object.disclose_caller == set()


def test_trust_levels() -> None:
    class Trusting(ScriptedAuth):
        def hello(self, info: HelloInfo) -> AuthOutcome:
            level = info.details.get("authextra", {}).get("level")
            return Accept("joe", "user", trustlevel=level)

    hub = make_hub(authenticator=Trusting())
    callee, _, _ = pair(hub)
    for level in (0, 2, None):
        caller = hub.joined_wire(authextra={"level": level})
        caller.send(Call(1, {}, "com.proc"))
        details = callee.one(Invocation).details
        assert details == ({} if level is None else {"trustlevel": level})


# -- call rerouting (AP/ap_rpc_call_rerouting.md) -------------------------------------------------


def reroute_order(hub: Hub, callees: list[Wire], caller: Wire, request: int) -> list[int]:
    """Answer every INVOCATION of call ``request`` with unavailable; return the
    indices of the callees in the order they were invoked."""
    order: list[int] = []
    while True:
        for index, callee in enumerate(callees):
            invocations = [m for m in callee.take() if isinstance(m, Invocation)]
            if invocations:
                (invocation,) = invocations
                order.append(index)
                callee.send(
                    Error(MessageType.INVOCATION, invocation.request, {}, ErrorURI.UNAVAILABLE)
                )
                break
        else:
            assert caller.take() == [
                call_error(
                    request,
                    ErrorURI.NO_AVAILABLE_CALLEE,
                    "no callee is available for 'com.proc'",
                )
            ]
            return order


@pytest.mark.parametrize(
    ("invoke", "warmup", "expected"),
    [
        ("single", 0, [0]),
        ("first", 0, [0, 1, 2, 3]),
        ("last", 0, [3, 2, 1, 0]),
        ("roundrobin", 0, [0, 1, 2, 3]),
        ("roundrobin", 2, [2, 3, 0, 1]),  # the queue goes on from where it was
    ],
)
def test_rerouting_follows_the_policy(invoke: str, warmup: int, expected: list[int]) -> None:
    hub = make_hub()
    count = 1 if invoke == "single" else 4
    callees = [hub.joined_wire(roles=CALLEE) for _ in range(count)]
    for callee in callees:
        wire_register(callee, "com.proc", {"invoke": invoke})
    caller = hub.joined_wire()
    for _ in range(warmup):
        caller.send(Call(caller.req(), {}, "com.proc"))
        for callee in callees:
            for message in callee.take():
                assert isinstance(message, Invocation)
                callee.send(Yield(message.request, {}))
        caller.take()
    request = caller.req()
    caller.send(Call(request, {}, "com.proc", ["x"]))
    assert reroute_order(hub, callees, caller, request) == expected
    assert_idle(hub, caller, *callees)
    # The policy is unchanged for the next call.
    caller.send(Call(caller.req(), {}, "com.proc"))
    assert sum(len(callee.take()) for callee in callees) == 1


def test_random_rerouting_tries_each_callee_once() -> None:
    hub = make_hub(rng=random.Random(7))
    callees = [hub.joined_wire(roles=CALLEE) for _ in range(5)]
    for callee in callees:
        wire_register(callee, "com.proc", {"invoke": "random"})
    caller = hub.joined_wire()
    seen = set()
    for request in (1, 2, 3):
        caller.send(Call(request, {}, "com.proc"))
        order = reroute_order(hub, callees, caller, request)
        assert sorted(order) == [0, 1, 2, 3, 4]
        seen.add(tuple(order))
    assert len(seen) > 1


def test_rerouted_invocation_is_built_for_the_new_callee() -> None:
    hub = make_hub()
    plain = hub.joined_wire(roles=roles_with())
    progressive = hub.joined_wire(roles=CALLEE)
    wire_register(plain, "com", {"invoke": "first", "match": "prefix"})
    registration = wire_register(
        progressive, "com", {"invoke": "first", "match": "prefix", "disclose_caller": True}
    )
    caller = hub.joined_wire()
    caller.send(Call(1, {"receive_progress": True}, "com.proc", [1], {"k": 2}))
    invocation = plain.one(Invocation)
    assert invocation.details == {"procedure": "com.proc"}
    plain.send(Error(MessageType.INVOCATION, invocation.request, {}, ErrorURI.UNAVAILABLE))
    rerouted = progressive.one(Invocation)
    assert rerouted == Invocation(
        1,
        registration,
        {
            "procedure": "com.proc",
            "receive_progress": True,
            "caller": caller.session_id,
            "caller_authid": caller.slot.authid,
            "caller_authrole": "anonymous",
        },
        [1],
        {"k": 2},
    )
    progressive.send(Yield(rerouted.request, PROGRESS, ["p"]), Yield(rerouted.request, {}))
    assert caller.take() == [Result(1, PROGRESS, ["p"]), Result(1, {})]
    assert_idle(hub, caller, plain, progressive)


def test_rerouting_to_a_callee_that_cannot_decode() -> None:
    hub = make_hub()
    one = hub.joined_wire("msgpack", roles=CALLEE)
    two = hub.joined_wire("json", roles=CALLEE)
    wire_register(one, "com.proc", {"invoke": "first"})
    wire_register(two, "com.proc", {"invoke": "first"})
    caller = hub.joined_wire("msgpack")
    caller.send(Call(1, {"timeout": 1000}, "com.proc", [math.nan]))
    invocation = one.one(Invocation)
    one.send(Error(MessageType.INVOCATION, invocation.request, {}, ErrorURI.UNAVAILABLE))
    assert caller.take() == [
        call_error(
            1,
            ErrorURI.INVALID_ARGUMENT,
            "the call's arguments cannot be encoded for the callee's serializer",
        )
    ]
    assert_idle(hub, caller, one, two)


def test_unavailable_after_progressive_results_is_not_rerouted() -> None:
    hub = make_hub()
    one, two, caller = shared(hub, "first")
    caller.send(Call(1, {"receive_progress": True}, "com.proc"))
    invocation = one.one(Invocation)
    one.send(Yield(invocation.request, PROGRESS, [1]))
    one.send(Error(MessageType.INVOCATION, invocation.request, {}, ErrorURI.UNAVAILABLE))
    assert caller.take() == [
        Result(1, PROGRESS, [1]),
        call_error(1, ErrorURI.NO_AVAILABLE_CALLEE, "no callee is available for 'com.proc'"),
    ]
    assert_idle(hub, caller, one, two)


def test_unavailable_after_kill_is_not_rerouted() -> None:
    hub = make_hub()
    one, two, caller = shared(hub, "first")
    caller.send(Call(1, {}, "com.proc"))
    invocation = one.one(Invocation)
    caller.send(Cancel(1, {"mode": "kill"}))
    one.take()
    one.send(Error(MessageType.INVOCATION, invocation.request, {}, ErrorURI.UNAVAILABLE))
    assert error_uri(caller) == ErrorURI.NO_AVAILABLE_CALLEE
    assert_idle(hub, caller, one, two)


def test_unavailable_after_the_caller_gave_up_is_dropped() -> None:
    hub = make_hub()
    one, two, caller = shared(hub, "first")
    caller.send(Call(1, {}, "com.proc"))
    invocation = one.one(Invocation)
    caller.send(Cancel(1, {"mode": "skip"}))
    caller.take()
    one.send(Error(MessageType.INVOCATION, invocation.request, {}, ErrorURI.UNAVAILABLE))
    assert caller.take() == []
    assert_idle(hub, caller, one, two)


@pytest.mark.parametrize("others", [0, 1])
def test_unavailable_callee_that_unregistered_meanwhile(others: int) -> None:
    hub = make_hub()
    callee, caller, registration = pair(hub, options={"invoke": "first"})
    extra = [hub.joined_wire(roles=CALLEE) for _ in range(others)]
    for wire in extra:
        wire_register(wire, "com.proc", {"invoke": "first"})
    caller.send(Call(1, {}, "com.proc"))
    invocation = callee.one(Invocation)
    callee.send(Unregister(callee.req(), registration))
    callee.take()
    callee.send(Error(MessageType.INVOCATION, invocation.request, {}, ErrorURI.UNAVAILABLE))
    if others:
        rerouted = extra[0].one(Invocation)
        extra[0].send(Yield(rerouted.request, {}))
        assert caller.take() == [Result(1, {})]
    else:
        assert error_uri(caller) == ErrorURI.NO_AVAILABLE_CALLEE


def test_client_session_answers_unavailable() -> None:
    hub = make_hub()
    busy, idle = hub.client(), hub.client()
    register(hub, busy, "com.proc", {"invoke": "first"})
    register(hub, idle, "com.proc", {"invoke": "first"})
    caller = hub.client()
    request = caller.client.call("com.proc", [1])
    hub.pump()
    busy.client.yield_error(only(busy, InvocationReceived).request_id, ErrorURI.UNAVAILABLE)
    hub.pump()
    idle.client.yield_result(only(idle, InvocationReceived).request_id, ["done"])
    hub.pump()
    assert caller.take() == [ResultReceived(request, ["done"], None, {})]


# -- registration revocation (AP/ap_rpc_registration_revocation.md) -------------------------------


def test_revoke() -> None:
    hub = make_hub()
    recorder = Recorder()
    hub.router.observers.append(recorder)
    told, untold = hub.joined_wire(roles=CALLEE), hub.joined_wire(roles=NO_PCI)
    registration = wire_register(told, "com.proc", {"invoke": "first"})
    wire_register(untold, "com.proc", {"invoke": "first"})
    caller = hub.joined_wire()
    caller.send(Call(1, {}, "com.proc"))
    invocation = told.one(Invocation)
    recorder.calls.clear()
    dealer = dealer_of(hub)
    assert dealer.revoke(registration, "moving") is True
    assert told.take() == [Unregistered(0, {"registration": registration, "reason": "moving"})]
    assert untold.take() == []  # MUST NOT be sent to a callee without the feature
    assert recorder.calls == [
        ("unregistered", told.session_id, "com.proc"),
        ("unregistered", untold.session_id, "com.proc"),
        ("reg_deleted", untold.session_id, "com.proc"),
    ]
    assert dealer.registrations == {}
    assert told.slot.registrations == untold.slot.registrations == {}
    # A call already invoked still finishes.
    told.send(Yield(invocation.request, {}, ["late"]))
    assert caller.take() == [Result(1, {}, ["late"])]
    caller.send(Call(2, {}, "com.proc"))
    assert error_uri(caller) == ErrorURI.NO_SUCH_PROCEDURE
    assert dealer.revoke(registration) is False


def test_revoke_callee() -> None:
    hub = make_hub()
    one, two = hub.joined_wire(roles=CALLEE), hub.joined_wire(roles=CALLEE)
    registration = wire_register(one, "com.proc", {"invoke": "roundrobin"})
    wire_register(two, "com.proc", {"invoke": "roundrobin"})
    other = hub.joined_wire()
    dealer = dealer_of(hub)
    assert dealer.revoke_callee(registration, other.slot) is False
    assert dealer.revoke_callee(registration + 1, one.slot) is False
    assert dealer.revoke_callee(registration, one.slot) is True
    assert one.take() == [Unregistered(0, {"registration": registration})]
    assert two.take() == []
    assert dealer.registrations[registration].callees == [two.slot]
    with pytest.raises(LocalProtocolError, match="reason must be a string"):
        dealer.revoke(registration, 5)
    with pytest.raises(LocalProtocolError, match="reason must be a string"):
        dealer.revoke_callee(registration, two.slot, b"x")
    assert dealer.registrations[registration].callees == [two.slot]


def test_revocation_reaches_the_client_session() -> None:
    hub = make_hub()
    callee = hub.client()
    registration = register(hub, callee, "com.proc")
    dealer_of(hub).revoke(registration, "admin")
    hub.pump()
    assert callee.take() == [RegistrationRevoked(registration, "admin")]
    assert callee.client.registrations == frozenset()


# -- the client session -------------------------------------------------------------------------

WELCOME = Welcome(77, {"roles": DEALER_ROLES})


def joined(roles: dict[str, Any] | None = None, welcome: Welcome = WELCOME) -> ClientSession:
    session = ClientSession("json", roles=roles)
    session.join("realm1")
    session.receive_message(welcome)
    session.messages_to_send()
    return session


def test_client_roles_announce_the_features() -> None:
    caller = CLIENT_ROLES["caller"]["features"]
    callee = CLIENT_ROLES["callee"]["features"]
    assert caller["progressive_call_invocations"] is True
    for feature in ("progressive_call_invocations", "call_reroute", "call_trustlevels"):
        assert callee[feature] is True
    assert "call_timeout" not in callee


def test_client_progressive_call() -> None:
    session = joined()
    request = session.call("com.up", [1], options={"timeout": 10}, progress=True)
    assert session.messages_to_send() == [
        Call(request, {"timeout": 10, "progress": True}, "com.up", [1])
    ]
    assert session.open_calls == frozenset({request})
    session.continue_call(request, [2], progress=True)
    session.continue_call(request, None, {"k": 3})
    assert session.messages_to_send() == [
        Call(request, PROGRESS, "com.up", [2]),
        Call(request, {}, "com.up", None, {"k": 3}),
    ]
    assert session.open_calls == frozenset()
    assert session.pending_requests == {request: MessageType.CALL}
    with pytest.raises(LocalProtocolError, match="no progressive call"):
        session.continue_call(request)
    # The progress option alone does the same.
    second = session.call("com.up", options={"progress": True})
    assert session.open_calls == frozenset({second})
    plain = session.call("com.plain")
    with pytest.raises(LocalProtocolError, match="no progressive call"):
        session.continue_call(plain)


@pytest.mark.parametrize("answer", ["result", "error"])
def test_client_progressive_call_ends_with_its_answer(answer: str) -> None:
    session = joined()
    request = session.call("com.up", progress=True)
    session.receive_message(Result(request, PROGRESS, [1]))
    assert session.open_calls == frozenset({request})
    if answer == "result":
        session.receive_message(Result(request, {}))
    else:
        session.receive_message(Error(MessageType.CALL, request, {}, "app.e"))
    assert session.open_calls == frozenset()
    with pytest.raises(LocalProtocolError, match="no progressive call"):
        session.continue_call(request, [2])


def test_client_continue_call_checks() -> None:
    session = joined()
    request = session.call("com.up", progress=True)
    with pytest.raises(LocalProtocolError, match="args must be a list"):
        session.continue_call(request, "abc")
    with pytest.raises(SerializationError):
        session.continue_call(request, [math.nan])
    assert session.open_calls == frozenset({request})
    session.messages_to_send()
    session.leave()
    with pytest.raises(LocalProtocolError, match="cannot continue a call"):
        session.continue_call(request)


def _roles_without(role: str) -> dict[str, Any]:
    return {name: value for name, value in CLIENT_ROLES.items() if name != role}


@pytest.mark.parametrize(
    ("roles", "welcome", "text"),
    [
        (_roles_without("caller"), WELCOME, "this session did not announce"),
        ({"caller": {"features": []}}, WELCOME, "this session did not announce"),
        (None, Welcome(77, {}), "the router did not announce"),
        (None, Welcome(77, {"roles": {"dealer": {}}}), "the router did not announce"),
        (None, Welcome(77, {"roles": {"dealer": "x"}}), "the router did not announce"),
    ],
)
def test_client_progressive_call_needs_the_feature(
    roles: dict[str, Any] | None, welcome: Welcome, text: str
) -> None:
    session = joined(roles, welcome)
    with pytest.raises(LocalProtocolError, match=text):
        session.call("com.up", progress=True)
    assert session.messages_to_send() == []
    assert session.pending_requests == {}


def test_client_callee_receives_chunks() -> None:
    session = joined()
    request = session.register("com.up")
    session.receive_message(Registered(request, 20))
    events = [
        session.receive_message(Invocation(5, 20, {"progress": True, "caller": 1}, [1])),
        session.receive_message(Invocation(5, 20, {"progress": True, "caller": 1}, [2])),
        session.receive_message(Invocation(5, 20, {"caller": 1}, [3])),
    ]
    assert events == [
        [InvocationReceived(5, 20, [1], None, {"progress": True, "caller": 1})],
        [InvocationReceived(5, 20, [2], None, {"progress": True, "caller": 1})],
        [InvocationReceived(5, 20, [3], None, {"caller": 1})],
    ]
    assert session.pending_invocations == frozenset({5})
    with pytest.raises(RemoteProtocolError, match="INVOCATION 5 is already in progress"):
        session.receive_message(Invocation(5, 20, {"progress": True}, [4]))


@pytest.mark.parametrize("answer", ["yield", "error", "unregistered"])
def test_client_callee_drops_chunks_after_answering(answer: str) -> None:
    session = joined()
    request = session.register("com.up")
    session.receive_message(Registered(request, 20))
    session.messages_to_send()
    registration = 20 if answer != "unregistered" else 99
    events = session.receive_message(Invocation(5, registration, PROGRESS, [1]))
    if answer == "yield":
        session.yield_result(5, ["enough"])
    elif answer == "error":
        session.yield_error(5, "app.enough")
    else:
        assert events == []
        assert session.messages_to_send() == [
            Error(MessageType.INVOCATION, 5, {}, ErrorURI.NO_SUCH_REGISTRATION)
        ]
    assert session.pending_invocations == frozenset()
    assert session.receive_message(Invocation(5, registration, PROGRESS, [2])) == []
    assert session.receive_message(Invocation(5, registration, {}, [3])) == []
    assert session.receive_message(Interrupt(5, {"mode": "killnowait"})) == []
    session.messages_to_send()
    # The stream is over: the ID may come again (a new invocation).
    (event,) = session.receive_message(Invocation(5, 20, {}, [4]))
    assert isinstance(event, InvocationReceived)


def test_client_callee_answering_a_finished_stream_forgets_nothing() -> None:
    session = joined()
    request = session.register("com.up")
    session.receive_message(Registered(request, 20))
    session.receive_message(Invocation(5, 20, PROGRESS, [1]))
    session.receive_message(Invocation(5, 20, {}, [2]))
    session.yield_result(5)
    (event,) = session.receive_message(Invocation(5, 20, {}, [3]))  # a new one
    assert isinstance(event, InvocationReceived)


def test_client_callee_remembers_a_bounded_number_of_streams(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(client_module, "MAX_ENDED_STREAMS", 2)
    session = joined()
    request = session.register("com.up")
    session.receive_message(Registered(request, 20))
    for invocation in (1, 2, 3):
        session.receive_message(Invocation(invocation, 20, PROGRESS))
        session.yield_result(invocation)
    assert session.receive_message(Invocation(3, 20, PROGRESS)) == []
    assert session.receive_message(Invocation(2, 20, PROGRESS)) == []
    assert len(session.receive_message(Invocation(1, 20, PROGRESS))) == 1  # forgotten
