"""Authorization decisions that come later: ``Pending[Decision]``, the router
holding requests, and ``ProcedureAuthorizer`` (a WAMP procedure decides)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.core.test_router import Hub, ScriptedAuth, Wire, assert_clean, roles_with
from wamp_core import (
    AUTHORIZER_FAILED,
    Abort,
    Action,
    Call,
    Decision,
    DynamicAuthorizer,
    Error,
    ErrorURI,
    Event,
    Goodbye,
    Interrupt,
    Invocation,
    MessageType,
    Pending,
    ProcedureAuthorizer,
    Publish,
    Published,
    Register,
    Registered,
    Result,
    Router,
    RouterSession,
    SessionState,
    Subscribe,
    Subscribed,
    Yield,
)

AUTHZ = "com.example.authorize"
PROC = "com.example.add"
DENIED = ErrorURI.NOT_AUTHORIZED
FAILED = ErrorURI.AUTHORIZATION_FAILED


class PerRole:
    """Role ``authorizer`` may do everything; every other role asks ``dynamic``."""

    def __init__(self, dynamic: DynamicAuthorizer) -> None:
        self.dynamic = dynamic

    def authorize(
        self, session: RouterSession, uri: str, action: Action, options: dict[str, Any]
    ) -> Decision | Pending[Decision]:
        if session.authrole == "authorizer":
            return Decision(True, disclose=True)
        return self.dynamic.authorize(session, uri, action, options)


class Setup:
    """A router whose ``user`` sessions are authorized by procedure ``AUTHZ``,
    provided by ``authz`` (role ``authorizer``), which also provides ``PROC``."""

    def __init__(self, *, register: bool = True, **dynamic: Any) -> None:
        router = self.router = Router(["realm1"], authenticator=ScriptedAuth())
        self.dynamic = DynamicAuthorizer(ProcedureAuthorizer(router, AUTHZ), **dynamic)
        router.authorizer = PerRole(self.dynamic)
        router.observers.append(self.dynamic)
        self.hub = Hub(router)
        self.authz = self.join("authz", "authorizer")
        if register:
            self.authz.send(Register(self.authz.req(), {}, AUTHZ))
            self.authz.one(Registered)
            self.authz.send(Register(self.authz.req(), {}, PROC))
            self.authz.one(Registered)

    def join(self, authid: str, role: str) -> Wire:
        roles = roles_with(call_canceling=True, progressive_call_invocations=True)
        roles["caller"]["features"]["progressive_call_invocations"] = True
        return self.hub.joined_wire(roles=roles, authid=authid, authextra={"role": role})

    def asked(self) -> Invocation:
        """The one INVOCATION of the authorizer procedure now outstanding."""
        invocation = self.authz.one(Invocation)
        assert invocation.registration == self.registration(AUTHZ)
        return invocation

    def registration(self, uri: str) -> int:
        realm = self.router.realms["realm1"]
        return next(r.id for r in realm.dealer.registrations.values() if r.uri == uri)

    def answer(self, invocation: Invocation, *args: Any, **kwargs: Any) -> None:
        self.authz.send(Yield(invocation.request, {}, list(args), kwargs or None))


def test_a_call_waits_for_the_procedure_then_goes_on() -> None:
    s = Setup()
    user = s.join("joe", "user")
    user.send(Call(user.req(), {"receive_progress": False}, PROC, [1, 2]))
    asked = s.asked()
    details, uri, action, options = asked.args or []
    assert details == {
        "session": user.session_id,
        "realm": "realm1",
        "authid": "joe",
        "authrole": "user",
        "authmethod": "anonymous",
        "authprovider": "static",
        "authextra": {},
    }
    assert (uri, action, options) == (PROC, "call", {"receive_progress": False})
    assert user.take() == []  # nothing happens until the decision comes
    s.answer(asked, True)
    invocation = s.authz.one(Invocation)
    assert invocation.args == [1, 2]
    assert "caller" not in invocation.details
    s.authz.send(Yield(invocation.request, {}, [3]))
    assert user.one(Result).args == [3]
    assert s.router.next_deadline() is None  # the authorizer's timer was stopped


def test_a_refusal_answers_not_authorized() -> None:
    s = Setup()
    user = s.join("joe", "user")
    user.send(Call(user.req(), {}, PROC))
    s.answer(s.asked(), False)
    error = user.one(Error)
    assert (error.request_type, error.error) == (MessageType.CALL, DENIED)
    assert s.authz.take() == []  # the callee never heard of it


def test_bool_answers_are_not_cached_dict_answers_may_be() -> None:
    s = Setup()
    user = s.join("joe", "user")
    for _ in range(2):  # a bare true is asked again each time
        user.send(Publish(user.req(), {"acknowledge": True}, "com.example.topic"))
        s.answer(s.asked(), True)
        user.one(Published)
    assert len(s.dynamic) == 0
    user.send(Publish(user.req(), {"acknowledge": True}, "com.example.topic"))
    s.answer(s.asked(), {"allow": True, "cache": True})
    user.one(Published)
    assert len(s.dynamic) == 1
    user.send(Publish(user.req(), {"acknowledge": True}, "com.example.topic"))
    user.one(Published)  # from the cache: the procedure was not asked
    assert s.authz.take() == []
    assert s.dynamic.hits == 1


def test_disclose_from_the_procedure_discloses_the_caller() -> None:
    s = Setup()
    user = s.join("joe", "user")
    user.send(Call(user.req(), {}, PROC))
    s.answer(s.asked(), {"allow": True, "disclose": True})
    invocation = s.authz.one(Invocation)
    assert invocation.details["caller"] == user.session_id
    assert invocation.details["caller_authid"] == "joe"


@pytest.mark.parametrize(
    "answer",
    [
        [],
        ["yes"],
        [None],
        [{}],
        [{"allow": "yes"}],
        [{"allow": True, "disclose": 1}],
        [{"allow": True, "cache": "no"}],
    ],
)
def test_malformed_answers_fail_the_request(answer: list[Any]) -> None:
    s = Setup()
    user = s.join("joe", "user")
    user.send(Subscribe(user.req(), {}, "com.example.topic"))
    s.answer(s.asked(), *answer)
    error = user.one(Error)
    assert (error.request_type, error.error) == (MessageType.SUBSCRIBE, FAILED)
    assert len(s.dynamic) == 0  # failures are never cached


def test_an_unknown_key_in_the_answer_is_ignored() -> None:
    s = Setup()
    user = s.join("joe", "user")
    user.send(Subscribe(user.req(), {}, "com.example.topic"))
    s.answer(s.asked(), {"allow": True, "note": "from the future"})
    user.one(Subscribed)


def test_an_error_from_the_procedure_fails_the_request() -> None:
    s = Setup()
    user = s.join("joe", "user")
    user.send(Register(user.req(), {}, "com.example.mine"))
    asked = s.asked()
    assert asked.args is not None
    assert asked.args[2] == "register"
    s.authz.send(Error(MessageType.INVOCATION, asked.request, {}, "com.example.oops"))
    error = user.one(Error)
    assert (error.request_type, error.error) == (MessageType.REGISTER, FAILED)


def test_no_authorizer_registered_fails_at_once() -> None:
    s = Setup(register=False)
    user = s.join("joe", "user")
    user.send(Call(user.req(), {}, PROC))
    assert user.one(Error).error == FAILED
    assert s.router.next_deadline() is None


def test_no_answer_in_time_fails_the_request_and_interrupts_the_authorizer() -> None:
    s = Setup()
    user = s.join("joe", "user")
    user.send(Call(user.req(), {}, PROC))
    asked = s.asked()
    assert s.router.next_deadline() == 10.0
    s.router.tick(10.0)
    assert user.one(Error).error == FAILED
    interrupt = s.authz.one(Interrupt)
    assert interrupt.request == asked.request


def test_later_requests_wait_behind_a_pending_one_and_keep_their_order() -> None:
    s = Setup()
    user = s.join("joe", "user")
    first, second, third = user.req(), user.req(), user.req()
    user.send(
        Call(first, {}, PROC),
        Publish(second, {"acknowledge": True}, "com.example.topic"),
        Subscribe(third, {}, "com.example.topic"),
    )
    asked = s.asked()  # only the first is asked about
    assert asked.args is not None
    assert asked.args[2] == "call"
    s.answer(asked, False)
    assert user.one(Error).request == first
    asked = s.asked()
    assert asked.args is not None
    assert asked.args[2] == "publish"
    s.answer(asked, True)
    assert user.one(Published).request == second
    asked = s.asked()
    assert asked.args is not None
    assert asked.args[2] == "subscribe"
    s.answer(asked, {"allow": True, "cache": True})
    assert user.one(Subscribed).request == third
    assert user.slot._held is None


def test_yield_and_error_are_not_held() -> None:
    s = Setup()
    user = s.join("joe", "user")
    # joe provides a procedure (allowed, cached), then is held behind a call...
    user.send(Register(user.req(), {}, "com.example.joe"))
    s.answer(s.asked(), {"allow": True, "cache": True})
    user.one(Registered)
    user.send(Call(user.req(), {}, PROC))
    asked = s.asked()
    # ... while another session's call reaches him and he answers it.
    s.authz.send(Call(s.authz.req(), {}, "com.example.joe"))
    invocation = user.one(Invocation)
    user.send(Yield(invocation.request, {}, ["joe's"]))
    assert s.authz.one(Result).args == ["joe's"]
    s.authz.send(Call(s.authz.req(), {}, "com.example.joe"))
    invocation = user.one(Invocation)
    user.send(Error(MessageType.INVOCATION, invocation.request, {}, "com.example.no"))
    assert s.authz.one(Error).error == "com.example.no"
    s.answer(asked, True)
    assert isinstance(s.authz.one(Invocation), Invocation)


def test_held_chunks_of_a_progressive_call_follow_it() -> None:
    s = Setup()
    user = s.join("joe", "user")
    request = user.req()
    user.send(
        Call(request, {"progress": True}, PROC, ["a"]),
        Call(request, {"progress": False}, PROC, ["b"]),
    )
    s.answer(s.asked(), True)
    chunks = s.authz.take()
    assert [m.args for m in chunks if isinstance(m, Invocation)] == [["a"], ["b"]]


def test_a_bad_request_id_among_held_requests_is_found_when_it_runs() -> None:
    s = Setup()
    user = s.join("joe", "user")
    user.send(Call(user.req(), {}, PROC), Publish(9, {}, "com.example.topic"))
    s.answer(s.asked(), False)  # no exception for the authorizer's session
    error, abort, close = user.take()
    assert isinstance(error, Error)
    assert isinstance(abort, Abort)
    assert abort.reason == ErrorURI.PROTOCOL_VIOLATION
    assert close is None
    assert user.slot.state is SessionState.FAILED


def test_a_held_request_that_ends_the_session_drops_the_rest() -> None:
    s = Setup()
    router = s.router

    def bye(session: RouterSession, call: Call) -> tuple[None, None]:
        router.close_session(session)
        return None, None

    router.add_procedure("com.example.bye", bye)
    user = s.join("joe", "user")
    user.send(
        Call(user.req(), {}, PROC),
        Call(user.req(), {}, "com.example.bye"),
        Publish(user.req(), {"acknowledge": True}, "com.example.topic"),
    )
    s.answer(s.asked(), False)
    user.take()
    s.answer(s.asked(), {"allow": True, "cache": True})  # to call bye
    assert user.slot.state is SessionState.SHUTTING_DOWN
    assert s.authz.take() == []  # the publication was never asked about
    assert user.slot._held is None


@pytest.mark.parametrize("how", ["goodbye", "abort", "detach"])
def test_leaving_drops_held_requests_and_cancels_the_question(how: str) -> None:
    s = Setup()
    user = s.join("joe", "user")
    user.send(Call(user.req(), {}, PROC), Call(user.req(), {}, PROC))
    asked = s.asked()
    if how == "goodbye":
        user.send(Goodbye({}, "wamp.close.close_realm"))
        assert isinstance(user.one(Goodbye), Goodbye)
    elif how == "abort":
        user.send(Abort({}, "wamp.close.close_realm"))
    else:
        s.hub.drop(user)
    assert s.authz.one(Interrupt).request == asked.request
    assert s.router.next_deadline() is None
    assert len(s.dynamic) == 0
    s.hub.drop(s.authz)
    assert_clean(s.router)


def test_too_many_held_requests_end_the_session() -> None:
    s = Setup()
    s.router.max_held_requests = 2
    user = s.join("joe", "user")
    user.send(*(Publish(user.req(), {}, "com.example.topic") for _ in range(3)))
    asked = s.asked()
    assert user.take() == []
    user.send(Publish(user.req(), {}, "com.example.topic"))
    goodbye = user.one(Goodbye)
    assert goodbye.reason == "wamp.close.killed"
    assert s.authz.one(Interrupt).request == asked.request


def test_meta_procedures_ask_about_each_action_in_turn() -> None:
    s = Setup()
    user = s.join("joe", "user")
    watcher = s.join("watcher", "authorizer")
    watcher.send(Subscribe(watcher.req(), {}, "com.example.will"))
    watcher.one(Subscribed)
    user.send(Call(user.req(), {}, "wamp.session.add_testament", ["com.example.will", ["bye"]]))
    asked = s.asked()
    assert asked.args is not None
    assert asked.args[1:3] == ["wamp.session.add_testament", "call"]
    s.answer(asked, True)
    asked = s.asked()  # the testament's publication
    assert asked.args is not None
    assert asked.args[1:3] == ["com.example.will", "publish"]
    s.answer(asked, True)
    assert isinstance(user.one(Result), Result)
    s.hub.drop(user)
    asked = s.asked()  # asked again when it fires
    assert asked.args is not None
    assert asked.args[0]["authid"] == "joe"
    assert watcher.take() == []
    s.answer(asked, {"allow": True, "disclose": True})
    event = watcher.one(Event)
    assert event.args == ["bye"]
    assert event.details["publisher_authid"] == "joe"


def test_a_refused_testament_is_not_published() -> None:
    s = Setup()
    user = s.join("joe", "user")
    watcher = s.join("watcher", "authorizer")
    watcher.send(Subscribe(watcher.req(), {}, "com.example.will"))
    watcher.one(Subscribed)
    user.send(Call(user.req(), {}, "wamp.session.add_testament", ["com.example.will"]))
    s.answer(s.asked(), True)
    s.answer(s.asked(), True)
    user.one(Result)
    s.hub.drop(user)
    s.answer(s.asked(), False)
    assert watcher.take() == []


class Scripted:
    """An authorizer that answers with whatever the test put in ``answers``."""

    def __init__(self, *answers: Decision | Pending[Decision]) -> None:
        self.answers = list(answers)

    def authorize(
        self, session: RouterSession, uri: str, action: Action, options: dict[str, Any]
    ) -> Decision | Pending[Decision]:
        return self.answers.pop(0)


def scripted(*answers: Decision | Pending[Decision]) -> tuple[Hub, Wire]:
    router = Router(["realm1"], authorizer=Scripted(*answers))
    hub = Hub(router)
    return hub, hub.joined_wire()


def test_a_pending_resolved_before_the_router_sees_it_counts_at_once() -> None:
    pending: Pending[Decision] = Pending()
    pending.resolve(Decision(False))
    _hub, user = scripted(pending)
    user.send(Subscribe(user.req(), {}, "com.example.topic"))
    assert user.one(Error).error == DENIED


def test_a_cancelled_pending_fails_the_request() -> None:
    pending: Pending[Decision] = Pending()
    pending.cancel()
    _hub, user = scripted(pending)
    user.send(Subscribe(user.req(), {}, "com.example.topic"))
    assert user.one(Error).error == FAILED


def test_a_pending_resolved_later_by_the_embedder() -> None:
    pending: Pending[Decision] = Pending()
    _hub, user = scripted(pending)
    user.send(Subscribe(user.req(), {}, "com.example.topic"))
    assert user.take() == []
    pending.resolve(Decision(True))
    assert isinstance(user.one(Subscribed), Subscribed)
    assert user.slot._decided == {}


def test_dynamic_authorizer_passes_pending_on_and_caches_what_comes() -> None:
    inner: list[Pending[Decision]] = []

    def later(session: RouterSession, uri: str, action: Action, options: Any) -> Any:
        inner.append(Pending())
        return inner[-1]

    dynamic = DynamicAuthorizer(later)
    router = Router(["realm1"], authorizer=dynamic)
    hub = Hub(router)
    user = hub.joined_wire()
    user.send(Subscribe(user.req(), {}, "com.example.topic"))
    inner[0].resolve(Decision(True))
    user.one(Subscribed)
    assert len(dynamic) == 1
    # A session that leaves while waiting: nothing is cached for it.
    other = hub.joined_wire()
    other.send(Subscribe(other.req(), {}, "com.example.topic"))
    hub.drop(other)
    assert inner[1].cancelled
    assert len(dynamic) == 1


def test_dynamic_authorizer_takes_a_pending_resolved_at_once() -> None:
    def now(session: RouterSession, uri: str, action: Action, options: Any) -> Any:
        pending: Pending[Decision] = Pending()
        pending.resolve(Decision(True, cache=False))
        return pending

    dynamic = DynamicAuthorizer(now)
    hub = Hub(Router(["realm1"], authorizer=dynamic))
    user = hub.joined_wire()
    user.send(Subscribe(user.req(), {}, "com.example.topic"))
    user.one(Subscribed)
    assert (len(dynamic), dynamic.misses) == (0, 1)


def test_authorizer_failed_is_a_refusal_with_authorization_failed() -> None:
    assert Decision(False, cache=False, reason=FAILED) == AUTHORIZER_FAILED
