"""Advanced Profile PubSub in the broker (wamp_core._broker): publication trust
levels, event retention, event history (``wamp.subscription.get_events``) and
subscription revocation. Plain PubSub, patterns, exclusion, identification and
black- and whitelisting for live events are in test_broker.py.

Harness: tests/core/test_router.py (``Hub``, ``Wire``).
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.core.test_router import Hub, Wire, assert_clean, only
from wamp_core import (
    CLIENT_ROLES,
    Accept,
    AuthChallenge,
    AuthOutcome,
    Call,
    Error,
    ErrorURI,
    Event,
    EventReceived,
    HelloInfo,
    LocalProtocolError,
    MessageType,
    Publish,
    Published,
    Result,
    ResultReceived,
    Router,
    RouterObserver,
    RouterSession,
    Subscribe,
    Subscribed,
    SubscribeSucceeded,
    SubscriptionRevoked,
    Unsubscribe,
    Unsubscribed,
)
from wamp_core._broker import (
    HISTORY_UNAVAILABLE,
    Broker,
    HistoryRule,
    Subscription,
    _covers,
    format_timestamp,
    get_events,
    parse_timestamp,
)
from wamp_core._uri import MatchPolicy

GET_EVENTS = "wamp.subscription.get_events"
REVOCABLE: dict[str, Any] = {
    "subscriber": {"features": {"subscription_revocation": True}},
    "publisher": {},
}
PLAIN: dict[str, Any] = {"subscriber": {}, "publisher": {}}


class Auth:
    """Accepts everyone: authid as asked, ``authextra.role`` as authrole (default
    ``user``) and ``authextra.trust`` as trust level (default none)."""

    def hello(self, info: HelloInfo) -> AuthOutcome:
        extra = info.details.get("authextra", {})
        return Accept(
            info.authid or "anon", extra.get("role", "user"), trustlevel=extra.get("trust")
        )

    def authenticate(
        self, info: HelloInfo, challenge: AuthChallenge, signature: str, extra: dict[str, Any]
    ) -> AuthOutcome:
        raise AssertionError("no challenge is ever sent")


def make_hub(*rules: tuple[Any, ...], now: float = 0.0) -> Hub:
    """Two realms, the Auth above, get_events provided, ``rules`` in realm1's broker."""
    router = Router(["realm1", "realm2"], authenticator=Auth(), now=now)
    router.add_procedure(GET_EVENTS, get_events)
    router.realms["realm1"].broker.set_event_history(rules)
    return Hub(router)


def broker(hub: Hub, realm: str = "realm1") -> Broker:
    return hub.router.realms[realm].broker


def join(
    hub: Hub,
    authid: str = "anon",
    role: str = "user",
    *,
    trust: int | None = None,
    roles: dict[str, Any] = CLIENT_ROLES,
    realm: str = "realm1",
) -> Wire:
    """A wire joined as ``authid`` / ``role`` with trust level ``trust``."""
    extra: dict[str, Any] = {"role": role}
    if trust is not None:
        extra["trust"] = trust
    return hub.joined_wire(roles=roles, realm=realm, authid=authid, authextra=extra)


def subscribe(wire: Wire, topic: str, **options: Any) -> tuple[int, list[Event]]:
    """SUBSCRIBE; the subscription ID and the (retained) EVENTs after SUBSCRIBED."""
    wire.send(Subscribe(wire.req(), options, topic))
    subscribed, *events = wire.take()
    assert isinstance(subscribed, Subscribed), subscribed
    assert all(isinstance(event, Event) for event in events), events
    return subscribed.subscription, [e for e in events if isinstance(e, Event)]


def publish(wire: Wire, topic: str, *args: Any, **options: Any) -> int:
    """An acknowledged PUBLISH; returns the publication ID (the publisher gets
    nothing else)."""
    wire.send(Publish(wire.req(), {**options, "acknowledge": True}, topic, list(args) or None))
    return wire.one(Published).publication


def history(wire: Wire, subscription: int, **kwargs: Any) -> list[dict[str, Any]]:
    """Call wamp.subscription.get_events; the list of events."""
    wire.send(Call(wire.req(), {}, GET_EVENTS, [subscription], kwargs or None))
    out = wire.take()
    (result,) = [m for m in out if not isinstance(m, Event)]  # live events may come too
    assert isinstance(result, Result), result
    assert result.args is not None
    (events,) = result.args
    assert isinstance(events, list)
    assert result.kwargs is None
    return events


def history_error(wire: Wire, args: list[Any], kwargs: dict[str, Any] | None = None) -> str:
    """Call wamp.subscription.get_events expecting ERROR; its URI."""
    request = wire.req()
    wire.send(Call(request, {}, GET_EVENTS, args, kwargs))
    (error,) = [m for m in wire.take() if not isinstance(m, Event)]
    assert isinstance(error, Error), error
    assert (error.request_type, error.request) == (MessageType.CALL, request)
    assert error.args is not None
    assert isinstance(error.args[0], str)
    return error.error


def pubs(events: list[dict[str, Any]]) -> list[int]:
    return [event["publication"] for event in events]


# -- publication trust levels ------------------------------------------------------------


@pytest.mark.parametrize("trust", [0, 3])
def test_trustlevel_goes_into_event_details(trust: int) -> None:
    # AP/ap_pubsub_publication_trustlevels.md
    hub = make_hub()
    pub = join(hub, "pub", "admin", trust=trust)
    sub = join(hub)
    exact, _ = subscribe(sub, "a.b")
    prefix, _ = subscribe(sub, "a", match="prefix")
    pub.send(Publish(1, {"disclose_me": True}, "a.b", ["x"]))
    first, second = sub.take()
    assert isinstance(first, Event)
    assert isinstance(second, Event)
    identity = {
        "publisher": pub.session_id,
        "publisher_authid": "pub",
        "publisher_authrole": "admin",
        "trustlevel": trust,
    }
    assert first == Event(exact, first.publication, identity, ["x"])
    assert second == Event(prefix, first.publication, {**identity, "topic": "a.b"}, ["x"])


