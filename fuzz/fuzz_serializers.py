"""Fuzz target: every serializer's ``decode``, plain and batched.

The first byte picks the serializer, the rest is one transport message.
Decoding gives WAMP messages or raises ``RemoteProtocolError``; what is
accepted encodes again with the same serializer and decodes to the same message
(else the router could not forward it).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from _common import instrumented, main

with instrumented():
    import wamp_core

SERIALIZERS = [wamp_core.SERIALIZERS[name] for name in sorted(wamp_core.SERIALIZERS)]


def same(a: Any, b: Any) -> bool:
    """Equal values, a list equal to a tuple and a dict to a mapping (CBOR decodes
    tagged arrays and maps as immutable ones) and NaN to NaN. Encodings are not
    compared: a set's depends on its iteration order. Iterative, for values
    nested beyond the recursion limit."""
    pairs = [(a, b)]
    while pairs:
        x, y = pairs.pop()
        if isinstance(x, (list, tuple)) and isinstance(y, (list, tuple)):
            if len(x) != len(y):
                return False
            pairs.extend(zip(x, y))
        elif isinstance(x, Mapping) and isinstance(y, Mapping):
            if x.keys() != y.keys():
                return False
            pairs.extend((x[key], y[key]) for key in x)
        elif isinstance(x, float) and isinstance(y, float) and math.isnan(x) and math.isnan(y):
            continue
        elif type(x) is not type(y) or x != y:
            return False
    return True


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
