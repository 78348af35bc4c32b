"""The router (wamp_core._router, _auth): sessions, authentication, isolation.

Two kinds of peers share one router. ``Peer`` (tests/core/pair.py) wraps a real
``ClientSession``; ``Wire`` speaks hand-built messages, for what a well-behaved
client never sends. ``Hub.pump()`` moves bytes for both until quiet. The broker
and the dealer have their own files (test_broker.py, test_dealer.py), which
import these helpers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import pytest

from tests.core.pair import Net, Peer
from wamp_core import (
    CLIENT_ROLES,
    MAX_ID,
    ROUTER_ROLES,
    SERIALIZERS,
    Abort,
    Accept,
    AnonymousAuthenticator,
    AuthChallenge,
    Authenticate,
    AuthOutcome,
    Call,
    Cancel,
    Challenge,
    ChallengeReceived,
    CloseReason,
    Delivery,
    Deny,
    Error,
    ErrorReceived,
    ErrorURI,
    Event,
    EventReceived,
    Goodbye,
    Hello,
    HelloInfo,
    Interrupt,
    InterruptReceived,
    Invocation,
    InvocationReceived,
    LocalProtocolError,
    Message,
    MessageType,
    Publish,
    Published,
    Register,
    Registered,
    RemoteProtocolError,
    Result,
    ResultReceived,
    Router,
    RouterObserver,
    RouterSession,
    SequentialIds,
    SessionAborted,
    SessionClosed,
    SessionEvent,
    SessionJoined,
    SessionState,
    Subscribe,
    Subscribed,
    SubscribeSucceeded,
    Unregister,
    Unregistered,
    Unsubscribe,
    Unsubscribed,
    Welcome,
    Yield,
    get_serializer,
)
from wamp_core._router import TRANSITIONS

PV = ErrorURI.PROTOCOL_VIOLATION
AGENT = "wamp-core-0.1.0"

M = TypeVar("M", bound=Message)
E = TypeVar("E", bound=SessionEvent)


# -- harness -----------------------------------------------------------------------


class Wire:
    """A hand-driven client: messages in through the router's input, decoded
    deliveries out (``None`` stands for "close the transport")."""

    def __init__(self, hub: Hub, codec: str, transport: dict[str, Any] | None) -> None:
        self.hub = hub
        self.serializer = get_serializer(codec)
        self.slot = hub.router.attach(self.serializer, transport)
        self.inbox: list[Message | None] = []
        self.requests = SequentialIds()
        self.session_id = 0

    def req(self) -> int:
        """The next sequential request ID."""
        return self.requests()

    def send(self, *messages: Message) -> None:
        for message in messages:
            self.hub.router.receive_message(self.slot, message)

    def take(self) -> list[Message | None]:
        """Everything delivered to this wire since the last take()."""
        self.hub.pump()
        out, self.inbox = self.inbox, []
        return out

    def one(self, cls: type[M]) -> M:
        """The single message delivered since the last take(), of type ``cls``."""
        (message,) = self.take()
        assert isinstance(message, cls), message
        return message

    def feed(self, item: Message | bytes) -> None:
        """Feed a message, or bytes as one transport message."""
        if isinstance(item, bytes):
            self.hub.router.receive_data(self.slot, item)
        else:
            self.hub.router.receive_message(self.slot, item)

    def violation(self, item: Message | bytes) -> str:
        """Feed ``item``, which must be a protocol violation; return ABORT's message."""
        with pytest.raises(RemoteProtocolError) as info:
            self.feed(item)
        abort, close = self.take()
        assert isinstance(abort, Abort), abort
        assert abort.reason == PV
        assert abort.details == {"message": info.value.message}
        assert close is None
        assert self.slot.state is SessionState.FAILED
        return info.value.message


class Hub(Net):
    """``Net`` that also carries ``Wire``s."""

    def __init__(self, router: Router | None = None) -> None:
        super().__init__(router)
        self.wires: dict[RouterSession, Wire] = {}

    def wire(self, codec: str = "json", transport: dict[str, Any] | None = None) -> Wire:
        wire = Wire(self, codec, transport)
        self.wires[wire.slot] = wire
        return wire

    def joined_wire(
        self,
        codec: str = "json",
        roles: dict[str, Any] = CLIENT_ROLES,
        realm: str = "realm1",
        **details: Any,
    ) -> Wire:
        """A wire whose session has joined ``realm``."""
        wire = self.wire(codec)
        wire.send(Hello(realm, {"roles": roles, **details}))
        wire.session_id = wire.one(Welcome).session
        return wire

    def client(
        self,
        codec: str = "json",
        realm: str = "realm1",
        roles: dict[str, Any] | None = None,
        **join: Any,
    ) -> Peer:
        """A ClientSession peer that has joined ``realm`` (``join`` goes to join())."""
        peer = self.peer(codec) if roles is None else self.peer(codec, roles=roles)
        peer.client.join(realm, **join)
        self.pump()
        only(peer, SessionJoined)
        return peer

    def drop(self, peer: Peer | Wire) -> None:
        """The transport is gone: detach its slot and forget the peer."""
        self.router.detach(peer.slot)
        self.peers.pop(peer.slot, None)
        self.wires.pop(peer.slot, None)

    def pump(self, limit: int = 100) -> None:
        for _ in range(limit):
            moved = False
            for slot, peer in list(self.peers.items()):
                for data in peer.client.data_to_send():
                    moved = True
                    if not peer.closed:
                        self.router.receive_data(slot, data)
            for delivery in self.router.data_to_send():
                moved = True
                wire = self.wires.get(delivery.session)
                if wire is not None:
                    if delivery.data is None:
                        wire.inbox.append(None)
                    else:
                        wire.inbox.extend(wire.serializer.decode(delivery.data))
                    continue
                peer = self.peers[delivery.session]
                if delivery.data is None:
                    peer.closed = True
                else:
                    peer.events.extend(peer.client.receive_data(delivery.data))
            if not moved:
                return
        raise AssertionError("traffic did not settle")


def only(peer: Peer, cls: type[E]) -> E:
    """The single event ``peer`` received since the last take(), of type ``cls``."""
    event = peer.last()
    assert isinstance(event, cls), event
    return event


def roles_with(**features: bool) -> dict[str, Any]:
    """All four client roles; the callee announces exactly ``features``."""
    return {
        "caller": {"features": {"progressive_call_results": True}},
        "callee": {"features": features},
        "publisher": {},
        "subscriber": {},
    }


def hello(realm: str = "realm1", **details: Any) -> Hello:
    return Hello(realm, {"roles": CLIENT_ROLES, **details})


