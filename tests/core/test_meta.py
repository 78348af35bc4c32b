"""The meta API and testaments (wamp_core._meta).

AP/ap_session_meta_api.md, AP/ap_rpc_registration_meta_api.md,
AP/ap_pubsub_subscription_meta_api.md, AP/ap_pubsub_testament.md. Sessions are
hand-driven ``Wire``s (tests/core/test_router.py); ``ScriptedAuth`` gives them
the authid and authrole they ask for.
"""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from tests.core.test_router import Hub, ScriptedAuth, Wire, assert_clean
from wamp_core import (
    Call,
    CloseReason,
    Error,
    ErrorURI,
    Event,
    Goodbye,
    Hello,
    Message,
    MessageType,
    Publish,
    Register,
    Registered,
    Result,
    Router,
    RouterSession,
    SessionState,
    Subscribe,
    Subscribed,
    Unregister,
    Unsubscribe,
    Welcome,
)
from wamp_core._meta import (
    DEFAULT_KILL_REASON,
    META_FEATURES,
    MetaApi,
    iso8601,
    publish_from_router,
)
from wamp_core._meta import (
    Testament as Will,
)

NOW = 1700000000.5
CREATED = "2023-11-14T22:13:20.500Z"
INVALID_ARGUMENT = ErrorURI.INVALID_ARGUMENT
INVALID_URI = ErrorURI.INVALID_URI

SESSION_TOPICS = ("wamp.session.on_join", "wamp.session.on_leave")
REGISTRATION_TOPICS = (
    "wamp.registration.on_create",
    "wamp.registration.on_register",
    "wamp.registration.on_unregister",
    "wamp.registration.on_delete",
)
SUBSCRIPTION_TOPICS = (
    "wamp.subscription.on_create",
    "wamp.subscription.on_subscribe",
    "wamp.subscription.on_unsubscribe",
    "wamp.subscription.on_delete",
)


# -- harness -----------------------------------------------------------------------------


def bare_router(realms: tuple[str, ...] = ("realm1",), **options: Any) -> Router:
    """A router without any meta API, whether or not ``Router`` installs one itself."""
    router = Router(realms, **options)
    router.observers.clear()
    router.procedures.clear()
    return router


def meta_hub(realms: tuple[str, ...] = ("realm1",)) -> tuple[Hub, MetaApi]:
    """A router with the meta API installed, admitting sessions as ScriptedAuth does."""
    router = bare_router(realms, authenticator=ScriptedAuth(), now=NOW)
    return Hub(router), MetaApi(router).install()


def join(
    hub: Hub,
    authid: str | None = None,
    authrole: str | None = None,
    realm: str = "realm1",
    transport: dict[str, Any] | None = None,
) -> Wire:
    """A wire whose session joined ``realm`` with this identity."""
    wire = hub.wire("json", transport)
    details: dict[str, Any] = {
        "roles": {"caller": {}, "callee": {}, "publisher": {}, "subscriber": {}}
    }
    if authid is not None:
        details["authid"] = authid
    if authrole is not None:
        details["authextra"] = {"role": authrole}
    wire.send(Hello(realm, details))
    wire.session_id = wire.one(Welcome).session
    return wire


def call(wire: Wire, procedure: str, *args: Any, **kwargs: Any) -> Message:
    """Call ``procedure`` and return the single reply."""
    wire.send(Call(wire.req(), {}, procedure, list(args) or None, kwargs or None))
    (reply,) = wire.take()
    assert isinstance(reply, Result | Error), reply
    return reply


def result(wire: Wire, procedure: str, *args: Any, **kwargs: Any) -> Any:
    """Call ``procedure``, which must succeed; its single positional result (None if none)."""
    reply = call(wire, procedure, *args, **kwargs)
    assert isinstance(reply, Result), reply
    assert reply.kwargs is None
    if reply.args is None:
        return None
    (value,) = reply.args
    return value


def error(wire: Wire, procedure: str, *args: Any, **kwargs: Any) -> str:
    """Call ``procedure``, which must fail; its error URI (Args[0] is a text)."""
    reply = call(wire, procedure, *args, **kwargs)
    assert isinstance(reply, Error), reply
    assert reply.request_type == MessageType.CALL
    assert reply.args is not None
    assert isinstance(reply.args[0], str)
    return reply.error


