"""The meta API and testaments (AP/ap_session_meta_api.md,
AP/ap_pubsub_subscription_meta_api.md, AP/ap_rpc_registration_meta_api.md,
AP/ap_pubsub_testament.md).

Other sessions may be attached to the realm (the router's own, or ones a
previous scenario closed a moment ago), so counts are checked as differences
and against the session list, never as absolute numbers.
"""

from __future__ import annotations

from typing import Any

from wamp_core import MAX_ID, Error, Event, Goodbye, Register, Registered

from .._peer import Failure, Peer, Skip, describe
from .._suite import Context, scenario
from ._common import call, call_result, expect_event, subscribe

PREFIX = "com.wamp_conformance.meta"

SPEC_SESSION = "AP/ap_session_meta_api.md, Session Meta Procedures"
SPEC_SESSION_EVENTS = "AP/ap_session_meta_api.md, Session Meta Events"
SPEC_SUBSCRIPTION = "AP/ap_pubsub_subscription_meta_api.md, Procedures"
SPEC_REGISTRATION = "AP/ap_rpc_registration_meta_api.md, Procedures"
SPEC_TESTAMENT = "AP/ap_pubsub_testament.md"

SESSION_META = ("broker", "session_meta_api")
NO_SUCH_SESSION = "wamp.error.no_such_session"
ATTEMPTS = 5
"""How often a count or list is re-read when sessions of earlier scenarios may
still be going away (each read is a bounded CALL)."""


async def _count(ctx: Context, peer: Peer, *args: Any) -> int:
    count = await call_result(
        ctx, peer, "wamp.session.count", list(args) or None, spec=SPEC_SESSION
    )
    if type(count) is not int or count < 0:
        ctx.fail(f"wamp.session.count returned {count!r}, expected a count|int ({SPEC_SESSION})")
    return count


async def _list(ctx: Context, peer: Peer, *args: Any) -> list[int]:
    ids = await call_result(ctx, peer, "wamp.session.list", list(args) or None, spec=SPEC_SESSION)
    if not isinstance(ids, list) or not all(type(i) is int for i in ids):
        ctx.fail(f"wamp.session.list returned {ids!r}, expected a list of session IDs")
    return ids


async def _stable_count(ctx: Context, peer: Peer) -> int:
    """A count that matches the session list read before and after it."""
    seen: list[str] = []
    for _ in range(ATTEMPTS):
        before = await _list(ctx, peer)
        count = await _count(ctx, peer)
        after = await _list(ctx, peer)
        if sorted(before) == sorted(after):
            ctx.check(
                count == len(after),
                f"wamp.session.count returned {count}, but wamp.session.list lists"
                f" {len(after)} sessions ({SPEC_SESSION})",
            )
            return count
        seen.append(f"{len(before)}/{count}/{len(after)}")
    raise Skip(f"the realm's sessions kept changing (list/count/list: {', '.join(seen)})")


@scenario(
    "meta.session.count",
    "wamp.session.count matches wamp.session.list and follows a session joining and leaving",
    SPEC_SESSION,
    feature=SESSION_META,
)
async def session_count(ctx: Context) -> None:
    observer = await ctx.peer(name="observer")
    problems: list[str] = []
    for _ in range(ATTEMPTS):
        before = await _stable_count(ctx, observer)
        other = await ctx.peer(name="other")
        joined = await _stable_count(ctx, observer)
        await other.leave()
        left = await _stable_count(ctx, observer)
        if (joined - before, left - joined) == (1, -1):
            return
        problems.append(f"{before} -> {joined} (join) -> {left} (leave)")
    ctx.fail(
        "wamp.session.count did not go up by one when a session joined and down by one"
        f" when it left: {'; '.join(problems)} ({SPEC_SESSION})"
    )