def assert_clean(router: Router) -> None:
    """No session, subscription, registration or pattern entry is left."""
    assert router.sessions == {}
    for realm in router.realms.values():
        assert realm.sessions == {}
        assert realm.broker.subscriptions == {}
        assert realm.dealer.registrations == {}
        assert len(realm.broker._table) == 0
        assert len(realm.dealer._table) == 0


class ScriptedAuth:
    """An Authenticator for the tests.

    A HELLO offering ``ticket`` is challenged; one offering ``deny`` is refused;
    any other is accepted with the authid it asks for and the role in
    ``authextra.role``. AUTHENTICATE ``secret`` is accepted as alice/user,
    ``again`` asks for another round, anything else is denied.
    """

    def __init__(self) -> None:
        self.hellos: list[HelloInfo] = []
        self.answers: list[tuple[HelloInfo, AuthChallenge, str, dict[str, Any]]] = []

    def hello(self, info: HelloInfo) -> AuthOutcome:
        self.hellos.append(info)
        if "ticket" in info.authmethods:
            return AuthChallenge("ticket", {"round": 1}, state=["round", 1])
        if "deny" in info.authmethods:
            return Deny(ErrorURI.NO_SUCH_PRINCIPAL)
        extra = info.details.get("authextra", {})
        return Accept(info.authid or "nobody", extra.get("role", "anonymous"))

    def authenticate(
        self, info: HelloInfo, challenge: AuthChallenge, signature: str, extra: dict[str, Any]
    ) -> AuthOutcome:
        self.answers.append((info, challenge, signature, extra))
        if signature == "secret":
            return Accept("alice", "user", "ticket", "userdb", {"greeting": "hi"})
        if signature == "again":
            return AuthChallenge("ticket", {"round": challenge.extra["round"] + 1})
        return Deny(message="wrong ticket")


def ids(*values: int) -> Callable[[], int]:
    """An id_source that hands out ``values`` in order."""
    it: Iterator[int] = iter(values)
    return lambda: next(it)


# -- session establishment -------------------------------------------------------------


@pytest.mark.parametrize("serializer", sorted(SERIALIZERS))
def test_welcome_announces_roles_identity_and_agent(serializer: str) -> None:
    hub = Hub()
    peer = hub.client(serializer)
    sid = peer.client.session_id
    assert sid is not None
    assert 1 <= sid <= MAX_ID
    assert peer.client.welcome_details == {
        "realm": "realm1",
        "roles": ROUTER_ROLES,
        "authid": f"anonymous-{sid}",
        "authrole": "anonymous",
        "authmethod": "anonymous",
        "authprovider": "static",
        "agent": AGENT,
    }
    slot = peer.slot
    assert slot.state is SessionState.ESTABLISHED
    assert (slot.session_id, slot.realm_name, slot.roles) == (sid, "realm1", CLIENT_ROLES)
    assert (slot.authid, slot.authrole, slot.authmethod) == (
        f"anonymous-{sid}",
        "anonymous",
        "anonymous",
    )
    assert hub.router.sessions == {sid: slot}
    assert hub.router.realms["realm1"].sessions == {sid: slot}
    assert repr(slot) == f"<RouterSession ESTABLISHED id={sid} realm='realm1'>"


def test_welcome_uses_requested_authid_and_router_settings() -> None:
    router = Router(
        ["realm1"],
        agent="my-router",
        roles={"broker": {}},
        authenticator=AnonymousAuthenticator("guest"),
        id_source=ids(42),
    )
    wire = Hub(router).wire()
    wire.send(hello(authid="joe", authmethods=["ticket", "anonymous"]))
    assert wire.take() == [
        Welcome(
            42,
            {
                "realm": "realm1",
                "roles": {"broker": {}},
                "authid": "joe",
                "authrole": "guest",
                "authmethod": "anonymous",
                "authprovider": "static",
                "agent": "my-router",
            },
        )
    ]


def test_session_ids_are_unique() -> None:
    # The id source repeats 7: the second session must not get it.
    hub = Hub(Router(["realm1"], id_source=ids(7, 7, 7, 8)))
    first, second = hub.client(), hub.client()
    assert (first.client.session_id, second.client.session_id) == (7, 8)


def test_session_state_before_joining() -> None:
    router = Router(["realm1"])
    slot = router.attach(get_serializer("json"), {"peer": "tcp:1.2.3.4"})
    assert slot.state is SessionState.CLOSED
    assert slot.transport == {"peer": "tcp:1.2.3.4"}
    assert slot.realm_name is None
    assert repr(slot) == "<RouterSession CLOSED id=0 realm=None>"
    assert list(router.attached) == [slot]
    assert router.attach(get_serializer("json")).transport == {}


def test_unknown_realm_is_refused_and_the_transport_may_hello_again() -> None:
    hub = Hub()
    wire = hub.wire()
    wire.send(hello("no.such.realm"))
    assert wire.take() == [Abort({"message": "no realm 'no.such.realm'"}, ErrorURI.NO_SUCH_REALM)]
    assert wire.slot.state is SessionState.CLOSED
    assert set(hub.router.realms) == {"realm1"}
    assert hub.router.sessions == {}
    wire.send(hello())
    assert wire.one(Welcome).details["realm"] == "realm1"


def test_auto_create_realms() -> None:
    hub = Hub(Router(auto_create_realms=True))
    assert hub.router.realms == {}
    peer = hub.client(realm="fresh.realm")
    assert set(hub.router.realms) == {"fresh.realm"}
    assert hub.router.realms["fresh.realm"].sessions == {peer.client.session_id: peer.slot}
    assert peer.client.welcome_details["realm"] == "fresh.realm"


@pytest.mark.parametrize("auto_create", [False, True])
@pytest.mark.parametrize("realm", ["a..b", "a b", "a#b", "", ".a"])
def test_invalid_realm_uri_is_refused(realm: str, auto_create: bool) -> None:
    hub = Hub(Router(["realm1"], auto_create_realms=auto_create))
    wire = hub.wire()
    wire.send(Hello(realm, {"roles": CLIENT_ROLES}))
    assert wire.take() == [Abort({"message": f"invalid realm URI {realm!r}"}, ErrorURI.INVALID_URI)]
    assert wire.slot.state is SessionState.CLOSED
    assert set(hub.router.realms) == {"realm1"}


def test_realm_management() -> None:
    with pytest.raises(LocalProtocolError) as info:
        Router(["bad realm"])
    assert info.value.reason == ErrorURI.INVALID_URI
    router = Router(["realm1"])
    assert router.add_realm("realm1") is router.realms["realm1"]
    realm2 = router.add_realm("realm2")
    assert realm2.name == "realm2"
    assert set(router.realms) == {"realm1", "realm2"}


