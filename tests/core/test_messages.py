"""Tests for wamp_core._messages: layouts, round-trips and the checks of parse_message.

The layouts below are written from the spec (BP/messages.md, AP/ap_messages.md;
the table in wamp-spec-checklist.md section 1), independently of the module.
"""

from __future__ import annotations

import dataclasses
import sys
from typing import Any, NamedTuple

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.core.vectors import ALL_MESSAGE_CLASSES, MESSAGE_STRATEGIES, typed
from wamp_core import (
    ERROR_REQUEST_TYPES,
    MAX_ID,
    Abort,
    Authenticate,
    Call,
    Cancel,
    Challenge,
    Error,
    Event,
    Goodbye,
    Hello,
    Interrupt,
    Invocation,
    LocalProtocolError,
    Message,
    MessageType,
    ProtocolError,
    Publish,
    Published,
    Register,
    Registered,
    RemoteProtocolError,
    Result,
    Subscribe,
    Subscribed,
    Unregister,
    Unregistered,
    Unsubscribe,
    Unsubscribed,
    Welcome,
    Yield,
    parse_message,
)

PROTOCOL_VIOLATION = "wamp.error.protocol_violation"
ARGS = ("Arguments", "list")
KW = ("ArgumentsKw", "dict")


class Layout(NamedTuple):
    """One message's layout: the elements after the type code and how many are required."""

    cls: type[Message]
    name: str
    code: int
    elements: tuple[tuple[str, str], ...]
    required: int


LAYOUTS = [
    Layout(Hello, "HELLO", 1, (("Realm", "uri"), ("Details", "dict")), 2),
    Layout(Welcome, "WELCOME", 2, (("Session", "id"), ("Details", "dict")), 2),
    Layout(Abort, "ABORT", 3, (("Details", "dict"), ("Reason", "uri"), ARGS, KW), 2),
    Layout(Challenge, "CHALLENGE", 4, (("AuthMethod", "str"), ("Extra", "dict")), 2),
    Layout(Authenticate, "AUTHENTICATE", 5, (("Signature", "str"), ("Extra", "dict")), 2),
    Layout(Goodbye, "GOODBYE", 6, (("Details", "dict"), ("Reason", "uri")), 2),
    Layout(
        Error,
        "ERROR",
        8,
        (
            ("REQUEST.Type", "reqtype"),
            ("REQUEST.Request", "id"),
            ("Details", "dict"),
            ("Error", "uri"),
            ARGS,
            KW,
        ),
        4,
    ),
    Layout(
        Publish,
        "PUBLISH",
        16,
        (("Request", "id"), ("Options", "dict"), ("Topic", "uri"), ARGS, KW),
        3,
    ),
    Layout(Published, "PUBLISHED", 17, (("PUBLISH.Request", "id"), ("Publication", "id")), 2),
    Layout(
        Subscribe, "SUBSCRIBE", 32, (("Request", "id"), ("Options", "dict"), ("Topic", "uri")), 3
    ),
    Layout(Subscribed, "SUBSCRIBED", 33, (("SUBSCRIBE.Request", "id"), ("Subscription", "id")), 2),
    Layout(
        Unsubscribe, "UNSUBSCRIBE", 34, (("Request", "id"), ("SUBSCRIBED.Subscription", "id")), 2
    ),
    Layout(
        Unsubscribed, "UNSUBSCRIBED", 35, (("UNSUBSCRIBE.Request", "id0"), ("Details", "dict")), 1
    ),
    Layout(
        Event,
        "EVENT",
        36,
        (("Subscription", "id"), ("Publication", "id"), ("Details", "dict"), ARGS, KW),
        3,
    ),
    Layout(
        Call,
        "CALL",
        48,
        (("Request", "id"), ("Options", "dict"), ("Procedure", "uri"), ARGS, KW),
        3,
    ),
    Layout(Cancel, "CANCEL", 49, (("CALL.Request", "id"), ("Options", "dict")), 2),
    Layout(Result, "RESULT", 50, (("CALL.Request", "id"), ("Details", "dict"), ARGS, KW), 2),
    Layout(
        Register, "REGISTER", 64, (("Request", "id"), ("Options", "dict"), ("Procedure", "uri")), 3
    ),
    Layout(Registered, "REGISTERED", 65, (("REGISTER.Request", "id"), ("Registration", "id")), 2),
    Layout(Unregister, "UNREGISTER", 66, (("Request", "id"), ("REGISTERED.Registration", "id")), 2),
    Layout(
        Unregistered, "UNREGISTERED", 67, (("UNREGISTER.Request", "id0"), ("Details", "dict")), 1
    ),
    Layout(
        Invocation,
        "INVOCATION",
        68,
        (("Request", "id"), ("REGISTERED.Registration", "id"), ("Details", "dict"), ARGS, KW),
        3,
    ),
    Layout(Interrupt, "INTERRUPT", 69, (("INVOCATION.Request", "id"), ("Options", "dict")), 2),
    Layout(Yield, "YIELD", 70, (("INVOCATION.Request", "id"), ("Options", "dict"), ARGS, KW), 2),
]
LAYOUT_IDS = [layout.name for layout in LAYOUTS]