class Watcher:
    """A wire subscribed to some topics; ``events()`` names each event's topic."""

    def __init__(self, wire: Wire, *topics: str, match: str = "exact") -> None:
        self.wire = wire
        self.topics: dict[int, str] = {}
        self.pending: list[Message | None] = []  # events that came with a SUBSCRIBED
        for topic in topics:
            self.subscribe(topic, match)

    def subscribe(self, topic: str, match: str = "exact") -> int:
        options = {} if match == "exact" else {"match": match}
        self.wire.send(Subscribe(self.wire.req(), options, topic))
        messages = self.wire.take()
        (subscribed,) = [m for m in messages if isinstance(m, Subscribed)]
        self.pending.extend(m for m in messages if m is not subscribed)
        self.topics[subscribed.subscription] = topic
        return subscribed.subscription

    def raw(self) -> list[Event]:
        """The events since the last call."""
        messages, self.pending = [*self.pending, *self.wire.take()], []
        events = [m for m in messages if isinstance(m, Event)]
        assert events == messages, messages
        return events

    def events(self) -> list[tuple[str, Any, Any]]:
        """(subscribed topic, args, kwargs) of each event since the last call."""
        return [(self.topics[e.subscription], e.args, e.kwargs) for e in self.raw()]

    def named(self, messages: list[Message | None]) -> list[tuple[str, Any]]:
        """(subscribed topic, args) of the events among ``messages``."""
        return [(self.topics[m.subscription], m.args) for m in messages if isinstance(m, Event)]


def subscribe(wire: Wire, topic: str, options: dict[str, Any] | None = None) -> int:
    wire.send(Subscribe(wire.req(), options or {}, topic))
    return wire.one(Subscribed).subscription


def register(wire: Wire, procedure: str, options: dict[str, Any] | None = None) -> int:
    wire.send(Register(wire.req(), options or {}, procedure))
    return wire.one(Registered).registration


def leave(wire: Wire) -> None:
    """GOODBYE from the client; the router's echo is consumed."""
    wire.send(Goodbye({}, CloseReason.NORMAL))
    assert wire.take() == [Goodbye({}, CloseReason.GOODBYE_AND_OUT)]


def killed(wire: Wire, reason: str = DEFAULT_KILL_REASON, message: str | None = None) -> None:
    """``wire`` got the router's GOODBYE (and nothing else); answer it."""
    details = {} if message is None else {"message": message}
    assert wire.take() == [Goodbye(details, reason)]
    assert wire.slot.state is SessionState.SHUTTING_DOWN
    wire.send(Goodbye({}, CloseReason.GOODBYE_AND_OUT))
    assert wire.slot.state is SessionState.CLOSED


# -- installation -----------------------------------------------------------------------------


def test_install_observes_and_provides_every_procedure() -> None:
    router = bare_router()
    meta = MetaApi(router)
    assert meta.install() is meta
    meta.install()  # idempotent
    assert router.observers == [meta]
    assert sorted(router.procedures) == sorted(meta.procedures())
    assert len(router.procedures) == 21
    assert META_FEATURES == {
        "broker": {"session_meta_api": True, "subscription_meta_api": True},
        "dealer": {
            "session_meta_api": True,
            "registration_meta_api": True,
            "testament_meta_api": True,
        },
    }
    assert DEFAULT_KILL_REASON == "wamp.close.normal"


def test_iso8601() -> None:
    assert iso8601(0) == "1970-01-01T00:00:00.000Z"
    assert iso8601(NOW) == CREATED


def test_authorization_hook() -> None:
    class Strict(MetaApi):
        def allows(self, session: RouterSession, procedure: str) -> bool:
            return procedure != "wamp.session.list"

    router = bare_router()
    Strict(router).install()
    wire = Hub(router).joined_wire()
    assert error(wire, "wamp.session.list") == ErrorURI.NOT_AUTHORIZED
    assert result(wire, "wamp.session.count") == 1


# -- session meta events ---------------------------------------------------------------------


def test_on_join_and_on_leave_payloads() -> None:
    hub, _ = meta_hub()
    watcher = Watcher(join(hub), *SESSION_TOPICS)
    transport = {
        "type": "websocket",
        "peer": "tcp4:127.0.0.1:50000",
        "tls": False,
        "protocol": "wamp.2.json",
        "path": "/ws?token=secret",
        "http_headers": {"cookie": "cbtid=secret"},
        "transport_id": "secret",
    }
    alice = join(hub, "alice", "user", transport=transport)
    bob = join(hub)  # no transport facts: no "transport" key
    assert watcher.events() == [
        (
            "wamp.session.on_join",
            [
                {
                    "session": alice.session_id,
                    "authid": "alice",
                    "authrole": "user",
                    "authmethod": "anonymous",
                    "authprovider": "static",
                    "transport": {
                        "type": "websocket",
                        "peer": "tcp4:127.0.0.1:50000",
                        "tls": False,
                        "protocol": "wamp.2.json",
                    },
                }
            ],
            None,
        ),
        (
            "wamp.session.on_join",
            [
                {
                    "session": bob.session_id,
                    "authid": "nobody",
                    "authrole": "anonymous",
                    "authmethod": "anonymous",
                    "authprovider": "static",
                }
            ],
            None,
        ),
    ]
    leave(alice)
    hub.drop(bob)  # the transport is lost
    carol = join(hub)
    carol.violation(Publish(5, {}, "com.x"))  # request ID not sequential
    assert watcher.events() == [
        ("wamp.session.on_leave", [alice.session_id, "alice", "user"], None),
        ("wamp.session.on_leave", [bob.session_id, "nobody", "anonymous"], None),
        ("wamp.session.on_join", [anonymous_details(carol)], None),
        ("wamp.session.on_leave", [carol.session_id, "nobody", "anonymous"], None),
    ]


