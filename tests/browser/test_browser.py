"""Autobahn|JS in headless Chromium against ``wampcore router``.

Opt-in: these tests carry the ``browser`` marker, which the default run
deselects; ``tox -e browser`` installs what they need (``setup.sh``: the Debian
``chromium`` package and the npm packages of ``package.json``) and runs them.

Each test starts ``wampcore router --port 0 --no-unix`` as a subprocess and
``driver.js`` (Node, playwright-core), which serves ``index.html`` on a free
loopback port and drives Chromium. Two pages, each in a browser context of its
own, join the router with Autobahn|JS (``wamp_page.js``) over one transport;
a Python session (``wamp_trio``) joins too. The browsers call, register,
publish and subscribe, with each other and with the Python peer.
"""

from __future__ import annotations

import contextlib
import json
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
import trio

from wamp_trio import ApplicationError, InvocationDetails, Session, connect

pytestmark = pytest.mark.browser

HERE = pathlib.Path(__file__).resolve().parent
NODE_MODULES = HERE / "node_modules"
REALM = "realm1"
ROUTER_COMMAND = [sys.executable, "-m", "wamp_trio"]
"""``wampcore`` of the Python running the tests."""

STEP = 60.0
"""Seconds any one step may take (starting a process, one request to the browser)."""
PAGE_TIMEOUT_MS = 20_000
"""What the page itself waits for an answer from the router, in milliseconds."""
STOP_GRACE = 20.0
"""Seconds a process gets to exit on its own before it is killed."""
TEST_BUDGET = 180.0
"""Seconds a whole test may take, cleanup aside (below pytest-timeout's 300)."""

PREFIX = "com.example.browser"
ADD = f"{PREFIX}.add"
ECHO = f"{PREFIX}.echo"
WHOAMI = f"{PREFIX}.whoami"
FAIL = f"{PREFIX}.fail"
MUL = "com.example.python.mul"
TOPIC = f"{PREFIX}.topic"
PYTHON_TOPIC = "com.example.python.topic"


class BrowserError(Exception):
    """The driver or the page answered a request with an error."""


@dataclass(frozen=True)
class Transport:
    kind: str
    """Autobahn|JS transport type: ``websocket`` or ``longpoll``."""
    route: str
    """How the page reaches the router: ``direct`` (the router's own URL, from
    the page's origin: a cross-origin request) or ``proxy`` (long-poll under the
    page's own origin, passed on to the router by driver.js)."""
    serializer: str | None
    """Serializer forced on Autobahn|JS (None: its default)."""
    protocol: str
    """The WAMP subprotocol the session must end up with."""


TRANSPORTS = [
    pytest.param(Transport("websocket", "direct", "json", "wamp.2.json"), id="websocket-json"),
    pytest.param(
        Transport("websocket", "direct", "msgpack", "wamp.2.msgpack"), id="websocket-msgpack"
    ),
    pytest.param(Transport("websocket", "direct", "cbor", "wamp.2.cbor"), id="websocket-cbor"),
    pytest.param(Transport("longpoll", "proxy", None, "wamp.2.json"), id="longpoll-same-origin"),
    pytest.param(
        Transport("longpoll", "direct", None, "wamp.2.json"),
        id="longpoll-cross-origin",
    ),
]


# -- prerequisites ------------------------------------------------------------------


def chromium_path() -> str:
    return os.environ.get("CHROMIUM", "/usr/bin/chromium")


def require_tools() -> str:
    """The node executable; fails the test naming whatever is missing."""
    missing = []
    if not os.access(chromium_path(), os.X_OK):
        missing.append(f"Chromium at {chromium_path()} (Debian package chromium)")
    node = shutil.which("node")
    if node is None:
        missing.append("node on PATH")
    for needed in ("autobahn-browser/autobahn.min.js", "playwright-core/package.json"):
        if not (NODE_MODULES / needed).is_file():
            missing.append(f"{NODE_MODULES / needed} (npm package)")
    if missing or node is None:
        pytest.fail(
            "the browser tests need: "
            + "; ".join(missing)
            + ". Run them with `tox -e browser`, or run `bash tests/browser/setup.sh` first."
        )
    return node


def autobahn_version() -> str:
    package = json.loads((NODE_MODULES / "autobahn-browser" / "package.json").read_text())
    version: str = package["version"]
    return version


# -- processes ----------------------------------------------------------------------


class Lines:
    """Lines of text from a process's output stream."""

    def __init__(self, stream: trio.abc.ReceiveStream) -> None:
        self._stream = stream
        self._buffer = bytearray()

    async def next(self) -> str:
        """The next line (without its newline); EOFError at the end of the stream."""
        while (end := self._buffer.find(b"\n")) < 0:
            data = await self._stream.receive_some(1 << 16)
            if not data:
                raise EOFError("the process closed its output")
            self._buffer += data
        line = bytes(self._buffer[:end])
        del self._buffer[: end + 1]
        return line.decode()


