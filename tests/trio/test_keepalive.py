"""RouterHost keepalive (pings, their timeout, stalled writers) and the
per-transport limits and timeouts of ``serve_router``.

Real sockets on 127.0.0.1 port 0 (memory transports where a write must wait
on the reader), in trio's virtual time: each test connects its peers first,
then lets the clock jump whenever every task waits
(``mock_clock.autojump_threshold = 0``), so minutes of keepalive pass at once.
Nothing then depends on the kernel's timing: loopback data is readable as soon
as it is written. The peers speak the wire protocols by hand, to count the
PINGs they get and to decide whether they answer.
"""

from __future__ import annotations

import logging
import math
import socket
import struct
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Protocol

import pytest
import trio
import trio.testing
from wsproto.events import (
    BytesMessage,
    CloseConnection,
    Message,
    Ping,
    TextMessage,
)

import wamp_core
from tests.trio.test_fastio import fill, rawsocket_pair, receive_into, tls_rawsocket_pair
from tests.trio.test_host import PROCEDURE, TOPIC, Peer
from tests.trio.test_websocket import RawClient, raw_pair
from wamp_core import ErrorURI
from wamp_trio._config import TcpListener, UnixListener
from wamp_trio._host import Endpoint, HostedConnection, RouterHost, serve_router
from wamp_trio._transport import memory_transport_pair

JSON = wamp_core.get_serializer("json")
INTERVAL = 10.0
TIMEOUT = 5.0
PERIOD = 2.5  # the sweep: half the smaller of the two
MAX_FRAMES = 10_000  # bound on the frames one peer reads in a test


class Wire(Protocol):
    """A client connection at the frame level, WebSocket or RawSocket."""

    async def send(self, data: bytes) -> None: ...

    async def next_frame(self) -> tuple[str, bytes] | None:
        """("message" | "ping" | "pong", payload), or None at the end."""

    async def pong(self, payload: bytes) -> None: ...

    async def aclose(self) -> None: ...


class RawSocketWire:
    """A RawSocket client (JSON) by hand: handshake, frames (AP/ap_transport_rawsocket.md)."""

    def __init__(self, stream: trio.SocketStream, exponent: int) -> None:
        self.stream = stream
        self.exponent = exponent  # the router's LLLL
        self.buffer = b""

    @classmethod
    async def open(cls, port: int, *, receive_buffer: int | None = None) -> RawSocketWire:
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        if receive_buffer is not None:
            stream.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
        await stream.send_all(bytes((0x7F, 0xF1, 0, 0)))
        wire = cls(stream, 0)
        reply = await wire._read(4)
        assert reply[0] == 0x7F, reply
        assert reply[1] & 0x0F == 1, reply  # JSON accepted
        wire.exponent = reply[1] >> 4
        return wire

    async def _read(self, count: int) -> bytes:
        while len(self.buffer) < count:
            data = await self.stream.receive_some()
            if not data:
                raise EOFError
            self.buffer += data
        out, self.buffer = self.buffer[:count], self.buffer[count:]
        return out

    async def _frame(self, kind: int, payload: bytes) -> None:
        await self.stream.send_all(struct.pack("!I", kind << 24 | len(payload)) + payload)

    async def send(self, data: bytes) -> None:
        await self._frame(0, data)

    async def pong(self, payload: bytes) -> None:
        await self._frame(2, payload)

    async def next_frame(self) -> tuple[str, bytes] | None:
        try:
            (head,) = struct.unpack("!I", await self._read(4))
            payload = await self._read(head & 0xFFFFFF)
        except (EOFError, trio.BrokenResourceError):
            return None
        return ({0: "message", 1: "ping", 2: "pong"}[head >> 24 & 0x07], payload)

    async def aclose(self) -> None:
        await self.stream.aclose()