def test_no_trustlevel_without_one() -> None:
    hub = make_hub()
    pub, sub = join(hub), join(hub)
    subscribe(sub, "a.b")
    pub.send(Publish(1, {}, "a.b"))
    assert sub.one(Event).details == {}


# -- event retention ---------------------------------------------------------------------


def test_retained_event_follows_subscribed() -> None:
    # AP/ap_pubsub_event_retention.md: stored even without subscribers, delivered
    # with Details.retained to a subscriber that asks, after SUBSCRIBED.
    hub = make_hub()
    pub = join(hub, "pub", "admin", trust=1)
    publication = publish(pub, "a.b", "v1", retain=True, disclose_me=True)
    sub = join(hub)
    sub.send(Subscribe(1, {"get_retained": True}, "a.b"))
    subscribed, event = sub.take()
    assert isinstance(subscribed, Subscribed)
    assert event == Event(
        subscribed.subscription,
        publication,
        {
            "publisher": pub.session_id,
            "publisher_authid": "pub",
            "publisher_authrole": "admin",
            "trustlevel": 1,
            "retained": True,
        },
        ["v1"],
    )
    # Live events after it carry no retained flag.
    pub.send(Publish(pub.req(), {}, "a.b", ["v2"]))
    assert sub.one(Event).details == {"trustlevel": 1}


def test_retained_event_only_when_asked() -> None:
    hub = make_hub()
    pub = join(hub)
    publish(pub, "a.b", "v", retain=True)
    for options in ({}, {"get_retained": False}, {"get_retained": "yes"}, {"get_retained": 1}):
        assert subscribe(join(hub), "a.b", **options)[1] == []


@pytest.mark.parametrize("retain", [None, False, "yes", 1])
def test_only_retain_true_retains(retain: Any) -> None:
    hub = make_hub()
    pub = join(hub)
    options = {} if retain is None else {"retain": retain}
    publish(pub, "a.b", "v", **options)
    assert broker(hub).retained == {}
    assert subscribe(join(hub), "a.b", get_retained=True)[1] == []


def test_latest_retained_event_wins_and_others_do_not_replace_it() -> None:
    hub = make_hub()
    pub = join(hub)
    publish(pub, "a.b", "v1", retain=True)
    second = publish(pub, "a.b", "v2", retain=True)
    publish(pub, "a.b", "v3")  # not retained
    publish(pub, "a.c", "other", retain=True)
    _, (event,) = subscribe(join(hub), "a.b", get_retained=True)
    assert (event.publication, event.args) == (second, ["v2"])
    assert [e.args for e in broker(hub).retained["a.b"]] == [["v2"]]


def test_retained_event_with_kwargs_and_no_payload() -> None:
    hub = make_hub()
    pub = join(hub)
    pub.send(Publish(pub.req(), {"retain": True}, "a.b", [], {"k": 1}))
    pub.send(Publish(pub.req(), {"retain": True}, "a.c"))
    _, (event,) = subscribe(join(hub), "a.b", get_retained=True)
    assert (event.args, event.kwargs) == ([], {"k": 1})
    _, (event,) = subscribe(join(hub), "a.c", get_retained=True)
    assert (event.args, event.kwargs) == (None, None)


def test_invalid_or_reserved_topics_retain_nothing() -> None:
    hub = make_hub()
    pub = join(hub)
    pub.send(Publish(pub.req(), {"retain": True}, "a..b"))
    pub.send(Publish(pub.req(), {"retain": True}, "wamp.session.on_join"))
    assert broker(hub).retained == {}


def test_subscribing_again_resends_the_retained_event() -> None:
    hub = make_hub()
    publish(join(hub), "a.b", "v", retain=True)
    sub = join(hub)
    first, (event,) = subscribe(sub, "a.b", get_retained=True)
    again, (event_again,) = subscribe(sub, "a.b", get_retained=True)
    assert again == first
    assert event_again == event


# Subscribers: s1 = alice/admin, s2 = bob/user, s3 = carol/user; "S1".."S3" stand
# for their session IDs. The retained event goes to who would have received it.
RETAIN_LISTS: list[tuple[dict[str, Any], set[str]]] = [
    ({}, {"s1", "s2", "s3"}),
    ({"exclude": ["S1"]}, {"s2", "s3"}),
    ({"exclude": []}, {"s1", "s2", "s3"}),
    ({"exclude_authid": ["bob"]}, {"s1", "s3"}),
    ({"exclude_authrole": ["user"]}, {"s1"}),
    ({"eligible": ["S1", "S2"]}, {"s1", "s2"}),
    ({"eligible": []}, set()),
    ({"eligible_authid": ["carol"]}, {"s3"}),
    ({"eligible_authrole": ["user"]}, {"s2", "s3"}),
    ({"eligible_authrole": ["user"], "exclude": ["S2"]}, {"s3"}),
    ({"eligible": "S1"}, {"s1", "s2", "s3"}),  # not a list: ignored
]


@pytest.mark.parametrize(("options", "expected"), RETAIN_LISTS)
def test_retained_event_honours_the_lists(options: dict[str, Any], expected: set[str]) -> None:
    hub = make_hub()
    pub = join(hub, "pub")
    subs = {
        "s1": join(hub, "alice", "admin"),
        "s2": join(hub, "bob", "user"),
        "s3": join(hub, "carol", "user"),
    }
    names = {name.upper(): wire.session_id for name, wire in subs.items()}

    def resolve(value: Any) -> Any:
        if isinstance(value, list):
            return [names.get(item, item) for item in value]
        return value

    publish(pub, "a.b", "v", retain=True, **{k: resolve(v) for k, v in options.items()})
    got = {name for name, wire in subs.items() if subscribe(wire, "a.b", get_retained=True)[1]}
    assert got == expected


