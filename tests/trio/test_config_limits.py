"""The ``[limits]`` keys: parsed, defaulted, validated, set by ``--limit``, and
enforced by a router that ``run_router`` starts from them."""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing

import wamp_core
from wamp_core import ErrorURI
from wamp_trio import _cli
from wamp_trio._cli import _build_parser, main, router_config
from wamp_trio._cli import run_router as run_router_
from wamp_trio._client import ApplicationError, JoinError, connect
from wamp_trio._config import (
    DEFAULT_CONFIG,
    MAX_MESSAGE_SIZE,
    ConfigError,
    Limits,
    RouterConfig,
    build_router,
    parse_config,
    parse_limits,
)
from wamp_trio._host import Endpoint, RouterHost

EVERY_LIMIT = """
[limits]
queue_size = 64
slow_consumer = "disconnect"
max_message_size = 65536
max_sessions = 500
max_sessions_per_realm = 50
max_pending_calls = 20
max_subscriptions = 30
max_registrations = 40
max_retained_topics = 60
max_realms = 70
handshake_timeout = 2.5
longpoll_idle_timeout = 12
keepalive_interval = 15
keepalive_timeout = 5.5
rawsocket_pings = true
websocket_max_message_size = 1024
rawsocket_max_message_size = 2048
longpoll_max_body_size = 4096
"""


def test_every_limit_key() -> None:
    assert parse_config(EVERY_LIMIT).limits == Limits(
        queue_size=64,
        slow_consumer="disconnect",
        max_message_size=65536,
        max_sessions=500,
        max_sessions_per_realm=50,
        max_pending_calls=20,
        max_subscriptions=30,
        max_registrations=40,
        max_retained_topics=60,
        max_realms=70,
        handshake_timeout=2.5,
        longpoll_idle_timeout=12.0,
        keepalive_interval=15.0,
        keepalive_timeout=5.5,
        rawsocket_pings=True,
        websocket_max_message_size=1024,
        rawsocket_max_message_size=2048,
        longpoll_max_body_size=4096,
    )


def test_safe_defaults() -> None:
    limits = parse_config("").limits
    assert limits == Limits() == DEFAULT_CONFIG.limits
    assert (limits.queue_size, limits.slow_consumer, limits.max_message_size) == (
        1024,
        "drop",
        MAX_MESSAGE_SIZE,
    )
    assert limits.max_sessions == 100_000
    assert limits.max_sessions_per_realm is None
    assert limits.max_pending_calls == 1000
    assert (limits.max_subscriptions, limits.max_registrations) == (10_000, 10_000)
    assert limits.max_retained_topics == 10_000
    assert limits.max_realms == 1000
    assert (limits.handshake_timeout, limits.longpoll_idle_timeout) == (10.0, 30.0)
    assert (limits.keepalive_interval, limits.keepalive_timeout) == (30.0, 30.0)
    assert limits.rawsocket_pings is False  # Autobahn|Python's RawSocket fails on a PING
    # The three sizes follow max_message_size.
    assert limits.websocket_max_message_size is None
    assert limits.rawsocket_max_message_size is None
    assert limits.longpoll_max_body_size is None
    # The benchmarks' idle workload holds 10,000 sessions on one router in one realm.
    assert limits.max_sessions >= 10_000


def test_build_router_passes_the_limits() -> None:
    router = build_router(parse_config(EVERY_LIMIT))
    assert (router.max_sessions, router.max_sessions_per_realm) == (500, 50)
    assert router.max_pending_calls == 20
    assert (router.max_subscriptions, router.max_registrations) == (30, 40)
    assert router.retained_topic_limit == 60
    assert router.realms["realm1"].broker.retained_topic_limit == 60
    assert router.max_realms == 70
    default = build_router(DEFAULT_CONFIG)
    assert (default.max_sessions, default.max_sessions_per_realm) == (100_000, None)
    assert (default.max_pending_calls, default.max_subscriptions) == (1000, 10_000)
    assert default.max_registrations == 10_000
    assert default.max_realms == 1000