class WebSocketWire:
    """A WebSocket client (``wamp.2.json``) on wsproto, which leaves PINGs to us."""

    def __init__(self, raw: RawClient) -> None:
        self.raw = raw

    @classmethod
    async def open(cls, port: int) -> WebSocketWire:
        raw = RawClient(await trio.open_tcp_stream("127.0.0.1", port))
        await raw.handshake(["wamp.2.json"])
        return cls(raw)

    async def send(self, data: bytes) -> None:
        await self.raw.send(TextMessage(data=data.decode()))

    async def pong(self, payload: bytes) -> None:
        await self.raw.send(Ping(payload=payload).response())

    async def next_frame(self) -> tuple[str, bytes] | None:
        parts: list[bytes] = []
        for _ in range(MAX_FRAMES):
            try:
                event = await self.raw.next_event()
            except trio.BrokenResourceError:
                return None
            if event is None or isinstance(event, CloseConnection):
                return None
            if isinstance(event, Ping):
                return ("ping", bytes(event.payload))
            if isinstance(event, (TextMessage, BytesMessage)):
                message: Message[Any] = event
                data = message.data
                parts.append(data.encode() if isinstance(data, str) else bytes(data))
                if message.message_finished:
                    return ("message", b"".join(parts))
        raise AssertionError("too many frames")

    async def aclose(self) -> None:
        await self.raw.stream.aclose()


class Client:
    """A WAMP session over a ``Wire``; counts the PINGs it gets, and answers them
    when ``answer`` is set."""

    def __init__(self, wire: Wire, *, answer: bool = True) -> None:
        self.wire = wire
        self.answer = answer
        self.session = wamp_core.ClientSession(JSON)
        self.backlog: list[wamp_core.SessionEvent] = []
        self.pings = 0

    async def flush(self) -> None:
        for data in self.session.data_to_send():
            await self.wire.send(data)

    async def next_event(self) -> wamp_core.SessionEvent | None:
        """The next session event; None when the router closed the connection."""
        for _ in range(MAX_FRAMES):
            if self.backlog:
                return self.backlog.pop(0)
            frame = await self.wire.next_frame()
            if frame is None:
                return None
            kind, payload = frame
            if kind == "ping":
                self.pings += 1
                if self.answer:
                    await self.wire.pong(payload)
            elif kind == "message":
                self.backlog.extend(self.session.receive_data(payload))
        raise AssertionError("too many frames")

    async def expect(self, kind: type[Any]) -> Any:
        event = await self.next_event()
        assert isinstance(event, kind), event
        return event

    async def join(self) -> None:
        self.session.join("realm1")
        await self.flush()
        await self.expect(wamp_core.SessionJoined)

    async def read_until_closed(self) -> list[wamp_core.SessionEvent]:
        """Every session event until the router closes the connection."""
        events: list[wamp_core.SessionEvent] = []
        for _ in range(MAX_FRAMES):
            event = await self.next_event()
            if event is None:
                return events
            events.append(event)
        raise AssertionError("too many frames")


_wires: list[Wire] = []
"""The wires open_client() opened: closed when serving() or sized() ends."""


async def close_wires() -> None:
    while _wires:
        await _wires.pop().aclose()


async def open_client(kind: str, port: int, **options: Any) -> Client:
    wire: Wire
    if kind == "rawsocket":
        wire = await RawSocketWire.open(port, **options)
    else:
        wire = await WebSocketWire.open(port)
    _wires.append(wire)
    client = Client(wire)
    await client.join()
    return client


def port_of(url: str) -> int:
    return int(url.split("://", 1)[1].split("/", 1)[0].rsplit(":", 1)[1])


@asynccontextmanager
async def serving(
    **host_options: Any,
) -> AsyncIterator[tuple[RouterHost, int, trio.Nursery]]:
    """A RouterHost served on 127.0.0.1 port 0 (WebSocket and RawSocket); yields
    the host, the port, and a nursery for the test's tasks."""
    host_options.setdefault("rawsocket_pings", True)  # pings on both transports
    host = RouterHost(wamp_core.Router(["realm1"]), **host_options)
    listener = TcpListener(host="127.0.0.1", port=0, longpoll=None)
    try:
        async with trio.open_nursery() as nursery:
            endpoints: list[Endpoint] = await nursery.start(serve_router, host, [listener])
            yield host, port_of(endpoints[0].url), nursery
            nursery.cancel_scope.cancel()
    finally:
        await close_wires()


