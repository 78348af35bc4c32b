"""Fuzz target: every serializer's ``decode``, plain and batched.

The first byte picks the serializer, the rest is one transport message.
Decoding gives WAMP messages or raises ``RemoteProtocolError``; what is
accepted encodes again with the same serializer and decodes to the same message
(else the router could not forward it).
"""

from __future__ import annotations

from _common import instrumented, main
from _values import same

with instrumented():
    import wamp_core

SERIALIZERS = [wamp_core.SERIALIZERS[name] for name in sorted(wamp_core.SERIALIZERS)]


def test_one_input(data: bytes) -> None:
    if not data:
        return
    serializer = SERIALIZERS[data[0] % len(SERIALIZERS)]
    try:
        messages = serializer.decode(data[1:])
    except wamp_core.RemoteProtocolError as exc:
        exc.message.encode("utf-8")  # it goes into ABORT.Details.message
        return
    assert messages
    for message in messages:
        (copy,) = serializer.decode(serializer.encode(message))
        assert same(copy.to_list(), message.to_list())


def _seeds() -> list[bytes]:
    samples = [
        wamp_core.Hello("realm1", {"roles": {"caller": {}}}),
        wamp_core.Call(1, {"receive_progress": True}, "com.a", [1, b"\x00\xff", 1.5], {"k": None}),
        wamp_core.Publish(2, {"exclude_me": False}, "com.t", ["x"]),
        wamp_core.Error(48, 3, {}, "com.err", [True]),
        wamp_core.Unsubscribed(0, {"subscription": 5, "reason": "x"}),
    ]
    seeds = []
    for index, serializer in enumerate(SERIALIZERS):
        for sample in samples:
            seeds.append(bytes([index]) + serializer.encode(sample))
        if serializer.batched:
            seeds.append(bytes([index]) + b"".join(serializer.encode_many(samples)))
    return seeds


SEEDS = _seeds()

if __name__ == "__main__":
    main(test_one_input, SEEDS)
