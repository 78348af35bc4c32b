"""The echo server answers a message and every message buffered behind it in one
write, whichever write methods its transport has, and over real loopback
connections."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest
import trio

import wamp_core
from tests.bench import echo_connection, serve_echo
from wamp_trio import TransportClosed, open_transport

JSON = wamp_core.get_serializer("json")


def calls(count: int) -> list[wamp_core.Message]:
    return [
        wamp_core.Call(request, {}, "bench.echo", [f"arg {request}"], {"n": request})
        for request in range(1, count + 1)
    ]


class PlainTransport:
    """Holds ``incoming`` as received together (one ``receive``, the rest buffered),
    then closes; records its writes. Only ``send``: no batched writes."""

    serializer = JSON

    def __init__(self, incoming: list[bytes]) -> None:
        self.info: dict[str, Any] = {"type": "fake"}
        self.incoming = list(incoming)
        self.writes: list[tuple[str, list[bytes]]] = []

    async def receive(self) -> bytes:
        await trio.lowlevel.checkpoint()
        if not self.incoming:
            raise TransportClosed("done")
        return self.incoming.pop(0)

    def receive_buffered(self) -> bytes | None:
        return self.incoming.pop(0) if self.incoming else None

    async def send(self, data: bytes) -> None:
        await trio.lowlevel.checkpoint()
        self.writes.append(("send", [data]))

    async def aclose(self) -> None:
        pass

    def results(self) -> list[Any]:
        return [m for _, chunks in self.writes for data in chunks for m in JSON.decode(data)]


class BatchingTransport(PlainTransport):
    """Also ``send_many``, and ``try_send_many`` answering ``verdict`` (+ ``flush``)."""

    def __init__(self, incoming: list[bytes], verdict: bool | None) -> None:
        super().__init__(incoming)
        self.verdict = verdict

    async def send_many(self, messages: Sequence[bytes]) -> None:
        await trio.lowlevel.checkpoint()
        self.writes.append(("send_many", list(messages)))

    def try_send_many(self, messages: Sequence[bytes]) -> bool | None:
        if self.verdict is not None:
            self.writes.append(("try_send_many", list(messages)))
        return self.verdict

    async def flush(self) -> None:
        await trio.lowlevel.checkpoint()
        self.writes.append(("flush", []))


def check_results(results: list[Any], count: int) -> None:
    assert [type(m) for m in results] == [wamp_core.Result] * count
    assert [(m.request, m.args, m.kwargs) for m in results] == [
        (n, [f"arg {n}"], {"n": n}) for n in range(1, count + 1)
    ]


@pytest.mark.parametrize(
    ("verdict", "methods"),
    [
        (True, ["try_send_many"]),  # all written at once
        (False, ["try_send_many", "flush"]),  # the socket took part: flush the rest
        (None, ["send_many"]),  # refused (TLS, a write in progress)
    ],
)
async def test_calls_received_together_are_answered_in_one_write(
    verdict: bool | None, methods: list[str]
) -> None:
    incoming = JSON.encode_many(calls(5))
    # Not answered: it must not cost a write of its own, nor break the batch.
    incoming.insert(2, JSON.encode(wamp_core.Publish(99, {}, "t")))
    transport = BatchingTransport(incoming, verdict)
    await echo_connection(transport)
    assert [method for method, _ in transport.writes] == methods
    assert len(transport.writes[0][1]) == 5  # the five RESULTs, in one write
    check_results(transport.results(), 5)


async def test_a_transport_without_batched_writes_gets_one_send_each() -> None:
    transport = PlainTransport(JSON.encode_many(calls(3)))
    await echo_connection(transport)
    assert [method for method, _ in transport.writes] == ["send"] * 3
    check_results(transport.results(), 3)


@pytest.mark.parametrize(("scheme", "codec"), [("ws", "json"), ("rs", "msgpack")])
async def test_calls_sent_in_one_write_all_get_their_result(scheme: str, codec: str) -> None:
    serializer = wamp_core.get_serializer(codec)
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            urls = await nursery.start(serve_echo, "127.0.0.1", 0)
            async with open_transport(urls[scheme], serializer) as transport:
                await transport.send(serializer.encode(wamp_core.Hello("realm1", {"roles": {}})))
                (welcome,) = serializer.decode(await transport.receive())
                assert welcome.type is wamp_core.MessageType.WELCOME
                # One write: the echo server reads them together.
                await transport.send_many(serializer.encode_many(calls(20)))  # type: ignore[attr-defined]
                results: list[Any] = []
                while len(results) < 20:
                    results += serializer.decode(await transport.receive())
            nursery.cancel_scope.cancel()
    check_results(results, 20)