@pytest.mark.parametrize(
    "details",
    [
        {},
        {"roles": {}},
        {"roles": "caller"},
        {"roles": ["caller"]},
        {"roles": {"broker": {}}},
        {"roles": {"caller": True}},
        {"roles": {"caller": {}, "dealer": {}}},
    ],
)
def test_hello_without_valid_roles_is_a_violation(details: dict[str, Any]) -> None:
    hub = Hub()
    wire = hub.wire()
    assert wire.violation(Hello("realm1", details)) == (
        "HELLO.Details.roles must map client roles to dicts"
    )
    assert hub.router.sessions == {}
    # Input after the violation is ignored, whatever it is.
    hub.router.receive_data(wire.slot, b"garbage")
    hub.router.receive_message(wire.slot, hello())
    assert wire.take() == []
    assert wire.slot.state is SessionState.FAILED


def test_second_hello_is_a_violation() -> None:
    hub = Hub()
    wire = hub.joined_wire()
    wire.send(Subscribe(wire.req(), {}, "a.topic"))
    wire.take()
    assert wire.violation(hello()) == "HELLO is not allowed in state ESTABLISHED"
    assert_clean(hub.router)


@pytest.mark.parametrize(
    "message",
    [
        Call(1, {}, "a.proc"),
        Subscribe(1, {}, "a.topic"),
        Publish(1, {}, "a.topic"),
        Register(1, {}, "a.proc"),
        Unsubscribe(1, 1),
        Unregister(1, 1),
        Goodbye({}, CloseReason.CLOSE_REALM),
        Yield(1, {}),
        Error(MessageType.INVOCATION, 1, {}, "app.error"),
        Cancel(1, {}),
        Authenticate("secret", {}),
    ],
    ids=lambda m: m.type.name,
)
def test_messages_before_welcome_are_violations(message: Message) -> None:
    wire = Hub().wire()
    assert wire.violation(message) == f"{message.type.name} is not allowed in state CLOSED"


@pytest.mark.parametrize(
    "message",
    [
        hello(),
        Welcome(1, {}),
        Challenge("ticket", {}),
        Authenticate("secret", {}),
        Published(1, 1),
        Subscribed(1, 1),
        Unsubscribed(1),
        Event(1, 1, {}),
        Result(1, {}),
        Registered(1, 1),
        Unregistered(1),
        Invocation(1, 1, {}),
        Interrupt(1, {}),
    ],
    ids=lambda m: m.type.name,
)
def test_router_bound_messages_from_a_client_are_violations(message: Message) -> None:
    hub = Hub()
    wire = hub.joined_wire()
    assert wire.violation(message) == f"{message.type.name} is not allowed in state ESTABLISHED"
    assert hub.router.sessions == {}


@pytest.mark.parametrize(
    "request_type",
    [
        MessageType.PUBLISH,
        MessageType.SUBSCRIBE,
        MessageType.UNSUBSCRIBE,
        MessageType.CALL,
        MessageType.REGISTER,
        MessageType.UNREGISTER,
    ],
)
def test_client_error_for_anything_but_invocation_is_a_violation(
    request_type: MessageType,
) -> None:
    wire = Hub().joined_wire()
    assert wire.violation(Error(request_type, 1, {}, "app.error")) == (
        f"a client may send ERROR only for INVOCATION, not type {request_type}"
    )


def test_every_transition_has_a_handler() -> None:
    for handler in TRANSITIONS.values():
        assert callable(getattr(Router, handler))


def test_a_subclass_overrides_handlers() -> None:
    """The router dispatches to the subclass's ``_on_*`` methods."""
    seen: list[Message] = []

    class Recording(Router):
        def _on_publish(self, session: RouterSession, message: Publish) -> None:
            seen.append(message)
            super()._on_publish(session, message)

    hub = Hub(Recording(["realm1"]))
    wire = hub.joined_wire()
    publish = Publish(wire.req(), {"acknowledge": True}, "a.b")
    wire.send(publish)
    assert seen == [publish]
    assert isinstance(wire.one(Published), Published)


def test_session_states_hash_by_identity() -> None:
    table = {state: state.value for state in SessionState}
    assert all(table[state] == state.value for state in SessionState)
    assert hash(SessionState.ESTABLISHED) == object.__hash__(SessionState.ESTABLISHED)


# -- undecodable input ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("codec", "data"),
    [
        ("json", b"not json"),
        ("json", b"\xff\xfe"),
        ("json", b"[]"),
        ("json", b"[999]"),
        ("json", b'{"a": 1}'),
        ("json", b'[1, "realm1"]'),
        ("msgpack", b"\xc1"),
        ("cbor", b"\xff"),
        ("wamp.2.json.batched", b'[6,{},"wamp.close.close_realm"]'),
        ("wamp.2.json.batched", b""),
        ("wamp.2.msgpack.batched", b"\x00\x00"),
    ],
)
@pytest.mark.parametrize("joined", [False, True])
def test_undecodable_bytes_are_violations(codec: str, data: bytes, joined: bool) -> None:
    hub = Hub()
    wire = hub.joined_wire(codec) if joined else hub.wire(codec)
    wire.violation(data)
    assert hub.router.sessions == {}


def test_batched_input_is_processed_in_order() -> None:
    hub = Hub()
    wire = hub.wire("wamp.2.json.batched")
    batch = b"".join(
        wire.serializer.encode(m) for m in (hello(), Subscribe(1, {}, "a.b"), Publish(2, {}, "a.b"))
    )
    hub.router.receive_data(wire.slot, batch)
    welcome, subscribed = wire.take()
    assert isinstance(welcome, Welcome)
    assert isinstance(subscribed, Subscribed)
    assert wire.slot.last_request == 2


# -- request IDs -----------------------------------------------------------------------


@pytest.mark.parametrize("first", [2, 5, MAX_ID])
def test_non_sequential_request_id_is_a_violation(first: int) -> None:
    wire = Hub().joined_wire()
    assert wire.violation(Subscribe(first, {}, "a.b")) == (
        f"request ID {first} is not sequential (expected 1)"
    )


def test_request_ids_are_checked_for_every_request_type() -> None:
    hub = Hub()
    wire = hub.joined_wire()
    wire.send(
        Subscribe(1, {}, "a.b"),
        Publish(2, {}, "a.b"),
        Register(3, {}, "a.p"),
        Call(4, {}, "a.nope"),
        Unsubscribe(5, 999),
        Unregister(6, 999),
    )
    assert len(wire.take()) == 5  # every reply but the unacknowledged PUBLISH
    assert wire.violation(Publish(6, {}, "a.b")) == "request ID 6 is not sequential (expected 7)"


def test_request_ids_are_per_session() -> None:
    hub = Hub()
    one, two = hub.joined_wire(), hub.joined_wire()
    one.send(Subscribe(1, {}, "a.b"), Subscribe(2, {}, "a.c"))
    two.send(Subscribe(1, {}, "a.b"))
    assert len(one.take()) == 2
    assert len(two.take()) == 1