@scenario(
    "meta.session.list",
    "wamp.session.list lists the joined sessions, and no longer one that left",
    SPEC_SESSION,
    feature=SESSION_META,
)
async def session_list(ctx: Context) -> None:
    observer = await ctx.peer(name="observer")
    other = await ctx.peer(name="other")
    ids = await _list(ctx, observer)
    for peer in (observer, other):
        ctx.check(
            peer.session_id in ids,
            f"wamp.session.list {ids} lacks {peer.name}'s session {peer.session_id}",
        )
    ctx.check(len(set(ids)) == len(ids), f"wamp.session.list repeats IDs: {ids}")
    await other.leave()
    ids = await _list(ctx, observer)
    ctx.check(
        other.session_id not in ids,
        f"wamp.session.list still lists session {other.session_id} after its GOODBYE",
    )


@scenario(
    "meta.session.count.filter_authroles",
    "wamp.session.count/list with filter_authroles count only sessions with those authroles",
    SPEC_SESSION,
    feature=SESSION_META,
)
async def session_filter(ctx: Context) -> None:
    observer = await ctx.peer(name="observer")
    role = observer.welcome.details.get("authrole") if observer.welcome else None
    nobody = [f"{PREFIX}.role.nobody"]
    ctx.check(
        await _count(ctx, observer, nobody) == 0,
        f"wamp.session.count({nobody}) is not 0 though no session has that authrole",
    )
    ctx.check(
        await _list(ctx, observer, nobody) == [],
        f"wamp.session.list({nobody}) is not empty though no session has that authrole",
    )
    if isinstance(role, str):
        ids = await _list(ctx, observer, [role])
        ctx.check(
            observer.session_id in ids,
            f"wamp.session.list([{role!r}]) lacks the caller, whose authrole is {role!r}",
        )


@scenario(
    "meta.session.get",
    "wamp.session.get returns the session's ID, authid and authrole",
    SPEC_SESSION,
    feature=SESSION_META,
)
async def session_get(ctx: Context) -> None:
    observer = await ctx.peer(name="observer")
    other = await ctx.peer(name="other")
    details = await call_result(
        ctx, observer, "wamp.session.get", [other.session_id], spec=SPEC_SESSION
    )
    if not isinstance(details, dict):
        ctx.fail(f"wamp.session.get returned {details!r}, expected details|dict")
    ctx.check(
        details.get("session") == other.session_id,
        f"wamp.session.get({other.session_id}) gave session {details.get('session')!r}",
    )
    assert other.welcome is not None
    for key in ("authid", "authrole", "authmethod"):
        known = other.welcome.details.get(key)
        if known is not None:
            ctx.check(
                details.get(key) == known,
                f"wamp.session.get gave {key} {details.get(key)!r}, WELCOME said {known!r}",
            )


@scenario(
    "meta.session.get.no_such_session",
    "wamp.session.get of an unknown session ID gets ERROR wamp.error.no_such_session",
    SPEC_SESSION,
    feature=SESSION_META,
)
async def session_get_unknown(ctx: Context) -> None:
    observer = await ctx.peer(name="observer")
    ids = set(await _list(ctx, observer))
    unknown = next(i for i in range(MAX_ID - 1000, MAX_ID) if i not in ids)
    reply = await call(ctx, observer, "wamp.session.get", [unknown])
    if not isinstance(reply, Error):
        ctx.fail(f"wamp.session.get({unknown}) got {describe(reply)}, expected {NO_SUCH_SESSION}")
    ctx.check(reply.error == NO_SUCH_SESSION, f"ERROR is {reply.error}, not {NO_SUCH_SESSION}")


async def _meta_event(ctx: Context, peer: Peer, subscription: int, wanted: Any, what: str) -> Event:
    """The EVENT on ``subscription`` for which ``wanted(event)`` holds; events
    about other sessions (of earlier scenarios) are passed over."""
    seen = []
    for _ in range(20):
        event = await expect_event(ctx, peer, subscription, what)
        if wanted(event):
            return event
        seen.append(event.args)
    raise Failure(f"no {what} among {seen}")


