"""The client session state machine, driven message by message (no router)."""

from __future__ import annotations

from typing import Any

import pytest

from wamp_core import (
    Abort,
    Authenticate,
    Call,
    Cancel,
    Challenge,
    ChallengeReceived,
    ClientSession,
    ClientState,
    Error,
    ErrorReceived,
    Event,
    EventReceived,
    Goodbye,
    Hello,
    Interrupt,
    InterruptReceived,
    Invocation,
    InvocationReceived,
    LocalProtocolError,
    Message,
    MessageType,
    Publish,
    Published,
    PublishSucceeded,
    Register,
    Registered,
    RegisterSucceeded,
    RegistrationRevoked,
    RemoteProtocolError,
    Result,
    ResultReceived,
    SessionAborted,
    SessionClosed,
    SessionJoined,
    Subscribe,
    Subscribed,
    SubscribeSucceeded,
    SubscriptionRevoked,
    Unregister,
    Unregistered,
    UnregisterSucceeded,
    Unsubscribe,
    Unsubscribed,
    UnsubscribeSucceeded,
    Welcome,
    Yield,
    get_serializer,
)

WELCOME = Welcome(77, {"roles": {"broker": {}, "dealer": {}}, "authid": "a", "authrole": "r"})


def joined(serializer: str = "json") -> ClientSession:
    session = ClientSession(serializer)
    session.join("realm1")
    session.messages_to_send()
    session.receive_message(WELCOME)
    return session


def sent(session: ClientSession) -> list[Message]:
    return session.messages_to_send()


def test_join_sends_hello_with_roles_and_agent() -> None:
    session = ClientSession()
    session.join("realm1", authmethods=["ticket"], authid="joe", authextra={"x": 1},
                 details={"custom": True})  # fmt: skip
    (hello,) = sent(session)
    assert isinstance(hello, Hello)
    assert hello.realm == "realm1"
    assert set(hello.details["roles"]) == {"caller", "callee", "publisher", "subscriber"}
    assert hello.details["authmethods"] == ["ticket"]
    assert hello.details["authid"] == "joe"
    assert hello.details["authextra"] == {"x": 1}
    assert hello.details["custom"] is True
    assert hello.details["agent"].startswith("wamp-core")
    assert session.state is ClientState.ESTABLISHING
    assert session.realm == "realm1"


def test_custom_roles() -> None:
    session = ClientSession(roles={"caller": {}})
    session.join("realm1")
    (hello,) = sent(session)
    assert isinstance(hello, Hello)
    assert hello.details["roles"] == {"caller": {}}


@pytest.mark.parametrize(
    ("kwargs", "text"),
    [
        ({"authmethods": "ticket"}, "authmethods"),
        ({"authmethods": [1]}, "authmethods"),
        ({"authid": 5}, "authid"),
        ({"authextra": {1: 2}}, "authextra"),
        ({"authextra": "x"}, "authextra"),
        ({"details": [1]}, "details"),
    ],
)
def test_join_rejects_bad_arguments(kwargs: dict[str, Any], text: str) -> None:
    session = ClientSession()
    with pytest.raises(LocalProtocolError, match=text):
        session.join("realm1", **kwargs)
    assert session.state is ClientState.CLOSED
    assert sent(session) == []


def test_join_rejects_bad_realm() -> None:
    session = ClientSession()
    with pytest.raises(LocalProtocolError) as info:
        session.join("bad realm")
    assert info.value.reason == "wamp.error.invalid_uri"


def test_welcome_establishes() -> None:
    session = ClientSession()
    session.join("realm1")
    (event,) = session.receive_message(WELCOME)
    assert isinstance(event, SessionJoined)
    assert event.session_id == 77
    assert (event.authid, event.authrole) == ("a", "r")
    assert event.realm is None
    assert event.router_roles == {"broker": {}, "dealer": {}}
    assert session.state is ClientState.ESTABLISHED
    assert session.session_id == 77
    assert session.welcome_details is WELCOME.details


def test_welcome_details_accessors_tolerate_odd_values() -> None:
    event = SessionJoined(1, {"realm": "r", "authid": 3, "roles": []})
    assert event.realm == "r"
    assert event.authid is None
    assert event.authrole is None
    assert event.router_roles == {}