def test_non_strict_request_ids_are_accepted() -> None:
    hub = Hub(Router(["realm1"], strict_request_ids=False))
    wire = hub.joined_wire()
    wire.send(Subscribe(77, {}, "a.b"), Subscribe(3, {}, "a.c"), Publish(3, {}, "a.b"))
    assert [type(m) for m in wire.take()] == [Subscribed, Subscribed]
    assert wire.slot.last_request == 3


def test_request_id_wraps_from_max_to_one() -> None:
    router = Router(["realm1"], strict_request_ids=False)
    hub = Hub(router)
    wire = hub.joined_wire()
    wire.send(Subscribe(MAX_ID, {}, "a.b"))
    router.strict_request_ids = True
    wire.send(Subscribe(1, {}, "a.c"), Subscribe(2, {}, "a.d"))
    assert len(wire.take()) == 3
    wire2 = hub.joined_wire()
    wire2.send(Subscribe(1, {}, "a.b"))
    router.strict_request_ids = False
    wire2.send(Subscribe(MAX_ID, {}, "a.b"))
    assert len(wire2.take()) == 2
    router.strict_request_ids = True
    assert wire2.violation(Subscribe(2, {}, "a.b")) == (
        "request ID 2 is not sequential (expected 1)"
    )


# -- closing ------------------------------------------------------------------------------


def test_goodbye_is_echoed_and_the_transport_can_join_again() -> None:
    hub = Hub()
    peer = hub.client()
    first_id = peer.client.session_id
    peer.client.subscribe("a.b")
    peer.client.register("a.p")
    hub.pump()
    peer.take()
    peer.client.leave(message="see you")
    hub.pump()
    assert peer.take() == [SessionClosed(CloseReason.GOODBYE_AND_OUT, {}, False)]
    assert peer.slot.state is SessionState.CLOSED
    assert peer.slot.session_id == 0
    assert_clean(hub.router)
    # A new session on the same transport starts its request IDs at 1 again.
    peer.client.join("realm1")
    hub.pump()
    assert only(peer, SessionJoined).session_id != first_id
    assert peer.client.subscribe("a.b") == 1
    hub.pump()
    assert only(peer, SubscribeSucceeded).request_id == 1
    assert peer.slot.last_request == 1


def test_goodbye_reply_is_exact() -> None:
    wire = Hub().joined_wire()
    wire.send(Goodbye({"message": "bye"}, CloseReason.CLOSE_REALM))
    assert wire.take() == [Goodbye({}, CloseReason.GOODBYE_AND_OUT)]
    assert wire.slot.state is SessionState.CLOSED


def test_abort_from_established_client_cleans_up_without_reply() -> None:
    hub = Hub()
    wire = hub.joined_wire()
    wire.send(Subscribe(wire.req(), {}, "a.b"), Register(wire.req(), {}, "a.p"))
    wire.take()
    wire.send(Abort({"message": "oops"}, "app.gone"))
    assert wire.take() == []
    assert wire.slot.state is SessionState.CLOSED
    assert_clean(hub.router)
    wire.send(hello())
    assert isinstance(wire.one(Welcome), Welcome)


def test_abort_before_hello_is_ignored() -> None:
    """BP/sessions.md: ABORT is never answered, before HELLO too (a client's ABORT
    may cross the router's ABORT of its HELLO)."""
    hub = Hub()
    wire = hub.wire()
    wire.send(Abort({}, "wamp.error.authentication_failed"))
    assert wire.take() == []
    assert wire.slot.state is SessionState.CLOSED
    wire.send(hello())
    assert isinstance(wire.one(Welcome), Welcome)


@pytest.mark.parametrize(
    "reply",
    [Goodbye({}, CloseReason.GOODBYE_AND_OUT), Abort({}, "app.abort")],
    ids=["goodbye", "abort"],
)
def test_close_session_kills_and_then_ignores_all_but_goodbye(reply: Message) -> None:
    hub = Hub()
    wire = hub.joined_wire()
    wire.send(Subscribe(wire.req(), {}, "a.b"), Register(wire.req(), {}, "a.p"))
    wire.take()
    hub.router.close_session(wire.slot, message="go away")
    assert wire.take() == [Goodbye({"message": "go away"}, CloseReason.KILLED)]
    assert wire.slot.state is SessionState.SHUTTING_DOWN
    assert_clean(hub.router)
    # Requests that crossed the GOODBYE keep their (now stale) request IDs:
    # BP/sessions.md says they are ignored, not checked.
    wire.send(
        Subscribe(wire.req(), {}, "a.b"),
        Call(wire.req(), {}, "a.p"),
        Publish(9, {"acknowledge": True}, "a.b"),
        hello(),
        Yield(5, {}),
        Error(MessageType.INVOCATION, 5, {}, "app.error"),
        Welcome(1, {}),
    )
    assert wire.take() == []
    assert wire.slot.state is SessionState.SHUTTING_DOWN
    # A second close while shutting down does nothing.
    hub.router.close_session(wire.slot)
    assert wire.take() == []
    # The client's GOODBYE (or an ABORT instead) ends it, without a reply.
    wire.send(reply)
    assert wire.take() == []
    assert wire.slot.state is SessionState.CLOSED
    wire.send(hello())
    assert isinstance(wire.one(Welcome), Welcome)


def test_close_session_with_a_client() -> None:
    hub = Hub()
    peer = hub.client()
    hub.router.close_session(peer.slot, CloseReason.CLOSE_REALM)
    hub.pump()
    assert peer.take() == [SessionClosed(CloseReason.CLOSE_REALM, {}, True)]
    assert peer.slot.state is SessionState.CLOSED


def test_close_session_leaves_other_states_alone() -> None:
    hub = Hub(Router(["realm1"], authenticator=ScriptedAuth()))
    closed = hub.wire()
    challenging = hub.wire()
    challenging.send(hello(authmethods=["ticket"]))
    challenging.take()
    for wire in (closed, challenging):
        state = wire.slot.state
        hub.router.close_session(wire.slot)
        assert wire.take() == []
        assert wire.slot.state is state


def test_shutdown_says_goodbye_to_every_established_session() -> None:
    hub = Hub()
    peers = [hub.client("json"), hub.client("msgpack"), hub.client("cbor")]
    idle = hub.wire()
    hub.router.shutdown(message="maintenance")
    hub.pump()
    for peer in peers:
        assert peer.take() == [
            SessionClosed(CloseReason.SYSTEM_SHUTDOWN, {"message": "maintenance"}, True)
        ]
        assert peer.slot.state is SessionState.CLOSED
    assert idle.take() == []
    assert idle.slot.state is SessionState.CLOSED
    assert_clean(hub.router)


