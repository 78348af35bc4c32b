"""``wamp_bench``: every workload at a tiny scale against our router (in-process,
over loopback) and against the echo server; the figures must be there and sane.
Nothing here asserts on timing."""

from __future__ import annotations

import functools
import importlib
import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import trio

from tests.bench import (
    BenchConfig,
    Recorder,
    Report,
    latency_summary,
    percentile,
    read_rss,
    run_benchmark,
    serve_echo,
)
from tests.conformance.harness import running

# Imported by name: its import order then does not depend on whether wamp_bench is
# first-party (see tests/bench/__init__.py).
_lean = importlib.import_module("wamp_bench._lean")

BENCHMARKS = str(Path(__file__).resolve().parents[2] / "benchmarks")


def check_latency(latency: dict[str, Any] | None, samples: int | None = None) -> None:
    assert latency is not None
    assert 0 < latency["min"] <= latency["p50"] <= latency["p90"] <= latency["p99"]
    assert latency["p99"] <= latency["p999"] <= latency["max"]
    assert latency["min"] <= latency["mean"] <= latency["max"]
    if samples is not None:
        assert latency["samples"] == samples


def check_ok(report: Report) -> dict[str, Any]:
    assert report.ok, report.error
    assert report.error is None
    document = json.loads(json.dumps(report.to_json()))  # JSON-ready
    assert document["workload"] == report.config.workload
    assert report.summary().startswith(report.config.workload)
    results: dict[str, Any] = document["results"]
    return results


async def bench(**options: Any) -> Report:
    with trio.fail_after(60):
        return await run_benchmark(BenchConfig(**options))


async def test_rpc_latency_over_websocket_json() -> None:
    async with running() as urls:
        report = await bench(
            workload="rpc-latency", url=urls["websocket"], count=30, warmup_calls=5
        )
    results = check_ok(report)
    assert results["calls"] == 30
    assert results["errors"] == results["unfinished"] == 0
    assert results["calls_per_s"] > 0
    check_latency(results["latency_us"], samples=30)
    assert report.to_json()["parameters"]["count"] == 30


async def test_rpc_latency_over_longpoll_cbor() -> None:
    async with running() as urls:
        report = await bench(
            workload="rpc-latency", url=urls["longpoll"], serializer="cbor", count=10,
            warmup_calls=2, payload=10240,
        )  # fmt: skip
    results = check_ok(report)
    assert results["calls"] == 10
    check_latency(results["latency_us"], samples=10)


async def test_rpc_throughput_over_rawsocket_with_shared_registration() -> None:
    async with running() as urls:
        report = await bench(
            workload="rpc-throughput", url=urls["rawsocket"], serializer="msgpack",
            outstanding=5, processes=2, callees=2, warmup=0.2, duration=0.6,
        )  # fmt: skip
    results = check_ok(report)
    assert results["calls"] > 0
    assert results["calls_per_s"] > 0
    assert results["errors"] == 0
    check_latency(results["latency_us"], samples=results["calls"])
    # invoke=roundrobin: both callees answered
    invocations = results["invocations_per_callee"]
    assert len(invocations) == 2
    assert min(invocations) > 0
    assert sum(invocations) >= results["calls"]


async def test_fanout_over_websocket() -> None:
    async with running() as urls:
        report = await bench(
            workload="fanout", url=urls["websocket"], serializer="msgpack", subscribers=5,
            processes=2, window=10, warmup=0.2, duration=0.6,
        )  # fmt: skip
    results = check_ok(report)
    assert results["publications"] > 0
    assert results["events"] > 0
    assert results["publications_per_s"] > 0
    assert results["events_per_s"] > 0
    assert results["publish_errors"] == results["malformed_events"] == 0
    # Events published just before the window may arrive in it: a little over 1 is fine.
    assert 0 < results["delivery_ratio"] < 2
    check_latency(results["latency_us"], samples=results["events"])


async def test_idle_sessions_and_router_rss() -> None:
    async with running() as urls:
        report = await bench(
            workload="idle", url=urls["rawsocket"], sessions=5, processes=2, hold=0.3,
            router_pids=(os.getpid(),),  # the router runs in this process
        )  # fmt: skip
    results = check_ok(report)
    assert results["connected"] == results["sessions"] == 5
    assert results["failed"] == results["lost"] == 0
    assert results["connect_errors"] == {}
    assert results["rss_before"] > 0
    assert results["rss_connected"] > 0
    assert results["rss_peak"] >= results["rss_connected"]
    assert isinstance(results["rss_delta_per_session"], float)
    assert results["worker_fd_limit"] > 0


