"""Serializers: JSON, MessagePack and CBOR, plain and batched.

BP/building_blocks.md ("Serializers") and AP/ap_transport_batched_websocket.md.

* JSON carries binary values as a string ``"\\0" + base64(bytes)``
  (AP/ap_serialization_binary_json.md), anywhere in a message, in both
  directions.
* MessagePack uses spec v5 and keeps ``str`` and ``bytes`` apart.
* Decoded map keys must be strings (or bytes): other key types are refused,
  which also closes the hash-collision attack on integer keys. CBOR value
  sharing (tags 28/29), which can build cycles, is refused too, and so are
  MIME messages (tag 36), which no codec could encode again.
* Batched framing: JSON messages each end with ``0x1E``; MessagePack and CBOR
  messages each start with a 4-byte big-endian length. The spec describes no
  CBOR framing; the length prefix is the one Autobahn and Crossbar use.

``encode`` caches its result on the message per codec, so a router that sends
one EVENT to many subscribers encodes it once per serializer.
"""

from __future__ import annotations

import base64
import io
import json
import math
import struct
from collections.abc import Iterable
from typing import Any

import cbor2
import msgpack
import orjson

from ._errors import LocalProtocolError, RemoteProtocolError
from ._messages import Message, parse_message

__all__ = [
    "SERIALIZERS",
    "SerializationError",
    "Serializer",
    "get_serializer",
    "serializer_for_rawsocket",
]


class SerializationError(LocalProtocolError):
    """A message could not be encoded (e.g. a payload value the format lacks)."""


# -- JSON --------------------------------------------------------------------


def _json_default(value: object) -> str:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return "\0" + base64.b64encode(value).decode("ascii")
    raise TypeError(f"{type(value).__name__} cannot be serialized to JSON")


_json_encoder = json.JSONEncoder(
    ensure_ascii=False, allow_nan=False, separators=(",", ":"), default=_json_default
)


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not valid JSON")


def _parse_float(text: str) -> float:
    # float("1e400") is inf: JSON has no infinities, and one accepted here could
    # not be encoded again (allow_nan=False) when the message is forwarded.
    value = float(text)
    if math.isinf(value):
        raise ValueError(f"number out of range: {text:.40}")
    return value


# One decoder for every message: json.loads(text, **options) would build a new
# JSONDecoder per call.
_json_decoder = json.JSONDecoder(parse_constant=_reject_constant, parse_float=_parse_float)


def _unbinary(value: Any) -> Any:
    """Replace every ``"\\0"+base64`` string inside ``value`` by its bytes."""
    if isinstance(value, str):
        if value.startswith("\0"):
            return base64.b64decode(value[1:], validate=True)
        return value
    if isinstance(value, list):
        return [_unbinary(item) for item in value]
    if isinstance(value, dict):
        return {key: _unbinary(item) for key, item in value.items()}
    return value


# orjson is the fast path; the standard library's json module the reference, used
# whenever orjson could differ from it. orjson writes NaN and infinities as
# null (the reference refuses them), so an output holding "null" is made again;
# it refuses integers beyond 64 bits, lone surrogates and non-string keys (the
# reference writes "1" for a key 1), and those are made again too. The
# reference also calls _json_default for what orjson would pass to it.
_ORJSON_OPTIONS = orjson.OPT_PASSTHROUGH_DATACLASS | orjson.OPT_PASSTHROUGH_DATETIME


def _json_dumps(obj: Any) -> bytes:
    try:
        data = orjson.dumps(obj, default=_json_default, option=_ORJSON_OPTIONS)
    except TypeError:
        data = b"null"
    if b"null" in data:
        return _json_encoder.encode(obj).encode("utf-8")
    # orjson's bytes keep their over-allocated buffer (4 KiB at least): a copy of
    # the exact size is what is kept (message caches) and queued.
    return memoryview(data).tobytes()


# orjson reads an integer beyond 64 bits as a float: such input (19 digits in a
# row or more) takes the reference path, as does anything orjson refuses, so
# that the errors are the reference's. The search maps every digit to "0" and
# looks for 19 of them in a row: both steps run at memory speed, where a regular
# expression would try a match at every position.
_DIGITS_TO_ZERO = bytes.maketrans(b"0123456789", b"0000000000")
_LONG_NUMBER = b"0" * 19


def _json_loads(data: bytes) -> Any:
    if _LONG_NUMBER not in data.translate(_DIGITS_TO_ZERO):
        try:
            obj = orjson.loads(data)
        except orjson.JSONDecodeError:
            pass
        else:
            if b"\\u0000" in data:
                obj = _unbinary(obj)
            # orjson refuses lone surrogates itself.
            return obj
    return _json_loads_reference(data)


