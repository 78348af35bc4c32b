"""Tests for wamp_core._ids: random global IDs, is_id and sequential session IDs.

BP/building_blocks.md ("IDs"): IDs are integers in [1, 2^53]; request IDs start
at 1, go up by one and wrap back to 1 after 2^53.
"""

from __future__ import annotations

import secrets

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wamp_core import MAX_ID, SequentialIds, is_id, random_id


def test_max_id() -> None:
    assert MAX_ID == 2**53 == 9007199254740992


def test_random_id_range() -> None:
    drawn = {random_id() for _ in range(2000)}
    assert all(type(value) is int and 1 <= value <= MAX_ID for value in drawn)
    assert len(drawn) > 1990  # uniform over 2^53 values: collisions are (nearly) impossible


@pytest.mark.parametrize(("draw", "expected"), [(0, 1), (MAX_ID - 1, MAX_ID), (41, 42)])
def test_random_id_bounds(monkeypatch: pytest.MonkeyPatch, draw: int, expected: int) -> None:
    calls: list[int] = []

    def fake_randbelow(n: int) -> int:
        calls.append(n)
        return draw

    monkeypatch.setattr(secrets, "randbelow", fake_randbelow)
    assert random_id() == expected
    assert calls == [MAX_ID]  # randbelow(2^53) is in [0, 2^53 - 1], so the ID is in [1, 2^53]


@pytest.mark.parametrize("value", [1, 2, 12345, MAX_ID - 1, MAX_ID])
def test_is_id_accepts(value: int) -> None:
    assert is_id(value) is True


@pytest.mark.parametrize(
    "value", [0, -1, MAX_ID + 1, 2**64, True, False, 1.0, "1", None, [1], b"\x01"]
)
def test_is_id_rejects(value: object) -> None:
    assert is_id(value) is False


@settings(max_examples=200)
@given(st.integers())
def test_is_id_property(value: int) -> None:
    assert is_id(value) is (1 <= value <= MAX_ID)


def test_sequential_ids_start_at_one_and_increment() -> None:
    ids = SequentialIds()
    assert ids.last == 0
    assert ids.peek() == 1
    assert [ids() for _ in range(5)] == [1, 2, 3, 4, 5]
    assert ids.last == 5


def test_peek_does_not_consume() -> None:
    ids = SequentialIds()
    assert ids.peek() == 1
    assert ids.peek() == 1
    assert ids() == 1
    assert ids.peek() == 2
    assert ids.last == 1
    assert ids() == 2


def test_sequential_ids_wrap_after_max() -> None:
    ids = SequentialIds(MAX_ID - 2)
    assert ids.peek() == MAX_ID - 1
    assert ids() == MAX_ID - 1
    assert ids.peek() == MAX_ID
    assert ids() == MAX_ID
    assert ids.peek() == 1
    assert ids() == 1
    assert ids() == 2


def test_sequential_ids_custom_start() -> None:
    ids = SequentialIds(last=41)
    assert ids.last == 41
    assert ids() == 42
    # a start at or beyond the maximum wraps to 1
    assert SequentialIds(MAX_ID)() == 1
    assert SequentialIds(MAX_ID + 10).peek() == 1


def test_sequential_ids_are_independent() -> None:
    outgoing, incoming = SequentialIds(), SequentialIds()
    assert [outgoing(), outgoing(), incoming()] == [1, 2, 1]


@settings(max_examples=100)
@given(st.integers(min_value=0, max_value=MAX_ID))
def test_sequential_ids_property(last: int) -> None:
    ids = SequentialIds(last)
    expected = 1 if last == MAX_ID else last + 1
    assert ids.peek() == expected
    value = ids()
    assert value == expected
    assert is_id(value)
