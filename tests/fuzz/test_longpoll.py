"""Fuzzing HTTP long-poll: the core's ``LongPollEndpoint`` driven by random
request sequences, and the adapter's ``LongPollServer`` fed random HTTP.

* Core: random (method, path, body) requests, random router-side sends and
  closes, held receives finished or abandoned, time passing and expiry. Every
  answer is a response with a known status and consistent headers, or a wait;
  the endpoint's bookkeeping stays consistent.
* Adapter: random request heads, bodies, chunked encodings and pipelined
  requests on one keep-alive connection. ``serve_http`` never raises and every
  byte it writes is well-formed HTTP/1.1 (parsed with h11 as a client).
"""

from __future__ import annotations

import itertools
import json
from typing import Any

import h11
import trio
import trio.testing
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wamp_core import (
    LongPollClosed,
    LongPollEndpoint,
    LongPollMessage,
    LongPollOpened,
    LongPollResponse,
    LongPollState,
    LongPollTransport,
    LongPollWait,
)
from wamp_trio._longpoll import LongPollServer
from wamp_trio._transport import MessageTransport, TransportClosed

FUZZ = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
STATUSES = {200, 204, 400, 404, 405, 413, 503}
rare = st.integers(0, 9).map(lambda n: n == 7)

protocol_names = st.sampled_from(
    ["wamp.2.json", "wamp.2.msgpack.batched", "wamp.2.cbor", "mqtt", "wamp.2.json.batched"]
)
open_bodies = st.one_of(
    st.lists(protocol_names, min_size=1, max_size=3).map(
        lambda names: json.dumps({"protocols": names}).encode()
    ),
    st.sampled_from(
        [
            b"",
            b"{}",
            b"[]",
            b'{"protocols": []}',
            b'{"protocols": [1]}',
            b'{"protocols": "x"}',
            b"\xff",
            b"[" * 5000,
            b'{"protocols": ["wamp.2.json"], "x": ' + b"1" * 5000 + b"}",
            b'{"protocols": ["\\ud800"]}',
            b"1e999",
            b"NaN",
        ]
    ),
    st.binary(max_size=30),
)


def ids() -> Any:
    counter = itertools.count(1)
    return lambda: f"t{next(counter)}"


@st.composite
def targets(draw: st.DrawFn, base: str = "/lp") -> str:
    kind = draw(st.integers(0, 9))
    known = draw(st.sampled_from(["t1", "t2", "t3", "x", "", "t1/t1", "..", "t1?"]))
    operation = draw(st.sampled_from(["send", "receive", "close", "open", "", "SEND"]))
    query = draw(st.sampled_from(["", "", "?x=1", "?", "?a/b/c"]))
    if kind <= 2:
        return f"{base}/open{query}"
    if kind <= 8:
        return f"{base}/{known}/{operation}{query}"
    return draw(st.sampled_from(["/", base, base + "/", "/lpx/open", "*", "/lp//open"]))


# -- the core endpoint ------------------------------------------------------------------------


def check_response(response: LongPollResponse, ack: int) -> None:
    assert response.status in STATUSES | {ack}
    headers = dict(response.headers)
    assert len(headers) == len(response.headers)  # no header twice
    assert headers["cache-control"] == "no-store"
    if response.status == 204:
        assert "content-length" not in headers
        assert response.body == b""
    else:
        assert int(headers["content-length"]) == len(response.body)
    if response.status >= 400:
        assert response.event is None
        assert headers["content-type"].startswith("text/plain")
        response.body.decode("utf-8")


actions = st.one_of(
    st.tuples(st.just("request"), st.sampled_from(["POST"] * 6 + ["GET", "OPTIONS", "PUT", "post"]),
              targets(), open_bodies | st.binary(max_size=20)),
    st.tuples(st.just("router_send"), st.sampled_from(["t1", "t2", "t3"]), st.binary(max_size=9)),
    st.tuples(st.just("router_close"), st.sampled_from(["t1", "t2", "t3"])),
    st.tuples(st.just("finish"), st.integers(0, 3)),
    st.tuples(st.just("abandon"), st.integers(0, 3)),
    st.tuples(st.just("time"), st.floats(0, 40)),
)  # fmt: skip


@FUZZ
@given(
    script=st.lists(actions, max_size=25),
    ack=st.sampled_from([200, 202, 204]),
    bytes_target=st.booleans(),
)
def test_endpoint_answers_every_request_sequence(
    script: list[tuple[Any, ...]], ack: int, bytes_target: bool
) -> None:
    endpoint = LongPollEndpoint(
        "/lp",
        max_transports=2,
        idle_timeout=10.0,
        max_body_size=4096,
        max_queue_bytes=16,
        max_queue_messages=3,
        ack_status=ack,
        id_source=ids(),
    )
    now = 0.0
    opened: dict[str, LongPollTransport] = {}  # transports whose session is attached
    waits: list[LongPollWait] = []
    for action in script:
        kind = action[0]
        if kind == "request":
            _, method, target, body = action
            path: str | bytes = target.encode() if bytes_target else target
            result = endpoint.handle(method, path, body, now)
            if isinstance(result, LongPollWait):
                assert result.transport.state is LongPollState.OPEN
                assert not result.ready
                waits.append(result)
                continue
            check_response(result, ack)
            event = result.event
            if isinstance(event, LongPollOpened):
                assert result.status == 200
                assert json.loads(result.body)["transport"] == event.transport.id
                opened[event.transport.id] = event.transport
            elif isinstance(event, LongPollMessage):
                assert event.payload == body
                assert event.transport.id in opened
            elif isinstance(event, LongPollClosed):
                assert opened.pop(event.transport.id) is event.transport
        elif kind == "router_send":
            transport = opened.get(action[1])
            if transport is not None and transport.state is LongPollState.OPEN and action[2]:
                before = transport.queued_messages
                if transport.send(action[2]):
                    assert transport.queued_messages == before + 1
                assert transport.queued_bytes <= max(endpoint.max_queue_bytes, len(action[2]))
        elif kind == "router_close":
            transport = opened.pop(action[1], None)
            if transport is not None:
                transport.close()
        elif kind in ("finish", "abandon") and waits:
            wait = waits.pop(action[1] % len(waits))
            if kind == "finish":
                check_response(endpoint.finish_wait(wait, now), ack)
            else:
                endpoint.abandon_wait(wait, now)
        elif kind == "time":
            now += action[1]
            deadline = endpoint.next_deadline()
            expired = endpoint.expire(now)
            if deadline is None or deadline > now:
                assert not expired
            for event in expired:
                assert event.reason == "expired"
                assert opened.pop(event.transport.id) is event.transport
        # The endpoint's transports are the live ones; closed ones are forgotten.
        for transport_id, transport in endpoint.transports.items():
            assert transport.id == transport_id
            assert transport.state is not LongPollState.CLOSED
        assert len(endpoint.transports) <= endpoint.max_transports
    for wait in waits:
        check_response(endpoint.finish_wait(wait, now), ack)


