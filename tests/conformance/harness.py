"""Running the conformance suite against our own router, in-process over real
loopback sockets, and against deliberately broken variants of it."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence

import trio

import wamp_core
from wamp_conformance import Failure, Outcome, Result, Target, run_suite, select
from wamp_trio._config import TcpListener
from wamp_trio._host import RouterHost, serve_router


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


def target(urls: dict[str, str], serializer: str = "json", timeout: float = 2.0) -> Target:
    """The suite's target for a router ``running()`` serves (WebSocket as the main URL)."""
    others = {kind: url for kind, url in urls.items() if kind != "websocket"}
    return Target(urls["websocket"], serializer=serializer, timeout=timeout, urls=others)


async def verdicts(
    router: wamp_core.Router | None = None,
    only: Sequence[str] = (),
    serializer: str = "json",
    timeout: float = 2.0,
) -> dict[str, Result]:
    """Run the scenarios matching ``only`` (all without) against ``router``;
    the results by scenario ID."""
    refused: Failure | None = None
    results: list[Result] = []
    async with running(router) as urls:
        try:
            results = await run_suite(target(urls, serializer, timeout), select(only))
        except Failure as exc:  # raised outside the nursery, not as a group
            refused = exc
    if refused is not None:
        raise refused
    return {result.scenario.id: result for result in results}


def failed(results: dict[str, Result]) -> dict[str, str]:
    """The failed scenarios and their reasons."""
    return {id: r.reason for id, r in results.items() if r.outcome is Outcome.FAIL}
