"""WAMP identifiers (BP/building_blocks.md, "IDs").

IDs are integers in [1, 2^53]. Global-scope IDs (sessions, publications) MUST be
drawn uniformly at random; session-scope IDs (request IDs) start at 1, go up by
one and wrap back to 1 after 2^53, separately for each direction.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable

__all__ = ["MAX_ID", "IdSource", "SequentialIds", "is_id", "random_id"]

MAX_ID = 2**53
"""The largest legal WAMP ID, 9007199254740992."""

IdSource = Callable[[], int]
"""A callable returning a fresh ID; injected wherever the core needs random IDs."""


def random_id() -> int:
    """Return an ID drawn uniformly from [1, 2^53] by the OS CSPRNG."""
    return secrets.randbelow(MAX_ID) + 1


def is_id(value: object) -> bool:
    """Tell whether ``value`` is a legal WAMP ID (an int, not a bool, in [1, 2^53])."""
    return type(value) is int and 1 <= value <= MAX_ID


class SequentialIds:
    """Session-scope ID generator: 1, 2, 3, ... 2^53, 1, 2, ...

    Call the instance to get the next ID; ``last`` is the most recent one handed
    out (0 before the first).
    """

    __slots__ = ("last",)

    def __init__(self, last: int = 0) -> None:
        self.last = last

    def __call__(self) -> int:
        self.last = 1 if self.last >= MAX_ID else self.last + 1
        return self.last

    def peek(self) -> int:
        """Return the ID the next call will hand out, without consuming it."""
        return 1 if self.last >= MAX_ID else self.last + 1
