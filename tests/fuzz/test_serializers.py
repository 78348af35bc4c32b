"""Fuzzing the serializers with input built by the codecs' own grammars.

``tests/core/test_serializers.py`` feeds random bytes, random lists and
mutated valid encodings. Here the input is generated item by item in each
wire format (CBOR heads, tags and indefinite lengths; MessagePack type bytes and
extension types; JSON tokens, escapes and numbers), so that it reaches deep
into the decoders. The properties:

* decoding gives WAMP messages or raises ``RemoteProtocolError`` (whose text
  can itself be sent in an ABORT), never anything else;
* what a serializer accepts it can encode again, and that decodes to the same
  message (else the router could not forward it to a peer of the same codec);
* a batch cut into transport messages at arbitrary points: the pieces that
  start and end on frame boundaries decode to exactly their messages, the
  others decode or are refused, never crash.
"""

from __future__ import annotations

import itertools
import struct
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fuzz._values import same
from tests.core.vectors import messages
from wamp_core import (
    SERIALIZERS,
    Message,
    MessageType,
    RemoteProtocolError,
    Serializer,
    get_serializer,
)

FUZZ = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])

CODES = [int(t) for t in MessageType] + [0, 7, 255, 2**16]


def check_decode(serializer: Serializer, data: bytes) -> list[Message] | None:
    """Decode ``data``: messages, or None after a clean refusal; never another error."""
    refusal: RemoteProtocolError | None = None
    try:
        decoded = serializer.decode(data)
    except RemoteProtocolError as exc:
        refusal = exc
    if refusal is not None:
        assert refusal.reason == "wamp.error.protocol_violation"
        # The text goes into ABORT.Details.message: every codec must carry it.
        for codec in ("json", "msgpack", "cbor"):
            get_serializer(codec).dumps({"message": refusal.message})
        return None
    assert decoded
    for message in decoded:
        assert isinstance(message, Message)
        # Accepted input can be forwarded to a peer of the same codec, which
        # reads the same message.
        (copy,) = serializer.decode(serializer.encode(message))
        assert same(copy.to_list(), message.to_list())
    return decoded


def frame(serializer: Serializer, data: bytes) -> bytes:
    if not serializer.batched:
        return data
    if serializer.codec == "json":
        return data + b"\x1e"
    return struct.pack(">I", len(data)) + data


# -- CBOR, item by item ------------------------------------------------------------------


def cbor_head(major: int, argument: int, width: int | None = None) -> bytes:
    """A CBOR head; ``width`` forces a (possibly non-minimal) argument size."""
    if width is None:
        width = 0 if argument < 24 else 1 if argument < 256 else 2 if argument < 65536 else 4
        if argument >= 2**32:
            width = 8
    if width == 0:
        return bytes([major << 5 | argument])
    info = {1: 24, 2: 25, 4: 26, 8: 27}[width]
    return bytes([major << 5 | info]) + argument.to_bytes(width, "big")


cbor_widths = st.sampled_from([None, None, None, 1, 2, 4, 8])
cbor_ints = st.one_of(
    st.integers(0, 30), st.sampled_from([23, 24, 255, 256, 2**16, 2**32, 2**53, 2**64 - 1])
)


