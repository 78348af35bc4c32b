"""Shared test helpers for the message and serializer tests.

Hypothesis strategies that build random valid messages of every type, with
payloads every codec round-trips, and ``typed()``, which makes a comparison
tell ``True`` from ``1``, ``1.0`` from ``1`` and ``b"a"`` from ``"a"``.
"""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from wamp_core import (
    ERROR_REQUEST_TYPES,
    MAX_ID,
    Abort,
    Authenticate,
    Call,
    Cancel,
    Challenge,
    Error,
    Event,
    Goodbye,
    Hello,
    Interrupt,
    Invocation,
    Message,
    Publish,
    Published,
    Register,
    Registered,
    Result,
    Subscribe,
    Subscribed,
    Unregister,
    Unregistered,
    Unsubscribe,
    Unsubscribed,
    Welcome,
    Yield,
)

ALL_MESSAGE_CLASSES: tuple[type[Message], ...] = (
    Hello, Welcome, Abort, Challenge, Authenticate, Goodbye, Error, Publish, Published,
    Subscribe, Subscribed, Unsubscribe, Unsubscribed, Event, Call, Cancel, Result,
    Register, Registered, Unregister, Unregistered, Invocation, Interrupt, Yield,
)  # fmt: skip


def typed(value: Any) -> Any:
    """``value`` with every leaf tagged by its type, for strict comparisons."""
    if isinstance(value, list):
        return ("list", [typed(item) for item in value])
    if isinstance(value, dict):
        return ("dict", {key: typed(item) for key, item in value.items()})
    return (type(value).__name__, value)


# -- strategies -----------------------------------------------------------------

ids = st.integers(min_value=1, max_value=MAX_ID)

# No lone surrogates: no codec can encode them as UTF-8.
keys = st.text(st.characters(codec="utf-8"), max_size=12)

# A string value may not start with NUL: in JSON "\0..." is the binary
# convention (AP/ap_serialization_binary_json.md), so such a string -- a URI as
# much as a payload string -- comes back as bytes (or is refused). NULs
# elsewhere in a string, and in map keys, are fine.
texts = keys.filter(lambda s: not s.startswith("\0"))

scalars = st.one_of(
    st.none(),
    st.booleans(),
    # the integer range MessagePack can carry; JSON and CBOR carry more
    st.integers(min_value=-(2**63), max_value=2**64 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    texts,
    st.binary(max_size=12),
)

values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(keys, children, max_size=4),
    ),
    max_leaves=12,
)

dicts = st.dictionaries(keys, values, max_size=4)
lists = st.lists(values, max_size=4)

# (args, kwargs): Kw only ever follows Args, so args=None with kwargs set does
# not round-trip (it goes out as an empty list); test_messages covers that case.
payloads = st.one_of(
    st.just((None, None)),
    st.tuples(lists, st.none()),
    st.tuples(lists, dicts),
)

request_types = st.sampled_from(sorted(int(t) for t in ERROR_REQUEST_TYPES))


def _with_payload(cls: Any, *heads: st.SearchStrategy[Any]) -> st.SearchStrategy[Message]:
    return st.builds(
        lambda head, payload: cls(*head, *payload),
        st.tuples(*heads),
        payloads,
    )


def _ack_or_revocation(cls: Any) -> st.SearchStrategy[Message]:
    return st.one_of(
        st.builds(cls, ids),
        st.builds(cls, ids, dicts),
        st.builds(cls, st.just(0), dicts),
    )


MESSAGE_STRATEGIES: dict[type[Message], st.SearchStrategy[Message]] = {
    Hello: st.builds(Hello, texts, dicts),
    Welcome: st.builds(Welcome, ids, dicts),
    Abort: _with_payload(Abort, dicts, texts),
    Challenge: st.builds(Challenge, texts, dicts),
    Authenticate: st.builds(Authenticate, texts, dicts),
    Goodbye: st.builds(Goodbye, dicts, texts),
    Error: _with_payload(Error, request_types, ids, dicts, texts),
    Publish: _with_payload(Publish, ids, dicts, texts),
    Published: st.builds(Published, ids, ids),
    Subscribe: st.builds(Subscribe, ids, dicts, texts),
    Subscribed: st.builds(Subscribed, ids, ids),
    Unsubscribe: st.builds(Unsubscribe, ids, ids),
    Unsubscribed: _ack_or_revocation(Unsubscribed),
    Event: _with_payload(Event, ids, ids, dicts),
    Call: _with_payload(Call, ids, dicts, texts),
    Cancel: st.builds(Cancel, ids, dicts),
    Result: _with_payload(Result, ids, dicts),
    Register: st.builds(Register, ids, dicts, texts),
    Registered: st.builds(Registered, ids, ids),
    Unregister: st.builds(Unregister, ids, ids),
    Unregistered: _ack_or_revocation(Unregistered),
    Invocation: _with_payload(Invocation, ids, ids, dicts),
    Interrupt: st.builds(Interrupt, ids, dicts),
    Yield: _with_payload(Yield, ids, dicts),
}

messages: st.SearchStrategy[Message] = st.one_of(*MESSAGE_STRATEGIES.values())