def test_publisher_exclusion_applies_to_the_retained_event() -> None:
    # "would have received if they were subscribing when it was published"
    hub = make_hub()
    pub = join(hub)
    publish(pub, "a.b", "mine", retain=True)
    assert subscribe(pub, "a.b", get_retained=True)[1] == []
    assert len(subscribe(join(hub), "a.b", get_retained=True)[1]) == 1
    publish(pub, "a.c", "me too", retain=True, exclude_me=False)
    assert [e.args for e in subscribe(pub, "a.c", get_retained=True)[1]] == [["me too"]]


def test_restricted_retained_events_supplement_the_open_one() -> None:
    # AP/ap_pubsub_event_retention.md: one event all subscribers would receive,
    # plus (MAY) supplemental ones with limited distribution.
    hub = make_hub()
    pub = join(hub, "pub")
    admin, user, bob = join(hub, "alice", "admin"), join(hub, "carol"), join(hub, "bob")
    publish(pub, "a.b", "open", retain=True)
    publish(pub, "a.b", "admins", retain=True, eligible_authrole=["admin"])

    def retained_for(wire: Wire) -> list[Any]:
        wire.take()  # live events of the earlier subscription
        return [e.args for e in subscribe(wire, "a.b", get_retained=True)[1]]

    assert retained_for(admin) == [["admins"]]
    assert retained_for(user) == [["open"]]
    # With one supplement (the default), a newer restricted one replaces it.
    publish(pub, "a.b", "not bob", retain=True, exclude_authid=["bob"])
    assert retained_for(admin) == [["not bob"]]
    assert retained_for(bob) == [["open"]]
    assert [e.args for e in broker(hub).retained["a.b"]] == [["open"], ["not bob"]]
    # An open one replaces everything.
    publish(pub, "a.b", "open 2", retain=True)
    assert [e.args for e in broker(hub).retained["a.b"]] == [["open 2"]]
    assert retained_for(bob) == [["open 2"]]


def test_more_supplements_are_kept_when_configured() -> None:
    hub = make_hub()
    broker(hub).retained_supplements = 2
    pub = join(hub, "pub")
    admin, user, bob = join(hub, "alice", "admin"), join(hub, "carol"), join(hub, "bob")
    publish(pub, "a.b", "admins", retain=True, eligible_authrole=["admin"])
    publish(pub, "a.b", "bob", retain=True, eligible_authid=["bob"])
    publish(pub, "a.b", "carol", retain=True, eligible_authid=["carol"])
    # No open one: the oldest supplement goes.
    assert [e.args for e in broker(hub).retained["a.b"]] == [["bob"], ["carol"]]
    assert subscribe(admin, "a.b", get_retained=True)[1] == []
    assert [e.args for e in subscribe(bob, "a.b", get_retained=True)[1]] == [["bob"]]
    assert [e.args for e in subscribe(user, "a.b", get_retained=True)[1]] == [["carol"]]


def test_no_supplements_ignores_retain_on_restricted_publications() -> None:
    hub = make_hub()
    broker(hub).retained_supplements = 0
    pub = join(hub, "pub")
    publish(pub, "a.b", "restricted", retain=True, eligible_authrole=["user"])
    assert broker(hub).retained == {}
    publish(pub, "a.b", "open", retain=True)
    publish(pub, "a.b", "restricted", retain=True, exclude_authrole=["admin"])
    assert [e.args for e in subscribe(join(hub), "a.b", get_retained=True)[1]] == [["open"]]


def test_retained_topic_limit_evicts_the_least_recently_retained() -> None:
    hub = make_hub()
    broker(hub).retained_topic_limit = 2
    pub = join(hub)
    for topic in ("t.a", "t.b", "t.c"):
        publish(pub, topic, topic, retain=True)
    assert list(broker(hub).retained) == ["t.b", "t.c"]
    publish(pub, "t.b", "again", retain=True)
    publish(pub, "t.d", "t.d", retain=True)
    assert list(broker(hub).retained) == ["t.b", "t.d"]


def test_broker_options_in_the_constructor() -> None:
    router = Router()
    made = Broker(
        router,
        event_history=[("a", "prefix", 5), HistoryRule("b")],
        retained_supplements=3,
        retained_topic_limit=10,
    )
    assert (made.retained_supplements, made.retained_topic_limit) == (3, 10)
    assert made.event_history == [HistoryRule("b", "exact", 100), HistoryRule("a", "prefix", 5)]
    assert made.history_access is None
    default = Broker(router)
    assert (default.retained_supplements, default.retained_topic_limit) == (1, None)
    assert default.event_history == []


@pytest.mark.parametrize(
    ("match", "topic", "expected"),
    [
        ("prefix", "a.b", ["a.b.d", "a.b", "a.bc", "a.b.c"]),
        ("prefix", "a.b.", ["a.b.d", "a.b.c"]),
        ("wildcard", "a..c", ["a.x.c", "a.b.c"]),
        ("wildcard", "..c", ["x.y.c", "a.x.c", "a.b.c"]),
        ("wildcard", "a.b", ["a.b"]),
        ("prefix", "zzz", []),
        ("exact", "a.b.c", ["a.b.c"]),
        ("exact", "a", []),
    ],
)
def test_get_retained_for_pattern_subscriptions(
    match: str, topic: str, expected: list[str]
) -> None:
    # Every matching topic's retained event, oldest publication first.
    hub = make_hub()
    pub = join(hub)
    for retained in ("a.b.d", "x.y.c", "a.b", "a.b.c", "a.x.c", "a.bc", "b.c"):
        publish(pub, retained, retained, retain=True)
    publish(pub, "a.b.c", "a.b.c", retain=True)  # now the latest
    sub_id, events = subscribe(join(hub), topic, match=match, get_retained=True)
    assert [e.args for e in events] == [[t] for t in expected]
    for event in events:
        assert event.subscription == sub_id
        assert event.details["retained"] is True
        assert event.details.get("topic") == (None if match == "exact" else event.args[0])  # type: ignore[index]


