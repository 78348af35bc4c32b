"""Basic Profile Publish & Subscribe (BP/bp_pubsub_*.md, BP/bp_ordering_guarantees.md,
BP/bp_uris.md, BP/uri_reference.md).

Every scenario uses its own topics under ``com.wamp_conformance.pubsub.``.
"""

from __future__ import annotations

import random
from typing import Any

from wamp_core import (
    MAX_ID,
    Event,
    MessageType,
    Publish,
    Published,
    Subscribe,
    Subscribed,
    Unsubscribe,
    Unsubscribed,
    is_valid_uri,
)

from .._peer import Peer, describe
from .._suite import Context, scenario
from ._common import expect_error, in_range, payload, same

SPEC_SUBSCRIBE = "BP/bp_pubsub_subscribing_and_unsubscribing.md"
SPEC_PUBLISH = "BP/bp_pubsub_publishing_and_events.md"
SPEC_ORDERING = "BP/bp_ordering_guarantees.md, Publish & Subscribe Ordering"
SPEC_URIS = "BP/uri_reference.md"

INVALID_URI = "wamp.error.invalid_uri"
NO_SUCH_SUBSCRIPTION = "wamp.error.no_such_subscription"

# Invalid under both the strict and the loose URI rules (whitespace).
BAD_TOPIC = "com.wamp_conformance.pubsub.bad topic"

# A payload of every type all three serializers carry alike.
SAMPLE_ARGS: list[Any] = [
    "Hello, world!",
    "ünïcödé ✓",
    0,
    -7,
    2**40,
    1.5,
    True,
    False,
    None,
    [1, [2, {"x": 3}]],
    {},
]
SAMPLE_KWARGS: dict[str, Any] = {
    "color": "orange",
    "sizes": [23, 42, 7],
    "nested": {"a": None, "b": [True, 2.25]},
    "empty": [],
}


def topic(name: str) -> str:
    """This family's URI for ``name``."""
    return f"com.wamp_conformance.pubsub.{name}"


async def subscribe(ctx: Context, peer: Peer, uri: str, **options: Any) -> int:
    """SUBSCRIBE ``uri``; SUBSCRIBED for the request expected, with an ID in range."""
    request = peer.req()
    await peer.send(Subscribe(request, options, uri))
    reply = await peer.expect(Subscribed, what=f"in reply to SUBSCRIBE {uri}")
    ctx.check(
        reply.request == request,
        f"{peer.name}: SUBSCRIBED.Request is {reply.request}, expected {request}"
        f" (the SUBSCRIBE's request ID; {SPEC_SUBSCRIBE}, SUBSCRIBED)",
    )
    ctx.check(
        in_range(reply.subscription),
        f"{peer.name}: SUBSCRIBED.Subscription {reply.subscription} is not an ID in 1..2^53",
    )
    return reply.subscription


async def publish_acknowledged(
    ctx: Context,
    peer: Peer,
    uri: str,
    args: list[Any] | None = None,
    kwargs: dict[str, Any] | None = None,
    **options: Any,
) -> int:
    """PUBLISH with ``acknowledge``; the publication ID from PUBLISHED. EVENTs
    the publisher receives first are a failure (it never gets its own)."""
    request = peer.req()
    await peer.send(Publish(request, {**options, "acknowledge": True}, uri, args, kwargs))
    reply = await peer.expect(Published, what=f"in reply to PUBLISH {uri} with acknowledge")
    ctx.check(
        reply.request == request,
        f"{peer.name}: PUBLISHED.Request is {reply.request}, expected {request}"
        f" (the PUBLISH's request ID; {SPEC_PUBLISH}, PUBLISHED)",
    )
    ctx.check(
        in_range(reply.publication),
        f"{peer.name}: PUBLISHED.Publication {reply.publication} is not an ID in 1..2^53",
    )
    return reply.publication


async def expect_event(ctx: Context, peer: Peer, subscription: int, what: str = "") -> Event:
    """The next message must be an EVENT for ``subscription``, with a
    publication ID in range and dict Details."""
    event = await peer.expect(Event, what=what)
    ctx.check(
        event.subscription == subscription,
        f"{peer.name}: EVENT.Subscription is {event.subscription}, expected {subscription}"
        f" (the ID SUBSCRIBED handed out; {SPEC_PUBLISH}, EVENT)",
    )
    ctx.check(
        in_range(event.publication),
        f"{peer.name}: EVENT.Publication {event.publication} is not an ID in 1..2^53",
    )
    ctx.check(
        isinstance(event.details, dict),
        f"{peer.name}: EVENT.Details is {event.details!r}, not a dict",
    )
    return event


