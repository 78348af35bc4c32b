"""Raw and illegal messages (BP/building_blocks.md, "Protocol Errors").

Every scenario here runs once per serializer (``raw.json.*``, ``raw.msgpack.*``,
``raw.cbor.*``): an offending session sends bytes built by hand -- Python
values encoded with the codec directly, since ``wamp_core``'s message classes
refuse to build invalid messages -- and the router must answer as the spec
says: ABORT ``wamp.error.protocol_violation`` (or a closed transport) for a
protocol violation, ERROR ``wamp.error.invalid_uri`` for a bad URI. In every
case the router must go on serving the other sessions: two bystander sessions
(a subscriber and a publisher, joined before the bad input) complete a
PUBLISH/EVENT round trip afterwards, and a new session can join.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

import cbor2
import msgpack

from wamp_core import (
    MAX_ID,
    Abort,
    Call,
    Error,
    Event,
    Invocation,
    Publish,
    Published,
    Register,
    Registered,
    Result,
    Subscribe,
    Subscribed,
)

from .._peer import CLOSED, Failure, Peer, describe
from .._suite import Context, scenario
from ._common import expect_violation

__all__ = ["BAD_URIS", "GARBAGE", "SERIALIZERS", "encode"]

SERIALIZERS = ("json", "msgpack", "cbor")

SPEC_ERRORS = "BP/building_blocks.md, Protocol Errors"
SPEC_MESSAGES = "BP/messages.md; BP/building_blocks.md, Protocol Errors"
SPEC_IDS = "BP/building_blocks.md, IDs; BP/building_blocks.md, Protocol Errors"
SPEC_URIS = "BP/building_blocks.md, URIs; BP/uri_reference.md"

INVALID_URI = "wamp.error.invalid_uri"
BASE = "com.wamp_conformance.raw"
# Each breaks a MUST of the loose rules (BP/building_blocks.md, "URIs"): an
# empty component, whitespace, the reserved character '#'.
BAD_URIS = ("com.wamp_conformance..raw", "com.wamp_conformance.raw x", "#com.wamp_conformance")

Payload = Any
"""A Python value to encode with the codec, or ``bytes`` sent as they are."""


def encode(serializer: str, value: Payload) -> bytes:
    """``value`` encoded with the codec directly (no WAMP validation at all)."""
    if isinstance(value, bytes):
        return value
    if serializer == "json":
        return json.dumps(value, separators=(",", ":")).encode("utf-8")
    if serializer == "msgpack":
        data = msgpack.packb(value, use_bin_type=True)
        assert isinstance(data, bytes)
        return data
    data = cbor2.dumps(value)
    assert isinstance(data, bytes)
    return data


# Undecodable bytes per codec (JSON's must still be UTF-8: WebSocket text).
GARBAGE = {
    "json": b'[32, 1, {"unterminated',
    "msgpack": b"\xc1",  # the one byte MessagePack never uses
    "cbor": b"\xff",  # a "break" stop code where a data item must be
}


def _labelled(
    serializer: str, what: str, spec: str, function: Callable[[Context], Awaitable[None]]
) -> Callable[[Context], Awaitable[None]]:
    """Run ``function``; name the serializer, the bad input and the spec rule in
    any failure."""

    async def run(ctx: Context) -> None:
        try:
            await function(ctx)
        except Failure as exc:
            raise Failure(f"[{serializer}] {what} ({spec}): {exc}") from None

    return run


class Bystanders:
    """Two sessions that have nothing to do with the offender: a subscriber and
    a publisher. ``check`` proves the router still serves them."""

    def __init__(self, ctx: Context, serializer: str, topic: str) -> None:
        self.ctx = ctx
        self.serializer = serializer
        self.topic = topic
        self.subscriber: Peer | None = None
        self.publisher: Peer | None = None
        self.rounds = 0

    async def open(self) -> None:
        ctx = self.ctx
        self.subscriber = await ctx.peer(serializer=self.serializer, name="bystander subscriber")
        self.publisher = await ctx.peer(serializer=self.serializer, name="bystander publisher")
        request = self.subscriber.req()
        await self.subscriber.send(Subscribe(request, {}, self.topic))
        reply = await self.subscriber.expect(Subscribed, what="for the bystander's SUBSCRIBE")
        ctx.check(reply.request == request, f"SUBSCRIBED.Request {reply.request} != {request}")

    async def subscriber_event(self) -> Event:
        """The next EVENT at the bystander subscriber."""
        assert self.subscriber is not None
        return await self.subscriber.expect(Event, what="at the bystander subscriber")

    async def check(self, offender: Peer | None = None) -> None:
        """A PUBLISH (acknowledged) from one bystander reaches the other; a new
        session can join. ``offender`` (aborted) must not get the EVENT."""
        ctx = self.ctx
        assert self.subscriber is not None
        assert self.publisher is not None
        self.rounds += 1
        marker = f"round {self.rounds}"
        request = self.publisher.req()
        await self.publisher.send(Publish(request, {"acknowledge": True}, self.topic, [marker]))
        shared = (
            " (the aborted offender was subscribed to the same topic; BP/building_blocks.md,"
            " Protocol Errors: implementations MUST abort sessions (disposing all of their"
            " resources such as subscriptions and registrations) -- another session's bad"
            " input must not affect this one)"
        )
        item = await self.publisher.receive()
        if not isinstance(item, Published):
            what = (
                "the router closed this unrelated session's transport"
                if item is CLOSED
                else f"got {describe(item)}"
            )
            ctx.fail(
                f"bystander publisher: expected PUBLISHED for its PUBLISH to {self.topic},"
                f" {what}{shared}"
            )
        assert isinstance(item, Published)
        ctx.check(
            item.request == request,
            f"PUBLISHED.Request {item.request} != {request}",
        )
        received = await self.subscriber.receive()
        if not isinstance(received, Event):
            what = (
                f"nothing came in {ctx.timeout:g} s: the router acknowledged the publication"
                " but lost the EVENT"
                if received is None
                else f"got {describe(received)}"
            )
            ctx.fail(
                "bystander subscriber: expected EVENT for the bystander's PUBLISH (PUBLISHED"
                f" came), {what}{shared}"
            )
        assert isinstance(received, Event)
        event = received
        ctx.check(
            event.args == [marker],
            f"the bystander's EVENT carries {event.args!r}, expected {[marker]!r}",
        )
        if offender is not None:
            # BP/building_blocks.md: an aborted session's subscriptions are disposed.
            item = await offender.receive(0.1)
            if isinstance(item, Event):
                ctx.fail(
                    "the aborted session still got an EVENT: its subscriptions were not"
                    " disposed (BP/building_blocks.md, Protocol Errors)"
                )
        await ctx.peer(serializer=self.serializer, name="late joiner")


async def _setup(
    ctx: Context, serializer: str, name: str, *, subscribe: bool = True
) -> tuple[Bystanders, Peer]:
    """Bystanders on ``<BASE>.<serializer>.<name>``, and a joined offender
    subscribed to the same topic (request 1) when ``subscribe``."""
    topic = f"{BASE}.{serializer}.{name}"
    bystanders = Bystanders(ctx, serializer, topic)
    await bystanders.open()
    offender = await ctx.peer(serializer=serializer, name="offender")
    if subscribe:
        request = offender.req()
        await offender.send(Subscribe(request, {}, topic))
        reply = await offender.expect(Subscribed, what="for the offender's first SUBSCRIBE")
        ctx.check(reply.request == request, f"SUBSCRIBED.Request {reply.request} != {request}")
    return bystanders, offender


def violation(
    serializer: str, name: str, title: str, spec: str, build: Callable[[int, str], Payload]
) -> None:
    """Register ``raw.<serializer>.<name>``: the value ``build(next request ID,
    topic)`` is a protocol violation."""

    async def check(ctx: Context) -> None:
        bystanders, offender = await _setup(ctx, serializer, name)
        data = encode(serializer, build(offender.req(), bystanders.topic))
        await expect_violation(ctx, offender, data)
        await bystanders.check(offender)

    scenario(f"raw.{serializer}.{name}", title, spec)(_labelled(serializer, title, spec, check))


def register(serializer: str) -> None:
    """Register every raw scenario for ``serializer``."""
    s = serializer

    def topic_of(name: str) -> str:
        return f"{BASE}.{s}.{name}"

    # -- malformed messages -------------------------------------------------------
    violation(
        s,
        "not_a_list",
        "A message that is not a list is a protocol violation",
        SPEC_MESSAGES,
        lambda req, topic: {"type": 32, "request": req, "topic": topic},
    )
    violation(
        s,
        "empty_list",
        "An empty list is a protocol violation",
        SPEC_MESSAGES,
        lambda req, topic: [],
    )
    violation(
        s,
        "type_not_int",
        "A message type that is a string is a protocol violation",
        SPEC_MESSAGES,
        lambda req, topic: ["32", req, {}, topic],
    )
    violation(
        s,
        "request_id_string",
        "A request ID that is a string is a protocol violation",
        SPEC_MESSAGES,
        lambda req, topic: [32, str(req), {}, topic],
    )
    violation(
        s,
        "options_not_dict",
        "SUBSCRIBE.Options that is a list is a protocol violation",
        SPEC_MESSAGES,
        lambda req, topic: [32, req, [], topic],
    )
    violation(
        s,
        "uri_not_string",
        "SUBSCRIBE.Topic that is an integer is a protocol violation",
        SPEC_MESSAGES,
        lambda req, topic: [32, req, {}, 42],
    )
    violation(
        s,
        "missing_element",
        "A PUBLISH without its Topic is a protocol violation",
        SPEC_MESSAGES,
        lambda req, topic: [16, req, {}],
    )
    violation(
        s,
        "unknown_type",
        "An unknown message type (99) is a protocol violation",
        SPEC_MESSAGES,
        lambda req, topic: [99, req, {}],
    )
    violation(
        s,
        "undecodable",
        f"Bytes that are not valid {s} are a protocol violation (or a close)",
        "BP/building_blocks.md, Serializers; BP/building_blocks.md, Protocol Errors",
        lambda req, topic: GARBAGE[s],
    )

    # -- IDs ------------------------------------------------------------------------
    violation(
        s,
        "id_zero",
        "A request ID of 0 (outside 1..2^53) is a protocol violation",
        SPEC_IDS,
        lambda req, topic: [32, 0, {}, topic],
    )
    violation(
        s,
        "id_too_large",
        "A request ID of 2^53+1 (outside 1..2^53) is a protocol violation",
        SPEC_IDS,
        lambda req, topic: [32, MAX_ID + 1, {}, topic],
    )
    violation(
        s,
        "id_negative",
        "A negative request ID is a protocol violation",
        SPEC_IDS,
        lambda req, topic: [32, -1, {}, topic],
    )
    # The offender's first SUBSCRIBE used request 1; 5 skips 2..4. (The spec's
    # exception for CALL under progressive call invocations does not apply.)
    violation(
        s,
        "non_sequential_request_id",
        "A request ID that skips ahead (1 then 5) is a protocol violation",
        SPEC_IDS,
        lambda req, topic: [32, req + 3, {}, topic + ".other"],
    )

    # -- messages the router must not get ---------------------------------------------
    violation(
        s,
        "yield_unknown_invocation",
        "YIELD for an INVOCATION that was never sent is a protocol violation",
        SPEC_ERRORS,
        lambda req, topic: [70, 4242, {}],
    )
    violation(
        s,
        "error_for_subscribe",
        "A client's ERROR with REQUEST.Type SUBSCRIBE is a protocol violation",
        SPEC_ERRORS,
        lambda req, topic: [8, 32, 1, {}, f"{BASE}.oops"],
    )
    for name, kind, build in (
        ("welcome", "WELCOME", lambda req, topic: [2, 1234, {"roles": {"broker": {}}}]),
        ("subscribed", "SUBSCRIBED", lambda req, topic: [33, req, 1234]),
        ("event", "EVENT", lambda req, topic: [36, 1234, 5678, {}]),
        ("result", "RESULT", lambda req, topic: [50, 1, {}]),
        ("invocation", "INVOCATION", lambda req, topic: [68, 1, 1234, {}]),
    ):
        violation(
            s,
            f"client_sends_{name}",
            f"{kind} sent by a client (a router-to-client message) is a protocol violation",
            SPEC_MESSAGES,
            build,
        )

    # -- ERROR for a real INVOCATION, with the wrong REQUEST.Type -----------------------
    name = "error_wrong_request_type"
    title = "A callee's ERROR for its INVOCATION but typed CALL is a protocol violation"

    async def error_wrong_request_type(ctx: Context) -> None:
        bystanders, offender = await _setup(ctx, s, name)
        procedure = topic_of(name)
        request = offender.req()
        await offender.send(Register(request, {}, procedure))
        await offender.expect(Registered, what="for the offender's REGISTER")
        caller = await ctx.peer(serializer=s, name="caller")
        call = caller.req()
        await caller.send(Call(call, {}, procedure, []))
        invocation = await offender.expect(Invocation, what=f"for the CALL to {procedure}")
        oops = f"{BASE}.oops"
        # ERROR.Type CALL (48), with the INVOCATION's request ID: only 68 is valid.
        await expect_violation(
            ctx, offender, encode(s, [8, 48, invocation.request, {}, oops, ["bad"]])
        )
        await bystanders.check(offender)
        # The bad ERROR must not have been taken as the callee's answer.
        reply = await caller.receive(0.2)
        if isinstance(reply, Result) or (isinstance(reply, Error) and reply.error == oops):
            ctx.fail(f"the caller got {describe(reply)}: the bad ERROR was relayed")

    scenario(f"raw.{s}.{name}", title, SPEC_ERRORS)(
        _labelled(s, title, SPEC_ERRORS, error_wrong_request_type)
    )

    # -- invalid URIs: ERROR, not ABORT ----------------------------------------------------
    for kind, code, build_request in (
        ("subscribe", 32, lambda req, uri: [32, req, {}, uri]),
        ("call", 48, lambda req, uri: [48, req, {}, uri, []]),
    ):
        uri_scenario(s, kind, code, build_request)


def uri_scenario(
    serializer: str, kind: str, code: int, build: Callable[[int, str], Payload]
) -> None:
    """Register ``raw.<serializer>.<kind>_invalid_uri``."""
    name = f"{kind}_invalid_uri"
    upper = kind.upper()
    title = f"{upper} with an invalid URI gets ERROR wamp.error.invalid_uri, not ABORT"

    async def check(ctx: Context) -> None:
        bystanders, offender = await _setup(ctx, serializer, name)
        for uri in BAD_URIS:
            request = offender.req()
            await offender.send_raw(encode(serializer, build(request, uri)))
            reply = await offender.receive()
            if not isinstance(reply, Error):
                extra = ""
                if isinstance(reply, Abort) or reply is CLOSED:
                    extra = " (a bad URI is no protocol violation: the session must go on)"
                ctx.fail(
                    f"{upper} {uri!r}: expected ERROR {INVALID_URI}, got {describe(reply)}{extra}"
                )
            ctx.check(
                (reply.request_type, reply.request) == (code, request),
                f"{upper} {uri!r}: ERROR is for ({reply.request_type}, {reply.request}),"
                f" not ({code}, {request})",
            )
            ctx.check(
                reply.error == INVALID_URI,
                f"{upper} {uri!r}: expected ERROR {INVALID_URI}, got ERROR {reply.error}",
            )
        # The offender's session goes on: its next PUBLISH is served.
        request = offender.req()
        await offender.send(Publish(request, {"acknowledge": True}, bystanders.topic, ["own"]))
        reply = await offender.expect(Published, what="after the ERRORs (the session goes on)")
        ctx.check(reply.request == request, f"PUBLISHED.Request {reply.request} != {request}")
        event = await bystanders.subscriber_event()
        ctx.check(event.args == ["own"], f"EVENT carries {event.args!r}, not ['own']")
        await bystanders.check()

    scenario(f"raw.{serializer}.{name}", title, SPEC_URIS)(
        _labelled(serializer, title, SPEC_URIS, check)
    )


for _serializer in SERIALIZERS:
    register(_serializer)
