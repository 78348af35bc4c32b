"""Faults over real loopback sockets, each with a defined outcome, and nothing left behind.

A router (``RouterHost`` + ``serve_router``, RawSocket and WebSocket on 127.0.0.1, port
0) serves ``wamp_trio.connect`` clients and ``RawPeer``s: clients driven by hand, whose
TCP stream the test can cut with a reset (SO_LINGER 0) at any point, even in the middle
of a frame. After each fault, once every session is gone, the router's tables must be
empty and the host must have no connection left (``assert_nothing_left``).
"""

from __future__ import annotations

import contextlib
import math
import socket
import struct
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import trio
import trio.testing

import wamp_core
from wamp_core import CloseReason, ErrorURI
from wamp_trio import (
    ApplicationError,
    RouterHost,
    SessionEnded,
    TcpListener,
    TransportClosed,
    connect,
    connect_rawsocket,
    connect_websocket,
    serve_router,
)
from wamp_trio._transport import MessageTransport

TOPIC = "com.example.faults.topic"
PROCEDURE = "com.example.faults.proc"
TRANSPORTS = ["rs", "ws"]
SERIALIZERS = {"rs": "msgpack", "ws": "json"}


# -- nothing left behind ----------------------------------------------------------------


def leftovers(host: RouterHost) -> dict[str, int]:
    """What the router still holds: the non-zero ``Router.table_sizes()``, connections."""
    left = {name: size for name, size in host.router.table_sizes().items() if size}
    if host.connections:
        left["host.connections"] = len(host.connections)
    return left


async def eventually(predicate: Callable[[], bool], what: str) -> None:
    """Wait (at most 1000 polls, 10 s) for ``predicate()`` to hold."""
    for _ in range(1000):
        if predicate():
            return
        await trio.sleep(0.01)
    raise AssertionError(f"never happened: {what}")


async def assert_nothing_left(host: RouterHost) -> None:
    """Every client has gone: the router must come back to empty tables, no connection."""
    await eventually(lambda: not leftovers(host), "tables and connections empty")
    assert host.connections == ()
    assert leftovers(host) == {}


# -- the router and its clients ----------------------------------------------------------


class Server:
    """A router on a free loopback port: RawSocket and WebSocket."""

    def __init__(self, host: RouterHost, port: int) -> None:
        self.host = host
        self.router = host.router
        self.port = port
        self.peers: list[RawPeer] = []

    def url(self, kind: str) -> str:
        return f"rs://127.0.0.1:{self.port}" if kind == "rs" else f"ws://127.0.0.1:{self.port}/ws"

    async def gone(self, session_id: int) -> None:
        """Wait until the router has dropped session ``session_id``."""
        await eventually(lambda: session_id not in self.router.sessions, f"{session_id} gone")


@contextlib.asynccontextmanager
async def serving(**options: Any) -> AsyncIterator[Server]:
    host = RouterHost(wamp_core.Router(["realm1"]), **options)
    async with trio.open_nursery() as nursery:
        listener = TcpListener(port=0, longpoll=None)
        endpoints = await nursery.start(serve_router, host, [listener])
        port = int(endpoints[0].url.split(":")[2].split("/")[0])
        server = Server(host, port)
        try:
            yield server
            await host.shutdown()
        finally:
            for peer in server.peers:
                peer.close()
        nursery.cancel_scope.cancel()


