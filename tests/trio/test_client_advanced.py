"""Advanced Profile features from the trio client, against a real ``RouterHost``.

Every test runs a ``wamp_core.Router`` in a ``RouterHost``: over memory transports
(``kind="memory"``, which also records what the clients sent, and is the only kind
used with trio's ``MockClock``: sockets and an autojumping clock do not mix) or
served by ``serve_router`` on 127.0.0.1 port 0 (``"ws"``, ``"rs"``).
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import pytest
import trio

import wamp_core
from wamp_core import ErrorURI, Message, MessageType
from wamp_trio import TcpListener
from wamp_trio._client import (
    DEFAULT_ROLES,
    ApplicationError,
    CallResult,
    Chunks,
    Event,
    InvocationDetails,
    Session,
    SessionEnded,
    Subscription,
    TransportLost,
    _milliseconds,
    connect,
)
from wamp_trio._host import RouterHost, serve_router
from wamp_trio._transport import MessageTransport, memory_transport_pair

EPOCH = 1_750_000_000.0
"""Router time at trio time 0, for routers that follow trio's (mock) clock."""

KINDS = ["memory", "ws", "rs"]
SERIALIZERS = {"memory": "json", "ws": "cbor", "rs": "msgpack"}


# -- the environment ---------------------------------------------------------------------------


class _Recording:
    """The router's end of a memory transport, recording what the client sent."""

    def __init__(self, inner: MessageTransport, env: Env) -> None:
        self.inner = inner
        self.env = env
        self.serializer = inner.serializer
        self.info = inner.info

    async def send(self, data: bytes) -> None:
        await self.inner.send(data)

    async def receive(self) -> bytes:
        data = await self.inner.receive()
        self.env.sent.extend(self.serializer.decode(data))
        return data

    async def aclose(self) -> None:
        await self.inner.aclose()


class Env:
    """A router host and a way to connect clients to it."""

    def __init__(self, host: RouterHost, nursery: trio.Nursery, kind: str, url: str) -> None:
        self.host = host
        self.router = host.router
        self.nursery = nursery
        self.kind = kind
        self.url = url
        self.serializer = SERIALIZERS[kind]
        self.sent: list[Message] = []
        """What clients sent (memory transports only)."""

    def connect(self, **kwargs: Any) -> AbstractAsyncContextManager[Session]:
        if self.kind != "memory":
            return connect(self.url, serializer=self.serializer, **kwargs)

        @asynccontextmanager
        async def open_memory() -> AsyncIterator[MessageTransport]:
            client, server = memory_transport_pair(wamp_core.get_serializer(self.serializer))
            self.nursery.start_soon(self.host.handle, _Recording(server, self))
            try:
                yield client
            finally:
                await client.aclose()

        return connect(open_memory, **kwargs)

    @property
    def realm(self) -> wamp_core.Realm:
        return self.router.realms["realm1"]

    def sent_of(self, message_type: MessageType) -> list[Any]:
        return [m for m in self.sent if m.type is message_type]

    async def cut(self, session: Session) -> None:
        """Close the router's end of ``session``'s transport (a network failure)."""
        for connection in self.host.connections:
            if connection.session.session_id == session.session_id:
                await connection.transport.aclose()
                return
        raise AssertionError("no such connection")


@asynccontextmanager
async def environment(
    kind: str = "memory", *, mock_clock: bool = False, **router_options: Any
) -> AsyncIterator[Env]:
    router_options.setdefault("realms", ["realm1"])
    router = wamp_core.Router(**router_options)
    if mock_clock:
        # The router's timers follow trio's (mock) clock.
        host = RouterHost(router, clock=lambda: EPOCH + trio.current_time())
    else:
        host = RouterHost(router)
    async with trio.open_nursery() as nursery:
        if kind == "memory":
            await nursery.start(host.run)
            url = "memory"
        else:
            listener = TcpListener(port=0, longpoll=None)
            endpoints = await nursery.start(serve_router, host, [listener])
            url = next(e.url for e in endpoints if e.url.startswith(f"{kind}://"))
        yield Env(host, nursery, kind, url)
        await host.shutdown()
        nursery.cancel_scope.cancel()


def roles_without(role: str, feature: str) -> dict[str, Any]:
    roles = {name: {"features": dict(details["features"])} for name, details in
             wamp_core.ROUTER_ROLES.items()}  # fmt: skip
    del roles[role]["features"][feature]
    return roles


class Identities:
    """An authenticator admitting everybody under the authid asked for; role
    ``admin`` for authids starting with ``admin``, else ``user``; trust level 2
    for ``trusted``."""

    def hello(self, info: wamp_core.HelloInfo) -> wamp_core.AuthOutcome:
        authid = info.authid or "nobody"
        role = "admin" if authid.startswith("admin") else "user"
        trustlevel = 2 if authid == "trusted" else None
        return wamp_core.Accept(authid, role, trustlevel=trustlevel)

    def authenticate(
        self,
        info: wamp_core.HelloInfo,
        challenge: wamp_core.AuthChallenge,
        signature: str,
        extra: dict[str, Any],
    ) -> wamp_core.AuthOutcome:
        raise AssertionError("no challenge is ever sent")


