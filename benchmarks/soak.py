#!/usr/bin/env python
"""A bounded soak of the router: churn sessions for a while, then check that nothing stayed.

``python benchmarks/soak.py [--duration 120] [--clients 50] [--report-every 10] [--url URL]``

By default it starts its own router in a child process (``RouterHost`` + ``serve_router``
as ``wampcore router`` builds them, on 127.0.0.1 port 0: RawSocket and WebSocket) with one
more router-provided procedure, ``wampcore.soak.stats``: the router process's RSS, its trio
task count, its open connections and the sizes of the router's per-session tables.

``--clients`` client loops, spread over ``--workers`` processes, each churn sessions until
the end of the run: connect (RawSocket or WebSocket; JSON, MessagePack or CBOR), register,
subscribe, call, publish, leave -- most with GOODBYE, some by resetting the TCP connection,
some in the middle of a call (as callee or as caller). A short warm-up churn runs first;
the baseline is sampled once its sessions are gone, then every ``--report-every`` seconds
during the churn, and once more after it, when every client is gone and the router has
settled. Verdict: RSS within ``max(10 %, 2 MiB)`` of the baseline, tasks and connections
back to the baseline exactly, every table back to 0, no unexpected client error; exit
status 1 if not. ``--url`` soaks an external router (only the client-side figures).

Each sample is taken by a session of its own (connect, call, leave); the figures exclude
that session: its connection, and what it holds in the tables (measured before any client
ran). Everything is bounded: loops by the deadline and a count, each step by a timeout,
worker processes by a join timeout (then terminated).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import multiprocessing
import multiprocessing.connection
import random
import socket
import struct
import sys
import time
from collections.abc import AsyncIterator
from multiprocessing.connection import Connection
from typing import Any
from urllib.parse import urlsplit

import trio

import wamp_core
from wamp_trio import (
    ApplicationError,
    CallResult,
    MessageTransport,
    RouterHost,
    SessionEnded,
    TcpListener,
    TransportClosed,
    WampError,
    connect,
    connect_rawsocket,
    connect_websocket,
    serve_router,
)
from wamp_trio._config import RouterConfig, build_router

STATS = "wampcore.soak.stats"
TOPICS = tuple(f"soak.topic.{n}" for n in range(8))  # each subscriber has one
SERIALIZERS = ("json", "msgpack", "cbor")
#: How a client's cycle ends, with its weight.
MODES = {"clean": 6, "reset": 2, "callee-dies": 1, "caller-dies": 1}
STEP_TIMEOUT = 15.0  # seconds: bound on any one step of a cycle
MAX_CYCLES = 1_000_000  # per client loop, besides the deadline
RSS_TOLERANCE = 0.10
RSS_SLACK = 2 * 1024 * 1024


# -- the router side ------------------------------------------------------------------------


def _task_count() -> int:
    """Tasks alive in this trio run (from the root task, through every nursery)."""
    count = 0
    root = trio.lowlevel.current_root_task()
    assert root is not None
    stack = [root]
    while stack:
        task = stack.pop()
        count += 1
        for nursery in task.child_nurseries:
            stack.extend(nursery.child_tasks)
    return count


def _rss() -> int:
    """This process's resident set size, in bytes."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def stats_procedure(host: RouterHost) -> wamp_core.ProcedureHandler:
    """The handler of ``wampcore.soak.stats`` for ``host``'s router."""

    def stats(
        session: wamp_core.RouterSession, call: wamp_core.Call
    ) -> tuple[list[Any] | None, dict[str, Any] | None]:
        figures = {
            "rss": _rss(),
            "tasks": _task_count(),
            "connections": len(host.connections),
            "tables": host.router.table_sizes(),
        }
        return None, figures

    return stats


