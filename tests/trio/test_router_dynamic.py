"""Dynamic authentication and authorization by WAMP procedures, configured
from a file (``examples/router-dynamic.toml``), over real loopback WebSocket."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import trio

from wamp_core import ErrorURI
from wamp_trio._auth import ticket_auth
from wamp_trio._client import ApplicationError, JoinError, Session, connect
from wamp_trio._config import ConfigError, TcpListener, build_router, load_config, parse_config
from wamp_trio._host import RouterHost, serve_router

EXAMPLE = Path(__file__).parents[2] / "examples" / "router-dynamic.toml"


@contextlib.asynccontextmanager
async def dynamic_router() -> AsyncIterator[str]:
    """The example configuration on a free port; yields its WebSocket URL."""
    config = load_config(EXAMPLE)
    (listener,) = config.listeners
    assert isinstance(listener, TcpListener)
    async with trio.open_nursery() as nursery:
        host = RouterHost(build_router(config))
        endpoints = await nursery.start(serve_router, host, [dataclasses.replace(listener, port=0)])
        with trio.fail_after(30):
            yield next(e.url for e in endpoints if e.kind == "websocket")
        nursery.cancel_scope.cancel()


class Backend:
    """What the backend session decides, and what it was asked."""

    def __init__(self) -> None:
        self.asked: list[tuple[str, str, str]] = []  # (authid, uri, action)
        self.hold: dict[str, trio.Event] = {}  # authid -> answer once set

    def authenticate(self, realm: str, authid: str, details: dict[str, Any]) -> Any:
        if details.get("ticket") != f"{authid}-secret":
            raise ApplicationError("com.example.wrong_ticket")
        return {"role": "frontend", "extra": {"greeting": f"hello {authid}"}}

    async def authorize(
        self, session: dict[str, Any], uri: str, action: str, options: dict[str, Any]
    ) -> Any:
        self.asked.append((session["authid"], uri, action))
        gate = self.hold.get(session["authid"])
        if gate is not None:
            await gate.wait()
        if uri.startswith("com.example.public."):
            return {"allow": True, "cache": True}
        if uri == "com.example.whoami":
            return {"allow": True, "disclose": True}
        return False


@contextlib.asynccontextmanager
async def backend(url: str) -> AsyncIterator[Backend]:
    decide = Backend()
    async with connect(url, "realm1", **ticket_auth("backend-ticket", authid="backend")) as s:
        await s.register("com.example.authenticate", decide.authenticate)
        await s.register("com.example.authorize", decide.authorize)
        await s.register("com.example.public.echo", lambda *args: list(args))
        await s.register("com.example.secret", lambda: "secret")

        async def whoami(*, details: Any) -> Any:
            return details.caller_authid

        await s.register("com.example.whoami", whoami)
        yield decide


def frontend(url: str, authid: str, ticket: str) -> contextlib.AbstractAsyncContextManager[Session]:
    return connect(url, "realm1", **ticket_auth(ticket, authid=authid))


async def test_the_procedures_admit_and_authorize_frontend_sessions() -> None:
    async with dynamic_router() as url, backend(url) as decide:
        async with frontend(url, "joe", "joe-secret") as joe:
            assert (joe.authid, joe.authrole) == ("joe", "frontend")
            assert await joe.call("com.example.public.echo", 1, "a") == [1, "a"]
            assert await joe.call("com.example.public.echo", 2) == [2]  # cached
            assert await joe.call("com.example.whoami") == "joe"  # disclosed
            with pytest.raises(ApplicationError) as info:
                await joe.call("com.example.secret")
            assert info.value.error == ErrorURI.NOT_AUTHORIZED
            with pytest.raises(ApplicationError) as info:
                await joe.register("com.example.mine", lambda: None)
            assert info.value.error == ErrorURI.NOT_AUTHORIZED
            await joe.publish("com.example.public.news", "hi", acknowledge=True)
        assert decide.asked == [
            ("joe", "com.example.public.echo", "call"),
            ("joe", "com.example.whoami", "call"),
            ("joe", "com.example.secret", "call"),
            ("joe", "com.example.mine", "register"),
            ("joe", "com.example.public.news", "publish"),
        ]


async def test_the_backend_principal_is_static_and_wrong_tickets_are_refused() -> None:
    async with dynamic_router() as url, backend(url):
        with pytest.raises(JoinError) as info:
            async with frontend(url, "joe", "not-joe's"):
                pass
        assert info.value.reason == ErrorURI.AUTHENTICATION_FAILED
        # The static principal's own ticket is checked by the router, not the procedure.
        with pytest.raises(JoinError) as info:
            async with frontend(url, "backend", "backend-secret"):
                pass
        assert info.value.reason == ErrorURI.AUTHENTICATION_FAILED


async def test_without_the_backend_nobody_else_gets_in() -> None:
    async with dynamic_router() as url:
        with pytest.raises(JoinError) as info:
            async with frontend(url, "joe", "joe-secret"):
                pass
        assert info.value.reason == ErrorURI.AUTHENTICATION_FAILED


async def test_a_session_waiting_on_the_authorizer_does_not_hold_up_others() -> None:
    async with dynamic_router() as url, backend(url) as decide:
        decide.hold["slow"] = gate = trio.Event()
        async with (
            frontend(url, "slow", "slow-secret") as slow,
            frontend(url, "fast", "fast-secret") as fast,
        ):
            results: list[Any] = []

            async def call_slow() -> None:
                results.append(await slow.call("com.example.public.echo", "slow"))

            async with trio.open_nursery() as nursery:
                nursery.start_soon(call_slow)
                while not decide.asked:
                    await trio.sleep(0.01)
                assert await fast.call("com.example.public.echo", "fast") == ["fast"]
                assert results == []
                gate.set()
            assert results == [["slow"]]


@pytest.mark.parametrize(
    ("fragment", "key", "problem"),
    [
        (
            '[realms.authenticator]\nprocedure = "wamp.auth"\n',
            "realms[0].authenticator.procedure",
            "not a valid procedure URI",
        ),
        (
            '[realms.authenticator]\nprocedure = "com.x.auth"\nflavour = 1\n',
            "realms[0].authenticator.flavour",
            "unknown key",
        ),
        (
            '[realms.authenticator]\nprocedure = "com.x.auth"\nrealm = "nowhere"\n',
            "realms[0].authenticator.realm",
            "no realm 'nowhere'",
        ),
        (
            'anonymous = "r"\n[realms.authenticator]\nprocedure = "com.x.auth"\n'
            '[[realms.roles]]\nname = "r"\n',
            "realms[0].anonymous",
            "not in ticket mode",
        ),
        (
            '[[realms.roles]]\nname = "r"\nauthorizer = "com.x.authz"\n'
            '[[realms.roles.permissions]]\nuri = "com."\nmatch = "prefix"\n',
            "realms[0].roles[0].authorizer",
            "either permissions or an authorizer",
        ),
        (
            '[[realms.roles]]\nname = "r"\nauthorizer = "not a uri"\n',
            "realms[0].roles[0].authorizer",
            "not a valid procedure URI",
        ),
    ],
)
def test_config_mistakes_name_the_key(fragment: str, key: str, problem: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(f'[[realms]]\nname = "realm1"\n{fragment}')
    assert info.value.key == key
    assert problem in str(info.value)
