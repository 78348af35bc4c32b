"""The Advanced Profile RPC scenarios: our router passes them; broken variants
are caught."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

import wamp_core
from tests.conformance.harness import SERIALIZERS, StripsDetail, assert_caught, assert_passes
from wamp_conformance import select

PREFIX = "advanced_rpc"


@pytest.mark.parametrize("serializer", SERIALIZERS)
async def test_our_router_passes_every_advanced_rpc_scenario(serializer: str) -> None:
    # Our router announces every dealer feature: nothing is skipped.
    await assert_passes([PREFIX], serializer)


def test_every_advanced_rpc_scenario_names_a_dealer_feature() -> None:
    for item in select([PREFIX]):
        assert item.feature is not None, item.id
        assert item.feature[0] == "dealer", item.id
        assert item.spec.startswith("AP/"), item.id


class DroppedCancel(wamp_core.Router):
    """Ignores CANCEL."""

    def _on_cancel(self, session: wamp_core.RouterSession, message: wamp_core.Cancel) -> None:
        return


class KillAnswersAtOnce(wamp_core.Router):
    """Handles CANCEL mode=kill like killnowait (the caller is answered without
    waiting for the callee), though its INTERRUPT says ``kill``."""

    def _on_cancel(self, session: wamp_core.RouterSession, message: wamp_core.Cancel) -> None:
        if message.options.get("mode") == "kill":
            message = dataclasses.replace(message, options={"mode": "killnowait"})
        super()._on_cancel(session, message)

    def send(self, session: wamp_core.RouterSession, message: wamp_core.Message) -> bool:
        if isinstance(message, wamp_core.Interrupt):
            message = dataclasses.replace(message, options={"mode": "kill"})
        return super().send(session, message)


class SkipInterrupts(wamp_core.Router):
    """Treats CANCEL mode=skip as killnowait: the callee gets an INTERRUPT."""

    def _on_cancel(self, session: wamp_core.RouterSession, message: wamp_core.Cancel) -> None:
        if message.options.get("mode") == "skip":
            message = dataclasses.replace(message, options={"mode": "killnowait"})
        super()._on_cancel(session, message)


class ProgressFlagDropped(StripsDetail):
    """Sends progressive results without Details.progress."""

    message_type = wamp_core.Result
    key = "progress"


class ProgressMerged(wamp_core.Router):
    """Holds progressive YIELDs back and delivers them merged into the final RESULT."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._held: dict[tuple[int, int], list[Any]] = {}

    def _on_yield(self, session: wamp_core.RouterSession, message: wamp_core.Yield) -> None:
        key = (id(session), message.request)
        if message.options.get("progress") is True:
            self._held.setdefault(key, []).extend(message.args or [])
            return
        held = self._held.pop(key, [])
        if held:
            message = dataclasses.replace(message, args=held + list(message.args or []))
        super()._on_yield(session, message)


class TimeoutIgnored(wamp_core.Router):
    """Never times calls out (drops CALL.Options.timeout)."""

    def _on_call(self, session: wamp_core.RouterSession, message: wamp_core.Call) -> None:
        if "timeout" in message.options:
            options = {k: v for k, v in message.options.items() if k != "timeout"}
            message = dataclasses.replace(message, options=options)
        super()._on_call(session, message)


class NoProcedureDetail(StripsDetail):
    """Leaves INVOCATION.Details.procedure out for pattern registrations."""

    message_type = wamp_core.Invocation
    key = "procedure"


class CallerNeverDisclosed(StripsDetail):
    """Ignores disclose_me / disclose_caller."""

    message_type = wamp_core.Invocation
    key = "caller"


class ChunksNotFlagged(StripsDetail):
    """Forwards progressive call invocation chunks without Details.progress."""

    message_type = wamp_core.Invocation
    key = "progress"


class UnavailableRelayed(wamp_core.Router):
    """Relays a callee's wamp.error.unavailable to the caller instead of rerouting."""

    def _on_error(self, session: wamp_core.RouterSession, message: wamp_core.Error) -> None:
        if message.error == "wamp.error.unavailable":
            message = dataclasses.replace(message, error="com.example.unavailable")
        super()._on_error(session, message)


@pytest.mark.parametrize(
    ("broken", "caught_by"),
    [
        (DroppedCancel, "advanced_rpc.call_canceling.skip"),
        (DroppedCancel, "advanced_rpc.call_canceling.killnowait"),
        (DroppedCancel, "advanced_rpc.call_canceling.kill"),
        (KillAnswersAtOnce, "advanced_rpc.call_canceling.kill"),
        (SkipInterrupts, "advanced_rpc.call_canceling.skip"),
        (ProgressFlagDropped, "advanced_rpc.progressive_call_results.chunks"),
        (ProgressMerged, "advanced_rpc.progressive_call_results.chunks"),
        (TimeoutIgnored, "advanced_rpc.call_timeout.dealer"),
        (NoProcedureDetail, "advanced_rpc.pattern_based_registration.prefix"),
        (NoProcedureDetail, "advanced_rpc.pattern_based_registration.wildcard"),
        (CallerNeverDisclosed, "advanced_rpc.caller_identification.disclose_me"),
        (CallerNeverDisclosed, "advanced_rpc.caller_identification.disclose_caller"),
        (ChunksNotFlagged, "advanced_rpc.progressive_call_invocations.chunks"),
        (UnavailableRelayed, "advanced_rpc.call_reroute.next_callee"),
    ],
)
async def test_broken_routers_are_caught(broken: type[wamp_core.Router], caught_by: str) -> None:
    await assert_caught(broken(["realm1"]), caught_by)
