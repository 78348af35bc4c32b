"""``wampcore conformance``: exit status, table, progress and reports."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path
from xml.etree import ElementTree

import trio

from tests.conformance.harness import running
from tests.conformance.test_session import NoGoodbyeEcho


async def conformance(*args: str) -> subprocess.CompletedProcess[bytes]:
    command = [sys.executable, "-c", "from wamp_trio._cli import main; raise SystemExit(main())"]
    with trio.fail_after(60):
        return await trio.run_process(
            [*command, "conformance", *args], capture_stdout=True, capture_stderr=True, check=False
        )


async def test_a_conforming_router_exits_0_with_table_and_reports(tmp_path: Path) -> None:
    report, junit = tmp_path / "report.json", tmp_path / "junit.xml"
    async with running() as urls:
        done = await conformance(
            urls["websocket"], "--only", "session", "--json", str(report), "--junit-xml", str(junit)
        )
    out, err = done.stdout.decode(), done.stderr.decode()
    assert done.returncode == 0, out + err
    assert "PASS  session.goodbye.echo" in out
    assert "BP/sessions.md, Session Closing" in out
    assert "[1/" in err  # progress
    document = json.loads(report.read_text())
    assert document["router"] == urls["websocket"]
    assert document["summary"]["fail"] == 0
    assert document["summary"]["pass"] == len(document["scenarios"]) > 0
    suite = ElementTree.parse(junit).getroot()
    assert suite.get("failures") == "0"
    assert len(suite.findall("testcase")) == len(document["scenarios"])


async def test_a_failing_scenario_exits_1_and_says_why(tmp_path: Path) -> None:
    junit = tmp_path / "junit.xml"
    async with running(NoGoodbyeEcho(["realm1"])) as urls:
        done = await conformance(
            urls["rawsocket"], "--only", "session.goodbye.echo", "--timeout", "0.5",
            "--junit-xml", str(junit), "--quiet",
        )  # fmt: skip
    out = done.stdout.decode()
    assert done.returncode == 1, out
    assert "FAIL  session.goodbye.echo" in out
    assert "expected GOODBYE in reply to GOODBYE" in out
    assert done.stderr == b""  # --quiet
    (failure,) = ElementTree.parse(junit).getroot().iter("failure")
    assert "expected GOODBYE" in (failure.get("message") or "")


async def test_list_and_only() -> None:
    done = await conformance("ws://127.0.0.1:1/ws", "--list", "--only", "session.hello")
    lines = done.stdout.decode().splitlines()
    assert done.returncode == 0
    assert lines
    assert all(line.startswith("session.hello.") for line in lines)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def test_bad_options_and_unreachable_routers_exit_2() -> None:
    cases = [
        (["ftp://127.0.0.1:1"], "unknown transport scheme"),
        (["ws://127.0.0.1:1/ws", "--only", "no.such.scenario"], "no scenario matches"),
        (["ws://127.0.0.1:1/ws", "--timeout", "0"], "--timeout must be positive"),
        (["ws://127.0.0.1:1/ws", "--ticket", "alice"], "--ticket must be AUTHID:SECRET"),
        ([f"ws://127.0.0.1:{free_port()}/ws", "--timeout", "1"], "cannot join realm"),
    ]
    for args, message in cases:
        done = await conformance(*args)
        err = done.stderr.decode()
        assert done.returncode == 2, (args, err)
        assert err.startswith("wampcore conformance: error:"), err
        assert message in err, err
        assert len(err.strip().splitlines()) == 1, err