async def _serve(control: Connection, lifetime: float) -> None:
    config = RouterConfig(listeners=(TcpListener(port=0, longpoll=None),))
    router = build_router(config)
    host = RouterHost(
        router,
        queue_size=config.limits.queue_size,
        slow_consumer=config.limits.slow_consumer,
        shutdown_timeout=config.shutdown_timeout,
    )
    router.add_procedure(STATS, stats_procedure(host))
    async with trio.open_nursery() as nursery:
        endpoints = await nursery.start(serve_router, host, config.listeners)
        control.send([endpoint.url for endpoint in endpoints])
        with trio.move_on_after(lifetime):
            for _ in range(int(lifetime / 0.2) + 1):
                if control.poll():
                    break
                await trio.sleep(0.2)
        with trio.move_on_after(10):
            await host.shutdown()
        nursery.cancel_scope.cancel()


def router_process(control: Connection, lifetime: float) -> None:
    """The router's process: serves until told to stop (or ``lifetime`` seconds)."""
    trio.run(_serve, control, lifetime)


# -- the clients --------------------------------------------------------------------------


class Killable:
    """A transport factory for ``connect`` whose TCP connection ``kill()`` resets."""

    def __init__(self, url: str, serializer: str) -> None:
        self.url = url
        self.serializer = wamp_core.get_serializer(serializer)
        self.stream: trio.SocketStream | None = None

    @contextlib.asynccontextmanager
    async def open(self) -> AsyncIterator[MessageTransport]:
        parts = urlsplit(self.url)
        assert parts.hostname is not None
        assert parts.port is not None
        stream = await trio.open_tcp_stream(parts.hostname, parts.port)
        self.stream = stream
        transport: MessageTransport
        if parts.scheme == "rs":
            transport = await connect_rawsocket(stream, self.serializer)
        else:
            transport = await connect_websocket(
                stream, parts.netloc, parts.path or "/", [self.serializer.subprotocol]
            )
        try:
            yield transport
        finally:
            with contextlib.suppress(Exception):
                await transport.aclose()

    def kill(self) -> None:
        """Reset the connection (RST): no GOODBYE, no close."""
        if self.stream is not None and self.stream.socket.fileno() != -1:
            sock = self.stream.socket
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            sock.close()


class _Killed(Exception):
    """The cycle reset its own connection (expected)."""


@dataclasses.dataclass
class Figures:
    """A worker's counts."""

    joined: int = 0
    calls: int = 0
    canceled: int = 0
    interrupted: int = 0
    events: int = 0
    published: int = 0
    resets: int = 0
    errors: int = 0
    first_errors: list[str] = dataclasses.field(default_factory=list)

    def error(self, what: str) -> None:
        self.errors += 1
        if len(self.first_errors) < 5:
            self.first_errors.append(what)

    def add(self, other: Figures) -> None:
        for field in dataclasses.fields(self):
            if field.type == "int":
                setattr(self, field.name, getattr(self, field.name) + getattr(other, field.name))
        self.first_errors.extend(other.first_errors[: 5 - len(self.first_errors)])


