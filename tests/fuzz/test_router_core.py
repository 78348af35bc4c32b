"""Fuzzing the core router with well-formed messages holding random options.

``tests/core/test_fuzz.py`` sends random bytes and random message-shaped
lists, which the router mostly refuses at parsing. Here every message parses:
requests in sequence, the URIs of the bystanders' procedure and topic, and
Options/Details built from the keys the router reads (``match``, ``timeout``,
``receive_progress``, ``eligible``, ``exclude``, ``invoke``, ``mode``,
``get_retained`` ...) with values of every type. The time moves on between
messages, so call timeouts fire. The misbehaving session may be refused or
aborted, but the router never raises anything but ``RemoteProtocolError``,
the bystanders keep working, and nothing of the session is left once it is
detached.
"""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.core.pair import Net
from tests.core.test_fuzz import bystanders, check_bystanders
from wamp_core import (
    Hello,
    InvocationReceived,
    Message,
    RemoteProtocolError,
    Router,
    RouterSession,
    SerializationError,
    SessionState,
    get_serializer,
    parse_message,
)

FUZZ = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])

URIS = ["com.proc", "com.topic", "com", "com.", "com..topic", "wamp.session.count",
        "wamp.registration.list", "wamp.subscription.get_events", "x y", ""]  # fmt: skip
OPTION_KEYS = ["match", "timeout", "receive_progress", "progress", "exclude_me", "exclude",
               "eligible", "exclude_authid", "eligible_authrole", "acknowledge", "invoke",
               "disclose_me", "mode", "get_retained", "retain", "ppt_scheme", "ppt_serializer",
               "forward_for", "reason", "message", "x"]  # fmt: skip

WORDS = ["exact", "prefix", "wildcard", "single", "roundrobin", "random", "first", "last",
         "kill", "killnowait", "skip", "cbor", "x", ""]  # fmt: skip
scalars = st.one_of(
    st.integers(-1, 3),
    st.sampled_from([2**53, 2**53 + 1, 2**64, -(2**63), 0.5, -1.5, True, False, None]),
    st.sampled_from(WORDS),
    st.text(max_size=5),
    st.binary(max_size=4),
)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=2)
    ),
    max_leaves=6,
)
options = st.dictionaries(st.sampled_from(OPTION_KEYS), values, max_size=4)
uris = st.sampled_from(URIS)
payload = st.tuples(
    st.none() | st.lists(values, max_size=2),
    st.none() | st.dictionaries(st.text(max_size=3), values, max_size=2),
)
small_ids = st.integers(1, 4) | st.just(2**53)


@st.composite
def requests(draw: st.DrawFn, request: int) -> list[Any]:
    """One message a client may send, ``request`` as its request ID where it has one."""
    kind = draw(st.sampled_from(["publish", "subscribe", "call", "register", "unsubscribe",
                                 "unregister", "cancel", "yield", "error", "goodbye", "hello",
                                 "authenticate"]))  # fmt: skip
    args, kwargs = draw(payload)
    tail: list[Any] = []
    if kwargs is not None:
        tail = [[] if args is None else args, kwargs]
    elif args is not None:
        tail = [args]
    if kind == "publish":
        return [16, request, draw(options), draw(uris), *tail]
    if kind == "subscribe":
        return [32, request, draw(options), draw(uris)]
    if kind == "call":
        return [48, request, draw(options), draw(uris), *tail]
    if kind == "register":
        return [64, request, draw(options), draw(uris)]
    if kind == "unsubscribe":
        return [34, request, draw(small_ids)]
    if kind == "unregister":
        return [66, request, draw(small_ids)]
    if kind == "cancel":
        return [49, draw(st.integers(1, request)), draw(options)]
    if kind == "yield":
        return [70, draw(small_ids), draw(options), *tail]
    if kind == "error":
        request_type = draw(st.sampled_from([68, 48, 70]))
        return [8, request_type, draw(small_ids), draw(options), "com.err", *tail]
    if kind == "goodbye":
        return [6, draw(options), draw(uris)]
    if kind == "hello":
        return [1, "realm1", {"roles": {"caller": {}}}]
    return [5, draw(st.text(max_size=4)), draw(options)]


@st.composite
def scripts(draw: st.DrawFn) -> list[tuple[list[Any], float]]:
    """(message, seconds that pass before it) pairs; request IDs in sequence."""
    pauses = st.sampled_from([0.0, 0.0, 0.5, 3.0, 100.0])
    return [
        (draw(requests(request)), draw(pauses))
        for request in range(1, draw(st.integers(1, 10)) + 1)
    ]


HELLO_DETAILS = {
    "roles": {
        "caller": {"features": {"progressive_call_results": True, "call_canceling": True,
                                "call_timeout": True, "progressive_call_invocations": True}},
        "callee": {"features": {"progressive_call_results": True, "call_canceling": True,
                                "shared_registration": True, "pattern_based_registration": True,
                                "call_timeout": True, "progressive_call_invocations": True}},
        "publisher": {"features": {"subscriber_blackwhite_listing": True,
                                   "publisher_exclusion": True}},
        "subscriber": {"features": {"pattern_based_subscription": True,
                                    "event_retention": True}},
    }
}  # fmt: skip


def pump(net: Net, slot: RouterSession) -> None:
    """``Net.pump`` for the bystanders; the misbehaving session's output is checked
    (it decodes) and dropped. INVOCATIONs for the callee are answered."""
    router = net.router
    for _ in range(100):
        moved = False
        for peer_slot, peer in list(net.peers.items()):
            for data in peer.client.data_to_send():
                moved = True
                router.receive_data(peer_slot, data)
        for delivery in router.data_to_send():
            moved = True
            if delivery.session is slot:
                if delivery.data is not None:
                    assert slot.serializer.decode(delivery.data)
                continue
            peer = net.peers[delivery.session]
            assert delivery.data is not None
            for event in peer.client.receive_data(delivery.data):
                if isinstance(event, InvocationReceived):
                    peer.client.yield_result(event.request_id, ["ok"])
        if not moved:
            return
    raise AssertionError("traffic did not settle")


@FUZZ
@given(
    codec=st.sampled_from(["json", "msgpack", "cbor"]),
    script=scripts(),
    meta_api=st.booleans(),
)
def test_well_formed_requests_with_random_options(
    codec: str, script: list[tuple[list[Any], float]], meta_api: bool
) -> None:
    router = Router(["realm1"], meta_api=meta_api)
    net = Net(router)
    sub, callee, _ = bystanders(net)
    serializer = get_serializer(codec)
    slot = router.attach(serializer)
    router.receive_message(slot, Hello("realm1", HELLO_DETAILS))
    now = 0.0
    for raw, pause in script:
        now += pause
        router.tick(now)
        message: Message = parse_message(raw)  # well-formed by construction
        try:
            data = serializer.encode(message)
        except SerializationError:  # a value this codec cannot carry (2**64 in msgpack)
            continue
        try:
            router.receive_data(slot, data)
        except RemoteProtocolError:
            assert slot.state is SessionState.FAILED
            break
        finally:
            pump(net, slot)
    router.data_to_send()
    router.detach(slot)
    check_bystanders(net, sub, callee)
    assert slot not in router.realms["realm1"].sessions.values()
    assert not slot.registrations
    assert not slot.subscriptions