async def stop(process: trio.Process, sig: signal.Signals) -> None:
    """Unless it exited: send ``sig``, give the process STOP_GRACE seconds to
    exit, then kill it."""
    if process.returncode is None:
        process.send_signal(sig)
    with trio.move_on_after(STOP_GRACE):
        await process.wait()
    if process.returncode is None:
        process.kill()
        with trio.move_on_after(STOP_GRACE):
            await process.wait()


def kill_processes_using(marker: pathlib.Path) -> list[int]:
    """SIGKILL every process whose command line mentions ``marker`` (a directory
    made for this test alone); returns their PIDs. Playwright starts Chromium in
    a process group of its own: should the driver die without closing it, this
    finds what is left of it (on Linux, through /proc)."""
    killed: list[int] = []
    proc = pathlib.Path("/proc")
    if not proc.is_dir():
        return killed
    needle = os.fsencode(marker)
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if needle in cmdline:
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(entry.name), signal.SIGKILL)
                killed.append(int(entry.name))
    return killed


def tail(path: pathlib.Path, size: int = 6000) -> str:
    return path.read_text(errors="replace")[-size:] if path.exists() else ""


@contextlib.asynccontextmanager
async def running_router(directory: pathlib.Path) -> AsyncIterator[dict[str, str]]:
    """``wampcore router --port 0 --no-unix``; yields its ``websocket`` and
    ``longpoll`` URLs as it printed them. Stopped with SIGTERM."""
    log_path = directory / "router.log"
    command = [*ROUTER_COMMAND, "router", "--port", "0", "--no-unix"]
    with open(log_path, "wb") as log:
        process = await trio.lowlevel.open_process(
            command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=log
        )
        try:
            assert process.stdout is not None
            lines = Lines(process.stdout)
            urls: dict[str, str] = {}
            try:
                with trio.fail_after(STEP):
                    while not {"websocket", "longpoll"} <= urls.keys():
                        line = await lines.next()
                        print(f"router: {line}")
                        url = line.removeprefix("listening: ").split(" ")[0]
                        if url.startswith("ws://"):
                            urls["websocket"] = url
                        elif line.endswith("(long-poll)"):
                            urls["longpoll"] = url
            except (EOFError, trio.TooSlowError) as exc:
                pytest.fail(f"wampcore router did not start ({exc!r}):\n{tail(log_path)}")
            yield urls
        finally:
            with trio.CancelScope(shield=True):
                await stop(process, signal.SIGTERM)
            print(f"--- router log (exit status {process.returncode}) ---\n{tail(log_path)}")


class Browser:
    """driver.js: one JSON request per line on its stdin, one answer per line on
    its stdout."""

    def __init__(self, process: trio.Process, lines: Lines, ready: dict[str, Any]) -> None:
        self._process = process
        self._lines = lines
        self._next_id = 0
        self.chromium: str = ready["chromium"]
        self.origin: str = ready["origin"]

    async def request(self, op: str, **fields: Any) -> Any:
        self._next_id += 1
        request_id = self._next_id
        message = json.dumps({"id": request_id, "op": op, **fields}) + "\n"
        assert self._process.stdin is not None
        with trio.fail_after(STEP):
            await self._process.stdin.send_all(message.encode())
            answer: dict[str, Any] = {}
            while answer.get("id") != request_id:
                answer = json.loads(await self._lines.next())
        if not answer["ok"]:
            raise BrowserError(answer["error"])
        return answer["value"]

    async def page(self, name: str) -> Page:
        info = await self.request("page", page=name)
        return Page(self, name, info)


class Page:
    """A page (in a browser context of its own) running wamp_page.js."""

    def __init__(self, browser: Browser, name: str, info: dict[str, Any]) -> None:
        self.browser = browser
        self.name = name
        self.autobahn: str = info["autobahn"]
        self.user_agent: str = info["userAgent"]

    async def run(self, fn: str, *args: Any) -> Any:
        """``window.wampTest[fn](...args)`` in the page, awaited."""
        return await self.browser.request("eval", page=self.name, fn=fn, args=list(args))


