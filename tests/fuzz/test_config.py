"""Fuzzing the router's configuration loader (``wamp_trio.parse_config`` and
``load_config``): random TOML documents shaped like a configuration -- the
known sections and keys with values of every TOML type, unknown keys, wrong
nesting -- and random edits of the text. Each gives a ``RouterConfig`` or a
``ConfigError``, never another exception.
"""

from __future__ import annotations

import contextlib
import math
import os
import tempfile
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wamp_trio import ConfigError, RouterConfig, _config, load_config, parse_config

FUZZ = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])

scalars = st.one_of(
    st.booleans(),
    st.sampled_from([-1, 0, 1, 2, 8, 511, 512, 1024, 65535, 65536, 2**24, 2**31, 2**63 - 1]),
    st.integers(-(2**63), 2**63 - 1),
    st.sampled_from([0.0, -0.0, 0.5, 1e300, math.inf, -math.inf, math.nan]),
    st.sampled_from(["", "realm1", "com.example", "tcp", "unix", "/ws", "/lp", "drop", "info",
                     "DEBUG", "prefix", "wildcard", "exact", "pbkdf2", "argon2id13", "com..x",
                     "wamp.x", "/a b", "a" * 64, "ff" * 32, "/ws/x", "0.0.0.0", "none",
                     "required"]),
    st.text(max_size=8),
)  # fmt: skip
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=6,
)


def table(keys: tuple[str, ...], nested: dict[str, Any] | None = None) -> dict[str, Any]:
    """The shape of a table: its keys, each None (any value) or a nested shape."""
    return {key: (nested or {}).get(key) for key in keys}


# The keys are the loader's own lists, so that keys added later are fuzzed too.
SHAPE: dict[str, Any] = table(
    _config._TOP_KEYS,
    {
        "router": table(_config._ROUTER_KEYS, {"event_history": [table(_config._HISTORY_KEYS)]}),
        "realms": [
            table(
                _config._REALM_KEYS,
                {
                    "roles": [
                        table(
                            _config._ROLE_KEYS,
                            {"permissions": [table(_config._PERMISSION_KEYS)]},
                        )
                    ],
                    "principals": [
                        table(
                            _config._PRINCIPAL_KEYS,
                            {
                                "wampcra": table(_config._WAMPCRA_KEYS),
                                # no "password": deriving a key with random costs
                                # could take minutes
                                "scram": table(
                                    tuple(k for k in _config._SCRAM_KEYS if k != "password")
                                ),
                            },
                        )
                    ],
                    "authenticator": table(_config._AUTHENTICATOR_KEYS),
                },
            )
        ],
        "listeners": [table((*_config._TCP_KEYS, "path"), {"tls": table(_config._TLS_KEYS)})],
        "limits": table(_config._LIMITS_KEYS),
        "logging": table(_config._LOGGING_KEYS),
    },
)


@st.composite
def shaped(draw: st.DrawFn, shape: Any, top: bool = False) -> Any:
    """A value following ``shape`` (dict: a table of some of its keys; list: an
    array of such tables; None: any value), now and then something else."""
    if not top and draw(st.integers(0, 19)) == 13:
        return draw(values)  # the wrong type
    if shape is None:
        return draw(values)
    if isinstance(shape, list):
        return draw(st.lists(shaped(shape[0]), max_size=2))
    keys = draw(st.lists(st.sampled_from(sorted(shape)), unique=True, max_size=len(shape)))
    table = {key: draw(shaped(shape[key])) for key in keys}
    if draw(st.integers(0, 19)) == 13:
        table[draw(st.text(min_size=1, max_size=6))] = draw(values)  # an unknown key
    return table


def toml_string(text: str) -> str:
    """A TOML basic string (also a valid quoted key)."""
    escaped = "".join(
        f"\\u{ord(c):04x}" if ord(c) < 0x20 or ord(c) == 0x7F or c in '"\\' else c for c in text
    )
    return f'"{escaped}"'


def toml_key(key: str) -> str:
    return toml_string(key)


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return toml_string(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(item) for item in value) + "]"
    return "{" + ", ".join(f"{toml_key(k)} = {toml_value(v)}" for k, v in value.items()) + "}"


def to_toml(document: dict[str, Any]) -> str:
    """TOML text: sections as [tables] and [[arrays of tables]], the rest inline."""
    lines = []
    for key, value in document.items():
        if isinstance(value, dict):
            lines.append(f"[{toml_key(key)}]")
            lines += [f"{toml_key(k)} = {toml_value(v)}" for k, v in value.items()]
        elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            for table in value:
                lines.append(f"[[{toml_key(key)}]]")
                lines += [f"{toml_key(k)} = {toml_value(v)}" for k, v in table.items()]
        else:
            lines.insert(0, f"{toml_key(key)} = {toml_value(value)}")
    return "\n".join(lines) + "\n"


@st.composite
def documents(draw: st.DrawFn) -> str:
    text = to_toml(draw(shaped(SHAPE, top=True)))
    for _ in range(draw(st.integers(0, 3))):  # a few random edits of the text
        if not text:
            break
        at = draw(st.integers(0, len(text) - 1))
        text = (
            text[:at]
            + draw(st.sampled_from(["", "[", "]", "=", '"', "\n", "#", "x"]))
            + text[at + 1 :]
        )
    return text


def check(text: str) -> RouterConfig | None:
    try:
        config = parse_config(text, base="/nonexistent")
    except ConfigError as exc:
        error = exc
    else:
        assert isinstance(config, RouterConfig)
        config.check()
        return config
    assert error.key
    assert error.problem
    return None


@FUZZ
@given(text=documents())
def test_random_documents_give_a_config_or_a_config_error(text: str) -> None:
    check(text)


@settings(max_examples=50, deadline=None)
@given(data=st.binary(max_size=200))
def test_random_files_give_a_config_or_a_config_error(data: bytes) -> None:
    handle, path = tempfile.mkstemp(suffix=".toml")
    try:
        os.write(handle, data)
        os.close(handle)
        with contextlib.suppress(ConfigError):
            load_config(path)
    finally:
        os.unlink(path)


def test_the_generator_reaches_valid_configurations() -> None:
    """The documents above are not all refused: a shaped one passes."""
    text = to_toml(
        {
            "router": {"shutdown_timeout": 1.5, "event_history": [{"uri": "com.a", "limit": 3}]},
            "realms": [
                {"name": "realm1"},
                {"name": "com.x", "anonymous": "g", "roles": [{"name": "g"}]},
            ],
            "listeners": [{"type": "tcp", "port": 0}, {"type": "unix", "path": "r.sock"}],
            "limits": {"queue_size": 8},
            "logging": {"level": "DEBUG"},
        }
    )
    config = check(text)
    assert config is not None
    assert config.realm_names == ["realm1", "com.x"]
    assert config.log_level == "debug"


@pytest.mark.parametrize(
    "text",
    [
        "[router]\nshutdown_timeout = " + "9" * 400,
        '[[realms]]\nname = "r"\n[realms.authenticator]\nprocedure = "com.a"\ntimeout = '
        + "9" * 400,
    ],
)
def test_a_number_too_large_for_a_float_is_a_config_error(text: str) -> None:
    """Found by fuzzing: TOML integers have no size limit in tomllib."""
    assert check(text) is None


def test_an_integer_of_more_than_4300_digits_is_a_config_error() -> None:
    """Found by fuzzing: tomllib raises ValueError (not TOMLDecodeError) for an
    integer Python will not convert from text."""
    assert check("[limits]\nqueue_size = " + "1" * 5000) is None
