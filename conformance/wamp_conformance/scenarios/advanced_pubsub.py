"""Advanced Profile Publish & Subscribe (AP/ap_pubsub_*.md).

Each scenario needs the broker feature it checks. Where a subscriber must NOT
get an event, the scenario does not wait for silence: the same publisher then
publishes a second, unrestricted event, and since a broker delivers one
publisher's events in order (BP/security_model.md, Ordering Guarantees), the
subscriber's next EVENT must be that second one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from wamp_core import Error, Event, Publish, Published

from .._peer import Peer, describe
from .._suite import Context, scenario
from ._common import expect_event, next_event_is, publish, subscribe

PREFIX = "com.wamp_conformance.advanced_pubsub"
BROKER = "broker"

SPEC_LISTS = "AP/ap_pubsub_subscriber_blackwhite_listing.md, Feature Definition"
SPEC_EXCLUSION = "AP/ap_pubsub_publisher_exclusion.md"
SPEC_IDENTIFICATION = "AP/ap_pubsub_publisher_identification.md"
SPEC_PATTERN = "AP/ap_pubsub_pattern_based_subscription.md"
SPEC_RETENTION = "AP/ap_pubsub_event_retention.md, Feature Definition"


def _welcome_detail(ctx: Context, peer: Peer, key: str) -> str:
    value = peer.welcome.details.get(key) if peer.welcome is not None else None
    if not isinstance(value, str):
        ctx.skip(f"WELCOME.Details.{key} is {value!r}: the scenario needs it")
    return value


# -- subscriber black- and whitelisting ------------------------------------------------


async def _listing(
    ctx: Context,
    name: str,
    options_for: Callable[[list[Peer]], dict[str, Any]],
    admitted: list[bool],
    rule: str,
) -> None:
    """Three subscribers; a publication with the options ``options_for(peers)``
    must reach exactly the subscribers flagged in ``admitted``."""
    topic = f"{PREFIX}.{name}"
    publisher = await ctx.peer(name="publisher")
    subscribers = [await ctx.peer(name=f"subscriber{i}") for i in range(len(admitted))]
    ids = [await subscribe(ctx, peer, topic) for peer in subscribers]
    restricted = await publish(ctx, publisher, topic, ["restricted"], **options_for(subscribers))
    after = await publish(ctx, publisher, topic, ["everybody"])
    for peer, subscription, admit in zip(subscribers, ids, admitted):
        if admit:
            event = await expect_event(ctx, peer, subscription, f"({rule})")
            ctx.check(
                event.publication == restricted,
                f"{peer.name} got publication {event.publication}, expected {restricted} ({rule})",
            )
        await next_event_is(ctx, peer, after, rule)


@scenario(
    "advanced_pubsub.blackwhite.exclude",
    "A subscriber whose session ID is in PUBLISH.Options.exclude does not get the event",
    SPEC_LISTS,
    feature=(BROKER, "subscriber_blackwhite_listing"),
)
async def blackwhite_exclude(ctx: Context) -> None:
    await _listing(
        ctx,
        "exclude",
        lambda peers: {"exclude": [peers[1].session_id]},
        [True, False, True],
        "a subscriber in `exclude` must not receive the event",
    )


@scenario(
    "advanced_pubsub.blackwhite.eligible",
    "Only subscribers whose session ID is in PUBLISH.Options.eligible get the event",
    SPEC_LISTS,
    feature=(BROKER, "subscriber_blackwhite_listing"),
)
async def blackwhite_eligible(ctx: Context) -> None:
    await _listing(
        ctx,
        "eligible",
        lambda peers: {"eligible": [peers[0].session_id, peers[2].session_id]},
        [True, False, True],
        "a subscriber missing from `eligible` must not receive the event",
    )


@scenario(
    "advanced_pubsub.blackwhite.eligible_and_exclude",
    "With both eligible and exclude, only eligible subscribers not excluded get the event",
    SPEC_LISTS,
    feature=(BROKER, "subscriber_blackwhite_listing"),
)
async def blackwhite_both(ctx: Context) -> None:
    await _listing(
        ctx,
        "eligible_and_exclude",
        lambda peers: {
            "eligible": [peers[0].session_id, peers[1].session_id],
            "exclude": [peers[1].session_id],
        },
        [True, False, False],
        "only subscribers in `eligible` and not in `exclude` may receive the event",
    )


async def _distinct_authids(ctx: Context, peers: list[Peer]) -> list[str]:
    authids = [_welcome_detail(ctx, peer, "authid") for peer in peers]
    if len(set(authids)) != len(authids):
        ctx.skip(f"the sessions share authids {authids}: the scenario needs distinct ones")
    return authids


async def _authid_listing(ctx: Context, name: str, option: str, admit: int, rule: str) -> None:
    """Two subscribers with distinct authids; a publication with ``option`` set
    to the authid of subscriber ``admit`` (0) or of the other one (1) must reach
    subscriber1 only."""
    topic = f"{PREFIX}.{option}"
    publisher = await ctx.peer(name="publisher")
    first = await ctx.peer(name="subscriber1", authid=f"{PREFIX}.authid.{name}1")
    second = await ctx.peer(name="subscriber2", authid=f"{PREFIX}.authid.{name}2")
    authids = await _distinct_authids(ctx, [first, second])
    one = await subscribe(ctx, first, topic)
    await subscribe(ctx, second, topic)
    options: dict[str, Any] = {option: [authids[admit]]}
    restricted = await publish(ctx, publisher, topic, **options)
    after = await publish(ctx, publisher, topic)
    event = await expect_event(ctx, first, one, f"({rule})")
    ctx.check(event.publication == restricted, f"subscriber1 did not get publication {restricted}")
    await next_event_is(ctx, second, after, rule)


@scenario(
    "advanced_pubsub.blackwhite.exclude_authid",
    "A subscriber whose authid is in PUBLISH.Options.exclude_authid does not get the event",
    SPEC_LISTS,
    feature=(BROKER, "subscriber_blackwhite_listing"),
)
async def blackwhite_exclude_authid(ctx: Context) -> None:
    await _authid_listing(
        ctx,
        "a",
        "exclude_authid",
        1,
        "a subscriber whose authid is in `exclude_authid` must not receive the event",
    )


@scenario(
    "advanced_pubsub.blackwhite.eligible_authid",
    "Only subscribers whose authid is in PUBLISH.Options.eligible_authid get the event",
    SPEC_LISTS,
    feature=(BROKER, "subscriber_blackwhite_listing"),
)
async def blackwhite_eligible_authid(ctx: Context) -> None:
    await _authid_listing(
        ctx,
        "b",
        "eligible_authid",
        0,
        "a subscriber whose authid is not in `eligible_authid` must not receive the event",
    )


@scenario(
    "advanced_pubsub.blackwhite.authrole",
    "eligible_authrole and exclude_authrole admit and refuse subscribers by authrole",
    SPEC_LISTS,
    feature=(BROKER, "subscriber_blackwhite_listing"),
)
async def blackwhite_authrole(ctx: Context) -> None:
    topic = f"{PREFIX}.authrole"
    publisher = await ctx.peer(name="publisher")
    subscriber = await ctx.peer(name="subscriber")
    role = _welcome_detail(ctx, subscriber, "authrole")
    subscription = await subscribe(ctx, subscriber, topic)
    await publish(ctx, publisher, topic, ["none"], eligible_authrole=[f"{PREFIX}.role.nobody"])
    await publish(ctx, publisher, topic, ["none"], exclude_authrole=[role])
    admitted = await publish(ctx, publisher, topic, ["mine"], eligible_authrole=[role])
    event = await expect_event(ctx, subscriber, subscription, "for eligible_authrole")
    ctx.check(
        event.publication == admitted,
        f"the subscriber (authrole {role!r}) got publication {event.publication} first,"
        f" expected {admitted}: a subscriber whose authrole is outside `eligible_authrole`"
        " or inside `exclude_authrole` must not receive the event",
    )


# -- publisher exclusion and identification --------------------------------------------


@scenario(
    "advanced_pubsub.publisher_exclusion.exclude_me_false",
    "With exclude_me=false the publisher gets its own event (if subscribed)",
    SPEC_EXCLUSION,
    feature=(BROKER, "publisher_exclusion"),
)
async def exclude_me_false(ctx: Context) -> None:
    topic = f"{PREFIX}.exclude_me_false"
    publisher = await ctx.peer(name="publisher")
    other = await ctx.peer(name="subscriber")
    mine = await subscribe(ctx, publisher, topic)
    theirs = await subscribe(ctx, other, topic)
    request = publisher.req()
    options = {"acknowledge": True, "exclude_me": False}
    await publisher.send(Publish(request, options, topic, ["self"]))
    # PUBLISHED and the EVENT go to the same peer in no order the spec fixes.
    got: dict[type, Any] = {}
    for _ in range(2):
        reply = await publisher.expect(
            Published, Event, Error, what="after PUBLISH exclude_me=false"
        )
        if isinstance(reply, Error):
            ctx.fail(f"PUBLISH with exclude_me=false was refused with {reply.error}")
        ctx.check(type(reply) not in got, f"the publisher got a second {describe(reply)}")
        got[type(reply)] = reply
    published, event = got[Published], got[Event]
    ctx.check(published.request == request, f"PUBLISHED is for request {published.request}")
    ctx.check(event.subscription == mine, f"EVENT is for subscription {event.subscription}")
    ctx.check(
        event.publication == published.publication,
        f"the publisher's EVENT has publication {event.publication},"
        f" PUBLISHED said {published.publication}",
    )
    await expect_event(ctx, other, theirs, "(the other subscriber)")


@scenario(
    "advanced_pubsub.publisher_identification.disclosed",
    "With disclose_me=true, EVENT.Details.publisher is the publisher's session ID",
    SPEC_IDENTIFICATION,
    feature=(BROKER, "publisher_identification"),
)
async def disclose_me(ctx: Context) -> None:
    topic = f"{PREFIX}.disclose_me"
    publisher = await ctx.peer(name="publisher")
    subscriber = await ctx.peer(name="subscriber")
    subscription = await subscribe(ctx, subscriber, topic)
    request = publisher.req()
    options = {"acknowledge": True, "disclose_me": True}
    await publisher.send(Publish(request, options, topic))
    reply = await publisher.expect(Published, Error, what="after PUBLISH disclose_me=true")
    if isinstance(reply, Error):
        # The broker MAY refuse to disclose (option_disallowed.disclose_me).
        ctx.check(
            reply.error == "wamp.error.option_disallowed.disclose_me",
            f"PUBLISH disclose_me=true got ERROR {reply.error},"
            " expected PUBLISHED or wamp.error.option_disallowed.disclose_me",
        )
        ctx.skip("the broker refuses disclose_me (option_disallowed.disclose_me)")
    event = await expect_event(ctx, subscriber, subscription, "after PUBLISH disclose_me=true")
    details = event.details
    ctx.check(
        details.get("publisher") == publisher.session_id,
        f"EVENT.Details.publisher is {details.get('publisher')!r},"
        f" expected the publisher's session ID {publisher.session_id}",
    )
    assert publisher.welcome is not None
    for key in ("authid", "authrole"):
        disclosed = details.get(f"publisher_{key}")
        known = publisher.welcome.details.get(key)
        if disclosed is not None and known is not None:
            ctx.check(
                disclosed == known,
                f"EVENT.Details.publisher_{key} is {disclosed!r}, WELCOME said {known!r}",
            )


# -- pattern-based subscriptions -------------------------------------------------------


async def _matched(
    ctx: Context, publisher: Peer, subscriber: Peer, subscription: int, *, topic: str, rule: str
) -> None:
    """A publication to ``topic`` must be the pattern subscriber's next EVENT (any
    earlier one breaks ``rule``), on ``subscription`` and with Details.topic."""
    publication = await publish(ctx, publisher, topic, ["matched"])
    event = await next_event_is(ctx, subscriber, publication, rule)
    ctx.check(event.subscription == subscription, f"EVENT is for subscription {event.subscription}")
    ctx.check(
        event.details.get("topic") == topic,
        f"EVENT.Details.topic is {event.details.get('topic')!r}, expected {topic!r}"
        " (the broker MUST give the topic for pattern subscriptions)",
    )


@scenario(
    "advanced_pubsub.pattern.prefix",
    "A prefix subscription gets matching events with Details.topic, and no others",
    SPEC_PATTERN,
    feature=(BROKER, "pattern_based_subscription"),
)
async def prefix_subscription(ctx: Context) -> None:
    base = f"{PREFIX}.prefix"
    publisher = await ctx.peer(name="publisher")
    subscriber = await ctx.peer(name="subscriber")
    subscription = await subscribe(ctx, subscriber, f"{base}.in", match="prefix")
    await publish(ctx, publisher, f"{base}.out.x")
    await _matched(
        ctx,
        publisher,
        subscriber,
        subscription,
        topic=f"{base}.in.a.b",
        rule="the topic does not match the prefix",
    )


@scenario(
    "advanced_pubsub.pattern.wildcard",
    "A wildcard subscription gets matching events with Details.topic, and no others",
    SPEC_PATTERN,
    feature=(BROKER, "pattern_based_subscription"),
)
async def wildcard_subscription(ctx: Context) -> None:
    base = f"{PREFIX}.wildcard"
    publisher = await ctx.peer(name="publisher")
    subscriber = await ctx.peer(name="subscriber")
    subscription = await subscribe(ctx, subscriber, f"{base}..end", match="wildcard")
    await publish(ctx, publisher, f"{base}.x.other")  # last component differs
    await publish(ctx, publisher, f"{base}.x.y.end")  # one component too many
    await _matched(
        ctx,
        publisher,
        subscriber,
        subscription,
        topic=f"{base}.x.end",
        rule="the topic does not match the wildcard pattern",
    )


@scenario(
    "advanced_pubsub.pattern.once_per_subscription",
    "An event matching an exact and a prefix subscription of one session arrives once for each",
    SPEC_PATTERN,
    feature=(BROKER, "pattern_based_subscription"),
)
async def once_per_subscription(ctx: Context) -> None:
    topic = f"{PREFIX}.overlap.topic"
    publisher = await ctx.peer(name="publisher")
    subscriber = await ctx.peer(name="subscriber")
    exact = await subscribe(ctx, subscriber, topic)
    prefix = await subscribe(ctx, subscriber, f"{PREFIX}.overlap", match="prefix")
    ctx.check(exact != prefix, f"the exact and prefix subscriptions share the ID {exact}")
    publication = await publish(ctx, publisher, topic)
    after = await publish(ctx, publisher, f"{PREFIX}.overlap.after")
    seen: dict[int, Event] = {}
    for _ in range(2):
        event = await subscriber.expect(Event, what="once per matching subscription")
        ctx.check(
            event.publication == publication,
            f"got {describe(event)}, expected one EVENT of publication {publication}"
            " per matching subscription",
        )
        ctx.check(event.subscription not in seen, f"two EVENTs for subscription {exact}")
        seen[event.subscription] = event
    ctx.check(set(seen) == {exact, prefix}, f"EVENTs for subscriptions {sorted(seen)}")
    ctx.check(
        seen[prefix].details.get("topic") == topic,
        f"the prefix subscription's EVENT.Details.topic is {seen[prefix].details.get('topic')!r}",
    )
    await next_event_is(ctx, subscriber, after, "one EVENT per matching subscription, not more")


# -- event retention -------------------------------------------------------------------


async def _retained(ctx: Context, peer: Peer, topic: str, **options: Any) -> Event | None:
    """SUBSCRIBE with get_retained; the retained EVENT, or None when none came
    within a second (or the timeout, if shorter)."""
    subscription = await subscribe(ctx, peer, topic, get_retained=True, **options)
    item = await peer.receive(min(ctx.timeout, 1.0))
    if item is None:
        return None
    if not isinstance(item, Event):
        ctx.fail(f"after SUBSCRIBE get_retained=true expected EVENT, got {describe(item)}")
    ctx.check(
        item.subscription == subscription,
        f"the retained EVENT is for subscription {item.subscription}, not {subscription}",
    )
    ctx.check(
        item.details.get("retained") is True,
        f"the retained EVENT has Details {item.details}: Details.retained MUST be true",
    )
    return item


@scenario(
    "advanced_pubsub.retention.latest",
    "SUBSCRIBE get_retained=true gets the most recent retained event, marked retained",
    SPEC_RETENTION,
    feature=(BROKER, "event_retention"),
)
async def retention_latest(ctx: Context) -> None:
    topic = f"{PREFIX}.retention.latest"
    publisher = await ctx.peer(name="publisher")
    await publish(ctx, publisher, topic, ["old"], retain=True)
    await publish(ctx, publisher, topic, ["new"], {"n": 2}, retain=True)
    subscriber = await ctx.peer(name="subscriber")
    event = await _retained(ctx, subscriber, topic)
    if event is None:
        ctx.skip("no retained event came (a broker MAY decline retention on a topic)")
    assert event is not None
    # The spec does not say which Publication ID the retained EVENT carries (Crossbar
    # draws a new one): the payload identifies the most recent retained event.
    ctx.check(
        event.args == ["new"] and event.kwargs == {"n": 2},
        "expected the most recent retained event (['new'], {'n': 2}), got"
        f" {describe(event)} (the Broker MUST send the most recent Retained Event)",
    )
    await subscriber.expect_nothing(0.2, "only the most recent retained event")


@scenario(
    "advanced_pubsub.retention.not_requested",
    "Without get_retained a new subscriber gets no retained event",
    SPEC_RETENTION,
    feature=(BROKER, "event_retention"),
)
async def retention_not_requested(ctx: Context) -> None:
    topic = f"{PREFIX}.retention.not_requested"
    publisher = await ctx.peer(name="publisher")
    await publish(ctx, publisher, topic, ["retained"], retain=True)
    subscriber = await ctx.peer(name="subscriber")
    await subscribe(ctx, subscriber, topic)
    fresh = await publish(ctx, publisher, topic, ["fresh"])
    await next_event_is(
        ctx, subscriber, fresh, "a missing get_retained MUST be read as false: no retained event"
    )


@scenario(
    "advanced_pubsub.retention.ineligible",
    "A retained event the subscriber was excluded from is not sent to it",
    SPEC_RETENTION,
    feature=(BROKER, "event_retention"),
)
async def retention_ineligible(ctx: Context) -> None:
    ctx.require(BROKER, "subscriber_blackwhite_listing")
    topic = f"{PREFIX}.retention.ineligible"
    publisher = await ctx.peer(name="publisher")
    subscriber = await ctx.peer(name="subscriber")
    everybody = await publish(ctx, publisher, topic, ["everybody"], retain=True)
    excluded = await publish(
        ctx, publisher, topic, ["not you"], retain=True, exclude=[subscriber.session_id]
    )
    event = await _retained(ctx, subscriber, topic)
    if event is None:
        return  # nothing retained for it: allowed (best effort)
    ctx.check(
        event.publication != excluded,
        f"got retained publication {excluded}, which excluded the subscriber"
        " (the broker MUST NOT send a retained event the subscriber was not eligible for)",
    )
    ctx.check(
        event.publication == everybody,
        f"got retained {describe(event)}, expected publication {everybody} or none",
    )
