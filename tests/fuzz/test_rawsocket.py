"""Fuzzing the RawSocket codec (``wamp_core._rawsocket``) with handshakes and frame
streams built field by field: random serializer ids and length exponents,
reserved bits, the 25th length bit, reserved frame types, lengths around the
limit, PINGs larger than the peer accepts; random router and client settings.

``tests/core/test_rawsocket.py`` checks chunking invariance for valid frames and
random bytes. Here every stream, valid or not, is fed three ways: byte by byte
(the reference), whole, and in random chunks. Each way must give the same
outcome -- the same events, or a ``RawSocketProtocolError`` at the same frame
with the events before it -- and the same bytes to send, and the buffer never
holds more than one partial frame.
"""

from __future__ import annotations

import itertools
import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wamp_core import (
    LocalProtocolError,
    RawSocketClient,
    RawSocketConnection,
    RawSocketEvent,
    RawSocketMessage,
    RawSocketOpened,
    RawSocketProtocolError,
    RawSocketRouter,
    RawSocketState,
    rawsocket_max_length,
)

FUZZ = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def handshakes(draw: st.DrawFn, serializers: frozenset[int], minimum: int) -> bytes:
    """A handshake request or reply: mostly one the connection accepts, else
    anything from a wrong field to random bytes."""
    kind = draw(st.integers(0, 19))
    if kind == 0:
        return draw(st.binary(min_size=1, max_size=4))
    magic = 0x7F if kind > 1 else draw(st.integers(0, 255))
    if kind > 6:  # valid for this connection (a router's reply echoes the client's id)
        exponent = draw(st.integers(minimum, 15))
        serializer = draw(st.sampled_from(sorted(serializers)))
    else:
        exponent = draw(st.integers(0, 15))
        serializer = draw(st.sampled_from([0, 1, 2, 3, 4, 15]))
    reserved = b"\0\0" if kind > 2 else draw(st.binary(min_size=2, max_size=2))
    return bytes((magic, exponent << 4 | serializer)) + reserved


@st.composite
def frames(draw: st.DrawFn) -> bytes:
    """One frame: header fields drawn separately, the length usually honest."""
    payload = draw(st.binary(max_size=40) | st.sampled_from([b"", b"x" * 511, b"y" * 600]))
    frame_type = draw(st.sampled_from([0] * 8 + [1, 1, 2, 2, 3, 7]))
    reserved = draw(st.sampled_from([0] * 30 + [1, 8, 15]))
    length_kind = draw(st.integers(0, 29))
    if length_kind < 27:
        length = len(payload)
    elif length_kind == 27:
        length = draw(st.sampled_from([513, 1024, 2**24 - 1, 2**24]))  # beyond small limits
    elif length_kind == 28:
        length = len(payload) + draw(st.integers(1, 3))  # a frame cut short
    else:
        length = draw(st.integers(0, 2**25 - 1))
    high = reserved << 4 | (length >> 24 & 1) << 3 | frame_type
    header = struct.pack(">I", high << 24 | length & 0xFFFFFF)
    return header + payload


def streams(role: str, config: tuple[int, int, frozenset[int]]) -> st.SearchStrategy[bytes]:
    _, minimum, serializers = config
    if role == "client":  # the router's reply must echo the requested serializer
        serializers, minimum = frozenset({min(serializers)}), 0
    return st.builds(
        lambda head, body, tail: head + b"".join(body) + tail,
        handshakes(serializers, minimum),
        st.lists(frames(), max_size=6),
        st.binary(max_size=6) | st.just(b""),
    )


def make(role: str, settings_: tuple[int, int, frozenset[int]]) -> RawSocketConnection:
    exponent, other, serializers = settings_
    if role == "router":
        return RawSocketRouter(
            max_length_exponent=exponent,
            serializers=serializers,
            min_client_length_exponent=other,
        )
    client = RawSocketClient(min(serializers), max_length_exponent=exponent)
    client.data_to_send()  # its own request
    return client