def test_get_retained_without_anything_retained() -> None:
    hub = make_hub()
    assert subscribe(join(hub), "a", match="prefix", get_retained=True)[1] == []
    publish(join(hub), "a.b", "v", retain=True)
    assert subscribe(join(hub), "b", match="prefix", get_retained=True)[1] == []
    assert subscribe(join(hub), "a.c", get_retained=True)[1] == []


def test_retained_event_that_cannot_be_encoded_is_skipped() -> None:
    hub = make_hub()
    pub = hub.joined_wire("cbor", roles=PLAIN)
    pub.send(Publish(1, {"retain": True}, "a.b", [2**70]))  # msgpack has no room for it
    assert subscribe(hub.joined_wire("msgpack"), "a.b", get_retained=True)[1] == []
    (event,) = subscribe(hub.joined_wire("cbor"), "a.b", get_retained=True)[1]
    assert event.args == [2**70]


def test_retained_events_outlive_sessions_and_subscriptions() -> None:
    hub = make_hub()
    pub = join(hub)
    publish(pub, "a.b", "v", retain=True)
    sub = join(hub)
    subscribe(sub, "a.b", get_retained=True)
    hub.drop(pub)
    hub.drop(sub)
    assert_clean(hub.router)
    assert list(broker(hub).retained) == ["a.b"]
    assert len(subscribe(join(hub), "a.b", get_retained=True)[1]) == 1


def test_retained_events_are_per_realm() -> None:
    hub = make_hub()
    publish(join(hub), "a.b", "v", retain=True)
    assert subscribe(join(hub, realm="realm2"), "a.b", get_retained=True)[1] == []


# -- event history: configuration, covering, timestamps -------------------------------------


@pytest.mark.parametrize(
    ("rule", "uri"),
    [
        (("a.b", "regex", 5), "invalid_argument"),
        (("a..b", "exact", 5), "invalid_uri"),
        (("a b", "prefix", 5), "invalid_uri"),
        (("a.b", "exact", 0), "invalid_argument"),
        (("a.b", "exact", True), "invalid_argument"),
        (("a.b", "exact", "5"), "invalid_argument"),
    ],
)
def test_bad_history_rules_are_refused(rule: tuple[Any, ...], uri: str) -> None:
    hub = make_hub(("keep", "exact", 1))
    with pytest.raises(LocalProtocolError) as info:
        broker(hub).set_event_history([("ok", "prefix", 3), rule])
    assert info.value.reason == f"wamp.error.{uri}"
    assert broker(hub).event_history == [HistoryRule("keep", "exact", 1)]


def test_setting_history_rules_replaces_them_and_clears_the_history() -> None:
    hub = make_hub(("a", "prefix", 10))
    wire = join(hub)
    sub_id, _ = subscribe(wire, "a.b")
    publish(wire, "a.b", 1)
    assert len(history(wire, sub_id)) == 1
    # A later rule for the same pattern wins.
    broker(hub).set_event_history([("a", "prefix", 10), ("a", "prefix", 2), ("a.b", "exact")])
    assert broker(hub).event_history == [
        HistoryRule("a.b", "exact", 100),
        HistoryRule("a", "prefix", 2),
    ]
    assert history(wire, sub_id) == []
    broker(hub).set_event_history([])
    assert broker(hub).event_history == []
    assert history_error(wire, [sub_id]) == HISTORY_UNAVAILABLE


@pytest.mark.parametrize(
    ("rule", "subscription", "covered"),
    [
        (("a.b", "exact"), ("a.b", "exact"), True),
        (("a.b", "exact"), ("a.c", "exact"), False),
        (("a.b", "exact"), ("a.b", "prefix"), False),
        (("a.b", "exact"), ("a.b", "wildcard"), True),  # no wildcard in it
        (("a.b", "exact"), ("a.", "wildcard"), False),
        (("a.b", "prefix"), ("a.b.c", "exact"), True),
        (("a.b", "prefix"), ("a.bc", "exact"), True),  # a string prefix
        (("a.b", "prefix"), ("a.c", "exact"), False),
        (("a.b", "prefix"), ("a.b", "prefix"), True),
        (("a.b", "prefix"), ("a.b.c", "prefix"), True),
        (("a.b", "prefix"), ("a", "prefix"), False),
        (("a.b", "prefix"), ("a.b..d", "wildcard"), True),
        (("a.b.", "prefix"), ("a.b..d", "wildcard"), True),
        (("a.b.c", "prefix"), ("a.b..d", "wildcard"), False),
        (("a.b", "prefix"), ("a..c", "wildcard"), False),
        (("a", "prefix"), ("..c", "wildcard"), False),
        (("a.b", "prefix"), ("a.b.c", "wildcard"), True),
        (("a..c", "wildcard"), ("a.b.c", "exact"), True),
        (("a..c", "wildcard"), ("a.b.d", "exact"), False),
        (("a..c", "wildcard"), ("a.b", "exact"), False),
        (("a..c", "wildcard"), ("a..c", "wildcard"), True),
        (("a..c", "wildcard"), ("a.x.c", "wildcard"), True),
        (("a..c", "wildcard"), ("..c", "wildcard"), False),
        (("a..c", "wildcard"), ("a..", "wildcard"), False),
        (("a..", "wildcard"), ("a..c", "wildcard"), True),
        (("a..c", "wildcard"), ("a", "prefix"), False),
        (("a..c", "wildcard"), ("a.b.c", "prefix"), False),
    ],
)
def test_which_rules_cover_a_subscription(
    rule: tuple[str, MatchPolicy], subscription: tuple[str, MatchPolicy], covered: bool
) -> None:
    assert _covers(HistoryRule(*rule), Subscription(1, *subscription)) is covered