def anonymous_details(wire: Wire) -> dict[str, Any]:
    """What on_join and get say about a session ScriptedAuth admitted without identity."""
    return {
        "session": wire.session_id,
        "authid": "nobody",
        "authrole": "anonymous",
        "authmethod": "anonymous",
        "authprovider": "static",
    }


def test_pattern_subscribers_get_the_topic_in_details() -> None:
    hub, _ = meta_hub()
    watcher = Watcher(join(hub), "wamp.session.", match="prefix")
    wildcard = subscribe(watcher.wire, "wamp..on_join", {"match": "wildcard"})
    alice = join(hub)
    events = watcher.raw()
    assert [(e.details, e.args) for e in events] == [
        ({"topic": "wamp.session.on_join"}, [anonymous_details(alice)]),
        ({"topic": "wamp.session.on_join"}, [anonymous_details(alice)]),
    ]
    assert events[1].subscription == wildcard
    assert events[0].publication == events[1].publication


def test_meta_events_stay_in_their_realm() -> None:
    hub, _ = meta_hub(("realm1", "realm2"))
    one = Watcher(join(hub), *SESSION_TOPICS, *SUBSCRIPTION_TOPICS, *REGISTRATION_TOPICS)
    two = Watcher(join(hub, realm="realm2"), *SESSION_TOPICS)
    one.events()
    other = join(hub, realm="realm2")
    subscribe(other, "com.t")
    register(other, "com.p")
    leave(other)
    assert one.events() == []
    assert [topic for topic, _, _ in two.events()] == list(SESSION_TOPICS)


# -- session procedures ----------------------------------------------------------------------------


def test_count_list_and_get() -> None:
    hub, _ = meta_hub(("realm1", "realm2"))
    me = join(hub, "me", "admin")
    users = [join(hub, f"u{i}", "user") for i in range(2)]
    guest = join(hub)
    stranger = join(hub, realm="realm2")
    all_ids = [me.session_id, *(u.session_id for u in users), guest.session_id]
    assert result(me, "wamp.session.count") == 4
    assert result(me, "wamp.session.list") == all_ids
    assert result(me, "wamp.session.count", None) == 4  # null filter: no filter
    assert result(me, "wamp.session.count", ["user"]) == 2
    assert result(me, "wamp.session.list", ["user", "admin"]) == all_ids[:3]
    assert result(me, "wamp.session.count", ["nobody"]) == 0
    assert result(me, "wamp.session.list", []) == []
    assert result(stranger, "wamp.session.list") == [stranger.session_id]
    assert result(me, "wamp.session.get", users[0].session_id) == {
        "session": users[0].session_id,
        "authid": "u0",
        "authrole": "user",
        "authmethod": "anonymous",
        "authprovider": "static",
    }
    assert result(me, "wamp.session.get", me.session_id)["authid"] == "me"
    assert error(me, "wamp.session.get", stranger.session_id) == ErrorURI.NO_SUCH_SESSION
    assert error(me, "wamp.session.get", 12345) == ErrorURI.NO_SUCH_SESSION


@pytest.mark.parametrize(
    ("procedure", "args", "kwargs"),
    [
        ("wamp.session.count", ["user"], {}),
        ("wamp.session.count", [["user", 1]], {}),
        ("wamp.session.count", [[], []], {}),
        ("wamp.session.list", [{"user": 1}], {}),
        ("wamp.session.list", [], {"filter_authroles": ["user"]}),
        ("wamp.session.get", [], {}),
        ("wamp.session.get", ["1"], {}),
        ("wamp.session.get", [True], {}),
        ("wamp.session.get", [[1]], {}),
        ("wamp.session.get", [1, 2], {}),
        ("wamp.session.kill", [], {}),
        ("wamp.session.kill", [1.5], {}),
        ("wamp.session.kill", [1], {"message": 7}),
        ("wamp.session.kill", [1], {"because": "x"}),
        ("wamp.session.kill_by_authid", [], {}),
        ("wamp.session.kill_by_authid", [1], {}),
        ("wamp.session.kill_by_authid", [["a"]], {}),
        ("wamp.session.kill_by_authid", ["a"], {"message": ["x"]}),
        ("wamp.session.kill_by_authrole", [None], {}),
        ("wamp.session.kill_by_authrole", ["a", "b"], {}),
        ("wamp.session.kill_all", ["user"], {}),
        ("wamp.session.kill_all", [], {"message": {}}),
        ("wamp.session.kill_all", [], {"authrole": "user"}),
    ],
)
def test_session_procedures_refuse_bad_arguments(
    procedure: str, args: list[Any], kwargs: dict[str, Any]
) -> None:
    hub, _ = meta_hub()
    me = join(hub)
    victim = join(hub)
    assert error(me, procedure, *args, **kwargs) == INVALID_ARGUMENT
    assert victim.take() == []  # nobody was killed
    assert result(me, "wamp.session.count") == 2


