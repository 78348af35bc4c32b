"""RouterHost over in-memory transports, with wamp_core.ClientSession driven by hand."""

from __future__ import annotations

import contextlib
import functools
import logging
import math
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest
import trio
import trio.testing

import wamp_core
from wamp_core import CloseReason, ErrorURI, MessageType, SessionState
from wamp_trio._config import TcpListener
from wamp_trio._host import Endpoint, HostedConnection, RouterHost, _endpoints
from wamp_trio._transport import MessageTransport, TransportClosed, memory_transport_pair

TOPIC = "com.example.topic"
PROCEDURE = "com.example.add"


class Peer:
    """A client: a ClientSession on one end of a memory transport pair."""

    def __init__(self, transport: MessageTransport, server_side: MessageTransport) -> None:
        self.transport = transport
        self.server_side = server_side
        self.session = wamp_core.ClientSession(transport.serializer)
        self.backlog: list[wamp_core.SessionEvent] = []
        self.transport_messages = 0

    async def flush(self) -> None:
        for data in self.session.data_to_send():
            await self.transport.send(data)

    async def next_event(self) -> wamp_core.SessionEvent:
        while not self.backlog:
            data = await self.transport.receive()
            self.transport_messages += 1
            self.backlog.extend(self.session.receive_data(data))
            await self.flush()  # e.g. the echo of the router's GOODBYE
        return self.backlog.pop(0)

    async def expect(self, kind: type[Any]) -> Any:
        event = await self.next_event()
        assert isinstance(event, kind), event
        return event

    async def join(self, realm: str = "realm1") -> wamp_core.SessionJoined:
        self.session.join(realm)
        await self.flush()
        joined: wamp_core.SessionJoined = await self.expect(wamp_core.SessionJoined)
        return joined

    async def subscribe(self, topic: str = TOPIC) -> int:
        self.session.subscribe(topic)
        await self.flush()
        subscribed = await self.expect(wamp_core.SubscribeSucceeded)
        return int(subscribed.subscription_id)

    async def register(self, procedure: str = PROCEDURE) -> int:
        self.session.register(procedure)
        await self.flush()
        registered = await self.expect(wamp_core.RegisterSucceeded)
        return int(registered.registration_id)

    async def closed(self) -> None:
        """Read until the transport ends; the router must send nothing more."""
        try:
            event = await self.next_event()
        except TransportClosed:
            return
        raise AssertionError(f"unexpected {event}")


Connect = Callable[..., Awaitable[Peer]]


@contextlib.asynccontextmanager
async def hosting(
    router: wamp_core.Router | None = None, **options: Any
) -> AsyncIterator[tuple[RouterHost, Connect, trio.Nursery]]:
    host = RouterHost(router or wamp_core.Router(["realm1"]), **options)
    async with trio.open_nursery() as nursery:

        async def connect(
            serializer: str = "json", *, buffer: float = math.inf, join: bool = True
        ) -> Peer:
            client, server = memory_transport_pair(wamp_core.get_serializer(serializer), buffer)
            nursery.start_soon(host.handle, server)
            peer = Peer(client, server)
            if join:
                await peer.join()
            return peer

        with trio.fail_after(30):
            yield host, connect, nursery
        nursery.cancel_scope.cancel()


T = TypeVar("T", bound=MessageTransport)


async def wrapped_peer(
    host: RouterHost,
    nursery: trio.Nursery,
    wrap: Callable[[MessageTransport], T],
    serializer: str = "json",
    *,
    buffer: float = math.inf,
) -> tuple[Peer, T]:
    """A joined peer whose router side is ``wrap(memory transport)``, and that side."""
    client_t, server_t = memory_transport_pair(wamp_core.get_serializer(serializer), buffer)
    server_side = wrap(server_t)
    nursery.start_soon(host.handle, server_side)
    peer = Peer(client_t, server_side)
    await peer.join()
    return peer, server_side


def connection(host: RouterHost, peer: Peer) -> HostedConnection:
    conn = host.connection_for(peer.server_side)
    assert conn is not None
    return conn


# -- routing --------------------------------------------------------------------------


@pytest.mark.parametrize("serializer", ["json", "msgpack", "cbor", "wamp.2.json.batched"])
async def test_rpc_and_pubsub_between_clients(serializer: str) -> None:
    async with hosting() as (host, connect, _):
        callee = await connect("cbor.batched")
        caller = await connect(serializer)
        subscriber = await connect("msgpack")
        await callee.register()
        await subscriber.subscribe()
        assert len(host.connections) == 3

        request = caller.session.call(PROCEDURE, [2, 3])
        await caller.flush()
        invocation = await callee.expect(wamp_core.InvocationReceived)
        callee.session.yield_result(invocation.request_id, [sum(invocation.args)])
        await callee.flush()
        result = await caller.expect(wamp_core.ResultReceived)
        assert (result.request_id, result.args) == (request, [5])

        caller.session.publish(TOPIC, ["hello", b"\x00\x01"], acknowledge=True)
        await caller.flush()
        await caller.expect(wamp_core.PublishSucceeded)
        event = await subscriber.expect(wamp_core.EventReceived)
        assert event.args == ["hello", b"\x00\x01"]

        stats = connection(host, subscriber)
        assert stats.sent == 3  # WELCOME, SUBSCRIBED, EVENT
        assert (stats.dropped, stats.queued, stats.closed_by_policy) == (0, 0, None)
        assert "memory" in repr(stats)


async def test_hello_carries_transport_info() -> None:
    seen: list[dict[str, Any]] = []

    class Recorder(wamp_core.AnonymousAuthenticator):
        def hello(self, info: wamp_core.HelloInfo) -> wamp_core.AuthOutcome:
            seen.append(info.transport)
            return super().hello(info)

    router = wamp_core.Router(["realm1"], authenticator=Recorder())
    async with hosting(router) as (_, connect, _):
        await connect()
    assert seen == [{"type": "memory"}]


async def test_client_leaves_and_rejoins_on_the_same_transport() -> None:
    async with hosting() as (host, connect, _):
        peer = await connect()
        peer.session.leave()
        await peer.flush()
        closed = await peer.expect(wamp_core.SessionClosed)
        assert closed.reason == CloseReason.GOODBYE_AND_OUT
        await peer.join()
        assert connection(host, peer).session.state is SessionState.ESTABLISHED