@st.composite
def cbor_scalar(draw: st.DrawFn) -> bytes:
    kind = draw(st.integers(0, 9))
    if kind in (0, 1):  # unsigned / negative integer
        value = draw(cbor_ints)
        width = draw(cbor_widths)
        if width is not None and value >= 256**width:
            width = None
        return cbor_head(kind, value, width)
    if kind in (2, 3):  # byte / text string, maybe lying about its length
        if kind == 3 and draw(st.booleans()):
            body = draw(st.text(max_size=8)).encode("utf-8", "surrogatepass")
        else:
            body = draw(st.binary(max_size=8))
        length = len(body) + draw(st.sampled_from([0, 0, 0, 1, -1]))
        return cbor_head(kind, max(length, 0)) + body
    if kind == 4:  # indefinite-length string of chunks
        major = draw(st.sampled_from([2, 3]))
        chunks = draw(st.lists(st.binary(max_size=4), max_size=3))
        inner = draw(st.sampled_from([2, 3, major, major]))
        return (
            bytes([major << 5 | 31])
            + b"".join(cbor_head(inner, len(c)) + c for c in chunks)
            + draw(st.sampled_from([b"\xff", b"\xff", b""]))
        )
    if kind == 5:  # simple values, floats, break, reserved additional information
        return draw(
            st.sampled_from(
                [b"\xf4", b"\xf5", b"\xf6", b"\xf7", b"\xf8\x10", b"\xf8\xff", b"\xff",
                 b"\xfc", b"\xfd", b"\xfe", b"\x1c", b"\x3d", b"\x5e", b"\x7f", b"\x9f\xff"]
            )
        )  # fmt: skip
    if kind == 6:  # half, single, double floats from raw bits (NaN, infinities, ...)
        width = draw(st.sampled_from([2, 4, 8]))
        return bytes([0xF9 + {2: 0, 4: 1, 8: 2}[width]]) + draw(
            st.binary(min_size=width, max_size=width)
        )
    if kind == 7:
        return draw(st.binary(max_size=4))  # raw bytes in the middle of an item
    return cbor_head(0, draw(st.integers(0, 2**64 - 1)))


cbor_tags = st.one_of(
    st.sampled_from([0, 1, 2, 3, 4, 5, 21, 24, 25, 28, 29, 30, 32, 35, 36, 37, 256, 258,
                     260, 261, 55799]),
    st.integers(0, 2**64 - 1),
)  # fmt: skip


def cbor_containers(inner: st.SearchStrategy[bytes]) -> st.SearchStrategy[bytes]:
    def array(items: list[bytes], lie: int, indefinite: bool) -> bytes:
        if indefinite:
            return b"\x9f" + b"".join(items) + b"\xff"
        return cbor_head(4, max(len(items) + lie, 0)) + b"".join(items)

    def mapping(pairs: list[tuple[bytes, bytes]], lie: int, indefinite: bool) -> bytes:
        body = b"".join(k + v for k, v in pairs)
        if indefinite:
            return b"\xbf" + body + b"\xff"
        return cbor_head(5, max(len(pairs) + lie, 0)) + body

    text_key = st.text(max_size=4).map(lambda s: cbor_head(3, len(s.encode())) + s.encode())
    lies = st.sampled_from([0, 0, 0, 0, 1, -1])
    return st.one_of(
        st.builds(array, st.lists(inner, max_size=4), lies, st.booleans()),
        st.builds(
            mapping,
            st.lists(st.tuples(st.one_of(text_key, text_key, inner), inner), max_size=3),
            lies,
            st.booleans(),
        ),
        st.builds(lambda tag, item: cbor_head(6, tag) + item, cbor_tags, inner),
    )


cbor_items = st.recursive(cbor_scalar(), cbor_containers, max_leaves=10)


@st.composite
def cbor_messages(draw: st.DrawFn) -> bytes:
    """A CBOR array starting with a message type code, or any CBOR item."""
    if draw(st.integers(0, 4)) == 0:
        return draw(cbor_items)
    rest = draw(st.lists(cbor_items, max_size=6))
    return cbor_head(4, len(rest) + 1) + cbor_head(0, draw(st.sampled_from(CODES))) + b"".join(rest)


# -- MessagePack, type byte by type byte --------------------------------------------------


HUGE_MSGPACK_LENGTHS = [b"\xdb\xff\xff\xff\xff", b"\xdd\xff\xff\xff\xff",
                        b"\xdf\xff\xff\xff\xff", b"\xc6\x7f\xff\xff\xff"]  # fmt: skip