# A valid value of each element kind, used to build a full-length valid message.
GOOD = {
    "id": 1234,
    "id0": 5,
    "reqtype": 48,
    "uri": "com.example.thing",
    "str": "some text",
    "dict": {"key": "value"},
    "list": ["a", 1],
}


def full_message(layout: Layout) -> list[Any]:
    """The longest valid raw message of ``layout`` (every optional element present)."""
    return [layout.code, *(GOOD[kind] for _, kind in layout.elements)]


def count_text(layout: Layout) -> str:
    low, high = layout.required + 1, len(layout.elements) + 1
    return str(low) if low == high else f"{low} to {high}"


def parse_error(raw: object) -> RemoteProtocolError:
    """Parse ``raw`` and return the RemoteProtocolError it must raise."""
    with pytest.raises(RemoteProtocolError) as info:
        parse_message(raw)
    error = info.value
    assert error.reason == PROTOCOL_VIOLATION
    assert str(error) == error.message
    return error


def test_layout_table_covers_every_message_type() -> None:
    assert {layout.cls for layout in LAYOUTS} == set(ALL_MESSAGE_CLASSES)
    assert {layout.code for layout in LAYOUTS} == {int(t) for t in MessageType}
    assert len(LAYOUTS) == 24


@pytest.mark.parametrize("layout", LAYOUTS, ids=LAYOUT_IDS)
def test_type_codes(layout: Layout) -> None:
    assert layout.cls.type == layout.code
    assert layout.cls.type.name == layout.name
    assert MessageType(layout.code).name == layout.name


def test_error_request_types() -> None:
    assert {int(t) for t in ERROR_REQUEST_TYPES} == {16, 32, 34, 48, 64, 66, 68, 70}


# -- valid messages round-trip ---------------------------------------------------

D = {"roles": {"caller": {}, "callee": {"features": {"x": True}}}}
UNKNOWN = {"x_custom_option": [1, {"deep": None}], "_impl_key": "kept", "timeout": 0}

