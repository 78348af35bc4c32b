"""The broker: Publish & Subscribe inside one realm (BP/publish_subscribe.md).

Also the PubSub features of the Advanced Profile:

* pattern-based subscriptions (AP/ap_pubsub_pattern_based_subscription.md);
* publisher exclusion and identification (AP/ap_pubsub_publisher_exclusion.md,
  AP/ap_pubsub_publisher_identification.md);
* subscriber black- and whitelisting (AP/ap_pubsub_subscriber_blackwhite_listing.md);
* publication trust levels (AP/ap_pubsub_publication_trustlevels.md): the
  publisher's ``RouterSession.trustlevel`` goes into ``EVENT.Details.trustlevel``;
* event retention (AP/ap_pubsub_event_retention.md), see ``Broker.retained``;
* event history (AP/ap_pubsub_event_history.md), see ``HistoryRule`` and
  ``get_events``, the handler of ``wamp.subscription.get_events``;
* subscription revocation (AP/ap_pubsub_subscription_revocation.md), see
  ``Broker.revoke``;
* payload passthru mode (AP/payload_passthru_mode.md): the ``ppt_*`` options
  of a PUBLISH go into ``EVENT.Details``.

The publish path stays as cheap as plain PubSub when a publication asks for no
retention, matches no history rule and carries no black- or whitelist.
"""

from __future__ import annotations

import copy
import operator
import re
from collections import deque
from collections.abc import Callable, Collection, Iterable
from datetime import datetime, timedelta, timezone
from itertools import count
from typing import TYPE_CHECKING, Any, NamedTuple

from ._dealer import (
    LIMIT_ERROR,
    AuthorizationDeferred,
    _at_limit,
    authorize,
    check_ppt_announced,
    ppt_options,
    ppt_problem,
    refusal,
)
from ._errors import LocalProtocolError, ProcedureError
from ._ids import is_id
from ._messages import (
    Call,
    Event,
    MessageType,
    Publish,
    Published,
    Subscribe,
    Subscribed,
    Unsubscribe,
)
from ._messages import Unsubscribed as UnsubscribedMessage
from ._uri import (
    MATCH_POLICIES,
    ErrorURI,
    MatchPolicy,
    PatternMap,
    is_reserved_uri,
    is_valid_uri,
    wildcard_matches,
)

if TYPE_CHECKING:
    from ._authz import Decision
    from ._router import Router, RouterSession

__all__ = [
    "HISTORY_UNAVAILABLE",
    "Broker",
    "HistoryAccess",
    "HistoryRule",
    "Subscription",
    "format_timestamp",
    "get_events",
    "parse_timestamp",
]

_T = MessageType

HISTORY_UNAVAILABLE = "wamp.error.history_unavailable"
"""ERROR of ``wamp.subscription.get_events`` for a subscription no history rule
covers. Not in the spec; the URI Crossbar.io uses for the same case."""


class Subscription:
    """One subscription: a (topic, match policy) pair and its subscribers.

    BP/publish_subscribe.md: every session subscribing to the same topic with
    the same policy gets the same subscription ID.
    """

    __slots__ = ("created", "id", "match", "subscribers", "uri")

    def __init__(
        self, subscription_id: int, uri: str, match: MatchPolicy, created: float = 0.0
    ) -> None:
        self.id = subscription_id
        self.uri = uri
        self.match = match
        self.created = created
        """Router time (``Router.now``) when the subscription was created."""
        # insertion-ordered set
        self.subscribers: dict[RouterSession, None] = {}


def _id_list(value: object) -> set[int | str] | None:
    """A black/white list option as a set (None when absent or not a list)."""
    if not isinstance(value, list):
        return None
    return {item for item in value if type(item) in (int, str)}  # not bools


def _topic_matches(uri: str, match: MatchPolicy, topic: str) -> bool:
    """Tell whether ``topic`` matches the subscription pattern (``uri``, ``match``)."""
    if match == "exact":
        return topic == uri
    if match == "prefix":
        return topic.startswith(uri)
    return wildcard_matches(uri, topic)


