"""The WAMP messages (BP/messages.md, AP/ap_messages.md).

Every message is a frozen, slotted dataclass. ``to_list()`` gives the list that
a serializer encodes; ``parse_message(raw)`` turns a decoded list back into a
message, checking the layout and every element's type (BP/messages.md,
"Message Definitions"), and raises ``RemoteProtocolError`` with a message that
says what is wrong. URI *syntax* is not checked here: a bad URI in a request is
answered with ERROR ``wamp.error.invalid_uri`` by the router, not with ABORT.

Options and Details dicts are kept as received, so keys this implementation
does not know survive a round-trip unchanged. They are shared, not copied:
treat them as read-only.

Payload: ``args`` is None when the Args element is absent and ``kwargs`` is
None when Kw is absent. An empty list or dict given on input is kept, so parsing
and re-encoding yields the same list.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import MISSING, dataclass, fields
from enum import IntEnum
from typing import Any, ClassVar

from ._errors import RemoteProtocolError
from ._ids import MAX_ID

__all__ = [
    "ERROR_REQUEST_TYPES",
    "Abort",
    "Authenticate",
    "Call",
    "Cancel",
    "Challenge",
    "Error",
    "Event",
    "Goodbye",
    "Hello",
    "Interrupt",
    "Invocation",
    "Message",
    "MessageType",
    "Publish",
    "Published",
    "Register",
    "Registered",
    "Result",
    "Subscribe",
    "Subscribed",
    "Unregister",
    "Unregistered",
    "Unsubscribe",
    "Unsubscribed",
    "Welcome",
    "Yield",
    "parse_message",
]


class MessageType(IntEnum):
    """Message type codes (BP/messages.md, "Message Codes and Direction")."""

    HELLO = 1
    WELCOME = 2
    ABORT = 3
    CHALLENGE = 4
    AUTHENTICATE = 5
    GOODBYE = 6
    ERROR = 8
    PUBLISH = 16
    PUBLISHED = 17
    SUBSCRIBE = 32
    SUBSCRIBED = 33
    UNSUBSCRIBE = 34
    UNSUBSCRIBED = 35
    EVENT = 36
    CALL = 48
    CANCEL = 49
    RESULT = 50
    REGISTER = 64
    REGISTERED = 65
    UNREGISTER = 66
    UNREGISTERED = 67
    INVOCATION = 68
    INTERRUPT = 69
    YIELD = 70


ERROR_REQUEST_TYPES = frozenset(
    {
        MessageType.PUBLISH,
        MessageType.SUBSCRIBE,
        MessageType.UNSUBSCRIBE,
        MessageType.CALL,
        MessageType.REGISTER,
        MessageType.UNREGISTER,
        MessageType.INVOCATION,
        # AP/payload_passthru_mode.md: the dealer refuses a passthru YIELD for a
        # caller without the feature with an ERROR answering that YIELD.
        MessageType.YIELD,
    }
)
"""The request types an ERROR may answer; any other is a protocol violation."""
_REQUEST_TYPE_TEXT = ", ".join(str(int(t)) for t in sorted(ERROR_REQUEST_TYPES))


class Message:
    """Base class of all messages.

    ``type`` is the message's code. The private ``_wire`` slot caches encoded
    bytes per serializer, so that one message sent to many peers (an EVENT in a
    fan-out) is encoded once per serializer.
    """

    __slots__ = ("_wire",)
    type: ClassVar[MessageType]
    # (element name, kind) for each element after the type code; see _check().
    _schema: ClassVar[tuple[tuple[str, str], ...]]
    _min_len: ClassVar[int]

    def to_list(self) -> list[Any]:
        """Return the message as the list a serializer encodes."""
        raise NotImplementedError

    @classmethod
    def from_list(cls, raw: list[Any]) -> Message:
        """Build the message from a decoded list (type code included), validating it."""
        schema = cls._schema
        if not cls._min_len <= len(raw) <= len(schema) + 1:
            lo, hi = cls._min_len, len(schema) + 1
            count = str(lo) if lo == hi else f"{lo} to {hi}"
            raise RemoteProtocolError(f"{cls.type.name} must have {count} elements, got {len(raw)}")
        # The element's predicate first (the common, valid case); _check() tells why not.
        args = raw[1:]
        for valid, value in zip(_VALIDATORS[cls], args):
            if not valid(value):
                # The first element that fails (the predicates are pure).
                element, kind, bad = next(
                    (element, kind, item)
                    for (element, kind), item in zip(schema, args)
                    if not _VALID[kind](item)
                )
                raise RemoteProtocolError(f"{cls.type.name}.{element} {_check(kind, bad)}")
        return cls(*args)


def _is_dict(value: object) -> bool:
    return isinstance(value, dict) and (not value or all(type(key) is str for key in value))


def _show(value: object, width: int) -> str:
    """``repr(value)`` cut to ``width`` characters, for any value a decoder can produce."""
    try:
        text = repr(value)
    except (ValueError, RecursionError):
        # An int of more than 4300 digits (a CBOR bignum) has no decimal repr, and
        # a deeply nested list exhausts the stack; neither may escape as such.
        text = f"<{type(value).__name__}>"
    return text[:width]


# kind -> predicate: is the value of that kind (else _check() says why not).
_VALID: dict[str, Callable[[Any], bool]] = {
    "id": lambda value: type(value) is int and 1 <= value <= MAX_ID,
    "id0": lambda value: type(value) is int and 0 <= value <= MAX_ID,
    "reqtype": lambda value: (
        isinstance(value, int) and not isinstance(value, bool) and value in ERROR_REQUEST_TYPES
    ),
    "uri": lambda value: type(value) is str,
    "str": lambda value: type(value) is str,
    "list": lambda value: isinstance(value, list),
    "dict": _is_dict,
}


def _check(kind: str, value: Any) -> str:
    """Why ``value`` is not of ``kind`` (its ``_VALID`` predicate is false)."""
    if kind == "id":
        return f"must be an ID in [1, 2^53], got {_show(value, 60)}"
    if kind == "id0":  # request ID, or 0 in the revocation form
        return f"must be an ID in [1, 2^53] (or 0 for a revocation), got {_show(value, 60)}"
    if kind == "reqtype":
        # A MessageType member (an IntEnum) is accepted, a bool is not.
        return f"must be one of {_REQUEST_TYPE_TEXT}, got {_show(value, 60)}"
    if kind in ("uri", "str"):
        return f"must be a string, got {type(value).__name__}"
    if kind == "list":
        return f"must be a list, got {type(value).__name__}"
    # "dict"
    if isinstance(value, dict):
        return "must be a dict with string keys"
    return f"must be a dict, got {type(value).__name__}"


def _with_payload(
    head: list[Any], args: list[Any] | None, kwargs: dict[str, Any] | None
) -> list[Any]:
    if kwargs is not None:
        head.append([] if args is None else args)
        head.append(kwargs)
    elif args is not None:
        head.append(args)
    return head


_PAYLOAD = (("Arguments", "list"), ("ArgumentsKw", "dict"))


@dataclass(frozen=True, slots=True)
class Hello(Message):
    """``[HELLO, Realm|uri, Details|dict]``: a client asks to join ``realm``."""

    realm: str
    details: dict[str, Any]

    type: ClassVar[MessageType] = MessageType.HELLO
    _schema = (("Realm", "uri"), ("Details", "dict"))
    _min_len = 3

    def to_list(self) -> list[Any]:
        return [1, self.realm, self.details]


@dataclass(frozen=True, slots=True)
class Welcome(Message):
    """``[WELCOME, Session|id, Details|dict]``: the router admits the session."""

    session: int
    details: dict[str, Any]

    type: ClassVar[MessageType] = MessageType.WELCOME
    _schema = (("Session", "id"), ("Details", "dict"))
    _min_len = 3

    def to_list(self) -> list[Any]:
        return [2, self.session, self.details]


@dataclass(frozen=True, slots=True)
class Abort(Message):
    """``[ABORT, Details|dict, Reason|uri (, Arguments|list (, ArgumentsKw|dict))]``."""

    details: dict[str, Any]
    reason: str
    args: list[Any] | None = None
    kwargs: dict[str, Any] | None = None

    type: ClassVar[MessageType] = MessageType.ABORT
    _schema = (("Details", "dict"), ("Reason", "uri"), *_PAYLOAD)
    _min_len = 3

    def to_list(self) -> list[Any]:
        return _with_payload([3, self.details, self.reason], self.args, self.kwargs)


@dataclass(frozen=True, slots=True)
class Challenge(Message):
    """``[CHALLENGE, AuthMethod|string, Extra|dict]`` (AP/ap_authentication.md)."""

    authmethod: str
    extra: dict[str, Any]

    type: ClassVar[MessageType] = MessageType.CHALLENGE
    _schema = (("AuthMethod", "str"), ("Extra", "dict"))
    _min_len = 3

    def to_list(self) -> list[Any]:
        return [4, self.authmethod, self.extra]


@dataclass(frozen=True, slots=True)
class Authenticate(Message):
    """``[AUTHENTICATE, Signature|string, Extra|dict]`` (AP/ap_authentication.md)."""

    signature: str
    extra: dict[str, Any]

    type: ClassVar[MessageType] = MessageType.AUTHENTICATE
    _schema = (("Signature", "str"), ("Extra", "dict"))
    _min_len = 3

    def to_list(self) -> list[Any]:
        return [5, self.signature, self.extra]


@dataclass(frozen=True, slots=True)
class Goodbye(Message):
    """``[GOODBYE, Details|dict, Reason|uri]``: closes the session; always echoed."""

    details: dict[str, Any]
    reason: str

    type: ClassVar[MessageType] = MessageType.GOODBYE
    _schema = (("Details", "dict"), ("Reason", "uri"))
    _min_len = 3

    def to_list(self) -> list[Any]:
        return [6, self.details, self.reason]


@dataclass(frozen=True, slots=True)
class Error(Message):
    """``[ERROR, REQUEST.Type|int, REQUEST.Request|id, Details|dict, Error|uri (, Args (, Kw))]``.

    Sent by the router to answer a failed request, and by a callee for a failed
    INVOCATION.
    """

    request_type: int
    request: int
    details: dict[str, Any]
    error: str
    args: list[Any] | None = None
    kwargs: dict[str, Any] | None = None

    type: ClassVar[MessageType] = MessageType.ERROR
    _schema = (
        ("REQUEST.Type", "reqtype"),
        ("REQUEST.Request", "id"),
        ("Details", "dict"),
        ("Error", "uri"),
        *_PAYLOAD,
    )
    _min_len = 5

    def to_list(self) -> list[Any]:
        return _with_payload(
            [8, self.request_type, self.request, self.details, self.error], self.args, self.kwargs
        )


@dataclass(frozen=True, slots=True)
class Publish(Message):
    """``[PUBLISH, Request|id, Options|dict, Topic|uri (, Args (, Kw))]``."""

    request: int
    options: dict[str, Any]
    topic: str
    args: list[Any] | None = None
    kwargs: dict[str, Any] | None = None

    type: ClassVar[MessageType] = MessageType.PUBLISH
    _schema = (("Request", "id"), ("Options", "dict"), ("Topic", "uri"), *_PAYLOAD)
    _min_len = 4

    def to_list(self) -> list[Any]:
        return _with_payload([16, self.request, self.options, self.topic], self.args, self.kwargs)


@dataclass(frozen=True, slots=True)
class Published(Message):
    """``[PUBLISHED, PUBLISH.Request|id, Publication|id]``."""

    request: int
    publication: int

    type: ClassVar[MessageType] = MessageType.PUBLISHED
    _schema = (("PUBLISH.Request", "id"), ("Publication", "id"))
    _min_len = 3

    def to_list(self) -> list[Any]:
        return [17, self.request, self.publication]


@dataclass(frozen=True, slots=True)
class Subscribe(Message):
    """``[SUBSCRIBE, Request|id, Options|dict, Topic|uri]``."""

    request: int
    options: dict[str, Any]
    topic: str

    type: ClassVar[MessageType] = MessageType.SUBSCRIBE
    _schema = (("Request", "id"), ("Options", "dict"), ("Topic", "uri"))
    _min_len = 4

    def to_list(self) -> list[Any]:
        return [32, self.request, self.options, self.topic]


@dataclass(frozen=True, slots=True)
class Subscribed(Message):
    """``[SUBSCRIBED, SUBSCRIBE.Request|id, Subscription|id]``."""

    request: int
    subscription: int

    type: ClassVar[MessageType] = MessageType.SUBSCRIBED
    _schema = (("SUBSCRIBE.Request", "id"), ("Subscription", "id"))
    _min_len = 3

    def to_list(self) -> list[Any]:
        return [33, self.request, self.subscription]


@dataclass(frozen=True, slots=True)
class Unsubscribe(Message):
    """``[UNSUBSCRIBE, Request|id, SUBSCRIBED.Subscription|id]``."""

    request: int
    subscription: int

    type: ClassVar[MessageType] = MessageType.UNSUBSCRIBE
    _schema = (("Request", "id"), ("SUBSCRIBED.Subscription", "id"))
    _min_len = 3

    def to_list(self) -> list[Any]:
        return [34, self.request, self.subscription]


def _check_revocation(message: Unsubscribed | Unregistered) -> None:
    # AP/ap_pubsub_subscription_revocation.md, AP/ap_rpc_registration_revocation.md:
    # the revocation form is [35|67, 0, Details]; a plain reply carries a real ID.
    if message.request == 0 and message.details is None:
        name = message.type.name
        raise RemoteProtocolError(f"{name} with request 0 (revocation) must carry Details")


@dataclass(frozen=True, slots=True)
class Unsubscribed(Message):
    """``[UNSUBSCRIBED, UNSUBSCRIBE.Request|id]``, or the revocation form
    ``[UNSUBSCRIBED, 0, Details|dict]`` (Details has ``subscription`` and ``reason``).
    """

    request: int
    details: dict[str, Any] | None = None

    type: ClassVar[MessageType] = MessageType.UNSUBSCRIBED
    _schema = (("UNSUBSCRIBE.Request", "id0"), ("Details", "dict"))
    _min_len = 2

    @classmethod
    def from_list(cls, raw: list[Any]) -> Message:
        message = super(Unsubscribed, cls).from_list(raw)
        assert isinstance(message, Unsubscribed)
        _check_revocation(message)
        return message

    def to_list(self) -> list[Any]:
        if self.details is None:
            return [35, self.request]
        return [35, self.request, self.details]


@dataclass(frozen=True, slots=True)
class Event(Message):
    """``[EVENT, Subscription|id, Publication|id, Details|dict (, Args (, Kw))]``."""

    subscription: int
    publication: int
    details: dict[str, Any]
    args: list[Any] | None = None
    kwargs: dict[str, Any] | None = None

    type: ClassVar[MessageType] = MessageType.EVENT
    _schema = (("Subscription", "id"), ("Publication", "id"), ("Details", "dict"), *_PAYLOAD)
    _min_len = 4

    def to_list(self) -> list[Any]:
        return _with_payload(
            [36, self.subscription, self.publication, self.details], self.args, self.kwargs
        )


@dataclass(frozen=True, slots=True)
class Call(Message):
    """``[CALL, Request|id, Options|dict, Procedure|uri (, Args (, Kw))]``."""

    request: int
    options: dict[str, Any]
    procedure: str
    args: list[Any] | None = None
    kwargs: dict[str, Any] | None = None

    type: ClassVar[MessageType] = MessageType.CALL
    _schema = (("Request", "id"), ("Options", "dict"), ("Procedure", "uri"), *_PAYLOAD)
    _min_len = 4

    def to_list(self) -> list[Any]:
        return _with_payload(
            [48, self.request, self.options, self.procedure], self.args, self.kwargs
        )


@dataclass(frozen=True, slots=True)
class Cancel(Message):
    """``[CANCEL, CALL.Request|id, Options|dict]`` (AP/ap_rpc_call_canceling.md)."""

    request: int
    options: dict[str, Any]

    type: ClassVar[MessageType] = MessageType.CANCEL
    _schema = (("CALL.Request", "id"), ("Options", "dict"))
    _min_len = 3

    def to_list(self) -> list[Any]:
        return [49, self.request, self.options]


@dataclass(frozen=True, slots=True)
class Result(Message):
    """``[RESULT, CALL.Request|id, Details|dict (, Args (, Kw))]``."""

    request: int
    details: dict[str, Any]
    args: list[Any] | None = None
    kwargs: dict[str, Any] | None = None

    type: ClassVar[MessageType] = MessageType.RESULT
    _schema = (("CALL.Request", "id"), ("Details", "dict"), *_PAYLOAD)
    _min_len = 3

    def to_list(self) -> list[Any]:
        return _with_payload([50, self.request, self.details], self.args, self.kwargs)


@dataclass(frozen=True, slots=True)
class Register(Message):
    """``[REGISTER, Request|id, Options|dict, Procedure|uri]``."""

    request: int
    options: dict[str, Any]
    procedure: str

    type: ClassVar[MessageType] = MessageType.REGISTER
    _schema = (("Request", "id"), ("Options", "dict"), ("Procedure", "uri"))
    _min_len = 4

    def to_list(self) -> list[Any]:
        return [64, self.request, self.options, self.procedure]


@dataclass(frozen=True, slots=True)
class Registered(Message):
    """``[REGISTERED, REGISTER.Request|id, Registration|id]``."""

    request: int
    registration: int

    type: ClassVar[MessageType] = MessageType.REGISTERED
    _schema = (("REGISTER.Request", "id"), ("Registration", "id"))
    _min_len = 3

    def to_list(self) -> list[Any]:
        return [65, self.request, self.registration]


@dataclass(frozen=True, slots=True)
class Unregister(Message):
    """``[UNREGISTER, Request|id, REGISTERED.Registration|id]``."""

    request: int
    registration: int

    type: ClassVar[MessageType] = MessageType.UNREGISTER
    _schema = (("Request", "id"), ("REGISTERED.Registration", "id"))
    _min_len = 3

    def to_list(self) -> list[Any]:
        return [66, self.request, self.registration]


@dataclass(frozen=True, slots=True)
class Unregistered(Message):
    """``[UNREGISTERED, UNREGISTER.Request|id]``, or the revocation form
    ``[UNREGISTERED, 0, Details|dict]`` (Details has ``registration`` and ``reason``).
    """

    request: int
    details: dict[str, Any] | None = None

    type: ClassVar[MessageType] = MessageType.UNREGISTERED
    _schema = (("UNREGISTER.Request", "id0"), ("Details", "dict"))
    _min_len = 2

    @classmethod
    def from_list(cls, raw: list[Any]) -> Message:
        message = super(Unregistered, cls).from_list(raw)
        assert isinstance(message, Unregistered)
        _check_revocation(message)
        return message

    def to_list(self) -> list[Any]:
        if self.details is None:
            return [67, self.request]
        return [67, self.request, self.details]


@dataclass(frozen=True, slots=True)
class Invocation(Message):
    """``[INVOCATION, Request|id, REGISTERED.Registration|id, Details|dict (, Args (, Kw))]``."""

    request: int
    registration: int
    details: dict[str, Any]
    args: list[Any] | None = None
    kwargs: dict[str, Any] | None = None

    type: ClassVar[MessageType] = MessageType.INVOCATION
    _schema = (
        ("Request", "id"),
        ("REGISTERED.Registration", "id"),
        ("Details", "dict"),
        *_PAYLOAD,
    )
    _min_len = 4

    def to_list(self) -> list[Any]:
        return _with_payload(
            [68, self.request, self.registration, self.details], self.args, self.kwargs
        )


@dataclass(frozen=True, slots=True)
class Interrupt(Message):
    """``[INTERRUPT, INVOCATION.Request|id, Options|dict]`` (AP/ap_rpc_call_canceling.md)."""

    request: int
    options: dict[str, Any]

    type: ClassVar[MessageType] = MessageType.INTERRUPT
    _schema = (("INVOCATION.Request", "id"), ("Options", "dict"))
    _min_len = 3

    def to_list(self) -> list[Any]:
        return [69, self.request, self.options]


@dataclass(frozen=True, slots=True)
class Yield(Message):
    """``[YIELD, INVOCATION.Request|id, Options|dict (, Args (, Kw))]``."""

    request: int
    options: dict[str, Any]
    args: list[Any] | None = None
    kwargs: dict[str, Any] | None = None

    type: ClassVar[MessageType] = MessageType.YIELD
    _schema = (("INVOCATION.Request", "id"), ("Options", "dict"), *_PAYLOAD)
    _min_len = 3

    def to_list(self) -> list[Any]:
        return _with_payload([70, self.request, self.options], self.args, self.kwargs)


def _fast_init(cls: type[Message]) -> None:
    """Replace a message class's ``__init__`` by one with the same signature
    that stores each field through its slot's descriptor: the frozen
    dataclass's own calls ``object.__setattr__``, which looks each name up again.
    """
    names, params = [], []
    for field in fields(cls):  # type: ignore[arg-type]
        assert field.default in (MISSING, None)  # the only defaults messages have
        names.append(field.name)
        params.append(field.name if field.default is MISSING else f"{field.name}=None")
    lines = [f"def __init__(self, {', '.join(params)}):"]
    lines += [f"    _set_{name}(self, {name})" for name in names]
    namespace: dict[str, Any] = {f"_set_{name}": getattr(cls, name).__set__ for name in names}
    exec("\n".join(lines), namespace)
    init = namespace["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    init.__module__ = cls.__module__
    init.__annotations__ = cls.__init__.__annotations__
    cls.__init__ = init  # type: ignore[method-assign]


_CLASSES: dict[int, type[Message]] = {
    cls.type: cls
    for cls in (
        Hello, Welcome, Abort, Challenge, Authenticate, Goodbye, Error, Publish, Published,
        Subscribe, Subscribed, Unsubscribe, Unsubscribed, Event, Call, Cancel, Result,
        Register, Registered, Unregister, Unregistered, Invocation, Interrupt, Yield,
    )
}  # fmt: skip

for _cls in _CLASSES.values():
    _fast_init(_cls)

# Each message class's element predicates, in schema order (see Message.from_list).
_VALIDATORS: dict[type[Message], tuple[Callable[[Any], bool], ...]] = {
    cls: tuple(_VALID[kind] for _, kind in cls._schema) for cls in _CLASSES.values()
}


def parse_message(raw: object) -> Message:
    """Turn one decoded message (a list) into a ``Message``.

    Raises ``RemoteProtocolError`` when ``raw`` is not a list, is empty, has an
    unknown type code, or has elements of the wrong number or type.
    """
    if not isinstance(raw, list):
        raise RemoteProtocolError(f"a message must be a list, got {type(raw).__name__}")
    if not raw:
        raise RemoteProtocolError("a message must not be an empty list")
    code = raw[0]
    cls = _CLASSES.get(code) if type(code) is int else None
    if cls is None:
        raise RemoteProtocolError(f"unknown message type {_show(code, 40)}")
    return cls.from_list(raw)