# -- subscribing ------------------------------------------------------------------------


@scenario(
    "pubsub.subscribe.subscribed",
    "SUBSCRIBE is answered with SUBSCRIBED for its request and a subscription ID in range",
    f"{SPEC_SUBSCRIBE}, SUBSCRIBED",
)
async def subscribed(ctx: Context) -> None:
    peer = await ctx.peer()
    await subscribe(ctx, peer, topic("subscribed"))


@scenario(
    "pubsub.subscribe.distinct_topics",
    "Subscriptions to different topics get different IDs, and events come under the right one",
    f"{SPEC_SUBSCRIBE}, SUBSCRIBED; {SPEC_PUBLISH}, EVENT",
)
async def distinct_topics(ctx: Context) -> None:
    subscriber, publisher = await ctx.peers(2)
    first = await subscribe(ctx, subscriber, topic("distinct.one"))
    second = await subscribe(ctx, subscriber, topic("distinct.two"))
    ctx.check(
        first != second,
        f"two different topics got the same subscription ID {first}: events could not"
        " be told apart",
    )
    await publish_acknowledged(ctx, publisher, topic("distinct.two"), ["two"])
    event = await expect_event(ctx, subscriber, second, "for the second topic")
    ctx.check(event.args == ["two"], f"EVENT.Args is {event.args!r}, expected ['two']")
    await publish_acknowledged(ctx, publisher, topic("distinct.one"), ["one"])
    event = await expect_event(ctx, subscriber, first, "for the first topic")
    ctx.check(event.args == ["one"], f"EVENT.Args is {event.args!r}, expected ['one']")


async def _both_get_publication(ctx: Context, name: str, mismatch: str, args: list[Any]) -> None:
    """Two subscribers of ``topic(name)`` must each get the EVENT of an
    acknowledged publication, with PUBLISHED's publication ID (``mismatch``
    words a wrong one; ``{publication}`` is that ID)."""
    first, second, publisher = await ctx.peers(3)
    uri = topic(name)
    ids = [await subscribe(ctx, peer, uri) for peer in (first, second)]
    publication = await publish_acknowledged(ctx, publisher, uri, args)
    for peer, subscription in zip((first, second), ids):
        event = await expect_event(ctx, peer, subscription)
        ctx.check(
            event.publication == publication,
            f"{peer.name}: EVENT.Publication is {event.publication}, "
            + mismatch.format(publication=publication),
        )


@scenario(
    "pubsub.subscribe.shared_topic",
    "Two sessions subscribed to one topic each get its event under their own SUBSCRIBED ID",
    f"{SPEC_SUBSCRIBE}, SUBSCRIBED (note on shared IDs); {SPEC_PUBLISH}, EVENT",
)
async def shared_topic(ctx: Context) -> None:
    # The spec lets the broker share one ID per topic or give each subscriber
    # its own: both are accepted, as long as each gets events under its ID.
    await _both_get_publication(
        ctx,
        "shared",
        "expected {publication} (PUBLISHED.Publication; " + SPEC_PUBLISH + ", EVENT)",
        ["shared"],
    )


@scenario(
    "pubsub.subscribe.repeat",
    "A repeated SUBSCRIBE to the same topic gets the existing subscription ID",
    f"{SPEC_SUBSCRIBE}, SUBSCRIBED",
)
async def repeat_subscribe(ctx: Context) -> None:
    peer = await ctx.peer()
    uri = topic("repeat")
    first = await subscribe(ctx, peer, uri)
    second = await subscribe(ctx, peer, uri)
    if second != first:  # a SHOULD: not followed, but not a violation
        ctx.skip(
            f"a repeated SUBSCRIBE got a new subscription ID ({second}, first {first});"
            " the spec says the broker SHOULD answer with the existing one"
        )


@scenario(
    "pubsub.subscribe.invalid_uri",
    "SUBSCRIBE to an invalid topic URI gets ERROR wamp.error.invalid_uri",
    f"{SPEC_URIS}; BP/bp_uris.md, Incorrect URIs",
)
async def subscribe_invalid_uri(ctx: Context) -> None:
    assert not is_valid_uri(BAD_TOPIC)
    peer = await ctx.peer()
    request = peer.req()
    await peer.send(Subscribe(request, {}, BAD_TOPIC))
    await expect_error(
        ctx, peer, MessageType.SUBSCRIBE, request, INVALID_URI,
        what=f"in reply to SUBSCRIBE {BAD_TOPIC!r}",
    )  # fmt: skip


# -- publishing -------------------------------------------------------------------------

