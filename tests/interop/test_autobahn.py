"""Autobahn|Python's client (asyncio, from PyPI) against our router.

The router runs in this process on loopback port 0; the Autobahn client runs
in a subprocess (``autobahn_probe.py``) and reports what it saw as JSON.
"""

from __future__ import annotations

import json
import pathlib
import sys
from typing import Any

import pytest
import trio

import wamp_core
from wamp_trio import Endpoint, RouterHost, serve_router
from wamp_trio._config import TcpListener, UnixListener

PROBE = pathlib.Path(__file__).with_name("autobahn_probe.py")

pytest.importorskip("autobahn", reason="the interop tests need autobahn (in the test extras)")


async def run_probe(url: str, serializer: str, idle: float = 0.0) -> dict[str, Any]:
    with trio.fail_after(60 + idle):
        result = await trio.run_process(
            [sys.executable, str(PROBE), url, serializer, "realm1", str(idle)],
            capture_stdout=True,
            capture_stderr=True,
            check=False,
        )
    assert result.returncode == 0, result.stderr.decode(errors="replace")[-2000:]
    report: dict[str, Any] = json.loads(result.stdout.decode().strip().splitlines()[-1])
    return report


def url_for(endpoints: list[Endpoint], kind: str) -> str:
    prefix = {"websocket": "ws://", "rawsocket": "rs://", "unix": "unix://"}[kind]
    return next(e.url for e in endpoints if e.url.startswith(prefix))


@pytest.mark.parametrize(
    ("kind", "serializer"),
    [
        ("websocket", "json"),
        ("websocket", "msgpack"),
        ("websocket", "cbor"),
        ("rawsocket", "json"),
        ("rawsocket", "msgpack"),
        ("rawsocket", "cbor"),
        ("unix", "json"),
        ("unix", "msgpack"),
        ("unix", "cbor"),
    ],
)
async def test_autobahn_client_against_our_router(
    kind: str, serializer: str, tmp_path: pathlib.Path
) -> None:
    host = RouterHost(wamp_core.Router(["realm1"]))
    listeners = [TcpListener(port=0), UnixListener(path=str(tmp_path / "wamp.sock"))]
    async with trio.open_nursery() as nursery:
        endpoints: list[Endpoint] = await nursery.start(serve_router, host, listeners)
        report = await run_probe(url_for(endpoints, kind), serializer)
        nursery.cancel_scope.cancel()
    assert "exception" not in report, report
    assert 1 <= report["session"] <= 2**53
    assert report["authrole"] == "anonymous"
    assert report["call"] == 5
    assert report["binary"] == "0001ff"
    assert report["missing"] == "wamp.error.no_such_procedure"
    assert report["published"] is True
    assert report["event"] == {"args": [1, "two"], "kwargs": {"x": 3}}
    assert report["progress"] == [[3, 2, 1], "liftoff"]
    assert report["leave_reason"] == "wamp.close.goodbye_and_out"
    assert host.router.sessions == {}


@pytest.mark.parametrize("kind", ["websocket", "rawsocket", "unix"])
async def test_autobahn_client_stays_connected_under_keepalive(
    kind: str, tmp_path: pathlib.Path
) -> None:
    """The router pings a silent WebSocket peer (Autobahn answers) and sends no
    RawSocket PING by default (Autobahn|Python fails its connection on one):
    after three seconds of silence, with pings due every half second, the
    session still works."""
    host = RouterHost(wamp_core.Router(["realm1"]), keepalive_interval=0.5, keepalive_timeout=0.5)
    listeners = [TcpListener(port=0), UnixListener(path=str(tmp_path / "wamp.sock"))]
    async with trio.open_nursery() as nursery:
        endpoints: list[Endpoint] = await nursery.start(serve_router, host, listeners)
        report = await run_probe(url_for(endpoints, kind), "json", idle=3.0)
        nursery.cancel_scope.cancel()
    assert "exception" not in report, report
    assert report["call"] == 5
    assert report["leave_reason"] == "wamp.close.goodbye_and_out"
    assert host.timeout_disconnects == 0