def plain(chunk: Any) -> Any:
    """A chunk as something a serializer can carry."""
    if isinstance(chunk, CallResult):
        return {"args": list(chunk.args), "kwargs": chunk.kwargs}
    return chunk


async def wait_forever_recording(cancelled: trio.Event) -> None:
    try:
        await trio.sleep_forever()
    finally:
        cancelled.set()


# -- roles --------------------------------------------------------------------------------------


async def test_default_roles_announce_progressive_call_invocations() -> None:
    assert DEFAULT_ROLES == wamp_core.CLIENT_ROLES
    async with environment() as env, env.connect() as session:
        assert session.session_id is not None
        router_session = env.router.sessions[session.session_id]
        assert router_session.has_feature("caller", "progressive_call_invocations")
        assert router_session.has_feature("callee", "progressive_call_invocations")
        (hello,) = env.sent_of(MessageType.HELLO)
        assert hello.details["roles"] == wamp_core.CLIENT_ROLES


# -- call timeouts ------------------------------------------------------------------------------


def test_timeout_in_seconds_becomes_milliseconds() -> None:
    assert _milliseconds(None) is None
    assert _milliseconds(math.inf) is None
    assert _milliseconds(0.3) == 300  # not 301, despite 0.3 * 1000 == 300.00000000000006
    assert _milliseconds(2.5) == 2500
    assert _milliseconds(1.0005) == 1001  # rounded up
    assert _milliseconds(1e-9) == 1  # never 0, which would mean "no timeout"
    for bad in (0, -1.0, math.nan):
        with pytest.raises(ValueError, match="positive number of seconds"):
            _milliseconds(bad)


async def test_call_timeout_is_timed_by_the_router(autojump_clock: trio.testing.MockClock) -> None:
    interrupted = trio.Event()

    async def slow() -> None:
        await wait_forever_recording(interrupted)

    async with (
        environment(mock_clock=True) as env,
        env.connect() as callee,
        env.connect() as caller,
    ):
        await callee.register("com.example.slow", slow)
        start = trio.current_time()
        with pytest.raises(ApplicationError) as info:
            await caller.call("com.example.slow", timeout=2.5)
        assert info.value.error == ErrorURI.TIMEOUT
        assert trio.current_time() - start == pytest.approx(2.5, abs=1e-3)  # mock time
        await interrupted.wait()  # the callee got INTERRUPT
        (call,) = env.sent_of(MessageType.CALL)
        assert call.options == {"timeout": 2500}
        assert env.sent_of(MessageType.CANCEL) == []  # the router did it all
        # A bad timeout is refused before anything is sent.
        with pytest.raises(ValueError, match="positive"):
            await caller.call("com.example.slow", timeout=0)
        assert len(env.sent_of(MessageType.CALL)) == 1


async def test_call_timeout_is_timed_by_the_client_when_the_router_cannot(
    autojump_clock: trio.testing.MockClock,
) -> None:
    interrupted = trio.Event()

    async def slow() -> None:
        await wait_forever_recording(interrupted)

    async def ticks(*, details: InvocationDetails) -> None:
        await details.progress("tick")
        await trio.sleep_forever()

    roles = roles_without("dealer", "call_timeout")
    async with (
        environment(mock_clock=True, roles=roles) as env,
        env.connect() as callee,
        env.connect() as caller,
    ):
        await callee.register("com.example.slow", slow)
        await callee.register("com.example.ticks", ticks)
        with pytest.raises(ApplicationError) as info:
            await caller.call("com.example.slow", timeout=1.5)
        assert info.value.error == ErrorURI.TIMEOUT
        assert info.value.args == ("the call timed out after 1.5 s",)
        await interrupted.wait()
        (call,) = env.sent_of(MessageType.CALL)
        assert "timeout" not in call.options  # the router would not understand it
        (cancel,) = env.sent_of(MessageType.CANCEL)
        assert cancel.request == call.request
        # The same for progressive results: the timeout applies between results.
        async with caller.call_progressive("com.example.ticks", timeout=1) as results:
            assert await results.__anext__() == "tick"
            with pytest.raises(ApplicationError) as info:
                await results.__anext__()
            assert info.value.error == ErrorURI.TIMEOUT
            async for _ in results:  # the call is over
                raise AssertionError("unreachable")
        await caller.call("wamp.session.count")  # the CANCEL has reached the router
        assert len(env.sent_of(MessageType.CANCEL)) == 2


