"""Resource limits of the router, and ``Router.table_sizes()``: what a peer can
make the router hold is bounded, and nothing is left behind once it goes.

Harness: tests/core/test_router.py (``Hub`` carries ``ClientSession`` peers and
hand-driven ``Wire``s).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.core.test_router import Hub, ScriptedAuth, Wire, roles_with
from wamp_core import (
    CLIENT_ROLES,
    Abort,
    Action,
    Authenticate,
    Call,
    Cancel,
    Challenge,
    Decision,
    Error,
    ErrorURI,
    Goodbye,
    Hello,
    Invocation,
    MessageType,
    Pending,
    Publish,
    Published,
    Register,
    Registered,
    RemoteProtocolError,
    Result,
    Router,
    RouterObserver,
    RouterSession,
    SessionState,
    Subscribe,
    Subscribed,
    Unregister,
    Unregistered,
    Unsubscribe,
    Unsubscribed,
    Welcome,
    Yield,
)
from wamp_core._dealer import DEFAULT_CALL_RECORDS

T = MessageType
LIMIT = ErrorURI.NOT_AUTHORIZED
LIMITS = (
    "max_sessions",
    "max_sessions_per_realm",
    "max_pending_calls",
    "max_subscriptions",
    "max_registrations",
    "max_realms",
)


def refused(wire: Wire, request_type: MessageType, request: int, text: str) -> None:
    """The wire got exactly ERROR not_authorized with ``text``, and is still up."""
    assert wire.take() == [Error(request_type, request, {}, LIMIT, [text])]
    assert wire.slot.state is SessionState.ESTABLISHED


def aborted(wire: Wire, text: str) -> None:
    """The wire's HELLO got exactly ABORT not_authorized with ``text``."""
    assert wire.take() == [Abort({"message": text}, LIMIT)]
    assert wire.slot.state is SessionState.CLOSED


def hello(wire: Wire, realm: str = "realm1", **details: Any) -> None:
    wire.send(Hello(realm, {"roles": CLIENT_ROLES, **details}))


def join(hub: Hub, realm: str = "realm1") -> Wire:
    return hub.joined_wire(realm=realm)


def register(wire: Wire, procedure: str = "com.p", **options: Any) -> int:
    wire.send(Register(wire.req(), options, procedure))
    return wire.one(Registered).registration


def empty(router: Router) -> bool:
    sizes = router.table_sizes()
    assert all(size == 0 for size in sizes.values()), {k: v for k, v in sizes.items() if v}
    return True


# -- the options -----------------------------------------------------------------------


def test_limits_default_to_none_and_are_attributes() -> None:
    router = Router()
    assert [getattr(router, name) for name in LIMITS] == [None] * len(LIMITS)
    limits: dict[str, Any] = dict.fromkeys(LIMITS, 3)
    router = Router(**limits)
    assert [getattr(router, name) for name in LIMITS] == [3] * len(LIMITS)


@pytest.mark.parametrize("name", LIMITS)
@pytest.mark.parametrize("value", [0, -1, True, 2.0, "3"])
def test_a_limit_must_be_a_positive_int(name: str, value: Any) -> None:
    with pytest.raises(ValueError, match=f"{name} must be a positive integer or None"):
        Router(**{name: value})


def test_max_pending_calls_can_be_changed_later() -> None:
    hub = Hub()
    callee, caller = join(hub), join(hub)
    register(callee)
    with pytest.raises(ValueError, match="max_pending_calls"):
        hub.router.max_pending_calls = 0
    hub.router.max_pending_calls = 1
    caller.send(Call(1, {}, "com.p"), Call(2, {}, "com.p"))
    refused(caller, T.CALL, 2, "the session is at its limit of 1 pending call")
    assert len(callee.take()) == 1
    hub.router.max_pending_calls = None
    caller.send(Call(3, {}, "com.p"))
    assert isinstance(callee.one(Invocation), Invocation)


# -- sessions ----------------------------------------------------------------------------