@pytest.mark.parametrize("reason", ["", "not a uri", "a..b", 42, ["wamp.close.normal"]])
@pytest.mark.parametrize(
    ("procedure", "args"),
    [
        ("wamp.session.kill", ["victim"]),
        ("wamp.session.kill_by_authid", ["bob"]),
        ("wamp.session.kill_by_authrole", ["user"]),
        ("wamp.session.kill_all", []),
    ],
)
def test_kill_refuses_an_invalid_reason(procedure: str, args: list[Any], reason: Any) -> None:
    # AP/ap_session_meta_api.md: "not a valid non-empty URI" -> invalid_uri
    hub, _ = meta_hub()
    me = join(hub)
    victim = join(hub, "bob", "user")
    args = [victim.session_id if a == "victim" else a for a in args]
    assert error(me, procedure, *args, reason=reason) == INVALID_URI
    assert victim.take() == []


def test_kill_one_session() -> None:
    hub, _ = meta_hub(("realm1", "realm2"))
    me = join(hub, "me", "admin")
    watcher = Watcher(join(hub), *SESSION_TOPICS)
    bob = join(hub, "bob", "user")
    carol = join(hub, "carol", "user")
    stranger = join(hub, realm="realm2")
    watcher.events()
    assert result(me, "wamp.session.kill", bob.session_id) is None
    killed(bob)  # GOODBYE wamp.close.normal, no message
    assert (
        result(me, "wamp.session.kill", carol.session_id, reason="com.x.fired", message="bye")
        is None
    )
    killed(carol, "com.x.fired", "bye")
    assert watcher.events() == [
        ("wamp.session.on_leave", [bob.session_id, "bob", "user"], None),
        ("wamp.session.on_leave", [carol.session_id, "carol", "user"], None),
    ]
    # never the caller, never another realm's session, never one that left
    for session_id in (me.session_id, stranger.session_id, bob.session_id):
        assert error(me, "wamp.session.kill", session_id) == ErrorURI.NO_SUCH_SESSION
    assert stranger.take() == []
    assert me.slot.state is SessionState.ESTABLISHED
    assert result(me, "wamp.session.count") == 2


def test_kill_by_authid_spares_the_caller_and_other_realms() -> None:
    hub, _ = meta_hub(("realm1", "realm2"))
    me = join(hub, "joe", "admin")
    joes = [join(hub, "joe", "user") for _ in range(2)]
    other = join(hub, "ann", "user")
    stranger = join(hub, "joe", "user", realm="realm2")
    ids = result(me, "wamp.session.kill_by_authid", "joe", message="out")
    assert ids == [j.session_id for j in joes]
    for joe in joes:
        killed(joe, DEFAULT_KILL_REASON, "out")
    assert other.take() == stranger.take() == []
    assert result(me, "wamp.session.kill_by_authid", "joe") == []
    assert result(me, "wamp.session.list") == [me.session_id, other.session_id]


def test_kill_by_authrole_counts_and_spares_the_caller() -> None:
    hub, _ = meta_hub(("realm1", "realm2"))
    me = join(hub, "me", "user")
    users = [join(hub, f"u{i}", "user") for i in range(3)]
    admin = join(hub, "boss", "admin")
    stranger = join(hub, "x", "user", realm="realm2")
    assert result(me, "wamp.session.kill_by_authrole", "user", reason="wamp.close.killed") == 3
    for user in users:
        killed(user, "wamp.close.killed")
    assert admin.take() == stranger.take() == []
    assert result(me, "wamp.session.kill_by_authrole", "user") == 0
    assert result(me, "wamp.session.list") == [me.session_id, admin.session_id]


def test_victims_of_one_call_get_no_events_about_each_other() -> None:
    hub, _ = meta_hub()
    me = Watcher(join(hub, "me", "admin"), *SESSION_TOPICS, "com.will")
    victims = [Watcher(join(hub, f"v{i}", "user"), *SESSION_TOPICS, "com.will") for i in range(2)]
    for victim in victims:
        victim.raw()
    for victim in victims:
        will = [victim.wire.session_id]
        assert result(victim.wire, "wamp.session.add_testament", "com.will", will) is None
    me.raw()
    request = me.wire.req()
    me.wire.send(Call(request, {}, "wamp.session.kill_by_authrole", ["user"]))
    *events, reply = me.wire.take()
    assert reply == Result(request, {}, [2])
    assert me.named(events) == [
        ("com.will", [victims[0].wire.session_id]),
        ("wamp.session.on_leave", [victims[0].wire.session_id, "v0", "user"]),
        ("com.will", [victims[1].wire.session_id]),
        ("wamp.session.on_leave", [victims[1].wire.session_id, "v1", "user"]),
    ]
    for victim in victims:
        killed(victim.wire)


