"""The broker (wamp_core._broker): Publish & Subscribe through the router, in memory.

Harness: tests/core/test_router.py (``Hub`` carries ``ClientSession`` peers and
hand-driven ``Wire``s).
"""

from __future__ import annotations

import math
from typing import Any

import pytest

from tests.core.test_router import Hub, ScriptedAuth, only
from wamp_core import (
    Error,
    ErrorURI,
    Event,
    EventReceived,
    MessageType,
    Publish,
    Published,
    PublishSucceeded,
    Router,
    Serializer,
    Subscribe,
    Subscribed,
    SubscribeSucceeded,
    Unsubscribe,
    Unsubscribed,
    UnsubscribeSucceeded,
)
from wamp_core._broker import _id_list


def subscribe(hub: Hub, peer: Any, topic: str, options: dict[str, Any] | None = None) -> int:
    """Subscribe a ClientSession peer; return the subscription ID."""
    peer.client.subscribe(topic, options)
    hub.pump()
    return only(peer, SubscribeSucceeded).subscription_id


# -- subscribing ------------------------------------------------------------------------


def test_subscribe() -> None:
    hub = Hub()
    wire = hub.joined_wire()
    wire.send(Subscribe(1, {}, "com.topic"))
    subscribed = wire.one(Subscribed)
    assert subscribed.request == 1
    broker = hub.router.realms["realm1"].broker
    subscription = broker.subscriptions[subscribed.subscription]
    assert (subscription.id, subscription.uri, subscription.match) == (
        subscribed.subscription,
        "com.topic",
        "exact",
    )
    assert list(subscription.subscribers) == [wire.slot]
    assert list(wire.slot.subscriptions) == [subscribed.subscription]


def test_subscription_ids_are_shared_per_topic_and_policy() -> None:
    hub = Hub()
    one, two = hub.client(), hub.client()
    exact = subscribe(hub, one, "a.b")
    assert subscribe(hub, two, "a.b") == exact
    prefix = subscribe(hub, two, "a.b", {"match": "prefix"})
    assert prefix != exact
    assert subscribe(hub, one, "a.b", {"match": "prefix"}) == prefix
    assert subscribe(hub, one, "a.c") not in (exact, prefix)
    broker = hub.router.realms["realm1"].broker
    assert list(broker.subscriptions[exact].subscribers) == [one.slot, two.slot]


def test_subscribing_twice_gives_the_same_subscription_once() -> None:
    hub = Hub()
    sub, pub = hub.client(), hub.client()
    first = subscribe(hub, sub, "a.b")
    assert subscribe(hub, sub, "a.b") == first
    broker = hub.router.realms["realm1"].broker
    assert list(broker.subscriptions[first].subscribers) == [sub.slot]
    pub.client.publish("a.b")
    hub.pump()
    assert len(sub.take()) == 1


def test_reserved_topics_may_be_subscribed() -> None:
    # Meta events live under wamp.*; subscribing to them is legal.
    hub = Hub()
    assert subscribe(hub, hub.client(), "wamp.session.on_join") > 0


@pytest.mark.parametrize(
    ("topic", "options", "error"),
    [
        ("a..b", {}, ErrorURI.INVALID_URI),
        ("a b", {}, ErrorURI.INVALID_URI),
        ("a#b", {}, ErrorURI.INVALID_URI),
        ("", {}, ErrorURI.INVALID_URI),
        ("a.", {}, ErrorURI.INVALID_URI),
        ("a..b", {"match": "prefix"}, ErrorURI.INVALID_URI),
        ("a b", {"match": "wildcard"}, ErrorURI.INVALID_URI),
        ("a.b", {"match": "regex"}, ErrorURI.INVALID_ARGUMENT),
        ("a.b", {"match": 1}, ErrorURI.INVALID_ARGUMENT),
        ("a.b", {"match": ["exact"]}, ErrorURI.INVALID_ARGUMENT),
    ],
)
def test_subscribe_errors(topic: str, options: dict[str, Any], error: str) -> None:
    hub = Hub()
    wire = hub.joined_wire()
    wire.send(Subscribe(1, options, topic))
    reply = wire.one(Error)
    assert (reply.request_type, reply.request, reply.details, reply.error) == (
        MessageType.SUBSCRIBE,
        1,
        {},
        error,
    )
    assert reply.args is not None
    assert isinstance(reply.args[0], str)
    assert hub.router.realms["realm1"].broker.subscriptions == {}
    assert wire.slot.subscriptions == {}


