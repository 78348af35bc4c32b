"""The router's configuration: a TOML file, validated into frozen dataclasses.

Every key is documented in ``docs/router.md``. Validation is strict: an
unknown key, a wrong type or an out-of-range value raises ``ConfigError``
naming the key (``listeners[0].port: must be an integer in 0..65535``).
Sections that are absent take the embedded defaults (realm ``realm1``, one TCP
listener on 127.0.0.1:8080 with WebSocket, long-poll and RawSocket, and
RawSocket over ``./wampcore.sock``).

Extension point: each ``[[realms]]`` table holds only ``name`` today; roles and
authentication settings will be added there (and rejected until then).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import ssl
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import wamp_core

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10 needs the tomli backport
    import tomli as tomllib  # type: ignore[import-not-found,unused-ignore]

__all__ = [
    "DEFAULT_CONFIG",
    "LOG_LEVELS",
    "MAX_MESSAGE_SIZE",
    "ConfigError",
    "Limits",
    "ListenerConfig",
    "RealmConfig",
    "RouterConfig",
    "TcpListener",
    "TlsConfig",
    "UnixListener",
    "load_config",
    "parse_config",
]

MAX_MESSAGE_SIZE = 16 * 1024 * 1024
"""The largest ``limits.max_message_size``: RawSocket cannot announce more."""

LOG_LEVELS = ("debug", "info", "warning", "error", "critical")

SlowConsumerPolicy = Literal["drop", "disconnect"]


class ConfigError(Exception):
    """A configuration value is wrong. ``key`` names it (``listeners[0].port``),
    ``problem`` says what is wrong; ``str()`` gives ``"key: problem"``."""

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(f"{key}: {problem}")
        self.key = key
        self.problem = problem


# -- the validated configuration ------------------------------------------------------


@dataclass(frozen=True)
class RealmConfig:
    """One realm the router serves (``[[realms]]``)."""

    name: str


@dataclass(frozen=True)
class TlsConfig:
    """Certificate chain and private key (PEM files) for a TLS listener."""

    cert: str
    key: str
    where: str = field(default="tls", compare=False)
    """The key path for error messages (``listeners[0].tls``)."""

    def ssl_context(self) -> ssl.SSLContext:
        """A server-side SSL context with the certificate loaded; ``ConfigError`` if
        the files cannot be loaded."""
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        try:
            context.load_cert_chain(self.cert, self.key)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(
                self.where, f"cannot load certificate {self.cert!r} and key {self.key!r}: {exc}"
            ) from None
        return context


@dataclass(frozen=True)
class TcpListener:
    """A TCP port serving WebSocket, long-poll and/or RawSocket (``type = "tcp"``)."""

    host: str = "127.0.0.1"
    port: int = 8080
    websocket: str | None = "/ws"
    """The WebSocket path, or None when WebSocket is off."""
    longpoll: str | None = "/lp"
    """The long-poll base path, or None when long-poll is off."""
    rawsocket: bool = True
    tls: TlsConfig | None = None
    where: str = field(default="listeners[0]", compare=False)


@dataclass(frozen=True)
class UnixListener:
    """RawSocket over a Unix domain socket (``type = "unix"``)."""

    path: str = "./wampcore.sock"
    where: str = field(default="listeners[1]", compare=False)


ListenerConfig = TcpListener | UnixListener


@dataclass(frozen=True)
class Limits:
    """Resource limits (``[limits]``)."""

    queue_size: int = 1024
    """Outbound messages queued per connection before the slow-consumer policy applies."""
    slow_consumer: SlowConsumerPolicy = "drop"
    max_message_size: int = MAX_MESSAGE_SIZE
    """Largest transport message accepted (WebSocket message, RawSocket frame, HTTP body)."""


@dataclass(frozen=True)
class RouterConfig:
    """A complete, validated router configuration."""

    realms: tuple[RealmConfig, ...] = (RealmConfig("realm1"),)
    auto_create_realms: bool = False
    strict_request_ids: bool = True
    shutdown_timeout: float = 5.0
    listeners: tuple[ListenerConfig, ...] = (TcpListener(), UnixListener())
    limits: Limits = Limits()
    log_level: str = "info"

    @property
    def realm_names(self) -> list[str]:
        """The names of the configured realms."""
        return [realm.name for realm in self.realms]

    @property
    def logging_level(self) -> int:
        """``log_level`` as a ``logging`` level number."""
        level: int = getattr(logging, self.log_level.upper())
        return level

    def replace(self, **changes: Any) -> RouterConfig:
        """A copy with some fields changed (validated again)."""
        new = dataclasses.replace(self, **changes)
        new.check()
        return new

    def check(self) -> None:
        """Check the rules that span several keys; raise ``ConfigError``."""
        names = set()
        for index, realm in enumerate(self.realms):
            if realm.name in names:
                raise ConfigError(f"realms[{index}].name", f"duplicate realm {realm.name!r}")
            names.add(realm.name)
        if not self.realms and not self.auto_create_realms:
            raise ConfigError(
                "realms", "no realm is configured and router.auto_create_realms is false"
            )
        if not self.listeners:
            raise ConfigError("listeners", "at least one listener is required")
        for listener in self.listeners:
            if isinstance(listener, TcpListener):
                _check_tcp(listener)


DEFAULT_CONFIG = RouterConfig()
"""The embedded default: what ``wampcore router`` runs without arguments."""


def _check_tcp(listener: TcpListener) -> None:
    where = listener.where
    if listener.websocket is None and listener.longpoll is None and not listener.rawsocket:
        raise ConfigError(where, "websocket, longpoll and rawsocket are all off: nothing to serve")
    ws, lp = listener.websocket, listener.longpoll
    if ws is not None and lp is not None:
        lp_base = lp.rstrip("/")
        if ws.rstrip("/") == lp_base or ws.startswith(lp_base + "/"):
            raise ConfigError(
                f"{where}.websocket", f"path {ws!r} lies under the long-poll path {lp!r}"
            )


# -- parsing ---------------------------------------------------------------------------

_TOP_KEYS = ("router", "realms", "listeners", "limits", "logging")
_ROUTER_KEYS = ("auto_create_realms", "strict_request_ids", "shutdown_timeout")
_REALM_KEYS = ("name",)
_TCP_KEYS = ("type", "host", "port", "websocket", "longpoll", "rawsocket", "tls")
_UNIX_KEYS = ("type", "path")
_TLS_KEYS = ("cert", "key")
_LIMITS_KEYS = ("queue_size", "slow_consumer", "max_message_size")
_LOGGING_KEYS = ("level",)


def load_config(path: str | os.PathLike[str]) -> RouterConfig:
    """Read and validate a TOML configuration file.

    Relative paths inside it (TLS files, Unix socket paths) are relative to the
    file's directory. Raises ``ConfigError`` (the file cannot be read, is not
    TOML, or holds a wrong key or value).
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ConfigError(str(path), f"cannot read the file: {reason}") from None
    return parse_config(text, base=path.parent, name=str(path))


