"""Authentication: ticket (AP/ap_authentication_ticket.md) and WAMP-CRA
(AP/ap_authentication_cra.md), with the principals given on the command line
(``--ticket AUTHID:TICKET``, ``--wampcra AUTHID:SECRET``); skipped without them."""

from __future__ import annotations

import json

from wamp_core import Abort, Authenticate, Challenge, Welcome, wampcra_signature

from .._peer import Peer
from .._suite import Context, scenario

SPEC_TICKET = "AP/ap_authentication_ticket.md"
SPEC_CRA = "AP/ap_authentication_cra.md"

# The spec only says "the server will response with an ABORT message"; the AP
# URI list has authentication_failed / authentication_denied, and Crossbar
# answers a wrong ticket or signature with wamp.error.not_authorized. All three
# are accepted.
AUTH_FAILURES = frozenset(
    {
        "wamp.error.authentication_failed",
        "wamp.error.authentication_denied",
        "wamp.error.not_authorized",
    }
)
UNKNOWN_AUTHID = "com.wamp_conformance.auth.nobody-7kq2"


def _credential(ctx: Context, method: str, option: str) -> tuple[str, str]:
    """(authid, secret) given for ``method``; skip without it."""
    credential = ctx.target.credentials.get(method)
    if not credential or not credential.get("authid") or not credential.get("secret"):
        ctx.skip(f"no {method} principal given ({option} AUTHID:SECRET)")
    return credential["authid"], credential["secret"]


async def _challenge(ctx: Context, method: str, authid: str) -> tuple[Peer, Challenge]:
    """HELLO offering only ``method`` as ``authid``; the CHALLENGE expected."""
    peer = await ctx.connect()
    await peer.hello(ctx.realm, authmethods=[method], authid=authid)
    reply = await peer.expect(
        Challenge, Abort, Welcome, what=f"after HELLO with authmethods [{method!r}]"
    )
    if isinstance(reply, Abort):
        ctx.fail(
            f"expected CHALLENGE {method} for authid {authid!r}, got ABORT {reply.reason}"
            f" {reply.details.get('message', '')}".rstrip()
        )
    if isinstance(reply, Welcome):
        ctx.fail(f"expected CHALLENGE {method} for authid {authid!r}, got WELCOME without one")
    assert isinstance(reply, Challenge)
    ctx.check(
        reply.authmethod == method,
        f"expected CHALLENGE for {method} (the only method offered), got {reply.authmethod!r}",
    )
    return peer, reply


def _cra_signature(ctx: Context, secret: str, challenge: Challenge) -> str:
    """The WAMP-CRA signature of ``challenge`` with ``secret``; an unusable
    CHALLENGE.Extra fails the scenario."""
    try:
        return wampcra_signature(secret, challenge.extra)
    except ValueError as exc:
        ctx.fail(f"the wampcra CHALLENGE.Extra is unusable: {exc} ({challenge.extra!r})")


async def _expect_welcome(ctx: Context, peer: Peer, authid: str, method: str) -> None:
    reply = await peer.expect(Welcome, Abort, what=f"after AUTHENTICATE ({method})")
    if isinstance(reply, Abort):
        ctx.fail(f"expected WELCOME for {authid!r} ({method}), got ABORT {reply.reason}")
    assert isinstance(reply, Welcome)
    details = reply.details
    ctx.check(
        details.get("authid") == authid,
        f"WELCOME.Details.authid is {details.get('authid')!r}, not {authid!r}",
    )
    ctx.check(
        details.get("authmethod") == method,
        f"WELCOME.Details.authmethod is {details.get('authmethod')!r}, not {method!r}",
    )
    ctx.check(
        isinstance(details.get("authrole"), str),
        f"WELCOME.Details.authrole is {details.get('authrole')!r}, not a string",
    )


async def _expect_refusal(ctx: Context, peer: Peer, what: str) -> None:
    reply = await peer.expect(Abort, Welcome, what=what)
    if isinstance(reply, Welcome):
        ctx.fail(f"expected ABORT {what}, got WELCOME as {reply.details.get('authid')!r}")
    assert isinstance(reply, Abort)
    ctx.check(
        reply.reason in AUTH_FAILURES,
        f"expected ABORT with one of {sorted(AUTH_FAILURES)} {what}, got {reply.reason!r}",
    )


@scenario(
    "auth.ticket.accepted",
    "The right ticket gets WELCOME with that authid and authmethod ticket",
    SPEC_TICKET,
)
async def ticket_accepted(ctx: Context) -> None:
    authid, ticket = _credential(ctx, "ticket", "--ticket")
    peer, _ = await _challenge(ctx, "ticket", authid)
    await peer.send(Authenticate(ticket, {}))
    await _expect_welcome(ctx, peer, authid, "ticket")


