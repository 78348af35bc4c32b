"""Authorization (wamp_core._authz and its hooks in the dealer and the broker).

Roles come from ``ScriptedAuth`` (tests/core/test_router.py): a HELLO with
``authextra.role`` joins under that role. ``secure()`` builds a router with an
authorizer.
"""

from __future__ import annotations

import itertools
import random
from typing import Any

import pytest

from tests.core.test_router import Hub, ScriptedAuth, Wire
from wamp_core import (
    Call,
    Error,
    ErrorURI,
    Event,
    HistoryRule,
    Invocation,
    LocalProtocolError,
    Message,
    MessageType,
    Publish,
    Published,
    Register,
    Registered,
    Result,
    Router,
    RouterSession,
    Subscribe,
    Subscribed,
    Yield,
    get_serializer,
    is_valid_uri,
    wildcard_matches,
)
from wamp_core._authz import (
    ACTIONS,
    NO_PERMISSION,
    Action,
    Authorizer,
    Decision,
    DynamicAuthorizer,
    Permission,
    Role,
    RoleBasedAuthorizer,
)
from wamp_core._broker import Subscription
from wamp_core._uri import MATCH_POLICIES, MatchPolicy

NOT_AUTHORIZED = ErrorURI.NOT_AUTHORIZED
FAILED = ErrorURI.AUTHORIZATION_FAILED
DISCLOSE = ErrorURI.OPTION_DISALLOWED_DISCLOSE_ME
EVERYTHING = Permission("", "prefix", call=True, register=True, publish=True, subscribe=True)
SERVICE = Role("service", [EVERYTHING])


# -- harness -----------------------------------------------------------------------------


def secure(authorizer: Authorizer, **options: Any) -> Hub:
    """A router in realm1 and realm2 with ``authorizer`` and ScriptedAuth's roles."""
    realms = ["realm1", "realm2"]
    router = Router(realms, authenticator=ScriptedAuth(), authorizer=authorizer, **options)
    return Hub(router)


def roles(*permissions: Permission, default: Permission = NO_PERMISSION) -> RoleBasedAuthorizer:
    """Realm1: role ``user`` with ``permissions``, role ``service`` with everything."""
    return RoleBasedAuthorizer(
        {"realm1": {"user": Role("user", permissions), "service": SERVICE}}, default
    )


def join(hub: Hub, role: str = "user", authid: str | None = None, realm: str = "realm1") -> Wire:
    return hub.joined_wire(realm=realm, authid=authid or role, authextra={"role": role})


def answer(wire: Wire, message: Message) -> Message:
    """Send ``message``; the one message that comes back."""
    wire.send(message)
    (reply,) = wire.take()
    assert reply is not None
    return reply


def outcome(reply: Message) -> str | None:
    """The ERROR URI of ``reply``, or None for success."""
    return reply.error if isinstance(reply, Error) else None


class Scene:
    """A secured hub with a ``service`` wire that may do everything."""

    def __init__(self, authorizer: Authorizer, **options: Any) -> None:
        self.hub = secure(authorizer, **options)
        self.service = join(self.hub, "service")
        self.registered: set[str] = set()

    def provide(self, procedure: str) -> None:
        if procedure not in self.registered:
            reply = answer(self.service, Register(self.service.req(), {}, procedure))
            assert isinstance(reply, Registered), reply
            self.registered.add(procedure)

    def call(self, wire: Wire, procedure: str, **options: Any) -> tuple[Message, Invocation | None]:
        """CALL through the service (which answers); (the caller's reply, the INVOCATION)."""
        wire.send(Call(wire.req(), options, procedure))
        invocation = None
        for message in self.service.take():
            assert isinstance(message, Invocation), message
            invocation = message
            self.service.send(Yield(message.request, {}))
        (reply,) = wire.take()
        assert reply is not None
        return reply, invocation

    def attempt(self, wire: Wire, action: Action, uri: str, **options: Any) -> str | None:
        """Try ``action`` on ``uri``: None when it worked, else the ERROR URI."""
        if action == "call":
            self.provide(uri)
            reply, _ = self.call(wire, uri, **options)
            assert isinstance(reply, (Result, Error)), reply
        elif action == "register":
            reply = answer(wire, Register(wire.req(), options, uri))
            assert isinstance(reply, (Registered, Error)), reply
        elif action == "publish":
            reply = answer(wire, Publish(wire.req(), {"acknowledge": True, **options}, uri))
            assert isinstance(reply, (Published, Error)), reply
        else:
            reply = answer(wire, Subscribe(wire.req(), options, uri))
            assert isinstance(reply, (Subscribed, Error)), reply
        return outcome(reply)