async def memory_peer(host: RouterHost, nursery: trio.Nursery) -> Peer:
    """A joined peer over memory transports: never pinged (no ``idle_ticks``)."""
    client, server = memory_transport_pair(JSON)
    nursery.start_soon(host.handle, server)
    peer = Peer(client, server)
    await peer.join()
    return peer


async def until_finished(host: RouterHost, conn: HostedConnection) -> None:
    """Wait until ``conn``'s ``handle()`` has returned."""
    for _ in range(MAX_FRAMES):
        if conn.finished:
            return
        await host._changed.park()  # unparked when a connection finishes
    raise AssertionError("the connection did not finish")


def only_connection(host: RouterHost) -> HostedConnection:
    (conn,) = host.connections
    return conn


KINDS = ["rawsocket", "websocket"]


# -- keepalive ---------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
async def test_a_peer_that_answers_pings_stays_connected(
    kind: str, mock_clock: trio.testing.MockClock
) -> None:
    async with serving(keepalive_interval=INTERVAL, keepalive_timeout=TIMEOUT) as (
        host,
        port,
        nursery,
    ):
        client = await open_client(kind, port)
        client.session.subscribe(TOPIC)
        await client.flush()
        await client.expect(wamp_core.SubscribeSucceeded)
        got_event = trio.Event()
        events: list[Any] = []

        async def reading() -> None:
            for _ in range(MAX_FRAMES):
                event = await client.next_event()
                if isinstance(event, wamp_core.EventReceived):
                    events.append(event.args)
                    got_event.set()

        nursery.start_soon(reading)
        mock_clock.autojump_threshold = 0
        await trio.sleep(300)
        # A ping at most every INTERVAL + PERIOD seconds, at least every INTERVAL.
        assert 300 / (INTERVAL + PERIOD) - 1 <= client.pings <= 300 / INTERVAL
        conn = only_connection(host)
        assert not conn.finished
        assert host.timeout_disconnects == 0
        publisher = await memory_peer(host, nursery)  # the subscription still works
        publisher.session.publish(TOPIC, ["still here"], acknowledge=True)
        await publisher.flush()
        await publisher.expect(wamp_core.PublishSucceeded)
        await got_event.wait()
        assert events == [["still here"]]


async def test_a_tls_peer_is_pinged_by_a_task_of_its_own(
    tmp_path: Path, mock_clock: trio.testing.MockClock
) -> None:
    # TLS: no write without awaiting, so the ping goes out from a short-lived task.
    router_t, client_t = await tls_rawsocket_pair(tmp_path)
    host = RouterHost(
        wamp_core.Router(["realm1"]), keepalive_interval=INTERVAL, keepalive_timeout=TIMEOUT
    )
    async with trio.open_nursery() as nursery:
        await nursery.start(host.run)
        nursery.start_soon(host.handle, router_t)
        peer = Peer(client_t, router_t)
        await peer.join()
        conn = only_connection(host)
        assert conn._try_send is None
        nursery.start_soon(peer.next_event)  # reads: answers the PINGs
        mock_clock.autojump_threshold = 0
        await trio.sleep(100)  # without the answers, closed after 17.5 s at most
        assert not conn.finished
        assert host.timeout_disconnects == 0
        nursery.cancel_scope.cancel()
    await client_t.aclose()
    await router_t.aclose()


