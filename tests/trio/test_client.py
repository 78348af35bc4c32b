"""The trio client session (wamp_trio._client) against a wamp_core.Router.

Most tests run over memory transports with a small router loop defined here
(``MiniHost``), so that they exercise the client alone; the main ones run again
with the package's ``RouterHost`` behind the same memory transports, and a few
run over real loopback sockets (WebSocket, RawSocket over TCP and Unix, HTTP
long-poll) with the package's listeners.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, suppress
from typing import Any

import pytest
import trio

import wamp_core
from wamp_core import ErrorURI, Message, MessageType, RouterSession
from wamp_trio._client import (
    RUNTIME_ERROR,
    ApplicationError,
    CallResult,
    Event,
    InvocationDetails,
    JoinError,
    ReconnectPolicy,
    Session,
    SessionEnded,
    TransportFactory,
    TransportLost,
    connect,
    open_session,
)
from wamp_trio._config import TcpListener, UnixListener
from wamp_trio._host import RouterHost, serve_router
from wamp_trio._transport import MessageTransport, TransportClosed, memory_transport_pair

# -- a tiny router host over memory transports ---------------------------------------------


class MiniHost:
    """Runs a wamp_core.Router over memory transports and records what clients send."""

    def __init__(
        self, router: wamp_core.Router, nursery: trio.Nursery, backend: str = "mini"
    ) -> None:
        self.router = router
        self.nursery = nursery
        self.backend = RouterHost(router) if backend == "routerhost" else None
        self.hosted: list[MessageTransport] = []
        self.queues: dict[RouterSession, trio.MemorySendChannel[bytes | None]] = {}
        self.transports: dict[RouterSession, MessageTransport] = {}
        self.received: list[Message] = []
        self.connections = 0
        self.attempts = 0
        self.refuse = False
        self._changed = trio.Event()

    def factory(self, serializer: str = "json") -> TransportFactory:
        @asynccontextmanager
        async def open_memory() -> AsyncIterator[MessageTransport]:
            self.attempts += 1
            self._changed.set()
            self._changed = trio.Event()
            if self.refuse:
                raise ConnectionRefusedError("refused by the test")
            client, server = memory_transport_pair(wamp_core.get_serializer(serializer))
            self.nursery.start_soon(self.handle, server)
            try:
                yield client
            finally:
                await client.aclose()

        return open_memory

    async def handle(self, transport: MessageTransport) -> None:
        self.connections += 1
        if self.backend is not None:
            recording = _Recording(transport, self)
            self.hosted.append(recording)
            try:
                await self.backend.handle(recording)
            finally:
                self.hosted.remove(recording)
            return
        session = self.router.attach(transport.serializer, dict(transport.info))
        send, receive = trio.open_memory_channel[bytes | None](math.inf)
        self.queues[session] = send
        self.transports[session] = transport
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._writer, transport, receive)
                while True:
                    try:
                        data = await transport.receive()
                    except TransportClosed:
                        break
                    self.record(transport.serializer, data)
                    with suppress(wamp_core.RemoteProtocolError):
                        self.router.receive_data(session, data)
                    self.dispatch()
                nursery.cancel_scope.cancel()
        finally:
            del self.queues[session]
            del self.transports[session]
            self.router.detach(session)
            self.dispatch()
            await transport.aclose()

    def record(self, serializer: wamp_core.Serializer, data: bytes) -> None:
        self.received.extend(serializer.decode(data))
        self._changed.set()
        self._changed = trio.Event()

    def dispatch(self) -> None:
        assert self.backend is None, "only the mini host can be driven by hand"
        for delivery in self.router.data_to_send():
            queue = self.queues.get(delivery.session)
            if queue is not None:
                queue.send_nowait(delivery.data)

    @staticmethod
    async def _writer(
        transport: MessageTransport, receive: trio.MemoryReceiveChannel[bytes | None]
    ) -> None:
        async for data in receive:
            if data is None:
                await transport.aclose()
                return
            try:
                await transport.send(data)
            except TransportClosed:
                return

    def router_session(self, session: Session) -> RouterSession:
        assert session.session_id is not None
        return self.router.sessions[session.session_id]

    async def cut(self, session: Session) -> None:
        """Close the router's end of ``session``'s transport (a network failure)."""
        router_session = self.router_session(session)
        if self.backend is None:
            await self.transports[router_session].aclose()
            return
        for transport in self.hosted:
            connection = self.backend.connection_for(transport)
            if connection is not None and connection.session is router_session:
                await transport.aclose()

    async def wait_received(self, predicate: Callable[[Message], bool]) -> Message:
        while True:
            for message in self.received:
                if predicate(message):
                    return message
            await self._changed.wait()

    async def wait_count(self, message_type: MessageType, count: int) -> None:
        while self.sent_types().count(message_type) < count:
            await self._changed.wait()

    async def wait_attempts(self, count: int) -> None:
        while self.attempts < count:
            await self._changed.wait()

    def sent_types(self) -> list[MessageType]:
        return [m.type for m in self.received]


class _Recording:
    """A transport proxy that records what the client sent (for RouterHost)."""

    def __init__(self, inner: MessageTransport, host: MiniHost) -> None:
        self.inner = inner
        self.host = host
        self.serializer = inner.serializer
        self.info = inner.info

    async def send(self, data: bytes) -> None:
        await self.inner.send(data)

    async def receive(self) -> bytes:
        data = await self.inner.receive()
        self.host.record(self.serializer, data)
        return data

    async def aclose(self) -> None:
        await self.inner.aclose()


HOSTS = ["mini", "routerhost"]


@asynccontextmanager
async def mini_host(backend: str = "mini", **router_options: Any) -> AsyncIterator[MiniHost]:
    router_options.setdefault("realms", ["realm1"])
    router = wamp_core.Router(**router_options)
    async with trio.open_nursery() as nursery:
        host = MiniHost(router, nursery, backend)
        yield host
        nursery.cancel_scope.cancel()


@asynccontextmanager
async def two_sessions(
    host: MiniHost, serializer: str = "json"
) -> AsyncIterator[tuple[Session, Session]]:
    async with (
        connect(host.factory(serializer)) as a,
        connect(host.factory(serializer)) as b,
    ):
        yield a, b


# -- calls -----------------------------------------------------------------------------------


@pytest.mark.parametrize("host_kind", HOSTS)
@pytest.mark.parametrize(
    "serializer", ["json", "msgpack", "cbor", "wamp.2.json.batched", "wamp.2.cbor.batched"]
)
async def test_call_result_shapes(serializer: str, host_kind: str) -> None:
    async def echo(*args: Any, **kwargs: Any) -> Any:
        return CallResult(*args, **kwargs)

    def single(value: Any) -> Any:  # sync handlers work too
        return value

    async def nothing() -> None:
        return None

    async with mini_host(host_kind) as host, two_sessions(host, serializer) as (callee, caller):
        assert callee.connected
        assert callee.session_id is not None
        assert callee.serializer is not None
        assert callee.serializer.subprotocol.startswith("wamp.2.")
        await callee.register("com.example.echo", echo)
        await callee.register("com.example.single", single)
        await callee.register("com.example.nothing", nothing)

        assert await caller.call("com.example.single", 42) == 42
        assert await caller.call("com.example.single", [1, 2]) == [1, 2]
        assert await caller.call("com.example.single", {"a": 1}) == {"a": 1}
        assert await caller.call("com.example.nothing") is None
        assert await caller.call("com.example.echo") is None
        assert await caller.call("com.example.echo", 7) == 7
        assert await caller.call("com.example.echo", 1, 2) == CallResult(1, 2)
        result = await caller.call("com.example.echo", 1, x="y")
        assert isinstance(result, CallResult)
        assert result.args == (1,)
        assert result.kwargs == {"x": "y"}
        assert await caller.call("com.example.echo", x=1) == CallResult(x=1)
        assert repr(CallResult(1, a=2)) == "CallResult(1, a=2)"
        assert CallResult(1) != 1


@pytest.mark.parametrize("host_kind", HOSTS)
async def test_application_error_round_trip(host_kind: str) -> None:
    async def fail(*args: Any, **kwargs: Any) -> None:
        raise ApplicationError("com.example.error", 1, a=2)

    async with mini_host(host_kind) as host, two_sessions(host) as (callee, caller):
        await callee.register("com.example.fail", fail)
        with pytest.raises(ApplicationError) as info:
            await caller.call("com.example.fail")
        assert info.value.error == "com.example.error"
        assert info.value.args == (1,)
        assert info.value.kwargs == {"a": 2}
        assert str(info.value) == "com.example.error(1, a=2)"
        assert repr(info.value) == "ApplicationError('com.example.error', 1, a=2)"
        # The router's own errors arrive the same way.
        with pytest.raises(ApplicationError) as info:
            await caller.call("com.example.missing")
        assert info.value.error == ErrorURI.NO_SUCH_PROCEDURE
        assert str(ApplicationError("com.example.bare")) == "com.example.bare"


async def test_other_exceptions_become_a_generic_error(caplog: pytest.LogCaptureFixture) -> None:
    async def broken(secret: str) -> None:
        raise RuntimeError(f"database password is {secret}")

    def bad_uri(*args: Any) -> None:
        raise ApplicationError("not a URI!")

    def unencodable(*args: Any) -> object:
        return object()

    async with mini_host() as host, two_sessions(host) as (callee, caller):
        await callee.register("com.example.broken", broken)
        await callee.register("com.example.bad_uri", bad_uri)
        await callee.register("com.example.unencodable", unencodable)
        for procedure in ("com.example.broken", "com.example.bad_uri", "com.example.unencodable"):
            with pytest.raises(ApplicationError) as info:
                await caller.call(procedure, "hunter2")
            assert info.value.error == RUNTIME_ERROR
            assert info.value.args == ()
            assert info.value.kwargs == {}
        # Nothing about the exception went on the wire.
        errors = [m for m in host.received if m.type is MessageType.ERROR]
        assert len(errors) == 3
        assert all(m.args is None and m.kwargs is None for m in errors)  # type: ignore[attr-defined]
        assert "hunter2" in caplog.text  # but it is logged on the callee's side


async def test_unencodable_arguments_fail_locally() -> None:
    async with mini_host() as host, two_sessions(host) as (callee, caller):
        await callee.register("com.example.echo", lambda x: x)
        with pytest.raises(wamp_core.SerializationError):
            await caller.call("com.example.echo", object())
        with pytest.raises(wamp_core.SerializationError):
            await caller.publish("com.example.topic", object())
        with pytest.raises(wamp_core.LocalProtocolError):
            await caller.call("not a uri!")
        # The session is intact (the router checks that request IDs are sequential).
        assert await caller.call("com.example.echo", 5) == 5


@pytest.mark.parametrize("host_kind", HOSTS)
async def test_progressive_call_results(host_kind: str) -> None:
    async def count(n: int, *, details: InvocationDetails) -> str:
        for i in range(n):
            await details.progress(i, square=i * i)
        return "done"

    async with mini_host(host_kind) as host, two_sessions(host) as (callee, caller):
        await callee.register("com.example.count", count)
        async with caller.call_progressive("com.example.count", 3) as results:
            items = [item async for item in results]
        assert items == [
            CallResult(0, square=0),
            CallResult(1, square=1),
            CallResult(2, square=4),
            "done",
        ]
        # Without receive_progress, progress() sends nothing: only the final result.
        assert await caller.call("com.example.count", 2) == "done"
        # call() skips progressive results asked for with raw options.
        options = {"receive_progress": True}
        assert await caller.call("com.example.count", 2, options=options) == "done"
        # Iterating again after the final result yields nothing.
        async for _ in results:
            raise AssertionError("unreachable")


@pytest.mark.parametrize("host_kind", HOSTS)
async def test_progressive_call_error_and_early_exit(host_kind: str) -> None:
    release = trio.Event()
    interrupted = trio.Event()

    async def chunks(*, details: InvocationDetails) -> None:
        await details.progress("first")
        try:
            await release.wait()
        except trio.Cancelled:
            interrupted.set()
            raise
        raise ApplicationError("com.example.late")

    async with mini_host(host_kind) as host, two_sessions(host) as (callee, caller):
        await callee.register("com.example.chunks", chunks)
        # An error after progressive results raises from the iteration.
        async with caller.call_progressive("com.example.chunks") as results:
            assert await results.__anext__() == "first"
            release.set()
            with pytest.raises(ApplicationError):
                await results.__anext__()
        release = trio.Event()
        # Leaving early cancels the call; the callee is interrupted.
        async with caller.call_progressive("com.example.chunks") as results:
            async for item in results:
                assert item == "first"
                break
        await interrupted.wait()
        assert MessageType.CANCEL in host.sent_types()


async def test_invocation_details_and_caller_disclosure() -> None:
    seen: list[InvocationDetails] = []

    async def who(*, details: InvocationDetails) -> str:
        seen.append(details)
        return details.procedure

    async with mini_host() as host, two_sessions(host) as (callee, caller):
        await callee.register("com.example", who, match="prefix")
        assert await caller.call("com.example.a.b", options={"disclose_me": True}) == (
            "com.example.a.b"
        )
        (details,) = seen
        assert details.caller == caller.session_id
        assert details.caller_authrole == "anonymous"
        assert details.receive_progress is False
        assert details.registration.procedure == "com.example"


@pytest.mark.parametrize("host_kind", HOSTS)
async def test_cancelled_call_sends_cancel_and_interrupts_the_callee(host_kind: str) -> None:
    started = trio.Event()
    interrupted = trio.Event()

    async def slow() -> None:
        started.set()
        try:
            await trio.sleep_forever()
        except trio.Cancelled:
            interrupted.set()
            raise

    async with mini_host(host_kind) as host, two_sessions(host) as (callee, caller):
        await callee.register("com.example.slow", slow)
        with trio.CancelScope() as scope:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(caller.call, "com.example.slow")
                await started.wait()
                scope.cancel()
        assert scope.cancelled_caught
        await interrupted.wait()
        cancel = await host.wait_received(lambda m: m.type is MessageType.CANCEL)
        assert cancel.options == {"mode": "killnowait"}  # type: ignore[attr-defined]
        # The callee answered the INTERRUPT with ERROR wamp.error.canceled.
        await host.wait_received(
            lambda m: m.type is MessageType.ERROR and m.error == ErrorURI.CANCELED  # type: ignore[attr-defined]
        )
        # Both sessions go on.
        await callee.register("com.example.ok", lambda: "ok")
        assert await caller.call("com.example.ok") == "ok"


@pytest.mark.parametrize("host_kind", HOSTS)
async def test_cancel_mode_kill(host_kind: str) -> None:
    started = trio.Event()

    async def slow() -> None:
        started.set()
        await trio.sleep_forever()

    async with mini_host(host_kind) as host, two_sessions(host) as (callee, caller):
        await callee.register("com.example.slow", slow)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(lambda: caller.call("com.example.slow", cancel_mode="kill"))
            await started.wait()
            nursery.cancel_scope.cancel()
        cancel = await host.wait_received(lambda m: m.type is MessageType.CANCEL)
        assert cancel.options == {"mode": "kill"}  # type: ignore[attr-defined]
        # With kill, the router waits for the callee's ERROR and passes it on;
        # the caller has forgotten the call, and its session goes on.
        await host.wait_received(lambda m: m.type is MessageType.ERROR)
        await callee.register("com.example.ok", lambda: "ok")
        assert await caller.call("com.example.ok") == "ok"


# -- registrations ---------------------------------------------------------------------------


async def test_unregister_and_registration_errors() -> None:
    async with mini_host() as host, two_sessions(host) as (callee, caller):
        registration = await callee.register("com.example.proc", lambda: 1)
        assert registration.active
        assert registration.registration_id is not None
        assert "com.example.proc" in repr(registration)
        with pytest.raises(ApplicationError) as info:
            await caller.register("com.example.proc", lambda: 2)
        assert info.value.error == ErrorURI.PROCEDURE_ALREADY_EXISTS
        assert await caller.call("com.example.proc") == 1
        await registration.unregister()
        await registration.unregister()  # idempotent
        assert not registration.active
        with pytest.raises(ApplicationError) as info:
            await caller.call("com.example.proc")
        assert info.value.error == ErrorURI.NO_SUCH_PROCEDURE
        # async with unregisters on exit.
        async with await callee.register("com.example.scoped", lambda: 3) as scoped:
            assert await caller.call("com.example.scoped") == 3
        assert not scoped.active
        await host.wait_count(MessageType.UNREGISTER, 2)
        with pytest.raises(ApplicationError):
            await caller.call("com.example.scoped")


async def test_shared_registration_options() -> None:
    async with mini_host() as host, two_sessions(host) as (a, b):
        await a.register("com.example.shared", lambda: "a", invoke="roundrobin")
        await b.register("com.example.shared", lambda: "b", invoke="roundrobin")
        results = {await a.call("com.example.shared") for _ in range(4)}
        assert results == {"a", "b"}


# -- publish and subscribe -------------------------------------------------------------------


@pytest.mark.parametrize("host_kind", HOSTS)
async def test_subscribe_iterator_and_publish_acknowledged(host_kind: str) -> None:
    async with mini_host(host_kind) as host, two_sessions(host) as (subscriber, publisher):
        subscription = await subscriber.subscribe("com.example.topic")
        assert "com.example.topic" in repr(subscription)
        publication = await publisher.publish(
            "com.example.topic", 1, 2, acknowledge=True, options={"disclose_me": True}, k="v"
        )
        assert isinstance(publication, int)
        assert await publisher.publish("com.example.topic", 3) is None
        first = await subscription.__anext__()
        assert first == Event(
            "com.example.topic",
            (1, 2),
            {"k": "v"},
            publication,
            publisher.session_id,
            first.details,
        )
        second = await subscription.__anext__()
        assert second.args == (3,)
        assert second.publisher is None
        await subscription.unsubscribe()
        await subscription.unsubscribe()  # idempotent
        assert not subscription.active
        async for _ in subscription:  # iteration has ended
            raise AssertionError("unreachable")


async def test_publish_acknowledge_error() -> None:
    async with mini_host() as host, two_sessions(host) as (_, publisher):
        with pytest.raises(ApplicationError) as info:
            await publisher.publish("wamp.reserved", acknowledge=True)
        assert info.value.error == ErrorURI.INVALID_URI


@pytest.mark.parametrize("host_kind", HOSTS)
async def test_subscribe_with_callback_and_pattern(host_kind: str) -> None:
    received: list[tuple[Any, ...]] = []
    done = trio.Event()

    async def on_event(*args: Any, details: Event, **kwargs: Any) -> None:
        received.append((details.topic, args, kwargs))
        if len(received) == 2:
            done.set()

    plain: list[Any] = []

    def on_plain(value: Any, **kwargs: Any) -> None:
        plain.append(value)

    async with mini_host(host_kind) as host, two_sessions(host) as (subscriber, publisher):
        await subscriber.subscribe("com.example", on_event, match="prefix")
        await subscriber.subscribe("com.example.b", on_plain)
        await publisher.publish("com.example.a", 1, acknowledge=True)
        await publisher.publish("com.example.b", 2, x=3, acknowledge=True)
        await done.wait()
        assert received == [("com.example.a", (1,), {}), ("com.example.b", (2,), {"x": 3})]
        # A subscription with a handler cannot be iterated.
        subscription = await subscriber.subscribe("com.example.c", on_plain)
        with pytest.raises(TypeError):
            subscription.__aiter__()
        with pytest.raises(ValueError, match="queue_size"):
            await subscriber.subscribe("com.example.d", queue_size=0)


async def test_two_local_subscriptions_share_one_router_subscription() -> None:
    async with mini_host() as host, two_sessions(host) as (subscriber, publisher):
        one = await subscriber.subscribe("com.example.topic")
        two = await subscriber.subscribe("com.example.topic")
        assert one.subscription_id == two.subscription_id
        await publisher.publish("com.example.topic", "x", acknowledge=True)
        assert (await one.__anext__()).args == ("x",)
        assert (await two.__anext__()).args == ("x",)
        await one.unsubscribe()  # no UNSUBSCRIBE yet: two still uses it
        assert MessageType.UNSUBSCRIBE not in host.sent_types()
        await publisher.publish("com.example.topic", "y", acknowledge=True)
        assert (await two.__anext__()).args == ("y",)
        async with two:
            pass
        assert not two.active
        await host.wait_received(lambda m: m.type is MessageType.UNSUBSCRIBE)


@pytest.mark.parametrize("host_kind", HOSTS)
async def test_slow_subscriber_drops_and_counts(host_kind: str) -> None:
    async with mini_host(host_kind) as host, two_sessions(host) as (subscriber, publisher):
        subscription = await subscriber.subscribe("com.example.topic", queue_size=1)
        await subscriber.register("com.example.ping", lambda: "pong")
        for i in range(3):
            await publisher.publish("com.example.topic", i, acknowledge=True)
        # The subscriber's own call is answered after the three EVENTs on its
        # transport, so its reader has processed them all by now.
        assert await subscriber.call("com.example.ping") == "pong"
        assert subscription.dropped == 2
        assert (await subscription.__anext__()).args == (0,)


async def test_callback_exception_ends_the_session() -> None:
    def on_event(*args: Any) -> None:
        raise ZeroDivisionError("boom")

    async with mini_host() as host, connect(host.factory()) as publisher:

        async def scenario() -> None:
            async with connect(host.factory()) as subscriber:
                await subscriber.subscribe("com.example.topic", on_event)
                await publisher.publish("com.example.topic", acknowledge=True)
                await trio.sleep_forever()

        with pytest.raises(ZeroDivisionError):
            await scenario()
        # The failed session said GOODBYE.
        await host.wait_received(lambda m: m.type is MessageType.GOODBYE)


# -- joining and leaving ---------------------------------------------------------------------


async def test_join_refused() -> None:
    async with mini_host() as host:
        with pytest.raises(JoinError) as info:
            async with connect(host.factory(), "com.example.nowhere"):
                raise AssertionError("unreachable")
        assert info.value.reason == ErrorURI.NO_SUCH_REALM
        assert info.value.message is not None
        assert str(info.value).startswith(ErrorURI.NO_SUCH_REALM)
        with pytest.raises(wamp_core.LocalProtocolError):
            connect(host.factory(), "not a realm!")
        with pytest.raises(wamp_core.LocalProtocolError):
            async with connect(host.factory(), authmethods="ticket"):  # not a list
                raise AssertionError("unreachable")


async def test_unreachable_router_raises_the_transport_error() -> None:
    async with mini_host() as host:
        host.refuse = True
        with pytest.raises(ConnectionRefusedError):
            async with connect(host.factory()):
                raise AssertionError("unreachable")


@pytest.mark.parametrize("host_kind", HOSTS)
async def test_leave_and_exit_say_goodbye(host_kind: str) -> None:
    async with mini_host(host_kind) as host:
        async with connect(host.factory()) as session:
            assert session.authrole == "anonymous"
            assert session.authmethod == "anonymous"
            assert session.authid is not None
            assert "dealer" in session.router_roles
            assert session.details["realm"] == "realm1"
            subscription = await session.subscribe("com.example.topic")
            await session.leave()
            await session.leave()  # idempotent
            assert not session.connected
            with pytest.raises(SessionEnded) as info:
                await session.call("com.example.anything")
            assert info.value.reason == wamp_core.CloseReason.CLOSE_REALM
            async for _ in subscription:  # ended, without an error
                raise AssertionError("unreachable")
        assert host.sent_types().count(MessageType.GOODBYE) == 1
        assert not host.router.sessions
        # Leaving the async with says GOODBYE too.
        async with connect(host.factory()) as session:
            pass
        assert host.sent_types().count(MessageType.GOODBYE) == 2
        assert not host.router.sessions


async def test_body_exception_propagates_unwrapped() -> None:
    async with mini_host() as host:
        with pytest.raises(KeyError):
            async with connect(host.factory()):
                raise KeyError("mine")
        await host.wait_received(lambda m: m.type is MessageType.GOODBYE)


async def test_outer_cancellation_still_says_goodbye() -> None:
    async with mini_host() as host:
        with trio.CancelScope() as scope:
            async with connect(host.factory()):
                scope.cancel()
                await trio.sleep_forever()
        assert scope.cancelled_caught
        await host.wait_received(lambda m: m.type is MessageType.GOODBYE)


async def test_router_goodbye_ends_the_session() -> None:
    errors: list[BaseException] = []
    started = trio.Event()

    async def slow() -> None:
        started.set()
        await trio.sleep_forever()

    async def pending_call(session: Session) -> None:
        try:
            await session.call("com.example.slow")
        except SessionEnded as exc:
            errors.append(exc)

    async with mini_host() as host, trio.open_nursery() as outer:

        async def scenario() -> None:
            async with connect(host.factory()) as session:
                await session.register("com.example.slow", slow)
                outer.start_soon(pending_call, session)
                await started.wait()
                host.router.close_session(host.router_session(session), "wamp.close.killed")
                host.dispatch()
                await trio.sleep_forever()

        with pytest.raises(SessionEnded) as info:
            await scenario()
        assert info.value.reason == "wamp.close.killed"
        assert "wamp.close.killed" in str(info.value)
    (error,) = errors
    assert isinstance(error, SessionEnded)
    assert error.reason == "wamp.close.killed"


async def test_router_shutdown_ends_the_session() -> None:
    sessions: list[Session] = []
    async with mini_host() as host:

        async def scenario() -> None:
            async with connect(host.factory()) as session:
                sessions.append(session)
                host.router.shutdown()
                host.dispatch()
                await trio.sleep_forever()

        with pytest.raises(SessionEnded) as info:
            await scenario()
        assert info.value.reason == wamp_core.CloseReason.SYSTEM_SHUTDOWN
        # The client echoed the GOODBYE.
        await host.wait_received(lambda m: m.type is MessageType.GOODBYE)
        assert not sessions[0].connected


@pytest.mark.parametrize("host_kind", HOSTS)
async def test_transport_loss_without_reconnect(host_kind: str) -> None:
    async with mini_host(host_kind) as host:
        subscriptions = []

        async def scenario() -> None:
            async with connect(host.factory()) as session:
                subscriptions.append(await session.subscribe("com.example.topic"))
                await host.cut(session)
                await trio.sleep_forever()

        with pytest.raises(TransportLost) as info:
            await scenario()
        assert info.value.reason is None
        assert "transport" in str(info.value)
        # Iterating a subscription of a lost session raises.
        with pytest.raises(TransportLost):
            await subscriptions[0].__anext__()


async def test_protocol_violation_by_the_router() -> None:
    client, server = memory_transport_pair(wamp_core.get_serializer("json"))

    async def bad_router() -> None:
        await server.receive()  # HELLO
        await server.send(b'[2,1,{"roles":{"dealer":{}}}]')
        await server.send(b"[50,99,{}]")  # a RESULT for no call

    async def scenario() -> None:
        async with open_session(client) as session:
            assert session.session_id == 1
            await trio.sleep_forever()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(bad_router)
        with pytest.raises(SessionEnded) as info:
            await scenario()
        assert info.value.reason == ErrorURI.PROTOCOL_VIOLATION
        assert isinstance(info.value.__cause__, wamp_core.RemoteProtocolError)
        (abort,) = wamp_core.get_serializer("json").decode(await server.receive())
        assert abort.type is MessageType.ABORT


async def test_open_session_leaves_the_transport_open() -> None:
    async with mini_host() as host:
        client, server = memory_transport_pair(wamp_core.get_serializer("msgpack"))
        host.nursery.start_soon(host.handle, server)
        async with open_session(client) as first:
            await first.register("com.example.x", lambda: "x")
            assert await first.call("com.example.x") == "x"
        # The same transport carries a second session (BP/sessions.md).
        async with open_session(client) as second:
            assert second.session_id != first.session_id
            await second.register("com.example.y", lambda: None)
            assert await second.call("com.example.y", options={}) is None
    await client.aclose()


# -- authentication --------------------------------------------------------------------------


class TicketAuthenticator:
    """Ticket auth: the ticket for ``authid`` is ``"secret-for-" + authid``."""

    def __init__(self) -> None:
        self.hellos = 0
        self.deny_after: int | None = None

    def hello(self, info: wamp_core.HelloInfo) -> wamp_core.AuthOutcome:
        self.hellos += 1
        if self.deny_after is not None and self.hellos > self.deny_after:
            return wamp_core.Deny(ErrorURI.AUTHENTICATION_FAILED, "go away")
        if "ticket" not in info.authmethods or info.authid is None:
            return wamp_core.Deny(ErrorURI.NO_MATCHING_AUTH_METHOD)
        return wamp_core.AuthChallenge("ticket", {})

    def authenticate(
        self,
        info: wamp_core.HelloInfo,
        challenge: wamp_core.AuthChallenge,
        signature: str,
        extra: dict[str, Any],
    ) -> wamp_core.AuthOutcome:
        assert info.authid is not None
        if signature == "secret-for-" + info.authid:
            return wamp_core.Accept(info.authid, "user", "ticket")
        return wamp_core.Deny(ErrorURI.AUTHENTICATION_FAILED)


async def test_ticket_authentication() -> None:
    challenges: list[wamp_core.ChallengeReceived] = []

    async def on_challenge(challenge: wamp_core.ChallengeReceived) -> str:
        challenges.append(challenge)
        return "secret-for-alice"

    async with mini_host(authenticator=TicketAuthenticator()) as host:
        async with connect(
            host.factory(), authmethods=["ticket"], authid="alice", on_challenge=on_challenge
        ) as session:
            assert session.authid == "alice"
            assert session.authrole == "user"
            assert session.authmethod == "ticket"
        assert [c.authmethod for c in challenges] == ["ticket"]
        # A sync callback returning (signature, extra) works too.
        async with connect(
            host.factory(),
            authmethods=["ticket"],
            authid="bob",
            on_challenge=lambda c: ("secret-for-bob", {}),
        ) as session:
            assert session.authid == "bob"


async def test_authentication_failures() -> None:
    async with mini_host(authenticator=TicketAuthenticator()) as host:
        with pytest.raises(JoinError) as info:
            async with connect(
                host.factory(), authmethods=["ticket"], authid="alice", on_challenge=lambda c: "x"
            ):
                raise AssertionError("unreachable")
        assert info.value.reason == ErrorURI.AUTHENTICATION_FAILED
        # No on_challenge: the client aborts itself.
        with pytest.raises(JoinError) as info:
            async with connect(host.factory(), authmethods=["ticket"], authid="alice"):
                raise AssertionError("unreachable")
        assert info.value.reason == ErrorURI.AUTHENTICATION_FAILED
        assert "on_challenge" in str(info.value)
        await host.wait_received(lambda m: m.type is MessageType.ABORT)

        # on_challenge raising: the client aborts and the exception propagates.
        def explode(challenge: wamp_core.ChallengeReceived) -> str:
            raise LookupError("no key")

        with pytest.raises(LookupError):
            async with connect(
                host.factory(), authmethods=["ticket"], authid="alice", on_challenge=explode
            ):
                raise AssertionError("unreachable")


# -- reconnection ----------------------------------------------------------------------------


@pytest.mark.parametrize("host_kind", HOSTS)
async def test_reconnect_restores_registrations_and_subscriptions(
    autojump_clock: trio.testing.MockClock, host_kind: str
) -> None:
    joins: list[int | None] = []
    leaves: list[BaseException | None] = []
    joined = trio.Event()
    errors: list[BaseException] = []
    started = trio.Event()

    def on_join(session: Session) -> None:
        nonlocal joined
        joins.append(session.session_id)
        joined.set()

    def on_leave(session: Session, exc: BaseException | None) -> None:
        leaves.append(exc)

    async def pending_call(session: Session) -> None:
        try:
            await session.call("com.example.slow")
        except TransportLost as exc:
            errors.append(exc)

    async def slow() -> None:
        started.set()
        await trio.sleep_forever()

    policy = ReconnectPolicy(initial_delay=2.0, jitter=0.5)
    async with mini_host(host_kind) as host, connect(host.factory()) as other:
        await other.register("com.example.slow", slow)
        async with connect(
            host.factory(), reconnect=policy, on_join=on_join, on_leave=on_leave
        ) as session:
            await joined.wait()
            registration = await session.register("com.example.add", lambda a, b: a + b)
            subscription = await session.subscribe("com.example.topic")
            first_id = registration.registration_id
            async with trio.open_nursery() as nursery:
                nursery.start_soon(pending_call, session)
                await started.wait()
                joined = trio.Event()
                await host.cut(session)
            # The call pending at the moment of loss failed.
            (error,) = errors
            assert isinstance(error, TransportLost)
            await joined.wait()
            assert len(joins) == 2
            assert joins[0] != joins[1]
            assert isinstance(leaves[0], TransportLost)
            # Same objects, new IDs, still working.
            assert registration.active
            assert subscription.active
            assert registration.registration_id != first_id
            assert await other.call("com.example.add", 2, 3) == 5
            await other.publish("com.example.topic", "again", acknowledge=True)
            assert (await subscription.__anext__()).args == ("again",)
            assert host.connections == 3
        assert leaves[-1] is None  # we left


async def test_reconnect_retries_until_the_router_is_back(
    autojump_clock: trio.testing.MockClock,
) -> None:
    joined = trio.Event()
    left = trio.Event()

    def on_join(session: Session) -> None:
        joined.set()

    def on_leave(session: Session, exc: BaseException | None) -> None:
        left.set()

    policy = ReconnectPolicy(initial_delay=1.0, max_delay=4.0, jitter=0.0)
    async with (
        mini_host() as host,
        connect(host.factory(), reconnect=policy, on_join=on_join, on_leave=on_leave) as session,
    ):
        await joined.wait()
        joined = trio.Event()
        host.refuse = True
        await host.cut(session)
        await left.wait()
        # A verb waits while the session reconnects.
        async with trio.open_nursery() as nursery:

            async def publish_later() -> None:
                await session.publish("com.example.topic", acknowledge=True)

            nursery.start_soon(publish_later)
            await host.wait_attempts(5)  # several failed attempts
            assert not session.connected
            host.refuse = False
            await joined.wait()
        assert session.connected


async def test_reconnect_gives_up_after_max_attempts(
    autojump_clock: trio.testing.MockClock,
) -> None:
    policy = ReconnectPolicy(max_attempts=3, initial_delay=1.0)
    async with mini_host() as host:

        async def scenario() -> None:
            async with connect(host.factory(), reconnect=policy) as session:
                host.refuse = True
                await host.cut(session)
                await trio.sleep_forever()

        with pytest.raises(TransportLost) as info:
            await scenario()
        assert isinstance(info.value.__cause__, ConnectionRefusedError)
        assert host.connections == 1


@pytest.mark.parametrize("host_kind", HOSTS)
async def test_reconnect_stops_after_authentication_failure(
    autojump_clock: trio.testing.MockClock, host_kind: str
) -> None:
    authenticator = TicketAuthenticator()
    authenticator.deny_after = 1
    async with mini_host(host_kind, authenticator=authenticator) as host:

        async def scenario() -> None:
            async with connect(
                host.factory(),
                authmethods=["ticket"],
                authid="alice",
                on_challenge=lambda c: "secret-for-alice",
                reconnect=True,
            ) as session:
                await host.cut(session)
                await trio.sleep_forever()

        with pytest.raises(JoinError) as info:
            await scenario()
        assert info.value.reason == ErrorURI.AUTHENTICATION_FAILED
        assert authenticator.hellos == 2  # no attempt after the refusal


async def test_reconnect_initial(autojump_clock: trio.testing.MockClock) -> None:
    async with mini_host() as host:
        host.refuse = True
        policy = ReconnectPolicy(initial_delay=1.0, retry_initial=True)
        async with trio.open_nursery() as nursery:

            async def allow_later() -> None:
                await host.wait_attempts(3)
                host.refuse = False

            nursery.start_soon(allow_later)
            async with connect(host.factory(), reconnect=policy) as session:
                assert session.connected


def test_reconnect_policy_delays() -> None:
    import random

    policy = ReconnectPolicy(initial_delay=1.0, max_delay=10.0, multiplier=2.0, jitter=0.0)
    rng = random.Random(0)
    assert [policy.delay(n, rng) for n in range(1, 7)] == [1.0, 2.0, 4.0, 8.0, 10.0, 10.0]
    jittered = ReconnectPolicy(initial_delay=1.0, jitter=0.25)
    assert all(0.75 <= jittered.delay(1, rng) <= 1.25 for _ in range(100))


async def test_leave_while_waiting_to_reconnect(autojump_clock: trio.testing.MockClock) -> None:
    left = trio.Event()

    def on_leave(session: Session, exc: BaseException | None) -> None:
        left.set()

    policy = ReconnectPolicy(initial_delay=1000.0)
    async with mini_host() as host:
        async with connect(host.factory(), reconnect=policy, on_leave=on_leave) as session:
            host.refuse = True
            await host.cut(session)
            await left.wait()
            await session.leave()  # interrupts the wait before the next attempt
            with pytest.raises(SessionEnded):
                await session.call("com.example.anything")
        assert host.attempts == 1


async def test_on_join_failure_ends_the_session() -> None:
    def on_join(session: Session) -> None:
        raise ValueError("bad setup")

    async with mini_host() as host:

        async def scenario() -> None:
            async with connect(host.factory(), on_join=on_join):
                await trio.sleep_forever()

        with pytest.raises(ValueError, match="bad setup"):
            await scenario()


# -- revocations and abandoned requests (a scripted router) -----------------------------------


class ScriptedRouter:
    """The router's end of a memory transport, driven step by step by the test."""

    def __init__(self, transport: MessageTransport) -> None:
        self.transport = transport
        self.codec = transport.serializer

    async def expect(self, message_type: MessageType) -> Any:
        (message,) = self.codec.decode(await self.transport.receive())
        assert message.type is message_type, message
        return message

    async def send(self, message: Message) -> None:
        await self.transport.send(self.codec.encode(message))

    async def welcome(self) -> None:
        await self.expect(MessageType.HELLO)
        await self.send(wamp_core.Welcome(1, {"roles": wamp_core.ROUTER_ROLES}))

    async def goodbye(self) -> None:
        await self.expect(MessageType.GOODBYE)
        await self.send(wamp_core.Goodbye({}, wamp_core.CloseReason.GOODBYE_AND_OUT))


