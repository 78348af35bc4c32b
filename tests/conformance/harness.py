"""Running the conformance suite against our own router, in-process over real
loopback sockets, and against deliberately broken variants of it."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import AsyncIterator, Sequence
from typing import Any

import trio

import wamp_core
from wamp_conformance import Failure, Outcome, Result, Target, run_suite, select
from wamp_trio._config import TcpListener
from wamp_trio._host import RouterHost, serve_router

SERIALIZERS = ["json", "msgpack", "cbor"]
"""The serializers the "our router passes" tests run over."""


@contextlib.asynccontextmanager
async def running(router: wamp_core.Router | None = None) -> AsyncIterator[dict[str, str]]:
    """``router`` (default: realm1, open) on a free port; its URLs by transport kind
    (``websocket``, ``rawsocket``, ``longpoll``)."""
    host = RouterHost(router or wamp_core.Router(["realm1"]))
    async with trio.open_nursery() as nursery:
        endpoints = await nursery.start(serve_router, host, [TcpListener(port=0)])
        urls = {endpoint.kind: endpoint.url for endpoint in endpoints}
        with trio.fail_after(120):
            yield urls
        nursery.cancel_scope.cancel()


def target(
    urls: dict[str, str],
    serializer: str = "json",
    timeout: float = 2.0,
    *,
    main: str = "websocket",
    credentials: dict[str, dict[str, str]] | None = None,
) -> Target:
    """The suite's target for a router ``running()`` serves: the ``main``
    transport's URL as the target's, the others as its ``urls``."""
    others = {kind: url for kind, url in urls.items() if kind != main}
    return Target(
        urls[main],
        serializer=serializer,
        timeout=timeout,
        urls=others,
        credentials=credentials or {},
    )


async def verdicts(
    router: wamp_core.Router | None = None,
    only: Sequence[str] = (),
    serializer: str = "json",
    timeout: float = 2.0,
    *,
    main: str = "websocket",
    credentials: dict[str, dict[str, str]] | None = None,
) -> dict[str, Result]:
    """Run the scenarios matching ``only`` (all without) against ``router``
    (see ``target`` for ``main`` and ``credentials``); the results by scenario ID."""
    refused: Failure | None = None
    results: list[Result] = []
    async with running(router) as urls:
        try:
            suite = target(urls, serializer, timeout, main=main, credentials=credentials)
            results = await run_suite(suite, select(only))
        except Failure as exc:  # raised outside the nursery, not as a group
            refused = exc
    if refused is not None:
        raise refused
    return {result.scenario.id: result for result in results}


def failed(results: dict[str, Result]) -> dict[str, str]:
    """The failed scenarios and their reasons."""
    return {id: r.reason for id, r in results.items() if r.outcome is Outcome.FAIL}


async def assert_passes(
    only: Sequence[str],
    serializer: str = "json",
    *,
    router: wamp_core.Router | None = None,
    credentials: dict[str, dict[str, str]] | None = None,
    at_least: int = 1,
) -> dict[str, Result]:
    """``router`` (default: ours) passes every scenario matching ``only``: no
    failure, no skip, and at least ``at_least`` of them ran. The results."""
    results = await verdicts(router, only=only, serializer=serializer, credentials=credentials)
    assert failed(results) == {}
    assert {r.outcome for r in results.values()} == {Outcome.PASS}, results
    assert len(results) == len(select(only)) >= at_least
    return results


async def assert_caught(
    variant_router: wamp_core.Router,
    scenario_ids: str | Sequence[str],
    *,
    only: Sequence[str] | None = None,
    timeout: float = 0.5,
) -> dict[str, str]:
    """A broken variant of our router fails each of ``scenario_ids``, in a run of
    the scenarios matching ``only`` (default: just those). The failures."""
    ids = [scenario_ids] if isinstance(scenario_ids, str) else list(scenario_ids)
    results = await verdicts(variant_router, only=only or ids, timeout=timeout)
    caught = failed(results)
    for scenario_id in ids:
        assert scenario_id in caught, results[scenario_id]
    return caught


class RewritesError(wamp_core.Router):
    """A broken variant: every ERROR the router sends with the URI ``replaced``
    goes out with ``replacement`` instead, or not at all when that is None
    (subclasses may override ``instead`` to answer otherwise)."""

    replaced: str = ""
    replacement: str | None = None

    def send_error(
        self,
        session: wamp_core.RouterSession,
        request_type: wamp_core.MessageType,
        request: int,
        error: str,
        message: str | None = None,
    ) -> None:
        if error == self.replaced:
            self.instead(session, request_type, request, message)
            return
        super().send_error(session, request_type, request, error, message)

    def instead(
        self,
        session: wamp_core.RouterSession,
        request_type: wamp_core.MessageType,
        request: int,
        message: str | None,
    ) -> None:
        """What goes out in place of an ERROR ``replaced``."""
        if self.replacement is not None:
            super().send_error(session, request_type, request, self.replacement, message)


class StripsDetail(wamp_core.Router):
    """A broken variant: messages of type ``message_type`` lose ``Details.<key>``."""

    message_type: type[Any] = wamp_core.Event
    key: str = ""

    def send(self, session: wamp_core.RouterSession, message: wamp_core.Message) -> bool:
        if isinstance(message, self.message_type) and self.key in message.details:
            details = {k: v for k, v in message.details.items() if k != self.key}
            message = dataclasses.replace(message, details=details)
        return super().send(session, message)