def test_max_sessions_counts_sessions_from_hello_on() -> None:
    hub = Hub(Router(["realm1", "realm2"], authenticator=ScriptedAuth(), max_sessions=2))
    first = join(hub)
    authenticating = hub.wire()
    hello(authenticating, "realm2", authmethods=["ticket"])
    assert isinstance(authenticating.one(Challenge), Challenge)
    third = hub.wire()
    hello(third, "realm2")
    aborted(third, "the router is at its limit of 2 sessions")
    assert hub.router.table_sizes()["joining"] == 1
    # The session authenticating gets in; then one leaving makes room.
    authenticating.send(Authenticate("secret", {}))
    assert isinstance(authenticating.one(Welcome), Welcome)
    hello(third)
    aborted(third, "the router is at its limit of 2 sessions")
    first.send(Goodbye({}, "wamp.close.close_realm"))
    first.take()
    hello(third)
    assert isinstance(third.one(Welcome), Welcome)
    # An authentication that fails makes room too.
    authenticating.send(Goodbye({}, "wamp.close.close_realm"))
    authenticating.take()
    hello(authenticating, authmethods=["ticket"])
    authenticating.one(Challenge)
    hello(first)
    aborted(first, "the router is at its limit of 2 sessions")
    authenticating.send(Authenticate("wrong", {}))
    assert isinstance(authenticating.one(Abort), Abort)
    hello(first)
    assert isinstance(first.one(Welcome), Welcome)


def test_max_sessions_per_realm() -> None:
    router = Router(
        ["realm1", "realm2"],
        authenticator=ScriptedAuth(),
        auto_create_realms=True,
        max_sessions_per_realm=2,
    )
    hub = Hub(router)
    join(hub)
    authenticating = hub.wire()
    hello(authenticating, authmethods=["ticket"])
    authenticating.one(Challenge)
    other = hub.wire()
    hello(other, authmethods=["ticket"])
    aborted(other, "realm 'realm1' is at its limit of 2 sessions")
    # Other realms, an existing one and one created by the HELLO, are not full.
    join(hub, "realm2")
    join(hub, "realm3")
    join(hub, "realm3")
    hello(other, "realm3")
    aborted(other, "realm 'realm3' is at its limit of 2 sessions")
    # Room is made when the authenticating session goes, whatever the way.
    hub.drop(authenticating)
    hello(other, authmethods=["ticket"])
    other.one(Challenge)
    hub.router.shutdown()
    assert isinstance(other.one(Abort), Abort)
    assert hub.router.table_sizes()["joining"] == 0


def test_two_sessions_authenticating_in_one_realm() -> None:
    hub = Hub(Router(["realm1"], authenticator=ScriptedAuth(), max_sessions_per_realm=3))
    first, second = hub.wire(), hub.wire()
    for wire in (first, second):
        hello(wire, authmethods=["ticket"])
        wire.one(Challenge)
    assert hub.router.table_sizes()["joining"] == 2
    assert hub.router.table_sizes()["joining_realms"] == 1
    first.send(Authenticate("secret", {}))
    first.one(Welcome)
    assert hub.router.table_sizes()["joining"] == 1
    join(hub)
    third = hub.wire()
    hello(third)
    aborted(third, "realm 'realm1' is at its limit of 3 sessions")


# -- calls -------------------------------------------------------------------------------


def test_max_pending_calls() -> None:
    hub = Hub(Router(["realm1"], max_pending_calls=2))
    callee, caller, other = join(hub), join(hub), join(hub)
    register(callee)
    caller.send(Call(caller.req(), {}, "com.p"), Call(caller.req(), {}, "com.p"))
    first, second = callee.take()
    assert isinstance(first, Invocation)
    assert isinstance(second, Invocation)
    caller.send(Call(caller.req(), {}, "com.p"))
    refused(caller, T.CALL, 3, "the session is at its limit of 2 pending calls")
    assert callee.take() == []
    # The limit is per session, and the session keeps working.
    other.send(Call(other.req(), {}, "com.p"))
    assert isinstance(callee.one(Invocation), Invocation)
    caller.send(Publish(caller.req(), {"acknowledge": True}, "com.t"))
    assert isinstance(caller.one(Published), Published)
    # An answer makes room.
    callee.send(Yield(first.request, {}))
    assert caller.take() == [Result(1, {})]
    caller.send(Call(caller.req(), {}, "com.p"))
    assert isinstance(callee.one(Invocation), Invocation)
    caller.send(Call(caller.req(), {}, "com.p"))
    refused(caller, T.CALL, 6, "the session is at its limit of 2 pending calls")
    # So does a cancel.
    caller.send(Cancel(2, {"mode": "skip"}))
    assert caller.one(Error).error == ErrorURI.CANCELED
    caller.send(Call(caller.req(), {}, "com.p"))
    assert isinstance(callee.one(Invocation), Invocation)


