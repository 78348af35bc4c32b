"""The broker: Publish & Subscribe inside one realm (BP/publish_subscribe.md).

Also the PubSub features of the Advanced Profile that need no more than the
messages themselves: pattern-based subscriptions
(AP/ap_pubsub_pattern_based_subscription.md), publisher exclusion and
identification, subscriber black- and whitelisting
(AP/ap_pubsub_subscriber_blackwhite_listing.md).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._messages import Event, MessageType, Publish, Published, Subscribe, Subscribed, Unsubscribe
from ._messages import Unsubscribed as UnsubscribedMessage
from ._uri import MATCH_POLICIES, ErrorURI, MatchPolicy, PatternMap, is_reserved_uri, is_valid_uri

if TYPE_CHECKING:
    from ._router import Router, RouterSession

__all__ = ["Broker", "Subscription"]

_T = MessageType


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


class Broker:
    """Subscriptions and publications of one realm."""

    def __init__(self, router: Router) -> None:
        self._router = router
        self._table: PatternMap[Subscription] = PatternMap()
        self.subscriptions: dict[int, Subscription] = {}
        """Live subscriptions by ID."""

    def subscribe(self, session: RouterSession, message: Subscribe) -> None:
        """Handle SUBSCRIBE: SUBSCRIBED, or ERROR invalid_uri / invalid_argument."""
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
        subscription = self._table.get(message.topic, match)
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
            session.subscriptions.add(subscription.id)
            for observer in router.observers:
                observer.subscribed(session, subscription)

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
        session.subscriptions.discard(subscription.id)
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

    def publish(self, session: RouterSession, message: Publish) -> None:
        """Handle PUBLISH: EVENTs to every eligible subscriber, PUBLISHED if asked.

        BP/publish_subscribe.md: an ERROR or PUBLISHED is sent only when
        ``acknowledge`` is set.
        """
        router = self._router
        options = message.options
        acknowledge = options.get("acknowledge") is True
        topic = message.topic
        if not is_valid_uri(topic) or is_reserved_uri(topic):
            if acknowledge:
                router.send_error(
                    session, _T.PUBLISH, message.request, ErrorURI.INVALID_URI,
                    f"invalid topic URI {topic!r}",
                )  # fmt: skip
            return
        publication = router.new_global_id()
        matches = self._table.matching(topic)
        if matches:
            self._fan_out(session, message, publication, matches)
        if acknowledge:
            router.send(session, Published(message.request, publication))

    def _fan_out(
        self,
        publisher: RouterSession,
        message: Publish,
        publication: int,
        matches: list[Subscription],
    ) -> None:
        options = message.options
        # AP/ap_pubsub_publisher_exclusion.md: excluded unless exclude_me is false.
        exclude_me = options.get("exclude_me") is not False
        exclude = _id_list(options.get("exclude"))
        exclude_authid = _id_list(options.get("exclude_authid"))
        exclude_authrole = _id_list(options.get("exclude_authrole"))
        eligible = _id_list(options.get("eligible"))
        eligible_authid = _id_list(options.get("eligible_authid"))
        eligible_authrole = _id_list(options.get("eligible_authrole"))
        filtered = (
            exclude or exclude_authid or exclude_authrole
            or eligible is not None or eligible_authid is not None or eligible_authrole is not None
        )  # fmt: skip
        details: dict[str, Any] = {}
        if options.get("disclose_me") is True:
            details["publisher"] = publisher.session_id
            details["publisher_authid"] = publisher.authid
            details["publisher_authrole"] = publisher.authrole
        send = self._router.send
        for subscription in matches:
            if subscription.match == "exact":
                event_details = details
            else:
                event_details = {**details, "topic": message.topic}
            event = Event(subscription.id, publication, event_details, message.args, message.kwargs)
            for subscriber in subscription.subscribers:
                if subscriber is publisher and exclude_me:
                    continue
                if filtered and not (
                    (eligible is None or subscriber.session_id in eligible)
                    and (eligible_authid is None or subscriber.authid in eligible_authid)
                    and (eligible_authrole is None or subscriber.authrole in eligible_authrole)
                    and not (exclude and subscriber.session_id in exclude)
                    and not (exclude_authid and subscriber.authid in exclude_authid)
                    and not (exclude_authrole and subscriber.authrole in exclude_authrole)
                ):
                    continue
                send(subscriber, event)