async def test_forwarded_timeout_is_enforced_by_the_callee(
    autojump_clock: trio.testing.MockClock,
) -> None:
    seen: list[InvocationDetails] = []
    cancelled = trio.Event()

    async def slow(*, details: InvocationDetails) -> None:
        seen.append(details)
        await wait_forever_recording(cancelled)

    async with (
        environment(mock_clock=True) as env,
        env.connect() as callee,
        env.connect() as caller,
    ):
        await callee.register("com.example.slow", slow, forward_timeout=True)
        (register,) = env.sent_of(MessageType.REGISTER)
        assert register.options == {"forward_timeout": True}
        with pytest.raises(ApplicationError) as info:
            await caller.call("com.example.slow", timeout=0.75)
        assert info.value.error == ErrorURI.TIMEOUT
        assert cancelled.is_set()
        (details,) = seen
        assert details.timeout == 0.75
        # The callee answered (the router did not time the call, nor interrupt it).
        (error,) = env.sent_of(MessageType.ERROR)
        assert error.error == ErrorURI.TIMEOUT
        assert error.args == ["the call timed out after 0.75 s"]
        # Without a timeout from the caller the handler is not limited.
        assert await caller.call("wamp.session.count") == 2
        seen.clear()

        async def quick(*, details: InvocationDetails) -> str:
            assert details.timeout is None
            return "ok"

        await callee.register("com.example.quick", quick, forward_timeout=True)
        assert await caller.call("com.example.quick") == "ok"


# -- caller identification and trust levels -------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
async def test_disclose_me_and_disclose_caller(kind: str) -> None:
    seen: list[InvocationDetails] = []

    def who(*, details: InvocationDetails) -> None:
        seen.append(details)

    async with (
        environment(kind, authenticator=Identities()) as env,
        env.connect(authid="admin-ann") as callee,
        env.connect(authid="bob") as caller,
    ):
        await callee.register("com.example.who", who)
        await callee.register("com.example.always", who, disclose_caller=True)
        await caller.call("com.example.who")
        await caller.call("com.example.who", disclose_me=True)
        await caller.call("com.example.always")
        anonymous, disclosed, always = seen
        assert (anonymous.caller, anonymous.caller_authid, anonymous.caller_authrole) == (
            None, None, None,
        )  # fmt: skip
        for details in (disclosed, always):
            assert details.caller == caller.session_id
            assert details.caller_authid == "bob"
            assert details.caller_authrole == "user"
            assert details.trustlevel is None


@pytest.mark.parametrize("kind", KINDS)
async def test_trust_levels(kind: str) -> None:
    seen: list[InvocationDetails] = []

    def level(*, details: InvocationDetails) -> int | None:
        seen.append(details)
        return details.trustlevel

    async with (
        environment(kind, authenticator=Identities()) as env,
        env.connect(authid="someone") as callee,
        env.connect(authid="trusted") as trusted,
    ):
        await callee.register("com.example.level", level)
        assert await trusted.call("com.example.level") == 2
        assert await callee.call("com.example.level") is None  # no trust level assigned
        news = await callee.subscribe("com.example.news")
        await trusted.publish("com.example.news", "from trusted", acknowledge=True)
        await callee.publish("com.example.news", "from someone", exclude_me=False)
        first = await news.__anext__()
        second = await news.__anext__()
        assert (first.args, first.trustlevel) == (("from trusted",), 2)
        assert (second.args, second.trustlevel) == (("from someone",), None)


# -- shared registrations and rerouting ----------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
async def test_rerouting_with_shared_registrations(kind: str) -> None:
    tried: list[str] = []

    def busy() -> None:
        tried.append("busy")
        raise ApplicationError(ErrorURI.UNAVAILABLE)

    def ready() -> str:
        tried.append("ready")
        return "served"

    async with (
        environment(kind) as env,
        env.connect() as first,
        env.connect() as second,
        env.connect() as caller,
    ):
        await first.register("com.example.work", busy, invoke="first")
        await second.register("com.example.work", ready, invoke="first")
        assert await caller.call("com.example.work") == "served"
        assert tried == ["busy", "ready"]  # the caller never saw the first refusal
        # When every callee is unavailable, the caller hears so.
        await second.register("com.example.never", busy, invoke="roundrobin")
        await first.register("com.example.never", busy, invoke="roundrobin")
        with pytest.raises(ApplicationError) as info:
            await caller.call("com.example.never")
        assert info.value.error == ErrorURI.NO_AVAILABLE_CALLEE
        # A mismatching policy is refused by the router.
        with pytest.raises(ApplicationError) as info:
            await caller.register("com.example.work", ready, invoke="random")
        assert info.value.error == ErrorURI.PROCEDURE_ALREADY_EXISTS


@pytest.mark.parametrize("kind", KINDS)
async def test_round_robin(kind: str) -> None:
    async with environment(kind) as env, env.connect() as a, env.connect() as b:
        await a.register("com.example.rr", lambda: "a", invoke="roundrobin")
        await b.register("com.example.rr", lambda: "b", invoke="roundrobin")
        answers = [await a.call("com.example.rr") for _ in range(4)]
        assert answers == ["a", "b", "a", "b"]


