"""Helpers shared by the scenario modules."""

from __future__ import annotations

from typing import Any

from wamp_core import (
    MAX_ID,
    Abort,
    Call,
    Error,
    Event,
    Message,
    Publish,
    Published,
    Result,
    Subscribe,
    Subscribed,
)

from .._peer import CLOSED, Failure, Peer, describe
from .._suite import Context

__all__ = [
    "NOT_AUTHORIZED",
    "PROTOCOL_VIOLATION",
    "ROUTER_ROLES",
    "Payload",
    "call",
    "call_result",
    "check_error",
    "expect_error",
    "expect_event",
    "expect_result",
    "expect_violation",
    "in_range",
    "next_event_is",
    "payload",
    "publish",
    "same",
    "subscribe",
]

PROTOCOL_VIOLATION = "wamp.error.protocol_violation"
NOT_AUTHORIZED = "wamp.error.not_authorized"
ROUTER_ROLES = ("broker", "dealer")

Payload = tuple[list[Any] | None, dict[str, Any] | None]
"""(Args, Kw) as sent; None where the element is absent."""
RULE = (
    "BP/building_blocks.md, Protocol Errors: implementations MUST send an ABORT"
    " message to the offending peer, having reason wamp.error.protocol_violation"
)


async def expect_violation(
    ctx: Context, peer: Peer, message: Message | bytes, *, established: bool = True
) -> None:
    """Send ``message`` (or raw bytes); the router must answer with ABORT
    ``wamp.error.protocol_violation`` (BP/building_blocks.md, "Protocol
    Errors") or close the transport -- and must not go on serving the session."""
    if isinstance(message, bytes):
        await peer.send_raw(message)
    else:
        await peer.send(message)
    try:
        reply = await peer.receive()
    except Failure as exc:  # e.g. SUBSCRIBED with the offending request ID 0
        raise Failure(
            f"expected ABORT {PROTOCOL_VIOLATION}, but the router served the offending"
            f" message: {exc} ({RULE})"
        ) from None
    if reply is CLOSED:
        return  # closing without ABORT is allowed for garbage it cannot answer
    if not isinstance(reply, Abort):
        ctx.fail(f"expected ABORT {PROTOCOL_VIOLATION}, got {describe(reply)} ({RULE})")
    ctx.check(
        reply.reason == PROTOCOL_VIOLATION,
        f"ABORT reason is {reply.reason!r}, not {PROTOCOL_VIOLATION}",
    )


async def expect_error(
    ctx: Context, peer: Peer, request_type: int, request: int, error: str, *, what: str = ""
) -> Error:
    """The next message must be ERROR for (``request_type``, ``request``) with ``error``."""
    reply = await peer.expect(Error, what=what)
    check_error(ctx, reply, request_type, request, error)
    return reply


def check_error(
    ctx: Context,
    reply: Error,
    request_type: int,
    request: int,
    error: str,
    *,
    wanted: str = "not",
) -> None:
    """``reply`` must be for (``request_type``, ``request``) and carry ``error``;
    ``wanted`` words the URI mismatch ("ERROR URI is X, <wanted> Y")."""
    ctx.check(
        (reply.request_type, reply.request) == (request_type, request),
        f"ERROR is for request ({reply.request_type}, {reply.request}),"
        f" not ({request_type}, {request})",
    )
    ctx.check(reply.error == error, f"ERROR URI is {reply.error!r}, {wanted} {error!r}")


# -- payloads and IDs --------------------------------------------------------------------


def in_range(value: int) -> bool:
    """Whether ``value`` is an ID (BP/building_blocks.md, IDs: 1..2^53)."""
    return 1 <= value <= MAX_ID


def payload(args: list[Any] | None, kwargs: dict[str, Any] | None) -> tuple[Any, Any]:
    """A payload as (Args, Kw): an absent Args or Kw equals an empty one
    (BP/messages.md: empty ones SHOULD be omitted)."""
    return (args if args is not None else [], kwargs if kwargs is not None else {})


def same(got: Any, sent: Any) -> bool:
    """Deep equality with the same JSON types throughout (``True`` is not ``1``,
    ``2.0`` is not ``2``)."""
    if type(got) is not type(sent):
        return False
    if isinstance(sent, dict):
        return got.keys() == sent.keys() and all(same(got[k], sent[k]) for k in sent)
    if isinstance(sent, list):
        return len(got) == len(sent) and all(map(same, got, sent))
    return bool(got == sent)


# -- calls -------------------------------------------------------------------------------