VALID: list[tuple[list[Any], Message]] = [
    ([1, "com.example.realm", D], Hello("com.example.realm", D)),
    ([1, "realm1", {}], Hello("realm1", {})),
    ([2, 9129137332, {"roles": {"broker": {}}}], Welcome(9129137332, {"roles": {"broker": {}}})),
    ([2, MAX_ID, UNKNOWN], Welcome(MAX_ID, UNKNOWN)),
    ([3, {}, "wamp.close.system_shutdown"], Abort({}, "wamp.close.system_shutdown")),
    ([3, {"message": "m"}, "r", ["a"]], Abort({"message": "m"}, "r", ["a"])),
    ([3, {}, "r", [], {"k": 1}], Abort({}, "r", [], {"k": 1})),
    ([4, "wampcra", {"challenge": "{}"}], Challenge("wampcra", {"challenge": "{}"})),
    ([5, "gir1mSx+deCDUV7F", {}], Authenticate("gir1mSx+deCDUV7F", {})),
    ([6, {}, "wamp.close.normal"], Goodbye({}, "wamp.close.normal")),
    ([8, 48, 7814135, {}, "com.myapp.error"], Error(48, 7814135, {}, "com.myapp.error")),
    ([8, 68, 1, {}, "e", ["x"]], Error(68, 1, {}, "e", ["x"])),
    ([8, 16, 1, UNKNOWN, "e", [1, 2], {"a": "b"}], Error(16, 1, UNKNOWN, "e", [1, 2], {"a": "b"})),
    ([16, 239714735, {}, "com.myapp.mytopic1"], Publish(239714735, {}, "com.myapp.mytopic1")),
    (
        [16, 1, {"acknowledge": True}, "t", ["Hello"]],
        Publish(1, {"acknowledge": True}, "t", ["Hello"]),
    ),
    ([16, 1, {}, "t", []], Publish(1, {}, "t", [])),
    ([16, 1, {}, "t", [], {}], Publish(1, {}, "t", [], {})),
    (
        [16, 1, UNKNOWN, "t", ["a"], {"b": [b"\x00"]}],
        Publish(1, UNKNOWN, "t", ["a"], {"b": [b"\x00"]}),
    ),
    ([17, 239714735, 4429313566], Published(239714735, 4429313566)),
    ([32, 713845233, {}, "com.myapp.mytopic1"], Subscribe(713845233, {}, "com.myapp.mytopic1")),
    ([32, 1, {"match": "wildcard"}, "a..c"], Subscribe(1, {"match": "wildcard"}, "a..c")),
    ([33, 713845233, 5512315355], Subscribed(713845233, 5512315355)),
    ([34, 85346237, 5512315355], Unsubscribe(85346237, 5512315355)),
    ([35, 85346237], Unsubscribed(85346237)),
    (
        [35, 0, {"subscription": 9, "reason": "gone"}],
        Unsubscribed(0, {"subscription": 9, "reason": "gone"}),
    ),
    ([35, 7, {}], Unsubscribed(7, {})),
    ([36, 9823526, 112233445566, {}], Event(9823526, 112233445566, {})),
    ([36, 1, 2, {"publisher": 3}, ["e"]], Event(1, 2, {"publisher": 3}, ["e"])),
    ([36, 1, 2, {}, [], {"k": "v"}], Event(1, 2, {}, [], {"k": "v"})),
    ([48, 7814135, {}, "com.myapp.myprocedure1"], Call(7814135, {}, "com.myapp.myprocedure1")),
    ([48, 1, UNKNOWN, "p", [None, True, 1.5]], Call(1, UNKNOWN, "p", [None, True, 1.5])),
    ([48, 1, {}, "p", [], {"x": {}}], Call(1, {}, "p", [], {"x": {}})),
    ([49, 7814135, {}], Cancel(7814135, {})),
    ([49, 1, {"mode": "kill"}], Cancel(1, {"mode": "kill"})),
    ([50, 7814135, {}], Result(7814135, {})),
    (
        [50, 1, {"progress": True}, ["Hello, world!"]],
        Result(1, {"progress": True}, ["Hello, world!"]),
    ),
    ([50, 1, {}, [], {"r": 1}], Result(1, {}, [], {"r": 1})),
    (
        [64, 25349185, {}, "com.myapp.myprocedure1"],
        Register(25349185, {}, "com.myapp.myprocedure1"),
    ),
    (
        [64, 1, {"match": "prefix", "invoke": "roundrobin"}, "a."],
        Register(1, {"match": "prefix", "invoke": "roundrobin"}, "a."),
    ),
    ([65, 25349185, 2103333224], Registered(25349185, 2103333224)),
    ([66, 788923562, 2103333224], Unregister(788923562, 2103333224)),
    ([67, 788923562], Unregistered(788923562)),
    (
        [67, 0, {"registration": 2103333224, "reason": "x"}],
        Unregistered(0, {"registration": 2103333224, "reason": "x"}),
    ),
    ([68, 6131533, 9823526, {}], Invocation(6131533, 9823526, {})),
    (
        [68, 1, 2, {"procedure": "a.b"}, ["x"], {"y": 1}],
        Invocation(1, 2, {"procedure": "a.b"}, ["x"], {"y": 1}),
    ),
    ([69, 6131533, {}], Interrupt(6131533, {})),
    ([69, 1, {"mode": "killnowait"}], Interrupt(1, {"mode": "killnowait"})),
    ([70, 6131533, {}], Yield(6131533, {})),
    (
        [70, 1, {"progress": True}, [[1]], {"z": None}],
        Yield(1, {"progress": True}, [[1]], {"z": None}),
    ),
]


def test_valid_table_covers_every_message_type() -> None:
    assert {type(message) for _, message in VALID} == set(ALL_MESSAGE_CLASSES)


@pytest.mark.parametrize(("raw", "message"), VALID, ids=[repr(m)[:50] for _, m in VALID])
def test_valid_message_round_trip(raw: list[Any], message: Message) -> None:
    parsed = parse_message(raw)
    assert type(parsed) is type(message)
    assert parsed == message
    assert parsed.type == raw[0]
    assert parsed.to_list() == raw
    assert typed(parsed.to_list()) == typed(raw)
    assert message.to_list() == raw
    assert parse_message(message.to_list()) == message


