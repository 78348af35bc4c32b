"""Authorization (AP/authorization.md), sans-IO: may this session call, register,
publish or subscribe to this URI?

The router asks its ``Authorizer`` (``Router.authorizer``; None allows
everything) before it acts on a request:

* CALL: ``call`` on the procedure -- the router's own ``wamp.*`` procedures
  included; REGISTER: ``register``; PUBLISH: ``publish``; SUBSCRIBE:
  ``subscribe`` -- the ``wamp.*`` meta topics included. For REGISTER and
  SUBSCRIBE the URI may be a pattern, and ``options["match"]`` says which kind.
* ``wamp.subscription.get_events`` also needs ``subscribe`` on the pattern of the
  subscription whose history is read; a testament needs ``publish`` (and
  ``disclose``, if it asks for disclosure) for its session when it fires.
* A refusal is ERROR ``Decision.reason`` (``wamp.error.not_authorized``, or
  ``wamp.error.authorization_failed`` when the authorizer itself failed,
  BP/uri_reference.md); an unacknowledged PUBLISH is dropped silently
  (BP/publish_subscribe.md: ERROR only with ``acknowledge``).
* ``Decision.disclose`` (CALL and PUBLISH): True discloses the caller's or
  publisher's identity (``caller``/``publisher``, ``*_authid``, ``*_authrole``)
  whether or not it asked -- the "Dealer configuration" of
  AP/ap_rpc_caller_identification.md and AP/ap_pubsub_publisher_identification.md,
  and the meaning of Crossbar.io's ``disclose`` permission. False keeps it
  hidden: a ``disclose_me`` request is refused with
  ``wamp.error.option_disallowed.disclose_me`` (AP/ap_uris.md; the caller
  identification example's ``wamp.error.disclose_me.not_allowed`` is a spec
  bug), and a callee's ``disclose_caller`` is not honoured for this caller.
  Without an authorizer, identity is disclosed on request, as before.

Decisions are taken when the request arrives: a subscription or registration
that was allowed stays in force if the policy changes later.

Two authorizers come with the core: ``RoleBasedAuthorizer`` (static roles with
permissions by URI, most specific rule wins) and ``DynamicAuthorizer`` (a Python
callable, with a decision cache).

A decision may also come later: ``authorize`` then returns a
``Pending[Decision]`` and resolves it when it knows (``ProcedureAuthorizer``
asks a WAMP procedure, as Crossbar.io's dynamic authorizers). Every handler asks
before it changes anything, so the router holds the request -- and every later
request of that session (CALL, CANCEL, PUBLISH, SUBSCRIBE, UNSUBSCRIBE,
REGISTER, UNREGISTER), to keep them in order -- and runs it once the decision
comes. YIELD and ERROR are not held: they answer other sessions' calls, the
authorizer's own included. GOODBYE, ABORT or a lost transport drop what is
held and cancel the ``Pending``. At most ``Router.max_held_requests`` requests
wait per session; one more ends the session (GOODBYE ``wamp.close.killed``).
A testament whose decision is pending is published when it comes.

The router's own internal session (``Router.call_procedure``, used by
``ProcedureAuthenticator`` and ``ProcedureAuthorizer``) is not subject to the
authorizer: the router trusts itself.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple, Protocol, get_args

from ._auth import Pending
from ._errors import LocalProtocolError
from ._router import RouterObserver, RouterSession
from ._uri import MATCH_POLICIES, ErrorURI, MatchPolicy, PatternMap, is_valid_uri

__all__ = [
    "ACTIONS",
    "AUTHORIZER_FAILED",
    "NO_PERMISSION",
    "Action",
    "AuthorizeFunction",
    "Authorizer",
    "Decision",
    "DynamicAuthorizer",
    "Permission",
    "Role",
    "RoleBasedAuthorizer",
]

Action = Literal["call", "register", "publish", "subscribe"]
ACTIONS: tuple[Action, ...] = get_args(Action)
"""The actions of AP/authorization.md."""

_PATTERN_ACTIONS = ("register", "subscribe")  # the actions whose URI may be a pattern


@dataclass(frozen=True, slots=True)
class Decision:
    """An authorizer's answer for one request.

    ``allow``: the request may go ahead; otherwise it is refused with ERROR
    ``reason``. ``disclose`` (``call`` and ``publish`` only): the acting
    session's identity is disclosed to callees or subscribers, and its
    ``disclose_me`` is accepted; False refuses ``disclose_me`` (see the module
    docstring). ``cache``: a ``DynamicAuthorizer`` may keep the decision.
    """

    allow: bool
    disclose: bool = False
    cache: bool = True
    reason: str = ErrorURI.NOT_AUTHORIZED


_DENY = Decision(False)
AUTHORIZER_FAILED = Decision(False, cache=False, reason=ErrorURI.AUTHORIZATION_FAILED)
"""The decision when the authorizer itself failed (raised, answered nonsense,
or did not answer in time): ``wamp.error.authorization_failed``, not cached."""


class Authorizer(Protocol):
    """Decides what an established session may do. Implementations must not do I/O.

    ``uri`` is the request's procedure or topic, a pattern for a REGISTER or
    SUBSCRIBE with ``options["match"]`` ``prefix`` or ``wildcard``; ``options``
    are the request's options (not to be changed). The URI and the match
    policy were checked before. Returning None means "no opinion": the request
    is treated as if the router had no authorizer (allowed; identity disclosed
    on request) -- e.g. for realms an embedder leaves open. A ``Pending`` says
    the decision comes later (the router holds the request meanwhile, see the
    module docstring).
    """

    def authorize(
        self, session: RouterSession, uri: str, action: Action, options: dict[str, Any]
    ) -> Decision | Pending[Decision] | None:
        """Decide whether ``session`` may do ``action`` on ``uri``."""


# -- static roles ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Permission:
    """What a role may do on the URIs matching (``uri``, ``match``).

    ``match`` works as in SUBSCRIBE and REGISTER (AP/ap_rpc_pattern_based_registration.md);
    ``Permission("", "prefix", ...)`` covers every URI (``wamp.*`` included).
    ``disclose_caller`` and ``disclose_publisher`` become ``Decision.disclose``
    for ``call`` and ``publish``. Raises ``LocalProtocolError`` for a bad URI,
    policy or flag.
    """

    uri: str
    match: MatchPolicy = "exact"
    call: bool = False
    register: bool = False
    publish: bool = False
    subscribe: bool = False
    disclose_caller: bool = False
    disclose_publisher: bool = False

    def __post_init__(self) -> None:
        if self.match not in MATCH_POLICIES:
            raise LocalProtocolError(
                f"unknown match policy {self.match!r} in permission", ErrorURI.INVALID_ARGUMENT
            )
        if not (is_valid_uri(self.uri, self.match) or (self.match == "prefix" and self.uri == "")):
            raise LocalProtocolError(
                f"invalid URI {self.uri!r} for match policy {self.match!r} in permission",
                ErrorURI.INVALID_URI,
            )
        for flag in (*ACTIONS, "disclose_caller", "disclose_publisher"):
            if type(getattr(self, flag)) is not bool:
                raise LocalProtocolError(
                    f"permission flag {flag} must be a bool", ErrorURI.INVALID_ARGUMENT
                )

    def allows(self, action: Action) -> bool:
        """The flag of ``action``."""
        if action == "call":
            return self.call
        if action == "register":
            return self.register
        if action == "publish":
            return self.publish
        return self.subscribe

    def discloses(self, action: Action) -> bool:
        """Whether the acting session's identity is disclosed for ``action``."""
        if action == "call":
            return self.disclose_caller
        return action == "publish" and self.disclose_publisher


