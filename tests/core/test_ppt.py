"""Payload passthru mode (AP/payload_passthru_mode.md) in the dealer, the broker
and the client session: ``ppt_*`` options forwarded into Details, the
announcement rules (protocol violations, feature_not_supported), malformed
passthru messages, and the client's side of it.

Harness: tests/core/test_router.py (``Hub``, ``Wire``) and tests/core/pair.py.
"""

from __future__ import annotations

from typing import Any

import pytest

import wamp_core._client as client_module
from tests.core.test_dealer import wire_register
from tests.core.test_router import Hub, Wire, only, roles_with
from wamp_core import (
    CLIENT_ROLES,
    ROUTER_ROLES,
    Call,
    Cancel,
    ClientSession,
    Error,
    ErrorReceived,
    ErrorURI,
    Event,
    EventReceived,
    Interrupt,
    Invocation,
    InvocationReceived,
    LocalProtocolError,
    MessageType,
    Publish,
    Published,
    Registered,
    RegisterSucceeded,
    RemoteProtocolError,
    Result,
    ResultReceived,
    Router,
    Subscribe,
    Subscribed,
    SubscribeSucceeded,
    Welcome,
    Yield,
)
from wamp_core._dealer import PPT_OPTIONS, ppt_options, ppt_problem

T = MessageType
FEATURE = "payload_passthru_mode"
BLOB = b"\x00\xffopaque"
PPT = {
    "ppt_scheme": "x_custom",
    "ppt_serializer": "cbor",
    "ppt_cipher": "xsalsa20poly1305",
    "ppt_keyid": "0x1234",
}
MQTT = {"ppt_scheme": "mqtt", "ppt_serializer": "native"}
PROGRESS = {"progress": True}
CALLEE_LACKS = "the callee does not support payload passthru mode"
CALLER_LACKS = "the caller does not support payload passthru mode"
REFUSED = "the callee's result was refused: "
BAD_PAYLOAD = "a payload passthru payload must be one binary item in Args, without ArgumentsKw"
NO_SCHEME = "payload passthru options need a non-empty ppt_scheme"


def _with_flag(roles: dict[str, Any], names: tuple[str, ...], flag: bool) -> dict[str, Any]:
    """``roles`` with ``payload_passthru_mode`` set (or removed) for ``names``."""
    out: dict[str, Any] = {}
    for role, details in roles.items():
        features = dict(details.get("features", {}))
        if role in names:
            if flag:
                features[FEATURE] = True
            else:
                features.pop(FEATURE, None)
        out[role] = {**details, "features": features}
    return out


ROUTER = _with_flag(ROUTER_ROLES, ("broker", "dealer"), True)
"""ROUTER_ROLES with the flags this module implements (see the report)."""
NO_PPT_ROUTER = _with_flag(ROUTER_ROLES, ("broker", "dealer"), False)
CLIENT_ROLE_NAMES = ("caller", "callee", "publisher", "subscriber")
WITH = _with_flag(CLIENT_ROLES, CLIENT_ROLE_NAMES, True)
WITHOUT = _with_flag(CLIENT_ROLES, CLIENT_ROLE_NAMES, False)
CANCELING_WITH = roles_with(call_canceling=True, progressive_call_results=True, **{FEATURE: True})


def make_hub(roles: dict[str, Any] = ROUTER) -> Hub:
    return Hub(Router(["realm1"], roles=roles))


def rpc(
    hub: Hub,
    callee_roles: dict[str, Any] = WITH,
    caller_roles: dict[str, Any] = WITH,
    codecs: tuple[str, str] = ("json", "json"),
) -> tuple[Wire, Wire, int]:
    """A callee wire that registered ``com.proc`` and a caller wire."""
    callee = hub.joined_wire(codecs[0], roles=callee_roles)
    registration = wire_register(callee, "com.proc")
    return callee, hub.joined_wire(codecs[1], roles=caller_roles), registration


def invoke(caller: Wire, callee: Wire, options: dict[str, Any] | None = None) -> Invocation:
    """A plain CALL (or one with ``options``) and the INVOCATION it produced."""
    caller.send(Call(caller.req(), options or {}, "com.proc"))
    return callee.one(Invocation)


def call_error(request: int, error: str, text: str) -> Error:
    return Error(T.CALL, request, {}, error, [text])


# -- the shared checks ---------------------------------------------------------------------------


def test_ppt_options_picks_the_four_keys() -> None:
    assert PPT_OPTIONS == ("ppt_scheme", "ppt_serializer", "ppt_cipher", "ppt_keyid")
    assert ppt_options({}) == {}
    assert ppt_options({"progress": True, "ppt_other": 1}) == {}
    assert ppt_options({**PPT, "progress": True, "ppt_other": 1}) == PPT
    assert ppt_options({"ppt_keyid": "k"}) == {"ppt_keyid": "k"}


