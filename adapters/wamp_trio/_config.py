"""The router's configuration: a TOML file, validated into frozen dataclasses.

Every key is documented in ``docs/config.md``. Validation is strict: an
unknown key, a wrong type or an out-of-range value raises ``ConfigError``
naming the key (``listeners[0].port: must be an integer in 0..65535``).
Sections that are absent take the embedded defaults (realm ``realm1``, one TCP
listener on 127.0.0.1:8080 with WebSocket, long-poll and RawSocket, and
RawSocket over ``./wampcore.sock``).

A realm without ``anonymous``, ``principals``, ``authenticator`` and ``roles``
is *open*: anonymous sessions join it and may do everything (the embedded
default). With any of them it is *secured*: ``build_router`` gives it a
``PrincipalAuthenticator`` (ticket, WAMP-CRA, cryptosign, WAMP-SCRAM in both
spellings, TLS client certificates), a ``ProcedureAuthenticator`` when it names
an authenticator procedure, a ``RoleBasedAuthorizer``, and a
``ProcedureAuthorizer`` for each role that names an authorizer procedure.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import re
import ssl
import sys
from collections import Counter
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
    "SCRAM_METHODS",
    "AuthenticatorConfig",
    "ClientCertPolicy",
    "ConfigError",
    "Limits",
    "ListenerConfig",
    "RealmConfig",
    "RoleConfig",
    "RouterConfig",
    "TcpListener",
    "TlsConfig",
    "UnixListener",
    "build_router",
    "load_config",
    "parse_config",
    "parse_limits",
]

MAX_MESSAGE_SIZE = 16 * 1024 * 1024
"""The largest ``limits.max_message_size``: RawSocket cannot announce more."""

LOG_LEVELS = ("debug", "info", "warning", "error", "critical")

SlowConsumerPolicy = Literal["drop", "disconnect"]
ClientCertPolicy = Literal["none", "optional", "required"]

SCRAM_METHODS = ("wamp-scram", "scram")
"""The two spellings of WAMP-SCRAM a secured realm accepts."""


class ConfigError(Exception):
    """A configuration value is wrong. ``key`` names it (``listeners[0].port``),
    ``problem`` says what is wrong; ``str()`` gives ``"key: problem"``."""

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(f"{key}: {problem}")
        self.key = key
        self.problem = problem


# -- the validated configuration ------------------------------------------------------


@dataclass(frozen=True)
class RoleConfig:
    """A role of a secured realm (``[[realms.roles]]``): its permissions, or the
    procedure that decides for it (``authorizer``)."""

    name: str
    permissions: tuple[wamp_core.Permission, ...] = ()
    authorizer: str | None = None


@dataclass(frozen=True)
class AuthenticatorConfig:
    """A realm's dynamic authenticator (``[realms.authenticator]``): the
    procedure that admits the sessions no static principal is for."""

    procedure: str
    realm: str | None = None
    ticket: bool = False
    timeout: float = 10.0


@dataclass(frozen=True)
class RealmConfig:
    """One realm the router serves (``[[realms]]``).

    ``roles`` None: an open realm (anonymous sessions, everything allowed).
    Otherwise the realm is secured: ``principals`` (with their authid set) may
    authenticate, ``authenticator`` decides for every other authid, anonymous
    sessions join as role ``anonymous`` when it is set, and each session may do
    what its role permits.
    """

    name: str
    anonymous: str | None = None
    principals: tuple[wamp_core.Principal, ...] = ()
    roles: tuple[RoleConfig, ...] | None = None
    authenticator: AuthenticatorConfig | None = None

    @property
    def secured(self) -> bool:
        """Whether the realm authenticates and authorizes (it has roles)."""
        return self.roles is not None


@dataclass(frozen=True)
class TlsConfig:
    """Certificate chain and private key (PEM files) for a TLS listener, and
    optionally the CA file client certificates are checked against."""

    cert: str
    key: str
    where: str = field(default="tls", compare=False)
    """The key path for error messages (``listeners[0].tls``)."""
    ca: str | None = None
    client_cert: ClientCertPolicy = "none"

    def ssl_context(self) -> ssl.SSLContext:
        """A server-side SSL context with the certificate loaded; ``ConfigError`` if
        the files cannot be loaded."""
        if self.ca is None:
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        else:
            # Not create_default_context: it would trust the system's CAs for
            # client certificates too.
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.minimum_version = ssl.TLSVersion.TLSv1_2
        try:
            context.load_cert_chain(self.cert, self.key)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(
                self.where, f"cannot load certificate {self.cert!r} and key {self.key!r}: {exc}"
            ) from None
        if self.ca is not None:
            try:
                context.load_verify_locations(cafile=self.ca)
            except (OSError, ssl.SSLError) as exc:
                raise ConfigError(
                    f"{self.where}.ca", f"cannot load CA certificates {self.ca!r}: {exc}"
                ) from None
        context.verify_mode = {
            "none": ssl.CERT_NONE,
            "optional": ssl.CERT_OPTIONAL,
            "required": ssl.CERT_REQUIRED,
        }[self.client_cert]
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
    """Resource limits (``[limits]``), each documented in ``docs/config.md``.

    For the counts (``max_sessions`` ... ``max_realms``), None means no
    limit (``0`` in the file); ``keepalive_interval`` None (``0``) turns the
    keepalive off; the three per-transport message sizes None follow
    ``max_message_size``.
    """

    queue_size: int = 1024
    """Outbound messages queued per connection before the slow-consumer policy applies."""
    slow_consumer: SlowConsumerPolicy = "drop"
    max_message_size: int = MAX_MESSAGE_SIZE
    """Largest transport message accepted (WebSocket message, RawSocket frame, HTTP body)."""
    max_sessions: int | None = 100_000
    """Sessions at once, all realms together, counted from HELLO on (sessions still
    authenticating included)."""
    max_sessions_per_realm: int | None = None
    """The same in any one realm."""
    max_pending_calls: int | None = 1000
    """Calls a session may have waiting for their result at once."""
    max_subscriptions: int | None = 10_000
    """Subscriptions per session."""
    max_registrations: int | None = 10_000
    """Registrations per session."""
    max_retained_topics: int | None = 10_000
    """Topics keeping a retained event, per realm (the least recently retained to
    loses its event beyond it)."""
    max_realms: int | None = 1000
    """Realms of the router; a HELLO that would auto-create one more is refused."""
    handshake_timeout: float = 10.0
    """Seconds a new connection has to finish its transport handshake."""
    longpoll_idle_timeout: float = 30.0
    """Seconds a long-poll transport lives without a request from its client."""
    keepalive_interval: float | None = 30.0
    """Seconds of silence after which the router pings a WebSocket peer (and sets
    TCP keepalive on its TCP listeners)."""
    keepalive_timeout: float = 30.0
    """Seconds the router waits for any data after a ping before closing the connection."""
    rawsocket_pings: bool = False
    """Ping RawSocket peers too (Autobahn|Python's RawSocket fails on a PING)."""
    websocket_max_message_size: int | None = None
    """Largest WebSocket message; None: ``max_message_size``."""
    rawsocket_max_message_size: int | None = None
    """Largest RawSocket frame; None: ``max_message_size``."""
    longpoll_max_body_size: int | None = None
    """Largest long-poll request body; None: ``max_message_size``."""


@dataclass(frozen=True)
class RouterConfig:
    """A complete, validated router configuration."""

    realms: tuple[RealmConfig, ...] = (RealmConfig("realm1"),)
    auto_create_realms: bool = False
    strict_request_ids: bool = True
    shutdown_timeout: float = 5.0
    meta_api: bool = True
    event_history: tuple[wamp_core.HistoryRule, ...] = ()
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
        for index, realm in enumerate(self.realms):
            target = None if realm.authenticator is None else realm.authenticator.realm
            if target is not None and target not in names and not self.auto_create_realms:
                raise ConfigError(
                    f"realms[{index}].authenticator.realm", f"no realm {target!r} is configured"
                )
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


# -- building the router -----------------------------------------------------------------


def build_router(config: RouterConfig) -> wamp_core.Router:
    """The ``wamp_core.Router`` for ``config``.

    Without a secured realm, the router admits anonymous sessions everywhere and
    has no authorizer (as the embedded default). Otherwise secured realms get a
    ``PrincipalAuthenticator`` (and a ``ProcedureAuthenticator`` for the
    authids no principal is for, when the realm names one) and a
    ``RoleBasedAuthorizer`` (a ``ProcedureAuthorizer`` for roles that name
    one), while open and auto-created realms keep admitting anonymous sessions
    with every permission.
    """
    limits = config.limits
    router = wamp_core.Router(
        config.realm_names,
        auto_create_realms=config.auto_create_realms,
        strict_request_ids=config.strict_request_ids,
        meta_api=config.meta_api,
        event_history=config.event_history,
        max_sessions=limits.max_sessions,
        max_sessions_per_realm=limits.max_sessions_per_realm,
        max_pending_calls=limits.max_pending_calls,
        max_subscriptions=limits.max_subscriptions,
        max_registrations=limits.max_registrations,
        retained_topic_limit=limits.max_retained_topics,
        max_realms=limits.max_realms,
    )
    secured = [realm for realm in config.realms if realm.secured]
    if not secured:
        return router
    static = _principal_authenticator(secured)
    authenticators: dict[str, wamp_core.Authenticator] = {}
    dynamic: dict[tuple[str, str], wamp_core.DynamicAuthorizer] = {}
    for realm in secured:
        authenticators[realm.name] = static
        if realm.authenticator is not None:
            authenticators[realm.name] = _WithProcedure(
                static, realm, _procedure_authenticator(router, realm.name, realm.authenticator)
            )
        for role in realm.roles or ():
            if role.authorizer is not None:
                authorizer = wamp_core.DynamicAuthorizer(
                    wamp_core.ProcedureAuthorizer(router, role.authorizer)
                )
                dynamic[realm.name, role.name] = authorizer
                router.observers.append(authorizer)  # its cache forgets who left
    router.authenticator = _RealmAuthenticator(authenticators)
    router.authorizer = _RealmAuthorizer(
        wamp_core.RoleBasedAuthorizer(
            {
                realm.name: {
                    role.name: wamp_core.Role(role.name, role.permissions)
                    for role in realm.roles or ()
                }
                for realm in secured
            }
        ),
        frozenset(authenticators),
        dynamic,
    )
    return router


def _procedure_authenticator(
    router: wamp_core.Router, realm: str, config: AuthenticatorConfig
) -> wamp_core.ProcedureAuthenticator:
    return wamp_core.ProcedureAuthenticator(
        router,
        config.realm or realm,
        config.procedure,
        timeout=config.timeout,
        ticket=config.ticket,
    )


def _principal_authenticator(realms: list[RealmConfig]) -> wamp_core.PrincipalAuthenticator:
    principals = [p for realm in realms for p in realm.principals]
    salted = Counter(
        (p.wampcra.iterations, p.wampcra.keylen)
        for p in principals
        if p.wampcra is not None and p.wampcra.salt is not None
    )
    plain = sum(1 for p in principals if p.wampcra is not None and p.wampcra.salt is None)
    # Decoys (unknown authids) look like the most common real principal.
    decoy_salt = salted.most_common(1)[0][0] if sum(salted.values()) > plain else None
    scram = Counter(
        (c.kdf, c.iterations, c.memory)
        for p in principals
        for c in [p.credentials.get("wamp-scram")]
        if isinstance(c, wamp_core.ScramCredential)
    )
    scram_options: dict[str, Any] = {}
    if scram:
        scram_options["decoy_params"] = scram.most_common(1)[0][0]
    return wamp_core.PrincipalAuthenticator(
        {realm.name: {str(p.authid): p for p in realm.principals} for realm in realms},
        anonymous={realm.name: realm.anonymous for realm in realms if realm.anonymous is not None},
        methods=[
            wamp_core.TicketMethod(),
            wamp_core.WampCraMethod(decoy_salt=decoy_salt),
            wamp_core.CryptosignMethod(),
            wamp_core.TlsMethod(),
            *(wamp_core.ScramMethod(name, **scram_options) for name in SCRAM_METHODS),
        ],
    )


class _Delegating:
    """An authenticator that hands each HELLO and AUTHENTICATE to the one ``_for``
    picks (the same one for both, since the pick depends on the HELLO only)."""

    def _for(self, info: wamp_core.HelloInfo) -> wamp_core.Authenticator:
        raise NotImplementedError

    def hello(
        self, info: wamp_core.HelloInfo
    ) -> wamp_core.AuthOutcome | wamp_core.Pending[wamp_core.AuthOutcome]:
        """Answer HELLO with the chosen authenticator."""
        return self._for(info).hello(info)

    def authenticate(
        self,
        info: wamp_core.HelloInfo,
        challenge: wamp_core.AuthChallenge,
        signature: str,
        extra: dict[str, Any],
    ) -> wamp_core.AuthOutcome | wamp_core.Pending[wamp_core.AuthOutcome]:
        """Verify AUTHENTICATE with the authenticator that sent the CHALLENGE."""
        return self._for(info).authenticate(info, challenge, signature, extra)


class _WithProcedure(_Delegating):
    """A realm's principals, then its authenticator procedure for every other
    authid (in ``ticket`` mode: for every HELLO that offers a ticket)."""

    def __init__(
        self,
        static: wamp_core.Authenticator,
        realm: RealmConfig,
        dynamic: wamp_core.ProcedureAuthenticator,
    ) -> None:
        self.static = static
        self.authids = frozenset(str(p.authid) for p in realm.principals)
        self.dynamic = dynamic

    def _for(self, info: wamp_core.HelloInfo) -> wamp_core.Authenticator:
        if info.authid in self.authids:
            return self.static
        if self.dynamic.ticket and "ticket" not in info.authmethods:
            return self.static  # anonymous, if the realm allows it
        return self.dynamic


class _RealmAuthenticator(_Delegating):
    """Each secured realm's authenticator; anonymous sessions for every other realm."""

    def __init__(self, realms: dict[str, wamp_core.Authenticator]) -> None:
        self.realms = realms
        self.open = wamp_core.AnonymousAuthenticator()

    def _for(self, info: wamp_core.HelloInfo) -> wamp_core.Authenticator:
        return self.realms.get(info.realm, self.open)


class _RealmAuthorizer:
    """The secured realms' authorizer (a role's procedure, where it names one);
    no opinion (everything allowed, as with no authorizer at all) in every
    other realm."""

    def __init__(
        self,
        secured: wamp_core.Authorizer,
        names: frozenset[str],
        dynamic: dict[tuple[str, str], wamp_core.DynamicAuthorizer],
    ) -> None:
        self.secured = secured
        self.names = names
        self.dynamic = dynamic

    def authorize(
        self,
        session: wamp_core.RouterSession,
        uri: str,
        action: wamp_core.Action,
        options: dict[str, Any],
    ) -> wamp_core.Decision | wamp_core.Pending[wamp_core.Decision] | None:
        """The secured realm's decision; no opinion (as if there were no
        authorizer) for an open realm."""
        realm = session.realm_name
        if realm not in self.names:
            return None
        dynamic = self.dynamic.get((realm, session.authrole))
        if dynamic is not None:
            return dynamic.authorize(session, uri, action, options)
        return self.secured.authorize(session, uri, action, options)


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
_ROUTER_KEYS = (
    "auto_create_realms",
    "strict_request_ids",
    "shutdown_timeout",
    "meta_api",
    "event_history",
)
_HISTORY_KEYS = ("uri", "match", "limit")
_REALM_KEYS = ("name", "anonymous", "principals", "roles", "authenticator")
_AUTHENTICATOR_KEYS = ("procedure", "realm", "ticket", "timeout")
_PRINCIPAL_KEYS = ("authid", "role", "ticket", "wampcra", "cryptosign", "scram", "tls")
_WAMPCRA_KEYS = ("secret", "salt", "iterations", "keylen")
_SCRAM_KEYS = ("password", "kdf", "iterations", "memory", "salt", "stored-key", "server-key")
_SCRAM_KDFS = ("argon2id13", "argon2id-13", "pbkdf2")
_ROLE_KEYS = ("name", "permissions", "authorizer")
_ACTION_KEYS = ("call", "register", "publish", "subscribe", "disclose_caller", "disclose_publisher")
_PERMISSION_KEYS = ("uri", "match", *_ACTION_KEYS)
_MATCH_POLICIES = ("exact", "prefix", "wildcard")
_TCP_KEYS = ("type", "host", "port", "websocket", "longpoll", "rawsocket", "tls")
_UNIX_KEYS = ("type", "path")
_TLS_KEYS = ("cert", "key", "ca", "client_cert")
_LIMITS_KEYS = (
    "queue_size",
    "slow_consumer",
    "max_message_size",
    "max_sessions",
    "max_sessions_per_realm",
    "max_pending_calls",
    "max_subscriptions",
    "max_registrations",
    "max_retained_topics",
    "max_realms",
    "handshake_timeout",
    "longpoll_idle_timeout",
    "keepalive_interval",
    "keepalive_timeout",
    "rawsocket_pings",
    "websocket_max_message_size",
    "rawsocket_max_message_size",
    "longpoll_max_body_size",
)
_LIMIT_COUNTS = (
    "max_sessions",
    "max_sessions_per_realm",
    "max_pending_calls",
    "max_subscriptions",
    "max_registrations",
    "max_retained_topics",
    "max_realms",
)
"""Limits where 0 means "no limit" (TOML has no null)."""
_LIMIT_TIMES = ("handshake_timeout", "longpoll_idle_timeout", "keepalive_timeout")
_LIMIT_SIZES = (
    "websocket_max_message_size",
    "rawsocket_max_message_size",
    "longpoll_max_body_size",
)
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
        except ValueError as exc:  # TOMLDecodeError, or an integer of over 4300 digits
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
    meta_api = _bool(router, "meta_api", "router", default.meta_api)
    event_history = default.event_history
    if "event_history" in router:
        event_history = tuple(
            _history_rule(item, f"router.event_history[{i}]")
            for i, item in enumerate(_array(router, "event_history", "router.event_history"))
        )

    realms = default.realms
    if "realms" in data:
        realms = tuple(
            _realm(item, f"realms[{i}]") for i, item in enumerate(_array(data, "realms", "realms"))
        )

    listeners = default.listeners
    if "listeners" in data:
        listeners = tuple(
            _listener(item, f"listeners[{i}]", base_dir)
            for i, item in enumerate(_array(data, "listeners", "listeners"))
        )

    limits = parse_limits(_table(data, "limits", "limits"))

    logging_table = _table(data, "logging", "logging")
    _check_keys(logging_table, _LOGGING_KEYS, "logging")
    level = _choice(logging_table, "level", "logging", default.log_level, LOG_LEVELS, fold=True)

    config = RouterConfig(
        realms=realms,
        auto_create_realms=auto_create,
        strict_request_ids=strict_ids,
        shutdown_timeout=shutdown_timeout,
        meta_api=meta_api,
        event_history=event_history,
        listeners=listeners,
        limits=limits,
        log_level=level,
    )
    config.check()
    return config


def parse_limits(table: Mapping[str, Any], where: str = "limits") -> Limits:
    """Validate a ``[limits]`` table (``where`` names it in errors) into ``Limits``.

    Absent keys keep their defaults; ``0`` means "no limit" for the counts and
    "off" for ``keepalive_interval``.
    """
    _check_keys(table, _LIMITS_KEYS, where)
    default = Limits()
    values: dict[str, Any] = {
        "queue_size": _int(table, "queue_size", where, default.queue_size, low=1, high=None),
        "slow_consumer": _choice(
            table, "slow_consumer", where, default.slow_consumer, ("drop", "disconnect")
        ),
        "max_message_size": _int(
            table,
            "max_message_size",
            where,
            default.max_message_size,
            low=512,
            high=MAX_MESSAGE_SIZE,
        ),
    }
    for key in _LIMIT_COUNTS:
        count = _int(table, key, where, getattr(default, key) or 0, low=0, high=None)
        values[key] = count or None
    for key in _LIMIT_TIMES:
        values[key] = _seconds(table, key, where, getattr(default, key), zero=False)
    interval = _seconds(table, "keepalive_interval", where, default.keepalive_interval or 0.0)
    values["keepalive_interval"] = interval or None
    values["rawsocket_pings"] = _bool(table, "rawsocket_pings", where, default.rawsocket_pings)
    for key in _LIMIT_SIZES:
        values[key] = (
            _int(table, key, where, 0, low=512, high=MAX_MESSAGE_SIZE) if key in table else None
        )
    return Limits(**values)


def _history_rule(item: object, where: str) -> wamp_core.HistoryRule:
    table = _as_table(item, where)
    _check_keys(table, _HISTORY_KEYS, where)
    match = _choice(table, "match", where, "exact", _MATCH_POLICIES)
    uri = _uri(table, "uri", where, match)
    limit = _int(table, "limit", where, 100, low=1, high=None)
    return wamp_core.HistoryRule(uri, match, limit)


def _uri(table: Mapping[str, Any], key: str, where: str, match: str) -> str:
    """A required URI (a pattern for ``match`` prefix or wildcard)."""
    if key not in table:
        raise ConfigError(_key(where, key), "is required")
    value = _string(table, key, where, "")
    if not wamp_core.is_valid_uri(value, match):
        raise ConfigError(_key(where, key), f"{value!r} is not a valid URI for match {match!r}")
    return value


def _realm(item: object, where: str) -> RealmConfig:
    table = _as_table(item, where)
    _check_keys(table, _REALM_KEYS, where)
    if "name" not in table:
        raise ConfigError(f"{where}.name", "is required")
    name = realm_name(table["name"], f"{where}.name")
    if not any(key in table for key in ("anonymous", "principals", "roles", "authenticator")):
        return RealmConfig(name)
    roles: list[RoleConfig] = []
    if "roles" in table:
        for i, entry in enumerate(_array(table, "roles", f"{where}.roles")):
            role = _role(entry, f"{where}.roles[{i}]")
            if any(r.name == role.name for r in roles):
                raise ConfigError(f"{where}.roles[{i}].name", f"duplicate role {role.name!r}")
            roles.append(role)
    role_names = {role.name for role in roles}

    def check_role(value: str, key: str) -> str:
        if value not in role_names:
            raise ConfigError(key, f"role {value!r} is not defined in {where}.roles")
        return value

    anonymous = None
    if "anonymous" in table:
        anonymous = check_role(_name(table, "anonymous", where), f"{where}.anonymous")
    principals: list[wamp_core.Principal] = []
    keys: dict[str, str] = {}
    if "principals" in table:
        for i, entry in enumerate(_array(table, "principals", f"{where}.principals")):
            at = f"{where}.principals[{i}]"
            principal = _principal(entry, at)
            check_role(principal.role, f"{at}.role")
            if any(p.authid == principal.authid for p in principals):
                raise ConfigError(f"{at}.authid", f"duplicate authid {principal.authid!r}")
            for key in principal.cryptosign:
                if key in keys:
                    raise ConfigError(
                        f"{at}.cryptosign", f"public key {key} is also {keys[key]!r}'s"
                    )
                keys[key] = str(principal.authid)
            principals.append(principal)
    authenticator = None
    if "authenticator" in table:
        authenticator = _authenticator(table["authenticator"], f"{where}.authenticator")
        if anonymous is not None and not authenticator.ticket:
            raise ConfigError(
                f"{where}.anonymous",
                "cannot be set with an authenticator that is not in ticket mode"
                " (the authenticator decides for sessions without credentials)",
            )
    return RealmConfig(name, anonymous, tuple(principals), tuple(roles), authenticator)


def _authenticator(item: object, where: str) -> AuthenticatorConfig:
    table = _as_table(item, where)
    _check_keys(table, _AUTHENTICATOR_KEYS, where)
    procedure = _procedure(table, "procedure", where)
    realm = realm_name(table["realm"], f"{where}.realm") if "realm" in table else None
    return AuthenticatorConfig(
        procedure,
        realm,
        _bool(table, "ticket", where, False),
        _number(table, "timeout", where, 10.0),
    )


def _procedure(table: Mapping[str, Any], key: str, where: str) -> str:
    """A required procedure URI (strict, not reserved)."""
    uri = _name(table, key, where)
    if not wamp_core.is_valid_uri(uri) or wamp_core.is_reserved_uri(uri):
        raise ConfigError(_key(where, key), f"{uri!r} is not a valid procedure URI")
    return uri


def _name(table: Mapping[str, Any], key: str, where: str) -> str:
    """A required non-empty string."""
    if key not in table:
        raise ConfigError(_key(where, key), "is required")
    value = _string(table, key, where, "")
    if not value:
        raise ConfigError(_key(where, key), "must not be empty")
    return value


def _role(item: object, where: str) -> RoleConfig:
    table = _as_table(item, where)
    _check_keys(table, _ROLE_KEYS, where)
    name = _name(table, "name", where)
    permissions: list[wamp_core.Permission] = []
    if "authorizer" in table:
        if "permissions" in table:
            raise ConfigError(
                f"{where}.authorizer", "a role has either permissions or an authorizer, not both"
            )
        return RoleConfig(name, authorizer=_procedure(table, "authorizer", where))
    if "permissions" in table:
        for i, entry in enumerate(_array(table, "permissions", f"{where}.permissions")):
            at = f"{where}.permissions[{i}]"
            perm = _as_table(entry, at)
            _check_keys(perm, _PERMISSION_KEYS, at)
            match = _choice(perm, "match", at, "exact", _MATCH_POLICIES)
            if "uri" not in perm:
                raise ConfigError(f"{at}.uri", "is required")
            uri = _string(perm, "uri", at, "")
            if not (wamp_core.is_valid_uri(uri, match) or (match == "prefix" and uri == "")):
                raise ConfigError(f"{at}.uri", f"{uri!r} is not a valid URI for match {match!r}")
            if any((p.uri, p.match) == (uri, match) for p in permissions):
                raise ConfigError(f"{at}.uri", f"a second permission for {uri!r} ({match})")
            flags = {key: _bool(perm, key, at, False) for key in _ACTION_KEYS}
            permissions.append(wamp_core.Permission(uri, match, **flags))
    return RoleConfig(name, tuple(permissions))


def _principal(item: object, where: str) -> wamp_core.Principal:
    table = _as_table(item, where)
    _check_keys(table, _PRINCIPAL_KEYS, where)
    authid = _name(table, "authid", where)
    role = _name(table, "role", where)
    tls = _bool(table, "tls", where, False)
    if not tls and not any(key in table for key in ("ticket", "wampcra", "cryptosign", "scram")):
        raise ConfigError(where, "needs a credential: ticket, wampcra, cryptosign, scram or tls")
    ticket = None
    if "ticket" in table:
        ticket = _string(table, "ticket", where, "")
        if not ticket:
            raise ConfigError(f"{where}.ticket", "must not be empty")
    wampcra = _wampcra(table["wampcra"], f"{where}.wampcra") if "wampcra" in table else None
    cryptosign: list[str] = []
    if "cryptosign" in table:
        value = table["cryptosign"]
        if not isinstance(value, list):
            raise ConfigError(
                f"{where}.cryptosign", f"must be an array of public keys, not {_kind(value)}"
            )
        for i, key in enumerate(value):
            if (
                not isinstance(key, str)
                or len(key) != 64
                or any(c not in "0123456789abcdefABCDEF" for c in key)
            ):
                raise ConfigError(
                    f"{where}.cryptosign[{i}]",
                    # Not echoed: a private key put here by mistake must not reach a log.
                    "must be an Ed25519 public key in 64 hex digits, not "
                    + (f"{len(key)} characters" if isinstance(key, str) else _kind(key)),
                )
            cryptosign.append(key.lower())
    credentials = {}
    if "scram" in table:
        credentials["wamp-scram"] = _scram(table["scram"], f"{where}.scram")
    return wamp_core.Principal(
        role,
        authid=authid,
        ticket=ticket,
        wampcra=wampcra,
        cryptosign=cryptosign,
        credentials=credentials,
        authprovider="static",
        tls=tls,
    )


def _wampcra(item: object, where: str) -> wamp_core.CraCredential:
    table = _as_table(item, where)
    _check_keys(table, _WAMPCRA_KEYS, where)
    secret = _name(table, "secret", where)
    if "salt" not in table:
        for key in ("iterations", "keylen"):
            if key in table:
                raise ConfigError(
                    f"{where}.{key}", "needs salt (it only applies to salted WAMP-CRA)"
                )
        return wamp_core.CraCredential(secret)
    salt = _name(table, "salt", where)
    iterations = _int(table, "iterations", where, 1000, low=1, high=1_000_000)
    keylen = _int(table, "keylen", where, 32, low=1, high=1024)
    return wamp_core.CraCredential.salted(secret, salt, iterations, keylen)


def _hex(table: Mapping[str, Any], key: str, where: str) -> bytes:
    value = _name(table, key, where)
    try:
        return bytes.fromhex(value)
    except ValueError:
        raise ConfigError(_key(where, key), "must be hexadecimal") from None


def _scram(item: object, where: str) -> wamp_core.ScramCredential:
    table = _as_table(item, where)
    _check_keys(table, _SCRAM_KEYS, where)
    kdf = _choice(table, "kdf", where, "argon2id13", _SCRAM_KDFS)
    argon2 = kdf != "pbkdf2"
    if "memory" in table and not argon2:
        raise ConfigError(f"{where}.memory", "pbkdf2 takes no memory cost")
    if "password" in table:
        for key in ("salt", "stored-key", "server-key"):
            if key in table:
                raise ConfigError(
                    f"{where}.{key}", "give either password or the derived credential, not both"
                )
        password = _name(table, "password", where)
        iterations = memory = None
        if "iterations" in table:
            iterations = _int(table, "iterations", where, 0, low=1, high=2**32 - 1)
        if "memory" in table:
            memory = _int(table, "memory", where, 0, low=8, high=2**32 - 1)
        try:
            return wamp_core.derive_scram_credential(
                password, kdf=kdf, iterations=iterations, memory=memory
            )
        except ValueError as exc:
            raise ConfigError(where, str(exc)) from None
    for key in ("salt", "stored-key", "server-key", "iterations"):
        if key not in table:
            raise ConfigError(
                f"{where}.{key}", "is required (or give password to derive the credential)"
            )
    iterations = _int(table, "iterations", where, 0, low=1, high=2**32 - 1)
    memory = None
    if argon2:
        if "memory" not in table:
            raise ConfigError(f"{where}.memory", f"is required for kdf {kdf!r}")
        memory = _int(table, "memory", where, 0, low=8, high=2**32 - 1)
    salt = _hex(table, "salt", where)
    stored, server = _hex(table, "stored-key", where), _hex(table, "server-key", where)
    for key, value in (("stored-key", stored), ("server-key", server)):
        if len(value) != 32:
            raise ConfigError(f"{where}.{key}", "must be 32 bytes (64 hex digits)")
    try:
        return wamp_core.ScramCredential(kdf, iterations, memory, salt, stored, server)
    except ValueError as exc:
        raise ConfigError(where, str(exc)) from None


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
        files: dict[str, str] = {}
        for key in ("cert", "key", "ca"):
            if key not in tls_table:
                if key == "ca":
                    continue
                raise ConfigError(f"{tls_where}.{key}", "is required")
            file = _resolve(base, _string(tls_table, key, tls_where, ""))
            if not Path(file).is_file():
                raise ConfigError(f"{tls_where}.{key}", f"no such file: {file}")
            files[key] = file
        ca = files.get("ca")
        client_cert = _choice(
            tls_table,
            "client_cert",
            tls_where,
            "none" if ca is None else "required",
            ("none", "optional", "required"),
        )
        if client_cert != "none" and ca is None:
            raise ConfigError(
                f"{tls_where}.client_cert",
                "needs ca (the CA file client certificates are checked against)",
            )
        tls = TlsConfig(
            files["cert"], files["key"], where=tls_where, ca=ca, client_cert=client_cert
        )
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


def _array(data: Mapping[str, Any], key: str, where: str) -> list[Any]:
    value = data[key]
    if not isinstance(value, list):
        name = re.sub(r"\[\d+\]", "", where)
        raise ConfigError(where, f"must be an array of tables ([[{name}]]), not {_kind(value)}")
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
    return _float(value, key, where)


def _float(value: float, key: str, where: str) -> float:
    """``float(value)``; a TOML integer has no size limit, a float has."""
    try:
        return float(value)
    except OverflowError:
        raise ConfigError(_key(where, key), "is too large a number") from None


def _seconds(
    table: Mapping[str, Any], key: str, where: str, default: float, *, zero: bool = True
) -> float:
    """A finite duration in seconds: ``>= 0``, or ``> 0`` when ``zero`` is False."""
    value = table.get(key, default)
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not 0 <= value < math.inf
        or (value == 0 and not zero)
    ):
        expected = "a number >= 0" if zero else "a number > 0"
        raise ConfigError(_key(where, key), f"must be {expected} (seconds), not {_show(value)}")
    return _float(value, key, where)


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