def parse_config(
    source: str | Mapping[str, Any], *, base: str | os.PathLike[str] = ".", name: str = "config"
) -> RouterConfig:
    """Validate a configuration given as TOML text or as an already-parsed mapping.

    ``base`` is the directory relative paths are resolved against; ``name``
    names the source in the error for invalid TOML.
    """
    if isinstance(source, str):
        try:
            data: Mapping[str, Any] = tomllib.loads(source)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(name, f"invalid TOML: {exc}") from None
    else:
        data = source
    base_dir = Path(base)
    _check_keys(data, _TOP_KEYS, "")
    default = DEFAULT_CONFIG

    router = _table(data, "router", "router")
    _check_keys(router, _ROUTER_KEYS, "router")
    auto_create = _bool(router, "auto_create_realms", "router", default.auto_create_realms)
    strict_ids = _bool(router, "strict_request_ids", "router", default.strict_request_ids)
    shutdown_timeout = _number(router, "shutdown_timeout", "router", default.shutdown_timeout)

    realms = default.realms
    if "realms" in data:
        realms = tuple(
            _realm(item, f"realms[{i}]") for i, item in enumerate(_array(data, "realms"))
        )

    listeners = default.listeners
    if "listeners" in data:
        listeners = tuple(
            _listener(item, f"listeners[{i}]", base_dir)
            for i, item in enumerate(_array(data, "listeners"))
        )

    limits_table = _table(data, "limits", "limits")
    _check_keys(limits_table, _LIMITS_KEYS, "limits")
    limits = Limits(
        queue_size=_int(
            limits_table, "queue_size", "limits", default.limits.queue_size, low=1, high=None
        ),
        slow_consumer=_choice(
            limits_table,
            "slow_consumer",
            "limits",
            default.limits.slow_consumer,
            ("drop", "disconnect"),
        ),
        max_message_size=_int(
            limits_table,
            "max_message_size",
            "limits",
            default.limits.max_message_size,
            low=512,
            high=MAX_MESSAGE_SIZE,
        ),
    )

    logging_table = _table(data, "logging", "logging")
    _check_keys(logging_table, _LOGGING_KEYS, "logging")
    level = _choice(logging_table, "level", "logging", default.log_level, LOG_LEVELS, fold=True)

    config = RouterConfig(
        realms=realms,
        auto_create_realms=auto_create,
        strict_request_ids=strict_ids,
        shutdown_timeout=shutdown_timeout,
        listeners=listeners,
        limits=limits,
        log_level=level,
    )
    config.check()
    return config


