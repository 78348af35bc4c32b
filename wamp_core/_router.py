"""The router as a sans-IO state machine: realms, sessions, broker and dealer.

Usage by an adapter, one ``RouterSession`` per transport connection::

    router = Router(realms=["realm1"])
    session = router.attach(get_serializer("json"), transport={"peer": "..."})
    router.receive_data(session, payload)      # may raise RemoteProtocolError
    for delivery in router.data_to_send():     # to *any* session, not only this one
        if delivery.data is None:              # close that transport (after
            close(delivery.session)            # writing what came before)
        else:
            write(delivery.session, delivery.data)
    router.detach(session)                     # when the transport is gone

Each ``RouterSession`` goes through these states (BP/sessions.md)::

    CLOSED --HELLO--> [CHALLENGING --AUTHENTICATE-->] ESTABLISHED
    ESTABLISHED --GOODBYE (echoed) / ABORT--> CLOSED (a new HELLO may follow)
    ESTABLISHED --router closes (kill, shutdown)--> SHUTTING_DOWN --GOODBYE--> CLOSED
    any --protocol violation--> FAILED (ABORT sent, transport to be closed)

While the authenticator's answer is ``Pending`` (it asked somebody else, see
``wamp_core._dynauth``) the session waits in CHALLENGING too; AUTHENTICATE is
then a violation.

The router can call procedures itself (``Router.call_procedure``) through an
internal session per realm, which has no transport and is in no session list.

``TRANSITIONS`` lists every (state, message type) pair the router accepts; any
other is a protocol violation. One session's input never changes another
session's state except through the protocol (events, invocations, results).
"""

from __future__ import annotations

import dataclasses
import enum
import heapq
import itertools
import random
import sys
from collections import deque
from collections.abc import Callable, Collection, Iterable
from typing import TYPE_CHECKING, Any, NamedTuple, NoReturn

from ._auth import (
    Accept,
    AnonymousAuthenticator,
    AuthChallenge,
    Authenticator,
    AuthOutcome,
    Deny,
    HelloInfo,
    Pending,
)
from ._broker import Broker, HistoryRule, Subscription, _check_rule, get_events
from ._dealer import (
    LIMIT_ERROR,
    AuthorizationDeferred,
    Dealer,
    PendingCall,
    Registration,
    _at_limit,
)
from ._errors import LocalProtocolError, RemoteProtocolError
from ._ids import MAX_ID, IdSource, SequentialIds, random_id
from ._messages import (
    Abort,
    Authenticate,
    Call,
    Cancel,
    Challenge,
    Error,
    Goodbye,
    Hello,
    Message,
    MessageType,
    Publish,
    Register,
    Result,
    Subscribe,
    Unregister,
    Unsubscribe,
    Welcome,
    Yield,
)
from ._serializers import SerializationError, Serializer, get_serializer
from ._uri import CloseReason, ErrorURI, MatchPolicy, is_valid_uri

if TYPE_CHECKING:
    from ._authz import Authorizer, Decision
    from ._meta import MetaApi

__all__ = [
    "ROUTER_ROLES",
    "TRANSITIONS",
    "Delivery",
    "ProcedureHandler",
    "Realm",
    "Router",
    "RouterObserver",
    "RouterSession",
    "SessionState",
    "Timer",
]

_VERSION = "0.1.0"

ROUTER_ROLES: dict[str, dict[str, Any]] = {
    "broker": {
        "features": {
            "pattern_based_subscription": True,
            "publisher_exclusion": True,
            "publisher_identification": True,
            "subscriber_blackwhite_listing": True,
            "payload_passthru_mode": True,
            "publication_trustlevels": True,
            "event_retention": True,
            "event_history": True,
            "subscription_revocation": True,
            "session_meta_api": True,
            "subscription_meta_api": True,
        }
    },
    "dealer": {
        "features": {
            "call_canceling": True,
            "payload_passthru_mode": True,
            "call_reroute": True,
            "call_timeout": True,
            "call_trustlevels": True,
            "caller_identification": True,
            "pattern_based_registration": True,
            "progressive_call_invocations": True,
            "progressive_call_results": True,
            "registration_revocation": True,
            "shared_registration": True,
            "session_meta_api": True,
            "registration_meta_api": True,
            "testament_meta_api": True,
        }
    },
}
"""Roles and features the router announces in WELCOME."""

CLIENT_ROLE_NAMES = frozenset({"publisher", "subscriber", "caller", "callee"})


class SessionState(enum.Enum):
    """States of a session slot on the router side."""

    CLOSED = "CLOSED"
    CHALLENGING = "CHALLENGING"
    ESTABLISHED = "ESTABLISHED"
    SHUTTING_DOWN = "SHUTTING_DOWN"
    FAILED = "FAILED"
    DETACHED = "DETACHED"

    # Members are singletons compared by identity: hashing by identity keeps
    # that consistent and avoids Enum's Python-level __hash__ in dict lookups.
    __hash__ = object.__hash__


_S = SessionState
_T = MessageType
# Looking a member up on an Enum class costs an attribute search each time.
_ESTABLISHED = SessionState.ESTABLISHED
_FAILED = SessionState.FAILED
_DETACHED = SessionState.DETACHED

TRANSITIONS: dict[tuple[SessionState, MessageType], str] = {
    (_S.CLOSED, _T.HELLO): "_on_hello",
    # BP/sessions.md: ABORT is never answered, not even before HELLO (a client's
    # ABORT may cross the router's own ABORT of its HELLO).
    (_S.CLOSED, _T.ABORT): "_ignore",
    (_S.CHALLENGING, _T.AUTHENTICATE): "_on_authenticate",
    (_S.CHALLENGING, _T.ABORT): "_on_abort",
    (_S.ESTABLISHED, _T.GOODBYE): "_on_goodbye",
    (_S.ESTABLISHED, _T.ABORT): "_on_abort",
    (_S.ESTABLISHED, _T.ERROR): "_on_error",
    (_S.ESTABLISHED, _T.PUBLISH): "_on_publish",
    (_S.ESTABLISHED, _T.SUBSCRIBE): "_on_subscribe",
    (_S.ESTABLISHED, _T.UNSUBSCRIBE): "_on_unsubscribe",
    (_S.ESTABLISHED, _T.CALL): "_on_call",
    (_S.ESTABLISHED, _T.CANCEL): "_on_cancel",
    (_S.ESTABLISHED, _T.REGISTER): "_on_register",
    (_S.ESTABLISHED, _T.UNREGISTER): "_on_unregister",
    (_S.ESTABLISHED, _T.YIELD): "_on_yield",
    # BP/sessions.md: once GOODBYE is sent, all but the GOODBYE reply is ignored.
    **{(_S.SHUTTING_DOWN, t): "_ignore" for t in _T if t not in (_T.GOODBYE, _T.ABORT)},
    (_S.SHUTTING_DOWN, _T.GOODBYE): "_on_goodbye_reply",
    (_S.SHUTTING_DOWN, _T.ABORT): "_on_goodbye_reply",
}
"""(state, incoming message type) -> handler name. Absent pairs are violations."""

