"""The WAMP meta API and testaments, sans-IO, attached to a ``Router``.

* Session meta API (AP/ap_session_meta_api.md): ``wamp.session.count``,
  ``list``, ``get``, ``kill``, ``kill_by_authid``, ``kill_by_authrole``,
  ``kill_all``; events ``wamp.session.on_join`` and ``on_leave``.
* Registration meta API (AP/ap_rpc_registration_meta_api.md) and subscription
  meta API (AP/ap_pubsub_subscription_meta_api.md): ``list``, ``lookup``,
  ``match``, ``get``, ``list_callees`` / ``list_subscribers``,
  ``count_callees`` / ``count_subscribers``; events ``on_create``,
  ``on_register`` / ``on_subscribe``, ``on_unregister`` / ``on_unsubscribe``,
  ``on_delete``. (``wamp.subscription.get_events`` belongs to the broker.)
* Testaments (AP/ap_pubsub_testament.md): ``wamp.session.add_testament`` and
  ``wamp.session.flush_testaments``.

Usage::

    MetaApi(router).install()   # observer + router-provided procedures

Everything is scoped to a realm: a procedure answers about the caller's realm,
and an event goes to the realm of the session that caused it. Meta events are
published by the router itself: no publisher identity, delivered to every
subscriber whose subscription matches (pattern subscriptions get
``Details.topic``). Arguments of the wrong type, a wrong number of positional
arguments and unknown keyword arguments are refused with
``wamp.error.invalid_argument``.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable
from datetime import datetime, timezone
from typing import Any, NamedTuple, cast

from ._broker import Subscription
from ._dealer import LIMIT_ERROR, Registration, _at_limit, authorize, refusal
from ._errors import ProcedureError
from ._messages import Call
from ._router import ProcedureHandler, Realm, Router, RouterObserver, RouterSession
from ._uri import (
    MATCH_POLICIES,
    CloseReason,
    ErrorURI,
    MatchPolicy,
    is_reserved_uri,
    is_valid_uri,
)

__all__ = ["META_FEATURES", "MetaApi", "Testament", "publish_from_router"]

META_FEATURES: dict[str, dict[str, bool]] = {
    # AP/ap_session_meta_api.md: session_meta_api on BOTH broker and dealer.
    "broker": {"session_meta_api": True, "subscription_meta_api": True},
    # AP/ap_pubsub_testament.md: testament_meta_api is announced by dealers.
    "dealer": {
        "session_meta_api": True,
        "registration_meta_api": True,
        "testament_meta_api": True,
    },
}
"""Features to announce in WELCOME while the meta API is installed."""

DEFAULT_KILL_REASON = CloseReason.NORMAL
"""GOODBYE reason of the ``kill*`` procedures when the caller gives none:
AP/ap_session_meta_api.md says ``wamp.close.normal`` (four times)."""

TESTAMENT_SCOPES = ("detached", "destroyed")
"""In publication order: AP/ap_pubsub_testament.md, a router without session
resumption sends ``detached`` testaments before ``destroyed`` ones."""

TRANSPORT_KEYS = ("type", "peer", "tls", "protocol")
"""Keys of ``RouterSession.transport`` shown in ``on_join`` and ``get``. A
whitelist: the adapter's dict may hold HTTP headers, cookies, the WebSocket
request path or a long-poll transport ID, none of which may leak."""

_Result = tuple[list[Any] | None, dict[str, Any] | None]
_CLOSE_KEYWORDS = ("reason", "message")


class Testament(NamedTuple):
    """A publication the router makes when the session that added it goes."""

    topic: str
    args: list[Any] | None
    kwargs: dict[str, Any] | None
    options: dict[str, Any]


def iso8601(timestamp: float) -> str:
    """Router time (seconds since the epoch) as ISO 8601 UTC with milliseconds,
    e.g. ``2024-05-01T12:00:00.000Z`` (the form Autobahn and Crossbar use)."""
    moment = datetime.fromtimestamp(timestamp, timezone.utc)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


# -- publishing from the router ---------------------------------------------------------


def publish_from_router(
    router: Router,
    realm: Realm,
    topic: str,
    args: list[Any] | None = None,
    kwargs: dict[str, Any] | None = None,
    *,
    options: dict[str, Any] | None = None,
    publisher: RouterSession | None = None,
    skip: Collection[RouterSession] = (),
) -> None:
    """Publish an event into ``realm`` from the router itself (no PUBLISH message).

    ``options`` are PUBLISH options; honoured are the black- and whitelists and
    ``disclose_me``, which discloses ``publisher`` (the session a testament
    belongs to) and is ignored without one. Sessions in ``skip`` get nothing.
    An event that cannot be encoded for a subscriber's serializer is not sent
    to it. ``topic`` is not checked: ``wamp.*`` topics are fine here.
    """
    realm.broker.publish_from_router(
        topic, args, kwargs, options=options, publisher=publisher, skip=skip
    )


# -- argument checking ------------------------------------------------------------------


def _invalid(text: str) -> ProcedureError:
    return ProcedureError(ErrorURI.INVALID_ARGUMENT, text)


def _arguments(
    call: Call, required: int, optional: int = 0, keywords: Collection[str] = ()
) -> tuple[list[Any], dict[str, Any]]:
    """The CALL's positional and keyword arguments, after checking their count
    and that every keyword is known."""
    args = call.args or []
    kwargs = call.kwargs or {}
    most = required + optional
    if not required <= len(args) <= most:
        expected = str(required) if optional == 0 else f"{required} to {most}"
        raise _invalid(f"{call.procedure} takes {expected} positional arguments, got {len(args)}")
    unknown = sorted(set(kwargs) - set(keywords))
    if unknown:
        raise _invalid(f"{call.procedure} takes no keyword argument {unknown[0]!r}")
    return args, kwargs


def _id(value: Any, what: str) -> int:
    if type(value) is not int:  # bool is not an ID
        raise _invalid(f"{what} must be an integer ID, got {type(value).__name__}")
    return value


def _string(value: Any, what: str) -> str:
    if type(value) is not str:
        raise _invalid(f"{what} must be a string, got {type(value).__name__}")
    return value


def _authroles(args: list[Any]) -> set[str] | None:
    """``filter_authroles|list[string]``, optional (null counts as absent)."""
    value = args[0] if args else None
    if value is None:
        return None
    if not isinstance(value, list) or not all(type(role) is str for role in value):
        raise _invalid("filter_authroles must be a list of strings")
    return set(value)


def _close_options(kwargs: dict[str, Any]) -> tuple[str, str | None]:
    """The ``reason`` and ``message`` keywords of the kill procedures."""
    reason = kwargs.get("reason")
    if reason is None:
        reason = DEFAULT_KILL_REASON
    elif not is_valid_uri(reason):
        # AP/ap_session_meta_api.md: "a value that is not a valid non-empty URI"
        # -- of any type -- is invalid_uri.
        raise ProcedureError(ErrorURI.INVALID_URI, f"invalid reason URI {reason!r:.200}")
    message = kwargs.get("message")
    if message is not None and type(message) is not str:
        raise _invalid(f"message must be a string, got {type(message).__name__}")
    return reason, message


def _scope(kwargs: dict[str, Any]) -> str:
    scope = kwargs.get("scope")
    if scope is None:
        return "destroyed"  # AP/ap_pubsub_testament.md: the default MUST be destroyed
    if scope not in TESTAMENT_SCOPES:
        raise _invalid(f"scope must be 'detached' or 'destroyed', got {scope!r:.200}")
    return str(scope)


def _optional_dict(value: Any, what: str) -> dict[str, Any] | None:
    if value is None or isinstance(value, dict):
        return value
    raise _invalid(f"{what} must be a dict, got {type(value).__name__}")


def _realm(session: RouterSession) -> Realm:
    assert session.realm is not None
    return session.realm


def _by_policy(items: Iterable[Subscription | Registration]) -> dict[str, list[int]]:
    """IDs grouped by match policy: ``{"exact": [...], "prefix": [...], "wildcard": [...]}``."""
    lists: dict[str, list[int]] = {policy: [] for policy in MATCH_POLICIES}
    for item in items:
        lists[item.match].append(item.id)
    return lists


def _lookup_match(args: list[Any]) -> MatchPolicy:
    """The match policy of ``lookup``'s optional ``options`` (as in SUBSCRIBE/REGISTER)."""
    options = _optional_dict(args[1] if len(args) > 1 else None, "options") or {}
    match = options.get("match", "exact")
    if match not in MATCH_POLICIES:
        raise _invalid(f"unknown match policy {match!r:.200}")
    return cast(MatchPolicy, match)


