"""Launchers for WAMP routers run as subprocesses, for interop and conformance runs.

Each launcher is a (sync) context manager taking a fresh working ``directory``.
It starts its router on free 127.0.0.1 ports with realm ``realm1`` open to
anonymous sessions with every permission, waits (bounded) until it listens and
yields its URLs by transport kind:

- ``"ws"``: WebSocket, ``ws://127.0.0.1:PORT/PATH``;
- ``"rs"``: RawSocket over TCP, ``rs://127.0.0.1:PORT``;
- ``"lp"``: HTTP long-poll, ``http://127.0.0.1:PORT/lp``;

only the transports that router offers. On exit the router gets SIGINT, and is
killed if it has not ended within a timeout.

Executables:

- ``running_wampcore``: our router, ``python -c ... router`` with ``sys.executable``;
- ``running_crossbar_open``: ``crossbar`` as found by
  ``tests.interop.test_crossbar.crossbar_command`` (``$CROSSBAR``, ``PATH``, or
  next to ``sys.executable``);
- ``running_xconn``: xconn's ``xcorn`` script, ``$WAMPCORE_XCONN`` (a command
  line), else next to ``sys.executable``, else on ``PATH``.
"""

from __future__ import annotations

import contextlib
import os
import pathlib
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from typing import IO, TypeVar

import pytest

from tests.interop.test_crossbar import PERMISSIVE, free_port, running_crossbar

T = TypeVar("T")

START_TIMEOUT = 60.0  # seconds until a router must listen
STOP_TIMEOUT = 15.0  # seconds between SIGINT and SIGKILL

#: ``running_wampcore``'s command: our CLI's router, every TCP transport on one
#: free port, no Unix socket.
WAMPCORE_ROUTER = [
    sys.executable,
    "-c",
    "from wamp_trio._cli import main; main()",
    "router",
    "--port",
    "0",
    "--no-unix",
]
#: The endpoints it prints, as ``listening: URL [(what)]`` lines on stdout.
WAMPCORE_KINDS = frozenset({"ws", "rs", "lp"})
SCHEME_KINDS = {"ws": "ws", "wss": "wss", "rs": "rs", "rss": "rss", "http": "lp", "https": "lps"}

#: An xconn application with nothing in it: ``xcorn`` needs one to run at all.
XCONN_APP_MODULE = "wampcore_xconn_app"
XCONN_APP_SOURCE = "from xconn import App\n\napp = App()\n"


def xconn_command() -> list[str]:
    """The command line of xconn's ``xcorn`` script."""
    configured = os.environ.get("WAMPCORE_XCONN")
    if configured:
        return shlex.split(configured)
    sibling = pathlib.Path(sys.executable).with_name("xcorn")
    if sibling.exists():
        return [str(sibling)]
    found = shutil.which("xcorn")
    if found is None:
        pytest.fail(
            "xconn is not installed: run these tests with `tox -e interop-xconn`,"
            " or set WAMPCORE_XCONN to its xcorn script"
        )
    return [found]


def _tail(log: pathlib.Path) -> str:
    try:
        return log.read_text(errors="replace")[-3000:]
    except OSError:
        return "(no log)"