class RawPeer:
    """A client driven by hand (``wamp_core.ClientSession``) over a TCP stream of its own."""

    def __init__(
        self,
        kind: str,
        stream: trio.SocketStream,
        transport: MessageTransport,
        roles: dict[str, Any] | None,
    ) -> None:
        self.kind = kind
        self.stream = stream
        self.transport = transport
        self.session = wamp_core.ClientSession(transport.serializer, roles=roles)
        self.backlog: list[wamp_core.SessionEvent] = []
        self.session_id = 0

    @classmethod
    async def open(
        cls,
        server: Server,
        kind: str,
        serializer: str = "json",
        *,
        roles: dict[str, Any] | None = None,
    ) -> RawPeer:
        """Connect and join realm1."""
        stream = await trio.open_tcp_stream("127.0.0.1", server.port)
        codec = wamp_core.get_serializer(serializer)
        transport: MessageTransport
        if kind == "rs":
            transport = await connect_rawsocket(stream, codec)
        else:
            transport = await connect_websocket(
                stream, f"127.0.0.1:{server.port}", "/ws", [codec.subprotocol]
            )
        peer = cls(kind, stream, transport, roles)
        server.peers.append(peer)
        peer.session.join("realm1")
        await peer.flush()
        joined = await peer.expect(wamp_core.SessionJoined)
        peer.session_id = joined.session_id
        return peer

    async def flush(self) -> None:
        for data in self.session.data_to_send():
            await self.transport.send(data)

    async def next_event(self) -> wamp_core.SessionEvent:
        while not self.backlog:
            data = await self.transport.receive()
            self.backlog.extend(self.session.receive_data(data))
            with contextlib.suppress(TransportClosed):  # the router may have closed
                await self.flush()  # e.g. the echo of the router's GOODBYE
        return self.backlog.pop(0)

    async def expect(self, kind: type[Any]) -> Any:
        event = await self.next_event()
        assert isinstance(event, kind), event
        return event

    async def closed(self) -> None:
        """Read until the router closes the connection; it must send nothing more."""
        try:
            event = await self.next_event()
        except TransportClosed:
            return
        raise AssertionError(f"unexpected {event}")

    async def register(self, procedure: str = PROCEDURE, **options: Any) -> None:
        self.session.register(procedure, options)
        await self.flush()
        await self.expect(wamp_core.RegisterSucceeded)

    async def subscribe(self, topic: str = TOPIC) -> None:
        self.session.subscribe(topic)
        await self.flush()
        await self.expect(wamp_core.SubscribeSucceeded)

    async def send_raw(self, message: wamp_core.Message) -> None:
        """Send ``message`` as it is, past the session's own checks."""
        await self.transport.send(self.transport.serializer.encode(message))

    def frame(self, payload: bytes) -> bytes:
        """``payload`` as one whole frame of this transport (WebSocket: masked, zero key)."""
        if self.kind == "rs":
            return b"\x00" + len(payload).to_bytes(3, "big") + payload
        assert len(payload) < 126
        opcode = 0x82 if self.transport.serializer.binary else 0x81
        return bytes([opcode, 0x80 | len(payload)]) + b"\0\0\0\0" + payload

    def half_frame(self) -> bytes:
        """The first part of a frame announcing 1000 bytes, with 20 of them."""
        if self.kind == "rs":
            return b"\x00" + (1000).to_bytes(3, "big") + b"[" * 20
        return b"\x81\xfe" + (1000).to_bytes(2, "big") + b"\0\0\0\0" + b"[" * 20

    def reset(self) -> None:
        """Close the TCP connection with a reset (RST), without a word."""
        sock = self.stream.socket
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.close()

    def close(self) -> None:
        """Close the socket now (idempotent)."""
        if self.stream.socket.fileno() != -1:
            self.stream.socket.close()


class Tally:
    """The values a subscriber received, in order; ``reach(n)`` waits for n of them."""

    def __init__(self) -> None:
        self.seen: list[Any] = []
        self._changed = trio.Event()

    def add(self, value: Any) -> None:
        self.seen.append(value)
        self._changed.set()
        self._changed = trio.Event()

    async def reach(self, count: int) -> None:
        while len(self.seen) < count:
            await self._changed.wait()


def without_call_canceling() -> dict[str, Any]:
    """CLIENT_ROLES without the callee's ``call_canceling``."""
    roles = {role: {**details} for role, details in wamp_core.CLIENT_ROLES.items()}
    features = dict(roles["callee"]["features"])
    del features["call_canceling"]
    roles["callee"]["features"] = features
    return roles


# -- a callee dies ------------------------------------------------------------------------


