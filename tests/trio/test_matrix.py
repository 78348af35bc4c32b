"""Every transport x serializer combination through a real router on loopback:
RPC and PubSub with a binary payload, and a subscriber that never reads."""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any

import pytest
import trio

import wamp_core
from tests.trio.test_rawsocket import make_tls_contexts
from wamp_trio import (
    CallResult,
    Endpoint,
    RouterHost,
    TcpListener,
    TlsConfig,
    UnixListener,
    connect,
    open_transport,
    serve_router,
)

PLAIN = ["json", "msgpack", "cbor"]
BATCHED = [f"wamp.2.{codec}.batched" for codec in PLAIN]
MATRIX = (
    [("ws", s) for s in PLAIN + BATCHED]
    + [("lp", s) for s in PLAIN + BATCHED]
    + [("rs", s) for s in PLAIN]
    + [("unix", s) for s in PLAIN]
)


def url_of(endpoints: list[Endpoint], transport: str) -> str:
    prefix = {"ws": "ws", "lp": "http", "rs": "rs", "unix": "unix", "wss": "wss",
              "rss": "rss", "https": "https"}[transport]  # fmt: skip
    return next(e.url for e in endpoints if e.url.split(":", 1)[0] == prefix)


async def exercise(url: str, serializer: str, ssl_context: ssl.SSLContext | None = None) -> None:
    """RPC (args, kwargs, bytes, errors) and PubSub between two sessions on ``url``."""

    async def echo(*args: Any, **kwargs: Any) -> CallResult:
        return CallResult(*args, **kwargs)

    with trio.fail_after(20):
        async with (
            connect(url, serializer=serializer, ssl_context=ssl_context) as callee,
            connect(url, serializer=serializer, ssl_context=ssl_context) as caller,
        ):
            await callee.register("com.example.echo", echo)
            result = await caller.call("com.example.echo", 1, b"\x00\xffbin", "é", k=[True, None])
            assert isinstance(result, CallResult)
            assert result.args == (1, b"\x00\xffbin", "é")
            assert result.kwargs == {"k": [True, None]}
            subscription = await callee.subscribe("com.example.topic")
            for n in range(20):
                await caller.publish("com.example.topic", n, blob=bytes([n]) * 100)
            await caller.publish("com.example.topic", "last", acknowledge=True)
            received = []
            async for event in subscription:
                received.append(event.args[0])
                if event.args[0] == "last":
                    break
            assert received == [*range(20), "last"]  # per-publisher order, nothing lost


@pytest.mark.parametrize(("transport", "serializer"), MATRIX)
async def test_rpc_and_pubsub(transport: str, serializer: str, tmp_path: Path) -> None:
    host = RouterHost(wamp_core.Router(["realm1"]))
    listeners = [TcpListener(port=0), UnixListener(path=str(tmp_path / "w.sock"))]
    async with trio.open_nursery() as nursery:
        endpoints = await nursery.start(serve_router, host, listeners)
        await exercise(url_of(endpoints, transport), serializer)
        await host.shutdown()
        nursery.cancel_scope.cancel()
    assert host.router.sessions == {}


@pytest.mark.parametrize(("transport", "serializer"), [("wss", "json"), ("rss", "cbor"),
                                                       ("https", "msgpack")])  # fmt: skip
async def test_rpc_and_pubsub_over_tls(transport: str, serializer: str, tmp_path: Path) -> None:
    _, client_context = make_tls_contexts(tmp_path)  # also writes cert.pem and key.pem
    tls = TlsConfig(cert=str(tmp_path / "cert.pem"), key=str(tmp_path / "key.pem"))
    host = RouterHost(wamp_core.Router(["realm1"]))
    async with trio.open_nursery() as nursery:
        endpoints = await nursery.start(serve_router, host, [TcpListener(port=0, tls=tls)])
        await exercise(url_of(endpoints, transport), serializer, client_context)
        await host.shutdown()
        nursery.cancel_scope.cancel()


async def test_subscriber_that_never_reads_does_not_stall_others() -> None:
    """A RawSocket subscriber joins, subscribes and then never reads again: the
    publisher and a second subscriber are not slowed, and the stalled one's
    queue stays bounded (its events are dropped and counted)."""
    host = RouterHost(wamp_core.Router(["realm1"]), queue_size=64)
    count, blob = 3000, b"x" * 10_000  # 30 MB: far more than the socket buffers hold
    async with trio.open_nursery() as nursery:
        endpoints = await nursery.start(serve_router, host, [TcpListener(port=0)])
        url = url_of(endpoints, "rs")
        async with open_transport(url, "msgpack") as stalled:
            client = wamp_core.ClientSession(stalled.serializer)
            client.join("realm1")
            with trio.fail_after(10):
                while not client.subscriptions:
                    for data in client.data_to_send():
                        await stalled.send(data)
                    for happened in client.receive_data(await stalled.receive()):
                        assert not isinstance(happened, wamp_core.SessionAborted)
                        if isinstance(happened, wamp_core.SessionJoined):
                            client.subscribe("com.example.firehose")
            # From here on nobody reads from `stalled`.
            with trio.fail_after(60):
                async with connect(url, serializer="cbor") as fast, connect(url) as publisher:
                    subscription = await fast.subscribe(
                        "com.example.firehose", queue_size=count + 1
                    )
                    for n in range(count):
                        await publisher.publish("com.example.firehose", n, blob)
                    await publisher.publish("com.example.firehose", "end", acknowledge=True)
                    seen = 0
                    async for event in subscription:
                        if event.args[0] == "end":
                            break
                        assert event.args[0] == seen
                        seen += 1
                    assert seen == count
            slow = next(c for c in host.connections if c.transport.serializer.codec == "msgpack")
            assert slow.dropped > 0
            assert slow.peak_queued <= 64
        await host.shutdown()
        nursery.cancel_scope.cancel()
