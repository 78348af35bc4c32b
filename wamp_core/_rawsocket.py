"""RawSocket transport: the opening handshake and the framing, sans-IO.

AP/ap_transport_rawsocket.md. The frame header's ``X`` bit (the 25th length
bit) comes from the later revision of the same text,
rfc/text/advanced/ap_38_transport_rawsocket.md; the older one marks it reserved.

Bytes in, events out, in the style of h11/h2: feed whatever the socket gave to
``receive_data()`` (any chunking gives the same events), act on the events, and
write ``data_to_send()`` to the socket after every call that may produce output
(creation of a client, ``receive_data``, ``send_*``, ``reject``).

States (``RawSocketConnection.state``):

* ``HANDSHAKE``: waiting for the peer's 4 handshake bytes (a client has already
  queued its request). Nothing can be sent yet.
* ``OPEN``: the handshake succeeded (a ``RawSocketOpened`` event was reported);
  frames flow both ways.
* ``REJECTED``: router only, after ``reject()``: the error reply is queued;
  flush it and close. Later input is discarded.
* ``ERROR``: the peer broke the protocol, or the router refused the client's
  handshake, or the client was refused: a ``RawSocketProtocolError`` was raised.
  Only draining ``data_to_send()`` (a router's error reply) and closing remain;
  ``receive_data`` raises again and sending raises ``LocalProtocolError``.
"""

from __future__ import annotations

import enum
import struct
from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass

from ._errors import LocalProtocolError, RemoteProtocolError

__all__ = [
    "DEFAULT_RAWSOCKET_SERIALIZERS",
    "RAWSOCKET_MAGIC",
    "RawSocketClient",
    "RawSocketConnection",
    "RawSocketErrorCode",
    "RawSocketEvent",
    "RawSocketFrameType",
    "RawSocketMessage",
    "RawSocketOpened",
    "RawSocketPing",
    "RawSocketPong",
    "RawSocketProtocolError",
    "RawSocketRejected",
    "RawSocketRouter",
    "RawSocketSerializerId",
    "RawSocketState",
    "rawsocket_length_exponent",
    "rawsocket_max_length",
]

RAWSOCKET_MAGIC = 0x7F
"""First byte of every handshake request and reply (it never starts an HTTP request)."""


class RawSocketSerializerId(enum.IntEnum):
    """The serializer numbers of the handshake's ``SSSS`` field (0 is illegal, 6-15 reserved)."""

    JSON = 1
    MSGPACK = 2
    CBOR = 3
    UBJSON = 4
    FLATBUFFERS = 5


DEFAULT_RAWSOCKET_SERIALIZERS = frozenset(
    {RawSocketSerializerId.JSON, RawSocketSerializerId.MSGPACK, RawSocketSerializerId.CBOR}
)
"""The serializer ids a router accepts by default: the ones wamp_core implements."""


class RawSocketErrorCode(enum.IntEnum):
    """The codes (``EEEE``) of a router's handshake error reply (0 is illegal, 5-15 reserved)."""

    SERIALIZER_UNSUPPORTED = 1
    MAX_LENGTH_UNACCEPTABLE = 2
    RESERVED_BITS_USED = 3
    MAX_CONNECTIONS = 4


_ERROR_TEXT = {
    RawSocketErrorCode.SERIALIZER_UNSUPPORTED: "serializer unsupported",
    RawSocketErrorCode.MAX_LENGTH_UNACCEPTABLE: "maximum message length unacceptable",
    RawSocketErrorCode.RESERVED_BITS_USED: "use of reserved bits",
    RawSocketErrorCode.MAX_CONNECTIONS: "maximum connection count reached",
}


class RawSocketFrameType(enum.IntEnum):
    """The ``TTT`` field of a frame header (3-7 are reserved)."""

    MESSAGE = 0
    PING = 1
    PONG = 2


class RawSocketState(enum.Enum):
    """The state of a RawSocket connection; see the module docstring."""

    HANDSHAKE = "handshake"
    OPEN = "open"
    REJECTED = "rejected"
    ERROR = "error"


def rawsocket_max_length(exponent: int) -> int:
    """The maximum message length in bytes that the ``LLLL`` value ``exponent``
    (0..15) announces: ``2**(9+exponent)``, so 512 bytes to 16 MiB.
    """
    if not 0 <= exponent <= 15:
        raise ValueError(f"length exponent must be in 0..15, not {exponent}")
    return 1 << (9 + exponent)