@pytest.mark.parametrize(
    ("ppt", "args", "kwargs", "problem"),
    [
        (PPT, [BLOB], None, None),
        (PPT, [BLOB], {}, None),  # "absent or empty"
        ({"ppt_scheme": "x"}, [bytearray(b"")], None, None),
        ({"ppt_scheme": "x"}, [memoryview(b"x")], None, None),
        ({"ppt_scheme": "foo.bar", "ppt_cipher": "rot13"}, [BLOB], None, None),  # values unjudged
        ({**PPT, "ppt_keyid": 1}, [BLOB], None, "ppt_keyid must be a string, got int"),
        ({"ppt_scheme": None}, [BLOB], None, "ppt_scheme must be a string, got NoneType"),
        ({"ppt_serializer": "cbor"}, [BLOB], None, NO_SCHEME),
        ({"ppt_scheme": ""}, [BLOB], None, NO_SCHEME),
        (PPT, None, None, BAD_PAYLOAD),
        (PPT, [], None, BAD_PAYLOAD),
        (PPT, [BLOB, BLOB], None, BAD_PAYLOAD),
        (PPT, ["text"], None, BAD_PAYLOAD),
        (PPT, [BLOB], {"k": 1}, BAD_PAYLOAD),
    ],
)  # fmt: skip
def test_ppt_problem(
    ppt: dict[str, Any], args: list[Any] | None, kwargs: dict[str, Any] | None, problem: str | None
) -> None:
    assert ppt_problem(ppt, args, kwargs) == problem


# -- calls ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("codecs", [("json", "json"), ("msgpack", "cbor"), ("cbor", "json")])
def test_call_result_and_error_carry_the_options(codecs: tuple[str, str]) -> None:
    hub = make_hub()
    callee, caller, registration = rpc(hub, codecs=codecs)
    options = {**PPT, "ppt_other": "not copied", "x_custom": 1}
    caller.send(Call(caller.req(), options, "com.proc", [BLOB]))
    assert callee.take() == [Invocation(1, registration, PPT, [BLOB])]
    answer = {**MQTT, "ppt_keyid": "other"}
    callee.send(Yield(1, answer, [b"result"], {}))
    assert caller.take() == [Result(1, answer, [b"result"], {})]
    # A callee's ERROR in the mode: details and payload go to the caller as they are.
    caller.send(Call(caller.req(), MQTT, "com.proc", [b""]))
    invocation = callee.one(Invocation)
    assert invocation.details == MQTT
    details = {**PPT, "extra": 1}
    callee.send(Error(T.INVOCATION, invocation.request, details, "app.failed", [b"why"]))
    assert caller.take() == [Error(T.CALL, 2, details, "app.failed", [b"why"])]


def test_plain_answer_to_a_ppt_call_and_back() -> None:
    hub = make_hub()
    callee, caller, _ = rpc(hub)
    invocation = invoke(caller, callee)
    callee.send(Yield(invocation.request, PPT, [BLOB]))
    assert caller.take() == [Result(1, PPT, [BLOB])]
    caller.send(Call(caller.req(), PPT, "com.proc", [BLOB]))
    callee.send(Yield(callee.one(Invocation).request, {}, ["plain"]))
    assert caller.take() == [Result(2, {}, ["plain"])]


def test_ppt_combines_with_other_invocation_details() -> None:
    hub = make_hub()
    callee = hub.joined_wire(roles=WITH)
    registration = wire_register(callee, "com", {"match": "prefix"})
    caller = hub.joined_wire(roles=WITH)
    caller.send(Call(1, {**PPT, "disclose_me": True}, "com.proc", [BLOB]))
    invocation = callee.one(Invocation)
    assert invocation == Invocation(
        invocation.request,
        registration,
        {
            "procedure": "com.proc",
            "caller": caller.session_id,
            "caller_authid": caller.slot.authid,
            "caller_authrole": caller.slot.authrole,
            **PPT,
        },
        [BLOB],
    )


@pytest.mark.parametrize("key", PPT_OPTIONS)
def test_call_from_a_caller_without_the_feature_is_a_violation(key: str) -> None:
    hub = make_hub()
    callee, caller, _ = rpc(hub, caller_roles=WITHOUT)
    assert caller.violation(Call(1, {key: PPT[key]}, "com.proc", [BLOB])) == (
        "CALL with payload passthru options, but the caller did not announce it"
    )
    assert callee.take() == []


@pytest.mark.parametrize(
    "message",
    [
        Call(1, PPT, "com.proc", [BLOB]),
        Publish(1, PPT, "com.topic", [BLOB]),
    ],
)
def test_request_to_a_router_without_the_feature_is_a_violation(message: Any) -> None:
    hub = make_hub(NO_PPT_ROUTER)
    wire = hub.joined_wire(roles=WITH)
    router_role = "dealer" if isinstance(message, Call) else "broker"
    assert wire.violation(message) == (
        f"{message.type.name} with payload passthru options,"
        f" but the {router_role} does not support it"
    )


@pytest.mark.parametrize("answer", ["yield", "error"])
@pytest.mark.parametrize(
    ("router", "callee_roles", "why"),
    [
        (NO_PPT_ROUTER, WITH, "the dealer does not support it"),
        (ROUTER, WITHOUT, "the callee did not announce it"),
    ],
)
def test_answer_in_ppt_mode_without_the_feature_is_a_violation(
    answer: str, router: dict[str, Any], callee_roles: dict[str, Any], why: str
) -> None:
    hub = make_hub(router)
    callee, caller, _ = rpc(hub, callee_roles=callee_roles)
    invocation = invoke(caller, callee)
    if answer == "yield":
        message: Any = Yield(invocation.request, PPT, [BLOB])
    else:
        message = Error(T.INVOCATION, invocation.request, PPT, "app.error", [BLOB])
    assert callee.violation(message) == (
        f"{message.type.name} with payload passthru options, but {why}"
    )
    # The callee is gone: the caller's call ends.
    assert caller.take() == [call_error(1, ErrorURI.CANCELED, "the callee left before answering")]