@asynccontextmanager
async def scripted() -> AsyncIterator[tuple[ScriptedRouter, Session, trio.Event]]:
    """A session over a scripted router; set the event to leave."""
    client, server = memory_transport_pair(wamp_core.get_serializer("json"))
    router = ScriptedRouter(server)
    finish = trio.Event()
    sessions: list[Session] = []
    ready = trio.Event()

    async def client_side() -> None:
        async with open_session(client) as session:
            sessions.append(session)
            ready.set()
            await finish.wait()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(client_side)
        await router.welcome()
        await ready.wait()
        yield router, sessions[0], finish
        finish.set()
        await router.goodbye()


async def test_abandoned_subscribe_and_register_are_undone() -> None:
    async with scripted() as (router, session, _):
        with trio.CancelScope() as scope:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(session.subscribe, "com.example.topic")
                subscribe = await router.expect(MessageType.SUBSCRIBE)
                scope.cancel()
        await router.send(wamp_core.Subscribed(subscribe.request, 5))
        unsubscribe = await router.expect(MessageType.UNSUBSCRIBE)
        assert unsubscribe.subscription == 5
        await router.send(wamp_core.Unsubscribed(unsubscribe.request))

        with trio.CancelScope() as scope:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(session.register, "com.example.proc", lambda: None)
                register = await router.expect(MessageType.REGISTER)
                scope.cancel()
        await router.send(wamp_core.Registered(register.request, 6))
        unregister = await router.expect(MessageType.UNREGISTER)
        assert unregister.registration == 6
        await router.send(wamp_core.Unregistered(unregister.request))
        # An abandoned call's late result is ignored.
        with trio.CancelScope() as scope:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(session.call, "com.example.slow")
                call = await router.expect(MessageType.CALL)
                scope.cancel()
        cancel = await router.expect(MessageType.CANCEL)
        assert cancel.request == call.request
        await router.send(wamp_core.Result(call.request, {}, ["late"]))
        # The session is fine: a subscription still works.
        async with trio.open_nursery() as nursery:
            nursery.start_soon(session.subscribe, "com.example.other")
            subscribe = await router.expect(MessageType.SUBSCRIBE)
            await router.send(wamp_core.Subscribed(subscribe.request, 7))