def test_welcome_with_bad_roles_is_a_violation() -> None:
    session = ClientSession()
    session.join("realm1")
    sent(session)
    with pytest.raises(RemoteProtocolError, match="roles"):
        session.receive_message(Welcome(1, {"roles": []}))
    (abort,) = sent(session)
    assert isinstance(abort, Abort)
    assert abort.reason == "wamp.error.protocol_violation"
    assert session.state is ClientState.FAILED


def test_challenge_and_authenticate_rounds() -> None:
    session = ClientSession()
    session.join("realm1", authmethods=["wampcra"])
    sent(session)
    (event,) = session.receive_message(Challenge("wampcra", {"challenge": "c"}))
    assert event == ChallengeReceived("wampcra", {"challenge": "c"})
    assert session.state is ClientState.AUTHENTICATING
    with pytest.raises(LocalProtocolError):
        session.authenticate(123)  # type: ignore[arg-type]
    session.authenticate("sig", {"k": "v"})
    assert sent(session) == [Authenticate("sig", {"k": "v"})]
    assert session.state is ClientState.ESTABLISHING
    session.receive_message(Challenge("wampcra", {}))  # a second round
    session.authenticate("sig2")
    assert sent(session) == [Authenticate("sig2", {})]
    (joined_event,) = session.receive_message(WELCOME)
    assert isinstance(joined_event, SessionJoined)


def test_authenticate_outside_challenge_is_local_error() -> None:
    session = ClientSession()
    session.join("realm1")
    with pytest.raises(LocalProtocolError, match="authenticate"):
        session.authenticate("sig")


def test_abort_while_joining() -> None:
    session = ClientSession()
    session.join("realm1")
    sent(session)
    session.receive_message(Challenge("ticket", {}))
    session.abort(message="no ticket")
    assert sent(session) == [Abort({"message": "no ticket"}, "wamp.error.authentication_failed")]
    assert session.state is ClientState.CLOSED
    session.join("realm1")
    session.abort("wamp.error.canceled")
    assert sent(session)[-1] == Abort({}, "wamp.error.canceled")


def test_abort_when_established_is_refused() -> None:
    session = joined()
    with pytest.raises(LocalProtocolError, match="leave"):
        session.abort()


def test_router_abort_while_joining() -> None:
    session = ClientSession()
    session.join("nosuch")
    (event,) = session.receive_message(
        Abort({"message": "no realm"}, "wamp.error.no_such_realm", ["x"], {"y": 1})
    )
    assert isinstance(event, SessionAborted)
    assert event.reason == "wamp.error.no_such_realm"
    assert event.message == "no realm"
    assert (event.args, event.kwargs) == (["x"], {"y": 1})
    assert SessionAborted("r", {"message": 1}).message is None
    assert session.state is ClientState.CLOSED


def test_router_goodbye_is_echoed() -> None:
    session = joined()
    (event,) = session.receive_message(Goodbye({"message": "bye"}, "wamp.close.system_shutdown"))
    assert event == SessionClosed("wamp.close.system_shutdown", {"message": "bye"}, True)
    assert sent(session) == [Goodbye({}, "wamp.close.goodbye_and_out")]
    assert session.state is ClientState.CLOSED
    assert session.session_id is None


def test_leave_and_goodbye_reply() -> None:
    session = joined()
    session.leave(message="done")
    assert sent(session) == [Goodbye({"message": "done"}, "wamp.close.close_realm")]
    assert session.state is ClientState.SHUTTING_DOWN
    # BP/sessions.md: everything but the GOODBYE reply is ignored now.
    assert session.receive_message(Event(1, 2, {})) == []
    assert session.receive_message(Result(1, {})) == []
    (event,) = session.receive_message(Goodbye({}, "wamp.close.goodbye_and_out"))
    assert event == SessionClosed("wamp.close.goodbye_and_out", {}, False)
    assert session.state is ClientState.CLOSED
    assert sent(session) == []