# -- patterns -------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
async def test_pattern_registrations_and_subscriptions(kind: str) -> None:
    def where(*, details: InvocationDetails) -> list[str]:
        return [details.registration.procedure, details.procedure]

    async with environment(kind) as env, env.connect() as callee, env.connect() as caller:
        await callee.register("com.example.users", where, match="prefix")
        await callee.register("com.example..get", where, match="wildcard")
        await callee.register("com.example.users.exact", where)
        assert await caller.call("com.example.users.42.name") == [
            "com.example.users", "com.example.users.42.name",
        ]  # fmt: skip
        assert await caller.call("com.example.orders.get") == [
            "com.example..get", "com.example.orders.get",
        ]  # fmt: skip
        # The most specific registration wins; an exact one has no details.procedure.
        assert await caller.call("com.example.users.exact") == [
            "com.example.users.exact", "com.example.users.exact",
        ]  # fmt: skip

        prefix = await callee.subscribe("com.example.sensor", match="prefix")
        wildcard = await callee.subscribe("com.example..temperature", match="wildcard")
        await caller.publish("com.example.sensor.kitchen", 21, acknowledge=True)
        await caller.publish("com.example.attic.temperature", 15, acknowledge=True)
        await caller.publish("com.example.sensor.temperature", 30, acknowledge=True)
        got = [await prefix.__anext__(), await prefix.__anext__()]
        assert [(e.topic, e.args) for e in got] == [
            ("com.example.sensor.kitchen", (21,)),
            ("com.example.sensor.temperature", (30,)),
        ]
        got = [await wildcard.__anext__(), await wildcard.__anext__()]
        assert [(e.topic, e.args) for e in got] == [
            ("com.example.attic.temperature", (15,)),
            ("com.example.sensor.temperature", (30,)),
        ]
        assert prefix.options == {"match": "prefix"}


# -- event retention ------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
async def test_retained_events(kind: str) -> None:
    async with environment(kind) as env, env.connect() as publisher, env.connect() as late:
        await publisher.publish("com.example.state", "old", retain=True, acknowledge=True)
        await publisher.publish("com.example.state", "current", retain=True, acknowledge=True)
        await publisher.publish("com.example.state", "not kept", acknowledge=True)
        await publisher.publish("com.example.other", "other", retain=True, acknowledge=True)

        state = await late.subscribe("com.example.state", get_retained=True)
        retained = await state.__anext__()
        assert (retained.args, retained.retained, retained.topic) == (
            ("current",), True, "com.example.state",
        )  # fmt: skip
        await publisher.publish("com.example.state", "live", acknowledge=True)
        live = await state.__anext__()
        assert (live.args, live.retained) == (("live",), False)

        # Without get_retained nothing from before; pattern subscriptions get one per topic.
        plain = await late.subscribe("com.example.other")
        everything = await late.subscribe("com.example", match="prefix", get_retained=True)
        first = await everything.__anext__()
        second = await everything.__anext__()
        assert sorted((e.topic, e.args) for e in (first, second)) == [
            ("com.example.other", ("other",)),
            ("com.example.state", ("current",)),
        ]
        assert first.retained
        assert second.retained
        await publisher.publish("com.example.other", "new", acknowledge=True)
        assert (await plain.__anext__()).args == ("new",)


# -- black- and whitelists, publisher exclusion and identification ------------------------------


@pytest.mark.parametrize("kind", KINDS)
async def test_black_and_white_lists(kind: str) -> None:
    async with (
        environment(kind, authenticator=Identities()) as env,
        env.connect(authid="alice") as alice,
        env.connect(authid="bob") as bob,
        env.connect(authid="admin-carol") as carol,
        env.connect(authid="publisher") as publisher,
    ):
        receivers = {"alice": alice, "bob": bob, "carol": carol, "publisher": publisher}
        subscriptions = {
            name: await session.subscribe("com.example.news") for name, session in receivers.items()
        }
        assert alice.session_id is not None
        assert bob.session_id is not None
        cases: list[tuple[str, dict[str, Any]]] = [
            ("exclude", {"exclude": [alice.session_id]}),
            ("exclude one", {"exclude": bob.session_id}),
            ("eligible", {"eligible": (alice.session_id, bob.session_id)}),
            ("exclude_authid", {"exclude_authid": "bob"}),
            ("exclude_authrole", {"exclude_authrole": ["admin"]}),
            ("eligible_authid", {"eligible_authid": ["admin-carol"]}),
            ("eligible_authrole", {"eligible_authrole": "user"}),
            ("both", {"eligible_authrole": "user", "exclude_authid": {"alice"}}),
            ("exclude_me", {"exclude_me": False}),
            ("disclose_me", {"disclose_me": True}),
        ]
        for name, options in cases:
            await publisher.publish("com.example.news", name, **options)
        await publisher.publish("com.example.news", "end", exclude_me=False, acknowledge=True)
        received: dict[str, list[str]] = {}
        for who, subscription in subscriptions.items():
            received[who] = []
            async for event in subscription:
                if event.args == ("end",):
                    break
                received[who].append(event.args[0])
                if event.args == ("disclose_me",):
                    assert event.publisher == publisher.session_id
                    assert event.publisher_authid == "publisher"
                    assert event.publisher_authrole == "user"
                else:
                    assert event.publisher is None
                    assert event.publisher_authid is None
        everyone_else = ["exclude_me", "disclose_me"]
        assert received == {
            "alice": ["exclude one", "eligible", "exclude_authid", "exclude_authrole",
                      "eligible_authrole", *everyone_else],
            "bob": ["exclude", "eligible", "exclude_authrole", "eligible_authrole", "both",
                    *everyone_else],
            "carol": ["exclude", "exclude one", "exclude_authid", "eligible_authid",
                      *everyone_else],
            "publisher": ["exclude_me"],
        }  # fmt: skip