_SHAPES: dict[str, tuple[list[Any] | None, dict[str, Any] | None]] = {
    "none": (None, None),
    "args": (SAMPLE_ARGS, None),
    "args_kwargs": (SAMPLE_ARGS, SAMPLE_KWARGS),
    "kwargs": ([], SAMPLE_KWARGS),
}


def _payload_scenario(shape: str, args: list[Any] | None, kwargs: dict[str, Any] | None) -> None:
    described = {
        "none": "no payload",
        "args": "positional arguments",
        "args_kwargs": "positional and keyword arguments",
        "kwargs": "keyword arguments only",
    }[shape]

    @scenario(
        f"pubsub.event.payload.{shape}",
        f"A subscriber gets the EVENT of a PUBLISH with {described}: IDs, Details, exact payload",
        f"{SPEC_PUBLISH}, EVENT",
    )
    async def event_payload(ctx: Context) -> None:
        subscriber, publisher = await ctx.peers(2)
        uri = topic(f"payload.{shape}")
        subscription = await subscribe(ctx, subscriber, uri)
        publication = await publish_acknowledged(ctx, publisher, uri, args, kwargs)
        event = await expect_event(ctx, subscriber, subscription)
        ctx.check(
            event.publication == publication,
            f"EVENT.Publication is {event.publication}, expected {publication}"
            " (PUBLISHED.Publication)",
        )
        got, sent = payload(event.args, event.kwargs), payload(args, kwargs)
        ctx.check(
            same(got, sent),
            f"EVENT payload is Args={event.args!r} Kwargs={event.kwargs!r}, expected the"
            f" PUBLISH's Args={args!r} Kwargs={kwargs!r}",
        )


for _shape, (_args, _kwargs) in _SHAPES.items():
    _payload_scenario(_shape, _args, _kwargs)


@scenario(
    "pubsub.publish.exclude_publisher",
    "A publisher subscribed to its own topic does not receive its own event",
    f"{SPEC_PUBLISH}, EVENT",
)
async def exclude_publisher(ctx: Context) -> None:
    publisher, subscriber = await ctx.peers(2)
    uri = topic("exclude_publisher")
    await subscribe(ctx, publisher, uri)
    subscription = await subscribe(ctx, subscriber, uri)
    request = publisher.req()
    await publisher.send(Publish(request, {"acknowledge": True}, uri, ["mine"]))
    # PUBLISHED and the other subscriber's EVENT may come in either order.
    await expect_event(ctx, subscriber, subscription, "on the other subscriber")
    reply = await publisher.receive()
    if isinstance(reply, Event):
        ctx.fail(
            f"the publisher received its own event {describe(reply)}; BP: the publisher"
            " never receives its own event, even when subscribed (exclude_me defaults to true)"
        )
    if not (isinstance(reply, Published) and reply.request == request):
        ctx.fail(f"expected PUBLISHED for request {request}, got {describe(reply)}")
    item = await publisher.receive(0.3)
    if isinstance(item, Event):
        ctx.fail(f"the publisher received its own event {describe(item)}")
    ctx.check(item is None, f"expected nothing more for the publisher, got {describe(item)}")


@scenario(
    "pubsub.publish.acknowledge",
    "PUBLISH with acknowledge gets PUBLISHED with its request and the publication ID of the EVENTs",
    f"{SPEC_PUBLISH}, PUBLISHED",
)
async def acknowledge(ctx: Context) -> None:
    await _both_get_publication(
        ctx,
        "acknowledge",
        "but PUBLISHED.Publication is {publication} (both are the publication's ID)",
        ["ack"],
    )


@scenario(
    "pubsub.publish.unacknowledged",
    "PUBLISH without acknowledge gets no PUBLISHED",
    f"{SPEC_PUBLISH}, PUBLISH",
)
async def unacknowledged(ctx: Context) -> None:
    subscriber, publisher = await ctx.peers(2)
    uri = topic("unacknowledged")
    subscription = await subscribe(ctx, subscriber, uri)
    quiet = publisher.req()
    await publisher.send(Publish(quiet, {}, uri, ["quiet"]))
    event = await expect_event(ctx, subscriber, subscription)
    ctx.check(event.args == ["quiet"], f"EVENT.Args is {event.args!r}, expected ['quiet']")
    # A second, acknowledged publication: its PUBLISHED must be the only one.
    await _expect_only_published(ctx, publisher, uri, quiet, "without acknowledge")


