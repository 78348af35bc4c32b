"""Session lifecycle (BP/sessions.md, BP/building_blocks.md)."""

from __future__ import annotations

from wamp_core import (
    MAX_ID,
    Abort,
    Goodbye,
    Hello,
    Publish,
    Subscribe,
    Welcome,
    is_valid_uri,
)

from .._peer import CLOSED, describe
from .._suite import Context, scenario
from ._common import PROTOCOL_VIOLATION, ROUTER_ROLES, expect_violation

SPEC_ESTABLISH = "BP/sessions.md, Session Establishment"
SPEC_CLOSE = "BP/sessions.md, Session Closing"


@scenario(
    "session.welcome.details",
    "WELCOME carries a session ID in range, and router roles as dicts",
    SPEC_ESTABLISH,
)
async def welcome_details(ctx: Context) -> None:
    peer = await ctx.connect()
    welcome = await peer.join(ctx.realm)
    ctx.check(
        1 <= welcome.session <= MAX_ID,
        f"WELCOME.Session {welcome.session} is outside 1..2^53",
    )
    roles = welcome.details.get("roles")
    ctx.check(isinstance(roles, dict) and roles, f"WELCOME.Details.roles is {roles!r}")
    assert isinstance(roles, dict)
    unknown = set(roles) - set(ROUTER_ROLES)
    ctx.check(not unknown, f"WELCOME announces roles a router cannot have: {sorted(unknown)}")
    for name, value in roles.items():
        ctx.check(isinstance(value, dict), f"WELCOME.Details.roles.{name} is not a dict")


@scenario(
    "session.welcome.unique_ids",
    "Concurrent sessions get different session IDs",
    "BP/building_blocks.md, Identifiers (global scope)",
)
async def unique_session_ids(ctx: Context) -> None:
    peers = await ctx.peers(4)
    ids = [peer.session_id for peer in peers]
    ctx.check(len(set(ids)) == len(ids), f"session IDs repeat: {ids}")


@scenario("session.goodbye.echo", "GOODBYE is answered with GOODBYE", SPEC_CLOSE)
async def goodbye_echo(ctx: Context) -> None:
    peer = await ctx.peer()
    await peer.send(Goodbye({}, "wamp.close.close_realm"))
    reply = await peer.expect(Goodbye, what="in reply to GOODBYE")
    # BP/sessions.md only requires the reply ("GOODBYE must be replied to by the
    # receiving Peer") and that its Reason is a URI; wamp.close.goodbye_and_out
    # appears in examples and BP/uri_reference.md, never as a MUST or SHOULD, so
    # other reasons (Crossbar: wamp.close.normal) are allowed.
    ctx.check(
        is_valid_uri(reply.reason),
        f"GOODBYE reply Reason {reply.reason!r} is not a URI"
        " (BP/sessions.md: Reason MUST be a URI)",
    )


@scenario(
    "session.goodbye.rejoin",
    "After GOODBYE the same transport can join again",
    SPEC_CLOSE,
)
async def rejoin_after_goodbye(ctx: Context) -> None:
    peer = await ctx.peer()
    first = peer.session_id
    await peer.leave()
    await peer.hello(ctx.realm)
    reply = await peer.receive()
    if reply is CLOSED:
        # BP/building_blocks.md, Transports: implementations "MAY choose to tie the
        # lifetime of the underlying transport connection ... to that of a WAMP session".
        ctx.skip(
            "the router closes the transport after GOODBYE (allowed: MAY, BP/building_blocks.md)"
        )
    ctx.check(
        isinstance(reply, Welcome),
        f"expected WELCOME after HELLO on the reused transport, got {describe(reply)}",
    )
    assert isinstance(reply, Welcome)
    ctx.check(reply.session != first, "the second session got the first one's ID")