@contextlib.asynccontextmanager
async def running_browser(
    directory: pathlib.Path, node: str, longpoll_url: str
) -> AsyncIterator[Browser]:
    """driver.js with Chromium, passing ``/lp`` of its origin on to ``longpoll_url``."""
    log_path = directory / "driver.log"
    # Playwright puts the browser's fresh profile directory under TMPDIR: one of
    # this test's own, so that whatever is left of the browser can be found. A
    # short path: Chromium puts a Unix socket in it (at most 107 bytes).
    scratch = pathlib.Path(tempfile.mkdtemp(prefix="wampcore-browser-"))
    env = {**os.environ, "TMPDIR": str(scratch), "CHROMIUM": chromium_path()}
    command = [node, str(HERE / "driver.js"), "--proxy-longpoll", longpoll_url]
    with open(log_path, "wb") as log:
        process = await trio.lowlevel.open_process(
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=log,
            env=env,
            cwd=str(HERE),
        )
        try:
            assert process.stdout is not None
            lines = Lines(process.stdout)
            try:
                with trio.fail_after(STEP):
                    ready = json.loads(await lines.next())
            except (EOFError, trio.TooSlowError) as exc:
                pytest.fail(f"driver.js did not start Chromium ({exc!r}):\n{tail(log_path)}")
            assert ready["ready"] is True
            yield Browser(process, lines, ready)
        finally:
            with trio.CancelScope(shield=True):
                # End of input asks the driver to close the browser and exit.
                assert process.stdin is not None
                with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
                    await process.stdin.aclose()
                with trio.move_on_after(STOP_GRACE):
                    await process.wait()
                await stop(process, signal.SIGTERM)  # (nothing to do once it exited)
            leftovers = kill_processes_using(scratch)
            shutil.rmtree(scratch, ignore_errors=True)
            print(
                f"--- driver log (exit status {process.returncode}; browser processes"
                f" killed afterwards: {leftovers}) ---\n{tail(log_path)}"
            )


# -- the scenario -------------------------------------------------------------------


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_autobahn_js_peers(transport: Transport, tmp_path: pathlib.Path) -> None:
    node = require_tools()
    with trio.fail_after(TEST_BUDGET):
        await scenario(transport, tmp_path, node)


async def scenario(transport: Transport, tmp_path: pathlib.Path, node: str) -> None:
    async with (
        running_router(tmp_path) as router,
        running_browser(tmp_path, node, router["longpoll"]) as browser,
    ):
        if transport.kind == "websocket":
            url = python_url = router["websocket"]
        else:
            python_url = router["longpoll"]
            url = browser.origin + "/lp" if transport.route == "proxy" else python_url
        print(f"chromium {browser.chromium}; page origin {browser.origin}; router {url}")

        callee = await browser.page("callee")
        caller = await browser.page("caller")
        assert callee.autobahn == caller.autobahn == autobahn_version()
        assert "HeadlessChrome/" in callee.user_agent

        # Both pages join, each in a browser context of its own.
        session: dict[str, int] = {}
        for page in (callee, caller):
            joined = await page.run(
                "open", url, transport.kind, REALM, transport.serializer, PAGE_TIMEOUT_MS
            )
            assert joined["transport"] == transport.kind
            assert joined["protocol"] == transport.protocol
            assert joined["authrole"] == "anonymous"
            assert {"broker", "dealer"} <= set(joined["roles"])
            assert isinstance(joined["session"], int)
            assert 1 <= joined["session"] <= 2**53
            session[page.name] = joined["session"]
        assert session["callee"] != session["caller"]

        await browser_to_browser_rpc(callee, caller, session)

        async with connect(python_url, REALM) as python:
            await python_interop_rpc(python, callee, caller, session)
            await pubsub(python, callee, caller, session)

            # A page that leaves takes its registrations along.
            closed = await callee.run("close", PAGE_TIMEOUT_MS)
            assert closed == {"reason": "closed", "message": "wamp.close.goodbye_and_out"}
            gone = await caller.run("call", ADD, [1], {}, {}, PAGE_TIMEOUT_MS)
            assert gone["error"] == "wamp.error.no_such_procedure"
            with trio.fail_after(STEP), pytest.raises(ApplicationError) as info:
                await python.call(ADD, 1)
            assert info.value.error == "wamp.error.no_such_procedure"

        closed = await caller.run("close", PAGE_TIMEOUT_MS)
        assert closed == {"reason": "closed", "message": "wamp.close.goodbye_and_out"}