@pytest.mark.parametrize("key", PPT_OPTIONS)
def test_callee_without_the_feature_is_not_invoked(key: str) -> None:
    hub = make_hub()
    callee, caller, _ = rpc(hub, callee_roles=WITHOUT)
    options = {**MQTT, key: PPT[key]}
    caller.send(Call(caller.req(), options, "com.proc", [BLOB]))
    assert caller.take() == [call_error(1, ErrorURI.FEATURE_NOT_SUPPORTED, CALLEE_LACKS)]
    assert callee.take() == []
    assert caller.slot.calls == {}
    invoke(caller, callee)  # plain calls still go through


def test_the_callee_the_policy_picks_decides() -> None:
    hub = make_hub()
    plain = hub.joined_wire(roles=WITHOUT)
    passthru = hub.joined_wire(roles=WITH)
    wire_register(plain, "com.proc", {"invoke": "roundrobin"})
    registration = wire_register(passthru, "com.proc", {"invoke": "roundrobin"})
    caller = hub.joined_wire(roles=WITH)
    caller.send(Call(1, PPT, "com.proc", [BLOB]))
    assert caller.take() == [call_error(1, ErrorURI.FEATURE_NOT_SUPPORTED, CALLEE_LACKS)]
    caller.send(Call(2, PPT, "com.proc", [BLOB]))
    assert passthru.take() == [Invocation(1, registration, PPT, [BLOB])]
    assert plain.take() == []


@pytest.mark.parametrize(
    ("options", "args", "kwargs", "text"),
    [
        ({"ppt_scheme": 7}, [BLOB], None, "ppt_scheme must be a string, got int"),
        ({"ppt_scheme": "x", "ppt_cipher": False}, [BLOB], None,
         "ppt_cipher must be a string, got bool"),
        ({"ppt_serializer": "cbor"}, [BLOB], None, NO_SCHEME),
        ({"ppt_scheme": ""}, [BLOB], None, NO_SCHEME),
        (PPT, None, None, BAD_PAYLOAD),
        (PPT, ["not binary"], None, BAD_PAYLOAD),
        (PPT, [BLOB], {"key": "value"}, BAD_PAYLOAD),
    ],
)  # fmt: skip
def test_malformed_ppt_call_is_refused(
    options: dict[str, Any], args: list[Any] | None, kwargs: dict[str, Any] | None, text: str
) -> None:
    hub = make_hub()
    callee, caller, _ = rpc(hub)
    caller.send(Call(1, options, "com.proc", args, kwargs))
    assert caller.take() == [call_error(1, ErrorURI.INVALID_ARGUMENT, text)]
    assert callee.take() == []


def test_ppt_call_checks_come_after_uri_and_timeout() -> None:
    hub = make_hub()
    caller = hub.joined_wire(roles=WITH)
    caller.send(Call(1, {"ppt_scheme": 1}, "com..bad"))
    assert caller.one(Error).error == ErrorURI.INVALID_URI
    caller.send(Call(2, {"ppt_scheme": 1, "timeout": -1}, "com.proc"))
    assert caller.one(Error).error == ErrorURI.INVALID_ARGUMENT
    caller.send(Call(3, PPT, "com.nobody", [BLOB]))
    assert caller.one(Error).error == ErrorURI.NO_SUCH_PROCEDURE


def test_router_procedures_take_no_ppt() -> None:
    hub = make_hub()
    caller = hub.joined_wire(roles=WITH)
    caller.send(Call(1, PPT, "wamp.subscription.get_events", [BLOB]))
    assert caller.take() == [
        call_error(
            1,
            ErrorURI.FEATURE_NOT_SUPPORTED,
            "procedure 'wamp.subscription.get_events' takes no payload passthru mode",
        )
    ]


# -- results the caller cannot take ----------------------------------------------------------


def test_result_for_a_caller_without_the_feature_is_refused_on_both_sides() -> None:
    hub = make_hub()
    callee, caller, _ = rpc(hub, caller_roles=WITHOUT)
    invocation = invoke(caller, callee)
    callee.send(Yield(invocation.request, PPT, [BLOB]))
    # AP/payload_passthru_mode.md: the callee gets feature_not_supported; the
    # caller, which would otherwise wait forever, gets it too.
    assert callee.take() == [
        Error(T.YIELD, invocation.request, {}, ErrorURI.FEATURE_NOT_SUPPORTED, [CALLER_LACKS])
    ]
    assert caller.take() == [call_error(1, ErrorURI.FEATURE_NOT_SUPPORTED, REFUSED + CALLER_LACKS)]
    assert caller.slot.calls == callee.slot.invocations == {}
    # The call is over: another answer for it is a violation.
    assert callee.violation(Yield(invocation.request, {})) == (
        f"YIELD for unknown INVOCATION {invocation.request}"
    )


@pytest.mark.parametrize(
    ("options", "args", "kwargs", "text"),
    [
        ({"ppt_scheme": ""}, [BLOB], None, NO_SCHEME),
        ({**PPT, "ppt_keyid": 5}, [BLOB], None, "ppt_keyid must be a string, got int"),
        (PPT, [BLOB], {"k": 1}, BAD_PAYLOAD),
        (PPT, None, None, BAD_PAYLOAD),
    ],
)  # fmt: skip
def test_malformed_ppt_yield_is_refused_on_both_sides(
    options: dict[str, Any], args: list[Any] | None, kwargs: dict[str, Any] | None, text: str
) -> None:
    hub = make_hub()
    callee, caller, _ = rpc(hub)
    invocation = invoke(caller, callee)
    callee.send(Yield(invocation.request, options, args, kwargs))
    assert callee.take() == [
        Error(T.YIELD, invocation.request, {}, ErrorURI.INVALID_ARGUMENT, [text])
    ]
    assert caller.take() == [call_error(1, ErrorURI.INVALID_ARGUMENT, REFUSED + text)]