@pytest.mark.parametrize("kind", TRANSPORTS)
@pytest.mark.parametrize("invoke", ["roundrobin", "single"])
async def test_callee_dies_mid_call(kind: str, invoke: str) -> None:
    """The caller gets ERROR wamp.error.canceled. With a shared registration the other
    callee serves the next calls; with a single one, the procedure is gone."""
    with trio.fail_after(20):
        async with serving() as server:
            dying = await RawPeer.open(server, kind, SERIALIZERS[kind])
            await dying.register(invoke=invoke)
            async with (
                connect(server.url(kind), serializer="cbor") as other,
                connect(server.url("ws" if kind == "rs" else "rs")) as caller,
            ):
                if invoke == "roundrobin":
                    await other.register(PROCEDURE, lambda x: x + 1, invoke="roundrobin")
                outcome: list[BaseException] = []

                async def call() -> None:
                    try:
                        await caller.call(PROCEDURE, 1, timeout=600)  # a dealer timer
                    except ApplicationError as exc:
                        outcome.append(exc)

                async with trio.open_nursery() as nursery:
                    nursery.start_soon(call)
                    # Round robin: the first registered callee gets the first call.
                    await dying.expect(wamp_core.InvocationReceived)
                    dying.reset()
                (error,) = outcome
                assert isinstance(error, ApplicationError)
                assert error.error == ErrorURI.CANCELED
                await server.gone(dying.session_id)
                if invoke == "single":
                    with pytest.raises(ApplicationError) as gone:
                        await caller.call(PROCEDURE, 41)
                    assert gone.value.error == ErrorURI.NO_SUCH_PROCEDURE
                    registration = await other.register(PROCEDURE, lambda x: x + 1)
                    assert registration.active
                assert await caller.call(PROCEDURE, 41) == 42
                assert await caller.call(PROCEDURE, 1) == 2
            await assert_nothing_left(server.host)


@pytest.mark.parametrize("kind", TRANSPORTS)
async def test_callee_dies_between_progressive_results(kind: str) -> None:
    """The caller gets the progressive results sent so far, then ERROR canceled."""
    with trio.fail_after(20):
        async with serving() as server:
            callee = await RawPeer.open(server, kind, SERIALIZERS[kind])
            await callee.register()
            async with connect(server.url("rs"), serializer="json") as caller:
                received: list[Any] = []
                outcome: list[BaseException] = []

                async def call() -> None:
                    try:
                        async with caller.call_progressive(PROCEDURE) as results:
                            async for result in results:
                                received.append(result)
                    except ApplicationError as exc:
                        outcome.append(exc)

                async with trio.open_nursery() as nursery:
                    nursery.start_soon(call)
                    invocation = await callee.expect(wamp_core.InvocationReceived)
                    assert invocation.details.get("receive_progress") is True
                    for n in range(2):
                        callee.session.yield_result(invocation.request_id, [n], progress=True)
                    await callee.flush()
                    await eventually(lambda: len(received) == 2, "two progressive results")
                    callee.reset()
                assert received == [0, 1]
                (error,) = outcome
                assert isinstance(error, ApplicationError)
                assert error.error == ErrorURI.CANCELED
            await assert_nothing_left(server.host)


# -- a caller dies ------------------------------------------------------------------------


@pytest.mark.parametrize("kind", TRANSPORTS)
@pytest.mark.parametrize("canceling", [True, False], ids=["call_canceling", "no_canceling"])
async def test_caller_dies_mid_call(kind: str, canceling: bool) -> None:
    """The callee gets INTERRUPT killnowait if it announced call_canceling, else
    nothing; its late YIELD is dropped and it serves later calls as before."""
    with trio.fail_after(20):
        async with serving() as server:
            roles = None if canceling else without_call_canceling()
            callee = await RawPeer.open(server, kind, SERIALIZERS[kind], roles=roles)
            await callee.register()
            caller = await RawPeer.open(server, "ws" if kind == "rs" else "rs", "cbor")
            caller.session.call(PROCEDURE, [1], options={"timeout": 600_000})
            await caller.flush()
            invocation = await callee.expect(wamp_core.InvocationReceived)
            caller.reset()
            await server.gone(caller.session_id)
            # The call's timer is stopped; the invocation waits for its answer.
            tables = server.router.table_sizes()
            assert (tables["calls"], tables["timers"], tables["orphaned_invocations"]) == (0, 0, 1)
            if canceling:
                interrupt = await callee.expect(wamp_core.InterruptReceived)
                assert interrupt.request_id == invocation.request_id
                assert interrupt.mode == "killnowait"
            await callee.send_raw(wamp_core.Yield(invocation.request_id, {}, ["late"]))
            async with connect(server.url(kind)) as other, trio.open_nursery() as nursery:

                async def call() -> None:
                    assert await other.call(PROCEDURE, 2) == 3

                nursery.start_soon(call)
                # The next thing the callee gets is the next call: the late YIELD
                # drew no ERROR, no ABORT, no INTERRUPT.
                second = await callee.expect(wamp_core.InvocationReceived)
                assert second.args == [2]
                callee.session.yield_result(second.request_id, [3])
                await callee.flush()
            assert server.router.table_sizes()["orphaned_invocations"] == 0  # the late YIELD
            callee.session.leave()
            await callee.flush()
            await callee.expect(wamp_core.SessionClosed)
            callee.close()
            await assert_nothing_left(server.host)