# -- the adapter's HTTP server ----------------------------------------------------------------


@st.composite
def http_requests(draw: st.DrawFn) -> bytes:
    if draw(rare):
        return draw(st.binary(max_size=60))
    method = "POST" if not draw(rare) else draw(st.sampled_from(["GET", "OPTIONS", "PUT", "P?ST"]))
    target = draw(targets())
    body = draw(open_bodies) if target.startswith("/lp/open") else draw(st.binary(max_size=20))
    headers = [("Host", "127.0.0.1")]
    framing = draw(st.integers(0, 9))
    if framing <= 6:
        headers.append(("Content-Length", str(len(body))))
        payload = body
    elif framing == 7:
        headers.append(("Transfer-Encoding", "chunked"))
        payload = b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body) if body else b"0\r\n\r\n"
        if draw(rare):
            payload = payload[: draw(st.integers(0, len(payload)))]
    elif framing == 8:
        value = draw(st.sampled_from(["-1", "1" * 30, "1" * 5000, "x", "5, 6", "999999"]))
        headers.append(("Content-Length", value))
        payload = body
    else:
        payload = b""  # no framing at all: no body
    if draw(rare):
        headers.append(("Expect", "100-continue"))
    if draw(rare):
        headers.append(("Origin", draw(st.sampled_from(["http://a.example", "null", "\x7f"]))))
    if draw(rare):
        headers.append(("Connection", "close"))
    head = f"{method} {target} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers)
    return head.encode("latin-1") + b"\r\n" + payload


def parse_responses(data: bytes) -> list[int]:
    """The statuses of the responses in ``data``, checking the HTTP framing with h11:
    whole responses, the connection closed only between them."""
    client = h11.Connection(h11.CLIENT)
    statuses: list[int] = []
    client.receive_data(data)
    client.receive_data(b"")
    between = True  # at a message boundary (a 100 Continue counts as one)
    while True:
        # As a client, h11 needs a request of its own to read each response.
        if client.our_state is h11.IDLE:
            if not client.trailing_data[0]:
                return statuses  # every response read
            client.send(h11.Request(method="POST", target="/", headers=[("Host", "h")]))
            client.send(h11.EndOfMessage())
        try:
            event = client.next_event()
        except h11.RemoteProtocolError:
            assert between, "the connection closed in the middle of a response"
            return statuses
        if event is h11.NEED_DATA or type(event) is h11.ConnectionClosed:
            return statuses
        between = type(event) in (h11.InformationalResponse, h11.EndOfMessage)
        if type(event) is h11.Response:
            statuses.append(event.status_code)
        elif type(event) is h11.InformationalResponse:
            assert event.status_code == 100
        elif type(event) is h11.EndOfMessage:
            if client.their_state is h11.MUST_CLOSE or client.our_state is h11.MUST_CLOSE:
                return statuses
            client.start_next_cycle()


async def serve_script(requests: list[bytes], hang: bool) -> tuple[list[int], list[bytes]]:
    received: list[bytes] = []

    async def handler(transport: MessageTransport) -> None:
        try:
            while True:
                received.append(await transport.receive())
        except TransportClosed:
            pass

    server = LongPollServer(handler, "/lp", poll_timeout=5.0, http_timeout=20.0, id_source=ids())
    server_stream, client_stream = trio.testing.memory_stream_pair()
    with trio.fail_after(120):
        async with trio.open_nursery() as nursery:
            await nursery.start(server.run)
            # The dispatcher hands over the bytes it read (the first ones), the
            # rest comes from the stream.
            data = b"".join(requests)
            nursery.start_soon(server.serve_http, server_stream, data[:10])
            await client_stream.send_all(data[10:])
            if not hang:
                await client_stream.send_eof()
            output = bytearray()
            while chunk := await client_stream.receive_some():
                output += chunk
            nursery.cancel_scope.cancel()
    return parse_responses(bytes(output)), received


@FUZZ
@given(requests=st.lists(http_requests(), min_size=1, max_size=5), hang=st.booleans())
def test_server_answers_random_http_with_http(requests: list[bytes], hang: bool) -> None:
    clock = trio.testing.MockClock(autojump_threshold=0)
    statuses, _ = trio.run(serve_script, requests, hang, clock=clock)
    for status in statuses:
        assert status in STATUSES | {431}, statuses