@scenario(
    "session.hello.no_such_realm",
    "HELLO to a realm that does not exist gets ABORT wamp.error.no_such_realm",
    "BP/sessions.md, Session Establishment; BP/uri_reference.md",
)
async def no_such_realm(ctx: Context) -> None:
    peer = await ctx.connect()
    await peer.hello("com.wamp_conformance.no_such_realm.x7q")
    reply = await peer.expect(Abort, Welcome, what="after HELLO to an unknown realm")
    if isinstance(reply, Welcome):
        ctx.skip("the router creates realms on demand")
    assert isinstance(reply, Abort)
    ctx.check(
        reply.reason == "wamp.error.no_such_realm",
        f"ABORT reason is {reply.reason!r}, not wamp.error.no_such_realm",
    )


@scenario(
    "session.hello.twice",
    "A second HELLO on an established session is a protocol violation",
    "BP/sessions.md, Session Establishment",
)
async def hello_twice(ctx: Context) -> None:
    peer = await ctx.peer()
    await expect_violation(ctx, peer, Hello(ctx.realm, {"roles": {"caller": {}}}))


@scenario(
    "session.before_welcome",
    "A request before HELLO is not served (ABORT, a closed transport or no answer)",
    "BP/sessions.md, Session Establishment",
)
async def request_before_hello(ctx: Context) -> None:
    peer = await ctx.connect()
    # BP/sessions.md: "The HELLO message MUST be the very first message sent by the
    # Client" -- but the router's reaction is not specified (BP/building_blocks.md,
    # Protocol Errors does not list a request before HELLO). ABORT
    # protocol_violation, a closed transport or no answer at all are accepted; the
    # request must never be served.
    await peer.send(Subscribe(1, {}, "com.example.topic"))
    reply = await peer.receive()
    if reply is None or reply is CLOSED:
        return
    if not isinstance(reply, Abort):
        ctx.fail(
            f"a SUBSCRIBE before HELLO was answered with {describe(reply)}; expected"
            f" ABORT {PROTOCOL_VIOLATION}, a closed transport or nothing"
        )
    assert isinstance(reply, Abort)
    ctx.check(
        reply.reason == PROTOCOL_VIOLATION,
        f"ABORT reason is {reply.reason!r}, not {PROTOCOL_VIOLATION}",
    )


@scenario(
    "session.after_goodbye",
    "After the router's GOODBYE, the session's requests are not answered",
    SPEC_CLOSE,
)
async def after_goodbye(ctx: Context) -> None:
    peer = await ctx.peer()
    await peer.leave()
    await peer.send(Publish(peer.req(), {"acknowledge": True}, "com.example.topic"))
    reply = await peer.receive(0.5)
    if reply is None or reply is CLOSED:
        return
    if isinstance(reply, Abort):  # a request outside a session is a violation
        ctx.check(
            reply.reason == PROTOCOL_VIOLATION,
            f"ABORT reason is {reply.reason!r}, not {PROTOCOL_VIOLATION}",
        )
        return
    ctx.fail(f"a PUBLISH after GOODBYE was answered with {describe(reply)}")


@scenario(
    "session.hello.invalid_realm",
    "HELLO with a realm that is not a valid URI is refused",
    "BP/uris.md; BP/sessions.md, Session Establishment",
)
async def invalid_realm(ctx: Context) -> None:
    peer = await ctx.connect()
    realm = "not a uri"
    assert not is_valid_uri(realm)
    await peer.hello(realm)
    # BP/uri_reference.md: for an incorrect URI "(e.g. realm, topic), then the other
    # Peer MUST respond with an ERROR message" -- before WELCOME that can only be
    # ABORT; closing the transport without it is no response at all.
    reply = await peer.expect(
        Abort,
        what="after HELLO with an invalid realm URI (BP/uri_reference.md: an incorrect URI,"
        " e.g. a realm, MUST be answered with wamp.error.invalid_uri)",
    )
    ctx.check(
        reply.reason in ("wamp.error.invalid_uri", "wamp.error.no_such_realm", PROTOCOL_VIOLATION),
        f"ABORT reason {reply.reason!r} (expected wamp.error.invalid_uri)",
    )