def test_kill_all() -> None:
    hub, meta = meta_hub(("realm1", "realm2"))
    me = Watcher(join(hub, "me", "admin"), *SESSION_TOPICS, SUBSCRIPTION_TOPICS[2], "com.will")
    will = list(me.topics)[-1]
    others = [join(hub, f"u{i}", "user") for i in range(3)]
    stranger = join(hub, realm="realm2")
    for other in others:
        assert subscribe(other, "com.will") == will
        assert result(other, "wamp.session.add_testament", "com.will", ["bye"]) is None
    me.raw()
    request = me.wire.req()
    me.wire.send(
        Call(request, {}, "wamp.session.kill_all", None, {"reason": "wamp.close.close_realm"})
    )
    *events, reply = me.wire.take()
    assert reply == Result(request, {}, [3])
    # AP/ap_session_meta_api.md: no session meta events, no testaments; the
    # caller still learns that the subscription tables changed.
    assert me.named(events) == [
        ("wamp.subscription.on_unsubscribe", [other.session_id, will]) for other in others
    ]
    for other in others:
        killed(other, "wamp.close.close_realm")
    assert stranger.take() == []
    assert result(me.wire, "wamp.session.list") == [me.wire.session_id]
    assert result(me.wire, "wamp.session.kill_all") == 0
    assert meta.testaments == {}


def test_router_shutdown_publishes_nothing() -> None:
    hub, meta = meta_hub()
    topics = (*SESSION_TOPICS, *SUBSCRIPTION_TOPICS, "com.will")
    watchers = [Watcher(join(hub), *topics) for _ in range(3)]
    for watcher in watchers:
        watcher.raw()
    for watcher in watchers:
        assert result(watcher.wire, "wamp.session.add_testament", "com.will") is None
    hub.router.shutdown()
    for watcher in watchers:
        assert watcher.wire.take() == [Goodbye({}, CloseReason.SYSTEM_SHUTDOWN)]
    assert meta.testaments == {}


# -- testaments ------------------------------------------------------------------------------


def test_testaments_are_published_in_order_detached_first() -> None:
    hub, meta = meta_hub()
    watcher = Watcher(join(hub), "com.will", "wamp.session.on_leave")
    wildcard = subscribe(watcher.wire, "com..will", {"match": "wildcard"})
    dying = join(hub, "dying", "user")
    assert result(dying, "wamp.session.add_testament", "com.will", ["d1"], {"k": 1}) is None
    assert result(dying, "wamp.session.add_testament", "com.will", ["x1"], scope="detached") is None
    assert result(dying, "wamp.session.add_testament", "com.will", ["d2"], scope=None) is None
    assert (
        result(dying, "wamp.session.add_testament", "com.will", [], None, scope="detached") is None
    )
    assert result(dying, "wamp.session.add_testament", "com.a.will") is None
    assert meta.testaments[dying.slot] == {
        "destroyed": [
            Will("com.will", ["d1"], {"k": 1}, {}),
            Will("com.will", ["d2"], None, {}),
            Will("com.a.will", None, None, {}),
        ],
        "detached": [
            Will("com.will", ["x1"], None, {}),
            Will("com.will", [], None, {}),
        ],
    }
    assert watcher.raw() == []  # nothing yet
    leave(dying)
    events = watcher.raw()
    # the router publishes: no publisher identity
    assert [(e.subscription, e.details, e.args, e.kwargs) for e in events] == [
        (next(iter(watcher.topics)), {}, ["x1"], None),
        (next(iter(watcher.topics)), {}, [], None),
        (next(iter(watcher.topics)), {}, ["d1"], {"k": 1}),
        (next(iter(watcher.topics)), {}, ["d2"], None),
        (wildcard, {"topic": "com.a.will"}, None, None),
        (list(watcher.topics)[1], {}, [dying.session_id, "dying", "user"], None),
    ]
    assert meta.testaments == {}
    leave(watcher.wire)
    assert_clean(hub.router)


def test_testament_publish_options() -> None:
    hub, _ = meta_hub()
    admins = [Watcher(join(hub, f"a{i}", "admin"), "com.will") for i in range(2)]
    user = Watcher(join(hub, "u", "user"), "com.will")
    dying = join(hub, "dying", "user")
    options = {"eligible_authrole": ["admin"], "exclude": [admins[1].wire.session_id]}
    result(dying, "wamp.session.add_testament", "com.will", ["1"], publish_options=options)
    result(
        dying,
        "wamp.session.add_testament",
        "com.will",
        ["2"],
        publish_options={"disclose_me": True, "acknowledge": True, "exclude_me": False},
    )
    hub.drop(dying)  # a lost transport fires testaments too
    events = admins[0].raw()
    assert [(e.details, e.args) for e in events] == [
        ({}, ["1"]),
        (
            {
                "publisher": dying.session_id,
                "publisher_authid": "dying",
                "publisher_authrole": "user",
            },
            ["2"],
        ),
    ]
    assert admins[1].events() == [("com.will", ["2"], None)]
    assert user.events() == [("com.will", ["2"], None)]