@pytest.mark.parametrize("kind", TRANSPORTS)
async def test_caller_dies_after_cancel_kill(kind: str) -> None:
    """The callee got INTERRUPT kill and the router waits for its answer; the caller
    dies meanwhile: the callee's late ERROR is dropped and it serves later calls."""
    with trio.fail_after(20):
        async with serving() as server:
            callee = await RawPeer.open(server, kind, SERIALIZERS[kind])
            await callee.register()
            caller = await RawPeer.open(server, kind, "json")
            request = caller.session.call(PROCEDURE, [1])
            await caller.flush()
            invocation = await callee.expect(wamp_core.InvocationReceived)
            caller.session.cancel(request, "kill")
            await caller.flush()
            interrupt = await callee.expect(wamp_core.InterruptReceived)
            assert interrupt.mode == "kill"
            caller.reset()
            await server.gone(caller.session_id)
            callee.session.yield_error(invocation.request_id, ErrorURI.CANCELED)
            await callee.flush()
            async with connect(server.url(kind)) as other, trio.open_nursery() as nursery:

                async def call() -> None:
                    assert await other.call(PROCEDURE, 5) == "five"

                nursery.start_soon(call)
                second = await callee.expect(wamp_core.InvocationReceived)
                callee.session.yield_result(second.request_id, ["five"])
                await callee.flush()
            callee.reset()
            await assert_nothing_left(server.host)


@pytest.mark.parametrize("kind", TRANSPORTS)
async def test_caller_dies_while_its_large_result_is_written(kind: str) -> None:
    """The router is writing a 4 MB RESULT to a caller that reads nothing; the caller's
    reset ends that write and that connection only."""
    big = "x" * 4_000_000
    started = trio.Event()

    def large() -> str:
        started.set()
        return big

    with trio.fail_after(20):
        async with serving() as server:
            async with connect(server.url("rs"), serializer="msgpack") as callee:
                await callee.register(PROCEDURE, large)
                await callee.register("com.example.faults.ok", lambda: "ok")
                caller = await RawPeer.open(server, kind, "msgpack")
                caller.stream.socket.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
                caller.session.call(PROCEDURE)
                await caller.flush()
                await started.wait()
                # The call is over for the router: its RESULT is queued or being written.
                await eventually(lambda: server.router.table_sizes()["calls"] == 0, "YIELD")
                caller.reset()
                await server.gone(caller.session_id)
                await eventually(lambda: len(server.host.connections) == 1, "connection gone")
                async with connect(server.url(kind)) as other:
                    assert await other.call("com.example.faults.ok") == "ok"
                    assert await other.call(PROCEDURE) == big
            await assert_nothing_left(server.host)


# -- a subscriber dies while events are fanned out ---------------------------------------


@pytest.mark.parametrize("kind", TRANSPORTS)
async def test_subscriber_dies_mid_fan_out(kind: str) -> None:
    """Every other subscriber receives every event, in order."""
    total, window, payload = 600, 50, "x" * 1000
    with trio.fail_after(30):
        async with serving() as server:
            victim = await RawPeer.open(server, kind, SERIALIZERS[kind])
            victim.stream.socket.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            await victim.subscribe()
            tallies = [Tally(), Tally(), Tally()]
            async with (
                connect(server.url("ws"), serializer="json") as a,
                connect(server.url("rs"), serializer="msgpack") as b,
                connect(server.url(kind), serializer="cbor") as c,
                connect(server.url("rs")) as publisher,
            ):
                for session, tally in zip((a, b, c), tallies):

                    def record(n: int, text: str, tally: Tally = tally) -> None:
                        tally.add(n)

                    await session.subscribe(TOPIC, record, queue_size=math.inf)
                # The victim reads nothing: its queue and socket fill up; it is
                # reset halfway, while the router is still writing to it.
                for n in range(total):
                    if n == total // 2:
                        victim.reset()
                    if n % window == 0:
                        for tally in tallies:
                            await tally.reach(n - window)
                    await publisher.publish(TOPIC, n, payload)
                await publisher.publish(TOPIC, total, "", acknowledge=True)
                for tally in tallies:
                    await tally.reach(total + 1)
                    assert tally.seen == list(range(total + 1))
                await server.gone(victim.session_id)
                assert len(server.host.connections) == 4
            await assert_nothing_left(server.host)