@pytest.mark.parametrize(
    ("milliseconds", "text"),
    [
        (0, "1970-01-01T00:00:00.000Z"),
        (1_795_255_200_123, "2026-11-21T10:00:00.123Z"),
        (-1, "1969-12-31T23:59:59.999Z"),
    ],
)
def test_format_timestamp(milliseconds: int, text: str) -> None:
    assert format_timestamp(milliseconds) == text
    assert parse_timestamp(text) == milliseconds * 1000


@pytest.mark.parametrize(
    ("text", "micros"),
    [
        ("1970-01-01T00:00:01Z", 1_000_000),
        ("1970-01-01t00:00:01z", 1_000_000),
        ("1970-01-01 00:00:01Z", 1_000_000),
        ("1970-01-01T00:00:01.5Z", 1_500_000),
        ("1970-01-01T00:00:01.123456789Z", 1_123_456),
        ("1970-01-01T02:00:01+02:00", 1_000_000),
        ("1969-12-31T19:30:01-04:30", 1_000_000),
        ("2016-12-31T23:59:60Z", 1_483_228_800_000_000),  # leap second
        ("2017-01-01T00:00:00Z", 1_483_228_800_000_000),
    ],
)
def test_parse_timestamp(text: str, micros: int) -> None:
    assert parse_timestamp(text) == micros


@pytest.mark.parametrize(
    "text",
    [
        "",
        "yesterday",
        "1970-01-01",
        "1970-01-01T00:00:01",  # no offset
        "1970-01-01T00:00:01.Z",
        "2013-12-21T13:43:11:000Z",  # the old draft's form
        "1970-13-01T00:00:01Z",
        "1970-02-30T00:00:01Z",
        "1970-01-01T24:00:00Z",
        "1970-01-01T00:00:61Z",
        "1970-01-01T00:00:01+24:00",
        "1970-01-01T00:00:01+02:60",
        "١٩٧٠-01-01T00:00:01Z",  # not ASCII digits
        "1970-01-01T00:00:01Z ",
    ],
)
def test_parse_timestamp_refuses(text: str) -> None:
    with pytest.raises(ValueError):  # noqa: PT011
        parse_timestamp(text)


# -- event history: get_events ---------------------------------------------------------------


def test_history_per_subscription_as_in_the_spec() -> None:
    # The example of AP/ap_pubsub_event_history.md.
    hub = make_hub(("com.mycompany.log", "prefix", 100))
    wire = join(hub)
    auth, _ = subscribe(wire, "com.mycompany.log.auth")
    basket, _ = subscribe(wire, "com.mycompany.log.basket")
    log, _ = subscribe(wire, "com.mycompany.log", match="prefix")
    wire.take()
    pub = join(hub)
    topics = ["auth", "basket", "basket", "basket", "checkout"]
    ids = [publish(pub, f"com.mycompany.log.{topic}", n) for n, topic in enumerate(topics)]
    assert pubs(history(wire, auth)) == ids[:1]
    assert pubs(history(wire, basket)) == ids[1:4]
    events = history(wire, log)
    assert pubs(events) == ids
    assert [e["details"] for e in events] == [
        {"topic": f"com.mycompany.log.{topic}"} for topic in topics
    ]
    assert pubs(history(wire, log, topic="com.mycompany.log.basket")) == ids[1:4]
    assert history(wire, auth, topic="com.mycompany.log.basket") == []


def test_history_event_shape() -> None:
    hub = make_hub(("a", "prefix", 10), now=1_795_255_200.0)
    pub = join(hub, "pub", "admin", trust=2)
    hub.router.tick(1_795_255_200.1234)
    first = publish(pub, "a.b", "x", disclose_me=True)
    hub.router.tick(1_795_255_201.9996)
    pub.send(Publish(pub.req(), {"acknowledge": True}, "a.b", None, {"k": 1}))
    second = pub.one(Published).publication
    pub.send(Publish(pub.req(), {"acknowledge": True}, "a.b", [], {}))
    third = pub.one(Published).publication
    sub = join(hub)
    exact, _ = subscribe(sub, "a.b")
    wildcard, _ = subscribe(sub, "a.", match="wildcard")
    identity = {
        "publisher": pub.session_id,
        "publisher_authid": "pub",
        "publisher_authrole": "admin",
        "trustlevel": 2,
    }
    assert history(sub, exact) == [
        {
            "timestamp": "2026-11-21T10:00:00.123Z",
            "subscription": exact,
            "publication": first,
            "details": identity,
            "args": ["x"],
        },
        {
            "timestamp": "2026-11-21T10:00:01.999Z",
            "subscription": exact,
            "publication": second,
            "details": {"trustlevel": 2},
            "kwargs": {"k": 1},
        },
        {
            "timestamp": "2026-11-21T10:00:01.999Z",
            "subscription": exact,
            "publication": third,
            "details": {"trustlevel": 2},
            "args": [],
            "kwargs": {},
        },
    ]
    (event, _, _) = history(sub, wildcard)
    assert event["subscription"] == wildcard
    assert event["details"] == {**identity, "topic": "a.b"}


def test_history_is_kept_without_subscribers_and_outlives_them() -> None:
    hub = make_hub(("a.b", "exact", 10))
    pub = join(hub)
    before = publish(pub, "a.b", 1)
    sub = join(hub)
    subscribe(sub, "a.b")
    during = publish(pub, "a.b", 2)
    hub.drop(sub)
    after = publish(pub, "a.b", 3)
    hub.drop(pub)
    assert_clean(hub.router)
    again = join(hub)
    sub_id, _ = subscribe(again, "a.b")
    assert pubs(history(again, sub_id)) == [before, during, after]