async def test_revocations() -> None:
    async with scripted() as (router, session, _):
        async with trio.open_nursery() as nursery:
            subscriptions: list[Any] = []

            async def subscribe() -> None:
                subscriptions.append(await session.subscribe("com.example.topic"))

            async def register() -> None:
                subscriptions.append(await session.register("com.example.proc", lambda: 1))

            nursery.start_soon(subscribe)
            request = (await router.expect(MessageType.SUBSCRIBE)).request
            await router.send(wamp_core.Subscribed(request, 5))
            nursery.start_soon(register)
            request = (await router.expect(MessageType.REGISTER)).request
            await router.send(wamp_core.Registered(request, 6))
        subscription, registration = subscriptions
        await router.send(wamp_core.Unsubscribed(0, {"subscription": 5, "reason": "wamp.x"}))
        async for _ in subscription:  # iteration ends
            raise AssertionError("unreachable")
        assert subscription.revoked == "wamp.x"
        await router.send(wamp_core.Unregistered(0, {"registration": 6}))
        # An INVOCATION crossing the revocation is refused by the core.
        await router.send(wamp_core.Invocation(1, 6, {}))
        error = await router.expect(MessageType.ERROR)
        assert error.error == ErrorURI.NO_SUCH_REGISTRATION
        assert not registration.active
        assert registration.revoked == "revoked"
        await registration.unregister()  # nothing to do
        await subscription.unsubscribe()  # nothing to do