async def test_publish_keywords_on_the_wire() -> None:
    async with environment() as env, env.connect() as publisher:
        await publisher.publish(
            "com.example.topic",
            1,
            retain=True,
            exclude_me=False,
            disclose_me=True,
            exclude=7,
            eligible=[8, 9],
            exclude_authid="mallory",
            exclude_authrole=("guest", "anonymous"),
            eligible_authid=["alice"],
            eligible_authrole="user",
            options={"retain": False, "custom": "kept"},
            acknowledge=True,
            k="v",
        )
        (publish,) = env.sent_of(MessageType.PUBLISH)
        assert publish.options == {
            "retain": True,  # the keyword wins over options=
            "custom": "kept",
            "exclude_me": False,
            "disclose_me": True,
            "exclude": [7],
            "eligible": [8, 9],
            "exclude_authid": ["mallory"],
            "exclude_authrole": ["guest", "anonymous"],
            "eligible_authid": ["alice"],
            "eligible_authrole": ["user"],
            "acknowledge": True,
        }
        assert (publish.args, publish.kwargs) == ([1], {"k": "v"})
        # Keyword arguments named like the keywords travel in a CallResult.
        await publisher.publish(
            "com.example.topic", CallResult(retain="yes", options=1), acknowledge=True
        )
        second = env.sent_of(MessageType.PUBLISH)[1]
        assert (second.options, second.args, second.kwargs) == (
            {"acknowledge": True}, [], {"retain": "yes", "options": 1},
        )  # fmt: skip


async def test_call_keywords_on_the_wire() -> None:
    def echo(*args: Any, **kwargs: Any) -> CallResult:
        return CallResult(*args, **kwargs)

    async with environment() as env, env.connect() as session:
        await session.register("com.example.echo", echo)
        result = await session.call(
            "com.example.echo", 1, disclose_me=True, timeout=3, options={"custom": "x"}, k=2
        )
        assert result == CallResult(1, k=2)
        (call,) = env.sent_of(MessageType.CALL)
        assert call.options == {"custom": "x", "disclose_me": True, "timeout": 3000}
        # A lone CallResult carries keyword arguments the verbs reserve.
        result = await session.call("com.example.echo", CallResult(timeout=5, disclose_me=1))
        assert result == CallResult(timeout=5, disclose_me=1)
        assert env.sent_of(MessageType.CALL)[1].options == {}


# -- revocation -----------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
async def test_registration_revocation(kind: str) -> None:
    async with environment(kind) as env, env.connect() as callee, env.connect() as caller:
        registration = await callee.register("com.example.proc", lambda: "ok")
        kept = await callee.register("com.example.kept", lambda: "kept")
        assert await caller.call("com.example.proc") == "ok"
        assert registration.registration_id is not None
        assert env.realm.dealer.revoke(registration.registration_id, "com.example.maintenance")
        # The UNREGISTERED notice precedes this call's RESULT on the callee's transport.
        assert await callee.call("com.example.kept") == "kept"
        assert not registration.active
        assert registration.revoked == "com.example.maintenance"
        assert kept.active
        assert kept.revoked is None
        with pytest.raises(ApplicationError) as info:
            await caller.call("com.example.proc")
        assert info.value.error == ErrorURI.NO_SUCH_PROCEDURE
        await registration.unregister()  # nothing left to do
        # Without a reason.
        assert kept.registration_id is not None
        assert env.realm.dealer.revoke(kept.registration_id)
        assert await callee.call("wamp.session.count") == 2
        assert kept.revoked == "revoked"
        # The procedure can be registered again.
        again = await callee.register("com.example.proc", lambda: "again")
        assert again.active
        assert await caller.call("com.example.proc") == "again"


@pytest.mark.parametrize("kind", KINDS)
async def test_subscription_revocation(kind: str) -> None:
    handled: list[Event] = []

    async with environment(kind) as env, env.connect() as subscriber, env.connect() as publisher:
        iterated = await subscriber.subscribe("com.example.a")
        with_handler = await subscriber.subscribe("com.example.b", handled.append)
        await publisher.publish("com.example.a", 1, acknowledge=True)
        for subscription, reason in ((iterated, "com.example.closed"), (with_handler, None)):
            assert subscription.subscription_id is not None
            assert env.realm.broker.revoke(subscription.subscription_id, reason)
        # The router's output goes out with its next input: the notices precede
        # this call's RESULT.
        assert await subscriber.call("wamp.session.count") == 2
        received = [event.args async for event in iterated]  # ends with the revocation
        assert received == [(1,)]
        assert iterated.revoked == "com.example.closed"
        assert not iterated.active
        assert with_handler.revoked == "revoked"
        assert not with_handler.active
        await publisher.publish("com.example.b", 2, acknowledge=True)
        await subscriber.call("wamp.session.count")
        assert handled == []
        await iterated.unsubscribe()  # nothing left to do