@scenario(
    "auth.ticket.wrong",
    "A wrong ticket gets ABORT (authentication_failed, or not_authorized as Crossbar sends)",
    SPEC_TICKET,
)
async def ticket_wrong(ctx: Context) -> None:
    authid, ticket = _credential(ctx, "ticket", "--ticket")
    peer, _ = await _challenge(ctx, "ticket", authid)
    await peer.send(Authenticate(ticket + "-wrong", {}))
    await _expect_refusal(ctx, peer, "for a wrong ticket")


@scenario(
    "auth.ticket.unknown_authid",
    "An unknown authid never gets WELCOME with ticket authentication",
    SPEC_TICKET,
)
async def ticket_unknown_authid(ctx: Context) -> None:
    _, ticket = _credential(ctx, "ticket", "--ticket")
    peer = await ctx.connect()
    await peer.hello(ctx.realm, authmethods=["ticket"], authid=UNKNOWN_AUTHID)
    # ABORT at once, or a CHALLENGE (the router need not tell that the authid
    # is unknown) whose AUTHENTICATE then fails.
    reply = await peer.expect(Abort, Challenge, Welcome, what="after HELLO with an unknown authid")
    if isinstance(reply, Challenge):
        await peer.send(Authenticate(ticket, {}))
        await _expect_refusal(ctx, peer, "for an unknown authid")
        return
    if isinstance(reply, Welcome):
        ctx.fail(f"expected ABORT for an unknown authid, got WELCOME as {reply.details!r}")


@scenario(
    "auth.wampcra.accepted",
    "The right WAMP-CRA signature gets WELCOME with that authid and authmethod wampcra",
    SPEC_CRA,
)
async def wampcra_accepted(ctx: Context) -> None:
    authid, secret = _credential(ctx, "wampcra", "--wampcra")
    peer, challenge = await _challenge(ctx, "wampcra", authid)
    await peer.send(Authenticate(_cra_signature(ctx, secret, challenge), {}))
    await _expect_welcome(ctx, peer, authid, "wampcra")


@scenario(
    "auth.wampcra.wrong",
    "A WAMP-CRA signature made with a wrong secret gets ABORT",
    SPEC_CRA,
)
async def wampcra_wrong(ctx: Context) -> None:
    authid, secret = _credential(ctx, "wampcra", "--wampcra")
    peer, challenge = await _challenge(ctx, "wampcra", authid)
    await peer.send(Authenticate(_cra_signature(ctx, secret + "-wrong", challenge), {}))
    await _expect_refusal(ctx, peer, "for a wrong WAMP-CRA signature")


CRA_MEMBERS = ("authid", "authrole", "authmethod", "authprovider", "nonce", "timestamp", "session")


@scenario(
    "auth.wampcra.challenge",
    "The WAMP-CRA challenge is a JSON object naming the authid and the session WELCOME assigns",
    SPEC_CRA,
)
async def wampcra_challenge(ctx: Context) -> None:
    authid, secret = _credential(ctx, "wampcra", "--wampcra")
    peer, challenge = await _challenge(ctx, "wampcra", authid)
    text = challenge.extra.get("challenge")
    ctx.check(isinstance(text, str), f"CHALLENGE.Extra.challenge is {text!r}, not a (JSON) string")
    assert isinstance(text, str)
    try:
        document = json.loads(text)
    except ValueError:
        ctx.fail(f"CHALLENGE.Extra.challenge is not JSON: {text[:200]!r}")
    ctx.check(isinstance(document, dict), f"the challenge is {document!r}, not a JSON object")
    missing = [name for name in CRA_MEMBERS if name not in document]
    ctx.check(not missing, f"the challenge lacks {missing} (it MUST contain {list(CRA_MEMBERS)})")
    ctx.check(
        document["authid"] == authid,
        f"the challenge's authid is {document['authid']!r}, not {authid!r}",
    )
    ctx.check(
        document["authmethod"] == "wampcra",
        f"the challenge's authmethod is {document['authmethod']!r}, not 'wampcra'",
    )
    await peer.send(Authenticate(wampcra_signature(secret, challenge.extra), {}))
    welcome = await peer.expect(Welcome, what="after AUTHENTICATE (wampcra)")
    ctx.check(
        document["session"] == welcome.session,
        f"the challenge's session is {document['session']!r}, but WELCOME assigned"
        f' {welcome.session} (it is "the WAMP session ID that will be assigned")',
    )