def session(role: str = "user", realm: str | None = "realm1", session_id: int = 1) -> RouterSession:
    """A router-side session slot with this identity (for direct authorizer calls)."""
    router = Router(["realm1", "realm2"])
    slot = router.attach(get_serializer("json"))
    if realm is not None:
        slot.realm = router.add_realm(realm)
    slot.authrole = role
    slot.authid = f"{role}-{session_id}"
    slot.session_id = session_id
    return slot


# -- permissions and roles -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("uri", "match"),
    [("", "exact"), ("", "wildcard"), ("a..b", "prefix"), ("a..b", "exact"), ("a b", "exact")],
)
def test_permission_refuses_a_bad_uri(uri: str, match: MatchPolicy) -> None:
    with pytest.raises(LocalProtocolError) as info:
        Permission(uri, match)
    assert info.value.reason == ErrorURI.INVALID_URI


def test_permission_refuses_a_bad_policy_or_flag() -> None:
    with pytest.raises(LocalProtocolError) as info:
        Permission("a", "regex")  # type: ignore[arg-type]
    assert info.value.reason == ErrorURI.INVALID_ARGUMENT
    for flag in (*ACTIONS, "disclose_caller", "disclose_publisher"):
        with pytest.raises(LocalProtocolError, match=flag):
            Permission("a", **{flag: 1})  # type: ignore[arg-type]


def test_permission_flags() -> None:
    assert Permission("", "prefix") == NO_PERMISSION
    for action in ACTIONS:
        granted = Permission("a", **{action: True})  # type: ignore[arg-type]
        assert [granted.allows(a) for a in ACTIONS] == [a == action for a in ACTIONS]
    caller = Permission("a", disclose_caller=True)
    publisher = Permission("a", disclose_publisher=True)
    assert [caller.discloses(a) for a in ACTIONS] == [True, False, False, False]
    assert [publisher.discloses(a) for a in ACTIONS] == [False, False, True, False]


def test_role_refuses_two_permissions_for_one_pattern() -> None:
    Role("r", [Permission("a.b"), Permission("a.b", "prefix"), Permission("a.b", "wildcard")])
    with pytest.raises(LocalProtocolError, match="two permissions"):
        Role("r", [Permission("a.", "prefix", call=True), Permission("a.", "prefix")])


def test_role_repr_and_rule() -> None:
    exact, prefix = Permission("a.b"), Permission("a.", "prefix")
    role = Role("r", [exact, prefix])
    assert repr(role) == f"Role('r', {[exact, prefix]!r})"
    assert role.rule("a.b") is exact
    assert role.rule("a.c") is prefix
    assert role.rule("b") is None


def test_a_role_must_be_listed_under_its_name() -> None:
    with pytest.raises(LocalProtocolError, match="listed as"):
        RoleBasedAuthorizer({"realm1": {"admin": Role("user")}})


# -- the permission matrix -----------------------------------------------------------------

# (permission URI, a URI it matches) per match policy
RULES: dict[str, tuple[str, str]] = {
    "exact": ("com.app.x", "com.app.x"),
    "prefix": ("com.app.", "com.app.x"),
    "wildcard": ("com..x", "com.app.x"),
}


@pytest.mark.parametrize("action", ACTIONS)
@pytest.mark.parametrize("match", MATCH_POLICIES)
@pytest.mark.parametrize("allowed", [True, False])
def test_permission_matrix(action: Action, match: MatchPolicy, allowed: bool) -> None:
    rule, uri = RULES[match]
    everything_else = {a: True for a in ACTIONS if a != action}
    scene = Scene(roles(Permission(rule, match, **{action: allowed, **everything_else})))
    user = join(scene.hub)
    assert scene.attempt(user, action, uri) == (None if allowed else NOT_AUTHORIZED)
    # A URI no permission matches: the default (nothing) decides.
    assert scene.attempt(user, action, "org.other") == NOT_AUTHORIZED


def test_unknown_role_or_realm_may_do_nothing() -> None:
    scene = Scene(roles(EVERYTHING))
    for stranger in (join(scene.hub, "guest"), join(scene.hub, "user", realm="realm2")):
        for action in ACTIONS:
            assert scene.attempt(stranger, action, "com.app.x") == NOT_AUTHORIZED
    authorizer = roles(EVERYTHING)
    assert authorizer.authorize(session("user", None), "a", "call", {}) == Decision(False)
    assert authorizer.authorize(session(), "a", "call", {}) == Decision(True)
    unknown: Any = "delete"
    assert authorizer.authorize(session(), "a", unknown, {}) == Decision(False)
    assert authorizer.authorize(session(), "a", "subscribe", {"match": "regex"}) == Decision(False)