@pytest.mark.parametrize("kind", KINDS)
async def test_a_silent_peer_is_closed_and_its_session_detached(
    kind: str, mock_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "wamp_trio.router")
    async with serving(keepalive_interval=INTERVAL, keepalive_timeout=TIMEOUT) as (
        host,
        port,
        nursery,
    ):
        silent = await open_client(kind, port)
        silent.answer = False  # the peer is gone: half-open, nothing comes back
        silent.session.register(PROCEDURE)
        silent.session.subscribe(TOPIC)
        await silent.flush()
        await silent.expect(wamp_core.RegisterSucceeded)
        subscribed = await silent.expect(wamp_core.SubscribeSucceeded)
        conn = only_connection(host)
        caller = await memory_peer(host, nursery)
        mock_clock.autojump_threshold = 0
        start = trio.current_time()
        assert await silent.read_until_closed() == []
        elapsed = trio.current_time() - start
        assert silent.pings == 1
        # Pinged after INTERVAL (+ up to a sweep), closed TIMEOUT after the ping.
        assert INTERVAL + TIMEOUT <= elapsed <= INTERVAL + TIMEOUT + PERIOD
        await until_finished(host, conn)
        assert conn.closed_by_policy == f"no answer to a keepalive ping within {TIMEOUT:g} s"
        assert host.timeout_disconnects == 1
        assert f"{conn.name}: no answer to a keepalive ping within 5 s; closing" in [
            r.getMessage() for r in caplog.records if r.levelno == logging.INFO
        ]
        # Its session is gone from the router, with its subscription and registration.
        assert len(host.router.sessions) == 1
        broker = host.router.realms["realm1"].broker
        assert subscribed.subscription_id not in broker.subscriptions
        caller.session.call(PROCEDURE, [1])
        await caller.flush()
        error = await caller.expect(wamp_core.ErrorReceived)
        assert error.error == ErrorURI.NO_SUCH_PROCEDURE


@pytest.mark.parametrize("kind", KINDS)
async def test_a_peer_that_keeps_sending_is_never_pinged(
    kind: str, mock_clock: trio.testing.MockClock
) -> None:
    async with serving(keepalive_interval=INTERVAL, keepalive_timeout=TIMEOUT) as (
        host,
        port,
        nursery,
    ):
        client = await open_client(kind, port)
        nursery.start_soon(client.read_until_closed)
        mock_clock.autojump_threshold = 0
        for index in range(40):  # 200 seconds, a message every 5: never silent for 10
            client.session.publish(TOPIC, [index])
            await client.flush()
            await trio.sleep(INTERVAL / 2)
        assert client.pings == 0
        assert not only_connection(host).finished


@pytest.mark.parametrize("kind", KINDS)
async def test_no_pings_without_keepalive(kind: str, mock_clock: trio.testing.MockClock) -> None:
    async with serving(keepalive_interval=None, keepalive_timeout=TIMEOUT) as (
        host,
        port,
        nursery,
    ):
        client = await open_client(kind, port)
        nursery.start_soon(client.read_until_closed)
        mock_clock.autojump_threshold = 0
        await trio.sleep(300)
        assert client.pings == 0
        assert not only_connection(host).finished
        assert host.timeout_disconnects == 0


async def test_no_sweeper_when_nothing_is_watched() -> None:
    host = RouterHost(
        wamp_core.Router(["realm1"]), keepalive_interval=None, keepalive_timeout=math.inf
    )
    assert host._sweep_period() is None
    assert RouterHost(wamp_core.Router(["realm1"]))._sweep_period() == 15.0


def test_keepalive_options_are_checked() -> None:
    router = wamp_core.Router(["realm1"])
    with pytest.raises(ValueError, match="keepalive_interval"):
        RouterHost(router, keepalive_interval=0)
    with pytest.raises(ValueError, match="keepalive_timeout"):
        RouterHost(router, keepalive_timeout=-1.0)


# -- the transports' pings ----------------------------------------------------------


async def test_a_rawsocket_ping_is_answered_and_the_answer_counts_as_input() -> None:
    router, client = await rawsocket_pair()
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(client.receive)  # answers PINGs with PONGs
            nursery.start_soon(router.receive)  # takes the PONG
            await trio.testing.wait_all_tasks_blocked()
            router.idle_ticks = 7
            assert router.try_send_ping(b"hi") is True  # written at once
            await trio.testing.wait_all_tasks_blocked()
            assert router.idle_ticks == 0
            nursery.cancel_scope.cancel()
    await router.aclose()
    await client.aclose()