def test_progressive_ppt_results() -> None:
    hub = make_hub()
    callee, caller, _ = rpc(hub, callee_roles=CANCELING_WITH)
    invocation = invoke(caller, callee, {"receive_progress": True})
    callee.send(Yield(invocation.request, {**PPT, **PROGRESS}, [b"1"]))
    callee.send(Yield(invocation.request, MQTT, [b"2"]))
    assert caller.take() == [Result(1, {**PPT, **PROGRESS}, [b"1"]), Result(1, MQTT, [b"2"])]


@pytest.mark.parametrize(
    ("caller_roles", "options", "error", "text"),
    [
        (WITHOUT, PPT, ErrorURI.FEATURE_NOT_SUPPORTED, CALLER_LACKS),
        (WITH, {"ppt_scheme": ""}, ErrorURI.INVALID_ARGUMENT,
         NO_SCHEME),
    ],
)  # fmt: skip
def test_refused_progressive_ppt_result_ends_the_call(
    caller_roles: dict[str, Any], options: dict[str, Any], error: str, text: str
) -> None:
    hub = make_hub()
    callee, caller, _ = rpc(hub, callee_roles=CANCELING_WITH, caller_roles=caller_roles)
    invocation = invoke(caller, callee, {"receive_progress": True})
    callee.send(Yield(invocation.request, PROGRESS, ["plain"]))
    assert caller.take() == [Result(1, PROGRESS, ["plain"])]
    callee.send(Yield(invocation.request, {**options, **PROGRESS}, [BLOB]))
    assert callee.take() == [
        Error(T.YIELD, invocation.request, {}, error, [text]),
        Interrupt(invocation.request, {"mode": "killnowait"}),
    ]
    assert caller.take() == [call_error(1, error, REFUSED + text)]
    # The callee may go on until its final answer, which is dropped.
    callee.send(Yield(invocation.request, PROGRESS, ["more"]), Yield(invocation.request, {}))
    assert caller.take() == callee.take() == []
    assert callee.slot.invocations == {}


def test_orphaned_call_drops_a_ppt_result_unchecked() -> None:
    hub = make_hub()
    callee, caller, _ = rpc(hub, callee_roles=CANCELING_WITH, caller_roles=WITHOUT)
    invocation = invoke(caller, callee)
    caller.send(Cancel(1, {"mode": "skip"}))
    assert caller.one(Error).error == ErrorURI.CANCELED
    callee.send(Yield(invocation.request, PPT, ["malformed", "too"]))
    assert callee.take() == caller.take() == []


# -- callee errors the caller cannot take --------------------------------------------------------


@pytest.mark.parametrize(
    ("caller_roles", "args", "kwargs", "text"),
    [
        (WITHOUT, [BLOB], None, CALLER_LACKS),
        (WITH, [BLOB, BLOB], None, BAD_PAYLOAD),
        (WITH, [BLOB], {"k": 1}, BAD_PAYLOAD),
    ],
)
def test_ppt_error_the_caller_cannot_take_keeps_only_the_uri(
    caller_roles: dict[str, Any], args: list[Any], kwargs: dict[str, Any] | None, text: str
) -> None:
    hub = make_hub()
    callee, caller, _ = rpc(hub, caller_roles=caller_roles)
    invocation = invoke(caller, callee)
    callee.send(Error(T.INVOCATION, invocation.request, PPT, "app.failed", args, kwargs))
    # ERROR cannot answer ERROR: the callee is not told.
    assert callee.take() == []
    assert caller.take() == [Error(T.CALL, 1, {}, "app.failed", [text])]


def test_ppt_error_with_an_unencodable_uri_for_the_caller() -> None:
    hub = make_hub()
    callee, caller, _ = rpc(
        hub, callee_roles=WITH, caller_roles=WITHOUT, codecs=("msgpack", "json")
    )
    invocation = invoke(caller, callee)
    callee.send(Error(T.INVOCATION, invocation.request, PPT, "app.\ud800", [BLOB]))
    error = caller.one(Error)
    assert (error.error, error.details) == (ErrorURI.INVALID_ARGUMENT, {})


# -- rerouting and progressive call invocations ----------------------------------------------


@pytest.mark.parametrize(("second", "forwarded"), [(WITH, True), (WITHOUT, False)])
def test_rerouted_ppt_call_needs_the_feature_at_the_next_callee(
    second: dict[str, Any], forwarded: bool
) -> None:
    hub = make_hub()
    first, other = hub.joined_wire(roles=WITH), hub.joined_wire(roles=second)
    wire_register(first, "com.proc", {"invoke": "first"})
    registration = wire_register(other, "com.proc", {"invoke": "first"})
    caller = hub.joined_wire(roles=WITH)
    caller.send(Call(1, PPT, "com.proc", [BLOB]))
    invocation = first.one(Invocation)
    first.send(Error(T.INVOCATION, invocation.request, PPT, ErrorURI.UNAVAILABLE, [BLOB]))
    if forwarded:
        assert other.take() == [Invocation(1, registration, PPT, [BLOB])]
        assert caller.take() == []
    else:
        assert other.take() == []
        assert caller.take() == [call_error(1, ErrorURI.FEATURE_NOT_SUPPORTED, CALLEE_LACKS)]


CHUNKING = roles_with(call_canceling=True, progressive_call_invocations=True, **{FEATURE: True})