NO_PERMISSION = Permission("", "prefix")
"""Allows nothing: the default of ``RoleBasedAuthorizer``."""


# A URI pattern as constraints on components, to tell which rules a pattern
# subscription or registration can reach. Each part is (text, whole): with
# whole the component is ``text``, else it starts with ``text`` (any component
# when ``text`` is ""). ``open``: more components may follow.


class _Shape(NamedTuple):
    parts: tuple[tuple[str, bool], ...]
    open: bool


_ANY = ("", False)


def _shape(uri: str, match: MatchPolicy) -> _Shape:
    if match == "prefix":  # a string prefix: the last component may be partial
        *head, last = uri.split(".")
        return _Shape((*((part, True) for part in head), (last, False)), True)
    return _Shape(tuple((part, part != "") for part in uri.split(".")), False)


def _meet_part(a: tuple[str, bool], b: tuple[str, bool]) -> tuple[str, bool] | None:
    (s, s_whole), (t, t_whole) = a, b
    if s_whole and t_whole:
        return a if s == t else None
    if s_whole or t_whole:
        whole, start = (a, t) if s_whole else (b, s)
        return whole if whole[0].startswith(start) else None
    if s.startswith(t):
        return a
    return b if t.startswith(s) else None


def _meet(a: _Shape, b: _Shape) -> _Shape | None:
    """The URIs both shapes match, as a shape; None when there are none."""
    n, m = len(a.parts), len(b.parts)
    if (n < m and not a.open) or (m < n and not b.open):
        return None
    parts = []
    for i in range(max(n, m)):
        part = _meet_part(a.parts[i] if i < n else _ANY, b.parts[i] if i < m else _ANY)
        if part is None:
            return None
        parts.append(part)
    return _Shape(tuple(parts), a.open and b.open)