async def test_a_rawsocket_ping_behind_an_unwritten_rest_waits_for_flush() -> None:
    router, client = await rawsocket_pair(small_buffers=True)
    sent = fill(router)  # the rest of the last message waits in _unsent
    assert router.try_send_ping() is False
    got: list[bytes] = []
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(receive_into, client, len(sent), got)
            await router.flush()  # the rest, then the PING
        assert got == sent
        router.idle_ticks = 7
        async with trio.open_nursery() as nursery:
            nursery.start_soon(client.receive)  # reads the PING, answers it
            nursery.start_soon(router.receive)
            await trio.testing.wait_all_tasks_blocked()
            assert router.idle_ticks == 0
            nursery.cancel_scope.cancel()
    await router.aclose()
    await client.aclose()


async def test_a_websocket_ping_frame_and_its_pong() -> None:
    async with raw_pair(["wamp.2.json"]) as (server, raw):
        assert server.try_send_ping(b"hi") is True
        event = await raw.next_event()
        assert isinstance(event, Ping)
        assert event.payload == b"hi"
        with trio.fail_after(10):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(server.receive)
                await trio.testing.wait_all_tasks_blocked()
                server.idle_ticks = 7
                await raw.send(event.response())
                await trio.testing.wait_all_tasks_blocked()
                assert server.idle_ticks == 0  # the PONG counts as input
                await server.send_ping(b"again")  # the awaiting way
                again = await raw.next_event()
                assert isinstance(again, Ping)
                assert again.payload == b"again"
                nursery.cancel_scope.cancel()
        with pytest.raises(ValueError, match="125"):
            server.try_send_ping(b"x" * 126)


async def test_a_websocket_ping_queued_during_a_blocked_write_follows_it() -> None:
    async with raw_pair(["wamp.2.json"]) as (server, raw):
        sent = fill(server)  # direct writes until the socket is full: a rest waits
        with trio.fail_after(20):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(server.flush)  # holds the send lock, waits for the reader
                await trio.testing.wait_all_tasks_blocked()
                assert server.try_send_ping(b"later") is True  # for the task writing
                received = 0
                for _ in range(MAX_FRAMES):
                    event = await raw.next_event()
                    if isinstance(event, Ping):
                        break
                    assert isinstance(event, TextMessage)
                    received += len(event.data)
                assert received == sum(map(len, sent))  # every message, then the PING
                assert isinstance(event, Ping)
                assert event.payload == b"later"


async def test_a_websocket_ping_is_not_sent_once_closing() -> None:
    async with raw_pair(["wamp.2.json"]) as (server, _):
        with trio.move_on_after(0):  # no need to wait for the peer's close frame
            await server.aclose()
        assert server.try_send_ping() is None


# -- stalled writers -----------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
async def test_a_writer_stalled_on_a_peer_that_reads_nothing_is_closed(
    kind: str, mock_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "wamp_trio.router")
    # No pings: the stall alone closes it (the peer could be sending all along).
    async with serving(keepalive_interval=None, keepalive_timeout=TIMEOUT) as (
        host,
        port,
        nursery,
    ):
        stalled: Client
        if kind == "rawsocket":
            stalled = await open_client(kind, port, receive_buffer=4096)
        else:
            stalled = await open_client(kind, port)
        stalled.session.subscribe(TOPIC)
        await stalled.flush()
        await stalled.expect(wamp_core.SubscribeSucceeded)
        conn = only_connection(host)
        other = await open_client("rawsocket", port)
        other.session.register(PROCEDURE)
        await other.flush()
        await other.expect(wamp_core.RegisterSucceeded)
        publisher = await memory_peer(host, nursery)
        for index in range(1000):  # until its writer waits on the full socket
            publisher.session.publish(TOPIC, [index, "x" * 60_000])
            await publisher.flush()
            await trio.testing.wait_all_tasks_blocked()
            if conn._stall:
                break
        assert conn._stall
        assert conn._writing
        mock_clock.autojump_threshold = 0
        start = trio.current_time()
        await until_finished(host, conn)
        elapsed = trio.current_time() - start
        assert TIMEOUT <= elapsed <= TIMEOUT + 2 * PERIOD
        why = f"its output has not moved for {TIMEOUT:g} s (the peer reads nothing)"
        assert conn.closed_by_policy == why
        assert host.timeout_disconnects == 1
        assert (logging.WARNING, f"{conn.name}: {why}; closing") in [
            (r.levelno, r.getMessage()) for r in caplog.records
        ]
        # The other connections go on.
        publisher.session.call(PROCEDURE, [2])
        await publisher.flush()
        invocation = await other.expect(wamp_core.InvocationReceived)
        other.session.yield_result(invocation.request_id, [4])
        await other.flush()
        result = await publisher.expect(wamp_core.ResultReceived)
        assert result.args == [4]
        assert len(host.router.sessions) == 2