def pci_hub() -> Hub:
    roles = _with_flag(ROUTER_ROLES, ("broker", "dealer"), True)
    roles["dealer"]["features"]["progressive_call_invocations"] = True
    return make_hub(roles)


def test_progressive_ppt_call_invocation() -> None:
    hub = pci_hub()
    callee, caller, registration = rpc(hub, callee_roles=CHUNKING)
    caller.send(Call(1, {**PPT, **PROGRESS}, "com.proc", [b"1"]))
    # Later chunks' options are ignored (frozen): the first CALL's ppt_* stay.
    caller.send(Call(1, {**MQTT, **PROGRESS}, "com.proc", [b"2"]))
    caller.send(Call(1, {}, "com.proc", [b"3"]))
    assert callee.take() == [
        Invocation(1, registration, {**PPT, **PROGRESS}, [b"1"]),
        Invocation(1, registration, {**PPT, **PROGRESS}, [b"2"]),
        Invocation(1, registration, PPT, [b"3"]),
    ]


def test_chunk_of_a_ppt_call_must_be_binary() -> None:
    hub = pci_hub()
    callee, caller, _ = rpc(hub, callee_roles=CHUNKING)
    caller.send(Call(1, {**PPT, **PROGRESS}, "com.proc", [b"1"]))
    assert callee.one(Invocation).details == {**PPT, **PROGRESS}
    caller.send(Call(1, PROGRESS, "com.proc", ["text"]))
    assert caller.take() == [call_error(1, ErrorURI.INVALID_ARGUMENT, BAD_PAYLOAD)]
    assert callee.take() == [Interrupt(1, {"mode": "killnowait"})]


def test_ppt_options_on_a_chunk_of_a_plain_call() -> None:
    hub = pci_hub()
    callee, caller, registration = rpc(hub, callee_roles=CHUNKING)
    caller.send(Call(1, PROGRESS, "com.proc", ["a"]))
    caller.send(Call(1, PPT, "com.proc", ["b"]))  # ignored options, plain payload
    assert callee.take() == [
        Invocation(1, registration, PROGRESS, ["a"]),
        Invocation(1, registration, {}, ["b"]),
    ]


def test_ppt_options_on_a_chunk_need_the_feature() -> None:
    hub = pci_hub()
    roles = _with_flag(CLIENT_ROLES, CLIENT_ROLE_NAMES, False)
    roles["caller"]["features"]["progressive_call_invocations"] = True
    callee, caller, _ = rpc(hub, callee_roles=CHUNKING, caller_roles=roles)
    caller.send(Call(1, PROGRESS, "com.proc", ["a"]))
    callee.one(Invocation)
    assert caller.violation(Call(1, PPT, "com.proc", [BLOB])) == (
        "CALL with payload passthru options, but the caller did not announce it"
    )


# -- publications ----------------------------------------------------------------------------


@pytest.mark.parametrize("codec", ["json", "msgpack", "cbor"])
def test_events_carry_the_options_to_every_subscriber(codec: str) -> None:
    hub = make_hub()
    # The spec: a subscriber without the feature "cannot be recognized at the
    # protocol level": it gets the EVENT too, its side has to cope.
    subscribers = [hub.joined_wire(codec, roles=roles) for roles in (WITH, WITHOUT)]
    subscriptions = []
    for wire in subscribers:
        wire.send(Subscribe(1, {}, "com.topic"))
        subscriptions.append(wire.one(Subscribed).subscription)
    pattern = hub.joined_wire(codec, roles=WITH)
    pattern.send(Subscribe(1, {"match": "prefix"}, "com"))
    prefix = pattern.one(Subscribed).subscription
    publisher = hub.joined_wire(roles=WITH)
    publisher.send(Publish(1, {**PPT, "acknowledge": True, "ppt_x": 1}, "com.topic", [BLOB]))
    publication = publisher.one(Published).publication
    for wire, subscription in zip(subscribers, subscriptions, strict=True):
        assert wire.take() == [Event(subscription, publication, PPT, [BLOB])]
    assert pattern.take() == [Event(prefix, publication, {**PPT, "topic": "com.topic"}, [BLOB])]


def test_event_details_combine() -> None:
    hub = make_hub()
    subscriber = hub.joined_wire(roles=WITH)
    subscriber.send(Subscribe(1, {}, "com.topic"))
    subscription = subscriber.one(Subscribed).subscription
    publisher = hub.joined_wire(roles=WITH)
    publisher.send(Publish(1, {**MQTT, "disclose_me": True}, "com.topic", [BLOB], {}))
    event = subscriber.one(Event)
    assert event == Event(
        subscription,
        event.publication,
        {
            "publisher": publisher.session_id,
            "publisher_authid": publisher.slot.authid,
            "publisher_authrole": publisher.slot.authrole,
            **MQTT,
        },
        [BLOB],
        {},
    )


def test_publish_from_a_publisher_without_the_feature_is_a_violation() -> None:
    hub = make_hub()
    publisher = hub.joined_wire(roles=WITHOUT)
    assert publisher.violation(Publish(1, {"ppt_keyid": "k"}, "com.topic", [BLOB])) == (
        "PUBLISH with payload passthru options, but the publisher did not announce it"
    )


