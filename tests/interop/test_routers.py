"""The router launchers of ``tests/interop/routers.py``, checked with our client.

Each launched router must answer a round trip through ``wamp_trio.connect`` on
every transport it offers and with every serializer: register, call (a value,
several values, an application error, a missing procedure, progressive
results), subscribe and an acknowledged publish. And each launcher must stop its
router when left. Our own router runs by default; Crossbar.io (marker
``crossbar``, ``tox -e interop-crossbar``) and xconn (marker ``xconn``,
``tox -e interop-xconn``) are opt-in.
"""

from __future__ import annotations

import contextlib
import pathlib
import socket
import urllib.parse
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import trio

from tests.interop.routers import running_crossbar_open, running_wampcore, running_xconn
from wamp_trio import ApplicationError, CallResult, connect

SERIALIZERS = ["json", "msgpack", "cbor"]

Launcher = Callable[[pathlib.Path], contextlib.AbstractContextManager[dict[str, str]]]


@pytest.fixture(scope="module")
def wampcore_router(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    with running_wampcore(tmp_path_factory.mktemp("wampcore")) as urls:
        yield urls


@pytest.fixture(scope="module")
def crossbar_router(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    with running_crossbar_open(tmp_path_factory.mktemp("crossbar-open")) as urls:
        yield urls


@pytest.fixture(scope="module")
def xconn_router(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    with running_xconn(tmp_path_factory.mktemp("xconn")) as urls:
        yield urls


async def round_trip(url: str, serializer: str) -> None:
    """Two sessions on ``url``: one registers and subscribes, the other calls
    and publishes."""
    with trio.fail_after(30):
        async with (
            connect(url, "realm1", serializer=serializer) as callee,
            connect(url, "realm1", serializer=serializer) as caller,
        ):
            assert callee.session_id is not None
            assert caller.session_id != callee.session_id
            assert {"dealer", "broker"} <= callee.router_roles.keys()

            async def add(a: int, b: int) -> int:
                return a + b

            async def pair() -> CallResult:
                return CallResult(1, 2, k=b"\x00\xff")

            async def fail() -> None:
                raise ApplicationError("com.example.oops", 1, why="testing")

            async def count(n: int, *, details: Any) -> str:
                for i in range(n):
                    await details.progress(i)
                return "done"

            prefix = f"com.example.{serializer}"
            await callee.register(f"{prefix}.add", add)
            await callee.register(f"{prefix}.pair", pair)
            await callee.register(f"{prefix}.fail", fail)
            await callee.register(f"{prefix}.count", count)

            assert await caller.call(f"{prefix}.add", 2, 3) == 5
            result = await caller.call(f"{prefix}.pair")
            assert isinstance(result, CallResult)
            assert (result.args, result.kwargs) == ((1, 2), {"k": b"\x00\xff"})
            with pytest.raises(ApplicationError) as info:
                await caller.call(f"{prefix}.fail")
            assert (info.value.error, info.value.args) == ("com.example.oops", (1,))
            assert info.value.kwargs == {"why": "testing"}
            with pytest.raises(ApplicationError) as info:
                await caller.call(f"{prefix}.missing")
            assert info.value.error == "wamp.error.no_such_procedure"
            chunks = []
            async with caller.call_progressive(f"{prefix}.count", 3) as results:
                async for chunk in results:
                    chunks.append(chunk)
            assert chunks == [0, 1, 2, "done"]

            topic = f"{prefix}.topic"
            subscription = await callee.subscribe(topic)
            publication = await caller.publish(topic, "hello", b"\x01", n=1, acknowledge=True)
            assert isinstance(publication, int)
            event = await subscription.__anext__()
            assert (event.args, event.kwargs) == (("hello", b"\x01"), {"n": 1})
            assert event.publication_id == publication


def ports(urls: dict[str, str]) -> set[int]:
    found = set()
    for url in urls.values():
        port = urllib.parse.urlsplit(url).port
        assert port is not None, url
        found.add(port)
    return found


def check_stops(launcher: Launcher, directory: pathlib.Path) -> None:
    """``launcher`` listens inside its block and no longer after it."""
    with launcher(directory) as urls:
        listening = ports(urls)
        assert listening
        assert all(
            url.startswith(("ws://127.0.0.1:", "rs://127.0.0.1:", "http://127.0.0.1:"))
            for url in urls.values()
        )
    for port in listening:
        with (
            pytest.raises(ConnectionRefusedError),
            socket.create_connection(("127.0.0.1", port), timeout=5),
        ):
            pass


# -- our router --------------------------------------------------------------


@pytest.mark.parametrize("serializer", SERIALIZERS)
@pytest.mark.parametrize("transport", ["ws", "rs", "lp"])
async def test_wampcore_round_trip(
    wampcore_router: dict[str, str], transport: str, serializer: str
) -> None:
    assert wampcore_router.keys() == {"ws", "rs", "lp"}
    await round_trip(wampcore_router[transport], serializer)


def test_wampcore_stops(tmp_path: pathlib.Path) -> None:
    check_stops(running_wampcore, tmp_path)


# -- Crossbar.io -------------------------------------------------------------


@pytest.mark.crossbar
@pytest.mark.parametrize("serializer", SERIALIZERS)
@pytest.mark.parametrize("transport", ["ws", "rs"])
async def test_crossbar_round_trip(
    crossbar_router: dict[str, str], transport: str, serializer: str
) -> None:
    assert crossbar_router.keys() == {"ws", "rs"}
    await round_trip(crossbar_router[transport], serializer)


@pytest.mark.crossbar
def test_crossbar_stops(tmp_path: pathlib.Path) -> None:
    check_stops(running_crossbar_open, tmp_path)


# -- xconn -------------------------------------------------------------------


@pytest.mark.xconn
@pytest.mark.parametrize("serializer", SERIALIZERS)
async def test_xconn_round_trip(xconn_router: dict[str, str], serializer: str) -> None:
    assert xconn_router.keys() == {"ws"}
    await round_trip(xconn_router["ws"], serializer)


@pytest.mark.xconn
def test_xconn_stops(tmp_path: pathlib.Path) -> None:
    check_stops(running_xconn, tmp_path)
