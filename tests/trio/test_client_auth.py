"""wamp_trio._auth: the trio client authenticates against the core router.

The router (``PrincipalAuthenticator`` with every method) runs in-process over
real loopback WebSocket and RawSocket (``serve_router`` on port 0).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
import trio

import wamp_core
from wamp_core import ChallengeReceived, ErrorURI
from wamp_trio._auth import (
    ClientAuth,
    ScramAuth,
    cryptosign_auth,
    scram_auth,
    ticket_auth,
    wampcra_auth,
)
from wamp_trio._client import JoinError, connect
from wamp_trio._config import TcpListener
from wamp_trio._host import Endpoint, RouterHost, serve_router

CLIENT_SEED = "4d57d97a68f555696620a6d849c0ce582568518d729eb753dc7c732de2804510"
ROUTER_SEED = "8b5f9c0e3c6a4b2d1e0f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a0b9c8d"
OTHER_SEED = "00" * 32
# Small argon2 costs keep the tests fast; the clients' minimums are lowered to match.


def cheap_credential(password: str, kdf: str) -> wamp_core.ScramCredential:
    return wamp_core.derive_scram_credential(password, kdf=kdf, iterations=2, memory=1024)


def make_router() -> wamp_core.Router:
    client = wamp_core.CryptosignKey(CLIENT_SEED)
    principals = {
        "alice": wamp_core.Principal("user", ticket="alice-ticket"),
        "bob": wamp_core.Principal("user", wampcra=wamp_core.CraCredential("bob-secret")),
        "carol": wamp_core.Principal(
            "admin", wampcra=wamp_core.CraCredential.salted("carol-secret", "carol-salt", 100, 32)
        ),
        "dave": wamp_core.Principal("device", cryptosign=[client.public_key_hex]),
        "erin": wamp_core.Principal(
            "user",
            credentials={
                "wamp-scram": cheap_credential("erin-password", "argon2id13"),
                "scram": cheap_credential("erin-password", "argon2id-13"),
            },
        ),
        "frank": wamp_core.Principal(
            "user",
            credentials={
                "wamp-scram": wamp_core.derive_scram_credential(
                    "frank-password", kdf="pbkdf2", iterations=4096
                )
            },
        ),
    }
    authenticator = wamp_core.PrincipalAuthenticator(
        {"realm1": principals},
        methods=[
            wamp_core.TicketMethod(),
            wamp_core.WampCraMethod(),
            wamp_core.CryptosignMethod(wamp_core.CryptosignKey(ROUTER_SEED)),
            wamp_core.ScramMethod("wamp-scram"),
            wamp_core.ScramMethod("scram"),
        ],
    )
    return wamp_core.Router(["realm1"], authenticator=authenticator)


@asynccontextmanager
async def running_router(
    router: wamp_core.Router | None = None,
) -> AsyncIterator[tuple[RouterHost, list[Endpoint]]]:
    host = RouterHost(router or make_router())
    async with trio.open_nursery() as nursery:
        endpoints: list[Endpoint] = await nursery.start(serve_router, host, [TcpListener(port=0)])
        try:
            yield host, endpoints
        finally:
            nursery.cancel_scope.cancel()


def url(endpoints: list[Endpoint], prefix: str = "ws://") -> str:
    return next(e.url for e in endpoints if e.url.startswith(prefix))


async def join(endpoints: list[Endpoint], auth: ClientAuth, **kwargs: Any) -> dict[str, Any]:
    """Join with ``auth``, call a procedure of our own, report what WELCOME said."""
    with trio.fail_after(20):
        async with connect(url(endpoints), "realm1", **auth, **kwargs) as session:
            await session.register("com.example.add", lambda a, b: a + b)
            result = await session.call("com.example.add", 2, 3)
            return {
                "authid": session.authid,
                "authrole": session.authrole,
                "authmethod": session.authmethod,
                "result": result,
            }


async def refused(endpoints: list[Endpoint], auth: ClientAuth, **kwargs: Any) -> JoinError:
    with trio.fail_after(20), pytest.raises(JoinError) as info:
        async with connect(url(endpoints), "realm1", **auth, **kwargs):
            pass
    return info.value


CASES = [
    ("ticket", ticket_auth("alice-ticket", authid="alice"), "alice", "user"),
    ("wampcra", wampcra_auth("bob-secret", authid="bob"), "bob", "user"),
    ("wampcra-salted", wampcra_auth("carol-secret", authid="carol"), "carol", "admin"),
    ("cryptosign", cryptosign_auth(CLIENT_SEED, authid="dave"), "dave", "device"),
    (
        "cryptosign-router",
        cryptosign_auth(
            CLIENT_SEED,
            authid="dave",
            trusted_router_keys=[wamp_core.CryptosignKey(ROUTER_SEED).public_key_hex],
        ),
        "dave",
        "device",
    ),
    (
        "wamp-scram",
        scram_auth(
            "erin-password",
            authid="erin",
            spelling="wamp-scram",
            min_argon2_memory=8,
            min_argon2_work=8,
        ),
        "erin",
        "user",
    ),
    (
        "scram",
        scram_auth(
            "erin-password", authid="erin", spelling="scram", min_argon2_memory=8, min_argon2_work=8
        ),
        "erin",
        "user",
    ),
    ("wamp-scram-pbkdf2", scram_auth("frank-password", authid="frank"), "frank", "user"),
]


@pytest.mark.parametrize(("name", "auth", "authid", "authrole"), CASES, ids=[c[0] for c in CASES])
async def test_join_with_each_method(
    name: str, auth: ClientAuth, authid: str, authrole: str
) -> None:
    async with running_router() as (host, endpoints):
        joined = await join(endpoints, auth)
        assert joined == {
            "authid": authid,
            "authrole": authrole,
            "authmethod": auth.authmethods[0],
            "result": 5,
        }
        # The same helper serves a second connection (fresh nonces and challenges).
        assert (await join(endpoints, auth))["authid"] == authid
    assert host.router.sessions == {}


async def test_cryptosign_without_authid_is_found_by_key_over_rawsocket() -> None:
    async with running_router() as (_, endpoints):
        with trio.fail_after(20):
            auth = cryptosign_auth(CLIENT_SEED)
            async with connect(url(endpoints, "rs://"), "realm1", **auth) as s:
                assert (s.authid, s.authrole) == ("dave", "device")


async def test_authid_given_to_connect() -> None:
    async with running_router() as (_, endpoints):
        joined = await join(endpoints, ticket_auth("alice-ticket"), authid="alice")
        assert joined["authid"] == "alice"


WRONG = [
    ("ticket", ticket_auth("wrong", authid="alice")),
    ("ticket-unknown-authid", ticket_auth("alice-ticket", authid="mallory")),
    ("wampcra", wampcra_auth("wrong", authid="bob")),
    ("wampcra-salted", wampcra_auth("wrong", authid="carol")),
    ("cryptosign", cryptosign_auth(OTHER_SEED, authid="dave")),
    (
        "wamp-scram",
        scram_auth(
            "wrong", authid="erin", spelling="wamp-scram", min_argon2_memory=8, min_argon2_work=8
        ),
    ),
    (
        "scram",
        scram_auth(
            "wrong", authid="erin", spelling="scram", min_argon2_memory=8, min_argon2_work=8
        ),
    ),
]


@pytest.mark.parametrize(("name", "auth"), WRONG, ids=[c[0] for c in WRONG])
async def test_wrong_credentials_are_refused(name: str, auth: ClientAuth) -> None:
    async with running_router() as (host, endpoints):
        error = await refused(endpoints, auth)
        assert error.reason == ErrorURI.AUTHENTICATION_FAILED
    assert host.router.sessions == {}


async def test_untrusted_router_key_is_refused_by_the_client() -> None:
    auth = cryptosign_auth(CLIENT_SEED, authid="dave", trusted_router_keys=[OTHER_SEED])
    async with running_router() as (_, endpoints):
        with trio.fail_after(20), pytest.raises(ValueError, match="router authentication"):
            async with connect(url(endpoints), "realm1", **auth):
                pass


async def test_router_without_key_is_refused_when_router_auth_is_asked() -> None:
    dave = wamp_core.Principal(
        "device", cryptosign=[wamp_core.CryptosignKey(CLIENT_SEED).public_key_hex]
    )
    # The default methods: cryptosign without a router key.
    authenticator = wamp_core.PrincipalAuthenticator({"realm1": {"dave": dave}})
    router = wamp_core.Router(["realm1"], authenticator=authenticator)
    auth = cryptosign_auth(
        CLIENT_SEED,
        authid="dave",
        trusted_router_keys=[wamp_core.CryptosignKey(ROUTER_SEED).public_key_hex],
    )
    async with running_router(router) as (_, endpoints):
        with trio.fail_after(20), pytest.raises(ValueError, match="router authentication"):
            async with connect(url(endpoints), "realm1", **auth):
                pass


async def test_unavailable_channel_binding_is_refused_by_the_client() -> None:
    # Plain TCP has no TLS channel binding: the router answers unbound.
    auth = cryptosign_auth(CLIENT_SEED, authid="dave", channel_binding="tls-unique")
    async with running_router() as (_, endpoints):
        with trio.fail_after(20), pytest.raises(ValueError, match="channel binding"):
            async with connect(url(endpoints), "realm1", **auth):
                pass


def test_helpers_are_connect_keywords() -> None:
    auth = cryptosign_auth(
        CLIENT_SEED, trusted_router_keys=[wamp_core.CryptosignKey(ROUTER_SEED).public_key_hex]
    )
    assert list(auth) == ["authmethods", "authextra", "on_challenge"]
    assert auth["authmethods"] == ["cryptosign"]
    first = dict(auth["authextra"])
    assert first["pubkey"] == wamp_core.CryptosignKey(CLIENT_SEED).public_key_hex
    # hello() starts a new attempt: a new router challenge.
    hello = auth.hello("dave")
    assert hello["authid"] == "dave"
    assert hello["authextra"]["challenge"] != first["challenge"]
    scram = scram_auth("pw", authid="erin")
    assert list(scram) == ["authmethods", "authid", "authextra", "on_challenge", "on_join"]
    ticket = ticket_auth("t", authid="a")
    assert dict(ticket) == {
        "authmethods": ["ticket"],
        "authid": "a",
        "authextra": {},
        "on_challenge": ticket.on_challenge,
    }
    with pytest.raises(KeyError):
        ticket_auth("t")["on_join"]


def test_challenge_for_a_method_not_offered_is_refused() -> None:
    with pytest.raises(ValueError, match="not offered"):
        ticket_auth("t").on_challenge(ChallengeReceived("wampcra", {"challenge": "x"}))


def test_scram_welcome_checks_the_server_signature() -> None:
    """A WELCOME without the right ServerSignature is refused (mutual authentication)."""
    auth = scram_auth("pw", authid="erin", min_argon2_memory=8, min_argon2_work=8)
    assert isinstance(auth, ScramAuth)
    nonce = auth.authextra["nonce"]
    server_nonce = nonce + "c2VydmVy"
    salt = "c2FsdHNhbHRzYWx0c2FsdA=="
    answer = auth.on_challenge(
        ChallengeReceived(
            "wamp-scram",
            {
                "nonce": server_nonce,
                "salt": salt,
                "kdf": "argon2id13",
                "iterations": 2,
                "memory": 1024,
            },
        )
    )
    assert isinstance(answer, tuple)
    with pytest.raises(wamp_core.ScramError):
        auth.welcome({"authmethod": "wamp-scram", "authextra": {"verifier": "AAAA"}})
    # The next attempt has a new client nonce.
    assert auth.authextra["nonce"] != nonce


@pytest.mark.parametrize(("name", "auth", "authid", "authrole"), CASES, ids=[c[0] for c in CASES])
async def test_join_with_the_auth_argument(
    name: str, auth: ClientAuth, authid: str, authrole: str
) -> None:
    async with running_router() as (host, endpoints):
        for _ in range(2):  # fresh nonces for each HELLO
            with trio.fail_after(20):
                async with connect(url(endpoints), "realm1", auth=auth) as session:
                    assert (session.authid, session.authrole) == (authid, authrole)
                    assert session.authmethod == auth.authmethods[0]
    assert host.router.sessions == {}


async def test_the_auth_argument_checks_welcome_before_the_session_is_used() -> None:
    auth = ticket_auth("alice-ticket", authid="alice")

    def impostor(details: Any) -> None:
        raise ValueError("the router did not prove itself")

    auth.welcome = impostor  # type: ignore[method-assign]
    async with running_router() as (_host, endpoints):
        with trio.fail_after(20), pytest.raises(ValueError, match="did not prove itself"):
            async with connect(url(endpoints), "realm1", auth=auth):
                raise AssertionError("the body must not run")