def _wait_until(
    name: str,
    process: subprocess.Popen[bytes],
    log: pathlib.Path,
    ready: Callable[[], T | None],
    timeout: float = START_TIMEOUT,
) -> T:
    """Poll ``ready()`` until it returns something other than None; fail the
    test when ``process`` ends first or ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    while True:
        result = ready()
        if result is not None:
            return result
        if process.poll() is not None:
            pytest.fail(f"{name} exited early (status {process.returncode}):\n{_tail(log)}")
        if time.monotonic() > deadline:
            pytest.fail(f"{name} did not listen within {timeout} s:\n{_tail(log)}")
        time.sleep(0.1)


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def _stop(process: subprocess.Popen[bytes], timeout: float = STOP_TIMEOUT) -> None:
    """SIGINT, then SIGKILL if ``process`` has not ended within ``timeout`` s."""
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@contextlib.contextmanager
def _subprocess(
    command: list[str], directory: pathlib.Path, stdout: IO[bytes], stderr: IO[bytes] | int
) -> Iterator[subprocess.Popen[bytes]]:
    environment = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        command,
        cwd=directory,
        env=environment,
        stdin=subprocess.DEVNULL,
        stdout=stdout,
        stderr=stderr,
    )
    try:
        yield process
    finally:
        _stop(process)


def _listening_urls(out: pathlib.Path) -> dict[str, str] | None:
    """The URLs of the complete ``listening:`` lines in ``out``, by kind; None
    until every kind of ``WAMPCORE_KINDS`` is there."""
    urls: dict[str, str] = {}
    text = out.read_text(errors="replace")
    for line in text.splitlines(keepends=True):
        if not (line.endswith("\n") and line.startswith("listening: ")):
            continue
        url = line.removeprefix("listening: ").split()[0]
        kind = SCHEME_KINDS.get(url.partition("://")[0], "other")
        urls.setdefault(kind, url)
    return urls if urls.keys() >= WAMPCORE_KINDS else None


@contextlib.contextmanager
def running_wampcore(directory: pathlib.Path) -> Iterator[dict[str, str]]:
    """Our router (``wampcore router``) as a subprocess: realm ``realm1`` open to
    anonymous sessions, WebSocket (``/ws``), long-poll (``/lp``) and RawSocket
    on one free loopback port. Yields ``{"ws": ..., "rs": ..., "lp": ...}``."""
    out, log = directory / "wampcore.out", directory / "wampcore.log"
    with (
        open(out, "wb") as stdout,
        open(log, "wb") as stderr,
        _subprocess(WAMPCORE_ROUTER, directory, stdout, stderr) as process,
    ):
        urls = _wait_until("wampcore router", process, log, lambda: _listening_urls(out))
        yield {kind: urls[kind] for kind in sorted(WAMPCORE_KINDS)}


@contextlib.contextmanager
def running_crossbar_open(directory: pathlib.Path) -> Iterator[dict[str, str]]:
    """A Crossbar.io node: realm ``realm1``, anonymous sessions in a role allowed
    everything (with caller and publisher disclosure), WebSocket and RawSocket
    with the JSON, MessagePack and CBOR serializers. Yields ``{"ws", "rs"}``."""
    anonymous = {"anonymous": {"type": "static", "role": PERMISSIVE["name"]}}
    with running_crossbar(directory, PERMISSIVE, anonymous) as urls:
        yield urls


@contextlib.contextmanager
def running_xconn(directory: pathlib.Path) -> Iterator[dict[str, str]]:
    """xconn's router (PyPI ``xconn``, 0.5): realm ``realm1``, anonymous sessions
    (it has no authorisation at all), WebSocket only, at ``/ws``, with the JSON,
    MessagePack and CBOR serializers. Yields ``{"ws": ...}``.

    xconn ships no router command of its own: its ``xcorn`` script runs an
    xconn application, and with ``--start-router`` starts the embedded router
    on the host, port and realm of ``--url`` and ``--realm`` first (the
    application then joins it as one more session). An empty application is
    written to ``directory`` for it to run.
    """
    (directory / f"{XCONN_APP_MODULE}.py").write_text(XCONN_APP_SOURCE)
    port = free_port()
    url = f"ws://127.0.0.1:{port}/ws"
    command = [
        *xconn_command(),
        f"{XCONN_APP_MODULE}:app",
        "--start-router",
        "--url",
        url,
        "--realm",
        "realm1",
        "--directory",
        str(directory),
    ]
    log = directory / "xconn.log"
    with (
        open(log, "wb") as output,
        _subprocess(command, directory, output, subprocess.STDOUT) as process,
    ):
        _wait_until("xconn", process, log, lambda: True if _accepts(port) else None)
        yield {"ws": url}
