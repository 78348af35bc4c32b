"""The load generator: worker processes per workload, their coordination, and the report."""

from __future__ import annotations

import dataclasses
import multiprocessing
import secrets
import time
from collections.abc import Sequence
from multiprocessing.connection import Connection as Pipe
from typing import Any

import trio

from ._session import BenchError, check_url
from ._stats import latency_summary, read_rss
from ._worker import WorkerSpec, describe, worker_main

__all__ = ["WORKLOADS", "BenchConfig", "Report", "run_benchmark"]

WORKLOADS = ("rpc-latency", "rpc-throughput", "fanout", "idle", "echo-rpc")
SERIALIZERS = ("json", "msgpack", "cbor")
ECHO_TRANSPORTS = ("ws", "rs")

START_DELAY = 0.2
"""Seconds between the "go" and the start of the load (every worker gets it first)."""
TEARDOWN_TIMEOUT = 15.0
"""Bound on leaving and on the workers' exit."""


@dataclasses.dataclass(frozen=True)
class BenchConfig:
    """A benchmark run (the command's options); ``validate()`` checks it."""

    workload: str
    url: str | None = None
    realm: str = "realm1"
    serializer: str = "json"
    payload: int = 100
    count: int = 1000
    warmup_calls: int = 100
    warmup: float = 1.0
    duration: float = 5.0
    outstanding: int = 10
    processes: int = 2
    callees: int = 1
    subscribers: int = 10
    window: int = 100
    sessions: int = 100
    hold: float = 5.0
    router_pids: tuple[int, ...] = ()
    timeout: float = 60.0
    drain: float = 5.0
    echo_transport: str = "ws"

    def validate(self) -> None:
        """``ValueError`` naming the first bad option."""
        if self.workload not in WORKLOADS:
            raise ValueError(f"unknown workload {self.workload!r}")
        if self.workload == "echo-rpc":
            if self.url is not None:
                raise ValueError("echo-rpc starts its own echo server: give no URL")
            if self.echo_transport not in ECHO_TRANSPORTS:
                raise ValueError(f"--echo-transport must be one of {', '.join(ECHO_TRANSPORTS)}")
        elif self.url is None:
            raise ValueError(f"{self.workload} needs the router's URL")
        else:
            check_url(self.url)
        if self.serializer not in SERIALIZERS:
            raise ValueError(f"--serializer must be one of {', '.join(SERIALIZERS)}")
        for name in ("count", "outstanding", "processes", "callees", "subscribers", "window"):
            if getattr(self, name) < 1:
                raise ValueError(f"--{name} must be at least 1")
        for name in ("sessions", "payload", "warmup_calls"):
            if getattr(self, name) < 0:
                raise ValueError(f"--{name.replace('_', '-')} must not be negative")
        for name in ("warmup", "hold", "drain"):
            if getattr(self, name) < 0:
                raise ValueError(f"--{name} must not be negative")
        for name in ("duration", "timeout"):
            if getattr(self, name) <= 0:
                raise ValueError(f"--{name} must be positive")
        if self.workload == "idle" and self.sessions < 1:
            raise ValueError("--sessions must be at least 1")

    def parameters(self) -> dict[str, Any]:
        """The options that matter for this workload."""
        keys = ["url", "realm", "serializer"]
        keys += {
            "rpc-latency": ["payload", "count", "warmup_calls"],
            "rpc-throughput": ["payload", "outstanding", "processes", "callees", "warmup"],
            "echo-rpc": ["echo_transport", "payload", "outstanding", "processes", "warmup"],
            "fanout": ["payload", "subscribers", "processes", "window", "warmup"],
            "idle": ["sessions", "processes", "hold", "router_pids"],
        }[self.workload]
        if self.workload in ("rpc-throughput", "echo-rpc", "fanout"):
            keys.append("duration")
        values = {key: getattr(self, key) for key in keys}
        if "router_pids" in values:
            values["router_pids"] = list(self.router_pids)
        return values