def test_abort_while_shutting_down() -> None:
    session = joined()
    session.leave()
    (event,) = session.receive_message(Abort({}, "wamp.error.protocol_violation"))
    assert isinstance(event, SessionAborted)
    assert session.state is ClientState.CLOSED


def test_leave_validates_reason() -> None:
    session = joined()
    with pytest.raises(LocalProtocolError):
        session.leave("not a uri")
    assert session.state is ClientState.ESTABLISHED


def test_rejoin_after_close_restarts_request_ids() -> None:
    session = joined()
    assert session.call("com.a") == 1
    session.receive_message(Goodbye({}, "wamp.close.killed"))
    assert session.pending_requests == {}
    session.join("realm1")
    session.receive_message(WELCOME)
    assert session.call("com.a") == 1


def test_call_result() -> None:
    session = joined()
    request = session.call("com.add", [1, 2], {"k": "v"}, {"timeout": 100})
    assert sent(session) == [Call(request, {"timeout": 100}, "com.add", [1, 2], {"k": "v"})]
    assert session.pending_requests == {request: MessageType.CALL}
    (event,) = session.receive_message(Result(request, {}, [3]))
    assert event == ResultReceived(request, [3], None, {}, False)
    assert session.pending_requests == {}


def test_empty_payload_is_omitted() -> None:
    session = joined()
    session.call("com.a", [], {})
    session.call("com.a", (1,))
    first, second = sent(session)
    assert first.to_list() == [48, 1, {}, "com.a"]
    assert second.to_list() == [48, 2, {}, "com.a", [1]]


@pytest.mark.parametrize(
    ("args", "kwargs", "options"),
    [("abc", None, None), ({"a": 1}, None, None), (5, None, None), (None, {1: 2}, None),
     (None, [1], None), (None, None, {1: 2}), (None, None, "x")],
)  # fmt: skip
def test_call_rejects_bad_payload(args: Any, kwargs: Any, options: Any) -> None:
    session = joined()
    with pytest.raises(LocalProtocolError):
        session.call("com.a", args, kwargs, options)
    assert sent(session) == []
    assert session.pending_requests == {}


def test_call_rejects_bad_uri_and_state() -> None:
    session = joined()
    with pytest.raises(LocalProtocolError) as info:
        session.call("com..a")
    assert info.value.reason == "wamp.error.invalid_uri"
    with pytest.raises(LocalProtocolError, match="state CLOSED"):
        ClientSession().call("com.a")


def test_progressive_results() -> None:
    session = joined()
    request = session.call("com.a", options={"receive_progress": True})
    (first,) = session.receive_message(Result(request, {"progress": True}, [1]))
    assert first == ResultReceived(request, [1], None, {"progress": True}, True)
    assert request in session.pending_requests
    (final,) = session.receive_message(Result(request, {}, [2]))
    assert isinstance(final, ResultReceived)
    assert not final.progress
    assert session.pending_requests == {}


def test_cancel() -> None:
    session = joined()
    request = session.call("com.slow")
    sent(session)
    session.cancel(request)
    session.cancel(request, "kill")
    assert sent(session) == [Cancel(request, {}), Cancel(request, {"mode": "kill"})]
    assert request in session.pending_requests  # until ERROR or RESULT arrives
    with pytest.raises(LocalProtocolError, match="mode"):
        session.cancel(request, "later")
    with pytest.raises(LocalProtocolError, match="no pending call"):
        session.cancel(999)
    sub = session.subscribe("com.t")
    with pytest.raises(LocalProtocolError, match="no pending call"):
        session.cancel(sub)
    (event,) = session.receive_message(Error(48, request, {}, "wamp.error.canceled"))
    assert event == ErrorReceived(48, request, "wamp.error.canceled", None, None, {})