# Requests whose IDs must be sequential (BP/building_blocks.md, "IDs").
_SEQUENTIAL = frozenset(
    {_T.SUBSCRIBE, _T.UNSUBSCRIBE, _T.PUBLISH, _T.REGISTER, _T.UNREGISTER, _T.CALL}
)
# Held behind a request whose authorization is pending, to keep the session's
# requests in order. YIELD and ERROR are not (they answer other sessions' calls,
# perhaps the authorizer's own), nor GOODBYE and ABORT (which drop what is held).
_HELD = _SEQUENTIAL | {_T.CANCEL}


ProcedureHandler = Callable[
    ["RouterSession", Call], "tuple[list[Any] | None, dict[str, Any] | None]"
]
"""A procedure the router itself provides (the meta API, event history ...):
called with the calling session and its CALL, it returns the result's
``(args, kwargs)`` or raises ``ProcedureError``."""


class Timer:
    """A callback scheduled with ``Router.call_at``; ``cancel()`` stops it."""

    __slots__ = ("callback", "cancelled", "when")

    def __init__(self, when: float, callback: Callable[[], None]) -> None:
        self.when = when
        self.callback = callback
        self.cancelled = False

    def cancel(self) -> None:
        """Do not run the callback."""
        self.cancelled = True
        self.callback = _nothing  # what it holds (a call, its payload) can go


def _nothing() -> None:
    pass