def test_the_chunks_of_a_progressive_call_are_one_call() -> None:
    hub = Hub(Router(["realm1"], max_pending_calls=1))
    callee, caller = join(hub), join(hub)
    register(callee)
    caller.send(
        Call(1, {"progress": True}, "com.p", [1]), Call(1, {"progress": True}, "com.p", [2])
    )
    caller.send(Call(1, {}, "com.p", [3]))
    assert [m.args for m in callee.take() if isinstance(m, Invocation)] == [[1], [2], [3]]
    assert caller.take() == []
    # A new progressive call beyond the limit is refused, and its chunks dropped.
    caller.send(Call(2, {"progress": True}, "com.p", [1]))
    refused(caller, T.CALL, 2, "the session is at its limit of 1 pending call")
    caller.send(Call(2, {}, "com.p", [2]))
    assert caller.take() == callee.take() == []


def test_the_routers_own_calls_are_not_limited() -> None:
    hub = Hub(Router(["realm1"], max_pending_calls=1))
    callee = join(hub)
    register(callee)
    replies: list[Any] = []
    for _ in range(3):
        hub.router.call_procedure("realm1", "com.p", replies.append)
    invocations = callee.take()
    assert len(invocations) == 3
    for invocation in invocations:
        assert isinstance(invocation, Invocation)
        callee.send(Yield(invocation.request, {}))
    callee.take()
    assert [type(reply) for reply in replies] == [Result] * 3


# -- orphaned invocations -------------------------------------------------------------


def test_orphans_of_a_callee_that_never_answers_are_bounded() -> None:
    hub = Hub(Router(["realm1"], max_pending_calls=3))
    callee, caller = hub.joined_wire(roles=roles_with()), join(hub)  # no call canceling
    register(callee)
    for request in range(1, 6):
        caller.send(Call(request, {}, "com.p"), Cancel(request, {"mode": "skip"}))
        assert caller.one(Error).error == ErrorURI.CANCELED
    assert [m.request for m in callee.take() if isinstance(m, Invocation)] == [1, 2, 3, 4, 5]
    # The callee never answered: only the last 3 are remembered.
    assert list(callee.slot._orphans) == [3, 4, 5]
    assert hub.router.table_sizes()["orphaned_invocations"] == 3
    # Late answers, to a forgotten orphan or a remembered one, are dropped.
    callee.send(Yield(1, {}), Error(T.INVOCATION, 4, {}, "app.error"), Yield(3, {"progress": True}))
    assert callee.take() == caller.take() == []
    assert list(callee.slot._orphans) == [3, 5]
    # An answer to an INVOCATION never sent is still a violation.
    assert callee.violation(Yield(6, {})) == "YIELD for unknown INVOCATION 6"
    assert empty_after_leaving(hub)


def test_orphans_are_bounded_without_a_call_limit() -> None:
    hub = Hub()
    callee, caller = join(hub), join(hub)
    register(callee)
    count = DEFAULT_CALL_RECORDS + 2
    for request in range(1, count + 1):
        caller.send(Call(request, {}, "com.p"), Cancel(request, {"mode": "killnowait"}))
    hub.pump()
    hub.router.data_to_send()
    for wire in (callee, caller):
        wire.inbox.clear()
    assert len(callee.slot._orphans) == DEFAULT_CALL_RECORDS
    assert next(iter(callee.slot._orphans)) == 3
    callee.send(Yield(2, {}), Yield(count, {}))
    assert callee.take() == []
    assert callee.violation(Error(T.INVOCATION, count + 1, {}, "app.error")).startswith("ERROR")


def test_ended_progressive_calls_are_bounded() -> None:
    hub = Hub(Router(["realm1"], max_pending_calls=2))
    caller = join(hub)
    for request in range(1, 5):
        # Refused (no such procedure) while the caller may still send chunks.
        caller.send(Call(request, {"progress": True}, "com.nothing"))
        assert caller.one(Error).error == ErrorURI.NO_SUCH_PROCEDURE
    dealer = hub.router.realms["realm1"].dealer
    assert list(dealer._ended[caller.slot]) == [3, 4]
    caller.send(Call(4, {}, "com.nothing"))  # a late chunk of a remembered call: dropped
    assert caller.take() == []
    # A chunk of a forgotten one is a new CALL, with an old request ID.
    assert caller.violation(Call(1, {}, "com.nothing")).startswith("request ID 1")


