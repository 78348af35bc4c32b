"""The dealer (wamp_core._dealer): routed Remote Procedure Calls, in memory.

Harness: tests/core/test_router.py (``Hub`` carries ``ClientSession`` peers and
hand-driven ``Wire``s).
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from typing import Any

import pytest

from tests.core.pair import Peer
from tests.core.test_router import (
    PV,
    Hub,
    ScriptedAuth,
    Wire,
    assert_clean,
    only,
    roles_with,
)
from wamp_core import (
    Abort,
    Call,
    Cancel,
    Error,
    ErrorReceived,
    ErrorURI,
    Interrupt,
    InterruptReceived,
    Invocation,
    InvocationReceived,
    MessageType,
    Register,
    Registered,
    RegisterSucceeded,
    RemoteProtocolError,
    Result,
    ResultReceived,
    Router,
    SessionAborted,
    SessionState,
    Unregister,
    Unregistered,
    UnregisterSucceeded,
    Yield,
)

CANCELING = roles_with(call_canceling=True, progressive_call_results=True)
CANCELLING = roles_with(call_cancelling=True)  # the AP/ap_rpc_progressive_call_invocations spelling
NO_CANCELING = roles_with(progressive_call_results=True)
CANCELLING_PROGRESS = roles_with(call_cancelling=True, progressive_call_results=True)
NO_FEATURES: dict[str, Any] = {"caller": {}, "callee": {}}
NO_CALLEE_ROLE: dict[str, Any] = {"caller": {}}
BAD_FEATURES: dict[str, Any] = {"callee": {"features": ["call_canceling"]}}


def register(hub: Hub, peer: Peer, procedure: str, options: dict[str, Any] | None = None) -> int:
    """Register with a ClientSession peer; return the registration ID."""
    peer.client.register(procedure, options)
    hub.pump()
    return only(peer, RegisterSucceeded).registration_id


def wire_register(wire: Wire, procedure: str, options: dict[str, Any] | None = None) -> int:
    wire.send(Register(wire.req(), options or {}, procedure))
    return wire.one(Registered).registration


def canceled(request: int, text: str) -> ErrorReceived:
    return ErrorReceived(MessageType.CALL, request, ErrorURI.CANCELED, [text], None, {})


def call_error(request: int, error: str, text: str) -> Error:
    return Error(MessageType.CALL, request, {}, error, [text])


# -- registering -------------------------------------------------------------------------


def test_register() -> None:
    hub = Hub()
    wire = hub.joined_wire()
    wire.send(Register(1, {}, "com.proc"))
    registered = wire.one(Registered)
    assert registered.request == 1
    registration = hub.router.realms["realm1"].dealer.registrations[registered.registration]
    assert (registration.uri, registration.match, registration.invoke) == (
        "com.proc",
        "exact",
        "single",
    )
    assert registration.callees == [wire.slot]
    assert list(wire.slot.registrations) == [registered.registration]


@pytest.mark.parametrize("same_session", [False, True])
def test_a_procedure_is_registered_once(same_session: bool) -> None:
    hub = Hub()
    first = hub.joined_wire()
    wire_register(first, "com.proc")
    second = first if same_session else hub.joined_wire()
    request = second.req()
    second.send(Register(request, {}, "com.proc"))
    text = "procedure 'com.proc' is already registered"
    assert second.take() == [
        Error(MessageType.REGISTER, request, {}, ErrorURI.PROCEDURE_ALREADY_EXISTS, [text])
    ]


@pytest.mark.parametrize(
    ("procedure", "options", "error", "text"),
    [
        ("a..b", {}, ErrorURI.INVALID_URI, "invalid procedure URI 'a..b' for match policy 'exact'"),
        ("a b", {}, ErrorURI.INVALID_URI, "invalid procedure URI 'a b' for match policy 'exact'"),
        ("", {}, ErrorURI.INVALID_URI, "invalid procedure URI '' for match policy 'exact'"),
        (
            "wamp.x",
            {},
            ErrorURI.INVALID_URI,
            "invalid procedure URI 'wamp.x' for match policy 'exact'",
        ),
        ("wamp", {}, ErrorURI.INVALID_URI, "invalid procedure URI 'wamp' for match policy 'exact'"),
        (
            "a..b",
            {"match": "prefix"},
            ErrorURI.INVALID_URI,
            "invalid procedure URI 'a..b' for match policy 'prefix'",
        ),
        (
            "wamp..x",
            {"match": "wildcard"},
            ErrorURI.INVALID_URI,
            "invalid procedure URI 'wamp..x' for match policy 'wildcard'",
        ),
        ("a.b", {"match": "regex"}, ErrorURI.INVALID_ARGUMENT, "unknown match policy 'regex'"),
        ("a.b", {"match": ["x"]}, ErrorURI.INVALID_ARGUMENT, "unknown match policy ['x']"),
        (
            "a.b",
            {"invoke": "broadcast"},
            ErrorURI.INVALID_ARGUMENT,
            "unknown invocation policy 'broadcast'",
        ),
        ("a.b", {"invoke": {}}, ErrorURI.INVALID_ARGUMENT, "unknown invocation policy {}"),
    ],
)
def test_register_errors(procedure: str, options: dict[str, Any], error: str, text: str) -> None:
    hub = Hub()
    wire = hub.joined_wire()
    wire.send(Register(1, options, procedure))
    assert wire.take() == [Error(MessageType.REGISTER, 1, {}, error, [text])]
    assert hub.router.realms["realm1"].dealer.registrations == {}


# -- calling ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "kwargs"),
    [
        (None, None),
        ([1, "two", [3], {"four": 4}], None),
        ([], None),
        ([], {}),
        (None, {"a": 1}),
        ([1], {"a": {"b": [True, None, 1.5]}}),
    ],
)
def test_call_invocation_yield_result(
    args: list[Any] | None, kwargs: dict[str, Any] | None
) -> None:
    hub = Hub()
    callee, caller = hub.joined_wire(), hub.joined_wire("msgpack")
    registration = wire_register(callee, "com.proc")
    caller.send(Call(1, {}, "com.proc", args, kwargs))
    # On the wire, Kw without Args needs an empty Args list.
    wire_args = [] if args is None and kwargs is not None else args
    invocation = callee.one(Invocation)
    assert invocation == Invocation(1, registration, {}, wire_args, kwargs)
    assert caller.take() == []
    callee.send(Yield(invocation.request, {}, args, kwargs))
    assert caller.take() == [Result(1, {}, wire_args, kwargs)]
    assert callee.slot.invocations == {}
    assert caller.slot.calls == {}


def test_invocation_ids_are_sequential_per_callee() -> None:
    hub = Hub()
    callee, other = hub.joined_wire(), hub.joined_wire()
    wire_register(callee, "a.p")
    wire_register(other, "b.p")
    caller = hub.joined_wire()
    caller.send(Call(1, {}, "a.p"), Call(2, {}, "b.p"), Call(3, {}, "a.p"))
    assert [m.request for m in callee.take() if isinstance(m, Invocation)] == [1, 2]
    assert [m.request for m in other.take() if isinstance(m, Invocation)] == [1]


def test_callee_error_is_relayed() -> None:
    hub = Hub()
    callee, caller = hub.client(), hub.client()
    register(hub, callee, "com.proc")
    request = caller.client.call("com.proc", [1])
    hub.pump()
    invocation = only(callee, InvocationReceived)
    callee.client.yield_error(
        invocation.request_id, "com.error.failed", ["why"], {"code": 7}, {"extra": True}
    )
    hub.pump()
    assert caller.take() == [
        ErrorReceived(
            MessageType.CALL, request, "com.error.failed", ["why"], {"code": 7}, {"extra": True}
        )
    ]
    assert callee.slot.invocations == {}
    assert caller.slot.calls == {}


@pytest.mark.parametrize(
    ("procedure", "error", "text"),
    [
        ("com.nope", ErrorURI.NO_SUCH_PROCEDURE, "no callee registered procedure 'com.nope'"),
        ("wamp.x", ErrorURI.NO_SUCH_PROCEDURE, "no callee registered procedure 'wamp.x'"),
        ("a..b", ErrorURI.INVALID_URI, "invalid procedure URI 'a..b'"),
        ("a b", ErrorURI.INVALID_URI, "invalid procedure URI 'a b'"),
        ("", ErrorURI.INVALID_URI, "invalid procedure URI ''"),
    ],
)
def test_call_errors(procedure: str, error: str, text: str) -> None:
    hub = Hub()
    callee = hub.joined_wire()
    wire_register(callee, "com.proc")
    caller = hub.joined_wire()
    caller.send(Call(1, {}, procedure))
    assert caller.take() == [call_error(1, error, text)]
    assert callee.take() == []
    assert caller.slot.calls == {}


def test_outstanding_calls_answered_out_of_order() -> None:
    hub = Hub()
    callee, caller = hub.client(), hub.client()
    register(hub, callee, "com.proc")
    requests = [caller.client.call("com.proc", [i]) for i in range(4)]
    hub.pump()
    invocations = callee.take()
    assert len(invocations) == 4
    assert len(caller.slot.calls) == 4
    for index in (2, 0, 3, 1):
        invocation = invocations[index]
        assert isinstance(invocation, InvocationReceived)
        assert invocation.args == [index]
        callee.client.yield_result(invocation.request_id, [index * 10])
        hub.pump()
        assert caller.take() == [ResultReceived(requests[index], [index * 10], None, {})]
    assert callee.slot.invocations == {}
    assert caller.slot.calls == {}


@pytest.mark.parametrize(
    "message",
    [Yield(1, {}), Error(MessageType.INVOCATION, 1, {}, "app.error")],
    ids=["YIELD", "ERROR"],
)
def test_answer_for_unknown_invocation_is_a_violation(message: Yield | Error) -> None:
    hub = Hub()
    wire = hub.joined_wire()
    name = message.type.name
    assert wire.violation(message) == f"{name} for unknown INVOCATION 1"
    # ... also once the invocation was answered
    callee = hub.joined_wire()
    wire_register(callee, "a.p")
    caller = hub.joined_wire()
    caller.send(Call(1, {}, "a.p"))
    invocation = callee.one(Invocation)
    callee.send(Yield(invocation.request, {}))
    assert callee.violation(message) == f"{name} for unknown INVOCATION 1"


# -- sessions leaving ---------------------------------------------------------------------------


def leave_goodbye(hub: Hub, peer: Peer) -> None:
    peer.client.leave()
    hub.pump()


def leave_abort(hub: Hub, peer: Peer) -> None:
    hub.router.receive_message(peer.slot, Abort({}, "app.bye"))
    hub.peers.pop(peer.slot)


def leave_detach(hub: Hub, peer: Peer) -> None:
    hub.drop(peer)


def leave_violation(hub: Hub, peer: Peer) -> None:
    with pytest.raises(RemoteProtocolError):
        hub.router.receive_data(peer.slot, b"garbage")
    hub.pump()
    assert only(peer, SessionAborted).reason == PV


def leave_killed(hub: Hub, peer: Peer) -> None:
    hub.router.close_session(peer.slot)
    hub.pump()


LEAVES: list[Callable[[Hub, Peer], None]] = [
    leave_goodbye,
    leave_abort,
    leave_detach,
    leave_violation,
    leave_killed,
]


@pytest.mark.parametrize("leave", LEAVES)
def test_callee_leaves_mid_call(leave: Callable[[Hub, Peer], None]) -> None:
    hub = Hub()
    callee, caller = hub.client(), hub.client()
    register(hub, callee, "com.proc")
    first = caller.client.call("com.proc")
    second = caller.client.call("com.proc")
    hub.pump()
    assert len(callee.take()) == 2
    leave(hub, callee)
    hub.pump()
    text = "the callee left before answering"
    assert caller.take() == [canceled(first, text), canceled(second, text)]
    assert caller.slot.calls == {}
    assert hub.router.realms["realm1"].dealer.registrations == {}
    caller.client.call("com.proc")
    hub.pump()
    assert only(caller, ErrorReceived).error == ErrorURI.NO_SUCH_PROCEDURE


@pytest.mark.parametrize("leave", LEAVES)
@pytest.mark.parametrize(
    ("roles", "interrupted"),
    [
        (CANCELING, True),
        (CANCELLING, True),
        (NO_CANCELING, False),
        (NO_FEATURES, False),
        (NO_CALLEE_ROLE, False),
        (BAD_FEATURES, False),
    ],
    ids=["canceling", "cancelling", "no_canceling", "no_features", "no_role", "bad_features"],
)
def test_caller_leaves_mid_call(
    leave: Callable[[Hub, Peer], None], roles: dict[str, Any], interrupted: bool
) -> None:
    hub = Hub()
    callee = hub.client(roles=roles)
    caller = hub.client()
    register(hub, callee, "com.proc")
    caller.client.call("com.proc")
    caller.client.call("com.proc")
    hub.pump()
    first, second = callee.take()
    assert isinstance(first, InvocationReceived)
    assert isinstance(second, InvocationReceived)
    leave(hub, caller)
    hub.pump()
    if interrupted:
        assert callee.take() == [
            InterruptReceived(first.request_id, {"mode": "killnowait"}),
            InterruptReceived(second.request_id, {"mode": "killnowait"}),
        ]
    else:
        assert callee.take() == []
    # Late answers are dropped silently (no violation, nothing sent).
    callee.client.yield_result(first.request_id, ["late"])
    callee.client.yield_error(second.request_id, "app.error")
    hub.pump()
    assert callee.take() == []
    assert callee.slot.state is SessionState.ESTABLISHED
    assert callee.slot.invocations == {}


def test_callee_leaves_after_the_caller_gave_up() -> None:
    hub = Hub()
    callee = hub.client(roles=CANCELING)
    caller, other = hub.client(), hub.client()
    register(hub, callee, "com.proc")
    caller.client.call("com.proc")
    waiting = other.client.call("com.proc")
    hub.pump()
    assert len(callee.take()) == 2
    hub.drop(caller)
    hub.pump()
    assert isinstance(only(callee, InterruptReceived), InterruptReceived)
    hub.drop(callee)
    hub.pump()
    # Only the caller still waiting hears about it.
    assert other.take() == [canceled(waiting, "the callee left before answering")]
    hub.drop(other)
    assert_clean(hub.router)


def test_a_session_calling_itself_and_leaving() -> None:
    hub = Hub()
    peer = hub.client(roles=CANCELING)
    register(hub, peer, "com.proc")
    peer.client.call("com.proc")
    hub.pump()
    assert isinstance(only(peer, InvocationReceived), InvocationReceived)
    hub.drop(peer)
    assert hub.router.data_to_send() == []
    assert_clean(hub.router)


# -- progressive results -------------------------------------------------------------------------


def test_progressive_results() -> None:
    hub = Hub()
    callee, caller = hub.client(roles=CANCELING), hub.client()
    register(hub, callee, "com.proc")
    request = caller.client.call("com.proc", options={"receive_progress": True})
    hub.pump()
    invocation = only(callee, InvocationReceived)
    assert invocation.details == {"receive_progress": True}
    for chunk in range(3):
        callee.client.yield_result(invocation.request_id, [chunk], progress=True)
        hub.pump()
        assert caller.take() == [ResultReceived(request, [chunk], None, {"progress": True}, True)]
    callee.client.yield_result(invocation.request_id, ["done"], {"n": 3})
    hub.pump()
    assert caller.take() == [ResultReceived(request, ["done"], {"n": 3}, {}, False)]
    assert caller.slot.calls == {}
    assert callee.slot.invocations == {}


@pytest.mark.parametrize(
    ("options", "roles"),
    [
        ({}, CANCELING),
        ({"receive_progress": "yes"}, CANCELING),
        ({"receive_progress": True}, roles_with(call_canceling=True)),
        ({"receive_progress": True}, NO_FEATURES),
    ],
)
def test_progressive_yield_without_receive_progress_is_dropped(
    options: dict[str, Any], roles: dict[str, Any]
) -> None:
    hub = Hub()
    callee, caller = hub.client(roles=roles), hub.client()
    register(hub, callee, "com.proc")
    request = caller.client.call("com.proc", options=options)
    hub.pump()
    invocation = only(callee, InvocationReceived)
    assert invocation.details == {}
    callee.client.yield_result(invocation.request_id, [1], progress=True)
    hub.pump()
    assert caller.take() == []
    callee.client.yield_result(invocation.request_id, [2])
    hub.pump()
    assert caller.take() == [ResultReceived(request, [2], None, {})]


def test_progressive_error_ends_the_call() -> None:
    hub = Hub()
    callee, caller = hub.client(roles=CANCELING), hub.client()
    register(hub, callee, "com.proc")
    request = caller.client.call("com.proc", options={"receive_progress": True})
    hub.pump()
    invocation = only(callee, InvocationReceived)
    callee.client.yield_result(invocation.request_id, [1], progress=True)
    callee.client.yield_error(invocation.request_id, "app.failed")
    hub.pump()
    assert caller.take() == [
        ResultReceived(request, [1], None, {"progress": True}, True),
        ErrorReceived(MessageType.CALL, request, "app.failed", None, None, {}),
    ]


# -- canceling ----------------------------------------------------------------------------------

CANCEL_CASES: list[tuple[dict[str, Any], dict[str, Any], str | None, bool]] = [
    # (CANCEL.Options, callee roles, INTERRUPT mode sent, caller answered at once)
    ({"mode": "skip"}, CANCELING, None, True),
    ({"mode": "kill"}, CANCELING, "kill", False),
    ({"mode": "killnowait"}, CANCELING, "killnowait", True),
    ({}, CANCELING, "killnowait", True),  # the default mode
    ({"mode": "kill"}, CANCELLING, "kill", False),
    ({"mode": "killnowait"}, CANCELLING, "killnowait", True),
    # A callee without call_canceling always gets skip.
    ({"mode": "kill"}, NO_CANCELING, None, True),
    ({"mode": "killnowait"}, NO_FEATURES, None, True),
    ({}, NO_CALLEE_ROLE, None, True),
]


@pytest.mark.parametrize(("options", "roles", "interrupt", "answered"), CANCEL_CASES)
def test_cancel_modes(
    options: dict[str, Any], roles: dict[str, Any], interrupt: str | None, answered: bool
) -> None:
    hub = Hub()
    callee = hub.client(roles=roles)
    caller = hub.joined_wire()
    register(hub, callee, "com.proc")
    caller.send(Call(1, {}, "com.proc"))
    hub.pump()
    invocation = only(callee, InvocationReceived)
    caller.send(Cancel(1, options))
    hub.pump()
    if interrupt is None:
        assert callee.take() == []
    else:
        assert callee.take() == [InterruptReceived(invocation.request_id, {"mode": interrupt})]
    if answered:
        assert caller.take() == [call_error(1, ErrorURI.CANCELED, "the call was canceled")]
        assert caller.slot.calls == {}
    else:
        assert caller.take() == []
    # The callee's answer reaches the caller only if it still waits.
    callee.client.yield_error(invocation.request_id, ErrorURI.CANCELED)
    if answered:
        assert caller.take() == []
    else:
        assert caller.take() == [Error(MessageType.CALL, 1, {}, ErrorURI.CANCELED)]
    assert callee.slot.invocations == {}
    assert caller.slot.calls == {}
    assert callee.slot.state is SessionState.ESTABLISHED


@pytest.mark.parametrize("options", [{"mode": "bogus"}, {"mode": ["kill"]}, {"mode": None}])
def test_cancel_with_unknown_mode_is_ignored(options: dict[str, Any]) -> None:
    hub = Hub()
    callee = hub.client(roles=CANCELING)
    caller = hub.joined_wire()
    register(hub, callee, "com.proc")
    caller.send(Call(1, {}, "com.proc"))
    hub.pump()
    invocation = only(callee, InvocationReceived)
    caller.send(Cancel(1, options))
    hub.pump()
    assert caller.take() == []
    assert callee.take() == []
    callee.client.yield_result(invocation.request_id, ["ok"])
    assert caller.take() == [Result(1, {}, ["ok"])]


@pytest.mark.parametrize("mode", ["skip", "kill", "killnowait"])
def test_cancel_after_the_call_finished_is_ignored(mode: str) -> None:
    hub = Hub()
    callee = hub.client(roles=CANCELING)
    caller = hub.joined_wire()
    register(hub, callee, "com.proc")
    caller.send(Call(1, {}, "com.proc"))
    hub.pump()
    invocation = only(callee, InvocationReceived)
    callee.client.yield_result(invocation.request_id)
    assert caller.take() == [Result(1, {})]
    caller.send(Cancel(1, {"mode": mode}), Cancel(99, {"mode": mode}))
    hub.pump()
    assert caller.take() == []
    assert callee.take() == []


def test_repeated_kill_sends_one_interrupt() -> None:
    hub = Hub()
    callee = hub.joined_wire(roles=CANCELING)
    caller = hub.joined_wire()
    wire_register(callee, "com.proc")
    caller.send(Call(1, {}, "com.proc"))
    invocation = callee.one(Invocation)
    caller.send(Cancel(1, {"mode": "kill"}), Cancel(1, {"mode": "kill"}))
    assert callee.take() == [Interrupt(invocation.request, {"mode": "kill"})]
    assert caller.take() == []
    # Giving up afterwards answers the caller, without a second INTERRUPT.
    caller.send(Cancel(1, {"mode": "killnowait"}))
    assert callee.take() == []
    assert caller.take() == [call_error(1, ErrorURI.CANCELED, "the call was canceled")]
    # Nor does leaving.
    hub.drop(caller)
    assert callee.take() == []
    callee.send(Yield(invocation.request, {}))
    assert callee.take() == []
    assert_clean_calls(callee, caller)


def test_caller_leaving_after_kill_sends_no_second_interrupt() -> None:
    hub = Hub()
    callee = hub.joined_wire(roles=CANCELING)
    caller = hub.joined_wire()
    wire_register(callee, "com.proc")
    caller.send(Call(1, {}, "com.proc"))
    invocation = callee.one(Invocation)
    caller.send(Cancel(1, {"mode": "kill"}))
    assert callee.take() == [Interrupt(invocation.request, {"mode": "kill"})]
    hub.drop(caller)
    assert callee.take() == []
    callee.send(Error(MessageType.INVOCATION, invocation.request, {}, ErrorURI.CANCELED))
    assert callee.take() == []
    assert_clean_calls(callee, caller)


def assert_clean_calls(*wires: Wire) -> None:
    for wire in wires:
        assert wire.slot.calls == {}
        assert wire.slot.invocations == {}


def test_progressive_call_canceled_drops_later_chunks() -> None:
    hub = Hub()
    callee = hub.joined_wire(roles=CANCELING)
    caller = hub.joined_wire()
    wire_register(callee, "com.proc")
    caller.send(Call(1, {"receive_progress": True}, "com.proc"))
    invocation = callee.one(Invocation)
    callee.send(Yield(invocation.request, {"progress": True}, [1]))
    assert caller.take() == [Result(1, {"progress": True}, [1])]
    caller.send(Cancel(1, {"mode": "killnowait"}))
    assert caller.take() == [call_error(1, ErrorURI.CANCELED, "the call was canceled")]
    callee.send(Yield(invocation.request, {"progress": True}, [2]), Yield(invocation.request, {}))
    assert caller.take() == []
    assert_clean_calls(callee, caller)


# -- caller identification -------------------------------------------------------------------------


@pytest.mark.parametrize("disclose", [True, False, "yes"])
def test_caller_identification(disclose: Any) -> None:
    hub = Hub(Router(["realm1"], authenticator=ScriptedAuth()))
    callee = hub.client()
    caller = hub.client(authid="carol", authextra={"role": "ops"})
    register(hub, callee, "com.proc")
    caller.client.call("com.proc", options={"disclose_me": disclose})
    hub.pump()
    details = only(callee, InvocationReceived).details
    if disclose is True:
        assert details == {
            "caller": caller.client.session_id,
            "caller_authid": "carol",
            "caller_authrole": "ops",
        }
    else:
        assert details == {}


# -- pattern-based registrations ----------------------------------------------------------------

PATTERN_CASES: list[tuple[list[tuple[str, str]], str, int | None]] = [
    # (registrations, called URI, index of the registration that gets the call)
    ([("a.b.c", "exact"), ("a.b", "prefix"), ("a..c", "wildcard")], "a.b.c", 0),
    ([("a.b.c", "exact"), ("a.b", "prefix"), ("a..c", "wildcard")], "a.b.d", 1),
    ([("a.b.c", "exact"), ("a.b", "prefix"), ("a..c", "wildcard")], "a.x.c", 2),
    ([("a.b.c", "exact"), ("a.b", "prefix"), ("a..c", "wildcard")], "a.x.d", None),
    ([("a", "prefix"), ("a.b", "prefix"), ("a.b.c.d", "prefix")], "a.b.c", 1),
    ([("a.b", "prefix")], "a.bc", 0),
    ([("a.b", "prefix")], "a", None),
    ([("a..c", "wildcard"), ("a.b.", "wildcard")], "a.b.c", 1),
    ([(".b.c", "wildcard"), ("a..c", "wildcard")], "a.b.c", 1),
    ([("a..", "wildcard"), ("..c", "wildcard")], "a.b.c", 0),
    ([("a..c", "wildcard")], "a.b.c.d", None),
    ([("a..c", "wildcard")], "a.b", None),
]


@pytest.mark.parametrize(("registrations", "uri", "winner"), PATTERN_CASES)
def test_pattern_based_registrations(
    registrations: list[tuple[str, str]], uri: str, winner: int | None
) -> None:
    hub = Hub()
    callees = [hub.client() for _ in registrations]
    ids = [
        register(hub, callee, procedure, {"match": match})
        for callee, (procedure, match) in zip(callees, registrations)
    ]
    caller = hub.client()
    request = caller.client.call(uri, [1])
    hub.pump()
    for index, callee in enumerate(callees):
        events = callee.take()
        if index != winner:
            assert events == []
            continue
        (invocation,) = events
        assert isinstance(invocation, InvocationReceived)
        assert invocation.registration_id == ids[index]
        assert invocation.args == [1]
        if registrations[index][1] == "exact":
            assert invocation.details == {}
        else:
            assert invocation.details == {"procedure": uri}
            assert invocation.procedure == uri
        callee.client.yield_result(invocation.request_id, ["r"])
    hub.pump()
    if winner is None:
        assert only(caller, ErrorReceived).error == ErrorURI.NO_SUCH_PROCEDURE
    else:
        assert caller.take() == [ResultReceived(request, ["r"], None, {})]


def test_same_uri_with_different_policies_are_separate_registrations() -> None:
    hub = Hub()
    a, b, c = hub.client(), hub.client(), hub.client()
    ids = {
        register(hub, a, "a.b"),
        register(hub, b, "a.b", {"match": "prefix"}),
        register(hub, c, "a.b", {"match": "wildcard"}),
    }
    assert len(ids) == 3


# -- shared registrations -------------------------------------------------------------------------


def invoked_indices(
    hub: Hub, callees: list[Peer], calls: int, procedure: str = "com.proc"
) -> list[int]:
    """Make ``calls`` calls; return which callee got each, answering them all."""
    caller = hub.client()
    got: list[int] = []
    for _ in range(calls):
        caller.client.call(procedure)
        hub.pump()
        for index, callee in enumerate(callees):
            for event in callee.take():
                assert isinstance(event, InvocationReceived)
                got.append(index)
                callee.client.yield_result(event.request_id)
        hub.pump()
        assert isinstance(only(caller, ResultReceived), ResultReceived)
    return got


@pytest.mark.parametrize(
    ("invoke", "expected"),
    [
        ("roundrobin", [0, 1, 2, 0, 1, 2, 0]),
        ("first", [0] * 7),
        ("last", [2] * 7),
    ],
)
def test_shared_registration_policies(invoke: str, expected: list[int]) -> None:
    hub = Hub()
    callees = [hub.client() for _ in range(3)]
    registration = {register(hub, c, "com.proc", {"invoke": invoke}) for c in callees}
    assert len(registration) == 1
    assert invoked_indices(hub, callees, 7) == expected


def test_shared_random_uses_the_injected_rng() -> None:
    hub = Hub(Router(["realm1"], rng=random.Random(1234)))
    callees = [hub.client() for _ in range(3)]
    for callee in callees:
        register(hub, callee, "com.proc", {"invoke": "random"})
    reference = random.Random(1234)
    expected = [reference.randrange(3) for _ in range(20)]
    assert invoked_indices(hub, callees, 20) == expected
    assert len(set(expected)) == 3


@pytest.mark.parametrize("invoke", ["roundrobin", "first", "last", "random"])
def test_shared_registration_after_a_callee_leaves(invoke: str) -> None:
    hub = Hub(Router(["realm1"], rng=random.Random(5)))
    callees = [hub.client() for _ in range(3)]
    for callee in callees:
        register(hub, callee, "com.proc", {"invoke": invoke})
    invoked_indices(hub, callees, 2)
    hub.drop(callees[0] if invoke != "last" else callees[2])
    rest = callees[1:] if invoke != "last" else callees[:2]
    got = invoked_indices(hub, rest, 6)
    if invoke == "first":
        assert got == [0] * 6
    elif invoke == "last":
        assert got == [1] * 6
    elif invoke == "roundrobin":
        assert got == [0, 1, 0, 1, 0, 1]  # the position moved on, modulo the new count
    else:
        assert set(got) <= {0, 1}


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ({}, {}),
        ({}, {"invoke": "roundrobin"}),
        ({"invoke": "roundrobin"}, {}),
        ({"invoke": "roundrobin"}, {"invoke": "single"}),
        ({"invoke": "roundrobin"}, {"invoke": "first"}),
        ({"invoke": "last"}, {"invoke": "random"}),
    ],
)
def test_mixing_invocation_policies_is_refused(
    first: dict[str, Any], second: dict[str, Any]
) -> None:
    hub = Hub()
    one, two = hub.joined_wire(), hub.joined_wire()
    registration = wire_register(one, "com.proc", first)
    two.send(Register(1, second, "com.proc"))
    assert two.take() == [
        Error(
            MessageType.REGISTER,
            1,
            {},
            ErrorURI.PROCEDURE_ALREADY_EXISTS,
            ["procedure 'com.proc' is already registered"],
        )
    ]
    dealer = hub.router.realms["realm1"].dealer
    assert dealer.registrations[registration].callees == [one.slot]


def test_same_session_cannot_join_a_shared_registration_twice() -> None:
    hub = Hub()
    wire = hub.joined_wire()
    wire_register(wire, "com.proc", {"invoke": "roundrobin"})
    wire.send(Register(2, {"invoke": "roundrobin"}, "com.proc"))
    assert wire.take() == [
        Error(
            MessageType.REGISTER,
            2,
            {},
            ErrorURI.PROCEDURE_ALREADY_EXISTS,
            ["this session already registered 'com.proc'"],
        )
    ]


# -- unregistering ---------------------------------------------------------------------------------


def test_unregister() -> None:
    hub = Hub()
    callee, caller = hub.client(), hub.client()
    registration = register(hub, callee, "com.proc")
    request = callee.client.unregister(registration)
    hub.pump()
    assert callee.take() == [UnregisterSucceeded(request, registration)]
    assert hub.router.realms["realm1"].dealer.registrations == {}
    assert callee.slot.registrations == {}
    caller.client.call("com.proc")
    hub.pump()
    assert only(caller, ErrorReceived).error == ErrorURI.NO_SUCH_PROCEDURE


def test_unregister_reply_is_exact_and_pending_calls_still_finish() -> None:
    hub = Hub()
    callee, caller = hub.joined_wire(), hub.joined_wire()
    registration = wire_register(callee, "com.proc")
    caller.send(Call(1, {}, "com.proc"))
    invocation = callee.one(Invocation)
    callee.send(Unregister(2, registration))
    assert callee.take() == [Unregistered(2)]
    callee.send(Yield(invocation.request, {}, ["still"]))
    assert caller.take() == [Result(1, {}, ["still"])]


@pytest.mark.parametrize("whose", ["unknown", "foreign", "shared_other"])
def test_unregister_errors(whose: str) -> None:
    hub = Hub()
    owner, wire = hub.joined_wire(), hub.joined_wire()
    options = {"invoke": "first"} if whose == "shared_other" else {}
    registration = wire_register(owner, "com.proc", options)
    if whose == "unknown":
        registration += 1
    request = wire.req()
    wire.send(Unregister(request, registration))
    assert wire.take() == [
        Error(
            MessageType.UNREGISTER,
            request,
            {},
            ErrorURI.NO_SUCH_REGISTRATION,
            [f"no registration {registration} for this session"],
        )
    ]
    assert len(hub.router.realms["realm1"].dealer.registrations) == 1


@pytest.mark.parametrize("how", ["unregister", "goodbye", "detach"])
def test_registration_is_deleted_with_its_last_callee(how: str) -> None:
    hub = Hub()
    callees = [hub.client(), hub.client()]
    for callee in callees:
        register(hub, callee, "com.proc", {"invoke": "roundrobin"})
        register(hub, callee, "com", {"match": "prefix", "invoke": "first"})
        register(hub, callee, "com..x", {"match": "wildcard", "invoke": "last"})
    dealer = hub.router.realms["realm1"].dealer
    assert len(dealer.registrations) == 3
    for index, callee in enumerate(callees):
        if how == "unregister":
            for registration in list(callee.client.registrations):
                callee.client.unregister(registration)
            hub.pump()
        elif how == "goodbye":
            callee.client.leave()
            hub.pump()
        else:
            hub.drop(callee)
        assert len(dealer.registrations) == (3 if index == 0 else 0)
    assert len(dealer._table) == 0


# -- request IDs and encoding ---------------------------------------------------------------------


def test_duplicate_pending_call_id_is_a_violation() -> None:
    hub = Hub(Router(["realm1"], strict_request_ids=False))
    callee = hub.joined_wire(roles=CANCELING)
    wire_register(callee, "com.proc")
    caller = hub.joined_wire()
    caller.send(Call(5, {}, "com.proc"))
    invocation = callee.one(Invocation)
    assert caller.violation(Call(5, {}, "com.proc")) == "CALL request 5 is already in progress"
    assert callee.take() == [Interrupt(invocation.request, {"mode": "killnowait"})]
    # Once the first call is over, its ID may be used again.
    caller2 = hub.joined_wire()
    caller2.send(Call(5, {}, "com.proc"))
    invocation = callee.one(Invocation)
    callee.send(Yield(invocation.request, {}))
    caller2.send(Call(5, {}, "com.proc"))
    assert caller2.take() == [Result(5, {})]
    assert isinstance(callee.one(Invocation), Invocation)


def test_call_arguments_the_callee_cannot_decode() -> None:
    hub = Hub()
    callee = hub.joined_wire("json")
    wire_register(callee, "com.proc")
    caller = hub.joined_wire("msgpack")
    caller.send(Call(1, {}, "com.proc", [math.nan]))
    assert caller.take() == [
        call_error(
            1,
            ErrorURI.INVALID_ARGUMENT,
            "the call's arguments cannot be encoded for the callee's serializer",
        )
    ]
    assert callee.take() == []
    assert caller.slot.calls == {}
    assert callee.slot.invocations == {}
    # The callee's INVOCATION IDs stay sequential: the next one is 1.
    caller.send(Call(2, {}, "com.proc", [1.5]))
    assert callee.one(Invocation).request == 1


def test_result_the_caller_cannot_decode() -> None:
    hub = Hub()
    callee = hub.joined_wire("msgpack")
    wire_register(callee, "com.proc")
    caller = hub.joined_wire("json")
    caller.send(Call(1, {}, "com.proc"))
    invocation = callee.one(Invocation)
    callee.send(Yield(invocation.request, {}, [math.nan]))
    assert caller.take() == [
        call_error(
            1,
            ErrorURI.INVALID_ARGUMENT,
            "the result cannot be encoded for the caller's serializer",
        )
    ]
    assert caller.slot.calls == {}
    assert callee.slot.invocations == {}


def test_error_the_caller_cannot_decode() -> None:
    hub = Hub()
    callee = hub.joined_wire("cbor")
    wire_register(callee, "com.proc")
    caller = hub.joined_wire("msgpack")
    caller.send(Call(1, {}, "com.proc"))
    invocation = callee.one(Invocation)
    callee.send(Error(MessageType.INVOCATION, invocation.request, {}, "app.failed", [2**70]))
    assert caller.take() == [
        call_error(
            1, "app.failed", "the error's arguments cannot be encoded for the caller's serializer"
        )
    ]
    assert caller.slot.calls == {}
    assert callee.slot.invocations == {}


@pytest.mark.parametrize(("roles", "interrupted"), [(CANCELING, True), (CANCELLING_PROGRESS, True)])
def test_progressive_result_the_caller_cannot_decode_ends_the_call(
    roles: dict[str, Any], interrupted: bool
) -> None:
    hub = Hub()
    callee = hub.joined_wire("msgpack", roles=roles)
    wire_register(callee, "com.proc")
    caller = hub.client("json")
    request = caller.client.call("com.proc", options={"receive_progress": True})
    hub.pump()
    invocation = callee.one(Invocation)
    assert invocation.details == {"receive_progress": True}
    callee.send(Yield(invocation.request, {"progress": True}, [math.nan]))
    hub.pump()
    assert caller.take() == [
        ErrorReceived(
            MessageType.CALL,
            request,
            ErrorURI.INVALID_ARGUMENT,
            ["the result cannot be encoded for the caller's serializer"],
            None,
            {},
        )
    ]
    if interrupted:
        assert callee.take() == [Interrupt(invocation.request, {"mode": "killnowait"})]
    else:
        assert callee.take() == []
    # The call is over for the caller: later chunks and the final result are dropped.
    callee.send(Yield(invocation.request, {"progress": True}, [1]), Yield(invocation.request, {}))
    hub.pump()
    assert caller.take() == []
    assert callee.take() == []
    assert caller.slot.calls == {}
    assert callee.slot.invocations == {}


def test_error_uri_the_caller_cannot_encode() -> None:
    # No decoder lets such a URI in; an embedder feeding messages directly could.
    hub = Hub()
    callee = hub.joined_wire("json")
    wire_register(callee, "com.proc")
    caller = hub.joined_wire("json")
    caller.send(Call(1, {}, "com.proc"))
    invocation = callee.one(Invocation)
    callee.send(Error(MessageType.INVOCATION, invocation.request, {}, "app.\ud800", [1]))
    (error,) = caller.take()
    assert isinstance(error, Error)
    assert error.error == "wamp.error.invalid_argument"
    assert error.args is not None
    assert "'app.\\ud800'" in error.args[0]
    assert caller.slot.calls == {}