@dataclasses.dataclass
class Report:
    """A run's outcome: ``ok``, the ``error`` when not, and the figures."""

    config: BenchConfig
    ok: bool = True
    error: str | None = None
    results: dict[str, Any] = dataclasses.field(default_factory=dict)

    def fail(self, error: str) -> None:
        """Mark the run failed (the first reason is kept)."""
        self.ok = False
        self.error = self.error or error

    def to_json(self) -> dict[str, Any]:
        """The report as one JSON-ready object."""
        return {
            "workload": self.config.workload,
            "parameters": self.config.parameters(),
            "ok": self.ok,
            "error": self.error,
            "results": self.results,
        }

    def summary(self) -> str:
        """A few human-readable lines."""
        config, results = self.config, self.results
        lines = [f"{config.workload} {config.url or ''} ({config.serializer})".replace("  ", " ")]
        latency = results.get("latency_us")
        if "calls_per_s" in results:
            lines.append(
                f"  calls: {results['calls']} in {results['seconds']:.2f} s"
                f" = {results['calls_per_s']:.0f} calls/s"
                + (f", errors: {results['errors']}" if results.get("errors") else "")
            )
        if "events_per_s" in results:
            lines.append(
                f"  publications: {results['publications']}"
                f" = {results['publications_per_s']:.0f}/s;"
                f" events delivered: {results['events']} = {results['events_per_s']:.0f}/s"
                f" ({results['delivery_ratio']:.1%} of published x subscribers)"
            )
        if latency:
            lines.append(
                "  latency (us): "
                + "  ".join(f"{key} {latency[key]}" for key in ("p50", "p90", "p99", "max"))
            )
        if "connected" in results:
            lines.append(
                f"  sessions: {results['connected']} of {results['sessions']} joined"
                f" in {results['connect_seconds']:.2f} s, {results['failed']} failed,"
                f" {results['lost']} lost while held"
            )
            if results.get("rss_delta_per_session") is not None:
                lines.append(
                    f"  router RSS: {results['rss_before'] / 2**20:.1f} MiB before,"
                    f" {results['rss_connected'] / 2**20:.1f} MiB connected:"
                    f" {results['rss_delta_per_session']:.0f} bytes per session"
                )
        if not self.ok:
            lines.append(f"  FAILED: {self.error}")
        return "\n".join(lines)


class _Worker:
    """A worker process and the parent's end of its pipe."""

    def __init__(self, context: Any, spec: WorkerSpec) -> None:
        self.name = spec.name
        self.pipe, child = context.Pipe()
        self.process = context.Process(
            target=worker_main, args=(child, spec), name=f"wamp_bench {spec.name}", daemon=True
        )
        self.process.start()
        child.close()
        self.finished = False

    async def expect(self, kind: str, deadline: float) -> dict[str, Any]:
        """The next message, which must be ``kind``: its figures. ``BenchError``
        for an error report, an exit, or nothing by ``deadline`` (trio clock)."""
        pipe: Pipe = self.pipe
        with trio.move_on_at(deadline):
            while not pipe.poll():
                await trio.lowlevel.wait_readable(pipe)
            try:
                message = pipe.recv()
            except (EOFError, OSError):
                self.finished = True
                raise BenchError(f"{self.name} exited unexpectedly") from None
            if message[0] == "error":
                self.finished = True
                raise BenchError(f"{self.name}: {message[1]}")
            if message[0] != kind:
                raise BenchError(f"{self.name} said {message[0]!r}, expected {kind!r}")
            result: dict[str, Any] = message[1]
            return result
        raise BenchError(f"{self.name}: no {kind!r} in time (a stuck router?)")

    def drain(self) -> None:
        """Read and drop whatever the worker has sent (so that it never blocks)."""
        try:
            while self.pipe.poll():
                self.pipe.recv()
        except (EOFError, OSError):
            pass

    def send(self, *message: Any) -> None:
        """Send ``message`` unless the worker is gone."""
        if not self.finished:
            try:
                self.pipe.send(message)
            except OSError:
                self.finished = True


class _Pool:
    """The run's worker processes."""

    def __init__(self) -> None:
        self.context = multiprocessing.get_context("spawn")
        self.workers: list[_Worker] = []

    def spawn(self, specs: Sequence[WorkerSpec]) -> list[_Worker]:
        workers = [_Worker(self.context, spec) for spec in specs]
        self.workers.extend(workers)
        return workers

    async def expect(
        self, workers: Sequence[_Worker], kind: str, deadline: float
    ) -> list[dict[str, Any]]:
        """``kind`` from each of ``workers`` (concurrently); the first failure wins."""
        results: list[dict[str, Any]] = [{} for _ in workers]
        failures: list[BenchError] = []

        async def one(index: int, worker: _Worker, scope: trio.CancelScope) -> None:
            try:
                results[index] = await worker.expect(kind, deadline)
            except BenchError as exc:
                failures.append(exc)
                scope.cancel()

        async with trio.open_nursery() as nursery:
            for index, worker in enumerate(workers):
                nursery.start_soon(one, index, worker, nursery.cancel_scope)
        if failures:
            raise failures[0]
        return results

    def go(self, workers: Sequence[_Worker], warmup: float, duration: float) -> tuple[int, int]:
        """Start ``workers`` together; the window's bounds (monotonic ns)."""
        start = time.monotonic_ns() + int(START_DELAY * 1e9)
        warm = start + int(warmup * 1e9)
        end = warm + int(duration * 1e9)
        for worker in workers:
            worker.send("go", start, warm, end)
        return warm, end

    async def stop(self, workers: Sequence[_Worker]) -> list[dict[str, Any]]:
        """Ask ``workers`` to leave; their final figures."""
        for worker in workers:
            worker.send("stop")
        deadline = trio.current_time() + TEARDOWN_TIMEOUT
        finals = await self.expect(workers, "done", deadline)
        for worker in workers:
            worker.finished = True
        return finals

    async def close(self) -> None:
        """Make sure every worker has exited (stop, then terminate, then kill)."""
        for worker in self.workers:
            worker.send("stop")
        with trio.CancelScope(shield=True):
            deadline = trio.current_time() + TEARDOWN_TIMEOUT
            while trio.current_time() < deadline:
                running = [w for w in self.workers if w.process.exitcode is None]
                if not running:
                    break
                for worker in running:
                    worker.drain()
                await trio.sleep(0.05)
            for worker in self.workers:
                process = worker.process
                if process.exitcode is None:
                    process.terminate()
                    await trio.to_thread.run_sync(process.join, 2.0)
                if process.exitcode is None:
                    process.kill()
                    await trio.to_thread.run_sync(process.join, 2.0)
                worker.pipe.close()
                process.close()