# -- the meta API -------------------------------------------------------------------------


class MetaApi(RouterObserver):
    """The meta procedures and meta events of a router, for all its realms.

    ``install()`` adds it to ``router.observers`` and provides the procedures
    with ``router.add_procedure``. Testaments live here, per session, until the
    session goes (``testaments``).
    """

    transport_keys: tuple[str, ...] = TRANSPORT_KEYS
    """Which ``RouterSession.transport`` entries ``on_join`` and ``get`` show."""

    max_testaments: int = 100
    """Testaments one session may have (both scopes together); one more is
    refused with ``wamp.error.not_authorized``."""

    def __init__(self, router: Router) -> None:
        self.router = router
        self.testaments: dict[RouterSession, dict[str, list[Testament]]] = {}
        """Testaments by session, then by scope (absent when there are none)."""
        self._doomed: set[RouterSession] = set()  # being killed by the current call
        self._quiet = False  # kill_all is running

    def install(self) -> MetaApi:
        """Attach to the router: observe it and provide the meta procedures."""
        router = self.router
        if self not in router.observers:
            router.observers.append(self)
        for uri, handler in self.procedures().items():
            router.add_procedure(uri, self._guard(handler))
        return self

    def procedures(self) -> dict[str, Callable[[RouterSession, Call], _Result]]:
        """The meta procedures by URI (unguarded; see ``allows``)."""
        return {
            "wamp.session.count": self._session_count,
            "wamp.session.list": self._session_list,
            "wamp.session.get": self._session_get,
            "wamp.session.kill": self._session_kill,
            "wamp.session.kill_by_authid": self._session_kill_by_authid,
            "wamp.session.kill_by_authrole": self._session_kill_by_authrole,
            "wamp.session.kill_all": self._session_kill_all,
            "wamp.session.add_testament": self._add_testament,
            "wamp.session.flush_testaments": self._flush_testaments,
            "wamp.registration.list": self._registration_list,
            "wamp.registration.lookup": self._registration_lookup,
            "wamp.registration.match": self._registration_match,
            "wamp.registration.get": self._registration_get,
            "wamp.registration.list_callees": self._registration_list_callees,
            "wamp.registration.count_callees": self._registration_count_callees,
            "wamp.subscription.list": self._subscription_list,
            "wamp.subscription.lookup": self._subscription_lookup,
            "wamp.subscription.match": self._subscription_match,
            "wamp.subscription.get": self._subscription_get,
            "wamp.subscription.list_subscribers": self._subscription_list_subscribers,
            "wamp.subscription.count_subscribers": self._subscription_count_subscribers,
        }

    def allows(self, session: RouterSession, procedure: str) -> bool:
        """Whether ``session`` may call meta procedure ``procedure``.

        The authorization hook: everybody may, for now. Override it to restrict
        (a refusal is ERROR ``wamp.error.not_authorized``). Who may *subscribe*
        to meta topics is decided at SUBSCRIBE, by the broker.
        """
        return True

    def _guard(self, handler: Callable[[RouterSession, Call], _Result]) -> ProcedureHandler:
        def guarded(session: RouterSession, call: Call) -> _Result:
            if not self.allows(session, call.procedure):
                raise ProcedureError(
                    ErrorURI.NOT_AUTHORIZED, f"not authorized to call {call.procedure}"
                )
            return handler(session, call)

        return guarded

    # -- details ------------------------------------------------------------------------

    def session_details(self, session: RouterSession) -> dict[str, Any]:
        """The ``on_join`` / ``get`` dict (AP/ap_session_meta_api.md); ``transport``
        holds the whitelisted transport facts and is left out when there are none."""
        details: dict[str, Any] = {
            "session": session.session_id,
            "authid": session.authid,
            "authrole": session.authrole,
            "authmethod": session.authmethod,
            "authprovider": session.authprovider,
        }
        transport = {k: session.transport[k] for k in self.transport_keys if k in session.transport}
        if transport:
            details["transport"] = transport
        return details

    @staticmethod
    def registration_details(registration: Registration) -> dict[str, Any]:
        """``RegistrationDetails`` (AP/ap_rpc_registration_meta_api.md)."""
        return {
            "id": registration.id,
            "created": iso8601(registration.created),
            "uri": registration.uri,
            "match": registration.match,
            "invoke": registration.invoke,
        }

    @staticmethod
    def subscription_details(subscription: Subscription) -> dict[str, Any]:
        """``SubscriptionDetails`` (AP/ap_pubsub_subscription_meta_api.md)."""
        return {
            "id": subscription.id,
            "created": iso8601(subscription.created),
            "uri": subscription.uri,
            "match": subscription.match,
        }

    # -- meta events ----------------------------------------------------------------------

    def _publish(self, session: RouterSession, topic: str, args: list[Any]) -> None:
        """A meta event into ``session``'s realm. None while the router shuts
        down: every receiver is being closed too (the reason AP/ap_session_meta_api.md
        gives for kill_all), and it would make shutdown quadratic."""
        if self.router.closing is None:
            publish_from_router(self.router, _realm(session), topic, args, skip=self._doomed)

    def session_joined(self, session: RouterSession) -> None:
        """``wamp.session.on_join(details)``."""
        self._publish(session, "wamp.session.on_join", [self.session_details(session)])

    def session_left(self, session: RouterSession) -> None:
        """Testaments (detached, then destroyed), then ``wamp.session.on_leave``.

        Without session resumption a session is detached and destroyed at once,
        so both scopes fire whenever it goes (GOODBYE, ABORT, violation, lost
        transport, kill). AP/ap_session_meta_api.md: kill_all generates neither
        session meta events nor testament events.
        """
        stored = self.testaments.pop(session, None)
        if self._quiet or self.router.closing is not None:
            return
        if stored:
            realm = _realm(session)
            for scope in TESTAMENT_SCOPES:
                for testament in stored.get(scope, ()):
                    publish_from_router(
                        self.router, realm, testament.topic, testament.args,
                        testament.kwargs, options=testament.options,
                        publisher=session, skip=self._doomed,
                    )  # fmt: skip
        self._publish(
            session,
            "wamp.session.on_leave",
            [session.session_id, session.authid, session.authrole],
        )

    def subscription_created(self, session: RouterSession, subscription: Subscription) -> None:
        """``wamp.subscription.on_create(session, SubscriptionDetails)``."""
        details = self.subscription_details(subscription)
        self._publish(session, "wamp.subscription.on_create", [session.session_id, details])

    def subscribed(self, session: RouterSession, subscription: Subscription) -> None:
        """``wamp.subscription.on_subscribe(session, subscription)``."""
        args = [session.session_id, subscription.id]
        self._publish(session, "wamp.subscription.on_subscribe", args)

    def unsubscribed(self, session: RouterSession, subscription: Subscription) -> None:
        """``wamp.subscription.on_unsubscribe(session, subscription)``."""
        args = [session.session_id, subscription.id]
        self._publish(session, "wamp.subscription.on_unsubscribe", args)

    def subscription_deleted(self, session: RouterSession, subscription: Subscription) -> None:
        """``wamp.subscription.on_delete(session, subscription)``."""
        self._publish(session, "wamp.subscription.on_delete", [session.session_id, subscription.id])

    def registration_created(self, session: RouterSession, registration: Registration) -> None:
        """``wamp.registration.on_create(session, RegistrationDetails)``."""
        details = self.registration_details(registration)
        self._publish(session, "wamp.registration.on_create", [session.session_id, details])

    def registered(self, session: RouterSession, registration: Registration) -> None:
        """``wamp.registration.on_register(session, registration)``."""
        args = [session.session_id, registration.id]
        self._publish(session, "wamp.registration.on_register", args)

    def unregistered(self, session: RouterSession, registration: Registration) -> None:
        """``wamp.registration.on_unregister(session, registration)``."""
        args = [session.session_id, registration.id]
        self._publish(session, "wamp.registration.on_unregister", args)

    def registration_deleted(self, session: RouterSession, registration: Registration) -> None:
        """``wamp.registration.on_delete(session, registration)``."""
        args = [session.session_id, registration.id]
        self._publish(session, "wamp.registration.on_delete", args)

    # -- session procedures ---------------------------------------------------------------

    @staticmethod
    def _sessions(caller: RouterSession, call: Call) -> list[RouterSession]:
        """The sessions of the caller's realm (the caller included), in join
        order, filtered by the optional ``filter_authroles``."""
        args, _ = _arguments(call, 0, 1)
        roles = _authroles(args)
        sessions = _realm(caller).sessions.values()
        return [s for s in sessions if roles is None or s.authrole in roles]

    def _session_count(self, caller: RouterSession, call: Call) -> _Result:
        return [len(self._sessions(caller, call))], None

    def _session_list(self, caller: RouterSession, call: Call) -> _Result:
        return [[s.session_id for s in self._sessions(caller, call)]], None

    def _session_get(self, caller: RouterSession, call: Call) -> _Result:
        args, _ = _arguments(call, 1)
        session_id = _id(args[0], "session")
        session = _realm(caller).sessions.get(session_id)
        if session is None:
            raise ProcedureError(ErrorURI.NO_SUCH_SESSION, f"no session {session_id}")
        return [self.session_details(session)], None

    def _kill(
        self, victims: list[RouterSession], reason: str, message: str | None, quiet: bool = False
    ) -> None:
        """GOODBYE to each victim. Victims of the same call get no events about
        each other (they are about to go), and none at all with ``quiet``."""
        self._doomed.update(victims)
        self._quiet = quiet
        try:
            for victim in victims:
                self.router.close_session(victim, reason, message)
        finally:
            self._doomed.clear()
            self._quiet = False

    def _session_kill(self, caller: RouterSession, call: Call) -> _Result:
        args, kwargs = _arguments(call, 1, 0, _CLOSE_KEYWORDS)
        session_id = _id(args[0], "session")
        reason, message = _close_options(kwargs)  # reported before an unknown session
        victim = _realm(caller).sessions.get(session_id)
        if victim is None or victim is caller:
            # AP/ap_session_meta_api.md: the caller's own ID is no_such_session,
            # "since no _other_ session with that ID exists".
            raise ProcedureError(ErrorURI.NO_SUCH_SESSION, f"no other session {session_id}")
        self._kill([victim], reason, message)
        return None, None

    def _session_kill_by_authid(self, caller: RouterSession, call: Call) -> _Result:
        args, kwargs = _arguments(call, 1, 0, _CLOSE_KEYWORDS)
        authid = _string(args[0], "authid")
        reason, message = _close_options(kwargs)
        victims = [
            s for s in _realm(caller).sessions.values() if s.authid == authid and s is not caller
        ]
        killed = [s.session_id for s in victims]  # taken before a closed session forgets it
        self._kill(victims, reason, message)
        # The list of killed session IDs, as the spec's WAMP IDL section, its
        # FlatBuffers schema, Crossbar and CppWAMP have it; the procedure's own
        # section says count|int.
        return [killed], None

    def _session_kill_by_authrole(self, caller: RouterSession, call: Call) -> _Result:
        args, kwargs = _arguments(call, 1, 0, _CLOSE_KEYWORDS)
        authrole = _string(args[0], "authrole")
        reason, message = _close_options(kwargs)
        victims = [
            s
            for s in _realm(caller).sessions.values()
            if s.authrole == authrole and s is not caller
        ]
        self._kill(victims, reason, message)
        return [len(victims)], None

    def _session_kill_all(self, caller: RouterSession, call: Call) -> _Result:
        _, kwargs = _arguments(call, 0, 0, _CLOSE_KEYWORDS)
        reason, message = _close_options(kwargs)
        victims = [s for s in _realm(caller).sessions.values() if s is not caller]
        self._kill(victims, reason, message, quiet=True)
        return [len(victims)], None

    # -- testaments -------------------------------------------------------------------------

    def _add_testament(self, caller: RouterSession, call: Call) -> _Result:
        """``add_testament(topic, args?, kwargs?; publish_options?, scope?)``, no result."""
        args, kwargs = _arguments(call, 1, 2, ("publish_options", "scope"))
        topic = _string(args[0], "topic")
        if not is_valid_uri(topic) or is_reserved_uri(topic):
            raise ProcedureError(ErrorURI.INVALID_URI, f"invalid topic URI {topic!r:.200}")
        payload_args = args[1] if len(args) > 1 else None
        if payload_args is not None and not isinstance(payload_args, list):
            raise _invalid(f"args must be a list, got {type(payload_args).__name__}")
        payload_kwargs = _optional_dict(args[2] if len(args) > 2 else None, "kwargs")
        options = _optional_dict(kwargs.get("publish_options"), "publish_options") or {}
        scope = _scope(kwargs)
        # AP/ap_pubsub_testament.md: options that make no sense for a testament
        # may be ignored. acknowledge (nobody to answer) and exclude_me (the
        # session is gone) are dropped; disclose_me discloses the session.
        options = {k: v for k, v in options.items() if k not in ("acknowledge", "exclude_me")}
        # Authorized now, for an early answer, and again when it fires (the
        # policy may change meanwhile; see Broker.publish_from_router).
        refused = refusal(
            authorize(self.router, caller, topic, "publish", options),
            "publish",
            topic,
            options.get("disclose_me") is True,
        )
        if refused is not None:
            raise ProcedureError(*refused)
        stored = self.testaments.get(caller, {})
        if sum(len(testaments) for testaments in stored.values()) >= self.max_testaments:
            text = _at_limit("the session", self.max_testaments, "testaments")
            self.router.limit_reached(caller, "max_testaments", text)
            raise ProcedureError(LIMIT_ERROR, text)
        testament = Testament(topic, payload_args, payload_kwargs, options)
        self.testaments.setdefault(caller, {}).setdefault(scope, []).append(testament)
        return None, None

    def _flush_testaments(self, caller: RouterSession, call: Call) -> _Result:
        """``flush_testaments(; scope?)``: no result (AP/ap_pubsub_testament.md; the
        FlatBuffers schema's count is not followed)."""
        _, kwargs = _arguments(call, 0, 0, ("scope",))
        scope = _scope(kwargs)
        stored = self.testaments.get(caller)
        if stored is not None:
            stored.pop(scope, None)
            if not stored:
                del self.testaments[caller]
        return None, None

    # -- registration procedures ----------------------------------------------------------

    @staticmethod
    def _registration(caller: RouterSession, call: Call) -> Registration:
        args, _ = _arguments(call, 1)
        registration_id = _id(args[0], "registration")
        registration = _realm(caller).dealer.registrations.get(registration_id)
        if registration is None:
            raise ProcedureError(
                ErrorURI.NO_SUCH_REGISTRATION, f"no registration {registration_id}"
            )
        return registration

    def _registration_list(self, caller: RouterSession, call: Call) -> _Result:
        _arguments(call, 0)
        return [_by_policy(_realm(caller).dealer.registrations.values())], None

    def _registration_lookup(self, caller: RouterSession, call: Call) -> _Result:
        args, _ = _arguments(call, 1, 1)
        procedure = _string(args[0], "procedure")
        found = _realm(caller).dealer._table.get(procedure, _lookup_match(args))
        return [None if found is None else found.id], None

    def _registration_match(self, caller: RouterSession, call: Call) -> _Result:
        """The registration a CALL to the URI would reach: none for an invalid
        URI or for a procedure the router provides itself."""
        args, _ = _arguments(call, 1)
        procedure = _string(args[0], "procedure")
        if not is_valid_uri(procedure) or procedure in self.router.procedures:
            return [None], None
        found = _realm(caller).dealer._table.best(procedure)
        return [None if found is None else found.id], None

    def _registration_get(self, caller: RouterSession, call: Call) -> _Result:
        return [self.registration_details(self._registration(caller, call))], None

    def _registration_list_callees(self, caller: RouterSession, call: Call) -> _Result:
        return [[s.session_id for s in self._registration(caller, call).callees]], None

    def _registration_count_callees(self, caller: RouterSession, call: Call) -> _Result:
        return [len(self._registration(caller, call).callees)], None

    # -- subscription procedures ------------------------------------------------------------

    @staticmethod
    def _subscription(caller: RouterSession, call: Call) -> Subscription:
        args, _ = _arguments(call, 1)
        subscription_id = _id(args[0], "subscription")
        subscription = _realm(caller).broker.subscriptions.get(subscription_id)
        if subscription is None:
            raise ProcedureError(
                ErrorURI.NO_SUCH_SUBSCRIPTION, f"no subscription {subscription_id}"
            )
        return subscription

    def _subscription_list(self, caller: RouterSession, call: Call) -> _Result:
        _arguments(call, 0)
        return [_by_policy(_realm(caller).broker.subscriptions.values())], None

    def _subscription_lookup(self, caller: RouterSession, call: Call) -> _Result:
        args, _ = _arguments(call, 1, 1)
        topic = _string(args[0], "topic")
        found = _realm(caller).broker._table.get(topic, _lookup_match(args))
        return [None if found is None else found.id], None

    def _subscription_match(self, caller: RouterSession, call: Call) -> _Result:
        """Every subscription an event on the topic reaches, or null for none
        (AP/ap_pubsub_subscription_meta_api.md: "a list ..., or null")."""
        args, _ = _arguments(call, 1)
        topic = _string(args[0], "topic")
        found = _realm(caller).broker._table.matching(topic) if is_valid_uri(topic) else []
        return [[s.id for s in found] or None], None

    def _subscription_get(self, caller: RouterSession, call: Call) -> _Result:
        return [self.subscription_details(self._subscription(caller, call))], None

    def _subscription_list_subscribers(self, caller: RouterSession, call: Call) -> _Result:
        return [[s.session_id for s in self._subscription(caller, call).subscribers]], None

    def _subscription_count_subscribers(self, caller: RouterSession, call: Call) -> _Result:
        return [len(self._subscription(caller, call).subscribers)], None
