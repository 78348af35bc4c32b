"""Walk of both transition tables: every message type in every state either
takes a listed transition or is a protocol violation (BP/sessions.md,
BP/building_blocks.md "Protocol Errors")."""

from __future__ import annotations

import pytest

from wamp_core import (
    Abort,
    Authenticate,
    Call,
    Cancel,
    Challenge,
    ClientSession,
    ClientState,
    Error,
    Event,
    Goodbye,
    Hello,
    Interrupt,
    Invocation,
    LocalProtocolError,
    Message,
    MessageType,
    Publish,
    Published,
    Register,
    Registered,
    RemoteProtocolError,
    Result,
    Router,
    SessionState,
    Subscribe,
    Subscribed,
    Unregister,
    Unregistered,
    Unsubscribe,
    Unsubscribed,
    Welcome,
    Yield,
    get_serializer,
)
from wamp_core._client import TRANSITIONS as CLIENT_TABLE
from wamp_core._router import TRANSITIONS as ROUTER_TABLE

ROLES: dict[str, dict[str, object]] = {
    "caller": {},
    "callee": {},
    "publisher": {},
    "subscriber": {},
}

# One valid message of every type. Request IDs fit the contexts built below:
# the client has CALL 1, PUBLISH 2 (acknowledged), SUBSCRIBE 3 and REGISTER 4
# pending; the router expects request ID 1 next.
SAMPLES: dict[MessageType, Message] = {
    MessageType.HELLO: Hello("realm1", {"roles": ROLES}),
    MessageType.WELCOME: Welcome(5, {"roles": {"broker": {}}}),
    MessageType.ABORT: Abort({}, "wamp.error.no_such_realm"),
    MessageType.CHALLENGE: Challenge("ticket", {}),
    MessageType.AUTHENTICATE: Authenticate("secret", {}),
    MessageType.GOODBYE: Goodbye({}, "wamp.close.close_realm"),
    MessageType.ERROR: Error(48, 1, {}, "com.error"),
    MessageType.PUBLISH: Publish(1, {}, "com.topic"),
    MessageType.PUBLISHED: Published(2, 9),
    MessageType.SUBSCRIBE: Subscribe(1, {}, "com.topic"),
    MessageType.SUBSCRIBED: Subscribed(3, 9),
    MessageType.UNSUBSCRIBE: Unsubscribe(1, 9),
    MessageType.UNSUBSCRIBED: Unsubscribed(0, {"subscription": 9}),
    MessageType.EVENT: Event(9, 9, {}),
    MessageType.CALL: Call(1, {}, "com.proc"),
    MessageType.CANCEL: Cancel(1, {}),
    MessageType.RESULT: Result(1, {}),
    MessageType.REGISTER: Register(1, {}, "com.proc"),
    MessageType.REGISTERED: Registered(4, 9),
    MessageType.UNREGISTER: Unregister(1, 9),
    MessageType.UNREGISTERED: Unregistered(0, {"registration": 9}),
    MessageType.INVOCATION: Invocation(1, 9, {}),
    MessageType.INTERRUPT: Interrupt(1, {}),
    MessageType.YIELD: Yield(1, {}),
}


def test_samples_cover_every_message_type() -> None:
    assert set(SAMPLES) == set(MessageType)
    assert all(SAMPLES[t].type is t for t in MessageType)


# -- client ---------------------------------------------------------------------


def client_in(state: ClientState) -> ClientSession:
    session = ClientSession()
    if state is ClientState.CLOSED:
        return session
    session.join("realm1")
    if state is ClientState.AUTHENTICATING:
        session.receive_message(Challenge("ticket", {}))
    if state in (ClientState.ESTABLISHED, ClientState.SHUTTING_DOWN, ClientState.FAILED):
        session.receive_message(Welcome(5, {}))
        session.call("com.proc")
        session.publish("com.topic", acknowledge=True)
        session.subscribe("com.topic")
        session.register("com.proc")
    if state is ClientState.SHUTTING_DOWN:
        session.leave()
    if state is ClientState.FAILED:
        with pytest.raises(RemoteProtocolError):
            session.receive_message(SAMPLES[MessageType.HELLO])
    session.messages_to_send()
    assert session.state is state
    return session