# -- publishing ------------------------------------------------------------------------


def test_publish_reaches_every_subscriber_but_the_publisher() -> None:
    hub = Hub()
    pub, a, b = hub.client(), hub.client(), hub.client()
    sub_id = subscribe(hub, a, "a.b")
    subscribe(hub, b, "a.b")
    subscribe(hub, pub, "a.b")
    pub.client.publish("a.b", [1, "two"], {"three": 3})
    hub.pump()
    assert pub.take() == []
    for peer in (a, b):
        event = only(peer, EventReceived)
        assert (event.subscription_id, event.args, event.kwargs, event.details) == (
            sub_id,
            [1, "two"],
            {"three": 3},
            {},
        )


def test_exclude_me_false_includes_the_publisher() -> None:
    hub = Hub()
    pub, other = hub.client(), hub.client()
    subscribe(hub, pub, "a.b")
    subscribe(hub, other, "a.b")
    pub.client.publish("a.b", options={"exclude_me": False})
    hub.pump()
    assert isinstance(only(pub, EventReceived), EventReceived)
    assert isinstance(only(other, EventReceived), EventReceived)
    # Any value but false keeps the default.
    pub.client.publish("a.b", options={"exclude_me": 0})
    hub.pump()
    assert pub.take() == []


@pytest.mark.parametrize("subscribed", [False, True])
def test_acknowledged_publication(subscribed: bool) -> None:
    hub = Hub()
    pub, sub = hub.client(), hub.client()
    if subscribed:
        subscribe(hub, sub, "a.b")
    request = pub.client.publish("a.b", ["x"], acknowledge=True)
    hub.pump()
    ack = only(pub, PublishSucceeded)
    assert ack.request_id == request
    if subscribed:
        assert only(sub, EventReceived).publication_id == ack.publication_id
    else:
        assert sub.take() == []


def test_publication_ids_are_fresh() -> None:
    hub = Hub()
    wire = hub.joined_wire()
    wire.send(*(Publish(wire.req(), {"acknowledge": True}, "a.b") for _ in range(5)))
    acks = wire.take()
    publications = {ack.publication for ack in acks if isinstance(ack, Published)}
    assert len(publications) == 5
    assert all(1 <= p <= 2**53 for p in publications)


@pytest.mark.parametrize("topic", ["a..b", "a b", "wamp.session.on_join", "wamp", ""])
def test_publish_errors_only_when_acknowledged(topic: str) -> None:
    hub = Hub()
    wire = hub.joined_wire()
    sub = hub.joined_wire()
    sub.send(Subscribe(1, {}, "wamp.session.on_join"))
    sub.take()
    wire.send(Publish(1, {}, topic, ["x"]))
    assert wire.take() == []
    wire.send(Publish(2, {"acknowledge": True}, topic, ["x"]))
    assert wire.take() == [
        Error(MessageType.PUBLISH, 2, {}, ErrorURI.INVALID_URI, [f"invalid topic URI {topic!r}"])
    ]
    assert sub.take() == []


def test_unacknowledged_publication_gets_no_reply() -> None:
    hub = Hub()
    wire = hub.joined_wire()
    wire.send(Publish(1, {}, "a.b"), Publish(2, {"acknowledge": "yes"}, "a.b"))
    assert wire.take() == []


def test_pattern_subscriptions_get_the_topic() -> None:
    hub = Hub()
    pub, sub = hub.client(), hub.client()
    exact = subscribe(hub, sub, "a.b.c")
    prefix = subscribe(hub, sub, "a.b", {"match": "prefix"})
    wildcard = subscribe(hub, sub, "a..c", {"match": "wildcard"})
    wildcard2 = subscribe(hub, sub, "..c", {"match": "wildcard"})
    subscribe(hub, sub, "a.b.d", {"match": "prefix"})  # does not match
    subscribe(hub, sub, "a..d", {"match": "wildcard"})  # does not match
    subscribe(hub, sub, "x.y", {"match": "wildcard"})  # other length
    pub.client.publish("a.b.c", ["payload"])
    hub.pump()
    events = sub.take()
    assert all(isinstance(e, EventReceived) for e in events)
    got = {e.subscription_id: e for e in events if isinstance(e, EventReceived)}
    assert set(got) == {exact, prefix, wildcard, wildcard2}
    assert len(events) == 4
    assert len({e.publication_id for e in got.values()}) == 1
    assert got[exact].details == {}
    for sub_id in (prefix, wildcard, wildcard2):
        assert got[sub_id].details == {"topic": "a.b.c"}
        assert got[sub_id].topic == "a.b.c"
        assert got[sub_id].args == ["payload"]