def _realm(item: object, where: str) -> RealmConfig:
    table = _as_table(item, where)
    _check_keys(table, _REALM_KEYS, where)
    if "name" not in table:
        raise ConfigError(f"{where}.name", "is required")
    return RealmConfig(realm_name(table["name"], f"{where}.name"))


def realm_name(value: object, where: str) -> str:
    """Validate a realm name (a WAMP URI such as ``realm1`` or ``com.example``)."""
    if not isinstance(value, str):
        raise ConfigError(where, f"must be a string, not {_kind(value)}")
    if not wamp_core.is_valid_uri(value):
        raise ConfigError(where, f"{value!r} is not a valid URI (like 'realm1' or 'com.example')")
    return value


def _listener(item: object, where: str, base: Path) -> ListenerConfig:
    table = _as_table(item, where)
    kind = table.get("type")
    if kind is None:
        raise ConfigError(f"{where}.type", "is required ('tcp' or 'unix')")
    if kind == "tcp":
        return _tcp(table, where, base)
    if kind == "unix":
        _check_keys(table, _UNIX_KEYS, where)
        if "path" not in table:
            raise ConfigError(f"{where}.path", "is required")
        path = _string(table, "path", where, "")
        return UnixListener(path=_resolve(base, path), where=where)
    raise ConfigError(f"{where}.type", f"must be 'tcp' or 'unix', not {kind!r}")


def _tcp(table: Mapping[str, Any], where: str, base: Path) -> TcpListener:
    _check_keys(table, _TCP_KEYS, where)
    default = TcpListener()
    host = _string(table, "host", where, default.host)
    if not host:
        raise ConfigError(f"{where}.host", "must not be empty")
    port = _int(table, "port", where, default.port, low=0, high=65535)
    websocket = _path_or_off(table, "websocket", where, default.websocket)
    longpoll = _path_or_off(table, "longpoll", where, default.longpoll)
    rawsocket = _bool(table, "rawsocket", where, default.rawsocket)
    tls = None
    if "tls" in table:
        tls_where = f"{where}.tls"
        tls_table = _as_table(table["tls"], tls_where)
        _check_keys(tls_table, _TLS_KEYS, tls_where)
        files = {}
        for key in _TLS_KEYS:
            if key not in tls_table:
                raise ConfigError(f"{tls_where}.{key}", "is required")
            file = _resolve(base, _string(tls_table, key, tls_where, ""))
            if not Path(file).is_file():
                raise ConfigError(f"{tls_where}.{key}", f"no such file: {file}")
            files[key] = file
        tls = TlsConfig(files["cert"], files["key"], where=tls_where)
    return TcpListener(host, port, websocket, longpoll, rawsocket, tls, where=where)