class Role:
    """A named role: its permissions, each for a (URI, match policy).

    For a URI, the most specific matching permission decides, as a CALL is
    routed (``PatternMap.best``): an exact one, else the longest prefix, else
    the best wildcard (AP/ap_rpc_pattern_based_registration.md); with none, the
    authorizer's default. Two permissions for the same (URI, match policy) are
    refused (``LocalProtocolError``).
    """

    def __init__(self, name: str, permissions: Iterable[Permission] = ()) -> None:
        self.name = name
        self.permissions = tuple(permissions)
        self._table: PatternMap[Permission] = PatternMap()
        for permission in self.permissions:
            if self._table.get(permission.uri, permission.match) is not None:
                raise LocalProtocolError(
                    f"role {name!r} has two permissions for {permission.uri!r}"
                    f" ({permission.match})",
                    ErrorURI.INVALID_ARGUMENT,
                )
            self._table.set(permission.uri, permission.match, permission)
        self._shapes = [_shape(p.uri, p.match) for p in self.permissions]
        # Beyond this many components no wildcard permission matches.
        self._longest_wildcard = max(
            (len(s.parts) for s, p in zip(self._shapes, self.permissions) if p.match == "wildcard"),
            default=0,
        )
        # A character no permission URI contains, to build URIs no permission
        # names more precisely than the pattern being checked does.
        used = {c for p in self.permissions for c in p.uri}
        self._fresh = next(
            c for c in map(chr, range(0x21, 0x110000)) if c not in used and c not in ".#"
        )

    def __repr__(self) -> str:
        return f"Role({self.name!r}, {list(self.permissions)!r})"

    def rule(self, uri: str) -> Permission | None:
        """The permission that decides for URI ``uri``, if any."""
        return self._table.best(uri)

    def reaches(self, uri: str, match: MatchPolicy, action: Action, default: Permission) -> bool:
        """Whether ``action`` is allowed on every URI the pattern (``uri``, ``match``)
        matches, ``default`` deciding where no permission does.

        A pattern subscription or registration must not reach a URI the role may
        not subscribe to or register. The pattern matches infinitely many URIs,
        but only finitely many *kinds*: for each permission whose URIs overlap
        the pattern's, one URI of the overlap that matches nothing more specific
        than the overlap requires (built with a character no permission uses),
        plus one URI of the pattern that matches as little as possible. Every
        permission that decides for some URI of the pattern decides for one of
        these, so checking them is exact.
        """
        shape = _shape(uri, match)
        overlaps = [shape]
        for rule in self._shapes:
            overlap = _meet(shape, rule)
            if overlap is not None:
                overlaps.append(overlap)
        return all(
            (self._table.best(self._example(overlap)) or default).allows(action)
            for overlap in overlaps
        )

    def _example(self, shape: _Shape) -> str:
        """A URI of ``shape`` that matches the fewest permissions possible."""
        fresh = self._fresh
        parts = [text if whole else text + fresh for text, whole in shape.parts]
        if shape.open:  # more components than any wildcard permission has
            parts.extend([fresh] * (self._longest_wildcard + 1 - len(parts)))
        return ".".join(parts)