# -- a TCP reset in the middle of a frame ---------------------------------------------------


@pytest.mark.parametrize("kind", TRANSPORTS)
async def test_reset_in_the_middle_of_a_frame(kind: str) -> None:
    """The router drops that connection and its session only; the others go on."""
    with trio.fail_after(20):
        async with serving() as server:
            async with (
                connect(server.url("rs"), serializer="cbor") as callee,
                connect(server.url("ws")) as caller,
            ):
                await callee.register(PROCEDURE, lambda x: x * 2)
                events = await caller.subscribe(TOPIC)
                peer = await RawPeer.open(server, kind)
                await peer.register("com.example.faults.peer")
                # A whole PUBLISH and half of the next frame in one write: once
                # PUBLISHED is back, the router has read the half frame too.
                peer.session.publish(TOPIC, ["whole"], acknowledge=True)
                (publish,) = peer.session.data_to_send()
                await peer.stream.send_all(peer.frame(publish) + peer.half_frame())
                await peer.expect(wamp_core.PublishSucceeded)
                peer.reset()
                await server.gone(peer.session_id)
                assert len(server.host.connections) == 2
                assert "com.example.faults.peer" not in {
                    r.uri for r in server.router.realms["realm1"].dealer.registrations.values()
                }
                event = await events.__anext__()
                assert event.args == ("whole",)
                assert await caller.call(PROCEDURE, 21) == 42
                await callee.publish(TOPIC, "after", acknowledge=True)
                assert (await events.__anext__()).args == ("after",)
            await assert_nothing_left(server.host)


def task_count() -> int:
    """Tasks alive in this trio run."""
    root = trio.lowlevel.current_root_task()
    assert root is not None
    count, stack = 0, [root]
    while stack:
        task = stack.pop()
        count += 1
        stack.extend(child for nursery in task.child_nurseries for child in nursery.child_tasks)
    return count


@pytest.mark.parametrize("kind", TRANSPORTS)
async def test_reset_during_the_opening_handshake(kind: str) -> None:
    """Half a RawSocket handshake or half an HTTP upgrade request, then a reset: the
    router forgets the connection (no task, no connection left) and serves others."""
    with trio.fail_after(20):
        async with serving() as server:
            idle = task_count()
            for _ in range(3):
                stream = await trio.open_tcp_stream("127.0.0.1", server.port)
                if kind == "rs":
                    await stream.send_all(b"\x7f\xf2")  # 2 of the 4 handshake bytes
                else:
                    await stream.send_all(b"GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgr")
                await eventually(lambda: task_count() > idle, "the handshake under way")
                linger = struct.pack("ii", 1, 0)
                stream.socket.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
                stream.socket.close()
                await eventually(lambda: task_count() == idle, "its task gone")
            async with connect(server.url(kind)) as session:
                await session.register(PROCEDURE, lambda: "ok")
                assert await session.call(PROCEDURE) == "ok"
            await assert_nothing_left(server.host)
            await eventually(lambda: task_count() == idle, "the client's tasks gone")


# -- router shutdown with calls in flight ----------------------------------------------------


