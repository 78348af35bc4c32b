"""The advanced PubSub and meta API scenarios: our router passes them; broken
variants are caught."""

from __future__ import annotations

from typing import Any

import pytest

import wamp_core
from tests.conformance.harness import SERIALIZERS, StripsDetail, assert_caught, assert_passes

FAMILIES = ["advanced_pubsub", "meta"]


@pytest.mark.parametrize("serializer", SERIALIZERS)
async def test_our_router_passes_every_advanced_pubsub_and_meta_scenario(serializer: str) -> None:
    # Our router announces every feature, retains events and admits requested authids.
    results = await assert_passes(FAMILIES, serializer)
    assert any(id.startswith("advanced_pubsub.") for id in results)
    assert any(id.startswith("meta.") for id in results)


class _DropsOption(wamp_core.Router):
    """Ignores the PUBLISH option named ``dropped``."""

    dropped = ""

    def _on_publish(self, session: wamp_core.RouterSession, message: Any) -> None:
        options = {k: v for k, v in message.options.items() if k != self.dropped}
        super()._on_publish(
            session,
            wamp_core.Publish(
                message.request, options, message.topic, message.args, message.kwargs
            ),
        )


def ignoring(option: str) -> wamp_core.Router:
    """A router that ignores PUBLISH.Options.<option>."""
    router = _DropsOption(["realm1"])
    router.dropped = option
    return router


def no_on_join() -> wamp_core.Router:
    """Never publishes wamp.session.on_join."""
    router = wamp_core.Router(["realm1"])
    assert router.meta is not None
    router.meta.session_joined = lambda session: None  # type: ignore[method-assign]
    return router


def count_off_by_one() -> wamp_core.Router:
    """wamp.session.count counts one session too many."""
    router = wamp_core.Router(["realm1"])

    def count(session: wamp_core.RouterSession, call: Any) -> tuple[list[Any], None]:
        assert session.realm is not None
        return [len(session.realm.sessions) + 1], None

    router.procedures["wamp.session.count"] = count
    return router


def no_testaments() -> wamp_core.Router:
    """Forgets testaments: wamp.session.add_testament stores nothing."""
    router = wamp_core.Router(["realm1"])
    router.procedures["wamp.session.add_testament"] = lambda session, call: (None, None)
    return router


def _strip_detail(key: str) -> wamp_core.Router:
    """A router whose EVENTs lose ``Details.<key>``."""
    router = StripsDetail(["realm1"])
    router.key = key
    return router


def no_pattern_topic() -> wamp_core.Router:
    """Leaves EVENT.Details.topic out for pattern subscriptions."""
    return _strip_detail("topic")


def no_retained_flag() -> wamp_core.Router:
    """Sends retained events without Details.retained."""
    return _strip_detail("retained")


@pytest.mark.parametrize(
    ("make", "caught_by"),
    [
        (lambda: ignoring("exclude"), "advanced_pubsub.blackwhite.exclude"),
        (lambda: ignoring("eligible"), "advanced_pubsub.blackwhite.eligible"),
        (lambda: ignoring("disclose_me"), "advanced_pubsub.publisher_identification.disclosed"),
        (lambda: ignoring("exclude_me"), "advanced_pubsub.publisher_exclusion.exclude_me_false"),
        (no_pattern_topic, "advanced_pubsub.pattern.prefix"),
        (no_retained_flag, "advanced_pubsub.retention.latest"),
        (no_on_join, "meta.session.on_join"),
        (count_off_by_one, "meta.session.count"),
        (no_testaments, "meta.testament.transport_lost"),
    ],
)
async def test_broken_routers_are_caught(make: Any, caught_by: str) -> None:
    await assert_caught(make(), caught_by)