async def expect_result(
    ctx: Context,
    caller: Peer,
    request: int,
    what: str,
    *,
    label: str = "",
    details: bool = False,
) -> Result:
    """The next message to ``caller`` must be RESULT for CALL ``request``
    (``label`` names the request in the message, e.g. "CALL.Request "); with
    ``details``, its Details must be a dict."""
    result = await caller.expect(Result, what=what)
    ctx.check(
        result.request == request,
        f"RESULT is for request {result.request}, not {label}{request}",
    )
    if details:
        ctx.check(isinstance(result.details, dict), f"RESULT.Details is {result.details!r}")
    return result


async def call(
    ctx: Context,
    peer: Peer,
    procedure: str,
    args: list[Any] | None = None,
    kwargs: dict[str, Any] | None = None,
) -> Result | Error:
    """CALL, then the RESULT or ERROR for it."""
    request = peer.req()
    await peer.send(Call(request, {}, procedure, args, kwargs))
    reply = await peer.expect(Result, Error, what=f"in reply to CALL {procedure}")
    assert isinstance(reply, (Result, Error))
    ctx.check(reply.request == request, f"the reply is for request {reply.request}, not {request}")
    return reply


async def call_result(
    ctx: Context,
    peer: Peer,
    procedure: str,
    args: list[Any] | None = None,
    kwargs: dict[str, Any] | None = None,
    *,
    spec: str,
) -> Any:
    """CALL; RESULT expected (ERROR not_authorized skips); its first positional
    result (None when absent)."""
    reply = await call(ctx, peer, procedure, args, kwargs)
    if isinstance(reply, Error):
        if reply.error == NOT_AUTHORIZED:
            ctx.skip(f"the router does not let an anonymous session call {procedure}")
        ctx.fail(f"CALL {procedure} {args or []} got ERROR {reply.error}, expected RESULT ({spec})")
    return reply.args[0] if reply.args else None


# -- publish and subscribe (advanced profile and meta API) -------------------------------


async def subscribe(ctx: Context, peer: Peer, topic: str, **options: Any) -> int:
    """SUBSCRIBE, then SUBSCRIBED expected; the subscription ID. An ERROR fails
    the scenario (skips it for a ``wamp.`` topic refused with not_authorized)."""
    request = peer.req()
    await peer.send(Subscribe(request, options, topic))
    reply = await peer.expect(Subscribed, Error, what=f"in reply to SUBSCRIBE {topic}")
    if isinstance(reply, Error):
        if topic.startswith("wamp.") and reply.error == NOT_AUTHORIZED:
            ctx.skip(f"the router does not let an anonymous session subscribe to {topic}")
        ctx.fail(f"{peer.name}: SUBSCRIBE {topic} {options} was refused with {reply.error}")
    assert isinstance(reply, Subscribed)
    ctx.check(
        reply.request == request,
        f"SUBSCRIBED is for request {reply.request}, not {request}",
    )
    return reply.subscription


async def publish(
    ctx: Context,
    peer: Peer,
    topic: str,
    args: list[Any] | None = None,
    kwargs: dict[str, Any] | None = None,
    **options: Any,
) -> int:
    """An acknowledged PUBLISH, then PUBLISHED expected (an ERROR fails the
    scenario); the publication ID. (Not for publications the publisher itself
    receives: see ``exclude_me``.)"""
    request = peer.req()
    await peer.send(Publish(request, {**options, "acknowledge": True}, topic, args, kwargs))
    reply = await peer.expect(Published, Error, what=f"in reply to PUBLISH {topic}")
    if isinstance(reply, Error):
        ctx.fail(f"{peer.name}: PUBLISH {topic} {options} was refused with {reply.error}")
    assert isinstance(reply, Published)
    ctx.check(
        reply.request == request,
        f"PUBLISHED is for request {reply.request}, not {request}",
    )
    return reply.publication


async def expect_event(ctx: Context, peer: Peer, subscription: int, what: str) -> Event:
    """The next message must be an EVENT on ``subscription``."""
    event = await peer.expect(Event, what=what)
    ctx.check(
        event.subscription == subscription,
        f"{peer.name}: EVENT is for subscription {event.subscription}, not {subscription} ({what})",
    )
    return event


async def next_event_is(ctx: Context, peer: Peer, publication: int, rule: str) -> Event:
    """The next message must be the EVENT of ``publication``: any EVENT before it
    is one the peer should not have got (``rule`` says why)."""
    event = await peer.expect(Event, what=f"for publication {publication}")
    if event.publication != publication:
        ctx.fail(f"{peer.name} got an EVENT it should not have: {describe(event)} ({rule})")
    return event