def test_zero_means_no_limit() -> None:
    limits = parse_limits(
        {
            "max_sessions": 0,
            "max_sessions_per_realm": 0,
            "max_pending_calls": 0,
            "max_subscriptions": 0,
            "max_registrations": 0,
            "max_realms": 0,
            "keepalive_interval": 0,
        }
    )
    assert limits.max_sessions is None
    assert limits.max_sessions_per_realm is None
    assert limits.max_pending_calls is None
    assert limits.max_subscriptions is None
    assert limits.max_registrations is None
    assert limits.max_realms is None
    assert limits.keepalive_interval is None
    router = build_router(RouterConfig(limits=limits))
    assert router.max_sessions is None
    assert router.max_realms is None
    assert router.max_pending_calls is None


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ("max_sessions = -1", "limits.max_sessions: must be an integer >= 0, not -1"),
        ("max_sessions = 'many'", "limits.max_sessions: must be an integer >= 0, not 'many'"),
        ("max_sessions = 1.5", "limits.max_sessions: must be an integer >= 0, not 1.5"),
        ("max_sessions_per_realm = true", "limits.max_sessions_per_realm: must be an integer >="),
        ("max_pending_calls = -5", "limits.max_pending_calls: must be an integer >= 0, not -5"),
        ("max_subscriptions = []", "limits.max_subscriptions: must be an integer >= 0, not an"),
        ("max_registrations = '10'", "limits.max_registrations: must be an integer >= 0, not '1"),
        ("max_realms = -1", "limits.max_realms: must be an integer >= 0, not -1"),
        (
            "handshake_timeout = 0",
            "limits.handshake_timeout: must be a number > 0 (seconds), not 0",
        ),
        ("handshake_timeout = -1", "limits.handshake_timeout: must be a number > 0 (seconds)"),
        ("handshake_timeout = inf", "limits.handshake_timeout: must be a number > 0 (seconds), n"),
        ("handshake_timeout = nan", "limits.handshake_timeout: must be a number > 0 (seconds), n"),
        ("handshake_timeout = '10s'", "limits.handshake_timeout: must be a number > 0 (seconds)"),
        ("longpoll_idle_timeout = 0.0", "limits.longpoll_idle_timeout: must be a number > 0"),
        ("keepalive_interval = -0.5", "limits.keepalive_interval: must be a number >= 0 (second"),
        ("keepalive_interval = false", "limits.keepalive_interval: must be a number >= 0"),
        ("keepalive_timeout = 0", "limits.keepalive_timeout: must be a number > 0 (seconds)"),
        ("rawsocket_pings = 1", "limits.rawsocket_pings: must be true or false, not an integer"),
        ("websocket_max_message_size = 511", "limits.websocket_max_message_size: must be an in"),
        ("rawsocket_max_message_size = 16777217", "limits.rawsocket_max_message_size: must be"),
        ("longpoll_max_body_size = 'big'", "limits.longpoll_max_body_size: must be an integer in"),
        ("longpoll_max_body_size = 0", "limits.longpoll_max_body_size: must be an integer in 512"),
        ("max_session = 1", "limits.max_session: unknown key (expected one of: queue_size,"),
    ],
)
def test_limit_errors_name_the_key(toml: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(f"[limits]\n{toml}\n")
    assert str(info.value).startswith(message)


def one_line_error(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    assert main(argv) == 2
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert len(lines) == 1, captured.err
    return lines[0]


def test_the_cli_names_the_file_and_the_key(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    config = tmp_path / "router.toml"
    config.write_text("[limits]\nkeepalive_timeout = -3\n")
    assert one_line_error(capsys, ["router", "--config", str(config)]) == (
        f"wampcore router: error: {config}: limits.keepalive_timeout:"
        " must be a number > 0 (seconds), not -3"
    )


# -- --limit KEY=VALUE -----------------------------------------------------------------------


def config_for(*argv: str) -> RouterConfig:
    return router_config(_build_parser().parse_args(["router", *argv]))


def test_limit_flags() -> None:
    limits = config_for(
        "--limit", "max_sessions=5", "--limit", "keepalive_interval=0",
        "--limit", "slow_consumer=disconnect", "--limit", "handshake_timeout = 2.5",
        "--limit", "websocket_max_message_size=1024", "--limit", 'slow_consumer="drop"',
    ).limits  # fmt: skip
    assert limits == Limits(
        max_sessions=5,
        keepalive_interval=None,
        slow_consumer="drop",  # the last one wins
        handshake_timeout=2.5,
        websocket_max_message_size=1024,
    )


def test_limit_flags_apply_over_the_file(tmp_path: Path) -> None:
    file = tmp_path / "router.toml"
    file.write_text("[limits]\nmax_sessions = 7\nmax_subscriptions = 8\n")
    limits = config_for("--config", str(file), "--limit", "max_subscriptions=0").limits
    assert (limits.max_sessions, limits.max_subscriptions) == (7, None)


@pytest.mark.parametrize(
    ("flag", "message"),
    [
        ("max_sessions=-1", "error: --limit max_sessions: must be an integer >= 0, not -1"),
        ("max_sessions=lots", "error: --limit max_sessions: must be an integer >= 0, not 'lots'"),
        ("keepalive_timeout=0", "error: --limit keepalive_timeout: must be a number > 0 (seconds)"),
        ("speed=3", "error: --limit speed: unknown key (expected one of: queue_size,"),
        ("max_sessions", "error: --limit: expected KEY=VALUE, not 'max_sessions'"),
        ("=3", "error: --limit: expected KEY=VALUE, not '=3'"),
    ],
)
def test_bad_limit_flags(capsys: pytest.CaptureFixture[str], flag: str, message: str) -> None:
    line = one_line_error(capsys, ["router", "--limit", flag])
    assert line.startswith(f"wampcore router: {message}")


# -- run_router hands every limit on ---------------------------------------------------------


async def test_run_router_hands_the_limits_to_the_host_and_listeners(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    hosts: list[RouterHost] = []
    serve_options: dict[str, Any] = {}

    class RecordingHost(RouterHost):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            hosts.append(self)

    async def fake_serve_router(
        host: RouterHost,
        listeners: Any,
        *,
        task_status: trio.TaskStatus[list[Endpoint]],
        **options: Any,
    ) -> None:
        serve_options.update(options)
        raise OSError("not listening in this test")

    monkeypatch.setattr(_cli, "RouterHost", RecordingHost)
    monkeypatch.setattr(_cli, "serve_router", fake_serve_router)
    config = parse_config(EVERY_LIMIT)
    with trio.fail_after(10):
        assert await run_router_(config) == 1  # "cannot listen"
    (host,) = hosts
    assert (host.keepalive_interval, host.keepalive_timeout) == (15.0, 5.5)
    assert host.rawsocket_pings is True
    assert host.router.max_sessions == 500
    assert serve_options == {
        "max_message_size": 65536,
        "handshake_timeout": 2.5,
        "longpoll_idle_timeout": 12.0,
        "websocket_max_message_size": 1024,
        "rawsocket_max_message_size": 2048,
        "longpoll_max_body_size": 4096,
    }


# -- a router with tiny limits, over real sockets ---------------------------------------------

TINY = """
[[realms]]
name = "realm1"

[[realms]]
name = "realm2"

[[listeners]]
type = "tcp"
port = 0
longpoll = false

[limits]
{limits}
"""


@contextlib.asynccontextmanager
async def running_router(limits: str, more: str = "") -> AsyncIterator[dict[str, str]]:
    """``run_router`` with these ``[limits]`` lines (and ``more`` tables after);
    yields the URL of each kind."""
    config = parse_config(TINY.format(limits=limits) + more)
    async with trio.open_nursery() as nursery:

        async def run(task_status: trio.TaskStatus[list[Endpoint]]) -> None:
            with Path("/dev/null").open("w") as devnull:
                await run_router_(config, out=devnull, task_status=task_status)

        endpoints: list[Endpoint] = await nursery.start(run)
        yield {endpoint.kind: endpoint.url for endpoint in endpoints}
        nursery.cancel_scope.cancel()


async def test_max_sessions_refuses_the_next_session() -> None:
    with trio.fail_after(30):
        async with running_router("max_sessions = 1") as urls:
            async with connect(urls["websocket"]) as first:
                assert first.connected
                with pytest.raises(JoinError) as info:
                    async with connect(urls["rawsocket"], realm="realm2"):
                        raise AssertionError("unreachable")  # pragma: no cover
                assert info.value.reason == ErrorURI.NOT_AUTHORIZED
                assert info.value.message
            # The first one left: there is room again.
            async with connect(urls["rawsocket"]) as second:
                assert second.connected


async def test_a_refusal_by_a_limit_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "wamp_trio")
    with trio.fail_after(30):
        async with running_router("max_sessions = 1") as urls, connect(urls["websocket"]):
            with pytest.raises(JoinError):
                async with connect(urls["rawsocket"], realm="realm2"):
                    raise AssertionError("unreachable")  # pragma: no cover
    (line,) = [r.getMessage() for r in caplog.records if "refused by" in r.getMessage()]
    assert line.startswith("rawsocket tcp4:127.0.0.1:")
    assert line.endswith(": refused by max_sessions: the router is at its limit of 1 session")
    (record,) = [r for r in caplog.records if "refused by" in r.getMessage()]
    assert (record.levelno, record.name) == (logging.WARNING, "wamp_trio.router")


async def test_max_realms_bounds_the_auto_created_realms() -> None:
    with trio.fail_after(30):
        async with running_router(
            "max_realms = 3", "[router]\nauto_create_realms = true\n"
        ) as urls:
            async with connect(urls["websocket"], realm="realm3"):
                with pytest.raises(JoinError) as info:
                    async with connect(urls["rawsocket"], realm="realm4"):
                        raise AssertionError("unreachable")  # pragma: no cover
                assert info.value.reason == ErrorURI.NO_SUCH_REALM
                assert info.value.message == (
                    "no realm 'realm4', and the router is at its limit of 3 realms"
                )
            # realm3 was removed with its last session: there is room again.
            async with connect(urls["rawsocket"], realm="realm4") as client:
                assert client.connected


async def test_max_sessions_per_realm() -> None:
    with trio.fail_after(30):
        async with (
            running_router("max_sessions_per_realm = 1") as urls,
            connect(urls["websocket"]),
            connect(urls["websocket"], realm="realm2") as other,
        ):
            assert other.connected  # another realm has its own count
            with pytest.raises(JoinError) as info:
                async with connect(urls["rawsocket"]):
                    raise AssertionError("unreachable")  # pragma: no cover
            assert info.value.reason == ErrorURI.NOT_AUTHORIZED


async def test_max_subscriptions_and_registrations() -> None:
    limits = "max_subscriptions = 1\nmax_registrations = 1\nmax_pending_calls = 1"
    release = trio.Event()
    started = trio.Event()

    async def slow() -> str:
        started.set()
        await release.wait()
        return "done"

    with trio.fail_after(30):
        async with (
            running_router(limits) as urls,
            connect(urls["websocket"]) as callee,
            connect(urls["rawsocket"]) as caller,
        ):
            await callee.subscribe("com.example.a")
            with pytest.raises(ApplicationError) as info:
                await callee.subscribe("com.example.b")
            assert info.value.error == ErrorURI.NOT_AUTHORIZED
            await callee.register("com.example.slow", slow)
            with pytest.raises(ApplicationError) as info:
                await callee.register("com.example.other", slow)
            assert info.value.error == ErrorURI.NOT_AUTHORIZED
            async with trio.open_nursery() as nursery:
                results: list[Any] = []

                async def first_call() -> None:
                    results.append(await caller.call("com.example.slow"))

                nursery.start_soon(first_call)
                await started.wait()
                with pytest.raises(ApplicationError) as info:
                    await caller.call("com.example.slow")
                assert info.value.error == ErrorURI.NOT_AUTHORIZED
                release.set()
            assert results == ["done"]
            # Both sessions stayed.
            assert callee.connected
            assert caller.connected


async def test_handshake_timeout_drops_a_silent_client(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with running_router("handshake_timeout = 3\nkeepalive_interval = 0") as urls:
        port = int(urls["rawsocket"].rsplit(":", 1)[1])
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        async with stream:
            start = trio.current_time()
            assert await stream.receive_some() == b""  # closed, nothing said
            assert trio.current_time() - start == pytest.approx(3)


def test_limits_are_finite_where_they_must_be() -> None:
    # Times the file cannot make infinite (inf would disable a protection).
    for key in ("handshake_timeout", "longpoll_idle_timeout", "keepalive_timeout"):
        with pytest.raises(ConfigError, match=key):
            parse_limits({key: math.inf})
    assert wamp_core.Router(max_sessions=None).max_sessions is None