def client_next_state(state: ClientState, kind: MessageType) -> ClientState:
    if kind is MessageType.ABORT:
        return ClientState.CLOSED
    if state is ClientState.ESTABLISHING:
        return {
            MessageType.WELCOME: ClientState.ESTABLISHED,
            MessageType.CHALLENGE: ClientState.AUTHENTICATING,
        }[kind]
    if kind is MessageType.GOODBYE:
        return ClientState.CLOSED
    return state


@pytest.mark.parametrize("state", list(ClientState))
@pytest.mark.parametrize("kind", list(MessageType))
def test_client_table(state: ClientState, kind: MessageType) -> None:
    session = client_in(state)
    message = SAMPLES[kind]
    if state is ClientState.FAILED:
        with pytest.raises(LocalProtocolError):
            session.receive_message(message)
        return
    if (state, kind) in CLIENT_TABLE:
        session.receive_message(message)
        assert session.state is client_next_state(state, kind)
    else:
        with pytest.raises(RemoteProtocolError, match="is not allowed in state"):
            session.receive_message(message)
        assert session.state is ClientState.FAILED
        (abort,) = session.messages_to_send()
        assert isinstance(abort, Abort)
        assert abort.reason == "wamp.error.protocol_violation"


# -- router ---------------------------------------------------------------------


class Challenger:
    """Challenges every HELLO, so that the CHALLENGING state can be reached."""

    def hello(self, info):
        from wamp_core import AuthChallenge

        return AuthChallenge("ticket", {})

    def authenticate(self, info, challenge, signature, extra):
        from wamp_core import Accept

        return Accept("joe", "user", "ticket")


def router_in(state: SessionState) -> tuple[Router, object]:
    challenging = state is SessionState.CHALLENGING
    router = Router(["realm1"], authenticator=Challenger() if challenging else None)
    session = router.attach(get_serializer("json"))
    if state is not SessionState.CLOSED and state is not SessionState.DETACHED:
        router.receive_message(session, SAMPLES[MessageType.HELLO])
    if state is SessionState.SHUTTING_DOWN:
        router.close_session(session)
    if state is SessionState.FAILED:
        with pytest.raises(RemoteProtocolError):
            router.receive_message(session, SAMPLES[MessageType.HELLO])
    if state is SessionState.DETACHED:
        router.detach(session)
    router.data_to_send()
    assert session.state is state
    return router, session


def router_next_state(state: SessionState, kind: MessageType) -> SessionState:
    if state is SessionState.CLOSED:
        # HELLO (anonymous) establishes; ABORT is ignored (never answered).
        return SessionState.CLOSED if kind is MessageType.ABORT else SessionState.ESTABLISHED
    if state is SessionState.CHALLENGING:
        return {
            MessageType.AUTHENTICATE: SessionState.ESTABLISHED,
            MessageType.ABORT: SessionState.CLOSED,
        }[kind]
    if kind in (MessageType.GOODBYE, MessageType.ABORT):
        return SessionState.CLOSED
    return state


@pytest.mark.parametrize("state", list(SessionState))
@pytest.mark.parametrize("kind", list(MessageType))
def test_router_table(state: SessionState, kind: MessageType) -> None:
    router, session = router_in(state)
    message = SAMPLES[kind]
    if state is SessionState.DETACHED:
        with pytest.raises(LocalProtocolError):
            router.receive_message(session, message)  # type: ignore[arg-type]
        return
    if state is SessionState.FAILED:
        router.receive_message(session, message)  # type: ignore[arg-type]
        assert router.data_to_send() == []  # input after a violation is ignored
        return
    if (state, kind) in ROUTER_TABLE:
        if state is SessionState.ESTABLISHED and kind in (MessageType.YIELD, MessageType.ERROR):
            # Listed, but refused for content: no such invocation, or an ERROR for a CALL.
            with pytest.raises(RemoteProtocolError, match="INVOCATION"):
                router.receive_message(session, message)  # type: ignore[arg-type]
        else:
            router.receive_message(session, message)  # type: ignore[arg-type]
            assert session.state is router_next_state(state, kind)  # type: ignore[attr-defined]
    else:
        with pytest.raises(RemoteProtocolError, match="is not allowed in state"):
            router.receive_message(session, message)  # type: ignore[arg-type]
        assert session.state is SessionState.FAILED  # type: ignore[attr-defined]
        deliveries = router.data_to_send()
        assert deliveries[-1].data is None  # the transport is to be closed
        assert b"wamp.error.protocol_violation" in (deliveries[-2].data or b"")