async def test_a_writer_that_moves_slowly_is_not_closed(
    mock_clock: trio.testing.MockClock,
) -> None:
    # Memory transports without a buffer: each write waits until the reader
    # takes it, in virtual time only (a socket's flow control takes real time).
    async with serving(keepalive_interval=None, keepalive_timeout=TIMEOUT) as (host, _, nursery):
        client, server = memory_transport_pair(JSON, 0)
        nursery.start_soon(host.handle, server)
        reader = Peer(client, server)
        await reader.join()
        await reader.subscribe()
        conn = only_connection(host)
        publisher = await memory_peer(host, nursery)
        count = 20
        for index in range(count):
            publisher.session.publish(TOPIC, [index])
        await publisher.flush()
        await trio.testing.wait_all_tasks_blocked()
        assert conn._stall  # the writer waits for the reader
        mock_clock.autojump_threshold = 0
        received = []
        for _ in range(count):  # an event every 4 s: never TIMEOUT without progress
            await trio.sleep(TIMEOUT - 1)
            event = await reader.expect(wamp_core.EventReceived)
            received.append(event.args[0])
        assert received == list(range(count))
        assert not conn.finished
        assert host.timeout_disconnects == 0
        # Then it stops reading: closed TIMEOUT after its last progress.
        publisher.session.publish(TOPIC, [count])
        publisher.session.publish(TOPIC, [count + 1])
        await publisher.flush()
        start = trio.current_time()
        await until_finished(host, conn)
        assert TIMEOUT <= trio.current_time() - start <= TIMEOUT + PERIOD
        assert host.timeout_disconnects == 1


# -- serve_router's per-transport limits and timeouts ------------------------------------


@asynccontextmanager
async def sized(**options: Any) -> AsyncIterator[tuple[RouterHost, dict[str, str]]]:
    host = RouterHost(wamp_core.Router(["realm1"]))
    try:
        async with trio.open_nursery() as nursery:
            endpoints: list[Endpoint] = await nursery.start(
                lambda task_status: serve_router(
                    host, [TcpListener(port=0)], task_status=task_status, **options
                )
            )
            yield host, {e.kind: e.url for e in endpoints}
            nursery.cancel_scope.cancel()
    finally:
        await close_wires()


async def publish(client: Client, size: int) -> wamp_core.SessionEvent | None:
    """Publish (acknowledged) about ``size`` bytes; the answer, None if closed."""
    client.session.publish(TOPIC, ["x" * size], acknowledge=True)
    await client.flush()
    return await client.next_event()


async def test_each_transport_has_its_own_message_size() -> None:
    async with sized(
        max_message_size=1 << 20,
        rawsocket_max_message_size=2048,
        websocket_max_message_size=8192,
    ) as (_, urls):
        # RawSocket: the announced maximum is 2**(9+LLLL) <= 2048, so 2048.
        rs = await open_client("rawsocket", port_of(urls["rawsocket"]))
        assert isinstance(rs.wire, RawSocketWire)
        assert 2 ** (9 + rs.wire.exponent) == 2048
        assert isinstance(await publish(rs, 1000), wamp_core.PublishSucceeded)
        assert await publish(rs, 4000) is None  # over RawSocket's maximum: closed
        # WebSocket takes 4000 bytes, not 10000 (close 1009).
        ws = await open_client("websocket", port_of(urls["websocket"]))
        assert isinstance(await publish(ws, 4000), wamp_core.PublishSucceeded)
        assert await publish(ws, 10_000) is None  # close 1009
        assert isinstance(ws.wire, WebSocketWire)


