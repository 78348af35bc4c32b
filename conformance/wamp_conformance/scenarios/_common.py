"""Helpers shared by the scenario modules."""

from __future__ import annotations

from wamp_core import Abort, Error, Message

from .._peer import CLOSED, Failure, Peer, describe
from .._suite import Context

__all__ = ["PROTOCOL_VIOLATION", "ROUTER_ROLES", "expect_error", "expect_violation"]

PROTOCOL_VIOLATION = "wamp.error.protocol_violation"
ROUTER_ROLES = ("broker", "dealer")
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
    ctx.check(
        (reply.request_type, reply.request) == (request_type, request),
        f"ERROR is for request ({reply.request_type}, {reply.request}),"
        f" not ({request_type}, {request})",
    )
    ctx.check(reply.error == error, f"ERROR URI is {reply.error!r}, not {error!r}")
    return reply
