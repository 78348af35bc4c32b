"""``wampcore bench URL``: measure a WAMP router (see docs/bench.md)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import TextIO

import trio

from ._load import ECHO_TRANSPORTS, SERIALIZERS, WORKLOADS, BenchConfig, run_benchmark

__all__ = ["add_arguments", "config_from", "main", "run_command"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The command's options."""
    parser.add_argument(
        "url",
        nargs="?",
        help="the router: ws://, wss://, rs://, rss://, unix://, http:// (none for echo-rpc)",
    )
    parser.add_argument(
        "--workload",
        choices=WORKLOADS,
        default="rpc-latency",
        help="what to measure (default rpc-latency)",
    )
    parser.add_argument("--realm", default="realm1", help="an open realm (default realm1)")
    parser.add_argument("--serializer", choices=SERIALIZERS, default="json", help="default json")
    parser.add_argument(
        "--payload",
        type=int,
        default=100,
        metavar="BYTES",
        help="size of the string sent as Args[0] of each call / event (default 100)",
    )
    parser.add_argument(
        "--count", type=int, default=1000, metavar="N", help="rpc-latency: calls (default 1000)"
    )
    parser.add_argument(
        "--warmup-calls",
        type=int,
        default=100,
        metavar="N",
        help="rpc-latency: calls before measuring (default 100)",
    )
    parser.add_argument(
        "--warmup",
        type=float,
        default=1.0,
        metavar="SECONDS",
        help="timed workloads: load before the measured window (default 1)",
    )
    parser.add_argument(
        "--duration",
        type=float,
        default=5.0,
        metavar="SECONDS",
        help="timed workloads: the measured window (default 5)",
    )
    parser.add_argument(
        "--outstanding",
        type=int,
        default=10,
        metavar="K",
        help="rpc-throughput, echo-rpc: calls in flight, over all processes (default 10)",
    )
    parser.add_argument(
        "--processes",
        type=int,
        default=2,
        metavar="P",
        help="worker processes for the callers, subscribers or idle sessions (default 2)",
    )
    parser.add_argument(
        "--callees",
        type=int,
        default=1,
        metavar="N",
        help="rpc workloads: callee sessions, one process each; more than one"
        " registers with invoke=roundrobin (default 1)",
    )
    parser.add_argument(
        "--subscribers", type=int, default=10, metavar="N", help="fanout (default 10)"
    )
    parser.add_argument(
        "--window",
        type=int,
        default=100,
        metavar="W",
        help="fanout: unacknowledged publications at most (default 100)",
    )
    parser.add_argument(
        "--sessions", type=int, default=100, metavar="N", help="idle: sessions (default 100)"
    )
    parser.add_argument(
        "--hold",
        type=float,
        default=5.0,
        metavar="SECONDS",
        help="idle: how long the sessions are held (default 5)",
    )
    parser.add_argument(
        "--router-pid",
        type=int,
        action="append",
        default=[],
        metavar="PID",
        help="idle: a router process whose RSS to measure (repeatable: the RSS is summed)",
    )
    parser.add_argument(
        "--echo-transport",
        choices=ECHO_TRANSPORTS,
        default="ws",
        help="echo-rpc: the echo server's transport (default ws)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=60.0,
        metavar="SECONDS",
        help="bound on connecting and joining, and on rpc-latency's calls (default 60)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def config_from(args: argparse.Namespace) -> BenchConfig:
    """The ``BenchConfig`` the options describe (``validate()`` is up to the caller)."""
    return BenchConfig(
        workload=args.workload,
        url=args.url,
        realm=args.realm,
        serializer=args.serializer,
        payload=args.payload,
        count=args.count,
        warmup_calls=args.warmup_calls,
        warmup=args.warmup,
        duration=args.duration,
        outstanding=args.outstanding,
        processes=args.processes,
        callees=args.callees,
        subscribers=args.subscribers,
        window=args.window,
        sessions=args.sessions,
        hold=args.hold,
        router_pids=tuple(args.router_pid),
        timeout=args.timeout,
        echo_transport=args.echo_transport,
    )


def run_command(
    args: argparse.Namespace, out: TextIO = sys.stdout, err: TextIO = sys.stderr
) -> int:
    """Run the benchmark as the options say; the exit status (0: done,
    1: the run failed, 2: bad options)."""
    prog = "wampcore bench"
    config = config_from(args)
    try:
        config.validate()
    except ValueError as exc:
        print(f"{prog}: error: {exc}", file=err)
        return 2
    report = trio.run(run_benchmark, config)
    if args.json:
        print(json.dumps(report.to_json()), file=out)
    else:
        print(report.summary(), file=out)
    if not report.ok:
        print(f"{prog}: {report.error}", file=err)
        return 1
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m wamp_bench URL ...``."""
    parser = argparse.ArgumentParser(
        prog="wampcore bench",
        description="Measure a WAMP router: latency, throughput,"
        " fan-out and memory per idle session.",
    )
    add_arguments(parser)
    return run_command(parser.parse_args(argv))
