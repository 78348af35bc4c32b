"""The transport and authentication scenarios: our router passes them; broken
variants (a RawSocket handshake, a WebSocket server, an authenticator) are caught."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
import trio
from wsproto.events import BytesMessage

import wamp_core
import wamp_trio._websocket as websocket_module
from tests.conformance.harness import SERIALIZERS, assert_passes, failed, running, verdicts
from wamp_conformance import Outcome, Target, run_suite, select
from wamp_core import RawSocketRouter
from wamp_trio._config import TcpListener, UnixListener
from wamp_trio._host import RouterHost, serve_router

TICKET = {"authid": "alice", "secret": "alice-ticket"}
WAMPCRA = {"authid": "bob", "secret": "bob-secret"}
CREDENTIALS = {"ticket": TICKET, "wampcra": WAMPCRA}


def auth_router(
    ticket_method: wamp_core.TicketMethod | None = None,
    cra_method: wamp_core.WampCraMethod | None = None,
    *,
    salted: bool = False,
) -> wamp_core.Router:
    """realm1 with alice (ticket), bob (WAMP-CRA, salted or not) and anonymous access."""
    cra = (
        wamp_core.CraCredential.salted(WAMPCRA["secret"], "pepper-salt", iterations=100)
        if salted
        else wamp_core.CraCredential(WAMPCRA["secret"])
    )
    authenticator = wamp_core.PrincipalAuthenticator(
        {
            "realm1": {
                "alice": wamp_core.Principal("user", ticket=TICKET["secret"]),
                "bob": wamp_core.Principal("user", wampcra=cra),
            }
        },
        anonymous={"realm1": "anonymous"},
        methods=[
            ticket_method or wamp_core.TicketMethod(),
            cra_method or wamp_core.WampCraMethod(),
        ],
    )
    return wamp_core.Router(["realm1"], authenticator=authenticator)


@pytest.mark.parametrize("serializer", SERIALIZERS)
async def test_our_router_passes_every_transport_and_auth_scenario(serializer: str) -> None:
    results = await assert_passes(
        ["transport", "auth"], serializer, router=auth_router(), credentials=CREDENTIALS
    )
    assert all(id.startswith(("transport.", "auth.")) for id in results)


@pytest.mark.parametrize("main", ["rawsocket", "longpoll"])
async def test_the_transport_scenarios_do_not_depend_on_the_main_transport(main: str) -> None:
    results = await verdicts(only=["transport"], main=main)
    assert failed(results) == {}
    assert {r.outcome for r in results.values()} == {Outcome.PASS}


async def test_salted_wampcra_passes() -> None:
    results = await verdicts(
        auth_router(salted=True), only=["auth.wampcra"], credentials=CREDENTIALS
    )
    assert {r.outcome for r in results.values()} == {Outcome.PASS}, results


async def test_auth_scenarios_skip_without_credentials() -> None:
    results = await verdicts(only=["auth"], credentials={"ticket": TICKET})
    skipped = {id: r.reason for id, r in results.items() if r.outcome is Outcome.SKIP}
    assert set(skipped) == set(select_ids("auth.wampcra"))
    assert all("--wampcra" in reason for reason in skipped.values())


async def test_transport_scenarios_skip_without_their_url() -> None:
    async with running() as urls:
        target = Target(urls["websocket"], timeout=1.0)
        results = await run_suite(target, select(["transport.rawsocket", "transport.longpoll"]))
    assert {r.outcome for r in results} == {Outcome.SKIP}


async def test_a_router_without_the_principals_fails_the_auth_scenarios() -> None:
    # Our open router answers HELLO offering ticket/wampcra with ABORT
    # no_matching_auth_method: the principals given cannot log in; an unknown
    # authid is (rightly) refused.
    results = await verdicts(only=["auth"], credentials=CREDENTIALS, timeout=0.5)
    assert set(failed(results)) == set(select_ids("auth")) - {"auth.ticket.unknown_authid"}
    assert results["auth.ticket.unknown_authid"].outcome is Outcome.PASS


def select_ids(prefix: str) -> list[str]:
    return [item.id for item in select([prefix])]


# -- broken variants ----------------------------------------------------------------------


class LaxTicketMethod(wamp_core.TicketMethod):
    """Admits a known principal whatever ticket comes."""

    def verify(
        self,
        info: Any,
        principal: wamp_core.Principal | None,
        challenge: Any,
        signature: str,
        extra: dict[str, Any],
    ) -> Any:
        if principal is not None:
            return principal.accept(self.name)
        return super().verify(info, principal, challenge, signature, extra)


async def test_an_authenticator_admitting_a_wrong_ticket_is_caught() -> None:
    results = await verdicts(
        auth_router(LaxTicketMethod()), only=["auth.ticket"], credentials=CREDENTIALS, timeout=0.5
    )
    assert set(failed(results)) == {"auth.ticket.wrong"}, results


def _accept_any_serializer(
    self: RawSocketRouter, second: int, third: int, fourth: int
) -> wamp_core.RawSocketOpened:
    """RawSocketRouter._handshake, echoing serializers it does not support."""
    serializer_id = second & 0x0F
    if serializer_id in self.serializers or not serializer_id or third or fourth:
        return ORIGINAL_HANDSHAKE(self, second, third, fourth)
    self._outgoing.append(bytes((0x7F, 0xF0 | serializer_id, 0, 0)))
    return self._open(serializer_id, second >> 4)


ORIGINAL_HANDSHAKE = RawSocketRouter._handshake


async def test_a_rawsocket_router_accepting_an_unsupported_serializer_is_caught(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(RawSocketRouter, "_handshake", _accept_any_serializer)
    results = await verdicts(only=["transport.rawsocket"], timeout=0.5)
    assert set(failed(results)) == {"transport.rawsocket.unsupported_serializer"}, results


def _ignore_reserved_bits(
    self: RawSocketRouter, second: int, third: int, fourth: int
) -> wamp_core.RawSocketOpened:
    return ORIGINAL_HANDSHAKE(self, second, 0, 0)


async def test_a_rawsocket_router_ignoring_reserved_bits_is_reported_as_skipped(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The spec defines error 3 but does not require a Router to check the
    # reserved octets (that MUST binds the Client), so ignoring them is no failure.
    monkeypatch.setattr(RawSocketRouter, "_handshake", _ignore_reserved_bits)
    results = await verdicts(only=["transport.rawsocket"], timeout=0.5)
    assert failed(results) == {}, results
    verdict = results["transport.rawsocket.reserved_bits"]
    assert verdict.outcome is Outcome.SKIP, verdict
    assert "reserved octets" in verdict.reason


class _OtherSubprotocol(trio.abc.HalfCloseableStream):
    """Rewrites the Sec-WebSocket-Protocol of the server's 101 to one not offered."""

    _HEADER = re.compile(rb"(?im)^(sec-websocket-protocol:[ \t]*)([^\r\n]*)")

    def __init__(self, inner: trio.abc.Stream) -> None:
        self.inner = inner
        self.rewritten = False

    @classmethod
    def _swap(cls, match: re.Match[bytes]) -> bytes:
        chosen = match.group(2).strip()
        other = b"wamp.2.json" if chosen == b"wamp.2.cbor.batched" else b"wamp.2.cbor.batched"
        return match.group(1) + other

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        data = bytes(data)
        if not self.rewritten and data.startswith(b"HTTP/1.1 101"):
            self.rewritten = True
            data = self._HEADER.sub(self._swap, data)
        await self.inner.send_all(data)

    async def wait_send_all_might_not_block(self) -> None:
        await self.inner.wait_send_all_might_not_block()

    async def receive_some(self, max_bytes: int | None = None) -> bytes | bytearray:
        return await self.inner.receive_some(max_bytes)

    async def send_eof(self) -> None:
        if isinstance(self.inner, trio.abc.HalfCloseableStream):
            await self.inner.send_eof()

    async def aclose(self) -> None:
        await self.inner.aclose()