# -- subscriptions and registrations ---------------------------------------------------


def test_max_subscriptions() -> None:
    hub = Hub(Router(["realm1"], max_subscriptions=2))
    wire, other = join(hub), join(hub)
    wire.send(Subscribe(1, {}, "com.a"), Subscribe(2, {"match": "prefix"}, "com.a"))
    first, second = wire.take()
    assert isinstance(first, Subscribed)
    assert isinstance(second, Subscribed)
    # The same subscription again is no new one.
    wire.send(Subscribe(3, {}, "com.a"))
    assert wire.take() == [Subscribed(3, first.subscription)]
    wire.send(Subscribe(4, {}, "com.b"))
    refused(wire, T.SUBSCRIBE, 4, "the session is at its limit of 2 subscriptions")
    # One another session created is no exception.
    other.send(Subscribe(1, {}, "com.c"))
    other.one(Subscribed)
    wire.send(Subscribe(5, {}, "com.c"))
    refused(wire, T.SUBSCRIBE, 5, "the session is at its limit of 2 subscriptions")
    assert list(wire.slot.subscriptions) == [first.subscription, second.subscription]
    wire.send(Unsubscribe(6, first.subscription))
    assert wire.take() == [Unsubscribed(6)]
    wire.send(Subscribe(7, {}, "com.c"))
    assert isinstance(wire.one(Subscribed), Subscribed)


def test_max_registrations() -> None:
    hub = Hub(Router(["realm1"], max_registrations=1))
    wire, caller = join(hub), join(hub)
    registration = register(wire, "com.a")
    wire.send(Register(2, {}, "com.b"))
    refused(wire, T.REGISTER, 2, "the session is at its limit of 1 registration")
    caller.send(Call(1, {}, "com.a"))
    wire.send(Yield(wire.one(Invocation).request, {}))
    assert caller.take() == [Result(1, {})]
    wire.send(Unregister(3, registration))
    assert wire.take() == [Unregistered(3)]
    wire.send(Register(4, {}, "com.b"))
    assert isinstance(wire.one(Registered), Registered)


def test_max_testaments() -> None:
    hub = Hub()
    meta = hub.router.meta
    assert meta is not None
    meta.max_testaments = 2
    wire = join(hub)

    def add(request: int, scope: str) -> Any:
        wire.send(Call(request, {}, "wamp.session.add_testament", ["com.t"], {"scope": scope}))
        return wire.one(Result | Error)  # type: ignore[arg-type]

    assert isinstance(add(1, "destroyed"), Result)
    assert isinstance(add(2, "detached"), Result)
    assert add(3, "destroyed") == Error(
        T.CALL, 3, {}, LIMIT, ["the session is at its limit of 2 testaments"]
    )
    wire.send(Call(4, {}, "wamp.session.flush_testaments", [], {"scope": "detached"}))
    wire.one(Result)
    assert isinstance(add(5, "destroyed"), Result)
    assert hub.router.table_sizes()["testaments"] == 2


# -- the roles cache and the timer heap ---------------------------------------------


def test_the_roles_cache_is_bounded() -> None:
    hub = Hub()
    for n in range(80):
        wire = hub.joined_wire(roles={"caller": {"features": {f"x{n}": True}}})
        hub.drop(wire)
    assert len(hub.router._roles_seen) == 64
    assert empty(hub.router)


def test_cancelled_timers_do_not_pile_up() -> None:
    hub = Hub()
    callee, caller = join(hub), join(hub)
    register(callee)
    for request in range(1, 501):
        # A day's timeout, answered at once.
        caller.send(Call(request, {"timeout": 86_400_000}, "com.p"))
        callee.send(Yield(callee.one(Invocation).request, {}))
        assert isinstance(caller.one(Result), Result)
    assert len(hub.router._timers) <= 64
    assert hub.router.next_deadline() is None
    # A cancelled timer holds nothing more.
    timer = hub.router.call_at(5.0, lambda: None)
    timer.cancel()
    assert timer.callback() is None
    assert timer.callback.__name__ == "_nothing"


