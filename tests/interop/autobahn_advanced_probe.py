"""Autobahn|Python (asyncio) clients exercising the Advanced Profile of a router.

Run as ``python autobahn_advanced_probe.py URL SERIALIZER [REALM]`` where URL is
``ws://host:port/path``, ``rs://host:port`` or ``unix:///path``. It opens three
sessions on separate connections (A, B, C; D joins and leaves for the session
meta events, E is used up by the float-timeout experiment) and runs each check
in turn:

* ``progress``: progressive call results (``CallOptions(on_progress=...)``,
  callee calling ``details.progress``);
* ``cancel``: the caller cancels its call future, which makes Autobahn send
  CANCEL without a mode; ``cancel_kill`` / ``cancel_skip``: CANCEL with an
  explicit mode, sent through Autobahn's (private) transport, since its call
  API cannot choose one;
* ``timeout``: ``CallOptions(timeout=...)`` with a callee that never answers;
* ``pattern_registrations``, ``shared_registrations``,
  ``pattern_subscriptions``, ``blackwhite_listing``;
* ``meta``: ``wamp.session.*``, ``wamp.registration.*``,
  ``wamp.subscription.*``, ``wamp.session.on_join`` / ``on_leave``;
* ``testament``: ``wamp.session.add_testament``, then C's connection is
  aborted (no GOODBYE) and B receives the testaments;
* ``autobahn_api``: facts about Autobahn's own API (whether it can ask for
  ``disclose_me``; what a float ``CallOptions.timeout`` does).

Each check's findings (or ``{"exception": ...}``) go into one JSON line on
stdout; exit status 0 when no check raised. Every wait is bounded.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlparse

import txaio

txaio.use_asyncio()

from autobahn.asyncio.rawsocket import WampRawSocketClientFactory  # noqa: E402
from autobahn.asyncio.wamp import ApplicationSession  # noqa: E402
from autobahn.asyncio.websocket import WampWebSocketClientFactory  # noqa: E402
from autobahn.wamp import message  # noqa: E402
from autobahn.wamp.exception import ApplicationError  # noqa: E402
from autobahn.wamp.serializer import (  # noqa: E402
    CBORSerializer,
    JsonSerializer,
    MsgPackSerializer,
)
from autobahn.wamp.types import (  # noqa: E402
    CallOptions,
    ComponentConfig,
    PublishOptions,
    RegisterOptions,
    SubscribeOptions,
)

SERIALIZERS = {"json": JsonSerializer, "msgpack": MsgPackSerializer, "cbor": CBORSerializer}

WAIT = 5.0
"""Seconds any single wait may take before the check fails."""

HANG = 20.0
"""Seconds a hanging callee waits to be released (it should be interrupted first)."""

TIMEOUT_MS = 200
"""CALL.Options.timeout of the timeout check (milliseconds on the wire)."""


async def until(predicate: Callable[[], bool], what: str, timeout: float = WAIT) -> None:
    """Wait until ``predicate()`` holds, at most ``timeout`` seconds."""

    async def poll() -> None:
        while not predicate():
            await asyncio.sleep(0.005)

    try:
        await asyncio.wait_for(poll(), timeout)
    except asyncio.TimeoutError:
        raise AssertionError(f"timed out waiting for {what}") from None


async def bounded(awaitable: Awaitable[Any], what: str, timeout: float = WAIT) -> Any:
    try:
        return await asyncio.wait_for(awaitable, timeout)
    except asyncio.TimeoutError:
        raise AssertionError(f"timed out waiting for {what}") from None


async def error_of(awaitable: Awaitable[Any], what: str) -> str | dict[str, Any]:
    """The ApplicationError URI ``awaitable`` fails with, or what it did instead."""
    try:
        value = await bounded(awaitable, what)
    except ApplicationError as exc:
        error: str = exc.error
        return error
    return {"result": value}


class Peer(ApplicationSession):
    """One session; records the raw INTERRUPTs and CALL ERRORs it receives."""

    def __init__(self, config: Any, name: str) -> None:
        super().__init__(config)
        loop = asyncio.get_running_loop()
        self.name = name
        self.joined: asyncio.Future[Any] = loop.create_future()
        self.gone: asyncio.Future[None] = loop.create_future()
        self.leave_reason: str | None = None
        self.interrupts: list[dict[str, Any]] = []
        self.aborts: list[list[Any]] = []
        self.call_errors: list[str] = []
        self.connection: asyncio.Transport | None = None

    @property
    def id(self) -> int:
        session_id: int = self.joined.result().session
        return session_id

    @property
    def authid(self) -> str:
        authid: str = self.joined.result().authid
        return authid

    def onJoin(self, details: Any) -> None:
        if not self.joined.done():
            self.joined.set_result(details)

    def onMessage(self, msg: Any) -> None:
        if isinstance(msg, message.Interrupt):
            self.interrupts.append({"mode": msg.mode, "reason": msg.reason})
        elif isinstance(msg, message.Error) and msg.request_type == message.Call.MESSAGE_TYPE:
            self.call_errors.append(msg.error)
        elif isinstance(msg, message.Abort):
            self.aborts.append([msg.reason, msg.message])
        super().onMessage(msg)

    def onLeave(self, details: Any) -> Any:
        self.leave_reason = details.reason
        # Autobahn's own onLeave fails the pending requests, then disconnects.
        return super().onLeave(details)

    def onDisconnect(self) -> None:
        super().onDisconnect()
        if not self.gone.done():
            self.gone.set_result(None)


class Hang:
    """A procedure that waits until released or interrupted, and says which.

    Interrupted, it lets the CancelledError out (Autobahn then answers the
    INVOCATION with an ERROR of its choosing) or, given ``answer``, raises
    ApplicationError(answer) instead.
    """

    def __init__(self, answer: str | None = None) -> None:
        loop = asyncio.get_running_loop()
        self.answer = answer
        self.started: asyncio.Future[None] = loop.create_future()
        self.cancelled: asyncio.Future[None] = loop.create_future()
        self.release: asyncio.Future[str] = loop.create_future()

    async def __call__(self) -> str:
        self.started.set_result(None)
        try:
            return await asyncio.wait_for(asyncio.shield(self.release), HANG)
        except asyncio.CancelledError:
            # Autobahn cancels the handler's task on INTERRUPT.
            self.cancelled.set_result(None)
            if self.answer is None:
                raise
        raise ApplicationError(self.answer, "interrupted")


class Probe:
    def __init__(self, url: str, serializer: str, realm: str) -> None:
        self.url = url
        self.serializer = serializer
        self.realm = realm
        self.results: dict[str, Any] = {}
        self.failed: list[str] = []

    async def connect(self, name: str) -> Peer:
        loop = asyncio.get_running_loop()
        session = Peer(ComponentConfig(realm=self.realm), name)
        serializer = SERIALIZERS[self.serializer]()
        parsed = urlparse(self.url)
        host, port = parsed.hostname or "127.0.0.1", parsed.port or 80
        factory: Any
        if parsed.scheme == "ws":
            factory = WampWebSocketClientFactory(
                lambda: session, url=self.url, serializers=[serializer]
            )
            transport, _ = await loop.create_connection(factory, host, port)
        elif parsed.scheme == "rs":
            factory = WampRawSocketClientFactory(lambda: session, serializer=serializer)
            transport, _ = await loop.create_connection(factory, host, port)
        elif parsed.scheme == "unix":
            factory = WampRawSocketClientFactory(lambda: session, serializer=serializer)
            transport, _ = await loop.create_unix_connection(factory, parsed.path)
        else:
            raise SystemExit(f"unsupported URL {self.url}")
        session.connection = transport
        await bounded(asyncio.shield(session.joined), f"{name} to join")
        return session

    async def check(self, name: str, run: Callable[[], Awaitable[Any]]) -> None:
        try:
            self.results[name] = await bounded(run(), name, 3 * WAIT)
        except Exception as exc:
            self.results[name] = {"exception": repr(exc)}
            self.failed.append(name)

    async def run(self) -> dict[str, Any]:
        self.a = await self.connect("A")
        self.b = await self.connect("B")
        self.c = await self.connect("C")
        self.results["sessions"] = {p.name: [p.id, p.authid] for p in (self.a, self.b, self.c)}
        await self.check("autobahn_api", self.autobahn_api)
        await self.check("progress", self.progress)
        await self.check("cancel", self.cancel)
        await self.check("cancel_kill", self.cancel_kill)
        await self.check("cancel_skip", self.cancel_skip)
        await self.check("timeout", self.timeout)
        await self.check("pattern_registrations", self.pattern_registrations)
        await self.check("shared_registrations", self.shared_registrations)
        await self.check("pattern_subscriptions", self.pattern_subscriptions)
        await self.check("blackwhite_listing", self.blackwhite_listing)
        await self.check("meta", self.meta)
        await self.check("testament", self.testament)
        await self.check("leave", self.leave_all)
        self.results["failed"] = self.failed
        return self.results

    async def leave_all(self) -> list[str | None]:
        """A and B leave with GOODBYE (C is gone already, unless a check failed)."""
        peers = (self.a, self.b, self.c)
        for peer in peers:
            if peer.is_attached():
                peer.leave()
        for peer in peers:
            await bounded(asyncio.shield(peer.gone), f"{peer.name} to disconnect")
        return [self.a.leave_reason, self.b.leave_reason]

    # -- checks ------------------------------------------------------------------------

    async def autobahn_api(self) -> dict[str, Any]:
        """What Autobahn's API offers, as evidence for the report."""
        found: dict[str, Any] = {
            "publish_disclose_me": "disclose_me" in PublishOptions.__slots__,
            "call_disclose_me": "disclose_me" in CallOptions.__slots__,
            "register_disclose_caller": "disclose_caller" in RegisterOptions.__slots__,
        }
        caller = self.a._session_roles["caller"]
        found["caller_announces_call_timeout"] = bool(getattr(caller, "call_timeout", None))
        # CallOptions documents ``timeout`` as seconds (a float): what happens to
        # one? Tried on a session of its own, E, since Autobahn has already
        # drawn the CALL's request ID when it fails, and the next request of E
        # then skips one (BP: session-scope IDs MUST be incremented by 1).
        e = await self.connect("E")
        try:
            e.call("com.example.countdown", 1, options=CallOptions(timeout=0.5))
        except Exception as exc:
            found["float_timeout"] = type(exc).__name__
        else:
            found["float_timeout"] = "sent"
        aborts = len(e.aborts)
        next_call: Any
        try:
            next_call = await bounded(e.call("wamp.session.count"), "E's next call")
        except ApplicationError as exc:
            next_call = exc.error
        except Exception as exc:
            next_call = repr(exc)
        if e.is_attached():  # not aborted after all
            e.leave()
        await bounded(asyncio.shield(e.gone), "E to disconnect")
        found["next_call"] = next_call
        found["next_call_abort"] = e.aborts[aborts:]
        found["e_leave_reason"] = e.leave_reason
        return found

    async def progress(self) -> dict[str, Any]:
        seen_progress: list[bool] = []

        async def countdown(n: int, details: Any = None) -> str:
            seen_progress.append(details.progress is not None)
            if details.progress is not None:
                for i in range(n, 0, -1):
                    details.progress(i, left=i - 1)
            return "liftoff"

        await self.b.register(
            countdown, "com.example.countdown", options=RegisterOptions(details_arg="details")
        )
        chunks: list[Any] = []

        def on_progress(*args: Any, **kwargs: Any) -> None:
            chunks.append([list(args), kwargs])

        final = await bounded(
            self.a.call("com.example.countdown", 3, options=CallOptions(on_progress=on_progress)),
            "progressive call",
        )
        plain = await bounded(self.a.call("com.example.countdown", 2), "plain call")
        return {
            "chunks": chunks,
            "final": final,
            "plain": plain,
            "callee_saw_progress": list(seen_progress),
        }

    async def cancel(self) -> dict[str, Any]:
        """``call(...).cancel()``: Autobahn sends CANCEL (no mode)."""
        hang = Hang()
        await self.b.register(hang, "com.example.hang.cancel")
        interrupts, errors = len(self.b.interrupts), len(self.a.call_errors)
        call = self.a.call("com.example.hang.cancel")
        await bounded(asyncio.shield(hang.started), "the callee to start")
        call.cancel()
        try:
            await call
        except asyncio.CancelledError:
            caller_saw = "CancelledError"
        else:
            caller_saw = "result"
        await bounded(asyncio.shield(hang.cancelled), "the callee to be cancelled")
        await until(lambda: len(self.a.call_errors) > errors, "ERROR for the canceled call")
        after = await bounded(self.a.call("com.example.countdown", 1), "a call after cancel")
        return {
            "caller_saw": caller_saw,
            "callee_cancelled": hang.cancelled.done(),
            "interrupts": self.b.interrupts[interrupts:],
            "router_error": self.a.call_errors[errors:],
            "call_after": after,
        }

    async def _explicit_cancel(
        self, procedure: str, mode: str, answer: str | None = None
    ) -> tuple[Hang, Any, int, int]:
        hang = Hang(answer)
        await self.b.register(hang, procedure)
        interrupts = len(self.b.interrupts)
        call = self.a.call(procedure)
        await bounded(asyncio.shield(hang.started), "the callee to start")
        # Autobahn's call API cannot choose a cancel mode: send CANCEL ourselves.
        (request,) = [r for r, req in self.a._call_reqs.items() if req.procedure == procedure]
        transport = self.a._transport
        assert transport is not None
        transport.send(message.Cancel(request, mode=mode))
        return hang, call, interrupts, request

    async def cancel_kill(self) -> dict[str, Any]:
        """mode=kill: INTERRUPT; the caller gets the callee's answer to it.

        Twice: with a handler that answers ``wamp.error.canceled`` itself, and
        with one that lets Autobahn answer (``autobahn_answer``)."""
        hang, call, interrupts, _ = await self._explicit_cancel(
            "com.example.hang.kill", "kill", answer="wamp.error.canceled"
        )
        error = await error_of(call, "the killed call's answer")
        plain, plain_call, _, _ = await self._explicit_cancel("com.example.hang.kill_plain", "kill")
        autobahn_answer = await error_of(plain_call, "the killed call's answer")
        return {
            "caller_error": error,
            "callee_cancelled": [hang.cancelled.done(), plain.cancelled.done()],
            "interrupts": self.b.interrupts[interrupts:],
            "autobahn_answer": autobahn_answer,
        }

    async def cancel_skip(self) -> dict[str, Any]:
        """mode=skip: ERROR canceled at once, no INTERRUPT; the late YIELD is dropped."""
        hang, call, interrupts, _ = await self._explicit_cancel("com.example.hang.skip", "skip")
        error = await error_of(call, "the skipped call's ERROR")
        hang.release.set_result("too late")
        # The callee's late YIELD must be dropped by the router: the next call works.
        after = await bounded(self.a.call("com.example.countdown", 1), "a call after skip")
        return {
            "caller_error": error,
            "callee_cancelled": hang.cancelled.done(),
            "interrupts": self.b.interrupts[interrupts:],
            "call_after": after,
        }

    async def timeout(self) -> dict[str, Any]:
        hang = Hang()
        await self.b.register(hang, "com.example.hang.timeout")
        interrupts = len(self.b.interrupts)
        started = time.monotonic()
        error = await error_of(
            self.a.call("com.example.hang.timeout", options=CallOptions(timeout=TIMEOUT_MS)),
            "the timed out call",
        )
        elapsed = time.monotonic() - started
        await bounded(asyncio.shield(hang.cancelled), "the callee to be interrupted")
        return {
            "caller_error": error,
            "elapsed": elapsed,
            "callee_cancelled": hang.cancelled.done(),
            "interrupts": self.b.interrupts[interrupts:],
        }

    async def pattern_registrations(self) -> dict[str, Any]:
        def reporter(who: str) -> Callable[..., Any]:
            def endpoint(*args: Any, details: Any = None) -> list[Any]:
                return [who, details.procedure, list(args)]

            return endpoint

        options = RegisterOptions(details_arg="details")
        b, c = self.b, self.c
        prefix = await b.register(
            reporter("B prefix"), "com.example.pfx",
            options=RegisterOptions(match="prefix", details_arg="details"),
        )  # fmt: skip
        wildcard = await b.register(
            reporter("B wildcard"), "com.example..wild",
            options=RegisterOptions(match="wildcard", details_arg="details"),
        )  # fmt: skip
        await c.register(reporter("C exact"), "com.example.pfx.exact", options=options)
        await c.register(
            reporter("C prefix"), "com.example.pfx.deep",
            options=RegisterOptions(match="prefix", details_arg="details"),
        )  # fmt: skip
        a = self.a
        self.pattern_ids = {"prefix": prefix.id, "wildcard": wildcard.id}
        return {
            "prefix": await bounded(a.call("com.example.pfx.one.two", 1), "prefix call"),
            "wildcard": await bounded(a.call("com.example.any.wild", 2), "wildcard call"),
            "exact_wins": await bounded(a.call("com.example.pfx.exact"), "exact call"),
            "longest_prefix_wins": await bounded(a.call("com.example.pfx.deep.x"), "deep call"),
            "no_match": await error_of(a.call("com.example.a.b.wild"), "unmatched call"),
        }

    async def shared_registrations(self) -> dict[str, Any]:
        a, b, c = self.a, self.b, self.c
        ids = {}
        for policy in ("roundrobin", "first", "last"):
            regs = [
                await peer.register(
                    lambda who=peer.name: who,
                    f"com.example.shared.{policy}",
                    options=RegisterOptions(invoke=policy),
                )
                for peer in (b, c)
            ]
            ids[policy] = [reg.id for reg in regs]
        self.shared_id = ids["roundrobin"][0]
        calls = {
            policy: [
                await bounded(a.call(f"com.example.shared.{policy}"), f"{policy} call")
                for _ in range(4)
            ]
            for policy in ("roundrobin", "first", "last")
        }
        try:
            await a.register(
                lambda: "A",
                "com.example.shared.roundrobin",
                options=RegisterOptions(invoke="single"),
            )
            mismatch: Any = "registered"
        except ApplicationError as exc:
            mismatch = exc.error
        return {
            "same_registration": all(len(set(pair)) == 1 for pair in ids.values()),
            "calls": calls,
            "policy_mismatch": mismatch,
        }

    async def pattern_subscriptions(self) -> dict[str, Any]:
        events: list[dict[str, Any]] = []

        def recorder(kind: str) -> Callable[..., None]:
            def handler(*args: Any, details: Any = None) -> None:
                events.append(
                    {
                        "kind": kind,
                        "args": list(args),
                        "topic": details.topic,
                        "subscription": details.subscription.id,
                        "publisher": details.publisher,
                    }
                )

            return handler

        b = self.b
        prefix = await b.subscribe(
            recorder("prefix"), "com.example.pfxtopic",
            options=SubscribeOptions(match="prefix", details_arg="details"),
        )  # fmt: skip
        wildcard = await b.subscribe(
            recorder("wildcard"), "com.example..status",
            options=SubscribeOptions(match="wildcard", details_arg="details"),
        )  # fmt: skip
        exact = await b.subscribe(
            recorder("exact"), "com.example.pfxtopic.a",
            options=SubscribeOptions(details_arg="details"),
        )  # fmt: skip
        self.pattern_subscription_ids = {
            "prefix": prefix.id, "wildcard": wildcard.id, "exact": exact.id,
        }  # fmt: skip
        ack = PublishOptions(acknowledge=True)
        await self.a.publish("com.example.pfxtopic.a", 1, options=ack)
        await self.a.publish("com.example.pfxtopic.b.c", 2, options=ack)
        await self.a.publish("com.example.x.status", 3, options=ack)
        await self.a.publish("com.example.x.y.status", 4, options=ack)  # matches nothing
        await self.a.publish("com.example.pfxtopic.end", "end", options=ack)
        await until(lambda: any(e["args"] == ["end"] for e in events), "the last event")
        ids = {v: k for k, v in self.pattern_subscription_ids.items()}
        for event in events:
            event["subscription"] = ids.get(event["subscription"], event["subscription"])
        return {"events": events[:-1]}

    async def blackwhite_listing(self) -> dict[str, Any]:
        """Who of A (the publisher), B and C gets each publication."""
        a, b, c = self.a, self.b, self.c
        inbox: dict[str, list[str]] = {"A": [], "B": [], "C": []}
        subscription_ids = []
        for peer in (a, b, c):
            sub = await peer.subscribe(
                lambda label, box=inbox[peer.name]: box.append(label), "com.example.bw"
            )
            subscription_ids.append(sub.id)
        self.bw_subscription = subscription_ids[0]

        async def receivers(label: str, **options: Any) -> list[str]:
            await a.publish(
                "com.example.bw", label, options=PublishOptions(acknowledge=True, **options)
            )
            # Events from one publisher arrive in order: once every session has
            # the marker, everything published before it has arrived too.
            marker = f"{label}/end"
            await a.publish(
                "com.example.bw", marker, options=PublishOptions(acknowledge=True, exclude_me=False)
            )
            await until(lambda: all(marker in box for box in inbox.values()), marker)
            return [name for name, box in inbox.items() if label in box]

        cases: dict[str, dict[str, Any]] = {
            "default": {},
            "exclude_me_false": {"exclude_me": False},
            "exclude": {"exclude": [b.id]},
            "exclude_with_me": {"exclude": [b.id], "exclude_me": False},
            "eligible": {"eligible": [b.id], "exclude_me": False},
            "eligible_and_exclude": {"eligible": [b.id, c.id], "exclude": [c.id]},
            "exclude_authid": {"exclude_authid": [c.authid]},
            "eligible_authid": {"eligible_authid": [a.authid, c.authid], "exclude_me": False},
            "exclude_authrole": {"exclude_authrole": ["anonymous"], "exclude_me": False},
            "eligible_authrole": {"eligible_authrole": ["anonymous"], "exclude_me": False},
            "eligible_authrole_other": {"eligible_authrole": ["admin"]},
        }
        seen = {label: await receivers(label, **options) for label, options in cases.items()}
        return {"same_subscription": len(set(subscription_ids)) == 1, "receivers": seen}

    async def meta(self) -> dict[str, Any]:
        a, b, c = self.a, self.b, self.c
        joins: list[Any] = []
        leaves: list[Any] = []
        await a.subscribe(joins.append, "wamp.session.on_join")
        await a.subscribe(lambda *args: leaves.append(list(args)), "wamp.session.on_leave")
        found: dict[str, Any] = {}

        async def call(procedure: str, *args: Any, **kwargs: Any) -> Any:
            return await bounded(a.call(procedure, *args, **kwargs), procedure)

        found["session_count"] = await call("wamp.session.count")
        found["session_count_filtered"] = await call("wamp.session.count", ["admin"])
        found["session_list"] = sorted(await call("wamp.session.list"))
        found["session_ids"] = sorted([a.id, b.id, c.id])
        found["session_get"] = await call("wamp.session.get", b.id)
        found["session_get_missing"] = await error_of(
            a.call("wamp.session.get", 2**53), "session.get of nobody"
        )
        found["registration_list"] = await call("wamp.registration.list")
        found["registration_ids"] = {**self.pattern_ids, "shared": self.shared_id}
        found["registration_lookup"] = {
            "prefix": await call(
                "wamp.registration.lookup", "com.example.pfx", {"match": "prefix"}
            ),
            "exact_of_prefix": await call("wamp.registration.lookup", "com.example.pfx"),
            "shared": await call("wamp.registration.lookup", "com.example.shared.roundrobin"),
        }
        found["registration_match"] = {
            "prefix": await call("wamp.registration.match", "com.example.pfx.zzz"),
            "wildcard": await call("wamp.registration.match", "com.example.q.wild"),
            "none": await call("wamp.registration.match", "com.example.nothing"),
        }
        found["registration_get"] = await call("wamp.registration.get", self.shared_id)
        found["registration_callees"] = sorted(
            await call("wamp.registration.list_callees", self.shared_id)
        )
        found["subscription_ids"] = {**self.pattern_subscription_ids, "bw": self.bw_subscription}
        found["subscription_lookup"] = {
            "exact": await call("wamp.subscription.lookup", "com.example.bw"),
            "prefix": await call(
                "wamp.subscription.lookup", "com.example.pfxtopic", {"match": "prefix"}
            ),
            "none": await call("wamp.subscription.lookup", "com.example.nothing"),
        }
        found["subscription_match"] = sorted(
            await call("wamp.subscription.match", "com.example.pfxtopic.a")
        )
        found["subscription_subscribers"] = sorted(
            await call("wamp.subscription.list_subscribers", self.bw_subscription)
        )
        d = await self.connect("D")
        await until(lambda: any(j.get("session") == d.id for j in joins), "on_join of D")
        found["on_join"] = next(j for j in joins if j.get("session") == d.id)
        found["d"] = [d.id, d.authid]
        d.leave()
        await bounded(asyncio.shield(d.gone), "D to disconnect")
        await until(lambda: any(args[0] == d.id for args in leaves), "on_leave of D")
        found["on_leave"] = next(args for args in leaves if args[0] == d.id)
        found["d_leave_reason"] = d.leave_reason
        found["session_count_after"] = await call("wamp.session.count")
        self.leaves = leaves
        return found

    async def testament(self) -> dict[str, Any]:
        a, b, c = self.a, self.b, self.c
        events: list[dict[str, Any]] = []

        def on_testament(*args: Any, details: Any = None, **kwargs: Any) -> None:
            events.append(
                {
                    "topic": details.topic,
                    "args": list(args),
                    "kwargs": kwargs,
                    "publisher": [
                        details.publisher,
                        details.publisher_authid,
                        details.publisher_authrole,
                    ],
                }
            )

        await b.subscribe(
            on_testament, "com.example.testament",
            options=SubscribeOptions(match="prefix", details_arg="details"),
        )  # fmt: skip
        add = "wamp.session.add_testament"
        await bounded(
            c.call(
                add, "com.example.testament.destroyed", ["C is gone"], {"who": c.id},
                publish_options={"disclose_me": True},
            ),
            "add_testament (destroyed, disclosed)",
        )  # fmt: skip
        await bounded(
            c.call(add, "com.example.testament.detached", ["C detached"], scope="detached"),
            "add_testament (detached)",
        )
        await bounded(c.call(add, "com.example.testament.flushed", ["never"]), "add_testament")
        await bounded(c.call(add, "com.example.testament.flushed.no", []), "add_testament")
        # Flushing "destroyed" drops the two above and the disclosed one; add it again.
        await bounded(c.call("wamp.session.flush_testaments"), "flush_testaments")
        await bounded(
            c.call(
                add, "com.example.testament.destroyed", ["C is gone"], {"who": c.id},
                publish_options={"disclose_me": True},
            ),
            "add_testament (again)",
        )  # fmt: skip
        assert c.connection is not None
        c.connection.abort()  # no GOODBYE: the router notices the lost transport
        await bounded(asyncio.shield(c.gone), "C to notice its lost connection")
        await until(lambda: len(events) >= 2, "the testaments")
        await until(lambda: any(args[0] == c.id for args in self.leaves), "on_leave of C")
        callees = await bounded(
            a.call("wamp.registration.list_callees", self.shared_id), "list_callees"
        )
        calls = [
            await bounded(a.call("com.example.shared.roundrobin"), "shared call") for _ in range(2)
        ]
        return {
            "events": events,
            "c": [c.id, c.authid],
            "c_leave_reason": c.leave_reason,
            "on_leave": next(args for args in self.leaves if args[0] == c.id),
            "shared_callees_after": callees,
            "b": b.id,
            "shared_calls_after": calls,
        }


async def main(url: str, serializer: str, realm: str) -> int:
    probe = Probe(url, serializer, realm)
    results = await asyncio.wait_for(probe.run(), 60)
    print(json.dumps(results))
    return 1 if results["failed"] else 0


if __name__ == "__main__":
    sys.exit(
        asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3] if len(sys.argv) > 3 else "realm1"))
    )
