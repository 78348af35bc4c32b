"""The client's own timeouts: ``join_timeout`` and the keepalive of ``connect()``.

Routers that never answer are plain loopback listeners (any ``connect`` to them
can only end by a timeout, so trio's autojumping clock is safe with them);
routers that do answer run over memory transports, where the clock is mock
time alone, except one RawSocket run on the real clock.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
import trio
import trio.testing

import wamp_core
from wamp_core import ErrorURI, Message
from wamp_trio._client import (
    JOIN_TIMEOUT,
    JoinError,
    ReconnectPolicy,
    Session,
    TransportFactory,
    TransportLost,
    connect,
    open_session,
)
from wamp_trio._config import TcpListener
from wamp_trio._connect import open_transport
from wamp_trio._host import RouterHost, serve_router
from wamp_trio._rawsocket import accept_rawsocket
from wamp_trio._transport import MessageTransport, TransportClosed, memory_transport_pair

JSON = wamp_core.get_serializer("json")


# -- routers that never answer ---------------------------------------------------------------


class SilentServer:
    """A TCP listener on 127.0.0.1 that accepts and answers nothing.

    ``rawsocket=True``: it completes the RawSocket handshake, then reads WAMP
    messages without ever answering them. Otherwise it reads raw bytes. Either
    way it records what it got, and counts the connections the client closed.
    """

    def __init__(self, rawsocket: bool = False) -> None:
        self.rawsocket = rawsocket
        self.port = 0
        self.received: list[bytes] = []
        self.messages: list[Message] = []
        self.accepted = 0
        self.closed = 0
        self._changed = trio.Event()

    async def serve(self, task_status: trio.TaskStatus[None]) -> None:
        (listener,) = await trio.open_tcp_listeners(0, host="127.0.0.1")
        self.port = listener.socket.getsockname()[1]
        task_status.started()
        await trio.serve_listeners(self._handle, [listener])

    async def _handle(self, stream: trio.SocketStream) -> None:
        self.accepted += 1
        try:
            if self.rawsocket:
                transport = await accept_rawsocket(stream)
                assert transport is not None
                while True:  # ends when the client closes
                    try:
                        data = await transport.receive()
                    except TransportClosed:
                        break
                    self.messages.extend(transport.serializer.decode(data))
            else:
                while data := await stream.receive_some():  # ends when the client closes
                    self.received.append(data)
        finally:
            await trio.aclose_forcefully(stream)
            self.closed += 1
            self._changed.set()
            self._changed = trio.Event()

    async def wait_closed(self, count: int) -> None:
        while self.closed < count:
            await self._changed.wait()


@asynccontextmanager
async def silent_server(rawsocket: bool = False) -> AsyncIterator[SilentServer]:
    server = SilentServer(rawsocket)
    async with trio.open_nursery() as nursery:
        await nursery.start(server.serve)
        yield server
        nursery.cancel_scope.cancel()


@pytest.mark.parametrize("scheme", ["rs", "ws"])
async def test_join_timeout_on_a_server_that_never_answers(
    autojump_clock: trio.testing.MockClock, scheme: str
) -> None:
    async with silent_server() as server:
        url = f"{scheme}://127.0.0.1:{server.port}" + ("/ws" if scheme == "ws" else "")
        start = trio.current_time()
        with pytest.raises(JoinError) as info:
            async with connect(url, join_timeout=7):
                raise AssertionError("unreachable")  # pragma: no cover
        assert trio.current_time() - start == pytest.approx(7)
        assert info.value.reason == JOIN_TIMEOUT == ErrorURI.TIMEOUT
        assert info.value.message == "no connection to the router within 7 s (join_timeout)"
        await server.wait_closed(1)  # the client closed its end
        assert b"".join(server.received)  # it did send its handshake


async def test_join_timeout_when_hello_gets_no_answer(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with silent_server(rawsocket=True) as server:
        with pytest.raises(JoinError) as info:
            async with connect(f"rs://127.0.0.1:{server.port}", join_timeout=3):
                raise AssertionError("unreachable")  # pragma: no cover
        assert info.value.reason == ErrorURI.TIMEOUT
        assert "did not welcome the session within 3 s" in str(info.value)
        await server.wait_closed(1)
        hello, abort = server.messages
        assert isinstance(hello, wamp_core.Hello)
        assert isinstance(abort, wamp_core.Abort)  # the client said why it left
        assert abort.reason == ErrorURI.TIMEOUT


async def test_without_join_timeout_the_client_waits(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with silent_server(rawsocket=True) as server:
        with trio.move_on_after(3600) as scope:
            async with connect(f"rs://127.0.0.1:{server.port}", join_timeout=None):
                raise AssertionError("unreachable")  # pragma: no cover
        assert scope.cancelled_caught
        await server.wait_closed(1)
        # HELLO, then nothing until the cancellation: no ABORT for a timeout.
        assert isinstance(server.messages[0], wamp_core.Hello)
        assert not any(isinstance(m, wamp_core.Abort) and m.reason == ErrorURI.TIMEOUT
                       for m in server.messages)  # fmt: skip


async def test_join_timeout_is_retried_by_the_reconnect_policy(
    autojump_clock: trio.testing.MockClock,
) -> None:
    policy = ReconnectPolicy(max_attempts=2, initial_delay=1.0, retry_initial=True)
    async with silent_server(rawsocket=True) as server:
        with pytest.raises(JoinError) as info:
            async with connect(f"rs://127.0.0.1:{server.port}", join_timeout=2, reconnect=policy):
                raise AssertionError("unreachable")  # pragma: no cover
        assert info.value.reason == ErrorURI.TIMEOUT
        await server.wait_closed(3)
        assert server.accepted == 3  # the first attempt and two more


# -- routers that answer too late, over memory transports -------------------------------------


def scripted_router(
    nursery: trio.Nursery, answer: Callable[[Message], Message | None]
) -> TransportFactory:
    """A factory whose router answers each message with ``answer(message)`` (None:
    no answer) and records nothing else."""

    @asynccontextmanager
    async def factory() -> AsyncIterator[MessageTransport]:
        client, server = memory_transport_pair(JSON)

        async def run() -> None:
            while True:  # ends when the client closes
                try:
                    data = await server.receive()
                except TransportClosed:
                    return
                for message in JSON.decode(data):
                    reply = answer(message)
                    if reply is not None:
                        await server.send(JSON.encode(reply))

        nursery.start_soon(run)
        try:
            yield client
        finally:
            await client.aclose()

    return factory


async def test_join_timeout_covers_authentication(
    autojump_clock: trio.testing.MockClock,
) -> None:
    challenges: list[str] = []

    def answer(message: Message) -> Message | None:
        if isinstance(message, wamp_core.Hello):
            return wamp_core.Challenge("ticket", {})
        return None  # AUTHENTICATE is never answered

    def on_challenge(challenge: wamp_core.ChallengeReceived) -> str:
        challenges.append(challenge.authmethod)
        return "secret"

    async with trio.open_nursery() as nursery:
        factory = scripted_router(nursery, answer)
        with pytest.raises(JoinError) as info:
            async with connect(
                factory, authmethods=["ticket"], on_challenge=on_challenge, join_timeout=4
            ):
                raise AssertionError("unreachable")  # pragma: no cover
        assert info.value.reason == ErrorURI.TIMEOUT
        assert challenges == ["ticket"]


async def test_open_session_has_a_join_timeout(autojump_clock: trio.testing.MockClock) -> None:
    client, server = memory_transport_pair(JSON)
    with pytest.raises(JoinError) as info:
        async with open_session(client, join_timeout=5):
            raise AssertionError("unreachable")  # pragma: no cover
    assert info.value.reason == ErrorURI.TIMEOUT
    # The router saw HELLO then ABORT; the transport is the caller's and stays open.
    hello, abort = [*JSON.decode(await server.receive()), *JSON.decode(await server.receive())]
    assert isinstance(hello, wamp_core.Hello)
    assert isinstance(abort, wamp_core.Abort)
    await client.aclose()


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("join_timeout", 0),
        ("join_timeout", -1.0),
        ("join_timeout", math.nan),
        ("keepalive_interval", 0.0),
        ("keepalive_timeout", -5),
        ("keepalive_timeout", None),
        ("join_timeout", "10"),
    ],
)
def test_bad_timeouts_raise_value_error(option: str, value: object) -> None:
    options: dict[str, Any] = {option: value}
    with pytest.raises(ValueError, match=f"{option} must be a number of seconds > 0"):
        connect("ws://127.0.0.1:1/ws", **options)


# -- keepalive ---------------------------------------------------------------------------------


class PingableTransport:
    """A memory transport with ``send_ping`` and ``idle_ticks``, as WebSocket and
    RawSocket have: a PING is answered (``idle_ticks`` reset, as a PONG read
    would) while ``answers`` is true."""

    def __init__(self, inner: MessageTransport, answers: bool) -> None:
        self.inner = inner
        self.serializer = inner.serializer
        self.info = inner.info
        self.answers = answers
        self.pings = 0
        self.idle_ticks = 0
        self.closed = False

    async def send(self, data: bytes) -> None:
        await self.inner.send(data)

    async def receive(self) -> bytes:
        data = await self.inner.receive()
        self.idle_ticks = 0
        return data

    async def send_ping(self, payload: bytes = b"") -> None:
        assert payload == b""
        self.pings += 1
        await trio.lowlevel.checkpoint()
        if self.answers:
            self.idle_ticks = 0

    async def aclose(self) -> None:
        self.closed = True
        await self.inner.aclose()


class PingHost:
    """A ``RouterHost`` over memory transports wrapped in ``PingableTransport``."""

    def __init__(self, nursery: trio.Nursery) -> None:
        self.nursery = nursery
        self.host = RouterHost(wamp_core.Router(["realm1"]), keepalive_interval=None)
        self.transports: list[PingableTransport] = []
        self.answers = True

    def factory(self) -> TransportFactory:
        @asynccontextmanager
        async def open_pingable() -> AsyncIterator[MessageTransport]:
            client, server = memory_transport_pair(JSON)
            self.nursery.start_soon(self.host.handle, server)
            transport = PingableTransport(client, self.answers)
            self.transports.append(transport)
            try:
                yield transport
            finally:
                await transport.aclose()

        return open_pingable


@asynccontextmanager
async def ping_host() -> AsyncIterator[PingHost]:
    async with trio.open_nursery() as nursery:
        yield PingHost(nursery)
        nursery.cancel_scope.cancel()


async def test_keepalive_pings_a_silent_router_that_answers(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with ping_host() as host:
        async with connect(host.factory(), keepalive_interval=5, keepalive_timeout=3) as session:
            await trio.sleep(98)
            (transport,) = host.transports
            # The client looks every 2.5 s: WELCOME came in the first look;
            # the third finds 5 s of silence and pings at 7.5 s, answered at
            # once; and so on every 5 s until 97.5 s.
            assert transport.pings == 19
            assert session.connected
            await session.publish("com.example.topic", acknowledge=True)
        assert transport.closed


async def test_keepalive_does_not_ping_while_data_flows(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with ping_host() as host, connect(host.factory(), keepalive_interval=5) as session:
        for _ in range(30):
            await session.publish("com.example.topic", acknowledge=True)  # PUBLISHED back
            await trio.sleep(2)
        assert host.transports[0].pings == 0


async def test_keepalive_ends_a_silent_connection(autojump_clock: trio.testing.MockClock) -> None:
    left: list[BaseException | None] = []
    async with ping_host() as host:
        host.answers = False
        start = trio.current_time()
        with pytest.raises(TransportLost) as info:
            async with connect(
                host.factory(),
                keepalive_interval=10,
                keepalive_timeout=4,
                on_leave=lambda session, exc: left.append(exc),
            ):
                await trio.sleep_forever()
        # The client looks every 5 s: WELCOME came in the first look; the
        # third finds 10 s of silence and pings at 15 s; 4 s later it gives up.
        assert trio.current_time() - start == pytest.approx(19)
        assert "no data from the router within 4 s of a ping (keepalive)" in str(info.value)
        (transport,) = host.transports
        assert transport.pings == 1
        assert transport.closed
        assert len(left) == 1
        assert isinstance(left[0], TransportLost)


async def test_keepalive_loss_reconnects_by_the_policy(
    autojump_clock: trio.testing.MockClock,
) -> None:
    joins: list[int | None] = []
    joined = trio.Event()

    def on_join(session: Session) -> None:
        joins.append(session.session_id)
        joined.set()

    async with ping_host() as host:
        host.answers = False
        policy = ReconnectPolicy(initial_delay=1.0)
        async with connect(
            host.factory(), reconnect=policy, on_join=on_join, keepalive_interval=5
        ) as session:
            await joined.wait()
            joined = trio.Event()
            host.answers = True  # the next connection answers its pings
            await joined.wait()
            assert len(joins) == 2
            assert session.connected
            first, second = host.transports
            assert first.closed
            assert not second.closed


async def test_keepalive_is_off_by_default(autojump_clock: trio.testing.MockClock) -> None:
    async with ping_host() as host, connect(host.factory()) as session:
        await trio.sleep(1000)
        assert host.transports[0].pings == 0
        assert session.connected


async def test_keepalive_skips_transports_that_cannot_ping(
    autojump_clock: trio.testing.MockClock,
) -> None:
    host = RouterHost(wamp_core.Router(["realm1"]), keepalive_interval=None)

    @asynccontextmanager
    async def plain() -> AsyncIterator[MessageTransport]:
        client, server = memory_transport_pair(JSON)
        nursery.start_soon(host.handle, server)
        yield client
        await client.aclose()

    async with trio.open_nursery() as nursery:
        async with connect(plain, keepalive_interval=1, keepalive_timeout=1) as session:
            await trio.sleep(100)  # a memory transport has no ping: nothing is judged
            assert session.connected
        nursery.cancel_scope.cancel()


# -- keepalive over real sockets ----------------------------------------------------------------


class CountingPings:
    """A WebSocket or RawSocket transport whose pings are counted (``idle_ticks``
    passes through)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.serializer = inner.serializer
        self.info = inner.info
        self.pings = 0
        self.pinged = trio.Event()

    @property
    def idle_ticks(self) -> int:
        ticks: int = self.inner.idle_ticks
        return ticks

    @idle_ticks.setter
    def idle_ticks(self, value: int) -> None:
        self.inner.idle_ticks = value

    async def send(self, data: bytes) -> None:
        await self.inner.send(data)

    async def receive(self) -> bytes:
        data: bytes = await self.inner.receive()
        return data

    async def send_ping(self, payload: bytes = b"") -> None:
        await self.inner.send_ping(payload)
        self.pings += 1
        self.pinged.set()
        self.pinged = trio.Event()

    async def aclose(self) -> None:
        await self.inner.aclose()