def test_history_limit_is_per_rule() -> None:
    hub = make_hub(("a", "prefix", 3))
    pub = join(hub)
    sub = join(hub)
    ab, _ = subscribe(sub, "a.b")
    everything, _ = subscribe(sub, "a", match="prefix")
    ids = [publish(pub, topic) for topic in ("a.b", "a.b", "a.c", "a.b", "a.c")]
    assert pubs(history(sub, everything)) == ids[2:]
    assert pubs(history(sub, ab)) == [ids[3]]


def test_history_merges_covering_rules_without_duplicates() -> None:
    hub = make_hub(("a", "prefix", 2), ("a.b", "exact", 10), ("a.", "wildcard", 1))
    pub, sub = join(hub), join(hub)
    ab, _ = subscribe(sub, "a.b")
    ids = [publish(pub, topic) for topic in ("a.b", "a.b", "a.c", "a.b")]
    assert pubs(history(sub, ab)) == [ids[0], ids[1], ids[3]]
    assert pubs(history(sub, ab, reverse=True)) == [ids[3], ids[1], ids[0]]


def test_history_without_a_covering_rule_is_unavailable() -> None:
    hub = make_hub(("a.b", "exact", 10))
    wire = join(hub)
    sub_id, _ = subscribe(wire, "a", match="prefix")
    assert history_error(wire, [sub_id]) == HISTORY_UNAVAILABLE
    other = join(hub, realm="realm2")
    sub_id, _ = subscribe(other, "a.b")
    assert history_error(other, [sub_id]) == HISTORY_UNAVAILABLE


def test_history_of_an_unknown_subscription() -> None:
    hub = make_hub(("a.b", "exact", 10))
    wire = join(hub)
    sub_id, _ = subscribe(wire, "a.b")
    wire.send(Unsubscribe(wire.req(), sub_id))
    wire.take()
    assert history_error(wire, [sub_id]) == ErrorURI.NO_SUCH_SUBSCRIPTION
    # A subscription of another realm is unknown here.
    sub_id, _ = subscribe(wire, "a.b")
    assert history_error(join(hub, realm="realm2"), [sub_id]) == ErrorURI.NO_SUCH_SUBSCRIPTION


def test_history_access_hook() -> None:
    hub = make_hub(("a.b", "exact", 10))
    seen: list[tuple[RouterSession, Subscription]] = []

    def access(session: RouterSession, subscription: Subscription) -> bool:
        seen.append((session, subscription))
        return session.authrole == "admin"

    broker(hub).history_access = access
    user, admin = join(hub), join(hub, role="admin")
    sub_id, _ = subscribe(user, "a.b")
    assert history_error(user, [sub_id]) == ErrorURI.NOT_AUTHORIZED
    assert history(admin, sub_id) == []
    assert [(s, sub.id) for s, sub in seen] == [(user.slot, sub_id), (admin.slot, sub_id)]


def test_anyone_in_the_realm_may_read_a_history() -> None:
    # Not only the subscription's subscribers (authorization comes later).
    hub = make_hub(("a.b", "exact", 10))
    sub_id, _ = subscribe(join(hub), "a.b")
    assert history(join(hub), sub_id) == []


def test_history_honours_the_lists_for_the_requester() -> None:
    hub = make_hub(("a.b", "exact", 10))
    pub = join(hub, "pub")
    alice, bob, carol = join(hub, "alice", "admin"), join(hub, "bob"), join(hub, "carol")
    sub_id, _ = subscribe(alice, "a.b")
    admins = publish(pub, "a.b", eligible_authrole=["admin"])
    not_bob = publish(pub, "a.b", exclude_authid=["bob"])
    users = publish(pub, "a.b", eligible_authrole=["user"], exclude_authrole=[])
    open_ = publish(pub, "a.b")
    assert pubs(history(alice, sub_id)) == [admins, not_bob, open_]
    assert pubs(history(bob, sub_id)) == [users, open_]
    assert pubs(history(carol, sub_id)) == [not_bob, users, open_]


def test_history_skips_publications_with_session_lists() -> None:
    # AP/ap_pubsub_event_history.md: session IDs are ephemeral; such events are
    # not stored (they are still delivered).
    hub = make_hub(("a.b", "exact", 10))
    pub = join(hub)
    sub = join(hub)
    sub_id, _ = subscribe(sub, "a.b")
    publish(pub, "a.b", exclude=[pub.session_id])
    publish(pub, "a.b", eligible=[sub.session_id])
    publish(pub, "a.b", eligible=[])
    kept = [
        publish(pub, "a.b", exclude=[]),
        publish(pub, "a.b", exclude="nope"),
        publish(pub, "a.b", exclude_me=False),
    ]
    assert len(sub.take()) == 5
    assert pubs(history(sub, sub_id)) == kept


def test_publishers_read_their_own_events() -> None:
    # Publisher exclusion does not apply to the history.
    hub = make_hub(("a.b", "exact", 10))
    pub = join(hub)
    sub_id, _ = subscribe(pub, "a.b")
    own = publish(pub, "a.b")
    assert pubs(history(pub, sub_id)) == [own]