class Client:
    """One client loop: cycle after cycle of one session's life (or two)."""

    def __init__(self, urls: list[str], name: str, figures: Figures, rng: random.Random) -> None:
        self.urls = urls
        self.name = name
        self.figures = figures
        self.rng = rng
        self.step = ""  # what the cycle is doing, for the error message

    def _target(self) -> tuple[str, str]:
        return self.rng.choice(self.urls), self.rng.choice(SERIALIZERS)

    async def run(self, deadline: float) -> None:
        """Run cycles until ``deadline`` (``time.monotonic()``)."""
        modes, weights = list(MODES), list(MODES.values())
        for _ in range(MAX_CYCLES):
            if time.monotonic() >= deadline:
                return
            mode = self.rng.choices(modes, weights)[0]
            self.step = "connect"
            try:
                with trio.fail_after(STEP_TIMEOUT):
                    if mode in ("clean", "reset"):
                        await self._work(reset=mode == "reset")
                    elif mode == "callee-dies":
                        await self._callee_dies()
                    else:
                        await self._caller_dies()
            except Exception as exc:  # counted and shown: the verdict fails
                self.figures.error(f"{mode} ({self.step}): {type(exc).__name__}: {exc}")

    def _count_event(self, *args: Any, **kwargs: Any) -> None:
        self.figures.events += 1

    async def _work(self, *, reset: bool) -> None:
        """Register, subscribe, call, publish; leave with GOODBYE, or reset."""
        url, serializer = self._target()
        killable = Killable(url, serializer)
        figures = self.figures
        try:
            async with connect(killable.open, close_timeout=STEP_TIMEOUT) as session:
                figures.joined += 1
                procedure = f"soak.{self.name}.echo"
                self.step = "register"
                await session.register(procedure, lambda *args: list(args))
                self.step = "subscribe"
                topic = self.rng.choice(TOPICS)
                await session.subscribe(topic, self._count_event, queue_size=1000)
                for n in range(self.rng.randint(1, 5)):
                    self.step = "call"
                    timeout = STEP_TIMEOUT if n % 2 else None  # a dealer timer, stopped
                    result = await session.call(procedure, n, "x" * 64, timeout=timeout)
                    assert result == [n, "x" * 64]
                    figures.calls += 1
                    self.step = "publish"
                    topic = self.rng.choice(TOPICS)
                    await session.publish(topic, n, acknowledge=n % 2 == 0)
                    figures.published += 1
                self.step = "leave"
                if reset:
                    killable.kill()
                    figures.resets += 1
                    raise _Killed
        except (_Killed, SessionEnded):
            if not reset:
                raise

    async def _callee_dies(self) -> None:
        """A callee is reset while a call waits: the caller gets wamp.error.canceled."""
        figures = self.figures
        procedure = f"soak.{self.name}.slow"
        registered, started = trio.Event(), trio.Event()

        async def slow() -> None:
            started.set()
            await trio.sleep(STEP_TIMEOUT)

        url, serializer = self._target()
        async with connect(url, serializer=serializer) as caller:
            figures.joined += 1

            async def call() -> None:
                await registered.wait()
                try:
                    await caller.call(procedure)
                except ApplicationError as exc:
                    if exc.error != wamp_core.ErrorURI.CANCELED:
                        raise
                    figures.canceled += 1
                    return
                figures.error("callee-dies: the call returned")

            async with trio.open_nursery() as nursery:
                nursery.start_soon(call)
                killable = Killable(*self._target())
                try:
                    async with connect(killable.open, close_timeout=STEP_TIMEOUT) as callee:
                        figures.joined += 1
                        self.step = "register"
                        await callee.register(procedure, slow)
                        registered.set()
                        self.step = "wait for the INVOCATION"
                        await started.wait()
                        killable.kill()
                        figures.resets += 1
                        raise _Killed
                except (_Killed, SessionEnded):
                    pass
                self.step = "wait for the caller's ERROR"

    async def _caller_dies(self) -> None:
        """A caller is reset while its call runs: the callee gets INTERRUPT."""
        figures = self.figures
        procedure = f"soak.{self.name}.slow"
        started, interrupted = trio.Event(), trio.Event()

        async def slow() -> None:
            started.set()
            try:
                await trio.sleep(STEP_TIMEOUT)
            except trio.Cancelled:
                interrupted.set()
                raise

        url, serializer = self._target()
        async with connect(url, serializer=serializer) as callee:
            figures.joined += 1
            self.step = "register"
            await callee.register(procedure, slow)
            killable = Killable(*self._target())
            try:
                async with connect(killable.open, close_timeout=STEP_TIMEOUT) as caller:
                    figures.joined += 1
                    async with trio.open_nursery() as nursery:
                        nursery.start_soon(self._quiet_call, caller, procedure)
                        self.step = "wait for the INVOCATION"
                        await started.wait()
                        killable.kill()
                        figures.resets += 1
                        nursery.cancel_scope.cancel()
                    raise _Killed
            except (_Killed, SessionEnded):
                pass
            self.step = "wait for the INTERRUPT"
            await interrupted.wait()  # the router's INTERRUPT (killnowait)
            figures.interrupted += 1

    @staticmethod
    async def _quiet_call(session: Any, procedure: str) -> None:
        with contextlib.suppress(WampError):
            await session.call(procedure)