async def test_interrupt_for_a_finished_invocation_and_details() -> None:
    async with scripted() as (router, session, _):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(session.register, "com.example.proc", lambda *a, **k: CallResult())
            request = (await router.expect(MessageType.REGISTER)).request
            await router.send(wamp_core.Registered(request, 6))
        await router.send(wamp_core.Invocation(1, 6, {}, [1], {"a": 2}))
        result = await router.expect(MessageType.YIELD)
        assert (result.request, result.args, result.kwargs) == (1, None, None)
        await router.send(wamp_core.Interrupt(1, {"mode": "kill"}))  # too late: ignored
        # An EVENT for a subscription we do not hold is dropped.
        await router.send(wamp_core.Event(99, 1, {}))


# -- real sockets ------------------------------------------------------------------------------


@asynccontextmanager
async def real_router(tmp_path: Any) -> AsyncIterator[dict[str, str]]:
    """A RouterHost on 127.0.0.1 (port 0: WebSocket, long-poll, RawSocket) and a Unix socket."""
    host = RouterHost(wamp_core.Router(["realm1"]))
    listeners = [TcpListener(port=0), UnixListener(str(tmp_path / "router.sock"))]
    async with trio.open_nursery() as nursery:
        endpoints = await nursery.start(serve_router, host, listeners)
        urls = {}
        for endpoint in endpoints:
            scheme = endpoint.url.split(":", 1)[0]
            urls[scheme] = endpoint.url
        yield urls
        await host.shutdown()
        nursery.cancel_scope.cancel()


