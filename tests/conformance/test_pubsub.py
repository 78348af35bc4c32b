"""The Basic Profile pubsub scenarios: our router passes them; broken variants are caught."""

from __future__ import annotations

import dataclasses
from collections.abc import Collection

import pytest

import wamp_core
from tests.conformance.harness import (
    SERIALIZERS,
    RewritesError,
    assert_caught,
    assert_passes,
)


@pytest.mark.parametrize("serializer", SERIALIZERS)
async def test_our_router_passes_every_pubsub_scenario(serializer: str) -> None:
    # No skips either: our broker answers a repeated SUBSCRIBE with the existing ID.
    await assert_passes(["pubsub"], serializer)


class NoPublisherExclusion(wamp_core.Router):
    """Delivers a publisher its own events unless it asks for exclude_me."""

    def _on_publish(self, session: wamp_core.RouterSession, message: wamp_core.Publish) -> None:
        options = {"exclude_me": False, **message.options}
        super()._on_publish(session, dataclasses.replace(message, options=options))


class ReorderingBroker(wamp_core.Router):
    """Holds a session's first EVENT back and sends it after the next one."""

    def __init__(self, realms: Collection[str]) -> None:
        super().__init__(realms)
        self.held: dict[wamp_core.RouterSession, wamp_core.Event | None] = {}

    def send(self, session: wamp_core.RouterSession, message: wamp_core.Message) -> bool:
        if not isinstance(message, wamp_core.Event):
            return super().send(session, message)
        if session not in self.held:
            self.held[session] = message
            return True
        held, self.held[session] = self.held[session], None
        sent = super().send(session, message)
        if held is not None:
            super().send(session, held)
        return sent


class WrongPublicationAck(wamp_core.Router):
    """Acknowledges publications with an ID other than the one in the EVENTs."""

    def send(self, session: wamp_core.RouterSession, message: wamp_core.Message) -> bool:
        if isinstance(message, wamp_core.Published):
            message = wamp_core.Published(message.request, message.publication % 1000 + 1)
        return super().send(session, message)


class HugeSubscriptionIds(wamp_core.Router):
    """Hands out subscription IDs beyond 2^53 (other router-scope IDs stay valid)."""

    def new_router_id(self, taken: Collection[int]) -> int:
        if any(taken is realm.broker.subscriptions for realm in self.realms.values()):
            return 2**53 + 1 + len(taken)
        return super().new_router_id(taken)


class KeepsEventsAfterUnsubscribe(wamp_core.Router):
    """Answers UNSUBSCRIBE but keeps the subscription."""

    def _on_unsubscribe(
        self, session: wamp_core.RouterSession, message: wamp_core.Unsubscribe
    ) -> None:
        self.send(session, wamp_core.Unsubscribed(message.request))


class DropsTopicWhenOneLeaves(wamp_core.Router):
    """Deletes the whole subscription when any of its subscribers leaves."""

    def _leave(self, session: wamp_core.RouterSession) -> None:
        realm = session.realm
        if realm is not None:
            broker = realm.broker
            for subscription_id in list(session.subscriptions):
                subscription = broker.subscriptions[subscription_id]
                for other in list(subscription.subscribers):
                    if other is not session:
                        broker._drop(other, subscription)
        super()._leave(session)


class WrongUnsubscribeError(RewritesError):
    """Refuses unknown subscriptions with the wrong URI."""

    replaced = wamp_core.ErrorURI.NO_SUCH_SUBSCRIPTION
    replacement = "wamp.error.invalid_argument"


class AcceptsAnyTopic(RewritesError):
    """Lets invalid topic URIs through (subscribe and publish)."""

    replaced = wamp_core.ErrorURI.INVALID_URI

    def instead(
        self,
        session: wamp_core.RouterSession,
        request_type: wamp_core.MessageType,
        request: int,
        message: str | None,
    ) -> None:
        if request_type == wamp_core.MessageType.SUBSCRIBE:
            self.send(session, wamp_core.Subscribed(request, 1))
        else:
            self.send(session, wamp_core.Published(request, 1))


class AcknowledgesEverything(wamp_core.Router):
    """Sends PUBLISHED even without acknowledge."""

    def _on_publish(self, session: wamp_core.RouterSession, message: wamp_core.Publish) -> None:
        options = {**message.options, "acknowledge": True}
        super()._on_publish(session, dataclasses.replace(message, options=options))


@pytest.mark.parametrize(
    ("broken", "caught_by"),
    [
        (NoPublisherExclusion, "pubsub.publish.exclude_publisher"),
        (ReorderingBroker, "pubsub.ordering.one_topic"),
        (ReorderingBroker, "pubsub.ordering.two_topics"),
        (WrongPublicationAck, "pubsub.publish.acknowledge"),
        (WrongPublicationAck, "pubsub.event.payload.args"),
        (HugeSubscriptionIds, "pubsub.subscribe.subscribed"),
        (KeepsEventsAfterUnsubscribe, "pubsub.unsubscribe.no_more_events"),
        (KeepsEventsAfterUnsubscribe, "pubsub.unsubscribe.twice"),
        (WrongUnsubscribeError, "pubsub.unsubscribe.unknown"),
        (AcceptsAnyTopic, "pubsub.subscribe.invalid_uri"),
        (AcceptsAnyTopic, "pubsub.publish.invalid_uri"),
        (AcknowledgesEverything, "pubsub.publish.unacknowledged"),
        (AcknowledgesEverything, "pubsub.publish.invalid_uri_unacknowledged"),
        (DropsTopicWhenOneLeaves, "pubsub.leave.goodbye"),
        (DropsTopicWhenOneLeaves, "pubsub.leave.disconnect"),
    ],
)
async def test_broken_routers_are_caught(broken: type[wamp_core.Router], caught_by: str) -> None:
    await assert_caught(broken(["realm1"]), caught_by)


async def test_out_of_range_subscription_ids_fail_as_undecodable() -> None:
    caught = await assert_caught(HugeSubscriptionIds(["realm1"]), "pubsub.subscribe.subscribed")
    assert "undecodable message" in caught["pubsub.subscribe.subscribed"]