# -- progressive call invocations ------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
async def test_progressive_call_invocations(kind: str) -> None:
    started: list[InvocationDetails] = []

    async def upload(chunks: Chunks, *, details: InvocationDetails) -> CallResult:
        started.append(details)
        received = [plain(chunk) async for chunk in chunks]
        return CallResult(received, count=chunks.count)

    async with environment(kind) as env, env.connect() as callee, env.connect() as caller:
        await callee.register("com.example.upload", upload, streaming=True)
        async with caller.call_streaming("com.example.upload", disclose_me=True) as call:
            assert call.request_id is None
            await call.send(b"\x00first")
            assert call.request_id is not None
            await call.send()  # an empty chunk
            await call.send("a", "b")
            await call.send(k="v")
            assert not call.answered
            result = await call.finish(b"last")
            assert call.answered
        assert result == CallResult(
            [b"\x00first", None, plain(CallResult("a", "b")), plain(CallResult(k="v")), b"last"],
            count=5,
        )
        (details,) = started  # every chunk went to the one handler
        assert details.caller == caller.session_id
        # A plain call gives the handler one chunk.
        result = await caller.call("com.example.upload", 1, 2)
        assert result == CallResult([{"args": [1, 2], "kwargs": {}}], count=1)
        # So does a streaming call with a single (last) chunk.
        async with caller.call_streaming("com.example.upload") as call:
            assert await call.finish("only") == CallResult(["only"], count=1)
            assert await call.result() == CallResult(["only"], count=1)  # again
        if kind == "memory":
            calls = env.sent_of(MessageType.CALL)
            assert [c.options for c in calls[:5]] == [
                {"disclose_me": True, "progress": True},
                {"progress": True},
                {"progress": True},
                {"progress": True},
                {},
            ]
            assert len({c.request for c in calls[:5]}) == 1
            assert calls[-1].options == {}  # the single chunk went as a plain CALL


@pytest.mark.parametrize("kind", KINDS)
async def test_progressive_call_invocations_with_progressive_results(kind: str) -> None:
    async def double(chunks: Chunks, *, details: InvocationDetails) -> str:
        async for chunk in chunks:
            await details.progress(chunk * 2)
        return "done"

    async with environment(kind) as env, env.connect() as callee, env.connect() as caller:
        await callee.register("com.example.double", double, streaming=True)
        async with caller.call_streaming("com.example.double", receive_progress=True) as call:
            for n in range(3):
                await call.send(n)
                assert await call.__anext__() == n * 2  # one answer per chunk, in step
            await call.send_last(10)
            assert [result async for result in call] == [20, "done"]
            assert await call.result() == "done"
        # finish() skips the progressive results nobody iterated.
        async with caller.call_streaming("com.example.double", receive_progress=True) as call:
            await call.send(1)
            assert await call.finish(2) == "done"


@pytest.mark.parametrize("kind", KINDS)
async def test_streaming_callee_answers_before_the_last_chunk(kind: str) -> None:
    failing = trio.Event()

    async def first_only(chunks: Chunks) -> Any:
        async for chunk in chunks:
            if chunk == "fail":
                failing.set()
                raise ApplicationError("com.example.refused", "no thanks")
            return chunk
        return None

    async with environment(kind) as env, env.connect() as callee, env.connect() as caller:
        await callee.register("com.example.first", first_only, streaming=True)
        async with caller.call_streaming("com.example.first") as call:
            await call.send("one")
            assert await call.result() == "one"
            assert call.answered
            await call.send("two")  # not sent: the call is over
            assert await call.finish("three") == "one"
            with pytest.raises(wamp_core.LocalProtocolError, match="last chunk"):
                await call.send("four")
        async with caller.call_streaming("com.example.first") as call:
            await call.send("fail")
            with pytest.raises(ApplicationError) as info:
                await call.result()
            assert info.value.error == "com.example.refused"
            with pytest.raises(ApplicationError):
                await call.result()  # again
            with pytest.raises(ApplicationError) as info:
                await call.send("more")
            assert info.value.args == ("no thanks",)
        # An error that arrives before it is waited for is raised by send().
        failing = trio.Event()
        async with caller.call_streaming("com.example.first") as call:
            await call.send("fail")
            await failing.wait()  # the callee has queued its ERROR (synchronously) ...
            await callee.call("wamp.session.count")  # ... the router has relayed it ...
            await caller.call("wamp.session.count")  # ... and the caller has read it
            assert call.answered
            with pytest.raises(ApplicationError):
                await call.send("more")
            with pytest.raises(ApplicationError):
                await call.result()
        # The session is fine, and no handler ran twice.
        assert await caller.call("com.example.first", "plain") == "plain"