async def test_idle_reports_connections_that_fail() -> None:
    with trio.socket.socket() as sock:  # a port nobody listens on
        await sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        report = await bench(
            workload="idle", url=f"rs://127.0.0.1:{port}", sessions=3, processes=1, hold=0
        )
    assert not report.ok
    assert report.error is not None
    assert "3 of 3 sessions could not connect" in report.error
    assert report.results["connected"] == 0
    assert sum(report.results["connect_errors"].values()) == 3
    assert "FAILED" in report.summary()


async def test_rpc_workloads_against_the_echo_server() -> None:
    async with trio.open_nursery() as nursery:
        urls = await nursery.start(serve_echo, "127.0.0.1", 0)
        latency = await bench(
            workload="rpc-latency", url=urls["rs"], serializer="msgpack", count=20, warmup_calls=2
        )
        throughput = await bench(
            workload="rpc-throughput", url=urls["ws"], outstanding=4, processes=1, warmup=0.1,
            duration=0.5,
        )  # fmt: skip
        nursery.cancel_scope.cancel()
    assert check_ok(latency)["calls"] == 20
    results = check_ok(throughput)
    assert results["calls"] > 0
    assert results["invocations_per_callee"] == [0]  # the echo server answers CALL itself


async def test_echo_rpc_starts_its_own_echo_server() -> None:
    report = await bench(
        workload="echo-rpc", echo_transport="rs", serializer="cbor", outstanding=3, processes=1,
        warmup=0.1, duration=0.5,
    )  # fmt: skip
    results = check_ok(report)
    assert results["echo_url"].startswith("rs://127.0.0.1:")
    assert results["calls"] > 0
    check_latency(results["latency_us"], samples=results["calls"])


async def test_a_router_that_never_answers_fails_in_bounded_time() -> None:
    accepted: list[trio.SocketStream] = []

    async def mute(stream: trio.SocketStream) -> None:
        accepted.append(stream)
        await trio.sleep_forever()

    async with trio.open_nursery() as nursery:
        (listener,) = await nursery.start(
            functools.partial(trio.serve_tcp, mute, 0, host="127.0.0.1")
        )
        port = listener.socket.getsockname()[1]
        report = await bench(workload="rpc-latency", url=f"rs://127.0.0.1:{port}", timeout=0.5)
        nursery.cancel_scope.cancel()
    assert not report.ok
    assert "no 'ready' in time" in (report.error or "")
    assert accepted


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"workload": "rpc-latency"}, "needs the router's URL"),
        ({"workload": "echo-rpc", "url": "ws://x/ws"}, "give no URL"),
        ({"workload": "fanout", "url": "tcp://x:1"}, "unknown transport scheme"),
        ({"workload": "nope", "url": "ws://x/ws"}, "unknown workload"),
        ({"workload": "fanout", "url": "ws://x/ws", "subscribers": 0}, "--subscribers"),
        ({"workload": "idle", "url": "ws://x/ws", "sessions": 0}, "--sessions"),
        ({"workload": "idle", "url": "ws://x/ws", "hold": -1}, "--hold"),
        ({"workload": "fanout", "url": "ws://x/ws", "duration": 0}, "--duration"),
        ({"workload": "fanout", "url": "ws://x/ws", "serializer": "xml"}, "--serializer"),
        ({"workload": "rpc-latency", "url": "ws://x/ws", "payload": -1}, "--payload"),
    ],
)
async def test_bad_options_raise_value_error(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        await run_benchmark(BenchConfig(**options))


def test_percentiles_and_summary() -> None:
    ordered = list(range(1, 101))
    assert percentile(ordered, 0.5) == 50
    assert percentile(ordered, 0.99) == 99
    assert percentile(ordered, 1.0) == 100
    assert percentile([7], 0.01) == 7
    assert latency_summary([]) is None
    recorder = Recorder(limit=3)
    for value in (4000, 1000, 3000, 2000):
        recorder.add(value)
    assert recorder.count == 4
    summary = latency_summary([recorder.samples])
    assert summary == {
        "samples": 3, "min": 1.0, "mean": 2.7, "p50": 3.0, "p90": 4.0, "p99": 4.0,
        "p999": 4.0, "max": 4.0,
    }  # fmt: skip
    assert read_rss([os.getpid()]) > 0


async def run_cli(*args: str) -> subprocess.CompletedProcess[bytes]:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [BENCHMARKS, os.environ.get("PYTHONPATH")])),
    }
    with trio.fail_after(60):
        return await trio.run_process(
            [sys.executable, "-m", "wamp_bench", *args], capture_stdout=True,
            capture_stderr=True, check=False, env=env,
        )  # fmt: skip