def test_shutdown_aborts_sessions_still_authenticating_and_later_hellos() -> None:
    hub = Hub(Router(["realm1"], authenticator=ScriptedAuth()))
    challenging = hub.wire()
    challenging.send(hello(authmethods=["ticket"]))
    challenging.take()
    hub.router.shutdown()
    assert hub.router.closing == CloseReason.SYSTEM_SHUTDOWN
    (abort,) = challenging.take()
    assert isinstance(abort, Abort)
    assert abort.reason == CloseReason.SYSTEM_SHUTDOWN
    assert challenging.slot.state is SessionState.CLOSED
    late = hub.wire()
    late.send(hello())
    (abort,) = late.take()
    assert isinstance(abort, Abort)
    assert abort.reason == CloseReason.SYSTEM_SHUTDOWN
    assert abort.details == {"message": "the router is shutting down"}
    assert late.slot.state is SessionState.CLOSED
    assert_clean(hub.router)


# -- detach -------------------------------------------------------------------------------


def test_detach_cleans_every_table_and_is_idempotent() -> None:
    hub = Hub()
    wire = hub.joined_wire()
    wire.send(Subscribe(wire.req(), {}, "a.b"), Register(wire.req(), {}, "a.p"))
    wire.send(Publish(wire.req(), {"exclude_me": False}, "a.b"))  # an EVENT left queued
    router = hub.router
    slot = wire.slot
    hub.drop(wire)
    assert router.data_to_send() == []  # queued output for a gone transport is dropped
    assert slot.state is SessionState.DETACHED
    assert_clean(router)
    assert list(router.attached) == []
    router.detach(slot)
    assert slot.state is SessionState.DETACHED
    with pytest.raises(LocalProtocolError):
        router.receive_data(slot, b"[]")
    with pytest.raises(LocalProtocolError):
        router.receive_message(slot, hello())


@pytest.mark.parametrize("state", ["closed", "challenging", "shutting_down", "failed"])
def test_detach_in_any_state(state: str) -> None:
    hub = Hub(Router(["realm1"], authenticator=ScriptedAuth()))
    wire = hub.wire()
    if state == "challenging":
        wire.send(hello(authmethods=["ticket"]))
    elif state == "shutting_down":
        wire.send(hello())
        hub.router.close_session(wire.slot)
    elif state == "failed":
        with pytest.raises(RemoteProtocolError):
            wire.send(Yield(1, {}))
    hub.drop(wire)
    assert wire.slot.state is SessionState.DETACHED
    assert hub.router.data_to_send() == []
    assert_clean(hub.router)
    assert list(hub.router.attached) == []


def test_detach_keeps_output_for_others() -> None:
    hub = Hub()
    sub = hub.joined_wire()
    pub = hub.joined_wire()
    sub.send(Subscribe(sub.req(), {}, "a.b"))
    sub.take()
    pub.send(Publish(pub.req(), {}, "a.b", [1]))
    hub.drop(pub)
    event = sub.one(Event)
    assert event.args == [1]


# -- authentication -----------------------------------------------------------------------


def test_challenge_then_accept() -> None:
    auth = ScriptedAuth()
    hub = Hub(Router(["realm1"], authenticator=auth, id_source=ids(99)))
    wire = hub.wire(transport={"peer": "unix"})
    details = {"roles": CLIENT_ROLES, "authmethods": ["ticket"], "authid": "alice"}
    wire.send(Hello("realm1", details))
    assert wire.take() == [Challenge("ticket", {"round": 1})]
    assert wire.slot.state is SessionState.CHALLENGING
    assert hub.router.sessions == {}
    wire.send(Authenticate("secret", {"client": "x"}))
    assert wire.take() == [
        Welcome(
            99,
            {
                "realm": "realm1",
                "roles": ROUTER_ROLES,
                "authid": "alice",
                "authrole": "user",
                "authmethod": "ticket",
                "authprovider": "userdb",
                "agent": AGENT,
                "authextra": {"greeting": "hi"},
            },
        )
    ]
    (info, challenge, signature, extra) = auth.answers[0]
    assert info == HelloInfo("realm1", details, 99, {"peer": "unix"}, 0.0)
    assert info.authmethods == ["ticket"]
    assert info.authid == "alice"
    assert challenge == AuthChallenge("ticket", {"round": 1}, state=["round", 1])
    assert (signature, extra) == ("secret", {"client": "x"})
    slot = wire.slot
    assert slot.state is SessionState.ESTABLISHED
    assert (slot.authid, slot.authrole, slot.authmethod, slot.authprovider) == (
        "alice",
        "user",
        "ticket",
        "userdb",
    )
    assert slot.authextra == {"greeting": "hi"}
    assert slot.roles == CLIENT_ROLES


def test_challenge_with_a_client_session() -> None:
    hub = Hub(Router(["realm1"], authenticator=ScriptedAuth()))
    peer = hub.peer("cbor")
    peer.client.join("realm1", authmethods=["ticket"])
    hub.pump()
    assert only(peer, ChallengeReceived) == ChallengeReceived("ticket", {"round": 1})
    peer.client.authenticate("secret")
    hub.pump()
    joined = only(peer, SessionJoined)
    assert (joined.authid, joined.authrole) == ("alice", "user")


def test_several_challenge_rounds() -> None:
    auth = ScriptedAuth()
    hub = Hub(Router(["realm1"], authenticator=auth))
    wire = hub.wire()
    wire.send(hello(authmethods=["ticket"]))
    assert wire.take() == [Challenge("ticket", {"round": 1})]
    wire.send(Authenticate("again", {}))
    assert wire.take() == [Challenge("ticket", {"round": 2})]
    wire.send(Authenticate("again", {}))
    assert wire.take() == [Challenge("ticket", {"round": 3})]
    wire.send(Authenticate("secret", {}))
    assert wire.one(Welcome).details["authid"] == "alice"
    assert [a[1].extra["round"] for a in auth.answers] == [1, 2, 3]


def test_deny_after_challenge() -> None:
    hub = Hub(Router(["realm1"], authenticator=ScriptedAuth()))
    wire = hub.wire()
    wire.send(hello(authmethods=["ticket"]))
    wire.take()
    wire.send(Authenticate("wrong", {}))
    assert wire.take() == [Abort({"message": "wrong ticket"}, ErrorURI.AUTHENTICATION_FAILED)]
    assert wire.slot.state is SessionState.CLOSED
    assert hub.router.sessions == {}
    # The transport may try again.
    wire.send(hello(authmethods=["ticket"]))
    wire.take()
    wire.send(Authenticate("secret", {}))
    assert isinstance(wire.one(Welcome), Welcome)