class _Audience:
    """The black- and whitelists of one publication
    (AP/ap_pubsub_subscriber_blackwhite_listing.md); None stands for an absent
    list. An empty ``exclude*`` list is stored as None (it excludes nobody); an
    empty ``eligible*`` list admits nobody."""

    __slots__ = (
        "eligible",
        "eligible_authid",
        "eligible_authrole",
        "exclude",
        "exclude_authid",
        "exclude_authrole",
    )

    def __init__(
        self,
        *,
        exclude: set[int | str] | None,
        exclude_authid: set[int | str] | None,
        exclude_authrole: set[int | str] | None,
        eligible: set[int | str] | None,
        eligible_authid: set[int | str] | None,
        eligible_authrole: set[int | str] | None,
    ) -> None:
        self.exclude = exclude
        self.exclude_authid = exclude_authid
        self.exclude_authrole = exclude_authrole
        self.eligible = eligible
        self.eligible_authid = eligible_authid
        self.eligible_authrole = eligible_authrole

    def admits(self, session: RouterSession) -> bool:
        """Tell whether ``session`` may receive the publication."""
        return (
            (self.eligible is None or session.session_id in self.eligible)
            and (self.eligible_authid is None or session.authid in self.eligible_authid)
            and (self.eligible_authrole is None or session.authrole in self.eligible_authrole)
            and not (self.exclude is not None and session.session_id in self.exclude)
            and not (self.exclude_authid is not None and session.authid in self.exclude_authid)
            and not (
                self.exclude_authrole is not None and session.authrole in self.exclude_authrole
            )
        )

    @property
    def by_session(self) -> bool:
        """Whether a list names session IDs."""
        return self.exclude is not None or self.eligible is not None


_LIST_OPTIONS = frozenset(
    {
        "exclude",
        "exclude_authid",
        "exclude_authrole",
        "eligible",
        "eligible_authid",
        "eligible_authrole",
    }
)


def _audience(options: dict[str, Any]) -> _Audience | None:
    """The publication's black- and whitelists, or None when it has none."""
    exclude = _id_list(options.get("exclude")) or None
    exclude_authid = _id_list(options.get("exclude_authid")) or None
    exclude_authrole = _id_list(options.get("exclude_authrole")) or None
    eligible = _id_list(options.get("eligible"))
    eligible_authid = _id_list(options.get("eligible_authid"))
    eligible_authrole = _id_list(options.get("eligible_authrole"))
    if (
        exclude is None and exclude_authid is None and exclude_authrole is None
        and eligible is None and eligible_authid is None and eligible_authrole is None
    ):  # fmt: skip
        return None
    return _Audience(
        exclude=exclude,
        exclude_authid=exclude_authid,
        exclude_authrole=exclude_authrole,
        eligible=eligible,
        eligible_authid=eligible_authid,
        eligible_authrole=eligible_authrole,
    )


class _Stored:
    """A publication kept for event retention or event history.

    ``details`` are the EVENT details every subscriber gets (publisher
    identity, trust level), without ``topic``; ``publisher`` is the ID of the
    publishing session when it excluded itself (``exclude_me``), else 0;
    ``time`` is router time in whole milliseconds; ``seq`` orders publications
    as the broker received them.
    """

    __slots__ = (
        "args",
        "audience",
        "details",
        "kwargs",
        "publication",
        "publisher",
        "seq",
        "time",
        "topic",
    )

    def __init__(
        self,
        *,
        seq: int,
        time: int,
        publication: int,
        topic: str,
        details: dict[str, Any],
        args: list[Any] | None,
        kwargs: dict[str, Any] | None,
        audience: _Audience | None,
        publisher: int,
    ) -> None:
        self.seq = seq
        self.time = time
        self.publication = publication
        self.topic = topic
        self.details = details
        self.args = args
        self.kwargs = kwargs
        self.audience = audience
        self.publisher = publisher


# -- event history: configuration and timestamps ----------------------------------------


class HistoryRule(NamedTuple):
    """Keep the last ``limit`` events published to topics matching (``uri``,
    ``match``) (AP/ap_pubsub_event_history.md).

    Each rule has its own buffer, filled whether or not anyone is subscribed; an
    event matching several rules goes into each. ``wamp.subscription.get_events``
    answers for a subscription from the rules that *cover* it (every topic the
    subscription matches also matches the rule), so a rule ``("com.app",
    "prefix", 1000)`` serves exact, prefix and wildcard subscriptions inside
    ``com.app``. The limit counts the rule's events, not the subscription's.
    """

    uri: str
    match: MatchPolicy = "exact"
    limit: int = 100