def test_default_permission() -> None:
    authorizer = roles(
        Permission("com.", "prefix", call=False), default=Permission("", "prefix", call=True)
    )
    assert authorizer.authorize(session(), "com.x", "call", {}).allow is False
    assert authorizer.authorize(session(), "org.x", "call", {}).allow is True
    # Unknown roles get nothing, whatever the default.
    assert authorizer.authorize(session("guest"), "org.x", "call", {}).allow is False


# -- the most specific rule wins -------------------------------------------------------------


@pytest.mark.parametrize(
    ("permissions", "uri", "allowed"),
    [
        # exact beats prefix and wildcard, both ways
        ([Permission("a.b.c", call=False), Permission("a.", "prefix", call=True)], "a.b.c", False),
        ([Permission("a.b.c", call=True), Permission("a.", "prefix", call=False)], "a.b.c", True),
        ([Permission("a.b.c", call=True), Permission("a..c", "wildcard")], "a.b.c", True),
        # the longest prefix wins
        ([Permission("a.", "prefix", call=True), Permission("a.b", "prefix")], "a.b.c", False),
        ([Permission("a.", "prefix"), Permission("a.b", "prefix", call=True)], "a.b.c", True),
        ([Permission("a.", "prefix"), Permission("a.b", "prefix", call=True)], "a.c.c", False),
        # a prefix beats a wildcard, however long
        ([Permission("a", "prefix", call=True), Permission("a.b.", "wildcard")], "a.b.c", True),
        ([Permission("a", "prefix"), Permission("a.b.", "wildcard", call=True)], "a.b.c", False),
        # the wildcard with longer literal runs, left to right, wins
        (
            [Permission("a.b.", "wildcard"), Permission("a..c", "wildcard", call=True)],
            "a.b.c",
            False,
        ),
        (
            [Permission("a.b.", "wildcard", call=True), Permission("a..c", "wildcard")],
            "a.b.c",
            True,
        ),
        ([Permission("..c", "wildcard", call=True), Permission(".b.", "wildcard")], "a.b.c", False),
        # a prefix match is a string prefix ("a.b" also covers "a.bc")
        ([Permission("a.b", "prefix", call=True)], "a.bc", True),
        ([Permission("a.b.", "prefix", call=True)], "a.bc", False),
    ],
)
def test_the_most_specific_rule_wins(
    permissions: list[Permission], uri: str, allowed: bool
) -> None:
    assert roles(*permissions).authorize(session(), uri, "call", {}).allow is allowed


def test_the_default_comes_after_wildcards() -> None:
    # As in Crossbar.io: the default is what applies when *nothing* matches.
    authorizer = roles(Permission("a..c", "wildcard"), default=Permission("", "prefix", call=True))
    assert authorizer.authorize(session(), "a.b.c", "call", {}).allow is False
    assert authorizer.authorize(session(), "a.b.d", "call", {}).allow is True


# -- pattern subscriptions and registrations ----------------------------------------------------