@st.composite
def msgpack_scalar(draw: st.DrawFn) -> bytes:
    kind = draw(st.integers(0, 8))
    if kind == 0:
        return bytes([draw(st.sampled_from([0x00, 0x7F, 0xE0, 0xFF, 0xC0, 0xC2, 0xC3, 0xC1]))])
    if kind == 1:  # sized integers and floats from raw bytes
        head = draw(st.sampled_from(list(range(0xCA, 0xD4))))
        size = {0xCA: 4, 0xCB: 8, 0xCC: 1, 0xCD: 2, 0xCE: 4, 0xCF: 8}.get(
            head, {0xD0: 1, 0xD1: 2, 0xD2: 4, 0xD3: 8}.get(head, 1)
        )
        return bytes([head]) + draw(st.binary(min_size=size, max_size=size))
    if kind in (2, 3):  # str (maybe not UTF-8) and bin, maybe lying about the length
        body = draw(st.binary(max_size=8))
        length = max(len(body) + draw(st.sampled_from([0, 0, 0, 1, -1])), 0)
        if kind == 2 and draw(st.booleans()):
            return bytes([0xA0 | min(length, 31)]) + body  # fixstr
        head = draw(st.sampled_from([0xD9, 0xDA, 0xDB] if kind == 2 else [0xC4, 0xC5, 0xC6]))
        size = {0xD9: 1, 0xDA: 2, 0xDB: 4, 0xC4: 1, 0xC5: 2, 0xC6: 4}[head]
        return bytes([head]) + min(length, (1 << 8 * size) - 1).to_bytes(size, "big") + body
    if kind == 4:  # extension types, the timestamp (-1) above all, with any length
        code = draw(st.sampled_from([-1, -1, -128, 0, 5, 127])).to_bytes(1, "big", signed=True)
        size = draw(st.sampled_from([1, 2, 4, 8, 12, 16, 3]))
        body = draw(st.binary(min_size=size, max_size=size))
        fixed = {1: 0xD4, 2: 0xD5, 4: 0xD6, 8: 0xD7, 16: 0xD8}
        if size in fixed and draw(st.booleans()):
            return bytes([fixed[size]]) + code + body
        return b"\xc7" + bytes([size]) + code + body
    if kind == 5:  # a huge announced length with nothing behind it
        return draw(st.sampled_from(HUGE_MSGPACK_LENGTHS))
    if kind == 6:
        return draw(st.binary(max_size=4))
    return bytes([draw(st.integers(0, 0x7F))])


def msgpack_containers(inner: st.SearchStrategy[bytes]) -> st.SearchStrategy[bytes]:
    def array(items: list[bytes], head: str) -> bytes:
        n = len(items)
        if head == "fix":
            return bytes([0x90 | n]) + b"".join(items)
        return (
            b"\xdc" + n.to_bytes(2, "big") if head == "16" else b"\xdd" + n.to_bytes(4, "big")
        ) + b"".join(items)

    def mapping(pairs: list[tuple[bytes, bytes]]) -> bytes:
        return bytes([0x80 | len(pairs)]) + b"".join(k + v for k, v in pairs)

    str_key = st.text(max_size=4).map(lambda s: bytes([0xA0 | len(s.encode())]) + s.encode())
    return st.one_of(
        st.builds(array, st.lists(inner, max_size=4), st.sampled_from(["fix", "16", "32"])),
        st.builds(
            mapping, st.lists(st.tuples(st.one_of(str_key, str_key, inner), inner), max_size=3)
        ),
    )


msgpack_items = st.recursive(msgpack_scalar(), msgpack_containers, max_leaves=10)


@st.composite
def msgpack_messages(draw: st.DrawFn) -> bytes:
    if draw(st.integers(0, 4)) == 0:
        return draw(msgpack_items)
    rest = draw(st.lists(msgpack_items, max_size=6))
    code = draw(st.sampled_from(CODES))
    head = bytes([code]) if code < 128 else b"\xce" + code.to_bytes(4, "big")
    return bytes([0x90 | len(rest) + 1]) + head + b"".join(rest)


# -- JSON, token by token ------------------------------------------------------------------