def test_timers_still_run_after_a_compaction() -> None:
    router = Router()
    ran: list[int] = []

    def appender(n: int) -> Callable[[], None]:
        return lambda: ran.append(n)

    def schedule_more() -> None:
        for n in range(70):
            router.call_at(200.0 + n, lambda: None)

    keep = [router.call_at(float(n), appender(n)) for n in range(100)]
    for timer in keep[:90]:
        timer.cancel()
    # A timer callback that schedules more timers, compacting the heap meanwhile.
    router.call_at(95.5, schedule_more)
    router.tick(150.0)
    assert ran == list(range(90, 100))
    assert router.table_sizes()["timers"] == 70


# -- nothing is left behind -----------------------------------------------------------


class SlowAuthorizer:
    """Allows everything, but decides on ``com.slow`` later (``pending``)."""

    def __init__(self) -> None:
        self.pending: list[Pending[Decision]] = []

    def authorize(
        self, session: RouterSession, uri: str, action: Action, options: dict[str, Any]
    ) -> Decision | Pending[Decision]:
        if uri != "com.slow":
            return Decision(True)
        self.pending.append(Pending())
        return self.pending[-1]


def empty_after_leaving(hub: Hub) -> bool:
    for slot in list(hub.router.attached):
        hub.router.detach(slot)
    hub.peers.clear()
    hub.wires.clear()
    return empty(hub.router)


def test_the_tables_empty_when_every_session_left() -> None:
    """Many sessions join, subscribe, register and call (plain, progressive,
    canceled, timed out, with the callee or the caller leaving mid-call, with
    protocol violations), then all go: every table is empty again."""
    authorizer = SlowAuthorizer()
    router = Router(
        ["realm1", "realm2"],
        authenticator=ScriptedAuth(),
        authorizer=authorizer,
        max_pending_calls=50,
    )
    hub = Hub(router)
    callees = [join(hub, realm) for realm in ("realm1", "realm2") for _ in range(3)]
    for index, callee in enumerate(callees):
        register(callee, "com.shared", invoke="roundrobin", disclose_caller=True)
        register(callee, f"com.own{index}", forward_timeout=True)
        callee.send(Subscribe(callee.req(), {"match": "prefix"}, "com."))
        callee.one(Subscribed)
    callers = [join(hub, realm) for realm in ("realm1", "realm2") for _ in range(4)]
    for caller in callers:
        caller.send(Subscribe(caller.req(), {}, "com.news"))
        caller.one(Subscribed)
        for _ in range(3):
            caller.send(Call(caller.req(), {}, "com.shared", [1]))
        caller.send(Call(caller.req(), {"timeout": 1000}, "com.shared"))
        caller.send(Call(caller.req(), {"progress": True}, "com.shared", [1]))
        caller.send(Call(caller.req(), {"receive_progress": True}, "com.shared"))
        canceled = caller.req()
        caller.send(Call(canceled, {}, "com.shared"), Cancel(canceled, {"mode": "kill"}))
        skipped = caller.req()
        caller.send(Call(skipped, {}, "com.shared"), Cancel(skipped, {"mode": "skip"}))
        caller.send(
            Call(
                caller.req(), {}, "wamp.session.add_testament", ["com.news"], {"scope": "detached"}
            )
        )
        caller.send(Publish(caller.req(), {"retain": True}, "com.news", ["hi"]))
        caller.take()
    authenticating = hub.wire()
    hello(authenticating, authmethods=["ticket"])
    authenticating.one(Challenge)
    hub.router.call_procedure("realm1", "com.shared", lambda reply: None)
    # Sessions waiting for an authorization, with requests held behind.
    waiting = [join(hub) for _ in range(2)]
    for wire in waiting:
        wire.send(Subscribe(wire.req(), {}, "com.slow"), Subscribe(wire.req(), {}, "com.x"))
    assert waiting[0].take() == []
    authorizer.pending[0].resolve(Decision(True))
    assert [type(m) for m in waiting[0].take()] == [Subscribed, Subscribed]

    sizes = router.table_sizes()
    for key in (
        "attached", "sessions", "realm_sessions", "joining", "joining_realms",
        "pending_authentications", "subscriptions", "subscription_patterns", "subscribers",
        "session_subscriptions", "registrations", "registration_patterns", "callees",
        "callee_options", "session_registrations", "calls", "invocations",
        "orphaned_invocations", "held_requests", "waiting_authorizations", "router_calls",
        "timers", "testaments",
    ):  # fmt: skip
        assert sizes[key] > 0, key

    # Some callees answer, some progressively, one asks to reroute.
    for callee in callees[:2]:
        for message in callee.take():
            if isinstance(message, Invocation):
                callee.send(Yield(message.request, {"progress": True}))
                callee.send(Yield(message.request, {}))
    invocation = next(m for m in callees[2].take() if isinstance(m, Invocation))
    callees[2].send(Error(T.INVOCATION, invocation.request, {}, ErrorURI.UNAVAILABLE))
    hub.router.tick(2.0)  # the timeouts fire
    # A callee and a caller break the protocol, others leave every other way.
    with pytest.raises(RemoteProtocolError):
        hub.router.receive_data(callees[3].slot, b"garbage")
    with pytest.raises(RemoteProtocolError):
        hub.router.receive_data(callers[0].slot, b"garbage")
    callers[1].send(Goodbye({}, "wamp.close.close_realm"))
    callees[4].send(Abort({}, "wamp.close.close_realm"))
    hub.router.close_session(callers[2].slot)
    hub.drop(callees[5])
    hub.pump()
    sizes = router.table_sizes()
    assert sizes["ended_progressive_calls"] > 0
    assert sizes["orphaned_invocations"] > 0
    assert empty_after_leaving(hub)
    # Configuration and records of publications stay.
    assert list(router.realms) == ["realm1", "realm2"]
    assert router.realms["realm1"].broker.retained


