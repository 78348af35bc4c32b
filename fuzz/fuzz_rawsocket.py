"""Fuzz target: the RawSocket codec (``RawSocketRouter`` and ``RawSocketClient``).

The first byte picks the role and the settings (our maximum length, the
serializers accepted), the second how the rest is cut into chunks. The rest is
the peer's byte stream. Fed whole and fed in chunks it gives the same outcome
(the events, or a ``RawSocketProtocolError`` with the same message, and the
same bytes to send), and the buffer never holds more than one partial frame.
"""

from __future__ import annotations

import struct

from _common import instrumented, main

with instrumented():
    import wamp_core

SERIALIZER_SETS = [frozenset({1, 2, 3}), frozenset({2}), frozenset({1, 15})]


def make(settings: int) -> wamp_core.RawSocketConnection:
    exponent = (0, 1, 15)[settings % 3]
    serializers = SERIALIZER_SETS[settings // 3 % 3]
    if settings & 0x80:
        client = wamp_core.RawSocketClient(min(serializers), max_length_exponent=exponent)
        client.data_to_send()
        return client
    return wamp_core.RawSocketRouter(
        max_length_exponent=exponent,
        serializers=serializers,
        min_client_length_exponent=(settings >> 4) & 1,
    )


def feed(
    conn: wamp_core.RawSocketConnection, chunks: list[bytes]
) -> tuple[list[wamp_core.RawSocketEvent], str | None]:
    events: list[wamp_core.RawSocketEvent] = []
    for chunk in chunks:
        try:
            events += conn.receive_data(chunk)
        except wamp_core.RawSocketProtocolError as exc:
            assert conn.state is wamp_core.RawSocketState.ERROR
            return events, exc.message
        assert len(conn._buffer) < 4 + conn.max_receive_length
    return events, None


def test_one_input(data: bytes) -> None:
    if len(data) < 2:
        return
    settings, step, stream = data[0], data[1] % 16 + 1, data[2:]
    whole = make(settings)
    whole_events, whole_error = feed(whole, [stream])
    chunked = make(settings)
    pieces = [stream[i : i + step] for i in range(0, len(stream), step)]
    events, error = feed(chunked, pieces)
    assert error == whole_error, (error, whole_error)
    if error is None:
        assert events == whole_events
    else:
        assert not whole_events  # a failing call reports no events
    assert chunked.data_to_send() == whole.data_to_send()


def _frame(kind: int, payload: bytes) -> bytes:
    return struct.pack(">I", kind << 24 | len(payload)) + payload


SEEDS = [
    bytes([0, 1]) + b"\x7f\xf2\x00\x00" + _frame(0, b"[1]") + _frame(1, b"ping") + _frame(2, b""),
    bytes([0x80, 3]) + b"\x7f\xf1\x00\x00" + _frame(0, b"x" * 600) + _frame(0, b""),
    bytes([1, 2]) + b"\x7f\x32\x00\x00" + _frame(1, b"p" * 513),
    bytes([0x10, 1]) + b"\x7f\x02\x00\x00",
    bytes([0x80, 1]) + b"\x7f\x10\x00\x00",
    bytes([2, 5]) + b"\x7f\xf3\x00\x00" + b"\x08\x00\x00\x00",
    bytes([0, 4]) + b"GET / HTTP/1.1\r\n\r\n",
]

if __name__ == "__main__":
    main(test_one_input, SEEDS)