@pytest.mark.parametrize(
    ("permissions", "pattern", "match", "allowed"),
    [
        # covered by a prefix permission (itself or a shorter one)
        ([Permission("com.app.", "prefix", subscribe=True)], "com.app.", "prefix", True),
        ([Permission("com.app.", "prefix", subscribe=True)], "com.app.x.", "prefix", True),
        ([Permission("com.", "prefix", subscribe=True)], "com.app..x", "wildcard", True),
        # a string prefix: "com.app" reaches "com.apple"
        ([Permission("com.app.", "prefix", subscribe=True)], "com.app", "prefix", False),
        ([Permission("com.app", "prefix", subscribe=True)], "com.app", "prefix", True),
        # a more specific refusal underneath
        (
            [Permission("com.", "prefix", subscribe=True), Permission("com.app.secret")],
            "com.app.",
            "prefix",
            False,
        ),
        (
            [Permission("com.", "prefix", subscribe=True), Permission("com.app.s", "prefix")],
            "com.app.",
            "prefix",
            False,
        ),
        (
            [Permission("com.", "prefix", subscribe=True), Permission("com.x", "prefix")],
            "com..status",
            "wildcard",
            False,
        ),
        (
            [Permission("com.", "prefix", subscribe=True), Permission("com.x.status")],
            "com..status",
            "wildcard",
            False,
        ),
        # ... that the pattern cannot reach
        (
            [Permission("com.", "prefix", subscribe=True), Permission("com.x.status.y", "prefix")],
            "com..status",
            "wildcard",
            True,
        ),
        (
            [Permission("com.", "prefix", subscribe=True), Permission("com.x.other")],
            "com..status",
            "wildcard",
            True,
        ),
        # ... or that something more specific still overrides
        (
            [
                Permission("com.", "prefix", subscribe=True),
                Permission("com.x.status", "prefix"),
                Permission("com.x.status", subscribe=True),
            ],
            "com..status",
            "wildcard",
            True,
        ),
        # exact permissions cover no pattern
        ([Permission("com.app.x", subscribe=True)], "com.app.x", "prefix", False),
        ([Permission("com.app.x", subscribe=True)], "com..x", "wildcard", False),
        # a wildcard pattern without wildcards is one URI
        ([Permission("com.app.x", subscribe=True)], "com.app.x", "wildcard", True),
        # wildcard permissions cover wildcard patterns, not prefix ones
        ([Permission("com..x", "wildcard", subscribe=True)], "com..x", "wildcard", True),
        ([Permission("com..x", "wildcard", subscribe=True)], "com.a.x", "wildcard", True),
        ([Permission("com..x", "wildcard", subscribe=True)], "com...", "wildcard", False),
        ([Permission("com..x", "wildcard", subscribe=True)], "com.", "prefix", False),
        (
            [Permission("com..x", "wildcard", subscribe=True), Permission("com.secret.x")],
            "com..x",
            "wildcard",
            False,
        ),
        # a refusing wildcard that always loses to a better one is harmless
        (
            [Permission("a.b.", "wildcard", subscribe=True), Permission("a..c", "wildcard")],
            "a.b.",
            "wildcard",
            True,
        ),
        (
            [Permission("a.b.", "wildcard", subscribe=True), Permission("a..c", "wildcard")],
            "a..c",
            "wildcard",
            False,
        ),
    ],
)
def test_patterns_reach_only_what_the_role_may(
    permissions: list[Permission], pattern: str, match: MatchPolicy, allowed: bool
) -> None:
    scene = Scene(roles(*permissions))
    user = join(scene.hub)
    assert scene.attempt(user, "subscribe", pattern, match=match) == (
        None if allowed else NOT_AUTHORIZED
    )
    # Registrations follow the same rule.
    register = [
        Permission(p.uri, p.match, register=p.subscribe, subscribe=p.subscribe) for p in permissions
    ]
    scene = Scene(roles(*register))
    user = join(scene.hub)
    assert scene.attempt(user, "register", pattern, match=match) == (
        None if allowed else NOT_AUTHORIZED
    )


def test_patterns_under_a_permissive_default() -> None:
    default = Permission("", "prefix", subscribe=True)
    assert roles(default=default).authorize(session(), "a.", "subscribe", {"match": "prefix"}).allow
    refused = roles(Permission("a..c", "wildcard"), default=default)
    assert not refused.authorize(session(), "a.", "subscribe", {"match": "prefix"}).allow
    assert refused.authorize(session(), "b.", "subscribe", {"match": "prefix"}).allow
    assert not refused.authorize(session(), "a.b", "subscribe", {"match": "prefix"}).allow
    assert refused.authorize(session(), "a.b.c.", "subscribe", {"match": "prefix"}).allow


# Brute force: every URI over a small alphabet, against Role.reaches. The rules
# use "a" and "b"; "z" stands for any other text. Components "a", "b" and
# "z", "az", "bz" (text that starts like a rule but is not one) make every kind
# of URI the rules can tell apart, with up to one component more than any rule.

_COMPONENTS = ("a", "b", "z", "az", "bz")
_UNIVERSE = [
    ".".join(parts) for size in range(1, 5) for parts in itertools.product(_COMPONENTS, repeat=size)
]


def _matches(pattern: str, match: MatchPolicy, uri: str) -> bool:
    if match == "exact":
        return uri == pattern
    if match == "prefix":
        return uri.startswith(pattern)
    return wildcard_matches(pattern, uri)


def _random_pattern(rng: random.Random) -> tuple[str, MatchPolicy]:
    while True:
        match: MatchPolicy = rng.choice(MATCH_POLICIES)
        parts = [rng.choice(("a", "b", "")) for _ in range(rng.randint(1, 3))]
        uri = ".".join(parts)
        if is_valid_uri(uri, match) or (match == "prefix" and uri == ""):
            return uri, match