@scenario(
    "meta.session.on_join",
    "A session joining is published on wamp.session.on_join with its details",
    SPEC_SESSION_EVENTS,
    feature=SESSION_META,
)
async def on_join(ctx: Context) -> None:
    observer = await ctx.peer(name="observer")
    subscription = await subscribe(ctx, observer, "wamp.session.on_join")
    other = await ctx.peer(name="other")

    def about_other(event: Event) -> bool:
        args = event.args or []
        return (
            bool(args) and isinstance(args[0], dict) and args[0].get("session") == other.session_id
        )

    event = await _meta_event(
        ctx, observer, subscription, about_other, f"wamp.session.on_join for {other.session_id}"
    )
    details = (event.args or [{}])[0]
    assert other.welcome is not None
    for key in ("authid", "authrole"):
        known = other.welcome.details.get(key)
        if known is not None:
            ctx.check(
                details.get(key) == known,
                f"wamp.session.on_join gave {key} {details.get(key)!r}, WELCOME said {known!r}",
            )


async def _on_leave(ctx: Context, *, lost: bool) -> None:
    """An observer subscribed to wamp.session.on_leave must hear of another
    session leaving (with GOODBYE, or its transport ``lost``)."""
    observer = await ctx.peer(name="observer")
    other = await ctx.peer(name="other")
    subscription = await subscribe(ctx, observer, "wamp.session.on_leave")
    if lost:
        await other.aclose()
    else:
        await other.leave()
    event = await _meta_event(
        ctx,
        observer,
        subscription,
        lambda event: bool(event.args) and event.args[0] == other.session_id,
        f"wamp.session.on_leave for {other.session_id}",
    )
    args = event.args or []
    assert other.welcome is not None
    for index, key in ((1, "authid"), (2, "authrole")):
        known = other.welcome.details.get(key)
        if known is not None:
            ctx.check(
                len(args) > index and args[index] == known,
                f"wamp.session.on_leave args {args}: {key} should be {known!r} (positional"
                f" session, authid, authrole; {SPEC_SESSION_EVENTS})",
            )


@scenario(
    "meta.session.on_leave",
    "A session's GOODBYE is published on wamp.session.on_leave as (session, authid, authrole)",
    SPEC_SESSION_EVENTS,
    feature=SESSION_META,
)
async def on_leave(ctx: Context) -> None:
    await _on_leave(ctx, lost=False)


@scenario(
    "meta.session.on_leave.transport_lost",
    "A session whose transport drops is published on wamp.session.on_leave",
    SPEC_SESSION_EVENTS,
    feature=SESSION_META,
)
async def on_leave_lost(ctx: Context) -> None:
    await _on_leave(ctx, lost=True)


# -- subscription and registration meta -------------------------------------------------


async def _subscribed_topic(ctx: Context, name: str) -> tuple[Peer, Peer, str, int]:
    """An observer, a subscriber subscribed to a fresh topic, the topic and the ID."""
    observer = await ctx.peer(name="observer")
    subscriber = await ctx.peer(name="subscriber")
    topic = f"{PREFIX}.subscription.{name}"
    return observer, subscriber, topic, await subscribe(ctx, subscriber, topic)


@scenario(
    "meta.subscription.lookup",
    "wamp.subscription.lookup returns the subscription's ID, and null for a topic nobody has",
    SPEC_SUBSCRIPTION,
    feature=("broker", "subscription_meta_api"),
)
async def subscription_lookup(ctx: Context) -> None:
    observer, _, topic, subscription = await _subscribed_topic(ctx, "lookup")
    found = await call_result(
        ctx, observer, "wamp.subscription.lookup", [topic], spec=SPEC_SUBSCRIPTION
    )
    ctx.check(
        found == subscription,
        f"wamp.subscription.lookup({topic!r}) returned {found!r}, SUBSCRIBED said {subscription}",
    )
    nobody = f"{topic}.nobody"
    found = await call_result(
        ctx, observer, "wamp.subscription.lookup", [nobody], spec=SPEC_SUBSCRIPTION
    )
    ctx.check(found is None, f"wamp.subscription.lookup({nobody!r}) returned {found!r}, not null")