json_numbers = st.one_of(
    st.integers().map(str),
    st.sampled_from(["-0", "0.0", "1e400", "-1e400", "1e-400", "1E5", "9" * 19, "-" + "9" * 25,
                     "1" * 5000, "01", "1.", ".5", "+1", "0x10", "NaN", "Infinity", "-Infinity",
                     "9007199254740993", "1.5e308"]),
)  # fmt: skip
json_strings = st.one_of(
    st.text(max_size=8).map(lambda s: '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'),
    st.sampled_from([r'"\u0000"', r'"\u0000AAEC"', r'"\u0000!!"', r'"\u0000QQ=="', r'"\ud800"',
                     r'"\uDFFF\ud800"', r'"\ud83d\ude00"', r'"\x41"', r'"\u12"', '"\x01"', '"',
                     '"\u2028"', r'"\/"']),
)  # fmt: skip


def json_containers(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.one_of(
        st.lists(inner, max_size=4).map(lambda items: "[" + ",".join(items) + "]"),
        st.lists(st.tuples(json_strings, inner), max_size=3).map(
            lambda pairs: "{" + ",".join(f"{k}:{v}" for k, v in pairs) + "}"
        ),
        st.tuples(st.sampled_from(["[", "{", "[[", ",", "]", "}", ":"]), inner).map("".join),
    )


json_values = st.recursive(
    st.one_of(json_numbers, json_strings, st.sampled_from(["true", "false", "null", "tru"])),
    json_containers,
    max_leaves=10,
)


@st.composite
def json_messages(draw: st.DrawFn) -> bytes:
    if draw(st.integers(0, 4)) == 0:
        text = draw(json_values)
    else:
        rest = draw(st.lists(json_values, max_size=6))
        text = "[" + ",".join([str(draw(st.sampled_from(CODES))), *rest]) + "]"
    space = draw(st.sampled_from(["", "", " ", "\n", "\ufeff", "\x00", "\u00a0"]))
    return (space + text + draw(st.sampled_from(["", "", " ", "x", "]", space]))).encode(
        "utf-8", "surrogatepass"
    )


# -- messages of the right shape holding exotic values -------------------------------------
#
# The grammars above are mostly refused by parse_message (wrong layout). These
# follow each message's layout (IDs, URIs, dicts with string keys, lists) and
# put the codec's exotic values into Details, Options and the payload: CBOR tags
# and simple values, floats from raw bits, MessagePack extension types, JSON
# escapes and numbers. Most of them are accepted, which exercises the
# re-encoding property of check_decode.


def _cbor_text(text: str) -> bytes:
    raw = text.encode("utf-8")
    return cbor_head(3, len(raw)) + raw


def _cbor_int(value: int) -> bytes:
    return cbor_head(0, value) if value >= 0 else cbor_head(1, -1 - value)


cbor_valid_scalars = st.one_of(
    st.integers(-(2**64), 2**64 - 1).map(_cbor_int),
    st.text(max_size=6).map(_cbor_text),
    st.binary(max_size=6).map(lambda b: cbor_head(2, len(b)) + b),
    st.sampled_from([b"\xf4", b"\xf5", b"\xf6", b"\xf7", b"\xf8\x20", b"\xf8\xff", b"\xe0"]),
    st.builds(lambda bits: b"\xf9" + bits, st.binary(min_size=2, max_size=2)),
    st.builds(lambda bits: b"\xfa" + bits, st.binary(min_size=4, max_size=4)),
    st.builds(lambda bits: b"\xfb" + bits, st.binary(min_size=8, max_size=8)),
    st.builds(lambda b: b"\x5f" + cbor_head(2, len(b)) + b + b"\xff", st.binary(max_size=4)),
)
cbor_valid_items = st.recursive(
    cbor_valid_scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3).map(lambda xs: cbor_head(4, len(xs)) + b"".join(xs)),
        st.dictionaries(st.text(max_size=4), inner, max_size=3).map(
            lambda d: cbor_head(5, len(d)) + b"".join(_cbor_text(k) + v for k, v in d.items())
        ),
        st.builds(lambda tag, item: cbor_head(6, tag) + item, cbor_tags, inner),
    ),
    max_leaves=6,
)