def test_deny_at_hello_without_message() -> None:
    hub = Hub(Router(auto_create_realms=True, authenticator=ScriptedAuth()))
    wire = hub.wire()
    wire.send(hello("new.realm", authmethods=["deny"]))
    assert wire.take() == [Abort({}, ErrorURI.NO_SUCH_PRINCIPAL)]
    assert hub.router.realms == {}  # a refused HELLO creates no realm


def test_abort_while_challenging() -> None:
    hub = Hub(Router(["realm1"], authenticator=ScriptedAuth()))
    peer = hub.peer()
    peer.client.join("realm1", authmethods=["ticket"])
    hub.pump()
    only(peer, ChallengeReceived)
    peer.client.abort(message="no ticket")
    hub.pump()
    assert peer.take() == []
    assert peer.slot.state is SessionState.CLOSED
    assert hub.router.sessions == {}
    with pytest.raises(RemoteProtocolError):
        hub.router.receive_message(peer.slot, Authenticate("secret", {}))


def test_hello_while_challenging_is_a_violation() -> None:
    hub = Hub(Router(["realm1"], authenticator=ScriptedAuth()))
    wire = hub.wire()
    wire.send(hello(authmethods=["ticket"]))
    wire.take()
    assert wire.violation(hello()) == "HELLO is not allowed in state CHALLENGING"


def test_session_id_taken_while_the_challenge_was_out() -> None:
    # Both HELLOs draw 5; the one that finishes authenticating last gets 6.
    hub = Hub(Router(["realm1"], authenticator=ScriptedAuth(), id_source=ids(5, 5, 5, 6)))
    slow = hub.wire()
    slow.send(hello(authmethods=["ticket"]))
    slow.take()
    fast = hub.joined_wire()
    assert fast.session_id == 5
    slow.send(Authenticate("secret", {}))
    assert slow.one(Welcome).session == 6
    assert set(hub.router.sessions) == {5, 6}


@pytest.mark.parametrize(
    ("details", "outcome"),
    [
        ({}, Accept("anonymous-3", "anonymous")),
        ({"authid": "joe"}, Accept("joe", "anonymous")),
        ({"authid": 12}, Accept("anonymous-3", "anonymous")),
        ({"authmethods": "ticket"}, Accept("anonymous-3", "anonymous")),
        ({"authmethods": ["ticket", 1, "anonymous"]}, Accept("anonymous-3", "anonymous")),
        (
            {"authmethods": ["ticket", "wampcra"]},
            Deny(ErrorURI.NO_MATCHING_AUTH_METHOD, "this realm admits anonymous sessions only"),
        ),
        (
            {"authmethods": []},
            Deny(ErrorURI.NO_MATCHING_AUTH_METHOD, "this realm admits anonymous sessions only"),
        ),
    ],
)
def test_anonymous_authenticator(details: dict[str, Any], outcome: AuthOutcome) -> None:
    info = HelloInfo("realm1", details, 3, {})
    assert AnonymousAuthenticator().hello(info) == outcome


def test_anonymous_authenticator_never_accepts_an_authenticate() -> None:
    info = HelloInfo("realm1", {}, 3, {})
    outcome = AnonymousAuthenticator().authenticate(info, AuthChallenge("x", {}), "sig", {})
    assert outcome == Deny(ErrorURI.AUTHENTICATION_FAILED, "no challenge was sent")


def test_anonymous_authenticator_refuses_other_methods_over_the_wire() -> None:
    hub = Hub()
    peer = hub.peer()
    peer.client.join("realm1", authmethods=["ticket"])
    hub.pump()
    aborted = only(peer, SessionAborted)
    assert aborted.reason == ErrorURI.NO_MATCHING_AUTH_METHOD
    assert aborted.message == "this realm admits anonymous sessions only"
    assert peer.slot.state is SessionState.CLOSED


# -- isolation ------------------------------------------------------------------------------


def test_a_violation_leaves_other_sessions_intact() -> None:
    hub = Hub()
    a = hub.client()  # callee of a.proc, subscriber of t
    b = hub.client()  # callee of b.proc, subscriber of t, caller of a.proc
    c = hub.client()  # caller of a.proc and b.proc, publisher
    for peer, proc in ((a, "a.proc"), (b, "b.proc")):
        peer.client.register(proc)
        peer.client.subscribe("t")
    hub.pump()
    for peer in (a, b):
        assert len(peer.take()) == 2
    b.client.call("a.proc", [1])
    c_to_a = c.client.call("a.proc", [2])
    c_to_b = c.client.call("b.proc", [3])
    hub.pump()
    inv_from_b, inv_from_c = a.take()
    assert isinstance(inv_from_b, InvocationReceived)
    assert isinstance(inv_from_c, InvocationReceived)
    assert isinstance(only(b, InvocationReceived), InvocationReceived)
    realm = hub.router.realms["realm1"]

    with pytest.raises(RemoteProtocolError):
        hub.router.receive_data(b.slot, b"\x00garbage")
    hub.pump()
    aborted = only(b, SessionAborted)
    assert aborted.reason == PV
    assert b.closed
    assert b.slot.state is SessionState.FAILED
    # b's call to a is orphaned (a can cancel), c's call to b is canceled.
    assert a.take() == [InterruptReceived(inv_from_b.request_id, {"mode": "killnowait"})]
    assert c.take() == [
        ErrorReceived(
            MessageType.CALL,
            c_to_b,
            ErrorURI.CANCELED,
            ["the callee left before answering"],
            None,
            {},
        )
    ]
    # a's registration and subscription, and c's call to a, still work.
    assert [r.uri for r in realm.dealer.registrations.values()] == ["a.proc"]
    (subscription,) = realm.broker.subscriptions.values()
    assert list(subscription.subscribers) == [a.slot]
    a.client.yield_result(inv_from_b.request_id, ["late"])  # dropped silently
    a.client.yield_result(inv_from_c.request_id, ["ok"])
    c.client.publish("t", ["news"])
    hub.pump()
    assert c.take() == [ResultReceived(c_to_a, ["ok"], None, {})]
    event = only(a, EventReceived)
    assert event.args == ["news"]
    assert a.slot.invocations == {}
    assert c.slot.calls == {}

    for peer in (a, b, c):
        hub.drop(peer)
    assert_clean(hub.router)
    assert list(hub.router.attached) == []


class UnencodableAuth:
    """Answers with an ``extra`` no serializer can encode."""

    def __init__(self, challenge: bool) -> None:
        self.challenge = challenge

    def hello(self, info: HelloInfo) -> AuthOutcome:
        if self.challenge:
            return AuthChallenge("ticket", {"bad": object()})
        return Accept("joe", "user", authextra={"bad": object()})

    def authenticate(
        self, info: HelloInfo, challenge: AuthChallenge, signature: str, extra: dict[str, Any]
    ) -> AuthOutcome:
        raise AssertionError("not reached")