def rawsocket_length_exponent(max_length: int) -> int:
    """The largest ``LLLL`` value whose maximum does not exceed ``max_length`` bytes.

    Rounds down (never announce more than can be taken) and caps at 15 (16 MiB);
    raises ``ValueError`` below 512 bytes, which no ``LLLL`` can express.
    """
    if max_length < 512:
        raise ValueError(f"a RawSocket maximum length is at least 512 bytes, not {max_length}")
    return min(max_length.bit_length() - 10, 15)


# -- events ---------------------------------------------------------------------


class RawSocketEvent:
    """Base class of everything ``receive_data()`` reports."""

    __slots__ = ()


@dataclass(frozen=True, slots=True)
class RawSocketOpened(RawSocketEvent):
    """The handshake succeeded: ``serializer_id`` is in use and the peer accepts
    messages of at most ``peer_max_length`` bytes.
    """

    serializer_id: int
    peer_max_length: int


@dataclass(frozen=True, slots=True)
class RawSocketMessage(RawSocketEvent):
    """A WAMP message arrived: ``payload`` is its serialized bytes."""

    payload: bytes


@dataclass(frozen=True, slots=True)
class RawSocketPing(RawSocketEvent):
    """A PING arrived; its PONG has already been queued in ``data_to_send()``."""

    payload: bytes


@dataclass(frozen=True, slots=True)
class RawSocketPong(RawSocketEvent):
    """A PONG arrived (presumably answering one of our PINGs)."""

    payload: bytes


# -- errors ---------------------------------------------------------------------


class RawSocketProtocolError(RemoteProtocolError):
    """The peer broke the RawSocket protocol, or refused or was refused the handshake.

    ``code`` is the RawSocket error code involved, else None: on a router, the
    code its (already queued) error reply carries; on a client, the code the
    router rejected it with (see ``RawSocketRejected``).
    """

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code


class RawSocketRejected(RawSocketProtocolError):
    """The router answered the client's handshake with an error reply.

    ``code`` is a ``RawSocketErrorCode`` (or a plain int for the reserved codes
    5-15), e.g. ``MAX_CONNECTIONS``, after which a retry later may succeed.
    """

    code: int


# -- framing helpers ------------------------------------------------------------

_HEADER = struct.Struct(">I")
_LENGTH_MASK = 0xFFFFFF
_MAX_PAYLOAD = 1 << 24


def _frame_header(frame_type: int, length: int) -> bytes:
    # RRRR XTTT + 24 length bits. X is the 25th length bit: set only for a payload
    # of exactly 2**24 bytes, whose 24 low bits are then all zero (AP/ap_38_...).
    return _HEADER.pack((frame_type << 24) | ((length >> 24) << 27) | (length & _LENGTH_MASK))


def _handshake_bytes(high: int, low: int) -> bytes:
    return bytes((RAWSOCKET_MAGIC, (high << 4) | low, 0, 0))


def _describe_code(code: int) -> str:
    if code in _ERROR_TEXT:
        name = RawSocketErrorCode(code)
        return f"error code {code} ({name.name}: {_ERROR_TEXT[name]})"
    return f"error code {code} (reserved)"


# -- connections ----------------------------------------------------------------