def _msgpack_text(text: str) -> bytes:
    raw = text.encode("utf-8")
    return (bytes([0xA0 | len(raw)]) if len(raw) < 32 else b"\xd9" + bytes([len(raw)])) + raw


def _msgpack_int(value: int) -> bytes:
    if 0 <= value < 128:
        return bytes([value])
    if value >= 0:
        return b"\xcf" + value.to_bytes(8, "big")
    return b"\xd3" + value.to_bytes(8, "big", signed=True)


msgpack_valid_scalars = st.one_of(
    st.integers(-(2**63), 2**64 - 1).map(_msgpack_int),
    st.text(max_size=6).map(_msgpack_text),
    st.binary(max_size=6).map(lambda b: b"\xc4" + bytes([len(b)]) + b),
    st.sampled_from([b"\xc0", b"\xc2", b"\xc3"]),
    st.builds(lambda bits: b"\xca" + bits, st.binary(min_size=4, max_size=4)),
    st.builds(lambda bits: b"\xcb" + bits, st.binary(min_size=8, max_size=8)),
    st.builds(
        lambda code, body: (
            bytes([{1: 0xD4, 2: 0xD5, 4: 0xD6, 8: 0xD7, 16: 0xD8}[len(body)]])
            + code.to_bytes(1, "big", signed=True)
            + body
        ),
        st.sampled_from([-1, -1, 0, 42, -128]),
        st.sampled_from([1, 2, 4, 8, 16]).flatmap(lambda n: st.binary(min_size=n, max_size=n)),
    ),
    st.builds(
        lambda body: b"\xc7\x0c\xff" + body, st.binary(min_size=12, max_size=12)
    ),  # a 96-bit timestamp
)
msgpack_valid_items = st.recursive(
    msgpack_valid_scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3).map(lambda xs: bytes([0x90 | len(xs)]) + b"".join(xs)),
        st.dictionaries(st.text(max_size=4), inner, max_size=3).map(
            lambda d: bytes([0x80 | len(d)]) + b"".join(_msgpack_text(k) + v for k, v in d.items())
        ),
    ),
    max_leaves=6,
)

json_valid_items = st.recursive(
    st.one_of(
        json_numbers.filter(lambda n: n.lstrip("-").isdigit() and len(n) < 300),
        st.sampled_from(["0.5", "-0.0", "1e308", "5e-324", "1E+2", "true", "false", "null"]),
        json_strings.filter(lambda s: len(s) >= 2 and s.endswith('"') and not s.endswith('\\"')),
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3).map(lambda items: "[" + ",".join(items) + "]"),
        st.lists(st.tuples(json_strings, inner), max_size=3).map(
            lambda pairs: "{" + ",".join(f"{k}:{v}" for k, v in pairs) + "}"
        ),
    ),
    max_leaves=6,
)

_ENCODERS: dict[str, Any] = {
    "cbor": (
        lambda n: cbor_head(4, n),
        lambda n: cbor_head(5, n),
        _cbor_int,
        _cbor_text,
        cbor_valid_items,
    ),
    "msgpack": (
        lambda n: bytes([0x90 | n]),
        lambda n: bytes([0x80 | n]),
        _msgpack_int,
        _msgpack_text,
        msgpack_valid_items,
    ),
}