async def test_the_command_prints_json_and_exits_0() -> None:
    async with running() as urls:
        done = await run_cli(urls["websocket"], "--count", "20", "--warmup-calls", "1", "--json")
    assert done.returncode == 0, done.stderr.decode()
    document = json.loads(done.stdout)
    assert document["ok"] is True
    assert document["parameters"]["url"] == urls["websocket"]
    assert document["results"]["calls"] == 20


async def test_the_command_exits_1_on_failure_and_2_on_bad_options() -> None:
    done = await run_cli("--workload", "idle")
    assert done.returncode == 2
    assert b"wampcore bench: error: idle needs the router's URL" in done.stderr
    with trio.socket.socket() as sock:
        await sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        done = await run_cli(f"ws://127.0.0.1:{port}/ws", "--count", "5")
    assert done.returncode == 1
    assert b"wampcore bench: caller" in done.stderr or b"wampcore bench: callee" in done.stderr
    assert b"FAILED" in done.stdout


async def test_fanout_and_rpc_throughput_over_rawsocket_json() -> None:
    """The lean loops' JSON fast paths (sliced answers, events and YIELDs)."""
    async with running() as urls:
        fanout = await bench(
            workload="fanout", url=urls["rawsocket"], subscribers=3, processes=1, window=10,
            warmup=0.2, duration=0.5,
        )  # fmt: skip
        throughput = await bench(
            workload="rpc-throughput", url=urls["websocket"], outstanding=6, processes=2,
            warmup=0.2, duration=0.5,
        )  # fmt: skip
    results = check_ok(fanout)
    assert results["events"] > 0
    assert results["publish_errors"] == results["malformed_events"] == 0
    check_latency(results["latency_us"], samples=results["events"])
    results = check_ok(throughput)
    assert results["calls"] > 0
    assert results["errors"] == 0
    assert results["invocations_per_callee"][0] >= results["calls"]


@pytest.mark.parametrize("codec", ["json", "msgpack", "cbor"])
def test_lean_templates_and_peeks(codec: str) -> None:
    dumps, loads = _lean.CODECS[codec]
    call = loads(_lean.call_encoder(codec, "a.proc", "xy%s")(12345))
    assert call == [48, 12345, {}, "a.proc", ["xy%s"]]
    publish = loads(_lean.publish_encoder(codec, "a.%d", "p")(7))
    assert publish[:4] == [16, 7, {"acknowledge": True}, "a.%d"]
    assert publish[4][0] == "p"
    assert type(publish[4][1]) is int
    peek = _lean.answer_peek(codec, 50)
    assert peek(dumps([50, 99, {}, ["x"]]))[:2] == (50, 99)
    assert peek(dumps([8, 48, 98, {}, "wamp.error.no_such_procedure"]))[:2] == (8, 98)
    assert peek(dumps([36, 1, 2, {}, ["x", 5]]))[0] == 36
    event = _lean.event_peek(codec)
    assert event(dumps([36, 1, 2, {}, ["x,y", 1234]])) == 1234
    assert event(dumps([36, 1, 2, {}, ["x", 5], {"k": 1}])) == 5
    assert event(dumps([36, 1, 2, {}, ["x"]])) is False
    assert event(dumps([36, 1, 2, {}, ["x", "5"]])) is False
    assert event(dumps([17, 1, 2])) is None


def test_lean_websocket_framing() -> None:
    """Fragments are joined, a PING gets its PONG, frames are masked (zero key)."""
    ours, theirs = socket.socketpair()
    with ours, theirs:
        link = _lean.Link(ours, websocket=True, binary=False)
        ours.setblocking(False)
        theirs.sendall(
            bytes((0x01, 3)) + b"[1," + bytes((0x89, 2)) + b"hi" + bytes((0x80, 3)) + b"2]x"
            + bytes((0x81, 126)) + (200).to_bytes(2, "big") + b"y" * 200
        )  # fmt: skip
        payloads: list[bytes] = []
        while len(payloads) < 2:
            payloads += link.read()
        assert payloads == [b"[1,2]x", b"y" * 200]
        assert theirs.recv(100) == bytes((0x8A, 0x82, 0, 0, 0, 0)) + b"hi"
        assert link.frame(b"abc") == bytes((0x81, 0x83, 0, 0, 0, 0)) + b"abc"
        assert link.frame(b"z" * 300)[:8] == bytes((0x81, 0xFE, 1, 44, 0, 0, 0, 0))