def test_flush_testaments() -> None:
    hub, meta = meta_hub()
    watcher = Watcher(join(hub), "com.will")
    dying = join(hub)
    assert result(dying, "wamp.session.flush_testaments") is None  # none stored
    result(dying, "wamp.session.add_testament", "com.will", ["destroyed"])
    result(dying, "wamp.session.add_testament", "com.will", ["detached"], scope="detached")
    assert result(dying, "wamp.session.flush_testaments") is None  # destroyed by default
    assert list(meta.testaments[dying.slot]) == ["detached"]
    assert result(dying, "wamp.session.flush_testaments", scope="destroyed") is None
    leave(dying)
    assert watcher.events() == [("com.will", ["detached"], None)]
    # flushing both scopes leaves nothing behind
    again = join(hub)
    result(again, "wamp.session.add_testament", "com.will", ["a"])
    result(again, "wamp.session.add_testament", "com.will", ["b"], scope="detached")
    assert result(again, "wamp.session.flush_testaments", scope="detached") is None
    assert result(again, "wamp.session.flush_testaments", scope=None) is None
    assert meta.testaments == {}
    leave(again)
    assert watcher.events() == []


def test_testaments_of_a_killed_session_are_published() -> None:
    hub, meta = meta_hub()
    me = join(hub)
    watcher = Watcher(join(hub), "com.will")
    victim = join(hub)
    result(victim, "wamp.session.add_testament", "com.will", ["bye"])
    assert result(me, "wamp.session.kill", victim.session_id) is None
    killed(victim)
    assert watcher.events() == [("com.will", ["bye"], None)]
    assert meta.testaments == {}


def test_testaments_go_to_the_sessions_realm_only() -> None:
    hub, _ = meta_hub(("realm1", "realm2"))
    one = Watcher(join(hub), "com.will")
    two = Watcher(join(hub, realm="realm2"), "com.will")
    dying = join(hub, realm="realm2")
    result(dying, "wamp.session.add_testament", "com.will", ["bye"])
    leave(dying)
    assert one.events() == []
    assert two.events() == [("com.will", ["bye"], None)]


@pytest.mark.parametrize(
    ("args", "kwargs", "uri"),
    [
        ([], {}, INVALID_ARGUMENT),
        ([1], {}, INVALID_ARGUMENT),
        (["com.t", {}], {}, INVALID_ARGUMENT),
        (["com.t", [], []], {}, INVALID_ARGUMENT),
        (["com.t", [], {}, 4], {}, INVALID_ARGUMENT),
        (["com.t"], {"publish_options": []}, INVALID_ARGUMENT),
        (["com.t"], {"scope": "forever"}, INVALID_ARGUMENT),
        (["com.t"], {"scope": ["detached"]}, INVALID_ARGUMENT),
        (["com.t"], {"options": {}}, INVALID_ARGUMENT),
        (["com..t"], {}, INVALID_URI),
        (["wamp.session.on_leave"], {}, INVALID_URI),
    ],
)
def test_add_testament_refuses_bad_arguments(
    args: list[Any], kwargs: dict[str, Any], uri: str
) -> None:
    hub, meta = meta_hub()
    wire = join(hub)
    assert error(wire, "wamp.session.add_testament", *args, **kwargs) == uri
    assert meta.testaments == {}


@pytest.mark.parametrize(
    ("args", "kwargs"),
    [([], {"scope": "both"}), (["destroyed"], {}), ([], {"topic": "x"})],
)
def test_flush_testaments_refuses_bad_arguments(args: list[Any], kwargs: dict[str, Any]) -> None:
    hub, meta = meta_hub()
    wire = join(hub)
    result(wire, "wamp.session.add_testament", "com.t")
    assert error(wire, "wamp.session.flush_testaments", *args, **kwargs) == INVALID_ARGUMENT
    assert len(meta.testaments[wire.slot]["destroyed"]) == 1


# -- registration meta API ----------------------------------------------------------------------


def test_registration_meta_events_in_order() -> None:
    hub, _ = meta_hub()
    watcher = Watcher(join(hub), *REGISTRATION_TOPICS)
    a = join(hub)
    b = join(hub)
    rid = register(a, "com.p", {"invoke": "roundrobin"})
    assert register(b, "com.p", {"invoke": "roundrobin"}) == rid
    a.send(Unregister(a.req(), rid))
    a.take()
    leave(b)  # the last callee goes: unregister, then delete
    details = {
        "id": rid,
        "created": CREATED,
        "uri": "com.p",
        "match": "exact",
        "invoke": "roundrobin",
    }
    assert watcher.events() == [
        ("wamp.registration.on_create", [a.session_id, details], None),
        ("wamp.registration.on_register", [a.session_id, rid], None),
        ("wamp.registration.on_register", [b.session_id, rid], None),
        ("wamp.registration.on_unregister", [a.session_id, rid], None),
        ("wamp.registration.on_unregister", [b.session_id, rid], None),
        ("wamp.registration.on_delete", [b.session_id, rid], None),
    ]