class _History:
    """A history rule and its buffer (oldest first)."""

    __slots__ = ("events", "rule")

    def __init__(self, rule: HistoryRule) -> None:
        self.rule = rule
        self.events: deque[_Stored] = deque(maxlen=rule.limit)


def _check_rule(rule: HistoryRule | tuple[Any, ...]) -> HistoryRule:
    rule = HistoryRule(*rule)
    if rule.match not in MATCH_POLICIES:
        raise LocalProtocolError(
            f"unknown match policy {rule.match!r} in history rule", ErrorURI.INVALID_ARGUMENT
        )
    if not is_valid_uri(rule.uri, rule.match):
        raise LocalProtocolError(
            f"invalid URI {rule.uri!r} for match policy {rule.match!r} in history rule",
            ErrorURI.INVALID_URI,
        )
    if type(rule.limit) is not int or rule.limit < 1:
        raise LocalProtocolError(
            f"history limit must be a positive integer, not {rule.limit!r}",
            ErrorURI.INVALID_ARGUMENT,
        )
    return rule


def _covers(rule: HistoryRule, subscription: Subscription) -> bool:
    """Tell whether every topic ``subscription`` matches also matches ``rule``."""
    uri, match = subscription.uri, subscription.match
    parts = uri.split(".")
    if match == "wildcard" and "" not in parts:
        match = "exact"  # a wildcard pattern without a wildcard matches one topic
    if rule.match == "exact":
        return match == "exact" and uri == rule.uri
    if rule.match == "prefix":
        if match == "wildcard":
            # Topics share the literal components before the first wildcard.
            head = parts[: parts.index("")]
            uri = ".".join([*head, ""])
        return uri.startswith(rule.uri)
    rule_parts = rule.uri.split(".")
    return (
        match != "prefix"
        and len(parts) == len(rule_parts)
        and all(r in ("", p) for r, p in zip(rule_parts, parts))
    )


_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)

# RFC 3339, section 5.6 ("date-time"); T, Z and the fraction as the RFC allows.
_RFC3339 = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt ]([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]+))?"
    r"(?:[Zz]|([+-])([0-9]{2}):([0-9]{2}))\Z"
)


def format_timestamp(milliseconds: int) -> str:
    """Milliseconds since the epoch as RFC 3339 UTC, e.g. ``2026-11-21T10:00:00.123Z``."""
    moment = _EPOCH + timedelta(milliseconds=milliseconds)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_timestamp(text: str) -> int:
    """An RFC 3339 date-time as microseconds since the epoch (digits beyond the
    microsecond are dropped; a leap second 60 counts as the next second's
    start). Raises ValueError when ``text`` is not one."""
    found = _RFC3339.match(text)
    if found is None:
        raise ValueError(f"not an RFC 3339 date-time: {text!r}")
    year, month, day, hour, minute, second = (int(found[i]) for i in range(1, 7))
    leap = second == 60
    moment = datetime(year, month, day, hour, minute, 59 if leap else second, tzinfo=timezone.utc)
    offset = 0
    if found[8] is not None:
        hours, minutes = int(found[9]), int(found[10])
        if hours > 23 or minutes > 59:
            raise ValueError(f"bad UTC offset in {text!r}")
        offset = (hours * 60 + minutes) * 60 * (1 if found[8] == "+" else -1)
    since = moment - _EPOCH
    fraction = int(((found[7] or "") + "000000")[:6])
    return (since.days * 86_400 + since.seconds + leap - offset) * 1_000_000 + fraction


# get_events filters: (from|after|before|until)_(time|publication) -> comparison
_BOUNDS: dict[str, Callable[[int, int], bool]] = {
    "from": operator.ge,
    "after": operator.gt,
    "before": operator.lt,
    "until": operator.le,
}
_GET_EVENTS_KEYWORDS = frozenset(
    {"reverse", "limit", "topic"}
    | {f"{bound}_{kind}" for bound in _BOUNDS for kind in ("time", "publication")}
)

HistoryAccess = Callable[["RouterSession", Subscription], bool]
"""Decides whether a session may read a subscription's event history."""


def _invalid(text: str) -> ProcedureError:
    return ProcedureError(ErrorURI.INVALID_ARGUMENT, text)


