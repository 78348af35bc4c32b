"""Fuzz target: the core's HTTP long-poll endpoint (``wamp_core.LongPollEndpoint``).

The input is a script: each step is a request (method, path built from known
and random parts, body), a router-side send or close, a held receive finished
or abandoned, or time passing. Every answer must be a response with a known
status and consistent headers, or a wait.
"""

from __future__ import annotations

import itertools

from _common import Reader, instrumented, main

with instrumented():
    import wamp_core

STATUSES = {200, 202, 204, 400, 404, 405, 413, 503}
METHODS = ["POST", "POST", "POST", "GET", "OPTIONS", "PUT", "post", "", "POST\x00"]
PATHS = ["/lp/open", "/lp/t1/send", "/lp/t1/receive", "/lp/t1/close", "/lp/t2/send",
         "/lp/t2/receive", "/lp/t2/close", "/lp/x/send", "/lp/open?x=1", "/lp", "/lp/",
         "/lp/t1", "/lp//open", "/", "*", "/lp/t1/receive?"]  # fmt: skip
BODIES = [b'{"protocols": ["wamp.2.json"]}', b'{"protocols": ["wamp.2.cbor.batched", "x"]}',
          b'{"protocols": []}', b"{}", b"[]", b"", b"\xff", b"[" * 3000, b"1e999"]  # fmt: skip


def check(response: wamp_core.LongPollResponse) -> None:
    assert response.status in STATUSES, response
    headers = dict(response.headers)
    assert len(headers) == len(response.headers)
    if response.status == 204:
        assert "content-length" not in headers
        assert not response.body
    else:
        assert int(headers["content-length"]) == len(response.body)
    if response.status >= 400:
        assert response.event is None


def test_one_input(data: bytes) -> None:
    reader = Reader(data)
    counter = itertools.count(1)
    endpoint = wamp_core.LongPollEndpoint(
        "/lp",
        max_transports=2,
        idle_timeout=10.0,
        max_body_size=2048,
        max_queue_bytes=16,
        max_queue_messages=2,
        ack_status=reader.choice([200, 202, 204]),
        id_source=lambda: f"t{next(counter)}",
    )
    now = 0.0
    waits: list[wamp_core.LongPollWait] = []
    while not reader.done:
        step = reader.byte() % 8
        if step <= 2:
            method = reader.choice(METHODS)
            path = reader.choice(PATHS)
            if reader.byte() & 1:
                path += reader.take(12).decode("latin-1")
            body = reader.choice(BODIES) if reader.byte() & 1 else reader.take(40)
            result = endpoint.handle(
                method, path.encode("latin-1") if step == 2 else path, body, now
            )
            if isinstance(result, wamp_core.LongPollWait):
                waits.append(result)
            else:
                check(result)
        elif step == 3:
            transport = endpoint.transports.get(reader.choice(["t1", "t2", "t3"]))
            payload = reader.take(10)
            if (
                transport is not None
                and transport.state is wamp_core.LongPollState.OPEN
                and payload
            ):
                transport.send(payload)
        elif step == 4:
            transport = endpoint.transports.get(reader.choice(["t1", "t2", "t3"]))
            if transport is not None:
                transport.close()
        elif step in (5, 6) and waits:
            wait = waits.pop(reader.byte() % len(waits))
            if step == 5:
                check(endpoint.finish_wait(wait, now))
            else:
                endpoint.abandon_wait(wait, now)
        else:
            now += reader.choice([0.0, 1.0, 9.99, 10.0, 30.0])
            for event in endpoint.expire(now):
                assert event.reason == "expired"
        for transport_id, transport in endpoint.transports.items():
            assert transport.id == transport_id
            assert transport.state is not wamp_core.LongPollState.CLOSED
    for wait in waits:
        check(endpoint.finish_wait(wait, now))


SEEDS = [
    bytes([0, 0, 0, 0, 0]) + bytes([0, 0, 1, 0, 0]) + bytes([0, 0, 2, 0, 1, 0, 4]) + b"abcd",
    bytes([2, 0, 0, 0, 1, 1]) + bytes([1, 0, 2, 0, 0]) + bytes([3, 0, 3, b"x"[0]]) + bytes([5, 0]),
    bytes([0, 0, 0, 0, 0, 7, 3, 0, 0, 0, 0, 0]) * 3,
]

if __name__ == "__main__":
    main(test_one_input, SEEDS)