@pytest.mark.parametrize("challenge", [True, False])
def test_unencodable_challenge_or_welcome_is_refused(challenge: bool) -> None:
    hub = Hub(Router(["realm1"], authenticator=UnencodableAuth(challenge)))
    wire = hub.wire()
    wire.send(hello())
    (abort,) = wire.take()
    assert isinstance(abort, Abort)
    assert abort.reason == "wamp.error.authentication_failed"
    assert "cannot be encoded" in abort.details["message"]
    assert wire.slot.state is SessionState.CLOSED
    assert_clean(hub.router)


def test_deliveries_carry_the_message_type() -> None:
    hub = Hub()
    subscriber = hub.joined_wire()
    subscriber.send(Subscribe(subscriber.req(), {}, "com.topic"))
    subscriber.take()
    publisher = hub.joined_wire("msgpack")
    publisher.feed(Publish(publisher.req(), {"acknowledge": True}, "com.topic", [1]))
    deliveries = hub.router.data_to_send()
    assert [(d.session, d.type) for d in deliveries] == [
        (subscriber.slot, MessageType.EVENT),
        (publisher.slot, MessageType.PUBLISHED),
    ]
    with pytest.raises(RemoteProtocolError):
        publisher.feed(b"\xc1")
    *_, abort, close = hub.router.data_to_send()
    assert abort.type is MessageType.ABORT
    assert (close.data, close.type) == (None, None)


# -- clock and router-provided procedures --------------------------------------------------


def test_timers_run_in_order_when_due_and_can_be_cancelled() -> None:
    router = Router(["realm1"], now=100.0)
    assert router.now == 100.0
    assert router.next_deadline() is None
    ran: list[str] = []
    router.call_at(105.0, lambda: ran.append("b"))
    first = router.call_at(103.0, lambda: ran.append("a"))
    cancelled = router.call_at(101.0, lambda: ran.append("never"))
    router.call_at(105.0, lambda: ran.append("c"))
    cancelled.cancel()
    assert router.next_deadline() == 103.0  # the cancelled head is skipped
    router.tick(102.0)
    assert ran == []
    router.tick(105.0)
    assert ran == ["a", "b", "c"]  # due order, then scheduling order
    assert router.now == 105.0
    assert router.next_deadline() is None
    first.cancel()  # cancelling a timer that already ran is harmless
    router.call_at(150.0, lambda: ran.append("late")).cancel()
    router.tick(200.0)  # a cancelled timer that falls due is skipped
    assert ran == ["a", "b", "c"]


def test_router_provided_procedure() -> None:
    from wamp_core import Call, ProcedureError, Result

    hub = Hub()
    seen: list[tuple[int, list[Any] | None]] = []

    def count(session: Any, call: Call) -> tuple[list[Any] | None, dict[str, Any] | None]:
        seen.append((session.session_id, call.args))
        if call.args == ["fail"]:
            raise ProcedureError("wamp.error.invalid_argument", "bad", detail=1)
        if call.args == ["bare"]:
            raise ProcedureError("wamp.error.no_such_session")
        if call.args == ["nan"]:
            return [float("nan")], None
        return [len(hub.router.sessions)], {"realm": session.realm_name}

    hub.router.add_procedure("wamp.session.count", count)
    with pytest.raises(LocalProtocolError):
        hub.router.add_procedure("bad uri", count)
    wire = hub.joined_wire()
    wire.send(Call(wire.req(), {}, "wamp.session.count"))
    assert wire.take() == [Result(1, {}, [1], {"realm": "realm1"})]
    wire.send(Call(wire.req(), {}, "wamp.session.count", ["fail"]))
    assert wire.take() == [
        Error(MessageType.CALL, 2, {}, "wamp.error.invalid_argument", ["bad"], {"detail": 1})
    ]
    wire.send(Call(wire.req(), {}, "wamp.session.count", ["bare"]))
    assert wire.take() == [Error(MessageType.CALL, 3, {}, "wamp.error.no_such_session")]
    wire.send(Call(wire.req(), {}, "wamp.session.count", ["nan"]))
    (error,) = wire.take()
    assert isinstance(error, Error)
    assert error.error == "wamp.error.invalid_argument"
    assert seen[0] == (wire.slot.session_id, None)
    # a callee cannot take the name over
    wire.send(Register(wire.req(), {}, "wamp.session.count"))
    (refused,) = wire.take()
    assert isinstance(refused, Error)
    assert refused.error == "wamp.error.invalid_uri"