def test_prefix_match_is_a_string_prefix() -> None:
    hub = Hub()
    pub, sub = hub.client(), hub.client()
    subscribe(hub, sub, "a.b", {"match": "prefix"})
    pub.client.publish("a.bc")
    pub.client.publish("a.c")
    hub.pump()
    assert [e.topic for e in sub.take() if isinstance(e, EventReceived)] == ["a.bc"]


def test_disclose_me() -> None:
    hub = Hub(Router(["realm1"], authenticator=ScriptedAuth()))
    pub = hub.client(authid="alice", authextra={"role": "admin"})
    sub = hub.client()
    subscribe(hub, sub, "a.b")
    subscribe(hub, sub, "a", {"match": "prefix"})
    pub.client.publish("a.b", options={"disclose_me": True})
    pub.client.publish("a.b", options={"disclose_me": "yes"})
    hub.pump()
    first, second, third, fourth = sub.take()
    identity = {
        "publisher": pub.client.session_id,
        "publisher_authid": "alice",
        "publisher_authrole": "admin",
    }
    assert isinstance(first, EventReceived)
    assert isinstance(second, EventReceived)
    assert first.details == identity
    assert second.details == {**identity, "topic": "a.b"}
    assert isinstance(third, EventReceived)
    assert isinstance(fourth, EventReceived)
    assert third.details == {}
    assert fourth.details == {"topic": "a.b"}


# -- black- and whitelisting -----------------------------------------------------------

# Subscribers: s1 = alice/admin, s2 = bob/user, s3 = carol/user. "S1".."S3" in an
# option stand for their session IDs.
LISTING_CASES: list[tuple[dict[str, Any], set[str]]] = [
    ({}, {"s1", "s2", "s3"}),
    ({"exclude": ["S1"]}, {"s2", "s3"}),
    ({"exclude": ["S1", "S3"]}, {"s2"}),
    ({"exclude_authid": ["bob"]}, {"s1", "s3"}),
    ({"exclude_authrole": ["user"]}, {"s1"}),
    ({"eligible": ["S1", "S2"]}, {"s1", "s2"}),
    ({"eligible_authid": ["carol"]}, {"s3"}),
    ({"eligible_authrole": ["user"]}, {"s2", "s3"}),
    ({"eligible": []}, set()),
    ({"exclude": []}, {"s1", "s2", "s3"}),
    ({"eligible_authrole": ["user"], "exclude": ["S2"]}, {"s3"}),
    ({"eligible": ["S1", "S2"], "eligible_authid": ["bob", "carol"]}, {"s2"}),
    ({"eligible_authid": ["alice", "bob"], "eligible_authrole": ["user"]}, {"s2"}),
    ({"exclude_authid": ["alice"], "exclude_authrole": ["user"]}, set()),
    ({"eligible": ["S3"], "exclude_authrole": ["user"]}, set()),
    # Values that are not lists are ignored.
    ({"eligible": "S1"}, {"s1", "s2", "s3"}),
    ({"exclude": 5}, {"s1", "s2", "s3"}),
    ({"exclude_authid": {"alice": 1}}, {"s1", "s2", "s3"}),
    ({"eligible_authrole": "user"}, {"s1", "s2", "s3"}),
    # Items that cannot be IDs or names (unhashable ones too) are ignored.
    ({"exclude": [["S1"], {"x": 1}, "S2", None, 1.5]}, {"s1", "s3"}),
    ({"eligible_authid": [["alice"]]}, set()),
    ({"eligible_authid": ["alice", {"bob": 1}]}, {"s1"}),
]