async def test_batched_serializer_joins_queued_deliveries() -> None:
    async with hosting() as (host, connect, _):
        subscriber = await connect("wamp.2.msgpack.batched", buffer=0)
        await subscriber.subscribe()
        publisher = await connect()
        before = subscriber.transport_messages
        for n in range(5):
            publisher.session.publish(TOPIC, [n], acknowledge=True)
        await publisher.flush()
        for _ in range(5):
            await publisher.expect(wamp_core.PublishSucceeded)
        # All five EVENTs are queued now; the writer is stuck sending the first
        # (an unbuffered transport nobody reads), so the rest go as one batch.
        received = [(await subscriber.expect(wamp_core.EventReceived)).args[0] for _ in range(5)]
        assert received == [0, 1, 2, 3, 4]
        assert subscriber.transport_messages - before <= 2
        await trio.testing.wait_all_tasks_blocked()
        assert connection(host, subscriber).sent == 7


async def test_batches_are_capped_by_batch_bytes() -> None:
    async with hosting(batch_bytes=1) as (_, connect, _):
        subscriber = await connect("wamp.2.json.batched", buffer=0)
        await subscriber.subscribe()
        publisher = await connect()
        before = subscriber.transport_messages
        for n in range(3):
            publisher.session.publish(TOPIC, [n], acknowledge=True)
        await publisher.flush()
        for _ in range(3):
            await publisher.expect(wamp_core.PublishSucceeded)
        for _ in range(3):
            await subscriber.expect(wamp_core.EventReceived)
        assert subscriber.transport_messages - before == 3


# -- backpressure ---------------------------------------------------------------------

PUBLICATIONS = 5000


async def publish_many(publisher: Peer, count: int) -> None:
    """Publish ``count`` acknowledged events, pipelined, and wait for every ack."""
    for n in range(count):
        publisher.session.publish(TOPIC, [n], acknowledge=True)
        await publisher.flush()
    for _ in range(count):
        await publisher.expect(wamp_core.PublishSucceeded)


async def read_events(peer: Peer, count: int, into: list[int]) -> None:
    for _ in range(count):
        into.append((await peer.expect(wamp_core.EventReceived)).args[0])


async def test_slow_subscriber_drops_events_without_slowing_anyone(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, "wamp_trio.router")
    async with hosting(queue_size=16) as (host, connect, nursery):
        slow = await connect(buffer=0)  # its writer blocks: nobody reads
        await slow.subscribe()
        fast = await connect()
        await fast.subscribe()
        publisher = await connect()
        fast_seen: list[int] = []
        async with trio.open_nursery() as inner:
            inner.start_soon(read_events, fast, PUBLICATIONS, fast_seen)
            await publish_many(publisher, PUBLICATIONS)

        assert fast_seen == list(range(PUBLICATIONS))
        slow_conn = connection(host, slow)
        assert slow_conn.dropped > 0
        assert host.dropped == slow_conn.dropped
        for conn in host.connections:
            assert conn.peak_queued <= host.queue_size
        assert slow_conn.peak_queued == host.queue_size
        assert connection(host, fast).dropped == 0
        assert slow_conn.closed_by_policy is None

        # Once it reads again it gets what was kept, in order, then new events.
        kept = PUBLICATIONS - slow_conn.dropped
        slow_seen: list[int] = []
        await read_events(slow, kept, slow_seen)
        assert slow_seen == sorted(slow_seen)
        assert slow_conn.queued == 0
        publisher.session.publish(TOPIC, ["after"], acknowledge=True)
        await publisher.flush()
        assert (await slow.expect(wamp_core.EventReceived)).args == ["after"]
        assert nursery is not None

    warnings = [r for r in caplog.records if "slow consumer" in r.getMessage()]
    assert len(warnings) == 1  # logged once per connection, not once per drop
    assert warnings[0].levelno == logging.WARNING
    assert any("EVENTs were dropped" in r.getMessage() for r in caplog.records)