def feed(
    conn: RawSocketConnection, chunks: list[bytes]
) -> tuple[list[RawSocketEvent], RawSocketProtocolError | None, int]:
    """(events, the error if any, the largest buffer seen), feeding ``chunks`` in turn."""
    events: list[RawSocketEvent] = []
    largest = 0
    for chunk in chunks:
        try:
            events += conn.receive_data(chunk)
        except RawSocketProtocolError as exc:
            assert conn.state is RawSocketState.ERROR
            # Failed for good: more input raises again, sending is refused.
            with pytest.raises(RawSocketProtocolError):
                conn.receive_data(b"\0")
            with pytest.raises(LocalProtocolError):
                conn.send_message(b"[]")
            return events, exc, largest
        largest = max(largest, len(conn._buffer))
    return events, None, largest


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({0, len(data), *(cut % (len(data) + 1) for cut in cuts)})
    return [data[a:b] for a, b in itertools.pairwise(points)]


connection_settings = st.tuples(
    st.sampled_from([0, 0, 1, 2, 15]),  # our maximum: 512 bytes mostly, to hit the limit
    st.sampled_from([0, 0, 0, 1, 9]),  # router: the client's minimum exponent
    st.sampled_from([frozenset({1, 2, 3}), frozenset({2}), frozenset({1, 4, 15})]),
)


@pytest.mark.parametrize("role", ["router", "client"])
@FUZZ
@given(data=st.data(), cuts=st.lists(st.integers(0), max_size=8), config=connection_settings)
def test_any_chunking_gives_the_outcome_of_byte_by_byte(
    role: str, data: st.DataObject, cuts: list[int], config: tuple[int, int, frozenset[int]]
) -> None:
    stream = data.draw(streams(role, config))
    reference = make(role, config)
    ref_events, ref_error, ref_largest = feed(
        reference, [stream[i : i + 1] for i in range(len(stream))]
    )
    limit = reference.max_receive_length
    # Never more than one partial frame in the buffer: a header announcing more
    # than our maximum fails on the header alone.
    assert ref_largest < 4 + limit
    ref_output = reference.data_to_send()

    for chunks in ([stream], split(stream, cuts)):
        conn = make(role, config)
        events, error, largest = feed(conn, chunks)
        assert largest < 4 + limit
        # Same bytes to send: handshake reply, PONGs, an error reply.
        assert conn.data_to_send() == ref_output
        if ref_error is None:
            assert error is None
            assert events == ref_events
            assert conn.state is reference.state
        else:
            assert error is not None
            assert type(error) is type(ref_error)
            assert error.message == ref_error.message
            assert error.code == ref_error.code
            # The events of the failing chunk are dropped, the earlier ones kept.
            assert events == ref_events[: len(events)]


@pytest.mark.parametrize("exponent", [0, 1, 7, 14])
@settings(max_examples=30, deadline=None)
@given(excess=st.integers(1, 2**25 - 1), frame_type=st.sampled_from([0, 1, 2]))
def test_an_oversized_header_fails_before_its_payload(
    exponent: int, excess: int, frame_type: int
) -> None:
    router = RawSocketRouter(max_length_exponent=exponent)
    (opened,) = router.receive_data(b"\x7f\xf2\0\0")
    assert opened == RawSocketOpened(2, 2**24)
    length = min(rawsocket_max_length(exponent) + excess, 2**24)
    if length <= rawsocket_max_length(exponent):
        return
    high = frame_type | (length >> 24) << 3
    header = struct.pack(">I", high << 24 | length & 0xFFFFFF)
    assert router.receive_data(header[:3]) == []
    with pytest.raises(RawSocketProtocolError, match=r"announced a \d+-byte frame"):
        router.receive_data(header[3:])
    assert len(router._buffer) == 0


@settings(max_examples=100, deadline=None)
@given(payloads=st.lists(st.binary(max_size=700), max_size=8), exponent=st.integers(0, 2))
def test_send_then_receive_across_the_limit(payloads: list[bytes], exponent: int) -> None:
    """What one side may send, the other receives; what it may not, it refuses to send."""
    client = RawSocketClient(3, max_length_exponent=exponent)
    router = RawSocketRouter(max_length_exponent=exponent)
    (opened,) = router.receive_data(client.data_to_send())
    assert isinstance(opened, RawSocketOpened)
    assert opened.peer_max_length == rawsocket_max_length(exponent)
    assert isinstance(client.receive_data(router.data_to_send())[0], RawSocketOpened)
    sent = []
    for payload in payloads:
        if len(payload) > rawsocket_max_length(exponent):
            with pytest.raises(LocalProtocolError):
                client.send_message(payload)
        else:
            client.send_message(payload)
            sent.append(RawSocketMessage(payload))
    assert router.receive_data(client.data_to_send()) == sent