@pytest.mark.parametrize("acknowledge", [True, False])
@pytest.mark.parametrize(
    ("options", "args", "kwargs", "text"),
    [
        ({"ppt_scheme": 1}, [BLOB], None, "ppt_scheme must be a string, got int"),
        ({"ppt_cipher": "aes256gcm"}, [BLOB], None, NO_SCHEME),
        (PPT, ["text"], None, BAD_PAYLOAD),
        (PPT, [BLOB], {"a": 1}, BAD_PAYLOAD),
    ],
)
def test_malformed_ppt_publication_is_refused(
    acknowledge: bool,
    options: dict[str, Any],
    args: list[Any],
    kwargs: dict[str, Any] | None,
    text: str,
) -> None:
    hub = make_hub()
    subscriber = hub.joined_wire(roles=WITH)
    subscriber.send(Subscribe(1, {}, "com.topic"))
    subscriber.one(Subscribed)
    publisher = hub.joined_wire(roles=WITH)
    publisher.send(Publish(1, {**options, "acknowledge": acknowledge}, "com.topic", args, kwargs))
    expected = [Error(T.PUBLISH, 1, {}, ErrorURI.INVALID_ARGUMENT, [text])] if acknowledge else []
    assert publisher.take() == expected
    assert subscriber.take() == []


def test_ppt_publication_to_an_invalid_topic() -> None:
    hub = make_hub()
    publisher = hub.joined_wire(roles=WITH)
    publisher.send(Publish(1, {"ppt_scheme": 1, "acknowledge": True}, "com..topic"))
    assert publisher.one(Error).error == ErrorURI.INVALID_URI


def test_retained_and_history_events_keep_the_options() -> None:
    router = Router(["realm1"], roles=ROUTER, event_history=[("com.topic", "exact", 10)])
    hub = Hub(router)
    publisher = hub.joined_wire(roles=WITH)
    publisher.send(Publish(1, {**PPT, "retain": True, "acknowledge": True}, "com.topic", [BLOB]))
    publication = publisher.one(Published).publication
    subscriber = hub.joined_wire("msgpack", roles=WITH)
    subscriber.send(Subscribe(1, {"get_retained": True}, "com.topic"))
    subscribed, retained = subscriber.take()
    assert isinstance(subscribed, Subscribed)
    assert retained == Event(
        subscribed.subscription, publication, {**PPT, "retained": True}, [BLOB]
    )
    subscriber.send(Call(2, {}, "wamp.subscription.get_events", [subscribed.subscription]))
    result = subscriber.one(Result)
    assert result.args is not None
    ((event,),) = result.args
    assert (event["details"], event["args"]) == (PPT, [BLOB])


def test_router_publications_carry_no_ppt() -> None:
    hub = make_hub()
    subscriber = hub.joined_wire(roles=WITH)
    subscriber.send(Subscribe(1, {}, "com.topic"))
    subscription = subscriber.one(Subscribed).subscription
    broker = hub.router.realms["realm1"].broker
    broker.publish_from_router("com.topic", ["last will"], options={**PPT, "x": 1})
    event = subscriber.one(Event)
    assert (event.subscription, event.details, event.args) == (subscription, {}, ["last will"])


# -- the client session ----------------------------------------------------------------------


def test_client_roles_announce_the_feature() -> None:
    for role in CLIENT_ROLE_NAMES:
        assert CLIENT_ROLES[role]["features"][FEATURE] is True


def test_clients_through_the_router() -> None:
    hub = make_hub()
    callee = hub.client("cbor")
    caller = hub.client("json")
    subscriber = hub.client("msgpack")
    callee.client.register("com.proc")
    subscriber.client.subscribe("com.topic")
    hub.pump()
    registration = only(callee, RegisterSucceeded).registration_id
    subscription = only(subscriber, SubscribeSucceeded).subscription_id
    request = caller.client.call("com.proc", [BLOB], options=PPT)
    hub.pump()
    invocation = only(callee, InvocationReceived)
    assert invocation == InvocationReceived(invocation.request_id, registration, [BLOB], None, PPT)
    callee.client.yield_result(invocation.request_id, [b"r"], options=MQTT)
    hub.pump()
    assert only(caller, ResultReceived) == ResultReceived(request, [b"r"], None, MQTT, False)
    request = caller.client.call("com.proc", [BLOB], options=PPT)
    hub.pump()
    invocation = only(callee, InvocationReceived)
    callee.client.yield_error(invocation.request_id, "app.failed", [b"e"], details=PPT)
    hub.pump()
    assert only(caller, ErrorReceived) == ErrorReceived(
        T.CALL, request, "app.failed", [b"e"], None, PPT
    )
    caller.client.publish("com.topic", [BLOB], options=PPT)
    hub.pump()
    event = only(subscriber, EventReceived)
    assert (event.subscription_id, event.args, event.details) == (subscription, [BLOB], PPT)


def test_client_callee_hears_of_a_refused_yield() -> None:
    hub = make_hub()
    callee = hub.client("cbor")
    caller = hub.client("json", roles=WITHOUT)
    callee.client.register("com.proc")
    hub.pump()
    callee.take()
    request = caller.client.call("com.proc")
    hub.pump()
    invocation = only(callee, InvocationReceived)
    callee.client.yield_result(invocation.request_id, [BLOB], options=PPT)
    hub.pump()
    assert only(callee, ErrorReceived) == ErrorReceived(
        T.YIELD,
        invocation.request_id,
        ErrorURI.FEATURE_NOT_SUPPORTED,
        [CALLER_LACKS],
        None,
        {},
    )
    assert only(caller, ErrorReceived) == ErrorReceived(
        T.CALL, request, ErrorURI.FEATURE_NOT_SUPPORTED, [REFUSED + CALLER_LACKS], None, {}
    )