# -- operators are told ------------------------------------------------------------------


class LimitRecorder(RouterObserver):
    """Records every ``limit_reached``: (session, limit, message)."""

    def __init__(self) -> None:
        self.seen: list[tuple[RouterSession, str, str]] = []

    def limit_reached(self, session: RouterSession, limit: str, message: str) -> None:
        self.seen.append((session, limit, message))


def recorded(router: Router) -> LimitRecorder:
    recorder = LimitRecorder()
    router.observers.append(recorder)
    return recorder


def test_observers_are_told_of_each_refusal_by_a_limit() -> None:
    router = Router(
        ["realm1", "realm2"],
        auto_create_realms=True,
        max_sessions=4,
        max_sessions_per_realm=2,
        max_pending_calls=1,
        max_subscriptions=1,
        max_registrations=1,
        max_realms=2,
    )
    recorder = recorded(router)
    hub = Hub(router)
    callee, caller = join(hub), join(hub)
    register(callee)
    callee.send(Register(2, {}, "com.q"))
    caller.send(Call(1, {}, "com.p"), Call(2, {}, "com.p"))
    caller.send(Subscribe(3, {}, "com.a"), Subscribe(4, {}, "com.b"))
    meta = router.meta
    assert meta is not None
    meta.max_testaments = 0
    caller.send(Call(5, {}, "wamp.session.add_testament", ["com.t"]))
    per_realm, new_realm = hub.wire(), hub.wire()
    hello(per_realm)
    hello(new_realm, "realm3")
    join(hub, "realm2")
    join(hub, "realm2")
    too_many = hub.wire()
    hello(too_many, "realm2")
    hub.pump()
    assert [(session, limit) for session, limit, _ in recorder.seen] == [
        (callee.slot, "max_registrations"),
        (caller.slot, "max_pending_calls"),
        (caller.slot, "max_subscriptions"),
        (caller.slot, "max_testaments"),
        (per_realm.slot, "max_sessions_per_realm"),
        (new_realm.slot, "max_realms"),
        (too_many.slot, "max_sessions"),
    ]
    # The message is the text the peer got.
    assert [message for _, _, message in recorder.seen] == [
        "the session is at its limit of 1 registration",
        "the session is at its limit of 1 pending call",
        "the session is at its limit of 1 subscription",
        "the session is at its limit of 0 testaments",
        "realm 'realm1' is at its limit of 2 sessions",
        "no realm 'realm3', and the router is at its limit of 2 realms",
        "the router is at its limit of 4 sessions",
    ]
    assert new_realm.take() == [Abort({"message": recorder.seen[5][2]}, ErrorURI.NO_SUCH_REALM)]
    aborted(too_many, "the router is at its limit of 4 sessions")


# -- realms ------------------------------------------------------------------------------