def _json_loads_reference(data: bytes) -> Any:
    text = data.decode("utf-8")
    obj = _json_decoder.decode(text)
    # A NUL can only appear in a JSON string as the escape \u0000, so the
    # (costly) walk is needed only when the text holds one.
    if "\\u0000" in text:
        obj = _unbinary(obj)
    # Likewise a lone surrogate (which no codec can encode again, so the message
    # could never be forwarded) can only come from a \uD800-\uDFFF escape.
    if "\\ud" in text or "\\uD" in text:
        _check_encodable(obj)
    return obj


def _check_encodable(value: Any) -> None:
    """Raise ValueError when a string inside ``value`` is not valid Unicode text."""
    if isinstance(value, str):
        value.encode("utf-8")  # UnicodeEncodeError (a ValueError) on a lone surrogate
    elif isinstance(value, list):
        for item in value:
            _check_encodable(item)
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_encodable(key)
            _check_encodable(item)


# -- MessagePack ---------------------------------------------------------------


# msgpack.packb builds a Packer (and its 256 KiB buffer) for every call; these
# are reused instead. Each call takes one for itself (a Packer is not
# thread-safe) and gives it back. A Packer empties its buffer when packing
# fails, but never shrinks it: one that grew for a large message is dropped.
_PACKERS: list[Any] = []
_PACKER_KEEP_LIMIT = 1 << 20


def _msgpack_dumps(obj: Any) -> bytes:
    try:
        packer = _PACKERS.pop()
    except IndexError:  # none free: the first call, or others are packing
        packer = msgpack.Packer(use_bin_type=True)
    try:
        data: bytes = packer.pack(obj)
    except BaseException:
        _PACKERS.append(packer)
        raise
    if len(data) <= _PACKER_KEEP_LIMIT:
        _PACKERS.append(packer)
    return data


def _msgpack_loads(data: bytes) -> Any:
    return msgpack.unpackb(data, raw=False, strict_map_key=True)


# -- CBOR ----------------------------------------------------------------------


def _refused_tag(what: str) -> Any:
    """A CBOR semantic decoder that refuses its tag."""

    def refuse(decoder: object, immutable: bool = False) -> Any:
        raise ValueError(f"CBOR {what} are not accepted")

    return refuse


# Tags 28/29 (value sharing) can build cyclic structures; a WAMP peer has no use
# for them and a cycle would hang whoever walks the payload. Tag 36 (a MIME
# message) decodes to an email.message.Message, which no codec encodes again:
# the router could not forward it even to a CBOR peer.
_no_shared_references = _refused_tag("shared references (tags 28/29)")


def _self_described(value: Any, immutable: bool = False) -> Any:
    """Tag 55799 (self-described CBOR, RFC 8949 §3.4.6) marks its content as CBOR
    and means nothing else: any encoder may prefix it, so it is unwrapped."""
    return value


_CBOR_DECODERS: dict[int, Any] = {
    28: _no_shared_references,
    29: _no_shared_references,
    36: _refused_tag("MIME messages (tag 36)"),
    55799: _self_described,
}


def _cbor_dumps(obj: Any) -> bytes:
    return cbor2.dumps(obj)


def _cbor_loads(data: bytes) -> Any:
    stream = io.BytesIO(data)
    decoder = cbor2.CBORDecoder(
        stream,
        semantic_decoders=_CBOR_DECODERS,
        allow_duplicate_keys=False,
        strict_hashable_types=True,
    )
    obj = decoder.decode()
    if stream.tell() != len(data):
        raise ValueError("trailing bytes after the CBOR item")
    return obj


# -- the Serializer class -------------------------------------------------------

_LENGTH = struct.Struct(">I")