def test_publish_without_and_with_acknowledge() -> None:
    session = joined()
    first = session.publish("com.t", [1])
    assert session.pending_requests == {}
    second = session.publish("com.t", kwargs={"a": 1}, acknowledge=True)
    third = session.publish("com.t", options={"acknowledge": True, "exclude_me": False})
    assert (first, second, third) == (1, 2, 3)
    assert sent(session) == [
        Publish(1, {}, "com.t", [1]),
        Publish(2, {"acknowledge": True}, "com.t", None, {"a": 1}),
        Publish(3, {"acknowledge": True, "exclude_me": False}, "com.t"),
    ]
    assert session.receive_message(Published(2, 555)) == [PublishSucceeded(2, 555)]
    (error,) = session.receive_message(Error(16, 3, {}, "wamp.error.not_authorized"))
    assert isinstance(error, ErrorReceived)
    assert session.pending_requests == {}


def test_subscribe_event_unsubscribe() -> None:
    session = joined()
    request = session.subscribe("com.t", {"match": "exact"})
    assert sent(session) == [Subscribe(request, {"match": "exact"}, "com.t")]
    assert session.receive_message(Subscribed(request, 10)) == [SubscribeSucceeded(request, 10)]
    assert session.subscriptions == frozenset({10})
    (event,) = session.receive_message(Event(10, 99, {"topic": "com.t"}, [1], {"a": 2}))
    assert event == EventReceived(10, 99, [1], {"a": 2}, {"topic": "com.t"})
    assert isinstance(event, EventReceived)
    assert event.topic == "com.t"
    assert EventReceived(1, 2, None, None, {}).topic is None
    # an event for a subscription we do not hold is dropped
    assert session.receive_message(Event(11, 99, {})) == []
    request = session.unsubscribe(10)
    assert sent(session)[-1] == Unsubscribe(request, 10)
    assert session.receive_message(Unsubscribed(request)) == [UnsubscribeSucceeded(request, 10)]
    assert session.subscriptions == frozenset()
    with pytest.raises(LocalProtocolError, match="no subscription"):
        session.unsubscribe(10)


def test_pattern_subscribe_validates_by_policy() -> None:
    session = joined()
    session.subscribe("com..t", {"match": "wildcard"})
    session.subscribe("com.", {"match": "prefix"})
    with pytest.raises(LocalProtocolError):
        session.subscribe("com..t")
    with pytest.raises(LocalProtocolError):
        session.subscribe("com.t", {"match": "regex"})


def test_subscription_revocation() -> None:
    session = joined()
    request = session.subscribe("com.t")
    session.receive_message(Subscribed(request, 10))
    (event,) = session.receive_message(Unsubscribed(0, {"subscription": 10, "reason": "gone"}))
    assert event == SubscriptionRevoked(10, "gone")
    assert session.subscriptions == frozenset()
    (event,) = session.receive_message(Unsubscribed(0, {"subscription": 12, "reason": 5}))
    assert event == SubscriptionRevoked(12, None)
    with pytest.raises(RemoteProtocolError, match="subscription must be an ID"):
        session.receive_message(Unsubscribed(0, {}))


def test_register_invocation_yield() -> None:
    session = joined()
    request = session.register("com.add", {"invoke": "roundrobin"})
    assert sent(session) == [Register(request, {"invoke": "roundrobin"}, "com.add")]
    assert session.receive_message(Registered(request, 20)) == [RegisterSucceeded(request, 20)]
    assert session.registrations == frozenset({20})
    (event,) = session.receive_message(Invocation(5, 20, {"procedure": "com.add"}, [1, 2]))
    assert event == InvocationReceived(5, 20, [1, 2], None, {"procedure": "com.add"})
    assert isinstance(event, InvocationReceived)
    assert event.procedure == "com.add"
    assert InvocationReceived(1, 2, None, None, {}).procedure is None
    assert session.pending_invocations == frozenset({5})
    session.yield_result(5, [1], progress=True)
    session.yield_result(5, [2], options={"progress": True})
    assert session.pending_invocations == frozenset({5})
    session.yield_result(5, [3])
    assert sent(session) == [
        Yield(5, {"progress": True}, [1]),
        Yield(5, {"progress": True}, [2]),
        Yield(5, {}, [3]),
    ]
    assert session.pending_invocations == frozenset()
    with pytest.raises(LocalProtocolError, match="no pending invocation"):
        session.yield_result(5)