def test_max_realms_bounds_the_auto_created_realms() -> None:
    router = Router(["realm1"], auto_create_realms=True, max_realms=2)
    hub = Hub(router)
    first = join(hub, "realm2")
    wire = hub.wire()
    hello(wire, "realm3")
    assert wire.take() == [
        Abort(
            {"message": "no realm 'realm3', and the router is at its limit of 2 realms"},
            ErrorURI.NO_SUCH_REALM,
        )
    ]
    assert wire.slot.state is SessionState.CLOSED
    # Realms that exist are open; the auto-created one goes with its last session.
    join(hub, "realm1")
    join(hub, "realm2")
    hub.drop(first)
    assert set(router.realms) == {"realm1", "realm2"}
    router.max_realms = 3
    hello(wire, "realm3")
    assert isinstance(wire.one(Welcome), Welcome)
    assert set(router.realms) == {"realm1", "realm2", "realm3"}


def test_max_realms_is_checked_again_after_authentication() -> None:
    router = Router(authenticator=ScriptedAuth(), auto_create_realms=True, max_realms=1)
    recorder = recorded(router)
    hub = Hub(router)
    first, second = hub.wire(), hub.wire()
    hello(first, "realm.a", authmethods=["ticket"])
    hello(second, "realm.b", authmethods=["ticket"])
    first.one(Challenge)
    second.one(Challenge)
    first.send(Authenticate("secret", {}))
    first.one(Welcome)
    second.send(Authenticate("secret", {}))
    text = "no realm 'realm.b', and the router is at its limit of 1 realm"
    assert second.take() == [Abort({"message": text}, ErrorURI.NO_SUCH_REALM)]
    assert recorder.seen == [(second.slot, "max_realms", text)]
    assert set(router.realms) == {"realm.a"}
    assert router.table_sizes()["joining"] == 0


def test_an_empty_auto_created_realm_is_removed() -> None:
    router = Router(["realm1"], auto_create_realms=True, event_history=[("com.kept", "exact", 5)])
    hub = Hub(router)
    join(hub)  # realm1, configured, stays when its session leaves
    first, second = join(hub, "fresh"), join(hub, "fresh")
    first.send(Subscribe(1, {}, "com.a"), Publish(2, {}, "com.other"))
    register(second)
    hub.drop(first)
    assert "fresh" in router.realms
    # The last session leaving removes it, however it leaves.
    second.send(Goodbye({}, "wamp.close.close_realm"))
    second.take()
    assert set(router.realms) == {"realm1"}
    assert empty_after_leaving(hub)
    # The next HELLO for it creates it anew.
    wire = hub.joined_wire(realm="fresh")
    assert wire.slot.realm is router.realms["fresh"]
    hub.drop(wire)
    assert set(router.realms) == {"realm1"}
    assert empty(router)


def test_an_auto_created_realm_holding_events_is_kept() -> None:
    router = Router(auto_create_realms=True, event_history=[("com.kept", "exact", 5)])
    hub = Hub(router)
    retaining, recording = join(hub, "retaining"), join(hub, "recording")
    retaining.send(Publish(1, {"retain": True}, "com.t", ["last"]))
    recording.send(Publish(1, {}, "com.kept"))
    hub.drop(retaining)
    hub.drop(recording)
    assert set(router.realms) == {"retaining", "recording"}
    assert empty(router)
    # The retained event is still there for the next subscriber.
    wire = join(hub, "retaining")
    wire.send(Subscribe(1, {"get_retained": True}, "com.t"))
    subscribed, event = wire.take()
    assert isinstance(subscribed, Subscribed)
    assert getattr(event, "args", None) == ["last"]


def test_a_testament_retained_in_an_auto_created_realm_keeps_it() -> None:
    hub = Hub(Router(auto_create_realms=True))
    wire = join(hub, "fresh")
    wire.send(
        Call(
            1,
            {},
            "wamp.session.add_testament",
            ["com.gone", [], {}],
            {"publish_options": {"retain": True}},
        )
    )
    wire.one(Result)
    hub.drop(wire)
    assert list(hub.router.realms["fresh"].broker.retained) == ["com.gone"]


def test_configured_and_adopted_realms_are_never_removed() -> None:
    router = Router(["realm1"], auto_create_realms=True)
    hub = Hub(router)
    for realm in ("realm1", "adopted", "called"):
        wire = join(hub, realm)
        assert router.realms[realm].auto_created is (realm != "realm1")
        if realm == "adopted":
            assert router.add_realm(realm) is wire.slot.realm
        elif realm == "called":
            router.call_procedure(realm, "com.nothing", lambda reply: None)
        hub.drop(wire)
    assert set(router.realms) == {"realm1", "adopted", "called"}
    assert not any(realm.auto_created for realm in router.realms.values())