async def _expect_only_published(
    ctx: Context, publisher: Peer, uri: str, quiet: int, why: str
) -> None:
    """Publish to ``uri`` with acknowledge: the publisher's next message must be
    that PUBLISHED -- no reply of any kind to the unacknowledged request ``quiet``."""
    loud = publisher.req()
    await publisher.send(Publish(loud, {"acknowledge": True}, uri))
    reply = await publisher.receive()
    if isinstance(reply, Published) and reply.request == loud:
        return
    if getattr(reply, "request", None) == quiet:
        ctx.fail(
            f"the PUBLISH {why} (request {quiet}) was answered with {describe(reply)};"
            f" unacknowledged publications get no reply ({SPEC_PUBLISH}, PUBLISH)"
        )
    ctx.fail(f"expected PUBLISHED for the acknowledged request {loud}, got {describe(reply)}")


@scenario(
    "pubsub.publish.invalid_uri",
    "PUBLISH with acknowledge to an invalid topic URI gets ERROR wamp.error.invalid_uri",
    f"{SPEC_URIS}; BP/bp_uris.md, Incorrect URIs; {SPEC_PUBLISH}, Publish ERROR",
)
async def publish_invalid_uri(ctx: Context) -> None:
    peer = await ctx.peer()
    request = peer.req()
    await peer.send(Publish(request, {"acknowledge": True}, BAD_TOPIC, ["x"]))
    await expect_error(
        ctx, peer, MessageType.PUBLISH, request, INVALID_URI,
        what=f"in reply to PUBLISH {BAD_TOPIC!r} with acknowledge",
    )  # fmt: skip


@scenario(
    "pubsub.publish.invalid_uri_unacknowledged",
    "PUBLISH without acknowledge to an invalid topic URI gets no reply",
    f"{SPEC_PUBLISH}, PUBLISH (unacknowledged: no response either way)",
)
async def publish_invalid_uri_quiet(ctx: Context) -> None:
    peer = await ctx.peer()
    quiet = peer.req()
    await peer.send(Publish(quiet, {}, BAD_TOPIC, ["x"]))
    await _expect_only_published(
        ctx, peer, topic("invalid_uri_unacknowledged"), quiet, "to an invalid URI"
    )


# -- ordering ---------------------------------------------------------------------------

ORDERED_COUNT = 20


async def _check_order(ctx: Context, peer: Peer, ids: dict[int, str]) -> None:
    """``peer`` must get ORDERED_COUNT events carrying 0, 1, ... in that order,
    each under the subscription of the topic it was published to."""
    for expected in range(ORDERED_COUNT):
        event = await peer.expect(Event, what=f"(event {expected} of {ORDERED_COUNT})")
        ctx.check(
            event.subscription in ids,
            f"{peer.name}: EVENT.Subscription {event.subscription} is none of {sorted(ids)}",
        )
        got = event.args[0] if event.args else None
        ctx.check(
            got == expected,
            f"{peer.name}: expected event {expected}, got event {got!r}: events of one"
            f" publisher must arrive in publication order ({SPEC_ORDERING})",
        )
        wanted = topic_for(ids, expected)
        ctx.check(
            ids[event.subscription] == wanted,
            f"{peer.name}: event {expected} came under the subscription of"
            f" {ids[event.subscription]}, not {wanted}",
        )


def topic_for(ids: dict[int, str], index: int) -> str:
    """The topic event ``index`` goes to: the topics of ``ids`` in turn."""
    topics = sorted(set(ids.values()))
    return topics[index % len(topics)]


async def _ordering(ctx: Context, topics: list[str], subscribers: int) -> None:
    peers = await ctx.peers(subscribers + 1)
    publisher, receivers = peers[0], peers[1:]
    maps = []
    for peer in receivers:
        ids = {await subscribe(ctx, peer, uri): uri for uri in topics}
        ctx.check(
            len(ids) == len(topics), f"{peer.name}: different topics got the same subscription ID"
        )
        maps.append(ids)
    names = sorted(topics)
    for index in range(ORDERED_COUNT):
        await publisher.send(
            Publish(publisher.req(), {}, names[index % len(names)], [index], {"n": index})
        )
    for peer, ids in zip(receivers, maps):
        await _check_order(ctx, peer, ids)


@scenario(
    "pubsub.ordering.one_topic",
    "Events of one publisher to one topic reach each of 3 subscribers in publication order",
    SPEC_ORDERING,
)
async def ordering_one_topic(ctx: Context) -> None:
    await _ordering(ctx, [topic("ordering.one")], 3)


@scenario(
    "pubsub.ordering.two_topics",
    "Events of one publisher alternating between two topics reach each subscriber in order",
    SPEC_ORDERING,
)
async def ordering_two_topics(ctx: Context) -> None:
    await _ordering(ctx, [topic("ordering.two.a"), topic("ordering.two.b")], 2)