class RawSocketConnection(ABC):
    """What a RawSocket connection does in either role: framing, PING/PONG, limits.

    Use ``RawSocketClient`` or ``RawSocketRouter``; this base exists for typing
    code that drives either.
    """

    __slots__ = (
        "_buffer",
        "_error",
        "_length_exponent",
        "_max_receive",
        "_outgoing",
        "_peer_max",
        "_serializer_id",
        "_state",
    )

    _peer_name = "peer"

    def __init__(self, max_length_exponent: int) -> None:
        self._max_receive = rawsocket_max_length(max_length_exponent)
        self._length_exponent = max_length_exponent
        self._state = RawSocketState.HANDSHAKE
        self._buffer = bytearray()
        self._outgoing: list[bytes] = []
        self._peer_max = 0
        self._serializer_id: int | None = None
        self._error: RawSocketProtocolError | None = None

    # -- properties

    @property
    def state(self) -> RawSocketState:
        """The current ``RawSocketState``."""
        return self._state

    @property
    def serializer_id(self) -> int | None:
        """The serializer id: a client's requested one; a router's once it accepted."""
        return self._serializer_id

    @property
    def max_receive_length(self) -> int:
        """The longest payload we accept, as announced in our handshake."""
        return self._max_receive

    @property
    def peer_max_length(self) -> int | None:
        """The longest payload the peer accepts (None until the handshake succeeded)."""
        return self._peer_max or None

    # -- input

    def receive_data(self, data: bytes | bytearray) -> list[RawSocketEvent]:
        """Feed bytes from the peer; return the events they complete, in order.

        Any split of the stream into chunks gives the same events. A PING's PONG
        is queued for ``data_to_send()``. Raises ``RawSocketProtocolError`` (a
        ``RemoteProtocolError``) if the peer broke the protocol; events decoded
        earlier in the same call are then dropped, since the connection is failed.
        """
        error = self._error
        if error is not None:  # state ERROR
            raise type(error)(f"the connection has already failed: {error.message}", error.code)
        if self._state is RawSocketState.REJECTED or not data:
            return []
        events: list[RawSocketEvent] = []
        buffer = self._buffer
        # Parse straight from ``data`` when nothing is pending, so a chunk of
        # whole frames is never copied into the buffer; keep only the tail.
        if buffer:
            buffer += data
            source: bytes | bytearray = buffer
        else:
            source = data
        try:
            with memoryview(source) as view:
                consumed = self._parse(view, events)
                if source is not buffer:
                    buffer += view[consumed:]
        except RawSocketProtocolError:
            buffer.clear()
            raise
        if source is buffer:
            # At most one partial frame remains, and it moves to the front only
            # once: after that ``consumed`` stays 0 until it is complete.
            del buffer[:consumed]
        return events

    def _parse(self, view: memoryview, events: list[RawSocketEvent]) -> int:
        """Consume complete handshake/frames from ``view``; return the bytes used."""
        end = len(view)
        pos = 0
        if self._state is RawSocketState.HANDSHAKE:
            # Checked from the first byte on: a router fails an HTTP request at once.
            if view[0] != RAWSOCKET_MAGIC:
                raise self._fail(
                    RawSocketProtocolError(
                        f"not a RawSocket handshake from the {self._peer_name}: first byte is "
                        f"0x{view[0]:02x}, not 0x7f"
                    )
                )
            if end < 4:
                return 0
            events.append(self._handshake(view[1], view[2], view[3]))
            pos = 4
        max_receive = self._max_receive
        unpack = _HEADER.unpack_from
        message, ping = RawSocketFrameType.MESSAGE, RawSocketFrameType.PING
        while end - pos >= 4:
            (word,) = unpack(view, pos)
            length = word & _LENGTH_MASK
            high = word >> 24
            frame_type = message
            if high:  # anything but a message shorter than 2**24 bytes
                frame_type, length = self._check_header(high, length)
            # Fail on the header alone: never buffer a payload we will refuse.
            if length > max_receive:
                raise self._fail(
                    RawSocketProtocolError(
                        f"the {self._peer_name} announced a {length}-byte frame; "
                        f"our maximum is {max_receive} bytes"
                    )
                )
            start = pos + 4
            stop = start + length
            if stop > end:
                break
            payload = view[start:stop].tobytes()
            pos = stop
            if frame_type is message:
                events.append(RawSocketMessage(payload))
            elif frame_type is ping:
                # "A Peer MUST reply to each PING by sending exactly one PONG
                # immediately" echoing the payload (AP/ap_transport_rawsocket.md).
                self._outgoing.append(_frame_header(RawSocketFrameType.PONG, length))
                self._outgoing.append(payload)
                events.append(RawSocketPing(payload))
            else:
                events.append(RawSocketPong(payload))
        return pos

    def _check_header(self, high: int, length: int) -> tuple[RawSocketFrameType, int]:
        """Validate the first header byte ``RRRR XTTT``; return (type, payload length)."""
        if high & 0xF0:
            raise self._fail(
                RawSocketProtocolError(f"frame header uses reserved bits (first byte 0x{high:02x})")
            )
        if high & 0x07 > RawSocketFrameType.PONG:
            raise self._fail(RawSocketProtocolError(f"reserved frame type {high & 0x07}"))
        frame_type = RawSocketFrameType(high & 0x07)
        if high & 0x08:
            if length:
                raise self._fail(
                    RawSocketProtocolError(
                        "frame header sets the 25th length bit with nonzero low length bits"
                    )
                )
            length = _MAX_PAYLOAD
        if frame_type is RawSocketFrameType.PING and length > self._peer_max:
            # Not in the spec: the echoing PONG would break the peer's own limit.
            raise self._fail(
                RawSocketProtocolError(
                    f"the {self._peer_name} sent a {length}-byte PING; its own maximum "
                    f"(hence the PONG's) is {self._peer_max} bytes"
                )
            )
        return frame_type, length

    @abstractmethod
    def _handshake(self, second: int, third: int, fourth: int) -> RawSocketOpened:
        """Process the peer's handshake bytes 2-4 (the magic byte is checked)."""
        raise NotImplementedError

    def _open(self, serializer_id: int, peer_exponent: int) -> RawSocketOpened:
        self._serializer_id = serializer_id
        self._peer_max = rawsocket_max_length(peer_exponent)
        self._state = RawSocketState.OPEN
        return RawSocketOpened(serializer_id, self._peer_max)

    def _fail(self, error: RawSocketProtocolError) -> RawSocketProtocolError:
        self._state = RawSocketState.ERROR
        self._error = error
        return error

    # -- output

    def data_to_send(self) -> bytes:
        """Return and forget every byte queued for the peer (``b""`` if none)."""
        data = b"".join(self._outgoing)
        self._outgoing.clear()
        return data

    def send_message(self, payload: bytes) -> None:
        """Queue ``payload`` (one serialized WAMP message) as a message frame.

        Raises ``LocalProtocolError``, queueing nothing, before the handshake
        succeeded, after a failure, or if ``payload`` exceeds the peer's maximum
        (the spec leaves what to do then to the caller: drop it, or send a
        smaller message).
        """
        self._send_frame(RawSocketFrameType.MESSAGE, payload)

    def send_messages(self, payloads: Iterable[bytes]) -> None:
        """Queue several payloads as message frames, as ``send_message`` does each;
        all of them or, raising ``LocalProtocolError``, none."""
        if self._state is not RawSocketState.OPEN:
            raise LocalProtocolError(f"cannot send in RawSocket state {self._state.name}")
        peer_max = self._peer_max
        pack = _HEADER.pack
        frames: list[bytes] = []
        for payload in payloads:
            length = len(payload)
            if length > peer_max:
                raise LocalProtocolError(
                    f"{length}-byte payload exceeds the {self._peer_name}'s maximum "
                    f"of {peer_max} bytes"
                )
            # A MESSAGE frame (type 0) under 2**24 bytes: the header is the length.
            frames.append(
                pack(length)
                if length < _MAX_PAYLOAD
                else _frame_header(RawSocketFrameType.MESSAGE, length)
            )
            frames.append(bytes(payload))
        self._outgoing.extend(frames)

    def send_ping(self, payload: bytes = b"") -> None:
        """Queue a PING; the peer must answer with a PONG echoing ``payload``."""
        self._send_frame(RawSocketFrameType.PING, payload)

    def send_pong(self, payload: bytes = b"") -> None:
        """Queue an unsolicited PONG (PINGs are answered automatically)."""
        self._send_frame(RawSocketFrameType.PONG, payload)

    def _send_frame(self, frame_type: RawSocketFrameType, payload: bytes) -> None:
        if self._state is not RawSocketState.OPEN:
            raise LocalProtocolError(f"cannot send in RawSocket state {self._state.name}")
        length = len(payload)
        if length > self._peer_max:
            raise LocalProtocolError(
                f"{length}-byte payload exceeds the {self._peer_name}'s maximum "
                f"of {self._peer_max} bytes"
            )
        self._outgoing.append(_frame_header(frame_type, length))
        self._outgoing.append(bytes(payload))