def _resolve(base: Path, path: str) -> str:
    return path if os.path.isabs(path) or base == Path(".") else str(base / path)


# -- typed getters -----------------------------------------------------------------------


def _show(value: object) -> str:
    """A value as TOML spells it, for error messages."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float, str)):
        return repr(value)
    return _kind(value)


def _kind(value: object) -> str:
    names = {bool: "a boolean", int: "an integer", float: "a number", str: "a string"}
    if isinstance(value, (list, tuple)):
        return "an array"
    if isinstance(value, Mapping):
        return "a table"
    return names.get(type(value), type(value).__name__)


def _key(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def _check_keys(table: Mapping[str, Any], allowed: tuple[str, ...], where: str) -> None:
    for key in table:
        if key not in allowed:
            raise ConfigError(
                _key(where, str(key)), f"unknown key (expected one of: {', '.join(allowed)})"
            )


def _as_table(value: object, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ConfigError(where, f"must be a table, not {_kind(value)}")
    return value


def _table(data: Mapping[str, Any], key: str, where: str) -> Mapping[str, Any]:
    if key not in data:
        return {}
    return _as_table(data[key], where)


def _array(data: Mapping[str, Any], key: str) -> list[Any]:
    value = data[key]
    if not isinstance(value, list):
        raise ConfigError(key, f"must be an array of tables ([[{key}]]), not {_kind(value)}")
    return value


def _bool(table: Mapping[str, Any], key: str, where: str, default: bool) -> bool:
    value = table.get(key, default)
    if not isinstance(value, bool):
        raise ConfigError(_key(where, key), f"must be true or false, not {_kind(value)}")
    return value


def _int(
    table: Mapping[str, Any], key: str, where: str, default: int, *, low: int, high: int | None
) -> int:
    value = table.get(key, default)
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or value < low
        or (high is not None and value > high)
    ):
        expected = f"in {low}..{high}" if high is not None else f">= {low}"
        raise ConfigError(_key(where, key), f"must be an integer {expected}, not {_show(value)}")
    return value


def _number(table: Mapping[str, Any], key: str, where: str, default: float) -> float:
    value = table.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
        raise ConfigError(_key(where, key), f"must be a number >= 0 (seconds), not {_show(value)}")
    return float(value)


def _string(table: Mapping[str, Any], key: str, where: str, default: str) -> str:
    value = table.get(key, default)
    if not isinstance(value, str):
        raise ConfigError(_key(where, key), f"must be a string, not {_kind(value)}")
    return value


def _choice(
    table: Mapping[str, Any],
    key: str,
    where: str,
    default: str,
    choices: tuple[str, ...],
    *,
    fold: bool = False,
) -> Any:
    value = table.get(key, default)
    if isinstance(value, str) and fold:
        value = value.lower()
    if value not in choices:
        raise ConfigError(
            _key(where, key), f"must be one of {', '.join(map(repr, choices))}, not {_show(value)}"
        )
    return value


def _path_or_off(table: Mapping[str, Any], key: str, where: str, default: str | None) -> str | None:
    value = table.get(key, default)
    if value is False:
        return None
    if not isinstance(value, str):
        raise ConfigError(
            _key(where, key), f"must be a path starting with '/' or false, not {_show(value)}"
        )
    return check_http_path(value, _key(where, key))


def check_http_path(value: str, where: str) -> str:
    """Validate an HTTP path (``/ws``): starts with ``/``, no spaces, ``?`` or ``#``."""
    if not value.startswith("/"):
        raise ConfigError(where, f"must start with '/', not {value!r}")
    if any(c in value for c in " ?#") or not value.isprintable():
        raise ConfigError(where, f"{value!r} is not a plain URL path")
    return value