async def test_slow_subscriber_is_disconnected_under_disconnect_policy(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with hosting(queue_size=16, slow_consumer="disconnect") as (host, connect, _):
        slow = await connect(buffer=0)
        await slow.subscribe()
        fast = await connect()
        await fast.subscribe()
        publisher = await connect()
        slow_conn = connection(host, slow)
        fast_seen: list[int] = []
        async with trio.open_nursery() as inner:
            inner.start_soon(read_events, fast, PUBLICATIONS, fast_seen)
            await publish_many(publisher, PUBLICATIONS)
        assert fast_seen == list(range(PUBLICATIONS))
        await slow.closed()
        await trio.testing.wait_all_tasks_blocked()
        assert slow_conn.finished
        assert slow_conn.closed_by_policy == "outbound queue full (16 messages)"
        assert slow_conn.peak_queued == 16
        assert (host.slow_disconnects, host.dropped) == (1, 0)
        assert slow_conn not in host.connections
        assert len(host.router.sessions) == 2
    assert "closing the connection: outbound queue full" in caplog.text


async def test_a_result_evicts_a_queued_event_under_drop_policy() -> None:
    async with hosting(queue_size=4) as (host, connect, _):
        callee = await connect()
        await callee.register()
        caller = await connect(buffer=0)
        await caller.subscribe()
        publisher = await connect()
        await publish_many(publisher, 10)  # 1 being written, 4 queued, 5 dropped
        conn = connection(host, caller)
        assert (conn.queued, conn.dropped) == (4, 5)

        request = caller.session.call(PROCEDURE, [1, 2])
        await caller.flush()
        invocation = await callee.expect(wamp_core.InvocationReceived)
        callee.session.yield_result(invocation.request_id, [3])
        await callee.flush()
        await publish_many(publisher, 0)
        seen: list[Any] = []
        while True:
            event = await caller.next_event()
            if isinstance(event, wamp_core.ResultReceived):
                break
            seen.append(event.args[0])  # type: ignore[attr-defined]
        assert event.request_id == request
        assert event.args == [3]
        assert seen == [0, 1, 2, 3]  # the newest queued EVENT (4) made room
        assert conn.dropped == 6
        assert conn.peak_queued == 4


async def test_full_queue_without_events_disconnects_under_drop_policy() -> None:
    async with hosting(queue_size=4) as (host, connect, _):
        callee = await connect()
        await callee.register()
        caller = await connect(buffer=0)
        conn = connection(host, caller)
        for n in range(10):  # RESULTs pile up: the caller never reads them
            caller.session.call(PROCEDURE, [n])
        await caller.flush()
        for _ in range(10):
            invocation = await callee.expect(wamp_core.InvocationReceived)
            callee.session.yield_result(invocation.request_id, invocation.args)
            await callee.flush()
            if conn.finished:
                break
        await caller.closed()
        assert conn.closed_by_policy is not None
        assert "none of them is an EVENT" in conn.closed_by_policy
        assert host.slow_disconnects == 1
        # The callee is fine.
        assert connection(host, callee).session.state is SessionState.ESTABLISHED


async def call_many(caller: Peer, count: int) -> None:
    """``caller`` sends ``count`` calls, each in a write of its own."""
    for n in range(count):
        caller.session.call(PROCEDURE, [n])
        await caller.flush()


@pytest.mark.parametrize("policy", ["drop", "disconnect"])
async def test_a_producer_is_held_back_while_a_queue_it_filled_is_over_full(policy: str) -> None:
    """CALLs for a callee that does not read for a while: once its queue is full,
    the caller is no longer read (the callee's queue goes one message beyond
    ``queue_size``, no further), and nobody is cut. Once the callee reads, the
    caller is read again."""
    async with hosting(queue_size=4, slow_consumer=policy) as (host, connect, nursery):
        callee = await connect(buffer=0)  # its writer waits until it reads
        await callee.register()
        caller = await connect()
        nursery.start_soon(call_many, caller, 10)
        await trio.testing.wait_all_tasks_blocked()
        conn = connection(host, callee)
        # One INVOCATION in the writer's hands, five queued: the caller's reader
        # stopped there; its other CALLs wait in its transport.
        assert (conn.queued, conn.peak_queued) == (5, 5)
        caller_conn = connection(host, caller)
        assert len(caller_conn.session.calls) == 6
        assert host._holders == [caller_conn]
        for n in range(10):  # the callee reads: every CALL comes, in order
            invocation = await callee.expect(wamp_core.InvocationReceived)
            assert invocation.args == [n]
            callee.session.yield_result(invocation.request_id, invocation.args)
            await callee.flush()
        for n in range(10):
            assert (await caller.expect(wamp_core.ResultReceived)).args == [n]
        assert conn.closed_by_policy is None
        assert (host.slow_disconnects, host.dropped) == (0, 0)
        assert conn.peak_queued == 5


async def test_a_consumer_that_reads_nothing_is_closed_and_its_producer_goes_on(
    mock_clock: trio.testing.MockClock,
) -> None:
    """The callee never reads: the caller stays held back until the
    stalled-writer check closes the callee; then it is read again."""
    async with hosting(queue_size=4, keepalive_interval=None, keepalive_timeout=10) as (
        host,
        connect,
        nursery,
    ):
        await nursery.start(host.run)
        callee = await connect(buffer=0)
        await callee.register()
        conn = connection(host, callee)
        caller = await connect()
        nursery.start_soon(call_many, caller, 6)  # the sixth goes beyond queue_size
        await trio.testing.wait_all_tasks_blocked()
        assert conn.queued == 5
        caller_conn = connection(host, caller)
        assert host._holders == [caller_conn]  # its reader waits
        mock_clock.autojump_threshold = 0  # time runs: the sweeps come
        for _ in range(6):  # the callee's end cancels its calls
            error = await caller.expect(wamp_core.ErrorReceived)
            assert error.error == ErrorURI.CANCELED
        assert conn.finished
        assert host._holders == []
        why = "its output has not moved for 10 s (the peer reads nothing)"
        assert conn.closed_by_policy == why
        assert (host.timeout_disconnects, host.slow_disconnects) == (1, 0)
        other = await connect()  # the caller goes on at full speed
        await other.register()
        caller.session.call(PROCEDURE, [1])
        await caller.flush()
        invocation = await other.expect(wamp_core.InvocationReceived)
        other.session.yield_result(invocation.request_id, [2])
        await other.flush()
        assert (await caller.expect(wamp_core.ResultReceived)).args == [2]


@pytest.mark.parametrize(
    ("policy", "reason"),
    [
        ("drop", "outbound queue full (8 messages) and none of them is an EVENT that could"
                 " be dropped"),
        ("disconnect", "outbound queue full (8 messages)"),
    ],
)  # fmt: skip
async def test_a_queue_over_full_from_many_producers_meets_the_policy(
    policy: str, reason: str
) -> None:
    """Each producer is held back after one message beyond ``queue_size``, but
    many of them can fill a queue that is never read up to four times
    ``queue_size``: there the policy closes it, and the producers go on."""
    async with hosting(queue_size=2, slow_consumer=policy) as (host, connect, _):
        callee = await connect(buffer=0)  # reads nothing
        await callee.register()
        conn = connection(host, callee)
        callers = [await connect() for _ in range(10)]
        for caller in callers:
            caller.session.call(PROCEDURE)
            await caller.flush()
            await trio.testing.wait_all_tasks_blocked()
        assert conn.finished
        assert conn.closed_by_policy == reason
        assert conn.peak_queued == 8
        for caller in callers:  # every call ends, those of the held callers too
            error = await caller.expect(wamp_core.ErrorReceived)
            assert error.error == ErrorURI.CANCELED


class LimitedTransport:
    """A transport refusing to send messages longer than ``limit`` (like RawSocket)."""

    def __init__(self, inner: MessageTransport, limit: float = math.inf) -> None:
        self.inner = inner
        self.limit = limit  # set once the session is established
        self.serializer = inner.serializer
        self.info = inner.info

    async def send(self, data: bytes) -> None:
        if len(data) > self.limit:
            raise ValueError(f"message of {len(data)} bytes exceeds {self.limit}")
        await self.inner.send(data)

    async def receive(self) -> bytes:
        return await self.inner.receive()

    async def aclose(self) -> None:
        await self.inner.aclose()


@pytest.mark.parametrize("serializer", ["json", "wamp.2.json.batched"])
async def test_oversized_event_is_dropped_and_oversized_result_disconnects(
    serializer: str,
) -> None:
    async with hosting() as (host, _, nursery):
        callee_t, callee_server = memory_transport_pair(wamp_core.get_serializer("json"))
        nursery.start_soon(host.handle, callee_server)
        callee = Peer(callee_t, callee_server)
        await callee.join()
        await callee.register()

        peer, limited = await wrapped_peer(host, nursery, LimitedTransport, serializer, buffer=0)
        await peer.subscribe()
        limited.limit = 300
        conn = host.connection_for(limited)
        assert conn is not None

        publisher = callee
        publisher.session.publish(TOPIC, ["x" * 1000])
        publisher.session.publish(TOPIC, ["small"])
        await publisher.flush()
        assert (await peer.expect(wamp_core.EventReceived)).args == ["small"]
        assert (conn.dropped, host.dropped) == (1, 1)

        peer.session.call(PROCEDURE)
        await peer.flush()
        invocation = await callee.expect(wamp_core.InvocationReceived)
        callee.session.yield_result(invocation.request_id, ["y" * 1000])
        await callee.flush()
        await peer.closed()
        assert conn.closed_by_policy is not None
        assert "could not be sent: message of" in conn.closed_by_policy


async def test_a_batch_too_large_for_the_transport_is_split() -> None:
    async with hosting() as (host, connect, nursery):
        subscriber, limited = await wrapped_peer(
            host, nursery, LimitedTransport, "wamp.2.json.batched", buffer=0
        )
        await subscriber.subscribe()
        limited.limit = 100
        publisher = await connect()
        await publish_many(publisher, 6)
        seen: list[int] = []
        await read_events(subscriber, 6, seen)
        assert seen == list(range(6))
        conn = host.connection_for(limited)
        assert conn is not None
        assert conn.dropped == 0


class ManyTransport(LimitedTransport):
    """A LimitedTransport with the optional ``send_many`` (all or nothing, like
    RawSocket's) and ``receive_buffered``; records what each write carried."""

    def __init__(self, inner: MessageTransport, limit: float = math.inf) -> None:
        super().__init__(inner, limit)
        self.writes: list[int] = []  # messages per send / send_many
        self.buffered = 0  # messages handed out by receive_buffered

    async def send(self, data: bytes) -> None:
        if len(data) <= self.limit:
            self.writes.append(1)
        await super().send(data)

    async def send_many(self, messages: list[bytes]) -> None:
        if any(len(data) > self.limit for data in messages):
            raise ValueError(f"a message exceeds {self.limit}")
        self.writes.append(len(messages))
        for data in messages:
            await self.inner.send(data)

    def receive_buffered(self) -> bytes | None:
        try:
            data: bytes = self.inner._receive.receive_nowait()  # type: ignore[attr-defined]
        except trio.WouldBlock:
            return None
        self.buffered += 1
        return data


def send_at_once(peer: Peer) -> None:
    """Put all of ``peer``'s output in its transport without a checkpoint: the
    router's reader finds it all there at once."""
    for data in peer.session.data_to_send():
        peer.transport._send.send_nowait(data)  # type: ignore[attr-defined]


async def test_queued_messages_go_out_in_one_send_many() -> None:
    async with hosting() as (host, _, nursery):
        subscriber, many = await wrapped_peer(host, nursery, ManyTransport)
        await subscriber.subscribe()
        publisher, publisher_side = await wrapped_peer(host, nursery, ManyTransport)
        for n in range(6):
            publisher.session.publish(TOPIC, [n])
        send_at_once(publisher)
        seen: list[int] = []
        await read_events(subscriber, 6, seen)
        assert seen == list(range(6))
        assert publisher_side.buffered >= 1
        assert max(many.writes) > 1
        conn = host.connection_for(many)
        assert conn is not None
        await trio.testing.wait_all_tasks_blocked()
        assert conn.sent == sum(many.writes) == 8  # WELCOME, SUBSCRIBED, 6 EVENTs


async def test_a_send_many_too_large_for_the_transport_is_sent_one_by_one() -> None:
    async with hosting() as (host, connect, nursery):
        subscriber, many = await wrapped_peer(host, nursery, ManyTransport)
        await subscriber.subscribe()
        many.limit = 200
        publisher = await connect()
        publisher.session.publish(TOPIC, [0])
        publisher.session.publish(TOPIC, ["x" * 1000])
        publisher.session.publish(TOPIC, [2])
        send_at_once(publisher)
        seen: list[int] = []
        await read_events(subscriber, 2, seen)
        assert seen == [0, 2]
        conn = host.connection_for(many)
        assert conn is not None
        assert conn.dropped == 1


class DirectTransport(ManyTransport):
    """A ManyTransport with the optional ``try_send_many`` and ``flush``.

    ``mode`` decides what ``try_send_many`` does: ``"write"`` takes and delivers
    everything, ``"partial"`` takes everything and keeps it back for ``flush()``,
    ``"refuse"`` takes nothing. Whatever was kept back goes out before anything
    sent later, as in the socket transports.
    """

    def __init__(self, inner: MessageTransport, limit: float = math.inf) -> None:
        super().__init__(inner, limit)
        self.mode = "write"
        self.direct: list[int] = []  # messages per direct write taken
        self.unsent: list[bytes] = []
        self.flushes = 0

    def try_send_many(self, messages: list[bytes]) -> bool | None:
        if self.mode == "refuse" or self.unsent:
            return None
        if any(len(data) > self.limit for data in messages):
            raise ValueError(f"a message exceeds {self.limit}")
        self.direct.append(len(messages))
        if self.mode == "partial":
            self.unsent = list(messages)
            return False
        for data in messages:
            self.inner._send.send_nowait(data)  # type: ignore[attr-defined]
        return True

    async def flush(self) -> None:
        self.flushes += 1
        unsent, self.unsent = self.unsent, []
        for data in unsent:
            await self.inner.send(data)

    async def send(self, data: bytes) -> None:
        await self.flush()
        await super().send(data)

    async def send_many(self, messages: list[bytes]) -> None:
        await self.flush()
        await super().send_many(messages)


async def direct_peer(
    host: RouterHost, nursery: trio.Nursery, serializer: str = "json"
) -> tuple[Peer, DirectTransport]:
    return await wrapped_peer(host, nursery, DirectTransport, serializer)


async def test_output_is_written_by_the_reading_task_without_the_writer() -> None:
    async with hosting() as (host, _, nursery):
        callee, callee_side = await direct_peer(host, nursery)
        await callee.register()
        caller, caller_side = await direct_peer(host, nursery)
        caller.session.call(PROCEDURE, [1, 2])
        await caller.flush()
        invocation = await callee.expect(wamp_core.InvocationReceived)
        callee.session.yield_result(invocation.request_id, [3])
        await callee.flush()
        assert (await caller.expect(wamp_core.ResultReceived)).args == [3]
        # WELCOME, REGISTERED, INVOCATION; WELCOME, RESULT: all direct, one each.
        assert (callee_side.direct, caller_side.direct) == ([1, 1, 1], [1, 1])
        assert callee_side.writes == caller_side.writes == []
        assert connection(host, callee).sent == 3
        assert connection(host, caller).sent == 2


@pytest.mark.parametrize(("serializer", "writes"), [("json", [6]), ("wamp.2.json.batched", [1])])
async def test_a_batch_fed_at_once_goes_out_in_one_direct_write(
    serializer: str, writes: list[int]
) -> None:
    async with hosting() as (host, _, nursery):
        subscriber, side = await direct_peer(host, nursery, serializer)
        await subscriber.subscribe()
        publisher, _ = await direct_peer(host, nursery)  # its messages are read in batches
        side.direct.clear()
        for n in range(6):
            publisher.session.publish(TOPIC, [n])
        send_at_once(publisher)
        seen: list[int] = []
        await read_events(subscriber, 6, seen)
        assert seen == list(range(6))
        assert side.direct == writes
        assert side.writes == []


async def test_the_rest_of_a_direct_write_goes_before_later_output() -> None:
    async with hosting() as (host, _, nursery):
        subscriber, side = await direct_peer(host, nursery)
        await subscriber.subscribe()
        publisher, _ = await direct_peer(host, nursery)  # its messages are read in batches
        side.mode = "partial"
        side.direct.clear()
        await publish_many(publisher, 1)  # taken directly, kept back, flushed by the writer
        side.mode = "write"
        await publish_many(publisher, 5)
        seen: list[int] = []
        await read_events(subscriber, 6, seen)
        assert seen == [0, 0, 1, 2, 3, 4]
        assert side.flushes >= 1
        assert side.direct[0] == 1
        assert connection(host, subscriber).sent == 2 + 6


async def test_output_refused_for_a_direct_write_goes_through_the_writer() -> None:
    async with hosting() as (host, _, nursery):
        subscriber, side = await direct_peer(host, nursery)
        await subscriber.subscribe()
        publisher, _ = await direct_peer(host, nursery)  # its messages are read in batches
        side.mode = "refuse"
        for n in range(4):
            publisher.session.publish(TOPIC, [n])
        send_at_once(publisher)
        seen: list[int] = []
        await read_events(subscriber, 4, seen)
        assert seen == list(range(4))
        assert side.direct == [1, 1]  # WELCOME and SUBSCRIBED only
        assert side.writes == [4]
        await trio.testing.wait_all_tasks_blocked()
        assert connection(host, subscriber).sent == 6


async def test_a_direct_write_too_large_for_the_peer_is_sent_one_by_one() -> None:
    async with hosting() as (host, _, nursery):
        subscriber, side = await direct_peer(host, nursery)
        await subscriber.subscribe()
        side.limit = 200
        publisher, _ = await direct_peer(host, nursery)  # its messages are read in batches
        publisher.session.publish(TOPIC, [0])
        publisher.session.publish(TOPIC, ["x" * 1000])
        publisher.session.publish(TOPIC, [2])
        send_at_once(publisher)
        seen: list[int] = []
        await read_events(subscriber, 2, seen)
        assert seen == [0, 2]
        assert connection(host, subscriber).dropped == 1
        assert side.direct == [1, 1]  # the three EVENTs went back to the writer


async def test_shutdown_goodbye_is_written_directly_then_the_connection_closes() -> None:
    async with hosting() as (host, _, nursery):
        peer, side = await direct_peer(host, nursery)
        conn = connection(host, peer)
        async with trio.open_nursery() as clients:
            clients.start_soon(host.shutdown)
            closed = await peer.expect(wamp_core.SessionClosed)
            assert closed.reason == CloseReason.SYSTEM_SHUTDOWN
            await peer.closed()
        assert side.direct == [1, 1]  # WELCOME, GOODBYE
        assert conn.finished


async def test_writers_run_under_run_and_end_with_it() -> None:
    host = RouterHost(wamp_core.Router(["realm1"]))
    async with trio.open_nursery() as nursery:
        run_scope = trio.CancelScope()

        async def run() -> None:
            with run_scope:
                await host.run()

        nursery.start_soon(run)
        await trio.testing.wait_all_tasks_blocked()
        assert host._writers is not None
        peers = []
        for _ in range(2):
            client_t, server_t = memory_transport_pair(wamp_core.get_serializer("json"))
            nursery.start_soon(host.handle, server_t)
            peer = Peer(client_t, server_t)
            await peer.join()  # memory transports have no direct write: a writer runs
            peers.append(peer)
        first, second = (connection(host, peer) for peer in peers)
        assert first._nursery is host._writers
        assert first._writing
        await peers[0].transport.aclose()  # the connection ends, and its writer with it
        await trio.testing.wait_all_tasks_blocked()
        assert first.finished
        assert not first._writing
        run_scope.cancel()  # the writers go, and each connection with its writer
        await peers[1].closed()
        await trio.testing.wait_all_tasks_blocked()
        assert second.finished
        assert host._writers is None
        assert host.connections == ()


# -- connections ending -------------------------------------------------------------------


async def test_callee_transport_cut_mid_call_cancels_the_call() -> None:
    async with hosting() as (host, connect, _):
        callee = await connect()
        await callee.register()
        caller = await connect("cbor")
        request = caller.session.call(PROCEDURE, [1])
        await caller.flush()
        await callee.expect(wamp_core.InvocationReceived)
        await callee.transport.aclose()
        error = await caller.expect(wamp_core.ErrorReceived)
        assert (error.request_id, error.error) == (request, ErrorURI.CANCELED)
        await trio.testing.wait_all_tasks_blocked()
        assert len(host.connections) == 1
        assert len(host.router.attached) == 1


async def test_protocol_violation_aborts_only_that_client(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, "wamp_trio.router")
    async with hosting() as (host, connect, _):
        good = await connect()
        await good.subscribe()
        bad = await connect("msgpack")
        await bad.transport.send(b"\xc1 not msgpack")
        aborted = await bad.expect(wamp_core.SessionAborted)
        assert aborted.reason == ErrorURI.PROTOCOL_VIOLATION
        await bad.closed()

        publisher = await connect()
        publisher.session.publish(TOPIC, ["still here"], acknowledge=True)
        await publisher.flush()
        await publisher.expect(wamp_core.PublishSucceeded)
        assert (await good.expect(wamp_core.EventReceived)).args == ["still here"]
        await trio.testing.wait_all_tasks_blocked()
        assert len(host.connections) == 2
    assert "protocol violation" in caplog.text


async def test_violation_keeps_reading_until_the_abort_is_written() -> None:
    async with hosting() as (host, connect, _):
        bad = await connect(buffer=0)
        conn = connection(host, bad)
        await bad.transport.send(b'[1, "realm1", {}]')  # a second HELLO: violation
        await bad.transport.send(b"more input, ignored")
        assert conn.session.state is SessionState.FAILED
        aborted = await bad.expect(wamp_core.SessionAborted)
        assert aborted.reason == ErrorURI.PROTOCOL_VIOLATION
        await bad.closed()


async def test_peer_closing_before_hello() -> None:
    async with hosting() as (host, connect, _):
        peer = await connect(join=False)
        await trio.testing.wait_all_tasks_blocked()
        assert len(host.connections) == 1
        await peer.transport.aclose()
        await trio.testing.wait_all_tasks_blocked()
        assert host.connections == ()
        assert len(host.router.attached) == 0


async def test_an_internal_error_ends_only_that_connection(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with hosting() as (host, connect, _):
        good = await connect()
        victim = await connect()
        real = host.router.receive_data

        def broken(session: wamp_core.RouterSession, data: bytes) -> None:
            if data == b"boom":
                raise RuntimeError("a bug")
            real(session, data)

        monkeypatch.setattr(host.router, "receive_data", broken)
        await victim.transport.send(b"boom")
        await victim.closed()
        good.session.publish(TOPIC, [], acknowledge=True)
        await good.flush()
        await good.expect(wamp_core.PublishSucceeded)
    assert "internal error" in caplog.text


# -- shutdown -------------------------------------------------------------------------------


async def test_shutdown_says_goodbye_to_everyone() -> None:
    async with hosting() as (host, connect, nursery):
        peers = [await connect(s) for s in ("json", "msgpack", "cbor", "wamp.2.cbor.batched")]
        await peers[0].subscribe()
        await peers[1].register()
        idle = await connect(join=False)

        async def client(peer: Peer) -> None:
            closed = await peer.expect(wamp_core.SessionClosed)
            assert closed.reason == CloseReason.SYSTEM_SHUTDOWN
            assert closed.initiated_by_router
            await peer.closed()

        async with trio.open_nursery() as clients:
            for peer in peers:
                clients.start_soon(client, peer)
            await host.shutdown()
        await idle.closed()
        assert host.connections == ()
        assert host.router.attached == set() or len(host.router.attached) == 0

        # Late arrivals are closed at once.
        late = await connect(join=False)
        await late.closed()
        assert nursery is not None


async def test_shutdown_gives_up_on_clients_that_do_not_answer(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with hosting(shutdown_timeout=5.0) as (host, connect, _):
        answering = await connect()
        mute = await connect(buffer=0)  # never reads its GOODBYE
        mute_conn = connection(host, mute)
        start = trio.current_time()
        async with trio.open_nursery() as clients:
            clients.start_soon(answering.expect, wamp_core.SessionClosed)
            await host.shutdown()
        assert trio.current_time() - start >= 5.0
        assert mute_conn.finished
        assert host.connections == ()
        await answering.closed()


async def test_shutdown_with_custom_reason_and_timeout() -> None:
    async with hosting() as (host, connect, _):
        peer = await connect()
        async with trio.open_nursery() as clients:
            clients.start_soon(
                functools.partial(host.shutdown, CloseReason.CLOSE_REALM, "bye", timeout=10.0)
            )
            closed = await peer.expect(wamp_core.SessionClosed)
        assert closed.reason == CloseReason.CLOSE_REALM
        assert closed.details == {"message": "bye"}


async def test_handle_cancelled_from_outside_detaches() -> None:
    host = RouterHost(wamp_core.Router(["realm1"]))
    client_t, server_t = memory_transport_pair(wamp_core.get_serializer("json"))
    peer = Peer(client_t, server_t)
    callee_t, callee_server = memory_transport_pair(wamp_core.get_serializer("json"))
    callee = Peer(callee_t, callee_server)
    async with trio.open_nursery() as outer:
        outer.start_soon(host.handle, callee_server)
        await callee.join()
        await callee.register()
        with trio.CancelScope() as scope:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(host.handle, server_t)
                await peer.join()
                peer.session.call(PROCEDURE)
                await peer.flush()
                await callee.expect(wamp_core.InvocationReceived)
                scope.cancel()
        assert len(host.connections) == 1
        # The caller is gone: the callee is told to stop (it supports canceling).
        interrupt = await callee.expect(wamp_core.InterruptReceived)
        assert interrupt.mode == "killnowait"
        outer.cancel_scope.cancel()


# -- construction and endpoints ---------------------------------------------------------------


def test_options_are_checked() -> None:
    router = wamp_core.Router(["realm1"])
    with pytest.raises(ValueError, match="queue_size"):
        RouterHost(router, queue_size=0)
    with pytest.raises(ValueError, match="slow_consumer"):
        RouterHost(router, slow_consumer="block")  # type: ignore[arg-type]
    host = RouterHost(router)
    assert host.connection_for(memory_transport_pair(wamp_core.get_serializer("json"))[0]) is None
    assert (host.connections, host.dropped, host.slow_disconnects) == ((), 0, 0)


def test_endpoint_urls() -> None:
    listener = TcpListener(port=0)
    assert [str(e) for e in _endpoints(listener, ("127.0.0.1", 4242))] == [
        "ws://127.0.0.1:4242/ws",
        "http://127.0.0.1:4242/lp (long-poll)",
        "rs://127.0.0.1:4242 (RawSocket)",
    ]
    from wamp_trio._config import TlsConfig

    secure = TcpListener(websocket="/wamp", longpoll=None, tls=TlsConfig("c.pem", "k.pem"))
    assert _endpoints(secure, ("::1", 443, 0, 0)) == [
        Endpoint("wss://[::1]:443/wamp", "websocket"),
        Endpoint("rss://[::1]:443", "rawsocket"),
    ]
    assert str(Endpoint("unix://./wampcore.sock", "rawsocket")) == (
        "unix://./wampcore.sock (RawSocket)"
    )


def test_event_type_is_known_for_deliveries() -> None:
    # The drop policy relies on the core labelling each delivery with its type.
    router = wamp_core.Router(["realm1"])
    session = router.attach(wamp_core.get_serializer("json"))
    router.receive_data(session, b'[1,"realm1",{"roles":{"subscriber":{}}}]')
    (welcome,) = router.data_to_send()
    assert welcome.type is MessageType.WELCOME


# -- timers ---------------------------------------------------------------------------


async def test_run_fires_router_timers_without_input(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A timer set while handling a message fires from run(), with no further input."""
    router = wamp_core.Router(["realm1"])
    epoch = 1_700_000_000.0

    def clock() -> float:
        return epoch + trio.current_time()

    async with hosting(router, clock=clock) as (host, connect, nursery):
        await nursery.start(host.run)
        peer = await connect()
        assert router.now == clock()  # ticked before the HELLO was handled
        fired: list[float] = []
        start = trio.current_time()
        router.call_at(clock() + 20, lambda: fired.append(router.now))
        # run() is asleep with no deadline; a message makes it recompute.
        peer.session.publish("com.example.nobody")
        await peer.flush()
        first = router.call_at(clock() + 5, router.shutdown)
        peer.session.publish("com.example.nobody")
        await peer.flush()
        closed = await peer.expect(wamp_core.SessionClosed)
        assert closed.reason == CloseReason.SYSTEM_SHUTDOWN
        assert trio.current_time() - start >= 5
        assert not first.cancelled
        assert fired == []
        await trio.sleep(20)
        assert fired == [epoch + start + 20]


async def test_dispatch_delivers_output_of_direct_router_calls() -> None:
    async with hosting() as (host, connect, _nursery):
        peer = await connect()
        (session,) = host.router.sessions.values()
        host.router.close_session(session, CloseReason.CLOSE_REALM, "maintenance")
        host.dispatch()
        closed = await peer.expect(wamp_core.SessionClosed)
        assert closed.reason == CloseReason.CLOSE_REALM
        assert closed.details == {"message": "maintenance"}


# -- plain-socket RawSocket connections: no cancel scope, closed at once --------------


async def _rawsocket_peer(
    host: RouterHost, nursery: trio.Nursery, *, small_buffers: bool = False
) -> Peer:
    from tests.trio.test_fastio import rawsocket_pair

    router_t, client_t = await rawsocket_pair(small_buffers=small_buffers)
    nursery.start_soon(host.handle, router_t)
    peer = Peer(client_t, router_t)
    await peer.join()
    return peer


async def test_a_plain_rawsocket_connection_has_no_cancel_scope() -> None:
    async with hosting() as (host, connect, nursery):
        peer = await _rawsocket_peer(host, nursery)
        conn = connection(host, peer)
        assert conn._scope is None  # ended by closing its socket instead
        assert conn._try_send is not None
        memory_peer = await connect()
        assert connection(host, memory_peer)._scope is not None
        await peer.register()
        memory_peer.session.call(PROCEDURE, [1, 2])
        await memory_peer.flush()
        invocation = await peer.expect(wamp_core.InvocationReceived)
        peer.session.yield_result(invocation.request_id, [3])
        await peer.flush()
        result = await memory_peer.expect(wamp_core.ResultReceived)
        assert result.args == [3]
        await peer.transport.aclose()
        await trio.testing.wait_all_tasks_blocked()
        assert conn.finished


async def test_a_slow_plain_rawsocket_subscriber_is_closed_by_policy() -> None:
    async with hosting(queue_size=16, slow_consumer="disconnect") as (host, connect, nursery):
        slow = await _rawsocket_peer(host, nursery, small_buffers=True)
        await slow.subscribe()
        slow_conn = connection(host, slow)
        publisher = await connect()
        for index in range(PUBLICATIONS):  # the slow one reads nothing meanwhile
            publisher.session.publish(TOPIC, [index, "x" * 1000])
            await publisher.flush()
            if slow_conn.finished:
                break
        await trio.testing.wait_all_tasks_blocked()
        assert slow_conn.finished
        assert slow_conn.closed_by_policy == "outbound queue full (16 messages)"
        received = 0
        for _ in range(PUBLICATIONS):
            try:
                await slow.expect(wamp_core.EventReceived)
            except TransportClosed:
                break
            received += 1
        assert 0 < received < PUBLICATIONS  # what the socket held, then the end
        assert slow_conn not in host.connections
        assert len(host.router.sessions) == 1  # the publisher goes on
        publisher.session.publish(TOPIC, [0], acknowledge=True)
        await publisher.flush()
        await publisher.expect(wamp_core.PublishSucceeded)


async def test_shutdown_closes_a_plain_rawsocket_connection_that_does_not_answer() -> None:
    async with hosting(shutdown_timeout=0.2) as (host, _, nursery):
        mute = await _rawsocket_peer(host, nursery)
        conn = connection(host, mute)
        await host.shutdown()  # the GOODBYE goes out; no answer comes: closed at once
        assert conn.finished
        assert host.connections == ()
        closed = await mute.expect(wamp_core.SessionClosed)  # then the end, no more
        assert closed.reason == CloseReason.SYSTEM_SHUTDOWN
        with pytest.raises(TransportClosed):
            await mute.transport.receive()


async def test_shutdown_ends_a_held_back_plain_rawsocket_connection() -> None:
    """A reader held back (see test_a_producer_is_held_back_...) waits on no socket:
    closing its connection (no cancel scope) must end the wait too."""
    async with hosting(queue_size=4, shutdown_timeout=0.2) as (host, connect, nursery):
        callee = await connect(buffer=0)  # reads nothing
        await callee.register()
        caller = await _rawsocket_peer(host, nursery)
        caller_conn = connection(host, caller)
        assert caller_conn._scope is None
        nursery.start_soon(call_many, caller, 10)
        await trio.testing.wait_all_tasks_blocked()
        assert host._holders == [caller_conn]
        await host.shutdown()
        assert caller_conn.finished
        assert host._holders == []
        assert host.connections == ()
        await caller.transport.aclose()


async def test_a_tls_rawsocket_connection_writes_through_its_writer(tmp_path: Path) -> None:
    from tests.trio.test_fastio import tls_rawsocket_pair

    router_t, client_t = await tls_rawsocket_pair(tmp_path)
    assert not router_t.direct_io
    async with hosting() as (host, _, nursery):
        nursery.start_soon(host.handle, router_t)
        peer = Peer(client_t, router_t)
        await peer.join()
        conn = connection(host, peer)
        assert conn._try_send is None  # no direct write to try (TLS)
        assert conn._scope is not None  # and no close_now: ended by cancelling
        await peer.subscribe()
        assert conn._writing
        await host.shutdown(timeout=0.2)
        assert conn.finished
    await client_t.aclose()


@pytest.mark.parametrize("policy", ["drop", "disconnect"])
async def test_a_burst_of_calls_does_not_cut_a_tls_callee_that_reads(
    tmp_path: Path, policy: str
) -> None:
    """A TLS connection is written by its writer task only, never during a batch:
    a batch of CALLs larger than ``queue_size`` fills its queue, and the
    caller's reader waits for the writer instead of the callee being judged."""
    from tests.trio.test_fastio import tls_rawsocket_pair

    queue_size, burst = 8, 80
    router_t, client_t = await tls_rawsocket_pair(tmp_path)
    async with hosting(queue_size=queue_size, slow_consumer=policy) as (host, _, nursery):
        nursery.start_soon(host.handle, router_t)
        callee = Peer(client_t, router_t)
        await callee.join()
        await callee.register()
        conn = connection(host, callee)
        caller, caller_side = await wrapped_peer(host, nursery, ManyTransport)
        for n in range(burst):
            caller.session.call(PROCEDURE, [n])
        send_at_once(caller)  # one batch, were it fed at once
        for n in range(burst):
            invocation = await callee.expect(wamp_core.InvocationReceived)
            assert invocation.args == [n]
        assert conn.closed_by_policy is None
        assert conn.peak_queued == queue_size + 1  # the caller's reader stopped there
        # ... and took the rest from its transport later, message after message.
        assert caller_side.buffered < burst - 1
        assert (host.slow_disconnects, host.dropped) == (0, 0)
        await host.shutdown(timeout=0.2)
    await client_t.aclose()


# -- refusals by limits are logged ------------------------------------------------------


def limit_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    """The WARNING lines about refusals by limits, in order; forgets them."""
    lines = [
        record.getMessage()
        for record in caplog.records
        if record.levelno == logging.WARNING and "refus" in record.getMessage()
    ]
    caplog.clear()
    return lines


async def refused_peer(host: RouterHost, nursery: trio.Nursery, message: str) -> None:
    """A new peer's HELLO gets ABORT with ``message``."""
    client, server = memory_transport_pair(wamp_core.get_serializer("json"), math.inf)
    nursery.start_soon(host.handle, server)
    peer = Peer(client, server)
    peer.session.join("realm1")
    await peer.flush()
    aborted = await peer.expect(wamp_core.SessionAborted)
    assert aborted.message == message
    await client.aclose()


FULL = "the router is at its limit of 1 session"


async def test_refusals_by_a_limit_are_logged_once_then_counted(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "wamp_trio.router")
    host = RouterHost(wamp_core.Router(["realm1"], max_sessions=1, max_subscriptions=1))
    async with trio.open_nursery() as nursery:
        await nursery.start(host.run)  # its keepalive sweep logs the counts
        client, server = memory_transport_pair(wamp_core.get_serializer("json"), math.inf)
        nursery.start_soon(host.handle, server)
        member = Peer(client, server)
        await member.join()
        for _ in range(5):
            await refused_peer(host, nursery, FULL)
        await member.subscribe("com.a")
        member.session.subscribe("com.b")
        await member.flush()
        await member.expect(wamp_core.ErrorReceived)
        # One line per limit at once; the other refusals are only counted.
        assert limit_warnings(caplog) == [
            f"memory: refused by max_sessions: {FULL}",
            "memory: refused by max_subscriptions: the session is at its limit of 1 subscription",
        ]
        await trio.sleep(59)
        await refused_peer(host, nursery, FULL)
        assert limit_warnings(caplog) == []
        # When the minute is over, the count is logged (within a sweep: 15 s),
        # and the next refusal at once.
        await trio.sleep(16)
        assert limit_warnings(caplog) == ["5 more refusals by max_sessions in the last 60 s"]
        await refused_peer(host, nursery, FULL)
        assert limit_warnings(caplog) == [f"memory: refused by max_sessions: {FULL}"]
        await trio.sleep(61)
        assert limit_warnings(caplog) == []  # nothing was counted
        nursery.cancel_scope.cancel()


async def test_without_run_the_count_goes_with_the_next_refusal(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "wamp_trio.router")
    host = RouterHost(wamp_core.Router(["realm1"], max_sessions=1))
    async with trio.open_nursery() as nursery:
        client, server = memory_transport_pair(wamp_core.get_serializer("json"), math.inf)
        nursery.start_soon(host.handle, server)
        await Peer(client, server).join()
        for count in (1, 2):
            for _ in range(count + 1):
                await refused_peer(host, nursery, FULL)
            await trio.sleep(60)
        await refused_peer(host, nursery, FULL)
        assert limit_warnings(caplog) == [
            f"memory: refused by max_sessions: {FULL}",
            f"memory: refused by max_sessions: {FULL}"
            " (and 1 more refusal by max_sessions in the last 60 s)",
            f"memory: refused by max_sessions: {FULL}"
            " (and 2 more refusals by max_sessions in the last 60 s)",
        ]
        nursery.cancel_scope.cancel()