def test_registration_procedures() -> None:
    hub, _ = meta_hub(("realm1", "realm2"))
    me = join(hub)
    a = join(hub)
    b = join(hub)
    stranger = join(hub, realm="realm2")
    exact = register(a, "com.x.p")
    prefix = register(a, "com.x", {"match": "prefix"})
    wildcard = register(b, "com..p", {"match": "wildcard", "invoke": "first"})
    assert register(a, "com..p", {"match": "wildcard", "invoke": "first"}) == wildcard
    assert result(me, "wamp.registration.list") == {
        "exact": [exact],
        "prefix": [prefix],
        "wildcard": [wildcard],
    }
    assert result(stranger, "wamp.registration.list") == {"exact": [], "prefix": [], "wildcard": []}
    # lookup: by (uri, match policy), as REGISTER would find it
    assert result(me, "wamp.registration.lookup", "com.x.p") == exact
    assert result(me, "wamp.registration.lookup", "com.x.p", None) == exact
    assert result(me, "wamp.registration.lookup", "com.x.p", {"match": "prefix"}) is None
    assert result(me, "wamp.registration.lookup", "com.x", {"match": "prefix"}) == prefix
    assert result(me, "wamp.registration.lookup", "com..p", {"match": "wildcard"}) == wildcard
    assert result(me, "wamp.registration.lookup", "bad uri") is None
    assert result(stranger, "wamp.registration.lookup", "com.x.p") is None
    # match: where a CALL would go
    assert result(me, "wamp.registration.match", "com.x.p") == exact
    assert result(me, "wamp.registration.match", "com.x.q") == prefix
    assert result(me, "wamp.registration.match", "com.y.p") == wildcard
    assert result(me, "wamp.registration.match", "org.p") is None
    assert result(me, "wamp.registration.match", "com.x.") is None  # not a valid URI
    assert result(me, "wamp.registration.match", "wamp.session.count") is None
    assert result(stranger, "wamp.registration.match", "com.x.p") is None
    # get, list_callees, count_callees
    assert result(me, "wamp.registration.get", wildcard) == {
        "id": wildcard,
        "created": CREATED,
        "uri": "com..p",
        "match": "wildcard",
        "invoke": "first",
    }
    assert result(me, "wamp.registration.list_callees", wildcard) == [b.session_id, a.session_id]
    assert result(me, "wamp.registration.count_callees", wildcard) == 2
    assert result(me, "wamp.registration.count_callees", exact) == 1
    for procedure in ("get", "list_callees", "count_callees"):
        uri = f"wamp.registration.{procedure}"
        assert error(stranger, uri, exact) == ErrorURI.NO_SUCH_REGISTRATION
        assert error(me, uri, 1) == ErrorURI.NO_SUCH_REGISTRATION


@pytest.mark.parametrize(
    ("procedure", "args", "kwargs"),
    [
        ("list", [1], {}),
        ("list", [], {"session": 1}),
        ("lookup", [], {}),
        ("lookup", [1], {}),
        ("lookup", ["com.p", "exact"], {}),
        ("lookup", ["com.p", {"match": "regex"}], {}),
        ("lookup", ["com.p", {"match": ["exact"]}], {}),
        ("lookup", ["com.p", {}, {}], {}),
        ("match", [], {}),
        ("match", [None], {}),
        ("get", ["1"], {}),
        ("get", [False], {}),
        ("list_callees", [], {}),
        ("count_callees", [1.0], {}),
    ],
)
@pytest.mark.parametrize("api", ["registration", "subscription"])
def test_registration_and_subscription_procedures_refuse_bad_arguments(
    api: str, procedure: str, args: list[Any], kwargs: dict[str, Any]
) -> None:
    if api == "subscription":
        procedure = {"list_callees": "list_subscribers", "count_callees": "count_subscribers"}.get(
            procedure, procedure
        )
    hub, _ = meta_hub()
    wire = join(hub)
    assert error(wire, f"wamp.{api}.{procedure}", *args, **kwargs) == INVALID_ARGUMENT


# -- subscription meta API ----------------------------------------------------------------------


def test_subscription_meta_events_in_order() -> None:
    hub, _ = meta_hub()
    watcher = Watcher(join(hub), *SUBSCRIPTION_TOPICS)
    # the watcher's own subscriptions: each created after the previous one
    # its own subscriptions, each seen by the ones made before it
    me = watcher.wire.session_id
    expected: list[tuple[str, Any, Any]] = []
    for subscription_id, topic in list(watcher.topics.items())[1:]:
        details = {"id": subscription_id, "created": CREATED, "uri": topic, "match": "exact"}
        expected.append(("wamp.subscription.on_create", [me, details], None))
        expected.append(("wamp.subscription.on_subscribe", [me, subscription_id], None))
    assert watcher.events() == expected
    a = join(hub)
    b = join(hub)
    sid = subscribe(a, "com.t", {"match": "prefix"})
    assert subscribe(b, "com.t", {"match": "prefix"}) == sid
    a.send(Unsubscribe(a.req(), sid))
    a.take()
    hub.drop(b)
    details = {"id": sid, "created": CREATED, "uri": "com.t", "match": "prefix"}
    assert watcher.events() == [
        ("wamp.subscription.on_create", [a.session_id, details], None),
        ("wamp.subscription.on_subscribe", [a.session_id, sid], None),
        ("wamp.subscription.on_subscribe", [b.session_id, sid], None),
        ("wamp.subscription.on_unsubscribe", [a.session_id, sid], None),
        ("wamp.subscription.on_unsubscribe", [b.session_id, sid], None),
        ("wamp.subscription.on_delete", [b.session_id, sid], None),
    ]


