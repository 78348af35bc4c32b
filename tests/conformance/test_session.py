"""The session scenarios: our router passes them; broken variants are caught."""

from __future__ import annotations

from typing import Any

import pytest

import wamp_core
from tests.conformance.harness import SERIALIZERS, assert_caught, assert_passes, verdicts
from wamp_conformance import SCENARIOS, Failure, select


@pytest.mark.parametrize("serializer", SERIALIZERS)
async def test_our_router_passes_every_session_scenario(serializer: str) -> None:
    await assert_passes(["session"], serializer)


def test_every_scenario_names_its_spec_section() -> None:
    select()
    for item in SCENARIOS.values():
        assert item.spec.startswith(("BP/", "AP/", "RFC ")), item.id
        assert item.title, item.id


class NoGoodbyeEcho(wamp_core.Router):
    """Forgets to answer GOODBYE."""

    def _on_goodbye(self, session: wamp_core.RouterSession, message: Any) -> None:
        self._leave(session)


class HugeSessionIds(wamp_core.Router):
    """Hands out session IDs beyond 2^53."""

    def new_router_id(self, taken: Any) -> int:
        return 2**60


class LaxHello(wamp_core.Router):
    """Lets a second HELLO through without ABORT."""

    def receive_message(self, session: wamp_core.RouterSession, message: Any) -> None:
        if (
            isinstance(message, wamp_core.Hello)
            and session.state is wamp_core.SessionState.ESTABLISHED
        ):
            return
        super().receive_message(session, message)


class WrongRealmError(wamp_core.Router):
    """Refuses unknown realms with the wrong URI."""

    def _refuse(self, session: wamp_core.RouterSession, reason: str, text: str | None) -> None:
        if reason == wamp_core.ErrorURI.NO_SUCH_REALM:
            reason = "wamp.error.not_authorized"
        super()._refuse(session, reason, text)


@pytest.mark.parametrize(
    ("broken", "caught_by"),
    [
        (NoGoodbyeEcho, "session.goodbye.echo"),
        (LaxHello, "session.hello.twice"),
        (WrongRealmError, "session.hello.no_such_realm"),
    ],
)
async def test_broken_routers_are_caught(broken: type[wamp_core.Router], caught_by: str) -> None:
    await assert_caught(broken(["realm1"]), caught_by, only=["session"])


async def test_a_router_whose_welcome_is_out_of_range_cannot_be_checked_at_all() -> None:
    with pytest.raises(Failure, match=r"WELCOME.Session must be an ID in \[1, 2\^53\]"):
        await verdicts(HugeSessionIds(["realm1"]), only=["session"], timeout=0.5)