@pytest.mark.parametrize(("options", "expected"), LISTING_CASES)
def test_black_and_white_listing(options: dict[str, Any], expected: set[str]) -> None:
    hub = Hub(Router(["realm1"], authenticator=ScriptedAuth()))
    pub = hub.client(authid="pub", authextra={"role": "user"})
    subs = {
        "s1": hub.client(authid="alice", authextra={"role": "admin"}),
        "s2": hub.client(authid="bob", authextra={"role": "user"}),
        "s3": hub.client(authid="carol", authextra={"role": "user"}),
    }
    for peer in subs.values():
        subscribe(hub, peer, "a.b")
    names = {name.upper(): peer.client.session_id for name, peer in subs.items()}

    def resolve(value: Any) -> Any:
        if isinstance(value, list):
            return [resolve(item) for item in value]
        return names.get(value, value) if isinstance(value, str) else value

    pub.client.publish("a.b", ["hi"], options={k: resolve(v) for k, v in options.items()})
    hub.pump()
    got = {name for name, peer in subs.items() if peer.take()}
    assert got == expected


def test_exclude_me_false_still_honours_the_lists() -> None:
    hub = Hub()
    pub = hub.client()
    subscribe(hub, pub, "a.b")
    pub.client.publish("a.b", options={"exclude_me": False, "exclude": [pub.client.session_id]})
    pub.client.publish("a.b", options={"exclude_me": False, "eligible": []})
    hub.pump()
    assert pub.take() == []


def test_id_list() -> None:
    assert _id_list(None) is None
    assert _id_list("a") is None
    assert _id_list([1, "a", [2], {}, None, 2.5]) == {1, "a"}


# -- unsubscribing ---------------------------------------------------------------------


def test_unsubscribe() -> None:
    hub = Hub()
    pub, sub, other = hub.client(), hub.client(), hub.client()
    sub_id = subscribe(hub, sub, "a.b")
    assert subscribe(hub, other, "a.b") == sub_id
    request = sub.client.unsubscribe(sub_id)
    hub.pump()
    assert sub.take() == [UnsubscribeSucceeded(request, sub_id)]
    broker = hub.router.realms["realm1"].broker
    assert list(broker.subscriptions[sub_id].subscribers) == [other.slot]
    assert sub.slot.subscriptions == {}
    pub.client.publish("a.b")
    hub.pump()
    assert sub.take() == []
    assert len(other.take()) == 1


def test_unsubscribe_reply_is_exact() -> None:
    wire = Hub().joined_wire()
    wire.send(Subscribe(1, {}, "a.b"))
    sub_id = wire.one(Subscribed).subscription
    wire.send(Unsubscribe(2, sub_id))
    assert wire.take() == [Unsubscribed(2)]


@pytest.mark.parametrize("whose", ["unknown", "foreign", "already_left"])
def test_unsubscribe_errors(whose: str) -> None:
    hub = Hub()
    owner = hub.joined_wire()
    owner.send(Subscribe(owner.req(), {}, "a.b"))
    sub_id = owner.one(Subscribed).subscription
    wire = hub.joined_wire()
    if whose == "unknown":
        sub_id += 1
    elif whose == "already_left":
        wire.send(Subscribe(wire.req(), {}, "a.b"), Unsubscribe(wire.req(), sub_id))
        wire.take()
    request = wire.req()
    wire.send(Unsubscribe(request, sub_id))
    assert wire.take() == [
        Error(
            MessageType.UNSUBSCRIBE,
            request,
            {},
            ErrorURI.NO_SUCH_SUBSCRIPTION,
            [f"no subscription {sub_id} for this session"],
        )
    ]
    broker = hub.router.realms["realm1"].broker
    assert list(broker.subscriptions) == [sub_id - (whose == "unknown")]


@pytest.mark.parametrize("how", ["unsubscribe", "goodbye", "detach"])
def test_subscription_is_deleted_with_its_last_subscriber(how: str) -> None:
    hub = Hub()
    sub = hub.client()
    for topic, match in (("a.b", "exact"), ("a", "prefix"), ("a..c", "wildcard")):
        subscribe(hub, sub, topic, {"match": match})
    broker = hub.router.realms["realm1"].broker
    assert len(broker.subscriptions) == 3
    if how == "unsubscribe":
        for sub_id in list(sub.client.subscriptions):
            sub.client.unsubscribe(sub_id)
        hub.pump()
    elif how == "goodbye":
        sub.client.leave()
        hub.pump()
    else:
        hub.drop(sub)
    assert broker.subscriptions == {}
    assert len(broker._table) == 0
    assert sub.slot.subscriptions == {}