@pytest.fixture
def timed() -> tuple[Wire, int, list[int]]:
    """Events at t = 1000, 1001.5, 1003 (seconds); the reader, its subscription,
    the publications."""
    hub = make_hub(("t", "prefix", 100), now=1000.0)
    pub = join(hub)
    sub = join(hub)
    sub_id, _ = subscribe(sub, "t", match="prefix")
    ids = [publish(pub, "t.a", 0)]
    hub.router.tick(1001.5)
    ids.append(publish(pub, "t.b", 1))
    hub.router.tick(1003.0)
    ids.append(publish(pub, "t.a", 2))
    return sub, sub_id, ids


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({}, [0, 1, 2]),
        ({"from_time": "1970-01-01T00:16:41.500Z"}, [1, 2]),
        ({"after_time": "1970-01-01T00:16:41.500Z"}, [2]),
        ({"before_time": "1970-01-01T00:16:41.500Z"}, [0]),
        ({"until_time": "1970-01-01T00:16:41.500Z"}, [0, 1]),
        ({"from_time": "1970-01-01T01:16:41.5+01:00"}, [1, 2]),
        ({"from_time": "1970-01-01T00:16:41.5001Z"}, [2]),
        ({"until_time": "1970-01-01T00:16:41.4999Z"}, [0]),
        ({"from_time": "1970-01-01T00:16:41Z", "before_time": "1970-01-01T00:16:43Z"}, [1]),
        ({"after_time": "1970-01-01T00:16:43Z"}, []),
        ({"until_time": "1970-01-01T00:16:43Z"}, [0, 1, 2]),
        ({"topic": "t.a"}, [0, 2]),
        ({"topic": "t.c"}, []),
        ({"topic": "t.a", "from_time": "1970-01-01T00:16:41Z"}, [2]),
        ({"reverse": True}, [2, 1, 0]),
        ({"reverse": False}, [0, 1, 2]),
        ({"limit": 2}, [0, 1]),
        ({"limit": 5}, [0, 1, 2]),
        ({"reverse": True, "limit": 2}, [2, 1]),
        ({"reverse": True, "limit": 1, "topic": "t.b"}, [1]),
        ({"limit": 1, "after_time": "1970-01-01T00:16:40Z"}, [1]),
        # None counts as absent
        ({"reverse": None, "limit": None, "topic": None, "from_time": None}, [0, 1, 2]),
        ({"from_publication": None, "before_publication": None}, [0, 1, 2]),
    ],
)
def test_history_filters(
    timed: tuple[Wire, int, list[int]], filters: dict[str, Any], expected: list[int]
) -> None:
    sub, sub_id, ids = timed
    events = history(sub, sub_id, **filters)
    assert pubs(events) == [ids[i] for i in expected]
    assert [e["args"] for e in events] == [[i] for i in expected]


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({"from_publication": 1}, [1, 2, 3, 4]),
        ({"after_publication": 1}, [2, 3, 4]),
        ({"before_publication": 3}, [0, 1, 2]),
        ({"until_publication": 3}, [0, 1, 2, 3]),
        ({"from_publication": 1, "until_publication": 3}, [1, 2, 3]),
        ({"after_publication": 3, "before_publication": 1}, []),
        ({"after_publication": 1, "limit": 2}, [2, 3]),  # paging forwards
        ({"before_publication": 3, "reverse": True, "limit": 2}, [2, 1]),  # backwards
        ({"from_publication": 4, "reverse": True}, [4]),
        ({"after_publication": 2, "from_time": "1970-01-01T00:00:03Z"}, [3, 4]),
    ],
)
def test_history_publication_filters(filters: dict[str, Any], expected: list[int]) -> None:
    hub = make_hub(("p", "exact", 100))
    pub, sub = join(hub), join(hub)
    sub_id, _ = subscribe(sub, "p")
    ids = []
    for n in range(5):
        hub.router.tick(float(n))
        ids.append(publish(pub, "p", n))
    resolved = {
        key: ids[value] if key.endswith("_publication") else value for key, value in filters.items()
    }
    assert pubs(history(sub, sub_id, **resolved)) == [ids[i] for i in expected]


def test_publications_the_history_no_longer_holds_are_older_than_all() -> None:
    hub = make_hub(("p", "exact", 3), ("q", "exact", 10))
    pub, sub = join(hub), join(hub)
    sub_id, _ = subscribe(sub, "p")
    ids = [publish(pub, "p", n) for n in range(5)]  # keeps 2, 3, 4
    assert pubs(history(sub, sub_id)) == ids[2:]
    assert pubs(history(sub, sub_id, after_publication=ids[0])) == ids[2:]
    assert pubs(history(sub, sub_id, from_publication=ids[1])) == ids[2:]
    assert history(sub, sub_id, before_publication=ids[1]) == []
    assert history(sub, sub_id, until_publication=ids[0]) == []
    assert pubs(history(sub, sub_id, after_publication=ids[3])) == ids[4:]
    unknown = max(ids) + 1
    assert pubs(history(sub, sub_id, after_publication=unknown)) == ids[2:]
    # A publication another rule holds keeps its place.
    other = publish(pub, "q")
    last = publish(pub, "p", 5)
    assert pubs(history(sub, sub_id, after_publication=other)) == [last]
    assert pubs(history(sub, sub_id, before_publication=other)) == ids[3:]


@pytest.mark.parametrize(
    ("args", "kwargs"),
    [
        ([], None),
        (None, None),
        (["x"], None),
        ([True], None),
        ([0], None),
        ([1, 2], None),
        (["SUB"], {"reverse": "yes"}),
        (["SUB"], {"reverse": 1}),
        (["SUB"], {"limit": 0}),
        (["SUB"], {"limit": -1}),
        (["SUB"], {"limit": True}),
        (["SUB"], {"limit": 1.5}),
        (["SUB"], {"limit": "2"}),
        (["SUB"], {"from_time": 5}),
        (["SUB"], {"after_time": "yesterday"}),
        (["SUB"], {"before_time": "1970-13-01T00:00:00Z"}),
        (["SUB"], {"until_time": "1970-01-01T00:00:00+24:00"}),
        (["SUB"], {"topic": "a..b"}),
        (["SUB"], {"topic": 5}),
        (["SUB"], {"topic": "a.b."}),
        (["SUB"], {"from_publication": 0}),
        (["SUB"], {"after_publication": "1"}),
        (["SUB"], {"before_publication": True}),
        (["SUB"], {"until_publication": 2**53 + 1}),
        (["SUB"], {"since": "1970-01-01T00:00:00Z"}),
        (["SUB"], {"limit": 2, "details": {}}),
    ],
)
def test_get_events_refuses_bad_arguments(args: list[Any] | None, kwargs: dict[str, Any]) -> None:
    hub = make_hub(("a.b", "exact", 10))
    wire = join(hub)
    sub_id, _ = subscribe(wire, "a.b")
    if args == ["SUB"]:
        args = [sub_id]
    if args is None:
        wire.send(Call(wire.req(), {}, GET_EVENTS))
        assert wire.one(Error).error == ErrorURI.INVALID_ARGUMENT
        return
    assert history_error(wire, args, kwargs) == ErrorURI.INVALID_ARGUMENT