def test_unknown_keys_are_kept_unchanged() -> None:
    raw = [48, 1, dict(UNKNOWN), "p"]
    parsed = parse_message(raw)
    assert isinstance(parsed, Call)
    assert parsed.options == UNKNOWN
    assert parsed.options is raw[2]  # shared, not copied (documented)


@pytest.mark.parametrize(
    ("args", "kwargs", "tail"),
    [
        (None, None, []),
        ([], None, [[]]),
        (["a"], None, [["a"]]),
        (None, {}, [[], {}]),
        (None, {"k": 1}, [[], {"k": 1}]),
        ([], {}, [[], {}]),
        ([1], {"k": 1}, [[1], {"k": 1}]),
    ],
)
def test_payload_layout(
    args: list[Any] | None, kwargs: dict[str, Any] | None, tail: list[Any]
) -> None:
    """Args is written when Kw is (as [] if absent); empty Args/Kw given are kept."""
    for message, head in [
        (Abort({}, "r", args, kwargs), [3, {}, "r"]),
        (Error(48, 1, {}, "e", args, kwargs), [8, 48, 1, {}, "e"]),
        (Publish(1, {}, "t", args, kwargs), [16, 1, {}, "t"]),
        (Event(1, 2, {}, args, kwargs), [36, 1, 2, {}]),
        (Call(1, {}, "p", args, kwargs), [48, 1, {}, "p"]),
        (Result(1, {}, args, kwargs), [50, 1, {}]),
        (Invocation(1, 2, {}, args, kwargs), [68, 1, 2, {}]),
        (Yield(1, {}, args, kwargs), [70, 1, {}]),
    ]:
        assert message.to_list() == head + tail
        parsed = parse_message(message.to_list())
        assert parsed.to_list() == head + tail
        # Kw without Args comes back with an empty Args list, otherwise unchanged.
        expected_args = [] if args is None and kwargs is not None else args
        assert parsed == dataclasses.replace(message, args=expected_args)  # type: ignore[type-var]


def test_unsubscribed_and_unregistered_to_list() -> None:
    assert Unsubscribed(3).to_list() == [35, 3]
    assert Unsubscribed(0, {"subscription": 1}).to_list() == [35, 0, {"subscription": 1}]
    assert Unregistered(3).to_list() == [67, 3]
    assert Unregistered(0, {"registration": 1}).to_list() == [67, 0, {"registration": 1}]


def test_messages_are_frozen() -> None:
    message = Call(1, {}, "p")
    with pytest.raises(dataclasses.FrozenInstanceError):
        message.request = 2  # type: ignore[misc]


@pytest.mark.parametrize("cls", ALL_MESSAGE_CLASSES, ids=lambda cls: cls.__name__)
def test_constructor_takes_the_fields_in_order(cls: type[Message]) -> None:
    """Positional or keyword arguments, the optional ones defaulting to None."""
    fields = dataclasses.fields(cls)  # type: ignore[arg-type]
    required = [f.name for f in fields if f.default is dataclasses.MISSING]
    values = {f.name: object() for f in fields}
    by_position = cls(*values.values())
    by_keyword = cls(**values)
    for field in fields:
        assert getattr(by_position, field.name) is values[field.name]
        assert getattr(by_keyword, field.name) is values[field.name]
    shortest = cls(**{name: values[name] for name in required})
    assert all(getattr(shortest, f.name) is None for f in fields if f.name not in required)
    assert dataclasses.replace(shortest) == shortest  # type: ignore[type-var]
    with pytest.raises(TypeError):
        cls(*list(values.values())[: len(required) - 1])
    with pytest.raises(TypeError):
        cls(*values.values(), None)  # type: ignore[call-arg]


def test_base_message_has_no_layout() -> None:
    with pytest.raises(NotImplementedError):
        Message().to_list()


@pytest.mark.parametrize("cls", ALL_MESSAGE_CLASSES, ids=lambda cls: cls.__name__)
@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_round_trip_property(cls: type[Message], data: st.DataObject) -> None:
    message = data.draw(MESSAGE_STRATEGIES[cls])
    raw = message.to_list()
    parsed = parse_message(raw)
    assert parsed == message
    assert typed(parsed.to_list()) == typed(raw)


# -- element count -----------------------------------------------------------------