@pytest.mark.parametrize("kind", TRANSPORTS)
@pytest.mark.parametrize("first", ["callee", "caller"])
async def test_shutdown_with_a_call_in_flight(kind: str, first: str) -> None:
    """Every session gets GOODBYE wamp.close.system_shutdown. The sessions are closed
    in the order they connected:

    - callee first: the caller's call raises ApplicationError wamp.error.canceled
      (the callee left), then its session ends with SessionEnded(system_shutdown);
    - caller first: the call raises SessionEnded(system_shutdown) and the callee
      gets INTERRUPT killnowait before its GOODBYE.
    """
    call_outcome: list[BaseException] = []
    session_outcome: list[BaseException] = []
    with trio.fail_after(20):
        async with serving() as server:
            joined = trio.Event()

            async def caller_side() -> None:
                try:
                    async with connect(server.url(kind)) as caller:
                        joined.set()
                        await callee_ready.wait()
                        try:
                            await caller.call(PROCEDURE)
                        except (ApplicationError, SessionEnded) as exc:
                            call_outcome.append(exc)
                        await trio.sleep_forever()
                except SessionEnded as exc:
                    session_outcome.append(exc)

            callee_ready = trio.Event()
            async with trio.open_nursery() as nursery:
                if first == "caller":
                    nursery.start_soon(caller_side)
                    await joined.wait()
                callee = await RawPeer.open(server, kind, SERIALIZERS[kind])
                await callee.register()
                callee_ready.set()
                if first == "callee":
                    nursery.start_soon(caller_side)
                await callee.expect(wamp_core.InvocationReceived)
                nursery.start_soon(server.host.shutdown)
                if first == "caller":
                    interrupt = await callee.expect(wamp_core.InterruptReceived)
                    assert interrupt.mode == "killnowait"
                closed = await callee.expect(wamp_core.SessionClosed)  # and echoes it
                assert closed.reason == CloseReason.SYSTEM_SHUTDOWN
                await callee.closed()
            # Both answered GOODBYE: shutdown returned once both connections were closed.
            assert server.host.connections == ()
            await assert_nothing_left(server.host)

    (call_error,) = call_outcome
    if first == "callee":
        assert isinstance(call_error, ApplicationError)
        assert call_error.error == ErrorURI.CANCELED
    else:
        assert isinstance(call_error, SessionEnded)
        assert call_error.reason == CloseReason.SYSTEM_SHUTDOWN
    (ended,) = session_outcome
    assert ended.reason == CloseReason.SYSTEM_SHUTDOWN  # type: ignore[attr-defined]


@pytest.mark.parametrize("kind", TRANSPORTS)
async def test_shutdown_ends_when_a_client_never_answers(
    kind: str, mock_clock: trio.testing.MockClock
) -> None:
    """A client that never answers GOODBYE (nor reads) holds shutdown for
    shutdown_timeout (plus the WebSocket closing handshake's close_timeout), no
    longer; its connection is then closed."""
    shutdown_timeout, close_timeout = 30.0, 2.0
    async with serving(shutdown_timeout=shutdown_timeout, close_timeout=close_timeout) as server:
        silent = await RawPeer.open(server, kind, SERIALIZERS[kind])
        await silent.register()
        caller = await RawPeer.open(server, kind)
        caller.session.call(PROCEDURE)
        await caller.flush()
        await silent.expect(wamp_core.InvocationReceived)
        start = trio.current_time()

        async def answering() -> None:
            error = await caller.expect(wamp_core.ErrorReceived)  # the callee left
            assert error.error == ErrorURI.CANCELED
            closed = await caller.expect(wamp_core.SessionClosed)  # and echoes it
            assert closed.reason == CloseReason.SYSTEM_SHUTDOWN
            await caller.closed()

        mock_clock.autojump_threshold = 0  # virtual time: jumps whenever all wait
        async with trio.open_nursery() as nursery:
            nursery.start_soon(answering)
            await server.host.shutdown()
        elapsed = trio.current_time() - start
        assert shutdown_timeout <= elapsed <= shutdown_timeout + close_timeout
        assert server.host.connections == ()
        # What the silent client would have read.
        closed = await silent.expect(wamp_core.SessionClosed)
        assert closed.reason == CloseReason.SYSTEM_SHUTDOWN
        await silent.closed()
        await assert_nothing_left(server.host)