@scenario(
    "meta.subscription.get",
    "wamp.subscription.get returns the subscription's id, uri and match policy",
    SPEC_SUBSCRIPTION,
    feature=("broker", "subscription_meta_api"),
)
async def subscription_get(ctx: Context) -> None:
    observer, _, topic, subscription = await _subscribed_topic(ctx, "get")
    details = await call_result(
        ctx, observer, "wamp.subscription.get", [subscription], spec=SPEC_SUBSCRIPTION
    )
    if not isinstance(details, dict):
        ctx.fail(f"wamp.subscription.get returned {details!r}, expected a dict")
    expected = {"id": subscription, "uri": topic, "match": "exact"}
    got = {key: details.get(key) for key in expected}
    ctx.check(got == expected, f"wamp.subscription.get returned {details}, expected {expected}")
    ctx.check(isinstance(details.get("created"), str), f"created is {details.get('created')!r}")


@scenario(
    "meta.subscription.list_subscribers",
    "wamp.subscription.list_subscribers and count_subscribers give the subscribers",
    SPEC_SUBSCRIPTION,
    feature=("broker", "subscription_meta_api"),
)
async def subscription_subscribers(ctx: Context) -> None:
    observer, subscriber, topic, subscription = await _subscribed_topic(ctx, "subscribers")
    second = await ctx.peer(name="subscriber2")
    again = await subscribe(ctx, second, topic)
    ctx.check(again == subscription, f"a second SUBSCRIBE to {topic} got another ID {again}")
    found = await call_result(
        ctx, observer, "wamp.subscription.list_subscribers", [subscription], spec=SPEC_SUBSCRIPTION
    )
    expected = sorted([subscriber.session_id, second.session_id])
    ctx.check(
        isinstance(found, list) and sorted(found) == expected,
        f"wamp.subscription.list_subscribers returned {found!r}, expected {expected}",
    )
    count = await call_result(
        ctx, observer, "wamp.subscription.count_subscribers", [subscription], spec=SPEC_SUBSCRIPTION
    )
    ctx.check(count == 2, f"wamp.subscription.count_subscribers returned {count!r}, expected 2")


@scenario(
    "meta.registration.lookup",
    "wamp.registration.lookup and list_callees agree with REGISTERED",
    SPEC_REGISTRATION,
    feature=("dealer", "registration_meta_api"),
)
async def registration_lookup(ctx: Context) -> None:
    observer = await ctx.peer(name="observer")
    callee = await ctx.peer(name="callee")
    procedure = f"{PREFIX}.registration.lookup"
    request = callee.req()
    await callee.send(Register(request, {}, procedure))
    registration = (await callee.expect(Registered, what="in reply to REGISTER")).registration
    found = await call_result(
        ctx, observer, "wamp.registration.lookup", [procedure], spec=SPEC_REGISTRATION
    )
    ctx.check(
        found == registration,
        f"wamp.registration.lookup returned {found!r}, REGISTERED said {registration}",
    )
    callees = await call_result(
        ctx, observer, "wamp.registration.list_callees", [registration], spec=SPEC_REGISTRATION
    )
    ctx.check(
        callees == [callee.session_id],
        f"wamp.registration.list_callees returned {callees!r}, expected [{callee.session_id}]",
    )
    details = await call_result(
        ctx, observer, "wamp.registration.get", [registration], spec=SPEC_REGISTRATION
    )
    ctx.check(
        isinstance(details, dict)
        and details.get("id") == registration
        and details.get("uri") == procedure,
        f"wamp.registration.get returned {details!r}",
    )


# -- testaments --------------------------------------------------------------------------


