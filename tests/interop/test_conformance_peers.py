"""The conformance suite against real routers: ours (every scenario passes) and,
opt-in, Crossbar.io and xconn (every scenario gets a verdict; the failures are
recorded in docs/conformance.md). Each run writes its JSON report to
``$WAMPCORE_CONFORMANCE_REPORTS`` when that is set."""

from __future__ import annotations

import contextlib
import os
import pathlib
from collections.abc import Callable

import pytest

from tests.interop.routers import running_crossbar_open, running_wampcore, running_xconn
from wamp_conformance import Outcome, Target, run_suite, select, to_json

Launcher = Callable[[pathlib.Path], contextlib.AbstractContextManager[dict[str, str]]]

KINDS = {"rs": "rawsocket", "lp": "longpoll"}


async def run_against(name: str, launcher: Launcher, directory: pathlib.Path) -> dict[str, str]:
    """Run every scenario against the router ``launcher`` starts; the failures."""
    with launcher(directory) as urls:
        others = {KINDS[key]: url for key, url in urls.items() if key in KINDS}
        target = Target(urls["ws"], timeout=2.0, urls=others)
        results = await run_suite(target)
    assert len(results) == len(select())
    reports = os.environ.get("WAMPCORE_CONFORMANCE_REPORTS")
    if reports:
        path = pathlib.Path(reports) / f"{name}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(to_json(target, results) + "\n")
    return {r.scenario.id: r.reason for r in results if r.outcome is Outcome.FAIL}


async def test_our_router_as_a_process_passes_everything(tmp_path: pathlib.Path) -> None:
    assert await run_against("wampcore", running_wampcore, tmp_path) == {}


# Scenarios every router tried so far passes: a failure of one of these against
# them means the suite (or the launcher) broke, not the router.
BASICS = (
    "session.welcome.details",
    "session.goodbye.echo",
    "rpc.call.args_kwargs",
    "rpc.call.no_such_procedure",
    "pubsub.event.payload.args_kwargs",
    "pubsub.publish.acknowledge",
)


@pytest.mark.crossbar
async def test_crossbar(tmp_path: pathlib.Path) -> None:
    failures = await run_against("crossbar", running_crossbar_open, tmp_path)
    assert not set(BASICS) & set(failures), failures


@pytest.mark.xconn
async def test_xconn(tmp_path: pathlib.Path) -> None:
    failures = await run_against("xconn", running_xconn, tmp_path)
    assert not set(BASICS) & set(failures), failures