async def _run_clients(
    worker: int, urls: list[str], clients: int, deadline: float, progress: Connection
) -> Figures:
    figures = Figures()
    rng = random.Random(worker)

    async def report() -> None:
        for _ in range(MAX_CYCLES):
            progress.send(("progress", worker, dataclasses.asdict(figures)))
            await trio.sleep(1.0)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(report)
        async with trio.open_nursery() as loops:
            for index in range(clients):
                client = Client(urls, f"w{worker}c{index}", figures, random.Random(rng.random()))
                loops.start_soon(client.run, deadline)
        nursery.cancel_scope.cancel()
    return figures


def worker_process(
    worker: int, urls: list[str], clients: int, seconds: float, progress: Connection
) -> None:
    """A worker process: ``clients`` client loops for ``seconds``; sends its figures."""
    deadline = time.monotonic() + seconds
    figures = trio.run(_run_clients, worker, urls, clients, deadline, progress)
    progress.send(("done", worker, dataclasses.asdict(figures)))


# -- sampling and reporting -----------------------------------------------------------------


@dataclasses.dataclass
class Sample:
    """The router's figures at one moment, without the sampling session's own share."""

    at: float
    phase: str
    joined: int
    calls: int
    events: int
    rss: int
    tasks: int
    connections: int
    tables: dict[str, int]

    def row(self) -> str:
        tables = ", ".join(f"{k}={v}" for k, v in sorted(self.tables.items()) if v) or "-"
        return (
            f"| {self.at:7.1f} | {self.phase:8} | {self.joined:8} | {self.calls:8} |"
            f" {self.events:9} | {self.rss / 2**20:7.1f} | {self.tasks:5} |"
            f" {self.connections:5} | {tables} |"
        )


HEADER = (
    "|  time s | phase    |   joined |    calls |    events |  RSS MB | tasks | conns |"
    " non-zero tables |\n"
    "|--------:|----------|---------:|---------:|----------:|--------:|------:|------:|"
    "-----------------|"
)


async def _stats(url: str) -> dict[str, Any]:
    with trio.fail_after(STEP_TIMEOUT):
        async with connect(url) as session:
            result = await session.call(STATS)
    assert isinstance(result, CallResult)
    return dict(result.kwargs)


def read_stats(url: str) -> dict[str, Any]:
    """Call ``wampcore.soak.stats`` from a session of its own."""
    return trio.run(_stats, url)