@pytest.mark.parametrize(
    ("scheme", "serializer"),
    [
        ("ws", "json"),
        ("ws", "wamp.2.msgpack.batched"),
        ("rs", "cbor"),
        ("unix", "msgpack"),
        ("http", "json"),
    ],
)
async def test_end_to_end_over_sockets(tmp_path: Any, scheme: str, serializer: str) -> None:
    started = trio.Event()
    interrupted = trio.Event()

    async def slow() -> None:
        started.set()
        try:
            await trio.sleep_forever()
        except trio.Cancelled:
            interrupted.set()
            raise

    async def count(n: int, *, details: InvocationDetails) -> str:
        for i in range(n):
            await details.progress(i)
        return "done"

    with trio.fail_after(20):
        async with real_router(tmp_path) as urls:
            url = urls[scheme]
            async with (
                connect(url, serializer=serializer) as callee,
                connect(url, serializer=serializer) as caller,
            ):
                assert callee.serializer is not None
                await callee.register("com.example.add", lambda a, b: a + b)
                await callee.register("com.example.slow", slow)
                await callee.register("com.example.count", count)
                subscription = await caller.subscribe("com.example.topic")
                assert await caller.call("com.example.add", 2, 3) == 5
                async with caller.call_progressive("com.example.count", 2) as results:
                    assert [r async for r in results] == [0, 1, "done"]
                await callee.publish("com.example.topic", b"\x00bin", acknowledge=True)
                assert (await subscription.__anext__()).args == (b"\x00bin",)
                with trio.CancelScope() as scope:
                    async with trio.open_nursery() as nursery:
                        nursery.start_soon(caller.call, "com.example.slow")
                        await started.wait()
                        scope.cancel()
                await interrupted.wait()
                assert await caller.call("com.example.add", 1, 1) == 2