class RoleBasedAuthorizer:
    """Static roles: ``realms`` maps a realm name to its roles by ``authrole``.

    A session whose realm or role is not listed may do nothing. For a URI the
    most specific permission of the role decides (see ``Role``); where none
    matches, ``default`` does (its URI is not used; default: nothing allowed). A
    pattern REGISTER or SUBSCRIBE is allowed only when every URI the pattern
    matches is (see ``Role.reaches``). Raises ``LocalProtocolError`` when a role
    is listed under a name other than its own.
    """

    def __init__(
        self, realms: Mapping[str, Mapping[str, Role]], default: Permission = NO_PERMISSION
    ) -> None:
        self.realms: dict[str, dict[str, Role]] = {}
        for realm, roles in realms.items():
            for name, role in roles.items():
                if name != role.name:
                    raise LocalProtocolError(
                        f"role {role.name!r} is listed as {name!r} in realm {realm!r}",
                        ErrorURI.INVALID_ARGUMENT,
                    )
            self.realms[realm] = dict(roles)
        self.default = default

    def authorize(
        self, session: RouterSession, uri: str, action: Action, options: dict[str, Any]
    ) -> Decision:
        """The role's decision for ``action`` on ``uri`` (a pattern for REGISTER
        and SUBSCRIBE with ``options["match"]``)."""
        realm = session.realm_name
        roles = None if realm is None else self.realms.get(realm)
        role = None if roles is None else roles.get(session.authrole)
        if role is None or action not in ACTIONS:
            return _DENY
        match = options.get("match", "exact") if action in _PATTERN_ACTIONS else "exact"
        if match == "exact":
            permission = role.rule(uri) or self.default
            return Decision(permission.allows(action), permission.discloses(action))
        if match not in MATCH_POLICIES:
            return _DENY
        return Decision(role.reaches(uri, match, action, self.default))


# -- dynamic authorization -------------------------------------------------------------

AuthorizeFunction = Callable[
    [RouterSession, str, Action, dict[str, Any]], "bool | Decision | Pending[Decision]"
]
"""``(session, uri, action, options) -> bool | Decision | Pending[Decision]``: a
dynamic authorizer. ``True`` stands for ``Decision(True)`` (no disclosure),
``False`` for a refusal; a ``Pending`` for a decision that comes later
(``ProcedureAuthorizer``)."""