class _Query:
    """The checked keyword arguments of ``wamp.subscription.get_events``.

    A keyword given as None counts as absent; an unknown keyword is refused
    (a misspelt filter must not silently widen the answer).
    """

    def __init__(self, kwargs: dict[str, Any]) -> None:
        unknown = sorted(set(kwargs) - _GET_EVENTS_KEYWORDS)
        if unknown:
            raise _invalid(f"wamp.subscription.get_events takes no keyword {unknown[0]!r}")
        reverse = kwargs.get("reverse")
        if reverse is not None and type(reverse) is not bool:
            raise _invalid("reverse must be a boolean")
        self.reverse = reverse is True
        limit = kwargs.get("limit")
        if limit is not None and (type(limit) is not int or limit < 1):
            raise _invalid("limit must be a positive integer")
        self.limit: int | None = limit
        topic = kwargs.get("topic")
        if topic is not None and not is_valid_uri(topic):
            raise _invalid(f"topic must be a URI, not {topic!r}")
        self.topic: str | None = topic
        self.times: list[tuple[Callable[[int, int], bool], int]] = []
        self.publications: list[tuple[Callable[[int, int], bool], int]] = []
        for bound, compare in _BOUNDS.items():
            key = f"{bound}_time"
            value = kwargs.get(key)
            if value is not None:
                if not isinstance(value, str):
                    raise _invalid(f"{key} must be an RFC 3339 date-time string")
                try:
                    self.times.append((compare, parse_timestamp(value)))
                except ValueError as exc:
                    raise _invalid(f"{key}: {exc}") from None
            key = f"{bound}_publication"
            value = kwargs.get(key)
            if value is not None:
                if not is_id(value):
                    raise _invalid(f"{key} must be a publication ID")
                self.publications.append((compare, value))


# -- the broker --------------------------------------------------------------------------


