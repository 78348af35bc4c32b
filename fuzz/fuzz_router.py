"""Fuzz target: the core ``Router`` fed one session's random input, with bystanders.

The first byte picks the serializer and whether the session first joins; the
rest is cut into transport messages by length bytes. The router may refuse the
input (``RemoteProtocolError``, the session's ABORT queued) but nothing else
escapes, and afterwards a subscriber and a callee on other sessions still get
a publication and a call, and nothing of the session is left once detached.
"""

from __future__ import annotations

from typing import Any

from _common import Reader, instrumented, main

with instrumented():
    import wamp_core

CODECS = ["json", "msgpack", "cbor", "wamp.2.json.batched", "wamp.2.msgpack.batched"]
ROLES: dict[str, Any] = {"roles": {"caller": {}, "callee": {}, "publisher": {}, "subscriber": {}}}


class Bench:
    """A router with a subscriber and a callee, all in memory."""

    def __init__(self) -> None:
        self.router = wamp_core.Router(["realm1"], strict_request_ids=False)
        self.clients: dict[wamp_core.RouterSession, wamp_core.ClientSession] = {}
        self.events: dict[wamp_core.RouterSession, list[Any]] = {}

    def join(self, codec: str) -> wamp_core.RouterSession:
        client = wamp_core.ClientSession(codec)
        slot = self.router.attach(client.serializer)
        self.clients[slot] = client
        self.events[slot] = []
        client.join("realm1")
        self.pump()
        return slot

    def pump(self, stranger: wamp_core.RouterSession | None = None) -> None:
        for _ in range(50):
            moved = False
            for slot, client in self.clients.items():
                for data in client.data_to_send():
                    moved = True
                    self.router.receive_data(slot, data)
            for delivery in self.router.data_to_send():
                moved = True
                if delivery.session is stranger:
                    if delivery.data is not None:
                        assert stranger.serializer.decode(delivery.data)
                    continue
                if delivery.data is not None:
                    client = self.clients[delivery.session]
                    for event in client.receive_data(delivery.data):
                        if isinstance(event, wamp_core.InvocationReceived):
                            client.yield_result(event.request_id, event.args)
                        self.events[delivery.session].append(event)
            if not moved:
                return
        raise AssertionError("traffic did not settle")


def test_one_input(data: bytes) -> None:
    reader = Reader(data)
    flags = reader.byte()
    bench = Bench()
    subscriber = bench.join("cbor")
    bench.clients[subscriber].subscribe("com.topic")
    callee = bench.join("msgpack")
    bench.clients[callee].register("com.proc")
    bench.pump()

    serializer = wamp_core.get_serializer(CODECS[flags % len(CODECS)])
    stranger = bench.router.attach(serializer)
    if flags & 0x80:
        bench.router.receive_message(stranger, wamp_core.Hello("realm1", ROLES))
    while not reader.done:
        payload = reader.take(200)
        try:
            bench.router.receive_data(stranger, payload)
        except wamp_core.RemoteProtocolError:
            assert stranger.state is wamp_core.SessionState.FAILED
            break
        bench.pump(stranger)
    bench.pump(stranger)
    bench.router.detach(stranger)
    assert not stranger.registrations
    assert not stranger.subscriptions

    for slot in (subscriber, callee):
        bench.events[slot].clear()
    caller = bench.join("json")
    client = bench.clients[caller]
    client.publish("com.topic", ["still here"])
    request = client.call("com.proc", [1])
    bench.pump()
    assert any(
        isinstance(e, wamp_core.EventReceived) and e.args == ["still here"]
        for e in bench.events[subscriber]
    )
    assert any(
        isinstance(e, wamp_core.ResultReceived) and e.request_id == request and e.args == [1]
        for e in bench.events[caller]
    )


def _seed(codec_index: int, join: bool, messages: list[list[Any]]) -> bytes:
    serializer = wamp_core.get_serializer(CODECS[codec_index])
    out = bytearray([codec_index | (0x80 if join else 0)])
    for message in messages:
        data = serializer.dumps(message)
        if serializer.batched:
            data = serializer.encode(wamp_core.parse_message(message))
        out += bytes([len(data)]) + data
    return bytes(out)


SEEDS = [
    _seed(0, True, [[32, 1, {}, "com.topic"], [16, 2, {"acknowledge": True}, "com.topic", [1]]]),
    _seed(1, True, [[64, 1, {"invoke": "roundrobin"}, "com.x"], [48, 2, {}, "com.proc", [1]]]),
    _seed(
        2,
        True,
        [[48, 1, {"receive_progress": True, "timeout": 10}, "com.proc"], [49, 1, {"mode": "kill"}]],
    ),
    _seed(3, False, [[1, "realm1", ROLES], [6, {}, "wamp.close.normal"]]),
    _seed(4, True, [[32, 1, {"match": "wildcard"}, "com..x"], [34, 2, 1]]),
]

if __name__ == "__main__":
    main(test_one_input, SEEDS)