def test_yield_error() -> None:
    session = joined()
    request = session.register("com.div")
    session.receive_message(Registered(request, 20))
    session.receive_message(Invocation(1, 20, {}))
    with pytest.raises(LocalProtocolError):
        session.yield_error(1, "not a uri")
    sent(session)
    session.yield_error(1, "com.error.zero", ["division by zero"], {"a": 1}, {"d": 1})
    assert sent(session) == [
        Error(68, 1, {"d": 1}, "com.error.zero", ["division by zero"], {"a": 1})
    ]
    assert session.pending_invocations == frozenset()


def test_duplicate_invocation_is_a_violation() -> None:
    session = joined()
    request = session.register("com.a")
    session.receive_message(Registered(request, 20))
    session.receive_message(Invocation(1, 20, {}))
    with pytest.raises(RemoteProtocolError, match="already in progress"):
        session.receive_message(Invocation(1, 20, {}))


def test_invocation_for_unknown_registration_is_refused() -> None:
    session = joined()
    sent(session)
    assert session.receive_message(Invocation(3, 99, {})) == []
    assert sent(session) == [Error(68, 3, {}, "wamp.error.no_such_registration")]


def test_interrupt() -> None:
    session = joined()
    request = session.register("com.a")
    session.receive_message(Registered(request, 20))
    session.receive_message(Invocation(1, 20, {}))
    (event,) = session.receive_message(Interrupt(1, {"mode": "kill"}))
    assert event == InterruptReceived(1, {"mode": "kill"})
    assert isinstance(event, InterruptReceived)
    assert event.mode == "kill"
    assert InterruptReceived(1, {}).mode is None
    session.yield_error(1, "wamp.error.canceled")
    assert session.receive_message(Interrupt(1, {})) == []  # crossed our answer


def test_unregister_and_revocation() -> None:
    session = joined()
    request = session.register("com.a")
    session.receive_message(Registered(request, 20))
    request = session.unregister(20)
    assert sent(session)[-1] == Unregister(request, 20)
    assert session.receive_message(Unregistered(request)) == [UnregisterSucceeded(request, 20)]
    with pytest.raises(LocalProtocolError, match="no registration"):
        session.unregister(20)
    request = session.register("com.b")
    session.receive_message(Registered(request, 21))
    (event,) = session.receive_message(Unregistered(0, {"registration": 21, "reason": "admin"}))
    assert event == RegistrationRevoked(21, "admin")
    assert session.registrations == frozenset()
    (event,) = session.receive_message(Unregistered(0, {"registration": 22}))
    assert event == RegistrationRevoked(22, None)
    with pytest.raises(RemoteProtocolError, match="registration must be an ID"):
        session.receive_message(Unregistered(0, {"registration": True}))


def test_register_validates() -> None:
    session = joined()
    with pytest.raises(LocalProtocolError):
        session.register("com..a")
    session.register("com..a", {"match": "wildcard"})
    with pytest.raises(LocalProtocolError, match="state"):
        ClientSession().register("com.a")


@pytest.mark.parametrize(
    ("reply", "text"),
    [
        (Result(5, {}), "RESULT for request 5"),
        (Result(5, {"progress": True}), "RESULT for request 5"),
        (Published(5, 1), "PUBLISHED"),
        (Subscribed(5, 1), "SUBSCRIBED"),
        (Unsubscribed(5), "UNSUBSCRIBED"),
        (Registered(5, 1), "REGISTERED"),
        (Unregistered(5), "UNREGISTERED"),
        (Error(48, 5, {}, "com.e"), "ERROR"),
        (Error(68, 1, {}, "com.e"), "only be sent by a callee"),
    ],
)
def test_unpaired_replies_are_violations(reply: Message, text: str) -> None:
    session = joined()
    session.subscribe("com.t")  # request 1 is a pending SUBSCRIBE
    with pytest.raises(RemoteProtocolError, match=text):
        session.receive_message(reply)
    assert session.state is ClientState.FAILED


def test_reply_of_the_wrong_kind_is_a_violation() -> None:
    session = joined()
    request = session.subscribe("com.t")
    with pytest.raises(RemoteProtocolError, match="no pending CALL"):
        session.receive_message(Result(request, {}))