@pytest.mark.parametrize("kind", KINDS)
async def test_leaving_a_streaming_call_early_cancels_it(kind: str) -> None:
    got: list[Any] = []
    interrupted = trio.Event()
    ready = trio.Event()

    async def collect(chunks: Chunks) -> None:
        try:
            async for chunk in chunks:
                got.append(chunk)
                ready.set()
        finally:
            interrupted.set()

    async with environment(kind) as env, env.connect() as callee, env.connect() as caller:
        await callee.register("com.example.collect", collect, streaming=True)
        async with caller.call_streaming("com.example.collect") as call:
            await call.send(1)
            await ready.wait()
        await interrupted.wait()  # CANCEL reached the callee as INTERRUPT
        assert got == [1]
        with pytest.raises(wamp_core.LocalProtocolError, match="given up"):
            await call.send(2)
        # The body raising cancels it too.
        interrupted = trio.Event()
        ready = trio.Event()

        async def fails_midway() -> None:
            async with caller.call_streaming("com.example.collect") as call:
                await call.send(2)
                await ready.wait()
                raise KeyError("oops")

        with pytest.raises(KeyError):
            await fails_midway()
        await interrupted.wait()
        # Misuse.
        call = caller.call_streaming("com.example.collect")
        assert not call.answered
        with pytest.raises(wamp_core.LocalProtocolError, match="async with"):
            await call.send(1)
        async with call:
            with pytest.raises(wamp_core.LocalProtocolError, match="nothing was sent"):
                await call.result()


async def test_streaming_call_fails_when_the_session_is_lost(
    autojump_clock: trio.testing.MockClock,
) -> None:
    interrupted = trio.Event()
    first = trio.Event()

    async def collect(chunks: Chunks) -> None:
        try:
            async for _ in chunks:
                first.set()
        finally:
            interrupted.set()

    async with environment() as env, env.connect() as callee, env.connect(reconnect=True) as caller:
        await callee.register("com.example.collect", collect, streaming=True)
        async with caller.call_streaming("com.example.collect") as call:
            await call.send(1)
            await first.wait()
            await env.cut(caller)
            with pytest.raises(TransportLost):
                await call.result()
            with pytest.raises(TransportLost):
                await call.send(2)
        await interrupted.wait()  # the router gave the call up when the caller went
        assert await caller.call("wamp.session.count") == 2  # reconnected meanwhile


@pytest.mark.parametrize("kind", KINDS)
async def test_streaming_call_to_a_plain_handler_is_refused(kind: str) -> None:
    runs: list[Any] = []

    def plain(*args: Any) -> str:
        runs.append(args)
        return "plain"

    async with environment(kind) as env, env.connect() as callee, env.connect() as caller:
        await callee.register("com.example.plain", plain)
        async with caller.call_streaming("com.example.plain") as call:
            await call.send(1)
            with pytest.raises(ApplicationError) as info:
                await call.finish(2)
            assert info.value.error == ErrorURI.FEATURE_NOT_SUPPORTED
        assert runs == []  # no chunk started the handler
        assert await caller.call("com.example.plain", 3) == "plain"
        assert runs == [(3,)]


async def test_streaming_needs_the_router_to_support_it() -> None:
    roles = roles_without("dealer", "progressive_call_invocations")
    async with environment(roles=roles) as env, env.connect() as caller:
        async with caller.call_streaming("com.example.any") as call:
            with pytest.raises(wamp_core.LocalProtocolError, match="router did not announce"):
                await call.send(1)
        assert env.sent_of(MessageType.CALL) == []


async def test_streaming_call_timeout(autojump_clock: trio.testing.MockClock) -> None:
    interrupted = trio.Event()

    async def stalls(chunks: Chunks) -> None:
        await wait_forever_recording(interrupted)

    async with (
        environment(mock_clock=True) as env,
        env.connect() as callee,
        env.connect() as caller,
    ):
        await callee.register("com.example.stalls", stalls, streaming=True)
        async with caller.call_streaming("com.example.stalls", timeout=2) as call:
            await call.send(1)
            with pytest.raises(ApplicationError) as info:
                await call.result()
            assert info.value.error == ErrorURI.TIMEOUT
            with pytest.raises(ApplicationError) as info:
                await call.send(2)  # the call is over: its error again
            assert info.value.error == ErrorURI.TIMEOUT
        await interrupted.wait()
        assert env.sent_of(MessageType.CALL)[0].options == {"timeout": 2000, "progress": True}