ROUTER_WELCOME = Welcome(7, {"roles": ROUTER})
UNANNOUNCED = "this session did not announce payload_passthru_mode ({role} role)"
ROUTER_LACKS = "the router did not announce payload_passthru_mode"


def joined(roles: dict[str, Any] | None = None, welcome: Welcome = ROUTER_WELCOME) -> ClientSession:
    session = ClientSession("json", roles=roles)
    session.join("realm1")
    session.messages_to_send()
    session.receive_message(welcome)
    return session


def registered_with_invocation(session: ClientSession, details: dict[str, Any]) -> int:
    """Register ``com.proc`` (registration 5) and receive INVOCATION 3 for it."""
    request = session.register("com.proc")
    session.receive_message(Registered(request, 5))
    session.messages_to_send()
    (event,) = session.receive_message(Invocation(3, 5, details, [BLOB]))
    assert isinstance(event, InvocationReceived)
    return 3


@pytest.mark.parametrize(
    ("roles", "welcome", "text"),
    [
        (WITHOUT, ROUTER_WELCOME, UNANNOUNCED),
        (WITH, Welcome(7, {"roles": NO_PPT_ROUTER}), ROUTER_LACKS),
        (WITH, Welcome(7, {"roles": {"broker": {"features": "odd"}, "dealer": 1}}), ROUTER_LACKS),
    ],
)  # fmt: skip
@pytest.mark.parametrize("verb", ["call", "publish", "yield_result", "yield_error"])
def test_client_refuses_to_send_ppt_unannounced(
    roles: dict[str, Any], welcome: Welcome, text: str, verb: str
) -> None:
    session = joined(roles, welcome)
    invocation = registered_with_invocation(session, {}) if verb.startswith("yield") else 0
    role = {"call": "caller", "publish": "publisher"}.get(verb, "callee")
    with pytest.raises(LocalProtocolError) as info:
        send(session, verb, PPT, [BLOB], None, invocation=invocation)
    assert info.value.message == text.format(role=role)
    assert session.messages_to_send() == []
    assert session.pending_requests == {}


def send(
    session: ClientSession,
    verb: str,
    options: dict[str, Any],
    args: list[Any] | None,
    kwargs: dict[str, Any] | None,
    *,
    invocation: int = 0,
) -> None:
    """Send ``options`` and the payload with ``verb``."""
    if verb == "call":
        session.call("com.proc", args, kwargs, options)
    elif verb == "publish":
        session.publish("com.topic", args, kwargs, options, acknowledge=True)
    elif verb == "yield_result":
        session.yield_result(invocation, args, kwargs, options)
    else:
        session.yield_error(invocation, "app.error", args, kwargs, options)


@pytest.mark.parametrize(
    ("options", "args", "kwargs", "text"),
    [
        ({"ppt_scheme": 1}, [BLOB], None, "ppt_scheme must be a string, got int"),
        ({"ppt_serializer": "cbor"}, [BLOB], None, NO_SCHEME),
        (PPT, None, None, BAD_PAYLOAD),
        (PPT, ["text"], None, BAD_PAYLOAD),
        (PPT, [BLOB], {"k": 1}, BAD_PAYLOAD),
        ({"ppt_scheme": "foo"}, [BLOB], None,
         "unknown ppt_scheme 'foo': use mqtt, wamp or a custom x_... scheme"),
        ({"ppt_scheme": "wamp"}, [BLOB], None, "ppt_scheme 'wamp' requires ppt_serializer"),
        ({"ppt_scheme": "wamp", "ppt_serializer": "json"}, [BLOB], None,
         "ppt_serializer 'json' is not one of ['cbor', 'flatbuffers'] for 'wamp'"),
        ({"ppt_scheme": "wamp", "ppt_serializer": "cbor", "ppt_cipher": "rot13"}, [BLOB], None,
         "ppt_cipher 'rot13' is not allowed for ppt_scheme 'wamp'"),
        ({"ppt_scheme": "mqtt", "ppt_serializer": "flatbuffers"}, [BLOB], None,
         "ppt_serializer 'flatbuffers' is not one of"
         " ['cbor', 'json', 'msgpack', 'native'] for 'mqtt'"),
        ({"ppt_scheme": "mqtt", "ppt_cipher": "aes256gcm"}, [BLOB], None,
         "ppt_cipher 'aes256gcm' is not allowed for ppt_scheme 'mqtt'"),
        ({"ppt_scheme": "mqtt", "ppt_keyid": "k"}, [BLOB], None,
         "ppt_scheme 'mqtt' takes no ppt_keyid"),
    ],
)  # fmt: skip
@pytest.mark.parametrize("verb", ["call", "publish", "yield_result", "yield_error"])
def test_client_refuses_malformed_ppt(
    options: dict[str, Any], args: list[Any] | None, kwargs: dict[str, Any] | None, text: str,
    verb: str,
) -> None:  # fmt: skip
    session = joined()
    invocation = registered_with_invocation(session, PPT) if verb.startswith("yield") else 0
    with pytest.raises(LocalProtocolError) as info:
        send(session, verb, options, args, kwargs, invocation=invocation)
    assert (info.value.message, info.value.reason) == (text, ErrorURI.INVALID_ARGUMENT)
    assert session.messages_to_send() == []


