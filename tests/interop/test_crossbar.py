"""Our trio client against a Crossbar.io router (PyPI ``crossbar``).

Opt-in: these tests carry the ``crossbar`` marker, which the default run
deselects; ``tox -e interop-crossbar`` installs Crossbar and runs them. The
router is started as a subprocess on two free loopback ports (WebSocket and
RawSocket) and stopped at the end.
"""

from __future__ import annotations

import contextlib
import json
import os
import pathlib
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
import trio

from wamp_trio import ApplicationError, CallResult, connect

pytestmark = pytest.mark.crossbar

PERMISSIVE = {
    "name": "anonymous",
    "permissions": [
        {
            "uri": "",
            "match": "prefix",
            "allow": {"call": True, "register": True, "publish": True, "subscribe": True},
            "disclose": {"caller": True, "publisher": True},
            "cache": True,
        }
    ],
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def crossbar_command() -> list[str]:
    found = os.environ.get("CROSSBAR") or shutil.which("crossbar")
    if found is None:
        candidate = pathlib.Path(sys.executable).with_name("crossbar")
        found = str(candidate) if candidate.exists() else None
    if found is None:
        pytest.fail("crossbar is not installed: run these tests with `tox -e interop-crossbar`")
    return [found]


@contextlib.contextmanager
def running_crossbar(
    directory: pathlib.Path, role: dict[str, Any], auth: dict[str, Any]
) -> Iterator[dict[str, str]]:
    """A Crossbar router node in ``directory``: realm ``realm1`` with ``role``, a
    WebSocket and a RawSocket transport on free loopback ports, both with the
    transport ``auth`` configuration. Yields their URLs; stopped with SIGINT."""
    cbdir = directory / ".crossbar"
    cbdir.mkdir()
    ws_port, rs_port = free_port(), free_port()
    serializers = ["json", "msgpack", "cbor"]

    def transport(kind: str, port: int) -> dict[str, Any]:
        return {
            "type": kind,
            "endpoint": {"type": "tcp", "interface": "127.0.0.1", "port": port},
            "serializers": serializers,
            "auth": auth,
        }

    config = {
        "version": 2,
        "controller": {},
        "workers": [
            {
                "type": "router",
                "realms": [{"name": "realm1", "roles": [role]}],
                "transports": [transport("websocket", ws_port), transport("rawsocket", rs_port)],
            }
        ],
    }
    (cbdir / "config.json").write_text(json.dumps(config))
    log = open(cbdir / "crossbar.log", "wb")  # noqa: SIM115
    process = subprocess.Popen(
        [*crossbar_command(), "start", "--cbdir", str(cbdir), "--loglevel", "info"],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        _wait_for_ports(process, [ws_port, rs_port], cbdir / "crossbar.log")
        yield {"ws": f"ws://127.0.0.1:{ws_port}/", "rs": f"rs://127.0.0.1:{rs_port}"}
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


@pytest.fixture(scope="module")
def crossbar(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    anonymous = {"anonymous": {"type": "static", "role": "anonymous"}}
    with running_crossbar(tmp_path_factory.mktemp("crossbar"), PERMISSIVE, anonymous) as urls:
        yield urls


def _wait_for_ports(process: subprocess.Popen[bytes], ports: list[int], log: pathlib.Path) -> None:
    import time

    deadline = time.monotonic() + 120  # Crossbar starts a controller and a worker process
    pending = list(ports)
    while pending:
        if process.poll() is not None:
            pytest.fail(f"crossbar exited early:\n{log.read_text(errors='replace')[-3000:]}")
        if time.monotonic() > deadline:
            pytest.fail(
                f"crossbar did not listen in time:\n{log.read_text(errors='replace')[-3000:]}"
            )
        try:
            with socket.create_connection(("127.0.0.1", pending[0]), timeout=1):
                pending.pop(0)
        except OSError:
            time.sleep(0.2)


CASES = [
    ("ws", "json"),
    ("ws", "msgpack"),
    ("ws", "cbor"),
    ("rs", "json"),
    ("rs", "msgpack"),
    ("rs", "cbor"),
]


@pytest.mark.parametrize(("transport", "serializer"), CASES)
async def test_our_client_against_crossbar(
    crossbar: dict[str, str], transport: str, serializer: str
) -> None:
    url = crossbar[transport]
    with trio.fail_after(30):
        async with (
            connect(url, "realm1", serializer=serializer) as callee,
            connect(url, "realm1", serializer=serializer) as caller,
        ):
            assert callee.session_id is not None
            assert "dealer" in callee.router_roles

            async def add(a: int, b: int) -> int:
                return a + b

            async def fail() -> None:
                raise ApplicationError("com.example.oops", 1, why="testing")

            async def stream(n: int, *, details: Any) -> str:
                for i in range(n):
                    await details.progress(i)
                return "done"

            async def pair() -> CallResult:
                return CallResult(1, 2, k=b"\x00\xff")

            unique = f"{transport}.{serializer}"
            await callee.register(f"com.example.{unique}.add", add)
            await callee.register(f"com.example.{unique}.fail", fail)
            await callee.register(f"com.example.{unique}.stream", stream)
            await callee.register(f"com.example.{unique}.pair", pair)

            assert await caller.call(f"com.example.{unique}.add", 2, 3) == 5
            result = await caller.call(f"com.example.{unique}.pair")
            assert isinstance(result, CallResult)
            assert (result.args, result.kwargs) == ((1, 2), {"k": b"\x00\xff"})
            with pytest.raises(ApplicationError) as info:
                await caller.call(f"com.example.{unique}.fail")
            assert info.value.error == "com.example.oops"
            assert info.value.args == (1,)
            assert info.value.kwargs == {"why": "testing"}
            with pytest.raises(ApplicationError) as info:
                await caller.call(f"com.example.{unique}.missing")
            assert info.value.error == "wamp.error.no_such_procedure"

            chunks = []
            async with caller.call_progressive(f"com.example.{unique}.stream", 3) as results:
                async for chunk in results:
                    chunks.append(chunk)
            assert chunks == [0, 1, 2, "done"]

            topic = f"com.example.{unique}.topic"
            subscription = await callee.subscribe(topic)
            publication = await caller.publish(topic, "hello", b"\x01", n=1, acknowledge=True)
            assert isinstance(publication, int)
            event = await subscription.__anext__()
            assert event.args == ("hello", b"\x01")
            assert event.kwargs == {"n": 1}
            assert event.publication_id == publication


async def test_cancel_reaches_a_crossbar_callee(crossbar: dict[str, str]) -> None:
    url = crossbar["ws"]
    started = trio.Event()
    interrupted = trio.Event()

    async def slow() -> None:
        started.set()
        try:
            await trio.sleep_forever()
        finally:
            interrupted.set()

    with trio.fail_after(30):
        async with connect(url, "realm1") as callee, connect(url, "realm1") as caller:
            await callee.register("com.example.slow", slow)
            with trio.move_on_after(60) as scope:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(caller.call, "com.example.slow")
                    await started.wait()
                    nursery.cancel_scope.cancel()
            assert not scope.cancelled_caught
            await interrupted.wait()