# -- delivery --------------------------------------------------------------------------


def test_events_keep_the_publishers_order_across_topics() -> None:
    hub = Hub()
    pub, sub = hub.client(), hub.client()
    subscribe(hub, sub, "t.a")
    subscribe(hub, sub, "t.b")
    for i in range(50):
        pub.client.publish("t.a" if i % 2 else "t.b", [i])
    hub.pump()
    events = sub.take()
    assert [e.args for e in events if isinstance(e, EventReceived)] == [[i] for i in range(50)]


@pytest.mark.parametrize("publisher", ["json", "msgpack", "cbor"])
def test_binary_payload_crosses_serializers(publisher: str) -> None:
    hub = Hub()
    pub = hub.client(publisher)
    subs = [hub.client(c) for c in ("json", "msgpack", "cbor", "wamp.2.json.batched")]
    for peer in subs:
        subscribe(hub, peer, "a.b")
    pub.client.publish("a.b", [b"\x00\xffbin", "text"], {"k": b"v"})
    hub.pump()
    for peer in subs:
        event = only(peer, EventReceived)
        assert event.args == [b"\x00\xffbin", "text"]
        assert isinstance(event.args[0], bytes)
        assert event.kwargs == {"k": b"v"}
        assert isinstance(event.kwargs["k"], bytes)


def test_a_fan_out_encodes_each_event_once_per_codec(monkeypatch: pytest.MonkeyPatch) -> None:
    hub = Hub()
    pub = hub.client()
    codecs = ["json", "json", "json", "msgpack", "msgpack", "wamp.2.json.batched", "cbor"]
    subs = [hub.client(c) for c in codecs]
    for peer in subs:
        subscribe(hub, peer, "a.b")
    subscribe(hub, subs[0], "a", {"match": "prefix"})  # a second EVENT (other details)
    encoded: list[str] = []
    original = Serializer.dumps

    def spy(self: Serializer, obj: Any) -> bytes:
        if isinstance(obj, list) and obj[:1] == [MessageType.EVENT]:
            encoded.append(self.codec)
        return original(self, obj)

    monkeypatch.setattr(Serializer, "dumps", spy)
    pub.client.publish("a.b", ["x"])
    hub.pump()
    assert sorted(encoded) == ["cbor", "json", "json", "msgpack"]
    assert len(subs[0].take()) == 2
    for peer in subs[1:]:
        assert len(peer.take()) == 1


@pytest.mark.parametrize(
    ("publisher", "payload", "failing"),
    [
        ("cbor", 2**70, {"msgpack"}),  # a bignum msgpack has no room for
        ("msgpack", math.nan, {"json"}),  # JSON has no NaN
        ("cbor", math.inf, {"json"}),
        ("json", "\ud800", {"json", "msgpack", "cbor"}),  # a lone surrogate
    ],
)
def test_a_payload_a_subscriber_cannot_encode_is_dropped_for_it_only(
    publisher: str, payload: Any, failing: set[str]
) -> None:
    hub = Hub()
    pub = hub.joined_wire(publisher)
    subs = {codec: hub.joined_wire(codec) for codec in ("json", "msgpack", "cbor")}
    for wire in subs.values():
        wire.send(Subscribe(wire.req(), {}, "a.b"))
        wire.take()
    # The publisher's own serializer decoded it, so it came in like this:
    pub.send(Publish(pub.req(), {"acknowledge": True}, "a.b", ["ok", payload]))
    assert isinstance(pub.one(Published), Published)
    for codec, wire in subs.items():
        out = wire.take()
        if codec in failing:
            assert out == []
        else:
            (event,) = out
            assert isinstance(event, Event)
            assert event.args is not None
            assert event.args[0] == "ok"
    # The subscribers that missed it still get the next one.
    pub.send(Publish(pub.req(), {}, "a.b", ["next"]))
    for wire in subs.values():
        assert wire.one(Event).args == ["next"]


def test_subscriber_without_subscriber_role_still_gets_events() -> None:
    # The broker does not police roles; the subscription is what counts.
    hub = Hub()
    pub = hub.joined_wire()
    sub = hub.joined_wire(roles={"publisher": {}})
    sub.send(Subscribe(1, {}, "a.b"))
    sub.take()
    pub.send(Publish(1, {}, "a.b"))
    assert isinstance(sub.one(Event), Event)
