"""Realms are fully isolated: the same topics, procedures and IDs in two realms
never meet (BP/sessions.md, "realms")."""

from __future__ import annotations

from wamp_core import (
    ErrorReceived,
    EventReceived,
    InvocationReceived,
    ResultReceived,
    Router,
)

from .pair import Net


def test_two_realms_never_see_each_other() -> None:
    net = Net(Router(["realm1", "realm2"]))
    one_sub, two_sub = net.joined(realm="realm1"), net.joined("cbor", realm="realm2")
    one_callee, two_callee = net.joined(realm="realm1"), net.joined("msgpack", realm="realm2")
    for peer in (one_sub, two_sub):
        peer.client.subscribe("com.example.topic")
    for peer in (one_callee, two_callee):
        peer.client.register("com.example.proc")
    net.pump()
    for peer in (one_sub, two_sub, one_callee, two_callee):
        peer.take()
    one_caller, two_caller = net.joined(realm="realm1"), net.joined(realm="realm2")
    one_caller.client.publish("com.example.topic", ["for realm1"])
    request = two_caller.client.call("com.example.proc", ["for realm2"])
    net.pump()
    (event,) = one_sub.take()
    assert isinstance(event, EventReceived)
    assert event.args == ["for realm1"]
    assert two_sub.take() == []
    assert one_callee.take() == []
    (invocation,) = two_callee.take()
    assert isinstance(invocation, InvocationReceived)
    two_callee.client.yield_result(invocation.request_id, ["from realm2"])
    net.pump()
    (result,) = two_caller.take()
    assert result == ResultReceived(request, ["from realm2"], None, {}, False)
    # The meta API answers per realm.
    count = one_caller.client.call("wamp.session.count")
    net.pump()
    (counted,) = one_caller.take()
    assert isinstance(counted, ResultReceived)
    assert (counted.request_id, counted.args) == (count, [3])
    # A registration in one realm does not make the procedure exist in the other.
    net.router.detach(two_callee.slot)
    retry = two_caller.client.call("com.example.proc")
    net.pump()
    (missing,) = two_caller.take()
    assert isinstance(missing, ErrorReceived)
    assert (missing.request_id, missing.error) == (retry, "wamp.error.no_such_procedure")
    assert one_callee.slot.registrations  # realm1's registration is untouched