@pytest.mark.parametrize("kind", TRANSPORTS)
async def test_shutdown_ends_when_a_client_reads_nothing(
    kind: str, mock_clock: trio.testing.MockClock
) -> None:
    """A subscriber whose socket is full (the router's writes to it wait) holds
    shutdown for shutdown_timeout (plus close_timeout), no longer: its GOODBYE never
    gets out, its connection is closed with its queue."""
    shutdown_timeout, close_timeout = 30.0, 2.0
    async with serving(shutdown_timeout=shutdown_timeout, close_timeout=close_timeout) as server:
        full = await RawPeer.open(server, kind, SERIALIZERS[kind])
        full.stream.socket.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        await full.subscribe()
        publisher = await RawPeer.open(server, "rs")
        for n in range(200):
            publisher.session.publish(TOPIC, [n, "x" * 40_000], acknowledge=n == 199)
        await publisher.flush()
        await publisher.expect(wamp_core.PublishSucceeded)
        (conn,) = [c for c in server.host.connections if c.session.session_id == full.session_id]
        assert conn.queued > 0  # the socket is full: the rest waits in the queue
        start = trio.current_time()
        mock_clock.autojump_threshold = 0  # virtual time: jumps whenever all wait
        async with trio.open_nursery() as nursery:

            async def answering() -> None:
                closed = await publisher.expect(wamp_core.SessionClosed)  # and echoes it
                assert closed.reason == CloseReason.SYSTEM_SHUTDOWN
                await publisher.closed()

            nursery.start_soon(answering)
            await server.host.shutdown()
        elapsed = trio.current_time() - start
        assert shutdown_timeout <= elapsed <= shutdown_timeout + close_timeout
        assert server.host.connections == ()
        # What reached the socket before the close, then the end: not all 8 MB.
        received = 0
        with contextlib.suppress(trio.BrokenResourceError):
            for _ in range(100_000):
                data = await full.stream.receive_some(1 << 20)
                if not data:
                    break
                received += len(data)
        assert received < 200 * 40_000
        await assert_nothing_left(server.host)


# -- a protocol violation in the middle of a call -------------------------------------------


@pytest.mark.parametrize("kind", TRANSPORTS)
async def test_caller_violates_the_protocol_mid_call(kind: str) -> None:
    """The caller gets ABORT wamp.error.protocol_violation and is disconnected; the
    callee is interrupted (killnowait) and serves the next call."""
    started = trio.Event()
    interrupted = trio.Event()

    async def slow() -> None:
        started.set()
        try:
            await trio.sleep_forever()
        except trio.Cancelled:
            interrupted.set()
            raise

    with trio.fail_after(20):
        async with serving() as server:
            async with connect(server.url("rs"), serializer="cbor") as callee:
                await callee.register(PROCEDURE, slow)
                await callee.register("com.example.faults.ok", lambda: "ok")
                caller = await RawPeer.open(server, kind, SERIALIZERS[kind])
                caller.session.call(PROCEDURE)
                await caller.flush()
                await started.wait()
                # A YIELD from a caller that was never invoked: a violation.
                await caller.send_raw(wamp_core.Yield(77, {}))
                aborted = await caller.expect(wamp_core.SessionAborted)
                assert aborted.reason == ErrorURI.PROTOCOL_VIOLATION
                await caller.closed()
                await interrupted.wait()
                await server.gone(caller.session_id)
                async with connect(server.url(kind)) as other:
                    assert await other.call("com.example.faults.ok") == "ok"
            await assert_nothing_left(server.host)


@pytest.mark.parametrize("kind", TRANSPORTS)
async def test_callee_violates_the_protocol_mid_call(kind: str) -> None:
    """The callee gets ABORT wamp.error.protocol_violation and is disconnected; the
    caller's call raises ApplicationError wamp.error.canceled, and it goes on."""
    with trio.fail_after(20):
        async with serving() as server:
            callee = await RawPeer.open(server, kind, SERIALIZERS[kind])
            await callee.register()
            async with connect(server.url("ws"), serializer="msgpack") as caller:
                outcome: list[BaseException] = []

                async def call() -> None:
                    try:
                        await caller.call(PROCEDURE, 1)
                    except ApplicationError as exc:
                        outcome.append(exc)

                async with trio.open_nursery() as nursery:
                    nursery.start_soon(call)
                    invocation = await callee.expect(wamp_core.InvocationReceived)
                    # A YIELD for an INVOCATION that never was: a violation.
                    await callee.send_raw(wamp_core.Yield(invocation.request_id + 1000, {}))
                    aborted = await callee.expect(wamp_core.SessionAborted)
                    assert aborted.reason == ErrorURI.PROTOCOL_VIOLATION
                    await callee.closed()
                (error,) = outcome
                assert isinstance(error, ApplicationError)
                assert error.error == ErrorURI.CANCELED
                await caller.register("com.example.faults.self", lambda: "still here")
                assert await caller.call("com.example.faults.self") == "still here"
            await assert_nothing_left(server.host)