@pytest.mark.parametrize("seed", range(8))
def test_pattern_reach_matches_brute_force(seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(60):
        permissions: dict[tuple[str, str], Permission] = {}
        for _ in range(rng.randint(0, 5)):
            uri, match = _random_pattern(rng)
            permissions[uri, match] = Permission(uri, match, subscribe=rng.random() < 0.6)
        role = Role("r", permissions.values())
        default = Permission("", "prefix", subscribe=rng.random() < 0.3)
        uri, match = _random_pattern(rng)
        if uri == "":
            continue  # not a valid SUBSCRIBE pattern
        expected = all(
            (role.rule(u) or default).subscribe for u in _UNIVERSE if _matches(uri, match, u)
        )
        assert role.reaches(uri, match, "subscribe", default) is expected, (
            list(permissions.values()),
            default.subscribe,
            uri,
            match,
        )


# -- refusals come in order ------------------------------------------------------------------


def test_an_invalid_uri_is_reported_before_authorization() -> None:
    scene = Scene(roles())
    user = join(scene.hub)
    assert scene.attempt(user, "subscribe", "a..b") == ErrorURI.INVALID_URI
    assert scene.attempt(user, "register", "wamp.x") == ErrorURI.INVALID_URI
    assert scene.attempt(user, "publish", "a b") == ErrorURI.INVALID_URI
    reply = answer(user, Call(user.req(), {}, "a..b"))
    assert outcome(reply) == ErrorURI.INVALID_URI


def test_an_unauthorized_caller_does_not_learn_whether_a_procedure_exists() -> None:
    scene = Scene(roles())
    user = join(scene.hub)
    reply = answer(user, Call(user.req(), {"timeout": -1}, "com.nowhere"))
    assert outcome(reply) == NOT_AUTHORIZED
    assert isinstance(reply, Error)
    assert reply.args == ["not authorized to call 'com.nowhere'"]


def test_a_refused_progressive_call_drops_its_later_chunks() -> None:
    scene = Scene(roles())
    user = join(scene.hub)
    request = user.req()
    reply = answer(user, Call(request, {"progress": True}, "com.app.x", [1]))
    assert outcome(reply) == NOT_AUTHORIZED
    user.send(Call(request, {}, "com.app.x", [2]))  # no new request, no violation
    assert user.take() == []


def test_an_unacknowledged_refused_publication_is_dropped_silently() -> None:
    scene = Scene(roles(Permission("com.", "prefix", subscribe=True)))
    user = join(scene.hub)
    assert scene.attempt(user, "subscribe", "com.app.x") is None
    user.send(Publish(user.req(), {}, "com.app.x", [1]))
    scene.service.send(Publish(scene.service.req(), {}, "com.app.x", [2]))
    (event,) = user.take()
    assert isinstance(event, Event)
    assert event.args == [2]


# -- disclosure --------------------------------------------------------------------------------


def test_disclose_me_needs_disclose_caller() -> None:
    scene = Scene(
        roles(
            Permission("com.open", call=True, disclose_caller=True),
            Permission("com.closed", call=True),
        )
    )
    user = join(scene.hub, authid="alice")
    scene.provide("com.open")
    scene.provide("com.closed")
    reply, invocation = scene.call(user, "com.closed", disclose_me=True)
    assert outcome(reply) == DISCLOSE
    assert invocation is None
    assert isinstance(reply, Error)
    assert reply.request_type == MessageType.CALL
    # Allowed to disclose: the caller is disclosed, asked or not.
    for options in ({"disclose_me": True}, {}):
        reply, invocation = scene.call(user, "com.open", **options)
        assert isinstance(reply, Result)
        assert invocation is not None
        assert invocation.details == {
            "caller": user.session_id,
            "caller_authid": "alice",
            "caller_authrole": "user",
        }


def test_a_callee_asking_for_the_caller_gets_it_only_when_disclosure_is_allowed() -> None:
    scene = Scene(
        roles(
            Permission("com.open", call=True, disclose_caller=True),
            Permission("com.closed", call=True),
        )
    )
    user = join(scene.hub)
    for procedure in ("com.open", "com.closed"):
        reply = answer(
            scene.service, Register(scene.service.req(), {"disclose_caller": True}, procedure)
        )
        assert isinstance(reply, Registered)
    _, invocation = scene.call(user, "com.closed")
    assert invocation is not None
    assert invocation.details == {}
    _, invocation = scene.call(user, "com.open")
    assert invocation is not None
    assert invocation.details["caller"] == user.session_id


def test_disclose_me_needs_disclose_publisher() -> None:
    scene = Scene(
        roles(
            Permission("com.open", publish=True, disclose_publisher=True),
            Permission("com.closed", publish=True),
        )
    )
    service = scene.service
    for topic in ("com.open", "com.closed"):
        assert scene.attempt(service, "subscribe", topic) is None
    user = join(scene.hub, authid="alice")
    assert scene.attempt(user, "publish", "com.closed", disclose_me=True) == DISCLOSE
    user.send(Publish(user.req(), {"disclose_me": True}, "com.closed"))  # unacknowledged
    assert service.take() == []
    user.send(Publish(user.req(), {}, "com.closed"))
    (event,) = service.take()
    assert isinstance(event, Event)
    assert event.details == {}
    # Allowed to disclose: the publisher is disclosed, asked or not.
    for options in ({"disclose_me": True}, {}):
        user.send(Publish(user.req(), options, "com.open"))
        (event,) = service.take()
        assert isinstance(event, Event)
        assert event.details == {
            "publisher": user.session_id,
            "publisher_authid": "alice",
            "publisher_authrole": "user",
        }


# -- the meta API ----------------------------------------------------------------------------


def test_meta_procedures_need_call_permission() -> None:
    scene = Scene(roles(Permission("wamp.session.count", call=True)))
    user = join(scene.hub)
    reply = answer(user, Call(user.req(), {}, "wamp.session.count"))
    assert isinstance(reply, Result)
    assert reply.args == [2]
    reply = answer(user, Call(user.req(), {}, "wamp.session.list"))
    assert outcome(reply) == NOT_AUTHORIZED
    reply = answer(user, Call(user.req(), {"disclose_me": True}, "wamp.session.count"))
    assert outcome(reply) == DISCLOSE


def test_meta_topics_need_subscribe_permission() -> None:
    scene = Scene(roles(Permission("wamp.session.on_join", subscribe=True)))
    user = join(scene.hub)
    assert scene.attempt(user, "subscribe", "wamp.session.on_join") is None
    assert scene.attempt(user, "subscribe", "wamp.session.on_leave") == NOT_AUTHORIZED
    # The pattern would reach on_leave too.
    assert scene.attempt(user, "subscribe", "wamp.session.", match="prefix") == NOT_AUTHORIZED
    join(scene.hub, "service")
    (event,) = user.take()
    assert isinstance(event, Event)


GET_EVENTS = "wamp.subscription.get_events"


def test_event_history_needs_subscribe_permission_on_the_subscription() -> None:
    readable = Permission("com.public.", "prefix", subscribe=True)
    scene = Scene(
        roles(Permission(GET_EVENTS, call=True), readable),
        event_history=[HistoryRule("com.", "prefix", 10)],
    )
    service, user = scene.service, join(scene.hub)
    ids = {}
    for topic in ("com.public.x", "com.secret.x"):
        reply = answer(service, Subscribe(service.req(), {}, topic))
        assert isinstance(reply, Subscribed)
        ids[topic] = reply.subscription
    reply = answer(user, Call(user.req(), {}, GET_EVENTS, [ids["com.public.x"]]))
    assert isinstance(reply, Result)
    assert reply.args == [[]]
    reply = answer(user, Call(user.req(), {}, GET_EVENTS, [ids["com.secret.x"]]))
    assert outcome(reply) == NOT_AUTHORIZED
    assert isinstance(reply, Error)
    assert reply.args == ["not authorized to subscribe 'com.secret.x'"]
    # The pattern of a pattern subscription counts.
    reply = answer(service, Subscribe(service.req(), {"match": "prefix"}, "com."))
    assert isinstance(reply, Subscribed)
    reply = answer(user, Call(user.req(), {}, GET_EVENTS, [reply.subscription]))
    assert outcome(reply) == NOT_AUTHORIZED
    # The history_access hook still has its say.
    refused: list[Subscription] = []

    def access(session: RouterSession, subscription: Subscription) -> bool:
        refused.append(subscription)
        return False

    scene.hub.router.realms["realm1"].broker.history_access = access
    reply = answer(user, Call(user.req(), {}, GET_EVENTS, [ids["com.public.x"]]))
    assert outcome(reply) == NOT_AUTHORIZED
    assert [s.uri for s in refused] == ["com.public.x"]
    # The procedure itself needs call permission.
    scene = Scene(roles(readable), event_history=[HistoryRule("com.", "prefix", 10)])
    user = join(scene.hub)
    reply = answer(user, Call(user.req(), {}, GET_EVENTS, [1]))
    assert outcome(reply) == NOT_AUTHORIZED


def test_testaments_are_authorized_as_publications_of_their_session() -> None:
    scene = Scene(
        roles(
            Permission("wamp.session.add_testament", call=True),
            Permission("com.will.", "prefix", publish=True),
            Permission("com.will.named", publish=True, disclose_publisher=True),
        )
    )
    service = scene.service
    assert scene.attempt(service, "subscribe", "com.", match="prefix") is None
    user = join(scene.hub, authid="alice")
    testaments: list[tuple[str, dict[str, Any], str | None]] = [
        ("com.will.plain", {}, None),
        ("com.secret", {}, NOT_AUTHORIZED),  # no publish permission: dropped
        ("com.will.shown", {"disclose_me": True}, DISCLOSE),  # may not disclose: dropped
        ("com.will.named", {}, None),  # disclosed
    ]
    for topic, options, refusal in testaments:
        # Refused when added, and (see below) checked again when they fire.
        assert outcome(add_testament(user, topic, options)) == refusal
    scene.hub.drop(user)
    events = [e for e in service.take() if isinstance(e, Event)]
    assert [(e.details.get("topic"), e.details.get("publisher")) for e in events] == [
        ("com.will.plain", None),
        ("com.will.named", user.session_id),
    ]


def add_testament(wire: Wire, topic: str, options: dict[str, Any]) -> Message:
    procedure = "wamp.session.add_testament"
    return answer(wire, Call(wire.req(), {}, procedure, [topic], {"publish_options": options}))


def test_testaments_are_authorized_when_they_fire() -> None:
    allowed = {"wamp.session.add_testament", "com.will.a", "com.will.b"}

    def policy(session: RouterSession, uri: str, action: Action, options: dict[str, Any]) -> bool:
        return session.authrole == "service" or uri in allowed

    scene = Scene(DynamicAuthorizer(policy, cache_size=0))
    assert scene.attempt(scene.service, "subscribe", "com.will.", match="prefix") is None
    user = join(scene.hub)
    for topic in ("com.will.a", "com.will.b"):
        assert isinstance(add_testament(user, topic, {}), Result)
    allowed.discard("com.will.a")  # the policy changed meanwhile
    scene.hub.drop(user)
    (event,) = scene.service.take()
    assert isinstance(event, Event)
    assert event.details["topic"] == "com.will.b"


# -- dynamic authorization ---------------------------------------------------------------------


class Policy:
    """A dynamic authorizer's function that records its questions."""

    def __init__(self, answer: Any = True) -> None:
        self.answer = answer
        self.asked: list[tuple[int, str, str, dict[str, Any]]] = []

    def __call__(
        self, session: RouterSession, uri: str, action: Action, options: dict[str, Any]
    ) -> Any:
        self.asked.append((session.session_id, uri, action, options))
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer(uri) if callable(self.answer) else self.answer


def test_dynamic_authorizer_answers() -> None:
    policy = Policy(lambda uri: uri.startswith("com.open"))
    authorizer = DynamicAuthorizer(policy)
    scene = Scene(authorizer)
    user = join(scene.hub)
    assert scene.attempt(user, "subscribe", "com.open.x") is None
    assert scene.attempt(user, "subscribe", "com.closed.x") == NOT_AUTHORIZED
    assert scene.attempt(user, "publish", "com.open.x", disclose_me=True) == DISCLOSE
    policy.answer = lambda uri: Decision(True, disclose=True)
    assert scene.attempt(user, "publish", "com.open.y", disclose_me=True) is None
    policy.answer = lambda uri: Decision(False, reason="com.app.no")
    assert scene.attempt(user, "subscribe", "com.open.z") == "com.app.no"
    assert authorizer.failures == 0


@pytest.mark.parametrize("bad", [ValueError("bug"), None, 1, "yes"])
def test_a_failing_dynamic_authorizer_fails_the_request(bad: Any) -> None:
    policy = Policy(bad)
    authorizer = DynamicAuthorizer(policy)
    scene = Scene(authorizer)
    user = join(scene.hub)
    for _ in range(2):  # failures are not cached
        assert scene.attempt(user, "subscribe", "com.x") == FAILED
    assert len(policy.asked) == 2
    assert authorizer.failures == 2
    assert len(authorizer) == 0
    if isinstance(bad, Exception):
        assert authorizer.last_error is bad
    else:
        assert isinstance(authorizer.last_error, TypeError)


def test_the_dynamic_authorizer_gets_a_copy_of_the_options() -> None:
    def policy(session: RouterSession, uri: str, action: Action, options: dict[str, Any]) -> bool:
        options["match"] = "exact"
        return True

    scene = Scene(DynamicAuthorizer(policy))
    user = join(scene.hub)
    assert scene.attempt(user, "subscribe", "com.", match="prefix") is None
    reply = answer(user, Call(user.req(), {}, "wamp.subscription.lookup", ["com."]))
    assert isinstance(reply, Result)
    assert reply.args == [None]  # it is a prefix subscription


def test_the_decision_cache() -> None:
    policy = Policy()
    authorizer = DynamicAuthorizer(policy)
    one = session(session_id=1)
    assert authorizer.authorize(one, "a", "call", {}) == Decision(True)
    assert authorizer.authorize(one, "a", "call", {"timeout": 5}) == Decision(True)
    assert (authorizer.hits, authorizer.misses, len(authorizer)) == (1, 1, 1)
    # The action, the URI, the match policy and the session make the key.
    authorizer.authorize(one, "a", "publish", {})
    authorizer.authorize(one, "b", "call", {})
    authorizer.authorize(one, "a", "subscribe", {})
    authorizer.authorize(one, "a", "subscribe", {"match": "prefix"})
    authorizer.authorize(one, "a", "call", {"match": "prefix"})  # no pattern for calls: a hit
    authorizer.authorize(session(session_id=2), "a", "call", {})
    assert (authorizer.hits, authorizer.misses, len(authorizer)) == (2, 6, 6)
    # A decision asking not to be cached is not.
    policy.answer = Decision(True, cache=False)
    authorizer.authorize(one, "c", "call", {})
    authorizer.authorize(one, "c", "call", {})
    assert (authorizer.misses, len(authorizer)) == (8, 6)
    authorizer.clear()
    assert len(authorizer) == 0


def test_a_later_session_with_the_same_id_is_asked_again() -> None:
    policy = Policy()
    authorizer = DynamicAuthorizer(policy)
    authorizer.authorize(session("user", session_id=7), "a", "call", {})
    authorizer.authorize(session("admin", session_id=7), "a", "call", {})
    authorizer.authorize(session("user", realm="realm2", session_id=7), "a", "call", {})
    assert authorizer.misses == 3


def test_the_cache_is_bounded_least_recently_used_first_out() -> None:
    authorizer = DynamicAuthorizer(Policy(), cache_size=2)
    one, two = session(session_id=1), session(session_id=2)
    authorizer.authorize(one, "a", "call", {})
    authorizer.authorize(one, "b", "call", {})
    authorizer.authorize(one, "a", "call", {})  # "a" is now the most recently used
    authorizer.authorize(two, "c", "call", {})  # evicts "b"
    assert len(authorizer) == 2
    authorizer.authorize(one, "a", "call", {})
    assert authorizer.misses == 3
    authorizer.authorize(one, "b", "call", {})  # evicts two's "c", its only entry
    assert authorizer.misses == 4
    authorizer.forget(two)  # nothing left for it
    assert len(authorizer) == 2
    authorizer.authorize(two, "c", "call", {})
    assert authorizer.misses == 5
    # Shared per role: the oldest goes just the same.
    shared = DynamicAuthorizer(Policy(), cache_size=1, per="authrole")
    shared.authorize(one, "a", "call", {})
    shared.authorize(two, "b", "call", {})
    shared.authorize(two, "a", "call", {})
    assert (shared.misses, len(shared)) == (3, 1)
    # Size 0: no cache at all.
    uncached = DynamicAuthorizer(Policy(), cache_size=0)
    for _ in range(2):
        uncached.authorize(one, "a", "call", {})
    assert (uncached.misses, len(uncached)) == (2, 0)


def test_a_sessions_decisions_go_when_it_leaves() -> None:
    policy = Policy()
    authorizer = DynamicAuthorizer(policy)
    scene = Scene(authorizer)
    user, other = join(scene.hub), join(scene.hub)
    for wire in (user, user, other):
        assert scene.attempt(wire, "subscribe", "com.x") is None
    assert (authorizer.hits, authorizer.misses) == (1, 2)
    before = len(authorizer)
    scene.hub.drop(user)
    assert len(authorizer) == before - 1
    assert scene.attempt(other, "subscribe", "com.x") is None
    assert authorizer.hits == 2


def test_decisions_per_authrole_are_shared() -> None:
    policy = Policy()
    authorizer = DynamicAuthorizer(policy, per="authrole")
    scene = Scene(authorizer)
    alice, bob = join(scene.hub, authid="alice"), join(scene.hub, authid="bob")
    assert scene.attempt(alice, "subscribe", "com.x") is None
    assert scene.attempt(bob, "subscribe", "com.x") is None
    assert (authorizer.hits, authorizer.misses) == (1, 1)
    scene.hub.drop(alice)  # a role's decisions outlive its sessions
    assert scene.attempt(join(scene.hub), "subscribe", "com.x") is None
    assert authorizer.hits == 2
    assert scene.attempt(join(scene.hub, "service"), "subscribe", "com.x") is None
    assert authorizer.misses == 2


@pytest.mark.parametrize(
    ("options", "text"),
    [
        ({"cache_size": -1}, "cache_size"),
        ({"cache_size": True}, "cache_size"),
        ({"per": "x"}, "per"),
    ],
)
def test_dynamic_authorizer_refuses_bad_options(options: dict[str, Any], text: str) -> None:
    with pytest.raises(LocalProtocolError, match=text):
        DynamicAuthorizer(Policy(), **options)


def test_an_authorizer_without_opinion_acts_as_none() -> None:
    """None from authorize() means: as if the router had no authorizer."""
    from wamp_core import Call, Invocation, Register, Registered

    class NoOpinion:
        def authorize(self, session: Any, uri: str, action: Any, options: Any) -> None:
            return None

    hub = Hub(Router(["realm1"], authorizer=NoOpinion()))
    callee = hub.joined_wire()
    callee.send(Register(callee.req(), {"disclose_caller": True}, "com.p"))
    assert isinstance(callee.one(Registered), Registered)
    caller = hub.joined_wire()
    caller.send(Call(caller.req(), {"disclose_me": True}, "com.p"))
    invocation = callee.one(Invocation)
    assert invocation.details["caller"] == caller.slot.session_id