class Serializer:
    """One WAMP serialization, plain or batched.

    ``codec`` is ``"json"``, ``"msgpack"`` or ``"cbor"``; ``subprotocol`` the
    WebSocket subprotocol name; ``rawsocket_id`` the RawSocket serializer number;
    ``binary`` tells whether WebSocket messages are binary (JSON's are text).
    """

    __slots__ = ("_dumps", "_loads", "batched", "binary", "codec", "rawsocket_id", "subprotocol")

    codec: str
    batched: bool
    binary: bool
    rawsocket_id: int
    subprotocol: str

    def __init__(self, codec: str, *, batched: bool = False) -> None:
        if codec not in _CODECS:
            raise LocalProtocolError(f"unknown codec {codec!r} (json, msgpack or cbor)")
        dumps, loads, rawsocket_id = _CODECS[codec]
        self.codec = codec
        self.batched = batched
        self.binary = codec != "json"
        self.rawsocket_id = rawsocket_id
        self.subprotocol = f"wamp.2.{codec}" + (".batched" if batched else "")
        self._dumps = dumps
        self._loads = loads

    def __repr__(self) -> str:
        return f"Serializer({self.subprotocol!r})"

    def dumps(self, obj: Any) -> bytes:
        """Encode any value with this codec (no batch framing, no cache)."""
        try:
            return self._dumps(obj)
        except (
            TypeError,
            ValueError,
            OverflowError,
            UnicodeError,
            RecursionError,
            cbor2.CBOREncodeError,  # in cbor2 6, neither a TypeError nor a ValueError
        ) as exc:
            raise SerializationError(f"cannot encode with {self.codec}: {exc}") from None

    def loads(self, data: bytes) -> Any:
        """Decode one value with this codec; any failure is a ``RemoteProtocolError``."""
        try:
            return self._loads(data)
        except RecursionError:
            raise RemoteProtocolError(f"invalid {self.codec}: nested too deeply") from None
        except Exception as exc:  # the codecs raise many exception types on bad input
            detail = str(exc) or type(exc).__name__
            if exc.__cause__ is not None:  # cbor2 wraps the real reason
                detail = f"{detail}: {exc.__cause__}"
            raise RemoteProtocolError(f"invalid {self.codec}: {detail}") from None

    def encode(self, message: Message) -> bytes:
        """Encode ``message`` as one transport message (a batch of one when batched).

        The plain encoding is cached on the message, keyed by codec.
        """
        cache: dict[str, bytes] | None = getattr(message, "_wire", None)
        if cache is None:
            cache = {}
            object.__setattr__(message, "_wire", cache)
        data = cache.get(self.codec)
        if data is None:
            data = cache[self.codec] = self.dumps(message.to_list())
        if self.batched:
            return self._frame(data)
        return data

    def encode_many(self, messages: Iterable[Message]) -> list[bytes]:
        """Encode several messages as transport messages.

        Batched serializers join them into one transport message; plain ones
        give one transport message each. An empty input gives an empty list.
        """
        encoded = [self.encode(message) for message in messages]
        if self.batched and len(encoded) > 1:
            return [b"".join(encoded)]
        return encoded

    def _frame(self, data: bytes) -> bytes:
        if self.codec == "json":
            return data + b"\x1e"
        return _LENGTH.pack(len(data)) + data

    def decode(self, data: bytes) -> list[Message]:
        """Decode one transport message into its WAMP messages.

        Raises ``RemoteProtocolError`` for undecodable bytes, a malformed
        message, or (batched) a broken frame or an empty batch.
        """
        if not self.batched:
            return [parse_message(self.loads(data))]
        return [parse_message(self.loads(chunk)) for chunk in self._split(data)]

    def _split(self, data: bytes) -> list[bytes]:
        if self.codec == "json":
            chunks = data.split(b"\x1e")
            if chunks[-1]:
                raise RemoteProtocolError("batched JSON: the last message is not ended by 0x1E")
            chunks.pop()
        else:
            chunks = []
            view = memoryview(data)
            pos = 0
            while pos < len(data):
                if pos + 4 > len(data):
                    raise RemoteProtocolError(f"batched {self.codec}: truncated length prefix")
                (length,) = _LENGTH.unpack_from(view, pos)
                pos += 4
                if pos + length > len(data):
                    raise RemoteProtocolError(f"batched {self.codec}: truncated message")
                chunks.append(bytes(view[pos : pos + length]))
                pos += length
        if not chunks:
            # AP/ap_transport_batched_websocket.md: a batch of 0 messages fails the transport.
            raise RemoteProtocolError("batched transport message holds no WAMP message")
        return chunks


_CODECS = {
    "json": (_json_dumps, _json_loads, 1),
    "msgpack": (_msgpack_dumps, _msgpack_loads, 2),
    "cbor": (_cbor_dumps, _cbor_loads, 3),
}

SERIALIZERS: dict[str, Serializer] = {
    s.subprotocol: s
    for codec in _CODECS
    for s in (Serializer(codec), Serializer(codec, batched=True))
}
"""Every serializer, keyed by its WebSocket subprotocol name."""

_BY_RAWSOCKET_ID = {s.rawsocket_id: s for s in SERIALIZERS.values() if not s.batched}


def get_serializer(name: str) -> Serializer:
    """The serializer for a WebSocket subprotocol (``"wamp.2.json"``) or codec name
    (``"json"``, ``"msgpack"``, ``"cbor"``). Raises ``LocalProtocolError`` if unknown.
    """
    serializer = SERIALIZERS.get(name) or SERIALIZERS.get(f"wamp.2.{name}")
    if serializer is None:
        raise LocalProtocolError(f"unknown serializer {name!r}")
    return serializer


def serializer_for_rawsocket(serializer_id: int) -> Serializer | None:
    """The serializer for a RawSocket serializer id (1 JSON, 2 MessagePack, 3 CBOR), or None."""
    return _BY_RAWSOCKET_ID.get(serializer_id)