async def _add_testament(
    ctx: Context, testator: Peer, topic: str, args: list[Any], kwargs: dict[str, Any]
) -> None:
    """``testator`` adds a testament: an event on ``topic`` with ``args`` and ``kwargs``."""
    await call_result(
        ctx, testator, "wamp.session.add_testament", [topic, args, kwargs], spec=SPEC_TESTAMENT
    )


async def _testament(ctx: Context, name: str) -> tuple[Peer, int, Peer, str]:
    """A subscriber to a fresh topic (and its subscription ID), and a session
    that added a testament on that topic."""
    topic = f"{PREFIX}.testament.{name}"
    subscriber = await ctx.peer(name="subscriber")
    subscription = await subscribe(ctx, subscriber, topic)
    testator = await ctx.peer(name="testator")
    await _add_testament(ctx, testator, topic, ["gone", name], {"who": testator.session_id})
    return subscriber, subscription, testator, topic


async def _check_testament(
    ctx: Context, subscriber: Peer, subscription: int, testator: Peer, name: str
) -> None:
    event = await expect_event(ctx, subscriber, subscription, "(the testament)")
    ctx.check(
        event.args == ["gone", name] and event.kwargs == {"who": testator.session_id},
        f"the testament EVENT is {describe(event)}, expected args ['gone', {name!r}]"
        f" and kwargs {{'who': {testator.session_id}}}",
    )


@scenario(
    "meta.testament.transport_lost",
    "A testament is published when its session's transport drops",
    SPEC_TESTAMENT,
    feature=("dealer", "testament_meta_api"),
)
async def testament_lost(ctx: Context) -> None:
    subscriber, subscription, testator, _ = await _testament(ctx, "lost")
    await testator.aclose()
    await _check_testament(ctx, subscriber, subscription, testator, "lost")


@scenario(
    "meta.testament.goodbye",
    "A testament is published when its session ends with GOODBYE (it is destroyed)",
    SPEC_TESTAMENT,
    feature=("dealer", "testament_meta_api"),
)
async def testament_goodbye(ctx: Context) -> None:
    subscriber, subscription, testator, _ = await _testament(ctx, "goodbye")
    await testator.send(Goodbye({}, "wamp.close.close_realm"))
    await testator.expect(Goodbye, what="in reply to GOODBYE")
    await _check_testament(ctx, subscriber, subscription, testator, "goodbye")


@scenario(
    "meta.testament.flush",
    "wamp.session.flush_testaments removes the testaments added before it",
    SPEC_TESTAMENT,
    feature=("dealer", "testament_meta_api"),
)
async def testament_flush(ctx: Context) -> None:
    subscriber, subscription, testator, topic = await _testament(ctx, "flush")
    await call_result(ctx, testator, "wamp.session.flush_testaments", spec=SPEC_TESTAMENT)
    # A second testament, added after the flush: testaments are published in
    # the order added, so the flushed one would come first.
    await _add_testament(ctx, testator, topic, ["kept"], {})
    await testator.aclose()
    event = await expect_event(ctx, subscriber, subscription, "(the testament added after flush)")
    ctx.check(
        event.args == ["kept"],
        f"got {describe(event)}, expected only the testament added after"
        " wamp.session.flush_testaments (args ['kept'])",
    )


@scenario(
    "meta.testament.order",
    "Testaments are published in the order they were added",
    SPEC_TESTAMENT + ", Testaments in Use",
    feature=("dealer", "testament_meta_api"),
)
async def testament_order(ctx: Context) -> None:
    subscriber, subscription, testator, topic = await _testament(ctx, "order")
    for index in range(2):
        await _add_testament(ctx, testator, topic, ["more", index], {})
    await testator.aclose()
    await _check_testament(ctx, subscriber, subscription, testator, "order")
    for index in range(2):
        event = await expect_event(ctx, subscriber, subscription, f"(testament {index + 2})")
        ctx.check(
            event.args == ["more", index],
            f"testament {index + 2} is {describe(event)}, expected args ['more', {index}]"
            " (testaments are published in the order added)",
        )