def test_get_events_through_a_client_session() -> None:
    hub = make_hub(("a", "prefix", 10))
    peer = hub.client()
    peer.client.subscribe("a", {"match": "prefix"})
    hub.pump()
    sub_id = only(peer, SubscribeSucceeded).subscription_id
    pub = join(hub)
    publication = publish(pub, "a.b", "hello")
    assert only(peer, EventReceived).publication_id == publication
    peer.client.call(GET_EVENTS, [sub_id], {"limit": 1})
    hub.pump()
    result = only(peer, ResultReceived)
    assert result.args == [
        [
            {
                "timestamp": "1970-01-01T00:00:00.000Z",
                "subscription": sub_id,
                "publication": publication,
                "details": {"topic": "a.b"},
                "args": ["hello"],
            }
        ]
    ]


# -- subscription revocation ---------------------------------------------------------------


class Recorder(RouterObserver):
    def __init__(self) -> None:
        self.calls: list[tuple[str, int, int]] = []

    def unsubscribed(self, session: RouterSession, subscription: Subscription) -> None:
        self.calls.append(("unsubscribed", session.session_id, subscription.id))

    def subscription_deleted(self, session: RouterSession, subscription: Subscription) -> None:
        self.calls.append(("subscription_deleted", session.session_id, subscription.id))


def test_revoke_removes_every_subscriber() -> None:
    # AP/ap_pubsub_subscription_revocation.md
    hub = make_hub()
    recorder = Recorder()
    hub.router.observers.append(recorder)
    told = hub.joined_wire(roles=REVOCABLE)
    untold = hub.joined_wire(roles=PLAIN)
    sub_id, _ = subscribe(told, "a.b")
    assert subscribe(untold, "a.b")[0] == sub_id
    other, _ = subscribe(told, "a.c")
    assert broker(hub).revoke(sub_id, "no longer authorized") is True
    notice = Unsubscribed(0, {"subscription": sub_id, "reason": "no longer authorized"})
    assert told.take() == [notice]
    # MUST NOT be sent to a subscriber without the feature.
    assert untold.take() == []
    assert recorder.calls == [
        ("unsubscribed", told.session_id, sub_id),
        ("unsubscribed", untold.session_id, sub_id),
        ("subscription_deleted", untold.session_id, sub_id),
    ]
    assert list(broker(hub).subscriptions) == [other]
    assert list(told.slot.subscriptions) == [other]
    assert untold.slot.subscriptions == {}
    # No more events; UNSUBSCRIBE for it is now an error.
    pub = join(hub)
    pub.send(Publish(1, {}, "a.b"))
    assert told.take() == untold.take() == []
    untold.send(Unsubscribe(untold.req(), sub_id))
    assert untold.one(Error).error == ErrorURI.NO_SUCH_SUBSCRIPTION
    # Subscribing again is allowed.
    again, _ = subscribe(untold, "a.b")
    pub.send(Publish(2, {}, "a.b"))
    assert untold.one(Event).subscription == again
    for wire in (told, untold, pub):
        hub.drop(wire)
    assert_clean(hub.router)


def test_revoke_without_reason() -> None:
    hub = make_hub()
    told = hub.joined_wire(roles=REVOCABLE)
    sub_id, _ = subscribe(told, "a", match="prefix")
    assert broker(hub).revoke(sub_id) is True
    assert told.take() == [Unsubscribed(0, {"subscription": sub_id})]
    assert broker(hub).subscriptions == {}


def test_revoke_one_subscriber() -> None:
    hub = make_hub()
    recorder = Recorder()
    hub.router.observers.append(recorder)
    one = hub.joined_wire(roles=REVOCABLE)
    two = hub.joined_wire(roles=REVOCABLE)
    sub_id, _ = subscribe(one, "a.b")
    subscribe(two, "a.b")
    assert broker(hub).revoke(sub_id, "bye", session=one.slot) is True
    assert one.take() == [Unsubscribed(0, {"subscription": sub_id, "reason": "bye"})]
    assert two.take() == []
    assert recorder.calls == [("unsubscribed", one.session_id, sub_id)]
    assert list(broker(hub).subscriptions[sub_id].subscribers) == [two.slot]
    # Not (or no longer) subscribed: nothing to revoke.
    assert broker(hub).revoke(sub_id, session=one.slot) is False
    assert one.take() == []


def test_revoke_unknown_subscription() -> None:
    hub = make_hub()
    assert broker(hub).revoke(12345) is False


def test_client_session_sees_the_revocation() -> None:
    hub = make_hub()
    peer = hub.client()
    peer.client.subscribe("a.b")
    hub.pump()
    sub_id = only(peer, SubscribeSucceeded).subscription_id
    broker(hub).revoke(sub_id, "admin")
    hub.pump()
    assert only(peer, SubscriptionRevoked) == SubscriptionRevoked(sub_id, "admin")
