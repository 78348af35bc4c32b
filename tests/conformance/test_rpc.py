"""The Basic Profile RPC scenarios: our router passes them; broken variants are caught."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

import wamp_core
from tests.conformance.harness import SERIALIZERS, RewritesError, assert_caught, assert_passes


@pytest.mark.parametrize("serializer", SERIALIZERS)
async def test_our_router_passes_every_rpc_scenario(serializer: str) -> None:
    await assert_passes(["rpc"], serializer, at_least=20)


class WrongNoSuchProcedure(RewritesError):
    """Answers a CALL nobody registered with wamp.error.invalid_argument."""

    replaced = wamp_core.ErrorURI.NO_SUCH_PROCEDURE
    replacement = wamp_core.ErrorURI.INVALID_ARGUMENT


class ResultLosesKwargs(wamp_core.Router):
    """Drops the ArgumentsKw of every RESULT."""

    def send(self, session: wamp_core.RouterSession, message: Any) -> bool:
        if isinstance(message, wamp_core.Result) and message.kwargs:
            message = dataclasses.replace(message, kwargs=None)
        return super().send(session, message)


class RegistersTwice(RewritesError):
    """Accepts a second REGISTER of a registered procedure (and never invokes it)."""

    replaced = wamp_core.ErrorURI.PROCEDURE_ALREADY_EXISTS

    def instead(
        self,
        session: wamp_core.RouterSession,
        request_type: wamp_core.MessageType,
        request: int,
        message: str | None,
    ) -> None:
        self.send(session, wamp_core.Registered(request, 4242))


class SilentWhenCalleeLeaves(RewritesError):
    """Leaves the caller hanging when its callee goes away mid-call."""

    replaced = wamp_core.ErrorURI.CANCELED


class CalleeLostAsRuntimeError(RewritesError):
    """Tells the caller of a callee that left ``wamp.error.runtime_error``, not canceled."""

    replaced = wamp_core.ErrorURI.CANCELED
    replacement = "wamp.error.runtime_error"


class UnsequencedInvocations(wamp_core.Router):
    """Numbers INVOCATIONs from 1000 up instead of from 1."""

    def send(self, session: wamp_core.RouterSession, message: Any) -> bool:
        if isinstance(message, wamp_core.Invocation):
            message = dataclasses.replace(message, request=message.request + 999)
        return super().send(session, message)

    def receive_message(self, session: wamp_core.RouterSession, message: Any) -> None:
        if isinstance(message, (wamp_core.Yield, wamp_core.Error)) and message.request > 999:
            message = dataclasses.replace(message, request=message.request - 999)
        super().receive_message(session, message)


@pytest.mark.parametrize(
    ("broken", "only", "caught_by"),
    [
        (WrongNoSuchProcedure, "rpc.call.no_such_procedure", ["rpc.call.no_such_procedure"]),
        (
            ResultLosesKwargs,
            "rpc.call.*",
            ["rpc.call.args_kwargs", "rpc.call.kwargs_only", "rpc.call.nested_unicode"],
        ),
        (
            RegistersTwice,
            "rpc.register.procedure_already_exists",
            ["rpc.register.procedure_already_exists"],
        ),
        (
            SilentWhenCalleeLeaves,
            "rpc.callee_leaves.*",
            [
                "rpc.callee_leaves.goodbye.caller_error",
                "rpc.callee_leaves.disconnect.caller_error",
                "rpc.callee_leaves.canceled_uri",
            ],
        ),
        (CalleeLostAsRuntimeError, "rpc.callee_leaves.*", ["rpc.callee_leaves.canceled_uri"]),
        (
            UnsequencedInvocations,
            "rpc.call.invocation_request_ids",
            ["rpc.call.invocation_request_ids"],
        ),
    ],
)
async def test_broken_routers_are_caught(
    broken: type[wamp_core.Router], only: str, caught_by: list[str]
) -> None:
    await assert_caught(broken(["realm1"]), caught_by, only=[only])