def test_violation_queues_abort_and_blocks_further_use() -> None:
    session = joined()
    session.call("com.a")
    sent(session)
    with pytest.raises(RemoteProtocolError) as info:
        session.receive_message(Hello("realm1", {}))
    assert info.value.reason == "wamp.error.protocol_violation"
    assert "HELLO is not allowed in state ESTABLISHED" in info.value.message
    (abort,) = sent(session)
    assert isinstance(abort, Abort)
    assert abort.details["message"] == info.value.message
    assert session.pending_requests == {}
    with pytest.raises(LocalProtocolError, match="failed"):
        session.receive_message(WELCOME)
    with pytest.raises(LocalProtocolError, match="failed"):
        session.receive_data(b"[]")
    with pytest.raises(LocalProtocolError):
        session.call("com.a")


@pytest.mark.parametrize("serializer", ["json", "msgpack", "cbor", "wamp.2.json.batched"])
def test_bytes_in_and_out(serializer: str) -> None:
    session = ClientSession(serializer)
    codec = get_serializer(serializer)
    assert session.serializer is codec
    session.join("realm1")
    (hello,) = session.data_to_send()
    assert codec.decode(hello)[0].type is MessageType.HELLO
    events = session.receive_data(codec.encode(WELCOME))
    assert isinstance(events[0], SessionJoined)
    session.call("com.a")
    session.call("com.b")
    out = session.data_to_send()
    assert len(out) == (1 if codec.batched else 2)
    assert [m.type for data in out for m in codec.decode(data)] == [MessageType.CALL] * 2


def test_batched_input_gives_events_for_every_message() -> None:
    codec = get_serializer("wamp.2.msgpack.batched")
    session = ClientSession(codec)
    session.join("realm1")
    session.data_to_send()
    session.receive_data(codec.encode(WELCOME))
    first = session.call("com.a")
    second = session.call("com.b")
    batch = b"".join(codec.encode(m) for m in (Result(first, {}, [1]), Result(second, {}, [2])))
    events = session.receive_data(batch)
    assert [e.request_id for e in events if isinstance(e, ResultReceived)] == [first, second]


def test_undecodable_bytes_are_a_violation() -> None:
    session = joined()
    with pytest.raises(RemoteProtocolError, match="invalid json"):
        session.receive_data(b"\xff")
    assert session.state is ClientState.FAILED
    (abort,) = session.data_to_send()
    assert b"protocol_violation" in abort


def test_serializer_object_accepted() -> None:
    codec = get_serializer("cbor")
    assert ClientSession(codec).serializer is codec


def test_unencodable_payload_raises_before_any_state_change() -> None:
    from wamp_core import SerializationError

    session = joined()
    session.register("com.p")
    session.receive_message(Registered(1, 20))
    session.receive_message(Invocation(7, 20, {}))
    sent(session)
    bad = [object()]
    verbs = [
        lambda: session.call("com.a", bad),
        lambda: session.publish("com.t", bad),
        lambda: session.publish("com.t", bad, acknowledge=True),
        lambda: session.subscribe("com.t", {"x": bad}),
        lambda: session.yield_result(7, bad),
        lambda: session.yield_error(7, "com.error", bad),
        lambda: session.leave(message="\ud800"),
    ]
    for verb in verbs:
        with pytest.raises(SerializationError):
            verb()
    assert sent(session) == []
    assert session.state is ClientState.ESTABLISHED
    assert session.pending_invocations == frozenset({7})
    assert session.pending_requests == {}
    assert session.call("com.a") == 2  # no request ID was used up
    fresh = ClientSession()
    with pytest.raises(SerializationError):
        fresh.join("realm1", details={"x": bad})
    assert fresh.state is ClientState.CLOSED
    fresh.join("realm1")
    fresh.receive_message(Challenge("ticket", {}))
    with pytest.raises(SerializationError):
        fresh.authenticate("sig", {"x": bad})
    assert fresh.state is ClientState.AUTHENTICATING
    with pytest.raises(SerializationError):
        fresh.abort(message="\ud800")
    assert fresh.state is ClientState.AUTHENTICATING