async def test_a_websocket_server_choosing_a_subprotocol_not_offered_is_caught(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    original = websocket_module._server_handshake

    async def broken(stream: trio.abc.Stream, initial: bytes, **kwargs: Any) -> Any:
        return await original(_OtherSubprotocol(stream), initial, **kwargs)

    monkeypatch.setattr(websocket_module, "_server_handshake", broken)
    # The suite's own connection must not use the broken WebSocket: RawSocket is the main URL.
    results = await verdicts(only=["transport.websocket"], main="rawsocket", timeout=0.5)
    assert set(failed(results)) == {
        "transport.websocket.subprotocol_single",
        "transport.websocket.subprotocol_choice",
        "transport.websocket.message_type",  # its WebSocket client refuses the handshake
    }, results


class OtherSessionCra(wamp_core.WampCraMethod):
    """Signs a session ID in the challenge other than the one WELCOME assigns."""

    def challenge(self, info: Any, principal: wamp_core.Principal | None) -> Any:
        return super().challenge(
            dataclasses.replace(info, session_id=info.session_id + 1), principal
        )


async def test_a_wampcra_challenge_for_another_session_is_caught() -> None:
    results = await verdicts(
        auth_router(cra_method=OtherSessionCra()),
        only=["auth.wampcra"],
        credentials=CREDENTIALS,
        timeout=0.5,
    )
    assert set(failed(results)) == {"auth.wampcra.challenge"}, results


async def test_json_in_binary_websocket_messages_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    async def send_binary(self: websocket_module.WebSocketTransport, data: bytes) -> None:
        """Every message in a binary WebSocket message, JSON too."""
        async with self._send_lock:
            await self._write(self._ws.send(BytesMessage(data=data)))

    async def send_many_binary(
        self: websocket_module.WebSocketTransport, messages: Sequence[bytes]
    ) -> None:
        for data in messages:
            await send_binary(self, data)

    def no_direct_write(
        self: websocket_module.WebSocketTransport, messages: Sequence[bytes]
    ) -> None:
        return None

    monkeypatch.setattr(websocket_module.WebSocketTransport, "send", send_binary)
    monkeypatch.setattr(websocket_module.WebSocketTransport, "send_many", send_many_binary)
    monkeypatch.setattr(websocket_module.WebSocketTransport, "try_send_many", no_direct_write)
    results = await verdicts(only=["transport.websocket"], timeout=0.5)
    assert set(failed(results)) == {"transport.websocket.message_type"}, results


async def test_rawsocket_scenarios_run_over_a_unix_socket(tmp_path: Path) -> None:
    path = tmp_path / "wamp.sock"
    host = RouterHost(wamp_core.Router(["realm1"]))
    async with trio.open_nursery() as nursery:
        endpoints = await nursery.start(
            serve_router, host, [TcpListener(port=0), UnixListener(path=str(path))]
        )
        urls = {endpoint.kind: endpoint.url for endpoint in endpoints}
        unix = next(endpoint.url for endpoint in endpoints if endpoint.url.startswith("unix:"))
        target = Target(urls["websocket"], timeout=1.0, urls={"rawsocket": unix})
        results = await run_suite(target, select(["transport.rawsocket"]))
        nursery.cancel_scope.cancel()
    assert {r.outcome for r in results} == {Outcome.PASS}, results