class Run:
    """The parent process: starts the router and the workers, samples, judges."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.context = multiprocessing.get_context("spawn")
        self.urls: list[str] = []
        self.sampler_url = ""
        self.router: Any = None
        self.control: Connection | None = None
        self.own_tables: dict[str, int] = {}
        self.own_connections = 1
        self.started = time.monotonic()
        self.totals = Figures()
        self.live: dict[int, dict[str, Any]] = {}

    def start_router(self) -> None:
        lifetime = self.args.duration + self.args.warmup + self.args.settle + 120
        parent, child = self.context.Pipe()
        self.router = self.context.Process(
            target=router_process, args=(child, lifetime), daemon=True
        )
        self.router.start()
        if not parent.poll(60):
            raise RuntimeError("the router did not start within 60 s")
        endpoints: list[str] = parent.recv()
        self.control = parent
        self.urls = [u for u in endpoints if u.startswith(("ws://", "rs://"))]
        self.sampler_url = self.urls[0]

    def stop_router(self) -> None:
        if self.control is not None:
            with contextlib.suppress(OSError):
                self.control.send("stop")
        if self.router is not None:
            self.router.join(20)
            if self.router.is_alive():
                self.router.terminate()
                self.router.join(5)

    def sample(self, phase: str) -> Sample | None:
        """The router's figures now (None for an external router, or on failure)."""
        if not self.sampler_url:
            return None
        try:
            figures = read_stats(self.sampler_url)
        except (WampError, OSError, TransportClosed, trio.TooSlowError) as exc:
            print(f"{phase}: no sample: {type(exc).__name__}: {exc}", flush=True)
            return None
        tables = {
            name: size - self.own_tables.get(name, 0) for name, size in figures["tables"].items()
        }
        live = Figures()
        for counts in self.live.values():
            live.add(Figures(**counts))
        return Sample(
            at=time.monotonic() - self.started,
            phase=phase,
            joined=self.totals.joined + live.joined,
            calls=self.totals.calls + live.calls,
            events=self.totals.events + live.events,
            rss=figures["rss"],
            tasks=figures["tasks"],
            connections=figures["connections"] - self.own_connections,
            tables=tables,
        )

    def churn(self, seconds: float, phase: str, samples: list[Sample]) -> Figures:
        """Run the workers for ``seconds``; sample every ``--report-every`` seconds."""
        args = self.args
        workers = max(1, min(args.workers, args.clients))
        share = [args.clients // workers + (i < args.clients % workers) for i in range(workers)]
        pipes = [self.context.Pipe(duplex=False) for _ in range(workers)]
        processes = [
            self.context.Process(
                target=worker_process,
                args=(i, self.urls, share[i], seconds, pipes[i][1]),
                daemon=True,
            )
            for i in range(workers)
        ]
        for process in processes:
            process.start()
        for _, sender in pipes:
            sender.close()
        receivers = [receiver for receiver, _ in pipes]
        done: dict[int, Figures] = {}
        self.live = {}
        end = time.monotonic() + seconds + STEP_TIMEOUT * 2 + 30
        next_report = time.monotonic() + args.report_every
        for _ in range(int((end - time.monotonic()) / 0.2) + 100):
            if not receivers or time.monotonic() >= end:
                break
            for ready in multiprocessing.connection.wait(receivers, 0.2):
                assert isinstance(ready, Connection)
                try:
                    kind, worker, counts = ready.recv()
                except EOFError:
                    receivers.remove(ready)
                    continue
                if kind == "done":
                    done[worker] = Figures(**counts)
                    self.live.pop(worker, None)
                    self.totals.add(done[worker])
                    receivers.remove(ready)
                else:
                    self.live[worker] = counts
            if phase == "churn" and time.monotonic() >= next_report:
                next_report += args.report_every
                sample = self.sample("during")
                if sample is not None:
                    samples.append(sample)
                    print(sample.row(), flush=True)
        for process in processes:
            process.join(10)
            if process.is_alive():
                process.terminate()
                process.join(5)
        figures = Figures()
        for worker_figures in done.values():
            figures.add(worker_figures)
        missing = workers - len(done)
        if missing:
            figures.error(f"{missing} worker process(es) never reported")
        self.live = {}
        return figures

    def settle(self, phase: str, tasks: int | None = None) -> Sample | None:
        """Sample until no client is left on the router (and, given ``tasks``, the task
        count is back to it), at most ``--settle`` seconds; the last sample."""
        deadline = time.monotonic() + self.args.settle
        sample = self.sample(phase)
        while time.monotonic() < deadline:
            if (
                sample is not None
                and sample.connections == 0
                and not any(sample.tables.values())
                and (tasks is None or sample.tasks == tasks)
            ):
                break
            time.sleep(0.5)
            sample = self.sample(phase)
        return sample


def verdict(
    baseline: Sample | None, after: Sample | None, figures: Figures, *, external: bool = False
) -> tuple[bool, list[str]]:
    """Whether the router came back to its baseline, with the reasons."""
    problems = []
    if not external and (baseline is None or after is None):
        problems.append("the router's figures are missing (baseline or after)")
    if figures.errors:
        problems.append(f"{figures.errors} unexpected client errors: {figures.first_errors}")
    if figures.joined == 0:
        problems.append("no session joined")
    if baseline is not None and after is not None:
        allowed = baseline.rss + max(RSS_TOLERANCE * baseline.rss, RSS_SLACK)
        if after.rss > allowed:
            problems.append(
                f"RSS {after.rss / 2**20:.1f} MB above baseline {baseline.rss / 2**20:.1f} MB"
                f" + max(10 %, 2 MB)"
            )
        if after.tasks != baseline.tasks:
            problems.append(f"tasks {after.tasks} != baseline {baseline.tasks}")
        if after.connections != baseline.connections:
            problems.append(f"connections {after.connections} != baseline {baseline.connections}")
        left = {name: size for name, size in after.tables.items() if size}
        if left:
            problems.append(f"tables not empty: {left}")
    return not problems, problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=120.0, help="seconds of churn")
    parser.add_argument("--clients", type=int, default=50, help="concurrent client loops")
    parser.add_argument("--workers", type=int, default=2, help="client processes")
    parser.add_argument("--report-every", type=float, default=10.0, help="seconds")
    parser.add_argument("--warmup", type=float, default=5.0, help="seconds of warm-up churn")
    parser.add_argument("--settle", type=float, default=15.0, help="seconds to settle, at most")
    parser.add_argument(
        "--url", help="soak this router (ws:// or rs://) instead: client-side figures only"
    )
    args = parser.parse_args(argv)
    if args.duration <= 0 or args.clients < 1 or args.workers < 1 or args.report_every <= 0:
        parser.error("--duration, --report-every must be > 0; --clients, --workers >= 1")
    if args.url and not args.url.startswith(("ws://", "rs://")):
        parser.error("--url must be a ws:// or rs:// URL (the clients reset TCP connections)")

    run = Run(args)
    command = " ".join(["python benchmarks/soak.py", *(argv if argv is not None else sys.argv[1:])])
    print(f"soak: {command}", flush=True)
    samples: list[Sample] = []
    baseline = after = None
    try:
        if args.url:
            run.urls = [args.url]
        else:
            run.start_router()
            print(f"router pid {run.router.pid}: {' '.join(run.urls)}", flush=True)
            idle = read_stats(run.sampler_url)
            run.own_tables = dict(idle["tables"])
            run.own_connections = idle["connections"]
        warm = Figures()
        if args.warmup > 0:
            warm = run.churn(args.warmup, "warm-up", samples)
            if warm.errors:
                print(f"warm-up: {warm.errors} client errors: {warm.first_errors}", flush=True)
            run.totals = Figures()
        if not args.url:
            print(HEADER, flush=True)
            baseline = run.settle("baseline")
            if baseline is not None:
                samples.append(baseline)
                print(baseline.row(), flush=True)
        churn_start = time.monotonic()
        figures = run.churn(args.duration, "churn", samples)
        churned = time.monotonic() - churn_start
        figures.errors += warm.errors
        figures.first_errors[:0] = warm.first_errors
        if baseline is not None:
            after = run.settle("after", baseline.tasks)
            if after is not None:
                samples.append(after)
                print(after.row(), flush=True)
    finally:
        run.stop_router()
    peak_rss = max((s.rss for s in samples), default=0)
    peak_connections = max((s.connections for s in samples), default=0)
    peak_tasks = max((s.tasks for s in samples), default=0)
    print(
        f"churned {churned:.0f} s: {figures.joined} sessions joined, {figures.calls} calls,"
        f" {figures.published} publications, {figures.events} events received,"
        f" {figures.resets} connections reset, {figures.canceled} calls canceled by a"
        f" dying callee, {figures.interrupted} callees interrupted by a dying caller,"
        f" {figures.errors} unexpected client errors",
        flush=True,
    )
    if baseline is not None and after is not None:
        print(
            f"RSS MB baseline/peak/after: {baseline.rss / 2**20:.1f}/{peak_rss / 2**20:.1f}/"
            f"{after.rss / 2**20:.1f}; tasks {baseline.tasks}/{peak_tasks}/{after.tasks};"
            f" connections {baseline.connections}/{peak_connections}/{after.connections}",
            flush=True,
        )
    ok, problems = verdict(baseline, after, figures, external=bool(args.url))
    if ok:
        scope = "client side only" if args.url else "router back to its baseline"
        print(f"verdict: PASS ({scope})", flush=True)
        return 0
    print(f"verdict: FAIL: {'; '.join(problems)}", flush=True)
    return 1


if __name__ == "__main__":
    sys.exit(main())
