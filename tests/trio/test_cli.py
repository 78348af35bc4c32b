"""The ``wampcore`` command: flags, configuration errors, and a real router run."""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import signal
import socket
import ssl
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing

import wamp_core
from wamp_core import CloseReason
from wamp_trio._cli import _build_parser, main, parse_kwargs, parse_value, router_config, to_json
from wamp_trio._cli import run_router as run_router_
from wamp_trio._client import ApplicationError, CallResult, connect
from wamp_trio._config import DEFAULT_CONFIG, ConfigError, RealmConfig, TcpListener, UnixListener
from wamp_trio._connect import open_transport
from wamp_trio._host import Endpoint, RouterHost, serve_router
from wamp_trio._transport import TransportClosed

from .test_config import make_certificate
from .test_host import Peer

# -- command line errors: exit 2, one line on stderr --------------------------------------


def one_line_error(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert len(lines) == 1, captured.err
    return lines[0]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ([], "wampcore: error: the following arguments are required: COMMAND"),
        (["serve"], "wampcore: error: argument COMMAND: invalid choice: 'serve'"),
        (["router", "--bogus"], "wampcore: error: unrecognized arguments: --bogus"),
        (["router", "--port", "abc"], "wampcore router: error: argument --port: invalid int"),
        (["router", "--port", "70000"], "wampcore router: error: --port: must be an integer in"),
        (["router", "--port", "-1"], "--port: must be an integer in 0..65535, not -1"),
        (["router", "--host", ""], "wampcore router: error: --host: must not be empty"),
        (["router", "--ws-path", "ws"], "wampcore router: error: --ws-path: must start with '/'"),
        (["router", "--lp-path", "/l p"], "--lp-path: '/l p' is not a plain URL path"),
        (["router", "--unix", ""], "wampcore router: error: --unix: must not be empty"),
        (["router", "--unix", "a", "--no-unix"], "argument --no-unix: not allowed with argument"),
        (["router", "--realm", "a b"], "wampcore router: error: --realm: 'a b' is not a valid URI"),
        (["router", "--queue-size", "0"], "--queue-size: must be an integer >= 1, not 0"),
        (["router", "--slow-consumer", "block"], "argument --slow-consumer: invalid choice"),
        (["router", "--log-level", "loud"], "argument --log-level: invalid choice: 'loud'"),
        (
            ["router", "--no-websocket", "--no-longpoll", "--no-rawsocket"],
            "listeners[0]: websocket, longpoll and rawsocket are all off",
        ),
        (["router", "--ws-path", "/lp/ws"], "listeners[0].websocket: path '/lp/ws' lies under"),
        (["call", "ws://x"], "the following arguments are required: procedure"),
        (["register", "ws://x", "p"], "one of the arguments --reply --echo is required"),
    ],
)
def test_bad_command_line(
    capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    assert message in one_line_error(capsys, argv)


def test_bad_config_file_names_the_key(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    config = tmp_path / "router.toml"
    config.write_text('[[listeners]]\ntype = "tcp"\nport = 70000\n')
    line = one_line_error(capsys, ["router", "--config", str(config)])
    assert line == (
        f"wampcore router: error: {config}: listeners[0].port:"
        " must be an integer in 0..65535, not 70000"
    )
    config.write_text("[limits]\nqueue_size = 1\nspeed = 2\n")
    line = one_line_error(capsys, ["router", "--config", str(config)])
    assert line.endswith("limits.speed: unknown key (expected one of: queue_size,"
                         " slow_consumer, max_message_size, max_sessions,"
                         " max_sessions_per_realm, max_pending_calls, max_subscriptions,"
                         " max_registrations, max_retained_topics, max_realms,"
                         " handshake_timeout,"
                         " longpoll_idle_timeout,"
                         " keepalive_interval, keepalive_timeout, rawsocket_pings,"
                         " websocket_max_message_size,"
                         " rawsocket_max_message_size, longpoll_max_body_size)")  # fmt: skip
    config.write_text("[limits\n")
    line = one_line_error(capsys, ["router", "--config", str(config)])
    assert line.startswith(f"wampcore router: error: {config}: invalid TOML: ")
    missing = tmp_path / "missing.toml"
    line = one_line_error(capsys, ["router", "--config", str(missing)])
    assert line == f"wampcore router: error: {missing}: cannot read the file: No such file or" + (
        " directory"
    )


def test_bad_tls_files_name_the_key(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    (tmp_path / "c.pem").write_text("garbage")
    (tmp_path / "k.pem").write_text("garbage")
    config = tmp_path / "router.toml"
    config.write_text('[[listeners]]\ntype = "tcp"\ntls = { cert = "c.pem", key = "k.pem" }\n')
    line = one_line_error(capsys, ["router", "--config", str(config)])
    assert line.startswith(f"wampcore router: error: {config}: listeners[0].tls: cannot load")


def test_tcp_flags_need_a_tcp_listener(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    config = tmp_path / "router.toml"
    config.write_text('[[listeners]]\ntype = "unix"\npath = "r.sock"\n')
    line = one_line_error(capsys, ["router", "--config", str(config), "--port", "1"])
    assert line.endswith("--port: the configuration has no tcp listener to apply it to")


def test_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["router", "--help"]) == 0
    out = capsys.readouterr().out
    for flag in ("--host", "--port", "--ws-path", "--lp-path", "--no-longpoll", "--no-rawsocket",
                 "--unix", "--no-unix", "--realm", "--config", "--log-level",
                 "--limit"):  # fmt: skip
        assert flag in out


# -- flags applied to the configuration ------------------------------------------------------


def config_for(*argv: str) -> Any:
    return router_config(_build_parser().parse_args(["router", *argv]))


def test_no_flags_is_the_embedded_default() -> None:
    assert config_for() == DEFAULT_CONFIG


def test_flags_change_the_default() -> None:
    config = config_for(
        "--host", "::1", "--port", "0", "--ws-path", "/wamp", "--no-longpoll", "--no-rawsocket",
        "--unix", "/tmp/x.sock", "--realm", "a", "--realm", "b", "--realm", "a",
        "--queue-size", "8", "--slow-consumer", "disconnect", "--log-level", "debug",
    )  # fmt: skip
    assert config.listeners == (
        TcpListener("::1", 0, "/wamp", None, False),
        UnixListener("/tmp/x.sock"),
    )
    assert config.realms == (RealmConfig("a"), RealmConfig("b"))
    assert (config.limits.queue_size, config.limits.slow_consumer) == (8, "disconnect")
    assert config.log_level == "debug"
    assert config_for("--no-unix", "--lp-path", "/poll", "--no-websocket").listeners == (
        TcpListener(websocket=None, longpoll="/poll"),
    )


def test_flags_apply_to_the_config_file(tmp_path: Path) -> None:
    file = tmp_path / "router.toml"
    file.write_text(
        '[[realms]]\nname = "one"\n'
        '[[listeners]]\ntype = "unix"\npath = "/tmp/a.sock"\n'
        '[[listeners]]\ntype = "tcp"\nport = 9000\n'
        '[[listeners]]\ntype = "tcp"\nport = 9001\n'
        "[logging]\nlevel = 'warning'\n"
    )
    config = config_for("--config", str(file), "--port", "0", "--realm", "two")
    assert config.realm_names == ["one", "two"]
    assert [getattr(x, "port", None) for x in config.listeners] == [None, 0, 9001]
    assert config.log_level == "warning"
    assert config_for("--config", str(file), "--unix", "b.sock").listeners[0] == UnixListener(
        "b.sock"
    )
    file.write_text('[[listeners]]\ntype = "tcp"\nport = 9000\n')
    assert config_for("--config", str(file), "--unix", "b.sock").listeners == (
        TcpListener(port=9000),
        UnixListener("b.sock"),
    )


# -- values on the command line ------------------------------------------------------------------


def test_values() -> None:
    assert parse_value("3") == 3
    assert parse_value('{"a": [1, null]}') == {"a": [1, None]}
    assert parse_value("hello") == "hello"
    assert parse_value('"quoted"') == "quoted"
    assert parse_value("true") is True
    assert parse_kwargs(["a=1", "b=x=y", "c="]) == {"a": 1, "b": "x=y", "c": ""}
    with pytest.raises(Exception, match="expected KEY=VALUE"):
        parse_kwargs(["novalue"])
    with pytest.raises(Exception, match="expected KEY=VALUE"):
        parse_kwargs(["=1"])
    assert to_json({"b": b"\x00\x01", "t": "é"}) == '{"b": "\\u0000AAE=", "t": "é"}'
    with pytest.raises(TypeError, match="object is not JSON serializable"):
        to_json(object())


# -- running the router ------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def wamp_client(url: str, serializer: str = "json") -> AsyncIterator[Peer]:
    async with open_transport(url, serializer) as transport:
        peer = Peer(transport, transport)
        await peer.join()
        yield peer


async def expect_shutdown(peer: Peer) -> None:
    closed = await peer.expect(wamp_core.SessionClosed)
    assert closed.reason == CloseReason.SYSTEM_SHUTDOWN
    assert closed.initiated_by_router
    await peer.closed()


async def test_run_router_in_process(tmp_path: Path) -> None:
    sock = tmp_path / "r.sock"
    config = config_for("--port", "0", "--unix", str(sock))
    out = tmp_path / "out.txt"
    status: list[int] = []
    with trio.fail_after(30), out.open("w") as stream:
        async with trio.open_nursery() as nursery:

            async def run(task_status: trio.TaskStatus[list[Endpoint]]) -> None:
                status.append(await run_router_(config, out=stream, task_status=task_status))

            endpoints: list[Endpoint] = await nursery.start(run)
            urls = [e.url for e in endpoints]
            assert [e.kind for e in endpoints] == ["websocket", "longpoll", "rawsocket"] * 1 + [
                "rawsocket"
            ]
            assert urls[-1] == f"unix://{sock}"
            async with contextlib.AsyncExitStack() as stack:
                peers = [
                    await stack.enter_async_context(wamp_client(url, serializer))
                    for url, serializer in zip(urls, ["json", "msgpack", "cbor", "json"])
                ]
                await peers[0].subscribe()
                peers[1].session.publish("com.example.topic", [1], acknowledge=True)
                await peers[1].flush()
                await peers[1].expect(wamp_core.PublishSucceeded)
                assert (await peers[0].expect(wamp_core.EventReceived)).args == [1]
                os.kill(os.getpid(), signal.SIGTERM)
                async with trio.open_nursery() as clients:
                    for peer in peers:
                        clients.start_soon(expect_shutdown, peer)
    assert status == [0]
    assert out.read_text().splitlines() == [f"listening: {e}" for e in endpoints]
    assert not sock.exists()


async def test_port_in_use_exits_1(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = config_for("--port", str(port), "--no-unix")
        with trio.fail_after(30):
            assert await run_router_(config) == 1
    err = capsys.readouterr().err
    assert err.startswith("wampcore router: error: cannot listen: [Errno 98]")
    assert len(err.splitlines()) == 1


async def test_tls_listener(tmp_path: Path) -> None:
    cert, key = make_certificate(tmp_path)
    file = tmp_path / "router.toml"
    file.write_text(
        f'[[listeners]]\ntype = "tcp"\nport = 0\ntls = {{ cert = "{cert}", key = "{key}" }}\n'
    )
    config = config_for("--config", str(file))
    context = ssl.create_default_context(cafile=cert)
    with trio.fail_after(30), open(os.devnull, "w") as devnull:
        async with trio.open_nursery() as nursery:
            endpoints = await nursery.start(functools.partial(run_router_, config, out=devnull))
            assert [e.url.split(":")[0] for e in endpoints] == ["wss", "https", "rss"]
            async with open_transport(endpoints[0].url, "json", ssl_context=context) as transport:
                peer = Peer(transport, transport)
                await peer.join()
                os.kill(os.getpid(), signal.SIGINT)
                await expect_shutdown(peer)


# -- the real command, in a subprocess ---------------------------------------------------


async def read_lines(stream: trio.abc.ReceiveStream, count: int) -> list[str]:
    data = b""
    while data.count(b"\n") < count:
        chunk = await stream.receive_some()
        if not chunk:
            break
        data += chunk
    return data.decode().splitlines()


async def start_router(*argv: str, cwd: Path) -> trio.Process:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return await trio.lowlevel.open_process(
        [sys.executable, "-m", "wamp_trio", "router", *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=cwd,
        env=env,
    )


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
async def test_router_command_shuts_down_on_signal(tmp_path: Path, signum: int) -> None:
    with trio.fail_after(60):
        process = await start_router("--port", "0", "--unix", "r.sock", cwd=tmp_path)
        try:
            assert process.stdout is not None
            lines = await read_lines(process.stdout, 4)
            assert len(lines) == 4, lines
            ws, lp, rs, _ = (line.removeprefix("listening: ").split(" ")[0] for line in lines)
            assert ws.startswith("ws://127.0.0.1:")
            assert ws.endswith("/ws")
            port = int(ws.split(":")[2].split("/")[0])
            assert port != 0
            assert lines[1] == f"listening: http://127.0.0.1:{port}/lp (long-poll)"
            assert lines[2] == f"listening: rs://127.0.0.1:{port} (RawSocket)"
            assert lines[3] == "listening: unix://r.sock (RawSocket)"
            async with contextlib.AsyncExitStack() as stack:
                peers = [
                    await stack.enter_async_context(wamp_client(url))
                    for url in (ws, lp, rs, f"unix://{tmp_path}/r.sock")
                ]
                process.send_signal(signum)
                async with trio.open_nursery() as clients:
                    for peer in peers:
                        clients.start_soon(expect_shutdown, peer)
            assert await process.wait() == 0
            assert not (tmp_path / "r.sock").exists()
        finally:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()


def test_python_m_bad_flag_is_one_line(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "wamp_trio", "router", "--prot", "0"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr == ("wampcore: error: unrecognized arguments: --prot 0 (see --help)\n")


def test_config_error_type() -> None:
    error = ConfigError("listeners[0].port", "must be an integer in 0..65535, not 1e9")
    assert (error.key, str(error)) == (
        "listeners[0].port",
        "listeners[0].port: must be an integer in 0..65535, not 1e9",
    )


# -- wampcore call / publish / subscribe / register -----------------------------------------------


@contextlib.asynccontextmanager
async def router_endpoints() -> AsyncIterator[dict[str, str]]:
    """A router on 127.0.0.1:0 in this process: {"websocket": url, "longpoll": ..., ...}."""
    host = RouterHost(wamp_core.Router(["realm1"]))
    async with trio.open_nursery() as nursery:
        endpoints = await nursery.start(serve_router, host, [TcpListener(port=0)])
        yield {e.kind: e.url for e in endpoints}
        nursery.cancel_scope.cancel()


async def wampcore(*argv: str) -> subprocess.CompletedProcess[bytes]:
    return await trio.run_process(
        [sys.executable, "-m", "wamp_trio", *argv], capture_stdout=True, capture_stderr=True,
        check=False,
    )  # fmt: skip


async def start_wampcore(*argv: str) -> trio.Process:
    return await trio.lowlevel.open_process(
        [sys.executable, "-m", "wamp_trio", *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


async def test_call_command() -> None:
    async with router_endpoints() as urls, connect(urls["websocket"]) as session:

        def handler(*args: Any, **kwargs: Any) -> Any:
            if args == ("fail",):
                raise ApplicationError("com.example.oops", "it failed", 42, why="because")
            return CallResult(*args, **kwargs) if len(args) != 1 or kwargs else args[0]

        await session.register("com.example.echo", handler)
        with trio.fail_after(60):
            result = await wampcore(
                "call", urls["rawsocket"], "com.example.echo", "1", '"two"', '{"x": [3]}',
                "plain text", "--kw", "k=true", "--serializer", "msgpack",
            )  # fmt: skip
            assert result.returncode == 0, result.stderr
            assert json.loads(result.stdout) == {
                "args": [1, "two", {"x": [3]}, "plain text"],
                "kwargs": {"k": True},
            }
            result = await wampcore("call", urls["longpoll"], "com.example.echo", "[1, 2]")
            assert (result.returncode, result.stdout) == (0, b"[1, 2]\n")

            result = await wampcore("call", urls["websocket"], "com.example.echo", "fail")
            assert result.returncode == 1
            assert result.stdout == b""
            assert result.stderr.decode() == (
                'wampcore call: com.example.oops: it failed 42 {"why": "because"}\n'
            )
            result = await wampcore("call", urls["websocket"], "com.example.nothing")
            assert result.returncode == 1
            assert result.stderr.decode().startswith(
                "wampcore call: wamp.error.no_such_procedure: "
            )
            result = await wampcore("call", urls["websocket"], "com.x", "--realm", "nope")
            assert result.returncode == 1
            assert result.stderr.decode() == (
                "wampcore call: cannot join realm 'nope': wamp.error.no_such_realm:"
                " no realm 'nope'\n"
            )


async def test_publish_and_subscribe_commands() -> None:
    async with router_endpoints() as urls:
        with trio.fail_after(60):
            subscriber = await start_wampcore(
                "subscribe", urls["websocket"], "com.example.topic", "--count", "2"
            )
            assert subscriber.stderr is not None
            assert subscriber.stdout is not None
            assert await read_lines(subscriber.stderr, 1) == ["subscribed: com.example.topic"]
            result = await wampcore(
                "publish", urls["rawsocket"], "com.example.topic", "1", "--kw", "a=b"
            )
            assert (result.returncode, result.stdout, result.stderr) == (0, b"", b"")
            result = await wampcore("publish", urls["longpoll"], "com.example.topic", "[true]")
            assert result.returncode == 0
            assert await subscriber.wait() == 0
            lines = (await read_lines(subscriber.stdout, 2))[:2]
            assert [json.loads(line) for line in lines] == [
                {"topic": "com.example.topic", "args": [1], "kwargs": {"a": "b"}},
                {"topic": "com.example.topic", "args": [[True]], "kwargs": {}},
            ]
            result = await wampcore("publish", urls["websocket"], "wamp.reserved")
            assert result.returncode == 1
            assert result.stderr.decode().startswith("wampcore publish: wamp.error.invalid_uri")


async def test_subscribe_stops_cleanly_on_sigint() -> None:
    async with router_endpoints() as urls:
        with trio.fail_after(60):
            subscriber = await start_wampcore("subscribe", urls["websocket"], "com.t")
            assert subscriber.stderr is not None
            assert await read_lines(subscriber.stderr, 1) == ["subscribed: com.t"]
            subscriber.send_signal(signal.SIGINT)
            assert await subscriber.wait() == 0


@pytest.mark.parametrize("mode", ["--echo", "--reply"])
async def test_register_command(mode: str) -> None:
    async with router_endpoints() as urls:
        with trio.fail_after(60):
            reply = ["--reply", '{"ok": true}'] if mode == "--reply" else ["--echo"]
            callee = await start_wampcore(
                "register", urls["websocket"], "com.example.p", *reply, "--count", "2"
            )
            assert callee.stderr is not None
            assert callee.stdout is not None
            assert await read_lines(callee.stderr, 1) == ["registered: com.example.p"]
            async with connect(urls["rawsocket"]) as session:
                first = await session.call("com.example.p", 1, x="y")
                second = await session.call("com.example.p", "z")
            assert await callee.wait() == 0
            if mode == "--echo":
                assert (first, second) == (CallResult(1, x="y"), "z")
            else:
                assert first == second == {"ok": True}
            lines = await read_lines(callee.stdout, 2)
            assert [json.loads(line) for line in lines] == [
                {"args": [1], "kwargs": {"x": "y"}},
                {"args": ["z"], "kwargs": {}},
            ]


def test_client_command_errors_in_process(capsys: pytest.CaptureFixture[str]) -> None:
    assert "unknown transport scheme 'ftp'" in one_line_error(capsys, ["call", "ftp://x", "p"])
    assert "--kw 'nokey': expected KEY=VALUE" in one_line_error(
        capsys, ["call", "ws://127.0.0.1:1/ws", "p", "--kw", "nokey"]
    )
    assert "--count must be at least 1, not 0" in one_line_error(
        capsys, ["subscribe", "ws://127.0.0.1:1/ws", "t", "--count", "0"]
    )
    assert "--count must be at least 1, not -1" in one_line_error(
        capsys, ["register", "ws://127.0.0.1:1/ws", "p", "--echo", "--count", "-1"]
    )
    assert "unknown serializer 'yaml'" in one_line_error(
        capsys, ["publish", "ws://127.0.0.1:1/ws", "t", "--serializer", "yaml"]
    )
    with socket.socket() as closed_port:
        closed_port.bind(("127.0.0.1", 0))
        port = closed_port.getsockname()[1]
    assert main(["call", f"rs://127.0.0.1:{port}", "com.x"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("wampcore call: ")
    assert f"127.0.0.1:{port}" in err
    assert len(err.splitlines()) == 1


async def test_second_signal_forces_the_shutdown() -> None:
    config = config_for("--port", "0", "--no-unix")
    status: list[int] = []
    with trio.fail_after(30), open(os.devnull, "w") as devnull:
        async with trio.open_nursery() as nursery:

            async def run(task_status: trio.TaskStatus[list[Endpoint]]) -> None:
                status.append(await run_router_(config, out=devnull, task_status=task_status))

            endpoints: list[Endpoint] = await nursery.start(run)
            rawsocket = next(e.url for e in endpoints if e.kind == "rawsocket")
            async with open_transport(rawsocket, "json") as transport:
                mute = wamp_core.ClientSession("json")
                mute.join("realm1")
                for data in mute.data_to_send():
                    await transport.send(data)
                mute.receive_data(await transport.receive())  # WELCOME
                os.kill(os.getpid(), signal.SIGTERM)
                (closed,) = mute.receive_data(await transport.receive())
                assert isinstance(closed, wamp_core.SessionClosed)
                # The GOODBYE echo is never sent: the router would wait 5 s.
                os.kill(os.getpid(), signal.SIGTERM)
                with pytest.raises(TransportClosed):
                    await transport.receive()
    assert status == [1]


def test_router_command_sets_up_logging(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[Any] = []

    async def fake_run_router(config: Any) -> int:
        logger = logging.getLogger("wamp_trio")
        seen.append((config.log_level, logger.level, len(logger.handlers)))
        return 0

    logger = logging.getLogger("wamp_trio")
    before = (logger.level, list(logger.handlers))
    monkeypatch.setattr("wamp_trio._cli.run_router", fake_run_router)
    assert main(["router", "--no-unix", "--log-level", "debug"]) == 0
    assert seen == [("debug", logging.DEBUG, len(before[1]) + 1)]
    assert (logger.level, list(logger.handlers)) == before