@st.composite
def shaped_messages(draw: st.DrawFn, codec: str) -> bytes:
    """A message with the right layout whose dicts and payload hold exotic values."""
    from tests.core.vectors import ALL_MESSAGE_CLASSES

    cls = draw(st.sampled_from(ALL_MESSAGE_CLASSES))
    schema = cls._schema
    count = draw(st.integers(cls._min_len - 1, len(schema)))
    ids = st.integers(1, 2**53) | st.sampled_from([0, 2**53 + 1, -1])
    if codec == "json":
        items = json_valid_items
        parts = [str(int(cls.type))]
        for _, kind in schema[:count]:
            if kind in ("id", "id0"):
                parts.append(str(draw(ids)))
            elif kind == "reqtype":
                parts.append(str(draw(st.sampled_from([16, 32, 48, 64, 68, 70, 8]))))
            elif kind in ("uri", "str"):
                parts.append(draw(json_strings))
            elif kind == "list":
                parts.append("[" + ",".join(draw(st.lists(items, max_size=3))) + "]")
            else:
                pairs = draw(st.lists(st.tuples(json_strings, items), max_size=3))
                parts.append("{" + ",".join(f"{k}:{v}" for k, v in pairs) + "}")
        return ("[" + ",".join(parts) + "]").encode("utf-8", "surrogatepass")
    array, mapping, integer, text, items = _ENCODERS[codec]
    out = [array(count + 1), integer(int(cls.type))]
    for _, kind in schema[:count]:
        if kind in ("id", "id0"):
            out.append(integer(draw(ids)))
        elif kind == "reqtype":
            out.append(integer(draw(st.sampled_from([16, 32, 48, 64, 68, 70, 8]))))
        elif kind in ("uri", "str"):
            out.append(text(draw(st.text(max_size=8))))
        elif kind == "list":
            values = draw(st.lists(items, max_size=3))
            out.append(array(len(values)) + b"".join(values))
        else:
            entries = draw(st.dictionaries(st.text(max_size=5), items, max_size=3))
            out.append(mapping(len(entries)) + b"".join(text(k) + v for k, v in entries.items()))
    return b"".join(out)


GRAMMARS = {
    "json": st.one_of(json_messages(), shaped_messages("json")),
    "msgpack": st.one_of(msgpack_messages(), shaped_messages("msgpack")),
    "cbor": st.one_of(cbor_messages(), shaped_messages("cbor")),
}


@pytest.mark.parametrize("subprotocol", sorted(SERIALIZERS))
@FUZZ
@given(data=st.data())
def test_grammar_input_decodes_or_is_refused(subprotocol: str, data: st.DataObject) -> None:
    serializer = SERIALIZERS[subprotocol]
    grammar = GRAMMARS[serializer.codec]
    if serializer.batched:
        items = data.draw(st.lists(grammar, min_size=1, max_size=3))
        payload = b"".join(frame(serializer, item) for item in items)
    else:
        payload = data.draw(grammar)
    check_decode(serializer, payload)


@pytest.mark.parametrize("codec", ["json", "msgpack", "cbor"])
@settings(max_examples=12, deadline=None)
@given(
    depth=st.sampled_from([1, 30, 999, 1000, 1024, 1025, 5000, 100_000]),
    code=st.sampled_from([16, 48, 36]),
)
def test_deep_nesting_is_refused_or_accepted_cleanly(codec: str, depth: int, code: int) -> None:
    """Nesting far beyond the interpreter's recursion limit is a clean refusal."""
    opener = {"json": b"[", "msgpack": b"\x91", "cbor": b"\x81"}[codec]
    closer = {"json": b"]", "msgpack": b"", "cbor": b""}[codec]
    leaf = {"json": b"1", "msgpack": b"\x01", "cbor": b"\x01"}[codec]
    serializer = get_serializer(codec)
    head = serializer.dumps([code, 1, {}, "com.topic"])[:-1] if codec == "json" else None
    if codec == "json":
        assert head is not None
        payload = head + b"," + opener * depth + leaf + closer * depth + b"]"
    else:
        prefix = {"msgpack": b"\x95", "cbor": b"\x85"}[codec]
        parts = serializer.dumps([code, 1, {}, "com.topic"])[1:]
        payload = prefix + parts + opener * depth + leaf
    check_decode(serializer, payload)


# -- batches cut at arbitrary points ----------------------------------------------------

BATCHED = [s for s in SERIALIZERS.values() if s.batched]


