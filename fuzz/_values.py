"""Value comparison shared by the serializer fuzz target and its hypothesis tests
(``tests/fuzz/test_serializers.py``)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any


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
