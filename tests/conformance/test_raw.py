"""The raw-message scenarios: our router passes them; broken variants are caught."""

from __future__ import annotations

from typing import Any, NoReturn

import pytest

import wamp_core
from tests.conformance.harness import assert_caught, assert_passes
from wamp_conformance import select
from wamp_conformance.scenarios.raw import SERIALIZERS

SERIALIZER_NAMES = list(SERIALIZERS)


@pytest.mark.parametrize("serializer", SERIALIZER_NAMES)
async def test_our_router_passes_every_raw_scenario(serializer: str) -> None:
    # Each serializer's scenarios open their own peers with that serializer, so
    # one run per serializer covers raw.<serializer>.* (running all three sets
    # three times over would only repeat them).
    prefix = f"raw.{serializer}"
    await assert_passes([prefix], serializer)


def test_every_raw_scenario_exists_for_every_serializer() -> None:
    names = {
        s: {item.id.removeprefix(f"raw.{s}.") for item in select([f"raw.{s}"])}
        for s in SERIALIZER_NAMES
    }
    assert names["json"] == names["msgpack"] == names["cbor"]
    assert len(select(["raw"])) == 3 * len(names["json"])


class AbortOnBadUri(wamp_core.Router):
    """Treats an invalid URI in SUBSCRIBE/CALL as a protocol violation (ABORT)."""

    def receive_message(self, session: wamp_core.RouterSession, message: Any) -> None:
        uri = None
        if isinstance(message, wamp_core.Subscribe):
            uri = message.topic
        elif isinstance(message, wamp_core.Call):
            uri = message.procedure
        if uri is not None and not wamp_core.is_valid_uri(uri):
            self.fail(session, f"invalid URI {uri!r}")
        super().receive_message(session, message)


class IgnoresUnknownTypes(wamp_core.Router):
    """Drops messages of an unknown type silently, keeping the session."""

    def receive_data(self, session: wamp_core.RouterSession, data: bytes) -> None:
        try:
            raw = session.serializer.loads(data)
        except wamp_core.RemoteProtocolError:
            raw = None
        if (
            isinstance(raw, list)
            and raw
            and type(raw[0]) is int
            and raw[0] not in set(wamp_core.MessageType)
        ):
            return
        super().receive_data(session, data)


class KillsEveryone(wamp_core.Router):
    """On one session's protocol violation, ends every other session too."""

    def fail(self, session: wamp_core.RouterSession, text: str) -> NoReturn:
        for other in list(self.sessions.values()):
            if other is not session:
                self.close_session(other, wamp_core.CloseReason.SYSTEM_SHUTDOWN, text)
        super().fail(session, text)


class RelaysAnyError(wamp_core.Router):
    """Takes a client's ERROR as an INVOCATION error whatever its REQUEST.Type."""

    def _on_error(self, session: wamp_core.RouterSession, message: Any) -> None:
        self._realm(session).dealer.error(session, message)


class IgnoresStrayErrors(wamp_core.Router):
    """Drops a client's ERROR with a REQUEST.Type other than INVOCATION silently."""

    def _on_error(self, session: wamp_core.RouterSession, message: Any) -> None:
        if message.request_type != wamp_core.MessageType.INVOCATION:
            return
        super()._on_error(session, message)


class KeepsAbortedSubscriptions(wamp_core.Router):
    """Sends ABORT on a violation but keeps the session's subscriptions alive."""

    def fail(self, session: wamp_core.RouterSession, text: str) -> NoReturn:
        if session.state is wamp_core.SessionState.ESTABLISHED:
            self.send(session, wamp_core.Abort({"message": text}, "wamp.error.protocol_violation"))
        raise wamp_core.RemoteProtocolError(text)


def lax_request_ids() -> wamp_core.Router:
    return wamp_core.Router(["realm1"], strict_request_ids=False)


@pytest.mark.parametrize(
    ("broken", "caught_by"),
    [
        *[(AbortOnBadUri, f"raw.{s}.subscribe_invalid_uri") for s in SERIALIZER_NAMES],
        (AbortOnBadUri, "raw.json.call_invalid_uri"),
        *[(IgnoresUnknownTypes, f"raw.{s}.unknown_type") for s in SERIALIZER_NAMES],
        *[(KillsEveryone, f"raw.{s}.empty_list") for s in SERIALIZER_NAMES],
        (KillsEveryone, "raw.cbor.undecodable"),
        (KillsEveryone, "raw.msgpack.client_sends_welcome"),
        (RelaysAnyError, "raw.json.error_wrong_request_type"),
        (IgnoresStrayErrors, "raw.msgpack.error_for_subscribe"),
        (IgnoresStrayErrors, "raw.cbor.error_wrong_request_type"),
        (KeepsAbortedSubscriptions, "raw.json.options_not_dict"),
        (lax_request_ids, "raw.json.non_sequential_request_id"),
    ],
)
async def test_broken_routers_are_caught(broken: Any, caught_by: str) -> None:
    router = broken(["realm1"]) if isinstance(broken, type) else broken()
    caught = await assert_caught(router, caught_by)
    serializer = caught_by.split(".")[1]
    assert f"[{serializer}]" in caught[caught_by]