@pytest.mark.parametrize("kind", ["rawsocket", "websocket"])
async def test_keepalive_over_real_sockets_sees_the_pongs(kind: str) -> None:
    host = RouterHost(wamp_core.Router(["realm1"]), keepalive_interval=None)
    async with trio.open_nursery() as nursery:
        listener = TcpListener(port=0, longpoll=None)
        endpoints = await nursery.start(serve_router, host, [listener])
        (endpoint,) = [e for e in endpoints if e.kind == kind]
        wrapped: list[CountingPings] = []

        @asynccontextmanager
        async def factory() -> AsyncIterator[MessageTransport]:
            async with open_transport(endpoint.url) as transport:
                wrapped.append(CountingPings(transport))
                yield wrapped[-1]

        # A timeout far beyond the test's bound: three pings can only happen
        # when each one's PONG was seen (an unanswered ping waits the timeout).
        with trio.fail_after(30):
            async with connect(factory, keepalive_interval=0.01, keepalive_timeout=600) as session:
                (transport,) = wrapped
                while transport.pings < 3:  # bounded by fail_after
                    await transport.pinged.wait()
                assert session.connected
                await session.publish("com.example.topic", acknowledge=True)
        await host.shutdown()
        nursery.cancel_scope.cancel()


async def test_keepalive_over_rawsocket_gives_up_on_a_mute_router(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A router that welcomes the session and then reads nothing more (so it
    answers no PING) is dropped."""
    router = wamp_core.Router(["realm1"])
    (listener,) = await trio.open_tcp_listeners(0, host="127.0.0.1")
    port = listener.socket.getsockname()[1]
    mute = trio.Event()

    async def serve(task_status: trio.TaskStatus[None]) -> None:
        task_status.started()
        stream = await listener.accept()
        async with stream:
            await welcome_then_mute(stream)

    async def welcome_then_mute(stream: trio.abc.Stream) -> None:
        transport = await accept_rawsocket(stream)
        assert transport is not None
        session = router.attach(transport.serializer, {})
        router.receive_data(session, await transport.receive())  # HELLO
        for delivery in router.data_to_send():  # WELCOME
            assert delivery.data is not None
            await transport.send(delivery.data)
        mute.set()
        await trio.sleep_forever()  # reads nothing: no PONG ever

    async with listener, trio.open_nursery() as nursery:
        await nursery.start(serve)

        async def client() -> None:
            async with connect(f"rs://127.0.0.1:{port}", keepalive_interval=5, keepalive_timeout=5):
                await mute.wait()
                await trio.sleep_forever()

        with pytest.raises(TransportLost, match="keepalive"):
            await client()
        nursery.cancel_scope.cancel()


def test_connect_defaults() -> None:
    parameters = inspect.signature(connect).parameters
    assert parameters["join_timeout"].default == 10.0
    assert parameters["keepalive_interval"].default is None
    assert parameters["keepalive_timeout"].default == 30.0