class RawSocketClient(RawSocketConnection):
    """The client side: queues its handshake request on creation.

    ``serializer_id`` (1..15, see ``RawSocketSerializerId``) is requested from
    the router; ``max_length_exponent`` (``LLLL``, 0..15) announces the longest
    message we accept, ``2**(9+LLLL)`` bytes. Raises ``ValueError`` for values
    outside those ranges.
    """

    __slots__ = ()

    _peer_name = "router"

    def __init__(self, serializer_id: int, *, max_length_exponent: int = 15) -> None:
        if not 1 <= serializer_id <= 15:
            raise ValueError(f"serializer id must be in 1..15, not {serializer_id}")
        super().__init__(max_length_exponent)
        self._serializer_id = serializer_id
        self._outgoing.append(_handshake_bytes(max_length_exponent, serializer_id))

    def _handshake(self, second: int, third: int, fourth: int) -> RawSocketOpened:
        if third or fourth:
            raise self._fail(
                RawSocketProtocolError("the router's handshake reply sets reserved bytes")
            )
        serializer_id = second & 0x0F
        high = second >> 4
        if not serializer_id:
            # An error reply: 0x7F, EEEE 0000, 0x00, 0x00; EEEE 0 "must not be used".
            if not high:
                raise self._fail(
                    RawSocketProtocolError("the router's error reply carries the illegal code 0")
                )
            code = RawSocketErrorCode(high) if high in _ERROR_TEXT else high
            raise self._fail(
                RawSocketRejected(
                    f"the router rejected the handshake: {_describe_code(code)}", code
                )
            )
        if serializer_id != self._serializer_id:
            raise self._fail(
                RawSocketProtocolError(
                    f"the router echoed serializer {serializer_id}, "
                    f"not the requested {self._serializer_id}"
                )
            )
        return self._open(serializer_id, high)


