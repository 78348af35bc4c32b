"""Floods over real sockets: one RawSocket client writes as fast as its socket
takes it and never reads; the router throttles or cuts it as docs/router.md
(Backpressure) says, and well-behaved clients meanwhile get everything done.

The flooder is a bare TCP socket speaking RawSocket by hand, so that nothing
ever reads what the router sends it. The ``trio.fail_after`` bounds are
liveness checks (a starved client would hang), not timings.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import socket
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import trio
import trio.testing

import wamp_core
from tests.trio.test_host import Peer
from wamp_core import ErrorURI, Message
from wamp_trio._config import TcpListener
from wamp_trio._connect import open_transport
from wamp_trio._host import HostedConnection, RouterHost, serve_router
from wamp_trio._transport import TransportClosed

TOPIC = "com.example.flood"
QUIET = "com.example.quiet"
ECHO = "com.example.echo"
SLOW = "com.example.slow"
QUEUE = 64
CHUNK = 500  # messages per write of a flooder
CALLS = 20  # sequential calls the well-behaved client makes
MAX_MESSAGE = 65536  # the router announces it in the RawSocket handshake
LIVENESS = 60  # seconds: a generous bound for everything a test does


OPEN: list[Raw] = []


@contextlib.asynccontextmanager
async def serving(
    router: wamp_core.Router, **options: Any
) -> AsyncIterator[tuple[RouterHost, int]]:
    """A router host on a RawSocket-only TCP port of 127.0.0.1; (host, port)."""
    options.setdefault("queue_size", QUEUE)
    host = RouterHost(router, keepalive_interval=None, **options)
    listener = TcpListener(port=0, websocket=None, longpoll=None)
    async with trio.open_nursery() as nursery:
        endpoints = await nursery.start(
            functools.partial(serve_router, max_message_size=MAX_MESSAGE), host, [listener]
        )
        port = int(endpoints[0].url.rsplit(":", 1)[1])
        try:
            with trio.fail_after(LIVENESS):
                yield host, port
        finally:
            while OPEN:
                await trio.aclose_forcefully(OPEN.pop().stream)
        nursery.cancel_scope.cancel()


class Raw:
    """A RawSocket client on a bare socket (JSON), driven by hand."""

    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self.buffer = b""
        self.serializer = wamp_core.get_serializer("json")
        self.requests = wamp_core.SequentialIds()
        self.session_id = 0

    @classmethod
    async def connect(cls, port: int, receive_buffer: int | None = None) -> Raw:
        sock = trio.socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if receive_buffer is not None:  # set before connecting, so the window stays small
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
        await sock.connect(("127.0.0.1", port))
        raw = cls(trio.SocketStream(sock))
        OPEN.append(raw)  # closed when serving() ends
        await raw.stream.send_all(bytes([0x7F, 0xF1, 0, 0]))  # JSON, up to 16 MiB
        reply = await raw.exactly(4)
        assert reply[0] == 0x7F
        assert reply[1] & 0x0F == 1, reply
        return raw

    async def exactly(self, count: int) -> bytes:
        while len(self.buffer) < count:
            data = await self.stream.receive_some(65536)
            if not data:
                raise EOFError
            self.buffer += data
        out, self.buffer = self.buffer[:count], self.buffer[count:]
        return out

    async def receive(self) -> Message:
        """The next WAMP message (PONGs are skipped)."""
        for _ in range(1000):
            header = await self.exactly(4)
            payload = await self.exactly(int.from_bytes(header[1:], "big"))
            if header[0] & 0x07 == 0:
                (message,) = self.serializer.decode(payload)
                return message
        raise AssertionError("only PONGs")

    def frame(self, message: Message) -> bytes:
        return self.encode(self.serializer.encode(message))

    @staticmethod
    def encode(payload: bytes, frame_type: int = 0) -> bytes:
        return bytes([frame_type]) + len(payload).to_bytes(3, "big") + payload

    async def send(self, message: Message) -> None:
        await self.stream.send_all(self.frame(message))

    async def join(self, realm: str = "realm1") -> None:
        await self.send(wamp_core.Hello(realm, {"roles": wamp_core.CLIENT_ROLES}))
        welcome = await self.receive()
        assert isinstance(welcome, wamp_core.Welcome), welcome
        self.session_id = welcome.session

    async def subscribe(self, topic: str) -> None:
        await self.send(wamp_core.Subscribe(self.requests(), {}, topic))
        assert isinstance(await self.receive(), wamp_core.Subscribed)

    async def flood(
        self, payload: Callable[[int], bytes], limit: int, stop: trio.Event, framed: bool = False
    ) -> int:
        """Write frames of ``payload(request ID)`` (or, ``framed``, what it
        returns as it is), CHUNK to a write, reading nothing, until ``limit``
        are written, ``stop`` is set or the router closes the connection; the
        number written."""
        frame = (lambda data: data) if framed else self.encode
        written = 0
        with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
            while written < limit and not stop.is_set():
                chunk = b"".join(frame(payload(self.requests())) for _ in range(CHUNK))
                await self.stream.send_all(chunk)
                written += CHUNK
        return written


async def closed(raw: Raw, conn: HostedConnection) -> list[Message]:
    """Read what the router still sent ``raw`` until it closed the connection
    (the WAMP messages in the first 64 KiB); then the host is done with ``conn``."""
    data = raw.buffer
    with contextlib.suppress(trio.BrokenResourceError):
        for _ in range(100_000):
            chunk = await raw.stream.receive_some(65536)
            if not chunk:
                break
            if len(data) < 65536:
                data += chunk
        else:
            raise AssertionError("the router never closed the connection")
    await trio.testing.wait_all_tasks_blocked()
    assert conn.finished
    messages = []
    while len(data) >= 4 and len(data) >= 4 + int.from_bytes(data[1:4], "big"):
        end = 4 + int.from_bytes(data[1:4], "big")
        if data[0] & 0x07 == 0:
            messages.extend(raw.serializer.decode(data[4:end]))
        data = data[end:]
    return messages


def connection_of(host: RouterHost, session_id: int) -> HostedConnection:
    (conn,) = [c for c in host.connections if c.session.session_id == session_id]
    return conn


async def good_client(port: int) -> AsyncIterator[Peer]:
    async with open_transport(f"rs://127.0.0.1:{port}") as transport:
        peer = Peer(transport, transport)
        await peer.join()
        yield peer


good = contextlib.asynccontextmanager(good_client)


async def echo_callee(peer: Peer, count: int) -> None:
    """Answer ``count`` calls with their own arguments."""
    for _ in range(count):
        invocation = await peer.expect(wamp_core.InvocationReceived)
        peer.session.yield_result(invocation.request_id, invocation.args)
        await peer.flush()


async def sequential_calls(peer: Peer, count: int) -> list[Any]:
    results = []
    for index in range(count):
        peer.session.call(ECHO, [index])
        await peer.flush()
        result = await peer.expect(wamp_core.ResultReceived)
        results.append(result.args)
    return results


async def calls_during(port: int, done: trio.Event) -> list[Any]:
    """A caller and an echo callee of their own make CALLS sequential calls."""
    async with good(port) as callee, good(port) as caller:
        await callee.register(ECHO)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(echo_callee, callee, CALLS)
            results = await sequential_calls(caller, CALLS)
        done.set()
        return results


# -- fair reading ----------------------------------------------------------------------


async def test_reading_stays_fair_while_a_client_floods() -> None:
    """PUBLISHes to a topic nobody subscribes to, as fast as the socket takes them:
    nothing queues anywhere, and the router keeps reading the other clients (the
    host's read loop yields after each batch), so their calls finish while the
    flood still goes on."""
    limit = 1_000_000
    async with serving(wamp_core.Router(["realm1"])) as (host, port):
        flooder = await Raw.connect(port)
        await flooder.join()
        conn = connection_of(host, flooder.session_id)

        def publish(request: int) -> bytes:
            return b'[16,%d,{},"%s",[%d]]' % (request, QUIET.encode(), request)

        done = trio.Event()
        written = 0

        async def flood() -> None:
            nonlocal written
            written = await flooder.flood(publish, limit, done)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(flood)
            results = await calls_during(port, done)
        assert results == [[index] for index in range(CALLS)]
        assert written < limit  # the calls did not wait for the flood to end
        assert conn.closed_by_policy is None  # nothing queued for it: no reason to cut it
        assert conn.peak_queued <= 1  # its WELCOME
        assert flooder.session_id in host.router.sessions


# -- PUBLISH flood with fan-out ----------------------------------------------------------


async def test_publish_flood_fan_out_stays_bounded_and_subscribers_keep_receiving() -> None:
    """Each PUBLISH fans out to a subscriber that reads nothing and to one that
    reads: under the ``drop`` policy the silent one's EVENTs are dropped and
    counted, no queue grows past ``queue_size``, the reading subscriber gets
    events throughout and the last one, and calls go on meanwhile."""
    count = 20_000
    async with serving(wamp_core.Router(["realm1"]), slow_consumer="drop") as (host, port):
        stalled = await Raw.connect(port, receive_buffer=4096)
        await stalled.join()
        await stalled.subscribe(TOPIC)
        stalled_conn = connection_of(host, stalled.session_id)
        flooder = await Raw.connect(port)
        await flooder.join()
        flooder_conn = connection_of(host, flooder.session_id)
        body = "x" * 500  # the kernel's buffers fill after a few hundred

        def publish(request: int) -> bytes:
            return b'[16,%d,{},"%s",["%s"]]' % (request, TOPIC.encode(), body.encode())

        async with good(port) as subscriber, good(port) as publisher:
            await subscriber.subscribe(TOPIC)
            subscriber_conn = connection_of(host, subscriber.session.session_id or 0)
            received = 0

            async def read_until_last() -> None:
                nonlocal received
                for _ in range(count + 1):
                    event = await subscriber.expect(wamp_core.EventReceived)
                    received += 1
                    if event.args == ["last"]:
                        return
                raise AssertionError("no last event")

            written = 0

            async def flood() -> None:
                nonlocal written
                written = await flooder.flood(publish, count, trio.Event())

            async with trio.open_nursery() as nursery:
                nursery.start_soon(read_until_last)
                async with trio.open_nursery() as flooding:
                    flooding.start_soon(flood)
                    results = await calls_during(port, trio.Event())
                assert results == [[index] for index in range(CALLS)]
                assert written == count  # a publisher is never cut for its subscribers
                # Once this is acknowledged the router has read the whole flood
                # (nothing else is sent to the flooder) ...
                ack = wamp_core.Publish(flooder.requests(), {"acknowledge": True}, QUIET)
                await flooder.send(ack)
                assert isinstance(await flooder.receive(), wamp_core.Published)
                # ... and once every task waits, the subscriber has read all it was
                # sent: its queue is empty, the last event finds room.
                await trio.testing.wait_all_tasks_blocked()
                publisher.session.publish(TOPIC, ["last"], acknowledge=True)
                await publisher.flush()
                await publisher.expect(wamp_core.PublishSucceeded)
        assert received > 1
        assert stalled_conn.dropped > 0  # the silent subscriber lost EVENTs ...
        assert stalled_conn.closed_by_policy is None  # ... and stays connected
        assert stalled_conn in host.connections
        for conn in (stalled_conn, subscriber_conn, flooder_conn):
            assert conn.peak_queued <= QUEUE
        assert host.dropped >= stalled_conn.dropped
        assert host.slow_disconnects == 0


@pytest.mark.parametrize(
    ("policy", "reason"),
    [
        ("drop", f"outbound queue full ({QUEUE} messages) and none of them is an EVENT that"
                 " could be dropped"),
        ("disconnect", f"outbound queue full ({QUEUE} messages)"),
    ],
)  # fmt: skip
async def test_acknowledged_publish_flood_cuts_the_flooder(policy: str, reason: str) -> None:
    """PUBLISHes with ``acknowledge``, their PUBLISHED never read: the flooder's
    own queue fills with messages that cannot be dropped, and the policy closes
    its connection; calls go on meanwhile."""
    limit = 200_000
    async with serving(wamp_core.Router(["realm1"]), slow_consumer=policy) as (host, port):
        flooder = await Raw.connect(port, receive_buffer=4096)
        await flooder.join()
        conn = connection_of(host, flooder.session_id)

        def publish(request: int) -> bytes:
            return b'[16,%d,{"acknowledge":true},"%s"]' % (request, QUIET.encode())

        done = trio.Event()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(flooder.flood, publish, limit, trio.Event())
            results = await calls_during(port, done)
            await closed(flooder, conn)
        assert results == [[index] for index in range(CALLS)]
        assert conn.closed_by_policy == reason
        assert host.slow_disconnects == 1
        assert conn.peak_queued <= QUEUE
        assert flooder.session_id not in host.router.sessions


# -- CALL flood to a callee that never answers --------------------------------------------

HAS_CALL_LIMIT = "max_pending_calls" in inspect.signature(wamp_core.Router).parameters


async def test_call_flood_on_a_silent_callee_is_bounded_by_max_pending_calls() -> None:
    """CALLs to a procedure whose callee reads its INVOCATIONs and never answers:
    past ``Router(max_pending_calls=N)`` each CALL gets ERROR
    ``wamp.error.not_authorized`` at once, so the router holds at most N calls
    of the flooder; those ERRORs, never read, then fill its queue and the policy
    cuts it, which ends its pending calls. Calls of others go on meanwhile."""
    assert HAS_CALL_LIMIT, "wamp_core.Router has no max_pending_calls"
    limit = QUEUE // 2  # below queue_size: see the next test for why
    router = wamp_core.Router(["realm1"], max_pending_calls=limit)
    flood = 200_000
    async with serving(router, slow_consumer="drop") as (host, port):
        async with good(port) as callee:
            await callee.register(SLOW)
            invoked = 0

            async def swallow() -> None:  # reads every INVOCATION, answers none
                nonlocal invoked
                for _ in range(2 * flood):
                    event = await callee.next_event()
                    if isinstance(event, wamp_core.InvocationReceived):
                        invoked += 1
                    else:  # the flooder's calls end when it is cut
                        assert isinstance(event, wamp_core.InterruptReceived), event

            flooder = await Raw.connect(port, receive_buffer=4096)
            await flooder.join()
            conn = connection_of(host, flooder.session_id)
            session = conn.session

            def call(request: int) -> bytes:
                return b'[48,%d,{},"%s",[%d]]' % (request, SLOW.encode(), request)

            async with trio.open_nursery() as nursery:
                nursery.start_soon(swallow)
                nursery.start_soon(flooder.flood, call, flood, trio.Event())
                results = await calls_during(port, trio.Event())
                await closed(flooder, conn)
                nursery.cancel_scope.cancel()
        assert results == [[index] for index in range(CALLS)]
        assert invoked <= limit  # the callee never saw more than the limit
        assert conn.closed_by_policy is not None  # the refusals it never read cut it
        assert host.slow_disconnects == 1
        assert not session.calls  # the router forgot them with the session
        assert flooder.session_id not in host.router.sessions


@pytest.mark.parametrize("policy", ["drop", "disconnect"])
async def test_a_burst_of_calls_does_not_cut_a_callee_that_reads(policy: str) -> None:
    """More CALLs than ``queue_size`` arriving in one read, so fed in one batch:
    the callee reads everything it is sent, so its full queue is written out to
    its socket at once, and it is not closed as a slow consumer (else any
    caller could cut any callee, and every call pending on it, with one write)."""
    burst = 2 * QUEUE
    async with serving(wamp_core.Router(["realm1"]), slow_consumer=policy) as (host, port):
        async with good(port) as callee:
            await callee.register(SLOW)
            callee_conn = connection_of(host, callee.session.session_id or 0)
            caller = await Raw.connect(port)
            await caller.join()
            frames = b"".join(
                Raw.encode(b'[48,%d,{},"%s",[]]' % (caller.requests(), SLOW.encode()))
                for _ in range(burst)
            )
            await caller.stream.send_all(frames)  # one write: one batch for the router
            invoked = 0
            with contextlib.suppress(TransportClosed):
                for _ in range(burst):
                    await callee.expect(wamp_core.InvocationReceived)
                    invoked += 1
        assert callee_conn.closed_by_policy is None
        assert invoked == burst


async def test_a_burst_of_events_does_not_cut_a_subscriber_that_reads() -> None:
    """The same with PUBLISHes under the ``disconnect`` policy: a subscriber that
    reads everything is not closed as a slow consumer when one read of a
    publisher brings more than ``queue_size`` PUBLISHes."""
    burst = 2 * QUEUE
    async with serving(wamp_core.Router(["realm1"]), slow_consumer="disconnect") as (host, port):
        async with good(port) as subscriber:
            await subscriber.subscribe(TOPIC)
            conn = connection_of(host, subscriber.session.session_id or 0)
            publisher = await Raw.connect(port)
            await publisher.join()
            frames = b"".join(
                Raw.encode(b'[16,%d,{},"%s",[]]' % (publisher.requests(), TOPIC.encode()))
                for _ in range(burst)
            )
            await publisher.stream.send_all(frames)
            received = 0
            with contextlib.suppress(TransportClosed):
                for _ in range(burst):
                    await subscriber.expect(wamp_core.EventReceived)
                    received += 1
        assert conn.closed_by_policy is None
        assert received == burst


@pytest.mark.parametrize("policy", ["drop", "disconnect"])
async def test_a_call_flood_is_throttled_by_a_callee_that_reads(policy: str) -> None:
    """CALLs as fast as the socket takes them, for a callee that reads every
    INVOCATION (and answers none) through a small receive buffer: once its
    socket is full, its queue goes beyond ``queue_size`` and the caller is no
    longer read until it drains. Neither is cut, nothing is lost, and the
    queue stays within four times ``queue_size``."""
    count = 20 * CHUNK  # 5 MB: more than the kernel's buffers take
    body = b"x" * 500
    async with serving(wamp_core.Router(["realm1"]), slow_consumer=policy) as (host, port):
        callee = await Raw.connect(port, receive_buffer=4096)
        await callee.join()
        await callee.send(wamp_core.Register(callee.requests(), {}, SLOW))
        assert isinstance(await callee.receive(), wamp_core.Registered)
        callee_conn = connection_of(host, callee.session_id)
        flooder = await Raw.connect(port)
        await flooder.join()
        flooder_conn = connection_of(host, flooder.session_id)

        def call(request: int) -> bytes:
            return b'[48,%d,{},"%s",[%d,"%s"]]' % (request, SLOW.encode(), request, body)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(flooder.flood, call, count, trio.Event())
            for index in range(count):
                invocation = await callee.receive()
                assert isinstance(invocation, wamp_core.Invocation), invocation
                assert invocation.args is not None
                assert invocation.args[0] == index + 1  # the flooder's request IDs
        assert callee_conn.closed_by_policy is None
        assert flooder_conn.closed_by_policy is None
        assert QUEUE < callee_conn.peak_queued <= 4 * QUEUE  # the flooder was held back
        assert (host.slow_disconnects, host.dropped) == (0, 0)


async def test_ping_flood_is_throttled_by_the_router_reading_no_more() -> None:
    """RawSocket PINGs whose PONGs are never read: once its socket is full the
    router stops reading the flooder (no PONG piles up in memory), and the
    flooder's writes block; everyone else goes on."""
    limit = 1_000_000
    async with serving(wamp_core.Router(["realm1"])) as (host, port):
        flooder = await Raw.connect(port, receive_buffer=4096)
        await flooder.join()
        conn = connection_of(host, flooder.session_id)
        ping = Raw.encode(b"p" * 100, frame_type=1)
        written = 0

        async def flood() -> None:
            nonlocal written
            written = await flooder.flood(lambda _: ping, limit, trio.Event(), framed=True)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(flood)
            results = await calls_during(port, trio.Event())
            # Every task now waits: the flooder's on a socket the router no longer
            # reads (with the router reading on, it would write until the limit).
            await trio.testing.wait_all_tasks_blocked()
            nursery.cancel_scope.cancel()
        assert results == [[index] for index in range(CALLS)]
        assert written < limit
        assert conn in host.connections  # throttled, not cut
        assert flooder.session_id in host.router.sessions


# -- garbage ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("garbage", "aborted"),
    [
        (Raw.encode(b"\xff\xfe not json"), True),  # a message that does not decode
        (Raw.encode(b'[1, "realm1", {}]'), True),  # HELLO again: a protocol violation
        (Raw.encode(b"[70, 1, {}]"), True),  # YIELD for an INVOCATION never sent
        (bytes([3, 0, 0, 4]) + b"oops", False),  # a reserved frame type: no WAMP at all
        (bytes([0, 0xFF, 0xFF, 0xFF]), False),  # longer than the router's announced maximum
    ],
    ids=["undecodable", "hello-again", "yield", "frame-type", "too-long"],
)
async def test_garbage_flood_ends_only_the_flooder(garbage: bytes, aborted: bool) -> None:
    """A flood of bad frames: the first ends the flooder's session and its
    connection; the rest go nowhere, and calls of others go on."""
    limit = 20_000
    async with serving(wamp_core.Router(["realm1"])) as (host, port):
        flooder = await Raw.connect(port)
        await flooder.join()
        conn = connection_of(host, flooder.session_id)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(flooder.flood, lambda _: garbage, limit, trio.Event(), True)
            results = await calls_during(port, trio.Event())
            said = await closed(flooder, conn)
        assert results == [[index] for index in range(CALLS)]
        assert flooder.session_id not in host.router.sessions
        # What the router said before closing: ABORT, or nothing (a RawSocket error).
        if aborted:
            assert len(said) == 1, said
            assert isinstance(said[0], wamp_core.Abort), said
            assert said[0].reason == ErrorURI.PROTOCOL_VIOLATION
        else:
            assert said == []
