"""Fuzzing the session state machines: random bytes and random message-shaped
input only ever raise the core's ``RemoteProtocolError``, and never disturb
another session (BP/building_blocks.md, "Protocol Errors")."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wamp_core import (
    ClientSession,
    EventReceived,
    MessageType,
    RemoteProtocolError,
    ResultReceived,
    Router,
    SessionState,
    get_serializer,
)

from .pair import Net

CODECS = ["json", "msgpack", "cbor", "wamp.2.json.batched", "wamp.2.cbor.batched"]
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

scalars = st.one_of(
    st.integers(min_value=-2, max_value=2**53 + 2),
    st.sampled_from([0, 1, 2, 3, 2**53, True, False, None]),
    st.text(max_size=12),
    st.sampled_from(["com.a", "com.topic", "com..x", "wamp.session.count", "", "a b"]),
    st.binary(max_size=8),
)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=12,
)
message_like = st.builds(
    lambda code, rest: [code, *rest],
    st.sampled_from([int(t) for t in MessageType] + [0, 7, 255, 337]),
    st.lists(values, max_size=6),
)


def bystanders(net: Net) -> tuple[Any, Any, int]:
    """A subscriber and a callee that must keep working whatever else happens."""
    sub = net.joined("cbor")
    sub.client.subscribe("com.topic")
    callee = net.joined("msgpack")
    callee.client.register("com.proc")
    net.pump()
    sub.take()
    callee.take()
    (subscription,) = sub.client.subscriptions
    return sub, callee, subscription


def check_bystanders(net: Net, sub: Any, callee: Any) -> None:
    caller = net.joined("json")
    caller.client.publish("com.topic", ["still here"], options={"exclude_me": True})
    request = caller.client.call("com.proc", [1])
    net.pump()
    (event,) = sub.take()
    assert isinstance(event, EventReceived)
    assert event.args == ["still here"]
    (invocation,) = callee.take()
    callee.client.yield_result(invocation.request_id, [2])
    net.pump()
    assert caller.take() == [ResultReceived(request, [2], None, {}, False)]
    net.router.detach(caller.slot)
    net.peers.pop(caller.slot)


def feed_router(net: Net, codec: str, payloads: list[bytes], join: bool) -> None:
    router = net.router
    slot = router.attach(get_serializer(codec))
    if join:
        router.receive_message(slot, _hello())
    for payload in payloads:
        try:
            router.receive_data(slot, payload)
        except RemoteProtocolError:
            assert slot.state is SessionState.FAILED
    router.data_to_send()  # whatever it answered, the bystanders must not care
    router.detach(slot)


def _hello() -> Any:
    from wamp_core import Hello

    return Hello(
        "realm1", {"roles": {"caller": {}, "callee": {}, "publisher": {}, "subscriber": {}}}
    )


@FUZZ
@given(codec=st.sampled_from(CODECS), data=st.lists(st.binary(max_size=64), max_size=4),
       join=st.booleans())  # fmt: skip
def test_router_random_bytes(codec: str, data: list[bytes], join: bool) -> None:
    net = Net()
    sub, callee, _ = bystanders(net)
    feed_router(net, codec, data, join)
    check_bystanders(net, sub, callee)


@FUZZ
@given(codec=st.sampled_from(CODECS), messages=st.lists(message_like, min_size=1, max_size=6),
       join=st.booleans())  # fmt: skip
def test_router_random_messages(codec: str, messages: list[list[Any]], join: bool) -> None:
    serializer = get_serializer(codec)
    payloads = []
    for raw in messages:
        try:
            payloads.append(serializer.dumps(raw))
        except Exception:  # a value this codec cannot carry (e.g. bytes keys)
            continue
        if serializer.batched:
            payloads[-1] = serializer._frame(payloads[-1])
    net = Net(Router(["realm1"], strict_request_ids=False))
    sub, callee, _ = bystanders(net)
    feed_router(net, codec, payloads, join)
    check_bystanders(net, sub, callee)
    for peer in list(net.peers.values()):
        net.router.detach(peer.slot)
    realm = net.router.realms["realm1"]
    assert not realm.sessions
    assert not realm.broker.subscriptions
    assert not realm.dealer.registrations
    assert not net.router.sessions


@FUZZ
@given(codec=st.sampled_from(CODECS), messages=st.lists(message_like, min_size=1, max_size=6),
       established=st.booleans())  # fmt: skip
def test_client_random_messages(codec: str, messages: list[list[Any]], established: bool) -> None:
    serializer = get_serializer(codec)
    client = ClientSession(serializer)
    client.join("realm1")
    if established:
        client.receive_data(serializer.encode(_welcome()))
        client.call("com.a")
        client.subscribe("com.t")
    for raw in messages:
        try:
            payload = serializer.dumps(raw)
        except Exception:
            continue
        if serializer.batched:
            payload = serializer._frame(payload)
        try:
            client.receive_data(payload)
        except RemoteProtocolError:
            assert client.messages_to_send()[-1].type is MessageType.ABORT
            return


@FUZZ
@given(codec=st.sampled_from(CODECS), data=st.binary(max_size=64))
def test_client_random_bytes(codec: str, data: bytes) -> None:
    client = ClientSession(codec)
    client.join("realm1")
    try:
        client.receive_data(data)
    except RemoteProtocolError:
        assert client.messages_to_send()[-1].type is MessageType.ABORT


def _welcome() -> Any:
    from wamp_core import Welcome

    return Welcome(1, {"roles": {"broker": {}, "dealer": {}}})