def _count_cases() -> list[Any]:
    cases = []
    for layout in LAYOUTS:
        full = full_message(layout)
        short = full[: layout.required]  # one element short of the minimum
        cases.append(pytest.param(layout, short, id=f"{layout.name}-too-few"))
        cases.append(pytest.param(layout, [layout.code], id=f"{layout.name}-code-only"))
        cases.append(pytest.param(layout, [*full, "extra"], id=f"{layout.name}-too-many"))
        cases.append(pytest.param(layout, [*full, {}, {}], id=f"{layout.name}-too-many-2"))
    return cases


@pytest.mark.parametrize(("layout", "raw"), _count_cases())
def test_wrong_element_count(layout: Layout, raw: list[Any]) -> None:
    error = parse_error(raw)
    assert error.message == (
        f"{layout.name} must have {count_text(layout)} elements, got {len(raw)}"
    )


@pytest.mark.parametrize("layout", LAYOUTS, ids=LAYOUT_IDS)
def test_every_valid_length_is_accepted(layout: Layout) -> None:
    full = full_message(layout)
    for length in range(layout.required + 1, len(full) + 1):
        raw = full[:length]
        parsed = parse_message(raw)
        assert type(parsed) is layout.cls
        assert parsed.to_list() == raw


# -- element types -------------------------------------------------------------------

REQTYPES = "16, 32, 34, 48, 64, 66, 68, 70"

BAD_VALUES: dict[str, list[Any]] = {
    "id": [True, False, 0, -1, MAX_ID + 1, 2**64, 1.0, "1", None, [1], {}, b"\x01"],
    "id0": [True, False, -1, MAX_ID + 1, 0.0, "0", None, [0]],
    "reqtype": [
        True,
        False,
        0,
        1,
        8,
        17,
        33,
        35,
        36,
        49,
        50,
        65,
        67,
        69,
        71,
        256,
        -16,
        "48",
        48.0,
        None,
    ],
    "uri": [1, None, b"com.x", ["a"], {"a": 1}, True, 1.5],
    "str": [1, None, b"sig", ["a"], {}, False],
    "list": [{}, "x", None, 1, b"", (1,), True, {"a": 1}],
    "dict": [
        [],
        "x",
        None,
        1,
        True,
        b"",
        [("k", "v")],
        {1: "a"},
        {b"k": 1},
        {None: 1},
        {"ok": 1, 2: 3},
        {True: 1},
    ],
}


def expected_problem(kind: str, value: Any) -> str:
    """The text parse_message gives for ``value`` in an element of ``kind``."""
    if kind == "id":
        return f"must be an ID in [1, 2^53], got {value!r}"
    if kind == "id0":
        return f"must be an ID in [1, 2^53] (or 0 for a revocation), got {value!r}"
    if kind == "reqtype":
        return f"must be one of {REQTYPES}, got {value!r}"
    if kind in ("uri", "str"):
        return f"must be a string, got {type(value).__name__}"
    if kind == "list":
        return f"must be a list, got {type(value).__name__}"
    if isinstance(value, dict):
        return "must be a dict with string keys"
    return f"must be a dict, got {type(value).__name__}"


def _type_cases() -> list[Any]:
    cases = []
    for layout in LAYOUTS:
        for index, (element, kind) in enumerate(layout.elements, start=1):
            for number, bad in enumerate(BAD_VALUES[kind]):
                raw = full_message(layout)
                raw[index] = bad
                expected = f"{layout.name}.{element} {expected_problem(kind, bad)}"
                case_id = f"{layout.name}.{element}-{kind}-{number}"
                cases.append(pytest.param(raw, expected, id=case_id))
    return cases


@pytest.mark.parametrize(("raw", "expected"), _type_cases())
def test_wrong_element_type(raw: list[Any], expected: str) -> None:
    assert parse_error(raw).message == expected


@pytest.mark.parametrize("layout", LAYOUTS, ids=LAYOUT_IDS)
def test_first_wrong_element_is_reported(layout: Layout) -> None:
    """With every element wrong, the first one after the type code is named."""
    raw = [layout.code] + [object() for _ in layout.elements]
    error = parse_error(raw)
    assert error.message.startswith(f"{layout.name}.{layout.elements[0][0]} must be ")


def _id_positions() -> list[Any]:
    cases = []
    for layout in LAYOUTS:
        for index, (element, kind) in enumerate(layout.elements, start=1):
            if kind in ("id", "id0"):
                for value in (1, MAX_ID):
                    case_id = f"{layout.name}.{element}={value}"
                    cases.append(pytest.param(layout, index, value, id=case_id))
    return cases