class Recorder(RouterObserver):
    """Records every observer call as (hook, session id, subscription/registration uri)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, int, str | None]] = []

    def _note(self, hook: str, session: Any, item: Any = None) -> None:
        self.calls.append((hook, session.session_id, None if item is None else item.uri))

    def session_joined(self, session: Any) -> None:
        self._note("joined", session)

    def session_left(self, session: Any) -> None:
        self._note("left", session)

    def subscription_created(self, session: Any, subscription: Any) -> None:
        self._note("sub_created", session, subscription)

    def subscribed(self, session: Any, subscription: Any) -> None:
        self._note("subscribed", session, subscription)

    def unsubscribed(self, session: Any, subscription: Any) -> None:
        self._note("unsubscribed", session, subscription)

    def subscription_deleted(self, session: Any, subscription: Any) -> None:
        self._note("sub_deleted", session, subscription)

    def registration_created(self, session: Any, registration: Any) -> None:
        self._note("reg_created", session, registration)

    def registered(self, session: Any, registration: Any) -> None:
        self._note("registered", session, registration)

    def unregistered(self, session: Any, registration: Any) -> None:
        self._note("unregistered", session, registration)

    def registration_deleted(self, session: Any, registration: Any) -> None:
        self._note("reg_deleted", session, registration)


def test_observers_follow_sessions_subscriptions_and_registrations() -> None:
    hub = Hub(Router(["realm1"], now=1000.0))
    recorder = Recorder()
    hub.router.observers.extend([RouterObserver(), recorder])  # the base class does nothing
    a = hub.joined_wire()
    b = hub.joined_wire()
    ida, idb = a.slot.session_id, b.slot.session_id
    a.send(Subscribe(a.req(), {}, "com.t"))
    b.send(Subscribe(b.req(), {}, "com.t"), Subscribe(b.req(), {}, "com.t"))  # 2nd: no-op
    a.send(Register(a.req(), {"invoke": "roundrobin"}, "com.p"))
    b.send(Register(b.req(), {"invoke": "roundrobin"}, "com.p"))
    subscription = next(iter(hub.router.realms["realm1"].broker.subscriptions.values()))
    registration = next(iter(hub.router.realms["realm1"].dealer.registrations.values()))
    assert (subscription.created, registration.created) == (1000.0, 1000.0)
    a.send(Unsubscribe(a.req(), subscription.id))
    hub.drop(b)
    assert recorder.calls == [
        ("joined", ida, None),
        ("joined", idb, None),
        ("sub_created", ida, "com.t"),
        ("subscribed", ida, "com.t"),
        ("subscribed", idb, "com.t"),
        ("reg_created", ida, "com.p"),
        ("registered", ida, "com.p"),
        ("registered", idb, "com.p"),
        ("unsubscribed", ida, "com.t"),
        ("unsubscribed", idb, "com.t"),
        ("sub_deleted", idb, "com.t"),
        ("unregistered", idb, "com.p"),
        ("left", idb, None),
    ]
    recorder.calls.clear()
    a.send(Unregister(a.req(), registration.id))
    assert recorder.calls == [("unregistered", ida, "com.p"), ("reg_deleted", ida, "com.p")]


def test_trustlevel_comes_from_accept() -> None:
    class Trusting(ScriptedAuth):
        def hello(self, info: HelloInfo) -> AuthOutcome:
            return Accept("joe", "user", trustlevel=3)

    hub = Hub(Router(["realm1"], authenticator=Trusting()))
    wire = hub.joined_wire()
    assert wire.slot.trustlevel == 3
    assert hub.joined_wire().slot.trustlevel == 3
    plain = Hub().joined_wire()
    assert plain.slot.trustlevel is None


def test_meta_api_is_on_by_default_and_can_be_turned_off() -> None:
    on = Router(["realm1"])
    assert on.meta is not None
    assert "wamp.session.count" in on.procedures
    assert on.roles["broker"]["features"]["session_meta_api"] is True
    assert on.roles["dealer"]["features"]["testament_meta_api"] is True
    off = Router(["realm1"], meta_api=False)
    assert off.meta is None
    assert set(off.procedures) == {"wamp.subscription.get_events"}  # not part of the meta API
    assert off.observers == []
    for role in ("broker", "dealer"):
        features = off.roles[role]["features"]
        assert not any(name.endswith("meta_api") for name in features)
        assert features["pattern_based_" + ("subscription" if role == "broker" else "registration")]
    custom: dict[str, dict[str, Any]] = {"broker": {}}
    assert Router(roles=custom, meta_api=False).roles is custom


def test_router_passes_pubsub_options_to_every_realm_broker() -> None:
    from wamp_core import HistoryRule, Publish, Result

    router = Router(
        ["realm1"],
        auto_create_realms=True,
        event_history=[("com.", "prefix", 2), HistoryRule("com.x")],
        retained_supplements=0,
        retained_topic_limit=5,
        now=1_700_000_000.0,
    )
    with pytest.raises(LocalProtocolError):
        Router(event_history=[("com.x", "regex", 1)])  # type: ignore[list-item]
    for realm in ("realm1", "realm2"):
        broker = router.add_realm(realm).broker
        assert set(broker.event_history) == {HistoryRule("com.", "prefix", 2), HistoryRule("com.x")}
        assert (broker.retained_supplements, broker.retained_topic_limit) == (0, 5)
    hub = Hub(router)
    wire = hub.joined_wire()
    wire.send(Subscribe(wire.req(), {"match": "prefix"}, "com."))
    (subscribed,) = wire.take()
    assert isinstance(subscribed, Subscribed)
    for n in range(3):
        wire.send(Publish(wire.req(), {}, "com.t", [n]))
    wire.send(Call(wire.req(), {}, "wamp.subscription.get_events", [subscribed.subscription]))
    (result,) = wire.take()
    assert isinstance(result, Result)
    assert result.args is not None
    assert [event["args"] for event in result.args[0]] == [[1], [2]]  # the rule keeps 2


def test_sessions_announcing_equal_roles_share_one_copy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("wamp_core._router._ROLES_SHARED", 2)
    hub = Hub(Router(["realm1"]))

    def join(roles: dict[str, Any], codec: str = "json") -> RouterSession:
        """A session whose HELLO arrives as bytes: its roles decoded afresh."""
        wire = hub.wire(codec)
        wire.feed(wire.serializer.encode(Hello("realm1", {"roles": roles})))
        wire.one(Welcome)
        return wire.slot

    first, second = join(CLIENT_ROLES), join(CLIENT_ROLES, "msgpack")
    assert first.roles == CLIENT_ROLES
    assert first.roles is second.roles  # decoded twice, kept once
    other = roles_with(call_canceling=True)
    third = join(other)
    assert third.roles == other
    assert third.has_feature("callee", "call_canceling")
    assert third.roles is not first.roles
    # Only 2 distinct announcements are remembered: a third one is kept per session.
    rare = roles_with(progressive_call_results=True)
    fourth, fifth = join(rare), join(rare)
    assert fourth.roles == fifth.roles == rare
    assert fourth.roles is not fifth.roles
    assert join(other, "cbor").roles is third.roles
    # Equal-comparing values of other types are not shared.
    ints = roles_with(call_canceling=1)  # type: ignore[arg-type]
    assert join(ints, "msgpack").roles is not third.roles


def test_send_all_queues_for_established_sessions_and_feeds_sinks() -> None:
    hub = Hub(Router(["realm1"]))
    json_wire, msgpack_wire, other_json = (
        hub.joined_wire(),
        hub.joined_wire("msgpack"),
        hub.joined_wire(),
    )
    fresh = hub.wire()  # attached, never joined
    sunk: list[Message] = []
    internal = hub.router.attach(get_serializer("json"))
    internal.state = SessionState.ESTABLISHED
    internal._sink = sunk.append
    event = Event(1, 2, {}, ["x"])
    hub.router.send_all(
        [json_wire.slot, fresh.slot, internal, msgpack_wire.slot, other_json.slot], event
    )
    out = hub.router.data_to_send()
    assert [d.session for d in out] == [json_wire.slot, msgpack_wire.slot, other_json.slot]
    assert all(type(d) is Delivery and d.type is MessageType.EVENT for d in out)
    assert out[0].data == out[2].data == get_serializer("json").encode(event)
    assert out[1].data == get_serializer("msgpack").encode(event)
    assert sunk == [event]


def test_send_all_goes_through_an_overridden_send() -> None:
    sent: list[RouterSession] = []

    class Counting(Router):
        def send(self, session: RouterSession, message: Message) -> bool:
            sent.append(session)
            return super().send(session, message)

    router = Counting(["realm1"])
    hub = Hub(router)
    first, second = hub.joined_wire(), hub.joined_wire()
    sent.clear()
    router.send_all([first.slot, second.slot], Event(1, 2, {}))
    assert sent == [first.slot, second.slot]
    assert [d.session for d in router.data_to_send()] == [first.slot, second.slot]