# -- unsubscribing ----------------------------------------------------------------------


async def unsubscribe(ctx: Context, peer: Peer, subscription: int) -> None:
    """UNSUBSCRIBE; UNSUBSCRIBED for the request expected."""
    request = peer.req()
    await peer.send(Unsubscribe(request, subscription))
    reply = await peer.expect(Unsubscribed, what=f"in reply to UNSUBSCRIBE {subscription}")
    ctx.check(
        reply.request == request,
        f"{peer.name}: UNSUBSCRIBED.Request is {reply.request}, expected {request}"
        f" (the UNSUBSCRIBE's request ID; {SPEC_SUBSCRIBE}, UNSUBSCRIBED)",
    )


@scenario(
    "pubsub.unsubscribe.no_more_events",
    "After UNSUBSCRIBE/UNSUBSCRIBED the session gets no more events; others still do",
    f"{SPEC_SUBSCRIBE}, UNSUBSCRIBED",
)
async def no_more_events(ctx: Context) -> None:
    leaving, staying, publisher = await ctx.peers(3)
    uri = topic("unsubscribe")
    gone = await subscribe(ctx, leaving, uri)
    kept = await subscribe(ctx, staying, uri)
    await unsubscribe(ctx, leaving, gone)
    await publish_acknowledged(ctx, publisher, uri, ["after"])
    await expect_event(ctx, staying, kept, "on the subscriber that stayed")
    await leaving.expect_nothing(0.3, "an EVENT after UNSUBSCRIBED")


@scenario(
    "pubsub.unsubscribe.twice",
    "UNSUBSCRIBE of a subscription already ended gets ERROR wamp.error.no_such_subscription",
    f"{SPEC_SUBSCRIBE}, Unsubscribe ERROR; {SPEC_URIS}",
)
async def unsubscribe_twice(ctx: Context) -> None:
    peer = await ctx.peer()
    subscription = await subscribe(ctx, peer, topic("unsubscribe_twice"))
    await unsubscribe(ctx, peer, subscription)
    request = peer.req()
    await peer.send(Unsubscribe(request, subscription))
    await expect_error(
        ctx, peer, MessageType.UNSUBSCRIBE, request, NO_SUCH_SUBSCRIPTION,
        what="in reply to a second UNSUBSCRIBE",
    )  # fmt: skip


@scenario(
    "pubsub.unsubscribe.unknown",
    "UNSUBSCRIBE of a subscription ID never handed out gets ERROR wamp.error.no_such_subscription",
    f"{SPEC_SUBSCRIBE}, Unsubscribe ERROR; {SPEC_URIS}",
)
async def unsubscribe_unknown(ctx: Context) -> None:
    peer = await ctx.peer()
    request = peer.req()
    await peer.send(Unsubscribe(request, random.randint(2**40, MAX_ID)))
    await expect_error(
        ctx, peer, MessageType.UNSUBSCRIBE, request, NO_SUCH_SUBSCRIPTION,
        what="in reply to UNSUBSCRIBE of an unknown subscription",
    )  # fmt: skip


# -- subscribers leaving ----------------------------------------------------------------


async def _leaver(ctx: Context, how: str) -> None:
    first, leaving, last, publisher = await ctx.peers(4)
    uri = topic(f"leaver.{how}")
    ids = {peer.name: await subscribe(ctx, peer, uri) for peer in (first, leaving, last)}
    if how == "goodbye":
        await leaving.leave()
    else:
        await leaving.aclose()
    for index in range(2):  # the second one surely after the router noticed
        publication = await publish_acknowledged(ctx, publisher, uri, [index])
        for peer in (first, last):
            event = await expect_event(ctx, peer, ids[peer.name], "after another subscriber left")
            ctx.check(
                event.publication == publication and event.args == [index],
                f"{peer.name}: expected event {index} (publication {publication}),"
                f" got {describe(event)}",
            )


@scenario(
    "pubsub.leave.goodbye",
    "A subscriber leaving with GOODBYE does not stop delivery to the other subscribers",
    f"{SPEC_PUBLISH}, EVENT; BP/sessions.md, Session Closing",
)
async def leaver_goodbye(ctx: Context) -> None:
    await _leaver(ctx, "goodbye")


@scenario(
    "pubsub.leave.disconnect",
    "A subscriber whose transport closes does not stop delivery to the other subscribers",
    f"{SPEC_PUBLISH}, EVENT",
)
async def leaver_disconnect(ctx: Context) -> None:
    await _leaver(ctx, "disconnect")