class RawSocketRouter(RawSocketConnection):
    """The router side: validates the client's handshake and answers it.

    ``max_length_exponent`` (``LLLL``, 0..15) announces the longest message we
    accept. ``serializers`` are the ids we accept (others get error code 1).
    ``min_client_length_exponent`` is the smallest ``LLLL`` a client may announce
    (smaller gets error code 2); the default 0 accepts every client, leaving
    messages too long for it to the caller, as the spec suggests. Raises
    ``ValueError`` for values outside those ranges or an empty ``serializers``.

    A valid request is accepted at once (reply queued, ``RawSocketOpened``
    reported). An invalid one is answered with the error reply, then
    ``RawSocketProtocolError`` (with its ``code``) is raised: flush and close.
    Call ``reject()`` to refuse on your own terms, e.g. a connection limit.
    """

    __slots__ = ("_min_client_exponent", "_serializers")

    _peer_name = "client"

    def __init__(
        self,
        *,
        max_length_exponent: int = 15,
        serializers: Iterable[int] = DEFAULT_RAWSOCKET_SERIALIZERS,
        min_client_length_exponent: int = 0,
    ) -> None:
        super().__init__(max_length_exponent)
        rawsocket_max_length(min_client_length_exponent)  # validates the range
        accepted = frozenset(serializers)
        if not accepted or not all(1 <= s <= 15 for s in accepted):
            raise ValueError(f"serializer ids must be a non-empty set in 1..15: {accepted}")
        self._serializers = accepted
        self._min_client_exponent = min_client_length_exponent

    @property
    def serializers(self) -> frozenset[int]:
        """The serializer ids this router accepts."""
        return self._serializers

    def reject(self, code: int) -> None:
        """Refuse the client with error ``code`` (a ``RawSocketErrorCode`` or 5..15).

        Legal only before the handshake completed; queues the error reply at once
        (the client reads it after sending its request, so there is no need to
        wait for that) and moves to ``REJECTED``: flush ``data_to_send()`` and close.
        """
        if self._state is not RawSocketState.HANDSHAKE:
            raise LocalProtocolError(f"cannot reject in RawSocket state {self._state.name}")
        if not 1 <= code <= 15:
            raise LocalProtocolError(f"RawSocket error codes are 1..15, not {code}")
        self._outgoing.append(_handshake_bytes(code, 0))
        self._state = RawSocketState.REJECTED
        self._buffer.clear()

    def _refuse(self, code: RawSocketErrorCode, reason: str) -> RawSocketProtocolError:
        self._outgoing.append(_handshake_bytes(code, 0))
        return self._fail(
            RawSocketProtocolError(
                f"refused the client's handshake: {reason}; answered {_describe_code(code)}", code
            )
        )

    def _handshake(self, second: int, third: int, fourth: int) -> RawSocketOpened:
        # The spec sets no order of checks. Reserved bits first: a request using them may
        # mean something else in its other fields too.
        if third or fourth:
            raise self._refuse(
                RawSocketErrorCode.RESERVED_BITS_USED,
                f"reserved bytes are 0x{third:02x} 0x{fourth:02x}, not zero",
            )
        serializer_id = second & 0x0F
        exponent = second >> 4
        if serializer_id not in self._serializers:
            detail = "is illegal" if not serializer_id else "is not supported"
            raise self._refuse(
                RawSocketErrorCode.SERIALIZER_UNSUPPORTED, f"serializer {serializer_id} {detail}"
            )
        if exponent < self._min_client_exponent:
            raise self._refuse(
                RawSocketErrorCode.MAX_LENGTH_UNACCEPTABLE,
                f"the client accepts at most {rawsocket_max_length(exponent)} bytes; we require "
                f"at least {rawsocket_max_length(self._min_client_exponent)}",
            )
        self._outgoing.append(_handshake_bytes(self._length_exponent, serializer_id))
        return self._open(serializer_id, exponent)