@pytest.mark.parametrize(("layout", "index", "value"), _id_positions())
def test_id_bounds_are_accepted(layout: Layout, index: int, value: int) -> None:
    raw = full_message(layout)
    raw[index] = value
    parsed = parse_message(raw)
    assert parsed.to_list()[index] == value


@pytest.mark.parametrize("request_type", [16, 32, 34, 48, 64, 66, 68, 70])
def test_error_accepts_every_request_type(request_type: int) -> None:
    parsed = parse_message([8, request_type, 1, {}, "wamp.error.canceled"])
    assert isinstance(parsed, Error)
    assert parsed.request_type == request_type


def test_long_and_unprintable_values_are_cut_short() -> None:
    error = parse_error([2, "x" * 1000, {}])
    assert error.message == "WELCOME.Session must be an ID in [1, 2^53], got '" + "x" * 59
    # An int too long for a decimal repr (a CBOR bignum can carry one).
    error = parse_error([2, 10**5000, {}])
    assert error.message == "WELCOME.Session must be an ID in [1, 2^53], got <int>"
    error = parse_error([8, 10**5000, 1, {}, "e"])
    assert error.message == f"ERROR.REQUEST.Type must be one of {REQTYPES}, got <int>"
    error = parse_error([35, -(10**5000)])
    assert error.message.endswith("(or 0 for a revocation), got <int>")
    # A list nested deeper than the interpreter's recursion limit.
    deep: list[Any] = []
    for _ in range(sys.getrecursionlimit() + 100):
        deep = [deep]
    error = parse_error([17, deep, 1])
    assert error.message == "PUBLISHED.PUBLISH.Request must be an ID in [1, 2^53], got <list>"


# -- revocation forms ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "cls", "name", "key"),
    [
        (35, Unsubscribed, "UNSUBSCRIBED", "subscription"),
        (67, Unregistered, "UNREGISTERED", "registration"),
    ],
)
def test_revocation_form(code: int, cls: type[Message], name: str, key: str) -> None:
    details = {key: 5512315355, "reason": "wamp.close.killed"}
    parsed = parse_message([code, 0, details])
    assert parsed == cls(0, details)  # type: ignore[call-arg]
    assert parsed.to_list() == [code, 0, details]
    error = parse_error([code, 0])
    assert error.message == f"{name} with request 0 (revocation) must carry Details"
    error = parse_error([code, 0, None])
    assert error.message == f"{name}.Details must be a dict, got NoneType"


# -- not a message at all ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "type_name"),
    [(None, "NoneType"), ("[1]", "str"), (b"\x91\x01", "bytes"), ((1, "r", {}), "tuple"),
     ({"type": 1}, "dict"), (48, "int")],
)  # fmt: skip
def test_not_a_list(raw: object, type_name: str) -> None:
    error = parse_error(raw)
    assert error.message == f"a message must be a list, got {type_name}"


def test_empty_list() -> None:
    assert parse_error([]).message == "a message must not be an empty list"


def test_protocol_error_attributes() -> None:
    error = parse_error([])
    assert isinstance(error, ProtocolError)
    assert not isinstance(error, LocalProtocolError)
    assert repr(error) == (
        "RemoteProtocolError('a message must not be an empty list', "
        "reason='wamp.error.protocol_violation')"
    )
    other = LocalProtocolError("no", reason="wamp.error.invalid_uri")
    assert (other.message, other.reason, str(other)) == ("no", "wamp.error.invalid_uri", "no")


@pytest.mark.parametrize(
    ("code", "shown"),
    [
        (0, "0"),
        (7, "7"),
        (9, "9"),
        (255, "255"),
        (256, "256"),
        (337, "337"),  # EVENT_RECEIVED: Autobahn-specific, not in the RFC
        (1023, "1023"),
        (-1, "-1"),
        ("1", "'1'"),
        (True, "True"),
        (False, "False"),
        (1.0, "1.0"),
        (None, "None"),
        ([1], "[1]"),
        (2**70, str(2**70)),
        (10**5000, "<int>"),
        ("x" * 100, "'" + "x" * 39),
    ],
    ids=lambda value: (
        f"{value!s:.20}" if not isinstance(value, int) or value < 2**100 else "bignum"
    ),
)
def test_unknown_type_code(code: object, shown: str) -> None:
    error = parse_error([code, 1, {}])
    assert error.message == f"unknown message type {shown}"


def test_error_request_type_may_be_a_message_type_member() -> None:
    from wamp_core import Error, MessageType, parse_message

    message = Error(MessageType.CALL, 1, {}, "com.error")
    assert parse_message(message.to_list()) == message