# -- meta API and testaments -----------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
async def test_meta_api_procedures_and_events(kind: str) -> None:
    async with environment(kind, authenticator=Identities()) as env, env.connect() as watcher:
        joins = await watcher.subscribe("wamp.session.on_join")
        leaves = await watcher.subscribe("wamp.session.on_leave")
        async with env.connect(authid="visitor") as visitor:
            joined = await joins.__anext__()
            (info,) = joined.args
            assert info["session"] == visitor.session_id
            assert info["authid"] == "visitor"
            assert await watcher.call("wamp.session.count") == 2
            listed = await watcher.call("wamp.session.list")
            assert set(listed) == {watcher.session_id, visitor.session_id}
            details = await watcher.call("wamp.session.get", visitor.session_id)
            assert details["authrole"] == "user"
            registration = await visitor.register("com.example.proc", lambda: None)
            found = await watcher.call("wamp.registration.lookup", "com.example.proc")
            assert found == registration.registration_id
            callees = await watcher.call("wamp.registration.list_callees", found)
            assert callees == [visitor.session_id]
            count = await watcher.call("wamp.subscription.count_subscribers", joins.subscription_id)
            assert count == 1
        left = await leaves.__anext__()
        assert left.args == (visitor.session_id, "visitor", "user")
        with pytest.raises(ApplicationError) as info:
            await watcher.call("wamp.session.get", visitor.session_id)
        assert info.value.error == ErrorURI.NO_SUCH_SESSION


async def test_testament_is_published_when_the_transport_is_cut() -> None:
    async with environment() as env, env.connect() as observer:
        wills = await observer.subscribe("com.example.will")
        victims: list[Session] = []
        ended: list[SessionEnded] = []

        async def victim(task_status: trio.TaskStatus[None]) -> None:
            try:
                async with env.connect() as session:
                    await session.call(
                        "wamp.session.add_testament",
                        "com.example.will",
                        ["gone"],
                        {"why": "cut"},
                        publish_options={"disclose_me": True},
                    )
                    victims.append(session)
                    task_status.started()
                    await trio.sleep_forever()
            except SessionEnded as exc:
                ended.append(exc)

        async with trio.open_nursery() as nursery:
            await nursery.start(victim)
            (session,) = victims
            await env.cut(session)
            will = await wills.__anext__()
        assert will.args == ("gone",)
        assert will.kwargs == {"why": "cut"}
        assert will.publisher == session.session_id
        (exc,) = ended
        assert isinstance(exc, TransportLost)
        # A session that leaves normally publishes its testament too; a flushed one
        # does not.
        async with env.connect() as polite:
            await polite.call("wamp.session.add_testament", "com.example.will", ["bye"])
        assert (await wills.__anext__()).args == ("bye",)
        async with env.connect() as flushed:
            await flushed.call("wamp.session.add_testament", "com.example.will", ["never"])
            await flushed.call("wamp.session.flush_testaments")
        await observer.publish("com.example.will", "marker", exclude_me=False)
        assert (await wills.__anext__()).args == ("marker",)


# -- event history -------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
async def test_event_history(kind: str) -> None:
    history = [("com.example.log", "exact", 3), ("com.example.metrics", "prefix", 10)]
    async with (
        environment(kind, event_history=history) as env,
        env.connect() as publisher,
        env.connect() as reader,
    ):
        ids = [
            await publisher.publish("com.example.log", n, acknowledge=True, level="info")
            for n in range(5)
        ]
        await publisher.publish("com.example.metrics.cpu", 0.5, disclose_me=True)
        await publisher.publish("com.example.metrics.ram", 0.7, acknowledge=True)

        log = await reader.subscribe("com.example.log")
        events = await reader.get_events(log)
        assert [e.args for e in events] == [(2,), (3,), (4,)]  # the last 3 are kept
        assert [e.publication_id for e in events] == ids[2:]
        assert all(e.kwargs == {"level": "info"} for e in events)
        assert all(e.topic == "com.example.log" for e in events)
        assert all(isinstance(e.timestamp, str) and e.timestamp.endswith("Z") for e in events)
        newest = await reader.get_events(log, reverse=True, limit=2)
        assert [e.args for e in newest] == [(4,), (3,)]
        after = await reader.get_events(log.subscription_id or 0, after_publication=ids[2])
        assert [e.args for e in after] == [(3,), (4,)]

        metrics = await reader.subscribe("com.example.metrics", match="prefix")
        events = await reader.get_events(metrics)
        assert [(e.topic, e.args) for e in events] == [
            ("com.example.metrics.cpu", (0.5,)),
            ("com.example.metrics.ram", (0.7,)),
        ]
        assert events[0].publisher == publisher.session_id
        assert events[1].publisher is None

        # A subscription of another session, by ID: the topic of an exact one is unknown.
        other = await publisher.subscribe("com.example.log")
        assert other.subscription_id == log.subscription_id  # the router shares it
        unheld = await publisher.subscribe("com.example.metrics.cpu")
        events = await reader.get_events(unheld.subscription_id or 0)
        assert [(e.topic, e.args) for e in events] == [("", (0.5,))]

        nothing = await reader.subscribe("com.example.untracked")
        with pytest.raises(ApplicationError) as info:
            await reader.get_events(nothing)
        assert info.value.error == "wamp.error.history_unavailable"
        with pytest.raises(ApplicationError) as info:
            await reader.get_events(log, colour="red")
        assert info.value.error == ErrorURI.INVALID_ARGUMENT
        pending = Subscription(reader, "com.example.x", {}, None, 1)
        with pytest.raises(ValueError, match="no subscription ID"):
            await reader.get_events(pending)