async def test_unknown_scheme_and_unreachable_socket(tmp_path: Any) -> None:
    with pytest.raises(ValueError, match="scheme"):
        async with connect("ftp://127.0.0.1:1/"):
            raise AssertionError("unreachable")
    with pytest.raises(FileNotFoundError):
        async with connect(f"unix://{tmp_path}/nobody.sock"):
            raise AssertionError("unreachable")


async def test_restore_failure_deactivates_the_registration(
    autojump_clock: trio.testing.MockClock,
) -> None:
    joined = trio.Event()
    left = trio.Event()

    def on_join(session: Session) -> None:
        joined.set()

    def on_leave(session: Session, exc: BaseException | None) -> None:
        left.set()

    policy = ReconnectPolicy(initial_delay=1.0)
    async with (
        mini_host() as host,
        connect(host.factory()) as other,
        connect(host.factory(), reconnect=policy, on_join=on_join, on_leave=on_leave) as session,
    ):
        registration = await session.register("com.example.proc", lambda: "mine")
        keeper = await session.register("com.example.kept", lambda: "kept")
        joined = trio.Event()
        await host.cut(session)
        await left.wait()
        await other.register("com.example.proc", lambda: "theirs")  # taken meanwhile
        await joined.wait()
        assert not registration.active
        assert keeper.active
        assert await other.call("com.example.proc") == "theirs"
        assert await other.call("com.example.kept") == "kept"


async def test_router_abort_after_join() -> None:
    client, server = memory_transport_pair(wamp_core.get_serializer("json"))
    router = ScriptedRouter(server)

    async def scenario() -> None:
        async with open_session(client):
            await router.send(wamp_core.Abort({"message": "bye"}, "com.example.kicked"))
            await trio.sleep_forever()
        raise AssertionError("unreachable")  # pragma: no cover

    async with trio.open_nursery() as nursery:
        nursery.start_soon(router.welcome)
        with pytest.raises(SessionEnded) as info:
            await scenario()
    assert info.value.reason == "com.example.kicked"
    assert info.value.message == "bye"