class DynamicAuthorizer(RouterObserver):
    """Asks ``function`` (an ``AuthorizeFunction``) and caches its decisions.

    The cache holds up to ``cache_size`` decisions (0: none), least recently
    used first out, keyed by the principal, the URI, the action and the match
    policy. ``per="session"`` (the default) keys by session -- its entries go
    when the session leaves, which the router reports when this object is in
    ``Router.observers``; ``per="authrole"`` shares decisions between the
    sessions of a role in a realm, for a function that decides by role alone.
    A decision that depends on anything else (other options, the time) must
    be returned with ``cache=False``. ``clear()`` drops every decision (after
    a policy change).

    A ``Pending`` answer is passed on to the router, and its decision cached
    when it comes (unless ``cache=False``), for a function such as
    ``ProcedureAuthorizer`` that asks somebody else.

    A function that raises, or returns something other than a bool, a
    ``Decision`` or a ``Pending``, fails the request with ``wamp.error.authorization_failed``
    (BP/uri_reference.md: "a custom authorizer did run into an error");
    ``failures`` counts these and ``last_error`` keeps the last exception.
    """

    def __init__(
        self,
        function: AuthorizeFunction,
        *,
        cache_size: int = 1024,
        per: Literal["session", "authrole"] = "session",
    ) -> None:
        if type(cache_size) is not int or cache_size < 0:
            raise LocalProtocolError(
                f"cache_size must be a non-negative integer, not {cache_size!r}",
                ErrorURI.INVALID_ARGUMENT,
            )
        if per not in ("session", "authrole"):
            raise LocalProtocolError(
                f"per must be 'session' or 'authrole', not {per!r}", ErrorURI.INVALID_ARGUMENT
            )
        self.function = function
        self.cache_size = cache_size
        self.per = per
        self.hits = 0
        """Decisions answered from the cache."""
        self.misses = 0
        """Decisions ``function`` was asked for."""
        self.failures = 0
        self.last_error: Exception | None = None
        self._cache: dict[tuple[Any, ...], Decision] = {}  # oldest use first
        self._by_session: dict[int, set[tuple[Any, ...]]] = {}

    def __len__(self) -> int:
        return len(self._cache)

    def authorize(
        self, session: RouterSession, uri: str, action: Action, options: dict[str, Any]
    ) -> Decision | Pending[Decision]:
        """The cached decision, else ``function``'s (cached unless ``cache=False``)."""
        match = options.get("match", "exact") if action in _PATTERN_ACTIONS else "exact"
        if self.per == "session":
            # Identity in the key too: a later session may get the same ID.
            principal: tuple[Any, ...] = (
                session.realm_name, session.session_id, session.authid, session.authrole
            )  # fmt: skip
        else:
            principal = (session.realm_name, session.authrole)
        key = (principal, uri, action, match)
        found = self._cache.pop(key, None)
        if found is not None:
            self._cache[key] = found  # now the most recently used
            self.hits += 1
            return found
        self.misses += 1
        decision = self._ask(session, uri, action, options)
        if isinstance(decision, Pending):
            if decision.outcome is None:
                return self._later(key, session.session_id, decision)
            decision = decision.outcome
        self._keep(key, session.session_id, decision)
        return decision

    def _later(
        self, key: tuple[Any, ...], session_id: int, inner: Pending[Decision]
    ) -> Pending[Decision]:
        # The router waits on ``outer``; when it stops waiting (the session
        # left), ``inner`` is cancelled and nothing is cached for the session.
        outer: Pending[Decision] = Pending(inner.cancel)

        def decided(decision: Decision) -> None:
            self._keep(key, session_id, decision)
            outer.resolve(decision)

        inner._bind(decided)
        return outer

    def _keep(self, key: tuple[Any, ...], session_id: int, decision: Decision) -> None:
        if decision.cache and self.cache_size:
            self._store(key, session_id, decision)

    def _ask(
        self, session: RouterSession, uri: str, action: Action, options: dict[str, Any]
    ) -> Decision | Pending[Decision]:
        try:
            answer = self.function(session, uri, action, dict(options))
        except Exception as exc:
            self.failures += 1
            self.last_error = exc
            return AUTHORIZER_FAILED
        if type(answer) is bool:
            return Decision(answer)
        if isinstance(answer, Decision | Pending):
            return answer
        self.failures += 1
        self.last_error = TypeError(f"the authorizer returned {type(answer).__name__}")
        return AUTHORIZER_FAILED

    def _store(self, key: tuple[Any, ...], session_id: int, decision: Decision) -> None:
        cache = self._cache
        cache[key] = decision
        if self.per == "session":
            self._by_session.setdefault(session_id, set()).add(key)
        if len(cache) > self.cache_size:
            oldest = next(iter(cache))
            del cache[oldest]
            if self.per == "session":
                owner = oldest[0][1]
                keys = self._by_session[owner]
                keys.discard(oldest)
                if not keys:
                    del self._by_session[owner]

    def forget(self, session: RouterSession) -> None:
        """Drop the decisions cached for ``session`` (per-session cache only)."""
        for key in self._by_session.pop(session.session_id, ()):
            del self._cache[key]

    def clear(self) -> None:
        """Drop every cached decision."""
        self._cache.clear()
        self._by_session.clear()

    def session_left(self, session: RouterSession) -> None:
        """``RouterObserver``: the session's decisions go with it."""
        self.forget(session)
