"""The HTTP long-poll transport state machine (wamp_core._longpoll)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import pytest

from wamp_core._errors import LocalProtocolError
from wamp_core._longpoll import (
    LONGPOLL_CONTENT_TYPES,
    LongPollClosed,
    LongPollEndpoint,
    LongPollEvent,
    LongPollMessage,
    LongPollOpened,
    LongPollResponse,
    LongPollState,
    LongPollTransport,
    LongPollWait,
)
from wamp_core._messages import Call, Event, Goodbye, Hello, Message, Publish, Welcome
from wamp_core._serializers import SERIALIZERS, get_serializer

CODECS = ["json", "msgpack", "cbor"]
CLIENT_MESSAGES: list[Message] = [
    Hello("realm1", {"roles": {"caller": {}, "publisher": {}}}),
    Call(1, {}, "com.example.add", [2, 3]),
    Publish(2, {"acknowledge": True}, "com.example.topic", ["x", b"\x00\xffbinary"], {"k": 1}),
]
ROUTER_MESSAGES: list[Message] = [
    Welcome(123456, {"roles": {"broker": {}, "dealer": {}}}),
    Event(11, 22, {}, ["payload", b"\x01\x02"]),
    Goodbye({}, "wamp.close.normal"),
]


def ids(*names: str) -> Iterator[str]:
    return iter(names)


def make(
    base: str = "/lp", names: tuple[str, ...] = ("t1", "t2", "t3"), **kwargs: object
) -> LongPollEndpoint:
    source = ids(*names)
    return LongPollEndpoint(base, id_source=lambda: next(source), **kwargs)  # type: ignore[arg-type]


def post(
    endpoint: LongPollEndpoint, path: str, body: bytes = b"", now: float = 0.0
) -> LongPollResponse:
    result = endpoint.handle("POST", path, body, now)
    assert isinstance(result, LongPollResponse)
    return result


def receive(endpoint: LongPollEndpoint, path: str, now: float = 0.0) -> LongPollWait:
    result = endpoint.handle("POST", path, b"", now)
    assert isinstance(result, LongPollWait)
    return result


def open_body(*protocols: object) -> bytes:
    return json.dumps({"protocols": list(protocols)}).encode()


def open_transport(
    endpoint: LongPollEndpoint, protocol: str = "wamp.2.json", now: float = 0.0
) -> LongPollTransport:
    response = post(endpoint, "/lp/open", open_body(protocol), now)
    assert response.status == 200
    assert isinstance(response.event, LongPollOpened)
    return response.event.transport


def state_of(transport: LongPollTransport) -> LongPollState:
    # A call, so that mypy does not keep a narrowed state across transitions.
    return transport.state


def headers(response: LongPollResponse) -> dict[str, str]:
    return dict(response.headers)


def assert_text(response: LongPollResponse, status: int, fragment: str) -> None:
    assert response.status == status
    assert headers(response)["content-type"] == "text/plain; charset=utf-8"
    assert headers(response)["content-length"] == str(len(response.body))
    assert fragment in response.body.decode()
    assert response.event is None


def assert_empty(response: LongPollResponse, status: int) -> None:
    assert response.status == status
    assert response.body == b""
    assert "content-type" not in headers(response)
    assert headers(response)["cache-control"] == "no-store"
    if status == 204:
        assert "content-length" not in headers(response)
    else:
        assert headers(response)["content-length"] == "0"


# -- open ------------------------------------------------------------------------


def test_open_picks_the_first_supported_protocol_in_the_clients_order() -> None:
    endpoint = make(protocols=["wamp.2.json", "wamp.2.cbor"])
    body = open_body("wamp.2.ubjson", "wamp.2.cbor", "wamp.2.json")
    response = post(endpoint, "/lp/open", body, now=5.0)
    assert response.status == 200
    assert headers(response) == {
        "cache-control": "no-store",
        "content-type": "application/json",
        "content-length": str(len(response.body)),
    }
    assert json.loads(response.body) == {"protocol": "wamp.2.cbor", "transport": "t1"}
    assert isinstance(response.event, LongPollOpened)
    assert isinstance(response.event, LongPollEvent)
    transport = response.event.transport
    assert transport.id == "t1"
    assert transport.protocol == "wamp.2.cbor"
    assert transport.serializer is SERIALIZERS["wamp.2.cbor"]
    assert state_of(transport) is LongPollState.OPEN
    assert transport.last_activity == 5.0
    assert endpoint.transports == {"t1": transport}
    assert repr(transport) == "LongPollTransport('t1', 'wamp.2.cbor', open)"


def test_open_offers_every_serializer_by_default() -> None:
    endpoint = LongPollEndpoint("/lp")
    assert set(endpoint.protocols) == set(SERIALIZERS)
    for protocol in SERIALIZERS:
        assert open_transport(endpoint, protocol).protocol == protocol


def test_open_without_overlap_is_400_and_creates_nothing() -> None:
    endpoint = make(protocols=["wamp.2.json"])
    response = post(endpoint, "/lp/open", open_body("wamp.2.msgpack", "wamp.2.cbor.batched"))
    assert_text(response, 400, "no common protocol; offered: wamp.2.json")
    assert endpoint.transports == {}


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"not json", "not JSON"),
        (b"", "not JSON"),
        (b"\xff\xfe{}", "not JSON"),
        (b"[" * 200_000, "not JSON"),  # nested too deeply for the decoder
        (b'["wamp.2.json"]', "must be a JSON object"),
        (b'"wamp.2.json"', "must be a JSON object"),
        (b"{}", "non-empty list of strings"),
        (b'{"protocols": "wamp.2.json"}', "non-empty list of strings"),
        (b'{"protocols": null}', "non-empty list of strings"),
        (b'{"protocols": []}', "non-empty list of strings"),
        (b'{"protocols": [1]}', "non-empty list of strings"),
        (b'{"protocols": ["wamp.2.json", null]}', "non-empty list of strings"),
    ],
)
def test_malformed_open_bodies_are_400(body: bytes, reason: str) -> None:
    endpoint = make(max_body_size=1 << 20)
    assert_text(post(endpoint, "/lp/open", body), 400, reason)
    assert endpoint.transports == {}


def test_max_transports_answers_503_until_one_goes() -> None:
    endpoint = make(max_transports=2)
    first = open_transport(endpoint)
    open_transport(endpoint)
    assert_text(post(endpoint, "/lp/open", open_body("wamp.2.json")), 503, "too many")
    assert_empty(post(endpoint, f"/lp/{first.id}/close"), 204)
    assert open_transport(endpoint).id == "t3"


# -- transport ids -----------------------------------------------------------------


def test_default_ids_are_random_url_safe_and_distinct() -> None:
    endpoint = LongPollEndpoint("/lp")
    seen = {open_transport(endpoint).id for _ in range(50)}
    assert len(seen) == 50
    for transport_id in seen:
        assert re.fullmatch(r"[A-Za-z0-9_-]{22,}", transport_id)  # >= 128 bits


@pytest.mark.parametrize("bad", ["", "a/b", "x?y", "sp ace", "t1"])
def test_an_unusable_injected_id_is_refused(bad: str) -> None:
    endpoint = make(names=("t1", bad))
    open_transport(endpoint)
    with pytest.raises(LocalProtocolError, match="unusable transport id"):
        endpoint.handle("POST", "/lp/open", open_body("wamp.2.json"), 0.0)
    assert list(endpoint.transports) == ["t1"]


# -- send and receive ------------------------------------------------------------------


@pytest.mark.parametrize("codec", CODECS)
def test_unbatched_send_and_receive(codec: str) -> None:
    serializer = get_serializer(codec)
    endpoint = make()
    transport = open_transport(endpoint, serializer.subprotocol)
    assert transport.content_type == LONGPOLL_CONTENT_TYPES[codec]

    for message in CLIENT_MESSAGES:
        wire = serializer.encode(message)
        response = post(endpoint, "/lp/t1/send", wire)
        assert_empty(response, 204)
        assert response.event == LongPollMessage(transport, wire)
        assert serializer.decode(response.event.payload) == [message]

    for message in ROUTER_MESSAGES:
        assert transport.send(serializer.encode(message)) is True
    assert transport.queued_messages == 3
    assert transport.queued_bytes == sum(len(serializer.encode(m)) for m in ROUTER_MESSAGES)

    # AP/ap_transport_http_longpoll.md: one message per response when unbatched.
    for message in ROUTER_MESSAGES:
        response = post(endpoint, "/lp/t1/receive")
        assert response.status == 200
        assert headers(response) == {
            "cache-control": "no-store",
            "content-type": LONGPOLL_CONTENT_TYPES[codec],
            "content-length": str(len(response.body)),
        }
        assert response.event is None
        assert serializer.decode(response.body) == [message]
    assert transport.queued_bytes == 0
    assert not transport.has_outgoing
    receive(endpoint, "/lp/t1/receive")


@pytest.mark.parametrize("codec", CODECS)
def test_batched_send_and_receive(codec: str) -> None:
    serializer = get_serializer(f"wamp.2.{codec}.batched")
    endpoint = make()
    transport = open_transport(endpoint, serializer.subprotocol)
    assert transport.content_type == LONGPOLL_CONTENT_TYPES[codec]

    batch = b"".join(serializer.encode(m) for m in CLIENT_MESSAGES)
    response = post(endpoint, "/lp/t1/send", batch)
    assert_empty(response, 204)
    assert isinstance(response.event, LongPollMessage)
    assert serializer.decode(response.event.payload) == CLIENT_MESSAGES

    for message in ROUTER_MESSAGES:
        assert transport.send(serializer.encode(message))
    # ...and everything pending in one batch.
    response = post(endpoint, "/lp/t1/receive")
    assert response.status == 200
    assert headers(response)["content-type"] == LONGPOLL_CONTENT_TYPES[codec]
    assert serializer.decode(response.body) == ROUTER_MESSAGES
    assert (transport.queued_messages, transport.queued_bytes) == (0, 0)
    receive(endpoint, "/lp/t1/receive")


def test_an_empty_send_body_is_400() -> None:
    endpoint = make()
    open_transport(endpoint)
    assert_text(post(endpoint, "/lp/t1/send"), 400, "must hold a WAMP message")


def test_the_body_of_receive_and_close_is_ignored() -> None:
    endpoint = make()
    transport = open_transport(endpoint)
    transport.send(b"[1]")
    assert post(endpoint, "/lp/t1/receive", b"junk").body == b"[1]"
    assert_empty(post(endpoint, "/lp/t1/close", b"junk"), 204)


def test_ack_status_204_for_autobahn_js() -> None:
    endpoint = make(ack_status=204)
    open_transport(endpoint)
    assert_empty(post(endpoint, "/lp/t1/send", b"[1]"), 204)
    assert_empty(post(endpoint, "/lp/t1/close"), 204)


def test_ack_status_200() -> None:
    endpoint = make(ack_status=200)
    open_transport(endpoint)
    assert_empty(post(endpoint, "/lp/t1/send", b"[1]"), 200)


# -- held receive requests ---------------------------------------------------------------


def test_receive_waits_until_data_arrives() -> None:
    endpoint = make()
    transport = open_transport(endpoint)
    wait = receive(endpoint, "/lp/t1/receive", now=1.0)
    assert wait.transport is transport
    assert wait.current
    assert not wait.ready
    assert transport.polling

    welcome = SERIALIZERS["wamp.2.json"].encode(ROUTER_MESSAGES[0])
    assert transport.send(welcome)
    assert wait.ready
    response = endpoint.finish_wait(wait, now=2.0)
    assert response.status == 200
    assert response.body == welcome
    assert headers(response)["content-type"] == "application/json"
    assert not transport.polling
    assert not wait.current
    assert transport.last_activity == 2.0


def test_a_poll_timeout_answers_204() -> None:
    endpoint = make()
    transport = open_transport(endpoint)
    wait = receive(endpoint, "/lp/t1/receive")
    assert not wait.ready
    assert_empty(endpoint.finish_wait(wait, now=10.0), 204)
    assert not transport.polling
    assert transport.last_activity == 10.0
    # Finishing it twice takes nothing.
    transport.send(b"[1]")
    assert_empty(endpoint.finish_wait(wait, now=11.0), 204)
    assert transport.has_outgoing


def test_a_new_receive_supersedes_the_held_one() -> None:
    endpoint = make()
    transport = open_transport(endpoint)
    first = receive(endpoint, "/lp/t1/receive")
    second = receive(endpoint, "/lp/t1/receive")
    assert not first.current
    assert first.ready
    assert second.current
    assert not second.ready
    transport.send(b"[1]")
    assert_empty(endpoint.finish_wait(first, now=1.0), 204)
    assert endpoint.finish_wait(second, now=1.0).body == b"[1]"


def test_a_new_receive_with_data_pending_answers_at_once_and_supersedes() -> None:
    endpoint = make()
    transport = open_transport(endpoint)
    held = receive(endpoint, "/lp/t1/receive")
    # The adapter has not woken the held request yet when the client asks again.
    transport.send(b"[1]")
    assert post(endpoint, "/lp/t1/receive").body == b"[1]"
    assert not held.current
    assert not transport.polling


def test_abandoning_a_held_receive_keeps_the_data() -> None:
    endpoint = make()
    transport = open_transport(endpoint)
    wait = receive(endpoint, "/lp/t1/receive")
    transport.send(b"[1]")
    endpoint.abandon_wait(wait, now=3.0)
    assert not transport.polling
    assert transport.last_activity == 3.0
    endpoint.abandon_wait(wait, now=4.0)  # no longer current: nothing changes
    assert transport.last_activity == 3.0
    assert post(endpoint, "/lp/t1/receive").body == b"[1]"


# -- closing -----------------------------------------------------------------------------


def test_client_close_drops_the_transport() -> None:
    endpoint = make()
    transport = open_transport(endpoint)
    wait = receive(endpoint, "/lp/t1/receive")
    response = post(endpoint, "/lp/t1/close?x=9")
    assert_empty(response, 204)
    assert response.event == LongPollClosed(transport, "closed")
    assert state_of(transport) is LongPollState.CLOSED
    assert endpoint.transports == {}
    # The held receive is answered (empty, as Crossbar does), not left hanging.
    assert wait.ready
    assert not wait.current
    assert_empty(endpoint.finish_wait(wait, now=1.0), 204)
    for operation in ("send", "receive", "close"):
        assert_text(post(endpoint, f"/lp/t1/{operation}", b"[1]"), 404, "no long-poll transport")
    with pytest.raises(LocalProtocolError, match="t1 is closed"):
        transport.send(b"[1]")
    transport.close()  # idempotent
    assert state_of(transport) is LongPollState.CLOSED


def test_client_close_discards_pending_output() -> None:
    endpoint = make()
    transport = open_transport(endpoint)
    transport.send(b"[1]")
    post(endpoint, "/lp/t1/close")
    assert (transport.queued_messages, transport.queued_bytes) == (0, 0)


def test_router_close_delivers_what_is_queued_then_refuses() -> None:
    serializer = SERIALIZERS["wamp.2.json"]
    endpoint = make()
    transport = open_transport(endpoint)
    goodbye = serializer.encode(Goodbye({}, "wamp.close.goodbye_and_out"))
    transport.send(goodbye)
    transport.close()
    transport.close()  # idempotent
    assert state_of(transport) is LongPollState.CLOSING
    assert endpoint.transports == {"t1": transport}
    with pytest.raises(LocalProtocolError, match="t1 is closing"):
        transport.send(b"[1]")

    assert_text(post(endpoint, "/lp/t1/send", b'[6,{},"x"]'), 404, "is closed")
    assert post(endpoint, "/lp/t1/receive").body == goodbye
    assert_text(post(endpoint, "/lp/t1/receive"), 404, "is closed")
    # The client's close is acknowledged; no event, the session is already detached.
    response = post(endpoint, "/lp/t1/close")
    assert_empty(response, 204)
    assert response.event is None
    assert state_of(transport) is LongPollState.CLOSED
    assert_text(post(endpoint, "/lp/t1/close"), 404, "no long-poll transport")


def test_router_close_wakes_a_held_receive() -> None:
    endpoint = make()
    transport = open_transport(endpoint)
    wait = receive(endpoint, "/lp/t1/receive")
    transport.close()
    assert wait.ready
    assert wait.current
    assert_text(endpoint.finish_wait(wait, now=1.0), 404, "is closed")
    assert not transport.polling


def test_router_close_with_a_held_receive_and_pending_output() -> None:
    endpoint = make()
    transport = open_transport(endpoint)
    wait = receive(endpoint, "/lp/t1/receive")
    transport.send(b'[3,{},"wamp.error.protocol_violation"]')
    transport.close()
    assert endpoint.finish_wait(wait, now=1.0).body == b'[3,{},"wamp.error.protocol_violation"]'


# -- routing and HTTP errors ----------------------------------------------------------------


def test_unknown_transport_is_404() -> None:
    endpoint = make()
    open_transport(endpoint)
    for path in ("/lp/nope/send", "/lp/nope/receive", "/lp/nope/close", "/lp//receive"):
        assert_text(post(endpoint, path, b"[1]"), 404, "no long-poll transport")


@pytest.mark.parametrize(
    "path",
    [
        "/",
        "/lp",
        "/lp/",
        "/lpx/open",
        "/other/open",
        "/lp/open/",
        "/lp/open/x",
        "/lp/t1",
        "/lp/t1/",
        "/lp/t1/foo",
        "/lp/t1/send/x",
        "/lp/x/t1/send",
        "*",
    ],
)
def test_unknown_paths_are_404(path: str) -> None:
    endpoint = make()
    open_transport(endpoint)
    for method in ("POST", "GET", "OPTIONS"):
        result = endpoint.handle(method, path, b"", 0.0)
        assert isinstance(result, LongPollResponse)
        assert_text(result, 404, "no such long-poll resource")


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "HEAD", "post", b"GET"])
def test_other_methods_are_405(method: str | bytes) -> None:
    endpoint = make()
    open_transport(endpoint)
    for path in ("/lp/open", "/lp/t1/receive", "/lp/unknown/send"):
        result = endpoint.handle(method, path, b"", 0.0)
        assert isinstance(result, LongPollResponse)
        assert_text(result, 405, "only POST")
        assert headers(result)["allow"] == "POST, OPTIONS"
    assert not endpoint.transports["t1"].polling


def test_options_answers_a_cors_preflight() -> None:
    endpoint = make()
    for path in ("/lp/open", "/lp/anything/send?x=1"):
        result = endpoint.handle("OPTIONS", path, b"", 0.0)
        assert isinstance(result, LongPollResponse)
        assert_empty(result, 204)
        assert headers(result) == {
            "cache-control": "no-store",
            "allow": "POST, OPTIONS",
            "access-control-allow-methods": "POST, OPTIONS",
            "access-control-allow-headers": "content-type",
        }


def test_bytes_method_and_path_are_accepted() -> None:
    endpoint = make()
    result = endpoint.handle(b"POST", b"/lp/open?x=1", open_body("wamp.2.json"), 0.0)
    assert isinstance(result, LongPollResponse)
    assert result.status == 200


def test_a_body_over_the_limit_is_413() -> None:
    endpoint = make(max_body_size=32)
    open_transport(endpoint)  # a 30-byte body
    assert endpoint.check_body_size(32) is None
    response = endpoint.check_body_size(33)
    assert response is not None
    assert_text(response, 413, "over 32 bytes")
    assert_empty(post(endpoint, "/lp/t1/send", b"x" * 32), 204)
    assert_text(post(endpoint, "/lp/t1/send", b"x" * 33), 413, "over 32 bytes")
    assert_text(post(endpoint, "/lp/open", b" " * 33), 413, "over 32 bytes")


def test_the_query_string_is_ignored() -> None:
    endpoint = make()
    response = post(endpoint, "/lp/open?x=382913", open_body("wamp.2.json"))
    assert response.status == 200
    assert_empty(post(endpoint, "/lp/t1/send?x=1&y=2", b"[1]"), 204)
    endpoint.transports["t1"].send(b"[2]")
    assert post(endpoint, "/lp/t1/receive?x=").body == b"[2]"
    receive(endpoint, "/lp/t1/receive?")


def test_a_root_base_path() -> None:
    endpoint = LongPollEndpoint("/", id_source=lambda: "t1")
    assert endpoint.base_path == ""
    result = endpoint.handle("POST", "/open", open_body("wamp.2.json"), 0.0)
    assert isinstance(result, LongPollResponse)
    assert result.status == 200
    assert isinstance(endpoint.handle("POST", "/t1/receive", b"", 0.0), LongPollWait)


def test_a_trailing_slash_on_the_base_path_is_dropped() -> None:
    endpoint = make(base="/deep/lp/")
    assert endpoint.base_path == "/deep/lp"
    assert post(endpoint, "/deep/lp/open", open_body("wamp.2.json")).status == 200


# -- expiry --------------------------------------------------------------------------------


def test_idle_transports_expire() -> None:
    endpoint = make(idle_timeout=30.0)
    assert endpoint.next_deadline() is None
    first = open_transport(endpoint, now=0.0)
    second = open_transport(endpoint, now=5.0)
    assert endpoint.next_deadline() == 30.0
    assert endpoint.expire(29.9) == []
    # Any request on a transport counts as activity.
    post(endpoint, "/lp/t1/send", b"[1]", now=10.0)
    assert endpoint.next_deadline() == 35.0
    assert endpoint.expire(35.0) == [LongPollClosed(second, "expired")]
    assert state_of(second) is LongPollState.CLOSED
    assert endpoint.next_deadline() == 40.0
    assert endpoint.expire(100.0) == [LongPollClosed(first, "expired")]
    assert endpoint.transports == {}
    assert endpoint.next_deadline() is None
    assert_text(post(endpoint, "/lp/t1/receive", now=101.0), 404, "no long-poll transport")


def test_a_held_receive_prevents_expiry() -> None:
    endpoint = make(idle_timeout=30.0)
    transport = open_transport(endpoint, now=0.0)
    wait = receive(endpoint, "/lp/t1/receive", now=10.0)
    assert endpoint.next_deadline() is None
    assert endpoint.expire(1000.0) == []
    assert endpoint.transports == {"t1": transport}
    # The idle count restarts when the held request ends.
    endpoint.finish_wait(wait, now=1000.0)
    assert endpoint.next_deadline() == 1030.0
    assert endpoint.expire(1030.0) == [LongPollClosed(transport, "expired")]


def test_only_unpolled_transports_set_the_deadline() -> None:
    endpoint = make(idle_timeout=30.0)
    open_transport(endpoint, now=0.0)
    open_transport(endpoint, now=20.0)
    receive(endpoint, "/lp/t1/receive", now=1.0)
    assert endpoint.next_deadline() == 50.0


def test_a_closing_transport_expires_silently() -> None:
    endpoint = make(idle_timeout=30.0)
    transport = open_transport(endpoint, now=0.0)
    transport.send(b"[1]")
    transport.close()
    assert endpoint.next_deadline() == 30.0
    assert endpoint.expire(30.0) == []
    assert state_of(transport) is LongPollState.CLOSED
    assert transport.queued_bytes == 0
    assert endpoint.transports == {}


# -- the outgoing queue bound ----------------------------------------------------------------


def test_the_queue_is_bounded_by_messages() -> None:
    endpoint = make(max_queue_messages=2)
    transport = open_transport(endpoint)
    assert transport.send(b"[1]")
    assert transport.send(b"[2]")
    assert transport.send(b"[3]") is False
    assert transport.queued_messages == 2
    post(endpoint, "/lp/t1/receive")
    assert transport.send(b"[3]")


def test_the_queue_is_bounded_by_bytes() -> None:
    endpoint = make(max_queue_bytes=10)
    transport = open_transport(endpoint)
    assert transport.send(b"12345678")
    assert transport.send(b"12") is True  # exactly 10
    assert transport.send(b"1") is False
    assert transport.queued_bytes == 10
    post(endpoint, "/lp/t1/receive")
    post(endpoint, "/lp/t1/receive")
    # An empty queue takes one message of any size.
    assert transport.send(b"x" * 100)
    assert transport.send(b"1") is False
    assert transport.queued_bytes == 100


def test_an_empty_payload_is_refused() -> None:
    endpoint = make()
    transport = open_transport(endpoint)
    with pytest.raises(LocalProtocolError, match="cannot be empty"):
        transport.send(b"")
    assert not transport.has_outgoing


# -- configuration ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"base_path": ""}, "absolute path"),
        ({"base_path": "lp"}, "absolute path"),
        ({"base_path": "/lp?x=1"}, "absolute path"),
        ({"base_path": "/lp#x"}, "absolute path"),
        ({"protocols": ["wamp.2.xml"]}, "unknown or no protocols"),
        ({"protocols": []}, "unknown or no protocols"),
        ({"max_transports": 0}, "must be positive"),
        ({"idle_timeout": 0.0}, "must be positive"),
        ({"max_body_size": -1}, "must be positive"),
        ({"max_queue_bytes": 0}, "must be positive"),
        ({"max_queue_messages": 0}, "must be positive"),
        ({"ack_status": 201}, "ack_status"),
    ],
)
def test_bad_settings_are_refused(kwargs: dict[str, object], match: str) -> None:
    options: dict[str, object] = {"base_path": "/lp", **kwargs}
    with pytest.raises(LocalProtocolError, match=match):
        LongPollEndpoint(**options)  # type: ignore[arg-type]


def test_the_transports_view_is_read_only() -> None:
    endpoint = make()
    open_transport(endpoint)
    with pytest.raises(TypeError):
        endpoint.transports["x"] = endpoint.transports["t1"]  # type: ignore[index]


def test_content_types() -> None:
    assert dict(LONGPOLL_CONTENT_TYPES) == {
        "json": "application/json",
        "msgpack": "application/x-msgpack",
        "cbor": "application/cbor",
    }