def test_subscription_procedures() -> None:
    hub, _ = meta_hub(("realm1", "realm2"))
    me = join(hub)
    a = join(hub)
    b = join(hub)
    stranger = join(hub, realm="realm2")
    exact = subscribe(a, "com.x.t")
    prefix = subscribe(b, "com.x", {"match": "prefix"})
    assert subscribe(a, "com.x", {"match": "prefix"}) == prefix
    wildcard = subscribe(a, "com..t", {"match": "wildcard"})
    assert result(me, "wamp.subscription.list") == {
        "exact": [exact],
        "prefix": [prefix],
        "wildcard": [wildcard],
    }
    assert result(stranger, "wamp.subscription.list") == {"exact": [], "prefix": [], "wildcard": []}
    assert result(me, "wamp.subscription.lookup", "com.x.t") == exact
    assert result(me, "wamp.subscription.lookup", "com.x", {"match": "prefix"}) == prefix
    assert result(me, "wamp.subscription.lookup", "com.x") is None
    assert result(me, "wamp.subscription.lookup", "com..t", {"match": "wildcard"}) == wildcard
    # match: every subscription an event reaches, or null
    assert result(me, "wamp.subscription.match", "com.x.t") == [exact, prefix, wildcard]
    assert result(me, "wamp.subscription.match", "com.y.t") == [wildcard]
    assert result(me, "wamp.subscription.match", "org.t") is None
    assert result(me, "wamp.subscription.match", "com..t") is None  # not a valid topic
    assert result(stranger, "wamp.subscription.match", "com.x.t") is None
    assert result(me, "wamp.subscription.get", prefix) == {
        "id": prefix,
        "created": CREATED,
        "uri": "com.x",
        "match": "prefix",
    }
    assert result(me, "wamp.subscription.list_subscribers", prefix) == [b.session_id, a.session_id]
    assert result(me, "wamp.subscription.count_subscribers", prefix) == 2
    assert result(me, "wamp.subscription.count_subscribers", exact) == 1
    for procedure in ("get", "list_subscribers", "count_subscribers"):
        uri = f"wamp.subscription.{procedure}"
        assert error(stranger, uri, exact) == ErrorURI.NO_SUCH_SUBSCRIPTION
        assert error(me, uri, 1) == ErrorURI.NO_SUCH_SUBSCRIPTION


def test_meta_topics_match_meta_subscriptions() -> None:
    hub, _ = meta_hub()
    me = join(hub)
    sid = subscribe(me, "wamp.session.on_join")
    assert result(me, "wamp.subscription.match", "wamp.session.on_join") == [sid]


# -- publishing from the router -------------------------------------------------------------------


def test_publish_from_router() -> None:
    drawn = itertools.count(1)
    router = Router(["realm1"], authenticator=ScriptedAuth(), id_source=lambda: next(drawn))
    hub = Hub(router)
    realm = router.realms["realm1"]
    a = join(hub, "a", "user")
    b = join(hub, "b", "admin")
    c = join(hub, "c", "user")
    for wire in (a, b, c):
        subscribe(wire, "com.t")
    before = next(drawn)
    publish_from_router(router, realm, "com.nobody", ["x"])
    assert next(drawn) == before + 1  # no subscriber: no publication ID drawn
    publish_from_router(router, realm, "com.t", ["all"], {"k": 1})
    publish_from_router(
        router, realm, "com.t", ["filtered"], options={"exclude_authrole": ["admin"]}, skip={c.slot}
    )
    publish_from_router(
        router, realm, "com.t", ["eligible"], options={"eligible": [b.session_id, True]}
    )
    publish_from_router(router, realm, "com.t", ["anonymous"], options={"disclose_me": True})
    assert next(drawn) == before + 6
    events = [e for e in a.take() if isinstance(e, Event)]
    assert [(e.args, e.kwargs, e.details) for e in events] == [
        (["all"], {"k": 1}, {}),
        (["filtered"], None, {}),
        (["anonymous"], None, {}),
    ]
    assert [e.args for e in b.take() if isinstance(e, Event)] == [
        ["all"],
        ["eligible"],
        ["anonymous"],
    ]
    assert [e.args for e in c.take() if isinstance(e, Event)] == [["all"], ["anonymous"]]