async def browser_to_browser_rpc(callee: Page, caller: Page, session: dict[str, int]) -> None:
    """The callee page registers procedures; the caller page calls them."""
    for procedure, behaviour in ((ADD, "add"), (ECHO, "echo"), (WHOAMI, "whoami"), (FAIL, "fail")):
        registration = await callee.run("register", procedure, behaviour, {})
        assert isinstance(registration, int)

    async def call(
        procedure: str, args: list[Any], kwargs: dict[str, Any], options: dict[str, Any]
    ) -> Any:
        return await caller.run("call", procedure, args, kwargs, options, PAGE_TIMEOUT_MS)

    assert await call(ADD, [1, 2, 3.5], {}, {}) == {"args": [6.5], "kwargs": {}}

    args = [1, "two", {"three": [3, None, True]}, -0.25]
    kwargs = {"text": "caf\u00e9 \u4e2d\u6587 \U0001f600", "n": -7, "list": [[], {}]}
    assert await call(ECHO, args, kwargs, {}) == {"args": args[::-1], "kwargs": kwargs}

    # Larger than a typical TCP segment or HTTP chunk, both ways.
    big = "0123456789abcdef" * 8192
    assert await call(ECHO, [big, "end"], {}, {}) == {"args": ["end", big], "kwargs": {}}

    who = await call(WHOAMI, [], {}, {"disclose_me": True})
    assert who["kwargs"]["caller"] == session["caller"]

    failed = await call(FAIL, ["why"], {"code": 7}, {})
    assert failed == {"error": "com.example.browser.failed", "args": ["why"], "kwargs": {"code": 7}}

    missing = await call(f"{PREFIX}.missing", [], {}, {})
    assert missing["error"] == "wamp.error.no_such_procedure"

    # What the callee page saw, in order.
    invocations = await callee.run("invocations")
    assert [i["procedure"] for i in invocations] == [ADD, ECHO, ECHO, WHOAMI, FAIL]
    assert invocations[0]["args"] == [1, 2, 3.5]
    assert invocations[1]["kwargs"] == kwargs
    assert invocations[3]["caller"] == session["caller"]
    assert invocations[4] == {
        "procedure": FAIL,
        "args": ["why"],
        "kwargs": {"code": 7},
        "caller": None,
    }


async def python_interop_rpc(
    python: Session, callee: Page, caller: Page, session: dict[str, int]
) -> None:
    """A Python session calls a browser's procedure and registers one a browser calls."""
    with trio.fail_after(STEP):
        assert await python.call(ADD, 4, 5) == 9

    callers: list[int | None] = []

    def mul(a: int, b: int, *, details: InvocationDetails) -> int:
        callers.append(details.caller)
        return a * b

    with trio.fail_after(STEP):
        await python.register(MUL, mul)
    answer = await caller.run("call", MUL, [6, 7], {}, {"disclose_me": True}, PAGE_TIMEOUT_MS)
    assert answer == {"args": [42], "kwargs": {}}
    assert callers == [session["caller"]]


async def pubsub(python: Session, callee: Page, caller: Page, session: dict[str, int]) -> None:
    """Browser to browser and to Python, and Python to browser."""
    for page in (callee, caller):
        subscription = await page.run("subscribe", TOPIC, {})
        assert isinstance(subscription, int)
    with trio.fail_after(STEP):
        python_events = await python.subscribe(TOPIC)

    first = await caller.run(
        "publish", TOPIC, [1, "two"], {"three": 3}, {"disclose_me": True}, PAGE_TIMEOUT_MS
    )
    second = await caller.run(
        "publish", TOPIC, ["again"], {}, {"exclude_me": False}, PAGE_TIMEOUT_MS
    )
    assert isinstance(first["publication"], int)
    assert isinstance(second["publication"], int)
    assert first["publication"] != second["publication"]

    expected_first: dict[str, Any] = {
        "args": [1, "two"],
        "kwargs": {"three": 3},
        "publisher": session["caller"],
        "topic": TOPIC,
    }
    expected_second: dict[str, Any] = {
        "args": ["again"],
        "kwargs": {},
        "publisher": None,
        "topic": TOPIC,
    }
    # The other page gets both, in order.
    assert await callee.run("events", TOPIC, 2, PAGE_TIMEOUT_MS) == [
        expected_first,
        expected_second,
    ]
    # The publisher only gets the second: the first excluded it (the default).
    # Events arrive in order, so had the first come, it would be in the list.
    assert await caller.run("events", TOPIC, 1, PAGE_TIMEOUT_MS) == [expected_second]

    # The Python subscriber gets both.
    with trio.fail_after(STEP):
        received = [await anext(python_events), await anext(python_events)]
    assert [(e.args, e.kwargs, e.publisher) for e in received] == [
        ((1, "two"), {"three": 3}, session["caller"]),
        (("again",), {}, None),
    ]
    assert [e.publication_id for e in received] == [first["publication"], second["publication"]]

    # Python publishes, a page receives.
    await caller.run("subscribe", PYTHON_TOPIC, {})
    with trio.fail_after(STEP):
        await python.publish(PYTHON_TOPIC, "from python", acknowledge=True, n=1)
    assert await caller.run("events", PYTHON_TOPIC, 1, PAGE_TIMEOUT_MS) == [
        {"args": ["from python"], "kwargs": {"n": 1}, "publisher": None, "topic": PYTHON_TOPIC}
    ]