@pytest.mark.parametrize("serializer", BATCHED, ids=str)
@FUZZ
@given(batch=st.lists(messages, min_size=1, max_size=5), cuts=st.lists(st.integers(0), max_size=6))
def test_batch_cut_anywhere(serializer: Serializer, batch: list[Message], cuts: list[int]) -> None:
    frames = [serializer.encode(message) for message in batch]
    data = b"".join(frames)
    boundaries = [0]
    for framed in frames:
        boundaries.append(boundaries[-1] + len(framed))
    if serializer.codec == "json":
        # 0x1E is a control character: JSON escapes it inside strings, so it can
        # only appear as a frame's end.
        assert [i + 1 for i, byte in enumerate(data) if byte == 0x1E] == boundaries[1:]
    points = sorted({0, len(data), *(cut % (len(data) + 1) for cut in cuts)})
    for start, stop in itertools.pairwise(points):
        piece = data[start:stop]
        if start in boundaries and stop in boundaries:
            first, last = boundaries.index(start), boundaries.index(stop)
            assert serializer.decode(piece) == batch[first:last]
            continue
        decoded = check_decode(serializer, piece)
        if serializer.codec == "json" and stop not in boundaries:
            assert decoded is None  # the piece does not end with 0x1E


@pytest.mark.parametrize("serializer", BATCHED, ids=str)
@FUZZ
@given(
    batch=st.lists(messages, min_size=1, max_size=3),
    lengths=st.lists(st.integers(0, 2**32 - 1) | st.integers(0, 64), min_size=1, max_size=3),
)
def test_batch_length_prefixes_that_lie(
    serializer: Serializer, batch: list[Message], lengths: list[int]
) -> None:
    """Length prefixes (or JSON separators) replaced by arbitrary values."""
    pieces: list[bytes] = []
    for message, length in zip(batch, lengths * len(batch)):
        body = serializer.dumps(message.to_list())
        if serializer.codec == "json":
            pieces.append(body + b"\x1e" * (length % 3))
        else:
            pieces.append(struct.pack(">I", length) + body)
    check_decode(serializer, b"".join(pieces))


# -- CBOR semantic tags --------------------------------------------------------------------

TAG_CONTENTS: list[Any] = [
    "", "abc", "2020-01-01T00:00:00Z", b"", b"\x01\x02\x03\x04", b"0123456789abcdef", 0, 1, -1,
    1.5, [1, 2], [-1, 5], ["a", "b"], [b"\x01\x02\x03\x04", 8], {}, {"a": 1}, None,
]  # fmt: skip
KNOWN_TAGS = [*range(40), 100, 256, 258, 260, 261, 262, 263, 1004, 1040, 55799]


def tagged_publish(tag: int, content: Any) -> bytes:
    """A PUBLISH whose only argument is ``content`` under CBOR tag ``tag``."""
    import cbor2

    head = cbor2.dumps([16, 1, {}, "com.topic"])
    return b"\x85" + head[1:] + b"\x81" + cbor_head(6, tag) + cbor2.dumps(content)


def test_cbor_mime_tag_is_refused() -> None:
    """Found by test_grammar_input_decodes_or_is_refused: tag 36 decoded to an
    email.message.Message, which no codec encodes again, so the router could
    not forward the message even to a CBOR peer."""
    cbor = get_serializer("cbor")
    with pytest.raises(RemoteProtocolError, match=r"MIME messages \(tag 36\)"):
        cbor.decode(tagged_publish(36, ""))
    assert check_decode(cbor, tagged_publish(36, "Content-Type: text/plain\n\nx")) is None


@pytest.mark.parametrize("tag", KNOWN_TAGS)
def test_every_cbor_tag_is_refused_or_encodes_again(tag: int) -> None:
    """What a tag decodes to (datetime, Decimal, Fraction, UUID, IP address, set,
    regular expression, ...) is refused or encodes again to the same value."""
    cbor = get_serializer("cbor")
    for content in TAG_CONTENTS:
        check_decode(cbor, tagged_publish(tag, content))