def _split(total: int, parts: int) -> list[int]:
    """``total`` in ``parts`` near-equal positive shares (fewer parts when short)."""
    parts = max(1, min(parts, total))
    return [total // parts + (1 if index < total % parts else 0) for index in range(parts)]


async def run_benchmark(config: BenchConfig) -> Report:
    """Run ``config`` (validated first: ``ValueError``); the report. A failure
    (a refused connection, an error, a deadline) gives ``ok=False``, never hangs."""
    config.validate()
    report = Report(config)
    pool = _Pool()
    try:
        runner = {
            "rpc-latency": _rpc_latency,
            "rpc-throughput": _rpc_throughput,
            "echo-rpc": _echo_rpc,
            "fanout": _fanout,
            "idle": _idle,
        }[config.workload]
        await runner(config, pool, report)
    except BenchError as exc:
        report.fail(str(exc))
    except Exception as exc:
        report.fail(describe(exc))
    finally:
        await pool.close()
    return report


def _spec(config: BenchConfig, role: str, name: str, **fields: Any) -> WorkerSpec:
    lifetime = config.timeout + config.warmup + config.duration + config.drain
    lifetime += config.hold + 2 * TEARDOWN_TIMEOUT
    url = fields.pop("url", config.url or "")
    return WorkerSpec(
        role=role,
        name=name,
        url=url,
        serializer=config.serializer,
        realm=config.realm,
        payload=config.payload,
        deadline=lifetime,
        connect_timeout=config.timeout,
        drain=config.drain,
        **fields,
    )


def _deadline(seconds: float) -> float:
    return trio.current_time() + seconds


def _callee_specs(config: BenchConfig, procedure: str, url: str) -> list[WorkerSpec]:
    shared = config.callees > 1
    return [
        _spec(config, "callee", f"callee {index + 1}", uri=procedure, shared=shared, url=url)
        for index in range(config.callees)
    ]


async def _rpc_latency(config: BenchConfig, pool: _Pool, report: Report) -> None:
    procedure = f"bench.{secrets.token_hex(4)}.echo"
    callees = pool.spawn(_callee_specs(config, procedure, config.url or ""))
    (caller,) = pool.spawn(
        [
            _spec(
                config,
                "caller",
                "caller",
                uri=procedure,
                count=config.count,
                warmup_calls=config.warmup_calls,
            )
        ]
    )
    await pool.expect([*callees, caller], "ready", _deadline(config.timeout))
    pool.go([caller], 0, 0)
    (result,) = await pool.expect([caller], "result", _deadline(config.timeout))
    _rpc_figures(report, [result])
    await pool.stop([caller, *callees])


async def _rpc_throughput(config: BenchConfig, pool: _Pool, report: Report) -> None:
    await _throughput(config, pool, report, config.url or "")


async def _echo_rpc(config: BenchConfig, pool: _Pool, report: Report) -> None:
    (echo,) = pool.spawn([_spec(config, "echo", "echo server")])
    (ready,) = await pool.expect([echo], "ready", _deadline(config.timeout))
    url: str = ready["urls"][config.echo_transport]
    report.results["echo_url"] = url
    await _throughput(config, pool, report, url)


async def _throughput(config: BenchConfig, pool: _Pool, report: Report, url: str) -> None:
    procedure = f"bench.{secrets.token_hex(4)}.echo"
    callees = pool.spawn(_callee_specs(config, procedure, url))
    callers = pool.spawn(
        [
            _spec(config, "caller", f"caller {n + 1}", uri=procedure, outstanding=share, url=url)
            for n, share in enumerate(_split(config.outstanding, config.processes))
        ]
    )
    await pool.expect([*callees, *callers], "ready", _deadline(config.timeout))
    pool.go(callers, config.warmup, config.duration)
    slack = START_DELAY + config.warmup + config.duration + config.drain + config.timeout
    results = await pool.expect(callers, "result", _deadline(slack))
    _rpc_figures(report, results)
    await pool.stop(callers)
    finals = await pool.stop(callees)
    report.results["invocations_per_callee"] = [final["invocations"] for final in finals]


def _rpc_figures(report: Report, results: list[dict[str, Any]]) -> None:
    calls = sum(result["completed"] for result in results)
    seconds = max(result["seconds"] for result in results)
    errors = sum(result["errors"] for result in results)
    report.results.update(
        calls=calls,
        seconds=round(seconds, 3),
        calls_per_s=round(calls / seconds, 1) if seconds > 0 else 0.0,
        errors=errors,
        unfinished=sum(result["unfinished"] for result in results),
        latency_us=latency_summary(result["samples"] for result in results),
    )
    first_error = next((r["first_error"] for r in results if r.get("first_error")), None)
    if first_error:
        report.results["first_error"] = first_error
    if errors:
        report.fail(f"{errors} calls failed ({first_error})")
    if calls == 0:
        report.fail("no call completed")


async def _fanout(config: BenchConfig, pool: _Pool, report: Report) -> None:
    topic = f"bench.{secrets.token_hex(4)}.fanout"
    subscribers = pool.spawn(
        [
            _spec(config, "subscriber", f"subscribers {index + 1}", uri=topic, sessions=share)
            for index, share in enumerate(_split(config.subscribers, config.processes))
        ]
    )
    (publisher,) = pool.spawn(
        [_spec(config, "publisher", "publisher", uri=topic, outstanding=config.window)]
    )
    everyone = [*subscribers, publisher]
    await pool.expect(everyone, "ready", _deadline(config.timeout))
    pool.go(everyone, config.warmup, config.duration)
    slack = START_DELAY + config.warmup + config.duration + config.drain + config.timeout
    results = await pool.expect(everyone, "result", _deadline(slack))
    published, received = results[-1], results[:-1]
    seconds = config.duration
    events = sum(result["events"] for result in received)
    publications = published["completed"]
    expected = publications * config.subscribers
    report.results.update(
        publications=publications,
        publications_per_s=round(publications / seconds, 1),
        events=events,
        events_per_s=round(events / seconds, 1),
        delivery_ratio=round(events / expected, 4) if expected else 0.0,
        seconds=seconds,
        publish_errors=published["errors"],
        malformed_events=sum(result["malformed"] for result in received),
        latency_us=latency_summary(result["samples"] for result in received),
    )
    if published["errors"]:
        report.fail(f"{published['errors']} publications failed ({published['first_error']})")
    if events == 0:
        report.fail("no event was delivered")
    await pool.stop(everyone)


async def _idle(config: BenchConfig, pool: _Pool, report: Report) -> None:
    pids = config.router_pids
    before = read_rss(pids) if pids else None
    started = time.monotonic()
    workers = pool.spawn(
        [
            _spec(config, "idle", f"sessions {index + 1}", sessions=share)
            for index, share in enumerate(_split(config.sessions, config.processes))
        ]
    )
    readies = await pool.expect(workers, "ready", _deadline(config.timeout + 5))
    connect_seconds = time.monotonic() - started
    connected = sum(ready["connected"] for ready in readies)
    failed = sum(ready["failed"] for ready in readies)
    errors: dict[str, int] = {}
    for ready in readies:
        for error in ready["errors"]:
            errors[error] = errors.get(error, 0) + 1
    samples: list[int] = []
    deadline = trio.current_time() + config.hold
    while True:
        if pids:
            samples.append(read_rss(pids))
        if trio.current_time() >= deadline:
            break
        await trio.sleep(min(0.5, max(0.0, deadline - trio.current_time())))
    finals = await pool.stop(workers)
    lost = sum(final["lost"] for final in finals)
    report.results.update(
        sessions=config.sessions,
        connected=connected,
        failed=failed,
        connect_errors=errors,
        lost=lost,
        connect_seconds=round(connect_seconds, 3),
        worker_fd_limit=min(ready["fd_limit"] for ready in readies),
    )
    if before is not None and samples:
        during = samples[-1]
        report.results.update(
            rss_before=before,
            rss_connected=during,
            rss_peak=max(samples),
            rss_delta_per_session=round((during - before) / connected, 1) if connected else None,
        )
    if failed:
        first = next(iter(errors), "?")
        report.fail(f"{failed} of {config.sessions} sessions could not connect (first: {first})")
    elif lost:
        report.fail(f"{lost} sessions were closed while held")