class Broker:
    """Subscriptions and publications of one realm.

    ``event_history`` are the history rules (see ``HistoryRule``;
    ``set_event_history`` replaces them). ``retained_supplements`` and
    ``retained_topic_limit`` bound event retention (see ``retained``).
    """

    def __init__(
        self,
        router: Router,
        *,
        event_history: Iterable[HistoryRule | tuple[Any, ...]] = (),
        retained_supplements: int = 1,
        retained_topic_limit: int | None = None,
    ) -> None:
        self._router = router
        self._table: PatternMap[Subscription] = PatternMap()
        self.subscriptions: dict[int, Subscription] = {}
        """Live subscriptions by ID."""
        self._seq = count()
        self.retained: dict[str, list[_Stored]] = {}
        """Retained events by topic (AP/ap_pubsub_event_retention.md), oldest
        first: the latest retained publication without black- or whitelists,
        then at most ``retained_supplements`` newer ones with lists (the
        spec's "supplemental events that have limited distribution"). A
        retained publication without lists replaces them all. Topics are kept
        in the order they were last retained to."""
        self.retained_supplements = retained_supplements
        """How many retained publications with black- or whitelists to keep per
        topic besides the one without; 0 ignores ``retain`` on such publications."""
        self.retained_topic_limit = retained_topic_limit
        """At most this many topics keep a retained event: beyond it, the topic
        retained to least recently loses its events. None: no limit."""
        self.history_access: HistoryAccess | None = None
        """Who may read a subscription's event history (None: every session of
        the realm); refused callers get ``wamp.error.not_authorized``."""
        self._history: PatternMap[_History] | None = None
        self.set_event_history(event_history)

    # -- subscriptions ---------------------------------------------------------------

    def subscribe(self, session: RouterSession, message: Subscribe) -> None:
        """Handle SUBSCRIBE: SUBSCRIBED, or ERROR invalid_uri / invalid_argument
        (not_authorized beyond ``Router.max_subscriptions``).

        With ``get_retained`` the retained events matching the subscription
        follow SUBSCRIBED (AP/ap_pubsub_event_retention.md).
        """
        router = self._router
        match = message.options.get("match", "exact")
        if match not in MATCH_POLICIES:
            router.send_error(
                session, _T.SUBSCRIBE, message.request, ErrorURI.INVALID_ARGUMENT,
                f"unknown match policy {match!r}",
            )  # fmt: skip
            return
        if not is_valid_uri(message.topic, match):
            router.send_error(
                session, _T.SUBSCRIBE, message.request, ErrorURI.INVALID_URI,
                f"invalid topic URI {message.topic!r} for match policy {match!r}",
            )  # fmt: skip
            return
        # Meta topics (wamp.*) too; a pattern must not reach a topic the
        # session may not subscribe to (wamp_core._authz).
        refused = refusal(
            authorize(router, session, message.topic, "subscribe", message.options),
            "subscribe",
            message.topic,
        )
        if refused is not None:
            router.send_error(session, _T.SUBSCRIBE, message.request, *refused)
            return
        subscription = self._table.get(message.topic, match)
        limit = router.max_subscriptions
        if (
            limit is not None
            and len(session.subscriptions) >= limit
            and (subscription is None or session not in subscription.subscribers)
        ):
            text = _at_limit("the session", limit, "subscriptions")
            router.limit_reached(session, "max_subscriptions", text)
            router.send_error(session, _T.SUBSCRIBE, message.request, LIMIT_ERROR, text)
            return
        if subscription is None:
            subscription = Subscription(
                router.new_router_id(self.subscriptions), message.topic, match, router.now
            )
            self._table.set(message.topic, match, subscription)
            self.subscriptions[subscription.id] = subscription
            for observer in router.observers:
                observer.subscription_created(session, subscription)
        router.send(session, Subscribed(message.request, subscription.id))
        if session not in subscription.subscribers:
            subscription.subscribers[session] = None
            session.subscriptions[subscription.id] = None
            for observer in router.observers:
                observer.subscribed(session, subscription)
        if self.retained and message.options.get("get_retained") is True:
            self._send_retained(session, subscription)

    def unsubscribe(self, session: RouterSession, message: Unsubscribe) -> None:
        """Handle UNSUBSCRIBE: UNSUBSCRIBED, or ERROR no_such_subscription."""
        subscription = self.subscriptions.get(message.subscription)
        if subscription is None or session not in subscription.subscribers:
            self._router.send_error(
                session, _T.UNSUBSCRIBE, message.request, ErrorURI.NO_SUCH_SUBSCRIPTION,
                f"no subscription {message.subscription} for this session",
            )  # fmt: skip
            return
        self._drop(session, subscription)
        self._router.send(session, UnsubscribedMessage(message.request))

    def _drop(self, session: RouterSession, subscription: Subscription) -> None:
        del subscription.subscribers[session]
        session.subscriptions.pop(subscription.id, None)
        observers = self._router.observers
        for observer in observers:
            observer.unsubscribed(session, subscription)
        if not subscription.subscribers:
            self._table.remove(subscription.uri, subscription.match)
            del self.subscriptions[subscription.id]
            for observer in observers:
                observer.subscription_deleted(session, subscription)

    def remove_session(self, session: RouterSession) -> None:
        """Drop every subscription of a session that leaves."""
        for subscription_id in list(session.subscriptions):
            self._drop(session, self.subscriptions[subscription_id])

    def revoke(
        self,
        subscription_id: int,
        reason: str | None = None,
        session: RouterSession | None = None,
    ) -> bool:
        """Revoke a subscription (AP/ap_pubsub_subscription_revocation.md).

        Removes every subscriber, or only ``session``; the subscription is
        deleted once it has none, and observers are told as for UNSUBSCRIBE.
        Subscribers that announced ``subscription_revocation`` get
        ``[UNSUBSCRIBED, 0, {"subscription": id, "reason": reason}]`` (no
        ``reason`` when None); the others get nothing, as the spec requires.
        Returns False when there was nothing to revoke.
        """
        subscription = self.subscriptions.get(subscription_id)
        if subscription is None:
            return False
        if session is None:
            targets = list(subscription.subscribers)
        elif session in subscription.subscribers:
            targets = [session]
        else:
            return False
        details: dict[str, Any] = {"subscription": subscription_id}
        if reason is not None:
            details["reason"] = reason
        notice = UnsubscribedMessage(0, details)
        for target in targets:
            self._drop(target, subscription)
            if target.has_feature("subscriber", "subscription_revocation"):
                self._router.send(target, notice)
        return True

    # -- publications ------------------------------------------------------------------

    def publish(self, session: RouterSession, message: Publish) -> None:
        """Handle PUBLISH: EVENTs to every eligible subscriber, PUBLISHED if asked.

        BP/publish_subscribe.md: an ERROR or PUBLISHED is sent only when
        ``acknowledge`` is set. The publication is retained and added to the
        event history as configured, whether or not anyone is subscribed.

        Payload passthru mode (AP/payload_passthru_mode.md): options from a
        publisher that did not announce it fail the session; a malformed
        publication is refused with invalid_argument. Subscribers that did
        not announce the mode still get the EVENT: the spec leaves that case
        to the subscriber side ("cannot be recognized at the protocol level").
        """
        router = self._router
        options = message.options
        ppt = ppt_options(options)
        if ppt:
            check_ppt_announced(router, session, "publisher", "broker", "PUBLISH")
        acknowledge = options.get("acknowledge") is True
        topic = message.topic
        decision = None
        refused: tuple[str, str] | None
        if not is_valid_uri(topic) or is_reserved_uri(topic):
            refused = (ErrorURI.INVALID_URI, f"invalid topic URI {topic!r}")
        else:
            # A refused disclose_me refuses the publication: the ERROR of
            # AP/ap_pubsub_publisher_identification.md; unacknowledged, it is dropped.
            decision = authorize(router, session, topic, "publish", options)
            refused = refusal(decision, "publish", topic, options.get("disclose_me") is True)
        if refused is None and ppt:
            problem = ppt_problem(ppt, message.args, message.kwargs)
            if problem is not None:
                refused = (ErrorURI.INVALID_ARGUMENT, problem)
        if refused is not None:
            if acknowledge:
                router.send_error(session, _T.PUBLISH, message.request, *refused)
            return
        publication = router.new_global_id()
        matches = self._table.matching(topic)
        retain = options.get("retain") is True
        histories = None if self._history is None else self._history.matching(topic)
        if matches or retain or histories:
            self._dispatch(
                session, message, publication, matches, retain=retain, histories=histories,
                ppt=ppt, disclose=None if decision is None else decision.disclose,
            )  # fmt: skip
        if acknowledge:
            router.send(session, Published(message.request, publication))

    def publish_from_router(
        self,
        topic: str,
        args: list[Any] | None = None,
        kwargs: dict[str, Any] | None = None,
        *,
        options: dict[str, Any] | None = None,
        publisher: RouterSession | None = None,
        skip: Collection[RouterSession] = (),
    ) -> None:
        """Publish from the router itself: meta events (``publisher`` None) and
        testaments (``publisher`` = the session that left, disclosed only with
        ``disclose_me``). ``wamp.*`` topics are allowed; there is no PUBLISHED or
        ERROR. Sessions in ``skip`` get nothing. Retention, history and the
        black- and whitelists apply as for any publication; ``ppt_*`` options
        do not (the router checks no passthru payload it did not receive).

        A testament is authorized for its ``publisher`` as a PUBLISH would be
        (``publish``, and ``disclose`` for ``disclose_me``); refused, it is
        dropped silently (nobody is left to tell)."""
        options = options or {}
        disclose = None
        if publisher is not None:
            try:
                decision = authorize(self._router, publisher, topic, "publish", options)
            except AuthorizationDeferred as wait:
                # Published when the decision comes, as the session was.
                former = copy.copy(publisher)
                key = wait.key

                def decided(decision: Decision) -> None:
                    former._decided = {key: decision}
                    self.publish_from_router(
                        topic, args, kwargs, options=options, publisher=former, skip=skip
                    )

                wait.pending._bind(decided)
                return
            if refusal(decision, "publish", topic, options.get("disclose_me") is True):
                return
            disclose = None if decision is None else decision.disclose
        matches = self._table.matching(topic)
        retain = options.get("retain") is True
        histories = None if self._history is None else self._history.matching(topic)
        if matches or retain or histories:
            message = Publish(1, options, topic, args, kwargs)
            self._dispatch(
                publisher,
                message,
                self._router.new_global_id(),
                matches,
                retain=retain,
                histories=histories,
                skip=skip,
                disclose=disclose,
            )

    def _dispatch(
        self,
        publisher: RouterSession | None,
        message: Publish,
        publication: int,
        matches: list[Subscription],
        *,
        retain: bool,
        histories: list[_History] | None,
        skip: Collection[RouterSession] = (),
        ppt: dict[str, Any] | None = None,
        disclose: bool | None = None,
    ) -> None:
        """Deliver, retain and record a publication. ``disclose``: the
        authorizer's ``Decision.disclose``; None (no authorizer): on request."""
        options = message.options
        # AP/ap_pubsub_publisher_exclusion.md: excluded unless exclude_me is false.
        exclude_me = options.get("exclude_me") is not False
        audience = None if _LIST_OPTIONS.isdisjoint(options) else _audience(options)
        details: dict[str, Any] = {}
        if publisher is not None:
            if options.get("disclose_me") is True if disclose is None else disclose:
                details["publisher"] = publisher.session_id
                details["publisher_authid"] = publisher.authid
                details["publisher_authrole"] = publisher.authrole
            if publisher.trustlevel is not None:
                details["trustlevel"] = publisher.trustlevel
        if ppt:
            details.update(ppt)
        topic = message.topic
        send_all = self._router.send_all
        for subscription in matches:
            if subscription.match == "exact":
                event_details = details
            else:
                event_details = {**details, "topic": topic}
            event = Event(subscription.id, publication, event_details, message.args, message.kwargs)
            subscribers: Iterable[RouterSession] = subscription.subscribers
            excluded = exclude_me and publisher in subscription.subscribers
            if excluded or skip or audience is not None:
                subscribers = [
                    subscriber
                    for subscriber in subscribers
                    if not (subscriber is publisher and exclude_me)
                    and subscriber not in skip
                    and (audience is None or audience.admits(subscriber))
                ]
            send_all(subscribers, event)
        # AP/ap_pubsub_event_history.md: events whose lists name session IDs
        # (ephemeral) SHOULD NOT be stored in the history.
        if histories and audience is not None and audience.by_session:
            histories = None
        if not (retain or histories):
            return
        stored = _Stored(
            seq=next(self._seq),
            time=round(self._router.now * 1_000_000) // 1000,
            publication=publication,
            topic=topic,
            details=details,
            args=message.args,
            kwargs=message.kwargs,
            audience=audience,
            publisher=publisher.session_id if publisher is not None and exclude_me else 0,
        )
        if retain:
            self._retain(stored)
        if histories:
            for history in histories:
                history.events.append(stored)

    # -- event retention -------------------------------------------------------------

    def _retain(self, stored: _Stored) -> None:
        supplements = self.retained_supplements
        if stored.audience is not None and supplements < 1:
            return  # the spec lets a broker decline by ignoring retain
        retained = self.retained
        entries = retained.pop(stored.topic, None)
        if entries is None or stored.audience is None:
            entries = [stored]
        else:
            entries.append(stored)
            base = 1 if entries[0].audience is None else 0
            if len(entries) - base > supplements:
                del entries[base]  # the oldest supplement
        retained[stored.topic] = entries
        limit = self.retained_topic_limit
        if limit is not None and len(retained) > limit:
            del retained[next(iter(retained))]

    def _send_retained(self, session: RouterSession, subscription: Subscription) -> None:
        """Send ``session`` the retained event of every topic ``subscription``
        matches: for each, the newest one it would have received had it been
        subscribed then (lists and publisher exclusion apply), oldest
        publication first, with ``Details.retained`` (and ``topic`` for a
        pattern subscription)."""
        uri, match = subscription.uri, subscription.match
        if match == "exact":
            entries = self.retained.get(uri)
            candidates = [] if entries is None else [entries]
        else:
            candidates = [
                entries
                for topic, entries in self.retained.items()
                if _topic_matches(uri, match, topic)
            ]
        session_id = session.session_id
        chosen: list[_Stored] = []
        for entries in candidates:
            for stored in reversed(entries):
                if stored.publisher != session_id and (
                    stored.audience is None or stored.audience.admits(session)
                ):
                    chosen.append(stored)
                    break
        chosen.sort(key=lambda stored: stored.seq)
        for stored in chosen:
            details = {**stored.details, "retained": True}
            if match != "exact":
                details["topic"] = stored.topic
            self._router.send(
                session,
                Event(subscription.id, stored.publication, details, stored.args, stored.kwargs),
            )

    # -- event history ---------------------------------------------------------------

    @property
    def event_history(self) -> list[HistoryRule]:
        """The history rules in force."""
        return [] if self._history is None else [history.rule for _, _, history in self._history]

    def set_event_history(self, rules: Iterable[HistoryRule | tuple[Any, ...]]) -> None:
        """Replace the history rules (``(uri, match, limit)`` each) and clear the
        history. A later rule for the same (uri, match) replaces an earlier one.
        Raises ``LocalProtocolError`` for a bad rule, changing nothing."""
        checked = [_check_rule(rule) for rule in rules]
        if not checked:
            self._history = None
            return
        table: PatternMap[_History] = PatternMap()
        for rule in checked:
            table.set(rule.uri, rule.match, _History(rule))
        self._history = table

    def get_events(
        self, session: RouterSession, call: Call
    ) -> tuple[list[Any] | None, dict[str, Any] | None]:
        """Answer ``wamp.subscription.get_events`` (AP/ap_pubsub_event_history.md).

        ``[subscription_id]`` plus the spec's keyword filters, ANDed. The result
        is one positional argument, the list of events (as Crossbar.io and
        Autobahn return it), oldest first unless ``reverse``; ``limit`` applies
        last. Each event is ``{timestamp, subscription, publication, details,
        args?, kwargs?}`` with the details the subscription's subscribers got.
        A ``*_publication`` ID the history no longer holds counts as older than
        every event in it (it was evicted), so paging on goes on.
        """
        args = call.args or []
        if len(args) != 1 or not is_id(args[0]):
            raise _invalid("wamp.subscription.get_events takes one subscription ID")
        subscription = self.subscriptions.get(args[0])
        if subscription is None:
            raise ProcedureError(
                ErrorURI.NO_SUCH_SUBSCRIPTION, f"no subscription {args[0]} in this realm"
            )
        # Authorization: the spec asks for not_authorized (Security Aspects).
        # Reading a history is receiving the subscription's events: the
        # authorizer must allow subscribing to its pattern (as if the caller
        # subscribed), then the history_access hook, if any, decides too.
        refused = refusal(
            authorize(
                self._router, session, subscription.uri, "subscribe",
                {"match": subscription.match},
            ),
            "subscribe",
            subscription.uri,
        )  # fmt: skip
        if refused is not None:
            raise ProcedureError(refused[0], refused[1])
        if self.history_access is not None and not self.history_access(session, subscription):
            raise ProcedureError(
                ErrorURI.NOT_AUTHORIZED, "not authorized to read this subscription's history"
            )
        query = _Query(call.kwargs or {})
        histories = [
            history
            for _, _, history in (self._history or ())
            if _covers(history.rule, subscription)
        ]
        if not histories:
            raise ProcedureError(
                HISTORY_UNAVAILABLE, f"no event history is kept for subscription {args[0]}"
            )
        if len(histories) == 1:
            events = list(histories[0].events)
        else:  # the same publication may be in several buffers
            merged = {stored.seq: stored for history in histories for stored in history.events}
            events = [merged[seq] for seq in sorted(merged)]
        positions = [
            (compare, self._position(publication, events))
            for compare, publication in query.publications
        ]
        uri, match = subscription.uri, subscription.match
        found: list[dict[str, Any]] = []
        for stored in reversed(events) if query.reverse else events:
            if not (
                _topic_matches(uri, match, stored.topic)
                and (query.topic is None or stored.topic == query.topic)
                and all(compare(stored.time * 1000, when) for compare, when in query.times)
                and all(compare(stored.seq, position) for compare, position in positions)
                # AP/ap_pubsub_event_history.md: the lists apply to the requester.
                and (stored.audience is None or stored.audience.admits(session))
            ):
                continue
            details = stored.details
            if match != "exact":
                details = {**details, "topic": stored.topic}
            event: dict[str, Any] = {
                "timestamp": format_timestamp(stored.time),
                "subscription": subscription.id,
                "publication": stored.publication,
                "details": details,
            }
            if stored.args is not None:
                event["args"] = stored.args
            if stored.kwargs is not None:
                event["kwargs"] = stored.kwargs
            found.append(event)
            if len(found) == query.limit:
                break
        return [found], None

    def _position(self, publication: int, events: list[_Stored]) -> int:
        """Where ``publication`` stands in the order of receipt; -1 when no
        history holds it any more (then it is older than everything kept)."""
        for stored in events:
            if stored.publication == publication:
                return stored.seq
        assert self._history is not None
        for _, _, history in self._history:
            for stored in history.events:
                if stored.publication == publication:
                    return stored.seq
        return -1


def get_events(
    session: RouterSession, call: Call
) -> tuple[list[Any] | None, dict[str, Any] | None]:
    """The handler of ``wamp.subscription.get_events`` for ``Router.add_procedure``:
    answers from the broker of the caller's realm (see ``Broker.get_events``)."""
    assert session.realm is not None
    return session.realm.broker.get_events(session, call)