@pytest.mark.parametrize(
    "options",
    [
        {"ppt_scheme": "mqtt"},
        {"ppt_scheme": "mqtt", "ppt_serializer": "native"},
        {"ppt_scheme": "mqtt", "ppt_serializer": "msgpack"},
        {"ppt_scheme": "wamp", "ppt_serializer": "flatbuffers"},
        {"ppt_scheme": "wamp", "ppt_serializer": "cbor", "ppt_cipher": "aes256gcm",
         "ppt_keyid": "0xAb"},
        {"ppt_scheme": "x_mine", "ppt_serializer": "custom", "ppt_cipher": "custom",
         "ppt_keyid": "k"},
    ],
)  # fmt: skip
def test_client_sends_well_formed_ppt(options: dict[str, Any]) -> None:
    session = joined()
    request = session.call("com.proc", [BLOB], {}, options)
    assert session.messages_to_send() == [Call(request, options, "com.proc", [BLOB])]
    session.publish("com.topic", (BLOB,), None, {**options, "exclude_me": False})
    (publish,) = session.messages_to_send()
    assert publish == Publish(2, {**options, "exclude_me": False}, "com.topic", [BLOB])


def test_client_progressive_ppt_call_repeats_the_options() -> None:
    welcome = Welcome(7, {"roles": {"dealer": {"features": {
        FEATURE: True, "progressive_call_invocations": True}}}})  # fmt: skip
    session = joined(welcome=welcome)
    request = session.call("com.proc", [b"1"], None, {**PPT, "timeout": 5}, progress=True)
    session.continue_call(request, [b"2"], progress=True)
    with pytest.raises(LocalProtocolError) as info:
        session.continue_call(request, ["text"])
    assert info.value.message == BAD_PAYLOAD
    session.continue_call(request, [b"3"])
    assert session.messages_to_send() == [
        Call(request, {**PPT, "timeout": 5, **PROGRESS}, "com.proc", [b"1"]),
        Call(request, {**PPT, **PROGRESS}, "com.proc", [b"2"]),
        Call(request, PPT, "com.proc", [b"3"]),
    ]
    plain = session.call("com.proc", ["a"], progress=True)
    session.continue_call(plain, ["b"])
    assert session.messages_to_send() == [
        Call(plain, PROGRESS, "com.proc", ["a"]),
        Call(plain, {}, "com.proc", ["b"]),
    ]


def test_client_error_for_a_ppt_yield() -> None:
    session = joined()
    invocation = registered_with_invocation(session, PPT)
    session.yield_result(invocation, [BLOB], None, {**PPT, **PROGRESS})
    session.yield_result(invocation, [BLOB], None, PPT)
    refused = Error(T.YIELD, invocation, {}, ErrorURI.FEATURE_NOT_SUPPORTED, ["no"])
    assert session.receive_message(refused) == [
        ErrorReceived(T.YIELD, invocation, ErrorURI.FEATURE_NOT_SUPPORTED, ["no"], None, {})
    ]
    # One answer per YIELD refused; another one is a violation.
    with pytest.raises(RemoteProtocolError) as info:
        session.receive_message(refused)
    assert info.value.message == (
        f"ERROR for YIELD {invocation}, which was no payload passthru YIELD"
    )


def test_client_error_for_a_plain_yield_is_a_violation() -> None:
    session = joined()
    invocation = registered_with_invocation(session, {})
    session.yield_result(invocation, ["plain"])
    with pytest.raises(RemoteProtocolError):
        session.receive_message(Error(T.YIELD, invocation, {}, ErrorURI.FEATURE_NOT_SUPPORTED))
    assert session.state is client_module.ClientState.FAILED


def test_client_remembers_a_bounded_number_of_ppt_yields(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(client_module, "MAX_PPT_YIELDS", 1)
    session = joined()
    registered_with_invocation(session, PPT)
    session.receive_message(Invocation(4, 5, PPT, [BLOB]))
    session.yield_result(3, [BLOB], None, PPT)
    session.yield_result(4, [BLOB], None, PPT)
    assert session.receive_message(Error(T.YIELD, 4, {}, "x.y"))
    with pytest.raises(RemoteProtocolError):
        session.receive_message(Error(T.YIELD, 3, {}, "x.y"))


def test_client_without_the_feature_drops_ppt_events() -> None:
    for roles, delivered in ((WITH, True), (WITHOUT, False)):
        session = joined(roles)
        request = session.subscribe("com.topic")
        session.receive_message(Subscribed(request, 9))
        events = session.receive_message(Event(9, 1, PPT, [BLOB]))
        assert len(events) == delivered
        assert session.receive_message(Event(9, 2, {}, ["plain"])) == [
            EventReceived(9, 2, ["plain"], None, {})
        ]


@pytest.mark.parametrize("kind", ["result", "invocation"])
def test_client_without_the_feature_refuses_ppt_results_and_invocations(kind: str) -> None:
    session = joined(WITHOUT)
    if kind == "result":
        request = session.call("com.proc")
        message: Any = Result(request, PPT, [BLOB])
        text = "RESULT in payload passthru mode, which this session did not announce"
    else:
        request = session.register("com.proc")
        session.receive_message(Registered(request, 5))
        message = Invocation(3, 5, {"ppt_scheme": "mqtt"}, [BLOB])
        text = "INVOCATION in payload passthru mode, which this session did not announce"
    with pytest.raises(RemoteProtocolError) as info:
        session.receive_message(message)
    assert info.value.message == text


def test_client_with_the_feature_takes_ppt_results() -> None:
    session = joined()
    request = session.call("com.proc", [BLOB], None, PPT)
    session.messages_to_send()
    assert session.receive_message(Result(request, PPT, [BLOB])) == [
        ResultReceived(request, [BLOB], None, PPT, False)
    ]