def _without_meta_features(roles: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    from ._meta import META_FEATURES  # noqa: PLC0415  (_meta imports this module)

    return {
        role: {
            **details,
            "features": {
                name: flag
                for name, flag in details.get("features", {}).items()
                if name not in META_FEATURES.get(role, {})
            },
        }
        for role, details in roles.items()
    }


class RouterObserver:
    """Base class for code that follows the router's state (the meta API does).

    Add an instance to ``Router.observers``; override what you need. Calls are
    synchronous and come in the spec's order (AP/ap_rpc_registration_meta_api.md:
    create before register, unregister before delete). ``session_left`` comes
    after the session's subscriptions and registrations were removed, while its
    identity (``session_id``, ``realm``, ``authid`` ...) is still set.
    """

    def session_joined(self, session: RouterSession) -> None:
        """A session was established (WELCOME sent)."""

    def session_left(self, session: RouterSession) -> None:
        """An established session ended (GOODBYE, ABORT, violation, detach, kill)."""

    def subscription_created(self, session: RouterSession, subscription: Subscription) -> None:
        """``session``'s SUBSCRIBE created a new subscription."""

    def subscribed(self, session: RouterSession, subscription: Subscription) -> None:
        """``session`` was added to ``subscription``."""

    def unsubscribed(self, session: RouterSession, subscription: Subscription) -> None:
        """``session`` was removed from ``subscription``."""

    def subscription_deleted(self, session: RouterSession, subscription: Subscription) -> None:
        """``subscription`` lost its last subscriber (``session``) and is gone."""

    def registration_created(self, session: RouterSession, registration: Registration) -> None:
        """``session``'s REGISTER created a new registration."""

    def registered(self, session: RouterSession, registration: Registration) -> None:
        """``session`` was added to ``registration``'s callees."""

    def unregistered(self, session: RouterSession, registration: Registration) -> None:
        """``session`` was removed from ``registration``'s callees."""

    def registration_deleted(self, session: RouterSession, registration: Registration) -> None:
        """``registration`` lost its last callee (``session``) and is gone."""

    def limit_reached(self, session: RouterSession, limit: str, message: str) -> None:
        """A resource limit refused ``session``'s request: ``limit`` is the option's
        name (``"max_sessions"``, ``"max_realms"``, ``"max_pending_calls"``,
        ``"max_testaments"`` ...), ``message`` the text the peer was sent. Called
        before the refusal is queued; for a HELLO, ``session`` has no identity."""


_new_tuple = tuple.__new__  # Delivery(...) without its Python-level __new__

_NO_ORPHANS: dict[int, None] = {}  # RouterSession._orphans while empty; never written to


class Delivery(NamedTuple):
    """Output of the router: ``data`` for ``session``'s transport, or None to
    close that transport once everything queued before has been written.

    ``type`` is the type of the message ``data`` encodes (None for a close),
    so that an adapter's slow-consumer policy can tell an EVENT, which may be
    dropped, from a RESULT or INVOCATION, which must not be.
    """

    session: RouterSession
    data: bytes | None
    type: MessageType | None = None


class RouterSession:
    """One transport connection on the router, and the WAMP session it carries.

    The identity fields (``session_id``, ``realm``, ``authid``, ...) are set
    while a session is established. ``subscriptions`` and ``registrations`` hold
    the session's subscription and registration IDs as the keys of dicts
    (ordered sets). Created by ``Router.attach()``.
    """

    __slots__ = (
        "__weakref__",
        "_auth",
        "_decided",
        "_forgotten",
        "_held",
        "_orphans",
        "_sink",
        "_waiting",
        "authextra",
        "authid",
        "authmethod",
        "authprovider",
        "authrole",
        "calls",
        "invocations",
        "last_request",
        "next_invocation",
        "realm",
        "registrations",
        "roles",
        "serializer",
        "session_id",
        "state",
        "subscriptions",
        "transport",
        "trustlevel",
    )

    def __init__(self, serializer: Serializer, transport: dict[str, Any]) -> None:
        self.serializer = serializer
        self.transport = transport
        self.state = SessionState.CLOSED
        self._auth: tuple[HelloInfo, AuthChallenge | Pending[AuthOutcome]] | None = None
        # Set for the router's internal sessions: takes what would be sent.
        self._sink: Callable[[Message], None] | None = None
        self._reset()

    def _reset(self) -> None:
        self.session_id = 0
        self.realm: Realm | None = None
        self.authid = ""
        self.authrole = ""
        self.authmethod = ""
        self.authprovider = ""
        self.authextra: dict[str, Any] = {}
        self.trustlevel: int | None = None
        self.roles: dict[str, Any] = {}
        self.last_request = 0
        self.next_invocation = SequentialIds()
        # IDs as the keys of dicts (ordered sets): an empty dict is 64 bytes, an
        # empty set 216, and most sessions have no subscription or registration.
        self.subscriptions: dict[int, None] = {}
        self.registrations: dict[int, None] = {}
        self.calls: dict[int, PendingCall] = {}
        self.invocations: dict[int, PendingCall] = {}
        # IDs of invocations whose caller no longer waits, oldest first (a
        # shared empty dict while there is none), and the highest ID of those
        # forgotten since (see Dealer._orphan).
        self._orphans = _NO_ORPHANS
        self._forgotten = 0
        # Requests held while an authorization is pending (the first is the one
        # that waits; its request ID was checked), the Pending it waits for,
        # and the decisions already known for the request run again.
        self._held: deque[tuple[Message, bool]] | None = None
        self._waiting: Pending[Decision] | None = None
        self._decided: dict[tuple[str, str, str], Decision | None] = {}

    def __repr__(self) -> str:
        return f"<RouterSession {self.state.name} id={self.session_id} realm={self.realm_name!r}>"

    @property
    def realm_name(self) -> str | None:
        """Name of the realm the session joined, if any."""
        return None if self.realm is None else self.realm.name

    def has_feature(self, role: str, feature: str) -> bool:
        """Tell whether the client announced ``roles.<role>.features.<feature>``."""
        role_details = self.roles.get(role)
        if not isinstance(role_details, dict):
            return False
        features = role_details.get("features")
        return isinstance(features, dict) and features.get(feature) is True


class Realm:
    """A routing and administrative domain: its sessions, broker and dealer."""

    def __init__(self, name: str, router: Router, rng: random.Random) -> None:
        self.name = name
        self.auto_created = False
        """Created by a HELLO (``auto_create_realms``): removed once it is empty
        (see ``Router.max_realms``). ``Router.add_realm`` makes it permanent."""
        self.sessions: dict[int, RouterSession] = {}
        self.broker = Broker(
            router,
            event_history=router.event_history,
            retained_supplements=router.retained_supplements,
            retained_topic_limit=router.retained_topic_limit,
        )
        self.dealer = Dealer(router, rng)


_ROLES_SHARED = 64
"""How many distinct HELLO roles announcements a router keeps one copy of."""

_TIMERS_COMPACTED = 64
"""The smallest timer heap that is compacted (see ``Router.call_at``)."""


def _limit(name: str, value: int | None) -> int | None:
    """``value`` if it is a valid resource limit: a positive int or None."""
    if value is not None and (type(value) is not int or value < 1):
        raise ValueError(f"{name} must be a positive integer or None, not {value!r}")
    return value


class Router:
    """A WAMP router (Basic Profile and the message-level Advanced features), sans-IO.

    ``realms`` are created up front; with ``auto_create_realms`` a HELLO for an
    unknown realm creates it, otherwise it is refused with ABORT
    ``wamp.error.no_such_realm``. ``authenticator`` decides who may join
    (default: anonymous sessions); ``authorizer`` decides what each session may
    do (``RoleBasedAuthorizer``, ``DynamicAuthorizer``, ``ProcedureAuthorizer``;
    None: everything).
    ``id_source`` draws global IDs (sessions,
    publications) and router IDs; ``rng`` serves the ``random`` invocation
    policy. ``strict_request_ids`` enforces BP/building_blocks.md's sequential
    request IDs (a violation ends the session); turn it off for old clients
    that draw request IDs at random. ``meta_api`` turns the WAMP meta API
    (``wamp.session.*``, ``wamp.registration.*``, ``wamp.subscription.*``,
    testaments) on or off. ``now`` is the initial clock (see ``tick``).
    ``event_history`` lists ``HistoryRule(uri, match, limit)``s: the last
    ``limit`` publications on matching topics are kept for
    ``wamp.subscription.get_events`` (AP/ap_pubsub_event_history.md).
    ``retained_supplements`` and ``retained_topic_limit`` bound event retention
    (see ``Broker.retained``).

    Resource limits (each a positive int, or None for no limit; also attributes
    of the same names, which may be changed later). A request beyond one is
    refused with ``wamp.error.not_authorized`` and a message naming the limit:

    * ``max_sessions``: sessions of the whole router, counted from HELLO on
      (authenticating or established); one more HELLO gets ABORT.
    * ``max_sessions_per_realm``: the same for each realm.
    * ``max_pending_calls``: CALLs of one session waiting for their RESULT or
      ERROR; one more gets ERROR and the session stays. The chunks of a
      progressive call invocation are one call. It also bounds what the dealer
      remembers of calls that are over (see ``DEFAULT_CALL_RECORDS``).
    * ``max_subscriptions``, ``max_registrations``: per session; one more
      SUBSCRIBE (to a subscription the session does not hold yet) or REGISTER
      gets ERROR.
    * ``max_realms``: realms of the router; a HELLO that would auto-create one
      more gets ABORT ``wamp.error.no_such_realm``. An auto-created realm is
      removed when its last session leaves, unless it holds retained events
      or event history (or ``add_realm`` or ``call_procedure`` adopted it).

    Each refusal is also told to the observers (``RouterObserver.limit_reached``).

    ``table_sizes()`` shows how full the per-session and per-call tables are.
    """

    def __init__(
        self,
        realms: Iterable[str] = (),
        *,
        auto_create_realms: bool = False,
        authenticator: Authenticator | None = None,
        authorizer: Authorizer | None = None,
        id_source: IdSource = random_id,
        rng: random.Random | None = None,
        strict_request_ids: bool = True,
        agent: str = f"wamp-core-{_VERSION}",
        roles: dict[str, dict[str, Any]] | None = None,
        now: float = 0.0,
        meta_api: bool = True,
        event_history: Iterable[HistoryRule | tuple[str, MatchPolicy, int]] = (),
        retained_supplements: int = 1,
        retained_topic_limit: int | None = None,
        max_sessions: int | None = None,
        max_sessions_per_realm: int | None = None,
        max_pending_calls: int | None = None,
        max_subscriptions: int | None = None,
        max_registrations: int | None = None,
        max_realms: int | None = None,
    ) -> None:
        self.max_sessions = _limit("max_sessions", max_sessions)
        self.max_sessions_per_realm = _limit("max_sessions_per_realm", max_sessions_per_realm)
        self.max_pending_calls = max_pending_calls
        self.max_subscriptions = _limit("max_subscriptions", max_subscriptions)
        self.max_registrations = _limit("max_registrations", max_registrations)
        self.max_realms = _limit("max_realms", max_realms)
        self.auto_create_realms = auto_create_realms
        self.authenticator: Authenticator = authenticator or AnonymousAuthenticator()
        self._new_id = id_source
        self._rng = rng or random.Random()
        self.strict_request_ids = strict_request_ids
        self.max_held_requests = 1000
        """A session whose requests wait behind a pending authorization may have
        this many more waiting; one more ends it (GOODBYE ``wamp.close.killed``)."""
        self.agent = agent
        if roles is None:
            roles = ROUTER_ROLES if meta_api else _without_meta_features(ROUTER_ROLES)
        self.roles = roles
        self.realms: dict[str, Realm] = {}
        self._sessions: dict[int, RouterSession] = {}  # established, by session ID
        self._attached: dict[RouterSession, None] = {}
        # Sessions from HELLO to WELCOME (authenticating), with their realm's
        # name, and how many there are per realm: they count for the limits.
        self._joining: dict[RouterSession, str] = {}
        self._joining_in: dict[str, int] = {}
        # HELLO.Details.roles seen so far, by repr: sessions announcing the same
        # roles (clients of one library) share one copy.
        self._roles_seen: dict[str, dict[str, Any]] = {}
        self._out: list[Delivery] = []
        # TRANSITIONS with each handler name bound (a subclass's override included).
        self._handlers: dict[tuple[SessionState, MessageType], Callable[[RouterSession, Any], None]]
        self._handlers = {key: getattr(self, name) for key, name in TRANSITIONS.items()}
        self.closing: str | None = None
        """The reason given to ``shutdown()``, once it was called."""
        self.now = now
        """The current time (seconds since the epoch), as last given to ``tick()``."""
        self._timers: list[tuple[float, int, Timer]] = []
        self._timer_order = itertools.count()
        # Cancelled timers stay in the heap until due: it is compacted when it
        # reaches this size, so that they are at most about half of it.
        self._compact_timers_at = _TIMERS_COMPACTED
        self._internal: dict[str, _InternalCaller] = {}  # by realm name
        self.procedures: dict[str, ProcedureHandler] = {
            "wamp.subscription.get_events": get_events,
        }
        """Procedures the router provides itself, by URI (see ``add_procedure``)."""
        self.event_history = [_check_rule(rule) for rule in event_history]
        """Event history rules every realm's broker starts with."""
        self.retained_supplements = retained_supplements
        self.retained_topic_limit = retained_topic_limit
        self.observers: list[RouterObserver] = []
        """Told about sessions, subscriptions and registrations as they come and go
        (the meta API is one); see ``RouterObserver``."""
        self.meta: MetaApi | None = None
        """The meta API (sessions, registrations, subscriptions, testaments), when on."""
        if meta_api:
            from ._meta import MetaApi  # noqa: PLC0415  (_meta imports this module)

            self.meta = MetaApi(self).install()
        self.authorizer: Authorizer | None = authorizer
        """Decides what established sessions may do (``RoleBasedAuthorizer``,
        ``DynamicAuthorizer``); None allows everything and discloses identities on
        request."""
        if isinstance(authorizer, RouterObserver):
            # After the meta API: a leaving session's testaments are authorized
            # before a DynamicAuthorizer forgets the session.
            self.observers.append(authorizer)
        for name in realms:
            self.add_realm(name)

    @property
    def max_pending_calls(self) -> int | None:
        """CALLs one session may have waiting for their answer (None: no limit)."""
        return self._max_pending_calls

    @max_pending_calls.setter
    def max_pending_calls(self, value: int | None) -> None:
        self._max_pending_calls = _limit("max_pending_calls", value)
        # What the dealer compares with on every CALL: always an int.
        self._call_limit = sys.maxsize if value is None else value

    # -- realms and sessions -----------------------------------------------------

    def add_realm(self, name: str) -> Realm:
        """Create realm ``name`` (or return the existing one). It stays for the
        router's life, even one that a HELLO created (``auto_create_realms``)."""
        if not is_valid_uri(name):
            raise LocalProtocolError(f"invalid realm name {name!r}", ErrorURI.INVALID_URI)
        realm = self.realms.get(name)
        if realm is None:
            realm = self.realms[name] = Realm(name, self, self._rng)
        realm.auto_created = False
        return realm

    def _drop_realm(self, realm: Realm) -> None:
        """Remove ``realm``, auto-created and left by its last session, unless it
        holds what a later session could see: retained events, event history.
        (A realm the router calls in, ``call_procedure``, was made permanent.)"""
        broker = realm.broker
        if broker.retained or any(history.events for _, _, history in broker._history or ()):
            return
        del self.realms[realm.name]

    def attach(
        self, serializer: Serializer, transport: dict[str, Any] | None = None
    ) -> RouterSession:
        """Register a new transport connection speaking ``serializer``."""
        session = RouterSession(serializer, transport or {})
        self._attached[session] = None
        return session

    def detach(self, session: RouterSession) -> None:
        """The transport is gone: end its session and forget it. Idempotent."""
        if session.state is SessionState.DETACHED:
            return
        self._leave(session)
        session.state = SessionState.DETACHED
        del self._attached[session]
        # Output still queued for a transport that is gone goes nowhere.
        self._out = [d for d in self._out if d.session is not session]

    @property
    def sessions(self) -> dict[int, RouterSession]:
        """Established sessions of every realm, by session ID."""
        return self._sessions

    @property
    def attached(self) -> Collection[RouterSession]:
        """Every attached transport connection."""
        return self._attached.keys()

    def table_sizes(self) -> dict[str, int]:
        """How many entries each table holding per-session or per-call state has.

        Every value is 0 once every transport was detached, whatever the sessions
        did; a value that stays above 0 is state left behind. The keys:

        ``attached`` (transports), ``sessions`` (established, by ID),
        ``realm_sessions`` (the realms' sessions), ``joining`` (sessions from
        HELLO to WELCOME), ``joining_realms`` (realms with such sessions),
        ``pending_authentications`` (sessions waiting for AUTHENTICATE or the
        authenticator), ``subscriptions``, ``subscription_patterns`` (the
        brokers' lookup tables), ``subscribers`` (over all subscriptions),
        ``session_subscriptions`` (over all sessions), ``registrations``,
        ``registration_patterns``, ``callees``, ``callee_options``
        (``disclose_caller`` and ``forward_timeout`` callees),
        ``session_registrations``, ``calls`` (waiting callers' calls),
        ``invocations`` (sent to callees, answer awaited), ``orphaned_invocations``
        (the caller gave up, the callee did not answer yet),
        ``ended_progressive_calls`` (remembered to drop late chunks),
        ``held_requests`` (waiting behind a pending authorization),
        ``waiting_authorizations``, ``authorization_decisions``, ``router_calls``
        (the router's own calls, ``call_procedure``), ``timers`` (neither run
        nor cancelled: call timeouts and authentication deadlines, and your
        own ``call_at`` timers), ``testaments``.

        Not counted, as they are no per-session state: realms, procedures,
        retained events and event history (bounded by their options), and the
        cache of HELLO roles announcements (at most 64 distinct ones, kept
        after the sessions left).
        """
        realms = self.realms.values()
        sessions = [*self._attached, *(caller.session for caller in self._internal.values())]
        subscriptions = [s for realm in realms for s in realm.broker.subscriptions.values()]
        registrations = [r for realm in realms for r in realm.dealer.registrations.values()]
        testaments = () if self.meta is None else self.meta.testaments.values()
        return {
            "attached": len(self._attached),
            "sessions": len(self._sessions),
            "realm_sessions": sum(len(realm.sessions) for realm in realms),
            "joining": len(self._joining),
            "joining_realms": len(self._joining_in),
            "pending_authentications": sum(s._auth is not None for s in sessions),
            "subscriptions": len(subscriptions),
            "subscription_patterns": sum(len(realm.broker._table) for realm in realms),
            "subscribers": sum(len(s.subscribers) for s in subscriptions),
            "session_subscriptions": sum(len(s.subscriptions) for s in sessions),
            "registrations": len(registrations),
            "registration_patterns": sum(len(realm.dealer._table) for realm in realms),
            "callees": sum(len(r.callees) for r in registrations),
            "callee_options": sum(
                len(r.disclose_caller) + len(r.forward_timeout) for r in registrations
            ),
            "session_registrations": sum(len(s.registrations) for s in sessions),
            "calls": sum(len(s.calls) for s in sessions),
            "invocations": sum(len(s.invocations) for s in sessions),
            "orphaned_invocations": sum(len(s._orphans) for s in sessions),
            "ended_progressive_calls": sum(
                len(ended) for realm in realms for ended in realm.dealer._ended.values()
            ),
            "held_requests": sum(len(s._held or ()) for s in sessions),
            "waiting_authorizations": sum(s._waiting is not None for s in sessions),
            "authorization_decisions": sum(len(s._decided) for s in sessions),
            "router_calls": sum(len(caller.replies) for caller in self._internal.values()),
            "timers": sum(not timer.cancelled for _, _, timer in self._timers),
            "testaments": sum(len(t) for by_scope in testaments for t in by_scope.values()),
        }

    def new_global_id(self) -> int:
        """A fresh random global-scope ID (BP/building_blocks.md)."""
        return self._new_id()

    def new_router_id(self, taken: Collection[int]) -> int:
        """A fresh router-scope ID not in ``taken``."""
        while True:
            new = self._new_id()
            if new not in taken:
                return new

    # -- time ----------------------------------------------------------------------

    def tick(self, now: float) -> None:
        """Advance the router's clock to ``now`` and run every timer that is due.

        The core never reads a clock: the adapter calls ``tick(time.time())``
        before feeding input and whenever ``next_deadline()`` has passed. ``now``
        is wall-clock time (seconds since the epoch), which also stamps what the
        router records (event history, meta API ``created``).
        """
        self.now = now
        timers = self._timers
        while timers and timers[0][0] <= now:
            _, _, timer = heapq.heappop(timers)
            if not timer.cancelled:
                timer.callback()

    def next_deadline(self) -> float | None:
        """When the next timer is due (for the adapter's sleep), or None."""
        timers = self._timers
        while timers and timers[0][2].cancelled:
            heapq.heappop(timers)
        return timers[0][0] if timers else None

    def call_at(self, when: float, callback: Callable[[], None]) -> Timer:
        """Run ``callback`` at the first ``tick()`` at or after ``when``."""
        timer = Timer(when, callback)
        timers = self._timers
        if len(timers) >= self._compact_timers_at:
            # In place: tick() may be running over this very list.
            timers[:] = [entry for entry in timers if not entry[2].cancelled]
            heapq.heapify(timers)
            self._compact_timers_at = max(_TIMERS_COMPACTED, 2 * len(timers))
        heapq.heappush(timers, (when, next(self._timer_order), timer))
        return timer

    # -- router-provided procedures --------------------------------------------------

    def add_procedure(self, uri: str, handler: ProcedureHandler) -> None:
        """Provide procedure ``uri`` from the router itself (for every realm).

        A CALL to it is answered by ``handler`` directly; no callee can register
        it. Meant for the ``wamp.`` meta procedures.
        """
        if not is_valid_uri(uri):
            raise LocalProtocolError(f"invalid procedure URI {uri!r}", ErrorURI.INVALID_URI)
        self.procedures[uri] = handler

    def call_procedure(
        self,
        realm: str,
        procedure: str,
        on_reply: Callable[[Result | Error], None],
        *,
        args: list[Any] | None = None,
        kwargs: dict[str, Any] | None = None,
        options: dict[str, Any] | None = None,
    ) -> Callable[[], None]:
        """CALL ``procedure`` in ``realm`` from the router itself.

        The call goes through the realm's dealer like any other, from an
        internal session (authid ``router``, authrole ``trusted``: an
        authorizer must let that role call ``procedure``) that belongs to no
        transport and is in no session list. ``on_reply`` gets the RESULT or
        ERROR (possibly before this returns, e.g. ``no_such_procedure``).
        ``realm`` is created as by ``add_realm`` if needed, and stays.
        Returns a function that cancels the call (``killnowait``);
        ``on_reply`` is then not called any more.
        """
        caller = self._internal.get(realm)
        if caller is None:
            caller = self._internal[realm] = _InternalCaller(self, self.add_realm(realm))
        return caller.call(procedure, args, kwargs, on_reply, options or {})

    # -- output ------------------------------------------------------------------

    def data_to_send(self) -> list[Delivery]:
        """Take everything queued for every transport, in order."""
        out, self._out = self._out, []
        return out

    def _emit(self, session: RouterSession, message: Message) -> bool:
        if session._sink is not None:
            session._sink(message)
            return True
        try:
            data = session.serializer.encode(message)
        except SerializationError:
            return False
        self._out.append(_new_tuple(Delivery, (session, data, message.type)))
        return True

    def send(self, session: RouterSession, message: Message) -> bool:
        """Queue ``message`` for an established session.

        Returns False when it was not queued: the session is no longer
        established, or the message cannot be encoded with its serializer.
        """
        if session.state is not _ESTABLISHED:
            return False
        return self._emit(session, message)

    def send_all(self, sessions: Iterable[RouterSession], message: Message) -> None:
        """Queue ``message`` for each established session of ``sessions``, as
        ``send`` does (a fan-out: encoded once per serializer). A subclass that
        overrides ``send`` has it called for each session instead."""
        if type(self).send is not Router.send:
            for session in sessions:
                self.send(session, message)
            return
        out = self._out
        new = _new_tuple
        message_type = message.type
        encoded: dict[Serializer, bytes | None] = {}
        for session in sessions:
            if session.state is not _ESTABLISHED:
                continue
            if session._sink is not None:
                session._sink(message)
                continue
            serializer = session.serializer
            if serializer in encoded:
                data = encoded[serializer]
            else:
                try:
                    data = serializer.encode(message)
                except SerializationError:
                    data = None
                encoded[serializer] = data
            if data is not None:
                out.append(new(Delivery, (session, data, message_type)))

    def send_error(
        self,
        session: RouterSession,
        request_type: MessageType,
        request: int,
        error: str,
        message: str | None = None,
    ) -> None:
        """Answer a request with ERROR ``error``; ``message`` goes in Args[0]."""
        self.send(
            session, Error(request_type, request, {}, error, None if message is None else [message])
        )

    # -- input -------------------------------------------------------------------

    def receive_data(self, session: RouterSession, data: bytes) -> None:
        """Process one transport message from ``session``.

        Raises ``RemoteProtocolError`` after a protocol violation (ABORT and a
        close are queued for that session; nothing else is affected), and
        ``LocalProtocolError`` for a detached session. Input for a session that
        already failed is ignored.
        """
        state = session.state
        if state is _FAILED:
            return
        if state is _DETACHED:
            raise LocalProtocolError("the session is detached")
        try:
            messages = session.serializer.decode(data)
        except RemoteProtocolError as exc:
            self.fail(session, exc.message)
        for message in messages:
            self.receive_message(session, message)

    def receive_message(self, session: RouterSession, message: Message) -> None:
        """Process one decoded message from ``session`` (see ``receive_data``)."""
        state = session.state
        message_type = message.type
        handler = self._handlers.get((state, message_type))
        if handler is None:
            # FAILED and DETACHED accept no message at all.
            if state is _FAILED:
                return
            if state is _DETACHED:
                raise LocalProtocolError("the session is detached")
            self.fail(session, f"{message_type.name} is not allowed in state {state.name}")
        held = session._held
        if held is not None and message_type in _HELD:
            if len(held) > self.max_held_requests:  # the first is the one that waits
                self.close_session(
                    session, CloseReason.KILLED, "too many requests waiting for authorization"
                )
                return
            held.append((message, False))
            return
        self._check_request(session, message)
        self._handle(session, handler, message)

    def _check_request(self, session: RouterSession, message: Message) -> None:
        # Only requests that are processed are checked: in SHUTTING_DOWN a request
        # that crossed our GOODBYE is ignored (BP/sessions.md), whatever its ID.
        # A CALL that continues one of the session's calls reuses that call's ID
        # and is no new request (AP/ap_rpc_progressive_call_invocations.md,
        # "Verification of CALL Request IDs"); the dealer tells.
        if (
            message.type in _SEQUENTIAL
            and session.state is _ESTABLISHED
            and not (
                isinstance(message, Call)
                and self._realm(session).dealer.continues_call(session, message.request)
            )
        ):
            self._check_request_id(session, message.request)  # type: ignore[attr-defined]

    def _handle(
        self,
        session: RouterSession,
        handler: Callable[[RouterSession, Any], None],
        message: Message,
    ) -> None:
        try:
            handler(session, message)
        except AuthorizationDeferred as wait:
            self._defer(session, message, wait)
            return
        if session._decided:
            session._decided.clear()

    # -- authorization that comes later ------------------------------------------------

    def _defer(self, session: RouterSession, message: Message, wait: AuthorizationDeferred) -> None:
        """Hold ``message`` (at the head of the session's held requests) until
        the authorizer's pending decision comes (wamp_core._authz)."""
        held = session._held
        if held is None:
            held = session._held = deque()
        held.appendleft((message, True))
        pending = wait.pending
        session._waiting = pending
        pending._bind(lambda decision: self._authorized(session, wait.key, pending, decision))

    def _authorized(
        self,
        session: RouterSession,
        key: tuple[str, str, str],
        pending: Pending[Decision],
        decision: Decision,
    ) -> None:
        # The router cancels the Pending when the session leaves, so a decision
        # always finds the session waiting for this one.
        assert session._waiting is pending
        held = session._held
        assert held is not None
        session._waiting = None
        session._decided[key] = decision
        try:
            # Run the held requests in order until one waits again, or the
            # session ends (it failed, or a request ended it).
            while held and session._held is held and session._waiting is None:
                message, checked = held.popleft()
                if not checked:
                    self._check_request(session, message)
                self._handle(session, self._handlers[(_ESTABLISHED, message.type)], message)
        except RemoteProtocolError:
            return  # the session failed: ABORT and close are queued, its state is gone
        if session._held is held and not held:
            session._held = None

    def _check_request_id(self, session: RouterSession, request: int) -> None:
        expected = 1 if session.last_request >= MAX_ID else session.last_request + 1
        if request != expected and self.strict_request_ids:
            self.fail(session, f"request ID {request} is not sequential (expected {expected})")
        session.last_request = request

    def fail(self, session: RouterSession, text: str) -> NoReturn:
        """Handle a protocol violation by ``session`` (BP/building_blocks.md,
        "Protocol Errors"): ABORT, drop its state, close its transport, raise."""
        self._emit(session, Abort({"message": text}, ErrorURI.PROTOCOL_VIOLATION))
        self._out.append(Delivery(session, None))
        self._leave(session)
        session.state = SessionState.FAILED
        raise RemoteProtocolError(text)

    def _leave(self, session: RouterSession) -> None:
        """End the session's membership of its realm and clean every table."""
        state = session.state
        session.state = SessionState.CLOSED
        self._unjoin(session)
        auth, session._auth = session._auth, None
        if auth is not None and isinstance(auth[1], Pending):
            auth[1].cancel()  # nobody waits for the outcome any more
        if session._waiting is not None:
            session._waiting.cancel()  # nor for an authorization
        if state is SessionState.ESTABLISHED:
            realm = self._realm(session)
            realm.broker.remove_session(session)
            realm.dealer.remove_session(session)
            del realm.sessions[session.session_id]
            del self._sessions[session.session_id]
            for observer in self.observers:
                observer.session_left(session)
            # After the observers: testaments may retain events in the realm.
            if realm.auto_created and not realm.sessions:
                self._drop_realm(realm)
        session._reset()

    def _ignore(self, session: RouterSession, message: Message) -> None:
        pass

    # -- session establishment -----------------------------------------------------

    def _on_hello(self, session: RouterSession, message: Hello) -> None:
        roles = message.details.get("roles")
        if (
            not isinstance(roles, dict)
            or not roles
            or not all(
                name in CLIENT_ROLE_NAMES and isinstance(v, dict) for name, v in roles.items()
            )
        ):
            self.fail(session, "HELLO.Details.roles must map client roles to dicts")
        if self.closing is not None:
            self._refuse(session, self.closing, "the router is shutting down")
            return
        if not is_valid_uri(message.realm):
            self._refuse(session, ErrorURI.INVALID_URI, f"invalid realm URI {message.realm!r}")
            return
        if message.realm not in self.realms:
            if not self.auto_create_realms:
                self._refuse(session, ErrorURI.NO_SUCH_REALM, f"no realm {message.realm!r}")
                return
            if self._no_room_for(session, message.realm):
                return
        full = self._full(message.realm)
        if full is not None:
            self.limit_reached(session, *full)
            self._refuse(session, LIMIT_ERROR, full[1])
            return
        self._joining[session] = message.realm
        self._joining_in[message.realm] = self._joining_in.get(message.realm, 0) + 1
        session_id = self.new_router_id(self._sessions)
        info = HelloInfo(message.realm, message.details, session_id, session.transport, self.now)
        session.roles = self._shared_roles(roles)
        self._outcome(session, info, self.authenticator.hello(info))

    def _full(self, realm: str) -> tuple[str, str] | None:
        """The limit that keeps one more session out of ``realm``, and the
        message saying so; None when there is room."""
        limit = self.max_sessions
        if limit is not None and len(self._sessions) + len(self._joining) >= limit:
            return "max_sessions", _at_limit("the router", limit, "sessions")
        limit = self.max_sessions_per_realm
        if limit is not None:
            joined = self.realms[realm].sessions if realm in self.realms else ()
            if len(joined) + self._joining_in.get(realm, 0) >= limit:
                return "max_sessions_per_realm", _at_limit(f"realm {realm!r}", limit, "sessions")
        return None

    def _no_room_for(self, session: RouterSession, realm: str) -> bool:
        """Refuse ``session`` (ABORT ``no_such_realm``) and return True when
        auto-creating ``realm`` would pass ``max_realms``."""
        limit = self.max_realms
        if limit is None or len(self.realms) < limit:
            return False
        text = f"no realm {realm!r}, and {_at_limit('the router', limit, 'realms')}"
        self.limit_reached(session, "max_realms", text)
        self._refuse(session, ErrorURI.NO_SUCH_REALM, text)
        return True

    def limit_reached(self, session: RouterSession, limit: str, message: str) -> None:
        """Tell the observers that ``limit`` refused ``session``'s request with
        ``message`` (see ``RouterObserver.limit_reached``)."""
        for observer in self.observers:
            observer.limit_reached(session, limit, message)

    def _unjoin(self, session: RouterSession) -> None:
        """``session`` no longer joins: it was welcomed, or it left."""
        realm = self._joining.pop(session, None)
        if realm is not None:
            left = self._joining_in[realm] - 1
            if left:
                self._joining_in[realm] = left
            else:
                del self._joining_in[realm]

    def _shared_roles(self, roles: dict[str, Any]) -> dict[str, Any]:
        """An equal roles dict seen before, else ``roles`` (remembered while fewer
        than ``_ROLES_SHARED`` distinct ones were seen). Read-only afterwards."""
        key = repr(roles)  # equal reprs: equal values of the same types
        shared = self._roles_seen.get(key)
        if shared is not None:
            return shared
        if len(self._roles_seen) < _ROLES_SHARED:
            self._roles_seen[key] = roles
        return roles

    def _on_authenticate(self, session: RouterSession, message: Authenticate) -> None:
        assert session._auth is not None
        info, challenge = session._auth
        if isinstance(challenge, Pending):
            self.fail(session, "AUTHENTICATE while no CHALLENGE is outstanding")
        info = dataclasses.replace(info, now=self.now)  # the time of this AUTHENTICATE
        outcome = self.authenticator.authenticate(info, challenge, message.signature, message.extra)
        self._outcome(session, info, outcome)

    def _outcome(
        self, session: RouterSession, info: HelloInfo, outcome: AuthOutcome | Pending[AuthOutcome]
    ) -> None:
        if isinstance(outcome, Pending):
            session.state = SessionState.CHALLENGING
            session._auth = (info, outcome)
            outcome._bind(lambda result: self._resolved(session, info, outcome, result))
        elif isinstance(outcome, AuthChallenge):
            session.state = SessionState.CHALLENGING
            session._auth = (info, outcome)
            if not self._emit(session, Challenge(outcome.authmethod, outcome.extra)):
                self._refuse(
                    session, ErrorURI.AUTHENTICATION_FAILED, "the CHALLENGE cannot be encoded"
                )
        elif isinstance(outcome, Deny):
            self._refuse(session, outcome.reason, outcome.message)
        else:
            self._welcome(session, info, outcome)

    def _resolved(
        self,
        session: RouterSession,
        info: HelloInfo,
        pending: Pending[AuthOutcome],
        outcome: AuthOutcome,
    ) -> None:
        # The router cancels the Pending whenever the session stops waiting for
        # it, so a resolution always finds the session waiting for this one.
        assert session._auth is not None
        assert session._auth[1] is pending
        session._auth = None
        self._outcome(session, info, outcome)

    def _refuse(self, session: RouterSession, reason: str, text: str | None) -> None:
        self._emit(session, Abort({} if text is None else {"message": text}, reason))
        self._leave(session)

    def _welcome(self, session: RouterSession, info: HelloInfo, accept: Accept) -> None:
        # Checked at HELLO too; other realms may have been made meanwhile (or this
        # one removed) while the session authenticated.
        if info.realm not in self.realms and self._no_room_for(session, info.realm):
            return
        self._unjoin(session)
        if info.session_id in self._sessions:  # taken while the challenge was out
            info = HelloInfo(
                info.realm,
                info.details,
                self.new_router_id(self._sessions),
                info.transport,
                info.now,
            )
        roles = session.roles
        session._reset()
        session._auth = None
        realm = self.realms.get(info.realm)
        if realm is None:
            realm = self.add_realm(info.realm)
            realm.auto_created = True
        session.state = SessionState.ESTABLISHED
        session.session_id = info.session_id
        session.realm = realm
        session.roles = roles
        session.authid = accept.authid
        session.authrole = accept.authrole
        session.authmethod = accept.authmethod
        session.authprovider = accept.authprovider
        session.authextra = accept.authextra
        realm.sessions[session.session_id] = session
        self._sessions[session.session_id] = session
        session.trustlevel = accept.trustlevel
        details: dict[str, Any] = {
            "realm": realm.name,
            "roles": self.roles,
            "authid": accept.authid,
            "authrole": accept.authrole,
            "authmethod": accept.authmethod,
            "authprovider": accept.authprovider,
            "agent": self.agent,
        }
        if accept.authextra:
            details["authextra"] = accept.authextra
        if not self._emit(session, Welcome(session.session_id, details)):
            self._refuse(session, ErrorURI.AUTHENTICATION_FAILED, "the WELCOME cannot be encoded")
            return
        for observer in self.observers:
            observer.session_joined(session)

    # -- closing ---------------------------------------------------------------------

    def _on_goodbye(self, session: RouterSession, message: Goodbye) -> None:
        self._leave(session)
        # BP/sessions.md: GOODBYE MUST be echoed.
        self._emit(session, Goodbye({}, CloseReason.GOODBYE_AND_OUT))

    def _on_goodbye_reply(self, session: RouterSession, message: Goodbye) -> None:
        session.state = SessionState.CLOSED

    def _on_abort(self, session: RouterSession, message: Abort) -> None:
        self._leave(session)  # ABORT is never answered

    def close_session(
        self,
        session: RouterSession,
        reason: str = CloseReason.KILLED,
        message: str | None = None,
    ) -> None:
        """End an established session from the router side: GOODBYE ``reason``.

        Its subscriptions and registrations go at once; the session then waits
        in SHUTTING_DOWN for the client's GOODBYE. Other states are left alone.
        """
        if session.state is not SessionState.ESTABLISHED:
            return
        self._emit(session, Goodbye({} if message is None else {"message": message}, reason))
        self._leave(session)
        session.state = SessionState.SHUTTING_DOWN

    def shutdown(
        self, reason: str = CloseReason.SYSTEM_SHUTDOWN, message: str | None = None
    ) -> None:
        """Close every established session with GOODBYE ``reason``; sessions still
        authenticating get ABORT ``reason``, and so does every later HELLO."""
        self.closing = reason
        for session in list(self._attached):
            if session.state is SessionState.CHALLENGING:  # or waiting for Pending
                self._refuse(session, reason, message)
            else:
                self.close_session(session, reason, message)

    # -- requests ---------------------------------------------------------------------

    @staticmethod
    def _realm(session: RouterSession) -> Realm:
        assert session.realm is not None
        return session.realm

    def _on_error(self, session: RouterSession, message: Error) -> None:
        if message.request_type != _T.INVOCATION:
            self.fail(
                session,
                f"a client may send ERROR only for INVOCATION, not type {message.request_type}",
            )
        self._realm(session).dealer.error(session, message)

    def _on_publish(self, session: RouterSession, message: Publish) -> None:
        self._realm(session).broker.publish(session, message)

    def _on_subscribe(self, session: RouterSession, message: Subscribe) -> None:
        self._realm(session).broker.subscribe(session, message)

    def _on_unsubscribe(self, session: RouterSession, message: Unsubscribe) -> None:
        self._realm(session).broker.unsubscribe(session, message)

    def _on_call(self, session: RouterSession, message: Call) -> None:
        self._realm(session).dealer.call(session, message)

    def _on_cancel(self, session: RouterSession, message: Cancel) -> None:
        self._realm(session).dealer.cancel(session, message)

    def _on_register(self, session: RouterSession, message: Register) -> None:
        self._realm(session).dealer.register(session, message)

    def _on_unregister(self, session: RouterSession, message: Unregister) -> None:
        self._realm(session).dealer.unregister(session, message)

    def _on_yield(self, session: RouterSession, message: Yield) -> None:
        self._realm(session).dealer.yield_(session, message)


class _InternalCaller:
    """The router's own session in one realm, making calls for the router."""

    def __init__(self, router: Router, realm: Realm) -> None:
        self.router = router
        session = self.session = RouterSession(get_serializer("json"), {"type": "internal"})
        session.state = SessionState.ESTABLISHED
        session.session_id = router.new_router_id(router.sessions)
        session.realm = realm
        session.authid = "router"
        session.authrole = "trusted"
        session.authmethod = "internal"
        session.authprovider = "router"
        session.roles = {"caller": {"features": {"call_canceling": True}}}
        session._sink = self._receive
        self.requests = SequentialIds()
        self.replies: dict[int, Callable[[Result | Error], None]] = {}

    def call(
        self,
        procedure: str,
        args: list[Any] | None,
        kwargs: dict[str, Any] | None,
        on_reply: Callable[[Result | Error], None],
        options: dict[str, Any],
    ) -> Callable[[], None]:
        request = self.requests()
        self.replies[request] = on_reply
        dealer = self.router._realm(self.session).dealer
        dealer.call(self.session, Call(request, options, procedure, args, kwargs))

        def cancel() -> None:
            if self.replies.pop(request, None) is not None:
                dealer.cancel(self.session, Cancel(request, {"mode": "killnowait"}))

        return cancel

    def _receive(self, message: Message) -> None:
        # Only RESULT and ERROR come: the session never registers or subscribes,
        # and asks for no progressive results.
        assert isinstance(message, Result | Error)
        on_reply = self.replies.pop(message.request, None)
        if on_reply is not None:
            on_reply(message)