async def test_the_rawsocket_size_defaults_to_max_message_size() -> None:
    async with sized(max_message_size=5000) as (_, urls):
        rs = await RawSocketWire.open(port_of(urls["rawsocket"]))
        assert 2 ** (9 + rs.exponent) == 4096  # the largest power of two not above
        await rs.aclose()


async def test_the_longpoll_body_size() -> None:
    async with sized(max_message_size=1 << 20, longpoll_max_body_size=1000) as (_, urls):
        base = urls["longpoll"]
        port = port_of(base)
        path = base.split(str(port), 1)[1]
        body = b"x" * 2000
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        async with stream:
            await stream.send_all(
                f"POST {path}/open HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n"
                "Content-Type: application/json\r\n\r\n".encode()
                + body
            )
            answer = await stream.receive_some()
        assert answer.startswith(b"HTTP/1.1 413 ")


@pytest.mark.parametrize("kind", ["tcp", "unix"])
async def test_a_client_that_says_nothing_is_dropped_after_the_handshake_timeout(
    kind: str,
    tmp_path: Path,
    mock_clock: trio.testing.MockClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, "wamp_trio")
    host = RouterHost(wamp_core.Router(["realm1"]), keepalive_interval=None)
    unix_path = str(tmp_path / "r.sock")
    listener = TcpListener(port=0) if kind == "tcp" else UnixListener(unix_path)
    async with trio.open_nursery() as nursery:
        endpoints: list[Endpoint] = await nursery.start(
            lambda task_status: serve_router(
                host, [listener], handshake_timeout=3.0, task_status=task_status
            )
        )
        if kind == "tcp":
            stream: trio.abc.Stream = await trio.open_tcp_stream(
                "127.0.0.1", port_of(endpoints[0].url)
            )
        else:
            stream = await trio.open_unix_socket(unix_path)
        local_port = stream.socket.getsockname()[1] if kind == "tcp" else 0  # type: ignore[attr-defined]
        async with stream:
            await stream.send_all(b"\x7f")  # half a RawSocket handshake, then nothing
            mock_clock.autojump_threshold = 0
            start = trio.current_time()
            assert await stream.receive_some() == b""
            assert 3.0 <= trio.current_time() - start <= 3.1
        await trio.testing.wait_all_tasks_blocked()  # the router logs after closing
        peer = "unix" if kind == "unix" else f"tcp4:127.0.0.1:{local_port}"
        assert f"dropping {peer}: its RawSocket handshake did not complete in time" in [
            r.getMessage() for r in caplog.records
        ]
        assert host.connections == ()
        nursery.cancel_scope.cancel()


async def test_rawsocket_peers_get_tcp_keepalive_not_pings_by_default(
    mock_clock: trio.testing.MockClock,
) -> None:
    """Autobahn|Python's RawSocket fails its connection on a PING frame: by default
    RawSocket peers get none, and the kernel's TCP keepalive (set from the same
    figures on the listening socket, inherited by accepted ones) finds dead ones.
    WebSocket peers are still pinged."""
    async with serving(
        keepalive_interval=INTERVAL, keepalive_timeout=TIMEOUT, rawsocket_pings=False
    ) as (host, port, nursery):
        rawsocket = await open_client("rawsocket", port)
        websocket = await open_client("websocket", port)
        nursery.start_soon(rawsocket.read_until_closed)
        nursery.start_soon(websocket.read_until_closed)
        mock_clock.autojump_threshold = 0
        await trio.sleep(10 * INTERVAL)
        assert rawsocket.pings == 0
        assert websocket.pings >= 5
        assert host.timeout_disconnects == 0
        for conn in host.connections:
            assert not conn.finished
            sock = conn.transport._stream.socket  # type: ignore[attr-defined]
            assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 1
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE) == round(INTERVAL)
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL) == round(TIMEOUT / 3)
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT) == 3


async def test_no_tcp_keepalive_without_keepalive() -> None:
    async with serving(keepalive_interval=None) as (host, port, nursery):
        client = await open_client("rawsocket", port)
        nursery.start_soon(client.read_until_closed)
        await trio.testing.wait_all_tasks_blocked()
        (conn,) = host.connections
        sock = conn.transport._stream.socket  # type: ignore[attr-defined]
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 0
